//! A lexical pre-pass over a whole file.
//!
//! pest stops at the first error, so the parser never gives it a whole file. This
//! scan, which cannot fail, finds what pest needs to be given pieces:
//! - the *chunks*: one per top-level declaration. A declaration starts at a
//!   declaration keyword outside every bracket, or at one in the first column of a
//!   line (so that a missing `}` costs one declaration, not the rest of the file);
//! - every comment, for doc comments and the formatter;
//! - lexical errors pest would report badly: unterminated strings and nesting
//!   deeper than [`MAX_DEPTH`] (which also bounds every recursive pass after it).

use crate::source::Span;
use crate::syntax::ast::{Comment, CommentKind};
use crate::syntax::keywords;

/// The deepest nesting of brackets, braces and interpolations accepted.
pub const MAX_DEPTH: u32 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A name or keyword.
    Word,
    /// A string literal, interpolations included.
    Str,
    /// Digits and what sticks to them (`30m`, `09:00`, `45%`).
    Number,
    /// One punctuation character.
    Punct(u8),
}

#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
    /// Bracket depth before this token, counted from the start of its chunk.
    pub depth: u32,
}

#[derive(Clone, Debug)]
pub enum LexError {
    UnterminatedString(Span),
    TooDeep(Span),
}

/// A piece of the file holding one declaration (or junk between declarations).
#[derive(Clone, Debug)]
pub struct Chunk {
    /// From the first token of the declaration to the start of the next chunk.
    pub span: Span,
    /// Indices into [`Scan::tokens`].
    pub tokens: std::ops::Range<usize>,
    /// The chunk contains a lexical error; it is reported, not parsed.
    pub has_lex_error: bool,
}

#[derive(Debug, Default)]
pub struct Scan {
    pub tokens: Vec<Token>,
    pub comments: Vec<Comment>,
    pub chunks: Vec<Chunk>,
    pub errors: Vec<LexError>,
}

pub fn scan(text: &str) -> Scan {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        line_first: true,
        out: Scan::default(),
        chunk_start: None,
        chunk_has_error: false,
        chunk_deep_reported: false,
    };
    scanner.run();
    scanner.out
}

struct Scanner<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    depth: u32,
    line_first: bool,
    out: Scan,
    /// Index of the first token of the chunk being collected.
    chunk_start: Option<usize>,
    chunk_has_error: bool,
    chunk_deep_reported: bool,
}

