//! Tests of every built-in through the whole of sema, from source text: the
//! result type of a representative call, the tensors each layer creates
//! against its catalogue row, the catalogue's coverage of the language
//! contract, the order of graph inputs, and full graphs run by the reference
//! interpreter.

use std::collections::HashMap;

use crate::diag::render_plain;
use crate::ir::interp::{example_inputs, run, Tensor};
use crate::ir::{Graph, Init, InputKind, Op, OutputKind, ParamRole};

use super::catalogue::{self, InitRule, Kind, Role};
use super::{analyze, ConstData, Module};

/// A model with inputs of several ranks and `r = EXPR`.
fn model_with(expr: &str) -> String {
    format!(
        "model m {{
  input x: f32[B, 4]
  input seq: f32[B, 3, 10]
  input img: f32[B, 1, 8, 8]
  input vol: f32[B, 2, 4, 4, 4]
  target labels: i32[B]
  r = {expr}
}}
"
    )
}

pub(super) fn analyse_ok(src: &str) -> Module {
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "syntax errors: {}", render_plain("t.nn", src, &syntax));
    match analyze(&file, src) {
        Ok(m) => m,
        Err(d) => panic!("unexpected errors:\n{}", render_plain("t.nn", src, &d)),
    }
}

/// The type of the prediction `r` of the model `src`, whose training and
/// inference graphs must verify.
pub(super) fn prediction_type(src: &str) -> String {
    let m = analyse_ok(src);
    let g = &m.train_graph;
    let out = g.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("prediction");
    assert_eq!(out.name, "r");
    for graph in [&m.train_graph, &m.infer_graph] {
        crate::ir::verify::verify(graph).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    }
    g.ty(out.value).to_string()
}

/// The type of `r` in [`model_with`].
fn type_of(expr: &str) -> String {
    prediction_type(&model_with(expr))
}

#[test]
fn every_builtin_has_the_documented_result_type() {
    let cases: &[(&str, &str)] = &[
        // Layers.
        ("dense(x, 8)", "f32[B, 8]"),
        ("dense(seq, 5, bias: false)", "f32[B, 3, 5]"),
        ("conv1d(seq, 4, kernel: 3)", "f32[B, 4, 8]"),
        ("conv2d(img, 4, kernel: 3, pad: same, stride: 2)", "f32[B, 4, 4, 4]"),
        ("conv2d(img, 4, kernel: [3, 1], pad: 1)", "f32[B, 4, 8, 10]"),
        ("conv2d(img, 2, kernel: 3, dilation: 2)", "f32[B, 2, 4, 4]"),
        ("conv2d(img, 2, kernel: 3, dilation: 2, pad: same)", "f32[B, 2, 8, 8]"),
        ("conv3d(vol, 3, kernel: 3, pad: same)", "f32[B, 3, 4, 4, 4]"),
        ("conv_transpose2d(img, 2, kernel: 2, stride: 2)", "f32[B, 2, 16, 16]"),
        ("conv_transpose2d(img, 2, kernel: 3, stride: 2, pad: 1)", "f32[B, 2, 15, 15]"),
        ("batchnorm(img)", "f32[B, 1, 8, 8]"),
        ("batchnorm(x, momentum: 0.01, eps: 1e-3)", "f32[B, 4]"),
        ("layernorm(seq)", "f32[B, 3, 10]"),
        ("groupnorm(conv2d(img, 4, kernel: 1), 2)", "f32[B, 4, 8, 8]"),
        ("convlstm(vol, 3, kernel: 3)", "f32[B, 2, 3, 4, 4]"),
        ("convlstm(vol, 3, kernel: 1, forecast: 5, bias: false)", "f32[B, 5, 3, 4, 4]"),
        ("vol |> convlstm(1, kernel: 5, forecast: 1)", "f32[B, 1, 1, 4, 4]"),
        ("convgru(vol, 3, kernel: 3)", "f32[B, 2, 3, 4, 4]"),
        ("vol |> convgru(2, kernel: 1, forecast: 4, bias: false)", "f32[B, 4, 2, 4, 4]"),
        ("trajgru(vol, 3, kernel: 3, links: 2)", "f32[B, 2, 3, 4, 4]"),
        ("vol |> trajgru(2, kernel: 5, links: 1, forecast: 3, flow_channels: 4)", "f32[B, 3, 2, 4, 4]"),
        // Activations.
        ("relu(x)", "f32[B, 4]"),
        ("leaky_relu(x, alpha: 0.2)", "f32[B, 4]"),
        ("elu(x)", "f32[B, 4]"),
        ("selu(x)", "f32[B, 4]"),
        ("gelu(x)", "f32[B, 4]"),
        ("sigmoid(x)", "f32[B, 4]"),
        ("tanh(x)", "f32[B, 4]"),
        ("softplus(x)", "f32[B, 4]"),
        ("softmax(x)", "f32[B, 4]"),
        ("log_softmax(seq, axis: 1)", "f32[B, 3, 10]"),
        // Tensor operations.
        ("exp(x)", "f32[B, 4]"),
        ("log(x)", "f32[B, 4]"),
        ("sqrt(x)", "f32[B, 4]"),
        ("abs(x)", "f32[B, 4]"),
        ("square(x)", "f32[B, 4]"),
        ("clip(x, -1, 1)", "f32[B, 4]"),
        ("dropout(x, 0.5)", "f32[B, 4]"),
        ("maxpool2d(img, 2)", "f32[B, 1, 4, 4]"),
        ("maxpool2d(img, 3, stride: 1, pad: 1)", "f32[B, 1, 8, 8]"),
        ("avgpool2d(img, 2, stride: 1)", "f32[B, 1, 7, 7]"),
        ("global_avgpool(vol)", "f32[B, 2]"),
        ("upsample(img, 2)", "f32[B, 1, 16, 16]"),
        ("upsample(img, [2, 3], mode: bilinear)", "f32[B, 1, 16, 24]"),
        ("concat(img, img, img, axis: 1)", "f32[B, 3, 8, 8]"),
        ("concat(x, x, axis: -1)", "f32[B, 8]"),
        ("concat([img, img], axis: 1)", "f32[B, 2, 8, 8]"),
        ("flatten(vol)", "f32[B, 128]"),
        ("reshape(img, shape: [B, -1])", "f32[B, 64]"),
        ("reshape(img, shape: [B, 8, 8])", "f32[B, 8, 8]"),
        ("permute(img, axes: [0, 2, 3, 1])", "f32[B, 8, 8, 1]"),
        ("sum(x)", "f32[]"),
        ("sum(x, axis: none)", "f32[]"),
        ("mse(x, x, weight: none)", "f32[]"),
        ("mean(x, axis: 1)", "f32[B]"),
        ("sum(img, axis: [2, -1], keepdims: true)", "f32[B, 1, 1, 1]"),
        ("matmul(seq, permute(seq, axes: [0, 2, 1]))", "f32[B, 3, 3]"),
        // Losses.
        ("mse(x, x)", "f32[]"),
        ("mse(x, x, weight: mean(x, axis: 1, keepdims: true))", "f32[]"),
        ("mae(x, x)", "f32[]"),
        ("huber(x, x, delta: 0.5)", "f32[]"),
        ("cross_entropy(x, labels)", "f32[]"),
        ("cross_entropy(x, softmax(x))", "f32[]"),
        ("bce(x, sigmoid(x))", "f32[]"),
        ("dice(img, img)", "f32[]"),
        ("l1([x, img])", "f32[]"),
        ("l2([x])", "f32[]"),
        // Arithmetic with NumPy broadcasting and number literals.
        ("x + 1", "f32[B, 4]"),
        ("2 * x - x / 3", "f32[B, 4]"),
        ("-x", "f32[B, 4]"),
        ("x - mean(x, axis: 1, keepdims: true)", "f32[B, 4]"),
        ("img * mean(img, axis: [0, 2, 3])", "f32[B, 1, 8, 8]"),
        ("x |> dense(3) |> relu |> dense(2)", "f32[B, 2]"),
        // Stacking, padding, rolling.
        ("stack(x, x, x)", "f32[3, B, 4]"),
        ("stack([x, x], axis: 1)", "f32[B, 2, 4]"),
        ("stack(seq, seq, axis: -1)", "f32[B, 3, 10, 2]"),
        ("pad(img, [[1, 1], [2, 0]])", "f32[B, 1, 10, 10]"),
        ("pad(img, [[0, 3]], mode: reflect)", "f32[B, 1, 8, 11]"),
        ("pad(seq, [[1, 0], [4, 4]], mode: circular)", "f32[B, 4, 18]"),
        ("pad(x, [[2, 2]], mode: edge)", "f32[B, 8]"),
        ("pad(x, [[0, 1]], value: -1)", "f32[B, 5]"),
        ("roll(seq, -3, axis: 2)", "f32[B, 3, 10]"),
        ("roll(img, [1, 2], axis: [2, 3])", "f32[B, 1, 8, 8]"),
        // Comparisons and choices.
        ("x > 0", "bool[B, 4]"),
        ("(x > 0) * x", "f32[B, 4]"),
        ("where(x > 0, x, 0)", "f32[B, 4]"),
        ("where(labels == 1, 1.0, -1)", "f32[B]"),
        ("minimum(x, 1)", "f32[B, 4]"),
        ("maximum(0, img)", "f32[B, 1, 8, 8]"),
        ("maximum(x, mean(x, axis: 0))", "f32[B, 4]"),
        ("stop_gradient(x)", "f32[B, 4]"),
        // Constants and random tensors.
        ("zeros([B, 3])", "f32[B, 3]"),
        ("ones([2, 2])", "f32[2, 2]"),
        ("full([B, 4], 0.5) * x", "f32[B, 4]"),
        ("zeros_like(labels)", "i32[B]"),
        ("arange(5)", "f32[5]"),
        ("arange(1, 2, 0.25)", "f32[4]"),
        ("arange(10, 0, step: -3)", "f32[4]"),
        ("linspace(0, 1, 11)", "f32[11]"),
        ("eye(3)", "f32[3, 3]"),
        ("eye(2, 3)", "f32[2, 3]"),
        ("reshape(dense(x, 6, init: zeros), shape: [B, 2, 3]) + eye(2, 3)", "f32[B, 2, 3]"),
        ("normal([B, 8])", "f32[B, 8]"),
        ("uniform([B, 2], low: -1)", "f32[B, 2]"),
        ("x + normal([B, 4], std: 0.1)", "f32[B, 4]"),
        // Warping.
        ("warp(img, zeros([B, 2, 8, 8]))", "f32[B, 1, 8, 8]"),
        ("warp(img, zeros([B, 2, 8, 8]), mode: nearest, boundary: circular)", "f32[B, 1, 8, 8]"),
        ("affine_flow(reshape(dense(x, 6), shape: [B, 2, 3]), [8, 8])", "f32[B, 2, 8, 8]"),
        // Graphs.
        ("grid_graph(2, 3)", "i32[14, 2]"),
        ("grid_graph(2, 3, neighbours: 8, periodic: [false, true])", "i32[30, 2]"),
        ("grid_graph(3, 3, periodic: true)", "i32[36, 2]"),
        ("knn_graph(linspace(0, 1, 5), 2)", "i32[10, 2]"),
        ("gather(seq, grid_graph(2, 3)[:, 0], axis: 2)", "f32[B, 3, 14]"),
        ("scatter(seq, labels, 4, axis: 0, reduce: mean)", "f32[4, 3, 10]"),
        // A number as the target of a loss.
        ("bce(x, 1.0)", "f32[]"),
        ("mse(x, 0)", "f32[]"),
        ("huber(x, -1, delta: 0.5)", "f32[]"),
        ("mae(x, 2, weight: x)", "f32[]"),
    ];
    for (expr, want) in cases {
        assert_eq!(type_of(expr), *want, "{expr}");
    }
}

