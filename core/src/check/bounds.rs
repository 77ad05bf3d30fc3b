//! (1.1) Volume bounds (LANGUAGE.md §9a): the most messages any one profile
//! can receive from non-transactional journeys in any rolling 7 days, proven
//! from the caps alone.
//!
//! The unit is a *send pair*: a marketing journey and a channel it can send on
//! (a `via` channel its template has content for). A cap covers a pair when it
//! counts that journey's sends on that channel (a cap of `limits` without `on`,
//! one `on` a list naming the channel, one `on category K` when the journey is
//! of `K`, the journey's own `cap`). A cap `N per W` allows `N × ⌈7d / W⌉`
//! sends in any 7 rolling days (`per day`: `N × 9`, `per week`: `N × 3`, while
//! the profile's time zone stays the same). The bound of a set of pairs is the
//! least allowance of the caps that cover all of them, and never more than the
//! sum of its parts' bounds: a channel's parts are its journeys, `all`'s parts
//! are the channels. A set with no pair is bounded by 0; a pair no cap covers
//! makes every set that holds it unbounded (and is warning L412).

use crate::check::env::Env;
use crate::source::{FileId, Sources, Span};
use crate::syntax::ast::*;
use serde_json::{Value, json};

/// Seconds in the 7 days a bound is about.
const WEEK: u64 = 7 * 86_400;

/// The proven bounds of a policy set.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Over every channel.
    pub all: Bound,
    /// Every declared channel, by name.
    pub per_channel: Vec<(String, Bound)>,
    /// The send pairs no cap covers, by journey then channel.
    pub unbounded: Vec<Unbounded>,
}

/// A proven maximum, and what proves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// `None`: no bound (some send is covered by no cap).
    pub max: Option<u64>,
    pub basis: Basis,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Basis {
    /// No marketing journey sends there.
    NoSends,
    /// One cap covers every send.
    Cap(CapRef),
    /// The sum of the parts' bounds (the journeys of a channel, or the channels).
    Sum,
    /// Some send is covered by no cap.
    Unbounded,
}

/// A cap as the policy writes it, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct CapRef {
    /// `cap 4 per 7d on email`.
    pub written: String,
    /// The journey whose own cap it is; `None` for a cap of `limits`.
    pub journey: Option<String>,
    pub file: FileId,
    pub span: Span,
}

/// A marketing journey's sends on a channel that no cap covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbounded {
    pub journey: String,
    pub channel: String,
    /// The channel in the journey's first send through it.
    pub file: FileId,
    pub span: Span,
}

impl Bounds {
    /// The `bounds` object of `nudge check --format json` (LANGUAGE.md §9a).
    pub fn to_json(&self) -> Value {
        let per_channel: serde_json::Map<String, Value> = self
            .per_channel
            .iter()
            .map(|(name, b)| (name.clone(), json!(b.max)))
            .collect();
        let unbounded: Vec<Value> = self
            .unbounded
            .iter()
            .map(|u| json!({"journey": u.journey, "channel": u.channel}))
            .collect();
        json!({"all": self.all.max, "per_channel": per_channel, "unbounded": unbounded})
    }

    pub fn channel(&self, name: &str) -> Option<&Bound> {
        self.per_channel
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b)
    }
}

impl CapRef {
    /// The cap quoted for people: "`cap 4 per 7d`", "`cap 1 per 30d` of `winback`".
    pub fn quoted(&self) -> String {
        match &self.journey {
            Some(j) => format!("`{}` of `{j}`", self.written),
            None => format!("`{}`", self.written),
        }
    }
}

impl Bound {
    /// "at most 4 in any 7 days (`cap 4 per 7d`)", for people.
    pub fn describe(&self) -> String {
        match (&self.max, &self.basis) {
            (Some(0), _) | (_, Basis::NoSends) => "none: no marketing journey sends here".into(),
            (Some(n), Basis::Cap(cap)) => format!("at most {n} in any 7 days ({})", cap.quoted()),
            (Some(n), _) => format!("at most {n} in any 7 days (the sum of its parts' bounds)"),
            (None, _) => "unbounded: some sends are limited by no cap".into(),
        }
    }
}

/// The most sends a cap allows in any 7 rolling days.
pub fn seven_day_allowance(count: u32, window: &WindowKind) -> u64 {
    let windows = match window {
        WindowKind::Rolling(d) if d.seconds > 0 => WEEK.div_ceil(d.seconds),
        // A window of 0 is an error (P306); it proves nothing.
        WindowKind::Rolling(_) => return u64::MAX,
        // 7 rolling days touch at most 9 local days (a spring-forward day among
        // them) and 3 local weeks.
        WindowKind::Day => 9,
        WindowKind::Week => 3,
    };
    u64::from(count).saturating_mul(windows)
}

