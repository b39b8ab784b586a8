//! Training and inference graphs differ exactly where the language says:
//! dropout draws its mask from the counter-based generator in training and
//! is the identity in inference; batchnorm normalises with batch statistics
//! and updates its running statistics in training (PyTorch's rule), and
//! normalises with the running statistics in inference. Each mode is run in
//! the reference interpreter and compared with a computation written out
//! here in plain Rust.

mod common;

use std::collections::HashMap;

use common::{compile_ok, display_path, for_each_file, nn_files};
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{rng, Graph, InputKind, Op, OutputKind};
use nnc_compiler::Module;

type Inputs = HashMap<String, Tensor<f64>>;

fn compile(name: &str, source: &str) -> Module {
    compile_ok(std::path::Path::new(name), source)
}

fn tensor(shape: &[usize], values: &[f64]) -> Tensor<f64> {
    Tensor::from_f64(shape, values).expect("values fill the shape")
}

fn key(seed: i32, step: i32) -> Tensor<f64> {
    Tensor::Int(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2]), vec![seed, step]).expect("two words"))
}

fn floats(t: &Tensor<f64>) -> Vec<f64> {
    t.as_float().expect("a float tensor").iter().copied().collect()
}

/// Runs `graph` and returns its outputs by name.
fn run(graph: &Graph, inputs: &Inputs) -> HashMap<String, Tensor<f64>> {
    interp::run::<f64>(graph, inputs).unwrap_or_else(|e| panic!("{}: {e}", graph.name)).into_iter().collect()
}

fn prediction(graph: &Graph, outputs: &HashMap<String, Tensor<f64>>) -> Vec<f64> {
    let out = graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("a prediction output");
    floats(&outputs[&out.name])
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w}");
    }
}

// ---------------------------------------------------------------- dropout

const DROPOUT: &str = "
model drop {
  input  x: f32[B, 64]
  target y: f32[B, 64]
  h = x |> dropout(0.5)
  loss = mse(h, y)
}
";

const BATCH: usize = 4;
const WIDTH: usize = 64;

/// The keep mask `u ≥ p` of `count` elements, drawn by `threads` threads,
/// each over its own contiguous range of element indices.
fn mask_in_threads(key: [i32; 2], stream: u64, count: usize, p: f32, threads: usize) -> Vec<bool> {
    let chunk = count.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let range = (t * chunk).min(count)..((t + 1) * chunk).min(count);
                    range.map(|i| rng::uniform(key, stream, i as u64) >= p).collect::<Vec<bool>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a mask thread")).collect()
    })
}

/// Inputs of the dropout model: `x` all ones, so the prediction is the
/// scaled mask itself.
fn dropout_inputs(step: i32) -> Inputs {
    let n = BATCH * WIDTH;
    HashMap::from([
        ("x".to_string(), tensor(&[BATCH, WIDTH], &vec![1.0; n])),
        ("y".to_string(), tensor(&[BATCH, WIDTH], &vec![0.0; n])),
        ("rng".to_string(), key(11, step)),
    ])
}

