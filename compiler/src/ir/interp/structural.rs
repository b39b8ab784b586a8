//! Ops that move elements without arithmetic: broadcast, reshape, permute,
//! slice, pad, concat, and one-hot encoding. All but `one_hot` work on arrays
//! of any element type.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use super::Real;

/// NumPy broadcasting to `shape` (ndarray implements exactly NumPy's rule).
pub(super) fn broadcast<E: Clone>(a: &ArrayD<E>, shape: &[usize]) -> Result<ArrayD<E>, String> {
    a.broadcast(IxDyn(shape))
        .map(|v| v.to_owned())
        .ok_or_else(|| format!("cannot broadcast {:?} to {shape:?}", a.shape()))
}

/// The elements in row-major order, laid out in the new shape.
pub(super) fn reshape<E: Clone>(a: &ArrayD<E>, shape: &[usize]) -> Result<ArrayD<E>, String> {
    let elements: Vec<E> = a.iter().cloned().collect();
    ArrayD::from_shape_vec(IxDyn(shape), elements)
        .map_err(|_| format!("cannot reshape {:?} to {shape:?}: element counts differ", a.shape()))
}

/// Result axis `i` is operand axis `axes[i]`.
pub(super) fn permute<E: Clone>(a: &ArrayD<E>, axes: &[usize]) -> Result<ArrayD<E>, String> {
    let rank = a.ndim();
    let mut seen = vec![false; rank];
    for &ax in axes {
        if ax >= rank || std::mem::replace(&mut seen[ax], true) {
            return Err(format!("{axes:?} is not a permutation of {rank} axes"));
        }
    }
    if axes.len() != rank {
        return Err(format!("{axes:?} is not a permutation of {rank} axes"));
    }
    Ok(a.view().permuted_axes(IxDyn(axes)).as_standard_layout().into_owned())
}

fn check_axis(a_shape: &[usize], axis: usize) -> Result<usize, String> {
    a_shape.get(axis).copied().ok_or_else(|| format!("axis {axis} out of range for shape {a_shape:?}"))
}

/// Elements `start..end` along `axis`.
pub(super) fn slice<E: Clone>(
    a: &ArrayD<E>,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<ArrayD<E>, String> {
    let n = check_axis(a.shape(), axis)?;
    if start > end || end > n {
        return Err(format!("range {start}..{end} out of bounds for size {n}"));
    }
    Ok(a.slice_axis(Axis(axis), Slice::from(start..end)).to_owned())
}

/// `lo` zeros (`Default::default()`: 0, 0.0 or false) before and `hi` after along `axis`.
pub(super) fn pad<E: Clone + Default>(
    a: &ArrayD<E>,
    axis: usize,
    lo: usize,
    hi: usize,
) -> Result<ArrayD<E>, String> {
    let n = check_axis(a.shape(), axis)?;
    let mut shape = a.shape().to_vec();
    shape[axis] = n + lo + hi;
    let mut out = ArrayD::from_elem(IxDyn(&shape), E::default());
    out.slice_axis_mut(Axis(axis), Slice::from(lo..lo + n)).assign(a);
    Ok(out)
}

/// Joins the parts along `axis`; all other dimensions must be equal.
pub(super) fn concat<E: Clone>(parts: &[&ArrayD<E>], axis: usize) -> Result<ArrayD<E>, String> {
    let first = parts.first().ok_or("`concat` needs at least one operand")?;
    check_axis(first.shape(), axis)?;
    for p in parts {
        let same_elsewhere = p.ndim() == first.ndim()
            && p.shape().iter().zip(first.shape()).enumerate().all(|(i, (x, y))| i == axis || x == y);
        if !same_elsewhere {
            return Err(format!(
                "operand shapes {:?} and {:?} differ off axis {axis}",
                first.shape(),
                p.shape()
            ));
        }
    }
    let views: Vec<ArrayViewD<E>> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(axis), &views).map_err(|e| e.to_string())
}

/// `i32[S] -> [S, classes]`: 1 at each label's index, zeros elsewhere (and
/// all zeros for labels outside `0..classes`).
pub(super) fn one_hot<T: Real>(labels: &ArrayD<i32>, classes: usize) -> Result<ArrayD<T>, String> {
    let mut data = vec![T::zero(); labels.len() * classes];
    for (k, &label) in labels.iter().enumerate() {
        if let Ok(c) = usize::try_from(label) {
            if c < classes {
                data[k * classes + c] = T::one();
            }
        }
    }
    let mut shape = labels.shape().to_vec();
    shape.push(classes);
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())
}
