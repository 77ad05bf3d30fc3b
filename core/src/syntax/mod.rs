//! Syntax: policy text to AST.
//!
//! Promises: [`parse`] never fails and never panics, whatever the input; it returns
//! a [`Module`] and every syntax diagnostic. A broken declaration is reported and
//! left out, and parsing goes on with the next one; a broken journey is re-parsed
//! clause by clause and step by step, so one typo yields one error and the rest of
//! the journey is kept. Spans are byte offsets into the file's text.

pub mod ast;
mod build;
pub mod dump;
mod errors;
mod expr;
mod grammar;
pub mod keywords;
pub(crate) mod lexical;
mod scan;

use crate::diagnostic::{Code, Diagnostic, Label};
use crate::source::{FileId, Span};
use ast::{BrokenDecl, CommentKind, Decl, DeclKind, JourneyDecl, Module};
use build::Builder;
use grammar::NudgeParser;
use pest::Parser;
use scan::{Chunk, LexError, Scan, TokenKind};

pub(crate) use grammar::Rule;

/// The result of parsing one file.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub module: Module,
    pub diagnostics: Vec<Diagnostic>,
}

/// The most pest calls one declaration may take; a guard against pathological
/// input, far above what any real declaration needs.
const CALL_LIMIT: usize = 5_000_000;

/// Parses one file. Never fails: problems are returned as diagnostics.
pub fn parse(file: FileId, text: &str) -> Parsed {
    pest::set_call_limit(std::num::NonZeroUsize::new(CALL_LIMIT));
    pest::set_error_detail(true);
    let scan = scan::scan(text);
    let mut builder = Builder::new(file, text);
    for error in &scan.errors {
        builder.diagnostics.push(lex_diagnostic(file, text, error));
    }
    let mut decls = Vec::new();
    let mut broken = Vec::new();
    for chunk in &scan.chunks {
        let decl = if chunk.has_lex_error {
            None
        } else {
            parse_chunk(&mut builder, &scan, chunk)
        };
        match decl {
            Some(decl) => decls.push(decl),
            None => broken.extend(broken_decl(text, &scan, chunk)),
        }
    }
    let module = Module {
        decls: attach_docs(text, &scan, decls),
        comments: scan.comments,
        broken,
    };
    let mut diagnostics = builder.diagnostics;
    crate::diagnostic::sort(&mut diagnostics);
    Parsed {
        module,
        diagnostics,
    }
}

fn lex_diagnostic(file: FileId, text: &str, error: &LexError) -> Diagnostic {
    match *error {
        LexError::UnterminatedString(span) => Diagnostic::new(
            Code::UnterminatedString,
            "this string is not closed",
            Label::new(
                file,
                span,
                "string starts here and runs to the end of the line",
            ),
        )
        .with_help(if text[span.range()].contains("{{") {
            "close the string with `\"` on the same line; check that every `{{` has its `}}`"
        } else {
            "close the string with `\"` on the same line; write a line break as `\\n`"
        }),
        LexError::TooDeep(span) => Diagnostic::new(
            Code::TooDeep,
            format!("brackets are nested more than {} deep", scan::MAX_DEPTH),
            Label::new(file, span, "too deep from here"),
        )
        .with_help("split the expression into segments"),
    }
}

fn parse_chunk(builder: &mut Builder<'_>, scan: &Scan, chunk: &Chunk) -> Option<Decl> {
    let text = &builder.text[chunk.span.range()];
    builder.start_piece(chunk.span.start as usize);
    match NudgeParser::parse(Rule::decl_entry, text) {
        Ok(mut pairs) => {
            let pair = pairs.next()?;
            let span = builder.span(&pair);
            let kind = builder.decl(pair);
            Some(Decl {
                kind,
                span,
                doc: None,
            })
        }
        Err(error) => {
            let first_word = scan
                .tokens
                .get(chunk.tokens.start)
                .map(|t| &builder.text[t.span.range()]);
            if first_word == Some("journey")
                && let Some(decl) = recover_journey(builder, scan, chunk, &error)
            {
                return Some(decl);
            }
            let diagnostic = errors::convert(
                builder.file,
                builder.text,
                chunk.span,
                &error,
                "the next declaration",
            );
            builder.diagnostics.push(diagnostic);
            None
        }
    }
}

