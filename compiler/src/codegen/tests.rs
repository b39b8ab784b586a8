//! Tests of the code generator: approximations against f64 references on
//! dense sweeps, and loop kernels against the reference interpreter.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};

use cranelift_codegen::ir::Value;

use super::approx::{self, Emit};
use super::jit::MapFnPtr;
use super::loops::{Elem, Operand, Reduce, Store};
use super::{Checking, Expr, Jit, LoopKernel};
use crate::ir::graph::{Graph, Loc, Mode, OutputKind, ValueId};
use crate::ir::interp::{self, Tensor};
use crate::ir::op::{BinaryOp, CmpOp, InputKind, Op, UnaryOp};
use crate::ir::rng;
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
    let bound = |op| match approx::error_bound(op) {
        Some(approx::ErrorBound::Relative(b)) => b,
        other => panic!("{op:?} has no relative bound: {other:?}"),
    };
    let table: &[BoundCase] = &[
        ("exp", approx::exp, f64::exp, (-104.5, 89.0, 1.0 / 512.0), bound(UnaryOp::Exp), SUBNORMAL_ABS),
        ("log", approx::log, f64::ln, (-1.0, 16.0, 1.0 / 4096.0), bound(UnaryOp::Log), 0.0),
        ("tanh", approx::tanh, f64::tanh, (-10.0, 10.0, 1.0 / 4096.0), bound(UnaryOp::Tanh), SUBNORMAL_ABS),
        (
            "sigmoid",
            approx::sigmoid,
            sigmoid64,
            (-110.0, 30.0, 1.0 / 1024.0),
            bound(UnaryOp::Sigmoid),
            SUBNORMAL_ABS,
        ),
        ("erf", approx::erf, interp::erf, (-5.0, 5.0, 1.0 / 8192.0), bound(UnaryOp::Erf), SUBNORMAL_ABS),
        (
            "softplus",
            approx::softplus,
            softplus64,
            (-110.0, 30.0, 1.0 / 1024.0),
            approx::SOFTPLUS_ERROR_BOUND,
            SUBNORMAL_ABS,
        ),
        ("sin", approx::sin, f64::sin, (-70_000.0, 70_000.0, 1.0 / 32.0), bound(UnaryOp::Sin), SUBNORMAL_ABS),
        ("cos", approx::cos, f64::cos, (-70_000.0, 70_000.0, 1.0 / 32.0), bound(UnaryOp::Cos), SUBNORMAL_ABS),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table.iter().map(|t| jit.add_map(t.0, t.1).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let mut extremes: Vec<f32> = vec![
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
        // The largest errors of sin and cos over all f32 (both reductions).
        f32::from_bits(0x4753_3918),
        f32::from_bits(0x4753_ea98),
        f32::from_bits(0x6823_ee64),
        f32::from_bits(0x7d23_75c1),
        // Both sides of the switch between the two reductions of sin and cos.
        65_535.996,
        65_536.0,
        65_536.01,
    ];
    // The f32 values around multiples of π/2, where the reduction of sin and
    // cos cancels most of the argument: near small and large multiples.
    for k in [1.0, 2.0, 3.0, 4.0, 7.0, 100.0, 1e3, 41_721.0, 1e6, 1e12, 1e18, 1e30] {
        let x = (k * std::f64::consts::FRAC_PI_2) as f32;
        for bits in x.to_bits() - 2..=x.to_bits() + 2 {
            extremes.push(f32::from_bits(bits));
        }
    }
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

/// `gelu` within [`approx::GELU_ERROR_BOUND`]·|x| and `gelu_grad` within
/// [`approx::GELU_GRAD_ERROR_BOUND`] of the f64 references on a dense grid
/// over [-12, 12] (where both vary), every binade and the boundaries; and
/// `gelu` relatively within the same bound for x ≥ 0, where nothing
/// cancels.
#[test]
fn gelu_and_its_derivative_meet_their_documented_bounds() {
    let mut jit = Jit::new().expect("host JIT");
    let gelu = jit.add_map("gelu", approx::gelu).expect("compiles");
    let grad = jit.add_map("gelu_grad", approx::gelu_grad).expect("compiles");
    jit.finalize().expect("finalizes");
    let mut xs = grid(-12.0, 12.0, 1.0 / 4096.0);
    xs.extend(sweep_all_binades());
    xs.extend([
        -5.656_854,
        -5.656_855,
        -16.970_562,
        -16.970_564,
        16.970_562,
        3.999_999,
        std::f32::consts::SQRT_2,
    ]);
    let ys = run_map(jit.map_fn(gelu), &xs);
    let gs = run_map(jit.map_fn(grad), &xs);
    let (mut worst_gelu, mut worst_rel, mut worst_grad) =
        ((0.0f64, 0.0f32), (0.0f64, 0.0f32), (0.0f64, 0.0f32));
    for ((&x, &y), &g) in xs.iter().zip(&ys).zip(&gs) {
        let x64 = f64::from(x);
        let (want, want_grad) = (interp::gelu(x64), interp::gelu_grad(x64));
        if x.is_nan() {
            assert!(y.is_nan() && g.is_nan(), "gelu({x}) = {y}, gelu_grad({x}) = {g}");
            continue;
        }
        if (want as f32).is_infinite() {
            assert_eq!(y, want as f32, "gelu({x:e})");
        } else {
            let e = (f64::from(y) - want).abs();
            // Relative to |x|, where x is normal; tiny x give tiny results
            // (x/2 and below) held to one subnormal step.
            let scaled =
                if x.abs() >= f32::MIN_POSITIVE { e / x64.abs() } else { e / 2f64.powi(-149) * 1e-9 };
            if scaled > worst_gelu.0 {
                worst_gelu = (scaled, x);
            }
            if x >= 0.0 && (want as f32).abs() >= f32::MIN_POSITIVE && e / want > worst_rel.0 {
                worst_rel = (e / want, x);
            }
        }
        let e = (f64::from(g) - want_grad).abs();
        if e > worst_grad.0 {
            worst_grad = (e, x);
        }
    }
    eprintln!(
        "gelu: max error {:.3e}·|x| at {:e}, max rel error {:.3e} at {:e} for x ≥ 0; gelu_grad: max abs error {:.3e} at {:e}",
        worst_gelu.0, worst_gelu.1, worst_rel.0, worst_rel.1, worst_grad.0, worst_grad.1
    );
    assert!(worst_gelu.0 <= approx::GELU_ERROR_BOUND, "gelu: {:e}·|x| at {:e}", worst_gelu.0, worst_gelu.1);
    assert!(
        worst_rel.0 <= approx::GELU_ERROR_BOUND,
        "gelu: relative error {:e} at {:e}",
        worst_rel.0,
        worst_rel.1
    );
    assert!(
        worst_grad.0 <= approx::GELU_GRAD_ERROR_BOUND,
        "gelu_grad: {:e} at {:e}",
        worst_grad.0,
        worst_grad.1
    );
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
        ("gelu", approx::gelu, 0.0, 0.0),
        ("gelu", approx::gelu, -0.0, -0.0),
        ("gelu", approx::gelu, inf, inf),
        ("gelu", approx::gelu, -inf, -0.0),
        ("gelu", approx::gelu, -6.0, -0.0),
        ("gelu", approx::gelu, 20.0, 20.0),
        ("gelu", approx::gelu, f32::NAN, f32::NAN),
        ("gelu_grad", approx::gelu_grad, 0.0, 0.5),
        ("gelu_grad", approx::gelu_grad, -0.0, 0.5),
        ("gelu_grad", approx::gelu_grad, inf, 1.0),
        ("gelu_grad", approx::gelu_grad, -inf, 0.0),
        ("gelu_grad", approx::gelu_grad, 20.0, 1.0),
        ("gelu_grad", approx::gelu_grad, -20.0, 0.0),
        ("gelu_grad", approx::gelu_grad, f32::NAN, f32::NAN),
        ("softplus", approx::softplus, inf, inf),
        ("softplus", approx::softplus, -inf, 0.0),
        ("softplus", approx::softplus, 100.0, 100.0),
        ("softplus", approx::softplus, f32::NAN, f32::NAN),
        ("sin", approx::sin, 0.0, 0.0),
        ("sin", approx::sin, -0.0, -0.0),
        ("sin", approx::sin, 1e-30, 1e-30),
        ("sin", approx::sin, -1e-45, -1e-45),
        ("sin", approx::sin, inf, f32::NAN),
        ("sin", approx::sin, -inf, f32::NAN),
        ("sin", approx::sin, f32::NAN, f32::NAN),
        ("cos", approx::cos, 0.0, 1.0),
        ("cos", approx::cos, -0.0, 1.0),
        ("cos", approx::cos, 1e-30, 1.0),
        ("cos", approx::cos, inf, f32::NAN),
        ("cos", approx::cos, -inf, f32::NAN),
        ("cos", approx::cos, f32::NAN, f32::NAN),
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

/// A buffer for operand `op` over `shape`: long enough for the largest
/// offset (strides are non-negative in these tests).
fn buffer_for(shape: &[usize], op: &Operand, seed: u64) -> Vec<f32> {
    let hi: isize =
        op.offset + shape.iter().zip(&op.strides).map(|(&n, &s)| s * (n as isize - 1).max(0)).sum::<isize>();
    data(hi as usize + 1, seed)
}

/// A contiguous-or-strided f32 operand at offset 0.
fn f32_in(strides: Vec<isize>) -> Operand {
    Operand { offset: 0, strides, elem: Elem::F32 }
}

/// Plain f32 stores of the given body values to contiguous outputs of `shape`.
fn plain(shape: &[usize], values: &[usize]) -> Vec<Store> {
    values
        .iter()
        .map(|&value| Store { value, offset: 0, strides: contiguous(shape), elem: Elem::F32, reduce: None })
        .collect()
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
    for (b, op) in k.inputs.iter().enumerate() {
        let strides = &op.strides;
        let own: Vec<usize> =
            k.shape.iter().zip(strides).map(|(&n, &s)| if s == 0 { 1 } else { n }).collect();
        let count: usize = own.iter().product();
        let mut vals = Vec::with_capacity(count);
        for flat in 0..count {
            let mut rest = flat;
            let mut off = op.offset;
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
            Expr::Cast { .. } | Expr::AxisIndex(_) | Expr::Random { .. } => {
                unreachable!("interpreter-compared kernels use arithmetic only")
            }
        };
        vals.push(v);
    }
    for (o, s) in k.outputs.iter().enumerate() {
        g.output(OutputKind::Prediction, format!("out{o}"), vals[s.value]);
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

pub(super) fn contiguous(shape: &[usize]) -> Vec<isize> {
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
        inputs: vec![f32_in(contiguous(shape))],
        body: vec![Expr::Input(0), Expr::Unary(op, 0)],
        outputs: plain(shape, &[1]),
    }
}

fn binary_kernel(name: &str, shape: &[usize], a: Vec<isize>, b: Vec<isize>, op: Expr) -> LoopKernel {
    LoopKernel {
        name: name.to_string(),
        shape: shape.to_vec(),
        inputs: vec![f32_in(a), f32_in(b)],
        body: vec![Expr::Input(0), Expr::Input(1), op],
        outputs: plain(shape, &[2]),
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
            inputs: vec![f32_in(c.clone()), f32_in(c.clone())],
            body: vec![
                Expr::Input(0),
                Expr::Input(1),
                Expr::Compare(CmpOp::Lt, 0, 1),
                Expr::Const(2.0),
                Expr::Binary(BinaryOp::Mul, 0, 3),
                Expr::Select(2, 4, 1),
            ],
            outputs: plain(&shape, &[5, 2]),
        },
        // A raw value as condition: non-zero (and NaN) is true, ±0 false.
        LoopKernel {
            name: "select_value".into(),
            shape: shape.to_vec(),
            inputs: vec![f32_in(c.clone()), f32_in(c.clone()), f32_in(c.clone())],
            body: vec![Expr::Input(0), Expr::Input(1), Expr::Input(2), Expr::Select(0, 1, 2)],
            outputs: plain(&shape, &[3]),
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
            k.outputs = plain(&shape, &[7]);
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
        inputs: vec![f32_in(contiguous(shape)), f32_in(row_param.clone()), f32_in(row_param)],
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
        outputs: plain(shape, &[6, 7, 15]),
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
                inputs: vec![f32_in(s.clone())],
                body: vec![Expr::Input(0), Expr::Unary(UnaryOp::Neg, 0)],
                outputs: plain(&shape, &[1]),
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
    let store = |value: usize, strides: Vec<isize>, reduce: Option<Reduce>| Store {
        value,
        offset: 0,
        strides,
        elem: Elem::F32,
        reduce,
    };
    let i32_key = Operand { offset: 0, strides: vec![0], elem: Elem::I32 };
    let table: Vec<(LoopKernel, &str)> = vec![
        (LoopKernel { inputs: vec![f32_in(vec![1, 1])], ..good.clone() }, "input 0 has 2 strides"),
        (
            LoopKernel { body: vec![Expr::Input(3)], outputs: vec![store(0, vec![1], None)], ..good.clone() },
            "reads input 3",
        ),
        (
            LoopKernel {
                body: vec![Expr::Unary(UnaryOp::Neg, 0)],
                outputs: vec![store(0, vec![1], None)],
                ..good.clone()
            },
            "not defined",
        ),
        (LoopKernel { outputs: vec![], ..good.clone() }, "no outputs"),
        (LoopKernel { outputs: vec![store(9, vec![1], None)], ..good.clone() }, "output 0 refers to expr 9"),
        (LoopKernel { outputs: vec![store(1, vec![1, 0], None)], ..good.clone() }, "output 0 has 2 strides"),
        (LoopKernel { outputs: vec![store(1, vec![0], None)], ..good.clone() }, "stride 0 along axis 0"),
        (
            LoopKernel {
                body: vec![Expr::AxisIndex(1)],
                outputs: vec![store(0, vec![1], None)],
                ..good.clone()
            },
            "reads axis 1",
        ),
        (
            LoopKernel {
                body: vec![Expr::Random { key: 0, stream: 1 }],
                outputs: vec![store(0, vec![1], None)],
                ..good.clone()
            },
            "not I32",
        ),
        (
            LoopKernel {
                inputs: vec![i32_key],
                body: vec![Expr::Random { key: 1, stream: 1 }],
                outputs: vec![store(0, vec![1], None)],
                ..good.clone()
            },
            "reads input 1",
        ),
        (
            LoopKernel {
                body: vec![Expr::Input(0), Expr::Cast { from: DType::F32, to: DType::I32, arg: 1 }],
                ..good.clone()
            },
            "uses expr 1",
        ),
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
        ("sigmoid", vec![Expr::Input(0), Expr::Unary(UnaryOp::Sigmoid, 0)], 1),
        ("erf", vec![Expr::Input(0), Expr::Unary(UnaryOp::Erf, 0)], 1),
    ];
    let table: Vec<(&str, Vec<Expr>, Vec<usize>)> =
        table.into_iter().map(|(name, body, out)| (name, body, vec![out])).chain([lstm_step()]).collect();
    let mut jit = Jit::new().expect("host JIT");
    let kernels: Vec<LoopKernel> = table
        .iter()
        .map(|(name, body, out)| LoopKernel {
            name: name.to_string(),
            shape: vec![n],
            inputs: vec![f32_in(vec![1]); 5],
            body: body.clone(),
            outputs: plain(&[n], out),
        })
        .collect();
    let ids: Vec<_> =
        kernels.iter().map(|k| jit.add_loop_kernel(k, Checking::Unchecked).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let bufs: Vec<Vec<f32>> = (0..5).map(|s| data(n, s)).collect();
    let ins: Vec<&[f32]> = bufs.iter().map(|b| b.as_slice()).collect();
    let mut outs = vec![vec![0.0f32; n]; 8];
    for (k, id) in kernels.iter().zip(ids) {
        let f = jit.loop_fn(id).expect("finalized");
        let reps = 2000;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            let mut out: Vec<&mut [f32]> =
                outs.iter_mut().take(k.outputs.len()).map(|o| o.as_mut_slice()).collect();
            f.run(&ins, &mut out, 0, n).expect("runs");
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{}: {:.2} Gelem/s", k.name, (n * reps) as f64 / secs / 1e9);
    }
    for fns in super::wide::all() {
        for (name, f) in [
            ("exp", fns.exp),
            ("sigmoid", fns.sigmoid),
            ("tanh", fns.tanh),
            ("erf", fns.erf),
            ("gelu", fns.gelu),
            ("gelu_grad", fns.gelu_grad),
        ] {
            let mut y = vec![0.0f32; n];
            let reps = 2000;
            let t = std::time::Instant::now();
            for _ in 0..reps {
                // SAFETY: `bufs[0]` and `y` hold `n` elements each and are distinct.
                unsafe { f(bufs[0].as_ptr(), y.as_mut_ptr(), n) };
            }
            let secs = t.elapsed().as_secs_f64();
            eprintln!("{name} over arrays ({}): {:.2} Gelem/s", fns.isa, (n * reps) as f64 / secs / 1e9);
        }
    }
}

/// The forward loop of an unrolled LSTM step as fusion forms it: the gate
/// pre-activations `i, f, g, o` and the previous cell state in (inputs 0
/// to 4), and `σi, σf, tanh g, σo, c, tanh c, h, σo·(1 − tanh² c)` out.
fn lstm_body() -> (Vec<Expr>, Vec<usize>) {
    use UnaryOp::{Sigmoid, Tanh};
    let body = vec![
        Expr::Input(0),                      // 0: i
        Expr::Input(1),                      // 1: f
        Expr::Input(2),                      // 2: g
        Expr::Input(3),                      // 3: o
        Expr::Input(4),                      // 4: c_prev
        Expr::Unary(Sigmoid, 0),             // 5: σi
        Expr::Unary(Sigmoid, 1),             // 6: σf
        Expr::Unary(Tanh, 2),                // 7: tanh g
        Expr::Unary(Sigmoid, 3),             // 8: σo
        Expr::Binary(BinaryOp::Mul, 6, 4),   // 9: σf·c
        Expr::Binary(BinaryOp::Mul, 5, 7),   // 10: σi·tanh g
        Expr::Binary(BinaryOp::Add, 9, 10),  // 11: c
        Expr::Unary(Tanh, 11),               // 12: tanh c
        Expr::Binary(BinaryOp::Mul, 8, 12),  // 13: h
        Expr::Binary(BinaryOp::Mul, 12, 12), // 14: tanh² c
        Expr::Const(1.0),                    // 15
        Expr::Binary(BinaryOp::Sub, 15, 14), // 16: 1 − tanh² c
        Expr::Binary(BinaryOp::Mul, 8, 16),  // 17
    ];
    (body, vec![5, 6, 7, 8, 11, 12, 13, 17])
}

fn lstm_step() -> (&'static str, Vec<Expr>, Vec<usize>) {
    let (body, out) = lstm_body();
    ("lstm_step", body, out)
}

// ------------------------------------------------- strided stores, reductions

/// The f32 of an i32 stored in a buffer of 4-byte elements.
fn i32_bits(x: i32) -> f32 {
    f32::from_bits(x as u32)
}

/// The i32 held by a buffer element.
fn bits_i32(x: f32) -> i32 {
    x.to_bits() as i32
}

/// The interpreter's max: NaN if either is NaN, else `a` when `a ≥ b`.
fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

/// Evaluates `k` element by element in row-major order with exact f32
/// semantics (of the transcendental functions only `exp`, `sigmoid` and
/// `tanh`, by [`super::wide`]'s scalar transcriptions of the inline
/// approximations), updating `outs` in place: the specification the
/// generated code is held to.
fn scalar_reference(k: &LoopKernel, inputs: &[Vec<f32>], outs: &mut [Vec<f32>]) {
    let n = k.elements();
    let rank = k.shape.len();
    for flat in 0..n {
        let mut idx = vec![0usize; rank];
        let mut rest = flat;
        for a in (0..rank).rev() {
            idx[a] = rest % k.shape[a];
            rest /= k.shape[a];
        }
        let at = |offset: isize, strides: &[isize]| -> usize {
            (offset + idx.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum::<isize>()) as usize
        };
        let mut v: Vec<f32> = Vec::with_capacity(k.body.len());
        for e in &k.body {
            let x = match *e {
                Expr::Input(b) => {
                    let op = &k.inputs[b];
                    let raw = inputs[b][at(op.offset, &op.strides)];
                    match op.elem {
                        Elem::F32 => raw,
                        Elem::I32 => bits_i32(raw) as f32,
                    }
                }
                Expr::Const(c) => c,
                Expr::Unary(op, a) => match op {
                    UnaryOp::Neg => -v[a],
                    UnaryOp::Abs => v[a].abs(),
                    UnaryOp::Sqrt => v[a].sqrt(),
                    UnaryOp::Exp => super::wide::exp(v[a]),
                    UnaryOp::Sigmoid => super::wide::sigmoid(v[a]),
                    UnaryOp::Tanh => super::wide::tanh(v[a]),
                    UnaryOp::Erf => super::wide::erf(v[a]),
                    UnaryOp::Gelu => super::wide::gelu(v[a]),
                    UnaryOp::GeluGrad => super::wide::gelu_grad(v[a]),
                    _ => {
                        unreachable!("the reference evaluates exact ops and those with array functions only")
                    }
                },
                Expr::Binary(op, a, b) => match op {
                    BinaryOp::Add => v[a] + v[b],
                    BinaryOp::Sub => v[a] - v[b],
                    BinaryOp::Mul => v[a] * v[b],
                    BinaryOp::Div => v[a] / v[b],
                    BinaryOp::Max => max_nan(v[a], v[b]),
                    BinaryOp::Min => -max_nan(-v[a], -v[b]),
                },
                Expr::Compare(op, a, b) => {
                    let t = match op {
                        CmpOp::Lt => v[a] < v[b],
                        CmpOp::Le => v[a] <= v[b],
                        CmpOp::Gt => v[a] > v[b],
                        CmpOp::Ge => v[a] >= v[b],
                        CmpOp::Eq => v[a] == v[b],
                        CmpOp::Ne => v[a] != v[b],
                    };
                    f32::from(u8::from(t))
                }
                Expr::Select(c, a, b) => {
                    if v[c] != 0.0 {
                        v[a]
                    } else {
                        v[b]
                    }
                }
                Expr::Cast { from, to, arg } => match (from, to) {
                    (DType::F32 | DType::I32, DType::Bool) => f32::from(u8::from(v[arg] != 0.0)),
                    (DType::F32, DType::I32) => v[arg] as i32 as f32,
                    _ => v[arg],
                },
                Expr::AxisIndex(a) => idx[a] as f32,
                Expr::Random { key, stream } => {
                    let o = k.inputs[key].offset as usize;
                    let words = [bits_i32(inputs[key][o]), bits_i32(inputs[key][o + 1])];
                    rng::uniform(words, stream, flat as u64)
                }
            };
            v.push(x);
        }
        for (o, s) in k.outputs.iter().enumerate() {
            let p = at(s.offset, &s.strides);
            let old = match s.elem {
                Elem::F32 => outs[o][p],
                Elem::I32 => bits_i32(outs[o][p]) as f32,
            };
            let new = match s.reduce {
                None => v[s.value],
                Some(Reduce::Sum) => old + v[s.value],
                Some(Reduce::Max) => max_nan(old, v[s.value]),
            };
            outs[o][p] = match s.elem {
                Elem::F32 => new,
                Elem::I32 => i32_bits(new as i32),
            };
        }
    }
}

/// One kernel of a table: its inputs and the initial output buffers.
#[derive(Clone)]
struct Case {
    kernel: LoopKernel,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
}

/// Cuts of `0..n` on boundaries of the first axis (every `row`
/// elements): whole, halves, one row at a time, and uneven pieces.
fn outer_cuts(n: usize, row: usize) -> Vec<Vec<usize>> {
    let rows = n.checked_div(row).unwrap_or(0);
    let mut cuts = vec![vec![0, n]];
    if rows >= 2 {
        cuts.push(vec![0, rows / 2 * row, n]);
        cuts.push((0..=rows).map(|r| r * row).collect());
        cuts.push(vec![0, 0, row, row, (rows - 1) * row, n]);
    }
    cuts
}

/// Sums may differ from the sequential reference by rounding: allowed
/// error relative to the sum of magnitudes.
const SUM_TOLERANCE: f32 = 1e-5;

/// Compiles every case unchecked and checked, runs each with every outer
/// cut, and asserts: plain and max outputs equal the scalar reference bit
/// for bit (±0 and NaNs aside), sums are within rounding of it, every cut
/// gives the same bits, and a repeated run gives the same bits.
fn check_cases(cases: &[Case]) {
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = cases
        .iter()
        .flat_map(|c| {
            let mut checked = c.kernel.clone();
            checked.name = format!("{}_checked", c.kernel.name);
            [
                jit.add_loop_kernel(&c.kernel, Checking::Unchecked),
                jit.add_loop_kernel(&checked, Checking::Checked),
            ]
        })
        .map(|r| r.expect("kernel compiles"))
        .collect();
    jit.finalize().expect("finalizes");
    for (n, c) in cases.iter().enumerate() {
        let k = &c.kernel;
        let mut want = c.outputs.clone();
        scalar_reference(k, &c.inputs, &mut want);
        // Magnitude sums for the tolerance of reductions.
        let mut abs_kernel = k.clone();
        for s in &mut abs_kernel.outputs {
            if s.reduce == Some(Reduce::Sum) {
                abs_kernel.body.push(Expr::Unary(UnaryOp::Abs, s.value));
                s.value = abs_kernel.body.len() - 1;
            }
        }
        let mut magnitude: Vec<Vec<f32>> = c.outputs.iter().map(|o| vec![0.0; o.len()]).collect();
        scalar_reference(&abs_kernel, &c.inputs, &mut magnitude);
        let row: usize = k.shape.iter().skip(1).product();
        let ins: Vec<&[f32]> = c.inputs.iter().map(|b| b.as_slice()).collect();
        for id in [ids[2 * n], ids[2 * n + 1]] {
            let f = jit.loop_fn(id).expect("finalized");
            let run = |cuts: &[usize]| -> Vec<Vec<f32>> {
                let mut outs = c.outputs.clone();
                let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
                for w in cuts.windows(2) {
                    f.run(&ins, &mut refs, w[0], w[1]).expect("runs");
                }
                outs
            };
            let name = &f.kernel().name;
            let whole = run(&[0, k.elements()]);
            for (o, s) in k.outputs.iter().enumerate() {
                for (i, (&g, &w)) in whole[o].iter().zip(&want[o]).enumerate() {
                    let ok = match (s.reduce, s.elem) {
                        (_, Elem::I32) => g.to_bits() == w.to_bits(),
                        (Some(Reduce::Sum), _) => {
                            (g.is_nan() && w.is_nan()) || (g - w).abs() <= SUM_TOLERANCE * magnitude[o][i]
                        }
                        _ => (g.is_nan() && w.is_nan()) || g == w,
                    };
                    assert!(ok, "{name}: output {o} element {i}: got {g:e}, reference {w:e}");
                }
            }
            assert!(same_bits(&whole, &run(&[0, k.elements()])), "{name}: two runs differ");
            for cuts in outer_cuts(k.elements(), row) {
                assert!(same_bits(&whole, &run(&cuts)), "{name}: cuts {cuts:?} differ from one call");
            }
        }
    }
}

fn same_bits(a: &[Vec<f32>], b: &[Vec<f32>]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()))
}

/// Finite test data in [-3, 3] (no NaN), for sums.
fn finite_data(n: usize, seed: u64) -> Vec<f32> {
    data(n, seed).into_iter().map(|x| if x.is_nan() { 0.5 } else { x }).collect()
}

/// A copy kernel `out[offset + Σ i·out_strides] = in[in_offset + Σ i·in_strides]`.
fn copy_kernel(name: &str, shape: &[usize], src: Operand, offset: isize, strides: Vec<isize>) -> LoopKernel {
    LoopKernel {
        name: name.into(),
        shape: shape.to_vec(),
        inputs: vec![src],
        body: vec![Expr::Input(0)],
        outputs: vec![Store { value: 0, offset, strides, elem: Elem::F32, reduce: None }],
    }
}

#[test]
fn copies_with_offsets_and_permutations_are_exact() {
    let sentinel = |n: usize| vec![-7.0f32; n];
    let cases = vec![
        // Read from an offset (a slice of a flat buffer).
        Case {
            kernel: copy_kernel(
                "offset_read",
                &[13],
                Operand { offset: 5, strides: vec![1], elem: Elem::F32 },
                0,
                vec![1],
            ),
            inputs: vec![data(18, 1)],
            outputs: vec![sentinel(13)],
        },
        // Transpose materialisation of a [3, 5, 7] buffer into [7, 3, 5].
        Case {
            kernel: copy_kernel("transpose", &[7, 3, 5], f32_in(vec![1, 35, 7]), 0, contiguous(&[7, 3, 5])),
            inputs: vec![data(105, 2)],
            outputs: vec![sentinel(105)],
        },
        // The same transpose written with output strides instead.
        Case {
            kernel: copy_kernel(
                "transpose_store",
                &[3, 5, 7],
                f32_in(contiguous(&[3, 5, 7])),
                0,
                vec![5, 1, 15],
            ),
            inputs: vec![data(105, 3)],
            outputs: vec![sentinel(105)],
        },
        // slice [2..5, 1..8 step 2] of a [6, 9] buffer.
        Case {
            kernel: copy_kernel(
                "slice",
                &[3, 4],
                Operand { offset: 19, strides: vec![9, 2], elem: Elem::F32 },
                0,
                vec![4, 1],
            ),
            inputs: vec![data(54, 4)],
            outputs: vec![sentinel(12)],
        },
        // The second part of concat([5, 3], [5, 4]) along axis 1: output offset 3, row stride 7.
        Case {
            kernel: copy_kernel("concat_part", &[5, 4], f32_in(contiguous(&[5, 4])), 3, vec![7, 1]),
            inputs: vec![data(20, 5)],
            outputs: vec![sentinel(35)],
        },
        // Interior of pad([4, 5] by 1 on each side of both axes) into [6, 7].
        Case {
            kernel: copy_kernel("pad_interior", &[4, 5], f32_in(contiguous(&[4, 5])), 8, vec![7, 1]),
            inputs: vec![data(20, 6)],
            outputs: vec![sentinel(42)],
        },
        // The pad's fill: a constant, no inputs.
        Case {
            kernel: LoopKernel {
                name: "pad_fill".into(),
                shape: vec![6, 7],
                inputs: vec![],
                body: vec![Expr::Const(0.25)],
                outputs: plain(&[6, 7], &[0]),
            },
            inputs: vec![],
            outputs: vec![sentinel(42)],
        },
        // A broadcast copy with an offset scalar source.
        Case {
            kernel: copy_kernel(
                "scalar_bcast",
                &[3, 33],
                Operand { offset: 2, strides: vec![0, 0], elem: Elem::F32 },
                0,
                contiguous(&[3, 33]),
            ),
            inputs: vec![data(3, 7)],
            outputs: vec![sentinel(99)],
        },
    ];
    check_cases(&cases);

    // Pad as fill then interior copy, and concat as two copies, against
    // hand-computed layouts.
    let mut jit = Jit::new().expect("host JIT");
    let fill = jit.add_loop_kernel(&cases[6].kernel, Checking::Checked).expect("compiles");
    let interior = jit.add_loop_kernel(&cases[5].kernel, Checking::Checked).expect("compiles");
    let first = copy_kernel("concat_first", &[5, 3], f32_in(contiguous(&[5, 3])), 0, vec![7, 1]);
    let first = jit.add_loop_kernel(&first, Checking::Unchecked).expect("compiles");
    let second = jit.add_loop_kernel(&cases[4].kernel, Checking::Unchecked).expect("compiles");
    jit.finalize().expect("finalizes");
    let x = data(20, 6);
    let mut padded = vec![f32::NAN; 42];
    jit.loop_fn(fill).expect("fn").run(&[], &mut [&mut padded], 0, 42).expect("runs");
    jit.loop_fn(interior).expect("fn").run(&[&x], &mut [&mut padded], 0, 20).expect("runs");
    for r in 0..6 {
        for c in 0..7 {
            let want = if (1..5).contains(&r) && (1..6).contains(&c) { x[(r - 1) * 5 + c - 1] } else { 0.25 };
            assert_eq!(padded[r * 7 + c].to_bits(), want.to_bits(), "pad at ({r}, {c})");
        }
    }
    let (a, b) = (data(15, 8), data(20, 5));
    let mut cat = vec![f32::NAN; 35];
    jit.loop_fn(first).expect("fn").run(&[&a], &mut [&mut cat], 0, 15).expect("runs");
    jit.loop_fn(second).expect("fn").run(&[&b], &mut [&mut cat], 0, 20).expect("runs");
    for r in 0..5 {
        for c in 0..7 {
            let want = if c < 3 { a[r * 3 + c] } else { b[r * 4 + c - 3] };
            assert_eq!(cat[r * 7 + c].to_bits(), want.to_bits(), "concat at ({r}, {c})");
        }
    }
}

/// Strides of a reduction output over `shape`: contiguous over the kept
/// axes, 0 along `axes`.
pub(super) fn reduced_strides(shape: &[usize], axes: &[usize]) -> (Vec<isize>, usize) {
    let mut strides = vec![0isize; shape.len()];
    let mut acc = 1usize;
    for a in (0..shape.len()).rev() {
        if !axes.contains(&a) {
            strides[a] = acc as isize;
            acc *= shape[a];
        }
    }
    (strides, acc)
}

/// `x * w` (w broadcast along the first axis) reduced over `axes` by `op`,
/// and stored plainly as well.
fn reduce_case(shape: &[usize], axes: &[usize], op: Reduce, seed: u64) -> Case {
    let n: usize = shape.iter().product();
    let (strides, len) = reduced_strides(shape, axes);
    let mut w_strides = contiguous(shape);
    if let Some(s) = w_strides.first_mut() {
        *s = 0;
    }
    let w_len: usize = shape.iter().skip(1).product();
    let init = match op {
        Reduce::Sum => 0.0,
        Reduce::Max => f32::NEG_INFINITY,
    };
    let x = if op == Reduce::Sum { finite_data(n, seed) } else { data(n, seed) };
    Case {
        kernel: LoopKernel {
            name: format!("{op:?}_{shape:?}_{axes:?}").replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            shape: shape.to_vec(),
            inputs: vec![f32_in(contiguous(shape)), f32_in(w_strides)],
            body: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(BinaryOp::Mul, 0, 1)],
            outputs: vec![
                Store { value: 2, offset: 0, strides, elem: Elem::F32, reduce: Some(op) },
                Store { value: 2, offset: 0, strides: contiguous(shape), elem: Elem::F32, reduce: None },
            ],
        },
        inputs: vec![x, finite_data(w_len.max(1), seed + 100)],
        outputs: vec![vec![init; len], vec![0.0; n]],
    }
}

#[test]
fn reductions_over_every_axis_pattern() {
    let table: &[(&[usize], &[usize])] = &[
        (&[13, 17], &[1]),
        (&[13, 17], &[0]),
        (&[13, 17], &[0, 1]),
        (&[5, 7, 3], &[1]),
        (&[3, 5, 33], &[1]),
        (&[7, 3, 5, 31], &[1, 2]),
        (&[3, 5, 7], &[0, 1, 2]),
        (&[33, 3, 5], &[0, 2]),
        (&[1], &[0]),
        (&[3], &[0]),
        (&[5], &[0]),
        (&[7], &[0]),
        (&[31], &[0]),
        (&[33], &[0]),
        (&[1, 33], &[1]),
        (&[33, 1], &[0]),
        (&[17, 1, 5], &[2]),
        (&[2, 1000], &[1]),
        (&[1000, 3], &[0]),
        (&[4, 0, 3], &[1]),
        (&[], &[]),
    ];
    let mut cases = vec![];
    for (i, (shape, axes)) in table.iter().enumerate() {
        for op in [Reduce::Sum, Reduce::Max] {
            cases.push(reduce_case(shape, axes, op, i as u64));
        }
    }
    check_cases(&cases);
}

#[test]
fn max_reduction_propagates_nan_and_handles_infinities() {
    let rows: &[&[f32]] = &[
        &[1.0, f32::NAN, 3.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0],
        &[1.0, 2.0, 3.0, 2.0, 0.0, 1.0, 1.0, 1.0, f32::NAN],
        &[f32::NEG_INFINITY; 9],
        &[-5.0, -4.0, -3.0, -2.0, -1.0, -6.0, -7.0, f32::INFINITY, -9.0],
        &[-0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0],
    ];
    let x: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let mut case = reduce_case(&[5, 9], &[1], Reduce::Max, 0);
    case.inputs = vec![x, vec![1.0; 9]];
    check_cases(&[case]);
    let mut case = reduce_case(&[5, 9], &[0], Reduce::Max, 0);
    case.kernel.name = "max_columns_nan".into();
    case.inputs = vec![rows.iter().flat_map(|r| r.iter().copied()).collect(), vec![1.0; 9]];
    check_cases(&[case]);
}

/// The gradient of a nearest upsampling, `[N, C, H, s, W, s]` summed over
/// the `s` axes (and the same with an elementwise factor broadcast over
/// the rows, and a sum over one pair axis only): with an innermost axis
/// of 2 or 3 the kernel runs along `W` instead, reading every other
/// element where `s = 2`; odd widths leave scalar tails. Compared with the
/// scalar reference, split on the first axis, checked and unchecked.
#[test]
fn sums_over_short_inner_axes_run_along_a_longer_axis() {
    let mut cases = vec![];
    for (i, &(shape, axes)) in [
        (&[2usize, 3, 5, 2, 9, 2][..], &[3usize, 5][..]),
        (&[3, 2, 4, 2, 16, 2], &[3, 5]),
        (&[2, 3, 3, 3, 7, 3], &[3, 5]),
        (&[4, 6, 2, 13, 2], &[2, 4]),
        (&[2, 5, 2, 8, 2], &[4]),
        (&[1, 3, 4, 2, 6, 2], &[3, 5]),
    ]
    .iter()
    .enumerate()
    {
        for (r, seed) in [(Reduce::Sum, i as u64), (Reduce::Max, 10 + i as u64)] {
            // The reduction alone (a store of the elementwise value along
            // the pair axes keeps the kernel's order).
            let mut case = reduce_case(shape, axes, r, seed);
            case.kernel.outputs.truncate(1);
            case.outputs.truncate(1);
            cases.push(case);
        }
    }
    check_cases(&cases);
    let mut jit = Jit::new().expect("host JIT");
    jit.add_loop_kernel(&cases[0].kernel, Checking::Unchecked).expect("compiles");
    let text = &jit.clif_text()[0].1;
    assert!(text.contains("shuffle") && text.contains("f32x4"), "no vector loop along W:\n{text}");
}

/// Rows long enough for the unrolled vector loop, with a NaN at every
/// position of one row each (so in every accumulator and lane, and in the
/// scalar tail), ties of -0 and +0, and infinities.
#[test]
fn row_maxima_find_a_nan_in_every_lane_and_accumulator() {
    let (rows, len) = (72, 67);
    let mut x = data(rows * len, 9);
    for v in &mut x {
        if v.is_nan() {
            *v = 0.5;
        }
    }
    for r in 0..len {
        x[r * len + r] = f32::NAN;
    }
    x[len * len..len * len + 4].copy_from_slice(&[-0.0, 0.0, 7.0, f32::INFINITY]);
    let last = (rows - 1) * len;
    x[last..].fill(f32::NEG_INFINITY);
    let mut case = reduce_case(&[rows, len], &[1], Reduce::Max, 0);
    case.inputs = vec![x, vec![1.0; len]];
    // The same rows through `exp` (strips where the host has the array
    // functions: each strip's partial maximum is added to the row's).
    let mut strips = case.clone();
    strips.kernel.name = "max_exp_rows".into();
    strips.kernel.body.push(Expr::Unary(UnaryOp::Exp, 2));
    strips.kernel.outputs[0].value = 3;
    strips.kernel.outputs[1].value = 3;
    check_cases(&[case, strips]);
}

/// `max(x, c)` and `min(x, c)` with a constant `c` (a ReLU, a clamp) keep
/// the interpreter's rule bit for bit: `x` on ties (so `max(-0, 0)` is
/// -0) and a NaN `x` as it came, in the vector loop and the scalar tail.
#[test]
fn max_and_min_with_a_constant_keep_ties_and_nans() {
    let specials =
        [0.0, -0.0, 1.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::from_bits(0x7fc0_1234), 2.5];
    let xs: Vec<f32> = (0..41).map(|i| specials[i % specials.len()]).collect();
    let mut jit = Jit::new().expect("host JIT");
    let mut kernels = vec![];
    for (i, c) in [0.0f32, -0.0, 1.0, f32::NEG_INFINITY, f32::INFINITY].into_iter().enumerate() {
        for op in [BinaryOp::Max, BinaryOp::Min] {
            let k = LoopKernel {
                name: format!("{}_const_{i}", op.name()),
                shape: vec![xs.len()],
                inputs: vec![f32_in(vec![1])],
                body: vec![Expr::Input(0), Expr::Const(c), Expr::Binary(op, 0, 1)],
                outputs: plain(&[xs.len()], &[2]),
            };
            let id = jit.add_loop_kernel(&k, Checking::Unchecked).expect("compiles");
            kernels.push((op, c, id));
        }
    }
    jit.finalize().expect("finalizes");
    for (op, c, id) in kernels {
        let f = jit.loop_fn(id).expect("finalized");
        let mut out = vec![0.0f32; xs.len()];
        f.run(&[&xs], &mut [&mut out], 0, xs.len()).expect("runs");
        for (&x, &y) in xs.iter().zip(&out) {
            let keep_x = x.is_nan() || if op == BinaryOp::Max { x >= c } else { x <= c };
            let want = if keep_x { x } else { c };
            assert_eq!(y.to_bits(), want.to_bits(), "{}({x:e}, {c:e}) = {y:e}, want {want:e}", op.name());
        }
    }
}

#[test]
fn two_reductions_with_different_axes_in_one_kernel() {
    // Softmax cross-entropy's shape: per-row sums of exp-free terms, a
    // scalar total, a row maximum and the elementwise value, over odd sizes.
    let mut cases = vec![];
    for (i, &(rows, classes)) in
        [(1, 1), (3, 5), (7, 13), (17, 31), (33, 17), (5, 33), (13, 3)].iter().enumerate()
    {
        let shape = [rows, classes];
        let n = rows * classes;
        cases.push(Case {
            kernel: LoopKernel {
                name: format!("xent_{rows}_{classes}"),
                shape: shape.to_vec(),
                inputs: vec![f32_in(vec![classes as isize, 1]), f32_in(vec![1, 0])],
                body: vec![
                    Expr::Input(0),
                    Expr::Input(1),
                    Expr::Binary(BinaryOp::Sub, 0, 1),
                    Expr::Binary(BinaryOp::Mul, 2, 2),
                ],
                outputs: vec![
                    Store {
                        value: 3,
                        offset: 0,
                        strides: vec![1, 0],
                        elem: Elem::F32,
                        reduce: Some(Reduce::Sum),
                    },
                    Store {
                        value: 3,
                        offset: 0,
                        strides: vec![0, 0],
                        elem: Elem::F32,
                        reduce: Some(Reduce::Sum),
                    },
                    Store {
                        value: 2,
                        offset: 0,
                        strides: vec![1, 0],
                        elem: Elem::F32,
                        reduce: Some(Reduce::Max),
                    },
                    Store {
                        value: 2,
                        offset: 0,
                        strides: vec![0, 1],
                        elem: Elem::F32,
                        reduce: Some(Reduce::Max),
                    },
                    Store {
                        value: 3,
                        offset: 0,
                        strides: vec![classes as isize, 1],
                        elem: Elem::F32,
                        reduce: None,
                    },
                ],
            },
            inputs: vec![finite_data(n, i as u64), finite_data(rows, 50 + i as u64)],
            outputs: vec![
                vec![0.0; rows],
                vec![0.0; 1],
                vec![f32::NEG_INFINITY; rows],
                vec![f32::NEG_INFINITY; classes],
                vec![0.0; n],
            ],
        });
    }
    check_cases(&cases);
}

/// A graph computing `f` of one input of type `ty`, run by the interpreter.
fn interp_unary(ty: Type, input: Tensor<f32>, f: impl FnOnce(&mut Graph, ValueId) -> ValueId) -> Tensor<f32> {
    let loc = Loc::default();
    let mut g = Graph::new("ref", Mode::Infer);
    let x = g.input("x", InputKind::Data, ty, loc);
    let y = f(&mut g, x);
    g.output(OutputKind::Prediction, "y".to_string(), y);
    let feeds = HashMap::from([("x".to_string(), input)]);
    let mut outs = interp::run::<f32>(&g, &feeds).expect("interpreter runs");
    outs.remove(0).1
}

/// A buffer element's value as a tensor element would hold it.
fn as_f32_list(t: &Tensor<f32>) -> Vec<f32> {
    match t {
        Tensor::Float(a) => a.iter().copied().collect(),
        Tensor::Int(a) => a.iter().map(|&x| i32_bits(x)).collect(),
        Tensor::Bool(a) => a.iter().map(|&b| f32::from(u8::from(b))).collect(),
    }
}

#[test]
fn every_cast_matches_the_interpreter() {
    let floats: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.7,
        1.0,
        2.5,
        -2.5,
        1e10,
        -1e10,
        2147483648.0,
        -2147483648.0,
        3e9,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        16777217.0,
        f32::MIN_POSITIVE,
    ];
    let ints: Vec<i32> =
        vec![0, 1, -1, 7, -100, 16_777_216, -16_777_216, 123_456, i32::MAX, i32::MIN, 2, 3, 4, 5, 6, 8, 9];
    let bools: Vec<bool> = (0..17).map(|i| i % 3 == 1).collect();
    let n = floats.len();
    let dtypes = [DType::F32, DType::I32, DType::Bool];
    let mut jit = Jit::new().expect("host JIT");
    let mut kernels = vec![];
    for from in dtypes {
        for to in dtypes {
            for checking in [Checking::Unchecked, Checking::Checked] {
                let elem = |d: DType| if d == DType::I32 { Elem::I32 } else { Elem::F32 };
                let k = LoopKernel {
                    name: format!("cast_{}_{}_{checking:?}", from.name(), to.name()),
                    shape: vec![n],
                    inputs: vec![Operand { offset: 0, strides: vec![1], elem: elem(from) }],
                    body: vec![Expr::Input(0), Expr::Cast { from, to, arg: 0 }],
                    outputs: vec![Store {
                        value: 1,
                        offset: 0,
                        strides: vec![1],
                        elem: elem(to),
                        reduce: None,
                    }],
                };
                let id = jit.add_loop_kernel(&k, checking).expect("compiles");
                kernels.push((from, to, id));
            }
        }
    }
    jit.finalize().expect("finalizes");
    for (from, to, id) in kernels {
        let (tensor, buffer) = match from {
            DType::F32 => (
                Tensor::Float(ArrayD::from_shape_vec(IxDyn(&[n]), floats.clone()).expect("shape")),
                floats.clone(),
            ),
            DType::I32 => (
                Tensor::Int(ArrayD::from_shape_vec(IxDyn(&[n]), ints.clone()).expect("shape")),
                ints.iter().map(|&x| i32_bits(x)).collect(),
            ),
            DType::Bool => (
                Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&[n]), bools.clone()).expect("shape")),
                bools.iter().map(|&b| f32::from(u8::from(b))).collect(),
            ),
        };
        let want = interp_unary(Type::new(from, Shape::known(&[n])), tensor, |g, x| {
            g.add(Op::Cast { to }, &[x], Loc::default()).expect("cast")
        });
        let want = as_f32_list(&want);
        let mut got = vec![f32::NAN; n];
        jit.loop_fn(id).expect("fn").run(&[&buffer], &mut [&mut got], 0, n).expect("runs");
        for i in 0..n {
            let ok = got[i].to_bits() == want[i].to_bits() || (got[i].is_nan() && want[i].is_nan());
            assert!(
                ok,
                "cast {from:?} -> {to:?} of element {i}: got {:?}, interpreter {:?}",
                got[i], want[i]
            );
        }
    }
}

