//! Tests of the optimisers: every configuration run for several steps in the
//! reference interpreter against a plain implementation of the textbook
//! update, the emitted inputs and outputs, a printed-IR snapshot, and the
//! errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{append_update, Prefix, LR, STEP};
use crate::autodiff::ParamGrad;
use crate::config::Optimizer;
use crate::ir::interp::{run, Tensor};
use crate::ir::{parse::parse, print::print, verify::verify};
use crate::ir::{DType, Graph, Init, InputKind, Loc, Mode, Op, OutputKind, ParamRole, Shape, Type, ValueId};

/// The parameters of the test graphs: name, shape, role.
const PARAMS: [(&str, &[usize], ParamRole); 3] = [
    ("a.weight", &[3, 2], ParamRole::Weight),
    ("b.bias", &[4], ParamRole::Bias),
    ("c.scale", &[], ParamRole::Scale),
];

/// The maximum norm of the clipped cases, below the norm of every gradient
/// fed, so that clipping scales every step.
const CLIP: f64 = 0.75;

/// Steps run per configuration.
const STEPS: usize = 5;

fn sgd(momentum: f64, nesterov: bool, weight_decay: f64) -> Optimizer {
    Optimizer::Sgd { lr: 0.1, momentum, nesterov, weight_decay }
}

fn adam(beta1: f64, weight_decay: f64) -> Optimizer {
    Optimizer::Adam { lr: 1e-3, beta1, beta2: 0.999, eps: 1e-8, weight_decay }
}

fn adamw(weight_decay: f64) -> Optimizer {
    Optimizer::AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }
}

fn rmsprop(momentum: f64, weight_decay: f64) -> Optimizer {
    Optimizer::RmsProp { lr: 1e-2, alpha: 0.99, eps: 1e-8, momentum, weight_decay }
}

/// Every optimiser configuration checked numerically.
fn configurations() -> Vec<(&'static str, Optimizer)> {
    vec![
        ("sgd", sgd(0.0, false, 0.0)),
        ("sgd+momentum", sgd(0.9, false, 0.0)),
        ("sgd+nesterov", sgd(0.9, true, 0.0)),
        ("sgd+weight_decay", sgd(0.0, false, 0.05)),
        ("sgd+nesterov+weight_decay", sgd(0.8, true, 0.05)),
        ("adam", adam(0.9, 0.0)),
        ("adam+weight_decay", adam(0.9, 0.1)),
        ("adam beta1=0", adam(0.0, 0.0)),
        ("adamw", adamw(0.01)),
        ("adamw weight_decay=0", adamw(0.0)),
        ("rmsprop", rmsprop(0.0, 0.0)),
        ("rmsprop+momentum", rmsprop(0.9, 0.0)),
        ("rmsprop+momentum+weight_decay", rmsprop(0.5, 0.02)),
    ]
}

fn loc(line: u32) -> Loc {
    Loc { line, col: 5, end_line: line, end_col: 20 }
}

/// A graph with the given parameters (at source lines 2, 3, ...) and, as
/// data inputs `grad.NAME`, their gradients.
fn setup(params: &[(&str, &[usize], ParamRole)]) -> (Graph, Vec<ParamGrad>) {
    let mut g = Graph::new("step", Mode::Train);
    let mut grads = vec![];
    for (k, &(name, shape, role)) in params.iter().enumerate() {
        let ty = Type::f32(Shape::known(shape));
        let line = k as u32 + 2;
        let param = g.input(name, InputKind::Param { role, init: Init::Zeros }, ty.clone(), loc(line));
        let grad = g.input(format!("grad.{name}"), InputKind::Data, ty, Loc::NONE);
        grads.push(ParamGrad { name: name.to_string(), param, grad });
    }
    (g, grads)
}

/// Deterministic made-up values: parameter `k`'s initial values.
fn initial(k: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 + 0.8 * (1.1 * i as f64 + 0.6 * k as f64).cos()).collect()
}

/// Deterministic made-up values: parameter `k`'s gradient at `step`.
fn gradient(k: usize, step: usize, n: usize) -> Vec<f64> {
    let (s, k) = (step as f64, k as f64);
    (0..n).map(|i| 0.9 * (0.7 * i as f64 + 1.3 * s + 2.1 * k).sin() + 0.05 * s).collect()
}

