//! `nudge explain CODE`: what a diagnostic code means, an example, and the fix.
//! Without a code, lists every code with its summary.

use crate::cli::Outcome;
use nudge::Code;

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as `T202` (case does not matter).
    code: Option<String>,
}

pub fn run(args: ExplainArgs) -> Outcome {
    match args.code {
        None => super::print_out(&list()),
        Some(code) => match Code::parse(code.trim()) {
            Some(code) => super::print_out(&nudge::diagnostic::explain(code)),
            None => {
                eprintln!(
                    "error: unknown diagnostic code `{code}`\n\nthe codes are:\n{}",
                    list()
                );
                Outcome::UsageOrIo
            }
        },
    }
}

fn list() -> String {
    Code::ALL
        .iter()
        .map(|c| format!("  {}  {}\n", c.as_str(), c.summary()))
        .collect()
}
