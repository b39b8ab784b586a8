//! Tests of `graph_conv` through the whole of sema: result types, the
//! tensors it creates, equality with the same layer written out in `.nn`
//! with `gather`, `concat`, `dense` and `scatter` (every aggregation, edge
//! features, with and without the residual, projecting before or after the
//! gather), gradients against finite differences, and misuse.

use std::collections::HashMap;

use crate::ir::interp::{run, Tensor};
use crate::ir::{Init, InputKind, Op};

use super::builtin_tests::{analyse_ok, gradients_match_finite_differences, module_inputs, prediction_type};
use super::catalogue::{self, Kind, Role};

/// A model with node features, edge features and `r = EXPR`; `g` is the
/// 8 edges of a line of 5 nodes, `few` its first 3 (fewer edges than nodes).
fn model_with(expr: &str) -> String {
    format!(
        "model m {{
  input x: f32[B, 5, 3]
  input wide: f32[B, 5, 4]
  input ef: f32[B, 8, 2]
  input flat: f32[8, 2]
  g = grid_graph(1, 5)
  few = g[0:3]
  r = {expr}
}}
"
    )
}

fn type_of(expr: &str) -> String {
    prediction_type(&model_with(expr))
}

#[test]
fn graph_conv_has_its_documented_result_type() {
    let cases: &[(&str, &str)] = &[
        ("graph_conv(x, g, 3)", "f32[B, 5, 3]"),
        ("graph_conv(x, g, 7, aggr: mean)", "f32[B, 5, 7]"),
        ("x |> graph_conv(g, 2, aggr: max, edge_features: ef, activation: tanh)", "f32[B, 5, 2]"),
        ("graph_conv(wide, few, units: 4, edge_features: flat[0:3])", "f32[B, 5, 4]"),
        ("x |> graph_conv(g, 3) |> graph_conv(g, 3, residual: false)", "f32[B, 5, 3]"),
    ];
    for (expr, want) in cases {
        assert_eq!(type_of(expr), *want, "{expr}");
    }
}

/// One call creates exactly the tensors of its catalogue row, in order,
/// with the row's role, initialisation and fan-in.
#[test]
fn graph_conv_creates_the_tensors_its_catalogue_row_lists() {
    let b = catalogue::find("graph_conv").expect("in the catalogue");
    assert_eq!(b.kind, Kind::Layer);
    let m = analyse_ok(&model_with("graph_conv(x, g, 6, edge_features: ef)"));
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
    // message: fan-in 2·3 + 2 = 8; update: fan-in 3 + 6 = 9.
    let want = [(vec![6, 8], 8.0), (vec![6], 8.0), (vec![6, 9], 9.0), (vec![6], 9.0)];
    assert_eq!(created.len(), b.tensors.len(), "{created:?}");
    for (((name, role, init, shape), spec), (want_shape, fan_in)) in created.iter().zip(b.tensors).zip(&want)
    {
        assert_eq!(name, &format!("r.graph_conv_1.{}", spec.name));
        assert_eq!(*role, spec.role, "{name}");
        assert!(spec.init.matches(*init), "{name}: {init:?} is not {:?}", spec.init);
        assert_eq!(shape, want_shape, "{name}");
        assert_eq!(*init, Init::Uniform { bound: 1.0 / f64::sqrt(*fan_in) }, "{name}");
    }
}

/// The message projection is applied to the nodes before the gather when
/// the graph has at least as many edges as nodes, to the gathered edges
/// otherwise: the matrix products have N or E rows.
#[test]
fn graph_conv_projects_the_smaller_side() {
    let rows_of_products = |expr: &str| -> Vec<String> {
        let m = analyse_ok(&model_with(expr));
        m.infer_graph
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::MatMul))
            .map(|n| n.ty.shape.dims()[1].to_string())
            .collect()
    };
    // Source and destination projections, then the update (over the nodes).
    assert_eq!(rows_of_products("graph_conv(x, g, 4)"), ["5", "5", "5"]);
    assert_eq!(rows_of_products("graph_conv(x, few, 4)"), ["3", "3", "5"]);
}

