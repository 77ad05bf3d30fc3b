//! `nudge check`: analyse a policy set and report, for people or for CI.

use crate::cli::Outcome;
use crate::cli::load::load;
use nudge::diagnostic::{Tally, render};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit with status 1 when there are warnings.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

pub fn run(args: CheckArgs) -> Outcome {
    let sources = match load(&args.paths) {
        Ok(s) => s,
        Err(e) => {
            // Tools that read stdout get a document that says why, too.
            let document = match args.format {
                Format::Human => None,
                Format::Json => Some(
                    serde_json::json!({
                        "diagnostics": [], "errors": 0, "warnings": 0, "error": e.0,
                    })
                    .to_string()
                        + "\n",
                ),
                Format::Sarif => Some(render::sarif_failure(&e.0) + "\n"),
                Format::Github => Some(format!("::error::{}\n", e.0.replace('\n', "%0A"))),
            };
            if let Some(document) = document {
                let _ = super::print_out(&document);
            }
            return super::usage_error(e.0);
        }
    };
    let analysis = nudge::analyze(&sources);
    let diagnostics = &analysis.diagnostics;
    let tally = Tally::of(diagnostics);
    let text = match args.format {
        Format::Human => {
            let style = if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            {
                render::HumanStyle::Color
            } else {
                render::HumanStyle::Plain
            };
            let mut text = render::human(&sources, diagnostics, style);
            text.push_str(&summary(sources.len(), tally));
            text
        }
        Format::Json => render::json(&sources, diagnostics) + "\n",
        Format::Sarif => render::sarif(&sources, diagnostics) + "\n",
        Format::Github => render::github(&sources, diagnostics),
    };
    if let Outcome::UsageOrIo = super::print_out(&text) {
        return Outcome::UsageOrIo;
    }
    if tally.errors > 0 || (args.deny_warnings && tally.warnings > 0) {
        Outcome::PolicyErrors
    } else {
        Outcome::Success
    }
}

fn summary(files: usize, tally: Tally) -> String {
    let files = plural(files, "file");
    match (tally.errors, tally.warnings) {
        (0, 0) => format!("checked {files}: no problems\n"),
        (e, w) => format!(
            "checked {files}: {}, {}\n",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
