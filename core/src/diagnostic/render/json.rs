//! `nudge check --format json`, exactly as CLI.md describes it.

use crate::diagnostic::render::region;
use crate::diagnostic::{Diagnostic, Tally};
use crate::source::Sources;
use serde::Serialize;

#[derive(Serialize)]
struct Output<'a> {
    diagnostics: Vec<Entry<'a>>,
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct Entry<'a> {
    file: &'a str,
    severity: &'static str,
    code: &'static str,
    message: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
}

pub fn json(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    let tally = Tally::of(diagnostics);
    let output = Output {
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let (start, end) = region(sources, &d.primary);
                Entry {
                    file: &sources.get(d.primary.file).name,
                    severity: d.severity.as_str(),
                    code: d.code.as_str(),
                    message: &d.message,
                    line: start.line,
                    column: start.column,
                    end_line: end.line,
                    end_column: end.column,
                    help: d.help.as_deref(),
                }
            })
            .collect(),
        errors: tally.errors,
        warnings: tally.warnings,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string(&output).unwrap_or_default()
}
