//! Elementwise loop kernels: a fused expression over strided input buffers,
//! evaluated over a rectangular iteration space and stored to contiguous
//! outputs, compiled to one Cranelift function.
//!
//! The function has the C signature
//! `fn(inputs: *const *const f32, outputs: *const *mut f32, start: usize, end: usize, lens: *const usize)`
//! and computes the flat (row-major) iteration indices `start..end`, so a
//! runtime can split one kernel across threads by index range. `lens` holds
//! the element count of every input buffer and then every output buffer; it
//! is read only by checked kernels ([`super::Checking::Checked`]) and may be
//! null otherwise.
//!
//! Code shape: adjacent axes that are contiguous for every buffer are merged
//! first (a `[N, M]` elementwise op becomes one loop of `N·M`). The loop nest
//! is then "rows" of the innermost axis. When every input's innermost stride
//! is 0 or 1 the row is processed with f32x4 vectors, unrolled (×4 for cheap
//! bodies), then single vectors, then a scalar tail; inputs broadcast along
//! the row (stride 0) are loaded once per row. Other strides use a scalar
//! loop. Pointers advance by constant byte offsets (Cranelift does not
//! strength-reduce), and input loads are `notrap readonly can_move` so they
//! sink next to their use.
//!
//! Semantics follow the reference interpreter
//! (`ir::interp`, `elementwise.rs`) exactly for every op except the
//! transcendental functions, which use the approximations of
//! [`super::approx`] with the error bounds documented there.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::approx::{self, Emit, Lanes, Mask};
use crate::ir::op::{BinaryOp, CmpOp, UnaryOp};

/// An elementwise kernel over a rectangular iteration space.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopKernel {
    /// The function's symbol name (unique within one [`super::Jit`]).
    pub name: String,
    /// Iteration space, row-major, concrete sizes.
    pub shape: Vec<usize>,
    /// Per input buffer: its element stride along each iteration axis
    /// (0 = broadcast along that axis). Element (i₀, …, iₖ) of input `b` is
    /// at `inputs[b] + Σ iₐ·inputs[b][a]`.
    pub inputs: Vec<Vec<isize>>,
    /// SSA expression list: `Expr` number `i` may only use numbers `< i`.
    pub body: Vec<Expr>,
    /// Body indices stored, each to a contiguous output buffer of `shape`.
    /// An output buffer may be the same memory as an input buffer only when
    /// that input is contiguous with the same layout (in-place update).
    pub outputs: Vec<usize>,
}

/// One step of a kernel body. Every value is an f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expr {
    /// The current element of input buffer `n`.
    Input(usize),
    /// A constant.
    Const(f32),
    /// A unary op of the IR.
    Unary(UnaryOp, usize),
    /// A binary op of the IR (`max`/`min` return NaN if either operand is NaN).
    Binary(BinaryOp, usize, usize),
    /// An IEEE comparison giving 1.0 (true) or 0.0 (false), like the IR's
    /// `compare` followed by a cast of the bool to f32.
    Compare(CmpOp, usize, usize),
    /// `Select(c, a, b)`: `a` where `c` is non-zero (NaN counts as non-zero,
    /// like the IR's f32→bool cast), else `b`.
    Select(usize, usize, usize),
}

impl LoopKernel {
    /// The number of iterations (product of the shape; 1 for a scalar).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Checks the kernel's internal consistency: stride lists match the
    /// rank, the body is in SSA order, every reference is in range and at
    /// least one output exists.
    pub fn validate(&self) -> Result<(), String> {
        let rank = self.shape.len();
        for (b, strides) in self.inputs.iter().enumerate() {
            if strides.len() != rank {
                return Err(format!(
                    "input {b} has {} strides for a rank-{rank} iteration space",
                    strides.len()
                ));
            }
        }
        for (i, e) in self.body.iter().enumerate() {
            let refs: &[usize] = match e {
                Expr::Input(b) => {
                    if *b >= self.inputs.len() {
                        return Err(format!("expr {i} reads input {b} of {}", self.inputs.len()));
                    }
                    &[]
                }
                Expr::Const(_) => &[],
                Expr::Unary(_, a) => &[*a],
                Expr::Binary(_, a, b) | Expr::Compare(_, a, b) => &[*a, *b],
                Expr::Select(c, a, b) => &[*c, *a, *b],
            };
            if let Some(r) = refs.iter().find(|&&r| r >= i) {
                return Err(format!("expr {i} uses expr {r}, which is not defined before it"));
            }
        }
        if self.outputs.is_empty() {
            return Err("kernel has no outputs".into());
        }
        if let Some(o) = self.outputs.iter().find(|&&o| o >= self.body.len()) {
            return Err(format!("output refers to expr {o} of {}", self.body.len()));
        }
        Ok(())
    }

