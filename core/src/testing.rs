//! (1.1) Running `test` declarations (LANGUAGE.md §10): each on a fresh
//! runtime, its inputs fed as typed events, its expectations matched against
//! the decisions produced so far, exactly as `nudge run --explain` writes them
//! (§8), so that a test reads the very output a sender receives.
//!
//! The checker has typed every test against the schema; what cannot be turned
//! into input here (a name the program does not have) is reported as a failed
//! step rather than a panic.

use crate::ir::{Program, Type, Value};
use crate::runtime::{Body, Decision, Engine, Incoming, time};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use serde_json::Value as Json;
use std::sync::Arc;

/// A test of the policy set, with where it is.
pub struct Case<'a> {
    pub file: FileId,
    pub decl: &'a Decl,
    pub test: &'a TestDecl,
}

/// Every test of the set whose name contains `filter`, in file and source order.
pub fn cases<'a>(modules: &'a [(FileId, Module)], filter: Option<&str>) -> Vec<Case<'a>> {
    modules
        .iter()
        .flat_map(|(file, module)| {
            module
                .decls
                .iter()
                .filter_map(move |decl| match &decl.kind {
                    DeclKind::Test(test) => Some(Case {
                        file: *file,
                        decl,
                        test,
                    }),
                    _ => None,
                })
        })
        .filter(|c| filter.is_none_or(|f| c.test.name.name.contains(f)))
        .collect()
}

/// What a test did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every decision, as the JSON objects `nudge run --explain` writes.
    pub decisions: Vec<Json>,
    pub failures: Vec<Failure>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// An expectation that did not hold (or a step that could not run).
#[derive(Debug, Clone)]
pub struct Failure {
    /// The step, as written.
    pub span: Span,
    pub message: String,
    /// The decisions that came closest, best first, each with the fields
    /// that differ: (field, expected, found).
    pub closest: Vec<Closest>,
}

#[derive(Debug, Clone)]
pub struct Closest {
    pub decision: Json,
    pub differences: Vec<(String, String, String)>,
}

/// How many near misses a failure shows.
const CLOSEST: usize = 3;

/// Runs one test on a fresh engine; `prepare` attaches what `nudge run`
/// would (the JIT).
pub fn run(
    program: &Arc<Program>,
    case: &Case<'_>,
    text: &str,
    prepare: impl FnOnce(&mut Engine),
) -> Outcome {
    let mut engine = Engine::new(Arc::clone(program));
    engine.set_explain(true);
    prepare(&mut engine);
    let mut produced: Vec<Decision> = Vec::new();
    let mut decisions: Vec<Json> = Vec::new();
    let mut matched: Vec<bool> = Vec::new();
    let mut failures = Vec::new();
    let mut clock: Option<i64> = None;
    for (n, step) in case.test.steps.iter().enumerate() {
        match step {
            TestStep::At { time, input, span } => {
                let at = match (time, clock) {
                    (TestTime::At { nanos, .. }, _) => *nanos,
                    (TestTime::After(d), Some(c)) => {
                        c.saturating_add((d.seconds as i64).saturating_mul(1_000_000_000))
                    }
                    _ => {
                        failures.push(failure(*span, "this step has no time to run at"));
                        break;
                    }
                };
                let at = clock.map_or(at, |c| c.max(at));
                clock = Some(at);
                match input {
                    None => while engine.advance_step(at, &mut produced) {},
                    Some(input) => match incoming(program, input, at, &case.test.name.name, n) {
                        Ok(event) => {
                            engine.process(event, &mut produced);
                        }
                        Err(message) => {
                            failures.push(failure(*span, &message));
                            break;
                        }
                    },
                }
                for d in produced.drain(..) {
                    let line = crate::io::output::decision_json(&d);
                    decisions.push(serde_json::from_str(&line).unwrap_or(Json::Null));
                    matched.push(false);
                }
            }
            TestStep::Expect {
                no,
                kind,
                fields,
                span,
            } => {
                failures.extend(expect(
                    &decisions,
                    &mut matched,
                    no.is_some(),
                    kind,
                    fields.as_ref(),
                    text,
                    *span,
                ));
            }
        }
    }
    Outcome {
        decisions,
        failures,
    }
}

/// An `expect [no] KIND { … }` against the decisions so far: a decision it
/// matches is used up (`no`: none may match); the failure when it fails.
fn expect(
    decisions: &[Json],
    matched: &mut [bool],
    no: bool,
    kind: &Ident,
    fields: Option<&TestObject>,
    text: &str,
    span: Span,
) -> Option<Failure> {
    let expected = Expected::new(&kind.name, fields, text);
    let hit = decisions
        .iter()
        .enumerate()
        .position(|(i, d)| (no || !matched[i]) && expected.matches(d));
    match (no, hit) {
        (false, Some(i)) => {
            matched[i] = true;
            None
        }
        (false, None) => Some(Failure {
            span,
            message: if decisions.is_empty() {
                "no decision was produced before this expectation".into()
            } else {
                format!(
                    "no {} decision so far matches{}",
                    kind.name,
                    if expected.fields.is_empty() {
                        String::new()
                    } else {
                        " every field".into()
                    }
                )
            },
            closest: expected.closest(decisions, matched),
        }),
        (true, Some(i)) => Some(Failure {
            span,
            message: format!("a {} decision matches, and none should", kind.name),
            closest: vec![Closest {
                decision: decisions[i].clone(),
                differences: Vec::new(),
            }],
        }),
        (true, None) => None,
    }
}

