//! The primitive case table shared by the gradient checks and the JIT tests.
//!
//! One small graph per IR primitive (convolutions in 1, 2 and 3 dimensions
//! with stride, padding, dilation and groups, transposed convolutions,
//! pooling, resizing, structural ops, reductions, …) plus a few
//! compositions. Every case is a forward graph in train mode whose float
//! operands are `param` inputs; the op's result `out` is reduced to the loss
//! `reduce_sum(out * w)`, where `w` is a data input of distinct
//! pseudo-random values, so that every output element reaches the loss with
//! its own weight. The autodiff tests compare the gradients of each case with
//! finite differences; the runtime tests compare the compiled graphs (forward
//! and backward) with the reference interpreter.
//!
//! It is a module of both test crates: `compiler/tests/primitive_gradients.rs`
//! and `runtime/tests/primitives.rs`.
//!
//! # Test points
//!
//! Every case comes with values for all its inputs. Parameter values are
//! drawn from the counter-based generator and shaped per case so that no
//! finite-difference interval (radius `h ≤ 1.5e-4`) reaches a kink: `abs`,
//! `sign` and the `x > 0` of a ReLU see values with `|x| ≥ 0.2`; `log` and
//! `sqrt` values in `[0.5, 1.5]`; operands of `max`, `min`, `reduce_max`,
//! `maxpool` and `argmax` are a shuffled grid shared by all such operands of
//! a case, so every two values differ by at least `2/n` (`n` ≤ 200
//! elements); `cast` to i32 sees values inside `(1, 2)` and `(−3, −2)`; the
//! flows of `warp` are whole cells plus a fraction in `[0.2, 0.8]`
//! (bilinear: away from the kinks at whole cells) or in `[−0.35, 0.35]`
//! (nearest: away from the jumps at half cells), reaching a few cells past
//! the grid's edges. Operands of `scatter_max` are the shuffled grid too;
//! the one case with ties makes them between a value and a later copy of
//! it behind `stop_gradient`, which finite differences move together. Data
//! inputs are uniform on `[-1, 1)`, index lists are fixed `constant`
//! inputs, and the RNG key is fixed.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};

use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{
    parse, rng, BinaryOp, Boundary, CmpOp, ConvAttrs, DType, Graph, Init, InputKind, Loc, Mode, Op,
    OutputKind, ParamRole, PoolKind, Shape, Type, UnaryOp, ValueId, WarpAttrs, WarpMode, WindowAttrs,
};

/// One case of the table: a forward graph with a `loss` output and values
/// for every one of its inputs.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name (unique in the table).
    pub name: String,
    /// The forward graph; its `loss` output is `reduce_sum(out * w)`.
    pub graph: Graph,
    /// A value for every input of the graph, by input name.
    pub inputs: HashMap<String, Tensor<f64>>,
}

/// Every case: those built with a [`Builder`], then those written in the IR
/// text format.
pub fn all() -> Vec<Case> {
    let mut cases = built();
    cases.extend(parsed());
    cases
}

/// The cases built with a [`Builder`]: every differentiable primitive, and
/// the non-differentiable ones inside differentiable graphs.
pub fn built() -> Vec<Case> {
    table()
        .into_iter()
        .map(|(name, build)| {
            let mut b = Builder::new(name);
            let out = build(&mut b);
            b.finish(out)
        })
        .collect()
}

/// The cases written in the IR text format (parsed, so they also cover the
/// parser's output).
///
/// # Panics
///
/// If a text in the table does not parse (a defect of the table itself).
pub fn parsed() -> Vec<Case> {
    text_table()
        .into_iter()
        .map(|(name, text, values)| {
            let graph = parse::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let params: Vec<Param> = graph
                .inputs()
                .filter_map(|(_, node)| match &node.op {
                    Op::Input { name: p, kind: InputKind::Param { .. } } => {
                        let v = values.iter().find(|(n, _)| n == p).map_or(Values::Uniform, |(_, v)| *v);
                        Some((p.clone(), node.ty.shape.as_known().expect("text cases have known shapes"), v))
                    }
                    _ => None,
                })
                .collect();
            let inputs = inputs(&graph, &params, &[]);
            Case { name: name.to_string(), graph, inputs }
        })
        .collect()
}

// ---------------------------------------------------------------- test points

/// How a parameter's values are chosen (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Values {
    /// Uniform on [-1, 1).
    Uniform,
    /// `±[0.2, 0.8]`: away from the kinks of abs, sign and ReLU at 0.
    AwayFromZero,
    /// Uniform on `[lo, hi]`.
    Between(f64, f64),
    /// A shuffled grid shared by all `Distinct` operands of a case: no ties
    /// and no value within `0.1` of 0.
    Distinct,
    /// Displacements in grid cells: `k + f` with the integer `k` uniform in
    /// `-reach..=reach` and the fraction `f` uniform on `[lo, hi]`.
    Cells { reach: u32, lo: f64, hi: f64 },
}

/// 64-bit FNV-1a, the generator stream of a named input.
fn stream_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Uniform on [-1, 1) for element `i` of the named input.
fn uniform(name: &str, i: usize) -> f64 {
    2.0 * f64::from(rng::uniform([17, 4], stream_of(name), i as u64)) - 1.0
}

/// A parameter of a case: its name, shape and how its values are chosen.
type Param = (String, Vec<usize>, Values);

