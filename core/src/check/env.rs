//! The symbol table of a policy set: every declaration by kind and name, across
//! all files. Duplicates are reported here, pointing at both places.

use crate::diagnostic::{Code, Diagnostic, Label};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use std::collections::{BTreeMap, BTreeSet};

/// A declaration node with the file it lives in.
pub struct Item<'a, T> {
    pub file: FileId,
    pub decl: &'a Decl,
    pub node: &'a T,
}

impl<T> Clone for Item<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Item<'_, T> {}

pub struct Env<'a> {
    pub consents: BTreeMap<&'a str, Item<'a, ConsentDecl>>,
    pub profile: Option<Item<'a, ProfileDecl>>,
    pub attrs: BTreeMap<&'a str, (FileId, &'a AttrDecl)>,
    pub events: BTreeMap<&'a str, Item<'a, EventDecl>>,
    /// External (`from`) names, and declared names without `from`, to events.
    pub external: BTreeMap<String, (FileId, Span, &'a str)>,
    pub channels: BTreeMap<&'a str, Item<'a, ChannelDecl>>,
    pub limits: Option<Item<'a, LimitsDecl>>,
    pub segments: BTreeMap<&'a str, Item<'a, SegmentDecl>>,
    pub templates: BTreeMap<&'a str, Item<'a, TemplateDecl>>,
    pub journeys: BTreeMap<&'a str, Item<'a, JourneyDecl>>,
    /// (1.1) Message categories.
    pub categories: BTreeMap<&'a str, Item<'a, CategoryDecl>>,
    /// (1.1) Tests (§10).
    pub tests: BTreeMap<&'a str, Item<'a, TestDecl>>,
    /// Names of declarations with syntax errors, by keyword: references to them are
    /// not reported again.
    pub broken: BTreeSet<(&'a str, &'a str)>,
    /// A `profile` block had syntax errors: attribute names cannot be checked.
    pub profile_broken: bool,
}

