//! The formatter: one canonical layout for policy files (`nudge fmt`).
//!
//! Promises: a file with syntax errors is never formatted (its diagnostics are
//! returned instead); every comment is kept, in order, next to what it was next
//! to (a comment inside an expression moves to the line above its clause); the
//! AST is unchanged; formatting is idempotent. Literals keep the user's spelling
//! (`90m` stays `90m`, `"\u{1F389}"` stays escaped).
//!
//! Layout: two-space indentation, one clause or step per line, single spaces
//! around operators, a blank line between declarations (consecutive one-line
//! declarations of one kind stay together when the source kept them together),
//! at most one blank line kept between items of a block, and conditions longer
//! than 100 columns broken before `and`/`or`.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use crate::syntax::ast::*;

/// The widest line the formatter aims for.
pub const WIDTH: usize = 100;

/// Formats a file, or returns its syntax diagnostics.
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let parsed = crate::syntax::parse(FileId(0), text);
    if !parsed.diagnostics.is_empty() {
        return Err(parsed.diagnostics);
    }
    let mut p = Printer {
        text,
        comments: &parsed.module.comments,
        next_comment: 0,
        out: String::with_capacity(text.len() + 64),
        indent: 0,
        last_end: 0,
    };
    p.module(&parsed.module);
    Ok(p.out)
}

struct Printer<'a> {
    text: &'a str,
    comments: &'a [Comment],
    next_comment: usize,
    out: String,
    indent: usize,
    /// Source offset of the last thing printed, for blank-line preservation.
    last_end: usize,
}

