//! Adam and AdamW, as `torch.optim.Adam` / `torch.optim.AdamW` with
//! `amsgrad = False`.
//!
//! ```text
//! AdamW: p ← p·(1 − lr·wd)         (decoupled decay, wd ≠ 0)
//! Adam:  g ← g + wd·p              (L2, wd ≠ 0)
//! t ← t + 1                        (once per step, shared by all parameters)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! p ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
//! ```
//! There is no power op: `β^t` is `exp(t · ln β)` with `ln β` a constant
//! (and a bias correction of 1 when `β = 0`). State, under the optimiser's
//! prefix: `optim.step` (the step count `t`) and per parameter
//! `optim.PARAM.exp_avg` (m) and `optim.PARAM.exp_avg_sq` (v).

use super::{Emitter, Param};
use crate::ir::{BinaryOp, DType, Init, InputKind, Loc, OutputKind, Type, UnaryOp, ValueId};

/// The Adam hyperparameters; `decoupled` selects AdamW's weight decay.
pub(super) struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
}

impl Adam {
    /// Emits the step count and the update of every parameter in `params`
    /// (with gradients `grads`) for learning rate `lr`.
    pub fn update_all(
        &self,
        e: &mut Emitter,
        params: &[Param],
        grads: &[ValueId],
        lr: ValueId,
    ) -> Result<(), String> {
        let scalar = Type::scalar(DType::F32);
        let step = e.prefix.step();
        let t = e.input(&step, InputKind::State { init: Init::Zeros }, scalar, Loc::NONE)?;
        let one = e.constant(1.0);
        let t = e.shared(BinaryOp::Add, t, one)?;
        e.output(OutputKind::State, &step, t)?;
        // lr / (1 − β1^t) and sqrt(1 − β2^t); `None` when the correction is 1.
        let step_size = match bias_correction(e, self.beta1, t)? {
            Some(bias1) => e.shared(BinaryOp::Div, lr, bias1)?,
            None => lr,
        };
        let root_bias2 = match bias_correction(e, self.beta2, t)? {
            Some(bias2) => Some(e.shared_unary(UnaryOp::Sqrt, bias2)?),
            None => None,
        };
        let decay = if self.decoupled && self.weight_decay != 0.0 {
            let wd = e.constant(self.weight_decay);
            let lr_wd = e.shared(BinaryOp::Mul, lr, wd)?;
            Some(e.shared(BinaryOp::Sub, one, lr_wd)?)
        } else {
            None
        };
        for (p, &g) in params.iter().zip(grads) {
            let from = match decay {
                Some(decay) => e.scale_by(p, decay, p.value)?,
                None => p.value,
            };
            let g = if self.decoupled { g } else { e.l2(p, g, self.weight_decay)? };
            let m = e.state(p, "exp_avg")?;
            let m = e.mix(p, self.beta1, m, 1.0 - self.beta1, g)?;
            e.set_state(p, "exp_avg", m)?;
            let v = e.state(p, "exp_avg_sq")?;
            let g2 = e.binary(p, BinaryOp::Mul, g, g)?;
            let v = e.mix(p, self.beta2, v, 1.0 - self.beta2, g2)?;
            e.set_state(p, "exp_avg_sq", v)?;
            let mut denom = e.unary(p, UnaryOp::Sqrt, v)?;
            if let Some(root_bias2) = root_bias2 {
                let root_bias2 = e.splat(root_bias2, &p.ty.shape)?;
                denom = e.binary(p, BinaryOp::Div, denom, root_bias2)?;
            }
            let eps = e.constant(self.eps);
            let eps = e.splat(eps, &p.ty.shape)?;
            let denom = e.binary(p, BinaryOp::Add, denom, eps)?;
            let d = e.binary(p, BinaryOp::Div, m, denom)?;
            let new = e.descend(p, from, step_size, d)?;
            e.set_param(p, new)?;
        }
        Ok(())
    }
}

/// `1 − β^t` as `1 − exp(t · ln β)`, or `None` for `β = 0` (where it is 1
/// for every step t ≥ 1).
fn bias_correction(e: &mut Emitter, beta: f64, t: ValueId) -> Result<Option<ValueId>, String> {
    if beta == 0.0 {
        return Ok(None);
    }
    let ln_beta = e.constant(beta.ln());
    let exponent = e.shared(BinaryOp::Mul, t, ln_beta)?;
    let power = e.shared_unary(UnaryOp::Exp, exponent)?;
    let one = e.constant(1.0);
    Ok(Some(e.shared(BinaryOp::Sub, one, power)?))
}