#[test]
fn one_hot_from_i32_labels_matches_the_interpreter() {
    let labels: Vec<i32> = vec![0, 2, 6, -1, 7, 1000, 3, i32::MIN, 5, 1, 4, 4, 0];
    let mut jit = Jit::new().expect("host JIT");
    let mut ids = vec![];
    for classes in [1usize, 3, 7, 33] {
        let s = labels.len();
        let k = LoopKernel {
            name: format!("one_hot_{classes}"),
            shape: vec![s, classes],
            inputs: vec![Operand { offset: 0, strides: vec![1, 0], elem: Elem::I32 }],
            body: vec![Expr::Input(0), Expr::AxisIndex(1), Expr::Compare(CmpOp::Eq, 0, 1)],
            outputs: plain(&[s, classes], &[2]),
        };
        ids.push((classes, jit.add_loop_kernel(&k, Checking::Checked).expect("compiles")));
    }
    jit.finalize().expect("finalizes");
    let buffer: Vec<f32> = labels.iter().map(|&x| i32_bits(x)).collect();
    for (classes, id) in ids {
        let s = labels.len();
        let want = interp_unary(
            Type::new(DType::I32, Shape::known(&[s])),
            Tensor::Int(ArrayD::from_shape_vec(IxDyn(&[s]), labels.clone()).expect("shape")),
            |g, x| g.add(Op::OneHot { classes }, &[x], Loc::default()).expect("one_hot"),
        );
        let want = as_f32_list(&want);
        let mut got = vec![f32::NAN; s * classes];
        let f = jit.loop_fn(id).expect("fn");
        // In two pieces on a row boundary, as a runtime would split it.
        f.run(&[&buffer], &mut [&mut got], 0, 5 * classes).expect("runs");
        f.run(&[&buffer], &mut [&mut got], 5 * classes, s * classes).expect("runs");
        assert!(same_bits(&[got], &[want]), "one_hot with {classes} classes");
    }
}

