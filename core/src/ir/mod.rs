//! The IR: a checked policy set, lowered and resolved.
//!
//! Every name is resolved to an index: profile attributes, event properties and
//! trigger snapshot fields are *slots* (fixed positions in a value array),
//! aggregates and segments are numbered, journeys are flat instruction lists with
//! jump targets. Both evaluators (`interp` and, later, `jit`) read this and only
//! this. Journeys are stored in arbitration order: priority descending, then name.
//!
//! Promise: lowering is only given error-free analyses; it never panics, and a set
//! it cannot lower is reported as an internal error, not guessed at.

mod lower;
pub mod upgrade;
pub mod versions;

pub use lower::{LowerError, lower};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A runtime value. Times and durations are nanoseconds (since the Unix epoch for
/// times), which covers the years 1677–2262 exactly.
///
/// `repr(C, u8)` fixes the layout the JIT reads: a one-byte tag (the variants in
/// order, `None` = 0 … `List` = 6) at offset 0 and the payload at offset 8.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[repr(C, u8)]
pub enum Value {
    None,
    Bool(bool),
    Number(f64),
    Str(Arc<str>),
    Time(i64),
    Duration(i64),
    List(Arc<[Value]>),
}

impl Program {
    /// A digest of the whole program, stored with durable state so that a run
    /// never resumes state written for a different policy set.
    pub fn fingerprint(&self) -> u64 {
        crate::stdx::hash::fnv1a_64(format!("{self:?}").as_bytes())
    }
}

/// A time of day is held as this many nanoseconds per minute after midnight.
pub const NANOS_PER_MINUTE: i64 = 60_000_000_000;

impl Value {
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }
}

/// The static type of a slot or expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Type {
    Number,
    String,
    Bool,
    Time,
    Duration,
    Timezone,
    /// (1.1) A local wall-clock time, held as a `Value::Duration` after local
    /// midnight (whole minutes), so that both evaluators compare it natively.
    TimeOfDay,
    ListNumber,
    ListString,
    /// `[]` and `none` literals.
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotType {
    pub ty: Type,
    pub optional: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Program {
    pub consents: Vec<Consent>,
    pub attrs: Vec<Attr>,
    /// The attribute holding the profile's time zone (`timezone`), if declared.
    pub timezone_attr: Option<usize>,
    pub events: Vec<EventDef>,
    pub channels: Vec<Channel>,
    pub caps: Vec<Cap>,
    pub global_quiet: Option<Quiet>,
    pub segments: Vec<Expr>,
    pub aggregates: Vec<Aggregate>,
    pub templates: Vec<Template>,
    /// In arbitration order: priority descending, then name.
    pub journeys: Vec<Journey>,
    /// (1.1) Message categories, by name.
    pub categories: Vec<String>,
    /// (1.1) The built-in `sent` event's index in `events`, when an aggregate
    /// reads it (it is then the last event).
    pub sent_event: Option<usize>,
    /// (1.1) What `trigger.` holds for journeys on several events or on a
    /// timer (`ShapeRef::Shape`).
    pub shapes: Vec<Shape>,
}

/// What a journey's `trigger.` (and its trigger condition's `event.`) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ShapeRef {
    /// The properties of this one event, slot for slot.
    Event(usize),
    /// `Program::shapes[k]`.
    Shape(usize),
}

/// The properties a journey's trigger snapshot holds, for journeys not started
/// by exactly one event: those declared with one type on every trigger event
/// (none for a timer), and for each trigger event the slot each is read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub events: Vec<usize>,
    pub props: Vec<Prop>,
    /// Per entry of `events`, per entry of `props`: the slot in that event.
    pub slots: Vec<Vec<usize>>,
}

