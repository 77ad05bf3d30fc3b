//! Operator precedence for expressions.
//!
//! The grammar yields an expression as a flat run `prefix* primary (infix prefix*
//! primary)*`; this module folds it into a tree by precedence climbing (LANGUAGE.md
//! §5, loosest first: `or`, `and`, `not`, comparisons, `in`, `??`, `+ -`, `* /`,
//! unary `-`). Binary operators associate to the left, except `??`, which associates
//! to the right so that `a ?? b ?? c` defaults twice. Comparisons do not chain.
//! Recursion is bounded: brackets by the scanner's depth limit, prefix operators by
//! [`MAX_PREFIXES`].

use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::Rule;
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, NEG_PRECEDENCE, NOT_PRECEDENCE, UnaryOp};
use pest::iterators::Pair;

/// The most prefix operators (`not`, `-`) accepted in a row.
pub const MAX_PREFIXES: usize = 32;

/// The most operators one declaration may hold. It bounds the depth of expression
/// trees, which every later pass walks recursively; real policies use dozens.
pub const MAX_OPERATORS: usize = 1000;

/// What the expression parser needs of the builder of the rest of the tree
/// (`build.rs`): spans, diagnostics, the text, the declaration's operator
/// budget, and its operands (literals, paths, calls, parentheses). A trait,
/// so that the parser depends on no builder.
pub(crate) trait Operands {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span;
    fn error(&mut self, code: Code, span: Span, message: String, label: &str) -> &mut Diagnostic;
    fn text(&self) -> &str;
    fn budget(&mut self) -> &mut Budget;
    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr;
}

/// Operators built so far in the current declaration (see [`MAX_OPERATORS`]).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub operators: usize,
    pub reported: bool,
}

enum Item<'i> {
    Prefix(UnaryOp, Span),
    Operand(Pair<'i, Rule>),
    Infix(BinaryOp, Span),
}

pub(crate) fn build<B: Operands>(builder: &mut B, pair: Pair<'_, Rule>) -> Expr {
    let span = builder.span(&pair);
    let operators = pair
        .clone()
        .into_inner()
        .filter(|p| {
            !matches!(
                p.as_rule(),
                Rule::number
                    | Rule::duration
                    | Rule::string
                    | Rule::path
                    | Rule::call
                    | Rule::paren
                    | Rule::list
                    | Rule::timestamp
                    | Rule::kw_true
                    | Rule::kw_false
                    | Rule::kw_none
            )
        })
        .count();
    let budget = builder.budget();
    budget.operators += operators;
    if budget.operators > MAX_OPERATORS {
        if !budget.reported {
            budget.reported = true;
            builder
                .error(
                    Code::TooDeep,
                    span,
                    format!("this declaration has more than {MAX_OPERATORS} operators"),
                    "expression too long",
                )
                .help = Some("split the condition into segments".into());
        }
        return Expr {
            kind: ExprKind::Error,
            span,
        };
    }
    let items: Vec<Item<'_>> = pair
        .into_inner()
        .map(|p| {
            let span = builder.span(&p);
            match p.as_rule() {
                Rule::op_not => Item::Prefix(UnaryOp::Not, span),
                Rule::op_neg => Item::Prefix(UnaryOp::Neg, span),
                Rule::op_or => Item::Infix(BinaryOp::Or, span),
                Rule::op_and => Item::Infix(BinaryOp::And, span),
                Rule::op_eq => Item::Infix(BinaryOp::Eq, span),
                Rule::op_ne => Item::Infix(BinaryOp::Ne, span),
                Rule::op_lt => Item::Infix(BinaryOp::Lt, span),
                Rule::op_le => Item::Infix(BinaryOp::Le, span),
                Rule::op_gt => Item::Infix(BinaryOp::Gt, span),
                Rule::op_ge => Item::Infix(BinaryOp::Ge, span),
                Rule::op_in => Item::Infix(BinaryOp::In, span),
                Rule::op_coalesce => Item::Infix(BinaryOp::Coalesce, span),
                Rule::op_add => Item::Infix(BinaryOp::Add, span),
                Rule::op_sub => Item::Infix(BinaryOp::Sub, span),
                Rule::op_mul => Item::Infix(BinaryOp::Mul, span),
                Rule::op_div => Item::Infix(BinaryOp::Div, span),
                _ => Item::Operand(p),
            }
        })
        .collect();
    let mut climber = Climber {
        builder,
        items: items.into_iter().peekable(),
        prefixes: 0,
    };
    climber.expr(0)
}

