//! `warp` and `affine_flow`.

use super::*;
use crate::ir::{Boundary, Op, WarpMode};

const IMAGE: [f64; 9] = [0., 1., 2., 3., 4., 5., 6., 7., 8.];

/// `IMAGE` as `[1, 1, 3, 3]` warped by the constant flow `(dy, dx)`.
fn warped(dy: f64, dx: f64, mode: WarpMode, boundary: Boundary) -> Vec<f64> {
    let mut c = cx();
    let x = c.input("x", "B, 1, 3, 3");
    let flow = c.input("flow", "B, 2, 3, 3");
    let y = warp(&mut c, x, flow, mode, boundary).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 1, 3, 3]");
    let mut f = vec![dy; 9];
    f.extend([dx; 9]);
    c.eval1(y, &[("x", ft(&[1, 1, 3, 3], &IMAGE)), ("flow", ft(&[1, 2, 3, 3], &f))])
}

#[test]
fn warp_samples_at_the_displaced_position() {
    let (b, n) = (WarpMode::Bilinear, WarpMode::Nearest);
    assert_close(&warped(0.0, 0.0, b, Boundary::Zeros), &IMAGE, 1e-12);
    assert_close(&warped(0.0, 1.0, b, Boundary::Zeros), &[1., 2., 0., 4., 5., 0., 7., 8., 0.], 1e-12);
    assert_close(&warped(0.0, 1.0, b, Boundary::Circular), &[1., 2., 0., 4., 5., 3., 7., 8., 6.], 1e-12);
    assert_close(&warped(0.0, 1.0, b, Boundary::Edge), &[1., 2., 2., 4., 5., 5., 7., 8., 8.], 1e-12);
    assert_close(&warped(-1.0, 0.0, n, Boundary::Zeros), &[0., 0., 0., 0., 1., 2., 3., 4., 5.], 1e-12);
    assert_close(&warped(0.0, 0.5, b, Boundary::Zeros), &[0.5, 1.5, 1., 3.5, 4.5, 2.5, 6.5, 7.5, 4.], 1e-12);
}

#[test]
fn warp_checks_image_and_flow() {
    let mut c = cx();
    let x = c.input("x", "B, 3, 4, 5");
    let flow = c.input("flow", "B, 2, 4, 4");
    let e = err_of(warp(&mut c, x, flow, WarpMode::Bilinear, Boundary::Zeros));
    assert_eq!(e.message, "`warp` of f32[B, 3, 4, 5] needs a flow f32[B, 2, 4, 5] (row and column displacements), got f32[B, 2, 4, 4]");
    assert_eq!((e.operand, e.expected.as_deref()), (Some(1), Some("f32[B, 2, 4, 5]")));
    let seq = c.input("seq", "B, 4, 5");
    let e = err_of(warp(&mut c, seq, flow, WarpMode::Bilinear, Boundary::Zeros));
    assert_eq!(e.message, "`warp` needs an image [B, C, H, W], got f32[B, 4, 5]");
    assert_eq!(e.operand, Some(0));
}

/// PyTorch's `affine_grid` (align_corners=False) followed by
/// `grid_sample`'s unnormalisation, as a displacement `(dy, dx)`.
fn torch_flow(theta: &[f64; 6], h: usize, w: usize) -> Vec<f64> {
    let base = |k: usize, n: usize| (-1.0 + 2.0 * k as f64 / (n as f64 - 1.0)) * (n as f64 - 1.0) / n as f64;
    let (mut dy, mut dx) = (vec![], vec![]);
    for i in 0..h {
        for j in 0..w {
            let (x, y) = (base(j, w), base(i, h));
            let gx = theta[0] * x + theta[1] * y + theta[2];
            let gy = theta[3] * x + theta[4] * y + theta[5];
            dx.push(((gx + 1.0) * w as f64 - 1.0) / 2.0 - j as f64);
            dy.push(((gy + 1.0) * h as f64 - 1.0) / 2.0 - i as f64);
        }
    }
    dy.extend(dx);
    dy
}

#[test]
fn affine_flow_matches_pytorch_affine_grid() {
    let mut c = cx();
    let theta = c.input("theta", "B, 2, 3");
    let flow = affine_flow(&mut c, theta, &[3, 4]).unwrap();
    assert_eq!(c.ty_of(flow), "f32[B, 2, 3, 4]");
    let thetas = [[1., 0., 0., 0., 1., 0.], [0.8, -0.3, 0.1, 0.25, 1.2, -0.4]];
    let got = c.eval1(flow, &[("theta", ft(&[2, 2, 3], &[thetas[0], thetas[1]].concat()))]);
    let want = [torch_flow(&thetas[0], 3, 4), torch_flow(&thetas[1], 3, 4)].concat();
    // The grid is an f32 constant.
    assert_close(&got, &want, 1e-6);
    assert!(got[..24].iter().all(|v| v.abs() < 1e-6), "the identity moves nothing");
    let grid = c.constants.iter().find(|k| k.1 == "grid").expect("a constant grid");
    assert_eq!(grid.2.to_string(), "f32[3, 12]");
}

#[test]
fn warp_of_an_affine_flow_translates() {
    // x' = x + 2/W is one pixel to the right.
    let mut c = cx();
    let x = c.input("x", "B, 1, 3, 3");
    let theta = c.input("theta", "B, 2, 3");
    let flow = affine_flow(&mut c, theta, &[3, 3]).unwrap();
    let y = warp(&mut c, x, flow, WarpMode::Bilinear, Boundary::Zeros).unwrap();
    let given =
        [("x", ft(&[1, 1, 3, 3], &IMAGE)), ("theta", ft(&[1, 2, 3], &[1., 0., 2.0 / 3.0, 0., 1., 0.]))];
    assert_close(&c.eval1(y, &given), &[1., 2., 0., 4., 5., 0., 7., 8., 0.], 1e-6);
    assert!(c.graph.nodes.iter().any(|n| matches!(n.op, Op::Warp(_))));
}

#[test]
fn affine_flow_errors() {
    let mut c = cx();
    let theta = c.input("theta", "B, 3, 3");
    let e = err_of(affine_flow(&mut c, theta, &[4, 4]));
    assert_eq!(e.message, "`affine_flow` needs 2×3 matrices [B, 2, 3], got f32[B, 3, 3]");
    assert_eq!((e.operand, e.expected.as_deref()), (Some(0), Some("f32[B, 2, 3]")));
    let theta = c.input("ok", "B, 2, 3");
    let e = err_of(affine_flow(&mut c, theta, &[4]));
    assert_eq!(e.message, "`affine_flow` size is [H, W], two values, got 1 value(s)");
}
