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
        /// (1.1) The arm of the instance's first split, if it passed one.
        arm: Option<Rc<str>>,
        /// (1.1) With `--explain`: channel → why, for every channel tried.
        why: Option<Box<Why>>,
    },
    Deferred {
        template: Rc<str>,
        until: i64,
        /// (1.1) Channel → reason (the channels only in quiet hours: `quiet`).
        reasons: Vec<(Rc<str>, Reason)>,
        arm: Option<Rc<str>>,
        why: Option<Box<Why>>,
    },
    Suppressed {
        template: Rc<str>,
        /// Channel → reason, in `via` order.
        reasons: Vec<(Rc<str>, Reason)>,
        arm: Option<Rc<str>>,
        why: Option<Box<Why>>,
    },
    /// (1.1, `--explain` only) A trigger matched a profile that could not enter.
    NotEntered {
        reason: NotEntered,
    },
    Holdout {
        arm: Rc<str>,
    },
    Exited {
        event: Rc<str>,
    },
    Completed,
    /// (1.1) A goal event within an instance's goal window (§7.6).
    Converted {
        /// The goal event's declared name.
        event: Rc<str>,
        entered_at: i64,
        arm: Option<Rc<str>>,
    },
}

/// Channel → one plain sentence, in the order the channels were tried.
pub type Why = Vec<(Rc<str>, String)>;

/// Why a matching trigger did not start an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotEntered {
    /// An instance of the journey is running.
    Active,
    /// `reenter after D`: not before the previous entry + D.
    Reenter { until: i64 },
    /// `reenter never`, and the profile entered once.
    ReenterNever,
}

impl NotEntered {
    pub fn as_str(self) -> &'static str {
        match self {
            NotEntered::Active => "active",
            NotEntered::Reenter { .. } => "reenter",
            NotEntered::ReenterNever => "reenter_never",
        }
    }
}

impl DecisionKind {
    pub const COUNT: usize = 9;
    /// The kinds' names, by [`DecisionKind::index`].
    pub const NAMES: [&'static str; DecisionKind::COUNT] = crate::stdx::DECISION_KINDS;

    pub fn index(&self) -> usize {
        match self {
            DecisionKind::Entered => 0,
            DecisionKind::Send { .. } => 1,
            DecisionKind::Deferred { .. } => 2,
            DecisionKind::Suppressed { .. } => 3,
            DecisionKind::Holdout { .. } => 4,
            DecisionKind::Exited { .. } => 5,
            DecisionKind::Completed => 6,
            DecisionKind::NotEntered { .. } => 7,
            DecisionKind::Converted { .. } => 8,
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
