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

    /// The op's mnemonic (its row in [`OPS`]).
    pub fn name(self) -> &'static str {
        Op::Unary(self).mnemonic()
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
}

impl Op {
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
    ParamRole => Role, Init => Init);

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
    // labels and randomness
    "one_hot" => (OneHot { classes }) [classes: usize];
    "rng_uniform" => (RngUniform { shape, stream }) [shape: Shape, stream: u64];
}

#[cfg(test)]
mod tests {
    use super::{AttrKind, AttrType, AttrValue, Leaf, LeafKind, LeafType, Op, OpInfo, OpParts, OPS};
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
