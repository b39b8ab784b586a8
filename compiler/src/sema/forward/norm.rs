//! Normalisation layers: `batchnorm`, `layernorm`, `groupnorm`.
//!
//! All three compute `(x - mean) / sqrt(var + eps) · weight + bias` with the
//! biased variance, over different axes, as PyTorch does; layernorm, over
//! the last axis, through the `standardize` primitive, which multiplies by
//! `1 / sqrt(var + eps)` as PyTorch's kernel does. The scale (`weight`,
//! initialised to ones) and shift (`bias`, zeros) are created in that order;
//! batchnorm then creates its `running_mean` (zeros) and `running_var` (ones)
//! state.

use super::emit::{
    bin, bin_const, broadcast, channel_view, check_size, const_bin, emit, expand_back, known_dim,
    reduce_mean, reshape_to, shape, unary, want_f32,
};
use super::{BuildError, Built, Cx};
use crate::ir::{BinaryOp, Dim, Init, Mode, Op, ParamRole, Shape, UnaryOp, ValueId};

fn check_eps(what: &str, eps: f64) -> Result<(), BuildError> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(BuildError::new(format!("`{what}` eps must be a non-negative number, got {eps}")));
    }
    Ok(())
}

/// `x - mean` and the biased variance over `axes` (the variance reduced).
fn moments(cx: &mut dyn Cx, x: ValueId, axes: &[usize]) -> Result<(ValueId, ValueId, ValueId), BuildError> {
    let full = shape(cx, x);
    let mean = reduce_mean(cx, x, axes)?;
    let mean_b = expand_back(cx, mean, &full, axes)?;
    let centered = bin(cx, BinaryOp::Sub, x, mean_b)?;
    let sq = bin(cx, BinaryOp::Mul, centered, centered)?;
    let var = reduce_mean(cx, sq, axes)?;
    Ok((centered, mean, var))
}

/// `sqrt(var + eps)`.
fn std_dev(cx: &mut dyn Cx, var: ValueId, eps: f64) -> Built {
    let v = bin_const(cx, BinaryOp::Add, var, eps)?;
    unary(cx, UnaryOp::Sqrt, v)
}

/// Normalises `x` over `axes`: `(x - mean) / sqrt(var + eps)`.
fn standardize(cx: &mut dyn Cx, x: ValueId, axes: &[usize], eps: f64) -> Built {
    let full = shape(cx, x);
    let (centered, _, var) = moments(cx, x, axes)?;
    let sd = std_dev(cx, var, eps)?;
    let sd = expand_back(cx, sd, &full, axes)?;
    bin(cx, BinaryOp::Div, centered, sd)
}

/// Normalises `x` over its last axis: the `standardize` primitive, which
/// the runtime computes a row at a time (see [`Op::Standardize`]).
pub(crate) fn standardize_last(cx: &mut dyn Cx, x: ValueId, eps: f64) -> Built {
    emit(cx, Op::Standardize { eps }, &[x])
}

/// `xhat · weight + bias` with `[C]` parameters laid along axis 1.
fn affine_channel(cx: &mut dyn Cx, xhat: ValueId, w: ValueId, b: ValueId) -> Built {
    let full = shape(cx, xhat);
    let w = channel_view(cx, w, &full)?;
    let b = channel_view(cx, b, &full)?;
    let y = bin(cx, BinaryOp::Mul, xhat, w)?;
    bin(cx, BinaryOp::Add, y, b)
}

fn scale_shift(cx: &mut dyn Cx, n: usize) -> (ValueId, ValueId) {
    let w = cx.param("weight", ParamRole::Scale, Shape::known(&[n]), Init::Ones);
    let b = cx.param("bias", ParamRole::Shift, Shape::known(&[n]), Init::Zeros);
    (w, b)
}

/// The channel count (axis 1) of an input of rank >= 2.
fn channels(cx: &mut dyn Cx, x: ValueId, what: &str) -> Result<usize, BuildError> {
    let t = want_f32(cx, x, what, 0)?;
    if t.shape.rank() < 2 {
        return Err(BuildError::new(format!(
            "`{what}` needs an input with at least 2 axes [B, C, ...], got {t}"
        ))
        .at(0));
    }
    let c = known_dim(&t, 1, what, 0)?;
    check_size(c, &format!("the channel count of the `{what}` input")).map_err(|e| e.at(0))?;
    Ok(c)
}

