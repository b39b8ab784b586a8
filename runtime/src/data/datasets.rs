//! The real data sets shipped inside the binary: `dataset("NAME")`.
//!
//! The catalogue ([`nnc_compiler::config::datasets`]) says what every set
//! and task is; this module holds the files (`include_bytes!` of
//! `runtime/data/NAME/`, so `dataset("digits")` works from any working
//! directory and offline) and, per task, the code that turns them into `x`
//! and `y`. `runtime/data/README.md` gives each file's provenance and
//! licence.
//!
//! Each set defines one default task (`x`, `y`, split order) that mirrors
//! the reference baseline of its provenance notes, so a trained model's
//! validation numbers compare with the published reference numbers when
//! the train section keeps `split = 0.8` ([`super::Examples::split`]):
//! iid sets are in file order (validation = index 4 mod 5), chronological
//! and spatially split sets are ordered so the first 80 % is the training
//! part.

use std::f64::consts::TAU;
use std::io::Cursor;
use std::path::PathBuf;

use ndarray::{s, ArrayD, Axis, IxDyn};
use nnc_compiler::config::datasets::{self, ArrayInfo, Dataset, Task};

use super::files::{npz_arrays, Table};
use super::{ArrayValue, Grid, Part, Raw};
use crate::Error;

/// The code that builds a task's `x` and `y` from the embedded files.
type Build = fn() -> Result<(ArrayValue, ArrayValue), String>;

/// The code that gives the grid of a task's `n` examples.
type Locate = fn(usize) -> Result<Grid, String>;

/// The examples of `dataset("name", task: "task")` (before binding); `None`
/// is the default task.
pub(crate) fn load_dataset(name: &str, task: Option<&str>) -> Result<Raw, Error> {
    let origin = match task {
        Some(t) => format!("dataset(\"{name}\", task: \"{t}\")"),
        None => format!("dataset(\"{name}\")"),
    };
    let here = PathBuf::from(&origin);
    let Some(entry) = datasets::find(name) else {
        let names = datasets::names();
        return Err(Error::new(&here, format!("unknown dataset; the datasets are {}", names.join(", "))));
    };
    let chosen = match task {
        None => entry.tasks.first(),
        Some(t) => entry.task(t),
    };
    let Some(task) = chosen else {
        let names = entry.task_names();
        return Err(Error::new(&here, format!("unknown task; the tasks are {}", names.join(", "))));
    };
    let build = builder(entry, task)
        .ok_or_else(|| Error::new(&here, "internal error: the task has no loader".to_string()))?;
    let (x, y) = build().map_err(|m| Error::new(&here, m))?;
    let n = x.shape().first().copied().unwrap_or(0);
    let grid = match locator(entry, task) {
        Some(locate) => Some(locate(n).map_err(|m| Error::new(&here, m))?),
        None => None,
    };
    let part = |info: &ArrayInfo, value, variables: &[&str]| Part {
        array: info.name.to_string(),
        source: here.clone(),
        value,
        unit: info.unit.map(str::to_string),
        variables: variables.iter().map(|v| v.to_string()).collect(),
        cells: None,
    };
    Ok(Raw {
        x: part(&task.x, x, &[]),
        y: part(&task.y, y, task.variables),
        order: task.order,
        origin,
        variable_axis: 1,
        grid,
    })
}

/// Where the cells of a task's fields lie, for the tasks whose files say.
fn locator(set: &Dataset, task: &Task) -> Option<Locate> {
    let locate: Locate = match (set.name, task.name) {
        ("fmi_radar", "default") => |n| {
            let mut a = npz(FMI_RADAR, &["lat", "lon"])?.into_iter();
            let mut grid = || -> Result<ndarray::Array2<f32>, String> {
                let a = floats(a.next().ok_or("no lat or lon")?);
                a.into_dimensionality().map_err(|_| "lat and lon must be [128, 128]".to_string())
            };
            let (lat, lon) = (grid()?, grid()?);
            Ok(Grid::whole(lat, lon, n))
        },
        // 61 latitudes from 90°N to 90°S, 120 longitudes from 0°E, every 3°.
        ("era5_members", "maps") => |n| Ok(Grid::regular(61, 120, (90.0, -3.0), (0.0, 3.0), n)),
        _ => return None,
    };
    Some(locate)
}