/// The learning rate fed at `step` (changes every step, as a schedule does).
fn learning_rate(optimizer: &Optimizer, step: usize) -> f64 {
    optimizer.lr() * (1.0 + 0.5 * step as f64)
}

/// The textbook update over plain vectors: parameters and optimiser state
/// by name (state named as the graph names it).
#[derive(Debug, Default)]
struct Reference {
    params: BTreeMap<String, Vec<f64>>,
    state: BTreeMap<String, Vec<f64>>,
}

/// State `slot` of parameter `name`, zeros when first used.
fn slot<'s>(state: &'s mut BTreeMap<String, Vec<f64>>, name: &str, slot: &str, n: usize) -> &'s mut Vec<f64> {
    state.entry(format!("optim.{name}.{slot}")).or_insert_with(|| vec![0.0; n])
}

impl Reference {
    /// One optimiser step; returns the factor clipping scaled the gradients by.
    fn step(
        &mut self,
        optimizer: &Optimizer,
        clip: Option<f64>,
        grads: &BTreeMap<String, Vec<f64>>,
        lr: f64,
    ) -> f64 {
        let mut grads = grads.clone();
        let mut factor = 1.0;
        if let Some(max_norm) = clip {
            let total = grads.values().flatten().map(|g| g * g).sum::<f64>().sqrt();
            factor = (max_norm / (total + 1e-6)).min(1.0);
            grads.values_mut().flatten().for_each(|g| *g *= factor);
        }
        let t = match optimizer {
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => {
                let t = self.state.entry(STEP.to_string()).or_insert_with(|| vec![0.0]);
                t[0] += 1.0;
                t[0]
            }
            _ => 0.0,
        };
        for (name, g) in &grads {
            let p = self.params.get_mut(name).expect("parameter");
            let n = p.len();
            match *optimizer {
                Optimizer::Sgd { momentum, nesterov, weight_decay, .. } => {
                    for i in 0..n {
                        let mut d = g[i];
                        if weight_decay != 0.0 {
                            d += weight_decay * p[i];
                        }
                        if momentum != 0.0 {
                            let buf = slot(&mut self.state, name, "momentum_buffer", n);
                            buf[i] = momentum * buf[i] + d;
                            d = if nesterov { d + momentum * buf[i] } else { buf[i] };
                        }
                        p[i] -= lr * d;
                    }
                }
                Optimizer::Adam { beta1, beta2, eps, weight_decay, .. }
                | Optimizer::AdamW { beta1, beta2, eps, weight_decay, .. } => {
                    let decoupled = matches!(optimizer, Optimizer::AdamW { .. });
                    let bias1 = 1.0 - beta1.powi(t as i32);
                    let bias2 = 1.0 - beta2.powi(t as i32);
                    for i in 0..n {
                        let mut d = g[i];
                        if decoupled {
                            p[i] *= 1.0 - lr * weight_decay;
                        } else if weight_decay != 0.0 {
                            d += weight_decay * p[i];
                        }
                        let m = slot(&mut self.state, name, "exp_avg", n);
                        m[i] = beta1 * m[i] + (1.0 - beta1) * d;
                        let m = m[i];
                        let v = slot(&mut self.state, name, "exp_avg_sq", n);
                        v[i] = beta2 * v[i] + (1.0 - beta2) * d * d;
                        let v = v[i];
                        p[i] -= (lr / bias1) * m / (v.sqrt() / bias2.sqrt() + eps);
                    }
                }
                Optimizer::RmsProp { alpha, eps, momentum, weight_decay, .. } => {
                    for i in 0..n {
                        let mut d = g[i];
                        if weight_decay != 0.0 {
                            d += weight_decay * p[i];
                        }
                        let sq = slot(&mut self.state, name, "square_avg", n);
                        sq[i] = alpha * sq[i] + (1.0 - alpha) * d * d;
                        let avg = sq[i].sqrt() + eps;
                        if momentum > 0.0 {
                            let buf = slot(&mut self.state, name, "momentum_buffer", n);
                            buf[i] = momentum * buf[i] + d / avg;
                            p[i] -= lr * buf[i];
                        } else {
                            p[i] -= lr * d / avg;
                        }
                    }
                }
            }
        }
        factor
    }
}

