//! One worker thread of `nudge serve --kafka`: the engines of the input
//! partitions it holds, each restored from its changelog on assignment,
//! applying messages, committing (changelog records, then the checkpoint they
//! take effect with), ticking the live clock and (1.1) taking a new policy
//! version (LANGUAGE.md §7.7).

use super::{BROKER_WAIT, Command, Sender, Shared, Sink, changelog_record, flush, hostname, send};
use crate::cli::serve::changelog::{self, PartitionCheckpoint, Record, Restore};
use crate::cli::serve::http::{self, Metrics, ReasonLabels};
use crate::cli::store::{self, Checkpoint, Store};
use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::ir::Program;
use nudge::runtime::{Decision, DecisionKind, Engine};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// One assigned input partition.
pub(super) struct Partition {
    /// (1.1) What the partition's checkpoints name: the program it runs (the
    /// given set, or after an upgrade that kept older journey versions, the
    /// merged program, LANGUAGE.md §7.7) and the given set.
    pub(super) version: store::Version,
    /// Whether the changelog holds `program`'s record.
    pub(super) recorded: bool,
    pub(super) reader: Reader,
    pub(super) engine: Engine,
    pub(super) store: Store,
    pub(super) load_failure: Rc<RefCell<Option<String>>>,
    /// The offset of the next input message to apply.
    pub(super) next_offset: i64,
    /// The live message-id batches in the changelog.
    pub(super) seen: BTreeSet<(i64, u64)>,
    /// Records of a crashed owner's commit to overwrite (changelog.rs).
    pub(super) repair: Vec<Record>,
    /// Input messages applied since the last commit.
    pub(super) uncommitted: u64,
    /// A tick written into the partition and not read back yet.
    pub(super) tick_pending: bool,
}

/// A thread running the engines of some of the assigned partitions.
pub(super) struct Worker {
    /// The policy set new partitions start from, and its number.
    pub(super) given: Arc<Program>,
    pub(super) generation: u64,
    pub(super) args: Settings,
    pub(super) producer: Arc<Sender>,
    pub(super) restorer: BaseConsumer,
    /// Whether engines use the JIT, and each program's compiled code.
    pub(super) jit: bool,
    pub(super) compiled: BTreeMap<u64, Rc<nudge::jit::Jit>>,
    pub(super) partitions: BTreeMap<i32, Partition>,
    pub(super) out: Sink,
    pub(super) dead: Sink,
    pub(super) decisions: Vec<Decision>,
    pub(super) text: String,
    /// The first error that must stop the service.
    pub(super) fatal: Option<String>,
    pub(super) shared: Arc<Shared>,
    pub(super) last_commit: Instant,
    pub(super) metrics: Arc<Metrics>,
    /// The decision counters by kind and journey, found once each.
    pub(super) decision_counters: http::DecisionCounters,
}

/// What the workers keep of the arguments.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) topic: String,
    pub(super) group: String,
    pub(super) changelog: String,
    pub(super) state: PathBuf,
    pub(super) lag: i64,
    pub(super) commit_every: u64,
    pub(super) commit_interval: Duration,
    pub(super) explain: bool,
    pub(super) upgrade: Option<store::Upgrade>,
}

impl Worker {
    fn fail(&mut self, message: String) {
        self.shared.fail(message.clone());
        self.fatal.get_or_insert(message);
    }

    /// Restores newly assigned partitions; each one's next offset.
    fn assign(&mut self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let mut offsets = Vec::new();
        for &p in partitions {
            let started = Instant::now();
            match self.restore(p) {
                Ok(partition) => {
                    let offset = partition.next_offset;
                    tracing::info!(
                        partition = p,
                        offset,
                        ms = started.elapsed().as_millis() as u64,
                        "partition assigned and restored"
                    );
                    self.partitions.insert(p, partition);
                    offsets.push((p, offset));
                }
                Err(e) => self.fail(format!("cannot restore partition {p}: {e}")),
            }
        }
        self.held_changed();
        offsets
    }

