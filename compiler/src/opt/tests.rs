//! Tests of the whole pipeline: IR text in and out, the model zoo through the
//! reference interpreter, traces and error reporting.

use std::collections::HashMap;

use super::testing::{check_text, parse_ok};
use super::{optimize, optimize_traced, run_pipeline, Pass, PASSES};
use crate::ir::interp::{example_inputs, run, Tensor};
use crate::ir::print::print;
use crate::ir::verify::verify;
use crate::ir::{Graph, ValueId};

#[test]
fn pipeline_reaches_a_fixed_point() {
    let cases = [
        (
            "mean with a folded size, a duplicated broadcast and a multiplication by one",
            r#"graph t mode=train {
              %0: f32[B, 4] = input "x"                                 @1:1-1:9
              %1: f32[4] = param "b" role=bias init=zeros                @2:1-2:9
              %2: f32[B, 4] = broadcast %1 shape=[B, 4]                  @3:1-3:9
              %3: f32[B, 4] = broadcast %1 shape=[B, 4]                  @4:1-4:9
              %4: f32[B, 4] = add %0, %2                                 @5:1-5:9
              %5: f32[B, 4] = add %3, %0                                 @6:1-6:9
              %6: f32[] = const 1.0                                      @7:1-7:9
              %7: f32[B, 4] = broadcast %6 shape=[B, 4]                  @7:1-7:9
              %8: f32[B, 4] = mul %5, %7                                 @7:1-7:9
              %9: f32[B, 4] = mul %4, %8                                 @8:1-8:9
              %10: f32[B] = reduce_sum %9 axes=[1]                       @9:1-9:9
              %11: f32[] = size %9 axes=[1]                              @9:1-9:9
              %12: f32[] = const 2.0                                     @9:1-9:9
              %13: f32[] = div %12, %11                                  @9:1-9:9
              %14: f32[B] = broadcast %13 shape=[B]                      @9:1-9:9
              %15: f32[B] = mul %10, %14                                 @9:1-9:9
              %16: f32[B] = neg %15                                      @9:1-9:9 from %15 mul
              %17: f32[B] = neg %16                                      @9:1-9:9 from %10 reduce_sum
              %18: f32[B] = exp %17                                      @9:1-9:9 from %14 broadcast
              prediction "y" = %18
            }"#,
            r#"graph t mode=train {
              %0: f32[B, 4] = input "x"                                 @1:1-1:9
              %1: f32[4] = param "b" role=bias init=zeros                @2:1-2:9
              %2: f32[B, 4] = broadcast %1 shape=[B, 4]                  @3:1-3:9
              %3: f32[B, 4] = add %0, %2                                 @5:1-5:9
              %4: f32[B, 4] = mul %3, %3                                 @8:1-8:9
              %5: f32[B] = reduce_sum %4 axes=[1]                        @9:1-9:9
              %6: f32[] = const 0.5                                      @9:1-9:9
              %7: f32[B] = broadcast %6 shape=[B]                        @9:1-9:9
              %8: f32[B] = mul %5, %7                                    @9:1-9:9
              %9: f32[B] = exp %8                                        @9:1-9:9 from %7 broadcast
              prediction "y" = %9
            }"#,
        ),
        (
            "an already optimal graph is unchanged",
            r#"graph t mode=infer {
              %0: f32[B, 4] = input "x"
              %1: f32[4] = param "unused" role=weight init=ones
              %2: f32[B, 4] = tanh %0                                    @3:1-3:9
              prediction "y" = %2
            }"#,
            r#"graph t mode=infer {
              %0: f32[B, 4] = input "x"
              %1: f32[4] = param "unused" role=weight init=ones
              %2: f32[B, 4] = tanh %0                                    @3:1-3:9
              prediction "y" = %2
            }"#,
        ),
    ];
    for (case, input, expected) in cases {
        let out = optimize(&parse_ok(input)).unwrap_or_else(|e| panic!("{case}: {e}"));
        check_text(case, &out, expected);
    }
}

