//! Where training examples come from: the `data` key of a `train` section.
//!
//! [`load`] turns a checked [`DataSource`] into [`Examples`]: one input array
//! (`x`) and one target array (`y`), each bound to the model's only data
//! input and only target, reshaped to their declared per-example shapes and
//! converted to their declared element types. Everything the trainer needs
//! to know about a source beyond the arrays travels with them: how a
//! validation split must be taken ([`Order`]), physical units, and a name
//! for messages.
//!
//! Sources:
//! - `synthetic.NAME(...)` ([`synthetic`]): generated in memory from the
//!   train section's `seed` by a counter-based generator (Philox-4x32-10 of
//!   `(seed, stream, index)`), so the values depend only on the seed and the
//!   arguments;
//! - `dataset("NAME")` ([`datasets`]): real data sets compiled into the
//!   binary, each with a default task mirroring the reference baseline its
//!   provenance documents; the catalogue of them
//!   ([`nnc_compiler::config::datasets`]) lives with the configuration;
//! - `csv(...)`, `npy(...)`, `npz(...)` ([`files`]): user files, paths
//!   relative to the model file's directory;
//! - `netcdf(...)` ([`netcdf`]): variables of a NetCDF file, missing and
//!   packed values decoded, dimension order checked by name;
//! - `window(SOURCE, in, out, stride, tile)` ([`window`]): sequences cut
//!   out of a time-ordered source;
//! - `distort(SOURCE, rotate, shift)` ([`distort`]): a source's images
//!   rotated and translated at random, once per example.
//!
//! Binding rule: an example's array may be reshaped to the declared
//! per-example shape (all axes after the first) when it holds the same
//! number of values, read in row-major order (8×8 digit images feed
//! `f32[B, 64]`; 28×28 images feed `f32[B, 1, 28, 28]`). Integers feed f32
//! inputs as floats; floats feed i32 targets only when every value is a
//! whole number. NaN or infinite values are an error naming the source, the
//! array and the first bad example and position, unless the train section
//! says `missing = drop`, which leaves such examples out, or `missing =
//! mask`, which keeps them and adds a third field, `valid`: 1.0 where the
//! target (for a model without a target, the input) is finite and 0.0
//! where it is missing, bound by name to a model input or target called
//! `valid` (typically `target valid`, used as `mse(pred, y, weight:
//! valid)`). The trainer then feeds missing values as 0 after
//! normalisation and leaves missing targets out of its metrics.
//!
//! Fields bind by name first (`valid`); the remaining single input binds
//! to `x` and the remaining target, if any, to `y`.
//!
//! Errors are [`LoadError`]s: an [`Error`] naming the file, or the source
//! (`dataset("digits")`) when there is no file, and, when the error concerns
//! one of the model's inputs or targets (a shape or element type that does
//! not fit its declaration), its name and, for a shape, the declaration
//! that fits the data, so that a front end can point at the declaration.
//! Loading never panics on bad input.

mod bind;
pub mod datasets;
mod distort;
pub mod files;
mod footprint;
pub mod netcdf;
mod rng;
pub mod synthetic;
mod window;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use nnc_compiler::config::{DataSource, Split, SplitRule};
use nnc_compiler::ir::Graph;

pub use crate::io::error::Error;
pub use crate::io::npz::ArrayValue;
pub use nnc_compiler::config::datasets::Order;
pub use nnc_compiler::config::Missing;

/// Whether a field feeds a model input or a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A model `input` (an `InputKind::Data` input of the graph).
    Input,
    /// A model `target` (an `InputKind::Target` input of the graph).
    Target,
}

/// One array of every example, bound to a model input or target.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The model input or target it binds to.
    pub name: String,
    pub role: Role,
    /// F32 or I32 as declared; the leading axis is the example, the others
    /// are the model's declared per-example shape.
    pub value: ArrayValue,
    /// The physical unit of the values (`mm`, `K`), if known.
    pub unit: Option<String>,
    /// The names of the variables (axis 1), if the source names them.
    pub variables: Vec<String>,
    /// The axis of the variables, for normalisation: 1, or 2 for
    /// sequences (`window(...)`, generated sequences: time on axis 1).
    pub variable_axis: usize,
    /// The field is the `valid` mask of `missing = mask` (never normalised).
    pub mask: bool,
}

