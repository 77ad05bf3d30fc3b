//! The runtime: policies against a stream of events, in event time (LANGUAGE.md §7).
//!
//! [`Engine`] holds the state (profiles, aggregates, instances, timers, the clock,
//! seen message ids) and turns each [`Incoming`] event into [`Decision`]s, in the
//! order of §7.3. It does no IO: `io` parses lines into `Incoming` and writes
//! decisions. Promises: the decisions are a pure function of the events in order
//! (no wall clock, no randomness, no hash-map iteration order leaks into output);
//! memory grows with the profiles held, not with the input's length (windows and
//! send histories are pruned to what the longest window needs).
//!
//! This file is §7.3's `process` — dedupe, timers, traits and consents,
//! aggregates, goals, exits and waits, triggers, in that order — and the
//! engine's state. Each concern has its file: `dedupe.rs` (step 1),
//! `timers.rs` (step 2, draining), `steps.rs` (an instance's steps),
//! `choose.rs` (a send's channel, §7.4), `explain.rs` (`--explain`),
//! `native.rs` (the JIT's dispatch), `schedule.rs` (scheduled triggers),
//! `memory.rs` (loading and eviction), `changes.rs` (what a store commits),
//! `state.rs` (a profile), `upgrade.rs` (a profile across versions, §7.7).

mod changes;
mod choose;
pub mod decision;
mod dedupe;
mod explain;
mod id;
mod memory;
mod native;
mod schedule;
pub mod state;
mod steps;
pub mod time;
mod timers;
pub mod upgrade;

pub use crate::stdx::hash::{fnv1a_64, fnv1a_128, message_id, split_bucket};
pub use changes::Changes;
pub use decision::{Decision, DecisionKind, Reason};
pub use memory::ProfileLoader;
use steps::instance_mut;
use timers::slot;
pub use timers::slot_journey;

use crate::interp::{self, Env};
use crate::ir::{CapWindow, Instr, Program, Reenter, ShapeRef, Trigger, Value};
use chrono_tz::Tz;
use id::IdRef;
pub use id::ProfileId;
use native::{Native, Site, holds};
use rustc_hash::{FxHashMap, FxHashSet};
use state::Instance;
pub use state::Profile;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
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
    /// (1.1) `context.consent.categoryPreferences`, when the call had any
    /// (boxed: most calls have none, and events are moved by value).
    pub context: Option<Box<ContextConsent<'a>>>,
    /// For an ignored call: the undeclared event's name, or `(page)` and the
    /// like (for `--stats`).
    pub ignored_name: Option<Cow<'a, str>>,
}

impl<'a> Incoming<'a> {
    /// An event with no consent context.
    pub fn new(
        profile: impl Into<Cow<'a, str>>,
        timestamp: i64,
        message_id: Option<Cow<'a, str>>,
        body: Body,
    ) -> Incoming<'a> {
        Incoming {
            profile: profile.into(),
            timestamp,
            message_id,
            body,
            context: None,
            ignored_name: None,
        }
    }
}

/// What a call's `context.consent.categoryPreferences` said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextConsent<'a> {
    /// Declared topics granted or revoked, applied on any call.
    pub consents: Vec<(usize, bool)>,
    /// Categories that name no topic (for `--stats`).
    pub unknown_categories: Vec<Cow<'a, str>>,
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
    /// (1.1) `{"type":"tick"}`: a time and nothing else; it only moves the clock.
    Tick,
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
    /// (1.1) Ignored calls by event name (`(page)` for other calls).
    pub ignored_by_name: BTreeMap<String, u64>,
    /// (1.1) `context.consent` categories that name no topic, by name.
    pub unknown_consent_categories: BTreeMap<String, u64>,
    pub late: u64,
    pub divisions_by_zero: u64,
    pub decisions: BTreeMap<&'static str, u64>,
    pub peak_profiles: usize,
    /// The most pending timers held in memory at once (with a store that
    /// pages them, see [`Engine::evict`]; else every pending timer).
    pub peak_timers: usize,
    /// (1.1) Instances that reached their journey's first split, by journey
    /// and arm: the entries of each arm of an experiment (`nudge simulate`).
    pub arm_entries: BTreeMap<(String, String), u64>,
    /// (1.1) Suppressed sends by the cap (as written) that stopped one of
    /// their channels; a send stopped by two caps counts for each.
    pub cap_suppressions: BTreeMap<String, u64>,
}

/// Profiles by id. The profile's own `id` is shared with timers and decisions
/// without copying.
type Profiles = hashbrown::HashMap<ProfileId, Profile, rustc_hash::FxBuildHasher>;

pub struct Engine {
    profiles: Profiles,
    /// Everything else: split from the profiles so that one profile, found once
    /// per event, can be borrowed while timers, counters and the rest change.
    core: Core,
}

