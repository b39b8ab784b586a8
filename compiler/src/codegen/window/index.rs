//! Gather and scatter along an axis by an index list: `gather`,
//! `scatter_sum`, `scatter_max`, and the two passes that, after a
//! `scatter_max` of the same operands, make `scatter_max_grad`.
//!
//! Every buffer is viewed as `[outer, positions, inner]` around the axis.
//! The output's rows (its first axis) are the split unit: a row is one
//! position along the axis when the axis is the first one, else a block of
//! outer positions. So a call never splits the index list: a scatter call
//! scans every index in increasing order and keeps those that land in its
//! rows, and every output element receives its contributions in increasing
//! `e`, whatever the split. Each index is loaded once per outer position and
//! compared (as an unsigned 64-bit number after sign extension, so negative
//! ones fail too) with the addressed axis's size before anything is read or
//! written through it; the `inner` elements of a position are then
//! processed with f32x4 vectors and a scalar tail; loads through an index
//! stay below its test ([`Gen::load_guarded`]). No atomics: rows of one
//! call are disjoint.
//!
//! Kinds ([`IndexKind`]), with the buffers in kernel input order:
//! - `Gather` (`x`, `index`): `out[o, e, i] = x[o, index[e], i]`, 0 out of
//!   range;
//! - `ScatterSum` (`x`, `index`): rows zeroed, then `out[o, p, i] +=
//!   x[o, e, i]` for `p = index[e]` in range;
//! - `ScatterMax` (`x`, `index`): rows set to a NaN pattern that marks an
//!   element without contributions ([`EMPTY`]); a contribution replaces the
//!   element when it is empty, larger, or NaN (stored as the canonical NaN,
//!   so no contribution ever looks empty); at the end empty elements
//!   become 0;
//! - `MaxFirst` (`x`, `index`, `y` = the `scatter_max` of `x`): i32 output,
//!   rows set to -1, then each element takes the first `e` whose
//!   `x[o, e, i]` equals `y[o, p, i]` (NaN matching NaN);
//! - `MaxRoute` (`index`, `first` = the `MaxFirst` output, `dy`):
//!   `out[o, e, i] = dy[o, p, i]` where `p = index[e]` is in range and
//!   `first[o, p, i] = e`, else 0.

#[cfg(test)]
mod tests;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::emitter::{fill_rows, Counted, Gen};
use super::WindowKernel;
use crate::codegen::approx::{Emit, Lanes, Mask};

/// What an index kernel computes (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IndexKind {
    Gather,
    ScatterSum,
    ScatterMax,
    MaxFirst,
    MaxRoute,
}

/// The bits of an element of a `scatter_max` output that has received no
/// contribution yet: a NaN that the canonical NaN stored for NaN
/// contributions never equals.
const EMPTY: u32 = 0xffff_ffff;

/// The validated shapes of an index kernel.
pub(super) struct IndexGeo {
    kind: IndexKind,
    /// The index's length `E`.
    e: usize,
    /// The size of the axis the index values address (`0..n` is in range):
    /// the gathered operand's, the scatter's output's.
    n: usize,
    inner: usize,
    /// Outer positions per output row; 0 when the axis is the first one
    /// (then a row is one position along the axis).
    outer_per_row: usize,
}

/// `(outer, positions, inner)` of `shape` around `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// `shape` with dimension `axis` replaced by `n`.
fn with_axis(shape: &[usize], axis: usize, n: usize) -> Vec<usize> {
    let mut out = shape.to_vec();
    out[axis] = n;
    out
}

