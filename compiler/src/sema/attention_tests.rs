//! Tests of the attention built-ins through the whole of sema: result
//! types, the tensors each layer creates, gradients against finite
//! differences, exact zeros at masked positions, `multihead_attention`
//! against the same attention written out in `.nn`, and misuse.

use std::collections::HashMap;

use crate::diag::render_plain;
use crate::ir::interp::{run, Tensor};
use crate::ir::{Init, InputKind, Op};

use super::analyze;
use super::builtin_tests::{analyse_ok, gradients_match_finite_differences, module_inputs, prediction_type};
use super::catalogue::{self, Kind, Role};
use super::forward::sinusoidal;

/// A model with sequences of several widths and `r = EXPR`.
fn model_with(expr: &str) -> String {
    format!(
        "model m {{
  input x: f32[B, 5, 8]
  input heads4: f32[B, 2, 5, 4]
  input ctx: f32[B, 3, 6]
  input tok: i32[B, 5]
  input keep: f32[5, 5]
  r = {expr}
}}
"
    )
}

fn type_of(expr: &str) -> String {
    prediction_type(&model_with(expr))
}

#[test]
fn attention_builtins_have_their_documented_result_types() {
    let cases: &[(&str, &str)] = &[
        ("attention(x, x, x)", "f32[B, 5, 8]"),
        ("attention(heads4, heads4, heads4, mask: causal)", "f32[B, 2, 5, 4]"),
        ("attention(x, dense(ctx, 8), ctx, mask: none)", "f32[B, 5, 6]"),
        ("attention(heads4, heads4, heads4, mask: keep)", "f32[B, 2, 5, 4]"),
        ("attention(x, x, x, mask: keep > 0)", "f32[B, 5, 8]"),
        ("multihead_attention(x, heads: 2)", "f32[B, 5, 8]"),
        ("x |> multihead_attention(4, mask: causal, dropout: 0.1)", "f32[B, 5, 8]"),
        ("multihead_attention(x, heads: 8, context: ctx, bias: false)", "f32[B, 5, 8]"),
        ("embedding(tok, 10, 3)", "f32[B, 5, 3]"),
        ("positional_encoding(x)", "f32[B, 5, 8]"),
        ("x |> positional_encoding(kind: learned)", "f32[B, 5, 8]"),
        ("transformer_layer(x, heads: 2, ff: 16)", "f32[B, 5, 8]"),
        (
            "x |> transformer_layer(4, 3, norm: post, dropout: 0.1, activation: relu, mask: causal)",
            "f32[B, 5, 8]",
        ),
        (
            "tok |> embedding(7, 4) |> positional_encoding |> repeat(transformer_layer(2, 8), 2)",
            "f32[B, 5, 4]",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(type_of(expr), *want, "{expr}");
    }
}

/// One call of each layer creates exactly the tensors of its catalogue
/// row, in order, with the row's role and initialisation.
#[test]
fn attention_layers_create_the_tensors_their_catalogue_row_lists() {
    let calls = [
        (
            "multihead_attention",
            "multihead_attention(x, heads: 2, context: ctx)",
            vec![vec![8, 8], vec![8], vec![8, 6], vec![8], vec![8, 6], vec![8], vec![8, 8], vec![8]],
        ),
        (
            "transformer_layer",
            "transformer_layer(x, heads: 2, ff: 16)",
            vec![
                vec![8, 8],
                vec![8],
                vec![8, 8],
                vec![8],
                vec![8, 8],
                vec![8],
                vec![8, 8],
                vec![8],
                vec![16, 8],
                vec![16],
                vec![8, 16],
                vec![8],
                vec![8],
                vec![8],
                vec![8],
                vec![8],
            ],
        ),
        ("embedding", "embedding(tok, 10, 3)", vec![vec![10, 3]]),
        ("positional_encoding", "positional_encoding(x, kind: learned)", vec![vec![5, 8]]),
    ];
    for (kind, call, shapes) in calls {
        let b = catalogue::find(kind).expect("in the catalogue");
        assert_eq!(b.kind, Kind::Layer);
        let m = analyse_ok(&model_with(call));
        let created: Vec<(String, Role, Init, Vec<usize>)> = m
            .train_graph
            .inputs()
            .filter_map(|(_, n)| match &n.op {
                Op::Input { name, kind: InputKind::Param { role, init } } => {
                    Some((name.clone(), Role::Param(*role), *init, n.ty.shape.as_known().expect("known")))
                }
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), b.tensors.len(), "{kind}: {created:?}");
        for (((name, role, init, shape), spec), want) in created.iter().zip(b.tensors).zip(&shapes) {
            assert_eq!(name, &format!("r.{kind}_1.{}", spec.name), "{kind}");
            assert_eq!(*role, spec.role, "{name}");
            assert!(spec.init.matches(*init), "{name}: {init:?} is not {:?}", spec.init);
            assert_eq!(shape, want, "{name}");
        }
    }
    // k and v project the context: fan-in 6.
    let m = analyse_ok(&model_with("multihead_attention(x, heads: 2, context: ctx)"));
    let bound = |name: &str| {
        m.train_graph.inputs().find_map(|(_, n)| match &n.op {
            Op::Input { name: n2, kind: InputKind::Param { init: Init::Uniform { bound }, .. } }
                if n2 == name =>
            {
                Some(*bound)
            }
            _ => None,
        })
    };
    let k = bound("r.multihead_attention_1.k_proj.weight").expect("k_proj");
    assert!((k - 1.0 / 6f64.sqrt()).abs() < 1e-12);
    let q = bound("r.multihead_attention_1.q_proj.weight").expect("q_proj");
    assert!((q - 1.0 / 8f64.sqrt()).abs() < 1e-12);
    // Sinusoidal encoding creates no parameter but a constant.
    let m = analyse_ok(&model_with("positional_encoding(x)"));
    assert!(m
        .train_graph
        .inputs()
        .all(|(_, n)| !matches!(&n.op, Op::Input { kind: InputKind::Param { .. }, .. })));
    let pe = m.constants.iter().find(|c| c.name == "r.positional_encoding_1.pe").expect("pe constant");
    assert_eq!(pe.ty.to_string(), "f32[5, 8]");
}

/// The sinusoidal table is Vaswani et al.'s, as NumPy computes it in f64.
#[test]
fn sinusoidal_encoding_matches_the_formula() {
    let pe = sinusoidal(64, 64);
    for (t, i) in [(0usize, 0usize), (1, 0), (5, 3), (63, 31), (17, 10)] {
        let angle = t as f64 / 10000f64.powf(2.0 * i as f64 / 64.0);
        assert_eq!(pe[t * 64 + 2 * i], angle.sin() as f32, "sin at t {t}, i {i}");
        assert_eq!(pe[t * 64 + 2 * i + 1], angle.cos() as f32, "cos at t {t}, i {i}");
    }
    // An odd width ends with a sine.
    let odd = sinusoidal(3, 5);
    assert_eq!(odd[2 * 5 + 4], (2.0f64 / 10000f64.powf(4.0 / 5.0)).sin() as f32);
}

#[test]
fn attention_and_multihead_gradients_match_finite_differences() {
    let src = "model m {
  input x: f32[B, 4, 6]
  input keep: f32[B, 1, 4, 4]
  target y: f32[B, 4, 6]
  target z: f32[B, 2, 4, 5]
  h = x |> multihead_attention(heads: 2, mask: causal)
  c = multihead_attention(h, heads: 3, context: x |> dense(5), bias: false)
  q = reshape(h, [B, 2, 4, 3])
  k = reshape(x |> dense(6), [B, 2, 4, 3])
  v = reshape(x |> dense(10), [B, 2, 4, 5])
  a = attention(q, k, v, mask: keep > 0)
  loss = mse(c, y) + mse(a, z)
}
";
    let grads = gradients_match_finite_differences(src, 2.0);
    assert_eq!(grads.len(), 8 + 6 + 2 + 2, "{grads:?}");
}

