//! Typing expressions (LANGUAGE.md §5): every expression gets a [`Ty`]; misuse of
//! optionals, of `event.` and `trigger.`, and of aggregates is reported here.
//!
//! One mistake, one error: an expression already reported has type `Error`, which
//! fits everywhere; an unknown event makes its `event.` paths unknown too, silently.

use crate::check::Checker;
use crate::check::consts;
use crate::check::refs::Symbol;
use crate::check::types::{Base, Ty};
use crate::diagnostic::{Code, Diagnostic, Label, did_you_mean};
use crate::source::{FileId, Span};
use crate::syntax::ast::*;

/// (1.1) The built-in event every `send` decision records (LANGUAGE.md §5).
pub const SENT: &str = "sent";

/// The declaration of `sent`, as if written: `event sent { journey: string,
/// template: string, channel: string, category: string? }`.
pub fn sent_event() -> &'static EventDecl {
    static SENT_EVENT: std::sync::LazyLock<EventDecl> = std::sync::LazyLock::new(|| {
        let at = Span::new(0, 0);
        let ident = |name: &str| Ident {
            name: name.into(),
            span: at,
        };
        let prop = |name: &str, optional: bool| PropDecl {
            name: ident(name),
            ty: TypeExpr {
                kind: TypeKind::String,
                optional,
                span: at,
            },
            source: None,
            span: at,
        };
        EventDecl {
            name: ident(SENT),
            external: None,
            props: vec![
                prop("journey", false),
                prop("template", false),
                prop("channel", false),
                prop("category", true),
            ],
        }
    });
    &SENT_EVENT
}

/// Where an expression stands, which decides what it may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Segment,
    When,
    ExitOn,
    Step,
    /// An aggregate's `where`: only `event.` paths and literals.
    Filter,
    Template,
    /// A profile attribute's default: constants only.
    Default,
}

/// The event `event.` or `trigger.` refers to.
#[derive(Clone, Copy, Debug)]
pub enum EventCtx<'a> {
    /// Not available here.
    Absent,
    Known(&'a EventDecl),
    /// (1.1) A trigger on several events (`when a, b`): a property must be
    /// declared with one type on each of them.
    Several(&'a Trigger),
    /// (1.1) A journey started by a timer (`when no … for`): no event, and a
    /// trigger without properties.
    Timer,
    /// Unknown or broken, already reported: any property is accepted silently.
    Unknown,
}

#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub place: Place,
    pub event: EventCtx<'a>,
    pub trigger: EventCtx<'a>,
    /// The journey whose steps or template are checked, for messages.
    pub journey: Option<&'a str>,
}

/// The two sides of a binary operator, and the whole expression.
#[derive(Clone, Copy)]
struct Sides<'a> {
    file: FileId,
    whole: &'a Expr,
    op: BinaryOp,
    a: &'a Expr,
    b: &'a Expr,
}

impl<'a> Scope<'a> {
    pub fn new(place: Place) -> Scope<'a> {
        Scope {
            place,
            event: EventCtx::Absent,
            trigger: EventCtx::Absent,
            journey: None,
        }
    }
}

impl<'a> Checker<'a> {
    /// A condition: a non-optional `bool`, warned about when constant.
    pub fn condition(&mut self, file: FileId, e: &'a Expr, scope: &Scope<'a>) {
        let ty = self.value(file, e, scope);
        self.expect(file, e, ty, Ty::BOOL, "a condition");
        if let Some(consts::Const::Bool(b)) = consts::eval(e) {
            self.diags.push(
                Diagnostic::new(
                    Code::ConstantCondition,
                    format!("this condition is always {b}"),
                    Label::new(file, e.span, "does not depend on the profile or the event"),
                )
                .with_help(if b {
                    "remove the condition, or test a value that changes"
                } else {
                    "this never matches: remove it or test a value that changes"
                }),
            );
        }
    }

