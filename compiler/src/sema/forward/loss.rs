//! Losses: scalar f32 values built from a prediction (operand 0), a target
//! (operand 1) and, for the regression losses, an optional weight
//! (operand 2). Predictions and targets must have equal shapes — broadcasting
//! `[B, 1]` against `[B]` silently would average a `[B, B]` matrix.

use super::activation::{log_softmax, softplus};
use super::emit::{
    all_axes, bin, bin_const, broadcast, const_bin, emit, known_dim, konst, mean_all, reduce_sum, shape,
    unary, want_f32,
};
use super::{BuildError, Built, Cx, Penalty};
use crate::ir::infer::broadcasts_to;
use crate::ir::{BinaryOp, DType, Op, Shape, UnaryOp, ValueId};

/// Checks that prediction and target are f32 tensors of one shape.
fn same_shape(cx: &mut dyn Cx, what: &str, pred: ValueId, target: ValueId) -> Result<Shape, BuildError> {
    let tp = want_f32(cx, pred, what, 0)?;
    let tt = want_f32(cx, target, what, 1)?;
    if tp.shape != tt.shape {
        return Err(BuildError::new(format!(
            "`{what}` needs a prediction and target of equal shape, got {tp} and {tt}"
        ))
        .at(1)
        .expected(format!("{tp}"))
        .label(format!("shapes {} and {} differ", tp.shape, tt.shape)));
    }
    Ok(tp.shape)
}

/// The mean of `e`, or with a weight `w` (broadcast to `e`'s shape) the
/// weighted mean `Σ w·e / Σ w`.
fn weighted_mean(cx: &mut dyn Cx, what: &str, e: ValueId, weight: Option<ValueId>) -> Built {
    let Some(w) = weight else { return mean_all(cx, e) };
    let s = shape(cx, e);
    let tw = want_f32(cx, w, what, 2)?;
    if !broadcasts_to(&tw.shape, &s) {
        return Err(BuildError::new(format!(
            "`{what}` weight {tw} does not broadcast to the prediction's shape {s}"
        ))
        .at(2));
    }
    let w = broadcast(cx, w, &s)?;
    let we = bin(cx, BinaryOp::Mul, w, e)?;
    let axes = all_axes(s.rank());
    let num = reduce_sum(cx, we, &axes)?;
    let den = reduce_sum(cx, w, &axes)?;
    bin(cx, BinaryOp::Div, num, den)
}

fn difference(cx: &mut dyn Cx, what: &str, pred: ValueId, target: ValueId) -> Built {
    same_shape(cx, what, pred, target)?;
    bin(cx, BinaryOp::Sub, pred, target)
}

/// Mean squared error `mean((pred - target)²)`.
pub fn mse(cx: &mut dyn Cx, pred: ValueId, target: ValueId, weight: Option<ValueId>) -> Built {
    let d = difference(cx, "mse", pred, target)?;
    let e = bin(cx, BinaryOp::Mul, d, d)?;
    weighted_mean(cx, "mse", e, weight)
}

/// The error term of a balanced loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balanced {
    /// B-MSE: `w·(pred − target)²`.
    Squared,
    /// B-MAE: `w·|pred − target|`.
    Absolute,
}

/// The rain-rate thresholds (mm/h) of the balanced losses of Shi et al.
/// 2017, and the weight from each threshold up.
pub const BALANCED_THRESHOLDS: [f64; 5] = [0.5, 2.0, 5.0, 10.0, 30.0];
pub const BALANCED_WEIGHTS: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 30.0];

