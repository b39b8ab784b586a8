//! `netcdf(PATH, x: ..., y: ..., dims: ...)` data sources: NetCDF-3 files
//! written here (classic and 64-bit offset) with fill values, missing
//! values, packed shorts and an unlimited time dimension, loaded for a
//! model as `nnc train` loads them; and the errors a user meets (a missing
//! file or variable, a wrong dimension order, a truncated or corrupt file,
//! a NetCDF-4 file without the `netcdf` feature). With the feature, the
//! same checks run on NetCDF-4 files written through libnetcdf.
//!
//! Real files from packages of registries (`tests/fixtures/README.md`) are
//! read variable by variable and compared, value by value, with what
//! Unidata's `ncdump` printed for them (`tests/fixtures/NAME.cdl`). And
//! `const NAME: TYPE = netcdf(PATH, var: NAME)` reads a variable as a
//! model's constant.

use std::fs;
use std::path::{Path, PathBuf};

use netcdf3::{DataSet, FileWriter, Version};
use nnc_compiler::config::DataSource;
use nnc_runtime::data::{ArrayValue, Examples, Missing, Order};

mod common;
use common::try_load;

/// A fresh temporary directory for one test.
fn temp(name: &str) -> common::TempDir {
    common::temp("netcdf", name)
}

fn source(path: &str, x: &[&str], y: &[&str], dims: &[&str]) -> DataSource {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    DataSource::Netcdf { path: path.into(), x: strings(x), y: strings(y), dims: strings(dims) }
}

fn floats(examples: &Examples, field: usize) -> Vec<f32> {
    match &examples.fields[field].value {
        ArrayValue::F32(a) => a.iter().copied().collect(),
        ArrayValue::I32(_) => panic!("an f32 field"),
    }
}

/// The values of `t2m` at (time, lat, lon): 280 + t + lat/10 + lon/100 K.
fn t2m(t: usize, lat: usize, lon: usize) -> f32 {
    280.0 + t as f32 + lat as f32 / 10.0 + lon as f32 / 100.0
}

const TIMES: usize = 4;
const LATS: usize = 2;
const LONS: usize = 3;
/// Only (0, 0, 0) of the values `t2m` holds (fill and missing ones aside)
/// lies below it.
const VALID_MIN_T2M: f32 = 280.015;
/// Stored `precip` values above 32 (at time 3: 33, 34, 35) are missing.
const VALID_RANGE_PRECIP: [i16; 2] = [0, 32];

/// A file of `TIMES` steps over a `LATS × LONS` grid: `t2m` (f32 with a
/// `_FillValue` at one point, a `missing_value` at another and a
/// `valid_min` above a third), `precip` (shorts packed with `scale_factor`
/// and `add_offset`, a fill value, and a `valid_range` whose upper end
/// three stored values exceed),
/// both record variables of the unlimited dimension `time`, and `t2m_lonlat`
/// stored as (time, lon, lat).
fn write_file(path: &Path, version: Version) {
    let mut ds = DataSet::new();
    ds.set_unlimited_dim("time", TIMES).unwrap();
    ds.add_fixed_dim("latitude", LATS).unwrap();
    ds.add_fixed_dim("longitude", LONS).unwrap();
    ds.add_var_f32("t2m", &["time", "latitude", "longitude"]).unwrap();
    ds.add_var_attr_f32("t2m", "_FillValue", vec![-999.0]).unwrap();
    ds.add_var_attr_f32("t2m", "missing_value", vec![-1.0]).unwrap();
    ds.add_var_attr_f32("t2m", "valid_min", vec![VALID_MIN_T2M]).unwrap();
    ds.add_var_attr_string("t2m", "units", "K").unwrap();
    ds.add_var_i16("precip", &["time", "latitude", "longitude"]).unwrap();
    ds.add_var_attr_f32("precip", "scale_factor", vec![0.5]).unwrap();
    ds.add_var_attr_f32("precip", "add_offset", vec![10.0]).unwrap();
    ds.add_var_attr_i16("precip", "_FillValue", vec![-32767]).unwrap();
    ds.add_var_attr_i16("precip", "valid_range", VALID_RANGE_PRECIP.to_vec()).unwrap();
    ds.add_var_attr_string("precip", "units", "mm").unwrap();
    ds.add_var_f32("t2m_lonlat", &["time", "longitude", "latitude"]).unwrap();
    ds.add_var_f64("latitude", &["latitude"]).unwrap();
    let mut t = vec![];
    let mut p = vec![];
    let mut swapped = vec![];
    for time in 0..TIMES {
        for lat in 0..LATS {
            for lon in 0..LONS {
                t.push(t2m(time, lat, lon));
                p.push((time * 10 + lat * 3 + lon) as i16);
            }
        }
        for lon in 0..LONS {
            for lat in 0..LATS {
                swapped.push(t2m(time, lat, lon));
            }
        }
    }
    t[1] = -999.0; // (0, 0, 1) is the fill value
    t[LATS * LONS + 2] = -1.0; // (1, 0, 2) is missing
    p[5] = -32767; // (0, 1, 2) is the fill value
    let mut writer = FileWriter::open(path).unwrap();
    writer.set_def(&ds, version, 0).unwrap();
    writer.write_var_f32("t2m", &t).unwrap();
    writer.write_var_i16("precip", &p).unwrap();
    writer.write_var_f32("t2m_lonlat", &swapped).unwrap();
    writer.write_var_f64("latitude", &[50.0, 51.0]).unwrap();
    writer.close().unwrap();
}

