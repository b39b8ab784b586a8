//! Tests of window kernels: every op against the reference interpreter
//! (run in f32 on a one-node graph), on tables of shapes that cover 1-D, 2-D
//! and 3-D windows, odd and prime sizes, strides 1–3, asymmetric padding,
//! windows entirely in the padding and windows large enough to loop over
//! their taps; sub-range calls; checked kernels on short buffers.

use std::collections::HashMap;

use super::{PoolKind, WindowKernel, WindowOp};
use crate::codegen::{Checking, Jit};
use crate::ir::graph::{Graph, Loc, Mode, OutputKind};
use crate::ir::interp::{self, Tensor};
use crate::ir::op::{InputKind, Op, WindowAttrs};
use crate::ir::types::{Shape, Type};

/// How test data is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// Uniform in [-3, 3].
    Plain,
    /// With zeros of both signs, ones and NaNs sprinkled in.
    Special,
    /// Multiples of 0.5 in [-2, 2]: many ties.
    Ties,
}

/// Deterministic test data.
fn data(n: usize, seed: u64, values: Values) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            match values {
                Values::Plain => 6.0 * u - 3.0,
                Values::Ties => (u * 8.0).floor() * 0.5 - 2.0,
                Values::Special => match (i * 7 + seed as usize) % 23 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f32::NAN,
                    3 => 1.0,
                    _ => 6.0 * u - 3.0,
                },
            }
        })
        .collect()
}

/// The interpreter's result of `op` on the given operands: the result's
/// shape and its elements as f32 bit patterns (i32 results as their bits).
fn reference(op: &Op, operands: &[(Vec<usize>, Vec<f32>)]) -> (Vec<usize>, Vec<u32>) {
    let loc = Loc::default();
    let mut g = Graph::new("ref", Mode::Infer);
    let mut feeds = HashMap::new();
    let mut args = vec![];
    for (i, (shape, vals)) in operands.iter().enumerate() {
        let name = format!("in{i}");
        args.push(g.input(&name, InputKind::Data, Type::f32(Shape::known(shape)), loc));
        let vals: Vec<f64> = vals.iter().map(|&v| f64::from(v)).collect();
        feeds.insert(name, Tensor::<f32>::from_f64(shape, &vals).expect("shape"));
    }
    let v = g.add(op.clone(), &args, loc).expect("the op type-checks");
    g.output(OutputKind::Prediction, "out", v);
    let out = interp::run::<f32>(&g, &feeds).expect("interpreter runs").remove(0).1;
    let shape = out.shape().to_vec();
    let bits = match out {
        Tensor::Float(a) => a.iter().map(|v| v.to_bits()).collect(),
        Tensor::Int(a) => a.iter().map(|&v| v as u32).collect(),
        Tensor::Bool(_) => panic!("unexpected bool result"),
    };
    (shape, bits)
}

/// The IR op a window op computes.
fn ir_op(op: &WindowOp) -> Op {
    match op.clone() {
        WindowOp::Pool(attrs) => Op::Pool(attrs),
        WindowOp::PoolGrad(attrs) => Op::PoolGrad(attrs),
        WindowOp::Resize { size } => Op::Resize { size },
        WindowOp::ResizeGrad { size } => Op::ResizeGrad { size },
        WindowOp::ArgMax { axis } => Op::ArgMax { axis },
        WindowOp::Warp(attrs) => Op::Warp(attrs),
        WindowOp::WarpGradInput(attrs) => Op::WarpGradInput(attrs),
        WindowOp::WarpGradFlow(attrs) => Op::WarpGradFlow(attrs),
        WindowOp::Gather { axis } => Op::Gather { axis },
        WindowOp::ScatterSum { axis, size } => Op::ScatterSum { axis, size },
        WindowOp::ScatterMax { axis, size } => Op::ScatterMax { axis, size },
        WindowOp::ScatterMaxFirst { .. } | WindowOp::ScatterMaxRoute { .. } => {
            unreachable!("the passes of scatter_max_grad have no op of their own (see index/tests.rs)")
        }
    }
}

