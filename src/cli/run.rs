//! `nudge run`: the policies against a stream of events (CLI.md `run`).
//!
//! With `--state DIR`, the run continues the stream the directory has seen: state
//! is committed every `--commit-every` lines (input position, state changes and
//! output lengths in one transaction, outputs synced first). On start, outputs
//! longer than the last commit recorded are cut back, and an input file that is
//! the one being read at the last commit (same path, same bytes up to the
//! committed position) is resumed from that position; any other input is new
//! input, read from its start.

use crate::cli::store::{self, Checkpoint, FileMark, InputMark, Store};
use crate::cli::{Outcome, usage_error};
use nudge::io::input::Reader;
use nudge::io::output::{dead_letter_json, write_decision};
use nudge::runtime::{Engine, time};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    #[arg(long, num_args = 1.., required = true)]
    policy: Vec<PathBuf>,
    /// Segment-spec JSON lines to read; `-` is stdin (the default).
    #[arg(long, default_value = "-")]
    events: String,
    /// Where to write decisions; `-` is stdout (the default).
    #[arg(long, default_value = "-")]
    out: String,
    /// Where to write rejected lines (`-` is stderr); without it they are
    /// counted and reported on stderr.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// At end of input, fire every pending timer in time order.
    #[arg(long, conflicts_with = "until")]
    drain: bool,
    /// At end of input, fire the timers due up to this RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// A durable state directory: the run continues where the last one ended.
    #[arg(long)]
    state: Option<PathBuf>,
    /// With --state: commit every this many input lines.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    commit_every: u64,
    /// With --state: keep at most this many profiles in memory; the others are
    /// read back from the state store when an event or a timer needs them.
    #[arg(long, requires = "state", value_parser = clap::value_parser!(u64).range(1..))]
    max_profiles_in_memory: Option<u64>,
    /// With --state: the store's page cache, in MiB. Memory is bounded by this
    /// and --max-profiles-in-memory, not by the number of profiles.
    #[arg(long, requires = "state", default_value_t = store::DEFAULT_CACHE_MIB, value_parser = clap::value_parser!(u64).range(1..))]
    cache_size: u64,
    /// The evaluator: the reference interpreter, or the Cranelift JIT.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    engine: EngineKind,
    /// Print counters to stderr on exit.
    #[arg(long)]
    stats: bool,
    /// Say why for every channel of every send, deferral and suppression, and
    /// record `not_entered` for triggers a profile could not enter.
    #[arg(long)]
    explain: bool,
    /// With --state: apply a changed policy set to the store where its input
    /// stopped (LANGUAGE.md §7.7). Instances go on in the version they
    /// entered; `--upgrade=stop-removed` ends those of removed journeys.
    #[arg(
        long,
        requires = "state",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "drain",
        value_name = "REMOVED"
    )]
    upgrade: Option<store::UpgradeMode>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineKind {
    Jit,
    Interp,
}

fn parse_time(s: &str) -> Result<i64, String> {
    time::parse_rfc3339(s)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time such as 2026-11-29T10:00:00Z"))
}

/// An output file, counting what it holds so that commits can record it.
pub(crate) struct Output {
    writer: BufWriter<Box<dyn Write>>,
    /// The file, for syncing; `None` for stdout.
    file: Option<File>,
    path: Option<PathBuf>,
    len: u64,
    /// A line being written, reused from line to line.
    text: String,
}

impl Output {
    /// An output that is appended to and never seeked or synced: stdout,
    /// stderr, a pipe or a FIFO.
    fn stream(writer: Box<dyn Write>) -> Output {
        Output {
            writer: BufWriter::with_capacity(1 << 16, writer),
            file: None,
            path: None,
            len: 0,
            text: String::new(),
        }
    }

    fn stdout() -> Output {
        Output::stream(Box::new(std::io::stdout()))
    }

    fn stderr() -> Output {
        Output::stream(Box::new(std::io::stderr()))
    }

