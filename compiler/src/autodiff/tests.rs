//! Gradient checks of [`differentiate`] for every IR primitive.
//!
//! Each case is a small graph whose float operands are `param` inputs; the
//! op's result `out` is reduced to the loss `reduce_sum(out * w)`, where `w`
//! is a fixed `input` of distinct pseudo-random values, so that every output
//! element reaches the loss with its own weight. The autodiff gradient (the
//! `grad.NAME` outputs of the backward graph, run by the reference
//! interpreter in f64) is compared with finite differences of the loss, in
//! f64, at **every** element of every parameter.
//!
//! # Finite differences
//!
//! `D(h) = (L(p + h·e_i) − L(p − h·e_i)) / 2h` is the central difference;
//! the check uses its Richardson extrapolation `(4·D(h/2) − D(h)) / 3`, which
//! cancels the `h²` error term, with `h = 1e-4 · max(1, |p_i|)`. Its
//! truncation error is `O(h⁴)` (about 1e-16 here) and its rounding error
//! about `ε·|L| / h` (about 1e-12), both far below the tolerance; a plain
//! central difference would need `h ≈ 1e-6` and then loses six digits to
//! rounding.
//!
//! # Error measure
//!
//! For a parameter tensor `T` with autodiff gradient `ad` and finite
//! differences `fd`, every element must satisfy
//! `|ad_i − fd_i| ≤ 1e-6 · s_T` with the scale
//! `s_T = max(max_j |ad_j|, max_j |fd_j|, 1e-3 · G, 1e-12)`, `G` being the
//! largest gradient component of the whole case. So the error is relative
//! to the tensor's own gradient scale; the floors keep a tensor whose true
//! gradient is zero (a parameter that only feeds a comparison) from being
//! held to an absolute error of zero.
//!
//! # Test points
//!
//! Parameter values are drawn from the counter-based generator and shaped
//! per case so that no finite-difference interval (radius `h ≤ 1.5e-4`)
//! reaches a kink: `abs`, `sign` and the `x > 0` of a ReLU see values with
//! `|x| ≥ 0.2`; `log` and `sqrt` values in `[0.5, 1.5]`; operands of `max`,
//! `min`, `reduce_max`, `maxpool` and `argmax` are a shuffled grid shared by
//! all such operands of a case, so every two values differ by at least
//! `2/n` (`n` ≤ 200 elements); `cast` to i32 sees values inside `(1, 2)`
//! and `(−3, −2)`.
//!
//! Besides the numbers, every case checks the structure of the result: the
//! backward graph verifies, starts with the forward graph unchanged, every
//! backward node names its forward node (`grad_of`) and carries that node's
//! location, the outputs are the forward outputs then one `grad.NAME` per
//! parameter, and the printed graph parses back to the same graph.

use std::collections::{BTreeSet, HashMap};

use ndarray::{ArrayD, IxDyn};

use super::differentiate;
use crate::ir::interp::{self, Tensor};
use crate::ir::{
    parse, print, rng, verify, BinaryOp, CmpOp, DType, Graph, Init, InputKind, Loc, Mode, Op, OutputKind,
    ParamRole, PoolKind, Shape, Type, UnaryOp, ValueId,
};

/// Relative tolerance of the gradient check.
const TOLERANCE: f64 = 1e-6;
/// Finite-difference step, relative to `max(1, |p_i|)`.
const STEP: f64 = 1e-4;

// ---------------------------------------------------------------- test points

/// How a parameter's values are chosen (see the module documentation).
#[derive(Clone, Copy, Debug)]
enum Values {
    /// Uniform on [-1, 1).
    Uniform,
    /// `±[0.2, 0.8]`: away from the kinks of abs, sign and ReLU at 0.
    AwayFromZero,
    /// Uniform on `[lo, hi]`.
    Between(f64, f64),
    /// A shuffled grid shared by all `Distinct` operands of a case: no ties
    /// and no value within `0.1` of 0.
    Distinct,
}

/// 64-bit FNV-1a, the generator stream of a named input.
fn stream_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Uniform on [-1, 1) for element `i` of the named input.
fn uniform(name: &str, i: usize) -> f64 {
    2.0 * f64::from(rng::uniform([17, 4], stream_of(name), i as u64)) - 1.0
}

/// Values of the parameters of a case, in input order.
fn param_values(params: &[(String, Vec<usize>, Values)]) -> Vec<Vec<f64>> {
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
                    }
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------- case builder

/// Builds the forward graph of a case and records how its parameters are valued.
struct Builder {
    graph: Graph,
    params: Vec<(String, Vec<usize>, Values)>,
}

impl Builder {
    fn new(name: &str) -> Builder {
        Builder { graph: Graph::new(name, Mode::Train), params: vec![] }
    }

