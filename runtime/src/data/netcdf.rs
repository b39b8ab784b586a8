//! `netcdf(PATH, x: VARS, y: VARS, dims: [NAMES])`: variables of a NetCDF
//! file, the way earth-system data are stored.
//!
//! NetCDF-3 files (classic and 64-bit offset) are read in pure Rust by
//! [`classic`], a reader of the format's specification; NetCDF-4 files (HDF5 underneath) need the C library
//! libnetcdf, behind the cargo feature `netcdf`. Without the feature a
//! NetCDF-4 file is an error naming the feature.
//!
//! Every variable is decoded as the CF conventions say: a value equal to
//! `_FillValue` (or, without one, the format's default fill value of the
//! variable's type, bytes excepted) or to one of `missing_value` becomes
//! NaN, so that the train section's `missing = mask|drop|error` applies;
//! the others are unpacked as `value · scale_factor + add_offset`. The first
//! dimension of a variable counts the examples (typically `time`, often the
//! unlimited dimension); several variables (of one shape) are stacked on a
//! new axis 1, so `x: ["t2m", "u10"]` over `(time, lat, lon)` gives
//! `[time, 2, lat, lon]`. Dimension names are checked against `dims`, with
//! the usual spellings of time, latitude, longitude and vertical level
//! taken as the same (`lat` and `latitude`), so that a file stored as
//! `(time, lon, lat)` is an error rather than silently transposed data.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::suggest::closest;

mod classic;

use classic::Classic;

use super::files::read_file;
use super::{ArrayValue, Order, Part, Raw};
use crate::io::error::names_text;
use crate::Error;

/// NetCDF's default fill value of `float` variables (9.96921e36).
pub(crate) const NC_FILL_FLOAT: f32 = f32::from_bits(0x7cf0_0000);
/// NetCDF's default fill value of `double` variables (9.96921e36).
pub(crate) const NC_FILL_DOUBLE: f64 = f64::from_bits(0x479e_0000_0000_0000);

/// One variable as stored: its dimensions, raw values and the attributes
/// that decode them.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    /// Dimension names, outermost first.
    pub dims: Vec<String>,
    pub shape: Vec<usize>,
    /// The stored (packed) values, row-major.
    pub values: Vec<f64>,
    /// `_FillValue`, or the default fill value of the variable's type.
    pub fill: Option<f64>,
    /// `missing_value` (one or several).
    pub missing: Vec<f64>,
    pub scale: f64,
    pub offset: f64,
    /// The smallest and largest valid stored values (`valid_range`, or
    /// `valid_min` / `valid_max`, in the packed units as the CF conventions
    /// define them): stored values outside are missing.
    pub valid_min: Option<f64>,
    pub valid_max: Option<f64>,
    /// The `units` attribute.
    pub units: Option<String>,
    /// Whether the stored values are integers (`byte`, `short`, `int`, ...),
    /// not `float` or `double`.
    pub integer: bool,
}