/// How results are compared with the interpreter's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exact {
    /// Same bits (NaN payloads included).
    Bits,
    /// Within 1e-6 relative (+1e-6 absolute near zero); NaN where NaN.
    Close,
}

fn assert_matches(name: &str, got: &[u32], want: &[u32], exact: Exact) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (gf, wf) = (f32::from_bits(g), f32::from_bits(w));
        let ok = match exact {
            Exact::Bits => g == w,
            Exact::Close => {
                (gf.is_nan() && wf.is_nan()) || gf == wf || (gf - wf).abs() <= 1e-6 * wf.abs() + 1e-6
            }
        };
        assert!(ok, "{name}: element {i}: got {gf:e} ({g:#x}), interpreter {wf:e} ({w:#x})");
    }
}

/// One test kernel with its operands and the interpreter's result.
struct Case {
    kernel: WindowKernel,
    operands: Vec<Vec<f32>>,
    want: Vec<u32>,
    exact: Exact,
}

fn case(name: String, op: WindowOp, shapes: &[Vec<usize>], values: Values, exact: Exact) -> Case {
    let operands: Vec<(Vec<usize>, Vec<f32>)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), data(s.iter().product(), name.len() as u64 * 7 + i as u64, values)))
        .collect();
    let (shape, want) = reference(&ir_op(&op), &operands);
    Case {
        kernel: WindowKernel { name, op, inputs: shapes.to_vec(), output: shape },
        operands: operands.into_iter().map(|(_, v)| v).collect(),
        want,
        exact,
    }
}

/// Compiles every case (unchecked and checked), runs each over all rows and
/// over split row ranges, and compares with the interpreter.
fn check_cases(cases: &[Case]) {
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = cases
        .iter()
        .map(|c| {
            let checked = WindowKernel { name: format!("{}_checked", c.kernel.name), ..c.kernel.clone() };
            (
                jit.add_window_kernel(&c.kernel, Checking::Unchecked).expect("compiles"),
                jit.add_window_kernel(&checked, Checking::Checked).expect("compiles"),
            )
        })
        .collect();
    jit.finalize().expect("finalizes");
    for (c, (unchecked, checked)) in cases.iter().zip(ids) {
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let rows = c.kernel.rows();
        for id in [unchecked, checked] {
            let f = jit.window_fn(id).expect("finalized");
            let name = &f.kernel().name;
            // All rows in one call, over a sentinel-filled output.
            let mut out = vec![f32::from_bits(0x7f80_1234); c.kernel.output_len()];
            f.run(&ins, &mut out, 0, rows).expect("runs");
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_matches(name, &got, &c.want, c.exact);
            // One call per row, in reverse order: the same results.
            let mut out = vec![f32::from_bits(0x7f80_1234); c.kernel.output_len()];
            for r in (0..rows).rev() {
                f.run(&ins, &mut out, r, r + 1).expect("runs");
            }
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_matches(&format!("{name} (row by row)"), &got, &c.want, c.exact);
        }
    }
}

fn pool_op(
    kind: PoolKind,
    window: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
    grad: bool,
) -> WindowOp {
    let attrs =
        WindowAttrs { kind, window: window.to_vec(), stride: stride.to_vec(), padding: padding.to_vec() };
    if grad {
        WindowOp::PoolGrad(attrs)
    } else {
        WindowOp::Pool(attrs)
    }
}

type PoolCase = (&'static [usize], &'static [usize], &'static [usize], &'static [(usize, usize)]);

