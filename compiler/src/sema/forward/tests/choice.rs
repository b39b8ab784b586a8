//! Comparisons, bool arithmetic, `where`, `minimum`, `maximum`, `stop_gradient`.

use super::*;
use crate::ir::{BinaryOp, CmpOp, Op};

#[test]
fn compare_broadcasts_and_gives_bool() {
    let mut c = cx();
    let a = c.input("a", "B, 3");
    let b = c.input("b", "3");
    let lt = compare(&mut c, CmpOp::Lt, a, b).unwrap();
    assert_eq!(c.ty_of(lt), "bool[B, 3]");
    let given = [("a", ft(&[2, 3], &[1., 2., 3., 4., 5., 6.])), ("b", ft(&[3], &[2., 2., 5.]))];
    assert_eq!(c.eval_bool(lt, &given), [true, false, true, false, false, false]);
    let ne = compare(&mut c, CmpOp::Ne, a, b).unwrap();
    assert_eq!(c.eval_bool(ne, &given), [true, false, true, true, true, true]);
    let wrong = c.input("wrong", "B, 4");
    let e = err_of(compare(&mut c, CmpOp::Ge, a, wrong));
    assert_eq!(e.message, "mismatched shapes for `>=`: dimension 1 is 3 vs 4");
    assert_eq!(e.label.as_deref(), Some("cannot compare f32[B, 3] with f32[B, 4]"));
}

#[test]
fn labels_compare_with_numbers_as_f32() {
    let mut c = cx();
    let labels = c.typed_input("labels", DType::I32, "B");
    let three = scalar(&mut c, 3.0);
    let eq = compare(&mut c, CmpOp::Eq, labels, three).unwrap();
    assert_eq!(c.ty_of(eq), "bool[B]");
    assert!(c.graph.nodes.iter().any(|n| n.op == Op::Cast { to: DType::F32 }));
    assert_eq!(c.eval_bool(eq, &[("labels", it(&[3], &[3, 1, 3]))]), [true, false, true]);
}

#[test]
fn bools_are_zero_and_one_in_arithmetic() {
    let mut c = cx();
    let x = c.input("x", "B, 4");
    let zero = scalar(&mut c, 0.0);
    let pos = compare(&mut c, CmpOp::Gt, x, zero).unwrap();
    let masked = binary(&mut c, BinOp::Mul, pos, x).unwrap();
    assert_eq!(c.ty_of(masked), "f32[B, 4]");
    let given = [("x", ft(&[1, 4], &[-1., 2., 0., 3.]))];
    assert_close(&c.eval1(masked, &given), &[0., 2., 0., 3.], 0.0);
    let minus = neg(&mut c, pos).unwrap();
    assert_close(&c.eval1(minus, &given), &[0., -1., 0., -1.], 0.0);
    let both = binary(&mut c, BinOp::Add, pos, pos).unwrap();
    assert_close(&c.eval1(both, &given), &[0., 2., 0., 2.], 0.0);
    // Integers still need an explicit choice.
    let l = c.typed_input("l", DType::I32, "B, 4");
    let e = err_of(binary(&mut c, BinOp::Add, x, l));
    assert_eq!(
        e.message,
        "cannot add f32[B, 4] and i32[B, 4]: arithmetic needs f32 tensors, but operand 2 is i32"
    );
    assert_eq!((e.operand, e.expected.as_deref()), (Some(1), Some("f32[B, 4]")));
}

#[test]
fn where_selects_with_broadcasting_and_numbers() {
    let mut c = cx();
    let x = c.input("x", "B, 3");
    let zero = scalar(&mut c, 0.0);
    let cond = compare(&mut c, CmpOp::Gt, x, zero).unwrap();
    let minus_one = scalar(&mut c, -1.0);
    let y = select(&mut c, cond, x, minus_one).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 3]");
    let given = [("x", ft(&[2, 3], &[1., -2., 3., 0., 5., -6.]))];
    assert_close(&c.eval1(y, &given), &[1., -1., 3., -1., 5., -1.], 0.0);
    // A row condition [3] against a column branch [B, 1].
    let row = c.input("row", "3");
    let cond = compare(&mut c, CmpOp::Lt, row, zero).unwrap();
    let col = c.input("col", "B, 1");
    let z = select(&mut c, cond, col, x).unwrap();
    assert_eq!(c.ty_of(z), "f32[B, 3]");
    let given = [
        ("x", ft(&[2, 3], &[1., 2., 3., 4., 5., 6.])),
        ("row", ft(&[3], &[-1., 1., -1.])),
        ("col", ft(&[2, 1], &[10., 20.])),
    ];
    assert_close(&c.eval1(z, &given), &[10., 2., 10., 20., 5., 20.], 0.0);
    // Bool branches count as 0 and 1.
    let b = select(&mut c, cond, cond, x).unwrap();
    assert_eq!(c.ty_of(b), "f32[B, 3]");
}

#[test]
fn where_needs_a_bool_condition_and_matching_branches() {
    let mut c = cx();
    let x = c.input("x", "B, 4");
    let e = err_of(select(&mut c, x, x, x));
    assert_eq!(e.message, "`where` needs a bool condition, got f32[B, 4]");
    assert_eq!((e.operand, e.expected.as_deref()), (Some(0), Some("bool[B, 4]")));
    assert!(e.notes[0].contains("`where(x > 0, x, 0)`"), "{:?}", e.notes);
    let zero = scalar(&mut c, 0.0);
    let cond = compare(&mut c, CmpOp::Gt, x, zero).unwrap();
    let l = c.typed_input("l", DType::I32, "B, 4");
    let e = err_of(select(&mut c, cond, x, l));
    assert_eq!(e.message, "`where` needs two branches of one element type, got f32[B, 4] and i32[B, 4]");
    assert_eq!(e.operand, Some(2));
    let wide = c.input("wide", "B, 5");
    let e = err_of(select(&mut c, cond, x, wide));
    assert!(e.message.contains("do not broadcast to one shape"), "{}", e.message);
}

#[test]
fn minimum_and_maximum_broadcast() {
    let mut c = cx();
    let x = c.input("x", "B, 3");
    let half = scalar(&mut c, 0.5);
    let lo = extremum(&mut c, BinaryOp::Min, x, half).unwrap();
    let hi = extremum(&mut c, BinaryOp::Max, half, x).unwrap();
    let given = [("x", ft(&[1, 3], &[0., 1., 0.5]))];
    assert_close(&c.eval1(lo, &given), &[0., 0.5, 0.5], 0.0);
    assert_close(&c.eval1(hi, &given), &[0.5, 1., 0.5], 0.0);
    let wrong = c.input("wrong", "2");
    let e = err_of(extremum(&mut c, BinaryOp::Max, x, wrong));
    assert_eq!(e.message, "mismatched shapes for `maximum`: dimension 1 is 3 vs 2");
    assert_eq!(e.label.as_deref(), Some("cannot take the maximum of f32[B, 3] and f32[2]"));
    assert!(extremum(&mut c, BinaryOp::Add, x, x).is_err());
}

#[test]
fn stop_gradient_is_the_identity_op() {
    let mut c = cx();
    let x = c.input("x", "B, 2");
    let y = stop_gradient(&mut c, x).unwrap();
    assert_eq!(c.graph.node(y).op, Op::StopGradient);
    assert_eq!(c.ty_of(y), "f32[B, 2]");
    assert_close(&c.eval1(y, &[("x", ft(&[1, 2], &[3., -4.]))]), &[3., -4.], 0.0);
}
