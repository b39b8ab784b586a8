//! `nnc export`: zoo models written as ONNX and run by ONNX Runtime give
//! the predictions of `nnc predict` on the same inputs, in physical units
//! (the checkpoint's normalisation is part of the exported model).
//!
//! ONNX Runtime runs in Python: the interpreter of `NNC_ONNX_PYTHON`, else
//! `python3`, with the packages `onnxruntime` and `numpy` (`.ci/run` makes
//! such a virtual environment). Without them the comparisons are skipped
//! with a printed reason, except under `CI=true`, where they fail.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{read_npy, write_npy};
use nnc::cli::Cli;
use nnc_compiler::ir::{DType, InputKind, Op};
use nnc_compiler::Module;
use nnc_runtime::train::checkpoint::{source_hash, Checkpoint, Fingerprint};
use nnc_runtime::train::normalize::Stats;
use nnc_runtime::train::{self, init};

/// The models compared with ONNX Runtime: between them every IR op the zoo's
/// inference graphs use (dense, convolutions and transposed convolutions,
/// pooling, resizing, batch and layer normalisation, unrolled recurrences,
/// attention with its softmax, warping, affine flows,
/// graph gathers and scatter sums, constants, slicing and padding).
const COMPARED: [&str; 10] = [
    "sine.nn",
    "storm_resnet.nn",
    "conv_autoencoder.nn",
    "landsea_unet.nn",
    "nino12_lstm.nn",
    "sunspots_transformer.nn",
    "trajgru_nowcast.nn",
    "sst_ocean_mask.nn",
    "stn_mnist.nn",
    "era5_graph.nn",
];

/// Examples in each compared batch.
const EXAMPLES: usize = 3;

/// The largest accepted difference between ONNX Runtime and `nnc predict`,
/// relative to the prediction's magnitude (`1 + |y|`).
const TOLERANCE: f64 = 1e-4;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-onnx-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The Python interpreter with ONNX Runtime and numpy, or `None` (the
/// reason printed) outside CI; under `CI=true` their absence fails.
fn onnx_python() -> Option<String> {
    let python = std::env::var("NNC_ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import onnxruntime, numpy"]).output();
    let reason = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!(
            "`{python}` cannot import onnxruntime and numpy: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run `{python}`: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; .ci/run creates a virtual environment with them and sets NNC_ONNX_PYTHON");
    }
    eprintln!("skipped: {reason} (set NNC_ONNX_PYTHON to an interpreter that has them)");
    None
}

/// Runs the ONNX model on the `.npy` input and writes its output as `.npy`.
const RUN_ONNX: &str = "
import sys
import numpy as np
import onnxruntime as ort
model, x, y = sys.argv[1:4]
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
name = session.get_inputs()[0].name
(out,) = session.run(None, {name: np.load(x)})
np.save(y, out.astype(np.float32))
";

/// Uniform numbers in [-1, 1) from a small linear congruential generator.
fn uniform(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn compile(file: &str) -> (PathBuf, String, Module) {
    let path = common::root().join("models").join(file);
    let source = common::read(&path);
    let module = common::compile_ok(&path, &source);
    (path, source, module)
}

/// Shape of one example of an input or target of the inference graph.
fn example_shape(module: &Module, kind: fn(&InputKind) -> bool) -> Option<(String, Vec<usize>)> {
    module.infer_graph.inputs().find_map(|(_, n)| match &n.op {
        Op::Input { name, kind: k } if kind(k) && n.ty.dtype == DType::F32 => {
            let dims = n.ty.shape.dims()[1..].iter().map(|d| d.known().unwrap_or(1)).collect();
            Some((name.clone(), dims))
        }
        _ => None,
    })
}

/// Made-up statistics for an array of examples of `shape`: a mean and a
/// scale per variable of axis 1, far from 0 and 1 so that folding them into
/// the ONNX model is seen.
fn stats(shape: &[usize], seed: u64) -> Stats {
    let vars = shape.first().copied().unwrap_or(1);
    let u = uniform(seed, 2 * vars);
    Stats {
        mean: u[..vars].iter().map(|v| 10.0 * v).collect(),
        std: u[vars..].iter().map(|v| 2.0 + 1.5 * v).collect(),
        axis: 1,
    }
}

/// A checkpoint of `module` with its initial parameters moved by small
/// random amounts (so biases and normalisation state are not 0 and 1)
/// and made-up normalisation statistics of its input and target.
fn checkpoint(module: &Module, source: &str, path: &Path) {
    let initial = init::initial_values(&module.train_graph, 7).expect("initial values");
    let tensors = initial
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let noise = uniform(100 + i as u64, value.len());
            let moved: Vec<f32> =
                value.iter().zip(&noise).map(|(v, u)| v * (1.0 + 0.2 * u.abs()) + 0.1 * u.abs()).collect();
            (name, ArrayD::from_shape_vec(value.raw_dim(), moved).expect("same shape"))
        })
        .collect();
    let mut normalize = vec![];
    for (k, kind) in
        [|k: &InputKind| matches!(k, InputKind::Data), |k: &InputKind| matches!(k, InputKind::Target)]
            .into_iter()
            .enumerate()
    {
        if let Some((name, shape)) = example_shape(module, kind) {
            normalize.push((name, stats(&shape, 50 + k as u64)));
        }
    }
    let ckpt = Checkpoint {
        model: module.name.clone(),
        model_sha256: source_hash(source),
        written_by: None,
        fingerprint: Some(Fingerprint::of(module)),
        tensors,
        normalize,
        best: vec![],
        epoch: 1,
        step: 1,
        seed: 7,
        threads: 1,
        lr: 1e-3,
        best_val_loss: None,
        best_epoch: None,
        bad_epochs: 0,
        finished: true,
        stopped_early: false,
    };
    ckpt.save(path).expect("save checkpoint");
}

