//! The runtime: policies against a stream of events, in event time (LANGUAGE.md §7).
//!
//! [`Engine`] holds the state (profiles, aggregates, instances, timers, the clock,
//! seen message ids) and turns each [`Incoming`] event into [`Decision`]s, in the
//! order of §7.3. It does no IO: `io` parses lines into `Incoming` and writes
//! decisions. Promises: the decisions are a pure function of the events in order
//! (no wall clock, no randomness, no hash-map iteration order leaks into output);
//! memory grows with the profiles held, not with the input's length (windows and
//! send histories are pruned to what the longest window needs).

mod choose;
pub mod decision;
pub mod state;
pub mod time;

pub use decision::{Decision, DecisionKind, Reason};

use crate::interp::{self, Env};
use crate::ir::{CapWindow, Instr, Program, Reenter, Value};
use chrono_tz::Tz;
use rustc_hash::{FxHashMap, FxHashSet};
use state::Instance;
pub use state::Profile;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// How long (in event time) a `messageId` is remembered for deduplication: a
/// week, well beyond the 24 hours within which Segment itself retries.
pub const DEDUPE_WINDOW: i64 = 7 * time::DAY;

/// One valid input event, already validated against the schema.
/// Ids are borrowed from the input line when they can be.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<'a> {
    pub profile: Cow<'a, str>,
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    pub message_id: Option<Cow<'a, str>>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A declared event with its properties, one slot per declared property.
    Track { event: usize, props: Vec<Value> },
    /// Traits to set (`null` resets to the default) and consent changes.
    Identify {
        attrs: Vec<(usize, Value)>,
        consents: Vec<(usize, bool)>,
    },
    /// A valid line Nudge has no use for (an undeclared event, a `page` call): it
    /// moves the clock and is deduplicated, nothing more.
    Ignored,
}

/// What happened to an input event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    Duplicate,
    Ignored,
}

/// Counters for `--stats`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub duplicates: u64,
    pub ignored: u64,
    pub late: u64,
    pub divisions_by_zero: u64,
    pub decisions: BTreeMap<&'static str, u64>,
    pub peak_profiles: usize,
}

pub struct Engine {
    program: Arc<Program>,
    profiles: FxHashMap<String, Profile>,
    /// Pending timers, ordered as §7.3 fires them: time, profile, then journey
    /// index (journeys are stored by priority descending, then name).
    timers: BTreeSet<(i64, String, usize)>,
    clock: Option<i64>,
    /// 128-bit digests of the message ids seen within the deduplication window,
    /// and when (by the clock). Digests keep memory flat whatever the ids' length;
    /// two ids collide with probability 2^-128.
    seen: FxHashSet<u128>,
    seen_order: VecDeque<(i64, u128)>,
    /// How long sends must be remembered for the caps (nanoseconds).
    send_retention: i64,
    divisions_by_zero: Cell<u64>,
    counters: Counters,
    /// Whether changes are recorded for a durable store (see `take_changes`);
    /// without a store nothing would drain them, and they would grow with the input.
    track_changes: bool,
    /// What changed since the last [`Engine::take_changes`], for a durable store.
    dirty: FxHashSet<String>,
    /// Where evicted profiles come back from.
    loader: Option<Box<dyn ProfileLoader>>,
    /// Native code for the program's conditions (`--engine jit`).
    jit: Option<std::rc::Rc<crate::jit::Jit>>,
    /// A counter of profile uses, for least-recently-used eviction.
    tick: u64,
    seen_added: Vec<(i64, u128)>,
    seen_removed: Vec<u128>,
}

/// The source of profiles that are not in memory (evicted, or saved by an earlier
/// run). `None` means the profile has never been seen.
pub trait ProfileLoader {
    fn load(&mut self, id: &str) -> Option<Profile>;
}

/// The state changed since the last call to [`Engine::take_changes`].
#[derive(Debug, Default)]
pub struct Changes {
    pub profiles: Vec<(String, Profile)>,
    pub seen_added: Vec<(i64, u128)>,
    pub seen_removed: Vec<u128>,
    pub clock: Option<i64>,
}

