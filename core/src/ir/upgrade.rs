//! (1.1) Applying a new policy set to a running store (LANGUAGE.md §7.7): the
//! *merged* program the store runs from then on, and the [`Plan`] by which each
//! stored profile carries over to it.
//!
//! The merged program is the new set, and after each of its journeys (in
//! arbitration order) the older versions customers are still in: *retired*
//! copies, which no trigger starts. A retired copy is the old journey with every
//! index translated into the merged program by name. What the new set no longer
//! declares is kept for it as a hidden member that the input never fills: an
//! attribute keeps the value it had at the upgrade, a consent topic goes on
//! being granted and revoked by the input, a channel keeps its old definition,
//! a template its old content. An `exit on`, `wait … for` or `goal` of an old
//! version on an event, or an event property, the new set no longer declares
//! (with that type) never matches again.
//!
//! Promise: pure and total. Any two programs give a merged program and a plan;
//! every index in either is in range or is [`GONE`], which no event carries.

use super::versions::{canon_aggregate_events, canon_journey};
use super::{
    Aggregate, AggregateKind, Attr, Cap, CapScope, Channel, Engagement, Expr, ExprKind, Field,
    Goal, Instr, Journey, Program, Prop, Shape, ShapeRef, Source, Template, TemplateBlock,
    TextPart, Trigger, Type, Value, Versions,
};
use std::collections::BTreeMap;

/// An event (or channel, or journey) index that names nothing: what an old
/// version's reference to something the new set dropped becomes.
pub const GONE: usize = usize::MAX;

/// What runs in the old program's journeys at the upgrade, per journey.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Active instances.
    pub active: Vec<u64>,
    /// Open goal windows.
    pub goals: Vec<u64>,
}

impl Usage {
    fn used(&self, j: usize) -> bool {
        self.active.get(j).is_some_and(|n| *n > 0) || self.goals.get(j).is_some_and(|n| *n > 0)
    }
}

/// Where an old journey's running state goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// To this journey of the merged program, the same version (its steps
    /// are the same by name): the instance goes on there, its trigger
    /// snapshot laid out again by [`Plan::snapshots`].
    Same(usize),
    /// To this retired copy of the old version.
    Retired(usize),
    /// Its instances end at the upgrade (`--upgrade=stop-removed`): the
    /// journey was removed.
    Stop,
    /// Nowhere: nothing runs in it.
    Drop,
}

/// How a current journey's pending inactivity timer carries over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerTimer {
    /// Not an inactivity journey.
    None,
    /// From this old journey (on the same events), moved by `shift`
    /// nanoseconds (the change of its `for` duration).
    Keep { from: usize, shift: i64 },
    /// A new inactivity trigger (or one on other events): it counts from the
    /// upgrade, `after` nanoseconds.
    Start { after: i64 },
}

/// How a profile stored under the old program carries over to the merged one.
/// Vectors indexed by old members say where each goes; vectors indexed by
/// merged members say where each comes from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per old journey.
    pub journeys: Vec<Target>,
    /// Per old journey with a [`Target::Same`] target: for each slot of the
    /// new version's trigger snapshot, the old snapshot's slot with the same
    /// property (name and type).
    pub snapshots: Vec<Vec<Option<usize>>>,
    /// Per merged journey: the old journey whose entries and last entry it
    /// continues (the re-entry rules and instance numbers go on).
    pub history: Vec<Option<usize>>,
    /// Per merged attribute: the old attribute of the same name and type.
    pub attrs: Vec<Option<usize>>,
    /// Per merged consent topic: the old topic of the same name.
    pub consents: Vec<Option<usize>>,
    /// Per merged aggregate: the old aggregate over the same events with the
    /// longest window, whose history it keeps.
    pub aggregates: Vec<Option<usize>>,
    /// Per old channel: the merged channel of the same name ([`GONE`]).
    pub channels: Vec<usize>,
    /// Per old journey: the merged journey its past sends count for.
    pub sends: Vec<usize>,
    /// Per merged journey.
    pub trigger_timers: Vec<TriggerTimer>,
}

