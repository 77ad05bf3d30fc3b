//! The edges of the runtime's data: Segment-spec input lines to [`Incoming`]
//! events (with dead-letter reasons), and decisions to output lines. Pure
//! functions of text; the CLI does the reading and writing.
//!
//! [`Incoming`]: crate::runtime::Incoming

pub mod input;
pub mod output;
