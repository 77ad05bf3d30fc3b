//! (1.1) `test` declarations (LANGUAGE.md §10), typed against the schema: the
//! events, properties, traits and consent topics a test feeds, and the decision
//! kinds, fields, journeys, templates, channels, arms and reasons it expects.

use crate::check::Checker;
use crate::check::refs::Symbol;
use crate::check::types::{Base, Ty};
use crate::diagnostic::{Code, Diagnostic, Label, did_you_mean};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;

/// The decision kinds an `expect` may name: those of §8 (`not_entered`
/// included: tests run with explanations).
pub const KINDS: &[&str] = &crate::stdx::DECISION_KINDS;

/// The reasons a channel is not available (§7.4).
pub const REASONS: &[&str] = &["no_content", "unreachable", "no_consent", "cap", "quiet"];

/// The reasons a matching trigger did not start an instance.
pub const NOT_ENTERED: &[&str] = &["active", "reenter", "reenter_never"];

/// The fields a decision of `kind` has, besides `journey`, `profile` and `at`.
pub fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "send" => &["template", "channel", "message_id", "content", "arm"],
        "deferred" => &["template", "until", "reasons", "arm"],
        "suppressed" => &["template", "reasons", "arm"],
        "holdout" => &["arm"],
        "exited" => &["event"],
        "converted" => &["event", "entered_at", "arm"],
        "not_entered" => &["reason", "until"],
        _ => &[],
    }
}

/// Fields every decision has.
pub const COMMON_FIELDS: &[&str] = &["journey", "profile", "at"];