/// (input shape, window, stride, padding).
const POOL_CASES: &[PoolCase] = &[
    // 1-D
    (&[2, 3, 13], &[3], &[1], &[(0, 0)]),
    (&[2, 3, 13], &[2], &[2], &[(1, 1)]),
    (&[1, 2, 7], &[3], &[3], &[(0, 2)]),
    (&[3, 1, 1], &[1], &[1], &[(0, 0)]),
    (&[2, 2, 5], &[3], &[2], &[(2, 2)]),
    // Windows entirely in the padding.
    (&[1, 2, 1], &[2], &[1], &[(3, 3)]),
    // 2-D
    (&[2, 3, 8, 8], &[2, 2], &[2, 2], &[(0, 0), (0, 0)]),
    (&[2, 3, 7, 13], &[3, 3], &[1, 1], &[(1, 1), (1, 1)]),
    (&[1, 2, 13, 5], &[3, 2], &[2, 3], &[(0, 2), (1, 1)]),
    (&[2, 2, 5, 7], &[1, 3], &[1, 2], &[(0, 0), (0, 2)]),
    (&[1, 1, 1, 1], &[1, 1], &[1, 1], &[(0, 0), (0, 0)]),
    (&[2, 4, 16, 17], &[3, 3], &[2, 2], &[(1, 1), (1, 1)]),
    (&[1, 2, 9, 11], &[2, 2], &[1, 1], &[(0, 0), (0, 0)]),
    // 2x2 windows 2 apart: max-pooling gradients four windows at a time,
    // with scalar runs after them and at clipped edges.
    (&[2, 3, 6, 28], &[2, 2], &[2, 2], &[(0, 0), (0, 0)]),
    (&[1, 2, 5, 19], &[2, 2], &[2, 2], &[(1, 0), (1, 0)]),
    (&[1, 2, 4, 21], &[3, 2], &[1, 2], &[(1, 1), (0, 1)]),
    // Windows tiling the input: the gradient writes every window whole
    // (four at a time and alone; windows of 3, one at a time).
    (&[2, 2, 4, 22], &[2, 2], &[2, 2], &[(0, 0), (0, 0)]),
    (&[1, 2, 9, 12], &[3, 3], &[3, 3], &[(0, 0), (0, 0)]),
    // Large windows: the taps loop.
    (&[1, 2, 12, 12], &[12, 12], &[1, 1], &[(0, 0), (0, 0)]),
    (&[1, 2, 9, 10], &[9, 8], &[1, 2], &[(1, 0), (0, 1)]),
    (&[2, 1, 4, 70], &[1, 70], &[1, 1], &[(0, 0), (2, 2)]),
    // 3-D
    (&[1, 2, 5, 7, 6], &[2, 2, 2], &[2, 2, 2], &[(0, 0), (0, 0), (0, 0)]),
    (&[1, 2, 4, 6, 10], &[2, 2, 2], &[2, 2, 2], &[(0, 0), (0, 0), (0, 0)]),
    (&[2, 1, 4, 5, 7], &[3, 3, 3], &[1, 2, 1], &[(1, 1), (0, 2), (1, 0)]),
];

fn pool_cases(grad: bool, values: Values) -> Vec<Case> {
    let mut cases = vec![];
    for (i, &(x, window, stride, padding)) in POOL_CASES.iter().enumerate() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let op = pool_op(kind, window, stride, padding, grad);
            let mut shapes = vec![x.to_vec()];
            if grad {
                let WindowOp::PoolGrad { .. } = op else { unreachable!() };
                // dy has the pooled shape: the forward op's result.
                let fwd = pool_op(kind, window, stride, padding, false);
                let (y, _) = reference(&ir_op(&fwd), &[(x.to_vec(), data(x.iter().product(), 0, values))]);
                shapes.push(y);
            }
            // Max pooling is exact; sums may be reordered by the kernel.
            let exact = if kind == PoolKind::Max && !grad { Exact::Bits } else { Exact::Close };
            let name = format!("{}{}_{i}_{values:?}", if grad { "grad_" } else { "" }, kind_name(kind));
            cases.push(case(name, op, &shapes, values, exact));
        }
    }
    cases
}

fn kind_name(kind: PoolKind) -> &'static str {
    match kind {
        PoolKind::Max => "max",
        PoolKind::Avg => "avg",
    }
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Values::Plain => "plain",
            Values::Special => "special",
            Values::Ties => "ties",
        })
    }
}

#[test]
fn pooling_matches_the_interpreter() {
    check_cases(&pool_cases(false, Values::Plain));
    check_cases(&pool_cases(false, Values::Special));
    check_cases(&pool_cases(false, Values::Ties));
}

#[test]
fn pooling_gradients_match_the_interpreter() {
    check_cases(&pool_cases(true, Values::Plain));
    check_cases(&pool_cases(true, Values::Ties));
}

