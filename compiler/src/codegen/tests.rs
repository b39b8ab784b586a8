//! Tests of the code generator: approximations against f64 references on
//! dense sweeps, and loop kernels against the reference interpreter.

use std::collections::HashMap;

use cranelift_codegen::ir::Value;

use super::approx::{self, Emit};
use super::jit::MapFnPtr;
use super::{Checking, Expr, Jit, LoopKernel};
use crate::ir::graph::{Graph, Loc, Mode, OutputKind, ValueId};
use crate::ir::interp::{self, Tensor};
use crate::ir::op::{BinaryOp, CmpOp, InputKind, Op, UnaryOp};
use crate::ir::types::{DType, Shape, Type};

// ---------------------------------------------------------------- approx

/// Runs `f` over `xs` through the vector path (all but the last `len % 4`
/// elements) and again element by element through the scalar path; asserts
/// both agree bit for bit and returns the results.
fn run_map(f: MapFnPtr, xs: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; xs.len()];
    // SAFETY: `x` and `y` are valid for `xs.len()` reads and writes, the
    // count passed; the function touches exactly elements `0..n`.
    unsafe { f(xs.as_ptr(), y.as_mut_ptr(), xs.len()) };
    for (i, &x) in xs.iter().enumerate().step_by(7) {
        let mut s = 0.0f32;
        // SAFETY: one readable and one writable element, n = 1.
        unsafe { f(&x, &mut s, 1) };
        assert!(
            s.to_bits() == y[i].to_bits() || (s.is_nan() && y[i].is_nan()),
            "scalar {s} vs vector {} at {x}",
            y[i]
        );
    }
    y
}

/// Every f32 of the form ±m·2^e for 256 mantissas m per binade, all
/// binades (subnormals included), plus special values.
fn sweep_all_binades() -> Vec<f32> {
    let mut v =
        vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN, f32::MIN_POSITIVE];
    for exp_bits in 0u32..255 {
        for m in 0u32..256 {
            let bits = (exp_bits << 23) | (m << 15) | (m & 0x7fff);
            v.push(f32::from_bits(bits));
            v.push(-f32::from_bits(bits));
        }
    }
    v
}

/// Every multiple of `step` in `[lo, hi]`.
fn grid(lo: f64, hi: f64, step: f64) -> Vec<f32> {
    let n = ((hi - lo) / step) as usize;
    (0..=n).map(|i| (lo + i as f64 * step) as f32).collect()
}

struct ErrStats {
    max_rel: f64,
    at_rel: f32,
    max_abs_tiny: f64,
}

/// Errors of `ys` against the f64 reference: relative where the rounded
/// reference is a normal f32, absolute where it is below 2^-126 (or zero).
/// Non-finite references must be matched exactly (NaN by NaN).
fn errors(name: &str, xs: &[f32], ys: &[f32], reference: fn(f64) -> f64) -> ErrStats {
    let mut s = ErrStats { max_rel: 0.0, at_rel: 0.0, max_abs_tiny: 0.0 };
    for (&x, &y) in xs.iter().zip(ys) {
        let r = reference(f64::from(x));
        if r.is_nan() {
            assert!(y.is_nan(), "{name}({x:e}) = {y:e}, expected NaN");
            continue;
        }
        let r32 = r as f32;
        if r32.is_infinite() {
            assert_eq!(y, r32, "{name}({x:e}) = {y:e}, expected {r32}");
            continue;
        }
        assert!(y.is_finite(), "{name}({x:e}) = {y:e}, expected {r:e}");
        let d = (f64::from(y) - r).abs();
        if r32.abs() < f32::MIN_POSITIVE {
            s.max_abs_tiny = s.max_abs_tiny.max(d);
        } else if d / r.abs() > s.max_rel {
            s.max_rel = d / r.abs();
            s.at_rel = x;
        }
    }
    s
}

fn sigmoid64(x: f64) -> f64 {
    interp::sigmoid(x)
}

fn softplus64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

type EmitFn = fn(&mut Emit, Value) -> Value;