/// `pad_mode` takes a bare name or a list of them, one per spatial axis.
#[test]
fn convolutions_take_padding_modes() {
    let cases: &[(&str, &str)] = &[
        ("conv2d(img, 2, kernel: 3, pad: same, pad_mode: circular)", "f32[B, 2, 8, 8]"),
        ("conv2d(img, 2, kernel: 3, pad: 1, pad_mode: [zeros, circular])", "f32[B, 2, 8, 8]"),
        ("conv1d(seq, 2, kernel: 5, pad: 2, pad_mode: reflect)", "f32[B, 2, 10]"),
        ("conv3d(vol, 1, kernel: 3, pad: same, pad_mode: edge)", "f32[B, 1, 4, 4, 4]"),
    ];
    for (expr, want) in cases {
        assert_eq!(type_of(expr), *want, "{expr}");
    }
    // Only the columns wrap: the convolution pads the rows with zeros itself.
    let m = analyse_ok(&model_with("conv2d(img, 2, kernel: 3, pad: 1, pad_mode: [zeros, circular])"));
    let paddings: Vec<_> = m
        .train_graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(attrs) => Some(attrs.padding.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paddings, [vec![(1, 1), (0, 0)]]);
    assert_errors(&[
        (
            "conv2d(img, 2, kernel: 3, pad_mode: [zeros, zeros, circular])",
            &["`pad_mode` has 3 values but this call has 2 spatial dimensions"],
        ),
        (
            "conv2d(img, 2, kernel: 3, pad_mode: wrap)",
            &["invalid value `wrap` for `pad_mode`: expected one of `zeros`, `circular`, `reflect`, `edge`"],
        ),
        (
            "conv2d(img, 2, kernel: 19, pad: same, pad_mode: reflect)",
            &["`conv2d`: reflect padding of 9 is wider than axis 2 of f32[B, 1, 8, 8] allows (size 8)"],
        ),
    ]);
}

/// Every built-in that LANGUAGE.md lists is in the catalogue.
#[test]
fn the_catalogue_covers_the_language_contract() {
    let contract = [
        "dense",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose2d",
        "batchnorm",
        "layernorm",
        "groupnorm",
        "convlstm",
        "relu",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "sigmoid",
        "tanh",
        "softplus",
        "softmax",
        "log_softmax",
        "exp",
        "log",
        "sqrt",
        "abs",
        "square",
        "clip",
        "dropout",
        "maxpool2d",
        "avgpool2d",
        "global_avgpool",
        "upsample",
        "concat",
        "flatten",
        "reshape",
        "permute",
        "sum",
        "mean",
        "matmul",
        "mse",
        "mae",
        "huber",
        "cross_entropy",
        "bce",
        "dice",
        "l1",
        "l2",
    ];
    // LANGUAGE-2: the built-ins that are calls (indexing, `split`,
    // `repeat`, `map` and `scan` are syntax and sema's own).
    let contract_2 = [
        "stack",
        "pad",
        "roll",
        "zeros",
        "ones",
        "full",
        "arange",
        "linspace",
        "eye",
        "zeros_like",
        "normal",
        "uniform",
        "where",
        "minimum",
        "maximum",
        "stop_gradient",
        "warp",
        "affine_flow",
        "gather",
        "scatter",
        "grid_graph",
        "knn_graph",
        "graph_conv",
        "convgru",
        "trajgru",
    ];
    for name in contract.iter().chain(&contract_2) {
        assert!(catalogue::find(name).is_some(), "`{name}` is missing from the catalogue");
    }
    let mut names: Vec<&str> = catalogue::builtins().iter().map(|b| b.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), catalogue::builtins().len(), "duplicate catalogue rows");
    for b in catalogue::builtins() {
        assert_eq!(
            b.kind == Kind::Layer,
            !b.tensors.is_empty(),
            "`{}`: layers and only layers own tensors",
            b.name
        );
        assert!(!b.doc.is_empty());
    }
}

#[test]
fn the_reference_lists_every_builtin_and_its_tensors() {
    let text = catalogue::reference();
    for b in catalogue::builtins() {
        assert!(text.contains(&format!("- `{}", b.signature())), "{} missing:\n{text}", b.name);
    }
    assert!(text.contains("`running_var`: [C] (C = axis 1), state, init ones"), "{text}");
    assert!(text.contains(
        "`bias`: [units], bias, init uniform ±1/√fan_in with fan_in = in (only with `bias: true`)"
    ));
}

/// One call of each layer creates exactly the tensors of its catalogue row,
/// in order, named `r.kind_1.tensor`, with the row's role and initialisation.
#[test]
fn layers_create_the_tensors_their_catalogue_row_lists() {
    let calls = [
        ("dense", "dense(x, 8)"),
        ("conv1d", "conv1d(seq, 4, kernel: 3)"),
        ("conv2d", "conv2d(img, 4, kernel: 3)"),
        ("conv3d", "conv3d(vol, 3, kernel: 3)"),
        ("conv_transpose2d", "conv_transpose2d(img, 2, kernel: 2)"),
        ("batchnorm", "batchnorm(img)"),
        ("layernorm", "layernorm(x)"),
        ("groupnorm", "groupnorm(vol, 2)"),
        ("convlstm", "convlstm(vol, 3, kernel: 3, forecast: 2)"),
        ("convgru", "convgru(vol, 3, kernel: 3, forecast: 2)"),
        ("trajgru", "trajgru(vol, 3, kernel: 3, links: 2, forecast: 1)"),
    ];
    for (kind, call) in calls {
        let b = catalogue::find(kind).expect("in the catalogue");
        assert_eq!(b.kind, Kind::Layer);
        let m = analyse_ok(&model_with(call));
        let created: Vec<(String, Role, Init)> = m
            .train_graph
            .inputs()
            .filter_map(|(_, n)| match &n.op {
                Op::Input { name, kind: InputKind::Param { role, init } } => {
                    Some((name.clone(), Role::Param(*role), *init))
                }
                Op::Input { name, kind: InputKind::State { init } } => {
                    Some((name.clone(), Role::State, *init))
                }
                _ => None,
            })
            .collect();
        // Params come before state in the graph; the catalogue lists them in
        // creation order, which also puts params first.
        assert_eq!(created.len(), b.tensors.len(), "{kind}: {created:?}");
        for ((name, role, init), spec) in created.iter().zip(b.tensors) {
            assert_eq!(name, &format!("r.{kind}_1.{}", spec.name), "{kind}");
            assert_eq!(*role, spec.role, "{kind}.{}", spec.name);
            assert!(spec.init.matches(*init), "{kind}.{}: {init:?} is not {:?}", spec.name, spec.init);
        }
        if kind == "dense" {
            let bound = 1.0 / 2.0; // 1/sqrt(fan_in) with fan_in = 4
            assert!(matches!(created[0].2, Init::Uniform { bound: b } if (b - bound).abs() < 1e-12));
        }
        if kind == "convlstm" {
            // One gate convolution of concat[x_t, h]: fan_in = (C + hidden)·k².
            let bound = 1.0 / ((4.0f64 + 3.0) * 9.0).sqrt();
            assert!(matches!(created[0].2, Init::Uniform { bound: b } if (b - bound).abs() < 1e-12));
        }
        if kind == "conv_transpose2d" {
            // PyTorch computes fan_in from weight dimension 1 (out channels) × kernel.
            let bound = 1.0 / (2.0f64 * 4.0).sqrt();
            assert!(matches!(created[0].2, Init::Uniform { bound: b } if (b - bound).abs() < 1e-12));
        }
    }
    // `init: zeros` starts a dense layer's weight and bias at zero.
    let m = analyse_ok(&model_with("dense(x, 6, init: zeros)"));
    let inits: Vec<Init> = m
        .train_graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { kind: InputKind::Param { init, .. }, .. } => Some(*init),
            _ => None,
        })
        .collect();
    assert_eq!(inits, [Init::Zeros, Init::Zeros]);
    // Optional tensors are absent when switched off.
    let m = analyse_ok(&model_with("dense(x, 8, bias: false)"));
    let names: Vec<String> = m.train_graph.inputs().map(|(_, n)| n.op.mnemonic().to_string()).collect();
    assert_eq!(names.iter().filter(|n| *n == "param").count(), 1);
    assert!(InitRule::FanInUniform.matches(Init::Uniform { bound: 0.5 }));
}

#[test]
fn graph_inputs_come_first_in_the_documented_order() {
    let src = "model m {
  input x: f32[B, 1, 8, 8]
  target y: f32[B, 2, 8, 8]
  h = x |> conv2d(2, kernel: 3, pad: same) |> batchnorm |> dropout(0.2)
  k = h |> conv2d(2, kernel: 1) |> batchnorm
  loss = mse(k, y)
}
";
    let m = analyse_ok(src);
    let group = |op: &Op| match op {
        Op::Input { kind: InputKind::Data, .. } => 0,
        Op::Input { kind: InputKind::Target, .. } => 1,
        Op::Input { kind: InputKind::Param { .. }, .. } => 2,
        Op::Input { kind: InputKind::State { .. }, .. } => 3,
        Op::Input { kind: InputKind::Key, .. } => 4,
        _ => 5,
    };
    for g in [&m.train_graph, &m.infer_graph] {
        let groups: Vec<i32> = g.nodes.iter().map(|n| group(&n.op)).collect();
        assert!(groups.windows(2).all(|w| w[0] <= w[1]), "{groups:?}");
        crate::ir::verify::verify(g).expect("verifies");
    }
    let names: Vec<String> = m
        .train_graph
        .inputs()
        .map(|(_, n)| match &n.op {
            Op::Input { name, .. } => name.clone(),
            _ => unreachable!("inputs() yields inputs"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "x",
            "y",
            "h.conv2d_1.weight",
            "h.conv2d_1.bias",
            "h.batchnorm_1.weight",
            "h.batchnorm_1.bias",
            "k.conv2d_1.weight",
            "k.conv2d_1.bias",
            "k.batchnorm_1.weight",
            "k.batchnorm_1.bias",
            "h.batchnorm_1.running_mean",
            "h.batchnorm_1.running_var",
            "k.batchnorm_1.running_mean",
            "k.batchnorm_1.running_var",
            "rng",
        ]
    );
    // The state outputs are named like the state inputs; inference has none.
    let states: Vec<&str> = m
        .train_graph
        .outputs
        .iter()
        .filter(|o| o.kind == OutputKind::State)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        states,
        [
            "h.batchnorm_1.running_mean",
            "h.batchnorm_1.running_var",
            "k.batchnorm_1.running_mean",
            "k.batchnorm_1.running_var"
        ]
    );
    assert_eq!(m.infer_graph.inputs().count(), 14, "no rng key in inference");
}

/// Example inputs of `g` (a graph of `m`) for `B = b` drawn with `seed`,
/// with the constants' values that `m` carries.
pub(super) fn module_inputs(m: &Module, g: &Graph, b: usize, seed: u64) -> HashMap<String, Tensor<f64>> {
    let dims = HashMap::from([("B".to_string(), b)]);
    let mut inputs = example_inputs::<f64>(g, &dims, seed).expect("example inputs");
    for c in &m.constants {
        let shape = c.ty.shape.as_known().expect("constants have known shapes");
        let t = match &c.data {
            ConstData::F32(_) => Tensor::from_f64(&shape, &c.data.to_f64()).expect("values fill the shape"),
            ConstData::I32(v) => Tensor::Int(
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), v.clone())
                    .expect("values fill the shape"),
            ),
        };
        inputs.insert(c.name.clone(), t);
    }
    inputs
}