/// The merged program for a store written under `old` (itself possibly
/// merged) given the new set `new`, and the plan to carry profiles over.
/// With `stop_removed`, instances of journeys `new` does not have end.
pub fn merge(old: &Program, new: &Program, usage: &Usage, stop_removed: bool) -> (Program, Plan) {
    let mut merged = new.clone();
    for journey in &mut merged.journeys {
        journey.versions = Versions::default();
    }
    let wheres = placements(old, new, usage, stop_removed);
    let copies = retired_copies(old, &mut merged, &wheres);
    let places = arrange(&mut merged, copies);
    let plan = Plan {
        journeys: targets(&wheres, &places),
        snapshots: snapshots(old, &merged, &wheres, &places),
        history: history(old, &merged, &wheres, &places),
        attrs: merged
            .attrs
            .iter()
            .map(|a| {
                old.attrs
                    .iter()
                    .position(|o| o.name == a.name && o.ty.ty == a.ty.ty)
            })
            .collect(),
        consents: merged
            .consents
            .iter()
            .map(|c| old.consents.iter().position(|o| o.name == c.name))
            .collect(),
        aggregates: aggregate_history(old, &merged),
        channels: old
            .channels
            .iter()
            .map(|c| {
                merged
                    .channels
                    .iter()
                    .position(|m| m.name == c.name)
                    .unwrap_or(GONE)
            })
            .collect(),
        sends: sends(old, &wheres, &places),
        trigger_timers: trigger_timers(old, &merged),
    };
    (merged, plan)
}

/// Where an old journey goes, before the merged program is arranged: into
/// the new journey `n` (the same version), a retired copy, or nowhere.
enum Where {
    Same(usize),
    Copy,
    Stop,
    Drop,
}

/// Which old journeys run on in the new version, and which need a copy.
fn placements(old: &Program, new: &Program, usage: &Usage, stop_removed: bool) -> Vec<Where> {
    let new_canon: BTreeMap<&str, (usize, String)> = new
        .journeys
        .iter()
        .enumerate()
        .map(|(n, j)| (j.name.as_str(), (n, canon_journey(new, j))))
        .collect();
    old.journeys
        .iter()
        .enumerate()
        .map(|(j, journey)| {
            let current = new_canon.get(journey.name.as_str());
            let same = current.filter(|(_, text)| *text == canon_journey(old, journey));
            match same {
                Some(&(n, _)) => Where::Same(n),
                None if !usage.used(j) => Where::Drop,
                None if current.is_none() && stop_removed => Where::Stop,
                None => Where::Copy,
            }
        })
        .collect()
}

/// The retired copies, in the old program's order, translated into the
/// merged program (which gains the hidden members they need).
fn retired_copies(old: &Program, merged: &mut Program, wheres: &[Where]) -> Vec<Journey> {
    let mut remap = Remap::new(old, merged);
    wheres
        .iter()
        .enumerate()
        .filter(|(_, w)| matches!(w, Where::Copy))
        .map(|(j, _)| remap.journey(j))
        .collect()
}

/// Where the new set's journeys and the copies ended up in the merged
/// program.
struct Places {
    /// Per journey of the new set.
    current: Vec<usize>,
    /// Per copy, in the order of [`retired_copies`].
    copies: Vec<usize>,
    /// The new set's journeys by name, as merged indices.
    by_name: BTreeMap<String, usize>,
}

/// Puts the copies into the merged program in arbitration order — priority
/// descending, then name; a current journey before its older versions,
/// which keep the order they had — and links each copy with the current
/// journey of its name.
fn arrange(merged: &mut Program, copies: Vec<Journey>) -> Places {
    let current_count = merged.journeys.len();
    let mut order: Vec<(usize, Journey)> = merged.journeys.drain(..).enumerate().collect();
    order.extend(
        copies
            .into_iter()
            .enumerate()
            .map(|(k, j)| (current_count + k, j)),
    );
    order.sort_by(|(a, x), (b, y)| {
        y.priority
            .cmp(&x.priority)
            .then_with(|| x.name.cmp(&y.name))
            .then(a.cmp(b))
    });
    let mut place = vec![0usize; order.len()];
    for (index, (k, _)) in order.iter().enumerate() {
        place[*k] = index;
    }
    merged.journeys = order.into_iter().map(|(_, j)| j).collect();
    let copies = place.split_off(current_count);
    let by_name: BTreeMap<String, usize> = place
        .iter()
        .map(|&index| (merged.journeys[index].name.clone(), index))
        .collect();
    for &index in &copies {
        if let Some(&current) = by_name.get(&merged.journeys[index].name) {
            merged.journeys[index].versions.current = Some(current);
            merged.journeys[current].versions.older.push(index);
        }
    }
    Places {
        current: place,
        copies,
        by_name,
    }
}

