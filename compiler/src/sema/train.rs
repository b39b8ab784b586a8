//! The `train { ... }` section: from AST entries to a typed [`TrainConfig`].
//!
//! Everything the section accepts is described by tables: [`KEYS`] (one row
//! per key), and one table of callable values per kind — [`OPTIMIZERS`],
//! [`SCHEDULES`], [`METRICS`], [`NORMALIZATIONS`], [`EARLY_STOPS`],
//! [`SPLITS`], [`SOURCES`], [`GENERATORS`] and [`MISSINGS`] — each row with
//! typed, ranged and defaulted parameters. One argument binder and one value
//! checker serve every table, so every call reports the same errors in the
//! same words. Bare names such as `constant` or `accuracy` are calls without
//! arguments.
//!
//! [`check_train`] reports every problem of a section in one pass and returns
//! a config only when there are none. Constant arithmetic (`1e-3 * 2`, `-1`)
//! is folded here; the section never refers to the model. The runtime reads
//! the config; this module does no I/O.

use std::collections::HashMap;

use super::catalogue::{names_list, MAX_SIZE};
use super::suggest::did_you_mean;
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{self, BinOp, Expr, ExprKind};

// ---- the checked configuration --------------------------------------------

/// The checked `train { ... }` section, every key with its default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Where the examples come from (required).
    pub data: DataSource,
    /// The span of the `data = ...` entry, so that errors found while
    /// loading the data can point at it.
    pub data_span: Span,
    /// Which examples train and which validate.
    pub split: Split,
    pub normalize: Normalize,
    /// Examples per optimiser step (≥ 1).
    pub batch: usize,
    /// Passes over the training data (≥ 1).
    pub epochs: usize,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Maximum global gradient norm; `None` means no clipping.
    pub clip_grad_norm: Option<f64>,
    pub early_stop: Option<EarlyStop>,
    /// Metrics reported besides the loss, in the order written.
    pub metrics: Vec<Metric>,
    pub seed: u64,
    /// Path of the checkpoint to write; `None` means next to the model file.
    pub checkpoint: Option<String>,
    /// What loading does with examples holding NaN or infinite values.
    pub missing: Missing,
}

/// A source of training examples.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// `synthetic.NAME(...)`: generated in memory by `generator`, whose
    /// variant carries its checked arguments.
    Synthetic { generator: Generator },
    /// `dataset("NAME", task: "TASK")`: one of the shipped real data sets
    /// ([`DATASETS`]) and one of its tasks (`None`: the first, its default).
    Dataset { name: String, task: Option<String> },
    /// `csv(PATH, x: [COLUMNS], y: COLUMN or [COLUMNS])`.
    Csv { path: String, x: Vec<String>, y: Vec<String> },
    /// `npy(x: PATH, y: PATH)`.
    Npy { x: String, y: String },
    /// `npz(PATH, x: KEY, y: KEY)`.
    Npz { path: String, x: String, y: String },
}

/// The `split` key: the fraction of the examples that trains, and how the
/// training examples are taken.
#[derive(Clone, Copy, PartialEq)]
pub struct Split {
    /// In (0, 1).
    pub fraction: f64,
    pub rule: SplitRule,
}

/// How a [`Split`] takes the training examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitRule {
    /// `split = F`: by the source's own order: independent examples
    /// validate evenly spread over the set, time-ordered ones on the last
    /// part.
    Source,
    /// `split = chronological(F)`: the first fraction of the examples, in
    /// the source's order (a file's row order), trains and the rest
    /// validates, whatever the source.
    Chronological,
}

impl Split {
    /// `split = fraction`, the default rule.
    pub const fn by_source(fraction: f64) -> Split {
        Split { fraction, rule: SplitRule::Source }
    }
}

impl From<f64> for Split {
    fn from(fraction: f64) -> Split {
        Split::by_source(fraction)
    }
}

/// As written in a `.nn` file: `0.8`, `chronological(0.8)`.
impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rule {
            SplitRule::Source => write!(f, "{:?}", self.fraction),
            SplitRule::Chronological => write!(f, "chronological({:?})", self.fraction),
        }
    }
}

/// The same as [`Display`](std::fmt::Display), so that a configuration
/// printed with `{:?}` shows the key as written (`0.8` for the default
/// rule).
impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A synthetic generator with its checked arguments (see [`GENERATORS`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Generator {
    Sine { n: usize, noise: f64 },
    Lorenz96 { n: usize, k: usize, forcing: f64, dt: f64 },
    Advection { n: usize, size: usize, steps: usize },
    Eddies { n: usize, size: usize },
}

impl Generator {
    /// The name as written in a `.nn` file (after `synthetic.`).
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Sine { .. } => "sine",
            Generator::Lorenz96 { .. } => "lorenz96",
            Generator::Advection { .. } => "advection",
            Generator::Eddies { .. } => "eddies",
        }
    }

    /// The number of examples generated.
    pub fn n(&self) -> usize {
        match *self {
            Generator::Sine { n, .. }
            | Generator::Lorenz96 { n, .. }
            | Generator::Advection { n, .. }
            | Generator::Eddies { n, .. } => n,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalize {
    None,
    /// Zero mean, unit variance per feature/channel, from training statistics.
    PerVariable,
}

/// What loading does with an example whose input or target holds a NaN or
/// infinite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Loading fails, naming the array and the first bad value.
    Error,
    /// Every such example is left out (and the number left out reported).
    Drop,
    /// Examples are kept: the source gains a field `valid` (1 where the
    /// target — or, without a target, the input — is finite, 0 elsewhere)
    /// that a model binds by declaring `target valid` and uses as a loss
    /// weight; missing input values are fed as 0 (after normalisation, the
    /// training mean) and missing targets are left out of every metric.
    Mask,
}

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

/// Stop when the validation loss has not improved by more than `min_delta`
/// for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStop {
    pub patience: usize,
    pub min_delta: f64,
}

/// A validation metric. The thresholded scores take the threshold in the
/// target's physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Over every element, or also per variable (axis 1) when `per_variable`.
    Rmse {
        per_variable: bool,
    },
    Mae {
        per_variable: bool,
    },
    Accuracy,
    Csi(f64),
    Pod(f64),
    Far(f64),
    Hss(f64),
    Dice,
}

impl Metric {
    /// The name as written in a `.nn` file.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Rmse { .. } => "rmse",
            Metric::Mae { .. } => "mae",
            Metric::Accuracy => "accuracy",
            Metric::Csi(_) => "csi",
            Metric::Pod(_) => "pod",
            Metric::Far(_) => "far",
            Metric::Hss(_) => "hss",
            Metric::Dice => "dice",
        }
    }
}

// ---- parameters and values ------------------------------------------------

/// Which floats a parameter accepts (all must be finite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatRange {
    Any,
    /// `> 0`
    Positive,
    /// `>= 0`
    NonNegative,
    /// `(0, 1)`
    Open01,
    /// `[0, 1)`
    Prob,
}

/// The type of a parameter or key value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ty {
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number (integers are accepted).
    Float(FloatRange),
    Bool,
    /// A non-empty string.
    Str,
    /// A non-empty string or a non-empty list of them (column names).
    Strs,
}

impl Ty {
    /// What the type accepts, for "must be X" messages and the reference.
    pub fn expected(self) -> String {
        match self {
            Ty::Int { min: 1, .. } => "a positive integer".into(),
            Ty::Int { min: 0, .. } => "a non-negative integer".into(),
            Ty::Int { min, .. } => format!("an integer of at least {min}"),
            Ty::Float(FloatRange::Any) => "a number".into(),
            Ty::Float(FloatRange::Positive) => "a positive number".into(),
            Ty::Float(FloatRange::NonNegative) => "a non-negative number".into(),
            Ty::Float(FloatRange::Open01) => "a number in (0, 1)".into(),
            Ty::Float(FloatRange::Prob) => "a number in [0, 1)".into(),
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Strs => "a string or a list of strings".into(),
        }
    }
}

const SIZE: Ty = Ty::Int { min: 1, max: MAX_SIZE };
const COUNT: Ty = Ty::Int { min: 0, max: MAX_SIZE };
const POSITIVE: Ty = Ty::Float(FloatRange::Positive);
const NON_NEGATIVE: Ty = Ty::Float(FloatRange::NonNegative);
const PROB: Ty = Ty::Float(FloatRange::Prob);
const NUMBER: Ty = Ty::Float(FloatRange::Any);

/// A parameter's default value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dflt {
    Required,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
}

/// A parameter of a callable value (optimiser, schedule, data source, ...).
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub default: Dflt,
    /// May be given by position as well as by name.
    pub positional: bool,
}

/// A parameter given by position or by name.
const fn pos(name: &'static str, ty: Ty, default: Dflt) -> Param {
    Param { name, ty, default, positional: true }
}

/// A parameter given only by name.
const fn kw(name: &'static str, ty: Ty, default: Dflt) -> Param {
    Param { name, ty, default, positional: false }
}

/// A checked value.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
}

/// The checked arguments of one call, one per parameter (defaults applied).
struct Args {
    params: &'static [Param],
    values: Vec<Val>,
}

impl Args {
    fn get(&self, name: &str) -> Option<&Val> {
        let i = self.params.iter().position(|p| p.name == name);
        debug_assert!(i.is_some(), "no parameter `{name}`");
        self.values.get(i?)
    }

    fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Val::Float(x)) => *x,
            Some(Val::Int(n)) => *n as f64,
            _ => 0.0,
        }
    }

    /// A size or count (its range keeps it within `0..=MAX_SIZE`).
    fn usize(&self, name: &str) -> usize {
        match self.get(name) {
            Some(Val::Int(n)) => usize::try_from(*n).unwrap_or(0),
            _ => 0,
        }
    }

    fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Val::Bool(true)))
    }

    fn str(&self, name: &str) -> String {
        match self.get(name) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    fn strs(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Val::Strs(v)) => v.clone(),
            Some(Val::Str(s)) => vec![s.clone()],
            _ => vec![],
        }
    }
}

/// A problem found after the arguments were bound (a cross-argument rule or
/// a name looked up in another table); reported on argument `param`.
struct Invalid {
    param: &'static str,
    message: String,
    label: String,
    notes: Vec<String>,
}

type Build<T> = fn(&Args) -> Result<T, Invalid>;

/// One row of a table of callable values.
pub struct Callable<T: 'static> {
    pub name: &'static str,
    pub params: &'static [Param],
    /// One line for the reference.
    pub doc: &'static str,
    build: Build<T>,
}