#[test]
fn positions_i32_buffers_and_reductions_combine() {
    // AxisIndex along outer and inner axes, an I32 output of a cast, and an
    // I32 input feeding a reduction.
    let shape = [5, 3, 7];
    let n = 105;
    let ints: Vec<f32> = (0..n).map(|i| i32_bits(i as i32 * 37 % 101 - 50)).collect();
    let cases = vec![Case {
        kernel: LoopKernel {
            name: "positions".into(),
            shape: shape.to_vec(),
            inputs: vec![
                Operand { offset: 0, strides: contiguous(&shape), elem: Elem::I32 },
                f32_in(contiguous(&shape)),
            ],
            body: vec![
                Expr::AxisIndex(0),
                Expr::AxisIndex(1),
                Expr::AxisIndex(2),
                Expr::Const(10.0),
                Expr::Binary(BinaryOp::Mul, 0, 3),
                Expr::Binary(BinaryOp::Add, 4, 1),
                Expr::Binary(BinaryOp::Mul, 5, 3),
                Expr::Binary(BinaryOp::Add, 6, 2),
                Expr::Input(0),
                Expr::Input(1),
                Expr::Binary(BinaryOp::Mul, 9, 3),
                Expr::Cast { from: DType::F32, to: DType::I32, arg: 10 },
            ],
            outputs: vec![
                Store { value: 7, offset: 0, strides: contiguous(&shape), elem: Elem::F32, reduce: None },
                Store {
                    value: 8,
                    offset: 0,
                    strides: vec![1, 0, 0],
                    elem: Elem::I32,
                    reduce: Some(Reduce::Sum),
                },
                Store { value: 11, offset: 2, strides: vec![1, 5, 15], elem: Elem::I32, reduce: None },
                Store {
                    value: 8,
                    offset: 0,
                    strides: vec![0, 1, 0],
                    elem: Elem::F32,
                    reduce: Some(Reduce::Max),
                },
            ],
        },
        inputs: vec![ints, data(n, 3)],
        outputs: vec![
            vec![0.0; n],
            vec![i32_bits(0); 5],
            vec![i32_bits(-1); n + 2],
            vec![f32::NEG_INFINITY; 3],
        ],
    }];
    check_cases(&cases);
}

