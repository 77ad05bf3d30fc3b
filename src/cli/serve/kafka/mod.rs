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

mod worker;

use crate::cli::serve::ServeArgs;
use crate::cli::serve::changelog::Record;
use crate::cli::serve::http::{self, Metrics, PartitionLabels};
use crate::cli::serve::reload::PolicyWatch;
use crate::cli::store;
use nudge::io::input::Reader;
use nudge::ir::Program;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use worker::{Settings, Worker};

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

    let (stop, reload) = super::signals()?;
    let producer = producer(brokers, &args.kafka_config)?;

    // The endpoints come up before the group is joined: /healthz answers at
    // once, /readyz once partitions are assigned.
    let metrics = Arc::new(Metrics::new());
    let ingest_reader = http::shared(Reader::new(Arc::clone(&program)));
    let endpoints = start_endpoints(args, &topic, &metrics, &ingest_reader)?;
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
    let (senders, workers) = spawn_workers(args, &program, &settings, &producer, &shared)?;
    let consumer = consumer(
        brokers,
        &args.kafka_config,
        &group,
        Group {
            topic: topic.clone(),
            workers: senders,
            owner: Mutex::new(BTreeMap::new()),
            shared: Arc::clone(&shared),
        },
    )?;

    let result = serve_loop(&consumer, &stop, &topic, &shared);
    metrics.stopping.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    if result.is_ok() {
        leave_group(&consumer, &shared);
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

/// The producer of decisions, dead letters, changelog records and ticks.
fn producer(brokers: &str, settings: &[(String, String)]) -> Result<Arc<Sender>, String> {
    let producer = config(brokers, settings)
        .set("enable.idempotence", "true")
        // Where Java producers put a key (NOTES.md), so that decisions of
        // a profile land where other tools expect them.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create_with_context(Delivery::default())
        .map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
    Ok(Arc::new(producer))
}

/// The group's consumer of the input topic: offsets committed by hand,
/// from the start for a new group, partitions handed over cooperatively.
fn consumer(
    brokers: &str,
    settings: &[(String, String)],
    group: &str,
    context: Group,
) -> Result<BaseConsumer<Group>, String> {
    config(brokers, settings)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(context)
        .map_err(|e| format!("cannot create a Kafka consumer: {e}"))
}

/// The HTTP endpoints (`--metrics`, `--http` ingest into the input topic),
/// up before the group is joined: /healthz answers at once, /readyz once
/// partitions are assigned.
fn start_endpoints(
    args: &ServeArgs,
    topic: &str,
    metrics: &Arc<Metrics>,
    ingest_reader: &http::SharedReader,
) -> Result<Option<http::Endpoints>, String> {
    let brokers = args.kafka.as_deref().unwrap_or_default();
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
                        topic: topic.to_string(),
                    },
                    write_key: args.write_key.clone(),
                    reader: Arc::clone(ingest_reader),
                },
            ))
        }
        None => None,
    };
    if args.metrics.is_some() || ingest.is_some() {
        Ok(Some(http::start(
            Arc::clone(metrics),
            args.metrics,
            ingest,
        )?))
    } else {
        Ok(None)
    }
}

/// The workers' channels (the consumer's context sends on them) and threads.
type Workers = (
    Vec<mpsc::SyncSender<Command>>,
    Vec<std::thread::JoinHandle<()>>,
);

/// `--threads` workers, each on its own thread with its own restore
/// consumer, fed by the polling thread over a bounded channel.
fn spawn_workers(
    args: &ServeArgs,
    program: &Arc<Program>,
    settings: &Settings,
    producer: &Arc<Sender>,
    shared: &Arc<Shared>,
) -> Result<Workers, String> {
    let brokers = args.kafka.as_deref().unwrap_or_default();
    let group = &settings.group;
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
        let (program, settings, producer, out, dead, shared) = (
            Arc::clone(program),
            settings.clone(),
            Arc::clone(producer),
            out.clone(),
            dead.clone(),
            Arc::clone(shared),
        );
        let metrics = Arc::clone(&shared.metrics);
        let jit_wanted = args.engine == crate::cli::serve::Evaluator::Jit;
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
    Ok((senders, workers))
}

/// Leaving the group revokes what is still held: the workers commit it,
/// then the group's offsets are committed.
fn leave_group(consumer: &BaseConsumer<Group>, shared: &Shared) {
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
    commit_group(consumer, shared);
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
    let mut watch = PolicyWatch::new(&args.policy);
    let upgrade = args.upgrade.is_some();
    let (stop, shared) = (Arc::clone(stop), Arc::clone(shared));
    std::thread::Builder::new()
        .name("nudge-policy".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if !watch.asked(&reload) {
                    continue;
                }
                let Some(program) = watch.read() else {
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