impl Program {
    /// The trigger snapshot of a journey of shape `shape` started by event
    /// `event` with properties `props`.
    pub fn snapshot(&self, shape: ShapeRef, event: usize, props: &[Value]) -> Vec<Value> {
        let shape = match shape {
            ShapeRef::Event(_) => return props.to_vec(),
            ShapeRef::Shape(k) => match self.shapes.get(k) {
                Some(shape) => shape,
                None => return Vec::new(),
            },
        };
        match shape.events.iter().position(|e| *e == event) {
            Some(k) => shape.slots[k]
                .iter()
                .map(|&slot| props.get(slot).cloned().unwrap_or(Value::None))
                .collect(),
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    pub name: String,
    /// (1.1) `from "Marketing Email"`: the topic's name in the input, if any.
    pub external: Option<String>,
    /// `opt_out` topics are granted until revoked.
    pub granted_by_default: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attr {
    pub name: String,
    pub ty: SlotType,
    /// The value of a new profile (and of an attribute reset with `null`).
    pub default: Value,
    /// Where `identify` calls carry it.
    pub source: Source,
    /// (1.1) `sensitive` (§9a): its value is never written outside decisions'
    /// `content` (dead letters mask it).
    pub sensitive: bool,
}

/// (1.1) Where an attribute or property is read from in an input message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A member of `traits` (or `properties`) with this name.
    Member(String),
    /// An RFC 6901 JSON Pointer into the whole message.
    Pointer(String),
    /// (1.1) Not read from the input: an attribute an older journey version
    /// still reads after the set dropped or retyped it (§7.7) keeps the value
    /// it had at the upgrade.
    Retired,
}

impl Source {
    /// The member's name, for a source that is one.
    pub fn member(&self) -> Option<&str> {
        match self {
            Source::Member(m) => Some(m),
            Source::Pointer(_) | Source::Retired => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventDef {
    pub name: String,
    /// The name in the input stream (`from`, or the declared name).
    pub external: String,
    pub props: Vec<Prop>,
    /// (1.1) The built-in `sent`: recorded by the runtime, never read as input.
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prop {
    pub name: String,
    pub ty: SlotType,
    /// Where the event's `track` calls carry it.
    pub source: Source,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub address_attr: usize,
    pub consent: Option<usize>,
    pub quiet: Option<Quiet>,
    /// (1.1) The events that count as engaging with the channel.
    pub engagement: Vec<usize>,
}

/// Local quiet hours `from to to`, minutes after midnight; wraps when `from > to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiet {
    pub from: u16,
    pub to: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cap {
    pub count: u32,
    pub window: CapWindow,
    pub scope: CapScope,
}

/// Which sends a cap counts, and which sends it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapScope {
    /// Every channel of every journey.
    All,
    /// Sends on these channels.
    Channels(Vec<usize>),
    /// (1.1) Sends of journeys of this category.
    Category(usize),
    /// (1.1) A journey's own `cap`: that journey's sends.
    Journey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapWindow {
    /// Nanoseconds.
    Rolling(i64),
    Day,
    Week,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregate {
    pub kind: AggregateKind,
    pub event: usize,
    /// Over `event.` properties only, decided when the event arrives.
    pub filter: Option<Expr>,
    /// Nanoseconds; `None` for `since`.
    pub window: Option<i64>,
    /// (1.1) `previous`: the event being processed is left out (it is
    /// recorded once the event's journeys have run).
    pub previous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggregateKind {
    Count,
    /// The summed property's slot.
    Sum(usize),
    Since,
    /// (1.1) `best_time`: the local hour with the most events in the window.
    BestTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub blocks: Vec<TemplateBlock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateBlock {
    pub channel: usize,
    pub fields: Vec<Field>,
}

/// A template field. `trigger.` means the trigger of the sending journey, so the
/// text is lowered once per trigger event of the journeys that send the template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    /// (trigger shape, text), sorted by shape.
    pub by_trigger: Vec<(ShapeRef, Vec<TextPart>)>,
}

impl Field {
    pub fn text_for(&self, trigger: ShapeRef) -> Option<&[TextPart]> {
        self.by_trigger
            .iter()
            .find(|(e, _)| *e == trigger)
            .map(|(_, parts)| parts.as_slice())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TextPart {
    Text(String),
    Value(Expr),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journey {
    pub name: String,
    pub priority: u8,
    pub trigger: Trigger,
    /// What `trigger.` reads. Templates are lowered once per shape.
    pub shape: ShapeRef,
    pub condition: Option<Expr>,
    pub exits: Vec<(usize, Option<Expr>)>,
    pub reenter: Reenter,
    pub required_consents: Vec<usize>,
    pub transactional: bool,
    /// (1.1) The journey's category.
    pub category: Option<usize>,
    /// (1.1) Its own caps (`CapScope::Journey`).
    pub caps: Vec<Cap>,
    /// (1.1) `goal E [where C] within D`: (event, condition, nanoseconds).
    pub goals: Vec<Goal>,
    pub code: Vec<Instr>,
    /// (1.1) How this journey relates to its other versions in a store that
    /// was upgraded (§7.7); the default for a program lowered from source.
    pub versions: Versions,
}

/// (1.1) A journey's versions (LANGUAGE.md §7.7). A store upgraded to a new
/// policy set runs a *merged* program: the new set's journeys, and after each
/// one the older versions its customers are still in (retired copies, which no
/// trigger starts and which are dropped at a later upgrade once empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// This is an older version, kept for the instances that entered it.
    pub retired: bool,
    /// For a retired version: the current journey of the same name, if the
    /// set still has one (its caps and its sends are that journey's).
    pub current: Option<usize>,
    /// For a current journey: its retired versions. An instance active in
    /// any of them keeps the profile from entering this one.
    pub older: Vec<usize>,
}

impl Program {
    /// The journey whose sends a send of journey `j` counts as (its current
    /// version: the caps of §7.4 count a journey's sends across versions).
    pub fn lineage(&self, j: usize) -> usize {
        self.journeys
            .get(j)
            .and_then(|journey| journey.versions.current)
            .unwrap_or(j)
    }
}

/// (1.1) What starts a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Trigger {
    /// `when E1, E2 … [where …]`.
    Events(Vec<usize>),
    /// `when no E… for D`: D nanoseconds after the profile's latest event of
    /// those kinds (or its first line of any kind).
    Inactivity { events: Vec<usize>, after: i64 },
    /// `when at DATE HH:MM`, `when every DAYS at HH:MM`: at a local time in
    /// each profile's zone.
    Schedule { days: Days, minutes: u16 },
}

/// (1.1) The days a schedule runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Days {
    Once {
        year: i32,
        month: u32,
        day: u32,
    },
    /// Weekdays, bit 0 Monday … bit 6 Sunday.
    Every(u8),
}

impl Trigger {
    /// The events that start (or, for inactivity, move) the journey.
    pub fn events(&self) -> &[usize] {
        match self {
            Trigger::Events(e) | Trigger::Inactivity { events: e, .. } => e,
            Trigger::Schedule { .. } => &[],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    pub event: usize,
    pub condition: Option<Expr>,
    /// Nanoseconds after entry (inclusive).
    pub within: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reenter {
    /// Once the previous instance has ended.
    AfterEnd,
    /// Also at least this long (nanoseconds) after the previous entry.
    After(i64),
    Never,
}

/// One step of a journey's program. Running past the last instruction completes
/// the instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Instr {
    /// Nanoseconds.
    Wait(i64),
    /// Minutes after local midnight.
    WaitUntil(u16),
    /// (1.1) A `time_of_day` expression, evaluated when the step starts.
    WaitUntilExpr(Expr),
    Send {
        template: usize,
        channels: Vec<usize>,
        /// (1.1) `via best of`: per channel, the aggregates that score it.
        best: Option<Vec<Engagement>>,
    },
    /// (1.1) `wait up to`: pause until a matching event (then go on at the
    /// next instruction) or the timeout (then go on at `on_timeout`).
    WaitFor {
        event: usize,
        condition: Option<Expr>,
        /// Nanoseconds.
        timeout: i64,
        on_timeout: usize,
    },
    /// Jump to `target` when the condition is false.
    JumpUnless(Expr, usize),
    Jump(usize),
    Split {
        index: u32,
        arms: Vec<Arm>,
    },
    Stop,
}

/// (1.1) What scores a channel for `via best of` (§7.4): aggregates over the
/// 90 days up to the send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Engagement {
    /// `count(sent where event.channel == C within 90d)`.
    pub sends: usize,
    /// `count(E within 90d)` for each of the channel's engagement events.
    pub events: Vec<usize>,
}

/// The window `via best of` scores channels over.
pub const ENGAGEMENT_WINDOW: i64 = 90 * 24 * 3600 * 1_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Arm {
    pub percent: u8,
    pub name: String,
    /// Where the arm's steps start; `None` for a holdout.
    pub target: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExprKind {
    Const(Value),
    Attr(usize),
    EventProp(usize),
    TriggerProp(usize),
    Now,
    Aggregate(usize),
    Segment(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    IsNone(Box<Expr>),
    Coalesce(Box<Expr>, Box<Expr>),
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Call(Builtin, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Builtin {
    Lower,
    Len,
    StartsWith,
    Contains,
    LocalHour,
    Weekday,
    /// (1.1) `local_time(now)`: the local wall-clock time, to the minute.
    LocalTime,
}

#[cfg(test)]
pub(crate) mod tests {
    /// The lowered program of one error-free file (the test fails on errors).
    pub(crate) fn lowered(text: &str) -> super::Program {
        let mut sources = crate::Sources::new();
        sources.add("t.nudge", text);
        let analysis = crate::analyze(&sources);
        assert!(
            analysis
                .diagnostics
                .iter()
                .all(|d| d.severity != crate::Severity::Error),
            "{:?}",
            analysis.diagnostics
        );
        crate::ir::lower(&analysis.modules).expect("lowers")
    }
}