impl Engine {
    pub fn new(program: Arc<Program>) -> Engine {
        let send_retention = program
            .caps
            .iter()
            .map(|c| match c.window {
                CapWindow::Rolling(d) => d,
                // A calendar week, plus a day for DST and zone changes.
                CapWindow::Day | CapWindow::Week => 8 * time::DAY,
            })
            .max()
            .unwrap_or(0);
        Engine {
            program,
            profiles: FxHashMap::default(),
            timers: BTreeSet::new(),
            clock: None,
            seen: FxHashSet::default(),
            seen_order: VecDeque::new(),
            send_retention,
            divisions_by_zero: Cell::new(0),
            counters: Counters::default(),
            track_changes: false,
            dirty: FxHashSet::default(),
            loader: None,
            jit: None,
            tick: 0,
            seen_added: Vec::new(),
            seen_removed: Vec::new(),
        }
    }

    /// An engine in the state a store saved: the clock, the pending timers and the
    /// seen message ids (with the clock when they were seen). Profiles come from
    /// the loader when they are needed.
    pub fn restore(
        program: Arc<Program>,
        clock: Option<i64>,
        timers: impl IntoIterator<Item = (i64, String, usize)>,
        seen: Vec<(i64, u128)>,
    ) -> Engine {
        let mut engine = Engine::new(program);
        engine.track_changes = true;
        engine.clock = clock;
        engine.timers.extend(timers);
        let mut seen = seen;
        seen.sort_unstable();
        for (t, d) in seen {
            if engine.seen.insert(d) {
                engine.seen_order.push_back((t, d));
            }
        }
        engine
    }

    /// Starts recording what changes, for [`Engine::take_changes`].
    pub fn track_changes(&mut self) {
        self.track_changes = true;
    }

    /// The profiles and message ids changed since the last call (since
    /// [`Engine::track_changes`]), and the clock.
    pub fn take_changes(&mut self) -> Changes {
        // Profiles that changed, with their pending timers.
        let mut ids: Vec<String> = self.dirty.drain().collect();
        ids.sort_unstable();
        Changes {
            profiles: ids
                .into_iter()
                .filter_map(|id| self.profiles.get(&id).cloned().map(|p| (id, p)))
                .collect(),
            seen_added: std::mem::take(&mut self.seen_added),
            seen_removed: std::mem::take(&mut self.seen_removed),
            clock: self.clock,
        }
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        c.divisions_by_zero = self.divisions_by_zero.get();
        c
    }

    pub fn profiles_held(&self) -> usize {
        self.profiles.len()
    }

    /// Processes one event (§7.3), appending its decisions to `out`.
    pub fn process(&mut self, event: Incoming<'_>, out: &mut Vec<Decision>) -> Outcome {
        // 1. A repeated messageId has no effect at all.
        let digest = event.message_id.as_deref().map(fnv1a_128);
        if let Some(d) = digest
            && self.seen.contains(&d)
        {
            self.counters.duplicates += 1;
            return Outcome::Duplicate;
        }
        // The clock is the largest timestamp seen; a late event runs at the clock.
        let now = match self.clock {
            Some(c) if c > event.timestamp => {
                self.counters.late += 1;
                c
            }
            _ => event.timestamp,
        };
        // 2. Timers due at or before now.
        self.fire_timers(now, out);
        self.clock = Some(now);
        if let Some(d) = digest
            && self.seen.insert(d)
        {
            self.seen_order.push_back((now, d));
            if self.track_changes {
                self.seen_added.push((now, d));
            }
        }
        // Ids older than the window are forgotten, so memory does not grow with the
        // length of the stream.
        let horizon = now.saturating_sub(DEDUPE_WINDOW);
        while self.seen_order.front().is_some_and(|(t, _)| *t <= horizon) {
            if let Some((_, d)) = self.seen_order.pop_front() {
                self.seen.remove(&d);
                if self.track_changes {
                    self.seen_removed.push(d);
                }
            }
        }
        match event.body {
            Body::Ignored => {
                self.counters.ignored += 1;
                Outcome::Ignored
            }
            Body::Identify { attrs, consents } => {
                // 3. Traits and consent.
                let program = Arc::clone(&self.program);
                let profile = self.profile_mut(&event.profile);
                for (slot, value) in attrs {
                    if let Some(a) = profile.attrs.get_mut(slot) {
                        *a = value;
                    }
                }
                profile.tz = state::zone_of(&program, &profile.attrs);
                for (topic, granted) in consents {
                    if let Some(c) = profile.consents.get_mut(topic) {
                        *c = granted;
                    }
                }
                Outcome::Processed
            }
            Body::Track { event: kind, props } => {
                self.track(&event.profile, event.timestamp, now, kind, &props, out);
                Outcome::Processed
            }
        }
    }

