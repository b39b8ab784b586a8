//! Where the examples come from and how they are prepared: the `data`,
//! `split`, `normalize` and `missing` keys.

/// A source of training examples.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// `synthetic.NAME(...)`: generated in memory by `generator`, whose
    /// variant carries its checked arguments.
    Synthetic { generator: Generator },
    /// `dataset("NAME", task: "TASK")`: one of the shipped real data sets
    /// ([`DATASETS`](super::datasets::DATASETS)) and one of its tasks
    /// (`None`: the first, its default).
    Dataset { name: String, task: Option<String> },
    /// `csv(PATH, x: [COLUMNS], y: COLUMN or [COLUMNS])`.
    Csv { path: String, x: Vec<String>, y: Vec<String> },
    /// `npy(x: PATH, y: PATH)`.
    Npy { x: String, y: String },
    /// `npz(PATH, x: KEY, y: KEY)`.
    Npz { path: String, x: String, y: String },
    /// `netcdf(PATH, x: VAR or [VARS], y: VAR or [VARS], dims: [NAMES])`:
    /// variables of a NetCDF file, stacked on a new axis 1; `dims` (empty:
    /// not given) names the dimensions every variable must have, in order.
    Netcdf { path: String, x: Vec<String>, y: Vec<String>, dims: Vec<String> },
    /// `window(SOURCE, in: T_in, out: T_out, stride: S, tile: N)`:
    /// sequences cut out of a time-ordered source whose examples are time
    /// steps (see [`Window`]).
    Window { source: Box<DataSource>, window: Window },
    /// `distort(SOURCE, rotate: DEG, shift: F)`: the images of a source
    /// turned and moved at random (see [`Distortion`]).
    Distort { source: Box<DataSource>, distortion: Distortion },
}

/// How [`DataSource::Distort`] moves the images `x` of a source (the last
/// two axes of an example are its rows and columns; `y` is unchanged).
///
/// Example `i` is rotated about the image centre by an angle uniform in
/// `[−rotate, rotate]` degrees and translated by offsets uniform in
/// `[−shift, shift]` of the height (rows) and of the width (columns), drawn
/// once from the train section's seed and `i`: the distortion of an example
/// is the same in every epoch and every run with that seed. The distorted
/// image is resampled bilinearly, points that come from outside the image
/// read 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distortion {
    /// The largest rotation, in degrees (0 to 180).
    pub rotate: f64,
    /// The largest translation, as a fraction of the image's size (0 to 1).
    pub shift: f64,
}

/// How [`DataSource::Window`] cuts sequences out of a time-ordered source
/// whose example `t` is the input `x_t` and the target `y_t` of time step
/// `t` (for a next-step source, `y_t = x_{t+1}`).
///
/// Window `k` starts at `s = k · stride`: its input is `x_s … x_{s+in−1}`
/// (a new axis 1 of length `input`) and its target `y_{s+in−1} …
/// y_{s+in+out−2}` (axis 1 of length `output`): the targets of the last
/// input step and the `out − 1` steps after it, so for a next-step source
/// the `out` states that follow the input. Windows stay in time order.
/// With `tile: N` every window is further cut into the non-overlapping
/// `N × N` tiles of its last two axes (row-major, a remainder at the bottom
/// and right edges left out), the tiles of one window next to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub input: usize,
    pub output: usize,
    pub stride: usize,
    pub tile: Option<usize>,
}

impl Window {
    /// The number of windows of a source of `n` time steps (before tiling).
    pub fn count(&self, n: usize) -> usize {
        let span = self.input + self.output - 1;
        if n < span || self.stride == 0 {
            0
        } else {
            (n - span) / self.stride + 1
        }
    }
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

/// A synthetic generator with its checked arguments (`synthetic.NAME(...)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Generator {
    Sine {
        n: usize,
        noise: f64,
    },
    Lorenz96 {
        n: usize,
        k: usize,
        forcing: f64,
        dt: f64,
    },
    Advection {
        n: usize,
        size: usize,
        steps: usize,
    },
    /// `advection(n, size, steps, in: T_in, out: T_out)`: `n` independent
    /// sequences of `T_in + T_out` frames `steps` steps apart, each with its
    /// own flow.
    AdvectionSequence {
        n: usize,
        size: usize,
        steps: usize,
        input: usize,
        output: usize,
    },
    Eddies {
        n: usize,
        size: usize,
    },
}

impl Generator {
    /// The name as written in a `.nn` file (after `synthetic.`).
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Sine { .. } => "sine",
            Generator::Lorenz96 { .. } => "lorenz96",
            Generator::Advection { .. } | Generator::AdvectionSequence { .. } => "advection",
            Generator::Eddies { .. } => "eddies",
        }
    }

    /// The number of examples generated.
    pub fn n(&self) -> usize {
        match *self {
            Generator::Sine { n, .. }
            | Generator::Lorenz96 { n, .. }
            | Generator::Advection { n, .. }
            | Generator::AdvectionSequence { n, .. }
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
