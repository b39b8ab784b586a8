//! `nnc_runtime::data::load` against compiled models: every shipped data
//! set, the synthetic generators, and CSV / npy / npz files (happy paths and
//! the errors a user meets), with fixtures written to a temporary directory.

use std::fs;
use std::path::Path;

use ndarray::{Array, ArrayD, IxDyn};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use nnc_compiler::config::datasets::{ArrayInfo, DATASETS};
use nnc_compiler::config::{DataSource, Generator};
use nnc_runtime::data::{load, ArrayValue, Examples, LoadOptions, Missing, Order, Role};

mod common;
use common::{graph, opts, try_load};

/// A fresh temporary directory for one test.
fn temp(name: &str) -> common::TempDir {
    common::temp("data", name)
}

fn ok(source: &DataSource, x: &str, y: &str, missing: Missing, base: &Path) -> Examples {
    try_load(source, x, y, missing, base).unwrap_or_else(|e| panic!("{source:?}: {e}"))
}

fn err(source: &DataSource, x: &str, y: &str, missing: Missing, base: &Path) -> String {
    match try_load(source, x, y, missing, base) {
        Ok(_) => panic!("{source:?} loaded"),
        Err(e) => e,
    }
}

fn contains_all(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "{p:?} not in: {text}");
    }
}

fn dataset(name: &str) -> DataSource {
    DataSource::Dataset { name: name.into(), task: None }
}

fn task(name: &str, task: &str) -> DataSource {
    DataSource::Dataset { name: name.into(), task: Some(task.into()) }
}

#[test]
fn every_dataset_task_loads_with_its_declared_shapes_and_units() {
    let base = Path::new(".");
    for (e, t) in DATASETS.iter().flat_map(|e| e.tasks.iter().map(move |t| (e, t))) {
        let per = |s: &[usize]| s[1..].iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
        let decl = |info: &ArrayInfo| {
            if info.shape.len() == 1 {
                format!("{}[B]", info.dtype)
            } else {
                format!("{}[B, {}]", info.dtype, per(info.shape))
            }
        };
        // Sets with missing values: the storm's whole frames and (full grid)
        // corners, the Pacific's land points.
        let missing = match (e.name, t.name) {
            ("storm_jan1996", "default") => Missing::Drop,
            ("storm_jan1996", _) | ("pacific_sst_ndjfm", "maps") => Missing::Mask,
            _ => Missing::Error,
        };
        let (source, origin) = match t.name {
            "default" => (dataset(e.name), format!("dataset(\"{}\")", e.name)),
            other => (task(e.name, other), format!("dataset(\"{}\", task: \"{other}\")", e.name)),
        };
        let ex = ok(&source, &decl(&t.x), &decl(&t.y), missing, base);
        assert_eq!(ex.origin, origin);
        assert_eq!(ex.order, t.order, "{origin}");
        assert_eq!(ex.n + ex.dropped, t.examples, "{origin}");
        let [x, y] = [&ex.fields[0], &ex.fields[1]];
        assert_eq!((x.name.as_str(), x.role, y.name.as_str(), y.role), ("x", Role::Input, "y", Role::Target));
        assert_eq!(&x.value.shape()[1..], &t.x.shape[1..], "{origin}");
        assert_eq!(&y.value.shape()[1..], &t.y.shape[1..], "{origin}");
        assert_eq!((x.unit.as_deref(), y.unit.as_deref()), (t.x.unit, t.y.unit), "{origin}");
        let names: Vec<&str> = y.variables.iter().map(String::as_str).collect();
        assert_eq!(names, t.variables, "{origin}");
    }
}

