//! Attention and the layers of a transformer: `attention`,
//! `multihead_attention`, `embedding`, `positional_encoding` and
//! `transformer_layer`, each a composition of primitives (matmul, permute,
//! reshape, reduce, elementwise), so autodiff, fusion and code generation
//! need nothing new.
//!
//! Scaled dot-product attention is `softmax(q·kᵀ/√d)·v` over the last two
//! axes. The softmax subtracts each row's maximum; with a mask, disallowed
//! scores are replaced by −10³⁰ before the maximum (so a masked score
//! neither shifts the row nor receives a gradient) and their exponentials
//! underflow to exactly zero; a row with no allowed position divides by 1
//! instead of 0, giving zero weights and a zero output rather than NaN.
//! What the training step keeps is what the primitives' rules read: three
//! tensors of the scores' size `[.., T, S]` — the scaled scores (the
//! product's output), their exponentials (read by the rules of `exp` and of
//! the division) and the weights (read by the gradient of `weights·v`) —
//! the row maxima and sums, and `q`, `k`, `v`.
//!
//! Parameter names follow PyTorch where it has them: `multihead_attention`
//! creates `q_proj`, `k_proj`, `v_proj` and `out_proj` (each `weight
//! [out, in]` and `bias`, the separate-projection layout of
//! `nn.MultiheadAttention`), `transformer_layer` those of
//! `nn.TransformerEncoderLayer` (`self_attn.*`, `linear1`, `linear2`,
//! `norm1`, `norm2`), `embedding` a `weight [vocab, dim]`.

use super::activation::{activation, dropout};
use super::emit::{
    bin, bin_const, broadcast, check_param_size, check_size, emit, known_dim, reshape_to, shape, splat, ty,
    want_f32,
};
use super::norm::standardize_last;
use super::{Activation, BuildError, Built, Cx};
use crate::ir::infer::broadcasts_to;
use crate::ir::{BinaryOp, CmpOp, DType, Dim, Init, Op, ParamRole, Shape, Type, ValueId};

/// The value a disallowed score is replaced by before the row maximum:
/// `exp(MASKED - max)` is exactly 0 in f32 and f64 for any finite row.
const MASKED: f64 = -1e30;

/// Which positions a query may attend to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Every position.
    None,
    /// Query `t` attends to key positions `s <= t` (PyTorch's `is_causal`,
    /// aligned at the top left).
    Causal,
    /// A tensor broadcastable to the scores `[.., T, S]`: a position is
    /// allowed where it is true (bool) or non-zero (f32, i32). `operand`
    /// is its index among the call's tensor operands.
    Tensor { mask: ValueId, operand: usize },
}

/// `softmax(q·kᵀ/√D)·v` with `q: [.., T, D]`, `k: [.., S, D]`,
/// `v: [.., S, Dv]` (rank 3 `[B, T, D]` or 4 `[B, H, T, D]`, equal leading
/// axes) → `[.., T, Dv]`. Operands 0, 1, 2 are `q`, `k`, `v`.
pub fn attention(cx: &mut dyn Cx, q: ValueId, k: ValueId, v: ValueId, mask: Mask) -> Built {
    attend(cx, q, k, v, mask, 0.0, false)
}

