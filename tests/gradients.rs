//! Gradient checks of every model in `models/`: the backward pass that
//! `nnc_compiler::autodiff::differentiate_loss` appends to the training
//! graph agrees with finite differences of the loss computed by the
//! reference interpreter in f64 (for a model with several losses, each
//! optimiser's loss with respect to the parameters it updates). Models are listed at test time, so a new file is
//! covered by adding it.
//!
//! # Inputs
//!
//! `example_inputs` with `B = 1` and a fixed seed: data and targets random,
//! parameters and batchnorm state from their initialisers, except that
//! parameters initialised to zero get small random values (a generic
//! point: see [`off_zero`]), the dropout key
//! fixed, so the loss is a deterministic function of the parameters (the
//! dropout mask depends on the key only).
//!
//! # What is compared
//!
//! A finite difference costs two to four runs of the model in the
//! interpreter, so not every element is checked:
//! 1. **one balanced random direction over all parameters**: `v` has random
//!    entries of magnitude `[0.5, 1]` scaled per tensor by `1 / ‖g_T‖`, so
//!    every tensor moves the loss about equally; `∇L·v` is compared with the
//!    finite difference of `t ↦ L(p + t·v)`, relative to `Σ_i |g_i·v_i|`.
//!    A wrong gradient anywhere shows up here. A direction that crosses a
//!    kink at every step (below) is replaced by another draw, up to three.
//! 2. **coordinates of each tensor**: the element of largest `|gradient|`,
//!    then up to three more at deterministic pseudo-random positions, in
//!    rounds over the tensors (every tensor's first coordinate before any
//!    tensor's second) until [`COST_BUDGET`] estimated multiply-adds are
//!    spent. A coordinate's finite difference recomputes only the nodes
//!    that depend on its tensor (the rest is fed from the unperturbed run),
//!    and its cost is estimated from those nodes, so the selection does not
//!    depend on the machine.
//!    The `#[ignore]`d test checks four coordinates of every tensor, without
//!    a budget (`cargo test --test gradients -- --ignored`).
//!
//! # Finite differences and kinks
//!
//! The estimate is the Richardson extrapolation `(4·D(h/2) − D(h)) / 3` of
//! the central difference `D(h) = (L(p + h) − L(p − h)) / 2h`, with
//! `h = 1e-4·max(1, |p_i|)`: truncation error `O(h⁴)`, rounding error about
//! `ε·|L|/h`. ReLU, max-pooling, max/min and comparisons make the loss
//! piecewise smooth; a step that crosses a kink would make the difference
//! wrong by a whole gradient contribution. So every evaluation also records
//! the *branch signature* of the run (every comparison result, the chosen
//! operand of each max/min, the sign seen by abs/sign, the arg-max of every
//! `reduce_max` and max-pooling window, every float→int cast); the estimate
//! is accepted only when all four points have the signature of the
//! unperturbed run. Otherwise `h` shrinks tenfold, down to `1e-7`; a
//! coordinate that still straddles a kink is reported as skipped and the
//! next candidate is used (the test fails if a tensor has none left).
//!
//! # Tolerance
//!
//! `|ad_i − fd_i| ≤ max(1e-6 · s_T, n)`, where `s_T = max(max_j |ad_T,j|,
//! |fd_i|, 1e-3·G)` is the gradient scale of the tensor, floored at a
//! thousandth of the model's largest gradient component `G` (a tensor such
//! as a conv bias followed by batchnorm has a true gradient of zero), and
//! `n = 1000·ε·|L|/h` bounds the rounding noise of the difference itself: a
//! loss reduced over ~10⁵ terms in f64 carries a relative rounding error of
//! up to about a thousand ulps, which the division by `h` amplifies.

mod common;

use std::collections::HashMap;

use common::{compile_ok, display_path, for_each_file, nn_files};
use nnc_compiler::autodiff::differentiate_loss;
use nnc_compiler::config::LossOptimizer;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{
    self, BinaryOp, DType, Graph, InputKind, Loc, Node, Op, PoolKind, Type, UnaryOp, ValueId, WarpAttrs,
    WarpMode, WindowAttrs,
};

