//! Decisions: what the runtime emits (LANGUAGE.md §8).

use serde::{Deserialize, Serialize};
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Nanoseconds since the epoch.
    pub at: i64,
    pub profile: super::ProfileId,
    pub journey: Rc<str>,
    pub kind: DecisionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DecisionKind {
    Entered,
    Send {
        template: Rc<str>,
        channel: Rc<str>,
        message_id: String,
        /// Rendered fields of the channel's block, in declared order.
        content: Vec<(Rc<str>, String)>,
    },
    Deferred {
        template: Rc<str>,
        until: i64,
    },
    Suppressed {
        template: Rc<str>,
        /// Channel → reason, in `via` order.
        reasons: Vec<(Rc<str>, Reason)>,
    },
    Holdout {
        arm: Rc<str>,
    },
    Exited {
        event: Rc<str>,
    },
    Completed,
}

impl DecisionKind {
    pub const COUNT: usize = 7;
    /// The kinds' names, by [`DecisionKind::index`].
    pub const NAMES: [&'static str; DecisionKind::COUNT] = [
        "entered",
        "send",
        "deferred",
        "suppressed",
        "holdout",
        "exited",
        "completed",
    ];

    pub fn index(&self) -> usize {
        match self {
            DecisionKind::Entered => 0,
            DecisionKind::Send { .. } => 1,
            DecisionKind::Deferred { .. } => 2,
            DecisionKind::Suppressed { .. } => 3,
            DecisionKind::Holdout { .. } => 4,
            DecisionKind::Exited { .. } => 5,
            DecisionKind::Completed => 6,
        }
    }

    pub fn name(&self) -> &'static str {
        DecisionKind::NAMES[self.index()]
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