    /// Opens `path`. With state, the file is kept (appended to) and cut back to the
    /// length the last commit recorded for it; without, it is truncated. A path
    /// that is no regular file (a pipe, a FIFO, `/dev/stdout`) is appended to and
    /// never seeked, and refused with state: it could not be cut back after a crash.
    pub(crate) fn file(
        path: &Path,
        with_state: bool,
        new_store: bool,
        committed: Option<&FileMark>,
    ) -> Result<Output, String> {
        if is_special(path) {
            if with_state {
                return Err(format!(
                    "`{}` is not a regular file: with --state, outputs must be files that can be cut back to the last commit after a crash (write to a file, or run without --state)",
                    path.display()
                ));
            }
            let handle = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
            return Ok(Output::stream(Box::new(handle)));
        }
        let canonical_before = std::fs::canonicalize(path).ok();
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(!with_state)
            .read(true)
            .open(path)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        let mut len = file.metadata().map(|m| m.len()).unwrap_or(0);
        // A new store knows nothing of what the file holds: appending would
        // repeat every decision already in it (a deleted --state directory).
        if with_state && new_store && len > 0 {
            return Err(format!(
                "`{}` already holds {len} bytes, but the state store is new: the run would repeat what the file already holds. Move the file away, or run with the --state directory that wrote it",
                path.display()
            ));
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if with_state
            && let Some(mark) = committed
            && canonical_before.as_ref() == Some(&mark.path)
        {
            if len < mark.len {
                return Err(format!(
                    "`{}` is shorter than the state recorded ({} < {} bytes): it was changed outside nudge",
                    path.display(),
                    len,
                    mark.len
                ));
            }
            file.set_len(mark.len)
                .map_err(|e| format!("cannot truncate `{}`: {e}", path.display()))?;
            len = mark.len;
        }
        let mut handle = file
            .try_clone()
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        handle
            .seek(SeekFrom::Start(len))
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        Ok(Output {
            writer: BufWriter::with_capacity(1 << 16, Box::new(handle)),
            file: Some(file),
            path: Some(canonical),
            len,
            text: String::new(),
        })
    }

    pub(crate) fn line(&mut self, text: &str) -> std::io::Result<()> {
        self.writer.write_all(text.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.len += text.len() as u64 + 1;
        Ok(())
    }

    /// Flushes and syncs, so that a commit never records bytes that are not on disk.
    pub(crate) fn sync(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        if let Some(f) = &self.file {
            f.sync_data()?;
        }
        Ok(())
    }

    pub(crate) fn mark(&self) -> Option<FileMark> {
        self.path.as_ref().map(|p| FileMark {
            path: p.clone(),
            len: self.len,
        })
    }
}

/// Why a run stopped before its end, mapped to its exit status in one place
/// ([`Failure::outcome`]).
enum Failure {
    /// A usage or I/O error: the message, exit 2.
    Usage(String),
    /// Writing decisions failed: exit 2, except for a reader that went away
    /// (a closed pipe, `nudge run … | head`), which ends the run quietly.
    Write(std::io::Error),
    /// Already reported (the policy set's diagnostics), with its status.
    Reported(Outcome),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Usage(message)
    }
}

impl Failure {
    fn outcome(self) -> Outcome {
        match self {
            Failure::Usage(message) => usage_error(message),
            Failure::Write(e) => write_failed(&e),
            Failure::Reported(outcome) => outcome,
        }
    }
}

pub fn run(args: RunArgs) -> Outcome {
    match run_steps(&args) {
        Ok(()) => Outcome::Success,
        Err(failure) => failure.outcome(),
    }
}

/// `nudge run`, step by step: the policy set, the engine (resumed from the
/// store, upgraded if asked), the input (resumed where the last commit left
/// it), the outputs (cut back to it), then the lines, the timers after them,
/// and the counters.
fn run_steps(args: &RunArgs) -> Result<(), Failure> {
    let given = super::program(&args.policy).map_err(Failure::Reported)?;
    // Before anything is opened for writing, the state store included.
    distinct_paths(args)?;
    let opened = open_engine(args, given)?;
    let with_state = opened.store.is_some();
    let checkpoint = opened.checkpoint.as_ref();
    let (input, mark) = open_input(args, checkpoint)?;
    let (out, dead) = open_outputs(args, with_state, checkpoint)?;
    let mut runner = Runner::new(args, opened, mark, out, dead);
    runner.start()?;
    runner.read(input)?;
    runner.finish()?;
    runner.report();
    Ok(())
}

/// The engine a run starts from, and where it comes from.
struct Opened {
    engine: Engine,
    store: Option<Store>,
    checkpoint: Option<Checkpoint>,
    /// What the engine runs: the given set, or the merged program an upgrade
    /// made of it (with the older journey versions still in use).
    program: Arc<nudge::ir::Program>,
    /// What the store's checkpoints name (`program`'s fingerprint, and the
    /// given set's when they differ).
    version: store::Version,
    applied: Option<store::Applied>,
    /// A profile the store could not read, noted by its loader.
    load_failure: std::rc::Rc<std::cell::RefCell<Option<String>>>,
}

fn open_engine(args: &RunArgs, given: Arc<nudge::ir::Program>) -> Result<Opened, Failure> {
    let fingerprint = given.fingerprint();
    let upgrade = args.upgrade.map(store::UpgradeMode::upgrade);
    let (store, mut engine, checkpoint, program, applied) = match &args.state {
        Some(dir) => {
            let opened = Store::open(dir, &given, args.cache_size, upgrade).map_err(|e| e.0)?;
            if let Some(applied) = &opened.applied {
                report_upgrade(dir, opened.checkpoint.as_ref(), applied);
            }
            let store::Opened {
                store,
                engine,
                checkpoint,
                program,
                applied,
            } = opened;
            (Some(store), engine, checkpoint, program, applied)
        }
        None => (None, Engine::new(Arc::clone(&given)), None, given, None),
    };
    engine.set_explain(args.explain);
    if args.engine == EngineKind::Jit {
        let jit = nudge::jit::Jit::compile(Arc::clone(&program))
            .map_err(|e| Failure::Usage(e.to_string()))?;
        engine.use_jit(std::rc::Rc::new(jit));
    }
    let load_failure = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
    if let Some(store) = &store {
        engine.set_loader(store.loader(std::rc::Rc::clone(&load_failure)));
        // An instant that loads more profiles than may be held (a weekly
        // newsletter's occurrence) pauses to commit and evict as reading does.
        if let Some(max) = args.max_profiles_in_memory {
            engine.hold_at_most(max as usize, args.commit_every as usize);
            // What the store restored (every pending timer and schedule
            // member) is paged out at once, as after a commit.
            engine.evict(max as usize);
        }
    }
    Ok(Opened {
        engine,
        store,
        checkpoint,
        version: store::Version::of(&program, fingerprint),
        program,
        applied,
        load_failure,
    })
}

/// The input, resumed where the last commit left it when it is the same file.
fn open_input(
    args: &RunArgs,
    checkpoint: Option<&Checkpoint>,
) -> Result<(Box<dyn BufRead>, InputMark), Failure> {
    let mut mark = InputMark {
        path: PathBuf::from("-"),
        offset: 0,
        lines: 0,
        digest: store::DIGEST_START,
    };
    if args.events == "-" {
        return Ok((Box::new(BufReader::new(std::io::stdin().lock())), mark));
    }
    let path = Path::new(&args.events);
    let cannot = |e: std::io::Error| format!("cannot read `{}`: {e}", args.events);
    let mut file = File::open(path).map_err(cannot)?;
    mark.path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(previous) = checkpoint.and_then(|c| c.input.as_ref())
        && previous.path == mark.path
        && same_prefix(&mut file, previous)
    {
        mark = previous.clone();
    }
    file.seek(SeekFrom::Start(mark.offset)).map_err(cannot)?;
    Ok((Box::new(BufReader::with_capacity(1 << 16, file)), mark))
}

/// The decisions and dead-letter outputs, cut back to the last commit.
fn open_outputs(
    args: &RunArgs,
    with_state: bool,
    checkpoint: Option<&Checkpoint>,
) -> Result<(Output, Option<Output>), Failure> {
    let fresh = checkpoint.is_none();
    let out = match args.out.as_str() {
        "-" => Output::stdout(),
        path => Output::file(
            Path::new(path),
            with_state,
            fresh,
            checkpoint.and_then(|c| c.out.as_ref()),
        )?,
    };
    let dead = match &args.dead_letter {
        Some(path) if path.as_os_str() == "-" => Some(Output::stderr()),
        Some(path) => Some(Output::file(
            path,
            with_state,
            fresh,
            checkpoint.and_then(|c| c.dead_letter.as_ref()),
        )?),
        None => None,
    };
    Ok((out, dead))
}

/// A run in progress: the engine, its outputs and store, where the input
/// stands, and the counters `--stats` prints.
struct Runner<'a> {
    args: &'a RunArgs,
    engine: Engine,
    store: Option<Store>,
    checkpoint: Option<Checkpoint>,
    version: store::Version,
    applied: Option<store::Applied>,
    load_failure: std::rc::Rc<std::cell::RefCell<Option<String>>>,
    reader: Reader,
    out: Output,
    dead: Option<Output>,
    mark: InputMark,
    decisions: Vec<nudge::runtime::Decision>,
    /// Whether instants pause to commit and evict (a store and a memory bound).
    holds: bool,
    started: Instant,
    lines: u64,
    dead_letters: u64,
    since_commit: u64,
}