#[test]
fn datasets_reshape_and_convert_to_the_declared_types() {
    let base = Path::new(".");
    // (dataset, x, y, expected x shape, expected y shape)
    type Case = (&'static str, &'static str, &'static str, &'static [usize], &'static [usize]);
    let cases: &[Case] = &[
        ("digits", "f32[B, 64]", "i32[B]", &[1797, 64], &[1797]),
        ("digits", "f32[B, 1, 8, 8]", "i32[B]", &[1797, 1, 8, 8], &[1797]),
        ("mnist_5k", "f32[B, 1, 28, 28]", "i32[B]", &[5000, 1, 28, 28], &[5000]),
        ("mnist_5k", "f32[B, 784]", "i32[B]", &[5000, 784], &[5000]),
        ("iris", "f32[B, 4]", "f32[B, 1]", &[150, 4], &[150, 1]),
        ("stageiv_precip", "f32[B, 118, 87]", "f32[B, 1, 118, 87]", &[22, 118, 87], &[22, 1, 118, 87]),
        ("pacific_sst_ndjfm", "f32[B, 450]", "f32[B, 450]", &[50, 450], &[50, 450]),
    ];
    for &(name, x, y, xs, ys) in cases {
        let ex = ok(&dataset(name), x, y, Missing::Error, base);
        assert_eq!((ex.fields[0].value.shape(), ex.fields[1].value.shape()), (xs, ys), "{name} {x} {y}");
        assert_eq!(ex.fields[0].value.dtype().name(), &x[..3]);
        assert_eq!(ex.fields[1].value.dtype().name(), &y[..3]);
    }
    let digits = ok(&dataset("digits"), "f32[B, 64]", "i32[B]", Missing::Error, base);
    let ArrayValue::F32(px) = &digits.fields[0].value else { panic!("floats") };
    assert_eq!(px.iter().cloned().fold(0.0, f32::max), 16.0);
    let (train, valid) = digits.split(0.8);
    assert_eq!((train.len(), valid.len()), (1438, 359), "the README's IID rule");
    let stage =
        ok(&dataset("stageiv_precip"), "f32[B, 1, 118, 87]", "f32[B, 1, 118, 87]", Missing::Error, base);
    assert_eq!(stage.split(0.8).1, [17, 18, 19, 20, 21], "reference test targets are frames 18-22");
    let era5 = ok(&dataset("era5_members"), "f32[B, 2]", "f32[B, 1]", Missing::Error, base);
    assert_eq!(era5.split(0.8).0.len(), 96 * 10 * 4 * 61, "longitude columns 0-95 train");
}

#[test]
fn storm_needs_missing_drop() {
    let base = Path::new(".");
    let (x, y) = ("f32[B, 6, 33, 22]", "f32[B, 6, 33, 22]");
    let e = err(&dataset("storm_jan1996"), x, y, Missing::Error, base);
    contains_all(
        &e,
        &[
            "dataset(\"storm_jan1996\")",
            "`fields`",
            "NaN at example 17, position [1, 0, 0]",
            "missing = drop",
        ],
    );
    let ex = ok(&dataset("storm_jan1996"), x, y, Missing::Drop, base);
    assert_eq!((ex.n, ex.dropped), (58, 5));
    assert_eq!(ex.split(0.8).1.len(), 12, "the reference's last 12 pairs validate");
}

/// `missing = mask`: every example is kept, `valid` marks the finite
/// target values and binds by name, and NaN stays in `x` and `y` for the
/// trainer (which leaves it out of the statistics and feeds 0).
#[test]
fn missing_mask_binds_valid_by_name() {
    let base = Path::new(".");
    let src = "model m {\n  input x: f32[B, 6, 33, 36]\n  target dx: f32[B, 6, 33, 36]\n  \
               target valid: f32[B, 6, 33, 36]\n  z = x |> conv2d(6, kernel: 1)\n  \
               loss = mse(z, dx, weight: valid)\n}\n";
    let g = nnc_compiler::compile(src).expect("compiles").module.train_graph;
    let source = task("storm_jan1996", "increment");
    let ex = load(&source, &g, &opts(Missing::Mask, base)).expect("loads");
    assert_eq!((ex.n, ex.dropped), (63, 0));
    let names: Vec<(&str, Role, bool)> =
        ex.fields.iter().map(|f| (f.name.as_str(), f.role, f.mask)).collect();
    assert_eq!(
        names,
        [("x", Role::Input, false), ("dx", Role::Target, false), ("valid", Role::Target, true)]
    );
    let (ArrayValue::F32(dx), ArrayValue::F32(valid)) = (&ex.fields[1].value, &ex.fields[2].value) else {
        panic!("f32 fields")
    };
    for (d, v) in dx.iter().zip(valid.iter()) {
        assert_eq!(*v, if d.is_finite() { 1.0 } else { 0.0 });
    }
    // The corners (224 cells per variable and frame) and the missing frames:
    // t at 17, v at 17 and 37, v500 at 36, each missing from two changes.
    let missing = valid.iter().filter(|&&v| v == 0.0).count();
    let cells = 33 * 36;
    let frames = 2 * 4;
    assert_eq!(missing, 63 * 6 * 224 + frames * (cells - 224));
    assert_eq!(valid.iter().filter(|&&v| v == 1.0).count() + missing, valid.len());
    // The variables are named for per-variable metrics.
    assert_eq!(ex.fields[1].variables, ["p", "t", "u", "v", "u500", "v500"]);

    // Without `missing = mask` the model's `valid` cannot bind.
    let e = load(&source, &g, &opts(Missing::Error, base)).expect_err("no mask").to_string();
    contains_all(&e, &["target `valid`", "missing = mask"]);
    // A model without a target masks its input (an autoencoder on land/sea maps).
    let src = "model m {\n  input x: f32[B, 1, 18, 30]\n  target valid: f32[B, 1, 18, 30]\n  \
               z = x |> conv2d(1, kernel: 1)\n  loss = mse(z, x, weight: valid)\n}\n";
    let g = nnc_compiler::compile(src).expect("compiles").module.train_graph;
    let ex = load(&task("pacific_sst_ndjfm", "maps"), &g, &opts(Missing::Mask, base)).expect("loads");
    let ArrayValue::F32(valid) = &ex.fields[1].value else { panic!("f32 mask") };
    assert_eq!(valid.iter().filter(|&&v| v == 0.0).count(), 50 * 90, "the land points of every winter");
}

#[test]
fn wrong_shapes_and_bindings_are_named() {
    let base = Path::new(".");
    let e = err(&dataset("digits"), "f32[B, 65]", "i32[B]", Missing::Error, base);
    contains_all(
        &e,
        &["dataset(\"digits\")", "`images`", "[1797, 8, 8]", "f32[B, 65]", "64 values", "65 values"],
    );
    let e = err(&dataset("co2_mauna_loa"), "f32[B, 6]", "i32[B]", Missing::Error, base);
    contains_all(&e, &["`co2_ppmv`", "316.1", "example 0", "whole numbers"]);
    let src = "model m {\n  input a: f32[B, 4]\n  input b: f32[B, 4]\n  target y: i32[B]\n  \
               z = concat(a, b, axis: 1) |> dense(3)\n  loss = cross_entropy(z, y)\n}\n";
    let g = nnc_compiler::compile(src).expect("compiles").module.train_graph;
    let e = load(&dataset("iris"), &g, &opts(Missing::Error, base)).expect_err("two inputs").to_string();
    contains_all(&e, &["2 inputs", "`a`", "`b`"]);
}

#[test]
fn two_inputs_bind_by_name() {
    // A conditional generator reads the images and the labels as inputs.
    let base = Path::new(".");
    let src = "model m {\n  input x: f32[B, 64]\n  input y: i32[B]\n  \
               z = concat(x, y |> embedding(10, 4), axis: 1) |> dense(1)\n  loss = mean(z)\n}\n";
    let g = nnc_compiler::compile(src).expect("compiles").module.train_graph;
    let ex = load(&dataset("digits"), &g, &opts(Missing::Error, base)).expect("binds by name");
    let fields: Vec<(&str, Role)> = ex.fields.iter().map(|f| (f.name.as_str(), f.role)).collect();
    assert_eq!(fields, [("x", Role::Input), ("y", Role::Input)]);
    assert_eq!(ex.fields[0].value.shape(), &[1797, 64]);
    let ArrayValue::I32(labels) = &ex.fields[1].value else { panic!("i32 labels") };
    assert_eq!(labels.shape(), &[1797]);
    assert!(labels.iter().all(|d| (0..10).contains(d)));
    // The input declared first need not be `x`.
    let swapped =
        src.replace("input x: f32[B, 64]\n  input y: i32[B]", "input y: i32[B]\n  input x: f32[B, 64]");
    let g = nnc_compiler::compile(&swapped).expect("compiles").module.train_graph;
    let ex = load(&dataset("digits"), &g, &opts(Missing::Error, base)).expect("binds by name");
    assert_eq!((ex.fields[0].name.as_str(), ex.fields[1].name.as_str()), ("x", "y"));
    // A target besides the two inputs has no array left.
    let src = "model m {\n  input x: f32[B, 64]\n  input y: i32[B]\n  target t: i32[B]\n  \
               z = concat(x, y |> embedding(10, 4), axis: 1) |> dense(10)\n  loss = cross_entropy(z, t)\n}\n";
    let g = nnc_compiler::compile(src).expect("compiles").module.train_graph;
    let e = load(&dataset("digits"), &g, &opts(Missing::Error, base)).expect_err("no array for t");
    assert_eq!(e.binding.as_deref(), Some("t"));
    contains_all(&e.to_string(), &["`x`, `y`", "no array is left for target `t`"]);
}

#[test]
fn distorted_images_move_reproducibly_and_keep_their_labels() {
    use nnc_compiler::config::Distortion;
    let base = Path::new(".");
    let distort = |rotate, shift| DataSource::Distort {
        source: Box::new(dataset("digits")),
        distortion: Distortion { rotate, shift },
    };
    let plain = ok(&dataset("digits"), "f32[B, 1, 8, 8]", "i32[B]", Missing::Error, base);
    // No motion: the images as they were.
    let still = ok(&distort(0.0, 0.0), "f32[B, 1, 8, 8]", "i32[B]", Missing::Error, base);
    assert_eq!(still.fields, plain.fields);
    assert_eq!(still.origin, "distort(dataset(\"digits\"), rotate: 0, shift: 0)");
    assert_eq!(still.order, Order::Iid);
    let moved = ok(&distort(45.0, 0.25), "f32[B, 1, 8, 8]", "i32[B]", Missing::Error, base);
    let again = ok(&distort(45.0, 0.25), "f32[B, 1, 8, 8]", "i32[B]", Missing::Error, base);
    assert_eq!(moved, again, "the same seed draws the same motions");
    assert_eq!(moved.fields[1], plain.fields[1], "the labels stay");
    let (ArrayValue::F32(a), ArrayValue::F32(b)) = (&moved.fields[0].value, &plain.fields[0].value) else {
        panic!("f32 images")
    };
    assert_eq!(a.shape(), b.shape());
    let per = 64;
    let (a, b): (Vec<f32>, Vec<f32>) = (a.iter().copied().collect(), b.iter().copied().collect());
    let changed = a.chunks(per).zip(b.chunks(per)).filter(|(x, y)| x != y).count();
    assert!(changed > 1700, "{changed} of 1797 images moved");
    // Bilinear interpolation stays within the pixels' range.
    assert!(a.iter().all(|v| (0.0..=16.0).contains(v)));
    let other_seed = load(
        &distort(45.0, 0.25),
        &graph("f32[B, 1, 8, 8]", "i32[B]"),
        &LoadOptions { seed: 1, missing: Missing::Error, base_dir: base },
    )
    .expect("loads");
    assert_ne!(other_seed.fields[0], moved.fields[0], "another seed draws other motions");
    // A source without rows and columns is refused.
    let iris = DataSource::Distort {
        source: Box::new(dataset("iris")),
        distortion: Distortion { rotate: 10.0, shift: 0.0 },
    };
    let e = err(&iris, "f32[B, 4]", "i32[B]", Missing::Error, base);
    contains_all(&e, &["distort(dataset(\"iris\")", "[150, 4]", "last two axes are rows and columns"]);
}

#[test]
fn synthetic_sources_bind_to_the_zoo_models() {
    let src =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/resunet.nn")).expect("zoo");
    let module = nnc_compiler::compile(&src).expect("resunet compiles").module;
    let data = DataSource::Synthetic { generator: Generator::Eddies { n: 8, size: 32 } };
    let ex = load(&data, &module.train_graph, &opts(Missing::Error, Path::new("."))).expect("eddies bind");
    assert_eq!((ex.fields[0].name.as_str(), ex.fields[1].name.as_str()), ("ssh", "mask"));
    assert_eq!(ex.fields[1].value.shape(), &[8, 3, 32, 32]);
    assert_eq!((ex.order, ex.origin.as_str()), (Order::Iid, "synthetic.eddies(n: 8, size: 32)"));
    assert_eq!(ex.fields[0].unit.as_deref(), Some("m"));
    let sine = DataSource::Synthetic { generator: Generator::Sine { n: 10, noise: 0.0 } };
    let e = err(&sine, "f32[B, 2]", "f32[B, 1]", Missing::Error, Path::new("."));
    contains_all(&e, &["synthetic.sine(n: 10, noise: 0)", "[10, 1]", "f32[B, 2]"]);
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).expect("write fixture");
}

