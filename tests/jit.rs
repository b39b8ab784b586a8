//! Compiled models against the reference interpreter, and determinism.
//!
//! Every model of `models/` (and `models/bench/`) is compiled three ways —
//! the optimised training step, the gradient graph and the optimised
//! inference graph — at batch 1 and odd batch sizes (large models, the
//! benchmarks and the gridded earth-science models, at batch 2), and run by the
//! executable with 1 and 2 threads and in the checked mode, where every generated access is
//! bounds-checked. Each output must equal the interpreter's, run in f64 on
//! the same f32 inputs, within `1e-5 · scale`: summation orders differ
//! (vector lanes, GEMM blocking), so equality is relative to the tensor, not
//! per element. Where f32 arithmetic itself cannot reach that (a gradient
//! that is a small difference of large sums, deep in a residual network),
//! the output may differ by up to four times the error of the interpreter
//! run in f32, the error any f32 evaluation of the graph has. The
//! scale is the largest magnitude of the interpreter's tensor, floored at
//! `1e-2 · G` (G: the largest magnitude of any output of the run) and 1e-6,
//! so a tensor whose true value is zero — the bias gradient of a convolution
//! followed by batchnorm is rounding noise around 0 — is not held to an
//! error relative to that noise.
//! Integer and boolean outputs must be equal.
//!
//! Updated parameters of a training step get an absolute slack of 2·lr on
//! top: Adam's first step divides each gradient element by its own
//! magnitude plus eps (1e-8), so where the true gradient is zero (a bias
//! before batchnorm) or comparable to eps, rounding noise decides the
//! update, which can then lie anywhere in ±lr. The gradients themselves are
//! held to 1e-5 in the gradient graphs and in the optimiser state outputs;
//! the update formulas are checked exactly in the optimiser's own tests.
//!
//! Determinism: two executables with the same seed and thread count run 20
//! training steps each at batch 6 (large models: 4 steps at batch 2),
//! parameters and optimiser state carried from step to step, and must end
//! with bit-identical parameters.
//!
//! The interpreter runs once per graph and batch size; the tests of the
//! thread counts and of the checked mode share its results.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use common::{compile_ok, display_path, nn_files, read};
use nnc::bench::feed_synthetic;
use nnc_compiler::codegen::Checking;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{Dim, Graph, InputKind, Op, OutputKind};
use nnc_compiler::plan::conv::ConvAlgorithm;
use nnc_runtime::exec::{Executable, Gemm, Options};

const TOLERANCE: f64 = 1e-5;
/// How many times the f32 interpreter's own error an output may have.
const F32_FACTOR: f64 = 4.0;

fn models() -> Vec<std::path::PathBuf> {
    let mut files = nn_files("models");
    files.extend(nn_files("models/bench"));
    files
}

/// The largest difference of `got` from `want` beyond `slack`, relative to
/// `want`'s scale.
fn error(want: &Tensor<f32>, got: &Tensor<f32>, slack: f64, floor: f64) -> Result<f64, String> {
    match (want, got) {
        (Tensor::Float(w), Tensor::Float(g)) => {
            if w.shape() != g.shape() {
                return Err(format!("shape {:?}, expected {:?}", g.shape(), w.shape()));
            }
            let scale = w.iter().fold(floor.max(1e-6), |m, &x| m.max(f64::from(x).abs()));
            let mut worst = 0.0f64;
            for (&a, &b) in w.iter().zip(g.iter()) {
                if a.is_nan() != b.is_nan() {
                    return Err(format!("NaN mismatch ({a} vs {b})"));
                }
                if !a.is_nan() {
                    let diff = ((f64::from(a) - f64::from(b)).abs() - slack).max(0.0);
                    worst = worst.max(diff / scale);
                }
            }
            Ok(worst)
        }
        (Tensor::Int(w), Tensor::Int(g)) if w == g => Ok(0.0),
        (Tensor::Bool(w), Tensor::Bool(g)) if w == g => Ok(0.0),
        _ => Err(format!("{} differs from the expected {}", got.ty(), want.ty())),
    }
}

/// The interpreter's side of a comparison: the example inputs, the outputs
/// of the f64 reference run on them, and those of the f32 run.
struct Reference {
    inputs: HashMap<String, Tensor<f32>>,
    want: Vec<(String, Tensor<f32>)>,
    narrow: HashMap<String, Tensor<f32>>,
}

type Shared = Arc<OnceLock<Result<Reference, String>>>;

