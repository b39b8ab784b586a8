//! Fusion and the memory plan over the model zoo: every node of the
//! optimised training step and inference graph is placed exactly once,
//! kernels run in a topological order, the fused report and the plan are
//! snapshot-tested, and no two live buffers ever share bytes.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use common::{compile_ok, display_path, for_each_file, nn_files, read, root, stem};
use nnc_compiler::fusion::{self, Partition, Placement};
use nnc_compiler::ir::{Graph, Mode, Op, ValueId};
use nnc_compiler::{pipeline, plan};
use proptest::prelude::*;

fn settings(path: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_input_file(path);
    s.set_description(display_path(path));
    s
}

/// The optimised training steps (one per optimiser; each named by its loss
/// when there are several) and the inference graph of a model.
fn graphs(path: &Path, source: &str) -> (Vec<(Option<String>, Graph)>, Graph) {
    let module = compile_ok(path, source);
    let steps = pipeline::optimized_steps(&module).expect("training steps");
    let several = steps.len() > 1;
    let train = steps.into_iter().map(|s| (several.then_some(s.loss), s.graph)).collect();
    let infer = pipeline::optimized(&module, Mode::Infer).expect("inference graph");
    (train, infer)
}

/// Every graph of a model: its training steps and its inference graph.
fn all_graphs(path: &Path, source: &str) -> Vec<Graph> {
    let (train, infer) = graphs(path, source);
    train.into_iter().map(|(_, g)| g).chain([infer]).collect()
}

/// Every node is a leaf, inline, a view, or in the kernel its placement
/// names; a node in more kernels (recomputed where it is read) is stored by
/// none, and each of them reads its operands or computes them. Kernels read
/// only leaves and earlier kernels.
fn assert_partition_invariants(graph: &Graph, p: &Partition) {
    let name = &graph.name;
    let mut count = vec![0usize; graph.nodes.len()];
    for k in &p.kernels {
        for &v in &k.nodes {
            count[v.index()] += 1;
        }
        assert!(k.nodes.windows(2).all(|w| w[0] < w[1]), "{name}: {} nodes not in definition order", k.name);
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        match p.placement[i] {
            Placement::Kernel(k) => {
                assert!(p.kernels[k].nodes.contains(&v), "{name}: {v} not in its kernel");
                if count[i] > 1 {
                    assert!(
                        p.kernels.iter().all(|kr| !kr.outputs.contains(&v)),
                        "{name}: {v} recomputed and stored"
                    );
                    for kr in p.kernels.iter().filter(|kr| kr.nodes.contains(&v)) {
                        for &a in &node.args {
                            let b = p.base(a);
                            assert!(
                                kr.nodes.contains(&b)
                                    || kr.inputs.contains(&b)
                                    || matches!(p.placement[b.index()], Placement::Inline),
                                "{name}: {} recomputes {v} without its operand {a}",
                                kr.name
                            );
                        }
                    }
                }
            }
            Placement::Leaf => {
                assert!(matches!(node.op, Op::Input { .. }), "{name}: {v} is a leaf but not an input");
                assert_eq!(count[i], 0);
            }
            Placement::Inline => {
                assert!(matches!(node.op, Op::Const { .. } | Op::Size { .. }), "{name}: {v} inline");
                assert_eq!(count[i], 0);
            }
            Placement::View { base } => {
                assert!(
                    matches!(
                        node.op,
                        Op::Broadcast { .. } | Op::Permute { .. } | Op::Reshape { .. } | Op::Slice { .. }
                    ),
                    "{name}: {v} is a view but {}",
                    node.op.mnemonic()
                );
                assert!(!matches!(p.placement[base.index()], Placement::View { .. }), "{name}: base of {v}");
                assert_eq!(count[i], 0);
            }
        }
    }
    for (k, kernel) in p.kernels.iter().enumerate() {
        for &m in &kernel.nodes {
            let node = graph.node(m);
            if matches!(node.op, Op::Size { .. }) {
                continue;
            }
            for &a in &node.args {
                if let Some(j) = p.kernel_of(p.base(a)) {
                    assert!(
                        j <= k,
                        "{name}: {} reads {a} from later kernel {}",
                        kernel.name,
                        p.kernels[j].name
                    );
                }
            }
        }
        for &i in &kernel.inputs {
            assert!(p.kernel_of(i).is_none_or(|j| j < k), "{name}: {} input {i} not earlier", kernel.name);
        }
    }
    for o in &graph.outputs {
        assert!(
            matches!(p.placement[o.value.index()], Placement::Kernel(_) | Placement::Leaf),
            "{name}: output {} is not stored",
            o.name
        );
    }
}

#[test]
fn partitions_cover_every_node_in_topological_order() {
    for_each_file(&nn_files("models"), |path, source| {
        for graph in all_graphs(path, source) {
            let p = fusion::partition(&graph);
            assert_partition_invariants(&graph, &p);
        }
    });
}