impl<'a> Checker<'a> {
    pub(crate) fn tests(&mut self) {
        let tests: Vec<(FileId, &'a TestDecl)> = self
            .env
            .tests
            .values()
            .map(|item| (item.file, item.node))
            .collect();
        for (file, test) in tests {
            self.test(file, test);
        }
    }

    fn test(&mut self, file: FileId, test: &'a TestDecl) {
        let mut clock: Option<i64> = None;
        for step in &test.steps {
            match step {
                TestStep::At { time, input, .. } => {
                    clock = self.test_time(file, time, clock);
                    match input {
                        Some(TestInput::Identify { traits, .. }) => {
                            for f in traits.iter().flat_map(|o| &o.fields) {
                                self.test_trait(file, f);
                            }
                        }
                        Some(TestInput::Event {
                            event, props, span, ..
                        }) => self.test_event(file, event, props.as_ref(), *span),
                        None => {}
                    }
                }
                TestStep::Expect { kind, fields, .. } => self.test_expect(file, kind, fields),
            }
        }
    }

    /// The time of a step; an error when it goes back, or when the first step
    /// has no timestamp to count from.
    fn test_time(&mut self, file: FileId, time: &TestTime, clock: Option<i64>) -> Option<i64> {
        match (time, clock) {
            (TestTime::At { nanos, span }, Some(previous)) if *nanos < previous => {
                self.diags.push(
                    Diagnostic::new(
                        Code::TestOutOfOrder,
                        "this step is earlier than the step before it",
                        Label::new(file, *span, "goes back in time"),
                    )
                    .with_help(format!(
                        "a test's steps are in time order: write a time at or after {}, or move the step up",
                        crate::stdx::rfc3339::rfc3339(previous)
                    )),
                );
                Some(previous)
            }
            (TestTime::At { nanos, .. }, _) => Some(*nanos),
            (TestTime::After(d), None) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::TestOutOfOrder,
                        "the first step of a test needs a timestamp",
                        Label::new(file, d.span, "after what?"),
                    )
                    .with_help(
                        "start with `at 2026-11-29T09:00:00Z …`; later steps may say `at +1h`",
                    ),
                );
                None
            }
            (TestTime::After(d), Some(previous)) => {
                Some(previous.saturating_add((d.seconds as i64).saturating_mul(1_000_000_000)))
            }
            (TestTime::Error(_), clock) => clock,
        }
    }

    /// A trait of `identify`, or its `consent { topic: bool }`.
    fn test_trait(&mut self, file: FileId, f: &'a TestField) {
        if f.name.name == "consent" {
            let TestValue::Object(topics) = &f.value else {
                self.test_wrong(file, f, "`consent { topic: true, … }`");
                return;
            };
            let names: Vec<&str> = self.env.consents.keys().copied().collect();
            for t in &topics.fields {
                if self.env.consents.contains_key(t.name.name.as_str()) {
                    self.references
                        .decl(file, t.name.span, "consent", &t.name.name);
                    self.test_value(file, t, Ty::BOOL);
                } else if !self.env.is_broken("consent", &t.name.name) {
                    let help = did_you_mean(&t.name.name, names.iter().copied())
                        .unwrap_or_else(|| format!("declare it: `consent {} opt_in`", t.name.name));
                    self.unknown(
                        file,
                        Code::UnknownTopic,
                        &t.name,
                        format!("unknown consent topic `{}`", t.name.name),
                        help,
                    );
                }
            }
            return;
        }
        match self.env.attrs.get(f.name.name.as_str()) {
            Some((_, attr)) => {
                self.references
                    .add(file, f.name.span, Symbol::Attr(f.name.name.clone()));
                let ty = Ty::from_ast(&attr.ty);
                self.test_value(file, f, ty);
            }
            None if self.env.profile_broken => {}
            None => {
                let names: Vec<&str> = self.env.attrs.keys().copied().collect();
                let help = did_you_mean(&f.name.name, names.iter().copied()).unwrap_or_else(|| {
                    format!("declare it in the profile: `{}: string?`", f.name.name)
                });
                self.unknown(
                    file,
                    Code::UnknownAttribute,
                    &f.name,
                    format!("the profile has no attribute `{}`", f.name.name),
                    help,
                );
            }
        }
    }

    /// `at T EVENT "P" { prop: value }`: a declared event, its properties with
    /// values of their types, every required one given.
    fn test_event(
        &mut self,
        file: FileId,
        event: &'a Ident,
        props: Option<&'a TestObject>,
        span: Span,
    ) {
        let Some(item) = self.env.events.get(event.name.as_str()).copied() else {
            // Reported with its did-you-mean (or the event's `from` name).
            self.event_ref(file, event);
            return;
        };
        let decl = item.node;
        self.references.decl(file, event.span, "event", &event.name);
        let given = props.map_or(&[][..], |o| o.fields.as_slice());
        for f in given {
            match decl.props.iter().find(|p| p.name.name == f.name.name) {
                Some(p) => {
                    let symbol = Symbol::Prop(event.name.clone(), f.name.name.clone());
                    self.references.add(file, f.name.span, symbol);
                    self.test_value(file, f, Ty::from_ast(&p.ty));
                }
                None => {
                    let names = decl.props.iter().map(|p| p.name.name.as_str());
                    let help = did_you_mean(&f.name.name, names).unwrap_or_else(|| {
                        format!(
                            "`{}` has {}",
                            event.name,
                            list_or_none(decl.props.iter().map(|p| p.name.name.as_str()))
                        )
                    });
                    self.unknown(
                        file,
                        Code::UnknownProperty,
                        &f.name,
                        format!(
                            "the event `{}` has no property `{}`",
                            event.name, f.name.name
                        ),
                        help,
                    );
                }
            }
        }
        let missing: Vec<&str> = decl
            .props
            .iter()
            .filter(|p| !p.ty.optional && !given.iter().any(|f| f.name.name == p.name.name))
            .map(|p| p.name.name.as_str())
            .collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
            self.diags.push(
                Diagnostic::new(
                    Code::TestMissingProperty,
                    format!(
                        "this `{}` lacks {} {}: as input it would be a dead letter",
                        event.name,
                        if missing.len() == 1 {
                            "the property"
                        } else {
                            "the properties"
                        },
                        names.join(", ")
                    ),
                    Label::new(file, span, "missing required properties"),
                )
                .with_help(format!(
                    "give every property that is not optional, e.g. `{}: {}`",
                    missing[0],
                    decl.props
                        .iter()
                        .find(|p| p.name.name == missing[0])
                        .map_or("…", |p| Ty::from_ast(&p.ty).example_default())
                )),
            );
        }
    }

    /// `expect [no] KIND { field: value, … }`.
    fn test_expect(&mut self, file: FileId, kind: &'a Ident, fields: &'a Option<TestObject>) {
        if !KINDS.contains(&kind.name.as_str()) {
            let help = did_you_mean(&kind.name, KINDS.iter().copied()).unwrap_or_else(|| {
                format!(
                    "a decision is one of {}",
                    list_or_none(KINDS.iter().copied())
                )
            });
            self.unknown_labelled(
                file,
                Code::UnknownTestName,
                kind,
                format!("`{}` is not a kind of decision", kind.name),
                help,
                "unknown",
            );
            return;
        }
        let own = fields_of(&kind.name);
        let journey = fields.iter().flat_map(|o| &o.fields).find_map(|f| {
            (f.name.name == "journey")
                .then(|| name_value(&f.value))
                .flatten()
        });
        let template = fields.iter().flat_map(|o| &o.fields).find_map(|f| {
            (f.name.name == "template")
                .then(|| name_value(&f.value))
                .flatten()
        });
        for f in fields.iter().flat_map(|o| &o.fields) {
            let field = f.name.name.as_str();
            if !COMMON_FIELDS.contains(&field) && !own.contains(&field) {
                let all = COMMON_FIELDS.iter().chain(own).copied();
                let help = did_you_mean(field, all.clone()).unwrap_or_else(|| {
                    format!("`{}` decisions have {}", kind.name, list_or_none(all))
                });
                self.unknown_labelled(
                    file,
                    Code::UnknownTestName,
                    &f.name,
                    format!("`{}` decisions have no field `{field}`", kind.name),
                    help,
                    "unknown",
                );
                continue;
            }
            match field {
                "journey" => self.test_name(file, f, "journey", Code::UnknownJourney),
                "template" => self.test_name(file, f, "template", Code::UnknownTemplate),
                "channel" => self.test_name(file, f, "channel", Code::UnknownChannel),
                "event" => self.test_name(file, f, "event", Code::UnknownEvent),
                "arm" => self.test_arm(file, f, journey),
                "reason" => self.test_word(file, f, NOT_ENTERED, "a reason for not entering"),
                "profile" | "message_id" => self.test_value(file, f, Ty::STRING),
                "at" | "until" | "entered_at" => self.test_value(file, f, Ty::TIME),
                "reasons" => {
                    let TestValue::Object(o) = &f.value else {
                        self.test_wrong(file, f, "`reasons: { email: no_consent }`");
                        continue;
                    };
                    for r in &o.fields {
                        self.test_declared(file, &r.name, "channel", Code::UnknownChannel);
                        self.test_word(file, r, REASONS, "a reason");
                    }
                }
                "content" => {
                    let TestValue::Object(o) = &f.value else {
                        self.test_wrong(file, f, "`content: { subject: \"…\" }`");
                        continue;
                    };
                    self.test_content(file, o, template);
                }
                _ => {}
            }
        }
    }

    /// `content: { field: "…" }`: fields some block of the template (or of any
    /// template) has; string values.
    fn test_content(&mut self, file: FileId, o: &'a TestObject, template: Option<&'a str>) {
        let templates: Vec<&TemplateDecl> = match template {
            Some(t) => match self.env.templates.get(t) {
                Some(item) => vec![item.node],
                // Reported at `template:`.
                None => return,
            },
            None => self.env.templates.values().map(|t| t.node).collect(),
        };
        let known: Vec<&str> = templates
            .iter()
            .flat_map(|t| &t.blocks)
            .flat_map(|b| &b.fields)
            .map(|f| f.name.name.as_str())
            .collect();
        for f in &o.fields {
            if known.contains(&f.name.name.as_str()) {
                self.test_value(file, f, Ty::STRING);
                continue;
            }
            let help = did_you_mean(&f.name.name, known.iter().copied()).unwrap_or_else(|| {
                format!("its blocks have {}", list_or_none(known.iter().copied()))
            });
            let whose =
                template.map_or("no template".to_string(), |t| format!("the template `{t}`"));
            self.unknown_labelled(
                file,
                Code::UnknownTestName,
                &f.name,
                format!("{whose} has no field `{}`", f.name.name),
                help,
                "unknown",
            );
        }
    }

    /// A journey, template, channel or event named by an expectation.
    fn test_name(&mut self, file: FileId, f: &'a TestField, keyword: &'static str, code: Code) {
        match ident_value(&f.value) {
            Some(name) => self.test_declared(file, name, keyword, code),
            None => self.test_wrong(file, f, &format!("the name of a {keyword}, without quotes")),
        }
    }

    fn test_declared(&mut self, file: FileId, name: &'a Ident, keyword: &'static str, code: Code) {
        let names: Vec<&str> = match keyword {
            "journey" => self.env.journeys.keys().copied().collect(),
            "template" => self.env.templates.keys().copied().collect(),
            "channel" => self.env.channels.keys().copied().collect(),
            _ => self.env.events.keys().copied().collect(),
        };
        let broken = self.env.is_broken(keyword, &name.name);
        if broken || names.contains(&name.name.as_str()) {
            self.references.decl(file, name.span, keyword, &name.name);
            return;
        }
        let help = did_you_mean(&name.name, names.iter().copied()).unwrap_or_else(|| {
            format!("the {keyword}s are {}", list_or_none(names.iter().copied()))
        });
        self.unknown(
            file,
            code,
            name,
            format!("unknown {keyword} `{}`", name.name),
            help,
        );
    }

    /// An arm of a split (of the expectation's journey, when it names one).
    fn test_arm(&mut self, file: FileId, f: &'a TestField, journey: Option<&'a str>) {
        let Some(name) = ident_value(&f.value) else {
            self.test_wrong(file, f, "the name of a split arm, without quotes");
            return;
        };
        let journeys: Vec<&JourneyDecl> = match journey {
            Some(j) => self
                .env
                .journeys
                .get(j)
                .map(|i| i.node)
                .into_iter()
                .collect(),
            None => self.env.journeys.values().map(|i| i.node).collect(),
        };
        if journey.is_some() && journeys.is_empty() {
            return;
        }
        let mut arms = Vec::new();
        for j in journeys {
            collect_arms(&j.steps, &mut arms);
        }
        if arms.contains(&name.name.as_str()) {
            if let Some(j) = journey {
                self.references.add(
                    file,
                    name.span,
                    Symbol::Arm(j.to_string(), name.name.clone()),
                );
            }
            return;
        }
        let help = did_you_mean(&name.name, arms.iter().copied())
            .unwrap_or_else(|| format!("the arms are {}", list_or_none(arms.iter().copied())));
        let whose = journey.map_or("no journey".to_string(), |j| format!("the journey `{j}`"));
        self.unknown_labelled(
            file,
            Code::UnknownTestName,
            name,
            format!("{whose} has no split arm `{}`", name.name),
            help,
            "unknown",
        );
    }

    /// A word from a fixed list (`quiet`, `active` …), bare or quoted.
    fn test_word(&mut self, file: FileId, f: &'a TestField, words: &[&str], what: &str) {
        let Some(name) = ident_value(&f.value) else {
            self.test_wrong(file, f, &format!("{what}, without quotes"));
            return;
        };
        if words.contains(&name.name.as_str()) {
            return;
        }
        let help = did_you_mean(&name.name, words.iter().copied())
            .unwrap_or_else(|| format!("it is one of {}", list_or_none(words.iter().copied())));
        self.unknown_labelled(
            file,
            Code::UnknownTestName,
            name,
            format!("`{}` is not {what}", name.name),
            help,
            "unknown",
        );
    }

    /// A literal of type `expected` (optional types also take `none`).
    fn test_value(&mut self, file: FileId, f: &'a TestField, expected: Ty) {
        let TestValue::Expr(e) = &f.value else {
            self.test_wrong(file, f, &format!("a {expected}"));
            return;
        };
        let Some(found) = literal_ty(e) else {
            self.diags.push(
                Diagnostic::new(
                    Code::TestNotLiteral,
                    format!(
                        "`{}` is not a literal: a test gives values as they would arrive",
                        self.snippet(file, e.span)
                    ),
                    Label::new(file, e.span, "not a literal"),
                )
                .with_help(format!(
                    "write a {expected} literal, e.g. `{}`",
                    expected.example_default()
                )),
            );
            return;
        };
        if found.base == Base::Error {
            return;
        }
        let fits = if found.base == Base::None {
            expected.optional
        } else {
            found.fits(expected)
        };
        if !fits {
            let help = match (found.base, expected.base) {
                (Base::String, Base::Number) => "write the number without quotes".to_string(),
                (Base::Number, Base::String) => "write the text in quotes".to_string(),
                (Base::None, _) => format!(
                    "`{}` is not optional: give a {}",
                    f.name.name,
                    expected.required()
                ),
                _ => format!(
                    "give a {} literal, e.g. `{}`",
                    expected.required(),
                    expected.example_default()
                ),
            };
            self.diags.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!(
                        "`{}` is a {}, but this value is a {found}",
                        f.name.name,
                        expected.required()
                    ),
                    Label::new(file, e.span, format!("a {found}")),
                )
                .with_help(help),
            );
            return;
        }
        if expected.base == Base::Timezone
            && let ExprKind::Str(s) = &e.kind
            && let Some(zone) = s.as_plain()
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            self.diags.push(
                Diagnostic::new(
                    Code::UnknownTimeZone,
                    format!("`{zone}` is not an IANA time zone"),
                    Label::new(file, e.span, "unknown zone"),
                )
                .with_help("write a zone name such as \"Europe/Paris\" or \"America/New_York\""),
            );
        }
    }

    fn test_wrong(&mut self, file: FileId, f: &'a TestField, expected: &str) {
        let span = match &f.value {
            TestValue::Expr(e) => e.span,
            TestValue::Object(o) => o.span,
        };
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                format!("`{}` takes {expected}", f.name.name),
                Label::new(file, span, "not that"),
            )
            .with_help(format!("write `{}: …` with {expected}", f.name.name)),
        );
    }
}

