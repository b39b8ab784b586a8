//! The catalogue of built-in functions: ONE table, one row per built-in.
//!
//! A row says everything sema needs to know about a built-in: its name, its
//! kind (for `nnc summary` and parameter naming), its parameters with their
//! types, value ranges and defaults, a one-line description, and how it
//! lowers to IR (a small function calling the lowering library with the
//! already-checked arguments). Argument checking, error messages, the
//! reference documentation and "did you mean" suggestions all read this
//! table, so adding a built-in is adding a row.

use crate::ir::{PoolKind, ValueId};

use super::lower::{
    self, Activation, Cx, LowerError, Lowered, Padding, Penalty, Reduction, ReshapeDim, UpsampleMode,
};
use super::values::TensorVal;

/// The largest size, count or index accepted in a call (2^24).
pub const MAX_SIZE: i64 = 1 << 24;

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

/// The type of a parameter, i.e. what an argument may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Tensor,
    /// Every remaining positional argument, each a tensor (`concat`).
    Tensors,
    /// A list of tensors, such as `params` or `weights` (`l1`, `l2`).
    TensorList,
    /// A tensor or `none`.
    OptTensor,
    Int,
    /// An integer or a list of integers (`kernel: 3`, `kernel: [3, 5]`).
    Ints,
    /// A list of integers (`permute(axes: [0, 2, 1])`).
    IntList,
    Float,
    Bool,
    /// A string constant (block parameters typed `str`); bare names are accepted.
    Str,
    /// One of the given bare names.
    Enum(&'static [&'static str]),
    /// One of the given bare names, an integer or a list of integers (`pad`).
    IntOrEnum(&'static [&'static str]),
    /// A reshape target: integers, `-1` and symbolic dimension names.
    Shape,
}

impl Ty {
    /// What the type expects, for "expected X, found Y" messages.
    pub fn expected(self) -> String {
        match self {
            Ty::Tensor => "a tensor".into(),
            Ty::Tensors => "tensors".into(),
            Ty::TensorList => "a list of tensors (e.g. `weights`)".into(),
            Ty::OptTensor => "a tensor or `none`".into(),
            Ty::Int => "an integer".into(),
            Ty::Ints => "an integer or a list of integers".into(),
            Ty::IntList => "a list of integers".into(),
            Ty::Float => "a number".into(),
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Enum(names) => format!("one of {}", names_list(names)),
            Ty::IntOrEnum(names) => format!("one of {} or an integer", names_list(names)),
            Ty::Shape => "a list of sizes (integers, `-1` or dimension names)".into(),
        }
    }
}

/// `a`, `b` and `c` → "`a`, `b`, `c`".
pub fn names_list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Which values of a number are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Any,
    /// An integer ≥ 1 (sizes, counts).
    Positive,
    /// An integer ≥ 0 (padding).
    NonNegative,
    /// A float in `[0, 1)` (dropout).
    Probability,
    /// A float in `[0, 1]` (momentum).
    UnitInterval,
    /// A float > 0 (eps, delta).
    PositiveFloat,
}

/// A parameter's default value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Required,
    /// Absent unless given (`weight: none`, `axis` of `sum`).
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    Enum(&'static str),
    /// The value of another parameter (`stride: size`).
    Same(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub range: Range,
    pub default: Default,
}

/// The lowering of one built-in, given its checked arguments.
pub type LowerFn = fn(&mut dyn Cx, &Args) -> Lowered;

/// One row of the catalogue.
pub struct Builtin {
    pub name: &'static str,
    pub kind: Kind,
    pub params: &'static [Param],
    pub doc: &'static str,
    pub lower: LowerFn,
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
        Default::Required => p.name.to_string(),
        Default::None => format!("{}: none", p.name),
        Default::Int(n) => format!("{}: {n}", p.name),
        Default::Float(x) => format!("{}: {x}", p.name),
        Default::Bool(b) => format!("{}: {b}", p.name),
        Default::Enum(e) | Default::Same(e) => format!("{}: {e}", p.name),
    }
}

/// A checked argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Tensor(TensorVal),
    Tensors(Vec<TensorVal>),
    Int(i64),
    Ints(Vec<i64>),
    Float(f64),
    Bool(bool),
    Str(String),
    Enum(String),
    Shape(Vec<ReshapeDim>),
    None,
}

