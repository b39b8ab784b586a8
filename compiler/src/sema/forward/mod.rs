//! The forward-graph library: each built-in of the language as IR primitives.
//!
//! These functions know nothing of the AST, names or diagnostics rendering:
//! they take already-checked values (tensor `ValueId`s and typed constants),
//! emit primitive nodes through a [`Cx`], and report shape problems as a
//! [`BuildError`] that sema turns into a labelled diagnostic. Keeping them
//! apart from name resolution makes each builder short and testable alone.
//!
//! # API
//!
//! Types [`Cx`], [`BuildError`], [`Built`], [`Padding`], [`Activation`],
//! [`UpsampleMode`], [`Reduction`], [`Penalty`] and [`ReshapeDim`] are defined
//! here, [`PadMode`], [`Sections`], [`Combine`], [`Cell`] and [`Recurrence`] beside their builders. Functions (negative `axis` values count from the end; tensor
//! arguments are `ValueId`s of f32 tensors unless stated):
//!
//! Arithmetic (NumPy broadcasting via explicit `Broadcast` nodes):
//! - `pub fn binary(cx: &mut dyn Cx, op: crate::syntax::ast::BinOp, a: ValueId, b: ValueId) -> Built`  (operands 0 and 1; mismatch error names both shapes)
//! - `pub fn scalar(cx: &mut dyn Cx, value: f64) -> ValueId`  (an f32 `Const` scalar)
//! - `pub fn neg(cx: &mut dyn Cx, x: ValueId) -> Built`
//! - bool operands of `binary` and `neg` count as 0 and 1 (a `Cast` to f32); i32 is an error
//!
//! Comparisons and choices (NumPy broadcasting):
//! - `pub fn compare(cx: &mut dyn Cx, op: crate::ir::CmpOp, a: ValueId, b: ValueId) -> Built`  (bool result; operands compared as f32, i32/bool cast)
//! - `pub fn select(cx: &mut dyn Cx, cond: ValueId, a: ValueId, b: ValueId) -> Built`  (`where`; cond must be bool (error `.at(0)`); bool branches cast to f32; branches of one dtype)
//! - `pub fn extremum(cx: &mut dyn Cx, op: crate::ir::BinaryOp, a: ValueId, b: ValueId) -> Built`  (`minimum`/`maximum`: op `Min` or `Max`)
//! - `pub fn stop_gradient(cx: &mut dyn Cx, x: ValueId) -> Built`  (`StopGradient`, any dtype)
//!
//! Layers (create params through `cx.param`, PyTorch layouts and default inits: weight and bias `Init::Uniform{bound: 1/sqrt(fan_in)}`, norm weight Ones / bias Zeros (roles Scale/Shift), running_mean Zeros / running_var Ones):
//! - `pub fn dense(cx: &mut dyn Cx, x: ValueId, units: usize, bias: bool) -> Built`  (last axis; weight [units, in]; tensors "weight", "bias")
//! - `pub fn conv(cx: &mut dyn Cx, x: ValueId, spatial: usize, channels: usize, kernel: &[usize], stride: &[usize], pad: &Padding, modes: &[PadMode], dilation: &[usize], bias: bool) -> Built`  (conv1d/2d/3d: `spatial` = 1/2/3; kernel/stride/modes/dilation slices have length `spatial`; a non-zeros mode pads explicitly like `pad`, the convolution then pads nothing on that axis; input must be rank spatial+2 [B, C, *S]; weight [channels, C, *kernel])
//! - `pub fn conv_transpose(cx: &mut dyn Cx, x: ValueId, spatial: usize, channels: usize, kernel: &[usize], stride: &[usize], pad: &[usize], bias: bool) -> Built`  (weight [C, channels, *kernel]; PyTorch output size (S-1)*stride - 2*pad + kernel)
//! - `pub fn batchnorm(cx: &mut dyn Cx, x: ValueId, momentum: f64, eps: f64) -> Built`  (channel axis 1; rank >= 2; tensors weight/bias/running_mean/running_var; Train: batch stats, biased var for normalising, running stats updated with UNBIASED var via cx.update_state; Infer: running stats)
//! - `pub fn layernorm(cx: &mut dyn Cx, x: ValueId, eps: f64) -> Built`  (last axis; weight/bias of that size)
//! - `pub fn groupnorm(cx: &mut dyn Cx, x: ValueId, groups: usize, eps: f64) -> Built`  (channel axis 1 divisible by groups; per-channel weight/bias)
//!
//! Recurrent layers (unrolled over time; one set of parameters shared by every step):
//! - `pub fn convlstm(cx: &mut dyn Cx, x: ValueId, hidden: usize, kernel: usize, forecast: usize, bias: bool) -> Built`  (`[B, T, C, H, W]` → `[B, T, hidden, H, W]`, or `[B, forecast, hidden, H, W]` when `forecast > 0`; odd `kernel`, "same" padding; weight [4·hidden, C + hidden, k, k], bias [4·hidden]; gates (i, f, g, o); at most [`MAX_STEPS`] steps)
//! - `pub fn convgru(cx: &mut dyn Cx, x: ValueId, cell: ConvCell) -> Built`, `pub fn trajgru(cx: &mut dyn Cx, x: ValueId, cell: ConvCell, links: Links) -> Built`  (`[B, T, C, H, W]` → `[B, T, hidden, H, W]`, or `[B, forecast, hidden, H, W]`; gates (r, z, n), h = (1 − z)·n + z·h; weight_ih [3·hidden, C, k, k], weight_hh [3·hidden, hidden, k, k] (convgru) or [3·hidden, L·hidden, 1, 1] (trajgru, over the L warped states), bias_ih, bias_hh [3·hidden]; trajgru's flow net weight_flow [channels, C + hidden, 5, 5], weight_flow_out [2L, channels, 5, 5] (zeros), flows (dy, dx) per link)
//! - `pub fn recurrent(cx: &mut dyn Cx, x: ValueId, cell: Cell, r: Recurrence) -> Built`  (`rnn`/`lstm`/`gru` ([`Cell`]) over `[B, T, F]` → `[B, T, hidden]`, or `[B, hidden]` with `SeqResult::Last`; PyTorch layouts weight_ih [G·hidden, F], weight_hh [G·hidden, hidden], bias_ih, bias_hh [G·hidden], G = 1/4/3, gates (i, f, g, o) and (r, z, n), init uniform ±1/√hidden; per step one GEMM for x_t·W_ihᵀ and one for h·W_hhᵀ; at most [`MAX_STEPS`] steps)
//! - `pub fn recurrent_results(cx: &mut dyn Cx, x: ValueId, init: &[ValueId], cell: Cell, r: Recurrence) -> Result<Vec<ValueId>, BuildError>`  (`recurrent` from initial states `init` (none: zeros, skipping the first step's h·W_hhᵀ; else `[h0]` or, for lstm, `[h0, c0]`, each f32 `[B, hidden]`, operands 1, 2) returning `r.result` ([`SeqResult`]): `[sequence]`, `[h_T]`, the final states `[h_T]` / `[h_T, c_T]` (after the last step processed: position 0 with `reverse`), or `[sequence, finals...]`)
//!
//! Elementwise / functions:
//! - `pub fn activation(cx: &mut dyn Cx, x: ValueId, act: Activation) -> Built`
//! - `pub fn clip(cx: &mut dyn Cx, x: ValueId, min: f64, max: f64) -> Built`
//! - `pub fn softmax(cx: &mut dyn Cx, x: ValueId, axis: i64) -> Built`, `pub fn log_softmax(cx: &mut dyn Cx, x: ValueId, axis: i64) -> Built`
//! - `pub fn dropout(cx: &mut dyn Cx, x: ValueId, p: f64) -> Built`  (Train: `RngUniform` with `cx.next_stream()` and `cx.key()`, keep where u >= p, scale 1/(1-p); Infer: identity, returns x)
//!
//! Attention and transformers (`attention.rs`; [`Mask`], [`Heads`], [`Positions`], [`Norm`], [`Encoder`] beside them):
//! - `pub fn attention(cx: &mut dyn Cx, q: ValueId, k: ValueId, v: ValueId, mask: Mask) -> Built`  (softmax(q·kᵀ/√D)·v over `[B, T, D]` or `[B, H, T, D]`; operands q 0, k 1, v 2; masked positions weigh exactly 0)
//! - `pub fn multihead_attention(cx: &mut dyn Cx, x: ValueId, context: Option<ValueId>, h: Heads) -> Built`  (`[B, T, E]` → `[B, T, E]`; q_proj, k_proj, v_proj, out_proj; heads must divide E, error `.at(0)`)
//! - `pub fn embedding(cx: &mut dyn Cx, x: ValueId, vocab: usize, dim: usize) -> Built`  (i32 `[..]` → `[.., dim]`, one_hot·weight)
//! - `pub fn positional_encoding(cx: &mut dyn Cx, x: ValueId, kind: Positions) -> Built`  (`x + pe[T, D]`; constant `pe` or param `weight`)
//! - `pub fn transformer_layer(cx: &mut dyn Cx, x: ValueId, e: Encoder) -> Built`  (PyTorch `nn.TransformerEncoderLayer`, pre or post norm)
//!
//! Tensor ops:
//! - `pub fn pool(cx: &mut dyn Cx, x: ValueId, kind: crate::ir::PoolKind, size: &[usize], stride: &[usize], pad: &[usize]) -> Built`  (maxpool2d/avgpool2d: 2 spatial dims; symmetric pad)
//! - `pub fn global_avgpool(cx: &mut dyn Cx, x: ValueId) -> Built`  ([B, C, *S] → [B, C])
//! - `pub fn upsample(cx: &mut dyn Cx, x: ValueId, scale: &[usize], mode: UpsampleMode) -> Built`  (scale per spatial dim; nearest = reshape+broadcast+reshape; bilinear = `Resize`)
//! - `pub fn concat(cx: &mut dyn Cx, xs: &[ValueId], axis: i64) -> Built`  (error `.at(i)` on the first operand that disagrees with operand 0, naming both shapes and the axis)
//! - `pub fn flatten(cx: &mut dyn Cx, x: ValueId) -> Built`  ([B, ...] → [B, prod(...)])
//! - `pub fn reshape(cx: &mut dyn Cx, x: ValueId, shape: &[ReshapeDim]) -> Built`
//! - `pub fn permute(cx: &mut dyn Cx, x: ValueId, axes: &[i64]) -> Built`
//! - `pub fn reduce(cx: &mut dyn Cx, x: ValueId, kind: Reduction, axes: Option<&[i64]>, keepdims: bool) -> Built`  (None = all axes; mean divides by `Size`)
//! - `pub fn matmul(cx: &mut dyn Cx, a: ValueId, b: ValueId) -> Built`  (rank >= 2, leading dims broadcast as in NumPy; error names both shapes and the inner dims)
//! - `pub fn stack(cx: &mut dyn Cx, xs: &[ValueId], axis: i64) -> Built`  (a new axis `axis` of the result; all of one type, error `.at(i)`)
//! - `pub fn split(cx: &mut dyn Cx, x: ValueId, sections: &Sections, axis: i64) -> Result<Vec<ValueId>, BuildError>`  (`Equal(n)`: must divide the axis; `Sizes(v)`: must add up to it)
//! - `pub fn pad(cx: &mut dyn Cx, x: ValueId, widths: &[(usize, usize)], mode: PadMode, value: f64) -> Built`  (pairs for the LAST `widths.len()` axes; NumPy modes; `value` only with zeros)
//! - `pub fn roll(cx: &mut dyn Cx, x: ValueId, shifts: &[i64], axes: &[i64]) -> Built`  (NumPy `roll`; one shift per axis, or one for all)
//! - `pub fn warp(cx: &mut dyn Cx, x: ValueId, flow: ValueId, mode: crate::ir::WarpMode, boundary: crate::ir::Boundary) -> Built`  (x [B, C, H, W], flow [B, 2, H, W] = (dy, dx))
//! - `pub fn affine_flow(cx: &mut dyn Cx, theta: ValueId, size: &[usize]) -> Built`  (theta [B, 2, 3] → flow [B, 2, H, W], PyTorch `affine_grid` with `align_corners=False`)
//! - `pub fn gather(cx: &mut dyn Cx, x: ValueId, index: ValueId, axis: i64) -> Built`  (index i32[E], error `.at(1)`)
//! - `pub fn scatter(cx: &mut dyn Cx, x: ValueId, index: ValueId, n: usize, axis: i64, combine: Combine) -> Built`  (sum, mean = sum / max(count, 1), max)
//! - `pub fn graph_conv(cx: &mut dyn Cx, x: ValueId, edges: ValueId, features: Option<ValueId>, g: GraphConv) -> Built`  (`graph_conv.rs`: an interaction-network layer on `[B, N, F]` and an edge list `i32[E, 2]` → `[B, N, units]`; message.weight [units, 2F + Fe], update.weight [units, F + units]; operands x 0, edges 1, edge features 2)
//!
//! Tensors from arguments alone (`cx.constant` for compile-time values; random draws in both modes):
//! - `pub fn full(cx: &mut dyn Cx, what: &str, shape: &[ReshapeDim], value: f64) -> Built`  (`zeros`, `ones`, `full`: a broadcast `Const`; symbolic dims must be an input's)
//! - `pub fn full_like(cx: &mut dyn Cx, x: ValueId, value: f64) -> Built`, `pub fn zeros_like(cx: &mut dyn Cx, x: ValueId) -> Built`  (`zeros_like` keeps the dtype)
//! - `pub fn arange(cx: &mut dyn Cx, start: f64, stop: f64, step: f64) -> Built`, `pub fn linspace(cx: &mut dyn Cx, start: f64, stop: f64, n: usize) -> Built`  (f32 vectors, constant `values`)
//! - `pub fn uniform(cx: &mut dyn Cx, shape: &[ReshapeDim], low: f64, high: f64) -> Built`, `pub fn normal(cx: &mut dyn Cx, shape: &[ReshapeDim], mean: f64, std: f64) -> Built`  (Box–Muller)
//! - `pub fn grid_graph(cx: &mut dyn Cx, rows: usize, cols: usize, neighbours: usize, periodic: [bool; 2]) -> Built`, `pub fn knn_graph(cx: &mut dyn Cx, points: ValueId, k: usize) -> Built`  (i32[E, 2] constant `edges`; knn reads its points with `cx.constant_value`)
//!
//! Losses (f32 scalars; operand 0 = prediction, 1 = target, 2 = weight):
//! - `pub fn mse(cx: &mut dyn Cx, pred: ValueId, target: ValueId, weight: Option<ValueId>) -> Built`  (mean; with weight (broadcastable to pred): Σw·e/Σw)
//! - `pub fn mae(cx: &mut dyn Cx, pred: ValueId, target: ValueId, weight: Option<ValueId>) -> Built`
//! - `pub fn huber(cx: &mut dyn Cx, pred: ValueId, target: ValueId, delta: f64, weight: Option<ValueId>) -> Built`  (PyTorch HuberLoss)
//! - `pub fn cross_entropy(cx: &mut dyn Cx, logits: ValueId, labels: ValueId) -> Built`  (logits `[B, C]` or `[B, C, *S]`; labels i32 `[B]` / `[B, *S]` → one_hot, or f32 probabilities of the logits' shape; wrong dtype/shape → error `.at(1)` saying what is expected; mean over samples and positions)
//! - `pub fn bce(cx: &mut dyn Cx, logits: ValueId, targets: ValueId) -> Built`  (stable with-logits form, mean)
//! - `pub fn dice(cx: &mut dyn Cx, probs: ValueId, targets: ValueId) -> Built`  (1 − mean over (sample, channel) of (2Σpt + 1e-6)/(Σp + Σt + 1e-6) over axes 2..)
//! - `pub fn penalty(cx: &mut dyn Cx, xs: &[ValueId], kind: Penalty) -> Built`  (L1 = Σ|w|, L2 = Σw² summed over all tensors; empty list → scalar 0)