    /// The (lowest, highest) element offset input `b` is read at over the
    /// whole iteration space, or `None` when the space is empty.
    pub fn input_extent(&self, b: usize) -> Option<(isize, isize)> {
        if self.elements() == 0 {
            return None;
        }
        let strides = self.inputs.get(b)?;
        let (mut lo, mut hi) = (0isize, 0isize);
        for (&n, &s) in self.shape.iter().zip(strides) {
            let far = s.saturating_mul(n as isize - 1);
            if far < 0 {
                lo = lo.saturating_add(far);
            } else {
                hi = hi.saturating_add(far);
            }
        }
        Some((lo, hi))
    }

    /// Whether the body evaluates any approximated transcendental function.
    fn transcendentals(&self) -> usize {
        self.body
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Expr::Unary(
                        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Erf,
                        _
                    )
                )
            })
            .count()
    }
}

/// An iteration axis after merging: its size and each input's stride.
struct Axis {
    size: usize,
    strides: Vec<isize>,
}

/// Drops size-1 axes and merges neighbours that are contiguous for every
/// input (outputs are always contiguous). Always returns at least one axis.
fn merge_axes(k: &LoopKernel) -> Vec<Axis> {
    let mut axes: Vec<Axis> = Vec::new();
    for (a, &size) in k.shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let strides: Vec<isize> = k.inputs.iter().map(|s| s[a]).collect();
        if let Some(last) = axes.last_mut() {
            let contiguous =
                last.strides.iter().zip(&strides).all(|(&outer, &inner)| {
                    inner.checked_mul(size as isize).is_some_and(|step| step == outer)
                });
            if contiguous {
                last.size *= size;
                last.strides = strides;
                continue;
            }
        }
        axes.push(Axis { size, strides });
    }
    if axes.is_empty() {
        axes.push(Axis { size: 1, strides: vec![0; k.inputs.len()] });
    }
    axes
}

/// Bounds-checking state of a checked kernel.
struct Checks {
    trap: FuncRef,
    kernel_index: u32,
    /// Per buffer (inputs, then outputs): element count.
    lens: Vec<Value>,
}

/// Everything the loop emitters share.
struct Gen<'k> {
    kernel: &'k LoopKernel,
    ptr: Type,
    in_bases: Vec<Value>,
    out_bases: Vec<Value>,
    checks: Option<Checks>,
    /// The block a failed bounds check jumps to (returns at once).
    exit: cranelift_codegen::ir::Block,
}

