//! `nudge serve --kafka`: the runtime as a member of a Kafka consumer group.
//!
//! One thread polls the group's consumer and runs one engine per assigned
//! input partition. Rebalance callbacks run on that thread inside `poll`
//! (librdkafka serves them from the consumer queue), so the engines live in a
//! thread-local the callbacks reach: an assignment restores each new
//! partition from its changelog before its first message is fetched (the
//! assignment carries the offset the changelog's checkpoint names); a
//! revocation commits the partition before it is handed to another member.
//!
//! A commit of the partitions that changed: their decisions are already in
//! the producer's queue; their changelog records are produced; the producer
//! is flushed (everything acknowledged, or the service stops); then their
//! checkpoints are produced and flushed; then the group's offsets are
//! committed (for lag monitoring — the changelog's checkpoint is what a
//! restore trusts). A crash before a checkpoint is acknowledged replays the
//! input since the previous one: the same decisions again, with the same
//! `message_id`s (README, "Run it as a service").
//!
//! The live clock (LANGUAGE.md §7.2): when a partition has a timer due by
//! wall time − `--lag`, a tick record `{"type":"tick","timestamp":…}` is
//! written into that input partition, and the clock moves when the tick is
//! read back like any message. The ticks are in the log, so a replay of the
//! topic — by `nudge serve` or by `nudge run` over its messages — gives the
//! same decisions byte for byte.

use super::ServeArgs;
use super::changelog::{self, PartitionCheckpoint, Record, Restore};
use super::http::{self, Metrics, PartitionLabels, ReasonLabels};
use crate::cli::store::{self, Checkpoint, Store};
use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::ir::Program;
use nudge::runtime::{Decision, DecisionKind, Engine};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long any one wait on the broker may take before the service gives up
/// with an error (a restore, a flush, a metadata request).
const BROKER_WAIT: Duration = Duration::from_secs(60);

/// Records the first failed delivery: a commit that follows it must not be
/// made (what it would record as delivered was not).
#[derive(Default)]
struct Delivery {
    failed: Mutex<Option<String>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result
            && let Ok(mut failed) = self.failed.lock()
        {
            failed.get_or_insert_with(|| {
                format!("a message to `{}` was not delivered: {e}", m.topic())
            });
        }
    }
}

type Sender = ThreadedProducer<Delivery>;

/// What the workers and the polling thread share.
struct Shared {
    /// The first error that must stop the service.
    fatal: Mutex<Option<String>>,
    /// Each partition's offset as last checkpointed, for the group's commit.
    committed: Mutex<BTreeMap<i32, i64>>,
    /// Each held partition's next offset, for the lag thread.
    positions: Arc<Mutex<BTreeMap<i32, i64>>>,
    metrics: Arc<Metrics>,
    /// (1.1) The latest policy set read (SIGHUP, or its files changed), with
    /// a number that grows with each: the workers take it at their next
    /// commit (LANGUAGE.md §7.7).
    policy: Mutex<(u64, Arc<Program>)>,
}

impl Shared {
    fn fail(&self, message: String) {
        tracing::error!("{message}");
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(message);
        }
    }

    fn fatal(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    /// The latest policy set read, and its number.
    fn policy(&self) -> (u64, Arc<Program>) {
        let policy = self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (policy.0, Arc::clone(&policy.1))
    }
}

/// What the polling thread asks of a worker.
enum Command {
    /// Restore these partitions; the reply is each one's next offset.
    Assign(Vec<i32>, mpsc::SyncSender<Vec<(i32, i64)>>),
    /// Commit (unless lost) and drop these partitions; the reply says done.
    Revoke(Vec<i32>, bool, mpsc::SyncSender<()>),
    Messages(Vec<Input>),
}

