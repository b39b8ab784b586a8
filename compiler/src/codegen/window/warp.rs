//! Warping and its two adjoints: `warp` (gather), `warp_grad_input`
//! (scatter into the image's planes) and `warp_grad_flow` (the slope of the
//! interpolation, summed over channels).
//!
//! The taps are data-dependent, so there is no interior/border split.
//! Instead each row's positions are taken in blocks of up to [`BLOCK`]: the
//! taps of a block's positions are computed once ([`axis_taps`]) with the
//! interpreter's f32 steps — integer tap indices from the saturating
//! conversion clamped to `±2^30`, the boundary rule in integer arithmetic —
//! into a table on the stack (byte offsets within a plane, `zeros` masks,
//! weights), and then every channel plane walks the block's positions
//! contiguously, reading its taps from the table. Every tap index is
//! resolved into the grid before it is used, so no flow, however large or
//! NaN, addresses memory outside the image. The scatter of
//! `warp_grad_input` writes only the planes of its own rows, each plane's
//! positions in row-major order and each position's taps in row-major
//! order; the flow gradient adds the channels' terms into its (zeroed)
//! output in channel order: the interpreter's orders, whatever the thread
//! count.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::emitter::{for_planes, zero_rows, Counted, Gen};
use super::{check_size, WindowKernel};
use crate::ir::op::{Boundary, WarpAttrs, WarpMode};

/// Tap indices are clamped to `±2^30` (the interpreter's `INDEX_LIMIT`).
const INDEX_LIMIT: i64 = 1 << 30;

/// Positions whose taps are tabulated before the channels walk them (a
/// table of 12 KiB for bilinear: it stays in L1 while the planes stream).
const BLOCK: usize = 256;

/// Which of the three warp ops a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WarpKind {
    /// `warp`: inputs `x`, `flow`; output of `x`'s shape.
    Sample,
    /// `warp_grad_input`: inputs `flow`, `dy`; output of `dy`'s shape.
    GradInput,
    /// `warp_grad_flow`: inputs `x`, `flow`, `dy`; output of `flow`'s shape.
    GradFlow,
}

/// A warp kernel's validated geometry.
pub(super) struct WarpGeo {
    kind: WarpKind,
    attrs: WarpAttrs,
    channels: usize,
    h: usize,
    w: usize,
}

impl WarpGeo {
    /// Checks the kernel's shapes: an image `[N, C, H, W]`, a flow
    /// `[N, 2, H, W]`, an output gradient of the image's shape, and the
    /// output.
    pub fn new(k: &WindowKernel, kind: WarpKind, attrs: WarpAttrs) -> Result<WarpGeo, String> {
        let (image, flow, output) = match kind {
            WarpKind::Sample => (&k.inputs[0], &k.inputs[1], &k.inputs[0]),
            WarpKind::GradInput => (&k.inputs[1], &k.inputs[0], &k.inputs[1]),
            WarpKind::GradFlow => {
                if k.inputs[2] != k.inputs[0] {
                    return Err(format!(
                        "output gradient {:?} does not match the image {:?}",
                        k.inputs[2], k.inputs[0]
                    ));
                }
                (&k.inputs[0], &k.inputs[1], &k.inputs[1])
            }
        };
        let [n, c, h, w] = image[..] else {
            return Err(format!("image {image:?} is not [N, C, H, W]"));
        };
        if flow[..] != [n, 2, h, w] {
            return Err(format!("flow {flow:?} is not [N, 2, H, W] for the image {image:?}"));
        }
        if k.output != *output {
            return Err(format!("output shape {:?} should be {output:?}", k.output));
        }
        check_size("a flow row", 2 * h * w)?;
        check_size("an image row", c * h * w)?;
        Ok(WarpGeo { kind, attrs, channels: c, h, w })
    }

    /// Elements in one `[H, W]` plane.
    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// Bytes of one plane.
    fn plane_bytes(&self) -> i64 {
        self.plane() as i64 * 4
    }

    /// Taps per axis: 2 for bilinear, 1 for nearest.
    fn taps_per_axis(&self) -> usize {
        match self.attrs.mode {
            WarpMode::Bilinear => 2,
            WarpMode::Nearest => 1,
        }
    }

    /// Taps per position.
    fn taps(&self) -> usize {
        self.taps_per_axis() * self.taps_per_axis()
    }

