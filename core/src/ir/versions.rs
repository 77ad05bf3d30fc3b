//! (1.1) What changed between two lowered policy sets, by name (LANGUAGE.md §7.7).
//!
//! Lowered programs refer to everything by index, and an added attribute or
//! event shifts every index after it; two versions are therefore compared in a
//! *canonical text* of each journey and aggregate in which every index is
//! replaced by the name (and type) it stands for. Two journeys with the same
//! canonical text are the same version: comments, formatting and the order of
//! declarations do not make a change.
//!
//! Promise: pure and total — any two programs (even ones that share nothing)
//! give a summary, never a panic.

use super::{
    Aggregate, AggregateKind, Cap, CapScope, Expr, ExprKind, Instr, Journey, Program, ShapeRef,
    Trigger, Type,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// The upgrade summary of §7.7: what a store written under `old` would see
/// change if `new` were applied to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub journeys_added: Vec<String>,
    /// Removed journeys, with how many instances are still active in them.
    pub journeys_removed: Vec<Versioned>,
    /// Changed journeys, with how many active instances stay on the old version.
    pub journeys_changed: Vec<Versioned>,
    pub journeys_unchanged: usize,
    pub attributes_added: Vec<String>,
    pub attributes_removed: Vec<String>,
    pub attributes_retyped: Vec<Retyped>,
    pub topics_added: Vec<Topic>,
    pub topics_removed: Vec<String>,
    /// Aggregates of the new set that the store did not keep as far back as
    /// they read.
    pub short_history: Vec<ShortHistory>,
    /// Nothing above changed, yet the programs differ: templates, channels,
    /// limits or the order of declarations.
    pub other_changes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Versioned {
    pub journey: String,
    pub active: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retyped {
    pub attribute: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    pub topic: String,
    /// `true` for an `opt_out` topic (granted until revoked).
    pub granted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShortHistory {
    /// The aggregate, as written: `count(purchase within 30d)`.
    pub aggregate: String,
    /// How far back the store's history reaches, in nanoseconds (`0`: it
    /// starts at the upgrade).
    pub history: i64,
}

impl Summary {
    /// Whether applying `new` changes anything a running store holds.
    pub fn is_empty(&self) -> bool {
        self.journeys_added.is_empty()
            && self.journeys_removed.is_empty()
            && self.journeys_changed.is_empty()
            && self.attributes_added.is_empty()
            && self.attributes_removed.is_empty()
            && self.attributes_retyped.is_empty()
            && self.topics_added.is_empty()
            && self.topics_removed.is_empty()
            && self.short_history.is_empty()
    }
}

/// Compares the policy set a store was written with (`old`) with `new`;
/// `active[j]` is how many instances of `old`'s journey `j` are active.
pub fn summarize(old: &Program, new: &Program, active: &[u64]) -> Summary {
    let mut s = Summary::default();
    journeys(&mut s, old, new, active);
    attributes(&mut s, old, new);
    topics(&mut s, old, new);
    short_history(&mut s, old, new);
    s.other_changes = s.is_empty() && old.fingerprint() != new.fingerprint();
    s
}

/// Journeys added, changed, removed (with their active instances) and
/// unchanged, each compared by its canonical text.
fn journeys(s: &mut Summary, old: &Program, new: &Program, active: &[u64]) {
    // The old set is its current journeys; the instances still in their
    // older versions (a store upgraded before) count with them.
    let old_journeys: BTreeMap<&str, (usize, String)> = old
        .journeys
        .iter()
        .enumerate()
        .filter(|(_, journey)| !journey.versions.retired)
        .map(|(j, journey)| (journey.name.as_str(), (j, canon_journey(old, journey))))
        .collect();
    let new_journeys: BTreeMap<&str, String> = new
        .journeys
        .iter()
        .map(|journey| (journey.name.as_str(), canon_journey(new, journey)))
        .collect();
    let count = |j: usize| {
        let versions = old
            .journeys
            .get(j)
            .map_or(&[][..], |o| &o.versions.older[..]);
        std::iter::once(&j)
            .chain(versions)
            .map(|v| active.get(*v).copied().unwrap_or(0))
            .sum::<u64>()
    };
    for (name, text) in &new_journeys {
        match old_journeys.get(name) {
            None => s.journeys_added.push(name.to_string()),
            Some((_, before)) if before == text => s.journeys_unchanged += 1,
            Some(&(j, _)) => s.journeys_changed.push(Versioned {
                journey: name.to_string(),
                active: count(j),
            }),
        }
    }
    for (name, &(j, _)) in &old_journeys {
        if !new_journeys.contains_key(name) {
            s.journeys_removed.push(Versioned {
                journey: name.to_string(),
                active: count(j),
            });
        }
    }
}

/// Attributes added, removed and retyped.
fn attributes(s: &mut Summary, old: &Program, new: &Program) {
    let old_attrs: BTreeMap<&str, Type> = old
        .attrs
        .iter()
        .map(|a| (a.name.as_str(), a.ty.ty))
        .collect();
    let new_attrs: BTreeMap<&str, Type> = new
        .attrs
        .iter()
        .map(|a| (a.name.as_str(), a.ty.ty))
        .collect();
    for (name, ty) in &new_attrs {
        match old_attrs.get(name) {
            None => s.attributes_added.push(name.to_string()),
            Some(before) if before != ty => s.attributes_retyped.push(Retyped {
                attribute: name.to_string(),
                from: type_name(*before).to_string(),
                to: type_name(*ty).to_string(),
            }),
            Some(_) => {}
        }
    }
    s.attributes_removed = old_attrs
        .keys()
        .filter(|name| !new_attrs.contains_key(*name))
        .map(|name| name.to_string())
        .collect();
}

/// Consent topics added (with their default) and removed.
fn topics(s: &mut Summary, old: &Program, new: &Program) {
    let old_topics: Vec<&str> = old.consents.iter().map(|c| c.name.as_str()).collect();
    let mut added: Vec<Topic> = new
        .consents
        .iter()
        .filter(|c| !old_topics.contains(&c.name.as_str()))
        .map(|c| Topic {
            topic: c.name.clone(),
            granted: c.granted_by_default,
        })
        .collect();
    added.sort_by(|a, b| a.topic.cmp(&b.topic));
    s.topics_added = added;
    let mut removed: Vec<String> = old
        .consents
        .iter()
        .filter(|c| !new.consents.iter().any(|n| n.name == c.name))
        .map(|c| c.name.clone())
        .collect();
    removed.sort();
    s.topics_removed = removed;
}

/// The new set's aggregates whose windows reach further back than what the
/// store kept for the same events.
fn short_history(s: &mut Summary, old: &Program, new: &Program) {
    // An aggregate sees the history of the longest window over the same
    // events (kind, event and filter alike) that the store kept.
    let kept: Vec<(String, Option<i64>)> = old
        .aggregates
        .iter()
        .map(|a| (canon_aggregate_events(old, a), a.window))
        .collect();
    let mut short: BTreeMap<String, i64> = BTreeMap::new();
    for a in &new.aggregates {
        let events = canon_aggregate_events(new, a);
        let history = kept
            .iter()
            .filter(|(e, _)| *e == events)
            .map(|(_, w)| w.unwrap_or(i64::MAX))
            .max()
            .unwrap_or(0);
        if history < a.window.unwrap_or(i64::MAX) {
            short.insert(describe_aggregate(new, a), history);
        }
    }
    s.short_history = short
        .into_iter()
        .map(|(aggregate, history)| ShortHistory { aggregate, history })
        .collect();
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// A summary as said once it was applied ("stay", not "would stay").
pub struct Applied<'a>(&'a Summary);

impl fmt::Display for Applied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, true)
    }
}