fn csv(path: &str, x: &[&str], y: &[&str]) -> DataSource {
    DataSource::Csv {
        path: path.into(),
        x: x.iter().map(|s| s.to_string()).collect(),
        y: y.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn csv_files() {
    let dir = temp("csv");
    write(&dir, "ok.csv", "a,b,label,t\n1,2,0,0.5\n3,4,1,1.5\n5,6,2,2.5\n");
    write(&dir, "nan.csv", "a,b,t\n1,2,0.5\n3,NaN,1.5\n5,6,\n7,8,1\n");
    write(&dir, "short.csv", "a,b,t\n1,2,0.5\n3,4\n");
    write(&dir, "text.csv", "a,b,t\n1,x,0.5\n");
    let ex = ok(&csv("ok.csv", &["a", "b"], &["label"]), "f32[B, 2]", "i32[B]", Missing::Error, &dir);
    assert_eq!(ex.n, 3);
    assert_eq!(ex.fields[1].value, ArrayValue::I32(Array::from_vec(vec![0, 1, 2]).into_dyn()));
    assert_eq!(ex.origin, dir.join("ok.csv").display().to_string());
    let ex = ok(&csv("ok.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    let ArrayValue::F32(t) = &ex.fields[1].value else { panic!("floats") };
    assert_eq!(t.iter().copied().collect::<Vec<_>>(), [0.5, 1.5, 2.5]);
    let abs = dir.join("ok.csv").display().to_string();
    ok(&csv(&abs, &["a", "b"], &["t"]), "f32[B, 2]", "f32[B]", Missing::Error, Path::new("/"));

    // (source, x, y, missing, expected parts of the message)
    let cases: Vec<(DataSource, &str, &str, Missing, Vec<&str>)> = vec![
        (
            csv("none.csv", &["a"], &["t"]),
            "f32[B, 1]",
            "f32[B, 1]",
            Missing::Error,
            vec!["none.csv", "cannot read"],
        ),
        (
            csv("ok.csv", &["a", "c"], &["t"]),
            "f32[B, 2]",
            "f32[B, 1]",
            Missing::Error,
            vec!["ok.csv", "no column `c`", "`a`, `b`, `label`, `t`"],
        ),
        (
            csv("ok.csv", &["a", "b"], &["t"]),
            "f32[B, 3]",
            "f32[B, 1]",
            Missing::Error,
            vec!["[a, b]", "[3, 2]", "f32[B, 3]"],
        ),
        (
            csv("ok.csv", &["a", "b"], &["t"]),
            "f32[B, 2]",
            "i32[B]",
            Missing::Error,
            vec!["`t`", "0.5", "example 0"],
        ),
        (
            csv("nan.csv", &["a", "b"], &["t"]),
            "f32[B, 2]",
            "f32[B, 1]",
            Missing::Error,
            vec!["nan.csv", "NaN at example 1, position [1]", "missing = drop"],
        ),
        (
            csv("short.csv", &["a"], &["t"]),
            "f32[B, 1]",
            "f32[B, 1]",
            Missing::Error,
            vec!["short.csv", "line 3"],
        ),
        (
            csv("text.csv", &["a", "b"], &["t"]),
            "f32[B, 2]",
            "f32[B, 1]",
            Missing::Error,
            vec!["`x` is not a number"],
        ),
    ];
    for (source, x, y, missing, parts) in cases {
        contains_all(&err(&source, x, y, missing, &dir), &parts);
    }
    let ex = ok(&csv("nan.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Drop, &dir);
    assert_eq!((ex.n, ex.dropped), (2, 2));
    let ArrayValue::F32(a) = &ex.fields[0].value else { panic!("floats") };
    assert_eq!(a.iter().copied().collect::<Vec<_>>(), [1.0, 2.0, 7.0, 8.0]);
}

fn npy_file(dir: &Path, name: &str, a: &ArrayD<f64>) {
    let f = fs::File::create(dir.join(name)).expect("create");
    a.write_npy(f).expect("write npy");
}

#[test]
fn npy_files() {
    let dir = temp("npy");
    let images = ArrayD::from_shape_fn(IxDyn(&[5, 4, 4]), |i| (i[0] * 16 + i[1] * 4 + i[2]) as f64);
    npy_file(&dir, "x.npy", &images);
    let labels: ArrayD<u8> = Array::from_vec(vec![0u8, 1, 2, 1, 0]).into_dyn();
    labels.write_npy(fs::File::create(dir.join("y.npy")).expect("create")).expect("write");
    let mut bad = images.clone();
    bad[[3, 2, 1]] = f64::NAN;
    npy_file(&dir, "bad.npy", &bad);
    npy_file(&dir, "frac.npy", &Array::from_vec(vec![1.0, 0.5, 2.0, 3.0, 4.0]).into_dyn());
    let bytes = fs::read(dir.join("x.npy")).expect("read");
    fs::write(dir.join("trunc.npy"), &bytes[..bytes.len() - 10]).expect("write");
    fs::write(dir.join("junk.npy"), b"not an array").expect("write");
    let npy = |x: &str, y: &str| DataSource::Npy { x: x.into(), y: y.into() };

    let ex = ok(&npy("x.npy", "y.npy"), "f32[B, 1, 4, 4]", "i32[B]", Missing::Error, &dir);
    assert_eq!(ex.fields[0].value.shape(), &[5, 1, 4, 4]);
    assert_eq!(ex.fields[1].value, ArrayValue::I32(Array::from_vec(vec![0, 1, 2, 1, 0]).into_dyn()));
    let ex = ok(&npy("bad.npy", "y.npy"), "f32[B, 16]", "f32[B]", Missing::Drop, &dir);
    assert_eq!((ex.n, ex.dropped), (4, 1));

    let cases: Vec<(DataSource, &str, Vec<&str>)> = vec![
        (npy("missing.npy", "y.npy"), "f32[B, 16]", vec!["missing.npy", "cannot read"]),
        (npy("trunc.npy", "y.npy"), "f32[B, 16]", vec!["trunc.npy", "truncated"]),
        (npy("junk.npy", "y.npy"), "f32[B, 16]", vec!["junk.npy", "not a valid .npy"]),
        (npy("x.npy", "y.npy"), "f32[B, 15]", vec!["x.npy", "[5, 4, 4]", "f32[B, 15]"]),
        (npy("bad.npy", "y.npy"), "f32[B, 16]", vec!["bad.npy", "NaN at example 3, position [2, 1]"]),
        (npy("x.npy", "frac.npy"), "f32[B, 16]", vec!["frac.npy", "0.5 at example 1", "whole numbers"]),
    ];
    for (source, x, parts) in cases {
        contains_all(&err(&source, x, "i32[B]", Missing::Error, &dir), &parts);
    }
    let e = err(&npy("x.npy", "y6.npy"), "f32[B, 16]", "i32[B]", Missing::Error, &dir);
    contains_all(&e, &["y6.npy", "cannot read"]);
}

#[test]
fn npz_files() {
    let dir = temp("npz");
    let path = dir.join("d.npz");
    let mut w = NpzWriter::new_compressed(fs::File::create(&path).expect("create"));
    let x = ArrayD::from_shape_fn(IxDyn(&[6, 3]), |i| (i[0] + i[1]) as f32);
    let mut y = ArrayD::from_shape_fn(IxDyn(&[6]), |i| i[0] as f32 * 0.5);
    w.add_array("inputs", &x).expect("add");
    w.add_array("targets", &y).expect("add");
    y[[2]] = f32::INFINITY;
    w.add_array("bad_targets", &y).expect("add");
    w.finish().expect("finish");
    let bytes = fs::read(&path).expect("read");
    fs::write(dir.join("trunc.npz"), &bytes[..bytes.len() / 2]).expect("write");
    let npz = |p: &str, x: &str, y: &str| DataSource::Npz { path: p.into(), x: x.into(), y: y.into() };

    let ex = ok(&npz("d.npz", "inputs", "targets"), "f32[B, 3]", "f32[B, 1]", Missing::Error, &dir);
    assert_eq!((ex.n, ex.fields[0].value.shape()), (6, &[6usize, 3][..]));
    let ex = ok(&npz("d.npz", "inputs", "bad_targets"), "f32[B, 3]", "f32[B]", Missing::Drop, &dir);
    assert_eq!((ex.n, ex.dropped), (5, 1));

    let cases: Vec<(DataSource, Vec<&str>)> = vec![
        (npz("none.npz", "inputs", "targets"), vec!["none.npz", "cannot read"]),
        (npz("trunc.npz", "inputs", "targets"), vec!["trunc.npz", "not a valid .npz"]),
        (
            npz("d.npz", "input", "targets"),
            vec!["d.npz", "no array `input`", "`bad_targets`", "`inputs`", "`targets`"],
        ),
        (
            npz("d.npz", "inputs", "bad_targets"),
            vec!["d.npz", "`bad_targets`", "an infinite value at example 2, position []"],
        ),
    ];
    for (source, parts) in cases {
        contains_all(&err(&source, "f32[B, 3]", "f32[B]", Missing::Error, &dir), &parts);
    }
}

/// Loads `source` for the model with input `x: X` and target `y: Y`,
/// expecting an error.
fn load_error(source: &DataSource, x: &str, y: &str, base: &Path) -> nnc_runtime::data::LoadError {
    match load(source, &graph(x, y), &opts(Missing::Error, base)) {
        Ok(_) => panic!("{source:?} loaded"),
        Err(e) => e,
    }
}

#[test]
fn empty_files_have_no_data_rows() {
    let dir = temp("empty");
    write(&dir, "header.csv", "a,b,t\n");
    let e = err(&csv("header.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    assert_eq!(e, format!("{}: no data rows", dir.join("header.csv").display()));
    npy_file(&dir, "x0.npy", &ArrayD::zeros(IxDyn(&[0, 3])));
    npy_file(&dir, "y0.npy", &ArrayD::zeros(IxDyn(&[0])));
    npy_file(&dir, "y5.npy", &ArrayD::zeros(IxDyn(&[5])));
    let npy = |x: &str, y: &str| DataSource::Npy { x: x.into(), y: y.into() };
    let e = err(&npy("x0.npy", "y0.npy"), "f32[B, 3]", "f32[B]", Missing::Error, &dir);
    contains_all(&e, &["x0.npy: array `x` has no examples (shape [0, 3])"]);
    assert!(!e.contains("NaN"), "{e}");
    let e = err(&npy("x0.npy", "y5.npy"), "f32[B, 3]", "f32[B]", Missing::Drop, &dir);
    contains_all(&e, &["x0.npy: array `x` has no examples"]);
    let path = dir.join("empty.npz");
    let mut w = NpzWriter::new(fs::File::create(&path).expect("create"));
    w.add_array("inputs", &ArrayD::<f32>::zeros(IxDyn(&[0, 3]))).expect("add");
    w.add_array("targets", &ArrayD::<f32>::zeros(IxDyn(&[0]))).expect("add");
    w.finish().expect("finish");
    let npz = DataSource::Npz { path: "empty.npz".into(), x: "inputs".into(), y: "targets".into() };
    let e = err(&npz, "f32[B, 3]", "f32[B]", Missing::Error, &dir);
    contains_all(&e, &["empty.npz: array `inputs` has no examples (shape [0, 3])"]);
}

#[test]
fn csv_missing_cells_are_named_by_line_and_column() {
    let dir = temp("cells");
    // A blank line (3) is skipped; line numbers stay those of the file.
    write(&dir, "gap.csv", "a,b,t\n1,2,0.5\n\n3,,1.5\n5,NaN,2\n7,8,\n");
    let source = csv("gap.csv", &["a", "b"], &["t"]);
    let e = err(&source, "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    contains_all(
        &e,
        &[
            "gap.csv: line 4, column `b`: empty cell (a missing value of input `x`)",
            "missing = drop",
            "missing = mask",
        ],
    );
    write(&dir, "nan.csv", "a,b,t\n1,2,0.5\n3,NaN,1.5\n");
    let e = err(&csv("nan.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    contains_all(&e, &["NaN at example 1, position [1] (line 3, column `b`)"]);
    write(&dir, "ty.csv", "a,b,t\n1,2,0.5\n3,4,\n");
    let e = err(&csv("ty.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    contains_all(&e, &["line 3, column `t`: empty cell (a missing value of target `y`)"]);
    // With `missing = drop` empty cells are missing values like NaN.
    let ex = ok(&source, "f32[B, 2]", "f32[B, 1]", Missing::Drop, &dir);
    assert_eq!((ex.n, ex.dropped), (1, 3));
    // Other errors name the line of the file too.
    write(&dir, "text.csv", "a,b,t\n\n1,x,0.5\n");
    let e = err(&csv("text.csv", &["a", "b"], &["t"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    contains_all(&e, &["line 3, column `b`: `x` is not a number"]);
}

#[test]
fn misspelt_columns_get_a_suggestion() {
    let dir = temp("columns");
    write(&dir, "obs.csv", "day,t2m,u10,precipitation\n1,2,3,4\n");
    let e = err(
        &csv("obs.csv", &["t2n", "u10"], &["precipitation"]),
        "f32[B, 2]",
        "f32[B, 1]",
        Missing::Error,
        &dir,
    );
    contains_all(
        &e,
        &["no column `t2n` (did you mean `t2m`?); the columns are `day`, `t2m`, `u10`, `precipitation`"],
    );
    let e =
        err(&csv("obs.csv", &["t2m", "u10"], &["precip"]), "f32[B, 2]", "f32[B, 1]", Missing::Error, &dir);
    contains_all(&e, &["no column `precip`; the columns are"]);
    let e = load_error(&csv("obs.csv", &["t2m", "u10"], &["Precipitaton"]), "f32[B, 2]", "f32[B, 1]", &dir);
    assert!(e.to_string().contains("did you mean `precipitation`?"), "{e}");
    assert_eq!(e.binding, None, "a column is not a model input");
}

#[test]
fn csv_columns_name_the_variables() {
    let dir = temp("variables");
    write(&dir, "obs.csv", "t2m,u10,v10,p\n1,2,3,4\n5,6,7,8\n");
    let ex =
        ok(&csv("obs.csv", &["t2m", "u10"], &["v10", "p"]), "f32[B, 2]", "f32[B, 2]", Missing::Error, &dir);
    assert_eq!(ex.fields[0].variables, ["t2m", "u10"]);
    assert_eq!(ex.fields[1].variables, ["v10", "p"]);
    let ex = ok(&csv("obs.csv", &["t2m"], &["p"]), "f32[B, 1]", "f32[B, 1]", Missing::Error, &dir);
    assert_eq!(ex.fields[1].variables, ["p"]);
}

#[test]
fn shape_errors_name_the_binding_and_a_declaration_that_fits() {
    let dir = temp("binding");
    write(&dir, "obs.csv", "a,b,c,t\n1,2,3,4\n5,6,7,8\n");
    let e = load_error(&csv("obs.csv", &["a", "b", "c"], &["t"]), "f32[B, 4]", "f32[B, 1]", &dir);
    assert_eq!(e.binding.as_deref(), Some("x"));
    contains_all(&e.to_string(), &["obs.csv", "[a, b, c]", "[2, 3]", "f32[B, 4]"]);
    assert_eq!(
        e.help.as_deref(),
        Some("declare `input x: f32[B, 3]` to take the 3 selected columns as they are, or select 4 columns for `x`")
    );
    let e = load_error(&csv("obs.csv", &["a"], &["t", "c"]), "f32[B, 1]", "f32[B, 1]", &dir);
    assert_eq!(e.binding.as_deref(), Some("y"));
    assert_eq!(
        e.help.as_deref(),
        Some("declare `target y: f32[B, 2]` to take the 2 selected columns as they are, or select 1 column for `y`")
    );
    let e = load_error(&dataset("digits"), "f32[B, 65]", "i32[B]", Path::new("."));
    assert_eq!(e.binding.as_deref(), Some("x"));
    assert_eq!(
        e.help.as_deref(),
        Some("declare `input x: f32[B, 8, 8]` to take the data as they are (64 values per example)")
    );
    // Element types and declarations name their binding too; missing values
    // and unreadable files do not.
    let e = load_error(&dataset("co2_mauna_loa"), "f32[B, 6]", "i32[B]", Path::new("."));
    assert_eq!((e.binding.as_deref(), e.help.as_deref()), (Some("y"), None));
    let e = load_error(&csv("none.csv", &["a"], &["t"]), "f32[B, 1]", "f32[B, 1]", &dir);
    assert_eq!(e.binding, None);
}

#[test]
fn chronological_split_takes_the_file_order() {
    use nnc_compiler::config::{Split, SplitRule};
    let dir = temp("split");
    let rows: String = (0..10).map(|i| format!("{i},{}\n", i * 2)).collect();
    write(&dir, "series.csv", &format!("day,v\n{rows}"));
    let ex = ok(&csv("series.csv", &["day"], &["v"]), "f32[B, 1]", "f32[B, 1]", Missing::Error, &dir);
    assert_eq!(ex.order, Order::Iid, "files are split as independent rows by default");
    assert_eq!(ex.split(0.8).1, [4, 9]);
    assert_eq!(ex.split(Split::by_source(0.8)), ex.split(0.8));
    let chrono = Split { fraction: 0.8, rule: SplitRule::Chronological };
    assert_eq!(ex.split(chrono), ((0..8).collect(), vec![8, 9]));
    let chrono = Split { fraction: 0.75, rule: SplitRule::Chronological };
    assert_eq!(ex.split(chrono).1, [7, 8, 9]);
    // A time-ordered source is chronological either way.
    let nile = ok(&dataset("nile"), "f32[B, 5]", "f32[B, 1]", Missing::Error, Path::new("."));
    let chrono = Split { fraction: 0.8, rule: SplitRule::Chronological };
    assert_eq!(nile.split(0.8), nile.split(chrono));
}
