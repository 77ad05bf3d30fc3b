//! Timers (LANGUAGE.md §7.3 step 2): the pending set, ordered by (fire time,
//! profile id, priority, journey name) through its slots, and firing what is
//! due — instance timers (a wait, a deferral, a `wait up to` timeout), trigger
//! timers (`when no … for`) and scheduled occurrences merged in that order.
//!
//! Promise: a timer fires once, at its own time, in §7.3's order; draining
//! and advancing go one instant at a time, so a store can commit between them.

use super::*;

/// A timer's place in the timer set: journey `j`'s instance timer (a wait, a
/// deferral) or its trigger timer (`when no … for`).
pub(super) fn slot(journey: usize, trigger: bool) -> usize {
    journey * 2 + usize::from(trigger)
}

/// The journey of a timer slot, and whether it is a trigger timer.
pub fn slot_journey(slot: usize) -> (usize, bool) {
    (slot / 2, slot % 2 == 1)
}

impl Engine {
    /// Fires pending timers in time order until none is left (`--drain`).
    /// (1.1) Occurrences of recurring schedules never run out, so none later
    /// than the clock is fired (§7.2); one-off ones (`when at`) are.
    pub fn drain(&mut self, out: &mut Vec<Decision>) {
        while self.drain_step(out) {}
    }

    /// One step of [`Engine::drain`]: fires everything due at the next
    /// instant; false once nothing is left. Between steps a store may commit
    /// and evict, so that draining holds no more profiles than reading does.
    /// (A run resumed mid-drain restores the clock of its last commit and
    /// computes schedules' occurrences after it, so it fires exactly what the
    /// uninterrupted drain would.)
    pub fn drain_step(&mut self, out: &mut Vec<Decision>) -> bool {
        let recurring_until = self.core.clock.unwrap_or(i64::MIN);
        let recurring_until = *self.core.drain_until.get_or_insert(recurring_until);
        self.core.page_in_timers();
        let Some(at) = self.core.next_due(recurring_until) else {
            return false;
        };
        if !self.fire_timers(at, recurring_until, true, out) {
            return true;
        }
        if self.core.clock.is_none_or(|c| c < at) {
            self.core.clock = Some(at);
        }
        true
    }

    /// One step of `--until`: fires everything due at the next instant up to
    /// `until`; false (with the clock at `until`) once none is.
    pub fn advance_step(&mut self, until: i64, out: &mut Vec<Decision>) -> bool {
        self.core.page_in_timers();
        match self.core.next_due(until).filter(|at| *at <= until) {
            Some(at) => {
                if !self.fire_timers(at, at, true, out) {
                    return true;
                }
                if self.core.clock.is_none_or(|c| c < at) {
                    self.core.clock = Some(at);
                }
                true
            }
            None => {
                if self.core.clock.is_none_or(|c| c < until) {
                    self.core.clock = Some(until);
                }
                false
            }
        }
    }

    /// When the earliest pending timer or schedule occurrence is due (recurring
    /// occurrences only up to `recurring_until`), or a paused instant's time;
    /// `None` when nothing waits. A live service (§7.2) asks it to decide
    /// whether a tick would fire anything (a service never pages timers out,
    /// see [`Engine::evict`], so what is in memory is every timer).
    pub fn next_due(&self, recurring_until: i64) -> Option<i64> {
        self.core.next_due(recurring_until)
    }

    /// Pending timers, and (1.1) pending schedule occurrences (one per
    /// scheduled journey and time zone).
    pub fn pending_timers(&self) -> usize {
        self.core.timers.len() + self.core.timers_paged + self.core.schedules.pending()
    }

    /// Fires what is due before a line at `timestamp` with this message id
    /// (§7.3 step 2), so that [`Engine::process`] finds nothing left to fire;
    /// false when it paused (see [`Engine::hold_at_most`]). A repeated message
    /// id fires nothing, as it has no effect at all.
    pub fn fire_due(
        &mut self,
        timestamp: i64,
        message_id: Option<&str>,
        out: &mut Vec<Decision>,
    ) -> bool {
        let now = self.core.clock.map_or(timestamp, |c| c.max(timestamp));
        if let Some(digest) = message_id.map(fnv1a_128)
            && self.core.seen_recently(now, digest)
        {
            return true;
        }
        self.fire_timers(now, now, true, out)
    }

