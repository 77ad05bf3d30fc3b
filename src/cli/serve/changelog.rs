//! The changelog of `nudge serve`: each input partition's engine state as
//! records of a compacted Kafka topic (the Kafka Streams pattern), so that a
//! partition moved to another process resumes where its last commit left it.
//!
//! A commit of partition `p` writes, to changelog partition `p`, one record per
//! changed key (a profile, a pending timer, a profile's time zone, a batch of
//! message ids; a tombstone for what is gone), then a *checkpoint* record (the
//! clock, a paused firing, the input offset to read next). The records before a
//! checkpoint take effect only with it: a crash between them leaves records
//! that restore discards. A process taking a partition over first writes a
//! *marker* (a nonce of its own) and reads the partition from its start up to
//! that marker, so it never depends on the broker's end-offset answer (wrong on
//! some brokers, NOTES.md). What a crashed owner left incomplete is discarded,
//! and the keys it touched are written again with their restored values in the
//! first commit (a *repair*), so that compaction, which keeps only the latest
//! record of each key, cannot later surface the discarded values.
//!
//! This module is pure: it encodes and folds records; `kafka/` moves them.

use crate::cli::store::Checkpoint;
use nudge::runtime::Changes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const CHECKPOINT: &[u8] = b"c";
const MARKER: &[u8] = b"m";
const PROFILE: u8 = b'p';
const TIMER: u8 = b't';
const ZONE: u8 = b'z';
const SEEN: u8 = b's';
/// (1.1) The lowered program the partition runs (postcard, as the store
/// records it): after an upgrade, the merged program (LANGUAGE.md §7.7).
const PROGRAM: u8 = b'P';
/// (1.1) An upgrade taken at an input offset (JSON), kept for the record.
const UPGRADE: u8 = b'U';

/// What a checkpoint record holds: the store's checkpoint (format, policy
/// fingerprint, clock, paused firing) and the next input offset to read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionCheckpoint {
    pub state: Checkpoint,
    /// The offset of the first input message not yet reflected in the state.
    pub offset: i64,
}

/// One changelog record: a key and its value, `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// The marker record a process writes when it takes a partition over.
pub fn marker(nonce: &[u8]) -> Record {
    Record {
        key: MARKER.to_vec(),
        value: Some(nonce.to_vec()),
    }
}

pub fn checkpoint(c: &PartitionCheckpoint) -> Result<Record, String> {
    let value = serde_json::to_vec(c).map_err(|e| format!("cannot encode a checkpoint: {e}"))?;
    Ok(Record {
        key: CHECKPOINT.to_vec(),
        value: Some(value),
    })
}

fn profile_key(id: &str) -> Vec<u8> {
    let mut key = vec![PROFILE];
    key.extend_from_slice(id.as_bytes());
    key
}

