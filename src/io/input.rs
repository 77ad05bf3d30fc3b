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
        let json: Json = serde_json::from_str(line).map_err(|e| dead(format!("not JSON: {e}")))?;
        let Json::Object(obj) = json else {
            return Err(dead("not a JSON object"));
        };
        let profile = ["userId", "anonymousId"]
            .iter()
            .find_map(|k| match obj.get(*k) {
                Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Json::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| dead("no profile id: `userId` and `anonymousId` are both missing"))?;
        let timestamp = match obj.get("timestamp") {
            Some(Json::String(s)) => time::parse_rfc3339(s)
                .ok_or_else(|| dead(format!("invalid timestamp `{s}`: not RFC 3339")))?,
            Some(_) => return Err(dead("invalid timestamp: not a string")),
            None => return Err(dead("no timestamp")),
        };
        let message_id = match obj.get("messageId") {
            Some(Json::String(s)) => Some(s.clone()),
            Some(Json::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let body = match obj.get("type").and_then(Json::as_str) {
            Some("track") => self.track(&obj)?,
            Some("identify") => self.identify(&obj)?,
            _ => Body::Ignored,
        };
        Ok(Incoming {
            profile,
            timestamp,
            message_id,
            body,
        })
    }

    fn track(&self, obj: &serde_json::Map<String, Json>) -> Result<Body, DeadLetter> {
        let Some(name) = obj.get("event").and_then(Json::as_str) else {
            return Err(dead("a `track` call without an `event` name"));
        };
        let Some(&event) = self.by_external.get(name) else {
            return Ok(Body::Ignored);
        };
        let def = &self.program.events[event];
        let empty = serde_json::Map::new();
        let props = match obj.get("properties") {
            Some(Json::Object(p)) => p,
            None | Some(Json::Null) => &empty,
            Some(_) => return Err(dead("`properties` is not an object")),
        };
        let mut values = Vec::with_capacity(def.props.len());
        for prop in &def.props {
            let what = || format!("property `{}` of event `{}`", prop.name, def.name);
            values.push(convert(props.get(&prop.name), prop.ty, &what)?);
        }
        Ok(Body::Track {
            event,
            props: values,
        })
    }

    fn identify(&self, obj: &serde_json::Map<String, Json>) -> Result<Body, DeadLetter> {
        let empty = serde_json::Map::new();
        let traits = match obj.get("traits") {
            Some(Json::Object(t)) => t,
            None | Some(Json::Null) => &empty,
            Some(_) => return Err(dead("`traits` is not an object")),
        };
        let mut attrs = Vec::new();
        let mut consents = Vec::new();
        for (key, value) in traits {
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