#[test]
fn fused_and_plan_snapshots() {
    for_each_file(&nn_files("models"), |path, source| {
        let (steps, _) = graphs(path, source);
        for (loss, train) in steps {
            let planned = pipeline::plan(&train, 4, 2).expect("plan");
            plan::check(&planned).expect("check");
            let fused = fusion::report(&train, &planned.partition);
            let printed = plan::print(&planned);
            // `gan_mnist_disc_fused` for a step of a model with several losses.
            let name = match &loss {
                Some(loss) => format!("{}_{loss}", stem(path)),
                None => stem(path),
            };
            settings(path).bind(|| {
                insta::assert_snapshot!(format!("{name}_fused"), fused);
                insta::assert_snapshot!(format!("{name}_plan"), printed);
            });
        }
    });
}

/// Adam's new moments are read by the parameter's update in the kernel
/// that computes them: with the parameter they are written over their
/// inputs and take no buffer, so a training step neither copies them back
/// nor holds a second copy of the model's state (the benchmark `mlp_wide`:
/// 8.4M parameters, 100 MB copied per step before). Checked on every zoo
/// model trained with Adam or AdamW.
#[test]
fn adam_state_and_parameters_are_updated_in_place() {
    let checked = std::cell::Cell::new(0);
    for_each_file(&nn_files("models"), |path, source| {
        let (steps, _) = graphs(path, source);
        for (_, train) in steps {
            let planned = pipeline::plan(&train, 4, 2).expect("plan");
            let buffered: std::collections::HashSet<ValueId> =
                planned.buffers.iter().map(|b| b.value).collect();
            for o in train
                .outputs
                .iter()
                .filter(|o| o.name.ends_with(".exp_avg") || o.name.ends_with(".exp_avg_sq"))
            {
                let param =
                    o.name.trim_start_matches("optim.").rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                let Some(p) = train.outputs.iter().find(|x| x.name == param) else { continue };
                for v in [o.value, p.value] {
                    let name = &train.outputs.iter().find(|x| x.value == v).expect("an output").name;
                    assert!(
                        planned.in_place.contains_key(&v),
                        "{}: {name} is not updated in place",
                        stem(path)
                    );
                    assert!(!buffered.contains(&v), "{}: {name} has a buffer", stem(path));
                }
                checked.set(checked.get() + 1);
            }
        }
    });
    assert!(checked.get() > 100, "only {} Adam moments in the zoo", checked.get());
}

/// Attention heads joined into the model's channels (`[B, heads, T, d]`
/// permuted to `[B, T, heads, d]` and reshaped to `[B, T, heads·d]`) are
/// written joined by the products computing them, forward and backward:
/// the reshape's copy has nothing left to do and the product no buffer of
/// its own. (tests/jit.rs checks the results against the interpreter.)
#[test]
fn attention_heads_are_written_joined_by_their_products() {
    let path = root().join("models/bench/transformer.nn");
    let (steps, _) = graphs(&path, &read(&path));
    let (_, train) = &steps[0];
    for threads in [1, 2] {
        let planned = pipeline::plan(train, 32, threads).expect("plan");
        // Per layer: the forward's P·V, and the gradients of V, K and Q.
        assert_eq!(planned.in_reshape.len(), 8, "{:?}\n{}", planned.in_reshape, plan::print(&planned));
        for (&product, &reshape) in &planned.in_reshape {
            assert_eq!(train.node(product).op, Op::MatMul, "{product}");
            assert!(matches!(train.node(reshape).op, Op::Reshape { .. }), "{reshape}");
            let holding: Vec<ValueId> = planned
                .buffers
                .iter()
                .filter(|b| b.value == product || b.views.contains(&product))
                .map(|b| b.value)
                .collect();
            assert_eq!(holding, [reshape], "the buffer holding {product}");
        }
        let printed = plan::print(&planned);
        assert_eq!(printed.matches("written in place by its product").count(), 8, "{printed}");
    }
}

/// Every zoo graph (training step and inference).
fn zoo() -> &'static Vec<Graph> {
    static ZOO: OnceLock<Vec<Graph>> = OnceLock::new();
    ZOO.get_or_init(|| nn_files("models").iter().flat_map(|path| all_graphs(path, &read(path))).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn live_buffers_never_share_bytes(which in 0usize..64, batch in 1usize..64, threads in 1usize..=4) {
        let zoo = zoo();
        let graph = &zoo[which % zoo.len()];
        let planned = pipeline::plan(graph, batch, threads).expect("plan");
        prop_assert!(plan::check(&planned).is_ok(), "{:?}", plan::check(&planned));
        let total: usize = planned.buffers.iter().map(|b| b.bytes).sum();
        prop_assert!(planned.peak_bytes <= total);
        for step in &planned.steps {
            prop_assert!(step.split.chunks >= 1 && step.split.chunks <= threads);
            prop_assert!(step.split.chunks <= step.split.extent.max(1));
        }
    }
}
