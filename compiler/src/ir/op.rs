//! The primitive operations of the IR.
//!
//! Every layer of the language lowers to these; everything below the IR
//! (autodiff, fusion, codegen, the reference interpreter) knows only them.
//! The exact semantics of each op — operand types, result type — are written
//! once, in [`super::infer`], and the verifier checks every node against it.
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

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A graph input (data, target, parameter, state or RNG key). No operands.
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
    /// Cross-correlation, `[N, C, *S] x [O, C/groups, *K] -> [N, O, *S']` with
    /// per-spatial-dimension stride, (lo, hi) zero padding and dilation.
    Conv { stride: Vec<usize>, padding: Vec<(usize, usize)>, dilation: Vec<usize>, groups: usize },
    /// The adjoint of `Conv` with respect to its input (a "deconvolution"):
    /// `[N, C, *S] x [C, O/groups, *K] -> [N, O, *S']` with
    /// `S' = (S-1)*stride - lo - hi + dilation*(K-1) + 1 + output_padding`.
    ConvTranspose {
        stride: Vec<usize>,
        padding: Vec<(usize, usize)>,
        output_padding: Vec<usize>,
        dilation: Vec<usize>,
        groups: usize,
    },
    /// Pooling over the spatial dimensions of `[N, C, *S]`.
    Pool { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// Bilinear (linear per spatial axis) resampling of `[N, C, *S]` to
    /// `[N, C, *size]`, half-pixel centres (PyTorch `align_corners=False`).
    Resize { size: Vec<usize> },
    /// The gradient of a convolution with respect to its weight:
    /// `(x: [N, C, *S], dy: [N, O, *S']) -> [O, C/groups, *kernel]` with
    /// `dw[o, c, k] = Σ_{n, p} dy[n, o, p] * x[n, g*C/groups + c, p*stride + k*dilation - lo]`
    /// (`g` = `o`'s group; taps in the padding read zero). With the roles of
    /// `x` and `dy` exchanged it is also the weight gradient of `ConvTranspose`.
    ConvWeightGrad {
        stride: Vec<usize>,
        padding: Vec<(usize, usize)>,
        dilation: Vec<usize>,
        groups: usize,
        kernel: Vec<usize>,
    },
    /// The gradient of `Pool` with respect to its input:
    /// `(x: [N, C, *S], dy: [N, C, *S']) -> [N, C, *S]`. Max sends each
    /// `dy` element to the first position of its window that holds the
    /// window's maximum (PyTorch's choice of index); average spreads it
    /// evenly over the window's positions (padded positions included in the
    /// divisor, as in the forward op).
    PoolGrad { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// The adjoint of `Resize` (the gradient with respect to its input):
    /// `[N, C, *S'] -> [N, C, *size]`, where `size` is the spatial size of
    /// the resized input; each element is sent to the input positions it
    /// was interpolated from, with the same weights.
    ResizeGrad { size: Vec<usize> },
    /// `i32[S] -> f32[S, classes]`; out-of-range indices give all zeros.
    OneHot { classes: usize },
    /// Uniform numbers in `[0, 1)` of the given shape from the key operand
    /// (`i32[2]`): a counter-based generator of (key, stream, element index),
    /// so values do not depend on evaluation order or thread count.
    RngUniform { shape: Shape, stream: u64 },
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 9] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Erf,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Erf => "erf",
        }
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 6] =
        [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        }
    }
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne];

    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        }
    }
}

impl Op {
    /// The op's mnemonic in the text format.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { kind, .. } => match kind {
                InputKind::Data => "input",
                InputKind::Target => "target",
                InputKind::Param { .. } => "param",
                InputKind::State { .. } => "state",
                InputKind::Key => "key",
                InputKind::Hyper => "hyper",
            },
            Op::Const { .. } => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::Cast { .. } => "cast",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Concat { .. } => "concat",
            Op::ReduceSum { .. } => "reduce_sum",
            Op::ReduceMax { .. } => "reduce_max",
            Op::ArgMax { .. } => "argmax",
            Op::Size { .. } => "size",
            Op::MatMul => "matmul",
            Op::Conv { .. } => "conv",
            Op::ConvTranspose { .. } => "conv_transpose",
            Op::Pool { kind: PoolKind::Max, .. } => "maxpool",
            Op::Pool { kind: PoolKind::Avg, .. } => "avgpool",
            Op::Resize { .. } => "resize",
            Op::ConvWeightGrad { .. } => "conv_weight_grad",
            Op::PoolGrad { kind: PoolKind::Max, .. } => "maxpool_grad",
            Op::PoolGrad { kind: PoolKind::Avg, .. } => "avgpool_grad",
            Op::ResizeGrad { .. } => "resize_grad",
            Op::OneHot { .. } => "one_hot",
            Op::RngUniform { .. } => "rng_uniform",
        }
    }

    /// True for ops whose result is differentiable in their f32 operands.
    /// Comparisons, argmax, one-hot, size, casts and RNG are not, nor are
    /// the gradient ops of the backward pass (no second derivatives).
    pub fn is_differentiable(&self) -> bool {
        !matches!(
            self,
            Op::Compare(_)
                | Op::ArgMax { .. }
                | Op::OneHot { .. }
                | Op::Size { .. }
                | Op::Cast { .. }
                | Op::RngUniform { .. }
                | Op::ConvWeightGrad { .. }
                | Op::PoolGrad { .. }
                | Op::ResizeGrad { .. }
                | Op::Input { .. }
                | Op::Const { .. }
        )
    }
}
