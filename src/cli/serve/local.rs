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
    program: Arc<Program>,
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
            firing: changes.paused.take(),
            format: store::FORMAT.to_string(),
            fingerprint: self.program.fingerprint(),
            clock: changes.clock,
            input: Some(self.mark.clone()),
            out: self.out.mark(),
            dead_letter: None,
            ..Checkpoint::default()
        };
        self.store.commit(changes, &checkpoint).map_err(|e| e.0)?;
        self.uncommitted = 0;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.engine_gauges(0, &self.engine);
        Ok(())
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

pub fn serve(args: &ServeArgs, program: Arc<Program>) -> Result<(), String> {
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
    let (_, _lock) = super::state_dir(Some(dir), "")?;
    let (store, mut engine, checkpoint) =
        Store::open(dir, &program, store::DEFAULT_CACHE_MIB).map_err(|e| e.0)?;
    engine.set_explain(args.explain);
    if args.engine == super::Evaluator::Jit {
        let jit = nudge::jit::Jit::compile(Arc::clone(&program)).map_err(|e| e.to_string())?;
        engine.use_jit(std::rc::Rc::new(jit));
    }
    let load_failure = std::rc::Rc::new(std::cell::RefCell::new(None));
    engine.set_loader(store.loader(std::rc::Rc::clone(&load_failure)));

    // The journal, resumed from the last commit.
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
    match checkpoint.as_ref().and_then(|c| c.input.as_ref()) {
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
    let out = Output::file(
        out_path,
        true,
        checkpoint.is_none(),
        checkpoint.as_ref().and_then(|c| c.out.as_ref()),
    )?;
    let metrics = Arc::new(Metrics::new());
    let mut local = Local {
        reader: Reader::new(Arc::clone(&program)),
        program: Arc::clone(&program),
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
    // Journal lines after the last commit were durable but not answered:
    // applied again, their decisions rewritten after the cut-back file.
    let mut replay = BufReader::new(
        std::fs::File::open(&journal_path)
            .map_err(|e| format!("cannot read `{}`: {e}", journal_path.display()))?,
    );
    replay
        .seek(SeekFrom::Start(local.mark.offset))
        .map_err(|e| format!("cannot read `{}`: {e}", journal_path.display()))?;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = replay
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read `{}`: {e}", journal_path.display()))?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            // A line cut short by a crash was never answered: dropped.
            local
                .journal_file
                .set_len(local.mark.offset)
                .map_err(|e| format!("cannot write `{}`: {e}", journal_path.display()))?;
            break;
        }
        local.mark.offset += n as u64;
        local.mark.lines += 1;
        local.mark.digest = store::digest(local.mark.digest, &buf);
        let line = String::from_utf8_lossy(&buf[..n - 1]).into_owned();
        local.apply(&line)?;
    }
    local.commit()?;

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let (tx, rx) = mpsc::sync_channel::<Batch>(1024);
    let endpoints = http::start(
        Arc::clone(&metrics),
        args.metrics,
        Some((
            addr,
            http::Ingest {
                destination: http::Destination::Local(tx),
                write_key: args.write_key.clone(),
                reader: Reader::new(Arc::clone(&program)),
            },
        )),
    )?;
    metrics.partitions.set(1);
    metrics.ready.store(true, Ordering::Relaxed);
    tracing::info!(%addr, journal = %journal_path.display(), "accepting events");
    let result = run_loop(&mut local, &rx, &stop, args, &load_failure);
    metrics.stopping.store(true, Ordering::Relaxed);
    drop(endpoints);
    result?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn run_loop(
    local: &mut Local,
    rx: &mpsc::Receiver<Batch>,
    stop: &AtomicBool,
    args: &ServeArgs,
    load_failure: &std::rc::Rc<std::cell::RefCell<Option<String>>>,
) -> Result<(), String> {
    let mut waiting: Vec<tokio::sync::oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut first_waiting: Option<Instant> = None;
    let mut last_commit = Instant::now();
    let mut last_tick = Instant::now();
    let mut outcome = Ok(());
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(batch) => {
                let mut applied = Ok(());
                for line in &batch.lines {
                    applied = local.take(line);
                    if applied.is_err() {
                        break;
                    }
                }
                if let Err(e) = applied {
                    let _ = batch.done.send(Err(e.clone()));
                    outcome = Err(e);
                    break;
                }
                waiting.push(batch.done);
                first_waiting.get_or_insert_with(Instant::now);
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
        let group_due = first_waiting.is_some_and(|t| t.elapsed() >= GROUP_COMMIT)
            || local.uncommitted >= args.commit_every;
        let time_due = local.uncommitted > 0 && last_commit.elapsed() >= args.commit_interval;
        if group_due || time_due {
            let committed = local.commit();
            for done in waiting.drain(..) {
                let _ = done.send(committed.clone());
            }
            first_waiting = None;
            last_commit = Instant::now();
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
    for done in waiting.drain(..) {
        let _ = done.send(committed.clone());
    }
    // Requests still queued are refused: they were not taken.
    while let Ok(batch) = rx.try_recv() {
        let _ = batch.done.send(Err("shutting down; retry".into()));
    }
    outcome.and(committed)
}
