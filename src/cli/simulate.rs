//! `nudge simulate` (1.1): a backtest. Runs the policy set over a history of
//! events as `run --drain` would, aggregating the decisions as they come (none
//! is kept), then writes the JSON summary (`--json`) and the self-contained
//! HTML report (`--report`) with the same figures.

use crate::cli::stats::{self, Comparison, Rate};
use crate::cli::{Outcome, usage_error};
use chrono::{Datelike, TimeZone, Timelike};
use chrono_tz::Tz;
use nudge::io::input::Reader;
use nudge::ir::{Instr, Program};
use nudge::runtime::{Decision, DecisionKind, Engine};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Policy files or directories.
    #[arg(long, num_args = 1.., required = true)]
    policy: Vec<PathBuf>,
    /// Newline-delimited Segment-spec JSON events; `-` for stdin.
    #[arg(long)]
    events: String,
    /// Write the HTML report here (one self-contained file).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the JSON summary here (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The time zone days and weeks are counted in.
    #[arg(long, default_value = "UTC")]
    tz: String,
}

/// Decision kinds as the output names them, in §8's order.
const KINDS: [&str; DecisionKind::COUNT] = DecisionKind::NAMES;

/// What one journey (or one arm of it) decided.
#[derive(Default, Clone)]
pub struct Figures {
    pub kinds: BTreeMap<&'static str, u64>,
    /// Suppressed sends: (channel, reason) pairs by reason, and by channel.
    pub suppressed_reasons: BTreeMap<String, u64>,
    pub suppressed_channels: BTreeMap<String, u64>,
}

