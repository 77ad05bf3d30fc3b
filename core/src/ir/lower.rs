//! AST → IR. Runs only on policy sets without errors; resolution failures would be
//! checker bugs and come back as [`LowerError`], never as a panic.

use crate::ir::*;
use crate::source::FileId;
use crate::syntax::ast::{
    self, BinaryOp, ClauseKind, DeclKind, Else, ExprKind as Ast, StepKind, StrPart, UnaryOp,
    WindowKind,
};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerError(pub String);

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "internal error while compiling the policy set: {}",
            self.0
        )
    }
}

impl std::error::Error for LowerError {}

type Result<T> = std::result::Result<T, LowerError>;

fn err<T>(what: impl Into<String>) -> Result<T> {
    Err(LowerError(what.into()))
}

const NANOS: i64 = 1_000_000_000;

/// Lowers a checked policy set.
pub fn lower(modules: &[(FileId, ast::Module)]) -> Result<Program> {
    let decls = Decls::collect(modules);
    let mut l = Lowerer {
        category_ix: index(decls.categories.iter().copied()),
        consent_ix: index(decls.consents.iter().map(|c| c.name.name.as_str())),
        event_ix: index(decls.events.iter().map(|e| e.name.name.as_str())),
        channel_ix: index(decls.channels.iter().map(|c| c.name.name.as_str())),
        segment_ix: index(decls.segments.iter().map(|s| s.name.name.as_str())),
        template_ix: index(decls.templates.iter().map(|t| t.name.name.as_str())),
        ..Lowerer::default()
    };

    let mut program = Program {
        consents: decls
            .consents
            .iter()
            .map(|c| Consent {
                name: c.name.name.clone(),
                external: c.external.as_ref().and_then(ast::StrLit::as_plain),
                granted_by_default: c.mode == ast::ConsentMode::OptOut,
            })
            .collect(),
        attrs: Vec::new(),
        timezone_attr: None,
        events: Vec::new(),
        channels: Vec::new(),
        caps: Vec::new(),
        global_quiet: None,
        segments: Vec::new(),
        aggregates: Vec::new(),
        templates: Vec::new(),
        journeys: Vec::new(),
        categories: decls.categories.iter().map(|c| c.to_string()).collect(),
        sent_event: None,
        shapes: Vec::new(),
    };
    // The schema, then what reads it: segments, journeys, templates.
    if let Some(p) = decls.profile {
        l.profile(&mut program, p)?;
    }
    l.events(&mut program, &decls.events)?;
    l.channels(&mut program, &decls.channels)?;
    if let Some(limits) = decls.limits {
        l.limits(&mut program, limits)?;
    }
    for s in &decls.segments {
        let e = l.expr(&s.expr, Scope::default())?;
        program.segments.push(e);
    }
    let senders = l.journeys(&mut program, &decls.journeys)?;
    l.templates(&mut program, &decls.templates, &senders)?;
    program.journeys.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    program.aggregates = l.aggregates;
    program.sent_event = l.sent_event;
    program.events = l.events;
    program.shapes = l.shapes;
    Ok(program)
}

/// The declarations of a set by kind, each kind in a stable (sorted) order,
/// so that indices do not depend on file order.
#[derive(Default)]
struct Decls<'m> {
    consents: Vec<&'m ast::ConsentDecl>,
    events: Vec<&'m ast::EventDecl>,
    channels: Vec<&'m ast::ChannelDecl>,
    segments: Vec<&'m ast::SegmentDecl>,
    templates: Vec<&'m ast::TemplateDecl>,
    journeys: Vec<&'m ast::JourneyDecl>,
    categories: Vec<&'m str>,
    profile: Option<&'m ast::ProfileDecl>,
    limits: Option<&'m ast::LimitsDecl>,
}

impl<'m> Decls<'m> {
    fn collect(modules: &'m [(FileId, ast::Module)]) -> Decls<'m> {
        let mut d = Decls::default();
        for decl in modules.iter().flat_map(|(_, m)| m.decls.iter()) {
            match &decl.kind {
                DeclKind::Consent(c) => d.consents.push(c),
                DeclKind::Event(e) => d.events.push(e),
                DeclKind::Channel(c) => d.channels.push(c),
                DeclKind::Segment(s) => d.segments.push(s),
                DeclKind::Template(t) => d.templates.push(t),
                DeclKind::Journey(j) => d.journeys.push(j),
                DeclKind::Profile(p) => d.profile = Some(p),
                DeclKind::Limits(x) => d.limits = Some(x),
                DeclKind::Category(c) => d.categories.push(&c.name.name),
                // Tests are run by `nudge test` from the syntax tree; `run` ignores them.
                DeclKind::Test(_) => {}
            }
        }
        d.categories.sort_unstable();
        d.consents.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        d.events.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        d.channels.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        d.segments.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        d.templates.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        d
    }
}

impl Lowerer {
    fn profile(&mut self, program: &mut Program, p: &ast::ProfileDecl) -> Result<()> {
        for attr in &p.attrs {
            let ty = slot_type(&attr.ty)?;
            let default = match &attr.default {
                Some(e) => constant(e)?,
                None => Value::None,
            };
            if attr.name.name == "timezone" && ty.ty == Type::Timezone {
                program.timezone_attr = Some(program.attrs.len());
            }
            self.attr_ix
                .insert(attr.name.name.clone(), program.attrs.len());
            self.attr_types.push(ty);
            program.attrs.push(Attr {
                name: attr.name.name.clone(),
                ty,
                default,
                source: source(&attr.name, attr.source.as_ref()),
                sensitive: attr.sensitive.is_some(),
            });
        }
        Ok(())
    }