impl Summary {
    /// The summary of an upgrade that was applied.
    pub fn applied(&self) -> Applied<'_> {
        Applied(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, applied: bool) -> fmt::Result {
        if self.other_changes {
            return writeln!(
                f,
                "  templates, channels, limits or the order of declarations changed; no journey, attribute, consent topic or aggregate did"
            );
        }
        if self.is_empty() {
            return writeln!(f, "  no change a running store would see");
        }
        self.write_journeys(f, applied)?;
        self.write_profile_changes(f)
    }

    fn write_journeys(&self, f: &mut fmt::Formatter<'_>, applied: bool) -> fmt::Result {
        // "would stay" before it is applied; "stays" or "stay" after.
        let verb = |base: &str, n: u64| match (applied, n) {
            (false, _) => format!("would {base}"),
            (true, 1) => format!("{base}s"),
            (true, _) => base.to_string(),
        };
        if !self.journeys_added.is_empty() {
            writeln!(
                f,
                "  journeys added: {} (new entries follow them)",
                self.journeys_added.join(", ")
            )?;
        }
        for v in &self.journeys_changed {
            match v.active {
                0 => writeln!(
                    f,
                    "  journey changed: {} (no instance is active in it)",
                    v.journey
                )?,
                n => writeln!(
                    f,
                    "  journey changed: {} ({n} active {} {} on the old version until {}; new entries follow the new one)",
                    v.journey,
                    plural(n, "instance", "instances"),
                    verb("stay", n),
                    if n == 1 { "it ends" } else { "they end" },
                )?,
            }
        }
        for v in &self.journeys_removed {
            match v.active {
                0 => writeln!(
                    f,
                    "  journey removed: {} (no instance is active in it)",
                    v.journey
                )?,
                n => writeln!(
                    f,
                    "  journey removed: {} ({n} active {} {} to {} end)",
                    v.journey,
                    plural(n, "instance", "instances"),
                    verb("run", n),
                    if n == 1 { "its" } else { "their" },
                )?,
            }
        }
        if self.journeys_unchanged > 0 {
            writeln!(f, "  journeys unchanged: {}", self.journeys_unchanged)?;
        }
        Ok(())
    }

