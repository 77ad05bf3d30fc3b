//! SARIF 2.1.0, for GitHub code scanning and other CI tools.

use crate::diagnostic::render::region;
use crate::diagnostic::{Code, Diagnostic, Severity};
use serde_json::{Value, json};

use crate::source::Sources;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The tool's description, with its rules (none for a run that checked nothing).
fn driver(rules: Vec<Value>) -> Value {
    let mut driver = json!({
        "name": "nudge",
        "informationUri": "https://github.com/nudge-policies/nudge",
        "version": env!("CARGO_PKG_VERSION"),
    });
    if !rules.is_empty() {
        driver["rules"] = Value::Array(rules);
    }
    driver
}

/// A SARIF log of a run that could not check anything (an unreadable path, a
/// file that is not UTF-8): no results, and the reason as a notification, so
/// that CI tools reading the log see why.
pub fn sarif_failure(reason: &str) -> String {
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver(Vec::new()) },
            "invocations": [{
                "executionSuccessful": false,
                "toolExecutionNotifications": [{
                    "level": "error",
                    "message": { "text": reason },
                }],
            }],
            "results": [],
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

pub fn sarif(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|code| {
            let (meaning, fix) = crate::diagnostic::meaning_and_fix(*code);
            json!({
                "id": code.as_str(),
                "name": code.name(),
                "shortDescription": { "text": code.summary() },
                // GitHub code scanning requires it: what the rule is about.
                "fullDescription": { "text": meaning },
                "help": {
                    "text": format!("{fix}\n\nRun `nudge explain {}` for an example.", code.as_str()),
                    "markdown": format!("{fix}\n\nRun `nudge explain {}` for an example.", code.as_str()),
                },
                "defaultConfiguration": { "level": level(code.default_severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let (start, end) = region(sources, &d.primary);
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            let related: Vec<Value> = d
                .secondary
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let (s, e) = region(sources, l);
                    json!({
                        "id": i,
                        "message": { "text": l.message },
                        "physicalLocation": physical(&sources.get(l.file).name, s, e),
                    })
                })
                .collect();
            let rule_index = Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0);
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": rule_index,
                "level": level(d.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": physical(&sources.get(d.primary.file).name, start, end),
                    "message": { "text": d.primary.message },
                }],
            });
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver(rules) },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// A file name as a SARIF artifact location: an absolute path is a `file://`
/// URI; a relative one is relative to the source root (`%SRCROOT%`, where
/// GitHub and other viewers resolve it against the repository). Both are
/// percent-encoded (RFC 3986).
fn artifact(file: &str) -> Value {
    let path = file.replace('\\', "/");
    if path.starts_with('/') {
        json!({ "uri": format!("file://{}", encode(&path)) })
    } else {
        json!({ "uri": encode(path.trim_start_matches("./")), "uriBaseId": "%SRCROOT%" })
    }
}

/// Percent-encodes every byte but RFC 3986's unreserved characters and `/`.
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn physical(file: &str, start: crate::source::LineCol, end: crate::source::LineCol) -> Value {
    json!({
        "artifactLocation": artifact(file),
        "region": {
            "startLine": start.line,
            "startColumn": start.column,
            "endLine": end.line,
            "endColumn": end.column,
        },
    })
}
