//! Gradient checks of [`differentiate`] for every IR primitive.
//!
//! The cases are the table of [`cases`]: small graphs whose float
//! operands are `param` inputs; the op's result `out` is reduced to the loss
//! `reduce_sum(out * w)`, where `w` is a fixed `input` of distinct
//! pseudo-random values, so that every output element reaches the loss with
//! its own weight. The autodiff gradient (the `grad.NAME` outputs of the
//! backward graph, run by the reference interpreter in f64) is compared with
//! finite differences of the loss, in f64, at **every** element of every
//! parameter.
//!
//! # Finite differences
//!
//! `D(h) = (L(p + h·e_i) − L(p − h·e_i)) / 2h` is the central difference;
//! the check uses its Richardson extrapolation `(4·D(h/2) − D(h)) / 3`, which
//! cancels the `h²` error term, with `h = 1e-4 · max(1, |p_i|)`. Its
//! truncation error is `O(h⁴)` (about 1e-16 here) and its rounding error
//! about `ε·|L| / h` (about 1e-12), both far below the tolerance; a plain
//! central difference would need `h ≈ 1e-6` and then loses six digits to
//! rounding.
//!
//! # Error measure
//!
//! For a parameter tensor `T` with autodiff gradient `ad` and finite
//! differences `fd`, every element must satisfy
//! `|ad_i − fd_i| ≤ 1e-6 · s_T` with the scale
//! `s_T = max(max_j |ad_j|, max_j |fd_j|, 1e-3 · G, 1e-12)`, `G` being the
//! largest gradient component of the whole case. So the error is relative
//! to the tensor's own gradient scale; the floors keep a tensor whose true
//! gradient is zero (a parameter that only feeds a comparison) from being
//! held to an absolute error of zero.
//!
//! # Test points
//!
//! The case table chooses parameter values so that no finite-difference
//! interval (radius `h ≤ 1.5e-4`) reaches a kink (see [`cases`]).
//!
//! Besides the numbers, every case checks the structure of the result: the
//! backward graph verifies, starts with the forward graph unchanged, every
//! backward node names its forward node (`grad_of`) and carries that node's
//! location, the outputs are the forward outputs then one `grad.NAME` per
//! parameter, and the printed graph parses back to the same graph.

use std::collections::{BTreeSet, HashMap};

mod cases;

use cases::{Builder, Case, Values};
use nnc_compiler::autodiff::{differentiate, Backward};
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{parse, print, verify, BinaryOp, Graph, InputKind, Op, OutputKind, UnaryOp, ValueId};

/// Relative tolerance of the gradient check.
const TOLERANCE: f64 = 1e-6;
/// Finite-difference step, relative to `max(1, |p_i|)`.
const STEP: f64 = 1e-4;

// ---------------------------------------------------------------- the check

fn loss(graph: &Graph, inputs: &HashMap<String, Tensor<f64>>) -> f64 {
    let out = interp::run::<f64>(graph, inputs).unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let (_, t) = out.iter().find(|(n, _)| n == "loss").expect("a loss output");
    *t.as_float().and_then(|a| a.iter().next()).expect("a float scalar loss")
}

/// Richardson-extrapolated central difference of the loss in element `i` of
/// parameter `name` (see the module documentation).
fn finite_difference(graph: &Graph, inputs: &HashMap<String, Tensor<f64>>, name: &str, i: usize) -> f64 {
    let mut inputs = inputs.clone();
    let p = inputs[name].as_float().expect("a float parameter").as_slice().expect("standard layout")[i];
    let h = STEP * p.abs().max(1.0);
    let mut at = |x: f64| {
        if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
            a.as_slice_mut().expect("standard layout")[i] = x;
        }
        loss(graph, &inputs)
    };
    let central = |at: &mut dyn FnMut(f64) -> f64, h: f64| (at(p + h) - at(p - h)) / (2.0 * h);
    let d_h = central(&mut at, h);
    let d_half = central(&mut at, h / 2.0);
    (4.0 * d_half - d_h) / 3.0
}

