//! The vector-Jacobian rule of every IR primitive, in one table.
//!
//! [`vjp`] maps a forward node `y = op(args)` and the cotangent `gy` (the
//! gradient of the loss with respect to `y`) to one contribution per
//! operand: the gradient with respect to that operand, or `None` where the
//! operand is not differentiable (bool conditions, integer labels, keys) or
//! the op has no derivative (comparisons, casts, argmax, one-hot, size, RNG,
//! and sign, whose derivative is zero almost everywhere).
//!
//! Conventions that matter for matching PyTorch:
//! - `max(a, b)` sends the gradient to `a` where `a > b` and to `b`
//!   otherwise (ties go to `b`), so `relu = max(x, 0)` has derivative 0 at
//!   0, as in PyTorch; `min` likewise with `a < b`.
//! - `reduce_max` shares the gradient evenly among tied maxima (PyTorch's
//!   `amax`); max pooling sends it to the first maximum of each window, and
//!   `scatter_max` to the first maximum of each group of equal indices.
//! - `stop_gradient` passes no gradient: its operand counts as a constant.
//! - Broadcasting is explicit, so the gradient of `broadcast` is the sum
//!   over the expanded axes — the only place that reduces.
//! - `warp` in nearest mode has no gradient in its flow (the sample is
//!   piecewise constant in it); bilinear warp's flow gradient is the
//!   derivative of the interpolation weights, taken from above on grid
//!   lines (where the weights have a kink).

use std::f64::consts::PI;

use crate::ir::{
    BinaryOp, CmpOp, ConvAttrs, DType, Dim, Graph, Loc, LstmSizes, Node, Op, Shape, Type, UnaryOp, ValueId,
    WarpMode,
};

/// Appends backward nodes for one forward node; every node it adds carries
/// the forward node's location and span, and `grad_of` = that node.
pub(super) struct Emitter<'a> {
    pub graph: &'a mut Graph,
    /// The forward node being differentiated.
    pub of: ValueId,
    pub loc: Loc,
}

impl Emitter<'_> {
    pub fn op(&mut self, op: Op, args: &[ValueId]) -> Result<ValueId, String> {
        let mnemonic = op.mnemonic();
        let v = self
            .graph
            .add(op, args, self.loc)
            .map_err(|e| format!("the gradient of {} needs `{mnemonic}`, which fails: {e}", self.of))?;
        self.mark(v);
        Ok(v)
    }

    fn shape(&self, v: ValueId) -> Shape {
        self.graph.ty(v).shape.clone()
    }

    fn constant(&mut self, value: f64) -> ValueId {
        let v = self.graph.constant(value, DType::F32, self.loc);
        self.mark(v);
        v
    }

    /// Marks `v` as made by the gradient rule of the forward node.
    fn mark(&mut self, v: ValueId) {
        let span = self.graph.node(self.of).span;
        let node = &mut self.graph.nodes[v.index()];
        node.grad_of = Some(self.of);
        node.span = span;
    }

    /// A tensor of `value` with the shape of `like`.
    pub fn filled(&mut self, value: f64, like: &Shape) -> Result<ValueId, String> {
        let c = self.constant(value);
        if like.rank() == 0 {
            Ok(c)
        } else {
            self.op(Op::Broadcast { shape: like.clone() }, &[c])
        }
    }

    fn unary(&mut self, u: UnaryOp, x: ValueId) -> Result<ValueId, String> {
        self.op(Op::Unary(u), &[x])
    }

    fn binary(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        self.op(Op::Binary(b), &[x, y])
    }

    pub fn add(&mut self, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        self.binary(BinaryOp::Add, x, y)
    }

    fn mul(&mut self, x: ValueId, y: ValueId) -> Result<ValueId, String> {
        self.binary(BinaryOp::Mul, x, y)
    }

    /// `gy` where `mask`, zero elsewhere (or the reverse with `on_true` false).
    fn masked(&mut self, mask: ValueId, gy: ValueId, on_true: bool) -> Result<ValueId, String> {
        let zero = self.filled(0.0, &self.shape(gy))?;
        let (a, b) = if on_true { (gy, zero) } else { (zero, gy) };
        self.op(Op::Select, &[mask, a, b])
    }

    /// `x` reshaped to `shape` unless it already has it.
    fn reshape(&mut self, x: ValueId, shape: &Shape) -> Result<ValueId, String> {
        if self.shape(x) == *shape {
            Ok(x)
        } else {
            self.op(Op::Reshape { shape: shape.clone() }, &[x])
        }
    }

    /// `x` summed over `axes` (none: `x` itself).
    fn sum(&mut self, x: ValueId, axes: Vec<usize>) -> Result<ValueId, String> {
        if axes.is_empty() {
            Ok(x)
        } else {
            self.op(Op::ReduceSum { axes }, &[x])
        }
    }
}