impl Variable {
    /// A variable from its stored values and the attributes that decode
    /// them, as either reader finds them: `numbers(attr)` gives a numeric
    /// attribute's values (empty when absent), `default_fill` the format's
    /// fill value for the variable's type, `integer` whether that type is an
    /// integer one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_attributes(
        name: &str,
        dims: Vec<String>,
        shape: Vec<usize>,
        values: Vec<f64>,
        numbers: impl Fn(&str) -> Vec<f64>,
        default_fill: Option<f64>,
        units: Option<String>,
        integer: bool,
    ) -> Variable {
        let (valid_min, valid_max) = match numbers("valid_range")[..] {
            [lo, hi, ..] => (Some(lo), Some(hi)),
            _ => (numbers("valid_min").first().copied(), numbers("valid_max").first().copied()),
        };
        Variable {
            name: name.to_string(),
            dims,
            shape,
            values,
            fill: numbers("_FillValue").first().copied().or(default_fill),
            missing: numbers("missing_value"),
            scale: numbers("scale_factor").first().copied().unwrap_or(1.0),
            offset: numbers("add_offset").first().copied().unwrap_or(0.0),
            valid_min,
            valid_max,
            units,
            integer,
        }
    }

    /// Whether the stored value `v` is missing: NaN, the fill value, a
    /// missing value, or outside the valid range.
    fn is_missing(&self, v: f64) -> bool {
        v.is_nan()
            || self.fill == Some(v)
            || self.missing.contains(&v)
            || self.valid_min.is_some_and(|lo| v < lo)
            || self.valid_max.is_some_and(|hi| v > hi)
    }

    /// Why the stored value `v` is missing ("the fill value -999"), or
    /// `None` when it is a value.
    pub fn why_missing(&self, v: f64) -> Option<String> {
        let n = number(v);
        if v.is_nan() {
            Some("NaN".into())
        } else if self.fill == Some(v) {
            Some(format!("the fill value {n}"))
        } else if self.missing.contains(&v) {
            Some(format!("the missing value {n}"))
        } else if let Some(lo) = self.valid_min.filter(|&lo| v < lo) {
            Some(format!("{n}, below the valid minimum {}", number(lo)))
        } else {
            self.valid_max
                .filter(|&hi| v > hi)
                .map(|hi| format!("{n}, above the valid maximum {}", number(hi)))
        }
    }

    /// The physical values: missing ones NaN, the others unpacked.
    pub fn decoded(&self) -> Vec<f32> {
        self.values
            .iter()
            .map(|&v| if self.is_missing(v) { f32::NAN } else { (v * self.scale + self.offset) as f32 })
            .collect()
    }
}

/// A stored value as text: plain for ordinary magnitudes, else in
/// scientific notation (`9.969209968386869e36`, NetCDF's default fill value
/// of doubles).
fn number(v: f64) -> String {
    if v == 0.0 || (1e-4..1e7).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// NetCDF-3 classic (`CDF\x01`) or 64-bit offset (`CDF\x02`).
    Netcdf3,
    /// NetCDF-3 with 64-bit data (`CDF\x05`, CDF-5).
    Cdf5,
    /// NetCDF-4: an HDF5 file.
    Hdf5,
}

fn format(bytes: &[u8]) -> Result<Format, String> {
    match bytes {
        [b'C', b'D', b'F', 1 | 2, ..] => Ok(Format::Netcdf3),
        [b'C', b'D', b'F', 5, ..] => Ok(Format::Cdf5),
        [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n', ..] => Ok(Format::Hdf5),
        _ if bytes.len() < 4 => Err("not a NetCDF file: it is too short to hold a header".into()),
        _ => Err("not a NetCDF file (it starts with neither `CDF` nor the HDF5 signature)".into()),
    }
}

/// The CF role of a dimension name: `time`, `lat`, `lon` or `level` for
/// their usual spellings.
fn role(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "time" | "t" | "times" | "valid_time" | "date" => Some("time"),
        "lat" | "latitude" | "rlat" | "nav_lat" => Some("lat"),
        "lon" | "longitude" | "rlon" | "nav_lon" => Some("lon"),
        "level" | "lev" | "plev" | "levels" | "pressure" | "isobaricinhpa" | "depth" | "height" | "z" => {
            Some("level")
        }
        _ => None,
    }
}

/// Whether the file's dimension `file` is the declared `declared`.
fn same_dim(file: &str, declared: &str) -> bool {
    file == declared || role(file).is_some_and(|r| Some(r) == role(declared))
}

fn tuple(names: &[String]) -> String {
    format!("({})", names.join(", "))
}

