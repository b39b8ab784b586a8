//! Window kernels: pooling, resizing, their gradients and argmax, compiled
//! to one Cranelift function each with every shape, stride and window
//! parameter baked in.
//!
//! The function has the loop kernels' C signature
//! `fn(inputs: *const *const f32, outputs: *const *mut f32, start: usize, end: usize, lens: *const usize)`
//! with exactly one output, and computes the output's rows `start..end`
//! along its first axis (the batch axis `N` for every op but an argmax over
//! axis 0 of a rank-1 operand, whose output is a scalar: one row). Buffers
//! are contiguous row-major; i32 results (argmax) are stored as i32 bit
//! patterns in their 4-byte slots. `lens` holds the element count of every
//! input and then the output; only checked kernels read it.
//!
//! Semantics follow the reference interpreter (`ir::interp::window` and
//! `reduce::argmax`): max pooling, resize, resize_grad and argmax give the
//! same bits as the interpreter run in f32; average pooling too (taps are
//! summed in the same order); the pooling gradients may add overlapping
//! contributions in another order.
//!
//! Code shape. The loops run over the channel planes of the rows, then over
//! the output positions of each spatial axis. For pooling, the output
//! positions of every axis are split at compile time into runs whose windows
//! have the same in-bounds tap range (the interior, and a few border
//! positions), and each combination of runs gets its own loop nest with the
//! taps unrolled at constant offsets from running pointers: no tap is ever
//! tested against the padding. When the innermost stride is 1, four
//! neighbouring outputs are computed at once in f32x4 lanes. Max uses the
//! `maxss`/`maxps` pattern with NaNs tracked in a separate mask; the
//! gradients zero their rows and then scatter-add. Resize computes each
//! axis's two neighbours and weights once per position of that axis with the
//! interpreter's f32 arithmetic. Argmax runs along the axis for four
//! neighbouring lanes at once where the lanes are contiguous. Checked kernels
//! test every load and store against the buffer lengths in `lens` and call
//! the trap function on the first violation, then return.

use super::checks::{enter, Checks, Frame, Site};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, Block, Endianness, FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::approx::{Emit, Lanes, Mask};
use crate::ir::op::PoolKind;

/// What a window kernel computes.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowOp {
    /// `Op::Pool`: input `x: [N, C, *S]`.
    Pool { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// `Op::PoolGrad`: inputs `x: [N, C, *S]`, `dy: [N, C, *S']`.
    PoolGrad { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// `Op::Resize` (bilinear, half-pixel centres): input `[N, C, *S]`.
    Resize { size: Vec<usize> },
    /// `Op::ResizeGrad`: input `dy: [N, C, *S']`, output `[N, C, *size]`.
    ResizeGrad { size: Vec<usize> },
    /// `Op::ArgMax`: the index of the first maximum along `axis` (i32).
    ArgMax { axis: usize },
}

/// A window kernel over contiguous buffers of known shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowKernel {
    /// The function's symbol name (unique within one [`super::Jit`]).
    pub name: String,
    pub op: WindowOp,
    /// The operands' shapes, in the IR op's argument order.
    pub inputs: Vec<Vec<usize>>,
    /// The result's shape.
    pub output: Vec<usize>,
}

impl WindowKernel {
    /// Element count of input `i`.
    pub fn input_len(&self, i: usize) -> usize {
        self.inputs.get(i).map_or(0, |s| s.iter().product())
    }

    /// Element count of the output.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// The number of rows the function's `start..end` range indexes: the
    /// output's first dimension (1 for a scalar output).
    pub fn rows(&self) -> usize {
        self.output.first().copied().unwrap_or(1)
    }
}

/// Window taps of one output position processed without a loop; larger
/// windows loop over their outer tap axes.
const UNROLL_TAPS: usize = 64;

/// A run of consecutive output positions along one spatial axis whose
/// windows have the same in-bounds tap range `lo..hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    start: usize,
    count: usize,
    lo: usize,
    hi: usize,
}

/// The geometry of a pooling op with every derived quantity.
struct PoolGeo {
    /// Spatial sizes of the output.
    os: Vec<usize>,
    stride: Vec<usize>,
    /// Element strides of the spatial axes within one input / output plane.
    xstr: Vec<i64>,
    ostr: Vec<i64>,
    /// Per spatial axis: the output positions grouped by tap range.
    segs: Vec<Vec<Seg>>,
    /// Elements per channel plane of the input and of the output.
    in_plane: usize,
    out_plane: usize,
    /// Channels per row (planes per batch element).
    channels: usize,
    window_size: usize,
}

/// Row-major element strides of `shape`.
fn strides_of(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![0i64; shape.len()];
    let mut acc = 1i64;
    for a in (0..shape.len()).rev() {
        s[a] = acc;
        acc = acc.saturating_mul(shape[a] as i64);
    }
    s
}

/// Output positions along one axis grouped into runs of equal in-bounds
/// tap ranges: tap `k` of output `o` reads input `o*stride + k - lo`.
fn segments(size: usize, out: usize, window: usize, stride: usize, lo: usize) -> Vec<Seg> {
    let mut segs: Vec<Seg> = Vec::new();
    for o in 0..out {
        let k_lo = lo.saturating_sub(o * stride).min(window);
        let k_hi = (size + lo).saturating_sub(o * stride).min(window).max(k_lo);
        match segs.last_mut() {
            Some(s) if s.lo == k_lo && s.hi == k_hi => s.count += 1,
            _ => segs.push(Seg { start: o, count: 1, lo: k_lo, hi: k_hi }),
        }
    }
    segs
}

/// Byte counts must fit the 32-bit immediate offsets of loads and stores.
fn check_size(what: &str, elements: usize) -> Result<(), String> {
    if elements.saturating_mul(4) > i32::MAX as usize {
        return Err(format!("{what} of {elements} elements is too large"));
    }
    Ok(())
}

/// `[N, C, *S]` operand shape check; returns S.
fn image_shape<'a>(what: &str, shape: &'a [usize], spatial: usize) -> Result<&'a [usize], String> {
    if shape.len() < 3 || shape.len() != spatial + 2 {
        return Err(format!("{what} {shape:?} is not [N, C, *spatial] with {spatial} spatial dimensions"));
    }
    Ok(&shape[2..])
}