impl IndexGeo {
    /// Checks the kernel's shapes for `kind` along `axis`.
    pub(super) fn new(k: &WindowKernel, kind: IndexKind, axis: usize) -> Result<IndexGeo, String> {
        // The operand whose shape around the axis is the output's, and the index.
        let (data, index) = match kind {
            IndexKind::MaxRoute => (&k.inputs[2], &k.inputs[0]),
            _ => (&k.inputs[0], &k.inputs[1]),
        };
        if axis >= data.len() {
            return Err(format!("axis {axis} is out of range for {data:?}"));
        }
        let &[e] = index.as_slice() else {
            return Err(format!("the index {index:?} is not a list"));
        };
        if i32::try_from(e).is_err() {
            return Err(format!("an index list of {e} entries: positions exceed i32"));
        }
        let (want, n) = match kind {
            IndexKind::Gather => (with_axis(data, axis, e), data[axis]),
            IndexKind::ScatterSum | IndexKind::ScatterMax | IndexKind::MaxFirst => {
                if data[axis] != e {
                    return Err(format!("axis {axis} of {data:?} does not have the index's length {e}"));
                }
                let n = k.output.get(axis).copied().unwrap_or(0);
                let want = with_axis(data, axis, n);
                if kind == IndexKind::MaxFirst && k.inputs[2] != want {
                    return Err(format!("the maximum {:?} should have shape {want:?}", k.inputs[2]));
                }
                (want, n)
            }
            IndexKind::MaxRoute => {
                if k.inputs[1] != *data {
                    return Err(format!("the first maxima {:?} should have shape {data:?}", k.inputs[1]));
                }
                (with_axis(data, axis, e), data[axis])
            }
        };
        if k.output != want {
            return Err(format!("output shape {:?} should be {want:?}", k.output));
        }
        let (outer, _, inner) = around(&want, axis);
        let outer_per_row = if axis > 0 { outer.checked_div(want[0]).unwrap_or(0) } else { 0 };
        Ok(IndexGeo { kind, e, n, inner, outer_per_row })
    }
}

/// Computes the output rows `start..end`.
pub(super) fn emit_index(g: &Gen, b: &mut FunctionBuilder, geo: &IndexGeo, (start, end): (Value, Value)) {
    match geo.kind {
        IndexKind::Gather | IndexKind::MaxRoute => emit_gather(g, b, geo, (start, end)),
        IndexKind::ScatterSum | IndexKind::ScatterMax | IndexKind::MaxFirst => {
            emit_scatter(g, b, geo, (start, end))
        }
    }
}

/// The outer positions `(lo, hi)` of rows `start..end` and the range
/// `(lo, hi)` of positions along the output's axis they cover, which has
/// `along` positions.
fn row_span(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &IndexGeo,
    (start, end): (Value, Value),
    along: usize,
) -> ((Value, Value), (Value, Value)) {
    if geo.outer_per_row > 0 {
        let o_lo = b.ins().imul_imm_s(start, geo.outer_per_row as i64);
        let o_hi = b.ins().imul_imm_s(end, geo.outer_per_row as i64);
        let a_lo = b.ins().iconst(g.ptr, 0);
        let a_hi = b.ins().iconst(g.ptr, along as i64);
        ((o_lo, o_hi), (a_lo, a_hi))
    } else {
        let o_lo = b.ins().iconst(g.ptr, 0);
        let o_hi = b.ins().iconst(g.ptr, 1);
        ((o_lo, o_hi), (start, end))
    }
}

/// A pointer variable at `base + index·bytes`.
fn at(g: &Gen, b: &mut FunctionBuilder, base: Value, index: Value, bytes: usize) -> Variable {
    let off = b.ins().imul_imm_s(index, bytes as i64);
    let p = b.ins().iadd(base, off);
    g.var(b, p)
}

/// Runs `body` over `count` consecutive elements of each buffer whose
/// pointer starts at `starts`: four at a time while four remain (when
/// `vector`), then one at a time. `body` gets the lanes and the current
/// pointers.
fn for_run(
    g: &Gen,
    b: &mut FunctionBuilder,
    count: Value,
    vector: bool,
    starts: &[Value],
    body: &mut dyn FnMut(&mut FunctionBuilder, Lanes, &[Value]),
) {
    let vars: Vec<Variable> = starts.iter().map(|&p| g.var(b, p)).collect();
    let rem = g.var(b, count);
    let units: &[(i64, Lanes)] =
        if vector { &[(4, Lanes::X4), (1, Lanes::SCALAR)] } else { &[(1, Lanes::SCALAR)] };
    for &(unit, lanes) in units {
        let lp = Counted::begin(b, rem, unit);
        let ptrs: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
        body(b, lanes, &ptrs);
        let steps: Vec<(Variable, i64)> = vars.iter().map(|&v| (v, unit * 4)).collect();
        lp.end(b, &steps);
    }
}

