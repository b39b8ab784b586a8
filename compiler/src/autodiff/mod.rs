//! Reverse-mode automatic differentiation as a graph-to-graph transform.
//!
//! [`differentiate`] takes a forward graph with a `loss` output and returns a
//! copy with the backward pass appended: one vector-Jacobian rule per
//! primitive (all in [`rules`]), applied in reverse definition order. Every
//! backward node records the forward node it came from (`grad_of`) and that
//! node's source location, so the printed graph reads `... @6:12-6:21 from %9
//! matmul`.

pub mod rules;

use crate::ir::{Graph, ValueId};

/// The gradient of the loss with respect to one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGrad {
    /// The parameter's stable name (e.g. `h.dense_1.weight`).
    pub name: String,
    /// The parameter's input node.
    pub param: ValueId,
    /// The node holding d loss / d param (same type as the parameter).
    pub grad: ValueId,
}

/// A forward graph extended with its backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Backward {
    /// The forward nodes, then the backward nodes. Outputs: the forward
    /// outputs, then one `value "grad.NAME"` output per parameter.
    pub graph: Graph,
    /// One entry per parameter input, in input order.
    pub grads: Vec<ParamGrad>,
}

/// Appends the backward pass of `forward`'s `loss` output with respect to
/// every parameter input.
pub fn differentiate(forward: &Graph) -> Result<Backward, String> {
    let _ = forward;
    todo!("autodiff")
}