/// The checked arguments of one call, one per parameter of the built-in.
#[derive(Clone, Debug)]
pub struct Args {
    pub params: &'static [Param],
    pub values: Vec<Arg>,
}

fn missing(name: &str) -> LowerError {
    LowerError::new(format!("argument `{name}` is missing or has the wrong type"))
}

impl Args {
    fn get(&self, name: &str) -> Option<&Arg> {
        let i = self.params.iter().position(|p| p.name == name)?;
        self.values.get(i)
    }

    /// Every tensor operand in parameter order: the numbering that
    /// [`LowerError::operand`] refers to.
    pub fn operands(&self) -> Vec<TensorVal> {
        let mut out = vec![];
        for v in &self.values {
            match v {
                Arg::Tensor(t) => out.push(t.clone()),
                Arg::Tensors(ts) => out.extend(ts.iter().cloned()),
                _ => {}
            }
        }
        out
    }

    pub fn tensor(&self, name: &str) -> Result<ValueId, LowerError> {
        match self.get(name) {
            Some(Arg::Tensor(t)) => Ok(t.id),
            _ => Err(missing(name)),
        }
    }

    pub fn opt_tensor(&self, name: &str) -> Result<Option<ValueId>, LowerError> {
        match self.get(name) {
            Some(Arg::Tensor(t)) => Ok(Some(t.id)),
            Some(Arg::None) => Ok(None),
            _ => Err(missing(name)),
        }
    }

