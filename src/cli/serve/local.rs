//! `nudge serve --http ADDR --state DIR` without Kafka: the embedded service
//! for one machine. One engine; the events accepted over HTTP are appended to
//! a journal in the state directory (`DIR/events.ndjson`, with the live
//! clock's ticks among them) and applied; a commit syncs the journal and the
//! decisions file and records both positions with the state in one store
//! transaction (as `nudge run --state` does), and only then are the requests
//! answered. So an answered event is durable, a restart resumes the journal
//! from the last commit (cutting the decisions file back to it), and
//! `nudge run --events DIR/events.ndjson` over the journal decides the same,
//! byte for byte.

use super::ServeArgs;
use super::http::{self, Batch, Metrics};
use super::reload::PolicyWatch;
use crate::cli::run::{self, Output};
use crate::cli::store::{self, Checkpoint, InputMark, Store};
use nudge::io::input::Reader;
use nudge::ir::Program;
use nudge::runtime::Engine;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Requests waiting for the next commit are answered at most this late.
const GROUP_COMMIT: Duration = Duration::from_millis(20);

struct Local {
    /// What the store's checkpoints name: the program the engine runs (the
    /// given set, or after an upgrade that kept older journey versions, the
    /// merged program, LANGUAGE.md §7.7) and the given set.
    version: store::Version,
    /// The endpoints' reader, replaced with the engine's on an upgrade.
    ingest_reader: http::SharedReader,
    engine: Engine,
    store: Store,
    reader: Reader,
    journal: std::io::BufWriter<std::fs::File>,
    journal_file: std::fs::File,
    mark: InputMark,
    out: Output,
    decisions: Vec<nudge::runtime::Decision>,
    lag: i64,
    metrics: Arc<Metrics>,
    decision_counters: http::DecisionCounters,
    /// Applied since the last commit.
    uncommitted: u64,
}

impl Local {
    /// Appends a line to the journal and applies it.
    fn take(&mut self, line: &str) -> Result<(), String> {
        self.journal
            .write_all(line.as_bytes())
            .and_then(|()| self.journal.write_all(b"\n"))
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        let bytes = line.len() as u64 + 1;
        self.mark.offset += bytes;
        self.mark.lines += 1;
        self.mark.digest = store::digest(store::digest(self.mark.digest, line.as_bytes()), b"\n");
        self.apply(line)
    }

    fn apply(&mut self, line: &str) -> Result<(), String> {
        self.uncommitted += 1;
        self.metrics.events.inc();
        match self.reader.read(line) {
            Ok(event) => {
                self.engine.process(event, &mut self.decisions);
                for d in &self.decisions {
                    self.decision_counters.count(&self.metrics, d);
                }
                run::write_all(&mut self.out, &mut self.decisions)
                    .map_err(|e| format!("cannot write decisions: {e}"))
            }
            // Ingest refuses what the reader would reject; a journal line
            // that is rejected (a journal edited by hand) is logged.
            Err(dead) => {
                self.metrics
                    .dead_letters
                    .get_or_create(&http::ReasonLabels {
                        reason: http::reason_label(&dead.0),
                    })
                    .inc();
                tracing::warn!(line = self.mark.lines, "rejected journal line: {}", dead.0);
                Ok(())
            }
        }
    }

    fn commit(&mut self) -> Result<(), String> {
        let started = Instant::now();
        self.journal
            .flush()
            .and_then(|()| self.journal_file.sync_data())
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        self.out
            .sync()
            .map_err(|e| format!("cannot write decisions: {e}"))?;
        let mut changes = self.engine.take_changes();
        let checkpoint = Checkpoint {
            input: Some(self.mark.clone()),
            out: self.out.mark(),
            ..Checkpoint::at(self.version, changes.clock, changes.paused.take())
        };
        self.store.commit(changes, &checkpoint).map_err(|e| e.0)?;
        self.uncommitted = 0;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.engine_gauges(0, &self.engine);
        Ok(())
    }

