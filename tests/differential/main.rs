//! Differential testing of the compiler on generated programs.
//!
//! Each program of [`generate`] (random layer stacks, blocks, shared layers,
//! residuals, concats, slices, reductions, several losses, …, written as
//! `.nn` source) goes through the whole pipeline: parse, sema, IR,
//! autodiff, the optimiser's update, the optimisation passes, fusion, the
//! memory plan and Cranelift code generation. For each of its graphs — the
//! gradient graph of every loss (forward and backward), the training step
//! of every optimiser (forward, backward and update) and the inference
//! graph — two properties must hold:
//!
//! 1. **the optimised graph equals the unoptimised one**: both run in the
//!    f64 reference interpreter on the same inputs and agree within
//!    `1e-9 · scale` (rounding of rewritten arithmetic only);
//! 2. **the compiled graph equals the interpreter**: the executable, with
//!    one thread, with two, and with two in the checked mode (every
//!    generated access bounds-checked), matches the f64 interpreter with the
//!    tolerances of `tests/jit.rs`: `1e-5 · scale`, or four times the error
//!    of the interpreter run in f32 where f32 arithmetic cannot do better;
//!    where that run happens to round well and the output is sensitive to
//!    rounding (a normalisation of a constant channel, a sum whose terms
//!    cancel), four times the error of f64 runs with every value and every
//!    sum's terms rounded at random by as much as f32 may
//!    ([`rounding_runs`]); updated parameters get a slack of `2·lr` (Adam's
//!    first step divides rounding noise by itself). Elements that f32
//!    arithmetic cannot compute (the f32 interpreter overflows where the
//!    f64 reference does not) are left out ([`beyond_f32`]).
//!
//! Mutants of the programs ([`mutate`]) take the paths of invalid and
//! unusual programs: each is rejected with a rendered diagnostic or
//! compiles through code generation, and nothing panics.
//!
//! Every failure names the program's seed (and mutant) and shows its
//! source; a program is regenerated from its seed alone, a mutant from its
//! seed and index:
//!
//! ```text
//! NNC_FUZZ_SEED=123 cargo test --test differential
//! NNC_FUZZ_SEED=123 NNC_FUZZ_MUTANT=5 cargo test --test differential generated
//! ```
//!
//! The default run checks [`SHORT_PROGRAMS`] programs from seed 0 and
//! [`SHORT_MUTANTS`] mutants of each of the first [`SHORT_MUTANT_PROGRAMS`].
//! The long run is `#[ignore]`d:
//!
//! ```text
//! cargo test --release --test differential many -- --ignored --nocapture
//! ```
//!
//! It takes 10⁶ programs and mutants ([`MUTANTS`] of each generated
//! program) through the whole pipeline on every core, executes every
//! [`EXECUTE_PROGRAM_EVERY`]-th program and every [`EXECUTE_MUTANT_EVERY`]-th
//! mutant that compiles, and reports the counts by outcome.
//! `NNC_FUZZ_PROGRAMS` sets the number of generated programs,
//! `NNC_FUZZ_MUTANTS` the mutants of each, `NNC_FUZZ_START` the first seed
//! (default 1000000), `NNC_FUZZ_THREADS` the workers and
//! `NNC_FUZZ_SECONDS` a time limit. `NNC_FUZZ_FILE=prog.nn` checks a
//! program from a file instead (with the inputs of `NNC_FUZZ_SEED`), as
//! when a failing program is cut down.

mod generate;
mod mutate;

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use nnc_compiler::codegen::{approx, Checking};
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{Graph, OutputKind};
use nnc_runtime::exec::{Executable, Gemm, Options};

/// Programs of the default run.
const SHORT_PROGRAMS: u64 = 200;
/// First seed of the long run (the default run covers 0 …).
const LONG_START: u64 = 1_000_000;
/// Programs and mutants of the long run.
const LONG_TOTAL: u64 = 1_000_000;

/// Executable against the f64 interpreter (as `tests/jit.rs`).
const JIT_TOLERANCE: f64 = 1e-5;
/// How many times the f32 interpreter's own error an output may have.
const F32_FACTOR: f64 = 4.0;
/// Optimised against unoptimised graph, both in f64.
const OPT_TOLERANCE: f64 = 1e-9;

/// Executable configurations (threads, checking) of the long run.
const CONFIGS: &[(usize, Checking)] =
    &[(1, Checking::Unchecked), (2, Checking::Unchecked), (2, Checking::Checked)];
/// Those of the default run: two threads only in the checked mode, which
/// splits the work as the unchecked mode does and checks every access.
const SHORT_CONFIGS: &[(usize, Checking)] = &[(1, Checking::Unchecked), (2, Checking::Checked)];