#[test]
fn trace_shows_every_pass_in_order() {
    let g = parse_ok(
        r#"graph t mode=infer {
          %0: f32[3] = input "x"
          %1: f32[3] = neg %0
          %2: f32[3] = neg %1
          %3: f32[3] = exp %2
          %4: f32[3] = exp %0
          %5: f32[3] = add %3, %4
          prediction "y" = %5
        }"#,
    );
    let steps = optimize_traced(&g).expect("optimises");
    let names: Vec<&str> = steps.iter().map(|s| s.pass).collect();
    let per_round: Vec<&str> = PASSES.iter().map(|p| p.name).collect();
    assert_eq!(names.len() % per_round.len(), 0);
    for (i, chunk) in names.chunks(per_round.len()).enumerate() {
        assert_eq!(chunk, per_round.as_slice());
        assert!(steps[i * per_round.len()..][..per_round.len()].iter().all(|s| s.round == i + 1));
    }
    let last = &steps.last().expect("at least one step").graph;
    assert_eq!(print(last), print(&optimize(&g).expect("optimises")));
    check_text(
        "traced result",
        last,
        r#"graph t mode=infer {
          %0: f32[3] = input "x"
          %1: f32[3] = exp %0
          %2: f32[3] = add %1, %1
          prediction "y" = %2
        }"#,
    );
}

/// A pass that breaks SSA order, to test error reporting.
fn dangling_operand(graph: &Graph) -> Graph {
    let mut g = graph.clone();
    if let Some(node) = g.nodes.get_mut(1) {
        node.args = vec![ValueId(5)];
    }
    g
}

#[test]
fn errors_name_the_pass_and_bad_inputs_are_rejected() {
    let g = parse_ok(
        "graph t mode=infer {\n %0: f32[3] = input \"x\"\n %1: f32[3] = exp %0\n value \"e\" = %1\n}",
    );
    let passes = [Pass { name: "dce", run: super::dce::run }, Pass { name: "broken", run: dangling_operand }];
    let err =
        run_pipeline(&g, &passes, &mut |_, _, _| {}).expect_err("the broken pass is caught").to_string();
    assert!(err.contains("pass `broken`") && err.contains("%5"), "{err}");

    let bad = crate::ir::parse::parse("graph t mode=infer {\n %0: f32[3] = exp %1\n}").expect("parses");
    let err = optimize(&bad).expect_err("unverified input").to_string();
    assert!(err.contains("does not verify"), "{err}");
}

/// Whether two interpreter results agree to 1e-12 relative (floats) or
/// exactly (integers, booleans).
fn close(a: &Tensor<f64>, b: &Tensor<f64>) -> bool {
    match (a, b) {
        (Tensor::Float(x), Tensor::Float(y)) => {
            x.shape() == y.shape()
                && x.iter().zip(y.iter()).all(|(&p, &q)| {
                    p.to_bits() == q.to_bits()
                        || (p.is_nan() && q.is_nan())
                        || (p - q).abs() <= 1e-12 * p.abs().max(q.abs())
                })
        }
        _ => a == b,
    }
}

/// Optimises `graph` and checks that the result verifies, is no larger and
/// computes the same outputs on example inputs.
fn check_equivalent(what: &str, graph: &Graph) {
    let optimized = optimize(graph).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(verify(&optimized), Ok(()), "{what}");
    assert!(
        optimized.nodes.len() <= graph.nodes.len(),
        "{what}: {} nodes became {}",
        graph.nodes.len(),
        optimized.nodes.len()
    );
    let inputs_before: Vec<_> = graph.inputs().map(|(_, n)| (&n.op, &n.ty)).collect();
    let inputs_after: Vec<_> = optimized.inputs().map(|(_, n)| (&n.op, &n.ty)).collect();
    assert_eq!(inputs_before, inputs_after, "{what}: the inputs are kept, in order");
    let dims = HashMap::from([("B".to_string(), 2)]);
    let inputs = example_inputs::<f64>(graph, &dims, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
    let before = run::<f64>(graph, &inputs).unwrap_or_else(|e| panic!("{what}: {e}"));
    let after = run::<f64>(&optimized, &inputs).unwrap_or_else(|e| panic!("{what}: optimised: {e}"));
    assert_eq!(before.len(), after.len(), "{what}");
    for ((name, x), (name2, y)) in before.iter().zip(&after) {
        assert_eq!(name, name2, "{what}");
        assert!(close(x, y), "{what}: output `{name}` differs:\n{x:?}\n{y:?}");
    }
}

#[test]
fn zoo_models_optimise_to_equivalent_graphs() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("models directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nn"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let source = std::fs::read_to_string(&path).expect("readable model");
        let name = path.display().to_string();
        let dir = path.parent().expect("a directory").to_path_buf();
        let loader = crate::sema::test_files::NpyFiles(dir);
        let module = crate::compile_with(&source, &loader).unwrap_or_else(|e| panic!("{name}: {e:?}")).module;
        check_equivalent(&format!("{name} (train)"), &module.train_graph);
        check_equivalent(&format!("{name} (infer)"), &module.infer_graph);
        if let Ok(step) = crate::pipeline::train_step(&module) {
            check_equivalent(&format!("{name} (training step)"), &step);
        }
    }
}