impl<T> Callable<T> {
    /// The signature as a user would write it, e.g. `adam(lr, beta1: 0.9, ...)`.
    pub fn signature(&self, prefix: &str) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                Dflt::Required => p.name.to_string(),
                Dflt::Int(n) => format!("{}: {n}", p.name),
                Dflt::Float(x) => format!("{}: {}", p.name, float_text(x)),
                Dflt::Bool(b) => format!("{}: {b}", p.name),
                Dflt::Str(t) => format!("{}: \"{t}\"", p.name),
            })
            .collect();
        if params.is_empty() {
            format!("{prefix}{}", self.name)
        } else {
            format!("{prefix}{}({})", self.name, params.join(", "))
        }
    }
}

/// A table of callable values of one kind.
pub struct Table<T: 'static> {
    /// What a row is, for messages: "optimizer".
    pub what: &'static str,
    /// What the key expects, for "must be X" messages.
    pub expected: &'static str,
    /// Written before a row's name (`synthetic.`).
    pub prefix: &'static str,
    pub rows: &'static [Callable<T>],
}

impl<T> Table<T> {
    fn names(&self) -> Vec<&'static str> {
        self.rows.iter().map(|r| r.name).collect()
    }
}

fn float_text(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:e}")
    } else {
        format!("{x:?}")
    }
}

// ---- the tables -----------------------------------------------------------

const LR: Param = pos("lr", POSITIVE, Dflt::Required);
const BETA1: Param = kw("beta1", PROB, Dflt::Float(0.9));
const BETA2: Param = kw("beta2", PROB, Dflt::Float(0.999));
const EPS: Param = kw("eps", POSITIVE, Dflt::Float(1e-8));
const MOMENTUM: Param = kw("momentum", PROB, Dflt::Float(0.0));
const NO_DECAY: Param = kw("weight_decay", NON_NEGATIVE, Dflt::Float(0.0));

/// The optimisers, with PyTorch's defaults.
pub const OPTIMIZERS: Table<Optimizer> = Table {
    what: "optimizer",
    expected: "an optimizer such as `adam(lr: 1e-3)`",
    prefix: "",
    rows: &[
        Callable {
            name: "sgd",
            params: &[LR, MOMENTUM, kw("nesterov", Ty::Bool, Dflt::Bool(false)), NO_DECAY],
            doc: "stochastic gradient descent, optionally with (Nesterov) momentum",
            build: |a| {
                let (momentum, nesterov) = (a.float("momentum"), a.bool("nesterov"));
                if nesterov && momentum <= 0.0 {
                    return Err(Invalid {
                        param: "nesterov",
                        message: "Nesterov momentum needs `momentum` > 0".into(),
                        label: "needs `momentum` > 0".into(),
                        notes: vec!["help: add e.g. `momentum: 0.9`".into()],
                    });
                }
                Ok(Optimizer::Sgd {
                    lr: a.float("lr"),
                    momentum,
                    nesterov,
                    weight_decay: a.float("weight_decay"),
                })
            },
        },
        Callable {
            name: "adam",
            params: &[LR, BETA1, BETA2, EPS, NO_DECAY],
            doc: "Adam; `weight_decay` is added to the gradient (L2), as in PyTorch",
            build: |a| {
                Ok(Optimizer::Adam {
                    lr: a.float("lr"),
                    beta1: a.float("beta1"),
                    beta2: a.float("beta2"),
                    eps: a.float("eps"),
                    weight_decay: a.float("weight_decay"),
                })
            },
        },
        Callable {
            name: "adamw",
            params: &[LR, BETA1, BETA2, EPS, kw("weight_decay", NON_NEGATIVE, Dflt::Float(0.01))],
            doc: "Adam with decoupled weight decay (Loshchilov & Hutter)",
            build: |a| {
                Ok(Optimizer::AdamW {
                    lr: a.float("lr"),
                    beta1: a.float("beta1"),
                    beta2: a.float("beta2"),
                    eps: a.float("eps"),
                    weight_decay: a.float("weight_decay"),
                })
            },
        },
        Callable {
            name: "rmsprop",
            params: &[LR, kw("alpha", PROB, Dflt::Float(0.99)), EPS, MOMENTUM, NO_DECAY],
            doc: "RMSprop: `alpha` is the smoothing constant of the squared-gradient average",
            build: |a| {
                Ok(Optimizer::RmsProp {
                    lr: a.float("lr"),
                    alpha: a.float("alpha"),
                    eps: a.float("eps"),
                    momentum: a.float("momentum"),
                    weight_decay: a.float("weight_decay"),
                })
            },
        },
    ],
};

/// The learning-rate schedules (stepped once per epoch).
pub const SCHEDULES: Table<Schedule> = Table {
    what: "schedule",
    expected: "a schedule such as `constant` or `cosine(warmup: 2)`",
    prefix: "",
    rows: &[
        Callable {
            name: "constant",
            params: &[],
            doc: "the rate stays `lr`",
            build: |_| Ok(Schedule::Constant),
        },
        Callable {
            name: "step",
            params: &[pos("every", SIZE, Dflt::Required), pos("gamma", POSITIVE, Dflt::Float(0.1))],
            doc: "multiply the rate by `gamma` every `every` epochs",
            build: |a| Ok(Schedule::Step { every: a.usize("every"), gamma: a.float("gamma") }),
        },
        Callable {
            name: "cosine",
            params: &[pos("warmup", COUNT, Dflt::Int(0))],
            doc: "linear warm-up over `warmup` epochs, then cosine decay to 0 at the last epoch",
            build: |a| Ok(Schedule::Cosine { warmup: a.usize("warmup") }),
        },
        Callable {
            name: "exponential",
            params: &[pos("gamma", POSITIVE, Dflt::Required)],
            doc: "multiply the rate by `gamma` after every epoch",
            build: |a| Ok(Schedule::Exponential { gamma: a.float("gamma") }),
        },
    ],
};

const THRESHOLD: &[Param] = &[pos("threshold", NUMBER, Dflt::Required)];

/// The validation metrics.
const PER_VARIABLE: &[Param] = &[kw("per_variable", Ty::Bool, Dflt::Bool(false))];

pub const METRICS: Table<Metric> = Table {
    what: "metric",
    expected: "a metric such as `rmse` or `csi(1.0)`",
    prefix: "",
    rows: &[
        Callable {
            name: "rmse",
            params: PER_VARIABLE,
            doc: "root-mean-square error; with `per_variable: true` also one value per variable (axis 1)",
            build: |a| Ok(Metric::Rmse { per_variable: a.bool("per_variable") }),
        },
        Callable {
            name: "mae",
            params: PER_VARIABLE,
            doc: "mean absolute error; with `per_variable: true` also one value per variable (axis 1)",
            build: |a| Ok(Metric::Mae { per_variable: a.bool("per_variable") }),
        },
        Callable {
            name: "accuracy",
            params: &[],
            doc: "fraction of correct arg-max classes (over samples and positions)",
            build: |_| Ok(Metric::Accuracy),
        },
        Callable {
            name: "csi",
            params: THRESHOLD,
            doc: "critical success index hits/(hits+misses+false alarms) of events `≥ threshold`",
            build: |a| Ok(Metric::Csi(a.float("threshold"))),
        },
        Callable {
            name: "pod",
            params: THRESHOLD,
            doc: "probability of detection hits/(hits+misses)",
            build: |a| Ok(Metric::Pod(a.float("threshold"))),
        },
        Callable {
            name: "far",
            params: THRESHOLD,
            doc: "false-alarm ratio false alarms/(hits+false alarms)",
            build: |a| Ok(Metric::Far(a.float("threshold"))),
        },
        Callable {
            name: "hss",
            params: THRESHOLD,
            doc: "Heidke skill score of the 2×2 contingency table",
            build: |a| Ok(Metric::Hss(a.float("threshold"))),
        },
        Callable {
            name: "dice",
            params: &[],
            doc: "Dice coefficient of hard masks (argmax over channels, or ≥ 0.5 for one channel), mean over the classes present",
            build: |_| Ok(Metric::Dice),
        },
    ],
};

/// The values of `normalize`.
pub const NORMALIZATIONS: Table<Normalize> = Table {
    what: "normalization",
    expected: "`none` or `per_variable`",
    prefix: "",
    rows: &[
        Callable { name: "none", params: &[], doc: "data used as stored", build: |_| Ok(Normalize::None) },
        Callable {
            name: "per_variable",
            params: &[],
            doc: "zero mean, unit variance per feature/channel, from the training split only",
            build: |_| Ok(Normalize::PerVariable),
        },
    ],
};

/// The values of `missing`.
pub const MISSINGS: Table<Missing> = Table {
    what: "missing-value rule",
    expected: "`error` or `drop`",
    prefix: "",
    rows: &[
        Callable {
            name: "error",
            params: &[],
            doc: "a NaN or infinite value in an input or target stops loading, naming where it is",
            build: |_| Ok(Missing::Error),
        },
        Callable {
            name: "drop",
            params: &[],
            doc: "examples holding a NaN or infinite value are left out; their number is reported",
            build: |_| Ok(Missing::Drop),
        },
        Callable {
            name: "mask",
            params: &[],
            doc: "examples are kept; a field `valid` (1 = finite target) binds to `target valid` for a \
                  loss weight; missing inputs are fed as 0 after normalisation; metrics skip missing targets",
            build: |_| Ok(Missing::Mask),
        },
    ],
};

/// The split rules written as calls (`split = chronological(0.8)`); a plain
/// number is the source's own rule ([`SplitRule::Source`]).
pub const SPLITS: Table<Split> = Table {
    what: "split rule",
    expected: "a number in (0, 1) or `chronological(F)`",
    prefix: "",
    rows: &[Callable {
        name: "chronological",
        params: &[pos("fraction", Ty::Float(FloatRange::Open01), Dflt::Required)],
        doc: "the first `fraction` of the examples in the source's order (a file's row order) trains, \
              the rest validates",
        build: |a| Ok(Split { fraction: a.float("fraction"), rule: SplitRule::Chronological }),
    }],
};

/// The value of `early_stop`.
pub const EARLY_STOPS: Table<EarlyStop> = Table {
    what: "early-stopping rule",
    expected: "`patience(N)` or `patience(N, min_delta: D)`",
    prefix: "",
    rows: &[Callable {
        name: "patience",
        params: &[pos("n", SIZE, Dflt::Required), kw("min_delta", NON_NEGATIVE, Dflt::Float(0.0))],
        doc: "stop after `n` epochs without a validation-loss improvement larger than `min_delta`",
        build: |a| Ok(EarlyStop { patience: a.usize("n"), min_delta: a.float("min_delta") }),
    }],
};