/// Runs `g` (a graph of `m`) with example inputs for `B = b`, targets made
/// non-negative.
fn run_graph(m: &Module, g: &Graph, b: usize) -> HashMap<String, Tensor<f64>> {
    let mut inputs = module_inputs(m, g, b, 3);
    for (_, n) in g.inputs() {
        if let Op::Input { name, kind: InputKind::Target } = &n.op {
            if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
                a.mapv_inplace(f64::abs);
            }
        }
    }
    run(g, &inputs).expect("runs").into_iter().collect()
}

fn floats(t: &Tensor<f64>) -> Vec<f64> {
    t.as_float().expect("f32 values").iter().copied().collect()
}

/// A spatial transformer's localisation head starts at the identity: a
/// zero-initialised `dense` added to `eye(2, 3)` gives theta = [[1, 0, 0],
/// [0, 1, 0]] for every example, and `affine_flow` of it is zero.
#[test]
fn eye_plus_a_zero_dense_layer_is_the_identity_transform() {
    // Example inputs with the module's constants, and zero-initialised
    // parameters at zero as `nnc init` writes them (example inputs give
    // them small random values).
    let run_at_init = |m: &Module| -> Vec<f64> {
        let mut inputs = module_inputs(m, &m.infer_graph, 3, 5);
        for (_, n) in m.infer_graph.inputs() {
            if let Op::Input { name, kind: InputKind::Param { init: Init::Zeros, .. } } = &n.op {
                if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
                    a.fill(0.0);
                }
            }
        }
        let out: HashMap<String, Tensor<f64>> =
            run(&m.infer_graph, &inputs).expect("runs").into_iter().collect();
        floats(&out["r"])
    };
    let theta = analyse_ok(&model_with("reshape(dense(x, 6, init: zeros), shape: [B, 2, 3]) + eye(2, 3)"));
    assert_eq!(run_at_init(&theta), [1., 0., 0., 0., 1., 0.].repeat(3));
    let flow = analyse_ok(&model_with(
        "affine_flow(reshape(dense(x, 6, init: zeros), shape: [B, 2, 3]) + eye(2, 3), [8, 8])",
    ));
    assert!(run_at_init(&flow).iter().all(|v| v.abs() < 1e-12));
    let eye = analyse_ok(&model_with("eye(3, 2) + zeros([B, 3, 2])"));
    assert_eq!(run_at_init(&eye), [1., 0., 0., 1., 0., 0.].repeat(3));
}

/// The resunet acceptance program, run end to end by the interpreter: the
/// softmax prediction sums to 1 over the channels, the Dice loss is in
/// [0, 1], and the batchnorm running statistics move towards the batch's.
#[test]
fn resunet_runs_in_the_interpreter() {
    let src = super::tests::RESUNET;
    let m = analyse_ok(src);
    let out = run_graph(&m, &m.train_graph, 1);
    let loss = floats(&out["loss"])[0];
    assert!((0.0..=1.0).contains(&loss), "dice loss {loss}");
    let p = out["p"].as_float().expect("prediction");
    assert_eq!(p.shape(), &[1, 3, 32, 32]);
    let sums = p.sum_axis(ndarray::Axis(1));
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-9));
    // running_mean starts at 0: after one step it is 0.1 × the batch mean,
    // running_var starts at 1: 0.9 + 0.1 × the unbiased batch variance > 0.
    let rv = floats(&out["e1.batchnorm_1.running_var"]);
    assert_eq!(rv.len(), 16);
    assert!(rv.iter().all(|v| *v > 0.9 - 1e-12));
    let infer = run_graph(&m, &m.infer_graph, 1);
    assert_eq!(infer["p"].shape(), &[1, 3, 32, 32]);
}

/// Digits: the dropout mask differs between call sites and the L2 term adds
/// exactly `1e-4 · Σ w²` over the weights (no biases).
#[test]
fn digits_loss_adds_the_l2_of_the_weights() {
    let src = super::tests::DIGITS;
    let m = analyse_ok(src);
    let dims = HashMap::from([("B".to_string(), 3)]);
    let inputs = example_inputs::<f64>(&m.infer_graph, &dims, 5).expect("inputs");
    let out: HashMap<String, Tensor<f64>> = run(&m.infer_graph, &inputs).expect("runs").into_iter().collect();
    let l2: f64 = m
        .infer_graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, kind: InputKind::Param { role: ParamRole::Weight, .. } } => Some(name),
            _ => None,
        })
        .map(|name| floats(&inputs[name]).iter().map(|w| w * w).sum::<f64>())
        .sum();
    // Cross-entropy of the logits, recomputed by hand.
    let z = out["z"].as_float().expect("logits");
    let labels = inputs["y"].as_int().expect("labels");
    let mut ce = 0.0;
    for (row, &label) in z.outer_iter().zip(labels.iter()) {
        let max = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
        ce += lse - row[label as usize];
    }
    ce /= 3.0;
    let loss = floats(&out["loss"])[0];
    assert!((loss - (ce + 1e-4 * l2)).abs() < 1e-9, "{loss} vs {}", ce + 1e-4 * l2);
}

/// FLOPs per sample follow the documented convention exactly.
#[test]
fn summary_rows_count_flops_by_the_convention() {
    let cases: &[(&str, u64, u64)] = &[
        // 2·in·out for the product, 1 per element for the bias.
        ("dense(x, 8)", 2 * 4 * 8 + 8, 40),
        // 2·C_in·prod(kernel) per output element, plus the bias add.
        ("conv2d(img, 2, kernel: 3)", 2 * 9 * 72 + 72, 2 * 9 + 2),
        // The window per output element.
        ("maxpool2d(img, 2)", 4 * 16, 0),
        // Reductions count their input.
        ("sum(x)", 4, 0),
        // max, subtract, exp, sum, divide.
        ("softmax(x)", 5 * 4, 0),
        // Per step (T = 2): the gate convolution 2·(C + hidden)·k² per gate
        // element (4·hidden·H·W = 192 of them), the bias add and the four
        // gate activations (192 each), f·c, i·g, their sum, tanh(c) and
        // o·tanh(c) (48 each). Parameters: 12·7·9 + 12.
        ("convlstm(vol, 3, kernel: 3)", 2 * (192 * (2 * 7 * 9) + 2 * 192 + 5 * 48), 12 * 7 * 9 + 12),
        // Per step (T = 2): the input and state convolutions 2·C·k² and
        // 2·hidden·k² per gate element (3·hidden·H·W = 144 of them), their
        // bias adds, and ten elementwise ops on the state (48 each): two
        // sums and two sigmoids for r and z, r·b_n, a_n + …, tanh, and
        // h − n, z·(h − n), n + … for the new state.
        (
            "convgru(vol, 3, kernel: 3)",
            2 * (144 * 2 * 4 * 9 + 144 * 2 * 3 * 9 + 2 * 144 + 10 * 48),
            9 * 4 * 9 + 9 * 3 * 9 + 2 * 9,
        ),
        // Per step, beyond the input convolution and the gates: the flow
        // network's hidden layer (64 outputs, 2·(C + hidden)·25 each, bias,
        // leaky ReLU as a product, a comparison and a choice) and output
        // layer (64 outputs, 2·4·25 each, bias), two bilinear warps of the
        // state (8 per element), and the 1×1 mixing 2·(2·hidden) per gate
        // element with its bias.
        (
            "trajgru(vol, 3, kernel: 3, links: 2, flow_channels: 4)",
            2 * (144 * 2 * 4 * 9
                + 144
                + 64 * 2 * 7 * 25
                + 4 * 64
                + 64 * 2 * 4 * 25
                + 64
                + 2 * 8 * 48
                + 144 * 2 * 6
                + 144
                + 10 * 48),
            9 * 4 * 9 + 9 * 6 + 2 * 9 + 4 * 7 * 25 + 4 + 4 * 4 * 25 + 4,
        ),
        // Data movement is free.
        ("concat(x, x, axis: 1)", 0, 0),
        ("flatten(img)", 0, 0),
    ];
    for (expr, flops, params) in cases {
        let m = analyse_ok(&model_with(expr));
        assert_eq!(m.layers.len(), 1, "{expr}");
        let row = &m.layers[0];
        assert_eq!((row.flops, row.params), (*flops, *params), "{expr}");
        assert_eq!(row.name, format!("r.{}_1", row.kind));
        assert_eq!(row.loc.line, 7, "{expr}");
    }
}

/// Batchnorm in a whole training graph: each channel of the output has zero
/// mean and unit (biased) variance over batch and positions.
#[test]
fn batchnorm_output_is_standardised_per_channel() {
    let m = analyse_ok(&model_with("img |> conv2d(3, kernel: 3) |> batchnorm"));
    let out = run_graph(&m, &m.train_graph, 2);
    let r = out["r"].as_float().expect("float");
    assert_eq!(r.shape(), &[2, 3, 6, 6]);
    for c in 0..3 {
        let v: Vec<f64> = r.index_axis(ndarray::Axis(1), c).iter().copied().collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-9, "channel {c} mean {mean}");
        assert!((var - 1.0).abs() < 1e-3, "channel {c} var {var}");
    }
}

/// Every dropout call site, including each expansion of a block, draws from
/// its own random stream of the one key input `rng`.
#[test]
fn dropout_call_sites_have_distinct_streams() {
    let src = "block drop(x) { return x |> dropout(0.5) }
model m {
  input x: f32[B, 4]
  a = x |> dropout(0.1) |> dropout(0.2)
  b = x |> drop
  c = x |> drop
}
";
    let m = analyse_ok(src);
    let streams: Vec<u64> = m
        .train_graph
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::RngUniform { stream, .. } => Some(stream),
            _ => None,
        })
        .collect();
    assert_eq!(streams.len(), 4);
    let mut unique = streams.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{streams:?}");
    let keys = m.train_graph.inputs().filter(|(_, n)| matches!(n.op, Op::Input { kind: InputKind::Key, .. }));
    assert_eq!(keys.count(), 1);
    assert!(!m.infer_graph.nodes.iter().any(|n| matches!(n.op, Op::RngUniform { .. })));
}

/// `|>` whose right side is not a function (the parser rejects this, but
/// sema must not rely on it).
#[test]
fn pipe_into_a_number_is_an_error_not_a_panic() {
    let src = "model m {\n  input x: f32[B, 4]\n  h = x |> relu\n}\n";
    let (mut file, _) = crate::syntax::parse(src);
    let crate::syntax::ast::Item::Model(model) = &mut file.items[0] else { panic!("a model") };
    let crate::syntax::ast::Stmt::Let { value, .. } = &mut model.body[1] else { panic!("a binding") };
    let crate::syntax::ast::ExprKind::Pipe { rhs, .. } = &mut value.kind else { panic!("a pipeline") };
    rhs.kind = crate::syntax::ast::ExprKind::Int(3);
    let d = analyze(&file, src).expect_err("an error");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message, "the right side of `|>` must be a function");
}

/// The RNG key input never takes the name of a declared input.
#[test]
fn the_rng_key_avoids_input_names() {
    let src = "model m {\n  input rng: f32[B, 4]\n  input rng_key: f32[B, 4]\n  r = rng + rng_key |> dropout(0.5)\n}\n";
    let m = analyse_ok(src);
    let key = m.train_graph.inputs().find_map(|(_, n)| match &n.op {
        Op::Input { name, kind: InputKind::Key } => Some(name.clone()),
        _ => None,
    });
    assert_eq!(key.as_deref(), Some("rng_key_2"));
}

