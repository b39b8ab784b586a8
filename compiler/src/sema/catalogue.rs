//! The catalogue of built-in functions: ONE table, one row per built-in.
//!
//! A row says everything sema needs to know about a built-in: its name, its
//! kind (for `nnc summary` and parameter naming), its parameters with their
//! types, value ranges and defaults, the tensors each call creates (name,
//! role, shape rule, initialisation), a one-line description, and how it
//! builds its IR (a small function calling the forward-graph library with the
//! already-checked arguments). Argument checking, error messages, the
//! reference documentation ([`reference()`]) and "did you mean" suggestions all
//! read this table, so adding a built-in is adding a row.
//!
//! # Semantics (for the language reference)
//!
//! - **Arguments.** Positional arguments first, then keywords `name: value`;
//!   `a |> f(args)` is `f(a, args)` and `a |> f` is `f(a)`. Enum-like values
//!   (`same`, `nearest`, `none`) are bare names. Every argument problem of a
//!   call is reported (unknown or repeated keyword, missing argument, too many
//!   positional arguments, wrong type, value out of range). Sizes, counts and
//!   indices are at most [`MAX_SIZE`](super::args::MAX_SIZE) (2^24); a parameter tensor has at most
//!   2^31 elements.
//! - **Parameter names.** Each model-level binding `name = expr` is a naming
//!   scope `name`; every built-in call in its expression, including the calls
//!   inside the blocks it calls (flattened into the same scope), is named
//!   `name.kind_k`, `k` counting calls of that built-in in that scope from 1;
//!   a rebinding of `name` continues the count. A layer's tensors are
//!   `name.kind_k.tensor` with PyTorch's tensor names (`weight`, `bias`,
//!   `running_mean`, `running_var`): `e1 = ssh |> down(16)` creates
//!   `e1.conv2d_1.weight`, …; `loss = ...` is the scope `loss`.
//! - **Layouts and initialisation** follow PyTorch: dense weight
//!   `[out, in]`, convolution weight `[out_c, in_c, *kernel]`, transposed
//!   convolution weight `[in_c, out_c, *kernel]`; weights and biases uniform
//!   on `±1/sqrt(fan_in)`, normalisation scales ones and shifts zeros,
//!   running means zeros and running variances ones (see [`TensorSpec`]).
//!   `params` lists every trainable tensor in creation order; `weights` only
//!   those with role weight (no biases, no normalisation scales/shifts).
//! - **`dense`** acts on the last axis; leading axes are batch axes.
//! - **Convolutions** are cross-correlations on `[B, C, *spatial]`.
//!   `kernel`, `stride`, `dilation` and an integer `pad` take one value for
//!   every spatial axis or a list with one per axis. `pad: same` follows
//!   TF/Keras: output size `ceil(in / stride)`, total padding
//!   `max((out - 1)·stride + dilation·(kernel - 1) + 1 - in, 0)`, split
//!   `lo = total / 2`, `hi = total - lo` (the odd zero goes after). An
//!   integer pad is symmetric zero padding. `conv_transpose2d` has output
//!   size `(in - 1)·stride - 2·pad + kernel` (PyTorch).
//! - **`convlstm(hidden, kernel, forecast: 0)`** is a ConvLSTM cell without
//!   peepholes over frames `[B, T, C, H, W]`, unrolled: at each step
//!   `gates = conv(concat[x_t, h_{t-1}]) + bias` (a `kernel`×`kernel`
//!   convolution, odd kernel, stride 1, "same" zero padding `(kernel − 1)/2`,
//!   to `4·hidden` channels split in the order i, f, g, o),
//!   `c_t = σ(f)·c_{t-1} + σ(i)·tanh(g)`, `h_t = σ(o)·tanh(c_t)`, with
//!   `h_0 = c_0 = 0`. `T` steps read the input frames, then `forecast` steps
//!   read a zero frame. The result stacks the hidden states on axis 1: the
//!   `T` encoder states, or with `forecast: F > 0` only the `F` forecast
//!   states. One weight and one bias serve every step.
//! - **`batchnorm`** normalises over every axis but the channel axis 1. In
//!   training it uses the batch mean and biased variance and updates
//!   `running = (1 - momentum)·running + momentum·batch` with the unbiased
//!   batch variance (PyTorch); in inference it uses the running statistics.
//!   `layernorm` normalises over the last axis, `groupnorm` over groups of
//!   consecutive channels (and all spatial positions) of each sample.
//! - **Activations** use PyTorch's definitions: `gelu` is the exact erf
//!   form, `selu` PyTorch's constants, `softplus` the stable
//!   `max(x, 0) + log(1 + exp(-|x|))`; `softmax`/`log_softmax` subtract the
//!   maximum first.
//! - **`dropout(p)`** is inverted dropout in training (keep where a uniform
//!   `u >= p`, scale by `1/(1-p)`; each call site, and each expansion of a
//!   block, its own random stream of the graph's one key input `rng`, called
//!   `rng_key` if the model has an input named `rng`) and the identity in
//!   inference.
//! - **Pooling** pads symmetrically (at most half the window); the average
//!   counts padded zeros. `upsample` takes an integer scale; `nearest`
//!   repeats values, `bilinear` uses half-pixel centres.
//! - **`matmul(a, b)`** multiplies `[..., M, K]` by `[..., K, N]`; the
//!   leading axes broadcast as in NumPy (`[B, T, K] x [K, N]` is allowed).
//! - **Axes** may be negative, counting from the end. `sum`/`mean` reduce
//!   every axis by default. Means over a symbolic size (the batch) divide by
//!   the run-time element count.
//! - **Losses** return f32 scalars. `mse`, `mae`, `huber(delta)` average
//!   over every element; with `weight: w` (broadcastable to the prediction)
//!   they return `Σ w·e / Σ w`. Prediction and target must have equal shapes
//!   (no silent broadcasting). `cross_entropy(logits, labels)` takes logits
//!   `[B, C]` or `[B, C, *S]` and i32 class indices `[B]` / `[B, *S]` (an
//!   out-of-range index contributes zero) or f32 probabilities of the logits'
//!   shape, averaging over samples and positions. `bce` is the stable
//!   with-logits form. `dice(probs, targets)` is
//!   `1 − mean over (sample, channel) of (2·Σ p·t + ε) / (Σ p + Σ t + ε)`,
//!   sums over the spatial axes 2.., with smoothing `ε = 1e-6` (an empty
//!   channel predicted empty scores 1). `l1(list)` is `Σ |w|` and
//!   `l2(list)` is `Σ w²` over every element of every tensor in the list, with
//!   no ½ factor; in `loss = ...` the lists `params`/`weights` hold every
//!   parameter of the model.
//! - **FLOPs** (`nnc summary`) are forward operations for one sample (every
//!   symbolic dimension counts 1): a multiply-add counts 2 (a matrix product
//!   `[M, K] x [K, N]` is `2·M·K·N`, a convolution `2·(C_in/groups)·prod(kernel)`
//!   per output element), a reduction 1 per input element, pooling
//!   `prod(window)` per output element, every other elementwise op 1 per
//!   output element, pure data movement (broadcast, reshape, permute, concat)
//!   0. Arithmetic operators between calls belong to no summary row.