const BATCH: usize = 1;
const SEED: u64 = 7;
const TOLERANCE: f64 = 1e-6;
/// Relative rounding error of one loss evaluation, in units of f64's ε.
const LOSS_ULPS: f64 = 1000.0;
const STEP: f64 = 1e-4;
/// Smallest step tried before a coordinate is declared to straddle a kink.
const SMALLEST_STEP: f64 = 1e-7;
/// Random directions tried before the direction check fails at kinks.
const DIRECTIONS: usize = 3;
/// Coordinates per tensor besides the largest-gradient one.
const EXTRA_COORDINATES: usize = 3;
/// Estimated multiply-adds the coordinate checks of one model may spend.
const COST_BUDGET: f64 = 2.5e9;

type Inputs = HashMap<String, Tensor<f64>>;

// ---------------------------------------------------------------- evaluation

/// A graph evaluated repeatedly at perturbed values of some parameters.
struct Probe {
    graph: Graph,
    inputs: Inputs,
    loss: ValueId,
    /// Estimated multiply-adds of one run.
    cost: f64,
}

/// One run: the loss and the branch signature.
fn evaluate(probe: &Probe, inputs: &Inputs) -> Result<(f64, Vec<Vec<i64>>), String> {
    let values = interp::run_all::<f64>(&probe.graph, inputs).map_err(|e| e.to_string())?;
    let loss = float(&values[probe.loss.index()])?.iter().next().copied().ok_or("empty loss")?;
    Ok((loss, signature(&probe.graph, &values)?))
}

fn float(t: &Tensor<f64>) -> Result<&ndarray::ArrayD<f64>, String> {
    t.as_float().ok_or_else(|| format!("expected a float tensor, got {}", t.ty()))
}

/// Which branch every piecewise op took (see the module documentation).
fn signature(graph: &Graph, values: &[Tensor<f64>]) -> Result<Vec<Vec<i64>>, String> {
    let mut out = vec![];
    for (i, node) in graph.nodes.iter().enumerate() {
        let arg = |k: usize| &values[node.args[k].index()];
        let entry: Vec<i64> = match &node.op {
            Op::Compare(_) => values[i].as_bool().ok_or("compare")?.iter().map(|&b| i64::from(b)).collect(),
            Op::ArgMax { .. } => values[i].as_int().ok_or("argmax")?.iter().map(|&v| i64::from(v)).collect(),
            Op::Cast { .. } if arg(0).dtype() == DType::F32 => match &values[i] {
                Tensor::Int(a) => a.iter().map(|&v| i64::from(v)).collect(),
                Tensor::Bool(a) => a.iter().map(|&v| i64::from(v)).collect(),
                Tensor::Float(_) => continue,
            },
            Op::Binary(BinaryOp::Max | BinaryOp::Min) => {
                float(arg(0))?.iter().zip(float(arg(1))?).map(|(a, b)| i64::from(a >= b)).collect()
            }
            Op::Unary(UnaryOp::Abs | UnaryOp::Sign) => float(arg(0))?.iter().map(|&x| sign(x)).collect(),
            Op::ReduceMax { axes } => {
                let (x, m) = (float(arg(0))?, float(&values[i])?);
                x.indexed_iter()
                    .map(|(idx, &v)| {
                        let kept: Vec<usize> =
                            (0..x.ndim()).filter(|d| !axes.contains(d)).map(|d| idx[d]).collect();
                        i64::from(v == m[ndarray::IxDyn(&kept)])
                    })
                    .collect()
            }
            Op::Pool(WindowAttrs { kind: PoolKind::Max, window, stride, padding }) => {
                pool_argmax(float(arg(0))?, float(&values[i])?.shape(), window, stride, padding)
            }
            Op::Warp(WarpAttrs { mode: WarpMode::Bilinear, .. }) => sample_cells(float(arg(1))?)?,
            _ => continue,
        };
        out.push(entry);
    }
    Ok(out)
}