fn tensor(shape: &[usize], values: &[f64]) -> Tensor<f64> {
    Tensor::from_f64(shape, values).expect("values fill the shape")
}

fn values(t: &Tensor<f64>) -> Vec<f64> {
    t.as_float().expect("a float tensor").iter().copied().collect()
}

/// Equal to 1e-12 relative.
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let scale = a.abs().max(b.abs());
        assert!((a - b).abs() <= 1e-12 * scale, "{what}[{i}]: graph {a:e}, reference {b:e}");
    }
}

/// The shape of every input of `graph` by name.
fn input_shapes(graph: &Graph) -> HashMap<String, Vec<usize>> {
    graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, .. } => Some((name.clone(), n.ty.shape.as_known().expect("known shape"))),
            _ => None,
        })
        .collect()
}

/// Runs `STEPS` steps of the update in the interpreter, feeding each step's
/// parameter and state outputs back as inputs, and compares the parameters
/// and the state after every step with [`Reference`].
fn check_against_reference(what: &str, optimizer: &Optimizer, clip: Option<f64>) {
    let (mut graph, grads) = setup(&PARAMS);
    append_update(&mut graph, &grads, optimizer, clip, &Prefix::ONLY)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(verify(&graph), Ok(()), "{what}");
    assert_eq!(parse(&print(&graph)).as_ref(), Ok(&graph), "{what}: the printed IR round-trips");
    let shapes = input_shapes(&graph);

    // The carried values: parameters, and every state input at zero.
    let mut carried: HashMap<String, Tensor<f64>> = HashMap::new();
    let mut reference = Reference::default();
    for (k, (name, shape, _)) in PARAMS.iter().enumerate() {
        let init = initial(k, shape.iter().product());
        carried.insert(name.to_string(), tensor(shape, &init));
        reference.params.insert(name.to_string(), init);
    }
    for (_, node) in graph.inputs() {
        if let Op::Input { name, kind: InputKind::State { init: Init::Zeros } } = &node.op {
            let shape = &shapes[name];
            carried.insert(name.clone(), tensor(shape, &vec![0.0; shape.iter().product()]));
        }
    }

    for step in 0..STEPS {
        let lr = learning_rate(optimizer, step);
        let mut inputs = carried.clone();
        inputs.insert(LR.to_string(), Tensor::scalar(lr));
        let mut step_grads = BTreeMap::new();
        for (k, (name, shape, _)) in PARAMS.iter().enumerate() {
            let g = gradient(k, step, shape.iter().product());
            inputs.insert(format!("grad.{name}"), tensor(shape, &g));
            step_grads.insert(name.to_string(), g);
        }
        let outputs = run(&graph, &inputs).unwrap_or_else(|e| panic!("{what}: step {step}: {e}"));
        let mut state_names = BTreeSet::new();
        for ((name, value), output) in outputs.into_iter().zip(&graph.outputs) {
            assert!(matches!(output.kind, OutputKind::Param | OutputKind::State), "{what}: {name}");
            if output.kind == OutputKind::State {
                state_names.insert(name.clone());
            }
            carried.insert(name, value);
        }

        let factor = reference.step(optimizer, clip, &step_grads, lr);
        if clip.is_some() {
            assert!(factor < 0.9, "{what}: step {step}: clipping must scale the gradients ({factor})");
        }
        for (name, want) in &reference.params {
            assert_close(&format!("{what}: step {step}: {name}"), &values(&carried[name]), want);
        }
        let want_names: BTreeSet<String> = reference.state.keys().cloned().collect();
        assert_eq!(state_names, want_names, "{what}: the state is exactly what the optimiser uses");
        for (name, want) in &reference.state {
            assert_close(&format!("{what}: step {step}: {name}"), &values(&carried[name]), want);
        }
    }
}

#[test]
fn every_configuration_matches_the_reference() {
    for (name, optimizer) in configurations() {
        check_against_reference(name, &optimizer, None);
    }
}

