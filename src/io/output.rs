//! Decisions as JSON lines (LANGUAGE.md §8): fixed field order, RFC 3339 times in
//! UTC, byte-identical for the same decisions.

use crate::runtime::time::write_rfc3339 as rfc3339;
use crate::runtime::{Decision, DecisionKind};
use std::fmt::Write;

fn string(out: &mut String, s: &str) {
    // Most names and texts need no escaping: copied as they are. Otherwise
    // serde_json escapes them (serialising a &str cannot fail).
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// One decision as a JSON object, without the line break.
pub fn decision_json(d: &Decision) -> String {
    let mut out = String::with_capacity(160);
    write_decision(d, &mut out);
    out
}

/// [`decision_json`], appended to `out`.
pub fn write_decision(d: &Decision, out: &mut String) {
    out.push_str("{\"at\":\"");
    rfc3339(d.at, out);
    out.push_str("\",\"profile\":");
    string(out, &d.profile);
    out.push_str(",\"journey\":");
    string(out, &d.journey);
    out.push_str(",\"kind\":");
    string(out, d.kind.name());
    match &d.kind {
        DecisionKind::Entered | DecisionKind::Completed => {}
        DecisionKind::Send {
            template,
            channel,
            message_id,
            content,
        } => {
            out.push_str(",\"template\":");
            string(out, template);
            out.push_str(",\"channel\":");
            string(out, channel);
            out.push_str(",\"message_id\":");
            string(out, message_id);
            out.push_str(",\"content\":{");
            for (i, (field, text)) in content.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, field);
                out.push(':');
                string(out, text);
            }
            out.push('}');
        }
        DecisionKind::Deferred { template, until } => {
            out.push_str(",\"template\":");
            string(out, template);
            out.push_str(",\"until\":\"");
            rfc3339(*until, out);
            out.push('"');
        }
        DecisionKind::Suppressed { template, reasons } => {
            out.push_str(",\"template\":");
            string(out, template);
            out.push_str(",\"reasons\":{");
            for (i, (channel, reason)) in reasons.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, channel);
                out.push(':');
                string(out, reason.as_str());
            }
            out.push('}');
        }
        DecisionKind::Holdout { arm } => {
            out.push_str(",\"arm\":");
            string(out, arm);
        }
        DecisionKind::Exited { event } => {
            out.push_str(",\"event\":");
            string(out, event);
        }
    }
    out.push('}');
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path writes exactly what serde_json would.
    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let mut texts: Vec<String> = (0u32..0x100)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        texts.extend(
            [
                "",
                "plain",
                "é😀",
                "\u{2028}",
                "tab\there",
                "quote\"",
                "back\\slash",
            ]
            .map(String::from),
        );
        for text in texts {
            let mut out = String::new();
            string(&mut out, &text);
            assert_eq!(out, serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }
}