impl<'a> Runner<'a> {
    fn new(
        args: &'a RunArgs,
        opened: Opened,
        mark: InputMark,
        out: Output,
        dead: Option<Output>,
    ) -> Runner<'a> {
        Runner {
            holds: opened.store.is_some() && args.max_profiles_in_memory.is_some(),
            reader: Reader::new(Arc::clone(&opened.program)),
            args,
            engine: opened.engine,
            store: opened.store,
            checkpoint: opened.checkpoint,
            version: opened.version,
            applied: opened.applied,
            load_failure: opened.load_failure,
            out,
            dead,
            mark,
            decisions: Vec::new(),
            started: Instant::now(),
            lines: 0,
            dead_letters: 0,
            since_commit: 0,
        }
    }

    /// (1.1) The instances an upgrade stopped end first, at the upgrade's
    /// clock; then a first commit records where this run starts (the
    /// outputs' lengths and the input position), so that a crash before the
    /// next commit cuts the outputs back to here rather than leaving half a
    /// batch in them (and the stopped instances' decisions are written once).
    fn start(&mut self) -> Result<(), Failure> {
        stopped_decisions(self.checkpoint.as_ref(), &mut self.decisions);
        self.emit()?;
        let mark = self.mark.clone();
        self.commit(&mark)
    }

    /// Reads the input to its end, a line at a time.
    fn read(&mut self, mut input: Box<dyn BufRead>) -> Result<(), Failure> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Failure::Usage(format!("cannot read events: {e}"))),
            }
            self.feed_line(&buf)?;
            self.since_commit += 1;
            if self.since_commit >= self.args.commit_every {
                self.since_commit = 0;
                let mark = self.mark.clone();
                self.commit_and_evict(&mark)?;
            }
        }
    }

    /// One input line: an event processed, or a dead letter.
    fn feed_line(&mut self, buf: &[u8]) -> Result<(), Failure> {
        // Where the input stood before the line (the path does not change).
        let before = (self.mark.offset, self.mark.lines, self.mark.digest);
        self.mark.offset += buf.len() as u64;
        self.mark.lines += 1;
        if self.store.is_some() {
            // Only a store reads it, to recognise the same input on restart.
            self.mark.digest = store::digest(self.mark.digest, buf);
        }
        self.lines += 1;
        let (raw, utf8) = match std::str::from_utf8(buf) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(buf), false),
        };
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return Ok(());
        }
        let parsed = if utf8 {
            self.reader.read(line)
        } else {
            Err(nudge::io::input::DeadLetter("not UTF-8 text".into()))
        };
        match parsed {
            Ok(event) => {
                // What is due before the line may pause: committed then as
                // if the line had not been read, so that a restart reads it
                // again and resumes the instant.
                while self.holds
                    && !self.engine.fire_due(
                        event.timestamp,
                        event.message_id.as_deref(),
                        &mut self.decisions,
                    )
                {
                    self.loaded()?;
                    self.emit()?;
                    let (offset, lines, digest) = before;
                    let mark = InputMark {
                        path: self.mark.path.clone(),
                        offset,
                        lines,
                        digest,
                    };
                    self.commit_and_evict(&mark)?;
                    self.since_commit = 0;
                }
                self.engine.process(event, &mut self.decisions);
                self.loaded()?;
            }
            Err(dead) => self.dead_letter(line, &dead.0)?,
        }
        self.emit()
    }

    fn dead_letter(&mut self, line: &str, reason: &str) -> Result<(), Failure> {
        self.dead_letters += 1;
        match self.dead.as_mut() {
            Some(w) => {
                // (1.1) §9a: sensitive values never reach a dead letter.
                let raw = self.reader.redact(line);
                w.line(&dead_letter_json(self.mark.lines, reason, &raw))
                    .map_err(|e| format!("cannot write the dead-letter file: {e}"))?;
            }
            None => eprintln!("rejected line {}: {reason}", self.mark.lines),
        }
        Ok(())
    }

    /// Timers after the input (`--drain`, `--until`), an instant at a time,
    /// committed and evicted as reading is: draining a million waits holds no
    /// more profiles than reading them did. Then the last commit, and the
    /// outputs flushed (here, not when dropped, so that a failure is
    /// reported).
    fn finish(&mut self) -> Result<(), Failure> {
        if self.args.drain || self.args.until.is_some() {
            let mut steps: u64 = 0;
            loop {
                let more = match self.args.until {
                    Some(until) => self.engine.advance_step(until, &mut self.decisions),
                    None => self.engine.drain_step(&mut self.decisions),
                };
                self.loaded()?;
                self.emit()?;
                if !more {
                    break;
                }
                steps += 1;
                if steps.is_multiple_of(self.args.commit_every) || self.engine.paused() {
                    let mark = self.mark.clone();
                    self.commit_and_evict(&mark)?;
                }
            }
        }
        self.loaded()?;
        self.emit()?;
        self.out.writer.flush().map_err(Failure::Write)?;
        let mark = self.mark.clone();
        self.commit(&mark)?;
        self.out.writer.flush().map_err(Failure::Write)?;
        if let Some(w) = self.dead.as_mut() {
            w.writer
                .flush()
                .map_err(|_| "cannot write the dead-letter file".to_string())?;
        }
        Ok(())
    }

    /// Writes the decisions made so far.
    fn emit(&mut self) -> Result<(), Failure> {
        write_all(&mut self.out, &mut self.decisions).map_err(Failure::Write)
    }

    /// Stops the run when the store could not read a profile back.
    fn loaded(&mut self) -> Result<(), Failure> {
        match self.load_failure.borrow_mut().take() {
            Some(e) => Err(Failure::Usage(format!("cannot read the state: {e}"))),
            None => Ok(()),
        }
    }

    /// With a store: the outputs synced, then the state, the input position
    /// `mark` and the outputs' lengths in one transaction.
    fn commit(&mut self, mark: &InputMark) -> Result<(), Failure> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.out
            .sync()
            .map_err(|e| format!("cannot write decisions: {e}"))?;
        if let Some(d) = self.dead.as_mut() {
            d.sync()
                .map_err(|e| format!("cannot write the dead-letter file: {e}"))?;
        }
        let mut changes = self.engine.take_changes();
        let checkpoint = Checkpoint {
            input: Some(mark.clone()),
            out: self.out.mark(),
            dead_letter: self.dead.as_ref().and_then(Output::mark),
            ..Checkpoint::at(self.version, changes.clock, changes.paused.take())
        };
        store
            .commit(changes, &checkpoint)
            .map_err(|e| Failure::Usage(e.0))
    }

    fn commit_and_evict(&mut self, mark: &InputMark) -> Result<(), Failure> {
        self.commit(mark)?;
        if let Some(max) = self.args.max_profiles_in_memory {
            self.engine.evict(max as usize);
        }
        Ok(())
    }

    /// `--stats` on stderr; without it, a word about rejected lines that
    /// were not kept.
    fn report(&self) {
        let dead_letters = self.dead_letters;
        if !self.args.stats {
            if dead_letters > 0 && self.dead.is_none() {
                eprintln!("{dead_letters} line(s) rejected; use --dead-letter FILE to keep them");
            }
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let c = self.engine.counters();
        eprintln!("events read        {}", self.lines);
        eprintln!("events per second  {:.0}", self.lines as f64 / elapsed);
        eprintln!("dead letters       {dead_letters}");
        eprintln!("duplicates         {}", c.duplicates);
        eprintln!("ignored            {}", c.ignored);
        // An undeclared event is usually a misspelling on one side or the other
        // (`"Cart Abandonded"`): name them, most frequent first.
        for (name, n) in most_frequent_first(&c.ignored_by_name) {
            eprintln!(
                "  ignored {n:>8}  {}",
                serde_json::to_string(name).unwrap_or_default()
            );
        }
        let categories = most_frequent_first(&c.unknown_consent_categories);
        if !categories.is_empty() {
            eprintln!("unknown consent categories (context.consent, ignored)");
            for (name, n) in categories {
                eprintln!(
                    "  {n:>8}  {}",
                    serde_json::to_string(name).unwrap_or_default()
                );
            }
        }
        eprintln!("late events        {}", c.late);
        if let Some(applied) = &self.applied {
            eprintln!("upgraded profiles  {}", applied.profiles);
            eprintln!("attributes reset   {}", applied.attributes_reset);
            eprintln!("instances stopped  {}", applied.stopped);
        }
        for kind in nudge::runtime::DecisionKind::NAMES {
            eprintln!(
                "decisions {kind:<12}{}",
                c.decisions.get(kind).copied().unwrap_or(0)
            );
        }
        eprintln!("divisions by zero  {}", c.divisions_by_zero);
        eprintln!("pending timers     {}", self.engine.pending_timers());
        eprintln!("peak profiles held {}", c.peak_profiles);
        eprintln!("peak timers held   {}", c.peak_timers);
    }
}

