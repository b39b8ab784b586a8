//! The intermediate representation: a typed SSA graph of primitive ops.
//!
//! - [`types`]: dtypes, (symbolic) dimensions, shapes.
//! - [`op`]: the primitive ops, their attributes, and the op table that
//!   names them for the text format.
//! - [`infer`]: the type rule of every op (the single source of truth).
//! - [`graph`]: the graph, nodes, values, source locations and spans.
//! - [`error`]: the error of a stage working on a graph, naming its node.

pub mod error;
pub mod graph;
pub mod infer;
pub mod op;
pub mod types;

pub use error::{GraphError, StageError};
pub use graph::{Graph, Loc, Mode, Node, Output, OutputKind, ValueId};
pub use op::{
    BinaryOp, Boundary, CmpOp, ConvAttrs, Init, InputKind, LstmSizes, Op, ParamRole, PoolKind, UnaryOp,
    WarpAttrs, WarpMode, WindowAttrs,
};
pub use types::{DType, Dim, Shape, Type};

impl Graph {
    /// Appends a graph input.
    pub fn input(&mut self, name: impl Into<String>, kind: InputKind, ty: Type, loc: Loc) -> ValueId {
        self.push(Node {
            op: Op::Input { name: name.into(), kind },
            args: vec![],
            ty,
            loc,
            span: None,
            grad_of: None,
        })
    }

    /// The `const` node that `v` is, or broadcasts through a chain of
    /// `broadcast`s, and its value; `None` for any other value.
    pub fn splat(&self, mut v: ValueId) -> Option<(ValueId, f64)> {
        loop {
            let node = self.nodes.get(v.index())?;
            match node.op {
                Op::Const { value } => return Some((v, value)),
                Op::Broadcast { .. } => v = *node.args.first()?,
                _ => return None,
            }
        }
    }

    /// Appends a scalar constant.
    pub fn constant(&mut self, value: f64, dtype: DType, loc: Loc) -> ValueId {
        self.push(Node {
            op: Op::Const { value },
            args: vec![],
            ty: Type::scalar(dtype),
            loc,
            span: None,
            grad_of: None,
        })
    }
}

pub mod interp;
pub mod parse;
pub mod print;
pub mod rng;
pub mod verify;