/// The grid cell of every bilinear sample of a warp along `flow:
/// [N, 2, H, W]`: `⌊i + dy⌋` and `⌊j + dx⌋` at output position `(i, j)`.
/// Bilinear interpolation is linear within a cell only, so a step whose
/// sample crosses a grid line crosses a kink.
fn sample_cells(flow: &ndarray::ArrayD<f64>) -> Result<Vec<i64>, String> {
    let &[n, 2, h, w] = flow.shape() else {
        return Err(format!("a flow [N, 2, H, W], got {:?}", flow.shape()));
    };
    let mut cells = Vec::with_capacity(2 * n * h * w);
    for b in 0..n {
        for axis in 0..2 {
            for i in 0..h {
                for j in 0..w {
                    let at = if axis == 0 { i } else { j };
                    let p = at as f64 + flow[[b, axis, i, j]];
                    cells.push(p.floor() as i64);
                }
            }
        }
    }
    Ok(cells)
}

fn sign(x: f64) -> i64 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// The flat input index of the first maximum of every max-pooling window.
fn pool_argmax(
    x: &ndarray::ArrayD<f64>,
    out_shape: &[usize],
    window: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
) -> Vec<i64> {
    let s = window.len();
    let taps: usize = window.iter().product();
    let mut result = vec![];
    for (o, _) in ndarray::ArrayD::<u8>::zeros(ndarray::IxDyn(out_shape)).indexed_iter() {
        let mut best: Option<(f64, i64)> = None;
        for t in 0..taps {
            let mut rest = t;
            let mut pos = vec![0; 2 + s];
            pos[0] = o[0];
            pos[1] = o[1];
            for d in (0..s).rev() {
                let k = rest % window[d];
                rest /= window[d];
                let p = (o[2 + d] * stride[d] + k) as i64 - padding[d].0 as i64;
                pos[2 + d] = if p >= 0 && (p as usize) < x.shape()[2 + d] { p as usize } else { usize::MAX };
            }
            if pos.contains(&usize::MAX) {
                continue;
            }
            let v = x[ndarray::IxDyn(&pos)];
            let flat = pos.iter().zip(x.shape()).fold(0i64, |acc, (&p, &n)| acc * n as i64 + p as i64);
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, flat));
            }
        }
        result.push(best.map_or(-1, |(_, f)| f));
    }
    result
}

/// Estimated multiply-adds of a node: output elements times the reduction
/// length of conv, matmul and pooling, ten per element of a gather or
/// scatter, one per element otherwise.
fn node_cost(graph: &Graph, node: &Node, dims: &HashMap<String, usize>) -> f64 {
    let count = |ty: &Type| -> f64 {
        ty.shape.resolve(&|s| dims.get(s).copied()).map_or(1.0, |d| d.iter().product::<usize>() as f64)
    };
    let out = count(&node.ty);
    let per = match &node.op {
        // Weight elements per output channel: exact for conv, an upper bound
        // (by the stride) for conv_transpose.
        Op::Conv { .. } | Op::ConvTranspose { .. } => {
            count(graph.ty(node.args[1])) / node.ty.shape.dims()[1].known().unwrap_or(1) as f64
        }
        Op::MatMul => graph.ty(node.args[0]).shape.dims().last().and_then(|d| d.known()).unwrap_or(1) as f64,
        Op::MatMulSum => {
            let a = count(graph.ty(node.args[0]));
            a / graph.ty(node.args[0]).shape.dims().iter().rev().nth(1).and_then(|d| d.known()).unwrap_or(1)
                as f64
        }
        Op::Pool(w) => w.window.iter().product::<usize>() as f64,
        // Indexed reads and writes: the interpreter resolves an index per
        // element, measured at about ten multiply-adds' time.
        Op::Gather { .. } | Op::ScatterSum { .. } | Op::ScatterMax { .. } | Op::ScatterMaxGrad { .. } => 10.0,
        _ => 1.0,
    };
    out * per
}