/// Loads index entry `e` (at `ptr`) and tests it against the positions
/// `lo..hi`: the entry sign-extended to 64 bits, and the in-range flag.
fn load_index(
    g: &Gen,
    b: &mut FunctionBuilder,
    buf: usize,
    ptr: Value,
    (lo, hi): (Value, Value),
) -> (Value, Value) {
    let p = g.load(b, types::I32, buf, ptr, 0);
    let p = b.ins().sextend(types::I64, p);
    let rel = b.ins().isub(p, lo);
    let span = b.ins().isub(hi, lo);
    (p, b.ins().icmp(IntCC::UnsignedLessThan, rel, span))
}

/// `e` (an i64) as i32 lanes.
fn position_lanes(b: &mut FunctionBuilder, lanes: Lanes, e: Value) -> Value {
    let e = b.ins().ireduce(types::I32, e);
    if lanes.is_vector() {
        b.ins().splat(types::I32X4, e)
    } else {
        e
    }
}

/// `gather` and the routing pass of `scatter_max_grad`: every output
/// position `(o, e)` of the rows reads the source position `index[e]`.
fn emit_gather(g: &Gen, b: &mut FunctionBuilder, geo: &IndexGeo, se: (Value, Value)) {
    let route = geo.kind == IndexKind::MaxRoute;
    // Buffers: the index, the source read at `index[e]`, and for routing
    // the first maxima read there too.
    let (index_buf, src, first) = if route { (0, 2, Some(1)) } else { (1, 0, None) };
    let inner = geo.inner;
    let (row_bytes, src_outer, out_outer) = (inner * 4, geo.n * inner * 4, geo.e * inner * 4);
    let ((o_lo, o_hi), (e_lo, e_hi)) = row_span(g, b, geo, se, geo.e);
    let src_o = at(g, b, g.bases[src], o_lo, src_outer);
    let first_o = first.map(|f| at(g, b, g.bases[f], o_lo, src_outer));
    let out_o = at(g, b, g.bases[g.out()], o_lo, out_outer);
    let outer_count = b.ins().isub(o_hi, o_lo);
    let outer_rem = g.var(b, outer_count);
    let outer = Counted::begin(b, outer_rem, 1);
    {
        let idx = at(g, b, g.bases[index_buf], e_lo, 4);
        let out_base = b.use_var(out_o);
        let out_e = at(g, b, out_base, e_lo, row_bytes);
        let e_var = g.var(b, e_lo);
        let count = b.ins().isub(e_hi, e_lo);
        let rem = g.var(b, count);
        let lp = Counted::begin(b, rem, 1);
        let (idx_p, out_p, e) = (b.use_var(idx), b.use_var(out_e), b.use_var(e_var));
        let n = b.ins().iconst(g.ptr, geo.n as i64);
        let zero = b.ins().iconst(g.ptr, 0);
        let (p, valid) = load_index(g, b, index_buf, idx_p, (zero, n));
        let (take, skip, next) = (b.create_block(), b.create_block(), b.create_block());
        b.ins().brif(valid, take, &[], skip, &[]);

        b.switch_to_block(take);
        let count = b.ins().iconst(g.ptr, inner as i64);
        let src_base = b.use_var(src_o);
        let src_p = b.ins().imul_imm_s(p, row_bytes as i64);
        let src_p = b.ins().iadd(src_base, src_p);
        let mut starts = vec![src_p, out_p];
        if let Some(first_o) = first_o {
            let base = b.use_var(first_o);
            let off = b.ins().imul_imm_s(p, row_bytes as i64);
            starts.push(b.ins().iadd(base, off));
        }
        for_run(g, b, count, inner >= 4, &starts, &mut |b, lanes, ptrs| {
            let v = g.load_guarded(b, lanes.float, src, ptrs[0], 0);
            let v = match first {
                Some(f) => {
                    let w = g.load_guarded(b, lanes.int, f, ptrs[2], 0);
                    let here = position_lanes(b, lanes, e);
                    let hit = Mask(b.ins().icmp(IntCC::Equal, w, here));
                    let mut em = Emit { b: &mut *b, lanes };
                    let zero = em.f(0.0);
                    em.select(hit, v, zero)
                }
                None => v,
            };
            g.store(b, v, ptrs[1], 0);
        });
        b.ins().jump(next, &[]);

        b.switch_to_block(skip);
        let count = b.ins().iconst(g.ptr, inner as i64);
        for_run(g, b, count, inner >= 4, &[out_p], &mut |b, lanes, ptrs| {
            let zero = Emit { b: &mut *b, lanes }.f(0.0);
            g.store(b, zero, ptrs[0], 0);
        });
        b.ins().jump(next, &[]);

        b.switch_to_block(next);
        lp.end(b, &[(idx, 4), (out_e, row_bytes as i64), (e_var, 1)]);
    }
    let mut steps = vec![(src_o, src_outer as i64), (out_o, out_outer as i64)];
    steps.extend(first_o.map(|f| (f, src_outer as i64)));
    outer.end(b, &steps);
}