/// Batch normalisation over every axis but the channel axis 1 (PyTorch
/// `nn.BatchNorm{1,2,3}d`).
///
/// Train mode normalises with the batch mean and biased variance and records
/// `running = (1 - momentum)·running + momentum·batch`, where the variance
/// fed to the running estimate is the unbiased one (`var · n / (n - 1)`, `n`
/// the number of values per channel). Infer mode normalises with the running
/// statistics.
pub fn batchnorm(cx: &mut dyn Cx, x: ValueId, momentum: f64, eps: f64) -> Built {
    if !(0.0..=1.0).contains(&momentum) {
        return Err(BuildError::new(format!("`batchnorm` momentum must be in [0, 1], got {momentum}")));
    }
    check_eps("batchnorm", eps)?;
    let c = channels(cx, x, "batchnorm")?;
    let (w, b) = scale_shift(cx, c);
    let rm = cx.state("running_mean", Shape::known(&[c]), Init::Zeros);
    let rv = cx.state("running_var", Shape::known(&[c]), Init::Ones);
    let full = shape(cx, x);
    let axes: Vec<usize> = (0..full.rank()).filter(|&i| i != 1).collect();
    let xhat = match cx.mode() {
        Mode::Train => {
            let (centered, mean, var) = moments(cx, x, &axes)?;
            let sd = std_dev(cx, var, eps)?;
            let sd = expand_back(cx, sd, &full, &axes)?;
            let xhat = bin(cx, BinaryOp::Div, centered, sd)?;
            update_running(cx, x, &axes, (rm, rv), (mean, var), momentum)?;
            xhat
        }
        Mode::Infer => {
            let mean = channel_view(cx, rm, &full)?;
            let sd = std_dev(cx, rv, eps)?;
            let sd = channel_view(cx, sd, &full)?;
            let centered = bin(cx, BinaryOp::Sub, x, mean)?;
            bin(cx, BinaryOp::Div, centered, sd)?
        }
    };
    affine_channel(cx, xhat, w, b)
}

/// Records the new running mean and (unbiased) running variance.
fn update_running(
    cx: &mut dyn Cx,
    x: ValueId,
    axes: &[usize],
    (rm, rv): (ValueId, ValueId),
    (mean, var): (ValueId, ValueId),
    momentum: f64,
) -> Result<(), BuildError> {
    let n = emit(cx, Op::Size { axes: axes.to_vec() }, &[x])?;
    let n_minus_1 = bin_const(cx, BinaryOp::Sub, n, 1.0)?;
    let factor = bin(cx, BinaryOp::Div, n, n_minus_1)?;
    let s = shape(cx, var);
    let factor = broadcast(cx, factor, &s)?;
    let unbiased = bin(cx, BinaryOp::Mul, var, factor)?;
    let new_mean = blend(cx, rm, mean, momentum)?;
    let new_var = blend(cx, rv, unbiased, momentum)?;
    cx.update_state(rm, new_mean);
    cx.update_state(rv, new_var);
    Ok(())
}

/// `(1 - m)·old + m·new`.
fn blend(cx: &mut dyn Cx, old: ValueId, new: ValueId, m: f64) -> Built {
    let a = bin_const(cx, BinaryOp::Mul, old, 1.0 - m)?;
    let b = const_bin(cx, BinaryOp::Mul, m, new)?;
    bin(cx, BinaryOp::Add, a, b)
}

/// Layer normalisation over the last axis (PyTorch `nn.LayerNorm(D)`), with
/// weight and bias of that size.
pub fn layernorm(cx: &mut dyn Cx, x: ValueId, eps: f64) -> Built {
    check_eps("layernorm", eps)?;
    let t = want_f32(cx, x, "layernorm", 0)?;
    let r = t.shape.rank();
    if r == 0 {
        return Err(
            BuildError::new(format!("`layernorm` needs an input with at least 1 axis, got {t}")).at(0)
        );
    }
    let d = known_dim(&t, r - 1, "layernorm", 0)?;
    check_size(d, "the normalised size of `layernorm`").map_err(|e| e.at(0))?;
    let (w, b) = scale_shift(cx, d);
    let xhat = standardize_last(cx, x, eps)?;
    let w = broadcast(cx, w, &t.shape)?;
    let b = broadcast(cx, b, &t.shape)?;
    let y = bin(cx, BinaryOp::Mul, xhat, w)?;
    bin(cx, BinaryOp::Add, y, b)
}

/// Group normalisation (PyTorch `nn.GroupNorm(groups, C)`): channels split
/// into `groups` consecutive groups, each normalised over its channels and
/// all spatial positions of one sample; per-channel weight and bias.
pub fn groupnorm(cx: &mut dyn Cx, x: ValueId, groups: usize, eps: f64) -> Built {
    check_eps("groupnorm", eps)?;
    check_size(groups, "`groupnorm` groups")?;
    let c = channels(cx, x, "groupnorm")?;
    if c % groups != 0 {
        let t = cx.graph().ty(x).clone();
        return Err(BuildError::new(format!(
            "`groupnorm` with {groups} groups needs a channel count divisible by {groups}, but {t} has {c} channels"
        ))
        .at(0));
    }
    let (w, b) = scale_shift(cx, c);
    let full = shape(cx, x);
    let mut dims = vec![full.dims()[0].clone(), Dim::Known(groups), Dim::Known(c / groups)];
    dims.extend_from_slice(&full.dims()[2..]);
    let grouped = reshape_to(cx, x, Shape(dims))?;
    let axes: Vec<usize> = (2..full.rank() + 1).collect();
    let xhat = standardize(cx, grouped, &axes, eps)?;
    let xhat = reshape_to(cx, xhat, full)?;
    affine_channel(cx, xhat, w, b)
}