fn check_values(examples: &Examples) {
    assert_eq!(examples.n, TIMES);
    assert_eq!(examples.order, Order::Chronological, "time first: examples in time order");
    let x = floats(examples, 0);
    let y = floats(examples, 1);
    for time in 0..TIMES {
        for lat in 0..LATS {
            for lon in 0..LONS {
                let i = (time * LATS + lat) * LONS + lon;
                let want_t = match (time, lat, lon) {
                    (0, 0, 1) | (1, 0, 2) | (0, 0, 0) => f32::NAN,
                    _ => t2m(time, lat, lon),
                };
                let want_p = match (time, lat, lon) {
                    (0, 1, 2) | (3, 1, _) => f32::NAN,
                    _ => (time * 10 + lat * 3 + lon) as f32 * 0.5 + 10.0,
                };
                assert!(
                    x[i] == want_t || (x[i].is_nan() && want_t.is_nan()),
                    "t2m at {i}: {} vs {want_t}",
                    x[i]
                );
                assert!(
                    y[i] == want_p || (y[i].is_nan() && want_p.is_nan()),
                    "precip at {i}: {} vs {want_p}",
                    y[i]
                );
            }
        }
    }
    assert_eq!(examples.fields[0].unit.as_deref(), Some("K"));
    assert_eq!(examples.fields[1].unit.as_deref(), Some("mm"));
    assert_eq!(examples.fields[1].variables, vec!["precip".to_string()]);
}

#[test]
fn classic_and_64_bit_offset_files_decode_fill_missing_valid_range_and_packed_values() {
    let dir = temp("versions");
    for (name, version) in [("classic.nc", Version::Classic), ("offset64.nc", Version::Offset64Bit)] {
        write_file(&dir.join(name), version);
        let src = source(name, &["t2m"], &["precip"], &["time", "lat", "lon"]);
        let examples = try_load(&src, "f32[B, 2, 3]", "f32[B, 1, 2, 3]", Missing::Mask, &dir)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_values(&examples);
        // With the default rule, the filled values are an error naming them.
        let e = try_load(&src, "f32[B, 2, 3]", "f32[B, 1, 2, 3]", Missing::Error, &dir).unwrap_err();
        assert!(e.contains(name) && e.contains("NaN") && e.contains("missing = drop"), "{e}");
        // `missing = drop` leaves out the three time steps with missing
        // values: 0 and 1 (fill and missing values), 3 (the valid range).
        let dropped = try_load(&src, "f32[B, 2, 3]", "f32[B, 1, 2, 3]", Missing::Drop, &dir).unwrap();
        assert_eq!((dropped.n, dropped.dropped), (1, 3));
    }
}

#[test]
fn several_variables_stack_on_axis_1() {
    let dir = temp("stack");
    write_file(&dir.join("f.nc"), Version::Classic);
    let src = source("f.nc", &["t2m", "precip"], &["precip"], &[]);
    let examples = try_load(&src, "f32[B, 2, 2, 3]", "f32[B, 2, 3]", Missing::Mask, &dir).unwrap();
    let x = floats(&examples, 0);
    // Example 2: t2m's grid, then precip's.
    let per = LATS * LONS;
    assert_eq!(x[2 * 2 * per + 4], t2m(2, 1, 1));
    assert_eq!(x[2 * 2 * per + per + 4], (20 + 3 + 1) as f32 * 0.5 + 10.0);
    assert_eq!(examples.fields[0].variables, vec!["t2m".to_string(), "precip".to_string()]);
    assert_eq!(examples.fields[0].unit, None, "K and mm: no common unit");
}

