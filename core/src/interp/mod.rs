//! The reference interpreter of the IR: the executable definition of what an
//! expression means. The JIT must agree with it on every input.
//!
//! Promises: evaluation is total (a well-typed program never fails; an ill-typed
//! value, which the checker rules out, evaluates to `none` or `false` rather than
//! panicking); it is pure apart from counting divisions by zero; and `and`/`or`
//! short-circuit.

use crate::ir::{ArithOp, Builtin, CompareOp, Expr, ExprKind, Program, Value};
use chrono::{Datelike, TimeZone, Timelike};
use std::cell::Cell;
use std::cmp::Ordering;

/// Read access to a profile's aggregates, maintained by the runtime.
pub trait Aggregates {
    /// The value of aggregate `index` at time `now` (nanoseconds).
    fn value(&self, program: &Program, index: usize, now: i64) -> Value;
}

/// Everything an expression may read (only borrows, so copied freely).
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub program: &'a Program,
    pub attrs: &'a [Value],
    /// The event under test (`event.`), empty where there is none.
    pub event: &'a [Value],
    /// The journey's trigger snapshot (`trigger.`), empty where there is none.
    pub trigger: &'a [Value],
    /// Nanoseconds since the epoch.
    pub now: i64,
    pub tz: chrono_tz::Tz,
    pub aggregates: &'a dyn Aggregates,
    /// Divisions by zero met (each yields 0), for the run's warning counter.
    pub divisions_by_zero: &'a Cell<u64>,
}

/// Evaluates a condition: anything but `true` is false.
pub fn holds(e: &Expr, env: &Env<'_>) -> bool {
    matches!(eval(e, env), Value::Bool(true))
}

pub fn eval(e: &Expr, env: &Env<'_>) -> Value {
    match &e.kind {
        ExprKind::Const(v) => v.clone(),
        ExprKind::Attr(i) => slot(env.attrs, *i),
        ExprKind::EventProp(i) => slot(env.event, *i),
        ExprKind::TriggerProp(i) => slot(env.trigger, *i),
        ExprKind::Now => Value::Time(env.now),
        ExprKind::Aggregate(i) => env.aggregates.value(env.program, *i, env.now),
        ExprKind::Segment(i) => match env.program.segments.get(*i) {
            Some(body) => Value::Bool(holds(body, env)),
            None => Value::Bool(false),
        },
        ExprKind::Not(x) => Value::Bool(!holds(x, env)),
        ExprKind::Neg(x) => match eval(x, env) {
            Value::Number(n) => Value::Number(-n),
            Value::Duration(d) => Value::Duration(d.saturating_neg()),
            _ => Value::None,
        },
        ExprKind::And(a, b) => Value::Bool(holds(a, env) && holds(b, env)),
        ExprKind::Or(a, b) => Value::Bool(holds(a, env) || holds(b, env)),
        ExprKind::IsNone(x) => Value::Bool(eval(x, env).is_none()),
        ExprKind::Coalesce(a, b) => match eval(a, env) {
            Value::None => eval(b, env),
            v => v,
        },
        ExprKind::Compare(op, a, b) => Value::Bool(compare(*op, &eval(a, env), &eval(b, env))),
        ExprKind::Arith(op, a, b) => arith(*op, eval(a, env), eval(b, env), env.divisions_by_zero),
        ExprKind::In(x, list) => {
            let x = eval(x, env);
            match eval(list, env) {
                Value::List(items) => Value::Bool(items.iter().any(|i| equal(i, &x))),
                _ => Value::Bool(false),
            }
        }
        ExprKind::List(items) => Value::List(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Vec<_>>()
                .into(),
        ),
        ExprKind::Call(f, args) => call(*f, args, env),
    }
}

fn slot(values: &[Value], i: usize) -> Value {
    values.get(i).cloned().unwrap_or(Value::None)
}

/// Equality of two values of the same type (numbers by IEEE `==`).
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        _ => a == b,
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) | (Value::Duration(x), Value::Duration(y)) => {
            Some(x.cmp(y))
        }
        _ => None,
    }
}