/// Checks the dimensions of `var` against `dims` (the declared order; empty:
/// none declared). Without a declaration, a time dimension must come first.
pub fn check_dims(var: &Variable, dims: &[String]) -> Result<(), String> {
    let name = &var.name;
    let have = tuple(&var.dims);
    if var.dims.is_empty() {
        return Err(format!("variable `{name}` is a scalar; its first dimension must count the examples"));
    }
    if dims.is_empty() {
        if let Some(k) = var.dims.iter().position(|d| role(d) == Some("time")).filter(|&k| k > 0) {
            return Err(format!(
                "variable `{name}` has dimensions {have}: time (`{}`) is dimension {k}, but the first \
                 dimension counts the examples; store the variable with time first (e.g. `ncpdq -a {},...`)",
                var.dims[k], var.dims[k]
            ));
        }
        return Ok(());
    }
    let want = tuple(dims);
    if dims.len() != var.dims.len() {
        return Err(format!(
            "variable `{name}` has {} dimensions {have}; `dims` declares {} {want}",
            var.dims.len(),
            dims.len()
        ));
    }
    if var.dims.iter().zip(dims).all(|(f, d)| same_dim(f, d)) {
        return Ok(());
    }
    let permuted = dims.iter().all(|d| var.dims.iter().any(|f| same_dim(f, d)));
    if permuted {
        return Err(format!(
            "variable `{name}` is stored with its dimensions in the order {have}, but `dims` declares \
             {want}; reorder the file's dimensions (e.g. with `ncpdq -a {}`) or declare `dims` in the file's order",
            dims.join(",")
        ));
    }
    let (i, (f, d)) =
        var.dims.iter().zip(dims).enumerate().find(|(_, (f, d))| !same_dim(f, d)).expect("a mismatch");
    Err(format!("dimension {i} of variable `{name}` is `{f}` ({have}), but `dims` declares `{d}` {want}"))
}

/// An open NetCDF file.
enum File {
    Netcdf3(Classic),
    #[cfg(feature = "netcdf")]
    Netcdf4(netcdf::File),
}

impl File {
    fn open(path: &Path) -> Result<File, String> {
        File::parse(path, read_file(path).map_err(|e| e.cause)?)
    }

    /// The file at `path`, whose contents are `bytes`.
    fn parse(path: &Path, bytes: Vec<u8>) -> Result<File, String> {
        match format(&bytes)? {
            Format::Netcdf3 => Ok(File::Netcdf3(Classic::parse(bytes)?)),
            Format::Cdf5 | Format::Hdf5 => open_with_library(path, &bytes),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            File::Netcdf3(c) => c.names(),
            #[cfg(feature = "netcdf")]
            File::Netcdf4(f) => f.variables().map(|v| v.name()).collect(),
        }
    }

    /// The names of the variables that hold numbers (not text).
    fn numeric_names(&self) -> Vec<String> {
        match self {
            File::Netcdf3(c) => c.numeric_names(),
            #[cfg(feature = "netcdf")]
            File::Netcdf4(f) => {
                use netcdf::types::NcVariableType;
                f.variables()
                    .filter(|v| matches!(v.vartype(), NcVariableType::Int(_) | NcVariableType::Float(_)))
                    .map(|v| v.name())
                    .collect()
            }
        }
    }

    fn variable(&mut self, name: &str) -> Result<Variable, String> {
        if !self.names().iter().any(|n| n == name) {
            let names = self.names();
            let hint = closest(name, names.iter().map(String::as_str))
                .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
            let list = if names.is_empty() {
                "the file has no variables".to_string()
            } else {
                format!("the variables are {}", names_text(names.iter().map(String::as_str), 30))
            };
            return Err(format!("no variable `{name}`{hint}; {list}"));
        }
        match self {
            File::Netcdf3(c) => c.variable(name),
            #[cfg(feature = "netcdf")]
            File::Netcdf4(f) => read_netcdf4(f, name),
        }
    }
}

#[cfg(feature = "netcdf")]
fn open_with_library(path: &Path, _bytes: &[u8]) -> Result<File, String> {
    netcdf::open(path).map(File::Netcdf4).map_err(|e| format!("cannot read as NetCDF-4: {e}"))
}