fn timer_key(id: &str, slot: u64) -> Vec<u8> {
    let mut key = vec![TIMER];
    key.extend_from_slice(&slot.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

fn zone_key(id: &str) -> Vec<u8> {
    let mut key = vec![ZONE];
    key.extend_from_slice(id.as_bytes());
    key
}

fn seen_key(latest: i64, number: u64) -> Vec<u8> {
    let mut key = vec![SEEN];
    key.extend_from_slice(&latest.to_be_bytes());
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// The state one partition's changelog holds: the latest value of each key,
/// as of the last complete commit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub profiles: BTreeMap<String, Vec<u8>>,
    /// (profile, timer slot) → when it fires.
    pub timers: BTreeMap<(String, u64), i64>,
    pub zones: BTreeMap<String, String>,
    /// (latest time in the batch, batch number) → packed (digest, time) pairs,
    /// as the store keeps them.
    pub seen: BTreeMap<(i64, u64), Vec<u8>>,
    pub checkpoint: Option<PartitionCheckpoint>,
    /// (1.1) The program the partition runs, encoded; `None` in a changelog
    /// written before it was recorded.
    pub program: Option<Vec<u8>>,
    /// (1.1) The upgrades the partition took, by the input offset each was
    /// taken at.
    pub upgrades: BTreeMap<i64, Vec<u8>>,
}

impl Snapshot {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        let damaged = || {
            format!(
                "a changelog record is not one this nudge writes (key {:?}): was the topic written by another program or a newer nudge?",
                String::from_utf8_lossy(key)
            )
        };
        let (&tag, rest) = key.split_first().ok_or_else(damaged)?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| damaged());
        match tag {
            PROFILE => {
                let id = text(rest)?;
                match value {
                    Some(v) => self.profiles.insert(id, v.to_vec()),
                    None => self.profiles.remove(&id),
                };
            }
            TIMER => {
                let (slot, id) = rest.split_at_checked(8).ok_or_else(damaged)?;
                let slot = u64::from_be_bytes(slot.try_into().map_err(|_| damaged())?);
                let id = text(id)?;
                match value {
                    Some(v) => {
                        let at = i64::from_le_bytes(v.try_into().map_err(|_| damaged())?);
                        self.timers.insert((id, slot), at)
                    }
                    None => self.timers.remove(&(id, slot)),
                };
            }
            ZONE => {
                let id = text(rest)?;
                match value {
                    Some(v) => self.zones.insert(id, text(v)?),
                    None => self.zones.remove(&id),
                };
            }
            SEEN => {
                let (latest, number) = rest.split_at_checked(8).ok_or_else(damaged)?;
                let latest = i64::from_be_bytes(latest.try_into().map_err(|_| damaged())?);
                let number = u64::from_be_bytes(number.try_into().map_err(|_| damaged())?);
                match value {
                    Some(v) => self.seen.insert((latest, number), v.to_vec()),
                    None => self.seen.remove(&(latest, number)),
                };
            }
            PROGRAM if rest.is_empty() => self.program = value.map(<[u8]>::to_vec),
            UPGRADE => {
                let offset = i64::from_be_bytes(rest.try_into().map_err(|_| damaged())?);
                match value {
                    Some(v) => self.upgrades.insert(offset, v.to_vec()),
                    None => self.upgrades.remove(&offset),
                };
            }
            _ => return Err(damaged()),
        }
        Ok(())
    }

    /// The record that sets `key` to its value in this snapshot (a tombstone
    /// when the snapshot has none).
    fn record_of(&self, key: &[u8]) -> Record {
        let value = match key.split_first() {
            Some((&PROFILE, rest)) => std::str::from_utf8(rest)
                .ok()
                .and_then(|id| self.profiles.get(id).cloned()),
            Some((&TIMER, rest)) => rest.split_at_checked(8).and_then(|(slot, id)| {
                let slot = u64::from_be_bytes(slot.try_into().ok()?);
                let id = std::str::from_utf8(id).ok()?;
                self.timers
                    .get(&(id.to_string(), slot))
                    .map(|at| at.to_le_bytes().to_vec())
            }),
            Some((&ZONE, rest)) => std::str::from_utf8(rest)
                .ok()
                .and_then(|id| self.zones.get(id).map(|z| z.as_bytes().to_vec())),
            Some((&SEEN, rest)) => rest.split_at_checked(8).and_then(|(latest, number)| {
                let latest = i64::from_be_bytes(latest.try_into().ok()?);
                let number = u64::from_be_bytes(number.try_into().ok()?);
                self.seen.get(&(latest, number)).cloned()
            }),
            Some((&PROGRAM, [])) => self.program.clone(),
            Some((&UPGRADE, rest)) => rest
                .try_into()
                .ok()
                .and_then(|b| self.upgrades.get(&i64::from_be_bytes(b)).cloned()),
            _ => None,
        };
        Record {
            key: key.to_vec(),
            value,
        }
    }
}

/// Reading one partition's changelog from its start up to our marker.
pub struct Restore {
    nonce: Vec<u8>,
    snapshot: Snapshot,
    /// Records since the last checkpoint: they take effect with the next one.
    pending: Vec<Record>,
    /// Keys last written by a commit that never completed (a crashed owner).
    discarded: BTreeSet<Vec<u8>>,
    done: bool,
}

/// What a restore found: the state, and the records that repair what a
/// crashed owner left incomplete (to be written in the first commit).
pub struct Restored {
    pub snapshot: Snapshot,
    pub repair: Vec<Record>,
}

impl Restore {
    pub fn new(nonce: &[u8]) -> Restore {
        Restore {
            nonce: nonce.to_vec(),
            snapshot: Snapshot::default(),
            pending: Vec::new(),
            discarded: BTreeSet::new(),
            done: false,
        }
    }