#[test]
fn every_configuration_with_clipping_matches_the_reference() {
    for (name, optimizer) in configurations() {
        check_against_reference(&format!("{name} + clip_grad_norm"), &optimizer, Some(CLIP));
    }
}

#[test]
fn clipping_leaves_small_gradients_alone() {
    // A maximum norm far above every gradient's: the factor is 1. Every
    // input is made-up and positive (second moments must be).
    for (name, optimizer) in configurations() {
        let (mut clipped, grads) = setup(&PARAMS);
        append_update(&mut clipped, &grads, &optimizer, Some(1e6), &Prefix::ONLY).expect("valid");
        let (mut plain, grads) = setup(&PARAMS);
        append_update(&mut plain, &grads, &optimizer, None, &Prefix::ONLY).expect("valid");
        let mut inputs: HashMap<String, Tensor<f64>> = HashMap::new();
        for (input, shape) in input_shapes(&clipped) {
            let n = shape.iter().product();
            let positive: Vec<f64> = gradient(n, 1, n).iter().map(|x| x.abs()).collect();
            inputs.insert(input, tensor(&shape, &positive));
        }
        let a = run(&clipped, &inputs).expect("runs");
        let b = run(&plain, &inputs).expect("runs");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert_close(&format!("{name}: {na}"), &values(ta), &values(tb));
        }
    }
}

/// A configuration and the names of the inputs and outputs it adds.
type Interface = (Optimizer, Option<f64>, &'static [&'static str], &'static [&'static str]);

