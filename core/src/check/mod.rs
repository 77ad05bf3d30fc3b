//! The checker: names, types and policy rules over a whole policy set
//! (LANGUAGE.md §4–§6 and §9).
//!
//! Promises: it never fails and never panics; it reports each root cause once (an
//! unknown name or a declaration with syntax errors silences what follows from it);
//! every diagnostic has a code, a span and, where a fix is known, help. It reads
//! only the ASTs and the source text, and does no IO.

pub mod bounds;
mod consts;
mod env;
mod exprs;
mod refs;
mod rules;
mod test_decls;
pub mod types;

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Sources, Span};
use crate::syntax::ast::Module;
use env::Env;
use std::collections::{BTreeMap, BTreeSet};

pub use exprs::{EventCtx, Place, SENT, Scope, sent_event};
use refs::References;
pub use refs::{Reference, Symbol};
pub use test_decls::{COMMON_FIELDS, KINDS, NOT_ENTERED, REASONS, fields_of};

pub(crate) struct Checker<'a> {
    pub env: Env<'a>,
    pub diags: Vec<Diagnostic>,
    /// Each file's text, by `FileId`, for messages that quote the source.
    pub texts: Vec<&'a str>,
    pub used_segments: BTreeSet<&'a str>,
    /// Segment → the segments its body refers to, for cycle detection.
    pub segment_refs: BTreeMap<&'a str, Vec<(&'a str, FileId, Span)>>,
    /// The segment whose body is being checked.
    pub current_segment: Option<&'a str>,
    /// Declarations suggested by a "did you mean": the user meant to use them, so
    /// they are not reported as unused.
    pub suggested: BTreeSet<String>,
    /// Some declaration had syntax errors: the set is incomplete, so "never used"
    /// lints would be guesses and are skipped.
    pub incomplete: bool,
    /// Every name resolved to a declaration (see [`refs`]).
    pub references: References,
}

/// Checks a parsed policy set; returns every diagnostic beyond syntax, and
/// every reference resolved (sorted, each once).
/// `has_syntax_errors`: some file had syntax errors, so the set is incomplete.
pub fn check(
    sources: &Sources,
    modules: &[(FileId, Module)],
    has_syntax_errors: bool,
) -> (Vec<Diagnostic>, Vec<Reference>) {
    let mut diags = Vec::new();
    let env = Env::collect(modules, &mut diags);
    let mut checker = Checker {
        env,
        diags,
        texts: sources.iter().map(|(_, f)| f.text.as_str()).collect(),
        used_segments: BTreeSet::new(),
        segment_refs: BTreeMap::new(),
        current_segment: None,
        suggested: BTreeSet::new(),
        incomplete: has_syntax_errors,
        references: References::default(),
    };
    checker.run();
    let mut diags = checker.diags;
    let mut references = checker.references.0;
    // A template is checked once per journey that sends it: the same use is
    // recorded once (and, for `trigger.`, once per distinct trigger).
    references.sort();
    references.dedup();
    // A template sent by several journeys is checked once per journey; problems
    // that do not depend on the journey are reported once.
    crate::diagnostic::sort(&mut diags);
    diags.dedup();
    (diags, references)
}
