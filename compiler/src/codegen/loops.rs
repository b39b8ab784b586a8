//! Loop kernels: a fused expression evaluated over a rectangular iteration
//! space, reading strided input buffers and writing (or reducing into)
//! strided output buffers, compiled to one Cranelift function. Every fused
//! elementwise/reduction kernel of the fusion stage and every materialising
//! copy (slice, pad, concat, permute) is one [`LoopKernel`].
//!
//! The function has the C signature
//! `fn(inputs: *const *const f32, outputs: *const *mut f32, start: usize, end: usize, lens: *const usize)`
//! and computes the flat (row-major) iteration indices `start..end`, so a
//! runtime can split one kernel across threads by index range. `lens` holds
//! the element count of every input buffer and then every output buffer; it
//! is read only by checked kernels ([`super::Checking::Checked`]) and may be
//! null otherwise.
//!
//! Model:
//! - Element (i₀, …, iₖ) of the space reads input `b` at
//!   `offset + Σ iₐ·strides[a]` of its buffer ([`Operand`]); stride 0
//!   broadcasts. Buffers are arrays of 4-byte elements: [`Elem::F32`] holds
//!   f32, [`Elem::I32`] holds i32, converted to f32 on load and back (with
//!   truncation and saturation) on store. Inside the body every value is an f32;
//!   bools are 0.0/1.0 and i32 values are their f32 rounding.
//! - Each [`Store`] writes one body value to `offset + Σ iₐ·strides[a]` of
//!   its output buffer, or, with a [`Reduce`], combines it into the element
//!   there (the caller initialises reduction outputs). Reduced axes have
//!   stride 0 in the store.
//! - [`Expr::AxisIndex`] and [`Expr::Random`] read the position of the
//!   current element (`one_hot`, dropout masks).
//!
//! Code shape: size-1 axes are dropped and adjacent axes that are contiguous
//! for every input and every output are merged (a `[N, M]` elementwise op
//! becomes one loop of `N·M`); when the kernel reduces, the first axis is
//! never merged into the following ones, so a split of `start..end` on its
//! boundaries is a split on row boundaries. A reduction whose innermost axis
//! is reduced and shorter than a vector first moves a longer axis innermost
//! when one suits vectors ([`row_axis_innermost`]: the gradient of a
//! nearest upsampling). The loop nest is then "rows" of the innermost
//! merged axis. When every input's innermost stride is 0, 1 or 2 (every
//! other element: two loads and a shuffle), every plain store's is 1 and
//! every reducing store's is 0 or 1, the row is
//! processed with f32x4 vectors, unrolled (×4 for cheap bodies), then single
//! vectors, then a scalar tail; inputs broadcast along the row (stride 0) are
//! loaded once per row. Reductions along the row accumulate in vector
//! registers (one per unrolled step), which are combined in a fixed order at
//! the end of the vector loops and then into a scalar accumulator that started
//! from the output element's value (a maximum keeps beside each accumulator
//! the last NaN its lanes met, so that the accumulator itself is one `maxps`
//! per step, and combines its four lanes by vector shuffles); the scalar tail continues that
//! accumulator and the row ends with one store. Reductions across rows
//! (innermost stride 1) load, combine and store each vector. A kernel that
//! computes `exp`, `sigmoid`, `tanh` or `erf` runs its rows in strips of
//! [`STRIP`] elements ([`SHORT_STRIP`] for shorter rows) first when the
//! host has [`super::wide`]'s array functions: the body is cut into
//! segments at each such call, every segment is an f32x4 loop over the
//! strip, each call processes the whole strip, and values crossing segments
//! live in stack arrays of one strip (see [`StripPlan`]); the array
//! functions give the inline approximations' bits, so where a strip ends
//! does not change a plain result. A reduction along the row sums each
//! strip into a vector of its own and adds that to the row's accumulator,
//! so its rounding differs from the inline loop's (and is again fixed per
//! row). Other strides,
//! `AxisIndex`, `Random`, and row reductions whose row contains the first
//! axis use the scalar loop, which accumulates sequentially. So results do
//! not depend on how `start..end` is split on boundaries of the first axis,
//! and one split always gives the same bits. Calls that reduce into the same
//! output elements must not run concurrently.
//!
//! Pointers advance by constant byte offsets (Cranelift does not
//! strength-reduce), and input loads are `notrap readonly can_move` so they
//! sink next to their use. Checked kernels first walk the range once testing
//! every address they will access (inputs, random keys, outputs and the
//! read-modify-write of reductions) without touching memory, then compute
//! with every access checked again; an out-of-bounds access calls the trap
//! function and returns, so a failing call writes nothing.
//!
//! Semantics follow the reference interpreter (`ir::interp`,
//! `elementwise.rs`, `reduce.rs`, and `ir::rng`) exactly for every op except
//! the transcendental functions, which use the approximations of
//! [`super::approx`] with the error bounds documented there, and the order of
//! floating-point additions in sums.

use super::checks::{enter, Checks, Frame, Site};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, Block, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::approx::{self, Emit, Lanes, Mask};
use crate::ir::op::{BinaryOp, CmpOp, UnaryOp};
use crate::ir::rng;
use crate::ir::types::DType;

/// Element type of a buffer. F32 buffers hold f32; I32 buffers hold i32
/// (converted to f32 on load, converted back with truncation toward zero and
/// saturation on store). Inside the body every value is an f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    I32,
}

/// How an input buffer is read: element (i₀, …, iₖ) of the iteration space
/// reads `base[offset + Σ iₐ·strides[a]]` (a stride may be 0, broadcasting
/// along that axis, or negative).
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    pub offset: isize,
    pub strides: Vec<isize>,
    pub elem: Elem,
}

/// How a store combines into an output element instead of overwriting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// `out + value`.
    Sum,
    /// The maximum, with the interpreter's `reduce_max` rule: NaN if either
    /// is NaN, else the output element when it is ≥ the value.
    Max,
}

/// One store: body value `value` is written to
/// `base[offset + Σ iₐ·strides[a]]`.
///
/// Without `reduce`, the strides must address each element at most once (no
/// 0 strides on axes of size > 1). With `reduce`, the output element is
/// combined with the value (`+`, or max with the interpreter's `reduce_max`
/// NaN semantics); strides are 0 along the reduced axes. The caller
/// initialises reduction outputs (0 for `Sum`, -inf for `Max`) before the
/// first call.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    pub value: usize,
    pub offset: isize,
    pub strides: Vec<isize>,
    pub elem: Elem,
    pub reduce: Option<Reduce>,
}

/// A fused kernel over a rectangular iteration space; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopKernel {
    /// The function's symbol name (unique within one [`super::Jit`]).
    pub name: String,
    /// Iteration space, row-major, concrete sizes.
    pub shape: Vec<usize>,
    /// How each input buffer is read.
    pub inputs: Vec<Operand>,
    /// SSA expression list: `Expr` number `i` may only use numbers `< i`.
    pub body: Vec<Expr>,
    /// The stores, one per output buffer. An output buffer may be the same
    /// memory as an input buffer only when that input is read with the same
    /// offset and strides by a plain (non-reducing) store (in-place update).
    pub outputs: Vec<Store>,
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
    /// The IR's `cast` from `from` to `to`, applied to the f32
    /// representation of a value of type `from` (bool = 0.0/1.0, i32 = its
    /// value as f32), giving the f32 representation of the result: f32→i32
    /// truncates toward zero, saturating at the i32 range, NaN → 0; anything
    /// → bool is "non-zero" (NaN is non-zero); every other pair keeps the
    /// value.
    Cast { from: DType, to: DType, arg: usize },
    /// The coordinate of the current iteration point along axis `axis`, as
    /// f32.
    AxisIndex(usize),
    /// `ir::rng::uniform(key, stream, i)` where `i` is the flat row-major
    /// index of the current iteration point in the kernel's shape, and `key`
    /// the two i32 words at elements `offset` and `offset + 1` of input
    /// buffer `key` (an [`Elem::I32`] operand; its strides are not used for
    /// this).
    Random { key: usize, stream: u64 },
}