impl PoolGeo {
    fn new(
        k: &WindowKernel,
        window: &[usize],
        stride: &[usize],
        padding: &[(usize, usize)],
    ) -> Result<PoolGeo, String> {
        let s = window.len();
        if stride.len() != s || padding.len() != s {
            return Err("window, stride and padding must have one entry per spatial dimension".into());
        }
        let x = k.inputs.first().ok_or("pooling takes an input")?;
        let xs = image_shape("input", x, s)?.to_vec();
        let mut os = Vec::with_capacity(s);
        for d in 0..s {
            let padded = xs[d].checked_add(padding[d].0).and_then(|p| p.checked_add(padding[d].1));
            let padded = padded.ok_or("the padding is too large")?;
            if stride[d] == 0 || window[d] == 0 || padded < window[d] {
                return Err(format!(
                    "a window of {} with stride {} does not fit size {} padded by {:?}",
                    window[d], stride[d], xs[d], padding[d]
                ));
            }
            os.push((padded - window[d]) / stride[d] + 1);
        }
        let segs =
            (0..s).map(|d| segments(xs[d], os[d], window[d], stride[d], padding[d].0)).collect::<Vec<_>>();
        let geo = PoolGeo {
            xstr: strides_of(&xs),
            ostr: strides_of(&os),
            in_plane: xs.iter().product(),
            out_plane: os.iter().product(),
            channels: x[1],
            window_size: window.iter().product(),
            os,
            stride: stride.to_vec(),
            segs,
        };
        check_size("an input plane", geo.in_plane)?;
        check_size("an output plane", geo.out_plane)?;
        if geo.window_size > i32::MAX as usize {
            return Err("the window is too large".into());
        }
        Ok(geo)
    }

    /// The output shape `[N, C, *S']`.
    fn out_shape(&self, k: &WindowKernel) -> Vec<usize> {
        let mut out = k.inputs[0][..2].to_vec();
        out.extend_from_slice(&self.os);
        out
    }

    /// The stream of window origins in the input (or a same-shaped buffer):
    /// output position `o` starts at input `o*stride - lo`.
    fn window_stream(&self, padding: &[(usize, usize)]) -> Stream {
        Stream {
            mul: (0..self.os.len()).map(|d| self.stride[d] as i64 * self.xstr[d] * 4).collect(),
            add: (0..self.os.len()).map(|d| -(padding[d].0 as i64) * self.xstr[d] * 4).collect(),
        }
    }

    /// The stream of output positions in an output-shaped buffer.
    fn point_stream(&self) -> Stream {
        Stream { mul: self.ostr.iter().map(|s| s * 4).collect(), add: vec![0; self.os.len()] }
    }
}
/// A pointer that moves with the output position: along spatial axis `d`,
/// position `o` is at byte offset `o * mul[d] + add[d]` from the plane start.
struct Stream {
    mul: Vec<i64>,
    add: Vec<i64>,
}

/// Everything the emitters share.
struct Gen {
    ptr: Type,
    n_inputs: usize,
    /// Base pointers: inputs, then the output.
    bases: Vec<Value>,
    checks: Option<Checks>,
    /// The block a failed bounds check jumps to (returns at once).
    exit: Block,
}

impl Gen {
    /// The buffer number of the output.
    fn out(&self) -> usize {
        self.n_inputs
    }

    /// In checked mode, verifies that `width` elements at `addr + offset`
    /// lie inside buffer `buf`; on failure calls the trap function and
    /// returns from the kernel.
    fn check(&self, b: &mut FunctionBuilder, buf: usize, addr: Value, offset: i32, width: i64) {
        let Some(checks) = &self.checks else { return };
        let at = b.ins().iadd_imm_s(addr, i64::from(offset));
        let site = Site { buf, base: self.bases[buf], at, width };
        checks.emit(b, self.ptr, self.exit, site);
    }

    /// Loads a value of type `ty` (f32, i32 or their x4 vectors) from
    /// buffer `buf` at `addr + offset`, checked in checked mode.
    fn load(&self, b: &mut FunctionBuilder, ty: Type, buf: usize, addr: Value, offset: i32) -> Value {
        self.check(b, buf, addr, offset, i64::from(ty.bytes() / 4));
        let mut flags = MemFlagsData::new().with_notrap();
        if buf < self.n_inputs {
            flags = flags.with_readonly();
            // In checked mode loads must stay below their bounds check.
            if self.checks.is_none() {
                flags = flags.with_can_move();
            }
        }
        b.ins().load(ty, flags, addr, offset)
    }

    /// Loads input tap values: one f32, four consecutive ones (`stride` 1),
    /// or for `stride` 2 the four elements at `addr + offset + 0, 2, 4, 6`,
    /// from two overlapping vectors (elements 0..4 and 3..7, so no element
    /// past the last one needed is read) combined by one shufps.
    fn load_taps(
        &self,
        b: &mut FunctionBuilder,
        lanes: Lanes,
        stride: usize,
        addr: Value,
        offset: i32,
    ) -> Value {
        if !lanes.is_vector() || stride == 1 {
            return self.load(b, lanes.float, 0, addr, offset);
        }
        let lo = self.load(b, types::I8X16, 0, addr, offset);
        let hi = self.load(b, types::I8X16, 0, addr, offset + 12);
        // Lanes 0 and 2 of `lo`, lanes 1 and 3 of `hi`.
        let bytes: Vec<u8> = [0u8, 2, 5, 7].iter().flat_map(|&l| (0..4).map(move |i| l * 4 + i)).collect();
        let mask = b.func.dfg.immediates.push(bytes.as_slice().into());
        let v = b.ins().shuffle(lo, hi, mask);
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        b.ins().bitcast(types::F32X4, flags, v)
    }

    /// Stores `v` to the output at `addr + offset`, checked in checked mode.
    fn store(&self, b: &mut FunctionBuilder, v: Value, addr: Value, offset: i32) {
        let lanes = b.func.dfg.value_type(v).lane_count();
        self.check(b, self.out(), addr, offset, i64::from(lanes));
        b.ins().store(MemFlagsData::new().with_notrap(), v, addr, offset);
    }

    /// A pointer variable holding `v`.
    fn var(&self, b: &mut FunctionBuilder, v: Value) -> Variable {
        let var = b.declare_var(self.ptr);
        b.def_var(var, v);
        var
    }
}

/// A loop that runs while `rem ≥ unit`, subtracting `unit` and advancing
/// pointer variables by constant steps after each iteration.
struct Counted {
    head: Block,
    after: Block,
    rem: Variable,
    unit: i64,
}