pub(crate) fn compare(op: CompareOp, a: &Value, b: &Value) -> bool {
    match op {
        CompareOp::Eq => equal(a, b),
        CompareOp::Ne => !equal(a, b),
        CompareOp::Lt => order(a, b) == Some(Ordering::Less),
        CompareOp::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => order(a, b) == Some(Ordering::Greater),
        CompareOp::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// `number * duration`, rounded to the nanosecond and saturating.
pub(crate) fn scale(d: i64, n: f64) -> i64 {
    let v = (d as f64 * n).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
}

fn arith(op: ArithOp, a: Value, b: Value, div0: &Cell<u64>) -> Value {
    use Value::{Duration as D, Number as N, Time as T};
    match (op, a, b) {
        (ArithOp::Add, N(x), N(y)) => N(x + y),
        (ArithOp::Sub, N(x), N(y)) => N(x - y),
        (ArithOp::Mul, N(x), N(y)) => N(x * y),
        (ArithOp::Div, N(x), N(y)) => {
            if y == 0.0 {
                div0.set(div0.get() + 1);
                N(0.0)
            } else {
                N(x / y)
            }
        }
        (ArithOp::Add, T(t), D(d)) | (ArithOp::Add, D(d), T(t)) => T(t.saturating_add(d)),
        (ArithOp::Sub, T(t), D(d)) => T(t.saturating_sub(d)),
        (ArithOp::Sub, T(x), T(y)) => D(x.saturating_sub(y)),
        (ArithOp::Add, D(x), D(y)) => D(x.saturating_add(y)),
        (ArithOp::Sub, D(x), D(y)) => D(x.saturating_sub(y)),
        (ArithOp::Mul, N(n), D(d)) | (ArithOp::Mul, D(d), N(n)) => D(scale(d, n)),
        (ArithOp::Div, D(d), N(n)) => {
            if n == 0.0 {
                div0.set(div0.get() + 1);
                D(0)
            } else {
                D(scale(d, 1.0 / n))
            }
        }
        _ => Value::None,
    }
}

fn call(f: Builtin, args: &[Expr], env: &Env<'_>) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::None, |a| eval(a, env));
    match f {
        Builtin::Lower => match arg(0) {
            Value::Str(s) => Value::Str(s.to_lowercase().into()),
            _ => Value::None,
        },
        Builtin::Len => match arg(0) {
            Value::Str(s) => Value::Number(s.chars().count() as f64),
            _ => Value::None,
        },
        Builtin::StartsWith | Builtin::Contains => match (arg(0), arg(1)) {
            (Value::Str(s), Value::Str(p)) => Value::Bool(if f == Builtin::StartsWith {
                s.starts_with(&*p)
            } else {
                s.contains(&*p)
            }),
            _ => Value::Bool(false),
        },
        Builtin::LocalHour | Builtin::Weekday => match arg(0) {
            Value::Time(t) => {
                let local = env.tz.timestamp_nanos(t);
                if f == Builtin::LocalHour {
                    Value::Number(f64::from(local.hour()))
                } else {
                    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                    let day = local.weekday().num_days_from_monday() as usize;
                    Value::Str(DAYS.get(day).copied().unwrap_or("mon").into())
                }
            }
            _ => Value::None,
        },
        Builtin::LocalTime => match arg(0) {
            Value::Time(t) => {
                let local = env.tz.timestamp_nanos(t);
                let minutes = i64::from(local.hour() * 60 + local.minute());
                Value::Duration(minutes * crate::ir::NANOS_PER_MINUTE)
            }
            _ => Value::None,
        },
    }
}

/// A number as text in a message: whole numbers without a fraction (`2`, not
/// `2.0`), others in the shortest form that reads back exactly (`49.99`).
pub fn format_number(n: f64) -> String {
    let mut out = String::new();
    write_number(n, &mut out);
    out
}

/// [`format_number`], appended to `out`.
fn write_number(n: f64, out: &mut String) {
    let _ = if n.fract() == 0.0 && n.abs() < 1e15 {
        std::fmt::Write::write_fmt(out, format_args!("{}", n as i64))
    } else {
        std::fmt::Write::write_fmt(out, format_args!("{n}"))
    };
}

/// A value interpolated into template text.
pub fn to_text(v: &Value) -> String {
    let mut out = String::new();
    write_text(v, &mut out);
    out
}

/// A value interpolated into template text, appended to `out`.
pub fn write_text(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Number(n) => write_number(*n, out),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::None => {}
        Value::Time(t) => out.push_str(&crate::stdx::rfc3339::rfc3339(*t)),
        Value::Duration(d) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{}s", d / 1_000_000_000));
        }
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_text(item, out);
            }
        }
    }
}
