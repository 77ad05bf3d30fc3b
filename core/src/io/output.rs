//! Decisions as JSON lines (LANGUAGE.md §8): fixed field order, RFC 3339 times in
//! UTC, byte-identical for the same decisions.

use crate::runtime::decision::{NotEntered, Reason, Why};
use crate::runtime::time::write_rfc3339 as rfc3339;
use crate::runtime::{Decision, DecisionKind};
use std::fmt::Write;
use std::rc::Rc;

/// Whether JSON needs some of these bytes escaped (control characters, quotes
/// and backslashes). Template texts are long, so eight bytes are tested at a
/// time: a byte is below 0x20, or equal to `"` or `\`, exactly when the
/// classic zero-byte tests below find one.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Below 0x20: subtracting 0x20 from each byte borrows into its high bit
        // (only bytes below 0x80 are tested, so no high bit was set before).
        let below_space = x.wrapping_sub(0x20 * ONES) & !x & HIGH != 0;
        if below_space
            || has_zero(x ^ (u64::from(b'"') * ONES))
            || has_zero(x ^ (u64::from(b'\\') * ONES))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn string(out: &mut String, s: &str) {
    // Most names and texts need no escaping: copied as they are. Otherwise
    // serde_json escapes them (serialising a &str cannot fail).
    if !needs_escape(s.as_bytes()) {
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

/// [`decision_json`], appended to `out`. Long by design: the decision line of
/// CLI.md, field by field in its order, with one arm per decision kind;
/// written by hand because it is on the hot path (no `serde_json::Value`).
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
            arm,
            why,
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
            explanation(out, arm.as_deref(), why.as_deref());
        }
        DecisionKind::Deferred {
            template,
            until,
            reasons: why_not,
            arm,
            why,
        } => {
            out.push_str(",\"template\":");
            string(out, template);
            out.push_str(",\"until\":\"");
            rfc3339(*until, out);
            out.push('"');
            reasons(out, why_not);
            explanation(out, arm.as_deref(), why.as_deref());
        }
        DecisionKind::Suppressed {
            template,
            reasons: why_not,
            arm,
            why,
        } => {
            out.push_str(",\"template\":");
            string(out, template);
            reasons(out, why_not);
            explanation(out, arm.as_deref(), why.as_deref());
        }
        DecisionKind::NotEntered { reason } => {
            out.push_str(",\"reason\":");
            string(out, reason.as_str());
            if let NotEntered::Reenter { until } = reason {
                out.push_str(",\"until\":\"");
                rfc3339(*until, out);
                out.push('"');
            }
        }
        DecisionKind::Holdout { arm } => {
            out.push_str(",\"arm\":");
            string(out, arm);
        }
        DecisionKind::Exited { event } => {
            out.push_str(",\"event\":");
            string(out, event);
        }
        DecisionKind::Converted {
            event,
            entered_at,
            arm,
        } => {
            out.push_str(",\"event\":");
            string(out, event);
            out.push_str(",\"entered_at\":\"");
            rfc3339(*entered_at, out);
            out.push('"');
            if let Some(arm) = arm {
                out.push_str(",\"arm\":");
                string(out, arm);
            }
        }
    }
    out.push('}');
}

/// `"reasons":{channel: reason, …}`.
fn reasons(out: &mut String, reasons: &[(Rc<str>, Reason)]) {
    member_object(
        out,
        "reasons",
        reasons.iter().map(|(c, r)| (&**c, r.as_str())),
    );
}

/// `,"KEY":{name: text, …}`, in the order given.
fn member_object<'a>(
    out: &mut String,
    key: &str,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":{");
    for (i, (name, text)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, name);
        out.push(':');
        string(out, text);
    }
    out.push('}');
}

/// The 1.1 fields that explain a send, deferral or suppression: `arm` when the
/// instance passed a split, `why` with `--explain`.
fn explanation(out: &mut String, arm: Option<&str>, why: Option<&Why>) {
    if let Some(arm) = arm {
        out.push_str(",\"arm\":");
        string(out, arm);
    }
    if let Some(why) = why {
        member_object(out, "why", why.iter().map(|(c, s)| (&**c, s.as_str())));
    }
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