/// `scatter_sum`, `scatter_max` and the first-maximum pass of
/// `scatter_max_grad`: the rows are initialised, every index entry whose
/// position falls in the rows combines its source elements into the
/// output, in increasing `e`, and `scatter_max` then replaces the empty
/// elements by 0.
fn emit_scatter(g: &Gen, b: &mut FunctionBuilder, geo: &IndexGeo, se: (Value, Value)) {
    let kind = geo.kind;
    let inner = geo.inner;
    let (row_bytes, x_outer, out_outer) = (inner * 4, geo.e * inner * 4, geo.n * inner * 4);
    let row_len = if geo.outer_per_row > 0 { geo.outer_per_row * geo.n * inner } else { inner };
    let init = match kind {
        IndexKind::ScatterSum => 0,
        // -1 for MaxFirst: no position yet.
        _ => EMPTY,
    };
    fill_rows(g, b, se, row_len, init);
    let ((o_lo, o_hi), span) = row_span(g, b, geo, se, geo.n);
    let x_o = at(g, b, g.bases[0], o_lo, x_outer);
    let y_o = (kind == IndexKind::MaxFirst).then(|| at(g, b, g.bases[2], o_lo, out_outer));
    let out_o = at(g, b, g.bases[g.out()], o_lo, out_outer);
    let outer_count = b.ins().isub(o_hi, o_lo);
    let outer_rem = g.var(b, outer_count);
    let outer = Counted::begin(b, outer_rem, 1);
    {
        let idx = g.var(b, g.bases[1]);
        let x_base = b.use_var(x_o);
        let x_e = g.var(b, x_base);
        let zero = b.ins().iconst(g.ptr, 0);
        let e_var = g.var(b, zero);
        let count = b.ins().iconst(g.ptr, geo.e as i64);
        let rem = g.var(b, count);
        let lp = Counted::begin(b, rem, 1);
        let (idx_p, x_p, e) = (b.use_var(idx), b.use_var(x_e), b.use_var(e_var));
        let (p, valid) = load_index(g, b, 1, idx_p, span);
        let (take, next) = (b.create_block(), b.create_block());
        b.ins().brif(valid, take, &[], next, &[]);

        b.switch_to_block(take);
        let off = b.ins().imul_imm_s(p, row_bytes as i64);
        let out_base = b.use_var(out_o);
        let out_p = b.ins().iadd(out_base, off);
        let mut starts = vec![x_p, out_p];
        if let Some(y_o) = y_o {
            let base = b.use_var(y_o);
            starts.push(b.ins().iadd(base, off));
        }
        let count = b.ins().iconst(g.ptr, inner as i64);
        for_run(g, b, count, inner >= 4, &starts, &mut |b, lanes, ptrs| {
            let v = g.load(b, lanes.float, 0, ptrs[0], 0);
            let new = match kind {
                IndexKind::ScatterSum => {
                    let cur = g.load(b, lanes.float, g.out(), ptrs[1], 0);
                    b.ins().fadd(cur, v)
                }
                IndexKind::ScatterMax => {
                    let cur = g.load(b, lanes.float, g.out(), ptrs[1], 0);
                    max_step(b, lanes, cur, v)
                }
                _ => {
                    let cur = g.load(b, lanes.int, g.out(), ptrs[1], 0);
                    let y = g.load_guarded(b, lanes.float, 2, ptrs[2], 0);
                    let here = position_lanes(b, lanes, e);
                    first_step(b, lanes, cur, (v, y), here)
                }
            };
            g.store(b, new, ptrs[1], 0);
        });
        b.ins().jump(next, &[]);

        b.switch_to_block(next);
        lp.end(b, &[(idx, 4), (x_e, row_bytes as i64), (e_var, 1)]);
    }
    let mut steps = vec![(x_o, x_outer as i64), (out_o, out_outer as i64)];
    steps.extend(y_o.map(|y| (y, out_outer as i64)));
    outer.end(b, &steps);

    if kind == IndexKind::ScatterMax {
        // Elements that received nothing are 0.
        let (start, end) = se;
        let rows = b.ins().isub(end, start);
        let count = b.ins().imul_imm_s(rows, row_len as i64);
        let first = b.ins().imul_imm_s(start, row_len as i64 * 4);
        let p = b.ins().iadd(g.bases[g.out()], first);
        for_run(g, b, count, true, &[p], &mut |b, lanes, ptrs| {
            let cur = g.load(b, lanes.float, g.out(), ptrs[0], 0);
            let mut em = Emit { b: &mut *b, lanes };
            let empty = em.i(EMPTY as i32);
            let bits = em.b.ins().bitcast(lanes.int, MemFlagsData::new(), cur);
            let is_empty = Mask(em.b.ins().icmp(IntCC::Equal, bits, empty));
            let zero = em.f(0.0);
            let v = em.select(is_empty, zero, cur);
            g.store(b, v, ptrs[0], 0);
        });
    }
}

