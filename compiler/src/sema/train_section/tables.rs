//! The tables of the `train` section's callable values: one per kind —
//! [`OPTIMIZERS`], [`SCHEDULES`], [`METRICS`], [`NORMALIZATIONS`],
//! [`MISSINGS`], [`SPLITS`], [`EARLY_STOPS`], [`SOURCES`] and
//! [`GENERATORS`] — one row per value, its parameters in the schema every
//! call shares ([`Param`]), and how the checked arguments build the
//! configuration value. Bare names such as `constant` or `accuracy` are
//! calls without arguments.

use crate::config::datasets;
use crate::config::{
    DataSource, Distortion, EarlyStop, Generator, Metric, Missing, Normalize, Optimizer, Schedule, Split,
    SplitRule, Window,
};

use crate::sema::args::{Args, Default, MissingArgument, Param, Range, Ty};
use crate::suggest::{did_you_mean, names_list};

// ---- rows and tables --------------------------------------------------------

/// A problem found after the arguments were bound (a cross-argument rule or
/// a name looked up in another table); reported on argument `param`.
pub struct Invalid {
    pub param: &'static str,
    pub message: String,
    pub label: String,
    pub notes: Vec<String>,
}

/// A table row reads an argument its parameters lack: a mistake in the
/// table, reported as an internal error on the call.
impl From<MissingArgument> for Invalid {
    fn from(m: MissingArgument) -> Invalid {
        Invalid { param: "", message: format!("internal error: {m}"), label: "here".into(), notes: vec![] }
    }
}

type Build<T> = fn(&Args) -> Result<T, Invalid>;

/// One row of a table of callable values.
pub struct Callable<T: 'static> {
    pub name: &'static str,
    pub params: &'static [Param<'static>],
    /// One line for the reference.
    pub doc: &'static str,
    pub build: Build<T>,
}