    /// Bytes of one position's table entry: per tap an i32 byte offset and
    /// an i32 mask, then the row weights and the column weights (f32).
    fn entry_bytes(&self) -> i32 {
        (8 * self.taps() + 8 * self.taps_per_axis()) as i32
    }
}

/// Warp (or an adjoint) over the rows `start..end` of the output.
pub(super) fn emit_warp(g: &Gen, b: &mut FunctionBuilder, geo: &WarpGeo, (start, end): (Value, Value)) {
    let plane = geo.plane();
    match geo.kind {
        WarpKind::Sample => {}
        WarpKind::GradInput => zero_rows(g, b, start, end, geo.channels * plane),
        WarpKind::GradFlow => {
            zero_rows(g, b, start, end, 2 * plane);
            if geo.attrs.mode == WarpMode::Nearest {
                // Nearest sampling does not depend on the flow.
                return;
            }
        }
    }
    let block = plane.min(BLOCK);
    let bytes = block as u32 * geo.entry_bytes() as u32;
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 4));
    let table = b.ins().stack_addr(g.ptr, slot, 0);
    let image_row = geo.channels as i64 * geo.plane_bytes();
    let flow_row = 2 * geo.plane_bytes();
    let out = g.out();
    // Each row's buffers: the operands in argument order, then the output.
    let bufs: Vec<(usize, i64)> = match geo.kind {
        WarpKind::Sample => vec![(0, image_row), (1, flow_row), (out, image_row)],
        WarpKind::GradInput => vec![(0, flow_row), (1, image_row), (out, image_row)],
        WarpKind::GradFlow => vec![(0, image_row), (1, flow_row), (2, image_row), (out, flow_row)],
    };
    for_planes(g, b, start, end, 1, &bufs, &mut |b, p| {
        let (flow, rows) = match geo.kind {
            WarpKind::Sample => (p[1], vec![p[0], p[2]]),
            WarpKind::GradInput => (p[0], vec![p[1], p[2]]),
            WarpKind::GradFlow => (p[1], vec![p[0], p[2], p[3]]),
        };
        blocks(g, b, geo, table, flow, &rows);
    });
}

/// One row in blocks of positions: each block's taps into `table` (from
/// the row of the flow at `flow`), then the channels. `rows` are the row
/// pointers the kind reads and writes: `[x, out]`, `[dy, dx]` or
/// `[x, dy, dflow]`.
fn blocks(g: &Gen, b: &mut FunctionBuilder, geo: &WarpGeo, table: Value, flow: Value, rows: &[Value]) {
    let plane = geo.plane();
    let block = plane.min(BLOCK);
    // The position (i, j) and its flow element carry over from block to block.
    let i_var = counter(b);
    let j_var = counter(b);
    let flow_var = g.var(b, flow);
    let zero = b.ins().iconst(g.ptr, 0);
    // The byte offset of the block's first position in a plane.
    let pos_var = g.var(b, zero);
    let all = b.ins().iconst(g.ptr, plane as i64);
    let left_var = g.var(b, all);
    let count = b.ins().iconst(g.ptr, plane.div_ceil(block) as i64);
    let rem = g.var(b, count);
    let lp = Counted::begin(b, rem, 1);
    let left = b.use_var(left_var);
    let full = b.ins().iconst(g.ptr, block as i64);
    let len = b.ins().umin(left, full);
    fill_table(g, b, geo, table, len, (i_var, j_var, flow_var));
    let pos = b.use_var(pos_var);
    match geo.kind {
        WarpKind::Sample => sample(g, b, geo, table, len, pos, [rows[0], rows[1]]),
        WarpKind::GradInput => scatter(g, b, geo, table, len, pos, [rows[0], rows[1]]),
        WarpKind::GradFlow => slope(g, b, geo, table, len, pos, [rows[0], rows[1], rows[2]]),
    }
    lp.end(b, &[(pos_var, block as i64 * 4), (left_var, -(block as i64))]);
}

/// An i64 variable starting at 0.
fn counter(b: &mut FunctionBuilder) -> Variable {
    let var = b.declare_var(types::I64);
    let zero = b.ins().iconst(types::I64, 0);
    b.def_var(var, zero);
    var
}

