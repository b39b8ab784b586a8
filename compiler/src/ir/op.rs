//! The primitive operations of the IR.
//!
//! Every layer of the language lowers to these; everything below the IR
//! (autodiff, fusion, codegen, the reference interpreter) knows only them.
//! The exact semantics of each op — operand types, result type — are written
//! once, in [`super::infer`], and the verifier checks every node against it.
//!
//! The op table ([`OPS`], at the end of this file) describes every op once
//! for the text format: its mnemonic, its leaf (an input's name, a
//! constant's value) and its attributes in printing order. [`Op::mnemonic`],
//! [`Op::leaf`], [`Op::attrs`] and [`Op::from_parts`] are generated from it;
//! the printer and the parser know no op by name.
//!
//! Conventions:
//! - Elementwise binary ops, `compare` and `select` take operands of identical
//!   shape. NumPy broadcasting is explicit: [`Op::Broadcast`].
//! - Tensors are row-major; image tensors are `[N, C, *spatial]` (NCHW);
//!   convolution weights are `[out_c, in_c / groups, *kernel]` and transposed
//!   convolution weights `[in_c, out_c / groups, *kernel]` (PyTorch layouts).

use super::types::{DType, Shape};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    /// -1, 0 or 1 (0 for ±0; NaN stays NaN).
    Sign,
    Tanh,
    Sigmoid,
    Erf,
    /// The sine of an angle in radians.
    Sin,
    /// The cosine of an angle in radians.
    Cos,
    /// The Gaussian error linear unit `x·Φ(x)`, `Φ` the standard normal
    /// distribution function: `0.5·x·(1 + erf(x/√2))` (PyTorch's exact
    /// `gelu`). One op rather than five so that generated code evaluates it
    /// in one pass at the vector unit's full width.
    Gelu,
    /// The derivative of [`UnaryOp::Gelu`]: `Φ(x) + x·φ(x)`, `φ` the
    /// standard normal density (`gelu`'s backward pass).
    GeluGrad,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    /// Average over the window; padded positions count as zeros and are
    /// included in the divisor (PyTorch's `count_include_pad=True`).
    Avg,
}

/// What a trainable parameter is, for regularisers (`weights` excludes
/// everything but `Weight`) and for documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamRole {
    Weight,
    Bias,
    /// Normalisation scale (gamma).
    Scale,
    /// Normalisation offset (beta).
    Shift,
}

/// How a parameter or state tensor is initialised (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Uniform on `[-bound, bound]`.
    Uniform {
        bound: f64,
    },
    /// Normal with mean 0.
    Normal {
        std: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum InputKind {
    /// A model `input`.
    Data,
    /// A model `target`.
    Target,
    /// A tensor constant of any dtype (a model `const`): fed by name like a
    /// data input and fixed for the whole run; never trained, never
    /// differentiated, not part of any optimiser state.
    Const,
    /// A trainable parameter.
    Param { role: ParamRole, init: Init },
    /// Non-trained state carried between steps (batchnorm running statistics).
    State { init: Init },
    /// The random-number key `i32[2]` = (seed, step) used by `rng_uniform`.
    Key,
    /// A scalar `f32[]` hyperparameter fed at every step (the learning rate),
    /// so schedules change it without recompiling.
    Hyper,
}

/// The attributes of a convolution, shared by `Conv`, `ConvTranspose` and
/// `ConvWeightGrad`: per spatial dimension the stride, the (lo, hi) zero
/// padding and the dilation, and the number of channel groups.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvAttrs {
    pub stride: Vec<usize>,
    pub padding: Vec<(usize, usize)>,
    pub dilation: Vec<usize>,
    pub groups: usize,
}

/// The attributes of a pooling window, shared by `Pool` and `PoolGrad`: the
/// reduction and, per spatial dimension, the window size, the stride and
/// the (lo, hi) padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WindowAttrs {
    pub kind: PoolKind,
    pub window: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<(usize, usize)>,
}

/// How [`Op::Warp`] samples between grid points, along each spatial axis
/// at the real position `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarpMode {
    /// The two neighbours `⌊p⌋` and `⌊p⌋ + 1` with weights `1 − f` and `f`,
    /// `f = p − ⌊p⌋` (so four taps in two dimensions).
    Bilinear,
    /// The one grid point `round(p)`, halves rounded away from zero (Rust's
    /// `f32::round`), with weight 1. Its derivative in the flow is zero.
    Nearest,
}

/// What a tap of [`Op::Warp`] outside the grid reads, decided per axis on
/// the tap's index `t` along an axis of size `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// Zero (a tap outside along either axis).
    Zeros,
    /// The nearest edge value: `t` clamped to `0..n`.
    Edge,
    /// The grid repeats: `t` modulo `n` (Euclidean), for periodic axes such
    /// as longitude. Both axes wrap.
    Circular,
}