#[test]
fn locations_and_origins_survive_every_pass() {
    let g = parse_ok(
        r#"graph t mode=train {
          %0: f32[2] = input "x"                                     @1:1-1:4
          %1: f32[] = const 1.0                                      @2:1-2:4
          %2: f32[2] = broadcast %1 shape=[2]                        @2:1-2:4
          %3: f32[2] = mul %0, %2                                    @3:1-3:4
          %4: f32[2] = tanh %3                                       @4:1-4:4
          %5: f32[] = reduce_sum %4 axes=[0]                         @5:1-5:4
          %6: f32[2] = tanh %3                                       @4:1-4:4 from %5 reduce_sum
          %7: f32[2] = mul %6, %6                                    @4:1-4:4 from %4 tanh
          %8: f32[2] = sub %2, %7                                    @4:1-4:4 from %4 tanh
          loss "loss" = %5
          value "g" = %8
        }"#,
    );
    let expected = [
        (
            "simplify",
            r#"graph t mode=train {
              %0: f32[2] = input "x"                                     @1:1-1:4
              %1: f32[] = const 1.0                                      @2:1-2:4
              %2: f32[2] = broadcast %1 shape=[2]                        @2:1-2:4
              %3: f32[2] = tanh %0                                       @4:1-4:4
              %4: f32[] = reduce_sum %3 axes=[0]                         @5:1-5:4
              %5: f32[2] = tanh %0                                       @4:1-4:4 from %4 reduce_sum
              %6: f32[2] = mul %5, %5                                    @4:1-4:4 from %3 tanh
              %7: f32[2] = sub %2, %6                                    @4:1-4:4 from %3 tanh
              loss "loss" = %4
              value "g" = %7
            }"#,
        ),
        (
            "cse",
            r#"graph t mode=train {
              %0: f32[2] = input "x"                                     @1:1-1:4
              %1: f32[] = const 1.0                                      @2:1-2:4
              %2: f32[2] = broadcast %1 shape=[2]                        @2:1-2:4
              %3: f32[2] = mul %0, %2                                    @3:1-3:4
              %4: f32[2] = tanh %3                                       @4:1-4:4
              %5: f32[] = reduce_sum %4 axes=[0]                         @5:1-5:4
              %6: f32[2] = mul %4, %4                                    @4:1-4:4 from %4 tanh
              %7: f32[2] = sub %2, %6                                    @4:1-4:4 from %4 tanh
              loss "loss" = %5
              value "g" = %7
            }"#,
        ),
        (
            "optimize",
            r#"graph t mode=train {
              %0: f32[2] = input "x"                                     @1:1-1:4
              %1: f32[] = const 1.0                                      @2:1-2:4
              %2: f32[2] = broadcast %1 shape=[2]                        @2:1-2:4
              %3: f32[2] = tanh %0                                       @4:1-4:4
              %4: f32[] = reduce_sum %3 axes=[0]                         @5:1-5:4
              %5: f32[2] = mul %3, %3                                    @4:1-4:4 from %3 tanh
              %6: f32[2] = sub %2, %5                                    @4:1-4:4 from %3 tanh
              loss "loss" = %4
              value "g" = %6
            }"#,
        ),
    ];
    for (what, text) in expected {
        let out = match what {
            "simplify" => super::simplify::run(&g),
            "cse" => super::cse::run(&g),
            _ => optimize(&g).expect("optimises"),
        };
        check_text(what, &out, text);
    }
}
