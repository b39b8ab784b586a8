//! `netcdf(PATH, x: ..., y: ..., dims: ...)` data sources: NetCDF-3 files
//! written here (classic and 64-bit offset) with fill values, missing
//! values, packed shorts and an unlimited time dimension, loaded for a
//! model as `nnc train` loads them; and the errors a user meets (a missing
//! file or variable, a wrong dimension order, a truncated or corrupt file,
//! a NetCDF-4 file without the `netcdf` feature). With the feature, the
//! same checks run on NetCDF-4 files written through libnetcdf.

use std::fs;
use std::path::{Path, PathBuf};

use netcdf3::{DataSet, FileWriter, Version};
use nnc_compiler::config::DataSource;
use nnc_runtime::data::{ArrayValue, Examples, Missing, Order};

mod common;
use common::try_load;

/// A fresh temporary directory for one test.
fn temp(name: &str) -> PathBuf {
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
    let _ = fs::remove_dir_all(&dir);
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
    let _ = fs::remove_dir_all(&dir);
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
    let _ = fs::remove_dir_all(&dir);
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
    let _ = fs::remove_dir_all(&dir);
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
    let _ = fs::remove_dir_all(&dir);
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
    let _ = fs::remove_dir_all(&dir);
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