/// Values of the parameters of a case, in input order (row-major).
fn param_values(params: &[Param]) -> Vec<Vec<f64>> {
    let distinct_total: usize = params
        .iter()
        .filter(|p| matches!(p.2, Values::Distinct))
        .map(|p| p.1.iter().product::<usize>())
        .sum();
    // A shuffle of 0..distinct_total: sort the ranks by a random key.
    let mut order: Vec<usize> = (0..distinct_total).collect();
    order.sort_by(|&a, &b| uniform("grid", a).total_cmp(&uniform("grid", b)));
    let grid = |k: usize| {
        let v = -1.0 + 2.0 * (k as f64 + 0.5) / distinct_total as f64;
        v + 0.1 * v.signum()
    };
    let mut next_distinct = 0;
    params
        .iter()
        .map(|(name, shape, values)| {
            let n: usize = shape.iter().product();
            (0..n)
                .map(|i| {
                    let u = uniform(name, i);
                    match *values {
                        Values::Uniform => u,
                        Values::AwayFromZero => u.signum() * (0.2 + 0.6 * u.abs()),
                        Values::Between(lo, hi) => lo + (hi - lo) * (u + 1.0) / 2.0,
                        Values::Distinct => {
                            next_distinct += 1;
                            grid(order[next_distinct - 1])
                        }
                        Values::Cells { reach, lo, hi } => {
                            // An independent draw (past the tensor's own counters) for `k`.
                            let choices = f64::from(2 * reach + 1);
                            let k = ((uniform(name, n + i) + 1.0) / 2.0 * choices).floor() - f64::from(reach);
                            k + lo + (hi - lo) * (u + 1.0) / 2.0
                        }
                    }
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------- case builder

/// Builds the forward graph of a case and records how its parameters are valued.
///
/// The building methods panic when the type rules reject a node: the table's
/// graphs are fixed, so that is a defect of the table, which the autodiff
/// tests exercise.
#[derive(Clone, Debug)]
pub struct Builder {
    /// The graph built so far (train mode, named after the case).
    pub graph: Graph,
    params: Vec<Param>,
    /// The values of the `constant` index lists.
    indices: Indices,
}

impl Builder {
    /// An empty case named `name`.
    pub fn new(name: &str) -> Builder {
        Builder { graph: Graph::new(name, Mode::Train), params: vec![], indices: vec![] }
    }

    /// A weight parameter of `shape` whose values are chosen by `values`.
    pub fn param(&mut self, name: &str, shape: &[usize], values: Values) -> ValueId {
        self.params.push((name.to_string(), shape.to_vec(), values));
        let kind = InputKind::Param { role: ParamRole::Weight, init: Init::Uniform { bound: 1.0 } };
        self.graph.input(name, kind, Type::f32(Shape::known(shape)), Loc::NONE)
    }

    /// A data input (uniform values on [-1, 1)).
    pub fn data(&mut self, name: &str, shape: &[usize]) -> ValueId {
        self.graph.input(name, InputKind::Data, Type::f32(Shape::known(shape)), Loc::NONE)
    }

    /// An index list: a `constant` input `i32[values.len()]` holding `values`.
    pub fn index(&mut self, name: &str, values: &[i32]) -> ValueId {
        self.indices.push((name.to_string(), values.to_vec()));
        let ty = Type::new(DType::I32, Shape::known(&[values.len()]));
        self.graph.input(name, InputKind::Const, ty, Loc::NONE)
    }

    /// The RNG key input `rng` (fixed to `[5, 1]`).
    pub fn key(&mut self) -> ValueId {
        self.graph.input("rng", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE)
    }

    /// Adds a node.
    ///
    /// # Panics
    ///
    /// If the type rules reject the node.
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        let text = format!("{op:?}");
        self.graph.add(op, args, Loc::NONE).unwrap_or_else(|e| panic!("{}: {text}: {e}", self.graph.name))
    }

    /// An elementwise unary op.
    pub fn unary(&mut self, u: UnaryOp, x: ValueId) -> ValueId {
        self.op(Op::Unary(u), &[x])
    }

    /// An elementwise binary op on operands of equal shapes.
    pub fn binary(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> ValueId {
        self.op(Op::Binary(b), &[x, y])
    }

    /// A tensor of `shape` filled with `value`.
    pub fn splat(&mut self, value: f64, shape: &[usize]) -> ValueId {
        let c = self.graph.constant(value, DType::F32, Loc::NONE);
        self.op(Op::Broadcast { shape: Shape::known(shape) }, &[c])
    }

    /// `x` broadcast to `shape`.
    pub fn broadcast(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        self.op(Op::Broadcast { shape: Shape::known(shape) }, &[x])
    }

    /// Appends `loss = reduce_sum(out * w)`, gives every node its own
    /// source location (line = index + 1), so that the locations of the
    /// backward nodes can be checked, and chooses the values of the inputs.
    ///
    /// # Panics
    ///
    /// If `out` has a symbolic dimension.
    pub fn finish(mut self, out: ValueId) -> Case {
        let shape = self.graph.ty(out).shape.as_known().expect("case shapes are known");
        let w = self.data("w", &shape);
        let weighted = self.binary(BinaryOp::Mul, out, w);
        let axes: Vec<usize> = (0..shape.len()).collect();
        let loss = if axes.is_empty() { weighted } else { self.op(Op::ReduceSum { axes }, &[weighted]) };
        self.graph.output(OutputKind::Loss, "loss", loss);
        for (i, node) in self.graph.nodes.iter_mut().enumerate() {
            let line = i as u32 + 1;
            node.loc = Loc { line, col: 1, end_line: line, end_col: 9 };
        }
        let inputs = inputs(&self.graph, &self.params, &self.indices);
        Case { name: self.graph.name.clone(), graph: self.graph, inputs }
    }
}

fn conv(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> Op {
    Op::Conv(conv_attrs(stride, padding, dilation, groups))
}

fn conv_attrs(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> ConvAttrs {
    ConvAttrs { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
}

fn conv_t(
    stride: &[usize],
    padding: &[(usize, usize)],
    output_padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Op {
    Op::ConvTranspose {
        conv: conv_attrs(stride, padding, dilation, groups),
        output_padding: output_padding.to_vec(),
    }
}

fn pool(kind: PoolKind, window: &[usize], stride: &[usize], padding: &[(usize, usize)]) -> Op {
    Op::Pool(WindowAttrs {
        kind,
        window: window.to_vec(),
        stride: stride.to_vec(),
        padding: padding.to_vec(),
    })
}

// ---------------------------------------------------------------- the cases

type Build = fn(&mut Builder) -> ValueId;

/// `lstm(x, w, h0, c0)` of batch 2, 4 steps, 5 input features, hidden
/// size 3 (the weight `[12, 5 + 3 + 1]`). The loss weighs every lane of the
/// result, the step operands `[x_t, h_prev, 1]` included.
fn lstm_case(b: &mut Builder, reverse: bool) -> ValueId {
    let x = b.param("x", &[4, 2, 5], Values::Uniform);
    let w = b.param("w_lstm", &[12, 9], Values::Uniform);
    let h0 = b.param("h0", &[2, 3], Values::Uniform);
    let c0 = b.param("c0", &[2, 3], Values::Uniform);
    b.op(Op::Lstm { reverse }, &[x, w, h0, c0])
}

/// `warp` of an image `x: [2, 3, 5, 7]` along a flow `[2, 2, 5, 7]` of up to
/// `reach` whole cells plus a fraction away from the mode's kinks.
fn warp_case(b: &mut Builder, mode: WarpMode, boundary: Boundary, reach: u32) -> ValueId {
    let (lo, hi) = match mode {
        WarpMode::Bilinear => (0.2, 0.8),
        WarpMode::Nearest => (-0.35, 0.35),
    };
    let x = b.param("x", &[2, 3, 5, 7], Values::Uniform);
    let flow = b.param("flow", &[2, 2, 5, 7], Values::Cells { reach, lo, hi });
    b.op(Op::Warp(WarpAttrs { mode, boundary }), &[x, flow])
}

/// One unary op on a `[3, 4]` parameter with the given values.
fn unary_case(b: &mut Builder, u: UnaryOp, values: Values) -> ValueId {
    let x = b.param("x", &[3, 4], values);
    b.unary(u, x)
}

/// One binary op on two `[3, 4]` parameters.
fn binary_case(b: &mut Builder, op: BinaryOp, vx: Values, vy: Values) -> ValueId {
    let x = b.param("x", &[3, 4], vx);
    let y = b.param("y", &[3, 4], vy);
    b.binary(op, x, y)
}

/// `(name, build)`: every differentiable primitive, and the non-differentiable
/// ones inside differentiable graphs.
fn table() -> Vec<(&'static str, Build)> {
    use BinaryOp as B;
    use UnaryOp as U;
    use Values::{AwayFromZero, Between, Distinct, Uniform};
    vec![
        // Elementwise unary.
        ("neg", |b| unary_case(b, U::Neg, Uniform)),
        ("exp", |b| unary_case(b, U::Exp, Uniform)),
        ("log", |b| unary_case(b, U::Log, Between(0.5, 1.5))),
        ("sqrt", |b| unary_case(b, U::Sqrt, Between(0.5, 1.5))),
        ("abs", |b| unary_case(b, U::Abs, AwayFromZero)),
        ("sign", |b| unary_case(b, U::Sign, AwayFromZero)),
        ("tanh", |b| unary_case(b, U::Tanh, Uniform)),
        ("sigmoid", |b| unary_case(b, U::Sigmoid, Uniform)),
        ("erf", |b| unary_case(b, U::Erf, Uniform)),
        // Several periods, both signs.
        ("sin", |b| unary_case(b, U::Sin, Between(-7.0, 7.0))),
        ("cos", |b| unary_case(b, U::Cos, Between(-7.0, 7.0))),
        // Both tails and the minimum of gelu (near x = -0.75).
        ("gelu", |b| unary_case(b, U::Gelu, Between(-4.0, 4.0))),
        ("gelu_grad", |b| unary_case(b, U::GeluGrad, Between(-4.0, 4.0))),
        // Rows of the last axis, in a rank-3 tensor.
        ("softmax", |b| {
            let x = b.param("x", &[2, 3, 5], Between(-3.0, 3.0));
            b.op(Op::Softmax, &[x])
        }),
        // Rows of the last axis; eps large enough to matter.
        ("standardize", |b| {
            let x = b.param("x", &[2, 3, 5], Between(-3.0, 3.0));
            b.op(Op::Standardize { eps: 0.1 }, &[x])
        }),
        // Elementwise binary.
        ("add", |b| binary_case(b, B::Add, Uniform, Uniform)),
        ("sub", |b| binary_case(b, B::Sub, Uniform, Uniform)),
        ("mul", |b| binary_case(b, B::Mul, Uniform, Uniform)),
        ("div", |b| binary_case(b, B::Div, Uniform, AwayFromZero)),
        ("max", |b| binary_case(b, B::Max, Distinct, Distinct)),
        ("min", |b| binary_case(b, B::Min, Distinct, Distinct)),
        ("mul_same_operand", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            b.binary(B::Mul, x, x)
        }),
        // Select: the gradient flows to the chosen branch only.
        ("select_on_data", |b| {
            let c = b.data("c", &[3, 4]);
            let zero = b.splat(0.0, &[3, 4]);
            let cond = b.op(Op::Compare(CmpOp::Gt), &[c, zero]);
            let x = b.param("x", &[3, 4], Uniform);
            let y = b.param("y", &[3, 4], Uniform);
            b.op(Op::Select, &[cond, x, y])
        }),
        ("select_on_params", |b| {
            let x = b.param("x", &[3, 4], Distinct);
            let y = b.param("y", &[3, 4], Distinct);
            let cond = b.op(Op::Compare(CmpOp::Lt), &[x, y]);
            let ex = b.unary(U::Exp, x);
            let ty = b.unary(U::Tanh, y);
            b.op(Op::Select, &[cond, ex, ty])
        }),
        // Broadcast patterns.
        ("broadcast_scalar", |b| {
            let x = b.param("x", &[], Uniform);
            b.broadcast(x, &[3, 4])
        }),
        ("broadcast_row", |b| {
            let x = b.param("x", &[4], Uniform);
            b.broadcast(x, &[2, 4])
        }),
        ("broadcast_column", |b| {
            let x = b.param("x", &[3, 1], Uniform);
            b.broadcast(x, &[3, 5])
        }),
        ("broadcast_rank_adding", |b| {
            let x = b.param("x", &[3, 1], Uniform);
            b.broadcast(x, &[2, 3, 4])
        }),
        ("broadcast_identity", |b| {
            let x = b.param("x", &[2, 3], Uniform);
            b.broadcast(x, &[2, 3])
        }),
        // Structural.
        ("reshape", |b| {
            let x = b.param("x", &[2, 3, 4], Uniform);
            b.op(Op::Reshape { shape: Shape::known(&[6, 4]) }, &[x])
        }),
        ("reshape_to_scalar", |b| {
            let x = b.param("x", &[1, 1], Uniform);
            b.op(Op::Reshape { shape: Shape::scalar() }, &[x])
        }),
        ("permute", |b| {
            let x = b.param("x", &[2, 3, 4], Uniform);
            b.op(Op::Permute { axes: vec![2, 0, 1] }, &[x])
        }),
        ("slice", |b| {
            let x = b.param("x", &[4, 5], Uniform);
            b.op(Op::Slice { axis: 1, start: 1, end: 4 }, &[x])
        }),
        ("pad", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            b.op(Op::Pad { axis: 0, lo: 1, hi: 2 }, &[x])
        }),
        ("concat_2", |b| {
            let x = b.param("x", &[2, 3], Uniform);
            let y = b.param("y", &[4, 3], Uniform);
            b.op(Op::Concat { axis: 0 }, &[x, y])
        }),
        ("concat_3", |b| {
            let x = b.param("x", &[2, 1], Uniform);
            let y = b.param("y", &[2, 3], Uniform);
            let z = b.param("z", &[2, 2], Uniform);
            b.op(Op::Concat { axis: 1 }, &[x, y, z])
        }),
        ("concat_same_operand", |b| {
            let x = b.param("x", &[2, 3], Uniform);
            b.op(Op::Concat { axis: 1 }, &[x, x])
        }),
        // Reductions.
        ("reduce_sum_middle", |b| {
            let x = b.param("x", &[3, 4, 5], Uniform);
            b.op(Op::ReduceSum { axes: vec![1] }, &[x])
        }),
        ("reduce_sum_outer", |b| {
            let x = b.param("x", &[3, 4, 5], Uniform);
            b.op(Op::ReduceSum { axes: vec![0, 2] }, &[x])
        }),
        ("reduce_sum_all", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            b.op(Op::ReduceSum { axes: vec![0, 1] }, &[x])
        }),
        ("reduce_max_last", |b| {
            let x = b.param("x", &[3, 4], Distinct);
            b.op(Op::ReduceMax { axes: vec![1] }, &[x])
        }),
        ("reduce_max_outer", |b| {
            let x = b.param("x", &[2, 3, 4], Distinct);
            b.op(Op::ReduceMax { axes: vec![0, 2] }, &[x])
        }),
        // Matrix products.
        ("matmul_2d", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            let y = b.param("y", &[4, 5], Uniform);
            b.op(Op::MatMul, &[x, y])
        }),
        ("matmul_batched", |b| {
            let x = b.param("x", &[2, 3, 4], Uniform);
            let y = b.param("y", &[2, 4, 2], Uniform);
            b.op(Op::MatMul, &[x, y])
        }),
        // Products summed over the batch: contiguous operands (A's batches
        // do not continue each other along K, so the runtime copies A), A
        // read transposed (its batches continue: one product of depth
        // 3·5), and two batch axes.
        ("matmul_sum", |b| {
            let x = b.param("x", &[3, 4, 5], Uniform);
            let y = b.param("y", &[3, 5, 6], Uniform);
            b.op(Op::MatMulSum, &[x, y])
        }),
        ("matmul_sum_transposed", |b| {
            let x = b.param("x", &[3, 5, 4], Uniform);
            let xt = b.op(Op::Permute { axes: vec![0, 2, 1] }, &[x]);
            let y = b.param("y", &[3, 5, 6], Uniform);
            b.op(Op::MatMulSum, &[xt, y])
        }),
        ("matmul_sum_two_batch_axes", |b| {
            let x = b.param("x", &[2, 3, 2, 4], Uniform);
            let y = b.param("y", &[2, 3, 4, 3], Uniform);
            b.op(Op::MatMulSum, &[x, y])
        }),
        // Convolutions.
        ("conv_1d", |b| {
            let x = b.param("x", &[2, 3, 7], Uniform);
            let w = b.param("w_conv", &[4, 3, 3], Uniform);
            b.op(conv(&[1], &[(1, 1)], &[1], 1), &[x, w])
        }),
        ("conv_2d_stride_asymmetric_padding", |b| {
            let x = b.param("x", &[1, 2, 5, 6], Uniform);
            let w = b.param("w_conv", &[3, 2, 3, 2], Uniform);
            b.op(conv(&[2, 2], &[(1, 0), (0, 2)], &[1, 1], 1), &[x, w])
        }),
        ("conv_2d_dilation", |b| {
            let x = b.param("x", &[1, 2, 7, 6], Uniform);
            let w = b.param("w_conv", &[2, 2, 3, 2], Uniform);
            b.op(conv(&[1, 1], &[(2, 2), (1, 0)], &[2, 3], 1), &[x, w])
        }),
        ("conv_2d_groups", |b| {
            let x = b.param("x", &[2, 4, 5, 5], Uniform);
            let w = b.param("w_conv", &[6, 2, 3, 3], Uniform);
            b.op(conv(&[1, 2], &[(1, 1), (1, 1)], &[1, 1], 2), &[x, w])
        }),
        ("conv_3d", |b| {
            let x = b.param("x", &[1, 1, 3, 4, 4], Uniform);
            let w = b.param("w_conv", &[2, 1, 2, 2, 2], Uniform);
            b.op(conv(&[1, 2, 1], &[(0, 1), (1, 0), (0, 0)], &[1, 1, 2], 1), &[x, w])
        }),
        // Rows of 100 output positions: the compiled convolution runs in
        // tiles of two output rows, the last one short.
        ("conv_2d_tiles", |b| {
            let x = b.param("x", &[1, 2, 6, 100], Uniform);
            let w = b.param("w_conv", &[2, 2, 3, 3], Uniform);
            b.op(conv(&[2, 1], &[(1, 1), (1, 1)], &[1, 1], 1), &[x, w])
        }),
        ("conv_transpose_2d_tiles", |b| {
            let x = b.param("x", &[1, 2, 3, 100], Uniform);
            let w = b.param("w_conv", &[2, 1, 3, 3], Uniform);
            b.op(conv_t(&[2, 1], &[(1, 1), (1, 1)], &[1, 0], &[1, 1], 1), &[x, w])
        }),
        ("conv_transpose_1d", |b| {
            let x = b.param("x", &[1, 2, 4], Uniform);
            let w = b.param("w_conv", &[2, 3, 3], Uniform);
            b.op(conv_t(&[2], &[(1, 1)], &[1], &[1], 1), &[x, w])
        }),
        ("conv_transpose_2d", |b| {
            let x = b.param("x", &[2, 2, 3, 3], Uniform);
            let w = b.param("w_conv", &[2, 3, 2, 2], Uniform);
            b.op(conv_t(&[2, 2], &[(0, 0), (0, 0)], &[0, 0], &[1, 1], 1), &[x, w])
        }),
        ("conv_transpose_2d_groups_padding", |b| {
            let x = b.param("x", &[1, 4, 3, 3], Uniform);
            let w = b.param("w_conv", &[4, 1, 3, 2], Uniform);
            b.op(conv_t(&[2, 3], &[(1, 0), (0, 1)], &[1, 2], &[1, 1], 2), &[x, w])
        }),
        ("conv_transpose_2d_dilation", |b| {
            let x = b.param("x", &[1, 2, 3, 4], Uniform);
            let w = b.param("w_conv", &[2, 2, 2, 3], Uniform);
            b.op(conv_t(&[1, 2], &[(0, 1), (1, 1)], &[0, 0], &[2, 2], 1), &[x, w])
        }),
        // Output padding of at least the stride (allowed when the dilation is larger).
        ("conv_transpose_2d_output_padding_beyond_stride", |b| {
            let x = b.param("x", &[1, 2, 3, 3], Uniform);
            let w = b.param("w_conv", &[2, 1, 2, 2], Uniform);
            b.op(conv_t(&[1, 1], &[(0, 0), (0, 0)], &[1, 0], &[2, 1], 1), &[x, w])
        }),
        // Pooling.
        ("maxpool_2d_padding", |b| {
            let x = b.param("x", &[1, 2, 5, 5], Distinct);
            b.op(pool(PoolKind::Max, &[3, 3], &[2, 2], &[(1, 1), (1, 1)]), &[x])
        }),
        ("maxpool_1d", |b| {
            let x = b.param("x", &[2, 3, 8], Distinct);
            b.op(pool(PoolKind::Max, &[2], &[2], &[(0, 0)]), &[x])
        }),
        ("maxpool_2d_overlapping_asymmetric", |b| {
            let x = b.param("x", &[2, 1, 4, 5], Distinct);
            b.op(pool(PoolKind::Max, &[2, 3], &[1, 2], &[(1, 0), (0, 1)]), &[x])
        }),
        ("avgpool_2d_padding", |b| {
            let x = b.param("x", &[1, 2, 5, 5], Uniform);
            b.op(pool(PoolKind::Avg, &[3, 3], &[2, 2], &[(1, 1), (1, 1)]), &[x])
        }),
        ("avgpool_2d_overlapping_asymmetric", |b| {
            let x = b.param("x", &[2, 1, 4, 5], Uniform);
            b.op(pool(PoolKind::Avg, &[2, 3], &[1, 2], &[(1, 0), (0, 1)]), &[x])
        }),
        // Resampling.
        ("resize_up_2d", |b| {
            let x = b.param("x", &[1, 2, 3, 4], Uniform);
            b.op(Op::Resize { size: vec![6, 7] }, &[x])
        }),
        ("resize_down_2d", |b| {
            let x = b.param("x", &[1, 1, 6, 5], Uniform);
            b.op(Op::Resize { size: vec![3, 2] }, &[x])
        }),
        ("resize_1d", |b| {
            let x = b.param("x", &[2, 2, 5], Uniform);
            b.op(Op::Resize { size: vec![8] }, &[x])
        }),
        // Warping: every mode and boundary, odd sizes, flows past the edges.
        ("warp_bilinear_zeros", |b| warp_case(b, WarpMode::Bilinear, Boundary::Zeros, 3)),
        ("warp_bilinear_edge", |b| warp_case(b, WarpMode::Bilinear, Boundary::Edge, 3)),
        ("warp_bilinear_circular", |b| warp_case(b, WarpMode::Bilinear, Boundary::Circular, 9)),
        ("warp_nearest_zeros", |b| warp_case(b, WarpMode::Nearest, Boundary::Zeros, 3)),
        ("warp_nearest_edge", |b| warp_case(b, WarpMode::Nearest, Boundary::Edge, 3)),
        ("warp_nearest_circular", |b| warp_case(b, WarpMode::Nearest, Boundary::Circular, 9)),
        // The same image advected twice, the second flow computed from the first.
        ("warp_twice", |b| {
            let x = b.param("x", &[1, 2, 4, 6], Uniform);
            let flow = b.param("flow", &[1, 2, 4, 6], Values::Cells { reach: 1, lo: 0.2, hi: 0.45 });
            let bilinear = WarpAttrs { mode: WarpMode::Bilinear, boundary: Boundary::Edge };
            let once = b.op(Op::Warp(bilinear), &[x, flow]);
            let half = b.splat(0.5, &[1, 2, 4, 6]);
            let half_flow = b.binary(B::Mul, flow, half);
            b.op(Op::Warp(bilinear), &[once, half_flow])
        }),
        // The fused LSTM recurrence, both directions, hidden size 3 over 4
        // steps from non-zero states; the loss weighs every lane of the
        // result (gates and cell states too).
        ("lstm", |b| lstm_case(b, false)),
        ("lstm_reverse", |b| lstm_case(b, true)),
        // Gather and scatter: axis 0, a middle axis and the last one, odd
        // sizes, repeated indices, indices out of range (negative and too
        // large), positions that receive nothing.
        ("gather_first_axis", |b| {
            let x = b.param("x", &[5, 3], Uniform);
            let index = b.index("index", &[4, 0, 4, 2]);
            b.op(Op::Gather { axis: 0 }, &[x, index])
        }),
        ("gather_middle_axis_out_of_range", |b| {
            let x = b.param("x", &[2, 5, 3], Uniform);
            let index = b.index("index", &[1, -1, 3, 1, 5, 0]);
            b.op(Op::Gather { axis: 1 }, &[x, index])
        }),
        ("gather_last_axis", |b| {
            let x = b.param("x", &[3, 7], Uniform);
            let index = b.index("index", &[6, 6, 0, 3, 9]);
            b.op(Op::Gather { axis: 1 }, &[x, index])
        }),
        ("scatter_sum_first_axis", |b| {
            let x = b.param("x", &[5, 3], Uniform);
            let index = b.index("index", &[2, 0, 2, -1, 3]);
            b.op(Op::ScatterSum { axis: 0, size: 4 }, &[x, index])
        }),
        ("scatter_sum_middle_axis", |b| {
            let x = b.param("x", &[2, 6, 3], Uniform);
            let index = b.index("index", &[0, 2, 2, 7, 1, 0]);
            b.op(Op::ScatterSum { axis: 1, size: 3 }, &[x, index])
        }),
        ("scatter_sum_last_axis", |b| {
            let x = b.param("x", &[3, 5], Uniform);
            let index = b.index("index", &[1, 1, 1, 0, 4]);
            b.op(Op::ScatterSum { axis: 1, size: 3 }, &[x, index])
        }),
        ("scatter_max_first_axis", |b| {
            let x = b.param("x", &[5, 3], Distinct);
            let index = b.index("index", &[1, 0, 1, 1, 3]);
            b.op(Op::ScatterMax { axis: 0, size: 3 }, &[x, index])
        }),
        // Ties: every value of `p` meets its own copy, which comes later
        // and passes no gradient, so the first-position rule gives the whole
        // gradient to `p` — what finite differences see, as both copies move
        // together. `q` competes with them; one copy is dropped.
        ("scatter_max_ties_last_axis", |b| {
            let p = b.param("p", &[2, 3], Distinct);
            let q = b.param("q", &[2, 2], Distinct);
            let copy = b.op(Op::StopGradient, &[p]);
            let x = b.op(Op::Concat { axis: 1 }, &[p, copy, q]);
            let index = b.index("index", &[0, 1, 2, 0, 1, -2, 3, 0]);
            b.op(Op::ScatterMax { axis: 1, size: 5 }, &[x, index])
        }),
        ("gather_of_scatter_sum", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            let index = b.index("index", &[3, 1, 3, -4]);
            let s = b.op(Op::ScatterSum { axis: 1, size: 5 }, &[x, index]);
            let back = b.index("back", &[4, 3, 3, 0, 2, 1]);
            let g = b.op(Op::Gather { axis: 1 }, &[s, back]);
            b.unary(U::Tanh, g)
        }),
        // stop_gradient of a mask's argument: the mask is piecewise constant.
        ("stop_gradient_mask", |b| {
            let x = b.param("x", &[3, 4], AwayFromZero);
            let frozen = b.op(Op::StopGradient, &[x]);
            let zero = b.splat(0.0, &[3, 4]);
            let positive = b.op(Op::Compare(CmpOp::Gt), &[frozen, zero]);
            let mask = b.op(Op::Cast { to: DType::F32 }, &[positive]);
            b.binary(B::Mul, x, mask)
        }),
        // Against a constant, `max` and `min` take their mask of the result.
        ("relu", |b| {
            let x = b.param("x", &[3, 4], AwayFromZero);
            let zero = b.splat(0.0, &[3, 4]);
            b.binary(B::Max, x, zero)
        }),
        ("min_with_constant", |b| {
            let x = b.param("x", &[3, 4], AwayFromZero);
            let cap = b.splat(0.25, &[3, 4]);
            b.binary(B::Min, x, cap)
        }),
        // Non-differentiable ops inside differentiable graphs.
        ("relu_by_compare_and_cast", |b| {
            let x = b.param("x", &[3, 4], AwayFromZero);
            let zero = b.splat(0.0, &[3, 4]);
            let positive = b.op(Op::Compare(CmpOp::Gt), &[x, zero]);
            let mask = b.op(Op::Cast { to: DType::F32 }, &[positive]);
            b.binary(B::Mul, x, mask)
        }),
        ("relu_by_select", |b| {
            let x = b.param("x", &[3, 4], AwayFromZero);
            let zero = b.splat(0.0, &[3, 4]);
            let positive = b.op(Op::Compare(CmpOp::Ge), &[x, zero]);
            b.op(Op::Select, &[positive, x, zero])
        }),
        ("argmax_one_hot", |b| {
            let x = b.param("x", &[3, 5], Distinct);
            let index = b.op(Op::ArgMax { axis: 1 }, &[x]);
            let one_hot = b.op(Op::OneHot { classes: 5 }, &[index]);
            b.binary(B::Mul, x, one_hot)
        }),
        ("argmax_cast", |b| {
            let x = b.param("x", &[3, 5], Distinct);
            let index = b.op(Op::ArgMax { axis: 1 }, &[x]);
            let index = b.op(Op::Cast { to: DType::F32 }, &[index]);
            let index = b.broadcast(index, &[5, 3]);
            let index = b.op(Op::Permute { axes: vec![1, 0] }, &[index]);
            b.binary(B::Mul, x, index)
        }),
        ("size", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            let n = b.op(Op::Size { axes: vec![0, 1] }, &[x]);
            let n = b.broadcast(n, &[3, 4]);
            b.binary(B::Div, x, n)
        }),
        ("cast_round_trip", |b| {
            let x = b.param("x", &[2, 3], Between(1.2, 1.8));
            let y = b.param("y", &[2, 3], Between(-2.8, -2.2));
            let t = b.op(Op::Cast { to: DType::I32 }, &[y]);
            let t = b.op(Op::Cast { to: DType::F32 }, &[t]);
            let s = b.op(Op::Cast { to: DType::I32 }, &[x]);
            let s = b.op(Op::Cast { to: DType::F32 }, &[s]);
            let xt = b.binary(B::Mul, x, t);
            let ys = b.binary(B::Mul, y, s);
            b.binary(B::Add, xt, ys)
        }),
        ("rng_uniform", |b| {
            let key = b.key();
            let x = b.param("x", &[3, 4], Uniform);
            let u = b.op(Op::RngUniform { shape: Shape::known(&[3, 4]), stream: 3 }, &[key]);
            b.binary(B::Mul, x, u)
        }),
        ("param_only_in_comparison", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            let t = b.param("t", &[3, 4], AwayFromZero);
            let zero = b.splat(0.0, &[3, 4]);
            let on = b.op(Op::Compare(CmpOp::Le), &[t, zero]);
            let on = b.op(Op::Cast { to: DType::F32 }, &[on]);
            b.binary(B::Mul, x, on)
        }),
        ("unused_param", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            b.param("unused", &[2], Uniform);
            b.unary(U::Tanh, x)
        }),
        // Compositions: fan-out, chains, constants.
        ("dense_tanh_chain", |b| {
            let x = b.data("in", &[2, 3]);
            let w = b.param("weight", &[4, 3], Uniform);
            let bias = b.param("bias", &[4], Uniform);
            let wt = b.op(Op::Permute { axes: vec![1, 0] }, &[w]);
            let y = b.op(Op::MatMul, &[x, wt]);
            let bb = b.broadcast(bias, &[2, 4]);
            let y = b.binary(B::Add, y, bb);
            let y = b.unary(U::Tanh, y);
            let ys = b.unary(U::Sigmoid, y);
            b.binary(B::Mul, y, ys)
        }),
        ("softmax", |b| {
            let x = b.param("x", &[2, 5], Uniform);
            let m = b.op(Op::ReduceMax { axes: vec![1] }, &[x]);
            let m = b.broadcast(m, &[5, 2]);
            let m = b.op(Op::Permute { axes: vec![1, 0] }, &[m]);
            let e = b.binary(B::Sub, x, m);
            let e = b.unary(U::Exp, e);
            let s = b.op(Op::ReduceSum { axes: vec![1] }, &[e]);
            let s = b.broadcast(s, &[5, 2]);
            let s = b.op(Op::Permute { axes: vec![1, 0] }, &[s]);
            b.binary(B::Div, e, s)
        }),
        ("constant_scale", |b| {
            let x = b.param("x", &[3, 4], Uniform);
            let c = b.splat(2.5, &[3, 4]);
            let y = b.binary(B::Mul, c, x);
            let y = b.binary(B::Sub, c, y);
            b.binary(B::Div, y, c)
        }),
    ]
}

/// A case in the text format: name, IR text, values of the named parameters
/// (the others are [`Values::Uniform`]).
type TextCase = (&'static str, &'static str, Vec<(&'static str, Values)>);

/// The cases written in the IR text format.
fn text_table() -> Vec<TextCase> {
    vec![
        (
            "text_tanh",
            r#"
graph t mode=train {
  %0: f32[3, 4] = param "a" role=weight init=uniform(bound=1.0)     @1:1-1:9
  %1: f32[3, 4] = input "w"                                         @2:1-2:9
  %2: f32[3, 4] = tanh %0                                           @3:1-3:9
  %3: f32[3, 4] = mul %2, %1                                        @4:1-4:9
  %4: f32[] = reduce_sum %3 axes=[0, 1]                             @5:1-5:9
  loss "loss" = %4
}
"#,
            vec![("a", Values::Uniform)],
        ),
        (
            "text_conv_sigmoid_maxpool",
            r#"
graph t mode=train {
  %0: f32[1, 2, 6, 6] = param "x" role=weight init=uniform(bound=1.0)    @1:1-1:9
  %1: f32[3, 2, 3, 3] = param "k" role=weight init=uniform(bound=1.0)    @2:1-2:9
  %2: f32[3] = param "bias" role=bias init=uniform(bound=1.0)            @3:1-3:9
  %3: f32[1, 3, 3, 3] = input "w"                                        @4:1-4:9
  %4: f32[1, 3, 6, 6] = conv %0, %1 stride=[1, 1] padding=[(1, 1), (1, 1)] dilation=[1, 1] groups=1 @5:1-5:9
  %5: f32[3, 1, 1] = reshape %2 shape=[3, 1, 1]                           @6:1-6:9
  %6: f32[1, 3, 6, 6] = broadcast %5 shape=[1, 3, 6, 6]                   @7:1-7:9
  %7: f32[1, 3, 6, 6] = add %4, %6                                        @8:1-8:9
  %8: f32[1, 3, 6, 6] = sigmoid %7                                       @9:1-9:9
  %9: f32[1, 3, 3, 3] = maxpool %8 window=[2, 2] stride=[2, 2] padding=[(0, 0), (0, 0)] @10:1-10:9
  %10: f32[1, 3, 3, 3] = mul %9, %3                                       @11:1-11:9
  %11: f32[] = reduce_sum %10 axes=[0, 1, 2, 3]                           @12:1-12:9
  loss "loss" = %11
}
"#,
            vec![("x", Values::Uniform), ("k", Values::Uniform), ("bias", Values::Uniform)],
        ),
    ]
}

// ---------------------------------------------------------------- input values

/// The values of a case's `constant` index lists, by name.
type Indices = Vec<(String, Vec<i32>)>;

/// Inputs of a case: parameters from their [`Values`], index lists as
/// given, data uniform, the key fixed.
fn inputs(graph: &Graph, params: &[Param], indices: &[(String, Vec<i32>)]) -> HashMap<String, Tensor<f64>> {
    let values = param_values(params);
    let mut out = HashMap::new();
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let shape = node.ty.shape.as_known().expect("case shapes are known");
        let n: usize = shape.iter().product();
        let tensor = match kind {
            InputKind::Param { .. } => {
                let i = params.iter().position(|p| &p.0 == name).expect("every parameter has values");
                Tensor::from_f64(&shape, &values[i])
            }
            InputKind::Key => {
                Ok(Tensor::Int(ArrayD::from_shape_vec(IxDyn(&[2]), vec![5, 1]).expect("two key words")))
            }
            InputKind::Const => {
                let (_, values) =
                    indices.iter().find(|(n, _)| n == name).expect("every index list has values");
                Ok(Tensor::Int(
                    ArrayD::from_shape_vec(IxDyn(&shape), values.clone()).expect("the list's length"),
                ))
            }
            _ => Tensor::from_f64(&shape, &(0..n).map(|i| uniform(name, i)).collect::<Vec<_>>()),
        }
        .expect("values fill the shape");
        out.insert(name.clone(), tensor);
    }
    out
}
