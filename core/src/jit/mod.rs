//! The JIT: every condition of a program (trigger and exit conditions, `if`
//! steps, aggregate filters, (1.1) `goal` and `wait up to … for` conditions,
//! and the segments they use) compiled to native code with Cranelift.
//!
//! Promises: the compiled code computes exactly what [`crate::interp`] computes
//! (tests run both and compare); it reads values straight from the runtime's slot
//! arrays at fixed offsets ([`Value`] is `repr(C, u8)`), compares numbers, times,
//! durations and booleans natively, and calls back into Rust only through the
//! `extern "C"` helpers below (string and list comparisons, `in`, scaling a
//! duration by a number, and library calls: aggregates, string functions, local
//! time); helpers never unwind (panics are caught). The code lives in one
//! `JITModule` per compiled program, freed when the [`Jit`] is dropped. `unsafe`
//! is confined to this module, each block with its `SAFETY` argument.

mod codegen;

use crate::interp::{self, Env};
use crate::ir::{CompareOp, Expr, Instr, Program, Value};
use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::sync::Arc;

/// What compiled code receives: where the slots are and what helpers need.
#[repr(C)]
pub(crate) struct Ctx {
    pub attrs: *const Value,
    pub attrs_len: u64,
    pub event: *const Value,
    pub event_len: u64,
    pub trigger: *const Value,
    pub trigger_len: u64,
    pub now: i64,
    /// Divisions by zero during this evaluation.
    pub div0: u64,
    /// `&Env` for helpers that evaluate library calls.
    pub env: *const Env<'static>,
    /// `&Arena` where helpers keep the values they return.
    pub arena: *const Arena,
}

pub(crate) type Arena = RefCell<Vec<Box<Value>>>;

type Condition = unsafe extern "C" fn(*mut Ctx) -> i8;

/// A compiled program's conditions.
pub struct Jit {
    /// Keeps the expressions (whose addresses the code embeds) alive.
    program: Arc<Program>,
    /// The compiled conditions with their expressions' addresses, in program
    /// order ([`ConditionId`]s index it).
    functions: Vec<(usize, Condition)>,
    /// Where each condition's function is, by the condition's address.
    index: HashMap<usize, ConditionId>,
    module: Option<cranelift_jit::JITModule>,
    /// The Cranelift IR of each condition, for `nudge compile --emit clif`.
    clif: Vec<String>,
}

/// A compiled condition of one [`Jit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionId(usize);

#[derive(Debug)]
pub struct JitError(pub String);

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot compile the policy set to native code: {}",
            self.0
        )
    }
}

/// Every expression evaluated as a condition, in program order.
pub fn conditions(program: &Program) -> Vec<&Expr> {
    let mut out = Vec::new();
    for agg in &program.aggregates {
        out.extend(agg.filter.as_ref());
    }
    for j in &program.journeys {
        out.extend(j.condition.as_ref());
        out.extend(j.exits.iter().filter_map(|(_, c)| c.as_ref()));
        out.extend(j.goals.iter().filter_map(|g| g.condition.as_ref()));
        for instr in &j.code {
            match instr {
                Instr::JumpUnless(c, _) => out.push(c),
                Instr::WaitFor {
                    condition: Some(c), ..
                } => out.push(c),
                _ => {}
            }
        }
    }
    out
}

impl Jit {
    pub fn compile(program: Arc<Program>) -> Result<Jit, JitError> {
        let (module, compiled, clif) = codegen::compile(&program)?;
        let index = compiled
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (*key, ConditionId(i)))
            .collect();
        Ok(Jit {
            program,
            functions: compiled,
            index,
            module: Some(module),
            clif,
        })
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Whether `e` is one of the compiled conditions.
    pub fn is_compiled(&self, e: &Expr) -> bool {
        self.id(e).is_some()
    }

    /// The compiled function of condition `e` (of this program), to be called
    /// with [`Jit::holds_id`] without looking it up again.
    pub fn id(&self, e: &Expr) -> Option<ConditionId> {
        self.index.get(&(e as *const Expr as usize)).copied()
    }

    /// The Cranelift IR of every condition, in program order.
    pub fn clif(&self) -> &[String] {
        &self.clif
    }

    /// Evaluates a condition of the compiled program. An expression that was not
    /// compiled (never a condition of this program) is evaluated by the
    /// interpreter, which defines the same result.
    pub fn holds(&self, e: &Expr, env: &Env<'_>) -> bool {
        match self.id(e) {
            Some(id) => self.holds_id(id, e, env),
            None => interp::holds(e, env),
        }
    }

