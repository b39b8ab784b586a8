//! Hand-computed values of `warp` and its gradients in f32 and f64: zero
//! flow is the identity, integer flows shift with each boundary's rule,
//! half cells average (bilinear) or round away from zero (nearest),
//! circular wraps any distance, non-finite flows give NaN; the image
//! gradient is the adjoint of the warp, the flow gradient the slope of the
//! interpolation; the type rules reject mismatched operands.

use std::collections::HashMap;

use super::super::{run, Real, Tensor};
use crate::ir::op::{Boundary, InputKind, Op, WarpAttrs, WarpMode};
use crate::ir::rng;
use crate::ir::{Graph, Loc, Mode, OutputKind};

const MODES: [WarpMode; 2] = [WarpMode::Bilinear, WarpMode::Nearest];
const BOUNDARIES: [Boundary; 3] = [Boundary::Zeros, Boundary::Edge, Boundary::Circular];

/// `(N, C, H, W)` of the test images.
const SHAPE: [usize; 4] = [2, 3, 5, 7];

fn attrs(mode: WarpMode, boundary: Boundary) -> WarpAttrs {
    WarpAttrs { mode, boundary }
}

/// Runs `op` on the operands; type-rule failures are errors.
fn try_eval<T: Real>(op: Op, args: &[(Vec<usize>, Vec<f64>)]) -> Result<Vec<f64>, String> {
    let mut g = Graph::new("warp", Mode::Infer);
    let mut inputs = HashMap::new();
    let mut ids = vec![];
    for (i, (shape, values)) in args.iter().enumerate() {
        let name = format!("a{i}");
        let t = Tensor::<T>::from_f64(shape, values)?;
        ids.push(g.input(name.clone(), InputKind::Data, t.ty(), Loc::NONE));
        inputs.insert(name, t);
    }
    let r = g.add(op, &ids, Loc::NONE)?;
    g.output(OutputKind::Other, "r", r);
    let out = run(&g, &inputs).map_err(|e| e.to_string())?.remove(0).1;
    let a = out.into_float().ok_or("a float result")?;
    Ok(a.iter().map(|v| v.as_f64()).collect())
}

fn eval<T: Real>(op: Op, args: &[(Vec<usize>, Vec<f64>)]) -> Vec<f64> {
    try_eval::<T>(op.clone(), args).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// `x[n, c, i, j] = 100n + 10c + i + j / 10`: every element distinct and
/// exact in f32.
fn image() -> (Vec<usize>, Vec<f64>) {
    let [n, c, h, w] = SHAPE;
    let mut v = vec![];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..h {
                for j in 0..w {
                    v.push(100.0 * b as f64 + 10.0 * ch as f64 + i as f64 + j as f64 / 10.0);
                }
            }
        }
    }
    (SHAPE.to_vec(), v)
}

/// The element of [`image`] at `(n, c, i, j)`.
fn pixel(n: usize, c: usize, i: usize, j: usize) -> f64 {
    100.0 * n as f64 + 10.0 * c as f64 + i as f64 + j as f64 / 10.0
}

/// A flow of `(dy, dx)` at every position.
fn uniform_flow(dy: f64, dx: f64) -> (Vec<usize>, Vec<f64>) {
    let [n, _, h, w] = SHAPE;
    let plane = h * w;
    let v = (0..n).flat_map(|_| std::iter::repeat_n(dy, plane).chain(std::iter::repeat_n(dx, plane)));
    (vec![n, 2, h, w], v.collect())
}

/// Pseudo-random values in `[lo, hi)`.
fn noise(shape: &[usize], stream: u64, lo: f64, hi: f64) -> (Vec<usize>, Vec<f64>) {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| lo + (hi - lo) * f64::from(rng::uniform([3, 7], stream, i as u64))).collect();
    (shape.to_vec(), v)
}

/// `want(n, c, i, j)` at every element of the image shape.
fn expected(want: impl Fn(usize, usize, usize, usize) -> f64) -> Vec<f64> {
    let [n, c, h, w] = SHAPE;
    let mut v = vec![];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..h {
                for j in 0..w {
                    v.push(want(b, ch, i, j));
                }
            }
        }
    }
    v
}

/// Equal within 1e-6 relative in f32 and 1e-12 in f64; NaN matches NaN.
fn assert_close<T: Real>(what: &str, got: &[f64], want: &[f64]) {
    let tol = if std::mem::size_of::<T>() == 4 { 1e-6 } else { 1e-12 };
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= tol * w.abs().max(1.0) };
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

/// Where a tap index `t` reads along an axis of `n` (None: zero).
fn tap(boundary: Boundary, t: i64, n: usize) -> Option<usize> {
    let n = n as i64;
    match boundary {
        Boundary::Zeros => (0..n).contains(&t).then_some(t as usize),
        Boundary::Edge => Some(t.clamp(0, n - 1) as usize),
        Boundary::Circular => Some(t.rem_euclid(n) as usize),
    }
}