/// The structural checks on the backward graph (see the module
/// documentation). An error means the gradients cannot be checked; the
/// returned list holds the other structural failures.
fn check_structure(name: &str, forward: &Graph) -> Result<(Backward, Vec<String>), String> {
    let backward = differentiate(forward).map_err(|e| format!("{name}: differentiate failed: {e}"))?;
    let g = &backward.graph;
    verify::verify(g).map_err(|e| format!("{name}: backward graph does not verify: {}", e.join("; ")))?;
    let n = forward.nodes.len();
    if g.nodes.len() < n || g.nodes[..n] != forward.nodes[..] {
        return Err(format!("{name}: the backward graph does not start with the forward nodes"));
    }
    if g.outputs.len() < forward.outputs.len() || g.outputs[..forward.outputs.len()] != forward.outputs[..] {
        return Err(format!("{name}: the backward graph does not keep the forward outputs first"));
    }
    let params: Vec<(ValueId, &str)> = forward
        .inputs()
        .filter_map(|(id, node)| match &node.op {
            Op::Input { name, kind: InputKind::Param { .. } } => Some((id, name.as_str())),
            _ => None,
        })
        .collect();
    let grad_outputs = &g.outputs[forward.outputs.len()..];
    if backward.grads.len() != params.len() || grad_outputs.len() != params.len() {
        return Err(format!(
            "{name}: {} parameters but {} gradients and {} extra outputs",
            params.len(),
            backward.grads.len(),
            grad_outputs.len()
        ));
    }
    for ((pg, (id, pname)), out) in backward.grads.iter().zip(&params).zip(grad_outputs) {
        let want = format!("grad.{pname}");
        if pg.name != *pname || pg.param != *id || out.name != want || out.kind != OutputKind::Other {
            return Err(format!("{name}: gradient of `{pname}` is {pg:?} with output {out:?}"));
        }
        if out.value != pg.grad || g.ty(pg.grad) != forward.ty(*id) {
            return Err(format!("{name}: gradient of `{pname}` has type {}", g.ty(pg.grad)));
        }
    }
    let mut failures = vec![];
    for (i, node) in g.nodes.iter().enumerate().skip(n) {
        let Some(of) = node.grad_of else {
            failures.push(format!("{name}: backward node %{i} ({}) has no grad_of", node.op.mnemonic()));
            continue;
        };
        if of.index() >= n {
            failures.push(format!("{name}: backward node %{i} has grad_of {of}, not a forward node"));
        } else if node.loc != forward.node(of).loc {
            failures.push(format!(
                "{name}: backward node %{i} has location {:?}, its forward node {of} {:?}",
                node.loc,
                forward.node(of).loc
            ));
        }
    }
    let text = print::print(g);
    match parse::parse(&text) {
        Err(e) => failures.push(format!("{name}: the printed backward graph does not parse: {e}")),
        Ok(parsed) if parsed != *g || print::print(&parsed) != text => {
            failures.push(format!("{name}: the backward graph does not round-trip through the text format"))
        }
        Ok(_) => {}
    }
    Ok((backward, failures))
}

