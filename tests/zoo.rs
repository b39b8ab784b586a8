//! The model zoo (`models/*.nn`): every model compiles, its forward IR and
//! summary are snapshot-tested, its IR round-trips through the text format and
//! verifies, and the reference interpreter runs it to finite values of the
//! inferred shapes. Models are listed at test time, so a new file is covered
//! by adding it.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{compile_ok, display_path, for_each_file, nn_files, stem};
use nnc_compiler::ir::interp::{self, Real, Tensor};
use nnc_compiler::ir::{self, Dim, Graph, OutputKind};

const B: usize = 2;

fn models() -> Vec<std::path::PathBuf> {
    nn_files("models")
}

/// Snapshot settings for one model: snapshots in `tests/snapshots/`, the
/// model file recorded as the input.
fn settings(path: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_input_file(path);
    s.set_description(display_path(path));
    s
}

#[test]
fn forward_ir_snapshots() {
    for_each_file(&models(), |path, source| {
        let module = compile_ok(path, source);
        let text = ir::print::print(&module.train_graph);
        settings(path).bind(|| insta::assert_snapshot!(format!("{}_forward_train", stem(path)), text));
    });
}

#[test]
fn summary_snapshots() {
    for_each_file(&models(), |path, source| {
        let module = compile_ok(path, source);
        let text = nnc::summary::render_summary(&module);
        settings(path).bind(|| insta::assert_snapshot!(format!("{}_summary", stem(path)), text));
    });
}

/// print → parse → print is the identity, and parsing the printed text gives
/// back the same graph.
fn assert_round_trip(name: &str, graph: &Graph) {
    let text = ir::print::print(graph);
    let parsed = ir::parse::parse(&text)
        .unwrap_or_else(|e| panic!("{name}: printed IR does not parse: {e}\n--- IR ---\n{text}"));
    let again = ir::print::print(&parsed);
    assert_eq!(again, text, "{name}: print(parse(print(g))) differs from print(g)");
    assert!(parsed == *graph, "{name}: parse(print(g)) differs from g (the printed text is equal)");
}

#[test]
fn ir_round_trips() {
    for_each_file(&models(), |path, source| {
        let module = compile_ok(path, source);
        let name = display_path(path);
        assert_round_trip(&format!("{name} (train)"), &module.train_graph);
        assert_round_trip(&format!("{name} (infer)"), &module.infer_graph);
    });
}

#[test]
fn ir_verifies() {
    for_each_file(&models(), |path, source| {
        let module = compile_ok(path, source);
        let name = display_path(path);
        for graph in [&module.train_graph, &module.infer_graph] {
            if let Err(errors) = ir::verify::verify(graph) {
                panic!("{name} ({}): verifier errors:\n  {}", graph.mode.name(), errors.join("\n  "));
            }
        }
    });
}

/// Binds every symbolic dimension of the graph's inputs (`B`, ...) to [`B`].
fn dims(graph: &Graph) -> HashMap<String, usize> {
    graph
        .inputs()
        .flat_map(|(_, node)| node.ty.shape.dims().to_vec())
        .filter_map(|d| match d {
            Dim::Sym(s) => Some((s, B)),
            Dim::Known(_) => None,
        })
        .collect()
}

/// Runs `graph` on example inputs in precision `T` and checks every output:
/// type and shape as inferred (symbolic dims bound), float values finite, the
/// loss a scalar.
fn check_run<T: Real>(name: &str, graph: &Graph) {
    let precision = std::any::type_name::<T>();
    let name = format!("{name} ({}, {precision})", graph.mode.name());
    let dims = dims(graph);
    let inputs = interp::example_inputs::<T>(graph, &dims, 7)
        .unwrap_or_else(|e| panic!("{name}: example inputs: {e}"));
    let outputs = interp::run::<T>(graph, &inputs).unwrap_or_else(|e| panic!("{name}: run: {e}"));
    assert_eq!(outputs.len(), graph.outputs.len(), "{name}: number of outputs");
    assert!(!outputs.is_empty(), "{name}: the graph has no outputs");
    for ((out_name, tensor), output) in outputs.iter().zip(&graph.outputs) {
        assert_eq!(out_name, &output.name, "{name}: outputs out of order");
        let ty = graph.ty(output.value);
        let expected = ty
            .shape
            .resolve(&|s| dims.get(s).copied())
            .unwrap_or_else(|| panic!("{name}: output `{out_name}` has an unbound dimension: {ty}"));
        assert_eq!(tensor.shape(), expected.as_slice(), "{name}: shape of output `{out_name}` ({ty})");
        assert_eq!(tensor.dtype(), ty.dtype, "{name}: element type of output `{out_name}`");
        if let Tensor::Float(a) = tensor {
            assert!(a.iter().all(|x| x.is_finite()), "{name}: output `{out_name}` has non-finite values");
        }
        if output.kind == OutputKind::Loss {
            assert!(tensor.shape().is_empty(), "{name}: loss `{out_name}` is not a scalar");
            assert!(matches!(tensor, Tensor::Float(_)), "{name}: loss `{out_name}` is not a float");
        }
    }
    assert!(
        graph.outputs.iter().any(|o| o.kind == OutputKind::Loss) || graph.mode == ir::Mode::Infer,
        "{name}: the training graph has no loss output"
    );
}

