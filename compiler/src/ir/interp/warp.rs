//! Warping: `[N, C, H, W]` images sampled at positions displaced by a flow
//! field `[N, 2, H, W]`, and the two adjoints (with respect to the image
//! and to the flow).
//!
//! One sample is the product of two axes' taps ([`AxisTaps`]): per axis,
//! the mode gives up to two grid indices and their weights, and the
//! boundary rule maps each index into the grid (or marks it outside under
//! `zeros`). Each output element is computed with the same f32 operations
//! in the same order as in the compiled kernels (the image gradient adds
//! each plane's contributions by output position, then tap, in row-major
//! order; the flow gradient sums the channels in order), so both give the
//! same bits in f32.

use ndarray::{ArrayD, IxDyn};

use super::Real;
use crate::ir::op::{Boundary, WarpAttrs, WarpMode};

/// Tap indices are clamped to `±INDEX_LIMIT`: beyond it an f32 position
/// has no fraction left, and every grid axis is shorter (the compiled
/// kernels' planes have fewer than 2^29 elements), so indices stay small.
const INDEX_LIMIT: i64 = 1 << 30;

/// One axis's taps of one sample.
struct AxisTaps<T> {
    /// The grid index of each tap after the boundary rule; `None` for a tap
    /// outside the grid under `zeros` (it reads 0).
    index: [Option<usize>; 2],
    /// The taps' weights: `(1 − f, f)` for bilinear, `(1, unused)` for
    /// nearest; NaN for a non-finite position.
    weight: [T; 2],
    /// The number of taps: 2 for bilinear, 1 for nearest.
    count: usize,
}

/// The taps of the real position `p` along an axis of `n ≥ 1` grid points:
/// the integer part of `p` (`⌊p⌋` or `round(p)`) converted with saturation
/// (NaN → 0, as Rust's `as` does) and clamped to `±INDEX_LIMIT`, and the
/// next index for bilinear, each resolved by the boundary rule.
fn axis_taps<T: Real>(attrs: WarpAttrs, p: T, n: usize) -> AxisTaps<T> {
    let (q, weight, count) = match attrs.mode {
        WarpMode::Bilinear => {
            let q = p.floor();
            let f = p - q;
            (q, [T::one() - f, f], 2)
        }
        WarpMode::Nearest => {
            let w = if p.is_finite() { T::one() } else { T::nan() };
            (p.round(), [w, T::zero()], 1)
        }
    };
    let t = (q.as_f64() as i64).clamp(-INDEX_LIMIT, INDEX_LIMIT);
    AxisTaps { index: [resolve(attrs.boundary, t, n), resolve(attrs.boundary, t + 1, n)], weight, count }
}

/// Where tap index `t` reads along an axis of `n ≥ 1` grid points.
fn resolve(boundary: Boundary, t: i64, n: usize) -> Option<usize> {
    let n = n as i64;
    let i = match boundary {
        Boundary::Zeros => return (0..n).contains(&t).then_some(t as usize),
        Boundary::Edge => t.clamp(0, n - 1),
        Boundary::Circular => t.rem_euclid(n),
    };
    Some(i as usize)
}

/// The shape `[N, C, H, W]` of an image and its flow `[N, 2, H, W]`, checked.
fn image_and_flow(x: &[usize], flow: &[usize]) -> Result<[usize; 4], String> {
    match (x, flow) {
        (&[n, c, h, w], &[fn_, 2, fh, fw]) if (fn_, fh, fw) == (n, h, w) => Ok([n, c, h, w]),
        _ => Err(format!("an image [N, C, H, W] and a flow [N, 2, H, W] do not fit: {x:?} and {flow:?}")),
    }
}

/// The elements of `a` in row-major order.
fn elements<T: Clone>(a: &ArrayD<T>) -> Vec<T> {
    a.iter().cloned().collect()
}

/// A flow field and the mode and boundary it is sampled with: the taps of
/// every output position.
struct Grid<'a, T> {
    attrs: WarpAttrs,
    h: usize,
    w: usize,
    /// The whole flow, row-major.
    flow: &'a [T],
}

impl<T: Real> Grid<'_, T> {
    /// The row and column taps of output position `(i, j)` of batch element `n`.
    fn taps(&self, n: usize, i: usize, j: usize) -> (AxisTaps<T>, AxisTaps<T>) {
        let plane = self.h * self.w;
        let at = i * self.w + j;
        let dy = self.flow[(2 * n) * plane + at];
        let dx = self.flow[(2 * n + 1) * plane + at];
        let py = T::from_f64(i as f64) + dy;
        let px = T::from_f64(j as f64) + dx;
        (axis_taps(self.attrs, py, self.h), axis_taps(self.attrs, px, self.w))
    }
}

/// The value of tap `(a, b)` in a `[H, W]` plane of width `w` (0 outside
/// under `zeros`).
fn read<T: Real>(plane: &[T], w: usize, ty: &AxisTaps<T>, tx: &AxisTaps<T>, a: usize, b: usize) -> T {
    match (ty.index[a], tx.index[b]) {
        (Some(r), Some(s)) => plane[r * w + s],
        _ => T::zero(),
    }
}

/// `Σ_b wx_b · v_ab` for row tap `a`, summed from the first tap.
fn row<T: Real>(plane: &[T], w: usize, ty: &AxisTaps<T>, tx: &AxisTaps<T>, a: usize) -> T {
    let mut r = tx.weight[0] * read(plane, w, ty, tx, a, 0);
    for b in 1..tx.count {
        r = r + tx.weight[b] * read(plane, w, ty, tx, a, b);
    }
    r
}

