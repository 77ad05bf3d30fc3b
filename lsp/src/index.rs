//! Every name in a policy set, where it is declared and where it is used.
//!
//! One walk over the ASTs records each occurrence of a name with what it names
//! (a [`Symbol`]); hover, go to definition, find references and rename are
//! lookups in that list. Names are resolved the way the checker does: `event.` by
//! the event under test, `trigger.` by the journey's trigger.

use nudge::FileId;
use nudge::source::Span;
use nudge::syntax::ast::*;

/// What a name refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Symbol {
    /// A declaration: its keyword (`event`, `journey` …) and name.
    Decl(&'static str, String),
    /// A profile attribute.
    Attr(String),
    /// A property of an event.
    Prop(String, String),
    /// A split arm of a journey.
    Arm(String, String),
}

#[derive(Clone, Debug)]
pub struct Occurrence {
    pub file: FileId,
    pub span: Span,
    pub symbol: Symbol,
    /// This occurrence is the declaration.
    pub is_decl: bool,
}

#[derive(Default, Debug)]
pub struct Index {
    pub occurrences: Vec<Occurrence>,
    /// Doc comments and one-line descriptions of declarations, for hover.
    pub docs: Vec<(Symbol, String)>,
}

impl Index {
    pub fn build(modules: &[(FileId, Module)]) -> Index {
        let mut index = Index::default();
        // `trigger.` in a template means the trigger of a journey that sends it.
        let mut senders: std::collections::BTreeMap<String, String> =
            std::collections::BTreeMap::new();
        for (_, module) in modules {
            for decl in &module.decls {
                if let DeclKind::Journey(j) = &decl.kind
                    && let Some(trigger) = j.clauses.iter().find_map(|c| match &c.kind {
                        ClauseKind::When(t) => Some(t.event.name.clone()),
                        _ => None,
                    })
                {
                    collect_sends(&j.steps, &trigger, &mut senders);
                }
            }
        }
        for (file, module) in modules {
            let mut w = Walker {
                file: *file,
                index: &mut index,
                event: None,
                trigger: None,
                senders: &senders,
            };
            for decl in &module.decls {
                w.decl(decl);
            }
        }
        index
    }

    /// The occurrence whose span contains `offset`.
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .filter(|o| {
                o.file == file && (o.span.start as usize) <= offset && offset <= o.span.end as usize
            })
            .min_by_key(|o| o.span.len())
    }

    pub fn definition(&self, symbol: &Symbol) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .find(|o| o.is_decl && &o.symbol == symbol)
    }

    pub fn references<'a>(
        &'a self,
        symbol: &'a Symbol,
    ) -> impl Iterator<Item = &'a Occurrence> + 'a {
        self.occurrences.iter().filter(move |o| &o.symbol == symbol)
    }

    pub fn doc(&self, symbol: &Symbol) -> Option<&str> {
        self.docs
            .iter()
            .find(|(s, _)| s == symbol)
            .map(|(_, d)| d.as_str())
    }
}

struct Walker<'i> {
    file: FileId,
    index: &'i mut Index,
    /// The event `event.` means here.
    event: Option<String>,
    /// The event `trigger.` means here.
    trigger: Option<String>,
    /// Template → the trigger of a journey that sends it.
    senders: &'i std::collections::BTreeMap<String, String>,
}

fn collect_sends(
    steps: &[Step],
    trigger: &str,
    out: &mut std::collections::BTreeMap<String, String>,
) {
    for s in steps {
        match &s.kind {
            StepKind::Send { template, .. } => {
                out.entry(template.name.clone())
                    .or_insert_with(|| trigger.to_string());
            }
            StepKind::If {
                then, otherwise, ..
            } => {
                collect_sends(then, trigger, out);
                match otherwise {
                    Some(Else::Block(b)) => collect_sends(b, trigger, out),
                    Some(Else::If(s)) => collect_sends(std::slice::from_ref(s), trigger, out),
                    None => {}
                }
            }
            StepKind::Split { arms } => {
                for a in arms {
                    if let Some(b) = &a.body {
                        collect_sends(b, trigger, out);
                    }
                }
            }
            StepKind::WaitFor {
                then, otherwise, ..
            } => {
                collect_sends(then, trigger, out);
                if let Some(b) = otherwise {
                    collect_sends(b, trigger, out);
                }
            }
            _ => {}
        }
    }
}