    /// Fires the timers and schedule occurrences due at or before `until`
    /// (recurring occurrences only up to `recurring_until`), in §7.3's order,
    /// resuming a paused instant first; false when it paused again (only if
    /// `may_pause`, see [`Engine::hold_at_most`]).
    pub(super) fn fire_timers(
        &mut self,
        until: i64,
        recurring_until: i64,
        may_pause: bool,
        out: &mut Vec<Decision>,
    ) -> bool {
        let hold = self.core.hold.filter(|_| may_pause);
        let mut fired = 0;
        loop {
            let (at, mut streams) = match self.core.firing.take() {
                Some(firing) => (firing.at, firing.streams),
                None => match {
                    self.core.page_in_timers();
                    self.core.next_due(recurring_until)
                }
                .filter(|t| *t <= until)
                {
                    Some(at) => (at, self.core.schedules.start(at, recurring_until)),
                    None => return true,
                },
            };
            loop {
                if let Some((most, every)) = hold
                    && fired >= every
                    && self.profiles.len() > most
                {
                    // Everything before (at, the streams' cursors) is done:
                    // a commit now holds the clock at this instant.
                    self.core.firing = Some(Firing { at, streams });
                    if self.core.clock.is_none_or(|c| c < at) {
                        self.core.clock = Some(at);
                    }
                    return false;
                }
                fired += 1;
                let core = &mut self.core;
                if streams.is_empty() {
                    // No schedule is due at this instant: the timers alone.
                    if core.timers.first().is_none_or(|t| t.0 != at) {
                        break;
                    }
                    self.fire_timer(out);
                    continue;
                }
                let timer = core
                    .timers
                    .first()
                    .filter(|t| t.0 == at)
                    .map(|t| (t.1.clone(), t.2));
                core.fill_member_pages(&mut streams);
                let member = core.schedules.peek(&streams);
                match (timer, member) {
                    (Some((id, slot)), Some((m, j, k))) if (&m, 2 * j + 1) < (&id, slot) => {
                        schedule::Schedules::advance(&mut streams, k, m.clone());
                        self.fire_schedule(&m, j, at, out);
                    }
                    (Some(_), _) => self.fire_timer(out),
                    (None, Some((m, j, k))) => {
                        schedule::Schedules::advance(&mut streams, k, m.clone());
                        self.fire_schedule(&m, j, at, out);
                    }
                    (None, None) => break,
                }
            }
        }
    }

    /// (1.1) A scheduled journey's occurrence for one profile.
    pub(super) fn fire_schedule(
        &mut self,
        id: &str,
        journey: usize,
        at: i64,
        out: &mut Vec<Decision>,
    ) {
        let core = &mut self.core;
        if let Some(profile) = core.profile(&mut self.profiles, id, None) {
            core.try_enter(profile, journey, at, &[], out);
        }
    }

    /// Fires the first pending timer.
    pub(super) fn fire_timer(&mut self, out: &mut Vec<Decision>) {
        let core = &mut self.core;
        {
            let Some((at, id, slot)) = core.timers.pop_first() else {
                return;
            };
            core.timer_changed(&id, slot);
            // A timer belongs to a profile that exists.
            let Some(profile) = core.profile(&mut self.profiles, &id, None) else {
                return;
            };
            let (journey, trigger) = slot_journey(slot);
            if trigger {
                // (1.1) A quiet period ended: the journey may start, once; the
                // next of its events starts the next period.
                *profile.trigger_timer_mut(journey) = None;
                core.try_enter(profile, journey, at, &[], out);
                return;
            }
            let Some(instance) = instance_mut(profile, journey) else {
                return;
            };
            instance.timer = None;
            if std::mem::take(&mut instance.waits_for) {
                // (1.1) A `wait up to` timed out: go on in its `else`.
                let program = Arc::clone(&core.program);
                let code = program.journeys.get(journey).map(|j| j.code.as_slice());
                if let Some(Instr::WaitFor { on_timeout, .. }) =
                    code.and_then(|c| c.get(instance.pc))
                {
                    instance.pc = *on_timeout;
                }
            }
            core.run(profile, journey, at, out);
        }
    }
}

impl Core {
    /// Removes a pending timer; one paged out (not in memory) is one fewer in
    /// the store's count.
    pub(super) fn drop_timer(&mut self, at: i64, id: &ProfileId, slot: usize) {
        let removed = self.timers.remove(&(at, id.clone(), slot));
        if !removed && self.timers_until.is_some_and(|until| at > until) {
            self.timers_paged = self.timers_paged.saturating_sub(1);
        }
    }