/// The attributes of `Warp`, `WarpGradInput` and `WarpGradFlow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WarpAttrs {
    pub mode: WarpMode,
    pub boundary: Boundary,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A graph input (data, target, constant, parameter, state, RNG key or
    /// hyperparameter). No operands.
    Input { name: String, kind: InputKind },
    /// A scalar constant of the node's dtype. No operands.
    Const { value: f64 },

    /// Elementwise on f32.
    Unary(UnaryOp),
    /// Elementwise on two f32 operands of the same shape.
    Binary(BinaryOp),
    /// Elementwise comparison of two same-shape operands of the same dtype; result bool.
    Compare(CmpOp),
    /// `select(cond: bool[S], a: T[S], b: T[S]) -> T[S]`: `a` where `cond`, else `b`.
    Select,
    /// Converts to `to` (f32→i32 truncates toward zero; bool→ 0/1).
    Cast { to: DType },

    /// NumPy broadcasting of the operand to `shape`: dimensions are aligned
    /// from the right, missing leading ones are added, size-1 ones expand.
    Broadcast { shape: Shape },
    /// Same elements, new shape (equal element count).
    Reshape { shape: Shape },
    /// Result dimension `i` is operand dimension `axes[i]`.
    Permute { axes: Vec<usize> },
    /// Elements `start..end` along `axis`.
    Slice { axis: usize, start: usize, end: usize },
    /// Adds `lo` zeros before and `hi` zeros after along `axis`.
    Pad { axis: usize, lo: usize, hi: usize },
    /// Joins the operands along `axis`; all other dimensions equal.
    Concat { axis: usize },

    /// Sums over `axes` (sorted, distinct), removing them.
    ReduceSum { axes: Vec<usize> },
    /// Maximum over `axes` (sorted, distinct), removing them.
    ReduceMax { axes: Vec<usize> },
    /// Index (i32) of the first maximum along `axis`, removing it.
    ArgMax { axis: usize },
    /// The product of the operand's sizes along `axes`, as an f32 scalar
    /// (the element count when `axes` lists every axis). Needed because
    /// dimensions such as the batch size are only known at run time.
    Size { axes: Vec<usize> },

    /// `[..., M, K] x [..., K, N] -> [..., M, N]`; leading (batch) dimensions equal.
    MatMul,
    /// The sum over the batch of a batched product:
    /// `[..., M, K] x [..., K, N] -> [M, N]` (at least one leading
    /// dimension, all equal), `Σ_batch a[batch] · b[batch]`, each element
    /// summed over the batches in order and within a batch over `K` in
    /// order. The gradient of a matrix shared by every batch (a weight
    /// applied to every step of a sequence): one product whose inner
    /// dimension is `batch·K` where the operands' layouts allow, instead of
    /// a product per batch and a sum of their results.
    MatMulSum,
    /// Cross-correlation, `[N, C, *S] x [O, C/groups, *K] -> [N, O, *S']`.
    Conv(ConvAttrs),
    /// The adjoint of `Conv` with respect to its input (a "deconvolution"):
    /// `[N, C, *S] x [C, O/groups, *K] -> [N, O, *S']` with
    /// `S' = (S-1)*stride - lo - hi + dilation*(K-1) + 1 + output_padding`.
    ConvTranspose { conv: ConvAttrs, output_padding: Vec<usize> },
    /// Pooling over the spatial dimensions of `[N, C, *S]`.
    Pool(WindowAttrs),
    /// Bilinear (linear per spatial axis) resampling of `[N, C, *S]` to
    /// `[N, C, *size]`, half-pixel centres (PyTorch `align_corners=False`).
    Resize { size: Vec<usize> },
    /// The gradient of a convolution with respect to its weight:
    /// `(x: [N, C, *S], dy: [N, O, *S']) -> [O, C/groups, *kernel]` with
    /// `dw[o, c, k] = Σ_{n, p} dy[n, o, p] * x[n, g*C/groups + c, p*stride + k*dilation - lo]`
    /// (`g` = `o`'s group; taps in the padding read zero). With the roles of
    /// `x` and `dy` exchanged it is also the weight gradient of `ConvTranspose`.
    ConvWeightGrad { conv: ConvAttrs, kernel: Vec<usize> },
    /// The gradient of `Pool` with respect to its input:
    /// `(x: [N, C, *S], dy: [N, C, *S']) -> [N, C, *S]`. Max sends each
    /// `dy` element to the first position of its window that holds the
    /// window's maximum (PyTorch's choice of index); average spreads it
    /// evenly over the window's positions (padded positions included in the
    /// divisor, as in the forward op).
    PoolGrad(WindowAttrs),
    /// The adjoint of `Resize` (the gradient with respect to its input):
    /// `[N, C, *S'] -> [N, C, *size]`, where `size` is the spatial size of
    /// the resized input; each element is sent to the input positions it
    /// was interpolated from, with the same weights.
    ResizeGrad { size: Vec<usize> },
    /// Resampling of `x: [N, C, H, W]` along a displacement field
    /// `flow: [N, 2, H, W]` (in grid cells; channel 0 the row displacement
    /// `dy`, channel 1 the column displacement `dx`) → `[N, C, H, W]`:
    /// `out[n, c, i, j]` is `x[n, c]` sampled at the real position
    /// `(i + flow[n, 0, i, j], j + flow[n, 1, i, j])` (spatial transformer,
    /// learned advection). Per axis, the mode ([`WarpMode`]) gives the taps
    /// and their weights, the boundary ([`Boundary`]) what a tap outside the
    /// grid reads; bilinear computes
    /// `wy0·(wx0·v00 + wx1·v01) + wy1·(wx0·v10 + wx1·v11)`, nearest `wy·(wx·v)`.
    /// A tap's index is the integer part (`⌊p⌋`, or `round(p)`) converted
    /// with saturation (NaN → 0) and clamped to `±2^30`, then resolved by
    /// the boundary rule, so no flow addresses memory outside the grid. A
    /// non-finite position has NaN weights, so a NaN result.
    Warp(WarpAttrs),
    /// The gradient of `Warp` with respect to `x`:
    /// `(flow: [N, 2, H, W], dy: [N, C, H, W]) -> [N, C, H, W]`. Each `dy`
    /// element is added to the taps it was sampled from, with the same
    /// weights (`wx · (wy · dy)`), outputs in row-major order and taps in
    /// row-major order; taps outside the grid under `zeros` are dropped.
    WarpGradInput(WarpAttrs),
    /// The gradient of `Warp` with respect to `flow`:
    /// `(x: [N, C, H, W], flow: [N, 2, H, W], dy: [N, C, H, W]) -> [N, 2, H, W]`,
    /// the derivative of the bilinear weights summed over channels (in
    /// channel order): `Σ_c dy·(r1 − r0)` for the rows, with
    /// `r_a = wx0·v_a0 + wx1·v_a1`, and `Σ_c dy·(wy0·(v01 − v00) + wy1·(v11 − v10))`
    /// for the columns. Zero everywhere in nearest mode.
    WarpGradFlow(WarpAttrs),
    /// `i32[S] -> f32[S, classes]`; out-of-range indices give all zeros.
    OneHot { classes: usize },
    /// Uniform numbers in `[0, 1)` of the given shape from the key operand
    /// (`i32[2]`): a counter-based generator of (key, stream, element index),
    /// so values do not depend on evaluation order or thread count.
    RngUniform { shape: Shape, stream: u64 },

    /// Selection along an axis by a list of indices:
    /// `(x: f32[..., N, ...], index: i32[E]) -> f32[..., E, ...]` (dimension
    /// `axis` replaced by `E`) with `out[..., e, ...] = x[..., index[e], ...]`.
    /// An index outside `0..N` (negative or too large) reads 0; nothing
    /// outside `x` is ever read.
    Gather { axis: usize },
    /// The adjoint of `Gather`: `(x: f32[..., E, ...], index: i32[E]) ->
    /// f32[..., size, ...]` with `out[..., n, ...] = Σ_{e: index[e] = n}
    /// x[..., e, ...]`, summed from 0 in increasing `e` (so the result does
    /// not depend on how the work is split); 0 where no index names `n`.
    /// Contributions whose index lies outside `0..size` are dropped.
    ScatterSum { axis: usize, size: usize },
    /// Like `ScatterSum` with the maximum instead of the sum:
    /// `out[..., n, ...]` is the largest of the contributions `x[..., e, ...]`
    /// with `index[e] = n` — NaN if one of them is NaN, the first (lowest
    /// `e`) of equal ones — and 0 where there is none. Out-of-range
    /// contributions are dropped.
    ScatterMax { axis: usize, size: usize },
    /// The gradient of `ScatterMax` with respect to `x`:
    /// `(x: f32[..., E, ...], index: i32[E], dy: f32[..., size, ...]) ->
    /// f32[..., E, ...]`. Each `dy[..., n, ...]` goes to the first `e` (the
    /// lowest) with `index[e] = n` whose `x[..., e, ...]` is the maximum of
    /// that group (NaN counting as larger than every number, so the first
    /// NaN), like max pooling's first maximum; every other element is 0,
    /// as is every element whose index lies outside `0..size`.
    ScatterMaxGrad { axis: usize },
    /// Softmax over the last axis of an f32 tensor, as attention weighs its
    /// values: per row, `m = max(max_j x_j, −5e29)` ([`SOFTMAX_FLOOR`]; NaN if an
    /// entry is), `e_j = exp(x_j − m)`, `s = Σ_j e_j` and `y_j = e_j / s`,
    /// or `y_j = e_j` where `s` is not positive. A masked score is set far
    /// below the floor (attention uses −1e30), so its weight is exactly 0
    /// and a row with every entry masked is all zeros, not NaN or uniform.
    /// One op rather than its seven primitives so that generated code
    /// reads the row once and writes the weights once.
    Softmax,
    /// The gradient of `Softmax`: `(y, dy) -> dx` with `y` its result and
    /// `dy` the cotangent, `dx_j = y_j·(dy_j − Σ_k y_k·dy_k)` per row of the
    /// last axis (the floor's and the guard's selects pass no gradient).
    SoftmaxGrad,
    /// Standardisation over the last axis of an f32 tensor, layer
    /// normalisation without its scale and shift: per row of `D` entries,
    /// `mean = Σ_j x_j / D`, `var = Σ_j (x_j − mean)² / D` (biased),
    /// `rstd = 1 / sqrt(var + eps)` and `y_j = (x_j − mean)·rstd`. One op
    /// rather than its primitives so that the runtime reads each row from
    /// memory once (its moments and its result while it is in L1), and its
    /// gradient likewise (the primitives' gradient runs five passes over
    /// the rows).
    Standardize { eps: f64 },
    /// The gradient of `Standardize`: `(x, dy) -> dx` with `x` its operand
    /// and `dy` the cotangent of its result; per row, with `mean`, `rstd`
    /// and `xhat_j = (x_j − mean)·rstd` as the forward computes them,
    /// `dx_j = ((dy_j − Σ_k dy_k / D) − xhat_j·(Σ_k dy_k·xhat_k / D))·rstd`.
    StandardizeGrad { eps: f64 },
    /// A whole LSTM layer's recurrence (PyTorch's cell, gate blocks in the
    /// order i, f, g, o):
    /// `(x: f32[T, B, F], w: f32[4H, F + H + 1], h0: f32[B, H], c0: f32[B, H]) -> f32[T, B, 7H + F + 1]`.
    /// `w`'s columns are the input weight (`weight_ih`), the recurrent
    /// weight (`weight_hh`) and the bias: with `z = [x_t, h_prev, 1]` a
    /// row's step operand, the gate pre-activations are `pre = z · wᵀ`.
    /// Steps run in the order t = 0, 1, …, T−1 (`reverse`: T−1, …, 0); the
    /// previous state of the first step processed is `(h0, c0)`, of any
    /// other the state of the step processed before it.
    /// `i, f, o = σ(pre blocks 0, 1, 3)`, `g = tanh(pre block 2)`,
    /// `c_t = f·c_prev + i·g`, `h_t = o·tanh(c_t)`. Operands and result are
    /// time-major (a step's rows are contiguous, so the products of the
    /// gradient over all steps are single GEMMs) and the result holds, per
    /// step and row, the lanes `[h_t, c_t, i, f, g, o, z]` (the gates
    /// activated, then the step's operand `x_t, h_prev, 1`): its gradient
    /// reads the first six, and the weight's gradient is one product
    /// `Σ dpreᵀ · z` over all rows and steps. One op rather than the
    /// unrolled cell because each batch row's recurrence is independent of
    /// the others: the runtime runs all steps for a block of rows per
    /// thread with no synchronisation between steps, one product of `z`
    /// per step, and applies the gate functions on it in wide vectors.
    Lstm { reverse: bool },
    /// The gradient of `Lstm`:
    /// `(y: f32[T, B, 7H + F + 1], dh: f32[T, B, H], dc: f32[T, B, H], dgates: f32[T, B, 4H], w: f32[4H, F + H + 1], c0: f32[B, H]) -> f32[T, B, 6H]`,
    /// `y` the forward result and `dh, dc, dgates` the cotangents of its
    /// lanes `h`, `c` and the four activated gates. Per step and row the
    /// lanes `[dpre (4H), dhp (H), dcp (H)]`: the gradient of the step's
    /// gate pre-activations, `dhp = dpre · w_hh` (`w`'s recurrent columns:
    /// what reaches `h_prev` through the step's product) and `dcp = dc ⊙ f`
    /// (what reaches `c_prev`); at the first step processed these are the
    /// gradients of `h0` and `c0`. In reverse processing order, with `next`
    /// the step processed after `t`: `dh_t = dh + dhp_next`,
    /// `dc_t = dc + dcp_next + dh_t·o·(1 − tanh²c_t)`,
    /// `dpre_i = (dc_t·g + dgates_i)·i(1−i)`, `dpre_f = (dc_t·c_prev + dgates_f)·f(1−f)`,
    /// `dpre_g = (dc_t·i + dgates_g)(1−g²)`, `dpre_o = (dh_t·tanh c_t + dgates_o)·o(1−o)`.
    /// The cotangents are separate operands so that the zeros of lanes
    /// nothing reads (the gates, usually the cell states) are constants,
    /// never stored. Cotangent `1 + i` holds the steps `from[i]..from[i] + n`
    /// of the time axis (`[n, B, lanes]`; `+0` at the other steps): autodiff
    /// writes whole ones (`from = [0, 0, 0]`), and the simplifier cuts the
    /// zero steps off a cotangent padded with them (`dh` of a layer whose
    /// last step alone is read), so that they are never stored either.
    LstmGrad { reverse: bool, from: Vec<usize> },
    /// The identity on values of any type, through which autodiff sends no
    /// gradient (the operand is treated as a constant). The optimisation
    /// passes replace it by its operand.
    StopGradient,
}