use crate::ir::{Graph, Init, Loc, Mode, ParamRole, Shape, ValueId};

/// What a builder needs from its caller: the graph, the mode, the source
/// location of the call, and a way to create the call site's parameters.
pub trait Cx {
    fn graph(&mut self) -> &mut Graph;
    fn mode(&self) -> Mode;
    /// Location of the call being built; every emitted node gets it.
    fn loc(&self) -> Loc;
    /// Creates the trainable parameter `<layer>.<tensor>` of the current layer
    /// call (e.g. tensor `"weight"` → `e1.conv2d_1.weight`).
    fn param(&mut self, tensor: &str, role: ParamRole, shape: Shape, init: Init) -> ValueId;
    /// Creates the state input `<layer>.<tensor>` (e.g. `running_mean`).
    fn state(&mut self, tensor: &str, shape: Shape, init: Init) -> ValueId;
    /// Records `new` as the next value of state input `state` (train mode).
    fn update_state(&mut self, state: ValueId, new: ValueId);
    /// The graph's RNG key input (`key "rng"`), created on first use.
    fn key(&mut self) -> ValueId;
    /// A fresh RNG stream number for this call site.
    fn next_stream(&mut self) -> u64;
    /// A tensor constant computed at compile time (`arange`, a graph's
    /// edge list): a `constant` input named after the current call
    /// (`<layer>.<tensor>`) whose value the module carries. `data` has
    /// `ty`'s element count and dtype; `origin` says how it was made.
    fn constant(
        &mut self,
        tensor: &str,
        ty: crate::ir::Type,
        data: super::ConstData,
        origin: String,
    ) -> ValueId;
    /// The value of `id` if it is a constant input (for built-ins that need
    /// their operand at compile time, such as `knn_graph`).
    fn constant_value(&self, id: ValueId) -> Option<&super::ConstData>;
    /// Where the constant `id` came from, as written (`npz("mesh.npz",
    /// "edges")`, `grid_graph(4, 4)`), for messages about its values.
    fn constant_origin(&self, _id: ValueId) -> Option<&str> {
        None
    }
}

