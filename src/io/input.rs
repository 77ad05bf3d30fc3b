//! Segment-spec JSON lines (LANGUAGE.md §7.1), validated against the schema.
//!
//! A line is either an [`Incoming`] event or a dead letter with a reason; nothing
//! half-applies: a line with one bad trait is rejected whole.
//!
//! Choices where the specification is silent: `userId` may be a string or a
//! number (as Segment's libraries send both), an empty `userId` counts as absent;
//! a line without `messageId` is processed but cannot be deduplicated; `track` and
//! `identify` are used, other types (`page`, `screen`, `group`, `alias`) are valid
//! and ignored; a `duration` property is a number of seconds.

use crate::ir::{Program, SlotType, Type, Value};
use crate::runtime::{Body, Incoming, time};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter(pub String);

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

    pub fn read(&self, line: &str) -> Result<Incoming, DeadLetter> {
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
        let profile = [envelope.user_id, envelope.anonymous_id]
            .into_iter()
            .flatten()
            .find_map(|raw| id_text(raw).filter(|s| !s.is_empty()))
            .ok_or_else(|| dead("no profile id: `userId` and `anonymousId` are both missing"))?;
        let timestamp = match envelope.timestamp {
            Some(raw) => match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
                Ok(s) => time::parse_rfc3339(&s)
                    .ok_or_else(|| dead(format!("invalid timestamp `{s}`: not RFC 3339")))?,
                Err(_) => return Err(dead("invalid timestamp: not a string")),
            },
            None => return Err(dead("no timestamp")),
        };
        let message_id = envelope.message_id.and_then(id_text);
        let body = match envelope.kind.as_deref() {
            Some("track") => self.track(envelope.event.as_deref(), envelope.properties)?,
            Some("identify") => self.identify(envelope.traits)?,
            _ => Body::Ignored,
        };
        Ok(Incoming {
            profile,
            timestamp,
            message_id,
            body,
        })
    }

    fn track(&self, name: Option<&str>, properties: Option<&RawValue>) -> Result<Body, DeadLetter> {
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
            Some(raw) => {
                serde_json::from_str(raw.get()).map_err(|_| dead("`traits` is not an object"))?
            }
            None => serde_json::Map::new(),
        };
        let mut attrs = Vec::new();
        let mut consents = Vec::new();
        for (key, value) in &traits {
            if key == "consent" {
                let Json::Object(topics) = value else {
                    return Err(dead("the `consent` trait is not an object of topics"));
                };
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
        Type::ListNumber => "a list of numbers",
        Type::ListString => "a list of strings",
        Type::Any => "a value",
    }
}

/// A JSON value as a slot of type `ty`; `what` names it for the reason.
fn convert(v: Option<&Json>, ty: SlotType, what: &dyn Fn() -> String) -> Result<Value, DeadLetter> {
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