#[test]
fn a_wrong_dimension_order_is_an_error_naming_both_orders() {
    let dir = temp("order");
    write_file(&dir.join("f.nc"), Version::Classic);
    let src = source("f.nc", &["t2m_lonlat"], &["t2m"], &["time", "lat", "lon"]);
    let e = try_load(&src, "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir).unwrap_err();
    for part in ["f.nc", "`t2m_lonlat`", "(time, longitude, latitude)", "(time, lat, lon)", "ncpdq"] {
        assert!(e.contains(part), "{part:?} not in: {e}");
    }
    // The file's own order, declared, loads; another name is named.
    let src = source("f.nc", &["t2m_lonlat"], &["t2m_lonlat"], &["time", "lon", "lat"]);
    try_load(&src, "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir).unwrap();
    let src = source("f.nc", &["t2m"], &["t2m"], &["time", "lat", "station"]);
    let e = try_load(&src, "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir).unwrap_err();
    assert!(e.contains("dimension 2 of variable `t2m` is `longitude`") && e.contains("`station`"), "{e}");
    let src = source("f.nc", &["t2m"], &["t2m"], &["time", "lat"]);
    let e = try_load(&src, "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir).unwrap_err();
    assert!(e.contains("has 3 dimensions"), "{e}");
}

#[test]
fn missing_files_variables_and_corrupt_files_are_clear_errors() {
    let dir = temp("errors");
    write_file(&dir.join("f.nc"), Version::Classic);
    let load = |src: &DataSource| try_load(src, "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir);
    let e = load(&source("none.nc", &["t2m"], &["t2m"], &[])).unwrap_err();
    assert!(e.contains("none.nc") && e.contains("cannot read"), "{e}");
    let e = load(&source("f.nc", &["t2n"], &["t2m"], &[])).unwrap_err();
    assert!(e.contains("no variable `t2n` (did you mean `t2m`?)") && e.contains("precip"), "{e}");
    // A file cut short: the header parses, the data run past the end.
    let bytes = fs::read(dir.join("f.nc")).unwrap();
    fs::write(dir.join("short.nc"), &bytes[..bytes.len() - 40]).unwrap();
    let e = load(&source("short.nc", &["t2m"], &["precip"], &[])).unwrap_err();
    assert!(e.contains("short.nc") && e.contains("truncated"), "{e}");
    // A header cut short, and a file that is not NetCDF at all.
    fs::write(dir.join("head.nc"), &bytes[..30]).unwrap();
    let e = load(&source("head.nc", &["t2m"], &["t2m"], &[])).unwrap_err();
    assert!(e.contains("head.nc") && e.contains("corrupt or truncated"), "{e}");
    fs::write(dir.join("text.nc"), "time,t2m\n0,280\n").unwrap();
    let e = load(&source("text.nc", &["t2m"], &["t2m"], &[])).unwrap_err();
    assert!(e.contains("text.nc: not a NetCDF file"), "{e}");
    // Garbage after a valid magic number.
    let mut garbage = b"CDF\x01".to_vec();
    garbage.extend((0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    fs::write(dir.join("garbage.nc"), &garbage).unwrap();
    let e = load(&source("garbage.nc", &["t2m"], &["t2m"], &[])).unwrap_err();
    assert!(e.contains("garbage.nc"), "{e}");
}

#[cfg(not(feature = "netcdf"))]
#[test]
fn netcdf4_files_name_the_feature_that_reads_them() {
    let dir = temp("hdf5");
    let mut bytes = b"\x89HDF\r\n\x1a\n".to_vec();
    bytes.extend([0u8; 64]);
    fs::write(dir.join("f4.nc"), &bytes).unwrap();
    let e =
        try_load(&source("f4.nc", &["t2m"], &["t2m"], &[]), "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir)
            .unwrap_err();
    assert!(e.contains("NetCDF-4") && e.contains("feature `netcdf`"), "{e}");
}

/// The same file as [`write_file`], as NetCDF-4 through libnetcdf.
#[cfg(feature = "netcdf")]
fn write_netcdf4(path: &Path) {
    let mut file = netcdf::create(path).unwrap();
    file.add_unlimited_dimension("time").unwrap();
    file.add_dimension("latitude", LATS).unwrap();
    file.add_dimension("longitude", LONS).unwrap();
    let mut t = vec![];
    let mut p = vec![];
    for time in 0..TIMES {
        for lat in 0..LATS {
            for lon in 0..LONS {
                t.push(t2m(time, lat, lon));
                p.push((time * 10 + lat * 3 + lon) as i16);
            }
        }
    }
    t[1] = -999.0;
    t[LATS * LONS + 2] = -1.0;
    p[5] = -32767;
    let dims = ["time", "latitude", "longitude"];
    let mut var = file.add_variable::<f32>("t2m", &dims).unwrap();
    var.set_fill_value(-999.0f32).unwrap();
    var.put_attribute("missing_value", -1.0f32).unwrap();
    var.put_attribute("valid_min", VALID_MIN_T2M).unwrap();
    var.put_attribute("units", "K").unwrap();
    var.put_values(&t, (0..TIMES, .., ..)).unwrap();
    let mut var = file.add_variable::<i16>("precip", &dims).unwrap();
    var.set_fill_value(-32767i16).unwrap();
    var.put_attribute("valid_range", VALID_RANGE_PRECIP.to_vec()).unwrap();
    var.put_attribute("scale_factor", 0.5f32).unwrap();
    var.put_attribute("add_offset", 10.0f32).unwrap();
    var.put_attribute("units", "mm").unwrap();
    var.put_values(&p, (0..TIMES, .., ..)).unwrap();
}

#[cfg(feature = "netcdf")]
#[test]
fn netcdf4_files_decode_like_netcdf3_ones() {
    let dir = temp("netcdf4");
    write_netcdf4(&dir.join("f4.nc"));
    let src = source("f4.nc", &["t2m"], &["precip"], &["time", "lat", "lon"]);
    let examples = try_load(&src, "f32[B, 2, 3]", "f32[B, 1, 2, 3]", Missing::Mask, &dir).unwrap();
    check_values(&examples);
    let src = source("f4.nc", &["t2m"], &["precip"], &["time", "lon", "lat"]);
    let e = try_load(&src, "f32[B, 2, 3]", "f32[B, 1, 2, 3]", Missing::Mask, &dir).unwrap_err();
    assert!(e.contains("(time, latitude, longitude)") && e.contains("(time, lon, lat)"), "{e}");
    let e =
        try_load(&source("f4.nc", &["t3m"], &["precip"], &[]), "f32[B, 6]", "f32[B, 6]", Missing::Mask, &dir)
            .unwrap_err();
    assert!(e.contains("no variable `t3m`"), "{e}");
    let bytes = fs::read(dir.join("f4.nc")).unwrap();
    fs::write(dir.join("short4.nc"), &bytes[..bytes.len() / 2]).unwrap();
    let e = try_load(
        &source("short4.nc", &["t2m"], &["precip"], &[]),
        "f32[B, 6]",
        "f32[B, 6]",
        Missing::Mask,
        &dir,
    )
    .unwrap_err();
    assert!(e.contains("short4.nc"), "{e}");
}

/// A file written by Unidata's `ncgen` (`tests/fixtures/one_record_variable.cdl`):
/// its only record variable's records are 6 bytes apart, without padding.
#[test]
fn a_single_record_variable_has_unpadded_records() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let src = source("one_record_variable.nc", &["sst"], &["sst"], &["time", "x"]);
    let examples = try_load(&src, "f32[B, 3]", "f32[B, 3]", Missing::Mask, &dir).unwrap();
    assert_eq!(examples.n, 3);
    let x = floats(&examples, 0);
    let want = [21.0, f32::NAN, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 18.0];
    for (got, want) in x.iter().zip(want) {
        assert!((got - want).abs() < 1e-5 || (got.is_nan() && want.is_nan()), "{x:?}");
    }
    assert_eq!(examples.fields[0].unit.as_deref(), Some("degC"));
}

// Real files: NetCDF files taken from packages of registries
// (`tests/fixtures/README.md` gives their provenance), each beside the
// values ncdump printed for it (`NAME.cdl`).

/// The directory of the real files.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One variable as ncdump prints it: its type, dimensions, the attributes
/// that decode it, and its values (`None` for ncdump's `_`, a value equal
/// to the fill value).
#[derive(Debug)]
struct Dumped {
    name: String,
    ty: String,
    dims: Vec<String>,
    attrs: Vec<(String, Vec<f64>)>,
    values: Vec<Option<f64>>,
}

impl Dumped {
    fn attr(&self, name: &str) -> &[f64] {
        self.attrs.iter().find(|(n, _)| n == name).map_or(&[], |(_, v)| v)
    }

    /// The fill value ncdump compares with: `_FillValue`, or NetCDF's
    /// default fill value of the type (none for bytes).
    fn fill(&self) -> Option<f64> {
        self.attr("_FillValue").first().copied().or(match self.ty.as_str() {
            "short" => Some(-32767.0),
            "ushort" => Some(65535.0),
            "int" => Some(-2147483647.0),
            "uint" => Some(4294967295.0),
            "float" => Some(f64::from(f32::from_bits(0x7cf0_0000))),
            "double" => Some(f64::from_bits(0x479e_0000_0000_0000)),
            _ => None,
        })
    }

    /// The physical value of the stored value `v` by the CF conventions:
    /// NaN when it is a `missing_value` or outside the valid range, else
    /// unpacked with `scale_factor` and `add_offset`.
    fn decode(&self, v: f64) -> f32 {
        let (lo, hi) = match self.attr("valid_range") {
            [lo, hi] => (Some(*lo), Some(*hi)),
            _ => (self.attr("valid_min").first().copied(), self.attr("valid_max").first().copied()),
        };
        let missing = self.attr("missing_value").contains(&v)
            || lo.is_some_and(|lo| v < lo)
            || hi.is_some_and(|hi| v > hi);
        let scale = self.attr("scale_factor").first().copied().unwrap_or(1.0);
        let offset = self.attr("add_offset").first().copied().unwrap_or(0.0);
        if missing {
            f32::NAN
        } else {
            (v * scale + offset) as f32
        }
    }
}

const NUMERIC: [&str; 10] =
    ["byte", "ubyte", "short", "ushort", "int", "uint", "int64", "uint64", "float", "double"];

/// A number of CDL text as stored: a value of a variable of type `ty`, or
/// (`None`) an attribute's value, whose type its suffix gives (`0.5f` is a
/// float, `-999s` a short, `32767US` an unsigned short, `0.5` a double).
/// Floats go through f32, so that `0.00999999978f` is the f32 it prints.
fn cdl_number(text: &str, ty: Option<&str>) -> f64 {
    let text = text.trim();
    for suffix in ["", "f", "d", "s", "b", "UB", "US", "U", "LL", "ULL", "L"] {
        let Some(body) = text.strip_suffix(suffix) else { continue };
        let Ok(value) = body.parse::<f64>() else { continue };
        let float = ty.map_or(suffix == "f", |ty| ty == "float");
        return if float { f64::from(body.parse::<f32>().expect("an f32")) } else { value };
    }
    panic!("not a CDL number: {text:?}")
}

/// Splits `text` on `sep` outside double-quoted strings (with `\` escapes).
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (vec![], 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The numeric variables of ncdump's output, in the file's order.
fn parse_cdl(cdl: &str) -> Vec<Dumped> {
    let body: String = cdl.lines().filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n");
    let (header, data) = body.split_once("\ndata:\n").unwrap_or((&body, ""));
    let mut vars: Vec<Dumped> = vec![];
    let mut in_variables = false;
    for line in header.lines() {
        if line == "variables:" {
            in_variables = true;
            continue;
        }
        if !in_variables || line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        let decl = line.strip_prefix('\t').filter(|l| !l.starts_with('\t'));
        if let Some(decl) = decl {
            // `float temp(time, level, lat, lon) ;` or `short time ;`
            let decl = decl.trim_end_matches(" ;");
            let (ty, rest) = decl.split_once(' ').expect("a type and a name");
            let (name, dims) = match rest.split_once('(') {
                Some((name, dims)) => {
                    (name, dims.trim_end_matches(')').split(", ").map(str::to_string).collect())
                }
                None => (rest, vec![]),
            };
            vars.push(Dumped { name: name.into(), ty: ty.into(), dims, attrs: vec![], values: vec![] });
        } else if let Some((target, value)) = line.trim().split_once(" = ") {
            // `rh:valid_range = 0., 1. ;`
            let Some((var, attr)) = target.split_once(':') else { continue };
            let decoding = [
                "_FillValue",
                "missing_value",
                "valid_range",
                "valid_min",
                "valid_max",
                "scale_factor",
                "add_offset",
            ];
            let Some(v) = vars.iter_mut().find(|v| v.name == var) else { continue };
            if decoding.contains(&attr) && !value.starts_with('"') {
                let numbers = value.trim_end_matches(" ;").split(", ").map(|x| cdl_number(x, None)).collect();
                v.attrs.push((attr.into(), numbers));
            }
        }
    }
    // `name = v, v, ... ;` statements; text values are quoted strings.
    for statement in split_outside_quotes(data.trim_end().trim_end_matches('}'), ';') {
        let Some((name, values)) = statement.split_once('=') else { continue };
        let Some(v) = vars.iter_mut().find(|v| v.name == name.trim()) else {
            panic!("no declaration of {name}")
        };
        if !NUMERIC.contains(&v.ty.as_str()) {
            continue;
        }
        let ty = v.ty.clone();
        v.values = split_outside_quotes(values, ',')
            .into_iter()
            .map(str::trim)
            .map(|x| if x == "_" { None } else { Some(cdl_number(x, Some(&ty))) })
            .collect();
    }
    vars.retain(|v| NUMERIC.contains(&v.ty.as_str()));
    vars
}

/// Both NaN, or equal.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Every numeric variable nnc reads from `nc` has ncdump's name,
/// dimensions and stored values; ncdump's `_` is the fill value, NaN once
/// decoded, and every other value decodes as the CF conventions say.
fn check_against_ncdump(nc: &Path, cdl: &str) -> Vec<nnc_runtime::data::netcdf::Variable> {
    let file = nc.file_name().unwrap().to_string_lossy().to_string();
    let dumped = parse_cdl(cdl);
    let vars = nnc_runtime::data::netcdf::variables(nc).unwrap_or_else(|e| panic!("{e}"));
    let names = |v: Vec<&String>| v.into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(vars.iter().map(|v| &v.name).collect()),
        names(dumped.iter().map(|d| &d.name).collect()),
        "{file}: the numeric variables"
    );
    for (var, d) in vars.iter().zip(&dumped) {
        let at = format!("{file}: `{}`", d.name);
        assert_eq!(var.dims, d.dims, "{at}: dimensions");
        assert_eq!(var.shape.iter().product::<usize>(), d.values.len(), "{at}: {:?}", var.shape);
        assert_eq!(var.values.len(), d.values.len(), "{at}: number of values");
        let fill = d.fill();
        assert!(
            var.fill == fill || (var.fill.is_some_and(f64::is_nan) && fill.is_some_and(f64::is_nan)),
            "{at}: fill value {:?} vs ncdump's {fill:?}",
            var.fill
        );
        let decoded = var.decoded();
        for (i, want) in d.values.iter().enumerate() {
            let (stored, physical) = (var.values[i], decoded[i]);
            match *want {
                None => {
                    let fill = fill.unwrap_or_else(|| panic!("{at}[{i}]: `_` without a fill value"));
                    assert!(same(stored, fill), "{at}[{i}]: {stored} is not the fill value {fill}");
                    assert!(physical.is_nan(), "{at}[{i}]: the fill value decodes to {physical}");
                }
                Some(want) => {
                    assert!(same(stored, want), "{at}[{i}]: stored {stored}, ncdump {want}");
                    let cf = d.decode(want);
                    assert!(
                        same(f64::from(physical), f64::from(cf)),
                        "{at}[{i}]: decoded {physical}, CF {cf}"
                    );
                }
            }
        }
    }
    vars
}

fn cdl(name: &str) -> String {
    fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn find<'a>(
    vars: &'a [nnc_runtime::data::netcdf::Variable],
    name: &str,
) -> &'a nnc_runtime::data::netcdf::Variable {
    vars.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no `{name}`"))
}

#[test]
fn real_netcdf3_files_read_as_ncdump_reads_them() {
    let files = [
        "temp_3D_classic",
        "temp_3D_64bit_offset",
        "containing_default_fill_values",
        "nc_fill_values",
        "scalar_vars",
        "zero_sized_unlimited_dim",
        "example_1",
        "example_2",
        "example_3_maskedvals",
    ];
    for name in files {
        let vars = check_against_ncdump(&fixtures().join(format!("{name}.nc")), &cdl(&format!("{name}.cdl")));
        match name {
            "temp_3D_classic" | "temp_3D_64bit_offset" => {
                // Six record variables of two records; the `char` one is text.
                let t = find(&vars, "temperature_f32");
                assert_eq!((t.shape.as_slice(), t.units.as_deref()), (&[2, 3, 5][..], Some("Celsius")));
                assert_eq!(t.decoded(), (0..30).map(|v| v as f32).collect::<Vec<_>>());
                assert!(vars.iter().all(|v| v.name != "temperature_u8"));
                assert!(find(&vars, "temperature_i16").integer && !t.integer);
            }
            "containing_default_fill_values" => {
                // The second record was never written: the default fill
                // values, missing, except for bytes, which have none.
                for var in ["var_i16", "var_i32", "var_f32", "var_f64"] {
                    let d = find(&vars, var).decoded();
                    assert!(d[0] == 1.0 && d[1].is_nan() && d[2] == 3.0, "{var}: {d:?}");
                }
                assert_eq!(find(&vars, "var_i8").decoded(), [1.0, -127.0, 3.0]);
            }
            "scalar_vars" => {
                for v in &vars {
                    assert_eq!(
                        (v.shape.as_slice(), v.decoded().as_slice()),
                        (&[][..], &[42.0][..]),
                        "{}",
                        v.name
                    );
                }
            }
            "zero_sized_unlimited_dim" => assert!(vars.is_empty()),
            "example_1" => {
                assert!(find(&vars, "temp").decoded().iter().all(|v| v.is_nan()), "never written");
                assert_eq!(find(&vars, "temp").shape, [1, 4, 5, 10]);
                assert_eq!(find(&vars, "rh").valid_max, Some(1.0));
            }
            "example_2" => {
                // Packed ints: value · 0.01 + 20, one fill value.
                let t = find(&vars, "Temperature").decoded();
                assert!(t[3].is_nan());
                assert!((t[1] - 20.71).abs() < 1e-5 && (t[14] - 30.0).abs() < 1e-5, "{t:?}");
            }
            "example_3_maskedvals" => {
                // 1e-10 is not the fill value 0; a `missing_value` is
                // missing though ncdump prints it; a NaN fill value.
                let d = |v: &str| find(&vars, v).decoded();
                assert!(d("var1_fillval0")[0] == 1e-10 && d("var1_fillval0")[1].is_nan());
                assert_eq!(d("var2_noFillval"), [1.0, 2.0, 3.0]);
                let v3 = d("var3_fillvalAndMissingValue");
                assert!(v3[0].is_nan() && v3[1].is_nan() && v3[2] == 3.0, "{v3:?}");
                let v4 = d("var4_missingValue");
                assert!(v4[0] == 1.0 && v4[1].is_nan() && v4[2] == 3.0, "{v4:?}");
                assert!(d("var5_fillvalNaN")[1].is_nan() && d("var5_fillvalNaN")[2] == 3.0);
                assert_eq!(find(&vars, "var7_2d").shape, [3, 2]);
            }
            _ => {}
        }
    }
}

/// ncdump's text for `lcc_km.nc` (1 MB of values, most of them `0`), kept
/// zipped.
fn lcc_km_cdl() -> String {
    use std::io::Read;
    let zipped = fs::File::open(fixtures().join("lcc_km.cdl.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(zipped).unwrap();
    let mut text = String::new();
    archive.by_name("lcc_km.cdl").unwrap().read_to_string(&mut text).unwrap();
    text
}

#[cfg(feature = "netcdf")]
#[test]
fn a_real_netcdf4_file_reads_as_ncdump_reads_it() {
    let vars = check_against_ncdump(&fixtures().join("lcc_km.nc"), &lcc_km_cdl());
    let prcp = find(&vars, "prcp");
    assert_eq!(
        (prcp.dims.as_slice(), prcp.shape.as_slice()),
        (&["time", "y", "x"].map(String::from)[..], &[1, 569, 619][..])
    );
    assert_eq!(prcp.units.as_deref(), Some("mm"));
    assert!(find(&vars, "lambert_conformal_conic").decoded()[0].is_nan(), "a scalar never written");
}

#[cfg(not(feature = "netcdf"))]
#[test]
fn a_real_netcdf4_file_names_the_feature_that_reads_it() {
    // The expectations parse; the file is refused with the way to read it.
    let dumped = parse_cdl(&lcc_km_cdl());
    assert_eq!(dumped.iter().map(|d| d.values.len()).sum::<usize>(), 1 + 569 * 619 + 1 + 619 + 569);
    let e = nnc_runtime::data::netcdf::variables(&fixtures().join("lcc_km.nc")).unwrap_err().to_string();
    assert!(e.contains("lcc_km.nc") && e.contains("NetCDF-4") && e.contains("feature `netcdf`"), "{e}");
}

#[test]
fn real_files_load_as_data_and_their_mistakes_are_clear_errors() {
    let dir = fixtures();
    let load = |src: &DataSource, x: &str, y: &str| try_load(src, x, y, Missing::Mask, &dir);
    // Two variables stacked, time first: 2 examples of 3 × 5.
    let src = source(
        "temp_3D_classic.nc",
        &["temperature_f32", "temperature_i16"],
        &["temperature_f64"],
        &["time", "lat", "lon"],
    );
    let examples = load(&src, "f32[B, 2, 3, 5]", "f32[B, 3, 5]").unwrap();
    assert_eq!((examples.n, examples.order), (2, Order::Chronological));
    let x = floats(&examples, 0);
    assert_eq!((x[0], x[14], x[15], x[30], x[59]), (0.0, 14.0, 0.0, 15.0, 29.0));
    assert_eq!(examples.fields[0].unit.as_deref(), Some("Celsius"));
    // A missing variable names the file, the closest variable and the others.
    let src = source("temp_3D_64bit_offset.nc", &["temperature"], &["temperature_f64"], &[]);
    let e = load(&src, "f32[B, 15]", "f32[B, 15]").unwrap_err();
    for part in [
        "temp_3D_64bit_offset.nc",
        "no variable `temperature`",
        "did you mean",
        "`temperature_f32`",
        "`latitude`",
    ] {
        assert!(e.contains(part), "{part:?} not in: {e}");
    }
    // The file's order is (time, latitude, longitude), not the declared one.
    let src =
        source("temp_3D_classic.nc", &["temperature_f32"], &["temperature_f64"], &["time", "lon", "lat"]);
    let e = load(&src, "f32[B, 15]", "f32[B, 15]").unwrap_err();
    for part in ["temp_3D_classic.nc", "`temperature_f32`", "(time, latitude, longitude)", "(time, lon, lat)"]
    {
        assert!(e.contains(part), "{part:?} not in: {e}");
    }
    // Variables of different shapes, text, a scalar, a file of no variables.
    let src = source("temp_3D_classic.nc", &["temperature_f32", "latitude"], &["temperature_f64"], &[]);
    let e = load(&src, "f32[B, 15]", "f32[B, 15]").unwrap_err();
    assert!(
        e.contains("`temperature_f32`") && e.contains("`latitude`") && e.contains("cannot be stacked"),
        "{e}"
    );
    let src = source("temp_3D_classic.nc", &["temperature_u8"], &["temperature_f64"], &[]);
    let e = load(&src, "f32[B, 15]", "f32[B, 15]").unwrap_err();
    assert!(
        e.contains("temp_3D_classic.nc") && e.contains("`temperature_u8` holds char values, not numbers"),
        "{e}"
    );
    let src = source("scalar_vars.nc", &["scalar_value_f32"], &["scalar_value_f64"], &[]);
    let e = load(&src, "f32[B, 1]", "f32[B, 1]").unwrap_err();
    assert!(e.contains("scalar_vars.nc") && e.contains("`scalar_value_f32` is a scalar"), "{e}");
    let src = source("zero_sized_unlimited_dim.nc", &["x"], &["x"], &[]);
    let e = load(&src, "f32[B, 1]", "f32[B, 1]").unwrap_err();
    assert!(e.contains("no variable `x`; the file has no variables"), "{e}");
    // Never-written values are missing: an error under `missing = error`.
    let src = source("example_1.nc", &["temp"], &["rh"], &[]);
    let e = try_load(&src, "f32[B, 4, 5, 10]", "f32[B, 5, 10]", Missing::Error, &dir).unwrap_err();
    assert!(e.contains("example_1.nc") && e.contains("NaN"), "{e}");
}

#[test]
fn a_truncated_real_file_names_the_file_and_the_variable() {
    let dir = temp("truncated-real");
    for name in ["temp_3D_classic.nc", "temp_3D_64bit_offset.nc", "example_1.nc"] {
        let bytes = fs::read(fixtures().join(name)).unwrap();
        let short = format!("short_{name}");
        fs::write(dir.join(&short), &bytes[..bytes.len() - 50]).unwrap();
        let e = nnc_runtime::data::netcdf::variables(&dir.join(&short)).unwrap_err().to_string();
        assert!(e.contains(&short) && e.contains("the file is truncated: the values of variable `"), "{e}");
        fs::write(dir.join(&short), &bytes[..100]).unwrap();
        let e = nnc_runtime::data::netcdf::variables(&dir.join(&short)).unwrap_err().to_string();
        assert!(e.contains(&short) && e.contains("corrupt or truncated NetCDF-3 header"), "{e}");
    }
    let bytes = fs::read(fixtures().join("lcc_km.nc")).unwrap();
    fs::write(dir.join("short_lcc_km.nc"), &bytes[..bytes.len() / 2]).unwrap();
    let e = nnc_runtime::data::netcdf::variables(&dir.join("short_lcc_km.nc")).unwrap_err().to_string();
    assert!(e.contains("short_lcc_km.nc"), "{e}");
}

// `const NAME: TYPE = netcdf(PATH, var: NAME)`: a variable of a NetCDF file
// as a constant, read by the runtime's loader.

fn netcdf_const(path: &str, var: &str) -> nnc_compiler::sema::ConstSource {
    nnc_compiler::sema::ConstSource::Netcdf { path: path.into(), var: var.into() }
}

#[test]
fn netcdf_constants_read_real_files_unpacked_and_refuse_missing_values() {
    use nnc_compiler::sema::{ConstData, Loader};
    let loader = nnc_runtime::FileLoader::new(fixtures());
    let load = |path: &str, var: &str| loader.load(&netcdf_const(path, var));
    let t = load("temp_3D_classic.nc", "temperature_f32").unwrap();
    assert_eq!(t.shape, [2, 3, 5]);
    assert_eq!(t.data, ConstData::F32((0..30).map(|v| v as f32).collect()));
    // Integers that are not packed are i32 (a mask can feed an i32 constant).
    let t = load("temp_3D_64bit_offset.nc", "temperature_i16").unwrap();
    assert_eq!(t.data, ConstData::I32((0..30).collect()));
    let lat = load("example_1.nc", "lat").unwrap();
    assert_eq!((lat.shape, lat.data), (vec![5], ConstData::I32(vec![20, 30, 40, 50, 60])));
    let rh = load("example_1.nc", "rh").unwrap();
    assert_eq!(rh.shape, [1, 5, 10]);
    let scalar = load("scalar_vars.nc", "scalar_value_f64").unwrap();
    assert_eq!((scalar.shape, scalar.data), (vec![], ConstData::F32(vec![42.0])));
    // A fill value, a missing value, a value never written: errors at
    // their index, naming the file, the variable and why.
    let resolved = |f: &str| fixtures().join(f).display().to_string();
    let e = load("example_2.nc", "Temperature").unwrap_err();
    assert_eq!(
        e,
        format!(
            "variable `Temperature` of `example_2.nc` ({}) has a missing value at index [3] (the fill value \
             9999); a constant's values must be finite: fill the gaps in the file (e.g. with `cdo \
             setmisstoc,0`)",
            resolved("example_2.nc")
        )
    );
    let e = load("example_3_maskedvals.nc", "var4_missingValue").unwrap_err();
    assert!(e.contains("`var4_missingValue`") && e.contains("index [1] (the missing value 2)"), "{e}");
    let e = load("example_3_maskedvals.nc", "var7_2d").unwrap_err();
    assert!(e.contains("index [0, 0] (the fill value 1)"), "{e}");
    let e = load("example_1.nc", "temp").unwrap_err();
    assert!(e.contains("index [0, 0, 0, 0] (the fill value 9.969209968386869e36)"), "{e}");
    // A variable that is not there, text, a missing file, not NetCDF.
    let e = load("temp_3D_classic.nc", "temperature").unwrap_err();
    assert!(
        e.starts_with(&format!("cannot load `temp_3D_classic.nc` ({}): no variable `temperature` (did you mean `temperature_i8`?); the variables are `latitude`", resolved("temp_3D_classic.nc"))),
        "{e}"
    );
    let e = load("temp_3D_classic.nc", "temperature_u8").unwrap_err();
    assert!(e.ends_with("variable `temperature_u8` holds char values, not numbers"), "{e}");
    let e = load("none.nc", "lsm").unwrap_err();
    assert_eq!(e, format!("cannot read `none.nc` ({}): No such file or directory", resolved("none.nc")));
    let e = load("README.md", "lsm").unwrap_err();
    assert!(e.contains("`README.md`") && e.contains("not a NetCDF file"), "{e}");
    #[cfg(not(feature = "netcdf"))]
    {
        let e = load("lcc_km.nc", "prcp").unwrap_err();
        assert!(e.contains("`lcc_km.nc`") && e.contains("feature `netcdf`"), "{e}");
    }
    #[cfg(feature = "netcdf")]
    {
        let prcp = load("lcc_km.nc", "prcp").unwrap();
        assert_eq!((prcp.shape, prcp.data), (vec![1, 569, 619], ConstData::F32(vec![0.0; 569 * 619])));
    }
}

/// A land-sea mask `lsm` (f32 [2, 3]) and orography `orog` (shorts packed
/// as metres), written as a NetCDF-3 file.
fn write_mask(path: &Path) {
    let mut ds = DataSet::new();
    ds.add_fixed_dim("lat", 2).unwrap();
    ds.add_fixed_dim("lon", 3).unwrap();
    ds.add_var_f32("lsm", &["lat", "lon"]).unwrap();
    ds.add_var_i16("orog", &["lat", "lon"]).unwrap();
    ds.add_var_attr_f32("orog", "scale_factor", vec![2.0]).unwrap();
    ds.add_var_attr_f32("orog", "add_offset", vec![100.0]).unwrap();
    let mut writer = FileWriter::open(path).unwrap();
    writer.set_def(&ds, Version::Classic, 0).unwrap();
    writer.write_var_f32("lsm", &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0]).unwrap();
    writer.write_var_i16("orog", &[0, 5, 10, 15, 20, 25]).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_model_with_netcdf_constants_compiles_and_runs() {
    use std::collections::HashMap;

    use nnc_compiler::ir::interp::{self, Tensor};
    let dir = temp("const-model");
    write_mask(&dir.join("mask.nc"));
    let loader = nnc_runtime::FileLoader::for_model(&dir.join("m.nn"));
    let src = "model m {\n  const lsm: f32[2, 3] = netcdf(\"mask.nc\", var: \"lsm\")\n  \
               const orog: f32[2, 3] = netcdf(\"mask.nc\", var: \"orog\")\n  input x: f32[B, 2, 3]\n  \
               y = x * lsm + orog\n  output y\n}\n";
    let compiled = nnc_compiler::compile_with(src, &loader).unwrap_or_else(|d| panic!("{d:#?}"));
    let consts = &compiled.module.constants;
    assert_eq!(consts[0].origin, "netcdf(\"mask.nc\", var: \"lsm\")");
    assert_eq!(consts[1].ty.to_string(), "f32[2, 3]");
    assert_eq!(consts[0].sha256.len(), 64);
    let mut inputs: HashMap<String, Tensor<f32>> = HashMap::new();
    for c in consts {
        inputs.insert(c.name.clone(), Tensor::from_f64(&[2, 3], &c.data.to_f64()).unwrap());
    }
    let x: Vec<f64> = (0..12).map(|v| v as f64).collect();
    inputs.insert("x".into(), Tensor::from_f64(&[2, 2, 3], &x).unwrap());
    let out = interp::run::<f32>(&compiled.module.infer_graph, &inputs).unwrap();
    let Tensor::Float(y) = &out[0].1 else { panic!("a float output") };
    let lsm = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let orog = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0];
    let want: Vec<f32> = (0..12).map(|i| i as f32 * lsm[i % 6] + orog[i % 6]).collect();
    assert_eq!(y.iter().copied().collect::<Vec<_>>(), want);

    // A variable that is not in the file, and a shape other than declared:
    // errors at the constant naming the file and the variables, or both shapes.
    let errors = |src: &str| match nnc_compiler::compile_with(src, &loader) {
        Ok(_) => panic!("compiled: {src}"),
        Err(d) => d,
    };
    let wrong = src.replace("var: \"lsm\"", "var: \"lsn\"");
    let d = errors(&wrong);
    assert!(
        d[0].message.contains("no variable `lsn` (did you mean `lsm`?); the variables are `lsm`, `orog`"),
        "{d:#?}"
    );
    assert!(d[0].message.contains("`mask.nc`"), "{d:#?}");
    let at = wrong.find("netcdf(\"mask.nc\", var: \"lsn\")").unwrap();
    assert_eq!(d[0].labels[0].span.lo as usize, at, "{d:#?}");
    let d = errors(&src.replace("const lsm: f32[2, 3]", "const lsm: f32[3, 2]"));
    assert!(
        d[0].message.contains("netcdf(\"mask.nc\", var: \"lsm\") does not match the type of `lsm`"),
        "{d:#?}"
    );
    assert!(d[0].labels.iter().any(|l| l.message == "the file holds f32[2, 3]"), "{d:#?}");
    let d = errors(&src.replace("netcdf(\"mask.nc\", var: \"lsm\")", "netcdf(\"mask.nc\")"));
    assert!(d[0].message.contains("`netcdf(PATH, var: NAME)`"), "{d:#?}");
}
