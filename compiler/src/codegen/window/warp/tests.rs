//! Tests of the warp kernels: every op, mode and boundary against the
//! reference interpreter (run in f32 on a one-node graph) bit for bit, on
//! odd and degenerate shapes and on flows that stay near the grid, reach far
//! past it, or are NaN, infinite, huge, or exactly on half cells; whole
//! calls, one call per row in reverse order and sub-ranges (so results do
//! not depend on how rows are split among threads); checked kernels on
//! short buffers; inconsistent kernels.

use std::collections::HashMap;

use super::super::{WindowKernel, WindowOp};
use crate::codegen::{Checking, Jit};
use crate::ir::graph::{Graph, Loc, Mode, OutputKind};
use crate::ir::interp::{self, Tensor};
use crate::ir::op::{Boundary, InputKind, Op, WarpAttrs, WarpMode};
use crate::ir::types::{Shape, Type};

const MODES: [WarpMode; 2] = [WarpMode::Bilinear, WarpMode::Nearest];
const BOUNDARIES: [Boundary; 3] = [Boundary::Zeros, Boundary::Edge, Boundary::Circular];

/// How a test flow is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Uniform in [-1.5, 1.5]: mostly inside the grid.
    Near,
    /// Uniform in [-20, 20]: far outside, several turns around.
    Far,
    /// Half cells, zeros of both signs, NaN, ±inf and ±1e30 among near values.
    Special,
}

/// A deterministic uniform stream in [0, 1).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn image(n: usize, seed: u64) -> Vec<f32> {
    uniform(n, seed).into_iter().map(|u| 6.0 * u - 3.0).collect()
}

fn flow(n: usize, seed: u64, kind: Flow) -> Vec<f32> {
    let special = [0.5, -0.5, 1.5, -2.5, 0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30];
    uniform(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, u)| match kind {
            Flow::Near => 3.0 * u - 1.5,
            Flow::Far => 40.0 * u - 20.0,
            Flow::Special if i % 3 == 0 => special[(i / 3) % special.len()],
            Flow::Special => 3.0 * u - 1.5,
        })
        .collect()
}

/// The IR op of a warp kernel.
fn ir_op(op: &WindowOp) -> Op {
    match *op {
        WindowOp::Warp(a) => Op::Warp(a),
        WindowOp::WarpGradInput(a) => Op::WarpGradInput(a),
        WindowOp::WarpGradFlow(a) => Op::WarpGradFlow(a),
        ref other => panic!("not a warp op: {other:?}"),
    }
}

/// The interpreter's result of `op` on the operands, as f32 bits.
fn reference(op: &Op, operands: &[(Vec<usize>, Vec<f32>)]) -> (Vec<usize>, Vec<u32>) {
    let mut g = Graph::new("ref", Mode::Infer);
    let mut feeds = HashMap::new();
    let mut args = vec![];
    for (i, (shape, vals)) in operands.iter().enumerate() {
        let name = format!("in{i}");
        args.push(g.input(&name, InputKind::Data, Type::f32(Shape::known(shape)), Loc::NONE));
        let vals: Vec<f64> = vals.iter().map(|&v| f64::from(v)).collect();
        feeds.insert(name, Tensor::<f32>::from_f64(shape, &vals).expect("shape"));
    }
    let v = g.add(op.clone(), &args, Loc::NONE).expect("the op type-checks");
    g.output(OutputKind::Prediction, "out", v);
    let out = interp::run::<f32>(&g, &feeds).expect("interpreter runs").remove(0).1;
    let shape = out.shape().to_vec();
    let a = out.into_float().expect("a float result");
    (shape, a.iter().map(|v| v.to_bits()).collect())
}

/// Same bits, or NaN where the interpreter has NaN (NaN payloads differ
/// between hardware and Rust's constants).
fn assert_same(name: &str, got: &[u32], want: &[u32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (gf, wf) = (f32::from_bits(g), f32::from_bits(w));
        let ok = g == w || (gf.is_nan() && wf.is_nan());
        assert!(ok, "{name}: element {i}: got {gf:e} ({g:#x}), interpreter {wf:e} ({w:#x})");
    }
}

/// A kernel with its operands and the interpreter's result.
struct Case {
    kernel: WindowKernel,
    operands: Vec<Vec<f32>>,
    want: Vec<u32>,
}

/// The case of `op` on an image of `shape` (`[N, C, H, W]`) and a flow of
/// the given kind.
fn case(name: String, op: WindowOp, shape: [usize; 4], kind: Flow) -> Case {
    let [n, c, h, w] = shape;
    let seed = name.len() as u64;
    let x = (shape.to_vec(), image(n * c * h * w, seed));
    let f = (vec![n, 2, h, w], flow(n * 2 * h * w, seed + 1, kind));
    let dy = (shape.to_vec(), image(n * c * h * w, seed + 2));
    let operands = match op {
        WindowOp::Warp(_) => vec![x, f],
        WindowOp::WarpGradInput(_) => vec![f, dy],
        _ => vec![x, f, dy],
    };
    let (out, want) = reference(&ir_op(&op), &operands);
    Case {
        kernel: WindowKernel {
            name,
            op,
            inputs: operands.iter().map(|o| o.0.clone()).collect(),
            output: out,
        },
        operands: operands.into_iter().map(|o| o.1).collect(),
        want,
    }
}