/// The data sources other than `synthetic.NAME` (see [`GENERATORS`]).
pub const SOURCES: Table<DataSource> = Table {
    what: "data source",
    expected: "a data source such as `dataset(\"digits\")` or `synthetic.sine(n: 1024)`",
    prefix: "",
    rows: &[
        Callable {
            name: "dataset",
            params: &[pos("name", Ty::Str, Dflt::Required), kw("task", Ty::Str, Dflt::Str(""))],
            doc: "a real data set shipped with nnc; `task` picks one of its tasks (default: the first)",
            build: |a| {
                let name = a.str("name");
                let task = a.str("task");
                if let Some(d) = DATASETS.iter().find(|d| d.name == name) {
                    if task.is_empty() {
                        return Ok(DataSource::Dataset { name, task: None });
                    }
                    if d.tasks.contains(&task.as_str()) {
                        return Ok(DataSource::Dataset { name, task: Some(task) });
                    }
                    let mut notes = vec![format!("the tasks of `{name}`: {}", names_list(d.tasks))];
                    if let Some(help) = did_you_mean(&task, d.tasks.iter().copied()) {
                        notes.push(help);
                    }
                    return Err(Invalid {
                        param: "task",
                        message: format!("dataset `{name}` has no task `{task}`"),
                        label: "unknown task".into(),
                        notes,
                    });
                }
                let names: Vec<&str> = DATASETS.iter().map(|d| d.name).collect();
                let mut notes = vec![format!("valid datasets: {}", names_list(&names))];
                if let Some(help) = did_you_mean(&name, names.iter().copied()) {
                    notes.push(help);
                }
                Err(Invalid {
                    param: "name",
                    message: format!("unknown dataset `{name}`"),
                    label: "unknown dataset".into(),
                    notes,
                })
            },
        },
        Callable {
            name: "csv",
            params: &[
                pos("path", Ty::Str, Dflt::Required),
                kw("x", Ty::Strs, Dflt::Required),
                kw("y", Ty::Strs, Dflt::Required),
            ],
            doc: "a CSV file with a header row; `x` and `y` name its columns",
            build: |a| Ok(DataSource::Csv { path: a.str("path"), x: a.strs("x"), y: a.strs("y") }),
        },
        Callable {
            name: "npy",
            params: &[kw("x", Ty::Str, Dflt::Required), kw("y", Ty::Str, Dflt::Required)],
            doc: "two NumPy `.npy` files, inputs and targets, first axis = examples",
            build: |a| Ok(DataSource::Npy { x: a.str("x"), y: a.str("y") }),
        },
        Callable {
            name: "npz",
            params: &[
                pos("path", Ty::Str, Dflt::Required),
                kw("x", Ty::Str, Dflt::Required),
                kw("y", Ty::Str, Dflt::Required),
            ],
            doc: "one NumPy `.npz` archive; `x` and `y` name its arrays",
            build: |a| Ok(DataSource::Npz { path: a.str("path"), x: a.str("x"), y: a.str("y") }),
        },
    ],
};

fn synthetic(generator: Generator) -> Result<DataSource, Invalid> {
    Ok(DataSource::Synthetic { generator })
}

/// The synthetic generators, `synthetic.NAME(...)`.
pub const GENERATORS: Table<DataSource> = Table {
    what: "synthetic generator",
    expected: "a synthetic generator",
    prefix: "synthetic.",
    rows: &[
        Callable {
            name: "sine",
            params: &[kw("n", SIZE, Dflt::Int(1024)), kw("noise", NON_NEGATIVE, Dflt::Float(0.0))],
            doc: "x ~ U(−π, π) as f32[n, 1]; y = sin(x) + noise·N(0, 1) as f32[n, 1]",
            build: |a| synthetic(Generator::Sine { n: a.usize("n"), noise: a.float("noise") }),
        },
        Callable {
            name: "lorenz96",
            params: &[
                kw("n", SIZE, Dflt::Int(2048)),
                kw("k", Ty::Int { min: 4, max: MAX_SIZE }, Dflt::Int(40)),
                kw("forcing", NUMBER, Dflt::Float(8.0)),
                kw("dt", POSITIVE, Dflt::Float(0.05)),
            ],
            doc: "Lorenz-96 states: x = state at t as f32[n, k]; y = state at t + dt as f32[n, k]",
            build: |a| {
                let args = Generator::Lorenz96 {
                    n: a.usize("n"),
                    k: a.usize("k"),
                    forcing: a.float("forcing"),
                    dt: a.float("dt"),
                };
                synthetic(args)
            },
        },
        Callable {
            name: "advection",
            params: &[
                kw("n", SIZE, Dflt::Int(256)),
                kw("size", SIZE, Dflt::Int(32)),
                kw("steps", SIZE, Dflt::Int(4)),
            ],
            doc: "periodic 2-D advection: x = field f32[n, 1, size, size]; y = field `steps` steps later",
            build: |a| {
                let args =
                    Generator::Advection { n: a.usize("n"), size: a.usize("size"), steps: a.usize("steps") };
                synthetic(args)
            },
        },
        Callable {
            name: "eddies",
            params: &[
                kw("n", SIZE, Dflt::Int(512)),
                kw("size", Ty::Int { min: 4, max: MAX_SIZE }, Dflt::Int(32)),
            ],
            doc: "x = sea-surface height f32[n, 1, size, size]; y = one-hot eddy mask f32[n, 3, size, size]",
            build: |a| synthetic(Generator::Eddies { n: a.usize("n"), size: a.usize("size") }),
        },
    ],
};

/// A shipped real data set.
pub struct DatasetInfo {
    pub name: &'static str,
    pub doc: &'static str,
    /// The names of its tasks (`dataset("NAME", task: "TASK")`); the first
    /// is the default.
    pub tasks: &'static [&'static str],
}

const fn set(name: &'static str, doc: &'static str) -> DatasetInfo {
    DatasetInfo { name, doc, tasks: &["default"] }
}

/// The real data sets shipped with nnc (`dataset("NAME")`).
pub const DATASETS: &[DatasetInfo] = &[
    set("digits", "1797 handwritten digits, 8×8 pixels 0–16, labels 0–9"),
    set("mnist_5k", "5000 MNIST digits, 28×28 pixels 0–255, labels 0–9"),
    set("iris", "150 flowers, 4 measurements, 3 species"),
    set("wine", "178 wines, 13 chemical measurements, 3 cultivars"),
    set("breast_cancer", "569 cell samples, 30 features, malignant/benign"),
    set("diabetes", "442 patients, 10 raw features, disease progression"),
    set("linnerud", "20 athletes, 3 exercises, 3 physiological measures"),
    set("co2_mauna_loa", "weekly CO2 at Mauna Loa 1958–2001 (ppmv)"),
    DatasetInfo {
        name: "elnino_nino12",
        doc: "monthly Niño 1+2 SST 1950–2010 (°C)",
        tasks: &["default", "seasonal"],
    },
    set("sunspots", "yearly sunspot activity 1700–2008"),
    set("nile", "annual Nile flow at Aswan 1871–1970"),
    set("seattle_weather", "daily Seattle weather 2012–2015, 5 weather classes"),
    DatasetInfo {
        name: "storm_jan1996",
        doc: "64 six-hourly fields (p, t, u, v, u500, v500) on 33×36",
        tasks: &["default", "increment", "sequence"],
    },
    set("stageiv_precip", "23 hourly Stage IV precipitation fields on 118×87 (mm)"),
    DatasetInfo {
        name: "era5_members",
        doc: "ERA5 z and t at 850/500 hPa, 10 members, 61×120",
        tasks: &["default", "latitude"],
    },
    DatasetInfo {
        name: "pacific_sst_ndjfm",
        doc: "50 winter-mean Pacific SST anomaly maps, 18×30",
        tasks: &["default", "maps"],
    },
    DatasetInfo {
        name: "landsea_etopo60",
        doc: "1° elevation and 5-class land/sea mask, 180×360",
        tasks: &["default", "tiles"],
    },
];

type Apply = fn(&mut Checker, &Expr, &mut Draft);

/// One key of the `train` section.
pub struct Key {
    pub name: &'static str,
    /// What the value may be, for the reference.
    pub value: &'static str,
    /// The default, for the reference.
    pub default: &'static str,
    apply: Apply,
}

/// The keys of the `train` section.
pub const KEYS: &[Key] = &[
    Key {
        name: "data",
        value: "`synthetic.NAME(...)`, `dataset(\"NAME\")`, `csv(...)`, `npy(...)` or `npz(...)`",
        default: "required",
        apply: |cx, e, d| d.data = cx.data(e).or(d.data.take()),
    },
    Key {
        name: "split",
        value: "fraction of the examples used for training, in (0, 1), taken by the source's order; or \
                `chronological(F)`: the first F of the examples train",
        default: "0.8",
        apply: |cx, e, d| {
            if let Some(split) = cx.split(e) {
                d.split = split;
            }
        },
    },
    Key {
        name: "normalize",
        value: "`none` or `per_variable`",
        default: "none",
        apply: |cx, e, d| cx.named("normalize", &NORMALIZATIONS, e, &mut d.normalize),
    },
    Key {
        name: "batch",
        value: "batch size, a positive integer",
        default: "32",
        apply: |cx, e, d| cx.size("batch", e, &mut d.batch),
    },
    Key {
        name: "epochs",
        value: "passes over the training data, a positive integer",
        default: "10",
        apply: |cx, e, d| cx.size("epochs", e, &mut d.epochs),
    },
    Key {
        name: "optimizer",
        value: "`sgd(...)`, `adam(...)`, `adamw(...)` or `rmsprop(...)`",
        default: "adam(lr: 1e-3)",
        apply: |cx, e, d| cx.named("optimizer", &OPTIMIZERS, e, &mut d.optimizer),
    },
    Key {
        name: "schedule",
        value: "`constant`, `step(...)`, `cosine(...)` or `exponential(...)`",
        default: "constant",
        apply: |cx, e, d| cx.named("schedule", &SCHEDULES, e, &mut d.schedule),
    },
    Key {
        name: "clip_grad_norm",
        value: "maximum global gradient norm, a positive number",
        default: "off",
        apply: |cx, e, d| {
            let mut x = 0.0;
            if cx.number("clip_grad_norm", POSITIVE, e, &mut x) {
                d.clip_grad_norm = Some(x);
            }
        },
    },
    Key {
        name: "early_stop",
        value: "`patience(N, min_delta: 0)`",
        default: "off",
        apply: |cx, e, d| {
            if let Some(s) = cx.call("early_stop", &EARLY_STOPS, e) {
                d.early_stop = Some(s);
            }
        },
    },
    Key {
        name: "metrics",
        value: "a list of metrics",
        default: "[] (loss only)",
        apply: |cx, e, d| d.metrics = cx.metrics(e),
    },
    Key {
        name: "seed",
        value: "random seed, a non-negative integer",
        default: "0",
        apply: |cx, e, d| {
            let mut n = 0i64;
            if cx.number("seed", Ty::Int { min: 0, max: i64::MAX }, e, &mut n) {
                d.seed = n.unsigned_abs();
            }
        },
    },
    Key {
        name: "checkpoint",
        value: "path of the checkpoint file (safetensors), a string",
        default: "next to the model",
        apply: |cx, e, d| {
            if let Some(Val::Str(s)) = cx.value("checkpoint", Ty::Str, e) {
                d.checkpoint = Some(s);
            }
        },
    },
    Key {
        name: "missing",
        value: "`error` or `drop`: what loading does with examples holding NaN or infinite values",
        default: "error",
        apply: |cx, e, d| cx.named("missing", &MISSINGS, e, &mut d.missing),
    },
];

