//! `nudge fmt`: rewrite policy files in the canonical layout (CLI.md `fmt`).
//!
//! A file with syntax errors is left untouched and its diagnostics are printed;
//! `--check` writes nothing and lists the files that would change; `-` formats
//! stdin to stdout, for editors.

use crate::cli::Outcome;
use crate::cli::load::load;
use nudge::Sources;
use nudge::diagnostic::render;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FmtArgs {
    /// Policy files or directories (searched recursively for `*.nudge`); `-`
    /// formats standard input to standard output.
    paths: Vec<PathBuf>,
    /// Write nothing; list the files that would change and exit 1 if any would.
    #[arg(long)]
    check: bool,
}

pub fn run(args: FmtArgs) -> Outcome {
    if args.paths.len() == 1 && args.paths[0].as_os_str() == "-" {
        return stdin(args.check);
    }
    let sources = match load(&args.paths) {
        Ok(s) => s,
        Err(e) => return super::usage_error(e.0),
    };
    let mut failed = false;
    let mut would_change = Vec::new();
    for (_, file) in sources.iter() {
        match nudge::format(&file.text) {
            Ok(formatted) if formatted == file.text => {}
            Ok(formatted) => {
                if args.check {
                    would_change.push(file.name.clone());
                } else if let Err(e) = std::fs::write(&file.name, formatted) {
                    eprintln!("error: cannot write `{}`: {e}", file.name);
                    return Outcome::UsageOrIo;
                }
            }
            Err(diagnostics) => {
                failed = true;
                let mut one = Sources::new();
                one.add(file.name.clone(), file.text.clone());
                eprint!(
                    "{}",
                    render::human(&one, &diagnostics, super::stderr_style())
                );
                eprintln!(
                    "error: `{}` has syntax errors and was not formatted",
                    file.name
                );
            }
        }
    }
    for name in &would_change {
        if let Outcome::UsageOrIo = super::print_out(&format!("{name}\n")) {
            return Outcome::UsageOrIo;
        }
    }
    if failed || !would_change.is_empty() {
        Outcome::PolicyErrors
    } else {
        Outcome::Success
    }
}

fn stdin(check: bool) -> Outcome {
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() {
        eprintln!("error: standard input is not UTF-8 text");
        return Outcome::UsageOrIo;
    }
    match nudge::format(&text) {
        Ok(formatted) => {
            if check {
                if formatted != text {
                    let _ = super::print_out("-\n");
                    return Outcome::PolicyErrors;
                }
                return Outcome::Success;
            }
            super::print_out(&formatted)
        }
        Err(diagnostics) => {
            let mut one = Sources::new();
            one.add("<stdin>", text);
            eprint!(
                "{}",
                render::human(&one, &diagnostics, super::stderr_style())
            );
            eprintln!("error: the input has syntax errors and was not formatted");
            Outcome::PolicyErrors
        }
    }
}