fn failure(span: Span, message: &str) -> Failure {
    Failure {
        span,
        message: message.to_string(),
        closest: Vec::new(),
    }
}

/// An expectation: the kind and each field as the output writes it.
struct Expected {
    kind: String,
    fields: Vec<(String, Want)>,
}

enum Want {
    Text(String),
    /// `content` and `reasons`: the keys given, others ignored.
    Map(Vec<(String, String)>),
}

impl Want {
    fn matches(&self, found: Option<&Json>) -> bool {
        match (self, found) {
            (Want::Text(t), Some(Json::String(s))) => s == t,
            (Want::Map(pairs), Some(Json::Object(o))) => pairs
                .iter()
                .all(|(k, v)| o.get(k).and_then(Json::as_str) == Some(v.as_str())),
            _ => false,
        }
    }

    /// What the decision has in the field: for `content` and `reasons`, the
    /// keys the expectation gives only, so that the two read side by side.
    fn found(&self, found: Option<&Json>) -> String {
        match (self, found) {
            (Want::Map(pairs), Some(Json::Object(o))) => {
                let inner: Vec<String> = pairs
                    .iter()
                    .map(|(k, _)| format!("{k}: {}", shown(o.get(k))))
                    .collect();
                format!("{{ {} }}", inner.join(", "))
            }
            _ => shown(found),
        }
    }

