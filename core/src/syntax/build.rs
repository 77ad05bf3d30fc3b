//! From pest pairs to the AST.
//!
//! The builder trusts the grammar for shape (a pair's children are what the rule
//! says) and validates what the grammar lexes loosely: duration units, times of
//! day, percentages, numbers, timestamps and type names. Each bad token is reported
//! once and replaced by an `Error` node or a neutral value, so parsing goes on.

use crate::diagnostic::{Code, Diagnostic, Label, did_you_mean};
use crate::source::{FileId, Span};
use crate::syntax::Rule;
use crate::syntax::ast::*;
use crate::syntax::expr;
use crate::syntax::keywords;
use crate::syntax::lexical::{suggest_unit, unit_seconds};
use pest::iterators::Pair;

pub(crate) struct Builder<'t> {
    pub file: FileId,
    /// The whole file's text.
    pub text: &'t str,
    /// Offset of the parsed piece in the file: pest spans are relative to it.
    pub base: usize,
    pub diagnostics: Vec<Diagnostic>,
    /// Operators built so far in the current declaration.
    pub budget: expr::Budget,
}

type P<'i> = Pair<'i, Rule>;

impl expr::Operands for Builder<'_> {
    fn span(&self, pair: &P<'_>) -> Span {
        Builder::span(self, pair)
    }

    fn error(&mut self, code: Code, span: Span, message: String, label: &str) -> &mut Diagnostic {
        Builder::error(self, code, span, message, label)
    }

    fn text(&self) -> &str {
        self.text
    }

    fn budget(&mut self) -> &mut expr::Budget {
        &mut self.budget
    }

    fn primary(&mut self, pair: P<'_>) -> Expr {
        Builder::primary(self, pair)
    }
}

impl<'t> Builder<'t> {
    pub fn new(file: FileId, text: &'t str) -> Builder<'t> {
        Builder {
            file,
            text,
            base: 0,
            diagnostics: Vec::new(),
            budget: expr::Budget::default(),
        }
    }

    /// Starts a new declaration (or journey item): limits are per declaration.
    pub fn start_piece(&mut self, base: usize) {
        self.base = base;
        self.budget = expr::Budget::default();
    }

    /// The pair's span in the file. pest lets a rule that ends in an optional or a
    /// repetition swallow the whitespace and comments after it; they are trimmed.
    pub fn span(&self, pair: &P<'_>) -> Span {
        let s = pair.as_span();
        let start = s.start() + self.base;
        let end = trim_end(self.text, start, s.end() + self.base);
        Span::new(start, end)
    }

    pub fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::new(
            code,
            message,
            Label::new(self.file, span, label),
        ));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    pub fn ident(&self, pair: P<'_>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    // ------------------------------------------------------------ declarations

    pub fn decl(&mut self, pair: P<'_>) -> DeclKind {
        match pair.as_rule() {
            Rule::consent_decl => DeclKind::Consent(self.consent(pair)),
            Rule::profile_decl => DeclKind::Profile(self.profile(pair)),
            Rule::event_decl => DeclKind::Event(self.event(pair)),
            Rule::channel_decl => DeclKind::Channel(self.channel(pair)),
            Rule::limits_decl => DeclKind::Limits(self.limits(pair)),
            Rule::segment_decl => DeclKind::Segment(self.segment(pair)),
            Rule::template_decl => DeclKind::Template(self.template(pair)),
            Rule::journey_decl => DeclKind::Journey(self.journey(pair)),
            Rule::category_decl => DeclKind::Category(CategoryDecl {
                name: self.ident(next(&mut pair.into_inner().skip(1))),
            }),
            Rule::test_decl => DeclKind::Test(self.test(pair)),
            rule => unreachable!("decl_entry only yields declarations, got {rule:?}"),
        }
    }

    fn consent(&mut self, pair: P<'_>) -> ConsentDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let mode = next(&mut inner);
        let external = inner
            .find(|p| p.as_rule() == Rule::string)
            .map(|p| self.plain_string(p, "a consent topic's external name"));
        ConsentDecl {
            external,
            name,
            mode: if mode.as_str() == "opt_in" {
                ConsentMode::OptIn
            } else {
                ConsentMode::OptOut
            },
            mode_span: self.span(&mode),
        }
    }

    fn profile(&mut self, pair: P<'_>) -> ProfileDecl {
        let attrs: Vec<AttrDecl> = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::attr_decl)
            .map(|p| self.attr(p))
            .collect();
        let spans: Vec<Span> = attrs.iter().map(|a| a.span).collect();
        self.require_separators(&spans, "attributes");
        ProfileDecl { attrs }
    }

    fn attr(&mut self, pair: P<'_>) -> AttrDecl {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(next(&mut inner));
        let ty = self.type_expr(next(&mut inner));
        let mut default = None;
        let mut source = None;
        let mut sensitive: Option<Span> = None;
        for p in inner {
            match p.as_rule() {
                Rule::field_source => source = Some(self.field_source(p)),
                Rule::sensitive_mark => {
                    let at = self.span(&p);
                    if let Some(first) = sensitive {
                        let file = self.file;
                        self.error(
                            Code::MisplacedClause,
                            at,
                            format!("the attribute `{}` is marked `sensitive` twice", name.name),
                            "repeated here",
                        )
                        .with_secondary_in_place(Label::new(file, first, "first given here"))
                        .help = Some("keep one `sensitive`, after the type".into());
                    } else {
                        sensitive = Some(at);
                    }
                }
                _ => default = Some(self.expr(p)),
            }
        }
        AttrDecl {
            name,
            ty,
            default,
            source,
            sensitive,
            span,
        }
    }