type Grads = Vec<Option<ValueId>>;

/// Whether `v` is a non-NaN constant, or a broadcast of one.
fn is_constant(graph: &Graph, v: ValueId) -> bool {
    match &graph.node(v).op {
        Op::Const { value } => !value.is_nan(),
        Op::Broadcast { .. } => is_constant(graph, graph.node(v).args[0]),
        _ => false,
    }
}

/// The vector-Jacobian product of forward node `y` (= `node`) with cotangent
/// `gy`: one contribution per operand of `node`.
pub(super) fn vjp(e: &mut Emitter, node: &Node, y: ValueId, gy: ValueId) -> Result<Grads, String> {
    let a = &node.args;
    let x = |i: usize| a[i];
    Ok(match &node.op {
        Op::Input { .. } | Op::Const { .. } => vec![],

        // ---------------------------------------------------------- unary
        Op::Unary(UnaryOp::Neg) => vec![Some(e.unary(UnaryOp::Neg, gy)?)],
        Op::Unary(UnaryOp::Exp) => vec![Some(e.mul(gy, y)?)],
        Op::Unary(UnaryOp::Log) => vec![Some(e.binary(BinaryOp::Div, gy, x(0))?)],
        Op::Unary(UnaryOp::Sqrt) => {
            // d sqrt(x) = 1 / (2 sqrt(x))
            let two = e.filled(2.0, &node.ty.shape)?;
            let twice = e.mul(two, y)?;
            vec![Some(e.binary(BinaryOp::Div, gy, twice)?)]
        }
        Op::Unary(UnaryOp::Abs) => {
            let sign = e.unary(UnaryOp::Sign, x(0))?;
            vec![Some(e.mul(gy, sign)?)]
        }
        Op::Unary(UnaryOp::Sign) => vec![None],
        Op::Unary(UnaryOp::Tanh) => {
            // 1 - tanh²
            let one = e.filled(1.0, &node.ty.shape)?;
            let sq = e.mul(y, y)?;
            let d = e.binary(BinaryOp::Sub, one, sq)?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Unary(UnaryOp::Sigmoid) => {
            // σ (1 - σ)
            let one = e.filled(1.0, &node.ty.shape)?;
            let rest = e.binary(BinaryOp::Sub, one, y)?;
            let d = e.mul(y, rest)?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Unary(UnaryOp::Erf) => {
            // 2/√π · exp(-x²)
            let sq = e.mul(x(0), x(0))?;
            let neg = e.unary(UnaryOp::Neg, sq)?;
            let ex = e.unary(UnaryOp::Exp, neg)?;
            let k = e.filled(2.0 / PI.sqrt(), &node.ty.shape)?;
            let d = e.mul(k, ex)?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Unary(UnaryOp::Gelu) => {
            let d = e.unary(UnaryOp::GeluGrad, x(0))?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Unary(UnaryOp::GeluGrad) => {
            // d/dx (Φ + x·φ) = 2φ + x·φ' = φ·(2 − x²), φ = e^{-x²/2}/√(2π)
            let sq = e.mul(x(0), x(0))?;
            let minus_half = e.filled(-0.5, &node.ty.shape)?;
            let t = e.mul(sq, minus_half)?;
            let ex = e.unary(UnaryOp::Exp, t)?;
            let k = e.filled(1.0 / (2.0 * PI).sqrt(), &node.ty.shape)?;
            let density = e.mul(k, ex)?;
            let two = e.filled(2.0, &node.ty.shape)?;
            let rest = e.binary(BinaryOp::Sub, two, sq)?;
            let d = e.mul(density, rest)?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Softmax => vec![Some(e.op(Op::SoftmaxGrad, &[y, gy])?)],
        Op::Standardize { eps } => vec![Some(e.op(Op::StandardizeGrad { eps: *eps }, &[x(0), gy])?)],
        Op::Unary(UnaryOp::Sin) => {
            let d = e.unary(UnaryOp::Cos, x(0))?;
            vec![Some(e.mul(gy, d)?)]
        }
        Op::Unary(UnaryOp::Cos) => {
            // -sin x
            let s = e.unary(UnaryOp::Sin, x(0))?;
            let d = e.unary(UnaryOp::Neg, s)?;
            vec![Some(e.mul(gy, d)?)]
        }

        // --------------------------------------------------------- binary
        Op::Binary(BinaryOp::Add) => vec![Some(gy), Some(gy)],
        Op::Binary(BinaryOp::Sub) => vec![Some(gy), Some(e.unary(UnaryOp::Neg, gy)?)],
        Op::Binary(BinaryOp::Mul) => vec![Some(e.mul(gy, x(1))?), Some(e.mul(gy, x(0))?)],
        Op::Binary(BinaryOp::Div) => {
            // d(a/b)/da = 1/b; d(a/b)/db = -a/b² = -(a/b)/b
            let ga = e.binary(BinaryOp::Div, gy, x(1))?;
            let gy_y = e.mul(gy, y)?;
            let q = e.binary(BinaryOp::Div, gy_y, x(1))?;
            vec![Some(ga), Some(e.unary(UnaryOp::Neg, q)?)]
        }
        Op::Binary(b @ (BinaryOp::Max | BinaryOp::Min)) => {
            let cmp = if *b == BinaryOp::Max { CmpOp::Gt } else { CmpOp::Lt };
            // Against a constant `c` (relu's 0), `x > c` is `max(x, c) > c`
            // (a NaN `x` gives a NaN maximum, and both are false): the mask
            // is taken of the result, which the next layer reads anyway,
            // so the pre-activation need not be kept for the backward pass.
            let lhs = if is_constant(e.graph, x(1)) { y } else { x(0) };
            let first = e.op(Op::Compare(cmp), &[lhs, x(1)])?;
            vec![Some(e.masked(first, gy, true)?), Some(e.masked(first, gy, false)?)]
        }
        Op::Select => vec![None, Some(e.masked(x(0), gy, true)?), Some(e.masked(x(0), gy, false)?)],
        Op::Compare(_) | Op::Cast { .. } => vec![None; a.len()],

        // ----------------------------------------------------- structural
        Op::Broadcast { .. } => vec![Some(unbroadcast(e, gy, &e.shape(x(0)))?)],
        Op::Reshape { .. } => vec![Some(e.reshape(gy, &e.shape(x(0)))?)],
        Op::Permute { axes } => {
            let mut inverse = vec![0; axes.len()];
            for (i, &ax) in axes.iter().enumerate() {
                inverse[ax] = i;
            }
            vec![Some(e.op(Op::Permute { axes: inverse }, &[gy])?)]
        }
        Op::Slice { axis, start, end } => {
            let n = known_dim(&e.shape(x(0)), *axis, "slice")?;
            vec![Some(e.op(Op::Pad { axis: *axis, lo: *start, hi: n - end }, &[gy])?)]
        }
        Op::Pad { axis, lo, .. } => {
            let n = known_dim(&e.shape(x(0)), *axis, "pad")?;
            vec![Some(e.op(Op::Slice { axis: *axis, start: *lo, end: lo + n }, &[gy])?)]
        }
        Op::Concat { axis } => {
            let mut offset = 0;
            let mut grads = vec![];
            for &part in a {
                let n = known_dim(&e.shape(part), *axis, "concat")?;
                grads.push(Some(e.op(Op::Slice { axis: *axis, start: offset, end: offset + n }, &[gy])?));
                offset += n;
            }
            grads
        }

        // ----------------------------------------------------- reductions
        Op::ReduceSum { axes } => vec![Some(expand(e, gy, &e.shape(x(0)), axes)?)],
        Op::ReduceMax { axes } => {
            // Shared evenly among the positions equal to the maximum.
            let shape = e.shape(x(0));
            let max = expand(e, y, &shape, axes)?;
            let hit = e.op(Op::Compare(CmpOp::Eq), &[x(0), max])?;
            let hit = e.op(Op::Cast { to: DType::F32 }, &[hit])?;
            let count = e.sum(hit, axes.clone())?;
            let share = e.binary(BinaryOp::Div, gy, count)?;
            let share = expand(e, share, &shape, axes)?;
            vec![Some(e.mul(hit, share)?)]
        }
        Op::ArgMax { .. } | Op::Size { .. } | Op::OneHot { .. } | Op::RngUniform { .. } => {
            vec![None; a.len()]
        }

        // --------------------------------------------------- contractions
        Op::MatMul => {
            let r = node.ty.shape.rank();
            let mut swap: Vec<usize> = (0..r).collect();
            swap.swap(r - 2, r - 1);
            let bt = e.op(Op::Permute { axes: swap.clone() }, &[x(1)])?;
            let at = e.op(Op::Permute { axes: swap }, &[x(0)])?;
            vec![Some(e.op(Op::MatMul, &[gy, bt])?), Some(e.op(Op::MatMul, &[at, gy])?)]
        }
        Op::MatMulSum => {
            // Every batch's product received the whole cotangent.
            let r = e.shape(x(0)).rank();
            let mut swap: Vec<usize> = (0..r).collect();
            swap.swap(r - 2, r - 1);
            let mut wide = e.shape(x(0)).dims()[..r - 2].to_vec();
            wide.extend(node.ty.shape.dims().iter().cloned());
            let gb = e.op(Op::Broadcast { shape: Shape(wide) }, &[gy])?;
            let bt = e.op(Op::Permute { axes: swap.clone() }, &[x(1)])?;
            let at = e.op(Op::Permute { axes: swap }, &[x(0)])?;
            vec![Some(e.op(Op::MatMul, &[gb, bt])?), Some(e.op(Op::MatMul, &[at, gb])?)]
        }
        Op::Conv(conv) => {
            let ConvAttrs { stride, padding, dilation, .. } = conv;
            let (xs, ws) = (e.shape(x(0)), e.shape(x(1)));
            let kernel = known_dims(&ws, 2, "conv")?;
            let mut output_padding = vec![];
            for d in 0..kernel.len() {
                let size = known_dim(&xs, 2 + d, "conv")?;
                let out = known_dim(&node.ty.shape, 2 + d, "conv")?;
                // The transposed convolution must restore exactly `size`.
                let reach = (out - 1) * stride[d] + dilation[d] * (kernel[d] - 1) + 1;
                output_padding.push(size + padding[d].0 + padding[d].1 - reach);
            }
            let dx = Op::ConvTranspose { conv: conv.clone(), output_padding };
            let dw = Op::ConvWeightGrad { conv: conv.clone(), kernel };
            vec![Some(e.op(dx, &[gy, x(1)])?), Some(e.op(dw, &[x(0), gy])?)]
        }
        Op::ConvTranspose { conv, .. } => {
            let ConvAttrs { stride, padding, dilation, .. } = conv;
            let kernel = known_dims(&e.shape(x(1)), 2, "conv_transpose")?;
            let xs = e.shape(x(0));
            // The adjoint convolution of `gy` has `extra` more positions than
            // `x` where the output padding reached past a stride (possible
            // when the dilation is larger than the stride).
            let mut extra = vec![];
            for d in 0..kernel.len() {
                let size = known_dim(&xs, 2 + d, "conv_transpose")?;
                let out = known_dim(&node.ty.shape, 2 + d, "conv_transpose")?;
                let reach = out + padding[d].0 + padding[d].1 - dilation[d] * (kernel[d] - 1) - 1;
                extra.push(reach / stride[d] + 1 - size);
            }
            let dx = Op::Conv(conv.clone());
            // The weight gradient of a convolution with the roles of input
            // and output exchanged (conv_transpose is conv's adjoint).
            let dw = Op::ConvWeightGrad { conv: conv.clone(), kernel };
            let mut gx = e.op(dx, &[gy, x(1)])?;
            let mut x_padded = x(0);
            for (d, &n) in extra.iter().enumerate() {
                if n > 0 {
                    let size = known_dim(&xs, 2 + d, "conv_transpose")?;
                    gx = e.op(Op::Slice { axis: 2 + d, start: 0, end: size }, &[gx])?;
                    x_padded = e.op(Op::Pad { axis: 2 + d, lo: 0, hi: n }, &[x_padded])?;
                }
            }
            vec![Some(gx), Some(e.op(dw, &[gy, x_padded])?)]
        }
        Op::Pool(window) => vec![Some(e.op(Op::PoolGrad(window.clone()), &[x(0), gy])?)],
        Op::Resize { .. } => {
            let size = known_dims(&e.shape(x(0)), 2, "resize")?;
            vec![Some(e.op(Op::ResizeGrad { size }, &[gy])?)]
        }
        Op::Warp(attrs) => {
            // Nearest sampling is piecewise constant in the flow: no contribution.
            let flow = match attrs.mode {
                WarpMode::Bilinear => Some(e.op(Op::WarpGradFlow(*attrs), &[x(0), x(1), gy])?),
                WarpMode::Nearest => None,
            };
            vec![Some(e.op(Op::WarpGradInput(*attrs), &[x(1), gy])?), flow]
        }
        // ------------------------------------------------ gather, scatter
        Op::Gather { axis } => {
            let size = known_dim(&e.shape(x(0)), *axis, "gather")?;
            vec![Some(e.op(Op::ScatterSum { axis: *axis, size }, &[gy, x(1)])?), None]
        }
        Op::ScatterSum { axis, .. } => vec![Some(e.op(Op::Gather { axis: *axis }, &[gy, x(1)])?), None],
        Op::ScatterMax { axis, .. } => {
            vec![Some(e.op(Op::ScatterMaxGrad { axis: *axis }, &[x(0), x(1), gy])?), None]
        }
        Op::StopGradient => vec![None],
        // ---------------------------------------------------- recurrences
        Op::Lstm { reverse } => lstm(e, node, y, gy, *reverse)?,

        Op::ConvWeightGrad { .. }
        | Op::ScatterMaxGrad { .. }
        | Op::SoftmaxGrad
        | Op::StandardizeGrad { .. }
        | Op::PoolGrad { .. }
        | Op::ResizeGrad { .. }
        | Op::WarpGradInput(_)
        | Op::WarpGradFlow(_)
        | Op::LstmGrad { .. } => {
            return Err(format!(
                "{y}: `{}` is a gradient op; second derivatives are not supported",
                node.op.mnemonic()
            ))
        }
    })
}

/// The gradient of `y = lstm(x, w, h0, c0)`: `r = lstm_grad(y, dh, dc,
/// dgates, w, c0)`, with `gy` cut into its lanes (slices of the pads that
/// the gradients of `y`'s readers are, which the optimisation passes turn
/// into the parts that are not zero), holds per step the gate
/// pre-activations' gradient `dpre` and what reaches the previous states,
/// so `h0`'s and `c0`'s gradients are the first processed step's lanes.
/// With `z = [x_t, h_prev, 1]` (lanes `6H..` of `y`) and `pre = z · wᵀ`:
/// the weight's gradient is `Σ dpreᵀ · z` over all rows and steps, computed
/// transposed as one `matmul_sum` (`[K, B] · [B, 4H]` per step; in the
/// time-major layouts of `y` and `r` one product of depth `T·B`), and
/// `x`'s is `dpre · w_ih` (`w`'s first `F` columns). The lanes of `z` are
/// themselves results: the cotangent of `x_t` adds to `x`'s gradient, that
/// of `h_prev` to the `h` lane of the step processed before (or to `h0`).
fn lstm(e: &mut Emitter, node: &Node, y: ValueId, gy: ValueId, reverse: bool) -> Result<Grads, String> {
    let (w, c0) = (node.args[1], node.args[3]);
    let shape = e.shape(y);
    let steps = known_dim(&shape, 0, "lstm")?;
    let sizes =
        LstmSizes::of_weight(&e.shape(w)).ok_or_else(|| format!("{y}: `lstm` of an unknown weight shape"))?;
    let LstmSizes { hidden, features } = sizes;
    let batch = shape.dims()[1].clone();
    let lane = |e: &mut Emitter, v: ValueId, lo: usize, hi: usize| {
        e.op(Op::Slice { axis: 2, start: lo, end: hi }, &[v])
    };
    let (z, z_h) = (6 * hidden, 6 * hidden + features);
    let dz_h = lane(e, gy, z_h, z_h + hidden)?;
    // Positions 1..T read the `h` of positions 0..T−1 (reverse: 0..T−1 read
    // 1..T), and the first processed step reads `h0`.
    let first = if reverse { steps - 1 } else { 0 };
    let mut dh = lane(e, gy, 0, hidden)?;
    if steps > 1 {
        let (read, pad) = if reverse { ((0, steps - 1), (1, 0)) } else { ((1, steps), (0, 1)) };
        let later = e.op(Op::Slice { axis: 0, start: read.0, end: read.1 }, &[dz_h])?;
        let shifted = e.op(Op::Pad { axis: 0, lo: pad.0, hi: pad.1 }, &[later])?;
        dh = e.add(dh, shifted)?;
    }
    let mut cotangents = vec![y, dh];
    for (lo, hi) in [(1, 2), (2, 6)] {
        cotangents.push(lane(e, gy, lo * hidden, hi * hidden)?);
    }
    cotangents.extend([w, c0]);
    let r = e.op(Op::LstmGrad { reverse, from: vec![0; 3] }, &cotangents)?;
    let dpre = lane(e, r, 0, 4 * hidden)?;
    let rows = |cols: usize| Shape(vec![batch.clone(), Dim::Known(cols)]);
    // Lanes `lo..hi` of step `t` of `v`, as a [B, hi − lo] matrix.
    let step_lanes =
        |e: &mut Emitter, v: ValueId, t: usize, lo: usize, hi: usize| -> Result<ValueId, String> {
            let step = e.op(Op::Slice { axis: 0, start: t, end: t + 1 }, &[v])?;
            let part = e.op(Op::Slice { axis: 2, start: lo, end: hi }, &[step])?;
            e.reshape(part, &rows(hi - lo))
        };
    let dh0 = step_lanes(e, r, first, 4 * hidden, 5 * hidden)?;
    let dh0_read = step_lanes(e, gy, first, z_h, z_h + hidden)?;
    let dh0 = e.add(dh0, dh0_read)?;
    let dc0 = step_lanes(e, r, first, 5 * hidden, 6 * hidden)?;
    let zt = lane(e, y, z, sizes.result_lanes())?;
    let zt = e.op(Op::Permute { axes: vec![0, 2, 1] }, &[zt])?;
    let dwt = e.op(Op::MatMulSum, &[zt, dpre])?;
    let dw = e.op(Op::Permute { axes: vec![1, 0] }, &[dwt])?;
    let dz_x = lane(e, gy, z, z_h)?;
    let dx = if features > 0 {
        let w_ih = e.op(Op::Slice { axis: 1, start: 0, end: features }, &[w])?;
        let per_step = Shape(vec![Dim::Known(steps), Dim::Known(4 * hidden), Dim::Known(features)]);
        let w_ih = e.op(Op::Broadcast { shape: per_step }, &[w_ih])?;
        let dx = e.op(Op::MatMul, &[dpre, w_ih])?;
        e.add(dx, dz_x)?
    } else {
        dz_x
    };
    Ok(vec![Some(dx), Some(dw), Some(dh0), Some(dc0)])
}

/// The gradient of `broadcast` to `gy`'s shape from `shape`: the sum over
/// the added leading axes and over the axes where `shape` has size 1 and the
/// result does not, reshaped back to `shape`.
///
/// A matrix broadcast over the batch of a product (a weight applied to
/// every step of a sequence) gets the batched product of its gradient
/// summed over the batch, `matmul_sum`, rather than a `matmul` of every
/// batch's gradient and their sum.
fn unbroadcast(e: &mut Emitter, gy: ValueId, shape: &Shape) -> Result<ValueId, String> {
    let out = e.shape(gy);
    let lead = out.rank() - shape.rank();
    let axes: Vec<usize> = (0..out.rank())
        .filter(|&i| i < lead || (shape.dims()[i - lead] == Dim::Known(1) && out.dims()[i] != Dim::Known(1)))
        .collect();
    let product = e.graph.node(gy);
    let batch_only = lead > 0 && shape.rank() == 2 && axes.len() == lead;
    if batch_only && product.op == Op::MatMul && product.grad_of.is_some() {
        let (a, b) = (product.args[0], product.args[1]);
        return e.op(Op::MatMulSum, &[a, b]);
    }
    let summed = e.sum(gy, axes)?;
    e.reshape(summed, shape)
}

/// `v` (the result of reducing a tensor of `shape` over `axes`) broadcast
/// back to `shape`: reshaped with size-1 axes in place of the reduced ones,
/// then broadcast.
fn expand(e: &mut Emitter, v: ValueId, shape: &Shape, axes: &[usize]) -> Result<ValueId, String> {
    if axes.is_empty() {
        return Ok(v);
    }
    let keep = Shape(
        shape
            .dims()
            .iter()
            .enumerate()
            .map(|(i, d)| if axes.contains(&i) { Dim::Known(1) } else { d.clone() })
            .collect(),
    );
    let kept = e.reshape(v, &keep)?;
    if keep == *shape {
        return Ok(kept);
    }
    e.op(Op::Broadcast { shape: shape.clone() }, &[kept])
}

fn known_dim(shape: &Shape, axis: usize, op: &str) -> Result<usize, String> {
    shape
        .dims()
        .get(axis)
        .and_then(Dim::known)
        .ok_or_else(|| format!("the gradient of `{op}` needs a known size on axis {axis} of {shape}"))
}

fn known_dims(shape: &Shape, from: usize, op: &str) -> Result<Vec<usize>, String> {
    (from..shape.rank()).map(|i| known_dim(shape, i, op)).collect()
}

/// The type of a parameter's gradient: the parameter's own.
pub(super) fn zero_like(e: &mut Emitter, ty: &Type) -> Result<ValueId, String> {
    e.filled(0.0, &ty.shape)
}