struct Core {
    program: Arc<Program>,
    names: Names,
    /// Pending timers, ordered as §7.3 fires them: time, profile, then journey
    /// index (journeys are stored by priority descending, then name); the
    /// third member is a [`slot`]: a journey's instance timer, then its
    /// trigger timer.
    timers: BTreeSet<(i64, ProfileId, usize)>,
    /// With a store that pages timers (see [`Engine::evict`]): every pending
    /// timer due at or before this instant is in `timers`; later ones may be
    /// in the store only. `None`: every pending timer is in memory.
    timers_until: Option<i64>,
    /// Pending timers held by the store only (paged out).
    timers_paged: usize,
    /// How many timers are kept, and timers or schedule members read back
    /// at a time, when paging.
    page_size: usize,
    clock: Option<i64>,
    /// 128-bit digests of the message ids seen, and when (by the clock). Digests
    /// keep memory flat whatever the ids' length; two ids collide with
    /// probability 2^-128. An entry a window old or more counts as not seen;
    /// such entries are swept out every eighth of a window, in one pass over
    /// the table (removing each as it expired would cost a random access apiece).
    seen: FxHashMap<u128, i64>,
    /// The ids seen before the last commit are in the store only (see
    /// `dedupe.rs`).
    seen_paged: bool,
    /// The last id looked up in the store, and when it was seen.
    seen_asked: Option<(u128, Option<i64>)>,
    /// When (by the clock) the next sweep of `seen` is due.
    next_sweep: i64,
    /// How long sends must be remembered for the caps (nanoseconds).
    send_retention: i64,
    divisions_by_zero: Cell<u64>,
    counters: Counters,
    /// Decisions by kind, in [`DecisionKind::index`] order.
    decisions: [u64; DecisionKind::COUNT],
    /// Whether changes are recorded for a durable store (see `take_changes`);
    /// without a store nothing would drain them, and they would grow with the input.
    track_changes: bool,
    /// What changed since the last [`Engine::take_changes`], for a durable store.
    dirty: FxHashSet<ProfileId>,
    /// The (profile, timer slot) pairs whose pending timer changed since then.
    timers_changed: FxHashSet<(ProfileId, usize)>,
    /// Where evicted profiles come back from.
    loader: Option<Box<dyn ProfileLoader>>,
    /// Native code for the program's conditions (`--engine jit`).
    jit: Option<Rc<Native>>,
    /// (1.1) Whether a journey starts on inactivity (`when no`) or on a
    /// schedule: then every valid line of a profile counts, ignored ones
    /// included.
    has_inactivity: bool,
    /// (1.1) Scheduled journeys and the profiles they run for, by zone.
    schedules: schedule::Schedules,
    /// While draining: the clock at end of input, the last instant recurring
    /// schedules fire at (§7.2).
    drain_until: Option<i64>,
    /// A counter of profile uses, for least-recently-used eviction.
    tick: u64,
    /// (1.1) Instances that reached their first split, by journey and arm.
    arm_entries: FxHashMap<(usize, Rc<str>), u64>,
    /// (1.1) Suppressed sends by (journey, the cap that stopped a channel:
    /// its index among the `limits` caps, then the journey's own).
    cap_suppressions: FxHashMap<(usize, usize), u64>,
    /// With a store that bounds memory: (profiles held, firings) past which a
    /// firing pauses, so that the caller can commit and evict (see
    /// [`Engine::hold_at_most`]).
    hold: Option<(usize, usize)>,
    /// An instant whose timers and occurrences were being fired when it paused.
    firing: Option<Firing>,
    seen_added: Vec<(i64, u128)>,
    /// Per event kind, what it can touch.
    plans: Rc<[EventPlan]>,
    /// `--explain`: say why for every channel, record `not_entered`.
    explain: bool,
}

/// An instant being fired: its time and its schedules' streams (the timers
/// still due at it are in the timer set).
struct Firing {
    at: i64,
    streams: Vec<schedule::Stream>,
}

/// A paused firing as a store keeps it: the instant, and per scheduled journey
/// and zone due at it, the last member fired (see [`Engine::hold_at_most`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paused {
    pub at: i64,
    pub streams: Vec<(usize, String, Option<String>)>,
}

/// What an event of one kind can touch, so that processing it looks at nothing
/// else (journeys in arbitration order).
#[derive(Default)]
struct EventPlan {
    /// Aggregates over this event.
    aggregates: Vec<usize>,
    /// Journeys with an `exit on` this event or (1.1) a `wait up to … for` it:
    /// their instances may end or resume (§7.3 step 6).
    instances: Vec<usize>,
    /// Journeys this event triggers.
    triggers: Vec<usize>,
    /// (1.1) `previous` aggregates over this event: recorded once the
    /// event's journeys have run.
    previous: Vec<usize>,
    /// (1.1) Inactivity journeys (`when no`) whose timer this event moves.
    moves: Vec<usize>,
    /// (1.1) Journeys with a `goal` on this event.
    goals: Vec<usize>,
}

fn plans(program: &Program) -> Rc<[EventPlan]> {
    let mut plans: Vec<EventPlan> = program
        .events
        .iter()
        .map(|_| EventPlan::default())
        .collect();
    for (i, agg) in program.aggregates.iter().enumerate() {
        if let Some(plan) = plans.get_mut(agg.event) {
            if agg.previous {
                plan.previous.push(i);
            } else {
                plan.aggregates.push(i);
            }
        }
    }
    for (j, journey) in program.journeys.iter().enumerate() {
        let waits = journey.code.iter().filter_map(|i| match i {
            Instr::WaitFor { event, .. } => Some(event),
            _ => None,
        });
        for event in journey.exits.iter().map(|(e, _)| e).chain(waits) {
            if let Some(plan) = plans
                .get_mut(*event)
                .filter(|p| p.instances.last() != Some(&j))
            {
                plan.instances.push(j);
            }
        }
        match &journey.trigger {
            Trigger::Events(events) => {
                for &e in events {
                    if let Some(plan) = plans.get_mut(e).filter(|p| p.triggers.last() != Some(&j)) {
                        plan.triggers.push(j);
                    }
                }
            }
            Trigger::Inactivity { events, .. } => {
                for &e in events {
                    if let Some(plan) = plans.get_mut(e).filter(|p| p.moves.last() != Some(&j)) {
                        plan.moves.push(j);
                    }
                }
            }
            Trigger::Schedule { .. } => {}
        }
        for goal in &journey.goals {
            if let Some(plan) = plans
                .get_mut(goal.event)
                .filter(|p| p.goals.last() != Some(&j))
            {
                plan.goals.push(j);
            }
        }
    }
    plans.into()
}

