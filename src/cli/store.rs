//! The durable state of `nudge run --state DIR`, in one redb database
//! (`DIR/state.redb`).
//!
//! One write transaction per commit holds the profiles changed since the last
//! commit, the message-id digests seen since, and the checkpoint: the
//! clock, how far the input was read (bytes, lines and a digest of those bytes,
//! to recognise the same input after a crash) and how long the output files were
//! (they are flushed and synced before the commit). Pending timers are stored
//! apart from the profiles, so that a run starts without reading every profile:
//! profiles are read when an event or a timer needs them. Commits are
//! `Durability::Immediate`: a commit that returned survives SIGKILL and power loss.

use nudge::ir::Program;
use nudge::runtime::{Changes, Engine, Profile, ProfileId, ProfileLoader};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Bumped whenever the layout or the encoding of what is stored changes.
pub const FORMAT: &str = "nudge-state/4";

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const PROFILES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("profiles");
/// Message-id digests, one row per commit that saw new ones: (the latest time
/// in the batch, the batch's number) → packed (digest, time) pairs. A row per id
/// would cost a B-tree insert per event; a batch is dropped whole once its latest
/// id has left the deduplication window.
const SEEN: TableDefinition<'_, (i64, u64), &[u8]> = TableDefinition::new("seen_batches");
/// The same ids by digest: digest → when last seen, so that an engine that
/// keeps only the ids seen since the last commit (`--max-profiles-in-memory`)
/// can ask for the others. Written in the same transactions as the batches,
/// and emptied with them.
const SEEN_IDS: TableDefinition<'_, u128, i64> = TableDefinition::new("seen_ids");
/// The number of the last batch of message ids (in `META`).
const SEEN_SEQ: &str = "seen_seq";
/// Bytes per message id in a batch: the digest, then the time, little-endian.
const SEEN_ENTRY: usize = 24;
/// (1.1) Each profile's time zone, for scheduled journeys: profile → zone name.
const ZONES: TableDefinition<'_, &str, &str> = TableDefinition::new("zones");
/// (1.1) The same, by zone: (zone, profile), so that an occurrence can read a
/// zone's members in id order from here (`--max-profiles-in-memory`).
/// Written in the same transactions as ZONES.
const MEMBERS: TableDefinition<'_, (&str, &str), ()> = TableDefinition::new("zone_members");
/// Pending timers: (profile, timer slot: journey index × 2, + 1 for a trigger
/// timer) → when.
const TIMERS: TableDefinition<'_, (&str, u64), i64> = TableDefinition::new("timers");
/// The same timers in firing order: (when, profile, slot), so that the engine
/// can leave later ones here and read them back as the clock reaches them
/// (`--max-profiles-in-memory`). Written in the same transactions as TIMERS.
const TIMES: TableDefinition<'_, (i64, &str, u64), ()> = TableDefinition::new("timers_by_time");

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkpoint {
    pub format: String,
    pub fingerprint: u64,
    pub clock: Option<i64>,
    pub input: Option<InputMark>,
    pub out: Option<FileMark>,
    pub dead_letter: Option<FileMark>,
    /// (1.1) An instant committed while it was being fired (a schedule's
    /// occurrence over more profiles than may be held), to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing: Option<nudge::runtime::Paused>,
    /// (1.1) The fingerprint of the policy set as given, when the store runs
    /// a merged program that differs from it (an upgrade kept older journey
    /// versions, LANGUAGE.md §7.7): a later run given the same set resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<u64>,
    /// (1.1) Instances an upgrade with `stop-removed` ended, whose `exited`
    /// decisions are still to be written (by the first commit after it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<Stopped>,
}

/// What a store's checkpoints name: the program it runs and, (1.1) when that
/// is a merged program an upgrade kept older journey versions in, the set
/// given. Computed once per program ([`Program::fingerprint`] formats the
/// whole program), not per commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub fingerprint: u64,
    /// The fingerprint of the set given, when it differs from `fingerprint`.
    pub policy: Option<u64>,
}

impl Version {
    /// A store running `program` for the set whose fingerprint is `given`.
    pub fn of(program: &Program, given: u64) -> Version {
        Version {
            fingerprint: program.fingerprint(),
            policy: None,
        }
        .given(given)
    }

    /// The same program, run for the set whose fingerprint is `given`.
    pub fn given(self, given: u64) -> Version {
        Version {
            fingerprint: self.fingerprint,
            policy: (self.fingerprint != given).then_some(given),
        }
    }
}

impl Checkpoint {
    /// The state of `version` at `clock` (and an instant paused mid-firing),
    /// with no input position or outputs: the caller adds what it has.
    pub fn at(
        version: Version,
        clock: Option<i64>,
        firing: Option<nudge::runtime::Paused>,
    ) -> Checkpoint {
        Checkpoint {
            format: FORMAT.to_string(),
            fingerprint: version.fingerprint,
            clock,
            input: None,
            out: None,
            dead_letter: None,
            firing,
            policy: version.policy,
            stopped: Vec::new(),
        }
    }
}

/// (1.1) An instance ended by `--upgrade=stop-removed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stopped {
    pub at: i64,
    pub profile: String,
    pub journey: String,
}

/// (1.1) How to apply a new policy set to a store (`run --upgrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade {
    /// `--upgrade=stop-removed`: instances of removed journeys end.
    pub stop_removed: bool,
}

/// (1.1) `--upgrade[=stop-removed]`: what to do with the instances of
/// removed journeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpgradeMode {
    /// They run to their end (`--upgrade`).
    #[value(hide = true)]
    Drain,
    /// They end at once, `exited` with `event` `"policy_change"`.
    StopRemoved,
}

impl UpgradeMode {
    pub fn upgrade(self) -> Upgrade {
        Upgrade {
            stop_removed: self == UpgradeMode::StopRemoved,
        }
    }
}

/// (1.1) What an upgrade did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub summary: nudge::ir::versions::Summary,
    pub profiles: u64,
    pub attributes_reset: u64,
    pub stopped: u64,
    /// The record of the upgrade the store keeps (and `serve` writes to its
    /// changelog): clock, input position, fingerprints, summary.
    pub record: serde_json::Value,
}