/// The least row maximum of [`Op::Softmax`]: half attention's −1e30 for a
/// masked score, so that `exp(masked − m)` is exactly 0 in f32 and f64.
pub const SOFTMAX_FLOOR: f64 = -5e29;

impl UnaryOp {
    pub const ALL: [UnaryOp; 13] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Erf,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Gelu,
        UnaryOp::GeluGrad,
    ];

    /// The op's mnemonic (its row in [`OPS`]).
    pub fn name(self) -> &'static str {
        Op::Unary(self).mnemonic()
    }

    /// Whether generated code evaluates the op as a polynomial with range
    /// reduction (some 15 to 40 vector instructions per element where
    /// `neg`, `abs`, `sign` and `sqrt` take one).
    pub fn is_transcendental(self) -> bool {
        matches!(
            self,
            UnaryOp::Exp
                | UnaryOp::Log
                | UnaryOp::Tanh
                | UnaryOp::Sigmoid
                | UnaryOp::Erf
                | UnaryOp::Sin
                | UnaryOp::Cos
                | UnaryOp::Gelu
                | UnaryOp::GeluGrad
        )
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 6] =
        [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min];

    /// The op's mnemonic (its row in [`OPS`]).
    pub fn name(self) -> &'static str {
        Op::Binary(self).mnemonic()
    }
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne];

    /// The op's mnemonic (its row in [`OPS`]).
    pub fn name(self) -> &'static str {
        Op::Compare(self).mnemonic()
    }

    /// The operator as written in `.nn` source: `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// The comparison written `symbol`.
    pub fn from_symbol(symbol: &str) -> Option<CmpOp> {
        CmpOp::ALL.into_iter().find(|op| op.symbol() == symbol)
    }

    /// Whether `x op y` holds: IEEE for floats (every comparison with NaN is
    /// false, except `ne`); for bool, false < true.
    pub fn holds<E: PartialOrd>(self, x: E, y: E) -> bool {
        match self {
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
        }
    }
}