/// The loader of every task of the catalogue.
fn builder(set: &Dataset, task: &Task) -> Option<Build> {
    let build: Build = match (set.name, task.name) {
        ("digits", "default") => digits,
        ("mnist_5k", "default") => mnist,
        ("iris", "default") => || classes(IRIS, None, "species"),
        ("wine", "default") => || classes(WINE, None, "cultivar"),
        ("breast_cancer", "default") => || classes(BREAST_CANCER, None, "target"),
        ("diabetes", "default") => || regression(DIABETES, None, &["progression"]),
        ("linnerud", "default") => {
            || regression(LINNERUD, Some(&["chins", "situps", "jumps"]), &["weight", "waist", "pulse"])
        }
        ("co2_mauna_loa", "default") => co2,
        ("elnino_nino12", "default") => || lagged(ELNINO, "sst_degC", 12),
        ("elnino_nino12", "seasonal") => nino_seasonal,
        ("elnino_nino12", "series") => nino_series,
        ("sunspots", "series") => || lagged(SUNSPOTS, "sunactivity", 1),
        ("sunspots", "default") => || lagged(SUNSPOTS, "sunactivity", 9),
        ("nile", "default") => || lagged(NILE, "volume_1e8_m3", 5),
        ("seattle_weather", "default") => {
            || classes(SEATTLE, Some(&["precipitation", "temp_max", "temp_min", "wind"]), "weather_class")
        }
        ("storm_jan1996", "default") => storm,
        ("storm_jan1996", "increment") => storm_increment,
        ("storm_jan1996", "sequence") => storm_sequence,
        ("stageiv_precip", "default") => stageiv,
        ("fmi_radar", "default") => fmi_radar,
        ("era5_members", "default") => era5,
        ("era5_members", "latitude") => || era5_points(true),
        ("era5_members", "maps") => era5_maps,
        ("pacific_sst_ndjfm", "default") => pacific,
        ("pacific_sst_ndjfm", "maps") => pacific_maps,
        ("landsea_etopo60", "default") => landsea,
        ("landsea_etopo60", "tiles") => landsea_tiles,
        _ => return None,
    };
    Some(build)
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
const FMI_RADAR: &[u8] = include_bytes!("../../data/fmi_radar/precip.npz");
const ERA5: &[u8] = include_bytes!("../../data/era5_members/era5.npz");
const PACIFIC: &[u8] = include_bytes!("../../data/pacific_sst_ndjfm/sst_anom.npz");
const LANDSEA: &[u8] = include_bytes!("../../data/landsea_etopo60/landsea.npz");

/// The one embedded file of data set `name`: an `.npz` archive holding the
/// arrays its catalogue entry lists, or a CSV table (the entry's one array
/// has the dtype `csv`). For `const` declarations that read a stored array.
pub(crate) fn embedded_file(name: &str) -> Option<&'static [u8]> {
    Some(match name {
        "digits" => DIGITS,
        "mnist_5k" => MNIST,
        "iris" => IRIS,
        "wine" => WINE,
        "breast_cancer" => BREAST_CANCER,
        "diabetes" => DIABETES,
        "linnerud" => LINNERUD,
        "co2_mauna_loa" => CO2,
        "elnino_nino12" => ELNINO,
        "sunspots" => SUNSPOTS,
        "nile" => NILE,
        "seattle_weather" => SEATTLE,
        "storm_jan1996" => STORM,
        "stageiv_precip" => STAGEIV,
        "fmi_radar" => FMI_RADAR,
        "era5_members" => ERA5,
        "pacific_sst_ndjfm" => PACIFIC,
        "landsea_etopo60" => LANDSEA,
        _ => return None,
    })
}

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

/// Niño 1+2 month by month: `x` = (SST, sin, cos of 2π·(month − 1)/12) of
/// months 0 … n − 2, `y` = the next month's SST.
fn nino_series() -> Result<(ArrayValue, ArrayValue), String> {
    let t = table(ELNINO)?;
    let (sst, month) = (t.column("sst_degC")?, t.column("month")?);
    let n = t.rows.len().saturating_sub(1);
    let (mut xs, mut ys) = (Vec::with_capacity(3 * n), Vec::with_capacity(n));
    for r in 0..n {
        let angle = TAU * (t.number(r, month)? - 1.0) / 12.0;
        xs.extend([t.number(r, sst)? as f32, angle.sin() as f32, angle.cos() as f32]);
        ys.push(t.number(r + 1, sst)? as f32);
    }
    Ok((ArrayValue::F32(shaped(&[n, 3], xs)?), ArrayValue::F32(shaped(&[n, 1], ys)?)))
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
    next_frames(STAGEIV, "[23, 118, 87]")
}

