//! IR expressions to Cranelift IR.

use crate::ir::{ArithOp, CompareOp, Expr, ExprKind, Program, Type, Value};
use crate::jit::{
    Condition, JitError, helper_bool, helper_compare, helper_eval, helper_in, helper_in_number,
    helper_number, helper_scale,
};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, types,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{ArenaMemoryProvider, JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};

type V = cranelift_codegen::ir::Value;

fn err(e: impl std::fmt::Display) -> JitError {
    JitError(e.to_string())
}

/// Offsets of `Ctx` fields (all 8 bytes wide, `repr(C)`).
const ATTRS: i32 = 0;
const EVENT: i32 = 16;
const TRIGGER: i32 = 32;
const NOW: i32 = 48;
const DIV0: i32 = 56;
/// `size_of::<Value>()`, and where its payload starts.
const VALUE_SIZE: i64 = 24;
const PAYLOAD: i32 = 8;

/// How a value is held in registers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Repr {
    F64,
    I64,
    Bool,
    /// A pointer to a `Value`.
    Handle,
}

fn repr(t: Type) -> Repr {
    match t {
        Type::Number => Repr::F64,
        Type::Time | Type::Duration | Type::TimeOfDay => Repr::I64,
        Type::Bool => Repr::Bool,
        _ => Repr::Handle,
    }
}

fn clif_type(r: Repr) -> types::Type {
    match r {
        Repr::F64 => types::F64,
        Repr::I64 | Repr::Handle => types::I64,
        Repr::Bool => types::I8,
    }
}

/// A value during code generation: whether it is present (an `i8`), and the value.
#[derive(Clone, Copy)]
struct Jv {
    present: V,
    value: V,
    repr: Repr,
}

struct Helpers {
    eval: FuncRef,
    number: FuncRef,
    boolean: FuncRef,
    compare: FuncRef,
    in_value: FuncRef,
    in_number: FuncRef,
    scale: FuncRef,
}

struct Imports {
    eval: FuncId,
    number: FuncId,
    boolean: FuncId,
    compare: FuncId,
    in_value: FuncId,
    in_number: FuncId,
    scale: FuncId,
}

/// A finished module, its functions with their conditions' addresses (in
/// program order), and their CLIF text.
pub(super) type Compiled = (JITModule, Vec<(usize, Condition)>, Vec<String>);

pub(super) fn compile(program: &Program) -> Result<Compiled, JitError> {
    let mut module = new_module()?;
    let imports = declare_imports(&mut module)?;
    let ptr = module.target_config().pointer_type();
    let conditions = super::conditions(program);
    let mut ids: Vec<(usize, FuncId)> = Vec::new();
    // A condition shared by several places (a segment's) is compiled once.
    let mut defined = std::collections::HashSet::new();
    let mut clif = Vec::new();
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    for (n, cond) in conditions.iter().enumerate() {
        let key = *cond as *const Expr as usize;
        if !defined.insert(key) {
            continue;
        }
        ctx.func.signature = signature(&module, &[ptr], types::I8);
        let id = module
            .declare_function(
                &format!("condition{n}"),
                Linkage::Local,
                &ctx.func.signature,
            )
            .map_err(err)?;
        build_condition(
            &mut module,
            FunctionBuilder::new(&mut ctx.func, &mut fctx),
            &imports,
            program,
            cond,
        )?;
        clif.push(ctx.func.display().to_string());
        module.define_function(id, &mut ctx).map_err(err)?;
        module.clear_context(&mut ctx);
        ids.push((key, id));
    }
    module.finalize_definitions().map_err(err)?;
    let mut functions = Vec::with_capacity(ids.len());
    for (key, id) in ids {
        let code = module.get_finalized_function(id);
        // SAFETY: `code` was defined above with the signature
        // `extern "C" fn(*mut Ctx) -> i8` (the platform's default call convention,
        // which is C's) and finalized.
        let f: Condition = unsafe { std::mem::transmute::<*const u8, Condition>(code) };
        functions.push((key, f));
    }
    Ok((module, functions, clif))
}