/// Counts by name, the largest first (ties by name).
fn most_frequent_first(counts: &std::collections::BTreeMap<String, u64>) -> Vec<(&String, &u64)> {
    let mut sorted: Vec<(&String, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted
}

/// Whether `path` names something other than a regular file (or a file still to
/// be created): a FIFO, a character device, `/dev/stdout` and the like.
fn is_special(path: &Path) -> bool {
    let in_dev = path.starts_with("/dev") || path.starts_with("/proc");
    match std::fs::metadata(path) {
        Ok(m) => !m.is_file() || in_dev,
        Err(_) => in_dev,
    }
}

/// Where a path points, for comparing paths: the canonical path of a file that
/// exists, else its canonical directory joined with its name.
fn identity(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
}

/// The input and the outputs must be different files, checked before anything
/// is opened for writing: `--out` equal to `--events` would truncate the
/// input, and two outputs on one file would overwrite each other.
fn distinct_paths(args: &RunArgs) -> Result<(), String> {
    let regular = |p: &Path| p.as_os_str() != "-" && !is_special(p);
    let mut named: Vec<(&str, &Path)> = Vec::new();
    if args.events != "-" {
        named.push(("--events", Path::new(&args.events)));
    }
    if args.out != "-" {
        named.push(("--out", Path::new(&args.out)));
    }
    if let Some(d) = &args.dead_letter {
        named.push(("--dead-letter", d.as_path()));
    }
    for (i, (flag, path)) in named.iter().enumerate() {
        for (other_flag, other) in &named[i + 1..] {
            if regular(path) && regular(other) && identity(path) == identity(other) {
                return Err(format!(
                    "{flag} and {other_flag} name the same file `{}`: give each its own file",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// Whether the file starts with the bytes the mark consumed.
pub(crate) fn same_prefix(file: &mut File, mark: &InputMark) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len < mark.offset {
        return false;
    }
    let mut remaining = mark.offset;
    let mut hash = store::DIGEST_START;
    let mut chunk = vec![0u8; 1 << 16];
    while remaining > 0 {
        let want = remaining.min(chunk.len() as u64) as usize;
        match file.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                hash = store::digest(hash, &chunk[..n]);
                remaining -= n as u64;
            }
        }
    }
    hash == mark.digest
}

/// A reader that stopped reading (`nudge run … | head`) ends the run quietly.
/// (1.1) The `exited` decisions of the instances an upgrade with
/// `stop-removed` ended, still to be written (a commit then records them).
pub(crate) fn stopped_decisions(
    checkpoint: Option<&Checkpoint>,
    decisions: &mut Vec<nudge::runtime::Decision>,
) {
    for stopped in checkpoint.iter().flat_map(|c| &c.stopped) {
        decisions.push(nudge::runtime::Decision {
            at: stopped.at,
            profile: nudge::runtime::ProfileId::new(&stopped.profile),
            journey: std::rc::Rc::from(stopped.journey.as_str()),
            kind: nudge::runtime::DecisionKind::Exited {
                event: std::rc::Rc::from("policy_change"),
            },
        });
    }
}

/// (1.1) Says on stderr what an upgrade applied (LANGUAGE.md §7.7).
pub(crate) fn report_upgrade(
    dir: &Path,
    checkpoint: Option<&Checkpoint>,
    applied: &store::Applied,
) {
    let at = checkpoint
        .and_then(|c| c.input.as_ref())
        .map_or(0, |m| m.lines);
    eprintln!(
        "upgraded the state in `{}` to the new policy set after input line {at}:\n{}  profiles carried over: {}; attributes restarted at their default: {}; instances stopped: {}",
        dir.display(),
        applied.summary.applied(),
        applied.profiles,
        applied.attributes_reset,
        applied.stopped,
    );
}

fn write_failed(e: &std::io::Error) -> Outcome {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Outcome::Success
    } else {
        usage_error(format!("cannot write decisions: {e}"))
    }
}

pub(crate) fn write_all(
    out: &mut Output,
    decisions: &mut Vec<nudge::runtime::Decision>,
) -> std::io::Result<()> {
    for d in decisions.drain(..) {
        out.text.clear();
        write_decision(&d, &mut out.text);
        out.writer.write_all(out.text.as_bytes())?;
        out.writer.write_all(b"\n")?;
        out.len += out.text.len() as u64 + 1;
    }
    Ok(())
}