/// One input message, copied out of the consumer for a worker.
struct Input {
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

/// The consumer's context: rebalances run on the polling thread, inside
/// `poll`; each partition goes to the worker holding fewest, which restores
/// it before the assignment (carrying its offset) is made, and commits it
/// before a revocation is acknowledged.
struct Group {
    topic: String,
    workers: Vec<mpsc::SyncSender<Command>>,
    /// Partition → the worker that holds it.
    owner: Mutex<BTreeMap<i32, usize>>,
    shared: Arc<Shared>,
}

impl ClientContext for Group {}

impl ConsumerContext for Group {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Cooperative
        );
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for (p, offset) in self.assign(&partitions) {
                    let at = if offset == 0 {
                        Offset::Beginning
                    } else {
                        Offset::Offset(offset)
                    };
                    if let Err(e) = tpl.set_partition_offset(&self.topic, p, at) {
                        self.shared
                            .fail(format!("cannot set the offset of partition {p}: {e}"));
                    }
                }
                self.shared.metrics.ready.store(true, Ordering::Relaxed);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke(&partitions, consumer.assignment_lost());
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => Err(KafkaError::Rebalance(other.into())),
        };
        if let Err(e) = result {
            self.shared
                .fail(format!("the consumer group's rebalance failed: {e}"));
        }
    }
}

impl Group {
    /// Hands each partition to the worker holding fewest and waits for the
    /// restores (the workers restore theirs in parallel).
    fn assign(&self, partitions: &[i32]) -> Vec<(i32, i64)> {
        let Ok(mut owner) = self.owner.lock() else {
            return Vec::new();
        };
        let mut load = vec![0usize; self.workers.len()];
        for w in owner.values() {
            load[*w] += 1;
        }
        let mut by_worker: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            let w = (0..load.len()).min_by_key(|w| load[*w]).unwrap_or(0);
            load[w] += 1;
            owner.insert(p, w);
            by_worker.entry(w).or_default().push(p);
        }
        let mut replies = Vec::new();
        for (w, ps) in by_worker {
            let (tx, rx) = mpsc::sync_channel(1);
            if self.workers[w].send(Command::Assign(ps, tx)).is_err() {
                self.shared.fail("a partition worker stopped".into());
                continue;
            }
            replies.push(rx);
        }
        let offsets = replies
            .into_iter()
            .flat_map(|rx| rx.recv().unwrap_or_default())
            .collect();
        self.shared.metrics.partitions.set(owner.len() as i64);
        offsets
    }

    /// Has each worker commit (unless `lost`: another member may own them
    /// already) and drop its revoked partitions, and waits for it.
    fn revoke(&self, partitions: &[i32], lost: bool) {
        let Ok(mut owner) = self.owner.lock() else {
            return;
        };
        let mut by_worker: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for p in partitions {
            if let Some(w) = owner.remove(p) {
                by_worker.entry(w).or_default().push(*p);
            }
        }
        let mut replies = Vec::new();
        for (w, ps) in by_worker {
            let (tx, rx) = mpsc::sync_channel(1);
            if self.workers[w].send(Command::Revoke(ps, lost, tx)).is_ok() {
                replies.push(rx);
            }
        }
        for rx in replies {
            let _ = rx.recv();
        }
        if let Ok(mut committed) = self.committed_lock() {
            for p in partitions {
                committed.remove(p);
            }
        }
        self.shared.metrics.partitions.set(owner.len() as i64);
    }

    fn committed_lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<i32, i64>>, ()> {
        self.shared.committed.lock().map_err(|_| ())
    }
}

/// Where decisions or dead letters go (a file is shared by the workers).
#[derive(Clone)]
enum Sink {
    Topic(String),
    File(Arc<Mutex<std::io::BufWriter<std::fs::File>>>, PathBuf),
    /// Dead letters without a sink: counted and logged.
    Log,
}