/// Computes the taps of the next `len` positions into `table`, one entry
/// per position, starting at the position `(i, j)` held in the variables
/// with the pointer to its element of the flow row; they advance row-major.
fn fill_table(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    table: Value,
    len: Value,
    (i_var, j_var, flow_var): (Variable, Variable, Variable),
) {
    let buf = match geo.kind {
        WarpKind::GradInput => 0,
        WarpKind::Sample | WarpKind::GradFlow => 1,
    };
    let t_var = g.var(b, table);
    let rem = g.var(b, len);
    let lp = Counted::begin(b, rem, 1);
    let (i, j, at, t) = (b.use_var(i_var), b.use_var(j_var), b.use_var(flow_var), b.use_var(t_var));
    let dy = g.load(b, types::F32, buf, at, 0);
    let dx = g.load(b, types::F32, buf, at, geo.plane_bytes() as i32);
    let fi = b.ins().fcvt_from_sint(types::F32, i);
    let fj = b.ins().fcvt_from_sint(types::F32, j);
    let py = b.ins().fadd(fi, dy);
    let px = b.ins().fadd(fj, dx);
    let ty = axis_taps(b, geo.attrs, py, geo.h, geo.w as i64 * 4);
    let tx = axis_taps(b, geo.attrs, px, geo.w, 4);
    let flags = MemFlagsData::new().with_notrap();
    let taps = geo.taps() as i32;
    for a in 0..ty.count {
        for c in 0..tx.count {
            let k = (a * tx.count + c) as i32;
            let off = b.ins().iadd(ty.off[a], tx.off[c]);
            let off = b.ins().ireduce(types::I32, off);
            b.ins().store(flags, off, t, 4 * k);
            if let (Some(u), Some(v)) = (ty.valid[a], tx.valid[c]) {
                let inside = b.ins().band(u, v);
                let mask = b.ins().bmask(types::I32, inside);
                b.ins().store(flags, mask, t, 4 * (taps + k));
            }
        }
    }
    for (k, &w) in ty.weight.iter().take(ty.count).chain(tx.weight.iter().take(tx.count)).enumerate() {
        b.ins().store(flags, w, t, 8 * taps + 4 * k as i32);
    }
    // The next position: (i, j + 1), or (i + 1, 0) after the last column.
    let next = b.ins().iadd_imm_s(j, 1);
    let wraps = b.ins().icmp_imm_s(IntCC::Equal, next, geo.w as i64);
    let zero = b.ins().iconst(types::I64, 0);
    let j = b.ins().select(wraps, zero, next);
    b.def_var(j_var, j);
    let carry = b.ins().uextend(types::I64, wraps);
    let i = b.ins().iadd(i, carry);
    b.def_var(i_var, i);
    lp.end(b, &[(flow_var, 4), (t_var, i64::from(geo.entry_bytes()))]);
}

/// One axis's taps of the current position.
struct AxisTaps {
    /// Byte offsets of the taps' grid points along the axis.
    off: [Value; 2],
    /// Under `zeros`: whether each tap lies inside the grid (an `i8`).
    valid: [Option<Value>; 2],
    /// The taps' weights; NaN for a non-finite position.
    weight: [Value; 2],
    /// 2 for bilinear, 1 for nearest.
    count: usize,
}