#[test]
fn random_matches_the_generator_bit_for_bit() {
    // (key words, stream); keys with high bits set, large streams.
    let table: &[([i32; 2], u64)] = &[
        ([0, 0], 0),
        ([12345, 6], 2),
        ([-1, i32::MIN], u64::MAX),
        ([0x7654_3210, -0x1234_5678], 0x1234_5678_9abc_def0),
        ([1, 0], 1 << 40),
    ];
    let shapes: &[&[usize]] = &[&[1000], &[7, 9], &[3, 1, 13]];
    let mut jit = Jit::new().expect("host JIT");
    let mut ids = vec![];
    for (t, &(key, stream)) in table.iter().enumerate() {
        for (s, shape) in shapes.iter().enumerate() {
            for checking in [Checking::Unchecked, Checking::Checked] {
                let k = LoopKernel {
                    name: format!("random_{t}_{s}_{checking:?}"),
                    shape: shape.to_vec(),
                    // The key sits at elements 2 and 3 of its buffer.
                    inputs: vec![Operand { offset: 2, strides: vec![0; shape.len()], elem: Elem::I32 }],
                    body: vec![
                        Expr::Random { key: 0, stream },
                        Expr::Const(0.5),
                        Expr::Compare(CmpOp::Lt, 0, 1),
                    ],
                    outputs: plain(shape, &[0, 2]),
                };
                ids.push((key, stream, shape.to_vec(), jit.add_loop_kernel(&k, checking).expect("compiles")));
            }
        }
    }
    jit.finalize().expect("finalizes");
    for (key, stream, shape, id) in ids {
        let n: usize = shape.iter().product();
        let buffer = vec![i32_bits(99), i32_bits(-99), i32_bits(key[0]), i32_bits(key[1])];
        let f = jit.loop_fn(id).expect("fn");
        let want: Vec<f32> = (0..n as u64).map(|i| rng::uniform(key, stream, i)).collect();
        // Pieces starting at indices that are not multiples of 4.
        for cuts in [vec![0, n], vec![0, 1, 2, 3, 5, 6, 10, 13, n], vec![0, n / 3, n / 3 + 7, n]] {
            let mut u = vec![f32::NAN; n];
            let mut m = vec![f32::NAN; n];
            for w in cuts.windows(2) {
                f.run(&[&buffer], &mut [&mut u, &mut m], w[0], w[1]).expect("runs");
            }
            for i in 0..n {
                assert_eq!(u[i].to_bits(), want[i].to_bits(), "key {key:?} stream {stream} element {i}");
                assert_eq!(m[i], f32::from(u8::from(want[i] < 0.5)), "mask element {i}");
            }
        }
    }
}