/// The sizes of an `lstm` or `lstm_grad`, read off its weight
/// `[4H, F + H + 1]` ([`Op::lstm_weight`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmSizes {
    /// `H`.
    pub hidden: usize,
    /// `F`, the input features.
    pub features: usize,
}

impl LstmSizes {
    /// The sizes a weight of shape `[4H, F + H + 1]` gives; `None` for any
    /// other shape (unknown dimensions, `H = 0`, fewer than `H + 1`
    /// columns).
    pub fn of_weight(w: &super::Shape) -> Option<LstmSizes> {
        let [gates, columns] = w.dims() else { return None };
        let (gates, columns) = (gates.known()?, columns.known()?);
        let hidden = gates / 4;
        (hidden > 0 && gates % 4 == 0 && columns > hidden)
            .then(|| LstmSizes { hidden, features: columns - hidden - 1 })
    }

    /// The lanes of `lstm`'s result, `7H + F + 1`: `[h, c, i, f, g, o, x,
    /// h_prev, 1]`.
    pub fn result_lanes(self) -> usize {
        7 * self.hidden + self.features + 1
    }
}

impl Op {
    /// The operand of an `lstm` (1) or `lstm_grad` (4) that is the weight
    /// `[4H, F + H + 1]`.
    pub fn lstm_weight(&self) -> Option<usize> {
        match self {
            Op::Lstm { .. } => Some(1),
            Op::LstmGrad { .. } => Some(4),
            _ => None,
        }
    }