/// The program's names as shared strings, so that decisions name journeys,
/// templates, channels and fields without copying them.
struct Names {
    journeys: Vec<Rc<str>>,
    templates: Vec<Rc<str>>,
    channels: Vec<Rc<str>>,
    events: Vec<Rc<str>>,
    /// Per template, per block, per field.
    fields: Vec<Vec<Vec<Rc<str>>>>,
}

impl Names {
    fn new(program: &Program) -> Names {
        let names = |items: &mut dyn Iterator<Item = &String>| -> Vec<Rc<str>> {
            items.map(|n| Rc::from(n.as_str())).collect()
        };
        Names {
            journeys: names(&mut program.journeys.iter().map(|j| &j.name)),
            templates: names(&mut program.templates.iter().map(|t| &t.name)),
            channels: names(&mut program.channels.iter().map(|c| &c.name)),
            events: names(&mut program.events.iter().map(|e| &e.name)),
            fields: program
                .templates
                .iter()
                .map(|t| {
                    t.blocks
                        .iter()
                        .map(|b| names(&mut b.fields.iter().map(|f| &f.name)))
                        .collect()
                })
                .collect(),
        }
    }
}

fn name(names: &[Rc<str>], i: usize) -> Rc<str> {
    names.get(i).cloned().unwrap_or_else(|| Rc::from(""))
}

