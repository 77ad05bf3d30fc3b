//! Profiles in memory: read back from a store when an event or a timer needs
//! them ([`ProfileLoader`]), evicted after a commit, and the bound an instant
//! pauses at (`--max-profiles-in-memory`).
//!
//! Promise: a profile evicted is the profile loaded back; the engine holds at
//! most the bound it was given, between commits.

use super::*;

/// The source of profiles that are not in memory (evicted, or saved by an earlier
/// run). `None` means the profile has never been seen.
pub trait ProfileLoader {
    fn load(&mut self, id: &str) -> Option<Profile>;

    /// Whether the store can give the pending timers back in firing order
    /// ([`ProfileLoader::timers_after`]), schedule members by zone
    /// ([`ProfileLoader::members_after`]) and message ids
    /// ([`ProfileLoader::seen_at`]): then [`Engine::evict`] leaves them to
    /// it, as it does profiles.
    fn pages(&self) -> bool {
        false
    }

    /// The pending timers the store holds (as of its last commit) due after
    /// `after`, in firing order (time, profile, slot): at least `at_least`
    /// when there are as many, and every one due at the last one's instant;
    /// `None` when it cannot tell.
    fn timers_after(&mut self, _after: i64, _at_least: usize) -> Option<Vec<(i64, String, usize)>> {
        None
    }

    /// When the store (as of its last commit) saw the message id whose
    /// digest is `digest`, if it did within the deduplication window.
    fn seen_at(&mut self, _digest: u128) -> Option<i64> {
        None
    }

    /// (1.1) The profiles the store lists (as of its last commit) in a
    /// schedule's time zone `zone` after `after`, in id order: at most
    /// `limit`; `None` when it cannot tell.
    fn members_after(
        &mut self,
        _zone: &str,
        _after: Option<&str>,
        _limit: usize,
    ) -> Option<Vec<String>> {
        None
    }
}

impl Engine {
    pub fn profiles_held(&self) -> usize {
        self.profiles.len()
    }

    /// Attaches the source of profiles evicted from memory (the durable store).
    pub fn set_loader(&mut self, loader: Box<dyn ProfileLoader>) {
        self.core.loader = Some(loader);
    }

    /// Drops least recently used profiles from memory until at most `max` remain.
    /// Only profiles saved since their last change (not dirty) are dropped, so
    /// call it right after a commit; they come back through the loader. With
    /// a loader that pages timers, the pending timers beyond the first `max`
    /// (and the rest of that one's instant) are left to the store too, and
    /// read back, `max` at a time, in firing order as the clock reaches them.
    pub fn evict(&mut self, max: usize) {
        if self.core.loader.as_ref().is_some_and(|l| l.pages()) {
            self.core.page_out_timers(max.max(1));
            // (1.1) Schedule members too; a paused occurrence reads its
            // zones' members afresh.
            self.core.schedules.page_out();
            self.core.page_out_seen();
            if let Some(firing) = self.core.firing.as_mut() {
                schedule::Schedules::forget_pages(&mut firing.streams);
            }
        }
        if self.profiles.len() <= max {
            return;
        }
        let mut candidates: Vec<(u64, ProfileId)> = self
            .profiles
            .values()
            .filter(|p| !self.core.dirty.contains(&p.id))
            .map(|p| (p.touched, p.id.clone()))
            .collect();
        candidates.sort_unstable();
        let excess = self.profiles.len() - max;
        for (_, id) in candidates.into_iter().take(excess) {
            self.profiles.remove(&IdRef(&id));
        }
    }

    /// With a store: an instant whose timers and schedule occurrences load
    /// more than `profiles` profiles pauses after every `every` of them
    /// (with [`Engine::paused`] true), so that the caller can commit and evict
    /// before it goes on; the next call of [`Engine::fire_due`],
    /// [`Engine::drain_step`] or [`Engine::advance_step`] resumes it, as does
    /// a restart from that commit. Without it a weekly newsletter's
    /// occurrence holds every profile of its zone until the next commit.
    pub fn hold_at_most(&mut self, profiles: usize, every: usize) {
        self.core.hold = Some((profiles, every.max(1)));
    }

    /// Whether a firing paused (see [`Engine::hold_at_most`]): commit, evict
    /// and call again.
    pub fn paused(&self) -> bool {
        self.core.firing.is_some()
    }
}

impl Core {
    /// The profile `id`, from memory or the loader; a new one when `create`
    /// (the line's timestamp and the clock) and it has never been seen. Marks
    /// it used (and changed, for a store).
    pub(super) fn profile<'p>(
        &mut self,
        profiles: &'p mut Profiles,
        id: &str,
        create: Option<(i64, i64)>,
    ) -> Option<&'p mut Profile> {
        let held = profiles.len();
        let mut created = None;
        let profile = match profiles.entry_ref(&IdRef(id)) {
            hashbrown::hash_map::EntryRef::Occupied(entry) => entry.into_mut(),
            hashbrown::hash_map::EntryRef::Vacant(entry) => {
                let loaded = self.loader.as_mut().and_then(|l| l.load(id));
                let mut profile = match (loaded, create) {
                    (Some(p), _) => p,
                    (None, Some(at)) => {
                        created = Some(at);
                        Profile::new(&self.program)
                    }
                    (None, None) => return None,
                };
                profile.id = ProfileId::new(id);
                self.counters.peak_profiles = self.counters.peak_profiles.max(held + 1);
                entry.insert(profile)
            }
        };
        // (1.1) A new profile's quiet periods start with its first line, and
        // schedules run for it from now on.
        if let Some((timestamp, now)) = created {
            self.schedules.join(&profile.id, profile.tz, now);
            let program = Arc::clone(&self.program);
            for (j, journey) in program.journeys.iter().enumerate() {
                if let Trigger::Inactivity { after, .. } = journey.trigger {
                    self.set_trigger_timer(profile, j, timestamp.saturating_add(after).max(now));
                }
            }
        }
        self.tick += 1;
        profile.touched = self.tick;
        if self.track_changes && !self.dirty.contains(&profile.id) {
            self.dirty.insert(profile.id.clone());
        }
        Some(profile)
    }
}