/// One assigned input partition.
struct Partition {
    /// (1.1) What the partition runs: the given set, or after an upgrade that
    /// kept older journey versions, the merged program (LANGUAGE.md §7.7).
    program: Arc<Program>,
    /// The fingerprint of the set given, when it differs from `program`'s.
    policy: Option<u64>,
    /// Whether the changelog holds `program`'s record.
    recorded: bool,
    reader: Reader,
    engine: Engine,
    store: Store,
    load_failure: Rc<RefCell<Option<String>>>,
    /// The offset of the next input message to apply.
    next_offset: i64,
    /// The live message-id batches in the changelog.
    seen: BTreeSet<(i64, u64)>,
    /// Records of a crashed owner's commit to overwrite (changelog.rs).
    repair: Vec<Record>,
    /// Input messages applied since the last commit.
    uncommitted: u64,
    /// A tick written into the partition and not read back yet.
    tick_pending: bool,
}

/// A thread running the engines of some of the assigned partitions.
struct Worker {
    /// The policy set new partitions start from, and its number.
    given: Arc<Program>,
    generation: u64,
    args: Settings,
    producer: Arc<Sender>,
    restorer: BaseConsumer,
    /// Whether engines use the JIT, and each program's compiled code.
    jit: bool,
    compiled: BTreeMap<u64, Rc<nudge::jit::Jit>>,
    partitions: BTreeMap<i32, Partition>,
    out: Sink,
    dead: Sink,
    decisions: Vec<Decision>,
    text: String,
    /// The first error that must stop the service.
    fatal: Option<String>,
    shared: Arc<Shared>,
    last_commit: Instant,
    metrics: Arc<Metrics>,
    /// The decision counters by kind and journey, found once each.
    decision_counters: http::DecisionCounters,
}