impl Walker<'_> {
    fn add(&mut self, span: Span, symbol: Symbol, is_decl: bool) {
        self.index.occurrences.push(Occurrence {
            file: self.file,
            span,
            symbol,
            is_decl,
        });
    }

    fn decl(&mut self, decl: &Decl) {
        let keyword = decl.kind.keyword();
        if let Some(name) = decl.kind.name() {
            let symbol = Symbol::Decl(keyword, name.name.clone());
            self.add(name.span, symbol.clone(), true);
            let mut doc = format!("```nudge\n{}\n```", first_line(decl));
            if let Some(d) = &decl.doc {
                doc.push_str("\n\n");
                doc.push_str(d);
            }
            self.index.docs.push((symbol, doc));
        }
        match &decl.kind {
            DeclKind::Consent(_) => {}
            DeclKind::Profile(p) => {
                for a in &p.attrs {
                    let symbol = Symbol::Attr(a.name.name.clone());
                    self.add(a.name.span, symbol.clone(), true);
                    self.index.docs.push((
                        symbol,
                        if a.sensitive.is_some() {
                            format!(
                                "```nudge\nprofile.{}: {} sensitive\n```\nA sensitive profile attribute: only `private` channels' content may show it, and Nudge never writes its value to dead letters, `why` or `--explain`.",
                                a.name.name, a.ty
                            )
                        } else {
                            format!(
                                "```nudge\nprofile.{}: {}\n```\nA profile attribute.",
                                a.name.name, a.ty
                            )
                        },
                    ));
                    if let Some(d) = &a.default {
                        self.expr(d);
                    }
                }
            }
            DeclKind::Event(e) => {
                for p in &e.props {
                    let symbol = Symbol::Prop(e.name.name.clone(), p.name.name.clone());
                    self.add(p.name.span, symbol.clone(), true);
                    self.index.docs.push((
                        symbol,
                        format!(
                            "```nudge\n{}: {}\n```\nA property of the event `{}`.",
                            p.name.name, p.ty, e.name.name
                        ),
                    ));
                }
            }
            DeclKind::Channel(c) => {
                if let Some(a) = &c.address {
                    self.path(a);
                }
                if let Some(t) = &c.consent {
                    self.add(t.span, Symbol::Decl("consent", t.name.clone()), false);
                }
                for e in &c.engagement {
                    self.add(e.span, Symbol::Decl("event", e.name.clone()), false);
                }
            }
            DeclKind::Limits(l) => {
                for cap in &l.caps {
                    match &cap.scope {
                        CapScope::All => {}
                        CapScope::Channels(list) => {
                            for c in list {
                                self.add(c.span, Symbol::Decl("channel", c.name.clone()), false);
                            }
                        }
                        CapScope::Category(k) => {
                            self.add(k.span, Symbol::Decl("category", k.name.clone()), false)
                        }
                    }
                }
            }
            DeclKind::Segment(s) => self.expr(&s.expr),
            DeclKind::Template(t) => {
                self.trigger = self.senders.get(&t.name.name).cloned();
                for b in &t.blocks {
                    self.add(
                        b.channel.span,
                        Symbol::Decl("channel", b.channel.name.clone()),
                        false,
                    );
                    for f in &b.fields {
                        self.string(&f.value);
                    }
                }
                self.trigger = None;
            }
            DeclKind::Journey(j) => self.journey(j),
            DeclKind::Category(_) => {}
            DeclKind::Test(t) => self.test(t),
        }
    }

    /// (1.1) The names a test refers to: events, their properties, attributes
    /// and consent topics it feeds, and the journeys, templates, channels and
    /// events its expectations name.
    fn test(&mut self, t: &TestDecl) {
        for step in &t.steps {
            match step {
                TestStep::At { input, .. } => match input {
                    Some(TestInput::Identify { traits, .. }) => {
                        for f in traits.iter().flat_map(|o| &o.fields) {
                            match &f.value {
                                TestValue::Object(o) if f.name.name == "consent" => {
                                    for topic in &o.fields {
                                        let symbol =
                                            Symbol::Decl("consent", topic.name.name.clone());
                                        self.add(topic.name.span, symbol, false);
                                    }
                                }
                                _ => {
                                    let symbol = Symbol::Attr(f.name.name.clone());
                                    self.add(f.name.span, symbol, false);
                                }
                            }
                        }
                    }
                    Some(TestInput::Event { event, props, .. }) => {
                        self.add(event.span, Symbol::Decl("event", event.name.clone()), false);
                        for f in props.iter().flat_map(|o| &o.fields) {
                            let symbol = Symbol::Prop(event.name.clone(), f.name.name.clone());
                            self.add(f.name.span, symbol, false);
                        }
                    }
                    None => {}
                },
                TestStep::Expect { fields, .. } => {
                    for f in fields.iter().flat_map(|o| &o.fields) {
                        let keyword = match f.name.name.as_str() {
                            "journey" => "journey",
                            "template" => "template",
                            "channel" => "channel",
                            "event" => "event",
                            "reasons" => {
                                if let TestValue::Object(o) = &f.value {
                                    for c in &o.fields {
                                        let symbol = Symbol::Decl("channel", c.name.name.clone());
                                        self.add(c.name.span, symbol, false);
                                    }
                                }
                                continue;
                            }
                            _ => continue,
                        };
                        if let TestValue::Expr(Expr {
                            kind: ExprKind::Path(p),
                            span,
                        }) = &f.value
                            && p.segments.len() == 1
                        {
                            self.add(*span, Symbol::Decl(keyword, p.root().to_string()), false);
                        }
                    }
                }
            }
        }
    }

    fn journey(&mut self, j: &JourneyDecl) {
        self.trigger = j.clauses.iter().find_map(|c| match &c.kind {
            ClauseKind::When(t) => Some(t.event.name.clone()),
            _ => None,
        });
        for c in &j.clauses {
            match &c.kind {
                ClauseKind::When(t) | ClauseKind::ExitOn(t) => {
                    for e in t.events() {
                        self.add(e.span, Symbol::Decl("event", e.name.clone()), false);
                    }
                    if let Some(cond) = &t.condition {
                        self.event = Some(t.event.name.clone());
                        let trigger = self.trigger.take();
                        self.expr(cond);
                        self.trigger = trigger;
                        self.event = None;
                    }
                }
                ClauseKind::RequireConsent(t) => {
                    self.add(t.span, Symbol::Decl("consent", t.name.clone()), false)
                }
                ClauseKind::WhenNo {
                    events, condition, ..
                } => {
                    for e in events {
                        self.add(e.span, Symbol::Decl("event", e.name.clone()), false);
                    }
                    if let Some(cond) = condition {
                        let trigger = self.trigger.take();
                        self.expr(cond);
                        self.trigger = trigger;
                    }
                }
                ClauseKind::Goal {
                    event, condition, ..
                } => {
                    self.add(event.span, Symbol::Decl("event", event.name.clone()), false);
                    if let Some(cond) = condition {
                        self.event = Some(event.name.clone());
                        let trigger = self.trigger.take();
                        self.expr(cond);
                        self.trigger = trigger;
                        self.event = None;
                    }
                }
                ClauseKind::WhenScheduled {
                    condition: Some(cond),
                    ..
                } => {
                    let trigger = self.trigger.take();
                    self.expr(cond);
                    self.trigger = trigger;
                }
                ClauseKind::Category(k) => {
                    self.add(k.span, Symbol::Decl("category", k.name.clone()), false)
                }
                _ => {}
            }
        }
        self.steps(&j.name.name, &j.steps);
        self.trigger = None;
    }

    fn steps(&mut self, journey: &str, steps: &[Step]) {
        for s in steps {
            match &s.kind {
                StepKind::Send {
                    template, channels, ..
                } => {
                    self.add(
                        template.span,
                        Symbol::Decl("template", template.name.clone()),
                        false,
                    );
                    for c in channels {
                        self.add(c.span, Symbol::Decl("channel", c.name.clone()), false);
                    }
                }
                StepKind::If {
                    condition,
                    then,
                    otherwise,
                } => {
                    self.expr(condition);
                    self.steps(journey, then);
                    match otherwise {
                        Some(Else::Block(b)) => self.steps(journey, b),
                        Some(Else::If(s)) => self.steps(journey, std::slice::from_ref(s)),
                        None => {}
                    }
                }
                StepKind::Split { arms } => {
                    for arm in arms {
                        self.add(
                            arm.name.span,
                            Symbol::Arm(journey.to_string(), arm.name.name.clone()),
                            true,
                        );
                        if let Some(b) = &arm.body {
                            self.steps(journey, b);
                        }
                    }
                }
                StepKind::WaitUntilExpr(e) => self.expr(e),
                StepKind::WaitFor {
                    event,
                    condition,
                    then,
                    otherwise,
                    ..
                } => {
                    self.add(event.span, Symbol::Decl("event", event.name.clone()), false);
                    if let Some(cond) = condition {
                        let outer = self.event.replace(event.name.clone());
                        self.expr(cond);
                        self.event = outer;
                    }
                    self.steps(journey, then);
                    if let Some(b) = otherwise {
                        self.steps(journey, b);
                    }
                }
                StepKind::Wait(_) | StepKind::WaitUntil(_) | StepKind::Stop => {}
            }
        }
    }

    fn string(&mut self, s: &StrLit) {
        for part in &s.parts {
            if let StrPart::Interp(e) = part {
                self.expr(e);
            }
        }
    }

    fn path(&mut self, p: &Path) {
        match p.segments.as_slice() {
            [root, attr] if root.name == "profile" => {
                self.add(attr.span, Symbol::Attr(attr.name.clone()), false)
            }
            [root, prop] if root.name == "event" || root.name == "trigger" => {
                let event = if root.name == "event" {
                    self.event.clone()
                } else {
                    self.trigger.clone()
                };
                if let Some(event) = event {
                    self.add(prop.span, Symbol::Prop(event, prop.name.clone()), false);
                }
            }
            [name] if name.name != "now" => {
                self.add(name.span, Symbol::Decl("segment", name.name.clone()), false)
            }
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Path(p) => self.path(p),
            ExprKind::Str(s) => self.string(s),
            ExprKind::List(items) => items.iter().for_each(|i| self.expr(i)),
            ExprKind::Unary(_, x) | ExprKind::Paren(x) => self.expr(x),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Call(c) => {
                let aggregate = matches!(
                    c.function.name.as_str(),
                    "count" | "sum" | "since" | "best_time"
                );
                for a in &c.args {
                    match (&a.kind, aggregate) {
                        (ExprKind::Path(p), true) => {
                            if let Some(ev) = p.segments.first() {
                                self.add(ev.span, Symbol::Decl("event", ev.name.clone()), false);
                                if let Some(prop) = p.segments.get(1) {
                                    self.add(
                                        prop.span,
                                        Symbol::Prop(ev.name.clone(), prop.name.clone()),
                                        false,
                                    );
                                }
                            }
                            if let Some(f) = &c.filter {
                                let (event, trigger) = (self.event.take(), self.trigger.take());
                                self.event = p.segments.first().map(|s| s.name.clone());
                                self.expr(f);
                                self.event = event;
                                self.trigger = trigger;
                            }
                        }
                        _ => self.expr(a),
                    }
                }
            }
            _ => {}
        }
    }
}

