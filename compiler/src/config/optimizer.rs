//! The optimisers and the learning-rate schedule: the `optimizer` and
//! `schedule` keys.

use crate::diag::Span;

/// The name of the loss of `loss = ...`, which a plain `optimizer = ...`
/// minimises.
pub const DEFAULT_LOSS: &str = "loss";

/// An optimiser with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd { lr: f64, momentum: f64, nesterov: bool, weight_decay: f64 },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    AdamW { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    RmsProp { lr: f64, alpha: f64, eps: f64, momentum: f64, weight_decay: f64 },
}

impl Optimizer {
    /// The optimiser of a `train` section without `optimizer`: `adam(lr: 1e-3)`.
    pub const DEFAULT: Optimizer =
        Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };

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

/// The optimiser of one loss: `optimizer NAME = OPT(..., params: ...)`, or
/// `optimizer = OPT(...)` for the loss `loss`. A training iteration runs
/// one step of every optimiser of the section, in the order written; each
/// step updates only [`params`](LossOptimizer::params), with the gradient
/// of its own loss.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOptimizer {
    /// The loss it minimises: `NAME` of `optimizer NAME = ...`, or
    /// [`DEFAULT_LOSS`] for `optimizer = ...` and the default optimiser.
    pub loss: String,
    pub optimizer: Optimizer,
    /// The parameters it updates.
    pub params: ParamSet,
    /// Where it is written: the name of `optimizer NAME = ...`, the key of
    /// `optimizer = ...`; `None` for the default optimiser of a section
    /// without `optimizer`.
    pub span: Option<Span>,
    /// Written with a name (`optimizer NAME = ...`).
    pub named: bool,
}

impl LossOptimizer {
    /// The optimiser of a section without `optimizer`: [`Optimizer::DEFAULT`]
    /// for the loss `loss`, over every parameter.
    pub fn default_for_loss() -> LossOptimizer {
        LossOptimizer {
            loss: DEFAULT_LOSS.to_string(),
            optimizer: Optimizer::DEFAULT,
            params: ParamSet::All,
            span: None,
            named: false,
        }
    }

    /// Whether it updates the parameter called `name`.
    pub fn updates(&self, name: &str) -> bool {
        self.params.contains(name)
    }
}

/// The `params:` argument of an optimiser: which parameters it updates.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamSet {
    /// Every parameter of the model (`params: params`, or no `params:`).
    All,
    /// The parameters of the named layer values of the model
    /// (`params: D`, `params: [G, D]`): every parameter whose name starts
    /// with `NAME.`.
    Layers(Vec<LayerRef>),
}

impl ParamSet {
    /// Whether the parameter called `name` belongs to the set.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            ParamSet::All => true,
            ParamSet::Layers(layers) => layers.iter().any(|l| l.owns(name)),
        }
    }
}

/// As written after `params:`: `params`, `D` or `[G, D]`.
impl std::fmt::Display for ParamSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamSet::All => f.write_str("params"),
            ParamSet::Layers(layers) => {
                let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
                match names.as_slice() {
                    [one] => f.write_str(one),
                    _ => write!(f, "[{}]", names.join(", ")),
                }
            }
        }
    }
}

/// A layer value named in `params:`, where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRef {
    pub name: String,
    pub span: Span,
}

impl LayerRef {
    /// Whether the parameter called `param` belongs to this layer value
    /// (its name starts with `NAME.`).
    pub fn owns(&self, param: &str) -> bool {
        param.strip_prefix(self.name.as_str()).is_some_and(|rest| rest.starts_with('.'))
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
    /// Linear warm-up over `warmup` epochs or `warmup_steps` steps (at
    /// most one of them non-zero), then cosine decay to 0 at the end of the
    /// run; with a warm-up in steps the rate changes at every step.
    Cosine {
        warmup: usize,
        warmup_steps: usize,
    },
    /// Multiply the rate by `gamma` after every epoch.
    Exponential {
        gamma: f64,
    },
}
