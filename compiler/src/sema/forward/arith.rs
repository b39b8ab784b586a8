//! Arithmetic of the language (`+ - * /`, unary minus, number literals).
//!
//! The IR's binary ops need operands of equal shape, so NumPy broadcasting
//! happens here, with explicit `Broadcast` nodes, and an incompatible pair of
//! shapes is reported naming both shapes and the first dimension that differs.

use super::emit::{bin, broadcast, konst, unary, want_f32};
use super::{BuildError, Built, Cx};
use crate::ir::infer::broadcast_shapes;
use crate::ir::{BinaryOp, DType, Dim, Type, UnaryOp, ValueId};
use crate::syntax::ast::BinOp;

/// `a op b` with NumPy broadcasting (dimensions aligned from the right; a
/// dimension of size 1 stretches to match the other).
pub fn binary(cx: &mut dyn Cx, op: BinOp, a: ValueId, b: ValueId) -> Built {
    let ta = cx.graph().ty(a).clone();
    let tb = cx.graph().ty(b).clone();
    for (i, t) in [(0, &ta), (1, &tb)] {
        if t.dtype != DType::F32 {
            return Err(BuildError::new(format!(
                "{}: arithmetic needs f32 tensors, but operand {} is {}",
                phrase(op, &ta, &tb),
                i + 1,
                t.dtype.name()
            ))
            .at(i));
        }
    }
    let out = broadcast_shapes(&ta.shape, &tb.shape).ok_or_else(|| mismatch(op, &ta, &tb))?;
    let a = broadcast(cx, a, &out)?;
    let b = broadcast(cx, b, &out)?;
    bin(cx, primitive(op), a, b)
}

/// An f32 scalar constant.
pub fn scalar(cx: &mut dyn Cx, value: f64) -> ValueId {
    konst(cx, value)
}

/// Unary minus.
pub fn neg(cx: &mut dyn Cx, x: ValueId) -> Built {
    want_f32(cx, x, "-", 0)?;
    unary(cx, UnaryOp::Neg, x)
}

fn primitive(op: BinOp) -> BinaryOp {
    match op {
        BinOp::Add => BinaryOp::Add,
        BinOp::Sub => BinaryOp::Sub,
        BinOp::Mul => BinaryOp::Mul,
        BinOp::Div => BinaryOp::Div,
    }
}

/// "cannot add X and Y" and its siblings.
fn phrase(op: BinOp, a: &Type, b: &Type) -> String {
    match op {
        BinOp::Add => format!("cannot add {a} and {b}"),
        BinOp::Sub => format!("cannot subtract {b} from {a}"),
        BinOp::Mul => format!("cannot multiply {a} by {b}"),
        BinOp::Div => format!("cannot divide {a} by {b}"),
    }
}

/// The error for shapes that do not broadcast. The message names the
/// operator and the first dimension (counted in the higher-rank operand)
/// whose sizes differ and are not 1; the primary label names both types.
fn mismatch(op: BinOp, a: &Type, b: &Type) -> BuildError {
    let (ra, rb) = (a.shape.rank(), b.shape.rank());
    let r = ra.max(rb);
    let dim = |t: &Type, rt: usize, i: usize| -> Option<Dim> {
        (i + rt >= r).then(|| t.shape.dims().get(i + rt - r).cloned()).flatten()
    };
    let clash = (0..r).find_map(|i| match (dim(a, ra, i), dim(b, rb, i)) {
        (Some(x), Some(y)) if x != y && x != Dim::Known(1) && y != Dim::Known(1) => Some((i, x, y)),
        _ => None,
    });
    let mut message = format!("mismatched shapes for `{}`", op.symbol());
    if let Some((i, x, y)) = clash {
        message.push_str(&format!(": dimension {i} is {x} vs {y}"));
    }
    BuildError::new(message)
        .label(phrase(op, a, b))
        .note("shapes broadcast when each dimension, aligned from the right, is equal or 1")
}