impl Engine {
    pub fn new(program: Arc<Program>) -> Engine {
        let send_retention = program
            .caps
            .iter()
            .chain(program.journeys.iter().flat_map(|j| &j.caps))
            .map(|c| match c.window {
                CapWindow::Rolling(d) => d,
                // A calendar week, plus a day for DST and zone changes.
                CapWindow::Day | CapWindow::Week => 8 * time::DAY,
            })
            .max()
            .unwrap_or(0);
        let plans = plans(&program);
        let schedules = schedule::Schedules::new(&program);
        let has_inactivity = program.journeys.iter().any(|j| {
            matches!(
                j.trigger,
                Trigger::Inactivity { .. } | Trigger::Schedule { .. }
            )
        });
        Engine {
            profiles: Profiles::default(),
            core: Core {
                names: Names::new(&program),
                program,
                timers: BTreeSet::new(),
                timers_until: None,
                timers_paged: 0,
                page_size: 0,
                clock: None,
                seen: FxHashMap::default(),
                seen_paged: false,
                seen_asked: None,
                next_sweep: i64::MIN,
                send_retention,
                divisions_by_zero: Cell::new(0),
                counters: Counters::default(),
                decisions: [0; DecisionKind::COUNT],
                track_changes: false,
                dirty: FxHashSet::default(),
                timers_changed: FxHashSet::default(),
                loader: None,
                jit: None,
                has_inactivity,
                schedules,
                drain_until: None,
                tick: 0,
                arm_entries: FxHashMap::default(),
                cap_suppressions: FxHashMap::default(),
                hold: None,
                firing: None,
                seen_added: Vec::new(),
                plans,
                explain: false,
            },
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
        zones: impl IntoIterator<Item = (String, Tz)>,
        paused: Option<Paused>,
    ) -> Engine {
        let mut engine = Engine::new(program);
        let core = &mut engine.core;
        core.track_changes = true;
        core.schedules.track_changes();
        core.schedules.restore(
            zones.into_iter().map(|(id, tz)| (ProfileId::new(&id), tz)),
            clock.unwrap_or(i64::MIN),
        );
        core.clock = clock;
        core.timers.extend(
            timers
                .into_iter()
                .map(|(at, id, j)| (at, ProfileId::new(&id), j)),
        );
        core.counters.peak_timers = core.timers.len();
        for (t, d) in seen {
            let at = core.seen.entry(d).or_insert(t);
            *at = (*at).max(t);
        }
        // The clock of a paused firing is its instant: the occurrences due at
        // it were taken (the restored zones' next ones are after it), and the
        // streams go on after the members already fired.
        core.firing = paused.map(|p| Firing {
            at: p.at,
            streams: p
                .streams
                .iter()
                .filter_map(|s| core.schedules.load(s))
                .collect(),
        });
        engine
    }

    /// `--explain`: every send, deferral and suppression says why for each
    /// channel, and a trigger that matched a profile that could not enter
    /// records `not_entered`. Nothing else changes.
    pub fn set_explain(&mut self, explain: bool) {
        self.core.explain = explain;
    }

    pub fn program(&self) -> &Program {
        &self.core.program
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.core.counters.clone();
        c.divisions_by_zero = self.core.divisions_by_zero.get();
        let journeys = &self.core.program.journeys;
        c.arm_entries = self
            .core
            .arm_entries
            .iter()
            .filter_map(|((j, arm), n)| {
                Some(((journeys.get(*j)?.name.clone(), arm.to_string()), *n))
            })
            .collect();
        let program = &self.core.program;
        for ((j, index), n) in &self.core.cap_suppressions {
            let Some(journey) = journeys.get(*j) else {
                continue;
            };
            let Some(cap) = program.caps.iter().chain(&journey.caps).nth(*index) else {
                continue;
            };
            let mut written = explain::written(program, cap);
            if *index >= program.caps.len() {
                // A journey's own cap: said whose.
                written = format!("{written} (journey {})", journey.name);
            }
            *c.cap_suppressions.entry(written).or_insert(0) += n;
        }
        c.decisions = DecisionKind::NAMES
            .iter()
            .zip(self.core.decisions)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        c
    }

    /// The time zone of a profile held in memory (`nudge why`).
    pub fn profile_zone(&self, id: &str) -> Option<Tz> {
        self.profiles.get(&IdRef(id)).map(|p| p.tz)
    }

    /// Processes one event (§7.3), appending its decisions to `out`.
    pub fn process(&mut self, event: Incoming<'_>, out: &mut Vec<Decision>) -> Outcome {
        // The clock is the largest timestamp seen; a late event runs at the clock.
        let late = self.core.clock.is_some_and(|c| c > event.timestamp);
        let now = self.core.clock.filter(|_| late).unwrap_or(event.timestamp);
        // 1. A repeated messageId has no effect at all. (A new one is remembered
        // now, in the same probe of the table; nothing reads it before the next
        // event.)
        if let Some(digest) = event.message_id.as_deref().map(fnv1a_128)
            && !self.core.remember(now, digest)
        {
            self.core.counters.duplicates += 1;
            return Outcome::Duplicate;
        }
        if late {
            self.core.counters.late += 1;
        }
        // 2. Timers due at or before now.
        self.fire_timers(now, now, false, out);
        let core = &mut self.core;
        core.clock = Some(now);
        let create = Some((event.timestamp, now));
        // Ids older than the window are forgotten, so that memory does not grow
        // with the length of the stream.
        core.forget_seen(now);
        if let Some(context) = event.context {
            for name in context.unknown_categories {
                *core
                    .counters
                    .unknown_consent_categories
                    .entry(name.into_owned())
                    .or_insert(0) += 1;
            }
            // 3. Consent from the call's context, on every call: a revocation
            // is never lost, whatever the call (traits' own `consent` comes after).
            if !context.consents.is_empty()
                && let Some(profile) = core.profile(&mut self.profiles, &event.profile, create)
            {
                apply_consents(profile, &context.consents, event.timestamp);
            }
        }
        match event.body {
            Body::Tick => Outcome::Processed,
            Body::Ignored => {
                // (1.1) Any valid line of a profile starts its quiet periods.
                if core.has_inactivity {
                    core.profile(&mut self.profiles, &event.profile, create);
                }
                core.counters.ignored += 1;
                let name = event.ignored_name.as_deref().unwrap_or("(unnamed)");
                match core.counters.ignored_by_name.get_mut(name) {
                    Some(n) => *n += 1,
                    None => {
                        core.counters.ignored_by_name.insert(name.to_owned(), 1);
                    }
                }
                Outcome::Ignored
            }
            Body::Identify { attrs, consents } => {
                // 3. Traits and consent.
                let Some(profile) = core.profile(&mut self.profiles, &event.profile, create) else {
                    return Outcome::Processed;
                };
                for (slot, value) in attrs {
                    if let Some(a) = profile.attrs.get_mut(slot) {
                        *a = value;
                    }
                }
                let zone = state::zone_of(&core.program, &profile.attrs);
                if zone != profile.tz {
                    core.schedules.leave(&profile.id, profile.tz);
                    core.schedules.join(&profile.id, zone, now);
                }
                profile.tz = zone;
                apply_consents(profile, &consents, event.timestamp);
                Outcome::Processed
            }
            Body::Track { event: kind, props } => {
                if let Some(profile) = core.profile(&mut self.profiles, &event.profile, create) {
                    core.track(profile, event.timestamp, now, kind, &props, out);
                }
                Outcome::Processed
            }
        }
    }

    /// The clock: the largest time seen so far (§7.2), `None` before any.
    pub fn clock(&self) -> Option<i64> {
        self.core.clock
    }

    /// Evaluates conditions with native code compiled for this engine's program.
    #[cfg(feature = "jit")]
    pub fn use_jit(&mut self, jit: Rc<crate::jit::Jit>) {
        self.core.jit = Some(Rc::new(Native::new(jit, &self.core.program)));
    }
}

impl Core {
    fn track(
        &mut self,
        profile: &mut Profile,
        timestamp: i64,
        now: i64,
        kind: usize,
        props: &[Value],
        out: &mut Vec<Decision>,
    ) {
        let program = Arc::clone(&self.program);
        let plans = Rc::clone(&self.plans);
        let Some(plan) = plans.get(kind) else {
            return;
        };
        // 4. Aggregates, at the event's own time (`previous` ones after the
        // journeys, below), and (1.1) the inactivity timers this event moves.
        self.record(profile, &plan.aggregates, timestamp, now, props);
        for &j in &plan.moves {
            if let Some(Trigger::Inactivity { after, .. }) =
                program.journeys.get(j).map(|j| &j.trigger)
            {
                let due = timestamp.saturating_add(*after).max(now);
                let current = profile.trigger_timer(j);
                // The quiet period runs from the latest such event.
                if current.is_none_or(|c| c < due) {
                    self.set_trigger_timer(profile, j, due);
                }
            }
        }
        // 5. (1.1) Goals, in priority order.
        for &j in &plan.goals {
            self.convert(profile, j, kind, props, now, out);
        }
        // 6. Exits and (1.1) `wait up to` resumptions, in priority order.
        for &j in &plan.instances {
            self.exit_or_resume(profile, j, kind, props, now, out);
        }
        // 7. Triggers, in priority order, each decided after the journeys
        // before it ran: (1.1) their sends are `sent` events a condition reads.
        for &j in &plan.triggers {
            let Some(journey) = program.journeys.get(j) else {
                continue;
            };
            let snapshot;
            let event: &[Value] = match journey.shape {
                ShapeRef::Event(_) => props,
                ShapeRef::Shape(_) => {
                    snapshot = program.snapshot(journey.shape, kind, props);
                    &snapshot
                }
            };
            self.try_enter(profile, j, now, event, out);
        }
        // 4 (1.1). `previous` aggregates see the event only now.
        self.record(profile, &plan.previous, timestamp, now, props);
    }