/// The part of `forward` that depends on `param`, as a graph whose other
/// operands are data inputs fed from the unperturbed run (`base`). `None`
/// when the loss does not depend on `param`.
fn cone(
    forward: &Graph,
    loss: ValueId,
    param: ValueId,
    base: &[Tensor<f64>],
    inputs: &Inputs,
) -> Option<Probe> {
    let n = forward.nodes.len();
    let mut depends = vec![false; n];
    depends[param.index()] = true;
    for i in param.index() + 1..n {
        depends[i] = forward.nodes[i].args.iter().any(|a| depends[a.index()]);
    }
    if !depends[loss.index()] {
        return None;
    }
    let mut needed = vec![false; n];
    needed[loss.index()] = true;
    for i in (0..n).rev() {
        if needed[i] {
            for a in &forward.nodes[i].args {
                needed[a.index()] = true;
            }
        }
    }
    let mut graph = Graph::new(format!("{} cone of {param}", forward.name), forward.mode);
    let mut new_id: HashMap<usize, ValueId> = HashMap::new();
    let mut probe_inputs = Inputs::new();
    let dims = HashMap::from([("B".to_string(), BATCH)]);
    let mut cost = 0.0;
    for i in 0..n {
        if !(needed[i] && depends[i]) {
            continue;
        }
        let node = &forward.nodes[i];
        let mut args = vec![];
        for a in &node.args {
            let id = *new_id.entry(a.index()).or_insert_with(|| {
                let name = format!("cached.{}", a.index());
                probe_inputs.insert(name.clone(), base[a.index()].clone());
                graph.input(name, InputKind::Data, forward.ty(*a).clone(), Loc::NONE)
            });
            args.push(id);
        }
        if let Op::Input { name, .. } = &node.op {
            probe_inputs.insert(name.clone(), inputs[name].clone());
        }
        cost += node_cost(forward, node, &dims);
        let id = graph.push(Node { args, ..node.clone() });
        new_id.insert(i, id);
    }
    Some(Probe { loss: new_id[&loss.index()], graph, inputs: probe_inputs, cost })
}

/// The finite-difference estimate of the derivative of the loss along
/// `direction` (a sparse list of (input, flat index, weight)), shrinking the
/// step while a branch signature differs from the unperturbed run's, and the
/// bound of its rounding noise (`LOSS_ULPS · ε · |L| / h`).
fn directional(
    probe: &Probe,
    direction: &[(String, usize, f64)],
    base_signature: &[Vec<i64>],
) -> Result<(f64, f64), String> {
    let scale = direction
        .iter()
        .map(|(name, i, _)| float(&probe.inputs[name]).map(|a| a.as_slice().map_or(0.0, |s| s[*i].abs())))
        .try_fold(1.0f64, |m, v| v.map(|v| m.max(v)))?;
    let mut h = STEP * scale;
    while h >= SMALLEST_STEP * scale {
        let at = |t: f64| -> Result<(f64, bool), String> {
            let mut inputs = probe.inputs.clone();
            for (name, i, w) in direction {
                if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
                    if let Some(s) = a.as_slice_mut() {
                        s[*i] += t * w;
                    }
                }
            }
            let (l, sig) = evaluate(probe, &inputs)?;
            Ok((l, sig == base_signature))
        };
        let (lp, a) = at(h)?;
        let (lm, b) = at(-h)?;
        let (lp2, c) = at(h / 2.0)?;
        let (lm2, d) = at(-h / 2.0)?;
        if a && b && c && d {
            let d_h = (lp - lm) / (2.0 * h);
            let d_half = (lp2 - lm2) / h;
            let noise = LOSS_ULPS * f64::EPSILON * lp.abs().max(lm.abs()) / h;
            return Ok(((4.0 * d_half - d_h) / 3.0, noise));
        }
        h /= 10.0;
    }
    Err(format!("every step down to {:.0e} crosses a kink", SMALLEST_STEP * scale))
}

/// Deterministic pseudo-random numbers in [0, 1) for the sampling.
fn draw(stream: &str, i: u64) -> f64 {
    let s = stream
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    f64::from(ir::rng::uniform([31, 5], s, i))
}

// ---------------------------------------------------------------- the check

/// Checks one model; `budget` limits the coordinate checks (`None`: every
/// tensor gets `1 + EXTRA_COORDINATES` coordinates).
fn check_model(name: &str, source: &str, budget: Option<f64>) {
    let module = compile_ok(std::path::Path::new(name), source);
    // Each optimiser's loss with respect to the parameters it updates: every
    // parameter for a model with one loss.
    let optimizers = nnc_compiler::pipeline::optimizers(&module);
    for o in &optimizers {
        let label =
            if optimizers.len() > 1 { format!("{name} (loss `{}`)", o.loss) } else { name.to_string() };
        check_loss(&label, &module.train_graph, o, budget);
    }
}