/// (name, emitter, f64 reference, sweep (lo, hi, step), relative bound,
/// absolute bound for results below 2^-126).
type BoundCase = (&'static str, EmitFn, fn(f64) -> f64, (f64, f64, f64), f64, f64);

#[test]
fn approximations_meet_their_documented_bounds() {
    const SUBNORMAL_ABS: f64 = 1.0 / (1u64 << 63) as f64 / (1u64 << 63) as f64 / (1u64 << 23) as f64; // 2^-149
    let table: &[BoundCase] = &[
        ("exp", approx::exp, f64::exp, (-104.5, 89.0, 1.0 / 512.0), 2.5e-7, SUBNORMAL_ABS),
        ("log", approx::log, f64::ln, (-1.0, 16.0, 1.0 / 4096.0), 2.5e-7, 0.0),
        ("tanh", approx::tanh, f64::tanh, (-10.0, 10.0, 1.0 / 4096.0), 4e-7, SUBNORMAL_ABS),
        ("sigmoid", approx::sigmoid, sigmoid64, (-110.0, 30.0, 1.0 / 1024.0), 4e-7, SUBNORMAL_ABS),
        ("erf", approx::erf, interp::erf, (-5.0, 5.0, 1.0 / 8192.0), 4e-7, SUBNORMAL_ABS),
        ("softplus", approx::softplus, softplus64, (-110.0, 30.0, 1.0 / 1024.0), 5e-7, SUBNORMAL_ABS),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table.iter().map(|t| jit.add_map(t.0, t.1).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let extremes: Vec<f32> = vec![
        88.72283,
        88.72284,
        88.7229,
        88.73,
        -87.33654,
        -87.3366,
        -103.97,
        -103.98,
        -104.0,
        1e-30,
        -1e-30,
        1e-45,
        -1e-45,
        0.5,
        1.0,
        0.625,
        -0.625,
        0.999_999_9,
        1.000_000_1,
        3.999_999,
        4.0,
        9.0,
        9.1,
    ];
    for ((name, _, reference, (lo, hi, step), rel_bound, abs_bound), id) in table.iter().zip(ids) {
        let f = jit.map_fn(id);
        let mut xs = grid(*lo, *hi, *step);
        xs.extend(sweep_all_binades());
        xs.extend(&extremes);
        let ys = run_map(f, &xs);
        let s = errors(name, &xs, &ys, *reference);
        eprintln!(
            "{name}: max rel error {:.3e} at {:e}, max abs error of tiny results {:.3e}",
            s.max_rel, s.at_rel, s.max_abs_tiny
        );
        assert!(s.max_rel <= *rel_bound, "{name}: relative error {:e} at {:e}", s.max_rel, s.at_rel);
        assert!(s.max_abs_tiny <= *abs_bound, "{name}: tiny-result error {:e}", s.max_abs_tiny);
    }
}

#[test]
fn approximations_special_values() {
    let inf = f32::INFINITY;
    // (function, input, expected; NaN expects NaN, zeros are checked with their sign)
    let table: &[(&str, EmitFn, f32, f32)] = &[
        ("exp", approx::exp, 0.0, 1.0),
        ("exp", approx::exp, -0.0, 1.0),
        ("exp", approx::exp, inf, inf),
        ("exp", approx::exp, -inf, 0.0),
        ("exp", approx::exp, 89.0, inf),
        ("exp", approx::exp, -200.0, 0.0),
        ("exp", approx::exp, f32::NAN, f32::NAN),
        ("log", approx::log, 0.0, -inf),
        ("log", approx::log, -0.0, -inf),
        ("log", approx::log, 1.0, 0.0),
        ("log", approx::log, inf, inf),
        ("log", approx::log, -1.0, f32::NAN),
        ("log", approx::log, -inf, f32::NAN),
        ("log", approx::log, f32::NAN, f32::NAN),
        ("tanh", approx::tanh, 0.0, 0.0),
        ("tanh", approx::tanh, -0.0, -0.0),
        ("tanh", approx::tanh, inf, 1.0),
        ("tanh", approx::tanh, -inf, -1.0),
        ("tanh", approx::tanh, 20.0, 1.0),
        ("tanh", approx::tanh, f32::NAN, f32::NAN),
        ("sigmoid", approx::sigmoid, 0.0, 0.5),
        ("sigmoid", approx::sigmoid, -0.0, 0.5),
        ("sigmoid", approx::sigmoid, inf, 1.0),
        ("sigmoid", approx::sigmoid, -inf, 0.0),
        ("sigmoid", approx::sigmoid, f32::NAN, f32::NAN),
        ("erf", approx::erf, 0.0, 0.0),
        ("erf", approx::erf, -0.0, -0.0),
        ("erf", approx::erf, inf, 1.0),
        ("erf", approx::erf, -inf, -1.0),
        ("erf", approx::erf, f32::NAN, f32::NAN),
        ("softplus", approx::softplus, inf, inf),
        ("softplus", approx::softplus, -inf, 0.0),
        ("softplus", approx::softplus, 100.0, 100.0),
        ("softplus", approx::softplus, f32::NAN, f32::NAN),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table
        .iter()
        .enumerate()
        .map(|(i, t)| jit.add_map(&format!("{}_{i}", t.0), t.1).expect("compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    for ((name, _, x, want), id) in table.iter().zip(ids) {
        // Four copies go through the vector path, a fifth through the scalar one.
        let got = run_map(jit.map_fn(id), &[*x; 5]);
        for g in got {
            let ok = if want.is_nan() { g.is_nan() } else { g.to_bits() == want.to_bits() };
            assert!(ok, "{name}({x}) = {g:e}, expected {want:e}");
        }
    }
}

// ---------------------------------------------------------------- loops

/// Deterministic test data: values in [-3, 3] with a few special values.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            match (i * 7 + seed as usize) % 41 {
                0 => 0.0,
                1 => -0.0,
                2 => f32::NAN,
                3 => 1.0,
                _ => 6.0 * u - 3.0,
            }
        })
        .collect()
}

/// A buffer for input strides `strides` over `shape`: long enough for the
/// largest offset (strides are non-negative in these tests).
fn buffer_for(shape: &[usize], strides: &[isize], seed: u64) -> Vec<f32> {
    let hi: isize = shape.iter().zip(strides).map(|(&n, &s)| s * (n as isize - 1).max(0)).sum();
    data(hi as usize + 1, seed)
}

/// The interpreter's result for `k`: each input is gathered from its buffer
/// over the axes it varies along (size 1 where its stride is 0), then
/// broadcast to the iteration shape; the body becomes IR ops.
fn reference(k: &LoopKernel, buffers: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let loc = Loc::default();
    let mut g = Graph::new("ref", Mode::Infer);
    let full = Shape::known(&k.shape);
    let mut feeds = HashMap::new();
    let mut ins: Vec<ValueId> = vec![];
    for (b, strides) in k.inputs.iter().enumerate() {
        let own: Vec<usize> =
            k.shape.iter().zip(strides).map(|(&n, &s)| if s == 0 { 1 } else { n }).collect();
        let count: usize = own.iter().product();
        let mut vals = Vec::with_capacity(count);
        for flat in 0..count {
            let mut rest = flat;
            let mut off = 0isize;
            for a in (0..own.len()).rev() {
                off += (rest % own[a]) as isize * strides[a];
                rest /= own[a];
            }
            vals.push(f64::from(buffers[b][off as usize]));
        }
        let name = format!("in{b}");
        let v = g.input(&name, InputKind::Data, Type::f32(Shape::known(&own)), loc);
        feeds.insert(name, Tensor::<f32>::from_f64(&own, &vals).expect("shape"));
        let v = if own != k.shape {
            g.add(Op::Broadcast { shape: full.clone() }, &[v], loc).expect("bcast")
        } else {
            v
        };
        ins.push(v);
    }
    let mut vals: Vec<ValueId> = vec![];
    for e in &k.body {
        let v = match *e {
            Expr::Input(b) => ins[b],
            Expr::Const(c) => {
                let s = g.constant(f64::from(c), DType::F32, loc);
                g.add(Op::Broadcast { shape: full.clone() }, &[s], loc).expect("bcast")
            }
            Expr::Unary(op, a) => g.add(Op::Unary(op), &[vals[a]], loc).expect("unary"),
            Expr::Binary(op, a, b) => g.add(Op::Binary(op), &[vals[a], vals[b]], loc).expect("binary"),
            Expr::Compare(op, a, b) => {
                let m = g.add(Op::Compare(op), &[vals[a], vals[b]], loc).expect("compare");
                g.add(Op::Cast { to: DType::F32 }, &[m], loc).expect("cast")
            }
            Expr::Select(c, a, b) => {
                let m = g.add(Op::Cast { to: DType::Bool }, &[vals[c]], loc).expect("cast");
                g.add(Op::Select, &[m, vals[a], vals[b]], loc).expect("select")
            }
        };
        vals.push(v);
    }
    for (o, &e) in k.outputs.iter().enumerate() {
        g.output(OutputKind::Prediction, format!("out{o}"), vals[e]);
    }
    let outs = interp::run::<f32>(&g, &feeds).expect("interpreter runs");
    outs.into_iter().map(|(_, t)| t.into_float().expect("float output").iter().copied().collect()).collect()
}

/// Values agree: both NaN, equal (±0 equal), or within `rel` relative error
/// (plus 1e-6 absolute, for results near zero computed with cancellation).
fn assert_close(name: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= rel * w.abs() + 1e-6;
        assert!(ok, "{name}: element {i}: got {g:e}, interpreter {w:e}");
    }
}