/// A problem found while building the graph, e.g. a rank or size mismatch.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildError {
    /// Lower-case, specific, naming the shapes involved.
    pub message: String,
    /// Text of the primary label on the call or operator (default: "this
    /// call of `f`").
    pub label: Option<String>,
    /// Index (among the call's tensor operands, 0-based) of the operand at
    /// fault, if one is; sema labels that operand's source.
    pub operand: Option<usize>,
    /// What the operand at fault should have been, e.g. `i32[B]`; shown in
    /// its label (`this is f32[B], expected i32[B]`).
    pub expected: Option<String>,
    /// Extra `= note:` / `= help:` lines, each starting with `note: ` or `help: `.
    pub notes: Vec<String>,
}

impl BuildError {
    pub fn new(message: impl Into<String>) -> BuildError {
        BuildError { message: message.into(), label: None, operand: None, expected: None, notes: vec![] }
    }

    /// Marks operand `operand` as the one at fault.
    pub fn at(mut self, operand: usize) -> BuildError {
        self.operand = Some(operand);
        self
    }

    /// Says what the operand at fault should have been.
    pub fn expected(mut self, what: impl Into<String>) -> BuildError {
        self.expected = Some(what.into());
        self
    }

    /// Sets the primary label's text.
    pub fn label(mut self, label: impl Into<String>) -> BuildError {
        self.label = Some(label.into());
        self
    }