impl Gen<'_> {
    fn load_flags(&self) -> MemFlagsData {
        let f = MemFlagsData::new().with_notrap().with_readonly();
        // In checked mode loads must stay below their bounds check.
        if self.checks.is_some() {
            f
        } else {
            f.with_can_move()
        }
    }

    /// In checked mode, verifies that `width` elements at `ptr + offset` lie
    /// inside buffer `buf` (inputs first, then outputs); on failure calls the
    /// trap function and returns from the kernel.
    fn check(&self, b: &mut FunctionBuilder, buf: usize, ptr: Value, offset: i64, width: i64) {
        let Some(checks) = &self.checks else { return };
        let base = if buf < self.in_bases.len() {
            self.in_bases[buf]
        } else {
            self.out_bases[buf - self.in_bases.len()]
        };
        let len = checks.lens[buf];
        let at = b.ins().iadd_imm_s(ptr, offset);
        let byte_off = b.ins().isub(at, base);
        let elem = b.ins().sshr_imm_u(byte_off, 2);
        let limit = b.ins().iadd_imm_s(len, -width);
        let not_neg = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, byte_off, 0);
        let in_range = b.ins().icmp(IntCC::SignedLessThanOrEqual, elem, limit);
        let ok = b.ins().band(not_neg, in_range);
        let fail = b.create_block();
        let cont = b.create_block();
        b.ins().brif(ok, cont, &[], fail, &[]);
        b.switch_to_block(fail);
        b.set_cold_block(fail);
        let kidx = b.ins().iconst(self.ptr, i64::from(checks.kernel_index));
        let bidx = b.ins().iconst(self.ptr, buf as i64);
        b.ins().call(checks.trap, &[kidx, bidx, elem, len]);
        b.ins().jump(self.exit, &[]);
        b.switch_to_block(cont);
    }

    /// Evaluates the body for one group of lanes. `input` yields the value of
    /// input `n` (emitting its load). Returns the value of every expr.
    fn eval(&self, e: &mut Emit, mut input: impl FnMut(&mut Emit, usize) -> Value) -> Vec<Value> {
        let mut vals: Vec<Value> = Vec::with_capacity(self.kernel.body.len());
        let mut masks: Vec<Option<Mask>> = Vec::with_capacity(self.kernel.body.len());
        for expr in &self.kernel.body {
            let (v, m) = match *expr {
                Expr::Input(n) => (input(e, n), None),
                Expr::Const(c) => (e.f(c), None),
                Expr::Unary(op, a) => (unary(e, op, vals[a]), None),
                Expr::Binary(op, a, b) => (binary(e, op, vals[a], vals[b]), None),
                Expr::Compare(op, a, b) => {
                    let m = e.cmp(float_cc(op), vals[a], vals[b]);
                    (e.mask_to_float(m), Some(m))
                }
                Expr::Select(c, a, b) => {
                    let m = match masks[c] {
                        Some(m) => m,
                        None => {
                            let zero = e.f(0.0);
                            e.cmp(FloatCC::NotEqual, vals[c], zero)
                        }
                    };
                    (e.select(m, vals[a], vals[b]), None)
                }
            };
            vals.push(v);
            masks.push(m);
        }
        vals
    }
}

fn float_cc(op: CmpOp) -> FloatCC {
    match op {
        CmpOp::Lt => FloatCC::LessThan,
        CmpOp::Le => FloatCC::LessThanOrEqual,
        CmpOp::Gt => FloatCC::GreaterThan,
        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
        CmpOp::Eq => FloatCC::Equal,
        // IEEE `!=`: true when either operand is NaN.
        CmpOp::Ne => FloatCC::NotEqual,
    }
}

fn unary(e: &mut Emit, op: UnaryOp, x: Value) -> Value {
    match op {
        UnaryOp::Neg => e.b.ins().fneg(x),
        UnaryOp::Exp => approx::exp(e, x),
        UnaryOp::Log => approx::log(e, x),
        UnaryOp::Sqrt => e.b.ins().sqrt(x),
        UnaryOp::Abs => e.b.ins().fabs(x),
        UnaryOp::Sign => {
            // 1 for x > 0, -1 for x < 0, x + 0 otherwise (±0 → +0, NaN → NaN).
            let zero = e.f(0.0);
            let one = e.f(1.0);
            let minus_one = e.f(-1.0);
            let rest = e.b.ins().fadd(x, zero);
            let neg = e.cmp(FloatCC::LessThan, x, zero);
            let r = e.select(neg, minus_one, rest);
            let pos = e.cmp(FloatCC::GreaterThan, x, zero);
            e.select(pos, one, r)
        }
        UnaryOp::Tanh => approx::tanh(e, x),
        UnaryOp::Sigmoid => approx::sigmoid(e, x),
        UnaryOp::Erf => approx::erf(e, x),
    }
}

fn binary(e: &mut Emit, op: BinaryOp, a: Value, b: Value) -> Value {
    match op {
        BinaryOp::Add => e.b.ins().fadd(a, b),
        BinaryOp::Sub => e.b.ins().fsub(a, b),
        BinaryOp::Mul => e.b.ins().fmul(a, b),
        BinaryOp::Div => e.b.ins().fdiv(a, b),
        // The interpreter's rule: NaN if either is NaN, else `a` when a ≥ b
        // (so max(-0, +0) = -0). Picking `a` also when `a` is NaN, and `b`
        // otherwise, gives exactly that.
        BinaryOp::Max | BinaryOp::Min => {
            let cc = if op == BinaryOp::Max { FloatCC::GreaterThanOrEqual } else { FloatCC::LessThanOrEqual };
            let wins = e.cmp(cc, a, b);
            let a_nan = e.cmp(FloatCC::Unordered, a, a);
            let pick_a = e.or(wins, a_nan);
            e.select(pick_a, a, b)
        }
    }
}

