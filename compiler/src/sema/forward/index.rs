//! Selecting along one axis: the IR of indexing (`x[i]`, `x[a:b:s]`),
//! `split`, and stacking results along a new axis (`map`).
//!
//! Bounds are already resolved by sema (non-negative, in range, step ≥ 1).
//! A strided slice is a zero-copy pattern of existing primitives: pad the
//! axis to a multiple of the step, view it as `[count, step]`, keep column 0.

use super::emit::{emit, reshape_to, shape};
use super::{Built, Cx};
use crate::ir::{Dim, Op, Shape, ValueId};

/// `x` restricted to `start..stop` along `axis` (the axis is kept).
pub fn slice(cx: &mut dyn Cx, x: ValueId, axis: usize, start: usize, stop: usize) -> Built {
    let full = shape(cx, x).dims()[axis].known();
    if start == 0 && full == Some(stop) {
        return Ok(x);
    }
    emit(cx, Op::Slice { axis, start, end: stop }, &[x])
}

/// Every `step`-th element of `start..stop` along `axis` (the axis is kept,
/// with `ceil((stop - start) / step)` elements).
pub fn strided(cx: &mut dyn Cx, x: ValueId, axis: usize, start: usize, stop: usize, step: usize) -> Built {
    let count = (stop - start).div_ceil(step);
    if step == 1 || count == 1 {
        return slice(cx, x, axis, start, start + (count - 1) * step + 1);
    }
    let len = shape(cx, x).dims()[axis].known().unwrap_or(stop);
    // The elements start, start + step, ..., as column 0 of a [count, step] view.
    let end = start + count * step;
    let mut v = slice(cx, x, axis, start, end.min(len))?;
    if end > len {
        v = emit(cx, Op::Pad { axis, lo: 0, hi: end - len }, &[v])?;
    }
    let dims = shape(cx, v).dims().to_vec();
    let mut view = dims[..axis].to_vec();
    view.extend([Dim::Known(count), Dim::Known(step)]);
    view.extend_from_slice(&dims[axis + 1..]);
    let v = reshape_to(cx, v, Shape(view))?;
    let v = emit(cx, Op::Slice { axis: axis + 1, start: 0, end: 1 }, &[v])?;
    let mut out = dims[..axis].to_vec();
    out.push(Dim::Known(count));
    out.extend_from_slice(&dims[axis + 1..]);
    reshape_to(cx, v, Shape(out))
}

/// Element `i` along `axis`, the axis removed.
pub fn take(cx: &mut dyn Cx, x: ValueId, axis: usize, i: usize) -> Built {
    let v = slice(cx, x, axis, i, i + 1)?;
    let mut dims = shape(cx, v).dims().to_vec();
    dims.remove(axis);
    reshape_to(cx, v, Shape(dims))
}

/// `x` with a new axis of size 1 at `axis`.
pub fn unsqueeze(cx: &mut dyn Cx, x: ValueId, axis: usize) -> Built {
    let mut dims = shape(cx, x).dims().to_vec();
    dims.insert(axis, Dim::Known(1));
    reshape_to(cx, x, Shape(dims))
}

/// Tensors of equal shape joined along a new axis `axis`.
pub fn stack_at(cx: &mut dyn Cx, xs: &[ValueId], axis: usize) -> Built {
    let mut parts = Vec::with_capacity(xs.len());
    for &x in xs {
        parts.push(unsqueeze(cx, x, axis)?);
    }
    if let [only] = parts.as_slice() {
        return Ok(*only);
    }
    emit(cx, Op::Concat { axis }, &parts)
}