fn env(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// The largest difference of `got` from `want` beyond `slack`, relative to
/// `want`'s scale (its largest magnitude, floored at `floor` and 1e-6).
fn error<T: interp::Real>(want: &Tensor<T>, got: &Tensor<T>, slack: f64, floor: f64) -> Result<f64, String> {
    match (want, got) {
        (Tensor::Float(w), Tensor::Float(g)) => {
            if w.shape() != g.shape() {
                return Err(format!("shape {:?}, expected {:?}", g.shape(), w.shape()));
            }
            let scale = w.iter().fold(floor.max(1e-6), |m, &x| {
                let x = x.as_f64().abs();
                if x.is_finite() {
                    m.max(x)
                } else {
                    m
                }
            });
            let mut worst = 0.0f64;
            for (&a, &b) in w.iter().zip(g.iter()) {
                let (a, b) = (a.as_f64(), b.as_f64());
                if a.is_nan() != b.is_nan() {
                    return Err(format!("NaN mismatch ({a} vs {b})"));
                }
                if a.is_infinite() || b.is_infinite() {
                    if a != b {
                        return Err(format!("infinity mismatch ({a} vs {b})"));
                    }
                    continue;
                }
                if !a.is_nan() {
                    let diff = ((a - b).abs() - slack).max(0.0);
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

/// The largest finite magnitude among float outputs.
fn largest<T: interp::Real>(outputs: &[(String, Tensor<T>)]) -> f64 {
    outputs
        .iter()
        .filter_map(|(_, t)| t.as_float())
        .flat_map(|a| a.iter())
        .map(|x| x.as_f64().abs())
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max)
}

fn learning_rate(inputs: &HashMap<String, Tensor<f32>>) -> f64 {
    match inputs.get("lr") {
        Some(Tensor::Float(a)) => a.iter().next().map_or(0.0, |&x| f64::from(x)),
        _ => 0.0,
    }
}

/// The inputs of `graph` among `all`.
fn inputs_of(graph: &Graph, all: &HashMap<String, Tensor<f32>>) -> HashMap<String, Tensor<f32>> {
    graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            nnc_compiler::ir::Op::Input { name, .. } => all.get(name).map(|t| (name.clone(), t.clone())),
            _ => None,
        })
        .collect()
}

fn widen(inputs: &HashMap<String, Tensor<f32>>) -> HashMap<String, Tensor<f64>> {
    inputs.iter().map(|(n, t)| (n.clone(), t.convert())).collect()
}

type Outputs<T> = Vec<(String, Tensor<T>)>;

/// Property 1: the optimised graph's outputs (`got`, from the f64
/// interpreter) against the unoptimised graph's.
fn compare_optimised(
    what: &str,
    plain: &Graph,
    got: &Outputs<f64>,
    inputs: &HashMap<String, Tensor<f32>>,
) -> Vec<String> {
    let want = match interp::run::<f64>(plain, &widen(&inputs_of(plain, inputs))) {
        Ok(w) => w,
        Err(e) => return vec![format!("{what}: interpreter (unoptimised): {e}")],
    };
    let got: HashMap<&str, &Tensor<f64>> = got.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let floor = 1e-2 * largest(&want);
    let mut failures = vec![];
    for (name, w) in &want {
        match got.get(name.as_str()).map(|g| error(w, g, 0.0, floor)) {
            None => failures.push(format!("{what}: optimised graph lacks output `{name}`")),
            Some(Err(e)) => failures.push(format!("{what}: optimised output `{name}`: {e}")),
            Some(Ok(e)) if e > OPT_TOLERANCE => failures.push(format!(
                "{what}: optimised output `{name}` differs: error {e:.2e} > {OPT_TOLERANCE:.0e}"
            )),
            Some(Ok(_)) => {}
        }
    }
    failures
}

/// Property 2: the executable against the interpreter (`want`, its f64
/// outputs), in every configuration of [`CONFIGS`].
fn compare_compiled(
    what: &str,
    graph: &Graph,
    want: &Outputs<f64>,
    batch: usize,
    inputs: &HashMap<String, Tensor<f32>>,
    configs: &[(usize, Checking)],
) -> Vec<String> {
    let narrow: HashMap<String, Tensor<f32>> = match interp::run::<f32>(graph, inputs) {
        Ok(n) => n.into_iter().collect(),
        Err(e) => return vec![format!("{what}: interpreter (f32): {e}")],
    };
    let want: Outputs<f32> = want.iter().map(|(n, t)| (n.clone(), t.convert())).collect();
    let floor = 1e-2 * largest(&want);
    let lr = learning_rate(inputs);
    let mut rounded = None;
    let mut failures = vec![];
    for &(threads, checking) in configs {
        let label = format!("{what} ({threads} thread{}, {checking:?})", if threads > 1 { "s" } else { "" });
        let options = Options { threads, checking, gemm: Gemm::Tuned };
        let mut exe = match Executable::compile(graph, batch, &options) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{label}: compile: {e}"));
                continue;
            }
        };
        if let Some(e) =
            inputs.iter().find_map(|(n, t)| exe.set_input(n, t).err().map(|e| format!("{n}: {e}")))
        {
            failures.push(format!("{label}: input {e}"));
            continue;
        }
        if let Err(e) = exe.run() {
            failures.push(format!("{label}: run: {e}"));
            continue;
        }
        let got: HashMap<String, (OutputKind, Tensor<f32>)> =
            exe.outputs().into_iter().map(|(n, k, t)| (n, (k, t))).collect();
        for (name, w) in &want {
            let Some((kind, g)) = got.get(name) else {
                failures.push(format!("{label}: output `{name}` missing"));
                continue;
            };
            let slack = if *kind == OutputKind::Param { 2.0 * lr } else { 0.0 };
            let masked = narrow.get(name).and_then(|n| beyond_f32(w, n, g));
            let (w, g) = masked.as_ref().map_or((w, g), |(w, g)| (w, g));
            let inherent = narrow.get(name).and_then(|n| error(w, n, slack, floor).ok()).unwrap_or(0.0);
            let allowed = JIT_TOLERANCE.max(F32_FACTOR * inherent);
            match error(w, g, slack, floor) {
                Err(e) => failures.push(format!("{label}: output `{name}`: {e}")),
                Ok(e) if e > allowed => {
                    // One f32 evaluation's rounding may cancel where another's
                    // does not: the output's sensitivity to rounding decides.
                    let sensitivity = rounded.get_or_insert_with(|| rounding_runs(graph, inputs));
                    let sensitive = match sensitivity {
                        Ok(runs) => runs
                            .iter()
                            .filter_map(|run| run.get(name).and_then(|r| error(w, r, slack, floor).ok()))
                            .fold(0.0, f64::max),
                        Err(_) => 0.0,
                    };
                    let allowed = allowed.max(F32_FACTOR * sensitive);
                    if e > allowed {
                        failures.push(format!(
                            "{label}: output `{name}`: error {e:.2e} > {allowed:.2e} (the f32 interpreter's is \
                             {inherent:.2e}, under rounding of every value {sensitive:.2e})"
                        ));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    failures
}

/// `want` and `got` without the elements that f32 arithmetic cannot
/// compute: where the f32 interpreter (`narrow`) ends in a non-finite value
/// other than `want`'s (an intermediate overflowed; the f64 reference did
/// not, or overflowed to another infinity), both are set to 0. `None` when
/// there is no such element.
fn beyond_f32(
    want: &Tensor<f32>,
    narrow: &Tensor<f32>,
    got: &Tensor<f32>,
) -> Option<(Tensor<f32>, Tensor<f32>)> {
    let (Tensor::Float(w), Tensor::Float(n), Tensor::Float(g)) = (want, narrow, got) else { return None };
    if w.shape() != n.shape() || w.shape() != g.shape() {
        return None;
    }
    let outside =
        |a: f32, b: f32| !b.is_finite() && a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan());
    if !w.iter().zip(n.iter()).any(|(&a, &b)| outside(a, b)) {
        return None;
    }
    let (mut w, mut g) = (w.clone(), g.clone());
    for ((a, b), &c) in w.iter_mut().zip(g.iter_mut()).zip(n.iter()) {
        if outside(*a, c) {
            (*a, *b) = (0.0, 0.0);
        }
    }
    Some((Tensor::Float(w), Tensor::Float(g)))
}

/// Relative size of the rounding of one f32 operation (its unit roundoff).
const F32_ROUNDING: f64 = 1.0 / (1u64 << 24) as f64;
/// Runs of [`rounding_runs`], each with its own rounding.
const ROUNDING_RUNS: u64 = 8;

/// How many terms an op adds up into each element of its result (through
/// its first operand), for the contractions whose sums may be long: `shapes`
/// are its operands' shapes, `out` its result's.
fn summands(op: &nnc_compiler::ir::Op, shapes: &[&[usize]], out: &[usize]) -> usize {
    use nnc_compiler::ir::Op;
    let count = |s: &[usize]| s.iter().product::<usize>();
    match op {
        Op::ReduceSum { .. } => count(shapes[0]) / count(out).max(1),
        Op::ScatterSum { axis, .. } => shapes[0][*axis],
        Op::MatMul => shapes[0].last().copied().unwrap_or(1),
        Op::Conv(_) => count(&shapes[1][1..]),
        Op::ConvTranspose { .. } => shapes[1][0] * count(&shapes[1][2..]),
        Op::ConvWeightGrad { .. } => count(shapes[1]) / shapes[1][1].max(1),
        _ => 1,
    }
}

/// Whether every element `op` computes is one of its operands' elements
/// (or a constant): such a value is not rounded in f32, and perturbing it
/// would break the equalities the graph relies on — the gradient of a
/// maximum compares each element with the broadcast maximum and divides by
/// the number of ties, none of which is left once both sides are scaled
/// apart.
fn exact(op: &nnc_compiler::ir::Op) -> bool {
    use nnc_compiler::ir::{BinaryOp, Op, PoolKind, UnaryOp};
    match op {
        Op::Unary(u) => matches!(u, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign),
        Op::Binary(b) => matches!(b, BinaryOp::Max | BinaryOp::Min),
        Op::Pool(w) => w.kind == PoolKind::Max,
        Op::Input { .. }
        | Op::Const { .. }
        | Op::Compare(_)
        | Op::Select
        | Op::Cast { .. }
        | Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::ReduceMax { .. }
        | Op::ArgMax { .. }
        | Op::Size { .. }
        | Op::OneHot { .. }
        | Op::RngUniform { .. }
        | Op::Gather { .. } => true,
        _ => false,
    }
}

/// The outputs of `graph` in the f64 interpreter with rounding of f32
/// size made at random, once per [`ROUNDING_RUNS`] (as f32, by name):
/// every value the graph computes by arithmetic (not [`exact`]) is scaled by `1 + δ`, and each term of a
/// sum of `n` terms by `1 + (n − 1)·δ`, `δ` uniform in ±[`F32_ROUNDING`] per
/// element — the rounding of one f32 operation, and the bound on the
/// rounding of an f32 sum in any order expressed as a perturbation of its
/// terms (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2);
/// the result of a function the compiled code approximates (`exp`,
/// `sigmoid`, …) by as much as the approximation's documented bound
/// ([`approx::error_bound`]), 4–7 times one rounding, relative to the
/// result, or added to it: up to the bound times the input for `gelu`
/// (whose `1 + erf` cancels for negative inputs), up to the bound for
/// `gelu_grad`.
/// These runs show how much an output may legitimately differ from the
/// exact result where one f32 evaluation (the interpreter's) happens to
/// round well: a normalisation of a channel that is constant over the batch
/// turns one rounding of its mean into `1/√eps` times as much in every
/// output, and a sum whose terms cancel keeps their rounding while its
/// value shrinks.
fn rounding_runs(
    graph: &Graph,
    inputs: &HashMap<String, Tensor<f32>>,
) -> Result<Vec<HashMap<String, Tensor<f32>>>, String> {
    use nnc_compiler::codegen::approx::ErrorBound;
    use nnc_compiler::ir::{rng, BinaryOp, DType, InputKind, Op, ValueId};
    let graph = &without_row_ops(graph);
    let wide = widen(inputs);
    // The shape of every value, for its rounding factors.
    let values = interp::run_all::<f64>(graph, &wide).map_err(|e| e.to_string())?;
    // Every computed f32 value v becomes v · rounding.N, rounding.N an input
    // of v's shape; the first operand a of a sum of n > 1 terms a · sum.N.
    // Each factor: (input name, shape, relative size of its δ).
    let mut rebuild = graph.rebuild(&[]);
    let mut factors: Vec<Factor> = vec![];
    let f32_value = |id: ValueId| graph.node(id).ty.dtype == DType::F32;
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(i as u32);
        let shapes: Vec<&[usize]> = node.args.iter().map(|a| values[a.index()].shape()).collect();
        let n = summands(&node.op, &shapes, values[i].shape());
        let v = match node.args.first() {
            Some(&a) if n > 1 && f32_value(a) => {
                // A copy of the operand for this use alone, then the node of it.
                let name = format!("sum.{i}");
                let operand = rebuild.value(a).expect("operands precede their uses");
                let r = rebuild.push(a, Op::Input { name: name.clone(), kind: InputKind::Data }, vec![]);
                let term = rebuild.push(a, Op::Binary(BinaryOp::Mul), vec![operand, r]);
                rebuild.alias(a, operand);
                factors.push(Factor { name, shape: shapes[0].to_vec(), size: (n - 1) as f64, added: false });
                let mut args = rebuild.args(id);
                args[0] = term;
                rebuild.push(id, node.op.clone(), args)
            }
            _ => rebuild.copy(id),
        };
        if f32_value(id) && !exact(&node.op) {
            let name = format!("rounding.{i}");
            let r = rebuild.push(id, Op::Input { name: name.clone(), kind: InputKind::Data }, vec![]);
            let shape = values[i].shape().to_vec();
            // A function the compiled code approximates may be off by its
            // documented bound rather than by one rounding: relative to
            // the result, to the input (gelu) or absolute (its derivative).
            let bound = match node.op {
                Op::Unary(u) => approx::error_bound(u),
                _ => None,
            };
            match bound {
                Some(ErrorBound::TimesInput(b)) => {
                    let x = rebuild.value(node.args[0]).expect("operands precede their uses");
                    let term = rebuild.push(id, Op::Binary(BinaryOp::Mul), vec![x, r]);
                    rebuild.push(id, Op::Binary(BinaryOp::Add), vec![v, term]);
                    factors.push(Factor { name, shape, size: b / F32_ROUNDING, added: true });
                }
                Some(ErrorBound::Absolute(b)) => {
                    rebuild.push(id, Op::Binary(BinaryOp::Add), vec![v, r]);
                    factors.push(Factor { name, shape, size: b / F32_ROUNDING, added: true });
                }
                Some(ErrorBound::Relative(b)) => {
                    rebuild.push(id, Op::Binary(BinaryOp::Mul), vec![v, r]);
                    factors.push(Factor { name, shape, size: (b / F32_ROUNDING).max(1.0), added: false });
                }
                None => {
                    rebuild.push(id, Op::Binary(BinaryOp::Mul), vec![v, r]);
                    factors.push(Factor { name, shape, size: 1.0, added: false });
                }
            }
        }
    }
    let (rounded, _) = rebuild.finish();
    let mut runs = vec![];
    for run in 0..ROUNDING_RUNS {
        let mut all = wide.clone();
        for Factor { name, shape, size, added } in &factors {
            let (key, stream) = (rng::seed_key(run), rng::name_stream(name));
            let delta = |k: u64| size * F32_ROUNDING * (2.0 * f64::from(rng::uniform(key, stream, k)) - 1.0);
            let n: usize = shape.iter().product();
            let base = if *added { 0.0 } else { 1.0 };
            let scale: Vec<f64> = (0..n as u64).map(|k| base + delta(k)).collect();
            all.insert(name.clone(), Tensor::from_f64(shape, &scale)?);
        }
        let outputs = interp::run::<f64>(&rounded, &all).map_err(|e| e.to_string())?;
        runs.push(outputs.into_iter().map(|(n, t)| (n, t.convert())).collect());
    }
    Ok(runs)
}

/// `graph` with every `softmax`, `softmax_grad`, `standardize` and
/// `standardize_grad` written as the primitives that define it
/// (`Op::Softmax`, `Op::Standardize`), so that [`rounding_runs`] perturbs
/// each of their operations: the subtraction of the row maximum, the
/// exponentials by `exp`'s bound, the row sums as sums of their terms, the
/// divisions, the square root.
fn without_row_ops(graph: &Graph) -> Graph {
    use nnc_compiler::ir::op::SOFTMAX_FLOOR;
    use nnc_compiler::ir::{BinaryOp, CmpOp, DType, Dim, Op, Shape, Type, UnaryOp, ValueId};
    let mut r = graph.rebuild(&[]);
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(i as u32);
        if !matches!(
            node.op,
            Op::Softmax | Op::SoftmaxGrad | Op::Standardize { .. } | Op::StandardizeGrad { .. }
        ) {
            r.copy(id);
            continue;
        }
        let full = node.ty.shape.clone();
        let last = full.rank() - 1;
        let rows = Shape(full.dims()[..last].to_vec());
        let kept = Shape(full.dims()[..last].iter().cloned().chain([Dim::Known(1)]).collect());
        let (f32_of, bool_of) =
            (|s: &Shape| Type::f32(s.clone()), |s: &Shape| Type::new(DType::Bool, s.clone()));
        let args = r.args(id);
        // A value of `rows` broadcast back along the last axis.
        let back = |r: &mut nnc_compiler::ir::graph::Rebuild, v: ValueId| {
            let k = r.insert(id, Op::Reshape { shape: kept.clone() }, vec![v], f32_of(&kept));
            r.insert(id, Op::Broadcast { shape: full.clone() }, vec![k], f32_of(&full))
        };
        let filled = |r: &mut nnc_compiler::ir::graph::Rebuild, value: f64| {
            let c = r.insert(id, Op::Const { value }, vec![], Type::f32(Shape::scalar()));
            r.insert(id, Op::Broadcast { shape: rows.clone() }, vec![c], f32_of(&rows))
        };
        if let Op::Standardize { eps } | Op::StandardizeGrad { eps } = node.op {
            let x = args[0];
            let d = filled(&mut r, full.dims()[last].known().expect("a known last axis") as f64);
            let s = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![x], f32_of(&rows));
            let mean = r.insert(id, Op::Binary(BinaryOp::Div), vec![s, d], f32_of(&rows));
            let mean = back(&mut r, mean);
            let c = r.insert(id, Op::Binary(BinaryOp::Sub), vec![x, mean], f32_of(&full));
            let sq = r.insert(id, Op::Binary(BinaryOp::Mul), vec![c, c], f32_of(&full));
            let q = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![sq], f32_of(&rows));
            let var = r.insert(id, Op::Binary(BinaryOp::Div), vec![q, d], f32_of(&rows));
            let eps = filled(&mut r, eps);
            let shifted = r.insert(id, Op::Binary(BinaryOp::Add), vec![var, eps], f32_of(&rows));
            let sd = r.insert(id, Op::Unary(UnaryOp::Sqrt), vec![shifted], f32_of(&rows));
            let one = filled(&mut r, 1.0);
            let rstd = r.insert(id, Op::Binary(BinaryOp::Div), vec![one, sd], f32_of(&rows));
            let rstd = back(&mut r, rstd);
            if matches!(node.op, Op::Standardize { .. }) {
                r.push(id, Op::Binary(BinaryOp::Mul), vec![c, rstd]);
                continue;
            }
            let dy = args[1];
            let xhat = r.insert(id, Op::Binary(BinaryOp::Mul), vec![c, rstd], f32_of(&full));
            let sa = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![dy], f32_of(&rows));
            let a = r.insert(id, Op::Binary(BinaryOp::Div), vec![sa, d], f32_of(&rows));
            let a = back(&mut r, a);
            let p = r.insert(id, Op::Binary(BinaryOp::Mul), vec![dy, xhat], f32_of(&full));
            let sb = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![p], f32_of(&rows));
            let b = r.insert(id, Op::Binary(BinaryOp::Div), vec![sb, d], f32_of(&rows));
            let b = back(&mut r, b);
            let t = r.insert(id, Op::Binary(BinaryOp::Sub), vec![dy, a], f32_of(&full));
            let u = r.insert(id, Op::Binary(BinaryOp::Mul), vec![xhat, b], f32_of(&full));
            let t = r.insert(id, Op::Binary(BinaryOp::Sub), vec![t, u], f32_of(&full));
            r.push(id, Op::Binary(BinaryOp::Mul), vec![t, rstd]);
        } else if node.op == Op::Softmax {
            let x = args[0];
            let max = r.insert(id, Op::ReduceMax { axes: vec![last] }, vec![x], f32_of(&rows));
            let floor = filled(&mut r, SOFTMAX_FLOOR);
            let m = r.insert(id, Op::Binary(BinaryOp::Max), vec![max, floor], f32_of(&rows));
            let m = back(&mut r, m);
            let z = r.insert(id, Op::Binary(BinaryOp::Sub), vec![x, m], f32_of(&full));
            let e = r.insert(id, Op::Unary(UnaryOp::Exp), vec![z], f32_of(&full));
            let sum = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![e], f32_of(&rows));
            let zero = filled(&mut r, 0.0);
            let one = filled(&mut r, 1.0);
            let positive = r.insert(id, Op::Compare(CmpOp::Gt), vec![sum, zero], bool_of(&rows));
            let sum = r.insert(id, Op::Select, vec![positive, sum, one], f32_of(&rows));
            let sum = back(&mut r, sum);
            r.push(id, Op::Binary(BinaryOp::Div), vec![e, sum]);
        } else {
            let (y, dy) = (args[0], args[1]);
            let p = r.insert(id, Op::Binary(BinaryOp::Mul), vec![y, dy], f32_of(&full));
            let t = r.insert(id, Op::ReduceSum { axes: vec![last] }, vec![p], f32_of(&rows));
            let t = back(&mut r, t);
            let d = r.insert(id, Op::Binary(BinaryOp::Sub), vec![dy, t], f32_of(&full));
            r.push(id, Op::Binary(BinaryOp::Mul), vec![y, d]);
        }
    }
    r.finish().0
}

