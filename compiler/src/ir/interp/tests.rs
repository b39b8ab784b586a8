//! Tests of the reference interpreter: every primitive against hand-computed
//! values, in f32 and in f64, plus the run-time checks and example inputs.
//!
//! Each case is a function generic over the float type; the `both!` table at
//! the end of each section instantiates it for f32 and f64.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::ir::op::{
    BinaryOp, CmpOp, ConvAttrs, Init, InputKind, Op, ParamRole, PoolKind, UnaryOp, WindowAttrs,
};
use crate::ir::{Graph, Loc, Mode, Node, OutputKind};

// ---------------------------------------------------------------- helpers

fn ft<T: Real>(shape: &[usize], values: &[f64]) -> Tensor<T> {
    Tensor::from_f64(shape, values).expect("test data fills its shape")
}

fn it<T: Real>(shape: &[usize], values: &[i32]) -> Tensor<T> {
    Tensor::Int(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("test data fills its shape"))
}

fn bt<T: Real>(shape: &[usize], values: &[bool]) -> Tensor<T> {
    Tensor::Bool(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("test data fills its shape"))
}

/// 0, 1, 2, ... in the given shape.
fn arange<T: Real>(shape: &[usize]) -> Tensor<T> {
    let n: usize = shape.iter().product();
    ft(shape, &(0..n).map(|i| i as f64).collect::<Vec<_>>())
}

/// Deterministic pseudo-random floats in [-1, 1).
fn noise<T: Real>(shape: &[usize], stream: u64) -> Tensor<T> {
    let n: usize = shape.iter().product();
    let values: Vec<f64> =
        (0..n).map(|i| 2.0 * f64::from(rng::uniform([9, 9], stream, i as u64)) - 1.0).collect();
    ft(shape, &values)
}

/// Builds a graph applying `op` to inputs `a0, a1, ...` of the arguments'
/// concrete types and runs it.
fn try_eval<T: Real>(op: Op, args: &[Tensor<T>]) -> Result<Tensor<T>, InterpError> {
    let mut g = Graph::new("case", Mode::Infer);
    let mut inputs = HashMap::new();
    let mut ids = vec![];
    for (i, t) in args.iter().enumerate() {
        let name = format!("a{i}");
        ids.push(g.input(name.clone(), InputKind::Data, t.ty(), Loc::NONE));
        inputs.insert(name, t.clone());
    }
    let r = g.add(op, &ids, Loc::NONE).map_err(|m| InterpError { value: None, message: m })?;
    g.output(OutputKind::Other, "r", r);
    let mut out = run(&g, &inputs)?;
    Ok(out.remove(0).1)
}

/// A single operand, for [`eval`].
fn one<T>(t: &Tensor<T>) -> &[Tensor<T>] {
    std::slice::from_ref(t)
}

fn eval<T: Real>(op: Op, args: &[Tensor<T>]) -> Tensor<T> {
    try_eval(op.clone(), args).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

fn is_f32<T: Real>() -> bool {
    std::mem::size_of::<T>() == 4
}

/// Asserts a float tensor's shape and values (relative tolerance 1e-6 in f32,
/// 1e-13 in f64; NaN matches NaN; infinities must be equal).
fn assert_floats<T: Real>(t: &Tensor<T>, shape: &[usize], want: &[f64]) {
    let a = t.as_float().unwrap_or_else(|| panic!("expected a float tensor, got {}", t.ty()));
    assert_eq!(a.shape(), shape, "shape");
    assert_eq!(a.len(), want.len(), "element count");
    let tol = if is_f32::<T>() { 1e-6 } else { 1e-13 };
    for (i, (&got, &w)) in a.iter().zip(want).enumerate() {
        let got = got.as_f64();
        let ok =
            if w.is_nan() { got.is_nan() } else { got == w || (got - w).abs() <= tol * w.abs().max(1.0) };
        assert!(ok, "element {i}: got {got}, want {w} (all: {a})");
    }
}

fn assert_ints<T: Real>(t: &Tensor<T>, shape: &[usize], want: &[i32]) {
    let a = t.as_int().unwrap_or_else(|| panic!("expected an i32 tensor, got {}", t.ty()));
    assert_eq!(a.shape(), shape);
    assert_eq!(a.iter().copied().collect::<Vec<_>>(), want);
}

fn assert_bools<T: Real>(t: &Tensor<T>, shape: &[usize], want: &[bool]) {
    let a = t.as_bool().unwrap_or_else(|| panic!("expected a bool tensor, got {}", t.ty()));
    assert_eq!(a.shape(), shape);
    assert_eq!(a.iter().copied().collect::<Vec<_>>(), want);
}

/// One `#[test]` per generic case, run in f32 and then in f64.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod cases {
            $(
                #[test]
                fn $name() {
                    super::$name::<f32>();
                    super::$name::<f64>();
                }
            )*
        }
    };
}

both!(
    unary_ops,
    unary_ops_saturate,
    binary_ops,
    compare_ops,
    select_op,
    cast_op,
    constants,
    broadcast_edge_cases,
    broadcast_symbolic,
    reshape_op,
    permute_op,
    slice_op,
    pad_op,
    concat_op,
    reduce_sum_op,
    reduce_max_op,
    argmax_ties,
    size_op,
    matmul_2d,
    matmul_batched,
    conv_1d,
    conv_2d,
    conv_2d_groups,
    conv_3d,
    conv_transpose_hand,
    conv_transpose_adjoint,
    maxpool,
    avgpool,
    resize_up_2d,
    resize_1d,
    resize_3d_identity,
    one_hot_op,
    rng_uniform_op,
    run_all_values,
);

// ---------------------------------------------------------------- elementwise

fn unary_ops<T: Real>() {
    let x = ft::<T>(&[5], &[-2.0, -0.5, 0.0, 0.5, 2.0]);
    let check = |op: UnaryOp, want: &[f64]| assert_floats(&eval(Op::Unary(op), one(&x)), &[5], want);
    check(UnaryOp::Neg, &[2.0, 0.5, 0.0, -0.5, -2.0]);
    check(UnaryOp::Abs, &[2.0, 0.5, 0.0, 0.5, 2.0]);
    check(UnaryOp::Sign, &[-1.0, -1.0, 0.0, 1.0, 1.0]);
    check(UnaryOp::Exp, &[0.1353352832366127, 0.6065306597126334, 1.0, 1.6487212707001282, 7.38905609893065]);
    check(
        UnaryOp::Tanh,
        &[-0.9640275800758169, -0.46211715726000974, 0.0, 0.46211715726000974, 0.9640275800758169],
    );
    check(
        UnaryOp::Sigmoid,
        &[0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.8807970779778823],
    );
    check(
        UnaryOp::Erf,
        &[-0.9953222650189527, -0.5204998778130465, 0.0, 0.5204998778130465, 0.9953222650189527],
    );
    check(
        UnaryOp::Gelu,
        &[-0.04550026389635844, -0.15426876936299344, 0.0, 0.34573123063700656, 1.9544997361036416],
    );
    check(
        UnaryOp::GeluGrad,
        &[-0.0852318010781969, 0.13250487534383712, 0.5, 0.8674951246561629, 1.085231801078197],
    );
    let p = ft::<T>(&[5], &[0.0, 0.25, 1.0, 4.0, -1.0]);
    let check_p = |op: UnaryOp, want: &[f64]| assert_floats(&eval(Op::Unary(op), one(&p)), &[5], want);
    check_p(UnaryOp::Log, &[f64::NEG_INFINITY, -1.3862943611198906, 0.0, 1.3862943611198906, f64::NAN]);
    check_p(UnaryOp::Sqrt, &[0.0, 0.5, 1.0, 2.0, f64::NAN]);
    // sign: ±0 give 0, NaN stays NaN.
    let z = ft::<T>(&[3], &[-0.0, f64::NAN, f64::NEG_INFINITY]);
    assert_floats(&eval(Op::Unary(UnaryOp::Sign), &[z]), &[3], &[0.0, f64::NAN, -1.0]);
}

/// tanh, sigmoid and erf saturate without overflow or NaN at large |x|.
fn unary_ops_saturate<T: Real>() {
    let x = ft::<T>(&[4], &[-1000.0, -40.0, 40.0, 1000.0]);
    assert_floats(&eval(Op::Unary(UnaryOp::Tanh), one(&x)), &[4], &[-1.0, -1.0, 1.0, 1.0]);
    let s = eval(Op::Unary(UnaryOp::Sigmoid), one(&x));
    let s = s.as_float().expect("float");
    assert_eq!(s[[0]], T::zero());
    assert!(s[[1]].as_f64() > 0.0 && s[[1]].as_f64() < 1e-17);
    assert_eq!(s[[2]], T::one());
    assert_eq!(s[[3]], T::one());
    assert_floats(&eval(Op::Unary(UnaryOp::Erf), &[x]), &[4], &[-1.0, -1.0, 1.0, 1.0]);
}