use crate::ir::{Init, ParamRole, PoolKind, ValueId};

use super::args::{Arg, Args, Default, MissingArgument, Param, Range, Ty};
use super::forward::{self, Activation, BuildError, Built, Cx, Padding, Penalty, Reduction, UpsampleMode};

/// What a built-in is, for `nnc summary` and parameter naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Owns trainable parameters.
    Layer,
    Activation,
    TensorOp,
    /// Returns an f32 scalar.
    Loss,
}

/// How one built-in builds its IR, given its checked arguments.
pub type BuildFn = fn(&mut dyn Cx, &Args) -> Built;

/// Whether a tensor a layer creates is trained or carried state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A trainable parameter (listed in `params`; in `weights` if its role is
    /// [`ParamRole::Weight`]).
    Param(ParamRole),
    /// Non-trained state updated by the training step (running statistics).
    State,
}

/// How a created tensor is initialised; PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitRule {
    /// Uniform on `±1/sqrt(fan_in)` ([`Init::Uniform`]). For weights this is
    /// exactly PyTorch's `kaiming_uniform_(a=√5)`; for biases it is PyTorch's
    /// bias rule with the weight's fan-in.
    FanInUniform,
    Ones,
    Zeros,
}

impl InitRule {
    /// Whether `init` is an instance of this rule.
    pub fn matches(self, init: Init) -> bool {
        matches!(
            (self, init),
            (InitRule::FanInUniform, Init::Uniform { .. })
                | (InitRule::Ones, Init::Ones)
                | (InitRule::Zeros, Init::Zeros)
        )
    }