/// The reference of graph `key` at `batch`, computed once per test run:
/// the tests of the thread counts and of the checked mode compare their
/// executables with the same interpreter runs (they run concurrently; the
/// first to ask computes, the others wait for it).
fn reference(key: &str, graph: &Graph, batch: usize) -> Shared {
    static CACHE: OnceLock<Mutex<HashMap<(String, usize), Shared>>> = OnceLock::new();
    let shared = {
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        cache.entry((key.to_string(), batch)).or_default().clone()
    };
    shared.get_or_init(|| interpret(graph, batch));
    shared
}

fn interpret(graph: &Graph, batch: usize) -> Result<Reference, String> {
    let dims = nnc_compiler::pipeline::batch_dims(graph, batch);
    let inputs =
        interp::example_inputs::<f32>(graph, &dims, 11).map_err(|e| format!("example inputs: {e}"))?;
    // The reference runs in f64 on the same (f32) inputs; the interpreter in
    // f32 shows how far any f32 evaluation of this graph strays from it.
    let wide: HashMap<String, Tensor<f64>> = inputs.iter().map(|(n, t)| (n.clone(), t.convert())).collect();
    let want = interp::run::<f64>(graph, &wide).map_err(|e| format!("interpreter: {e}"))?;
    let want = want.into_iter().map(|(n, t)| (n, t.convert())).collect();
    let narrow = interp::run::<f32>(graph, &inputs).map_err(|e| format!("interpreter (f32): {e}"))?;
    Ok(Reference { inputs, want, narrow: narrow.into_iter().collect() })
}

/// Runs graph `key` in the interpreter and the executable and returns every
/// mismatch.
fn compare(
    key: &str,
    what: &str,
    graph: &Graph,
    batch: usize,
    threads: usize,
    checking: Checking,
) -> Vec<String> {
    let shared = reference(key, graph, batch);
    let Reference { inputs, want, narrow } = match shared.get() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return vec![format!("{what}: {e}")],
        None => return vec![format!("{what}: no reference")],
    };
    let options = Options { threads, checking, gemm: Gemm::Tuned };
    let mut exe = match Executable::compile(graph, batch, &options) {
        Ok(e) => e,
        Err(e) => return vec![format!("{what}: compile: {e}")],
    };
    for (name, value) in inputs {
        if let Err(e) = exe.set_input(name, value) {
            return vec![format!("{what}: input {name}: {e}")];
        }
    }
    if let Err(e) = exe.run() {
        return vec![format!("{what}: run: {e}")];
    }
    let got: HashMap<String, (OutputKind, Tensor<f32>)> =
        exe.outputs().into_iter().map(|(n, k, t)| (n, (k, t))).collect();
    let lr = match inputs.get("lr") {
        Some(Tensor::Float(a)) => a.iter().next().map_or(0.0, |&x| f64::from(x)),
        _ => 0.0,
    };
    let largest = want
        .iter()
        .filter_map(|(_, t)| t.as_float())
        .flat_map(|a| a.iter())
        .fold(0.0f64, |m, &x| if x.is_finite() { m.max(f64::from(x).abs()) } else { m });
    let mut failures = vec![];
    for (name, w) in want {
        let slack = |kind: OutputKind| if kind == OutputKind::Param { 2.0 * lr } else { 0.0 };
        let check = |(kind, g): &(OutputKind, Tensor<f32>)| error(w, g, slack(*kind), 1e-2 * largest);
        // An output that f32 arithmetic cannot get within TOLERANCE (a
        // gradient that is a small difference of large sums) may stray up to
        // F32_FACTOR times as far as the f32 interpreter does.
        let kind = got.get(name).map_or(OutputKind::Other, |(k, _)| *k);
        let inherent =
            narrow.get(name).and_then(|n| error(w, n, slack(kind), 1e-2 * largest).ok()).unwrap_or(0.0);
        let allowed = TOLERANCE.max(F32_FACTOR * inherent);
        match got.get(name).map(check) {
            None => failures.push(format!("{what}: output `{name}` missing")),
            Some(Err(e)) => failures.push(format!("{what}: output `{name}`: {e}")),
            Some(Ok(e)) if e > allowed => failures.push(format!(
                "{what}: output `{name}`: error {e:.2e} > {allowed:.2e} (the f32 interpreter's is {inherent:.2e})"
            )),
            Some(Ok(_)) => {}
        }
    }
    failures
}

