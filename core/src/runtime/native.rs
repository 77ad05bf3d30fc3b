//! Conditions evaluated by native code when the engine has it (`--engine
//! jit`), by the interpreter otherwise: each condition's compiled function is
//! found once per program, by its site, rather than looked up on every
//! evaluation.
//!
//! Promise: `holds` gives the interpreter's answer, whichever evaluates it (the
//! differential tests hold both to it). Without the `jit` feature `Native` has
//! no values, so the interpreter is the only path and nothing here links
//! Cranelift.

use crate::interp::{self, Env};
#[cfg(feature = "jit")]
use crate::ir::{Instr, Program};
#[cfg(feature = "jit")]
use crate::jit::{ConditionId, Jit};
#[cfg(feature = "jit")]
use std::rc::Rc;

/// Evaluates a condition with the JIT when there is one, else the interpreter.
pub(super) fn holds(
    native: Option<&Native>,
    site: Site,
    e: &crate::ir::Expr,
    env: &Env<'_>,
) -> bool {
    match native {
        #[cfg(feature = "jit")]
        Some(native) => match native.id(site) {
            Some(id) => native.jit.holds_id(id, e, env),
            None => native.jit.holds(e, env),
        },
        #[cfg(not(feature = "jit"))]
        Some(native) => match *native {},
        None => {
            let _ = site;
            interp::holds(e, env)
        }
    }
}

/// Where a condition sits in the program.
#[derive(Clone, Copy)]
#[cfg_attr(
    not(feature = "jit"),
    expect(dead_code, reason = "only native code looks a site up")
)]
pub(super) enum Site {
    /// An aggregate's filter.
    Filter(usize),
    /// A journey's trigger condition.
    Trigger(usize),
    /// A journey's `exit on` clause, by position.
    Exit(usize, usize),
    /// A journey's `if` step, by instruction.
    Step(usize, usize),
    /// (1.1) A journey's `goal` clause, by position.
    Goal(usize, usize),
}

/// Native code for a program's conditions, each condition's function found
/// once rather than looked up on every evaluation.
#[cfg(feature = "jit")]
pub(super) struct Native {
    jit: Rc<Jit>,
    filters: Vec<Option<ConditionId>>,
    triggers: Vec<Option<ConditionId>>,
    exits: Vec<Vec<Option<ConditionId>>>,
    steps: Vec<Vec<Option<ConditionId>>>,
    goals: Vec<Vec<Option<ConditionId>>>,
}

#[cfg(feature = "jit")]
impl Native {
    pub(super) fn new(jit: Rc<Jit>, program: &Program) -> Native {
        let id = |e: Option<&crate::ir::Expr>| e.and_then(|e| jit.id(e));
        Native {
            filters: program
                .aggregates
                .iter()
                .map(|a| id(a.filter.as_ref()))
                .collect(),
            triggers: program
                .journeys
                .iter()
                .map(|j| id(j.condition.as_ref()))
                .collect(),
            exits: program
                .journeys
                .iter()
                .map(|j| j.exits.iter().map(|(_, c)| id(c.as_ref())).collect())
                .collect(),
            goals: program
                .journeys
                .iter()
                .map(|j| j.goals.iter().map(|g| id(g.condition.as_ref())).collect())
                .collect(),
            steps: program
                .journeys
                .iter()
                .map(|j| {
                    j.code
                        .iter()
                        .map(|instr| match instr {
                            Instr::JumpUnless(c, _) => id(Some(c)),
                            Instr::WaitFor { condition, .. } => id(condition.as_ref()),
                            _ => None,
                        })
                        .collect()
                })
                .collect(),
            jit,
        }
    }

    pub(super) fn id(&self, site: Site) -> Option<ConditionId> {
        match site {
            Site::Filter(i) => self.filters.get(i).copied().flatten(),
            Site::Trigger(j) => self.triggers.get(j).copied().flatten(),
            Site::Exit(j, k) => self.exits.get(j)?.get(k).copied().flatten(),
            Site::Step(j, pc) => self.steps.get(j)?.get(pc).copied().flatten(),
            Site::Goal(j, g) => self.goals.get(j)?.get(g).copied().flatten(),
        }
    }
}

/// Without the `jit` feature there is no native code: no value of this type
/// exists, and `holds` always interprets.
#[cfg(not(feature = "jit"))]
pub(super) enum Native {}