struct Climber<'b, 'i, B> {
    builder: &'b mut B,
    items: std::iter::Peekable<std::vec::IntoIter<Item<'i>>>,
    /// Prefix operators currently open, to bound recursion.
    prefixes: usize,
}

impl<B: Operands> Climber<'_, '_, B> {
    /// Parses operators binding tighter than `min`.
    fn expr(&mut self, min: u8) -> Expr {
        let mut lhs = self.unary();
        while let Some(Item::Infix(op, op_span)) = self.items.peek() {
            let (op, op_span) = (*op, *op_span);
            let prec = op.precedence();
            if prec <= min {
                break;
            }
            self.items.next();
            // Right associativity for `??`: the right side may hold another `??`.
            let rhs = self.expr(if op == BinaryOp::Coalesce {
                prec - 1
            } else {
                prec
            });
            lhs = self.combine(op, op_span, lhs, rhs);
        }
        lhs
    }

    fn unary(&mut self) -> Expr {
        match self.items.next() {
            Some(Item::Prefix(op, span)) => {
                self.prefixes += 1;
                if self.prefixes > MAX_PREFIXES {
                    // Skip the rest of the run: its operand is reported as too deep.
                    let mut end = span;
                    for item in self.items.by_ref() {
                        if let Item::Operand(p) = &item {
                            end = self.builder.span(p);
                            break;
                        }
                    }
                    let whole = span.to(end);
                    self.builder.error(
                        Code::TooDeep,
                        whole,
                        format!("more than {MAX_PREFIXES} prefix operators in a row"),
                        "too many prefix operators",
                    );
                    self.prefixes -= 1;
                    return Expr {
                        kind: ExprKind::Error,
                        span: whole,
                    };
                }
                let prec = match op {
                    UnaryOp::Not => NOT_PRECEDENCE,
                    UnaryOp::Neg => NEG_PRECEDENCE,
                };
                let operand = self.expr(prec);
                self.prefixes -= 1;
                let span = span.to(operand.span);
                Expr {
                    kind: ExprKind::Unary(op, Box::new(operand)),
                    span,
                }
            }
            Some(Item::Operand(pair)) => self.builder.primary(pair),
            // The grammar always puts an operand after an operator.
            Some(Item::Infix(_, span)) => Expr {
                kind: ExprKind::Error,
                span,
            },
            None => Expr {
                kind: ExprKind::Error,
                span: Span::default(),
            },
        }
    }

    fn combine(&mut self, op: BinaryOp, op_span: Span, lhs: Expr, rhs: Expr) -> Expr {
        let span = lhs.span.to(rhs.span);
        if let ExprKind::Binary(inner, a, b) = &lhs.kind
            && op.is_comparison()
            && inner.is_comparison()
        {
            let (a, b) = (self.source(a.span), self.source(b.span));
            let c = self.source(rhs.span);
            self.builder
                .error(
                    Code::ChainedComparison,
                    op_span,
                    "comparisons cannot be chained".into(),
                    "second comparison",
                )
                .help = Some(format!(
                "compare twice and join with `and`: `{a} {} {b} and {b} {} {c}`",
                inner.symbol(),
                op.symbol()
            ));
            return Expr {
                kind: ExprKind::Error,
                span,
            };
        }
        Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            span,
        }
    }

    fn source(&self, span: Span) -> &str {
        self.builder.text().get(span.range()).unwrap_or("…")
    }
}
