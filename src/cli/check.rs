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
    /// (1.1) Also print the proven 7-day maximum of marketing messages per
    /// profile, over all channels and per channel (LANGUAGE.md §9a).
    #[arg(long)]
    bounds: bool,
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
    // Bounds of a set with errors would be proven from caps that may not mean
    // what they say: none are given.
    let bounds = (args.bounds && !analysis.has_errors())
        .then(|| nudge::check::bounds::bounds(&sources, &analysis.modules));
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
            if args.bounds {
                text.push_str(&human_bounds(bounds.as_ref()));
            }
            text
        }
        Format::Json => {
            let document = render::json(&sources, diagnostics);
            match args.bounds {
                true => with_bounds(&document, bounds.as_ref(), false),
                false => document,
            }
        }
        Format::Sarif => {
            let document = render::sarif(&sources, diagnostics);
            match args.bounds {
                true => with_bounds(&document, bounds.as_ref(), true),
                false => document,
            }
        }
        Format::Github => {
            let mut text = render::github(&sources, diagnostics);
            if let Some(b) = &bounds {
                let all = b.all.max.map_or("unbounded".to_string(), |n| n.to_string());
                text.push_str(&format!(
                    "::notice title=Nudge bounds::at most {all} marketing messages per profile in any 7 days\n"
                ));
            }
            text
        }
    };
    let text = if matches!(args.format, Format::Json | Format::Sarif) {
        text + "\n"
    } else {
        text
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

/// The `bounds` object (LANGUAGE.md §9a) added to a JSON document: at the top
/// of `--format json`, in the run's property bag of SARIF.
fn with_bounds(
    document: &str,
    bounds: Option<&nudge::check::bounds::Bounds>,
    sarif: bool,
) -> String {
    let value = bounds.map_or(serde_json::Value::Null, |b| b.to_json());
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(document) else {
        return document.to_string();
    };
    if sarif {
        doc["runs"][0]["properties"] = serde_json::json!({ "bounds": value });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    } else {
        doc["bounds"] = value;
        doc.to_string()
    }
}

/// `nudge check --bounds` for people: one line per set of channels, each with
/// what proves it.
fn human_bounds(bounds: Option<&nudge::check::bounds::Bounds>) -> String {
    use nudge::check::bounds::Basis;
    let Some(b) = bounds else {
        return "\nbounds: not computed, the policy set has errors\n".into();
    };
    let number = |n: Option<u64>| n.map_or("unbounded".to_string(), |n| n.to_string());
    let why = |basis: &Basis, parts: &str| match basis {
        Basis::NoSends => "no marketing journey sends here".to_string(),
        Basis::Cap(cap) => cap.quoted(),
        Basis::Sum => format!("the sum of {parts}"),
        Basis::Unbounded => "sends no cap covers".to_string(),
    };
    let mut rows = vec![(
        "all channels".to_string(),
        number(b.all.max),
        why(&b.all.basis, "the channels' bounds"),
    )];
    for (name, bound) in &b.per_channel {
        rows.push((
            name.clone(),
            number(bound.max),
            why(&bound.basis, "its journeys' bounds"),
        ));
    }
    let names = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let numbers = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let mut out = String::from(
        "\nbounds: the most marketing messages one profile can receive in any 7 days\n",
    );
    for (name, n, why) in rows {
        out.push_str(&format!("  {name:<names$}  {n:>numbers$}  {why}\n"));
    }
    for u in &b.unbounded {
        out.push_str(&format!(
            "  unbounded: `{}` sends of `{}` are not limited by any cap\n",
            u.channel, u.journey
        ));
    }
    out.push_str("  (calendar caps assume the profile's time zone stays the same)\n");
    out
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