    /// Takes the next record of the partition; true once our marker was read
    /// (what follows it is not ours to read).
    pub fn feed(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<bool, String> {
        if self.done {
            return Ok(true);
        }
        if key == MARKER {
            // Whatever was pending when someone took the partition over never
            // completed: its owner stopped before the checkpoint.
            self.discarded.extend(self.pending.drain(..).map(|r| r.key));
            self.done = value == Some(self.nonce.as_slice());
            return Ok(self.done);
        }
        if key == CHECKPOINT {
            let value = value.ok_or("a changelog checkpoint was deleted (a tombstone)")?;
            let c: PartitionCheckpoint = serde_json::from_slice(value)
                .map_err(|e| format!("a changelog checkpoint is damaged: {e}"))?;
            for r in std::mem::take(&mut self.pending) {
                self.snapshot.apply(&r.key, r.value.as_deref())?;
                self.discarded.remove(&r.key);
            }
            self.snapshot.checkpoint = Some(c);
            return Ok(false);
        }
        self.pending.push(Record {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
        });
        Ok(false)
    }

    pub fn finish(mut self) -> Restored {
        self.discarded.extend(self.pending.drain(..).map(|r| r.key));
        let repair = self
            .discarded
            .iter()
            .map(|key| self.snapshot.record_of(key))
            .collect();
        Restored {
            snapshot: self.snapshot,
            repair,
        }
    }
}

/// (1.1) The record of the program a partition runs.
pub fn program(encoded: &[u8]) -> Record {
    Record {
        key: vec![PROGRAM],
        value: Some(encoded.to_vec()),
    }
}

/// (1.1) The record of an upgrade taken at input offset `offset`.
pub fn upgrade(offset: i64, record: &serde_json::Value) -> Record {
    let mut key = vec![UPGRADE];
    key.extend_from_slice(&offset.to_be_bytes());
    Record {
        key,
        value: Some(record.to_string().into_bytes()),
    }
}

/// (1.1) The records that replace a partition's profiles and timers with an
/// upgraded store's (LANGUAGE.md §7.7): every profile, every pending timer,
/// and a tombstone for each timer of `before` that is no longer pending.
pub fn upgraded(
    profiles: &[(String, Vec<u8>)],
    before: impl Iterator<Item = (String, u64)>,
    timers: &[((String, u64), i64)],
) -> Vec<Record> {
    let mut out: Vec<Record> = profiles
        .iter()
        .map(|(id, bytes)| Record {
            key: profile_key(id),
            value: Some(bytes.clone()),
        })
        .collect();
    let now: BTreeSet<(&str, u64)> = timers
        .iter()
        .map(|((id, slot), _)| (id.as_str(), *slot))
        .collect();
    for (id, slot) in before {
        if !now.contains(&(id.as_str(), slot)) {
            out.push(Record {
                key: timer_key(&id, slot),
                value: None,
            });
        }
    }
    for ((id, slot), at) in timers {
        out.push(Record {
            key: timer_key(id, *slot),
            value: Some(at.to_le_bytes().to_vec()),
        });
    }
    out
}

/// The records of one commit's changes (before its checkpoint). `seen` is
/// the partition's live message-id batches, kept in step: a new batch is
/// numbered after the last, and batches that left the deduplication window
/// are deleted.
pub fn records(
    changes: &Changes<'_>,
    seen: &mut BTreeSet<(i64, u64)>,
) -> Result<Vec<Record>, String> {
    let mut out = Vec::with_capacity(changes.profiles.len() + changes.timers.len() + 1);
    for (id, profile) in &changes.profiles {
        let value =
            postcard::to_stdvec(*profile).map_err(|e| format!("cannot encode a profile: {e}"))?;
        out.push(Record {
            key: profile_key(id.as_str()),
            value: Some(value),
        });
    }
    for (id, zone) in &changes.zones {
        out.push(Record {
            key: zone_key(id.as_str()),
            value: Some(zone.as_bytes().to_vec()),
        });
    }
    for (id, slot, at) in &changes.timers {
        out.push(Record {
            key: timer_key(id.as_str(), *slot as u64),
            value: at.map(|at| at.to_le_bytes().to_vec()),
        });
    }
    if let Some(latest) = changes.seen_added.iter().map(|(at, _)| *at).max() {
        let number = seen.iter().map(|(_, n)| *n).max().unwrap_or(0) + 1;
        let mut batch = Vec::with_capacity(changes.seen_added.len() * 24);
        for (at, digest) in &changes.seen_added {
            batch.extend_from_slice(&digest.to_le_bytes());
            batch.extend_from_slice(&at.to_le_bytes());
        }
        seen.insert((latest, number));
        out.push(Record {
            key: seen_key(latest, number),
            value: Some(batch),
        });
    }
    if let Some(clock) = changes.clock {
        let horizon = clock.saturating_sub(nudge::runtime::DEDUPE_WINDOW);
        let expired: Vec<(i64, u64)> = seen.range(..=(horizon, u64::MAX)).copied().collect();
        for key in expired {
            seen.remove(&key);
            out.push(Record {
                key: seen_key(key.0, key.1),
                value: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(offset: i64) -> Record {
        checkpoint(&PartitionCheckpoint {
            state: Checkpoint::default(),
            offset,
        })
        .expect("encodes")
    }

    fn put(key: Vec<u8>, value: &[u8]) -> Record {
        Record {
            key,
            value: Some(value.to_vec()),
        }
    }

    fn fold(nonce: &[u8], log: &[Record]) -> Restored {
        let mut r = Restore::new(nonce);
        for rec in log {
            if r.feed(&rec.key, rec.value.as_deref()).expect("valid") {
                break;
            }
        }
        r.finish()
    }

    /// (1.1) An upgrade's records (every profile, tombstones for timers no
    /// longer pending, the program, the upgrade) take effect with its
    /// checkpoint, and an upgrade a crash cut short leaves the old state and
    /// repairs the program record too.
    #[test]
    fn an_upgrade_takes_effect_with_its_checkpoint() {
        let profiles = vec![("a".to_string(), b"A2".to_vec())];
        let before = vec![("a".to_string(), 1), ("a".to_string(), 2)];
        let timers = vec![(("a".to_string(), 2), 99)];
        let mut upgrade_records = upgraded(&profiles, before.into_iter(), &timers);
        upgrade_records.push(program(b"merged"));
        upgrade_records.push(upgrade(7, &serde_json::json!({"to": "x"})));
        let mut log = vec![
            put(profile_key("a"), b"A1"),
            put(timer_key("a", 1), &5i64.to_le_bytes()),
            program(b"old"),
            cp(7),
        ];
        log.extend(upgrade_records.iter().cloned());
        let mut done = log.clone();
        done.push(cp(7));
        done.push(marker(b"me"));
        let s = fold(b"me", &done).snapshot;
        assert_eq!(s.profiles["a"], b"A2");
        assert_eq!(s.timers.len(), 1);
        assert_eq!(s.timers[&("a".to_string(), 2)], 99);
        assert_eq!(s.program.as_deref(), Some(&b"merged"[..]));
        assert_eq!(s.upgrades[&7], br#"{"to":"x"}"#);

        log.push(marker(b"me"));
        let cut = fold(b"me", &log);
        assert_eq!(cut.snapshot.profiles["a"], b"A1");
        assert_eq!(cut.snapshot.program.as_deref(), Some(&b"old"[..]));
        assert!(cut.snapshot.upgrades.is_empty());
        assert!(cut.repair.contains(&program(b"old")), "{:?}", cut.repair);
    }

    #[test]
    fn records_take_effect_with_their_checkpoint() {
        let log = vec![
            put(profile_key("a"), b"1"),
            cp(10),
            put(profile_key("a"), b"2"),
            put(profile_key("b"), b"3"),
            marker(b"me"),
        ];
        let restored = fold(b"me", &log);
        assert_eq!(restored.snapshot.profiles.len(), 1);
        assert_eq!(restored.snapshot.profiles["a"], b"1");
        assert_eq!(
            restored.snapshot.checkpoint.as_ref().map(|c| c.offset),
            Some(10)
        );
        // Both keys the crashed commit touched are written again: `a` with
        // its committed value, `b` deleted.
        assert_eq!(
            restored.repair,
            vec![
                put(profile_key("a"), b"1"),
                Record {
                    key: profile_key("b"),
                    value: None
                }
            ]
        );
    }

    #[test]
    fn a_foreign_marker_discards_what_was_pending_and_later_commits_count() {
        let log = vec![
            put(timer_key("a", 4), &7i64.to_le_bytes()),
            cp(3),
            put(timer_key("a", 4), &9i64.to_le_bytes()),
            marker(b"someone else"),
            Record {
                key: timer_key("a", 4),
                value: None,
            },
            put(zone_key("a"), b"Europe/Paris"),
            cp(5),
            marker(b"me"),
            // After our marker: not ours to read.
            put(profile_key("z"), b"late"),
            cp(99),
        ];
        let restored = fold(b"me", &log);
        assert!(restored.snapshot.timers.is_empty());
        assert_eq!(restored.snapshot.zones["a"], "Europe/Paris");
        assert_eq!(restored.snapshot.checkpoint.map(|c| c.offset), Some(5));
        // The key the crashed commit touched was written by a later complete
        // commit: nothing to repair.
        assert!(restored.repair.is_empty());
    }

    #[test]
    fn a_repaired_log_restores_the_same_even_when_compaction_dropped_the_marker() {
        // An owner crashed after writing `a` = 2 uncommitted; the next owner's
        // repair wrote `a` = 1 again in its first commit.
        let committed = vec![put(profile_key("a"), b"1"), cp(1)];
        let crashed = put(profile_key("a"), b"2");
        let first = fold(
            b"n1",
            &[committed.clone(), vec![crashed.clone(), marker(b"n1")]].concat(),
        );
        let mut log = committed;
        log.push(crashed);
        // Compaction removed the marker (a later one has the same key).
        log.extend(first.repair.clone());
        log.push(cp(1));
        log.push(marker(b"n2"));
        let second = fold(b"n2", &log);
        assert_eq!(second.snapshot, first.snapshot);
    }

    #[test]
    fn an_unknown_record_is_a_clear_error() {
        let mut r = Restore::new(b"me");
        r.feed(b"?what", Some(b"x")).expect("pending");
        let e = r
            .feed(CHECKPOINT, cp(1).value.as_deref())
            .expect_err("refused");
        assert!(e.contains("not one this nudge writes"), "{e}");
    }
}