impl<T> Callable<T> {
    /// The signature as a user would write it, e.g. `adam(lr, beta1: 0.9, ...)`.
    pub fn signature(&self, prefix: &str) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                Default::Int(n) => format!("{}: {n}", p.name),
                Default::Float(x) => format!("{}: {}", p.name, float_text(x)),
                Default::Bool(b) => format!("{}: {b}", p.name),
                Default::Str(t) | Default::Enum(t) => format!("{}: \"{t}\"", p.name),
                _ => p.name.to_string(),
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
    pub fn names(&self) -> Vec<&'static str> {
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

// ---- parameters -------------------------------------------------------------

/// A parameter given by position or by name, of a type within a range.
const fn pos(name: &'static str, (ty, range): (Ty, Range), default: Default) -> Param<'static> {
    Param::positional(name, ty, range, default)
}

/// A parameter given only by name.
const fn kw(name: &'static str, (ty, range): (Ty, Range), default: Default) -> Param<'static> {
    Param::keyword(name, ty, range, default)
}

pub const SIZE: (Ty, Range) = (Ty::Int, Range::Positive);
const COUNT: (Ty, Range) = (Ty::Int, Range::NonNegative);
const AT_LEAST_4: (Ty, Range) = (Ty::Int, Range::AtLeast(4));
pub const POSITIVE: (Ty, Range) = (Ty::Float, Range::PositiveFloat);
const NON_NEGATIVE: (Ty, Range) = (Ty::Float, Range::NonNegativeFloat);
const PROB: (Ty, Range) = (Ty::Float, Range::Probability);
pub const FRACTION: (Ty, Range) = (Ty::Float, Range::OpenUnitInterval);
const NUMBER: (Ty, Range) = (Ty::Float, Range::Any);
const NUMBERS: (Ty, Range) = (Ty::Floats, Range::Any);
const BOOL: (Ty, Range) = (Ty::Bool, Range::Any);
const STR: (Ty, Range) = (Ty::Str, Range::Any);
const STRS: (Ty, Range) = (Ty::Strs, Range::Any);

// ---- the tables ---------------------------------------------------------------

const LR: Param = pos("lr", POSITIVE, Default::Required);
const BETA1: Param = kw("beta1", PROB, Default::Float(0.9));
const BETA2: Param = kw("beta2", PROB, Default::Float(0.999));
const EPS: Param = kw("eps", POSITIVE, Default::Float(1e-8));
const MOMENTUM: Param = kw("momentum", PROB, Default::Float(0.0));
const NO_DECAY: Param = kw("weight_decay", NON_NEGATIVE, Default::Float(0.0));
/// The parameters an optimizer updates: a layer value of the model, a list
/// of them, or `params` (every parameter, the default). The section keeps
/// the names; `sema::losses` resolves them against the model.
const PARAMS: Param = kw("params", (Ty::TensorList, Range::Any), Default::None);

/// The optimisers, with PyTorch's defaults; each takes `params:` too.
pub const OPTIMIZERS: Table<Optimizer> = Table {
    what: "optimizer",
    expected: "an optimizer such as `adam(lr: 1e-3)`",
    prefix: "",
    rows: &[
        Callable {
            name: "sgd",
            params: &[LR, MOMENTUM, kw("nesterov", BOOL, Default::Bool(false)), NO_DECAY, PARAMS],
            doc: "stochastic gradient descent, optionally with (Nesterov) momentum",
            build: |a| {
                let (momentum, nesterov) = (a.float("momentum")?, a.bool("nesterov")?);
                if nesterov && momentum <= 0.0 {
                    return Err(Invalid {
                        param: "nesterov",
                        message: "Nesterov momentum needs `momentum` > 0".into(),
                        label: "needs `momentum` > 0".into(),
                        notes: vec!["help: add e.g. `momentum: 0.9`".into()],
                    });
                }
                Ok(Optimizer::Sgd {
                    lr: a.float("lr")?,
                    momentum,
                    nesterov,
                    weight_decay: a.float("weight_decay")?,
                })
            },
        },
        Callable {
            name: "adam",
            params: &[LR, BETA1, BETA2, EPS, NO_DECAY, PARAMS],
            doc: "Adam; `weight_decay` is added to the gradient (L2), as in PyTorch",
            build: |a| {
                Ok(Optimizer::Adam {
                    lr: a.float("lr")?,
                    beta1: a.float("beta1")?,
                    beta2: a.float("beta2")?,
                    eps: a.float("eps")?,
                    weight_decay: a.float("weight_decay")?,
                })
            },
        },
        Callable {
            name: "adamw",
            params: &[LR, BETA1, BETA2, EPS, kw("weight_decay", NON_NEGATIVE, Default::Float(0.01)), PARAMS],
            doc: "Adam with decoupled weight decay (Loshchilov & Hutter)",
            build: |a| {
                Ok(Optimizer::AdamW {
                    lr: a.float("lr")?,
                    beta1: a.float("beta1")?,
                    beta2: a.float("beta2")?,
                    eps: a.float("eps")?,
                    weight_decay: a.float("weight_decay")?,
                })
            },
        },
        Callable {
            name: "rmsprop",
            params: &[LR, kw("alpha", PROB, Default::Float(0.99)), EPS, MOMENTUM, NO_DECAY, PARAMS],
            doc: "RMSprop: `alpha` is the smoothing constant of the squared-gradient average",
            build: |a| {
                Ok(Optimizer::RmsProp {
                    lr: a.float("lr")?,
                    alpha: a.float("alpha")?,
                    eps: a.float("eps")?,
                    momentum: a.float("momentum")?,
                    weight_decay: a.float("weight_decay")?,
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
            params: &[pos("every", SIZE, Default::Required), pos("gamma", POSITIVE, Default::Float(0.1))],
            doc: "multiply the rate by `gamma` every `every` epochs",
            build: |a| Ok(Schedule::Step { every: a.size("every")?, gamma: a.float("gamma")? }),
        },
        Callable {
            name: "cosine",
            params: &[pos("warmup", COUNT, Default::Int(0)), kw("warmup_steps", COUNT, Default::Int(0))],
            doc: "linear warm-up over `warmup` epochs (or `warmup_steps` steps), then cosine decay to 0 at the end",
            build: |a| {
                let (warmup, warmup_steps) = (a.size("warmup")?, a.size("warmup_steps")?);
                if warmup > 0 && warmup_steps > 0 {
                    return Err(Invalid {
                        param: "warmup_steps",
                        message: "a warm-up in epochs and one in steps".into(),
                        label: "a second warm-up".into(),
                        notes: vec![format!(
                            "help: give `warmup: {warmup}` (epochs) or `warmup_steps: {warmup_steps}` (steps), not both"
                        )],
                    });
                }
                Ok(Schedule::Cosine { warmup, warmup_steps })
            },
        },
        Callable {
            name: "exponential",
            params: &[pos("gamma", POSITIVE, Default::Required)],
            doc: "multiply the rate by `gamma` after every epoch",
            build: |a| Ok(Schedule::Exponential { gamma: a.float("gamma")? }),
        },
    ],
};

const PER_LEAD: Param = kw("per_lead", BOOL, Default::Bool(false));

/// The contingency scores' thresholds: `threshold` (one number or a list,
/// by position) or `thresholds:` (by name), exactly one of them.
const THRESHOLDS: &[Param] =
    &[pos("threshold", NUMBERS, Default::None), kw("thresholds", NUMBERS, Default::None), PER_LEAD];

const ERROR_PARAMS: &[Param] = &[kw("per_variable", BOOL, Default::Bool(false)), PER_LEAD];

/// One metric per threshold of a contingency score, built by `make` from
/// the threshold and `per_lead`. The binder has checked that every threshold
/// is finite and a list is not empty; this checks that exactly one of
/// `threshold` and `thresholds` is given and that no threshold repeats.
fn thresholds(a: &Args, make: fn(f64, bool) -> Metric) -> Result<Vec<Metric>, Invalid> {
    let name = make(0.0, false).name();
    let (param, list) = match (a.floats("threshold")?, a.floats("thresholds")?) {
        (Some(list), None) => ("threshold", list),
        (None, Some(list)) => ("thresholds", list),
        (Some(_), Some(_)) => {
            return Err(Invalid {
                param: "thresholds",
                message: format!("`{name}` is given both `threshold` and `thresholds`"),
                label: "thresholds given a second time".into(),
                notes: vec![format!("help: list them once: `{name}([0.5, 2, 5])`")],
            })
        }
        (None, None) => {
            return Err(Invalid {
                param: "",
                message: format!("`{name}` is missing its argument `threshold`"),
                label: "missing `threshold`".into(),
                notes: vec![format!("help: write `{name}(0.5)`, or several: `{name}([0.5, 2, 5])`")],
            })
        }
    };
    if let Some(t) = list.iter().enumerate().find_map(|(i, t)| list[..i].contains(t).then_some(*t)) {
        return Err(Invalid {
            param,
            message: format!("threshold {t} is listed twice in `{name}`"),
            label: format!("{t} repeated"),
            notes: vec![],
        });
    }
    let per_lead = a.bool("per_lead")?;
    Ok(list.into_iter().map(|t| make(t, per_lead)).collect())
}

/// The validation metrics. A row builds one metric per threshold
/// (`csi([0.5, 2])` is two), one for the others.
pub const METRICS: Table<Vec<Metric>> = Table {
    what: "metric",
    expected: "a metric such as `rmse` or `csi(1.0)`",
    prefix: "",
    rows: &[
        Callable {
            name: "rmse",
            params: ERROR_PARAMS,
            doc: "root-mean-square error; with `per_variable: true` also one value per variable (axis 1), \
                  with `per_lead: true` one per lead time (axis 1)",
            build: |a| {
                let (per_variable, per_lead) = (a.bool("per_variable")?, a.bool("per_lead")?);
                Ok(vec![Metric::Rmse { per_variable, per_lead }])
            },
        },
        Callable {
            name: "mae",
            params: ERROR_PARAMS,
            doc: "mean absolute error; with `per_variable: true` also one value per variable (axis 1), \
                  with `per_lead: true` one per lead time (axis 1)",
            build: |a| {
                let (per_variable, per_lead) = (a.bool("per_variable")?, a.bool("per_lead")?);
                Ok(vec![Metric::Mae { per_variable, per_lead }])
            },
        },
        Callable {
            name: "accuracy",
            params: &[],
            doc: "fraction of correct arg-max classes (over samples and positions)",
            build: |_| Ok(vec![Metric::Accuracy]),
        },
        Callable {
            name: "csi",
            params: THRESHOLDS,
            doc: "critical success index hits/(hits+misses+false alarms) of events `≥ threshold`, \
                  one value per threshold",
            build: |a| thresholds(a, |threshold, per_lead| Metric::Csi { threshold, per_lead }),
        },
        Callable {
            name: "pod",
            params: THRESHOLDS,
            doc: "probability of detection hits/(hits+misses)",
            build: |a| thresholds(a, |threshold, per_lead| Metric::Pod { threshold, per_lead }),
        },
        Callable {
            name: "far",
            params: THRESHOLDS,
            doc: "false-alarm ratio false alarms/(hits+false alarms)",
            build: |a| thresholds(a, |threshold, per_lead| Metric::Far { threshold, per_lead }),
        },
        Callable {
            name: "hss",
            params: THRESHOLDS,
            doc: "Heidke skill score of the 2×2 contingency table",
            build: |a| thresholds(a, |threshold, per_lead| Metric::Hss { threshold, per_lead }),
        },
        Callable {
            name: "dice",
            params: &[],
            doc: "Dice coefficient of hard masks (argmax over channels, or ≥ 0.5 for one channel), mean over the classes present",
            build: |_| Ok(vec![Metric::Dice]),
        },
        Callable {
            name: "mass_error",
            params: &[PER_LEAD],
            doc: "relative error of the total over the axes after the first two (the mass of each field): \
                  Σ|ΣP − ΣT| / Σ|ΣT| over examples and axis 1; with `per_lead: true` one per lead time",
            build: |a| Ok(vec![Metric::MassError { per_lead: a.bool("per_lead")? }]),
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
        params: &[pos("fraction", FRACTION, Default::Required)],
        doc: "the first `fraction` of the examples in the source's order (a file's row order) trains, \
              the rest validates",
        build: |a| Ok(Split { fraction: a.float("fraction")?, rule: SplitRule::Chronological }),
    }],
};

/// The value of `early_stop`.
pub const EARLY_STOPS: Table<EarlyStop> = Table {
    what: "early-stopping rule",
    expected: "`patience(N)` or `patience(N, min_delta: D)`",
    prefix: "",
    rows: &[Callable {
        name: "patience",
        params: &[pos("n", SIZE, Default::Required), kw("min_delta", NON_NEGATIVE, Default::Float(0.0))],
        doc: "stop after `n` epochs without a validation-loss improvement larger than `min_delta`",
        build: |a| Ok(EarlyStop { patience: a.size("n")?, min_delta: a.float("min_delta")? }),
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
            params: &[pos("name", STR, Default::Required), kw("task", STR, Default::Str(""))],
            doc: "a real data set shipped with nnc; `task` picks one of its tasks (default: the first)",
            build: |a| {
                let name = a.str("name")?;
                let task = a.str("task")?;
                if let Some(d) = datasets::find(&name) {
                    if task.is_empty() {
                        return Ok(DataSource::Dataset { name, task: None });
                    }
                    if d.task(&task).is_some() {
                        return Ok(DataSource::Dataset { name, task: Some(task) });
                    }
                    let tasks = d.task_names();
                    let mut notes = vec![format!("the tasks of `{name}`: {}", names_list(&tasks))];
                    if let Some(help) = did_you_mean(&task, tasks.iter().copied()) {
                        notes.push(help);
                    }
                    return Err(Invalid {
                        param: "task",
                        message: format!("dataset `{name}` has no task `{task}`"),
                        label: "unknown task".into(),
                        notes,
                    });
                }
                let names = datasets::names();
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
                pos("path", STR, Default::Required),
                kw("x", STRS, Default::Required),
                kw("y", STRS, Default::Required),
            ],
            doc: "a CSV file with a header row; `x` and `y` name its columns",
            build: |a| Ok(DataSource::Csv { path: a.str("path")?, x: a.strs("x")?, y: a.strs("y")? }),
        },
        Callable {
            name: "npy",
            params: &[kw("x", STR, Default::Required), kw("y", STR, Default::Required)],
            doc: "two NumPy `.npy` files, inputs and targets, first axis = examples",
            build: |a| Ok(DataSource::Npy { x: a.str("x")?, y: a.str("y")? }),
        },
        Callable {
            name: "npz",
            params: &[
                pos("path", STR, Default::Required),
                kw("x", STR, Default::Required),
                kw("y", STR, Default::Required),
            ],
            doc: "one NumPy `.npz` archive; `x` and `y` name its arrays",
            build: |a| Ok(DataSource::Npz { path: a.str("path")?, x: a.str("x")?, y: a.str("y")? }),
        },
        Callable {
            name: "netcdf",
            params: &[
                pos("path", STR, Default::Required),
                kw("x", STRS, Default::Required),
                kw("y", STRS, Default::Required),
                kw("dims", STRS, Default::None),
            ],
            doc: "a NetCDF file (NetCDF-3; NetCDF-4 with the `netcdf` feature); `x` and `y` name its \
                  variables (several are stacked on axis 1), the first dimension counts the examples; \
                  `dims` names each variable's dimensions in the order the model expects them",
            build: |a| {
                Ok(DataSource::Netcdf {
                    path: a.str("path")?,
                    x: a.strs("x")?,
                    y: a.strs("y")?,
                    dims: a.strs("dims").unwrap_or_default(),
                })
            },
        },
    ],
};

/// The arguments of `window(SOURCE, ...)` after its source, which
/// [`super::TrainChecker`] checks as a data source of its own.
pub const WINDOWS: Table<Window> = Table {
    what: "window",
    expected: "`window(SOURCE, in: T_in, out: T_out)`",
    prefix: "",
    rows: &[Callable {
        name: "window",
        params: &[
            kw("in", SIZE, Default::Required),
            kw("out", SIZE, Default::Int(1)),
            kw("stride", SIZE, Default::Int(1)),
            kw("tile", COUNT, Default::Int(0)),
        ],
        doc: "sequences cut out of a time-ordered source: x = `in` consecutive inputs (a new axis 1), \
              y = the targets of the last input step and the `out − 1` after it; windows start every \
              `stride` steps; `tile: N` also cuts every window into N×N tiles of its last two axes",
        build: |a| {
            let tile = a.size("tile")?;
            Ok(Window {
                input: a.size("in")?,
                output: a.size("out")?,
                stride: a.size("stride")?,
                tile: (tile > 0).then_some(tile),
            })
        },
    }],
};

/// The arguments of `distort(SOURCE, ...)` after its source, which
/// [`super::TrainChecker`] checks as a data source of its own.
pub const DISTORTIONS: Table<Distortion> = Table {
    what: "distortion",
    expected: "`distort(SOURCE, rotate: DEGREES, shift: FRACTION)`",
    prefix: "",
    rows: &[Callable {
        name: "distort",
        params: &[
            kw("rotate", NON_NEGATIVE, Default::Float(0.0)),
            kw("shift", NON_NEGATIVE, Default::Float(0.0)),
        ],
        doc: "the images x of a source (last two axes rows, columns) rotated about their centre by up to \
              ±`rotate` degrees and moved by up to ±`shift` of their height and width, drawn once per \
              example from the seed; bilinear, zeros from outside",
        build: |a| {
            let (rotate, shift) = (a.float("rotate")?, a.float("shift")?);
            if rotate > 180.0 {
                return Err(Invalid {
                    param: "rotate",
                    message: format!("`rotate` is the largest angle in degrees, at most 180; got {rotate}"),
                    label: "more than half a turn".into(),
                    notes: vec![],
                });
            }
            if shift > 1.0 {
                return Err(Invalid {
                    param: "shift",
                    message: format!("`shift` is a fraction of the image's size, at most 1; got {shift}"),
                    label: "moves the image out of its frame".into(),
                    notes: vec!["help: `shift: 0.25` moves an image by up to a quarter of its width".into()],
                });
            }
            Ok(Distortion { rotate, shift })
        },
    }],
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
            params: &[kw("n", SIZE, Default::Int(1024)), kw("noise", NON_NEGATIVE, Default::Float(0.0))],
            doc: "x ~ U(−π, π) as f32[n, 1]; y = sin(x) + noise·N(0, 1) as f32[n, 1]",
            build: |a| synthetic(Generator::Sine { n: a.size("n")?, noise: a.float("noise")? }),
        },
        Callable {
            name: "lorenz96",
            params: &[
                kw("n", SIZE, Default::Int(2048)),
                kw("k", AT_LEAST_4, Default::Int(40)),
                kw("forcing", NUMBER, Default::Float(8.0)),
                kw("dt", POSITIVE, Default::Float(0.05)),
            ],
            doc: "Lorenz-96 states: x = state at t as f32[n, k]; y = state at t + dt as f32[n, k]",
            build: |a| {
                let args = Generator::Lorenz96 {
                    n: a.size("n")?,
                    k: a.size("k")?,
                    forcing: a.float("forcing")?,
                    dt: a.float("dt")?,
                };
                synthetic(args)
            },
        },
        Callable {
            name: "advection",
            params: &[
                kw("n", SIZE, Default::Int(256)),
                kw("size", SIZE, Default::Int(32)),
                kw("steps", SIZE, Default::Int(4)),
                kw("in", COUNT, Default::Int(0)),
                kw("out", COUNT, Default::Int(0)),
            ],
            doc: "periodic 2-D advection of rain cells (mm/h): x = field f32[n, 1, size, size]; y = field \
                  `steps` steps later; with `in: T_in, out: T_out`, independent sequences with a flow each: \
                  x = f32[n, T_in, 1, size, size], y = the next T_out frames, frames `steps` steps apart",
            build: |a| {
                let (n, size, steps) = (a.size("n")?, a.size("size")?, a.size("steps")?);
                let (input, output) = (a.size("in")?, a.size("out")?);
                if input == 0 && output == 0 {
                    return synthetic(Generator::Advection { n, size, steps });
                }
                for (param, v, other) in [("in", input, "out"), ("out", output, "in")] {
                    if v == 0 {
                        return Err(Invalid {
                            param,
                            message: format!("sequences of `advection` need `{param}` as well as `{other}`"),
                            label: format!("`{param}` missing or 0"),
                            notes: vec![
                                format!("help: add `{param}: N` (frames, at least 1)"),
                                "or leave both out for pairs of fields `steps` apart".into(),
                            ],
                        });
                    }
                }
                synthetic(Generator::AdvectionSequence { n, size, steps, input, output })
            },
        },
        Callable {
            name: "eddies",
            params: &[kw("n", SIZE, Default::Int(512)), kw("size", AT_LEAST_4, Default::Int(32))],
            doc: "x = sea-surface height f32[n, 1, size, size]; y = one-hot eddy mask f32[n, 3, size, size]",
            build: |a| synthetic(Generator::Eddies { n: a.size("n")?, size: a.size("size")? }),
        },
    ],
};