impl Counted {
    /// Emits the loop test and leaves the builder in the loop body.
    fn begin(b: &mut FunctionBuilder, rem: Variable, unit: i64) -> Counted {
        let (head, body, after) = (b.create_block(), b.create_block(), b.create_block());
        b.ins().jump(head, &[]);
        b.switch_to_block(head);
        let r = b.use_var(rem);
        let enough = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, r, unit);
        b.ins().brif(enough, body, &[], after, &[]);
        b.switch_to_block(body);
        Counted { head, after, rem, unit }
    }

    /// Closes the body and leaves the builder after the loop.
    fn end(self, b: &mut FunctionBuilder, steps: &[(Variable, i64)]) {
        for &(var, step) in steps {
            let v = b.use_var(var);
            let v = b.ins().iadd_imm_s(v, step);
            b.def_var(var, v);
        }
        let r = b.use_var(self.rem);
        let r = b.ins().iadd_imm_s(r, -self.unit);
        b.def_var(self.rem, r);
        b.ins().jump(self.head, &[]);
        b.switch_to_block(self.after);
    }
}

/// Loops over the channel planes of rows `start..end`: `per_row` planes per
/// row; for each `(buffer, plane_bytes)` a pointer starting at that buffer's
/// first plane of row `start` and advancing by `plane_bytes` per plane.
/// `body` gets the plane pointers.
fn for_planes(
    g: &Gen,
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    per_row: usize,
    bufs: &[(usize, i64)],
    body: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) {
    let rows = b.ins().isub(end, start);
    let planes = b.ins().imul_imm_s(rows, per_row as i64);
    let first = b.ins().imul_imm_s(start, per_row as i64);
    let vars: Vec<Variable> = bufs
        .iter()
        .map(|&(buf, bytes)| {
            let off = b.ins().imul_imm_s(first, bytes);
            let p = b.ins().iadd(g.bases[buf], off);
            g.var(b, p)
        })
        .collect();
    let rem = g.var(b, planes);
    let lp = Counted::begin(b, rem, 1);
    let ptrs: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
    body(b, &ptrs);
    let steps: Vec<(Variable, i64)> = vars.iter().copied().zip(bufs.iter().map(|&(_, s)| s)).collect();
    lp.end(b, &steps);
}

/// Sets output elements of rows `start..end` (`row_len` elements each) to 0.
fn zero_rows(g: &Gen, b: &mut FunctionBuilder, start: Value, end: Value, row_len: usize) {
    let rows = b.ins().isub(end, start);
    let count = b.ins().imul_imm_s(rows, row_len as i64);
    let first = b.ins().imul_imm_s(start, row_len as i64 * 4);
    let p = b.ins().iadd(g.bases[g.out()], first);
    let p = g.var(b, p);
    let rem = g.var(b, count);
    for (unit, lanes) in [(16, Lanes::X4), (4, Lanes::X4), (1, Lanes::SCALAR)] {
        let lp = Counted::begin(b, rem, unit);
        let zero = Emit { b: &mut *b, lanes }.f(0.0);
        let at = b.use_var(p);
        for u in 0..unit / i64::from(lanes.float.lane_count()) {
            g.store(b, zero, at, (u * 16) as i32);
        }
        lp.end(b, &[(p, unit * 4)]);
    }
}

/// The leaf of a spatial loop nest: gets the stream pointers of one output
/// position (or four consecutive ones for vector lanes) and the in-bounds tap
/// range along every spatial axis.
type Leaf<'a> = dyn FnMut(&mut FunctionBuilder, &[Value], &[(usize, usize)], Lanes) + 'a;

/// Emits the loops over the output positions of spatial axes `d..`, one loop
/// nest per combination of tap-range segments, so that no tap is ever tested
/// for the padding. Along the innermost axis, when `vector` is set, runs of
/// four positions are given to the leaf as f32x4 lanes.
#[allow(clippy::too_many_arguments)]
fn spatial(
    g: &Gen,
    b: &mut FunctionBuilder,
    segs: &[Vec<Seg>],
    streams: &[Stream],
    d: usize,
    ptrs: &[Value],
    ranges: &mut Vec<(usize, usize)>,
    vector: bool,
    leaf: &mut Leaf,
) {
    let last = d + 1 == segs.len();
    for seg in &segs[d] {
        let at = |b: &mut FunctionBuilder, o: usize| -> Vec<Value> {
            ptrs.iter()
                .zip(streams)
                .map(|(&p, s)| b.ins().iadd_imm_s(p, o as i64 * s.mul[d] + s.add[d]))
                .collect()
        };
        ranges.push((seg.lo, seg.hi));
        let step = |unit: i64| -> Vec<i64> { streams.iter().map(|s| s.mul[d] * unit).collect() };
        let mut done = 0;
        if last && vector && seg.count >= 4 {
            let p = at(b, seg.start);
            let vars: Vec<Variable> = p.iter().map(|&v| g.var(b, v)).collect();
            let n = b.ins().iconst(g.ptr, (seg.count / 4 * 4) as i64);
            let rem = g.var(b, n);
            let lp = Counted::begin(b, rem, 4);
            let cur: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
            leaf(b, &cur, ranges, Lanes::X4);
            let steps: Vec<(Variable, i64)> = vars.iter().copied().zip(step(4)).collect();
            lp.end(b, &steps);
            done = seg.count / 4 * 4;
        }
        let left = seg.count - done;
        if left <= 3 {
            for o in seg.start + done..seg.start + seg.count {
                let p = at(b, o);
                if last {
                    leaf(b, &p, ranges, Lanes::SCALAR);
                } else {
                    spatial(g, b, segs, streams, d + 1, &p, ranges, vector, leaf);
                }
            }
        } else {
            let p = at(b, seg.start + done);
            let vars: Vec<Variable> = p.iter().map(|&v| g.var(b, v)).collect();
            let n = b.ins().iconst(g.ptr, left as i64);
            let rem = g.var(b, n);
            let lp = Counted::begin(b, rem, 1);
            let cur: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
            if last {
                leaf(b, &cur, ranges, Lanes::SCALAR);
            } else {
                spatial(g, b, segs, streams, d + 1, &cur, ranges, vector, leaf);
            }
            let steps: Vec<(Variable, i64)> = vars.iter().copied().zip(step(1)).collect();
            lp.end(b, &steps);
        }
        ranges.pop();
    }
}