/// The taps of position `p` (f32) along an axis of `n ≥ 1` points whose
/// stride is `stride` bytes: bilinear `⌊p⌋, ⌊p⌋ + 1` with weights
/// `(1 − f, f)`, nearest `round(p)` (halves away from zero) with weight
/// `(p − p) + 1`; the index is the saturating conversion clamped to
/// `±2^30` (NaN → 0), then the boundary rule.
fn axis_taps(b: &mut FunctionBuilder, attrs: WarpAttrs, p: Value, n: usize, stride: i64) -> AxisTaps {
    let one = b.ins().f32const(1.0);
    let (t, weight, count) = match attrs.mode {
        WarpMode::Bilinear => {
            let q = b.ins().floor(p);
            let f = b.ins().fsub(p, q);
            let rest = b.ins().fsub(one, f);
            (b.ins().fcvt_to_sint_sat(types::I64, q), [rest, f], 2)
        }
        WarpMode::Nearest => {
            // round(p) = trunc(p) ± 1 where |p − trunc(p)| ≥ 0.5, in integers.
            let whole = b.ins().trunc(p);
            let frac = b.ins().fsub(p, whole);
            let frac = b.ins().fabs(frac);
            let half = b.ins().f32const(0.5);
            let away = b.ins().fcmp(FloatCC::GreaterThanOrEqual, frac, half);
            let fzero = b.ins().f32const(0.0);
            let negative = b.ins().fcmp(FloatCC::LessThan, p, fzero);
            let (down, up, zero) = (
                b.ins().iconst(types::I64, -1),
                b.ins().iconst(types::I64, 1),
                b.ins().iconst(types::I64, 0),
            );
            let step = b.ins().select(negative, down, up);
            let step = b.ins().select(away, step, zero);
            let t = b.ins().fcvt_to_sint_sat(types::I64, whole);
            let t = b.ins().iadd(t, step);
            let nan_or_zero = b.ins().fsub(p, p);
            let w = b.ins().fadd(nan_or_zero, one);
            (t, [w, w], 1)
        }
    };
    let (lo, hi) = (b.ins().iconst(types::I64, -INDEX_LIMIT), b.ins().iconst(types::I64, INDEX_LIMIT));
    let t = b.ins().smax(t, lo);
    let t = b.ins().smin(t, hi);
    let (i0, v0) = resolve(b, attrs.boundary, t, n);
    let (i1, v1) = if count == 2 {
        match attrs.boundary {
            Boundary::Circular => {
                // (t + 1) mod n from t mod n.
                let next = b.ins().iadd_imm_s(i0, 1);
                let wraps = b.ins().icmp_imm_s(IntCC::Equal, next, n as i64);
                let zero = b.ins().iconst(types::I64, 0);
                (b.ins().select(wraps, zero, next), None)
            }
            _ => {
                let t1 = b.ins().iadd_imm_s(t, 1);
                resolve(b, attrs.boundary, t1, n)
            }
        }
    } else {
        (i0, v0)
    };
    let off0 = b.ins().imul_imm_s(i0, stride);
    let off1 = b.ins().imul_imm_s(i1, stride);
    AxisTaps { off: [off0, off1], valid: [v0, v1], weight, count }
}

/// Tap index `t` (i64, `|t| ≤ 2^30 + 1`) along an axis of `n ≥ 1` points
/// resolved into `0..n` by the boundary rule, and under `zeros` whether it
/// was inside.
fn resolve(b: &mut FunctionBuilder, boundary: Boundary, t: Value, n: usize) -> (Value, Option<Value>) {
    let n = n as i64;
    match boundary {
        Boundary::Zeros | Boundary::Edge => {
            let (zero, top) = (b.ins().iconst(types::I64, 0), b.ins().iconst(types::I64, n - 1));
            let i = b.ins().smax(t, zero);
            let i = b.ins().smin(i, top);
            // Negative indices are large unsigned numbers.
            let inside =
                (boundary == Boundary::Zeros).then(|| b.ins().icmp_imm_u(IntCC::UnsignedLessThan, t, n));
            (i, inside)
        }
        Boundary::Circular => {
            let size = b.ins().iconst(types::I64, n);
            let r = b.ins().srem(t, size);
            let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
            let zero = b.ins().iconst(types::I64, 0);
            let lift = b.ins().select(negative, size, zero);
            (b.ins().iadd(r, lift), None)
        }
    }
}

/// One position's taps, read back from its table entry: tap `(a, b)` is
/// row tap `a` and column tap `b`.
struct Taps {
    /// Byte offsets within a plane (i64), `[a][b]`.
    off: [[Value; 2]; 2],
    /// Under `zeros`: all ones where the tap is inside the grid, else 0 (i32).
    mask: [[Option<Value>; 2]; 2],
    /// The row taps' and the column taps' weights.
    wy: [Value; 2],
    wx: [Value; 2],
    /// Taps per axis: 2 for bilinear, 1 for nearest.
    axis: usize,
}