/// Per old journey, where its running state goes, in merged indices.
fn targets(wheres: &[Where], places: &Places) -> Vec<Target> {
    let mut copies = places.copies.iter();
    wheres
        .iter()
        .map(|w| match w {
            Where::Same(n) => Target::Same(places.current[*n]),
            Where::Copy => copies.next().map_or(Target::Drop, |&r| Target::Retired(r)),
            Where::Stop => Target::Stop,
            Where::Drop => Target::Drop,
        })
        .collect()
}

/// Per old journey going to the same version, its snapshot's new layout.
fn snapshots(
    old: &Program,
    merged: &Program,
    wheres: &[Where],
    places: &Places,
) -> Vec<Vec<Option<usize>>> {
    wheres
        .iter()
        .enumerate()
        .map(|(j, w)| match w {
            Where::Same(n) => snapshot_map(
                old,
                old.journeys[j].shape,
                merged,
                merged.journeys[places.current[*n]].shape,
            ),
            _ => Vec::new(),
        })
        .collect()
}

/// Per merged journey, the old journey whose entries it continues: a copy
/// its original, a current journey the old current journey of its name.
fn history(
    old: &Program,
    merged: &Program,
    wheres: &[Where],
    places: &Places,
) -> Vec<Option<usize>> {
    let mut history = vec![None; merged.journeys.len()];
    let copied = wheres
        .iter()
        .enumerate()
        .filter(|(_, w)| matches!(w, Where::Copy));
    for ((j, _), &index) in copied.zip(&places.copies) {
        history[index] = Some(j);
    }
    for (j, journey) in old.journeys.iter().enumerate() {
        if journey.versions.retired {
            continue;
        }
        if let Some(&current) = places.by_name.get(&journey.name) {
            history[current] = Some(j);
        }
    }
    history
}

/// Per old journey, the merged journey its past sends count for: the
/// current journey of its name, else its copy.
fn sends(old: &Program, wheres: &[Where], places: &Places) -> Vec<usize> {
    old.journeys
        .iter()
        .zip(targets(wheres, places))
        .map(
            |(journey, target)| match (places.by_name.get(&journey.name), target) {
                (Some(&current), _) => current,
                (None, Target::Retired(r)) => r,
                (None, _) => GONE,
            },
        )
        .collect()
}

/// Per merged aggregate, the old aggregate over the same events with the
/// longest window.
fn aggregate_history(old: &Program, merged: &Program) -> Vec<Option<usize>> {
    merged
        .aggregates
        .iter()
        .map(|a| {
            let events = canon_aggregate_events(merged, a);
            old.aggregates
                .iter()
                .enumerate()
                .filter(|(_, o)| canon_aggregate_events(old, o) == events)
                .max_by_key(|(_, o)| o.window.unwrap_or(i64::MAX))
                .map(|(i, _)| i)
        })
        .collect()
}

/// Per merged journey, how its pending inactivity timer carries over.
fn trigger_timers(old: &Program, merged: &Program) -> Vec<TriggerTimer> {
    merged
        .journeys
        .iter()
        .map(|journey| {
            let Trigger::Inactivity { events, after } = &journey.trigger else {
                return TriggerTimer::None;
            };
            // (A retired copy has no trigger: it never gets here.)
            let names = event_names(merged, events);
            let kept = old
                .journeys
                .iter()
                .enumerate()
                .find_map(|(j, o)| match &o.trigger {
                    Trigger::Inactivity {
                        events: old_events,
                        after: old_after,
                    } if !o.versions.retired
                        && o.name == journey.name
                        && event_names(old, old_events) == names =>
                    {
                        Some(TriggerTimer::Keep {
                            from: j,
                            shift: after.saturating_sub(*old_after),
                        })
                    }
                    _ => None,
                });
            kept.unwrap_or(TriggerTimer::Start { after: *after })
        })
        .collect()
}

fn event_names(program: &Program, events: &[usize]) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .map(|&e| {
            program
                .events
                .get(e)
                .map_or(String::new(), |e| e.name.clone())
        })
        .collect();
    names.sort();
    names
}