// ---- checking -------------------------------------------------------------

/// The configuration under construction: [`TrainConfig`] with `data` not yet known.
struct Draft {
    data: Option<DataSource>,
    data_span: Span,
    split: Split,
    normalize: Normalize,
    batch: usize,
    epochs: usize,
    optimizer: Optimizer,
    schedule: Schedule,
    clip_grad_norm: Option<f64>,
    early_stop: Option<EarlyStop>,
    metrics: Vec<Metric>,
    seed: u64,
    checkpoint: Option<String>,
    missing: Missing,
}

impl Draft {
    fn new() -> Draft {
        Draft {
            data: None,
            data_span: Span::default(),
            split: Split::by_source(0.8),
            normalize: Normalize::None,
            batch: 32,
            epochs: 10,
            optimizer: Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stop: None,
            metrics: vec![],
            seed: 0,
            checkpoint: None,
            missing: Missing::Error,
        }
    }

    fn finish(self) -> Option<TrainConfig> {
        Some(TrainConfig {
            data: self.data?,
            data_span: self.data_span,
            split: self.split,
            normalize: self.normalize,
            batch: self.batch,
            epochs: self.epochs,
            optimizer: self.optimizer,
            schedule: self.schedule,
            clip_grad_norm: self.clip_grad_norm,
            early_stop: self.early_stop,
            metrics: self.metrics,
            seed: self.seed,
            checkpoint: self.checkpoint,
            missing: self.missing,
        })
    }
}

/// Checks a `train` section. Returns the config if the section has no
/// errors, and every diagnostic found. Never panics.
pub fn check_train(def: &ast::TrainDef, source: &str) -> (Option<TrainConfig>, Vec<Diagnostic>) {
    let mut cx = Checker { diags: vec![] };
    let mut draft = Draft::new();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for entry in &def.entries {
        let name = entry.key.name.as_str();
        let Some(key) = KEYS.iter().find(|k| k.name == name) else {
            cx.unknown_key(&entry.key);
            continue;
        };
        if let Some(first) = seen.get(name) {
            cx.diags.push(
                Diagnostic::error(format!("`{name}` is set twice"))
                    .primary(entry.key.span, "set again here")
                    .secondary(*first, "first set here"),
            );
        } else {
            seen.insert(name, entry.key.span);
        }
        if name == "data" {
            draft.data_span = entry.span;
        }
        (key.apply)(&mut cx, &entry.value, &mut draft);
    }
    if !seen.contains_key("data") {
        cx.diags.push(
            Diagnostic::error("the `train` section has no `data`")
                .primary(keyword_span(def.span, source), "missing `data = ...`")
                .note("help: add e.g. `data = dataset(\"digits\")` or `data = synthetic.sine(n: 1024)`"),
        );
    }
    let config = if cx.diags.iter().any(Diagnostic::is_error) { None } else { draft.finish() };
    (config, cx.diags)
}

/// The span of the `train` keyword that starts `span` (or all of `span`).
fn keyword_span(span: Span, source: &str) -> Span {
    let lo = span.lo as usize;
    match source.get(lo..lo + 5) {
        Some("train") => Span::new(lo, lo + 5),
        _ => span,
    }
}

/// The folded value of a constant numeric expression.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(x) => x,
        }
    }
}

enum Fold {
    /// Not a numeric expression.
    NotNumber,
    /// A numeric expression that cannot be folded (overflow, division by zero).
    Invalid(Diagnostic),
}

/// Deeper arithmetic than this is rejected rather than folded.
const MAX_DEPTH: usize = 64;

fn fold(expr: &Expr, depth: usize) -> Result<Num, Fold> {
    if depth > MAX_DEPTH {
        return Err(Fold::Invalid(
            Diagnostic::error("constant expression is too deeply nested")
                .primary(expr.span, "too deeply nested"),
        ));
    }
    let overflow = || {
        Fold::Invalid(
            Diagnostic::error("integer overflow in constant expression").primary(expr.span, "overflows"),
        )
    };
    match &expr.kind {
        ExprKind::Int(n) => Ok(Num::Int(*n)),
        ExprKind::Float(x) => Ok(Num::Float(*x)),
        ExprKind::Neg(inner) => match fold(inner, depth + 1)? {
            Num::Int(n) => n.checked_neg().map(Num::Int).ok_or_else(overflow),
            Num::Float(x) => Ok(Num::Float(-x)),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (fold(lhs, depth + 1)?, fold(rhs, depth + 1)?);
            if *op == BinOp::Div && b.as_f64() == 0.0 {
                return Err(Fold::Invalid(
                    Diagnostic::error("division by zero in constant expression")
                        .primary(rhs.span, "this is zero"),
                ));
            }
            match (a, b) {
                (Num::Int(a), Num::Int(b)) => {
                    let r = match op {
                        BinOp::Add => a.checked_add(b),
                        BinOp::Sub => a.checked_sub(b),
                        BinOp::Mul => a.checked_mul(b),
                        BinOp::Div if a.checked_rem(b) == Some(0) => a.checked_div(b),
                        BinOp::Div => return Ok(Num::Float(a as f64 / b as f64)),
                    };
                    r.map(Num::Int).ok_or_else(overflow)
                }
                (a, b) => {
                    let (a, b) = (a.as_f64(), b.as_f64());
                    Ok(Num::Float(match op {
                        BinOp::Add => a + b,
                        BinOp::Sub => a - b,
                        BinOp::Mul => a * b,
                        BinOp::Div => a / b,
                    }))
                }
            }
        }
        _ => Err(Fold::NotNumber),
    }
}

/// What an expression is, for "found X" messages.
fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(s) => format!("a string ({s:?})"),
        ExprKind::Bool(b) => format!("a boolean (`{b}`)"),
        ExprKind::Path(p) => format!("the name `{}`", p.text()),
        ExprKind::List(_) => "a list".into(),
        ExprKind::Call { callee, .. } => format!("a call to `{}`", callee.text()),
        ExprKind::Pipe { .. } => "a pipeline".into(),
        _ => match fold(expr, 0) {
            Ok(Num::Int(n)) => format!("an integer (`{n}`)"),
            Ok(Num::Float(x)) => format!("a float (`{x}`)"),
            Err(_) => "an expression".into(),
        },
    }
}