    fn text(self) -> &'static str {
        match self {
            InitRule::FanInUniform => "uniform ±1/√fan_in",
            InitRule::Ones => "ones",
            InitRule::Zeros => "zeros",
        }
    }
}

/// A tensor that each call of a layer creates, named
/// `scope.kind_k.NAME` (e.g. `e1.conv2d_1.weight`).
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    /// The last name segment, as in PyTorch (`weight`, `bias`, `running_mean`).
    pub name: &'static str,
    pub role: Role,
    /// The shape in terms of the call's arguments and its input.
    pub shape: &'static str,
    pub init: InitRule,
    /// The fan-in used by [`InitRule::FanInUniform`], if it applies.
    pub fan_in: &'static str,
    /// The argument value under which the tensor exists, if it is optional.
    pub only_if: Option<&'static str>,
}

/// One row of the catalogue.
pub struct Builtin {
    pub name: &'static str,
    pub kind: Kind,
    pub params: &'static [Param<'static>],
    /// The tensors each call creates, in creation order (layers only).
    pub tensors: &'static [TensorSpec],
    pub doc: &'static str,
    pub build: BuildFn,
}

impl Builtin {
    /// The signature as a user would write it, e.g. `dense(x, units, bias: true)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(param_text).collect();
        format!("{}({})", self.name, params.join(", "))
    }
}

fn param_text(p: &Param) -> String {
    match p.default {
        Default::Required if p.ty == Ty::Tensors => format!("{}...", p.name),
        Default::Required | Default::Written => p.name.to_string(),
        Default::None => format!("{}: none", p.name),
        Default::Int(n) => format!("{}: {n}", p.name),
        Default::Float(x) => format!("{}: {x}", p.name),
        Default::Bool(b) => format!("{}: {b}", p.name),
        Default::Enum(e) | Default::Same(e) => format!("{}: {e}", p.name),
        Default::Str(t) => format!("{}: \"{t}\"", p.name),
    }
}

/// The layer arguments that need the input's rank: one value per spatial
/// dimension.
impl Args {
    /// One size per spatial dimension: a single value applies to all.
    pub fn spatial(&self, name: &str, n: usize) -> Result<Vec<usize>, BuildError> {
        let values = self.ints(name)?.ok_or_else(|| MissingArgument { name: name.to_string() })?;
        spread(name, &values, n)
    }

    pub fn padding(&self, name: &str, n: usize) -> Result<Padding, BuildError> {
        match self.get(name) {
            Some(Arg::Enum(e)) if e == "same" => Ok(Padding::Same),
            Some(Arg::Enum(_)) => Ok(Padding::Valid),
            Some(Arg::Ints(v)) => Ok(Padding::Explicit(spread(name, v, n)?)),
            _ => Err(MissingArgument { name: name.to_string() }.into()),
        }
    }
}

/// `[3]` → `[3; n]`; `[a, b]` stays when `n == 2`; other lengths are errors.
fn spread(name: &str, values: &[i64], n: usize) -> Result<Vec<usize>, BuildError> {
    let sizes: Vec<usize> = values.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
    match sizes.len() {
        1 => Ok(vec![sizes[0]; n]),
        len if len == n => Ok(sizes),
        len => Err(BuildError::new(format!(
            "`{name}` has {len} values but this call has {n} spatial dimension{}",
            if n == 1 { "" } else { "s" }
        ))
        .note(format!("give one value for all dimensions or exactly {n}"))),
    }
}