impl LoopKernel {
    /// The number of iterations (product of the shape; 1 for a scalar).
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Checks the kernel's internal consistency: stride lists match the
    /// rank, the body is in SSA order, every reference is in range, random
    /// keys are I32 inputs, at least one output exists, stored values exist,
    /// and plain stores address each element at most once.
    pub fn validate(&self) -> Result<(), String> {
        let rank = self.shape.len();
        for (b, op) in self.inputs.iter().enumerate() {
            if op.strides.len() != rank {
                return Err(format!(
                    "input {b} has {} strides for a rank-{rank} iteration space",
                    op.strides.len()
                ));
            }
        }
        for (i, e) in self.body.iter().enumerate() {
            let input = |b: usize| -> Result<(), String> {
                if b >= self.inputs.len() {
                    return Err(format!("expr {i} reads input {b} of {}", self.inputs.len()));
                }
                Ok(())
            };
            let refs: &[usize] = match e {
                Expr::Input(b) => {
                    input(*b)?;
                    &[]
                }
                Expr::Const(_) => &[],
                Expr::Unary(_, a) | Expr::Cast { arg: a, .. } => std::slice::from_ref(a),
                Expr::Binary(_, a, b) | Expr::Compare(_, a, b) => &[*a, *b],
                Expr::Select(c, a, b) => &[*c, *a, *b],
                Expr::AxisIndex(a) => {
                    if *a >= rank {
                        return Err(format!("expr {i} reads axis {a} of a rank-{rank} iteration space"));
                    }
                    &[]
                }
                Expr::Random { key, .. } => {
                    input(*key)?;
                    if self.inputs[*key].elem != Elem::I32 {
                        return Err(format!("expr {i} uses input {key} as a random key, but it is not I32"));
                    }
                    &[]
                }
            };
            if let Some(r) = refs.iter().find(|&&r| r >= i) {
                return Err(format!("expr {i} uses expr {r}, which is not defined before it"));
            }
        }
        if self.outputs.is_empty() {
            return Err("kernel has no outputs".into());
        }
        for (o, s) in self.outputs.iter().enumerate() {
            if s.value >= self.body.len() {
                return Err(format!("output {o} refers to expr {} of {}", s.value, self.body.len()));
            }
            if s.strides.len() != rank {
                return Err(format!(
                    "output {o} has {} strides for a rank-{rank} iteration space",
                    s.strides.len()
                ));
            }
            // An empty space writes nothing, so any strides are injective there.
            if s.reduce.is_none() && self.elements() > 0 {
                if let Some(a) = (0..rank).find(|&a| self.shape[a] > 1 && s.strides[a] == 0) {
                    return Err(format!(
                        "output {o} has stride 0 along axis {a} of size {} without a reduction",
                        self.shape[a]
                    ));
                }
            }
        }
        Ok(())
    }

    /// The (lowest, highest) element offset input `b` is read at over the
    /// whole iteration space: through `Expr::Input` at its offset and
    /// strides, and as a random key at its offset and the next element.
    /// `None` when the space is empty or the body does not use the input.
    pub fn input_extent(&self, b: usize) -> Option<(isize, isize)> {
        let op = self.inputs.get(b)?;
        let read = self.body.contains(&Expr::Input(b));
        let is_key = self.body.iter().any(|e| matches!(e, Expr::Random { key, .. } if *key == b));
        let strided = if read { extent(&self.shape, op.offset, &op.strides) } else { None };
        let key =
            if is_key && self.elements() > 0 { Some((op.offset, op.offset.saturating_add(1))) } else { None };
        match (strided, key) {
            (Some((lo, hi)), Some((klo, khi))) => Some((lo.min(klo), hi.max(khi))),
            (a, b) => a.or(b),
        }
    }

    /// The (lowest, highest) element offset output `o` is written (or
    /// reduced into) at over the whole iteration space, or `None` when the
    /// space is empty.
    pub fn output_extent(&self, o: usize) -> Option<(isize, isize)> {
        let s = self.outputs.get(o)?;
        extent(&self.shape, s.offset, &s.strides)
    }

    /// How many approximated transcendental functions the body evaluates.
    fn transcendentals(&self) -> usize {
        self.body.iter().filter(|e| matches!(e, Expr::Unary(op, _) if op.is_transcendental())).count()
    }

    /// Whether the body reads the position of the current element.
    pub(crate) fn uses_position(&self) -> bool {
        self.body.iter().any(|e| matches!(e, Expr::AxisIndex(_) | Expr::Random { .. }))
    }

    /// The same kernel with its axes in `order` (axis `i` of the result is
    /// axis `order[i]` of this one): every operand and store keeps its
    /// addresses, only the order in which the space is walked changes.
    /// Positions (`AxisIndex`, `Random`) are not remapped; callers keep
    /// kernels that read them.
    pub(crate) fn permuted(&self, order: &[usize]) -> LoopKernel {
        let pick = |v: &[isize]| order.iter().map(|&a| v[a]).collect();
        LoopKernel {
            shape: order.iter().map(|&a| self.shape[a]).collect(),
            inputs: self.inputs.iter().map(|o| Operand { strides: pick(&o.strides), ..o.clone() }).collect(),
            outputs: self.outputs.iter().map(|s| Store { strides: pick(&s.strides), ..s.clone() }).collect(),
            ..self.clone()
        }
    }

    /// The same kernel with axis `a` (whose size `outer` divides) as two
    /// axes `[outer, size / outer]`, the same addresses.
    pub(crate) fn split_axis(&self, a: usize, outer: usize) -> LoopKernel {
        let inner = self.shape[a] / outer;
        let split = |v: &[isize]| -> Vec<isize> {
            let mut out = v.to_vec();
            out.insert(a, v[a] * inner as isize);
            out
        };
        let mut shape = self.shape.clone();
        shape[a] = inner;
        shape.insert(a, outer);
        LoopKernel {
            shape,
            inputs: self.inputs.iter().map(|o| Operand { strides: split(&o.strides), ..o.clone() }).collect(),
            outputs: self.outputs.iter().map(|s| Store { strides: split(&s.strides), ..s.clone() }).collect(),
            ..self.clone()
        }
    }
}

/// The (lowest, highest) of `offset + Σ iₐ·strides[a]` over `shape`
/// (saturating), or `None` for an empty space.
fn extent(shape: &[usize], offset: isize, strides: &[isize]) -> Option<(isize, isize)> {
    if shape.contains(&0) {
        return None;
    }
    let (mut lo, mut hi) = (offset, offset);
    for (&n, &s) in shape.iter().zip(strides) {
        let far = s.saturating_mul(isize::try_from(n - 1).unwrap_or(isize::MAX));
        if far < 0 {
            lo = lo.saturating_add(far);
        } else {
            hi = hi.saturating_add(far);
        }
    }
    Some((lo, hi))
}

/// An iteration axis after merging: its size, each buffer's stride (inputs,
/// then outputs), and whether it contains the kernel's first axis.
struct Axis {
    size: usize,
    strides: Vec<isize>,
    first: bool,
}