impl Figures {
    fn add(&mut self, d: &Decision) {
        *self.kinds.entry(d.kind.name()).or_insert(0) += 1;
        if let DecisionKind::Suppressed { reasons, .. } = &d.kind {
            for (channel, reason) in reasons {
                *self
                    .suppressed_reasons
                    .entry(reason.as_str().to_string())
                    .or_insert(0) += 1;
                *self
                    .suppressed_channels
                    .entry(channel.to_string())
                    .or_insert(0) += 1;
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        for k in KINDS {
            o.insert(k.into(), self.kinds.get(k).copied().unwrap_or(0).into());
        }
        o.insert(
            "suppressed_by_reason".into(),
            serde_json::json!(self.suppressed_reasons),
        );
        o.insert(
            "suppressed_by_channel".into(),
            serde_json::json!(self.suppressed_channels),
        );
        serde_json::Value::Object(o)
    }
}

#[derive(Default)]
pub struct JourneyFigures {
    pub all: Figures,
    pub arms: BTreeMap<String, Figures>,
}

/// An experiment: one journey's first split.
pub struct Experiment {
    pub journey: String,
    /// The arm the others are compared with: the holdout, else the first arm.
    pub control: String,
    /// Arms in the split's order, with entries and conversions.
    pub arms: Vec<(String, Rate)>,
}

impl Experiment {
    pub fn comparisons(&self) -> Vec<(String, Comparison)> {
        let Some((_, control)) = self.arms.iter().find(|(a, _)| *a == self.control) else {
            return Vec::new();
        };
        self.arms
            .iter()
            .filter(|(a, _)| *a != self.control)
            .map(|(a, r)| (a.clone(), stats::compare(*r, *control)))
            .collect()
    }
}

/// Every figure of the report.
pub struct Summary {
    pub tz: Tz,
    pub lines: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub totals: BTreeMap<&'static str, u64>,
    pub journeys: BTreeMap<String, JourneyFigures>,
    /// (day in `tz`, channel) → sends.
    pub per_channel_day: BTreeMap<(String, String), u64>,
    /// (profile, Monday of the week in `tz`) → sends per channel: what a
    /// customer actually receives (CLI.md).
    weeks: HashMap<(String, i64), BTreeMap<String, u32>>,
    /// (1.1) The same for marketing sends only (those of journeys that are not
    /// transactional), which the proven bound is about (LANGUAGE.md §9a).
    marketing_weeks: HashMap<(String, i64), BTreeMap<String, u32>>,
    /// The transactional journeys' names.
    transactional: std::collections::HashSet<String>,
    /// Deferrals by the local hour (in the profile's zone) they happened at.
    pub deferrals_by_hour: [u64; 24],
    pub caps: BTreeMap<String, u64>,
    pub experiments: Vec<Experiment>,
}

/// A distribution of sends per profile and week.
pub struct Histogram {
    /// sends in a week → profile-weeks with that many.
    pub counts: BTreeMap<u32, u64>,
    pub max: u32,
}

impl Summary {
    fn new(tz: Tz, program: &Program) -> Summary {
        let mut journeys = BTreeMap::new();
        for j in &program.journeys {
            journeys.insert(j.name.clone(), JourneyFigures::default());
        }
        Summary {
            tz,
            lines: 0,
            dead_letters: 0,
            duplicates: 0,
            totals: KINDS.iter().map(|k| (*k, 0)).collect(),
            journeys,
            per_channel_day: BTreeMap::new(),
            weeks: HashMap::new(),
            marketing_weeks: HashMap::new(),
            transactional: program
                .journeys
                .iter()
                .filter(|j| j.transactional)
                .map(|j| j.name.clone())
                .collect(),
            deferrals_by_hour: [0; 24],
            caps: BTreeMap::new(),
            experiments: Vec::new(),
        }
    }

    fn add(&mut self, d: &Decision, zone: Option<Tz>) {
        *self.totals.entry(d.kind.name()).or_insert(0) += 1;
        let figures = self.journeys.entry(d.journey.to_string()).or_default();
        figures.all.add(d);
        let arm = match &d.kind {
            DecisionKind::Send { arm, .. }
            | DecisionKind::Deferred { arm, .. }
            | DecisionKind::Suppressed { arm, .. }
            | DecisionKind::Converted { arm, .. } => arm.clone(),
            DecisionKind::Holdout { arm } => Some(arm.clone()),
            _ => None,
        };
        if let Some(arm) = arm {
            figures.arms.entry(arm.to_string()).or_default().add(d);
        }
        match &d.kind {
            DecisionKind::Send { channel, .. } => {
                let local = self.tz.timestamp_nanos(d.at);
                let day = local.format("%Y-%m-%d").to_string();
                *self
                    .per_channel_day
                    .entry((day, channel.to_string()))
                    .or_insert(0) += 1;
                let monday = local.date_naive().num_days_from_ce()
                    - i32::try_from(local.weekday().num_days_from_monday()).unwrap_or(0);
                let key = (d.profile.as_str().to_string(), i64::from(monday));
                if !self.transactional.contains(&*d.journey) {
                    *self
                        .marketing_weeks
                        .entry(key.clone())
                        .or_default()
                        .entry(channel.to_string())
                        .or_insert(0) += 1;
                }
                *self
                    .weeks
                    .entry(key)
                    .or_default()
                    .entry(channel.to_string())
                    .or_insert(0) += 1;
            }
            DecisionKind::Deferred { .. } => {
                let tz = zone.unwrap_or(self.tz);
                let hour = tz.timestamp_nanos(d.at).hour() as usize;
                if let Some(h) = self.deferrals_by_hour.get_mut(hour) {
                    *h += 1;
                }
            }
            _ => {}
        }
    }

    /// Adds the decisions just made, each with its profile's zone (the
    /// profile is in memory: it was just decided for).
    fn take(&mut self, engine: &Engine, decisions: &mut Vec<Decision>) {
        for d in decisions.drain(..) {
            let zone = engine.profile_zone(d.profile.as_str());
            self.add(&d, zone);
        }
    }

    /// Sends per profile and week, over all channels or on one.
    pub fn per_profile_week(&self, channel: Option<&str>) -> Histogram {
        Self::histogram_of(&self.weeks, channel)
    }

    /// (1.1) Marketing sends per profile and week, over all channels or on one.
    pub fn marketing_per_profile_week(&self, channel: Option<&str>) -> Histogram {
        Self::histogram_of(&self.marketing_weeks, channel)
    }

    /// The distribution of a (profile, week) → sends per channel table.
    fn histogram_of(
        weeks: &HashMap<(String, i64), BTreeMap<String, u32>>,
        channel: Option<&str>,
    ) -> Histogram {
        let mut counts = BTreeMap::new();
        for per_channel in weeks.values() {
            let n = match channel {
                None => per_channel.values().sum(),
                Some(c) => per_channel.get(c).copied().unwrap_or(0),
            };
            if n > 0 {
                *counts.entry(n).or_insert(0) += 1;
            }
        }
        let max = counts.keys().next_back().copied().unwrap_or(0);
        Histogram { counts, max }
    }

    pub fn channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = self
            .per_channel_day
            .keys()
            .map(|(_, c)| c.clone())
            .collect();
        channels.sort();
        channels.dedup();
        channels
    }

    fn finish(&mut self, program: &Program, counters: &nudge::runtime::Counters) {
        self.duplicates = counters.duplicates;
        self.caps = counters.cap_suppressions.clone();
        for journey in &program.journeys {
            let Some(arms) = journey.code.iter().find_map(|i| match i {
                Instr::Split { arms, .. } => Some(arms),
                _ => None,
            }) else {
                continue;
            };
            let conversions = |arm: &str| {
                self.journeys
                    .get(&journey.name)
                    .and_then(|f| f.arms.get(arm))
                    .and_then(|f| f.kinds.get("converted"))
                    .copied()
                    .unwrap_or(0)
            };
            let rates: Vec<(String, Rate)> = arms
                .iter()
                .map(|a| {
                    let n = counters
                        .arm_entries
                        .get(&(journey.name.clone(), a.name.clone()))
                        .copied()
                        .unwrap_or(0);
                    (
                        a.name.clone(),
                        stats::wilson(conversions(&a.name).min(n), n),
                    )
                })
                .collect();
            let control = arms
                .iter()
                .find(|a| a.target.is_none())
                .or(arms.first())
                .map(|a| a.name.clone())
                .unwrap_or_default();
            self.experiments.push(Experiment {
                journey: journey.name.clone(),
                control,
                arms: rates,
            });
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let journeys: serde_json::Map<String, serde_json::Value> = self
            .journeys
            .iter()
            .map(|(name, f)| {
                let mut o = match f.all.json() {
                    serde_json::Value::Object(o) => o,
                    _ => serde_json::Map::new(),
                };
                let arms: serde_json::Map<String, serde_json::Value> =
                    f.arms.iter().map(|(a, f)| (a.clone(), f.json())).collect();
                o.insert("arms".into(), serde_json::Value::Object(arms));
                (name.clone(), serde_json::Value::Object(o))
            })
            .collect();
        let histogram = |h: &Histogram| {
            serde_json::json!({
                "max": h.max,
                "histogram": h.counts.iter().map(|(sends, profiles)| serde_json::json!({"sends": sends, "profile_weeks": profiles})).collect::<Vec<_>>(),
            })
        };
        let mut per_profile_week = histogram(&self.per_profile_week(None));
        let per_channel: serde_json::Map<String, serde_json::Value> = self
            .channels()
            .iter()
            .map(|c| (c.clone(), histogram(&self.per_profile_week(Some(c)))))
            .collect();
        per_profile_week["per_channel"] = serde_json::Value::Object(per_channel);
        let round = |x: f64| (x * 1e6).round() / 1e6;
        let experiments: Vec<serde_json::Value> = self
            .experiments
            .iter()
            .map(|e| {
                let comparisons: BTreeMap<String, Comparison> =
                    e.comparisons().into_iter().collect();
                serde_json::json!({
                    "journey": e.journey,
                    "control": e.control,
                    "arms": e.arms.iter().map(|(a, r)| {
                        let mut arm = serde_json::json!({
                            "arm": a,
                            "entries": r.n,
                            "conversions": r.k,
                            "rate": round(r.rate),
                            "interval": [round(r.low), round(r.high)],
                        });
                        if let Some(c) = comparisons.get(a) {
                            arm["against_control"] = serde_json::json!({
                                "difference": round(c.difference),
                                "interval": [round(c.low), round(c.high)],
                                "p_value": c.p_value.map(round),
                            });
                        }
                        arm
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "lines": self.lines,
            "totals": self.totals,
            "dead_letters": self.dead_letters,
            "duplicates": self.duplicates,
            "journeys": journeys,
            "per_channel_day": self.per_channel_day.iter().map(|((day, channel), sends)| {
                serde_json::json!({"day": day, "channel": channel, "sends": sends})
            }).collect::<Vec<_>>(),
            "per_profile_week": per_profile_week,
            "caps": self.caps,
            "deferrals_by_local_hour": self.deferrals_by_hour,
            "experiments": experiments,
            "tz": self.tz.name(),
        })
    }
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// The `--json` document: the summary, and (1.1) the proven bounds beside the
/// observed weekly maxima of marketing sends (`per_profile_week.bound` and
/// `marketing_max`, and each channel's).
fn document(summary: &Summary, bounds: &nudge::check::bounds::Bounds) -> serde_json::Value {
    let mut doc = summary.json();
    doc["bounds"] = bounds.to_json();
    doc["per_profile_week"]["marketing_max"] =
        serde_json::json!(summary.marketing_per_profile_week(None).max);
    doc["per_profile_week"]["bound"] = serde_json::json!(bounds.all.max);
    if let Some(per) = doc["per_profile_week"]["per_channel"].as_object_mut() {
        for (channel, h) in per.iter_mut() {
            h["marketing_max"] =
                serde_json::json!(summary.marketing_per_profile_week(Some(channel)).max);
            h["bound"] = serde_json::json!(bounds.channel(channel).and_then(|b| b.max));
        }
    }
    doc
}

pub fn run(args: SimulateArgs) -> Outcome {
    let Ok(tz) = args.tz.parse::<Tz>() else {
        let zones = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
        let hint = nudge::diagnostic::did_you_mean(&args.tz, zones).unwrap_or_default();
        return usage_error(format!("`{}` is not an IANA time zone {hint}", args.tz));
    };
    if args.report.is_none() && args.json.is_none() {
        return usage_error(
            "say where to write: --report FILE.html and/or --json FILE (- for stdout)",
        );
    }
    let (program, bounds) = match super::program_and_bounds(&args.policy) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let outputs = match Outputs::open(&args) {
        Ok(outputs) => outputs,
        Err(outcome) => return outcome,
    };
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (input, size) = match open_events(&args.events, &read) {
        Ok(opened) => opened,
        Err(outcome) => return outcome,
    };
    let started = Instant::now();
    let summary = match simulate(&program, tz, input, size, &read) {
        Ok(summary) => summary,
        Err(outcome) => return outcome,
    };
    let written = outputs.write(&args, &summary, &program, &bounds);
    if !matches!(written, Outcome::Success) {
        return written;
    }
    let sends = summary.totals.get("send").copied().unwrap_or(0);
    eprintln!(
        "simulated {} lines in {:.1}s: {sends} sends, {} suppressed, {} deferred",
        summary.lines,
        started.elapsed().as_secs_f64(),
        summary.totals.get("suppressed").copied().unwrap_or(0),
        summary.totals.get("deferred").copied().unwrap_or(0),
    );
    Outcome::Success
}

/// Where the summary goes. The files are opened before the run, so that a
/// path that cannot be written is refused at once rather than after the
/// whole history.
struct Outputs {
    to_stdout: bool,
    json: Option<std::fs::File>,
    report: Option<std::fs::File>,
}

impl Outputs {
    fn open(args: &SimulateArgs) -> Result<Outputs, Outcome> {
        let to_stdout = args.json.as_ref().is_some_and(|p| p.as_os_str() == "-");
        if args.json.is_some() && args.json == args.report {
            return Err(usage_error("--json and --report must be different files"));
        }
        if [&args.json, &args.report]
            .into_iter()
            .flatten()
            .any(|p| p.as_os_str() == args.events.as_str())
        {
            return Err(usage_error("an output would overwrite the events it reads"));
        }
        let create = |path: &PathBuf| {
            std::fs::File::create(path)
                .map_err(|e| usage_error(format!("cannot write `{}`: {e}", path.display())))
        };
        let json = args
            .json
            .as_ref()
            .filter(|_| !to_stdout)
            .map(create)
            .transpose()?;
        let report = args.report.as_ref().map(create).transpose()?;
        Ok(Outputs {
            to_stdout,
            json,
            report,
        })
    }

    /// The JSON document and the HTML report, each where it was asked for.
    fn write(
        self,
        args: &SimulateArgs,
        summary: &Summary,
        program: &Program,
        bounds: &nudge::check::bounds::Bounds,
    ) -> Outcome {
        use std::io::Write as _;
        if self.to_stdout {
            let written = super::print_out(&(document(summary, bounds).to_string() + "\n"));
            if !matches!(written, Outcome::Success) {
                return written;
            }
        }
        if let (Some(mut file), Some(path)) = (self.json, &args.json) {
            let text = document(summary, bounds).to_string() + "\n";
            if let Err(e) = file.write_all(text.as_bytes()).and_then(|()| file.flush()) {
                return usage_error(format!("cannot write `{}`: {e}", path.display()));
            }
        }
        if let (Some(mut file), Some(path)) = (self.report, &args.report) {
            let html = super::report::html(summary, program, bounds, &args.policy);
            if let Err(e) = file.write_all(html.as_bytes()).and_then(|()| file.flush()) {
                return usage_error(format!("cannot write `{}`: {e}", path.display()));
            }
        }
        Outcome::Success
    }
}

/// The events (`-`: standard input), counting the bytes read for the
/// progress bar, and their size when it is known.
fn open_events(
    events: &str,
    read: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Box<dyn BufRead>, Option<u64>), Outcome> {
    if events == "-" {
        let counting = Counting {
            inner: std::io::stdin().lock(),
            read: Arc::clone(read),
        };
        return Ok((Box::new(BufReader::new(counting)), None));
    }
    match std::fs::File::open(events) {
        Ok(f) => {
            let size = f.metadata().ok().map(|m| m.len());
            let counting = Counting {
                inner: f,
                read: Arc::clone(read),
            };
            Ok((Box::new(BufReader::with_capacity(1 << 16, counting)), size))
        }
        Err(e) => Err(usage_error(format!("cannot read `{events}`: {e}"))),
    }
}

/// Runs the whole history through the engine (the JIT), summarizing the
/// decisions as they come.
fn simulate(
    program: &Arc<Program>,
    tz: Tz,
    mut input: Box<dyn BufRead>,
    size: Option<u64>,
    read: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<Summary, Outcome> {
    let mut engine = Engine::new(Arc::clone(program));
    match nudge::jit::Jit::compile(Arc::clone(program)) {
        Ok(jit) => engine.use_jit(std::rc::Rc::new(jit)),
        Err(e) => return Err(usage_error(e)),
    }
    let reader = Reader::new(Arc::clone(program));
    let mut summary = Summary::new(tz, program);
    let mut decisions: Vec<Decision> = Vec::new();
    let started = Instant::now();
    // A progress bar for inputs that take more than a moment, on a terminal
    // only (indicatif draws nothing when stderr is not one).
    let mut progress: Option<indicatif::ProgressBar> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(usage_error(format!("cannot read events: {e}"))),
        }
        summary.lines += 1;
        if summary.lines.is_multiple_of(65_536) {
            tick(&mut progress, started, size, read);
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match reader.read(line) {
            Ok(event) => {
                engine.process(event, &mut decisions);
            }
            Err(_) => summary.dead_letters += 1,
        }
        summary.take(&engine, &mut decisions);
    }
    while engine.drain_step(&mut decisions) {
        summary.take(&engine, &mut decisions);
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    summary.finish(program, &engine.counters());
    Ok(summary)
}

/// Shows or moves the progress bar once the run has taken two seconds.
fn tick(
    progress: &mut Option<indicatif::ProgressBar>,
    started: Instant,
    size: Option<u64>,
    read: &std::sync::atomic::AtomicU64,
) {
    if progress.is_none() && started.elapsed() > Duration::from_secs(2) {
        let bar = match size {
            Some(len) => indicatif::ProgressBar::new(len).with_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} simulating {bytes}/{total_bytes} ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        *progress = Some(bar);
    }
    if let Some(bar) = progress {
        bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
    }
}