    fn param(&mut self, name: &str, shape: &[usize], values: Values) -> ValueId {
        self.params.push((name.to_string(), shape.to_vec(), values));
        let kind = InputKind::Param { role: ParamRole::Weight, init: Init::Uniform { bound: 1.0 } };
        self.graph.input(name, kind, Type::f32(Shape::known(shape)), Loc::NONE)
    }

    /// A data input (uniform values on [-1, 1)).
    fn data(&mut self, name: &str, shape: &[usize]) -> ValueId {
        self.graph.input(name, InputKind::Data, Type::f32(Shape::known(shape)), Loc::NONE)
    }

    fn key(&mut self) -> ValueId {
        self.graph.input("rng", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE)
    }

    fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        let text = format!("{op:?}");
        self.graph.add(op, args, Loc::NONE).unwrap_or_else(|e| panic!("{}: {text}: {e}", self.graph.name))
    }

    fn unary(&mut self, u: UnaryOp, x: ValueId) -> ValueId {
        self.op(Op::Unary(u), &[x])
    }

    fn binary(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> ValueId {
        self.op(Op::Binary(b), &[x, y])
    }

    /// A tensor of `shape` filled with `value`.
    fn splat(&mut self, value: f64, shape: &[usize]) -> ValueId {
        let c = self.graph.constant(value, DType::F32, Loc::NONE);
        self.op(Op::Broadcast { shape: Shape::known(shape) }, &[c])
    }

    fn broadcast(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        self.op(Op::Broadcast { shape: Shape::known(shape) }, &[x])
    }

    /// Appends `loss = reduce_sum(out * w)` and gives every node its own
    /// source location (line = index + 1), so that the locations of the
    /// backward nodes can be checked.
    fn finish(mut self, out: ValueId) -> (Graph, Vec<(String, Vec<usize>, Values)>) {
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
        (self.graph, self.params)
    }
}