/// The graphs of the acceptance programs print, parse back to the same
/// graph, and print identically (the IR text format round-trips them).
#[test]
fn graphs_round_trip_through_the_ir_text_format() {
    for src in [super::tests::SINE, super::tests::DIGITS, super::tests::RESUNET] {
        let m = analyse_ok(src);
        for g in [&m.train_graph, &m.infer_graph] {
            let text = crate::ir::print::print(g);
            let back = crate::ir::parse::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(crate::ir::print::print(&back), text);
            assert_eq!(&back, g);
        }
    }
}

/// Wrong `convlstm` calls are reported at the call, with what was expected.
#[test]
fn convlstm_errors_name_the_problem() {
    let cases: &[(&str, &[&str])] = &[
        (
            "convlstm(img, 4, kernel: 3)",
            &[
                "`convlstm` needs a rank-5 input [B, T, C, H, W] (a sequence of frames), got f32[B, 1, 8, 8]",
                "this is f32[B, 1, 8, 8], expected rank 5 [B, T, C, H, W]",
                "reshape(shape: [B, 1, C, H, W])",
            ],
        ),
        (
            "convlstm(vol, 4, kernel: 2)",
            &["`convlstm` needs an odd kernel, got 2", "use `kernel: 1` or `kernel: 3`"],
        ),
        ("convlstm(vol, 0, kernel: 3)", &["hidden", "at least 1"]),
        ("convlstm(vol, 4, kernel: 3, forecast: -1)", &["forecast", "at least 0"]),
        ("convlstm(vol, 4)", &["kernel", "missing"]),
        ("convlstm(vol, 4, kernel: [3, 3])", &["kernel", "expected an integer"]),
        (
            "convlstm(vol, 4, kernel: 3, forecast: 2000)",
            &["would unroll 2 input steps and 2000 forecast steps"],
        ),
    ];
    for (expr, wants) in cases {
        let src = model_with(expr);
        let (file, syntax) = crate::syntax::parse(&src);
        assert!(syntax.is_empty(), "{expr}");
        let d = analyze(&file, &src).expect_err(expr);
        let text = render_plain("t.nn", &src, &d);
        assert_eq!(d.len(), 1, "{expr}: {text}");
        for want in *wants {
            assert!(text.contains(want), "{expr}: `{want}` not in\n{text}");
        }
    }
}

/// A model with a `convlstm` layer: the backward pass agrees with central
/// finite differences of the loss (interpreter, f64) in every element of
/// the shared weight and bias, so the gradient summed over the unrolled
/// steps (encoder and forecast) is right.
#[test]
fn convlstm_gradients_match_finite_differences() {
    let src = "model m {
  input x: f32[B, 2, 1, 4, 3]
  target y: f32[B, 2, 2, 4, 3]
  p = x |> convlstm(2, kernel: 3, forecast: 2)
  loss = mse(p, y)
}
";
    // Larger weights than the initialisation, so the gates leave their
    // linear range and every term of the cell matters.
    let grads = gradients_match_finite_differences(src, 4.0);
    assert_eq!(grads, ["p.convlstm_1.weight", "p.convlstm_1.bias"]);
}

/// Analyses `src`, differentiates its loss, and checks every element of
/// every parameter's gradient against central finite differences of the
/// loss (interpreter, f64), with the parameters' example values scaled by
/// `scale`. Returns the names of the parameters.
pub(super) fn gradients_match_finite_differences(src: &str, scale: f64) -> Vec<String> {
    gradients_match_finite_differences_after(src, scale, |_| {})
}

/// [`gradients_match_finite_differences`], with the example values changed
/// by `adjust` after scaling (e.g. to move parameters that start at zero).
pub(super) fn gradients_match_finite_differences_after(
    src: &str,
    scale: f64,
    adjust: impl Fn(&mut HashMap<String, Tensor<f64>>),
) -> Vec<String> {
    let m = analyse_ok(src);
    let back = crate::autodiff::differentiate(&m.train_graph).expect("differentiable");
    let mut inputs = module_inputs(&m, &back.graph, 2, 11);
    for g in &back.grads {
        if let Some(Tensor::Float(a)) = inputs.get_mut(&g.name) {
            a.mapv_inplace(|v| scale * v);
        }
    }
    adjust(&mut inputs);
    let out: HashMap<String, Tensor<f64>> = run(&back.graph, &inputs).expect("runs").into_iter().collect();
    let loss_at = |inputs: &HashMap<String, Tensor<f64>>| -> f64 {
        let out: HashMap<String, Tensor<f64>> =
            run(&m.train_graph, inputs).expect("runs").into_iter().collect();
        floats(&out["loss"])[0]
    };
    for g in &back.grads {
        let analytic = floats(&out[&format!("grad.{}", g.name)]);
        let mut largest = analytic.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // The bias of an attention's key projection adds q·b to every score
        // of a query, which its softmax ignores: its true gradient is 0.
        if g.name.ends_with("k_proj.bias") {
            assert!(largest < 1e-12, "{}: gradient {analytic:?}", g.name);
            largest = 1e-3;
        }
        assert!(largest >= 1e-3, "{}: gradient {analytic:?}", g.name);
        for (i, ad) in analytic.iter().enumerate() {
            let step = 1e-5;
            let mut moved = inputs.clone();
            let at = |t: &mut Tensor<f64>, delta: f64| {
                if let Tensor::Float(a) = t {
                    if let Some(v) = a.iter_mut().nth(i) {
                        *v += delta;
                    }
                }
            };
            let t = moved.get_mut(&g.name).expect("parameter value");
            at(t, step);
            let plus = loss_at(&moved);
            let t = moved.get_mut(&g.name).expect("parameter value");
            at(t, -2.0 * step);
            let minus = loss_at(&moved);
            let fd = (plus - minus) / (2.0 * step);
            assert!(
                (ad - fd).abs() <= 1e-6 * largest,
                "{}[{i}]: autodiff {ad}, finite difference {fd}",
                g.name
            );
        }
    }
    back.grads.iter().map(|g| g.name.clone()).collect()
}

/// The built-ins of part 2 made of existing primitives differentiate
/// through them: padding in every mode (in `pad` and as a convolution's
/// `pad_mode`), `roll`, `stack`, `where`, `maximum`, bool masks,
/// `affine_flow` and `warp`, and a number target.
#[test]
fn part_2_gradients_match_finite_differences() {
    let src = "model m {
  input x: f32[B, 1, 4, 5]
  target y: f32[B, 2, 4, 5]
  h = x |> conv2d(2, kernel: 3, pad: same, pad_mode: [reflect, circular])
  p = pad(h, [[1, 1], [2, 2]], mode: edge) |> conv2d(2, kernel: [3, 5])
  q = roll(p, [1, -2], axis: [2, 3]) + mean(stack(p, p, axis: 1), axis: 1)
  r = where(q > 0, q, 0.1 * q) + maximum(q, 0.2) + (q < 0.5) * q
  theta = h |> global_avgpool |> dense(6) |> reshape(shape: [B, 2, 3])
  w = warp(r, affine_flow(theta, [4, 5]))
  loss = mse(w, y) + bce(mean(w, axis: [2, 3]), 1.0)
}
";
    let grads = gradients_match_finite_differences(src, 1.0);
    assert_eq!(grads.len(), 6, "{grads:?}");
}

/// `stop_gradient` keeps its operand out of the gradient: a second loss term
/// on the stopped prediction changes the loss but not the gradient.
#[test]
fn stop_gradient_blocks_the_gradient() {
    let grads_of = |loss: &str| -> Vec<Vec<f64>> {
        let src = format!(
            "model m {{
  input x: f32[B, 3]
  target y: f32[B, 2]
  p = x |> dense(2)
  loss = {loss}
}}
"
        );
        let m = analyse_ok(&src);
        let back = crate::autodiff::differentiate(&m.train_graph).expect("differentiable");
        let out = run_graph(&m, &back.graph, 2);
        back.grads.iter().map(|g| floats(&out[&format!("grad.{}", g.name)])).collect()
    };
    let plain = grads_of("mse(p, y)");
    let stopped = grads_of("mse(p, y) + 3 * mse(stop_gradient(p), 0)");
    assert_eq!(plain.len(), 2);
    assert_eq!(plain, stopped);
}

/// Checks that `r = EXPR` in [`model_with`] fails with exactly one
/// diagnostic whose rendering contains every wanted text.
pub(super) fn assert_errors(cases: &[(&str, &[&str])]) {
    for (expr, wants) in cases {
        let src = model_with(expr);
        let (file, syntax) = crate::syntax::parse(&src);
        assert!(syntax.is_empty(), "{expr}: {}", render_plain("t.nn", &src, &syntax));
        let d = analyze(&file, &src).expect_err(expr);
        let text = render_plain("t.nn", &src, &d);
        assert_eq!(d.len(), 1, "{expr}: {text}");
        for want in *wants {
            assert!(text.contains(want), "{expr}: `{want}` not in\n{text}");
        }
    }
}

