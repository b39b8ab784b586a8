//! Tests of the gather and scatter kernels against the reference
//! interpreter (in f32, bit for bit): every kind along the first, a middle
//! and the last axis, inner sizes below and above the vector width, repeated,
//! negative and too large indices, NaN, signed zeros and ties; all rows in
//! one call and row by row; unchecked and checked; and `scatter_max_grad` as
//! the chain of its three kernels.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};

use crate::codegen::window::{WindowKernel, WindowOp};
use crate::codegen::{Checking, Jit};
use crate::ir::graph::{Graph, Loc, Mode, OutputKind};
use crate::ir::interp::{self, Tensor};
use crate::ir::op::{InputKind, Op};
use crate::ir::types::{DType, Shape, Type};

/// Deterministic data with NaN, both zeros and ties (multiples of 0.5).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            match (i * 7 + seed as usize) % 19 {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                3 => f32::NEG_INFINITY,
                _ => (u * 8.0).floor() * 0.5 - 2.0,
            }
        })
        .collect()
}

/// `e` indices into `0..n`: repeats, and a few negative or too large ones.
fn indices(e: usize, n: usize, seed: usize) -> Vec<i32> {
    (0..e)
        .map(|i| match (i * 5 + seed) % 11 {
            0 => -1,
            1 => n as i32,
            2 => i32::MIN,
            _ => ((i * 7 + seed * 3) % n.max(1)) as i32,
        })
        .collect()
}

/// The interpreter's result of `op` on `(x, index[, dy])`, as bits.
fn reference(op: &Op, x: (&[usize], &[f32]), index: &[i32], dy: Option<(&[usize], &[f32])>) -> Vec<u32> {
    let loc = Loc::NONE;
    let mut g = Graph::new("ref", Mode::Infer);
    let float = |shape: &[usize], v: &[f32]| {
        Tensor::<f32>::Float(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).expect("shape"))
    };
    let mut feeds = HashMap::from([
        ("x".to_string(), float(x.0, x.1)),
        (
            "index".to_string(),
            Tensor::Int(ArrayD::from_shape_vec(IxDyn(&[index.len()]), index.to_vec()).expect("shape")),
        ),
    ]);
    let mut args = vec![
        g.input("x", InputKind::Data, Type::f32(Shape::known(x.0)), loc),
        g.input("index", InputKind::Const, Type::new(DType::I32, Shape::known(&[index.len()])), loc),
    ];
    if let Some((shape, v)) = dy {
        args.push(g.input("dy", InputKind::Data, Type::f32(Shape::known(shape)), loc));
        feeds.insert("dy".to_string(), float(shape, v));
    }
    let v = g.add(op.clone(), &args, loc).expect("the op type-checks");
    g.output(OutputKind::Prediction, "out", v);
    let out = interp::run::<f32>(&g, &feeds).expect("interpreter runs").remove(0).1;
    out.as_float().expect("float result").iter().map(|v| v.to_bits()).collect()
}

/// The index as the 4-byte slots a kernel reads.
fn slots(index: &[i32]) -> Vec<f32> {
    index.iter().map(|&i| f32::from_bits(i as u32)).collect()
}

fn with_axis(shape: &[usize], axis: usize, n: usize) -> Vec<usize> {
    let mut out = shape.to_vec();
    out[axis] = n;
    out
}

