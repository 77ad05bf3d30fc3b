//! The analysis of a whole policy set: every file parsed, then the set-wide
//! checks. The CLI's `check` and `run` and the language server
//! all go through [`analyze`], so they report exactly the same diagnostics.

use crate::check::{self, Reference};
use crate::diagnostic::{self, Diagnostic};
use crate::source::{FileId, Sources};
use crate::syntax::{self, ast::Module};

/// A parsed and checked policy set.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// One module per file, in the order of [`Sources`].
    pub modules: Vec<(FileId, Module)>,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Every use of a name the checker resolved to its declaration, sorted by
    /// file and position: what the language server navigates by.
    pub references: Vec<Reference>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

pub fn analyze(sources: &Sources) -> Analysis {
    let mut analysis = Analysis::default();
    for (id, file) in sources.iter() {
        let parsed = syntax::parse(id, &file.text);
        analysis.diagnostics.extend(parsed.diagnostics);
        analysis.modules.push((id, parsed.module));
    }
    let has_syntax_errors = analysis.has_errors();
    let (diagnostics, references) = check::check(sources, &analysis.modules, has_syntax_errors);
    analysis.diagnostics.extend(diagnostics);
    analysis.references = references;
    diagnostic::sort(&mut analysis.diagnostics);
    analysis
}
