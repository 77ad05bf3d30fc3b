//! Segment-spec JSON lines (LANGUAGE.md §7.1), validated against the schema.
//!
//! A line is either an [`Incoming`] event or a dead letter with a reason; nothing
//! half-applies: a line with one bad trait is rejected whole.
//!
//! A line is read in one pass, straight into slots: serde visitors that know the
//! schema decode each declared property or trait into its [`Value`] and skip
//! everything else without building it. Type problems are not parse errors: they
//! are recorded as the line is read and reported, in a fixed order, once it has
//! been read whole (a property's `properties` object may come before its `event`
//! name, in which case it is kept raw and decoded once the name is known).
//!
//! Choices where the specification is silent: `userId` may be a string or a
//! number (as Segment's libraries send both), an empty `userId` counts as absent;
//! a line without `messageId` is processed but cannot be deduplicated; `track` and
//! `identify` are used, other types (`page`, `screen`, `group`, `alias`) are valid
//! and ignored; a `duration` property is a number of seconds; `null` for a
//! property is the same as leaving it out, and for a trait it resets the
//! attribute; when several properties or traits are wrong, the first declared
//! property, or the first trait in name order, is the one reported.

use crate::diagnostic::did_you_mean;
use crate::ir::{NANOS_PER_MINUTE, Program, Source, Type, Value};
use crate::runtime::{Body, ContextConsent, Incoming, time};
use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Validates lines against one program's schema.
pub struct Reader {
    program: std::sync::Arc<Program>,
    /// Incoming event names (`from`) to event indices.
    by_external: FxHashMap<String, usize>,
    /// Attributes read from a member of `traits`, by that member's name.
    attr_by_name: FxHashMap<String, usize>,
    /// Topics by declared name and by `from` name.
    consent_by_name: FxHashMap<String, usize>,
    /// (1.1) Attributes read through a JSON Pointer, and per event the
    /// properties read through one: such lines are also read as a whole value.
    pointer_attrs: Vec<(usize, String)>,
    pointer_props: Vec<Vec<(usize, String)>>,
    /// (1.1) Where sensitive attributes' values stand in a line, for dead
    /// letters: members by input name, and JSON Pointers.
    sensitive_members: Vec<String>,
    sensitive_pointers: Vec<String>,
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
            .filter_map(|(i, a)| Some((a.source.member()?.to_owned(), i)))
            .collect();
        let mut consent_by_name = FxHashMap::default();
        for (i, c) in program.consents.iter().enumerate() {
            consent_by_name.insert(c.name.clone(), i);
            if let Some(external) = &c.external {
                consent_by_name.insert(external.clone(), i);
            }
        }
        let pointer = |source: &Source| match source {
            Source::Pointer(p) => Some(p.clone()),
            Source::Member(_) | Source::Retired => None,
        };
        let pointer_attrs = program
            .attrs
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, pointer(&a.source)?)))
            .collect();
        let pointer_props = program
            .events
            .iter()
            .map(|e| {
                e.props
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| Some((i, pointer(&p.source)?)))
                    .collect()
            })
            .collect();
        let sensitive = || program.attrs.iter().filter(|a| a.sensitive);
        let sensitive_members = sensitive()
            .filter_map(|a| a.source.member().map(str::to_owned))
            .collect();
        let sensitive_pointers = sensitive().filter_map(|a| pointer(&a.source)).collect();
        Reader {
            program,
            by_external,
            attr_by_name,
            consent_by_name,
            pointer_attrs,
            pointer_props,
            sensitive_members,
            sensitive_pointers,
        }
    }

    /// The declared topic named `name` in the input (its name or `from` name).
    fn topic(&self, name: &str) -> Option<usize> {
        self.consent_by_name.get(name).copied()
    }

    /// (1.1) A rejected line as its dead letter may show it (LANGUAGE.md §9a):
    /// the values of sensitive attributes replaced with `"***"`, wherever the
    /// line carries a member of their input name (in `traits`, `context.traits`
    /// or anywhere else) or has their JSON Pointer. A line that is not JSON is
    /// masked lexically after every `"NAME":`. Lines with nothing to mask are
    /// returned as they are.
    pub fn redact<'a>(&self, raw: &'a str) -> Cow<'a, str> {
        if self.sensitive_members.is_empty() && self.sensitive_pointers.is_empty() {
            return Cow::Borrowed(raw);
        }
        let text = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
            // Not JSON: masked after each member name, a pointer's last one
            // included.
            let mut keys = self.sensitive_members.clone();
            keys.extend(self.sensitive_pointers.iter().filter_map(|p| {
                p.rsplit('/')
                    .next()
                    .map(|last| last.replace("~1", "/").replace("~0", "~"))
            }));
            return mask_lexically(raw, &keys).map_or(Cow::Borrowed(raw), Cow::Owned);
        };
        let mut changed = false;
        for p in &self.sensitive_pointers {
            if let Some(slot) = v.pointer_mut(p) {
                *slot = serde_json::Value::String(MASK.into());
                changed = true;
            }
        }
        changed |= mask_members(&mut v, &self.sensitive_members);
        if changed {
            Cow::Owned(v.to_string())
        } else {
            Cow::Borrowed(raw)
        }
    }

    pub fn read<'a>(&self, line: &'a str) -> Result<Incoming<'a>, DeadLetter> {
        // A byte-order mark (files saved by some editors and exporters) is no
        // part of the JSON.
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        // serde would read a struct from an array too, so anything but an object
        // is classified by the slow path.
        let envelope = if line.trim_start().starts_with('{') {
            self.envelope(line).ok()
        } else {
            None
        };
        let Some(envelope) = envelope else {
            return Err(self.classify(line));
        };
        if let Some(tick) = self.tick(&envelope) {
            return tick;
        }
        let profile = [envelope.user_id, envelope.anonymous_id]
            .into_iter()
            .flatten()
            .find(|id| !id.is_empty())
            .ok_or_else(|| match envelope.wrong_id {
                Some(key) => dead(format!(
                    "no profile id: `{key}` is not a string or a number, and no other id is given"
                )),
                None => dead("no profile id: `userId` and `anonymousId` are both missing"),
            })?;
        let timestamp = timestamp_of(&envelope.timestamp)?;
        let context = self.context_consent(envelope.context)?;
        let mut name = None;
        let body = match envelope.kind.as_deref() {
            Some("track") => {
                let mut body = self.track(envelope.event.as_deref(), envelope.properties)?;
                if let Body::Track { event, props } = &mut body
                    && self
                        .pointer_props
                        .get(*event)
                        .is_some_and(|p| !p.is_empty())
                {
                    self.track_pointers(line, *event, props)?;
                }
                if matches!(body, Body::Ignored) {
                    name = envelope.event;
                }
                body
            }
            Some("identify") => {
                let mut body = self.identify(envelope.traits)?;
                if let Body::Identify { attrs, .. } = &mut body
                    && !self.pointer_attrs.is_empty()
                {
                    self.identify_pointers(line, attrs)?;
                }
                body
            }
            // Named for `--stats` without allocating: these calls are frequent.
            Some(kind) if let Some((_, label)) = OTHER_CALLS.iter().find(|(k, _)| *k == kind) => {
                name = Some(Cow::Borrowed(*label));
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
            profile,
            timestamp,
            message_id: envelope.message_id,
            body,
            context,
            ignored_name: name,
        })
    }

    /// A `{"type":"tick","timestamp":…}` line (LANGUAGE.md §7.2): only a time.
    fn tick<'a>(&self, envelope: &Envelope<'a>) -> Option<Result<Incoming<'a>, DeadLetter>> {
        if envelope.kind.as_deref() != Some("tick") {
            return None;
        }
        let timestamp = match timestamp_of(&envelope.timestamp) {
            Ok(t) => t,
            Err(letter) => return Some(Err(letter)),
        };
        Some(Ok(Incoming {
            profile: Cow::Borrowed(""),
            timestamp,
            message_id: None,
            body: Body::Tick,
            context: None,
            ignored_name: None,
        }))
    }

    /// `context.consent.categoryPreferences`: the declared topics it names, and
    /// the names of the categories that name none.
    fn context_consent<'a>(
        &self,
        context: Option<Box<CategoryPreferences<'a>>>,
    ) -> Result<Option<Box<ContextConsent<'a>>>, DeadLetter> {
        let Some(prefs) = context else {
            return Ok(None);
        };
        if let Some(bad) = prefs.not_bool.iter().min() {
            return Err(dead(format!(
                "consent category `{bad}` in `context.consent.categoryPreferences` is not true or false"
            )));
        }
        let CategoryPreferences {
            topics, unknown, ..
        } = *prefs;
        Ok((!topics.is_empty() || !unknown.is_empty()).then(|| {
            Box::new(ContextConsent {
                consents: topics,
                unknown_categories: unknown,
            })
        }))
    }

    /// The properties read through JSON Pointers, from the whole message.
    fn track_pointers(
        &self,
        line: &str,
        event: usize,
        props: &mut [Value],
    ) -> Result<(), DeadLetter> {
        let Some(pointers) = self.pointer_props.get(event) else {
            return Ok(());
        };
        let whole = whole(line)?;
        let def = &self.program.events[event];
        for (slot, pointer) in pointers {
            let prop = &def.props[*slot];
            let what = || format!("property `{}` of event `{}`", prop.name, def.name);
            let value = match whole.pointer(pointer) {
                None => Value::None,
                Some(v) => match (SlotSeed { ty: prop.ty.ty }).deserialize(v) {
                    Ok(Slot::Value(v)) => v,
                    Ok(Slot::Wrong(found)) => return Err(wrong(&what(), prop.ty.ty, found)),
                    Ok(Slot::UnknownZone(zone)) => return Err(unknown_zone(&what(), &zone)),
                    Ok(Slot::Absent | Slot::Null) | Err(_) => Value::None,
                },
            };
            if value.is_none() && !prop.ty.optional {
                return Err(dead(format!("missing {}", what())));
            }
            if let Some(p) = props.get_mut(*slot) {
                *p = value;
            }
        }
        Ok(())
    }

    /// The attributes read through JSON Pointers, from the whole message. A
    /// pointer that finds nothing leaves the attribute as it is (it was not sent).
    fn identify_pointers(
        &self,
        line: &str,
        attrs: &mut Vec<(usize, Value)>,
    ) -> Result<(), DeadLetter> {
        let whole = whole(line)?;
        for (slot, pointer) in &self.pointer_attrs {
            let attr = &self.program.attrs[*slot];
            let what = || format!("trait `{}`", attr.name);
            let Some(v) = whole.pointer(pointer) else {
                continue;
            };
            match (SlotSeed { ty: attr.ty.ty }).deserialize(v) {
                Ok(Slot::Value(v)) => attrs.push((*slot, v)),
                Ok(Slot::Null) => attrs.push((*slot, attr.default.clone())),
                Ok(Slot::Wrong(found)) => return Err(wrong(&what(), attr.ty.ty, found)),
                Ok(Slot::UnknownZone(zone)) => return Err(attr_zone(attr, &what(), &zone)),
                Ok(Slot::Absent) | Err(_) => {}
            }
        }
        attrs.sort_by_key(|(slot, _)| *slot);
        Ok(())
    }

    fn envelope<'a>(&self, line: &'a str) -> serde_json::Result<Envelope<'a>> {
        let mut de = serde_json::Deserializer::from_str(line);
        let envelope = EnvelopeSeed { reader: self }.deserialize(&mut de)?;
        de.end()?;
        Ok(envelope)
    }

    /// Why a line that is not a readable event was rejected.
    fn classify(&self, line: &str) -> DeadLetter {
        match serde_json::from_str::<serde_json::Value>(line) {
            Err(e) => dead(format!("not JSON: {e}")),
            Ok(serde_json::Value::Object(_)) => match self.envelope(line) {
                Err(e) => dead(format!("malformed event: {e}")),
                Ok(_) => dead("malformed event"),
            },
            Ok(_) => dead("not a JSON object"),
        }
    }

    fn track(
        &self,
        name: Option<&str>,
        properties: Section<'_, Found>,
    ) -> Result<Body, DeadLetter> {
        let Some(name) = name else {
            return Err(dead("a `track` call without an `event` name"));
        };
        let Some(&event) = self.by_external.get(name) else {
            return Ok(Body::Ignored);
        };
        let found = match properties {
            Section::Decoded(found) => found,
            Section::Raw(raw) => decode_raw(
                raw,
                PropsSeed {
                    reader: self,
                    event,
                },
            )
            .ok_or_else(|| dead("`properties` is not an object"))?,
            Section::Absent | Section::Skipped => PropsSeed {
                reader: self,
                event,
            }
            .empty(),
        };
        let props = self.props(event, found)?;
        Ok(Body::Track { event, props })
    }

    /// The event's slots from what its `properties` held, or the first problem.
    fn props(&self, event: usize, found: Found) -> Result<Vec<Value>, DeadLetter> {
        let def = &self.program.events[event];
        let Props { values, problems } =
            found.map_err(|NotAnObject| dead("`properties` is not an object"))?;
        for (i, (prop, value)) in def.props.iter().zip(&values).enumerate() {
            let what = || format!("property `{}` of event `{}`", prop.name, def.name);
            match problems.iter().find(|(slot, _)| *slot == i) {
                Some((_, Problem::Wrong(found))) => return Err(wrong(&what(), prop.ty.ty, found)),
                Some((_, Problem::UnknownZone(zone))) => return Err(unknown_zone(&what(), zone)),
                // Absent and `null` alike.
                None if value.is_none() && !prop.ty.optional => {
                    return Err(dead(format!("missing {}", what())));
                }
                None => {}
            }
        }
        Ok(values)
    }

    fn identify(
        &self,
        traits: Section<'_, Result<Traits, NotAnObject>>,
    ) -> Result<Body, DeadLetter> {
        let traits = match traits {
            Section::Decoded(traits) => traits,
            Section::Raw(raw) => decode_raw(raw, TraitsSeed { reader: self })
                .ok_or_else(|| dead("`traits` is not an object"))?,
            Section::Absent | Section::Skipped => TraitsSeed { reader: self }.empty(),
        };
        let traits = traits.map_err(|NotAnObject| dead("`traits` is not an object"))?;
        // A JSON object's members are unordered: the problem reported is the one
        // of the first trait by name, whatever order the line gave them in.
        let given = traits
            .attrs
            .iter()
            .filter(|slot| !matches!(slot, Slot::Absent))
            .count();
        let mut attrs = Vec::with_capacity(given);
        let mut problems: Vec<(&str, DeadLetter)> = Vec::new();
        for (slot, found) in traits.attrs.into_iter().enumerate() {
            let attr = &self.program.attrs[slot];
            let what = || format!("trait `{}`", attr.name);
            match found {
                Slot::Absent => {}
                // `null` clears an optional attribute, resets one with a default.
                Slot::Null => attrs.push((slot, attr.default.clone())),
                Slot::Value(v) => attrs.push((slot, v)),
                Slot::Wrong(found) => {
                    problems.push((&attr.name, wrong(&what(), attr.ty.ty, found)))
                }
                Slot::UnknownZone(zone) => {
                    problems.push((&attr.name, attr_zone(attr, &what(), &zone)))
                }
            }
        }
        let mut consents = Vec::new();
        match traits.consent {
            None => {}
            Some(Err(NotAnObject)) => problems.push((
                "consent",
                dead("the `consent` trait is not an object of topics"),
            )),
            Some(Ok((_, unknown))) if !unknown.is_empty() => {
                // A misspelt revocation must never leave a customer subscribed:
                // the whole line is refused, loudly.
                let first = unknown.iter().min().map_or("", String::as_str);
                let names = self.program.consents.iter().map(|c| c.name.as_str());
                let hint = did_you_mean(first, names)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                problems.push((
                    "consent",
                    dead(format!("unknown consent topic `{first}`{hint}")),
                ));
            }
            Some(Ok((topics, _))) => {
                let mut bad: Option<&str> = None;
                for (topic, granted) in topics.into_iter().enumerate() {
                    let name = self.program.consents[topic].name.as_str();
                    match granted {
                        Some(Ok(b)) => consents.push((topic, b)),
                        Some(Err(NotABool)) if bad.is_none_or(|b| name < b) => bad = Some(name),
                        Some(Err(NotABool)) | None => {}
                    }
                }
                if let Some(topic) = bad {
                    problems.push((
                        "consent",
                        dead(format!("consent for `{topic}` is not true or false")),
                    ));
                }
            }
        }
        match problems.into_iter().min_by(|a, b| a.0.cmp(b.0)) {
            Some((_, letter)) => Err(letter),
            None => Ok(Body::Identify { attrs, consents }),
        }
    }
}