/// A perturbation of one value in [`rounding_runs`]: the input `name` of
/// `shape` holds `δ` (`added`: added to the value, times its operand for
/// gelu) or `1 + δ` (the value's factor), `δ` uniform in ±`size` roundings.
struct Factor {
    name: String,
    shape: Vec<usize>,
    size: f64,
    added: bool,
}

/// A graph of a program: what it is, unoptimised and optimised.
type Graphs = Vec<(String, Graph, Graph)>;

/// Every graph of a compiled program. An error names the stage that
/// stopped (`autodiff` or `opt`).
fn graphs(module: &nnc_compiler::Module) -> Result<Graphs, (&'static str, String)> {
    let optimise = |g: &Graph| nnc_compiler::opt::optimize(g).map_err(|e| ("opt", format!("optimise: {e}")));
    let mut out = vec![];
    let grads =
        nnc_compiler::pipeline::gradients(module).map_err(|e| ("autodiff", format!("gradients: {e}")))?;
    let steps =
        nnc_compiler::pipeline::train_steps(module).map_err(|e| ("autodiff", format!("train steps: {e}")))?;
    for g in grads {
        let o = optimise(&g.graph)?;
        out.push((format!("gradient of `{}`", g.loss), g.graph, o));
    }
    for s in steps {
        let o = optimise(&s.graph)?;
        out.push((format!("training step of `{}`", s.loss), s.graph, o));
    }
    let infer = optimise(&module.infer_graph)?;
    out.push(("inference".to_string(), module.infer_graph.clone(), infer));
    Ok(out)
}

