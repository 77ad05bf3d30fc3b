//! `nudge diff` (1.1): what a change to a policy set would do. Both versions
//! run over the same events, each on its own thread (its reader, its engine,
//! its counts), then drain, as `nudge simulate` does; the main thread reads
//! the input once, hands each chunk of lines to both, and compares each
//! profile's decisions in order as they come back. Lines on which both decide
//! the same are done at once; otherwise only what one version is ahead by is
//! held, so memory follows the differences, not the stream.

use crate::cli::{Outcome, usage_error};
use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::ir::Program;
use nudge::runtime::{Decision, DecisionKind, Engine};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The current policy set (files or directories).
    #[arg(long, num_args = 1.., required_unless_present = "state")]
    policy: Vec<PathBuf>,
    /// The proposed policy set.
    #[arg(long, num_args = 1.., required = true)]
    against: Vec<PathBuf>,
    /// Newline-delimited Segment-spec JSON events; `-` for stdin.
    #[arg(long, required_unless_present = "state")]
    events: Option<String>,
    /// (1.1) A `run --state` directory: print what applying `--against` to it
    /// would change (LANGUAGE.md §7.7), without applying it.
    #[arg(long, conflicts_with_all = ["policy", "events"])]
    state: Option<PathBuf>,
    /// Output format: `markdown` is for a pull request's job summary
    /// (`$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Markdown,
}

/// How many differing profiles are shown.
const EXAMPLES: usize = 20;
/// Lines handed to the versions at a time.
const CHUNK: usize = 1024;

/// A decision as a version's thread hands it over.
#[derive(PartialEq, Eq)]
struct Out {
    profile: Box<str>,
    /// The output line `nudge run` would write.
    json: Box<str>,
}

/// Per input line of a chunk (or, when draining, per instant): the decisions.
type Batch = Vec<Vec<Out>>;