    fn event(&mut self, pair: P<'_>) -> EventDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let mut external = None;
        let mut props = Vec::new();
        for p in inner {
            match p.as_rule() {
                Rule::string => external = Some(self.plain_string(p, "an event's external name")),
                Rule::event_props => {
                    props = p
                        .into_inner()
                        .map(|prop| {
                            let span = self.span(&prop);
                            let mut inner = prop.into_inner();
                            let name = self.ident(next(&mut inner));
                            let ty = self.type_expr(next(&mut inner));
                            let source = inner.next().map(|p| self.field_source(p));
                            PropDecl {
                                name,
                                ty,
                                source,
                                span,
                            }
                        })
                        .collect();
                }
                _ => {}
            }
        }
        let spans: Vec<Span> = props.iter().map(|p| p.span).collect();
        self.require_separators(&spans, "properties");
        EventDecl {
            name,
            external,
            props,
        }
    }

    /// `from "…"` after an attribute or property: the input field it reads.
    fn field_source(&mut self, pair: P<'_>) -> StrLit {
        let span = self.span(&pair);
        let string = pair.into_inner().find(|p| p.as_rule() == Rule::string);
        match string {
            Some(p) => self.plain_string(p, "a field's input name"),
            None => StrLit {
                parts: Vec::new(),
                span,
            },
        }
    }

    fn type_expr(&mut self, pair: P<'_>) -> TypeExpr {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name_pair = next(&mut inner);
        let name = name_pair.as_str();
        let name_span = self.span(&name_pair);
        let mut arg = None;
        let mut optional = false;
        for p in inner {
            match p.as_rule() {
                Rule::type_expr => arg = Some(self.type_expr(p)),
                Rule::optional_mark => optional = true,
                _ => {}
            }
        }
        let kind = match (name, arg) {
            ("list", Some(arg))
                if matches!(arg.kind, TypeKind::Number | TypeKind::String) && !arg.optional =>
            {
                TypeKind::List(Box::new(arg))
            }
            ("list", Some(arg)) => {
                if arg.kind != TypeKind::Error {
                    self.error(
                        Code::UnknownType,
                        arg.span,
                        "lists hold numbers or strings",
                        "not a list element type",
                    )
                    .help = Some("write `list<string>` or `list<number>`".into());
                }
                TypeKind::Error
            }
            ("list", None) => {
                self.error(
                    Code::UnknownType,
                    name_span,
                    "`list` needs an element type",
                    "element type missing",
                )
                .help = Some("write `list<string>` or `list<number>`".into());
                TypeKind::Error
            }
            (scalar, arg) => {
                let kind = match scalar {
                    "number" => TypeKind::Number,
                    "string" => TypeKind::String,
                    "bool" => TypeKind::Bool,
                    "time" => TypeKind::Time,
                    "duration" => TypeKind::Duration,
                    "timezone" => TypeKind::Timezone,
                    "time_of_day" => TypeKind::TimeOfDay,
                    other => {
                        let help = unknown_type_help(other);
                        self.error(
                            Code::UnknownType,
                            name_span,
                            format!("unknown type `{other}`"),
                            "not a type",
                        )
                        .help = Some(help);
                        return TypeExpr {
                            kind: TypeKind::Error,
                            optional,
                            span,
                        };
                    }
                };
                if let Some(arg) = arg {
                    self.error(
                        Code::UnknownType,
                        arg.span,
                        format!("`{scalar}` takes no type argument"),
                        "unexpected type argument",
                    );
                    TypeKind::Error
                } else {
                    kind
                }
            }
        };
        TypeExpr {
            kind,
            optional,
            span,
        }
    }