/// Drops size-1 axes and merges neighbours that are contiguous for every
/// input and every output. A kernel that reduces never merges its first
/// axis into the next (see the module docs). Always returns at least one
/// axis.
fn merge_axes(k: &LoopKernel) -> Vec<Axis> {
    let reduces = k.outputs.iter().any(|s| s.reduce.is_some());
    let mut axes: Vec<Axis> = Vec::new();
    for (a, &size) in k.shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let strides: Vec<isize> =
            k.inputs.iter().map(|o| o.strides[a]).chain(k.outputs.iter().map(|s| s.strides[a])).collect();
        if let Some(last) = axes.last_mut() {
            let contiguous = !(reduces && last.first)
                && last.strides.iter().zip(&strides).all(|(&outer, &inner)| {
                    isize::try_from(size)
                        .ok()
                        .and_then(|n| inner.checked_mul(n))
                        .is_some_and(|step| step == outer)
                });
            if contiguous {
                last.size *= size;
                last.strides = strides;
                continue;
            }
        }
        axes.push(Axis { size, strides, first: a == 0 });
    }
    if axes.is_empty() {
        axes.push(Axis { size: 1, strides: vec![0; k.inputs.len() + k.outputs.len()], first: false });
    }
    axes
}

/// How a store treats its output element within a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Overwrite.
    Plain,
    /// Load, combine, store: the output moves along the row.
    Rmw(Reduce),
    /// Accumulate in registers: the row is reduced into one element.
    Row(Reduce),
}

/// Everything the loop emitters share.
struct Gen<'k> {
    kernel: &'k LoopKernel,
    ptr: Type,
    /// Base pointers: inputs, then outputs.
    bases: Vec<Value>,
    /// Per input: whether the body reads it through `Expr::Input`.
    read: Vec<bool>,
    /// Per input: whether the body uses it as a random key.
    key: Vec<bool>,
    checks: Option<Checks>,
    /// The block a failed bounds check jumps to (returns at once).
    exit: Block,
    /// The array functions ([`super::wide`]) this kernel may call, by op.
    wide: &'k [(UnaryOp, FuncRef)],
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

    /// In checked mode, verifies that `width` elements at `ptr + offset`
    /// bytes lie inside buffer `buf` (inputs first, then outputs); on failure
    /// calls the trap function and returns from the kernel.
    fn check(&self, b: &mut FunctionBuilder, buf: usize, ptr: Value, offset: i64, width: i64) {
        let Some(checks) = &self.checks else { return };
        let at = b.ins().iadd_imm_s(ptr, offset);
        let site = Site { buf, base: self.bases[buf], at, width };
        checks.emit(b, self.ptr, self.exit, site);
    }

    /// Evaluates the body for one group of lanes. `input` yields the value
    /// of input `n` (emitting its load); `flat` is the flat index of the
    /// element (scalar lanes only, needed by `AxisIndex` and `Random`) and
    /// `keys` the key words of every input used as a random key. Returns the
    /// value of every expr.
    fn eval(
        &self,
        e: &mut Emit,
        flat: Option<Value>,
        keys: &[Option<(Value, Value)>],
        mut input: impl FnMut(&mut Emit, usize) -> Value,
    ) -> Vec<Value> {
        let k = self.kernel;
        let mut vals: Vec<Value> = Vec::with_capacity(k.body.len());
        let mut masks: Vec<Option<Mask>> = Vec::with_capacity(k.body.len());
        for expr in &k.body {
            let (v, m) = match *expr {
                Expr::Input(n) => (input(e, n), None),
                _ => self.eval_op(e, expr, &vals, &masks, flat, keys),
            };
            vals.push(v);
            masks.push(m);
        }
        vals
    }

    /// The value of one expr other than `Input`, from the values (and the
    /// comparison masks, where known) of the exprs before it.
    fn eval_op(
        &self,
        e: &mut Emit,
        expr: &Expr,
        vals: &[Value],
        masks: &[Option<Mask>],
        flat: Option<Value>,
        keys: &[Option<(Value, Value)>],
    ) -> (Value, Option<Mask>) {
        let k = self.kernel;
        match *expr {
            Expr::Input(_) => unreachable!("inputs are loaded by the caller"),
            Expr::Const(c) => (e.f(c), None),
            Expr::Unary(op, a) => (unary(e, op, vals[a]), None),
            // `max(x, c)` / `min(x, c)` with a number `c` (a ReLU, a
            // clamp): `c` is never NaN, so picking `c` only where it wins
            // strictly is the whole rule (on x86 one `maxps` / `minps`).
            Expr::Binary(op @ (BinaryOp::Max | BinaryOp::Min), a, b) if matches!(k.body[b], Expr::Const(c) if !c.is_nan()) =>
            {
                let (x, c) = (vals[a], vals[b]);
                // `x < c` / `c < x`: the operand order Cranelift's x86
                // backend matches to `maxps` / `minps`.
                let c_wins = if op == BinaryOp::Max {
                    e.cmp(FloatCC::LessThan, x, c)
                } else {
                    e.cmp(FloatCC::LessThan, c, x)
                };
                (e.select(c_wins, c, x), None)
            }
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
            Expr::Cast { from, to, arg } => match (from, to) {
                (DType::F32 | DType::I32, DType::Bool) => {
                    // Non-zero, with NaN counting as non-zero (unordered or not equal).
                    let zero = e.f(0.0);
                    let m = e.cmp(FloatCC::NotEqual, vals[arg], zero);
                    (e.mask_to_float(m), Some(m))
                }
                (DType::F32, DType::I32) => {
                    let i = e.b.ins().fcvt_to_sint_sat(e.lanes.int, vals[arg]);
                    (e.b.ins().fcvt_from_sint(e.lanes.float, i), None)
                }
                _ => (vals[arg], masks[arg]),
            },
            Expr::AxisIndex(axis) => {
                let flat = flat.expect("kernels reading positions use the scalar loop");
                let inner: usize = k.shape[axis + 1..].iter().product();
                let mut c = flat;
                if inner != 1 {
                    let d = e.b.ins().iconst(self.ptr, inner as i64);
                    c = e.b.ins().udiv(c, d);
                }
                let c = if k.shape[axis] == 1 {
                    e.b.ins().iconst(self.ptr, 0)
                } else if k.shape[..axis].iter().all(|&n| n == 1) {
                    c
                } else {
                    let n = e.b.ins().iconst(self.ptr, k.shape[axis] as i64);
                    e.b.ins().urem(c, n)
                };
                (e.b.ins().fcvt_from_uint(types::F32, c), None)
            }
            Expr::Random { key, stream } => {
                let flat = flat.expect("kernels reading positions use the scalar loop");
                let (k0, k1) = keys[key].expect("every random key is loaded");
                (philox_uniform(e.b, flat, k0, k1, stream), None)
            }
        }
    }

    /// Loads one element group of buffer `buf` with element type `elem`,
    /// converted to floats.
    fn load(
        &self,
        b: &mut FunctionBuilder,
        lanes: Lanes,
        elem: Elem,
        flags: MemFlagsData,
        p: Value,
        off: i32,
    ) -> Value {
        match elem {
            Elem::F32 => b.ins().load(lanes.float, flags, p, off),
            Elem::I32 => {
                let i = b.ins().load(lanes.int, flags, p, off);
                b.ins().fcvt_from_sint(lanes.float, i)
            }
        }
    }

    /// Stores floats `v` as element type `elem`.
    fn store(&self, b: &mut FunctionBuilder, lanes: Lanes, elem: Elem, v: Value, p: Value, off: i32) {
        let v = match elem {
            Elem::F32 => v,
            Elem::I32 => b.ins().fcvt_to_sint_sat(lanes.int, v),
        };
        b.ins().store(MemFlagsData::new().with_notrap(), v, p, off);
    }
}