/// Runs `nnc ARGS` as the command line does; returns the status code and stderr.
fn nnc(args: &[&str]) -> (u8, String, String) {
    let cli =
        Cli::try_parse_from(std::iter::once("nnc").chain(args.iter().copied())).expect("arguments parse");
    let (mut out, mut err) = (vec![], vec![]);
    let status = nnc::run(&cli, &mut out, &mut err);
    (status.code(), String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// `nnc export MODEL --checkpoint CKPT -o ONNX`: the exit status and stderr.
fn export(model: &Path, ckpt: &Path, onnx: &Path) -> (u8, String) {
    let (status, _, err) = nnc(&[
        "export",
        model.to_str().unwrap(),
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "-o",
        onnx.to_str().unwrap(),
    ]);
    (status, err)
}

/// Exports `models/FILE` with a made-up checkpoint, runs it in ONNX
/// Runtime and `nnc predict` on the same inputs; returns the largest
/// difference relative to `1 + |y|`.
fn compare(python: &str, file: &str) -> f64 {
    let (path, source, module) = compile(file);
    let dir = temp_dir(file.trim_end_matches(".nn"));
    let ckpt = dir.join("model.safetensors");
    checkpoint(&module, &source, &ckpt);
    let onnx = dir.join("model.onnx");
    let (status, err) = export(&path, &ckpt, &onnx);
    assert_eq!(status, 0, "nnc export {file}: {err}");
    let (name, shape) = example_shape(&module, |k| matches!(k, InputKind::Data)).expect("an f32 input");
    let stats = stats(&shape, 50);
    let mut full = vec![EXAMPLES];
    full.extend(&shape);
    let per: usize = shape.iter().product();
    // Inputs in physical units: around the made-up mean, at its scale.
    let x: Vec<f32> = uniform(3, EXAMPLES * per)
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let v = (i / shape[1..].iter().product::<usize>().max(1)) % stats.mean.len();
            stats.mean[v] + stats.std[v] * u
        })
        .collect();
    let x = ArrayD::from_shape_vec(IxDyn(&full), x).expect("input shape");
    let expected =
        train::predict(&module, &ckpt, &x, &name, 2).unwrap_or_else(|e| panic!("predict {file}: {e}"));
    let (x_path, y_path) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(&x_path, &x).expect("write input");
    let run = Command::new(python)
        .args(["-c", RUN_ONNX, onnx.to_str().unwrap(), x_path.to_str().unwrap(), y_path.to_str().unwrap()])
        .output()
        .expect("run python");
    assert!(run.status.success(), "ONNX Runtime on {file}: {}", String::from_utf8_lossy(&run.stderr));
    let got: ArrayD<f32> = read_npy(&y_path).expect("read ONNX output");
    assert_eq!(got.shape(), expected.shape(), "{file}: output shapes");
    assert!(expected.iter().all(|v| v.is_finite()), "{file}: nnc predict gives non-finite values");
    let spread = expected.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
        - expected.iter().fold(f32::INFINITY, |m, &v| m.min(v));
    assert!(spread > 0.0, "{file}: a constant prediction compares nothing");
    // NaN in ONNX Runtime's output counts as an infinite difference.
    let diff = got
        .iter()
        .zip(expected.iter())
        .map(|(a, b)| {
            let d = f64::from((a - b).abs()) / (1.0 + f64::from(b.abs()));
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0.0, f64::max);
    let _ = fs::remove_dir_all(&dir);
    diff
}

#[test]
fn exported_zoo_models_match_predict_in_onnx_runtime() {
    let Some(python) = onnx_python() else { return };
    let mut failed = vec![];
    for file in COMPARED {
        let diff = compare(&python, file);
        eprintln!("{file:<28} max relative difference {diff:.2e}");
        if diff.is_nan() || diff > TOLERANCE {
            failed.push(format!("{file}: {diff:.2e}"));
        }
    }
    assert!(failed.is_empty(), "ONNX Runtime differs from nnc predict: {failed:?}");
}

/// Every zoo model that exports (all but those drawing random numbers at
/// inference) against ONNX Runtime, with a table of the differences:
/// `cargo test --test onnx -- --ignored --nocapture` (minutes).
#[test]
#[ignore = "exports and compares every zoo model (minutes)"]
fn every_exportable_zoo_model_matches_predict_in_onnx_runtime() {
    let Some(python) = onnx_python() else { return };
    let mut failed = vec![];
    for path in common::nn_files("models") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, _, module) = compile(&file);
        if module.infer_graph.nodes.iter().any(|n| matches!(n.op, Op::RngUniform { .. })) {
            eprintln!("{file:<28} not exported: draws random numbers at inference");
            continue;
        }
        let diff = compare(&python, &file);
        let open = if OPEN.contains(&file.as_str()) { "  (open: docs/export.md)" } else { "" };
        eprintln!("{file:<28} max relative difference {diff:.2e}{open}");
        if diff.is_nan() || (diff > TOLERANCE && open.is_empty()) {
            failed.push(format!("{file}: {diff:.2e}"));
        }
    }
    assert!(failed.is_empty(), "ONNX Runtime differs from nnc predict: {failed:?}");
}