/// The batch size the program of `seed` runs with: 1 for one seed in six
/// (a normalisation's statistics then come from one example), else 2 or 3.
fn batch_of(seed: u64) -> usize {
    if seed.is_multiple_of(6) {
        1
    } else {
        2 + (seed % 2) as usize
    }
}

/// Checks the program of `seed`: every mismatch, or the error that stopped
/// the pipeline.
fn check(seed: u64, source: &str, configs: &[(usize, Checking)]) -> Vec<String> {
    let module = match nnc_compiler::compile(source) {
        Ok(c) => c.module,
        Err(diags) => {
            return vec![format!(
                "the generated program does not compile:\n{}",
                nnc_compiler::diag::render_plain("fuzz.nn", source, &diags)
            )]
        }
    };
    let graphs = match graphs(&module) {
        Ok(g) => g,
        Err((_, e)) => return vec![e],
    };
    let batch = batch_of(seed);
    let mut failures = vec![];
    for (what, plain, optimised) in &graphs {
        let dims = nnc_compiler::pipeline::batch_dims(plain, batch);
        let all = match interp::example_inputs::<f32>(plain, &dims, seed) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{what}: example inputs: {e}"));
                continue;
            }
        };
        let inputs = inputs_of(optimised, &all);
        let want = match interp::run::<f64>(optimised, &widen(&inputs)) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{what}: interpreter (optimised): {e}"));
                continue;
            }
        };
        failures.extend(compare_optimised(what, plain, &want, &all));
        failures.extend(compare_compiled(what, optimised, &want, batch, &inputs, configs));
    }
    failures
}

