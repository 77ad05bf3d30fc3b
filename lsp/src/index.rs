//! Every name in a policy set, where it is declared and where it is used.
//!
//! Declarations are listed from the ASTs (a name, where it stands, its doc for
//! hover); uses are the references the checker resolved while checking
//! ([`nudge::Analysis::references`]), so hover, go to definition, find
//! references and rename agree with `nudge check` by construction: there is
//! no second resolver here.

use nudge::FileId;
use nudge::Span;
use nudge::syntax::ast::*;

pub use nudge::check::Symbol;

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
    /// The declarations of the analysed set and every use the checker resolved.
    pub fn build(analysis: &nudge::Analysis) -> Index {
        let mut index = Index::declarations(&analysis.modules);
        index
            .occurrences
            .extend(analysis.references.iter().map(|r| Occurrence {
                file: r.file,
                span: r.span,
                symbol: r.symbol.clone(),
                is_decl: false,
            }));
        index
    }

    /// The declarations alone (of a document's last good text, say).
    pub fn declarations(modules: &[(FileId, Module)]) -> Index {
        let mut index = Index::default();
        for (file, module) in modules {
            let mut d = Declarations {
                file: *file,
                index: &mut index,
            };
            for decl in &module.decls {
                d.decl(decl);
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

/// One file's declarations: names, attributes, properties and split arms.
struct Declarations<'i> {
    file: FileId,
    index: &'i mut Index,
}

impl Declarations<'_> {
    fn add(&mut self, span: Span, symbol: Symbol, doc: Option<String>) {
        if let Some(doc) = doc {
            self.index.docs.push((symbol.clone(), doc));
        }
        self.index.occurrences.push(Occurrence {
            file: self.file,
            span,
            symbol,
            is_decl: true,
        });
    }

    fn decl(&mut self, decl: &Decl) {
        if let Some(name) = decl.kind.name() {
            let mut doc = format!("```nudge\n{}\n```", first_line(decl));
            if let Some(d) = &decl.doc {
                doc.push_str("\n\n");
                doc.push_str(d);
            }
            let symbol = Symbol::Decl(decl.kind.keyword(), name.name.clone());
            self.add(name.span, symbol, Some(doc));
        }
        match &decl.kind {
            DeclKind::Profile(p) => {
                for a in &p.attrs {
                    let doc = if a.sensitive.is_some() {
                        format!(
                            "```nudge\nprofile.{}: {} sensitive\n```\nA sensitive profile attribute: only `private` channels' content may show it, and Nudge never writes its value to dead letters, `why` or `--explain`.",
                            a.name.name, a.ty
                        )
                    } else {
                        format!(
                            "```nudge\nprofile.{}: {}\n```\nA profile attribute.",
                            a.name.name, a.ty
                        )
                    };
                    self.add(a.name.span, Symbol::Attr(a.name.name.clone()), Some(doc));
                }
            }
            DeclKind::Event(e) => {
                for p in &e.props {
                    let doc = format!(
                        "```nudge\n{}: {}\n```\nA property of the event `{}`.",
                        p.name.name, p.ty, e.name.name
                    );
                    let symbol = Symbol::Prop(e.name.name.clone(), p.name.name.clone());
                    self.add(p.name.span, symbol, Some(doc));
                }
            }
            DeclKind::Journey(j) => self.arms(&j.name.name, &j.steps),
            _ => {}
        }
    }

    fn arms(&mut self, journey: &str, steps: &[Step]) {
        for s in steps {
            match &s.kind {
                StepKind::If {
                    then, otherwise, ..
                } => {
                    self.arms(journey, then);
                    match otherwise {
                        Some(Else::Block(b)) => self.arms(journey, b),
                        Some(Else::If(s)) => self.arms(journey, std::slice::from_ref(s)),
                        None => {}
                    }
                }
                StepKind::Split { arms } => {
                    for arm in arms {
                        let symbol = Symbol::Arm(journey.to_string(), arm.name.name.clone());
                        self.add(arm.name.span, symbol, None);
                        if let Some(b) = &arm.body {
                            self.arms(journey, b);
                        }
                    }
                }
                StepKind::WaitFor {
                    then, otherwise, ..
                } => {
                    self.arms(journey, then);
                    if let Some(b) = otherwise {
                        self.arms(journey, b);
                    }
                }
                _ => {}
            }
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
