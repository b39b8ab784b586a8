//! The values an expression can evaluate to during block expansion.
//!
//! Tensors are IR values; everything else (numbers, booleans, strings, bare
//! names such as `same`, lists) is a compile-time constant. A tensor remembers
//! where it appeared in the source, so that a shape error can label each
//! operand with its type and point at the definition of a named operand.
//! [`Value::Error`] stands for the result of an expression that already
//! produced a diagnostic: every use of it is silently an error too, so one
//! mistake is reported once.

use crate::diag::Span;
use crate::ir::ValueId;

use super::args::Arg;

/// A tensor operand as seen at one use.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorVal {
    pub id: ValueId,
    /// The expression that produced it at this use.
    pub span: Span,
    /// For a named operand (`x`): its name and where it was defined.
    pub def: Option<(String, Span)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Tensor(TensorVal),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// A bare identifier that names nothing in scope, e.g. `same`; only
    /// meaningful where an enum-like value or a `str` constant is expected.
    Symbol(String),
    List(Vec<Value>),
    /// A layer without its tensor arguments (`dense(64)`, `encoder(32)`):
    /// one instance, whose parameters every application shares.
    Layer(LayerVal),
    /// An expression that already failed; using it reports nothing more.
    Error,
}

impl Value {
    /// A short description for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Value::Tensor(_) => "a tensor".into(),
            Value::Int(n) => format!("an integer (`{n}`)"),
            Value::Float(x) => format!("a float (`{x:?}`)"),
            Value::Bool(b) => format!("a boolean (`{b}`)"),
            Value::Str(s) => format!("a string ({s:?})"),
            Value::Symbol(s) => format!("the name `{s}`"),
            Value::List(_) => "a list".into(),
            Value::Layer(l) => format!("a layer (`{}`)", l.prefix),
            Value::Error => "an invalid value".into(),
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// True if the value or any list element is [`Value::Error`].
    pub fn has_error(&self) -> bool {
        match self {
            Value::Error => true,
            Value::List(items) => items.iter().any(Value::has_error),
            _ => false,
        }
    }
}

/// One instance of a layer: what it applies and the prefix of its
/// parameters' names.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerVal {
    pub kind: LayerKind,
    /// Its parameters are `PREFIX.…`: the binding's name for `enc =
    /// encoder(32)`, else a name made like a built-in call's (`h.dense_1`).
    pub prefix: String,
    /// How many tensors an application takes (the callee's leading tensor
    /// parameters).
    pub inputs: usize,
    /// Where it was made.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    /// A built-in with its arguments bound except the leading tensors.
    Builtin { name: &'static str, slots: Vec<Option<Arg>> },
    /// A block with its arguments bound except the leading tensors.
    Block { name: String, slots: Vec<Option<Arg>> },
    /// `repeat(layer, n)`: `n` instances applied in sequence, the `i`-th
    /// named `PREFIX.i`.
    Repeat { inner: Box<LayerVal>, n: usize },
}