/// The outcome of a run over many seeds.
#[derive(Default)]
struct Report {
    programs: u64,
    failed: Vec<String>,
    features: BTreeMap<&'static str, u64>,
    slowest: (Duration, u64),
}

fn run(seeds: impl Iterator<Item = u64>, deadline: Option<Instant>, configs: &[(usize, Checking)]) -> Report {
    let mut report = Report::default();
    for seed in seeds {
        if deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        let program = match catch_unwind(|| generate::generate(seed)) {
            Ok(p) => p,
            Err(_) => {
                report.failed.push(format!("seed {seed} (NNC_FUZZ_SEED={seed}): the generator panicked"));
                continue;
            }
        };
        for f in &program.features {
            *report.features.entry(f).or_default() += 1;
        }
        let start = Instant::now();
        let failures = catch_unwind(AssertUnwindSafe(|| check(seed, &program.source, configs)))
            .unwrap_or_else(|p| {
                let message = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                vec![format!("panic: {message}")]
            });
        let took = start.elapsed();
        if took > report.slowest.0 {
            report.slowest = (took, seed);
        }
        report.programs += 1;
        if !failures.is_empty() {
            let text = format!(
                "seed {seed} (NNC_FUZZ_SEED={seed}):\n  {}\n--- program ---\n{}",
                failures.join("\n  "),
                program.source
            );
            eprintln!("{text}");
            report.failed.push(text);
        }
    }
    report
}

fn finish(report: &Report, took: Duration) {
    eprintln!(
        "{} programs in {:.1} s, {} failed; slowest: seed {} ({:.2} s)",
        report.programs,
        took.as_secs_f64(),
        report.failed.len(),
        report.slowest.1,
        report.slowest.0.as_secs_f64()
    );
    let covered: Vec<String> = report.features.iter().map(|(f, n)| format!("{f} {n}")).collect();
    eprintln!("constructs (programs using each): {}", covered.join(", "));
    assert!(
        report.failed.is_empty(),
        "{} of {} programs failed:\n\n{}",
        report.failed.len(),
        report.programs,
        report.failed.join("\n\n")
    );
}

/// Constructs the default run must exercise: a generator that stopped
/// producing one of them would otherwise narrow the test unnoticed.
const EXPECTED: &[&str] = &[
    "activations",
    "dense",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose2d",
    "batchnorm",
    "layernorm",
    "groupnorm",
    "residual connections",
    "broadcasting",
    "concat",
    "slicing",
    "indexing",
    "reductions",
    "split",
    "stack",
    "pad",
    "roll",
    "reshape",
    "permute",
    "flatten",
    "matmul",
    "maxpool2d",
    "avgpool2d",
    "upsample",
    "warp",
    "dropout",
    "blocks",
    "nested blocks",
    "shared layer values",
    "repeat",
    "map",
    "scan",
    "attention",
    "multihead_attention",
    "transformer_layer",
    "gather, scatter, grid_graph",
    "several losses",
    "cross_entropy",
    "mse",
];