/// A module for the host, with the helpers' symbols and one code arena.
fn new_module() -> Result<JITModule, JitError> {
    let mut flags = settings::builder();
    flags.set("use_colocated_libcalls", "false").map_err(err)?;
    flags.set("is_pic", "false").map_err(err)?;
    flags.set("opt_level", "speed").map_err(err)?;
    let isa = cranelift_native::builder()
        .map_err(err)?
        .finish(settings::Flags::new(flags))
        .map_err(err)?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    builder.symbol("nudge_eval", helper_eval as *const u8);
    builder.symbol("nudge_number", helper_number as *const u8);
    builder.symbol("nudge_bool", helper_bool as *const u8);
    builder.symbol("nudge_compare", helper_compare as *const u8);
    builder.symbol("nudge_in", helper_in as *const u8);
    builder.symbol("nudge_in_number", helper_in_number as *const u8);
    builder.symbol("nudge_scale", helper_scale as *const u8);
    // One arena for all code: calls between pieces stay within ±2 GiB.
    builder.memory_provider(Box::new(
        ArenaMemoryProvider::new_with_size(64 << 20).map_err(err)?,
    ));
    Ok(JITModule::new(builder))
}

fn signature(module: &JITModule, params: &[types::Type], ret: types::Type) -> Signature {
    let mut s: Signature = module.make_signature();
    s.params.extend(params.iter().map(|t| AbiParam::new(*t)));
    s.returns.push(AbiParam::new(ret));
    s
}

/// The helpers compiled code calls back into, declared once per module.
fn declare_imports(module: &mut JITModule) -> Result<Imports, JitError> {
    let ptr = module.target_config().pointer_type();
    let mut import = |name: &str, params: &[types::Type], ret: types::Type| {
        let sig = signature(module, params, ret);
        module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(err)
    };
    Ok(Imports {
        number: import("nudge_number", &[ptr, ptr], types::F64)?,
        boolean: import("nudge_bool", &[ptr, ptr], types::I8)?,
        eval: import("nudge_eval", &[ptr, ptr], ptr)?,
        compare: import("nudge_compare", &[types::I8, ptr, ptr], types::I8)?,
        in_value: import("nudge_in", &[ptr, ptr], types::I8)?,
        in_number: import("nudge_in_number", &[types::F64, ptr], types::I8)?,
        scale: import("nudge_scale", &[types::I64, types::F64], types::I64)?,
    })
}

/// The body of one condition's function: its truth, from its context.
fn build_condition(
    module: &mut JITModule,
    mut b: FunctionBuilder<'_>,
    imports: &Imports,
    program: &Program,
    cond: &Expr,
) -> Result<(), JitError> {
    let helpers = Helpers {
        eval: module.declare_func_in_func(imports.eval, b.func),
        number: module.declare_func_in_func(imports.number, b.func),
        boolean: module.declare_func_in_func(imports.boolean, b.func),
        compare: module.declare_func_in_func(imports.compare, b.func),
        in_value: module.declare_func_in_func(imports.in_value, b.func),
        in_number: module.declare_func_in_func(imports.in_number, b.func),
        scale: module.declare_func_in_func(imports.scale, b.func),
    };
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let ctx_ptr = b.block_params(entry)[0];
    let mut g = Gen {
        b,
        program,
        ctx: ctx_ptr,
        helpers,
        depth: 0,
    };
    let v = g.expr(cond)?;
    let holds = g.truth(v);
    g.b.ins().return_(&[holds]);
    g.b.finalize(module.target_config());
    Ok(())
}

/// The most segments inlined into one another (the checker rules out cycles;
/// this bounds code size).
const MAX_INLINE_DEPTH: usize = 32;

struct Gen<'a, 'p> {
    b: FunctionBuilder<'a>,
    program: &'p Program,
    ctx: V,
    helpers: Helpers,
    depth: usize,
}