/// gelu keeps relative accuracy where `1 + erf` would cancel (Python's
/// `x·erfc(−x/√2)/2` and its derivative), and has the limits at ±∞.
#[test]
fn gelu_is_accurate_far_into_the_negative_tail() {
    use crate::ir::interp::{gelu, gelu_grad};
    for (x, want, want_grad) in [
        (-10.0, -7.619853024160593e-23, -7.618400096464813e-22),
        (-30.0, -1.4720141781446293e-196, -4.416031690708494e-195),
    ] {
        assert!(((gelu(x) - want) / want).abs() < 1e-12, "gelu({x}) = {:e}", gelu(x));
        assert!(
            ((gelu_grad(x) - want_grad) / want_grad).abs() < 1e-12,
            "gelu_grad({x}) = {:e}",
            gelu_grad(x)
        );
    }
    assert_eq!(gelu(f64::NEG_INFINITY).to_bits(), (-0.0f64).to_bits());
    assert_eq!(gelu(f64::INFINITY), f64::INFINITY);
    assert_eq!(gelu_grad(f64::NEG_INFINITY), 0.0);
    assert_eq!(gelu_grad(f64::INFINITY), 1.0);
    assert!(gelu(f64::NAN).is_nan() && gelu_grad(f64::NAN).is_nan());
}

#[test]
fn erf_matches_reference_values() {
    // Reference values of erf (as printed by C's and Python's erf).
    let table = [
        (1e-3, 0.0011283787909692365),
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (1.5 - 1e-12, 0.9661051464751917), // the last point of the series
        (1.5, 0.9661051464753108),
        (2.0, 0.9953222650189527),
        (2.5, 0.999593047982555),
        (3.0, 0.9999779095030014),
        (4.0, 0.9999999845827421),
        (5.5, 0.9999999999999927),
    ];
    for (x, want) in table {
        assert!((erf(x) - want).abs() <= 1e-15, "erf({x}) = {}, want {want}", erf(x));
        assert!((erf(-x) + want).abs() <= 1e-15, "erf(-{x})");
    }
    assert_eq!(erf(0.0), 0.0);
    assert_eq!(erf(f64::INFINITY), 1.0);
    assert_eq!(erf(f64::NEG_INFINITY), -1.0);
    assert!(erf(f64::NAN).is_nan());
}

fn binary_ops<T: Real>() {
    let a = ft::<T>(&[2, 2], &[1.0, -2.0, 3.0, 0.5]);
    let b = ft::<T>(&[2, 2], &[2.0, 4.0, -1.0, 0.5]);
    let check = |op: BinaryOp, want: &[f64]| {
        assert_floats(&eval(Op::Binary(op), &[a.clone(), b.clone()]), &[2, 2], want);
    };
    check(BinaryOp::Add, &[3.0, 2.0, 2.0, 1.0]);
    check(BinaryOp::Sub, &[-1.0, -6.0, 4.0, 0.0]);
    check(BinaryOp::Mul, &[2.0, -8.0, -3.0, 0.25]);
    check(BinaryOp::Div, &[0.5, -0.5, -3.0, 1.0]);
    check(BinaryOp::Max, &[2.0, 4.0, 3.0, 0.5]);
    check(BinaryOp::Min, &[1.0, -2.0, -1.0, 0.5]);
    // Division by zero and NaN propagation through max/min.
    let c = ft::<T>(&[3], &[1.0, f64::NAN, -1.0]);
    let d = ft::<T>(&[3], &[0.0, 1.0, 0.0]);
    assert_floats(
        &eval(Op::Binary(BinaryOp::Div), &[c.clone(), d.clone()]),
        &[3],
        &[f64::INFINITY, f64::NAN, f64::NEG_INFINITY],
    );
    assert_floats(&eval(Op::Binary(BinaryOp::Max), &[c.clone(), d.clone()]), &[3], &[1.0, f64::NAN, 0.0]);
    assert_floats(&eval(Op::Binary(BinaryOp::Min), &[c, d]), &[3], &[0.0, f64::NAN, -1.0]);
}

fn compare_ops<T: Real>() {
    let a = ft::<T>(&[4], &[1.0, 2.0, 3.0, f64::NAN]);
    let b = ft::<T>(&[4], &[2.0, 2.0, 2.0, f64::NAN]);
    let table: [(CmpOp, [bool; 4]); 6] = [
        (CmpOp::Lt, [true, false, false, false]),
        (CmpOp::Le, [true, true, false, false]),
        (CmpOp::Gt, [false, false, true, false]),
        (CmpOp::Ge, [false, true, true, false]),
        (CmpOp::Eq, [false, true, false, false]),
        (CmpOp::Ne, [true, false, true, true]),
    ];
    for (op, want) in table {
        assert_bools(&eval(Op::Compare(op), &[a.clone(), b.clone()]), &[4], &want);
    }
    let i = it::<T>(&[3], &[-1, 0, 5]);
    let j = it::<T>(&[3], &[0, 0, 4]);
    assert_bools(&eval(Op::Compare(CmpOp::Lt), &[i.clone(), j.clone()]), &[3], &[true, false, false]);
    assert_bools(&eval(Op::Compare(CmpOp::Eq), &[i, j]), &[3], &[false, true, false]);
    let p = bt::<T>(&[2], &[false, true]);
    let q = bt::<T>(&[2], &[true, true]);
    assert_bools(&eval(Op::Compare(CmpOp::Lt), &[p.clone(), q.clone()]), &[2], &[true, false]);
    assert_bools(&eval(Op::Compare(CmpOp::Ne), &[p, q]), &[2], &[true, false]);
}

fn select_op<T: Real>() {
    let cond = bt::<T>(&[2, 2], &[true, false, false, true]);
    let a = ft::<T>(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = ft::<T>(&[2, 2], &[-1.0, -2.0, -3.0, -4.0]);
    assert_floats(&eval(Op::Select, &[cond.clone(), a, b]), &[2, 2], &[1.0, -2.0, -3.0, 4.0]);
    let i = it::<T>(&[2, 2], &[1, 2, 3, 4]);
    let j = it::<T>(&[2, 2], &[0, 0, 0, 0]);
    assert_ints(&eval(Op::Select, &[cond, i, j]), &[2, 2], &[1, 0, 0, 4]);
}

fn cast_op<T: Real>() {
    let x = ft::<T>(&[7], &[-2.7, -1.0, -0.5, 0.0, 0.5, 2.9, 3.0]);
    assert_ints(&eval(Op::Cast { to: DType::I32 }, one(&x)), &[7], &[-2, -1, 0, 0, 0, 2, 3]);
    assert_bools(
        &eval(Op::Cast { to: DType::Bool }, one(&x)),
        &[7],
        &[true, true, true, false, true, true, true],
    );
    assert_floats(&eval(Op::Cast { to: DType::F32 }, &[x]), &[7], &[-2.7, -1.0, -0.5, 0.0, 0.5, 2.9, 3.0]);
    let i = it::<T>(&[3], &[-3, 0, 7]);
    assert_floats(&eval(Op::Cast { to: DType::F32 }, one(&i)), &[3], &[-3.0, 0.0, 7.0]);
    assert_bools(&eval(Op::Cast { to: DType::Bool }, one(&i)), &[3], &[true, false, true]);
    assert_ints(&eval(Op::Cast { to: DType::I32 }, &[i]), &[3], &[-3, 0, 7]);
    let b = bt::<T>(&[2], &[true, false]);
    assert_floats(&eval(Op::Cast { to: DType::F32 }, one(&b)), &[2], &[1.0, 0.0]);
    assert_ints(&eval(Op::Cast { to: DType::I32 }, one(&b)), &[2], &[1, 0]);
    assert_bools(&eval(Op::Cast { to: DType::Bool }, &[b]), &[2], &[true, false]);
}

fn constants<T: Real>() {
    let mut g = Graph::new("c", Mode::Infer);
    let f = g.constant(2.5, DType::F32, Loc::NONE);
    let i = g.constant(3.0, DType::I32, Loc::NONE);
    let b = g.constant(1.0, DType::Bool, Loc::NONE);
    g.output(OutputKind::Other, "f", f);
    g.output(OutputKind::Other, "i", i);
    g.output(OutputKind::Other, "b", b);
    let out = run::<T>(&g, &HashMap::new()).expect("runs");
    assert_eq!(out.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["f", "i", "b"]);
    assert_floats(&out[0].1, &[], &[2.5]);
    assert_ints(&out[1].1, &[], &[3]);
    assert_bools(&out[2].1, &[], &[true]);
}

// ---------------------------------------------------------------- structural

fn broadcast_edge_cases<T: Real>() {
    let to = |dims: &[usize]| Op::Broadcast { shape: Shape::known(dims) };
    // Scalar to a tensor.
    assert_floats(&eval(to(&[2, 3]), &[ft::<T>(&[], &[7.0])]), &[2, 3], &[7.0; 6]);
    // Rank extension: [3] -> [2, 3].
    assert_floats(
        &eval(to(&[2, 3]), &[ft::<T>(&[3], &[1.0, 2.0, 3.0])]),
        &[2, 3],
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
    );
    // Size-1 expansion in a middle axis: [2, 1, 2] -> [2, 3, 2].
    assert_floats(
        &eval(to(&[2, 3, 2]), &[ft::<T>(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0])]),
        &[2, 3, 2],
        &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 3.0, 4.0],
    );
    // Rank extension and expansion together: [2, 1] -> [2, 2, 3].
    assert_floats(
        &eval(to(&[2, 2, 3]), &[ft::<T>(&[2, 1], &[1.0, 2.0])]),
        &[2, 2, 3],
        &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0],
    );
    // Identity.
    assert_floats(
        &eval(to(&[2, 2]), &[ft::<T>(&[2, 2], &[1.0, 2.0, 3.0, 4.0])]),
        &[2, 2],
        &[1.0, 2.0, 3.0, 4.0],
    );
    // i32 and bool operands.
    assert_ints(&eval(to(&[2, 2]), &[it::<T>(&[2, 1], &[5, 6])]), &[2, 2], &[5, 5, 6, 6]);
    assert_bools(&eval(to(&[3]), &[bt::<T>(&[1], &[true])]), &[3], &[true; 3]);
}

