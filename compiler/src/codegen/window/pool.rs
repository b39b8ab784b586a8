//! Pooling (max and average) and its input gradient.
//!
//! The output positions of every spatial axis are split at compile time into
//! runs whose windows have the same in-bounds tap range ([`segments`]), and
//! each combination of runs gets its own loop nest ([`spatial`]) with the
//! taps unrolled at constant offsets from running pointers ([`for_taps`]).
//! Max follows the interpreter's `max_nan` fold ([`window_max`]); the
//! gradients zero their rows and then scatter-add, except a max-pooling
//! gradient whose windows tile the input, which writes each window whole
//! ([`emit_pool_grad`]). The max-pooling
//! gradient of windows of two taps two apart along the innermost axis
//! (2×2 stride 2 and the like) takes four windows at a time
//! ([`max_grad_pairs`]); other windows one at a time.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::emitter::{for_planes, zero_rows, Counted, Gen};
use super::{check_size, image_shape, strides_of, WindowKernel};
use crate::codegen::approx::{Emit, Lanes, Mask};
use crate::ir::op::PoolKind;

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
pub(super) struct PoolGeo {
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
    /// The window's extent along the innermost spatial axis.
    inner_window: usize,
    /// The windows tile the input: no padding, each window as large as
    /// its stride, and each input size a whole number of windows, so that
    /// every input element lies in exactly one window.
    tiles: bool,
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

impl PoolGeo {
    pub fn new(
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
            inner_window: window.last().copied().unwrap_or(1),
            tiles: (0..s)
                .all(|d| padding[d] == (0, 0) && window[d] == stride[d] && xs[d] == os[d] * stride[d]),
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
    pub fn out_shape(&self, k: &WindowKernel) -> Vec<usize> {
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
pub(super) fn emit_pool(
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
/// rows are zeroed, then every `dy` element is added to its window. A
/// max-pooling gradient whose windows tile the input writes every window
/// whole instead (`dy` at its first maximum, 0 elsewhere, each as `0 + v`,
/// the bits the additions give), without the zeroing pass and without
/// reading `dx` back: one pass over `dx` instead of three.
pub(super) fn emit_pool_grad(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &PoolGeo,
    kind: PoolKind,
    pad: &[(usize, usize)],
    se: (Value, Value),
) {
    let whole = kind == PoolKind::Max && geo.tiles;
    if !whole {
        zero_rows(g, b, se.0, se.1, geo.channels * geo.in_plane);
    }
    let streams = [geo.window_stream(pad), geo.point_stream()];
    let xstr = geo.xstr.clone();
    let window_size = geo.window_size as f32;
    let out = g.out();
    match kind {
        PoolKind::Max => {
            // x and dx have one layout: dx's element is at the same offset.
            let delta = b.ins().isub(g.bases[out], g.bases[0]);
            let scalar = |b: &mut FunctionBuilder, p: &[Value], ranges: &[(usize, usize)]| {
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
                let old = if whole {
                    // Zeros over the window first (the taps not taking dy).
                    let zero = b.ins().f32const(0.0);
                    for_taps(g, b, p[0], ranges, &xstr, &mut |b, ptr, off| {
                        let dx = b.ins().iadd(ptr, delta);
                        g.store(b, zero, dx, off);
                    });
                    zero
                } else {
                    g.load(b, types::F32, out, dx_at, 0)
                };
                let new = b.ins().fadd(old, gv);
                g.store(b, new, dx_at, 0);
            };
            // Windows of two taps two apart along the innermost axis: four
            // neighbouring windows at once, whose taps cover eight
            // consecutive elements and no element twice.
            // Every run that `spatial` hands out four at a time then
            // covers both taps or none (only a window at an edge is
            // clipped, and it is a run of its own).
            let pairs = geo.stride.last() == Some(&2)
                && geo.inner_window == 2
                && geo.segs.last().is_some_and(|segs| {
                    segs.iter().all(|s| s.count < 4 || s.lo == s.hi || (s.lo, s.hi) == (0, 2))
                });
            let mut leaf = |b: &mut FunctionBuilder, p: &[Value], ranges: &[(usize, usize)], lanes: Lanes| {
                if tap_count(ranges) == 0 {
                    return;
                }
                if !lanes.is_vector() {
                    return scalar(b, p, ranges);
                }
                max_grad_pairs(g, b, p, (ranges, &xstr), delta, whole);
            };
            let bufs = [(0, geo.in_plane as i64 * 4), (1, geo.out_plane as i64 * 4)];
            for_planes(g, b, se.0, se.1, geo.channels, &bufs, &mut |b, planes| {
                spatial(g, b, &geo.segs, &streams, 0, planes, &mut Vec::new(), pairs, &mut leaf);
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

/// The max-pooling gradient of four neighbouring windows whose innermost
/// taps are the pair `(0, 1)` and whose origins are two elements apart
/// (`p[0]`: the first window's origin in `x`, `p[1]`: its `dy`): per lane
/// the first tap holding the window's maximum (or its first NaN) takes
/// `dy`, as in the scalar leaf; per row of taps the two innermost taps'
/// shares are interleaved into the eight consecutive elements of `dx`
/// they fall on and added there (`whole`: added to 0 and stored, the
/// windows tiling `dx`). `delta` is the distance from `x` to `dx`.
fn max_grad_pairs(
    g: &Gen,
    b: &mut FunctionBuilder,
    p: &[Value],
    (ranges, xstr): (&[(usize, usize)], &[i64]),
    delta: Value,
    whole: bool,
) {
    let lanes = Lanes::X4;
    let m = window_max(g, b, p[0], (ranges, xstr), lanes, 2);
    let m_nan = b.ins().fcmp(FloatCC::Unordered, m, m);
    let found = b.declare_var(types::I32X4);
    let none = Emit { b: &mut *b, lanes }.i(0);
    b.def_var(found, none);
    let dy = g.load(b, types::F32X4, 1, p[1], 0);
    let zero = Emit { b: &mut *b, lanes }.f(0.0);
    let n = ranges.len() - 1;
    let interleave = |b: &mut FunctionBuilder, a: Value, c: Value, first: u8| -> Value {
        // Lanes `first` and `first + 1` of `a` and of `c`, alternately.
        Emit { b, lanes }.pick_lanes(a, c, [first, first + 4, first + 1, first + 5])
    };
    for_taps(g, b, p[0], &ranges[..n], &xstr[..n], &mut |b, ptr, off| {
        let mut share = [zero; 2];
        for (k, share) in share.iter_mut().enumerate() {
            let x = g.load_taps(b, lanes, 2, ptr, off + 4 * k as i32);
            let eq = b.ins().fcmp(FloatCC::Equal, x, m);
            let un = b.ins().fcmp(FloatCC::Unordered, x, x);
            let hit = b.ins().bitselect(m_nan, un, eq);
            let before = b.use_var(found);
            let take = b.ins().band_not(hit, before);
            let now = b.ins().bor(before, hit);
            b.def_var(found, now);
            *share = Emit { b: &mut *b, lanes }.select(Mask(take), dy, zero);
        }
        let dx = b.ins().iadd(ptr, delta);
        for (half, first) in [(0, 0u8), (1, 2u8)] {
            let v = interleave(b, share[0], share[1], first);
            let at = off + 16 * half;
            let old = if whole { zero } else { g.load(b, types::F32X4, g.out(), dx, at) };
            let new = b.ins().fadd(old, v);
            g.store(b, new, dx, at);
        }
    });
}