/// The three warp ops with `attrs`.
fn ops(attrs: WarpAttrs) -> [(&'static str, WindowOp); 3] {
    [
        ("warp", WindowOp::Warp(attrs)),
        ("grad_input", WindowOp::WarpGradInput(attrs)),
        ("grad_flow", WindowOp::WarpGradFlow(attrs)),
    ]
}

/// Every op, mode and boundary on `shape` with flows of `kind`.
fn cases(shape: [usize; 4], kind: Flow) -> Vec<Case> {
    let mut out = vec![];
    for mode in MODES {
        for boundary in BOUNDARIES {
            for (what, op) in ops(WarpAttrs { mode, boundary }) {
                let name = format!(
                    "{what}_{mode:?}_{boundary:?}_{kind:?}_{}x{}x{}x{}",
                    shape[0], shape[1], shape[2], shape[3]
                );
                out.push(case(name, op, shape, kind));
            }
        }
    }
    out
}

/// Odd and degenerate shapes; `[1, 2, 19, 23]` has more positions than a
/// block of taps holds (a full block and a partial one).
const SHAPES: [[usize; 4]; 7] =
    [[2, 3, 5, 7], [1, 1, 1, 1], [3, 2, 1, 9], [2, 4, 6, 1], [1, 2, 13, 17], [1, 2, 19, 23], [2, 0, 3, 4]];

#[test]
fn warp_kernels_match_the_interpreter() {
    let mut all = vec![];
    for shape in SHAPES {
        for kind in [Flow::Near, Flow::Far, Flow::Special] {
            all.extend(cases(shape, kind));
        }
    }
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = all
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
    let sentinel = f32::from_bits(0x7f80_1234);
    for (c, (unchecked, checked)) in all.iter().zip(ids) {
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let rows = c.kernel.rows();
        for id in [unchecked, checked] {
            let f = jit.window_fn(id).expect("finalized");
            let name = &f.kernel().name;
            let mut out = vec![sentinel; c.kernel.output_len()];
            f.run(&ins, &mut out, 0, rows).expect("runs");
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_same(name, &got, &c.want);
            // One call per row, in reverse order: the same bits.
            let mut out = vec![sentinel; c.kernel.output_len()];
            for r in (0..rows).rev() {
                f.run(&ins, &mut out, r, r + 1).expect("runs");
            }
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_same(&format!("{name} (row by row)"), &got, &c.want);
        }
    }
}

#[test]
fn sub_ranges_write_only_their_rows() {
    let mut all = vec![];
    for mode in MODES {
        for (what, op) in ops(WarpAttrs { mode, boundary: Boundary::Zeros }) {
            all.push(case(format!("sub_{what}_{mode:?}"), op, [4, 2, 3, 5], Flow::Far));
        }
    }
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> =
        all.iter().map(|c| jit.add_window_kernel(&c.kernel, Checking::Checked).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let sentinel = f32::from_bits(0x7f80_4321);
    for (c, id) in all.iter().zip(ids) {
        let name = &c.kernel.name;
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![sentinel; c.kernel.output_len()];
        jit.window_fn(id).expect("finalized").run(&ins, &mut out, 1, 3).expect("runs");
        let row = c.kernel.output_len() / 4;
        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
        assert_same(name, &got[row..3 * row], &c.want[row..3 * row]);
        for (i, v) in got.iter().enumerate().filter(|(i, _)| *i < row || *i >= 3 * row) {
            assert_eq!(*v, sentinel.to_bits(), "{name}: element {i} outside rows 1..3 was written");
        }
        let mut out = vec![sentinel; c.kernel.output_len()];
        jit.window_fn(id).expect("finalized").run(&ins, &mut out, 2, 2).expect("runs");
        assert!(out.iter().all(|v| v.to_bits() == sentinel.to_bits()), "{name}: empty range wrote");
    }
}

#[test]
fn checked_kernels_stop_at_out_of_bounds_accesses() {
    let attrs = WarpAttrs { mode: WarpMode::Bilinear, boundary: Boundary::Edge };
    // (op, which buffer is short: an input number, or None for the output)
    let table = [
        (WindowOp::Warp(attrs), Some(0)),
        (WindowOp::Warp(attrs), Some(1)),
        (WindowOp::Warp(attrs), None),
        (WindowOp::WarpGradInput(attrs), Some(0)),
        (WindowOp::WarpGradInput(attrs), Some(1)),
        (WindowOp::WarpGradInput(attrs), None),
        (WindowOp::WarpGradFlow(attrs), Some(0)),
        (WindowOp::WarpGradFlow(attrs), Some(2)),
        (WindowOp::WarpGradFlow(attrs), None),
    ];
    let cases: Vec<Case> = table
        .iter()
        .enumerate()
        .map(|(i, (op, _))| {
            let mut c = case(format!("oob_{i}"), op.clone(), [2, 3, 4, 5], Flow::Near);
            // A zero flow reads every element of the image.
            let flow = if matches!(op, WindowOp::WarpGradInput(_)) { 0 } else { 1 };
            c.operands[flow].iter_mut().for_each(|v| *v = 0.0);
            c
        })
        .collect();
    let mut jit = Jit::new().expect("host JIT");
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
    for ((c, (_, short)), (checked, unchecked)) in cases.iter().zip(&table).zip(ids) {
        let name = &c.kernel.name;
        let mut ins = c.operands.clone();
        let out_len = c.kernel.output_len();
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
        let err =
            jit.window_fn(checked).expect("finalized").run(&refs, &mut big[..visible], 0, rows).unwrap_err();
        let fragment = match short {
            Some(b) => format!("input {b} at element"),
            None => "the output at element".to_string(),
        };
        assert!(err.contains(name.as_str()) && err.contains(&fragment), "{name}: message {err}");
        assert!(
            big[visible..].iter().all(|v| v.to_bits() == sentinel.to_bits()),
            "{name}: a write past the end of the output"
        );
        let err = jit.window_fn(unchecked).expect("finalized").run(&refs, &mut big[..visible], 0, rows);
        assert!(err.is_err(), "{name}: unchecked kernel accepted short buffers");
    }
}

#[test]
fn inconsistent_kernels_are_errors() {
    let a = WarpAttrs { mode: WarpMode::Nearest, boundary: Boundary::Circular };
    let kernel = |op, inputs: Vec<Vec<usize>>, output: Vec<usize>| WindowKernel {
        name: "bad".into(),
        op,
        inputs,
        output,
    };
    let x = vec![2, 3, 5, 7];
    let f = vec![2, 2, 5, 7];
    let table: Vec<(WindowKernel, &str)> = vec![
        (kernel(WindowOp::Warp(a), vec![x.clone()], x.clone()), "takes 2 input(s)"),
        (kernel(WindowOp::Warp(a), vec![x.clone(), vec![2, 3, 5, 7]], x.clone()), "flow"),
        (kernel(WindowOp::Warp(a), vec![x.clone(), vec![1, 2, 5, 7]], x.clone()), "flow"),
        (kernel(WindowOp::Warp(a), vec![vec![2, 3, 35], vec![2, 2, 35]], vec![2, 3, 35]), "[N, C, H, W]"),
        (kernel(WindowOp::Warp(a), vec![x.clone(), f.clone()], f.clone()), "output shape"),
        (kernel(WindowOp::WarpGradInput(a), vec![x.clone(), f.clone()], x.clone()), "flow"),
        (kernel(WindowOp::WarpGradFlow(a), vec![x.clone(), f.clone()], f.clone()), "takes 3 input(s)"),
        (
            kernel(WindowOp::WarpGradFlow(a), vec![x.clone(), f.clone(), vec![2, 3, 5, 6]], f.clone()),
            "output gradient",
        ),
        (kernel(WindowOp::WarpGradFlow(a), vec![x.clone(), f.clone(), x.clone()], x.clone()), "output shape"),
        (
            kernel(
                WindowOp::Warp(a),
                vec![vec![1, 1, 1 << 15, 1 << 15], vec![1, 2, 1 << 15, 1 << 15]],
                vec![1, 1, 1 << 15, 1 << 15],
            ),
            "too large",
        ),
    ];
    let mut jit = Jit::new().expect("host JIT");
    for (k, fragment) in table {
        let e = jit.add_window_kernel(&k, Checking::Unchecked).unwrap_err();
        assert!(e.to_string().contains(fragment), "expected `{fragment}`: {e}");
    }
}

/// Throughput of the warp kernels on one thread (run with `--ignored
/// --nocapture`; not a correctness test).
#[test]
#[ignore]
fn throughput_of_warp_kernels() {
    let shape = [32, 64, 32, 32];
    let mut all = vec![];
    for (mode, boundary) in [
        (WarpMode::Bilinear, Boundary::Zeros),
        (WarpMode::Bilinear, Boundary::Circular),
        (WarpMode::Nearest, Boundary::Edge),
    ] {
        for (what, op) in ops(WarpAttrs { mode, boundary }) {
            all.push(case(format!("{what}_{mode:?}_{boundary:?}"), op, shape, Flow::Near));
        }
    }
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = all
        .iter()
        .map(|c| jit.add_window_kernel(&c.kernel, Checking::Unchecked).expect("compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    for (c, id) in all.iter().zip(ids) {
        let f = jit.window_fn(id).expect("finalized");
        let ins: Vec<&[f32]> = c.operands.iter().map(|v| v.as_slice()).collect();
        let mut out = vec![0.0f32; c.kernel.output_len()];
        let reps = 20;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f.run(&ins, &mut out, 0, c.kernel.rows()).expect("runs");
        }
        let secs = t.elapsed().as_secs_f64() / reps as f64;
        let samples = (shape.iter().product::<usize>()) as f64;
        eprintln!("{}: {:.3} ms, {:.2} ns per sample", c.kernel.name, secs * 1e3, secs * 1e9 / samples);
    }
}
