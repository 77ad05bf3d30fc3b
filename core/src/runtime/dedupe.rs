//! Deduplication (LANGUAGE.md §7.3 step 1): the `messageId`s seen within
//! [`super::DEDUPE_WINDOW`] of event time, by digest.
//!
//! Promise: a message id seen within the window has no effect at all a second
//! time; memory holds only the ids the window still reaches. With a store that
//! pages them (`--max-profiles-in-memory`), memory holds only the ids seen
//! since the last commit, and an id not among them is looked up in the store.

use super::*;

impl Core {
    /// Remembers a message id seen at `now`; false if it was seen less than a
    /// deduplication window before.
    pub(super) fn remember(&mut self, now: i64, digest: u128) -> bool {
        if self.seen_paged
            && !self.seen.contains_key(&digest)
            && let Some(at) = self.stored_seen(digest)
        {
            self.seen.insert(digest, at);
        }
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

    /// Whether `digest` was seen less than a window before `now` (in memory,
    /// or with ids paged out, in the store).
    pub(super) fn seen_recently(&mut self, now: i64, digest: u128) -> bool {
        let at = match self.seen.get(&digest) {
            Some(at) => Some(*at),
            None if self.seen_paged => self.stored_seen(digest),
            None => None,
        };
        at.is_some_and(|at| now.saturating_sub(at) < DEDUPE_WINDOW)
    }

    /// When the store last saw `digest` (as of its last commit); the last
    /// answer is kept, as a line's id is asked for twice (firing, then
    /// processing).
    fn stored_seen(&mut self, digest: u128) -> Option<i64> {
        if let Some((d, at)) = self.seen_asked
            && d == digest
        {
            return at;
        }
        let at = self.loader.as_mut().and_then(|l| l.seen_at(digest));
        self.seen_asked = Some((digest, at));
        at
    }

    /// Right after a commit (every id seen is in the store): the ids are left
    /// to the store.
    pub(super) fn page_out_seen(&mut self) {
        if !self.seen_added.is_empty() {
            return;
        }
        self.seen.clear();
        self.seen.shrink_to(0);
        self.seen_asked = None;
        self.seen_paged = true;
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