const fn p(name: &'static str, ty: Ty, range: Range, default: Default) -> Param<'static> {
    Param::positional(name, ty, range, default)
}

const fn tensor(name: &'static str) -> Param<'static> {
    p(name, Ty::Tensor, Range::Any, Default::Required)
}

const X: Param = tensor("x");
const BIAS: Param = p("bias", Ty::Bool, Range::Any, Default::Bool(true));
const EPS: Param = p("eps", Ty::Float, Range::PositiveFloat, Default::Float(1e-5));
const AXIS_LAST: Param = p("axis", Ty::Int, Range::Any, Default::Int(-1));
const WEIGHT: Param = p("weight", Ty::OptTensor, Range::Any, Default::None);
const PAD_NAMES: &[&str] = &["valid", "same"];
const UPSAMPLE_MODES: &[&str] = &["nearest", "bilinear"];

const UNARY: &[Param] = &[X];
const CONV: &[Param] = &[
    X,
    p("channels", Ty::Int, Range::Positive, Default::Required),
    p("kernel", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Int(1)),
    p("pad", Ty::IntOrEnum(PAD_NAMES), Range::NonNegative, Default::Enum("valid")),
    p("dilation", Ty::Ints, Range::Positive, Default::Int(1)),
    BIAS,
];
const CONV_TRANSPOSE: &[Param] = &[
    X,
    p("channels", Ty::Int, Range::Positive, Default::Required),
    p("kernel", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Int(1)),
    p("pad", Ty::Ints, Range::NonNegative, Default::Int(0)),
    BIAS,
];
const POOL: &[Param] = &[
    X,
    p("size", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Same("size")),
    p("pad", Ty::Ints, Range::NonNegative, Default::Int(0)),
];
const ALPHA_SMALL: &[Param] = &[X, p("alpha", Ty::Float, Range::Any, Default::Float(0.01))];
const ALPHA_ONE: &[Param] = &[X, p("alpha", Ty::Float, Range::Any, Default::Float(1.0))];
const SOFTMAX: &[Param] = &[X, AXIS_LAST];
const REDUCE: &[Param] = &[
    X,
    p("axis", Ty::Ints, Range::Any, Default::None),
    p("keepdims", Ty::Bool, Range::Any, Default::Bool(false)),
];
const REGRESSION: &[Param] = &[tensor("pred"), tensor("target"), WEIGHT];
const PENALTY: &[Param] = &[p("params", Ty::TensorList, Range::Any, Default::Required)];

const fn tensor_spec(
    name: &'static str,
    role: Role,
    shape: &'static str,
    init: InitRule,
    fan_in: &'static str,
    only_if: Option<&'static str>,
) -> TensorSpec {
    TensorSpec { name, role, shape, init, fan_in, only_if }
}

const WEIGHT_ROLE: Role = Role::Param(ParamRole::Weight);
const BIAS_ROLE: Role = Role::Param(ParamRole::Bias);
const IF_BIAS: Option<&str> = Some("bias: true");

const DENSE_TENSORS: &[TensorSpec] = &[
    tensor_spec("weight", WEIGHT_ROLE, "[units, in]", InitRule::FanInUniform, "in", None),
    tensor_spec("bias", BIAS_ROLE, "[units]", InitRule::FanInUniform, "in", IF_BIAS),
];
const CONV_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[channels, in_channels, *kernel]",
        InitRule::FanInUniform,
        "in_channels·prod(kernel)",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[channels]", InitRule::FanInUniform, "in_channels·prod(kernel)", IF_BIAS),
];
const CONV_TRANSPOSE_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[in_channels, channels, *kernel]",
        InitRule::FanInUniform,
        "channels·prod(kernel) (PyTorch's rule: weight dimension 1 times the kernel)",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[channels]", InitRule::FanInUniform, "channels·prod(kernel)", IF_BIAS),
];
const CONVLSTM_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[4·hidden, C + hidden, kernel, kernel] (gates i, f, g, o; input channels, then hidden)",
        InitRule::FanInUniform,
        "(C + hidden)·kernel²",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[4·hidden]", InitRule::FanInUniform, "(C + hidden)·kernel²", IF_BIAS),
];
const NORM_SCALE: TensorSpec =
    tensor_spec("weight", Role::Param(ParamRole::Scale), "[C] (C = axis 1)", InitRule::Ones, "", None);
const NORM_SHIFT: TensorSpec =
    tensor_spec("bias", Role::Param(ParamRole::Shift), "[C] (C = axis 1)", InitRule::Zeros, "", None);