fn first_line(decl: &Decl) -> String {
    match &decl.kind {
        DeclKind::Consent(c) => format!(
            "consent {} {}",
            c.name.name,
            if c.mode == ConsentMode::OptIn {
                "opt_in"
            } else {
                "opt_out"
            }
        ),
        DeclKind::Event(e) => {
            let props: Vec<String> = e
                .props
                .iter()
                .map(|p| format!("{}: {}", p.name.name, p.ty))
                .collect();
            let from = e
                .external
                .as_ref()
                .and_then(StrLit::as_plain)
                .map(|f| format!(" from \"{f}\""))
                .unwrap_or_default();
            format!("event {}{from} {{ {} }}", e.name.name, props.join(", "))
        }
        DeclKind::Channel(c) => format!(
            "channel {}{}{}",
            c.name.name,
            if c.private.is_some() { " private" } else { "" },
            if c.consent.is_none() {
                " (transactional: no consent topic)"
            } else {
                ""
            }
        ),
        DeclKind::Segment(s) => format!("segment {}: bool", s.name.name),
        DeclKind::Template(t) => {
            let channels: Vec<&str> = t.blocks.iter().map(|b| b.channel.name.as_str()).collect();
            format!("template {} ({})", t.name.name, channels.join(", "))
        }
        DeclKind::Journey(j) => format!("journey {}", j.name.name),
        DeclKind::Category(c) => format!("category {}", c.name.name),
        DeclKind::Test(t) => format!("test {}", t.name.name),
        DeclKind::Profile(_) => "profile".into(),
        DeclKind::Limits(_) => "limits".into(),
    }
}