/// The inputs and outputs each configuration adds, for one parameter `w`.
#[test]
fn inputs_and_outputs_follow_pytorch_state_names() {
    let cases: Vec<Interface> = vec![
        (sgd(0.0, false, 0.1), None, &["lr"], &["param w"]),
        (
            sgd(0.9, false, 0.0),
            Some(1.0),
            &["lr", "optim.w.momentum_buffer"],
            &["state optim.w.momentum_buffer", "param w"],
        ),
        (
            sgd(0.9, true, 0.0),
            None,
            &["lr", "optim.w.momentum_buffer"],
            &["state optim.w.momentum_buffer", "param w"],
        ),
        (
            adam(0.9, 0.0),
            None,
            &["lr", "optim.step", "optim.w.exp_avg", "optim.w.exp_avg_sq"],
            &["state optim.step", "state optim.w.exp_avg", "state optim.w.exp_avg_sq", "param w"],
        ),
        (
            adamw(0.01),
            None,
            &["lr", "optim.step", "optim.w.exp_avg", "optim.w.exp_avg_sq"],
            &["state optim.step", "state optim.w.exp_avg", "state optim.w.exp_avg_sq", "param w"],
        ),
        (rmsprop(0.0, 0.0), None, &["lr", "optim.w.square_avg"], &["state optim.w.square_avg", "param w"]),
        (
            rmsprop(0.9, 0.0),
            None,
            &["lr", "optim.w.square_avg", "optim.w.momentum_buffer"],
            &["state optim.w.square_avg", "state optim.w.momentum_buffer", "param w"],
        ),
    ];
    for (optimizer, clip, inputs, outputs) in cases {
        let (mut g, grads) = setup(&[("w", &[2, 2], ParamRole::Weight)]);
        let before = g.nodes.len();
        append_update(&mut g, &grads, &optimizer, clip, &Prefix::ONLY).expect("valid");
        let added: Vec<&str> = g.nodes[before..]
            .iter()
            .filter_map(|n| match &n.op {
                Op::Input { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(added, inputs, "{optimizer:?}");
        let got: Vec<String> = g.outputs.iter().map(|o| format!("{} {}", o.kind.name(), o.name)).collect();
        assert_eq!(got, outputs, "{optimizer:?}");
        for (_, n) in g.inputs() {
            match &n.op {
                Op::Input { name, kind: InputKind::Hyper } => {
                    assert_eq!((name.as_str(), &n.ty), (LR, &Type::scalar(DType::F32)));
                }
                Op::Input { name, kind: InputKind::State { init } } => {
                    assert_eq!(*init, Init::Zeros, "{name}");
                    let scalar = name == STEP;
                    let want =
                        if scalar { Type::scalar(DType::F32) } else { Type::f32(Shape::known(&[2, 2])) };
                    assert_eq!(n.ty, want, "{name}");
                }
                _ => {}
            }
        }
        assert_eq!(verify(&g), Ok(()));
    }
}

/// The optimiser of one of several losses keeps its state under its own
/// prefix, and computes exactly what the only optimiser computes.
#[test]
fn state_of_one_of_several_optimizers_is_prefixed_by_its_loss() {
    let prefix = Prefix::of_loss("gen");
    assert_eq!(
        (prefix.step(), prefix.state("G.weight", "exp_avg")),
        ("optim.gen.step".into(), "optim.gen.G.weight.exp_avg".into())
    );
    assert_eq!(
        (Prefix::ONLY.step(), Prefix::ONLY.state("w", "exp_avg")),
        (STEP.to_string(), "optim.w.exp_avg".into())
    );
    for optimizer in [adam(0.9, 0.0), sgd(0.9, true, 0.0), rmsprop(0.9, 0.0)] {
        let (mut only, grads) = setup(&[("w", &[2, 2], ParamRole::Weight)]);
        let mut named = only.clone();
        append_update(&mut only, &grads, &optimizer, Some(CLIP), &Prefix::ONLY).expect("valid");
        append_update(&mut named, &grads, &optimizer, Some(CLIP), &prefix).expect("valid");
        assert_eq!(verify(&named), Ok(()));
        // The same text but the names (alignment aside).
        let words = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let renamed = print(&only).replace("\"optim.", "\"optim.gen.");
        assert_eq!(words(print(&named)), words(renamed), "{optimizer:?}");
    }
}

#[test]
fn the_initial_learning_rate_does_not_enter_the_graph() {
    let graph = |lr: f64| {
        let (mut g, grads) = setup(&PARAMS);
        let optimizer = Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
        append_update(&mut g, &grads, &optimizer, None, &Prefix::ONLY).expect("valid");
        print(&g)
    };
    assert_eq!(graph(0.1), graph(0.5));
}

#[test]
fn no_parameters() {
    for (name, optimizer) in configurations() {
        for clip in [None, Some(CLIP)] {
            let mut g = Graph::new("empty", Mode::Train);
            append_update(&mut g, &[], &optimizer, clip, &Prefix::ONLY)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(verify(&g), Ok(()), "{name}");
            assert!(g.inputs().any(|(_, n)| matches!(&n.op, Op::Input { name, .. } if name == LR)));
        }
    }
}

#[test]
fn adam_with_clipping_snapshot() {
    let (mut g, grads) = setup(&PARAMS[..2]);
    append_update(&mut g, &grads, &adam(0.9, 0.0), Some(0.5), &Prefix::ONLY).expect("valid");
    insta::assert_snapshot!(print(&crate::sema::inputs_first(g)));
}

/// How each error case breaks a valid setup of [`PARAMS`].
type Breakage = fn(&mut Graph, &mut Vec<ParamGrad>, &mut Optimizer, &mut Option<f64>);

#[test]
fn errors() {
    let cases: Vec<(&str, Breakage, &[&str])> = vec![
        (
            "gradient of another type",
            |_, grads, _, _| grads[0].grad = grads[1].grad,
            &["parameter `a.weight` has type f32[3, 2] but its gradient %3 has type f32[4]"],
        ),
        (
            "an input named lr",
            |g, _, _, _| {
                g.input("lr", InputKind::Hyper, Type::scalar(DType::F32), Loc::NONE);
            },
            &["already has an input named `lr`"],
        ),
        (
            "an input named like the step count",
            |g, _, o, _| {
                *o = adam(0.9, 0.0);
                g.input(STEP, InputKind::State { init: Init::Zeros }, Type::scalar(DType::F32), Loc::NONE);
            },
            &["already has an input named `optim.step`"],
        ),
        (
            "an input named like optimiser state",
            |g, _, o, _| {
                *o = rmsprop(0.0, 0.0);
                let ty = Type::f32(Shape::known(&[4]));
                g.input("optim.b.bias.square_avg", InputKind::State { init: Init::Zeros }, ty, Loc::NONE);
            },
            &["already has an input named `optim.b.bias.square_avg`"],
        ),
        (
            "an output named like a parameter",
            |g, _, _, _| g.output(OutputKind::Other, "b.bias", ValueId(0)),
            &["already has an output named `b.bias`"],
        ),
        (
            "the same parameter twice",
            |_, grads, _, _| grads.push(grads[0].clone()),
            &["already has an output named `a.weight`"],
        ),
        (
            "a parameter that is a data input",
            |_, grads, _, _| grads[0].param = grads[0].grad,
            &["parameter `a.weight`: %1 is a `input` node, not a parameter input"],
        ),
        (
            "a parameter out of range",
            |_, grads, _, _| grads[1].param = ValueId(99),
            &["parameter `b.bias`: %99 is not a value of the graph"],
        ),
        (
            "a gradient out of range",
            |_, grads, _, _| grads[1].grad = ValueId(99),
            &["parameter `b.bias`: gradient %99 is not a value of the graph"],
        ),
        (
            "a name that is not the parameter's",
            |_, grads, _, _| grads[0].name = "b.bias".into(),
            &["parameter `b.bias`: %0 is the parameter `a.weight`"],
        ),
        (
            "an integer parameter",
            |g, grads, _, _| {
                let ty = Type::new(DType::I32, Shape::known(&[2]));
                let kind = InputKind::Param { role: ParamRole::Weight, init: Init::Zeros };
                let param = g.input("n", kind, ty.clone(), Loc::NONE);
                let grad = g.input("grad.n", InputKind::Data, ty, Loc::NONE);
                grads.push(ParamGrad { name: "n".into(), param, grad });
            },
            &["parameter `n` has type i32[2]; only f32 parameters are trained"],
        ),
        ("beta1 = 1", |_, _, o, _| *o = adam(1.0, 0.0), &["adam: `beta1` must be in [0, 1), got 1"]),
        (
            "negative beta2",
            |_, _, o, _| {
                *o = Optimizer::AdamW { lr: 1e-3, beta1: 0.9, beta2: -0.5, eps: 1e-8, weight_decay: 0.0 }
            },
            &["adamw: `beta2` must be in [0, 1), got -0.5"],
        ),
        (
            "Nesterov without momentum",
            |_, _, o, _| *o = sgd(0.0, true, 0.0),
            &["sgd: Nesterov momentum needs `momentum` > 0"],
        ),
        (
            "negative weight decay",
            |_, _, o, _| *o = rmsprop(0.0, -1.0),
            &["rmsprop: `weight_decay` must be a finite number ≥ 0, got -1"],
        ),
        (
            "NaN learning rate",
            |_, _, o, _| {
                *o = Optimizer::Sgd { lr: f64::NAN, momentum: 0.0, nesterov: false, weight_decay: 0.0 }
            },
            &["sgd: `lr` must be a finite number ≥ 0, got NaN"],
        ),
        (
            "negative eps",
            |_, _, o, _| {
                *o = Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: -1e-8, weight_decay: 0.0 }
            },
            &["adam: `eps` must be a finite number ≥ 0"],
        ),
        (
            "zero clip norm",
            |_, _, _, c| *c = Some(0.0),
            &["`clip_grad_norm` must be a finite number > 0, got 0"],
        ),
        ("infinite clip norm", |_, _, _, c| *c = Some(f64::INFINITY), &["got inf"]),
    ];
    for (what, break_it, fragments) in cases {
        let (mut g, mut grads) = setup(&PARAMS);
        let mut optimizer = sgd(0.0, false, 0.0);
        let mut clip = None;
        break_it(&mut g, &mut grads, &mut optimizer, &mut clip);
        let before = g.clone();
        let error = append_update(&mut g, &grads, &optimizer, clip, &Prefix::ONLY).expect_err(what);
        for f in fragments {
            assert!(error.contains(f), "{what}: `{error}` lacks `{f}`");
        }
        assert_eq!(g, before, "{what}: the graph is unchanged on error");
    }
}
