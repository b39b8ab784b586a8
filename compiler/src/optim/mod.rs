//! Optimisers lowered to IR.
//!
//! [`append_update`] extends a graph that already computes the gradients
//! with the update of one optimiser step, so the whole training step is one
//! graph: (batch, params, state, lr) → (loss, new params, new state).

use crate::autodiff::ParamGrad;
use crate::ir::Graph;
use crate::sema::train::Optimizer;

/// Appends gradient clipping (if `clip_grad_norm` is set) and the update of
/// `optimizer` for every parameter in `grads`.
pub fn append_update(
    graph: &mut Graph,
    grads: &[ParamGrad],
    optimizer: &Optimizer,
    clip_grad_norm: Option<f64>,
) -> Result<(), String> {
    let _ = (graph, grads, optimizer, clip_grad_norm);
    todo!("optimisers")
}