/// [`attention`] with inverted dropout of probability `p` on the weights
/// (training only), as `nn.MultiheadAttention` applies it. The queries are
/// scaled by `1/√D` before the product (`q_scaled`: the caller did, in
/// the projection that made them), so the scores' gradient reaches the
/// products of the backward pass as the softmax's gradient leaves it,
/// with no pass of its own over the `[.., T, S]` scores; a mask is added
/// to the scores (0 where allowed, −1e30 elsewhere, as PyTorch adds a
/// float mask), which passes the gradient through unchanged.
fn attend(cx: &mut dyn Cx, q: ValueId, k: ValueId, v: ValueId, mask: Mask, p: f64, q_scaled: bool) -> Built {
    let what = "attention";
    let tq = want_f32(cx, q, what, 0)?;
    let tk = want_f32(cx, k, what, 1)?;
    let tv = want_f32(cx, v, what, 2)?;
    let r = tq.shape.rank();
    if r != 3 && r != 4 {
        return Err(BuildError::new(format!(
            "`attention` needs queries [B, T, D] or [B, H, T, D], got {tq}"
        ))
        .at(0)
        .expected("rank 3 [B, T, D] or rank 4 [B, H, T, D]"));
    }
    for (i, t) in [(1, &tk), (2, &tv)] {
        if t.shape.rank() != r {
            return Err(BuildError::new(format!(
                "`attention` needs q, k and v of one rank: q is {tq}, {} is {t}",
                ["q", "k", "v"][i]
            ))
            .at(i)
            .expected(format!("rank {r}")));
        }
    }
    let (dq, dk) = (&tq.shape.dims()[r - 1], &tk.shape.dims()[r - 1]);
    if dq != dk {
        return Err(BuildError::new(format!(
            "`attention` needs queries and keys of one width: q is {tq}, k is {tk} ({dq} vs {dk})"
        ))
        .at(1)
        .label(format!("query width {dq}, key width {dk}"))
        .expected(format!("width {dq} on the last axis"))
        .note("the scores are q·kᵀ over the last axis, so q and k need the same last size"));
    }
    let (sk, sv) = (&tk.shape.dims()[r - 2], &tv.shape.dims()[r - 2]);
    if sk != sv {
        return Err(BuildError::new(format!(
            "`attention` needs one value per key: k is {tk}, v is {tv} ({sk} vs {sv} positions)"
        ))
        .at(2)
        .expected(format!("{sk} positions on axis {}", r - 2)));
    }
    for (i, t) in [(1, &tk), (2, &tv)] {
        if t.shape.dims()[..r - 2] != tq.shape.dims()[..r - 2] {
            return Err(BuildError::new(format!(
                "`attention` needs q, k and v with the same leading axes: q is {tq}, {} is {t}",
                ["q", "k", "v"][i]
            ))
            .at(i));
        }
    }
    let d = known_dim(&tq, r - 1, what, 0)?;
    check_size(d, "the `attention` width").map_err(|e| e.at(0))?;

    let mut swap: Vec<usize> = (0..r).collect();
    swap.swap(r - 1, r - 2);
    let kt = emit(cx, Op::Permute { axes: swap }, &[k])?;
    let q = if q_scaled { q } else { bin_const(cx, BinaryOp::Mul, q, 1.0 / (d as f64).sqrt())? };
    let scores = emit(cx, Op::MatMul, &[q, kt])?;
    let full = shape(cx, scores);
    let scores = match mask_bias(cx, mask, &full)? {
        Some(bias) => bin(cx, BinaryOp::Add, scores, bias)?,
        None => scores,
    };
    // Masked scores weigh exactly 0: the row maximum of `softmax` is at
    // least MASKED / 2, so exp(MASKED - max) is 0, and a row with nothing
    // allowed is all zeros.
    let weights = emit(cx, Op::Softmax, &[scores])?;
    let weights = if p > 0.0 { dropout(cx, weights, p)? } else { weights };
    emit(cx, Op::MatMul, &[weights, v])
}

/// What `mask` adds to the scores: 0 where a position is allowed and
/// `MASKED` elsewhere, broadcast to the scores' shape `full` (`[.., T, S]`),
/// or `None` when every position is allowed.
fn mask_bias(cx: &mut dyn Cx, mask: Mask, full: &Shape) -> Result<Option<ValueId>, BuildError> {
    let r = full.rank();
    match mask {
        Mask::None => Ok(None),
        Mask::Causal => {
            let t = Type::f32(full.clone());
            let rows = known_dim(&t, r - 2, "causal attention", 0)?;
            let cols = known_dim(&t, r - 1, "causal attention", 1)?;
            let masked = MASKED as f32;
            let values: Vec<f32> =
                (0..rows).flat_map(|i| (0..cols).map(move |j| if j <= i { 0.0 } else { masked })).collect();
            let ty = Type::new(DType::F32, Shape::known(&[rows, cols]));
            let origin = format!("causal mask {rows}×{cols}: 0 where key ≤ query, else -1e30");
            let bias = cx.constant("causal_mask", ty, super::ConstData::F32(values), origin);
            Ok(Some(broadcast(cx, bias, full)?))
        }
        Mask::Tensor { mask, operand } => {
            let t = ty(cx, mask);
            if !broadcasts_to(&t.shape, full) {
                return Err(BuildError::new(format!(
                    "the attention mask {t} does not broadcast to the scores {full} (queries × keys)"
                ))
                .at(operand)
                .expected(format!("a shape broadcastable to {full}, e.g. [{}, {}]", full.dims()[r - 2], full.dims()[r - 1]))
                .note("NumPy broadcasting: the mask's axes align with the scores' from the right, each equal or 1"));
            }
            let keep = match t.dtype {
                DType::Bool => mask,
                DType::F32 => {
                    let zero = splat(cx, 0.0, &t.shape)?;
                    emit(cx, Op::Compare(CmpOp::Ne), &[mask, zero])?
                }
                DType::I32 => {
                    let m = emit(cx, Op::Cast { to: DType::F32 }, &[mask])?;
                    let zero = splat(cx, 0.0, &t.shape)?;
                    emit(cx, Op::Compare(CmpOp::Ne), &[m, zero])?
                }
            };
            let zero = splat(cx, 0.0, &t.shape)?;
            let masked = splat(cx, MASKED, &t.shape)?;
            let bias = emit(cx, Op::Select, &[keep, zero, masked])?;
            Ok(Some(broadcast(cx, bias, full)?))
        }
    }
}