    /// Fires every timer due at or before `until` (`--until`), moving the clock.
    pub fn advance_to(&mut self, until: i64, out: &mut Vec<Decision>) {
        self.fire_timers(until, out);
        if self.clock.is_none_or(|c| c < until) {
            self.clock = Some(until);
        }
    }

    /// Fires pending timers in time order until none is left (`--drain`).
    pub fn drain(&mut self, out: &mut Vec<Decision>) {
        while let Some((at, _, _)) = self.timers.first().cloned() {
            self.fire_timers(at, out);
            if self.clock.is_none_or(|c| c < at) {
                self.clock = Some(at);
            }
        }
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    fn profile_mut(&mut self, id: &str) -> &mut Profile {
        self.ensure_loaded(id);
        if self.track_changes && !self.dirty.contains(id) {
            self.dirty.insert(id.to_string());
        }
        self.tick += 1;
        let tick = self.tick;
        let program = &self.program;
        let profile = self
            .profiles
            .entry(id.to_string())
            .or_insert_with(|| Profile::new(program));
        profile.touched = tick;
        self.counters.peak_profiles = self.counters.peak_profiles.max(self.profiles.len());
        #[expect(clippy::expect_used, reason = "the profile was inserted just above")]
        self.profiles.get_mut(id).expect("profile present")
    }

    /// Brings an evicted profile back from the loader, if there is one.
    fn ensure_loaded(&mut self, id: &str) {
        if self.profiles.contains_key(id) {
            return;
        }
        if let Some(profile) = self.loader.as_mut().and_then(|l| l.load(id)) {
            self.profiles.insert(id.to_string(), profile);
        }
    }

    /// Evaluates conditions with native code compiled for this engine's program.
    pub fn use_jit(&mut self, jit: std::rc::Rc<crate::jit::Jit>) {
        self.jit = Some(jit);
    }

    /// Attaches the source of profiles evicted from memory (the durable store).
    pub fn set_loader(&mut self, loader: Box<dyn ProfileLoader>) {
        self.loader = Some(loader);
    }

    /// Drops least recently used profiles from memory until at most `max` remain.
    /// Only profiles saved since their last change (not dirty) are dropped, so
    /// call it right after a commit; they come back through the loader.
    pub fn evict(&mut self, max: usize) {
        if self.profiles.len() <= max {
            return;
        }
        let mut candidates: Vec<(u64, String)> = self
            .profiles
            .iter()
            .filter(|(id, _)| !self.dirty.contains(*id))
            .map(|(id, p)| (p.touched, id.clone()))
            .collect();
        candidates.sort_unstable();
        let excess = self.profiles.len() - max;
        for (_, id) in candidates.into_iter().take(excess) {
            self.profiles.remove(&id);
        }
    }

    fn fire_timers(&mut self, until: i64, out: &mut Vec<Decision>) {
        while let Some(first) = self.timers.first() {
            if first.0 > until {
                break;
            }
            let Some((at, profile_id, journey)) = self.timers.pop_first() else {
                break;
            };
            if self.track_changes {
                self.dirty.insert(profile_id.clone());
            }
            self.ensure_loaded(&profile_id);
            let Some(profile) = self.profiles.get_mut(&profile_id) else {
                continue;
            };
            let Some(instance) = profile
                .journeys
                .get_mut(journey)
                .and_then(|j| j.active.as_mut())
            else {
                continue;
            };
            instance.timer = None;
            self.run(&profile_id, journey, at, out);
        }
    }

    fn track(
        &mut self,
        profile_id: &str,
        timestamp: i64,
        now: i64,
        kind: usize,
        props: &[Value],
        out: &mut Vec<Decision>,
    ) {
        let jit = self.jit.clone();
        let program = Arc::clone(&self.program);
        self.profile_mut(profile_id);
        let div0 = &self.divisions_by_zero;
        let Some(profile) = self.profiles.get_mut(profile_id) else {
            return;
        };
        let tz = profile_tz(&program, profile);
        // 4. Aggregates, at the event's own time.
        for (i, agg) in program.aggregates.iter().enumerate() {
            if let Some(state) = profile.aggregates.get_mut(i) {
                state.prune(now, agg.window);
            }
            if agg.event != kind {
                continue;
            }
            let matches = match &agg.filter {
                None => true,
                Some(f) => {
                    let env = Env {
                        program: &program,
                        attrs: &[],
                        event: props,
                        trigger: &[],
                        now,
                        tz,
                        aggregates: &NoAggregates,
                        divisions_by_zero: div0,
                    };
                    holds(jit.as_deref(), f, &env)
                }
            };
            if !matches {
                continue;
            }
            let value = match agg.kind {
                crate::ir::AggregateKind::Sum(slot) => match props.get(slot) {
                    Some(Value::Number(n)) => *n,
                    _ => continue,
                },
                _ => 1.0,
            };
            if let Some(state) = profile.aggregates.get_mut(i) {
                state.record(timestamp, value);
            }
        }
        // 5. Exits, in priority order.
        let event_name = program.events.get(kind).map_or("", |e| e.name.as_str());
        let exiting: Vec<usize> = {
            let Some(profile) = self.profiles.get(profile_id) else {
                return;
            };
            let env = event_env(&program, profile, props, now, tz, &self.divisions_by_zero);
            program
                .journeys
                .iter()
                .enumerate()
                .filter(|(j, journey)| {
                    profile.journeys.get(*j).is_some_and(|s| s.active.is_some())
                        && journey.exits.iter().any(|(ev, cond)| {
                            *ev == kind
                                && cond.as_ref().is_none_or(|c| holds(jit.as_deref(), c, &env))
                        })
                })
                .map(|(j, _)| j)
                .collect()
        };
        for j in exiting {
            self.end_instance(profile_id, j);
            let exited = DecisionKind::Exited {
                event: event_name.to_string(),
            };
            out.push(self.decision(now, profile_id, j, exited));
        }
        // 6. Triggers, in priority order. Running a journey's steps changes only
        // its own instance and the send history, which no trigger condition or
        // eligibility rule reads, so all of them are decided first.
        let entering: Vec<usize> = {
            let Some(profile) = self.profiles.get(profile_id) else {
                return;
            };
            let env = event_env(&program, profile, props, now, tz, &self.divisions_by_zero);
            program
                .journeys
                .iter()
                .enumerate()
                .filter(|(j, journey)| {
                    journey.trigger == kind
                        && profile.journeys.get(*j).is_some_and(|state| {
                            state.active.is_none()
                                && match journey.reenter {
                                    Reenter::AfterEnd => true,
                                    Reenter::Never => state.entries == 0,
                                    Reenter::After(d) => state
                                        .last_entry
                                        .is_none_or(|last| now.saturating_sub(last) >= d),
                                }
                        })
                        && journey
                            .condition
                            .as_ref()
                            .is_none_or(|c| holds(jit.as_deref(), c, &env))
                })
                .map(|(j, _)| j)
                .collect()
        };
        for j in entering {
            if let Some(state) = self
                .profiles
                .get_mut(profile_id)
                .and_then(|p| p.journeys.get_mut(j))
            {
                state.entries += 1;
                state.last_entry = Some(now);
                state.active = Some(Instance {
                    number: state.entries,
                    trigger: props.to_vec(),
                    pc: 0,
                    timer: None,
                });
            }
            out.push(self.decision(now, profile_id, j, DecisionKind::Entered));
            self.run(profile_id, j, now, out);
        }
    }

    /// Ends an active instance and cancels its timer.
    fn end_instance(&mut self, profile_id: &str, journey: usize) {
        let instance = self
            .profiles
            .get_mut(profile_id)
            .and_then(|p| p.journeys.get_mut(journey))
            .and_then(|state| state.active.take());
        if let Some(at) = instance.and_then(|i| i.timer) {
            self.timers.remove(&(at, profile_id.to_string(), journey));
        }
    }

    fn decision(&mut self, at: i64, profile: &str, journey: usize, kind: DecisionKind) -> Decision {
        *self.counters.decisions.entry(kind.name()).or_default() += 1;
        Decision {
            at,
            profile: profile.to_string(),
            journey: self
                .program
                .journeys
                .get(journey)
                .map_or(String::new(), |j| j.name.clone()),
            kind,
        }
    }

    fn schedule(&mut self, profile_id: &str, journey: usize, at: i64) {
        if let Some(instance) = self
            .profiles
            .get_mut(profile_id)
            .and_then(|p| p.journeys.get_mut(journey))
            .and_then(|s| s.active.as_mut())
        {
            instance.timer = Some(at);
            self.timers.insert((at, profile_id.to_string(), journey));
        }
    }

    fn set_pc(&mut self, profile_id: &str, journey: usize, pc: usize) {
        if let Some(instance) = self
            .profiles
            .get_mut(profile_id)
            .and_then(|p| p.journeys.get_mut(journey))
            .and_then(|s| s.active.as_mut())
        {
            instance.pc = pc;
        }
    }

    fn complete(&mut self, profile_id: &str, journey: usize, now: i64, out: &mut Vec<Decision>) {
        self.end_instance(profile_id, journey);
        out.push(self.decision(now, profile_id, journey, DecisionKind::Completed));
    }

    /// Runs an instance's steps from its current instruction until it waits, is
    /// deferred or ends. Jumps only go forward, so this terminates.
    fn run(&mut self, profile_id: &str, j: usize, now: i64, out: &mut Vec<Decision>) {
        let jit = self.jit.clone();
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return;
        };
        loop {
            let Some(profile) = self.profiles.get(profile_id) else {
                return;
            };
            let Some(instance) = profile.journeys.get(j).and_then(|s| s.active.as_ref()) else {
                return;
            };
            let pc = instance.pc;
            let tz = profile_tz(&program, profile);
            let Some(instr) = journey.code.get(pc) else {
                self.complete(profile_id, j, now, out);
                return;
            };
            match instr {
                Instr::Wait(d) => {
                    self.set_pc(profile_id, j, pc + 1);
                    self.schedule(profile_id, j, now.saturating_add(*d));
                    return;
                }
                Instr::WaitUntil(minutes) => {
                    self.set_pc(profile_id, j, pc + 1);
                    self.schedule(profile_id, j, time::next_local_time(tz, now, *minutes));
                    return;
                }
                Instr::JumpUnless(cond, target) => {
                    let env = Env {
                        program: &program,
                        attrs: &profile.attrs,
                        event: &[],
                        trigger: &instance.trigger,
                        now,
                        tz,
                        aggregates: profile,
                        divisions_by_zero: &self.divisions_by_zero,
                    };
                    let next = if holds(jit.as_deref(), cond, &env) {
                        pc + 1
                    } else {
                        *target
                    };
                    self.set_pc(profile_id, j, next);
                }
                Instr::Jump(target) => self.set_pc(profile_id, j, *target),
                Instr::Stop => {
                    self.complete(profile_id, j, now, out);
                    return;
                }
                Instr::Split { index, arms } => {
                    let h = split_bucket(&journey.name, *index, profile_id);
                    let mut low = 0u64;
                    let chosen = arms.iter().find(|a| {
                        low += u64::from(a.percent);
                        h < low
                    });
                    match chosen {
                        Some(arm) => match arm.target {
                            Some(target) => self.set_pc(profile_id, j, target),
                            None => {
                                let arm = arm.name.clone();
                                out.push(self.decision(
                                    now,
                                    profile_id,
                                    j,
                                    DecisionKind::Holdout { arm },
                                ));
                                self.complete(profile_id, j, now, out);
                                return;
                            }
                        },
                        // Percentages add up to 100 in a checked program.
                        None => self.set_pc(profile_id, j, pc + 1),
                    }
                }
                Instr::Send { template, channels } => {
                    let number = instance.number;
                    let outcome = choose::choose(
                        &program,
                        journey,
                        profile,
                        &instance.trigger,
                        *template,
                        channels,
                        now,
                        tz,
                        &self.divisions_by_zero,
                    );
                    let template_name = program
                        .templates
                        .get(*template)
                        .map_or(String::new(), |t| t.name.clone());
                    match outcome {
                        choose::Choice::Send { channel, content } => {
                            let message_id = message_id(profile_id, &journey.name, number, pc);
                            let retention = self.send_retention;
                            if let Some(p) = self.profiles.get_mut(profile_id) {
                                let horizon = now.saturating_sub(retention);
                                while p.sends.front().is_some_and(|(t, _)| *t <= horizon) {
                                    p.sends.pop_front();
                                }
                                p.sends.push_back((now, channel));
                            }
                            let channel = program
                                .channels
                                .get(channel)
                                .map_or(String::new(), |c| c.name.clone());
                            out.push(self.decision(
                                now,
                                profile_id,
                                j,
                                DecisionKind::Send {
                                    template: template_name,
                                    channel,
                                    message_id,
                                    content,
                                },
                            ));
                            self.set_pc(profile_id, j, pc + 1);
                        }
                        choose::Choice::Suppressed(reasons) => {
                            out.push(self.decision(
                                now,
                                profile_id,
                                j,
                                DecisionKind::Suppressed {
                                    template: template_name,
                                    reasons,
                                },
                            ));
                            self.set_pc(profile_id, j, pc + 1);
                        }
                        choose::Choice::Defer(until) => {
                            out.push(self.decision(
                                now,
                                profile_id,
                                j,
                                DecisionKind::Deferred {
                                    template: template_name,
                                    until,
                                },
                            ));
                            // The same step runs again, from scratch, at `until`.
                            self.schedule(profile_id, j, until);
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// What an exit or trigger condition reads: the profile and the incoming event.
fn event_env<'a>(
    program: &'a Program,
    profile: &'a Profile,
    props: &'a [Value],
    now: i64,
    tz: Tz,
    divisions_by_zero: &'a Cell<u64>,
) -> Env<'a> {
    Env {
        program,
        attrs: &profile.attrs,
        event: props,
        trigger: &[],
        now,
        tz,
        aggregates: profile,
        divisions_by_zero,
    }
}

/// Evaluates a condition with the JIT when there is one, else the interpreter.
fn holds(jit: Option<&crate::jit::Jit>, e: &crate::ir::Expr, env: &Env<'_>) -> bool {
    match jit {
        Some(jit) => jit.holds(e, env),
        None => interp::holds(e, env),
    }
}

/// Aggregates are not readable in aggregate filters (the checker ensures it).
struct NoAggregates;

impl interp::Aggregates for NoAggregates {
    fn value(&self, _: &Program, _: usize, _: i64) -> Value {
        Value::None
    }
}

/// The profile's time zone: its `timezone` attribute, or UTC.
pub fn profile_tz(_program: &Program, profile: &Profile) -> Tz {
    profile.tz
}

/// FNV-1a, 64 bits (LANGUAGE.md §7.5).
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The experiment bucket 0–99 of a profile in a journey's split.
pub fn split_bucket(journey: &str, split_index: u32, profile: &str) -> u64 {
    fnv1a_64(format!("{journey}/{split_index}/{profile}").as_bytes()) % 100
}

/// FNV-1a, 128 bits.
pub fn fnv1a_128(text: &str) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in text.as_bytes() {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// A deterministic id for a send: FNV-1a 128 over profile, journey, instance and
/// step, so a replay produces the same ids and a sender can deduplicate. FNV
/// alone changes few bits for similar keys; a final mix (murmur3's) spreads them.
pub fn message_id(profile: &str, journey: &str, instance: u32, step: usize) -> String {
    let h = fnv1a_128(&format!(
        "{profile}\u{1f}{journey}\u{1f}{instance}\u{1f}{step}"
    ));
    let (hi, lo) = ((h >> 64) as u64, h as u64);
    let lo = fmix64(lo ^ hi.rotate_left(29));
    let hi = fmix64(hi ^ lo);
    format!("{hi:016x}{lo:016x}")
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    /// Without a store, nothing drains the change log, so nothing is recorded:
    /// memory follows the profiles, not the length of the input.
    #[test]
    fn changes_are_recorded_only_for_a_store() {
        let mut sources = crate::Sources::new();
        sources.add("t.nudge", "event e { x: number }\n");
        let analysis = crate::analyze(&sources);
        let program = Arc::new(crate::ir::lower(&analysis.modules).unwrap());
        let event = |i: i64| Incoming {
            profile: format!("p{}", i % 3).into(),
            timestamp: i * time::SECOND,
            message_id: Some(format!("m{i}").into()),
            body: Body::Track {
                event: 0,
                props: vec![Value::Number(1.0)],
            },
        };
        let mut out = Vec::new();
        let mut plain = Engine::new(Arc::clone(&program));
        for i in 0..100 {
            plain.process(event(i), &mut out);
        }
        assert!(plain.dirty.is_empty() && plain.seen_added.is_empty());
        let mut tracked = Engine::new(program);
        tracked.track_changes();
        for i in 0..100 {
            tracked.process(event(i), &mut out);
        }
        let changes = tracked.take_changes();
        assert_eq!((changes.profiles.len(), changes.seen_added.len()), (3, 100));
    }

    #[test]
    fn message_ids_differ_by_step_and_instance() {
        let a = message_id("u1", "j", 1, 2);
        assert_eq!(a.len(), 32);
        assert_ne!(a, message_id("u1", "j", 1, 3));
        assert_ne!(a, message_id("u1", "j", 2, 2));
        assert_eq!(a, message_id("u1", "j", 1, 2));
    }
}