#[test]
fn transformer_layers_embedding_and_positions_gradients_match_finite_differences() {
    let src = "model m {
  input tok: i32[B, 4]
  target y: f32[B, 4, 6]
  e = tok |> embedding(3, 6) |> positional_encoding(kind: learned) |> positional_encoding
  h = e |> transformer_layer(heads: 2, ff: 8, norm: pre)
  p = h |> transformer_layer(heads: 3, ff: 5, norm: post, mask: causal)
  loss = mse(p, y)
}
";
    let grads = gradients_match_finite_differences(src, 1.5);
    assert_eq!(grads.len(), 1 + 1 + 16 + 16, "{grads:?}");
}

/// Runs `r` of [`model_with`]-like `src` in the f64 interpreter with
/// example inputs changed by `adjust`.
fn run_r(src: &str, adjust: impl Fn(&mut HashMap<String, Tensor<f64>>)) -> ndarray::ArrayD<f64> {
    let m = analyse_ok(src);
    let mut inputs = module_inputs(&m, &m.infer_graph, 2, 5);
    adjust(&mut inputs);
    let out: HashMap<String, Tensor<f64>> = run(&m.infer_graph, &inputs).expect("runs").into_iter().collect();
    out["r"].as_float().expect("f32 values").clone()
}

fn scaled(inputs: &mut HashMap<String, Tensor<f64>>, name: &str, by: f64) {
    if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
        a.mapv_inplace(|v| by * v);
    }
}