/// The type of a literal value; `None` when the expression is not a literal.
fn literal_ty(e: &Expr) -> Option<Ty> {
    Some(match &e.kind {
        ExprKind::Number(_) => Ty::NUMBER,
        ExprKind::Unary(UnaryOp::Neg, inner) if matches!(inner.kind, ExprKind::Number(_)) => {
            Ty::NUMBER
        }
        ExprKind::Str(s) if s.as_plain().is_some() => Ty::STRING,
        ExprKind::Bool(_) => Ty::BOOL,
        ExprKind::None => Ty::of(Base::None),
        ExprKind::Duration(_) => Ty::DURATION,
        ExprKind::TimeOfDay(_) => Ty::TIME_OF_DAY,
        ExprKind::Timestamp { .. } => Ty::TIME,
        ExprKind::List(items) => {
            let tys: Option<Vec<Ty>> = items.iter().map(literal_ty).collect();
            match tys?.first() {
                None => Ty::of(Base::EmptyList),
                Some(t) if t.base == Base::Number => Ty::of(Base::ListNumber),
                Some(t) if t.base == Base::String => Ty::of(Base::ListString),
                Some(_) => Ty::ERROR,
            }
        }
        ExprKind::Error => Ty::ERROR,
        _ => return None,
    })
}

/// A bare name (`cart_recovery`) or a plain string used as one.
fn ident_value(v: &TestValue) -> Option<&Ident> {
    match v {
        TestValue::Expr(Expr {
            kind: ExprKind::Path(p),
            ..
        }) if p.segments.len() == 1 => p.segments.first(),
        _ => None,
    }
}

fn name_value(v: &TestValue) -> Option<&str> {
    ident_value(v).map(|i| i.name.as_str())
}

fn collect_arms<'a>(steps: &'a [Step], arms: &mut Vec<&'a str>) {
    for step in steps {
        match &step.kind {
            StepKind::Split { arms: split } => {
                for arm in split {
                    arms.push(&arm.name.name);
                    collect_arms(arm.body.as_deref().unwrap_or_default(), arms);
                }
            }
            StepKind::If {
                then, otherwise, ..
            } => {
                collect_arms(then, arms);
                match otherwise {
                    Some(Else::Block(b)) => collect_arms(b, arms),
                    Some(Else::If(step)) => collect_arms(std::slice::from_ref(step), arms),
                    None => {}
                }
            }
            StepKind::WaitFor {
                then, otherwise, ..
            } => {
                collect_arms(then, arms);
                collect_arms(otherwise.as_deref().unwrap_or_default(), arms);
            }
            _ => {}
        }
    }
}

fn list_or_none<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