/// The image value at tap `(ti, tj)` of `(n, c)` under `boundary`.
fn tap_value(boundary: Boundary, n: usize, c: usize, ti: i64, tj: i64) -> f64 {
    match (tap(boundary, ti, SHAPE[2]), tap(boundary, tj, SHAPE[3])) {
        (Some(i), Some(j)) => pixel(n, c, i, j),
        _ => 0.0,
    }
}

/// Exactly: every weight is 1 or 0 and every tap inside the grid.
fn zero_flow_is_the_identity<T: Real>() {
    let x = image();
    let want: Vec<f64> = x.1.iter().map(|&v| T::from_f64(v).as_f64()).collect();
    for mode in MODES {
        for boundary in BOUNDARIES {
            let out = eval::<T>(Op::Warp(attrs(mode, boundary)), &[x.clone(), uniform_flow(0.0, 0.0)]);
            assert_eq!(out, want, "{mode:?} {boundary:?}");
        }
    }
}

/// Integer flows move the image by whole cells; both modes agree.
fn integer_flow_shifts<T: Real>() {
    let x = image();
    for (dy, dx) in [(0i64, 1i64), (-2, 0), (1, -3), (4, 6), (-7, 9)] {
        for mode in MODES {
            for boundary in BOUNDARIES {
                let flow = uniform_flow(dy as f64, dx as f64);
                let out = eval::<T>(Op::Warp(attrs(mode, boundary)), &[x.clone(), flow]);
                let want = expected(|n, c, i, j| tap_value(boundary, n, c, i as i64 + dy, j as i64 + dx));
                assert_close::<T>(&format!("shift ({dy}, {dx}) {mode:?} {boundary:?}"), &out, &want);
            }
        }
    }
    // Spot checks of the boundary rules, written out.
    let shifted = |boundary| {
        eval::<T>(Op::Warp(attrs(WarpMode::Bilinear, boundary)), &[image(), uniform_flow(0.0, 1.0)])
    };
    // The last column of (0, 0) reads column 7: outside.
    assert_eq!(shifted(Boundary::Zeros)[6], 0.0);
    assert_close::<T>("edge", &shifted(Boundary::Edge)[6..7], &[0.6]);
    assert_close::<T>("circular", &shifted(Boundary::Circular)[6..7], &[0.0]);
    assert_close::<T>("circular", &shifted(Boundary::Circular)[13..14], &[1.0]);
}

/// Half a cell to the right: bilinear averages the two neighbours, nearest
/// rounds `j + 0.5` up; half a cell to the left, nearest rounds `j − 0.5`
/// away from zero too (to `j` for `j ≥ 1`, to −1 for `j = 0`).
fn half_cells<T: Real>() {
    let x = image();
    for boundary in BOUNDARIES {
        let right = uniform_flow(0.0, 0.5);
        let out = eval::<T>(Op::Warp(attrs(WarpMode::Bilinear, boundary)), &[x.clone(), right.clone()]);
        let want = expected(|n, c, i, j| {
            let (j0, j1) = (j as i64, j as i64 + 1);
            0.5 * tap_value(boundary, n, c, i as i64, j0) + 0.5 * tap_value(boundary, n, c, i as i64, j1)
        });
        assert_close::<T>(&format!("bilinear right {boundary:?}"), &out, &want);

        let out = eval::<T>(Op::Warp(attrs(WarpMode::Nearest, boundary)), &[x.clone(), right]);
        let want = expected(|n, c, i, j| tap_value(boundary, n, c, i as i64, j as i64 + 1));
        assert_close::<T>(&format!("nearest right {boundary:?}"), &out, &want);

        let left = uniform_flow(-0.5, -0.5);
        let out = eval::<T>(Op::Warp(attrs(WarpMode::Nearest, boundary)), &[x.clone(), left.clone()]);
        let away = |k: usize| if k == 0 { -1 } else { k as i64 };
        let want = expected(|n, c, i, j| tap_value(boundary, n, c, away(i), away(j)));
        assert_close::<T>(&format!("nearest left {boundary:?}"), &out, &want);

        // Bilinear half a cell up and left: the mean of four neighbours.
        let out = eval::<T>(Op::Warp(attrs(WarpMode::Bilinear, boundary)), &[x.clone(), left]);
        let want = expected(|n, c, i, j| {
            let (i, j) = (i as i64, j as i64);
            let v = |a, b| tap_value(boundary, n, c, a, b);
            0.5 * (0.5 * v(i - 1, j - 1) + 0.5 * v(i - 1, j)) + 0.5 * (0.5 * v(i, j - 1) + 0.5 * v(i, j))
        });
        assert_close::<T>(&format!("bilinear up-left {boundary:?}"), &out, &want);
    }
    // Written out: (0, 0, 2, 3) half a cell right averages 2.3 and 2.4.
    let out = eval::<T>(Op::Warp(attrs(WarpMode::Bilinear, Boundary::Zeros)), &[x, uniform_flow(0.0, 0.5)]);
    assert_close::<T>("(2, 3) + 0.5", &out[2 * 7 + 3..2 * 7 + 4], &[2.35]);
}

