//! The line reader against the reader it replaced, kept here as an oracle: the
//! first version decoded every line into `serde_json::Value`s (slow, but plainly
//! right); the one-pass reader must accept the same lines, build the same events
//! and reject the same lines for the same reasons, over generated lines that put
//! every member in every order, of every JSON type, duplicated, null or missing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

use nudge::io::input::{DeadLetter, Reader};
use nudge::runtime::{Body, Incoming};
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use std::sync::Arc;

/// The first reader, verbatim but for the borrowed ids of today's `Incoming`.
mod reference {
    use nudge::ir::{Program, SlotType, Type, Value};
    use nudge::runtime::{Body, Incoming, time};
    use serde_json::Value as Json;
    use serde_json::value::RawValue;
    use std::borrow::Cow;
    use std::collections::HashMap;

    /// Validates lines against one program's schema.
    pub struct Reader {
        program: std::sync::Arc<Program>,
        /// Incoming event names (`from`) to event indices.
        by_external: HashMap<String, usize>,
        attr_by_name: HashMap<String, usize>,
        consent_by_name: HashMap<String, usize>,
    }

    /// A rejected line's reason.
    pub use nudge::io::input::DeadLetter;

    impl Reader {
        pub fn new(program: std::sync::Arc<Program>) -> Reader {
            let by_external = program
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| (e.external.clone(), i))
                .collect();
            let attr_by_name = program
                .attrs
                .iter()
                .enumerate()
                .map(|(i, a)| (a.name.clone(), i))
                .collect();
            let consent_by_name = program
                .consents
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect();
            Reader {
                program,
                by_external,
                attr_by_name,
                consent_by_name,
            }
        }