/// Compiles `k` (unchecked and checked), runs both over the whole range and
/// compares with the interpreter.
fn check_kernel(jit_kernels: &[LoopKernel]) {
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = jit_kernels
        .iter()
        .flat_map(|k| {
            let mut checked = k.clone();
            checked.name = format!("{}_checked", k.name);
            [jit.add_loop_kernel(k, Checking::Unchecked), jit.add_loop_kernel(&checked, Checking::Checked)]
        })
        .map(|r| r.expect("kernel compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    for (n, k) in jit_kernels.iter().enumerate() {
        let buffers: Vec<Vec<f32>> = k
            .inputs
            .iter()
            .enumerate()
            .map(|(b, s)| buffer_for(&k.shape, s, n as u64 * 31 + b as u64))
            .collect();
        let want = reference(k, &buffers);
        for id in [ids[2 * n], ids[2 * n + 1]] {
            let f = jit.loop_fn(id).expect("finalized");
            let ins: Vec<&[f32]> = buffers.iter().map(|b| b.as_slice()).collect();
            let mut outs = vec![vec![f32::NAN; k.elements()]; k.outputs.len()];
            let mut out_refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
            f.run(&ins, &mut out_refs, 0, k.elements()).expect("runs");
            for (o, (got, want)) in outs.iter().zip(&want).enumerate() {
                assert_close(&format!("{} output {o}", f.kernel().name), got, want, 1e-5);
            }
        }
    }
}

fn contiguous(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for a in (0..shape.len()).rev() {
        s[a] = acc;
        acc *= shape[a] as isize;
    }
    s
}

fn unary_kernel(op: UnaryOp, shape: &[usize]) -> LoopKernel {
    LoopKernel {
        name: format!("{}_{}", op.name(), shape.len()),
        shape: shape.to_vec(),
        inputs: vec![contiguous(shape)],
        body: vec![Expr::Input(0), Expr::Unary(op, 0)],
        outputs: vec![1],
    }
}

fn binary_kernel(name: &str, shape: &[usize], a: Vec<isize>, b: Vec<isize>, op: Expr) -> LoopKernel {
    LoopKernel {
        name: name.to_string(),
        shape: shape.to_vec(),
        inputs: vec![a, b],
        body: vec![Expr::Input(0), Expr::Input(1), op],
        outputs: vec![2],
    }
}

#[test]
fn every_unary_op_matches_the_interpreter() {
    let kernels: Vec<LoopKernel> = UnaryOp::ALL.iter().map(|&op| unary_kernel(op, &[1023])).collect();
    check_kernel(&kernels);
}

#[test]
fn every_binary_and_compare_op_matches_the_interpreter() {
    let shape = [7, 13];
    let c = contiguous(&shape);
    let mut kernels = vec![];
    for op in BinaryOp::ALL {
        kernels.push(binary_kernel(op.name(), &shape, c.clone(), c.clone(), Expr::Binary(op, 0, 1)));
    }
    for op in CmpOp::ALL {
        kernels.push(binary_kernel(op.name(), &shape, c.clone(), c.clone(), Expr::Compare(op, 0, 1)));
    }
    check_kernel(&kernels);
}

#[test]
fn select_on_masks_and_on_values() {
    let shape = [5, 9];
    let c = contiguous(&shape);
    let kernels = vec![
        // where(a < b, a * 2, b): the mask of a comparison.
        LoopKernel {
            name: "select_mask".into(),
            shape: shape.to_vec(),
            inputs: vec![c.clone(), c.clone()],
            body: vec![
                Expr::Input(0),
                Expr::Input(1),
                Expr::Compare(CmpOp::Lt, 0, 1),
                Expr::Const(2.0),
                Expr::Binary(BinaryOp::Mul, 0, 3),
                Expr::Select(2, 4, 1),
            ],
            outputs: vec![5, 2],
        },
        // A raw value as condition: non-zero (and NaN) is true, ±0 false.
        LoopKernel {
            name: "select_value".into(),
            shape: shape.to_vec(),
            inputs: vec![c.clone(), c.clone(), c.clone()],
            body: vec![Expr::Input(0), Expr::Input(1), Expr::Input(2), Expr::Select(0, 1, 2)],
            outputs: vec![3],
        },
    ];
    check_kernel(&kernels);
}

#[test]
fn broadcasting_patterns() {
    let shape = [3, 5, 7];
    let full = contiguous(&shape);
    // (name, stride of the second input): broadcast along every subset of axes.
    let table: &[(&str, Vec<isize>)] = &[
        ("b_axis0", vec![0, 7, 1]),
        ("b_axis1", vec![7, 0, 1]),
        ("b_axis2", vec![5, 1, 0]),
        ("b_axes01", vec![0, 0, 1]),
        ("b_axes12", vec![1, 0, 0]),
        ("b_axes02", vec![0, 1, 0]),
        ("b_scalar", vec![0, 0, 0]),
        // Scalar fallback: the second input transposed (stored as [7, 5, 3]).
        ("b_transposed", vec![1, 3, 15]),
    ];
    let mut kernels: Vec<LoopKernel> = table
        .iter()
        .map(|(name, s)| {
            let mut k =
                binary_kernel(name, &shape, full.clone(), s.clone(), Expr::Binary(BinaryOp::Sub, 0, 1));
            // relu(a - b) * b + exp(b): several uses of the broadcast input.
            k.body.extend([
                Expr::Const(0.0),
                Expr::Binary(BinaryOp::Max, 2, 3),
                Expr::Binary(BinaryOp::Mul, 4, 1),
                Expr::Unary(UnaryOp::Exp, 1),
                Expr::Binary(BinaryOp::Add, 5, 6),
            ]);
            k.outputs = vec![7];
            k
        })
        .collect();
    // Both inputs broadcast, differently.
    kernels.push(binary_kernel(
        "b_outer_product",
        &shape,
        vec![0, 1, 0],
        vec![0, 0, 1],
        Expr::Binary(BinaryOp::Mul, 0, 1),
    ));
    check_kernel(&kernels);
}

/// relu(a * x + b), tanh(x) and gelu(x) = x/2·(1 + erf(x/√2)) with the
/// affine parameters broadcast along the rows.
fn fused_kernel(name: &str, shape: &[usize]) -> LoopKernel {
    let rank = shape.len();
    let mut row_param = vec![0isize; rank];
    if rank > 0 {
        row_param[rank - 1] = 1;
    }
    LoopKernel {
        name: name.to_string(),
        shape: shape.to_vec(),
        inputs: vec![contiguous(shape), row_param.clone(), row_param],
        body: vec![
            Expr::Input(0),
            Expr::Input(1),
            Expr::Input(2),
            Expr::Binary(BinaryOp::Mul, 1, 0),
            Expr::Binary(BinaryOp::Add, 3, 2),
            Expr::Const(0.0),
            Expr::Binary(BinaryOp::Max, 4, 5),
            Expr::Unary(UnaryOp::Tanh, 0),
            Expr::Const(std::f32::consts::FRAC_1_SQRT_2),
            Expr::Binary(BinaryOp::Mul, 0, 8),
            Expr::Unary(UnaryOp::Erf, 9),
            Expr::Const(1.0),
            Expr::Binary(BinaryOp::Add, 10, 11),
            Expr::Const(0.5),
            Expr::Binary(BinaryOp::Mul, 0, 13),
            Expr::Binary(BinaryOp::Mul, 14, 12),
        ],
        outputs: vec![6, 7, 15],
    }
}

#[test]
fn odd_sizes_exercise_every_tail() {
    let shapes: &[&[usize]] = &[
        &[],
        &[1],
        &[3],
        &[5],
        &[7],
        &[13],
        &[1023],
        &[2, 3],
        &[3, 5],
        &[13, 7],
        &[2, 3, 5],
        &[1, 1023],
        &[0],
    ];
    let kernels: Vec<LoopKernel> =
        shapes.iter().enumerate().map(|(i, s)| fused_kernel(&format!("fused_{i}"), s)).collect();
    check_kernel(&kernels);
}

#[test]
fn sub_ranges_give_the_same_results_as_one_call() {
    let kernels = [
        fused_kernel("split_fused", &[13, 29]),
        binary_kernel("split_bcast", &[6, 11], vec![11, 1], vec![1, 0], Expr::Binary(BinaryOp::Div, 0, 1)),
        binary_kernel("split_strided", &[6, 11], vec![1, 6], vec![11, 1], Expr::Binary(BinaryOp::Add, 0, 1)),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> =
        kernels.iter().map(|k| jit.add_loop_kernel(k, Checking::Unchecked).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    for (k, id) in kernels.iter().zip(ids) {
        let f = jit.loop_fn(id).expect("finalized");
        let buffers: Vec<Vec<f32>> =
            k.inputs.iter().enumerate().map(|(b, s)| buffer_for(&k.shape, s, 7 + b as u64)).collect();
        let ins: Vec<&[f32]> = buffers.iter().map(|b| b.as_slice()).collect();
        let n = k.elements();
        let run = |cuts: &[usize]| -> Vec<Vec<f32>> {
            let mut outs = vec![vec![f32::NAN; n]; k.outputs.len()];
            let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
            for w in cuts.windows(2) {
                f.run(&ins, &mut refs, w[0], w[1]).expect("runs");
            }
            outs
        };
        let whole = run(&[0, n]);
        for cuts in
            [vec![0, n / 2, n], vec![0, n / 3, 2 * n / 3 + 1, n], vec![0, 1, 5, n - 2, n], vec![0, 0, n, n]]
        {
            let parts = run(&cuts);
            for (a, b) in whole.iter().zip(&parts) {
                let same =
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
                assert!(same, "{}: cuts {cuts:?} differ from one call", k.name);
            }
        }
    }
}

#[test]
fn checked_kernels_stop_at_out_of_bounds_accesses() {
    let shape = [4, 6];
    // (name, strides of input 0 as compiled, buffer length, expected message fragment)
    let table: &[(&str, Vec<isize>, usize, &str)] = &[
        // Row stride 7 instead of 6: the last row reads past the 24 elements.
        ("wrong_row_stride", vec![7, 1], 24, "input 0 at element"),
        // Transposed access into a buffer that is one element short.
        ("short_transposed", vec![1, 4], 23, "input 0 at element 23"),
        // A broadcast input whose buffer is empty.
        ("empty_broadcast", vec![0, 0], 0, "input 0 at element 0 (buffer length 0)"),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table
        .iter()
        .map(|(name, s, _, _)| {
            let k = LoopKernel {
                name: name.to_string(),
                shape: shape.to_vec(),
                inputs: vec![s.clone()],
                body: vec![Expr::Input(0), Expr::Unary(UnaryOp::Neg, 0)],
                outputs: vec![1],
            };
            (
                jit.add_loop_kernel(&k, Checking::Checked).expect("compiles"),
                jit.add_loop_kernel(&LoopKernel { name: format!("{name}_u"), ..k }, Checking::Unchecked)
                    .expect("compiles"),
            )
        })
        .collect();
    jit.finalize().expect("finalizes");
    for ((name, _, len, fragment), (checked, unchecked)) in table.iter().zip(ids) {
        let input = vec![1.0f32; *len];
        let mut out = vec![0.0f32; 24];
        let err =
            jit.loop_fn(checked).expect("finalized").run(&[&input], &mut [&mut out], 0, 24).unwrap_err();
        assert!(err.contains(name) && err.contains(fragment), "{name}: message {err}");
        // Nothing was written past the failing access: elements after it are untouched.
        assert_eq!(out[23], 0.0, "{name}: kernel continued after the trap");
        // The unchecked version refuses to run on the same buffer.
        let err =
            jit.loop_fn(unchecked).expect("finalized").run(&[&input], &mut [&mut out], 0, 24).unwrap_err();
        assert!(err.contains("is read at elements"), "{name}: {err}");
        // A short output is caught too.
        let mut short = vec![0.0f32; 10];
        let big = vec![1.0f32; 64];
        let err =
            jit.loop_fn(checked).expect("finalized").run(&[&big], &mut [&mut short], 0, 24).unwrap_err();
        assert!(err.contains("output 0 at element"), "{name}: {err}");
    }
}

#[test]
fn invalid_kernels_and_calls_are_errors() {
    let good = unary_kernel(UnaryOp::Neg, &[4]);
    let table: Vec<(LoopKernel, &str)> = vec![
        (LoopKernel { inputs: vec![vec![1, 1]], ..good.clone() }, "strides"),
        (LoopKernel { body: vec![Expr::Input(3)], outputs: vec![0], ..good.clone() }, "reads input 3"),
        (
            LoopKernel { body: vec![Expr::Unary(UnaryOp::Neg, 0)], outputs: vec![0], ..good.clone() },
            "not defined",
        ),
        (LoopKernel { outputs: vec![], ..good.clone() }, "no outputs"),
        (LoopKernel { outputs: vec![9], ..good.clone() }, "output refers"),
    ];
    let mut jit = Jit::new().expect("host JIT");
    for (k, fragment) in table {
        let e = jit.add_loop_kernel(&k, Checking::Unchecked).unwrap_err();
        assert!(e.to_string().contains(fragment), "{e}");
    }
    let id = jit.add_loop_kernel(&good, Checking::Unchecked).expect("compiles");
    assert!(jit.loop_fn(id).is_err(), "not finalized yet");
    assert!(jit.add_loop_kernel(&good, Checking::Unchecked).is_err(), "duplicate name");
    jit.finalize().expect("finalizes");
    let f = jit.loop_fn(id).expect("finalized");
    let x = [1.0f32; 4];
    let mut y = [0.0f32; 4];
    assert!(f.run(&[], &mut [&mut y], 0, 4).is_err(), "missing input");
    assert!(f.run(&[&x], &mut [&mut y], 3, 2).is_err(), "reversed range");
    assert!(f.run(&[&x], &mut [&mut y], 0, 5).is_err(), "range past the end");
    assert!(f.run(&[&x[..3]], &mut [&mut y], 0, 4).is_err(), "short input");
    f.run(&[&x], &mut [&mut y], 0, 4).expect("runs");
    assert_eq!(y, [-1.0; 4]);
    assert!(jit.add_loop_kernel(&LoopKernel { name: "late".into(), ..good }, Checking::Unchecked).is_err());
}

#[test]
fn clif_text_shows_vector_code() {
    let mut jit = Jit::new().expect("host JIT");
    jit.add_loop_kernel(&fused_kernel("clif_fused", &[8, 64]), Checking::Unchecked).expect("compiles");
    let text = jit.clif_text();
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].0, "clif_fused");
    for needle in ["f32x4", "fma", "bitselect", "notrap readonly can_move"] {
        assert!(text[0].1.contains(needle), "missing {needle}:\n{}", text[0].1);
    }
}

/// Throughput of a fused kernel on one thread (run with `--ignored
/// --nocapture`; not a correctness test).
#[test]
#[ignore]
fn throughput_of_fused_kernels() {
    let n = 1 << 16;
    let table = [
        (
            "relu_affine",
            vec![
                Expr::Input(0),
                Expr::Input(1),
                Expr::Input(2),
                Expr::Binary(BinaryOp::Mul, 1, 0),
                Expr::Binary(BinaryOp::Add, 3, 2),
                Expr::Const(0.0),
                Expr::Binary(BinaryOp::Max, 4, 5),
            ],
            6,
        ),
        ("exp", vec![Expr::Input(0), Expr::Unary(UnaryOp::Exp, 0)], 1),
        ("tanh", vec![Expr::Input(0), Expr::Unary(UnaryOp::Tanh, 0)], 1),
        ("erf", vec![Expr::Input(0), Expr::Unary(UnaryOp::Erf, 0)], 1),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let kernels: Vec<LoopKernel> = table
        .iter()
        .map(|(name, body, out)| LoopKernel {
            name: name.to_string(),
            shape: vec![n],
            inputs: vec![vec![1], vec![1], vec![1]],
            body: body.clone(),
            outputs: vec![*out],
        })
        .collect();
    let ids: Vec<_> =
        kernels.iter().map(|k| jit.add_loop_kernel(k, Checking::Unchecked).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let bufs: Vec<Vec<f32>> = (0..3).map(|s| data(n, s)).collect();
    let ins: Vec<&[f32]> = bufs.iter().map(|b| b.as_slice()).collect();
    let mut out = vec![0.0f32; n];
    for (k, id) in kernels.iter().zip(ids) {
        let f = jit.loop_fn(id).expect("finalized");
        let reps = 2000;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f.run(&ins, &mut [&mut out], 0, n).expect("runs");
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{}: {:.2} Gelem/s", k.name, (n * reps) as f64 / secs / 1e9);
    }
}
