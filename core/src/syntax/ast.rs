//! The abstract syntax tree of one policy file.
//!
//! Every node carries the byte [`Span`] of its source text. The tree is what the
//! user wrote, validated only lexically: names are not resolved and types are not
//! checked (that is `check`'s job). Nodes that failed lexical validation keep their
//! place with an `Error` variant, so that later passes see the declaration and do
//! not report follow-on errors about it.

use crate::source::Span;

/// A name with its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A parsed file: its declarations in source order and every comment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Module {
    pub decls: Vec<Decl>,
    pub comments: Vec<Comment>,
    /// Declarations that had syntax errors and were left out, by keyword and name
    /// (when the name could be read). The checker treats references to them as
    /// known, so a syntax error does not cascade into "unknown name" errors.
    pub broken: Vec<BrokenDecl>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BrokenDecl {
    pub keyword: String,
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentKind {
    /// `// …`
    Line,
    /// `/// …`
    Doc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub kind: CommentKind,
    /// The whole comment, from the slashes to the end of the line (exclusive).
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    pub kind: DeclKind,
    pub span: Span,
    /// The text of the `///` comments right above the declaration, one line per
    /// comment, without the slashes and the one space after them.
    pub doc: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DeclKind {
    Consent(ConsentDecl),
    Profile(ProfileDecl),
    Event(EventDecl),
    Channel(ChannelDecl),
    Limits(LimitsDecl),
    Segment(SegmentDecl),
    Template(TemplateDecl),
    Journey(JourneyDecl),
    /// (1.1) `category promotions`.
    Category(CategoryDecl),
    /// (1.1) `test NAME { at … expect … }` (LANGUAGE.md §10).
    Test(TestDecl),
}

impl DeclKind {
    /// What the declaration is, in the user's words ("journey", "event" …).
    pub fn keyword(&self) -> &'static str {
        match self {
            DeclKind::Consent(_) => "consent",
            DeclKind::Profile(_) => "profile",
            DeclKind::Event(_) => "event",
            DeclKind::Channel(_) => "channel",
            DeclKind::Limits(_) => "limits",
            DeclKind::Segment(_) => "segment",
            DeclKind::Template(_) => "template",
            DeclKind::Journey(_) => "journey",
            DeclKind::Category(_) => "category",
            DeclKind::Test(_) => "test",
        }
    }

    /// The declared name; `profile` and `limits` have none.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            DeclKind::Consent(d) => Some(&d.name),
            DeclKind::Event(d) => Some(&d.name),
            DeclKind::Channel(d) => Some(&d.name),
            DeclKind::Segment(d) => Some(&d.name),
            DeclKind::Template(d) => Some(&d.name),
            DeclKind::Journey(d) => Some(&d.name),
            DeclKind::Category(d) => Some(&d.name),
            DeclKind::Test(d) => Some(&d.name),
            DeclKind::Profile(_) | DeclKind::Limits(_) => None,
        }
    }
}

