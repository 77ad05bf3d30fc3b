//! A compact, span-free outline of an AST, for snapshot tests and debugging.
//!
//! Expressions are printed fully parenthesised in prefix form, so a snapshot shows
//! exactly how precedence was resolved: `a or b and c` is `(or a (and b c))`.

use crate::syntax::ast::*;
use std::fmt::Write;

pub fn module(module: &Module) -> String {
    let mut out = String::new();
    for decl in &module.decls {
        if let Some(doc) = &decl.doc {
            for line in doc.lines() {
                let _ = writeln!(out, "/// {line}");
            }
        }
        decl_kind(&mut out, &decl.kind);
    }
    out
}

/// One declaration's dump. Long by design: one arm per declaration kind, in
/// LANGUAGE.md's order, each the dump format of that kind; the table reads
/// best whole.
fn decl_kind(out: &mut String, kind: &DeclKind) {
    match kind {
        DeclKind::Consent(c) => {
            let mode = match c.mode {
                ConsentMode::OptIn => "opt_in",
                ConsentMode::OptOut => "opt_out",
            };
            let _ = writeln!(
                out,
                "consent {} {mode}{}",
                c.name.name,
                from_text(&c.external)
            );
        }
        DeclKind::Profile(p) => {
            let _ = writeln!(out, "profile");
            for a in &p.attrs {
                let default = a
                    .default
                    .as_ref()
                    .map(|d| format!(" = {}", expr(d)))
                    .unwrap_or_default();
                let sensitive = if a.sensitive.is_some() {
                    " sensitive"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  attr {}: {}{sensitive}{default}{}",
                    a.name.name,
                    a.ty,
                    from_text(&a.source)
                );
            }
        }
        DeclKind::Event(e) => {
            let from = e
                .external
                .as_ref()
                .map(|s| format!(" from {}", string(s)))
                .unwrap_or_default();
            let _ = writeln!(out, "event {}{from}", e.name.name);
            for p in &e.props {
                let _ = writeln!(
                    out,
                    "  prop {}: {}{}",
                    p.name.name,
                    p.ty,
                    from_text(&p.source)
                );
            }
        }
        DeclKind::Channel(c) => {
            let _ = writeln!(out, "channel {}", c.name.name);
            if let Some(a) = &c.address {
                let _ = writeln!(out, "  address {}", path(a));
            }
            if let Some(t) = &c.consent {
                let _ = writeln!(out, "  consent {}", t.name);
            }
            if let Some(q) = &c.quiet {
                let _ = writeln!(out, "  {}", quiet(q));
            }
            if c.private.is_some() {
                let _ = writeln!(out, "  private");
            }
            if !c.engagement.is_empty() {
                let names: Vec<&str> = c.engagement.iter().map(|e| e.name.as_str()).collect();
                let _ = writeln!(out, "  engagement {}", names.join(", "));
            }
        }
        DeclKind::Limits(l) => {
            let _ = writeln!(out, "limits");
            for c in &l.caps {
                let window = window_text(&c.window);
                let on = match &c.scope {
                    CapScope::All => String::new(),
                    CapScope::Channels(list) => {
                        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
                        format!(" on {}", names.join(", "))
                    }
                    CapScope::Category(c) => format!(" on category {}", c.name),
                };
                let _ = writeln!(out, "  cap {} per {window}{on}", c.count);
            }
            for q in &l.quiet {
                let _ = writeln!(out, "  {}", quiet(q));
            }
        }
        DeclKind::Segment(s) => {
            let _ = writeln!(out, "segment {} = {}", s.name.name, expr(&s.expr));
        }
        DeclKind::Template(t) => {
            let _ = writeln!(out, "template {}", t.name.name);
            for b in &t.blocks {
                let _ = writeln!(out, "  {}", b.channel.name);
                for f in &b.fields {
                    let _ = writeln!(out, "    {}: {}", f.name.name, string(&f.value));
                }
            }
        }
        DeclKind::Category(c) => {
            let _ = writeln!(out, "category {}", c.name.name);
        }
        DeclKind::Test(t) => {
            let _ = writeln!(out, "test {}", t.name.name);
            for step in &t.steps {
                match step {
                    TestStep::At { time, input, .. } => {
                        let time = match time {
                            TestTime::At { nanos, .. } => format!("{nanos}ns"),
                            TestTime::After(d) => format!("+{}s", d.seconds),
                            TestTime::Error(_) => "(error)".into(),
                        };
                        let input = match input {
                            None => String::new(),
                            Some(TestInput::Identify {
                                profile, traits, ..
                            }) => format!(" identify {}{}", string(profile), test_object(traits)),
                            Some(TestInput::Event {
                                event,
                                profile,
                                props,
                                ..
                            }) => {
                                format!(" {} {}{}", event.name, string(profile), test_object(props))
                            }
                        };
                        let _ = writeln!(out, "  at {time}{input}");
                    }
                    TestStep::Expect {
                        no, kind, fields, ..
                    } => {
                        let no = if no.is_some() { "no " } else { "" };
                        let _ = writeln!(out, "  expect {no}{}{}", kind.name, test_object(fields));
                    }
                }
            }
        }
        DeclKind::Journey(j) => {
            let recovered = if j.recovered { " (recovered)" } else { "" };
            let _ = writeln!(out, "journey {}{recovered}", j.name.name);
            for c in &j.clauses {
                let _ = writeln!(out, "  {}", clause(&c.kind));
            }
            steps(out, &j.steps, 1);
        }
    }
}

