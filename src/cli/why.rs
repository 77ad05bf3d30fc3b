//! `nudge why --profile ID` (CLI.md 1.1): one customer's timeline, for people.
//!
//! The policy runs over the whole stream with explanations on (as `run
//! --explain --drain`), and everything that concerns the profile is printed in
//! order: each of its input events, and under it the journeys it entered or
//! could not enter, every step's decision and, for sends, every channel tried
//! with the rule that decided it. Timers that fire for the profile while other
//! profiles' events are read appear as their own entries. Times are shown in
//! UTC and in the profile's zone (or `--tz`). Colours only on a terminal.

use crate::cli::{Outcome, usage_error};
use chrono::TimeZone;
use chrono_tz::Tz;
use nudge::io::input::Reader;
use nudge::runtime::decision::{NotEntered, Reason, Why};
use nudge::runtime::{Body, Decision, DecisionKind, Engine, Incoming};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct WhyArgs {
    /// Policy files or directories (searched recursively for `*.nudge`).
    #[arg(long, num_args = 1.., required = true)]
    policy: Vec<PathBuf>,
    /// Segment-spec JSON lines to read.
    #[arg(long)]
    events: PathBuf,
    /// The profile to explain (`userId`, else `anonymousId`).
    #[arg(long)]
    profile: String,
    /// Keep this journey only.
    #[arg(long)]
    journey: Option<String>,
    /// Show local times in this zone rather than the profile's.
    #[arg(long)]
    tz: Option<String>,
}