/// The examples of a source, ready to be batched.
#[derive(Clone, Debug, PartialEq)]
pub struct Examples {
    /// One field per bound input and target (input first).
    pub fields: Vec<Field>,
    /// The number of examples (the leading axis of every field).
    pub n: usize,
    pub order: Order,
    /// The source, for messages: `dataset("digits")`, a file path,
    /// `synthetic.sine(n: 1024, noise: 0)`.
    pub origin: String,
    /// Examples left out by `missing = drop` (0 otherwise).
    pub dropped: usize,
    /// Where the cells of gridded examples lie, when the source says.
    pub grid: Option<Grid>,
}

/// The latitude and longitude of the cells of a source's fields: one grid,
/// and where on it each example lies (a tile of `window(..., tile: N)` is
/// a part of the grid).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Degrees north of every cell centre, `[rows, columns]`, row 0 first.
    pub lat: ndarray::Array2<f32>,
    /// Degrees east of every cell centre, `[rows, columns]`.
    pub lon: ndarray::Array2<f32>,
    /// Per example, the row and column of the grid at which its fields
    /// (the last two axes of its arrays) start.
    pub origins: Vec<(usize, usize)>,
}

impl Grid {
    /// The grid of `n` examples that each cover the whole of it.
    pub fn whole(lat: ndarray::Array2<f32>, lon: ndarray::Array2<f32>, n: usize) -> Grid {
        Grid { lat, lon, origins: vec![(0, 0); n] }
    }

    /// A regular latitude–longitude grid: row `r` at `lat0 + r·dlat`,
    /// column `c` at `lon0 + c·dlon` (degrees).
    pub fn regular(
        rows: usize,
        columns: usize,
        (lat0, dlat): (f64, f64),
        (lon0, dlon): (f64, f64),
        n: usize,
    ) -> Grid {
        let lat = ndarray::Array2::from_shape_fn((rows, columns), |(r, _)| (lat0 + r as f64 * dlat) as f32);
        let lon = ndarray::Array2::from_shape_fn((rows, columns), |(_, c)| (lon0 + c as f64 * dlon) as f32);
        Grid::whole(lat, lon, n)
    }

    /// The latitudes and longitudes of the `rows × columns` field of
    /// example `example`, or `None` when the field does not fit the grid.
    pub fn field(
        &self,
        example: usize,
        rows: usize,
        columns: usize,
    ) -> Option<(ndarray::Array2<f32>, ndarray::Array2<f32>)> {
        let &(r0, c0) = self.origins.get(example)?;
        let (gr, gc) = self.lat.dim();
        if r0 + rows > gr || c0 + columns > gc {
            return None;
        }
        let part =
            |a: &ndarray::Array2<f32>| a.slice(ndarray::s![r0..r0 + rows, c0..c0 + columns]).to_owned();
        Some((part(&self.lat), part(&self.lon)))
    }

    /// The grid of the examples `rows` of this one.
    pub fn select(&self, rows: &[usize]) -> Grid {
        let origins = rows.iter().filter_map(|&r| self.origins.get(r).copied()).collect();
        Grid { lat: self.lat.clone(), lon: self.lon.clone(), origins }
    }
}