/// What a store runs given a policy set (see [`Store::resolve`]).
enum Resolved {
    Runs(Arc<Program>),
    Upgraded(Arc<Program>, Applied),
    Differs(nudge::ir::versions::Summary),
}

/// (1.1) What [`Store::reload`] did.
pub enum Reload {
    /// The store runs that set already.
    Same,
    /// Not applied (no `--upgrade`): what it would change.
    Kept(Box<nudge::ir::versions::Summary>),
    /// Applied: the engine to go on with, and what the store now runs.
    Upgraded(Box<Upgraded>),
}

/// (1.1) A store a reload upgraded.
pub struct Upgraded {
    pub engine: Engine,
    pub checkpoint: Option<Checkpoint>,
    pub program: Arc<Program>,
    pub applied: Applied,
}

/// An opened store, and what it runs.
pub struct Opened {
    pub store: Store,
    pub engine: Engine,
    /// The last checkpoint (`None` for a new store).
    pub checkpoint: Option<Checkpoint>,
    /// The program the store runs: the given set, or after an upgrade that
    /// kept older journey versions, the merged program.
    pub program: Arc<Program>,
    pub applied: Option<Applied>,
}

/// How much of an input file the committed state has consumed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputMark {
    pub path: PathBuf,
    pub offset: u64,
    pub lines: u64,
    /// FNV-1a 64 of the first `offset` bytes.
    pub digest: u64,
}

/// How long an output file was at the commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileMark {
    pub path: PathBuf,
    pub len: u64,
}

pub struct Store {
    db: Arc<Database>,
    /// The store's file, and which file it was when opened (device, inode):
    /// a commit into a file that was removed or replaced would be lost.
    path: PathBuf,
    identity: Option<(u64, u64)>,
    /// Whether a commit is synced before it returns (`false` for a cache
    /// whose truth is elsewhere: `nudge serve`'s changelog).
    durable: bool,
    /// (1.1) The policy set, encoded, while the store does not record it yet:
    /// written with the next commit, so that a later run given another set
    /// can say what would change (LANGUAGE.md §7.7).
    unrecorded: RefCell<Option<Vec<u8>>>,
}

/// (1.1) Where the store records the lowered policy set it runs (postcard).
/// The key names the library's version: the IR's encoding is not
/// self-describing, and another version would misread it rather than fail.
const PROGRAM: &str = concat!("program/", env!("CARGO_PKG_VERSION"));
/// (1.1) The upgrades applied to the store, oldest first (JSON).
const UPGRADES: &str = "upgrades";
/// Profiles carried over per batch of an upgrade.
const BATCH: usize = 4096;

/// The (device, inode) of a file, to tell whether a path still names it.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

thread_local! {
    /// Set while redb runs on a store that may be damaged: its panics are
    /// turned into errors, so their messages are not printed.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on the store, turning a panic inside redb (it has asserts on page
/// contents that a damaged file can fail) into a clear error.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET_PANICS.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    result.unwrap_or_else(|_| {
        Err(StoreError(format!(
            "the state store `{}` is damaged (its pages are not consistent); restore the directory from a backup, or start again with a new --state directory",
            path.display()
        )))
    })
}

/// The page cache redb may use, by default: enough for the hot profiles of a
/// large stream, small beside this machine's memory. `--cache-size` sets it.
pub const DEFAULT_CACHE_MIB: u64 = 64;

struct Loader {
    db: Arc<Database>,
    /// The store's file, for messages.
    path: PathBuf,
    failure: Rc<RefCell<Option<String>>>,
}

impl Loader {
    /// `read` over `table` in a read transaction (`absent` when the store has
    /// no such table yet). A failure is noted for the run (prefixed by
    /// `what`), which stops at its next check, and gives `None`.
    fn read<K: redb::Key + 'static, V: redb::Value + 'static, T>(
        &self,
        table: TableDefinition<'_, K, V>,
        what: &str,
        absent: T,
        read: impl FnOnce(redb::ReadOnlyTable<K, V>) -> Result<T, String>,
    ) -> Option<T> {
        let run = || -> Result<T, String> {
            let txn = self.db.begin_read().map_err(|e| e.to_string())?;
            match txn.open_table(table) {
                Ok(t) => read(t),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(absent),
                Err(e) => Err(e.to_string()),
            }
        };
        match guarded(&self.path, || run().map_err(StoreError)).map_err(|e| e.0) {
            Ok(value) => Some(value),
            Err(e) => {
                *self.failure.borrow_mut() = Some(format!("{what}{e}"));
                None
            }
        }
    }
}

impl ProfileLoader for Loader {
    fn load(&mut self, id: &str) -> Option<Profile> {
        self.read(PROFILES, "", None, |table| {
            let Some(bytes) = table.get(id).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            postcard::from_bytes(bytes.value())
                .map(Some)
                .map_err(|e| format!("the stored profile `{id}` is damaged: {e}"))
        })
        .flatten()
    }

    fn pages(&self) -> bool {
        true
    }

    fn seen_at(&mut self, digest: u128) -> Option<i64> {
        self.read(SEEN_IDS, "cannot read the message ids: ", None, |table| {
            Ok(table
                .get(digest)
                .map_err(|e| e.to_string())?
                .map(|at| at.value()))
        })
        .flatten()
    }