#[test]
fn dropout_mask_is_counter_based_and_thread_independent() {
    let module = compile("drop.nn", DROPOUT);
    let train = &module.train_graph;
    let draws: Vec<(usize, u64)> = train
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.op {
            Op::RngUniform { stream, .. } => Some((i, stream)),
            _ => None,
        })
        .collect();
    assert_eq!(draws.len(), 1, "one rng_uniform per dropout call");
    let (draw, stream) = draws[0];
    let n = BATCH * WIDTH;
    let mut masks = vec![];
    for step in [0, 1] {
        let inputs = dropout_inputs(step);
        let values = interp::run_all::<f64>(train, &inputs).expect("the dropout model runs");
        // The interpreter's uniform numbers are the generator's, bit for bit.
        let u = floats(&values[draw]);
        for (i, &x) in u.iter().enumerate() {
            assert_eq!(x, f64::from(rng::uniform([11, step], stream, i as u64)), "step {step}, element {i}");
        }
        let predicted = prediction(train, &run(train, &inputs));
        let mut by_threads: Vec<Vec<bool>> =
            [1, 2, 4].iter().map(|&t| mask_in_threads([11, step], stream, n, 0.5, t)).collect();
        for (threads, mask) in [1, 2, 4].iter().zip(&by_threads) {
            assert_eq!(mask, &by_threads[0], "step {step}: the mask drawn by {threads} threads differs");
        }
        let want: Vec<f64> = by_threads[0].iter().map(|&keep| if keep { 2.0 } else { 0.0 }).collect();
        assert_eq!(predicted, want, "step {step}: dropout output is the scaled mask");
        let kept = by_threads[0].iter().filter(|&&k| k).count();
        assert!((n / 4..3 * n / 4).contains(&kept), "step {step}: {kept} of {n} kept with p = 0.5");
        masks.push(by_threads.swap_remove(0));
    }
    assert_ne!(masks[0], masks[1], "a different step must give a different mask");
}

#[test]
fn dropout_is_identity_in_inference() {
    let module = compile("drop.nn", DROPOUT);
    let infer = &module.infer_graph;
    let n = BATCH * WIDTH;
    let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let inputs = HashMap::from([
        ("x".to_string(), tensor(&[BATCH, WIDTH], &x)),
        ("y".to_string(), tensor(&[BATCH, WIDTH], &vec![0.0; n])),
    ]);
    assert_eq!(prediction(infer, &run(infer, &inputs)), x);
}

/// No model's inference graph draws random numbers or has a key input; the
/// dropout calls of a training graph use distinct streams.
#[test]
fn inference_graphs_have_no_randomness() {
    let mut files = nn_files("models");
    files.sort();
    for_each_file(&files, |path, source| {
        let name = display_path(path);
        let module = compile(&name, source);
        // Random tensors a model asks for (`normal(...)`, `uniform(...)`)
        // are drawn in inference too; dropout never is.
        let draws = source.contains("normal(") || source.contains("uniform(");
        for node in module.infer_graph.nodes.iter().filter(|_| !draws) {
            assert!(
                !matches!(node.op, Op::RngUniform { .. } | Op::Input { kind: InputKind::Key, .. }),
                "{name}: inference graph has `{}`",
                node.op.mnemonic()
            );
        }
        let mut streams: Vec<u64> = module
            .train_graph
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::RngUniform { stream, .. } => Some(stream),
                _ => None,
            })
            .collect();
        let count = streams.len();
        streams.sort_unstable();
        streams.dedup();
        assert_eq!(streams.len(), count, "{name}: two dropout calls share a stream");
    });
}

// ---------------------------------------------------------------- batchnorm

/// Batch 3, 2 channels, 2×2 positions: n = 12 values per channel.
const BN_SHAPE: [usize; 4] = [3, 2, 2, 2];
const EPS: f64 = 1e-5;

fn batchnorm_source(momentum: Option<f64>) -> String {
    let call = match momentum {
        Some(m) => format!("batchnorm(momentum: {m})"),
        None => "batchnorm".to_string(),
    };
    format!(
        "model bn {{
  input  x: f32[B, 2, 2, 2]
  target y: f32[B, 2, 2, 2]
  h = x |> {call}
  loss = mse(h, y)
}}
"
    )
}

