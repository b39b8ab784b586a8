//! Reductions and contractions: reduce_sum, reduce_max, argmax, size,
//! matmul, and softmax and standardisation over the last axis with their
//! gradients.

use ndarray::{ArrayD, ArrayView1, Axis, IxDyn};

use super::elementwise::max_nan;
use super::Real;

/// Checks that `axes` are sorted, distinct and within `rank`.
fn check_axes(axes: &[usize], rank: usize) -> Result<(), String> {
    let sorted = axes.windows(2).all(|w| w[0] < w[1]);
    if !sorted || axes.iter().any(|&a| a >= rank) {
        return Err(format!("axes {axes:?} must be sorted, distinct and below the rank {rank}"));
    }
    Ok(())
}

/// Sums over `axes`, removing them (the last axis first, so that the numbers
/// of the remaining ones do not change). An empty axis sums to 0.
pub(super) fn reduce_sum<T: Real>(a: &ArrayD<T>, axes: &[usize]) -> Result<ArrayD<T>, String> {
    check_axes(axes, a.ndim())?;
    let mut r = a.clone();
    for &ax in axes.iter().rev() {
        r = r.sum_axis(Axis(ax));
    }
    Ok(r)
}

/// Maximum over `axes`, removing them; NaN if any element is NaN; an empty
/// axis gives -inf.
pub(super) fn reduce_max<T: Real>(a: &ArrayD<T>, axes: &[usize]) -> Result<ArrayD<T>, String> {
    check_axes(axes, a.ndim())?;
    let mut r = a.clone();
    for &ax in axes.iter().rev() {
        r = r.fold_axis(Axis(ax), T::neg_infinity(), |&m, &x| max_nan(m, x));
    }
    Ok(r)
}

/// `softmax` (see [`crate::ir::Op::Softmax`]) over the last axis.
pub(super) fn softmax<T: Real>(x: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    let last = x.ndim().checked_sub(1).ok_or("`softmax` of a scalar")?;
    let floor = T::from_f64(crate::ir::op::SOFTMAX_FLOOR);
    let mut y = x.clone();
    for mut row in y.lanes_mut(Axis(last)) {
        let m = row.iter().fold(floor, |m, &v| max_nan(m, v));
        let mut s = T::zero();
        for v in row.iter_mut() {
            *v = (*v - m).exp();
            s = s + *v;
        }
        if s > T::zero() {
            row.mapv_inplace(|v| v / s);
        }
    }
    Ok(y)
}

/// `softmax_grad(y, dy)`: `y_j·(dy_j − Σ_k y_k·dy_k)` per row of the last axis.
pub(super) fn softmax_grad<T: Real>(y: &ArrayD<T>, dy: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    if y.shape() != dy.shape() || y.ndim() == 0 {
        return Err(format!("`softmax_grad` of shapes {:?} and {:?}", y.shape(), dy.shape()));
    }
    let last = Axis(y.ndim() - 1);
    let mut dx = dy.clone();
    for (mut out, w) in dx.lanes_mut(last).into_iter().zip(y.lanes(last)) {
        let t = out.iter().zip(w.iter()).fold(T::zero(), |t, (&g, &p)| t + p * g);
        out.zip_mut_with(&w, |g, &p| *g = p * (*g - t));
    }
    Ok(dx)
}

/// A row's mean and `1 / sqrt(var + eps)` (biased variance), as
/// [`crate::ir::Op::Standardize`] defines them.
fn moments<T: Real>(row: ArrayView1<T>, eps: f64) -> (T, T) {
    let d = T::from_f64(row.len() as f64);
    let mean = row.iter().fold(T::zero(), |s, &v| s + v) / d;
    let var = row.iter().fold(T::zero(), |s, &v| s + (v - mean) * (v - mean)) / d;
    (mean, T::one() / (var + T::from_f64(eps)).sqrt())
}

/// `standardize` (see [`crate::ir::Op::Standardize`]) over the last axis.
pub(super) fn standardize<T: Real>(x: &ArrayD<T>, eps: f64) -> Result<ArrayD<T>, String> {
    let last = x.ndim().checked_sub(1).ok_or("`standardize` of a scalar")?;
    let mut y = x.clone();
    for mut row in y.lanes_mut(Axis(last)) {
        let (mean, rstd) = moments(row.view(), eps);
        row.mapv_inplace(|v| (v - mean) * rstd);
    }
    Ok(y)
}