/// The graphs of a model file: per training step (one per optimiser) the
/// optimised step and its gradient graph, and the inference graph.
fn graphs(path: &Path) -> Vec<(String, Graph)> {
    let module = compile_ok(path, &read(path));
    let name = display_path(path);
    let steps = nnc_compiler::pipeline::optimized_steps(&module).expect("train steps");
    let grads = nnc_compiler::pipeline::gradients(&module).expect("gradient graphs");
    let several = steps.len() > 1;
    let mut out = vec![];
    for (step, grad) in steps.into_iter().zip(grads) {
        let label = if several { format!("{name} {}", step.loss) } else { name.clone() };
        out.push((format!("{label} train"), step.graph));
        out.push((format!("{label} grad"), grad.graph));
    }
    let infer = nnc_compiler::opt::optimize(&module.infer_graph).expect("inference graph");
    out.push((format!("{name} infer"), infer));
    out
}

/// Whether a model is large: a benchmark model, or one whose examples hold
/// at least 4096 input values (the gridded earth-science models). One small
/// batch suffices for those; the small models cover odd batch sizes.
fn big(path: &Path, graph: &Graph) -> bool {
    let per_example: usize = graph
        .inputs()
        .filter(|(_, n)| matches!(n.op, Op::Input { kind: InputKind::Data, .. }))
        .map(|(_, n)| {
            n.ty.shape
                .dims()
                .iter()
                .skip(1)
                .map(|d| if let Dim::Known(k) = d { *k } else { 1 })
                .product::<usize>()
        })
        .sum();
    path.to_string_lossy().contains("bench") || per_example >= 4096
}