fn fmi_radar() -> Result<(ArrayValue, ArrayValue), String> {
    next_frames(FMI_RADAR, "[40, 128, 128]")
}

/// The `precip` fields `[T, H, W]` of an archive as next-frame pairs: `x`
/// = frames 0 … T − 2, `y` = frames 1 … T − 1, both `[T − 1, 1, H, W]`.
fn next_frames(archive: &'static [u8], expected: &str) -> Result<(ArrayValue, ArrayValue), String> {
    let f = floats(npz(archive, &["precip"])?.remove(0));
    if f.ndim() != 3 || f.shape()[0] < 2 {
        return Err(format!("precip has shape {:?}, not {expected}", f.shape()));
    }
    let f = f.insert_axis(Axis(1));
    let t = f.shape()[0];
    let x = f.slice_axis(Axis(0), (0..t - 1).into()).to_owned();
    let y = f.slice_axis(Axis(0), (1..t).into()).to_owned();
    Ok((ArrayValue::F32(x), ArrayValue::F32(y)))
}

/// The stored fields `z` `[member, time, level, lat, lon]` (levels 850,
/// 500 hPa) and `t850` `[member, time, lat, lon]`, shapes checked.
fn era5_fields() -> Result<(ArrayD<f32>, ArrayD<f32>), String> {
    let mut a = npz(ERA5, &["z", "t850"])?.into_iter();
    let z = floats(a.next().ok_or("no z")?);
    let t = floats(a.next().ok_or("no t850")?);
    let (zs, ts) = (z.shape().to_vec(), t.shape().to_vec());
    if zs.len() != 5 || zs[2] != 2 || zs[3] < 2 || ts != [zs[0], zs[1], zs[3], zs[4]] {
        return Err(format!(
            "z has shape {zs:?} and t850 {ts:?}; expected [10, 4, 2, 61, 120] and [10, 4, 61, 120]"
        ));
    }
    Ok((z, t))
}

fn era5() -> Result<(ArrayValue, ArrayValue), String> {
    era5_points(false)
}

/// Per grid point, longitude-major: `x` = (z500, z850) and, if `latitude`,
/// the latitude in degrees north; `y` = t850.
fn era5_points(latitude: bool) -> Result<(ArrayValue, ArrayValue), String> {
    let (z, t) = era5_fields()?;
    let (members, times, lats, lons) = (z.shape()[0], z.shape()[1], z.shape()[3], z.shape()[4]);
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

/// Whole global maps, member-major: `x` = `[40, 3, 61, 120]` (z500, z850,
/// latitude in degrees north), `y` = t850 `[40, 1, 61, 120]`.
fn era5_maps() -> Result<(ArrayValue, ArrayValue), String> {
    let (z, t) = era5_fields()?;
    let (members, times, lats, lons) = (z.shape()[0], z.shape()[1], z.shape()[3], z.shape()[4]);
    let lat = |row: usize| (90.0 - 180.0 * row as f64 / (lats - 1) as f64) as f32;
    let n = members * times;
    let (mut xs, mut ys) = (Vec::with_capacity(3 * n * lats * lons), Vec::with_capacity(n * lats * lons));
    for m in 0..members {
        for time in 0..times {
            // Levels are stored [850, 500]: channels (z500, z850, latitude).
            for level in [1, 0] {
                xs.extend(z.slice(s![m, time, level, .., ..]).iter().copied());
            }
            xs.extend((0..lats).flat_map(|row| std::iter::repeat_n(lat(row), lons)));
            ys.extend(t.slice(s![m, time, .., ..]).iter().copied());
        }
    }
    Ok((ArrayValue::F32(shaped(&[n, 3, lats, lons], xs)?), ArrayValue::F32(shaped(&[n, 1, lats, lons], ys)?)))
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