/// `broadcast` to `[B, 3]`, with B bound at run time from another input.
fn broadcast_symbolic<T: Real>() {
    let b_dim = || Shape(vec![Dim::Sym("B".into()), Dim::Known(3)]);
    let mut g = Graph::new("bcast", Mode::Infer);
    let x = g.input("x", InputKind::Data, Type::f32(b_dim()), Loc::NONE);
    let bias = g.input("bias", InputKind::Data, Type::f32(Shape::known(&[3])), Loc::NONE);
    let bb = g.add(Op::Broadcast { shape: b_dim() }, &[bias], Loc::NONE).expect("types");
    let y = g.add(Op::Binary(BinaryOp::Add), &[x, bb], Loc::NONE).expect("types");
    g.output(OutputKind::Prediction, "y", y);
    for batch in [1usize, 2, 4] {
        let inputs = HashMap::from([
            ("x".to_string(), arange::<T>(&[batch, 3])),
            ("bias".to_string(), ft::<T>(&[3], &[10.0, 20.0, 30.0])),
        ]);
        let out = run(&g, &inputs).expect("runs");
        let want: Vec<f64> = (0..batch * 3).map(|i| i as f64 + 10.0 * (i % 3 + 1) as f64).collect();
        assert_floats(&out[0].1, &[batch, 3], &want);
    }
}