/// The number of taps in the given per-axis ranges.
fn tap_count(ranges: &[(usize, usize)]) -> usize {
    ranges.iter().map(|&(lo, hi)| hi - lo).product()
}

/// Visits every in-bounds tap of a window in row-major order: `tap` gets a
/// pointer and a constant byte offset. Trailing axes with at most
/// [`UNROLL_TAPS`] taps together are unrolled; axes before them loop.
fn for_taps(
    g: &Gen,
    b: &mut FunctionBuilder,
    p: Value,
    ranges: &[(usize, usize)],
    strides: &[i64],
    tap: &mut dyn FnMut(&mut FunctionBuilder, Value, i32),
) {
    if ranges.is_empty() {
        tap(b, p, 0);
        return;
    }
    if tap_count(ranges) <= UNROLL_TAPS {
        let mut k: Vec<usize> = ranges.iter().map(|r| r.0).collect();
        loop {
            let off: i64 = k.iter().zip(strides).map(|(&k, &s)| k as i64 * s * 4).sum();
            tap(b, p, off as i32);
            let mut a = ranges.len();
            loop {
                if a == 0 {
                    return;
                }
                a -= 1;
                k[a] += 1;
                if k[a] < ranges[a].1 {
                    break;
                }
                k[a] = ranges[a].0;
            }
        }
    }
    let (lo, hi) = ranges[0];
    let start = b.ins().iadd_imm_s(p, lo as i64 * strides[0] * 4);
    let var = g.var(b, start);
    let n = b.ins().iconst(g.ptr, (hi - lo) as i64);
    let rem = g.var(b, n);
    let lp = Counted::begin(b, rem, 1);
    let cur = b.use_var(var);
    for_taps(g, b, cur, &ranges[1..], &strides[1..], tap);
    lp.end(b, &[(var, strides[0] * 4)]);
}

/// The mask type of a float comparison on `lanes`.
fn mask_type(lanes: Lanes) -> Type {
    if lanes.is_vector() {
        types::I32X4
    } else {
        types::I8
    }
}

/// The maximum of a window's in-bounds taps as the interpreter's `max_nan`
/// fold computes it: the first of equal values wins (`x` replaces the
/// running maximum only when greater: one maxss/maxps per tap), and any NaN
/// makes the result NaN (tracked as a mask, one unordered test per pair of
/// taps). The window must have at least one tap.
fn window_max(
    g: &Gen,
    b: &mut FunctionBuilder,
    p: Value,
    (ranges, xstr): (&[(usize, usize)], &[i64]),
    lanes: Lanes,
    stride: usize,
) -> Value {
    let m = b.declare_var(lanes.float);
    let nan = b.declare_var(mask_type(lanes));
    let minus_inf = Emit { b: &mut *b, lanes }.f(f32::NEG_INFINITY);
    b.def_var(m, minus_inf);
    let none = b.ins().fcmp(FloatCC::Unordered, minus_inf, minus_inf);
    b.def_var(nan, none);
    let pair = tap_count(ranges) <= UNROLL_TAPS;
    let mut pending: Option<Value> = None;
    let add_nan = |b: &mut FunctionBuilder, u: Value| {
        let n0 = b.use_var(nan);
        let n1 = b.ins().bor(n0, u);
        b.def_var(nan, n1);
    };
    for_taps(g, b, p, ranges, xstr, &mut |b, ptr, off| {
        let x = g.load_taps(b, lanes, stride, ptr, off);
        let cur = b.use_var(m);
        let mut e = Emit { b: &mut *b, lanes };
        // `cur < x ? x : cur`: one maxss/maxps.
        let gt = e.cmp(FloatCC::LessThan, cur, x);
        let next = e.select(gt, x, cur);
        b.def_var(m, next);
        let test = if !pair {
            Some((x, x))
        } else if let Some(q) = pending.take() {
            Some((q, x))
        } else {
            pending = Some(x);
            None
        };
        if let Some((q, x)) = test {
            let u = b.ins().fcmp(FloatCC::Unordered, q, x);
            add_nan(b, u);
        }
    });
    if let Some(q) = pending {
        let u = b.ins().fcmp(FloatCC::Unordered, q, q);
        add_nan(b, u);
    }
    let (mv, nv) = (b.use_var(m), b.use_var(nan));
    let mut e = Emit { b: &mut *b, lanes };
    let nan_v = e.f(f32::NAN);
    e.select(Mask(nv), nan_v, mv)
}

/// Max or average pooling of the planes of rows `start..end`.
fn emit_pool(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &PoolGeo,
    kind: PoolKind,
    pad: &[(usize, usize)],
    se: (Value, Value),
) {
    let streams = [geo.window_stream(pad), geo.point_stream()];
    let inner_stride = geo.stride.last().copied().unwrap_or(1);
    let vector = inner_stride <= 2;
    let xstr = geo.xstr.clone();
    let window_size = geo.window_size as f32;
    let mut leaf = |b: &mut FunctionBuilder, p: &[Value], ranges: &[(usize, usize)], lanes: Lanes| {
        let taps = tap_count(ranges);
        let r = if taps == 0 {
            // Every tap is in the padding: max over nothing, or zeros / size.
            let v = if kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
            Emit { b: &mut *b, lanes }.f(v)
        } else if kind == PoolKind::Max {
            window_max(g, b, p[0], (ranges, &xstr), lanes, inner_stride)
        } else {
            // (0 + x₀ + x₁ + …) / window size, in tap order.
            let acc = b.declare_var(lanes.float);
            let zero = Emit { b: &mut *b, lanes }.f(0.0);
            b.def_var(acc, zero);
            for_taps(g, b, p[0], ranges, &xstr, &mut |b, ptr, off| {
                let x = g.load_taps(b, lanes, inner_stride, ptr, off);
                let a = b.use_var(acc);
                let a = b.ins().fadd(a, x);
                b.def_var(acc, a);
            });
            let a = b.use_var(acc);
            let size = Emit { b: &mut *b, lanes }.f(window_size);
            b.ins().fdiv(a, size)
        };
        g.store(b, r, p[1], 0);
    };
    let bufs = [(0, geo.in_plane as i64 * 4), (g.out(), geo.out_plane as i64 * 4)];
    for_planes(g, b, se.0, se.1, geo.channels, &bufs, &mut |b, planes| {
        spatial(g, b, &geo.segs, &streams, 0, planes, &mut Vec::new(), vector, &mut leaf);
    });
}