        pub fn read(&self, line: &str) -> Result<Incoming<'static>, DeadLetter> {
            // The envelope is read without building a tree; properties and traits are
            // kept raw and only the declared ones are decoded. serde would read a
            // struct from an array too, so anything but an object is classified here.
            let envelope: Envelope<'_> = match serde_json::from_str(line)
                .ok()
                .filter(|_| line.trim_start().starts_with('{'))
            {
                Some(e) => e,
                None => {
                    return Err(match serde_json::from_str::<Json>(line) {
                        Err(e) => dead(format!("not JSON: {e}")),
                        Ok(Json::Object(_)) => match serde_json::from_str::<Envelope<'_>>(line) {
                            Err(e) => dead(format!("malformed event: {e}")),
                            Ok(_) => dead("malformed event"),
                        },
                        Ok(_) => dead("not a JSON object"),
                    });
                }
            };
            if envelope.kind.as_deref() == Some("tick") {
                let timestamp = self.timestamp(envelope.timestamp)?;
                return Ok(Incoming {
                    profile: Cow::Borrowed(""),
                    timestamp,
                    message_id: None,
                    body: Body::Tick,
                    context: None,
                    ignored_name: None,
                });
            }
            let wrong = |raw: Option<&RawValue>| {
                raw.is_some_and(|r| r.get() != "null" && id_text(r).is_none())
            };
            let wrong_id = if wrong(envelope.user_id) {
                Some("userId")
            } else if wrong(envelope.anonymous_id) {
                Some("anonymousId")
            } else {
                None
            };
            let profile = [envelope.user_id, envelope.anonymous_id]
                .into_iter()
                .flatten()
                .find_map(|raw| id_text(raw).filter(|s| !s.is_empty()))
                .ok_or_else(|| match wrong_id {
                    Some(key) => dead(format!(
                        "no profile id: `{key}` is not a string or a number, and no other id is given"
                    )),
                    None => dead("no profile id: `userId` and `anonymousId` are both missing"),
                })?;
            let timestamp = self.timestamp(envelope.timestamp)?;
            let message_id = envelope.message_id.and_then(id_text);
            let (consents, unknown_categories) = self.context(envelope.context)?;
            let context = (!consents.is_empty() || !unknown_categories.is_empty()).then(|| {
                Box::new(nudge::runtime::ContextConsent {
                    consents,
                    unknown_categories,
                })
            });
            let mut ignored_name = None;
            let body = match envelope.kind.as_deref() {
                Some("track") => {
                    let body = self.track(envelope.event.as_deref(), envelope.properties)?;
                    if body == Body::Ignored {
                        ignored_name = envelope.event.map(|e| Cow::Owned(e.into_owned()));
                    }
                    body
                }
                Some("identify") => self.identify(envelope.traits)?,
                Some(k @ ("page" | "screen" | "group" | "alias")) => {
                    ignored_name = Some(Cow::Owned(format!("({k})")));
                    Body::Ignored
                }
                Some(other) => {
                    return Err(dead(format!(
                        "unknown `type` `{other}`: Segment calls are `track`, `identify`, `page`, `screen`, `group` and `alias`"
                    )));
                }
                None => {
                    return Err(dead(
                        "no `type`: a Segment call says what it is (`track`, `identify` …)",
                    ));
                }
            };
            Ok(Incoming {
                profile: Cow::Owned(profile),
                timestamp,
                message_id: message_id.map(Cow::Owned),
                body,
                context,
                ignored_name,
            })
        }

        fn timestamp(&self, raw: Option<&RawValue>) -> Result<i64, DeadLetter> {
            match raw {
                Some(raw) => match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
                    Ok(s) => time::parse_rfc3339(&s)
                        .ok_or_else(|| {
                            if chrono::DateTime::parse_from_rfc3339(&s).is_ok() {
                                dead(format!("invalid timestamp `{s}`: outside the years 1678 to 2261 that Nudge can represent"))
                            } else {
                                dead(format!("invalid timestamp `{s}`: not RFC 3339"))
                            }
                        }),
                    Err(_) => Err(dead("invalid timestamp: not a string")),
                },
                None => Err(dead("no timestamp")),
            }
        }

        /// `context.consent.categoryPreferences`, read as a tree.
        #[allow(clippy::type_complexity)]
        fn context(
            &self,
            raw: Option<&RawValue>,
        ) -> Result<(Vec<(usize, bool)>, Vec<Cow<'static, str>>), DeadLetter> {
            let context: Json = match raw {
                Some(raw) => serde_json::from_str(raw.get()).unwrap_or(Json::Null),
                None => Json::Null,
            };
            let Some(Json::Object(prefs)) = context
                .get("consent")
                .and_then(|c| c.get("categoryPreferences"))
            else {
                return Ok((Vec::new(), Vec::new()));
            };
            let mut topics = Vec::new();
            let mut unknown = Vec::new();
            for (name, value) in prefs {
                match (self.consent_by_name.get(name), value) {
                    (Some(&t), Json::Bool(b)) => topics.push((t, *b)),
                    (Some(_), _) => {
                        return Err(dead(format!(
                            "consent category `{name}` in `context.consent.categoryPreferences` is not true or false"
                        )));
                    }
                    (None, _) => unknown.push(Cow::Owned(name.clone())),
                }
            }
            Ok((topics, unknown))
        }

        fn track(
            &self,
            name: Option<&str>,
            properties: Option<&RawValue>,
        ) -> Result<Body, DeadLetter> {
            let Some(name) = name else {
                return Err(dead("a `track` call without an `event` name"));
            };
            let Some(&event) = self.by_external.get(name) else {
                return Ok(Body::Ignored);
            };
            let def = &self.program.events[event];
            let props: RawMap<'_> = match properties {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|_| dead("`properties` is not an object"))?,
                None => RawMap::default(),
            };
            let mut values = Vec::with_capacity(def.props.len());
            for prop in &def.props {
                let what = || format!("property `{}` of event `{}`", prop.name, def.name);
                let value = props
                    .get(&prop.name)
                    .map(|raw| serde_json::from_str::<Json>(raw.get()))
                    .transpose();
                let value = value.map_err(|_| dead(format!("{} is not valid JSON", what())))?;
                values.push(convert(value.as_ref(), prop.ty, &what)?);
            }
            Ok(Body::Track {
                event,
                props: values,
            })
        }

        fn identify(&self, traits: Option<&RawValue>) -> Result<Body, DeadLetter> {
            let traits: serde_json::Map<String, Json> = match traits {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|_| dead("`traits` is not an object"))?,
                None => serde_json::Map::new(),
            };
            let mut attrs = Vec::new();
            let mut consents = Vec::new();
            for (key, value) in &traits {
                if key == "consent" {
                    let Json::Object(topics) = value else {
                        return Err(dead("the `consent` trait is not an object of topics"));
                    };
                    // A topic that is not declared is refused, before anything else.
                    if let Some(name) = topics
                        .keys()
                        .find(|t| !self.consent_by_name.contains_key(*t))
                    {
                        let hint = nudge::diagnostic::did_you_mean(
                            name,
                            self.program.consents.iter().map(|c| c.name.as_str()),
                        )
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                        return Err(dead(format!("unknown consent topic `{name}`{hint}")));
                    }
                    for (topic, granted) in topics {
                        let Some(&t) = self.consent_by_name.get(topic) else {
                            continue;
                        };
                        match granted {
                            Json::Bool(b) => consents.push((t, *b)),
                            _ => {
                                return Err(dead(format!(
                                    "consent for `{topic}` is not true or false"
                                )));
                            }
                        }
                    }
                    continue;
                }
                let Some(&slot) = self.attr_by_name.get(key) else {
                    continue;
                };
                let attr = &self.program.attrs[slot];
                let value = if value.is_null() {
                    // `null` clears an optional attribute, resets one with a default.
                    attr.default.clone()
                } else {
                    let what = || format!("trait `{key}`");
                    convert(
                        Some(value),
                        SlotType {
                            optional: true,
                            ..attr.ty
                        },
                        &what,
                    )?
                };
                attrs.push((slot, value));
            }
            Ok(Body::Identify { attrs, consents })
        }
    }

    /// The fields of a Segment call Nudge reads; everything else is ignored.
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        event: Option<Cow<'a, str>>,
        #[serde(rename = "userId", borrow, default)]
        user_id: Option<&'a RawValue>,
        #[serde(rename = "anonymousId", borrow, default)]
        anonymous_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        timestamp: Option<&'a RawValue>,
        #[serde(rename = "messageId", borrow, default)]
        message_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        properties: Option<&'a RawValue>,
        #[serde(borrow, default)]
        traits: Option<&'a RawValue>,
        #[serde(borrow, default)]
        context: Option<&'a RawValue>,
    }

    /// An object's members, undecoded.
    #[derive(serde::Deserialize, Default)]
    #[serde(transparent)]
    struct RawMap<'a>(#[serde(borrow)] HashMap<Cow<'a, str>, &'a RawValue>);

    impl RawMap<'_> {
        fn get(&self, key: &str) -> Option<&RawValue> {
            self.0.get(key).copied()
        }
    }

    /// A string or number id as text (`null` and other JSON are no id).
    fn id_text(raw: &RawValue) -> Option<String> {
        let text = raw.get();
        if text.starts_with('"') {
            serde_json::from_str::<Cow<'_, str>>(text)
                .ok()
                .map(Cow::into_owned)
        } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            serde_json::from_str::<serde_json::Number>(text)
                .ok()
                .map(|n| n.to_string())
        } else {
            None
        }
    }

    fn dead(reason: impl Into<String>) -> DeadLetter {
        DeadLetter(reason.into())
    }

    fn json_kind(v: &Json) -> &'static str {
        match v {
            Json::Null => "null",
            Json::Bool(_) => "a bool",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    fn type_name(t: Type) -> &'static str {
        match t {
            Type::Number => "a number",
            Type::String => "a string",
            Type::Bool => "a bool",
            Type::Time => "an RFC 3339 time",
            Type::Duration => "a duration in seconds",
            Type::Timezone => "a time zone name",
            Type::TimeOfDay => "a time of day `HH:MM`",
            Type::ListNumber => "a list of numbers",
            Type::ListString => "a list of strings",
            Type::Any => "a value",
        }
    }

    /// A JSON value as a slot of type `ty`; `what` names it for the reason.
    fn convert(
        v: Option<&Json>,
        ty: SlotType,
        what: &dyn Fn() -> String,
    ) -> Result<Value, DeadLetter> {
        let v = match v {
            None | Some(Json::Null) if ty.optional => return Ok(Value::None),
            None | Some(Json::Null) => return Err(dead(format!("missing {}", what()))),
            Some(v) => v,
        };
        let wrong = || {
            dead(format!(
                "{} should be {}, found {}",
                what(),
                type_name(ty.ty),
                json_kind(v)
            ))
        };
        Ok(match (ty.ty, v) {
            (Type::Number, Json::Number(n)) => Value::Number(n.as_f64().ok_or_else(wrong)?),
            (Type::String, Json::String(s)) => Value::Str(s.as_str().into()),
            (Type::Bool, Json::Bool(b)) => Value::Bool(*b),
            (Type::Time, Json::String(s)) => Value::Time(time::parse_rfc3339(s).ok_or_else(wrong)?),
            (Type::Duration, Json::Number(n)) => {
                let seconds = n.as_f64().ok_or_else(wrong)?;
                let nanos = (seconds * 1e9).round();
                if !nanos.is_finite() || nanos.abs() > 9.2e18 {
                    return Err(wrong());
                }
                Value::Duration(nanos as i64)
            }
            (Type::Timezone, Json::String(s)) => {
                if s.parse::<chrono_tz::Tz>().is_err() {
                    return Err(dead(format!("{} names an unknown time zone `{s}`", what())));
                }
                Value::Str(s.as_str().into())
            }
            (Type::ListNumber, Json::Array(items)) => Value::List(
                items
                    .iter()
                    .map(|i| i.as_f64().map(Value::Number).ok_or_else(wrong))
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
            ),
            (Type::ListString, Json::Array(items)) => Value::List(
                items
                    .iter()
                    .map(|i| i.as_str().map(|s| Value::Str(s.into())).ok_or_else(wrong))
                    .collect::<Result<Vec<_>, _>>()?
                    .into(),
            ),
            _ => return Err(wrong()),
        })
    }
}

