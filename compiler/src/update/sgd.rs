//! Stochastic gradient descent with optional (Nesterov) momentum and L2
//! weight decay, as `torch.optim.SGD` with `dampening = 0`.
//!
//! ```text
//! g ← g + wd·p                      (wd ≠ 0)
//! buf ← momentum·buf + g            (momentum ≠ 0; buf starts at 0, so the
//!                                    first step gives PyTorch's buf = g)
//! g ← g + momentum·buf  (Nesterov)  or  g ← buf
//! p ← p − lr·g
//! ```
//! State: `optim.PARAM.momentum_buffer` when `momentum ≠ 0`.

use super::{Emitter, Param};
use crate::ir::ValueId;

/// The SGD hyperparameters that shape the graph.
pub(super) struct Sgd {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Sgd {
    /// Emits the update of `p` with gradient `g` and learning rate `lr`.
    pub fn update(&self, e: &mut Emitter, p: &Param, g: ValueId, lr: ValueId) -> Result<(), String> {
        let mut g = e.l2(p, g, self.weight_decay)?;
        if self.momentum != 0.0 {
            let buf = e.state(p, "momentum_buffer")?;
            let buf = e.mix(p, self.momentum, buf, 1.0, g)?;
            e.set_state(p, "momentum_buffer", buf)?;
            g = if self.nesterov { e.mix(p, 1.0, g, self.momentum, buf)? } else { buf };
        }
        let new = e.descend(p, p.value, lr, g)?;
        e.set_param(p, new)
    }
}