    /// The lag thread's list follows this worker's partitions.
    fn held_changed(&mut self) {
        if let Ok(mut positions) = self.shared.positions.lock() {
            for (p, partition) in &self.partitions {
                positions.insert(*p, partition.next_offset);
            }
        }
    }

    /// Commits (unless lost) and drops revoked partitions.
    fn revoke(&mut self, partitions: &[i32], lost: bool) {
        if !lost
            && self.fatal.is_none()
            && let Err(e) = self.commit(partitions)
        {
            self.fail(e);
        }
        for p in partitions {
            if self.partitions.remove(p).is_some() {
                self.metrics.forget(*p);
                if let Ok(mut positions) = self.shared.positions.lock() {
                    positions.remove(p);
                }
                tracing::info!(partition = p, lost, "partition revoked");
            }
        }
    }

    /// Runs commands until the polling thread hangs up, committing and
    /// ticking on time in between; then commits what it holds.
    pub(super) fn run(&mut self, commands: mpsc::Receiver<Command>) {
        let mut last_tick = Instant::now();
        loop {
            match commands.recv_timeout(Duration::from_millis(50)) {
                Ok(Command::Messages(batch)) => {
                    for m in batch {
                        if self.fatal.is_some() {
                            break;
                        }
                        self.apply(
                            m.partition,
                            m.offset,
                            m.payload.as_deref(),
                            m.key.as_deref(),
                        );
                    }
                }
                Ok(Command::Assign(ps, reply)) => {
                    let offsets = self.assign(&ps);
                    let _ = reply.send(offsets);
                }
                Ok(Command::Revoke(ps, lost, reply)) => {
                    self.revoke(&ps, lost);
                    let _ = reply.send(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if self.fatal.is_some() {
                continue;
            }
            if let Err(e) = self.take_policy() {
                self.fail(e);
                continue;
            }
            let due = self.due_for_commit();
            if !due.is_empty()
                && let Err(e) = self.commit(&due)
            {
                self.fail(e);
            }
            if self.fatal.is_none() && last_tick.elapsed() >= Duration::from_millis(250) {
                last_tick = Instant::now();
                if let Err(e) = self.tick() {
                    self.fail(e);
                }
            }
        }
        if self.fatal.is_none() {
            let all: Vec<i32> = self.partitions.keys().copied().collect();
            if let Err(e) = self.commit(&all) {
                self.fail(e);
            }
        }
    }

    /// Reads partition `p`'s changelog up to a marker of ours, rebuilds the
    /// local cache from it, and returns the engine in that state.
    fn restore(&mut self, p: i32) -> Result<Partition, String> {
        let restored = self.read_changelog(p)?;
        let snapshot = restored.snapshot;
        if let Some(c) = &snapshot.checkpoint
            && c.state.format != store::FORMAT
        {
            return Err(format!(
                "its changelog was written in format `{}`, and this version of nudge reads `{}`",
                c.state.format,
                store::FORMAT
            ));
        }
        let dir = self.rebuild_cache(p, &snapshot)?;
        let given = self.given.fingerprint();
        // (1.1) A changelog written for another policy set is upgraded here
        // with --upgrade (and written back whole), refused without.
        let opened = Store::open(
            &dir,
            &self.given,
            store::DEFAULT_CACHE_MIB,
            self.args.upgrade,
        )
        .map_err(|e| format!("{e} (its changelog `{}`)", self.args.changelog, e = e.0))?;
        let mut store = opened.store;
        store.set_cache();
        let load_failure = Rc::new(RefCell::new(None));
        let engine = self.configured(opened.engine, &opened.program, &store, &load_failure)?;
        let mut partition = Partition {
            version: store::Version::of(&opened.program, given),
            recorded: snapshot.program.is_some(),
            reader: Reader::new(Arc::clone(&opened.program)),
            engine,
            store,
            load_failure,
            next_offset: snapshot.checkpoint.as_ref().map_or(0, |c| c.offset),
            seen: snapshot.seen.keys().copied().collect(),
            repair: restored.repair,
            uncommitted: 0,
            tick_pending: false,
        };
        if let Some(applied) = opened.applied {
            let before = snapshot.timers.into_keys();
            self.publish_upgrade(p, &mut partition, before, &applied, opened.checkpoint)?;
        }
        Ok(partition)
    }

    /// Reads partition `p` of the changelog from its start up to a marker
    /// written now (never trusting the broker's end offsets).
    fn read_changelog(&mut self, p: i32) -> Result<changelog::Restored, String> {
        let nonce = format!(
            "{}:{}:{p}:{}",
            hostname(),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let marker = changelog::marker(nonce.as_bytes());
        send(
            &self.producer,
            changelog_record(&self.args.changelog, p, &marker),
        )?;
        flush(&self.producer)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.args.changelog, p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
        self.restorer.assign(&tpl).map_err(|e| e.to_string())?;
        let mut restore = Restore::new(nonce.as_bytes());
        let deadline = Instant::now() + BROKER_WAIT;
        loop {
            if Instant::now() > deadline {
                return Err(format!(
                    "the changelog `{}` partition {p} was not read up to this process's marker within {}s",
                    self.args.changelog,
                    BROKER_WAIT.as_secs()
                ));
            }
            match self.restorer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if restore.feed(m.key().unwrap_or_default(), m.payload())? => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(partition = p, "reading the changelog: {e}"),
                None => {}
            }
        }
        self.restorer.unassign().map_err(|e| e.to_string())?;
        Ok(restore.finish())
    }

    /// The local cache of partition `p`, rebuilt from its changelog: the
    /// changelog is the truth, and the cache may be stale or another
    /// partition's.
    fn rebuild_cache(&self, p: i32, snapshot: &changelog::Snapshot) -> Result<PathBuf, String> {
        let dir = self.args.state.join(format!("p{p}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("cannot clear `{}`: {e}", dir.display()))?;
        }
        let fresh = Store::open(&dir, &self.given, store::DEFAULT_CACHE_MIB, None)
            .map_err(|e| e.0)?
            .store;
        let state = snapshot
            .checkpoint
            .as_ref()
            .map(|c| c.state.clone())
            .unwrap_or_else(|| {
                let version = store::Version {
                    fingerprint: self.given.fingerprint(),
                    policy: None,
                };
                Checkpoint::at(version, None, None)
            });
        fresh
            .import(
                snapshot.program.as_deref(),
                snapshot
                    .profiles
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_slice())),
                snapshot
                    .timers
                    .iter()
                    .map(|((id, slot), at)| ((id.as_str(), *slot), *at)),
                snapshot.zones.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                snapshot.seen.iter().map(|(k, v)| (*k, v.as_slice())),
                &state,
            )
            .map_err(|e| e.0)?;
        drop(fresh);
        Ok(dir)
    }

    /// An engine as the workers run it: explanations, the evaluator (one
    /// compiled program per policy version), profiles read from the store.
    fn configured(
        &mut self,
        mut engine: Engine,
        program: &Arc<Program>,
        store: &Store,
        load_failure: &Rc<RefCell<Option<String>>>,
    ) -> Result<Engine, String> {
        engine.set_explain(self.args.explain);
        if self.jit {
            let jit = match self.compiled.get(&program.fingerprint()) {
                Some(jit) => Rc::clone(jit),
                None => {
                    let jit = Rc::new(
                        nudge::jit::Jit::compile(Arc::clone(program)).map_err(|e| e.to_string())?,
                    );
                    self.compiled.insert(program.fingerprint(), Rc::clone(&jit));
                    jit
                }
            };
            engine.use_jit(jit);
        }
        engine.set_loader(store.loader(Rc::clone(load_failure)));
        Ok(engine)
    }

    /// (1.1) Writes a partition whose store was just upgraded to its
    /// changelog, whole: every profile, the timers (tombstones for those of
    /// `before` no longer pending), the merged program, the `exited`
    /// decisions of stopped instances, then the checkpoint they take effect
    /// with — a crash before it leaves the changelog as it was.
    fn publish_upgrade(
        &mut self,
        p: i32,
        partition: &mut Partition,
        before: impl Iterator<Item = (String, u64)>,
        applied: &store::Applied,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(), String> {
        let (profiles, timers) = partition.store.raw_state().map_err(|e| e.0)?;
        let mut records = changelog::upgraded(&profiles, before, &timers);
        if let Some(bytes) = partition.store.program_bytes().map_err(|e| e.0)? {
            records.push(changelog::program(&bytes));
        }
        records.push(changelog::upgrade(partition.next_offset, &applied.record));
        for r in &records {
            send(&self.producer, changelog_record(&self.args.changelog, p, r))?;
        }
        crate::cli::run::stopped_decisions(checkpoint.as_ref(), &mut self.decisions);
        self.emit()?;
        self.flush_sinks()?;
        flush(&self.producer)?;
        let state = Checkpoint {
            stopped: Vec::new(),
            ..checkpoint.unwrap_or_default()
        };
        let c = PartitionCheckpoint {
            state,
            offset: partition.next_offset,
        };
        send(
            &self.producer,
            changelog_record(&self.args.changelog, p, &changelog::checkpoint(&c)?),
        )?;
        flush(&self.producer)?;
        partition.recorded = true;
        tracing::info!(
            profiles = applied.profiles,
            attributes_reset = applied.attributes_reset,
            stopped = applied.stopped,
            "partition {p} took the new policy set at input offset {}:\n{}",
            partition.next_offset,
            applied.summary.applied()
        );
        Ok(())
    }

    /// (1.1) Takes the latest policy set read, when it is new to this worker:
    /// each partition commits, then its store is upgraded to it (with
    /// --upgrade) and written to its changelog whole, or what it would change
    /// is logged and the running version kept.
    fn take_policy(&mut self) -> Result<(), String> {
        let (generation, given) = self.shared.policy();
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        let held: Vec<i32> = self.partitions.keys().copied().collect();
        for p in held {
            self.commit(&[p])?;
            let Some(mut partition) = self.partitions.remove(&p) else {
                continue;
            };
            let result = self.take_policy_in(p, &mut partition, &given);
            self.partitions.insert(p, partition);
            result?;
        }
        if self.args.upgrade.is_some() {
            self.given = given;
        }
        Ok(())
    }

    fn take_policy_in(
        &mut self,
        p: i32,
        partition: &mut Partition,
        given: &Arc<Program>,
    ) -> Result<(), String> {
        let before: Vec<(String, u64)> = partition
            .store
            .raw_state()
            .map_err(|e| e.0)?
            .1
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        match partition
            .store
            .reload(given, self.args.upgrade)
            .map_err(|e| e.0)?
        {
            store::Reload::Same => {
                partition.version = partition.version.given(given.fingerprint());
            }
            store::Reload::Kept(summary) => crate::cli::serve::reload::kept(Some(p), &summary),
            store::Reload::Upgraded(upgraded) => {
                let store::Upgraded {
                    engine,
                    checkpoint,
                    program,
                    applied,
                } = *upgraded;
                let engine =
                    self.configured(engine, &program, &partition.store, &partition.load_failure)?;
                partition.engine = engine;
                partition.version = store::Version::of(&program, given.fingerprint());
                partition.reader = Reader::new(Arc::clone(&program));
                self.publish_upgrade(p, partition, before.into_iter(), &applied, checkpoint)?;
            }
        }
        Ok(())
    }

    /// Applies one input message.
    fn apply(&mut self, p: i32, offset: i64, payload: Option<&[u8]>, key: Option<&[u8]>) {
        let Some(partition) = self.partitions.get_mut(&p) else {
            // A message fetched before a revocation took effect.
            return;
        };
        if offset < partition.next_offset {
            return;
        }
        partition.next_offset = offset + 1;
        partition.uncommitted += 1;
        self.metrics.events.inc();
        let line = match payload.map(std::str::from_utf8) {
            Some(Ok(text)) => Ok(text.trim_end_matches(['\n', '\r'])),
            Some(Err(_)) => Err("not UTF-8 text"),
            None => Err("an empty message (no value)"),
        };
        let parsed = line.map_err(str::to_string).and_then(|line| {
            partition
                .reader
                .read(line)
                .map(|event| (event, line))
                .map_err(|d| d.0)
        });
        match parsed {
            Ok((event, line)) => {
                if matches!(event.body, nudge::runtime::Body::Tick) {
                    // Another group's tick (a second deployment on this
                    // topic) is not this one's clock: no effect at all.
                    if let Some(other) = tick_group(line)
                        && other != self.args.group
                    {
                        return;
                    }
                    partition.tick_pending = false;
                }
                partition.engine.process(event, &mut self.decisions);
                let failure = partition.load_failure.borrow_mut().take();
                if let Some(e) = failure {
                    self.fail(format!("cannot read the local state of partition {p}: {e}"));
                    return;
                }
                if let Err(e) = self.emit() {
                    self.fail(e);
                }
            }
            Err(reason) => {
                self.metrics
                    .dead_letters
                    .get_or_create(&ReasonLabels {
                        reason: http::reason_label(&reason),
                    })
                    .inc();
                let raw = payload.map(String::from_utf8_lossy).unwrap_or_default();
                let raw = match self.partitions.get(&p) {
                    Some(partition) => partition.reader.redact(&raw).into_owned(),
                    None => raw.into_owned(),
                };
                if let Err(e) = self.dead_letter(p, offset, key, &reason, &raw) {
                    self.fail(e);
                }
            }
        }
    }

    /// Hands the decisions made so far to the sink.
    fn emit(&mut self) -> Result<(), String> {
        for d in self.decisions.drain(..) {
            self.decision_counters.count(&self.metrics, &d);
            self.text.clear();
            write_decision(&d, &mut self.text);
            match &mut self.out {
                Sink::Topic(topic) => {
                    let mut record = BaseRecord::to(topic.as_str())
                        .key(d.profile.as_str().as_bytes())
                        .payload(self.text.as_bytes());
                    if let DecisionKind::Send { message_id, .. } = &d.kind {
                        record = record.headers(OwnedHeaders::new().insert(Header {
                            key: "message_id",
                            value: Some(message_id.as_str()),
                        }));
                    }
                    send(&self.producer, record)?;
                }
                Sink::File(w, path) => {
                    let mut w = w
                        .lock()
                        .map_err(|_| "a sink's lock is poisoned".to_string())?;
                    writeln!(w, "{}", self.text)
                        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
                }
                Sink::Log => {}
            }
        }
        Ok(())
    }

    fn dead_letter(
        &mut self,
        p: i32,
        offset: i64,
        key: Option<&[u8]>,
        reason: &str,
        raw: &str,
    ) -> Result<(), String> {
        let line = serde_json::json!({
            "partition": p,
            "offset": offset,
            "reason": reason,
            "raw": raw,
        })
        .to_string();
        match &mut self.dead {
            Sink::Topic(topic) => {
                let mut record = BaseRecord::to(topic.as_str()).payload(line.as_bytes());
                if let Some(k) = key {
                    record = record.key(k);
                }
                send(&self.producer, record)
            }
            Sink::File(w, path) => {
                let mut w = w
                    .lock()
                    .map_err(|_| "a sink's lock is poisoned".to_string())?;
                writeln!(w, "{line}").map_err(|e| format!("cannot write `{}`: {e}", path.display()))
            }
            Sink::Log => {
                tracing::warn!(partition = p, offset, "rejected message: {reason}");
                Ok(())
            }
        }
    }

    /// Commits the named partitions (those with anything to commit).
    fn commit(&mut self, which: &[i32]) -> Result<(), String> {
        let started = Instant::now();
        let mut checkpoints = Vec::new();
        for &p in which {
            let Some(partition) = self.partitions.get_mut(&p) else {
                continue;
            };
            let mut changes = partition.engine.take_changes();
            let nothing = partition.uncommitted == 0
                && partition.repair.is_empty()
                && changes.profiles.is_empty()
                && changes.timers.is_empty()
                && changes.zones.is_empty()
                && changes.seen_added.is_empty();
            if nothing {
                continue;
            }
            let mut records = std::mem::take(&mut partition.repair);
            records.extend(changelog::records(&changes, &mut partition.seen)?);
            for r in &records {
                send(&self.producer, changelog_record(&self.args.changelog, p, r))?;
            }
            let state = Checkpoint::at(partition.version, changes.clock, changes.paused.take());
            if !partition.recorded {
                // (1.1) The program the partition runs, for a later upgrade.
                if let Some(bytes) = partition.store.program_bytes().map_err(|e| e.0)? {
                    send(
                        &self.producer,
                        changelog_record(&self.args.changelog, p, &changelog::program(&bytes)),
                    )?;
                }
                partition.recorded = true;
            }
            checkpoints.push((
                p,
                PartitionCheckpoint {
                    state: state.clone(),
                    offset: partition.next_offset,
                },
            ));
            // The cache follows; it is rebuilt from the changelog whenever the
            // partition is assigned, so it need not lead it.
            partition.store.commit(changes, &state).map_err(|e| e.0)?;
            partition.uncommitted = 0;
        }
        if checkpoints.is_empty() {
            self.last_commit = Instant::now();
            return Ok(());
        }
        self.flush_sinks()?;
        flush(&self.producer)?;
        for (p, c) in &checkpoints {
            send(
                &self.producer,
                changelog_record(&self.args.changelog, *p, &changelog::checkpoint(c)?),
            )?;
        }
        flush(&self.producer)?;
        // For the group's commit (lag monitoring and other tools); a restore
        // reads the changelog.
        if let Ok(mut committed) = self.shared.committed.lock() {
            for (p, c) in &checkpoints {
                committed.insert(*p, c.offset);
            }
        }
        self.last_commit = Instant::now();
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        for (p, _) in &checkpoints {
            if let Some(partition) = self.partitions.get(p) {
                self.metrics.engine_gauges(*p, &partition.engine);
            }
        }
        self.held_changed();
        tracing::debug!(
            partitions = checkpoints.len(),
            ms = started.elapsed().as_millis() as u64,
            "committed"
        );
        Ok(())
    }

    /// Syncs the decision and dead-letter files (topics are flushed with the
    /// producer).
    fn flush_sinks(&self) -> Result<(), String> {
        for sink in [&self.out, &self.dead] {
            if let Sink::File(w, path) = sink {
                let mut w = w
                    .lock()
                    .map_err(|_| "a sink's lock is poisoned".to_string())?;
                w.flush()
                    .and_then(|()| w.get_ref().sync_data())
                    .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            }
        }
        Ok(())
    }

    fn due_for_commit(&self) -> Vec<i32> {
        let by_count = self
            .partitions
            .values()
            .any(|p| p.uncommitted >= self.args.commit_every);
        if by_count || self.last_commit.elapsed() >= self.args.commit_interval {
            self.partitions.keys().copied().collect()
        } else {
            Vec::new()
        }
    }

    /// Writes a tick into each partition with a timer due by wall time − lag.
    fn tick(&mut self) -> Result<(), String> {
        for (&p, partition) in &mut self.partitions {
            if partition.tick_pending {
                continue;
            }
            let Some(line) = crate::cli::serve::due_tick(
                &partition.engine,
                self.args.lag,
                Some(&self.args.group),
            ) else {
                continue;
            };
            send(
                &self.producer,
                BaseRecord::to(self.args.topic.as_str())
                    .partition(p)
                    .payload(line.as_bytes()),
            )?;
            partition.tick_pending = true;
            self.metrics.ticks.inc();
        }
        Ok(())
    }
}

/// The group a tick line names, if any.
fn tick_group(line: &str) -> Option<String> {
    if !line.contains("\"group\"") {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("group")?
        .as_str()
        .map(str::to_string)
}