/// The fields of a Segment call Nudge reads; everything else is skipped.
#[derive(Default)]
struct Envelope<'a> {
    kind: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    user_id: Option<Cow<'a, str>>,
    anonymous_id: Option<Cow<'a, str>>,
    timestamp: Option<Result<Cow<'a, str>, NotAString>>,
    message_id: Option<Cow<'a, str>>,
    properties: Section<'a, Found>,
    traits: Section<'a, Result<Traits, NotAnObject>>,
    /// `context.consent.categoryPreferences`, when the line has it.
    context: Option<Box<CategoryPreferences<'a>>>,
    /// An id member given as something else than a string or a number.
    wrong_id: Option<&'static str>,
}

/// What `context.consent.categoryPreferences` held.
#[derive(Default)]
struct CategoryPreferences<'a> {
    /// Declared topics, in the order given.
    topics: Vec<(usize, bool)>,
    /// Categories that name no topic.
    unknown: Vec<Cow<'a, str>>,
    /// Declared topics whose value is not a bool.
    not_bool: Vec<String>,
}

/// `properties` or `traits`: decoded when the line said, before them, what they
/// are for; kept raw when it had not yet; skipped when they are of no use.
#[derive(Default)]
enum Section<'a, T> {
    #[default]
    Absent,
    Skipped,
    Raw(&'a RawValue),
    Decoded(T),
}

