//! Warping at a size the plan splits across threads: the forward and
//! backward graphs of `warp` for every mode and boundary give the same bits
//! with 1, 2 and 4 threads (the scatter of `warp_grad_input` keeps every
//! plane with one thread and adds in a fixed order), checked or not, and
//! agree with the reference interpreter.

use std::collections::HashMap;

use nnc_compiler::autodiff::differentiate;
use nnc_compiler::codegen::lower::Call;
use nnc_compiler::codegen::Checking;
use nnc_compiler::fusion::KernelKind;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{
    rng, BinaryOp, Boundary, Graph, Init, InputKind, Loc, Mode, Op, OutputKind, ParamRole, Shape, Type,
    WarpAttrs, WarpMode,
};
use nnc_runtime::exec::{Executable, Gemm, Options};

/// `[N, C, H, W]`: large enough that the plan splits the warp kernels
/// (each at least two chunks of [`nnc_compiler::plan::MIN_CHUNK_WORK`]).
const SHAPE: [usize; 4] = [4, 4, 64, 64];

/// `loss = reduce_sum(warp(x, flow) * w)` with `x` and `flow` parameters;
/// the warp's result is an output too.
fn graph(attrs: WarpAttrs) -> Graph {
    let [n, c, h, w] = SHAPE;
    let mut g = Graph::new("warp", Mode::Train);
    let param = InputKind::Param { role: ParamRole::Weight, init: Init::Zeros };
    let x = g.input("x", param.clone(), Type::f32(Shape::known(&SHAPE)), Loc::NONE);
    let flow = g.input("flow", param, Type::f32(Shape::known(&[n, 2, h, w])), Loc::NONE);
    let weights = g.input("w", InputKind::Data, Type::f32(Shape::known(&[n, c, h, w])), Loc::NONE);
    let add = |g: &mut Graph, op, args: &[_]| g.add(op, args, Loc::NONE).expect("the graph type-checks");
    let y = add(&mut g, Op::Warp(attrs), &[x, flow]);
    let weighted = add(&mut g, Op::Binary(BinaryOp::Mul), &[y, weights]);
    let loss = add(&mut g, Op::ReduceSum { axes: vec![0, 1, 2, 3] }, &[weighted]);
    g.output(OutputKind::Loss, "loss", loss);
    g.output(OutputKind::Other, "y", y);
    g
}

/// Values uniform on `[lo, hi)` for the named input.
fn values(name: &str, shape: &[usize], lo: f64, hi: f64) -> Tensor<f32> {
    let stream = rng::name_stream(name);
    let n: usize = shape.iter().product();
    let v: Vec<f64> =
        (0..n).map(|i| lo + (hi - lo) * f64::from(rng::uniform([1, 2], stream, i as u64))).collect();
    Tensor::from_f64(shape, &v).expect("values fill the shape")
}

fn inputs() -> HashMap<String, Tensor<f32>> {
    let [n, _, h, w] = SHAPE;
    HashMap::from([
        ("x".to_string(), values("x", &SHAPE, -1.0, 1.0)),
        // Up to 6 cells: taps past every edge.
        ("flow".to_string(), values("flow", &[n, 2, h, w], -6.0, 6.0)),
        ("w".to_string(), values("w", &SHAPE, -1.0, 1.0)),
    ])
}

/// Every output of `graph` run with the options, by name. With several
/// threads, every warp kernel must run as at least two row ranges.
fn run(
    graph: &Graph,
    inputs: &HashMap<String, Tensor<f32>>,
    options: &Options,
) -> HashMap<String, Tensor<f32>> {
    let mut exe = Executable::compile(graph, 1, options).unwrap_or_else(|e| panic!("compile: {e}"));
    let warps = [KernelKind::Warp, KernelKind::WarpGradInput, KernelKind::WarpGradFlow];
    for step in exe.program().steps.iter().filter(|s| warps.contains(&s.kind)) {
        for call in &step.calls {
            if let Call::Window { ranges, .. } = call {
                let want = options.threads.min(2);
                assert!(ranges.len() >= want, "{} runs as {} range(s)", step.name, ranges.len());
            }
        }
    }
    for (name, value) in inputs {
        exe.set_input(name, value).unwrap_or_else(|e| panic!("set_input `{name}`: {e}"));
    }
    exe.run().unwrap_or_else(|e| panic!("run: {e}"));
    exe.outputs().into_iter().map(|(n, _, t)| (n, t)).collect()
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.as_float().expect("a float output").iter().map(|v| v.to_bits()).collect()
}

#[test]
fn warp_is_bit_identical_across_threads_and_matches_the_interpreter() {
    let inputs = inputs();
    for mode in [WarpMode::Bilinear, WarpMode::Nearest] {
        for boundary in [Boundary::Zeros, Boundary::Edge, Boundary::Circular] {
            let label = format!("{mode:?} {boundary:?}");
            let backward = differentiate(&graph(WarpAttrs { mode, boundary }))
                .unwrap_or_else(|e| panic!("{label}: {e}"))
                .graph;
            let options = |threads, checking| Options { threads, checking, gemm: Gemm::Tuned };
            let one = run(&backward, &inputs, &options(1, Checking::Unchecked));
            for (threads, checking) in
                [(2, Checking::Unchecked), (4, Checking::Unchecked), (2, Checking::Checked)]
            {
                let many = run(&backward, &inputs, &options(threads, checking));
                for (name, t) in &one {
                    assert!(
                        bits(t) == bits(&many[name]),
                        "{label}: `{name}` differs with {threads} threads ({checking:?})"
                    );
                }
            }
            let reference = interp::run::<f32>(&backward, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
            // The loss sums 65536 products in another order; the rest agree.
            for (name, want) in reference.iter().filter(|(name, _)| name != "loss") {
                let (want, got) = (want.as_float().expect("float"), one[name].as_float().expect("float"));
                let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let worst = want.iter().zip(got.iter()).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst <= 1e-5 * scale,
                    "{label}: `{name}` differs from the interpreter by {worst:e} (scale {scale:e})"
                );
            }
        }
    }
}
