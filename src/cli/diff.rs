//! `nudge diff` (1.1): what a change to a policy set would do. Both versions
//! run over the same events in one pass (each line read once, parsed by each
//! version's reader, fed to each version's engine), then drain, as
//! `nudge simulate` does. Each profile's decisions are compared in order as
//! they are produced; only the decisions one side has produced and the other
//! not yet are held, so memory follows the differences, not the stream.

use crate::cli::{Outcome, usage_error};
use nudge::io::input::Reader;
use nudge::io::output::write_decision;
use nudge::ir::Program;
use nudge::runtime::{Decision, DecisionKind, Engine, ProfileId};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The current policy set (files or directories).
    #[arg(long, num_args = 1.., required = true)]
    policy: Vec<PathBuf>,
    /// The proposed policy set.
    #[arg(long, num_args = 1.., required = true)]
    against: Vec<PathBuf>,
    /// Newline-delimited Segment-spec JSON events; `-` for stdin.
    #[arg(long)]
    events: String,
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

/// One side of the comparison.
struct Side {
    reader: Reader,
    engine: Engine,
    out: Vec<Decision>,
    dead_letters: u64,
}

impl Side {
    fn new(program: Arc<Program>) -> Result<Side, String> {
        let mut engine = Engine::new(Arc::clone(&program));
        let jit = nudge::jit::Jit::compile(Arc::clone(&program)).map_err(|e| e.to_string())?;
        engine.use_jit(std::rc::Rc::new(jit));
        Ok(Side {
            reader: Reader::new(program),
            engine,
            out: Vec::new(),
            dead_letters: 0,
        })
    }

    fn line(&mut self, line: &str) {
        match self.reader.read(line) {
            Ok(event) => {
                self.engine.process(event, &mut self.out);
            }
            Err(_) => self.dead_letters += 1,
        }
    }
}

/// (journey, kind, channel; empty but for sends).
type Row = (String, &'static str, String);

/// Decisions by row: before and after.
type Counts = BTreeMap<Row, (u64, u64)>;

/// Decisions by (journey, kind, channel of a send), counted without
/// allocating: the names are the decisions' own.
type FastCounts = FxHashMap<(Rc<str>, &'static str, Option<Rc<str>>), (u64, u64)>;

/// What is compared, profile by profile.
#[derive(Default)]
struct Comparison {
    fast: FastCounts,
    counts: Counts,
    /// Decisions one side produced that the other has not (yet): the side
    /// (0 before, 1 after) and the JSON lines, per profile.
    ahead: FxHashMap<ProfileId, (usize, VecDeque<String>)>,
    /// Profiles seen in any decision.
    profiles: FxHashSet<ProfileId>,
    differing: FxHashSet<ProfileId>,
    /// The first differing decisions of the lowest profile ids.
    examples: BTreeMap<String, (Option<String>, Option<String>)>,
    text: String,
}

impl Comparison {
    fn count(&mut self, side: usize, d: &Decision) {
        let channel = match &d.kind {
            DecisionKind::Send { channel, .. } => Some(Rc::clone(channel)),
            _ => None,
        };
        let entry = self
            .fast
            .entry((Rc::clone(&d.journey), d.kind.name(), channel))
            .or_default();
        if side == 0 {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        if !self.profiles.contains(&d.profile) {
            self.profiles.insert(d.profile.clone());
        }
    }

    /// The decisions both sides made for one input line (or one drained
    /// instant). The common case, the same decisions in the same order with
    /// nothing pending, is counted and done; otherwise each profile's
    /// decisions are compared in order, as JSON lines.
    fn line(&mut self, before: &mut Vec<Decision>, after: &mut Vec<Decision>) {
        if self.ahead.is_empty() && before == after {
            for d in before.drain(..) {
                self.count(0, &d);
                self.count(1, &d);
            }
            after.clear();
            return;
        }
        self.take(0, before);
        self.take(1, after);
    }

    fn take(&mut self, side: usize, decisions: &mut Vec<Decision>) {
        for d in decisions.drain(..) {
            self.count(side, &d);
            if self.differing.contains(&d.profile) {
                continue;
            }
            self.text.clear();
            write_decision(&d, &mut self.text);
            let profile = &d.profile;
            let line = std::mem::take(&mut self.text);
            match self.ahead.get_mut(profile) {
                Some((s, queue)) if *s != side => {
                    let first = queue.pop_front();
                    if queue.is_empty() {
                        self.ahead.remove(profile);
                    }
                    if first.as_deref() != Some(line.as_str()) {
                        let (before, after) = if side == 1 {
                            (first, Some(line))
                        } else {
                            (Some(line), first)
                        };
                        self.differ(profile.clone(), before, after);
                    }
                }
                Some((_, queue)) => queue.push_back(line),
                None => {
                    self.ahead
                        .insert(profile.clone(), (side, VecDeque::from([line])));
                }
            }
        }
    }

    fn differ(&mut self, profile: ProfileId, before: Option<String>, after: Option<String>) {
        self.ahead.remove(&profile);
        let id = profile.as_str().to_string();
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

    /// At the end: what one side decided and the other never did.
    fn finish(&mut self) {
        for ((journey, kind, channel), n) in self.fast.drain() {
            let channel = channel.map(|c| c.to_string()).unwrap_or_default();
            let entry = self
                .counts
                .entry((journey.to_string(), kind, channel))
                .or_default();
            entry.0 += n.0;
            entry.1 += n.1;
        }
        let left: Vec<(ProfileId, (usize, VecDeque<String>))> = self.ahead.drain().collect();
        for (profile, (side, mut queue)) in left {
            let first = queue.pop_front();
            let (before, after) = if side == 0 {
                (first, None)
            } else {
                (None, first)
            };
            self.differ(profile, before, after);
        }
    }
}

pub fn run(args: DiffArgs) -> Outcome {
    // A policy error in either set is exit 2 here (CLI.md): 1 means "differs".
    let program = |paths: &[PathBuf], which: &str| match super::program(paths) {
        Ok(p) => Ok(p),
        Err(Outcome::PolicyErrors) => {
            eprintln!("error: the {which} policy set has errors; nothing was compared");
            Err(Outcome::UsageOrIo)
        }
        Err(other) => Err(other),
    };
    let before = match program(&args.policy, "current (--policy)") {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let after = match program(&args.against, "proposed (--against)") {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let input: Box<dyn BufRead> = if args.events == "-" {
        Box::new(BufReader::new(std::io::stdin().lock()))
    } else {
        match std::fs::File::open(&args.events) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => return usage_error(format!("cannot read `{}`: {e}", args.events)),
        }
    };
    let (mut a, mut b) = match (Side::new(before), Side::new(after)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return usage_error(e),
    };
    let mut cmp = Comparison::default();
    let mut buf = Vec::new();
    let mut input = input;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return usage_error(format!("cannot read events: {e}")),
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        a.line(line);
        b.line(line);
        cmp.line(&mut a.out, &mut b.out);
    }
    // Timers after the input, an instant at a time on both sides.
    let mut more = (true, true);
    while more.0 || more.1 {
        if more.0 {
            more.0 = a.engine.drain_step(&mut a.out);
        }
        if more.1 {
            more.1 = b.engine.drain_step(&mut b.out);
        }
        cmp.line(&mut a.out, &mut b.out);
    }
    cmp.finish();
    let report = Report {
        cmp: &cmp,
        dead_letters: (a.dead_letters, b.dead_letters),
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