/// `graph_conv` equals the interaction network written out with `gather`,
/// `concat`, `dense` and `scatter` on the same parameters, for each
/// aggregation, with edge features per edge or per sample and edge, with
/// and without the residual, on a graph with more and one with fewer edges
/// than nodes.
#[test]
fn graph_conv_equals_its_composition_in_nn() {
    let cases = [
        ("g", "sum", "none", "relu", true),
        ("g", "mean", "ef", "tanh", true),
        ("g", "max", "flat", "relu", false),
        ("few", "sum", "none", "gelu", true),
        ("few", "max", "none", "tanh", true),
    ];
    for (edges, aggr, features, act, residual) in cases {
        let n_edges = if edges == "g" { 8 } else { 3 };
        let msg_in = if features == "none" {
            "concat(gather(x, e[:, 0]), gather(x, e[:, 1]), axis: 2)".to_string()
        } else {
            let f = if features == "flat" { "broadcast_flat".to_string() } else { features.to_string() };
            format!("concat(gather(x, e[:, 0]), gather(x, e[:, 1]), {f}, axis: 2)")
        };
        let update = if residual { "x + u" } else { "u" };
        let src = format!(
            "model m {{
  input x: f32[B, 5, 3]
  input ef: f32[B, 8, 2]
  input flat: f32[8, 2]
  g = grid_graph(1, 5)
  few = g[0:3]
  e = {edges}
  broadcast_flat = flat + zeros([B, 8, 2])
  a = graph_conv(x, e, 3, aggr: {aggr}, edge_features: {features}, activation: {act}, residual: {residual})
  msg = {msg_in} |> dense(3) |> {act}
  agg = scatter(msg, e[:, 1], 5, reduce: {aggr})
  u = concat(x, agg, axis: 2) |> dense(3) |> {act}
  o = {update}
  r = stack([a, o])
}}
"
        );
        let m = analyse_ok(&src);
        let mut inputs = module_inputs(&m, &m.infer_graph, 2, 9);
        for (hand, layer) in [("msg", "message"), ("u", "update")] {
            for t in ["weight", "bias"] {
                let value = inputs[&format!("a.graph_conv_1.{layer}.{t}")].clone();
                inputs.insert(format!("{hand}.dense_1.{t}"), value);
            }
        }
        let case = format!("{edges} ({n_edges} edges), {aggr}, {features}, {act}, residual {residual}");
        let out: HashMap<String, Tensor<f64>> =
            run(&m.infer_graph, &inputs).expect("runs").into_iter().collect();
        let r = out["r"].as_float().expect("values");
        let (a, o) = (r.index_axis(ndarray::Axis(0), 0), r.index_axis(ndarray::Axis(0), 1));
        let largest = o.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest > 1e-2, "{case}: {o:?}");
        let diff = a.iter().zip(o.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-12, "{case}: largest difference {diff}");
        // Different message weights change the result: the test compares something.
        let mut moved = inputs.clone();
        if let Some(Tensor::Float(w)) = moved.get_mut("a.graph_conv_1.message.weight") {
            w.mapv_inplace(|v| 0.5 * v);
        }
        let out: HashMap<String, Tensor<f64>> =
            run(&m.infer_graph, &moved).expect("runs").into_iter().collect();
        let r = out["r"].as_float().expect("values");
        let moved_a = r.index_axis(ndarray::Axis(0), 0);
        let diff = moved_a.iter().zip(o.iter()).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff > 1e-3, "{case}: the message weight does not matter");
    }
}

#[test]
fn graph_conv_gradients_match_finite_differences() {
    let src = "model m {
  input x: f32[B, 6, 3]
  input ef: f32[B, 14, 2]
  target y: f32[B, 6, 4]
  g = grid_graph(2, 3)
  h = x |> graph_conv(g, 3, aggr: mean, edge_features: ef, activation: tanh)
  k = h |> graph_conv(g[0:4], 4, aggr: max, activation: tanh)
  loss = mse(k |> graph_conv(g, 4, activation: softplus), y)
}
";
    let grads = gradients_match_finite_differences(src, 1.5);
    assert_eq!(grads.len(), 12, "{grads:?}");
}

/// Misuse of `graph_conv` is reported at the operand at fault.
#[test]
fn graph_conv_misuse_is_reported_at_the_operand() {
    super::builtin_tests::assert_errors(&[
        (
            "graph_conv(seq, ones([4, 2]), 4)",
            &[
                "`graph_conv` needs an edge list i32[E, 2] of (source, destination) rows, got f32[4, 2]",
                "expected i32[4, 2]",
                "help: node indices are i32",
            ],
        ),
        (
            "graph_conv(seq, grid_graph(1, 3)[:, 0], 4)",
            &["got i32[4]", "help: a single index vector is for `gather` and `scatter`"],
        ),
        (
            "graph_conv(seq, permute(grid_graph(1, 4), [1, 0]), 4)",
            &["got i32[2, 6]", "transpose a [2, E] list"],
        ),
        (
            "graph_conv(seq, grid_graph(2, 2), 4)",
            &[
                "edge 3 of the edge list grid_graph(2, 2, neighbours: 4, periodic: [false, false]) has the source 3, outside the 3 nodes of x [B, 3, 10]",
                "node indices must lie in 0..3",
            ],
        ),
        ("graph_conv(img, grid_graph(1, 3), 4)", &["`graph_conv` needs node features [B, N, F], got f32[B, 1, 8, 8]"]),
        (
            "graph_conv(seq, grid_graph(1, 3), 4, edge_features: x)",
            &["`graph_conv` needs edge features [E, Fe] or [B, E, Fe] with one row per edge (4 edges), got f32[B, 4]"],
        ),
        ("graph_conv(seq, grid_graph(1, 3))", &["missing argument `units`"]),
        ("graph_conv(seq, grid_graph(1, 3), 4, aggr: min)", &["invalid value `min` for `aggr`: expected one of `sum`, `mean`, `max`"]),
    ]);
}