    /// What changes in every profile: attributes, consent topics, aggregates'
    /// history.
    fn write_profile_changes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[String]| items.join(", ");
        if !self.attributes_added.is_empty() {
            writeln!(
                f,
                "  attributes added: {} (each starts at its default)",
                list(&self.attributes_added)
            )?;
        }
        if !self.attributes_removed.is_empty() {
            writeln!(
                f,
                "  attributes removed: {} (dropped from every profile)",
                list(&self.attributes_removed)
            )?;
        }
        for r in &self.attributes_retyped {
            writeln!(
                f,
                "  attribute retyped: {} ({} → {}; restarts at its default)",
                r.attribute, r.from, r.to
            )?;
        }
        for t in &self.topics_added {
            writeln!(
                f,
                "  consent topic added: {} ({})",
                t.topic,
                if t.granted {
                    "opt_out: granted until revoked"
                } else {
                    "opt_in: not granted until granted"
                }
            )?;
        }
        if !self.topics_removed.is_empty() {
            writeln!(
                f,
                "  consent topics removed: {}",
                list(&self.topics_removed)
            )?;
        }
        for h in &self.short_history {
            if h.history == 0 {
                writeln!(
                    f,
                    "  short history: {} counts only from the upgrade on",
                    h.aggregate
                )?;
            } else {
                writeln!(
                    f,
                    "  short history: {} sees only the last {} before the upgrade",
                    h.aggregate,
                    duration(h.history)
                )?;
            }
        }
        Ok(())
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn type_name(ty: Type) -> &'static str {
    match ty {
        Type::Number => "number",
        Type::String => "string",
        Type::Bool => "bool",
        Type::Time => "time",
        Type::Duration => "duration",
        Type::Timezone => "timezone",
        Type::TimeOfDay => "time_of_day",
        Type::ListNumber => "list<number>",
        Type::ListString => "list<string>",
        Type::Any => "any",
    }
}

/// A duration as the policy language writes it, in its largest exact unit.
fn duration(nanos: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (7 * 86_400_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
    ];
    for (unit, suffix) in UNITS {
        if nanos >= unit && nanos % unit == 0 {
            return format!("{}{suffix}", nanos / unit);
        }
    }
    format!("{nanos}ns")
}

/// What an `event.` slot means where an expression is read.
#[derive(Clone, Copy)]
enum Props {
    None,
    Shape(ShapeRef),
}

/// Renders lowered parts with every index replaced by the name it stands for.
struct Canon<'p> {
    program: &'p Program,
    out: String,
}