fn check_all(configs: &[(usize, usize, Checking)]) {
    let mut failures = vec![];
    let mut runs = 0;
    for path in models() {
        for (what, graph) in graphs(&path) {
            let big = big(&path, &graph);
            for &(batch, threads, checking) in configs {
                // Large models run at batch 2 only (one interpreter run
                // serves every configuration); the small ones cover batch 1
                // and odd sizes.
                if big && batch == 1 {
                    continue;
                }
                let batch = if big { batch.min(2) } else { batch };
                let label = format!("{what} batch {batch} threads {threads} {checking:?}");
                failures.extend(compare(&what, &label, &graph, batch, threads, checking));
                runs += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {runs} runs differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn models_match_the_interpreter_on_one_thread() {
    check_all(&[(3, 1, Checking::Unchecked), (1, 1, Checking::Unchecked)]);
}

#[test]
fn models_match_the_interpreter_on_two_threads() {
    check_all(&[(5, 2, Checking::Unchecked)]);
}

#[test]
fn models_match_the_interpreter_in_the_checked_mode() {
    check_all(&[(7, 2, Checking::Checked)]);
}

/// Parameters after `steps` training steps from the model's seed.
fn train(graph: &Graph, batch: usize, threads: usize, steps: usize) -> Vec<(String, Tensor<f32>)> {
    let options = Options { threads, checking: Checking::Unchecked, gemm: Gemm::Tuned };
    let mut exe = Executable::compile(graph, batch, &options).expect("compile");
    feed_synthetic(&mut exe, graph, 5, 1e-3).expect("inputs");
    for _ in 0..steps {
        exe.run().expect("step");
        exe.carry_state().expect("carry");
    }
    let mut params: Vec<(String, Tensor<f32>)> = exe
        .outputs()
        .into_iter()
        .filter(|(_, kind, _)| *kind == OutputKind::Param)
        .map(|(n, _, t)| (n, t))
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

fn bits(params: &[(String, Tensor<f32>)]) -> Vec<(String, Vec<u32>)> {
    params
        .iter()
        .map(|(n, t)| {
            (n.clone(), t.as_float().map(|a| a.iter().map(|x| x.to_bits()).collect()).unwrap_or_default())
        })
        .collect()
}

#[test]
fn twenty_steps_are_bit_identical_for_the_same_seed_and_threads() {
    for path in nn_files("models") {
        let module = compile_ok(&path, &read(&path));
        // Each training step of a model with several losses on its own.
        for step in nnc_compiler::pipeline::optimized_steps(&module).expect("train steps") {
            let graph = step.graph;
            let (batch, steps) = if big(&path, &graph) { (2, 4) } else { (6, 20) };
            for threads in [1, 2] {
                let a = bits(&train(&graph, batch, threads, steps));
                let b = bits(&train(&graph, batch, threads, steps));
                assert!(!a.is_empty(), "{}: no parameters", display_path(&path));
                assert_eq!(a, b, "{} with {threads} threads: parameters differ", display_path(&path));
            }
        }
    }
}

/// Attention compiled: with the identity for `v` the output is the
/// weights, and every masked position (causal, or a 0/1 tensor with a row
/// that allows nothing) is exactly 0 on 1 and 2 threads, while the allowed
/// ones equal the interpreter's.
#[test]
fn compiled_attention_gives_masked_positions_exactly_zero_weight() {
    let keep: Vec<f64> = (0..36).map(|i| if i / 6 == 2 || (i * 5) % 4 == 0 { 0.0 } else { 1.0 }).collect();
    for (mask, masked) in [
        ("causal", Box::new(|t: usize, s: usize| s > t) as Box<dyn Fn(usize, usize) -> bool>),
        ("keep", Box::new(|t: usize, s: usize| keep[t * 6 + s] == 0.0)),
    ] {
        let source = format!(
            "model m {{
  input q: f32[B, 2, 6, 4]
  input k: f32[B, 2, 6, 4]
  input eye: f32[B, 2, 6, 6]
  input keep: f32[6, 6]
  r = attention(q, k, eye, mask: {mask})
}}
"
        );
        let module = compile_ok(Path::new("attention.nn"), &source);
        let graph = nnc_compiler::opt::optimize(&module.infer_graph).expect("inference graph");
        let batch = 3;
        let dims = nnc_compiler::pipeline::batch_dims(&graph, batch);
        let mut inputs: HashMap<String, Tensor<f32>> =
            interp::example_inputs::<f32>(&graph, &dims, 5).expect("inputs");
        let eye: Vec<f64> = (0..batch * 2 * 36).map(|i| f64::from(u8::from(i % 6 == (i / 6) % 6))).collect();
        inputs.insert("eye".into(), Tensor::from_f64(&[batch, 2, 6, 6], &eye).expect("eye"));
        inputs.insert("keep".into(), Tensor::from_f64(&[6, 6], &keep).expect("keep"));
        // The causal mask is a constant the module carries, not example data.
        for c in &module.constants {
            let shape = c.ty.shape.as_known().expect("known shape");
            inputs.insert(c.name.clone(), Tensor::from_f64(&shape, &c.data.to_f64()).expect("constant"));
        }
        for name in ["q", "k"] {
            if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
                a.mapv_inplace(|v| 20.0 * v);
            }
        }
        let wide: HashMap<String, Tensor<f64>> =
            inputs.iter().map(|(n, t)| (n.clone(), t.convert())).collect();
        let want: HashMap<String, Tensor<f64>> =
            interp::run::<f64>(&graph, &wide).expect("runs").into_iter().collect();
        let want = want["r"].as_float().expect("weights").clone();
        for threads in [1, 2] {
            let options = Options { threads, checking: Checking::Unchecked, gemm: Gemm::Tuned };
            let mut exe = Executable::compile(&graph, batch, &options).expect("compiles");
            for (name, value) in &inputs {
                exe.set_input(name, value).expect("input");
            }
            exe.run().expect("runs");
            let got = exe.outputs().into_iter().find(|(n, _, _)| n == "r").expect("output r").2;
            let got = got.as_float().expect("weights");
            assert_eq!(got.shape(), &[batch, 2, 6, 6]);
            for (i, (&g, &w)) in got.iter().zip(want.iter()).enumerate() {
                let (t, s) = ((i / 6) % 6, i % 6);
                if masked(t, s) {
                    assert_eq!(g.to_bits(), 0.0f32.to_bits(), "{mask}: masked ({t}, {s}) weighs {g}");
                } else {
                    assert!((f64::from(g) - w).abs() < 1e-5, "{mask} ({t}, {s}): {g}, interpreter {w}");
                }
            }
        }
    }
}

/// 3×3 convolutions run by Winograd F(2×2, 3×3) (padding 0, 1 and 2, odd
/// image sizes, a transposed convolution, several channel counts: the
/// plan gives every one of them to Winograd) match the interpreter in
/// every graph, on one and two threads, checked and unchecked, at batch
/// sizes that split unevenly.
#[test]
fn winograd_convolutions_match_the_interpreter() {
    let path = Path::new("tests/fixtures/winograd_paddings.nn");
    let module = compile_ok(path, &read(path));
    for step in nnc_compiler::pipeline::optimized_steps(&module).expect("train steps") {
        let plan = nnc_compiler::pipeline::plan(&step.graph, 4, 2).expect("plan");
        let winograd = plan.convs.values().filter(|a| matches!(a, ConvAlgorithm::Winograd { .. })).count();
        assert!(plan.convs.len() >= 14 && winograd == plan.convs.len(), "{:?}", plan.convs);
    }
    let mut failures = vec![];
    for (what, graph) in graphs(path) {
        for (batch, threads, checking) in
            [(3, 1, Checking::Unchecked), (3, 2, Checking::Unchecked), (5, 2, Checking::Checked)]
        {
            let label = format!("{what} batch {batch} threads {threads} {checking:?}");
            failures.extend(compare(&what, &label, &graph, batch, threads, checking));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
