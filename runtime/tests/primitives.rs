//! Every primitive compiled by the JIT against the reference interpreter.
//!
//! The cases are the compiler's primitive table
//! ([`cases`], from `compiler/tests/cases`): one small graph per IR primitive,
//! with values for all its inputs. Each case is run twice — its forward
//! graph alone, and its backward graph from
//! [`nnc_compiler::autodiff::differentiate`] (the forward outputs, then one
//! `grad.NAME` output per parameter) — through an [`Executable`] and through
//! the reference interpreter in f32 ([`interp::run::<f32>`]), and every
//! output is compared. Each test is one configuration of the executable
//! (threads and access checking); it collects the failures of all cases and
//! reports them together.
//!
//! # Error measure
//!
//! For a float output with reference `r` and compiled result `j`, the error
//! is `max_i |j_i − r_i|` and must be at most `1e-5 · s` with the tensor's
//! scale `s = max(max_i |r_i|, 1e-6)`. The scale is the whole tensor's, not
//! each element's: the two sides may sum in different orders (GEMM blocking,
//! split reductions), which moves every element by a few ulps of the terms'
//! magnitude rather than of the element itself. A NaN where the reference
//! has a number (or the reverse) always fails. Integer and boolean outputs
//! (argmax, comparisons, casts) must be equal element by element.

#[path = "../../compiler/tests/cases/mod.rs"]
mod cases;

use std::collections::HashMap;

use nnc_compiler::autodiff::differentiate;
use nnc_compiler::codegen::Checking;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::Graph;
use nnc_runtime::exec::{Executable, Gemm, Options};

/// Largest error of a float output, relative to the tensor's scale.
const TOLERANCE: f64 = 1e-5;
/// The smallest scale: an all-zero reference is held to `1e-5 · 1e-6`.
const SCALE_FLOOR: f64 = 1e-6;

/// Runs one graph through the executable and the interpreter; returns a
/// description of every output that differs (empty when all agree).
fn check_graph(
    label: &str,
    graph: &Graph,
    inputs: &HashMap<String, Tensor<f32>>,
    options: &Options,
) -> Vec<String> {
    let reference = match interp::run::<f32>(graph, inputs) {
        Ok(r) => r,
        Err(e) => return vec![format!("{label}: the reference interpreter failed: {e}")],
    };
    let mut exe = match Executable::compile(graph, 1, options) {
        Ok(x) => x,
        Err(e) => return vec![format!("{label}: building the executable failed: {e}")],
    };
    let mut names: Vec<&String> = inputs.keys().collect();
    names.sort();
    for name in names {
        if let Err(e) = exe.set_input(name, &inputs[name]) {
            return vec![format!("{label}: set_input `{name}`: {e}")];
        }
    }
    if let Err(e) = exe.run() {
        return vec![format!("{label}: run failed: {e}")];
    }
    let compiled: HashMap<String, Tensor<f32>> = exe.outputs().into_iter().map(|(n, _, t)| (n, t)).collect();
    let mut failures = vec![];
    if compiled.len() != reference.len() {
        failures.push(format!("{label}: {} outputs, the reference has {}", compiled.len(), reference.len()));
    }
    for (name, want) in &reference {
        let Some(got) = compiled.get(name) else {
            failures.push(format!("{label}: no output `{name}`"));
            continue;
        };
        if let Some(problem) = compare(want, got) {
            failures.push(format!("{label}: output `{name}`: {problem}"));
        }
    }
    failures
}

/// Why `got` differs from the reference `want` (see the module's error
/// measure), or `None` when it agrees.
fn compare(want: &Tensor<f32>, got: &Tensor<f32>) -> Option<String> {
    if want.ty() != got.ty() {
        return Some(format!("type {}, the reference {}", got.ty(), want.ty()));
    }
    match (want, got) {
        (Tensor::Float(w), Tensor::Float(g)) => {
            let scale = w.iter().fold(SCALE_FLOOR, |m, &x| m.max(f64::from(x).abs()));
            let mut worst: Option<(f64, usize, f32, f32)> = None;
            for (i, (&r, &j)) in w.iter().zip(g.iter()).enumerate() {
                let error = if r.is_nan() && j.is_nan() {
                    0.0
                } else if r.is_nan() || j.is_nan() {
                    f64::INFINITY
                } else {
                    (f64::from(j) - f64::from(r)).abs()
                };
                if worst.is_none_or(|(e, ..)| error > e) {
                    worst = Some((error, i, r, j));
                }
            }
            let (error, i, r, j) = worst?;
            (error > TOLERANCE * scale).then(|| {
                format!(
                    "max error {error:.3e} > {:.3e} (scale {scale:.3e}) at {:?}: reference {r:e}, compiled {j:e}",
                    TOLERANCE * scale,
                    unravel(i, w.shape())
                )
            })
        }
        (Tensor::Int(w), Tensor::Int(g)) => exact(w.iter().zip(g.iter()), w.shape()),
        (Tensor::Bool(w), Tensor::Bool(g)) => exact(w.iter().zip(g.iter()), w.shape()),
        _ => Some("a different element type".into()),
    }
}

/// The mismatches of an integer or boolean output, if any.
fn exact<'a, T: PartialEq + std::fmt::Debug + 'a>(
    pairs: impl Iterator<Item = (&'a T, &'a T)>,
    shape: &[usize],
) -> Option<String> {
    let mut count = 0;
    let mut first = None;
    for (i, (w, g)) in pairs.enumerate() {
        if w != g {
            count += 1;
            first.get_or_insert(format!("at {:?}: reference {w:?}, compiled {g:?}", unravel(i, shape)));
        }
    }
    first.map(|f| format!("{count} element(s) differ, first {f}"))
}

/// The multi-index of row-major element `i` of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = i % n.max(1);
        i /= n.max(1);
    }
    index
}

/// Checks the forward and the backward graph of every case with `threads`
/// and `checking`, and fails once listing every differing output.
fn check_all(threads: usize, checking: Checking) {
    let options = Options { threads, checking, gemm: Gemm::Tuned };
    let cases = cases::all();
    let mut failures = vec![];
    for case in &cases {
        let inputs: HashMap<String, Tensor<f32>> =
            case.inputs.iter().map(|(n, t)| (n.clone(), t.convert::<f32>())).collect();
        failures.extend(check_graph(&format!("{} (forward)", case.name), &case.graph, &inputs, &options));
        match differentiate(&case.graph) {
            Ok(backward) => failures.extend(check_graph(
                &format!("{} (backward)", case.name),
                &backward.graph,
                &inputs,
                &options,
            )),
            Err(e) => failures.push(format!("{}: differentiate failed: {e}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) in {} cases with {threads} thread(s), {checking:?}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn one_thread_unchecked() {
    check_all(1, Checking::Unchecked);
}

#[test]
fn two_threads_unchecked() {
    check_all(2, Checking::Unchecked);
}

#[test]
fn two_threads_checked() {
    check_all(2, Checking::Checked);
}