/// ANSI styles, or none when stdout is not a terminal (or `NO_COLOR` is set).
struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn good(&self, t: &str) -> String {
        self.wrap("32", t)
    }
    fn bad(&self, t: &str) -> String {
        self.wrap("31", t)
    }
    fn wait(&self, t: &str) -> String {
        self.wrap("33", t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
}

/// One entry of the timeline: what happened at a moment, and its decisions.
struct Entry {
    at: i64,
    heading: String,
    decisions: Vec<Decision>,
}

pub fn run(args: WhyArgs) -> Outcome {
    let program = match super::program(&args.policy) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    if let Some(j) = &args.journey
        && !program.journeys.iter().any(|x| &x.name == j)
    {
        let names = program.journeys.iter().map(|x| x.name.as_str());
        let hint = nudge::diagnostic::did_you_mean(j, names)
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return usage_error(format!("the policy set has no journey `{j}`{hint}"));
    }
    let fixed_zone: Option<Tz> = match &args.tz {
        None => None,
        Some(z) => match z.parse() {
            Ok(tz) => Some(tz),
            Err(_) => return usage_error(format!("`{z}` is not an IANA time zone")),
        },
    };
    let file = match std::fs::File::open(&args.events) {
        Ok(f) => f,
        Err(e) => {
            return usage_error(format!("cannot read `{}`: {e}", args.events.display()));
        }
    };
    let mut engine = Engine::new(Arc::clone(&program));
    engine.set_explain(true);
    match nudge::jit::Jit::compile(Arc::clone(&program)) {
        Ok(jit) => engine.use_jit(Rc::new(jit)),
        Err(e) => return usage_error(e),
    }
    let id = args.profile.as_str();
    let traced = match trace(&program, &mut engine, file, id, args.journey.as_deref()) {
        Ok(traced) => traced,
        Err(outcome) => return outcome,
    };
    if !traced.mentioned {
        return never_mentioned(id, &traced.seen_ids);
    }
    // (1.1) §9a: a sensitive zone is not shown, not even as local times, unless
    // the operator names one with `--tz`.
    let zone_is_sensitive = program
        .timezone_attr
        .and_then(|a| program.attrs.get(a))
        .is_some_and(|a| a.sensitive);
    let zone = fixed_zone
        .or_else(|| {
            (!zone_is_sensitive)
                .then(|| engine.profile_zone(id))
                .flatten()
        })
        .unwrap_or(Tz::UTC);
    let paint = Paint {
        on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    super::print_out(&render(id, zone, &traced.timeline, &paint))
}

/// One profile's history through a run of the whole stream.
struct Traced {
    /// Its events and rejected lines, each with the decisions it led to.
    timeline: Vec<Entry>,
    /// Whether the stream mentions the profile at all.
    mentioned: bool,
    /// Other profiles' ids (up to a million), for a hint when it does not.
    seen_ids: BTreeSet<String>,
}

/// Runs the stream, keeping what concerns the profile `id` (and `journey`).
fn trace(
    program: &Arc<nudge::ir::Program>,
    engine: &mut Engine,
    file: std::fs::File,
    id: &str,
    journey: Option<&str>,
) -> Result<Traced, Outcome> {
    let keep = |d: &Decision| &*d.profile == id && journey.is_none_or(|j| &*d.journey == j);
    let reader = Reader::new(Arc::clone(program));
    let mut timeline: Vec<Entry> = Vec::new();
    let mut seen_ids: BTreeSet<String> = BTreeSet::new();
    let mut mentioned = false;
    let mut decisions = Vec::new();
    let mut line_number = 0u64;
    for line in BufReader::new(file).split(b'\n') {
        let bytes = match line {
            Ok(b) => b,
            Err(e) => return Err(usage_error(format!("cannot read events: {e}"))),
        };
        line_number += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        match reader.read(text) {
            Ok(event) => {
                let ours = event.profile == id;
                if !ours && !event.profile.is_empty() && seen_ids.len() < 1_000_000 {
                    seen_ids.insert(event.profile.to_string());
                }
                mentioned |= ours;
                let heading = ours.then(|| describe(program, &event, line_number));
                let at = event.timestamp;
                let outcome = engine.process(event, &mut decisions);
                let heading = heading.map(|h| match outcome {
                    nudge::runtime::Outcome::Duplicate => {
                        format!("{h} — a repeated messageId: no effect")
                    }
                    _ => h,
                });
                collect(program, &mut timeline, heading, at, &mut decisions, &keep);
            }
            Err(dead) => {
                if mentions(text, id) {
                    mentioned = true;
                    timeline.push(Entry {
                        at: i64::MIN,
                        heading: format!("line {line_number} rejected: {}", dead.0),
                        decisions: Vec::new(),
                    });
                }
            }
        }
    }
    engine.drain(&mut decisions);
    collect(
        program,
        &mut timeline,
        None,
        i64::MIN,
        &mut decisions,
        &keep,
    );
    Ok(Traced {
        timeline,
        mentioned,
        seen_ids,
    })
}

/// The refusal for a profile the stream never mentions, with the closest ids
/// it does.
fn never_mentioned(id: &str, seen_ids: &BTreeSet<String>) -> Outcome {
    let mut close: Vec<(usize, &String)> = seen_ids
        .iter()
        .map(|s| (nudge::diagnostic::edit_distance(id, s), s))
        .collect();
    close.sort();
    let hint: Vec<String> = close
        .iter()
        .take(3)
        .map(|(_, s)| format!("`{s}`"))
        .collect();
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!("; the closest ids it mentions: {}", hint.join(", "))
    };
    usage_error(format!(
        "the stream never mentions the profile `{id}`{hint}"
    ))
}

/// Moves the kept decisions into the timeline: under `heading` (the profile's
/// own event), or as timer entries of their own.
fn collect(
    program: &nudge::ir::Program,
    timeline: &mut Vec<Entry>,
    heading: Option<String>,
    at: i64,
    decisions: &mut Vec<Decision>,
    keep: &impl Fn(&Decision) -> bool,
) {
    let mut event_entry = heading.map(|heading| Entry {
        at,
        heading,
        decisions: Vec::new(),
    });
    for d in decisions.drain(..) {
        if !keep(&d) {
            continue;
        }
        // Decisions stamped before the event are timers it fired (§7.3 step 2).
        match &mut event_entry {
            Some(entry) if d.at >= entry.at => entry.decisions.push(d),
            _ => match timeline.last_mut() {
                Some(last) if last.heading.starts_with("timer") && last.at == d.at => {
                    last.decisions.push(d)
                }
                _ => timeline.push(Entry {
                    at: d.at,
                    heading: timer_heading(program, &d),
                    decisions: vec![d],
                }),
            },
        }
    }
    timeline.extend(event_entry);
}

/// What a timer was, from the first decision it made: (1.1) a journey started
/// by a quiet period or a schedule, or an instance's wait going on.
fn timer_heading(program: &nudge::ir::Program, d: &Decision) -> String {
    use nudge::ir::Trigger;
    let journey = program.journeys.iter().find(|j| *j.name == *d.journey);
    match (&d.kind, journey.map(|j| &j.trigger)) {
        (
            DecisionKind::Entered | DecisionKind::NotEntered { .. },
            Some(Trigger::Inactivity { after, .. }),
        ) => {
            format!(
                "timer: quiet for {} (`{}`, `when no … for`)",
                nudge::syntax::ast::duration_text((*after / 1_000_000_000).max(0) as u64),
                d.journey
            )
        }
        (
            DecisionKind::Entered | DecisionKind::NotEntered { .. },
            Some(Trigger::Schedule { .. }),
        ) => {
            format!("timer: the schedule of `{}`", d.journey)
        }
        _ => "timer: a wait, a deferral or a `wait up to` ends".into(),
    }
}

/// Whether a rejected line names the profile (as `userId` or `anonymousId`).
fn mentions(line: &str, id: &str) -> bool {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    ["userId", "anonymousId"].iter().any(|k| match m.get(*k) {
        Some(serde_json::Value::String(s)) => s == id,
        Some(serde_json::Value::Number(n)) => n.to_string() == id,
        _ => false,
    })
}

/// An input event in a line: what it was and what it carried (names only for
/// traits; sensitive values are never printed).
fn describe(program: &nudge::ir::Program, e: &Incoming<'_>, line: u64) -> String {
    let mut out = String::new();
    match &e.body {
        Body::Track { event, props } => {
            let def = &program.events[*event];
            let _ = write!(out, "track `{}`", def.name);
            let shown: Vec<String> = def
                .props
                .iter()
                .zip(props)
                .filter(|(_, v)| !v.is_none())
                .map(|(p, v)| {
                    let mut text = String::new();
                    nudge::interp::write_text(v, &mut text);
                    format!("{}={text}", p.name)
                })
                .collect();
            if !shown.is_empty() {
                let _ = write!(out, " {{ {} }}", shown.join(", "));
            }
        }
        Body::Identify { attrs, consents } => {
            out.push_str("identify");
            let names: Vec<&str> = attrs
                .iter()
                .filter_map(|(slot, _)| program.attrs.get(*slot).map(|a| a.name.as_str()))
                .collect();
            if !names.is_empty() {
                let _ = write!(out, " sets {}", names.join(", "));
            }
            consent_text(program, consents, &mut out);
        }
        Body::Ignored => {
            let name = e.ignored_name.as_deref().unwrap_or("a call");
            let _ = write!(
                out,
                "{name}: not a declared event, ignored (is it spelt as the policy's `from`?)"
            );
        }
        Body::Tick => out.push_str("tick"),
    }
    if let Some(context) = e.context.as_ref().filter(|c| !c.consents.is_empty()) {
        out.push_str(" (context.consent)");
        consent_text(program, &context.consents, &mut out);
    }
    let _ = write!(out, "  [line {line}]");
    out
}

fn consent_text(program: &nudge::ir::Program, consents: &[(usize, bool)], out: &mut String) {
    for (topic, granted) in consents {
        if let Some(t) = program.consents.get(*topic) {
            let verb = if *granted { "grants" } else { "revokes" };
            let _ = write!(out, "; {verb} `{}`", t.name);
        }
    }
}

fn utc(t: i64) -> String {
    let mut s = String::new();
    nudge::runtime::time::write_rfc3339(t, &mut s);
    s
}

fn local(zone: Tz, t: i64) -> String {
    zone.timestamp_nanos(t)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

fn render(id: &str, zone: Tz, timeline: &[Entry], paint: &Paint) -> String {
    let mut out = String::new();
    let decisions: usize = timeline.iter().map(|e| e.decisions.len()).sum();
    let _ = writeln!(
        out,
        "{} — {} entries, {decisions} decisions; times in UTC and {}",
        paint.bold(&format!("profile {id}")),
        timeline.len(),
        zone.name()
    );
    for entry in timeline {
        out.push('\n');
        let when = if entry.at == i64::MIN {
            String::new()
        } else {
            format!(
                "{}  {}  ",
                utc(entry.at),
                paint.dim(&format!("({})", local(zone, entry.at)))
            )
        };
        let _ = writeln!(out, "{when}{}", paint.bold(&entry.heading));
        for d in &entry.decisions {
            decision(&mut out, zone, d, paint);
        }
    }
    out
}

/// One decision's lines in the timeline. Long by design: one arm per
/// decision kind (LANGUAGE.md §8), each its sentence.
fn decision(out: &mut String, zone: Tz, d: &Decision, paint: &Paint) {
    let journey = &d.journey;
    let arm_of = |arm: &Option<Rc<str>>| {
        arm.as_deref()
            .map(|a| format!(" (arm `{a}`)"))
            .unwrap_or_default()
    };
    match &d.kind {
        DecisionKind::Entered => {
            let _ = writeln!(out, "  {journey}: {}", paint.good("entered"));
        }
        DecisionKind::NotEntered { reason } => {
            let why = match reason {
                NotEntered::Active => "an instance is already running".to_string(),
                NotEntered::Reenter { until } => format!(
                    "`reenter after` allows it again at {} ({})",
                    utc(*until),
                    local(zone, *until)
                ),
                NotEntered::ReenterNever => "`reenter never`, and it entered before".into(),
            };
            let _ = writeln!(
                out,
                "  {journey}: {} — {why}",
                paint.bad("triggered but not entered")
            );
        }
        DecisionKind::Send {
            template,
            channel,
            arm,
            why,
            ..
        } => {
            let _ = writeln!(
                out,
                "  {journey}: {} `{template}` via {channel}{}",
                paint.good("sent"),
                arm_of(arm)
            );
            channels(out, why.as_deref(), &[], paint);
        }
        DecisionKind::Deferred {
            template,
            until,
            reasons,
            arm,
            why,
        } => {
            let _ = writeln!(
                out,
                "  {journey}: {} `{template}` until {} ({}){}",
                paint.wait("deferred"),
                utc(*until),
                local(zone, *until),
                arm_of(arm)
            );
            channels(out, why.as_deref(), reasons, paint);
        }
        DecisionKind::Suppressed {
            template,
            reasons,
            arm,
            why,
        } => {
            let _ = writeln!(
                out,
                "  {journey}: {} `{template}`{}",
                paint.bad("suppressed"),
                arm_of(arm)
            );
            channels(out, why.as_deref(), reasons, paint);
        }
        DecisionKind::Holdout { arm } => {
            let _ = writeln!(
                out,
                "  {journey}: holdout (arm `{arm}`): no message, by design"
            );
        }
        DecisionKind::Exited { event } => {
            let _ = writeln!(out, "  {journey}: exited on `{event}`");
        }
        DecisionKind::Completed => {
            let _ = writeln!(out, "  {journey}: completed");
        }
        DecisionKind::Converted {
            event,
            entered_at,
            arm,
        } => {
            let _ = writeln!(
                out,
                "  {journey}: {} on `{event}` (entered {}){}",
                paint.good("converted"),
                utc(*entered_at),
                arm_of(arm)
            );
        }
    }
}

fn channels(out: &mut String, why: Option<&Why>, reasons: &[(Rc<str>, Reason)], paint: &Paint) {
    let Some(why) = why else {
        return;
    };
    for (channel, sentence) in why {
        let failed =
            reasons.iter().any(|(c, _)| c == channel) || !sentence.starts_with("available");
        let mark = if failed {
            paint.bad("✗")
        } else {
            paint.good("✓")
        };
        let _ = writeln!(out, "      {mark} {channel:<8} {sentence}");
    }
}