#[cfg(not(feature = "netcdf"))]
fn open_with_library(_path: &Path, bytes: &[u8]) -> Result<File, String> {
    let what = if format(bytes) == Ok(Format::Hdf5) { "a NetCDF-4 (HDF5)" } else { "a CDF-5 (64-bit data)" };
    Err(format!(
        "{what} file; this nnc reads NetCDF-3 files only: build it with the cargo feature `netcdf` \
         (`cargo build --release --features netcdf`, which needs libnetcdf, e.g. the package \
         libnetcdf-dev) to read it, or convert the file with `nccopy -k classic`"
    ))
}

#[cfg(feature = "netcdf")]
fn read_netcdf4(file: &netcdf::File, name: &str) -> Result<Variable, String> {
    use netcdf::types::{FloatType, IntType, NcVariableType};
    use netcdf::AttributeValue as A;
    let var = file.variable(name).ok_or_else(|| format!("no variable `{name}`"))?;
    let dims: Vec<String> = var.dimensions().iter().map(|d| d.name()).collect();
    let shape: Vec<usize> = var.dimensions().iter().map(|d| d.len()).collect();
    let default_fill = match var.vartype() {
        NcVariableType::Int(IntType::I16) => Some(-32767.0),
        NcVariableType::Int(IntType::U16) => Some(65535.0),
        NcVariableType::Int(IntType::I32) => Some(-2147483647.0),
        NcVariableType::Int(IntType::U32) => Some(4294967295.0),
        NcVariableType::Float(FloatType::F32) => Some(f64::from(NC_FILL_FLOAT)),
        NcVariableType::Float(FloatType::F64) => Some(NC_FILL_DOUBLE),
        NcVariableType::Int(_) => None,
        other => return Err(format!("variable `{name}` holds {other:?} values, not numbers")),
    };
    let numbers = |attr: &str| -> Vec<f64> {
        let Some(Ok(value)) = var.attribute_value(attr) else { return vec![] };
        match value {
            A::Uchar(v) => vec![f64::from(v)],
            A::Uchars(v) => v.into_iter().map(f64::from).collect(),
            A::Schar(v) => vec![f64::from(v)],
            A::Schars(v) => v.into_iter().map(f64::from).collect(),
            A::Ushort(v) => vec![f64::from(v)],
            A::Ushorts(v) => v.into_iter().map(f64::from).collect(),
            A::Short(v) => vec![f64::from(v)],
            A::Shorts(v) => v.into_iter().map(f64::from).collect(),
            A::Uint(v) => vec![f64::from(v)],
            A::Uints(v) => v.into_iter().map(f64::from).collect(),
            A::Int(v) => vec![f64::from(v)],
            A::Ints(v) => v.into_iter().map(f64::from).collect(),
            A::Ulonglong(v) => vec![v as f64],
            A::Ulonglongs(v) => v.into_iter().map(|x| x as f64).collect(),
            A::Longlong(v) => vec![v as f64],
            A::Longlongs(v) => v.into_iter().map(|x| x as f64).collect(),
            A::Float(v) => vec![f64::from(v)],
            A::Floats(v) => v.into_iter().map(f64::from).collect(),
            A::Double(v) => vec![v],
            A::Doubles(v) => v,
            A::Str(_) | A::Strs(_) => vec![],
        }
    };
    let units = match var.attribute_value("units") {
        Some(Ok(A::Str(s))) => Some(s),
        _ => None,
    };
    let values: Vec<f64> =
        var.get_values::<f64, _>(..).map_err(|e| format!("cannot read variable `{name}`: {e}"))?;
    let integer = matches!(var.vartype(), NcVariableType::Int(_));
    Ok(Variable::from_attributes(name, dims, shape, values, numbers, default_fill, units, integer))
}

