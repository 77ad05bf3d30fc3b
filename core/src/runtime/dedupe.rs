//! Deduplication (LANGUAGE.md §7.3 step 1): the `messageId`s seen within
//! [`super::DEDUPE_WINDOW`] of event time, by digest.
//!
//! Promise: a message id seen within the window has no effect at all a second
//! time; memory holds only the ids the window still reaches.

use super::*;

impl Core {
    /// Remembers a message id seen at `now`; false if it was seen less than a
    /// deduplication window before.
    pub(super) fn remember(&mut self, now: i64, digest: u128) -> bool {
        match self.seen.entry(digest) {
            Entry::Occupied(entry) if now.saturating_sub(*entry.get()) < DEDUPE_WINDOW => {
                return false;
            }
            Entry::Occupied(mut entry) => {
                entry.insert(now);
            }
            Entry::Vacant(entry) => {
                entry.insert(now);
            }
        }
        if self.track_changes {
            self.seen_added.push((now, digest));
        }
        true
    }

    /// Forgets the message ids seen a window or more before `now`, when a sweep
    /// is due: memory holds at most a window and an eighth of ids.
    pub(super) fn forget_seen(&mut self, now: i64) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(DEDUPE_WINDOW / 8);
        self.seen
            .retain(|_, at| now.saturating_sub(*at) < DEDUPE_WINDOW);
    }
}