    pub fn tensors(&self, name: &str) -> Result<Vec<ValueId>, LowerError> {
        match self.get(name) {
            Some(Arg::Tensors(ts)) => Ok(ts.iter().map(|t| t.id).collect()),
            _ => Err(missing(name)),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, LowerError> {
        match self.get(name) {
            Some(Arg::Int(n)) => Ok(*n),
            _ => Err(missing(name)),
        }
    }

    /// A positive integer (checked by its [`Range`]) as a size.
    pub fn size(&self, name: &str) -> Result<usize, LowerError> {
        usize::try_from(self.int(name)?).map_err(|_| missing(name))
    }

    /// An integer-or-list argument; `None` if absent.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, LowerError> {
        match self.get(name) {
            Some(Arg::Ints(v)) => Ok(Some(v.clone())),
            Some(Arg::Int(n)) => Ok(Some(vec![*n])),
            Some(Arg::None) => Ok(None),
            _ => Err(missing(name)),
        }
    }

    /// One size per spatial dimension: a single value applies to all.
    pub fn spatial(&self, name: &str, n: usize) -> Result<Vec<usize>, LowerError> {
        let values = self.ints(name)?.ok_or_else(|| missing(name))?;
        spread(name, &values, n)
    }

    pub fn float(&self, name: &str) -> Result<f64, LowerError> {
        match self.get(name) {
            Some(Arg::Float(x)) => Ok(*x),
            Some(Arg::Int(n)) => Ok(*n as f64),
            _ => Err(missing(name)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, LowerError> {
        match self.get(name) {
            Some(Arg::Bool(b)) => Ok(*b),
            _ => Err(missing(name)),
        }
    }

    pub fn padding(&self, name: &str, n: usize) -> Result<Padding, LowerError> {
        match self.get(name) {
            Some(Arg::Enum(e)) if e == "same" => Ok(Padding::Same),
            Some(Arg::Enum(_)) => Ok(Padding::Valid),
            Some(Arg::Ints(v)) => Ok(Padding::Explicit(spread(name, v, n)?)),
            _ => Err(missing(name)),
        }
    }

    pub fn enum_value(&self, name: &str) -> Result<&str, LowerError> {
        match self.get(name) {
            Some(Arg::Enum(e)) => Ok(e),
            _ => Err(missing(name)),
        }
    }

    pub fn shape(&self, name: &str) -> Result<Vec<ReshapeDim>, LowerError> {
        match self.get(name) {
            Some(Arg::Shape(dims)) => Ok(dims.clone()),
            _ => Err(missing(name)),
        }
    }
}

/// `[3]` → `[3; n]`; `[a, b]` stays when `n == 2`; other lengths are errors.
fn spread(name: &str, values: &[i64], n: usize) -> Result<Vec<usize>, LowerError> {
    let sizes: Vec<usize> = values.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect();
    match sizes.len() {
        1 => Ok(vec![sizes[0]; n]),
        len if len == n => Ok(sizes),
        len => Err(LowerError::new(format!(
            "`{name}` has {len} values but this call has {n} spatial dimension{}",
            if n == 1 { "" } else { "s" }
        ))
        .note(format!("give one value for all dimensions or exactly {n}"))),
    }
}

const fn p(name: &'static str, ty: Ty, range: Range, default: Default) -> Param {
    Param { name, ty, range, default }
}

const fn tensor(name: &'static str) -> Param {
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
        doc: "fully connected layer on the last axis: x · Wᵀ + b",
        lower: |cx, a| lower::dense(cx, a.tensor("x")?, a.size("units")?, a.bool("bias")?),
    },
    Builtin {
        name: "conv1d",
        kind: Kind::Layer,
        params: CONV,
        doc: "1-D convolution of [B, C, L]",
        lower: conv1d,
    },
    Builtin {
        name: "conv2d",
        kind: Kind::Layer,
        params: CONV,
        doc: "2-D convolution of [B, C, H, W]",
        lower: conv2d,
    },
    Builtin {
        name: "conv3d",
        kind: Kind::Layer,
        params: CONV,
        doc: "3-D convolution of [B, C, D, H, W]",
        lower: conv3d,
    },
    Builtin {
        name: "conv_transpose2d",
        kind: Kind::Layer,
        params: CONV_TRANSPOSE,
        doc: "2-D transposed convolution (learned upsampling)",
        lower: |cx, a| {
            let x = a.tensor("x")?;
            let (kernel, stride, pad) =
                (a.spatial("kernel", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
            lower::conv_transpose(cx, x, 2, a.size("channels")?, &kernel, &stride, &pad, a.bool("bias")?)
        },
    },
    Builtin {
        name: "batchnorm",
        kind: Kind::Layer,
        params: &[X, p("momentum", Ty::Float, Range::UnitInterval, Default::Float(0.1)), EPS],
        doc: "batch normalisation over the channel axis 1",
        lower: |cx, a| lower::batchnorm(cx, a.tensor("x")?, a.float("momentum")?, a.float("eps")?),
    },
    Builtin {
        name: "layernorm",
        kind: Kind::Layer,
        params: &[X, EPS],
        doc: "layer normalisation over the last axis",
        lower: |cx, a| lower::layernorm(cx, a.tensor("x")?, a.float("eps")?),
    },
    Builtin {
        name: "groupnorm",
        kind: Kind::Layer,
        params: &[X, p("groups", Ty::Int, Range::Positive, Default::Required), EPS],
        doc: "group normalisation: channels split into groups",
        lower: |cx, a| lower::groupnorm(cx, a.tensor("x")?, a.size("groups")?, a.float("eps")?),
    },
    // Activations.
    Builtin {
        name: "relu",
        kind: Kind::Activation,
        params: UNARY,
        doc: "max(x, 0)",
        lower: |cx, a| act(cx, a, Activation::Relu),
    },
    Builtin {
        name: "leaky_relu",
        kind: Kind::Activation,
        params: ALPHA_SMALL,
        doc: "x if x > 0 else alpha·x",
        lower: |cx, a| act(cx, a, Activation::LeakyRelu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "elu",
        kind: Kind::Activation,
        params: ALPHA_ONE,
        doc: "x if x > 0 else alpha·(exp(x) − 1)",
        lower: |cx, a| act(cx, a, Activation::Elu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "selu",
        kind: Kind::Activation,
        params: UNARY,
        doc: "scaled ELU",
        lower: |cx, a| act(cx, a, Activation::Selu),
    },
    Builtin {
        name: "gelu",
        kind: Kind::Activation,
        params: UNARY,
        doc: "x·Φ(x)",
        lower: |cx, a| act(cx, a, Activation::Gelu),
    },
    Builtin {
        name: "sigmoid",
        kind: Kind::Activation,
        params: UNARY,
        doc: "1 / (1 + exp(−x))",
        lower: |cx, a| act(cx, a, Activation::Sigmoid),
    },
    Builtin {
        name: "tanh",
        kind: Kind::Activation,
        params: UNARY,
        doc: "hyperbolic tangent",
        lower: |cx, a| act(cx, a, Activation::Tanh),
    },
    Builtin {
        name: "softplus",
        kind: Kind::Activation,
        params: UNARY,
        doc: "log(1 + exp(x))",
        lower: |cx, a| act(cx, a, Activation::Softplus),
    },
    Builtin {
        name: "softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        doc: "exp(x) normalised to sum 1 along `axis`",
        lower: |cx, a| lower::softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    Builtin {
        name: "log_softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        doc: "log of softmax along `axis`",
        lower: |cx, a| lower::log_softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    // Tensor operations.
    Builtin {
        name: "exp",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "eˣ",
        lower: |cx, a| act(cx, a, Activation::Exp),
    },
    Builtin {
        name: "log",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "natural logarithm",
        lower: |cx, a| act(cx, a, Activation::Log),
    },
    Builtin {
        name: "sqrt",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "square root",
        lower: |cx, a| act(cx, a, Activation::Sqrt),
    },
    Builtin {
        name: "abs",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "absolute value",
        lower: |cx, a| act(cx, a, Activation::Abs),
    },
    Builtin {
        name: "square",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "x²",
        lower: |cx, a| act(cx, a, Activation::Square),
    },
    Builtin {
        name: "clip",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("min", Ty::Float, Range::Any, Default::Required),
            p("max", Ty::Float, Range::Any, Default::Required),
        ],
        doc: "limits values to [min, max]",
        lower: |cx, a| lower::clip(cx, a.tensor("x")?, a.float("min")?, a.float("max")?),
    },
    Builtin {
        name: "dropout",
        kind: Kind::TensorOp,
        params: &[X, p("p", Ty::Float, Range::Probability, Default::Required)],
        doc: "zeroes elements with probability p while training",
        lower: |cx, a| lower::dropout(cx, a.tensor("x")?, a.float("p")?),
    },
    Builtin {
        name: "maxpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        doc: "maximum over size×size windows",
        lower: |cx, a| pool(cx, a, PoolKind::Max),
    },
    Builtin {
        name: "avgpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        doc: "average over size×size windows",
        lower: |cx, a| pool(cx, a, PoolKind::Avg),
    },
    Builtin {
        name: "global_avgpool",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "average over all spatial positions: [B, C, ...] → [B, C]",
        lower: |cx, a| lower::global_avgpool(cx, a.tensor("x")?),
    },
    Builtin {
        name: "upsample",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("scale", Ty::Ints, Range::Positive, Default::Required),
            p("mode", Ty::Enum(UPSAMPLE_MODES), Range::Any, Default::Enum("nearest")),
        ],
        doc: "enlarges the spatial dimensions by `scale`",
        lower: |cx, a| {
            let x = a.tensor("x")?;
            let mode = if a.enum_value("mode")? == "bilinear" {
                UpsampleMode::Bilinear
            } else {
                UpsampleMode::Nearest
            };
            let scale = a.spatial("scale", spatial_rank(cx, x))?;
            lower::upsample(cx, x, &scale, mode)
        },
    },
    Builtin {
        name: "concat",
        kind: Kind::TensorOp,
        params: &[
            p("xs", Ty::Tensors, Range::Any, Default::Required),
            p("axis", Ty::Int, Range::Any, Default::Int(1)),
        ],
        doc: "joins tensors along `axis`",
        lower: |cx, a| lower::concat(cx, &a.tensors("xs")?, a.int("axis")?),
    },
    Builtin {
        name: "flatten",
        kind: Kind::TensorOp,
        params: UNARY,
        doc: "[B, ...] → [B, product of the rest]",
        lower: |cx, a| lower::flatten(cx, a.tensor("x")?),
    },
    Builtin {
        name: "reshape",
        kind: Kind::TensorOp,
        params: &[X, p("shape", Ty::Shape, Range::Any, Default::Required)],
        doc: "same elements, new shape (`-1` is inferred)",
        lower: |cx, a| lower::reshape(cx, a.tensor("x")?, &a.shape("shape")?),
    },
    Builtin {
        name: "permute",
        kind: Kind::TensorOp,
        params: &[X, p("axes", Ty::IntList, Range::Any, Default::Required)],
        doc: "reorders the axes",
        lower: |cx, a| lower::permute(cx, a.tensor("x")?, &a.ints("axes")?.unwrap_or_default()),
    },
    Builtin {
        name: "sum",
        kind: Kind::TensorOp,
        params: REDUCE,
        doc: "sum over `axis` (all axes by default)",
        lower: |cx, a| reduce(cx, a, Reduction::Sum),
    },
    Builtin {
        name: "mean",
        kind: Kind::TensorOp,
        params: REDUCE,
        doc: "mean over `axis` (all axes by default)",
        lower: |cx, a| reduce(cx, a, Reduction::Mean),
    },
    Builtin {
        name: "matmul",
        kind: Kind::TensorOp,
        params: &[tensor("a"), tensor("b")],
        doc: "matrix product of the last two axes",
        lower: |cx, a| lower::matmul(cx, a.tensor("a")?, a.tensor("b")?),
    },
    // Losses.
    Builtin {
        name: "mse",
        kind: Kind::Loss,
        params: REGRESSION,
        doc: "mean squared error",
        lower: |cx, a| lower::mse(cx, a.tensor("pred")?, a.tensor("target")?, a.opt_tensor("weight")?),
    },
    Builtin {
        name: "mae",
        kind: Kind::Loss,
        params: REGRESSION,
        doc: "mean absolute error",
        lower: |cx, a| lower::mae(cx, a.tensor("pred")?, a.tensor("target")?, a.opt_tensor("weight")?),
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
        doc: "Huber loss: quadratic below `delta`, linear above",
        lower: |cx, a| {
            let (pred, target) = (a.tensor("pred")?, a.tensor("target")?);
            lower::huber(cx, pred, target, a.float("delta")?, a.opt_tensor("weight")?)
        },
    },
    Builtin {
        name: "cross_entropy",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor("labels")],
        doc: "softmax cross-entropy; labels are i32 classes or f32 probabilities",
        lower: |cx, a| lower::cross_entropy(cx, a.tensor("logits")?, a.tensor("labels")?),
    },
    Builtin {
        name: "bce",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor("targets")],
        doc: "binary cross-entropy on logits",
        lower: |cx, a| lower::bce(cx, a.tensor("logits")?, a.tensor("targets")?),
    },
    Builtin {
        name: "dice",
        kind: Kind::Loss,
        params: &[tensor("probs"), tensor("targets")],
        doc: "1 − mean soft Dice coefficient",
        lower: |cx, a| lower::dice(cx, a.tensor("probs")?, a.tensor("targets")?),
    },
    Builtin {
        name: "l1",
        kind: Kind::Loss,
        params: PENALTY,
        doc: "sum of absolute values of a list of tensors",
        lower: |cx, a| lower::penalty(cx, &a.tensors("params")?, Penalty::L1),
    },
    Builtin {
        name: "l2",
        kind: Kind::Loss,
        params: PENALTY,
        doc: "sum of squares of a list of tensors",
        lower: |cx, a| lower::penalty(cx, &a.tensors("params")?, Penalty::L2),
    },
];

fn act(cx: &mut dyn Cx, a: &Args, activation: Activation) -> Lowered {
    lower::activation(cx, a.tensor("x")?, activation)
}

fn conv_n(cx: &mut dyn Cx, a: &Args, n: usize) -> Lowered {
    let x = a.tensor("x")?;
    let (kernel, stride, dilation) =
        (a.spatial("kernel", n)?, a.spatial("stride", n)?, a.spatial("dilation", n)?);
    let pad = a.padding("pad", n)?;
    lower::conv(cx, x, n, a.size("channels")?, &kernel, &stride, &pad, &dilation, a.bool("bias")?)
}

fn conv1d(cx: &mut dyn Cx, a: &Args) -> Lowered {
    conv_n(cx, a, 1)
}

fn conv2d(cx: &mut dyn Cx, a: &Args) -> Lowered {
    conv_n(cx, a, 2)
}

fn conv3d(cx: &mut dyn Cx, a: &Args) -> Lowered {
    conv_n(cx, a, 3)
}

fn pool(cx: &mut dyn Cx, a: &Args, kind: PoolKind) -> Lowered {
    let x = a.tensor("x")?;
    let (size, stride, pad) = (a.spatial("size", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
    lower::pool(cx, x, kind, &size, &stride, &pad)
}

fn reduce(cx: &mut dyn Cx, a: &Args, kind: Reduction) -> Lowered {
    let axes = a.ints("axis")?;
    lower::reduce(cx, a.tensor("x")?, kind, axes.as_deref(), a.bool("keepdims")?)
}

/// The number of spatial dimensions of an `[N, C, *S]` tensor (at least 1).
fn spatial_rank(cx: &mut dyn Cx, x: ValueId) -> usize {
    let rank = cx.graph().nodes.get(x.index()).map_or(0, |n| n.ty.shape.rank());
    rank.saturating_sub(2).max(1)
}
