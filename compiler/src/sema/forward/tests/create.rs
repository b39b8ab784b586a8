//! Filled tensors, compile-time sequences and random tensors.

use super::*;
use crate::ir::Op;

fn dims(s: &str) -> Vec<ReshapeDim> {
    shape_of(s)
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Known(n) => ReshapeDim::Known(*n),
            Dim::Sym(s) => ReshapeDim::Sym(s.clone()),
        })
        .collect()
}

#[test]
fn filled_tensors_may_have_the_batch_dimension() {
    let mut c = cx();
    let x = c.input("x", "B, 3");
    let z = full(&mut c, "zeros", &dims("B, 2"), 0.0).unwrap();
    assert_eq!(c.ty_of(z), "f32[B, 2]");
    let f = full(&mut c, "full", &dims("1, 3"), 2.5).unwrap();
    let s = binary(&mut c, BinOp::Add, f, x).unwrap();
    assert_eq!(c.ty_of(s), "f32[B, 3]");
    let got = c.eval(&[z, f], 2, &[("x", ft(&[2, 3], &[0.; 6]))]);
    assert_eq!(got[0].shape(), &[2, 2]);
    assert!(got[0].iter().all(|v| *v == 0.0));
    assert!(got[1].iter().all(|v| *v == 2.5));

    let e = err_of(full(&mut c, "ones", &dims("N, 2"), 1.0));
    assert_eq!(e.message, "the `ones` shape uses the dimension `N`, which no input of the model has");
    let e = err_of(full(&mut c, "zeros", &[ReshapeDim::Infer], 0.0));
    assert_eq!(e.message, "the `zeros` shape cannot contain -1: there is nothing to infer it from");
    assert!(full(&mut c, "full", &dims("2"), f64::NAN).is_err());
}

#[test]
fn zeros_like_keeps_the_element_type() {
    let mut c = cx();
    let l = c.typed_input("l", DType::I32, "B, 2");
    let z = zeros_like(&mut c, l).unwrap();
    assert_eq!(c.ty_of(z), "i32[B, 2]");
    let x = c.input("x", "B, 4");
    let z = zeros_like(&mut c, x).unwrap();
    assert_eq!(c.ty_of(z), "f32[B, 4]");
    assert_close(&c.eval1(z, &[("x", ft(&[1, 4], &[1., 2., 3., 4.]))]), &[0.; 4], 0.0);
}

#[test]
fn sequences_are_compile_time_constants() {
    let mut c = cx();
    let a = arange(&mut c, 0.0, 5.0, 1.0).unwrap();
    assert_eq!(c.ty_of(a), "f32[5]");
    assert_eq!(c.graph.node(a).op, Op::Input { name: "values".into(), kind: InputKind::Const });
    assert_eq!(c.constant_value(a), Some(&ConstData::F32(vec![0., 1., 2., 3., 4.])));
    assert_eq!(c.constants[0].4, "arange(0, 5, 1)");
    let a = arange(&mut c, 1.0, 2.0, 0.25).unwrap();
    assert_eq!(c.constant_value(a), Some(&ConstData::F32(vec![1., 1.25, 1.5, 1.75])));
    let a = arange(&mut c, 3.0, 0.0, -1.5).unwrap();
    assert_eq!(c.constant_value(a), Some(&ConstData::F32(vec![3., 1.5])));
    let l = linspace(&mut c, -1.0, 1.0, 5).unwrap();
    assert_eq!(c.ty_of(l), "f32[5]");
    assert_eq!(c.constant_value(l), Some(&ConstData::F32(vec![-1., -0.5, 0., 0.5, 1.])));
    let one = linspace(&mut c, 2.0, 7.0, 1).unwrap();
    assert_eq!(c.constant_value(one), Some(&ConstData::F32(vec![2.])));
    // The interpreter reads them like any other input.
    let x = c.input("x", "5");
    let s = binary(&mut c, BinOp::Mul, x, l).unwrap();
    assert_close(&c.eval1(s, &[("x", ft(&[5], &[1.; 5]))]), &[-1., -0.5, 0., 0.5, 1.], 0.0);

    let e = err_of(arange(&mut c, 5.0, 2.0, 1.0));
    assert_eq!(e.message, "arange(5, 2, 1) is empty");
    assert_eq!(e.notes, ["note: with a positive step, `stop` must be greater than `start`"]);
    assert_eq!(err_of(arange(&mut c, 0.0, 1.0, 0.0)).message, "`arange` step must not be 0");
    assert!(err_of(arange(&mut c, 0.0, 1e9, 1.0)).message.contains("more than 2^24"));
}

#[test]
fn uniform_draws_in_its_range_in_both_modes() {
    for mode in [Mode::Train, Mode::Infer] {
        let mut c = new_cx(mode);
        // The input binds `B`.
        let _x = c.input("x", "B, 4");
        let u = uniform(&mut c, &dims("B, 4"), -2.0, 3.0).unwrap();
        assert_eq!(c.ty_of(u), "f32[B, 4]");
        let v = uniform(&mut c, &dims("B, 4"), -2.0, 3.0).unwrap();
        let got = c.eval(&[u, v], 64, &[("x", ft(&[64, 4], &[0.; 256]))]);
        assert!(got[0].iter().all(|v| (-2.0..3.0).contains(v)));
        assert_ne!(got[0], got[1], "each call draws from its own stream");
        let mean = got[0].iter().sum::<f64>() / 256.0;
        assert!((mean - 0.5).abs() < 0.3, "{mean}");
    }
    let mut c = cx();
    assert!(err_of(uniform(&mut c, &dims("2"), 1.0, 0.0)).message.contains("low <= high"));
}

#[test]
fn normal_has_its_mean_and_deviation() {
    let mut c = new_cx(Mode::Infer);
    let z = normal(&mut c, &dims("64, 64"), 2.0, 3.0).unwrap();
    assert_eq!(c.ty_of(z), "f32[64, 64]");
    assert!(c.graph.nodes.iter().any(|n| n.op == Op::Unary(crate::ir::UnaryOp::Cos)));
    let streams: Vec<u64> = c
        .graph
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::RngUniform { stream, .. } => Some(stream),
            _ => None,
        })
        .collect();
    assert_eq!(streams, [1, 2], "two uniform draws, each its own stream");
    let got = c.eval(&[z], 1, &[]).remove(0);
    let n = got.len() as f64;
    let mean = got.iter().sum::<f64>() / n;
    let sd = (got.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 2.0).abs() < 0.15, "mean {mean}");
    assert!((sd - 3.0).abs() < 0.15, "sd {sd}");
    assert!(got.iter().all(|v| v.is_finite()));
    assert!(err_of(normal(&mut c, &dims("2"), 0.0, -1.0)).message.contains("std >= 0"));
}