    /// Whether operand `i` may be absent when it is the constant `+0`: the
    /// cotangents of `lstm_grad` (fusion stores no such operand, lowering
    /// passes it as missing, the runtime reads zeros).
    pub fn zero_operand_is_absent(&self, i: usize) -> bool {
        matches!(self, Op::LstmGrad { .. }) && (1..=3).contains(&i)
    }

    /// True for ops whose result is differentiable in their f32 operands.
    /// Comparisons, argmax, one-hot, size, casts and RNG are not, nor are
    /// the gradient ops of the backward pass (no second derivatives), nor
    /// `stop_gradient`, whose whole purpose is to pass no gradient.
    pub fn is_differentiable(&self) -> bool {
        !matches!(
            self,
            Op::Compare(_)
                | Op::ArgMax { .. }
                | Op::OneHot { .. }
                | Op::Size { .. }
                | Op::Cast { .. }
                | Op::RngUniform { .. }
                | Op::ScatterMaxGrad { .. }
                | Op::SoftmaxGrad
                | Op::StandardizeGrad { .. }
                | Op::StopGradient
                | Op::ConvWeightGrad { .. }
                | Op::PoolGrad { .. }
                | Op::ResizeGrad { .. }
                | Op::WarpGradInput(_)
                | Op::WarpGradFlow(_)
                | Op::LstmGrad { .. }
                | Op::Input { .. }
                | Op::Const { .. }
        )
    }
}

// ---------------------------------------------------------------- the op table

/// What follows an op's mnemonic in the text format, before its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    None,
    /// A string: the name of an input.
    Name,
    /// A number: the value of a constant.
    Value,
}

/// An op's leaf value (see [`LeafKind`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Leaf {
    None,
    Name(String),
    Value(f64),
}

/// The kind of value an attribute holds; an attribute name has the same
/// kind in every op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Usize,
    U64,
    /// Per-axis integers: `[1, 2]`.
    List,
    /// Per-axis (lo, hi) pairs: `[(1, 1), (0, 2)]`.
    Pairs,
    Shape,
    DType,
    Role,
    Init,
    /// A [`WarpMode`] by name: `bilinear`.
    WarpMode,
    /// A [`Boundary`] by name: `zeros`.
    Boundary,
    /// A number, printed as the text format prints a constant: `1e-5`.
    F64,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Usize(usize),
    U64(u64),
    List(Vec<usize>),
    Pairs(Vec<(usize, usize)>),
    Shape(Shape),
    DType(DType),
    Role(ParamRole),
    Init(Init),
    WarpMode(WarpMode),
    Boundary(Boundary),
    F64(f64),
}

/// The Rust type of an op's leaf.
pub trait LeafType: Sized {
    const KIND: LeafKind;
    fn leaf(&self) -> Leaf;
    fn from_leaf(leaf: Leaf) -> Option<Self>;
}

impl LeafType for String {
    const KIND: LeafKind = LeafKind::Name;

    fn leaf(&self) -> Leaf {
        Leaf::Name(self.clone())
    }

    fn from_leaf(leaf: Leaf) -> Option<Self> {
        match leaf {
            Leaf::Name(name) => Some(name),
            _ => None,
        }
    }
}

impl LeafType for f64 {
    const KIND: LeafKind = LeafKind::Value;

    fn leaf(&self) -> Leaf {
        Leaf::Value(*self)
    }

    fn from_leaf(leaf: Leaf) -> Option<Self> {
        match leaf {
            Leaf::Value(value) => Some(value),
            _ => None,
        }
    }
}

/// The Rust type of an op attribute.
pub trait AttrType: Sized {
    const KIND: AttrKind;
    fn value(&self) -> AttrValue;
    fn from_value(value: AttrValue) -> Option<Self>;
}

/// Per-axis integers, as the op table names them.
type List = Vec<usize>;
/// Per-axis (lo, hi) pairs, as the op table names them.
type Pairs = Vec<(usize, usize)>;