impl Gen<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    /// A present boolean.
    fn known_bool(&mut self, value: V) -> Jv {
        let present = self.one();
        Jv {
            present,
            value,
            repr: Repr::Bool,
        }
    }

    fn one(&mut self) -> V {
        self.b.ins().iconst(types::I8, 1)
    }

    /// A condition's truth: `true` only when present and true.
    fn truth(&mut self, v: Jv) -> V {
        match v.repr {
            Repr::Bool => self.b.ins().band(v.present, v.value),
            Repr::Handle => {
                // A `Value::Bool(true)` behind a pointer (from a helper).
                let tag = self.b.ins().load(types::I8, Self::flags(), v.value, 0);
                let payload = self
                    .b
                    .ins()
                    .load(types::I8, Self::flags(), v.value, PAYLOAD);
                let is_bool = self.b.ins().icmp_imm_s(IntCC::Equal, tag, 1);
                self.b.ins().band(is_bool, payload)
            }
            _ => self.b.ins().iconst(types::I8, 0),
        }
    }

    /// A pointer to a `Value` holding `v` (handles are already pointers).
    fn handle(&mut self, v: Jv) -> Result<V, JitError> {
        if v.repr == Repr::Handle {
            return Ok(v.value);
        }
        Err(JitError(format!(
            "internal: a {:?} value where a handle is needed",
            v.repr
        )))
    }

    /// Converts a handle to the scalar representation of `t` (for helper results
    /// of scalar type).
    fn read_handle(&mut self, ptr: V, t: Type) -> Jv {
        let tag = self.b.ins().load(types::I8, Self::flags(), ptr, 0);
        let present = self.b.ins().icmp_imm_s(IntCC::NotEqual, tag, 0);
        let r = repr(t);
        let value = match r {
            Repr::Handle => ptr,
            _ => self.b.ins().load(clif_type(r), Self::flags(), ptr, PAYLOAD),
        };
        Jv {
            present,
            value,
            repr: r,
        }
    }

    fn slot(&mut self, base_offset: i32, index: usize, t: Type) -> Jv {
        let base = self
            .b
            .ins()
            .load(types::I64, Self::flags(), self.ctx, base_offset);
        let len = self
            .b
            .ins()
            .load(types::I64, Self::flags(), self.ctx, base_offset + 8);
        let idx = self.b.ins().iconst(types::I64, index as i64);
        let in_bounds = self.b.ins().icmp(IntCC::UnsignedLessThan, idx, len);
        let offset = self.b.ins().iconst(types::I64, index as i64 * VALUE_SIZE);
        let at = self.b.ins().iadd(base, offset);
        let none = self
            .b
            .ins()
            .iconst(types::I64, &super::NONE as *const Value as i64);
        // A slot past the end reads as `none` (never for a checked program).
        let ptr = self.b.ins().select(in_bounds, at, none);
        self.read_handle(ptr, t)
    }

    fn call(&mut self, f: FuncRef, args: &[V]) -> V {
        let inst = self.b.ins().call(f, args);
        self.b.inst_results(inst)[0]
    }

    fn constant(&mut self, v: &Value) -> Jv {
        let present = self.one();
        match v {
            Value::Number(n) => Jv {
                present,
                value: self.b.ins().f64const(*n),
                repr: Repr::F64,
            },
            Value::Time(t) | Value::Duration(t) => Jv {
                present,
                value: self.b.ins().iconst(types::I64, *t),
                repr: Repr::I64,
            },
            Value::Bool(b) => Jv {
                present,
                value: self.b.ins().iconst(types::I8, i64::from(*b)),
                repr: Repr::Bool,
            },
            Value::None => {
                let absent = self.b.ins().iconst(types::I8, 0);
                let ptr = self.b.ins().iconst(types::I64, v as *const Value as i64);
                Jv {
                    present: absent,
                    value: ptr,
                    repr: Repr::Handle,
                }
            }
            // Strings and lists: a pointer to the constant in the program.
            Value::Str(_) | Value::List(_) => Jv {
                present,
                value: self.b.ins().iconst(types::I64, v as *const Value as i64),
                repr: Repr::Handle,
            },
        }
    }

    /// Evaluates `e` through the interpreter helper (library calls).
    fn via_helper(&mut self, e: &Expr) -> Jv {
        let expr = self.b.ins().iconst(types::I64, e as *const Expr as i64);
        // Numbers and bools come back in registers; other values as pointers into
        // the evaluation's arena.
        if matches!(e.kind, ExprKind::Aggregate(_) | ExprKind::Call(..)) && e.ty == Type::Number {
            let value = self.call(self.helpers.number, &[self.ctx, expr]);
            let present = self.one();
            return Jv {
                present,
                value,
                repr: Repr::F64,
            };
        }
        if matches!(e.kind, ExprKind::Call(..)) && e.ty == Type::Bool {
            let value = self.call(self.helpers.boolean, &[self.ctx, expr]);
            return self.known_bool(value);
        }
        let ptr = self.call(self.helpers.eval, &[self.ctx, expr]);
        self.read_handle(ptr, e.ty)
    }

    /// The code of one expression. Long by design: one arm per IR expression
    /// kind, each naming the helper that emits it, as `interp::eval` does.
    fn expr(&mut self, e: &Expr) -> Result<Jv, JitError> {
        Ok(match &e.kind {
            ExprKind::Const(v) => self.constant(v),
            ExprKind::Attr(i) => self.slot(ATTRS, *i, e.ty),
            ExprKind::EventProp(i) => self.slot(EVENT, *i, e.ty),
            ExprKind::TriggerProp(i) => self.slot(TRIGGER, *i, e.ty),
            ExprKind::Now => {
                let present = self.one();
                let value = self.b.ins().load(types::I64, Self::flags(), self.ctx, NOW);
                Jv {
                    present,
                    value,
                    repr: Repr::I64,
                }
            }
            ExprKind::Aggregate(_) | ExprKind::Call(..) | ExprKind::List(_) => self.via_helper(e),
            ExprKind::Segment(i) => {
                let Some(body) = self.program.segments.get(*i) else {
                    return Err(JitError(format!("internal: no segment {i}")));
                };
                if self.depth >= MAX_INLINE_DEPTH {
                    return Ok(self.via_helper(e));
                }
                self.depth += 1;
                let v = self.expr(body)?;
                self.depth -= 1;
                let value = self.truth(v);
                self.known_bool(value)
            }
            ExprKind::Not(x) => {
                let v = self.expr(x)?;
                let t = self.truth(v);
                let value = self.b.ins().bxor_imm_u(t, 1);
                self.known_bool(value)
            }
            ExprKind::Neg(x) => {
                let v = self.expr(x)?;
                let value = match v.repr {
                    Repr::F64 => self.b.ins().fneg(v.value),
                    Repr::I64 => {
                        // Saturating, as `i64::saturating_neg`.
                        let min = self.b.ins().iconst(types::I64, i64::MIN);
                        let max = self.b.ins().iconst(types::I64, i64::MAX);
                        let is_min = self.b.ins().icmp(IntCC::Equal, v.value, min);
                        let neg = self.b.ins().ineg(v.value);
                        self.b.ins().select(is_min, max, neg)
                    }
                    _ => return Err(JitError("internal: negation of a non-number".into())),
                };
                Jv { value, ..v }
            }
            ExprKind::And(a, c) | ExprKind::Or(a, c) => {
                let is_and = matches!(e.kind, ExprKind::And(..));
                let left = self.expr(a)?;
                let l = self.truth(left);
                let rhs_block = self.b.create_block();
                let done = self.b.create_block();
                let result = self.b.append_block_param(done, types::I8);
                if is_and {
                    self.b
                        .ins()
                        .brif(l, rhs_block, &[], done, &[BlockArg::Value(l)]);
                } else {
                    self.b
                        .ins()
                        .brif(l, done, &[BlockArg::Value(l)], rhs_block, &[]);
                }
                self.b.switch_to_block(rhs_block);
                self.b.seal_block(rhs_block);
                let right = self.expr(c)?;
                let r = self.truth(right);
                self.b.ins().jump(done, &[BlockArg::Value(r)]);
                self.b.switch_to_block(done);
                self.b.seal_block(done);
                self.known_bool(result)
            }
            ExprKind::IsNone(x) => {
                let v = self.expr(x)?;
                let value = self.b.ins().bxor_imm_u(v.present, 1);
                self.known_bool(value)
            }
            ExprKind::Coalesce(a, c) => {
                let left = self.expr(a)?;
                let r = repr(e.ty);
                let target = if left.repr == r { r } else { Repr::Handle };
                let rhs_block = self.b.create_block();
                let done = self.b.create_block();
                let present = self.b.append_block_param(done, types::I8);
                let value = self.b.append_block_param(done, clif_type(target));
                let left_value = self.coerce(left, target)?;
                self.b.ins().brif(
                    left.present,
                    done,
                    &[BlockArg::Value(left.present), BlockArg::Value(left_value)],
                    rhs_block,
                    &[],
                );
                self.b.switch_to_block(rhs_block);
                self.b.seal_block(rhs_block);
                let right = self.expr(c)?;
                let right_value = self.coerce(right, target)?;
                self.b.ins().jump(
                    done,
                    &[BlockArg::Value(right.present), BlockArg::Value(right_value)],
                );
                self.b.switch_to_block(done);
                self.b.seal_block(done);
                Jv {
                    present,
                    value,
                    repr: target,
                }
            }
            ExprKind::Compare(op, a, c) => {
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                let value = self.compare(*op, x, y)?;
                self.known_bool(value)
            }
            ExprKind::Arith(op, a, c) => {
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                self.arith(*op, x, y)?
            }
            ExprKind::In(x, list) => {
                let (v, l) = (self.expr(x)?, self.expr(list)?);
                let l = self.handle(l)?;
                let value = match v.repr {
                    Repr::F64 => self.call(self.helpers.in_number, &[v.value, l]),
                    Repr::Handle => self.call(self.helpers.in_value, &[v.value, l]),
                    _ => self.b.ins().iconst(types::I8, 0),
                };
                self.known_bool(value)
            }
        })
    }

    /// `v` in representation `target`: scalars stay scalars; mixed cases (which
    /// lowering does not produce) are rejected.
    fn coerce(&mut self, v: Jv, target: Repr) -> Result<V, JitError> {
        if v.repr == target {
            return Ok(v.value);
        }
        Err(JitError(format!(
            "internal: a {:?} value where {target:?} is needed",
            v.repr
        )))
    }

    fn compare(&mut self, op: CompareOp, x: Jv, y: Jv) -> Result<V, JitError> {
        Ok(match (x.repr, y.repr) {
            (Repr::F64, Repr::F64) => {
                let cc = match op {
                    CompareOp::Eq => FloatCC::Equal,
                    CompareOp::Ne => FloatCC::NotEqual,
                    CompareOp::Lt => FloatCC::LessThan,
                    CompareOp::Le => FloatCC::LessThanOrEqual,
                    CompareOp::Gt => FloatCC::GreaterThan,
                    CompareOp::Ge => FloatCC::GreaterThanOrEqual,
                };
                self.b.ins().fcmp(cc, x.value, y.value)
            }
            (Repr::I64, Repr::I64) | (Repr::Bool, Repr::Bool) => {
                let ordered = x.repr == Repr::I64;
                let cc = match op {
                    CompareOp::Eq => IntCC::Equal,
                    CompareOp::Ne => IntCC::NotEqual,
                    // Booleans have no order (the checker rules it out).
                    _ if !ordered => return Ok(self.b.ins().iconst(types::I8, 0)),
                    CompareOp::Lt => IntCC::SignedLessThan,
                    CompareOp::Le => IntCC::SignedLessThanOrEqual,
                    CompareOp::Gt => IntCC::SignedGreaterThan,
                    CompareOp::Ge => IntCC::SignedGreaterThanOrEqual,
                };
                self.b.ins().icmp(cc, x.value, y.value)
            }
            (Repr::Handle, Repr::Handle) => {
                let code = self.b.ins().iconst(types::I8, op as i64);
                self.call(self.helpers.compare, &[code, x.value, y.value])
            }
            _ => {
                return Err(JitError(format!(
                    "internal: comparing {:?} with {:?}",
                    x.repr, y.repr
                )));
            }
        })
    }

    fn saturating(&mut self, add: bool, a: V, c: V) -> V {
        let (sum, overflow) = if add {
            self.b.ins().sadd_overflow(a, c)
        } else {
            self.b.ins().ssub_overflow(a, c)
        };
        // On overflow the result saturates toward the sign of the true result:
        // the wrapped sum has the opposite sign.
        let min = self.b.ins().iconst(types::I64, i64::MIN);
        let max = self.b.ins().iconst(types::I64, i64::MAX);
        let wrapped_negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, sum, 0);
        let saturated = self.b.ins().select(wrapped_negative, max, min);
        self.b.ins().select(overflow, saturated, sum)
    }

    fn arith(&mut self, op: ArithOp, x: Jv, y: Jv) -> Result<Jv, JitError> {
        let present = self.one();
        let (value, repr) = match (op, x.repr, y.repr) {
            (ArithOp::Add, Repr::F64, Repr::F64) => {
                (self.b.ins().fadd(x.value, y.value), Repr::F64)
            }
            (ArithOp::Sub, Repr::F64, Repr::F64) => {
                (self.b.ins().fsub(x.value, y.value), Repr::F64)
            }
            (ArithOp::Mul, Repr::F64, Repr::F64) => {
                (self.b.ins().fmul(x.value, y.value), Repr::F64)
            }
            (ArithOp::Div, Repr::F64, Repr::F64) => {
                let zero = self.b.ins().f64const(0.0);
                let is_zero = self.b.ins().fcmp(FloatCC::Equal, y.value, zero);
                self.count_division_by_zero(is_zero);
                let q = self.b.ins().fdiv(x.value, y.value);
                (self.b.ins().select(is_zero, zero, q), Repr::F64)
            }
            (ArithOp::Add, Repr::I64, Repr::I64) => {
                (self.saturating(true, x.value, y.value), Repr::I64)
            }
            (ArithOp::Sub, Repr::I64, Repr::I64) => {
                (self.saturating(false, x.value, y.value), Repr::I64)
            }
            (ArithOp::Mul, Repr::F64, Repr::I64) => (
                self.call(self.helpers.scale, &[y.value, x.value]),
                Repr::I64,
            ),
            (ArithOp::Mul, Repr::I64, Repr::F64) => (
                self.call(self.helpers.scale, &[x.value, y.value]),
                Repr::I64,
            ),
            (ArithOp::Div, Repr::I64, Repr::F64) => {
                let zero = self.b.ins().f64const(0.0);
                let is_zero = self.b.ins().fcmp(FloatCC::Equal, y.value, zero);
                self.count_division_by_zero(is_zero);
                let one = self.b.ins().f64const(1.0);
                let inverse = self.b.ins().fdiv(one, y.value);
                let scaled = self.call(self.helpers.scale, &[x.value, inverse]);
                let zero_i = self.b.ins().iconst(types::I64, 0);
                (self.b.ins().select(is_zero, zero_i, scaled), Repr::I64)
            }
            _ => {
                return Err(JitError(format!(
                    "internal: {op:?} on {:?} and {:?}",
                    x.repr, y.repr
                )));
            }
        };
        Ok(Jv {
            present,
            value,
            repr,
        })
    }

    /// Adds one to `ctx.div0` when `is_zero`.
    fn count_division_by_zero(&mut self, is_zero: V) {
        let count = self.b.ins().load(types::I64, Self::flags(), self.ctx, DIV0);
        let inc = self.b.ins().uextend(types::I64, is_zero);
        let updated = self.b.ins().iadd(count, inc);
        self.b.ins().store(Self::flags(), updated, self.ctx, DIV0);
    }
}