/// Circular wraps from any distance, along both axes: `k` whole turns plus
/// a fraction read like the fraction alone.
fn circular_wraps<T: Real>() {
    let x = image();
    let [_, _, h, w] = SHAPE;
    for mode in MODES {
        let op = Op::Warp(attrs(mode, Boundary::Circular));
        let near = eval::<T>(op.clone(), &[x.clone(), uniform_flow(0.25, -0.75)]);
        let far = uniform_flow(0.25 - 3.0 * h as f64, -0.75 + 2.0 * w as f64);
        let out = eval::<T>(op, &[x.clone(), far]);
        assert_close::<T>(&format!("{mode:?}"), &out, &near);
    }
    // Bilinear at the corner (0, 0) a quarter cell up and left mixes the
    // opposite corners: rows 4 and 0, columns 6 and 0.
    let out =
        eval::<T>(Op::Warp(attrs(WarpMode::Bilinear, Boundary::Circular)), &[x, uniform_flow(-0.25, -0.25)]);
    let v = |i, j| pixel(0, 0, i, j);
    let want = 0.25 * (0.25 * v(4, 6) + 0.75 * v(4, 0)) + 0.75 * (0.25 * v(0, 6) + 0.75 * v(0, 0));
    assert_close::<T>("corner", &out[..1], &[want]);
}

/// NaN and infinite flows give NaN; huge finite flows are outside the grid
/// (their taps clamped to ±2^30 cells).
fn non_finite_flows<T: Real>() {
    let x = image();
    for mode in MODES {
        for boundary in BOUNDARIES {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let op = Op::Warp(attrs(mode, boundary));
                let out = eval::<T>(op.clone(), &[x.clone(), uniform_flow(0.0, bad)]);
                assert!(out.iter().all(|v| v.is_nan()), "{mode:?} {boundary:?} {bad}: {out:?}");
                let dx =
                    eval::<T>(Op::WarpGradInput(attrs(mode, boundary)), &[uniform_flow(bad, 0.0), x.clone()]);
                assert!(dx.iter().all(|v| !v.is_infinite()), "{mode:?} {boundary:?} {bad}");
            }
            let op = Op::Warp(attrs(mode, boundary));
            let out = eval::<T>(op, &[x.clone(), uniform_flow(-1e30, 1e30)]);
            // Row −2^30 and column 2^30: with 5 rows and 7 columns, circular
            // reads row 1 (2^30 ≡ 4 mod 5, so −2^30 ≡ 1) and column 1 (2^30 ≡ 1 mod 7).
            let want = expected(|n, c, _, _| match boundary {
                Boundary::Zeros => 0.0,
                Boundary::Edge => pixel(n, c, 0, 6),
                Boundary::Circular => pixel(n, c, 1, 1),
            });
            assert_close::<T>(&format!("huge {mode:?} {boundary:?}"), &out, &want);
        }
    }
}

/// `<warp(x, flow), y> = <x, warp_grad_input(flow, y)>` for flows reaching
/// outside the grid, every mode and boundary.
fn image_gradient_is_the_adjoint<T: Real>() {
    let [n, c, h, w] = SHAPE;
    let x = noise(&SHAPE, 1, -1.0, 1.0);
    let y = noise(&SHAPE, 2, -1.0, 1.0);
    let flow = noise(&[n, 2, h, w], 3, -4.0, 4.0);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    for mode in MODES {
        for boundary in BOUNDARIES {
            let a = attrs(mode, boundary);
            let fwd = eval::<T>(Op::Warp(a), &[x.clone(), flow.clone()]);
            let back = eval::<T>(Op::WarpGradInput(a), &[flow.clone(), y.clone()]);
            let (lhs, rhs) = (dot(&fwd, &y.1), dot(&x.1, &back));
            let tol = if std::mem::size_of::<T>() == 4 { 1e-4 } else { 1e-12 };
            assert!((lhs - rhs).abs() <= tol * lhs.abs().max(1.0), "{mode:?} {boundary:?}: {lhs} vs {rhs}");
        }
    }
    // Written out: half a cell right under zeros, each dy element splits
    // evenly between its column and the next; the last column's second
    // half leaves the grid.
    let ones = (SHAPE.to_vec(), vec![1.0; n * c * h * w]);
    let dx = eval::<T>(
        Op::WarpGradInput(attrs(WarpMode::Bilinear, Boundary::Zeros)),
        &[uniform_flow(0.0, 0.5), ones],
    );
    let want = expected(|_, _, _, j| if j == 0 { 0.5 } else { 1.0 });
    assert_close::<T>("half cell", &dx, &want);
}

