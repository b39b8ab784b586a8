//! Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`.
//!
//! ```text
//! total = sqrt(Σ over parameters of Σ g²)
//! coef  = max_norm / (total + 1e-6)
//! g     ← g · min(coef, 1)
//! ```
//! Applied to the raw gradients, before any weight decay.

use super::{Emitter, Param};
use crate::ir::{BinaryOp, Op, UnaryOp, ValueId};

/// The `1e-6` PyTorch adds to the norm before dividing.
const NORM_EPS: f64 = 1e-6;

/// Emits the clipping of every parameter's gradient to global norm
/// `max_norm`; returns the clipped gradients in `params` order.
pub(super) fn clip_grad_norm(
    e: &mut Emitter,
    params: &[Param],
    max_norm: f64,
) -> Result<Vec<ValueId>, String> {
    let mut total: Option<ValueId> = None;
    for p in params {
        let g2 = e.binary(p, BinaryOp::Mul, p.grad, p.grad)?;
        let sum = if p.ty.shape.rank() == 0 {
            g2
        } else {
            e.add(p, Op::ReduceSum { axes: (0..p.ty.shape.rank()).collect() }, &[g2])?
        };
        total = Some(match total {
            Some(t) => e.shared(BinaryOp::Add, t, sum)?,
            None => sum,
        });
    }
    let Some(total) = total else { return Ok(vec![]) };
    let norm = e.shared_unary(UnaryOp::Sqrt, total)?;
    let eps = e.constant(NORM_EPS);
    let norm = e.shared(BinaryOp::Add, norm, eps)?;
    let max_norm = e.constant(max_norm);
    let coef = e.shared(BinaryOp::Div, max_norm, norm)?;
    let one = e.constant(1.0);
    let coef = e.shared(BinaryOp::Min, coef, one)?;
    params.iter().map(|p| e.scale_by(p, coef, p.grad)).collect()
}