/// The balanced losses B-MSE and B-MAE (Shi et al. 2017): the mean over
/// every element of `w(target)·e`, where `w(t)` is `weights[k]` for the
/// largest `k` with `t ≥ thresholds[k]` and 1 below the first threshold, so
/// that heavy rain counts as much as it matters. `thresholds` increase
/// strictly and have one weight each. The weights come from the target:
/// no gradient flows through them.
pub fn balanced(
    cx: &mut dyn Cx,
    pred: ValueId,
    target: ValueId,
    thresholds: &[f64],
    weights: &[f64],
    kind: Balanced,
) -> Built {
    let what = match kind {
        Balanced::Squared => "bmse",
        Balanced::Absolute => "bmae",
    };
    if thresholds.len() != weights.len() {
        return Err(BuildError::new(format!(
            "`{what}` needs one weight per threshold: {} thresholds, {} weights",
            thresholds.len(),
            weights.len()
        )));
    }
    if thresholds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(BuildError::new(format!("`{what}` thresholds must increase: {thresholds:?}")));
    }
    let d = difference(cx, what, pred, target)?;
    let e = match kind {
        Balanced::Squared => bin(cx, BinaryOp::Mul, d, d)?,
        Balanced::Absolute => unary(cx, UnaryOp::Abs, d)?,
    };
    // w = 1 + Σ_k (weights[k] − weights[k−1])·[t ≥ thresholds[k]], with 1
    // before the first weight.
    let s = shape(cx, target);
    let mut w = konst(cx, 1.0);
    w = broadcast(cx, w, &s)?;
    let mut below = 1.0;
    for (&t, &wk) in thresholds.iter().zip(weights) {
        let bound = konst(cx, t);
        let bound = broadcast(cx, bound, &s)?;
        let above = emit(cx, Op::Compare(crate::ir::CmpOp::Ge), &[target, bound])?;
        let step = emit(cx, Op::Cast { to: DType::F32 }, &[above])?;
        let step = bin_const(cx, BinaryOp::Mul, step, wk - below)?;
        w = bin(cx, BinaryOp::Add, w, step)?;
        below = wk;
    }
    let we = bin(cx, BinaryOp::Mul, w, e)?;
    mean_all(cx, we)
}

/// Mean absolute error `mean(|pred - target|)`.
pub fn mae(cx: &mut dyn Cx, pred: ValueId, target: ValueId, weight: Option<ValueId>) -> Built {
    let d = difference(cx, "mae", pred, target)?;
    let e = unary(cx, UnaryOp::Abs, d)?;
    weighted_mean(cx, "mae", e, weight)
}

/// PyTorch `HuberLoss(delta)`: `0.5·d²` where `|d| < delta`, else
/// `delta·(|d| - 0.5·delta)`, written without a branch as
/// `0.5·q² + delta·(|d| - q)` with `q = min(|d|, delta)`.
pub fn huber(cx: &mut dyn Cx, pred: ValueId, target: ValueId, delta: f64, weight: Option<ValueId>) -> Built {
    if !(delta.is_finite() && delta > 0.0) {
        return Err(BuildError::new(format!("`huber` delta must be positive, got {delta}")));
    }
    let d = difference(cx, "huber", pred, target)?;
    let a = unary(cx, UnaryOp::Abs, d)?;
    let q = bin_const(cx, BinaryOp::Min, a, delta)?;
    let q2 = bin(cx, BinaryOp::Mul, q, q)?;
    let quad = bin_const(cx, BinaryOp::Mul, q2, 0.5)?;
    let excess = bin(cx, BinaryOp::Sub, a, q)?;
    let lin = bin_const(cx, BinaryOp::Mul, excess, delta)?;
    let e = bin(cx, BinaryOp::Add, quad, lin)?;
    weighted_mean(cx, "huber", e, weight)
}

/// Cross-entropy of logits `[B, C]` or `[B, C, *S]` (classes on axis 1,
/// PyTorch `CrossEntropyLoss`) against i32 class indices `[B]` / `[B, *S]`
/// (one-hot encoded; an out-of-range index contributes zero) or f32
/// probabilities of the logits' shape; the mean over samples and positions.
pub fn cross_entropy(cx: &mut dyn Cx, logits: ValueId, labels: ValueId) -> Built {
    let tz = want_f32(cx, logits, "cross_entropy", 0)?;
    let r = tz.shape.rank();
    if r < 2 {
        return Err(BuildError::new(format!(
            "`cross_entropy` needs logits with classes on axis 1, [B, C] or [B, C, ...], got {tz}"
        ))
        .at(0));
    }
    let classes = known_dim(&tz, 1, "cross_entropy", 0)?;
    let mut index_dims = tz.shape.dims().to_vec();
    index_dims.remove(1);
    let index_shape = Shape(index_dims);
    let tl = cx.graph().ty(labels).clone();
    let probs = match tl.dtype {
        DType::I32 if tl.shape == index_shape => one_hot_channels(cx, labels, classes, r)?,
        DType::F32 if tl.shape == tz.shape => labels,
        _ => {
            return Err(BuildError::new(format!(
            "`cross_entropy` labels for logits {tz} must be class indices {} or probabilities {}, found {tl}",
            crate::ir::Type::new(DType::I32, index_shape.clone()),
            tz
        ))
            .at(1)
            .expected(format!("{} or {tz}", crate::ir::Type::new(DType::I32, index_shape.clone())))
            .label("labels do not match the logits")
            .help(labels_help(&tz, &tl)))
        }
    };
    let lsm = log_softmax(cx, logits, 1)?;
    let prod = bin(cx, BinaryOp::Mul, probs, lsm)?;
    let total = reduce_sum(cx, prod, &all_axes(r))?;
    let positions: Vec<usize> = (0..r).filter(|&i| i != 1).collect();
    let n = emit(cx, Op::Size { axes: positions }, &[logits])?;
    let mean = bin(cx, BinaryOp::Div, total, n)?;
    unary(cx, UnaryOp::Neg, mean)
}