/// The name of the input ending in `.suffix`.
fn input_named(graph: &Graph, suffix: &str) -> String {
    graph
        .inputs()
        .find_map(|(_, n)| match &n.op {
            Op::Input { name, .. } if name.ends_with(&format!(".{suffix}")) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no input named *.{suffix}"))
}

struct BatchNormCase {
    x: Vec<f64>,
    weight: [f64; 2],
    bias: [f64; 2],
    running_mean: [f64; 2],
    running_var: [f64; 2],
}

impl BatchNormCase {
    fn new() -> BatchNormCase {
        let n: usize = BN_SHAPE.iter().product();
        BatchNormCase {
            x: (0..n).map(|i| (i as f64 * 1.3).sin() * 2.0 + 0.5).collect(),
            weight: [1.5, -0.75],
            bias: [0.25, -1.0],
            running_mean: [0.2, -0.4],
            running_var: [1.5, 0.6],
        }
    }

    fn inputs(&self, graph: &Graph) -> Inputs {
        let n = self.x.len();
        HashMap::from([
            ("x".to_string(), tensor(&BN_SHAPE, &self.x)),
            ("y".to_string(), tensor(&BN_SHAPE, &vec![0.0; n])),
            (input_named(graph, "weight"), tensor(&[2], &self.weight)),
            (input_named(graph, "bias"), tensor(&[2], &self.bias)),
            (input_named(graph, "running_mean"), tensor(&[2], &self.running_mean)),
            (input_named(graph, "running_var"), tensor(&[2], &self.running_var)),
        ])
    }

    /// The values of channel `c`, and the channel index of every element.
    fn channel(&self, c: usize) -> Vec<f64> {
        self.x.iter().enumerate().filter(|(i, _)| self.channel_of(*i) == c).map(|(_, &v)| v).collect()
    }

    fn channel_of(&self, i: usize) -> usize {
        (i / (BN_SHAPE[2] * BN_SHAPE[3])) % BN_SHAPE[1]
    }

    /// Batch mean and biased variance per channel.
    fn moments(&self) -> [(f64, f64); 2] {
        [0, 1].map(|c| {
            let v = self.channel(c);
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            (mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n)
        })
    }

    /// `(x − mean) / sqrt(var + eps) · weight + bias` with per-channel statistics.
    fn normalise(&self, stats: [(f64, f64); 2]) -> Vec<f64> {
        (0..self.x.len())
            .map(|i| {
                let c = self.channel_of(i);
                let (mean, var) = stats[c];
                (self.x[i] - mean) / (var + EPS).sqrt() * self.weight[c] + self.bias[c]
            })
            .collect()
    }
}

#[test]
fn batchnorm_train_uses_batch_statistics_and_updates_running_ones() {
    for (momentum, source) in [(0.1, batchnorm_source(None)), (0.3, batchnorm_source(Some(0.3)))] {
        let module = compile("bn.nn", &source);
        let train = &module.train_graph;
        let case = BatchNormCase::new();
        let outputs = run(train, &case.inputs(train));
        let moments = case.moments();
        assert_close("train prediction", &prediction(train, &outputs), &case.normalise(moments));
        let n = case.channel(0).len() as f64;
        let want_mean: Vec<f64> =
            (0..2).map(|c| (1.0 - momentum) * case.running_mean[c] + momentum * moments[c].0).collect();
        let want_var: Vec<f64> = (0..2)
            .map(|c| (1.0 - momentum) * case.running_var[c] + momentum * moments[c].1 * n / (n - 1.0))
            .collect();
        for (suffix, want) in [("running_mean", want_mean), ("running_var", want_var)] {
            let name = input_named(train, suffix);
            let out = train
                .outputs
                .iter()
                .find(|o| o.name == name)
                .unwrap_or_else(|| panic!("momentum {momentum}: no state output for {name}"));
            assert_eq!(out.kind, OutputKind::State, "{name}");
            assert_close(&format!("momentum {momentum}: new {suffix}"), &floats(&outputs[&name]), &want);
        }
    }
}

#[test]
fn batchnorm_infer_uses_running_statistics() {
    let module = compile("bn.nn", &batchnorm_source(None));
    let infer = &module.infer_graph;
    assert!(infer.outputs.iter().all(|o| o.kind != OutputKind::State), "inference updates no state");
    let case = BatchNormCase::new();
    let outputs = run(infer, &case.inputs(infer));
    let running = [0, 1].map(|c| (case.running_mean[c], case.running_var[c]));
    assert_close("infer prediction", &prediction(infer, &outputs), &case.normalise(running));
}