/// The weight `[units, inputs]` and bias `[units]` of a projection named
/// `name` (`name.weight`, `name.bias`), uniform on `±1/√inputs` (PyTorch
/// `nn.Linear`).
fn linear_params(cx: &mut dyn Cx, name: &str, units: usize, inputs: usize, bias: bool) -> Linear {
    let init = Init::Uniform { bound: 1.0 / (inputs as f64).sqrt() };
    let weight = cx.param(&format!("{name}.weight"), ParamRole::Weight, Shape::known(&[units, inputs]), init);
    let bias = bias.then(|| cx.param(&format!("{name}.bias"), ParamRole::Bias, Shape::known(&[units]), init));
    Linear { weight, bias, units, inputs }
}

#[derive(Clone, Copy)]
struct Linear {
    weight: ValueId,
    bias: Option<ValueId>,
    units: usize,
    inputs: usize,
}

/// `x·Wᵀ + b` over the last axis of `x: [.., inputs]` (rank >= 2).
fn linear(cx: &mut dyn Cx, x: ValueId, l: Linear) -> Built {
    let s = shape(cx, x);
    let r = s.rank();
    let wt = emit(cx, Op::Permute { axes: vec![1, 0] }, &[l.weight])?;
    let mut dims = s.dims()[..r - 2].to_vec();
    dims.extend([Dim::Known(l.inputs), Dim::Known(l.units)]);
    let wt = broadcast(cx, wt, &Shape(dims))?;
    let y = emit(cx, Op::MatMul, &[x, wt])?;
    match l.bias {
        Some(b) => {
            let s = shape(cx, y);
            let b = broadcast(cx, b, &s)?;
            bin(cx, BinaryOp::Add, y, b)
        }
        None => Ok(y),
    }
}

/// The four projections of multi-head attention.
#[derive(Clone, Copy)]
struct Projections {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

fn projections(cx: &mut dyn Cx, prefix: &str, width: usize, context: usize, bias: bool) -> Projections {
    Projections {
        q: linear_params(cx, &format!("{prefix}q_proj"), width, width, bias),
        k: linear_params(cx, &format!("{prefix}k_proj"), width, context, bias),
        v: linear_params(cx, &format!("{prefix}v_proj"), width, context, bias),
        out: linear_params(cx, &format!("{prefix}out_proj"), width, width, bias),
    }
}

/// The checked arguments of `multihead_attention` beside its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heads {
    pub heads: usize,
    pub mask: Mask,
    pub dropout: f64,
    pub bias: bool,
}

/// A sequence `[B, T, E]`: its type, `T` and `E`.
fn sequence(
    cx: &mut dyn Cx,
    x: ValueId,
    what: &str,
    operand: usize,
) -> Result<(Type, usize, usize), BuildError> {
    let t = want_f32(cx, x, what, operand)?;
    if t.shape.rank() != 3 {
        return Err(BuildError::new(format!(
            "`{what}` needs a sequence [B, T, E] (positions × features), got {t}"
        ))
        .at(operand)
        .expected("rank 3 [B, T, E]")
        .help("a single sequence is `reshape(x, [1, T, E])`; one feature per position is `reshape(x, [B, T, 1])`"));
    }
    let steps = known_dim(&t, 1, what, operand)?;
    let width = known_dim(&t, 2, what, operand)?;
    check_size(width, &format!("the `{what}` width (axis 2)")).map_err(|e| e.at(operand))?;
    Ok((t, steps, width))
}

