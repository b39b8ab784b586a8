//! The constructs of the language's second part on whole models: the
//! convlstm benchmark model rewritten with a shared readout computes what
//! the old file computed, and the acceptance programs of `models/` compile
//! to graphs whose shared layers have one set of parameters.

mod common;

use std::collections::HashMap;

use nnc_compiler::ir::interp::{example_inputs, run, Tensor};
use nnc_compiler::ir::{Graph, InputKind, Op, OutputKind};

use common::compile_file;

fn params(g: &Graph) -> Vec<(String, String)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name, kind: InputKind::Param { .. } } => Some((name.clone(), n.ty.to_string())),
            _ => None,
        })
        .collect()
}

fn loss(g: &Graph, inputs: &HashMap<String, Tensor<f64>>) -> f64 {
    let outputs = run(g, inputs).expect("runs");
    let (_, value) = outputs
        .iter()
        .zip(&g.outputs)
        .find(|(_, o)| o.kind == OutputKind::Loss)
        .map(|(v, _)| v)
        .expect("a loss");
    match value {
        Tensor::Float(a) => a.iter().copied().next().expect("a scalar"),
        other => panic!("loss is {other:?}"),
    }
}

/// `map(read, h, axis: 1)` with `read = conv2d(1, kernel: 1)` computes the
/// old file's 1×1×1 `conv3d` over the permuted forecast states: the same
/// loss on the same parameters (the conv3d weight reshaped to 2-D).
#[test]
fn convlstm_with_a_shared_readout_matches_the_conv3d_readout() {
    let new = compile_file("models/bench/convlstm.nn");
    let old = compile_file("tests/fixtures/convlstm_conv3d.nn");
    let (new_g, old_g) = (&new.train_graph, &old.train_graph);
    let new_params = params(new_g);
    assert_eq!(
        new_params.iter().filter(|(n, _)| n.starts_with("read.")).cloned().collect::<Vec<_>>(),
        [
            ("read.weight".to_string(), "f32[1, 32, 1, 1]".to_string()),
            ("read.bias".to_string(), "f32[1]".to_string())
        ]
    );
    // Both have 38,177 parameters, the peer's count.
    let count = |g: &Graph| -> usize {
        g.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Input { kind: InputKind::Param { .. }, .. }))
            .map(|n| n.ty.shape.as_known().expect("known").iter().product::<usize>())
            .sum()
    };
    assert_eq!(count(new_g), 38_177);
    assert_eq!(count(old_g), 38_177);

    let dims = HashMap::from([("B".to_string(), 2)]);
    let old_inputs: HashMap<String, Tensor<f64>> = example_inputs(old_g, &dims, 11).expect("inputs");
    let mut new_inputs: HashMap<String, Tensor<f64>> = HashMap::new();
    for (name, _) in new_params.iter() {
        let from = match name.as_str() {
            "read.weight" => "out.conv3d_1.weight",
            "read.bias" => "out.conv3d_1.bias",
            other => other,
        };
        let value = old_inputs.get(from).unwrap_or_else(|| panic!("no old parameter {from}")).clone();
        let value = match value {
            Tensor::Float(a) if name == "read.weight" => {
                Tensor::Float(a.into_shape_with_order(ndarray::IxDyn(&[1, 32, 1, 1])).expect("reshape"))
            }
            other => other,
        };
        new_inputs.insert(name.clone(), value);
    }
    for input in ["x", "y"] {
        new_inputs.insert(input.into(), old_inputs[input].clone());
    }
    let (a, b) = (loss(old_g, &old_inputs), loss(new_g, &new_inputs));
    assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "old loss {a}, new loss {b}");
}

/// The weight-tied model's encoder has one set of parameters for the four
/// frames; the GAN's two networks are the layer values `G` and `D`.
#[test]
fn acceptance_models_share_their_layers() {
    let shared = compile_file("models/storm_shared.nn");
    let names: Vec<String> = params(&shared.train_graph).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("enc.")).count(), 4, "{names:?}");
    assert_eq!(shared.layer_values.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["enc"]);

    let gan = compile_file("models/gan_mnist.nn");
    assert_eq!(gan.losses, ["disc", "gen"]);
    let names: Vec<String> = params(&gan.train_graph).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().all(|n| n.starts_with("G.") || n.starts_with("D.")), "{names:?}");
    // D is applied three times but has one weight per layer.
    assert_eq!(names.iter().filter(|n| n.starts_with("D.") && n.ends_with(".weight")).count(), 3);

    let masked = compile_file("models/sst_ocean_mask.nn");
    assert_eq!(masked.constants.len(), 1);
    assert_eq!(masked.constants[0].ty.to_string(), "f32[18, 30]");
}