/// The input gradient of pooling for the planes of rows `start..end`: the
/// rows are zeroed, then every `dy` element is added to its window.
fn emit_pool_grad(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &PoolGeo,
    kind: PoolKind,
    pad: &[(usize, usize)],
    se: (Value, Value),
) {
    zero_rows(g, b, se.0, se.1, geo.channels * geo.in_plane);
    let streams = [geo.window_stream(pad), geo.point_stream()];
    let xstr = geo.xstr.clone();
    let window_size = geo.window_size as f32;
    let out = g.out();
    match kind {
        PoolKind::Max => {
            // x and dx have one layout: dx's element is at the same offset.
            let delta = b.ins().isub(g.bases[out], g.bases[0]);
            let mut leaf = |b: &mut FunctionBuilder, p: &[Value], ranges: &[(usize, usize)], _: Lanes| {
                if tap_count(ranges) == 0 {
                    return;
                }
                // The first tap holding the window's maximum, or its first
                // NaN: the maximum first (branch-free maxss), then the first
                // tap equal to it (or NaN, when it is NaN).
                let m = window_max(g, b, p[0], (ranges, &xstr), Lanes::SCALAR, 1);
                let m_nan = b.ins().fcmp(FloatCC::Unordered, m, m);
                let at = b.declare_var(g.ptr);
                let found = b.declare_var(types::I8);
                let first: i64 = ranges.iter().zip(&xstr).map(|(r, &s)| r.0 as i64 * s * 4).sum();
                let first = b.ins().iadd_imm_s(p[0], first);
                b.def_var(at, first);
                let no = b.ins().iconst(types::I8, 0);
                b.def_var(found, no);
                for_taps(g, b, p[0], ranges, &xstr, &mut |b, ptr, off| {
                    let x = g.load(b, types::F32, 0, ptr, off);
                    let eq = b.ins().fcmp(FloatCC::Equal, x, m);
                    let un = b.ins().fcmp(FloatCC::Unordered, x, x);
                    let hit = b.ins().select(m_nan, un, eq);
                    let before = b.use_var(found);
                    let take = b.ins().band_not(hit, before);
                    let here = b.ins().iadd_imm_s(ptr, i64::from(off));
                    let old = b.use_var(at);
                    let next = b.ins().select(take, here, old);
                    b.def_var(at, next);
                    let now = b.ins().bor(before, hit);
                    b.def_var(found, now);
                });
                let gv = g.load(b, types::F32, 1, p[1], 0);
                let x_at = b.use_var(at);
                let dx_at = b.ins().iadd(x_at, delta);
                let old = g.load(b, types::F32, out, dx_at, 0);
                let new = b.ins().fadd(old, gv);
                g.store(b, new, dx_at, 0);
            };
            let bufs = [(0, geo.in_plane as i64 * 4), (1, geo.out_plane as i64 * 4)];
            for_planes(g, b, se.0, se.1, geo.channels, &bufs, &mut |b, planes| {
                spatial(g, b, &geo.segs, &streams, 0, planes, &mut Vec::new(), false, &mut leaf);
            });
        }
        PoolKind::Avg => {
            let vector = geo.stride.last() == Some(&1);
            let mut leaf = |b: &mut FunctionBuilder, p: &[Value], ranges: &[(usize, usize)], lanes: Lanes| {
                if tap_count(ranges) == 0 {
                    return;
                }
                let gv = g.load(b, lanes.float, 1, p[1], 0);
                let size = Emit { b: &mut *b, lanes }.f(window_size);
                let share = b.ins().fdiv(gv, size);
                for_taps(g, b, p[0], ranges, &xstr, &mut |b, ptr, off| {
                    let old = g.load(b, lanes.float, out, ptr, off);
                    let new = b.ins().fadd(old, share);
                    g.store(b, new, ptr, off);
                });
            };
            let bufs = [(out, geo.in_plane as i64 * 4), (1, geo.out_plane as i64 * 4)];
            for_planes(g, b, se.0, se.1, geo.channels, &bufs, &mut |b, planes| {
                spatial(g, b, &geo.segs, &streams, 0, planes, &mut Vec::new(), vector, &mut leaf);
            });
        }
    }
}

/// Interpolation geometry: the sampled buffer has spatial sizes `from`, the
/// positions iterated have sizes `to`.
struct ResizeGeo {
    from: Vec<usize>,
    to: Vec<usize>,
    channels: usize,
    /// True for the adjoint (scatter into the output instead of gathering).
    grad: bool,
}

/// One axis's interpolation taps of the current position: byte offsets of
/// the two neighbours and their weights `1 - λ` and `λ`.
struct AxisTap {
    off: [Value; 2],
    weight: [Value; 2],
}

/// Resize (gather) or its adjoint (scatter) over the planes of rows
/// `start..end`.
fn emit_resize(g: &Gen, b: &mut FunctionBuilder, geo: &ResizeGeo, se: (Value, Value)) {
    let (from_plane, to_plane) = (geo.from.iter().product::<usize>(), geo.to.iter().product::<usize>());
    let (sampled, point) = if geo.grad { (g.out(), 0) } else { (0, g.out()) };
    if geo.grad {
        zero_rows(g, b, se.0, se.1, geo.channels * from_plane);
    }
    let inner = geo.to.last().copied().unwrap_or(0);
    let table = (inner <= RESIZE_TABLE).then(|| resize_table(g, b, geo));
    let bufs = [(sampled, from_plane as i64 * 4), (point, to_plane as i64 * 4)];
    for_planes(g, b, se.0, se.1, geo.channels, &bufs, &mut |b, planes| {
        resize_axis(g, b, geo, 0, (planes[0], planes[1]), table, &mut Vec::new());
    });
}

/// Innermost resize axes up to this many positions get their taps computed
/// once per call into a table on the stack (16 bytes a position).
const RESIZE_TABLE: usize = 4096;

