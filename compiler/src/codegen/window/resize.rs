//! Bilinear resizing (half-pixel centres) and its adjoint: each axis's two
//! neighbours and weights are computed once per position of that axis with
//! the interpreter's f32 arithmetic ([`axis_tap`]); short innermost axes
//! read them from a table built once per call ([`resize_table`]).

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;

use super::emitter::{for_planes, zero_rows, Counted, Gen};
use super::strides_of;

/// Interpolation geometry: the sampled buffer has spatial sizes `from`, the
/// positions iterated have sizes `to`.
pub(super) struct ResizeGeo {
    pub from: Vec<usize>,
    pub to: Vec<usize>,
    pub channels: usize,
    /// True for the adjoint (scatter into the output instead of gathering).
    pub grad: bool,
}

/// One axis's interpolation taps of the current position: byte offsets of
/// the two neighbours and their weights `1 - λ` and `λ`.
struct AxisTap {
    off: [Value; 2],
    weight: [Value; 2],
}

/// Resize (gather) or its adjoint (scatter) over the planes of rows
/// `start..end`.
pub(super) fn emit_resize(g: &Gen, b: &mut FunctionBuilder, geo: &ResizeGeo, se: (Value, Value)) {
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
