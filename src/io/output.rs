//! Decisions as JSON lines (LANGUAGE.md §8): fixed field order, RFC 3339 times in
//! UTC, byte-identical for the same decisions.

use crate::runtime::time::rfc3339;
use crate::runtime::{Decision, DecisionKind};
use std::fmt::Write;

fn string(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// One decision as a JSON object, without the line break.
pub fn decision_json(d: &Decision) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"at\":");
    string(&mut out, &rfc3339(d.at));
    out.push_str(",\"profile\":");
    string(&mut out, &d.profile);
    out.push_str(",\"journey\":");
    string(&mut out, &d.journey);
    out.push_str(",\"kind\":");
    string(&mut out, d.kind.name());
    match &d.kind {
        DecisionKind::Entered | DecisionKind::Completed => {}
        DecisionKind::Send {
            template,
            channel,
            message_id,
            content,
        } => {
            out.push_str(",\"template\":");
            string(&mut out, template);
            out.push_str(",\"channel\":");
            string(&mut out, channel);
            out.push_str(",\"message_id\":");
            string(&mut out, message_id);
            out.push_str(",\"content\":{");
            for (i, (field, text)) in content.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(&mut out, field);
                out.push(':');
                string(&mut out, text);
            }
            out.push('}');
        }
        DecisionKind::Deferred { template, until } => {
            out.push_str(",\"template\":");
            string(&mut out, template);
            out.push_str(",\"until\":");
            string(&mut out, &rfc3339(*until));
        }
        DecisionKind::Suppressed { template, reasons } => {
            out.push_str(",\"template\":");
            string(&mut out, template);
            out.push_str(",\"reasons\":{");
            for (i, (channel, reason)) in reasons.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(&mut out, channel);
                let _ = write!(out, ":\"{}\"", reason.as_str());
            }
            out.push('}');
        }
        DecisionKind::Holdout { arm } => {
            out.push_str(",\"arm\":");
            string(&mut out, arm);
        }
        DecisionKind::Exited { event } => {
            out.push_str(",\"event\":");
            string(&mut out, event);
        }
    }
    out.push('}');
    out
}

/// A dead letter line: `{"line":N,"reason":"…","raw":"…"}`.
pub fn dead_letter_json(line: u64, reason: &str, raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 64);
    let _ = write!(out, "{{\"line\":{line},\"reason\":");
    string(&mut out, reason);
    out.push_str(",\"raw\":");
    string(&mut out, raw);
    out.push('}');
    out
}