/// What the workers keep of the arguments.
#[derive(Clone)]
struct Settings {
    topic: String,
    group: String,
    changelog: String,
    state: PathBuf,
    lag: i64,
    commit_every: u64,
    commit_interval: Duration,
    explain: bool,
    upgrade: Option<store::Upgrade>,
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
    fn run(&mut self, commands: mpsc::Receiver<Command>) {
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
        let restored = restore.finish();
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
        // The local cache, rebuilt from the changelog: the changelog is the
        // truth, and the cache may be stale or another partition's.
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
            .unwrap_or_else(|| state_checkpoint(&self.given, None, None, None));
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
        let given = self.given.fingerprint();
        let mut partition = Partition {
            policy: (opened.program.fingerprint() != given).then_some(given),
            recorded: snapshot.program.is_some(),
            reader: Reader::new(Arc::clone(&opened.program)),
            program: opened.program,
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
                let fingerprint = given.fingerprint();
                partition.policy =
                    (partition.program.fingerprint() != fingerprint).then_some(fingerprint);
            }
            store::Reload::Kept(summary) => tracing::warn!(
                "partition {p}: the policy set changed; started without --upgrade, the service keeps the running version. Applying it would change:\n{summary}"
            ),
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
                let fingerprint = given.fingerprint();
                partition.policy = (program.fingerprint() != fingerprint).then_some(fingerprint);
                partition.reader = Reader::new(Arc::clone(&program));
                partition.program = program;
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
            let state = state_checkpoint(
                &partition.program,
                partition.policy,
                changes.clock,
                changes.paused.take(),
            );
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
            let Some(line) =
                super::due_tick(&partition.engine, self.args.lag, Some(&self.args.group))
            else {
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

/// A partition's state checkpoint (no input file or outputs: the changelog's
/// checkpoint record carries the offset).
fn state_checkpoint(
    program: &Program,
    policy: Option<u64>,
    clock: Option<i64>,
    firing: Option<nudge::runtime::Paused>,
) -> Checkpoint {
    Checkpoint {
        format: store::FORMAT.to_string(),
        fingerprint: program.fingerprint(),
        clock,
        input: None,
        out: None,
        dead_letter: None,
        firing,
        policy,
        stopped: Vec::new(),
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

fn changelog_record<'a>(topic: &'a str, p: i32, r: &'a Record) -> BaseRecord<'a, [u8], [u8]> {
    let record = BaseRecord::to(topic).partition(p).key(r.key.as_slice());
    match &r.value {
        Some(v) => record.payload(v.as_slice()),
        None => record,
    }
}

/// Queues a record, waiting while the producer's queue is full.
fn send(producer: &Sender, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<(), String> {
    let deadline = Instant::now() + BROKER_WAIT;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if Instant::now() < deadline =>
            {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, back)) => {
                return Err(format!("cannot send a message to `{}`: {e}", back.topic));
            }
        }
    }
}

/// Waits until everything queued is acknowledged; an error if anything failed.
fn flush(producer: &Sender) -> Result<(), String> {
    producer.flush(BROKER_WAIT).map_err(|e| {
        format!(
            "the broker did not acknowledge what was sent within {}s: {e}",
            BROKER_WAIT.as_secs()
        )
    })?;
    match producer.context().failed.lock() {
        Ok(failed) => match failed.as_ref() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        },
        Err(_) => Err("the producer's delivery record is poisoned".into()),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn config(brokers: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    // A dead member's partitions move after 10 s rather than librdkafka's
    // 45 s: a journey's decisions wait that long. `--kafka-config` overrides.
    c.set("session.timeout.ms", "10000");
    c.set("heartbeat.interval.ms", "3000");
    for (k, v) in extra {
        c.set(k, v);
    }
    c
}

/// The input topic's partition count, and the changelog created (compacted,
/// as many partitions) when missing.
fn prepare_topics(
    args: &ServeArgs,
    brokers: &str,
    topic: &str,
    changelog: &str,
) -> Result<usize, String> {
    let probe: BaseConsumer = config(brokers, &args.kafka_config)
        .create()
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let partitions_of = |name: &str| -> Result<Option<usize>, String> {
        let metadata = probe
            .fetch_metadata(Some(name), Duration::from_secs(10))
            .map_err(|e| format!("cannot reach the Kafka brokers `{brokers}`: {e}"))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|n| *n > 0))
    };
    let Some(count) = partitions_of(topic)? else {
        return Err(format!("the topic `{topic}` does not exist on `{brokers}`"));
    };
    match partitions_of(changelog)? {
        Some(n) if n >= count => return Ok(count),
        Some(n) => {
            return Err(format!(
                "the changelog topic `{changelog}` has {n} partitions, fewer than the {count} of `{topic}`: each input partition keeps its state in the changelog partition of the same number"
            ));
        }
        None => {}
    }
    let admin: AdminClient<DefaultClientContext> = config(brokers, &args.kafka_config)
        .create()
        .map_err(|e| format!("cannot create a Kafka admin client: {e}"))?;
    let partitions = i32::try_from(count).map_err(|_| "too many partitions".to_string())?;
    let new = NewTopic::new(changelog, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        // Records younger than a day are never compacted: a crashed owner's
        // incomplete commit is repaired by the next owner well within it.
        .set("min.compaction.lag.ms", "86400000");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let results = runtime
        .block_on(admin.create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(BROKER_WAIT)),
        ))
        .map_err(|e| format!("cannot create the changelog topic `{changelog}`: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, e)) => {
                return Err(format!("cannot create the changelog topic `{name}`: {e}"));
            }
        }
    }
    tracing::info!(
        topic = changelog,
        partitions = count,
        "created the changelog topic"
    );
    Ok(count)
}

fn open_sink(topic: &Option<String>, file: &Option<PathBuf>) -> Result<Sink, String> {
    if let Some(t) = topic {
        return Ok(Sink::Topic(t.clone()));
    }
    if let Some(path) = file {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        return Ok(Sink::File(
            Arc::new(Mutex::new(std::io::BufWriter::new(f))),
            path.clone(),
        ));
    }
    Ok(Sink::Log)
}

