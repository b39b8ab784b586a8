//! RMSprop, as `torch.optim.RMSprop` with `centered = False`.
//!
//! ```text
//! g ← g + wd·p                     (wd ≠ 0)
//! sq ← α·sq + (1 − α)·g²
//! avg = sqrt(sq) + eps
//! momentum > 0: buf ← momentum·buf + g / avg;  p ← p − lr·buf
//! otherwise:                                   p ← p − lr·(g / avg)
//! ```
//! State: `optim.PARAM.square_avg`, and `optim.PARAM.momentum_buffer` when
//! `momentum > 0`.

use super::{Emitter, Param};
use crate::ir::{BinaryOp, UnaryOp, ValueId};

/// The RMSprop hyperparameters.
pub(super) struct RmsProp {
    pub alpha: f64,
    pub eps: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl RmsProp {
    /// Emits the update of `p` with gradient `g` and learning rate `lr`.
    pub fn update(&self, e: &mut Emitter, p: &Param, g: ValueId, lr: ValueId) -> Result<(), String> {
        let g = e.l2(p, g, self.weight_decay)?;
        let sq = e.state(p, "square_avg")?;
        let g2 = e.binary(p, BinaryOp::Mul, g, g)?;
        let sq = e.mix(p, self.alpha, sq, 1.0 - self.alpha, g2)?;
        e.set_state(p, "square_avg", sq)?;
        let root = e.unary(p, UnaryOp::Sqrt, sq)?;
        let eps = e.constant(self.eps);
        let eps = e.splat(eps, &p.ty.shape)?;
        let avg = e.binary(p, BinaryOp::Add, root, eps)?;
        let mut d = e.binary(p, BinaryOp::Div, g, avg)?;
        if self.momentum > 0.0 {
            let buf = e.state(p, "momentum_buffer")?;
            d = e.mix(p, self.momentum, buf, 1.0, d)?;
            e.set_state(p, "momentum_buffer", d)?;
        }
        let new = e.descend(p, p.value, lr, d)?;
        e.set_param(p, new)
    }
}
