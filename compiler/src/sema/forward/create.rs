//! Tensors made from their arguments alone: filled tensors (`zeros`,
//! `ones`, `full`, `zeros_like`), compile-time sequences (`arange`,
//! `linspace`) and random tensors (`uniform`, `normal`).
//!
//! A filled tensor is one `Const` scalar broadcast to its shape, so it may
//! have the symbolic batch dimension and costs nothing to store. A sequence
//! is a constant input whose values the module carries ([`Cx::constant`]).
//! Random tensors are `RngUniform` draws of the graph's key with a stream of
//! their own per call site, in training and in inference alike.

use super::emit::{bin, bin_const, broadcast, check_size, emit, splat, unary};
use super::{BuildError, Built, ConstData, Cx, ReshapeDim};
use crate::ir::{BinaryOp, DType, Dim, Op, Shape, Type, UnaryOp, ValueId};

/// Most elements of a compile-time sequence (2^24).
pub const MAX_SEQUENCE: usize = 1 << 24;

/// The shape written for `what` (`zeros([B, 64])`): positive sizes and
/// symbolic dimensions that an input of the graph has (so they are bound
/// when the program runs); `-1` has nothing to be inferred from.
pub(crate) fn written_shape(cx: &mut dyn Cx, what: &str, dims: &[ReshapeDim]) -> Result<Shape, BuildError> {
    let mut out = Vec::with_capacity(dims.len());
    for (i, d) in dims.iter().enumerate() {
        match d {
            ReshapeDim::Known(n) => {
                check_size(*n, &format!("dimension {i} of the `{what}` shape"))?;
                out.push(Dim::Known(*n));
            }
            ReshapeDim::Infer => {
                return Err(BuildError::new(format!(
                    "the `{what}` shape cannot contain -1: there is nothing to infer it from"
                ))
                .help("write every size, e.g. `[B, 64]`"));
            }
            ReshapeDim::Sym(s) => {
                let bound = cx
                    .graph()
                    .inputs()
                    .any(|(_, n)| n.ty.shape.dims().iter().any(|d| matches!(d, Dim::Sym(t) if t == s)));
                if !bound {
                    return Err(BuildError::new(format!(
                        "the `{what}` shape uses the dimension `{s}`, which no input of the model has"
                    ))
                    .note(format!(
                        "a symbolic dimension takes its size from an input, e.g. `input x: f32[{s}, 4]`"
                    )));
                }
                out.push(Dim::Sym(s.clone()));
            }
        }
    }
    Ok(Shape(out))
}

/// `zeros(shape)`, `ones(shape)`, `full(shape, value)`: an f32 tensor of
/// `shape` with every element `value`.
pub fn full(cx: &mut dyn Cx, what: &str, dims: &[ReshapeDim], value: f64) -> Built {
    if !value.is_finite() {
        return Err(BuildError::new(format!("`{what}` value must be finite, got {value}")));
    }
    let s = written_shape(cx, what, dims)?;
    splat(cx, value, &s)
}

/// A tensor of zeros with the type (element type and shape) of `x`.
pub fn zeros_like(cx: &mut dyn Cx, x: ValueId) -> Built {
    let t = cx.graph().ty(x).clone();
    let loc = cx.loc();
    let c = cx.graph().constant(0.0, t.dtype, loc);
    broadcast(cx, c, &t.shape)
}

/// An f32 tensor of the shape of `x` with every element `value` (a number
/// standing for a tensor, such as the target of `bce(p, 1.0)`).
pub fn full_like(cx: &mut dyn Cx, x: ValueId, value: f64) -> Built {
    let s = cx.graph().ty(x).shape.clone();
    splat(cx, value, &s)
}

/// `arange(start, stop, step)` (NumPy): `start + i·step` for every `i ≥ 0`
/// that stays before `stop`, i.e. `ceil((stop - start) / step)` values, as a
/// compile-time f32 vector. `arange(n)` is `arange(0, n, 1)`.
pub fn arange(cx: &mut dyn Cx, start: f64, stop: f64, step: f64) -> Built {
    if step == 0.0 {
        return Err(BuildError::new("`arange` step must not be 0"));
    }
    let count = ((stop - start) / step).ceil();
    let origin = format!("arange({start}, {stop}, {step})");
    if !count.is_finite() || count < 1.0 {
        return Err(BuildError::new(format!("{origin} is empty")).note(if step > 0.0 {
            "with a positive step, `stop` must be greater than `start`"
        } else {
            "with a negative step, `stop` must be less than `start`"
        }));
    }
    if count > MAX_SEQUENCE as f64 {
        return Err(BuildError::new(format!("{origin} would have {count} values, more than 2^24")));
    }
    let values: Vec<f32> = (0..count as usize).map(|i| (start + i as f64 * step) as f32).collect();
    sequence(cx, values, origin)
}