#[test]
fn generated_programs_compile_and_match_the_interpreter() {
    let start = Instant::now();
    if let Ok(path) = std::env::var("NNC_FUZZ_FILE") {
        // A program written out (a failure being minimised), checked alone.
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // The inputs (and batch size) of the program's seed, if given.
        let failures = check(env("NNC_FUZZ_SEED").unwrap_or(0), &source, CONFIGS);
        assert!(failures.is_empty(), "{path}:\n  {}", failures.join("\n  "));
        return;
    }
    if let (Some(seed), Some(index)) = (env("NNC_FUZZ_SEED"), env("NNC_FUZZ_MUTANT")) {
        // A mutant of the long run, taken as far as it goes and executed if
        // it compiles.
        let (source, kind) = mutant(seed, index);
        eprintln!("{source}--- {kind}");
        let failures = match compile_through(&source, batch_of(seed), &mut vec![]) {
            Outcome::Rejected(stage, text) => {
                eprintln!("rejected by {stage}:\n{text}");
                vec![]
            }
            Outcome::TooLarge => {
                eprintln!("too large for the back end");
                vec![]
            }
            Outcome::Compiled(_) => check(seed, &source, CONFIGS),
        };
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        return;
    }
    let report = match env("NNC_FUZZ_SEED") {
        Some(seed) => {
            eprintln!("{}", generate::generate(seed).source);
            run(std::iter::once(seed), None, CONFIGS)
        }
        None => {
            let first = env("NNC_FUZZ_START").unwrap_or(0);
            let n = env("NNC_FUZZ_PROGRAMS").unwrap_or(SHORT_PROGRAMS);
            let report = run(first..first + n, None, SHORT_CONFIGS);
            if n >= SHORT_PROGRAMS {
                let missing: Vec<&&str> =
                    EXPECTED.iter().filter(|f| !report.features.contains_key(**f)).collect();
                assert!(missing.is_empty(), "the generated programs used none of: {missing:?}");
            }
            report
        }
    };
    finish(&report, start.elapsed());
}

/// Mutants of each generated program in the long run.
const MUTANTS: u64 = 16;
/// In the long run every this many-th generated program is executed and
/// compared with the interpreter; the others go through code generation.
const EXECUTE_PROGRAM_EVERY: u64 = 32;
/// Every this many-th mutant that compiles is executed and compared.
const EXECUTE_MUTANT_EVERY: u64 = 64;
/// Largest value (elements at the run's batch size) a mutant may have to go
/// through the back end, and all its values together to be executed: a
/// mutated width or kernel may ask for more than a test should allocate.
const BACK_END_ELEMENTS: usize = 1 << 20;
const EXECUTE_ELEMENTS: usize = 1 << 16;

/// How far a program went.
enum Outcome {
    /// Stopped at a stage (`syntax`, `sema`, `autodiff`, `opt`, `back end`)
    /// with a rendered diagnostic.
    Rejected(&'static str, String),
    /// Through the front end and the passes, too large for the back end.
    TooLarge,
    /// Through code generation: every graph's plan and kernels, holding this
    /// many values (elements) in all.
    Compiled(usize),
}

/// The largest value of `graph` and all its values together, in elements.
fn elements(graph: &Graph, batch: usize) -> (usize, usize) {
    let dims = nnc_compiler::pipeline::batch_dims(graph, batch);
    graph.nodes.iter().fold((0, 0), |(largest, total), n| {
        let size =
            n.ty.shape
                .resolve(&|s| dims.get(s).copied())
                .map_or(usize::MAX, |d| d.iter().fold(1usize, |a, &b| a.saturating_mul(b)));
        (largest.max(size), total.saturating_add(size))
    })
}

/// Takes `source` through parse, sema, IR, autodiff and the optimiser's
/// update, the passes, fusion, the plan and Cranelift code generation of
/// each of its graphs, rendering the diagnostic of the stage that rejects it.
/// A graph equal to one of `seen` (but for source locations) was compiled
/// already and is not compiled again; the others are added to `seen`.
fn compile_through(source: &str, batch: usize, seen: &mut Vec<Graph>) -> Outcome {
    let render =
        |diags: &[nnc_compiler::diag::Diagnostic]| nnc_compiler::diag::render_plain("fuzz.nn", source, diags);
    if let Err(diags) = nnc_compiler::pipeline::parse(source) {
        return Outcome::Rejected("syntax", render(&diags));
    }
    let module = match nnc_compiler::compile(source) {
        Ok(c) => c.module,
        Err(diags) => return Outcome::Rejected("sema", render(&diags)),
    };
    let graphs = match graphs(&module) {
        Ok(g) => g,
        Err((stage, e)) => return Outcome::Rejected(stage, e),
    };
    let (mut largest, mut total) = (0, 0usize);
    for (_, _, optimised) in &graphs {
        let (l, t) = elements(optimised, batch);
        largest = largest.max(l);
        total = total.saturating_add(t);
    }
    if largest > BACK_END_ELEMENTS {
        return Outcome::TooLarge;
    }
    // A gradient graph is its training step without the update: the steps
    // and the inference graph hold every op the program compiles to.
    for (what, _, optimised) in graphs.iter().filter(|(what, _, _)| !what.starts_with("gradient")) {
        if seen.iter().any(|g| same_ops(g, optimised)) {
            continue;
        }
        if let Err(e) = nnc_compiler::pipeline::program(optimised, batch, 2, Checking::Unchecked) {
            return Outcome::Rejected("back end", format!("{what}:\n{}", render(&e.diagnostics)));
        }
        seen.push(optimised.clone());
    }
    Outcome::Compiled(total)
}

/// Whether two graphs are the same but for source locations (then their
/// code is the same: the back end reads locations only for messages).
fn same_ops(a: &Graph, b: &Graph) -> bool {
    a.mode == b.mode
        && a.outputs == b.outputs
        && a.nodes.len() == b.nodes.len()
        && a.nodes.iter().zip(&b.nodes).all(|(x, y)| x.op == y.op && x.args == y.args && x.ty == y.ty)
}

/// The message of a panic's payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The counts of a long run (of one worker, then of all).
#[derive(Default)]
struct Tally {
    programs: u64,
    mutants: u64,
    /// Mutants by the kind of their last edit.
    kinds: BTreeMap<&'static str, u64>,
    /// Mutants by the stage that rejected them.
    rejected: BTreeMap<&'static str, u64>,
    too_large: u64,
    /// Programs and mutants through code generation.
    compiled: u64,
    /// Programs and mutants executed and compared with the interpreter.
    executed: u64,
    mismatches: u64,
    panics: u64,
    failed: Vec<String>,
    /// A few mutants that passed sema and were rejected by a later stage.
    late_rejections: Vec<String>,
    slowest: (Duration, String),
    /// Time spent on programs rejected, compiled and executed.
    time: BTreeMap<&'static str, Duration>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.programs += other.programs;
        self.mutants += other.mutants;
        for (k, n) in other.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
        for (k, n) in other.rejected {
            *self.rejected.entry(k).or_default() += n;
        }
        self.too_large += other.too_large;
        self.compiled += other.compiled;
        self.executed += other.executed;
        self.mismatches += other.mismatches;
        self.panics += other.panics;
        self.failed.extend(other.failed);
        self.late_rejections.extend(other.late_rejections.into_iter().take(3));
        for (k, t) in other.time {
            *self.time.entry(k).or_default() += t;
        }
        if other.slowest.0 > self.slowest.0 {
            self.slowest = other.slowest;
        }
    }