#[test]
fn max_pooling_gradient_with_nans_matches_the_interpreter() {
    // The first NaN of a window receives the gradient.
    let cases: Vec<Case> = pool_cases(true, Values::Special)
        .into_iter()
        .filter(|c| c.kernel.name.starts_with("grad_max"))
        .collect();
    check_cases(&cases);
}

/// (input shape, output spatial size).
const RESIZE_CASES: &[(&[usize], &[usize])] = &[
    (&[2, 3, 5], &[13]),
    (&[2, 3, 13], &[5]),
    (&[1, 2, 7, 5], &[14, 10]),
    (&[1, 2, 7, 5], &[3, 2]),
    (&[2, 1, 4, 4], &[4, 4]),
    (&[1, 1, 1, 1], &[3, 3]),
    (&[1, 1, 5, 5], &[1, 1]),
    (&[1, 2, 3, 4, 5], &[5, 3, 7]),
    // An innermost axis too long for a tap table.
    (&[1, 1, 2, 3], &[2, 4100]),
];

#[test]
fn resize_and_its_gradient_match_the_interpreter() {
    let mut cases = vec![];
    for (i, &(x, size)) in RESIZE_CASES.iter().enumerate() {
        let op = WindowOp::Resize { size: size.to_vec() };
        cases.push(case(format!("resize_{i}"), op, &[x.to_vec()], Values::Plain, Exact::Bits));
        // The adjoint maps the resized shape back to x's spatial size.
        let mut dy = x[..2].to_vec();
        dy.extend_from_slice(size);
        let op = WindowOp::ResizeGrad { size: x[2..].to_vec() };
        cases.push(case(format!("resize_grad_{i}"), op, &[dy], Values::Plain, Exact::Bits));
    }
    cases.push(case(
        "resize_nan".into(),
        WindowOp::Resize { size: vec![9, 4] },
        &[vec![2, 2, 5, 7]],
        Values::Special,
        Exact::Close,
    ));
    check_cases(&cases);
}

/// (input shape, axis).
const ARGMAX_CASES: &[(&[usize], usize)] = &[
    (&[7], 0),
    (&[1], 0),
    (&[4, 13], 1),
    (&[4, 13], 0),
    (&[3, 5, 7], 0),
    (&[3, 5, 7], 1),
    (&[3, 5, 7], 2),
    (&[2, 1, 6], 1),
    (&[5, 40], 1),
    (&[40, 9], 0),
    (&[2, 3, 17, 4], 2),
    (&[3, 30, 5], 1),
];

#[test]
fn argmax_matches_the_interpreter() {
    let mut cases = vec![];
    for (i, &(x, axis)) in ARGMAX_CASES.iter().enumerate() {
        for values in [Values::Plain, Values::Special, Values::Ties] {
            let name = format!("argmax_{i}_{values:?}");
            cases.push(case(name, WindowOp::ArgMax { axis }, &[x.to_vec()], values, Exact::Bits));
        }
    }
    check_cases(&cases);
}

#[test]
fn argmax_of_all_nan_and_all_equal_lanes() {
    let mut jit = Jit::new().expect("host JIT");
    let k = WindowKernel {
        name: "argmax_special".into(),
        op: WindowOp::ArgMax { axis: 1 },
        inputs: vec![vec![4, 5]],
        output: vec![4],
    };
    let id = jit.add_window_kernel(&k, Checking::Unchecked).expect("compiles");
    jit.finalize().expect("finalizes");
    let nan = f32::NAN;
    #[rustfmt::skip]
    let x = [
        1.0, 1.0, 1.0, 1.0, 1.0,
        nan, nan, 2.0, nan, 0.0,
        0.0, 3.0, nan, 3.0, nan,
        -0.0, 0.0, -1.0, 0.0, -0.0,
    ];
    let mut out = [0.0f32; 4];
    jit.window_fn(id).expect("finalized").run(&[&x], &mut out, 0, 4).expect("runs");
    let got: Vec<i32> = out.iter().map(|v| v.to_bits() as i32).collect();
    assert_eq!(got, [0, 0, 2, 0]);
}

