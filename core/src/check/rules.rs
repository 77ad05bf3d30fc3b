//! Declarations and journeys: the policy rules of LANGUAGE.md §4, §6 and §9, and
//! the lints.

use crate::check::Checker;
use crate::check::env::duplicate_member;
use crate::check::exprs::{EventCtx, Place, Scope};
use crate::check::refs::Symbol;
use crate::check::types::{Base, Ty};
use crate::diagnostic::{Code, Diagnostic, Label, did_you_mean};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use std::collections::{BTreeMap, BTreeSet};

/// A journey that sends a template, and the journey's trigger.
#[derive(Clone, Copy)]
struct Sender<'a> {
    journey: &'a str,
    trigger: EventCtx<'a>,
}

impl<'a> Checker<'a> {
    pub fn run(&mut self) {
        self.consents();
        self.profile();
        self.events();
        self.channels();
        self.limits();
        self.segments();
        let senders = self.journeys();
        self.templates(&senders);
        self.unused_segments();
        self.unused_categories();
        self.unbounded_sends();
        self.tests();
    }

    // ------------------------------------------------------------ bounds

    /// (1.1) §9a: marketing sends no cap covers. Skipped on an incomplete set,
    /// where a cap may be among what was lost.
    fn unbounded_sends(&mut self) {
        if self.incomplete {
            return;
        }
        let bounds = crate::check::bounds::compute(&self.env, &self.texts);
        for u in bounds.unbounded {
            self.diags.push(
                Diagnostic::new(
                    Code::UnboundedSends,
                    format!(
                        "`{}` sends of `{}` are not limited by any cap",
                        u.channel, u.journey
                    ),
                    Label::new(u.file, u.span, "no cap covers these sends"),
                )
                .with_help(format!(
                    "add `cap N per WINDOW on {}` to `limits`, a cap without `on`, a category cap, or `cap N per WINDOW` to the journey `{}`",
                    u.channel, u.journey
                )),
            );
        }
    }

    // ------------------------------------------------------------ categories

    /// (1.1) A category is a name a journey or a cap refers to.
    fn category_ref(&mut self, file: FileId, name: &'a Ident) {
        let names: Vec<&str> = self.env.categories.keys().copied().collect();
        self.declared_ref(
            file,
            name,
            &names,
            ("category", "category", Code::UnknownCategory),
            format!("declare it: `category {}`", name.name),
        );
    }