impl<'a> Printer<'a> {
    fn src(&self, span: Span) -> &'a str {
        self.text.get(span.range()).unwrap_or("")
    }

    fn pad(&self) -> String {
        "  ".repeat(self.indent)
    }

    fn blank_between(&self, from: usize, to: usize) -> bool {
        let between = self.text.get(from.min(to)..to).unwrap_or("");
        between.lines().skip(1).any(|l| l.trim().is_empty()) && between.matches('\n').count() >= 2
    }

    fn at_block_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with("{\n")
    }

    fn blank_line(&mut self) {
        if !self.at_block_start() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Prints the comments that start before `before`, each on its own line,
    /// keeping one blank line where the source had one.
    fn leading(&mut self, before: usize) {
        while let Some(c) = self.comments.get(self.next_comment) {
            let start = c.span.start as usize;
            if start >= before {
                break;
            }
            if self.blank_between(self.last_end, start) {
                self.blank_line();
            }
            let line = format!("{}{}\n", self.pad(), self.src(c.span).trim_end());
            self.out.push_str(&line);
            self.last_end = c.span.end as usize;
            self.next_comment += 1;
        }
    }

    /// Appends a comment that follows `after` on the same source line to the
    /// current output line (which must not yet be ended).
    fn trailing(&mut self, after: usize) {
        if let Some(c) = self.comments.get(self.next_comment) {
            let start = c.span.start as usize;
            if start >= after && !self.text.get(after..start).unwrap_or("\n").contains('\n') {
                self.out.push(' ');
                self.out.push_str(self.src(c.span).trim_end());
                self.last_end = c.span.end as usize;
                self.next_comment += 1;
            }
        }
    }

    /// One item on one line: comments before and inside it go above it, a comment
    /// after it on the same line stays there.
    fn item(&mut self, content: &str, span: Span, keep_blank: bool) {
        let start = span.start as usize;
        if keep_blank && self.blank_between(self.last_end, self.first_start(start)) {
            self.blank_line();
        }
        self.leading(start);
        self.keep_blank_before(start);
        // Comments inside the item go above it.
        self.leading(span.end as usize);
        self.out.push_str(&self.pad());
        self.out.push_str(content);
        self.last_end = span.end as usize;
        self.trailing(span.end as usize);
        self.out.push('\n');
    }

    /// Keeps a blank line between comments just printed and the item at `start`.
    fn keep_blank_before(&mut self, start: usize) {
        if self.out.ends_with("\n")
            && !self.at_block_start()
            && self.blank_between(self.last_end, start)
        {
            self.blank_line();
        }
    }

    /// Where an item's text begins, counting the comments just above it.
    fn first_start(&self, start: usize) -> usize {
        match self.comments.get(self.next_comment) {
            Some(c) if (c.span.start as usize) < start => c.span.start as usize,
            _ => start,
        }
    }

    /// Opens a block: the header line ending in `{`, with a comment after the
    /// brace kept on that line.
    fn open(&mut self, header: &str, span: Span, keep_blank: bool) {
        let start = span.start as usize;
        if keep_blank && self.blank_between(self.last_end, self.first_start(start)) {
            self.blank_line();
        }
        let brace = self.brace_after(start);
        self.leading(start);
        self.keep_blank_before(start);
        self.out.push_str(&self.pad());
        self.out.push_str(header);
        self.out.push_str(" {");
        self.last_end = brace + 1;
        self.trailing(brace + 1);
        self.out.push('\n');
        self.indent += 1;
    }

    /// Closes a block whose `}` ends `span`.
    fn close(&mut self, span: Span) {
        let end = span.end as usize;
        self.leading(end.saturating_sub(1));
        self.indent = self.indent.saturating_sub(1);
        self.out.push_str(&self.pad());
        self.out.push('}');
        self.last_end = end;
        self.trailing(end);
        self.out.push('\n');
    }

    /// The offset of the first `{` at or after `from` that is not in a comment or
    /// string (the opening brace of a block).
    fn brace_after(&self, from: usize) -> usize {
        let bytes = self.text.as_bytes();
        let (mut i, mut in_string) = (from, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_string => i += 1,
                b'"' => in_string = !in_string,
                b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'{' if !in_string => return i,
                _ => {}
            }
            i += 1;
        }
        from
    }

    /// Whether a comment starts inside `span` (a construct that must then be laid
    /// out over several lines to keep it).
    fn has_comment_in(&self, span: Span) -> bool {
        self.comments[self.next_comment..]
            .iter()
            .any(|c| c.span.start > span.start && c.span.start < span.end)
    }

    // ------------------------------------------------------------ declarations

    fn module(&mut self, m: &Module) {
        let mut previous: Option<(&Decl, bool)> = None;
        for decl in &m.decls {
            let single = self.is_single_line(decl);
            let start = decl.span.start as usize;
            if let Some((prev, prev_single)) = previous {
                let grouped = single
                    && prev_single
                    && prev.kind.keyword() == decl.kind.keyword()
                    && !self.blank_between(prev.span.end as usize, self.first_start(start));
                if !grouped {
                    self.out.push('\n');
                }
            }
            self.decl(decl, single);
            previous = Some((decl, single));
        }
        self.leading(usize::MAX);
        if self.out.ends_with("\n\n") {
            self.out.pop();
        }
    }

    fn is_single_line(&self, decl: &Decl) -> bool {
        match &decl.kind {
            DeclKind::Consent(_) | DeclKind::Category(_) => true,
            DeclKind::Event(e) => {
                !self.has_comment_in(decl.span) && self.event_line(e).len() <= WIDTH
            }
            DeclKind::Channel(c) => {
                !self.has_comment_in(decl.span) && self.channel_line(c).len() <= WIDTH
            }
            DeclKind::Segment(s) => {
                format!("segment {} = {}", s.name.name, self.expr(&s.expr)).len() <= WIDTH
            }
            _ => false,
        }
    }

    /// One declaration in canonical layout. Long by design: one arm per
    /// declaration kind, each that kind's layout; the table reads best whole.
    fn decl(&mut self, decl: &Decl, single: bool) {
        match &decl.kind {
            DeclKind::Consent(c) => {
                let mode = match c.mode {
                    ConsentMode::OptIn => "opt_in",
                    ConsentMode::OptOut => "opt_out",
                };
                let from = self.from(c.external.as_ref());
                self.item(
                    &format!("consent {} {mode}{from}", c.name.name),
                    decl.span,
                    false,
                );
            }
            DeclKind::Profile(p) => {
                self.open("profile", decl.span, false);
                for a in &p.attrs {
                    let default = a
                        .default
                        .as_ref()
                        .map(|d| format!(" = {}", self.expr(d)))
                        .unwrap_or_default();
                    let from = self.from(a.source.as_ref());
                    let sensitive = if a.sensitive.is_some() {
                        " sensitive"
                    } else {
                        ""
                    };
                    let line = format!("{}: {}{sensitive}{default}{from}", a.name.name, a.ty);
                    self.item(&line, a.span, true);
                }
                self.close(decl.span);
            }
            DeclKind::Event(e) if single => {
                let line = self.event_line(e);
                self.item(&line, decl.span, false);
            }
            DeclKind::Event(e) => {
                self.open(&event_head(self, e), decl.span, false);
                for p in &e.props {
                    let from = self.from(p.source.as_ref());
                    self.item(&format!("{}: {}{from}", p.name.name, p.ty), p.span, true);
                }
                self.close(decl.span);
            }
            DeclKind::Channel(c) if single => {
                let line = self.channel_line(c);
                self.item(&line, decl.span, false);
            }
            DeclKind::Channel(c) => {
                self.open(&format!("channel {}", c.name.name), decl.span, false);
                for (clause, span) in self.channel_clauses(c) {
                    self.item(&clause, span, true);
                }
                self.close(decl.span);
            }
            DeclKind::Limits(l) => {
                self.open("limits", decl.span, false);
                let mut clauses: Vec<(Span, String)> = l
                    .caps
                    .iter()
                    .map(|c| {
                        let on = cap_scope(&c.scope);
                        (
                            c.span,
                            format!(
                                "cap {} per {}{on}",
                                self.src(c.count_span),
                                self.src(c.window.span)
                            ),
                        )
                    })
                    .chain(l.quiet.iter().map(|q| (q.span, self.quiet(q))))
                    .collect();
                clauses.sort_by_key(|(s, _)| s.start);
                for (span, line) in clauses {
                    self.item(&line, span, true);
                }
                self.close(decl.span);
            }
            DeclKind::Segment(s) => {
                let head = format!("segment {} =", s.name.name);
                let one = format!("{head} {}", self.expr(&s.expr));
                if single {
                    self.item(&one, decl.span, false);
                } else {
                    // `segment s =` then the condition, broken before `and`/`or`.
                    let lines = self.broken(&s.expr);
                    let start = decl.span.start as usize;
                    self.leading(decl.span.end as usize);
                    self.out.push_str(&format!("{}{head}\n", self.pad()));
                    let _ = start;
                    let n = lines.len();
                    for (i, l) in lines.into_iter().enumerate() {
                        self.out.push_str(&format!("{}  {l}", self.pad()));
                        if i + 1 == n {
                            self.last_end = decl.span.end as usize;
                            self.trailing(decl.span.end as usize);
                        }
                        self.out.push('\n');
                    }
                }
            }
            DeclKind::Template(t) => {
                self.open(&format!("template {}", t.name.name), decl.span, false);
                for b in &t.blocks {
                    self.template_block(b);
                }
                self.close(decl.span);
            }
            DeclKind::Category(c) => {
                self.item(&format!("category {}", c.name.name), decl.span, false);
            }
            DeclKind::Test(t) => {
                self.open(&format!("test {}", t.name.name), decl.span, false);
                for step in &t.steps {
                    self.test_step(step);
                }
                self.close(decl.span);
            }
            DeclKind::Journey(j) => {
                self.open(&format!("journey {}", j.name.name), decl.span, false);
                for c in &j.clauses {
                    let line = self.clause(&c.kind);
                    self.item(&line, c.span, true);
                }
                if let (Some(last), Some(first)) = (j.clauses.last(), j.steps.first()) {
                    // Steps start after a blank line below the header.
                    let _ = (last, first);
                    self.out.push('\n');
                }
                self.steps(&j.steps, true);
                self.close(decl.span);
            }
        }
    }

    fn event_line(&self, e: &EventDecl) -> String {
        let head = event_head(self, e);
        if e.props.is_empty() {
            return head;
        }
        let props: Vec<String> = e
            .props
            .iter()
            .map(|p| format!("{}: {}{}", p.name.name, p.ty, self.from(p.source.as_ref())))
            .collect();
        format!("{head} {{ {} }}", props.join(", "))
    }

    /// ` from "…"` after a field or topic that has one.
    fn from(&self, source: Option<&StrLit>) -> String {
        source
            .map(|s| format!(" from {}", self.string(s)))
            .unwrap_or_default()
    }

    fn channel_clauses(&self, c: &ChannelDecl) -> Vec<(String, Span)> {
        let mut clauses = Vec::new();
        if let Some(a) = &c.address {
            clauses.push((format!("address {}", path_text(a)), a.span));
        }
        if let Some(t) = &c.consent {
            clauses.push((format!("consent {}", t.name), t.span));
        }
        if let Some(q) = &c.quiet {
            clauses.push((self.quiet(q), q.span));
        }
        if let Some(span) = c.private {
            clauses.push(("private".into(), span));
        }
        if let (Some(first), Some(last)) = (c.engagement.first(), c.engagement.last()) {
            let names: Vec<&str> = c.engagement.iter().map(|e| e.name.as_str()).collect();
            clauses.push((
                format!("engagement {}", names.join(", ")),
                first.span.to(last.span),
            ));
        }
        clauses.sort_by_key(|(_, s)| s.start);
        clauses
    }

    fn channel_line(&self, c: &ChannelDecl) -> String {
        let clauses: Vec<String> = self
            .channel_clauses(c)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        if clauses.is_empty() {
            format!("channel {} {{}}", c.name.name)
        } else {
            format!("channel {} {{ {} }}", c.name.name, clauses.join(" "))
        }
    }

    fn quiet(&self, q: &QuietWindow) -> String {
        format!("quiet {} to {}", self.src(q.from.span), self.src(q.to.span))
    }

    fn template_block(&mut self, b: &TemplateBlock) {
        let fields: Vec<String> = b
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.name.name, self.string(&f.value)))
            .collect();
        let one = format!("{} {{ {} }}", b.channel.name, fields.join(", "));
        if !self.has_comment_in(b.span) && one.len() + 2 * self.indent <= WIDTH {
            self.item(&one, b.span, true);
            return;
        }
        self.open(&b.channel.name, b.span, true);
        for (f, text) in b.fields.iter().zip(fields) {
            self.item(&text, f.span, true);
        }
        self.close(b.span);
    }

    /// (1.1) A test step on one line, or its object broken over lines, one
    /// field per line, when it does not fit.
    fn test_step(&mut self, step: &TestStep) {
        let (head, object) = match step {
            TestStep::At { time, input, .. } => {
                let time = match time {
                    TestTime::After(d) => format!("+{}", self.src(d.span)),
                    _ => self.src(time.span()).to_string(),
                };
                match input {
                    None => (format!("at {time}"), None),
                    Some(TestInput::Identify {
                        profile, traits, ..
                    }) => (
                        format!("at {time} identify {}", self.string(profile)),
                        traits.as_ref(),
                    ),
                    Some(TestInput::Event {
                        event,
                        profile,
                        props,
                        ..
                    }) => (
                        format!("at {time} {} {}", event.name, self.string(profile)),
                        props.as_ref(),
                    ),
                }
            }
            TestStep::Expect {
                no, kind, fields, ..
            } => {
                let no = if no.is_some() { "no " } else { "" };
                (format!("expect {no}{}", kind.name), fields.as_ref())
            }
        };
        let span = step.span();
        let Some(object) = object.filter(|o| !o.fields.is_empty()) else {
            self.item(&head, span, true);
            return;
        };
        let one = format!("{head} {}", self.test_object(object));
        if !self.has_comment_in(object.span) && one.len() + 2 * self.indent <= WIDTH {
            self.item(&one, span, true);
            return;
        }
        self.open(&head, span, true);
        for f in &object.fields {
            let text = self.test_field(f);
            self.item(&text, f.span, true);
        }
        self.close(span);
    }

    fn test_object(&self, o: &TestObject) -> String {
        if o.fields.is_empty() {
            return "{}".into();
        }
        let fields: Vec<String> = o.fields.iter().map(|f| self.test_field(f)).collect();
        format!("{{ {} }}", fields.join(", "))
    }

    /// `name: value`; an object after `consent` without the colon, as §10
    /// writes it (`consent { push_marketing: true }`).
    fn test_field(&self, f: &TestField) -> String {
        match &f.value {
            TestValue::Expr(e) => format!("{}: {}", f.name.name, self.expr(e)),
            TestValue::Object(o) if f.name.name == "consent" => {
                format!("consent {}", self.test_object(o))
            }
            TestValue::Object(o) => format!("{}: {}", f.name.name, self.test_object(o)),
        }
    }

    fn clause(&self, c: &ClauseKind) -> String {
        match c {
            ClauseKind::Owner(s) => format!("owner {}", self.string(s)),
            ClauseKind::Priority { value_span, .. } => {
                format!("priority {}", self.src(*value_span))
            }
            ClauseKind::When(t) => format!("when {}", self.trigger(t)),
            ClauseKind::ExitOn(t) => format!("exit on {}", self.trigger(t)),
            ClauseKind::ReenterAfter(d) => format!("reenter after {}", self.src(d.span)),
            ClauseKind::ReenterNever => "reenter never".into(),
            ClauseKind::RequireConsent(t) => format!("require consent {}", t.name),
            ClauseKind::Transactional => "transactional".into(),
            ClauseKind::WhenNo {
                events,
                after,
                condition,
            } => {
                let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
                let head = format!("no {} for {}", names.join(", "), self.src(after.span));
                format!("when {}", self.with_condition(head, condition.as_ref()))
            }
            ClauseKind::WhenScheduled {
                days,
                time,
                condition,
            } => {
                let head = format!("{} {}", schedule_days(days), self.src(time.span));
                format!("when {}", self.with_condition(head, condition.as_ref()))
            }
            ClauseKind::Category(c) => format!("category {}", c.name),
            ClauseKind::Cap {
                count_span, window, ..
            } => format!(
                "cap {} per {}",
                self.src(*count_span),
                self.src(window.span)
            ),
            ClauseKind::Goal {
                event,
                condition,
                within,
            } => {
                let head = self.with_condition(event.name.clone(), condition.as_ref());
                format!("goal {head} within {}", self.src(within.span))
            }
        }
    }

    fn trigger(&self, t: &Trigger) -> String {
        // A quoted event is kept as written (the checker reports it).
        let event = if t.quoted {
            serde_json::to_string(&t.event.name).unwrap_or_default()
        } else {
            t.event.name.clone()
        };
        let mut head = event;
        for e in &t.also {
            head.push_str(", ");
            head.push_str(&e.name);
        }
        self.with_condition(head, t.condition.as_ref())
    }

    /// `HEAD where COND`, the condition broken over lines when it is long.
    fn with_condition(&self, event: String, condition: Option<&Expr>) -> String {
        match condition {
            Some(c) => {
                let one = format!("{event} where {}", self.expr(c));
                if one.len() + 2 * self.indent + 8 <= WIDTH {
                    one
                } else {
                    let lines = self.broken(c);
                    let continuation = format!("\n{}  ", self.pad());
                    format!("{event} where {}", lines.join(&continuation))
                }
            }
            None => event,
        }
    }

    fn steps(&mut self, steps: &[Step], keep_blank: bool) {
        for (i, s) in steps.iter().enumerate() {
            self.step(s, keep_blank && i > 0);
        }
    }

    fn step(&mut self, s: &Step, keep_blank: bool) {
        match &s.kind {
            StepKind::Wait(d) => {
                self.item(&format!("wait {}", self.src(d.span)), s.span, keep_blank)
            }
            StepKind::WaitUntil(t) => self.item(
                &format!("wait until {}", self.src(t.span)),
                s.span,
                keep_blank,
            ),
            StepKind::WaitUntilExpr(e) => {
                self.item(&format!("wait until {}", self.expr(e)), s.span, keep_blank)
            }
            StepKind::Send {
                template,
                channels,
                best,
            } => {
                let via: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
                let best = if *best { "best of " } else { "" };
                let mut line = format!("send {} via {best}{}", template.name, via.join(", "));
                if line.len() + 2 * self.indent > WIDTH {
                    // One channel per line, in order of preference.
                    let separator = format!(",\n{}    ", self.pad());
                    line = format!("send {} via {best}{}", template.name, via.join(&separator));
                }
                self.item(&line, s.span, keep_blank);
            }
            StepKind::WaitFor {
                timeout,
                event,
                condition,
                then,
                otherwise,
            } => {
                let head = self.with_condition(event.name.clone(), condition.as_ref());
                let head = format!("wait up to {} for {head}", self.src(timeout.span));
                self.open(&head, s.span, keep_blank);
                self.steps(then, true);
                match otherwise {
                    Some(b) => self.else_block(s, b),
                    None => self.close(s.span),
                }
            }
            StepKind::Stop => self.item("stop", s.span, keep_blank),
            StepKind::If {
                condition,
                then,
                otherwise,
            } => {
                let head = self.if_head(condition);
                self.open(&head, s.span, keep_blank);
                self.steps(then, true);
                self.else_chain(s, otherwise.as_ref());
            }
            StepKind::Split { arms } => {
                self.open("split", s.span, keep_blank);
                for arm in arms {
                    self.arm(arm);
                }
                self.close(s.span);
            }
        }
    }

    fn if_head(&self, condition: &Expr) -> String {
        let one = format!("if {}", self.expr(condition));
        if one.len() + 2 + 2 * self.indent <= WIDTH {
            one
        } else {
            let continuation = format!("\n{}  ", self.pad());
            format!("if {}", self.broken(condition).join(&continuation))
        }
    }

    /// Closes an `if` block and prints its `else` / `else if` branches.
    fn else_chain(&mut self, if_step: &Step, otherwise: Option<&Else>) {
        match otherwise {
            None => self.close(if_step.span),
            Some(Else::Block(b)) => self.else_block(if_step, b),
            Some(other) => {
                // `} else if … {` on one line; the `}` of the then-block is not
                // a span end of its own, so comments before it are printed first.
                let else_start = self.else_keyword(if_step);
                self.leading(else_start);
                self.indent = self.indent.saturating_sub(1);
                match other {
                    Else::Block(_) => {}
                    Else::If(nested) => {
                        let StepKind::If {
                            condition,
                            then,
                            otherwise,
                        } = &nested.kind
                        else {
                            return;
                        };
                        let brace = self.brace_after(nested.span.start as usize);
                        let head = self.if_head(condition);
                        self.out
                            .push_str(&format!("{}}} else {head} {{", self.pad()));
                        self.last_end = brace + 1;
                        self.trailing(brace + 1);
                        self.out.push('\n');
                        self.indent += 1;
                        self.steps(then, true);
                        self.else_chain(nested, otherwise.as_ref());
                    }
                }
            }
        }
    }

    /// Where the `else` of an `if` step is: after the then-block's closing brace.
    /// `} else {` and the block, closing `step` (an `if` or a `wait … for`).
    /// The `}` of the first block is not a span end of its own, so comments
    /// before it are printed first.
    fn else_block(&mut self, step: &Step, block: &[Step]) {
        let else_start = self.else_keyword(step);
        self.leading(else_start);
        self.indent = self.indent.saturating_sub(1);
        let brace = self.brace_after(else_start);
        self.out.push_str(&format!("{}}} else {{", self.pad()));
        self.last_end = brace + 1;
        self.trailing(brace + 1);
        self.out.push('\n');
        self.indent += 1;
        self.steps(block, true);
        self.close(step.span);
    }

    fn else_keyword(&self, step: &Step) -> usize {
        let after = match &step.kind {
            StepKind::If {
                then, condition, ..
            } => then
                .last()
                .map_or(condition.span.end as usize, |s| s.span.end as usize),
            StepKind::WaitFor {
                then,
                condition,
                event,
                ..
            } => match then.last() {
                Some(last) => last.span.end as usize,
                None => {
                    let head_end = condition.as_ref().map_or(event.span.end, |c| c.span.end);
                    self.brace_after(head_end as usize) + 1
                }
            },
            _ => return step.span.start as usize,
        };
        let bytes = self.text.as_bytes();
        let mut i = after;
        // Skip to the `}` closing the then-block, then to `else`.
        let mut depth = 0i32;
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'{' => depth += 1,
                b'}' if depth == 0 => return i,
                b'}' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        after
    }

    fn arm(&mut self, arm: &SplitArm) {
        let head = format!("{} {}", self.src(arm.percent_span), arm.name.name);
        match &arm.body {
            None => self.item(&head, arm.span, true),
            Some(body) => {
                let simple = match body.as_slice() {
                    [only] => !matches!(only.kind, StepKind::If { .. } | StepKind::Split { .. }),
                    _ => false,
                };
                if simple && !self.has_comment_in(arm.span) {
                    let mut inner = Printer {
                        text: self.text,
                        comments: &[],
                        next_comment: 0,
                        out: String::new(),
                        indent: 0,
                        last_end: 0,
                    };
                    inner.steps(body, false);
                    let line = format!("{head} {{ {} }}", inner.out.trim());
                    if line.len() + 2 * self.indent <= WIDTH {
                        self.item(&line, arm.span, true);
                        return;
                    }
                }
                self.open(&head, arm.span, true);
                self.steps(body, true);
                self.close(arm.span);
            }
        }
    }

    // ------------------------------------------------------------ expressions

    fn string(&self, s: &StrLit) -> String {
        let mut out = String::from("\"");
        for part in &s.parts {
            match part {
                StrPart::Text(_, span) => out.push_str(self.src(*span)),
                StrPart::Interp(e) => {
                    out.push_str("{{");
                    out.push_str(&self.expr(e));
                    out.push_str("}}");
                }
            }
        }
        out.push('"');
        out
    }

    fn expr(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(_)
            | ExprKind::Duration(_)
            | ExprKind::TimeOfDay(_)
            | ExprKind::Timestamp { .. }
            | ExprKind::Error => self.src(e.span).to_string(),
            ExprKind::Str(s) => self.string(s),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::None => "none".into(),
            ExprKind::List(items) => {
                let items: Vec<String> = items.iter().map(|i| self.expr(i)).collect();
                format!("[{}]", items.join(", "))
            }
            ExprKind::Path(p) => path_text(p),
            ExprKind::Call(c) => {
                let previous = if c.previous.is_some() {
                    "previous "
                } else {
                    ""
                };
                let mut parts: Vec<String> = vec![
                    c.args
                        .iter()
                        .map(|a| self.expr(a))
                        .collect::<Vec<_>>()
                        .join(", "),
                ];
                if let Some(f) = &c.filter {
                    parts.push(format!("where {}", self.expr(f)));
                }
                if let Some(w) = &c.within {
                    parts.push(format!("within {}", self.src(w.span)));
                }
                parts.retain(|p| !p.is_empty());
                format!("{}({previous}{})", c.function.name, parts.join(" "))
            }
            ExprKind::Unary(UnaryOp::Not, x) => format!("not {}", self.expr(x)),
            ExprKind::Unary(UnaryOp::Neg, x) => format!("-{}", self.expr(x)),
            ExprKind::Binary(op, a, b) => {
                format!("{} {} {}", self.expr(a), op.symbol(), self.expr(b))
            }
            ExprKind::Paren(x) => format!("({})", self.expr(x)),
        }
    }

    /// A condition as lines, broken before each `and` / `or` of its top level.
    fn broken(&self, e: &Expr) -> Vec<String> {
        let op = match &e.kind {
            ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), ..) => *op,
            _ => return vec![self.expr(e)],
        };
        let mut operands = Vec::new();
        flatten(e, op, &mut operands);
        operands
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if i == 0 {
                    self.expr(x)
                } else {
                    format!("{} {}", op.symbol(), self.expr(x))
                }
            })
            .collect()
    }
}

/// The operands of a left-leaning chain of one operator.
fn flatten<'e>(e: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary(o, a, b) if *o == op => {
            flatten(a, op, out);
            out.push(b);
        }
        _ => out.push(e),
    }
}

fn event_head(p: &Printer<'_>, e: &EventDecl) -> String {
    match &e.external {
        Some(s) => format!("event {} from {}", e.name.name, p.string(s)),
        None => format!("event {}", e.name.name),
    }
}

fn path_text(p: &Path) -> String {
    p.segments
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// ` on email, sms`, ` on category promotions`, or nothing.
fn cap_scope(scope: &CapScope) -> String {
    match scope {
        CapScope::All => String::new(),
        CapScope::Channels(channels) => {
            let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
            format!(" on {}", names.join(", "))
        }
        CapScope::Category(c) => format!(" on category {}", c.name),
    }
}