/// `standardize_grad(x, dy)` (see [`crate::ir::Op::StandardizeGrad`]) over
/// the last axis.
pub(super) fn standardize_grad<T: Real>(
    x: &ArrayD<T>,
    dy: &ArrayD<T>,
    eps: f64,
) -> Result<ArrayD<T>, String> {
    if x.shape() != dy.shape() || x.ndim() == 0 {
        return Err(format!("`standardize_grad` of shapes {:?} and {:?}", x.shape(), dy.shape()));
    }
    let last = Axis(x.ndim() - 1);
    let mut dx = dy.clone();
    for (mut out, row) in dx.lanes_mut(last).into_iter().zip(x.lanes(last)) {
        let (mean, rstd) = moments(row, eps);
        let d = T::from_f64(row.len() as f64);
        let xhat = |v: T| (v - mean) * rstd;
        let a = out.iter().fold(T::zero(), |s, &g| s + g) / d;
        let b = out.iter().zip(row.iter()).fold(T::zero(), |s, (&g, &v)| s + g * xhat(v)) / d;
        out.zip_mut_with(&row, |g, &v| *g = ((*g - a) - xhat(v) * b) * rstd);
    }
    Ok(dx)
}

/// The index of the first maximum of a lane. NaN counts as larger than every
/// number (the first NaN wins), as in NumPy and PyTorch.
fn first_max<T: Real>(lane: ArrayView1<T>) -> usize {
    let mut best = 0;
    for (i, &x) in lane.iter().enumerate() {
        let b = lane[best];
        if !b.is_nan() && (x > b || x.is_nan()) {
            best = i;
        }
    }
    best
}

/// Index (i32) of the first maximum along `axis`, removing it.
pub(super) fn argmax<T: Real>(a: &ArrayD<T>, axis: usize) -> Result<ArrayD<i32>, String> {
    check_axes(&[axis], a.ndim())?;
    let n = a.len_of(Axis(axis));
    let lanes: usize = a.shape().iter().enumerate().filter(|&(i, _)| i != axis).map(|(_, &d)| d).product();
    if n == 0 && lanes > 0 {
        return Err(format!("argmax along axis {axis} of {:?}: the axis is empty", a.shape()));
    }
    if i32::try_from(n).is_err() {
        return Err(format!("argmax along an axis of {n} elements: indices exceed i32"));
    }
    Ok(a.map_axis(Axis(axis), |lane| first_max(lane) as i32))
}

/// The product of the sizes along `axes`, as a float.
pub(super) fn size<T: Real>(shape: &[usize], axes: &[usize]) -> Result<T, String> {
    check_axes(axes, shape.len())?;
    let n: usize = axes.iter().map(|&a| shape[a]).product();
    Ok(T::from_f64(n as f64))
}

/// `[..., M, K] x [..., K, N] -> [..., M, N]`, each output element a
/// sequential sum over k.
/// `matmul_sum`: each element summed over the batches in order, and within
/// a batch over `K` in order.
pub(super) fn matmul_sum<T: Real>(a: &ArrayD<T>, b: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    let (sa, sb) = (a.shape(), b.shape());
    let r = sa.len();
    if r < 3 || sb.len() != r || sa[..r - 2] != sb[..r - 2] || sa[r - 1] != sb[r - 2] {
        return Err(format!("cannot sum the products of {sa:?} and {sb:?}"));
    }
    let (m, k, n) = (sa[r - 2], sa[r - 1], sb[r - 1]);
    let batch: usize = sa[..r - 2].iter().product();
    let av: Vec<T> = a.iter().copied().collect();
    let bv: Vec<T> = b.iter().copied().collect();
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..batch {
                for q in 0..k {
                    acc = acc + av[(p * m + i) * k + q] * bv[(p * k + q) * n + j];
                }
            }
            out.push(acc);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[m, n]), out).map_err(|e| e.to_string())
}

pub(super) fn matmul<T: Real>(a: &ArrayD<T>, b: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    let (sa, sb) = (a.shape(), b.shape());
    let r = sa.len();
    if r < 2 || sb.len() != r || sa[..r - 2] != sb[..r - 2] || sa[r - 1] != sb[r - 2] {
        return Err(format!("cannot multiply {sa:?} by {sb:?}"));
    }
    let (m, k, n) = (sa[r - 2], sa[r - 1], sb[r - 1]);
    let batch: usize = sa[..r - 2].iter().product();
    // Row-major element lists, indexed as [batch][row][column].
    let av: Vec<T> = a.iter().copied().collect();
    let bv: Vec<T> = b.iter().copied().collect();
    let mut out = Vec::with_capacity(batch * m * n);
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::zero();
                for q in 0..k {
                    acc = acc + av[(p * m + i) * k + q] * bv[(p * k + q) * n + j];
                }
                out.push(acc);
            }
        }
    }
    let mut shape = sa.to_vec();
    shape[r - 1] = n;
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| e.to_string())
}
