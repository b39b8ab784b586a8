//! Shared building blocks of the lowerings: emitting primitive nodes,
//! checking operand types and sizes, and normalising axes. They keep each
//! built-in's builder close to its formula.

use super::{BuildError, Built, Cx};
use crate::ir::{BinaryOp, DType, Dim, Op, Shape, Type, UnaryOp, ValueId};

/// Largest size accepted for one dimension (2^31 elements).
pub(crate) const MAX_DIM: usize = 1 << 31;

pub(crate) fn ty(cx: &mut dyn Cx, v: ValueId) -> Type {
    cx.graph().ty(v).clone()
}

pub(crate) fn shape(cx: &mut dyn Cx, v: ValueId) -> Shape {
    cx.graph().ty(v).shape.clone()
}

/// Appends a primitive node at the call's location.
pub(crate) fn emit(cx: &mut dyn Cx, op: Op, args: &[ValueId]) -> Built {
    let loc = cx.loc();
    cx.graph().add(op, args, loc).map_err(BuildError::new)
}

/// An f32 scalar constant.
pub(crate) fn konst(cx: &mut dyn Cx, value: f64) -> ValueId {
    let loc = cx.loc();
    cx.graph().constant(value, DType::F32, loc)
}

/// NumPy broadcast of `x` to `to`; no node when the shape already matches.
pub(crate) fn broadcast(cx: &mut dyn Cx, x: ValueId, to: &Shape) -> Built {
    if shape(cx, x) == *to {
        return Ok(x);
    }
    emit(cx, Op::Broadcast { shape: to.clone() }, &[x])
}

/// A tensor of shape `to` filled with `value`.
pub(crate) fn splat(cx: &mut dyn Cx, value: f64, to: &Shape) -> Built {
    let c = konst(cx, value);
    broadcast(cx, c, to)
}

pub(crate) fn reshape_to(cx: &mut dyn Cx, x: ValueId, to: Shape) -> Built {
    if shape(cx, x) == to {
        return Ok(x);
    }
    emit(cx, Op::Reshape { shape: to }, &[x])
}

pub(crate) fn unary(cx: &mut dyn Cx, op: UnaryOp, x: ValueId) -> Built {
    emit(cx, Op::Unary(op), &[x])
}

/// Elementwise binary op on operands of equal shape.
pub(crate) fn bin(cx: &mut dyn Cx, op: BinaryOp, a: ValueId, b: ValueId) -> Built {
    emit(cx, Op::Binary(op), &[a, b])
}

/// `x op c` for a constant `c`.
pub(crate) fn bin_const(cx: &mut dyn Cx, op: BinaryOp, x: ValueId, c: f64) -> Built {
    let s = shape(cx, x);
    let c = splat(cx, c, &s)?;
    bin(cx, op, x, c)
}

/// `c op x` for a constant `c`.
pub(crate) fn const_bin(cx: &mut dyn Cx, op: BinaryOp, c: f64, x: ValueId) -> Built {
    let s = shape(cx, x);
    let c = splat(cx, c, &s)?;
    bin(cx, op, c, x)
}

/// Sum over `axes` (sorted, distinct); no node for an empty list.
pub(crate) fn reduce_sum(cx: &mut dyn Cx, x: ValueId, axes: &[usize]) -> Built {
    if axes.is_empty() {
        return Ok(x);
    }
    emit(cx, Op::ReduceSum { axes: axes.to_vec() }, &[x])
}

/// Mean over `axes`: the sum divided by the run-time element count, so
/// symbolic dimensions such as the batch size are handled.
pub(crate) fn reduce_mean(cx: &mut dyn Cx, x: ValueId, axes: &[usize]) -> Built {
    if axes.is_empty() {
        return Ok(x);
    }
    let sum = reduce_sum(cx, x, axes)?;
    let n = emit(cx, Op::Size { axes: axes.to_vec() }, &[x])?;
    let s = shape(cx, sum);
    let n = broadcast(cx, n, &s)?;
    bin(cx, BinaryOp::Div, sum, n)
}

/// Every axis of a rank-`rank` tensor.
pub(crate) fn all_axes(rank: usize) -> Vec<usize> {
    (0..rank).collect()
}

/// Mean of every element: an f32 scalar.
pub(crate) fn mean_all(cx: &mut dyn Cx, x: ValueId) -> Built {
    let r = shape(cx, x).rank();
    reduce_mean(cx, x, &all_axes(r))
}

