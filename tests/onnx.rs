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
use ndarray_npy::{read_npy, NpzWriter};
use nnc::cli::Cli;
use nnc_compiler::ir::{rng, DType, InputKind, Op};
use nnc_compiler::Module;
use nnc_runtime::train::checkpoint::{source_hash, Checkpoint, Fingerprint};
use nnc_runtime::train::normalize::Stats;
use nnc_runtime::train::{self, init, NamedInput, PredictOptions};

/// Examples in each compared batch.
const EXAMPLES: usize = 3;

/// The largest accepted difference between ONNX Runtime and `nnc predict`,
/// relative to the prediction's magnitude (`1 + |y|`).
const TOLERANCE: f64 = 1e-5;

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

/// Runs the ONNX model on the arrays of an `.npz` archive named like its
/// inputs and writes its output as `.npy`.
const RUN_ONNX: &str = "
import sys
import numpy as np
import onnxruntime as ort
model, x, y = sys.argv[1:4]
options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
arrays = np.load(x)
(out,) = session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})
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
/// random amounts of either sign (so biases and normalisation state are not
/// 0 and 1) and made-up normalisation statistics of its input and target.
///
/// The moves have mean zero, like the changes training makes: moving every
/// weight the same way (by `0.1·|u|`) grows the activations by about the
/// fan-in at every layer, until f32 arithmetic itself strays from exact
/// arithmetic by more than the compared tolerance (on `sst_autoencoder.nn`
/// both nnc and ONNX Runtime then differ from nnc's f64 interpreter by
/// 4e-5 and 2e-4, on `advection_warp.nn` by 1e-2 and 5e-3), and the
/// comparison measures the model's rounding, not the export.
fn checkpoint(module: &Module, source: &str, path: &Path) {
    let initial = init::initial_values(&module.train_graph, 7).expect("initial values");
    let tensors = initial
        .into_iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let noise = uniform(100 + i as u64, value.len());
            let moved: Vec<f32> =
                value.iter().zip(&noise).map(|(v, u)| v * (1.0 + 0.2 * u) + 0.1 * u).collect();
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
/// difference relative to `1 + |y|`. The ONNX model's random draws are fed
/// the numbers `nnc predict` draws: those of the key (seed, 0), as the
/// compared examples are one batch.
fn compare(python: &str, file: &str) -> f64 {
    let (path, source, module) = compile(file);
    let dir = temp_dir(file.trim_end_matches(".nn"));
    let ckpt = dir.join("model.safetensors");
    checkpoint(&module, &source, &ckpt);
    let onnx = dir.join("model.onnx");
    let (status, err) = export(&path, &ckpt, &onnx);
    assert_eq!(status, 0, "nnc export {file}: {err}");
    let needed = train::prediction_inputs(&module).expect("prediction inputs");
    let normalized = example_shape(&module, |k| matches!(k, InputKind::Data));
    let npz_path = dir.join("inputs.npz");
    let mut npz = NpzWriter::new(fs::File::create(&npz_path).expect("create inputs.npz"));
    let mut inputs = vec![];
    for (k, want) in needed.iter().enumerate() {
        let mut full = vec![EXAMPLES];
        full.extend(&want.shape);
        let per: usize = want.shape.iter().product();
        let x: Vec<f32> = match (want.dtype, &normalized) {
            // Inputs in physical units: around the made-up mean, at its scale.
            (DType::F32, Some((name, shape))) if *name == want.name => {
                let stats = stats(shape, 50);
                let inner = shape[1..].iter().product::<usize>().max(1);
                uniform(3, EXAMPLES * per)
                    .iter()
                    .enumerate()
                    .map(|(i, u)| {
                        let v = (i / inner) % stats.mean.len();
                        stats.mean[v] + stats.std[v] * u
                    })
                    .collect()
            }
            (DType::F32, _) => uniform(4 + k as u64, EXAMPLES * per),
            // Class labels and indices: small whole numbers.
            _ => (0..EXAMPLES * per).map(|i| (i % 3) as f32).collect(),
        };
        let x = ArrayD::from_shape_vec(IxDyn(&full), x).expect("input shape");
        match want.dtype {
            DType::F32 => npz.add_array(want.name.as_str(), &x).expect("write input"),
            _ => npz.add_array(want.name.as_str(), &x.mapv(|v| v as i32)).expect("write input"),
        }
        inputs.push(NamedInput { name: want.name.clone(), values: x, label: "test input".into() });
    }
    let graph = train::inference_model(&module, &ckpt, false).expect("inference model").graph;
    let seed = module.train.as_ref().map_or(0, |t| t.seed);
    let key = [rng::seed_key(seed)[0], 0];
    for node in &graph.nodes {
        if let Op::RngUniform { shape, stream } = &node.op {
            let dims: Vec<usize> = shape.dims().iter().map(|d| d.known().unwrap_or(EXAMPLES)).collect();
            let n = dims.iter().product::<usize>() as u64;
            let u: Vec<f32> = (0..n).map(|i| rng::uniform(key, *stream, i)).collect();
            let u = ArrayD::from_shape_vec(IxDyn(&dims), u).expect("draw shape");
            npz.add_array(nnc_onnx::draw_input(*stream).as_str(), &u).expect("write draw");
        }
    }
    npz.finish().expect("finish inputs.npz");
    let options = PredictOptions {
        threads: 2,
        seed: None,
        allow_changes: false,
        count: needed.is_empty().then_some(EXAMPLES),
    };
    let (expected, _) = train::predict_inputs(&module, &ckpt, &inputs, &options)
        .unwrap_or_else(|e| panic!("predict {file}: {e}"));
    let y_path = dir.join("y.npy");
    let run = Command::new(python)
        .args(["-c", RUN_ONNX, onnx.to_str().unwrap(), npz_path.to_str().unwrap(), y_path.to_str().unwrap()])
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

/// Every zoo model (its inference graph: dense, convolutions and transposed
/// convolutions, pooling, resizing, batch and layer normalisation, unrolled
/// recurrences, attention, warps, affine flows, graph gathers and scatters,
/// constants, slicing and padding, random draws fed as inputs, class
/// labels) against ONNX Runtime, with a table of the differences.
#[test]
fn every_zoo_model_matches_predict_in_onnx_runtime() {
    let Some(python) = onnx_python() else { return };
    let mut failed = vec![];
    for path in common::nn_files("models") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let diff = compare(&python, &file);
        eprintln!("{file:<28} max relative difference {diff:.2e}");
        if diff.is_nan() || diff > TOLERANCE {
            failed.push(format!("{file}: {diff:.2e}"));
        }
    }
    assert!(failed.is_empty(), "ONNX Runtime differs from nnc predict: {failed:?}");
}

/// Every zoo model exports; a model whose inference draws random numbers
/// (a GAN's generator) takes the uniform numbers of each draw as an input.
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
        if status != 0 || fs::metadata(&onnx).map_or(0, |m| m.len()) == 0 {
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