/// With `v` the identity, attention returns its weights: masked positions
/// are exactly 0, every other row sums to 1, a row with nothing allowed is
/// all zero, and scores of ±1000 stay finite (the softmax subtracts the
/// row maximum).
#[test]
fn masked_positions_get_exactly_zero_weight() {
    let src = |mask: &str| {
        format!(
            "model m {{
  input q: f32[B, 2, 5, 3]
  input k: f32[B, 2, 5, 3]
  input eye: f32[B, 2, 5, 5]
  input keep: f32[5, 5]
  r = attention(q, k, eye, mask: {mask})
}}
"
        )
    };
    let identity = |inputs: &mut HashMap<String, Tensor<f64>>| {
        let eye = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 2, 5, 5]), |i| {
            f64::from(u8::from(i[2] == i[3]))
        });
        inputs.insert("eye".into(), Tensor::Float(eye));
        // Scores of up to a few hundred: exp would overflow f32 without the shift.
        scaled(inputs, "q", 8.0);
        scaled(inputs, "k", 8.0);
    };
    let w = run_r(&src("causal"), identity);
    for ((b, h, t, s), &v) in w.clone().into_dimensionality::<ndarray::Ix4>().expect("rank 4").indexed_iter()
    {
        assert!(v.is_finite(), "{b} {h} {t} {s}: {v}");
        if s > t {
            assert_eq!(v.to_bits(), 0.0f64.to_bits(), "future position {s} of query {t}: {v}");
        }
    }
    let sums = w.sum_axis(ndarray::Axis(3));
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12), "{sums:?}");

    // A tensor mask: 0 forbids; row 2 forbids everything.
    let keep: Vec<f64> = (0..25).map(|i| if i / 5 == 2 || (i * 7) % 3 == 0 { 0.0 } else { 1.0 }).collect();
    let with_keep = |inputs: &mut HashMap<String, Tensor<f64>>| {
        identity(inputs);
        let k = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[5, 5]), keep.clone()).expect("5×5");
        inputs.insert("keep".into(), Tensor::Float(k));
    };
    let w = run_r(&src("keep"), with_keep);
    let w = w.into_dimensionality::<ndarray::Ix4>().expect("rank 4");
    for ((_, _, t, s), &v) in w.indexed_iter() {
        if keep[t * 5 + s] == 0.0 {
            assert_eq!(v.to_bits(), 0.0f64.to_bits(), "masked ({t}, {s}): {v}");
        } else {
            assert!(v >= 0.0, "allowed ({t}, {s}): {v}");
        }
    }
    for ((_, _, t), s) in w.sum_axis(ndarray::Axis(3)).indexed_iter() {
        let want = if t == 2 { 0.0 } else { 1.0 };
        assert!((s - want).abs() < 1e-12, "row {t} sums to {s}");
    }
    // A bool mask and the same mask as 0/1 agree exactly.
    let b = run_r(&src("keep > 0.5"), with_keep);
    assert_eq!(b, w.into_dyn());
}