#[test]
fn sub_ranges_write_only_their_rows() {
    let cases = [
        case(
            "sub_max".into(),
            pool_op(PoolKind::Max, &[3, 3], &[2, 2], &[(1, 1), (1, 1)], false),
            &[vec![4, 2, 7, 7]],
            Values::Plain,
            Exact::Bits,
        ),
        case(
            "sub_avg_grad".into(),
            pool_op(PoolKind::Avg, &[3, 3], &[1, 1], &[(1, 1), (1, 1)], true),
            &[vec![4, 2, 7, 7], vec![4, 2, 7, 7]],
            Values::Plain,
            Exact::Close,
        ),
        case(
            "sub_max_grad".into(),
            pool_op(PoolKind::Max, &[2, 3], &[1, 2], &[(0, 0), (1, 1)], true),
            &[vec![4, 2, 7, 7], vec![4, 2, 6, 4]],
            Values::Ties,
            Exact::Close,
        ),
        case(
            "sub_resize".into(),
            WindowOp::Resize { size: vec![9] },
            &[vec![4, 3, 4]],
            Values::Plain,
            Exact::Bits,
        ),
        case(
            "sub_resize_grad".into(),
            WindowOp::ResizeGrad { size: vec![4] },
            &[vec![4, 3, 9]],
            Values::Plain,
            Exact::Bits,
        ),
        case(
            "sub_argmax0".into(),
            WindowOp::ArgMax { axis: 0 },
            &[vec![5, 4, 3]],
            Values::Plain,
            Exact::Bits,
        ),
        case(
            "sub_argmax2".into(),
            WindowOp::ArgMax { axis: 2 },
            &[vec![4, 3, 6]],
            Values::Plain,
            Exact::Bits,
        ),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = cases
        .iter()
        .map(|c| jit.add_window_kernel(&c.kernel, Checking::Checked).expect("compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    let sentinel = f32::from_bits(0x7f80_4321);
    for (c, id) in cases.iter().zip(ids) {
        assert_eq!(c.kernel.rows(), 4, "{}: the table uses 4 rows", c.kernel.name);
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![sentinel; c.kernel.output_len()];
        jit.window_fn(id).expect("finalized").run(&ins, &mut out, 1, 3).expect("runs");
        let row = c.kernel.output_len() / 4;
        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
        assert_matches(&c.kernel.name, &got[row..3 * row], &c.want[row..3 * row], c.exact);
        for (i, v) in got.iter().enumerate().filter(|(i, _)| *i < row || *i >= 3 * row) {
            assert_eq!(
                *v,
                sentinel.to_bits(),
                "{}: element {i} outside rows 1..3 was written",
                c.kernel.name
            );
        }
        // An empty range writes nothing.
        let mut out = vec![sentinel; c.kernel.output_len()];
        jit.window_fn(id).expect("finalized").run(&ins, &mut out, 2, 2).expect("runs");
        assert!(
            out.iter().all(|v| v.to_bits() == sentinel.to_bits()),
            "{}: empty range wrote",
            c.kernel.name
        );
    }
}

#[test]
fn checked_kernels_stop_at_out_of_bounds_accesses() {
    // (op, input shapes, which buffer is short: input number or None for the output)
    let table: Vec<(WindowOp, Vec<Vec<usize>>, Option<usize>)> = vec![
        (pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], false), vec![vec![2, 3, 8, 8]], Some(0)),
        (pool_op(PoolKind::Avg, &[3, 3], &[1, 1], &[(1, 1), (1, 1)], false), vec![vec![2, 3, 8, 8]], None),
        (
            pool_op(PoolKind::Max, &[3, 3], &[2, 2], &[(1, 1), (1, 1)], true),
            vec![vec![2, 3, 8, 8], vec![2, 3, 4, 4]],
            Some(1),
        ),
        (
            pool_op(PoolKind::Avg, &[2, 2], &[1, 1], &[(0, 0), (0, 0)], true),
            vec![vec![2, 3, 8, 8], vec![2, 3, 7, 7]],
            None,
        ),
        (WindowOp::Resize { size: vec![6, 6] }, vec![vec![2, 3, 4, 4]], Some(0)),
        (WindowOp::ResizeGrad { size: vec![4, 4] }, vec![vec![2, 3, 6, 6]], None),
        (WindowOp::ArgMax { axis: 1 }, vec![vec![2, 30, 8]], Some(0)),
        (WindowOp::ArgMax { axis: 2 }, vec![vec![2, 3, 8]], None),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let cases: Vec<Case> = table
        .iter()
        .enumerate()
        .map(|(i, (op, shapes, _))| case(format!("oob_{i}"), op.clone(), shapes, Values::Plain, Exact::Close))
        .collect();
    let ids: Vec<_> = cases
        .iter()
        .map(|c| {
            let unchecked = WindowKernel { name: format!("{}_u", c.kernel.name), ..c.kernel.clone() };
            (
                jit.add_window_kernel(&c.kernel, Checking::Checked).expect("compiles"),
                jit.add_window_kernel(&unchecked, Checking::Unchecked).expect("compiles"),
            )
        })
        .collect();
    jit.finalize().expect("finalizes");
    let sentinel = f32::from_bits(0x7f80_4321);
    for ((c, (_, _, short)), (checked, unchecked)) in cases.iter().zip(&table).zip(ids) {
        let name = &c.kernel.name;
        let mut ins: Vec<Vec<f32>> = c.operands.clone();
        let out_len = c.kernel.output_len();
        // The output lives in a larger allocation: the kernel sees a prefix.
        let mut big = vec![sentinel; out_len + 64];
        let visible = match short {
            Some(b) => {
                let n = ins[*b].len() - 5;
                ins[*b].truncate(n);
                out_len
            }
            None => out_len - 5,
        };
        let refs: Vec<&[f32]> = ins.iter().map(|v| v.as_slice()).collect();
        let rows = c.kernel.rows();
        let f = jit.window_fn(checked).expect("finalized");
        let err = f.run(&refs, &mut big[..visible], 0, rows).unwrap_err();
        let fragment = match short {
            Some(b) => format!("input {b} at element"),
            None => "the output at element".to_string(),
        };
        assert!(err.contains(name.as_str()) && err.contains(&fragment), "{name}: message {err}");
        assert!(
            big[visible..].iter().all(|v| v.to_bits() == sentinel.to_bits()),
            "{name}: a write past the end of the output"
        );
        // The unchecked version refuses the same buffers.
        let err = jit.window_fn(unchecked).expect("finalized").run(&refs, &mut big[..visible], 0, rows);
        assert!(err.is_err(), "{name}: unchecked kernel accepted short buffers");
    }
}

#[test]
fn inconsistent_kernels_are_errors() {
    let pool = |inputs: Vec<Vec<usize>>, output: Vec<usize>, window: &[usize], stride: &[usize]| {
        let padding = vec![(0, 0); window.len()];
        WindowKernel {
            name: "bad".into(),
            op: pool_op(PoolKind::Max, window, stride, &padding, false),
            inputs,
            output,
        }
    };
    let table: Vec<(WindowKernel, &str)> = vec![
        (pool(vec![vec![1, 1, 4, 4]], vec![1, 1, 3, 3], &[2, 2], &[2, 2]), "output shape"),
        (pool(vec![vec![1, 1, 4, 4]], vec![1, 1, 2, 2], &[2], &[2]), "spatial"),
        (pool(vec![vec![1, 1, 4, 4]], vec![1, 1, 2, 2], &[2, 2], &[0, 2]), "does not fit"),
        (pool(vec![vec![1, 1, 4, 4]], vec![1, 1, 2, 2], &[5, 2], &[1, 2]), "does not fit"),
        (pool(vec![], vec![1, 1, 2, 2], &[2, 2], &[2, 2]), "input"),
        (
            WindowKernel {
                name: "bad".into(),
                op: WindowOp::ArgMax { axis: 2 },
                inputs: vec![vec![3, 4]],
                output: vec![3],
            },
            "out of range",
        ),
        (
            WindowKernel {
                name: "bad".into(),
                op: WindowOp::ArgMax { axis: 0 },
                inputs: vec![vec![usize::MAX / 2, 4]],
                output: vec![4],
            },
            "too large",
        ),
        (
            pool(vec![vec![1, 1, 4, 4]], vec![1, 1, 2, 2], &[2, 2], &[2, 2]).with_padding(usize::MAX),
            "padding",
        ),
        (
            WindowKernel {
                name: "bad".into(),
                op: WindowOp::ArgMax { axis: 1 },
                inputs: vec![vec![3, 0]],
                output: vec![3],
            },
            "empty axis",
        ),
        (
            WindowKernel {
                name: "bad".into(),
                op: WindowOp::Resize { size: vec![4, 4] },
                inputs: vec![vec![1, 1, 0, 2]],
                output: vec![1, 1, 4, 4],
            },
            "empty",
        ),
        (
            WindowKernel {
                name: "bad".into(),
                op: WindowOp::PoolGrad(WindowAttrs {
                    kind: PoolKind::Avg,
                    window: vec![2],
                    stride: vec![2],
                    padding: vec![(0, 0)],
                }),
                inputs: vec![vec![1, 1, 4], vec![1, 1, 3]],
                output: vec![1, 1, 4],
            },
            "output gradient",
        ),
    ];
    let mut jit = Jit::new().expect("host JIT");
    for (k, fragment) in table {
        let e = jit.add_window_kernel(&k, Checking::Unchecked).unwrap_err();
        assert!(e.to_string().contains(fragment), "expected `{fragment}`: {e}");
    }
}

impl WindowKernel {
    /// The same pooling kernel with padding `(p, p)` on every axis.
    fn with_padding(mut self, p: usize) -> WindowKernel {
        if let WindowOp::Pool(attrs) | WindowOp::PoolGrad(attrs) = &mut self.op {
            attrs.padding.iter_mut().for_each(|q| *q = (p, p));
        }
        self
    }
}

#[test]
fn empty_outputs_compile_and_run() {
    let mut jit = Jit::new().expect("host JIT");
    let k = WindowKernel {
        name: "empty_pool".into(),
        op: pool_op(PoolKind::Avg, &[2], &[2], &[(0, 0)], false),
        inputs: vec![vec![0, 3, 4]],
        output: vec![0, 3, 2],
    };
    let id = jit.add_window_kernel(&k, Checking::Checked).expect("compiles");
    // An argmax over the second axis of an empty batch.
    let a = WindowKernel {
        name: "empty_argmax".into(),
        op: WindowOp::ArgMax { axis: 1 },
        inputs: vec![vec![0, 5]],
        output: vec![0],
    };
    let ida = jit.add_window_kernel(&a, Checking::Unchecked).expect("compiles");
    jit.finalize().expect("finalizes");
    jit.window_fn(id).expect("finalized").run(&[&[]], &mut [], 0, 0).expect("runs");
    jit.window_fn(ida).expect("finalized").run(&[&[]], &mut [], 0, 0).expect("runs");
}

#[test]
fn clif_text_shows_unrolled_vector_taps() {
    let mut jit = Jit::new().expect("host JIT");
    let k = WindowKernel {
        name: "clif_pool".into(),
        op: pool_op(PoolKind::Max, &[3, 3], &[1, 1], &[(0, 0), (0, 0)], false),
        inputs: vec![vec![2, 3, 16, 16]],
        output: vec![2, 3, 14, 14],
    };
    jit.add_window_kernel(&k, Checking::Unchecked).expect("compiles");
    let text = &jit.clif_text()[0].1;
    // Nine taps of four lanes: no tap is tested against the padding.
    assert!(text.matches("load.f32x4 notrap readonly can_move").count() >= 9, "{text}");
}

/// Throughput of common pooling shapes on one thread (run with `--ignored
/// --nocapture`; not a correctness test).
#[test]
#[ignore]
fn throughput_of_window_kernels() {
    let table: Vec<(&str, WindowOp, Vec<Vec<usize>>)> = vec![
        (
            "maxpool2x2s2",
            pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], false),
            vec![vec![32, 64, 32, 32]],
        ),
        (
            "maxpool3x3s1p1",
            pool_op(PoolKind::Max, &[3, 3], &[1, 1], &[(1, 1), (1, 1)], false),
            vec![vec![32, 64, 32, 32]],
        ),
        (
            "avgpool2x2s2",
            pool_op(PoolKind::Avg, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], false),
            vec![vec![32, 64, 32, 32]],
        ),
        (
            "maxpool_grad2x2s2",
            pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], true),
            vec![vec![32, 64, 32, 32], vec![32, 64, 16, 16]],
        ),
        (
            "avgpool_grad2x2s2",
            pool_op(PoolKind::Avg, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], true),
            vec![vec![32, 64, 32, 32], vec![32, 64, 16, 16]],
        ),
        ("resize2x", WindowOp::Resize { size: vec![64, 64] }, vec![vec![32, 64, 32, 32]]),
        ("resize_grad2x", WindowOp::ResizeGrad { size: vec![32, 32] }, vec![vec![32, 64, 64, 64]]),
        ("argmax_classes", WindowOp::ArgMax { axis: 1 }, vec![vec![4096, 100]]),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let cases: Vec<Case> = table
        .into_iter()
        .map(|(n, op, shapes)| case(n.into(), op, &shapes, Values::Plain, Exact::Close))
        .collect();
    let ids: Vec<_> = cases
        .iter()
        .map(|c| jit.add_window_kernel(&c.kernel, Checking::Unchecked).expect("compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    for (c, id) in cases.iter().zip(ids) {
        let f = jit.window_fn(id).expect("finalized");
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![0.0f32; c.kernel.output_len()];
        let reps = 50;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f.run(&ins, &mut out, 0, c.kernel.rows()).expect("runs");
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        let bytes: usize = (ins.iter().map(|i| i.len()).sum::<usize>() + out.len()) * 4;
        eprintln!("{}: {:.3} ms, {:.1} GB/s", c.kernel.name, secs * 1e3, bytes as f64 / secs / 1e9);
    }
}