fn conv(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> Op {
    Op::Conv { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
}

fn conv_t(
    stride: &[usize],
    padding: &[(usize, usize)],
    output_padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Op {
    Op::ConvTranspose {
        stride: stride.to_vec(),
        padding: padding.to_vec(),
        output_padding: output_padding.to_vec(),
        dilation: dilation.to_vec(),
        groups,
    }
}

fn pool(kind: PoolKind, window: &[usize], stride: &[usize], padding: &[(usize, usize)]) -> Op {
    Op::Pool { kind, window: window.to_vec(), stride: stride.to_vec(), padding: padding.to_vec() }
}

// ---------------------------------------------------------------- the cases

type Build = fn(&mut Builder) -> ValueId;

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
fn cases() -> Vec<(&'static str, Build)> {
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

/// Cases written in the IR text format (parsed, so they also cover the
/// parser's output): `(name, text, values per parameter name)`.
/// A case in the text format: name, IR text, values of the named parameters.
type TextCase = (&'static str, &'static str, Vec<(&'static str, Values)>);

fn text_cases() -> Vec<TextCase> {
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

// ---------------------------------------------------------------- the check

/// Inputs of a case: parameters from their [`Values`], data uniform, the key fixed.
fn inputs(graph: &Graph, params: &[(String, Vec<usize>, Values)]) -> HashMap<String, Tensor<f64>> {
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
            _ => Tensor::from_f64(&shape, &(0..n).map(|i| uniform(name, i)).collect::<Vec<_>>()),
        }
        .expect("values fill the shape");
        out.insert(name.clone(), tensor);
    }
    out
}

fn loss(graph: &Graph, inputs: &HashMap<String, Tensor<f64>>) -> f64 {
    let out = interp::run::<f64>(graph, inputs).unwrap_or_else(|e| panic!("{}: {e}", graph.name));
    let (_, t) = out.iter().find(|(n, _)| n == "loss").expect("a loss output");
    *t.as_float().and_then(|a| a.iter().next()).expect("a float scalar loss")
}

/// Richardson-extrapolated central difference of the loss in element `i` of
/// parameter `name` (see the module documentation).
fn finite_difference(graph: &Graph, inputs: &HashMap<String, Tensor<f64>>, name: &str, i: usize) -> f64 {
    let mut inputs = inputs.clone();
    let p = inputs[name].as_float().expect("a float parameter").as_slice().expect("standard layout")[i];
    let h = STEP * p.abs().max(1.0);
    let mut at = |x: f64| {
        if let Some(Tensor::Float(a)) = inputs.get_mut(name) {
            a.as_slice_mut().expect("standard layout")[i] = x;
        }
        loss(graph, &inputs)
    };
    let central = |at: &mut dyn FnMut(f64) -> f64, h: f64| (at(p + h) - at(p - h)) / (2.0 * h);
    let d_h = central(&mut at, h);
    let d_half = central(&mut at, h / 2.0);
    (4.0 * d_half - d_h) / 3.0
}

/// The structural checks on the backward graph (see the module
/// documentation). An error means the gradients cannot be checked; the
/// returned list holds the other structural failures.
fn check_structure(name: &str, forward: &Graph) -> Result<(super::Backward, Vec<String>), String> {
    let backward = differentiate(forward).map_err(|e| format!("{name}: differentiate failed: {e}"))?;
    let g = &backward.graph;
    verify::verify(g).map_err(|e| format!("{name}: backward graph does not verify: {}", e.join("; ")))?;
    let n = forward.nodes.len();
    if g.nodes.len() < n || g.nodes[..n] != forward.nodes[..] {
        return Err(format!("{name}: the backward graph does not start with the forward nodes"));
    }
    if g.outputs.len() < forward.outputs.len() || g.outputs[..forward.outputs.len()] != forward.outputs[..] {
        return Err(format!("{name}: the backward graph does not keep the forward outputs first"));
    }
    let params: Vec<(ValueId, &str)> = forward
        .inputs()
        .filter_map(|(id, node)| match &node.op {
            Op::Input { name, kind: InputKind::Param { .. } } => Some((id, name.as_str())),
            _ => None,
        })
        .collect();
    let grad_outputs = &g.outputs[forward.outputs.len()..];
    if backward.grads.len() != params.len() || grad_outputs.len() != params.len() {
        return Err(format!(
            "{name}: {} parameters but {} gradients and {} extra outputs",
            params.len(),
            backward.grads.len(),
            grad_outputs.len()
        ));
    }
    for ((pg, (id, pname)), out) in backward.grads.iter().zip(&params).zip(grad_outputs) {
        let want = format!("grad.{pname}");
        if pg.name != *pname || pg.param != *id || out.name != want || out.kind != OutputKind::Other {
            return Err(format!("{name}: gradient of `{pname}` is {pg:?} with output {out:?}"));
        }
        if out.value != pg.grad || g.ty(pg.grad) != forward.ty(*id) {
            return Err(format!("{name}: gradient of `{pname}` has type {}", g.ty(pg.grad)));
        }
    }
    let mut failures = vec![];
    for (i, node) in g.nodes.iter().enumerate().skip(n) {
        let Some(of) = node.grad_of else {
            failures.push(format!("{name}: backward node %{i} ({}) has no grad_of", node.op.mnemonic()));
            continue;
        };
        if of.index() >= n {
            failures.push(format!("{name}: backward node %{i} has grad_of {of}, not a forward node"));
        } else if node.loc != forward.node(of).loc {
            failures.push(format!(
                "{name}: backward node %{i} has location {:?}, its forward node {of} {:?}",
                node.loc,
                forward.node(of).loc
            ));
        }
    }
    let text = print::print(g);
    match parse::parse(&text) {
        Err(e) => failures.push(format!("{name}: the printed backward graph does not parse: {e}")),
        Ok(parsed) if parsed != *g || print::print(&parsed) != text => {
            failures.push(format!("{name}: the backward graph does not round-trip through the text format"))
        }
        Ok(_) => {}
    }
    Ok((backward, failures))
}

/// Runs all checks of one case; returns the failures (empty when it passes).
fn check_case(name: &str, forward: &Graph, params: &[(String, Vec<usize>, Values)]) -> Vec<String> {
    if let Err(e) = verify::verify(forward) {
        return vec![format!("{name}: the case's forward graph does not verify: {}", e.join("; "))];
    }
    let (backward, mut failures) = match check_structure(name, forward) {
        Ok(b) => b,
        Err(e) => return vec![e],
    };
    let inputs = inputs(forward, params);
    let outputs = match interp::run::<f64>(&backward.graph, &inputs) {
        Ok(o) => o,
        Err(e) => {
            failures.push(format!("{name}: running the backward graph: {e}"));
            return failures;
        }
    };
    let l = loss(forward, &inputs);
    let bl =
        outputs.iter().find(|(n, _)| n == "loss").and_then(|(_, t)| t.as_float()?.iter().next().copied());
    if bl != Some(l) {
        failures.push(format!("{name}: the backward graph's loss {bl:?} differs from the forward loss {l}"));
    }
    // (parameter, autodiff, finite differences) per parameter.
    let mut results = vec![];
    for pg in &backward.grads {
        let Some((_, Tensor::Float(ad))) = outputs.iter().find(|(n, _)| *n == format!("grad.{}", pg.name))
        else {
            failures.push(format!("{name}: no float output grad.{}", pg.name));
            return failures;
        };
        let ad: Vec<f64> = ad.iter().copied().collect();
        let fd: Vec<f64> = (0..ad.len()).map(|i| finite_difference(forward, &inputs, &pg.name, i)).collect();
        results.push((pg, ad, fd));
    }
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let whole = results.iter().fold(0.0f64, |m, (_, ad, fd)| m.max(largest(ad)).max(largest(fd)));
    for (pg, ad, fd) in &results {
        let scale = largest(ad).max(largest(fd)).max(1e-3 * whole).max(1e-12);
        let values = inputs[&pg.name].as_float().expect("a float parameter");
        let shape = values.shape().to_vec();
        for (i, (&a, &f)) in ad.iter().zip(fd).enumerate() {
            let error = (a - f).abs();
            // A NaN error fails too.
            if error.is_nan() || error > TOLERANCE * scale {
                failures.push(format!(
                    "{name}: d loss / d {}{:?} (value {:.6}): autodiff {a:.12e}, finite differences {f:.12e}, \
                     error {error:.3e} > {:.3e} (scale {scale:.3e})",
                    pg.name,
                    unravel(i, &shape),
                    values.as_slice().expect("standard layout")[i],
                    TOLERANCE * scale
                ));
            }
        }
    }
    failures
}

/// The multi-index of row-major element `i` of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = i % n.max(1);
        i /= n.max(1);
    }
    index
}

fn assert_no_failures(failures: Vec<String>, cases: usize) {
    assert!(failures.is_empty(), "{} failure(s) in {cases} cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_primitive_matches_finite_differences() {
    let cases = cases();
    let mut failures = vec![];
    for (name, build) in &cases {
        let mut b = Builder::new(name);
        let out = build(&mut b);
        let (graph, params) = b.finish(out);
        failures.extend(check_case(name, &graph, &params));
    }
    assert_no_failures(failures, cases.len());
}

#[test]
fn text_cases_match_finite_differences() {
    let cases = text_cases();
    let mut failures = vec![];
    for (name, text, values) in &cases {
        let graph = parse::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let params: Vec<(String, Vec<usize>, Values)> = graph
            .inputs()
            .filter_map(|(_, node)| match &node.op {
                Op::Input { name: p, kind: InputKind::Param { .. } } => {
                    let v = values.iter().find(|(n, _)| n == p).map_or(Values::Uniform, |(_, v)| *v);
                    Some((p.clone(), node.ty.shape.as_known().expect("known shapes"), v))
                }
                _ => None,
            })
            .collect();
        failures.extend(check_case(name, &graph, &params));
    }
    assert_no_failures(failures, cases.len());
}

/// The table covers every differentiable forward primitive and the
/// non-differentiable ones that appear inside differentiable graphs.
#[test]
fn cases_cover_every_primitive() {
    let mut seen = BTreeSet::new();
    for (name, build) in cases() {
        let mut b = Builder::new(name);
        let out = build(&mut b);
        let (graph, _) = b.finish(out);
        seen.extend(graph.nodes.iter().map(|n| n.op.mnemonic()));
    }
    let mut want: Vec<&str> = UnaryOp::ALL.iter().map(|u| u.name()).collect();
    want.extend(BinaryOp::ALL.iter().map(|b| b.name()));
    want.extend([
        "select",
        "broadcast",
        "reshape",
        "permute",
        "slice",
        "pad",
        "concat",
        "reduce_sum",
        "reduce_max",
        "matmul",
        "conv",
        "conv_transpose",
        "maxpool",
        "avgpool",
        "resize",
        // Not differentiable, used inside differentiable graphs.
        "gt",
        "ge",
        "lt",
        "le",
        "cast",
        "argmax",
        "one_hot",
        "size",
        "rng_uniform",
        "const",
    ]);
    let missing: Vec<&str> = want.into_iter().filter(|m| !seen.contains(m)).collect();
    assert!(missing.is_empty(), "no gradient case uses {missing:?}");
}

/// A graph without a loss output, or with a non-scalar loss, is an error,
/// not a panic.
#[test]
fn bad_graphs_are_errors() {
    let mut no_loss = Builder::new("no_loss");
    let x = no_loss.param("x", &[2], Values::Uniform);
    no_loss.graph.output(OutputKind::Prediction, "y", x);
    let mut vector_loss = Builder::new("vector_loss");
    let x = vector_loss.param("x", &[2], Values::Uniform);
    vector_loss.graph.output(OutputKind::Loss, "loss", x);
    for b in [no_loss, vector_loss] {
        assert!(differentiate(&b.graph).is_err(), "{}: expected an error", b.graph.name);
    }
}
