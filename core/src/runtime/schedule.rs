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
    track: bool,
}

/// An occurrence being fired: its zone's members after `cursor`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stream {
    pub journey: usize,
    zone: &'static str,
    cursor: Option<ProfileId>,
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
    }

    /// Members restored from a store, the clock at which it was written.
    pub fn restore(&mut self, members: impl IntoIterator<Item = (ProfileId, Tz)>, clock: i64) {
        let track = std::mem::replace(&mut self.track, false);
        for (id, tz) in members {
            self.join(&id, tz, clock);
        }
        self.track = track;
    }

    /// The profiles that joined a zone since the last call.
    pub fn take_changed(&mut self) -> Vec<(ProfileId, &'static str)> {
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
            streams.push(Stream {
                journey: j,
                zone,
                cursor: None,
            });
        }
        streams
    }

    /// The next (profile, journey) of the streams, in (profile, journey)
    /// order, without taking it.
    pub fn peek(&self, streams: &[Stream]) -> Option<(ProfileId, usize, usize)> {
        streams
            .iter()
            .enumerate()
            .filter_map(|(k, s)| {
                let (_, members) = self.members.get(s.zone)?;
                let next = match &s.cursor {
                    None => members.iter().next(),
                    Some(c) => members
                        .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                        .next(),
                }?;
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
        Some(Stream {
            journey: *journey,
            zone,
            cursor: cursor.as_deref().map(ProfileId::new),
        })
    }

    /// Pending occurrences (for `--stats`).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
