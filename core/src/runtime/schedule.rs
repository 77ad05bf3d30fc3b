//! (1.1) Scheduled triggers (`when at DATE HH:MM`, `when every DAYS at HH:MM`,
//! LANGUAGE.md §6 and §7.2), held per time zone rather than per profile.
//!
//! A schedule fires for every profile already seen, at a local time in each
//! profile's zone. Profiles in one zone share every occurrence, so what is
//! pending is one entry per (journey, zone): the next instant it fires there.
//! The profiles themselves are kept once, by zone, in id order; when an
//! occurrence is due its zone's members are fired in that order, merged with
//! the timers due at the same instant, so §7.3's order (time, profile,
//! priority, name) holds without a timer per profile per occurrence.
//!
//! Memory: one member entry per profile seen (its id, in its zone's set) and
//! one pending entry per scheduled journey and zone; nothing per occurrence.
//! With a store that pages them (`--max-profiles-in-memory`), the members
//! committed are left to the store after each commit ([`Schedules::page_out`])
//! and an occurrence reads them back in id order, a page at a time, merged
//! with those that joined since.

use crate::ir::{Days, Program, Trigger};
use crate::runtime::id::ProfileId;
use crate::runtime::time;
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub(super) struct Schedules {
    /// The scheduled journeys, with their days and local time.
    journeys: Vec<(usize, Days, u16)>,
    /// Every profile seen, by its current zone (kept only when some journey is
    /// scheduled). A zone, once it had a member, stays (its occurrences go on).
    members: BTreeMap<&'static str, (Tz, BTreeSet<ProfileId>)>,
    /// The next occurrence of each scheduled journey in each zone with
    /// members: (instant, journey, zone).
    pending: BTreeSet<(i64, usize, &'static str)>,
    /// Profiles that joined a zone since the last [`Schedules::take_changed`],
    /// for a durable store (only when `track`).
    changed: Vec<(ProfileId, &'static str)>,
    /// Profiles that left a zone since the last [`Schedules::take_changed`]:
    /// the store still lists them there until the next commit.
    left: BTreeSet<(&'static str, ProfileId)>,
    track: bool,
    /// Members committed are in the store, not (all) in memory.
    paged: bool,
}

/// An occurrence being fired: its zone's members after `cursor`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stream {
    pub journey: usize,
    zone: &'static str,
    cursor: Option<ProfileId>,
    /// With members paged out: the next ones the store lists after `cursor`
    /// (in order), and whether the store has none after them.
    page: std::collections::VecDeque<ProfileId>,
    page_done: bool,
}

impl Stream {
    fn new(journey: usize, zone: &'static str, cursor: Option<ProfileId>) -> Stream {
        Stream {
            journey,
            zone,
            cursor,
            page: std::collections::VecDeque::new(),
            page_done: false,
        }
    }
}

impl Schedules {
    pub fn new(program: &Program) -> Schedules {
        let journeys = program
            .journeys
            .iter()
            .enumerate()
            .filter_map(|(j, journey)| match journey.trigger {
                Trigger::Schedule { days, minutes } => Some((j, days, minutes)),
                _ => None,
            })
            .collect();
        Schedules {
            journeys,
            ..Schedules::default()
        }
    }

    /// Records membership changes for a durable store.
    pub fn track_changes(&mut self) {
        self.track = true;
    }

    /// A profile seen at `now` is (now) in zone `tz`. A zone's first member
    /// schedules the zone's next occurrence of every scheduled journey, after
    /// `now`: a profile first seen after an occurrence does not get it.
    pub fn join(&mut self, id: &ProfileId, tz: Tz, now: i64) {
        if self.journeys.is_empty() {
            return;
        }
        let zone = tz.name();
        let (_, members) = match self.members.entry(zone) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                for &(j, days, minutes) in &self.journeys {
                    if let Some(at) = time::next_occurrence(tz, now, days, minutes) {
                        self.pending.insert((at, j, zone));
                    }
                }
                e.insert((tz, BTreeSet::new()))
            }
        };
        if members.insert(id.clone()) && self.track {
            self.changed.push((id.clone(), zone));
        }
    }

    /// A profile left zone `tz` (its `timezone` changed).
    pub fn leave(&mut self, id: &ProfileId, tz: Tz) {
        if let Some((_, members)) = self.members.get_mut(tz.name()) {
            members.remove(id);
        }
        if self.track && self.paged {
            self.left.insert((tz.name(), id.clone()));
        }
    }

    /// Right after a commit (every membership change is in the store): the
    /// members are left to the store, zones and pending occurrences kept.
    pub fn page_out(&mut self) {
        if !self.changed.is_empty() || self.journeys.is_empty() {
            return;
        }
        for (_, members) in self.members.values_mut() {
            members.clear();
        }
        self.paged = true;
    }

    /// Whether members are read back from the store.
    pub fn paged(&self) -> bool {
        self.paged
    }

    /// Drops what the streams had read ahead from the store (it may be
    /// older than what memory held when the members were paged out).
    pub fn forget_pages(streams: &mut [Stream]) {
        for s in streams {
            s.page.clear();
            s.page_done = false;
        }
    }

    /// Tops up `stream`'s read-ahead with `read(zone, after)`, at most `page`
    /// of the store's members of `zone` after `after`, in order (`None`: it
    /// cannot tell, and nothing more is read), past what is stale.
    pub fn fill_page(
        &self,
        stream: &mut Stream,
        mut read: impl FnMut(&str, Option<&str>) -> Option<Vec<String>>,
        page: usize,
    ) {
        if !self.paged {
            return;
        }
        loop {
            while let Some(front) = stream.page.front() {
                let stale = stream.cursor.as_ref().is_some_and(|c| front <= c)
                    || self.left.contains(&(stream.zone, front.clone()));
                if !stale {
                    return;
                }
                stream.page.pop_front();
            }
            if stream.page_done {
                return;
            }
            let after = stream.cursor.as_ref().map(|c| c.as_str().to_string());
            let Some(rows) = read(stream.zone, after.as_deref()) else {
                stream.page_done = true;
                return;
            };
            stream.page_done = rows.len() < page;
            stream.page.extend(rows.iter().map(|id| ProfileId::new(id)));
        }
    }

    /// Members restored from a store, the clock at which it was written.
    pub fn restore(&mut self, members: impl IntoIterator<Item = (ProfileId, Tz)>, clock: i64) {
        let track = std::mem::replace(&mut self.track, false);
        for (id, tz) in members {
            self.join(&id, tz, clock);
        }
        self.track = track;
    }

    /// The profiles that joined a zone since the last call (a commit writes
    /// them: what left a zone is then gone from the store's list too).
    pub fn take_changed(&mut self) -> Vec<(ProfileId, &'static str)> {
        self.left.clear();
        std::mem::take(&mut self.changed)
    }

    /// When the next occurrence is due, counting recurring ones (`every`)
    /// only up to `recurring_until` (they never run out, §7.2).
    pub fn next_due(&self, recurring_until: i64) -> Option<i64> {
        self.pending
            .iter()
            .find(|(at, j, _)| *at <= recurring_until || self.is_once(*j))
            .map(|(at, _, _)| *at)
    }

    fn is_once(&self, journey: usize) -> bool {
        self.journeys
            .iter()
            .any(|(j, days, _)| *j == journey && matches!(days, Days::Once { .. }))
    }

    /// Takes the occurrences due at exactly `at` (recurring ones only up to
    /// `recurring_until`) as streams to fire, and schedules the next
    /// occurrence of each recurring one.
    pub fn start(&mut self, at: i64, recurring_until: i64) -> Vec<Stream> {
        let due: Vec<(i64, usize, &'static str)> = self
            .pending
            .range((at, 0, "")..)
            .take_while(|(t, _, _)| *t == at)
            .filter(|(t, j, _)| *t <= recurring_until || self.is_once(*j))
            .copied()
            .collect();
        let mut streams = Vec::with_capacity(due.len());
        for entry in due {
            self.pending.remove(&entry);
            let (_, j, zone) = entry;
            let next = self
                .journeys
                .iter()
                .find(|(x, _, _)| *x == j)
                .zip(self.members.get(zone))
                .and_then(|(&(_, days, minutes), (tz, _))| {
                    time::next_occurrence(*tz, at, days, minutes)
                });
            if let Some(next) = next {
                self.pending.insert((next, j, zone));
            }
            streams.push(Stream::new(j, zone, None));
        }
        streams
    }

    /// The next (profile, journey) of the streams, in (profile, journey)
    /// order, without taking it: the next member in memory or (paged) in the
    /// stream's read-ahead from the store, whichever comes first.
    pub fn peek(&self, streams: &[Stream]) -> Option<(ProfileId, usize, usize)> {
        streams
            .iter()
            .enumerate()
            .filter_map(|(k, s)| {
                let (_, members) = self.members.get(s.zone)?;
                let held = match &s.cursor {
                    None => members.iter().next(),
                    Some(c) => members
                        .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                        .next(),
                };
                let stored = s.page.front();
                let next = match (held, stored) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b)?,
                };
                Some((next.clone(), s.journey, k))
            })
            .min()
    }

    /// Moves stream `k` past `id`.
    pub fn advance(streams: &mut [Stream], k: usize, id: ProfileId) {
        if let Some(s) = streams.get_mut(k) {
            s.cursor = Some(id);
        }
    }

    /// A stream as a store keeps it: (journey, zone, the last member fired).
    pub fn save(stream: &Stream) -> (usize, String, Option<String>) {
        (
            stream.journey,
            stream.zone.to_string(),
            stream.cursor.as_ref().map(|c| c.as_str().to_string()),
        )
    }

    /// A stream a store kept, if its journey is still scheduled and its zone
    /// is one this build knows.
    pub fn load(
        &self,
        (journey, zone, cursor): &(usize, String, Option<String>),
    ) -> Option<Stream> {
        self.journeys.iter().find(|(j, _, _)| j == journey)?;
        let zone = zone.parse::<Tz>().ok()?.name();
        Some(Stream::new(
            *journey,
            zone,
            cursor.as_deref().map(ProfileId::new),
        ))
    }

    /// Pending occurrences (for `--stats`).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
