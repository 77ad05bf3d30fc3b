//! The bottom layer (rust-analyzer's `stdx`): small, dependency-free helpers
//! that every other layer may use and that use nothing of Nudge's.
//!
//! Architecture invariant: nothing under `stdx` imports another module of the
//! crate; the layering test (`core/tests/layers.rs`) holds it to that.

pub mod hash;
pub mod rfc3339;

/// The decision kinds of LANGUAGE.md §8, by `DecisionKind::index`: the
/// runtime writes them, the checker reads test expectations naming them.
pub const DECISION_KINDS: [&str; 9] = [
    "entered",
    "send",
    "deferred",
    "suppressed",
    "holdout",
    "exited",
    "completed",
    "not_entered",
    "converted",
];