    fn members_after(
        &mut self,
        zone: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Option<Vec<String>> {
        self.read(
            MEMBERS,
            "cannot read a schedule's members: ",
            Vec::new(),
            |table| {
                let mut ids = Vec::new();
                for row in table
                    .range((zone, after.unwrap_or(""))..)
                    .map_err(|e| e.to_string())?
                {
                    let (key, _) = row.map_err(|e| e.to_string())?;
                    let (z, id) = key.value();
                    if z != zone || ids.len() >= limit {
                        break;
                    }
                    if Some(id) != after {
                        ids.push(id.to_string());
                    }
                }
                Ok(ids)
            },
        )
    }

    fn timers_after(&mut self, after: i64, at_least: usize) -> Option<Vec<(i64, String, usize)>> {
        let Some(from) = after.checked_add(1) else {
            return Some(Vec::new());
        };
        self.read(
            TIMES,
            "cannot read the pending timers: ",
            Vec::new(),
            |table| {
                let mut rows: Vec<(i64, String, usize)> = Vec::new();
                for row in table.range((from, "", 0)..).map_err(|e| e.to_string())? {
                    let (key, _) = row.map_err(|e| e.to_string())?;
                    let (at, id, slot) = key.value();
                    // Whole instants: the page ends where the time changes.
                    if rows.len() >= at_least && rows.last().is_some_and(|r| r.0 != at) {
                        break;
                    }
                    rows.push((at, id.to_string(), slot as usize));
                }
                Ok(rows)
            },
        )
    }
}

pub struct StoreError(pub String);

fn err(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{context}: {e}"))
}

impl Store {
    /// Opens (or creates) the store in `dir`, checking that it was written by
    /// this format for this policy set (or for the merged program an upgrade
    /// made of it). (1.1) Given `upgrade`, a store written for another policy
    /// set is upgraded to `given` first, in one transaction (LANGUAGE.md
    /// §7.7); without, it is refused with what would change.
    pub fn open(
        dir: &Path,
        program: &Arc<Program>,
        cache_mib: u64,
        upgrade: Option<Upgrade>,
    ) -> Result<Opened, StoreError> {
        let path = dir.join("state.redb");
        guarded(&path, || {
            Store::open_unguarded(dir, program, cache_mib, upgrade)
        })
    }