/// One kernel of a [`Chain`]: its op, the names of the buffers it reads,
/// their shapes and the output's shape.
type Step = (WindowOp, Vec<&'static str>, Vec<Vec<usize>>, Vec<usize>);

/// Runs a chain of kernels (each reading `x`, `index`, `dy` or an earlier
/// kernel's output) unchecked and checked, over all rows at once and row
/// by row in reverse order; returns the last kernel's output bits of each
/// run.
struct Chain {
    steps: Vec<Step>,
}

impl Chain {
    fn run(&self, name: &str, buffers: &HashMap<&'static str, Vec<f32>>) -> Vec<Vec<u32>> {
        let mut jit = Jit::new().expect("host JIT");
        let mut ids = vec![];
        for (i, (op, _, inputs, output)) in self.steps.iter().enumerate() {
            let k = |suffix: &str| WindowKernel {
                name: format!("{name}_{i}{suffix}"),
                op: op.clone(),
                inputs: inputs.clone(),
                output: output.clone(),
            };
            ids.push((
                jit.add_window_kernel(&k(""), Checking::Unchecked).expect("compiles"),
                jit.add_window_kernel(&k("_checked"), Checking::Checked).expect("compiles"),
            ));
        }
        jit.finalize().expect("finalizes");
        let mut results = vec![];
        for checked in [false, true] {
            for row_by_row in [false, true] {
                let mut bufs = buffers.clone();
                let mut last = vec![];
                for (i, (_, names, _, output)) in self.steps.iter().enumerate() {
                    let id = if checked { ids[i].1 } else { ids[i].0 };
                    let f = jit.window_fn(id).expect("finalized");
                    let ins: Vec<&[f32]> = names.iter().map(|n| bufs[n].as_slice()).collect();
                    let mut out = vec![f32::from_bits(0x7f80_1234); output.iter().product()];
                    let rows = f.kernel().rows();
                    if row_by_row {
                        for r in (0..rows).rev() {
                            f.run(&ins, &mut out, r, r + 1).expect("runs");
                        }
                    } else {
                        f.run(&ins, &mut out, 0, rows).expect("runs");
                    }
                    last = out.iter().map(|v| v.to_bits()).collect();
                    bufs.insert(["y", "first", "out"][i.min(2)], out);
                }
                results.push(last);
            }
        }
        results
    }
}

/// (x shape, axis, index length or scattered size).
const SHAPES: &[(&[usize], usize, usize)] = &[
    (&[7], 0, 5),
    (&[9, 3], 0, 4),
    (&[9, 3], 1, 6),
    (&[2, 7, 5], 1, 9),
    (&[3, 5, 9], 1, 4),
    (&[2, 3, 11], 2, 7),
    (&[5, 2, 4], 0, 3),
    (&[1, 6, 1], 1, 6),
    (&[4, 3, 13], 0, 1),
];

fn assert_bits(name: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (gf, wf) = (f32::from_bits(g), f32::from_bits(w));
        assert!(
            g == w || (gf.is_nan() && wf.is_nan()),
            "{name}: element {i}: got {gf:e} ({g:#x}), want {wf:e} ({w:#x})"
        );
    }
}

#[test]
fn gather_matches_the_interpreter() {
    for (c, &(shape, axis, e)) in SHAPES.iter().enumerate() {
        let x = data(shape.iter().product(), c as u64);
        let index = indices(e, shape[axis], c);
        let op = Op::Gather { axis };
        let want = reference(&op, (shape, &x), &index, None);
        let out = with_axis(shape, axis, e);
        let chain = Chain {
            steps: vec![(WindowOp::Gather { axis }, vec!["x", "index"], vec![shape.to_vec(), vec![e]], out)],
        };
        let name = format!("gather_{c}");
        let buffers = HashMap::from([("x", x), ("index", slots(&index))]);
        for got in chain.run(&name, &buffers) {
            assert_bits(&name, &got, &want);
        }
    }
}

#[test]
fn scatters_match_the_interpreter() {
    for (c, &(shape, axis, size)) in SHAPES.iter().enumerate() {
        let x = data(shape.iter().product(), 100 + c as u64);
        let index = indices(shape[axis], size, c);
        let out = with_axis(shape, axis, size);
        let operands = vec![shape.to_vec(), vec![shape[axis]]];
        let buffers = HashMap::from([("x", x.clone()), ("index", slots(&index))]);
        for (op, wop) in [
            (Op::ScatterSum { axis, size }, WindowOp::ScatterSum { axis, size }),
            (Op::ScatterMax { axis, size }, WindowOp::ScatterMax { axis, size }),
        ] {
            let want = reference(&op, (shape, &x), &index, None);
            let name = format!("{}_{c}", op.mnemonic());
            let chain = Chain { steps: vec![(wop, vec!["x", "index"], operands.clone(), out.clone())] };
            for got in chain.run(&name, &buffers) {
                assert_bits(&name, &got, &want);
            }
        }
    }
}