macro_rules! attr_type {
    ($($ty:ident => $kind:ident),* $(,)?) => {$(
        impl AttrType for $ty {
            const KIND: AttrKind = AttrKind::$kind;

            fn value(&self) -> AttrValue {
                AttrValue::$kind(<$ty as Clone>::clone(self))
            }

            fn from_value(value: AttrValue) -> Option<Self> {
                match value {
                    AttrValue::$kind(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}

attr_type!(usize => Usize, u64 => U64, List => List, Pairs => Pairs, Shape => Shape, DType => DType,
    ParamRole => Role, Init => Init, WarpMode => WarpMode, Boundary => Boundary, f64 => F64);

/// An attribute whose values are words, printed and parsed by name.
pub trait Word: Copy + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// What the values are, for messages: "a warp mode".
    const WHAT: &'static str;
    /// The value's name in the text format.
    fn name(self) -> &'static str;

    /// The value named `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

impl Word for WarpMode {
    const ALL: &'static [WarpMode] = &[WarpMode::Bilinear, WarpMode::Nearest];
    const WHAT: &'static str = "a warp mode";

    fn name(self) -> &'static str {
        match self {
            WarpMode::Bilinear => "bilinear",
            WarpMode::Nearest => "nearest",
        }
    }
}

impl Word for Boundary {
    const ALL: &'static [Boundary] = &[Boundary::Zeros, Boundary::Edge, Boundary::Circular];
    const WHAT: &'static str = "a boundary";

    fn name(self) -> &'static str {
        match self {
            Boundary::Zeros => "zeros",
            Boundary::Edge => "edge",
            Boundary::Circular => "circular",
        }
    }
}

/// Where [`Op::from_parts`] reads an op's leaf and attributes from (the IR
/// text parser).
pub trait OpParts {
    type Error;
    /// The leaf that followed the mnemonic.
    fn leaf<T: LeafType>(&mut self) -> Result<T, Self::Error>;
    /// The attribute `name` (which the op table lists for the op).
    fn attr<T: AttrType>(&mut self, name: &'static str) -> Result<T, Self::Error>;
}

/// One row of the op table.
#[derive(Debug)]
pub struct OpInfo {
    pub mnemonic: &'static str,
    pub leaf: LeafKind,
    /// The attributes' names and kinds, in printing order.
    pub attrs: &'static [(&'static str, AttrKind)],
}

impl OpInfo {
    /// The row of the op named `mnemonic`.
    pub fn find(mnemonic: &str) -> Option<&'static OpInfo> {
        OPS.iter().find(|info| info.mnemonic == mnemonic)
    }

    /// The kind of the attribute `name`, in whichever op has it.
    pub fn attr_kind(name: &str) -> Option<AttrKind> {
        OPS.iter().flat_map(|info| info.attrs).find(|(n, _)| *n == name).map(|&(_, kind)| kind)
    }
}

macro_rules! leaf_kind {
    () => {
        LeafKind::None
    };
    ($ty:ident) => {
        <$ty as LeafType>::KIND
    };
}

macro_rules! leaf_value {
    () => {
        Leaf::None
    };
    ($leaf:ident: $ty:ident) => {
        <$ty as LeafType>::leaf($leaf)
    };
}

/// Generates [`OPS`] and the methods of [`Op`] that read and build ops by
/// mnemonic. A row is `mnemonic (leaf: type)? => (variant) [attr: type, ...]`:
/// the variant is written once, as a pattern whose bindings are the leaf and
/// the attributes, and serves both to take an op apart (printing) and to
/// build it from its parts (parsing); the attributes are listed in printing
/// order, each binding named like its attribute in the text format.
macro_rules! op_table {
    ($($mnemonic:literal $(($leaf:ident: $leaf_ty:ident))? => ($($variant:tt)+)
        [$($attr:ident: $attr_ty:ident),*];)*) => {
        /// The op table: every op's mnemonic, leaf and attributes.
        pub const OPS: &[OpInfo] = &[$(OpInfo {
            mnemonic: $mnemonic,
            leaf: leaf_kind!($($leaf_ty)?),
            attrs: &[$((stringify!($attr), <$attr_ty as AttrType>::KIND)),*],
        }),*];

        impl Op {
            /// The op's mnemonic in the text format.
            #[allow(unused_variables)]
            pub fn mnemonic(&self) -> &'static str {
                match self {
                    $(Op::$($variant)+ => $mnemonic,)*
                }
            }

            /// The op's leaf: an input's name or a constant's value.
            #[allow(unused_variables)]
            pub fn leaf(&self) -> Leaf {
                match self {
                    $(Op::$($variant)+ => leaf_value!($($leaf: $leaf_ty)?),)*
                }
            }

            /// The op's attributes, in printing order.
            #[allow(unused_variables)]
            pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
                match self {
                    $(Op::$($variant)+ => vec![$((stringify!($attr), <$attr_ty as AttrType>::value($attr))),*],)*
                }
            }

            /// The op named `mnemonic`, its leaf and attributes read from
            /// `parts` in table order; `None` if no op has that mnemonic.
            pub fn from_parts<P: OpParts>(mnemonic: &str, parts: &mut P) -> Result<Option<Op>, P::Error> {
                Ok(Some(match mnemonic {
                    $($mnemonic => {
                        $(let $leaf: $leaf_ty = parts.leaf()?;)?
                        $(let $attr: $attr_ty = parts.attr(stringify!($attr))?;)*
                        Op::$($variant)+
                    })*
                    _ => return Ok(None),
                }))
            }
        }
    };
}

