//! Parameter-free functions: activations, `clip`, `softmax`, `log_softmax`
//! and `dropout`, each as a few elementwise primitives (PyTorch semantics).

use super::emit::{
    bin, bin_const, const_bin, emit, expand_back, norm_axis, reduce_sum, shape, splat, unary, want_f32,
};
use super::{Activation, BuildError, Built, Cx};
use crate::ir::{BinaryOp, CmpOp, Mode, Op, UnaryOp, ValueId};

/// SELU's `alpha` (PyTorch `nn.SELU`, Klambauer et al. 2017).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's `scale` (PyTorch `nn.SELU`).
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// An elementwise activation:
/// - `relu` = `max(x, 0)`;
/// - `leaky_relu` = `x` where `x > 0`, else `alpha·x` (a `Select` on a `Compare`);
/// - `elu` = `x` where `x > 0`, else `alpha·(exp(x) - 1)`; the exponential is
///   taken of `min(x, 0)` so the unselected branch never overflows;
/// - `selu` = `scale · elu(x, alpha)` with PyTorch's constants [`SELU_ALPHA`], [`SELU_SCALE`];
/// - `gelu` = the exact form `0.5·x·(1 + erf(x/√2))` (PyTorch's default), a primitive;
/// - `softplus` = the stable `max(x, 0) + log(1 + exp(-|x|))`, equal to
///   PyTorch's `log(1 + exp(x))` (beta 1) without its linear cut-off;
/// - `sigmoid`, `tanh`, `exp`, `log`, `sqrt`, `abs` are primitives; `square` = `x·x`.
pub fn activation(cx: &mut dyn Cx, x: ValueId, act: Activation) -> Built {
    want_f32(cx, x, name(act), 0)?;
    match act {
        Activation::Relu => bin_const(cx, BinaryOp::Max, x, 0.0),
        Activation::LeakyRelu { alpha } => {
            let neg = bin_const(cx, BinaryOp::Mul, x, alpha)?;
            where_positive(cx, x, x, neg)
        }
        Activation::Elu { alpha } => elu(cx, x, alpha),
        Activation::Selu => {
            let y = elu(cx, x, SELU_ALPHA)?;
            bin_const(cx, BinaryOp::Mul, y, SELU_SCALE)
        }
        Activation::Gelu => gelu(cx, x),
        Activation::Softplus => softplus(cx, x),
        Activation::Sigmoid => unary(cx, UnaryOp::Sigmoid, x),
        Activation::Tanh => unary(cx, UnaryOp::Tanh, x),
        Activation::Exp => unary(cx, UnaryOp::Exp, x),
        Activation::Log => unary(cx, UnaryOp::Log, x),
        Activation::Sqrt => unary(cx, UnaryOp::Sqrt, x),
        Activation::Abs => unary(cx, UnaryOp::Abs, x),
        Activation::Square => bin(cx, BinaryOp::Mul, x, x),
    }
}

fn name(act: Activation) -> &'static str {
    match act {
        Activation::Relu => "relu",
        Activation::LeakyRelu { .. } => "leaky_relu",
        Activation::Elu { .. } => "elu",
        Activation::Selu => "selu",
        Activation::Gelu => "gelu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
        Activation::Softplus => "softplus",
        Activation::Exp => "exp",
        Activation::Log => "log",
        Activation::Sqrt => "sqrt",
        Activation::Abs => "abs",
        Activation::Square => "square",
    }
}

/// `pos` where `x > 0`, else `neg`.
fn where_positive(cx: &mut dyn Cx, x: ValueId, pos: ValueId, neg: ValueId) -> Built {
    let s = shape(cx, x);
    let zero = splat(cx, 0.0, &s)?;
    let cond = emit(cx, Op::Compare(CmpOp::Gt), &[x, zero])?;
    emit(cx, Op::Select, &[cond, pos, neg])
}

fn elu(cx: &mut dyn Cx, x: ValueId, alpha: f64) -> Built {
    let xn = bin_const(cx, BinaryOp::Min, x, 0.0)?;
    let e = unary(cx, UnaryOp::Exp, xn)?;
    let em1 = bin_const(cx, BinaryOp::Sub, e, 1.0)?;
    let neg = bin_const(cx, BinaryOp::Mul, em1, alpha)?;
    where_positive(cx, x, x, neg)
}