impl Canon<'_> {
    fn prop_name(&self, props: Props, slot: usize) -> String {
        let p = self.program;
        let prop = match props {
            Props::None => None,
            Props::Shape(ShapeRef::Event(e)) => p.events.get(e).and_then(|e| e.props.get(slot)),
            Props::Shape(ShapeRef::Shape(k)) => p.shapes.get(k).and_then(|s| s.props.get(slot)),
        };
        match prop {
            Some(prop) => format!("{}:{}", prop.name, type_name(prop.ty.ty)),
            None => format!("?{slot}"),
        }
    }

    fn event(&mut self, e: usize) {
        match self.program.events.get(e) {
            Some(def) => {
                let _ = write!(self.out, "{}", def.name);
            }
            None => {
                let _ = write!(self.out, "?event{e}");
            }
        }
    }

    fn names(&mut self, what: &[usize], name: impl Fn(usize) -> Option<String>) {
        self.out.push('[');
        for (k, &i) in what.iter().enumerate() {
            if k > 0 {
                self.out.push(',');
            }
            let n = name(i).unwrap_or_else(|| format!("?{i}"));
            self.out.push_str(&n);
        }
        self.out.push(']');
    }

    fn channel_names(&mut self, channels: &[usize]) {
        let p = self.program;
        self.names(channels, |c| p.channels.get(c).map(|c| c.name.clone()));
    }

    fn expr(&mut self, e: &Expr, props: Props, trigger: ShapeRef) {
        let p = self.program;
        let _ = write!(self.out, "<{}>", type_name(e.ty));
        match &e.kind {
            ExprKind::Const(v) => {
                let _ = write!(self.out, "{v:?}");
            }
            ExprKind::Attr(i) => match p.attrs.get(*i) {
                Some(a) => {
                    let _ = write!(self.out, "profile.{}:{}", a.name, type_name(a.ty.ty));
                }
                None => {
                    let _ = write!(self.out, "profile.?{i}");
                }
            },
            ExprKind::EventProp(i) => {
                let name = self.prop_name(props, *i);
                let _ = write!(self.out, "event.{name}");
            }
            ExprKind::TriggerProp(i) => {
                let name = self.prop_name(Props::Shape(trigger), *i);
                let _ = write!(self.out, "trigger.{name}");
            }
            ExprKind::Now => self.out.push_str("now"),
            ExprKind::Aggregate(i) => match p.aggregates.get(*i) {
                Some(a) => self.aggregate(a),
                None => {
                    let _ = write!(self.out, "?aggregate{i}");
                }
            },
            ExprKind::Segment(i) => match p.segments.get(*i) {
                Some(s) => {
                    self.out.push_str("segment(");
                    self.expr(s, Props::None, trigger);
                    self.out.push(')');
                }
                None => {
                    let _ = write!(self.out, "?segment{i}");
                }
            },
            ExprKind::Not(a) => self.unary("not", a, props, trigger),
            ExprKind::Neg(a) => self.unary("neg", a, props, trigger),
            ExprKind::IsNone(a) => self.unary("is_none", a, props, trigger),
            ExprKind::And(a, b) => self.binary("and", a, b, props, trigger),
            ExprKind::Or(a, b) => self.binary("or", a, b, props, trigger),
            ExprKind::Coalesce(a, b) => self.binary("??", a, b, props, trigger),
            ExprKind::In(a, b) => self.binary("in", a, b, props, trigger),
            ExprKind::Compare(op, a, b) => self.binary(&format!("{op:?}"), a, b, props, trigger),
            ExprKind::Arith(op, a, b) => self.binary(&format!("{op:?}"), a, b, props, trigger),
            ExprKind::List(items) => self.call("list", items, props, trigger),
            ExprKind::Call(f, args) => self.call(&format!("{f:?}"), args, props, trigger),
        }
    }

    fn unary(&mut self, op: &str, a: &Expr, props: Props, trigger: ShapeRef) {
        let _ = write!(self.out, "{op}(");
        self.expr(a, props, trigger);
        self.out.push(')');
    }

    fn binary(&mut self, op: &str, a: &Expr, b: &Expr, props: Props, trigger: ShapeRef) {
        let _ = write!(self.out, "{op}(");
        self.expr(a, props, trigger);
        self.out.push(',');
        self.expr(b, props, trigger);
        self.out.push(')');
    }

    fn call(&mut self, f: &str, args: &[Expr], props: Props, trigger: ShapeRef) {
        let _ = write!(self.out, "{f}(");
        for (k, a) in args.iter().enumerate() {
            if k > 0 {
                self.out.push(',');
            }
            self.expr(a, props, trigger);
        }
        self.out.push(')');
    }

    fn option(&mut self, e: &Option<Expr>, props: Props, trigger: ShapeRef) {
        match e {
            Some(e) => self.expr(e, props, trigger),
            None => self.out.push('-'),
        }
    }

    fn aggregate(&mut self, a: &Aggregate) {
        self.aggregate_events(a);
        let _ = write!(self.out, " within {:?} previous {}", a.window, a.previous);
    }

    /// The events an aggregate counts, without its window.
    fn aggregate_events(&mut self, a: &Aggregate) {
        let kind = match a.kind {
            AggregateKind::Count => "count".to_string(),
            AggregateKind::Sum(slot) => format!(
                "sum:{}",
                self.prop_name(Props::Shape(ShapeRef::Event(a.event)), slot)
            ),
            AggregateKind::Since => "since".to_string(),
            AggregateKind::BestTime => "best_time".to_string(),
        };
        let _ = write!(self.out, "{kind}(");
        self.event(a.event);
        self.out.push_str(" where ");
        let shape = ShapeRef::Event(a.event);
        self.option(&a.filter, Props::Shape(shape), shape);
        self.out.push(')');
    }

    fn cap(&mut self, c: &Cap) {
        let _ = write!(self.out, "cap {} per {:?} on ", c.count, c.window);
        match &c.scope {
            CapScope::All => self.out.push_str("all"),
            CapScope::Journey => self.out.push_str("journey"),
            CapScope::Channels(cs) => self.channel_names(cs),
            CapScope::Category(k) => {
                let name = self.program.categories.get(*k).cloned();
                let _ = write!(self.out, "category {}", name.unwrap_or_default());
            }
        }
        self.out.push(';');
    }

    fn journey(&mut self, j: &Journey) {
        let p = self.program;
        let trigger = j.shape;
        let _ = write!(
            self.out,
            "priority {} transactional {} reenter {:?};",
            j.priority, j.transactional, j.reenter
        );
        match &j.trigger {
            Trigger::Events(events) => {
                self.out.push_str("when ");
                self.names(events, |e| p.events.get(e).map(|e| e.name.clone()));
            }
            Trigger::Inactivity { events, after } => {
                self.out.push_str("when no ");
                self.names(events, |e| p.events.get(e).map(|e| e.name.clone()));
                let _ = write!(self.out, " for {after}");
            }
            Trigger::Schedule { days, minutes } => {
                let _ = write!(self.out, "when {days:?} at {minutes}");
            }
        }
        self.out.push_str(" where ");
        self.option(&j.condition, Props::Shape(trigger), trigger);
        self.out.push(';');
        for (event, condition) in &j.exits {
            self.out.push_str("exit on ");
            self.event(*event);
            let shape = ShapeRef::Event(*event);
            self.option(condition, Props::Shape(shape), trigger);
            self.out.push(';');
        }
        self.out.push_str("requires ");
        self.names(&j.required_consents, |c| {
            p.consents.get(c).map(|c| c.name.clone())
        });
        let category = j.category.and_then(|k| p.categories.get(k)).cloned();
        let _ = write!(self.out, ";category {};", category.unwrap_or_default());
        for c in &j.caps {
            self.cap(c);
        }
        for g in &j.goals {
            self.out.push_str("goal ");
            self.event(g.event);
            let shape = ShapeRef::Event(g.event);
            self.option(&g.condition, Props::Shape(shape), trigger);
            let _ = write!(self.out, " within {};", g.within);
        }
        for (pc, instr) in j.code.iter().enumerate() {
            let _ = write!(self.out, "\n{pc}: ");
            self.instr(instr, trigger);
        }
    }

    fn instr(&mut self, instr: &Instr, trigger: ShapeRef) {
        let p = self.program;
        match instr {
            Instr::Send {
                template,
                channels,
                best,
            } => {
                let name = p.templates.get(*template).map(|t| t.name.clone());
                let _ = write!(self.out, "send {} via ", name.unwrap_or_default());
                self.channel_names(channels);
                if let Some(best) = best {
                    self.out.push_str(" best of");
                    for engagement in best {
                        self.out.push(' ');
                        let sends = p.aggregates.get(engagement.sends);
                        if let Some(a) = sends {
                            self.aggregate(a);
                        }
                        for &e in &engagement.events {
                            if let Some(a) = p.aggregates.get(e) {
                                self.aggregate(a);
                            }
                        }
                    }
                }
            }
            Instr::WaitFor {
                event,
                condition,
                timeout,
                on_timeout,
            } => {
                self.out.push_str("wait for ");
                self.event(*event);
                let shape = ShapeRef::Event(*event);
                self.option(condition, Props::Shape(shape), trigger);
                let _ = write!(self.out, " up to {timeout} else {on_timeout}");
            }
            Instr::WaitUntilExpr(e) => {
                self.out.push_str("wait until ");
                self.expr(e, Props::None, trigger);
            }
            Instr::JumpUnless(e, target) => {
                self.out.push_str("unless ");
                self.expr(e, Props::None, trigger);
                let _ = write!(self.out, " goto {target}");
            }
            Instr::Wait(_) | Instr::WaitUntil(_) | Instr::Jump(_) | Instr::Split { .. } => {
                let _ = write!(self.out, "{instr:?}");
            }
            Instr::Stop => self.out.push_str("stop"),
        }
    }
}