    /// Adds a `note: ...` line.
    pub fn note(mut self, note: impl Into<String>) -> BuildError {
        self.notes.push(format!("note: {}", note.into()));
        self
    }

    /// Adds a `help: ...` line.
    pub fn help(mut self, help: impl Into<String>) -> BuildError {
        self.notes.push(format!("help: {}", help.into()));
        self
    }
}

pub type Built = Result<ValueId, BuildError>;

/// Convolution padding as written: `valid`, `same`, or explicit per spatial dim.
#[derive(Clone, Debug, PartialEq)]
pub enum Padding {
    Valid,
    /// TF/Keras semantics: output size `ceil(in / stride)`; total padding
    /// split `lo = total / 2`, `hi = total - lo`.
    Same,
    /// Symmetric zero padding per spatial dimension.
    Explicit(Vec<usize>),
}

/// Elementwise activations and tensor functions with no parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu { alpha: f64 },
    Elu { alpha: f64 },
    Selu,
    Gelu,
    Sigmoid,
    Tanh,
    Softplus,
    Exp,
    Log,
    Sqrt,
    Abs,
    Square,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    Nearest,
    Bilinear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Penalty {
    L1,
    L2,
}

/// One entry of `reshape(shape: [...])`.
#[derive(Clone, Debug, PartialEq)]
pub enum ReshapeDim {
    Known(usize),
    Sym(String),
    /// `-1`: inferred from the element count.
    Infer,
}

