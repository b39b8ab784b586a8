//! The optimiser and the learning-rate schedule: the `optimizer` and
//! `schedule` keys.

/// An optimiser with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd { lr: f64, momentum: f64, nesterov: bool, weight_decay: f64 },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    AdamW { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    RmsProp { lr: f64, alpha: f64, eps: f64, momentum: f64, weight_decay: f64 },
}

impl Optimizer {
    /// The (initial) learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::AdamW { lr, .. }
            | Optimizer::RmsProp { lr, .. } => lr,
        }
    }

    /// The name as written in a `.nn` file.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
            Optimizer::RmsProp { .. } => "rmsprop",
        }
    }
}

/// A learning-rate schedule, stepped once per epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Linear warm-up over `warmup` epochs, then cosine decay to 0 at the last epoch.
    Cosine {
        warmup: usize,
    },
    /// Multiply the rate by `gamma` after every epoch.
    Exponential {
        gamma: f64,
    },
}