/// Collects the diagnostics of one section.
struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn unknown_key(&mut self, key: &ast::Ident) {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut d = Diagnostic::error(format!("unknown key `{}` in the `train` section", key.name))
            .primary(key.span, "unknown key")
            .note(format!("valid keys: {}", names_list(&names)));
        if let Some(help) = did_you_mean(&key.name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d);
    }

    fn wrong_type(&mut self, name: &str, expected: &str, expr: &Expr) {
        let mut d = Diagnostic::error(format!("`{name}` must be {expected}, found {}", describe(expr)))
            .primary(expr.span, format!("expected {expected}"));
        if let (true, ExprKind::Path(p)) = (expected.contains("string"), &expr.kind) {
            d = d.note(format!("help: strings are written in double quotes: \"{}\"", p.text()));
        }
        self.diags.push(d);
    }

    fn out_of_range(&mut self, name: &str, expected: &str, found: String, span: Span) {
        self.diags.push(
            Diagnostic::error(format!("`{name}` must be {expected}, found {found}"))
                .primary(span, format!("must be {expected}")),
        );
    }

    /// Checks `expr` as a value of type `ty` for the key or parameter `name`.
    fn value(&mut self, name: &str, ty: Ty, expr: &Expr) -> Option<Val> {
        let expected = ty.expected();
        match ty {
            Ty::Int { min, max } => match self.fold(name, &expected, expr)? {
                Num::Int(n) if n < min => {
                    self.out_of_range(name, &expected, n.to_string(), expr.span);
                    None
                }
                Num::Int(n) if n > max => {
                    self.diags.push(
                        Diagnostic::error(format!("`{name}` is too large: {n} (at most {max})"))
                            .primary(expr.span, format!("at most {max}")),
                    );
                    None
                }
                Num::Int(n) => Some(Val::Int(n)),
                Num::Float(_) => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
            Ty::Float(range) => {
                let x = self.fold(name, &expected, expr)?.as_f64();
                let ok = match range {
                    _ if !x.is_finite() => false,
                    FloatRange::Any => true,
                    FloatRange::Positive => x > 0.0,
                    FloatRange::NonNegative => x >= 0.0,
                    FloatRange::Open01 => x > 0.0 && x < 1.0,
                    FloatRange::Prob => (0.0..1.0).contains(&x),
                };
                if ok {
                    return Some(Val::Float(x));
                }
                let expected = if x.is_finite() { expected } else { format!("finite ({expected})") };
                self.out_of_range(name, &expected, format!("{x}"), expr.span);
                None
            }
            Ty::Bool => match expr.kind {
                ExprKind::Bool(b) => Some(Val::Bool(b)),
                _ => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
            Ty::Str => self.string(name, expr).map(Val::Str),
            Ty::Strs => match &expr.kind {
                ExprKind::List(items) if items.is_empty() => {
                    self.diags.push(
                        Diagnostic::error(format!("`{name}` must not be an empty list"))
                            .primary(expr.span, "empty list"),
                    );
                    None
                }
                ExprKind::List(items) => {
                    let strings: Vec<Option<String>> = items.iter().map(|e| self.string(name, e)).collect();
                    strings.into_iter().collect::<Option<Vec<_>>>().map(Val::Strs)
                }
                ExprKind::Str(_) => self.string(name, expr).map(|s| Val::Strs(vec![s])),
                _ => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
        }
    }

    /// Folds a numeric expression, reporting why it is not one.
    fn fold(&mut self, name: &str, expected: &str, expr: &Expr) -> Option<Num> {
        match fold(expr, 0) {
            Ok(n) => Some(n),
            Err(Fold::NotNumber) => {
                self.wrong_type(name, expected, expr);
                None
            }
            Err(Fold::Invalid(d)) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn string(&mut self, name: &str, expr: &Expr) -> Option<String> {
        match &expr.kind {
            ExprKind::Str(s) if s.is_empty() => {
                self.diags.push(
                    Diagnostic::error(format!("`{name}` must not be empty"))
                        .primary(expr.span, "empty string"),
                );
                None
            }
            ExprKind::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(name, "a string", expr);
                None
            }
        }
    }

    /// Checks a numeric key; stores it in `out` and returns true if valid.
    fn number<T: FromVal>(&mut self, name: &str, ty: Ty, expr: &Expr, out: &mut T) -> bool {
        match self.value(name, ty, expr).and_then(T::from_val) {
            Some(v) => {
                *out = v;
                true
            }
            None => false,
        }
    }

    fn size(&mut self, name: &str, expr: &Expr, out: &mut usize) {
        self.number(name, SIZE, expr, out);
    }

    /// Checks a key whose value is a row of `table`; stores it in `out`.
    fn named<T>(&mut self, key: &str, table: &Table<T>, expr: &Expr, out: &mut T) {
        if let Some(v) = self.call(key, table, expr) {
            *out = v;
        }
    }

    /// Resolves `expr` (a name or a call) in `table` and binds its arguments.
    fn call<T>(&mut self, key: &str, table: &Table<T>, expr: &Expr) -> Option<T> {
        let (callee, args) = match &expr.kind {
            ExprKind::Path(p) => (p, &[][..]),
            ExprKind::Call { callee, args } => (callee, &args[..]),
            _ => {
                self.wrong_type(key, table.expected, expr);
                return None;
            }
        };
        let name = callee.text();
        match table.rows.iter().find(|r| format!("{}{}", table.prefix, r.name) == name) {
            Some(row) => self.bind(row, table.prefix, callee, args, expr.span),
            None => {
                self.unknown(table, &name, callee.span);
                None
            }
        }
    }

    fn unknown<T>(&mut self, table: &Table<T>, name: &str, span: Span) {
        let names = table.names();
        let mut d = Diagnostic::error(format!("unknown {} `{name}`", table.what))
            .primary(span, format!("unknown {}", table.what))
            .note(format!("valid {}s: {}", table.what, names_list(&names)));
        if let Some(help) = did_you_mean(name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d);
    }

    /// Matches `args` to the parameters of `row` (positional first, then by
    /// name), checks every value, applies defaults, and builds the value.
    fn bind<T>(
        &mut self,
        row: &Callable<T>,
        prefix: &str,
        callee: &ast::Path,
        args: &[ast::Arg],
        call_span: Span,
    ) -> Option<T> {
        let name = format!("{prefix}{}", row.name);
        let params = row.params;
        let names: Vec<&str> = params.iter().map(|p| p.name).collect();
        let positional: Vec<usize> = (0..params.len()).filter(|&i| params[i].positional).collect();
        // Per parameter: the span of the argument that gave it, and its checked value.
        let mut given: Vec<Option<(Span, Option<Val>)>> = vec![None; params.len()];
        let mut ok = true;
        let mut first_keyword: Option<Span> = None;
        let mut n_positional = 0;
        for arg in args {
            let index = match &arg.name {
                None => {
                    if let Some(kw) = first_keyword {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "positional argument after a keyword argument in `{name}`"
                            ))
                            .primary(arg.span, "positional argument")
                            .secondary(kw, "keyword argument before it")
                            .note("positional arguments come first, then `name: value` arguments"),
                        );
                        // Still bound by position, so that its parameter is not also missing.
                        ok = false;
                    }
                    n_positional += 1;
                    match positional.get(n_positional - 1) {
                        Some(&i) => i,
                        None => {
                            self.too_many_positional(&name, params, &positional, arg.span);
                            ok = false;
                            continue;
                        }
                    }
                }
                Some(id) => {
                    first_keyword.get_or_insert(arg.span);
                    match names.iter().position(|n| *n == id.name) {
                        Some(i) => i,
                        None => {
                            self.unknown_argument(&name, id, &names);
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            if let Some((first, _)) = &given[index] {
                self.diags.push(
                    Diagnostic::error(format!(
                        "argument `{}` of `{name}` is given twice",
                        params[index].name
                    ))
                    .primary(arg.span, "given again here")
                    .secondary(*first, "first given here"),
                );
                ok = false;
                continue;
            }
            let value = self.value(params[index].name, params[index].ty, &arg.value);
            ok &= value.is_some();
            given[index] = Some((arg.span, value));
        }
        let mut values = vec![];
        for (p, g) in params.iter().zip(&given) {
            let value = match (g, p.default) {
                (Some((_, v)), _) => v.clone(),
                (None, Dflt::Required) => {
                    let how = if p.positional {
                        format!("`{name}({})` or `{name}({}: ...)`", p.name.to_uppercase(), p.name)
                    } else {
                        format!("`{name}({}: ...)`", p.name)
                    };
                    self.diags.push(
                        Diagnostic::error(format!("`{name}` is missing its argument `{}`", p.name))
                            .primary(callee.span, format!("missing `{}`", p.name))
                            .note(format!("help: write {how}")),
                    );
                    None
                }
                (None, Dflt::Int(n)) => Some(Val::Int(n)),
                (None, Dflt::Float(x)) => Some(Val::Float(x)),
                (None, Dflt::Bool(b)) => Some(Val::Bool(b)),
                (None, Dflt::Str(t)) => Some(Val::Str(t.to_string())),
            };
            ok &= value.is_some();
            values.extend(value);
        }
        if !ok {
            return None;
        }
        match (row.build)(&Args { params, values }) {
            Ok(v) => Some(v),
            Err(inv) => {
                let span = names
                    .iter()
                    .position(|n| *n == inv.param)
                    .and_then(|i| given[i].as_ref())
                    .map_or(call_span, |(s, _)| *s);
                let mut d = Diagnostic::error(inv.message).primary(span, inv.label);
                for note in inv.notes {
                    d = d.note(note);
                }
                self.diags.push(d);
                None
            }
        }
    }

    fn too_many_positional(&mut self, name: &str, params: &[Param], positional: &[usize], span: Span) {
        let listed: Vec<&str> = positional.iter().map(|&i| params[i].name).collect();
        let takes = match listed.len() {
            0 => "no positional arguments".to_string(),
            1 => format!("1 positional argument ({})", names_list(&listed)),
            n => format!("{n} positional arguments ({})", names_list(&listed)),
        };
        let mut d = Diagnostic::error(format!("too many positional arguments for `{name}`"))
            .primary(span, "unexpected positional argument")
            .note(format!("`{name}` takes {takes}"));
        let keyword: Vec<&str> = params.iter().filter(|p| !p.positional).map(|p| p.name).collect();
        if !keyword.is_empty() {
            d = d.note(format!("give the others by name: {}", names_list(&keyword)));
        }
        self.diags.push(d);
    }

    fn unknown_argument(&mut self, name: &str, id: &ast::Ident, names: &[&str]) {
        let valid = if names.is_empty() { "none".to_string() } else { names_list(names) };
        let mut d = Diagnostic::error(format!("unknown argument `{}` for `{name}`", id.name))
            .primary(id.span, "unknown argument")
            .note(format!("valid arguments: {valid}"));
        if let Some(help) = did_you_mean(&id.name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d);
    }

    /// Checks the `data` key: `synthetic.NAME(...)` or a row of [`SOURCES`].
    fn data(&mut self, expr: &Expr) -> Option<DataSource> {
        let callee = match &expr.kind {
            ExprKind::Path(p) | ExprKind::Call { callee: p, .. } => p,
            _ => {
                self.wrong_type("data", SOURCES.expected, expr);
                return None;
            }
        };
        match &callee.segments[..] {
            [first, generator] if first.name == "synthetic" => {
                if !GENERATORS.rows.iter().any(|r| r.name == generator.name) {
                    self.unknown(&GENERATORS, &generator.name, generator.span);
                    return None;
                }
                self.call("data", &GENERATORS, expr)
            }
            [_] if SOURCES.rows.iter().any(|r| r.name == callee.text()) => self.call("data", &SOURCES, expr),
            _ => {
                let mut names = SOURCES.names();
                names.push("synthetic");
                let mut d = Diagnostic::error(format!("unknown data source `{}`", callee.text()))
                    .primary(callee.span, "unknown data source")
                    .note(format!(
                        "valid data sources: {}, `synthetic.NAME(...)`",
                        names_list(&SOURCES.names())
                    ));
                let first = callee.segments.first().map_or("", |s| s.name.as_str());
                if let Some(help) = did_you_mean(first, names.iter().copied()) {
                    d = d.note(help);
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// Checks the `split` key: a fraction (the source's own rule) or a row
    /// of [`SPLITS`] such as `chronological(0.8)`.
    fn split(&mut self, expr: &Expr) -> Option<Split> {
        let callee = match &expr.kind {
            ExprKind::Path(p) | ExprKind::Call { callee: p, .. } => p,
            _ => {
                let mut fraction = 0.0;
                let ok = self.number("split", Ty::Float(FloatRange::Open01), expr, &mut fraction);
                return ok.then(|| Split::by_source(fraction));
            }
        };
        let name = callee.text();
        if SPLITS.rows.iter().any(|r| r.name == name) {
            return self.call("split", &SPLITS, expr);
        }
        let names = SPLITS.names();
        let mut d = Diagnostic::error(format!("unknown split rule `{name}`"))
            .primary(callee.span, "unknown split rule")
            .note(format!("valid split rules: {}", names_list(&names)));
        if let Some(help) = did_you_mean(&name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d.note(
            "help: `split = 0.8` takes the source's own order; `split = chronological(0.8)` trains on the \
             first 80 % of the examples and validates on the last 20 %",
        ));
        None
    }

    /// Checks the `metrics` key: a list of rows of [`METRICS`], each at most once.
    fn metrics(&mut self, expr: &Expr) -> Vec<Metric> {
        let ExprKind::List(items) = &expr.kind else {
            self.wrong_type("metrics", "a list of metrics such as `[rmse, mae]`", expr);
            return vec![];
        };
        let mut out = vec![];
        let mut seen: Vec<(Metric, Span)> = vec![];
        for item in items {
            let Some(m) = self.call("metrics", &METRICS, item) else { continue };
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == m) {
                self.diags.push(
                    Diagnostic::error(format!("metric `{}` is listed twice", m.name()))
                        .primary(item.span, "listed again here")
                        .secondary(*first, "first listed here"),
                );
                continue;
            }
            seen.push((m, item.span));
            out.push(m);
        }
        out
    }
}

/// Conversion of a checked value to a config field's type.
trait FromVal: Sized {
    fn from_val(v: Val) -> Option<Self>;
}

impl FromVal for f64 {
    fn from_val(v: Val) -> Option<f64> {
        match v {
            Val::Float(x) => Some(x),
            Val::Int(n) => Some(n as f64),
            _ => None,
        }
    }
}

impl FromVal for usize {
    fn from_val(v: Val) -> Option<usize> {
        match v {
            Val::Int(n) => usize::try_from(n).ok(),
            _ => None,
        }
    }
}

impl FromVal for i64 {
    fn from_val(v: Val) -> Option<i64> {
        match v {
            Val::Int(n) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::render_plain;

    /// Parses `src` (which must be free of syntax errors) and checks its `train` section.
    fn run(src: &str) -> (Option<TrainConfig>, Vec<Diagnostic>) {
        let (file, errors) = crate::syntax::parse(src);
        assert!(errors.is_empty(), "syntax errors:\n{}", render_plain("t.nn", src, &errors));
        let def = file
            .items
            .iter()
            .find_map(|i| match i {
                ast::Item::Train(t) => Some(t),
                _ => None,
            })
            .expect("a train section");
        check_train(def, src)
    }

    fn section(body: &str) -> String {
        format!("train {{\n{body}\n}}\n")
    }

    /// The config of a section with `data = synthetic.sine` and `body`.
    fn config(body: &str) -> TrainConfig {
        let src = section(&format!("data = synthetic.sine\n{body}"));
        let (config, diags) = run(&src);
        assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
        config.expect("a config")
    }

    /// The diagnostics of a section with `body` (and `data = synthetic.sine`
    /// unless `body` sets `data`).
    fn errors(body: &str) -> (String, Vec<Diagnostic>) {
        let data = if body.starts_with("data =") { "" } else { "data = synthetic.sine\n" };
        let src = section(&format!("{data}{body}"));
        let (config, diags) = run(&src);
        assert!(config.is_none(), "no config expected with errors");
        (src, diags)
    }

    fn text(src: &str, span: Span) -> &str {
        &src[span.range()]
    }

    /// The span of the first occurrence of `text` in `src`.
    fn span_of(src: &str, text: &str) -> Span {
        let lo = src.find(text).unwrap_or_else(|| panic!("{text:?} not in {src:?}"));
        Span::new(lo, lo + text.len())
    }

    /// The diagnostic whose message contains `message`, with its primary
    /// label on the text `primary`.
    fn expect<'d>(src: &str, diags: &'d [Diagnostic], message: &str, primary: &str) -> &'d Diagnostic {
        let rendered = render_plain("t.nn", src, diags);
        let d = diags
            .iter()
            .find(|d| d.message.contains(message))
            .unwrap_or_else(|| panic!("no diagnostic containing {message:?}:\n{rendered}"));
        let label = d.labels.iter().find(|l| l.primary).expect("a primary label");
        assert_eq!(text(src, label.span), primary, "primary label of {message:?}:\n{rendered}");
        d
    }

    /// Asserts exactly one error, with `message` and its primary label on `primary`.
    fn single(body: &str, message: &str, primary: &str) -> Diagnostic {
        let (src, diags) = errors(body);
        assert_eq!(diags.len(), 1, "{}", render_plain("t.nn", &src, &diags));
        assert_eq!(diags[0].message, message);
        expect(&src, &diags, message, primary).clone()
    }

    fn noted(d: &Diagnostic, note: &str) {
        assert!(d.notes.iter().any(|n| n.contains(note)), "no note {note:?}: {d:#?}");
    }

    fn secondary(src: &str, d: &Diagnostic, on: &str, message: &str) {
        assert!(
            d.labels.iter().any(|l| !l.primary && text(src, l.span) == on && l.message.contains(message)),
            "no secondary label {message:?} on {on:?}: {d:#?}"
        );
    }

    fn adam(lr: f64) -> Optimizer {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }

    // ---- the example programs of LANGUAGE.md ------------------------------

    #[test]
    fn example_sine() {
        let src = "train {\n  data = synthetic.sine(n: 2048, noise: 0.0)\n  batch = 64\n  epochs = 200\n  \
                   optimizer = adam(lr: 3e-3)\n  seed = 1\n}\n";
        let (config, diags) = run(src);
        assert!(diags.is_empty(), "{diags:#?}");
        let expected = TrainConfig {
            data: DataSource::Synthetic { generator: Generator::Sine { n: 2048, noise: 0.0 } },
            data_span: span_of(src, "data = synthetic.sine(n: 2048, noise: 0.0)"),
            split: Split::by_source(0.8),
            normalize: Normalize::None,
            batch: 64,
            epochs: 200,
            optimizer: adam(3e-3),
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stop: None,
            metrics: vec![],
            seed: 1,
            checkpoint: None,
            missing: Missing::Error,
        };
        assert_eq!(config, Some(expected));
    }

    #[test]
    fn example_digits() {
        let src = "train {\n  data = dataset(\"digits\")\n  normalize = per_variable\n  batch = 32\n  \
                   epochs = 40\n  optimizer = sgd(lr: 0.05, momentum: 0.9)\n  metrics = [accuracy]\n}\n";
        let (config, diags) = run(src);
        assert!(diags.is_empty(), "{diags:#?}");
        let expected = TrainConfig {
            data: DataSource::Dataset { name: "digits".into(), task: None },
            data_span: span_of(src, "data = dataset(\"digits\")"),
            split: Split::by_source(0.8),
            normalize: Normalize::PerVariable,
            batch: 32,
            epochs: 40,
            optimizer: Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 0.0 },
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stop: None,
            metrics: vec![Metric::Accuracy],
            seed: 0,
            checkpoint: None,
            missing: Missing::Error,
        };
        assert_eq!(config, Some(expected));
    }

    #[test]
    fn example_eddies() {
        let src = "train {\n  data = synthetic.eddies(n: 512, size: 32)\n  batch = 16\n  epochs = 5\n  \
                   optimizer = adam(lr: 1e-3)\n  metrics = [dice, accuracy]\n}\n";
        let (config, diags) = run(src);
        assert!(diags.is_empty(), "{diags:#?}");
        let expected = TrainConfig {
            data: DataSource::Synthetic { generator: Generator::Eddies { n: 512, size: 32 } },
            data_span: span_of(src, "data = synthetic.eddies(n: 512, size: 32)"),
            split: Split::by_source(0.8),
            normalize: Normalize::None,
            batch: 16,
            epochs: 5,
            optimizer: adam(1e-3),
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stop: None,
            metrics: vec![Metric::Dice, Metric::Accuracy],
            seed: 0,
            checkpoint: None,
            missing: Missing::Error,
        };
        assert_eq!(config, Some(expected));
    }

    // ---- accepted values --------------------------------------------------

    #[test]
    fn defaults() {
        let c = config("");
        assert_eq!(c.data, DataSource::Synthetic { generator: Generator::Sine { n: 1024, noise: 0.0 } });
        assert_eq!((c.split, c.batch, c.epochs, c.seed), (Split::by_source(0.8), 32, 10, 0));
        assert_eq!(c.optimizer, adam(1e-3));
        assert_eq!((c.schedule, c.normalize), (Schedule::Constant, Normalize::None));
        assert_eq!((c.clip_grad_norm, c.early_stop, c.checkpoint), (None, None, None));
        assert_eq!(c.missing, Missing::Error);
    }

    #[test]
    fn missing_values_rule() {
        for (text, expected) in [
            ("missing = error", Missing::Error),
            ("missing = drop", Missing::Drop),
            ("missing = mask", Missing::Mask),
        ] {
            assert_eq!(config(text).missing, expected, "{text}");
        }
        let d = single("missing = skip", "unknown missing-value rule `skip`", "skip");
        noted(&d, "valid missing-value rules: `error`, `drop`");
        single(
            "missing = \"drop\"",
            "`missing` must be `error` or `drop`, found a string (\"drop\")",
            "\"drop\"",
        );
    }

    #[test]
    fn split_rules() {
        assert_eq!(config("split = 0.7").split, Split { fraction: 0.7, rule: SplitRule::Source });
        assert_eq!(
            config("split = chronological(0.8)").split,
            Split { fraction: 0.8, rule: SplitRule::Chronological }
        );
        assert_eq!(
            config("split = chronological(fraction: 3 / 4)").split,
            Split { fraction: 0.75, rule: SplitRule::Chronological }
        );
        // Printed as written: configurations printed with `{:?}` show `0.8`.
        assert_eq!(format!("{:?}", Split::by_source(0.8)), "0.8");
        assert_eq!(Split::from(0.8), Split::by_source(0.8));
        assert_eq!(config("split = chronological(0.9)").split.to_string(), "chronological(0.9)");
    }

    #[test]
    fn bad_split_rules() {
        single("split = chronological(1.5)", "`fraction` must be a number in (0, 1), found 1.5", "1.5");
        single("split = chronological(0)", "`fraction` must be a number in (0, 1), found 0", "0");
        let d = single(
            "split = chronological()",
            "`chronological` is missing its argument `fraction`",
            "chronological",
        );
        noted(&d, "help: write `chronological(FRACTION)` or `chronological(fraction: ...)`");
        single(
            "split = chronological",
            "`chronological` is missing its argument `fraction`",
            "chronological",
        );
        let d = single("split = random(0.8)", "unknown split rule `random`", "random");
        noted(&d, "valid split rules: `chronological`");
        noted(&d, "`split = 0.8` takes the source's own order");
        let d = single("split = chronologcal(0.8)", "unknown split rule `chronologcal`", "chronologcal");
        noted(&d, "help: did you mean `chronological`?");
        single("split = chronological(0.8, 0.1)", "too many positional arguments for `chronological`", "0.1");
        let (src, diags) = errors("split = chronological(size: 0.8)");
        expect(&src, &diags, "unknown argument `size` for `chronological`", "size");
        single(
            "split = chronological(\"0.8\")",
            "`fraction` must be a number in (0, 1), found a string (\"0.8\")",
            "\"0.8\"",
        );
        single("split = \"0.8\"", "`split` must be a number in (0, 1), found a string (\"0.8\")", "\"0.8\"");
    }

    #[test]
    fn the_data_entry_keeps_its_span() {
        let src =
            section("batch = 4\n  data = csv(\"obs.csv\", x: [\"a\"], y: \"t\")  # the file\nepochs = 2");
        let (config, diags) = run(&src);
        assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
        let config = config.expect("a config");
        assert_eq!(text(&src, config.data_span), "data = csv(\"obs.csv\", x: [\"a\"], y: \"t\")");
    }

    #[test]
    fn optimizers_with_defaults() {
        assert_eq!(config("optimizer = adam(3e-3)").optimizer, adam(3e-3));
        assert_eq!(
            config("optimizer = adamw(1e-3)").optimizer,
            Optimizer::AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
        );
        assert_eq!(
            config("optimizer = rmsprop(lr: 0.01, momentum: 0.5)").optimizer,
            Optimizer::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.5, weight_decay: 0.0 }
        );
        assert_eq!(
            config("optimizer = sgd(0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4)").optimizer,
            Optimizer::Sgd { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4 }
        );
    }

    #[test]
    fn constant_arithmetic_and_ints_as_floats() {
        let c = config("optimizer = adam(lr: 1e-3 * 2)\nseed = 2 + 3\nsplit = 1 - 0.25\nclip_grad_norm = 1");
        assert_eq!(c.optimizer.lr(), 2e-3);
        assert_eq!((c.seed, c.split, c.clip_grad_norm), (5, Split::by_source(0.75), Some(1.0)));
        assert_eq!(config("metrics = [csi(-(1 + 1) / 4)]").metrics, vec![Metric::Csi(-0.5)]);
        assert_eq!(config("batch = 128 / 2").batch, 64);
    }

    #[test]
    fn schedules_metrics_and_early_stop() {
        assert_eq!(config("schedule = step(10)").schedule, Schedule::Step { every: 10, gamma: 0.1 });
        assert_eq!(config("schedule = step(5, 0.5)").schedule, Schedule::Step { every: 5, gamma: 0.5 });
        assert_eq!(config("schedule = cosine(warmup: 2)").schedule, Schedule::Cosine { warmup: 2 });
        assert_eq!(config("schedule = cosine").schedule, Schedule::Cosine { warmup: 0 });
        assert_eq!(config("schedule = exponential(0.95)").schedule, Schedule::Exponential { gamma: 0.95 });
        assert_eq!(
            config("metrics = [rmse, mae, csi(1.0), pod(threshold: 0.5), far(2), hss(0.1), dice]").metrics,
            vec![
                Metric::Rmse { per_variable: false },
                Metric::Mae { per_variable: false },
                Metric::Csi(1.0),
                Metric::Pod(0.5),
                Metric::Far(2.0),
                Metric::Hss(0.1),
                Metric::Dice
            ]
        );
        assert_eq!(config("metrics = []").metrics, vec![]);
        assert_eq!(
            config("metrics = [rmse(per_variable: true), mae(per_variable: false)]").metrics,
            vec![Metric::Rmse { per_variable: true }, Metric::Mae { per_variable: false }]
        );
    }

    #[test]
    fn data_sources() {
        let c = config("early_stop = patience(5, min_delta: 1e-4)\ncheckpoint = \"out/m.safetensors\"");
        assert_eq!(c.early_stop, Some(EarlyStop { patience: 5, min_delta: 1e-4 }));
        assert_eq!(c.checkpoint.as_deref(), Some("out/m.safetensors"));
        let data = |body: &str| {
            let src = section(body);
            let (config, diags) = run(&src);
            assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
            config.expect("a config").data
        };
        assert_eq!(
            data("data = csv(\"w.csv\", x: [\"a\", \"b\"], y: \"c\")"),
            DataSource::Csv { path: "w.csv".into(), x: vec!["a".into(), "b".into()], y: vec!["c".into()] }
        );
        assert_eq!(
            data("data = npy(x: \"x.npy\", y: \"y.npy\")"),
            DataSource::Npy { x: "x.npy".into(), y: "y.npy".into() }
        );
        assert_eq!(
            data("data = npz(\"d.npz\", x: \"inputs\", y: \"labels\")"),
            DataSource::Npz { path: "d.npz".into(), x: "inputs".into(), y: "labels".into() }
        );
        assert_eq!(
            data("data = synthetic.lorenz96(k: 8)"),
            DataSource::Synthetic {
                generator: Generator::Lorenz96 { n: 2048, k: 8, forcing: 8.0, dt: 0.05 }
            }
        );
        assert_eq!(
            data("data = synthetic.advection()"),
            DataSource::Synthetic { generator: Generator::Advection { n: 256, size: 32, steps: 4 } }
        );
        for d in DATASETS {
            assert_eq!(
                data(&format!("data = dataset(\"{}\")", d.name)),
                DataSource::Dataset { name: d.name.into(), task: None }
            );
        }
    }

    // ---- errors -----------------------------------------------------------

    #[test]
    fn unknown_key() {
        let (src, diags) = errors("bacth = 64");
        let d = expect(&src, &diags, "unknown key `bacth` in the `train` section", "bacth");
        noted(d, "valid keys: `data`, `split`, `normalize`, `batch`, `epochs`, `optimizer`");
        noted(d, "help: did you mean `batch`?");
    }

    #[test]
    fn duplicate_key() {
        let (src, diags) = errors("batch = 16\nbatch = 32");
        let d = expect(&src, &diags, "`batch` is set twice", "batch");
        assert_eq!(d.labels[0].span.lo as usize, src.rfind("batch").unwrap());
        secondary(&src, d, "batch", "first set here");
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn wrong_value_type() {
        single("batch = \"64\"", "`batch` must be a positive integer, found a string (\"64\")", "\"64\"");
        single("epochs = 2.5", "`epochs` must be a positive integer, found a float (`2.5`)", "2.5");
        single("split = true", "`split` must be a number in (0, 1), found a boolean (`true`)", "true");
        single(
            "optimizer = 3",
            "`optimizer` must be an optimizer such as `adam(lr: 1e-3)`, found an integer (`3`)",
            "3",
        );
        single(
            "optimizer = sgd(lr: 0.1, nesterov: 1)",
            "`nesterov` must be `true` or `false`, found an integer (`1`)",
            "1",
        );
        single("checkpoint = out", "`checkpoint` must be a string, found the name `out`", "out");
        single(
            "metrics = accuracy",
            "`metrics` must be a list of metrics such as `[rmse, mae]`, found the name `accuracy`",
            "accuracy",
        );
        single("seed = x |> relu", "`seed` must be a non-negative integer, found a pipeline", "x |> relu");
    }

    #[test]
    fn string_expected_but_name_found() {
        let src = section("data = dataset(digits)");
        let (_, diags) = run(&src);
        let d = expect(&src, &diags, "`name` must be a string, found the name `digits`", "digits");
        noted(d, "help: strings are written in double quotes: \"digits\"");
    }

    #[test]
    fn out_of_range_sizes() {
        single("batch = 0", "`batch` must be a positive integer, found 0", "0");
        single("batch = -3", "`batch` must be a positive integer, found -3", "-3");
        single("epochs = 0", "`epochs` must be a positive integer, found 0", "0");
        single("seed = -1", "`seed` must be a non-negative integer, found -1", "-1");
        single("batch = 100000000", "`batch` is too large: 100000000 (at most 16777216)", "100000000");
        single("early_stop = patience(0)", "`n` must be a positive integer, found 0", "0");
        single("schedule = step(0)", "`every` must be a positive integer, found 0", "0");
    }

    #[test]
    fn out_of_range_fractions_and_rates() {
        single("split = 1.0", "`split` must be a number in (0, 1), found 1", "1.0");
        single("split = 0", "`split` must be a number in (0, 1), found 0", "0");
        single("optimizer = adam(lr: 0)", "`lr` must be a positive number, found 0", "0");
        single("optimizer = adam(-1e-3)", "`lr` must be a positive number, found -0.001", "-1e-3");
        single("optimizer = sgd(0.1, momentum: 1)", "`momentum` must be a number in [0, 1), found 1", "1");
        single("optimizer = adam(1e-3, beta2: 1.5)", "`beta2` must be a number in [0, 1), found 1.5", "1.5");
        single(
            "optimizer = adamw(1e-3, weight_decay: -0.1)",
            "`weight_decay` must be a non-negative number, found -0.1",
            "-0.1",
        );
        single("clip_grad_norm = 0", "`clip_grad_norm` must be a positive number, found 0", "0");
        single("data = synthetic.sine(noise: -1)", "`noise` must be a non-negative number, found -1", "-1");
        single("data = synthetic.lorenz96(k: 3)", "`k` must be an integer of at least 4, found 3", "3");
        single(
            "metrics = [csi(1e300 * 1e300)]",
            "`threshold` must be finite (a number), found inf",
            "1e300 * 1e300",
        );
    }

    #[test]
    fn unknown_optimizer() {
        let (src, diags) = errors("optimizer = adm(lr: 1e-3)");
        let d = expect(&src, &diags, "unknown optimizer `adm`", "adm");
        noted(d, "valid optimizers: `sgd`, `adam`, `adamw`, `rmsprop`");
        noted(d, "help: did you mean `adam`?");
    }

    #[test]
    fn unknown_optimizer_argument() {
        let (src, diags) = errors("optimizer = adam(lr: 1e-3, beta: 0.9)");
        let d = expect(&src, &diags, "unknown argument `beta` for `adam`", "beta");
        noted(d, "valid arguments: `lr`, `beta1`, `beta2`, `eps`, `weight_decay`");
        noted(d, "help: did you mean `beta1`?");
    }

    #[test]
    fn missing_lr() {
        let d = single("optimizer = adam(beta1: 0.5)", "`adam` is missing its argument `lr`", "adam");
        noted(&d, "help: write `adam(LR)` or `adam(lr: ...)`");
        single("optimizer = sgd", "`sgd` is missing its argument `lr`", "sgd");
    }

    #[test]
    fn duplicate_argument() {
        let (src, diags) = errors("optimizer = adam(1e-3, lr: 2e-3)");
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = expect(&src, &diags, "argument `lr` of `adam` is given twice", "lr: 2e-3");
        secondary(&src, d, "1e-3", "first given here");
    }

    #[test]
    fn positional_after_keyword() {
        // The parser rejects this order, so the AST is built from the
        // well-ordered call with its arguments swapped.
        let src = section("data = synthetic.sine\noptimizer = sgd(0.1, momentum: 0.9)");
        let (file, _) = crate::syntax::parse(&src);
        let Some(ast::Item::Train(mut def)) = file.items.into_iter().next() else {
            panic!("a train section")
        };
        let ExprKind::Call { args, .. } = &mut def.entries[1].value.kind else { panic!("a call") };
        args.swap(0, 1);
        let (config, diags) = check_train(&def, &src);
        assert!(config.is_none());
        assert_eq!(diags.len(), 1, "{diags:#?}");
        let d = expect(&src, &diags, "positional argument after a keyword argument in `sgd`", "0.1");
        secondary(&src, d, "momentum: 0.9", "keyword argument before it");
    }

    #[test]
    fn too_many_positional() {
        let d = single("optimizer = adam(1e-3, 0.9)", "too many positional arguments for `adam`", "0.9");
        noted(&d, "`adam` takes 1 positional argument (`lr`)");
        noted(&d, "give the others by name: `beta1`");
        let d =
            single("data = synthetic.sine(100)", "too many positional arguments for `synthetic.sine`", "100");
        noted(&d, "takes no positional arguments");
        single("normalize = none(1)", "too many positional arguments for `none`", "1");
    }

    #[test]
    fn unknown_schedule_metric_normalize() {
        let (src, diags) =
            errors("schedule = cosin(warmup: 2)\nmetrics = [rmes, csi(1)]\nnormalize = per_var");
        assert_eq!(diags.len(), 3, "{}", render_plain("t.nn", &src, &diags));
        noted(expect(&src, &diags, "unknown schedule `cosin`", "cosin"), "did you mean `cosine`?");
        noted(expect(&src, &diags, "unknown metric `rmes`", "rmes"), "did you mean `rmse`?");
        let d = expect(&src, &diags, "unknown normalization `per_var`", "per_var");
        noted(d, "valid normalizations: `none`, `per_variable`");
    }

    #[test]
    fn missing_threshold() {
        single("metrics = [csi]", "`csi` is missing its argument `threshold`", "csi");
    }

    #[test]
    fn missing_data() {
        let src = "# config\ntrain {\n  batch = 8\n}\n";
        let (config, diags) = run(src);
        assert!(config.is_none());
        assert_eq!(diags.len(), 1);
        let d = expect(src, &diags, "the `train` section has no `data`", "train");
        noted(d, "help: add e.g. `data = dataset(\"digits\")`");
    }

    #[test]
    fn unknown_sources() {
        let src = section("data = synthetic.sin(n: 10)");
        let (_, diags) = run(&src);
        let d = expect(&src, &diags, "unknown synthetic generator `sin`", "sin");
        noted(d, "valid synthetic generators: `sine`, `lorenz96`, `advection`, `eddies`");
        noted(d, "did you mean `sine`?");

        let src = section("data = dataset(\"digit\")");
        let (_, diags) = run(&src);
        let d = expect(&src, &diags, "unknown dataset `digit`", "\"digit\"");
        noted(d, "did you mean `digits`?");
        noted(d, "`mnist_5k`");

        let src = section("data = dataset(\"storm_jan1996\", task: \"increments\")");
        let (_, diags) = run(&src);
        let d =
            expect(&src, &diags, "dataset `storm_jan1996` has no task `increments`", "task: \"increments\"");
        noted(d, "the tasks of `storm_jan1996`: `default`, `increment`, `sequence`");
        noted(d, "did you mean `increment`?");
        let (config, diags) = run(&section("data = dataset(\"storm_jan1996\", task: \"sequence\")"));
        assert!(diags.is_empty(), "{diags:?}");
        let data = config.map(|c| c.data);
        assert_eq!(
            data,
            Some(DataSource::Dataset { name: "storm_jan1996".into(), task: Some("sequence".into()) })
        );

        let src = section("data = datset(\"digits\")");
        let (_, diags) = run(&src);
        noted(expect(&src, &diags, "unknown data source `datset`", "datset"), "did you mean `dataset`?");

        let src = section("data = 42");
        let (_, diags) = run(&src);
        expect(&src, &diags, "`data` must be a data source", "42");
        assert_eq!(diags.len(), 1, "`data` was given, so it is not also reported missing");
    }

    #[test]
    fn unknown_generator_argument() {
        let src = section("data = synthetic.sine(samples: 10)");
        let (_, diags) = run(&src);
        assert_eq!(diags.len(), 1);
        let d = expect(&src, &diags, "unknown argument `samples` for `synthetic.sine`", "samples");
        noted(d, "valid arguments: `n`, `noise`");
    }

    #[test]
    fn constant_expression_errors() {
        single("batch = 64 / 0", "division by zero in constant expression", "0");
        single(
            "seed = 9223372036854775807 + 1",
            "integer overflow in constant expression",
            "9223372036854775807 + 1",
        );
        single("split = 0.5 + x", "`split` must be a number in (0, 1), found an expression", "0.5 + x");
    }

    #[test]
    fn cross_argument_and_list_rules() {
        single(
            "optimizer = sgd(0.1, nesterov: true)",
            "Nesterov momentum needs `momentum` > 0",
            "nesterov: true",
        );
        let (src, diags) = errors("metrics = [rmse, mae, rmse]");
        let d = expect(&src, &diags, "metric `rmse` is listed twice", "rmse");
        assert_eq!(d.labels[0].span.lo as usize, src.rfind("rmse").unwrap());
        single("checkpoint = \"\"", "`checkpoint` must not be empty", "\"\"");
        let src = section("data = csv(\"a.csv\", x: [], y: 3)");
        let (_, diags) = run(&src);
        assert_eq!(diags.len(), 2, "{diags:#?}");
        expect(&src, &diags, "`x` must not be an empty list", "[]");
        expect(&src, &diags, "`y` must be a string or a list of strings, found an integer (`3`)", "3");
    }

    #[test]
    fn all_errors_in_one_pass() {
        let src = section(
            "batch = 0\nepochs = \"ten\"\nbacth = 3\noptimizer = adam(lr: 0, bta1: 0.9)\n\
             schedule = stp(10)\nmetrics = [rmse, csi]\nsplit = 2\nsplit = 0.5",
        );
        let (config, diags) = run(&src);
        assert!(config.is_none());
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`batch` must be a positive integer, found 0",
                "`epochs` must be a positive integer, found a string (\"ten\")",
                "unknown key `bacth` in the `train` section",
                "`lr` must be a positive number, found 0",
                "unknown argument `bta1` for `adam`",
                "unknown schedule `stp`",
                "`csi` is missing its argument `threshold`",
                "`split` must be a number in (0, 1), found 2",
                "`split` is set twice",
                "the `train` section has no `data`",
            ],
            "{}",
            render_plain("t.nn", &src, &diags)
        );
    }

    #[test]
    fn hand_built_ast() {
        let span = Span::new(0, 0);
        let ident = |name: &str| ast::Ident { name: name.into(), span };
        let expr = |kind| Expr { kind, span };
        let path = |names: &[&str]| ast::Path { segments: names.iter().map(|n| ident(n)).collect(), span };
        let entry = |key: &str, value| ast::TrainEntry { key: ident(key), value, span };
        let def = ast::TrainDef {
            entries: vec![
                entry("data", expr(ExprKind::Path(path(&["synthetic", "eddies"])))),
                entry(
                    "optimizer",
                    expr(ExprKind::Call {
                        callee: path(&["adam"]),
                        args: vec![ast::Arg {
                            name: None,
                            value: expr(ExprKind::Neg(Box::new(expr(ExprKind::Neg(Box::new(expr(
                                ExprKind::Float(0.01),
                            ))))))),
                            span,
                        }],
                    }),
                ),
            ],
            span,
        };
        let (config, diags) = check_train(&def, "");
        assert!(diags.is_empty(), "{diags:#?}");
        let config = config.expect("a config");
        assert_eq!(config.optimizer, adam(0.01));
        assert_eq!(config.data, DataSource::Synthetic { generator: Generator::Eddies { n: 512, size: 32 } });
    }

    #[test]
    fn deep_arithmetic_is_rejected_not_overflowed() {
        let mut e = Expr { kind: ExprKind::Int(1), span: Span::new(0, 1) };
        for _ in 0..10_000 {
            e = Expr {
                kind: ExprKind::Binary {
                    op: BinOp::Add,
                    lhs: Box::new(e),
                    rhs: Box::new(Expr { kind: ExprKind::Int(1), span: Span::new(0, 1) }),
                },
                span: Span::new(0, 1),
            };
        }
        let def = ast::TrainDef {
            entries: vec![ast::TrainEntry {
                key: ast::Ident { name: "seed".into(), span: Span::new(0, 1) },
                value: e,
                span: Span::new(0, 1),
            }],
            span: Span::new(0, 1),
        };
        let (_, diags) = check_train(&def, "s");
        assert!(diags.iter().any(|d| d.message.contains("too deeply nested")), "{diags:#?}");
        // Dropping a 10 000-deep tree recursively is fine on the test thread's stack.
    }

    /// Every table row builds from its defaults (plus a sample value for each
    /// required parameter): the rows name their parameters correctly.
    #[test]
    fn tables_are_consistent() {
        fn sample(p: &Param) -> Val {
            match (p.default, p.ty) {
                (Dflt::Int(n), _) => Val::Int(n),
                (Dflt::Float(x), _) => Val::Float(x),
                (Dflt::Bool(b), _) => Val::Bool(b),
                (Dflt::Str(t), _) => Val::Str(t.to_string()),
                (Dflt::Required, Ty::Int { min, .. }) => Val::Int(min.max(1)),
                (Dflt::Required, Ty::Float(_)) => Val::Float(0.5),
                (Dflt::Required, Ty::Bool) => Val::Bool(false),
                (Dflt::Required, Ty::Str) => Val::Str("digits".into()),
                (Dflt::Required, Ty::Strs) => Val::Strs(vec!["a".into()]),
            }
        }
        fn rows<T>(table: &Table<T>) {
            for row in table.rows {
                let values = row.params.iter().map(sample).collect();
                assert!((row.build)(&Args { params: row.params, values }).is_ok(), "{}", row.name);
                assert!(!row.signature(table.prefix).is_empty());
            }
        }
        rows(&OPTIMIZERS);
        rows(&SCHEDULES);
        rows(&METRICS);
        rows(&NORMALIZATIONS);
        rows(&EARLY_STOPS);
        rows(&SPLITS);
        rows(&SOURCES);
        rows(&MISSINGS);
        rows(&GENERATORS);
        for row in GENERATORS.rows {
            let values = row.params.iter().map(sample).collect();
            match (row.build)(&Args { params: row.params, values }) {
                Ok(DataSource::Synthetic { generator }) => assert_eq!(generator.name(), row.name),
                _ => panic!("{} builds no generator", row.name),
            }
        }
        assert_eq!(
            OPTIMIZERS.rows[1].signature(""),
            "adam(lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0)"
        );
        assert_eq!(GENERATORS.rows[0].signature("synthetic."), "synthetic.sine(n: 1024, noise: 0.0)");
        assert_eq!(KEYS.len(), 13);
    }

    proptest::proptest! {
        /// Any token soup inside a `train` section is checked without panicking.
        #[test]
        fn never_panics(tokens in proptest::collection::vec(proptest::sample::select(vec![
            "data", "=", "batch", "optimizer", "adam", "(", ")", "[", "]", ",", ":", "lr", "1e-3", "-", "*",
            "/", "0", "3", "2.5", "\"x\"", "true", "synthetic", ".", "sine", "n", "metrics", "csi", "split",
            "dataset", "\"digits\"", "sgd", "momentum", "seed", "+", "9223372036854775807", "1e999", "x",
        ]), 0..40)) {
            let src = format!("train {{\n{}\n}}\n", tokens.join(" "));
            let (file, _) = crate::syntax::parse(&src);
            for item in &file.items {
                if let ast::Item::Train(def) = item {
                    let _ = check_train(def, &src);
                }
            }
        }
    }
}