/// Along axis `d`, the taps of position `j` (an i64): the byte offsets of
/// the two neighbours (i64) and their weights `1 - λ` and `λ`, from
/// `src = max(0, scale * (j + 0.5) - 0.5)`, `i0 = min(⌊src⌋, n - 1)`,
/// `i1 = min(i0 + 1, n - 1)`, `λ = src - i0`: the interpreter's f32 steps.
fn axis_tap(b: &mut FunctionBuilder, geo: &ResizeGeo, d: usize, j: Value) -> [Value; 4] {
    let from_str = strides_of(&geo.from);
    let (n_in, n_out) = (geo.from[d], geo.to[d]);
    let scale = n_in as f32 / n_out as f32;
    // Signed conversions: the values are small and non-negative, and the
    // unsigned ones need branches on x86-64.
    let jf = b.ins().fcvt_from_sint(types::F32, j);
    let half = b.ins().f32const(0.5);
    let t = b.ins().fadd(jf, half);
    let sc = b.ins().f32const(scale);
    let src = b.ins().fmul(sc, t);
    let src = b.ins().fsub(src, half);
    let fzero = b.ins().f32const(0.0);
    // `0 < src ? src : 0` (one maxss; src is never NaN).
    let pos = b.ins().fcmp(FloatCC::LessThan, fzero, src);
    let src = b.ins().select(pos, src, fzero);
    let i0 = b.ins().fcvt_to_sint(types::I64, src);
    let top = b.ins().iconst(types::I64, n_in as i64 - 1);
    let i0 = b.ins().umin(i0, top);
    let i1 = b.ins().iadd_imm_s(i0, 1);
    let i1 = b.ins().umin(i1, top);
    let i0f = b.ins().fcvt_from_sint(types::F32, i0);
    let lambda = b.ins().fsub(src, i0f);
    let one = b.ins().f32const(1.0);
    let rest = b.ins().fsub(one, lambda);
    let off0 = b.ins().imul_imm_s(i0, from_str[d] * 4);
    let off1 = b.ins().imul_imm_s(i1, from_str[d] * 4);
    [off0, off1, rest, lambda]
}

/// Fills a stack table with the taps of every position of the innermost
/// axis (i32 offsets, then f32 weights) and returns its address.
fn resize_table(g: &Gen, b: &mut FunctionBuilder, geo: &ResizeGeo) -> Value {
    let d = geo.to.len() - 1;
    let n = geo.to[d];
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, n as u32 * 16, 4));
    let base = b.ins().stack_addr(g.ptr, slot, 0);
    let q = g.var(b, base);
    let j_var = b.declare_var(types::I64);
    let zero = b.ins().iconst(types::I64, 0);
    b.def_var(j_var, zero);
    let count = b.ins().iconst(g.ptr, n as i64);
    let rem = g.var(b, count);
    let lp = Counted::begin(b, rem, 1);
    let (j, at) = (b.use_var(j_var), b.use_var(q));
    let [off0, off1, rest, lambda] = axis_tap(b, geo, d, j);
    let flags = MemFlagsData::new().with_notrap();
    for (k, v) in [off0, off1].into_iter().enumerate() {
        let v = b.ins().ireduce(types::I32, v);
        b.ins().store(flags, v, at, 4 * k as i32);
    }
    b.ins().store(flags, rest, at, 8);
    b.ins().store(flags, lambda, at, 12);
    lp.end(b, &[(j_var, 1), (q, 16)]);
    base
}

/// The loop over positions along axis `d` of a resize (or its adjoint);
/// `taps` holds the outer axes' taps of the current position; `table` is
/// the innermost axis's tap table, if made.
#[allow(clippy::too_many_arguments)]
fn resize_axis(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &ResizeGeo,
    d: usize,
    (sampled, point): (Value, Value),
    table: Option<Value>,
    taps: &mut Vec<AxisTap>,
) {
    let to_str = strides_of(&geo.to);
    let last = d + 1 == geo.to.len();
    let j_var = b.declare_var(types::I64);
    let zero = b.ins().iconst(types::I64, 0);
    b.def_var(j_var, zero);
    let t_var = table.filter(|_| last).map(|t| g.var(b, t));
    let p_var = g.var(b, point);
    let n = b.ins().iconst(g.ptr, geo.to[d] as i64);
    let rem = g.var(b, n);
    let lp = Counted::begin(b, rem, 1);
    let (j, p) = (b.use_var(j_var), b.use_var(p_var));
    let [off0, off1, rest, lambda] = match t_var {
        Some(t) => {
            let t = b.use_var(t);
            let flags = MemFlagsData::new().with_notrap();
            let o0 = b.ins().sload32(flags, t, 0);
            let o1 = b.ins().sload32(flags, t, 4);
            let w0 = b.ins().load(types::F32, flags, t, 8);
            let w1 = b.ins().load(types::F32, flags, t, 12);
            [o0, o1, w0, w1]
        }
        None => axis_tap(b, geo, d, j),
    };
    taps.push(AxisTap { off: [off0, off1], weight: [rest, lambda] });
    if last {
        resize_point(g, b, geo.grad, sampled, p, taps);
    } else {
        resize_axis(g, b, geo, d + 1, (sampled, p), table, taps);
    }
    taps.pop();
    let mut steps = vec![(j_var, 1), (p_var, to_str[d] * 4)];
    steps.extend(t_var.map(|t| (t, 16)));
    lp.end(b, &steps);
}

/// One interpolated position: the 2^d corners in the interpreter's order
/// (bit `d` of the corner number picks `i1` along axis `d`), each weighted
/// by the product of its axis weights in axis order.
fn resize_point(g: &Gen, b: &mut FunctionBuilder, grad: bool, sampled: Value, p: Value, taps: &[AxisTap]) {
    let gv = if grad { Some(g.load(b, types::F32, 0, p, 0)) } else { None };
    let mut acc = b.ins().f32const(0.0);
    for corner in 0..(1usize << taps.len()) {
        let mut at = sampled;
        let mut weight: Option<Value> = None;
        for (d, t) in taps.iter().enumerate() {
            let bit = (corner >> d) & 1;
            at = b.ins().iadd(at, t.off[bit]);
            weight = Some(match weight {
                None => t.weight[bit],
                Some(w) => b.ins().fmul(w, t.weight[bit]),
            });
        }
        let weight = weight.unwrap_or_else(|| b.ins().f32const(1.0));
        match gv {
            Some(gv) => {
                let old = g.load(b, types::F32, g.out(), at, 0);
                let c = b.ins().fmul(weight, gv);
                let new = b.ins().fadd(old, c);
                g.store(b, new, at, 0);
            }
            None => {
                let x = g.load(b, types::F32, 0, at, 0);
                let c = b.ins().fmul(weight, x);
                acc = b.ins().fadd(acc, c);
            }
        }
    }
    if gv.is_none() {
        g.store(b, acc, p, 0);
    }
}

/// An argmax as `[outer, n, inner] -> [outer, inner]`.
struct ArgMaxGeo {
    n: usize,
    inner: usize,
    /// `outer` positions per output row (0 when the axis is the first one:
    /// then a row is `per_row` consecutive inner positions).
    outer_per_row: usize,
    per_row: usize,
}