    fn fail(&mut self, what: String, failures: Vec<String>, source: &str) {
        if failures.iter().any(|f| f.starts_with("panic")) {
            self.panics += 1;
        } else {
            self.mismatches += 1;
        }
        let text = format!("{what}:\n  {}\n--- program ---\n{source}", failures.join("\n  "));
        eprintln!("{text}");
        self.failed.push(text);
    }
}

/// The mutant `index` of the program of `seed`.
fn mutant(seed: u64, index: u64) -> (String, &'static str) {
    let program = generate::generate(seed).source;
    mutate::mutants(&program, seed, index as usize + 1).pop().expect("a mutant")
}

/// The long run's work for one seed: its program, executed or compiled,
/// and its mutants, taken as far through the pipeline as they go, every
/// [`EXECUTE_MUTANT_EVERY`]-th one that compiles executed.
fn fuzz_seed(seed: u64, mutants: u64, tally: &mut Tally) {
    let start = Instant::now();
    let name = format!("seed {seed} (NNC_FUZZ_SEED={seed})");
    let program = match catch_unwind(|| generate::generate(seed)) {
        Ok(p) => p,
        Err(p) => {
            tally.fail(name, vec![format!("panic in the generator: {}", panic_message(&*p))], "");
            return;
        }
    };
    tally.programs += 1;
    let batch = batch_of(seed);
    let source = &program.source;
    // The graphs compiled for this seed, program and mutants.
    let mut seen = vec![];
    let clock = Instant::now();
    let execute = seed.is_multiple_of(EXECUTE_PROGRAM_EVERY);
    let failures = if execute {
        tally.executed += 1;
        tally.compiled += 1;
        catch_unwind(AssertUnwindSafe(|| check(seed, source, CONFIGS)))
            .unwrap_or_else(|p| vec![format!("panic: {}", panic_message(&*p))])
    } else {
        match catch_unwind(AssertUnwindSafe(|| compile_through(source, batch, &mut seen))) {
            Ok(Outcome::Compiled(_)) => {
                tally.compiled += 1;
                vec![]
            }
            Ok(Outcome::TooLarge) => vec!["the generated program is too large".into()],
            Ok(Outcome::Rejected(stage, e)) => vec![format!("the generated program stops at {stage}:\n{e}")],
            Err(p) => vec![format!("panic: {}", panic_message(&*p))],
        }
    };
    *tally.time.entry(if execute { "executed" } else { "compiled" }).or_default() += clock.elapsed();
    if !failures.is_empty() {
        tally.fail(name, failures, source);
    }
    let all = match catch_unwind(|| mutate::mutants(source, seed, mutants as usize)) {
        Ok(m) => m,
        Err(p) => {
            tally.fail(
                format!("seed {seed}: mutating"),
                vec![format!("panic in the mutator: {}", panic_message(&*p))],
                source,
            );
            return;
        }
    };
    for (index, (mutant, kind)) in all.iter().enumerate() {
        let index = index as u64;
        let name = format!("seed {seed}, mutant {index} (NNC_FUZZ_SEED={seed} NNC_FUZZ_MUTANT={index})");
        tally.mutants += 1;
        *tally.kinds.entry(kind).or_default() += 1;
        let clock = Instant::now();
        let mut spent = "rejected";
        let failures = match catch_unwind(AssertUnwindSafe(|| compile_through(mutant, batch, &mut seen))) {
            Err(p) => vec![format!("panic: {}", panic_message(&*p))],
            Ok(Outcome::Rejected(stage, text)) => {
                *tally.rejected.entry(stage).or_default() += 1;
                if !matches!(stage, "syntax" | "sema") && tally.late_rejections.len() < 3 {
                    tally
                        .late_rejections
                        .push(format!("{name}, {stage}:\n{text}\n--- program ---\n{mutant}"));
                }
                vec![]
            }
            Ok(Outcome::TooLarge) => {
                tally.too_large += 1;
                vec![]
            }
            Ok(Outcome::Compiled(size)) => {
                tally.compiled += 1;
                spent = "compiled";
                if (seed * mutants + index).is_multiple_of(EXECUTE_MUTANT_EVERY) && size <= EXECUTE_ELEMENTS {
                    tally.executed += 1;
                    spent = "executed";
                    catch_unwind(AssertUnwindSafe(|| check(seed, mutant, SHORT_CONFIGS)))
                        .unwrap_or_else(|p| vec![format!("panic: {}", panic_message(&*p))])
                } else {
                    vec![]
                }
            }
        };
        *tally.time.entry(spent).or_default() += clock.elapsed();
        if !failures.is_empty() {
            tally.fail(name, failures, mutant);
        }
    }
    let took = start.elapsed();
    if took > tally.slowest.0 {
        tally.slowest = (took, format!("seed {seed}"));
    }
}