    /// With timers paged out: brings back from the store those due next,
    /// until the first pending timer in memory is one whose instant is known
    /// complete (so that [`Core::next_due`] and firing see every timer due
    /// then). A timer changed since the last commit is in memory as it now
    /// is; the store's older row for it is skipped.
    pub(super) fn page_in_timers(&mut self) {
        let page = self.page_size.max(1);
        while let Some(until) = self.timers_until {
            if self.timers.first().is_some_and(|t| t.0 <= until) {
                return;
            }
            let rows = self
                .loader
                .as_mut()
                .and_then(|l| l.timers_after(until, page));
            let Some(last) = rows.as_ref().and_then(|r| r.last()).map(|r| r.0) else {
                // Nothing later in the store: every timer is in memory.
                self.timers_until = None;
                self.timers_paged = 0;
                return;
            };
            for (at, id, slot) in rows.into_iter().flatten() {
                let id = ProfileId::new(&id);
                if self.timers_changed.contains(&(id.clone(), slot)) {
                    continue;
                }
                if self.timers.insert((at, id, slot)) {
                    self.timers_paged = self.timers_paged.saturating_sub(1);
                }
            }
            self.timers_until = Some(last);
            self.note_timers();
        }
    }

    /// (1.1) With schedule members paged out: each stream's read-ahead of the
    /// store's members, topped up.
    pub(super) fn fill_member_pages(&mut self, streams: &mut [schedule::Stream]) {
        if !self.schedules.paged() {
            return;
        }
        let page = self.page_size.max(1);
        let Core {
            schedules, loader, ..
        } = self;
        for stream in streams {
            schedules.fill_page(
                stream,
                |zone, after| loader.as_mut()?.members_after(zone, after, page),
                page,
            );
        }
    }

    /// Keeps the peak of pending timers held in memory.
    fn note_timers(&mut self) {
        self.counters.peak_timers = self.counters.peak_timers.max(self.timers.len());
    }

    /// Right after a commit (nothing changed since, so the store holds every
    /// timer as memory does): keeps the first `keep` pending timers in memory,
    /// and whole instants, and leaves the later ones to the store.
    pub(super) fn page_out_timers(&mut self, keep: usize) {
        if self.timers.len() <= keep || !self.timers_changed.is_empty() {
            return;
        }
        let Some(last) = self.timers.iter().nth(keep.saturating_sub(1)).map(|t| t.0) else {
            return;
        };
        let Some(next) = last.checked_add(1) else {
            return;
        };
        self.page_size = keep;
        let later = self.timers.split_off(&(next, ProfileId::new(""), 0));
        self.timers_paged += later.len();
        self.timers_until = Some(self.timers_until.map_or(last, |u| u.min(last)));
    }

    /// When the next timer or schedule occurrence is due.
    pub(super) fn next_due(&self, recurring_until: i64) -> Option<i64> {
        if let Some(firing) = &self.firing {
            return Some(firing.at);
        }
        let timer = self.timers.first().map(|t| t.0);
        let occurrence = self.schedules.next_due(recurring_until);
        match (timer, occurrence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// (1.1) Sets journey `j`'s trigger timer (`when no … for`) to `at`.
    pub(super) fn set_trigger_timer(&mut self, profile: &mut Profile, j: usize, at: i64) {
        if let Some(old) = profile.trigger_timer_mut(j).replace(at) {
            self.drop_timer(old, &profile.id, slot(j, true));
        }
        self.timers.insert((at, profile.id.clone(), slot(j, true)));
        self.note_timers();
        self.timer_changed(&profile.id, slot(j, true));
    }

    /// Ends an active instance and cancels its timer.
    pub(super) fn end_instance(&mut self, profile: &mut Profile, journey: usize) {
        let instance = profile
            .journeys
            .get_mut(journey)
            .and_then(|state| state.active.take());
        if let Some(at) = instance.and_then(|i| i.timer) {
            self.drop_timer(at, &profile.id, slot(journey, false));
            self.timer_changed(&profile.id, slot(journey, false));
        }
    }

    pub(super) fn schedule(&mut self, profile: &mut Profile, journey: usize, at: i64) {
        if let Some(instance) = instance_mut(profile, journey) {
            instance.timer = Some(at);
            self.timers
                .insert((at, profile.id.clone(), slot(journey, false)));
            self.note_timers();
            self.timer_changed(&profile.id, slot(journey, false));
        }
    }
}