    /// Reports a type other than `expected` for `e` (nothing if either is unknown).
    pub fn expect(&mut self, file: FileId, e: &Expr, found: Ty, expected: Ty, what: &str) {
        if !found.fits(expected) {
            self.diags.push(Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "{what} must be a `{expected}`, but `{}` is a `{found}`",
                    self.snippet(file, e.span)
                ),
                Label::new(file, e.span, format!("`{found}`")),
            ));
        }
    }

    /// An expression whose value is used: an optional here is an error.
    pub fn value(&mut self, file: FileId, e: &'a Expr, scope: &Scope<'a>) -> Ty {
        let ty = self.expr(file, e, scope);
        if ty.optional && !ty.is_error() {
            self.unguarded(file, e, ty);
        }
        ty.required()
    }

    fn unguarded(&mut self, file: FileId, e: &Expr, ty: Ty) {
        let text = self.snippet(file, e.span);
        let needs_parens = !matches!(
            e.kind,
            ExprKind::Path(_) | ExprKind::Call(_) | ExprKind::Paren(_)
        );
        let shown = if needs_parens {
            format!("({text})")
        } else {
            text.to_string()
        };
        self.diags.push(
            Diagnostic::new(
                Code::UnguardedOptional,
                format!("`{text}` may be missing, and Nudge does not guess a value for it"),
                Label::new(file, e.span, format!("`{ty}`: may be missing")),
            )
            .with_help(format!(
                "give it a default with `{shown} ?? {}`, or test `{shown} != none` first",
                ty.required().example_default()
            )),
        );
    }

    pub fn expr(&mut self, file: FileId, e: &'a Expr, scope: &Scope<'a>) -> Ty {
        match &e.kind {
            ExprKind::Number(_) => Ty::NUMBER,
            ExprKind::Str(_) => Ty::STRING,
            ExprKind::Bool(_) => Ty::BOOL,
            ExprKind::None => Ty::of(Base::None),
            ExprKind::Duration(_) => Ty::DURATION,
            ExprKind::TimeOfDay(_) => Ty::TIME_OF_DAY,
            ExprKind::Timestamp { .. } => Ty::TIME,
            ExprKind::Error => Ty::ERROR,
            ExprKind::Paren(x) => self.expr(file, x, scope),
            ExprKind::List(items) => self.list(file, items, scope),
            ExprKind::Path(p) => self.path(file, p, scope),
            ExprKind::Call(c) => self.call(file, e.span, c, scope),
            ExprKind::Unary(UnaryOp::Not, x) => {
                let t = self.value(file, x, scope);
                self.expect(file, x, t, Ty::BOOL, "the operand of `not`");
                Ty::BOOL
            }
            ExprKind::Unary(UnaryOp::Neg, x) => {
                let t = self.value(file, x, scope);
                if !matches!(t.base, Base::Number | Base::Duration | Base::Error) {
                    self.mismatch(
                        file,
                        x.span,
                        format!("cannot negate a `{t}`"),
                        "only numbers and durations have a sign",
                    );
                    return Ty::ERROR;
                }
                t
            }
            ExprKind::Binary(op, a, b) => self.binary(file, e, *op, a, b, scope),
        }
    }

    /// Two sides of a comparison of different types, in plain words: what each
    /// side is, and, when one side is a literal written as the wrong kind of
    /// value (`"30"` for `30`), the literal to write instead.
    fn comparison_mismatch(
        &mut self,
        file: FileId,
        span: Span,
        op: BinaryOp,
        (a, ta): (&Expr, Ty),
        (b, tb): (&Expr, Ty),
    ) {
        let fix = literal_fix(self.snippet(file, b.span), b, tb, ta)
            .map(|fix| (b, fix))
            .or_else(|| literal_fix(self.snippet(file, a.span), a, ta, tb).map(|fix| (a, fix)));
        let (message, label_span, help) = match fix {
            Some((lit, (what, write))) => (
                format!(
                    "`{}` is {what}, but `{}` is {}",
                    self.snippet(file, lit.span),
                    self.snippet(file, if std::ptr::eq(lit, a) { b.span } else { a.span }),
                    plain(if std::ptr::eq(lit, a) { tb } else { ta }),
                ),
                lit.span,
                format!("write {write}"),
            ),
            None => (
                format!(
                    "cannot compare `{}` ({}) with `{}` ({}) using `{}`",
                    self.snippet(file, a.span),
                    plain(ta),
                    self.snippet(file, b.span),
                    plain(tb),
                    op.symbol()
                ),
                span,
                "both sides of a comparison must be of the same kind: numbers with numbers, text with text, times with times".to_string(),
            ),
        };
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                message,
                Label::new(file, label_span, "wrong type"),
            )
            .with_help(help),
        );
    }

    fn mismatch(&mut self, file: FileId, span: Span, message: String, help: &str) {
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                message,
                Label::new(file, span, "wrong type"),
            )
            .with_help(help),
        );
    }

    fn list(&mut self, file: FileId, items: &'a [Expr], scope: &Scope<'a>) -> Ty {
        let mut element: Option<Ty> = None;
        for item in items {
            let t = self.value(file, item, scope);
            if t.is_error() {
                continue;
            }
            if !matches!(t.base, Base::Number | Base::String) {
                self.mismatch(
                    file,
                    item.span,
                    format!("a list cannot hold a `{t}`"),
                    "lists hold numbers or strings",
                );
                return Ty::ERROR;
            }
            match element {
                None => element = Some(t),
                Some(first) if first.base != t.base => {
                    self.mismatch(
                        file,
                        item.span,
                        format!("this list mixes `{first}` and `{t}`"),
                        "every item of a list has the same type",
                    );
                    return Ty::ERROR;
                }
                Some(_) => {}
            }
        }
        match element.map(|t| t.base) {
            Some(Base::Number) => Ty::of(Base::ListNumber),
            Some(Base::String) => Ty::of(Base::ListString),
            _ if items.is_empty() => Ty::of(Base::EmptyList),
            _ => Ty::ERROR,
        }
    }

    fn binary(
        &mut self,
        file: FileId,
        whole: &'a Expr,
        op: BinaryOp,
        a: &'a Expr,
        b: &'a Expr,
        scope: &Scope<'a>,
    ) -> Ty {
        let sides = Sides {
            file,
            whole,
            op,
            a,
            b,
        };
        match op {
            BinaryOp::And | BinaryOp::Or => self.logical(sides, scope),
            BinaryOp::Eq | BinaryOp::Ne => self.equality(sides, scope),
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                self.ordering(sides, scope)
            }
            BinaryOp::In => self.membership(sides, scope),
            BinaryOp::Coalesce => self.coalesce(sides, scope),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
                self.arithmetic(sides, scope)
            }
        }
    }

    /// `and`, `or`: both sides are conditions.
    fn logical(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides { file, op, a, b, .. } = sides;
        for x in [a, b] {
            let t = self.value(file, x, scope);
            self.expect(
                file,
                x,
                t,
                Ty::BOOL,
                &format!("each side of `{}`", op.symbol()),
            );
        }
        Ty::BOOL
    }

    /// `==`, `!=`: values of one type; a test against `none` only of an optional.
    fn equality(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides {
            file,
            whole,
            op,
            a,
            b,
        } = sides;
        let (ta, tb) = (self.expr(file, a, scope), self.expr(file, b, scope));
        let none_test = match (ta.base, tb.base) {
            (Base::None, _) => Some((b, tb)),
            (_, Base::None) => Some((a, ta)),
            _ => None,
        };
        if let Some((tested, t)) = none_test {
            if !t.optional && !t.is_error() && t.base != Base::None {
                let always = op == BinaryOp::Ne;
                self.diags.push(
                    Diagnostic::new(
                        Code::NeverMissing,
                        format!(
                            "`{}` is never missing, so this test is always {always}",
                            self.snippet(file, tested.span)
                        ),
                        Label::new(file, whole.span, format!("`{t}` always has a value")),
                    )
                    .with_help("remove the test; only optional values (`T?`) can be `none`"),
                );
            }
            return Ty::BOOL;
        }
        for (x, t) in [(a, ta), (b, tb)] {
            if t.optional && !t.is_error() {
                self.unguarded(file, x, t);
            }
        }
        let (ta, tb) = (ta.required(), tb.required());
        if !ta.fits(tb) {
            self.comparison_mismatch(file, whole.span, op, (a, ta), (b, tb));
        }
        Ty::BOOL
    }

    /// `<`, `<=`, `>`, `>=`: two values of one orderable type.
    fn ordering(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides {
            file,
            whole,
            op,
            a,
            b,
        } = sides;
        let (ta, tb) = (self.value(file, a, scope), self.value(file, b, scope));
        if ta.is_error() || tb.is_error() {
            return Ty::BOOL;
        }
        let orderable = matches!(
            ta.base,
            Base::Number | Base::String | Base::Time | Base::Duration | Base::TimeOfDay
        );
        if !ta.fits(tb) {
            self.comparison_mismatch(file, whole.span, op, (a, ta), (b, tb));
        } else if !orderable {
            self.mismatch(
                file,
                whole.span,
                format!("cannot order a `{ta}` and a `{tb}` with `{}`", op.symbol()),
                "`<`, `<=`, `>` and `>=` compare two numbers, strings, times, durations or times of day",
            );
        }
        Ty::BOOL
    }

    /// `in`: a value and a list of its type.
    fn membership(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides {
            file, whole, a, b, ..
        } = sides;
        let (ta, tb) = (self.value(file, a, scope), self.value(file, b, scope));
        match tb.element() {
            None => self.mismatch(
                file,
                b.span,
                format!("`in` needs a list on its right, not a `{tb}`"),
                "write a list literal such as `[\"gold\", \"silver\"]` or use a list attribute",
            ),
            Some(el) if !ta.fits(el) => self.mismatch(
                file,
                whole.span,
                format!("a `{ta}` cannot be in a `{tb}`"),
                "the value and the list's items have the same type",
            ),
            Some(_) => {}
        }
        Ty::BOOL
    }

    /// `??`: an optional value and a default of its type.
    fn coalesce(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides { file, a, b, .. } = sides;
        let ta = self.expr(file, a, scope);
        let tb = self.expr(file, b, scope);
        if !ta.optional && !ta.is_error() && ta.base != Base::None {
            self.diags.push(
                Diagnostic::new(
                    Code::NeverMissing,
                    format!(
                        "`{}` is never missing, so its default is never used",
                        self.snippet(file, a.span)
                    ),
                    Label::new(file, b.span, "never used"),
                )
                .with_help(format!("remove `?? {}`", self.snippet(file, b.span))),
            );
        }
        if tb.base == Base::None {
            self.mismatch(
                file,
                b.span,
                "`none` is not a default".into(),
                "give a value of the same type, e.g. `\"\"` or `0`",
            );
            return Ty::ERROR;
        }
        if !ta.required().fits(tb.required()) {
            self.mismatch(
                file,
                b.span,
                format!(
                    "the default is a `{}`, but the value is a `{}`",
                    tb.required(),
                    ta.required()
                ),
                "a default has the type of the value it stands in for",
            );
            return Ty::ERROR;
        }
        let base = if ta.is_error() { tb.base } else { ta.base };
        Ty {
            base,
            optional: tb.optional,
        }
    }

    /// `+`, `-`, `*`, `/`: numbers, and times and durations as LANGUAGE.md §5 lists.
    fn arithmetic(&mut self, sides: Sides<'a>, scope: &Scope<'a>) -> Ty {
        let Sides {
            file,
            whole,
            op,
            a,
            b,
        } = sides;
        let (ta, tb) = (self.value(file, a, scope), self.value(file, b, scope));
        if op == BinaryOp::Div && consts::is_zero(b) && consts::eval(a).is_some() {
            self.diags.push(
                Diagnostic::new(
                    Code::DivisionByZero,
                    format!("`{}` divides by zero", self.snippet(file, whole.span)),
                    Label::new(file, b.span, "this is zero"),
                )
                .with_help("divide by a value other than zero"),
            );
            return Ty::ERROR;
        }
        if ta.is_error() || tb.is_error() {
            return Ty::ERROR;
        }
        use Base::*;
        let result = match (op, ta.base, tb.base) {
            (_, Number, Number) => Some(Number),
            (BinaryOp::Add, Time, Duration) | (BinaryOp::Add, Duration, Time) => Some(Time),
            (BinaryOp::Sub, Time, Duration) => Some(Time),
            (BinaryOp::Sub, Time, Time) => Some(Duration),
            (BinaryOp::Add | BinaryOp::Sub, Duration, Duration) => Some(Duration),
            (BinaryOp::Mul, Number, Duration) | (BinaryOp::Mul, Duration, Number) => Some(Duration),
            (BinaryOp::Div, Duration, Number) => Some(Duration),
            _ => Option::None,
        };
        match result {
            Some(base) => Ty::of(base),
            Option::None => {
                let help = if ta.base == String || tb.base == String {
                    "text is joined by interpolation in templates: `\"{{a}} {{b}}\"`"
                } else {
                    "arithmetic works on numbers, and on times and durations as LANGUAGE.md §5 lists"
                };
                self.mismatch(
                    file,
                    whole.span,
                    format!("cannot apply `{}` to a `{ta}` and a `{tb}`", op.symbol()),
                    help,
                );
                Ty::ERROR
            }
        }
    }

    /// A path: what its root names (LANGUAGE.md §5, names in expressions).
    fn path(&mut self, file: FileId, p: &'a Path, scope: &Scope<'a>) -> Ty {
        let Some(root) = p.segments.first() else {
            return Ty::ERROR;
        };
        let members = &p.segments[1..];
        match root.name.as_str() {
            "profile" => self.profile_path(file, p, members, scope),
            "event" | "trigger" => self.event_path(file, p, root, members, scope),
            "now" => self.now_path(file, p, members, scope),
            name => self.named_path(file, p, root, name, members, scope),
        }
    }

    /// `profile.attr`.
    fn profile_path(
        &mut self,
        file: FileId,
        p: &'a Path,
        members: &'a [Ident],
        scope: &Scope<'a>,
    ) -> Ty {
        if !self.readable(file, p.span, scope, "profile") {
            return Ty::ERROR;
        }
        let Some(attr) = self.single_member(file, p, members, "the profile", "profile.email")
        else {
            return Ty::ERROR;
        };
        match self.env.attrs.get(attr.name.as_str()) {
            Some((_, decl)) => {
                self.references
                    .add(file, attr.span, Symbol::Attr(attr.name.clone()));
                Ty::from_ast(&decl.ty)
            }
            None if self.env.profile_broken => Ty::ERROR,
            None => {
                let names: Vec<&str> = self.env.attrs.keys().copied().collect();
                self.unknown(
                    file,
                    Code::UnknownAttribute,
                    attr,
                    format!("the profile has no attribute `{}`", attr.name),
                    did_you_mean(&attr.name, names.iter().copied())
                        .unwrap_or_else(|| "declare it in the `profile` block".into()),
                );
                Ty::ERROR
            }
        }
    }

    /// `event.prop` or `trigger.prop`, in a scope that may have no event, a
    /// timer, several triggers or one known event.
    fn event_path(
        &mut self,
        file: FileId,
        p: &'a Path,
        root: &'a Ident,
        members: &'a [Ident],
        scope: &Scope<'a>,
    ) -> Ty {
        let is_trigger = root.name == "trigger";
        let ctx = if is_trigger {
            scope.trigger
        } else {
            scope.event
        };
        let event = match ctx {
            EventCtx::Absent => {
                self.unavailable_event(file, p.span, scope, is_trigger);
                return Ty::ERROR;
            }
            EventCtx::Timer => {
                self.timer_event(file, p.span, is_trigger);
                return Ty::ERROR;
            }
            EventCtx::Several(trigger) => {
                return self.shared_property(file, p, members, trigger, is_trigger);
            }
            EventCtx::Unknown => None,
            EventCtx::Known(event) => Some(event),
        };
        let example = if is_trigger {
            "trigger.cart_value"
        } else {
            "event.cart_value"
        };
        let Some(prop) = self.single_member(file, p, members, &format!("`{}`", root.name), example)
        else {
            return Ty::ERROR;
        };
        let Some(event) = event else {
            return Ty::ERROR;
        };
        match event.props.iter().find(|d| d.name.name == prop.name) {
            Some(decl) => {
                let symbol = Symbol::Prop(event.name.name.clone(), prop.name.clone());
                self.references.add(file, prop.span, symbol);
                Ty::from_ast(&decl.ty)
            }
            None => {
                self.unknown_prop(file, prop, event, is_trigger, scope);
                Ty::ERROR
            }
        }
    }

    /// An unknown property of the event (or trigger) in scope.
    fn unknown_prop(
        &mut self,
        file: FileId,
        prop: &Ident,
        event: &EventDecl,
        is_trigger: bool,
        scope: &Scope<'a>,
    ) {
        let names = event.props.iter().map(|d| d.name.name.as_str());
        let help = did_you_mean(&prop.name, names).unwrap_or_else(|| {
            let list: Vec<String> = event
                .props
                .iter()
                .map(|d| format!("`{}`", d.name.name))
                .collect();
            if list.is_empty() {
                format!("`{}` has no properties", event.name.name)
            } else {
                format!("`{}` has {}", event.name.name, list.join(", "))
            }
        });
        let whose = if is_trigger && scope.place == Place::Template {
            format!(
                "`{}`, the trigger of the journey `{}` that sends this template,",
                event.name.name,
                scope.journey.unwrap_or("…")
            )
        } else if is_trigger {
            format!("`{}`, the trigger of this journey,", event.name.name)
        } else {
            format!("the event `{}`", event.name.name)
        };
        self.unknown(
            file,
            Code::UnknownProperty,
            prop,
            format!("{whose} has no property `{}`", prop.name),
            help,
        );
    }

    /// `now`, which has no members.
    fn now_path(
        &mut self,
        file: FileId,
        p: &'a Path,
        members: &'a [Ident],
        scope: &Scope<'a>,
    ) -> Ty {
        if !self.readable(file, p.span, scope, "now") {
            return Ty::ERROR;
        }
        if let Some(extra) = members.first() {
            self.mismatch(
                file,
                extra.span,
                "`now` has no members".into(),
                "`now` is the current time; use `local_hour(now)` or `weekday(now)`",
            );
            return Ty::ERROR;
        }
        Ty::TIME
    }

    /// Any other root: a segment, or an event named where a value is wanted.
    fn named_path(
        &mut self,
        file: FileId,
        p: &'a Path,
        root: &'a Ident,
        name: &str,
        members: &'a [Ident],
        scope: &Scope<'a>,
    ) -> Ty {
        if self.env.events.contains_key(name) {
            let help = if members.is_empty() {
                format!("count it: `count({name} within 7d)`, or test it in `when {name}`")
            } else {
                format!("sum it: `sum({} within 30d)`", self.snippet(file, p.span))
            };
            self.mismatch(
                file,
                p.span,
                format!("`{name}` is an event, not a value"),
                &help,
            );
            return Ty::ERROR;
        }
        if !self.readable(file, p.span, scope, "a segment") {
            return Ty::ERROR;
        }
        if let Some(extra) = members.first()
            && self.env.segments.contains_key(name)
        {
            self.mismatch(
                file,
                extra.span,
                format!("the segment `{name}` is a `bool` and has no members"),
                "use the segment's name alone",
            );
            return Ty::ERROR;
        }
        self.segment_ref(file, root, !members.is_empty())
    }

    /// The one member after `profile.`, `event.` or `trigger.`.
    fn single_member<'p>(
        &mut self,
        file: FileId,
        p: &'p Path,
        members: &'p [Ident],
        what: &str,
        example: &str,
    ) -> Option<&'p Ident> {
        match members {
            [one] => Some(one),
            [] => {
                self.mismatch(
                    file,
                    p.span,
                    format!("{what} is not a value by itself"),
                    &format!("name one of its fields, e.g. `{example}`"),
                );
                None
            }
            [_, extra, ..] => {
                self.mismatch(
                    file,
                    extra.span,
                    format!(
                        "`{}` has no members",
                        self.snippet(file, p.segments[0].span.to(members[0].span))
                    ),
                    "values are numbers, strings, bools, times, durations or lists",
                );
                None
            }
        }
    }

    /// A bare name (a segment). `has_members`: the name was followed by a dot, so
    /// it may be a misspelt `profile`, `event` or `trigger`.
    fn segment_ref(&mut self, file: FileId, name: &'a Ident, has_members: bool) -> Ty {
        match self.env.segments.get(name.name.as_str()) {
            Some(_) => {
                self.references.decl(file, name.span, "segment", &name.name);
                self.used_segments.insert(&name.name);
                if let Some(current) = self.current_segment {
                    self.segment_refs
                        .entry(current)
                        .or_default()
                        .push((&name.name, file, name.span));
                }
                Ty::BOOL
            }
            None if self.env.is_broken("segment", &name.name) => {
                self.references.decl(file, name.span, "segment", &name.name);
                Ty::ERROR
            }
            None => {
                let mut names: Vec<&str> = self.env.segments.keys().copied().collect();
                if has_members {
                    names = vec!["profile", "event", "trigger"];
                }
                let help = did_you_mean(&name.name, names.iter().copied()).unwrap_or_else(|| {
                    "a bare name refers to a segment; attributes are read as `profile.NAME` and event properties as `event.NAME`".into()
                });
                self.unknown(
                    file,
                    Code::UnknownName,
                    name,
                    format!("unknown name `{}`", name.name),
                    help,
                );
                Ty::ERROR
            }
        }
    }

    /// Whether profile attributes, `now` and segments may be read here.
    fn readable(&mut self, file: FileId, span: Span, scope: &Scope<'a>, what: &str) -> bool {
        let (code, message, help) = match scope.place {
            Place::Filter => (
                Code::FilterNotEventOnly,
                format!(
                    "an aggregate's `where` cannot read {}",
                    if what == "now" { "`now`" } else { what }
                ),
                "the filter is decided once, when the event arrives: use only `event.` properties and literals",
            ),
            Place::Default => (
                Code::InvalidDefault,
                "a default must be a constant".to_string(),
                "write a literal such as `0`, `\"standard\"` or `[]`",
            ),
            _ => return true,
        };
        self.diags.push(
            Diagnostic::new(code, message, Label::new(file, span, "not allowed here"))
                .with_help(help),
        );
        false
    }

    /// `event.` or `trigger.` in a journey that a timer starts.
    fn timer_event(&mut self, file: FileId, span: Span, is_trigger: bool) {
        let (code, message, help) = if is_trigger {
            (
                Code::UnknownProperty,
                "this journey starts when a profile has been quiet (`when no … for`), so `trigger.` has no properties",
                "read the profile or an aggregate instead: `profile.first_name`, `since(previous app_opened)`",
            )
        } else {
            (
                Code::EventOutsideCondition,
                "an inactivity trigger (`when no … for`) tests no event, so `event.` is not available",
                "test the profile or an aggregate: `where profile.tier == \"gold\"`",
            )
        };
        self.diags.push(
            Diagnostic::new(code, message, Label::new(file, span, "no event here")).with_help(help),
        );
    }

    /// (1.1) `event.P` or `trigger.P` of a trigger on several events: `P` must
    /// be declared with one type on every listed event.
    fn shared_property(
        &mut self,
        file: FileId,
        p: &'a Path,
        members: &'a [Ident],
        trigger: &'a Trigger,
        is_trigger: bool,
    ) -> Ty {
        let root = if is_trigger { "`trigger`" } else { "`event`" };
        let Some(prop) = self.single_member(file, p, members, root, "event.cart_value") else {
            return Ty::ERROR;
        };
        let mut found: Option<(&'a EventDecl, Ty, String)> = None;
        for name in trigger.events() {
            let Some(event) = self.env.events.get(name.name.as_str()).map(|i| i.node) else {
                // Unknown, already reported.
                return Ty::ERROR;
            };
            let Some(decl) = event.props.iter().find(|d| d.name.name == prop.name) else {
                let listed: Vec<String> =
                    trigger.events().map(|e| format!("`{}`", e.name)).collect();
                self.diags.push(
                    Diagnostic::new(
                        Code::TriggerPropertyNotShared,
                        format!(
                            "`{}` is not a property of `{}`, one of the trigger's events",
                            prop.name, event.name.name
                        ),
                        Label::new(file, prop.span, format!("missing on `{}`", event.name.name)),
                    )
                    .with_help(format!(
                        "a trigger on {} reads only properties declared on each of them; declare `{}` on `{}` too, or test it in a journey of its own",
                        listed.join(", "),
                        prop.name,
                        event.name.name
                    )),
                );
                return Ty::ERROR;
            };
            let symbol = Symbol::Prop(event.name.name.clone(), prop.name.clone());
            self.references.add(file, prop.span, symbol);
            let ty = Ty::from_ast(&decl.ty);
            match &found {
                Some((first, first_ty, first_text)) if *first_ty != ty && !ty.is_error() => {
                    let text = decl.ty.to_string();
                    self.diags.push(
                        Diagnostic::new(
                            Code::TriggerPropertyNotShared,
                            format!(
                                "`{}` is a `{first_text}` on `{}` but a `{text}` on `{}`",
                                prop.name, first.name.name, event.name.name
                            ),
                            Label::new(file, prop.span, "two types"),
                        )
                        .with_help(format!(
                            "declare `{}` with one type on every event the journey is triggered by",
                            prop.name
                        )),
                    );
                    return Ty::ERROR;
                }
                Some(_) => {}
                None => found = Some((event, ty, decl.ty.to_string())),
            }
        }
        found.map_or(Ty::ERROR, |(_, ty, _)| ty)
    }

    fn unavailable_event(&mut self, file: FileId, span: Span, scope: &Scope<'a>, is_trigger: bool) {
        let (code, message, help) = if is_trigger {
            let help = match scope.place {
                Place::When | Place::ExitOn => {
                    "in a `where` condition, `event.` is the event being tested"
                }
                Place::Segment => {
                    "segments are shared by journeys and have no trigger: test `trigger.` in an `if` step"
                }
                Place::Filter => "an aggregate's filter sees only the counted event: use `event.`",
                _ => {
                    "`trigger.` is the event that started the journey, readable in its steps and templates"
                }
            };
            (
                Code::TriggerOutsideSteps,
                "`trigger` is only available in a journey's steps and the templates it sends",
                help,
            )
        } else {
            let help = match scope.place {
                Place::Step | Place::Template => {
                    "use `trigger.` for the event that started the journey"
                }
                Place::Segment => {
                    "segments describe the profile: test the event in `when … where`, or count it with `count(…)`"
                }
                _ => {
                    "`event.` is the event under test in `when … where`, `exit on … where` and aggregate filters"
                }
            };
            (
                Code::EventOutsideCondition,
                "`event` is only available in `where` conditions",
                help,
            )
        };
        self.diags.push(
            Diagnostic::new(code, message, Label::new(file, span, "not available here"))
                .with_help(help),
        );
    }

    pub fn unknown(
        &mut self,
        file: FileId,
        code: Code,
        name: &Ident,
        message: String,
        help: String,
    ) {
        self.unknown_labelled(file, code, name, message, help, "not declared");
    }

    /// [`Checker::unknown`] with its own label, for names that are not
    /// declarations (a decision kind, a field).
    pub fn unknown_labelled(
        &mut self,
        file: FileId,
        code: Code,
        name: &Ident,
        message: String,
        help: String,
        label: &str,
    ) {
        if let Some(suggestion) = help
            .strip_prefix("did you mean `")
            .and_then(|h| h.strip_suffix("`?"))
        {
            self.suggested.insert(suggestion.to_string());
        }
        self.diags.push(
            Diagnostic::new(code, message, Label::new(file, name.span, label)).with_help(help),
        );
    }

    /// Looks up an event by name; reports it when unknown (unless broken).
    pub fn event_ref(&mut self, file: FileId, name: &'a Ident) -> EventCtx<'a> {
        match self.env.events.get(name.name.as_str()) {
            Some(item) => {
                self.references.decl(file, name.span, "event", &name.name);
                EventCtx::Known(item.node)
            }
            None if self.env.is_broken("event", &name.name) => {
                self.references.decl(file, name.span, "event", &name.name);
                EventCtx::Unknown
            }
            None => {
                let names: Vec<&str> = self.env.events.keys().copied().collect();
                let by_external = self.env.external.get(&name.name).map(|(_, _, declared)| {
                    format!(
                        "`{}` is the incoming name of the event `{declared}`: use `{declared}`",
                        name.name
                    )
                });
                let help = by_external
                    .or_else(|| did_you_mean(&name.name, names.iter().copied()))
                    .unwrap_or_else(|| format!("declare it: `event {} {{ … }}`", name.name));
                self.unknown(
                    file,
                    Code::UnknownEvent,
                    name,
                    format!("unknown event `{}`", name.name),
                    help,
                );
                EventCtx::Unknown
            }
        }
    }

    fn call(&mut self, file: FileId, span: Span, c: &'a Call, scope: &Scope<'a>) -> Ty {
        let name = c.function.name.as_str();
        if matches!(name, "count" | "sum" | "since" | "best_time") {
            return self.aggregate(file, span, c, scope);
        }
        let (params, result): (&[Ty], Ty) = match name {
            "lower" => (&[Ty::STRING], Ty::STRING),
            "len" => (&[Ty::STRING], Ty::NUMBER),
            "starts_with" | "contains" => (&[Ty::STRING, Ty::STRING], Ty::BOOL),
            "local_hour" => (&[Ty::TIME], Ty::NUMBER),
            "weekday" => (&[Ty::TIME], Ty::STRING),
            "local_time" => (&[Ty::TIME], Ty::TIME_OF_DAY),
            _ => {
                let all = crate::syntax::keywords::FUNCTIONS;
                let help = did_you_mean(name, all.iter().copied()).unwrap_or_else(|| {
                    let listed: Vec<String> = all.iter().map(|f| format!("`{f}`")).collect();
                    format!("the functions are {}", listed.join(", "))
                });
                self.diags.push(
                    Diagnostic::new(
                        Code::UnknownFunction,
                        format!("unknown function `{name}`"),
                        Label::new(file, c.function.span, "no such function"),
                    )
                    .with_help(help),
                );
                for a in &c.args {
                    self.expr(file, a, scope);
                }
                return Ty::ERROR;
            }
        };
        if let Some(previous) = c.previous {
            self.bad_call(
                file,
                previous,
                format!("`{name}` takes no `previous`"),
                "`previous` leaves the current event out of `count`, `sum` and `since`".into(),
            );
        }
        if c.filter.is_some() || c.within.is_some() {
            self.bad_call(
                file,
                span,
                format!("`{name}` takes no `where` or `within`"),
                "only `count`, `sum` and `since` filter events".into(),
            );
        }
        if c.args.len() != params.len() {
            let plural = if params.len() == 1 { "" } else { "s" };
            let sig = params
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            self.bad_call(
                file,
                span,
                format!(
                    "`{name}` takes {} argument{plural}, found {}",
                    params.len(),
                    c.args.len()
                ),
                format!("call it as `{name}({sig})`"),
            );
            return Ty::ERROR;
        }
        for (arg, &param) in c.args.iter().zip(params) {
            let t = self.value(file, arg, scope);
            self.expect(file, arg, t, param, &format!("the argument of `{name}`"));
        }
        result
    }

    fn bad_call(&mut self, file: FileId, span: Span, message: String, help: String) {
        self.diags.push(
            Diagnostic::new(
                Code::BadCall,
                message,
                Label::new(file, span, "in this call"),
            )
            .with_help(help),
        );
    }

    fn aggregate(&mut self, file: FileId, span: Span, c: &'a Call, scope: &Scope<'a>) -> Ty {
        let name = c.function.name.as_str();
        if matches!(scope.place, Place::Filter | Place::Default) {
            self.readable(file, span, scope, "an aggregate");
            return Ty::ERROR;
        }
        let usage = match name {
            "count" => "count(EVENT where COND within 7d)",
            "sum" => "sum(EVENT.PROPERTY where COND within 30d)",
            "best_time" => "best_time(EVENT where COND within 90d)",
            _ => "since(EVENT where COND)",
        };
        if let (Some(previous), "best_time") = (c.previous, name) {
            self.bad_call(
                file,
                previous,
                "`best_time` takes no `previous`".into(),
                "`previous` leaves the current event out of `count`, `sum` and `since`".into(),
            );
        }
        let Some((event_name, prop)) = self.aggregate_source(file, span, c, usage) else {
            return Ty::ERROR;
        };
        let event = match self.env.events.get(event_name.name.as_str()) {
            None if event_name.name == SENT => EventCtx::Known(sent_event()),
            _ => self.event_ref(file, event_name),
        };
        if let (Some(prop), EventCtx::Known(decl)) = (prop, event) {
            self.summed_property(file, prop, decl);
        }
        if let Some(filter) = &c.filter {
            let inner = Scope {
                place: Place::Filter,
                event,
                trigger: EventCtx::Absent,
                journey: scope.journey,
            };
            self.condition(file, filter, &inner);
        }
        self.aggregate_window(file, span, c, usage);
        match name {
            "since" => Ty::DURATION.optional(),
            "best_time" => Ty::TIME_OF_DAY.optional(),
            _ => Ty::NUMBER,
        }
    }

    /// What an aggregate counts: its one argument, an event name (`sum`: the
    /// event's property), or `None` with the diagnostic given.
    fn aggregate_source(
        &mut self,
        file: FileId,
        span: Span,
        c: &'a Call,
        usage: &str,
    ) -> Option<(&'a Ident, Option<&'a Ident>)> {
        let name = c.function.name.as_str();
        let [arg] = c.args.as_slice() else {
            self.bad_call(
                file,
                span,
                format!("`{name}` takes one event"),
                format!("write `{usage}`"),
            );
            return None;
        };
        let ExprKind::Path(path) = &arg.kind else {
            self.bad_call(
                file,
                arg.span,
                format!("`{name}` takes an event name, not an expression"),
                format!("write `{usage}`"),
            );
            return None;
        };
        let source = match (name, path.segments.as_slice()) {
            ("sum", [e, p]) => (e, Some(p)),
            ("sum", _) => {
                self.bad_call(
                    file,
                    arg.span,
                    "`sum` takes an event's number property".into(),
                    format!("write `{usage}`"),
                );
                return None;
            }
            (_, [e]) => (e, None),
            _ => {
                self.bad_call(
                    file,
                    arg.span,
                    format!("`{name}` takes an event name"),
                    format!("write `{usage}`"),
                );
                return None;
            }
        };
        Some(source)
    }

    /// `sum`'s property: declared on the event, and a number.
    fn summed_property(&mut self, file: FileId, prop: &Ident, decl: &EventDecl) {
        let found = decl.props.iter().find(|d| d.name.name == prop.name);
        if found.is_some() {
            let symbol = Symbol::Prop(decl.name.name.clone(), prop.name.clone());
            self.references.add(file, prop.span, symbol);
        }
        match found {
            None => {
                let help =
                    did_you_mean(&prop.name, decl.props.iter().map(|d| d.name.name.as_str()))
                        .unwrap_or_else(|| {
                            format!("`sum` adds up a number property of `{}`", decl.name.name)
                        });
                self.unknown(
                    file,
                    Code::UnknownProperty,
                    prop,
                    format!(
                        "the event `{}` has no property `{}`",
                        decl.name.name, prop.name
                    ),
                    help,
                );
            }
            Some(d)
                if Ty::from_ast(&d.ty).base != Base::Number && !Ty::from_ast(&d.ty).is_error() =>
            {
                self.mismatch(
                    file,
                    prop.span,
                    format!(
                        "`sum` adds numbers, but `{}.{}` is a `{}`",
                        decl.name.name,
                        prop.name,
                        Ty::from_ast(&d.ty)
                    ),
                    "count events instead with `count(…)`",
                );
            }
            Some(_) => {}
        }
    }

    /// An aggregate's window: `since` has none, the others need one, and
    /// never an empty one.
    fn aggregate_window(&mut self, file: FileId, span: Span, c: &Call, usage: &str) {
        let name = c.function.name.as_str();
        match (name, &c.within) {
            ("since", Some(w)) => {
                self.bad_call(
                    file,
                    w.span,
                    "`since` takes no window".into(),
                    "`since(EVENT)` is the time since the latest such event, however old".into(),
                );
            }
            ("count" | "sum" | "best_time", None) => {
                self.bad_call(
                    file,
                    span,
                    format!("`{name}` needs a window"),
                    format!("write `{usage}`"),
                );
            }
            (_, Some(w)) if w.seconds == 0 => {
                self.diags.push(
                    Diagnostic::new(
                        Code::ZeroCap,
                        "an aggregate over a window of `0s` counts nothing",
                        Label::new(file, w.span, "empty window"),
                    )
                    .with_help("use a window of at least one second, e.g. `within 7d`"),
                );
            }
            _ => {}
        }
    }

    /// An interpolation in a template field: a string or a number.
    pub fn interpolation(&mut self, file: FileId, e: &'a Expr, scope: &Scope<'a>) {
        let t = self.value(file, e, scope);
        if !matches!(
            t.base,
            Base::String | Base::Number | Base::Timezone | Base::Error
        ) {
            self.diags.push(
                Diagnostic::new(
                    Code::BadInterpolation,
                    format!("cannot interpolate a `{t}` into text"),
                    Label::new(file, e.span, format!("`{t}`")),
                )
                .with_help("interpolate strings or numbers; choose between two texts with `if` and two templates"),
            );
        }
    }

    /// The source text of a span, for messages.
    pub fn snippet(&self, file: FileId, span: Span) -> &str {
        self.texts
            .get(file.0 as usize)
            .and_then(|t| t.get(span.range()))
            .unwrap_or("…")
    }
}

/// A type in plain words, for people who do not think in types.
fn plain(t: Ty) -> String {
    let words = match t.base {
        Base::Number => "a number",
        Base::String => "text",
        Base::Bool => "true or false",
        Base::Time => "a time",
        Base::Duration => "a duration",
        Base::Timezone => "a time zone",
        Base::TimeOfDay => "a time of day",
        Base::ListNumber => "a list of numbers",
        Base::ListString => "a list of texts",
        Base::EmptyList => "a list",
        Base::None => "`none`",
        Base::Error => "unknown",
    };
    words.to_string()
}

/// When `e` is a literal of type `found` that was meant as a value of type
/// `wanted` (`"30"` next to a number): what it is, and the literal to write.
fn literal_fix(text: &str, e: &Expr, found: Ty, wanted: Ty) -> Option<(String, String)> {
    let wanted = wanted.base;
    match (&e.kind, found.base) {
        (ExprKind::Str(s), Base::String) => {
            let inner = s.as_plain()?;
            let trimmed = inner.trim();
            let fits = match wanted {
                Base::Number => trimmed.parse::<f64>().is_ok_and(f64::is_finite),
                Base::Duration => {
                    !trimmed.is_empty()
                        && trimmed.starts_with(|c: char| c.is_ascii_digit())
                        && trimmed.ends_with(['s', 'm', 'h', 'd', 'w'])
                }
                Base::TimeOfDay => {
                    trimmed.len() <= 5 && trimmed.contains(':') && !trimmed.contains('T')
                }
                Base::Time => chrono::DateTime::parse_from_rfc3339(trimmed).is_ok(),
                Base::Bool => matches!(trimmed, "true" | "false"),
                _ => false,
            };
            let kind = match wanted {
                Base::Number => "the number",
                Base::Duration => "the duration",
                Base::TimeOfDay => "the time of day",
                Base::Time => "the timestamp",
                _ => "",
            };
            let write = format!("{kind} `{trimmed}`, without quotes");
            fits.then(|| ("text".to_string(), write.trim_start().to_string()))
        }
        (ExprKind::Number(_), Base::Number) if wanted == Base::String => Some((
            "a number".to_string(),
            format!("the text `\"{text}\"`, in double quotes"),
        )),
        (ExprKind::Bool(_), Base::Bool) if wanted == Base::String => Some((
            "true or false".to_string(),
            format!("the text `\"{text}\"`, in double quotes"),
        )),
        _ => None,
    }
}