/// `full` with the dimensions at `axes` replaced by 1.
pub(crate) fn kept_shape(full: &Shape, axes: &[usize]) -> Shape {
    Shape(
        full.dims()
            .iter()
            .enumerate()
            .map(|(i, d)| if axes.contains(&i) { Dim::Known(1) } else { d.clone() })
            .collect(),
    )
}

/// Brings a value reduced over `axes` back to `full` (reshape, then broadcast).
pub(crate) fn expand_back(cx: &mut dyn Cx, reduced: ValueId, full: &Shape, axes: &[usize]) -> Built {
    let kept = reshape_to(cx, reduced, kept_shape(full, axes))?;
    broadcast(cx, kept, full)
}

/// A per-channel vector `[C]` laid along axis 1 of `full` (`[N, C, ...]`).
pub(crate) fn channel_view(cx: &mut dyn Cx, v: ValueId, full: &Shape) -> Built {
    let axes: Vec<usize> = (0..full.rank()).filter(|&i| i != 1).collect();
    expand_back(cx, v, full, &axes)
}

/// Normalises a possibly negative axis for a tensor of rank `rank`.
pub(crate) fn norm_axis(what: &str, axis: i64, rank: usize) -> Result<usize, BuildError> {
    let r = rank as i64;
    if rank == 0 || axis < -r || axis >= r {
        let valid = if rank == 0 {
            "a scalar has no axes".to_string()
        } else {
            format!("valid axes are -{r} to {}", r - 1)
        };
        return Err(BuildError::new(format!(
            "`{what}`: axis {axis} is out of range for a tensor of rank {rank}"
        ))
        .note(valid));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// The operand's type, or an error if it is not an f32 tensor.
pub(crate) fn want_f32(cx: &mut dyn Cx, x: ValueId, what: &str, operand: usize) -> Result<Type, BuildError> {
    let t = ty(cx, x);
    if t.dtype != DType::F32 {
        return Err(BuildError::new(format!("`{what}` needs an f32 tensor, got {t}")).at(operand));
    }
    Ok(t)
}

/// A dimension that must be known at compile time.
pub(crate) fn known_dim(t: &Type, axis: usize, what: &str, operand: usize) -> Result<usize, BuildError> {
    match t.shape.dims().get(axis) {
        Some(Dim::Known(n)) => Ok(*n),
        Some(Dim::Sym(s)) => Err(BuildError::new(format!(
            "`{what}` needs a known size on axis {axis}, got symbolic `{s}` in {t}"
        ))
        .at(operand)),
        None => Err(BuildError::new(format!("`{what}`: {t} has no axis {axis}")).at(operand)),
    }
}

/// Checks a size argument: positive and at most [`MAX_DIM`].
pub(crate) fn check_size(n: usize, what: &str) -> Result<(), BuildError> {
    if n == 0 {
        return Err(BuildError::new(format!("{what} must be positive, got 0")));
    }
    if n > MAX_DIM {
        return Err(BuildError::new(format!("{what} is too large: {n} exceeds 2^31")));
    }
    Ok(())
}

/// Most elements of one parameter tensor (2^31).
pub(crate) const MAX_PARAM_ELEMENTS: usize = 1 << 31;

/// Checks that a parameter tensor of `shape` is not absurdly large (a clear
/// error rather than an allocation that fails at run time).
pub(crate) fn check_param_size(shape: &[usize], what: &str) -> Result<(), BuildError> {
    match shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n)) {
        Some(n) if n <= MAX_PARAM_ELEMENTS => Ok(()),
        n => {
            let count = n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            Err(BuildError::new(format!(
                "{what} {shape:?} would have {count} elements, more than the limit of 2^31"
            ))
            .label("this layer is too large")
            .help("use fewer units or channels, or reduce the input first (pooling, a smaller dense layer)"))
        }
    }
}

/// Product of sizes, or an error if it is absurdly large.
pub(crate) fn product(sizes: &[usize], what: &str) -> Result<usize, BuildError> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&n| n <= MAX_DIM.saturating_mul(MAX_DIM))
        .ok_or_else(|| BuildError::new(format!("{what} is too large: the sizes {sizes:?} overflow")))
}

/// The result of a size computation, checked against [`MAX_DIM`].
pub(crate) fn checked_dim(n: Option<usize>, what: &str) -> Result<usize, BuildError> {
    match n {
        Some(n) if n <= MAX_DIM => Ok(n),
        _ => Err(BuildError::new(format!("{what} is too large (more than 2^31 elements along one axis)"))),
    }
}