/// `ir::rng::uniform(key, stream, flat)`: Philox-4x32-10 on the counter
/// `[lo(flat/4), hi(flat/4), lo(stream), hi(stream)]`, word `flat % 4`,
/// scaled as `(w >> 8)·2^-24`.
fn philox_uniform(b: &mut FunctionBuilder, flat: Value, k0: Value, k1: Value, stream: u64) -> Value {
    let c32 = |b: &mut FunctionBuilder, v: u32| b.ins().iconst(types::I32, i64::from(v));
    let block = b.ins().ushr_imm_u(flat, 2);
    let lo = b.ins().ireduce(types::I32, block);
    let hi = b.ins().ushr_imm_u(block, 32);
    let hi = b.ins().ireduce(types::I32, hi);
    let mut c = [lo, hi, c32(b, stream as u32), c32(b, (stream >> 32) as u32)];
    let m0 = c32(b, rng::PHILOX_M0);
    let m1 = c32(b, rng::PHILOX_M1);
    for round in 0..rng::PHILOX_ROUNDS as u32 {
        let (rk0, rk1) = if round == 0 {
            (k0, k1)
        } else {
            let w0 = c32(b, rng::PHILOX_W0.wrapping_mul(round));
            let w1 = c32(b, rng::PHILOX_W1.wrapping_mul(round));
            (b.ins().iadd(k0, w0), b.ins().iadd(k1, w1))
        };
        let hi0 = b.ins().umulhi(m0, c[0]);
        let lo0 = b.ins().imul(m0, c[0]);
        let hi1 = b.ins().umulhi(m1, c[2]);
        let lo1 = b.ins().imul(m1, c[2]);
        let x0 = b.ins().bxor(hi1, c[1]);
        let x0 = b.ins().bxor(x0, rk0);
        let x2 = b.ins().bxor(hi0, c[3]);
        let x2 = b.ins().bxor(x2, rk1);
        c = [x0, lo1, x2, lo0];
    }
    let lane = b.ins().band_imm_u(flat, 3);
    let mut w = c[0];
    for (l, &word) in c.iter().enumerate().skip(1) {
        let is = b.ins().icmp_imm_u(IntCC::Equal, lane, l as i64);
        w = b.ins().select(is, word, w);
    }
    let top = b.ins().ushr_imm_u(w, 8);
    let f = b.ins().fcvt_from_uint(types::F32, top);
    let scale = b.ins().f32const(1.0 / 16_777_216.0);
    b.ins().fmul(f, scale)
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
        UnaryOp::Sin => approx::sin(e, x),
        UnaryOp::Cos => approx::cos(e, x),
        UnaryOp::Gelu => approx::gelu(e, x),
        UnaryOp::GeluGrad => approx::gelu_grad(e, x),
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

/// `acc ⊕ v` for a reduction (`max` with the interpreter's NaN rule, the
/// accumulated value winning ties).
fn combine(e: &mut Emit, r: Reduce, acc: Value, v: Value) -> Value {
    match r {
        Reduce::Sum => e.b.ins().fadd(acc, v),
        Reduce::Max => binary(e, BinaryOp::Max, acc, v),
    }
}

/// Whether an input read with stride `s` along a row can be loaded in
/// vectors: broadcast, contiguous, or every other f32 (two loads and a
/// shuffle).
fn vector_stride(s: isize, elem: Elem) -> bool {
    s == 0 || s == 1 || (s == 2 && elem == Elem::F32)
}

/// `v` where `a < v`, else `a` (ties and a NaN `v` keep `a`; on x86 one
/// `maxps`, for which this operand order is Cranelift's pattern).
fn larger(e: &mut Emit, a: Value, v: Value) -> Value {
    let wins = e.cmp(FloatCC::LessThan, a, v);
    e.select(wins, v, a)
}

/// `x` where it is NaN, else `nan`.
fn nan_or(e: &mut Emit, x: Value, nan: Value) -> Value {
    let is_nan = e.cmp(FloatCC::Unordered, x, x);
    e.select(is_nan, x, nan)
}

/// For a reduction kernel whose innermost axis is too short for vectors
/// (< 4) and reduced, the same kernel with another axis moved innermost,
/// when one suits vectors: of size ≥ 4, read by every input with stride 0,
/// 1 or 2 (2 only for f32), and moved along by every store with stride 1 —
/// the gradient of a nearest upsampling, `[N, C, H, 2, W, 2]` summed over
/// the 2s, then runs along `W` with the sums accumulated in place, instead
/// of one scalar row of 2 per output element. Only axes after the first
/// one larger than 1 move, so a call's range, which a reduction's caller
/// splits on that axis's boundaries, covers the same elements in either
/// order; the order of each element's additions is unchanged. `None` when
/// nothing moves (no reduction, positions read, or no such axis).
fn row_axis_innermost(k: &LoopKernel) -> Option<LoopKernel> {
    if !k.outputs.iter().any(|s| s.reduce.is_some()) || k.uses_position() {
        return None;
    }
    let n_in = k.inputs.len();
    let strides = |a: usize| -> Vec<isize> {
        k.inputs.iter().map(|o| o.strides[a]).chain(k.outputs.iter().map(|s| s.strides[a])).collect()
    };
    let axes = merge_axes(k);
    let inner = axes.last()?;
    let reduced =
        k.outputs.iter().enumerate().any(|(o, s)| s.reduce.is_some() && inner.strides[n_in + o] == 0);
    if inner.size >= 4 || !reduced {
        return None;
    }
    let first = k.shape.iter().position(|&n| n > 1)?;
    let suits = |a: usize| {
        let st = strides(a);
        k.shape[a] >= 4
            && st[..n_in].iter().zip(&k.inputs).all(|(&s, op)| vector_stride(s, op.elem))
            && st[n_in..].iter().all(|&s| s == 1)
    };
    let last = k.shape.len() - 1;
    let axis = (first + 1..last).rev().find(|&a| suits(a))?;
    let order: Vec<usize> = (0..k.shape.len()).filter(|&a| a != axis).chain([axis]).collect();
    Some(k.permuted(&order))
}

/// `acc ← acc ⊕ v`.
fn accumulate(e: &mut Emit, r: Reduce, acc: Variable, v: Value) {
    let a = e.b.use_var(acc);
    let c = combine(e, r, a, v);
    e.b.def_var(acc, c);
}

/// `acc ← max(acc, v)` for a vector accumulator of a row maximum, in two
/// independent chains of one dependent instruction each: `acc` takes `v`
/// where `acc < v` (ties keep `acc`, as the interpreter does; on x86 one
/// `maxps`), and `nan` takes `v` where it is NaN. `acc` then never holds a
/// NaN of the row (it starts from -inf; a strip's partial maximum added
/// by [`combine`] may bring one, which then stays, as `NaN < v` is false);
/// the row's end folds `nan` into it with [`combine`], which gives NaN
/// where `nan` is one. Against [`combine`]'s compare, unordered compare,
/// or and select on one chain, with the row's end below, the softmax's
/// row maximum over rows of 64 takes half the time (0.22 → 0.11 ms per
/// 2 MB).
fn accumulate_max(e: &mut Emit, acc: Variable, nan: Variable, v: Value) {
    let a = e.b.use_var(acc);
    let m = larger(e, a, v);
    e.b.def_var(acc, m);
    let n = e.b.use_var(nan);
    let n = nan_or(e, v, n);
    e.b.def_var(nan, n);
}

/// The identity of a reduction.
fn identity(r: Reduce) -> f32 {
    match r {
        Reduce::Sum => 0.0,
        Reduce::Max => f32::NEG_INFINITY,
    }
}

/// The per-row state of the inner loops.
struct Row {
    /// Per input: the running pointer variable (None for stride 0 or
    /// unread inputs).
    in_ptrs: Vec<Option<Variable>>,
    /// Per read input with inner stride 0: its scalar value, and the value
    /// at the vector width of the row.
    hoisted: Vec<Option<(Value, Value)>>,
    /// Per input used as a random key: its two words.
    keys: Vec<Option<(Value, Value)>>,
    /// Per store: the running (or, for row reductions, fixed) pointer.
    out_ptrs: Vec<Variable>,
    kinds: Vec<Kind>,
    /// Per row-reducing store: one vector accumulator per unrolled step.
    vaccs: Vec<Vec<Variable>>,
    /// Per row maximum (vectorised): beside each vector accumulator, the
    /// last NaN its lanes met (else -inf), folded in at the row's end (see
    /// [`accumulate_max`]).
    vnans: Vec<Vec<Variable>>,
    /// Per row-reducing store: the scalar accumulator, starting from the
    /// output element's value.
    saccs: Vec<Option<Variable>>,
    remaining: Variable,
    /// The flat index of the next element (kernels reading positions).
    flat: Option<Variable>,
}

/// Emits the body of the kernel function into `b`, whose entry block is not
/// yet created. `trap` is the trap function (checked mode only).
pub(crate) fn emit(
    kernel: &LoopKernel,
    b: &mut FunctionBuilder,
    ptr: Type,
    trap: Option<(FuncRef, u32)>,
    wide: &[(UnaryOp, FuncRef)],
) -> Result<(), String> {
    kernel.validate()?;
    let permuted = row_axis_innermost(kernel);
    let kernel = permuted.as_ref().unwrap_or(kernel);
    let n_in = kernel.inputs.len();
    let Frame { start, end, exit, bases, checks } = enter(b, ptr, n_in, kernel.outputs.len(), trap);
    let read = (0..n_in).map(|n| kernel.body.contains(&Expr::Input(n))).collect();
    let key = (0..n_in)
        .map(|n| kernel.body.iter().any(|e| matches!(e, Expr::Random { key, .. } if *key == n)))
        .collect();
    let g = Gen { kernel, ptr, bases, read, key, checks, exit, wide };

    if kernel.elements() > 0 {
        if g.checks.is_some() {
            // A first pass only tests addresses, so a failing call writes nothing.
            let real = b.create_block();
            emit_rows(&g, b, start, end, true, real);
            b.switch_to_block(real);
        }
        emit_rows(&g, b, start, end, false, exit);
    } else {
        b.ins().jump(exit, &[]);
    }
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    Ok(())
}

/// The loop over rows of the innermost (merged) axis, jumping to `done` at
/// the end. A `dry` pass only performs the bounds checks (scalar loop, no
/// loads or stores).
fn emit_rows(g: &Gen, b: &mut FunctionBuilder, start: Value, end: Value, dry: bool, done: Block) {
    let k = g.kernel;
    let n_in = k.inputs.len();
    let axes = merge_axes(k);
    let (inner, outer) = axes.split_last().expect("merge_axes returns at least one axis");
    let kinds: Vec<Kind> = k
        .outputs
        .iter()
        .enumerate()
        .map(|(o, s)| match s.reduce {
            None => Kind::Plain,
            Some(r) if inner.strides[n_in + o] == 0 => Kind::Row(r),
            Some(r) => Kind::Rmw(r),
        })
        .collect();
    let vectorize = !dry
        && inner.size >= 4
        && !k.uses_position()
        && inner.strides[..n_in].iter().zip(&k.inputs).all(|(&s, op)| vector_stride(s, op.elem))
        && kinds.iter().zip(&inner.strides[n_in..]).all(|(kind, &s)| match kind {
            Kind::Plain | Kind::Rmw(_) => s == 1,
            // A row containing the first axis may be split anywhere by a
            // caller: only sequential accumulation is independent of that.
            Kind::Row(_) => !inner.first,
        });
    let unroll = match (vectorize, k.transcendentals()) {
        (false, _) => 1,
        (true, 0) if k.body.len() <= 16 => 4,
        (true, 0 | 1) => 2,
        (true, _) => 1,
    };
    let strips = if vectorize { plan_strips(g, b, inner.size, &inner.strides) } else { None };
    let ptr = g.ptr;

    let i_var = b.declare_var(ptr);
    b.def_var(i_var, start);
    let mut row = Row {
        in_ptrs: (0..n_in)
            .map(|n| (g.read[n] && inner.strides[n] != 0).then(|| b.declare_var(ptr)))
            .collect(),
        hoisted: vec![None; n_in],
        keys: vec![None; n_in],
        out_ptrs: k.outputs.iter().map(|_| b.declare_var(ptr)).collect(),
        vaccs: kinds
            .iter()
            .map(|kind| match kind {
                Kind::Row(_) if vectorize => (0..unroll).map(|_| b.declare_var(types::F32X4)).collect(),
                _ => vec![],
            })
            .collect(),
        vnans: kinds
            .iter()
            .map(|kind| match kind {
                Kind::Row(Reduce::Max) if vectorize => {
                    (0..unroll).map(|_| b.declare_var(types::F32X4)).collect()
                }
                _ => vec![],
            })
            .collect(),
        saccs: kinds
            .iter()
            .map(|kind| (matches!(kind, Kind::Row(_)) && !dry).then(|| b.declare_var(types::F32)))
            .collect(),
        kinds,
        remaining: b.declare_var(ptr),
        flat: (k.uses_position() && !dry).then(|| b.declare_var(ptr)),
    };
    let head = b.create_block();
    let body = b.create_block();
    let next = b.create_block();
    let row_end_var = b.declare_var(ptr);
    b.ins().jump(head, &[]);

    b.switch_to_block(head);
    let i = b.use_var(i_var);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, i, end);
    b.ins().brif(more, body, &[], done, &[]);

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
    if let Some(flat) = row.flat {
        b.def_var(flat, i);
    }

    // Decompose the row index into outer-axis indices (innermost first).
    let mut outer_idx = vec![None; outer.len()];
    let mut rest = row_idx;
    for (a, axis) in outer.iter().enumerate().rev() {
        let size = b.ins().iconst(ptr, axis.size as i64);
        outer_idx[a] = Some(b.ins().urem(rest, size));
        rest = b.ins().udiv(rest, size);
    }
    // The address of the row's first element in buffer `buf`.
    let row_ptr = |b: &mut FunctionBuilder, buf: usize, offset: isize| -> Value {
        let mut off = b.ins().imul_imm_s(col, inner.strides[buf] as i64);
        for (a, axis) in outer.iter().enumerate() {
            let s = axis.strides[buf];
            if s != 0 {
                let idx = outer_idx[a].expect("every outer index is computed");
                let term = b.ins().imul_imm_s(idx, s as i64);
                off = b.ins().iadd(off, term);
            }
        }
        let off = b.ins().iadd_imm_s(off, offset as i64);
        let bytes = b.ins().ishl_imm_u(off, 2);
        b.ins().iadd(g.bases[buf], bytes)
    };
    for (inp, op) in k.inputs.iter().enumerate() {
        if g.key[inp] {
            let bytes = b.ins().iconst(ptr, (op.offset as i64).wrapping_mul(4));
            let p = b.ins().iadd(g.bases[inp], bytes);
            g.check(b, inp, p, 0, 2);
            if !dry {
                let k0 = b.ins().load(types::I32, g.load_flags(), p, 0);
                let k1 = b.ins().load(types::I32, g.load_flags(), p, 4);
                row.keys[inp] = Some((k0, k1));
            }
        }
        if !g.read[inp] {
            continue;
        }
        let p = row_ptr(b, inp, op.offset);
        match row.in_ptrs[inp] {
            Some(var) => b.def_var(var, p),
            None => {
                g.check(b, inp, p, 0, 1);
                if !dry {
                    let s = g.load(b, Lanes::SCALAR, op.elem, g.load_flags(), p, 0);
                    let v = if vectorize { b.ins().splat(types::F32X4, s) } else { s };
                    row.hoisted[inp] = Some((s, v));
                }
            }
        }
    }
    for (o, st) in k.outputs.iter().enumerate() {
        let p = row_ptr(b, n_in + o, st.offset);
        b.def_var(row.out_ptrs[o], p);
        if let Kind::Row(r) = row.kinds[o] {
            g.check(b, n_in + o, p, 0, 1);
            if let Some(acc) = row.saccs[o] {
                let v = g.load(b, Lanes::SCALAR, st.elem, MemFlagsData::new().with_notrap(), p, 0);
                b.def_var(acc, v);
            }
            if !row.vaccs[o].is_empty() {
                let id = Emit { b: &mut *b, lanes: Lanes::X4 }.f(identity(r));
                for &v in row.vaccs[o].iter().chain(&row.vnans[o]) {
                    b.def_var(v, id);
                }
            }
        }
    }
    let strides = &inner.strides;

    if vectorize {
        match strips {
            Some(plan) => emit_strips(g, b, &row, strides, &plan),
            None if unroll > 1 => emit_inner(g, b, &row, strides, Lanes::X4, unroll, dry),
            None => {}
        }
        emit_inner(g, b, &row, strides, Lanes::X4, 1, dry);
        // Vector accumulators → the scalar accumulator, in a fixed order.
        for o in 0..k.outputs.len() {
            let (Kind::Row(r), Some(acc)) = (row.kinds[o], row.saccs[o]) else { continue };
            let mut e = Emit { b: &mut *b, lanes: Lanes::X4 };
            let mut v = e.b.use_var(row.vaccs[o][0]);
            for &u in &row.vaccs[o][1..] {
                let x = e.b.use_var(u);
                v = match r {
                    // Ties keep the first; NaN lanes are folded in below
                    // (an accumulator holding one keeps it here: `NaN < x`
                    // is false).
                    Reduce::Max => larger(&mut e, v, x),
                    Reduce::Sum => combine(&mut e, r, v, x),
                };
            }
            if let Some((&first, rest)) = row.vnans[o].split_first() {
                // A NaN met by any accumulator's lane makes that lane NaN.
                let mut nan = e.b.use_var(first);
                for &u in rest {
                    let x = e.b.use_var(u);
                    nan = nan_or(&mut e, x, nan);
                }
                v = combine(&mut e, r, v, nan);
            }
            let s = match r {
                // Lanes 0 and 1 against 2 and 3, then lane 0 against 1, in
                // vectors: a scalar select is a branch, which the random
                // order of a row's lanes mispredicts.
                Reduce::Max => {
                    for lanes in [[2, 3, 2, 3], [1, 1, 1, 1]] {
                        let x = e.pick_lanes(v, v, lanes);
                        v = combine(&mut e, r, v, x);
                    }
                    e.b.ins().extractlane(v, 0)
                }
                // Lane by lane, in order.
                Reduce::Sum => {
                    let mut e = Emit { b: &mut *e.b, lanes: Lanes::SCALAR };
                    let mut s = e.b.ins().extractlane(v, 0);
                    for l in 1..4u8 {
                        let x = e.b.ins().extractlane(v, l);
                        s = combine(&mut e, r, s, x);
                    }
                    s
                }
            };
            let mut e = Emit { b: &mut *b, lanes: Lanes::SCALAR };
            let a = e.b.use_var(acc);
            let a = combine(&mut e, r, a, s);
            b.def_var(acc, a);
        }
    }
    emit_inner(g, b, &row, strides, Lanes::SCALAR, 1, dry);
    for (o, st) in k.outputs.iter().enumerate() {
        if let Some(acc) = row.saccs[o] {
            let p = b.use_var(row.out_ptrs[o]);
            let a = b.use_var(acc);
            g.store(b, Lanes::SCALAR, st.elem, a, p, 0);
        }
    }
    b.ins().jump(next, &[]);

    b.switch_to_block(next);
    let row_end = b.use_var(row_end_var);
    b.def_var(i_var, row_end);
    b.ins().jump(head, &[]);
}