    /// Step 6 of §7.3 for journey `j`: an `exit on` clause this event matches
    /// ends the profile's instance; else (1.1) a `wait up to … for` it matches
    /// resumes it in the first block.
    fn exit_or_resume(
        &mut self,
        profile: &mut Profile,
        j: usize,
        kind: usize,
        props: &[Value],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        // Most profiles have no instance of most journeys: nothing to do.
        if profile.journeys.get(j).is_none_or(|s| s.active.is_none()) {
            return;
        }
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return;
        };
        let Some(instance) = profile.journeys.get(j).and_then(|s| s.active.as_deref()) else {
            return;
        };
        let jit = self.jit.clone();
        let env = Env {
            trigger: &instance.trigger,
            ..event_env(
                &program,
                profile,
                props,
                now,
                profile.tz,
                &self.divisions_by_zero,
            )
        };
        let exits = journey.exits.iter().enumerate().any(|(k, (ev, cond))| {
            *ev == kind
                && cond
                    .as_ref()
                    .is_none_or(|c| holds(jit.as_deref(), Site::Exit(j, k), c, &env))
        });
        if exits {
            self.end_instance(profile, j);
            let exited = DecisionKind::Exited {
                event: name(&self.names.events, kind),
            };
            out.push(self.decision(now, profile, j, exited));
            return;
        }
        let pc = instance.pc;
        let resumes = instance.waits_for
            && matches!(journey.code.get(pc), Some(Instr::WaitFor { event, condition, .. })
                if *event == kind
                    && condition.as_ref().is_none_or(|c| holds(jit.as_deref(), Site::Step(j, pc), c, &env)));
        if !resumes {
            return;
        }
        if let Some(at) = instance.timer {
            self.drop_timer(at, &profile.id, slot(j, false));
            self.timer_changed(&profile.id, slot(j, false));
        }
        if let Some(instance) = instance_mut(profile, j) {
            instance.waits_for = false;
            instance.timer = None;
            instance.pc = pc + 1;
        }
        self.run(profile, j, now, out);
    }

    /// Records an event in the aggregates `which` (those whose filter it passes).
    fn record(
        &mut self,
        profile: &mut Profile,
        which: &[usize],
        timestamp: i64,
        now: i64,
        props: &[Value],
    ) {
        if which.is_empty() {
            return;
        }
        let jit = self.jit.clone();
        let program = Arc::clone(&self.program);
        let tz = profile.tz;
        for &i in which {
            let Some(agg) = program.aggregates.get(i) else {
                continue;
            };
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
                        divisions_by_zero: &self.divisions_by_zero,
                    };
                    holds(jit.as_deref(), Site::Filter(i), f, &env)
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
                // Entries are forgotten as an aggregate records, so that it holds
                // at most one window's worth; reading skips those that have left
                // the window since (`Profile::value`).
                state.prune(now, agg.window);
                state.record(timestamp, value);
            }
        }
    }

    /// Starts an instance of journey `j` if its condition holds over `event`
    /// (the trigger's properties, as the journey's shape lays them out) and the
    /// profile is eligible; with `--explain`, records why a matching trigger
    /// could not start one.
    fn try_enter(
        &mut self,
        profile: &mut Profile,
        j: usize,
        now: i64,
        event: &[Value],
        out: &mut Vec<Decision>,
    ) {
        // An ineligible profile is turned away before anything is prepared.
        let (Some(journey), Some(state)) = (self.program.journeys.get(j), profile.journeys.get(j))
        else {
            return;
        };
        // (1.1) An instance in an older version of the journey (§7.7) is an
        // active instance of it.
        let older_active = journey
            .versions
            .older
            .iter()
            .any(|&r| profile.journeys.get(r).is_some_and(|s| s.active.is_some()));
        let refusal = match older_active {
            true => Some(decision::NotEntered::Active),
            false => eligibility(journey.reenter, state, now),
        };
        if refusal.is_some() && !self.explain {
            return;
        }
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return;
        };
        // Evaluated only to explain: a throwaway counter, so that `--explain`
        // changes no figure of a run.
        let scratch = Cell::new(0);
        let counter = match refusal {
            Some(_) => &scratch,
            None => &self.divisions_by_zero,
        };
        let env = event_env(&program, profile, event, now, profile.tz, counter);
        let matches = journey
            .condition
            .as_ref()
            .is_none_or(|c| holds(self.jit.as_deref(), Site::Trigger(j), c, &env));
        if !matches {
            return;
        }
        if let Some(why) = refusal {
            let kind = DecisionKind::NotEntered { reason: why };
            out.push(self.decision(now, profile, j, kind));
            return;
        }
        let Some(state) = profile.journeys.get_mut(j) else {
            return;
        };
        state.entries += 1;
        state.last_entry = Some(now);
        let number = state.entries;
        state.active = Some(Box::new(Instance {
            number,
            trigger: event.to_vec(),
            pc: 0,
            timer: None,
            arm: None,
            waits_for: false,
        }));
        if let Some(longest) = journey.goals.iter().map(|g| g.within).max() {
            // (1.1) The instance's goal window opens with its entry; closed
            // ones are forgotten here and when goals are tested.
            let goals = profile.goals_mut();
            goals.retain(|w| !(w.journey as usize == j && now.saturating_sub(w.entered) > longest));
            goals.push(state::GoalWindow {
                journey: j as u32,
                number,
                entered: now,
                arm: None,
            });
        }
        out.push(self.decision(now, profile, j, DecisionKind::Entered));
        self.run(profile, j, now, out);
    }

    /// (1.1) Step 5 of §7.3: an event of kind `kind` converts each open goal
    /// window of journey `j` it matches, oldest entry first, once each.
    fn convert(
        &mut self,
        profile: &mut Profile,
        j: usize,
        kind: usize,
        props: &[Value],
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return;
        };
        let longest = journey.goals.iter().map(|g| g.within).max().unwrap_or(0);
        if let Some(w) = profile.watches.as_mut() {
            w.goals
                .retain(|w| !(w.journey as usize == j && now.saturating_sub(w.entered) > longest));
        }
        let mut k = 0;
        while let Some(window) = profile.goals().get(k) {
            if window.journey as usize != j {
                k += 1;
                continue;
            }
            let entered = window.entered;
            let matched = journey.goals.iter().enumerate().any(|(g, goal)| {
                goal.event == kind
                    && now.saturating_sub(entered) <= goal.within
                    && goal.condition.as_ref().is_none_or(|c| {
                        let env = event_env(
                            &program,
                            profile,
                            props,
                            now,
                            profile.tz,
                            &self.divisions_by_zero,
                        );
                        holds(self.jit.as_deref(), Site::Goal(j, g), c, &env)
                    })
            });
            if !matched {
                k += 1;
                continue;
            }
            let window = profile.goals_mut().remove(k);
            let converted = DecisionKind::Converted {
                event: name(&self.names.events, kind),
                entered_at: window.entered,
                arm: window.arm.as_deref().map(Rc::from),
            };
            out.push(self.decision(now, profile, j, converted));
        }
    }

    fn decision(
        &mut self,
        at: i64,
        profile: &Profile,
        journey: usize,
        kind: DecisionKind,
    ) -> Decision {
        self.decisions[kind.index()] += 1;
        Decision {
            at,
            profile: profile.id.clone(),
            journey: name(&self.names.journeys, journey),
            kind,
        }
    }
}

