//! The abstract syntax tree of a `.nn` file.
//!
//! The tree mirrors the surface syntax faithfully (pipelines are kept as
//! written; sema desugars them). Every node carries the [`Span`] of the source
//! text it came from, so that any later error can point back at it.

use crate::diag::Span;

/// A whole `.nn` file: its items in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Block(BlockDef),
    Model(ModelDef),
    Train(TrainDef),
    /// `const NAME: TYPE = SOURCE` at file level: seen by the model and
    /// every block.
    Const(ConstDef),
}

/// A file-level `const NAME: TYPE = SOURCE`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDef {
    pub name: Ident,
    pub ty: TensorType,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `block NAME(x, c: int, p: float = 0.1) { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDef {
    pub name: Ident,
    pub params: Vec<ParamDef>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// A block parameter. Parameters without a type are tensor inputs; typed
/// parameters (`int`, `float`, `bool`, `str`, or any other identifier, which
/// sema rejects) are compile-time constants.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDef {
    pub name: Ident,
    pub ty: Option<Ident>,
    pub default: Option<Expr>,
    pub span: Span,
}

/// `model NAME { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDef {
    pub name: Ident,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `train { key = value ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct TrainDef {
    pub entries: Vec<TrainEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainEntry {
    pub key: Ident,
    /// The name after the key: `optimizer gen = adam(...)` is the optimiser
    /// of the loss `gen`.
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    Input,
    Target,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `input x: f32[B, 1]` or `target y: i32[B]`
    Decl { kind: DeclKind, name: Ident, ty: TensorType, span: Span },
    /// `name = expr` (including `loss = expr`, the loss named `loss`)
    Let { name: Ident, value: Expr, span: Span },
    /// `loss NAME = expr`: a named loss (a model may have several, each with
    /// its own optimiser).
    Loss { name: Ident, value: Expr, span: Span },
    /// `const NAME: TYPE = SOURCE`: a tensor loaded when the program is
    /// compiled (`npy(PATH)`, `npz(PATH, KEY)`, `csv(PATH)`, ...).
    Const { name: Ident, ty: TensorType, value: Expr, span: Span },
    /// `output name`
    Output { name: Ident, span: Span },
    /// `return expr` (valid only as the last statement of a block; sema checks)
    Return { value: Expr, span: Span },
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Decl { span, .. }
            | Stmt::Let { span, .. }
            | Stmt::Loss { span, .. }
            | Stmt::Const { span, .. }
            | Stmt::Output { span, .. }
            | Stmt::Return { span, .. } => *span,
        }
    }
}

/// `f32[B, 1, 28, 28]`
#[derive(Clone, Debug, PartialEq)]
pub struct TensorType {
    pub dtype: Ident,
    pub dims: Vec<DimExpr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    Known(u64, Span),
    Symbol(Ident),
}

impl DimExpr {
    pub fn span(&self) -> Span {
        match self {
            DimExpr::Known(_, s) => *s,
            DimExpr::Symbol(i) => i.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// An elementwise comparison (the IR's: its result is a `bool` tensor).
pub use crate::ir::CmpOp;

/// One subscript of `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Subscript {
    /// `x[i]`: selects one position and drops the axis.
    Index(Expr),
    /// `x[start:stop:step]`, each part optional; keeps the axis.
    Slice { start: Option<Expr>, stop: Option<Expr>, step: Option<Expr>, span: Span },
    /// `x[..., i]`: as many full slices as the other subscripts leave.
    Ellipsis(Span),
}

impl Subscript {
    pub fn span(&self) -> Span {
        match self {
            Subscript::Index(e) => e.span,
            Subscript::Slice { span, .. } | Subscript::Ellipsis(span) => *span,
        }
    }
}

/// A possibly dotted name: `relu`, `synthetic.sine`.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    /// The dotted text, e.g. `synthetic.sine`.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(".")
    }
}

/// A call argument: positional (`name == None`) or keyword (`name: value`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal as written (`42`).
    Int(i64),
    /// A float literal (`0.5`, `1e-3`).
    Float(f64),
    Str(String),
    Bool(bool),
    /// A name or dotted name: a binding, a block parameter, an enum-like
    /// value (`same`), or a function used without parentheses (`relu`).
    Path(Path),
    List(Vec<Expr>),
    Call {
        callee: Path,
        args: Vec<Arg>,
    },
    /// `lhs |> rhs`, where `rhs` is a `Call` or a `Path`; means `rhs(lhs, ...)`.
    Pipe {
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    /// `lhs < rhs` and the other comparisons.
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `base[subscripts]`.
    Index {
        base: Box<Expr>,
        subscripts: Vec<Subscript>,
    },
}