/// Opens a loop over the row that runs while at least `step` elements
/// remain: returns its head (the body jumps back there after taking `step`
/// off `row.remaining`) and the block after it, leaving the builder in the
/// body.
fn counted_loop(b: &mut FunctionBuilder, row: &Row, step: i64) -> (Block, Block) {
    let head = b.create_block();
    let body = b.create_block();
    let after = b.create_block();
    b.ins().jump(head, &[]);
    b.switch_to_block(head);
    let rem = b.use_var(row.remaining);
    let enough = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, rem, step);
    b.ins().brif(enough, body, &[], after, &[]);
    b.switch_to_block(body);
    (head, after)
}

/// Moves the row's running pointers (`in_ptrs`, `out_ptrs`: their values
/// at the loop body's start) on by `step` elements and takes `step` off
/// the remaining count; a row reduction's pointer stays.
fn advance(
    b: &mut FunctionBuilder,
    row: &Row,
    strides: &[isize],
    in_ptrs: &[Option<Value>],
    out_ptrs: &[Value],
    step: i64,
) {
    let n_in = in_ptrs.len();
    for (n, p) in in_ptrs.iter().enumerate() {
        if let (Some(p), Some(var)) = (p, row.in_ptrs[n]) {
            let np = b.ins().iadd_imm_s(*p, strides[n] as i64 * step * 4);
            b.def_var(var, np);
        }
    }
    for (o, p) in out_ptrs.iter().enumerate() {
        if !matches!(row.kinds[o], Kind::Row(_)) {
            let np = b.ins().iadd_imm_s(*p, strides[n_in + o] as i64 * step * 4);
            b.def_var(row.out_ptrs[o], np);
        }
    }
    let rem = b.use_var(row.remaining);
    let rem = b.ins().iadd_imm_s(rem, -step);
    b.def_var(row.remaining, rem);
}