/// `linspace(start, stop, n)` (NumPy): `n` evenly spaced values from
/// `start` to `stop`, both included, as a compile-time f32 vector
/// (`[start]` when `n` is 1).
pub fn linspace(cx: &mut dyn Cx, start: f64, stop: f64, n: usize) -> Built {
    check_size(n, "the `linspace` count")?;
    if n > MAX_SEQUENCE {
        return Err(BuildError::new(format!("`linspace` of {n} values is too long (at most 2^24)")));
    }
    let values: Vec<f32> = (0..n)
        .map(|i| {
            if i + 1 == n && n > 1 {
                stop
            } else {
                start + (stop - start) * i as f64 / (n - 1).max(1) as f64
            }
        })
        .map(|v| v as f32)
        .collect();
    sequence(cx, values, format!("linspace({start}, {stop}, {n})"))
}

/// `eye(rows, cols)` (NumPy's `eye(N, M)`): the f32 `[rows, cols]` matrix
/// with ones on the main diagonal and zeros elsewhere, a compile-time
/// constant. `eye(2, 3)` is the identity affine transform of a spatial
/// transformer.
pub fn eye(cx: &mut dyn Cx, rows: usize, cols: usize) -> Built {
    check_size(rows, "the `eye` row count")?;
    check_size(cols, "the `eye` column count")?;
    if rows.saturating_mul(cols) > MAX_SEQUENCE {
        return Err(BuildError::new(format!("`eye({rows}, {cols})` is too large (at most 2^24 values)")));
    }
    let values: Vec<f32> = (0..rows * cols).map(|k| if k / cols == k % cols { 1.0 } else { 0.0 }).collect();
    let ty = Type::new(DType::F32, Shape::known(&[rows, cols]));
    Ok(cx.constant("values", ty, ConstData::F32(values), format!("eye({rows}, {cols})")))
}

fn sequence(cx: &mut dyn Cx, values: Vec<f32>, origin: String) -> Built {
    let ty = Type::new(DType::F32, Shape::known(&[values.len()]));
    Ok(cx.constant("values", ty, ConstData::F32(values), origin))
}

/// Uniform numbers on `[low, high)` of `shape`, drawn afresh at every step.
pub fn uniform(cx: &mut dyn Cx, dims: &[ReshapeDim], low: f64, high: f64) -> Built {
    if !(low.is_finite() && high.is_finite()) || low > high {
        return Err(BuildError::new(format!(
            "`uniform` needs finite low <= high, got low {low} and high {high}"
        )));
    }
    let s = written_shape(cx, "uniform", dims)?;
    let u = draw(cx, &s)?;
    let scaled = bin_const(cx, BinaryOp::Mul, u, high - low)?;
    bin_const(cx, BinaryOp::Add, scaled, low)
}

/// Normal numbers with `mean` and standard deviation `std` of `shape`,
/// drawn afresh at every step by the Box–Muller transform of two uniform
/// draws `u1`, `u2` (each its own stream):
/// `mean + std·sqrt(-2·ln(1 - u1))·cos(2π·u2)` (`1 - u1` is in `(0, 1]`, so
/// the logarithm is finite).
pub fn normal(cx: &mut dyn Cx, dims: &[ReshapeDim], mean: f64, std: f64) -> Built {
    if !(mean.is_finite() && std.is_finite()) || std < 0.0 {
        return Err(BuildError::new(format!(
            "`normal` needs a finite mean and a finite std >= 0, got mean {mean} and std {std}"
        )));
    }
    let s = written_shape(cx, "normal", dims)?;
    let u1 = draw(cx, &s)?;
    let u2 = draw(cx, &s)?;
    let one = splat(cx, 1.0, &s)?;
    let v = bin(cx, BinaryOp::Sub, one, u1)?;
    let l = unary(cx, UnaryOp::Log, v)?;
    let l = bin_const(cx, BinaryOp::Mul, l, -2.0)?;
    let r = unary(cx, UnaryOp::Sqrt, l)?;
    let angle = bin_const(cx, BinaryOp::Mul, u2, std::f64::consts::TAU)?;
    let c = unary(cx, UnaryOp::Cos, angle)?;
    let z = bin(cx, BinaryOp::Mul, r, c)?;
    let z = bin_const(cx, BinaryOp::Mul, z, std)?;
    bin_const(cx, BinaryOp::Add, z, mean)
}

/// A fresh uniform draw on `[0, 1)` of shape `s` (its own stream).
fn draw(cx: &mut dyn Cx, s: &Shape) -> Built {
    let key = cx.key();
    let stream = cx.next_stream();
    emit(cx, Op::RngUniform { shape: s.clone(), stream }, &[key])
}