    /// (1.1) Takes the policy set in `args.policy` again, as SIGHUP or a
    /// change of its files asks: everything taken is committed first; with
    /// `--upgrade` a changed set is applied where the journal stands and the
    /// engine goes on from the upgraded store; without, what it would change
    /// is logged and the running version kept. A set with errors is logged
    /// and not taken.
    fn reload(
        &mut self,
        args: &ServeArgs,
        watch: &PolicyWatch,
        load_failure: &std::rc::Rc<std::cell::RefCell<Option<String>>>,
    ) -> Result<(), String> {
        self.commit()?;
        let Some(given) = watch.read() else {
            return Ok(());
        };
        let upgrade = args.upgrade.map(store::UpgradeMode::upgrade);
        match self.store.reload(&given, upgrade).map_err(|e| e.0)? {
            store::Reload::Same => {
                tracing::info!(
                    "the policy set is the one running (no change a running store would see)"
                );
            }
            store::Reload::Kept(summary) => super::reload::kept(None, &summary),
            store::Reload::Upgraded(upgraded) => {
                let store::Upgraded {
                    engine,
                    checkpoint,
                    program,
                    applied,
                } = *upgraded;
                tracing::info!(
                    profiles = applied.profiles,
                    attributes_reset = applied.attributes_reset,
                    stopped = applied.stopped,
                    "took the new policy set after journal line {}:\n{}",
                    self.mark.lines,
                    applied.summary.applied()
                );
                self.engine = configured(engine, &program, args, &self.store, load_failure)?;
                self.version = store::Version::of(&program, given.fingerprint());
                self.reader = Reader::new(Arc::clone(&program));
                *self
                    .ingest_reader
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Reader::new(Arc::clone(&program));
                run::stopped_decisions(checkpoint.as_ref(), &mut self.decisions);
                run::write_all(&mut self.out, &mut self.decisions)
                    .map_err(|e| format!("cannot write decisions: {e}"))?;
                self.commit()?;
            }
        }
        Ok(())
    }

    /// Journal lines after the last commit were durable but not answered:
    /// applied again, their decisions rewritten after the cut-back file.
    fn replay(&mut self, journal_path: &std::path::Path) -> Result<(), String> {
        let cannot = |what: &str, e: std::io::Error| {
            format!("cannot {what} `{}`: {e}", journal_path.display())
        };
        let mut replay =
            BufReader::new(std::fs::File::open(journal_path).map_err(|e| cannot("read", e))?);
        replay
            .seek(SeekFrom::Start(self.mark.offset))
            .map_err(|e| cannot("read", e))?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = replay
                .read_until(b'\n', &mut buf)
                .map_err(|e| cannot("read", e))?;
            if n == 0 {
                return Ok(());
            }
            if buf.last() != Some(&b'\n') {
                // A line cut short by a crash was never answered: dropped.
                self.journal_file
                    .set_len(self.mark.offset)
                    .map_err(|e| cannot("write", e))?;
                return Ok(());
            }
            self.mark.offset += n as u64;
            self.mark.lines += 1;
            self.mark.digest = store::digest(self.mark.digest, &buf);
            let line = String::from_utf8_lossy(&buf[..n - 1]).into_owned();
            self.apply(&line)?;
        }
    }

    /// A tick into the journal when a timer is due by wall time − lag.
    fn tick(&mut self) -> Result<(), String> {
        match super::due_tick(&self.engine, self.lag, None) {
            Some(line) => {
                self.metrics.ticks.inc();
                self.take(&line)
            }
            None => Ok(()),
        }
    }
}

/// The embedded service's arguments: where it listens, its state
/// directory and its decisions file (the Kafka-only flags refused).
fn arguments(
    args: &ServeArgs,
) -> Result<(std::net::SocketAddr, &std::path::Path, &std::path::Path), String> {
    let Some(addr) = args.http else {
        return Err("give --kafka BROKERS, or --http ADDR for the embedded service".into());
    };
    let Some(dir) = args.state.as_deref() else {
        return Err(
            "without --kafka, --state DIR keeps the accepted events and the state: give one".into(),
        );
    };
    let Some(out_path) = args.out.as_deref() else {
        return Err("without --kafka, decisions go to --out FILE: give one".into());
    };
    for (flag, given) in [
        ("--out-topic", args.out_topic.is_some()),
        ("--dead-letter-topic", args.dead_letter_topic.is_some()),
        ("--topic", args.topic.is_some()),
        ("--group", args.group.is_some()),
    ] {
        if given {
            return Err(format!("{flag} needs --kafka"));
        }
    }
    Ok((addr, dir, out_path))
}