const SCHEMA: &str = r#"
consent email_marketing opt_out
consent sms_marketing opt_in

profile {
  email: string?
  timezone: timezone = "UTC"
  tier: string = "standard"
  ltv: number = 0
  vip: bool = false
  tags: list<string> = []
  scores: list<number> = []
  signed_up_at: time?
}

event cart from "Cart Abandoned" {
  id: string
  value: number
  coupon: string?
  at: time
  delay: duration
  zone: timezone?
  tags: list<string>
  nums: list<number>?
  ok: bool
}

event ping
"#;

fn program() -> Arc<nudge::ir::Program> {
    let mut sources = nudge::Sources::new();
    sources.add("schema.nudge", SCHEMA);
    let analysis = nudge::analyze(&sources);
    assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics);
    Arc::new(nudge::ir::lower(&analysis.modules).unwrap())
}

/// Values of every JSON type, and of every slot type, right and wrong.
fn value() -> impl Strategy<Value = Json> {
    prop::sample::select(vec![
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-3),
        json!(2.5),
        json!(1e20),
        json!(3600),
        json!(18446744073709551615u64),
        json!(""),
        json!("u1"),
        json!(" padded "),
        json!("with \"escapes\" \u{e9}"),
        json!("2026-11-29T10:00:00Z"),
        json!("2026-11-29T10:00:00.5+01:00"),
        json!("yesterday"),
        json!("Europe/Paris"),
        json!("Mars/Olympus"),
        json!([]),
        json!([1, 2.5]),
        json!(["a", "b"]),
        json!([1, "a"]),
        json!([[1]]),
        json!({}),
        json!({"x": 1}),
    ])
}