/// `multihead_attention` is the composition of `dense`, `reshape`,
/// `permute`, `matmul` and `softmax` written out in `.nn`, on the same
/// parameters.
#[test]
fn multihead_attention_equals_its_composition_in_nn() {
    let src = "model m {
  input x: f32[B, 5, 8]
  input y: f32[B, 3, 6]
  a = multihead_attention(x, heads: 2, context: y)
  q = x |> dense(8) |> reshape([B, 5, 2, 4]) |> permute([0, 2, 1, 3])
  k = y |> dense(8) |> reshape([B, 3, 2, 4]) |> permute([0, 2, 1, 3])
  v = y |> dense(8) |> reshape([B, 3, 2, 4]) |> permute([0, 2, 1, 3])
  w = softmax(matmul(q, permute(k, [0, 1, 3, 2])) / 2, axis: -1)
  o = matmul(w, v) |> permute([0, 2, 1, 3]) |> reshape([B, 5, 8]) |> dense(8)
  r = stack([a, o])
}
";
    let m = analyse_ok(src);
    let mut inputs = module_inputs(&m, &m.infer_graph, 3, 9);
    for (hand, proj) in [("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "out_proj")] {
        for t in ["weight", "bias"] {
            let value = inputs[&format!("a.multihead_attention_1.{proj}.{t}")].clone();
            inputs.insert(format!("{hand}.dense_1.{t}"), value);
        }
    }
    let out: HashMap<String, Tensor<f64>> = run(&m.infer_graph, &inputs).expect("runs").into_iter().collect();
    let r = out["r"].as_float().expect("values");
    let (a, o) = (r.index_axis(ndarray::Axis(0), 0), r.index_axis(ndarray::Axis(0), 1));
    let largest = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(largest > 1e-2, "{a:?}");
    let diff = a.iter().zip(o.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= 1e-6, "largest difference {diff}");
    // Different parameters give a different result: the test compares something.
    let mut moved = inputs.clone();
    scaled(&mut moved, "a.multihead_attention_1.v_proj.weight", 0.5);
    let out: HashMap<String, Tensor<f64>> = run(&m.infer_graph, &moved).expect("runs").into_iter().collect();
    let r = out["r"].as_float().expect("values");
    let diff =
        r.index_axis(ndarray::Axis(0), 0).iter().zip(o.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff > 1e-3);
}

/// Misused attention built-ins are reported at the call, the operand at
/// fault labelled with what it should have been.
#[test]
fn attention_misuse_is_reported_at_the_operand() {
    let cases: &[(&str, &[&str])] = &[
        (
            "multihead_attention(x, heads: 3)",
            &[
                "3 heads do not divide the width 8",
                "`heads: 3` does not divide 8",
                "expected a width divisible by 3",
                "1, 2, 4, 8",
            ],
        ),
        ("transformer_layer(ctx, heads: 4, ff: 8)", &["4 heads do not divide the width 6"]),
        (
            "attention(x, ctx, ctx)",
            &[
                "queries and keys of one width",
                "query width 8, key width 6",
                "this is f32[B, 3, 6], expected width 8",
            ],
        ),
        ("attention(x, x, ctx)", &["one value per key", "expected 5 positions on axis 1"]),
        (
            "attention(x, x, x, mask: ctx)",
            &[
                "the attention mask f32[B, 3, 6] does not broadcast to the scores [B, 5, 5]",
                "expected a shape broadcastable",
            ],
        ),
        (
            "multihead_attention(x, heads: 2, mask: ctx)",
            &["does not broadcast to the scores [B, 2, 5, 5]", "this is f32[B, 3, 6], expected"],
        ),
        ("attention(heads4, x, x)", &["q, k and v of one rank", "expected rank 4"]),
        ("attention(x, x, x, mask: casual)", &["invalid value `casual` for `mask`"]),
        ("embedding(x, 10, 3)", &["`embedding` looks up i32 indices", "expected i32[B, 5, 8]"]),
        ("positional_encoding(tok)", &["needs an f32 tensor"]),
        ("multihead_attention(x, heads: 2, context: tok)", &["needs an f32 tensor"]),
        ("multihead_attention(keep, heads: 1)", &["needs a sequence [B, T, E]", "expected rank 3"]),
    ];
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