/// Misused built-ins of part 2 are reported at the call, the operand at
/// fault labelled with what it should have been.
#[test]
fn part_2_builtins_report_misuse() {
    assert_errors(&[
        (
            "where(x, x, 0)",
            &[
                "`where` needs a bool condition, got f32[B, 4]",
                "this is f32[B, 4], expected bool[B, 4]",
                "help: make a condition with a comparison, e.g. `where(x > 0, x, 0)`",
            ],
        ),
        (
            "where(x > 0, x, labels)",
            &["`where` needs two branches of one element type, got f32[B, 4] and i32[B]"],
        ),
        ("where(x > 0, x, \"a\")", &["expected a tensor or a number, found a string"]),
        (
            "minimum(x, seq)",
            &["mismatched shapes for `minimum`", "cannot take the minimum of f32[B, 4] and f32[B, 3, 10]"],
        ),
        (
            "pad(img, [1, 2])",
            &[
                "`widths` needs one [before, after] pair per axis, found a list of integers",
                "write `[[1, 2]]` for the last axis",
            ],
        ),
        ("pad(img, [[1, -2]])", &["`widths` must be at least 0, found -2"]),
        ("pad(img, [[1, 2, 3]])", &["each entry of `widths` is a [before, after] pair, found 3 values"]),
        ("pad(img, [[1, 1]], mode: wrap)", &["invalid value `wrap` for `mode`"]),
        (
            "pad(img, [[9, 0]], mode: reflect)",
            &["reflect padding of 9 is wider than axis 3 of f32[B, 1, 8, 8] allows (size 8)"],
        ),
        (
            "pad(img, [[1, 1]], mode: edge, value: 1)",
            &["`value` applies only to `mode: zeros`, not `mode: edge`"],
        ),
        ("pad(x, [[1, 1], [1, 1]])", &["`pad` needs a known size on axis 0, got symbolic `B` in f32[B, 4]"]),
        ("roll(x, 1, axis: 0)", &["`roll` needs a known size on axis 0"]),
        ("roll(x, 1, axis: 2)", &["`roll`: axis 2 is out of range for a tensor of rank 2"]),
        ("stack(x, seq)", &["cannot stack f32[B, 4] and f32[B, 3, 10]", "expected f32[B, 4]"]),
        ("zeros([N, 4])", &["the `zeros` shape uses the dimension `N`, which no input of the model has"]),
        ("ones([B, -1])", &["the `ones` shape cannot contain -1"]),
        ("arange(3, 1)", &["arange(3, 1, 1) is empty"]),
        ("linspace(0, 1, 0)", &["`n` must be at least 1, found 0"]),
        ("eye(0, 3)", &["`rows` must be at least 1, found 0"]),
        ("dense(x, 6, init: ones)", &["invalid value `ones` for `init`: expected one of `uniform`, `zeros`"]),
        ("normal([B, 2], std: -1)", &["`std` must be non-negative, found -1"]),
        ("uniform([B, 2], low: 1, high: 0)", &["`uniform` needs finite low <= high, got low 1 and high 0"]),
        (
            "warp(img, zeros([B, 2, 4, 4]))",
            &["`warp` of f32[B, 1, 8, 8] needs a flow f32[B, 2, 8, 8]", "expected f32[B, 2, 8, 8]"],
        ),
        (
            "warp(img, img, mode: cubic)",
            &["invalid value `cubic` for `mode`: expected one of `bilinear`, `nearest`"],
        ),
        (
            "affine_flow(x, [4, 4])",
            &["`affine_flow` needs 2×3 matrices [B, 2, 3], got f32[B, 4]", "expected f32[B, 2, 3]"],
        ),
        ("affine_flow(reshape(x, shape: [B, 2, 2]), [4, 4, 4])", &["2×3 matrices"]),
        ("gather(seq, x)", &["`gather` needs an index vector i32[E], got f32[B, 4]", "expected i32[E]"]),
        (
            "scatter(seq, labels, 4)",
            &["`scatter` needs one index per position of axis 1: f32[B, 3, 10] has 3 there, the index has B"],
        ),
        ("scatter(seq, labels, 0, axis: 0)", &["`n` must be at least 1, found 0"]),
        ("grid_graph(2, 2, neighbours: 6)", &["`grid_graph` neighbours must be 4 or 8, got 6"]),
        (
            "grid_graph(2, 2, periodic: [true, false, true])",
            &["`periodic` has 3 values but this call has 2 spatial dimensions"],
        ),
        (
            "knn_graph(reshape(x, shape: [B, 4]), 1)",
            &[
                "`knn_graph` needs points known when the program is compiled",
                "help: declare them as a constant",
            ],
        ),
        (
            "knn_graph(linspace(0, 1, 3), 3)",
            &["`knn_graph` with k = 3 needs more than 3 points, but f32[3] has 3"],
        ),
        ("bce(x, \"one\")", &["expected a tensor or a number"]),
        (
            "mse(x, 0, weight: seq)",
            &["`mse` weight f32[B, 3, 10] does not broadcast to the prediction's shape [B, 4]"],
        ),
    ]);
}

/// A number target stands for a tensor of the prediction's shape filled
/// with it.
#[test]
fn a_number_target_is_broadcast() {
    let src = "model m {
  input x: f32[B, 3]
  loss a = bce(x, 1.0)
  loss b = bce(x, ones([B, 3]))
  loss c = mse(x, 0)
  loss d = mean(square(x))
  loss e = huber(x, 0.5, delta: 2)
  loss f = huber(x, full([B, 3], 0.5), delta: 2)
}
";
    let m = analyse_ok(src);
    let out = run_graph(&m, &m.train_graph, 2);
    let value = |n: &str| floats(&out[n])[0];
    assert!(value("a") > 0.0);
    assert!((value("a") - value("b")).abs() < 1e-12);
    assert!((value("c") - value("d")).abs() < 1e-12);
    assert!((value("e") - value("f")).abs() < 1e-12);
}

/// A message-passing layer on a grid: edges from `grid_graph`, features
/// read with `gather` at the sources and combined with `scatter` at the
/// destinations. The in-degrees count the edges, and the gradients of the
/// edge and node networks agree with finite differences.
#[test]
fn message_passing_on_a_grid_graph() {
    let src = "model g {
  input x: f32[B, 6, 3]
  target y: f32[B, 6, 4]
  edges = grid_graph(2, 3)
  degree = scatter(ones([B, 14, 1]), edges[:, 1], 6)
  messages = concat(gather(x, edges[:, 0]), gather(x, edges[:, 1]), axis: 2) |> dense(4) |> tanh
  agg = scatter(messages, edges[:, 1], 6, reduce: mean) + scatter(messages, edges[:, 1], 6, reduce: max)
  out = concat(x, agg, axis: 2) |> dense(4)
  loss = mse(out, y) + 0 * sum(degree)
}
";
    let m = analyse_ok(src);
    let edges = m.constants.iter().find(|c| c.name == "edges.grid_graph_1.edges").expect("the edge list");
    assert_eq!(edges.ty.to_string(), "i32[14, 2]");
    assert_eq!(edges.origin, "grid_graph(2, 3, neighbours: 4, periodic: [false, false])");
    let mut g = m.train_graph.clone();
    let degree = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::ScatterSum { .. }) && n.ty.to_string() == "f32[B, 6, 1]")
        .expect("the degree scatter");
    g.output(OutputKind::Other, "degree", crate::ir::ValueId(degree as u32));
    let out = run_graph(&m, &g, 1);
    assert_eq!(floats(&out["degree"]), [2., 3., 2., 2., 3., 2.]);
    let grads = gradients_match_finite_differences(src, 2.0);
    assert_eq!(grads.len(), 4, "{grads:?}");
}

/// Random tensors draw in inference too, each call site from its own
/// streams of the key input.
#[test]
fn random_tensors_draw_in_both_modes() {
    let src = "model m {
  input x: f32[B, 4]
  r = x + normal([B, 4], std: 0.1) + uniform([B, 4])
}
";
    let m = analyse_ok(src);
    for g in [&m.train_graph, &m.infer_graph] {
        let streams: Vec<u64> = g
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::RngUniform { stream, .. } => Some(stream),
                _ => None,
            })
            .collect();
        assert_eq!(streams.len(), 3, "two draws for normal, one for uniform");
        let mut unique = streams.clone();
        unique.dedup();
        assert_eq!(unique, streams);
        assert_eq!(
            g.inputs().filter(|(_, n)| matches!(n.op, Op::Input { kind: InputKind::Key, .. })).count(),
            1
        );
    }
}

/// Warping, scattering and gathering count by the documented convention;
/// constants and data movement are free.
#[test]
fn part_2_flops_follow_the_convention() {
    let src = "model m {
  input img: f32[B, 1, 8, 8]
  input flow: f32[B, 2, 8, 8]
  input e: f32[B, 5, 3]
  input idx: i32[5]
  a = warp(img, flow)
  b = warp(img, flow, mode: nearest)
  c = scatter(e, idx, 4)
  d = gather(e, idx)
  f = zeros([B, 4])
  g = arange(10)
  h = pad(img, [[1, 1]], mode: reflect)
  k = stop_gradient(img)
  r = concat(a, b, axis: 1)
}
";
    let m = analyse_ok(src);
    let flops: Vec<(&str, u64)> = m.layers.iter().map(|l| (l.name.as_str(), l.flops)).collect();
    assert_eq!(
        flops,
        [
            ("a.warp_1", 8 * 64),
            ("b.warp_1", 64),
            ("c.scatter_1", 15),
            ("d.gather_1", 0),
            ("f.zeros_1", 0),
            ("g.arange_1", 0),
            ("h.pad_1", 0),
            ("k.stop_gradient_1", 0),
            ("r.concat_1", 0),
        ]
    );
}

/// `knn_graph` reads a `const` declaration's points when the program is
/// compiled, and its edges are a constant of the module.
#[test]
fn knn_graph_of_declared_points() {
    struct Points;
    impl super::Loader for Points {
        fn load(&self, _: &super::ConstSource) -> Result<super::Loaded, String> {
            // Four corners of a unit square and its centre.
            let data = ConstData::F32(vec![0., 0., 1., 0., 0., 1., 1., 1., 0.5, 0.5]);
            Ok(super::Loaded { shape: vec![5, 2], data })
        }
    }
    let src = "model m {
  input x: f32[B, 5, 3]
  const mesh: f32[N, 2] = npy(\"mesh.npy\")
  edges = knn_graph(mesh, 1)
  r = scatter(gather(x, edges[:, 0]), edges[:, 1], 5)
}
";
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "{}", render_plain("t.nn", src, &syntax));
    let m = match super::analyze_with(&file, src, &Points) {
        Ok(m) => m,
        Err(d) => panic!("unexpected errors:\n{}", render_plain("t.nn", src, &d)),
    };
    let edges = m.constants.iter().find(|c| c.name == "edges.knn_graph_1.edges").expect("the edge list");
    assert_eq!(edges.ty.to_string(), "i32[5, 2]");
    // Every corner's nearest point is the centre; the centre's is the first corner.
    assert_eq!(edges.data, ConstData::I32(vec![4, 0, 4, 1, 4, 2, 4, 3, 0, 4]));
    let out = run_graph(&m, &m.train_graph, 1);
    assert_eq!(out["r"].shape(), &[1, 5, 3]);
}

/// `scan` over a GRU-like cell of one state and an LSTM-like cell of two
/// (run in reverse, its final states seeding a forecaster without input):
/// the shared cells' gradients sum over the steps and match finite
/// differences.
#[test]
fn scan_gradients_match_finite_differences() {
    let src = "block gru_like(x, h, hidden: int) {
  z = concat(x, h, axis: 1) |> dense(hidden) |> sigmoid
  c = concat(x, h, axis: 1) |> dense(hidden) |> tanh
  return z * h + (1 - z) * c
}
block lstm_like(x, h, c, hidden: int) {
  g = concat(x, h, axis: 1) |> dense(4 * hidden)
  i = sigmoid(g[:, 0:hidden])
  f = sigmoid(g[:, hidden:2 * hidden])
  u = tanh(g[:, 2 * hidden:3 * hidden])
  o = sigmoid(g[:, 3 * hidden:])
  c2 = f * c + i * u
  return [o * tanh(c2), c2]
}
block decay(h, c) {
  return [0.5 * h + 0.1 * c, c]
}
model m {
  input x: f32[B, 5, 3]
  target y: f32[B, 2]
  step = gru_like(hidden: 2)
  hs = scan(step, x, init: zeros([B, 2]))
  enc = lstm_like(hidden: 2)
  out = scan(enc, x, init: [zeros([B, 2]), zeros([B, 2])], reverse: true, return: all)
  fc = scan(decay(), none, init: [out[1], out[2]], steps: 3)
  loss = mse(hs[:, -1], y) + mean(square(out[0])) + mean(fc)
}
";
    let grads = gradients_match_finite_differences(src, 1.0);
    assert_eq!(
        grads,
        [
            "step.dense_1.weight",
            "step.dense_1.bias",
            "step.dense_2.weight",
            "step.dense_2.bias",
            "enc.dense_1.weight",
            "enc.dense_1.bias"
        ]
    );
}

/// A 40-step scan analyses, differentiates and keeps one set of parameters.
#[test]
fn a_long_scan_stays_small() {
    let src = "block cell(x, h) {
  return tanh(concat(x, h, axis: 1) |> dense(8))
}
model m {
  input x: f32[B, 40, 4]
  target y: f32[B, 8]
  step = cell()
  hs = scan(step, x, init: zeros([B, 8]))
  loss = mse(hs[:, -1], y)
}
";
    let m = analyse_ok(src);
    let params = m
        .train_graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, crate::ir::Op::Input { kind: crate::ir::InputKind::Param { .. }, .. }))
        .count();
    assert_eq!(params, 2);
    let back = crate::autodiff::differentiate(&m.train_graph).expect("differentiable");
    assert!(back.graph.nodes.len() < 40 * 60, "{} nodes", back.graph.nodes.len());
}