    fn events(&mut self, program: &mut Program, events: &[&ast::EventDecl]) -> Result<()> {
        for e in events {
            let props = e
                .props
                .iter()
                .map(|p| {
                    Ok(Prop {
                        name: p.name.name.clone(),
                        ty: slot_type(&p.ty)?,
                        source: source(&p.name, p.source.as_ref()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            program.events.push(EventDef {
                name: e.name.name.clone(),
                external: match &e.external {
                    Some(s) => s.as_plain().unwrap_or_default(),
                    None => e.name.name.clone(),
                },
                props,
                builtin: false,
            });
        }
        self.events = program.events.clone();
        Ok(())
    }

    fn channels(&mut self, program: &mut Program, channels: &[&ast::ChannelDecl]) -> Result<()> {
        self.channels_engagement = channels
            .iter()
            .map(|c| c.engagement.iter().map(|e| self.event(&e.name)).collect())
            .collect::<Result<_>>()?;
        for c in channels {
            let address = c
                .address
                .as_ref()
                .and_then(|p| p.segments.get(1))
                .map(|s| s.name.as_str());
            let Some(&address_attr) = address.and_then(|a| self.attr_ix.get(a)) else {
                return err(format!(
                    "channel `{}` has no resolvable address",
                    c.name.name
                ));
            };
            program.channels.push(Channel {
                name: c.name.name.clone(),
                address_attr,
                consent: match &c.consent {
                    Some(t) => Some(self.consent(&t.name)?),
                    None => None,
                },
                quiet: c.quiet.as_ref().map(quiet),
                engagement: c
                    .engagement
                    .iter()
                    .map(|e| self.event(&e.name))
                    .collect::<Result<_>>()?,
            });
        }
        Ok(())
    }

    fn limits(&mut self, program: &mut Program, limits: &ast::LimitsDecl) -> Result<()> {
        for cap in &limits.caps {
            program.caps.push(Cap {
                count: cap.count,
                window: cap_window(&cap.window)?,
                scope: match &cap.scope {
                    ast::CapScope::All => CapScope::All,
                    ast::CapScope::Channels(list) => CapScope::Channels(
                        list.iter()
                            .map(|c| self.channel(&c.name))
                            .collect::<Result<_>>()?,
                    ),
                    ast::CapScope::Category(c) => CapScope::Category(self.category(&c.name)?),
                },
            });
        }
        program.global_quiet = limits.quiet.first().map(quiet);
        Ok(())
    }

    /// The journeys, in declaration order for now; per template, the trigger
    /// shapes of the journeys that send it.
    fn journeys(
        &mut self,
        program: &mut Program,
        journeys: &[&ast::JourneyDecl],
    ) -> Result<BTreeMap<usize, Vec<ShapeRef>>> {
        let mut senders: BTreeMap<usize, Vec<ShapeRef>> = BTreeMap::new();
        for j in journeys {
            let journey = self.journey(j)?;
            for instr in &journey.code {
                if let Instr::Send { template, .. } = instr {
                    let triggers = senders.entry(*template).or_default();
                    if !triggers.contains(&journey.shape) {
                        triggers.push(journey.shape);
                    }
                }
            }
            program.journeys.push(journey);
        }
        Ok(senders)
    }

    /// Each template, its text lowered once per trigger shape of the
    /// journeys that send it.
    fn templates(
        &mut self,
        program: &mut Program,
        templates: &[&ast::TemplateDecl],
        senders: &BTreeMap<usize, Vec<ShapeRef>>,
    ) -> Result<()> {
        for (ti, t) in templates.iter().enumerate() {
            let mut triggers = senders.get(&ti).cloned().unwrap_or_default();
            triggers.sort_unstable();
            let mut blocks = Vec::new();
            for b in &t.blocks {
                let mut fields = Vec::new();
                for f in &b.fields {
                    let mut by_trigger = Vec::new();
                    for &trigger in &triggers {
                        let scope = Scope {
                            trigger: Some(trigger),
                            ..Scope::default()
                        };
                        let mut parts = Vec::new();
                        for part in &f.value.parts {
                            match part {
                                StrPart::Text(text, _) => {
                                    parts.push(TextPart::Text(text.clone()));
                                }
                                StrPart::Interp(e) => {
                                    parts.push(TextPart::Value(self.expr(e, scope)?));
                                }
                            }
                        }
                        by_trigger.push((trigger, parts));
                    }
                    fields.push(Field {
                        name: f.name.name.clone(),
                        by_trigger,
                    });
                }
                blocks.push(TemplateBlock {
                    channel: self.channel(&b.channel.name)?,
                    fields,
                });
            }
            program.templates.push(Template {
                name: t.name.name.clone(),
                blocks,
            });
        }
        Ok(())
    }
}

fn index<'a>(names: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    names.enumerate().map(|(i, n)| (n.to_string(), i)).collect()
}

fn quiet(q: &ast::QuietWindow) -> Quiet {
    Quiet {
        from: q.from.minutes,
        to: q.to.minutes,
    }
}

fn nanos(seconds: u64) -> Result<i64> {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| s.checked_mul(NANOS))
        .map_or_else(
            || err(format!("the duration of {seconds}s is too long to run")),
            Ok,
        )
}

/// Where a field is read from: its `from`, else the member of its own name.
fn source(name: &ast::Ident, from: Option<&ast::StrLit>) -> Source {
    match from.and_then(ast::StrLit::as_plain) {
        Some(p) if p.starts_with('/') => Source::Pointer(p),
        Some(m) => Source::Member(m),
        None => Source::Member(name.name.clone()),
    }
}

fn slot_type(t: &ast::TypeExpr) -> Result<SlotType> {
    let ty = match &t.kind {
        ast::TypeKind::Number => Type::Number,
        ast::TypeKind::String => Type::String,
        ast::TypeKind::Bool => Type::Bool,
        ast::TypeKind::Time => Type::Time,
        ast::TypeKind::Duration => Type::Duration,
        ast::TypeKind::Timezone => Type::Timezone,
        ast::TypeKind::TimeOfDay => Type::TimeOfDay,
        ast::TypeKind::List(inner) => match inner.kind {
            ast::TypeKind::Number => Type::ListNumber,
            _ => Type::ListString,
        },
        ast::TypeKind::Error => return err("a type with errors"),
    };
    Ok(SlotType {
        ty,
        optional: t.optional,
    })
}

/// The value of a constant expression (a default).
fn constant(e: &ast::Expr) -> Result<Value> {
    Ok(match &e.kind {
        Ast::Number(n) => Value::Number(*n),
        Ast::Str(s) => Value::Str(s.as_plain().unwrap_or_default().into()),
        Ast::Bool(b) => Value::Bool(*b),
        Ast::Duration(d) => Value::Duration(nanos(*d)?),
        Ast::TimeOfDay(m) => Value::Duration(i64::from(*m) * crate::ir::NANOS_PER_MINUTE),
        Ast::Timestamp { seconds, nanos: n } => {
            Value::Time(seconds.saturating_mul(NANOS).saturating_add(i64::from(*n)))
        }
        Ast::List(items) => Value::List(
            items
                .iter()
                .map(constant)
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        Ast::Unary(UnaryOp::Neg, x) => match constant(x)? {
            Value::Number(n) => Value::Number(-n),
            Value::Duration(d) => Value::Duration(-d),
            _ => return err("a negated non-number default"),
        },
        Ast::Paren(x) => constant(x)?,
        _ => return err("a default that is not a constant"),
    })
}

/// What `event.` and `trigger.` refer to while lowering an expression.
#[derive(Clone, Copy, Default)]
struct Scope {
    event: Option<ShapeRef>,
    trigger: Option<ShapeRef>,
}

#[derive(Default)]
struct Lowerer {
    consent_ix: BTreeMap<String, usize>,
    event_ix: BTreeMap<String, usize>,
    channel_ix: BTreeMap<String, usize>,
    segment_ix: BTreeMap<String, usize>,
    template_ix: BTreeMap<String, usize>,
    category_ix: BTreeMap<String, usize>,
    attr_ix: BTreeMap<String, usize>,
    attr_types: Vec<SlotType>,
    events: Vec<EventDef>,
    /// (1.1) `sent`'s index in `events`, once an aggregate reads it.
    sent_event: Option<usize>,
    shapes: Vec<Shape>,
    /// Per channel, its engagement events (for `via best of`).
    channels_engagement: Vec<Vec<usize>>,
    aggregates: Vec<Aggregate>,
    /// Splits seen so far in the journey being lowered (their `split_index`).
    splits: u32,
}

impl Lowerer {
    fn lookup(map: &BTreeMap<String, usize>, name: &str, what: &str) -> Result<usize> {
        map.get(name)
            .copied()
            .map_or_else(|| err(format!("unknown {what} `{name}`")), Ok)
    }

    fn consent(&self, name: &str) -> Result<usize> {
        Self::lookup(&self.consent_ix, name, "consent topic")
    }

    fn channel(&self, name: &str) -> Result<usize> {
        Self::lookup(&self.channel_ix, name, "channel")
    }

    fn event(&self, name: &str) -> Result<usize> {
        Self::lookup(&self.event_ix, name, "event")
    }

    fn category(&self, name: &str) -> Result<usize> {
        Self::lookup(&self.category_ix, name, "category")
    }

    /// An event an aggregate reads: a declared one, or (1.1) the built-in
    /// `sent`, added as the last event the first time one reads it.
    fn counted_event(&mut self, name: &str) -> Result<usize> {
        if let Some(&i) = self.event_ix.get(name) {
            return Ok(i);
        }
        if name != crate::check::SENT {
            return err(format!("unknown event `{name}`"));
        }
        if let Some(i) = self.sent_event {
            return Ok(i);
        }
        let string = |name: &str, optional| Prop {
            name: name.into(),
            ty: SlotType {
                ty: Type::String,
                optional,
            },
            source: Source::Member(name.into()),
        };
        self.events.push(EventDef {
            name: name.into(),
            external: String::new(),
            props: vec![
                string("journey", false),
                string("template", false),
                string("channel", false),
                string("category", true),
            ],
            builtin: true,
        });
        let i = self.events.len() - 1;
        self.sent_event = Some(i);
        Ok(i)
    }

    fn prop(&self, shape: ShapeRef, name: &str) -> Result<(usize, SlotType)> {
        let (props, whose) = match shape {
            ShapeRef::Event(event) => {
                let def = self
                    .events
                    .get(event)
                    .map_or_else(|| err("event index"), Ok)?;
                (&def.props, def.name.as_str())
            }
            ShapeRef::Shape(k) => {
                let shape = self.shapes.get(k).map_or_else(|| err("shape index"), Ok)?;
                (&shape.props, "a multi-event trigger")
            }
        };
        props
            .iter()
            .position(|p| p.name == name)
            .map(|i| (i, props[i].ty))
            .map_or_else(
                || err(format!("unknown property `{name}` of `{whose}`")),
                Ok,
            )
    }

    /// The shape of a journey on `events` (none: a timer): the events' own
    /// properties for one event, else those declared alike on each.
    fn shape(&mut self, events: &[usize]) -> Result<ShapeRef> {
        if let [one] = events {
            return Ok(ShapeRef::Event(*one));
        }
        let mut props: Vec<Prop> = Vec::new();
        if let Some(first) = events.first().and_then(|e| self.events.get(*e)) {
            props = first
                .props
                .iter()
                .filter(|p| {
                    events.iter().all(|e| {
                        self.events.get(*e).is_some_and(|def| {
                            def.props.iter().any(|q| q.name == p.name && q.ty == p.ty)
                        })
                    })
                })
                .cloned()
                .collect();
        }
        let slots = events
            .iter()
            .map(|e| {
                let def = self.events.get(*e);
                props
                    .iter()
                    .map(|p| {
                        def.and_then(|d| d.props.iter().position(|q| q.name == p.name))
                            .unwrap_or(0)
                    })
                    .collect()
            })
            .collect();
        let shape = Shape {
            events: events.to_vec(),
            props,
            slots,
        };
        let k = match self.shapes.iter().position(|s| *s == shape) {
            Some(k) => k,
            None => {
                self.shapes.push(shape);
                self.shapes.len() - 1
            }
        };
        Ok(ShapeRef::Shape(k))
    }

    /// A journey's clauses and steps. Long by design: one arm per clause kind
    /// (LANGUAGE.md §4), each setting one field of the journey.
    fn journey(&mut self, j: &ast::JourneyDecl) -> Result<Journey> {
        let mut trigger = None;
        let mut condition = None;
        let mut exits = Vec::new();
        let mut priority = 50u8;
        let mut reenter = Reenter::AfterEnd;
        let mut required = Vec::new();
        let mut transactional = false;
        let mut category = None;
        let mut caps = Vec::new();
        let mut goals = Vec::new();
        for c in &j.clauses {
            match &c.kind {
                ClauseKind::When(t) => {
                    let (t, shape, cond) = self.when(t)?;
                    (trigger, condition) = (Some((t, shape)), cond);
                }
                ClauseKind::WhenNo {
                    events,
                    after,
                    condition: cond,
                } => {
                    let (t, shape, cond) = self.when_no(events, after, cond.as_ref())?;
                    (trigger, condition) = (Some((t, shape)), cond);
                }
                ClauseKind::WhenScheduled {
                    days,
                    time,
                    condition: cond,
                } => {
                    let (t, shape, cond) = self.when_scheduled(days, time, cond.as_ref())?;
                    (trigger, condition) = (Some((t, shape)), cond);
                }
                ClauseKind::ExitOn(t) => {
                    let ev = self.event(&t.event.name)?;
                    exits.push((ev, self.over_event(t.condition.as_ref(), ev)?));
                }
                ClauseKind::Category(name) => category = Some(self.category(&name.name)?),
                ClauseKind::Cap { count, window, .. } => caps.push(Cap {
                    count: *count,
                    window: cap_window(window)?,
                    scope: CapScope::Journey,
                }),
                ClauseKind::Goal {
                    event,
                    condition,
                    within,
                } => {
                    let event = self.event(&event.name)?;
                    goals.push(Goal {
                        event,
                        condition: self.over_event(condition.as_ref(), event)?,
                        within: nanos(within.seconds)?,
                    });
                }
                ClauseKind::Priority { value, .. } => priority = *value as u8,
                ClauseKind::ReenterAfter(d) => reenter = Reenter::After(nanos(d.seconds)?),
                ClauseKind::ReenterNever => reenter = Reenter::Never,
                ClauseKind::RequireConsent(t) => required.push(self.consent(&t.name)?),
                ClauseKind::Transactional => transactional = true,
                ClauseKind::Owner(_) => {}
            }
        }
        let Some((trigger, shape)) = trigger else {
            return err(format!("journey `{}` has no trigger", j.name.name));
        };
        self.splits = 0;
        let mut code = Vec::new();
        let scope = Scope {
            trigger: Some(shape),
            ..Scope::default()
        };
        self.steps(&j.steps, scope, &mut code)?;
        Ok(Journey {
            name: j.name.name.clone(),
            priority,
            trigger,
            shape,
            condition,
            exits,
            reenter,
            required_consents: required,
            transactional,
            category,
            caps,
            goals,
            code,
            versions: Versions::default(),
        })
    }

    /// `when EVENT[, EVENT] [where …]`: the trigger, its shape, its condition.
    fn when(&mut self, t: &ast::Trigger) -> Result<(Trigger, ShapeRef, Option<Expr>)> {
        let events = t
            .events()
            .map(|e| self.event(&e.name))
            .collect::<Result<Vec<_>>>()?;
        let shape = self.shape(&events)?;
        let scope = Scope {
            event: Some(shape),
            ..Scope::default()
        };
        let condition = t
            .condition
            .as_ref()
            .map(|e| self.expr(e, scope))
            .transpose()?;
        Ok((Trigger::Events(events), shape, condition))
    }

    /// (1.1) `when no EVENT[, EVENT] for D [where …]`.
    fn when_no(
        &mut self,
        events: &[ast::Ident],
        after: &ast::DurationLit,
        cond: Option<&ast::Expr>,
    ) -> Result<(Trigger, ShapeRef, Option<Expr>)> {
        let events = events
            .iter()
            .map(|e| self.event(&e.name))
            .collect::<Result<Vec<_>>>()?;
        let shape = self.shape(&[])?;
        let condition = cond
            .as_ref()
            .map(|e| self.expr(e, Scope::default()))
            .transpose()?;
        let after = nanos(after.seconds)?;
        Ok((Trigger::Inactivity { events, after }, shape, condition))
    }

    /// (1.1) `when at DATE TIME` or `when every DAYS at TIME [where …]`.
    fn when_scheduled(
        &mut self,
        days: &ast::ScheduleDays,
        time: &ast::TimeOfDay,
        cond: Option<&ast::Expr>,
    ) -> Result<(Trigger, ShapeRef, Option<Expr>)> {
        let shape = self.shape(&[])?;
        let condition = cond
            .as_ref()
            .map(|e| self.expr(e, Scope::default()))
            .transpose()?;
        let days = match days {
            ast::ScheduleDays::Once {
                year, month, day, ..
            } => Days::Once {
                year: *year,
                month: *month,
                day: *day,
            },
            ast::ScheduleDays::Every { weekdays, .. } => {
                Days::Every(weekdays.iter().fold(0u8, |m, d| m | 1 << (d % 7)))
            }
        };
        let trigger = Trigger::Schedule {
            days,
            minutes: time.minutes,
        };
        Ok((trigger, shape, condition))
    }

    fn steps(&mut self, steps: &[ast::Step], scope: Scope, code: &mut Vec<Instr>) -> Result<()> {
        for step in steps {
            match &step.kind {
                StepKind::Wait(d) => code.push(Instr::Wait(nanos(d.seconds)?)),
                StepKind::WaitUntil(t) => code.push(Instr::WaitUntil(t.minutes)),
                StepKind::WaitUntilExpr(e) => code.push(Instr::WaitUntilExpr(self.expr(e, scope)?)),
                StepKind::Send {
                    template,
                    channels,
                    best,
                } => code.push(self.send(template, channels, *best)?),
                StepKind::WaitFor {
                    timeout,
                    event,
                    condition,
                    then,
                    otherwise,
                } => self.wait_for(
                    (timeout, event, condition.as_ref()),
                    then,
                    otherwise.as_deref(),
                    scope,
                    code,
                )?,
                StepKind::Stop => code.push(Instr::Stop),
                StepKind::If {
                    condition,
                    then,
                    otherwise,
                } => self.if_else(condition, then, otherwise.as_ref(), scope, code)?,
                StepKind::Split { arms } => self.split(arms, scope, code)?,
            }
        }
        Ok(())
    }

    /// `send T via C[, C] [best]`.
    fn send(
        &mut self,
        template: &ast::Ident,
        channels: &[ast::Ident],
        best: bool,
    ) -> Result<Instr> {
        let channels = channels
            .iter()
            .map(|c| self.channel(&c.name))
            .collect::<Result<Vec<_>>>()?;
        let best = match best {
            true => Some(
                channels
                    .iter()
                    .map(|&c| self.engagement(c))
                    .collect::<Result<_>>()?,
            ),
            false => None,
        };
        Ok(Instr::Send {
            template: Self::lookup(&self.template_ix, &template.name, "template")?,
            channels,
            best,
        })
    }

    /// (1.1) `wait up to D for EVENT [where …] { … } [else { … }]`: the wait,
    /// the `then` steps, a jump over the `else` steps, which the timeout
    /// resumes at.
    fn wait_for(
        &mut self,
        (timeout, event, condition): (&ast::DurationLit, &ast::Ident, Option<&ast::Expr>),
        then: &[ast::Step],
        otherwise: Option<&[ast::Step]>,
        scope: Scope,
        code: &mut Vec<Instr>,
    ) -> Result<()> {
        let event = self.event(&event.name)?;
        let scope = Scope {
            event: Some(ShapeRef::Event(event)),
            ..scope
        };
        let condition = condition
            .as_ref()
            .map(|c| self.expr(c, scope))
            .transpose()?;
        let at = code.len();
        code.push(Instr::WaitFor {
            event,
            condition,
            timeout: nanos(timeout.seconds)?,
            on_timeout: 0,
        });
        self.steps(then, scope, code)?;
        let on_timeout = match otherwise {
            Some(other) => {
                let skip = code.len();
                code.push(Instr::Jump(0));
                let start = code.len();
                self.steps(other, scope, code)?;
                patch_here(code, skip);
                start
            }
            None => code.len(),
        };
        if let Some(Instr::WaitFor { on_timeout: t, .. }) = code.get_mut(at) {
            *t = on_timeout;
        }
        Ok(())
    }

    /// `if C { … } [else …]`: a conditional jump over the `then` steps, and
    /// one over the `else` steps.
    fn if_else(
        &mut self,
        condition: &ast::Expr,
        then: &[ast::Step],
        otherwise: Option<&Else>,
        scope: Scope,
        code: &mut Vec<Instr>,
    ) -> Result<()> {
        let cond = self.expr(condition, scope)?;
        let branch = code.len();
        code.push(Instr::JumpUnless(cond, 0));
        self.steps(then, scope, code)?;
        match otherwise {
            None => patch_here(code, branch),
            Some(other) => {
                let skip = code.len();
                code.push(Instr::Jump(0));
                patch_here(code, branch);
                match other {
                    Else::Block(b) => self.steps(b, scope, code)?,
                    Else::If(s) => self.steps(std::slice::from_ref(s), scope, code)?,
                }
                patch_here(code, skip);
            }
        }
        Ok(())
    }

    /// `split { N% ARM { … } … }`: the split, then each arm's steps ending
    /// in a jump past the last.
    fn split(&mut self, arms: &[ast::SplitArm], scope: Scope, code: &mut Vec<Instr>) -> Result<()> {
        let index = self.splits;
        self.splits += 1;
        let at = code.len();
        code.push(Instr::Split {
            index,
            arms: Vec::new(),
        });
        let mut lowered = Vec::new();
        let mut ends = Vec::new();
        for arm in arms {
            let target = match &arm.body {
                Some(body) => {
                    let start = code.len();
                    self.steps(body, scope, code)?;
                    ends.push(code.len());
                    code.push(Instr::Jump(0));
                    Some(start)
                }
                None => None,
            };
            lowered.push(Arm {
                percent: arm.percent.unwrap_or(0),
                name: arm.name.name.clone(),
                target,
            });
        }
        for end in ends {
            patch_here(code, end);
        }
        code[at] = Instr::Split {
            index,
            arms: lowered,
        };
        Ok(())
    }

    /// An optional condition over `event.` properties of event `event` (a
    /// trigger or exit condition, an aggregate filter).
    fn over_event(&mut self, e: Option<&ast::Expr>, event: usize) -> Result<Option<Expr>> {
        let scope = Scope {
            event: Some(ShapeRef::Event(event)),
            ..Scope::default()
        };
        e.map(|e| self.expr(e, scope)).transpose()
    }

    /// An expression lowered to its typed IR. Long by design: one arm per
    /// syntax kind (LANGUAGE.md §5), each a line or two of mapping.
    fn expr(&mut self, e: &ast::Expr, scope: Scope) -> Result<Expr> {
        let (kind, ty) = match &e.kind {
            Ast::Number(_)
            | Ast::Str(_)
            | Ast::Bool(_)
            | Ast::Duration(_)
            | Ast::TimeOfDay(_)
            | Ast::Timestamp { .. } => {
                let v = constant(e)?;
                let ty = match e.kind {
                    Ast::TimeOfDay(_) => Type::TimeOfDay,
                    _ => value_type(&v),
                };
                (ExprKind::Const(v), ty)
            }
            Ast::None => (ExprKind::Const(Value::None), Type::Any),
            Ast::Paren(x) => return self.expr(x, scope),
            Ast::List(items) => {
                let items = items
                    .iter()
                    .map(|i| self.expr(i, scope))
                    .collect::<Result<Vec<_>>>()?;
                let ty = match items.first().map(|i| i.ty) {
                    Some(Type::Number) => Type::ListNumber,
                    Some(Type::String) => Type::ListString,
                    _ => Type::Any,
                };
                // A list of constants is one constant.
                let consts: Option<Vec<Value>> = items
                    .iter()
                    .map(|i| match &i.kind {
                        ExprKind::Const(v) => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                match consts {
                    Some(values) => (ExprKind::Const(Value::List(values.into())), ty),
                    None => (ExprKind::List(items), ty),
                }
            }
            Ast::Path(p) => self.path(p, scope)?,
            Ast::Call(c) => self.call(c, scope)?,
            Ast::Unary(UnaryOp::Not, x) => {
                (ExprKind::Not(Box::new(self.expr(x, scope)?)), Type::Bool)
            }
            Ast::Unary(UnaryOp::Neg, x) => {
                let x = self.expr(x, scope)?;
                let ty = x.ty;
                (ExprKind::Neg(Box::new(x)), ty)
            }
            Ast::Binary(op, a, b) => {
                // `x == none` and `x != none` test presence.
                if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
                    let tested = match (&a.kind, &b.kind) {
                        (_, Ast::None) => Some(a),
                        (Ast::None, _) => Some(b),
                        _ => None,
                    };
                    if let Some(x) = tested {
                        let test = Expr {
                            kind: ExprKind::IsNone(Box::new(self.expr(x, scope)?)),
                            ty: Type::Bool,
                        };
                        return Ok(if *op == BinaryOp::Eq {
                            test
                        } else {
                            Expr {
                                kind: ExprKind::Not(Box::new(test)),
                                ty: Type::Bool,
                            }
                        });
                    }
                }
                let (x, y) = (
                    Box::new(self.expr(a, scope)?),
                    Box::new(self.expr(b, scope)?),
                );
                match op {
                    BinaryOp::And => (ExprKind::And(x, y), Type::Bool),
                    BinaryOp::Or => (ExprKind::Or(x, y), Type::Bool),
                    BinaryOp::In => (ExprKind::In(x, y), Type::Bool),
                    BinaryOp::Coalesce => {
                        let ty = if x.ty == Type::Any { y.ty } else { x.ty };
                        (ExprKind::Coalesce(x, y), ty)
                    }
                    BinaryOp::Eq => (ExprKind::Compare(CompareOp::Eq, x, y), Type::Bool),
                    BinaryOp::Ne => (ExprKind::Compare(CompareOp::Ne, x, y), Type::Bool),
                    BinaryOp::Lt => (ExprKind::Compare(CompareOp::Lt, x, y), Type::Bool),
                    BinaryOp::Le => (ExprKind::Compare(CompareOp::Le, x, y), Type::Bool),
                    BinaryOp::Gt => (ExprKind::Compare(CompareOp::Gt, x, y), Type::Bool),
                    BinaryOp::Ge => (ExprKind::Compare(CompareOp::Ge, x, y), Type::Bool),
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                        let arith = match op {
                            BinaryOp::Add => ArithOp::Add,
                            BinaryOp::Sub => ArithOp::Sub,
                            BinaryOp::Mul => ArithOp::Mul,
                            _ => ArithOp::Div,
                        };
                        let ty = match (arith, x.ty, y.ty) {
                            (ArithOp::Sub, Type::Time, Type::Time) => Type::Duration,
                            (_, Type::Time, _) | (_, _, Type::Time) => Type::Time,
                            (_, Type::Duration, _) | (_, _, Type::Duration) => Type::Duration,
                            _ => Type::Number,
                        };
                        (ExprKind::Arith(arith, x, y), ty)
                    }
                }
            }
            Ast::Error => return err("an expression with errors"),
        };
        Ok(Expr { kind, ty })
    }

    fn path(&mut self, p: &ast::Path, scope: Scope) -> Result<(ExprKind, Type)> {
        let names: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
        Ok(match names.as_slice() {
            ["profile", attr] => {
                let i = Self::lookup(&self.attr_ix, attr, "attribute")?;
                (ExprKind::Attr(i), self.attr_types[i].ty)
            }
            ["event", prop] => {
                let Some(ev) = scope.event else {
                    return err("`event.` outside a condition");
                };
                let (i, ty) = self.prop(ev, prop)?;
                (ExprKind::EventProp(i), ty.ty)
            }
            ["trigger", prop] => {
                let Some(ev) = scope.trigger else {
                    return err("`trigger.` outside steps");
                };
                let (i, ty) = self.prop(ev, prop)?;
                (ExprKind::TriggerProp(i), ty.ty)
            }
            ["now"] => (ExprKind::Now, Type::Time),
            [segment] => (
                ExprKind::Segment(Self::lookup(&self.segment_ix, segment, "segment")?),
                Type::Bool,
            ),
            _ => return err(format!("unresolvable path `{}`", names.join("."))),
        })
    }

    /// The index of an aggregate, shared with an identical one.
    fn aggregate(&mut self, aggregate: Aggregate) -> usize {
        match self
            .aggregates
            .iter()
            .position(|a| same_aggregate(a, &aggregate))
        {
            Some(i) => i,
            None => {
                self.aggregates.push(aggregate);
                self.aggregates.len() - 1
            }
        }
    }

    /// (1.1) The aggregates that score channel `c` for `via best of`: its
    /// sends (the built-in `sent` on that channel) and each engagement event,
    /// over 90 days.
    fn engagement(&mut self, c: usize) -> Result<Engagement> {
        let sent = self.counted_event(crate::check::SENT)?;
        let name = self
            .channel_ix
            .iter()
            .find(|(_, i)| **i == c)
            .map(|(n, _)| n.clone())
            .map_or_else(|| err("channel index"), Ok)?;
        let (slot, _) = self.prop(ShapeRef::Event(sent), "channel")?;
        let on_channel = Expr {
            kind: ExprKind::Compare(
                CompareOp::Eq,
                Box::new(Expr {
                    kind: ExprKind::EventProp(slot),
                    ty: Type::String,
                }),
                Box::new(Expr {
                    kind: ExprKind::Const(Value::Str(name.as_str().into())),
                    ty: Type::String,
                }),
            ),
            ty: Type::Bool,
        };
        let count = |event, filter| Aggregate {
            kind: AggregateKind::Count,
            event,
            filter,
            window: Some(ENGAGEMENT_WINDOW),
            previous: false,
        };
        let sends = self.aggregate(count(sent, Some(on_channel)));
        let events = self
            .channels_engagement
            .get(c)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| self.aggregate(count(e, None)))
            .collect();
        Ok(Engagement { sends, events })
    }

    fn call(&mut self, c: &ast::Call, scope: Scope) -> Result<(ExprKind, Type)> {
        let name = c.function.name.as_str();
        if matches!(name, "count" | "sum" | "since" | "best_time") {
            let Some(Ast::Path(path)) = c.args.first().map(|a| &a.kind) else {
                return err("an aggregate without an event");
            };
            let event = self.counted_event(path.root())?;
            let kind = match name {
                "count" => AggregateKind::Count,
                "since" => AggregateKind::Since,
                "best_time" => AggregateKind::BestTime,
                _ => {
                    let prop = path.segments.get(1).map_or("", |s| s.name.as_str());
                    AggregateKind::Sum(self.prop(ShapeRef::Event(event), prop)?.0)
                }
            };
            let filter = self.over_event(c.filter.as_deref(), event)?;
            let window = match &c.within {
                Some(w) => Some(nanos(w.seconds)?),
                None => None,
            };
            let aggregate = Aggregate {
                kind,
                event,
                filter,
                window,
                previous: c.previous.is_some(),
            };
            let index = self.aggregate(aggregate);
            let ty = match kind {
                AggregateKind::Since => Type::Duration,
                AggregateKind::BestTime => Type::TimeOfDay,
                AggregateKind::Count | AggregateKind::Sum(_) => Type::Number,
            };
            return Ok((ExprKind::Aggregate(index), ty));
        }
        let (builtin, ty) = match name {
            "lower" => (Builtin::Lower, Type::String),
            "len" => (Builtin::Len, Type::Number),
            "starts_with" => (Builtin::StartsWith, Type::Bool),
            "contains" => (Builtin::Contains, Type::Bool),
            "local_hour" => (Builtin::LocalHour, Type::Number),
            "weekday" => (Builtin::Weekday, Type::String),
            "local_time" => (Builtin::LocalTime, Type::TimeOfDay),
            other => return err(format!("unknown function `{other}`")),
        };
        let args = c
            .args
            .iter()
            .map(|a| self.expr(a, scope))
            .collect::<Result<Vec<_>>>()?;
        Ok((ExprKind::Call(builtin, args), ty))
    }
}

fn same_aggregate(a: &Aggregate, b: &Aggregate) -> bool {
    a.kind == b.kind
        && a.event == b.event
        && a.window == b.window
        && a.filter == b.filter
        && a.previous == b.previous
}

fn cap_window(w: &ast::Window) -> Result<CapWindow> {
    Ok(match &w.kind {
        WindowKind::Rolling(d) => CapWindow::Rolling(nanos(d.seconds)?),
        WindowKind::Day => CapWindow::Day,
        WindowKind::Week => CapWindow::Week,
    })
}

/// Points the jump at `at` to the next instruction to be emitted.
fn patch_here(code: &mut [Instr], at: usize) {
    let target = code.len();
    match &mut code[at] {
        Instr::JumpUnless(_, t) | Instr::Jump(t) => *t = target,
        _ => {}
    }
}

fn value_type(v: &Value) -> Type {
    match v {
        Value::Number(_) => Type::Number,
        Value::Str(_) => Type::String,
        Value::Bool(_) => Type::Bool,
        Value::Time(_) => Type::Time,
        Value::Duration(_) => Type::Duration,
        Value::List(_) | Value::None => Type::Any,
    }
}