impl Core {
    /// (1.1) Records a send as the built-in `sent` event, in the aggregates
    /// that read it.
    fn record_sent(
        &mut self,
        profile: &mut Profile,
        journey: &crate::ir::Journey,
        template: usize,
        channel: usize,
        now: i64,
    ) {
        let Some(sent) = self.program.sent_event else {
            return;
        };
        let plans = Rc::clone(&self.plans);
        let Some(plan) = plans.get(sent) else {
            return;
        };
        let program = Arc::clone(&self.program);
        let text = |s: &str| Value::Str(Arc::from(s));
        let props = [
            text(&journey.name),
            text(
                program
                    .templates
                    .get(template)
                    .map_or("", |t| t.name.as_str()),
            ),
            text(
                program
                    .channels
                    .get(channel)
                    .map_or("", |c| c.name.as_str()),
            ),
            journey
                .category
                .and_then(|k| program.categories.get(k))
                .map_or(Value::None, |k| text(k)),
        ];
        self.record(profile, &plan.aggregates, now, now, &props);
        self.record(profile, &plan.previous, now, now, &props);
    }
}

/// Whether a profile may start an instance of a journey now (§6 re-entry), or
/// why not.
fn eligibility(
    reenter: Reenter,
    state: &state::JourneyState,
    now: i64,
) -> Option<decision::NotEntered> {
    use decision::NotEntered;
    if state.active.is_some() {
        return Some(NotEntered::Active);
    }
    match reenter {
        Reenter::AfterEnd => None,
        Reenter::Never => (state.entries > 0).then_some(NotEntered::ReenterNever),
        Reenter::After(d) => state
            .last_entry
            .filter(|last| now.saturating_sub(*last) < d)
            .map(|last| NotEntered::Reenter {
                until: last.saturating_add(d),
            }),
    }
}