/// Per declared property, what the line held; or `properties` was no object.
type Found = Result<Props, NotAnObject>;

/// An event's slots as read, `None` where absent, `null` or wrong, and what was
/// wrong (rarely anything: kept apart so that a good line costs one vector).
struct Props {
    values: Vec<Value>,
    problems: Vec<(usize, Problem)>,
}

enum Problem {
    Wrong(&'static str),
    UnknownZone(String),
}

/// What a line held for one declared property or trait.
enum Slot {
    Absent,
    Null,
    Value(Value),
    /// Not of the declared type: what was found instead ("a string" …).
    Wrong(&'static str),
    UnknownZone(String),
}

struct Traits {
    /// Per declared attribute.
    attrs: Vec<Slot>,
    /// Per declared topic, when there is a `consent` trait.
    consent: Option<Topics>,
}

struct NotAnObject;
struct NotABool;
#[derive(Debug)]
struct NotAString;

fn dead(reason: impl Into<String>) -> DeadLetter {
    DeadLetter(reason.into())
}

fn wrong(what: &str, ty: Type, found: &str) -> DeadLetter {
    dead(format!("{what} should be {}, found {found}", type_name(ty)))
}

/// The Segment calls Nudge reads but has no use for, and their names in `--stats`.
const OTHER_CALLS: [(&str, &str); 4] = [
    ("page", "(page)"),
    ("screen", "(screen)"),
    ("group", "(group)"),
    ("alias", "(alias)"),
];

/// The envelope's `timestamp` as an instant, or why the line is refused.
fn timestamp_of(raw: &Option<Result<Cow<'_, str>, NotAString>>) -> Result<i64, DeadLetter> {
    match raw {
        Some(Ok(s)) => time::parse_rfc3339(s).ok_or_else(|| bad_timestamp(s)),
        Some(Err(NotAString)) => Err(dead("invalid timestamp: not a string")),
        None => Err(dead("no timestamp")),
    }
}

/// Why a timestamp was refused: not RFC 3339, or a valid one outside the
/// instants Nudge represents (nanoseconds since 1970 in 64 bits).
fn bad_timestamp(s: &str) -> DeadLetter {
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        dead(format!(
            "invalid timestamp `{s}`: outside the years 1678 to 2261 that Nudge can represent"
        ))
    } else {
        dead(format!("invalid timestamp `{s}`: not RFC 3339"))
    }
}

fn unknown_zone(what: &str, zone: &str) -> DeadLetter {
    dead(format!("{what} names an unknown time zone `{zone}`"))
}

/// [`unknown_zone`] of an attribute: (1.1) a sensitive one's value is not quoted.
fn attr_zone(attr: &crate::ir::Attr, what: &str, zone: &str) -> DeadLetter {
    if attr.sensitive {
        dead(format!(
            "{what} names an unknown time zone (the value is sensitive)"
        ))
    } else {
        unknown_zone(what, zone)
    }
}

/// What a masked value reads as (LANGUAGE.md §9a).
pub const MASK: &str = "***";

/// Replaces the value after every `"KEY":` with `"***"`, lexically: for lines
/// that are not JSON, where nothing better than the text itself is known. A
/// string value runs to its closing quote (or the end of the line), anything
/// else to the next `,`, `}` or `]`.
fn mask_lexically(raw: &str, keys: &[String]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut changed = false;
    'scan: while !rest.is_empty() {
        for key in keys {
            let quoted = format!("\"{key}\"");
            let Some(tail) = rest.strip_prefix(quoted.as_str()) else {
                continue;
            };
            let after_key = tail.trim_start();
            let Some(value) = after_key.strip_prefix(':') else {
                continue;
            };
            let value = value.trim_start();
            let end = if let Some(body) = value.strip_prefix('"') {
                let mut escaped = false;
                let close = body.char_indices().find(|&(_, c)| {
                    let close = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                });
                close.map_or(value.len(), |(i, _)| i + 2)
            } else {
                value.find([',', '}', ']']).unwrap_or(value.len())
            };
            out.push_str(&quoted);
            out.push_str(":\"");
            out.push_str(MASK);
            out.push('"');
            rest = &value[end..];
            changed = true;
            continue 'scan;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    changed.then_some(out)
}

/// Every member named one of `keys`, at any depth, masked; true if one was.
fn mask_members(v: &mut serde_json::Value, keys: &[String]) -> bool {
    use serde_json::Value;
    let mut changed = false;
    match v {
        Value::Object(members) => {
            for (k, member) in members.iter_mut() {
                if keys.iter().any(|key| key == k) {
                    *member = Value::String(MASK.into());
                    changed = true;
                } else {
                    changed |= mask_members(member, keys);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= mask_members(item, keys);
            }
        }
        _ => {}
    }
    changed
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

/// Decodes a section kept raw (it is valid JSON: the line was read whole).
fn decode_raw<'de, S: DeserializeSeed<'de>>(raw: &'de RawValue, seed: S) -> Option<S::Value> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    seed.deserialize(&mut de).ok()
}

/// The envelope's members, by name.
#[derive(Clone, Copy)]
enum Key {
    Type,
    Event,
    UserId,
    AnonymousId,
    Timestamp,
    MessageId,
    Properties,
    Traits,
    Context,
    Other,
}

impl Key {
    fn name(&self) -> &'static str {
        match self {
            Key::Type => "type",
            Key::Event => "event",
            Key::UserId => "userId",
            Key::AnonymousId => "anonymousId",
            Key::Timestamp => "timestamp",
            Key::MessageId => "messageId",
            Key::Properties => "properties",
            Key::Traits => "traits",
            Key::Context => "context",
            Key::Other => "",
        }
    }
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "type" => Key::Type,
                    "event" => Key::Event,
                    "userId" => Key::UserId,
                    "anonymousId" => Key::AnonymousId,
                    "timestamp" => Key::Timestamp,
                    "messageId" => Key::MessageId,
                    "properties" => Key::Properties,
                    "traits" => Key::Traits,
                    "context" => Key::Context,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct EnvelopeSeed<'r> {
    reader: &'r Reader,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Envelope<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Segment call")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut e = Envelope::default();
        let mut seen = 0u16;
        while let Some(key) = map.next_key::<Key>()? {
            if !matches!(key, Key::Other) {
                // Each member once, as serde's derived readers insist.
                let bit = 1 << (key as u16);
                if seen & bit != 0 {
                    return Err(de::Error::duplicate_field(key.name()));
                }
                seen |= bit;
            }
            match key {
                Key::Type => e.kind = map.next_value_seed(Optional(Text))?,
                Key::Event => e.event = map.next_value_seed(Optional(Text))?,
                Key::UserId => {
                    let id = map.next_value_seed(Optional(Id))?;
                    if matches!(id, Some(None)) {
                        e.wrong_id = Some("userId");
                    }
                    e.user_id = id.flatten();
                }
                Key::AnonymousId => {
                    let id = map.next_value_seed(Optional(Id))?;
                    if matches!(id, Some(None)) {
                        e.wrong_id = e.wrong_id.or(Some("anonymousId"));
                    }
                    e.anonymous_id = id.flatten();
                }
                Key::MessageId => e.message_id = map.next_value_seed(Optional(Id))?.flatten(),
                Key::Timestamp => e.timestamp = map.next_value_seed(Optional(Timestamp))?,
                Key::Properties => {
                    let other_kind = e.kind.as_deref().is_some_and(|k| k != "track");
                    let event = e.event.as_deref().map(|n| self.reader.by_external.get(n));
                    e.properties = match (other_kind, event) {
                        // Of no use: not a `track`, or an event not declared.
                        (true, _) | (false, Some(None)) => {
                            map.next_value::<IgnoredAny>()?;
                            Section::Skipped
                        }
                        (false, Some(Some(&event))) => {
                            let seed = PropsSeed {
                                reader: self.reader,
                                event,
                            };
                            Section::Decoded(map.next_value_seed(seed)?)
                        }
                        (false, None) => raw_section(map.next_value::<Option<&RawValue>>()?),
                    };
                }
                Key::Traits => {
                    e.traits = match e.kind.as_deref() {
                        Some("identify") => {
                            let seed = TraitsSeed {
                                reader: self.reader,
                            };
                            Section::Decoded(map.next_value_seed(seed)?)
                        }
                        Some(_) => {
                            map.next_value::<IgnoredAny>()?;
                            Section::Skipped
                        }
                        None => raw_section(map.next_value::<Option<&RawValue>>()?),
                    };
                }
                Key::Context => {
                    e.context = map.next_value_seed(Within {
                        key: "consent",
                        inner: Within {
                            key: "categoryPreferences",
                            inner: PreferencesSeed {
                                reader: self.reader,
                            },
                        },
                    })?;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

fn raw_section<T>(raw: Option<&RawValue>) -> Section<'_, T> {
    // `null` is no section at all.
    raw.map_or(Section::Absent, Section::Raw)
}

/// Reads and drops the rest of an object or array that is not of the shape wanted.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The visitor methods of a value expected in one shape: every other JSON value
/// is read whole and becomes `self.other(what was found)`, never a parse error.
macro_rules! others {
    ($($method:ident($ty:ty) => $found:literal),* $(,)?) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(self.other($found))
        })*
    };
    (seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok(self.other("an array"))
        }
    };
    (map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok(self.other("an object"))
        }
    };
}

/// `DeserializeSeed` for visitors that take any JSON value (and sort out what
/// they were given themselves).
macro_rules! seed_by_any {
    ($($ty:ty),* $(,)?) => {
        $(impl<'de> DeserializeSeed<'de> for $ty {
            type Value = <Self as Visitor<'de>>::Value;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        })*
    };
}

seed_by_any!(
    Id,
    Timestamp,
    SlotSeed,
    PropsSeed<'_>,
    TraitsSeed<'_>,
    ConsentSeed<'_>
);

/// `null` as `None`, anything else read by `S`.
struct Optional<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Optional<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Optional<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// A string, borrowed from the line when it has no escapes; anything else is the
/// parse error serde's own readers give ("expected a string").
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

/// An id: a string, or a number as its JSON text; any other value is no id.
struct Id;

impl<'de> Visitor<'de> for Id {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(s.to_owned())))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(n.to_string())))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(n.to_string())))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // As serde_json prints the number it read (shortest round-trip form).
        Ok(serde_json::Number::from_f64(n).map(|n| Cow::Owned(n.to_string())))
    }
    others!(visit_bool(bool) => "a bool");
    others!(seq);
    others!(map);
}