/// Runs train and infer graphs of every model in precision `T` (one test per
/// precision, so that they run in parallel).
fn check_models_run<T: Real>() {
    for_each_file(&models(), |path, source| {
        let module = compile_ok(path, source);
        let name = display_path(path);
        for graph in [&module.train_graph, &module.infer_graph] {
            check_run::<T>(&name, graph);
        }
    });
}

#[test]
fn interpreter_runs_models_f32() {
    check_models_run::<f32>();
}

#[test]
fn interpreter_runs_models_f64() {
    check_models_run::<f64>();
}

/// The gradient graph, the training step and the optimised training step of
/// a model, as (stage name, graph): `grad`, `train`, `opt`, or for a model
/// with several losses `grad_LOSS`, `train_LOSS`, `opt_LOSS` for every step.
fn training_stages(path: &Path, source: &str) -> Vec<(String, Graph)> {
    let module = compile_ok(path, source);
    let name = display_path(path);
    let grads = nnc_compiler::pipeline::gradients(&module).unwrap_or_else(|e| panic!("{name}: grad: {e}"));
    let steps = nnc_compiler::pipeline::train_steps(&module).unwrap_or_else(|e| panic!("{name}: train: {e}"));
    let several = steps.len() > 1;
    let mut stages = vec![];
    for (grad, train) in grads.into_iter().zip(steps) {
        let label = |stage: &str| if several { format!("{stage}_{}", train.loss) } else { stage.to_string() };
        let opt = nnc_compiler::opt::optimize(&train.graph).unwrap_or_else(|e| panic!("{name}: opt: {e}"));
        stages.push((label("grad"), grad.graph));
        stages.push((label("train"), train.graph));
        stages.push((label("opt"), opt));
    }
    stages
}

#[test]
fn training_ir_snapshots() {
    for_each_file(&models(), |path, source| {
        for (stage, graph) in training_stages(path, source) {
            let text = ir::print::print(&graph);
            settings(path).bind(|| insta::assert_snapshot!(format!("{}_{stage}", stem(path)), text));
        }
    });
}

/// Every training-stage graph round-trips, verifies, and runs one step in the
/// interpreter to finite values; the optimised step computes what the
/// unoptimised one does.
#[test]
fn training_stages_verify_and_run() {
    for_each_file(&models(), |path, source| {
        let name = display_path(path);
        let stages = training_stages(path, source);
        for (stage, graph) in &stages {
            let label = format!("{name} --stage {stage}");
            assert_round_trip(&label, graph);
            if let Err(errors) = ir::verify::verify(graph) {
                panic!("{label}: verifier errors:\n  {}", errors.join("\n  "));
            }
        }
        // Per step: its gradient graph, training step and optimised step.
        for step in stages.chunks(3) {
            let (train, opt) = (&step[1].1, &step[2].1);
            check_run::<f32>(&format!("{name} --stage {}", step[1].0), train);
            optimisation_keeps_the_results(&name, train, opt);
        }
    });
}

/// The optimised training step computes what the unoptimised one does.
fn optimisation_keeps_the_results(name: &str, train: &Graph, opt: &Graph) {
    let inputs = interp::example_inputs::<f64>(train, &dims(train), 7).expect("example inputs");
    let before = interp::run::<f64>(train, &inputs).expect("train step runs");
    let after = interp::run::<f64>(opt, &inputs).expect("optimised train step runs");
    assert!(opt.nodes.len() <= train.nodes.len(), "{name}: the optimised step has more nodes");
    for ((n1, t1), (n2, t2)) in before.iter().zip(&after) {
        assert_eq!(n1, n2, "{name}: outputs differ in order");
        let (a, b) = (t1.as_float(), t2.as_float());
        if let (Some(a), Some(b)) = (a, b) {
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    "{name}: output `{n1}` differs after optimisation: {x} vs {y}"
                );
            }
        } else {
            assert_eq!(t1, t2, "{name}: output `{n1}` differs after optimisation");
        }
    }
}