/// The bounds of a parsed policy set (meaningful when it checks clean).
pub fn bounds(sources: &Sources, modules: &[(FileId, Module)]) -> Bounds {
    let env = Env::collect(modules, &mut Vec::new());
    let texts: Vec<&str> = sources.iter().map(|(_, f)| f.text.as_str()).collect();
    compute(&env, &texts)
}

/// Which sends a cap covers.
enum CapScopeRef<'a> {
    All,
    Channels(Vec<&'a str>),
    Category(&'a str),
    Journey(&'a str),
}

struct CapInfo<'a> {
    allowance: u64,
    scope: CapScopeRef<'a>,
    at: CapRef,
}

struct Pair<'a> {
    journey: &'a str,
    category: Option<&'a str>,
    channel: &'a str,
    file: FileId,
    span: Span,
}

impl CapInfo<'_> {
    fn covers(&self, p: &Pair<'_>) -> bool {
        match &self.scope {
            CapScopeRef::All => true,
            CapScopeRef::Channels(list) => list.contains(&p.channel),
            CapScopeRef::Category(k) => p.category == Some(k),
            CapScopeRef::Journey(j) => *j == p.journey,
        }
    }
}

pub(crate) fn compute(env: &Env<'_>, texts: &[&str]) -> Bounds {
    let mut caps = set_caps(env, texts);
    let pairs = journey_caps_and_sends(env, texts, &mut caps);
    // Caps of 0 or over an empty window are errors of their own; they prove nothing.
    caps.retain(|c| c.allowance != u64::MAX);

    let no_sends = Bound {
        max: Some(0),
        basis: Basis::NoSends,
    };

    // Each pair's own bound, found once.
    let own: Vec<Option<u64>> = pairs
        .iter()
        .map(|p| least(&caps, std::slice::from_ref(&p)).map(|c| c.allowance))
        .collect();
    let mut per_channel = Vec::new();
    for name in env.channels.keys() {
        let on = || (0..pairs.len()).filter(|i| pairs[*i].channel == *name);
        let set: Vec<&Pair<'_>> = on().map(|i| &pairs[i]).collect();
        let bound = if set.is_empty() {
            no_sends.clone()
        } else {
            combine(least(&caps, &set), sum(on().map(|i| own[i])))
        };
        per_channel.push((name.to_string(), bound));
    }
    let all = if pairs.is_empty() {
        no_sends
    } else {
        let set: Vec<&Pair<'_>> = pairs.iter().collect();
        let parts = sum(per_channel.iter().map(|(_, b)| b.max));
        combine(least(&caps, &set), parts)
    };
    let mut unbounded: Vec<Unbounded> = pairs
        .iter()
        .zip(&own)
        .filter(|(_, own)| own.is_none())
        .map(|(p, _)| Unbounded {
            journey: p.journey.to_string(),
            channel: p.channel.to_string(),
            file: p.file,
            span: p.span,
        })
        .collect();
    unbounded.sort_by(|a, b| (&a.journey, &a.channel).cmp(&(&b.journey, &b.channel)));
    Bounds {
        all,
        per_channel,
        unbounded,
    }
}

/// The text of a cap as a message quotes it: one line, single spaces.
fn written(texts: &[&str], file: FileId, span: Span) -> String {
    let text = texts.get(file.0 as usize).copied().unwrap_or("");
    let raw = text
        .get(span.start as usize..span.end as usize)
        .unwrap_or("");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The caps of the `limits` block.
fn set_caps<'a>(env: &Env<'a>, texts: &[&str]) -> Vec<CapInfo<'a>> {
    let mut caps = Vec::new();
    if let Some(limits) = env.limits {
        for cap in &limits.node.caps {
            let scope = match &cap.scope {
                CapScope::All => CapScopeRef::All,
                CapScope::Channels(list) => {
                    CapScopeRef::Channels(list.iter().map(|c| c.name.as_str()).collect())
                }
                CapScope::Category(k) => CapScopeRef::Category(&k.name),
            };
            caps.push(CapInfo {
                allowance: seven_day_allowance(cap.count, &cap.window.kind),
                scope,
                at: CapRef {
                    written: written(texts, limits.file, cap.span),
                    journey: None,
                    file: limits.file,
                    span: cap.span,
                },
            });
        }
    }
    caps
}