/// On ramps the flow gradient is the ramps' slopes weighted by `dy`, summed
/// over channels; nearest gives zeros.
fn flow_gradient_is_the_slope<T: Real>() {
    let (n, h, w) = (1, 5, 7);
    // Channel 0: 3i + 2j; channel 1: i − j.
    let mut x = vec![];
    for (a, b) in [(3.0, 2.0), (1.0, -1.0)] {
        for i in 0..h {
            for j in 0..w {
                x.push(a * i as f64 + b * j as f64);
            }
        }
    }
    let x = (vec![n, 2, h, w], x);
    let dy = (vec![n, 2, h, w], [1.0, 2.0].iter().flat_map(|&g| vec![g; h * w]).collect());
    // Small fractional flows: every tap of rows 0..4 and columns 0..6 is
    // inside the grid.
    let flow = noise(&[n, 2, h, w], 4, 0.2, 0.8);
    for boundary in BOUNDARIES {
        let out = eval::<T>(
            Op::WarpGradFlow(attrs(WarpMode::Bilinear, boundary)),
            &[x.clone(), flow.clone(), dy.clone()],
        );
        for i in 0..h - 1 {
            for j in 0..w - 1 {
                let (gy, gx) = (out[i * w + j], out[h * w + i * w + j]);
                let ok = (gy - 5.0).abs() < 1e-5 && gx.abs() < 1e-5;
                assert!(ok, "{boundary:?} at ({i}, {j}): {gy}, {gx}");
            }
        }
        let out = eval::<T>(
            Op::WarpGradFlow(attrs(WarpMode::Nearest, boundary)),
            &[x.clone(), flow.clone(), dy.clone()],
        );
        assert!(out.iter().all(|&v| v == 0.0), "nearest {boundary:?}");
    }
    // Under zeros, the last column's right taps read 0: the column slope
    // there is −v(i, 6) per channel instead of the ramp's.
    let flow = uniform_flow(0.0, 0.5);
    let flow = (vec![1, 2, h, w], flow.1[..2 * h * w].to_vec());
    let out = eval::<T>(Op::WarpGradFlow(attrs(WarpMode::Bilinear, Boundary::Zeros)), &[x, flow, dy]);
    let i = 2;
    let (v0, v1) = (3.0 * i as f64 + 2.0 * 6.0, i as f64 - 6.0);
    assert_close::<T>("right edge", &out[h * w + i * w + 6..h * w + i * w + 7], &[-v0 - 2.0 * v1]);
}

fn type_rules_reject_mismatched_operands<T: Real>() {
    let x = image();
    let a = attrs(WarpMode::Bilinear, Boundary::Zeros);
    let bad_flows = [vec![2, 3, 5, 7], vec![2, 2, 5, 6], vec![1, 2, 5, 7], vec![2, 2, 35]];
    for shape in bad_flows {
        let n: usize = shape.iter().product();
        let flow = (shape.clone(), vec![0.0; n]);
        let e = try_eval::<T>(Op::Warp(a), &[x.clone(), flow.clone()]).unwrap_err();
        assert!(e.contains("needs an image [N, C, H, W] and a flow [N, 2, H, W]"), "{shape:?}: {e}");
        let e = try_eval::<T>(Op::WarpGradInput(a), &[flow.clone(), x.clone()]).unwrap_err();
        assert!(e.contains("`warp_grad_input` needs"), "{shape:?}: {e}");
    }
    let flow = uniform_flow(0.0, 0.0);
    let dy = (vec![2, 3, 5, 6], vec![0.0; 180]);
    let e = try_eval::<T>(Op::WarpGradFlow(a), &[x.clone(), flow.clone(), dy]).unwrap_err();
    assert!(e.contains("the output gradient must have the warped input's type"), "{e}");
    let e = try_eval::<T>(Op::Warp(a), std::slice::from_ref(&x)).unwrap_err();
    assert!(e.contains("takes 2 operand(s)"), "{e}");
    let out = eval::<T>(Op::WarpGradFlow(a), &[x.clone(), flow.clone(), x]);
    assert_eq!(out.len(), flow.1.len());
}

/// One `#[test]` per generic case, run in f32 and then in f64.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            super::$name::<f32>();
            super::$name::<f64>();
        }
    )*};
}

mod cases {
    both!(
        zero_flow_is_the_identity,
        integer_flow_shifts,
        half_cells,
        circular_wraps,
        non_finite_flows,
        image_gradient_is_the_adjoint,
        flow_gradient_is_the_slope,
        type_rules_reject_mismatched_operands,
    );
}