mod activation;
mod arith;
mod attention;
mod create;
mod emit;
mod graph;
mod graph_conv;
pub mod index;
mod layers;
mod loss;
mod norm;
mod recurrent;
mod recurrent_conv;
mod recurrent_seq;
mod slicing;
mod tensor;
#[cfg(test)]
mod tests;
mod warp;

pub use super::constants::ConstData;
pub use activation::{activation, clip, dropout, log_softmax, softmax, SELU_ALPHA, SELU_SCALE};
pub use arith::{binary, compare, extremum, neg, scalar, select, stop_gradient};
pub use attention::{
    attention, embedding, multihead_attention, positional_encoding, sinusoidal, transformer_layer, Encoder,
    Heads, Mask, Norm, Positions,
};
pub use create::{arange, eye, full, full_like, linspace, normal, uniform, zeros_like, MAX_SEQUENCE};
pub use graph::{gather, grid_graph, knn_graph, scatter, Combine, MAX_EDGES, MAX_KNN_POINTS};
pub use graph_conv::{graph_conv, GraphConv};
pub use layers::{conv, conv_transpose, dense, dense_init, DenseInit};
pub use loss::{
    balanced, bce, cross_entropy, dice, huber, mae, mse, penalty, Balanced, BALANCED_THRESHOLDS,
    BALANCED_WEIGHTS, DICE_EPS,
};
pub use norm::{batchnorm, groupnorm, layernorm};
pub use recurrent::{convlstm, MAX_STEPS};
pub use recurrent_conv::{convgru, trajgru, ConvCell, Links};
pub use recurrent_seq::{recurrent, recurrent_results, Cell, Recurrence, SeqResult};
pub use slicing::{pad, roll, split, stack, PadMode, Sections};
pub use tensor::{concat, flatten, global_avgpool, matmul, permute, pool, reduce, reshape, upsample};
pub use warp::{affine_flow, warp};