    fn channel(&mut self, pair: P<'_>) -> ChannelDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let mut channel = ChannelDecl {
            name,
            address: None,
            consent: None,
            quiet: None,
            engagement: Vec::new(),
            private: None,
        };
        let mut seen: Vec<(&'static str, Span)> = Vec::new();
        for clause in inner {
            let span = self.span(&clause);
            let keyword = match clause.as_rule() {
                Rule::address_clause => {
                    let path = clause.into_inner().nth(1).map(|p| self.path(p));
                    channel.address = channel.address.or(path);
                    "address"
                }
                Rule::channel_consent => {
                    let topic = clause.into_inner().nth(1).map(|p| self.ident(p));
                    channel.consent = channel.consent.or(topic);
                    "consent"
                }
                Rule::quiet_clause => {
                    let quiet = self.quiet(clause);
                    channel.quiet = channel.quiet.or(quiet);
                    "quiet"
                }
                Rule::engagement_clause => {
                    if channel.engagement.is_empty() {
                        channel.engagement = clause
                            .into_inner()
                            .filter(|p| p.as_rule() == Rule::ident)
                            .map(|p| self.ident(p))
                            .collect();
                    }
                    "engagement"
                }
                Rule::private_clause => {
                    channel.private = channel.private.or(Some(span));
                    "private"
                }
                _ => continue,
            };
            if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == keyword) {
                let file = self.file;
                self.error(
                    Code::MisplacedClause,
                    span,
                    format!(
                        "channel `{}` has more than one `{keyword}` clause",
                        channel.name.name
                    ),
                    "repeated here",
                )
                .with_secondary_in_place(Label::new(file, first, "first given here"))
                .help = Some(format!("keep one `{keyword}` clause"));
            } else {
                seen.push((keyword, span));
            }
        }
        channel
    }

    fn quiet(&mut self, pair: P<'_>) -> Option<QuietWindow> {
        let span = self.span(&pair);
        let mut times = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::time_of_day);
        let from = self.time_of_day(next(&mut times));
        let to = self.time_of_day(next(&mut times));
        Some(QuietWindow {
            from: from?,
            to: to?,
            span,
        })
    }

    fn limits(&mut self, pair: P<'_>) -> LimitsDecl {
        let mut limits = LimitsDecl {
            caps: Vec::new(),
            quiet: Vec::new(),
        };
        for clause in pair.into_inner() {
            match clause.as_rule() {
                Rule::cap_clause => {
                    if let Some(cap) = self.cap(clause) {
                        limits.caps.push(cap);
                    }
                }
                Rule::quiet_clause => {
                    if let Some(q) = self.quiet(clause) {
                        limits.quiet.push(q);
                    }
                }
                _ => {}
            }
        }
        limits
    }

    fn cap(&mut self, pair: P<'_>) -> Option<Cap> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().skip(1);
        let (count, count_span, window) = self.cap_limit(&mut inner);
        let _on = inner.next();
        let scope = match inner.next() {
            None => CapScope::All,
            Some(p) if p.as_rule() == Rule::cap_category => {
                CapScope::Category(self.ident(next(&mut p.into_inner().skip(1))))
            }
            Some(first) => CapScope::Channels(
                std::iter::once(first)
                    .chain(inner)
                    .filter(|p| p.as_rule() == Rule::ident)
                    .map(|p| self.ident(p))
                    .collect(),
            ),
        };
        Some(Cap {
            count: count?,
            count_span,
            window: window?,
            scope,
            span,
        })
    }

    /// `N per WINDOW`, as in caps of `limits` and (1.1) of journeys.
    fn cap_limit<'i>(
        &mut self,
        inner: &mut impl Iterator<Item = P<'i>>,
    ) -> (Option<u32>, Span, Option<Window>) {
        let count_pair = next(inner);
        let count_span = self.span(&count_pair);
        let count = self.whole_number(
            &count_pair,
            u32::MAX as f64,
            "a cap counts whole sends",
            "write a whole number of sends, such as `3`",
        );
        let _per = inner.next();
        let window_pair = next(inner);
        let span = self.span(&window_pair);
        let window = match window_pair.as_rule() {
            Rule::calendar_window if window_pair.as_str() == "day" => Some(WindowKind::Day),
            Rule::calendar_window => Some(WindowKind::Week),
            _ => self.duration(&window_pair).map(WindowKind::Rolling),
        };
        (
            count.map(|c| c as u32),
            count_span,
            window.map(|kind| Window { kind, span }),
        )
    }

    fn segment(&mut self, pair: P<'_>) -> SegmentDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let expr = self.expr(next(&mut inner));
        SegmentDecl { name, expr }
    }

    fn template(&mut self, pair: P<'_>) -> TemplateDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let blocks = inner
            .map(|block| {
                let span = self.span(&block);
                let mut parts = block.into_inner();
                let channel = self.ident(next(&mut parts));
                let fields: Vec<TemplateField> = parts
                    .map(|field| {
                        let span = self.span(&field);
                        let mut f = field.into_inner();
                        let name = self.ident(next(&mut f));
                        let value = self.string(next(&mut f), None);
                        TemplateField { name, value, span }
                    })
                    .collect();
                let spans: Vec<Span> = fields.iter().map(|f| f.span).collect();
                self.require_separators(&spans, "fields");
                TemplateBlock {
                    channel,
                    fields,
                    span,
                }
            })
            .collect();
        TemplateDecl { name, blocks }
    }

    /// (1.1) `test NAME { … }`.
    fn test(&mut self, pair: P<'_>) -> TestDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let steps = inner.map(|step| self.test_step(step)).collect();
        TestDecl { name, steps }
    }

    fn test_step(&mut self, pair: P<'_>) -> TestStep {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().skip(1);
        if rule == Rule::test_expect {
            let mut no = None;
            let mut kind = None;
            let mut fields = None;
            for p in inner {
                match p.as_rule() {
                    Rule::kw_no => no = Some(self.span(&p)),
                    Rule::field_name => kind = Some(self.ident(p)),
                    Rule::test_object => fields = Some(self.test_object(p)),
                    _ => {}
                }
            }
            let kind = kind.unwrap_or_else(|| Ident {
                name: String::new(),
                span,
            });
            return TestStep::Expect {
                no,
                kind,
                fields,
                span,
            };
        }
        let time = next(&mut inner);
        let time = match time.as_rule() {
            Rule::test_after => {
                let span = self.span(&time);
                match time.into_inner().next().and_then(|d| self.duration(&d)) {
                    Some(d) => TestTime::After(d),
                    None => TestTime::Error(span),
                }
            }
            _ => {
                let span = self.span(&time);
                match self.timestamp(&time) {
                    Some((seconds, nanos)) => {
                        // In range: `timestamp` checked that it fits in nanoseconds.
                        let at = seconds
                            .saturating_mul(1_000_000_000)
                            .saturating_add(i64::from(nanos));
                        TestTime::At { nanos: at, span }
                    }
                    None => TestTime::Error(span),
                }
            }
        };
        let input = inner.next().map(|input| {
            let input_span = self.span(&input);
            let rule = input.as_rule();
            let mut parts = input.into_inner();
            if rule == Rule::test_identify {
                parts.next();
                let profile = self.string(next(&mut parts), Some("a profile id"));
                let traits = parts.next().map(|o| self.test_object(o));
                TestInput::Identify {
                    profile,
                    traits,
                    span: input_span,
                }
            } else {
                let event = self.ident(next(&mut parts));
                let profile = self.string(next(&mut parts), Some("a profile id"));
                let props = parts.next().map(|o| self.test_object(o));
                TestInput::Event {
                    event,
                    profile,
                    props,
                    span: input_span,
                }
            }
        });
        TestStep::At { time, input, span }
    }

    fn test_object(&mut self, pair: P<'_>) -> TestObject {
        let span = self.span(&pair);
        let fields: Vec<TestField> = pair
            .into_inner()
            .map(|field| {
                let span = self.span(&field);
                let mut f = field.into_inner();
                let name = self.ident(next(&mut f));
                let value = next(&mut f);
                let value = match value.as_rule() {
                    Rule::test_object => TestValue::Object(self.test_object(value)),
                    _ => TestValue::Expr(self.expr(value)),
                };
                TestField { name, value, span }
            })
            .collect();
        let spans: Vec<Span> = fields.iter().map(|f| f.span).collect();
        self.require_separators(&spans, "fields");
        TestObject { fields, span }
    }

    fn journey(&mut self, pair: P<'_>) -> JourneyDecl {
        let mut inner = pair.into_inner().skip(1);
        let name = self.ident(next(&mut inner));
        let mut journey = JourneyDecl {
            name,
            clauses: Vec::new(),
            steps: Vec::new(),
            recovered: false,
        };
        let errors_before = self.diagnostics.len();
        for item in inner {
            self.journey_item(&mut journey, item);
        }
        // A clause or step with a bad token was reported and left out.
        journey.recovered = self.diagnostics.len() > errors_before;
        journey
    }

    /// Adds a clause or step to `journey`; clauses must come before the steps.
    pub fn journey_item(&mut self, journey: &mut JourneyDecl, item: P<'_>) {
        if let Some(step) = self.step(item.clone()) {
            journey.steps.push(step);
            return;
        }
        let Some(clause) = self.clause(item) else {
            return;
        };
        if let Some(first_step) = journey.steps.first() {
            let first_step_span = first_step.span;
            let file = self.file;
            self.error(
                Code::MisplacedClause,
                clause.span,
                format!(
                    "`{}` comes after the journey's steps",
                    clause.kind.keyword()
                ),
                "clause after a step",
            )
            .with_secondary_in_place(Label::new(file, first_step_span, "the first step"))
            .help = Some("move the clause above the first step".into());
        }
        journey.clauses.push(clause);
    }

    /// A journey clause from its parse. Long by design: one arm per clause
    /// rule of the grammar, each a few lines of mapping.
    fn clause(&mut self, pair: P<'_>) -> Option<Clause> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().skip(1);
        let kind = match rule {
            Rule::owner_clause => {
                ClauseKind::Owner(self.plain_string(next(&mut inner), "the owner"))
            }
            Rule::priority_clause => {
                let value = next(&mut inner);
                let value_span = self.span(&value);
                let number = self.whole_number(
                    &value,
                    100.0,
                    "a priority is a whole number from 0 to 100",
                    "use 0 (lowest) to 100 (highest); the default is 50",
                );
                ClauseKind::Priority {
                    value: number.unwrap_or(50.0),
                    value_span,
                }
            }
            Rule::when_clause => {
                let first = inner.clone().next()?;
                if matches!(first.as_rule(), Rule::when_at | Rule::when_every) {
                    let (days, time) = self.schedule(first)?;
                    let condition = inner.nth(2).map(|p| self.expr(p));
                    ClauseKind::WhenScheduled {
                        days,
                        time,
                        condition,
                    }
                } else if first.as_rule() == Rule::when_no {
                    let mut parts = first.into_inner().skip(1);
                    let mut events = Vec::new();
                    let mut after = None;
                    for p in parts.by_ref() {
                        match p.as_rule() {
                            Rule::ident => events.push(self.ident(p)),
                            Rule::duration => after = self.duration(&p),
                            _ => {}
                        }
                    }
                    let condition = inner.nth(2).map(|p| self.expr(p));
                    ClauseKind::WhenNo {
                        events,
                        after: after?,
                        condition,
                    }
                } else {
                    ClauseKind::When(self.trigger(inner))
                }
            }
            Rule::category_clause => ClauseKind::Category(self.ident(next(&mut inner))),
            Rule::journey_cap => {
                let (count, count_span, window) = self.cap_limit(&mut inner);
                ClauseKind::Cap {
                    count: count?,
                    count_span,
                    window: window?,
                }
            }
            Rule::goal_clause => {
                let event = self.ident(next(&mut inner));
                let mut condition = None;
                let mut within = None;
                for p in inner {
                    match p.as_rule() {
                        Rule::expr => condition = Some(self.expr(p)),
                        Rule::duration => within = self.duration(&p),
                        _ => {}
                    }
                }
                ClauseKind::Goal {
                    event,
                    condition,
                    within: within?,
                }
            }
            Rule::exit_clause => ClauseKind::ExitOn(self.trigger(inner.skip(1))),
            Rule::reenter_clause => {
                let p = next(&mut inner);
                if p.as_rule() == Rule::kw_never {
                    ClauseKind::ReenterNever
                } else {
                    let d = self.duration(&next(&mut inner))?;
                    ClauseKind::ReenterAfter(d)
                }
            }
            Rule::require_clause => ClauseKind::RequireConsent(self.ident(inner.nth(1)?)),
            Rule::transactional_clause => ClauseKind::Transactional,
            _ => return None,
        };
        Some(Clause { kind, span })
    }

    /// (1.1) `at DATE HH:MM` or `every DAYS at HH:MM`.
    fn schedule(&mut self, pair: P<'_>) -> Option<(ScheduleDays, TimeOfDay)> {
        let rule = pair.as_rule();
        let mut days = Vec::new();
        let mut once = None;
        let mut time = None;
        let mut days_span: Option<Span> = None;
        let mut valid = true;
        for p in pair.into_inner() {
            let span = self.span(&p);
            match p.as_rule() {
                Rule::date => {
                    once = self.date(&p);
                    valid &= once.is_some();
                    days_span = Some(span);
                }
                Rule::schedule_day => {
                    days_span = Some(days_span.map_or(span, |s| s.to(span)));
                    let word = p.as_str();
                    match (word, WEEKDAYS.iter().position(|d| *d == word)) {
                        ("day", _) => days.extend(0..7),
                        (_, Some(d)) => days.push(d as u8),
                        (_, None) => {
                            valid = false;
                            let lower = word.to_ascii_lowercase();
                            let help = match WEEKDAYS.iter().find(|d| lower.starts_with(*d)) {
                                Some(d) => format!("write `{d}`"),
                                None => did_you_mean(word, WEEKDAYS.iter().copied().chain(["day"]))
                                    .unwrap_or_else(|| "write `day`, or days among `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`".into()),
                            };
                            self.error(
                                Code::InvalidSchedule,
                                span,
                                format!("`{word}` is not a day of a schedule"),
                                "not `day` or `mon`…`sun`",
                            )
                            .help = Some(help);
                        }
                    }
                }
                Rule::time_of_day => time = self.time_of_day(p),
                _ => {}
            }
        }
        let span = days_span?;
        let days = match (rule, once) {
            (Rule::when_at, Some((year, month, day))) => ScheduleDays::Once {
                year,
                month,
                day,
                span,
            },
            _ => ScheduleDays::Every {
                weekdays: days,
                span,
            },
        };
        if !valid {
            return None;
        }
        Some((days, time?))
    }

    /// (1.1) A `YYYY-MM-DD` date that exists.
    fn date(&mut self, p: &P<'_>) -> Option<(i32, u32, u32)> {
        let text = p.as_str();
        let parsed = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        match parsed {
            Some(d) => {
                use chrono::Datelike;
                Some((d.year(), d.month(), d.day()))
            }
            None => {
                let span = self.span(p);
                self.error(
                    Code::InvalidSchedule,
                    span,
                    format!("`{text}` is not a date"),
                    "no such day",
                )
                .help = Some("write a day that exists, as `YYYY-MM-DD`: `2026-12-24`".into());
                None
            }
        }
    }

    fn trigger<'i>(&mut self, inner: impl Iterator<Item = P<'i>>) -> Trigger {
        let mut inner = inner.peekable();
        let first = next(&mut inner);
        let quoted = first.as_rule() == Rule::string;
        let event = if quoted {
            let span = self.span(&first);
            let text = self.plain_string(first, "an event name").as_plain();
            Ident {
                name: text.unwrap_or_default(),
                span,
            }
        } else {
            self.ident(first)
        };
        let mut also = Vec::new();
        while let Some(p) = inner.next_if(|p| p.as_rule() == Rule::ident) {
            also.push(self.ident(p));
        }
        let condition = inner.nth(1).map(|p| self.expr(p));
        Trigger {
            event,
            also,
            quoted,
            condition,
        }
    }

    fn steps(&mut self, block: P<'_>) -> Vec<Step> {
        block.into_inner().filter_map(|p| self.step(p)).collect()
    }

    /// A step from its parse. Long by design: one arm per step rule of the
    /// grammar, each a few lines of mapping.
    fn step(&mut self, pair: P<'_>) -> Option<Step> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let kind = match rule {
            Rule::wait_step => {
                let mut inner = pair.into_inner().skip(1);
                let p = next(&mut inner);
                if p.as_rule() == Rule::kw_until {
                    let e = self.expr(next(&mut inner));
                    match e.kind {
                        // A literal keeps its own step, as in 1.0.
                        ExprKind::TimeOfDay(minutes) => StepKind::WaitUntil(TimeOfDay {
                            minutes,
                            span: e.span,
                        }),
                        ExprKind::Error => return None,
                        _ => StepKind::WaitUntilExpr(e),
                    }
                } else {
                    StepKind::Wait(self.duration(&p)?)
                }
            }
            Rule::send_step => {
                let mut inner = pair.into_inner().skip(1);
                let template = self.ident(next(&mut inner));
                let mut best = false;
                let channels = inner
                    .filter(|p| {
                        best |= p.as_rule() == Rule::best_of;
                        p.as_rule() == Rule::ident
                    })
                    .map(|p| self.ident(p))
                    .collect();
                StepKind::Send {
                    template,
                    channels,
                    best,
                }
            }
            Rule::wait_for_step => {
                let mut inner = pair.into_inner().skip(3);
                let timeout = self.duration(&next(&mut inner));
                let _for = inner.next();
                let event = self.ident(next(&mut inner));
                let mut condition = None;
                let mut blocks = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::expr => condition = Some(self.expr(p)),
                        Rule::block => blocks.push(self.steps(p)),
                        _ => {}
                    }
                }
                let mut blocks = blocks.into_iter();
                StepKind::WaitFor {
                    timeout: timeout?,
                    event,
                    condition,
                    then: blocks.next().unwrap_or_default(),
                    otherwise: blocks.next(),
                }
            }
            Rule::if_step => {
                let mut inner = pair.into_inner().skip(1);
                let condition = self.expr(next(&mut inner));
                let then = self.steps(next(&mut inner));
                let otherwise = match inner.nth(1) {
                    Some(p) if p.as_rule() == Rule::block => Some(Else::Block(self.steps(p))),
                    Some(p) => self.step(p).map(|s| Else::If(Box::new(s))),
                    None => None,
                };
                StepKind::If {
                    condition,
                    then,
                    otherwise,
                }
            }
            Rule::split_step => {
                let arms = pair
                    .into_inner()
                    .skip(1)
                    .filter_map(|arm| self.split_arm(arm))
                    .collect();
                StepKind::Split { arms }
            }
            Rule::stop_step => StepKind::Stop,
            _ => return None,
        };
        Some(Step { kind, span })
    }

    fn split_arm(&mut self, pair: P<'_>) -> Option<SplitArm> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let percent_pair = next(&mut inner);
        let percent_span = self.span(&percent_pair);
        let percent = self.percent(&percent_pair);
        let name = self.ident(next(&mut inner));
        let body = inner.next().map(|b| self.steps(b));
        Some(SplitArm {
            percent,
            percent_span,
            name,
            body,
            span,
        })
    }

    // ------------------------------------------------------------ tokens

    /// `30m`, `1h30m`: whole seconds. Reports unknown units and overflow.
    pub fn duration(&mut self, pair: &P<'_>) -> Option<DurationLit> {
        let span = self.span(pair);
        let text = pair.as_str();
        let mut seconds: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let unit_len = rest[digits..]
                .bytes()
                .take_while(u8::is_ascii_alphabetic)
                .count();
            let (number, unit) = (&rest[..digits], &rest[digits..digits + unit_len]);
            let Some(unit_seconds) = unit_seconds(unit) else {
                let unit_start = span.start as usize + (text.len() - rest.len()) + digits;
                let unit_span = Span::new(unit_start, unit_start + unit.len());
                let help = match suggest_unit(unit) {
                    Some(u) => {
                        format!("write `{number}{u}`; the units are `s`, `m`, `h`, `d` and `w`")
                    }
                    None => "the units are `s`, `m`, `h`, `d` and `w`".to_string(),
                };
                self.error(
                    Code::InvalidDuration,
                    unit_span,
                    match suggest_unit(unit) {
                        Some(u) => format!("`{unit}` is not a duration unit: use `{u}`"),
                        None => format!("`{unit}` is not a duration unit"),
                    },
                    "unknown unit",
                )
                .help = Some(help);
                return None;
            };
            let value = number
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(unit_seconds))
                .and_then(|n| seconds.checked_add(n))
                .filter(|n| *n <= MAX_DURATION_SECONDS);
            match value {
                Some(v) => seconds = v,
                None => {
                    self.error(
                        Code::InvalidDuration,
                        span,
                        format!("the duration `{text}` is too long"),
                        "longer than 100 years",
                    )
                    .help = Some(
                        "durations are at most 100 years (`5200w`): the runtime counts time in nanoseconds up to the year 2262".into(),
                    );
                    return None;
                }
            }
            rest = &rest[digits + unit_len..];
        }
        Some(DurationLit { seconds, span })
    }

    fn time_of_day(&mut self, pair: P<'_>) -> Option<TimeOfDay> {
        let span = self.span(&pair);
        let text = pair.as_str();
        let (h, m) = text.split_once(':').unwrap_or((text, ""));
        let hours: u16 = h.parse().unwrap_or(99);
        let minutes: u16 = m.parse().unwrap_or(99);
        let problem = if hours > 23 {
            Some(format!(
                "`{text}` is not a time of day: hours run from 00 to 23"
            ))
        } else if minutes > 59 {
            Some(format!(
                "`{text}` is not a time of day: minutes run from 00 to 59"
            ))
        } else if h.len() != 2 || m.len() != 2 {
            Some(format!("`{text}` is not written as `HH:MM`"))
        } else {
            None
        };
        if let Some(message) = problem {
            let help = if hours <= 23 && minutes <= 59 {
                format!("write `{hours:02}:{minutes:02}`")
            } else if hours == 24 && minutes == 0 {
                "midnight is `00:00`".to_string()
            } else {
                "write a 24-hour time from `00:00` to `23:59`".to_string()
            };
            self.error(Code::InvalidTimeOfDay, span, message, "invalid time of day")
                .help = Some(help);
            return None;
        }
        Some(TimeOfDay {
            minutes: hours * 60 + minutes,
            span,
        })
    }

    fn percent(&mut self, pair: &P<'_>) -> Option<u8> {
        let span = self.span(pair);
        let digits = pair.as_str().trim_end_matches('%');
        match digits.parse::<u8>() {
            Ok(p) if p <= 100 => Some(p),
            _ => {
                self.error(
                    Code::InvalidPercent,
                    span,
                    format!(
                        "`{}` is not a whole percentage from 0% to 100%",
                        pair.as_str()
                    ),
                    "invalid percentage",
                )
                .help = Some("split arms take whole percentages that add up to 100%".into());
                None
            }
        }
    }

    /// A whole number from 0 to `max`; reports anything else with `why` and `help`.
    fn whole_number(&mut self, pair: &P<'_>, max: f64, why: &str, help: &str) -> Option<f64> {
        let span = self.span(pair);
        let text = pair.as_str();
        match text.parse::<f64>() {
            Ok(n) if n.fract() == 0.0 && (0.0..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    Code::InvalidNumber,
                    span,
                    format!("`{text}` is not allowed here: {why}"),
                    "invalid number",
                )
                .help = Some(help.to_string());
                None
            }
        }
    }

    // ------------------------------------------------------------ strings

    /// A string that may not interpolate (owner, external event names).
    fn plain_string(&mut self, pair: P<'_>, what: &str) -> StrLit {
        self.string(pair, Some(what))
    }

    /// Builds a string literal. `no_interpolation_in`: where interpolation is not
    /// allowed, what the string is (for the message); `None` inside template fields.
    pub fn string(&mut self, pair: P<'_>, no_interpolation_in: Option<&str>) -> StrLit {
        let span = self.span(&pair);
        let mut parts: Vec<StrPart> = Vec::new();
        for part in pair.into_inner() {
            // Inside a string, whitespace is text: no trimming.
            let raw = part.as_span();
            let part_span = Span::new(raw.start() + self.base, raw.end() + self.base);
            match part.as_rule() {
                Rule::string_text => push_text(&mut parts, part.as_str(), part_span),
                Rule::escape => {
                    let decoded = decode_escape(part.as_str());
                    match decoded {
                        Some(c) => push_text(&mut parts, c.encode_utf8(&mut [0; 4]), part_span),
                        None => {
                            self.error(
                                Code::InvalidEscape,
                                part_span,
                                format!("`{}` is not a valid character code", part.as_str()),
                                "not a Unicode scalar value",
                            );
                        }
                    }
                }
                Rule::interpolation => {
                    if let Some(what) = no_interpolation_in {
                        self.error(
                            Code::InterpolationOutsideTemplate,
                            part_span,
                            format!("{what} cannot contain `{{{{ … }}}}`"),
                            "interpolation here",
                        )
                        .help =
                            Some("only template fields interpolate; write plain text here".into());
                        continue;
                    }
                    if let Some(e) = part.into_inner().next() {
                        let e = self.expr(e);
                        parts.push(StrPart::Interp(e));
                    }
                }
                _ => {}
            }
        }
        StrLit { parts, span }
    }

    // ------------------------------------------------------------ expressions

    pub fn expr(&mut self, pair: P<'_>) -> Expr {
        expr::build(self, pair)
    }

    pub fn primary(&mut self, pair: P<'_>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => ExprKind::Number(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::duration => match self.duration(&pair) {
                Some(d) => ExprKind::Duration(d.seconds),
                None => ExprKind::Error,
            },
            Rule::time_of_day => match self.time_of_day(pair) {
                Some(t) => ExprKind::TimeOfDay(t.minutes),
                None => ExprKind::Error,
            },
            Rule::timestamp => match self.timestamp(&pair) {
                Some((seconds, nanos)) => ExprKind::Timestamp { seconds, nanos },
                None => ExprKind::Error,
            },
            Rule::string => ExprKind::Str(self.string(pair, Some("this string"))),
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_none => ExprKind::None,
            Rule::list => ExprKind::List(pair.into_inner().map(|e| self.expr(e)).collect()),
            Rule::paren => match pair.into_inner().next() {
                Some(e) => ExprKind::Paren(Box::new(self.expr(e))),
                None => ExprKind::Error,
            },
            Rule::path => ExprKind::Path(self.path(pair)),
            Rule::call => {
                let mut inner = pair.into_inner();
                let function = self.ident(next(&mut inner));
                let mut call = Call {
                    function,
                    args: Vec::new(),
                    filter: None,
                    within: None,
                    previous: None,
                };
                for p in inner {
                    match p.as_rule() {
                        Rule::kw_previous => call.previous = Some(self.span(&p)),
                        Rule::expr => call.args.push(self.expr(p)),
                        Rule::call_where => {
                            call.filter = p.into_inner().nth(1).map(|e| Box::new(self.expr(e)));
                        }
                        Rule::call_within => {
                            call.within = p.into_inner().nth(1).and_then(|d| self.duration(&d));
                        }
                        _ => {}
                    }
                }
                ExprKind::Call(call)
            }
            rule => unreachable!("not a primary: {rule:?}"),
        };
        Expr { kind, span }
    }

    /// An RFC 3339 timestamp literal: seconds and nanoseconds since the epoch,
    /// within the years nanoseconds reach.
    fn timestamp(&mut self, pair: &P<'_>) -> Option<(i64, u32)> {
        let span = self.span(pair);
        match chrono::DateTime::parse_from_rfc3339(pair.as_str()) {
            Ok(t) if t.timestamp_nanos_opt().is_none() => {
                self.error(
                    Code::InvalidTimestamp,
                    span,
                    format!("`{}` is outside the years 1678 to 2261", pair.as_str()),
                    "out of range",
                )
                .help = Some(
                    "Nudge counts time in nanoseconds since 1970, which reaches from 1677 to 2262"
                        .into(),
                );
                None
            }
            Ok(t) => Some((t.timestamp(), t.timestamp_subsec_nanos())),
            Err(e) => {
                self.error(
                    Code::InvalidTimestamp,
                    span,
                    format!("`{}` is not a valid timestamp: {e}", pair.as_str()),
                    "invalid timestamp",
                )
                .help = Some("write an RFC 3339 timestamp such as `2026-11-29T10:00:00Z`".into());
                None
            }
        }
    }

    fn path(&mut self, pair: P<'_>) -> Path {
        let span = self.span(&pair);
        Path {
            segments: pair.into_inner().map(|p| self.ident(p)).collect(),
            span,
        }
    }

    /// Two items (attributes, properties, fields) on one line need a comma
    /// between them; the grammar accepts a line break instead.
    fn require_separators(&mut self, items: &[Span], what: &str) {
        for pair in items.windows(2) {
            let between = &self.text[pair[0].end as usize..pair[1].start as usize];
            let code_between = strip_comments(between);
            if !code_between.contains(',') && !between.contains('\n') {
                let at = Span::new(pair[0].end as usize, pair[0].end as usize);
                let file = self.file;
                self.error(
                    Code::MissingComma,
                    at,
                    format!("missing `,` between {what}"),
                    "expected `,` here",
                )
                .with_secondary_in_place(Label::new(file, pair[1], "next item"))
                .help = Some(format!(
                    "separate {what} with a comma or put each on its own line"
                ));
            }
        }
    }
}