/// (journey, kind, channel; empty but for sends).
type Row = (String, &'static str, String);

/// Decisions by row: before and after.
type Counts = BTreeMap<Row, (u64, u64)>;

/// A version's own counts while it runs, keyed by the decisions' own names.
type RowCounts = FxHashMap<(Rc<str>, &'static str, Option<Rc<str>>), u64>;

/// What one version decided that the other has not (yet): the version and
/// the JSON lines.
type Ahead = (usize, VecDeque<Box<str>>);

/// What a version's thread reports at the end.
struct Totals {
    counts: BTreeMap<Row, u64>,
    dead_letters: u64,
}

/// One version: reads each chunk, decides, renders, counts.
fn version(
    program: Arc<Program>,
    lines: Receiver<Arc<Vec<String>>>,
    out: SyncSender<Batch>,
) -> Result<Totals, String> {
    let mut engine = Engine::new(Arc::clone(&program));
    let jit = nudge::jit::Jit::compile(Arc::clone(&program)).map_err(|e| e.to_string())?;
    engine.use_jit(Rc::new(jit));
    let reader = Reader::new(program);
    let mut counts = RowCounts::default();
    let mut dead_letters = 0;
    let mut decisions: Vec<Decision> = Vec::new();
    let mut render = |decisions: &mut Vec<Decision>| -> Vec<Out> {
        decisions
            .drain(..)
            .map(|d| {
                let channel = match &d.kind {
                    DecisionKind::Send { channel, .. } => Some(Rc::clone(channel)),
                    _ => None,
                };
                *counts
                    .entry((Rc::clone(&d.journey), d.kind.name(), channel))
                    .or_insert(0) += 1;
                let mut json = String::new();
                write_decision(&d, &mut json);
                Out {
                    profile: d.profile.as_str().into(),
                    json: json.into(),
                }
            })
            .collect()
    };
    // A closed channel means the comparison stopped: stop quietly.
    for chunk in lines {
        let mut batch = Vec::with_capacity(chunk.len());
        for line in chunk.iter() {
            match reader.read(line) {
                Ok(event) => {
                    engine.process(event, &mut decisions);
                }
                Err(_) => dead_letters += 1,
            }
            batch.push(render(&mut decisions));
        }
        if out.send(batch).is_err() {
            break;
        }
    }
    // Timers after the input, an instant at a time.
    let mut batch = Vec::new();
    while engine.drain_step(&mut decisions) {
        batch.push(render(&mut decisions));
        if batch.len() >= CHUNK && out.send(std::mem::take(&mut batch)).is_err() {
            break;
        }
    }
    if !batch.is_empty() {
        let _ = out.send(batch);
    }
    let counts = counts
        .into_iter()
        .map(|((journey, kind, channel), n)| {
            let channel = channel.map(|c| c.to_string()).unwrap_or_default();
            ((journey.to_string(), kind, channel), n)
        })
        .collect();
    Ok(Totals {
        counts,
        dead_letters,
    })
}

/// What is compared, profile by profile.
#[derive(Default)]
struct Comparison {
    counts: Counts,
    /// Decisions one version produced that the other has not (yet): the
    /// version (0 before, 1 after) and the JSON lines, per profile.
    ahead: FxHashMap<Box<str>, Ahead>,
    /// Profiles in any decision.
    profiles: FxHashSet<Box<str>>,
    differing: FxHashSet<Box<str>>,
    /// The first differing decisions of the lowest profile ids.
    examples: BTreeMap<String, (Option<String>, Option<String>)>,
}

impl Comparison {
    fn seen(&mut self, profile: &str) {
        if !self.profiles.contains(profile) {
            self.profiles.insert(profile.into());
        }
    }

    /// The decisions both versions made for one input line.
    fn line(&mut self, before: Vec<Out>, after: Vec<Out>) {
        if self.ahead.is_empty() && before == after {
            for o in &before {
                self.seen(&o.profile);
            }
            return;
        }
        self.take(0, before);
        self.take(1, after);
    }

    fn take(&mut self, side: usize, decisions: Vec<Out>) {
        for Out { profile, json } in decisions {
            self.seen(&profile);
            if self.differing.contains(&profile) {
                continue;
            }
            match self.ahead.get_mut(&profile) {
                Some((s, queue)) if *s != side => {
                    let first = queue.pop_front();
                    if queue.is_empty() {
                        self.ahead.remove(&profile);
                    }
                    if first.as_deref() != Some(&*json) {
                        let first = first.map(String::from);
                        let json = Some(String::from(json));
                        let (before, after) = if side == 1 {
                            (first, json)
                        } else {
                            (json, first)
                        };
                        self.differ(profile, before, after);
                    }
                }
                Some((_, queue)) => queue.push_back(json),
                None => {
                    self.ahead.insert(profile, (side, VecDeque::from([json])));
                }
            }
        }
    }

    fn differ(&mut self, profile: Box<str>, before: Option<String>, after: Option<String>) {
        self.ahead.remove(&profile);
        let id = profile.to_string();
        self.differing.insert(profile);
        let keep = self.examples.len() < EXAMPLES
            || self
                .examples
                .last_key_value()
                .is_some_and(|(last, _)| id < *last);
        if keep {
            self.examples.insert(id, (before, after));
            if self.examples.len() > EXAMPLES {
                self.examples.pop_last();
            }
        }
    }

    /// At the end: what one version decided and the other never did.
    fn finish(&mut self, before: Totals, after: Totals) {
        for (row, n) in before.counts {
            self.counts.entry(row).or_default().0 += n;
        }
        for (row, n) in after.counts {
            self.counts.entry(row).or_default().1 += n;
        }
        let left: Vec<(Box<str>, Ahead)> = self.ahead.drain().collect();
        for (profile, (side, mut queue)) in left {
            let first = queue.pop_front().map(String::from);
            let (before, after) = if side == 0 {
                (first, None)
            } else {
                (None, first)
            };
            self.differ(profile, before, after);
        }
    }
}

/// (1.1) `nudge diff --state DIR --against NEW`: the upgrade summary of
/// LANGUAGE.md §7.7 for the store in `dir`; exit 1 when something would
/// change, as for the other form.
fn upgrade_summary(dir: &std::path::Path, against: &[PathBuf], format: Format) -> Outcome {
    let program = match super::program(against) {
        Ok(p) => p,
        Err(Outcome::PolicyErrors) => {
            eprintln!(
                "error: the proposed policy set (--against) has errors; nothing was compared"
            );
            return Outcome::UsageOrIo;
        }
        Err(other) => return other,
    };
    let summary = match crate::cli::store::Store::upgrade_summary(dir, &program) {
        Ok(s) => s,
        Err(e) => return usage_error(e.0),
    };
    let text = match format {
        Format::Json => {
            let value = serde_json::json!({
                "state": dir.display().to_string(),
                "changed": summary.is_some(),
                "summary": summary,
            });
            format!("{value}\n")
        }
        Format::Human => match &summary {
            None => format!(
                "`{}` runs this policy set: nothing would change\n",
                dir.display()
            ),
            Some(s) => format!(
                "applying the policy set to `{}` would change (LANGUAGE.md §7.7):\n{s}",
                dir.display()
            ),
        },
        Format::Markdown => match &summary {
            None => format!(
                "`{}` runs this policy set: nothing would change.\n",
                dir.display()
            ),
            Some(s) => format!("### Upgrade of `{}`\n\n```\n{s}```\n", dir.display()),
        },
    };
    match super::print_out(&text) {
        Outcome::Success if summary.is_some() => Outcome::PolicyErrors,
        other => other,
    }
}

pub fn run(args: DiffArgs) -> Outcome {
    if let Some(dir) = &args.state {
        return upgrade_summary(dir, &args.against, args.format);
    }
    let Some(events) = args.events.as_deref() else {
        return usage_error("--events is required without --state");
    };
    let before = match checked(&args.policy, "current (--policy)") {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let after = match checked(&args.against, "proposed (--against)") {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let mut input: Box<dyn BufRead> = if events == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        match std::fs::File::open(events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => return usage_error(format!("cannot read `{events}`: {e}")),
        }
    };
    let versions = Versions::spawn(before, after);
    let mut cmp = Comparison::default();
    let (failed, read_error) = versions.feed(&mut input, &mut cmp);
    let (a, b) = match versions.finish(failed, &mut cmp) {
        Ok(totals) => totals,
        Err(e) => return usage_error(e),
    };
    if let Some(e) = read_error {
        return usage_error(format!("cannot read events: {e}"));
    }
    let dead_letters = (a.dead_letters, b.dead_letters);
    cmp.finish(a, b);
    let report = Report {
        cmp: &cmp,
        dead_letters,
    };
    let text = match args.format {
        Format::Human => report.human(),
        Format::Json => report.json(),
        Format::Markdown => report.markdown(),
    };
    match super::print_out(&text) {
        Outcome::Success if cmp.differing.is_empty() => Outcome::Success,
        Outcome::Success => Outcome::PolicyErrors,
        other => other,
    }
}

/// One of the two sets, checked. A policy error in either is exit 2 here
/// (CLI.md): 1 means "differs".
fn checked(paths: &[PathBuf], which: &str) -> Result<Arc<Program>, Outcome> {
    match super::program(paths) {
        Ok(p) => Ok(p),
        Err(Outcome::PolicyErrors) => {
            eprintln!("error: the {which} policy set has errors; nothing was compared");
            Err(Outcome::UsageOrIo)
        }
        Err(other) => Err(other),
    }
}

/// The two versions, each an engine on a thread of its own, fed the same
/// chunks of lines. Two chunks in flight per version: each works while the
/// other and the comparison catch up, and memory stays a few chunks.
struct Versions {
    lines: [SyncSender<Arc<Vec<String>>>; 2],
    out: [Receiver<Batch>; 2],
    threads: [std::thread::JoinHandle<Result<Totals, String>>; 2],
}

impl Versions {
    fn spawn(before: Arc<Program>, after: Arc<Program>) -> Versions {
        let spawn = |program: Arc<Program>| {
            let (lines_tx, lines_rx) = sync_channel::<Arc<Vec<String>>>(2);
            let (out_tx, out_rx) = sync_channel::<Batch>(2);
            let handle = std::thread::spawn(move || version(program, lines_rx, out_tx));
            (lines_tx, out_rx, handle)
        };
        let (a_lines, a_out, a_thread) = spawn(before);
        let (b_lines, b_out, b_thread) = spawn(after);
        Versions {
            lines: [a_lines, b_lines],
            out: [a_out, b_out],
            threads: [a_thread, b_thread],
        }
    }

    /// Compares the next chunk's decisions line by line; false when a
    /// version stopped.
    fn compare_one(&self, cmp: &mut Comparison) -> bool {
        match (self.out[0].recv(), self.out[1].recv()) {
            (Ok(a), Ok(b)) => {
                for (before, after) in a.into_iter().zip(b) {
                    cmp.line(before, after);
                }
                true
            }
            _ => false,
        }
    }

    /// Feeds every non-blank line of `input` to both versions, comparing as
    /// chunks come back: whether a version stopped, and a read error.
    fn feed(
        &self,
        input: &mut dyn BufRead,
        cmp: &mut Comparison,
    ) -> (bool, Option<std::io::Error>) {
        let mut in_flight = 0usize;
        let mut buf = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut read_error = None;
        loop {
            buf.clear();
            let end = match input.read_until(b'\n', &mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => {
                    read_error = Some(e);
                    true
                }
            };
            if !end {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if !line.trim().is_empty() {
                    chunk.push(line.to_string());
                }
            }
            if chunk.len() == CHUNK || (end && !chunk.is_empty()) {
                let shared = Arc::new(std::mem::take(&mut chunk));
                if self.lines[0].send(Arc::clone(&shared)).is_err()
                    || self.lines[1].send(shared).is_err()
                {
                    return (true, read_error);
                }
                in_flight += 1;
                if in_flight > 1 {
                    if !self.compare_one(cmp) {
                        return (true, read_error);
                    }
                    in_flight -= 1;
                }
            }
            if end {
                break;
            }
        }
        while in_flight > 0 {
            if !self.compare_one(cmp) {
                return (true, read_error);
            }
            in_flight -= 1;
        }
        (false, read_error)
    }

    /// Ends the input, takes what each version decided at the end (the
    /// drained instants do not line up between versions: each profile's
    /// decisions are compared in order whatever the batches) and each
    /// version's totals.
    fn finish(self, failed: bool, cmp: &mut Comparison) -> Result<(Totals, Totals), String> {
        let Versions {
            lines,
            out,
            threads,
        } = self;
        drop(lines);
        let mut open = [!failed, !failed];
        while open[0] || open[1] {
            for side in 0..2 {
                if open[side] {
                    match out[side].recv() {
                        Ok(batch) => batch.into_iter().for_each(|d| cmp.take(side, d)),
                        Err(_) => open[side] = false,
                    }
                }
            }
        }
        drop(out);
        let [a, b] = threads.map(|h| match h.join() {
            Ok(r) => r,
            Err(_) => Err("a version's thread stopped unexpectedly".to_string()),
        });
        Ok((a?, b?))
    }
}

struct Report<'a> {
    cmp: &'a Comparison,
    dead_letters: (u64, u64),
}

impl Report<'_> {
    fn changed_rows(&self) -> Vec<(&Row, &(u64, u64))> {
        self.cmp
            .counts
            .iter()
            .filter(|(_, (b, a))| b != a)
            .collect()
    }

    fn headline(&self) -> String {
        let n = self.cmp.differing.len();
        if n == 0 {
            format!(
                "no difference: the {} profiles with decisions decide the same",
                self.cmp.profiles.len()
            )
        } else {
            format!(
                "{n} of {} profiles with decisions decide differently",
                self.cmp.profiles.len()
            )
        }
    }

    fn human(&self) -> String {
        let mut out = format!("nudge diff: {}\n", self.headline());
        if self.dead_letters.0 != self.dead_letters.1 {
            let _ = writeln!(
                out,
                "dead letters: {} before, {} after",
                self.dead_letters.0, self.dead_letters.1
            );
        }
        let rows = self.changed_rows();
        if !rows.is_empty() {
            let _ = writeln!(
                out,
                "\n{:24} {:12} {:14} {:>8} {:>8} {:>8}",
                "journey", "kind", "channel", "before", "after", "change"
            );
            for ((journey, kind, channel), (b, a)) in rows {
                let _ = writeln!(
                    out,
                    "{journey:24} {kind:12} {channel:14} {b:>8} {a:>8} {:>+8}",
                    *a as i64 - *b as i64
                );
            }
        }
        if !self.cmp.examples.is_empty() {
            let _ = writeln!(
                out,
                "\nfirst {} differing profiles, their first differing decision:",
                self.cmp.examples.len()
            );
            for (profile, (before, after)) in &self.cmp.examples {
                let _ = writeln!(out, "\n{profile}");
                let _ = writeln!(
                    out,
                    "  before: {}",
                    before.as_deref().unwrap_or("(nothing)")
                );
                let _ = writeln!(out, "  after:  {}", after.as_deref().unwrap_or("(nothing)"));
            }
        }
        out
    }

    fn json(&self) -> String {
        let mut journeys = serde_json::Map::new();
        for ((journey, kind, channel), (b, a)) in &self.cmp.counts {
            let kinds = journeys
                .entry(journey.clone())
                .or_insert_with(|| serde_json::json!({}));
            let key = if channel.is_empty() {
                (*kind).to_string()
            } else {
                format!("{kind}:{channel}")
            };
            // Per kind over all channels, and per kind and channel.
            for k in [(*kind).to_string(), key]
                .into_iter()
                .collect::<HashSet<_>>()
            {
                let cell = &mut kinds[&k];
                let before = cell["before"].as_u64().unwrap_or(0) + b;
                let after = cell["after"].as_u64().unwrap_or(0) + a;
                *cell = serde_json::json!({"before": before, "after": after});
            }
        }
        let parse = |line: &Option<String>| -> serde_json::Value {
            line.as_deref()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        let examples: Vec<serde_json::Value> = self
            .cmp
            .examples
            .iter()
            .map(|(profile, (before, after))| {
                serde_json::json!({"profile": profile, "before": parse(before), "after": parse(after)})
            })
            .collect();
        serde_json::json!({
            "profiles": self.cmp.profiles.len(),
            "profiles_differing": self.cmp.differing.len(),
            "dead_letters": {"before": self.dead_letters.0, "after": self.dead_letters.1},
            "journeys": journeys,
            "examples": examples,
        })
        .to_string()
            + "\n"
    }

    fn markdown(&self) -> String {
        let mut out = format!("### nudge diff: {}\n", self.headline());
        let rows = self.changed_rows();
        if !rows.is_empty() {
            out.push_str("\n| journey | kind | channel | before | after | change |\n|---|---|---|---:|---:|---:|\n");
            for ((journey, kind, channel), (b, a)) in rows {
                let _ = writeln!(
                    out,
                    "| `{journey}` | {kind} | {} | {b} | {a} | {:+} |",
                    if channel.is_empty() { "" } else { channel },
                    *a as i64 - *b as i64
                );
            }
        }
        if !self.cmp.examples.is_empty() {
            let _ = writeln!(
                out,
                "\n<details><summary>First {} differing profiles</summary>\n",
                self.cmp.examples.len()
            );
            for (profile, (before, after)) in &self.cmp.examples {
                let _ = writeln!(out, "**`{profile}`**\n\n```text");
                let _ = writeln!(out, "before: {}", before.as_deref().unwrap_or("(nothing)"));
                let _ = writeln!(
                    out,
                    "after:  {}\n```\n",
                    after.as_deref().unwrap_or("(nothing)")
                );
            }
            out.push_str("</details>\n");
        }
        out
    }
}