/// Misuses of `scan` are reported at their cause.
#[test]
fn scan_misuse() {
    let cases = [
        (
            "hs = scan(step, x, init: zeros([B, 3]))",
            "the cell `step` must return its states as it receives them",
        ),
        ("hs = scan(step, x, init: zeros([B, 2]), axis: 0)", "`scan` needs an axis of known size"),
        ("hs = scan(step, none, init: zeros([B, 2]))", "a `scan` without input needs `steps`"),
        (
            "hs = scan(step, x, init: [zeros([B, 2]), zeros([B, 2])])",
            "the cell `step` takes 2 tensors, but `scan` passes 3",
        ),
        ("hs = scan(x, x, init: zeros([B, 2]))", "`scan` needs a layer value, found a tensor"),
    ];
    for (line, message) in cases {
        let src = format!(
            "block cell(x, h) {{\n  return tanh(concat(x, h, axis: 1) |> dense(2))\n}}\nmodel m {{\n  input x: f32[B, 5, 3]\n  step = cell()\n  {line}\n  loss = mean(hs)\n}}\n"
        );
        let (file, syntax) = crate::syntax::parse(&src);
        assert!(syntax.is_empty(), "{syntax:?}");
        let d = crate::sema::analyze(&file, &src).expect_err(line);
        assert!(
            d.iter().any(|d| d.message.contains(message)),
            "{line}: {:?}",
            d.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
    }
}

/// `rnn`, `lstm` and `gru`: result types (also stacked by `repeat`), and the
/// four PyTorch tensors of each call, uniform on ±1/√hidden.
#[test]
fn recurrent_layers_have_the_documented_result_type_and_tensors() {
    let cases: &[(&str, &str)] = &[
        ("lstm(seq, 6)", "f32[B, 3, 6]"),
        ("seq |> lstm(6, return: last)", "f32[B, 6]"),
        ("gru(seq, 5, reverse: true)", "f32[B, 3, 5]"),
        ("gru(seq, 5, return: last, bias: false)", "f32[B, 5]"),
        ("rnn(seq, 4, activation: relu)", "f32[B, 3, 4]"),
        ("seq |> rnn(4, return: last, reverse: true)", "f32[B, 4]"),
        ("seq |> repeat(lstm(6), 2)", "f32[B, 3, 6]"),
        ("seq |> repeat(gru(5), 3) |> lstm(2, return: last)", "f32[B, 2]"),
    ];
    for (expr, want) in cases {
        assert_eq!(type_of(expr), *want, "{expr}");
    }
    for (kind, gates) in [("rnn", 1), ("lstm", 4), ("gru", 3)] {
        let b = catalogue::find(kind).expect("in the catalogue");
        assert_eq!(b.kind, Kind::Layer);
        let m = analyse_ok(&model_with(&format!("{kind}(seq, 4)")));
        let created: Vec<(String, Vec<usize>, Init)> = m
            .train_graph
            .inputs()
            .filter_map(|(_, n)| match &n.op {
                Op::Input { name, kind: InputKind::Param { init, .. } } => {
                    Some((name.clone(), n.ty.shape.as_known().expect("known"), *init))
                }
                _ => None,
            })
            .collect();
        let shapes = [vec![gates * 4, 10], vec![gates * 4, 4], vec![gates * 4], vec![gates * 4]];
        assert_eq!(created.len(), b.tensors.len(), "{kind}: {created:?}");
        for (((name, shape, init), spec), want) in created.iter().zip(b.tensors).zip(&shapes) {
            assert_eq!(name, &format!("r.{kind}_1.{}", spec.name));
            assert_eq!(shape, want, "{name}");
            assert!(spec.init.matches(*init), "{name}");
            assert!(
                matches!(init, Init::Uniform { bound } if (bound - 0.5).abs() < 1e-12),
                "{name}: {init:?}"
            );
        }
        let m = analyse_ok(&model_with(&format!("{kind}(seq, 4, bias: false)")));
        assert_eq!(m.train_graph.inputs().filter(|(_, n)| n.op.mnemonic() == "param").count(), 2, "{kind}");
    }
    let stacked = analyse_ok(&model_with("seq |> repeat(lstm(6), 2)"));
    let names: Vec<String> = stacked
        .train_graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, kind: InputKind::Param { .. } } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert_eq!(names[1], "r.repeat_1.0.lstm_1.weight_hh", "{names:?}");
    assert_eq!(names[7], "r.repeat_1.1.lstm_1.bias_hh", "{names:?}");
}

/// Misuses of the sequence layers name the problem.
#[test]
fn recurrent_layer_errors_name_the_problem() {
    let cases: &[(&str, &str)] = &[
        ("lstm(x, 4)", "`lstm` needs a rank-3 input [B, T, F]"),
        ("gru(img, 4)", "`gru` needs a rank-3 input [B, T, F]"),
        ("rnn(seq, 4, activation: sigmoid)", "sigmoid"),
        ("lstm(seq, 4, return: first)", "first"),
        ("lstm(seq, 0)", "hidden"),
    ];
    for (expr, want) in cases {
        let src = model_with(expr);
        let (file, syntax) = crate::syntax::parse(&src);
        assert!(syntax.is_empty(), "{expr}");
        let d = analyze(&file, &src).expect_err(expr);
        let text = render_plain("t.nn", &src, &d);
        assert!(text.contains(want), "{expr}: `{want}` not in\n{text}");
    }
    let src = "model m {\n  input x: f32[B, 1025, 2]\n  r = lstm(x, 2)\n}\n";
    let (file, _) = crate::syntax::parse(src);
    let d = analyze(&file, src).expect_err("too many steps");
    let text = render_plain("t.nn", src, &d);
    assert!(text.contains("`lstm` would unroll 1025 steps, more than the limit of 1024"), "{text}");
    let src = "model m {\n  input x: f32[B, T, 2]\n  r = gru(x, 2)\n}\n";
    let (file, _) = crate::syntax::parse(src);
    let d = analyze(&file, src).expect_err("symbolic steps");
    let text = render_plain("t.nn", src, &d);
    assert!(text.contains("`gru` needs a known size on axis 1"), "{text}");
}

/// `rnn`, `lstm` and `gru`, forward and reverse, returning the sequence and
/// the last state: the gradients of every shared tensor summed over the
/// unrolled steps match central finite differences.
#[test]
fn recurrent_gradients_match_finite_differences() {
    // A relu cell needs more units than 2 for none to be dead throughout.
    let cases = [
        ("lstm", 2, "", 2.0),
        ("gru", 2, "", 2.0),
        ("rnn", 2, "", 2.0),
        ("rnn", 4, ", activation: relu", 1.0),
    ];
    for (kind, hidden, extra, scale) in cases {
        let src = format!(
            "model m {{
  input x: f32[B, 3, 2]
  s = x |> {kind}({hidden}{extra})
  sr = x |> {kind}({hidden}, reverse: true{extra})
  l = x |> {kind}({hidden}, return: last{extra})
  lr = x |> {kind}({hidden}, return: last, reverse: true{extra})
  loss = mse(s, 0.8) + mse(sr, 0.7) + mean(square(l - 0.5)) + mean(square(lr - 0.6))
}}
"
        );
        let grads = gradients_match_finite_differences(&src, scale);
        assert_eq!(grads.len(), 16, "{kind}: {grads:?}");
        assert_eq!(grads[0], format!("s.{kind}_1.weight_ih"));
        assert_eq!(grads[15], format!("lr.{kind}_1.bias_hh"));
    }
}

/// Each sequence layer equals the same cell written in `.nn` and run by
/// `scan`: the built-in's `weight_ih`/`bias_ih` are the weight and bias of
/// a dense layer on `x_t` and `weight_hh`/`bias_hh` those of a dense layer
/// on `h`, so copying them makes the two compute the same function, forward
/// and reverse, sequence and last state (interpreter, f64).
#[test]
fn recurrent_layers_equal_their_cells_written_with_scan() {
    let cells = "block rnn_cell(x, h, hidden: int) {
  return tanh(dense(x, hidden) + dense(h, hidden))
}
block relu_cell(x, h, hidden: int) {
  return relu(dense(x, hidden) + dense(h, hidden))
}
block lstm_cell(x, h, c, hidden: int) {
  g = dense(x, 4 * hidden) + dense(h, 4 * hidden)
  i = sigmoid(g[:, 0:hidden])
  f = sigmoid(g[:, hidden:2 * hidden])
  u = tanh(g[:, 2 * hidden:3 * hidden])
  o = sigmoid(g[:, 3 * hidden:])
  c2 = f * c + i * u
  return [o * tanh(c2), c2]
}
block gru_cell(x, h, hidden: int) {
  a = dense(x, 3 * hidden)
  b = dense(h, 3 * hidden)
  rz = sigmoid(a[:, 0:2 * hidden] + b[:, 0:2 * hidden])
  r = rz[:, 0:hidden]
  z = rz[:, hidden:]
  n = tanh(a[:, 2 * hidden:] + r * b[:, 2 * hidden:])
  return (1 - z) * n + z * h
}
";
    let layers = [
        ("rnn", "rnn", "rnn_cell", "zeros([B, 3])"),
        ("rnn", "rnn(3, activation: relu", "relu_cell", "zeros([B, 3])"),
        ("lstm", "lstm", "lstm_cell", "[zeros([B, 3]), zeros([B, 3])]"),
        ("gru", "gru", "gru_cell", "zeros([B, 3])"),
    ];
    for (kind, call, cell, init) in layers {
        let call = if call.contains('(') { call.to_string() } else { format!("{call}(3") };
        for reverse in [false, true] {
            for last in [false, true] {
                let (ret, pick) = match (last, reverse) {
                    (false, _) => ("sequence", ""),
                    (true, false) => ("last", "[:, -1]"),
                    (true, true) => ("last", "[:, 0]"),
                };
                let src = format!(
                    "{cells}model m {{
  input x: f32[B, 5, 4]
  a = x |> {call}, return: {ret}, reverse: {reverse})
  cell = {cell}(hidden: 3)
  hs = scan(cell, x, init: {init}, reverse: {reverse})
  b = hs{pick}
  both = stack(a, b, axis: 0)
  output both
}}
"
                );
                let m = analyse_ok(&src);
                let g = &m.infer_graph;
                let mut inputs = module_inputs(&m, g, 2, 7);
                for (from, to) in [
                    ("weight_ih", "dense_1.weight"),
                    ("bias_ih", "dense_1.bias"),
                    ("weight_hh", "dense_2.weight"),
                    ("bias_hh", "dense_2.bias"),
                ] {
                    let Some(Tensor::Float(v)) = inputs.get_mut(&format!("a.{kind}_1.{from}")) else {
                        panic!("{kind}: no tensor {from}");
                    };
                    v.mapv_inplace(|w| 3.0 * w);
                    let v = v.clone();
                    let target = inputs.get_mut(&format!("cell.{to}")).expect("the cell's tensor");
                    assert_eq!(target.shape(), v.shape(), "{kind}.{from}");
                    *target = Tensor::Float(v);
                }
                let out: HashMap<String, Tensor<f64>> = run(g, &inputs).expect("runs").into_iter().collect();
                let both = out["both"].as_float().expect("f32 values");
                let (a, b) = (both.index_axis(ndarray::Axis(0), 0), both.index_axis(ndarray::Axis(0), 1));
                let want: &[usize] = if last { &[2, 3] } else { &[2, 5, 3] };
                assert_eq!(a.shape(), want, "{call} reverse {reverse} last {last}");
                let largest = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(largest > 0.1, "{call}: outputs {a:?}");
                for (x, y) in a.iter().zip(b.iter()) {
                    assert!((x - y).abs() <= 1e-6, "{call} reverse {reverse} last {last}: {x} vs {y}");
                }
            }
        }
    }
}