/// The per-row state of the inner loops.
struct Row {
    /// Per input: the running pointer variable (None for stride 0).
    in_ptrs: Vec<Option<Variable>>,
    /// Per input with inner stride 0: its scalar value, and splat vector.
    hoisted: Vec<Option<(Value, Value)>>,
    out_ptrs: Vec<Variable>,
    remaining: Variable,
}

/// Emits the body of the kernel function into `b`, whose entry block is not
/// yet created. `trap` is the trap function (checked mode only).
pub(crate) fn emit(
    kernel: &LoopKernel,
    b: &mut FunctionBuilder,
    ptr: Type,
    trap: Option<(FuncRef, u32)>,
) -> Result<(), String> {
    kernel.validate()?;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (ins_pp, outs_pp, start, end, lens_p) = (params[0], params[1], params[2], params[3], params[4]);
    let exit = b.create_block();

    let table = MemFlagsData::new().with_notrap().with_readonly();
    let word = ptr.bytes() as i32;
    let in_bases: Vec<Value> =
        (0..kernel.inputs.len()).map(|i| b.ins().load(ptr, table, ins_pp, word * i as i32)).collect();
    let out_bases: Vec<Value> =
        (0..kernel.outputs.len()).map(|i| b.ins().load(ptr, table, outs_pp, word * i as i32)).collect();
    let checks = trap.map(|(trap, kernel_index)| Checks {
        trap,
        kernel_index,
        lens: (0..kernel.inputs.len() + kernel.outputs.len())
            .map(|i| b.ins().load(ptr, table, lens_p, word * i as i32))
            .collect(),
    });
    let g = Gen { kernel, ptr, in_bases, out_bases, checks, exit };

    if kernel.elements() > 0 {
        emit_rows(&g, b, start, end);
    } else {
        b.ins().jump(exit, &[]);
    }
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    Ok(())
}

/// The loop over rows of the innermost (merged) axis.
fn emit_rows(g: &Gen, b: &mut FunctionBuilder, start: Value, end: Value) {
    let k = g.kernel;
    let axes = merge_axes(k);
    let (inner, outer) = axes.split_last().expect("merge_axes returns at least one axis");
    let vectorize = inner.strides.iter().all(|&s| s == 0 || s == 1);
    let ptr = g.ptr;

    let i_var = b.declare_var(ptr);
    b.def_var(i_var, start);
    let row = Row {
        in_ptrs: inner.strides.iter().map(|&s| (s != 0).then(|| b.declare_var(ptr))).collect(),
        hoisted: vec![None; k.inputs.len()],
        out_ptrs: k.outputs.iter().map(|_| b.declare_var(ptr)).collect(),
        remaining: b.declare_var(ptr),
    };
    let head = b.create_block();
    let body = b.create_block();
    let next = b.create_block();
    let row_end_var = b.declare_var(ptr);
    b.ins().jump(head, &[]);

    b.switch_to_block(head);
    let i = b.use_var(i_var);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, i, end);
    b.ins().brif(more, body, &[], g.exit, &[]);

    b.switch_to_block(body);
    let i = b.use_var(i_var);
    let n = b.ins().iconst(ptr, inner.size as i64);
    let row_idx = b.ins().udiv(i, n);
    let row_start = b.ins().imul(row_idx, n);
    let col = b.ins().isub(i, row_start);
    let row_limit = b.ins().iadd(row_start, n);
    let row_end = b.ins().umin(row_limit, end);
    b.def_var(row_end_var, row_end);
    let count = b.ins().isub(row_end, i);
    b.def_var(row.remaining, count);

    // Decompose the row index into outer-axis indices (innermost first).
    let mut outer_idx = vec![None; outer.len()];
    let mut rest = row_idx;
    for (a, axis) in outer.iter().enumerate().rev() {
        let size = b.ins().iconst(ptr, axis.size as i64);
        outer_idx[a] = Some(b.ins().urem(rest, size));
        rest = b.ins().udiv(rest, size);
    }
    let mut row = row;
    for (inp, base) in g.in_bases.iter().enumerate() {
        let mut off = b.ins().imul_imm_s(col, inner.strides[inp] as i64);
        for (a, axis) in outer.iter().enumerate() {
            let s = axis.strides[inp];
            if s != 0 {
                let idx = outer_idx[a].expect("every outer index is computed");
                let term = b.ins().imul_imm_s(idx, s as i64);
                off = b.ins().iadd(off, term);
            }
        }
        let bytes = b.ins().ishl_imm_u(off, 2);
        let p = b.ins().iadd(*base, bytes);
        match row.in_ptrs[inp] {
            Some(var) => b.def_var(var, p),
            None => {
                g.check(b, inp, p, 0, 1);
                let s = b.ins().load(types::F32, g.load_flags(), p, 0);
                let v = if vectorize { b.ins().splat(types::F32X4, s) } else { s };
                row.hoisted[inp] = Some((s, v));
            }
        }
    }
    let out_off = b.ins().ishl_imm_u(i, 2);
    for (o, base) in g.out_bases.iter().enumerate() {
        let p = b.ins().iadd(*base, out_off);
        b.def_var(row.out_ptrs[o], p);
    }

    if vectorize {
        let unroll = match k.transcendentals() {
            0 if k.body.len() <= 16 => 4,
            0 | 1 => 2,
            _ => 1,
        };
        if unroll > 1 {
            emit_inner(g, b, &row, &inner.strides, Lanes::X4, unroll);
        }
        emit_inner(g, b, &row, &inner.strides, Lanes::X4, 1);
    }
    emit_inner(g, b, &row, &inner.strides, Lanes::SCALAR, 1);
    b.ins().jump(next, &[]);

    b.switch_to_block(next);
    let row_end = b.use_var(row_end_var);
    b.def_var(i_var, row_end);
    b.ins().jump(head, &[]);
}