    fn open_unguarded(
        dir: &Path,
        given: &Arc<Program>,
        cache_mib: u64,
        upgrade: Option<Upgrade>,
    ) -> Result<Opened, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError(format!(
                "`{}` is not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| err(&format!("cannot create `{}`", dir.display()), e))?;
        let path = dir.join("state.redb");
        let mut builder = redb::Builder::new();
        builder.set_cache_size(
            usize::try_from(cache_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        );
        if !path.exists() {
            // A new store is made under another name and moved into place whole,
            // so that a crash while redb writes its first pages (a kill at the
            // very start of a run) never leaves a half-made store behind.
            let fresh = dir.join("state.redb.new");
            let _ = std::fs::remove_file(&fresh);
            let made = builder
                .create(&fresh)
                .map_err(|e| err(&format!("cannot create `{}`", path.display()), e))?;
            drop(made);
            std::fs::rename(&fresh, &path)
                .map_err(|e| err(&format!("cannot create `{}`", path.display()), e))?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        // The store exists by now, new or old: it is always opened.
        let store = Store::opened(&builder, &path)?;
        let mut checkpoint = store.checkpoint()?;
        let mut program = Arc::clone(given);
        let mut applied = None;
        let resolved = match &checkpoint {
            Some(c) if c.format != FORMAT => {
                return Err(StoreError(format!(
                    "the state in `{}` was written in format `{}`, and this version of nudge reads `{FORMAT}`; use a new --state directory",
                    dir.display(),
                    c.format
                )));
            }
            Some(c) => Some(store.resolve(given, upgrade, c)?),
            None => None,
        };
        match resolved {
            None => {}
            Some(Resolved::Runs(runs)) => program = runs,
            Some(Resolved::Upgraded(merged, done)) => {
                program = merged;
                applied = Some(done);
                checkpoint = store.checkpoint()?;
            }
            Some(Resolved::Differs(summary)) => {
                return Err(StoreError(format!(
                    "the state in `{}` was written for a different policy set:\n{summary}to apply the new one to the running store, pass `--upgrade` (or `--upgrade=stop-removed` to end the instances of removed journeys); to keep the old one, run the policy set it was written for",
                    dir.display()
                )));
            }
        }
        if store.recorded_bytes()?.is_none() {
            let bytes = postcard::to_allocvec(program.as_ref())
                .map_err(|e| err("cannot encode the policy set", e))?;
            *store.unrecorded.borrow_mut() = Some(bytes);
        }
        store.index_for_paging()?;
        let engine = store.load(
            &program,
            checkpoint.as_ref().and_then(|c| c.clock),
            checkpoint.as_ref().and_then(|c| c.firing.clone()),
        )?;
        Ok(Opened {
            store,
            engine,
            checkpoint,
            program,
            applied,
        })
    }

    /// (1.1) What the store runs given the policy set `given` at checkpoint
    /// `c`: the set itself, or the merged program an earlier upgrade made of
    /// it; with `upgrade`, another set is applied (and the store written);
    /// without, the summary of what it would change.
    fn resolve(
        &self,
        given: &Arc<Program>,
        upgrade: Option<Upgrade>,
        c: &Checkpoint,
    ) -> Result<Resolved, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let fingerprint = given.fingerprint();
        if c.fingerprint == fingerprint {
            return Ok(Resolved::Runs(Arc::clone(given)));
        }
        if c.policy == Some(fingerprint) {
            // The set it was upgraded to, with the older versions it kept.
            return match self.recorded_program()? {
                Some(merged) if merged.fingerprint() == c.fingerprint => {
                    Ok(Resolved::Runs(Arc::new(merged)))
                }
                _ => Err(StoreError(format!(
                    "the state in `{}` runs an upgraded policy set whose record is missing or damaged; restore the directory from a backup",
                    dir.display()
                ))),
            };
        }
        let Some((old, usage)) = self.recorded()? else {
            return Err(StoreError(format!(
                "the state in `{}` was written by another version of nudge for a different policy set: what changed cannot be shown, and it cannot be upgraded; run the policy set it was written for, or use a new --state directory",
                dir.display()
            )));
        };
        let summary = nudge::ir::versions::summarize(&old, given, &usage.active);
        let Some(upgrade) = upgrade else {
            return Ok(Resolved::Differs(summary));
        };
        if c.firing.is_some() {
            return Err(StoreError(format!(
                "the state in `{}` was committed in the middle of a scheduled occurrence; run the policy set it was written for until the occurrence is done, then upgrade",
                dir.display()
            )));
        }
        let (merged, done) = self.upgrade(&old, given, &usage, upgrade, c, summary)?;
        Ok(Resolved::Upgraded(Arc::new(merged), done))
    }

    /// (1.1) `nudge serve`'s reload: applies `given` to the open store at its
    /// last commit as [`Store::open`] would (the caller committed
    /// everything first).
    pub fn reload(
        &self,
        given: &Arc<Program>,
        upgrade: Option<Upgrade>,
    ) -> Result<Reload, StoreError> {
        guarded(&self.path, || {
            let Some(c) = self.checkpoint()? else {
                return Ok(Reload::Same);
            };
            match self.resolve(given, upgrade, &c)? {
                Resolved::Runs(_) => Ok(Reload::Same),
                Resolved::Differs(summary) => Ok(Reload::Kept(Box::new(summary))),
                Resolved::Upgraded(program, applied) => {
                    let checkpoint = self.checkpoint()?;
                    let engine = self.load(
                        &program,
                        checkpoint.as_ref().and_then(|c| c.clock),
                        checkpoint.as_ref().and_then(|c| c.firing.clone()),
                    )?;
                    Ok(Reload::Upgraded(Box::new(Upgraded {
                        engine,
                        checkpoint,
                        program,
                        applied,
                    })))
                }
            }
        })
    }

    /// (1.1) Applies `new` to the store written under `old`: every profile
    /// carried over, the pending timers laid out again, the merged program,
    /// the checkpoint and a record of the upgrade written in one transaction
    /// (a crash leaves the store as it was before, or upgraded).
    fn upgrade(
        &self,
        old: &Program,
        new: &Program,
        usage: &nudge::ir::upgrade::Usage,
        upgrade: Upgrade,
        checkpoint: &Checkpoint,
        summary: nudge::ir::versions::Summary,
    ) -> Result<(Program, Applied), StoreError> {
        let (merged, plan) = nudge::ir::upgrade::merge(old, new, usage, upgrade.stop_removed);
        let mut applied = Applied {
            summary,
            profiles: 0,
            attributes_reset: 0,
            stopped: 0,
            record: serde_json::Value::Null,
        };
        let mut txn = self.db.begin_write().map_err(upgrade_write)?;
        txn.set_durability(Durability::Immediate)
            .map_err(upgrade_write)?;
        let clock = checkpoint.clock.unwrap_or(0);
        let stopped = migrate_profiles(&txn, (old, &merged, &plan), clock, &mut applied)?;
        applied.stopped = stopped.len() as u64;
        record_upgrade(
            &txn,
            &merged,
            new,
            upgrade,
            checkpoint,
            stopped,
            &mut applied,
        )?;
        txn.commit()
            .map_err(|e| err("cannot commit the upgraded state", e))?;
        Ok((merged, applied))
    }

    /// A store written before the paging indexes (`timers_by_time`,
    /// `zone_members`, `seen_ids`) gets each here, once, from the rows it
    /// indexes.
    fn index_for_paging(&self) -> Result<(), StoreError> {
        if !self.has_table(TIMES.name())? {
            let mut rows = Vec::new();
            self.each_row(TIMERS, |key, at| {
                let (id, slot) = key.value();
                rows.push((at.value(), id.to_string(), slot));
            })?;
            self.write_once(|txn| {
                let mut by_time = txn.open_table(TIMES)?;
                for (at, id, slot) in &rows {
                    by_time.insert((*at, id.as_str(), *slot), ())?;
                }
                Ok(())
            })?;
        }
        if !self.has_table(MEMBERS.name())? {
            let mut rows = Vec::new();
            self.each_row(ZONES, |id, zone| {
                rows.push((zone.value().to_string(), id.value().to_string()));
            })?;
            self.write_once(|txn| {
                let mut members = txn.open_table(MEMBERS)?;
                for (zone, id) in &rows {
                    members.insert((zone.as_str(), id.as_str()), ())?;
                }
                Ok(())
            })?;
        }
        if !self.has_table(SEEN_IDS.name())? {
            let mut latest: std::collections::BTreeMap<u128, i64> =
                std::collections::BTreeMap::new();
            self.each_row(SEEN, |_, batch| {
                for (at, digest) in batch.value().chunks_exact(SEEN_ENTRY).map(unpack_seen) {
                    let t = latest.entry(digest).or_insert(at);
                    *t = (*t).max(at);
                }
            })?;
            self.write_once(|txn| {
                let mut ids = txn.open_table(SEEN_IDS)?;
                for (digest, at) in &latest {
                    ids.insert(*digest, *at)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Whether the store has a table of this name.
    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        let mut tables = txn
            .list_tables()
            .map_err(|e| err("cannot read the state", e))?;
        Ok(tables.any(|t| t.name() == name))
    }

    /// Calls `f` with every row of `table` (none when it does not exist).
    fn each_row<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: TableDefinition<'_, K, V>,
        mut f: impl FnMut(redb::AccessGuard<'_, K>, redb::AccessGuard<'_, V>),
    ) -> Result<(), StoreError> {
        let read = |e: redb::StorageError| err("cannot read the state", e);
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        match txn.open_table(table) {
            Ok(t) => {
                for row in t.iter().map_err(read)? {
                    let (k, v) = row.map_err(read)?;
                    f(k, v);
                }
                Ok(())
            }
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
            Err(e) => Err(err("cannot read the state", e)),
        }
    }

    /// One durable write transaction around `f`.
    fn write_once(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let write = |e: redb::Error| err("cannot write the state", e);
        let mut txn = self.db.begin_write().map_err(|e| write(e.into()))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| write(e.into()))?;
        f(&txn).map_err(write)?;
        txn.commit().map_err(|e| err("cannot commit the state", e))
    }

    /// The existing store at `path`, with what to do when it cannot be opened.
    fn opened(builder: &redb::Builder, path: &Path) -> Result<Store, StoreError> {
        let db = builder.open(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError(format!(
                "the state store `{}` is in use by another nudge run; wait for it to end (two runs on one store would each lose the other's decisions)",
                path.display()
            )),
            e => StoreError(format!(
                "`{}` is not a Nudge state store, or it is damaged ({e}); restore it from a backup, or use another --state directory",
                path.display()
            )),
        })?;
        Ok(Store {
            db: Arc::new(db),
            identity: file_identity(path),
            path: path.to_path_buf(),
            durable: true,
            unrecorded: RefCell::new(None),
        })
    }

    /// (1.1) What applying `program` to the store in `dir` would change
    /// (LANGUAGE.md §7.7), read without writing anything: `None` when the
    /// store runs this very policy set.
    pub fn upgrade_summary(
        dir: &Path,
        program: &Program,
    ) -> Result<Option<nudge::ir::versions::Summary>, StoreError> {
        let path = dir.join("state.redb");
        if !path.is_file() {
            return Err(StoreError(format!(
                "`{}` holds no state store (no `state.redb`)",
                dir.display()
            )));
        }
        guarded(&path, || {
            let store = Store::opened(&redb::Builder::new(), &path)?;
            let fingerprint = program.fingerprint();
            if store
                .checkpoint()?
                .is_some_and(|c| c.fingerprint == fingerprint || c.policy == Some(fingerprint))
            {
                return Ok(None);
            }
            match store.recorded()? {
                Some((old, usage)) => Ok(Some(nudge::ir::versions::summarize(
                    &old,
                    program,
                    &usage.active,
                ))),
                None => Err(StoreError(format!(
                    "the state in `{}` was written by another version of nudge, which recorded no policy set this version reads: what would change cannot be shown",
                    dir.display()
                ))),
            }
        })
    }

    /// The encoded policy set the store records, if it records one.
    fn recorded_bytes(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err("cannot read the state", e)),
        };
        let bytes = table
            .get(PROGRAM)
            .map_err(|e| err("cannot read the state", e))?;
        Ok(bytes.map(|b| b.value().to_vec()))
    }

    /// (1.1) The program the store records, without reading its profiles;
    /// `None` as for [`Store::recorded`].
    fn recorded_program(&self) -> Result<Option<Program>, StoreError> {
        Ok(self
            .recorded_bytes()?
            .and_then(|bytes| postcard::from_bytes::<Program>(&bytes).ok()))
    }

    /// (1.1) The policy set the store was written with, and per journey of it
    /// how many instances are active in the stored profiles; `None` when the
    /// store does not record it in this version's encoding (another version
    /// of nudge wrote it) or the record cannot be read.
    fn recorded(&self) -> Result<Option<(Program, nudge::ir::upgrade::Usage)>, StoreError> {
        let Some(program) = self.recorded_program()? else {
            return Ok(None);
        };
        let mut usage = nudge::ir::upgrade::Usage {
            active: vec![0u64; program.journeys.len()],
            goals: vec![0u64; program.journeys.len()],
        };
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        match txn.open_table(PROFILES) {
            Ok(table) => {
                for row in table.iter().map_err(|e| err("cannot read profiles", e))? {
                    let (id, bytes) = row.map_err(|e| err("cannot read profiles", e))?;
                    let profile: Profile = postcard::from_bytes(bytes.value()).map_err(|e| {
                        StoreError(format!(
                            "the stored profile `{}` is damaged: {e}",
                            id.value()
                        ))
                    })?;
                    for (n, state) in usage.active.iter_mut().zip(&profile.journeys) {
                        *n += u64::from(state.active.is_some());
                    }
                    for window in profile.goals() {
                        if let Some(n) = usage.goals.get_mut(window.journey as usize) {
                            *n += 1;
                        }
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("cannot read profiles", e)),
        }
        Ok(Some((program, usage)))
    }

    fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err("cannot read the state", e)),
        };
        let Some(bytes) = table
            .get("checkpoint")
            .map_err(|e| err("cannot read the state", e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| err("the state's checkpoint is damaged", e))
    }

    /// The engine as committed: clock, pending timers and message ids. Profiles
    /// are read on demand through [`Store::loader`].
    fn load(
        &self,
        program: &Arc<Program>,
        clock: Option<i64>,
        firing: Option<nudge::runtime::Paused>,
    ) -> Result<Engine, StoreError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| err("cannot read the state", e))?;
        let mut timers = Vec::new();
        match txn.open_table(TIMERS) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| err("cannot read timers", e))? {
                    let (key, at) = entry.map_err(|e| err("cannot read timers", e))?;
                    let (profile, journey) = key.value();
                    timers.push((at.value(), profile.to_string(), journey as usize));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("cannot read timers", e)),
        }
        let mut seen = Vec::new();
        match txn.open_table(SEEN) {
            Ok(table) => {
                for entry in table
                    .iter()
                    .map_err(|e| err("cannot read message ids", e))?
                {
                    let (_, batch) = entry.map_err(|e| err("cannot read message ids", e))?;
                    let batch = batch.value();
                    if batch.len() % SEEN_ENTRY != 0 {
                        return Err(StoreError("the state's message ids are damaged".into()));
                    }
                    seen.extend(batch.chunks_exact(SEEN_ENTRY).map(unpack_seen));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("cannot read message ids", e)),
        }
        let mut zones = Vec::new();
        match txn.open_table(ZONES) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| err("cannot read time zones", e))? {
                    let (id, zone) = entry.map_err(|e| err("cannot read time zones", e))?;
                    let tz = zone.value().parse().map_err(|_| {
                        StoreError(format!(
                            "the state's time zone `{}` is not a zone",
                            zone.value()
                        ))
                    })?;
                    zones.push((id.value().to_string(), tz));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(err("cannot read time zones", e)),
        }
        Ok(Engine::restore(
            Arc::clone(program),
            clock,
            timers,
            seen,
            zones,
            firing,
        ))
    }

    /// A loader of stored profiles for the engine. A profile that cannot be read
    /// is recorded in `failure` (and treated as absent): the run checks it after
    /// every event and stops with the message.
    pub fn loader(&self, failure: Rc<RefCell<Option<String>>>) -> Box<dyn ProfileLoader> {
        Box::new(Loader {
            db: Arc::clone(&self.db),
            path: self.path.clone(),
            failure,
        })
    }

    /// Writes a whole state, as raw stored values, into a new store in one
    /// transaction: `nudge serve` rebuilds its local cache of a partition from
    /// the changelog this way. The values are the store's own encodings (a
    /// profile in postcard, a message-id batch packed as [`Store::commit`]
    /// packs it).
    #[cfg(feature = "kafka")]
    pub fn import<'a>(
        &self,
        program: Option<&[u8]>,
        profiles: impl Iterator<Item = (&'a str, &'a [u8])>,
        timers: impl Iterator<Item = ((&'a str, u64), i64)>,
        zones: impl Iterator<Item = (&'a str, &'a str)>,
        seen: impl Iterator<Item = ((i64, u64), &'a [u8])>,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        guarded(&self.path, || {
            fn write(e: impl std::fmt::Display) -> StoreError {
                err("cannot write the state", e)
            }
            let mut txn = self.db.begin_write().map_err(write)?;
            txn.set_durability(Durability::Immediate).map_err(write)?;
            {
                let mut table = txn.open_table(PROFILES).map_err(write)?;
                for (id, bytes) in profiles {
                    table.insert(id, bytes).map_err(write)?;
                }
                let mut table = txn.open_table(TIMERS).map_err(write)?;
                let mut by_time = txn.open_table(TIMES).map_err(write)?;
                for (key, at) in timers {
                    table.insert(key, at).map_err(write)?;
                    by_time.insert((at, key.0, key.1), ()).map_err(write)?;
                }
                let mut table = txn.open_table(ZONES).map_err(write)?;
                let mut members = txn.open_table(MEMBERS).map_err(write)?;
                for (id, zone) in zones {
                    table.insert(id, zone).map_err(write)?;
                    members.insert((zone, id), ()).map_err(write)?;
                }
                let mut table = txn.open_table(SEEN).map_err(write)?;
                let mut ids = txn.open_table(SEEN_IDS).map_err(write)?;
                let mut last = 0;
                for (key, batch) in seen {
                    if batch.len() % SEEN_ENTRY != 0 {
                        return Err(StoreError("a batch of message ids is damaged".into()));
                    }
                    last = last.max(key.1);
                    table.insert(key, batch).map_err(write)?;
                    for (at, digest) in batch.chunks_exact(SEEN_ENTRY).map(unpack_seen) {
                        let newer = ids
                            .get(digest)
                            .map_err(write)?
                            .is_some_and(|t| t.value() >= at);
                        if !newer {
                            ids.insert(digest, at).map_err(write)?;
                        }
                    }
                }
                let mut meta = txn.open_table(META).map_err(write)?;
                meta.insert(SEEN_SEQ, last.to_le_bytes().as_slice())
                    .map_err(write)?;
                if let Some(program) = program {
                    meta.insert(PROGRAM, program).map_err(write)?;
                }
                let bytes = serde_json::to_vec(checkpoint)
                    .map_err(|e| err("cannot encode the checkpoint", e))?;
                meta.insert("checkpoint", bytes.as_slice()).map_err(write)?;
            }
            txn.commit().map_err(|e| err("cannot commit the state", e))
        })
    }

    /// (1.1) Every stored profile (encoded) and pending timer, for `nudge
    /// serve` to write a whole upgraded partition to its changelog.
    #[cfg(feature = "kafka")]
    #[allow(clippy::type_complexity, reason = "the two tables' rows, as stored")]
    pub fn raw_state(
        &self,
    ) -> Result<(Vec<(String, Vec<u8>)>, Vec<((String, u64), i64)>), StoreError> {
        guarded(&self.path, || {
            let read = |e: redb::StorageError| err("cannot read the state", e);
            let txn = self
                .db
                .begin_read()
                .map_err(|e| err("cannot read the state", e))?;
            let mut profiles = Vec::new();
            match txn.open_table(PROFILES) {
                Ok(table) => {
                    for row in table.iter().map_err(read)? {
                        let (id, bytes) = row.map_err(read)?;
                        profiles.push((id.value().to_string(), bytes.value().to_vec()));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(err("cannot read the state", e)),
            }
            let mut timers = Vec::new();
            match txn.open_table(TIMERS) {
                Ok(table) => {
                    for row in table.iter().map_err(read)? {
                        let (key, at) = row.map_err(read)?;
                        let (id, slot) = key.value();
                        timers.push(((id.to_string(), slot), at.value()));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(err("cannot read the state", e)),
            }
            Ok((profiles, timers))
        })
    }

    /// (1.1) The encoded program the store runs (recorded, or to be recorded
    /// by the next commit), for the changelog.
    #[cfg(feature = "kafka")]
    pub fn program_bytes(&self) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(bytes) = self.unrecorded.borrow().as_ref() {
            return Ok(Some(bytes.clone()));
        }
        guarded(&self.path, || self.recorded_bytes())
    }

    /// Commits are not synced: the store is a cache rebuilt from elsewhere
    /// after a crash (`nudge serve` rebuilds it from the changelog whenever a
    /// partition is assigned), so it need not pay an fsync per commit.
    #[cfg(feature = "kafka")]
    pub fn set_cache(&mut self) {
        self.durable = false;
    }

    /// Writes the changes and the checkpoint in one durable transaction.
    pub fn commit(&self, changes: Changes<'_>, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        // A store whose file was removed or replaced under us would take the
        // commit into a file nobody will read: the run must stop, loudly.
        if file_identity(&self.path) != self.identity {
            return Err(StoreError(format!(
                "the state store `{}` was removed or replaced while nudge was running; nothing after its last commit is recorded. Stop other programs from touching the --state directory, then re-run",
                self.path.display()
            )));
        }
        guarded(&self.path, || self.commit_unguarded(changes, checkpoint))
    }

    fn commit_unguarded(
        &self,
        changes: Changes<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), StoreError> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| err("cannot write the state", e))?;
        txn.set_durability(if self.durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| err("cannot write the state", e))?;
        write_profiles(&txn, &changes.profiles)?;
        write_zones(&txn, &changes.zones)?;
        write_timers(&txn, &changes.timers)?;
        write_seen(&txn, &changes.seen_added)?;
        if let Some(clock) = changes.clock {
            expire_seen(&txn, clock)?;
        }
        {
            let mut meta = txn
                .open_table(META)
                .map_err(|e| err("cannot write the state", e))?;
            let bytes = serde_json::to_vec(checkpoint)
                .map_err(|e| err("cannot encode the checkpoint", e))?;
            meta.insert("checkpoint", bytes.as_slice())
                .map_err(|e| err("cannot write the state", e))?;
            if let Some(program) = self.unrecorded.borrow().as_deref() {
                meta.insert(PROGRAM, program)
                    .map_err(|e| err("cannot write the state", e))?;
            }
        }
        txn.commit()
            .map_err(|e| err("cannot commit the state", e))?;
        self.unrecorded.borrow_mut().take();
        Ok(())
    }
}