/// The benchmark's size: a 64-step `lstm(128)` on `[B, 64, 32]` analyses
/// and differentiates with one set of four tensors; the time is printed.
#[test]
fn a_64_step_lstm_analyses_and_differentiates() {
    let src = "model m {
  input x: f32[B, 64, 32]
  target y: f32[B, 1]
  h = x |> lstm(128, return: last)
  p = dense(h, 1)
  loss = mse(p, y)
}
";
    let start = std::time::Instant::now();
    let m = analyse_ok(src);
    let analysed = start.elapsed();
    let back = crate::autodiff::differentiate(&m.train_graph).expect("differentiable");
    let differentiated = start.elapsed();
    println!(
        "lstm(128) × 64 steps: analysed in {analysed:?} ({} nodes), differentiated in {differentiated:?} ({} nodes)",
        m.train_graph.nodes.len(),
        back.graph.nodes.len()
    );
    assert_eq!(back.grads.len(), 6);
    let params: usize = back
        .grads
        .iter()
        .map(|g| m.train_graph.ty(g.param).shape.as_known().expect("known").iter().product::<usize>())
        .sum();
    assert_eq!(params, 4 * 128 * (32 + 128) + 2 * 4 * 128 + 128 + 1);
    assert!(m.train_graph.nodes.len() < 64 * 30, "{} nodes", m.train_graph.nodes.len());
}

/// `convgru` and `trajgru` (with and without forecast steps, with and
/// without biases): the backward pass agrees with central finite
/// differences in every element of every shared parameter, so the
/// gradients summed over the unrolled steps, through the gates, the
/// flow network and the warps, are right.
#[test]
fn conv_gru_gradients_match_finite_differences() {
    let src = "model m {
  input x: f32[B, 3, 1, 5, 6]
  target y: f32[B, 3, 2, 5, 6]
  p = x |> convgru(2, kernel: 3)
  q = x |> convgru(2, kernel: 3, forecast: 2, bias: false)
  loss = mse(p, y) + mean(square(q))
}
";
    let grads = gradients_match_finite_differences(src, 3.0);
    assert_eq!(
        grads,
        [
            "p.convgru_1.weight_ih",
            "p.convgru_1.weight_hh",
            "p.convgru_1.bias_ih",
            "p.convgru_1.bias_hh",
            "q.convgru_1.weight_ih",
            "q.convgru_1.weight_hh"
        ]
    );
    let src = "model m {
  input x: f32[B, 3, 1, 5, 6]
  target y: f32[B, 3, 2, 5, 6]
  p = x |> trajgru(2, kernel: 3, links: 2, flow_channels: 3)
  q = x |> trajgru(2, kernel: 3, links: 2, forecast: 2, flow_channels: 2, bias: false)
  loss = mse(p, y) + 4 * mse(q, y[:, 1:])
}
";
    // The flow output layer starts at zero (flows 0, every warp the
    // identity, no gradient to the layer before it): give it values that
    // move the state by fractions of a cell.
    let grads = gradients_match_finite_differences_after(src, 2.0, |inputs| {
        for (name, t) in inputs.iter_mut() {
            if let (true, Tensor::Float(a)) = (name.contains("flow_out"), t) {
                for (i, v) in a.iter_mut().enumerate() {
                    *v = 0.3 * (1.7 * i as f64 + 0.3).sin();
                }
            }
        }
    });
    let names =
        ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_flow", "bias_flow", "weight_flow_out"];
    let mut want: Vec<String> = names.iter().map(|n| format!("p.trajgru_1.{n}")).collect();
    want.push("p.trajgru_1.bias_flow_out".into());
    want.extend(
        ["weight_ih", "weight_hh", "weight_flow", "weight_flow_out"].map(|n| format!("q.trajgru_1.{n}")),
    );
    assert_eq!(grads, want);
}

/// Runs `src`, whose prediction is `r = stack(a, b)`, in the interpreter
/// with each parameter `to` given the example value of `from` (`copies`),
/// and checks that `a` and `b` agree within 1e-6.
fn halves_agree(src: &str, copies: &[(&str, &str)]) {
    let m = analyse_ok(src);
    let mut inputs = module_inputs(&m, &m.train_graph, 2, 7);
    for (to, from) in copies {
        let value = inputs.get(*from).unwrap_or_else(|| panic!("no parameter `{from}`")).clone();
        let slot = inputs.get_mut(*to).unwrap_or_else(|| panic!("no parameter `{to}`"));
        assert_eq!(slot.shape(), value.shape(), "{to} and {from}");
        *slot = value;
    }
    let out: HashMap<String, Tensor<f64>> = run(&m.train_graph, &inputs).expect("runs").into_iter().collect();
    let r = out["r"].as_float().expect("f32 values");
    let (a, b) = (r.index_axis(ndarray::Axis(0), 0), r.index_axis(ndarray::Axis(0), 1));
    let largest = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(largest > 0.1, "states {a:?}");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
    }
}

/// `convgru` is the GRU recurrence written in `.nn` as a block and run by
/// `scan` on the same parameters, for its encoder states and for forecast
/// steps (the block reading zero frames appended to the input).
#[test]
fn convgru_equals_its_recurrence_written_with_scan() {
    let cell = "block cell(x, h, hidden: int) {
  a = x |> conv2d(3 * hidden, kernel: 3, pad: same)
  b = h |> conv2d(3 * hidden, kernel: 3, pad: same)
  r = sigmoid(a[:, 0:hidden] + b[:, 0:hidden])
  z = sigmoid(a[:, hidden:2 * hidden] + b[:, hidden:2 * hidden])
  n = tanh(a[:, 2 * hidden:] + r * b[:, 2 * hidden:])
  return (1 - z) * n + z * h
}
";
    let copies = [
        ("b.convgru_1.weight_ih", "step.conv2d_1.weight"),
        ("b.convgru_1.bias_ih", "step.conv2d_1.bias"),
        ("b.convgru_1.weight_hh", "step.conv2d_2.weight"),
        ("b.convgru_1.bias_hh", "step.conv2d_2.bias"),
    ];
    halves_agree(
        &format!(
            "{cell}model m {{
  input x: f32[B, 3, 1, 5, 6]
  step = cell(hidden: 2)
  a = scan(step, x, init: zeros([B, 2, 5, 6]))
  b = x |> convgru(2, kernel: 3)
  r = stack(a, b)
}}
"
        ),
        &copies,
    );
    halves_agree(
        &format!(
            "{cell}model m {{
  input x: f32[B, 3, 1, 5, 6]
  step = cell(hidden: 2)
  hs = scan(step, concat(x, zeros([B, 2, 1, 5, 6]), axis: 1), init: zeros([B, 2, 5, 6]))
  a = hs[:, 3:]
  b = x |> convgru(2, kernel: 3, forecast: 2)
  r = stack(a, b)
}}
"
        ),
        &copies,
    );
}

/// `trajgru` is its recurrence written in `.nn` (flow network, `warp` along
/// each link, 1×1 mixing, GRU gates) and run by `scan` on the same
/// parameters, with a flow output layer moved off zero so the warps move
/// the state.
#[test]
fn trajgru_equals_its_recurrence_written_with_scan() {
    let src = "block cell(x, h, hidden: int) {
  f = concat(x, h, axis: 1) |> conv2d(3, kernel: 5, pad: same) |> leaky_relu(alpha: 0.2)
  u = f |> conv2d(4, kernel: 5, pad: same)
  w = concat(warp(h, u[:, 0:2]), warp(h, u[:, 2:4]), axis: 1)
  a = x |> conv2d(3 * hidden, kernel: 3, pad: same)
  b = w |> conv2d(3 * hidden, kernel: 1)
  r = sigmoid(a[:, 0:hidden] + b[:, 0:hidden])
  z = sigmoid(a[:, hidden:2 * hidden] + b[:, hidden:2 * hidden])
  n = tanh(a[:, 2 * hidden:] + r * b[:, 2 * hidden:])
  return (1 - z) * n + z * h
}
model m {
  input x: f32[B, 3, 1, 5, 6]
  step = cell(hidden: 2)
  hs = scan(step, concat(x, zeros([B, 1, 1, 5, 6]), axis: 1), init: zeros([B, 2, 5, 6]))
  a = hs[:, 3:]
  b = x |> trajgru(2, kernel: 3, links: 2, forecast: 1, flow_channels: 3)
  r = stack(a, b)
}
";
    halves_agree(
        src,
        &[
            ("b.trajgru_1.weight_flow", "step.conv2d_1.weight"),
            ("b.trajgru_1.bias_flow", "step.conv2d_1.bias"),
            ("b.trajgru_1.weight_flow_out", "step.conv2d_2.weight"),
            ("b.trajgru_1.bias_flow_out", "step.conv2d_2.bias"),
            ("b.trajgru_1.weight_ih", "step.conv2d_3.weight"),
            ("b.trajgru_1.bias_ih", "step.conv2d_3.bias"),
            ("b.trajgru_1.weight_hh", "step.conv2d_4.weight"),
            ("b.trajgru_1.bias_hh", "step.conv2d_4.bias"),
        ],
    );
}

/// Wrong `convgru` and `trajgru` calls are reported at the call.
#[test]
fn conv_gru_errors_name_the_problem() {
    assert_errors(&[
        (
            "convgru(img, 4, kernel: 3)",
            &[
                "`convgru` needs a rank-5 input [B, T, C, H, W] (a sequence of frames), got f32[B, 1, 8, 8]",
                "this is f32[B, 1, 8, 8], expected rank 5 [B, T, C, H, W]",
            ],
        ),
        (
            "trajgru(vol, 4, kernel: 2, links: 1)",
            &["`trajgru` needs an odd kernel, got 2", "use `kernel: 1` or `kernel: 3`"],
        ),
        ("trajgru(vol, 4, kernel: 3)", &["links", "missing"]),
        ("trajgru(vol, 4, kernel: 3, links: 0)", &["links", "at least 1"]),
        (
            "convgru(vol, 4, kernel: 3, forecast: 2000)",
            &["`convgru` would unroll 2 input steps and 2000 forecast steps"],
        ),
    ]);
}

/// `nnc summary` counts a sequence layer by the FLOPs convention: the
/// input projection of all steps, the bias adds, per step after the first
/// the hidden product, and the gate arithmetic.
#[test]
fn recurrent_flops_follow_the_convention() {
    // lstm(4) on [B, 3, 10]: per step x_t·W_ihᵀ, 2·10 per element of [16]
    // (960 in all); b_ih + b_hh once (16), added at each step (48); the
    // recurrence (one `lstm` node) per step: h·W_hhᵀ 2·4 per element of
    // [16] (128), its add (16), the activations (16), f·c, i·g, their sum,
    // tanh(c), o·tanh(c) (20).
    let cases: &[(&str, u64, u64)] = &[
        ("lstm(seq, 4)", 960 + 16 + 48 + 3 * (128 + 16 + 16 + 20), 16 * 10 + 16 * 4 + 2 * 16),
        // rnn(4): projections 3·2·10·4 (240), biases 4 + 3·4; tanh at step 0 (4);
        // steps 1, 2: 2·4·4 + 4 + 4.
        ("rnn(seq, 4, return: last)", 240 + 4 + 12 + 4 + 2 * (32 + 4 + 4), 4 * 10 + 4 * 4 + 2 * 4),
    ];
    for (expr, flops, params) in cases {
        let m = analyse_ok(&model_with(expr));
        assert_eq!(m.layers.len(), 1, "{expr}");
        let row = &m.layers[0];
        assert_eq!((row.flops, row.params), (*flops, *params), "{expr}");
    }
}