fn test_object(object: &Option<TestObject>) -> String {
    fn fields(o: &TestObject) -> String {
        let inner: Vec<String> = o
            .fields
            .iter()
            .map(|f| match &f.value {
                TestValue::Expr(e) => format!("{}: {}", f.name.name, expr(e)),
                TestValue::Object(o) => format!("{}: {}", f.name.name, fields(o)),
            })
            .collect();
        format!("{{{}}}", inner.join(", "))
    }
    object
        .as_ref()
        .map(|o| format!(" {}", fields(o)))
        .unwrap_or_default()
}

fn clause(kind: &ClauseKind) -> String {
    match kind {
        ClauseKind::Owner(s) => format!("owner {}", string(s)),
        ClauseKind::Priority { value, .. } => format!("priority {value}"),
        ClauseKind::When(t) => format!("when {}", trigger(t)),
        ClauseKind::ExitOn(t) => format!("exit on {}", trigger(t)),
        ClauseKind::ReenterAfter(d) => format!("reenter after {}", duration_text(d.seconds)),
        ClauseKind::ReenterNever => "reenter never".into(),
        ClauseKind::RequireConsent(t) => format!("require consent {}", t.name),
        ClauseKind::Transactional => "transactional".into(),
        ClauseKind::WhenNo {
            events,
            after,
            condition,
        } => {
            let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
            let head = format!(
                "when no {} for {}",
                names.join(", "),
                duration_text(after.seconds)
            );
            match condition {
                Some(c) => format!("{head} where {}", expr(c)),
                None => head,
            }
        }
        ClauseKind::WhenScheduled {
            days,
            time,
            condition,
        } => {
            let head = format!(
                "when {} {}",
                super::ast::schedule_days(days),
                time_of_day_text(time.minutes)
            );
            match condition {
                Some(c) => format!("{head} where {}", expr(c)),
                None => head,
            }
        }
        ClauseKind::Category(c) => format!("category {}", c.name),
        ClauseKind::Cap { count, window, .. } => format!("cap {count} per {}", window_text(window)),
        ClauseKind::Goal {
            event,
            condition,
            within,
        } => match condition {
            Some(c) => format!(
                "goal {} where {} within {}",
                event.name,
                expr(c),
                duration_text(within.seconds)
            ),
            None => format!(
                "goal {} within {}",
                event.name,
                duration_text(within.seconds)
            ),
        },
    }
}

fn window_text(w: &Window) -> String {
    match &w.kind {
        WindowKind::Rolling(d) => duration_text(d.seconds),
        WindowKind::Day => "day".into(),
        WindowKind::Week => "week".into(),
    }
}

fn trigger(t: &Trigger) -> String {
    let names: Vec<&str> = t.events().map(|e| e.name.as_str()).collect();
    let names = names.join(", ");
    match &t.condition {
        Some(c) => format!("{names} where {}", expr(c)),
        None => names,
    }
}