    /// A reference to a declaration of kind `keyword` among `names`: reported
    /// with a did-you-mean (else `declare`) unless declared or broken.
    fn declared_ref(
        &mut self,
        file: FileId,
        name: &'a Ident,
        names: &[&str],
        (keyword, what, code): (&'static str, &str, Code),
        declare: String,
    ) {
        let broken = self.env.is_broken(keyword, &name.name);
        if broken || names.contains(&name.name.as_str()) {
            self.references.decl(file, name.span, keyword, &name.name);
            return;
        }
        let help = did_you_mean(&name.name, names.iter().copied()).unwrap_or(declare);
        self.unknown(
            file,
            code,
            name,
            format!("unknown {what} `{}`", name.name),
            help,
        );
    }

    /// (1.1) A category no journey has limits nothing and counts nothing.
    fn unused_categories(&mut self) {
        let used: BTreeSet<&str> = self
            .env
            .journeys
            .values()
            .flat_map(|j| j.node.clauses.iter())
            .filter_map(|c| match &c.kind {
                ClauseKind::Category(name) => Some(name.name.as_str()),
                _ => None,
            })
            .collect();
        let unused: Vec<_> = self
            .env
            .categories
            .values()
            .filter(|c| {
                let name = c.node.name.name.as_str();
                !used.contains(name) && !self.suggested.contains(name)
            })
            .copied()
            .collect();
        for c in unused {
            self.diags.push(
                Diagnostic::new(
                    Code::UnusedCategory,
                    format!("no journey has the category `{}`", c.node.name.name),
                    Label::new(c.file, c.node.name.span, "used by no journey"),
                )
                .with_help(format!(
                    "give a journey `category {}`, or remove the declaration",
                    c.node.name.name
                )),
            );
        }
    }

    // ------------------------------------------------------------ consent

    /// (1.1) No two topics answer to one input name (a name or a `from` name).
    fn consents(&mut self) {
        let mut names: BTreeMap<String, (&str, FileId, Span)> = BTreeMap::new();
        let topics: Vec<_> = self.env.consents.values().copied().collect();
        for topic in &topics {
            names.insert(
                topic.node.name.name.clone(),
                (&topic.node.name.name, topic.file, topic.node.name.span),
            );
        }
        for topic in topics {
            let Some(lit) = &topic.node.external else {
                continue;
            };
            let Some(external) = lit.as_plain() else {
                continue;
            };
            let name = topic.node.name.name.as_str();
            match names.get(&external) {
                Some((other, _, _)) if *other == name => {}
                Some((other, file, span)) => self.diags.push(
                    Diagnostic::new(
                        Code::SharedInputField,
                        format!("the consent topics `{other}` and `{name}` both answer to `{external}` in the input"),
                        Label::new(topic.file, lit.span, "read a second time here"),
                    )
                    .with_secondary(Label::new(*file, *span, "first read here"))
                    .with_help("give each topic its own input name"),
                ),
                None => {
                    names.insert(external, (name, topic.file, lit.span));
                }
            }
        }
    }

    // ------------------------------------------------------------ profile

    fn profile(&mut self) {
        let Some(profile) = self.env.profile else {
            return;
        };
        let file = profile.file;
        let fields = profile
            .node
            .attrs
            .iter()
            .map(|a| (&a.name, a.source.as_ref()));
        self.input_fields(file, fields, "traits");
        for attr in &profile.node.attrs {
            let ty = Ty::from_ast(&attr.ty);
            if attr.name.name == "timezone" && ty.base != Base::Timezone && !ty.is_error() {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadTimezoneAttribute,
                        format!("the `timezone` attribute is the profile's time zone, so it must be a `timezone`, not a `{ty}`"),
                        Label::new(file, attr.ty.span, format!("`{ty}`")),
                    )
                    .with_help("write `timezone: timezone = \"UTC\"`, or rename the attribute"),
                );
            }
            match &attr.default {
                None if !attr.ty.optional && !ty.is_error() => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::RequiredWithoutDefault,
                            format!(
                                "the attribute `{}` has no default, so it must be optional",
                                attr.name.name
                            ),
                            Label::new(file, attr.span, "a new profile would have no value here"),
                        )
                        .with_help(format!(
                            "write `{}: {}?`, or give a default: `{}: {} = {}`",
                            attr.name.name,
                            self.snippet(file, attr.ty.span),
                            attr.name.name,
                            self.snippet(file, attr.ty.span),
                            ty.example_default()
                        )),
                    );
                }
                None => {}
                Some(default) => self.default(file, attr, ty, default),
            }
        }
    }

    fn default(&mut self, file: FileId, attr: &'a AttrDecl, ty: Ty, default: &'a Expr) {
        if matches!(default.kind, ExprKind::None) {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidDefault,
                    "`none` is not a default",
                    Label::new(file, default.span, "no value"),
                )
                .with_help(format!(
                    "declare the attribute optional and leave the default out: `{}: {}?`",
                    attr.name.name,
                    self.snippet(file, attr.ty.span)
                )),
            );
            return;
        }
        let found = self.value(file, default, &Scope::new(Place::Default));
        if found.is_error() || ty.is_error() {
            return;
        }
        if !found.fits(ty.required()) {
            self.diags.push(
                Diagnostic::new(
                    Code::InvalidDefault,
                    format!(
                        "the default of `{}` is a `{found}`, but the attribute is a `{}`",
                        attr.name.name,
                        ty.required()
                    ),
                    Label::new(file, default.span, format!("`{found}`")),
                )
                .with_help(format!(
                    "give a `{}` such as `{}`",
                    ty.required(),
                    ty.required().example_default()
                )),
            );
            return;
        }
        if ty.base == Base::Timezone
            && let ExprKind::Str(s) = &default.kind
            && let Some(zone) = s.as_plain()
            && zone.parse::<chrono_tz::Tz>().is_err()
        {
            let generic = || "use an IANA zone name such as `Europe/Paris` or `America/New_York`";
            // (1.1) §9a: a sensitive attribute's value is not repeated in
            // messages (SARIF and JSON reports travel further than the source).
            let (message, help) = if attr.sensitive.is_some() {
                (
                    format!(
                        "the default of the sensitive attribute `{}` is not an IANA time zone",
                        attr.name.name
                    ),
                    generic().to_string(),
                )
            } else {
                (
                    format!("`{zone}` is not an IANA time zone"),
                    did_you_mean(&zone, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()))
                        .unwrap_or_else(|| generic().into()),
                )
            };
            self.diags.push(
                Diagnostic::new(
                    Code::UnknownTimeZone,
                    message,
                    Label::new(file, default.span, "unknown time zone"),
                )
                .with_help(help),
            );
        }
    }

    /// (1.1) The input fields that attributes (or one event's properties) read:
    /// each `from` JSON Pointer valid, and no field read twice.
    fn input_fields(
        &mut self,
        file: FileId,
        fields: impl Iterator<Item = (&'a Ident, Option<&'a StrLit>)>,
        section: &'static str,
    ) {
        let (what, whats) = match section {
            "traits" => ("attribute", "attributes"),
            _ => ("property", "properties"),
        };
        let mut readers: BTreeMap<String, (&Ident, Span)> = BTreeMap::new();
        for (name, from) in fields {
            let (field, span) = match from {
                None => (
                    format!("/{section}/{}", escape_pointer(&name.name)),
                    name.span,
                ),
                Some(lit) => {
                    let Some(text) = lit.as_plain() else {
                        continue;
                    };
                    if let Some(pointer) = text.strip_prefix('/').map(|_| text.as_str()) {
                        if let Err(why) = check_pointer(pointer) {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::InvalidPointer,
                                    format!("`{pointer}` is not a valid JSON Pointer: {why}"),
                                    Label::new(file, lit.span, "not RFC 6901"),
                                )
                                .with_help("in a JSON Pointer, write `~` as `~0` and a `/` inside a name as `~1`: `\"/context/traits/first~1last\"`"),
                            );
                            continue;
                        }
                        (pointer.to_owned(), lit.span)
                    } else {
                        (format!("/{section}/{}", escape_pointer(&text)), lit.span)
                    }
                }
            };
            if section == "traits" && field == "/traits/consent" {
                self.diags.push(
                    Diagnostic::new(
                        Code::SharedInputField,
                        format!("the {what} `{}` reads `traits.consent`, which holds consent", name.name),
                        Label::new(file, span, "the consent trait"),
                    )
                    .with_help("declare consent topics with `consent NAME opt_in|opt_out`; name the attribute's input field with `from \"…\"`"),
                );
                continue;
            }
            match readers.get(&field) {
                // The same name twice is a duplicate member (N111), reported apart.
                Some((first, _)) if first.name == name.name => {}
                Some((first, first_span)) => self.diags.push(
                    Diagnostic::new(
                        Code::SharedInputField,
                        format!(
                            "the {whats} `{}` and `{}` both read the input field `{field}`",
                            first.name, name.name
                        ),
                        Label::new(file, span, "read a second time here"),
                    )
                    .with_secondary(Label::new(file, *first_span, "first read here"))
                    .with_help("give one of them another field with `from \"…\"`, or remove one"),
                ),
                None => {
                    readers.insert(field, (name, span));
                }
            }
        }
    }

    // ------------------------------------------------------------ events

    fn events(&mut self) {
        let events: Vec<_> = self.env.events.values().copied().collect();
        for event in events {
            let fields = event
                .node
                .props
                .iter()
                .map(|p| (&p.name, p.source.as_ref()));
            self.input_fields(event.file, fields, "properties");
            let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
            for prop in &event.node.props {
                if let Some(first) = seen.get(prop.name.name.as_str()) {
                    self.diags.push(duplicate_member(
                        Label::new(event.file, first.span, "first declared here"),
                        event.file,
                        &prop.name,
                        "property",
                    ));
                } else {
                    seen.insert(&prop.name.name, &prop.name);
                }
            }
        }
    }

    // ------------------------------------------------------------ channels and limits

    fn channels(&mut self) {
        let channels: Vec<_> = self.env.channels.values().copied().collect();
        for channel in channels {
            let file = channel.file;
            let c = channel.node;
            match &c.address {
                None => self.diags.push(
                    Diagnostic::new(
                        Code::BadChannelAddress,
                        format!("the channel `{}` has no address", c.name.name),
                        Label::new(file, c.name.span, "no `address` clause"),
                    )
                    .with_help("add `address profile.ATTRIBUTE`, the attribute holding the email, phone number or token"),
                ),
                Some(path) => self.channel_address(file, c, path),
            }
            if let Some(topic) = &c.consent {
                self.topic_ref(file, topic);
            }
            for event in &c.engagement {
                self.event_ref(file, event);
            }
        }
    }

    fn channel_address(&mut self, file: FileId, c: &ChannelDecl, path: &Path) {
        let attr = match path.segments.as_slice() {
            [root, attr] if root.name == "profile" => attr,
            _ => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadChannelAddress,
                        "a channel's address is a profile attribute",
                        Label::new(file, path.span, "not `profile.ATTRIBUTE`"),
                    )
                    .with_help("write e.g. `address profile.email`"),
                );
                return;
            }
        };
        match self.env.attrs.get(attr.name.as_str()) {
            Some((_, decl)) => {
                self.references
                    .add(file, attr.span, Symbol::Attr(attr.name.clone()));
                let ty = Ty::from_ast(&decl.ty);
                if ty.base != Base::String && !ty.is_error() {
                    self.diags.push(
                        Diagnostic::new(
                            Code::BadChannelAddress,
                            format!("the address of `{}` must be a string attribute, but `profile.{}` is a `{ty}`", c.name.name, attr.name),
                            Label::new(file, path.span, format!("`{ty}`")),
                        )
                        .with_help("point the channel at the attribute that holds the email, phone number or device token"),
                    );
                }
            }
            None if self.env.profile_broken => {}
            None => {
                let names: Vec<&str> = self.env.attrs.keys().copied().collect();
                let help = did_you_mean(&attr.name, names.iter().copied())
                    .unwrap_or_else(|| "declare it in the `profile` block".into());
                self.unknown(
                    file,
                    Code::UnknownAttribute,
                    attr,
                    format!("the profile has no attribute `{}`", attr.name),
                    help,
                );
            }
        }
    }

    fn limits(&mut self) {
        let Some(limits) = self.env.limits else {
            return;
        };
        let file = limits.file;
        for cap in &limits.node.caps {
            if cap.count == 0 {
                self.diags.push(
                    Diagnostic::new(
                        Code::ZeroCap,
                        "a cap of 0 forbids every send",
                        Label::new(file, cap.count_span, "zero"),
                    )
                    .with_help(
                        "allow at least one send, or remove the channel from the journeys instead",
                    ),
                );
            }
            if let WindowKind::Rolling(d) = &cap.window.kind
                && d.seconds == 0
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::ZeroCap,
                        "a cap over a window of `0s` limits nothing",
                        Label::new(file, cap.window.span, "empty window"),
                    )
                    .with_help("use a window such as `per 7d`, `per day` or `per week`"),
                );
            }
            match &cap.scope {
                CapScope::All => {}
                CapScope::Channels(channels) => {
                    let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
                    for channel in channels {
                        if let Some(first) = seen.insert(&channel.name, channel) {
                            self.diags.push(duplicate_member(
                                Label::new(file, first.span, "first listed here"),
                                file,
                                channel,
                                "channel",
                            ));
                        }
                        self.channel_ref(file, channel);
                    }
                }
                CapScope::Category(category) => self.category_ref(file, category),
            }
        }
        if let [first, second, ..] = limits.node.quiet.as_slice() {
            self.diags.push(
                Diagnostic::new(Code::RepeatedClause, "`limits` has more than one `quiet` window", Label::new(file, second.span, "second window"))
                    .with_secondary(Label::new(file, first.span, "first window"))
                    .with_help("keep one global quiet window; give a channel its own with `quiet` in the channel"),
            );
        }
    }

    /// (1.1) `via best of`: a channel without `engagement` is only ever
    /// scored by its sends.
    fn best_of(&mut self, file: FileId, channels: &'a [Ident]) {
        for c in channels {
            let Some(decl) = self.env.channels.get(c.name.as_str()).map(|i| i.node) else {
                continue;
            };
            if decl.engagement.is_empty() {
                self.diags.push(
                    Diagnostic::new(
                        Code::BestOfWithoutEngagement,
                        format!(
                            "the channel `{}` has no `engagement` clause, so `best of` cannot tell when a profile engages with it",
                            c.name
                        ),
                        Label::new(file, c.span, "no engagement events"),
                    )
                    .with_help(format!(
                        "list the events that show engagement in the channel: `engagement {}_opened`",
                        c.name
                    )),
                );
            }
        }
    }

    /// (1.1) A period that must not be `0s`.
    fn nonzero(&mut self, file: FileId, d: &DurationLit, what: &str, example: &str) {
        if d.seconds == 0 {
            self.diags.push(
                Diagnostic::new(
                    Code::ZeroCap,
                    format!("{what} of `0s` is empty"),
                    Label::new(file, d.span, "empty"),
                )
                .with_help(format!("give it a length, e.g. {example}")),
            );
        }
    }

    fn channel_ref(&mut self, file: FileId, name: &'a Ident) -> Option<&'a ChannelDecl> {
        match self.env.channels.get(name.name.as_str()) {
            Some(c) => {
                self.references.decl(file, name.span, "channel", &name.name);
                Some(c.node)
            }
            None if self.env.is_broken("channel", &name.name) => {
                self.references.decl(file, name.span, "channel", &name.name);
                None
            }
            None => {
                let names: Vec<&str> = self.env.channels.keys().copied().collect();
                let help = did_you_mean(&name.name, names.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "declare it: `channel {} {{ address profile.… consent … }}`",
                        name.name
                    )
                });
                self.unknown(
                    file,
                    Code::UnknownChannel,
                    name,
                    format!("unknown channel `{}`", name.name),
                    help,
                );
                None
            }
        }
    }

    fn topic_ref(&mut self, file: FileId, name: &'a Ident) {
        let names: Vec<&str> = self.env.consents.keys().copied().collect();
        self.declared_ref(
            file,
            name,
            &names,
            ("consent", "consent topic", Code::UnknownTopic),
            format!("declare it: `consent {} opt_in` or `opt_out`", name.name),
        );
    }

    // ------------------------------------------------------------ segments

    fn segments(&mut self) {
        let segments: Vec<_> = self.env.segments.iter().map(|(n, s)| (*n, *s)).collect();
        for (name, segment) in &segments {
            self.current_segment = Some(name);
            self.condition(
                segment.file,
                &segment.node.expr,
                &Scope::new(Place::Segment),
            );
        }
        self.current_segment = None;
        self.segment_cycles();
    }

    /// Reports each cycle of segment references once, at the reference that closes it.
    fn segment_cycles(&mut self) {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let names: Vec<&str> = self.env.segments.keys().copied().collect();
        for start in names {
            let mut stack: Vec<&str> = Vec::new();
            self.visit_segment(start, &mut stack, &mut done);
        }
    }

    fn visit_segment(
        &mut self,
        name: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(name) {
            return;
        }
        stack.push(name);
        let refs = self.segment_refs.get(name).cloned().unwrap_or_default();
        for (target, file, span) in refs {
            if let Some(pos) = stack.iter().position(|s| *s == target) {
                let mut cycle: Vec<String> =
                    stack[pos..].iter().map(|s| format!("`{s}`")).collect();
                cycle.push(format!("`{target}`"));
                self.diags.push(
                    Diagnostic::new(
                        Code::SegmentCycle,
                        format!("segments refer to each other in a cycle: {}", cycle.join(" → ")),
                        Label::new(file, span, "closes the cycle"),
                    )
                    .with_help("a segment cannot depend on itself; break the cycle by writing one condition out in full"),
                );
            } else {
                self.visit_segment(target, stack, done);
            }
        }
        stack.pop();
        done.insert(name);
    }

    fn unused_segments(&mut self) {
        if self.incomplete {
            return;
        }
        let unused: Vec<_> = self
            .env
            .segments
            .iter()
            .filter(|(n, _)| !self.used_segments.contains(*n) && !self.suggested.contains(**n))
            .map(|(_, s)| *s)
            .collect();
        for s in unused {
            self.diags.push(
                Diagnostic::new(
                    Code::UnusedSegment,
                    format!("the segment `{}` is never used", s.node.name.name),
                    Label::new(s.file, s.node.name.span, "declared here"),
                )
                .with_help("use it in a journey's `when … where` or `if`, or remove it"),
            );
        }
    }

    /// The event of `when` or `exit on`. A quoted one is the stream's name: the
    /// error names the declared event that reads it.
    fn trigger_event(&mut self, file: FileId, t: &'a Trigger, keyword: &str) -> EventCtx<'a> {
        if !t.quoted {
            return self.event_ref(file, &t.event);
        }
        let name = &t.event.name;
        let declared = self
            .env
            .external
            .get(name.as_str())
            .map(|(_, _, d)| *d)
            .or_else(|| {
                self.env
                    .events
                    .get_key_value(name.as_str())
                    .map(|(k, _)| *k)
            });
        let (message, help) = match declared {
            Some(d) if d != name => (
                format!("`{keyword}` names the declared event, not the stream's name `\"{name}\"`"),
                format!(
                    "write `{keyword} {d}`: the event `{d}` reads `\"{name}\"` with its `from`"
                ),
            ),
            Some(d) => (
                format!("`{keyword}` names the declared event without quotes"),
                format!("write `{keyword} {d}`"),
            ),
            None => {
                let names = self.env.events.keys().copied();
                let hint = did_you_mean(name, names)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                (
                    format!("`{keyword}` names a declared event, and no event reads `\"{name}\"`"),
                    format!(
                        "declare it: `event my_event from \"{name}\" {{ … }}`, then write `{keyword} my_event`{hint}"
                    ),
                )
            }
        };
        self.diags.push(
            Diagnostic::new(
                Code::UnknownEvent,
                message,
                Label::new(file, t.event.span, "a string, not an event name"),
            )
            .with_help(help),
        );
        match declared.and_then(|d| self.env.events.get(d)) {
            Some(item) => EventCtx::Known(item.node),
            None => EventCtx::Unknown,
        }
    }

    // ------------------------------------------------------------ journeys

    fn journeys(&mut self) -> BTreeMap<&'a str, Vec<Sender<'a>>> {
        let mut senders: BTreeMap<&'a str, Vec<Sender<'a>>> = BTreeMap::new();
        let journeys: Vec<_> = self.env.journeys.values().copied().collect();
        for j in journeys {
            let file = j.file;
            let journey = j.node;
            let clauses = self.journey_clauses(file, journey);
            let transactional = clauses.transactional;
            let scope = Scope {
                place: Place::Step,
                event: EventCtx::Absent,
                trigger: clauses.trigger,
                journey: Some(&journey.name.name),
            };
            let mut sends = Vec::new();
            self.steps(file, &journey.steps, &scope, transactional, &mut sends);
            for template in sends {
                senders.entry(template).or_default().push(Sender {
                    journey: &journey.name.name,
                    trigger: clauses.trigger,
                });
            }
            self.lint_stops(file, &journey.steps);
            self.lint_waits(file, &journey.steps, false);
        }
        senders
    }

    /// A journey's clauses, each once unless repeatable. Long by design: one
    /// arm per clause kind (LANGUAGE.md §4), each its checks.
    fn journey_clauses(&mut self, file: FileId, journey: &'a JourneyDecl) -> JourneyClauses<'a> {
        let mut seen: BTreeMap<&'static str, Span> = BTreeMap::new();
        let mut trigger = EventCtx::Absent;
        let mut transactional = false;
        let mut has_when = false;
        for clause in &journey.clauses {
            let keyword = clause.kind.keyword();
            let repeatable = matches!(
                clause.kind,
                ClauseKind::ExitOn(_)
                    | ClauseKind::RequireConsent(_)
                    | ClauseKind::Cap { .. }
                    | ClauseKind::Goal { .. }
            );
            if !repeatable {
                if let Some(first) = seen.get(keyword) {
                    self.repeated_clause(file, journey, clause.span, *first, keyword);
                    continue;
                }
                seen.insert(keyword, clause.span);
            }
            match &clause.kind {
                ClauseKind::When(t) => {
                    has_when = true;
                    trigger = self.when_clause(file, journey, t);
                }
                ClauseKind::ExitOn(t) => {
                    let event = self.trigger_event(file, t, "exit on");
                    let condition = t.condition.as_ref();
                    self.clause_condition(file, journey, Place::ExitOn, event, condition);
                }
                ClauseKind::WhenNo {
                    events,
                    after,
                    condition,
                } => {
                    has_when = true;
                    trigger = EventCtx::Timer;
                    for e in events {
                        self.event_ref(file, e);
                    }
                    self.nonzero(
                        file,
                        after,
                        "an inactivity period",
                        "`when no app_opened for 30d`",
                    );
                    let condition = condition.as_ref();
                    self.clause_condition(file, journey, Place::When, EventCtx::Timer, condition);
                }
                ClauseKind::WhenScheduled { condition, .. } => {
                    has_when = true;
                    trigger = EventCtx::Timer;
                    let condition = condition.as_ref();
                    self.clause_condition(file, journey, Place::When, EventCtx::Timer, condition);
                }
                ClauseKind::Goal {
                    event,
                    condition,
                    within,
                } => {
                    let event = self.event_ref(file, event);
                    self.nonzero(
                        file,
                        within,
                        "a goal window",
                        "`goal order_completed within 7d`",
                    );
                    let condition = condition.as_ref();
                    self.clause_condition(file, journey, Place::When, event, condition);
                }
                ClauseKind::Category(category) => self.category_ref(file, category),
                ClauseKind::Cap {
                    count,
                    count_span,
                    window,
                } => self.cap_clause(file, *count, *count_span, window),
                ClauseKind::RequireConsent(topic) => self.topic_ref(file, topic),
                ClauseKind::Transactional => transactional = true,
                ClauseKind::ReenterAfter(d) if d.seconds == 0 => {}
                ClauseKind::Owner(_)
                | ClauseKind::Priority { .. }
                | ClauseKind::ReenterAfter(_)
                | ClauseKind::ReenterNever => {}
            }
        }
        if !journey.recovered {
            self.complete_journey(file, journey, has_when, seen.contains_key("owner"));
        }
        if !has_when && journey.recovered {
            trigger = EventCtx::Unknown;
        }
        if transactional {
            self.transactional_limits(file, journey);
        }
        JourneyClauses {
            trigger,
            transactional,
        }
    }

    /// A clause a journey may give once, given again.
    fn repeated_clause(
        &mut self,
        file: FileId,
        journey: &JourneyDecl,
        again: Span,
        first: Span,
        keyword: &str,
    ) {
        self.diags.push(
            Diagnostic::new(
                Code::RepeatedClause,
                format!(
                    "the journey `{}` has more than one `{keyword}` clause",
                    journey.name.name
                ),
                Label::new(file, again, "repeated here"),
            )
            .with_secondary(Label::new(file, first, "first given here"))
            .with_help(format!("a journey has at most one `{keyword}`; keep one")),
        );
    }

    /// `when E [, E2 …] [where C]`: the trigger's events (one, or several
    /// with the properties they share) and its condition; what `trigger.`
    /// reads.
    fn when_clause(
        &mut self,
        file: FileId,
        journey: &'a JourneyDecl,
        t: &'a Trigger,
    ) -> EventCtx<'a> {
        let mut trigger = self.trigger_event(file, t, "when");
        if !t.also.is_empty() {
            let mut all_known = !matches!(trigger, EventCtx::Unknown);
            let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
            seen.insert(&t.event.name, &t.event);
            for e in &t.also {
                if let Some(first) = seen.insert(&e.name, e) {
                    self.diags.push(duplicate_member(
                        Label::new(file, first.span, "first listed here"),
                        file,
                        e,
                        "trigger event",
                    ));
                }
                all_known &= matches!(self.event_ref(file, e), EventCtx::Known(_));
            }
            trigger = if all_known {
                EventCtx::Several(t)
            } else {
                EventCtx::Unknown
            };
        }
        let condition = t.condition.as_ref();
        self.clause_condition(file, journey, Place::When, trigger, condition);
        trigger
    }

    /// A clause's `where` condition, read where `place` says with `event.`
    /// meaning `event`.
    fn clause_condition(
        &mut self,
        file: FileId,
        journey: &'a JourneyDecl,
        place: Place,
        event: EventCtx<'a>,
        condition: Option<&'a Expr>,
    ) {
        if let Some(cond) = condition {
            let scope = Scope {
                place,
                event,
                trigger: EventCtx::Absent,
                journey: Some(&journey.name.name),
            };
            self.condition(file, cond, &scope);
        }
    }

    /// A journey's own `cap N per W`: N at least 1, a rolling window not 0.
    fn cap_clause(&mut self, file: FileId, count: u32, count_span: Span, window: &Window) {
        if count == 0 {
            self.diags.push(
                Diagnostic::new(
                    Code::ZeroCap,
                    "a cap of 0 forbids every send",
                    Label::new(file, count_span, "zero"),
                )
                .with_help("allow at least one send, or remove the journey's sends instead"),
            );
        }
        if let WindowKind::Rolling(d) = &window.kind {
            self.nonzero(file, d, "a cap's window", "`cap 1 per 7d`");
        }
    }

    /// A journey must say what starts it and who owns it.
    fn complete_journey(
        &mut self,
        file: FileId,
        journey: &JourneyDecl,
        has_when: bool,
        has_owner: bool,
    ) {
        if !has_when {
            self.diags.push(
                Diagnostic::new(
                    Code::MissingWhen,
                    format!("the journey `{}` has no `when` trigger", journey.name.name),
                    Label::new(file, journey.name.span, "never starts"),
                )
                .with_help("say which event starts it: `when cart_abandoned`"),
            );
        }
        if !has_owner {
            self.diags.push(
                Diagnostic::new(
                    Code::MissingOwner,
                    format!("the journey `{}` has no `owner`", journey.name.name),
                    Label::new(file, journey.name.span, "no owner"),
                )
                .with_help("name the responsible team: `owner \"growth-team\"`"),
            );
        }
    }

    /// A transactional journey's `cap` and `category` limit nothing.
    fn transactional_limits(&mut self, file: FileId, journey: &JourneyDecl) {
        for clause in &journey.clauses {
            let what = match clause.kind {
                ClauseKind::Cap { .. } => "a `cap`",
                ClauseKind::Category(_) => "a `category`",
                _ => continue,
            };
            self.diags.push(
                Diagnostic::new(
                    Code::TransactionalNeverLimited,
                    format!(
                        "the journey `{}` is transactional, so {what} limits none of its sends",
                        journey.name.name
                    ),
                    Label::new(file, clause.span, "never applies"),
                )
                .with_help("transactional sends are counted by no cap; remove the clause, or make the journey a marketing one"),
            );
        }
    }

    fn steps(
        &mut self,
        file: FileId,
        steps: &'a [Step],
        scope: &Scope<'a>,
        transactional: bool,
        sends: &mut Vec<&'a str>,
    ) {
        for step in steps {
            match &step.kind {
                StepKind::Wait(_) | StepKind::WaitUntil(_) | StepKind::Stop => {}
                StepKind::WaitUntilExpr(e) => {
                    let ty = self.value(file, e, scope);
                    self.expect(file, e, ty, Ty::TIME_OF_DAY, "`wait until`");
                }
                StepKind::Send {
                    template,
                    channels,
                    best,
                } => {
                    self.send(file, template, channels, transactional, scope);
                    if *best {
                        self.best_of(file, channels);
                    }
                    if self.env.templates.contains_key(template.name.as_str()) {
                        sends.push(&template.name);
                    }
                }
                StepKind::WaitFor {
                    timeout,
                    event,
                    condition,
                    then,
                    otherwise,
                } => {
                    self.nonzero(
                        file,
                        timeout,
                        "a `wait up to`",
                        "`wait up to 3d for review_submitted`",
                    );
                    let event = self.event_ref(file, event);
                    if let Some(cond) = condition {
                        let inner = Scope { event, ..*scope };
                        self.condition(file, cond, &inner);
                    }
                    self.steps(file, then, scope, transactional, sends);
                    if let Some(b) = otherwise {
                        self.steps(file, b, scope, transactional, sends);
                    }
                }
                StepKind::If {
                    condition,
                    then,
                    otherwise,
                } => {
                    self.condition(file, condition, scope);
                    self.steps(file, then, scope, transactional, sends);
                    match otherwise {
                        Some(Else::Block(b)) => self.steps(file, b, scope, transactional, sends),
                        Some(Else::If(s)) => {
                            self.steps(file, std::slice::from_ref(s), scope, transactional, sends)
                        }
                        None => {}
                    }
                }
                StepKind::Split { arms } => {
                    self.split(file, step.span, arms);
                    for arm in arms {
                        if let Some(body) = &arm.body {
                            self.steps(file, body, scope, transactional, sends);
                        }
                    }
                }
            }
        }
    }

    fn send(
        &mut self,
        file: FileId,
        template: &'a Ident,
        channels: &'a [Ident],
        transactional: bool,
        scope: &Scope<'a>,
    ) {
        let template_decl = self.template_ref(file, template);
        // (1.1) Content for none of the channels: the send can never happen.
        let has_block =
            |t: &TemplateDecl, c: &Ident| t.blocks.iter().any(|b| b.channel.name == c.name);
        // Only when every channel is known: an unknown one is its own error.
        let all_known = channels
            .iter()
            .all(|c| self.env.channels.contains_key(c.name.as_str()));
        let never = template_decl.filter(|t| {
            all_known && !channels.is_empty() && !channels.iter().any(|c| has_block(t, c))
        });
        if let Some(t) = never {
            self.never_sendable(file, template, t);
        }
        let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
        for channel in channels {
            if let Some(first) = seen.get(channel.name.as_str()) {
                self.diags.push(duplicate_member(
                    Label::new(file, first.span, "first named here"),
                    file,
                    channel,
                    "channel",
                ));
                continue;
            }
            seen.insert(&channel.name, channel);
            let Some(decl) = self.channel_ref(file, channel) else {
                continue;
            };
            if decl.consent.is_none() && !transactional {
                self.diags.push(
                    Diagnostic::new(
                        Code::SendWithoutConsent,
                        format!(
                            "the channel `{}` has no consent topic, so only transactional journeys may send through it",
                            channel.name
                        ),
                        Label::new(file, channel.span, "no consent topic"),
                    )
                    .with_help(format!(
                        "mark the journey `{}` as `transactional` if it sends receipts or other service messages, or give the channel a `consent` topic",
                        scope.journey.unwrap_or("…")
                    )),
                );
            }
            if let Some(t) = template_decl
                && never.is_none()
                && !has_block(t, channel)
            {
                self.diags.push(
                    Diagnostic::new(
                        Code::MissingChannelBlock,
                        format!("the template `{}` has no content for `{}`", template.name, channel.name),
                        Label::new(file, channel.span, "nothing to send here"),
                    )
                    .with_help(format!("add a `{} {{ … }}` block to the template, or remove the channel from `via`", channel.name)),
                );
            }
        }
    }

    /// The template a `send` names, its use recorded; `None` (with the
    /// diagnostic, unless its declaration is broken) when there is none.
    fn template_ref(&mut self, file: FileId, template: &'a Ident) -> Option<&'a TemplateDecl> {
        match self.env.templates.get(template.name.as_str()) {
            Some(t) => {
                self.references
                    .decl(file, template.span, "template", &template.name);
                Some(t.node)
            }
            None if self.env.is_broken("template", &template.name) => {
                self.references
                    .decl(file, template.span, "template", &template.name);
                None
            }
            None => {
                let names: Vec<&str> = self.env.templates.keys().copied().collect();
                let help =
                    did_you_mean(&template.name, names.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "declare it: `template {} {{ email {{ … }} }}`",
                            template.name
                        )
                    });
                self.unknown(
                    file,
                    Code::UnknownTemplate,
                    template,
                    format!("unknown template `{}`", template.name),
                    help,
                );
                None
            }
        }
    }

    /// (1.1) A send whose template has content for none of its channels.
    fn never_sendable(&mut self, file: FileId, template: &Ident, t: &TemplateDecl) {
        let blocks: Vec<String> = t
            .blocks
            .iter()
            .map(|b| format!("`{}`", b.channel.name))
            .collect();
        let help = if blocks.is_empty() {
            format!("add a block for one of the channels to `{}`", template.name)
        } else {
            format!(
                "send it via a channel it has content for ({}), or add a block for one of these channels",
                blocks.join(", ")
            )
        };
        self.diags.push(
            Diagnostic::new(
                Code::SendNeverPossible,
                format!(
                    "the template `{}` has content for none of the channels of this send, so it can never be sent",
                    template.name
                ),
                Label::new(file, template.span, "no block for any channel in `via`"),
            )
            .with_help(help),
        );
    }

    fn split(&mut self, file: FileId, span: Span, arms: &[SplitArm]) {
        // An arm with an invalid percentage was reported already.
        let percents: Option<Vec<u8>> = arms.iter().map(|a| a.percent).collect();
        let total: u32 = percents.iter().flatten().map(|&p| u32::from(p)).sum();
        if percents.is_some() && total != 100 {
            let keyword = Span::new(span.start as usize, span.start as usize + "split".len());
            let mut d = Diagnostic::new(
                Code::SplitNotHundred,
                format!("the arms of this split add up to {total}%, not 100%"),
                Label::new(file, keyword, format!("{total}% in all")),
            )
            .with_help(if total < 100 {
                format!(
                    "add {}% to an arm, or add a holdout arm: `{}% holdout`",
                    100 - total,
                    100 - total
                )
            } else {
                format!("take {}% away from the arms", total - 100)
            });
            for arm in arms {
                d.secondary.push(Label::new(
                    file,
                    arm.percent_span,
                    format!("{}%", arm.percent.unwrap_or(0)),
                ));
            }
            self.diags.push(d);
        }
        let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
        for arm in arms {
            if let Some(first) = seen.get(arm.name.name.as_str()) {
                self.diags.push(duplicate_member(
                    Label::new(file, first.span, "first arm"),
                    file,
                    &arm.name,
                    "arm",
                ));
            } else {
                seen.insert(&arm.name.name, &arm.name);
            }
        }
    }

    fn lint_stops(&mut self, file: FileId, steps: &[Step]) {
        if let Some(pos) = steps.iter().position(|s| matches!(s.kind, StepKind::Stop))
            && let Some(next) = steps.get(pos + 1)
        {
            let last = steps.last().map_or(next.span, |s| s.span);
            self.diags.push(
                Diagnostic::new(
                    Code::StepAfterStop,
                    "these steps come after `stop` and never run",
                    Label::new(file, next.span.to(last), "unreachable"),
                )
                .with_secondary(Label::new(file, steps[pos].span, "the instance ends here"))
                .with_help("remove them, or move the `stop` below them"),
            );
        }
        for step in steps {
            for block in step.blocks() {
                self.lint_stops(file, block);
            }
        }
    }

    /// Warns about a `wait` that no send follows (on any path through the journey):
    /// it only delays the instance's completion. `after` says whether a send may
    /// follow the enclosing block.
    fn lint_waits(&mut self, file: FileId, steps: &[Step], after: bool) {
        for (i, step) in steps.iter().enumerate() {
            let rest = &steps[i + 1..];
            let stops = rest.iter().any(|s| matches!(s.kind, StepKind::Stop));
            let later = sends_in(rest) || (after && !stops);
            match &step.kind {
                StepKind::Wait(_) | StepKind::WaitUntil(_) | StepKind::WaitUntilExpr(_)
                    if !later =>
                {
                    self.diags.push(
                        Diagnostic::new(
                            Code::WaitAfterLastSend,
                            "this `wait` comes after the last `send` and delays nothing",
                            Label::new(file, step.span, "no send follows"),
                        )
                        .with_help("remove it; a journey ends when its last step is done"),
                    );
                }
                _ => {
                    for block in step.blocks() {
                        self.lint_waits(file, block, later);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ templates

    fn templates(&mut self, senders: &BTreeMap<&'a str, Vec<Sender<'a>>>) {
        let templates: Vec<_> = self.env.templates.values().copied().collect();
        for t in templates {
            let file = t.file;
            let users = senders
                .get(t.node.name.name.as_str())
                .cloned()
                .unwrap_or_default();
            let name = t.node.name.name.as_str();
            if users.is_empty() && !self.incomplete && !self.suggested.contains(name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::UnusedTemplate,
                        format!("the template `{}` is never sent", t.node.name.name),
                        Label::new(file, t.node.name.span, "declared here"),
                    )
                    .with_help("send it from a journey, or remove it"),
                );
            }
            let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
            for block in &t.node.blocks {
                if let Some(first) = seen.get(block.channel.name.as_str()) {
                    self.diags.push(duplicate_member(
                        Label::new(file, first.span, "first block"),
                        file,
                        &block.channel,
                        "channel block",
                    ));
                    continue;
                }
                seen.insert(&block.channel.name, &block.channel);
                self.channel_ref(file, &block.channel);
                self.template_block(file, block, &users);
                self.sensitive_content(file, t.node, block);
            }
        }
    }

    fn template_block(&mut self, file: FileId, block: &'a TemplateBlock, users: &[Sender<'a>]) {
        let mut seen: BTreeMap<&str, &Ident> = BTreeMap::new();
        for field in &block.fields {
            if let Some(first) = seen.get(field.name.name.as_str()) {
                self.diags.push(duplicate_member(
                    Label::new(file, first.span, "first given here"),
                    file,
                    &field.name,
                    "field",
                ));
            } else {
                seen.insert(&field.name.name, &field.name);
            }
            // Checked once per sending journey, whose trigger `trigger.` means; a
            // template nobody sends is checked with an unknown trigger.
            let unknown = [Sender {
                journey: "",
                trigger: EventCtx::Unknown,
            }];
            let users = if users.is_empty() {
                &unknown[..]
            } else {
                users
            };
            for user in users {
                let scope = Scope {
                    place: Place::Template,
                    event: EventCtx::Absent,
                    trigger: user.trigger,
                    journey: Some(user.journey),
                };
                for part in &field.value.parts {
                    if let StrPart::Interp(e) = part {
                        self.interpolation(file, e, &scope);
                    }
                }
            }
            if block.channel.name.to_ascii_lowercase().contains("sms") {
                self.lint_sms(file, field);
            }
        }
    }

    /// (1.1) §9a: a sensitive attribute may be interpolated only into content
    /// for a `private` channel (seen by the recipient alone, after opening it).
    fn sensitive_content(&mut self, file: FileId, template: &TemplateDecl, block: &TemplateBlock) {
        let Some(channel) = self.env.channels.get(block.channel.name.as_str()) else {
            return;
        };
        if channel.node.private.is_some() {
            return;
        }
        let private: Vec<&str> = self
            .env
            .channels
            .iter()
            .filter(|(_, c)| c.node.private.is_some())
            .map(|(name, _)| *name)
            .collect();
        for field in &block.fields {
            for part in &field.value.parts {
                let StrPart::Interp(e) = part else { continue };
                let mut paths = Vec::new();
                profile_paths(e, &mut paths);
                for path in paths {
                    let Some(attr) = path.segments.get(1) else {
                        continue;
                    };
                    let Some(&(attr_file, decl)) = self.env.attrs.get(attr.name.as_str()) else {
                        continue;
                    };
                    let Some(mark) = decl.sensitive else { continue };
                    let has_block = |c: &str| template.blocks.iter().any(|b| b.channel.name == c);
                    let help = match private.as_slice() {
                        [] => format!(
                            "mark a channel `private` if only the recipient sees its content, after opening it (email, an in-app inbox), and put `{}` in the template's block for that channel",
                            attr.name
                        ),
                        list => {
                            let names: Vec<String> = list
                                .iter()
                                .map(|c| {
                                    if has_block(c) {
                                        format!("`{c}` (the template has a block for it)")
                                    } else {
                                        format!("`{c}`")
                                    }
                                })
                                .collect();
                            format!(
                                "put `{}` in the template's block for a private channel instead: {}",
                                attr.name,
                                names.join(", ")
                            )
                        }
                    };
                    self.diags.push(
                        Diagnostic::new(
                            Code::SensitiveOnPublicChannel,
                            format!(
                                "the sensitive attribute `{}` is put into `{}` content, and `{}` is not private",
                                attr.name, block.channel.name, block.channel.name
                            ),
                            Label::new(file, path.span, "sensitive"),
                        )
                        .with_secondary(Label::new(attr_file, mark, "marked sensitive here"))
                        .with_help(help),
                    );
                }
            }
        }
    }

    fn lint_sms(&mut self, file: FileId, field: &TemplateField) {
        let text: String = field
            .value
            .parts
            .iter()
            .filter_map(|p| match p {
                StrPart::Text(t, _) => Some(t.as_str()),
                StrPart::Interp(_) => None,
            })
            .collect();
        let interpolates = field
            .value
            .parts
            .iter()
            .any(|p| matches!(p, StrPart::Interp(_)));
        let (length, limit, encoding) = sms_length(&text);
        if length > limit {
            let at_least = if interpolates { "at least " } else { "" };
            self.diags.push(
                Diagnostic::new(
                    Code::SmsTooLong,
                    format!("this SMS text is {at_least}{length} {encoding} characters long; one message holds {limit}"),
                    Label::new(file, field.value.span, "sent as several messages"),
                )
                .with_help(if encoding == "GSM-7" {
                    "shorten it; longer texts are split and billed as several messages"
                } else {
                    "shorten it, or avoid characters outside the GSM-7 alphabet (emoji, curly quotes), which cut the limit to 70"
                }),
            );
        }
    }
}

struct JourneyClauses<'a> {
    trigger: EventCtx<'a>,
    transactional: bool,
}