impl Diagnostic {
    /// Adds a secondary label to a diagnostic being built in place.
    pub(crate) fn with_secondary_in_place(&mut self, label: Label) -> &mut Diagnostic {
        self.secondary.push(label);
        self
    }
}

/// Moves `end` back over whitespace and `//` comments, not before `start`.
/// The longest duration a policy may write: 100 years of 365.25 days. The
/// runtime's times are nanoseconds since 1970 (up to 2262), so any time plus
/// such a duration stays representable, and `check` and `run` agree.
pub const MAX_DURATION_SECONDS: u64 = 36_525 * 86_400;

pub(crate) fn trim_end(text: &str, start: usize, mut end: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        while end > start && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1).max(start);
        let code = crate::syntax::lexical::code_part(&text[line_start..end]);
        if code.len() == end - line_start {
            return end;
        }
        end = line_start + code.len();
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_text(parts: &mut Vec<StrPart>, text: &str, span: Span) {
    if let Some(StrPart::Text(prev, prev_span)) = parts.last_mut() {
        prev.push_str(text);
        *prev_span = prev_span.to(span);
    } else {
        parts.push(StrPart::Text(text.to_string(), span));
    }
}

fn decode_escape(escape: &str) -> Option<char> {
    match escape {
        "\\\"" => Some('"'),
        "\\\\" => Some('\\'),
        "\\n" => Some('\n'),
        "\\t" => Some('\t'),
        _ => {
            let hex = escape.strip_prefix("\\u{")?.strip_suffix('}')?;
            char::from_u32(u32::from_str_radix(hex, 16).ok()?)
        }
    }
}

/// The next child a rule is known to have. pest guarantees the shape; a missing
/// child would be a grammar/builder mismatch, caught by the tests.
fn next<'i>(pairs: &mut impl Iterator<Item = P<'i>>) -> P<'i> {
    #[expect(clippy::expect_used, reason = "the grammar guarantees this child")]
    pairs.next().expect("grammar guarantees this child")
}

/// What to write instead of an unknown type: the type another language's
/// name means, or the closest type name.
fn unknown_type_help(other: &str) -> String {
    let alias = match other {
        "int" | "integer" | "float" | "double" | "decimal" | "num" => Some("number"),
        "str" | "text" => Some("string"),
        "boolean" => Some("bool"),
        "timestamp" | "datetime" | "instant" | "date" => Some("time"),
        "tz" | "zone" => Some("timezone"),
        "array" | "vec" => Some("list<string>"),
        _ => None,
    };
    match alias {
        Some(t) => format!("use `{t}`"),
        None => did_you_mean(other, keywords::TYPES.iter().copied())
            .unwrap_or_else(|| {
                "the types are `number`, `string`, `bool`, `time`, `duration`, `timezone` and `list<T>`".into()
            }),
    }
}