impl Examples {
    /// The indices of the training and the validation examples under the
    /// train section's `split`: a fraction (in (0, 1)) taken by the source's
    /// own order ([`SplitRule::Source`], also what a plain `f64` means), or
    /// by file order whatever the source (`chronological(F)`).
    ///
    /// - [`Order::Chronological`]: the first `floor(split · n)` examples
    ///   train, the rest validate.
    /// - [`Order::Iid`]: example `i` validates when
    ///   `floor((i + 1)(1 − split)) > floor(i (1 − split))`, which spreads the
    ///   validation examples evenly; for `split = 0.8` these are exactly the
    ///   examples with `i % 5 == 4` (the shipped data sets' IID rule, under
    ///   which their reference numbers were measured).
    pub fn split(&self, split: impl Into<Split>) -> (Vec<usize>, Vec<usize>) {
        let split = split.into();
        let order = match split.rule {
            SplitRule::Source => self.order,
            SplitRule::Chronological => Order::Chronological,
        };
        split_indices(self.n, split.fraction, order)
    }
}

/// [`Examples::split`] for `n` examples.
pub fn split_indices(n: usize, split: f64, order: Order) -> (Vec<usize>, Vec<usize>) {
    // A tolerance keeps decimal fractions such as 0.8 exact: 5 · 0.2 is 1.
    const EPS: f64 = 1e-9;
    let split = split.clamp(0.0, 1.0);
    match order {
        Order::Chronological => {
            let k = ((split * n as f64 + EPS).floor() as usize).min(n);
            ((0..k).collect(), (k..n).collect())
        }
        Order::Iid => {
            let v = 1.0 - split;
            let (mut train, mut valid) = (vec![], vec![]);
            for i in 0..n {
                let before = (i as f64 * v + EPS).floor();
                let after = ((i + 1) as f64 * v + EPS).floor();
                if after > before {
                    valid.push(i);
                } else {
                    train.push(i);
                }
            }
            (train, valid)
        }
    }
}

/// How to load a source.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions<'a> {
    /// The train section's `seed` (synthetic sources).
    pub seed: u64,
    /// The train section's `missing` rule.
    pub missing: Missing,
    /// The directory relative paths resolve against: the model file's.
    pub base_dir: &'a Path,
}

/// An array of a source before binding: what it is called, where it came
/// from, and its values in the source's own shape (floats may hold NaN).
#[derive(Clone, Debug)]
pub(crate) struct Part {
    /// The array's name in the source, for messages (`images`, a key,
    /// `columns [a, b]`).
    pub array: String,
    /// The file or source it came from, for messages.
    pub source: PathBuf,
    pub value: ArrayValue,
    pub unit: Option<String>,
    /// The names of the variables (axis 1), if known.
    pub variables: Vec<String>,
    /// Where the values came from in a CSV file, for messages.
    pub cells: Option<files::Cells>,
}

impl Part {
    /// An array of a file with nothing known of its units and variables.
    pub fn of_file(array: &str, source: &std::path::Path, value: ArrayValue) -> Part {
        Part {
            array: array.into(),
            source: source.to_path_buf(),
            value,
            unit: None,
            variables: vec![],
            cells: None,
        }
    }
}

/// A source's two arrays before binding.
#[derive(Clone, Debug)]
pub(crate) struct Raw {
    pub x: Part,
    pub y: Part,
    pub order: Order,
    pub origin: String,
    /// The axis of the variables: 1, or 2 for sequences (time on axis 1).
    pub variable_axis: usize,
    /// Where the cells of the fields lie, when the source says.
    pub grid: Option<Grid>,
}

/// Why a source could not be loaded for a model: the file (or source) and
/// the cause, and what a front end needs to point at the model's source.
#[derive(Debug)]
pub struct LoadError {
    /// The file or source and what is wrong, as every file error says it.
    pub error: Error,
    /// The model input or target the error concerns (the name it is
    /// declared with), if it concerns one.
    pub binding: Option<String>,
    /// How to make the data and the model fit, when the error knows a way
    /// (a sentence without the leading `help:`).
    pub help: Option<String>,
}

impl LoadError {
    /// An error about the data of the model input or target `binding`.
    pub(crate) fn about(binding: &str, error: Error) -> LoadError {
        LoadError { error, binding: Some(binding.to_string()), help: None }
    }