/// The properties a trigger snapshot of `shape` holds, in slot order.
fn shape_props(program: &Program, shape: ShapeRef) -> &[Prop] {
    match shape {
        ShapeRef::Event(e) => program.events.get(e).map_or(&[], |e| e.props.as_slice()),
        ShapeRef::Shape(k) => program.shapes.get(k).map_or(&[], |s| s.props.as_slice()),
    }
}

/// For each slot of a snapshot of `to` (in `new`), the slot of a snapshot of
/// `from` (in `old`) holding the same property.
fn snapshot_map(old: &Program, from: ShapeRef, new: &Program, to: ShapeRef) -> Vec<Option<usize>> {
    let before = shape_props(old, from);
    shape_props(new, to)
        .iter()
        .map(|p| {
            before
                .iter()
                .position(|b| b.name == p.name && b.ty.ty == p.ty.ty)
        })
        .collect()
}

/// Translates parts of `old` into `merged`, adding hidden members for what
/// `merged` lacks.
struct Remap<'a> {
    old: &'a Program,
    merged: &'a mut Program,
    attrs: BTreeMap<usize, usize>,
    consents: BTreeMap<usize, usize>,
    channels: BTreeMap<usize, usize>,
    aggregates: BTreeMap<usize, usize>,
    segments: BTreeMap<usize, usize>,
}

/// Where an expression is read: which old event `event.` means, if any.
#[derive(Clone, Copy)]
struct Context {
    event: Option<usize>,
}

const NO_EVENT: Context = Context { event: None };

fn never() -> Expr {
    Expr {
        kind: ExprKind::Const(Value::Bool(false)),
        ty: Type::Bool,
    }
}