/// The balanced losses weight each element by its target's rain rate:
/// 1 below 2 mm/h, then 2, 5, 10 and 30 (Shi et al. 2017), and their
/// gradients match finite differences.
#[test]
fn balanced_losses_weight_by_rain_rate() {
    let src = "model m {
  input p: f32[B, 4]
  target y: f32[B, 4]
  loss = bmse(p, y) + bmae(p, y, thresholds: [1.0], weights: [3.0])
}
";
    let m = analyse_ok(src);
    let mut inputs = module_inputs(&m, &m.train_graph, 1, 3);
    let t = |v: Vec<f64>| {
        Tensor::Float(ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 4]), v).expect("shape"))
    };
    inputs.insert("p".into(), t(vec![0.0; 4]));
    inputs.insert("y".into(), t(vec![0.2, 1.0, 3.0, 40.0]));
    let out: HashMap<String, Tensor<f64>> = run(&m.train_graph, &inputs).expect("runs").into_iter().collect();
    // bmse: weights 1, 1, 2, 30 on squares 0.04, 1, 9, 1600; bmae: weights
    // 1, 3, 3, 3 on 0.2, 1, 3, 40.
    let want = (0.04 + 1.0 + 18.0 + 48_000.0) / 4.0 + (0.2 + 3.0 + 9.0 + 120.0) / 4.0;
    let got = floats(&out["loss"])[0];
    assert!((got - want).abs() < 1e-9 * want, "{got} != {want}");
    let grads = gradients_match_finite_differences(
        "model m {\n  input x: f32[B, 3]\n  target y: f32[B, 2]\n  p = x |> dense(2)\n  loss = bmse(p, y, thresholds: [-0.5, 0.5], weights: [2, 7]) + bmae(p, y)\n}\n",
        1.0,
    );
    assert_eq!(grads.len(), 2);
    for (args, message) in [
        (
            "thresholds: [1, 2], weights: [1]",
            "`bmse` needs one weight per threshold: 2 thresholds, 1 weights",
        ),
        ("thresholds: [2, 1], weights: [1, 2]", "`bmse` thresholds must increase"),
    ] {
        let src = format!(
            "model m {{\n  input p: f32[B, 4]\n  target y: f32[B, 4]\n  loss = bmse(p, y, {args})\n}}\n"
        );
        let (file, _) = crate::syntax::parse(&src);
        let d = crate::sema::analyze(&file, &src).expect_err(args);
        assert!(
            d.iter().any(|d| d.message.contains(message)),
            "{args}: {:?}",
            d.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
    }
}

/// The hand-written cells of [`recurrent_layers_equal_their_cells_written_with_scan`].
const SCAN_CELLS: &str = "block rnn_cell(x, h, hidden: int) {
  return tanh(dense(x, hidden) + dense(h, hidden))
}
block lstm_cell(x, h, c, hidden: int) {
  g = dense(x, 4 * hidden) + dense(h, 4 * hidden)
  i = sigmoid(g[:, 0:hidden])
  f = sigmoid(g[:, hidden:2 * hidden])
  u = tanh(g[:, 2 * hidden:3 * hidden])
  o = sigmoid(g[:, 3 * hidden:])
  c2 = f * c + i * u
  return [o * tanh(c2), c2]
}
block gru_cell(x, h, hidden: int) {
  a = dense(x, 3 * hidden)
  b = dense(h, 3 * hidden)
  rz = sigmoid(a[:, 0:2 * hidden] + b[:, 0:2 * hidden])
  r = rz[:, 0:hidden]
  z = rz[:, hidden:]
  n = tanh(a[:, 2 * hidden:] + r * b[:, 2 * hidden:])
  return (1 - z) * n + z * h
}
";

/// `rnn`, `lstm` and `gru` from given states (`init:`), forward and
/// reverse, equal `scan` of the hand-written cells from the same states:
/// the sequence, `return: all`'s and `return: states`' final states (for
/// lstm also `c_T`), and the final `h` is the sequence's last step (with
/// `reverse`, its first) (interpreter, f64, 1e-6).
#[test]
fn recurrent_layers_with_init_and_states_equal_scan() {
    for (kind, cell) in [("rnn", "rnn_cell"), ("lstm", "lstm_cell"), ("gru", "gru_cell")] {
        let lstm = kind == "lstm";
        let init = if lstm { "[h0, c0]" } else { "h0" };
        for reverse in [false, true] {
            let end = if reverse { "0" } else { "-1" };
            // Built-in results left, scan's right, each flattened to [B, k].
            let (left, right) = if lstm {
                ("ra[0], ra[1], ra[2], rs[0], rs[1], se", "sb[0], sb[1], sb[2], sb[1], sb[2], sb[1]")
            } else {
                ("ra[0], ra[1], rs[0], se", "sb[0], sb[1], sb[1], sb[1]")
            };
            let flat = |list: &str| {
                list.split(", ")
                    .map(|v| format!("reshape({v}, shape: [B, -1])"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let src = format!(
                "{SCAN_CELLS}model m {{
  input x: f32[B, 5, 4]
  input h0: f32[B, 3]
  input c0: f32[B, 3]
  ra = x |> {kind}(3, return: all, reverse: {reverse}, init: {init})
  rs = x |> {kind}(3, return: states, reverse: {reverse}, init: {init})
  sa = ra[0]
  se = sa[:, {end}]
  cell = {cell}(hidden: 3)
  sb = scan(cell, x, init: {init}, reverse: {reverse}, return: all)
  left = concat({}, axis: 1)
  right = concat({}, axis: 1)
  both = stack(left, right, axis: 0) + 0 * mean(c0)
  output both
}}
",
                flat(left),
                flat(right)
            );
            let m = analyse_ok(&src);
            let g = &m.infer_graph;
            let mut inputs = module_inputs(&m, g, 2, 7);
            for (from, to) in [
                ("weight_ih", "dense_1.weight"),
                ("bias_ih", "dense_1.bias"),
                ("weight_hh", "dense_2.weight"),
                ("bias_hh", "dense_2.bias"),
            ] {
                let Some(Tensor::Float(v)) = inputs.get_mut(&format!("ra.{kind}_1.{from}")) else {
                    panic!("{kind}: no tensor {from}");
                };
                v.mapv_inplace(|w| 3.0 * w);
                let v = Tensor::Float(v.clone());
                for target in [format!("rs.{kind}_1.{from}"), format!("cell.{to}")] {
                    let t = inputs.get_mut(&target).expect("the tensor");
                    assert_eq!(t.shape(), v.shape(), "{kind}.{from}");
                    *t = v.clone();
                }
            }
            let out: HashMap<String, Tensor<f64>> = run(g, &inputs).expect("runs").into_iter().collect();
            let both = out["both"].as_float().expect("f32 values");
            let per = if lstm { 15 + 5 * 3 } else { 15 + 3 * 3 };
            assert_eq!(both.shape(), &[2, 2, per], "{kind} reverse {reverse}");
            let (a, b) = (both.index_axis(ndarray::Axis(0), 0), both.index_axis(ndarray::Axis(0), 1));
            let largest = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(largest > 0.1, "{kind}: outputs {a:?}");
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() <= 1e-6, "{kind} reverse {reverse}: {x} vs {y}");
            }
        }
    }
}

/// The results of `return: states` and `return: all` have the types of
/// `scan`'s: a one-element list `[h_T]` for rnn and gru, `[h_T, c_T]` for
/// lstm, and `all` puts the sequence first.
#[test]
fn recurrent_states_are_lists_like_scans() {
    for (kind, n) in [("rnn", 1), ("gru", 1), ("lstm", 2)] {
        for (ret, len) in [("states", n), ("all", n + 1)] {
            let src = format!(
                "model m {{
  input x: f32[B, 5, 4]
  r = x |> {kind}(3, return: {ret})
  h = r[-1]
  output h
}}
"
            );
            let m = analyse_ok(&src);
            let out =
                m.infer_graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("output");
            assert_eq!(m.infer_graph.ty(out.value).to_string(), "f32[B, 3]", "{kind} {ret}");
            let past = src.replace("r[-1]", &format!("r[{len}]"));
            let (file, _) = crate::syntax::parse(&past);
            let d = analyze(&file, &past).expect_err("past the end of the list");
            assert!(!d.is_empty(), "{kind} {ret}: r[{len}] accepted");
        }
    }
}

/// Gradients through `init:` (states computed by dense layers from the
/// input) and the built-in's tensors, with `return: all` forward and
/// `return: states` reversed, match central finite differences.
#[test]
fn recurrent_init_gradients_match_finite_differences() {
    for (kind, scale) in [("lstm", 2.0), ("gru", 2.0), ("rnn", 2.0)] {
        let lstm = kind == "lstm";
        let (init, c0, extra_a, extra_b) = if lstm {
            (
                "[h0, c0]",
                "  c0 = mean(x, axis: 1) |> dense(2)\n",
                " + mean(square(a[2] - 0.3))",
                " + mean(square(b[1] - 0.2))",
            )
        } else {
            ("h0", "", "", "")
        };
        let src = format!(
            "model m {{
  input x: f32[B, 3, 2]
  h0 = mean(x, axis: 1) |> dense(2)
{c0}  a = x |> {kind}(2, init: {init}, return: all)
  b = x |> {kind}(2, init: {init}, return: states, reverse: true)
  loss = mse(a[0], 0.8) + mean(square(a[1] - 0.5)){extra_a} + mean(square(b[0] - 0.6)){extra_b}
}}
"
        );
        let grads = gradients_match_finite_differences(&src, scale);
        let want = if lstm { 12 } else { 10 };
        assert_eq!(grads.len(), want, "{kind}: {grads:?}");
        assert!(grads.contains(&"h0.dense_1.weight".to_string()), "{kind}: {grads:?}");
    }
}

/// An encoder–forecaster: the final states of an encoder `lstm` (a layer
/// value) seed `scan` of a cell without input for 3 steps; the program
/// compiles, the forecast is [B, 3, hidden], and its gradients match
/// finite differences.
#[test]
fn an_lstm_encoder_seeds_a_scan_forecaster() {
    let src = "block step(h, c, hidden: int) {
  g = dense(h, 4 * hidden)
  i = sigmoid(g[:, 0:hidden])
  f = sigmoid(g[:, hidden:2 * hidden])
  u = tanh(g[:, 2 * hidden:3 * hidden])
  o = sigmoid(g[:, 3 * hidden:])
  c2 = f * c + i * u
  return [o * tanh(c2), c2]
}
model m {
  input x: f32[B, 4, 2]
  target y: f32[B, 3, 3]
  enc = lstm(3, return: states)
  states = x |> enc
  cell = step(hidden: 3)
  forecast = scan(cell, none, init: states, steps: 3)
  loss = mse(forecast, y)
}
";
    let m = analyse_ok(src);
    let out = m.infer_graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("output");
    assert_eq!(m.infer_graph.ty(out.value).to_string(), "f32[B, 3, 3]");
    let grads = gradients_match_finite_differences(src, 2.0);
    assert_eq!(grads.len(), 6, "{grads:?}");
    assert_eq!(grads[0], "enc.weight_ih");
}