/// The long run: `NNC_FUZZ_PROGRAMS` generated programs (default enough for
/// 10⁶ programs and mutants) from `NNC_FUZZ_START` (default 1000000), each
/// with `NNC_FUZZ_MUTANTS` mutants (default [`MUTANTS`]), on
/// `NNC_FUZZ_THREADS` workers (default: every core), stopped after
/// `NNC_FUZZ_SECONDS` if given.
#[test]
#[ignore]
fn many_generated_and_mutated_programs() {
    let start = Instant::now();
    let first = env("NNC_FUZZ_START").unwrap_or(LONG_START);
    let mutants = env("NNC_FUZZ_MUTANTS").unwrap_or(MUTANTS);
    let n = env("NNC_FUZZ_PROGRAMS").unwrap_or(LONG_TOTAL.div_ceil(1 + mutants));
    let deadline = env("NNC_FUZZ_SECONDS").map(|s| start + Duration::from_secs(s));
    let workers = env("NNC_FUZZ_THREADS")
        .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |t| t as usize)
        .max(1) as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let done = &done;
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    let mut report = Instant::now();
                    for seed in (first + w..first + n).step_by(workers as usize) {
                        if deadline.is_some_and(|d| Instant::now() > d) {
                            break;
                        }
                        fuzz_seed(seed, mutants, &mut tally);
                        let all = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if w == 0 && report.elapsed() > Duration::from_secs(60) {
                            report = Instant::now();
                            let secs = start.elapsed().as_secs_f64();
                            eprintln!(
                                "{all} of {n} programs with their mutants in {secs:.0} s ({:.0} programs and mutants/s)",
                                all as f64 * (1 + mutants) as f64 / secs
                            );
                        }
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a worker catches its panics")).collect()
    });
    let mut tally = Tally::default();
    for t in tallies {
        tally.add(t);
    }
    let secs = start.elapsed().as_secs_f64();
    let total = tally.programs + tally.mutants;
    let count =
        |m: &BTreeMap<&str, u64>| m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ");
    eprintln!(
        "{total} programs ({} generated, {} mutants) in {secs:.1} s on {workers} threads ({:.0}/s)\n\
         mutations (by last edit): {}\n\
         mutants rejected: {} ({})\n\
         too large for the back end: {}\n\
         through code generation: {}; executed and compared: {}\n\
         mismatches: {}; panics: {}\n\
         time (all threads) by outcome: {}\n\
         slowest: {} ({:.2} s)",
        tally.programs,
        tally.mutants,
        total as f64 / secs,
        count(&tally.kinds),
        tally.rejected.values().sum::<u64>(),
        count(&tally.rejected),
        tally.too_large,
        tally.compiled,
        tally.executed,
        tally.mismatches,
        tally.panics,
        tally
            .time
            .iter()
            .map(|(k, t)| format!("{k} {:.1} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        tally.slowest.1,
        tally.slowest.0.as_secs_f64(),
    );
    for r in &tally.late_rejections {
        eprintln!("rejected after sema: {r}");
    }
    assert!(
        tally.failed.is_empty(),
        "{} of {total} programs failed:\n\n{}",
        tally.failed.len(),
        tally.failed.join("\n\n")
    );
}

/// Generated programs of the default run whose mutants are checked, and
/// mutants of each.
const SHORT_MUTANT_PROGRAMS: u64 = 60;
const SHORT_MUTANTS: u64 = 2;

/// Mutants of the default run's programs: each is rejected with a rendered
/// diagnostic or compiles through code generation, and none panics.
#[test]
fn mutants_are_rejected_or_compile() {
    let mut tally = Tally::default();
    for seed in 0..SHORT_MUTANT_PROGRAMS {
        let source = generate::generate(seed).source;
        let mut seen = vec![];
        for (index, (mutant, kind)) in
            mutate::mutants(&source, seed, SHORT_MUTANTS as usize).iter().enumerate()
        {
            *tally.kinds.entry(kind).or_default() += 1;
            match catch_unwind(AssertUnwindSafe(|| compile_through(mutant, 2, &mut seen))) {
                Ok(Outcome::Rejected(stage, text)) => {
                    assert!(!text.trim().is_empty(), "seed {seed}, mutant {index}: {stage} gave no message");
                    *tally.rejected.entry(stage).or_default() += 1;
                }
                Ok(Outcome::TooLarge) => tally.too_large += 1,
                Ok(Outcome::Compiled(_)) => tally.compiled += 1,
                Err(p) => tally.fail(
                    format!("seed {seed}, mutant {index} (NNC_FUZZ_SEED={seed} NNC_FUZZ_MUTANT={index})"),
                    vec![format!("panic: {}", panic_message(&*p))],
                    mutant,
                ),
            }
        }
    }
    assert!(tally.failed.is_empty(), "{}", tally.failed.join("\n\n"));
    // The mutants reach both ends of the pipeline.
    for stage in ["syntax", "sema"] {
        assert!(tally.rejected.contains_key(stage), "no mutant was rejected by {stage}");
    }
    assert!(tally.compiled > 0, "no mutant compiled");
}

/// Programs the long run found differing, cut down, each with the seed
/// whose inputs show the difference (`tests/differential/found/`, each
/// file saying what it found).
const FOUND: &[(&str, u64)] = &[
    ("constant_channel_batchnorm.nn", 1_001_043),
    ("cancelling_bias_gradient.nn", 1_001_885),
    ("permuted_groupnorm.nn", 3_000_205),
    ("batch_of_two_batchnorm.nn", 1_055_948),
    ("overflowing_gradient.nn", 1_038_820),
    ("lstm_batchnorm_softmax.nn", 1_027_296),
];

#[test]
fn found_programs_match_the_interpreter() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/found");
    let mut failures = vec![];
    for &(file, seed) in FOUND {
        let source = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Outcome::Rejected(stage, text) = compile_through(&source, 3, &mut vec![]) {
            failures.push(format!("{file}: rejected by {stage}:\n{text}"));
            continue;
        }
        failures.extend(check(seed, &source, SHORT_CONFIGS).into_iter().map(|f| format!("{file}: {f}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random rounding at f32 size leaves the outputs of a well-conditioned
/// program within a small part of the tolerance, so the allowance it gives
/// is no wider than the f32 interpreter's where that rounds as usual.
#[test]
fn rounding_of_a_well_conditioned_program_stays_small() {
    // The second's gradient divides by the number of elements equal to a
    // maximum, which rounding must not leave at zero.
    for last in ["dense(3)", "dense(3) |> log_softmax(axis: 1)"] {
        let source = format!(
            "model m {{\n  input x: f32[B, 4]\n  target y: f32[B, 3]\n  h = x |> dense(5) |> tanh |> {last}\n  loss = mse(h, y)\n}}\n"
        );
        rounding_stays_small(&source);
    }
}

fn rounding_stays_small(source: &str) {
    let module = nnc_compiler::compile(source).expect("compiles").module;
    for (what, plain, _) in graphs(&module).expect("graphs") {
        let dims = nnc_compiler::pipeline::batch_dims(&plain, 3);
        let inputs = interp::example_inputs::<f32>(&plain, &dims, 7).expect("inputs");
        let want = interp::run::<f64>(&plain, &widen(&inputs)).expect("runs");
        let floor = 1e-2 * largest(&want);
        for run in rounding_runs(&plain, &inputs).expect("rounding runs") {
            for (name, w) in &want {
                let e = error(&w.convert::<f32>(), &run[name], 0.0, floor).expect("comparable");
                assert!(e < JIT_TOLERANCE / F32_FACTOR, "{what}: `{name}` moves by {e:.2e} under rounding");
            }
        }
    }
}

/// The generator is a function of the seed.
#[test]
fn a_seed_gives_one_program() {
    for seed in [0, 1, 77, 123_456] {
        assert_eq!(generate::generate(seed).source, generate::generate(seed).source);
    }
    assert_ne!(generate::generate(1).source, generate::generate(2).source);
}