/// The journal in `dir`, and where the last commit left it (checked to be
/// the same bytes).
fn open_journal(
    dir: &std::path::Path,
    checkpoint: Option<&Checkpoint>,
) -> Result<(std::fs::File, std::path::PathBuf, InputMark), String> {
    let journal_path = dir.join("events.ndjson");
    let mut journal_file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&journal_path)
        .map_err(|e| format!("cannot write `{}`: {e}", journal_path.display()))?;
    let canonical = std::fs::canonicalize(&journal_path).unwrap_or(journal_path.clone());
    let mut mark = InputMark {
        path: canonical.clone(),
        offset: 0,
        lines: 0,
        digest: store::DIGEST_START,
    };
    match checkpoint.and_then(|c| c.input.as_ref()) {
        Some(previous) if previous.path == canonical => {
            if !run::same_prefix(&mut journal_file, previous) {
                return Err(format!(
                    "`{}` is not the journal the state in `{}` was committed with: it was changed outside nudge",
                    journal_path.display(),
                    dir.display()
                ));
            }
            mark = previous.clone();
        }
        _ if journal_file.metadata().map(|m| m.len()).unwrap_or(0) > 0 => {
            return Err(format!(
                "`{}` holds events, but the state store beside it does not know them: move the directory away, or start again with a new --state",
                journal_path.display()
            ));
        }
        _ => {}
    }
    Ok((journal_file, journal_path, mark))
}

pub fn serve(args: &ServeArgs, program: Arc<Program>) -> Result<(), String> {
    let (addr, dir, out_path) = arguments(args)?;
    let (_, _lock) = super::state_dir(Some(dir), "")?;
    let given = program.fingerprint();
    let upgrade = args.upgrade.map(store::UpgradeMode::upgrade);
    let opened = Store::open(dir, &program, store::DEFAULT_CACHE_MIB, upgrade).map_err(|e| e.0)?;
    if let Some(applied) = &opened.applied {
        run::report_upgrade(dir, opened.checkpoint.as_ref(), applied);
    }
    let (store, checkpoint, program) = (opened.store, opened.checkpoint, opened.program);
    let load_failure = std::rc::Rc::new(std::cell::RefCell::new(None));
    let engine = configured(opened.engine, &program, args, &store, &load_failure)?;

    // The journal, resumed from the last commit.
    let (journal_file, journal_path, mark) = open_journal(dir, checkpoint.as_ref())?;
    let out = Output::file(
        out_path,
        true,
        checkpoint.is_none(),
        checkpoint.as_ref().and_then(|c| c.out.as_ref()),
    )?;
    let metrics = Arc::new(Metrics::new());
    let ingest_reader = http::shared(Reader::new(Arc::clone(&program)));
    let mut local = Local {
        reader: Reader::new(Arc::clone(&program)),
        version: store::Version::of(&program, given),
        ingest_reader: Arc::clone(&ingest_reader),
        engine,
        store,
        journal: std::io::BufWriter::new(
            journal_file
                .try_clone()
                .map_err(|e| format!("cannot write `{}`: {e}", journal_path.display()))?,
        ),
        journal_file,
        mark,
        out,
        decisions: Vec::new(),
        lag: i64::try_from(args.lag.as_nanos()).unwrap_or(i64::MAX),
        metrics: Arc::clone(&metrics),
        decision_counters: http::DecisionCounters::default(),
        uncommitted: 0,
    };
    // (1.1) Instances an upgrade stopped end where it was applied, before
    // the journal lines after it.
    run::stopped_decisions(checkpoint.as_ref(), &mut local.decisions);
    run::write_all(&mut local.out, &mut local.decisions)
        .map_err(|e| format!("cannot write decisions: {e}"))?;
    local.replay(&journal_path)?;
    local.commit()?;

    let (stop, reload) = super::signals()?;
    let (tx, rx) = mpsc::sync_channel::<Batch>(1024);
    let endpoints = http::start(
        Arc::clone(&metrics),
        args.metrics,
        Some((
            addr,
            http::Ingest {
                destination: http::Destination::Local(tx),
                write_key: args.write_key.clone(),
                reader: ingest_reader,
            },
        )),
    )?;
    metrics.partitions.set(1);
    metrics.ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, journal = %journal_path.display(), "accepting events");
    let result = run_loop(&mut local, &rx, (&stop, &reload), args, &load_failure);
    metrics.stopping.store(true, Ordering::Relaxed);
    drop(endpoints);
    result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The engine as the service runs it: explanations, the evaluator, and
