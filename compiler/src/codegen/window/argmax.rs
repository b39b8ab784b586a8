//! Argmax: the index of the first maximum along an axis (i32), for four
//! neighbouring lanes at once where the lanes are contiguous; NaN counts as
//! larger than every number.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

use super::emitter::{Counted, Gen};
use crate::codegen::approx::{Emit, Lanes, Mask};

/// An argmax as `[outer, n, inner] -> [outer, inner]`.
pub(super) struct ArgMaxGeo {
    pub n: usize,
    pub inner: usize,
    /// `outer` positions per output row (0 when the axis is the first one:
    /// then a row is `per_row` consecutive inner positions).
    pub outer_per_row: usize,
    pub per_row: usize,
}

/// Lanes unrolled along the argmax axis; longer axes loop.
const UNROLL_ARGMAX: usize = 16;

/// Argmax over the output rows `start..end`.
pub(super) fn emit_argmax(g: &Gen, b: &mut FunctionBuilder, geo: &ArgMaxGeo, (start, end): (Value, Value)) {
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