fn reshape_op<T: Real>() {
    let x = arange::<T>(&[2, 3]);
    let to = |dims: &[usize]| Op::Reshape { shape: Shape::known(dims) };
    assert_floats(&eval(to(&[3, 2]), one(&x)), &[3, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_floats(&eval(to(&[6]), one(&x)), &[6], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_floats(&eval(to(&[]), &[ft::<T>(&[1, 1], &[9.0])]), &[], &[9.0]);
    // Reshaping a permuted value reads it in its logical (row-major) order.
    let t = eval(Op::Permute { axes: vec![1, 0] }, &[x]);
    assert_floats(&eval(to(&[6]), &[t]), &[6], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    // Symbolic: [B, 6] -> [B, 2, 3].
    let sym = |tail: &[usize]| {
        let mut d = vec![Dim::Sym("B".into())];
        d.extend(tail.iter().map(|&n| Dim::Known(n)));
        Shape(d)
    };
    let mut g = Graph::new("reshape", Mode::Infer);
    let xi = g.input("x", InputKind::Data, Type::f32(sym(&[6])), Loc::NONE);
    let r = g.add(Op::Reshape { shape: sym(&[2, 3]) }, &[xi], Loc::NONE).expect("types");
    g.output(OutputKind::Other, "r", r);
    let out = run(&g, &HashMap::from([("x".to_string(), arange::<T>(&[2, 6]))])).expect("runs");
    assert_floats(&out[0].1, &[2, 2, 3], &(0..12).map(f64::from).collect::<Vec<_>>());
}

fn permute_op<T: Real>() {
    assert_floats(
        &eval(Op::Permute { axes: vec![1, 0] }, &[arange::<T>(&[2, 3])]),
        &[3, 2],
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
    );
    // [2, 3, 4] with axes [2, 0, 1]: r[k][i][j] = x[i][j][k] = 12i + 4j + k.
    let r = eval(Op::Permute { axes: vec![2, 0, 1] }, &[arange::<T>(&[2, 3, 4])]);
    let mut want = vec![];
    for k in 0..4 {
        for i in 0..2 {
            for j in 0..3 {
                want.push(f64::from(12 * i + 4 * j + k));
            }
        }
    }
    assert_floats(&r, &[4, 2, 3], &want);
    assert_ints(&eval(Op::Permute { axes: vec![1, 0] }, &[it::<T>(&[1, 2], &[1, 2])]), &[2, 1], &[1, 2]);
}

fn slice_op<T: Real>() {
    let x = arange::<T>(&[2, 4]);
    let s = |axis, start, end| Op::Slice { axis, start, end };
    assert_floats(&eval(s(1, 1, 3), one(&x)), &[2, 2], &[1.0, 2.0, 5.0, 6.0]);
    assert_floats(&eval(s(0, 1, 2), one(&x)), &[1, 4], &[4.0, 5.0, 6.0, 7.0]);
    assert_floats(&eval(s(1, 2, 2), &[x]), &[2, 0], &[]);
    assert_bools(&eval(s(0, 1, 3), &[bt::<T>(&[3], &[true, false, true])]), &[2], &[false, true]);
}

fn pad_op<T: Real>() {
    let x = ft::<T>(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_floats(
        &eval(Op::Pad { axis: 0, lo: 1, hi: 2 }, one(&x)),
        &[5, 2],
        &[0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
    );
    assert_floats(&eval(Op::Pad { axis: 1, lo: 0, hi: 1 }, &[x]), &[2, 3], &[1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
    assert_ints(&eval(Op::Pad { axis: 0, lo: 2, hi: 0 }, &[it::<T>(&[1], &[7])]), &[3], &[0, 0, 7]);
    assert_bools(
        &eval(Op::Pad { axis: 0, lo: 1, hi: 1 }, &[bt::<T>(&[1], &[true])]),
        &[3],
        &[false, true, false],
    );
}

fn concat_op<T: Real>() {
    let a = ft::<T>(&[2, 1], &[1.0, 2.0]);
    let b = ft::<T>(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
    let c = ft::<T>(&[2, 3], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_floats(
        &eval(Op::Concat { axis: 1 }, &[a, b, c]),
        &[2, 6],
        &[1.0, 3.0, 4.0, 7.0, 8.0, 9.0, 2.0, 5.0, 6.0, 10.0, 11.0, 12.0],
    );
    let p = ft::<T>(&[1, 2], &[1.0, 2.0]);
    let q = ft::<T>(&[0, 2], &[]);
    let r = ft::<T>(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
    assert_floats(&eval(Op::Concat { axis: 0 }, &[p, q, r]), &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let i = it::<T>(&[1], &[1]);
    assert_ints(&eval(Op::Concat { axis: 0 }, &[i.clone(), it(&[2], &[2, 3]), i]), &[4], &[1, 2, 3, 1]);
}

// ---------------------------------------------------------------- reductions

fn reduce_sum_op<T: Real>() {
    // x[i][j][k] = 12i + 4j + k.
    let x = arange::<T>(&[2, 3, 4]);
    let sum = |axes: Vec<usize>| eval(Op::ReduceSum { axes }, one(&x));
    // Σ_j = 36i + 12 + 3k.
    assert_floats(&sum(vec![1]), &[2, 4], &[12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0]);
    // Σ_{i,k} = 60 + 32j.
    assert_floats(&sum(vec![0, 2]), &[3], &[60.0, 92.0, 124.0]);
    assert_floats(&sum(vec![0, 1, 2]), &[], &[276.0]);
    assert_floats(&sum(vec![]), &[2, 3, 4], &(0..24).map(f64::from).collect::<Vec<_>>());
    // An empty axis sums to zero.
    assert_floats(&eval(Op::ReduceSum { axes: vec![1] }, &[ft::<T>(&[2, 0], &[])]), &[2], &[0.0, 0.0]);
}

fn reduce_max_op<T: Real>() {
    // x[i][j][k] = -(12i + 4j + k): all non-positive, so a zero initial value would be wrong.
    let x = ft::<T>(&[2, 3, 4], &(0..24).map(|v| -f64::from(v)).collect::<Vec<_>>());
    let max = |axes: Vec<usize>| eval(Op::ReduceMax { axes }, one(&x));
    assert_floats(&max(vec![1]), &[2, 4], &[0.0, -1.0, -2.0, -3.0, -12.0, -13.0, -14.0, -15.0]);
    assert_floats(&max(vec![0, 2]), &[3], &[0.0, -4.0, -8.0]);
    assert_floats(&max(vec![0, 1, 2]), &[], &[0.0]);
    let y = ft::<T>(&[2, 2], &[-5.0, -3.0, -7.0, f64::NAN]);
    assert_floats(&eval(Op::ReduceMax { axes: vec![1] }, &[y]), &[2], &[-3.0, f64::NAN]);
    assert_floats(&eval(Op::ReduceMax { axes: vec![0] }, &[ft::<T>(&[0], &[])]), &[], &[f64::NEG_INFINITY]);
}

fn argmax_ties<T: Real>() {
    let x = ft::<T>(&[3, 3], &[1.0, 3.0, 3.0, 2.0, 2.0, 1.0, 0.0, 0.0, 0.0]);
    assert_ints(&eval(Op::ArgMax { axis: 1 }, one(&x)), &[3], &[1, 0, 0]);
    assert_ints(&eval(Op::ArgMax { axis: 0 }, &[x]), &[3], &[1, 0, 0]);
    let neg = ft::<T>(&[4], &[-3.0, -1.0, -2.0, -1.0]);
    assert_ints(&eval(Op::ArgMax { axis: 0 }, &[neg]), &[], &[1]);
    // An empty axis has no maximum.
    assert!(try_eval(Op::ArgMax { axis: 1 }, &[ft::<T>(&[2, 0], &[])]).is_err());
}

fn size_op<T: Real>() {
    let b34 = Shape(vec![Dim::Sym("B".into()), Dim::Known(3), Dim::Known(4)]);
    let mut g = Graph::new("size", Mode::Infer);
    let x = g.input("x", InputKind::Data, Type::f32(b34.clone()), Loc::NONE);
    let m = g.input("m", InputKind::Data, Type::new(DType::Bool, b34), Loc::NONE);
    for (name, axes, v) in
        [("b", vec![0], x), ("hw", vec![1, 2], x), ("none", vec![], x), ("all", vec![0, 1, 2], m)]
    {
        let s = g.add(Op::Size { axes }, &[v], Loc::NONE).expect("types");
        g.output(OutputKind::Other, name, s);
    }
    let inputs = HashMap::from([
        ("x".to_string(), arange::<T>(&[2, 3, 4])),
        ("m".to_string(), bt::<T>(&[2, 3, 4], &[true; 24])),
    ]);
    let out = run(&g, &inputs).expect("runs");
    for ((_, t), want) in out.iter().zip([2.0, 12.0, 1.0, 24.0]) {
        assert_floats(t, &[], &[want]);
    }
}

fn matmul_2d<T: Real>() {
    let a = ft::<T>(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = ft::<T>(&[2, 3], &[1.0, 0.0, 2.0, 0.0, 1.0, 3.0]);
    assert_floats(&eval(Op::MatMul, &[a, b]), &[3, 3], &[1.0, 2.0, 8.0, 3.0, 4.0, 18.0, 5.0, 6.0, 28.0]);
}

fn matmul_batched<T: Real>() {
    // Batch 0: [[1,2],[3,4]] · [1,1]ᵀ; batch 1: [[5,6],[7,8]] · [1,-1]ᵀ.
    let a = ft::<T>(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let b = ft::<T>(&[2, 2, 1], &[1.0, 1.0, 1.0, -1.0]);
    assert_floats(&eval(Op::MatMul, &[a, b]), &[2, 2, 1], &[3.0, 7.0, -1.0, -1.0]);
    // Two batch axes, [1, 2, 1, 2] x [1, 2, 2, 2].
    let a = ft::<T>(&[1, 2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = ft::<T>(&[1, 2, 2, 2], &[1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0]);
    assert_floats(&eval(Op::MatMul, &[a, b]), &[1, 2, 1, 2], &[1.0, 2.0, 6.0, 8.0]);
}

// ---------------------------------------------------------------- windows

fn conv_op(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> Op {
    Op::Conv(conv_attrs(stride, padding, dilation, groups))
}

fn conv_attrs(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> ConvAttrs {
    ConvAttrs { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
}

fn conv_1d<T: Real>() {
    // y[i] = x[i] - x[i + 2·dilation], on two batch elements.
    let x = ft::<T>(&[2, 1, 5], &[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 4.0, 9.0, 16.0, 25.0]);
    let w = ft::<T>(&[1, 1, 3], &[1.0, 0.0, -1.0]);
    assert_floats(
        &eval(conv_op(&[1], &[(0, 0)], &[1], 1), &[x.clone(), w.clone()]),
        &[2, 1, 3],
        &[-2.0, -2.0, -2.0, -8.0, -12.0, -16.0],
    );
    // Stride 2 and asymmetric padding (1, 2): padded [0,1,2,3,4,5,0,0], windows at 0, 2, 4.
    assert_floats(
        &eval(conv_op(&[2], &[(1, 2)], &[1], 1), &[x.clone(), w.clone()]),
        &[2, 1, 3],
        &[-2.0, -2.0, 4.0, -4.0, -12.0, 16.0],
    );
    // Dilation 2: taps at 0, 2, 4.
    assert_floats(&eval(conv_op(&[1], &[(0, 0)], &[2], 1), &[x, w]), &[2, 1, 1], &[-4.0, -24.0]);
}

fn conv_2d<T: Real>() {
    // 3x3 input 1..9, 2x2 kernel of ones, padding H (1, 0), W (0, 1), stride 2:
    // windows cover rows {-1,0}/{1,2} and columns {0,1}/{2,3} (row -1 and column 3 are padding).
    let x = ft::<T>(&[1, 1, 3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let w = ft::<T>(&[1, 1, 2, 2], &[1.0; 4]);
    assert_floats(
        &eval(conv_op(&[2, 2], &[(1, 0), (0, 1)], &[1, 1], 1), &[x.clone(), w]),
        &[1, 1, 2, 2],
        &[3.0, 3.0, 24.0, 15.0],
    );
    // Two output channels: a 2x2 box sum and the diagonal difference x[i][j] - x[i+1][j+1].
    let w2 = ft::<T>(&[2, 1, 2, 2], &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, -1.0]);
    assert_floats(
        &eval(conv_op(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1), &[x.clone(), w2]),
        &[1, 2, 2, 2],
        &[12.0, 16.0, 24.0, 28.0, -4.0, -4.0, -4.0, -4.0],
    );
    // Dilation (2, 1) with a 2x1 kernel [1, -1]: x[i][j] - x[i+2][j].
    let w3 = ft::<T>(&[1, 1, 2, 1], &[1.0, -1.0]);
    assert_floats(
        &eval(conv_op(&[1, 1], &[(0, 0), (0, 0)], &[2, 1], 1), &[x, w3]),
        &[1, 1, 1, 3],
        &[-6.0, -6.0, -6.0],
    );
}

fn conv_2d_groups<T: Real>() {
    // Channel 0 = 1..4, channel 1 = 10..40; 1x1 kernels; two groups of two output channels.
    let x = ft::<T>(&[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]);
    let w = ft::<T>(&[4, 1, 1, 1], &[2.0, 3.0, -1.0, 0.5]);
    assert_floats(
        &eval(conv_op(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 2), &[x.clone(), w]),
        &[1, 4, 2, 2],
        &[2.0, 4.0, 6.0, 8.0, 3.0, 6.0, 9.0, 12.0, -10.0, -20.0, -30.0, -40.0, 5.0, 10.0, 15.0, 20.0],
    );
    // One group: each output channel mixes both input channels.
    let w1 = ft::<T>(&[1, 2, 1, 1], &[1.0, -1.0]);
    assert_floats(
        &eval(conv_op(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1), &[x, w1]),
        &[1, 1, 2, 2],
        &[-9.0, -18.0, -27.0, -36.0],
    );
}

fn conv_3d<T: Real>() {
    // 2x2x2 input 1..8 (depth planes [1,2,3,4] and [5,6,7,8]).
    let x = ft::<T>(&[1, 1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let ones = ft::<T>(&[1, 1, 2, 2, 2], &[1.0; 8]);
    assert_floats(
        &eval(conv_op(&[1; 3], &[(0, 0); 3], &[1; 3], 1), &[x.clone(), ones]),
        &[1, 1, 1, 1, 1],
        &[36.0],
    );
    // A 2x1x1 kernel of ones with depth padding (1, 1): plane0, plane0 + plane1, plane1.
    let depth = ft::<T>(&[1, 1, 2, 1, 1], &[1.0, 1.0]);
    assert_floats(
        &eval(conv_op(&[1; 3], &[(1, 1), (0, 0), (0, 0)], &[1; 3], 1), &[x, depth]),
        &[1, 1, 3, 2, 2],
        &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 5.0, 6.0, 7.0, 8.0],
    );
}

fn conv_transpose_op(
    stride: &[usize],
    padding: &[(usize, usize)],
    output_padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Op {
    Op::ConvTranspose {
        conv: conv_attrs(stride, padding, dilation, groups),
        output_padding: output_padding.to_vec(),
    }
}

fn conv_transpose_hand<T: Real>() {
    // x = [1, 2], kernel [1, 1, 1], stride 2: x0 lands on 0..3, x1 on 2..5.
    let x = ft::<T>(&[1, 1, 2], &[1.0, 2.0]);
    let w = ft::<T>(&[1, 1, 3], &[1.0, 1.0, 1.0]);
    let run_ct = |padding: (usize, usize), output_padding: usize| {
        eval(conv_transpose_op(&[2], &[padding], &[output_padding], &[1], 1), &[x.clone(), w.clone()])
    };
    assert_floats(&run_ct((0, 0), 0), &[1, 1, 5], &[1.0, 1.0, 3.0, 2.0, 2.0]);
    assert_floats(&run_ct((1, 0), 0), &[1, 1, 4], &[1.0, 3.0, 2.0, 2.0]);
    assert_floats(&run_ct((1, 1), 0), &[1, 1, 3], &[1.0, 3.0, 2.0]);
    assert_floats(&run_ct((0, 0), 1), &[1, 1, 6], &[1.0, 1.0, 3.0, 2.0, 2.0, 0.0]);
    // Kernel [1, 10] with dilation 2, stride 1: y[i] += x[i], y[i + 2] += 10 x[i].
    let w2 = ft::<T>(&[1, 1, 2], &[1.0, 10.0]);
    assert_floats(
        &eval(conv_transpose_op(&[1], &[(0, 0)], &[0], &[2], 1), &[x.clone(), w2]),
        &[1, 1, 4],
        &[1.0, 2.0, 10.0, 20.0],
    );
    // Groups: weight [C, O/groups, K] = [2, 1, 1]; channel c feeds output channel c only.
    let x2 = ft::<T>(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let w3 = ft::<T>(&[2, 1, 1], &[2.0, -1.0]);
    assert_floats(
        &eval(conv_transpose_op(&[1], &[(0, 0)], &[0], &[1], 2), &[x2, w3]),
        &[1, 2, 2],
        &[2.0, 4.0, -3.0, -4.0],
    );
}

fn dot<T: Real>(a: &Tensor<T>, b: &Tensor<T>) -> f64 {
    let (a, b) = (a.as_float().expect("float"), b.as_float().expect("float"));
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b.iter()).map(|(x, y)| x.as_f64() * y.as_f64()).sum()
}

/// `<conv(x, w), y> = <x, conv_transpose(y, w)>` with the same geometry, for
/// 1-, 2- and 3-d convolutions with stride 2, asymmetric padding, dilation
/// and groups; output_padding recovers the input size where stride 2 loses it.
fn conv_transpose_adjoint<T: Real>() {
    struct Case {
        x: Vec<usize>,
        w: Vec<usize>,
        stride: Vec<usize>,
        padding: Vec<(usize, usize)>,
        dilation: Vec<usize>,
        groups: usize,
    }
    let cases = [
        Case {
            x: vec![2, 2, 7],
            w: vec![4, 2, 3],
            stride: vec![2],
            padding: vec![(1, 0)],
            dilation: vec![1],
            groups: 1,
        },
        Case {
            x: vec![1, 4, 6, 7],
            w: vec![6, 2, 3, 2],
            stride: vec![2, 2],
            padding: vec![(1, 2), (0, 1)],
            dilation: vec![1, 2],
            groups: 2,
        },
        Case {
            x: vec![1, 2, 5, 4, 3],
            w: vec![2, 1, 2, 2, 2],
            stride: vec![2, 1, 2],
            padding: vec![(0, 1), (1, 1), (1, 0)],
            dilation: vec![1, 1, 2],
            groups: 2,
        },
    ];
    for (n, c) in cases.iter().enumerate() {
        let x = noise::<T>(&c.x, 1);
        let w = noise::<T>(&c.w, 2);
        let fwd = eval(conv_op(&c.stride, &c.padding, &c.dilation, c.groups), &[x.clone(), w.clone()]);
        let y = noise::<T>(fwd.shape(), 3);
        // Choose output_padding so that conv_transpose gives back the input's spatial size.
        let output_padding: Vec<usize> = (0..c.stride.len())
            .map(|d| {
                let s_out = fwd.shape()[2 + d];
                let full = (s_out - 1) * c.stride[d] + c.dilation[d] * (c.w[2 + d] - 1) + 1;
                c.x[2 + d] + c.padding[d].0 + c.padding[d].1 - full
            })
            .collect();
        assert!(output_padding.iter().any(|&p| p > 0) || n == 2, "case {n} should exercise output_padding");
        let back = eval(
            conv_transpose_op(&c.stride, &c.padding, &output_padding, &c.dilation, c.groups),
            &[y.clone(), w],
        );
        assert_eq!(back.shape(), x.shape(), "case {n}");
        let (lhs, rhs) = (dot(&fwd, &y), dot(&x, &back));
        let tol = if is_f32::<T>() { 1e-4 } else { 1e-12 };
        assert!((lhs - rhs).abs() <= tol * lhs.abs().max(1.0), "case {n}: {lhs} vs {rhs}");
    }
}

fn pool_op(kind: PoolKind, window: &[usize], stride: &[usize], padding: &[(usize, usize)]) -> Op {
    Op::Pool(WindowAttrs {
        kind,
        window: window.to_vec(),
        stride: stride.to_vec(),
        padding: padding.to_vec(),
    })
}

fn maxpool<T: Real>() {
    let x = ft::<T>(&[1, 1, 4, 4], &(1..=16).map(f64::from).collect::<Vec<_>>());
    assert_floats(
        &eval(pool_op(PoolKind::Max, &[2, 2], &[2, 2], &[(0, 0); 2]), &[x]),
        &[1, 1, 2, 2],
        &[6.0, 8.0, 14.0, 16.0],
    );
    // Padding never wins a max, even over negative values: windows {pad, -1} and {-2, -3}.
    let neg = ft::<T>(&[1, 1, 3], &[-1.0, -2.0, -3.0]);
    assert_floats(&eval(pool_op(PoolKind::Max, &[2], &[2], &[(1, 1)]), &[neg]), &[1, 1, 2], &[-1.0, -2.0]);
    // Overlapping 1-d windows on two channels.
    let x2 = ft::<T>(&[1, 2, 4], &[1.0, 3.0, 2.0, 0.0, -1.0, -5.0, -2.0, -4.0]);
    assert_floats(
        &eval(pool_op(PoolKind::Max, &[2], &[1], &[(0, 0)]), &[x2]),
        &[1, 2, 3],
        &[3.0, 3.0, 2.0, -1.0, -2.0, -2.0],
    );
}

fn avgpool<T: Real>() {
    // Padded positions count as zeros and the divisor is the full window.
    let neg = ft::<T>(&[1, 1, 3], &[-1.0, -2.0, -3.0]);
    assert_floats(&eval(pool_op(PoolKind::Avg, &[2], &[2], &[(1, 1)]), &[neg]), &[1, 1, 2], &[-0.5, -2.5]);
    // 3x3 input 1..9, 3x3 window, stride 1, padding 1: corners sum 4 values, the centre all 9.
    let x = ft::<T>(&[1, 1, 3, 3], &(1..=9).map(f64::from).collect::<Vec<_>>());
    assert_floats(
        &eval(pool_op(PoolKind::Avg, &[3, 3], &[1, 1], &[(1, 1); 2]), &[x]),
        &[1, 1, 3, 3],
        &[
            12.0 / 9.0,
            21.0 / 9.0,
            16.0 / 9.0,
            27.0 / 9.0,
            45.0 / 9.0,
            33.0 / 9.0,
            24.0 / 9.0,
            39.0 / 9.0,
            28.0 / 9.0,
        ],
    );
    // 3-d global average.
    let x3 = ft::<T>(&[1, 1, 2, 2, 2], &(1..=8).map(f64::from).collect::<Vec<_>>());
    assert_floats(
        &eval(pool_op(PoolKind::Avg, &[2; 3], &[1; 3], &[(0, 0); 3]), &[x3]),
        &[1, 1, 1, 1, 1],
        &[4.5],
    );
}

/// PyTorch: `F.interpolate(tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode="bilinear", align_corners=False)`.
fn resize_up_2d<T: Real>() {
    let x = ft::<T>(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_floats(
        &eval(Op::Resize { size: vec![4, 4] }, &[x]),
        &[1, 1, 4, 4],
        &[
            1.0, 1.25, 1.75, 2.0, //
            1.5, 1.75, 2.25, 2.5, //
            2.5, 2.75, 3.25, 3.5, //
            3.0, 3.25, 3.75, 4.0,
        ],
    );
}

fn resize_1d<T: Real>() {
    // Downsampling 4 -> 2 averages neighbours (source coordinates 0.5 and 2.5).
    let x = ft::<T>(&[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
    assert_floats(&eval(Op::Resize { size: vec![2] }, &[x]), &[1, 1, 2], &[1.5, 3.5]);
    // 3 -> 5: source coordinates max(0, -0.2), 0.4, 1.0, 1.6, 2.2 (clamped to the last sample).
    let y = ft::<T>(&[1, 1, 3], &[0.0, 10.0, 20.0]);
    assert_floats(&eval(Op::Resize { size: vec![5] }, &[y]), &[1, 1, 5], &[0.0, 4.0, 10.0, 16.0, 20.0]);
}

fn resize_3d_identity<T: Real>() {
    let x = noise::<T>(&[2, 1, 2, 3, 2], 4);
    let want: Vec<f64> = x.as_float().expect("float").iter().map(|v| v.as_f64()).collect();
    assert_floats(&eval(Op::Resize { size: vec![2, 3, 2] }, &[x]), &[2, 1, 2, 3, 2], &want);
    // 1x1x1 -> 2x2x2 replicates.
    let one = ft::<T>(&[1, 1, 1, 1, 1], &[5.0]);
    assert_floats(&eval(Op::Resize { size: vec![2, 2, 2] }, &[one]), &[1, 1, 2, 2, 2], &[5.0; 8]);
}

// ---------------------------------------------------------------- labels and randomness

fn one_hot_op<T: Real>() {
    let labels = it::<T>(&[2, 2], &[0, 2, 3, -1]);
    assert_floats(
        &eval(Op::OneHot { classes: 3 }, &[labels]),
        &[2, 2, 3],
        &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    );
}

fn rng_uniform_op<T: Real>() {
    let mut g = Graph::new("rng", Mode::Train);
    let bx = Shape(vec![Dim::Sym("B".into()), Dim::Known(3)]);
    let x = g.input("x", InputKind::Data, Type::f32(bx.clone()), Loc::NONE);
    let key = g.input("key", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
    let u = g.add(Op::RngUniform { shape: bx, stream: 7 }, &[key], Loc::NONE).expect("types");
    let v = g.add(Op::RngUniform { shape: Shape::known(&[3]), stream: 8 }, &[key], Loc::NONE).expect("types");
    g.output(OutputKind::Other, "u", u);
    g.output(OutputKind::Other, "v", v);
    g.output(OutputKind::Other, "x", x);
    let inputs =
        HashMap::from([("x".to_string(), arange::<T>(&[2, 3])), ("key".to_string(), it::<T>(&[2], &[3, 4]))]);
    let out = run(&g, &inputs).expect("runs");
    let want = |stream, n| (0..n).map(|i| f64::from(rng::uniform([3, 4], stream, i))).collect::<Vec<_>>();
    assert_floats(&out[0].1, &[2, 3], &want(7, 6));
    assert_floats(&out[1].1, &[3], &want(8, 3));
    let all: Vec<f64> = want(7, 6);
    assert!(all.iter().all(|u| (0.0..1.0).contains(u)));
}

/// `run_all` returns every node's value, inputs included, indexed by ValueId.
fn run_all_values<T: Real>() {
    let mut g = Graph::new("all", Mode::Infer);
    let x = g.input("x", InputKind::Data, Type::f32(Shape::known(&[2])), Loc::NONE);
    let n = g.add(Op::Unary(UnaryOp::Neg), &[x], Loc::NONE).expect("types");
    let s = g.add(Op::ReduceSum { axes: vec![0] }, &[n], Loc::NONE).expect("types");
    g.output(OutputKind::Loss, "loss", s);
    let values = run_all(&g, &HashMap::from([("x".to_string(), ft::<T>(&[2], &[1.0, 2.0]))])).expect("runs");
    assert_eq!(values.len(), 3);
    assert_floats(&values[0], &[2], &[1.0, 2.0]);
    assert_floats(&values[1], &[2], &[-1.0, -2.0]);
    assert_floats(&values[2], &[], &[-3.0]);
}

// ---------------------------------------------------------------- errors

/// x: f32[B, 3], y: f32[B], output x.
fn two_input_graph() -> Graph {
    let mut g = Graph::new("errors", Mode::Infer);
    let b = || Dim::Sym("B".into());
    let x = g.input("x", InputKind::Data, Type::f32(Shape(vec![b(), Dim::Known(3)])), Loc::NONE);
    g.input("y", InputKind::Data, Type::f32(Shape(vec![b()])), Loc::NONE);
    g.output(OutputKind::Prediction, "x", x);
    g
}

fn error_of(g: &Graph, inputs: &[(&str, Tensor<f64>)]) -> InterpError {
    let inputs: HashMap<String, Tensor<f64>> =
        inputs.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
    match run(g, &inputs) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn wrong_input_shape_is_an_error() {
    let g = two_input_graph();
    let e = error_of(&g, &[("x", arange(&[2, 4])), ("y", arange(&[2]))]);
    assert_eq!(e.value, Some(ValueId(0)));
    assert!(e.message.contains("`x`") && e.message.contains("axis 1") && e.message.contains('4'), "{e}");
    let e = error_of(&g, &[("x", arange(&[2, 3, 1])), ("y", arange(&[2]))]);
    assert!(e.message.contains("`x`"), "{e}");
    let e = error_of(&g, &[("x", arange(&[2, 3])), ("y", it(&[2], &[1, 2]))]);
    assert!(e.message.contains("`y`") && e.message.contains("i32"), "{e}");
}

#[test]
fn inconsistent_symbolic_dim_is_an_error() {
    let g = two_input_graph();
    let e = error_of(&g, &[("x", arange(&[2, 3])), ("y", arange(&[5]))]);
    assert_eq!(e.value, Some(ValueId(1)));
    let text = e.to_string();
    for part in ["`y`", "`x`", "`B`", "5", "2"] {
        assert!(text.contains(part), "{text} should mention {part}");
    }
}

#[test]
fn missing_input_is_an_error() {
    let g = two_input_graph();
    let e = error_of(&g, &[("x", arange(&[2, 3]))]);
    assert_eq!(e.value, Some(ValueId(1)));
    assert!(e.message.contains("missing input `y`"), "{e}");
}

/// Graphs assembled without the builder's checks fail cleanly at run time.
#[test]
fn malformed_graphs_are_errors_not_panics() {
    let f32s = |dims: &[usize]| Type::f32(Shape::known(dims));
    let node = |op: Op, args: Vec<ValueId>, ty: Type| Node {
        op,
        args,
        ty,
        loc: Loc::NONE,
        span: None,
        grad_of: None,
    };
    let inputs = HashMap::from([("x".to_string(), arange::<f64>(&[2, 3]))]);
    let base = || {
        let mut g = Graph::new("bad", Mode::Infer);
        g.input("x", InputKind::Data, f32s(&[2, 3]), Loc::NONE);
        g
    };
    let bad_nodes = [
        // Declared type disagrees with the type rule.
        node(Op::Unary(UnaryOp::Exp), vec![ValueId(0)], f32s(&[3, 2])),
        // Operand defined later (or never).
        node(Op::Unary(UnaryOp::Exp), vec![ValueId(5)], f32s(&[2, 3])),
        // Wrong arity.
        node(Op::Binary(BinaryOp::Add), vec![ValueId(0)], f32s(&[2, 3])),
        // Out-of-range slice and axes.
        node(Op::Slice { axis: 1, start: 2, end: 9 }, vec![ValueId(0)], f32s(&[2, 7])),
        node(Op::ReduceSum { axes: vec![3] }, vec![ValueId(0)], f32s(&[2, 3])),
        node(Op::Permute { axes: vec![0, 0] }, vec![ValueId(0)], f32s(&[2, 2])),
        // Conv whose weight does not fit.
        node(conv_op(&[1], &[(0, 0)], &[1], 1), vec![ValueId(0), ValueId(0)], f32s(&[2, 2, 1])),
        // Symbolic dimension bound by no input.
        node(
            Op::RngUniform { shape: Shape(vec![Dim::Sym("N".into())]), stream: 0 },
            vec![ValueId(0)],
            Type::f32(Shape(vec![Dim::Sym("N".into())])),
        ),
        // A leaf with operands; a non-scalar constant.
        node(Op::Const { value: 1.0 }, vec![ValueId(0)], Type::scalar(DType::F32)),
        node(Op::Const { value: 1.0 }, vec![], f32s(&[2])),
    ];
    for bad in bad_nodes {
        let mut g = base();
        let id = g.push(bad.clone());
        g.output(OutputKind::Other, "r", id);
        match run(&g, &inputs) {
            Ok(_) => panic!("{bad:?} should fail"),
            Err(e) => assert_eq!(e.value, Some(id), "{bad:?}: {e}"),
        }
    }
    // An output naming no node.
    let mut g = base();
    g.output(OutputKind::Other, "r", ValueId(9));
    assert!(run(&g, &inputs).is_err());
}

// ---------------------------------------------------------------- example inputs

fn example_graph() -> Graph {
    let mut g = Graph::new("examples", Mode::Train);
    let b = || Dim::Sym("B".into());
    let param = |role, init| InputKind::Param { role, init };
    g.input("x", InputKind::Data, Type::f32(Shape(vec![b(), Dim::Known(4)])), Loc::NONE);
    g.input("labels", InputKind::Target, Type::new(DType::I32, Shape(vec![b()])), Loc::NONE);
    g.input("y", InputKind::Target, Type::f32(Shape(vec![b(), Dim::Known(2)])), Loc::NONE);
    let ws = Shape::known(&[3, 4]);
    g.input("w", param(ParamRole::Weight, Init::Uniform { bound: 0.5 }), Type::f32(ws), Loc::NONE);
    g.input(
        "n",
        param(ParamRole::Weight, Init::Normal { std: 2.0 }),
        Type::f32(Shape::known(&[4000])),
        Loc::NONE,
    );
    g.input("bias", param(ParamRole::Bias, Init::Zeros), Type::f32(Shape::known(&[3])), Loc::NONE);
    g.input("gamma", param(ParamRole::Scale, Init::Ones), Type::f32(Shape::known(&[3])), Loc::NONE);
    g.input("mean", InputKind::State { init: Init::Zeros }, Type::f32(Shape::known(&[3])), Loc::NONE);
    g.input("var", InputKind::State { init: Init::Ones }, Type::f32(Shape::known(&[3])), Loc::NONE);
    g.input("key", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
    g
}

fn floats_of<T: Real>(m: &HashMap<String, Tensor<T>>, name: &str) -> Vec<f64> {
    m[name].as_float().expect("float").iter().map(|v| v.as_f64()).collect()
}

fn example_inputs_cover_every_kind_in<T: Real>() {
    let g = example_graph();
    let dims = HashMap::from([("B".to_string(), 5)]);
    let ex = example_inputs::<T>(&g, &dims, 42).expect("all dims bound");
    assert_eq!(ex.len(), 10);
    assert_eq!(ex["x"].shape(), &[5, 4]);
    assert!(floats_of(&ex, "x").iter().all(|v| (-1.0..1.0).contains(v)));
    assert!(floats_of(&ex, "y").iter().all(|v| (-1.0..1.0).contains(v)));
    let labels = ex["labels"].as_int().expect("i32");
    assert_eq!(labels.shape(), &[5]);
    assert!(labels.iter().all(|v| *v == 0 || *v == 1));
    assert!(floats_of(&ex, "w").iter().all(|v| (-0.5..0.5).contains(v)));
    let n = floats_of(&ex, "n");
    let mean = n.iter().sum::<f64>() / n.len() as f64;
    let std = (n.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n.len() as f64).sqrt();
    assert!(mean.abs() < 0.15 && (std - 2.0).abs() < 0.1, "normal sample: mean {mean}, std {std}");
    assert_eq!(floats_of(&ex, "bias"), [0.0; 3]);
    assert_eq!(floats_of(&ex, "gamma"), [1.0; 3]);
    assert_eq!(floats_of(&ex, "mean"), [0.0; 3]);
    assert_eq!(floats_of(&ex, "var"), [1.0; 3]);
    assert_eq!(ex["key"].as_int().expect("i32").iter().copied().collect::<Vec<_>>(), [42, 0]);
    // Deterministic in the seed, different across seeds, and runnable.
    assert_eq!(ex, example_inputs::<T>(&g, &dims, 42).expect("bound"));
    assert_ne!(floats_of(&ex, "x"), floats_of(&example_inputs::<T>(&g, &dims, 43).expect("bound"), "x"));
    assert_eq!(run_all(&g, &ex).expect("example inputs fit the graph").len(), 10);
}

#[test]
fn example_inputs_cover_every_kind() {
    example_inputs_cover_every_kind_in::<f32>();
    example_inputs_cover_every_kind_in::<f64>();
    // f32 and f64 example inputs hold the same numbers up to f32 rounding.
    let g = example_graph();
    let dims = HashMap::from([("B".to_string(), 3)]);
    let a = example_inputs::<f32>(&g, &dims, 7).expect("bound");
    let b = example_inputs::<f64>(&g, &dims, 7).expect("bound");
    for name in ["x", "w", "n"] {
        for (p, q) in floats_of(&a, name).iter().zip(floats_of(&b, name)) {
            assert!((p - q).abs() <= 1e-6 * q.abs().max(1.0), "{name}: {p} vs {q}");
        }
    }
}

#[test]
fn example_inputs_need_every_symbol_bound() {
    let e = example_inputs::<f64>(&example_graph(), &HashMap::new(), 0).expect_err("B is unbound");
    assert!(e.message.contains("`B`"), "{e}");
}

// ---------------------------------------------------------------- sin, cos, gather, scatter, stop_gradient

/// One `#[test]` per generic case, run in f32 and then in f64 (like
/// `both!`, for the cases below).
macro_rules! both_index {
    ($($name:ident),* $(,)?) => {
        mod index_cases {
            $(
                #[test]
                fn $name() {
                    super::$name::<f32>();
                    super::$name::<f64>();
                }
            )*
        }
    };
}

both_index!(
    sin_cos_ops,
    gather_op,
    scatter_sum_op,
    scatter_max_op,
    scatter_max_grad_op,
    stop_gradient_op,
    constant_inputs_are_fed_by_name,
);

fn sin_cos_ops<T: Real>() {
    let x = ft::<T>(&[6], &[-2.0, -0.5, 0.0, 0.5, 2.0, 100.0]);
    assert_floats(
        &eval(Op::Unary(UnaryOp::Sin), one(&x)),
        &[6],
        &[
            -0.9092974268256817,
            -0.479425538604203,
            0.0,
            0.479425538604203,
            0.9092974268256817,
            -0.5063656411097588,
        ],
    );
    assert_floats(
        &eval(Op::Unary(UnaryOp::Cos), one(&x)),
        &[6],
        &[
            -0.4161468365471424,
            0.8775825618903728,
            1.0,
            0.8775825618903728,
            -0.4161468365471424,
            0.8623188722876839,
        ],
    );
    // sin is odd down to the sign of zero; neither is defined at infinity.
    let z = ft::<T>(&[3], &[-0.0, f64::INFINITY, f64::NAN]);
    let s = eval(Op::Unary(UnaryOp::Sin), one(&z));
    let s = s.as_float().expect("float");
    assert!(s[[0]] == T::zero() && s[[0]].is_sign_negative());
    assert!(s[[1]].is_nan() && s[[2]].is_nan());
    assert_floats(&eval(Op::Unary(UnaryOp::Cos), &[z]), &[3], &[1.0, f64::NAN, f64::NAN]);
}

fn gather_op<T: Real>() {
    // x = [[0, 1, 2], [3, 4, 5]].
    let x = arange::<T>(&[2, 3]);
    // Along the last axis, repeated and out-of-range indices (which read 0).
    let index = it::<T>(&[5], &[2, 0, -1, 3, 2]);
    assert_floats(
        &eval(Op::Gather { axis: 1 }, &[x.clone(), index]),
        &[2, 5],
        &[2.0, 0.0, 0.0, 0.0, 2.0, 5.0, 3.0, 0.0, 0.0, 5.0],
    );
    // Along the first axis, whole rows.
    let index = it::<T>(&[3], &[1, 1, 5]);
    assert_floats(
        &eval(Op::Gather { axis: 0 }, &[x, index]),
        &[3, 3],
        &[3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0],
    );
    // A middle axis of a rank-3 operand, and an empty index list.
    let y = arange::<T>(&[2, 2, 2]);
    let index = it::<T>(&[1], &[1]);
    assert_floats(&eval(Op::Gather { axis: 1 }, &[y.clone(), index]), &[2, 1, 2], &[2.0, 3.0, 6.0, 7.0]);
    assert_floats(&eval(Op::Gather { axis: 2 }, &[y, it::<T>(&[0], &[])]), &[2, 2, 0], &[]);
}

fn scatter_sum_op<T: Real>() {
    let x = ft::<T>(&[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let index = it::<T>(&[4], &[2, 0, 2, 7]);
    // Position 1 receives nothing; index 7 is dropped.
    assert_floats(
        &eval(Op::ScatterSum { axis: 1, size: 3 }, &[x, index]),
        &[2, 3],
        &[2.0, 0.0, 4.0, 6.0, 0.0, 12.0],
    );
    let x = ft::<T>(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let index = it::<T>(&[3], &[1, -1, 1]);
    assert_floats(&eval(Op::ScatterSum { axis: 0, size: 2 }, &[x, index]), &[2, 2], &[0.0, 0.0, 6.0, 8.0]);
    // Sums start from +0: a single -0 gives +0.
    let s = eval(Op::ScatterSum { axis: 0, size: 1 }, &[ft::<T>(&[1], &[-0.0]), it::<T>(&[1], &[0])]);
    assert!(s.as_float().expect("float")[[0]].is_sign_positive());
    // In increasing e: 1e16 + 1 - 1e16 is 0 in both precisions, 1e16 - 1e16 + 1 is 1.
    let x = ft::<T>(&[3], &[1e16, 1.0, -1e16]);
    let first = it::<T>(&[3], &[0, 0, 0]);
    assert_floats(&eval(Op::ScatterSum { axis: 0, size: 1 }, &[x, first]), &[1], &[0.0]);
}

fn scatter_max_op<T: Real>() {
    let nan = f64::NAN;
    let x = ft::<T>(&[2, 4], &[1.0, 5.0, 3.0, 5.0, nan, 2.0, -1.0, -3.0]);
    let index = it::<T>(&[4], &[0, 1, 0, 1]);
    // Position 2 receives nothing (0); a NaN contribution makes NaN.
    assert_floats(
        &eval(Op::ScatterMax { axis: 1, size: 3 }, &[x, index]),
        &[2, 3],
        &[3.0, 5.0, 0.0, nan, 2.0, 0.0],
    );
    // Only -inf contributions give -inf, not the 0 of no contribution;
    // out-of-range indices are dropped; of -0 and +0 the first stays.
    let x = ft::<T>(&[4], &[f64::NEG_INFINITY, 9.0, -0.0, 0.0]);
    let index = it::<T>(&[4], &[0, 2, 1, 1]);
    let m = eval(Op::ScatterMax { axis: 0, size: 2 }, &[x, index]);
    assert_floats(&m, &[2], &[f64::NEG_INFINITY, 0.0]);
    assert!(m.as_float().expect("float")[[1]].is_sign_negative());
}

fn scatter_max_grad_op<T: Real>() {
    let nan = f64::NAN;
    let x = ft::<T>(&[2, 5], &[1.0, 5.0, 3.0, 5.0, 8.0, nan, 2.0, -1.0, nan, 8.0]);
    let index = it::<T>(&[5], &[0, 1, 0, 1, 4]);
    let dy = ft::<T>(&[2, 3], &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    // Row 0: 3 (e = 2) is position 0's maximum, the tie of 5s goes to the
    // first (e = 1), e = 4 is out of range. Row 1: a NaN is larger than
    // every number, at e = 0 for position 0 and at e = 3 (after 2) for 1.
    assert_floats(
        &eval(Op::ScatterMaxGrad { axis: 1 }, &[x, index, dy]),
        &[2, 5],
        &[0.0, 20.0, 10.0, 0.0, 0.0, 40.0, 0.0, 0.0, 50.0, 0.0],
    );
    // Along the first axis, with an inner axis.
    let x = ft::<T>(&[3, 2], &[1.0, 4.0, 2.0, 4.0, 2.0, 3.0]);
    let index = it::<T>(&[3], &[0, 0, 0]);
    let dy = ft::<T>(&[1, 2], &[7.0, 8.0]);
    assert_floats(
        &eval(Op::ScatterMaxGrad { axis: 0 }, &[x, index, dy]),
        &[3, 2],
        &[0.0, 8.0, 7.0, 0.0, 0.0, 0.0],
    );
}

fn stop_gradient_op<T: Real>() {
    let x = ft::<T>(&[3], &[-1.5, f64::NAN, 2.0]);
    assert_floats(&eval(Op::StopGradient, one(&x)), &[3], &[-1.5, f64::NAN, 2.0]);
    let i = it::<T>(&[2], &[7, -3]);
    assert_ints(&eval(Op::StopGradient, one(&i)), &[2], &[7, -3]);
    let b = bt::<T>(&[2], &[true, false]);
    assert_bools(&eval(Op::StopGradient, &[b]), &[2], &[true, false]);
}

/// A `constant` input is fed by name like data; example inputs give it
/// data-like values.
fn constant_inputs_are_fed_by_name<T: Real>() {
    let mut g = Graph::new("c", Mode::Infer);
    let x = g.input("x", InputKind::Data, Type::f32(Shape::known(&[3])), Loc::NONE);
    let index = g.input("index", InputKind::Const, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
    let table = g.input("table", InputKind::Const, Type::f32(Shape::known(&[4])), Loc::NONE);
    let y = g.add(Op::Gather { axis: 0 }, &[x, index], Loc::NONE).expect("types");
    g.output(OutputKind::Other, "y", y);
    g.output(OutputKind::Other, "table", table);
    let inputs = HashMap::from([
        ("x".to_string(), ft::<T>(&[3], &[1.0, 2.0, 3.0])),
        ("index".to_string(), it::<T>(&[2], &[2, 0])),
        ("table".to_string(), ft::<T>(&[4], &[0.5; 4])),
    ]);
    let out = run(&g, &inputs).expect("runs");
    assert_floats(&out[0].1, &[2], &[3.0, 1.0]);
    let missing = HashMap::from([("x".to_string(), ft::<T>(&[3], &[1.0, 2.0, 3.0]))]);
    assert!(run(&g, &missing).expect_err("a constant is an input").message.contains("`index`"));
    let ex = example_inputs::<T>(&g, &HashMap::new(), 3).expect("no symbols");
    assert!(ex["index"].as_int().expect("i32").iter().all(|v| *v == 0 || *v == 1));
    assert!(floats_of(&ex, "table").iter().all(|v| (-1.0..1.0).contains(v)));
}