impl<'a> Remap<'a> {
    fn new(old: &'a Program, merged: &'a mut Program) -> Remap<'a> {
        Remap {
            old,
            merged,
            attrs: BTreeMap::new(),
            consents: BTreeMap::new(),
            channels: BTreeMap::new(),
            aggregates: BTreeMap::new(),
            segments: BTreeMap::new(),
        }
    }

    /// A retired copy of old journey `j`.
    fn journey(&mut self, j: usize) -> Journey {
        let old = self.old;
        let o = &old.journeys[j];
        // The instances' snapshots stay as they were taken: the copy's shape
        // is the old one's properties, and no event fills it again.
        let props = shape_props(old, o.shape).to_vec();
        self.merged.shapes.push(Shape {
            events: Vec::new(),
            props,
            slots: Vec::new(),
        });
        let shape = ShapeRef::Shape(self.merged.shapes.len() - 1);
        let exits = o
            .exits
            .iter()
            .filter_map(|(e, condition)| {
                let event = self.event(*e)?;
                let condition = match condition {
                    Some(c) => Some(self.expr(c, Context { event: Some(*e) })?),
                    None => None,
                };
                Some((event, condition))
            })
            .collect();
        let required_consents = o
            .required_consents
            .iter()
            .map(|&c| self.consent(c))
            .collect();
        let category = o.category.map(|k| self.category(k));
        let caps = o.caps.iter().map(|c| self.cap(c)).collect();
        let goals = o
            .goals
            .iter()
            .map(|g| {
                let (event, condition) = self.on_event(g.event, &g.condition);
                Goal {
                    event,
                    condition,
                    within: g.within,
                }
            })
            .collect();
        let code = o
            .code
            .iter()
            .map(|instr| self.instr(instr, o.shape, shape))
            .collect();
        Journey {
            name: o.name.clone(),
            priority: o.priority,
            trigger: Trigger::Events(Vec::new()),
            shape,
            condition: None,
            exits,
            reenter: o.reenter,
            required_consents,
            transactional: o.transactional,
            category,
            caps,
            goals,
            code,
            versions: Versions {
                retired: true,
                current: None,
                older: Vec::new(),
            },
        }
    }

    /// An event and a condition over it, as a `goal` or `wait … for` reads
    /// them: one that can no longer match waits for [`GONE`].
    fn on_event(&mut self, e: usize, condition: &Option<Expr>) -> (usize, Option<Expr>) {
        let Some(event) = self.event(e) else {
            return (GONE, None);
        };
        match condition {
            None => (event, None),
            Some(c) => match self.expr(c, Context { event: Some(e) }) {
                Some(c) => (event, Some(c)),
                None => (event, Some(never())),
            },
        }
    }

    fn instr(&mut self, instr: &Instr, old_shape: ShapeRef, shape: ShapeRef) -> Instr {
        match instr {
            Instr::Wait(_) | Instr::WaitUntil(_) | Instr::Jump(_) | Instr::Split { .. } => {
                instr.clone()
            }
            Instr::Stop => Instr::Stop,
            Instr::WaitUntilExpr(e) => {
                Instr::WaitUntilExpr(self.expr(e, NO_EVENT).unwrap_or_else(|| e.clone()))
            }
            Instr::JumpUnless(e, target) => {
                Instr::JumpUnless(self.expr(e, NO_EVENT).unwrap_or_else(never), *target)
            }
            Instr::WaitFor {
                event,
                condition,
                timeout,
                on_timeout,
            } => {
                let (event, condition) = self.on_event(*event, condition);
                Instr::WaitFor {
                    event,
                    condition,
                    timeout: *timeout,
                    on_timeout: *on_timeout,
                }
            }
            Instr::Send {
                template,
                channels,
                best,
            } => Instr::Send {
                template: self.template(*template, old_shape, shape),
                channels: channels.iter().map(|&c| self.channel(c)).collect(),
                best: best.as_ref().map(|best| {
                    best.iter()
                        .map(|e| Engagement {
                            sends: self.aggregate(e.sends),
                            events: e.events.iter().map(|&a| self.aggregate(a)).collect(),
                        })
                        .collect()
                }),
            },
        }
    }

    /// The expression in the merged program, or `None` when it reads an
    /// event property the merged event does not have (with that type).
    fn expr(&mut self, e: &Expr, cx: Context) -> Option<Expr> {
        let sub = |this: &mut Self, a: &Expr| this.expr(a, cx).map(Box::new);
        let kind = match &e.kind {
            ExprKind::Const(v) => ExprKind::Const(v.clone()),
            ExprKind::Now => ExprKind::Now,
            ExprKind::TriggerProp(slot) => ExprKind::TriggerProp(*slot),
            ExprKind::Attr(i) => ExprKind::Attr(self.attr(*i)),
            ExprKind::EventProp(slot) => ExprKind::EventProp(self.prop(cx.event?, *slot)?),
            ExprKind::Aggregate(i) => ExprKind::Aggregate(self.aggregate(*i)),
            ExprKind::Segment(i) => ExprKind::Segment(self.segment(*i)),
            ExprKind::Not(a) => ExprKind::Not(sub(self, a)?),
            ExprKind::Neg(a) => ExprKind::Neg(sub(self, a)?),
            ExprKind::IsNone(a) => ExprKind::IsNone(sub(self, a)?),
            ExprKind::And(a, b) => ExprKind::And(sub(self, a)?, sub(self, b)?),
            ExprKind::Or(a, b) => ExprKind::Or(sub(self, a)?, sub(self, b)?),
            ExprKind::Coalesce(a, b) => ExprKind::Coalesce(sub(self, a)?, sub(self, b)?),
            ExprKind::Compare(op, a, b) => ExprKind::Compare(*op, sub(self, a)?, sub(self, b)?),
            ExprKind::Arith(op, a, b) => ExprKind::Arith(*op, sub(self, a)?, sub(self, b)?),
            ExprKind::In(a, b) => ExprKind::In(sub(self, a)?, sub(self, b)?),
            ExprKind::List(items) => ExprKind::List(
                items
                    .iter()
                    .map(|a| self.expr(a, cx))
                    .collect::<Option<_>>()?,
            ),
            ExprKind::Call(f, args) => ExprKind::Call(
                *f,
                args.iter()
                    .map(|a| self.expr(a, cx))
                    .collect::<Option<_>>()?,
            ),
        };
        Some(Expr { kind, ty: e.ty })
    }

    /// The merged event of the same name, if there is one.
    fn event(&self, e: usize) -> Option<usize> {
        let name = &self.old.events.get(e)?.name;
        self.merged.events.iter().position(|m| &m.name == name)
    }

    /// Slot `slot` of old event `e`, in the merged event of its name.
    fn prop(&self, e: usize, slot: usize) -> Option<usize> {
        let prop = self.old.events.get(e)?.props.get(slot)?;
        let event = self.merged.events.get(self.event(e)?)?;
        event
            .props
            .iter()
            .position(|p| p.name == prop.name && p.ty.ty == prop.ty.ty)
    }

    fn attr(&mut self, i: usize) -> usize {
        if let Some(&m) = self.attrs.get(&i) {
            return m;
        }
        let Some(a) = self.old.attrs.get(i) else {
            return GONE;
        };
        let m = match self
            .merged
            .attrs
            .iter()
            .position(|m| m.name == a.name && m.ty.ty == a.ty.ty)
        {
            Some(m) => m,
            None => {
                self.merged.attrs.push(Attr {
                    source: Source::Retired,
                    ..a.clone()
                });
                self.merged.attrs.len() - 1
            }
        };
        self.attrs.insert(i, m);
        m
    }

    fn consent(&mut self, c: usize) -> usize {
        if let Some(&m) = self.consents.get(&c) {
            return m;
        }
        let Some(topic) = self.old.consents.get(c) else {
            return GONE;
        };
        let m = match self
            .merged
            .consents
            .iter()
            .position(|m| m.name == topic.name)
        {
            Some(m) => m,
            None => {
                self.merged.consents.push(topic.clone());
                self.merged.consents.len() - 1
            }
        };
        self.consents.insert(c, m);
        m
    }

    fn category(&mut self, k: usize) -> usize {
        let Some(name) = self.old.categories.get(k) else {
            return GONE;
        };
        match self.merged.categories.iter().position(|m| m == name) {
            Some(m) => m,
            None => {
                self.merged.categories.push(name.clone());
                self.merged.categories.len() - 1
            }
        }
    }

    /// The merged channel of the same name (the set's current definition),
    /// or the old definition kept hidden.
    fn channel(&mut self, c: usize) -> usize {
        if let Some(&m) = self.channels.get(&c) {
            return m;
        }
        let Some(channel) = self.old.channels.get(c) else {
            return GONE;
        };
        let m = match self
            .merged
            .channels
            .iter()
            .position(|m| m.name == channel.name)
        {
            Some(m) => m,
            None => {
                let hidden = Channel {
                    name: channel.name.clone(),
                    address_attr: self.attr(channel.address_attr),
                    consent: channel.consent.map(|t| self.consent(t)),
                    quiet: channel.quiet,
                    engagement: channel
                        .engagement
                        .iter()
                        .filter_map(|&e| self.event(e))
                        .collect(),
                };
                self.merged.channels.push(hidden);
                self.merged.channels.len() - 1
            }
        };
        self.channels.insert(c, m);
        m
    }

    fn cap(&mut self, c: &Cap) -> Cap {
        let scope = match &c.scope {
            CapScope::All => CapScope::All,
            CapScope::Journey => CapScope::Journey,
            CapScope::Channels(cs) => {
                CapScope::Channels(cs.iter().map(|&c| self.channel(c)).collect())
            }
            CapScope::Category(k) => CapScope::Category(self.category(*k)),
        };
        Cap {
            count: c.count,
            window: c.window,
            scope,
        }
    }

    /// The merged aggregate that is the same (events and window), or a copy.
    fn aggregate(&mut self, i: usize) -> usize {
        if let Some(&m) = self.aggregates.get(&i) {
            return m;
        }
        let Some(a) = self.old.aggregates.get(i) else {
            return GONE;
        };
        let events = canon_aggregate_events(self.old, a);
        let same = self.merged.aggregates.iter().position(|m| {
            m.window == a.window
                && m.previous == a.previous
                && canon_aggregate_events(self.merged, m) == events
        });
        let m = match same {
            Some(m) => m,
            None => {
                let copy = self.aggregate_copy(a);
                self.merged.aggregates.push(copy);
                self.merged.aggregates.len() - 1
            }
        };
        self.aggregates.insert(i, m);
        m
    }

    /// An old aggregate in the merged program; over an event (or a summed
    /// property) the set no longer has, it counts nothing from now on.
    fn aggregate_copy(&mut self, a: &Aggregate) -> Aggregate {
        let event = self.event(a.event);
        let kind = match a.kind {
            AggregateKind::Sum(slot) => match self.prop(a.event, slot) {
                Some(m) => AggregateKind::Sum(m),
                None => AggregateKind::Sum(slot),
            },
            kind => kind,
        };
        let summed_gone =
            matches!(a.kind, AggregateKind::Sum(slot) if self.prop(a.event, slot).is_none());
        let cx = Context {
            event: Some(a.event),
        };
        let filter = a
            .filter
            .as_ref()
            .map(|f| self.expr(f, cx).unwrap_or_else(never));
        Aggregate {
            kind,
            event: match event {
                Some(e) if !summed_gone => e,
                _ => GONE,
            },
            filter,
            window: a.window,
            previous: a.previous,
        }
    }

    fn segment(&mut self, i: usize) -> usize {
        if let Some(&m) = self.segments.get(&i) {
            return m;
        }
        let Some(s) = self.old.segments.get(i) else {
            return GONE;
        };
        let copy = self.expr(s, NO_EVENT).unwrap_or_else(never);
        self.merged.segments.push(copy);
        let m = self.merged.segments.len() - 1;
        self.segments.insert(i, m);
        m
    }

    /// A copy of old template `t` with its text for the old journey's shape,
    /// as the copy's shape reads it.
    fn template(&mut self, t: usize, old_shape: ShapeRef, shape: ShapeRef) -> usize {
        let Some(template) = self.old.templates.get(t) else {
            return GONE;
        };
        let blocks = template
            .blocks
            .iter()
            .map(|b| TemplateBlock {
                channel: self.channel(b.channel),
                fields: b
                    .fields
                    .iter()
                    .map(|f| Field {
                        name: f.name.clone(),
                        by_trigger: vec![(
                            shape,
                            f.text_for(old_shape)
                                .unwrap_or(&[])
                                .iter()
                                .map(|part| match part {
                                    TextPart::Text(s) => TextPart::Text(s.clone()),
                                    TextPart::Value(e) => match self.expr(e, NO_EVENT) {
                                        Some(e) => TextPart::Value(e),
                                        None => TextPart::Text(String::new()),
                                    },
                                })
                                .collect(),
                        )],
                    })
                    .collect(),
            })
            .collect();
        self.merged.templates.push(Template {
            name: template.name.clone(),
            blocks,
        });
        self.merged.templates.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ir::tests::lowered as program;

    const V1: &str = r#"
consent email_marketing opt_out
consent loyalty opt_in
profile { email: string?, points: number = 0 }
channel email { address profile.email consent email_marketing }
event signed_up { method: string }
event bought { total: number }
event returned { total: number }
template hello { email { subject: "Hi {{trigger.method}}", body: "{{profile.points}}" } }
template thanks { email { subject: "Thanks", body: "b" } }
journey welcome {
  owner "growth"
  priority 70
  when signed_up
  exit on returned where event.total > 10
  require consent loyalty
  wait 1d
  wait up to 2d for bought where event.total > 5 { send hello via email }
}
journey promo {
  owner "growth"
  when bought
  send thanks via email
}
"#;

    /// V1 without `points`, `loyalty` and `returned`, and a changed welcome.
    fn v2() -> Program {
        program(
            &V1.replace(", points: number = 0", "")
                .replace("consent loyalty opt_in\n", "")
                .replace("event returned { total: number }\n", "")
                .replace("  exit on returned where event.total > 10\n", "")
                .replace("  require consent loyalty\n", "")
                .replace("{{profile.points}}", "b")
                .replace("wait 1d", "wait 2d"),
        )
    }

    fn used(active: &[u64]) -> Usage {
        Usage {
            active: active.to_vec(),
            goals: vec![0; active.len()],
        }
    }

    #[test]
    fn the_same_set_merges_into_itself() {
        let old = program(V1);
        let new = program(&format!(
            "// reformatted\n{}",
            V1.replace("wait 1d", "wait  1d")
        ));
        let (merged, plan) = merge(&old, &new, &used(&[3, 1]), false);
        assert_eq!(merged.fingerprint(), new.fingerprint());
        assert_eq!(plan.journeys, [Target::Same(0), Target::Same(1)]);
        assert_eq!(plan.history, [Some(0), Some(1)]);
    }

    #[test]
    fn a_changed_journey_in_use_keeps_a_retired_copy_after_the_new_one() {
        let old = program(V1);
        let new = v2();
        let (merged, plan) = merge(&old, &new, &used(&[2, 0]), false);
        let names: Vec<(&str, bool)> = merged
            .journeys
            .iter()
            .map(|j| (j.name.as_str(), j.versions.retired))
            .collect();
        assert_eq!(
            names,
            [("welcome", false), ("welcome", true), ("promo", false)]
        );
        assert_eq!(plan.journeys, [Target::Retired(1), Target::Same(2)]);
        assert_eq!(merged.journeys[0].versions.older, [1]);
        assert_eq!(merged.journeys[1].versions.current, Some(0));
        assert_eq!(merged.lineage(1), 0);
        // The copy is never started.
        assert_eq!(merged.journeys[1].trigger, Trigger::Events(Vec::new()));
        assert!(merged.journeys[1].condition.is_none());
        // `points` and `loyalty` are kept hidden for it; `returned` is gone,
        // so its exit is dropped; the wait still reads `bought`.
        let points = merged
            .attrs
            .iter()
            .position(|a| a.name == "points")
            .unwrap();
        assert_eq!(merged.attrs[points].source, Source::Retired);
        assert_eq!(plan.attrs[points], Some(1));
        let loyalty = merged
            .consents
            .iter()
            .position(|c| c.name == "loyalty")
            .unwrap();
        assert_eq!(merged.journeys[1].required_consents, [loyalty]);
        assert!(merged.journeys[1].exits.is_empty());
        let bought = merged
            .events
            .iter()
            .position(|e| e.name == "bought")
            .unwrap();
        assert!(matches!(
            merged.journeys[1].code[1],
            Instr::WaitFor { event, condition: Some(_), .. } if event == bought
        ));
        // Its own copy of the old template, for the old snapshot's layout.
        let Instr::Send { template, .. } = merged.journeys[1].code[2] else {
            panic!("{:?}", merged.journeys[1].code);
        };
        assert_eq!(merged.templates[template].name, "hello");
        assert_ne!(template, 0, "not the new set's template");
        let body = &merged.templates[template].blocks[0].fields[1];
        assert!(body.text_for(merged.journeys[1].shape).is_some());
        // Nothing the new set reads changed: a second merge of the same
        // set with nothing running drops the copy and the hidden members'
        // use, and gives the new set's journeys back.
        let (again, plan) = merge(&merged, &new, &used(&[0, 0, 0]), false);
        let names: Vec<&str> = again.journeys.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["welcome", "promo"]);
        assert_eq!(
            plan.journeys,
            [Target::Same(0), Target::Drop, Target::Same(1)]
        );
    }

    #[test]
    fn an_unused_changed_journey_is_not_kept_and_a_removed_one_can_stop() {
        let old = program(V1);
        let new = program(&V1.replace("journey promo {", "journey promo2 {"));
        let (merged, plan) = merge(&old, &new, &used(&[0, 1]), true);
        assert_eq!(merged.journeys.len(), 2);
        assert_eq!(plan.journeys, [Target::Same(0), Target::Stop]);
        assert_eq!(plan.sends, [0, GONE]);
        let (merged, plan) = merge(&old, &new, &used(&[0, 1]), false);
        assert_eq!(merged.journeys.len(), 3);
        // Arbitration order: `promo` before `promo2`.
        assert_eq!(plan.journeys[1], Target::Retired(1));
        assert_eq!(merged.journeys[1].versions.current, None);
        assert_eq!(merged.journeys[2].name, "promo2");
        assert_eq!(plan.sends, [0, 1]);
    }

    #[test]
    fn inactivity_timers_move_by_the_change_of_their_duration() {
        let text = V1.replace("when bought\n", "when no bought for 30d\n");
        let old = program(&text);
        let new = program(&text.replace("for 30d", "for 20d"));
        let (_, plan) = merge(&old, &new, &used(&[0, 0]), false);
        let day = 86_400_000_000_000;
        assert_eq!(
            plan.trigger_timers[1],
            TriggerTimer::Keep {
                from: 1,
                shift: -10 * day
            }
        );
        let other = program(&text.replace("when no bought for 30d", "when no signed_up for 30d"));
        let (_, plan) = merge(&old, &other, &used(&[0, 0]), false);
        assert_eq!(
            plan.trigger_timers[1],
            TriggerTimer::Start { after: 30 * day }
        );
    }
}
