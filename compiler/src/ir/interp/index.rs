//! Gather and scatter along one axis by a list of i32 indices: `gather`,
//! its adjoint `scatter_sum`, `scatter_max` and the gradient of the latter.
//!
//! Every operand is viewed as `[outer, n, inner]` around the axis (`outer`
//! the product of the dimensions before it, `inner` of those after it), so
//! one loop nest serves every rank and axis. Indices outside `0..n` never
//! address memory: a gather reads 0 for them, a scatter drops them.
//! Contributions are visited in increasing index position `e`, which fixes
//! the order of every sum and the tie rule of every maximum.

use ndarray::{ArrayD, IxDyn};

use super::elementwise::max_nan;
use super::Real;

/// The sizes `(outer, n, inner)` of `shape` around `axis`.
fn around(shape: &[usize], axis: usize) -> Result<(usize, usize, usize), String> {
    let n = *shape.get(axis).ok_or_else(|| format!("axis {axis} out of range for shape {shape:?}"))?;
    Ok((shape[..axis].iter().product(), n, shape[axis + 1..].iter().product()))
}

/// `index` as a position in `0..n`, or `None` when it lies outside.
fn position(index: i32, n: usize) -> Option<usize> {
    usize::try_from(index).ok().filter(|&p| p < n)
}

/// The row-major elements of `a`.
fn elements<T: Clone>(a: &ArrayD<T>) -> Vec<T> {
    a.iter().cloned().collect()
}

/// `shape` with dimension `axis` replaced by `n`.
fn with_axis(shape: &[usize], axis: usize, n: usize) -> Vec<usize> {
    let mut out = shape.to_vec();
    out[axis] = n;
    out
}

fn array<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>, String> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| e.to_string())
}

/// `out[o, e, i] = x[o, index[e], i]`, 0 where `index[e]` is outside `0..n`.
pub(super) fn gather<T: Real>(x: &ArrayD<T>, index: &ArrayD<i32>, axis: usize) -> Result<ArrayD<T>, String> {
    let (outer, n, inner) = around(x.shape(), axis)?;
    let (xs, index) = (elements(x), elements(index));
    let e = index.len();
    let mut out = vec![T::zero(); outer * e * inner];
    for o in 0..outer {
        for (k, &i) in index.iter().enumerate() {
            if let Some(p) = position(i, n) {
                let from = (o * n + p) * inner;
                let to = (o * e + k) * inner;
                out[to..to + inner].copy_from_slice(&xs[from..from + inner]);
            }
        }
    }
    array(&with_axis(x.shape(), axis, e), out)
}

/// The contributions of a scatter: `(o, e, p)` for every outer position
/// `o` and index position `e` whose index `p = index[e]` lies in `0..size`,
/// in increasing `o`, then `e`.
fn contributions(
    outer: usize,
    index: &[i32],
    size: usize,
) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    (0..outer).flat_map(move |o| {
        index.iter().enumerate().filter_map(move |(e, &i)| position(i, size).map(|p| (o, e, p)))
    })
}

/// The element count of `[outer, size, inner]`, if it fits a `usize`.
fn scattered_len(outer: usize, size: usize, inner: usize) -> Result<usize, String> {
    outer
        .checked_mul(size)
        .and_then(|n| n.checked_mul(inner))
        .ok_or_else(|| format!("{size} segments are too many"))
}

/// Checks that the index has one entry per position of `x` along `axis`.
fn check_index(x: &[usize], axis: usize, index: &ArrayD<i32>) -> Result<(usize, usize, usize), String> {
    let (outer, e, inner) = around(x, axis)?;
    if index.len() != e {
        return Err(format!("{} indices for axis {axis} of {x:?}", index.len()));
    }
    Ok((outer, e, inner))
}

/// `out[o, p, i] = Σ_{e: index[e] = p} x[o, e, i]`, summed from 0 in
/// increasing `e`; out-of-range indices are dropped.
pub(super) fn scatter_sum<T: Real>(
    x: &ArrayD<T>,
    index: &ArrayD<i32>,
    axis: usize,
    size: usize,
) -> Result<ArrayD<T>, String> {
    let (outer, e, inner) = check_index(x.shape(), axis, index)?;
    let (xs, index) = (elements(x), elements(index));
    let mut out = vec![T::zero(); scattered_len(outer, size, inner)?];
    for (o, k, p) in contributions(outer, &index, size) {
        for i in 0..inner {
            let at = (o * size + p) * inner + i;
            out[at] = out[at] + xs[(o * e + k) * inner + i];
        }
    }
    array(&with_axis(x.shape(), axis, size), out)
}

/// The maximum of the contributions to each output element (NaN if one is
/// NaN, the first of equal ones), 0 where there is none.
pub(super) fn scatter_max<T: Real>(
    x: &ArrayD<T>,
    index: &ArrayD<i32>,
    axis: usize,
    size: usize,
) -> Result<ArrayD<T>, String> {
    let (outer, e, inner) = check_index(x.shape(), axis, index)?;
    let (xs, index) = (elements(x), elements(index));
    let mut best: Vec<Option<T>> = vec![None; scattered_len(outer, size, inner)?];
    for (o, k, p) in contributions(outer, &index, size) {
        for i in 0..inner {
            let at = (o * size + p) * inner + i;
            let v = xs[(o * e + k) * inner + i];
            best[at] = Some(best[at].map_or(v, |b| max_nan(b, v)));
        }
    }
    let out = best.into_iter().map(|b| b.unwrap_or_else(T::zero)).collect();
    array(&with_axis(x.shape(), axis, size), out)
}

/// The gradient of [`scatter_max`]: `dx[o, e, i] = dy[o, index[e], i]` when
/// `e` is the first position of its group holding the group's maximum (NaN
/// counting as larger than every number), else 0.
pub(super) fn scatter_max_grad<T: Real>(
    x: &ArrayD<T>,
    index: &ArrayD<i32>,
    dy: &ArrayD<T>,
    axis: usize,
) -> Result<ArrayD<T>, String> {
    let (outer, e, inner) = check_index(x.shape(), axis, index)?;
    let (outer_dy, size, inner_dy) = around(dy.shape(), axis)?;
    if (outer_dy, inner_dy) != (outer, inner) {
        return Err(format!("output gradient {:?} does not fit {:?} off axis {axis}", dy.shape(), x.shape()));
    }
    let (xs, index, dys) = (elements(x), elements(index), elements(dy));
    // The first maximum of every output element's group: (value, position e).
    let mut first: Vec<Option<(T, usize)>> = vec![None; outer * size * inner];
    for (o, k, p) in contributions(outer, &index, size) {
        for i in 0..inner {
            let at = (o * size + p) * inner + i;
            let v = xs[(o * e + k) * inner + i];
            let replace = match first[at] {
                None => true,
                Some((b, _)) => !b.is_nan() && (v > b || v.is_nan()),
            };
            if replace {
                first[at] = Some((v, k));
            }
        }
    }
    let mut dx = vec![T::zero(); xs.len()];
    for (o, k, p) in contributions(outer, &index, size) {
        for i in 0..inner {
            let at = (o * size + p) * inner + i;
            if first[at].is_some_and(|(_, w)| w == k) {
                dx[(o * e + k) * inner + i] = dys[at];
            }
        }
    }
    array(x.shape(), dx)
}