/// One contribution `v` to a `scatter_max` element `cur`: `v` (NaN as the
/// canonical NaN) when `cur` is empty, `v > cur` or `v` is NaN; else `cur`,
/// which keeps the first of equal values and a NaN already there.
fn max_step(b: &mut FunctionBuilder, lanes: Lanes, cur: Value, v: Value) -> Value {
    let mut e = Emit { b, lanes };
    let empty = e.i(EMPTY as i32);
    let bits = e.b.ins().bitcast(lanes.int, MemFlagsData::new(), cur);
    let is_empty = Mask(e.b.ins().icmp(IntCC::Equal, bits, empty));
    let larger = e.cmp(FloatCC::GreaterThan, v, cur);
    let nan = e.cmp(FloatCC::Unordered, v, v);
    let take = e.or(is_empty, larger);
    let take = e.or(take, nan);
    let canonical = e.f(f32::NAN);
    let v = e.select(nan, canonical, v);
    e.select(take, v, cur)
}

/// One candidate `e` (i32 lanes `here`) for the first-maximum element
/// `cur` (i32 lanes, -1 while none): taken when there is none yet and the
/// contribution `x` equals the maximum `y` (NaN matching NaN).
fn first_step(
    b: &mut FunctionBuilder,
    lanes: Lanes,
    cur: Value,
    (x, y): (Value, Value),
    here: Value,
) -> Value {
    let mut e = Emit { b, lanes };
    let equal = e.cmp(FloatCC::Equal, x, y);
    let x_nan = e.cmp(FloatCC::Unordered, x, x);
    let y_nan = e.cmp(FloatCC::Unordered, y, y);
    let both_nan = e.and(x_nan, y_nan);
    let matches = e.or(equal, both_nan);
    let none = e.i(-1);
    let unset = Mask(e.b.ins().icmp(IntCC::Equal, cur, none));
    let take = e.and(unset, matches);
    if lanes.is_vector() {
        e.b.ins().bitselect(take.0, here, cur)
    } else {
        e.b.ins().select(take.0, here, cur)
    }
}
