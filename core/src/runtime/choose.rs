//! Choosing a channel for a `send` (LANGUAGE.md §7.4).

use crate::interp::{self, Env};
use crate::ir::{CapWindow, Journey, Program, Quiet, TextPart, Value};
use crate::runtime::decision::Why;
use crate::runtime::state::Profile;
use crate::runtime::time;
use crate::runtime::{Names, Reason, explain};
use chrono_tz::Tz;
use std::cell::Cell;
use std::rc::Rc;

pub enum Choice {
    Send {
        channel: usize,
        content: Vec<(Rc<str>, String)>,
        why: Option<Box<Why>>,
    },
    Suppressed(Vec<(Rc<str>, Reason)>, Option<Box<Why>>),
    /// Every channel failed, some only for quiet hours: try again at this time.
    Defer(i64, Vec<(Rc<str>, Reason)>, Option<Box<Why>>),
}

/// What a `send` is decided in: the program, the sending journey and the clock.
pub struct Context<'a> {
    pub program: &'a Program,
    pub names: &'a Names,
    pub journey: &'a Journey,
    pub now: i64,
    pub tz: Tz,
    pub divisions_by_zero: &'a Cell<u64>,
    /// Whether to say why for each channel (`--explain`).
    pub explain: bool,
}

pub fn choose(
    cx: &Context<'_>,
    profile: &Profile,
    trigger: &[Value],
    template: usize,
    channels: &[usize],
) -> Choice {
    let Context {
        program,
        journey,
        now,
        tz,
        ..
    } = *cx;
    let Some(tpl) = program.templates.get(template) else {
        return Choice::Suppressed(Vec::new(), None);
    };
    let mut reasons = Vec::new();
    // Boxed: decisions are moved around on the hot path, and an explanation is
    // only there with `--explain`.
    let mut why: Option<Box<Why>> = cx.explain.then(Box::default);
    let mut defer_until: Option<i64> = None;
    for &c in channels {
        let Some(channel) = program.channels.get(c) else {
            continue;
        };
        let quiet = || program.global_quiet.iter().chain(channel.quiet.iter());
        let block = tpl.blocks.iter().enumerate().find(|(_, b)| b.channel == c);
        let granted = |topic: usize| profile.consents.get(topic).copied().unwrap_or(false);
        let reason = if block.is_none() {
            Some(Reason::NoContent)
        } else if !matches!(profile.attrs.get(channel.address_attr), Some(Value::Str(s)) if !s.is_empty())
        {
            Some(Reason::Unreachable)
        } else if !channel.consent.is_none_or(granted)
            || !journey.required_consents.iter().all(|t| granted(*t))
        {
            Some(Reason::NoConsent)
        } else if !journey.transactional && capped(program, profile, c, now, tz).is_some() {
            Some(Reason::Cap)
        } else if !journey.transactional && quiet().any(|q| time::in_quiet(tz, now, *q)) {
            Some(Reason::Quiet)
        } else {
            None
        };
        let channel_name = || {
            cx.names
                .channels
                .get(c)
                .cloned()
                .unwrap_or_else(|| Rc::from(""))
        };
        if let Some(why) = why.as_mut() {
            let sentence = explain::channel(cx, profile, tpl, c, reason);
            why.push((channel_name(), sentence));
        }
        match (reason, block) {
            (None, Some((index, block))) => {
                let env = Env {
                    program,
                    attrs: &profile.attrs,
                    event: &[],
                    trigger,
                    now,
                    tz,
                    aggregates: profile,
                    divisions_by_zero: cx.divisions_by_zero,
                };
                let names = cx
                    .names
                    .fields
                    .get(template)
                    .and_then(|blocks| blocks.get(index))
                    .map_or(&[][..], Vec::as_slice);
                let content = block
                    .fields
                    .iter()
                    .zip(names)
                    .map(|(f, name)| {
                        let mut text = String::new();
                        render(f.text_for(journey.trigger).unwrap_or(&[]), &env, &mut text);
                        (Rc::clone(name), text)
                    })
                    .collect();
                return Choice::Send {
                    channel: c,
                    content,
                    why,
                };
            }
            (Some(Reason::Quiet), _) => {
                let quiet: Vec<Quiet> = quiet().copied().collect();
                let until = time::quiet_end(tz, now, &quiet);
                defer_until = Some(defer_until.map_or(until, |d| d.min(until)));
                reasons.push((channel_name(), Reason::Quiet));
            }
            (Some(r), _) => reasons.push((channel_name(), r)),
            (None, None) => reasons.push((channel_name(), Reason::NoContent)),
        }
    }
    match defer_until {
        Some(until) => Choice::Defer(until, reasons, why),
        None => Choice::Suppressed(reasons, why),
    }
}

/// The first cap covering channel `c` that is full at `now`, with the sends
/// it counted and where its window starts.
pub fn capped(
    program: &Program,
    profile: &Profile,
    c: usize,
    now: i64,
    tz: Tz,
) -> Option<(usize, usize, i64)> {
    program.caps.iter().enumerate().find_map(|(index, cap)| {
        if cap.channel.is_some_and(|only| only != c) {
            return None;
        }
        // Rolling windows are (now - D, now]; calendar ones [local start, now].
        let (from, inclusive) = match cap.window {
            CapWindow::Rolling(d) => (now.saturating_sub(d), false),
            CapWindow::Day => (time::start_of_day(tz, now), true),
            CapWindow::Week => (time::start_of_week(tz, now), true),
        };
        let after_start = |t: i64| if inclusive { t >= from } else { t > from };
        // Sends are in time order and never later than now.
        let sent = profile
            .sends
            .iter()
            .rev()
            .take_while(|(t, _)| after_start(*t))
            .filter(|(t, ch)| *t <= now && cap.channel.is_none_or(|only| only == *ch))
            .count();
        (sent >= cap.count as usize).then_some((index, sent, from))
    })
}

fn render(parts: &[TextPart], env: &Env<'_>, out: &mut String) {
    // Room for the literal text and a short value per interpolation, so that a
    // message is usually built without growing.
    let estimate = parts
        .iter()
        .map(|p| match p {
            TextPart::Text(t) => t.len(),
            TextPart::Value(_) => 16,
        })
        .sum();
    out.reserve(estimate);
    for part in parts {
        match part {
            TextPart::Text(t) => out.push_str(t),
            TextPart::Value(e) => interp::write_text(&interp::eval(e, env), out),
        }
    }
}