#[test]
fn checked_kernels_trap_before_writing_anything() {
    let i32_key = Operand { offset: 3, strides: vec![0, 0], elem: Elem::I32 };
    let shape = [6, 9];
    let sum_rows = |strides: Vec<isize>| Store {
        value: 0,
        offset: 0,
        strides,
        elem: Elem::F32,
        reduce: Some(Reduce::Sum),
    };
    // (name, kernel inputs, body, stores, input lengths, output lengths, message fragment)
    type TrapCase = (&'static str, Vec<Operand>, Vec<Expr>, Vec<Store>, Vec<usize>, Vec<usize>, &'static str);
    let table: Vec<TrapCase> = vec![
        (
            "input_offset",
            vec![Operand { offset: 2, strides: contiguous(&shape), elem: Elem::F32 }],
            vec![Expr::Input(0)],
            plain(&shape, &[0]),
            vec![55],
            vec![54],
            "input 0 at element 55",
        ),
        (
            "output_offset",
            vec![f32_in(contiguous(&shape))],
            vec![Expr::Input(0)],
            vec![Store { value: 0, offset: 1, strides: contiguous(&shape), elem: Elem::F32, reduce: None }],
            vec![54],
            vec![54],
            "output 0 at element 54",
        ),
        (
            "reduction_too_small",
            vec![f32_in(contiguous(&shape))],
            vec![Expr::Input(0)],
            vec![sum_rows(vec![1, 0]), sum_rows(vec![0, 0])],
            vec![54],
            vec![5, 1],
            "output 0 at element 5 (buffer length 5)",
        ),
        (
            "column_reduction_too_small",
            vec![f32_in(contiguous(&shape))],
            vec![Expr::Input(0)],
            vec![sum_rows(vec![0, 1])],
            vec![54],
            vec![8],
            "output 0 at element 8 (buffer length 8)",
        ),
        (
            "short_key",
            vec![i32_key],
            vec![Expr::Random { key: 0, stream: 3 }],
            plain(&shape, &[0]),
            vec![4],
            vec![54],
            "input 0 at element 3 (buffer length 4)",
        ),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table
        .iter()
        .map(|(name, inputs, body, outputs, _, _, _)| {
            let k = LoopKernel {
                name: name.to_string(),
                shape: shape.to_vec(),
                inputs: inputs.clone(),
                body: body.clone(),
                outputs: outputs.clone(),
            };
            (
                jit.add_loop_kernel(&k, Checking::Checked).expect("compiles"),
                jit.add_loop_kernel(&LoopKernel { name: format!("{name}_u"), ..k }, Checking::Unchecked)
                    .expect("compiles"),
            )
        })
        .collect();
    jit.finalize().expect("finalizes");
    for ((name, _, _, _, in_lens, out_lens, fragment), (checked, unchecked)) in table.iter().zip(ids) {
        let inputs: Vec<Vec<f32>> = in_lens.iter().map(|&n| vec![1.0f32; n]).collect();
        let ins: Vec<&[f32]> = inputs.iter().map(|b| b.as_slice()).collect();
        let mut outs: Vec<Vec<f32>> = out_lens.iter().map(|&n| vec![-3.0f32; n]).collect();
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        let err = jit.loop_fn(checked).expect("fn").run(&ins, &mut refs, 0, 54).unwrap_err();
        assert!(err.contains(name) && err.contains(fragment), "{name}: message {err}");
        assert!(
            outs.iter().all(|o| o.iter().all(|&x| x == -3.0)),
            "{name}: the kernel wrote before trapping"
        );
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        let err = jit.loop_fn(unchecked).expect("fn").run(&ins, &mut refs, 0, 54).unwrap_err();
        assert!(
            err.contains("is read at elements") || err.contains("is written at elements"),
            "{name}: {err}"
        );
        assert!(outs.iter().all(|o| o.iter().all(|&x| x == -3.0)), "{name}: the unchecked call wrote");
    }
}

#[test]
fn row_reductions_use_vector_code() {
    let mut jit = Jit::new().expect("host JIT");
    let case = reduce_case(&[8, 64], &[1], Reduce::Sum, 1);
    jit.add_loop_kernel(&case.kernel, Checking::Unchecked).expect("compiles");
    let text = jit.clif_text();
    for needle in ["f32x4", "extractlane", "fadd"] {
        assert!(text[0].1.contains(needle), "missing {needle}:\n{}", text[0].1);
    }
}

/// Throughput of reductions on one thread (run with `--ignored
/// --nocapture`; not a correctness test): rows, columns, everything, a
/// one-axis total (sequential scalar loop), and sums and maxima of rows of
/// 64 (an attention's softmax; 2 MB of them do not fit in L2).
#[test]
#[ignore]
fn throughput_of_reductions() {
    let table: &[(&[usize], &[usize], Reduce)] = &[
        (&[256, 256], &[1], Reduce::Sum),
        (&[256, 256], &[0], Reduce::Sum),
        (&[256, 256], &[0, 1], Reduce::Sum),
        (&[65536], &[0], Reduce::Sum),
        (&[256, 64], &[1], Reduce::Sum),
        (&[256, 64], &[1], Reduce::Max),
        (&[8192, 64], &[1], Reduce::Max),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let cases: Vec<Case> = table.iter().map(|&(shape, axes, r)| reduce_case(shape, axes, r, 1)).collect();
    let ids: Vec<_> = cases
        .iter()
        .map(|c| {
            let mut k = c.kernel.clone();
            k.outputs.truncate(1);
            jit.add_loop_kernel(&k, Checking::Unchecked).expect("compiles")
        })
        .collect();
    jit.finalize().expect("finalizes");
    for (c, id) in cases.iter().zip(ids) {
        let f = jit.loop_fn(id).expect("finalized");
        let ins: Vec<&[f32]> = c.inputs.iter().map(|b| b.as_slice()).collect();
        let mut out = c.outputs[0].clone();
        let n = c.kernel.elements();
        let reps = 2000;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f.run(&ins, &mut [&mut out], 0, n).expect("runs");
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{}: {:.2} Gelem/s", c.kernel.name, (n * reps) as f64 / secs / 1e9);
    }
}

/// Dropping a `Jit` frees its machine code; kernels of `Jit`s created
/// afterwards (which may reuse that memory) still compute correctly, and
/// many create-run-drop cycles neither crash nor disturb a `Jit` that
/// stays alive throughout.
#[test]
fn dropped_jits_free_their_code_and_leave_others_intact() {
    let kernel = |name: &str, c: f32| LoopKernel {
        name: name.into(),
        shape: vec![37],
        inputs: vec![Operand { offset: 0, strides: contiguous(&[37]), elem: Elem::F32 }],
        body: vec![Expr::Input(0), Expr::Const(c), Expr::Binary(BinaryOp::Add, 0, 1)],
        outputs: vec![Store {
            value: 2,
            offset: 0,
            strides: contiguous(&[37]),
            elem: Elem::F32,
            reduce: None,
        }],
    };
    let xs: Vec<f32> = (0..37).map(|i| i as f32).collect();
    let run = |jit: &Jit, id| {
        let mut out = vec![0.0f32; 37];
        jit.loop_fn(id).expect("kernel").run(&[&xs], &mut [&mut out], 0, 37).expect("run");
        out
    };
    let mut keeper = Jit::new().expect("jit");
    let kept = keeper.add_loop_kernel(&kernel("kept", 0.5), Checking::Unchecked).expect("add");
    keeper.finalize().expect("finalize");
    for round in 0..64 {
        let mut jit = Jit::new().expect("jit");
        let id = jit.add_loop_kernel(&kernel("k", round as f32), Checking::Checked).expect("add");
        jit.finalize().expect("finalize");
        let want: Vec<f32> = xs.iter().map(|x| x + round as f32).collect();
        assert_eq!(run(&jit, id), want, "round {round}");
        drop(jit);
        let want: Vec<f32> = xs.iter().map(|x| x + 0.5).collect();
        assert_eq!(run(&keeper, kept), want, "the long-lived kernel after round {round}");
    }
}

// ---------------------------------------------------------------- strips

/// The array functions of every instruction set the host has, and the
/// scalar transcriptions, give the bits of the inline approximations on
/// every binade, dense grids and the special values.
#[test]
fn wide_array_functions_equal_the_inline_approximations() {
    let mut xs = sweep_all_binades();
    xs.extend(grid(-110.0, 90.0, 1.0 / 256.0));
    xs.extend([
        -104.0,
        -103.99,
        -103.98,
        -103.979_996,
        -103.97,
        88.72,
        88.8,
        88.81,
        9.0,
        -9.0,
        8.999,
        1e-30,
        -1e-30,
        -0.0,
        0.0,
        1.0,
        -1.0,
        4.0,
        -4.0,
    ]);
    type Function = (&'static str, EmitFn, fn(f32) -> f32, UnaryOp);
    let table: [Function; 6] = [
        ("exp", approx::exp, super::wide::exp, UnaryOp::Exp),
        ("erf", approx::erf, super::wide::erf, UnaryOp::Erf),
        ("gelu", approx::gelu, super::wide::gelu, UnaryOp::Gelu),
        ("gelu_grad", approx::gelu_grad, super::wide::gelu_grad, UnaryOp::GeluGrad),
        ("sigmoid", approx::sigmoid, super::wide::sigmoid, UnaryOp::Sigmoid),
        ("tanh", approx::tanh, super::wide::tanh, UnaryOp::Tanh),
    ];
    let mut jit = Jit::new().expect("host JIT");
    let ids: Vec<_> = table.iter().map(|(name, f, _, _)| jit.add_map(name, *f).expect("compiles")).collect();
    jit.finalize().expect("finalizes");
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    for ((name, _, scalar, op), id) in table.iter().zip(ids) {
        let inline = run_map(jit.map_fn(id), &xs);
        for (i, &x) in xs.iter().enumerate() {
            assert!(
                same(scalar(x), inline[i]),
                "{name}({x:e}): scalar {:e}, inline {:e}",
                scalar(x),
                inline[i]
            );
        }
        for fns in super::wide::all() {
            let f = fns.of(*op).expect("an array function");
            let mut y = vec![0.0f32; xs.len()];
            // SAFETY: `xs` and `y` hold `xs.len()` elements each and are distinct.
            unsafe { f(xs.as_ptr(), y.as_mut_ptr(), xs.len()) };
            for (i, &x) in xs.iter().enumerate() {
                assert!(
                    same(y[i], inline[i]),
                    "{name}({x:e}) over arrays ({}): {:e}, inline {:e}",
                    fns.isa,
                    y[i],
                    inline[i]
                );
            }
        }
    }
}

/// Below `EXP_ZERO`, `exp` is +0 by a select (its arithmetic would take
/// subnormal products there, a microcode assist each on Intel's cores):
/// the arithmetic gives +0 itself at every float from -104 (the old lower
/// clamp, which every input below took) up to `EXP_ZERO`, so the results
/// are the bits of the plain arithmetic; and just above, it does not.
#[test]
fn exp_is_zero_below_exp_zero_as_its_arithmetic_is() {
    let mut x = approx::EXP_ZERO;
    let mut floats = 0;
    while x.next_down() >= -104.0 {
        x = x.next_down();
        assert_eq!(super::wide::exp_scaled(x).to_bits(), 0, "exp's arithmetic at {x:e}");
        floats += 1;
    }
    assert!(floats > 1000, "{floats} floats checked");
    assert!(super::wide::exp_scaled(-103.96) > 0.0, "exp's arithmetic is 0 well above EXP_ZERO");
    for x in [approx::EXP_ZERO.next_down(), -104.0, -1e30, f32::NEG_INFINITY] {
        assert_eq!(super::wide::exp(x).to_bits(), 0, "exp({x:e})");
        assert_eq!(super::wide::sigmoid(x).to_bits(), 0, "sigmoid({x:e})");
        assert_eq!(super::wide::sigmoid(-x).to_bits(), 1.0f32.to_bits(), "sigmoid({:e})", -x);
    }
}

/// A kernel in the shape of an LSTM step's forward loop over `[rows, n]`,
/// its gates read as four column blocks of one `[rows, 4n]` input.
fn lstm_case(rows: usize, n: usize, seed: u64) -> Case {
    let gates = Operand { offset: 0, strides: vec![4 * n as isize, 1], elem: Elem::F32 };
    let at = |block: usize| Operand { offset: (block * n) as isize, ..gates.clone() };
    let (body, out) = lstm_body();
    let kernel = LoopKernel {
        name: format!("lstm_{rows}x{n}"),
        shape: vec![rows, n],
        inputs: vec![at(0), at(1), at(2), at(3), f32_in(vec![n as isize, 1])],
        body,
        outputs: plain(&[rows, n], &out),
    };
    let gates = data(rows * 4 * n, seed);
    let inputs = vec![gates.clone(), gates.clone(), gates.clone(), gates, data(rows * n, seed + 1)];
    let outputs = vec![vec![0.0; rows * n]; out.len()];
    Case { kernel, inputs, outputs }
}

/// Kernels that run in strips equal the scalar reference bit for bit
/// (sums within rounding) and the inline code bit for bit: whole strips and the vector and scalar tails
/// after them, any split of the range, broadcast and i32 operands of the
/// array functions, values crossing several segments, comparisons read in
/// a later segment, calls whose operand is computed or constant,
/// reductions across rows and along them.
#[test]
fn strip_kernels_match_the_scalar_reference() {
    use UnaryOp::{Exp, Sigmoid, Tanh};
    let mut cases =
        vec![lstm_case(3, 300, 1), lstm_case(5, 128, 2), lstm_case(2, 131, 3), lstm_case(4, 127, 4)];
    // exp(σ(a)·b) − tanh(a) with b broadcast per row, an i32 input, a
    // comparison made in segment 0 and selected on in segment 2, and a
    // call on a constant.
    let shape = [3, 300];
    let body = vec![
        Expr::Input(0),                     // 0: a
        Expr::Input(1),                     // 1: b (stride 0 along the row)
        Expr::Input(2),                     // 2: i32
        Expr::Compare(CmpOp::Gt, 0, 2),     // 3: a > i
        Expr::Unary(Sigmoid, 0),            // 4: level 1
        Expr::Binary(BinaryOp::Mul, 4, 1),  // 5
        Expr::Unary(Exp, 5),                // 6: level 2
        Expr::Unary(Tanh, 1),               // 7: call on a broadcast input
        Expr::Binary(BinaryOp::Sub, 6, 7),  // 8
        Expr::Select(3, 8, 2),              // 9: mask from segment 0
        Expr::Const(0.25),                  // 10
        Expr::Unary(Exp, 10),               // 11: call on a constant
        Expr::Binary(BinaryOp::Add, 9, 11), // 12
        Expr::Unary(Tanh, 2),               // 13: call on an i32 input
        Expr::Unary(Sigmoid, 13),           // 14
    ];
    let kernel = LoopKernel {
        name: "mixed_strips".into(),
        shape: shape.to_vec(),
        inputs: vec![
            f32_in(contiguous(&shape)),
            f32_in(vec![1, 0]),
            Operand { offset: 0, strides: contiguous(&shape), elem: Elem::I32 },
        ],
        body,
        outputs: vec![
            Store { value: 12, offset: 0, strides: contiguous(&shape), elem: Elem::F32, reduce: None },
            Store { value: 3, offset: 0, strides: contiguous(&shape), elem: Elem::F32, reduce: None },
            Store { value: 14, offset: 0, strides: contiguous(&shape), elem: Elem::I32, reduce: None },
            Store { value: 6, offset: 0, strides: contiguous(&shape), elem: Elem::F32, reduce: None },
            // Maxima and sums across rows.
            Store { value: 6, offset: 0, strides: vec![0, 1], elem: Elem::F32, reduce: Some(Reduce::Max) },
            Store { value: 8, offset: 0, strides: vec![0, 1], elem: Elem::F32, reduce: Some(Reduce::Sum) },
            Store { value: 14, offset: 0, strides: vec![0, 1], elem: Elem::F32, reduce: Some(Reduce::Sum) },
        ],
    };
    let ints: Vec<f32> = (0..900).map(|i| i32_bits(i % 7 - 3)).collect();
    cases.push(Case {
        kernel,
        inputs: vec![data(900, 5), data(3, 6), ints],
        outputs: vec![
            vec![0.0; 900],
            vec![0.0; 900],
            vec![0.0; 900],
            vec![0.0; 900],
            vec![f32::NEG_INFINITY; 300],
            vec![0.0; 300],
            vec![0.0; 300],
        ],
    });
    // Softmax's exponentials with their row sums and maxima, over rows of
    // 64 to 300 elements (short strips, long strips, tails).
    for (n, len) in [64usize, 100, 300].into_iter().enumerate() {
        let shape = [3, len];
        let kernel = LoopKernel {
            name: format!("softmax_{len}"),
            shape: shape.to_vec(),
            inputs: vec![f32_in(contiguous(&shape)), f32_in(vec![1, 0])],
            body: vec![
                Expr::Input(0),
                Expr::Input(1),
                Expr::Binary(BinaryOp::Sub, 0, 1),
                Expr::Unary(Exp, 2),
                Expr::Unary(Sigmoid, 3),
            ],
            outputs: vec![
                Store { value: 3, offset: 0, strides: contiguous(&shape), elem: Elem::F32, reduce: None },
                Store {
                    value: 3,
                    offset: 0,
                    strides: vec![1, 0],
                    elem: Elem::F32,
                    reduce: Some(Reduce::Sum),
                },
                Store {
                    value: 4,
                    offset: 0,
                    strides: vec![1, 0],
                    elem: Elem::F32,
                    reduce: Some(Reduce::Max),
                },
            ],
        };
        cases.push(Case {
            kernel,
            inputs: vec![finite_data(3 * len, 10 + n as u64), finite_data(3, 20 + n as u64)],
            outputs: vec![vec![0.0; 3 * len], vec![0.0; 3], vec![f32::NEG_INFINITY; 3]],
        });
    }
    check_cases(&cases);

    // The same kernels compiled without the array functions: the same bits
    // (sums along the row aside: the strips add each strip's partial sum
    // to the row's, so they round differently; `check_cases` held them to
    // the sequential sum).
    let mut wide = Jit::new().expect("host JIT");
    let mut inline = Jit::new().expect("host JIT");
    inline.set_wide(false);
    assert_eq!(inline.wide_isa(), None);
    let pairs: Vec<_> = cases
        .iter()
        .map(|c| {
            let w = wide.add_loop_kernel(&c.kernel, Checking::Unchecked).expect("compiles");
            let i = inline.add_loop_kernel(&c.kernel, Checking::Unchecked).expect("compiles");
            (w, i)
        })
        .collect();
    wide.finalize().expect("finalizes");
    inline.finalize().expect("finalizes");
    if !super::wide::all().is_empty() {
        let text = wide.clif_text();
        assert!(
            text.iter().any(|(_, t)| t.contains(" call fn")),
            "the LSTM kernels call array functions:\n{}",
            text[0].1
        );
    }
    for (c, (w, i)) in cases.iter().zip(pairs) {
        let ins: Vec<&[f32]> = c.inputs.iter().map(|b| b.as_slice()).collect();
        let run = |f: super::LoopFn| {
            let mut outs = c.outputs.clone();
            let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
            f.run(&ins, &mut refs, 0, c.kernel.elements()).expect("runs");
            outs
        };
        let a = run(wide.loop_fn(w).expect("finalized"));
        let b = run(inline.loop_fn(i).expect("finalized"));
        for (o, st) in c.kernel.outputs.iter().enumerate() {
            if st.reduce != Some(Reduce::Sum) || st.strides.last() != Some(&0) {
                assert!(
                    same_bits(&a[o..=o], &b[o..=o]),
                    "{}: output {o}: strips and inline differ",
                    c.kernel.name
                );
            }
        }
    }
}

/// An output that is its input's memory (an in-place update) is written
/// only after every segment of the strip has read that input: here
/// `x ← x + 1` and `y = σ(x)`, whose call reads `x` after segment 0, where
/// `x + 1` is computed.
#[test]
fn in_place_outputs_of_strip_kernels_are_stored_after_every_read() {
    let n = 300;
    let kernel = LoopKernel {
        name: "in_place_strips".into(),
        shape: vec![n],
        inputs: vec![f32_in(vec![1])],
        body: vec![
            Expr::Input(0),
            Expr::Const(1.0),
            Expr::Binary(BinaryOp::Add, 0, 1),
            Expr::Unary(UnaryOp::Sigmoid, 0),
        ],
        outputs: plain(&[n], &[2, 3]),
    };
    let mut jit = Jit::new().expect("host JIT");
    let id = jit.add_loop_kernel(&kernel, Checking::Unchecked).expect("compiles");
    jit.finalize().expect("finalizes");
    let f = jit.loop_fn(id).expect("finalized").raw();
    let x0 = data(n, 9);
    let mut x = x0.clone();
    let mut y = vec![0.0f32; n];
    let ins = [x.as_ptr()];
    let outs = [x.as_mut_ptr(), y.as_mut_ptr()];
    // SAFETY: input 0 and output 0 are the same `n` elements, read and
    // written with the same offset and strides (the in-place update the
    // kernel contract allows); output 1 is `n` distinct elements; the
    // range is the kernel's whole space and `lens` is unused unchecked.
    unsafe { f(ins.as_ptr(), outs.as_ptr(), 0, n, std::ptr::null()) };
    for i in 0..n {
        let (want_x, want_y) = (x0[i] + 1.0, super::wide::sigmoid(x0[i]));
        assert!(
            same_bits(&[vec![x[i], y[i]]], &[vec![want_x, want_y]]),
            "element {i}: x {} y {}",
            x[i],
            y[i]
        );
    }
}
