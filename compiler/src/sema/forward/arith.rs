//! Arithmetic of the language (`+ - * /`, unary minus, number literals),
//! comparisons and the elementwise choices `where`, `minimum`, `maximum`.
//!
//! The IR's elementwise ops need operands of equal shape, so NumPy
//! broadcasting happens here, with explicit `Broadcast` nodes, and an
//! incompatible pair of shapes is reported naming both shapes and the first
//! dimension that differs. Truth values (`bool`, the result of a comparison)
//! take part in arithmetic as 0 and 1 (a `Cast` to f32), so `(x > 0) * x`
//! is a mask.

use super::emit::{bin, broadcast, emit, konst, unary};
use super::{BuildError, Built, Cx};
use crate::ir::infer::broadcast_shapes;
use crate::ir::{BinaryOp, CmpOp, DType, Dim, Op, Shape, Type, UnaryOp, ValueId};
use crate::syntax::ast::BinOp;

/// `a op b` with NumPy broadcasting (dimensions aligned from the right; a
/// dimension of size 1 stretches to match the other). Bool operands count
/// as 0 and 1.
pub fn binary(cx: &mut dyn Cx, op: BinOp, a: ValueId, b: ValueId) -> Built {
    let what = Operator { symbol: op.symbol(), verb: phrase(op) };
    let (a, b) = numeric_pair(cx, &what, a, b)?;
    bin(cx, primitive(op), a, b)
}

/// An f32 scalar constant.
pub fn scalar(cx: &mut dyn Cx, value: f64) -> ValueId {
    konst(cx, value)
}

/// Unary minus (a bool operand counts as 0 and 1).
pub fn neg(cx: &mut dyn Cx, x: ValueId) -> Built {
    let x = numeric(cx, x, "-", 0)?;
    unary(cx, UnaryOp::Neg, x)
}

/// The elementwise comparison `a op b` of two tensors with NumPy
/// broadcasting; the result is `bool`. The operands are compared as f32
/// (i32 and bool operands are converted, exactly for integers up to 2^24),
/// so a label can be compared with a number: `labels == 3`.
pub fn compare(cx: &mut dyn Cx, op: CmpOp, a: ValueId, b: ValueId) -> Built {
    let what = Operator { symbol: op.symbol(), verb: |a, b| format!("cannot compare {a} with {b}") };
    let (ta, tb) = (ty_of(cx, a), ty_of(cx, b));
    let out = broadcast_shapes(&ta.shape, &tb.shape).ok_or_else(|| mismatch(&what, &ta, &tb))?;
    let a = as_f32(cx, a)?;
    let b = as_f32(cx, b)?;
    let a = broadcast(cx, a, &out)?;
    let b = broadcast(cx, b, &out)?;
    emit(cx, Op::Compare(op), &[a, b])
}

/// `minimum(a, b)` / `maximum(a, b)`: the elementwise smaller or larger of
/// two f32 tensors with NumPy broadcasting (`op` is [`BinaryOp::Min`] or
/// [`BinaryOp::Max`]). The gradient goes to the operand chosen.
pub fn extremum(cx: &mut dyn Cx, op: BinaryOp, a: ValueId, b: ValueId) -> Built {
    let what = match op {
        BinaryOp::Min => {
            Operator { symbol: "minimum", verb: |a, b| format!("cannot take the minimum of {a} and {b}") }
        }
        BinaryOp::Max => {
            Operator { symbol: "maximum", verb: |a, b| format!("cannot take the maximum of {a} and {b}") }
        }
        other => return Err(BuildError::new(format!("`{}` is not `minimum` or `maximum`", other.name()))),
    };
    let (a, b) = numeric_pair(cx, &what, a, b)?;
    bin(cx, op, a, b)
}

/// `where(cond, a, b)`: `a` where `cond` holds, else `b`, with NumPy
/// broadcasting of all three. `cond` must be `bool` (a comparison such as
/// `x > 0`); `a` and `b` are tensors of one element type (bool ones count
/// as f32 0 and 1). Operands 0, 1, 2. The gradient goes to the branch
/// chosen.
pub fn select(cx: &mut dyn Cx, cond: ValueId, a: ValueId, b: ValueId) -> Built {
    let tc = ty_of(cx, cond);
    if tc.dtype != DType::Bool {
        return Err(BuildError::new(format!("`where` needs a bool condition, got {tc}"))
            .at(0)
            .expected(Type::new(DType::Bool, tc.shape.clone()).to_string())
            .help("make a condition with a comparison, e.g. `where(x > 0, x, 0)`"));
    }
    let a = bool_as_f32(cx, a)?;
    let b = bool_as_f32(cx, b)?;
    let (ta, tb) = (ty_of(cx, a), ty_of(cx, b));
    if ta.dtype != tb.dtype {
        return Err(BuildError::new(format!(
            "`where` needs two branches of one element type, got {ta} and {tb}"
        ))
        .at(2)
        .expected(Type::new(ta.dtype, tb.shape.clone()).to_string()));
    }
    let out = broadcast_shapes(&tc.shape, &ta.shape)
        .and_then(|s| broadcast_shapes(&s, &tb.shape))
        .ok_or_else(|| {
            BuildError::new(format!(
                "`where`: the condition {tc} and the branches {ta} and {tb} do not broadcast to one shape"
            ))
            .label("mismatched shapes")
            .note("shapes broadcast when each dimension, aligned from the right, is equal or 1")
        })?;
    let cond = broadcast(cx, cond, &out)?;
    let a = broadcast(cx, a, &out)?;
    let b = broadcast(cx, b, &out)?;
    emit(cx, Op::Select, &[cond, a, b])
}