/// Each journey's own caps (added to `caps`), and every (journey, channel)
/// its sends can use, once each; transactional journeys count for neither.
fn journey_caps_and_sends<'a>(
    env: &Env<'a>,
    texts: &[&str],
    caps: &mut Vec<CapInfo<'a>>,
) -> Vec<Pair<'a>> {
    let mut pairs: Vec<Pair<'_>> = Vec::new();
    let mut seen: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for (name, j) in &env.journeys {
        let journey = j.node;
        let kinds = || journey.clauses.iter().map(|c| (&c.kind, c.span));
        if kinds().any(|(k, _)| matches!(k, ClauseKind::Transactional)) {
            continue;
        }
        let category = kinds().find_map(|(k, _)| match k {
            ClauseKind::Category(c) => Some(c.name.as_str()),
            _ => None,
        });
        for (kind, span) in kinds() {
            if let ClauseKind::Cap { count, window, .. } = kind {
                caps.push(CapInfo {
                    allowance: seven_day_allowance(*count, &window.kind),
                    scope: CapScopeRef::Journey(name),
                    at: CapRef {
                        written: written(texts, j.file, span),
                        journey: Some(name.to_string()),
                        file: j.file,
                        span,
                    },
                });
            }
        }
        let mut sends = Vec::new();
        sends_of(&journey.steps, &mut sends);
        for (template, channels) in sends {
            let Some(t) = env.templates.get(template.name.as_str()) else {
                continue;
            };
            for c in channels {
                let known = env.channels.contains_key(c.name.as_str());
                let has_block = t.node.blocks.iter().any(|b| b.channel.name == c.name);
                if known && has_block && seen.insert((name, &c.name)) {
                    pairs.push(Pair {
                        journey: name,
                        category,
                        channel: &c.name,
                        file: j.file,
                        span: c.span,
                    });
                }
            }
        }
    }
    pairs
}

/// The smallest cap covering every pair of `set`: the first declared among
/// equals (`min_by_key` keeps the first).
fn least<'c, 'a>(caps: &'c [CapInfo<'a>], set: &[&Pair<'_>]) -> Option<&'c CapInfo<'a>> {
    caps.iter()
        .filter(|cap| set.iter().all(|p| cap.covers(p)))
        .min_by_key(|cap| cap.allowance)
}

/// min(least cover, sum of parts), saying which proved it.
fn combine(cover: Option<&CapInfo<'_>>, sum: Option<u64>) -> Bound {
    match (cover, sum) {
        (Some(cap), Some(s)) if s < cap.allowance => Bound {
            max: Some(s),
            basis: Basis::Sum,
        },
        (Some(cap), _) => Bound {
            max: Some(cap.allowance),
            basis: Basis::Cap(cap.at.clone()),
        },
        (None, Some(s)) => Bound {
            max: Some(s),
            basis: Basis::Sum,
        },
        (None, None) => Bound {
            max: None,
            basis: Basis::Unbounded,
        },
    }
}

/// The sum of bounds; `None` when one of them is.
fn sum(parts: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    parts
        .into_iter()
        .try_fold(0u64, |acc, b| b.map(|b| acc.saturating_add(b)))
}

/// Every `send` of a list of steps, nested ones included, in source order.
fn sends_of<'a>(steps: &'a [Step], out: &mut Vec<(&'a Ident, &'a [Ident])>) {
    for step in steps {
        if let StepKind::Send {
            template, channels, ..
        } = &step.kind
        {
            out.push((template, channels));
        }
        for block in step.blocks() {
            sends_of(block, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolling(seconds: u64) -> WindowKind {
        WindowKind::Rolling(DurationLit {
            seconds,
            span: Span::default(),
        })
    }

    #[test]
    fn allowances_follow_the_specification() {
        assert_eq!(seven_day_allowance(4, &rolling(WEEK)), 4);
        assert_eq!(seven_day_allowance(1, &rolling(86_400)), 7);
        // ⌈7d / 2d⌉ = 4: sends at t-6d, t-4d, t-2d and t fit in (t-7d, t].
        assert_eq!(seven_day_allowance(1, &rolling(2 * 86_400)), 4);
        assert_eq!(seven_day_allowance(2, &rolling(30 * 86_400)), 2);
        assert_eq!(seven_day_allowance(1, &rolling(90 * 60)), 112);
        assert_eq!(seven_day_allowance(3, &WindowKind::Day), 27);
        assert_eq!(seven_day_allowance(2, &WindowKind::Week), 6);
        assert_eq!(
            seven_day_allowance(u32::MAX, &rolling(1)),
            u64::from(u32::MAX) * WEEK
        );
    }
}
