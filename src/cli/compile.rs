//! `nudge compile --emit clif PATHS`: the Cranelift IR the JIT generates for
//! every condition of a policy set, for inspection.

use crate::cli::Outcome;
use crate::cli::load::load;
use nudge::diagnostic::render;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct CompileArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    paths: Vec<PathBuf>,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Emit::Clif)]
    emit: Emit,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Emit {
    /// Cranelift IR, one function per condition.
    Clif,
}

pub fn run(args: CompileArgs) -> Outcome {
    let sources = match load(&args.paths) {
        Ok(s) => s,
        Err(e) => return super::usage_error(e.0),
    };
    let analysis = nudge::analyze(&sources);
    if analysis.has_errors() {
        super::print_errors(&sources, &analysis, render::HumanStyle::Plain);
        return Outcome::PolicyErrors;
    }
    let program = match nudge::ir::lower(&analysis.modules) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::UsageOrIo;
        }
    };
    match (args.emit, nudge::jit::Jit::compile(program)) {
        (Emit::Clif, Ok(jit)) => {
            let mut text = String::new();
            for function in jit.clif() {
                text.push_str(&function.to_string());
                text.push('\n');
            }
            super::print_out(&text)
        }
        (_, Err(e)) => {
            eprintln!("error: {e}");
            Outcome::UsageOrIo
        }
    }
}