/// Every numeric variable of the NetCDF file at `path` (text variables,
/// `char` or `string`, are left out), in the file's order, read and
/// decoded as a data source reads them (for tools that list a file and for
/// testing the reader on real and damaged files).
pub fn variables(path: &Path) -> Result<Vec<Variable>, Error> {
    let fail = |m: String| Error::new(path, m);
    let mut file = File::open(path).map_err(fail)?;
    let mut vars = vec![];
    for name in file.numeric_names() {
        vars.push(file.variable(&name).map_err(fail)?);
    }
    Ok(vars)
}

/// The variable `name` of the NetCDF file at `path`, whose contents are
/// `bytes` (a `const` declaration's source). The error is the cause alone,
/// without the path.
pub(crate) fn read_variable(path: &Path, bytes: Vec<u8>, name: &str) -> Result<Variable, String> {
    File::parse(path, bytes)?.variable(name)
}

/// Reads the variables `names` of the NetCDF file at `path` (each checked
/// against `dims`) and stacks them on a new axis 1; also returns the name
/// of their first dimension.
pub(crate) fn read_variables(
    path: &Path,
    names: &[String],
    dims: &[String],
) -> Result<(Part, String), Error> {
    let fail = |m: String| Error::new(path, m);
    let mut file = File::open(path).map_err(fail)?;
    let mut vars = vec![];
    for name in names {
        let var = file.variable(name).map_err(fail)?;
        check_dims(&var, dims).map_err(fail)?;
        if let Some(first) = vars.first().map(|v: &Variable| v) {
            if first.shape != var.shape {
                return Err(fail(format!(
                    "variables `{}` {} of shape {:?} and `{name}` {} of shape {:?} cannot be stacked",
                    first.name,
                    tuple(&first.dims),
                    first.shape,
                    tuple(&var.dims),
                    var.shape
                )));
            }
        }
        vars.push(var);
    }
    let Some(first) = vars.first() else { return Err(fail("no variable named".into())) };
    let n = first.shape[0];
    let per: usize = first.shape[1..].iter().product();
    let decoded: Vec<Vec<f32>> = vars.iter().map(Variable::decoded).collect();
    let mut values = Vec::with_capacity(n * per * vars.len());
    for i in 0..n {
        for d in &decoded {
            values.extend_from_slice(&d[i * per..(i + 1) * per]);
        }
    }
    let mut shape = vec![n, vars.len()];
    shape.extend(&first.shape[1..]);
    let array = ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| fail(e.to_string()))?;
    let units: Vec<Option<&String>> = vars.iter().map(|v| v.units.as_ref()).collect();
    let unit = units.first().copied().flatten().filter(|u| units.iter().all(|o| *o == Some(*u))).cloned();
    let label = if names.len() == 1 { names[0].clone() } else { format!("[{}]", names.join(", ")) };
    let part = Part {
        array: label,
        source: path.to_path_buf(),
        value: ArrayValue::F32(array),
        unit,
        variables: names.to_vec(),
        cells: None,
    };
    Ok((part, first.dims[0].clone()))
}

/// `netcdf(PATH, x: VARS, y: VARS, dims: NAMES)`: examples along the first
/// dimension, in time order when it is time or the unlimited dimension.
pub(crate) fn load_netcdf(path: &Path, x: &[String], y: &[String], dims: &[String]) -> Result<Raw, Error> {
    let (x_part, y_part) = (read_variables(path, x, dims)?, read_variables(path, y, dims)?.0);
    if x_part.0.value.shape()[0] != y_part.value.shape()[0] {
        return Err(Error::new(
            path,
            format!(
                "`x` has {} examples and `y` {}: their first dimensions differ",
                x_part.0.value.shape()[0],
                y_part.value.shape()[0]
            ),
        ));
    }
    let order = if role(&x_part.1) == Some("time") { Order::Chronological } else { Order::Iid };
    Ok(Raw {
        x: x_part.0,
        y: y_part,
        order,
        origin: path.display().to_string(),
        variable_axis: 1,
        grid: None,
    })
}
