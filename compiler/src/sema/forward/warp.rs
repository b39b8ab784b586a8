//! Warping: resampling an image along a displacement field (`warp`, the
//! IR's `Warp` op) and the displacement field of an affine transform
//! (`affine_flow`, matrix products with a constant grid), which together
//! are a spatial transformer network's sampler.

use super::emit::{bin, bin_const, broadcast, check_size, emit, reshape_to, ty, want_f32};
use super::index::slice;
use super::{BuildError, Built, ConstData, Cx};
use crate::ir::{BinaryOp, Boundary, DType, Dim, Op, Shape, Type, ValueId, WarpAttrs, WarpMode};

/// `x: f32[B, C, H, W]` sampled along `flow: f32[B, 2, H, W]` (row and
/// column displacements `dy`, `dx` in grid cells): output `(i, j)` is `x` at
/// `(i + dy, j + dx)`, interpolated by `mode`, with taps outside the grid
/// read by `boundary` (see [`Op::Warp`]). Operand 0 is `x`, 1 the flow.
pub fn warp(cx: &mut dyn Cx, x: ValueId, flow: ValueId, mode: WarpMode, boundary: Boundary) -> Built {
    let tx = want_f32(cx, x, "warp", 0)?;
    if tx.shape.rank() != 4 {
        return Err(BuildError::new(format!("`warp` needs an image [B, C, H, W], got {tx}"))
            .at(0)
            .expected("rank 4 [B, C, H, W]"));
    }
    let d = tx.shape.dims();
    let want = Type::f32(Shape(vec![d[0].clone(), Dim::Known(2), d[2].clone(), d[3].clone()]));
    let tf = ty(cx, flow);
    if tf != want {
        return Err(BuildError::new(format!(
            "`warp` of {tx} needs a flow {want} (row and column displacements), got {tf}"
        ))
        .at(1)
        .expected(want.to_string())
        .note("channel 0 of the flow is the row displacement dy, channel 1 the column displacement dx"));
    }
    emit(cx, Op::Warp(WarpAttrs { mode, boundary }), &[x, flow])
}

/// The displacement field `f32[B, 2, H, W]` (grid cells; channel 0 `dy`,
/// channel 1 `dx`, as [`warp`] reads it) of the affine transforms
/// `theta: f32[B, 2, 3]` on an `H`×`W` grid, so that `warp(x, affine_flow(theta,
/// [H, W]))` is PyTorch's `grid_sample(x, affine_grid(theta, size,
/// align_corners=False), align_corners=False)` (bilinear, zeros).
///
/// Pixel `(i, j)` has the normalised coordinates `x = (2j + 1)/W − 1`,
/// `y = (2i + 1)/H − 1` (−1 and 1 are the outer edges of the border pixels);
/// `theta` maps `(x, y, 1)` to the source point `(x', y') = theta·(x, y, 1)`,
/// whose displacement in grid cells is `dy = (y' − y)·H/2`,
/// `dx = (x' − x)·W/2`. The identity `[[1, 0, 0], [0, 1, 0]]` gives a zero
/// flow. Built as `theta` times a constant `[3, H·W]` grid.
pub fn affine_flow(cx: &mut dyn Cx, theta: ValueId, size: &[usize]) -> Built {
    let t = want_f32(cx, theta, "affine_flow", 0)?;
    let d = t.shape.dims();
    if d.len() != 3 || d[1] != Dim::Known(2) || d[2] != Dim::Known(3) {
        let batch = d.first().map_or_else(|| "B".to_string(), |b| b.to_string());
        return Err(BuildError::new(format!("`affine_flow` needs 2×3 matrices [B, 2, 3], got {t}"))
            .at(0)
            .expected(format!("f32[{batch}, 2, 3]")));
    }
    let &[h, w] = size else {
        return Err(BuildError::new(format!(
            "`affine_flow` size is [H, W], two values, got {} value(s)",
            size.len()
        )));
    };
    check_size(h, "the `affine_flow` height")?;
    check_size(w, "the `affine_flow` width")?;
    let n = h.checked_mul(w).filter(|&n| n <= super::create::MAX_SEQUENCE).ok_or_else(|| {
        BuildError::new(format!("the `affine_flow` grid {h}×{w} is too large (at most 2^24 points)"))
    })?;
    let mut grid = Vec::with_capacity(3 * n);
    grid.extend((0..n).map(|p| ((2 * (p % w) + 1) as f64 / w as f64 - 1.0) as f32));
    grid.extend((0..n).map(|p| ((2 * (p / w) + 1) as f64 / h as f64 - 1.0) as f32));
    grid.extend(std::iter::repeat_n(1.0f32, n));
    let origin = format!("affine_flow grid {h}×{w}");
    let grid =
        cx.constant("grid", Type::new(DType::F32, Shape::known(&[3, n])), ConstData::F32(grid), origin);
    let b = d[0].clone();
    let g = broadcast(cx, grid, &Shape(vec![b.clone(), Dim::Known(3), Dim::Known(n)]))?;
    let moved = emit(cx, Op::MatMul, &[theta, g])?;
    let xy = slice(cx, grid, 0, 0, 2)?;
    let xy = broadcast(cx, xy, &Shape(vec![b.clone(), Dim::Known(2), Dim::Known(n)]))?;
    let delta = bin(cx, BinaryOp::Sub, moved, xy)?;
    let dx = slice(cx, delta, 1, 0, 1)?;
    let dx = bin_const(cx, BinaryOp::Mul, dx, w as f64 / 2.0)?;
    let dy = slice(cx, delta, 1, 1, 2)?;
    let dy = bin_const(cx, BinaryOp::Mul, dy, h as f64 / 2.0)?;
    let flow = emit(cx, Op::Concat { axis: 1 }, &[dy, dx])?;
    reshape_to(cx, flow, Shape(vec![b, Dim::Known(2), Dim::Known(h), Dim::Known(w)]))
}