    /// Evaluates condition `e`, whose function is `id` (from [`Jit::id`]). An
    /// id that is not `e`'s here (from another `Jit`) is looked up again.
    pub fn holds_id(&self, id: ConditionId, e: &Expr, env: &Env<'_>) -> bool {
        let function = match self.functions.get(id.0) {
            Some(&(key, function)) if key == e as *const Expr as usize => function,
            _ => return self.holds(e, env),
        };
        let arena: Arena = RefCell::new(Vec::new());
        let mut ctx = Ctx {
            attrs: env.attrs.as_ptr(),
            attrs_len: env.attrs.len() as u64,
            event: env.event.as_ptr(),
            event_len: env.event.len() as u64,
            trigger: env.trigger.as_ptr(),
            trigger_len: env.trigger.len() as u64,
            now: env.now,
            div0: 0,
            // The lifetime is erased for the helpers, which use it only during this
            // call, while `env` is borrowed.
            env: (env as *const Env<'_>).cast::<Env<'static>>(),
            arena: &arena,
        };
        // SAFETY: `function` was compiled by `codegen` for this program with the
        // signature `extern "C" fn(*mut Ctx) -> i8`; the module that owns its code
        // lives as long as `self`. The code reads slots only below the lengths in
        // `ctx`, embeds pointers into `self.program` (kept alive by `self`), and
        // calls only the helpers below, which do not unwind.
        let result = unsafe { function(&mut ctx) };
        if ctx.div0 > 0 {
            env.divisions_by_zero
                .set(env.divisions_by_zero.get() + ctx.div0);
        }
        result != 0
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        self.functions.clear();
        if let Some(module) = self.module.take() {
            // SAFETY: the function pointers into this module were just cleared and
            // no evaluation can be running (`holds` borrows `self`).
            unsafe { module.free_memory() };
        }
    }
}

static NONE: Value = Value::None;

/// Keeps `value` in the evaluation's arena and returns a pointer that stays valid
/// until the evaluation ends.
fn keep(ctx: &Ctx, value: Value) -> *const Value {
    // SAFETY: `ctx.arena` points at the arena of the running `Jit::holds` call.
    let arena = unsafe { &*ctx.arena };
    let boxed = Box::new(value);
    let ptr: *const Value = &*boxed;
    arena.borrow_mut().push(boxed);
    ptr
}

/// Evaluates a library call (an aggregate, a string function, local time, a
/// computed list) with the interpreter's definition.
pub(crate) extern "C" fn helper_eval(ctx: *mut Ctx, expr: *const Expr) -> *const Value {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the live context of `Jit::holds`; `expr` points into the
        // program the code was compiled from, kept alive by the `Jit`; `ctx.env`
        // is the `Env` borrowed for this call.
        let (ctx, expr) = unsafe { (&*ctx, &*expr) };
        // SAFETY: as above; the `Env` outlives the call.
        let env = unsafe { &*ctx.env };
        keep(ctx, interp::eval(expr, env))
    }))
    .unwrap_or(&NONE)
}

/// A library call whose result is a number (`count`, `sum`, `len`,
/// `local_hour`), without going through the arena.
pub(crate) extern "C" fn helper_number(ctx: *mut Ctx, expr: *const Expr) -> f64 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: as for `helper_eval`.
        let (ctx, expr) = unsafe { (&*ctx, &*expr) };
        // SAFETY: as for `helper_eval`.
        let env = unsafe { &*ctx.env };
        match interp::eval(expr, env) {
            Value::Number(n) => n,
            _ => 0.0,
        }
    }))
    .unwrap_or(0.0)
}

/// A library call whose result is a bool (`starts_with`, `contains`).
pub(crate) extern "C" fn helper_bool(ctx: *mut Ctx, expr: *const Expr) -> i8 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: as for `helper_eval`.
        let (ctx, expr) = unsafe { (&*ctx, &*expr) };
        // SAFETY: as for `helper_eval`.
        let env = unsafe { &*ctx.env };
        i8::from(interp::holds(expr, env))
    }))
    .unwrap_or(0)
}

/// `a OP b` on values of any type, as the interpreter compares them.
pub(crate) extern "C" fn helper_compare(op: u8, a: *const Value, b: *const Value) -> i8 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `a` and `b` point at slot values, program constants or arena
        // values, all alive for the evaluation.
        let (a, b) = unsafe { (&*a, &*b) };
        let op = match op {
            0 => CompareOp::Eq,
            1 => CompareOp::Ne,
            2 => CompareOp::Lt,
            3 => CompareOp::Le,
            4 => CompareOp::Gt,
            _ => CompareOp::Ge,
        };
        i8::from(interp::compare(op, a, b))
    }))
    .unwrap_or(0)
}

/// `x in list` for a value `x`.
pub(crate) extern "C" fn helper_in(x: *const Value, list: *const Value) -> i8 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: as for `helper_compare`.
        let (x, list) = unsafe { (&*x, &*list) };
        match list {
            Value::List(items) => i8::from(items.iter().any(|i| interp::equal(i, x))),
            _ => 0,
        }
    }))
    .unwrap_or(0)
}

/// `x in list` for a number `x`.
pub(crate) extern "C" fn helper_in_number(x: f64, list: *const Value) -> i8 {
    helper_in(&Value::Number(x), list)
}

/// A duration scaled by a number, rounded as the interpreter rounds.
pub(crate) extern "C" fn helper_scale(d: i64, n: f64) -> i64 {
    interp::scale(d, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_layout_is_what_the_code_reads() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        let v = Value::Number(2.5);
        let p = &v as *const Value as *const u8;
        // SAFETY: reading the bytes of a live value of known size.
        let (tag, payload) = unsafe { (*p, *(p.add(8) as *const f64)) };
        assert_eq!((tag, payload), (2, 2.5));
        let t = Value::Time(-7);
        let p = &t as *const Value as *const u8;
        // SAFETY: as above.
        let (tag, payload) = unsafe { (*p, *(p.add(8) as *const i64)) };
        assert_eq!((tag, payload), (4, -7));
        let b = Value::Bool(true);
        let p = &b as *const Value as *const u8;
        // SAFETY: as above.
        let (tag, payload) = unsafe { (*p, *p.add(8)) };
        assert_eq!((tag, payload), (1, 1));
        let n = Value::None;
        // SAFETY: as above.
        assert_eq!(unsafe { *(&n as *const Value as *const u8) }, 0);
    }
}