/// The taps of the table entry at `t`.
fn read_taps(b: &mut FunctionBuilder, geo: &WarpGeo, t: Value) -> Taps {
    // The table is written in this function: no `readonly`.
    let flags = MemFlagsData::new().with_notrap();
    let taps = geo.taps() as i32;
    let axis = geo.taps_per_axis();
    let mut off = [[t; 2]; 2];
    let mut mask = [[None; 2]; 2];
    for a in 0..axis {
        for c in 0..axis {
            let k = (a * axis + c) as i32;
            off[a][c] = b.ins().sload32(flags, t, 4 * k);
            if geo.attrs.boundary == Boundary::Zeros {
                mask[a][c] = Some(b.ins().load(types::I32, flags, t, 4 * (taps + k)));
            }
        }
    }
    let weight =
        |b: &mut FunctionBuilder, k: usize| b.ins().load(types::F32, flags, t, 8 * taps + 4 * k as i32);
    let (mut wy, mut wx) = ([t; 2], [t; 2]);
    for a in 0..axis {
        wy[a] = weight(b, a);
        wx[a] = weight(b, axis + a);
    }
    Taps { off, mask, wy, wx, axis }
}

/// `v` with the bits of `mask` (all ones or zero, so `v` or `+0.0`); `v`
/// itself without a mask.
fn keep(b: &mut FunctionBuilder, v: Value, mask: Option<Value>) -> Value {
    let Some(mask) = mask else { return v };
    let bits = b.ins().bitcast(types::I32, MemFlagsData::new(), v);
    let kept = b.ins().band(bits, mask);
    b.ins().bitcast(types::F32, MemFlagsData::new(), kept)
}

/// Loops over the channels of the current row: per start pointer, a
/// pointer advancing a plane per channel.
fn for_channels(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    starts: &[Value],
    body: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) {
    let vars: Vec<Variable> = starts.iter().map(|&p| g.var(b, p)).collect();
    let c = b.ins().iconst(g.ptr, geo.channels as i64);
    let rem = g.var(b, c);
    let lp = Counted::begin(b, rem, 1);
    let planes: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
    body(b, &planes);
    let steps: Vec<(Variable, i64)> = vars.iter().map(|&v| (v, geo.plane_bytes())).collect();
    lp.end(b, &steps);
}

/// Loops over the `len` positions of the block with their taps from
/// `table`: per start pointer, a pointer advancing an element per position.
fn for_positions(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    (table, len): (Value, Value),
    starts: &[Value],
    body: &mut dyn FnMut(&mut FunctionBuilder, &Taps, &[Value]),
) {
    let t_var = g.var(b, table);
    let vars: Vec<Variable> = starts.iter().map(|&p| g.var(b, p)).collect();
    let rem = g.var(b, len);
    let lp = Counted::begin(b, rem, 1);
    let t = b.use_var(t_var);
    let taps = read_taps(b, geo, t);
    let ptrs: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
    body(b, &taps, &ptrs);
    let mut steps: Vec<(Variable, i64)> = vars.iter().map(|&v| (v, 4)).collect();
    steps.push((t_var, i64::from(geo.entry_bytes())));
    lp.end(b, &steps);
}

/// The values of the taps in the plane at `plane` (buffer `buf`), `[a][b]`
/// (zero outside the grid under `zeros`; unused entries repeat `plane`).
fn tap_values(g: &Gen, b: &mut FunctionBuilder, buf: usize, plane: Value, taps: &Taps) -> [[Value; 2]; 2] {
    let mut v = [[plane; 2]; 2];
    for (a, row) in v.iter_mut().enumerate().take(taps.axis) {
        for (c, value) in row.iter_mut().enumerate().take(taps.axis) {
            let at = b.ins().iadd(plane, taps.off[a][c]);
            let x = g.load(b, types::F32, buf, at, 0);
            *value = keep(b, x, taps.mask[a][c]);
        }
    }
    v
}

/// `Σ_b wx_b · v_ab` for row tap `a`, summed from the first tap.
fn row_sum(b: &mut FunctionBuilder, taps: &Taps, v: &[[Value; 2]; 2], a: usize) -> Value {
    let mut r = b.ins().fmul(taps.wx[0], v[a][0]);
    for (&w, &x) in taps.wx.iter().zip(&v[a]).take(taps.axis).skip(1) {
        let t = b.ins().fmul(w, x);
        r = b.ins().fadd(r, t);
    }
    r
}