/// The next [`BATCH`] stored profiles after the id `after` (from the first
/// without it), encoded.
fn next_batch(
    profiles: &redb::Table<'_, &str, &[u8]>,
    after: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>, redb::StorageError> {
    let rows = match after {
        Some(last) => profiles.range::<&str>(last..)?,
        None => profiles.range::<&str>(..)?,
    };
    let mut batch = Vec::with_capacity(BATCH);
    for row in rows {
        let (id, bytes) = row?;
        if after == Some(id.value()) {
            continue;
        }
        batch.push((id.value().to_string(), bytes.value().to_vec()));
        if batch.len() == BATCH {
            break;
        }
    }
    Ok(batch)
}

fn upgrade_write(e: impl std::fmt::Display) -> StoreError {
    err("cannot write the upgraded state", e)
}

/// (1.1) Every stored profile migrated to the merged program, in batches so
/// that a large store is never all in memory, and the timers re-laid from
/// them; the instances the upgrade stopped.
fn migrate_profiles(
    txn: &redb::WriteTransaction,
    (old, merged, plan): (&Program, &Program, &nudge::ir::upgrade::Plan),
    clock: i64,
    applied: &mut Applied,
) -> Result<Vec<Stopped>, StoreError> {
    use nudge::runtime::upgrade::{migrate, timers};
    let mut stopped = Vec::new();
    let mut profiles = txn.open_table(PROFILES).map_err(upgrade_write)?;
    txn.delete_table(TIMERS).map_err(upgrade_write)?;
    txn.delete_table(TIMES).map_err(upgrade_write)?;
    let mut pending = txn.open_table(TIMERS).map_err(upgrade_write)?;
    let mut by_time = txn.open_table(TIMES).map_err(upgrade_write)?;
    let mut after: Option<String> = None;
    loop {
        let batch = next_batch(&profiles, after.as_deref()).map_err(upgrade_write)?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        after = Some(last.clone());
        for (id, bytes) in batch {
            let profile: Profile = postcard::from_bytes(&bytes)
                .map_err(|e| StoreError(format!("the stored profile `{id}` is damaged: {e}")))?;
            let migrated = migrate(old, merged, plan, profile, clock);
            applied.profiles += 1;
            applied.attributes_reset += migrated.attributes_reset;
            for j in migrated.stopped {
                stopped.push(Stopped {
                    at: clock,
                    profile: id.clone(),
                    journey: old
                        .journeys
                        .get(j)
                        .map_or(String::new(), |j| j.name.clone()),
                });
            }
            for (slot, at) in timers(&migrated.profile) {
                pending
                    .insert((id.as_str(), slot as u64), at)
                    .map_err(upgrade_write)?;
                by_time
                    .insert((at, id.as_str(), slot as u64), ())
                    .map_err(upgrade_write)?;
            }
            let bytes = postcard::to_allocvec(&migrated.profile)
                .map_err(|e| err("cannot encode a profile", e))?;
            profiles
                .insert(id.as_str(), bytes.as_slice())
                .map_err(upgrade_write)?;
        }
    }
    Ok(stopped)
}

/// (1.1) The merged program, the checkpoint that runs it, and the upgrade
/// in the store's history of upgrades.
fn record_upgrade(
    txn: &redb::WriteTransaction,
    merged: &Program,
    new: &Program,
    upgrade: Upgrade,
    checkpoint: &Checkpoint,
    stopped: Vec<Stopped>,
    applied: &mut Applied,
) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(upgrade_write)?;
    let record =
        postcard::to_allocvec(merged).map_err(|e| err("cannot encode the policy set", e))?;
    meta.insert(PROGRAM, record.as_slice())
        .map_err(upgrade_write)?;
    let given = new.fingerprint();
    let version = Version::of(merged, given);
    let upgraded = Checkpoint {
        fingerprint: version.fingerprint,
        policy: version.policy,
        stopped,
        ..checkpoint.clone()
    };
    let bytes =
        serde_json::to_vec(&upgraded).map_err(|e| err("cannot encode the checkpoint", e))?;
    meta.insert("checkpoint", bytes.as_slice())
        .map_err(upgrade_write)?;
    // The history of upgrades, each with the input position it was
    // applied at, so that a replay can apply it at the same place.
    let mut history: Vec<serde_json::Value> = match meta.get(UPGRADES).map_err(upgrade_write)? {
        Some(bytes) => serde_json::from_slice(bytes.value()).unwrap_or_default(),
        None => Vec::new(),
    };
    applied.record = serde_json::json!({
        "clock": checkpoint.clock,
        "input": checkpoint.input.as_ref().map(|m| serde_json::json!({
            "path": m.path, "offset": m.offset, "lines": m.lines,
        })),
        "from": format!("{:016x}", checkpoint.fingerprint),
        "to": format!("{given:016x}"),
        "stop_removed": upgrade.stop_removed,
        "summary": &applied.summary,
    });
    history.push(applied.record.clone());
    let bytes = serde_json::to_vec(&history).map_err(|e| err("cannot encode the upgrade", e))?;
    meta.insert(UPGRADES, bytes.as_slice())
        .map_err(upgrade_write)?;
    Ok(())
}