/// What an elementwise operator is called in messages.
struct Operator {
    /// `+`, `<`, `minimum`.
    symbol: &'static str,
    /// "cannot add {a} and {b}" and its siblings.
    verb: fn(&Type, &Type) -> String,
}

fn ty_of(cx: &mut dyn Cx, v: ValueId) -> Type {
    cx.graph().ty(v).clone()
}

/// `x` as f32: bool and i32 tensors are converted.
fn as_f32(cx: &mut dyn Cx, x: ValueId) -> Built {
    match ty_of(cx, x).dtype {
        DType::F32 => Ok(x),
        _ => emit(cx, Op::Cast { to: DType::F32 }, &[x]),
    }
}

/// `x` with a bool tensor converted to f32 0 and 1.
fn bool_as_f32(cx: &mut dyn Cx, x: ValueId) -> Built {
    match ty_of(cx, x).dtype {
        DType::Bool => emit(cx, Op::Cast { to: DType::F32 }, &[x]),
        _ => Ok(x),
    }
}

/// An operand of arithmetic: f32, or bool converted to f32; i32 is an
/// error (operand `operand` of `symbol`).
fn numeric(cx: &mut dyn Cx, x: ValueId, symbol: &str, operand: usize) -> Built {
    let t = ty_of(cx, x);
    match t.dtype {
        DType::F32 => Ok(x),
        DType::Bool => emit(cx, Op::Cast { to: DType::F32 }, &[x]),
        DType::I32 => Err(BuildError::new(format!("`{symbol}` needs f32 tensors, got {t}")).at(operand)),
    }
}

/// Two arithmetic operands, converted to f32 and broadcast to one shape.
fn numeric_pair(
    cx: &mut dyn Cx,
    what: &Operator,
    a: ValueId,
    b: ValueId,
) -> Result<(ValueId, ValueId), BuildError> {
    let (ta, tb) = (ty_of(cx, a), ty_of(cx, b));
    for (i, t) in [(0, &ta), (1, &tb)] {
        if t.dtype == DType::I32 {
            return Err(BuildError::new(format!(
                "{}: arithmetic needs f32 tensors, but operand {} is {}",
                (what.verb)(&ta, &tb),
                i + 1,
                t.dtype.name()
            ))
            .at(i)
            .expected(Type::f32(t.shape.clone()).to_string()));
        }
    }
    let out = broadcast_shapes(&ta.shape, &tb.shape).ok_or_else(|| mismatch(what, &ta, &tb))?;
    let a = bool_as_f32(cx, a)?;
    let b = bool_as_f32(cx, b)?;
    let a = broadcast(cx, a, &out)?;
    let b = broadcast(cx, b, &out)?;
    Ok((a, b))
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
fn phrase(op: BinOp) -> fn(&Type, &Type) -> String {
    match op {
        BinOp::Add => |a, b| format!("cannot add {a} and {b}"),
        BinOp::Sub => |a, b| format!("cannot subtract {b} from {a}"),
        BinOp::Mul => |a, b| format!("cannot multiply {a} by {b}"),
        BinOp::Div => |a, b| format!("cannot divide {a} by {b}"),
    }
}

/// The error for shapes that do not broadcast. The message names the
/// operator and the first dimension (counted in the higher-rank operand)
/// whose sizes differ and are not 1; the primary label names both types.
fn mismatch(what: &Operator, a: &Type, b: &Type) -> BuildError {
    let (ra, rb) = (a.shape.rank(), b.shape.rank());
    let r = ra.max(rb);
    let dim = |s: &Shape, rs: usize, i: usize| -> Option<Dim> {
        (i + rs >= r).then(|| s.dims().get(i + rs - r).cloned()).flatten()
    };
    let clash = (0..r).find_map(|i| match (dim(&a.shape, ra, i), dim(&b.shape, rb, i)) {
        (Some(x), Some(y)) if x != y && x != Dim::Known(1) && y != Dim::Known(1) => Some((i, x, y)),
        _ => None,
    });
    let mut message = format!("mismatched shapes for `{}`", what.symbol);
    if let Some((i, x, y)) = clash {
        message.push_str(&format!(": dimension {i} is {x} vs {y}"));
    }
    BuildError::new(message)
        .label((what.verb)(a, b))
        .note("shapes broadcast when each dimension, aligned from the right, is equal or 1")
}

/// `stop_gradient(x)`: `x` itself, through which no gradient flows (a
/// constant to autodiff), e.g. the generator's output fed to the
/// discriminator's loss of a GAN.
pub fn stop_gradient(cx: &mut dyn Cx, x: ValueId) -> Built {
    emit(cx, Op::StopGradient, &[x])
}