impl<'a> Env<'a> {
    pub fn collect(modules: &'a [(FileId, Module)], diags: &mut Vec<Diagnostic>) -> Env<'a> {
        let mut env = Env {
            consents: BTreeMap::new(),
            profile: None,
            attrs: BTreeMap::new(),
            events: BTreeMap::new(),
            external: BTreeMap::new(),
            channels: BTreeMap::new(),
            limits: None,
            segments: BTreeMap::new(),
            templates: BTreeMap::new(),
            journeys: BTreeMap::new(),
            categories: BTreeMap::new(),
            tests: BTreeMap::new(),
            broken: BTreeSet::new(),
            profile_broken: false,
        };
        for (file, module) in modules {
            for b in &module.broken {
                if let Some(name) = &b.name {
                    env.broken.insert((b.keyword.as_str(), name.as_str()));
                }
                if b.keyword == "profile" {
                    env.profile_broken = true;
                }
            }
            for decl in &module.decls {
                env.declare(*file, decl, diags);
            }
        }
        env.collect_attrs(diags);
        env.collect_external_names(diags);
        env
    }

    /// One declaration, by its kind's table; a second of the same name (or a
    /// second `profile` or `limits`) is an error.
    fn declare(&mut self, file: FileId, decl: &'a Decl, diags: &mut Vec<Diagnostic>) {
        match &decl.kind {
            DeclKind::Consent(c) => insert(
                &mut self.consents,
                file,
                decl,
                c,
                &c.name,
                "consent topic",
                diags,
            ),
            DeclKind::Event(e) if e.name.name == crate::check::exprs::SENT => {
                diags.push(
                    Diagnostic::new(
                        Code::DuplicateDeclaration,
                        "`sent` is a built-in event: Nudge records one for every send it decides",
                        Label::new(file, e.name.span, "already declared by Nudge"),
                    )
                    .with_help("read it with `count(sent where event.channel == \"email\" within 2d)`, or give your event another name"),
                );
            }
            DeclKind::Event(e) => insert(&mut self.events, file, decl, e, &e.name, "event", diags),
            DeclKind::Category(c) => insert(
                &mut self.categories,
                file,
                decl,
                c,
                &c.name,
                "category",
                diags,
            ),
            DeclKind::Test(t) => insert(&mut self.tests, file, decl, t, &t.name, "test", diags),
            DeclKind::Channel(c) => {
                insert(&mut self.channels, file, decl, c, &c.name, "channel", diags)
            }
            DeclKind::Segment(s) => {
                insert(&mut self.segments, file, decl, s, &s.name, "segment", diags)
            }
            DeclKind::Template(t) => insert(
                &mut self.templates,
                file,
                decl,
                t,
                &t.name,
                "template",
                diags,
            ),
            DeclKind::Journey(j) => {
                insert(&mut self.journeys, file, decl, j, &j.name, "journey", diags)
            }
            DeclKind::Profile(p) => single(
                &mut self.profile,
                Item {
                    file,
                    decl,
                    node: p,
                },
                "profile",
                diags,
            ),
            DeclKind::Limits(l) => single(
                &mut self.limits,
                Item {
                    file,
                    decl,
                    node: l,
                },
                "limits",
                diags,
            ),
        }
    }

    /// The profile's attributes, each name once.
    fn collect_attrs(&mut self, diags: &mut Vec<Diagnostic>) {
        if let Some(profile) = self.profile {
            for attr in &profile.node.attrs {
                if let Some((first_file, first)) = self.attrs.get(attr.name.name.as_str()) {
                    diags.push(duplicate_member(
                        Label::new(*first_file, first.name.span, "first declared here"),
                        profile.file,
                        &attr.name,
                        "attribute",
                    ));
                } else {
                    self.attrs.insert(&attr.name.name, (profile.file, attr));
                }
            }
        }
    }

    /// Maps the names events have in the input stream to events, rejecting two
    /// events that would both claim one incoming name.
    fn collect_external_names(&mut self, diags: &mut Vec<Diagnostic>) {
        for (name, item) in &self.events {
            let (incoming, span) = match &item.node.external {
                Some(s) => (s.as_plain().unwrap_or_default(), s.span),
                None => (name.to_string(), item.node.name.span),
            };
            if let Some((first_file, first_span, first_event)) = self.external.get(&incoming) {
                diags.push(
                    Diagnostic::new(
                        Code::DuplicateDeclaration,
                        format!("events `{first_event}` and `{name}` both read the incoming event `{incoming}`"),
                        Label::new(item.file, span, "second claim here"),
                    )
                    .with_secondary(Label::new(*first_file, *first_span, "first claim here"))
                    .with_help("give one of them another `from \"…\"` name"),
                );
            } else {
                self.external.insert(incoming, (item.file, span, name));
            }
        }
    }

    pub fn is_broken(&self, keyword: &str, name: &str) -> bool {
        self.broken.contains(&(keyword, name))
    }
}

fn insert<'a, T>(
    map: &mut BTreeMap<&'a str, Item<'a, T>>,
    file: FileId,
    decl: &'a Decl,
    node: &'a T,
    name: &'a Ident,
    kind: &str,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(first) = map.get(name.name.as_str()) {
        let first_name = first.decl.kind.name().map_or(first.decl.span, |n| n.span);
        diags.push(
            Diagnostic::new(
                Code::DuplicateDeclaration,
                format!("the {kind} `{}` is declared twice", name.name),
                Label::new(file, name.span, "declared again here"),
            )
            .with_secondary(Label::new(first.file, first_name, "first declared here"))
            .with_help(format!("rename one of them or remove the second; each {kind} name is used once per policy set")),
        );
    } else {
        map.insert(&name.name, Item { file, decl, node });
    }
}

fn single<'a, T>(
    slot: &mut Option<Item<'a, T>>,
    item: Item<'a, T>,
    keyword: &str,
    diags: &mut Vec<Diagnostic>,
) {
    match slot {
        Some(first) => diags.push(
            Diagnostic::new(
                Code::DuplicateDeclaration,
                format!("a policy set has at most one `{keyword}` block"),
                Label::new(
                    item.file,
                    keyword_span(item.decl, keyword),
                    "second block here",
                ),
            )
            .with_secondary(Label::new(
                first.file,
                keyword_span(first.decl, keyword),
                "first block here",
            ))
            .with_help(format!("merge the two `{keyword}` blocks into one")),
        ),
        None => *slot = Some(item),
    }
}

fn keyword_span(decl: &Decl, keyword: &str) -> Span {
    Span::new(
        decl.span.start as usize,
        decl.span.start as usize + keyword.len(),
    )
}

pub fn duplicate_member(first: Label, file: FileId, again: &Ident, what: &str) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateMember,
        format!("the {what} `{}` is declared twice", again.name),
        Label::new(file, again.span, "declared again here"),
    )
    .with_secondary(first)
    .with_help(format!("remove one of the two `{}`", again.name))
}
