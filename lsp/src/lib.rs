//! The Nudge language server (filled in by the language-server work).
//!
//! Promise kept already: only this crate knows LSP's coordinates. The library
//! speaks byte offsets; editors speak lines and UTF-16 code units. [`positions`]
//! converts between the two at the edge.

pub mod positions;