/// The profiles changed since the last commit, whole.
fn write_profiles(
    txn: &redb::WriteTransaction,
    changed: &[(ProfileId, &Profile)],
) -> Result<(), StoreError> {
    let mut profiles = txn
        .open_table(PROFILES)
        .map_err(|e| err("cannot write the state", e))?;
    let mut bytes = Vec::new();
    for (id, profile) in changed {
        bytes.clear();
        let bytes =
            postcard::to_io(*profile, &mut bytes).map_err(|e| err("cannot encode a profile", e))?;
        profiles
            .insert(id.as_str(), bytes.as_slice())
            .map_err(|e| err("cannot write the state", e))?;
    }
    Ok(())
}

/// (1.1) Profiles that joined a time zone's members (and left their old one).
fn write_zones(
    txn: &redb::WriteTransaction,
    joined: &[(ProfileId, &'static str)],
) -> Result<(), StoreError> {
    if joined.is_empty() {
        return Ok(());
    }
    let write = |e: redb::Error| err("cannot write the state", e);
    let mut zones = txn.open_table(ZONES).map_err(|e| write(e.into()))?;
    let mut members = txn.open_table(MEMBERS).map_err(|e| write(e.into()))?;
    for (id, zone) in joined {
        let old = zones
            .insert(id.as_str(), *zone)
            .map_err(|e| write(e.into()))?
            .map(|old| old.value().to_string());
        if let Some(old) = old.filter(|old| old != zone) {
            members
                .remove((old.as_str(), id.as_str()))
                .map_err(|e| write(e.into()))?;
        }
        members
            .insert((*zone, id.as_str()), ())
            .map_err(|e| write(e.into()))?;
    }
    Ok(())
}

/// Pending timers, one row per journey that waits (and its row in firing
/// order); only those set, fired or cancelled since the last commit.
fn write_timers(
    txn: &redb::WriteTransaction,
    changed: &[(ProfileId, usize, Option<i64>)],
) -> Result<(), StoreError> {
    let mut timers = txn
        .open_table(TIMERS)
        .map_err(|e| err("cannot write the state", e))?;
    let mut by_time = txn
        .open_table(TIMES)
        .map_err(|e| err("cannot write the state", e))?;
    for (id, j, at) in changed {
        let key = (id.as_str(), *j as u64);
        let old = match at {
            Some(at) => timers.insert(key, *at),
            None => timers.remove(key),
        }
        .map_err(|e| err("cannot write the state", e))?
        .map(|old| old.value());
        if let Some(old) = old {
            by_time
                .remove((old, key.0, key.1))
                .map_err(|e| err("cannot write the state", e))?;
        }
        if let Some(at) = at {
            by_time
                .insert((*at, key.0, key.1), ())
                .map_err(|e| err("cannot write the state", e))?;
        }
    }
    Ok(())
}

/// The message ids taken since the last commit: one numbered batch, and
/// each id by its digest.
fn write_seen(txn: &redb::WriteTransaction, added: &[(i64, u128)]) -> Result<(), StoreError> {
    let Some(latest) = added.iter().map(|(at, _)| *at).max() else {
        return Ok(());
    };
    let mut meta = txn
        .open_table(META)
        .map_err(|e| err("cannot write the state", e))?;
    let number = match meta
        .get(SEEN_SEQ)
        .map_err(|e| err("cannot read the state", e))?
    {
        Some(bytes) => u64::from_le_bytes(
            bytes
                .value()
                .try_into()
                .map_err(|_| StoreError("the state's metadata is damaged".into()))?,
        ),
        None => 0,
    } + 1;
    meta.insert(SEEN_SEQ, number.to_le_bytes().as_slice())
        .map_err(|e| err("cannot write the state", e))?;
    let mut batch = Vec::with_capacity(added.len() * SEEN_ENTRY);
    for (at, digest) in added {
        batch.extend_from_slice(&digest.to_le_bytes());
        batch.extend_from_slice(&at.to_le_bytes());
    }
    let mut seen = txn
        .open_table(SEEN)
        .map_err(|e| err("cannot write the state", e))?;
    seen.insert((latest, number), batch.as_slice())
        .map_err(|e| err("cannot write the state", e))?;
    let mut ids = txn
        .open_table(SEEN_IDS)
        .map_err(|e| err("cannot write the state", e))?;
    for (at, digest) in added {
        ids.insert(*digest, *at)
            .map_err(|e| err("cannot write the state", e))?;
    }
    Ok(())
}

/// Drops the batches whose latest id has left the window at `clock`: they
/// hold nothing the engine would still deduplicate against.
fn expire_seen(txn: &redb::WriteTransaction, clock: i64) -> Result<(), StoreError> {
    let horizon = clock.saturating_sub(nudge::runtime::DEDUPE_WINDOW);
    let mut seen = txn
        .open_table(SEEN)
        .map_err(|e| err("cannot write the state", e))?;
    let expired: Vec<((i64, u64), Vec<u8>)> = seen
        .range(..=(horizon, u64::MAX))
        .map_err(|e| err("cannot read the state", e))?
        .map(|row| row.map(|(key, batch)| (key.value(), batch.value().to_vec())))
        .collect::<Result<_, _>>()
        .map_err(|e| err("cannot read the state", e))?;
    if expired.is_empty() {
        return Ok(());
    }
    let mut ids = txn
        .open_table(SEEN_IDS)
        .map_err(|e| err("cannot write the state", e))?;
    for (key, batch) in expired {
        seen.remove(key)
            .map_err(|e| err("cannot write the state", e))?;
        // An id seen again since is kept, with its later time.
        for (_, digest) in batch.chunks_exact(SEEN_ENTRY).map(unpack_seen) {
            let last = ids
                .get(digest)
                .map_err(|e| err("cannot read the state", e))?
                .map(|at| at.value());
            if last.is_some_and(|at| at <= horizon) {
                ids.remove(digest)
                    .map_err(|e| err("cannot write the state", e))?;
            }
        }
    }
    Ok(())
}

/// A (time, digest) pair from its packed form in a batch.
fn unpack_seen(entry: &[u8]) -> (i64, u128) {
    let mut digest = [0u8; 16];
    let mut at = [0u8; 8];
    digest.copy_from_slice(entry.get(..16).unwrap_or(&[0; 16]));
    at.copy_from_slice(entry.get(16..SEEN_ENTRY).unwrap_or(&[0; 8]));
    (i64::from_le_bytes(at), u128::from_le_bytes(digest))
}

/// The digest of the input read so far (FNV-1a 64), continued over `bytes`.
pub use nudge::fnv64 as digest;

/// The digest of no bytes.
pub const DIGEST_START: u64 = nudge::FNV64_OFFSET;