    fn show(&self) -> String {
        match self {
            Want::Text(t) => t.clone(),
            Want::Map(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

impl Expected {
    fn new(kind: &str, fields: Option<&TestObject>, text: &str) -> Expected {
        let fields = fields
            .map(|o| {
                o.fields
                    .iter()
                    .map(|f| {
                        let want = match &f.value {
                            TestValue::Expr(e) => Want::Text(text_of(e, text)),
                            TestValue::Object(o) => Want::Map(
                                o.fields
                                    .iter()
                                    .map(|p| {
                                        let v = match &p.value {
                                            TestValue::Expr(e) => text_of(e, text),
                                            TestValue::Object(_) => String::new(),
                                        };
                                        (p.name.name.clone(), v)
                                    })
                                    .collect(),
                            ),
                        };
                        (f.name.name.clone(), want)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Expected {
            kind: kind.to_string(),
            fields,
        }
    }

    fn matches(&self, d: &Json) -> bool {
        d.get("kind").and_then(Json::as_str) == Some(self.kind.as_str())
            && self.fields.iter().all(|(k, w)| w.matches(d.get(k)))
    }

    /// The unmatched decisions of the same kind with the most fields equal.
    fn closest(&self, decisions: &[Json], matched: &[bool]) -> Vec<Closest> {
        let mut scored: Vec<(usize, usize, Closest)> = decisions
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                !matched[*i] && d.get("kind").and_then(Json::as_str) == Some(self.kind.as_str())
            })
            .map(|(i, d)| {
                let differences: Vec<(String, String, String)> = self
                    .fields
                    .iter()
                    .filter(|(k, w)| !w.matches(d.get(k)))
                    .map(|(k, w)| (k.clone(), w.show(), w.found(d.get(k))))
                    .collect();
                let equal = self.fields.len() - differences.len();
                (
                    equal,
                    i,
                    Closest {
                        decision: d.clone(),
                        differences,
                    },
                )
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(CLOSEST).map(|s| s.2).collect()
    }
}

/// A decision's field for people: strings bare, objects as `{ k: v }`.
fn shown(v: Option<&Json>) -> String {
    match v {
        None => "(none)".into(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Object(o)) => {
            let inner: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}: {}", shown(Some(v))))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
        Some(other) => other.to_string(),
    }
}

/// A value as the output writes it: names and strings as text, timestamps in
/// the output's UTC form.
fn text_of(e: &Expr, text: &str) -> String {
    match &e.kind {
        ExprKind::Str(s) => s.as_plain().unwrap_or_default(),
        ExprKind::Path(p) => p.root().to_string(),
        ExprKind::Timestamp { seconds, nanos } => time::rfc3339(
            seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(*nanos)),
        ),
        _ => text.get(e.span.range()).unwrap_or_default().to_string(),
    }
}

/// The input event of an `at` step, typed as the program declares it.
fn incoming(
    program: &Program,
    input: &TestInput,
    at: i64,
    test: &str,
    step: usize,
) -> Result<Incoming<'static>, String> {
    let message_id = Some(format!("test:{test}:{step}").into());
    let (profile, body) = match input {
        TestInput::Identify {
            profile, traits, ..
        } => (profile, identify(program, traits.as_ref())?),
        TestInput::Event {
            event,
            profile,
            props,
            ..
        } => (profile, track(program, event, props.as_ref())?),
    };
    Ok(Incoming::new(
        profile.as_plain().unwrap_or_default(),
        at,
        message_id,
        body,
    ))
}

/// `identify "P" { trait: value, …, consent { topic: bool, … } }`.
fn identify(program: &Program, traits: Option<&TestObject>) -> Result<Body, String> {
    let mut attrs = Vec::new();
    let mut consents = Vec::new();
    for f in traits.iter().flat_map(|o| &o.fields) {
        if f.name.name == "consent" {
            let TestValue::Object(topics) = &f.value else {
                return Err("`consent` takes `{ topic: true, … }`".into());
            };
            consents.extend(consents_of(program, topics)?);
            continue;
        }
        let slot = program
            .attrs
            .iter()
            .position(|a| a.name == f.name.name)
            .ok_or_else(|| format!("the profile has no attribute `{}`", f.name.name))?;
        let attr = &program.attrs[slot];
        let value = match value(&f.value, attr.ty.ty)? {
            // `none` resets the attribute, as `null` does in a stream.
            Value::None => attr.default.clone(),
            v => v,
        };
        attrs.push((slot, value));
    }
    Ok(Body::Identify { attrs, consents })
}

/// The topics of an `identify`'s `consent { … }`, each granted or not.
fn consents_of(program: &Program, topics: &TestObject) -> Result<Vec<(usize, bool)>, String> {
    let mut consents = Vec::new();
    for t in &topics.fields {
        let slot = program
            .consents
            .iter()
            .position(|c| c.name == t.name.name)
            .ok_or_else(|| format!("unknown consent topic `{}`", t.name.name))?;
        let granted = match &t.value {
            TestValue::Expr(Expr {
                kind: ExprKind::Bool(b),
                ..
            }) => *b,
            _ => return Err(format!("`{}` takes true or false", t.name.name)),
        };
        consents.push((slot, granted));
    }
    Ok(consents)
}

/// `EVENT "P" { prop: value, … }`: every declared property given or optional,
/// and no other.
fn track(program: &Program, event: &Ident, props: Option<&TestObject>) -> Result<Body, String> {
    let kind = program
        .events
        .iter()
        .position(|e| e.name == event.name && !e.builtin)
        .ok_or_else(|| format!("unknown event `{}`", event.name))?;
    let def = &program.events[kind];
    let given = props.as_ref().map_or(&[][..], |o| o.fields.as_slice());
    let mut values = Vec::with_capacity(def.props.len());
    for p in &def.props {
        let v = match given.iter().find(|f| f.name.name == p.name) {
            Some(f) => value(&f.value, p.ty.ty)?,
            None if p.ty.optional => Value::None,
            None => {
                return Err(format!("`{}` lacks the property `{}`", event.name, p.name));
            }
        };
        values.push(v);
    }
    if let Some(f) = given
        .iter()
        .find(|f| !def.props.iter().any(|p| p.name == f.name.name))
    {
        return Err(format!(
            "the event `{}` has no property `{}`",
            event.name, f.name.name
        ));
    }
    Ok(Body::Track {
        event: kind,
        props: values,
    })
}

/// A literal as a runtime value of type `ty`.
fn value(v: &TestValue, ty: Type) -> Result<Value, String> {
    let TestValue::Expr(e) = v else {
        return Err("an object is not a value here".into());
    };
    Ok(match (&e.kind, ty) {
        (ExprKind::None, _) => Value::None,
        (ExprKind::Number(n), Type::Number) => Value::Number(*n),
        (ExprKind::Unary(UnaryOp::Neg, inner), Type::Number) => match inner.kind {
            ExprKind::Number(n) => Value::Number(-n),
            _ => return Err("not a number".into()),
        },
        (ExprKind::Str(s), Type::String | Type::Timezone) => {
            Value::Str(s.as_plain().unwrap_or_default().into())
        }
        (ExprKind::Bool(b), Type::Bool) => Value::Bool(*b),
        (ExprKind::Timestamp { seconds, nanos }, Type::Time) => Value::Time(
            seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(*nanos)),
        ),
        (ExprKind::Duration(s), Type::Duration) => {
            Value::Duration((*s as i64).saturating_mul(1_000_000_000))
        }
        (ExprKind::TimeOfDay(m), Type::TimeOfDay) => {
            Value::Duration(i64::from(*m) * 60 * 1_000_000_000)
        }
        (ExprKind::List(items), Type::ListNumber | Type::ListString) => {
            let element = if ty == Type::ListNumber {
                Type::Number
            } else {
                Type::String
            };
            let values: Result<Vec<Value>, String> = items
                .iter()
                .map(|i| value(&TestValue::Expr(i.clone()), element))
                .collect();
            Value::List(values?.into())
        }
        _ => return Err("a value of the wrong type".into()),
    })
}