/// One inner loop: while at least `lanes·unroll` elements remain, processes
/// that many and advances the pointers. Leaves the builder in the block
/// after the loop. `strides` are the innermost strides of every buffer.
fn emit_inner(
    g: &Gen,
    b: &mut FunctionBuilder,
    row: &Row,
    strides: &[isize],
    lanes: Lanes,
    unroll: usize,
    dry: bool,
) {
    let k = g.kernel;
    let n_in = k.inputs.len();
    let width = if lanes.is_vector() { 4 } else { 1 };
    let step = (width * unroll) as i64;
    let (head, after) = counted_loop(b, row, step);
    let in_ptrs: Vec<Option<Value>> = row.in_ptrs.iter().map(|v| v.map(|v| b.use_var(v))).collect();
    let out_ptrs: Vec<Value> = row.out_ptrs.iter().map(|&v| b.use_var(v)).collect();
    let flat = row.flat.map(|v| b.use_var(v));
    for u in 0..unroll {
        // Byte offset of this step: buffers moving along the row have stride 1 here.
        let lane_off = (u * width * 4) as i32;
        if dry {
            for (n, p) in in_ptrs.iter().enumerate() {
                if let Some(p) = p {
                    g.check(b, n, *p, 0, 1);
                }
            }
            for (o, p) in out_ptrs.iter().enumerate() {
                // Row reductions are checked once per row.
                if matches!(row.kinds[o], Kind::Row(_)) {
                    continue;
                }
                g.check(b, n_in + o, *p, 0, 1);
            }
            continue;
        }
        let vals = {
            let mut e = Emit { b: &mut *b, lanes };
            g.eval(&mut e, flat, &row.keys, |e, n| match (in_ptrs[n], row.hoisted[n]) {
                (_, Some((s, v))) => {
                    if e.lanes.is_vector() {
                        v
                    } else {
                        s
                    }
                }
                // Every other element (stride 2): two loads that end at
                // the last element read, and their even lanes.
                (Some(p), None) if e.lanes.is_vector() && strides[n] == 2 => {
                    let off = 2 * lane_off;
                    g.check(e.b, n, p, i64::from(off), 2 * width as i64 - 1);
                    let lo = e.b.ins().load(types::F32X4, g.load_flags(), p, off);
                    let hi = e.b.ins().load(types::F32X4, g.load_flags(), p, off + 12);
                    e.pick_lanes(lo, hi, [0, 2, 5, 7])
                }
                (Some(p), None) => {
                    g.check(e.b, n, p, i64::from(lane_off), width as i64);
                    g.load(e.b, lanes, k.inputs[n].elem, g.load_flags(), p, lane_off)
                }
                (None, None) => unreachable!("a read input without a pointer is hoisted"),
            })
        };
        for (o, st) in k.outputs.iter().enumerate() {
            let v = vals[st.value];
            let p = out_ptrs[o];
            match row.kinds[o] {
                Kind::Plain => {
                    g.check(b, n_in + o, p, i64::from(lane_off), width as i64);
                    g.store(b, lanes, st.elem, v, p, lane_off);
                }
                Kind::Rmw(r) => {
                    g.check(b, n_in + o, p, i64::from(lane_off), width as i64);
                    let m = g.load(b, lanes, st.elem, MemFlagsData::new().with_notrap(), p, lane_off);
                    let c = combine(&mut Emit { b: &mut *b, lanes }, r, m, v);
                    g.store(b, lanes, st.elem, c, p, lane_off);
                }
                Kind::Row(r) => {
                    let mut e = Emit { b: &mut *b, lanes };
                    match (lanes.is_vector(), row.vnans[o].get(u)) {
                        (true, Some(&nan)) => accumulate_max(&mut e, row.vaccs[o][u], nan, v),
                        (true, None) => accumulate(&mut e, r, row.vaccs[o][u], v),
                        (false, _) => {
                            let acc = row.saccs[o].expect("a row reduction has a scalar accumulator");
                            accumulate(&mut e, r, acc, v)
                        }
                    }
                }
            }
        }
    }
    if let (Some(var), Some(f)) = (row.flat, flat) {
        let nf = b.ins().iadd_imm_s(f, step);
        b.def_var(var, nf);
    }
    advance(b, row, strides, &in_ptrs, &out_ptrs, step);
    b.ins().jump(head, &[]);

    b.switch_to_block(after);
}

