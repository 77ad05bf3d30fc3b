//! What each name in a policy set refers to, as the checker resolved it.
//!
//! Every reference the checker resolves to a declaration is recorded here, at
//! the place it resolves it, so that the language server's navigation (go to
//! definition, find references, rename, hover) agrees with `nudge check` by
//! construction: there is no second resolver to drift from the first.
//!
//! Promise: a reference is recorded only when its name resolved to a
//! declaration, whole or with syntax errors (the editor still knows where it
//! was); an unknown name (a diagnostic) has none.

use crate::source::{FileId, Span};

/// What a name refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Symbol {
    /// A declaration: its keyword (`event`, `journey` …) and name.
    Decl(&'static str, String),
    /// A profile attribute.
    Attr(String),
    /// A property of an event: the event's name, then the property's.
    Prop(String, String),
    /// A split arm of a journey: the journey's name, then the arm's.
    Arm(String, String),
}

/// One use of a name, resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub file: FileId,
    pub span: Span,
    pub symbol: Symbol,
}

/// The references recorded while checking (a field of the checker of its
/// own, so that recording one borrows nothing else).
#[derive(Default)]
pub(crate) struct References(pub Vec<Reference>);

impl References {
    /// Records that the name at `span` refers to `symbol`.
    pub fn add(&mut self, file: FileId, span: Span, symbol: Symbol) {
        self.0.push(Reference { file, span, symbol });
    }

    /// Records a use of the declaration `keyword name`.
    pub fn decl(&mut self, file: FileId, span: Span, keyword: &'static str, name: &str) {
        self.add(file, span, Symbol::Decl(keyword, name.to_string()));
    }
}