/// `warp` for the block of `len` positions at byte offset `pos`: every
/// channel's samples `Σ_a wy_a · (Σ_b wx_b · v_ab)`, from the row of `x`
/// into the row of `out`.
fn sample(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    table: Value,
    len: Value,
    pos: Value,
    [x, out]: [Value; 2],
) {
    let out_at = b.ins().iadd(out, pos);
    for_channels(g, b, geo, &[x, out_at], &mut |b, planes| {
        let x_plane = planes[0];
        for_positions(g, b, geo, (table, len), &planes[1..], &mut |b, taps, p| {
            let v = tap_values(g, b, 0, x_plane, taps);
            let r = row_sum(b, taps, &v, 0);
            let mut y = b.ins().fmul(taps.wy[0], r);
            for a in 1..taps.axis {
                let r = row_sum(b, taps, &v, a);
                let t = b.ins().fmul(taps.wy[a], r);
                y = b.ins().fadd(y, t);
            }
            g.store(b, y, p[0], 0);
        });
    });
}

/// `warp_grad_input` for the block of `len` positions at byte offset
/// `pos`: every channel's `dy` added to its taps with weight
/// `wx_b · (wy_a · dy)`, from the row of `dy` into the row of `dx` (`+0.0`
/// for a tap outside the grid under `zeros`, which leaves the clamped tap's
/// sum unchanged: sums that start at `+0.0` are never `−0.0`).
fn scatter(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    table: Value,
    len: Value,
    pos: Value,
    [dy, dx]: [Value; 2],
) {
    let out = g.out();
    let dy_at = b.ins().iadd(dy, pos);
    for_channels(g, b, geo, &[dy_at, dx], &mut |b, planes| {
        let dx_plane = planes[1];
        for_positions(g, b, geo, (table, len), &planes[..1], &mut |b, taps, p| {
            let gv = g.load(b, types::F32, 1, p[0], 0);
            for a in 0..taps.axis {
                let ga = b.ins().fmul(taps.wy[a], gv);
                for c in 0..taps.axis {
                    let contribution = b.ins().fmul(taps.wx[c], ga);
                    let contribution = keep(b, contribution, taps.mask[a][c]);
                    let at = b.ins().iadd(dx_plane, taps.off[a][c]);
                    let old = g.load(b, types::F32, out, at, 0);
                    let new = b.ins().fadd(old, contribution);
                    g.store(b, new, at, 0);
                }
            }
        });
    });
}

/// `warp_grad_flow` (bilinear) for the block of `len` positions at byte
/// offset `pos`: channel by channel, `dy · (r1 − r0)` added to the row
/// plane and `dy · (wy0·(v01 − v00) + wy1·(v11 − v10))` to the column plane
/// of the (zeroed) row of `dflow`, from the rows of `x` and `dy`.
fn slope(
    g: &Gen,
    b: &mut FunctionBuilder,
    geo: &WarpGeo,
    table: Value,
    len: Value,
    pos: Value,
    [x, dy, dflow]: [Value; 3],
) {
    let out = g.out();
    let dy_at = b.ins().iadd(dy, pos);
    let out_at = b.ins().iadd(dflow, pos);
    let column_plane = geo.plane_bytes() as i32;
    for_channels(g, b, geo, &[x, dy_at], &mut |b, planes| {
        let x_plane = planes[0];
        for_positions(g, b, geo, (table, len), &[planes[1], out_at], &mut |b, taps, p| {
            let v = tap_values(g, b, 0, x_plane, taps);
            let r0 = row_sum(b, taps, &v, 0);
            let r1 = row_sum(b, taps, &v, 1);
            let gv = g.load(b, types::F32, 2, p[0], 0);
            let d = b.ins().fsub(r1, r0);
            let t = b.ins().fmul(gv, d);
            let acc = g.load(b, types::F32, out, p[1], 0);
            let acc = b.ins().fadd(acc, t);
            g.store(b, acc, p[1], 0);
            let d0 = b.ins().fsub(v[0][1], v[0][0]);
            let d0 = b.ins().fmul(taps.wy[0], d0);
            let d1 = b.ins().fsub(v[1][1], v[1][0]);
            let d1 = b.ins().fmul(taps.wy[1], d1);
            let d = b.ins().fadd(d0, d1);
            let t = b.ins().fmul(gv, d);
            let acc = g.load(b, types::F32, out, p[1], column_plane);
            let acc = b.ins().fadd(acc, t);
            g.store(b, acc, p[1], column_plane);
        });
    });
}

#[cfg(test)]
mod tests;
