//! (1.1) A stored profile carried over to an upgraded program (LANGUAGE.md
//! §7.7), by the [`Plan`] that [`crate::ir::upgrade::merge`] made.
//!
//! Promise: total. Every profile, however it was written, gives a profile
//! whose every vector has the merged program's lengths; what has no place in
//! the merged program is dropped, and what is new starts as a new profile's.

use super::state::{AggregateState, GoalWindow, JourneyState, Profile, Sent, Watches, zone_of};
use crate::ir::upgrade::{GONE, Plan, Target, TriggerTimer};
use crate::ir::{Program, Value};

/// A profile after the upgrade, and what the upgrade did to it.
#[derive(Debug)]
pub struct Migrated {
    pub profile: Profile,
    /// Attributes whose type changed, restarted at their default.
    pub attributes_reset: u64,
    /// Old journeys whose instance ended at the upgrade (`stop-removed`), in
    /// the old program's order: each is an `exited` decision.
    pub stopped: Vec<usize>,
}

/// Carries `p`, stored under `old`, over to `merged` by `plan`, at `clock`
/// (the store's clock: a new inactivity timer counts from it).
pub fn migrate(old: &Program, merged: &Program, plan: &Plan, p: Profile, clock: i64) -> Migrated {
    let mut attributes_reset = 0;
    let attrs: Vec<Value> = merged
        .attrs
        .iter()
        .zip(&plan.attrs)
        .map(|(a, from)| match from.and_then(|o| p.attrs.get(o)) {
            Some(v) => v.clone(),
            None => {
                let retyped = old.attrs.iter().any(|o| o.name == a.name);
                attributes_reset += u64::from(retyped);
                a.default.clone()
            }
        })
        .collect();
    let consents = merged
        .consents
        .iter()
        .zip(&plan.consents)
        .map(|(c, from)| {
            from.and_then(|o| p.consents.get(o).copied())
                .unwrap_or(c.granted_by_default)
        })
        .collect();
    let consent_changed = plan
        .consents
        .iter()
        .map(|from| from.and_then(|o| p.consent_changed.get(o).copied().flatten()))
        .collect();
    let aggregates = merged
        .aggregates
        .iter()
        .zip(&plan.aggregates)
        .map(|(a, from)| {
            let fresh = AggregateState::new(a.kind);
            match from.and_then(|o| p.aggregates.get(o)) {
                // The same kind of state (a window, or a latest time).
                Some(kept) if std::mem::discriminant(kept) == std::mem::discriminant(&fresh) => {
                    kept.clone()
                }
                _ => fresh,
            }
        })
        .collect();
    let sends = p
        .sends
        .iter()
        .map(|s| Sent {
            at: s.at,
            channel: index(&plan.channels, s.channel),
            journey: index(&plan.sends, s.journey),
        })
        .collect();

    let (journeys, stopped) = journeys(merged, plan, &p.journeys);
    let watches = watches(plan, p.watches.as_deref(), clock);
    let profile = Profile {
        id: p.id,
        tz: zone_of(merged, &attrs),
        attrs,
        consents,
        consent_changed,
        aggregates,
        sends,
        journeys,
        watches,
        touched: p.touched,
    };
    Migrated {
        profile,
        attributes_reset,
        stopped,
    }
}

/// The instances and entry history of the merged program's journeys, and
/// the old journeys whose instance stops.
fn journeys(
    merged: &Program,
    plan: &Plan,
    before: &[JourneyState],
) -> (Vec<JourneyState>, Vec<usize>) {
    let mut journeys = vec![JourneyState::default(); merged.journeys.len()];
    for (state, from) in journeys.iter_mut().zip(&plan.history) {
        if let Some(before) = from.and_then(|o| before.get(o)) {
            state.entries = before.entries;
            state.last_entry = before.last_entry;
        }
    }
    let mut stopped = Vec::new();
    for (j, before) in before.iter().enumerate() {
        let Some(instance) = &before.active else {
            continue;
        };
        match plan.journeys.get(j) {
            Some(Target::Same(n)) => {
                let mut instance = instance.clone();
                if let Some(slots) = plan.snapshots.get(j) {
                    instance.trigger = slots
                        .iter()
                        .map(|slot| {
                            slot.and_then(|s| instance.trigger.get(s).cloned())
                                .unwrap_or(Value::None)
                        })
                        .collect();
                }
                if let Some(state) = journeys.get_mut(*n) {
                    state.active = Some(instance);
                }
            }
            Some(Target::Retired(r)) => {
                if let Some(state) = journeys.get_mut(*r) {
                    state.active = Some(instance.clone());
                }
            }
            Some(Target::Stop) => stopped.push(j),
            Some(Target::Drop) | None => {}
        }
    }

    (journeys, stopped)
}

/// The inactivity timers and goal windows, by the plan.
fn watches(plan: &Plan, watches: Option<&Watches>, clock: i64) -> Option<Box<Watches>> {
    let trigger_timers: Vec<Option<i64>> = plan
        .trigger_timers
        .iter()
        .map(|t| match *t {
            TriggerTimer::None => None,
            TriggerTimer::Keep { from, shift } => watches
                .and_then(|w| w.trigger_timers.get(from).copied().flatten())
                .map(|due| due.saturating_add(shift)),
            TriggerTimer::Start { after } => Some(clock.saturating_add(after)),
        })
        .collect();
    let goals: Vec<GoalWindow> = watches
        .map_or(&[][..], |w| w.goals.as_slice())
        .iter()
        .filter_map(|w| {
            let journey = match plan.journeys.get(w.journey as usize)? {
                Target::Same(n) | Target::Retired(n) => *n,
                Target::Stop | Target::Drop => return None,
            };
            Some(GoalWindow {
                journey: journey as u32,
                ..w.clone()
            })
        })
        .collect();
    (trigger_timers.iter().any(Option::is_some) || !goals.is_empty()).then(|| {
        Box::new(Watches {
            trigger_timers,
            goals,
        })
    })
}

/// Old index `i` through `map`, as a stored `u32` ([`GONE`] stays gone).
fn index(map: &[usize], i: u32) -> u32 {
    match map.get(i as usize) {
        Some(&m) if m != GONE => u32::try_from(m).unwrap_or(u32::MAX),
        _ => u32::MAX,
    }
}

/// A profile's pending timers, as the store keeps them: (slot, when).
pub fn timers(profile: &Profile) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    for (j, state) in profile.journeys.iter().enumerate() {
        if let Some(at) = state.active.as_ref().and_then(|i| i.timer) {
            out.push((super::slot(j, false), at));
        }
        if let Some(at) = profile.trigger_timer(j) {
            out.push((super::slot(j, true), at));
        }
    }
    out
}
