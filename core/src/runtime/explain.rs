//! `--explain` (LANGUAGE.md §8, 1.1): one plain sentence per channel tried,
//! naming the rule of §7.4 that decided it and the fact behind it.
//!
//! Promise: sentences name attributes, topics, caps and windows, never an
//! attribute's value, so an explanation can be shown to anyone who may see
//! the decision.

use crate::ir::{Cap, CapScope, CapWindow, Program, Quiet, Template, Value};
use crate::runtime::choose::{Context, capped};
use crate::runtime::state::Profile;
use crate::runtime::{Reason, time};

/// Why channel `c` was (or was not) available for this send.
pub fn channel(
    cx: &Context<'_>,
    profile: &Profile,
    template: &Template,
    c: usize,
    reason: Option<Reason>,
) -> String {
    let program = cx.program;
    let Some(channel) = program.channels.get(c) else {
        return String::new();
    };
    match reason {
        None => "available: the first channel in `via` order that passes every rule".into(),
        Some(Reason::NoContent) => format!(
            "the template `{}` has no `{}` block",
            template.name, channel.name
        ),
        Some(Reason::Unreachable) => {
            let attr = program
                .attrs
                .get(channel.address_attr)
                .map_or("", |a| a.name.as_str());
            match profile.attrs.get(channel.address_attr) {
                Some(Value::Str(_)) => format!("`profile.{attr}` is empty"),
                _ => format!("`profile.{attr}` is missing"),
            }
        }
        Some(Reason::NoConsent) => no_consent(cx, profile, c),
        Some(Reason::Cap) => match capped(cx, profile, c) {
            Some((_, full, sent, from)) => cap(cx, full, sent, from),
            None => "a cap is full".into(),
        },
        Some(Reason::Quiet) => {
            let own = channel.quiet.filter(|q| time::in_quiet(cx.tz, cx.now, *q));
            let global = program
                .global_quiet
                .filter(|q| time::in_quiet(cx.tz, cx.now, *q));
            // (1.1) §9a: a sensitive zone is named by its attribute only.
            let zone = match program.timezone_attr.and_then(|a| program.attrs.get(a)) {
                Some(attr) if attr.sensitive => {
                    format!("the profile's time zone (`{}`, sensitive)", attr.name)
                }
                _ => cx.tz.name().to_string(),
            };
            match (global, own) {
                (Some(q), _) => format!("quiet {} in {zone} (limits)", window(q)),
                (None, Some(q)) => {
                    format!("quiet {} in {zone} (channel `{}`)", window(q), channel.name)
                }
                (None, None) => format!("quiet hours in {zone}"),
            }
        }
    }
}

/// The first topic that is not granted: the channel's own, then the journey's
/// `require consent` topics.
fn no_consent(cx: &Context<'_>, profile: &Profile, c: usize) -> String {
    let program = cx.program;
    let granted = |t: usize| profile.consents.get(t).copied().unwrap_or(false);
    let own = program.channels.get(c).and_then(|ch| ch.consent);
    let (topic, required) = match own.filter(|t| !granted(*t)) {
        Some(t) => (t, false),
        None => match cx.journey.required_consents.iter().find(|t| !granted(**t)) {
            Some(t) => (*t, true),
            None => return "consent is not granted".into(),
        },
    };
    let Some(def) = program.consents.get(topic) else {
        return "consent is not granted".into();
    };
    let subject = if required {
        format!("`require consent {}`", def.name)
    } else {
        format!("`{}`", def.name)
    };
    match profile.consent_changed.get(topic).copied().flatten() {
        Some(at) => {
            let mut when = String::new();
            time::write_rfc3339(at, &mut when);
            format!("{subject} was revoked at {when}")
        }
        None if def.granted_by_default => format!("{subject} is not granted"),
        None => format!("{subject} is opt-in and was never granted"),
    }
}

fn cap(cx: &Context<'_>, cap: &Cap, sent: usize, from: i64) -> String {
    let sends = if sent == 1 { "send" } else { "sends" };
    let since = match cap.window {
        CapWindow::Day => "since 00:00 local".to_string(),
        CapWindow::Week => "since Monday 00:00 local".to_string(),
        CapWindow::Rolling(_) => {
            let mut t = String::new();
            time::write_rfc3339(from, &mut t);
            format!("after {t}")
        }
    };
    let written = written(cx.program, cap);
    match cap.scope {
        CapScope::Journey => format!(
            "`{written}` of `{}`: {sent} {sends} {since}",
            cx.journey.name
        ),
        _ => format!("`{written}`: {sent} {sends} {since}"),
    }
}

/// A cap as the policy writes it: `cap 1 per day on sms`.
pub fn written(program: &Program, cap: &Cap) -> String {
    let window = match cap.window {
        CapWindow::Day => "day".to_string(),
        CapWindow::Week => "week".to_string(),
        CapWindow::Rolling(nanos) => duration(nanos),
    };
    let on = match &cap.scope {
        CapScope::All | CapScope::Journey => String::new(),
        CapScope::Channels(list) => {
            let names: Vec<&str> = list
                .iter()
                .filter_map(|c| program.channels.get(*c))
                .map(|c| c.name.as_str())
                .collect();
            format!(" on {}", names.join(", "))
        }
        CapScope::Category(k) => format!(
            " on category {}",
            program.categories.get(*k).map_or("", String::as_str)
        ),
    };
    format!("cap {} per {window}{on}", cap.count)
}

/// A duration as a literal: `7d`, `1h30m`.
fn duration(nanos: i64) -> String {
    let mut seconds = nanos / time::SECOND;
    if seconds <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

fn window(q: Quiet) -> String {
    format!(
        "{:02}:{:02} to {:02}:{:02}",
        q.from / 60,
        q.from % 60,
        q.to / 60,
        q.to % 60
    )
}