/// Re-parses a journey that failed as a whole, one clause or step at a time.
///
/// Items start at a clause or step keyword directly inside the journey's braces
/// (these words never occur inside an expression, except as members after a dot).
/// Returns `None` when this finds nothing wrong with the items
/// (the error is then elsewhere, e.g. a missing `}`, and the caller reports it).
fn recover_journey(
    builder: &mut Builder<'_>,
    scan: &Scan,
    chunk: &Chunk,
    whole_error: &pest::error::Error<Rule>,
) -> Option<Decl> {
    let chunk_text = &builder.text[chunk.span.range()];
    let head = NudgeParser::parse(Rule::journey_head, chunk_text).ok()?;
    let mut head_pairs = head.filter(|p| p.as_rule() == Rule::ident);
    let name = builder.ident(head_pairs.next()?);
    let tokens = &scan.tokens[chunk.tokens.clone()];
    // The journey's opening brace is the first `{`; items sit at depth 1.
    let open = tokens
        .iter()
        .position(|t| t.kind == TokenKind::Punct(b'{'))?;
    let close = tokens[open + 1..]
        .iter()
        .position(|t| t.kind == TokenKind::Punct(b'}') && t.depth == 0)
        .map(|i| open + 1 + i);
    let body = &tokens[open + 1..close.unwrap_or(tokens.len())];
    let starts = item_starts(builder.text, body);
    let body_end = match close {
        Some(c) => tokens[c].span.start as usize,
        None => chunk.span.end as usize,
    };
    let mut journey = JourneyDecl {
        name,
        clauses: Vec::new(),
        steps: Vec::new(),
        recovered: true,
    };
    let errors_before = builder.diagnostics.len();
    parse_items(builder, &mut journey, body, &starts, body_end);
    let found_errors = builder.diagnostics.len() > errors_before;
    if !found_errors {
        builder.diagnostics.truncate(errors_before);
        return None;
    }
    if close.is_none() {
        // The items were broken and the journey is not closed either.
        let d = errors::convert(
            builder.file,
            builder.text,
            chunk.span,
            whole_error,
            "the next declaration",
        );
        // The same mistake, seen from the journey: reported once.
        let already = builder.diagnostics[errors_before..]
            .iter()
            .any(|e| e.primary.span == d.primary.span && e.message == d.message);
        if !already {
            builder.diagnostics.push(d);
        }
    }
    Some(Decl {
        span: chunk_span_trimmed(builder.text, chunk.span),
        kind: DeclKind::Journey(journey),
        doc: None,
    })
}

/// Where each clause or step of a journey's body starts (indices into
/// `body`, the tokens inside its braces): a clause or step keyword at depth 1
/// that is not a member (`x.when`) or the `if` of an `else if`; the first
/// token always starts one.
fn item_starts(text: &str, body: &[scan::Token]) -> Vec<usize> {
    let is_item_start = |t: &scan::Token| {
        let before = text[..t.span.start as usize].trim_end();
        t.depth == 1
            && t.kind == TokenKind::Word
            && !before.ends_with('.')
            // `else if` continues the `if` before it.
            && before
                .strip_suffix("else")
                .is_none_or(|rest| rest.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
            && {
                let w = &text[t.span.range()];
                keywords::CLAUSES.contains(&w) || keywords::STEPS.contains(&w)
            }
    };
    let mut starts: Vec<usize> = body
        .iter()
        .enumerate()
        .filter(|(_, t)| is_item_start(t))
        .map(|(i, _)| i)
        .collect();
    if starts.first() != Some(&0) && !body.is_empty() {
        starts.insert(0, 0);
    }
    starts
}

/// Parses each item of a journey's body on its own, into `journey`; an item
/// that does not parse is a diagnostic of its own.
fn parse_items(
    builder: &mut Builder<'_>,
    journey: &mut JourneyDecl,
    body: &[scan::Token],
    starts: &[usize],
    body_end: usize,
) {
    for (n, &start) in starts.iter().enumerate() {
        let from = body[start].span.start as usize;
        let to = starts
            .get(n + 1)
            .map_or(body_end, |&next| body[next].span.start as usize);
        let item_span = Span::new(from, to);
        let item_text = &builder.text[item_span.range()];
        builder.start_piece(from);
        match NudgeParser::parse(Rule::journey_item_entry, item_text) {
            Ok(mut pairs) => {
                if let Some(pair) = pairs.next() {
                    builder.journey_item(journey, pair);
                }
            }
            Err(error) => {
                let end_noun = if n + 1 < starts.len() {
                    "the next clause or step"
                } else {
                    "`}`"
                };
                let d = errors::convert(builder.file, builder.text, item_span, &error, end_noun);
                builder.diagnostics.push(d);
            }
        }
    }
}

/// What a chunk that failed to parse declared, read from its first two tokens.
fn broken_decl(text: &str, scan: &Scan, chunk: &Chunk) -> Option<BrokenDecl> {
    let mut tokens = scan.tokens[chunk.tokens.clone()].iter();
    let keyword = tokens.next().filter(|t| t.kind == TokenKind::Word)?;
    let keyword = &text[keyword.span.range()];
    if !keywords::DECLARATIONS.contains(&keyword) {
        return None;
    }
    let name = tokens
        .next()
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| text[t.span.range()].to_string());
    Some(BrokenDecl {
        keyword: keyword.to_string(),
        name,
    })
}

/// The chunk without trailing whitespace and comments.
fn chunk_span_trimmed(text: &str, span: Span) -> Span {
    let end = errors::last_code_end(text, span);
    Span::new(span.start as usize, end)
}

/// Attaches to each declaration the `///` comments right above it (nothing but
/// whitespace between them).
fn attach_docs(text: &str, scan: &Scan, mut decls: Vec<Decl>) -> Vec<Decl> {
    for decl in &mut decls {
        let mut lines: Vec<&str> = Vec::new();
        let mut cursor = decl.span.start as usize;
        for comment in scan.comments.iter().rev() {
            let end = comment.span.end as usize;
            if end > cursor {
                continue;
            }
            if !text[end..cursor].trim().is_empty() || comment.kind != CommentKind::Doc {
                break;
            }
            let body = &text[comment.span.range()][3..];
            lines.push(body.strip_prefix(' ').unwrap_or(body));
            cursor = comment.span.start as usize;
        }
        if !lines.is_empty() {
            lines.reverse();
            decl.doc = Some(lines.join("\n"));
        }
    }
    decls
}