/// Elements per strip (see [`plan_strips`]).
const STRIP: usize = 128;

/// Elements per strip for rows shorter than [`STRIP`] (attention's softmax
/// rows); shorter rows stay inline.
const SHORT_STRIP: usize = 64;

/// How a row is evaluated in strips of [`STRIP`] elements (or
/// [`SHORT_STRIP`] for shorter rows) when the body
/// computes functions that [`super::wide`] has array functions for. The
/// body's exprs are cut into segments: a call to an array function ends a
/// segment, and an expr belongs to the segment after the last call its
/// operands depend on. Per strip, segment 0 runs as an f32x4 loop over the
/// strip, then the calls of level 1 each process the whole strip, then
/// segment 1, and so on. Values that cross segments (the calls' operands
/// and results, and values later segments read) live in stack arrays of one
/// strip; inputs and constants are read again wherever they are used.
struct StripPlan {
    /// Per expr: its segment (the calls: the segment their result is first
    /// available in; inputs and constants: 0).
    level: Vec<usize>,
    /// Per expr: the array function computing it, for the calls.
    call: Vec<Option<FuncRef>>,
    /// Per expr: its stack array, for values kept across segments.
    slot: Vec<Option<StackSlot>>,
    /// Per output: the segment that stores it.
    store_at: Vec<usize>,
    /// The last segment.
    last: usize,
    /// Elements per strip.
    len: usize,
}

/// Plans the strips of a kernel whose rows (of `row` elements, innermost
/// `strides`) take the f32x4 loops, or `None` when no array function
/// applies or the rows are shorter than a strip.
fn plan_strips(g: &Gen, b: &mut FunctionBuilder, row: usize, strides: &[isize]) -> Option<StripPlan> {
    let k = g.kernel;
    let len = if row >= STRIP { STRIP } else { SHORT_STRIP };
    if g.wide.is_empty() || row < len || strides.contains(&2) {
        return None;
    }
    let n = k.body.len();
    let call: Vec<Option<FuncRef>> = k
        .body
        .iter()
        .map(|e| match e {
            Expr::Unary(op, _) => g.wide.iter().find(|(o, _)| o == op).map(|&(_, f)| f),
            _ => None,
        })
        .collect();
    if call.iter().all(Option::is_none) {
        return None;
    }
    let mut level = vec![0usize; n];
    for (i, e) in k.body.iter().enumerate() {
        let args = operands(e);
        let top = args.iter().map(|&a| level[a]).max().unwrap_or(0);
        level[i] = if call[i].is_some() { top + 1 } else { top };
    }
    // An output may be the memory of an input read with the same offset
    // and strides (an in-place update): it is stored in the last segment,
    // after every read of the strip's inputs, so no segment reads an
    // element this kernel has already overwritten. (Within a segment each
    // group of lanes loads before it stores, and an aliased output maps
    // every element to the one its input read.)
    let top = level.iter().copied().max().unwrap_or(0);
    let store_at: Vec<usize> = k
        .outputs
        .iter()
        .map(|st| {
            let aliases = k.inputs.iter().any(|op| op.offset == st.offset && op.strides == st.strides);
            if aliases {
                top
            } else {
                level[st.value]
            }
        })
        .collect();
    // Values needed after their own segment: operands of calls (unless an
    // input the call can read in place), values read by a later segment,
    // and stored values whose store comes later.
    let mut keep = vec![false; n];
    for (i, e) in k.body.iter().enumerate() {
        for &a in &operands(e) {
            let later = level[i] > level[a];
            let direct = call[i].is_some() && direct_input(g, strides, a).is_some();
            let remat = matches!(k.body[a], Expr::Input(_) | Expr::Const(_));
            // A call reads a kept copy of an input or constant it cannot
            // take in place; computed values read later are kept.
            if (call[i].is_some() && !direct && remat) || (later && !remat) {
                keep[a] = true;
            }
        }
        if call[i].is_some() {
            keep[i] = true;
        }
    }
    for (o, st) in k.outputs.iter().enumerate() {
        if store_at[o] > level[st.value] && !matches!(k.body[st.value], Expr::Input(_) | Expr::Const(_)) {
            keep[st.value] = true;
        }
    }
    let slot = keep
        .iter()
        .map(|&kept| {
            kept.then(|| {
                b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    (len * 4) as u32,
                    6,
                ))
            })
        })
        .collect();
    Some(StripPlan { level, call, slot, store_at, last: top, len })
}

/// The exprs `e` reads.
fn operands(e: &Expr) -> Vec<usize> {
    match *e {
        Expr::Unary(_, a) | Expr::Cast { arg: a, .. } => vec![a],
        Expr::Binary(_, a, b) | Expr::Compare(_, a, b) => vec![a, b],
        Expr::Select(c, a, b) => vec![c, a, b],
        Expr::Input(_) | Expr::Const(_) | Expr::AxisIndex(_) | Expr::Random { .. } => vec![],
    }
}

/// The input expr `a` reads when an array function can take its row
/// directly: f32 elements moving along the row (innermost stride 1 in
/// `strides`, the merged axes' strides of every buffer).
fn direct_input(g: &Gen, strides: &[isize], a: usize) -> Option<usize> {
    match g.kernel.body[a] {
        Expr::Input(m) if g.kernel.inputs[m].elem == Elem::F32 && strides[m] == 1 => Some(m),
        _ => None,
    }
}