const BATCHNORM_TENSORS: &[TensorSpec] = &[
    NORM_SCALE,
    NORM_SHIFT,
    tensor_spec("running_mean", Role::State, "[C] (C = axis 1)", InitRule::Zeros, "", None),
    tensor_spec("running_var", Role::State, "[C] (C = axis 1)", InitRule::Ones, "", None),
];
const LAYERNORM_TENSORS: &[TensorSpec] = &[
    tensor_spec("weight", Role::Param(ParamRole::Scale), "[D] (D = last axis)", InitRule::Ones, "", None),
    tensor_spec("bias", Role::Param(ParamRole::Shift), "[D] (D = last axis)", InitRule::Zeros, "", None),
];
const GROUPNORM_TENSORS: &[TensorSpec] = &[NORM_SCALE, NORM_SHIFT];

/// The catalogue of built-ins.
pub fn builtins() -> &'static [Builtin] {
    CATALOGUE
}

/// The built-in called `name`, if any.
pub fn find(name: &str) -> Option<&'static Builtin> {
    CATALOGUE.iter().find(|b| b.name == name)
}

static CATALOGUE: &[Builtin] = &[
    // Layers.
    Builtin {
        name: "dense",
        kind: Kind::Layer,
        params: &[X, p("units", Ty::Int, Range::Positive, Default::Required), BIAS],
        tensors: DENSE_TENSORS,
        doc: "fully connected layer on the last axis: x · Wᵀ + b",
        build: |cx, a| forward::dense(cx, a.tensor("x")?, a.size("units")?, a.bool("bias")?),
    },
    Builtin {
        name: "conv1d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "1-D convolution of [B, C, L]",
        build: conv1d,
    },
    Builtin {
        name: "conv2d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "2-D convolution of [B, C, H, W]",
        build: conv2d,
    },
    Builtin {
        name: "conv3d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "3-D convolution of [B, C, D, H, W]",
        build: conv3d,
    },
    Builtin {
        name: "conv_transpose2d",
        kind: Kind::Layer,
        params: CONV_TRANSPOSE,
        tensors: CONV_TRANSPOSE_TENSORS,
        doc: "2-D transposed convolution (learned upsampling): output (in − 1)·stride − 2·pad + kernel",
        build: |cx, a| {
            let x = a.tensor("x")?;
            let (kernel, stride, pad) =
                (a.spatial("kernel", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
            forward::conv_transpose(cx, x, 2, a.size("channels")?, &kernel, &stride, &pad, a.bool("bias")?)
        },
    },
    Builtin {
        name: "convlstm",
        kind: Kind::Layer,
        params: &[
            X,
            p("hidden", Ty::Int, Range::Positive, Default::Required),
            p("kernel", Ty::Int, Range::Positive, Default::Required),
            p("forecast", Ty::Int, Range::NonNegative, Default::Int(0)),
            BIAS,
        ],
        tensors: CONVLSTM_TENSORS,
        doc: "ConvLSTM over frames [B, T, C, H, W]: gates = conv_same(concat[x_t, h]) split (i, f, g, o), \
              c = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c) from zero state; returns the T hidden states \
              [B, T, hidden, H, W], or with `forecast: F` the F states of further steps with zero input \
              [B, F, hidden, H, W]",
        build: |cx, a| {
            let (hidden, kernel) = (a.size("hidden")?, a.size("kernel")?);
            forward::convlstm(cx, a.tensor("x")?, hidden, kernel, a.size("forecast")?, a.bool("bias")?)
        },
    },
    Builtin {
        name: "batchnorm",
        kind: Kind::Layer,
        params: &[X, p("momentum", Ty::Float, Range::UnitInterval, Default::Float(0.1)), EPS],
        tensors: BATCHNORM_TENSORS,
        doc: "batch normalisation per channel (axis 1): batch statistics in training, running statistics in inference",
        build: |cx, a| forward::batchnorm(cx, a.tensor("x")?, a.float("momentum")?, a.float("eps")?),
    },
    Builtin {
        name: "layernorm",
        kind: Kind::Layer,
        params: &[X, EPS],
        tensors: LAYERNORM_TENSORS,
        doc: "layer normalisation over the last axis",
        build: |cx, a| forward::layernorm(cx, a.tensor("x")?, a.float("eps")?),
    },
    Builtin {
        name: "groupnorm",
        kind: Kind::Layer,
        params: &[X, p("groups", Ty::Int, Range::Positive, Default::Required), EPS],
        tensors: GROUPNORM_TENSORS,
        doc: "group normalisation: channels (axis 1) split into `groups` groups, each normalised per sample",
        build: |cx, a| forward::groupnorm(cx, a.tensor("x")?, a.size("groups")?, a.float("eps")?),
    },
    // Activations.
    Builtin {
        name: "relu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "max(x, 0)",
        build: |cx, a| act(cx, a, Activation::Relu),
    },
    Builtin {
        name: "leaky_relu",
        kind: Kind::Activation,
        params: ALPHA_SMALL,
        tensors: &[],
        doc: "x if x > 0 else alpha·x",
        build: |cx, a| act(cx, a, Activation::LeakyRelu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "elu",
        kind: Kind::Activation,
        params: ALPHA_ONE,
        tensors: &[],
        doc: "x if x > 0 else alpha·(exp(x) − 1)",
        build: |cx, a| act(cx, a, Activation::Elu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "selu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "scale·elu(x, alpha) with PyTorch's constants scale ≈ 1.0507, alpha ≈ 1.6733",
        build: |cx, a| act(cx, a, Activation::Selu),
    },
    Builtin {
        name: "gelu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "x·Φ(x), the exact erf form 0.5·x·(1 + erf(x/√2))",
        build: |cx, a| act(cx, a, Activation::Gelu),
    },
    Builtin {
        name: "sigmoid",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "1 / (1 + exp(−x))",
        build: |cx, a| act(cx, a, Activation::Sigmoid),
    },
    Builtin {
        name: "tanh",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "hyperbolic tangent",
        build: |cx, a| act(cx, a, Activation::Tanh),
    },
    Builtin {
        name: "softplus",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(−|x|))",
        build: |cx, a| act(cx, a, Activation::Softplus),
    },
    Builtin {
        name: "softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        tensors: &[],
        doc: "exp(x − max) normalised to sum 1 along `axis`",
        build: |cx, a| forward::softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    Builtin {
        name: "log_softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        tensors: &[],
        doc: "log of softmax along `axis`",
        build: |cx, a| forward::log_softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    // Tensor operations.
    Builtin {
        name: "exp",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "eˣ",
        build: |cx, a| act(cx, a, Activation::Exp),
    },
    Builtin {
        name: "log",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "natural logarithm",
        build: |cx, a| act(cx, a, Activation::Log),
    },
    Builtin {
        name: "sqrt",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "square root",
        build: |cx, a| act(cx, a, Activation::Sqrt),
    },
    Builtin {
        name: "abs",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "absolute value",
        build: |cx, a| act(cx, a, Activation::Abs),
    },
    Builtin {
        name: "square",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "x²",
        build: |cx, a| act(cx, a, Activation::Square),
    },
    Builtin {
        name: "clip",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("min", Ty::Float, Range::Any, Default::Required),
            p("max", Ty::Float, Range::Any, Default::Required),
        ],
        tensors: &[],
        doc: "limits values to [min, max]",
        build: |cx, a| forward::clip(cx, a.tensor("x")?, a.float("min")?, a.float("max")?),
    },
    Builtin {
        name: "dropout",
        kind: Kind::TensorOp,
        params: &[X, p("p", Ty::Float, Range::Probability, Default::Required)],
        tensors: &[],
        doc: "inverted dropout: zeroes elements with probability p and scales the rest by 1/(1−p) in training; identity in inference",
        build: |cx, a| forward::dropout(cx, a.tensor("x")?, a.float("p")?),
    },
    Builtin {
        name: "maxpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        tensors: &[],
        doc: "maximum over size×size windows",
        build: |cx, a| pool(cx, a, PoolKind::Max),
    },
    Builtin {
        name: "avgpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        tensors: &[],
        doc: "average over size×size windows",
        build: |cx, a| pool(cx, a, PoolKind::Avg),
    },
    Builtin {
        name: "global_avgpool",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "average over all spatial positions: [B, C, ...] → [B, C]",
        build: |cx, a| forward::global_avgpool(cx, a.tensor("x")?),
    },
    Builtin {
        name: "upsample",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("scale", Ty::Ints, Range::Positive, Default::Required),
            p("mode", Ty::Enum(UPSAMPLE_MODES), Range::Any, Default::Enum("nearest")),
        ],
        tensors: &[],
        doc: "enlarges the spatial axes of [B, C, *S] by the integer `scale` (nearest: repeat; bilinear: half-pixel centres)",
        build: |cx, a| {
            let x = a.tensor("x")?;
            let mode = if a.enum_value("mode")? == "bilinear" {
                UpsampleMode::Bilinear
            } else {
                UpsampleMode::Nearest
            };
            let scale = a.spatial("scale", spatial_rank(cx, x))?;
            forward::upsample(cx, x, &scale, mode)
        },
    },
    Builtin {
        name: "concat",
        kind: Kind::TensorOp,
        params: &[
            p("xs", Ty::Tensors, Range::Any, Default::Required),
            p("axis", Ty::Int, Range::Any, Default::Int(1)),
        ],
        tensors: &[],
        doc: "joins tensors along `axis`",
        build: |cx, a| forward::concat(cx, &a.tensors("xs")?, a.int("axis")?),
    },
    Builtin {
        name: "flatten",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "[B, ...] → [B, product of the rest]",
        build: |cx, a| forward::flatten(cx, a.tensor("x")?),
    },
    Builtin {
        name: "reshape",
        kind: Kind::TensorOp,
        params: &[X, p("shape", Ty::Shape, Range::Any, Default::Required)],
        tensors: &[],
        doc: "same elements, new shape (`-1` is inferred)",
        build: |cx, a| forward::reshape(cx, a.tensor("x")?, &a.shape("shape")?),
    },
    Builtin {
        name: "permute",
        kind: Kind::TensorOp,
        params: &[X, p("axes", Ty::IntList, Range::Any, Default::Required)],
        tensors: &[],
        doc: "reorders the axes",
        build: |cx, a| forward::permute(cx, a.tensor("x")?, &a.ints("axes")?.unwrap_or_default()),
    },
    Builtin {
        name: "sum",
        kind: Kind::TensorOp,
        params: REDUCE,
        tensors: &[],
        doc: "sum over `axis` (all axes by default)",
        build: |cx, a| reduce(cx, a, Reduction::Sum),
    },
    Builtin {
        name: "mean",
        kind: Kind::TensorOp,
        params: REDUCE,
        tensors: &[],
        doc: "mean over `axis` (all axes by default)",
        build: |cx, a| reduce(cx, a, Reduction::Mean),
    },
    Builtin {
        name: "matmul",
        kind: Kind::TensorOp,
        params: &[tensor("a"), tensor("b")],
        tensors: &[],
        doc: "matrix product of the last two axes; the leading (batch) axes broadcast as in NumPy",
        build: |cx, a| forward::matmul(cx, a.tensor("a")?, a.tensor("b")?),
    },
    // Losses.
    Builtin {
        name: "mse",
        kind: Kind::Loss,
        params: REGRESSION,
        tensors: &[],
        doc: "mean squared error; with `weight`, Σ w·e² / Σ w",
        build: |cx, a| forward::mse(cx, a.tensor("pred")?, a.tensor("target")?, a.opt_tensor("weight")?),
    },
    Builtin {
        name: "mae",
        kind: Kind::Loss,
        params: REGRESSION,
        tensors: &[],
        doc: "mean absolute error; with `weight`, Σ w·|e| / Σ w",
        build: |cx, a| forward::mae(cx, a.tensor("pred")?, a.tensor("target")?, a.opt_tensor("weight")?),
    },
    Builtin {
        name: "huber",
        kind: Kind::Loss,
        params: &[
            tensor("pred"),
            tensor("target"),
            p("delta", Ty::Float, Range::PositiveFloat, Default::Float(1.0)),
            WEIGHT,
        ],
        tensors: &[],
        doc: "mean Huber loss (PyTorch): 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta)",
        build: |cx, a| {
            let (pred, target) = (a.tensor("pred")?, a.tensor("target")?);
            forward::huber(cx, pred, target, a.float("delta")?, a.opt_tensor("weight")?)
        },
    },
    Builtin {
        name: "cross_entropy",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor("labels")],
        tensors: &[],
        doc: "mean softmax cross-entropy, classes on axis 1; labels are i32 class indices or f32 probabilities",
        build: |cx, a| forward::cross_entropy(cx, a.tensor("logits")?, a.tensor("labels")?),
    },
    Builtin {
        name: "bce",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor("targets")],
        tensors: &[],
        doc: "mean binary cross-entropy on logits (stable with-logits form)",
        build: |cx, a| forward::bce(cx, a.tensor("logits")?, a.tensor("targets")?),
    },
    Builtin {
        name: "dice",
        kind: Kind::Loss,
        params: &[tensor("probs"), tensor("targets")],
        tensors: &[],
        doc: "1 − mean over (sample, channel) of the soft Dice coefficient, smoothing 1e-6",
        build: |cx, a| forward::dice(cx, a.tensor("probs")?, a.tensor("targets")?),
    },
    Builtin {
        name: "l1",
        kind: Kind::Loss,
        params: PENALTY,
        tensors: &[],
        doc: "sum of absolute values of a list of tensors, e.g. `l1(weights)`",
        build: |cx, a| forward::penalty(cx, &a.tensors("params")?, Penalty::L1),
    },
    Builtin {
        name: "l2",
        kind: Kind::Loss,
        params: PENALTY,
        tensors: &[],
        doc: "sum of squares of a list of tensors (no ½ factor), e.g. `l2(weights)`",
        build: |cx, a| forward::penalty(cx, &a.tensors("params")?, Penalty::L2),
    },
];

/// The catalogue as Markdown, for the language reference: one section per
/// kind, one entry per built-in with its signature, description and the
/// tensors it creates.
pub fn reference() -> String {
    let mut out = String::new();
    let sections = [
        (Kind::Layer, "Layers"),
        (Kind::Activation, "Activations"),
        (Kind::TensorOp, "Tensor operations"),
        (Kind::Loss, "Losses"),
    ];
    for (kind, title) in sections {
        out.push_str(&format!("## {title}\n\n"));
        for b in CATALOGUE.iter().filter(|b| b.kind == kind) {
            out.push_str(&format!("- `{}` — {}\n", b.signature(), b.doc));
            for t in b.tensors {
                out.push_str(&format!("  - `{}`: {}", t.name, t.shape));
                let role = match t.role {
                    Role::Param(r) => format!("{r:?}").to_lowercase(),
                    Role::State => "state".to_string(),
                };
                out.push_str(&format!(", {role}, init {}", t.init.text()));
                if !t.fan_in.is_empty() {
                    out.push_str(&format!(" with fan_in = {}", t.fan_in));
                }
                if let Some(cond) = t.only_if {
                    out.push_str(&format!(" (only with `{cond}`)"));
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

fn act(cx: &mut dyn Cx, a: &Args, activation: Activation) -> Built {
    forward::activation(cx, a.tensor("x")?, activation)
}

fn conv_n(cx: &mut dyn Cx, a: &Args, n: usize) -> Built {
    let x = a.tensor("x")?;
    let (kernel, stride, dilation) =
        (a.spatial("kernel", n)?, a.spatial("stride", n)?, a.spatial("dilation", n)?);
    let pad = a.padding("pad", n)?;
    forward::conv(cx, x, n, a.size("channels")?, &kernel, &stride, &pad, &dilation, a.bool("bias")?)
}

fn conv1d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 1)
}

fn conv2d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 2)
}

fn conv3d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 3)
}

fn pool(cx: &mut dyn Cx, a: &Args, kind: PoolKind) -> Built {
    let x = a.tensor("x")?;
    let (size, stride, pad) = (a.spatial("size", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
    forward::pool(cx, x, kind, &size, &stride, &pad)
}

fn reduce(cx: &mut dyn Cx, a: &Args, kind: Reduction) -> Built {
    let axes = a.ints("axis")?;
    forward::reduce(cx, a.tensor("x")?, kind, axes.as_deref(), a.bool("keepdims")?)
}

/// The number of spatial dimensions of an `[N, C, *S]` tensor (at least 1).
fn spatial_rank(cx: &mut dyn Cx, x: ValueId) -> usize {
    let rank = cx.graph().nodes.get(x.index()).map_or(0, |n| n.ty.shape.rank());
    rank.saturating_sub(2).max(1)
}