/// Prints the machine code of a kernel (run with `--ignored --nocapture`;
/// for tuning the generator, not a correctness test).
#[test]
#[ignore]
fn disassemble_window_kernels() {
    use cranelift_codegen::ir::{types, AbiParam, Function, Signature, UserFuncName};
    use cranelift_codegen::isa::CallConv;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_codegen::Context;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    let which = std::env::var("NNC_DISASM").unwrap_or_else(|_| "maxpool_grad".into());
    let table: Vec<(&str, WindowOp, Vec<Vec<usize>>)> = vec![
        (
            "maxpool",
            pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], false),
            vec![vec![2, 4, 8, 8]],
        ),
        (
            "maxpool_grad",
            pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0), (0, 0)], true),
            vec![vec![2, 4, 8, 8], vec![2, 4, 4, 4]],
        ),
        ("resize", WindowOp::Resize { size: vec![16, 16] }, vec![vec![2, 4, 8, 8]]),
        ("argmax", WindowOp::ArgMax { axis: 1 }, vec![vec![64, 100]]),
    ];
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").expect("flag");
    let isa = cranelift_native::builder().expect("host").finish(settings::Flags::new(flags)).expect("isa");
    for (name, op, shapes) in table.into_iter().filter(|(n, _, _)| *n == which) {
        let c = case(name.into(), op, &shapes, Values::Plain, Exact::Close);
        let mut sig = Signature::new(CallConv::SystemV);
        for _ in 0..5 {
            sig.params.push(AbiParam::new(types::I64));
        }
        let mut func = Function::with_name_signature(UserFuncName::user(0, 0), sig);
        let mut fctx = FunctionBuilderContext::new();
        {
            let mut b = FunctionBuilder::new(&mut func, &mut fctx);
            super::emit(&c.kernel, &mut b, types::I64, None).expect("emits");
            b.finalize(isa.frontend_config());
        }
        let mut ctx = Context::for_function(func);
        ctx.set_disasm(true);
        let code = ctx.compile(&*isa, &mut Default::default()).expect("compiles");
        eprintln!("{}", code.vcode.clone().unwrap_or_default());
    }
}