/// Lanes unrolled along the argmax axis; longer axes loop.
const UNROLL_ARGMAX: usize = 16;

/// Argmax over the output rows `start..end`.
fn emit_argmax(g: &Gen, b: &mut FunctionBuilder, geo: &ArgMaxGeo, (start, end): (Value, Value)) {
    let (n, inner) = (geo.n, geo.inner);
    let lane_bytes = n as i64 * inner as i64 * 4;
    // (outer range, inner range) of the rows.
    let (o_lo, o_hi, i_lo, i_hi) = if geo.outer_per_row > 0 {
        let o_lo = b.ins().imul_imm_s(start, geo.outer_per_row as i64);
        let o_hi = b.ins().imul_imm_s(end, geo.outer_per_row as i64);
        let i_lo = b.ins().iconst(g.ptr, 0);
        let i_hi = b.ins().iconst(g.ptr, inner as i64);
        (o_lo, o_hi, i_lo, i_hi)
    } else {
        let o_lo = b.ins().iconst(g.ptr, 0);
        let o_hi = b.ins().iconst(g.ptr, 1);
        let i_lo = b.ins().imul_imm_s(start, geo.per_row as i64);
        let i_hi = b.ins().imul_imm_s(end, geo.per_row as i64);
        (o_lo, o_hi, i_lo, i_hi)
    };
    let x0 = b.ins().imul_imm_s(o_lo, lane_bytes);
    let x0 = b.ins().iadd(g.bases[0], x0);
    let y0 = b.ins().imul_imm_s(o_lo, inner as i64 * 4);
    let y0 = b.ins().iadd(g.bases[g.out()], y0);
    let (xo, yo) = (g.var(b, x0), g.var(b, y0));
    let count = b.ins().isub(o_hi, o_lo);
    let rem_o = g.var(b, count);
    let outer = Counted::begin(b, rem_o, 1);
    {
        let (xo_v, yo_v) = (b.use_var(xo), b.use_var(yo));
        let i_off = b.ins().ishl_imm_u(i_lo, 2);
        let px = b.ins().iadd(xo_v, i_off);
        let py = b.ins().iadd(yo_v, i_off);
        let (px, py) = (g.var(b, px), g.var(b, py));
        let count = b.ins().isub(i_hi, i_lo);
        let rem = g.var(b, count);
        let units: &[(i64, Lanes)] =
            if inner >= 4 { &[(4, Lanes::X4), (1, Lanes::SCALAR)] } else { &[(1, Lanes::SCALAR)] };
        for &(unit, lanes) in units {
            let lp = Counted::begin(b, rem, unit);
            let (x, y) = (b.use_var(px), b.use_var(py));
            let idx = argmax_lane(g, b, geo, x, lanes);
            g.store(b, idx, y, 0);
            lp.end(b, &[(px, unit * 4), (py, unit * 4)]);
        }
    }
    outer.end(b, &[(xo, lane_bytes), (yo, inner as i64 * 4)]);
}

/// Visits the elements `from..n` of a lane starting at `x` with a byte
/// stride of `step`: `f` gets a pointer, a constant byte offset and the
/// element number (i32). Short lanes are unrolled.
fn for_lane(
    g: &Gen,
    b: &mut FunctionBuilder,
    x: Value,
    (from, n, step): (usize, usize, i64),
    f: &mut dyn FnMut(&mut FunctionBuilder, Value, i32, Value),
) {
    if n <= from {
        return;
    }
    if n - from <= UNROLL_ARGMAX && step * n as i64 <= i64::from(i32::MAX) {
        for j in from..n {
            let jv = b.ins().iconst(types::I32, j as i64);
            f(b, x, (j as i64 * step) as i32, jv);
        }
        return;
    }
    let start = b.ins().iadd_imm_s(x, from as i64 * step);
    let p = g.var(b, start);
    let j_var = b.declare_var(types::I32);
    let j0 = b.ins().iconst(types::I32, from as i64);
    b.def_var(j_var, j0);
    let count = b.ins().iconst(g.ptr, (n - from) as i64);
    let rem = g.var(b, count);
    let lp = Counted::begin(b, rem, 1);
    let (pv, j) = (b.use_var(p), b.use_var(j_var));
    f(b, pv, 0, j);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.def_var(j_var, j1);
    lp.end(b, &[(p, step)]);
}

/// The index (i32, or i32x4 for four neighbouring lanes) of the first
/// maximum of the lane starting at `x` with stride `inner`; NaN counts as
/// larger than every number, so the first NaN wins.
fn argmax_lane(g: &Gen, b: &mut FunctionBuilder, geo: &ArgMaxGeo, x: Value, lanes: Lanes) -> Value {
    let step = geo.inner as i64 * 4;
    let idx = b.declare_var(lanes.int);
    let zero = Emit { b: &mut *b, lanes }.i(0);
    b.def_var(idx, zero);
    if lanes.is_vector() {
        // One pass with lane masks: an element replaces the best one if it
        // is greater or NaN, unless the best one is NaN.
        let best = b.declare_var(lanes.float);
        let first = g.load(b, lanes.float, 0, x, 0);
        b.def_var(best, first);
        for_lane(g, b, x, (1, geo.n, step), &mut |b, ptr, off, j| {
            let v = g.load(b, lanes.float, 0, ptr, off);
            let (cur, old) = (b.use_var(best), b.use_var(idx));
            let gt = b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, v, cur);
            let ord = b.ins().fcmp(FloatCC::Ordered, cur, cur);
            let take = b.ins().band(gt, ord);
            let next = Emit { b: &mut *b, lanes }.select(Mask(take), v, cur);
            b.def_var(best, next);
            let jv = b.ins().splat(lanes.int, j);
            let next = b.ins().bitselect(take, jv, old);
            b.def_var(idx, next);
        });
    } else {
        // Scalar selects of floats branch on x86-64, so: the maximum and
        // whether there is a NaN first (maxss), then the first element
        // equal to it, or the first NaN.
        let m = b.declare_var(types::F32);
        let nan = b.declare_var(types::I8);
        let minus_inf = b.ins().f32const(f32::NEG_INFINITY);
        b.def_var(m, minus_inf);
        let no = b.ins().iconst(types::I8, 0);
        b.def_var(nan, no);
        for_lane(g, b, x, (0, geo.n, step), &mut |b, ptr, off, _| {
            let v = g.load(b, types::F32, 0, ptr, off);
            let cur = b.use_var(m);
            let gt = b.ins().fcmp(FloatCC::LessThan, cur, v);
            let next = b.ins().select(gt, v, cur);
            b.def_var(m, next);
            let un = b.ins().fcmp(FloatCC::Unordered, v, v);
            let n0 = b.use_var(nan);
            let n1 = b.ins().bor(n0, un);
            b.def_var(nan, n1);
        });
        let (mv, any_nan) = (b.use_var(m), b.use_var(nan));
        let found = b.declare_var(types::I8);
        b.def_var(found, no);
        for_lane(g, b, x, (0, geo.n, step), &mut |b, ptr, off, j| {
            let v = g.load(b, types::F32, 0, ptr, off);
            let eq = b.ins().fcmp(FloatCC::Equal, v, mv);
            let un = b.ins().fcmp(FloatCC::Unordered, v, v);
            let hit = b.ins().select(any_nan, un, eq);
            let before = b.use_var(found);
            let take = b.ins().band_not(hit, before);
            let old = b.use_var(idx);
            let next = b.ins().select(take, j, old);
            b.def_var(idx, next);
            let now = b.ins().bor(before, hit);
            b.def_var(found, now);
        });
    }
    b.use_var(idx)
}