/// One inner loop: while at least `lanes·unroll` elements remain, processes
/// that many and advances the pointers. Leaves the builder in the block
/// after the loop.
fn emit_inner(g: &Gen, b: &mut FunctionBuilder, row: &Row, strides: &[isize], lanes: Lanes, unroll: usize) {
    let width = if lanes.is_vector() { 4 } else { 1 };
    let step = (width * unroll) as i64;
    let head = b.create_block();
    let body = b.create_block();
    let after = b.create_block();
    b.ins().jump(head, &[]);

    b.switch_to_block(head);
    let rem = b.use_var(row.remaining);
    let enough = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, rem, step);
    b.ins().brif(enough, body, &[], after, &[]);

    b.switch_to_block(body);
    let in_ptrs: Vec<Option<Value>> = row.in_ptrs.iter().map(|v| v.map(|v| b.use_var(v))).collect();
    let out_ptrs: Vec<Value> = row.out_ptrs.iter().map(|&v| b.use_var(v)).collect();
    for u in 0..unroll {
        let lane_off = (u * width * 4) as i32;
        let vals = {
            let mut e = Emit { b: &mut *b, lanes };
            g.eval(&mut e, |e, n| match (in_ptrs[n], row.hoisted[n]) {
                (_, Some((s, v))) => {
                    if e.lanes.is_vector() {
                        v
                    } else {
                        s
                    }
                }
                (Some(p), None) => {
                    // Stride 1 (vector or scalar) or any stride (scalar, one element).
                    let off = if lanes.is_vector() { lane_off } else { 0 };
                    g.check(e.b, n, p, i64::from(off), width as i64);
                    e.b.ins().load(lanes.float, g.load_flags(), p, off)
                }
                (None, None) => unreachable!("an input without a pointer is hoisted"),
            })
        };
        for (o, &expr) in g.kernel.outputs.iter().enumerate() {
            let buf = g.in_bases.len() + o;
            g.check(b, buf, out_ptrs[o], i64::from(lane_off), width as i64);
            b.ins().store(MemFlagsData::new().with_notrap(), vals[expr], out_ptrs[o], lane_off);
        }
    }
    for (n, p) in in_ptrs.iter().enumerate() {
        if let (Some(p), Some(var)) = (p, row.in_ptrs[n]) {
            let advance = strides[n] as i64 * step * 4;
            let np = b.ins().iadd_imm_s(*p, advance);
            b.def_var(var, np);
        }
    }
    for (o, p) in out_ptrs.iter().enumerate() {
        let np = b.ins().iadd_imm_s(*p, step * 4);
        b.def_var(row.out_ptrs[o], np);
    }
    let rem = b.use_var(row.remaining);
    let rem = b.ins().iadd_imm_s(rem, -step);
    b.def_var(row.remaining, rem);
    b.ins().jump(head, &[]);

    b.switch_to_block(after);
}