    pub(crate) fn with_help(mut self, help: String) -> LoadError {
        self.help = Some(help);
        self
    }
}

impl From<Error> for LoadError {
    fn from(error: Error) -> LoadError {
        LoadError { error, binding: None, help: None }
    }
}

/// `PATH: CAUSE`, as the [`Error`] (the help is for front ends to show).
impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for LoadError {}

/// Loads the examples of `source` for the training forward graph `graph`,
/// binding `x` to its only [`InputKind::Data`](nnc_compiler::ir::InputKind)
/// input and `y` to its only target (see the module documentation for the
/// reshape, conversion and missing-value rules).
pub fn load(source: &DataSource, graph: &Graph, opts: &LoadOptions) -> Result<Examples, LoadError> {
    let origin = origin_text(source, opts.base_dir);
    // Check the model first: no file is read for a model that cannot bind.
    let slots = bind::slots(graph, &origin, opts.missing)?;
    // Nor one that the machine cannot hold.
    footprint::check(source, opts.base_dir, &origin)?;
    let raw = raw(source, opts, &origin)?;
    bind::bind(raw, &slots, opts.missing)
}

/// The arrays of `source` before binding; `origin` is its text.
fn raw(source: &DataSource, opts: &LoadOptions, origin: &str) -> Result<Raw, Error> {
    Ok(match source {
        DataSource::Window { source: inner, window: w } => {
            let file =
                matches!(**inner, DataSource::Csv { .. } | DataSource::Npy { .. } | DataSource::Npz { .. });
            let file = file || matches!(**inner, DataSource::Netcdf { .. });
            let mut inner = raw(inner, opts, &origin_text(inner, opts.base_dir))?;
            if file {
                // A file's rows are its time steps, in file order.
                inner.order = Order::Chronological;
            }
            window::window(inner, w, origin)?
        }
        DataSource::Distort { source: inner, distortion } => {
            let inner = raw(inner, opts, &origin_text(inner, opts.base_dir))?;
            distort::distort(inner, distortion, opts.seed, origin)?
        }
        DataSource::Synthetic { generator } => synthetic::generate(generator, opts.seed)?,
        DataSource::Dataset { name, task } => datasets::load_dataset(name, task.as_deref())?,
        DataSource::Csv { path, x, y } => files::load_csv(&resolve(opts.base_dir, path), x, y)?,
        DataSource::Npy { x, y } => files::load_npy(&resolve(opts.base_dir, x), &resolve(opts.base_dir, y))?,
        DataSource::Npz { path, x, y } => files::load_npz(&resolve(opts.base_dir, path), x, y)?,
        DataSource::Netcdf { path, x, y, dims } => {
            netcdf::load_netcdf(&resolve(opts.base_dir, path), x, y, dims)?
        }
    })
}

/// `path` resolved against `base` unless it is absolute.
fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The source as shown in messages.
fn origin_text(source: &DataSource, base: &Path) -> String {
    match source {
        DataSource::Synthetic { generator } => synthetic::describe(generator),
        DataSource::Dataset { name, task: None } => format!("dataset(\"{name}\")"),
        DataSource::Dataset { name, task: Some(t) } => format!("dataset(\"{name}\", task: \"{t}\")"),
        DataSource::Csv { path, .. } | DataSource::Npz { path, .. } | DataSource::Netcdf { path, .. } => {
            resolve(base, path).display().to_string()
        }
        DataSource::Npy { x, y } => {
            format!("{} and {}", resolve(base, x).display(), resolve(base, y).display())
        }
        DataSource::Distort { source, distortion: d } => {
            format!("distort({}, rotate: {}, shift: {})", origin_text(source, base), d.rotate, d.shift)
        }
        DataSource::Window { source, window: w } => {
            let tile = w.tile.map_or(String::new(), |t| format!(", tile: {t}"));
            format!(
                "window({}, in: {}, out: {}, stride: {}{tile})",
                origin_text(source, base),
                w.input,
                w.output,
                w.stride
            )
        }
    }
}