/// Gives the parameters that start at zero small random values instead
/// (uniform on ±0.1), so that the check runs at a generic point: a zero
/// bias hides a missing term, and a flow that starts at zero (TrajGRU's)
/// samples every warp exactly on grid lines, where bilinear sampling has
/// a kink in every direction.
fn off_zero(graph: &Graph, inputs: &mut HashMap<String, Tensor<f64>>) {
    let key = ir::rng::seed_key(SEED + 1);
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind: InputKind::Param { init: ir::Init::Zeros, .. } } = &node.op else {
            continue;
        };
        let Some(Tensor::Float(a)) = inputs.get_mut(name) else { continue };
        let stream = ir::rng::name_stream(name);
        for (i, v) in a.iter_mut().enumerate() {
            *v = 0.2 * f64::from(ir::rng::uniform(key, stream, i as u64)) - 0.1;
        }
    }
}

/// Checks the gradient of the loss of optimiser `o` with respect to its
/// parameters.
fn check_loss(name: &str, forward: &Graph, o: &LossOptimizer, budget: Option<f64>) {
    let start = std::time::Instant::now();
    let backward = differentiate_loss(forward, &o.loss, &|p| o.updates(p))
        .unwrap_or_else(|e| panic!("{name}: differentiate failed: {e}"));
    let dims = HashMap::from([("B".to_string(), BATCH)]);
    let mut inputs =
        interp::example_inputs::<f64>(forward, &dims, SEED).unwrap_or_else(|e| panic!("{name}: {e}"));
    off_zero(forward, &mut inputs);
    let values = interp::run_all::<f64>(&backward.graph, &inputs)
        .unwrap_or_else(|e| panic!("{name}: running the backward graph: {e}"));
    let loss = forward.find_output(&o.loss).unwrap_or_else(|| panic!("{name}: no loss output")).value;
    let grads: Vec<(String, ValueId, Vec<f64>)> = backward
        .grads
        .iter()
        .map(|pg| {
            let g =
                float(&values[pg.grad.index()]).unwrap_or_else(|e| panic!("{name}: grad.{}: {e}", pg.name));
            (pg.name.clone(), pg.param, g.iter().copied().collect())
        })
        .collect();
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let whole = grads.iter().fold(0.0f64, |m, (_, _, g)| m.max(largest(g)));
    let mut failures = vec![];
    let mut checked = 0;

    // 1. One balanced random direction over all parameters.
    let full = Probe { graph: forward.clone(), inputs: inputs.clone(), loss, cost: 0.0 };
    let base_values = &values[..forward.nodes.len()];
    let base_signature = signature(forward, base_values).unwrap_or_else(|e| panic!("{name}: {e}"));
    let norms: Vec<f64> = grads.iter().map(|(_, _, g)| g.iter().map(|x| x * x).sum::<f64>().sqrt()).collect();
    let top = norms.iter().fold(0.0f64, |m, &x| m.max(x));
    let grad_of = |pname: &str| &grads.iter().find(|g| g.0 == pname).expect("a gradient per parameter").2;
    // A direction whose every step crosses a kink (likely in a network with
    // hundreds of thousands of ReLUs) is replaced by another draw.
    let mut kinks = vec![];
    for attempt in 0..DIRECTIONS {
        let mut direction = vec![];
        for ((pname, _, g), norm) in grads.iter().zip(&norms) {
            let m = 1.0 / norm.max(1e-3 * top).max(1e-30);
            let stream = if attempt == 0 { pname.clone() } else { format!("{pname}#{attempt}") };
            for i in 0..g.len() {
                let u = draw(&stream, i as u64);
                let r = if u < 0.5 { -(0.5 + u) } else { u };
                direction.push((pname.clone(), i, r * m));
            }
        }
        let peak = direction.iter().fold(0.0f64, |m, d| m.max(d.2.abs()));
        for d in &mut direction {
            d.2 /= peak;
        }
        let ad: f64 = direction.iter().map(|(p, i, w)| grad_of(p)[*i] * w).sum();
        let scale: f64 = direction.iter().map(|(p, i, w)| (grad_of(p)[*i] * w).abs()).sum();
        match directional(&full, &direction, &base_signature) {
            Ok((fd, noise)) if (ad - fd).abs() <= (TOLERANCE * scale).max(noise) => {}
            Ok((fd, noise)) => failures.push(format!(
                "{name}: random direction over all parameters: autodiff {ad:.12e}, finite differences \
                 {fd:.12e}, error {:.3e} > {:.3e}",
                (ad - fd).abs(),
                (TOLERANCE * scale).max(noise)
            )),
            Err(e) => {
                kinks.push(e);
                continue;
            }
        }
        break;
    }
    if kinks.len() == DIRECTIONS {
        failures.push(format!("{name}: every random direction crosses a kink: {kinks:?}"));
    }

    // 2. Coordinates, in rounds over the tensors.
    let mut probes: Vec<Option<(Probe, Vec<Vec<i64>>)>> = vec![];
    let mut candidates: Vec<Vec<usize>> = vec![];
    for (pname, param, g) in &grads {
        let probe = cone(forward, loss, *param, base_values, &inputs);
        let probe = probe.map(|p| {
            let sig = evaluate(&p, &p.inputs).unwrap_or_else(|e| panic!("{name}: cone of {pname}: {e}")).1;
            (p, sig)
        });
        probes.push(probe);
        let argmax = (0..g.len()).fold(0, |b, i| if g[i].abs() > g[b].abs() { i } else { b });
        let mut list = vec![argmax];
        for k in 0..g.len() as u64 {
            let i = (draw(&format!("{pname}/coordinates"), k) * g.len() as f64) as usize;
            if !list.contains(&i) {
                list.push(i);
            }
            if list.len() > 3 * (EXTRA_COORDINATES + 1) {
                break;
            }
        }
        candidates.push(list);
    }
    let mut spent = 0.0;
    let mut done = vec![0usize; grads.len()];
    let mut next = vec![0usize; grads.len()];
    let mut skipped = vec![];
    for _round in 0..=EXTRA_COORDINATES {
        for (t, (pname, _, g)) in grads.iter().enumerate() {
            let tensor_scale = largest(g).max(1e-3 * whole);
            let Some((probe, sig)) = &probes[t] else {
                // The loss does not depend on this tensor: its gradient must be zero.
                if done[t] == 0 {
                    done[t] = 1;
                    if largest(g) != 0.0 {
                        failures.push(format!(
                            "{name}: {pname} does not reach the loss, gradient {}",
                            largest(g)
                        ));
                    }
                }
                continue;
            };
            while next[t] < candidates[t].len() {
                if budget.is_some_and(|b| spent + 4.0 * probe.cost > b) {
                    break;
                }
                let i = candidates[t][next[t]];
                next[t] += 1;
                spent += 4.0 * probe.cost;
                let dir = [(pname.clone(), i, 1.0)];
                match directional(probe, &dir, sig) {
                    Ok((fd, noise)) => {
                        checked += 1;
                        done[t] += 1;
                        let s = tensor_scale.max(fd.abs());
                        let error = (g[i] - fd).abs();
                        let tolerance = (TOLERANCE * s).max(noise);
                        if error.is_nan() || error > tolerance {
                            failures.push(format!(
                                "{name}: d loss / d {pname}[{i}]: autodiff {:.12e}, finite differences {fd:.12e}, \
                                 error {:.3e} > {:.3e}",
                                g[i],
                                (g[i] - fd).abs(),
                                tolerance
                            ));
                        }
                        break;
                    }
                    Err(e) => skipped.push(format!("{pname}[{i}]: {e}")),
                }
            }
        }
    }
    for (t, (pname, _, _)) in grads.iter().enumerate() {
        if done[t] == 0 && next[t] >= candidates[t].len() {
            failures.push(format!("{name}: no coordinate of {pname} could be checked"));
        }
    }
    println!(
        "{name}: {} tensors, direction + {checked} coordinates ({} skipped at kinks: {:?}), \
         {:.1e} estimated multiply-adds, {:.1?}",
        grads.len(),
        skipped.len(),
        skipped,
        spent,
        start.elapsed()
    );
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_model_gradient_matches_finite_differences() {
    for_each_file(&nn_files("models"), |path, source| {
        check_model(&display_path(path), source, Some(COST_BUDGET))
    });
}

#[test]
#[ignore = "checks every parameter tensor of every model; takes minutes"]
fn every_model_every_tensor() {
    for_each_file(&nn_files("models"), |path, source| check_model(&display_path(path), source, None));
}