/// Grants and revocations, effective at the event's time (remembered for
/// explanations: "revoked at …").
fn apply_consents(profile: &mut Profile, consents: &[(usize, bool)], at: i64) {
    for &(topic, granted) in consents {
        if let Some(c) = profile.consents.get_mut(topic) {
            *c = granted;
        }
        if let Some(when) = profile.consent_changed.get_mut(topic) {
            *when = Some(at);
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

/// Aggregates are not readable in aggregate filters (the checker ensures it).
struct NoAggregates;

impl interp::Aggregates for NoAggregates {
    fn value(&self, _: &Program, _: usize, _: i64) -> Value {
        Value::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program with one event, `e { x: number }`, and nothing else.
    fn one_event_program() -> Arc<Program> {
        let mut sources = crate::Sources::new();
        sources.add("t.nudge", "event e { x: number }\n");
        let analysis = crate::analyze(&sources);
        Arc::new(crate::ir::lower(&analysis.modules).unwrap())
    }

    /// Without a store, nothing drains the change log, so nothing is recorded:
    /// memory follows the profiles, not the length of the input.
    #[test]
    fn changes_are_recorded_only_for_a_store() {
        let program = one_event_program();
        let event = |i: i64| {
            Incoming::new(
                format!("p{}", i % 3),
                i * time::SECOND,
                Some(format!("m{i}").into()),
                Body::Track {
                    event: 0,
                    props: vec![Value::Number(1.0)],
                },
            )
        };
        let mut out = Vec::new();
        let mut plain = Engine::new(Arc::clone(&program));
        for i in 0..100 {
            plain.process(event(i), &mut out);
        }
        assert!(plain.core.dirty.is_empty() && plain.core.seen_added.is_empty());
        let mut tracked = Engine::new(program);
        tracked.track_changes();
        for i in 0..100 {
            tracked.process(event(i), &mut out);
        }
        let changes = tracked.take_changes();
        assert_eq!((changes.profiles.len(), changes.seen_added.len()), (3, 100));
    }

    /// A store is told which pending timers were set, fired or cancelled, and
    /// nothing else: it writes timer rows only for those.
    #[test]
    fn changed_timers_are_reported_once() {
        let mut sources = crate::Sources::new();
        sources.add(
            "t.nudge",
            "event e { x: number }\njourney j {\n  owner \"qa\"\n  when e\n  wait 1h\n  stop\n}\n",
        );
        let analysis = crate::analyze(&sources);
        let program = match crate::ir::lower(&analysis.modules) {
            Ok(p) => Arc::new(p),
            Err(e) => panic!("{e}: {:?}", analysis.diagnostics),
        };
        let event = |at: i64| {
            Incoming::new(
                "p",
                at,
                None,
                Body::Track {
                    event: 0,
                    props: vec![Value::Number(1.0)],
                },
            )
        };
        let mut engine = Engine::new(program);
        engine.track_changes();
        let mut out = Vec::new();
        engine.process(event(0), &mut out);
        let timers = |engine: &mut Engine| -> Vec<(String, usize, Option<i64>)> {
            let changes = engine.take_changes();
            changes
                .timers
                .iter()
                .map(|(id, j, at)| (id.to_string(), *j, *at))
                .collect()
        };
        assert_eq!(
            timers(&mut engine),
            [("p".to_string(), 0, Some(60 * time::MINUTE))]
        );
        assert_eq!(timers(&mut engine), []);
        // The timer fires (and the instance completes) when the clock passes it.
        engine.process(event(2 * (60 * time::MINUTE)), &mut out);
        let changed = timers(&mut engine);
        assert_eq!(
            changed,
            [("p".to_string(), 0, Some(3 * (60 * time::MINUTE)))]
        );
    }

    /// (1.1) An occurrence over more profiles than may be held pauses after
    /// every few of them; a store that commits at a pause and crashes resumes
    /// it after the last profile it ran for: every profile enters once, in
    /// id order, as without the pauses.
    #[test]
    fn paused_occurrences_resume_after_a_restart() {
        let mut sources = crate::Sources::new();
        sources.add(
            "t.nudge",
            "event e { x: number }\njourney daily {\n  owner \"qa\"\n  when every day at 09:00\n  wait 1h\n  stop\n}\n",
        );
        let analysis = crate::analyze(&sources);
        let program = match crate::ir::lower(&analysis.modules) {
            Ok(p) => Arc::new(p),
            Err(e) => panic!("{e}: {:?}", analysis.diagnostics),
        };
        let event = |i: usize| {
            Incoming::new(
                format!("p{i}"),
                i as i64 * time::SECOND,
                None,
                Body::Track {
                    event: 0,
                    props: vec![Value::Number(1.0)],
                },
            )
        };
        let day = 24 * 60 * time::MINUTE;
        let mut reference = Vec::new();
        let mut plain = Engine::new(Arc::clone(&program));
        for i in 0..7 {
            plain.process(event(i), &mut reference);
        }
        assert!(plain.fire_due(day, None, &mut reference));

        // A store: profiles, timers, zones and the last commit's clock and pause.
        #[derive(Default)]
        struct Saved {
            profiles: BTreeMap<String, Profile>,
            timers: BTreeMap<(String, usize), i64>,
            zones: Vec<(String, Tz)>,
            clock: Option<i64>,
            paused: Option<Paused>,
        }
        struct Loader(Rc<std::cell::RefCell<Saved>>);
        impl ProfileLoader for Loader {
            fn load(&mut self, id: &str) -> Option<Profile> {
                self.0.borrow().profiles.get(id).cloned()
            }
        }
        let saved = Rc::new(std::cell::RefCell::new(Saved::default()));
        let commit = |engine: &mut Engine| {
            let changes = engine.take_changes();
            let mut s = saved.borrow_mut();
            for (id, p) in changes.profiles {
                s.profiles.insert(id.to_string(), p.clone());
            }
            for (id, slot, at) in changes.timers {
                match at {
                    Some(at) => s.timers.insert((id.to_string(), slot), at),
                    None => s.timers.remove(&(id.to_string(), slot)),
                };
            }
            for (id, zone) in changes.zones {
                s.zones.push((id.to_string(), zone.parse().unwrap()));
            }
            s.clock = changes.clock;
            s.paused = changes.paused;
        };
        let mut got = Vec::new();
        let mut engine = Engine::new(Arc::clone(&program));
        engine.track_changes();
        engine.hold_at_most(2, 2);
        for i in 0..7 {
            engine.process(event(i), &mut got);
        }
        commit(&mut engine);
        assert!(
            !engine.fire_due(day, None, &mut got),
            "seven profiles, two held"
        );
        assert!(engine.paused());
        commit(&mut engine);
        let first = got.len();
        assert!(first < reference.len());
        // The crash: what is not committed is lost; a new engine resumes.
        drop(engine);
        let restored = |saved: &Saved| {
            let mut engine = Engine::restore(
                Arc::clone(&program),
                saved.clock,
                saved
                    .timers
                    .iter()
                    .map(|((id, slot), at)| (*at, id.clone(), *slot)),
                Vec::new(),
                saved.zones.clone(),
                saved.paused.clone(),
            );
            engine.hold_at_most(2, 2);
            engine
        };
        let mut engine = restored(&saved.borrow());
        engine.set_loader(Box::new(Loader(Rc::clone(&saved))));
        assert!(engine.paused(), "the pause was committed");
        let mut rounds = 0;
        while !engine.fire_due(day, None, &mut got) {
            commit(&mut engine);
            engine.evict(2);
            rounds += 1;
            assert!(rounds < 10, "the occurrence never finished");
        }
        assert!(rounds >= 1, "it paused again after the restart");
        assert_eq!(got, reference);
        // Committed after the occurrence, a restart fires nothing again.
        commit(&mut engine);
        let mut engine = restored(&saved.borrow());
        engine.set_loader(Box::new(Loader(Rc::clone(&saved))));
        let mut again = Vec::new();
        assert!(engine.fire_due(day, None, &mut again));
        assert_eq!(again, []);
    }

    /// Every condition of a program is found once in the JIT's table, at its
    /// own site: a filter, a trigger condition, each exit clause, each `if`,
    /// (1.1) each `goal` and `wait up to … for` condition.
    #[cfg(feature = "jit")]
    #[test]
    fn every_condition_site_has_its_compiled_function() {
        let mut sources = crate::Sources::new();
        sources.add(
            "t.nudge",
            r#"
profile { email: string?, tier: string = "standard" }
event cart { value: number }
event purchase { amount: number }
channel email { address profile.email }
journey j {
  owner "qa"
  transactional
  exit on purchase where event.amount > 10
  exit on purchase where event.amount < 0
  when cart where count(cart where event.value > 5 within 1h) >= 2
  goal purchase where event.amount > 100 within 7d
  if profile.tier == "gold" { send t via email } else { wait 1h }
  if count(cart within 1d) > 3 { stop }
  wait up to 1d for purchase where event.amount > trigger.value { stop }
}
template t { email { subject: "E" } }
"#,
        );
        let analysis = crate::analyze(&sources);
        let program = match crate::ir::lower(&analysis.modules) {
            Ok(p) => Arc::new(p),
            Err(e) => panic!("{e}: {:?}", analysis.diagnostics),
        };
        let jit = Rc::new(crate::jit::Jit::compile(Arc::clone(&program)).unwrap());
        let native = Native::new(Rc::clone(&jit), &program);
        let journey = &program.journeys[0];
        let mut sites = vec![(Site::Filter(0), program.aggregates[0].filter.as_ref())];
        sites.push((Site::Trigger(0), journey.condition.as_ref()));
        for (k, (_, c)) in journey.exits.iter().enumerate() {
            sites.push((Site::Exit(0, k), c.as_ref()));
        }
        for (pc, instr) in journey.code.iter().enumerate() {
            match instr {
                Instr::JumpUnless(c, _) => sites.push((Site::Step(0, pc), Some(c))),
                Instr::WaitFor { condition, .. } => {
                    sites.push((Site::Step(0, pc), condition.as_ref()))
                }
                _ => {}
            }
        }
        for (g, goal) in journey.goals.iter().enumerate() {
            sites.push((Site::Goal(0, g), goal.condition.as_ref()));
        }
        assert_eq!(sites.len(), 8);
        for (site, e) in sites {
            let e = e.unwrap();
            assert_eq!(native.id(site), jit.id(e));
            assert!(native.id(site).is_some());
        }
    }

    /// A messageId is a duplicate while less than a window has passed since it
    /// was seen (by the clock), and the ids remembered stay within a window and
    /// an eighth of input.
    #[test]
    fn message_ids_are_remembered_for_one_window() {
        let program = one_event_program();
        let event =
            |id: &str, at: i64| Incoming::new("p", at, Some(id.to_string().into()), Body::Ignored);
        let mut engine = Engine::new(program);
        let mut out = Vec::new();
        assert_eq!(engine.process(event("a", 0), &mut out), Outcome::Ignored);
        let just_inside = DEDUPE_WINDOW - 1;
        assert_eq!(
            engine.process(event("a", just_inside), &mut out),
            Outcome::Duplicate
        );
        // A duplicate does not refresh the id: a window after the first sighting
        // it is new again, and remembered from then on.
        assert_eq!(
            engine.process(event("a", DEDUPE_WINDOW), &mut out),
            Outcome::Ignored
        );
        assert_eq!(
            engine.process(event("a", DEDUPE_WINDOW + 1), &mut out),
            Outcome::Duplicate
        );
        // One id a minute for four windows: never more than 9/8 of a window held.
        let per_window = (DEDUPE_WINDOW / time::MINUTE) as usize;
        for i in 0..4 * per_window as i64 {
            engine.process(
                event(&format!("m{i}"), 2 * DEDUPE_WINDOW + i * time::MINUTE),
                &mut out,
            );
            assert!(engine.core.seen.len() <= per_window + per_window / 8 + 2);
        }
        assert!(engine.core.seen.len() >= per_window);
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