/// The journey as text in which every index is a name: equal texts are the
/// same version of the journey.
pub fn canon_journey(program: &Program, journey: &Journey) -> String {
    let mut c = Canon {
        program,
        out: String::new(),
    };
    c.journey(journey);
    c.out
}

pub(crate) fn canon_aggregate_events(program: &Program, a: &Aggregate) -> String {
    let mut c = Canon {
        program,
        out: String::new(),
    };
    c.aggregate_events(a);
    c.out
}

/// An aggregate as a reader of the summary would write it.
fn describe_aggregate(program: &Program, a: &Aggregate) -> String {
    let event = program.events.get(a.event).map_or("?", |e| e.name.as_str());
    let kind = match a.kind {
        AggregateKind::Count => "count".to_string(),
        AggregateKind::Sum(slot) => {
            let prop = program
                .events
                .get(a.event)
                .and_then(|e| e.props.get(slot))
                .map_or("?", |p| p.name.as_str());
            format!("sum(event.{prop}) of")
        }
        AggregateKind::Since => "since".to_string(),
        AggregateKind::BestTime => "best_time".to_string(),
    };
    let filter = if a.filter.is_some() { " where …" } else { "" };
    let window = match a.window {
        Some(w) => format!(" within {}", duration(w)),
        None => String::new(),
    };
    match a.kind {
        AggregateKind::Sum(_) => format!("{kind} {event}{filter}{window}"),
        _ => format!("{kind}({event}{filter}{window})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ir::tests::lowered as program;

    const BASE: &str = r#"
consent email_marketing opt_out
profile { email: string?, age: number = 0 }
channel email { address profile.email consent email_marketing }
event signed_up { method: string }
event bought { total: number }
template hello { email { subject: "Hi" } }
journey welcome {
  owner "growth"
  when signed_up where profile.age > 1 and count(bought within 7d) < 3
  wait 1d
  send hello via email
}
journey promo {
  owner "growth"
  when bought
  send hello via email
}
"#;

    #[test]
    fn the_same_set_reformatted_and_commented_is_no_change() {
        let old = program(BASE);
        let new = program(&format!(
            "// a comment\n{}",
            BASE.replace("wait 1d", "  wait   1d // a day")
        ));
        let s = summarize(&old, &new, &[4, 0]);
        assert!(s.is_empty(), "{s:?}");
        assert_eq!(s.journeys_unchanged, 2);
    }

    #[test]
    fn a_declaration_added_before_others_does_not_change_the_journeys() {
        // Every index after the new attribute and event shifts; the journeys do not.
        let old = program(BASE);
        let new = program(&BASE.replace(
            "profile { email: string?,",
            "event opened { id: string }\nprofile { tier: string = \"a\", email: string?,",
        ));
        let s = summarize(&old, &new, &[4, 0]);
        assert_eq!(s.attributes_added, ["tier"]);
        assert!(s.journeys_changed.is_empty(), "{s:?}");
        assert_eq!(s.journeys_unchanged, 2);
    }

    #[test]
    fn changes_are_named_with_their_active_instances() {
        let old = program(BASE);
        let new = program(
            &BASE
                .replace("wait 1d", "wait 2d")
                .replace("age: number = 0", "age: string = \"\", vip: bool = false")
                .replace("profile.age > 1", "profile.age != \"\"")
                .replace("count(bought within 7d)", "count(bought within 30d)")
                .replace(
                    "consent email_marketing opt_out",
                    "consent email_marketing opt_out\nconsent sms opt_in",
                )
                .replace("journey promo {", "journey winback {"),
        );
        // Journeys are in arbitration order: priority, then name.
        let welcome = old
            .journeys
            .iter()
            .position(|j| j.name == "welcome")
            .unwrap();
        let mut active = vec![0; 2];
        active[welcome] = 5;
        active[1 - welcome] = 2;
        let s = summarize(&old, &new, &active);
        assert_eq!(s.journeys_added, ["winback"]);
        assert_eq!(
            s.journeys_changed,
            [Versioned {
                journey: "welcome".into(),
                active: 5
            }]
        );
        assert_eq!(
            s.journeys_removed,
            [Versioned {
                journey: "promo".into(),
                active: 2
            }]
        );
        assert_eq!(s.attributes_added, ["vip"]);
        assert_eq!(
            s.attributes_retyped,
            [Retyped {
                attribute: "age".into(),
                from: "number".into(),
                to: "string".into()
            }]
        );
        assert_eq!(
            s.topics_added,
            [Topic {
                topic: "sms".into(),
                granted: false
            }]
        );
        assert_eq!(
            s.short_history,
            [ShortHistory {
                aggregate: "count(bought within 30d)".into(),
                history: 7 * 86_400_000_000_000
            }]
        );
        let text = s.to_string();
        assert!(
            text.contains(
                "journey changed: welcome (5 active instances would stay on the old version"
            ),
            "{text}"
        );
        assert!(
            text.contains("journey removed: promo (2 active instances would run to their end"),
            "{text}"
        );
        assert!(
            text.contains("count(bought within 30d) sees only the last 1w before the upgrade"),
            "{text}"
        );
        assert!(text.contains("consent topic added: sms (opt_in"), "{text}");
    }

    #[test]
    fn a_new_aggregate_counts_from_the_upgrade_on_and_a_shorter_one_is_not_short() {
        let old = program(BASE);
        let shorter = program(&BASE.replace("count(bought within 7d)", "count(bought within 1d)"));
        let s = summarize(&old, &shorter, &[0, 0]);
        assert!(s.short_history.is_empty(), "{s:?}");
        assert_eq!(s.journeys_changed.len(), 1);
        let new = program(&BASE.replace("count(bought within 7d)", "count(signed_up within 7d)"));
        let s = summarize(&old, &new, &[0, 0]);
        assert_eq!(s.short_history.len(), 1);
        assert_eq!(s.short_history[0].history, 0);
        assert!(
            s.to_string().contains("counts only from the upgrade on"),
            "{s}"
        );
    }

    #[test]
    fn a_template_change_is_named_as_another_change() {
        let old = program(BASE);
        let new = program(&BASE.replace("subject: \"Hi\"", "subject: \"Hello\""));
        let s = summarize(&old, &new, &[1, 1]);
        assert!(s.is_empty() && s.other_changes, "{s:?}");
        assert!(s.to_string().contains("templates, channels, limits"), "{s}");
        assert!(!summarize(&old, &old, &[]).other_changes);
    }

    #[test]
    fn unrelated_programs_give_a_summary() {
        let old = program(BASE);
        let new = program("event x { a: number }\n");
        let s = summarize(&new, &old, &[]);
        assert_eq!(s.journeys_added.len(), 2);
        let s = summarize(&old, &new, &[1, 1]);
        assert_eq!(s.journeys_removed.len(), 2);
        assert_eq!(s.attributes_removed, ["age", "email"]);
        assert_eq!(s.topics_removed, ["email_marketing"]);
    }
}
