//! Renderers: diagnostics to text for people and for machines.
//!
//! Each renderer is a function of the sources and the diagnostics; none decides
//! what is an error. Lines and columns are 1-based, columns in Unicode scalar
//! values; an end position is the one just after the span (as SARIF's).

mod github;
mod human;
mod json;
mod sarif;

pub use github::github;
pub use human::{HumanStyle, human};
pub use json::json;
pub use sarif::{sarif, sarif_failure};

use crate::diagnostic::Label;
use crate::source::{LineCol, Sources};

/// Start and end of a label's span as lines and columns.
pub(crate) fn region(sources: &Sources, label: &Label) -> (LineCol, LineCol) {
    let file = sources.get(label.file);
    let start = file.lines.line_col(&file.text, label.span.start as usize);
    let end = file.lines.line_col(&file.text, label.span.end as usize);
    (start, end)
}