/// Every `profile.…` path of an expression.
fn profile_paths<'e>(e: &'e Expr, out: &mut Vec<&'e Path>) {
    match &e.kind {
        ExprKind::Path(p) if p.root() == "profile" => out.push(p),
        ExprKind::List(items) => items.iter().for_each(|i| profile_paths(i, out)),
        ExprKind::Call(c) => {
            c.args.iter().for_each(|a| profile_paths(a, out));
            if let Some(f) = &c.filter {
                profile_paths(f, out);
            }
        }
        ExprKind::Unary(_, x) | ExprKind::Paren(x) => profile_paths(x, out),
        ExprKind::Binary(_, a, b) => {
            profile_paths(a, out);
            profile_paths(b, out);
        }
        ExprKind::Str(s) => s.parts.iter().for_each(|p| {
            if let StrPart::Interp(x) = p {
                profile_paths(x, out);
            }
        }),
        _ => {}
    }
}

fn sends_in(steps: &[Step]) -> bool {
    steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Send { .. }) || s.blocks().into_iter().any(sends_in))
}

/// The GSM 03.38 basic alphabet; each of these is one septet.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each costs an escape and a septet.
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Length of an SMS text, the single-message limit, and the encoding.
fn sms_length(text: &str) -> (usize, usize, &'static str) {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            return (text.encode_utf16().count(), 70, "UCS-2");
        }
    }
    (septets, 160, "GSM-7")
}

/// A member name as a JSON Pointer token (RFC 6901 §3).
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Whether `pointer` is a JSON Pointer: `/`-separated tokens in which `~` is
/// only ever followed by `0` or `1`.
fn check_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.starts_with('/') {
        return Err("it must start with `/`".into());
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err("`~` must be followed by `0` or `1`".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sms_length;

    #[test]
    fn sms_length_counts_septets_and_falls_back_to_ucs2() {
        assert_eq!(sms_length("Hello"), (5, 160, "GSM-7"));
        assert_eq!(sms_length("10€ [off]"), (12, 160, "GSM-7"));
        assert_eq!(sms_length("Ça 🎉"), (5, 70, "UCS-2"));
    }
}
