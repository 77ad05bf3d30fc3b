//! Per-profile state. Everything here is plain data with serde, so the durable
//! store can save and reload it.

use crate::interp::Aggregates;
use crate::ir::{AggregateKind, Program, Value};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's id (the same text as its key in the engine's table).
    #[serde(skip)]
    pub id: super::ProfileId,
    pub attrs: Vec<Value>,
    /// The time zone named by the `timezone` attribute (UTC when absent), kept in
    /// step with it so that it is not parsed on every use.
    pub tz: chrono_tz::Tz,
    /// Granted or not, per consent topic.
    pub consents: Vec<bool>,
    /// (1.1) When each topic was last granted or revoked by the input, if ever
    /// (for explanations).
    pub consent_changed: Vec<Option<i64>>,
    pub aggregates: Vec<AggregateState>,
    /// Sends, oldest first, kept as long as the longest cap needs (sends of
    /// transactional journeys are not kept: no cap counts them).
    pub sends: VecDeque<Sent>,
    pub journeys: Vec<JourneyState>,
    /// (1.1) Inactivity timers and goal windows, when the profile has any
    /// (boxed: most profiles of most programs have none, and profiles are
    /// scanned on every event, so they are kept small).
    pub watches: Option<Box<Watches>>,
    /// When the profile was last used (the engine's counter), for eviction.
    #[serde(skip)]
    pub touched: u64,
}

impl Profile {
    pub fn new(program: &Program) -> Profile {
        let attrs: Vec<Value> = program.attrs.iter().map(|a| a.default.clone()).collect();
        Profile {
            id: super::ProfileId::default(),
            tz: zone_of(program, &attrs),
            attrs,
            consents: program
                .consents
                .iter()
                .map(|c| c.granted_by_default)
                .collect(),
            consent_changed: vec![None; program.consents.len()],
            aggregates: program
                .aggregates
                .iter()
                .map(|a| AggregateState::new(a.kind))
                .collect(),
            sends: VecDeque::new(),
            journeys: vec![JourneyState::default(); program.journeys.len()],
            watches: None,
            touched: 0,
        }
    }
}

/// The zone named by the `timezone` attribute in `attrs`, or UTC.
pub fn zone_of(program: &Program, attrs: &[Value]) -> chrono_tz::Tz {
    program
        .timezone_attr
        .and_then(|i| attrs.get(i))
        .and_then(|v| match v {
            Value::Str(s) => s.parse().ok(),
            _ => None,
        })
        .unwrap_or(chrono_tz::Tz::UTC)
}

/// (1.1) What a profile waits for besides its instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Watches {
    /// Per journey (by index), when its trigger timer (`when no … for`) is
    /// due, if it is pending.
    pub trigger_timers: Vec<Option<i64>>,
    /// Open goal windows, in order of entry.
    pub goals: Vec<GoalWindow>,
}

impl Profile {
    /// When journey `j`'s trigger timer is due, if it is pending.
    pub fn trigger_timer(&self, j: usize) -> Option<i64> {
        self.watches
            .as_ref()?
            .trigger_timers
            .get(j)
            .copied()
            .flatten()
    }

    /// Journey `j`'s trigger timer, to set or clear.
    pub fn trigger_timer_mut(&mut self, j: usize) -> &mut Option<i64> {
        let timers = &mut self.watches.get_or_insert_with(Box::default).trigger_timers;
        if timers.len() <= j {
            timers.resize(j + 1, None);
        }
        &mut timers[j]
    }

    /// The open goal windows, oldest entry first.
    pub fn goals(&self) -> &[GoalWindow] {
        self.watches.as_ref().map_or(&[], |w| w.goals.as_slice())
    }

    /// The open goal windows, to add to or close.
    pub fn goals_mut(&mut self) -> &mut Vec<GoalWindow> {
        &mut self.watches.get_or_insert_with(Box::default).goals
    }
}

/// A send the caps count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub at: i64,
    pub channel: u32,
    /// The sending journey (its index in the program).
    pub journey: u32,
}

/// (1.1) An instance's goal window (§7.6): open from its entry until the
/// journey's longest `goal … within` has passed, or until it converts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalWindow {
    pub journey: u32,
    /// The instance's number.
    pub number: u32,
    pub entered: i64,
    /// The arm of its first split, once it passed one.
    pub arm: Option<Box<str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AggregateState {
    /// Matching events (time, value) in time order, within the window, and the
    /// running sum of their values (floating point, like every number in Nudge).
    Window {
        entries: VecDeque<(i64, f64)>,
        total: f64,
    },
    /// The latest matching event, for `since`.
    Latest(Option<i64>),
}