#[test]
fn scatter_max_grad_chain_matches_the_interpreter() {
    for (c, &(shape, axis, size)) in SHAPES.iter().enumerate() {
        let x = data(shape.iter().product(), 200 + c as u64);
        let e = shape[axis];
        let index = indices(e, size, c);
        let y_shape = with_axis(shape, axis, size);
        let dy: Vec<f32> = (0..y_shape.iter().product::<usize>()).map(|i| i as f32 + 1.0).collect();
        let want = reference(&Op::ScatterMaxGrad { axis }, (shape, &x), &index, Some((&y_shape, &dy)));
        let chain = Chain {
            steps: vec![
                (
                    WindowOp::ScatterMax { axis, size },
                    vec!["x", "index"],
                    vec![shape.to_vec(), vec![e]],
                    y_shape.clone(),
                ),
                (
                    WindowOp::ScatterMaxFirst { axis },
                    vec!["x", "index", "y"],
                    vec![shape.to_vec(), vec![e], y_shape.clone()],
                    y_shape.clone(),
                ),
                (
                    WindowOp::ScatterMaxRoute { axis },
                    vec!["index", "first", "dy"],
                    vec![vec![e], y_shape.clone(), y_shape.clone()],
                    shape.to_vec(),
                ),
            ],
        };
        let name = format!("scatter_max_grad_{c}");
        let buffers = HashMap::from([("x", x), ("index", slots(&index)), ("dy", dy)]);
        for got in chain.run(&name, &buffers) {
            assert_bits(&name, &got, &want);
        }
    }
}

/// Checked kernels report an access beyond a short buffer instead of
/// making it; an index out of range is not such an access.
#[test]
fn checked_kernels_catch_short_buffers() {
    let k = WindowKernel {
        name: "short".into(),
        op: WindowOp::Gather { axis: 1 },
        inputs: vec![vec![2, 5], vec![3]],
        output: vec![2, 3],
    };
    let mut jit = Jit::new().expect("host JIT");
    let id = jit.add_window_kernel(&k, Checking::Checked).expect("compiles");
    jit.finalize().expect("finalizes");
    let f = jit.window_fn(id).expect("finalized");
    let x = data(10, 1);
    let index = slots(&[4, 9, -3]);
    let mut out = vec![0.0; 6];
    f.run(&[&x, &index], &mut out, 0, 2).expect("in-range accesses only");
    let e = f.run(&[&x[..7], &index], &mut out, 0, 2).expect_err("x is short");
    assert!(e.contains("input 0"), "{e}");
    let e = f.run(&[&x, &index[..2]], &mut out, 0, 2).expect_err("the index is short");
    assert!(e.contains("input 1"), "{e}");
}

/// Shapes that do not fit the op are errors, not kernels.
#[test]
fn bad_shapes_are_rejected() {
    let mut jit = Jit::new().expect("host JIT");
    let bad = [
        (WindowOp::Gather { axis: 2 }, vec![vec![2, 5], vec![3]], vec![2, 3]),
        (WindowOp::Gather { axis: 1 }, vec![vec![2, 5], vec![3, 1]], vec![2, 3]),
        (WindowOp::Gather { axis: 1 }, vec![vec![2, 5], vec![3]], vec![2, 5]),
        (WindowOp::ScatterSum { axis: 0, size: 4 }, vec![vec![3, 2], vec![2]], vec![4, 2]),
        (WindowOp::ScatterMax { axis: 0, size: 4 }, vec![vec![3, 2], vec![3]], vec![5, 2]),
        (WindowOp::ScatterMaxFirst { axis: 0 }, vec![vec![3, 2], vec![3], vec![4, 3]], vec![4, 2]),
        (WindowOp::ScatterMaxRoute { axis: 1 }, vec![vec![3], vec![2, 4], vec![2, 5]], vec![2, 3]),
    ];
    for (i, (op, inputs, output)) in bad.into_iter().enumerate() {
        let k = WindowKernel { name: format!("bad_{i}"), op, inputs, output };
        assert!(jit.add_window_kernel(&k, Checking::Unchecked).is_err(), "{k:?}");
    }
}