/// Models whose difference from ONNX Runtime is not explained yet
/// (docs/export.md, "Accuracy").
const OPEN: [&str; 1] = ["advection_warp.nn"];

/// Every zoo model exports but those whose inference draws random numbers,
/// which are refused with an error at the draw.
#[test]
fn every_zoo_model_exports() {
    let files = common::nn_files("models");
    let mut failed = vec![];
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, source, module) = compile(&file);
        let dir = temp_dir(&format!("all-{}", file.trim_end_matches(".nn")));
        let ckpt = dir.join("model.safetensors");
        checkpoint(&module, &source, &ckpt);
        let onnx = dir.join("model.onnx");
        let (status, err) = export(path, &ckpt, &onnx);
        let draws = module.infer_graph.nodes.iter().any(|n| matches!(n.op, Op::RngUniform { .. }));
        if draws {
            if status == 0 || !err.contains("`rng_uniform` has no ONNX equivalent") {
                failed.push(format!("{file}: a random draw at inference should be refused: {err}"));
            }
        } else if status != 0 || fs::metadata(&onnx).map_or(0, |m| m.len()) == 0 {
            failed.push(format!("{file}: {err}"));
        }
        let _ = fs::remove_dir_all(&dir);
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn export_refuses_other_extensions_and_missing_checkpoints() {
    let model = common::root().join("models/sine.nn");
    let (status, _, err) =
        nnc(&["export", model.to_str().unwrap(), "--checkpoint", "x.safetensors", "-o", "m.npy"]);
    assert_eq!(status, 2);
    assert!(err.contains("-o writes an .onnx model"), "{err}");
    let dir = temp_dir("missing");
    let out = dir.join("m.onnx");
    let missing = dir.join("none.safetensors");
    let (status, _, err) = nnc(&[
        "export",
        model.to_str().unwrap(),
        "--checkpoint",
        missing.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(status, 2);
    assert!(err.contains("none.safetensors"), "{err}");
    assert!(!out.exists());
    let _ = fs::remove_dir_all(&dir);
}