pub fn serve(args: &ServeArgs, program: Arc<Program>) -> Result<(), String> {
    let brokers = args.kafka.as_deref().unwrap_or_default();
    let topic = args.topic.clone().unwrap_or_default();
    let group = args.group.clone().unwrap_or_default();
    let changelog = args
        .changelog_topic
        .clone()
        .unwrap_or_else(|| format!("{group}-changelog"));
    let (state, _lock) = super::state_dir(args.state.as_deref(), &group)?;
    prepare_topics(args, brokers, &topic, &changelog)?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    // (1.1) SIGHUP, or a change of the policy files, reads the set again.
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("cannot handle signals: {e}"))?;

    let producer: Arc<Sender> = Arc::new(
        config(brokers, &args.kafka_config)
            .set("enable.idempotence", "true")
            // Where Java producers put a key (NOTES.md), so that decisions of
            // a profile land where other tools expect them.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create_with_context(Delivery::default())
            .map_err(|e| format!("cannot create a Kafka producer: {e}"))?,
    );

    // The endpoints come up before the group is joined: /healthz answers at
    // once, /readyz once partitions are assigned.
    let metrics = Arc::new(Metrics::new());
    let ingest_reader = http::shared(Reader::new(Arc::clone(&program)));
    let ingest = match args.http {
        Some(addr) => {
            let producer: rdkafka::producer::FutureProducer = config(brokers, &args.kafka_config)
                .set("enable.idempotence", "true")
                .set("partitioner", "murmur2_random")
                .set("linger.ms", "2")
                .create()
                .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
            Some((
                addr,
                http::Ingest {
                    destination: http::Destination::Kafka {
                        producer,
                        topic: topic.clone(),
                    },
                    write_key: args.write_key.clone(),
                    reader: Arc::clone(&ingest_reader),
                },
            ))
        }
        None => None,
    };
    let endpoints = if args.metrics.is_some() || ingest.is_some() {
        Some(http::start(Arc::clone(&metrics), args.metrics, ingest)?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        fatal: Mutex::new(None),
        committed: Mutex::new(BTreeMap::new()),
        positions: Arc::new(Mutex::new(BTreeMap::new())),
        metrics: Arc::clone(&metrics),
        policy: Mutex::new((0, Arc::clone(&program))),
    });
    watch_policy(args, reload, &stop, &shared, ingest_reader)?;
    let lag_thread = if args.metrics.is_some() {
        Some(watch_lag(
            config(brokers, &args.kafka_config),
            topic.clone(),
            Arc::clone(&shared.positions),
            Arc::clone(&metrics),
            Arc::clone(&stop),
        )?)
    } else {
        None
    };

    let settings = Settings {
        topic: topic.clone(),
        group: group.clone(),
        changelog,
        state,
        lag: i64::try_from(args.lag.as_nanos()).unwrap_or(i64::MAX),
        commit_every: args.commit_every,
        commit_interval: args.commit_interval,
        explain: args.explain,
        upgrade: args.upgrade.map(store::UpgradeMode::upgrade),
    };
    let out = open_sink(&args.out_topic, &args.out)?;
    let dead = open_sink(&args.dead_letter_topic, &args.dead_letter)?;
    let threads = usize::try_from(args.threads).unwrap_or(1).max(1);
    let mut senders = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for w in 0..threads {
        // librdkafka assigns partitions only to a consumer with a group id;
        // this one never subscribes nor commits, so it never joins the group.
        let restorer: BaseConsumer = config(brokers, &args.kafka_config)
            .set("group.id", format!("{group}-restore"))
            // A restore reads to the marker just written: no reason to wait
            // for a full fetch.
            .set("fetch.wait.max.ms", "10")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
        // Bounded: a worker that falls behind holds the polling thread back
        // rather than the process's memory growing.
        let (tx, rx) = mpsc::sync_channel::<Command>(64);
        senders.push(tx);
        let (program, settings, producer, out, dead, shared, metrics) = (
            Arc::clone(&program),
            settings.clone(),
            Arc::clone(&producer),
            out.clone(),
            dead.clone(),
            Arc::clone(&shared),
            Arc::clone(&metrics),
        );
        let jit_wanted = args.engine == super::Evaluator::Jit;
        let thread = std::thread::Builder::new()
            .name(format!("nudge-worker-{w}"))
            .spawn(move || {
                // The engines of a worker are built on its thread (they are
                // not `Send`), with one compiled program per policy version.
                let mut compiled = BTreeMap::new();
                if jit_wanted {
                    match nudge::jit::Jit::compile(Arc::clone(&program)) {
                        Ok(j) => {
                            compiled.insert(program.fingerprint(), Rc::new(j));
                        }
                        Err(e) => {
                            shared.fail(e.to_string());
                            return;
                        }
                    }
                }
                let generation = shared.policy().0;
                let mut worker = Worker {
                    given: program,
                    generation,
                    args: settings,
                    producer,
                    restorer,
                    jit: jit_wanted,
                    compiled,
                    partitions: BTreeMap::new(),
                    out,
                    dead,
                    decisions: Vec::new(),
                    text: String::new(),
                    fatal: None,
                    shared,
                    last_commit: Instant::now(),
                    metrics,
                    decision_counters: http::DecisionCounters::default(),
                };
                worker.run(rx);
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        workers.push(thread);
    }
    let consumer: BaseConsumer<Group> = config(brokers, &args.kafka_config)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(Group {
            topic: topic.clone(),
            workers: senders,
            owner: Mutex::new(BTreeMap::new()),
            shared: Arc::clone(&shared),
        })
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;

    let result = serve_loop(&consumer, &stop, &topic, &shared);
    metrics.stopping.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    // Leaving the group revokes what is still held: the workers commit it.
    if result.is_ok() {
        consumer.unsubscribe();
        let deadline = Instant::now() + BROKER_WAIT;
        while consumer
            .context()
            .owner
            .lock()
            .map(|o| !o.is_empty())
            .unwrap_or(false)
            && Instant::now() < deadline
        {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        commit_group(&consumer, &shared);
    }
    drop(consumer);
    // The workers end when their channels close (the consumer's context
    // held them), each committing what it still holds.
    for w in workers {
        let _ = w.join();
    }
    drop(endpoints);
    if let Some(t) = lag_thread {
        let _ = t.join();
    }
    result?;
    match shared.fatal() {
        Some(e) => Err(e),
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Commits the group's offsets as the workers last checkpointed them.
fn commit_group(consumer: &BaseConsumer<Group>, shared: &Shared) {
    let Ok(committed) = shared.committed.lock() else {
        return;
    };
    if committed.is_empty() {
        return;
    }
    let mut offsets = TopicPartitionList::new();
    for (p, offset) in committed.iter() {
        let _ =
            offsets.add_partition_offset(&consumer.context().topic, *p, Offset::Offset(*offset));
    }
    drop(committed);
    if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::warn!("cannot commit the group's offsets: {e}");
    }
}

/// Every few seconds, each held partition's lag: the broker's high watermark
/// minus the next offset to apply (on its own client and thread, so that a
/// slow broker answer never holds the service).
fn watch_lag(
    config: ClientConfig,
    topic: String,
    positions: Arc<Mutex<BTreeMap<i32, i64>>>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let client: BaseConsumer = config
        .create()
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    std::thread::Builder::new()
        .name("nudge-lag".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if last.is_some_and(|l| l.elapsed() < Duration::from_secs(5)) {
                    continue;
                }
                last = Some(Instant::now());
                let held: Vec<(i32, i64)> = positions
                    .lock()
                    .map(|p| p.iter().map(|(k, v)| (*k, *v)).collect())
                    .unwrap_or_default();
                for (p, next) in held {
                    if let Ok((_, high)) =
                        client.fetch_watermarks(&topic, p, Duration::from_secs(2))
                    {
                        metrics
                            .lag
                            .get_or_create(&PartitionLabels { partition: p })
                            .set((high - next).max(0));
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))
}

/// (1.1) Reads the policy set again on SIGHUP or when its files change (looked
/// at once a second), on a thread of its own: a set with errors is logged and
/// not taken; a new one is handed to the workers, which take it (or, without
/// --upgrade, log what it would change) at each partition's next commit.
fn watch_policy(
    args: &ServeArgs,
    reload: Arc<AtomicBool>,
    stop: &Arc<AtomicBool>,
    shared: &Arc<Shared>,
    ingest_reader: http::SharedReader,
) -> Result<(), String> {
    let (paths, upgrade) = (args.policy.clone(), args.upgrade.is_some());
    let (stop, shared) = (Arc::clone(stop), Arc::clone(shared));
    std::thread::Builder::new()
        .name("nudge-policy".into())
        .spawn(move || {
            let mut stamp = super::policy_stamp(&paths);
            let mut last_look = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let mut asked = reload.swap(false, Ordering::Relaxed);
                if last_look.elapsed() >= Duration::from_secs(1) {
                    last_look = Instant::now();
                    let now = super::policy_stamp(&paths);
                    if now != stamp {
                        stamp = now;
                        asked = true;
                    }
                }
                if !asked {
                    continue;
                }
                let Ok(program) = crate::cli::program(&paths) else {
                    tracing::warn!(
                        "the policy set has errors (printed above); the running version is kept"
                    );
                    continue;
                };
                let mut policy = shared
                    .policy
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if policy.1.fingerprint() == program.fingerprint() {
                    tracing::info!("the policy set is the one last read (no change a running store would see)");
                    continue;
                }
                *policy = (policy.0 + 1, Arc::clone(&program));
                drop(policy);
                if upgrade {
                    *ingest_reader
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Reader::new(program);
                    tracing::info!("read a new version of the policy set: each partition takes it at its next commit");
                } else {
                    tracing::info!("read a new version of the policy set: started without --upgrade, each partition keeps the running version");
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok(())
}

/// Polls the group and hands each message to the worker of its partition,
/// in batches, until stopped or a worker fails.
fn serve_loop(
    consumer: &BaseConsumer<Group>,
    stop: &AtomicBool,
    topic: &str,
    shared: &Shared,
) -> Result<(), String> {
    consumer
        .subscribe(&[topic])
        .map_err(|e| format!("cannot subscribe to `{topic}`: {e}"))?;
    tracing::info!(topic, "joined the consumer group");
    let context = consumer.context();
    let mut batches: Vec<Vec<Input>> = (0..context.workers.len()).map(|_| Vec::new()).collect();
    let mut last_group_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut wait = Duration::from_millis(100);
        // Up to a batch's worth of what is already fetched, without waiting.
        for _ in 0..512 {
            let Some(polled) = consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            match polled {
                Ok(m) => {
                    let owner = context
                        .owner
                        .lock()
                        .ok()
                        .and_then(|o| o.get(&m.partition()).copied());
                    if let Some(w) = owner {
                        batches[w].push(Input {
                            partition: m.partition(),
                            offset: m.offset(),
                            payload: m.payload().map(<[u8]>::to_vec),
                            key: m.key().map(<[u8]>::to_vec),
                        });
                    }
                }
                Err(e) => tracing::warn!("from the consumer: {e}"),
            }
        }
        for (w, batch) in batches.iter_mut().enumerate() {
            if !batch.is_empty()
                && context.workers[w]
                    .send(Command::Messages(std::mem::take(batch)))
                    .is_err()
            {
                shared.fail("a partition worker stopped".into());
            }
        }
        if let Some(e) = shared.fatal() {
            return Err(e);
        }
        if last_group_commit.elapsed() >= Duration::from_secs(1) {
            last_group_commit = Instant::now();
            commit_group(consumer, shared);
        }
    }
    tracing::info!("stopping: committing and leaving the group");
    Ok(())
}