impl AggregateState {
    /// The state of an aggregate of this kind that has seen nothing.
    pub fn new(kind: AggregateKind) -> AggregateState {
        match kind {
            AggregateKind::Since => AggregateState::Latest(None),
            _ => AggregateState::Window {
                entries: VecDeque::new(),
                total: 0.0,
            },
        }
    }

    /// Records a matching event at its own time (late events included).
    pub fn record(&mut self, at: i64, value: f64) {
        match self {
            AggregateState::Window { entries, total } => {
                let pos = entries
                    .iter()
                    .rposition(|(t, _)| *t <= at)
                    .map_or(0, |p| p + 1);
                entries.insert(pos, (at, value));
                if pos + 1 == entries.len() {
                    *total += value;
                } else {
                    *total = entries.iter().map(|(_, v)| v).sum();
                }
            }
            AggregateState::Latest(latest) => *latest = Some(latest.map_or(at, |l| l.max(at))),
        }
    }

    /// Forgets entries that no window ending at or after `now` can contain.
    pub fn prune(&mut self, now: i64, window: Option<i64>) {
        if let (AggregateState::Window { entries, total }, Some(w)) = (self, window) {
            let horizon = now.saturating_sub(w);
            while let Some(&(t, v)) = entries.front() {
                if t > horizon {
                    break;
                }
                entries.pop_front();
                *total -= v;
            }
            if entries.is_empty() {
                // Start again from an exact zero, whatever rounding accumulated.
                *total = 0.0;
            }
        }
    }
}

impl Aggregates for Profile {
    fn value(&self, program: &Program, index: usize, now: i64) -> Value {
        let (Some(def), Some(state)) = (program.aggregates.get(index), self.aggregates.get(index))
        else {
            return Value::None;
        };
        match state {
            AggregateState::Latest(latest) => {
                latest.map_or(Value::None, |l| Value::Duration(now.saturating_sub(l)))
            }
            AggregateState::Window { entries, .. } if def.kind == AggregateKind::BestTime => {
                let from = now.saturating_sub(def.window.unwrap_or(i64::MAX));
                best_hour(
                    self.tz,
                    entries
                        .iter()
                        .filter(|(t, _)| *t > from && *t <= now)
                        .map(|(t, _)| *t),
                )
            }
            AggregateState::Window { entries, total } => {
                let from = now.saturating_sub(def.window.unwrap_or(i64::MAX));
                // Entries are never later than now; when none has left the window
                // since the last prune, the running total is the answer.
                if entries.front().is_none_or(|(t, _)| *t > from) {
                    return Value::Number(*total);
                }
                let sum: f64 = entries
                    .iter()
                    .filter(|(t, _)| *t > from && *t <= now)
                    .map(|(_, v)| *v)
                    .sum();
                Value::Number(sum)
            }
        }
    }
}

/// (1.1) `best_time`: the start of the local hour of day (in `tz`, the
/// profile's current zone) with the most of these instants; ties go to the
/// earliest hour; `none` when there are none.
fn best_hour(tz: chrono_tz::Tz, instants: impl Iterator<Item = i64>) -> Value {
    use chrono::{TimeZone, Timelike};
    let mut hours = [0u64; 24];
    for t in instants {
        let hour = tz.timestamp_nanos(t).hour() as usize;
        if let Some(h) = hours.get_mut(hour) {
            *h += 1;
        }
    }
    let mut best: Option<(usize, u64)> = None;
    for (hour, &n) in hours.iter().enumerate() {
        if n > 0 && best.is_none_or(|(_, m)| n > m) {
            best = Some((hour, n));
        }
    }
    match best {
        Some((hour, _)) => Value::Duration(hour as i64 * 60 * crate::ir::NANOS_PER_MINUTE),
        None => Value::None,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JourneyState {
    /// How many instances this profile has started.
    pub entries: u32,
    pub last_entry: Option<i64>,
    /// Boxed: most journeys of most profiles are idle, and their states are
    /// scanned on every event, so they are kept small and close together.
    pub active: Option<Box<Instance>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    /// 1 for the profile's first instance of the journey, and so on.
    pub number: u32,
    /// The trigger event's properties (`trigger.`).
    pub trigger: Vec<Value>,
    /// The instruction to run next.
    pub pc: usize,
    /// When its pending timer fires, if it waits.
    pub timer: Option<i64>,
    /// (1.1) The arm of its first split, once it passed one.
    pub arm: Option<Box<str>>,
    /// (1.1) It waits in the `wait up to … for` at `pc`: an event resumes it,
    /// its timer times it out.
    pub waits_for: bool,
}
