//! Constant evaluation, enough to flag constant conditions and constant division
//! by zero (LANGUAGE.md §5, §9). Anything that reads a path, the clock or an
//! aggregate is not constant.

use crate::syntax::ast::{BinaryOp, Expr, ExprKind, UnaryOp};

#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    Number(f64),
    Str(String),
    Bool(bool),
    /// Seconds.
    Duration(f64),
    /// Minutes after midnight.
    TimeOfDay(u16),
    Time(i64, u32),
    None,
    List(Vec<Const>),
}

pub fn eval(e: &Expr) -> Option<Const> {
    Some(match &e.kind {
        ExprKind::Number(n) => Const::Number(*n),
        ExprKind::Str(s) => Const::Str(s.as_plain()?),
        ExprKind::Bool(b) => Const::Bool(*b),
        ExprKind::None => Const::None,
        ExprKind::Duration(d) => Const::Duration(*d as f64),
        ExprKind::TimeOfDay(m) => Const::TimeOfDay(*m),
        ExprKind::Timestamp { seconds, nanos } => Const::Time(*seconds, *nanos),
        ExprKind::List(items) => Const::List(items.iter().map(eval).collect::<Option<_>>()?),
        ExprKind::Paren(x) => eval(x)?,
        ExprKind::Unary(UnaryOp::Not, x) => match eval(x)? {
            Const::Bool(b) => Const::Bool(!b),
            _ => return None,
        },
        ExprKind::Unary(UnaryOp::Neg, x) => match eval(x)? {
            Const::Number(n) => Const::Number(-n),
            Const::Duration(d) => Const::Duration(-d),
            _ => return None,
        },
        ExprKind::Binary(op, a, b) => binary(*op, a, b)?,
        ExprKind::Call(call) => {
            let args: Vec<Const> = call.args.iter().map(eval).collect::<Option<_>>()?;
            match (call.function.name.as_str(), args.as_slice()) {
                ("lower", [Const::Str(s)]) => Const::Str(s.to_lowercase()),
                ("len", [Const::Str(s)]) => Const::Number(s.chars().count() as f64),
                ("starts_with", [Const::Str(s), Const::Str(p)]) => {
                    Const::Bool(s.starts_with(p.as_str()))
                }
                ("contains", [Const::Str(s), Const::Str(p)]) => Const::Bool(s.contains(p.as_str())),
                _ => return None,
            }
        }
        ExprKind::Path(_) | ExprKind::Error => return None,
    })
}

fn binary(op: BinaryOp, a: &Expr, b: &Expr) -> Option<Const> {
    // `and`/`or` are constant when one side decides them, whatever the other reads.
    if matches!(op, BinaryOp::And | BinaryOp::Or) {
        let decisive = op == BinaryOp::Or;
        let (x, y) = (eval(a), eval(b));
        return match (x, y) {
            (Some(Const::Bool(v)), _) | (_, Some(Const::Bool(v))) if v == decisive => {
                Some(Const::Bool(decisive))
            }
            (Some(Const::Bool(_)), Some(Const::Bool(_))) => Some(Const::Bool(!decisive)),
            _ => Option::None,
        };
    }
    let (x, y) = (eval(a)?, eval(b)?);
    use Const::*;
    Some(match (op, x, y) {
        (BinaryOp::Eq, x, y) => Bool(x == y),
        (BinaryOp::Ne, x, y) => Bool(x != y),
        (BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge, x, y) => {
            let ord = match (x, y) {
                (Number(p), Number(q)) | (Duration(p), Duration(q)) => p.partial_cmp(&q)?,
                (Str(p), Str(q)) => p.cmp(&q),
                (TimeOfDay(p), TimeOfDay(q)) => p.cmp(&q),
                (Time(s1, n1), Time(s2, n2)) => (s1, n1).cmp(&(s2, n2)),
                _ => return Option::None,
            };
            Bool(match op {
                BinaryOp::Lt => ord.is_lt(),
                BinaryOp::Le => ord.is_le(),
                BinaryOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        (BinaryOp::In, x, List(items)) => Bool(items.contains(&x)),
        (BinaryOp::Coalesce, None, y) => y,
        (BinaryOp::Coalesce, x, _) => x,
        (BinaryOp::Add, Number(p), Number(q)) => Number(p + q),
        (BinaryOp::Sub, Number(p), Number(q)) => Number(p - q),
        (BinaryOp::Mul, Number(p), Number(q)) => Number(p * q),
        (BinaryOp::Div, Number(p), Number(q)) if q != 0.0 => Number(p / q),
        (BinaryOp::Add, Duration(p), Duration(q)) => Duration(p + q),
        (BinaryOp::Sub, Duration(p), Duration(q)) => Duration(p - q),
        (BinaryOp::Mul, Number(p), Duration(q)) | (BinaryOp::Mul, Duration(q), Number(p)) => {
            Duration(p * q)
        }
        (BinaryOp::Div, Duration(p), Number(q)) if q != 0.0 => Duration(p / q),
        _ => return Option::None,
    })
}

/// Whether `e` is a constant equal to zero (a number or a duration).
pub fn is_zero(e: &Expr) -> bool {
    matches!(eval(e), Some(Const::Number(n)) | Some(Const::Duration(n)) if n == 0.0)
}