/// A list of steps' dump. Long by design: one arm per step kind (LANGUAGE.md
/// §4), each that kind's dump format.
fn steps(out: &mut String, list: &[Step], depth: usize) {
    let pad = "  ".repeat(depth);
    for s in list {
        match &s.kind {
            StepKind::Wait(d) => {
                let _ = writeln!(out, "{pad}wait {}", duration_text(d.seconds));
            }
            StepKind::WaitUntil(t) => {
                let _ = writeln!(out, "{pad}wait until {}", time_of_day_text(t.minutes));
            }
            StepKind::WaitUntilExpr(e) => {
                let _ = writeln!(out, "{pad}wait until {}", expr(e));
            }
            StepKind::Send {
                template,
                channels,
                best,
            } => {
                let via: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
                let best = if *best { "best of " } else { "" };
                let _ = writeln!(
                    out,
                    "{pad}send {} via {best}{}",
                    template.name,
                    via.join(", ")
                );
            }
            StepKind::WaitFor {
                timeout,
                event,
                condition,
                then,
                otherwise,
            } => {
                let cond = condition
                    .as_ref()
                    .map(|c| format!(" where {}", expr(c)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{pad}wait up to {} for {}{cond}",
                    duration_text(timeout.seconds),
                    event.name
                );
                steps(out, then, depth + 1);
                if let Some(b) = otherwise {
                    let _ = writeln!(out, "{pad}else");
                    steps(out, b, depth + 1);
                }
            }
            StepKind::If {
                condition,
                then,
                otherwise,
            } => {
                let _ = writeln!(out, "{pad}if {}", expr(condition));
                steps(out, then, depth + 1);
                match otherwise {
                    Some(Else::Block(b)) => {
                        let _ = writeln!(out, "{pad}else");
                        steps(out, b, depth + 1);
                    }
                    Some(Else::If(s)) => {
                        let _ = writeln!(out, "{pad}else");
                        steps(out, std::slice::from_ref(s), depth + 1);
                    }
                    None => {}
                }
            }
            StepKind::Split { arms } => {
                let _ = writeln!(out, "{pad}split");
                for a in arms {
                    match &a.body {
                        Some(body) => {
                            let _ = writeln!(out, "{pad}  {} {}", percent(a.percent), a.name.name);
                            steps(out, body, depth + 2);
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "{pad}  {} {} (holdout)",
                                percent(a.percent),
                                a.name.name
                            );
                        }
                    }
                }
            }
            StepKind::Stop => {
                let _ = writeln!(out, "{pad}stop");
            }
        }
    }
}

fn percent(p: Option<u8>) -> String {
    p.map_or("<error>".into(), |p| format!("{p}%"))
}

fn quiet(q: &QuietWindow) -> String {
    format!(
        "quiet {} to {}",
        time_of_day_text(q.from.minutes),
        time_of_day_text(q.to.minutes)
    )
}

fn path(p: &Path) -> String {
    p.segments
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// ` from "…"` for a declaration that reads another input name.
fn from_text(source: &Option<StrLit>) -> String {
    source
        .as_ref()
        .map(|s| format!(" from {}", string(s)))
        .unwrap_or_default()
}

fn string(s: &StrLit) -> String {
    let mut out = String::from("\"");
    for part in &s.parts {
        match part {
            StrPart::Text(t, _) => out.push_str(&t.escape_debug().to_string()),
            StrPart::Interp(e) => {
                let _ = write!(out, "{{{{{}}}}}", expr(e));
            }
        }
    }
    out.push('"');
    out
}

pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number(n) => format!("{n}"),
        ExprKind::Str(s) => string(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::None => "none".into(),
        ExprKind::Duration(d) => duration_text(*d),
        ExprKind::TimeOfDay(m) => format!("{:02}:{:02}", m / 60, m % 60),
        ExprKind::Timestamp { seconds, nanos } => {
            chrono::DateTime::from_timestamp(*seconds, *nanos)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| format!("@{seconds}"))
        }
        ExprKind::List(items) => {
            let items: Vec<String> = items.iter().map(expr).collect();
            format!("[{}]", items.join(", "))
        }
        ExprKind::Path(p) => path(p),
        ExprKind::Call(c) => {
            let mut parts: Vec<String> = c.args.iter().map(expr).collect();
            if c.previous.is_some() {
                parts.insert(0, "previous".into());
            }
            if let Some(f) = &c.filter {
                parts.push(format!("where {}", expr(f)));
            }
            if let Some(w) = &c.within {
                parts.push(format!("within {}", duration_text(w.seconds)));
            }
            format!("({} {})", c.function.name, parts.join(" "))
        }
        ExprKind::Unary(UnaryOp::Not, x) => format!("(not {})", expr(x)),
        ExprKind::Unary(UnaryOp::Neg, x) => format!("(- {})", expr(x)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), expr(a), expr(b)),
        ExprKind::Paren(x) => expr(x),
        ExprKind::Error => "<error>".into(),
    }
}