/// The strip loop: while at least a strip's elements of the row remain,
/// evaluates them segment by segment (see [`StripPlan`]) and advances the
/// pointers. Leaves the builder in the block after the loop.
///
/// Checked kernels do not check addresses here: the dry pass before has
/// tested every element the strips read and write.
fn emit_strips(g: &Gen, b: &mut FunctionBuilder, row: &Row, strides: &[isize], plan: &StripPlan) {
    let k = g.kernel;
    let ptr = g.ptr;
    let len = plan.len as i64;
    let (head, after) = counted_loop(b, row, len);
    let in_ptrs: Vec<Option<Value>> = row.in_ptrs.iter().map(|v| v.map(|v| b.use_var(v))).collect();
    let out_ptrs: Vec<Value> = row.out_ptrs.iter().map(|&v| b.use_var(v)).collect();
    let slots: Vec<Option<Value>> =
        plan.slot.iter().map(|s| s.map(|s| b.ins().stack_addr(ptr, s, 0))).collect();
    let strip = b.ins().iconst(ptr, len);
    for seg in 0..=plan.last {
        if seg > 0 {
            for (i, e) in k.body.iter().enumerate() {
                let (Some(f), Expr::Unary(_, a)) = (plan.call[i], e) else { continue };
                if plan.level[i] != seg {
                    continue;
                }
                let src = match (slots[*a], direct_input(g, strides, *a)) {
                    (Some(p), _) => p,
                    (None, Some(m)) => in_ptrs[m].expect("a direct operand moves along the row"),
                    (None, None) => unreachable!("a call's operand is kept or read in place"),
                };
                let dst = slots[i].expect("a call's result is kept");
                b.ins().call(f, &[src, dst, strip]);
            }
        }
        emit_segment(g, b, row, plan, seg, &in_ptrs, &out_ptrs, &slots);
    }
    advance(b, row, strides, &in_ptrs, &out_ptrs, len);
    b.ins().jump(head, &[]);

    b.switch_to_block(after);
}

/// One segment of a strip: an f32x4 loop over the strip computing the
/// segment's exprs, storing its outputs and the values kept for later.
#[allow(clippy::too_many_arguments)]
fn emit_segment(
    g: &Gen,
    b: &mut FunctionBuilder,
    row: &Row,
    plan: &StripPlan,
    seg: usize,
    in_ptrs: &[Option<Value>],
    out_ptrs: &[Value],
    slots: &[Option<Value>],
) {
    let k = g.kernel;
    let n = k.body.len();
    let computed_here = |i: usize| {
        plan.level[i] == seg
            && plan.call[i].is_none()
            && !matches!(k.body[i], Expr::Input(_) | Expr::Const(_))
    };
    // What this segment writes: its stores, and the kept values it computes
    // (at segment 0 also the kept inputs and constants calls read).
    let stores: Vec<usize> = (0..k.outputs.len()).filter(|&o| plan.store_at[o] == seg).collect();
    let kept: Vec<usize> = (0..n)
        .filter(|&i| {
            plan.slot[i].is_some()
                && plan.call[i].is_none()
                && (computed_here(i) || (seg == 0 && matches!(k.body[i], Expr::Input(_) | Expr::Const(_))))
        })
        .collect();
    if stores.is_empty() && kept.is_empty() {
        return;
    }
    let mut need = vec![false; n];
    for &o in &stores {
        need[k.outputs[o].value] = true;
    }
    for &i in &kept {
        need[i] = true;
    }
    for i in (0..n).rev() {
        if need[i] && computed_here(i) {
            for a in operands(&k.body[i]) {
                need[a] = true;
            }
        }
    }

    let ptr = g.ptr;
    // A row reduction accumulates the strip into a vector of its own, live
    // only in this loop, and adds it to the row's accumulator after it: an
    // accumulator live across the strip's calls is kept on the stack, and
    // its loads and stores chained every step (softmax's row sum ran at
    // 0.9 Gelem/s so, against 1.2 inline).
    let mut partial: Vec<Option<Variable>> = vec![None; k.outputs.len()];
    for &o in &stores {
        if let Kind::Row(r) = row.kinds[o] {
            let acc = b.declare_var(types::F32X4);
            let id = Emit { b: &mut *b, lanes: Lanes::X4 }.f(identity(r));
            b.def_var(acc, id);
            partial[o] = Some(acc);
        }
    }
    let head = b.create_block();
    let after = b.create_block();
    let off_var = b.declare_var(ptr);
    let zero = b.ins().iconst(ptr, 0);
    b.def_var(off_var, zero);
    b.ins().jump(head, &[]);
    b.switch_to_block(head);
    let off = b.use_var(off_var);
    let flags = MemFlagsData::new().with_notrap();
    // Exprs this segment does not need keep a placeholder (never read).
    let mut vals: Vec<Value> = vec![off; n];
    let mut masks: Vec<Option<Mask>> = vec![None; n];
    for i in 0..n {
        if !need[i] {
            continue;
        }
        let mut e = Emit { b: &mut *b, lanes: Lanes::X4 };
        let (v, m) = match (k.body[i], slots[i]) {
            (Expr::Input(m), _) => match (in_ptrs[m], row.hoisted[m]) {
                (_, Some((_, v))) => (v, None),
                (Some(p), None) => {
                    let at = e.b.ins().iadd(p, off);
                    (g.load(e.b, Lanes::X4, k.inputs[m].elem, g.load_flags(), at, 0), None)
                }
                (None, None) => unreachable!("a read input without a pointer is hoisted"),
            },
            (Expr::Const(c), _) => (e.f(c), None),
            (_, Some(p)) if !computed_here(i) => {
                let at = e.b.ins().iadd(p, off);
                (e.b.ins().load(types::F32X4, flags, at, 0), None)
            }
            (expr, _) => g.eval_op(&mut e, &expr, &vals, &masks, None, &row.keys),
        };
        vals[i] = v;
        masks[i] = m;
    }
    for &o in &stores {
        let st = &k.outputs[o];
        let v = vals[st.value];
        match row.kinds[o] {
            Kind::Plain => {
                let at = b.ins().iadd(out_ptrs[o], off);
                g.store(b, Lanes::X4, st.elem, v, at, 0);
            }
            Kind::Rmw(r) => {
                let at = b.ins().iadd(out_ptrs[o], off);
                let m = g.load(b, Lanes::X4, st.elem, flags, at, 0);
                let c = combine(&mut Emit { b: &mut *b, lanes: Lanes::X4 }, r, m, v);
                g.store(b, Lanes::X4, st.elem, c, at, 0);
            }
            // Into the segment's own accumulator (see above).
            Kind::Row(r) => {
                let acc = partial[o].expect("a row reduction stored here has a partial sum");
                let a = b.use_var(acc);
                let c = combine(&mut Emit { b: &mut *b, lanes: Lanes::X4 }, r, a, v);
                b.def_var(acc, c);
            }
        }
    }
    for &i in &kept {
        let v = vals[i];
        let at = b.ins().iadd(slots[i].expect("kept"), off);
        b.ins().store(flags, v, at, 0);
    }
    let next = b.ins().iadd_imm_s(off, 16);
    b.def_var(off_var, next);
    let more = b.ins().icmp_imm_u(IntCC::UnsignedLessThan, next, (plan.len * 4) as i64);
    b.ins().brif(more, head, &[], after, &[]);
    b.switch_to_block(after);
    for (o, acc) in partial.iter().enumerate() {
        if let (Some(acc), Kind::Row(r)) = (acc, row.kinds[o]) {
            let p = b.use_var(*acc);
            let total = b.use_var(row.vaccs[o][0]);
            let c = combine(&mut Emit { b: &mut *b, lanes: Lanes::X4 }, r, total, p);
            b.def_var(row.vaccs[o][0], c);
        }
    }
}