/// A validated kernel, ready for emission.
enum Plan {
    Pool {
        geo: PoolGeo,
        kind: PoolKind,
        padding: Vec<(usize, usize)>,
        grad: bool,
    },
    Resize(ResizeGeo),
    ArgMax(ArgMaxGeo),
    /// The output has no elements: nothing to compute.
    Empty,
}

/// Checks the kernel's operand and result shapes against its op.
fn plan(k: &WindowKernel) -> Result<Plan, String> {
    let want_inputs = if matches!(k.op, WindowOp::PoolGrad { .. }) { 2 } else { 1 };
    if k.inputs.len() != want_inputs {
        return Err(format!("takes {want_inputs} input(s), the kernel lists {}", k.inputs.len()));
    }
    for (i, s) in k.inputs.iter().chain([&k.output]).enumerate() {
        let len = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if len.is_none_or(|l| l > isize::MAX as usize / 4) {
            let what = if i < k.inputs.len() { format!("input {i}") } else { "the output".into() };
            return Err(format!("{what} of shape {s:?} is too large"));
        }
    }
    let expect = |want: &[usize]| -> Result<(), String> {
        if k.output != want {
            return Err(format!("output shape {:?} should be {want:?}", k.output));
        }
        Ok(())
    };
    let plan = match &k.op {
        WindowOp::Pool { kind, window, stride, padding }
        | WindowOp::PoolGrad { kind, window, stride, padding } => {
            let geo = PoolGeo::new(k, window, stride, padding)?;
            let grad = matches!(k.op, WindowOp::PoolGrad { .. });
            if grad {
                if k.inputs[1] != geo.out_shape(k) {
                    return Err(format!(
                        "output gradient {:?} does not match the pooling of {:?}",
                        k.inputs[1], k.inputs[0]
                    ));
                }
                expect(&k.inputs[0])?;
            } else {
                expect(&geo.out_shape(k))?;
            }
            Plan::Pool { geo, kind: *kind, padding: padding.clone(), grad }
        }
        WindowOp::Resize { size } | WindowOp::ResizeGrad { size } => {
            let grad = matches!(k.op, WindowOp::ResizeGrad { .. });
            let x = &k.inputs[0];
            let xs = image_shape("input", x, size.len())?;
            let mut out = x[..2].to_vec();
            out.extend_from_slice(size);
            expect(&out)?;
            let (from, to) = if grad { (size.clone(), xs.to_vec()) } else { (xs.to_vec(), size.clone()) };
            check_size("an input plane", from.iter().product())?;
            check_size("an output plane", to.iter().product())?;
            if to.iter().product::<usize>() > 0 && from.contains(&0) {
                return Err(format!("cannot resample the empty spatial size {from:?}"));
            }
            Plan::Resize(ResizeGeo { from, to, channels: x[1], grad })
        }
        WindowOp::ArgMax { axis } => {
            let x = &k.inputs[0];
            if *axis >= x.len() {
                return Err(format!("axis {axis} is out of range for rank {}", x.len()));
            }
            let mut out = x.clone();
            let n = out.remove(*axis);
            expect(&out)?;
            let inner: usize = x[axis + 1..].iter().product();
            let outer: usize = x[..*axis].iter().product();
            if n == 0 && inner * outer > 0 {
                return Err(format!("argmax along the empty axis {axis} of {x:?}"));
            }
            if i32::try_from(n).is_err() {
                return Err(format!("argmax along an axis of {n} elements: indices exceed i32"));
            }
            let rows = k.rows();
            let per_row = k.output_len().checked_div(rows).unwrap_or(0);
            let outer_per_row = if *axis > 0 { outer.checked_div(x[0]).unwrap_or(0) } else { 0 };
            Plan::ArgMax(ArgMaxGeo { n, inner, outer_per_row, per_row })
        }
    };
    if k.output_len() == 0 {
        return Ok(Plan::Empty);
    }
    Ok(plan)
}

/// Emits the body of `kernel` into `b` (whose function has the five-pointer
/// signature and no blocks yet). `trap` is the trap function and kernel
/// index for checked kernels.
pub(crate) fn emit(
    kernel: &WindowKernel,
    b: &mut FunctionBuilder,
    ptr: Type,
    trap: Option<(FuncRef, u32)>,
) -> Result<(), String> {
    let plan = plan(kernel)?;
    let n_inputs = kernel.inputs.len();
    let Frame { start, end, exit, bases, checks } = enter(b, ptr, n_inputs, 1, trap);
    let g = Gen { ptr, n_inputs, bases, checks, exit };
    let se = (start, end);
    match &plan {
        Plan::Pool { geo, kind, padding, grad: false } => emit_pool(&g, b, geo, *kind, padding, se),
        Plan::Pool { geo, kind, padding, grad: true } => emit_pool_grad(&g, b, geo, *kind, padding, se),
        Plan::Resize(geo) => emit_resize(&g, b, geo, se),
        Plan::ArgMax(geo) => emit_argmax(&g, b, geo, se),
        Plan::Empty => {}
    }
    b.ins().jump(exit, &[]);
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    Ok(())
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
