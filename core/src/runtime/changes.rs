//! Change tracking for a durable store: the profiles, timers, message ids and
//! zones changed since the last commit ([`Engine::take_changes`]).
//!
//! Promise: nothing is recorded unless a store asked for it
//! ([`Engine::track_changes`]); what is reported is exactly what changed, each
//! profile and timer once.

use super::*;

/// The state changed since the last call to [`Engine::take_changes`]; the
/// profiles are the engine's own (borrowed while the store writes them).
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub profiles: Vec<(ProfileId, &'a Profile)>,
    /// Pending timers set, fired or cancelled: (profile, timer slot (see
    /// [`slot_journey`]), when it now fires, if it still waits).
    pub timers: Vec<(ProfileId, usize, Option<i64>)>,
    pub seen_added: Vec<(i64, u128)>,
    pub clock: Option<i64>,
    /// (1.1) Profiles that joined a time zone's schedule members: (profile,
    /// zone name). Only when some journey is scheduled.
    pub zones: Vec<(ProfileId, &'static str)>,
    /// A firing paused mid-instant, to resume after a restart.
    pub paused: Option<Paused>,
}

impl Engine {
    /// Starts recording what changes, for [`Engine::take_changes`].
    pub fn track_changes(&mut self) {
        self.core.track_changes = true;
        self.core.schedules.track_changes();
    }

    /// The profiles and message ids changed since the last call (since
    /// [`Engine::track_changes`]), and the clock.
    pub fn take_changes(&mut self) -> Changes<'_> {
        // Profiles that changed, with their pending timers.
        let mut ids: Vec<ProfileId> = self.core.dirty.drain().collect();
        ids.sort_unstable();
        let profiles = &self.profiles;
        let mut timers: Vec<(ProfileId, usize)> = self.core.timers_changed.drain().collect();
        timers.sort_unstable();
        Changes {
            timers: timers
                .into_iter()
                .map(|(id, slot)| {
                    let (j, trigger) = slot_journey(slot);
                    let at = profiles.get(&IdRef(&id)).and_then(|p| {
                        if trigger {
                            p.trigger_timer(j)
                        } else {
                            p.journeys.get(j)?.active.as_ref()?.timer
                        }
                    });
                    (id, slot, at)
                })
                .collect(),
            profiles: ids
                .into_iter()
                .filter_map(|id| {
                    let profile = profiles.get(&IdRef(&id))?;
                    Some((id, profile))
                })
                .collect(),
            seen_added: std::mem::take(&mut self.core.seen_added),
            clock: self.core.clock,
            zones: self.core.schedules.take_changed(),
            paused: self.core.firing.as_ref().map(|f| Paused {
                at: f.at,
                streams: f.streams.iter().map(schedule::Schedules::save).collect(),
            }),
        }
    }
}

impl Core {
    /// Notes, for a store, that a pending timer was set, fired or cancelled.
    pub(super) fn timer_changed(&mut self, id: &ProfileId, slot: usize) {
        if self.track_changes {
            self.timers_changed.insert((id.clone(), slot));
        }
    }
}