/// `x: [N, C, H, W]` sampled along `flow: [N, 2, H, W]` (see [`Op::Warp`](crate::ir::Op::Warp)):
/// `Σ_a wy_a · (Σ_b wx_b · v_ab)`, sums from the first tap.
pub(super) fn warp<T: Real>(x: &ArrayD<T>, flow: &ArrayD<T>, attrs: WarpAttrs) -> Result<ArrayD<T>, String> {
    let [n, c, h, w] = image_and_flow(x.shape(), flow.shape())?;
    let (xv, fv) = (elements(x), elements(flow));
    let grid = Grid { attrs, h, w, flow: &fv };
    let plane = h * w;
    let mut out = vec![T::zero(); xv.len()];
    for b in 0..n {
        for i in 0..h {
            for j in 0..w {
                let (ty, tx) = grid.taps(b, i, j);
                for ch in 0..c {
                    let p = (b * c + ch) * plane;
                    let x_plane = &xv[p..p + plane];
                    let mut v = ty.weight[0] * row(x_plane, w, &ty, &tx, 0);
                    for a in 1..ty.count {
                        v = v + ty.weight[a] * row(x_plane, w, &ty, &tx, a);
                    }
                    out[p + i * w + j] = v;
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(x.shape()), out).map_err(|e| e.to_string())
}

/// The adjoint of [`warp`] in its image: `(flow, dy) -> dx` of `dy`'s
/// shape. Each `dy` element `g` adds `wx_b · (wy_a · g)` to tap `(a, b)`;
/// per plane, outputs in row-major order and their taps in row-major
/// order. Taps outside the grid under `zeros` are dropped.
pub(super) fn warp_grad_input<T: Real>(
    flow: &ArrayD<T>,
    dy: &ArrayD<T>,
    attrs: WarpAttrs,
) -> Result<ArrayD<T>, String> {
    let [n, c, h, w] = image_and_flow(dy.shape(), flow.shape())?;
    let (gv, fv) = (elements(dy), elements(flow));
    let grid = Grid { attrs, h, w, flow: &fv };
    let plane = h * w;
    let mut dx = vec![T::zero(); gv.len()];
    for b in 0..n {
        for ch in 0..c {
            let p = (b * c + ch) * plane;
            let dx_plane = &mut dx[p..p + plane];
            for i in 0..h {
                for j in 0..w {
                    let (ty, tx) = grid.taps(b, i, j);
                    let g = gv[p + i * w + j];
                    for a in 0..ty.count {
                        let ga = ty.weight[a] * g;
                        for bt in 0..tx.count {
                            if let (Some(r), Some(s)) = (ty.index[a], tx.index[bt]) {
                                let t = &mut dx_plane[r * w + s];
                                *t = *t + tx.weight[bt] * ga;
                            }
                        }
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(dy.shape()), dx).map_err(|e| e.to_string())
}

/// The adjoint of [`warp`] in its flow: `(x, flow, dy) -> dflow` of the
/// flow's shape. Bilinear: per position, over the channels in order,
/// `Σ dy · (r1 − r0)` (rows, with `r_a = wx0·v_a0 + wx1·v_a1`) and
/// `Σ dy · (wy0·(v01 − v00) + wy1·(v11 − v10))` (columns), sums from 0.
/// Nearest: zeros.
pub(super) fn warp_grad_flow<T: Real>(
    x: &ArrayD<T>,
    flow: &ArrayD<T>,
    dy: &ArrayD<T>,
    attrs: WarpAttrs,
) -> Result<ArrayD<T>, String> {
    let [n, c, h, w] = image_and_flow(x.shape(), flow.shape())?;
    if dy.shape() != x.shape() {
        return Err(format!("the output gradient {:?} does not match the image {:?}", dy.shape(), x.shape()));
    }
    let plane = h * w;
    let mut dflow = vec![T::zero(); n * 2 * plane];
    if attrs.mode == WarpMode::Bilinear {
        let (xv, fv, gv) = (elements(x), elements(flow), elements(dy));
        let grid = Grid { attrs, h, w, flow: &fv };
        for b in 0..n {
            for i in 0..h {
                for j in 0..w {
                    let (ty, tx) = grid.taps(b, i, j);
                    let (mut along_y, mut along_x) = (T::zero(), T::zero());
                    for ch in 0..c {
                        let p = (b * c + ch) * plane;
                        let x_plane = &xv[p..p + plane];
                        let v = |a, bt| read(x_plane, w, &ty, &tx, a, bt);
                        let (v00, v01, v10, v11) = (v(0, 0), v(0, 1), v(1, 0), v(1, 1));
                        let r0 = tx.weight[0] * v00 + tx.weight[1] * v01;
                        let r1 = tx.weight[0] * v10 + tx.weight[1] * v11;
                        let g = gv[p + i * w + j];
                        along_y = along_y + g * (r1 - r0);
                        let d = ty.weight[0] * (v01 - v00) + ty.weight[1] * (v11 - v10);
                        along_x = along_x + g * d;
                    }
                    dflow[(2 * b) * plane + i * w + j] = along_y;
                    dflow[(2 * b + 1) * plane + i * w + j] = along_x;
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(flow.shape()), dflow).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