// The op table. A new op gets its row here; ARCHITECTURE.md ("How to add
// an op") lists the other places that know every op.
op_table! {
    // leaves
    "input" (name: String) => (Input { name, kind: InputKind::Data }) [];
    "target" (name: String) => (Input { name, kind: InputKind::Target }) [];
    "constant" (name: String) => (Input { name, kind: InputKind::Const }) [];
    "param" (name: String) => (Input { name, kind: InputKind::Param { role, init } }) [role: ParamRole, init: Init];
    "state" (name: String) => (Input { name, kind: InputKind::State { init } }) [init: Init];
    "key" (name: String) => (Input { name, kind: InputKind::Key }) [];
    "hyper" (name: String) => (Input { name, kind: InputKind::Hyper }) [];
    "const" (value: f64) => (Const { value }) [];
    // elementwise
    "neg" => (Unary(UnaryOp::Neg)) [];
    "exp" => (Unary(UnaryOp::Exp)) [];
    "log" => (Unary(UnaryOp::Log)) [];
    "sqrt" => (Unary(UnaryOp::Sqrt)) [];
    "abs" => (Unary(UnaryOp::Abs)) [];
    "sign" => (Unary(UnaryOp::Sign)) [];
    "tanh" => (Unary(UnaryOp::Tanh)) [];
    "sigmoid" => (Unary(UnaryOp::Sigmoid)) [];
    "erf" => (Unary(UnaryOp::Erf)) [];
    "sin" => (Unary(UnaryOp::Sin)) [];
    "cos" => (Unary(UnaryOp::Cos)) [];
    "gelu" => (Unary(UnaryOp::Gelu)) [];
    "gelu_grad" => (Unary(UnaryOp::GeluGrad)) [];
    "add" => (Binary(BinaryOp::Add)) [];
    "sub" => (Binary(BinaryOp::Sub)) [];
    "mul" => (Binary(BinaryOp::Mul)) [];
    "div" => (Binary(BinaryOp::Div)) [];
    "max" => (Binary(BinaryOp::Max)) [];
    "min" => (Binary(BinaryOp::Min)) [];
    "lt" => (Compare(CmpOp::Lt)) [];
    "le" => (Compare(CmpOp::Le)) [];
    "gt" => (Compare(CmpOp::Gt)) [];
    "ge" => (Compare(CmpOp::Ge)) [];
    "eq" => (Compare(CmpOp::Eq)) [];
    "ne" => (Compare(CmpOp::Ne)) [];
    "select" => (Select) [];
    "cast" => (Cast { to }) [to: DType];
    // structural
    "broadcast" => (Broadcast { shape }) [shape: Shape];
    "reshape" => (Reshape { shape }) [shape: Shape];
    "permute" => (Permute { axes }) [axes: List];
    "slice" => (Slice { axis, start, end }) [axis: usize, start: usize, end: usize];
    "pad" => (Pad { axis, lo, hi }) [axis: usize, lo: usize, hi: usize];
    "concat" => (Concat { axis }) [axis: usize];
    // reductions
    "reduce_sum" => (ReduceSum { axes }) [axes: List];
    "reduce_max" => (ReduceMax { axes }) [axes: List];
    "argmax" => (ArgMax { axis }) [axis: usize];
    "size" => (Size { axes }) [axes: List];
    // contractions and windows
    "matmul" => (MatMul) [];
    "matmul_sum" => (MatMulSum) [];
    "conv" => (Conv(ConvAttrs { stride, padding, dilation, groups }))
        [stride: List, padding: Pairs, dilation: List, groups: usize];
    "conv_transpose" => (ConvTranspose { conv: ConvAttrs { stride, padding, dilation, groups }, output_padding })
        [stride: List, padding: Pairs, output_padding: List, dilation: List, groups: usize];
    "maxpool" => (Pool(WindowAttrs { kind: PoolKind::Max, window, stride, padding }))
        [window: List, stride: List, padding: Pairs];
    "avgpool" => (Pool(WindowAttrs { kind: PoolKind::Avg, window, stride, padding }))
        [window: List, stride: List, padding: Pairs];
    "resize" => (Resize { size }) [size: List];
    // gradients
    "conv_weight_grad" => (ConvWeightGrad { conv: ConvAttrs { stride, padding, dilation, groups }, kernel })
        [stride: List, padding: Pairs, dilation: List, groups: usize, kernel: List];
    "maxpool_grad" => (PoolGrad(WindowAttrs { kind: PoolKind::Max, window, stride, padding }))
        [window: List, stride: List, padding: Pairs];
    "avgpool_grad" => (PoolGrad(WindowAttrs { kind: PoolKind::Avg, window, stride, padding }))
        [window: List, stride: List, padding: Pairs];
    "resize_grad" => (ResizeGrad { size }) [size: List];
    // warping
    "warp" => (Warp(WarpAttrs { mode, boundary })) [mode: WarpMode, boundary: Boundary];
    "warp_grad_input" => (WarpGradInput(WarpAttrs { mode, boundary })) [mode: WarpMode, boundary: Boundary];
    "warp_grad_flow" => (WarpGradFlow(WarpAttrs { mode, boundary })) [mode: WarpMode, boundary: Boundary];
    // labels and randomness
    "one_hot" => (OneHot { classes }) [classes: usize];
    "rng_uniform" => (RngUniform { shape, stream }) [shape: Shape, stream: u64];
    // gather and scatter (`size` is a list attribute of `resize`, so the
    // scatters name theirs `segments`)
    "gather" => (Gather { axis }) [axis: usize];
    "scatter_sum" => (ScatterSum { axis, size: segments }) [axis: usize, segments: usize];
    "scatter_max" => (ScatterMax { axis, size: segments }) [axis: usize, segments: usize];
    "scatter_max_grad" => (ScatterMaxGrad { axis }) [axis: usize];
    "softmax" => (Softmax) [];
    "softmax_grad" => (SoftmaxGrad) [];
    "standardize" => (Standardize { eps }) [eps: f64];
    "standardize_grad" => (StandardizeGrad { eps }) [eps: f64];
    // recurrences
    "lstm" => (Lstm { reverse: false }) [];
    "lstm_reverse" => (Lstm { reverse: true }) [];
    "lstm_grad" => (LstmGrad { reverse: false, from }) [from: List];
    "lstm_reverse_grad" => (LstmGrad { reverse: true, from }) [from: List];
    // autodiff
    "stop_gradient" => (StopGradient) [];
}