impl Scanner<'_> {
    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let b = self.bytes[self.pos];
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line_first = true;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.peek(1) == Some(b'/') => self.comment(),
                b'"' => {
                    let start = self.pos;
                    let end = self.string(start);
                    self.push(TokenKind::Str, start, end);
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    let start = self.pos;
                    let end = self.take_while(start, |c| c.is_ascii_alphanumeric() || c == b'_');
                    self.word(start, end);
                }
                b if b.is_ascii_digit() => {
                    let start = self.pos;
                    let end = self.take_while(start, |c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'%')
                    });
                    self.push(TokenKind::Number, start, end);
                }
                b'{' | b'(' | b'[' => {
                    let start = self.pos;
                    self.push(TokenKind::Punct(b), start, start + 1);
                    self.open(start);
                }
                b'}' | b')' | b']' => {
                    let start = self.pos;
                    self.depth = self.depth.saturating_sub(1);
                    self.push(TokenKind::Punct(b), start, start + 1);
                }
                _ => {
                    // One character, which may be several bytes.
                    let start = self.pos;
                    let len = self.text[start..].chars().next().map_or(1, char::len_utf8);
                    let kind = if b.is_ascii() {
                        TokenKind::Punct(b)
                    } else {
                        TokenKind::Punct(b'?')
                    };
                    self.push(kind, start, start + len);
                }
            }
        }
        self.finish_chunk(self.bytes.len());
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn take_while(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        let mut end = from;
        while end < self.bytes.len() && pred(self.bytes[end]) {
            end += 1;
        }
        end
    }

    fn comment(&mut self) {
        let start = self.pos;
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let rest = &self.bytes[start..end];
        let kind = if rest.starts_with(b"///") && !rest.starts_with(b"////") {
            CommentKind::Doc
        } else {
            CommentKind::Line
        };
        // A trailing `\r` belongs to the line break, not to the comment.
        let trimmed = if end > start && self.bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        self.out.comments.push(Comment {
            kind,
            span: Span::new(start, trimmed),
        });
        self.pos = end;
    }

    fn open(&mut self, at: usize) {
        self.depth += 1;
        if self.depth > MAX_DEPTH && !self.chunk_deep_reported {
            self.chunk_deep_reported = true;
            self.chunk_has_error = true;
            self.out
                .errors
                .push(LexError::TooDeep(Span::new(at, at + 1)));
        }
    }

    /// Scans a string starting at the quote `start`; returns the offset after it.
    /// An unterminated string is reported and ends at the end of its line.
    fn string(&mut self, start: usize) -> usize {
        let mut i = start + 1;
        let mut interpolation_depth = 0u32;
        // Strings nested in interpolations: `"Hi {{ x ?? "there" }}"`.
        let mut nested_quote = false;
        while i < self.bytes.len() {
            match self.bytes[i] {
                b'\n' => break,
                b'\\' => i += 2,
                b'"' if interpolation_depth == 0 => return i + 1,
                b'"' => {
                    nested_quote = !nested_quote;
                    i += 1;
                }
                b'{' if !nested_quote && self.bytes.get(i + 1) == Some(&b'{') => {
                    interpolation_depth += 1;
                    self.open(i);
                    i += 2;
                }
                b'}' if !nested_quote
                    && interpolation_depth > 0
                    && self.bytes.get(i + 1) == Some(&b'}') =>
                {
                    interpolation_depth -= 1;
                    self.depth = self.depth.saturating_sub(1);
                    i += 2;
                }
                b'(' | b'[' if interpolation_depth > 0 && !nested_quote => {
                    self.open(i);
                    i += 1;
                }
                b')' | b']' if interpolation_depth > 0 && !nested_quote => {
                    self.depth = self.depth.saturating_sub(1);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        let end = i.min(self.bytes.len());
        // The brackets of an unfinished interpolation do not outlive the line.
        self.depth = self.depth.saturating_sub(interpolation_depth);
        self.chunk_has_error = true;
        let end_trimmed = if end > start && self.bytes.get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        self.out
            .errors
            .push(LexError::UnterminatedString(Span::new(start, end_trimmed)));
        self.pos = end;
        end
    }

    fn word(&mut self, start: usize, end: usize) {
        let text = &self.text[start..end];
        let at_column_0 = start == 0 || self.bytes[start - 1] == b'\n';
        // `event: string` names a field (1.1: fields may be named by keywords).
        let after = self.take_while(end, |c| c == b' ' || c == b'\t');
        // (1.1) `test` is not reserved (an event may be named `test`): it starts
        // a declaration only where nothing else could go on, after a closing
        // brace or at the start of a line.
        let contextual = text == "test"
            && !(at_column_0 && self.line_first)
            && !self
                .out
                .tokens
                .last()
                .is_none_or(|t| t.kind == TokenKind::Punct(b'}'));
        let starts_declaration = keywords::DECLARATIONS.contains(&text)
            && !contextual
            && self.bytes.get(end) != Some(&b'.')
            && self.bytes.get(after) != Some(&b':')
            && (self.depth == 0 || (at_column_0 && self.line_first));
        if starts_declaration {
            self.finish_chunk(start);
            self.depth = 0;
        }
        self.push(TokenKind::Word, start, end);
    }

    fn push(&mut self, kind: TokenKind, start: usize, end: usize) {
        if self.chunk_start.is_none() {
            self.chunk_start = Some(self.out.tokens.len());
        }
        self.out.tokens.push(Token {
            kind,
            span: Span::new(start, end),
            depth: self.depth,
        });
        self.line_first = false;
        self.pos = end;
    }

    fn finish_chunk(&mut self, end: usize) {
        if let Some(first) = self.chunk_start.take() {
            let start = self.out.tokens[first].span.start as usize;
            self.out.chunks.push(Chunk {
                span: Span::new(start, end),
                tokens: first..self.out.tokens.len(),
                has_lex_error: self.chunk_has_error,
            });
        }
        self.chunk_has_error = false;
        self.chunk_deep_reported = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_texts(text: &str) -> Vec<&str> {
        scan(text)
            .chunks
            .iter()
            .map(|c| text[c.span.range()].trim_end())
            .collect()
    }

    #[test]
    fn splits_at_declarations_outside_brackets() {
        let text = "consent a opt_in\nchannel c { consent a }\nsegment s = event.x > 1\n";
        assert_eq!(
            chunk_texts(text),
            [
                "consent a opt_in",
                "channel c { consent a }",
                "segment s = event.x > 1"
            ]
        );
    }

    #[test]
    fn a_missing_brace_costs_one_declaration() {
        let text = "journey j {\n  wait 1h\njourney k { stop }\n";
        assert_eq!(
            chunk_texts(text),
            ["journey j {\n  wait 1h", "journey k { stop }"]
        );
    }

    #[test]
    fn strings_with_nested_interpolated_strings_are_one_token() {
        let text = r#"template t { email { body: "Hi {{ profile.n ?? "there" }}" } }"#;
        let s = scan(text);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.chunks.len(), 1);
        assert_eq!(
            s.tokens.iter().filter(|t| t.kind == TokenKind::Str).count(),
            1
        );
    }

    #[test]
    fn reports_unterminated_strings_up_to_the_end_of_the_line() {
        let text = "journey j {\n  owner \"growth\n  stop\n}\n";
        let s = scan(text);
        match s.errors.as_slice() {
            [LexError::UnterminatedString(span)] => assert_eq!(&text[span.range()], "\"growth"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.chunks[0].has_lex_error);
    }

    #[test]
    fn doc_comments_are_told_apart() {
        let s = scan("/// doc\n// line\n//// line too\nconsent a opt_in");
        let kinds: Vec<_> = s.comments.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [CommentKind::Doc, CommentKind::Line, CommentKind::Line]
        );
    }

    #[test]
    fn deep_nesting_is_reported_once() {
        let text = format!("segment s = {}1{}", "(".repeat(200), ")".repeat(200));
        let s = scan(&text);
        assert_eq!(s.errors.len(), 1);
        assert!(matches!(s.errors[0], LexError::TooDeep(_)));
    }
}