/// The likeliest fix for labels that do not match the logits.
fn labels_help(logits: &crate::ir::Type, labels: &crate::ir::Type) -> String {
    if labels.dtype == DType::I32 && labels.shape.rank() + 1 < logits.shape.rank() {
        return format!(
            "the logits {logits} have axes after the classes (axis 1); to classify whole samples, \
             `flatten` (or `global_avgpool`) before the last `dense`"
        );
    }
    "declare class indices as i32 (`target y: i32[B]`); f32 labels are per-class probabilities \
     with the logits' shape"
        .to_string()
}

/// `i32[B, *S] → f32[B, C, *S]`.
fn one_hot_channels(cx: &mut dyn Cx, labels: ValueId, classes: usize, rank: usize) -> Built {
    let oh = emit(cx, Op::OneHot { classes }, &[labels])?;
    if rank == 2 {
        return Ok(oh);
    }
    let mut axes = vec![0, rank - 1];
    axes.extend(1..rank - 1);
    emit(cx, Op::Permute { axes }, &[oh])
}

/// Binary cross-entropy with logits (PyTorch `BCEWithLogitsLoss`), in the
/// stable form `max(z, 0) - z·t + log(1 + exp(-|z|))`, averaged.
pub fn bce(cx: &mut dyn Cx, logits: ValueId, targets: ValueId) -> Built {
    same_shape(cx, "bce", logits, targets)?;
    let sp = softplus(cx, logits)?;
    let zt = bin(cx, BinaryOp::Mul, logits, targets)?;
    let e = bin(cx, BinaryOp::Sub, sp, zt)?;
    mean_all(cx, e)
}

/// Smoothing term of the soft Dice coefficient.
pub const DICE_EPS: f64 = 1e-6;

/// `1 - mean over (sample, channel) of (2·Σ p·t + eps) / (Σ p + Σ t + eps)`,
/// sums over the spatial axes 2.. of `[B, C, *S]` tensors.
pub fn dice(cx: &mut dyn Cx, probs: ValueId, targets: ValueId) -> Built {
    let s = same_shape(cx, "dice", probs, targets)?;
    if s.rank() < 2 {
        return Err(BuildError::new(format!(
            "`dice` needs tensors [B, C, ...spatial] with at least 2 axes, got f32{s}"
        ))
        .at(0));
    }
    let axes: Vec<usize> = (2..s.rank()).collect();
    let pt = bin(cx, BinaryOp::Mul, probs, targets)?;
    let inter = reduce_sum(cx, pt, &axes)?;
    let sp = reduce_sum(cx, probs, &axes)?;
    let st = reduce_sum(cx, targets, &axes)?;
    let num = bin_const(cx, BinaryOp::Mul, inter, 2.0)?;
    let num = bin_const(cx, BinaryOp::Add, num, DICE_EPS)?;
    let den = bin(cx, BinaryOp::Add, sp, st)?;
    let den = bin_const(cx, BinaryOp::Add, den, DICE_EPS)?;
    let coef = bin(cx, BinaryOp::Div, num, den)?;
    let m = mean_all(cx, coef)?;
    const_bin(cx, BinaryOp::Sub, 1.0, m)
}

/// `l1` = `Σ |w|`, `l2` = `Σ w²`, summed over every element of every tensor
/// (no ½ factor); an empty list gives 0.
pub fn penalty(cx: &mut dyn Cx, xs: &[ValueId], kind: Penalty) -> Built {
    let what = match kind {
        Penalty::L1 => "l1",
        Penalty::L2 => "l2",
    };
    let mut total: Option<ValueId> = None;
    for (i, &x) in xs.iter().enumerate() {
        let t = want_f32(cx, x, what, i)?;
        let e = match kind {
            Penalty::L1 => unary(cx, UnaryOp::Abs, x)?,
            Penalty::L2 => bin(cx, BinaryOp::Mul, x, x)?,
        };
        let s = reduce_sum(cx, e, &all_axes(t.shape.rank()))?;
        total = Some(match total {
            Some(acc) => bin(cx, BinaryOp::Add, acc, s)?,
            None => s,
        });
    }
    Ok(total.unwrap_or_else(|| konst(cx, 0.0)))
}
