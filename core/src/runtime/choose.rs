//! Choosing a channel for a `send` (LANGUAGE.md §7.4).

use crate::interp::{self, Env};
use crate::ir::{Cap, CapScope, CapWindow, Engagement, Journey, Program, Quiet, TextPart, Value};
use crate::runtime::decision::Why;
use crate::runtime::state::{Profile, Sent};
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
    /// Every channel failed; (1.1) with the caps that stopped one, by their
    /// index among the `limits` caps then the journey's own (for
    /// `nudge simulate`'s suppressions by cap).
    Suppressed(Vec<(Rc<str>, Reason)>, Option<Box<Why>>, Vec<usize>),
    /// Every channel failed, some only for quiet hours: try again at this time.
    Defer(i64, Vec<(Rc<str>, Reason)>, Option<Box<Why>>),
}

/// What a `send` is decided in: the program, the sending journey and the clock.
pub struct Context<'a> {
    pub program: &'a Program,
    pub names: &'a Names,
    pub journey: &'a Journey,
    /// The journey's index in the program.
    pub journey_index: usize,
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
    best: Option<&[Engagement]>,
) -> Choice {
    let Context {
        program, now, tz, ..
    } = *cx;
    let Some(tpl) = program.templates.get(template) else {
        return Choice::Suppressed(Vec::new(), None, Vec::new());
    };
    let mut reasons = Vec::new();
    let mut caps_hit: Vec<usize> = Vec::new();
    // Boxed: decisions are moved around on the hot path, and an explanation is
    // only there with `--explain`.
    let mut why: Option<Box<Why>> = cx.explain.then(Box::default);
    let mut defer_until: Option<i64> = None;
    // (1.1) `via best of`: the available channels, each with its score.
    let mut candidates: Vec<(usize, usize, Score)> = Vec::new();
    for (k, &c) in channels.iter().enumerate() {
        let Some(channel) = program.channels.get(c) else {
            continue;
        };
        let quiet = || program.global_quiet.iter().chain(channel.quiet.iter());
        let block = tpl.blocks.iter().enumerate().find(|(_, b)| b.channel == c);
        let reason = match block {
            None => Some(Reason::NoContent),
            Some(_) => unavailable(cx, profile, channel, c, &mut caps_hit),
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
            (None, Some((index, _))) => match best.and_then(|b| b.get(k)) {
                Some(engagement) => {
                    candidates.push((c, index, Score::of(program, profile, engagement, now)))
                }
                None => return send(cx, profile, trigger, template, c, index, why),
            },
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
    // The highest score wins; ties go to the earlier channel.
    let winner = candidates
        .iter()
        .enumerate()
        .fold(None::<usize>, |best, (i, (_, _, score))| match best {
            Some(b) if !score.beats(&candidates[b].2) => Some(b),
            _ => Some(i),
        });
    if let Some(w) = winner {
        let (c, index, top) = candidates[w];
        if let Some(why) = why.as_mut() {
            explain_ranking(cx, why, &candidates, c, &top);
        }
        return send(cx, profile, trigger, template, c, index, why);
    }
    match defer_until {
        Some(until) => Choice::Defer(until, reasons, why),
        None => Choice::Suppressed(reasons, why, caps_hit),
    }
}

/// Why channel `c` (which has content) cannot take the send now, checked in
/// §7.4's order: address, consent, caps, quiet hours; a cap that stops it is
/// added to `caps_hit`.
fn unavailable(
    cx: &Context<'_>,
    profile: &Profile,
    channel: &crate::ir::Channel,
    c: usize,
    caps_hit: &mut Vec<usize>,
) -> Option<Reason> {
    let (program, journey) = (cx.program, cx.journey);
    let granted = |topic: usize| profile.consents.get(topic).copied().unwrap_or(false);
    if !matches!(profile.attrs.get(channel.address_attr), Some(Value::Str(s)) if !s.is_empty()) {
        Some(Reason::Unreachable)
    } else if !channel.consent.is_none_or(granted)
        || !journey.required_consents.iter().all(|t| granted(*t))
    {
        Some(Reason::NoConsent)
    } else if let Some((index, ..)) = (!journey.transactional)
        .then(|| capped(cx, profile, c))
        .flatten()
    {
        if !caps_hit.contains(&index) {
            caps_hit.push(index);
        }
        Some(Reason::Cap)
    } else if !journey.transactional
        && program
            .global_quiet
            .iter()
            .chain(channel.quiet.iter())
            .any(|q| time::in_quiet(cx.tz, cx.now, *q))
    {
        Some(Reason::Quiet)
    } else {
        None
    }
}

/// (1.1) `--explain` for `via best of`: each available channel's sentence
/// says how it ranked against the winner `c` (score `top`).
fn explain_ranking(
    cx: &Context<'_>,
    why: &mut Why,
    candidates: &[(usize, usize, Score)],
    c: usize,
    top: &Score,
) {
    for (channel, _, score) in candidates {
        let name = cx.names.channels.get(*channel);
        if let Some((_, sentence)) = why.iter_mut().find(|(n, _)| Some(n) == name) {
            let winner = cx.names.channels.get(c).map_or("", |n| &**n);
            *sentence = if *channel == c {
                format!("available, and engaged with most: {}", score.text())
            } else if top.beats(score) {
                format!(
                    "available, but engaged with less: {} (`{winner}` has {})",
                    score.text(),
                    top.ratio()
                )
            } else {
                format!(
                    "available, and as engaged: {}; `{winner}` comes first in `via`",
                    score.text()
                )
            };
        }
    }
}

/// The send on channel `c`, its template block `index` rendered.
fn send(
    cx: &Context<'_>,
    profile: &Profile,
    trigger: &[Value],
    template: usize,
    c: usize,
    index: usize,
    why: Option<Box<Why>>,
) -> Choice {
    let program = cx.program;
    let env = Env {
        program,
        attrs: &profile.attrs,
        event: &[],
        trigger,
        now: cx.now,
        tz: cx.tz,
        aggregates: profile,
        divisions_by_zero: cx.divisions_by_zero,
    };
    let names = cx
        .names
        .fields
        .get(template)
        .and_then(|blocks| blocks.get(index))
        .map_or(&[][..], Vec::as_slice);
    let block = program
        .templates
        .get(template)
        .and_then(|t| t.blocks.get(index));
    let content = block
        .map(|b| {
            b.fields
                .iter()
                .zip(names)
                .map(|(f, name)| {
                    let mut text = String::new();
                    render(f.text_for(cx.journey.shape).unwrap_or(&[]), &env, &mut text);
                    (Rc::clone(name), text)
                })
                .collect()
        })
        .unwrap_or_default();
    Choice::Send {
        channel: c,
        content,
        why,
    }
}

/// (1.1) A channel's engagement score for `via best of` (§7.4): `(e + 1) /
/// (s + 2)` with `e` the engagement events and `s` the sends on the channel
/// in the 90 days up to the send.
#[derive(Clone, Copy, Debug)]
struct Score {
    engagements: u64,
    sends: u64,
}

impl Score {
    fn of(program: &Program, profile: &Profile, e: &Engagement, now: i64) -> Score {
        use crate::interp::Aggregates;
        let count = |i: usize| match profile.value(program, i, now) {
            // Counts are whole and far below 2^53.
            Value::Number(n) if n > 0.0 => n as u64,
            _ => 0,
        };
        Score {
            engagements: e.events.iter().map(|&i| count(i)).sum(),
            sends: count(e.sends),
        }
    }

    /// Strictly higher, compared exactly (cross-multiplied, no rounding).
    fn beats(&self, other: &Score) -> bool {
        let (a, b) = (self.engagements + 1, self.sends + 2);
        let (c, d) = (other.engagements + 1, other.sends + 2);
        u128::from(a) * u128::from(d) > u128::from(c) * u128::from(b)
    }

    fn ratio(&self) -> String {
        format!("{}/{}", self.engagements + 1, self.sends + 2)
    }

    fn text(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} and {} in 90 days, score {}",
            plural(self.engagements, "engagement", "engagements"),
            plural(self.sends, "send", "sends"),
            self.ratio()
        )
    }
}