/// Checks that `heads` divides `width`: the message names both.
fn check_heads(what: &str, heads: usize, width: usize) -> Result<usize, BuildError> {
    check_size(heads, &format!("the number of `{what}` heads"))?;
    if !width.is_multiple_of(heads) {
        let fits: Vec<String> =
            (1..=width.min(64)).filter(|h| width.is_multiple_of(*h)).map(|h| h.to_string()).collect();
        return Err(BuildError::new(format!(
            "{heads} heads do not divide the width {width} of the `{what}` input"
        ))
        .at(0)
        .label(format!("`heads: {heads}` does not divide {width}"))
        .expected(format!("a width divisible by {heads}"))
        .note(format!(
            "each head attends over width / heads features; {width} divides into {}",
            fits.join(", ")
        ))
        .help("choose `heads` among those, or project the input to a divisible width with `dense` first"));
    }
    Ok(width / heads)
}

/// `multihead_attention(x, heads, context, mask, dropout, bias)`: queries
/// from `x: [B, T, E]`, keys and values from `context: [B, S, Ec]` (`x`
/// itself when `None`), each projected (`q_proj [E, E]`, `k_proj`,
/// `v_proj [E, Ec]`), split into `heads` heads of `E / heads` features
/// (head `j` = features `j·E/heads ..`), attended per head with `mask`
/// (broadcast to `[B, heads, T, S]`), joined and projected by `out_proj`
/// `[E, E]` → `[B, T, E]`. Operand 0 is `x`, 1 the context.
pub fn multihead_attention(cx: &mut dyn Cx, x: ValueId, context: Option<ValueId>, h: Heads) -> Built {
    let what = "multihead_attention";
    let (tx, _, width) = sequence(cx, x, what, 0)?;
    let head = check_heads(what, h.heads, width)?;
    let ctx_width = match context {
        Some(c) => {
            let (tc, _, cw) = sequence(cx, c, what, 1)?;
            if tc.shape.dims()[0] != tx.shape.dims()[0] {
                return Err(BuildError::new(format!(
                    "`{what}` needs a context with the batch of its input: x is {tx}, the context is {tc}"
                ))
                .at(1));
            }
            cw
        }
        None => width,
    };
    for (n, w) in [(width, width), (width, ctx_width)] {
        check_param_size(&[n, w], &format!("a `{what}` projection"))?;
    }
    let p = projections(cx, "", width, ctx_width, h.bias);
    self_or_cross(cx, x, context.unwrap_or(x), p, h, head)
}

/// The body of multi-head attention with its projections made.
fn self_or_cross(cx: &mut dyn Cx, x: ValueId, ctx: ValueId, p: Projections, h: Heads, head: usize) -> Built {
    // Queries scaled by 1/√head as the projection makes them (in its
    // product's epilogue), before the heads are split.
    let q = linear(cx, x, p.q)?;
    let q = bin_const(cx, BinaryOp::Mul, q, 1.0 / (head as f64).sqrt())?;
    let k = linear(cx, ctx, p.k)?;
    let v = linear(cx, ctx, p.v)?;
    let (q, k, v) = (
        split_heads(cx, q, h.heads, head)?,
        split_heads(cx, k, h.heads, head)?,
        split_heads(cx, v, h.heads, head)?,
    );
    let a = attend(cx, q, k, v, h.mask, h.dropout, true).map_err(|e| mask_operand(e, h.mask))?;
    let a = emit(cx, Op::Permute { axes: vec![0, 2, 1, 3] }, &[a])?;
    let s = shape(cx, a);
    let joined = Shape(vec![s.dims()[0].clone(), s.dims()[1].clone(), Dim::Known(h.heads * head)]);
    let a = reshape_to(cx, a, joined)?;
    linear(cx, a, p.out)
}

/// An error of [`attend`] about its operands 0–2 (the projected heads)
/// concerns no operand of the call but the mask.
fn mask_operand(mut e: BuildError, mask: Mask) -> BuildError {
    e.operand = match (mask, e.operand) {
        (Mask::Tensor { operand, .. }, Some(i)) if i == operand => Some(i),
        _ => None,
    };
    e
}

/// `[B, T, heads·head]` → `[B, heads, T, head]`.
fn split_heads(cx: &mut dyn Cx, x: ValueId, heads: usize, head: usize) -> Built {
    let s = shape(cx, x);
    let split = Shape(vec![s.dims()[0].clone(), s.dims()[1].clone(), Dim::Known(heads), Dim::Known(head)]);
    let x = reshape_to(cx, x, split)?;
    emit(cx, Op::Permute { axes: vec![0, 2, 1, 3] }, &[x])
}