#[cfg(test)]
mod tests {
    use super::{
        AttrKind, AttrType, AttrValue, Boundary, Leaf, LeafKind, LeafType, Op, OpInfo, OpParts, WarpMode,
        Word, OPS,
    };
    use crate::ir::{DType, Init, ParamRole, Shape};

    /// A value of every kind, for building each op of the table.
    struct Samples;

    impl OpParts for Samples {
        type Error = String;

        fn leaf<T: LeafType>(&mut self) -> Result<T, String> {
            let leaf = match T::KIND {
                LeafKind::Name => Leaf::Name("x".into()),
                LeafKind::Value => Leaf::Value(0.5),
                LeafKind::None => Leaf::None,
            };
            T::from_leaf(leaf).ok_or_else(|| format!("no {:?} leaf", T::KIND))
        }

        fn attr<T: AttrType>(&mut self, name: &'static str) -> Result<T, String> {
            let value = match T::KIND {
                AttrKind::Usize => AttrValue::Usize(1),
                AttrKind::U64 => AttrValue::U64(2),
                AttrKind::List => AttrValue::List(vec![1, 2]),
                AttrKind::Pairs => AttrValue::Pairs(vec![(0, 1)]),
                AttrKind::Shape => AttrValue::Shape(Shape::known(&[3])),
                AttrKind::DType => AttrValue::DType(DType::I32),
                AttrKind::Role => AttrValue::Role(ParamRole::Bias),
                AttrKind::Init => AttrValue::Init(Init::Ones),
                AttrKind::WarpMode => AttrValue::WarpMode(WarpMode::Nearest),
                AttrKind::Boundary => AttrValue::Boundary(Boundary::Circular),
                AttrKind::F64 => AttrValue::F64(1e-5),
            };
            T::from_value(value).ok_or_else(|| format!("`{name}` has no {:?} value", T::KIND))
        }
    }

    /// Each row builds an op that has the row's mnemonic, leaf and
    /// attributes: the row's variant reads and builds the same fields.
    #[test]
    fn every_row_builds_its_op() {
        for info in OPS {
            let op = match Op::from_parts(info.mnemonic, &mut Samples) {
                Ok(Some(op)) => op,
                other => panic!("`{}` does not build: {other:?}", info.mnemonic),
            };
            assert_eq!(op.mnemonic(), info.mnemonic);
            let leaf = match op.leaf() {
                Leaf::None => LeafKind::None,
                Leaf::Name(_) => LeafKind::Name,
                Leaf::Value(_) => LeafKind::Value,
            };
            assert_eq!(leaf, info.leaf, "`{}`", info.mnemonic);
            let attrs: Vec<&str> = op.attrs().iter().map(|(name, _)| *name).collect();
            let want: Vec<&str> = info.attrs.iter().map(|(name, _)| *name).collect();
            assert_eq!(attrs, want, "`{}`", info.mnemonic);
        }
        assert_eq!(Op::from_parts("frobnicate", &mut Samples), Ok(None));
    }

    #[test]
    fn mnemonics_are_unique() {
        for (i, info) in OPS.iter().enumerate() {
            assert!(
                OPS[..i].iter().all(|other| other.mnemonic != info.mnemonic),
                "`{}` is in the op table twice",
                info.mnemonic
            );
        }
    }

    /// Word attributes read back by name, and no two values of one share it.
    #[test]
    fn words_round_trip_by_name() {
        fn check<W: Word + PartialEq + std::fmt::Debug>() {
            for (i, &w) in W::ALL.iter().enumerate() {
                assert_eq!(W::from_name(w.name()), Some(w));
                assert!(W::ALL[..i].iter().all(|o| o.name() != w.name()), "`{}` twice", w.name());
            }
            assert_eq!(W::from_name("frobnicate"), None);
        }
        check::<WarpMode>();
        check::<Boundary>();
    }

    /// The parser reads an attribute's value by its name alone.
    #[test]
    fn every_attribute_name_has_one_kind() {
        for info in OPS {
            for &(name, kind) in info.attrs {
                assert_eq!(OpInfo::attr_kind(name), Some(kind), "`{name}` of `{}`", info.mnemonic);
            }
        }
        assert_eq!(OpInfo::attr_kind("padding"), Some(AttrKind::Pairs));
        assert_eq!(OpInfo::attr_kind("colour"), None);
    }
}
