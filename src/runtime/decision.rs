//! Decisions: what the runtime emits (LANGUAGE.md §8).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Nanoseconds since the epoch.
    pub at: i64,
    pub profile: String,
    pub journey: String,
    pub kind: DecisionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DecisionKind {
    Entered,
    Send {
        template: String,
        channel: String,
        message_id: String,
        /// Rendered fields of the channel's block, in declared order.
        content: Vec<(String, String)>,
    },
    Deferred {
        template: String,
        until: i64,
    },
    Suppressed {
        template: String,
        /// Channel → reason, in `via` order.
        reasons: Vec<(String, Reason)>,
    },
    Holdout {
        arm: String,
    },
    Exited {
        event: String,
    },
    Completed,
}

impl DecisionKind {
    pub fn name(&self) -> &'static str {
        match self {
            DecisionKind::Entered => "entered",
            DecisionKind::Send { .. } => "send",
            DecisionKind::Deferred { .. } => "deferred",
            DecisionKind::Suppressed { .. } => "suppressed",
            DecisionKind::Holdout { .. } => "holdout",
            DecisionKind::Exited { .. } => "exited",
            DecisionKind::Completed => "completed",
        }
    }
}

/// Why a channel was not available (LANGUAGE.md §7.4), in rule order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    NoContent,
    Unreachable,
    NoConsent,
    Cap,
    Quiet,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoContent => "no_content",
            Reason::Unreachable => "unreachable",
            Reason::NoConsent => "no_consent",
            Reason::Cap => "cap",
            Reason::Quiet => "quiet",
        }
    }
}