/// `embedding(x, vocab, dim)`: row `x[..]` of `weight [vocab, dim]` for
/// each i32 index of `x` → `[.., dim]` (PyTorch `nn.Embedding`, weight
/// normal with std 1). Computed as `one_hot(x, vocab)·weight`, so an index
/// outside `0..vocab` gives a zero row, and the gradient of the weight is
/// `one_hotᵀ·dy`; the cost is `vocab·dim` per position.
pub fn embedding(cx: &mut dyn Cx, x: ValueId, vocab: usize, dim: usize) -> Built {
    let t = ty(cx, x);
    if t.dtype != DType::I32 {
        return Err(BuildError::new(format!("`embedding` looks up i32 indices, got {t}"))
            .at(0)
            .expected(Type::new(DType::I32, t.shape.clone()).to_string())
            .help("declare the input with element type i32, e.g. `input tokens: i32[B, T]`"));
    }
    if t.shape.rank() == 0 {
        return Err(BuildError::new(format!("`embedding` needs indices with at least 1 axis, got {t}")).at(0));
    }
    check_size(vocab, "the `embedding` vocabulary")?;
    check_size(dim, "the `embedding` dimension")?;
    check_param_size(&[vocab, dim], "the `embedding` weight")?;
    let w = cx.param("weight", ParamRole::Weight, Shape::known(&[vocab, dim]), Init::Normal { std: 1.0 });
    let hot = emit(cx, Op::OneHot { classes: vocab }, &[x])?;
    let r = t.shape.rank();
    if r == 1 {
        return emit(cx, Op::MatMul, &[hot, w]);
    }
    let mut dims = t.shape.dims()[..r - 1].to_vec();
    dims.extend([Dim::Known(vocab), Dim::Known(dim)]);
    let w = broadcast(cx, w, &Shape(dims))?;
    emit(cx, Op::MatMul, &[hot, w])
}

/// How `positional_encoding` encodes positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// The fixed encoding of Vaswani et al. (2017).
    Sinusoidal,
    /// A trained `weight [T, D]`, normal with std 0.02.
    Learned,
}