/// The first cap covering channel `c` for the sending journey that is full
/// at `now`, with the sends it counted and where its window starts. Caps of
/// `limits` come first, in order, then the journey's own (LANGUAGE.md §7.4
/// rule 3).
pub fn capped<'p>(
    cx: &Context<'p>,
    profile: &Profile,
    c: usize,
) -> Option<(usize, &'p Cap, usize, i64)> {
    let (program, journey, now, tz) = (cx.program, cx.journey, cx.now, cx.tz);
    let category_of = |j: u32| program.journeys.get(j as usize).and_then(|j| j.category);
    program
        .caps
        .iter()
        .chain(&journey.caps)
        .enumerate()
        .find_map(|(index, cap)| {
            // Whether the cap covers this send, and which sends it counts.
            let counts: &dyn Fn(&Sent) -> bool = match &cap.scope {
                CapScope::All => &|_| true,
                CapScope::Channels(list) if list.contains(&c) => {
                    &|s: &Sent| list.contains(&(s.channel as usize))
                }
                CapScope::Channels(_) => return None,
                CapScope::Category(k) if journey.category == Some(*k) => {
                    &|s: &Sent| category_of(s.journey) == Some(*k)
                }
                CapScope::Category(_) => return None,
                CapScope::Journey => {
                    // Its sends in every version of the journey (§7.7).
                    &|s: &Sent| s.journey as usize == program.lineage(cx.journey_index)
                }
            };
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
                .take_while(|s| after_start(s.at))
                .filter(|s| s.at <= now && counts(s))
                .count();
            (sent >= cap.count as usize).then_some((index, cap, sent, from))
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