impl Id {
    fn other(self, _: &str) -> Option<Cow<'static, str>> {
        None
    }
}

/// A timestamp's text, or a value that is not a string.
struct Timestamp;

impl<'de> Visitor<'de> for Timestamp {
    type Value = Result<Cow<'de, str>, NotAString>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(s.to_owned())))
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number");
    others!(seq);
    others!(map);
}

impl Timestamp {
    fn other<'a>(self, _: &str) -> Result<Cow<'a, str>, NotAString> {
        Err(NotAString)
    }
}

/// One declared property or trait of type `ty`, straight into its slot value.
struct SlotSeed {
    ty: Type,
}

impl SlotSeed {
    fn other(self, found: &'static str) -> Slot {
        Slot::Wrong(found)
    }

    fn number(self, n: f64) -> Slot {
        match self.ty {
            Type::Number => Slot::Value(Value::Number(n)),
            Type::Duration => {
                let nanos = (n * 1e9).round();
                if nanos.is_finite() && nanos.abs() <= 9.2e18 {
                    Slot::Value(Value::Duration(nanos as i64))
                } else {
                    Slot::Wrong("a number")
                }
            }
            _ => Slot::Wrong("a number"),
        }
    }
}

impl<'de> Visitor<'de> for SlotSeed {
    type Value = Slot;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Slot, E> {
        Ok(Slot::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Slot, E> {
        Ok(match self.ty {
            Type::Bool => Slot::Value(Value::Bool(b)),
            _ => Slot::Wrong("a bool"),
        })
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Slot, E> {
        Ok(self.number(n as f64))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Slot, E> {
        Ok(self.number(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Slot, E> {
        Ok(self.number(n))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Slot, E> {
        Ok(match self.ty {
            Type::String => Slot::Value(Value::Str(s.into())),
            Type::Time => match time::parse_rfc3339(s) {
                Some(t) => Slot::Value(Value::Time(t)),
                None => Slot::Wrong("a string"),
            },
            Type::Timezone => match s.parse::<chrono_tz::Tz>() {
                Ok(_) => Slot::Value(Value::Str(s.into())),
                Err(_) => Slot::UnknownZone(s.to_owned()),
            },
            Type::TimeOfDay => match parse_time_of_day(s) {
                Some(m) => Slot::Value(Value::Duration(m * NANOS_PER_MINUTE)),
                None => Slot::Wrong("a string that is not `HH:MM`"),
            },
            _ => Slot::Wrong("a string"),
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Slot, A::Error> {
        let element = match self.ty {
            Type::ListNumber => Type::Number,
            Type::ListString => Type::String,
            _ => {
                skip_seq(seq)?;
                return Ok(Slot::Wrong("an array"));
            }
        };
        let mut items = Vec::new();
        let mut all_fit = true;
        while let Some(item) = seq.next_element_seed(SlotSeed { ty: element })? {
            match item {
                Slot::Value(v) if all_fit => items.push(v),
                _ => all_fit = false,
            }
        }
        // The list is what is reported, whichever item is wrong.
        Ok(if all_fit {
            Slot::Value(Value::List(items.into()))
        } else {
            Slot::Wrong("an array")
        })
    }
    others!(map);
}

/// An event's `properties`, by declared property.
struct PropsSeed<'r> {
    reader: &'r Reader,
    event: usize,
}

impl PropsSeed<'_> {
    fn empty(&self) -> Found {
        let count = self.reader.program.events[self.event].props.len();
        Ok(Props {
            values: vec![Value::None; count],
            problems: Vec::new(),
        })
    }

    fn other(self, _: &str) -> Found {
        Err(NotAnObject)
    }
}

impl<'de> Visitor<'de> for PropsSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of properties")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        Ok(self.empty())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let def = &self.reader.program.events[self.event];
        let Ok(mut props) = self.empty() else {
            return Ok(Err(NotAnObject));
        };
        while let Some(key) = map.next_key_seed(Member(|name: &str| {
            def.props
                .iter()
                .position(|p| p.source.member() == Some(name))
        }))? {
            let Some((i, prop)) = key.and_then(|i| Some((i, def.props.get(i)?))) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            // A member given twice counts as its last value, as with any JSON
            // object read into a map.
            props.problems.retain(|(slot, _)| *slot != i);
            let value = match map.next_value_seed(SlotSeed { ty: prop.ty.ty })? {
                Slot::Value(v) => v,
                Slot::Absent | Slot::Null => Value::None,
                Slot::Wrong(found) => {
                    props.problems.push((i, Problem::Wrong(found)));
                    Value::None
                }
                Slot::UnknownZone(zone) => {
                    props.problems.push((i, Problem::UnknownZone(zone)));
                    Value::None
                }
            };
            if let Some(v) = props.values.get_mut(i) {
                *v = value;
            }
        }
        Ok(Ok(props))
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number", visit_str(&str) => "a string");
    others!(seq);
}

/// A member name, looked up without copying it.
struct Member<F>(F);

impl<'de, T, F: FnOnce(&str) -> Option<T>> DeserializeSeed<'de> for Member<F> {
    type Value = Option<T>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T, F: FnOnce(&str) -> Option<T>> Visitor<'_> for Member<F> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<T>, E> {
        Ok((self.0)(s))
    }
}

/// An `identify` call's `traits`, by declared attribute, and the `consent` trait.
struct TraitsSeed<'r> {
    reader: &'r Reader,
}

enum TraitKey {
    Consent,
    Attr(usize),
}

impl TraitsSeed<'_> {
    fn empty(&self) -> Result<Traits, NotAnObject> {
        Ok(Traits {
            attrs: (0..self.reader.program.attrs.len())
                .map(|_| Slot::Absent)
                .collect(),
            consent: None,
        })
    }

    fn other(self, _: &str) -> Result<Traits, NotAnObject> {
        Err(NotAnObject)
    }
}

impl<'de> Visitor<'de> for TraitsSeed<'_> {
    type Value = Result<Traits, NotAnObject>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of traits")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.empty())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Ok(mut traits) = self.empty() else {
            return Ok(Err(NotAnObject));
        };
        let reader = self.reader;
        while let Some(key) = map.next_key_seed(Member(|name: &str| match name {
            "consent" => Some(TraitKey::Consent),
            _ => reader.attr_by_name.get(name).map(|&i| TraitKey::Attr(i)),
        }))? {
            match key {
                Some(TraitKey::Consent) => {
                    traits.consent = Some(map.next_value_seed(ConsentSeed { reader })?);
                }
                Some(TraitKey::Attr(i)) => {
                    let ty = reader.program.attrs[i].ty.ty;
                    traits.attrs[i] = map.next_value_seed(SlotSeed { ty })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(traits))
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number", visit_str(&str) => "a string");
    others!(seq);
}

/// The `consent` trait: granted or not, by declared topic.
struct ConsentSeed<'r> {
    reader: &'r Reader,
}

/// Per declared topic, what the trait said; and the names that are no topic.
type Topics = Result<(Vec<Option<Result<bool, NotABool>>>, Vec<String>), NotAnObject>;

impl ConsentSeed<'_> {
    fn other(self, _: &str) -> Topics {
        Err(NotAnObject)
    }
}

impl<'de> Visitor<'de> for ConsentSeed<'_> {
    type Value = Topics;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of consent topics")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Topics, A::Error> {
        let reader = self.reader;
        let mut topics: Vec<Option<Result<bool, NotABool>>> =
            (0..reader.program.consents.len()).map(|_| None).collect();
        let mut unknown = Vec::new();
        while let Some(key) = map.next_key_seed(Member(|name: &str| {
            Some(reader.topic(name).ok_or_else(|| name.to_owned()))
        }))? {
            match key.unwrap_or_else(|| Err(String::new())) {
                Err(name) => {
                    unknown.push(name);
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(t) => {
                    let granted = map.next_value_seed(SlotSeed { ty: Type::Bool })?;
                    topics[t] = Some(match granted {
                        Slot::Value(Value::Bool(b)) => Ok(b),
                        _ => Err(NotABool),
                    });
                }
            }
        }
        Ok(Ok((topics, unknown)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Topics, E> {
        Ok(self.other("null"))
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number", visit_str(&str) => "a string");
    others!(seq);
}

/// The whole message as a value, for JSON Pointers (only for policy sets that
/// use them; the line is known to be valid JSON by now).
fn whole(line: &str) -> Result<serde_json::Value, DeadLetter> {
    serde_json::from_str(line).map_err(|e| dead(format!("not JSON: {e}")))
}

/// One member of an object, read with `inner`; every other member is skipped,
/// and anything but an object is no member at all. `context.consent
/// .categoryPreferences` is two of these around [`PreferencesSeed`].
#[derive(Clone, Copy)]
struct Within<S> {
    key: &'static str,
    inner: S,
}

impl<'de, T, S: DeserializeSeed<'de, Value = Option<T>> + Copy> DeserializeSeed<'de> for Within<S> {
    type Value = Option<T>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T, S: DeserializeSeed<'de, Value = Option<T>> + Copy> Visitor<'de> for Within<S> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with `{}`", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.key {
                // A member given twice counts as its last value.
                found = map.next_value_seed(self.inner)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number", visit_str(&str) => "a string");
    others!(seq);
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl<S> Within<S> {
    fn other<T>(self, _: &str) -> Option<T> {
        None
    }
}

/// `categoryPreferences`: category name → `true`/`false`.
#[derive(Clone, Copy)]
struct PreferencesSeed<'r> {
    reader: &'r Reader,
}

impl<'de> DeserializeSeed<'de> for PreferencesSeed<'_> {
    type Value = Option<Box<CategoryPreferences<'de>>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PreferencesSeed<'_> {
    type Value = Option<Box<CategoryPreferences<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of consent categories")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut prefs = CategoryPreferences::default();
        while let Some(key) = map.next_key_seed(Text)? {
            let granted = map.next_value_seed(SlotSeed { ty: Type::Bool })?;
            match (self.reader.topic(&key), granted) {
                // A category given twice counts as its last value.
                (Some(topic), Slot::Value(Value::Bool(b))) => {
                    prefs.topics.retain(|(t, _)| *t != topic);
                    prefs.not_bool.retain(|k| *k != key);
                    prefs.topics.push((topic, b));
                }
                (Some(topic), _) => {
                    prefs.topics.retain(|(t, _)| *t != topic);
                    if !prefs.not_bool.iter().any(|k| *k == key) {
                        prefs.not_bool.push(key.into_owned());
                    }
                }
                (None, _) => {
                    if !prefs.unknown.contains(&key) {
                        prefs.unknown.push(key);
                    }
                }
            }
        }
        Ok(Some(Box::new(prefs)))
    }
    others!(visit_bool(bool) => "a bool", visit_u64(u64) => "a number",
        visit_i64(i64) => "a number", visit_f64(f64) => "a number", visit_str(&str) => "a string");
    others!(seq);
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

impl PreferencesSeed<'_> {
    fn other<'a>(self, _: &str) -> Option<Box<CategoryPreferences<'a>>> {
        None
    }
}

/// `"HH:MM"` (hours 0–23, two-digit minutes) as minutes after midnight.
fn parse_time_of_day(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::mask_lexically;

    fn mask(raw: &str) -> Option<String> {
        mask_lexically(raw, &["ssn".to_string(), "Home Zone".to_string()])
    }

    #[test]
    fn lexical_masking_covers_strings_escapes_numbers_and_cut_lines() {
        assert_eq!(
            mask(r#"{"ssn":"12\"34","a":1"#).as_deref(),
            Some(r#"{"ssn":"***","a":1"#)
        );
        assert_eq!(
            mask(r#"{"ssn" :  9876 , "Home Zone":"Mars/X"}"#).as_deref(),
            Some(r#"{"ssn":"***", "Home Zone":"***"}"#)
        );
        // A string cut by the end of the line is masked to the end.
        assert_eq!(
            mask(r#"{"x":{"ssn":"1234"#).as_deref(),
            Some(r#"{"x":{"ssn":"***""#)
        );
        // A name that is a value, not a member, is left alone; so is no match.
        assert_eq!(mask(r#"{"field":"ssn", "n": 1"#), None);
        assert_eq!(mask("not json at all"), None);
        // Multi-byte text around it survives.
        assert_eq!(
            mask(r#"{"é":"ü","ssn":"1"}"#).as_deref(),
            Some(r#"{"é":"ü","ssn":"***"}"#)
        );
    }
}