/// profiles read back from the store.
fn configured(
    mut engine: Engine,
    program: &Arc<Program>,
    args: &ServeArgs,
    store: &Store,
    load_failure: &std::rc::Rc<std::cell::RefCell<Option<String>>>,
) -> Result<Engine, String> {
    engine.set_explain(args.explain);
    if args.engine == super::Evaluator::Jit {
        let jit = nudge::jit::Jit::compile(Arc::clone(program)).map_err(|e| e.to_string())?;
        engine.use_jit(std::rc::Rc::new(jit));
    }
    engine.set_loader(store.loader(std::rc::Rc::clone(load_failure)));
    Ok(engine)
}

fn run_loop(
    local: &mut Local,
    rx: &mpsc::Receiver<Batch>,
    (stop, reload): (&AtomicBool, &AtomicBool),
    args: &ServeArgs,
    load_failure: &std::rc::Rc<std::cell::RefCell<Option<String>>>,
) -> Result<(), String> {
    let mut waiting = Waiting::new();
    let mut last_tick = Instant::now();
    let mut watch = PolicyWatch::new(&args.policy);
    let mut outcome = Ok(());
    while !stop.load(Ordering::Relaxed) {
        // (1.1) A new version of the policy set, taken after a commit, which
        // answers the requests waiting.
        if watch.asked(reload) {
            let reloaded = local.reload(args, &watch, load_failure);
            waiting.answer(&reloaded);
            if let Err(e) = reloaded {
                outcome = Err(e);
                break;
            }
        }
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(batch) => {
                if let Err(e) = batch.lines.iter().try_for_each(|line| local.take(line)) {
                    let _ = batch.done.send(Err(e.clone()));
                    outcome = Err(e);
                    break;
                }
                waiting.push(batch.done);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(e) = load_failure.borrow_mut().take() {
            outcome = Err(format!("cannot read the state: {e}"));
            break;
        }
        if last_tick.elapsed() >= Duration::from_millis(250) {
            last_tick = Instant::now();
            if let Err(e) = local.tick() {
                outcome = Err(e);
                break;
            }
        }
        let group_due = waiting.since.is_some_and(|t| t.elapsed() >= GROUP_COMMIT)
            || local.uncommitted >= args.commit_every;
        let time_due =
            local.uncommitted > 0 && waiting.last_commit.elapsed() >= args.commit_interval;
        if group_due || time_due {
            let committed = local.commit();
            waiting.answer(&committed);
            if let Err(e) = committed {
                outcome = Err(e);
                break;
            }
        }
    }
    // What was taken is committed before the requests are answered.
    let committed = match &outcome {
        Ok(()) => local.commit(),
        Err(e) => Err(e.clone()),
    };
    waiting.answer(&committed);
    // Requests still queued are refused: they were not taken.
    while let Ok(batch) = rx.try_recv() {
        let _ = batch.done.send(Err("shutting down; retry".into()));
    }
    outcome.and(committed)
}

/// The requests taken since the last commit, answered by the next one.
struct Waiting {
    done: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// When the oldest of them was taken.
    since: Option<Instant>,
    last_commit: Instant,
}

impl Waiting {
    fn new() -> Waiting {
        Waiting {
            done: Vec::new(),
            since: None,
            last_commit: Instant::now(),
        }
    }

    fn push(&mut self, done: tokio::sync::oneshot::Sender<Result<(), String>>) {
        self.done.push(done);
        self.since.get_or_insert_with(Instant::now);
    }

    /// Answers every request waiting with a commit's result.
    fn answer(&mut self, committed: &Result<(), String>) {
        for done in self.done.drain(..) {
            let _ = done.send(committed.clone());
        }
        self.since = None;
        self.last_commit = Instant::now();
    }
}