/// The sinusoidal encoding `[T, D]`: `pe[t, 2i] = sin(t / 10000^(2i/D))`,
/// `pe[t, 2i+1] = cos(t / 10000^(2i/D))`, computed in f64.
pub fn sinusoidal(steps: usize, width: usize) -> Vec<f32> {
    let mut pe = Vec::with_capacity(steps * width);
    for t in 0..steps {
        for j in 0..width {
            let even = (j - j % 2) as f64;
            let angle = t as f64 / 10000f64.powf(even / width as f64);
            pe.push(if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    pe
}

/// `x + pe` for `x: [.., T, D]` (rank >= 2, `T` and `D` known), `pe [T, D]`
/// broadcast over the leading axes: a constant `pe` (sinusoidal) or the
/// parameter `weight` (learned).
pub fn positional_encoding(cx: &mut dyn Cx, x: ValueId, kind: Positions) -> Built {
    let what = "positional_encoding";
    let t = want_f32(cx, x, what, 0)?;
    let r = t.shape.rank();
    if r < 2 {
        return Err(BuildError::new(format!("`{what}` needs positions × features [.., T, D], got {t}"))
            .at(0)
            .expected("rank >= 2 [.., T, D]"));
    }
    let steps = known_dim(&t, r - 2, what, 0)?;
    let width = known_dim(&t, r - 1, what, 0)?;
    check_size(steps, &format!("the `{what}` positions"))?;
    check_size(width, &format!("the `{what}` width"))?;
    check_param_size(&[steps, width], &format!("the `{what}` table"))?;
    let table = Shape::known(&[steps, width]);
    let pe = match kind {
        Positions::Sinusoidal => {
            let data = super::ConstData::F32(sinusoidal(steps, width));
            let origin = format!("sinusoidal positional encoding {steps}×{width}");
            cx.constant("pe", Type::f32(table), data, origin)
        }
        Positions::Learned => cx.param("weight", ParamRole::Weight, table, Init::Normal { std: 0.02 }),
    };
    let pe = broadcast(cx, pe, &t.shape)?;
    bin(cx, BinaryOp::Add, x, pe)
}

/// Where `transformer_layer` normalises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `h = x + attn(norm1(x))`, `y = h + ff(norm2(h))`.
    Pre,
    /// `h = norm1(x + attn(x))`, `y = norm2(h + ff(h))` (PyTorch's default).
    Post,
}

/// The arguments of `transformer_layer` beside its input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Encoder {
    pub heads: usize,
    pub ff: usize,
    pub norm: Norm,
    pub dropout: f64,
    /// `gelu` or `relu`.
    pub activation: Activation,
    pub mask: Mask,
    pub eps: f64,
}

/// One encoder layer (PyTorch `nn.TransformerEncoderLayer` with
/// `batch_first=True`): self-attention (`self_attn.*`) and a feed-forward
/// block `linear2(dropout(act(linear1(.))))` of `ff` hidden units, each
/// with a residual connection and a layer norm over the last axis
/// (`norm1`, `norm2`), before (`pre`) or after (`post`) it; `dropout` on
/// the attention weights, the hidden units and both branch outputs.
pub fn transformer_layer(cx: &mut dyn Cx, x: ValueId, e: Encoder) -> Built {
    let what = "transformer_layer";
    let (_, _, width) = sequence(cx, x, what, 0)?;
    let head = check_heads(what, e.heads, width)?;
    check_size(e.ff, &format!("the `{what}` feed-forward size"))?;
    check_param_size(&[e.ff, width], &format!("the `{what}` feed-forward weight"))?;
    if !(e.eps.is_finite() && e.eps >= 0.0) {
        return Err(BuildError::new(format!("`{what}` eps must be a non-negative number, got {}", e.eps)));
    }
    // PyTorch's creation order, whatever the norm's position.
    let attn = projections(cx, "self_attn.", width, width, true);
    let linear1 = linear_params(cx, "linear1", e.ff, width, true);
    let linear2 = linear_params(cx, "linear2", width, e.ff, true);
    let norm1 = norm_params(cx, "norm1", width);
    let norm2 = norm_params(cx, "norm2", width);
    let heads = Heads { heads: e.heads, mask: e.mask, dropout: e.dropout, bias: true };
    let attend = |cx: &mut dyn Cx, h: ValueId| -> Built {
        let a = self_or_cross(cx, h, h, attn, heads, head)?;
        dropout(cx, a, e.dropout)
    };
    let feed = |cx: &mut dyn Cx, h: ValueId| -> Built {
        let f = linear(cx, h, linear1)?;
        let f = activation(cx, f, e.activation)?;
        let f = dropout(cx, f, e.dropout)?;
        let f = linear(cx, f, linear2)?;
        dropout(cx, f, e.dropout)
    };
    match e.norm {
        Norm::Pre => {
            let n = layer_norm(cx, x, norm1, e.eps)?;
            let a = attend(cx, n)?;
            let h = bin(cx, BinaryOp::Add, x, a)?;
            let n = layer_norm(cx, h, norm2, e.eps)?;
            let f = feed(cx, n)?;
            bin(cx, BinaryOp::Add, h, f)
        }
        Norm::Post => {
            let a = attend(cx, x)?;
            let h = bin(cx, BinaryOp::Add, x, a)?;
            let h = layer_norm(cx, h, norm1, e.eps)?;
            let f = feed(cx, h)?;
            let y = bin(cx, BinaryOp::Add, h, f)?;
            layer_norm(cx, y, norm2, e.eps)
        }
    }
}

fn norm_params(cx: &mut dyn Cx, name: &str, width: usize) -> (ValueId, ValueId) {
    let w = cx.param(&format!("{name}.weight"), ParamRole::Scale, Shape::known(&[width]), Init::Ones);
    let b = cx.param(&format!("{name}.bias"), ParamRole::Shift, Shape::known(&[width]), Init::Zeros);
    (w, b)
}

/// `layernorm` over the last axis with the given scale and shift.
fn layer_norm(cx: &mut dyn Cx, x: ValueId, (w, b): (ValueId, ValueId), eps: f64) -> Built {
    let s = shape(cx, x);
    let xhat = standardize_last(cx, x, eps)?;
    let w = broadcast(cx, w, &s)?;
    let b = broadcast(cx, b, &s)?;
    let y = bin(cx, BinaryOp::Mul, xhat, w)?;
    bin(cx, BinaryOp::Add, y, b)
}