/// (1.1) An executable example of what the policy set must do (§10).
#[derive(Clone, Debug, PartialEq)]
pub struct TestDecl {
    pub name: Ident,
    pub steps: Vec<TestStep>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestStep {
    /// `at TIME [identify "P" { … } | EVENT "P" { … }]`.
    At {
        time: TestTime,
        input: Option<TestInput>,
        span: Span,
    },
    /// `expect [no] KIND [{ field: value, … }]`.
    Expect {
        /// The span of `no`, when the expectation is that nothing matches.
        no: Option<Span>,
        kind: Ident,
        fields: Option<TestObject>,
        span: Span,
    },
}

impl TestStep {
    pub fn span(&self) -> Span {
        match self {
            TestStep::At { span, .. } | TestStep::Expect { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestTime {
    /// An RFC 3339 timestamp: nanoseconds since the epoch.
    At { nanos: i64, span: Span },
    /// `+DURATION` after the previous step.
    After(DurationLit),
    /// Failed lexical validation (already reported).
    Error(Span),
}

impl TestTime {
    pub fn span(&self) -> Span {
        match self {
            TestTime::At { span, .. } | TestTime::Error(span) => *span,
            TestTime::After(d) => d.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestInput {
    /// `identify "PROFILE" { trait: value, …, consent { topic: bool, … } }`.
    Identify {
        profile: StrLit,
        traits: Option<TestObject>,
        span: Span,
    },
    /// `EVENT "PROFILE" { prop: value, … }`.
    Event {
        event: Ident,
        profile: StrLit,
        props: Option<TestObject>,
        span: Span,
    },
}

/// `{ name: value, … }` in a test.
#[derive(Clone, Debug, PartialEq)]
pub struct TestObject {
    pub fields: Vec<TestField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestField {
    pub name: Ident,
    pub value: TestValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestValue {
    /// A literal or a name (checked by the checker: only literals and names).
    Expr(Expr),
    Object(TestObject),
}

/// (1.1) A message category.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryDecl {
    pub name: Ident,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMode {
    OptIn,
    OptOut,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsentDecl {
    pub name: Ident,
    pub mode: ConsentMode,
    pub mode_span: Span,
    /// (1.1) `from "Marketing Email"`: the topic's name in the input.
    pub external: Option<StrLit>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProfileDecl {
    pub attrs: Vec<AttrDecl>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttrDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    /// (1.1) `from "…"`: the input field the attribute is read from.
    pub source: Option<StrLit>,
    /// (1.1) `sensitive` (§9a): the span of the word.
    pub sensitive: Option<Span>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventDecl {
    pub name: Ident,
    /// `from "Order Completed"`: the name used in the input stream.
    pub external: Option<StrLit>,
    pub props: Vec<PropDecl>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PropDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    /// (1.1) `from "…"`: the input field the property is read from.
    pub source: Option<StrLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub optional: bool,
    pub span: Span,
}

impl std::fmt::Display for TypeExpr {
    /// The type as written: `list<string>?`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            TypeKind::Number => f.write_str("number")?,
            TypeKind::String => f.write_str("string")?,
            TypeKind::Bool => f.write_str("bool")?,
            TypeKind::Time => f.write_str("time")?,
            TypeKind::Duration => f.write_str("duration")?,
            TypeKind::Timezone => f.write_str("timezone")?,
            TypeKind::TimeOfDay => f.write_str("time_of_day")?,
            TypeKind::List(inner) => write!(f, "list<{inner}>")?,
            TypeKind::Error => f.write_str("<error>")?,
        }
        if self.optional {
            f.write_str("?")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeKind {
    Number,
    String,
    Bool,
    Time,
    Duration,
    Timezone,
    /// (1.1) A local wall-clock time.
    TimeOfDay,
    List(Box<TypeExpr>),
    /// A type that failed lexical validation (already reported).
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDecl {
    pub name: Ident,
    pub address: Option<Path>,
    pub consent: Option<Ident>,
    pub quiet: Option<QuietWindow>,
    /// (1.1) `engagement app_opened, push_tapped`.
    pub engagement: Vec<Ident>,
    /// (1.1) `private` (§9a): the span of the word.
    pub private: Option<Span>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LimitsDecl {
    pub caps: Vec<Cap>,
    pub quiet: Vec<QuietWindow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cap {
    /// The number of sends allowed per window; whole, validated by the builder.
    pub count: u32,
    pub count_span: Span,
    pub window: Window,
    pub scope: CapScope,
    pub span: Span,
}

/// Which sends a cap counts.
#[derive(Clone, Debug, PartialEq)]
pub enum CapScope {
    /// Every channel.
    All,
    /// `on email` or (1.1) `on email, sms, push`.
    Channels(Vec<Ident>),
    /// (1.1) `on category promotions`.
    Category(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub enum WindowKind {
    /// `per 7d`: the window `(t - D, t]`.
    Rolling(DurationLit),
    /// `per day`: since local midnight.
    Day,
    /// `per week`: since Monday 00:00 local time.
    Week,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kind: WindowKind,
    pub span: Span,
}

/// `A to B`, local times in the profile's time zone; wraps midnight when `A > B`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuietWindow {
    pub from: TimeOfDay,
    pub to: TimeOfDay,
    pub span: Span,
}

/// A time of day as minutes after midnight (0–1439).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeOfDay {
    pub minutes: u16,
    pub span: Span,
}

/// A duration literal in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurationLit {
    pub seconds: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDecl {
    pub name: Ident,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TemplateDecl {
    pub name: Ident,
    pub blocks: Vec<TemplateBlock>,
}

/// The content of a template for one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateBlock {
    pub channel: Ident,
    pub fields: Vec<TemplateField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TemplateField {
    pub name: Ident,
    pub value: StrLit,
    pub span: Span,
}

/// A string literal: text and `{{ expr }}` interpolations.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub parts: Vec<StrPart>,
    pub span: Span,
}

impl StrLit {
    /// The string's value when it has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Text(text, _) => out.push_str(text),
                StrPart::Interp(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Literal text with escapes already decoded.
    Text(String, Span),
    Interp(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct JourneyDecl {
    pub name: Ident,
    pub clauses: Vec<Clause>,
    pub steps: Vec<Step>,
    /// True when part of the journey had syntax errors and was left out; checks
    /// that need the whole journey (a missing `when`, say) skip it.
    pub recovered: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub kind: ClauseKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClauseKind {
    Owner(StrLit),
    Priority {
        value: f64,
        value_span: Span,
    },
    When(Trigger),
    ExitOn(Trigger),
    ReenterAfter(DurationLit),
    ReenterNever,
    RequireConsent(Ident),
    Transactional,
    /// (1.1) `when no browse, cart for 30d [where …]`: inactivity.
    WhenNo {
        events: Vec<Ident>,
        after: DurationLit,
        condition: Option<Expr>,
    },
    /// (1.1) `when at 2026-12-24 09:00` or `when every mon, thu at 09:00`.
    WhenScheduled {
        days: ScheduleDays,
        time: TimeOfDay,
        condition: Option<Expr>,
    },
    /// (1.1) `category promotions`.
    Category(Ident),
    /// (1.1) `cap 1 per week`: this journey's own sends.
    Cap {
        count: u32,
        count_span: Span,
        window: Window,
    },
    /// (1.1) `goal order_completed [where …] within 7d`.
    Goal {
        event: Ident,
        condition: Option<Expr>,
        within: DurationLit,
    },
}

impl ClauseKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            ClauseKind::Owner(_) => "owner",
            ClauseKind::Priority { .. } => "priority",
            ClauseKind::When(_) | ClauseKind::WhenNo { .. } | ClauseKind::WhenScheduled { .. } => {
                "when"
            }
            ClauseKind::ExitOn(_) => "exit on",
            ClauseKind::ReenterAfter(_) | ClauseKind::ReenterNever => "reenter",
            ClauseKind::RequireConsent(_) => "require consent",
            ClauseKind::Transactional => "transactional",
            ClauseKind::Category(_) => "category",
            ClauseKind::Cap { .. } => "cap",
            ClauseKind::Goal { .. } => "goal",
        }
    }
}

/// (1.1) The days of a scheduled trigger.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleDays {
    /// `at 2026-12-24`.
    Once {
        year: i32,
        month: u32,
        day: u32,
        span: Span,
    },
    /// `every day` (all seven) or `every mon, thu`: weekdays 0 (Monday) to 6,
    /// as written.
    Every { weekdays: Vec<u8>, span: Span },
}

/// The names of the weekdays, Monday first, as schedules write them.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `EVENT [where COND]`, as in `when` and `exit on`; (1.1) `when` may list
/// several events (`when cart_abandoned, checkout_started`).
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub event: Ident,
    /// (1.1) The events listed after the first (`when` only).
    pub also: Vec<Ident>,
    /// The event was written as a string (`when "Cart Abandoned"`): an error
    /// the checker explains, naming the declared event.
    pub quoted: bool,
    pub condition: Option<Expr>,
}

impl Trigger {
    /// Every event listed, in order.
    pub fn events(&self) -> impl Iterator<Item = &Ident> {
        std::iter::once(&self.event).chain(&self.also)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
}

impl Step {
    /// The nested step lists of a step: an `if`'s branches, a `split`'s arms,
    /// (1.1) a `wait up to`'s two outcomes.
    pub fn blocks(&self) -> Vec<&[Step]> {
        match &self.kind {
            StepKind::If {
                then, otherwise, ..
            } => {
                let mut out = vec![then.as_slice()];
                match otherwise {
                    Some(Else::Block(b)) => out.push(b.as_slice()),
                    Some(Else::If(s)) => out.push(std::slice::from_ref(s.as_ref())),
                    None => {}
                }
                out
            }
            StepKind::Split { arms } => arms.iter().filter_map(|a| a.body.as_deref()).collect(),
            StepKind::WaitFor {
                then, otherwise, ..
            } => std::iter::once(then.as_slice())
                .chain(otherwise.as_deref())
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    Wait(DurationLit),
    WaitUntil(TimeOfDay),
    /// (1.1) `wait until EXPR`, a `time_of_day` evaluated when the step starts.
    WaitUntilExpr(Expr),
    Send {
        template: Ident,
        channels: Vec<Ident>,
        /// (1.1) `via best of …`.
        best: bool,
    },
    /// (1.1) `wait up to D for E [where C] { … } [else { … }]`.
    WaitFor {
        timeout: DurationLit,
        event: Ident,
        condition: Option<Expr>,
        then: Vec<Step>,
        otherwise: Option<Vec<Step>>,
    },
    If {
        condition: Expr,
        then: Vec<Step>,
        otherwise: Option<Else>,
    },
    Split {
        arms: Vec<SplitArm>,
    },
    Stop,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Else {
    Block(Vec<Step>),
    /// `else if …`: a nested `if` step.
    If(Box<Step>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SplitArm {
    /// `None` when the percentage was invalid (already reported).
    pub percent: Option<u8>,
    pub percent_span: Span,
    pub name: Ident,
    /// `None` for a holdout arm (`10% holdout`).
    pub body: Option<Vec<Step>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Str(StrLit),
    Bool(bool),
    None,
    Duration(u64),
    /// (1.1) A time of day, minutes after midnight.
    TimeOfDay(u16),
    /// Seconds and nanoseconds since the Unix epoch, UTC.
    Timestamp {
        seconds: i64,
        nanos: u32,
    },
    List(Vec<Expr>),
    Path(Path),
    Call(Call),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Paren(Box<Expr>),
    /// An expression that failed lexical validation (already reported).
    Error,
}

/// `a.b.c`: the first segment is `profile`, `event`, `trigger`, `now` or a name.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn root(&self) -> &str {
        self.segments.first().map_or("", |s| s.name.as_str())
    }
}

/// A function call. Aggregates take their special clauses:
/// `count(EVENT where COND within 7d)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub function: Ident,
    pub args: Vec<Expr>,
    pub filter: Option<Box<Expr>>,
    pub within: Option<DurationLit>,
    /// (1.1) `count(previous E …)`: the span of `previous`.
    pub previous: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Coalesce,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "in",
            BinaryOp::Coalesce => "??",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// Binding strength, loosest first (LANGUAGE.md §5).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 4,
            BinaryOp::In => 5,
            BinaryOp::Coalesce => 6,
            BinaryOp::Add | BinaryOp::Sub => 7,
            BinaryOp::Mul | BinaryOp::Div => 8,
        }
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 4
    }
}

/// Precedence of prefix `not`: looser than comparisons, tighter than `and`, so
/// `not a == b` is `not (a == b)`.
pub const NOT_PRECEDENCE: u8 = 3;
/// Precedence of unary minus: tighter than every binary operator.
pub const NEG_PRECEDENCE: u8 = 9;

/// A duration in canonical form, largest units first: `90m` is `1h30m`, `0s` is
/// `0s`. Weeks are used only for whole weeks, so `30d` stays `30d`.
pub fn duration_text(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = seconds;
    let units: &[(&str, u64)] = if seconds.is_multiple_of(604_800) {
        &[("w", 604_800)]
    } else {
        &[("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)]
    };
    for &(unit, size) in units {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// `HH:MM`.
pub fn time_of_day_text(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// (1.1) `at 2026-12-24`, `every day at`, `every mon, thu at`.
pub fn schedule_days(days: &ScheduleDays) -> String {
    match days {
        ScheduleDays::Once {
            year, month, day, ..
        } => format!("at {year:04}-{month:02}-{day:02}"),
        ScheduleDays::Every { weekdays, .. } => {
            let mut seen = [false; 7];
            for &d in weekdays {
                if let Some(s) = seen.get_mut(d as usize) {
                    *s = true;
                }
            }
            if seen.iter().all(|s| *s) {
                return "every day at".into();
            }
            let names: Vec<&str> = WEEKDAYS
                .iter()
                .zip(seen)
                .filter(|(_, s)| *s)
                .map(|(d, _)| *d)
                .collect();
            format!("every {} at", names.join(", "))
        }
    }
}