/// An object's members as text, in the order given (duplicates kept).
fn object(members: &[(String, String)]) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", Json::String(k.clone())))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Members named from `names`: either every one with a value of its declared
/// type, or a random few, each usually well typed, sometimes null or anything.
fn members(
    names: &'static [(&'static str, &'static str)],
) -> impl Strategy<Value = Vec<(String, String)>> {
    let clean: Vec<(String, String)> = names
        .iter()
        .map(|(name, good)| (name.to_string(), good.to_string()))
        .collect();
    let member = prop::sample::select(names).prop_flat_map(|(name, good)| {
        let good: Json = serde_json::from_str(good).unwrap();
        prop_oneof![4 => Just(good), 1 => Just(Json::Null), 2 => value()]
            .prop_map(move |v| (name.to_string(), v.to_string()))
    });
    let noisy = prop::collection::vec(member, 0..(names.len() + 2));
    (
        prop_oneof![1 => Just(clean), 2 => noisy],
        prop::collection::vec((0..names.len(), value()), 0..2),
    )
        .prop_map(|(mut members, changes)| {
            // A clean set with a change or two: one wrong value is found among right ones.
            for (i, v) in changes {
                if let Some(m) = members.get_mut(i) {
                    m.1 = v.to_string();
                }
            }
            members
        })
}