fn gelu(cx: &mut dyn Cx, x: ValueId) -> Built {
    unary(cx, UnaryOp::Gelu, x)
}

/// `max(x, 0) + log(1 + exp(-|x|))`; also the stable core of `bce`.
pub(crate) fn softplus(cx: &mut dyn Cx, x: ValueId) -> Built {
    let relu = bin_const(cx, BinaryOp::Max, x, 0.0)?;
    let a = unary(cx, UnaryOp::Abs, x)?;
    let na = unary(cx, UnaryOp::Neg, a)?;
    let e = unary(cx, UnaryOp::Exp, na)?;
    let l = const_bin(cx, BinaryOp::Add, 1.0, e)?;
    let l = unary(cx, UnaryOp::Log, l)?;
    bin(cx, BinaryOp::Add, relu, l)
}

/// `min(max(x, min), max)` (PyTorch `clamp`).
pub fn clip(cx: &mut dyn Cx, x: ValueId, min: f64, max: f64) -> Built {
    want_f32(cx, x, "clip", 0)?;
    if min.is_nan() || max.is_nan() || min > max {
        return Err(BuildError::new(format!("`clip` needs min <= max, got min {min} and max {max}")));
    }
    let lo = bin_const(cx, BinaryOp::Max, x, min)?;
    bin_const(cx, BinaryOp::Min, lo, max)
}

/// `x - max(x)` along `axis` (broadcast back), the stable softmax argument.
fn shifted(cx: &mut dyn Cx, x: ValueId, axis: i64, what: &str) -> Result<(ValueId, usize), BuildError> {
    let t = want_f32(cx, x, what, 0)?;
    let a = norm_axis(what, axis, t.shape.rank()).map_err(|e| e.at(0))?;
    let m = emit(cx, Op::ReduceMax { axes: vec![a] }, &[x])?;
    let m = expand_back(cx, m, &t.shape, &[a])?;
    Ok((bin(cx, BinaryOp::Sub, x, m)?, a))
}

/// `exp(x - max) / Σ exp(x - max)` along `axis` (max-subtracted, so it never
/// overflows).
pub fn softmax(cx: &mut dyn Cx, x: ValueId, axis: i64) -> Built {
    let (z, a) = shifted(cx, x, axis, "softmax")?;
    let full = shape(cx, z);
    let e = unary(cx, UnaryOp::Exp, z)?;
    let s = reduce_sum(cx, e, &[a])?;
    let s = expand_back(cx, s, &full, &[a])?;
    bin(cx, BinaryOp::Div, e, s)
}

/// `(x - max) - log Σ exp(x - max)` along `axis`.
pub fn log_softmax(cx: &mut dyn Cx, x: ValueId, axis: i64) -> Built {
    let (z, a) = shifted(cx, x, axis, "log_softmax")?;
    let full = shape(cx, z);
    let e = unary(cx, UnaryOp::Exp, z)?;
    let s = reduce_sum(cx, e, &[a])?;
    let l = unary(cx, UnaryOp::Log, s)?;
    let l = expand_back(cx, l, &full, &[a])?;
    bin(cx, BinaryOp::Sub, z, l)
}

/// Inverted dropout (PyTorch `nn.Dropout`): in train mode each element is
/// kept where a fresh uniform `u >= p` and scaled by `1/(1-p)`, else zeroed;
/// in infer mode (and for `p = 0`) it is the identity.
pub fn dropout(cx: &mut dyn Cx, x: ValueId, p: f64) -> Built {
    want_f32(cx, x, "dropout", 0)?;
    if !(0.0..1.0).contains(&p) {
        return Err(BuildError::new(format!("`dropout` probability must be in [0, 1), got {p}")));
    }
    if cx.mode() == Mode::Infer || p == 0.0 {
        return Ok(x);
    }
    let s = shape(cx, x);
    let key = cx.key();
    let stream = cx.next_stream();
    let u = emit(cx, Op::RngUniform { shape: s.clone(), stream }, &[key])?;
    let pv = splat(cx, p, &s)?;
    let keep = emit(cx, Op::Compare(CmpOp::Ge), &[u, pv])?;
    let scaled = bin_const(cx, BinaryOp::Mul, x, 1.0 / (1.0 - p))?;
    let zero = splat(cx, 0.0, &s)?;
    emit(cx, Op::Select, &[keep, scaled, zero])
}