/// Runs all checks of one case; returns the failures (empty when it passes).
fn check_case(case: &Case) -> Vec<String> {
    let (name, forward, inputs) = (case.name.as_str(), &case.graph, &case.inputs);
    if let Err(e) = verify::verify(forward) {
        return vec![format!("{name}: the case's forward graph does not verify: {}", e.join("; "))];
    }
    let (backward, mut failures) = match check_structure(name, forward) {
        Ok(b) => b,
        Err(e) => return vec![e],
    };
    let outputs = match interp::run::<f64>(&backward.graph, inputs) {
        Ok(o) => o,
        Err(e) => {
            failures.push(format!("{name}: running the backward graph: {e}"));
            return failures;
        }
    };
    let l = loss(forward, inputs);
    let bl =
        outputs.iter().find(|(n, _)| n == "loss").and_then(|(_, t)| t.as_float()?.iter().next().copied());
    if bl != Some(l) {
        failures.push(format!("{name}: the backward graph's loss {bl:?} differs from the forward loss {l}"));
    }
    // (parameter, autodiff, finite differences) per parameter.
    let mut results = vec![];
    for pg in &backward.grads {
        let Some((_, Tensor::Float(ad))) = outputs.iter().find(|(n, _)| *n == format!("grad.{}", pg.name))
        else {
            failures.push(format!("{name}: no float output grad.{}", pg.name));
            return failures;
        };
        let ad: Vec<f64> = ad.iter().copied().collect();
        let fd: Vec<f64> = (0..ad.len()).map(|i| finite_difference(forward, inputs, &pg.name, i)).collect();
        results.push((pg, ad, fd));
    }
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let whole = results.iter().fold(0.0f64, |m, (_, ad, fd)| m.max(largest(ad)).max(largest(fd)));
    for (pg, ad, fd) in &results {
        let scale = largest(ad).max(largest(fd)).max(1e-3 * whole).max(1e-12);
        let values = inputs[&pg.name].as_float().expect("a float parameter");
        let shape = values.shape().to_vec();
        for (i, (&a, &f)) in ad.iter().zip(fd).enumerate() {
            let error = (a - f).abs();
            // A NaN error fails too.
            if error.is_nan() || error > TOLERANCE * scale {
                failures.push(format!(
                    "{name}: d loss / d {}{:?} (value {:.6}): autodiff {a:.12e}, finite differences {f:.12e}, \
                     error {error:.3e} > {:.3e} (scale {scale:.3e})",
                    pg.name,
                    unravel(i, &shape),
                    values.as_slice().expect("standard layout")[i],
                    TOLERANCE * scale
                ));
            }
        }
    }
    failures
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

fn assert_no_failures(failures: Vec<String>, cases: usize) {
    assert!(failures.is_empty(), "{} failure(s) in {cases} cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_primitive_matches_finite_differences() {
    let cases = cases::built();
    let failures: Vec<String> = cases.iter().flat_map(check_case).collect();
    assert_no_failures(failures, cases.len());
}

#[test]
fn text_cases_match_finite_differences() {
    let cases = cases::parsed();
    let failures: Vec<String> = cases.iter().flat_map(check_case).collect();
    assert_no_failures(failures, cases.len());
}

/// The table covers every differentiable forward primitive and the
/// non-differentiable ones that appear inside differentiable graphs.
#[test]
fn cases_cover_every_primitive() {
    let mut seen = BTreeSet::new();
    for case in cases::built() {
        seen.extend(case.graph.nodes.iter().map(|n| n.op.mnemonic()));
    }
    let mut want: Vec<&str> = UnaryOp::ALL.iter().map(|u| u.name()).collect();
    want.extend(BinaryOp::ALL.iter().map(|b| b.name()));
    want.extend([
        "select",
        "broadcast",
        "reshape",
        "permute",
        "slice",
        "pad",
        "concat",
        "reduce_sum",
        "reduce_max",
        "matmul",
        "conv",
        "conv_transpose",
        "maxpool",
        "avgpool",
        "resize",
        "warp",
        "gather",
        "scatter_sum",
        "scatter_max",
        "softmax",
        "standardize",
        // Not differentiable, used inside differentiable graphs.
        "gt",
        "ge",
        "lt",
        "le",
        "cast",
        "argmax",
        "one_hot",
        "size",
        "rng_uniform",
        "const",
        "stop_gradient",
    ]);
    let missing: Vec<&str> = want.into_iter().filter(|m| !seen.contains(m)).collect();
    assert!(missing.is_empty(), "no gradient case uses {missing:?}");
}

/// A graph without a loss output, or with a non-scalar loss, is an error,
/// not a panic.
#[test]
fn bad_graphs_are_errors() {
    let mut no_loss = Builder::new("no_loss");
    let x = no_loss.param("x", &[2], Values::Uniform);
    no_loss.graph.output(OutputKind::Prediction, "y", x);
    let mut vector_loss = Builder::new("vector_loss");
    let x = vector_loss.param("x", &[2], Values::Uniform);
    vector_loss.graph.output(OutputKind::Loss, "loss", x);
    for b in [no_loss, vector_loss] {
        assert!(differentiate(&b.graph).is_err(), "{}: expected an error", b.graph.name);
    }
}

/// `max(x, c)` and `min(x, c)` against a constant send the gradient to `x`
/// exactly where `x > c` (`x < c`): not at ties, not at NaN, not at `-0`
/// against 0. The rule takes the mask of the result (`max(x, c) > c`),
/// which must agree with the operand's at every such point.
#[test]
fn masks_against_constants_hold_at_ties_and_nan() {
    let special =
        [f64::NAN, -0.0, 0.0, 0.25, -1.0, 1.0, f64::INFINITY, f64::NEG_INFINITY, 0.2500001, 0.2499999];
    for (op, c) in [(BinaryOp::Max, 0.0), (BinaryOp::Min, 0.25), (BinaryOp::Max, 0.25), (BinaryOp::Min, 0.0)]
    {
        let mut b = cases::Builder::new("mask");
        let x = b.param("x", &[special.len()], cases::Values::Uniform);
        let c_node = b.splat(c, &[special.len()]);
        let out = b.binary(op, x, c_node);
        let case = b.finish(out);
        let backward = differentiate(&case.graph).expect("differentiates");
        let mut inputs = case.inputs.clone();
        inputs.insert(
            "x".into(),
            Tensor::Float(ndarray::ArrayD::from_shape_vec(vec![special.len()], special.to_vec()).unwrap()),
        );
        let w: Vec<f64> = inputs["w"].as_float().expect("float weights").iter().copied().collect();
        let outputs = interp::run::<f64>(&backward.graph, &inputs).expect("runs");
        let (_, grad) = outputs.iter().find(|(n, _)| n == "grad.x").expect("the gradient of x");
        let grad: Vec<f64> = grad.as_float().expect("a float gradient").iter().copied().collect();
        for (i, &v) in special.iter().enumerate() {
            let through = if op == BinaryOp::Max { v > c } else { v < c };
            let want = if through { w[i] } else { 0.0 };
            assert_eq!(grad[i], want, "{op:?}(x, {c}) at x = {v}");
        }
    }
}