const PROPS: &[(&str, &str)] = &[
    ("id", r#"" c1 ""#),
    ("value", "2.5"),
    ("coupon", r#""SAVE""#),
    ("at", r#""2026-11-29T10:00:00Z""#),
    ("delay", "3600"),
    ("zone", r#""Europe/Paris""#),
    ("tags", r#"["a","b"]"#),
    ("nums", "[1,2.5]"),
    ("ok", "true"),
    ("other", r#"{"deep":[1,{"x":null}]}"#),
];
const TRAITS: &[(&str, &str)] = &[
    ("email", r#""a@example.com""#),
    ("timezone", r#""Asia/Tokyo""#),
    ("tier", r#"" gold ""#),
    ("ltv", "10"),
    ("vip", "true"),
    ("tags", r#"["a"]"#),
    ("scores", "[1]"),
    ("signed_up_at", r#""2026-11-29T10:00:00Z""#),
    ("other", "1"),
];
const TOPICS: &[(&str, &str)] = &[
    ("email_marketing", "true"),
    ("sms_marketing", "false"),
    ("email_marketng", "false"),
];
/// Categories of `context.consent.categoryPreferences` (declared or not).
const CATEGORIES: &[(&str, &str)] = &[
    ("email_marketing", "false"),
    ("sms_marketing", "true"),
    ("Advertising", "true"),
];

/// `context`: mostly without consent, sometimes with categories of every kind.
fn context() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(r#"{"ip":"10.0.0.1","library":{"name":"x"}}"#.to_string()),
        3 => section(members(CATEGORIES).prop_map(|m| object(&m)))
            .prop_map(|prefs| format!(r#"{{"ip":"10.0.0.1","consent":{{"categoryPreferences":{prefs}}}}}"#)),
        1 => value().prop_map(|v| v.to_string()),
    ]
}

/// A section (`properties`, `traits`, `consent`): usually an object, sometimes not.
fn section(inner: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![4 => inner, 1 => value().prop_map(|v| v.to_string())]
}

fn traits() -> impl Strategy<Value = String> {
    section(
        (
            members(TRAITS),
            prop::option::of(section(members(TOPICS).prop_map(|m| object(&m)))),
        )
            .prop_map(|(mut m, consent)| {
                if let Some(c) = consent {
                    m.push(("consent".into(), c));
                }
                m
            })
            .prop_shuffle()
            .prop_map(|m| object(&m)),
    )
}

/// A Segment call: the envelope's members in any order, of any type, sometimes
/// missing or repeated, with members Nudge does not read.
fn line() -> impl Strategy<Value = String> {
    let text = |options: Vec<Json>| prop::sample::select(options).prop_map(|v| v.to_string());
    let envelope = (
        text(vec![
            json!("track"),
            json!("identify"),
            json!("page"),
            json!("screen"),
            json!("tick"),
            json!("bogus"),
            json!(null),
            json!(5),
        ]),
        text(vec![
            json!("Cart Abandoned"),
            json!("ping"),
            json!("Unknown"),
            json!(null),
            json!(7),
        ]),
        value(),
        value(),
        prop_oneof![
            3 => Just(json!("2026-11-29T10:00:00Z").to_string()),
            1 => value().prop_map(|v| v.to_string()),
        ],
        value(),
        section(members(PROPS).prop_map(|m| object(&m))),
        traits(),
        context(),
        prop::collection::vec(any::<bool>(), 9),
        any::<u8>(),
    );
    envelope
        .prop_map(
            |(kind, event, user, anon, ts, mid, props, traits, context, present, repeat)| {
                let all = [
                    ("type", kind),
                    ("event", event),
                    ("userId", user.to_string()),
                    ("anonymousId", anon.to_string()),
                    ("timestamp", ts),
                    ("messageId", mid.to_string()),
                    ("properties", props),
                    ("traits", traits),
                    ("context", context),
                ];
                let mut m: Vec<(String, String)> = all
                    .iter()
                    .zip(&present)
                    // Mostly present: lines worth reading far beyond the envelope.
                    .filter(|((k, _), p)| **p || matches!(*k, "userId" | "timestamp" | "type"))
                    .map(|((k, v), _)| (k.to_string(), v.clone()))
                    .collect();
                if repeat < 8 && !m.is_empty() {
                    let again = m[repeat as usize % m.len()].clone();
                    m.push(again);
                }
                m
            },
        )
        .prop_shuffle()
        .prop_map(|m| object(&m))
}

/// Traits and topics in slot order: the order they are applied in is no part of
/// their meaning (each slot is set once).
fn normalized<'a>(read: Result<Incoming<'a>, DeadLetter>) -> Result<Incoming<'a>, DeadLetter> {
    read.map(|mut event| {
        if let Body::Identify { attrs, consents } = &mut event.body {
            attrs.sort_by_key(|(slot, _)| *slot);
            consents.sort_by_key(|(slot, _)| *slot);
        }
        if let Some(context) = event.context.as_mut() {
            context.consents.sort_by_key(|(slot, _)| *slot);
            context.unknown_categories.sort();
        }
        event
    })
}

fn same(program: &Arc<nudge::ir::Program>, line: &str) -> Result<(), TestCaseError> {
    let new = normalized(Reader::new(Arc::clone(program)).read(line));
    let old = normalized(reference::Reader::new(Arc::clone(program)).read(line));
    prop_assert_eq!(new, old, "line: {}", line);
    Ok(())
}

/// Cases per property: the short run of CI by default; `NUDGE_FUZZ_CASES=N`
/// for a long run (README, "Development").
fn fuzz_cases(default: u32) -> u32 {
    std::env::var("NUDGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(3000)))]

    #[test]
    fn one_pass_reader_agrees_with_the_first(line in line()) {
        same(&program(), &line)?;
    }

    /// Cut anywhere, with junk around: not JSON, not an object, trailing text.
    #[test]
    fn broken_lines_are_rejected_alike(line in line(), cut in any::<prop::sample::Index>(),
                                        junk in prop::sample::select(vec!["", " ", "x", "]", "{}", "\"", ","])) {
        let at = cut.index(line.len() + 1);
        let at = (0..=at).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
        same(&program(), &format!("{}{junk}", &line[..at]))?;
        same(&program(), &format!("{junk}{line}"))?;
    }
}

#[test]
fn decodes_every_slot_type() {
    let program = program();
    let line = r#"{"type":"track","event":"Cart Abandoned","userId":7,"timestamp":"2026-11-29T10:00:00Z","messageId":"m","properties":{"id":"c1","value":12.5,"at":"2026-11-29T09:00:00+01:00","delay":90,"zone":"Europe/Paris","tags":["a"],"nums":[1,2],"ok":true}}"#;
    let event = Reader::new(Arc::clone(&program)).read(line).unwrap();
    assert_eq!(event.profile, "7");
    let nudge::runtime::Body::Track { props, .. } = event.body else {
        panic!("a track call");
    };
    use nudge::ir::Value;
    assert_eq!(
        props,
        vec![
            Value::Str("c1".into()),
            Value::Number(12.5),
            Value::None,
            Value::Time(nudge::runtime::time::parse_rfc3339("2026-11-29T08:00:00Z").unwrap()),
            Value::Duration(90 * 1_000_000_000),
            Value::Str("Europe/Paris".into()),
            Value::List(vec![Value::Str("a".into())].into()),
            Value::List(vec![Value::Number(1.0), Value::Number(2.0)].into()),
            Value::Bool(true),
        ]
    );
    same(&program, line).unwrap();
}
