//! Views and their layouts: a `broadcast`, `permute`, `reshape`, `slice` or
//! `stop_gradient` is read through its base at an offset with strides unless
//! some reader needs it in memory.
//! [`materialise`] decides which views and inline values are stored, by
//! iterating the operand requirements of the readers to a fixed point.

use super::{data_args, is_inline, is_view};
use crate::ir::{Dim, Graph, Op, Shape, ValueId};

/// How a value is laid out relative to its base.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    pub base: ValueId,
    /// Row-major over the base's memory, offset 0.
    contiguous: bool,
    /// Every element reads the base's single element.
    uniform: bool,
}

fn is_size_one(d: &Dim) -> bool {
    *d == Dim::Known(1)
}

/// True when the dimensions other than size 1 keep their order.
fn permute_keeps_order(shape: &Shape, axes: &[usize]) -> bool {
    let kept: Vec<usize> =
        axes.iter().copied().filter(|&a| !shape.dims().get(a).is_some_and(is_size_one)).collect();
    kept.windows(2).all(|w| w[0] < w[1])
}

/// True when broadcasting `from` to `to` only adds size-1 or leading axes
/// of size 1 (no element is repeated).
fn broadcast_is_trivial(from: &Shape, to: &Shape) -> bool {
    let lead = to.rank().saturating_sub(from.rank());
    to.dims()[..lead].iter().all(is_size_one)
        && from
            .dims()
            .iter()
            .zip(&to.dims()[lead..])
            .all(|(f, t)| f == t || (is_size_one(f) && is_size_one(t)))
}

/// True when reshaping `from` to `to` only adds or drops axes of size 1:
/// any layout reads the same in the new shape.
fn reshape_only_unit_axes(from: &Shape, to: &Shape) -> bool {
    let kept = |s: &Shape| s.dims().iter().filter(|d| !is_size_one(d)).cloned().collect::<Vec<Dim>>();
    kept(from) == kept(to)
}

/// Layouts of all nodes given the set of materialised views and inline
/// values; `None` for a reshape that cannot be a view of its operand.
fn layouts(graph: &Graph, materialised: &[bool]) -> Vec<Option<Layout>> {
    let mut out: Vec<Option<Layout>> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let own = Layout { base: v, contiguous: true, uniform: node.ty.shape.dims().iter().all(is_size_one) };
        let layout = if materialised[i] || !is_view(&node.op) {
            Some(own)
        } else {
            let arg = node.args.first().and_then(|a| out.get(a.index()).copied().flatten());
            let arg_shape = node.args.first().map(|a| &graph.ty(*a).shape);
            match (arg, arg_shape) {
                (Some(a), Some(arg_shape)) => match &node.op {
                    Op::Broadcast { shape } => Some(Layout {
                        base: a.base,
                        contiguous: a.contiguous && broadcast_is_trivial(arg_shape, shape),
                        uniform: a.uniform,
                    }),
                    Op::Permute { axes } => Some(Layout {
                        base: a.base,
                        contiguous: a.contiguous && permute_keeps_order(arg_shape, axes),
                        uniform: a.uniform,
                    }),
                    Op::StopGradient => Some(a),
                    // At an offset: contiguous only when it is the whole
                    // operand.
                    Op::Slice { .. } => Some(Layout {
                        base: a.base,
                        contiguous: a.contiguous && arg_shape == &node.ty.shape,
                        uniform: a.uniform,
                    }),
                    _ if a.contiguous || a.uniform => Some(a),
                    Op::Reshape { shape } if reshape_only_unit_axes(arg_shape, shape) => Some(a),
                    _ => None,
                },
                _ => None,
            }
        };
        out.push(layout);
    }
    out
}

/// The number of products by one transposed matrix from which the
/// transpose is stored once (see [`materialise`]).
const TRANSPOSE_ONCE_FROM: usize = 4;

/// Decides which views and inline values are stored, by iterating the
/// operand requirements to a fixed point (materialising a view changes the
/// layouts built on it).
pub(super) fn materialise(graph: &Graph) -> (Vec<bool>, Vec<Layout>) {
    let n = graph.nodes.len();
    let mut mat = vec![false; n];
    for o in &graph.outputs {
        if let Some(node) = graph.nodes.get(o.value.index()) {
            if is_view(&node.op) || is_inline(&node.op) {
                mat[o.value.index()] = true;
            }
        }
    }
    // A transposed matrix that many products multiply by (an unrolled
    // recurrence's `h · W_hhᵀ` at every step) is stored once, row-major:
    // the GEMM library packs a row-major right-hand operand faster than a
    // column-major one (an LSTM step's [64, 128] · [128, 512]: 38 µs
    // against 45 on one thread, 24 against 47 on two), and one transposing
    // copy per run (a strided read, about one cold product's cost) pays off
    // from a few products on.
    let mut right_operand_of = vec![0usize; n];
    for node in &graph.nodes {
        if node.op == Op::MatMul {
            if let Some(b) = node.args.get(1) {
                right_operand_of[b.index()] += 1;
            }
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        if right_operand_of[i] < TRANSPOSE_ONCE_FROM {
            continue;
        }
        let Op::Permute { axes } = &node.op else { continue };
        let rank = axes.len();
        let swaps_last_two = rank >= 2
            && axes[rank - 2] == rank - 1
            && axes[rank - 1] == rank - 2
            && axes[..rank - 2].iter().enumerate().all(|(a, &x)| a == x);
        let of_memory =
            node.args.first().is_some_and(|a| !is_view(&graph.node(*a).op) && !is_inline(&graph.node(*a).op));
        if swaps_last_two && of_memory {
            mat[i] = true;
        }
    }
    loop {
        let lay = layouts(graph, &mat);
        let mut changed = false;
        // A view without a layout is stored only when its operands have
        // layouts: one built on another view without a layout (a permute
        // of a reshape of a permuted value) gets its layout once that one
        // is stored, and needs no copy of its own.
        for (i, node) in graph.nodes.iter().enumerate() {
            if lay[i].is_none() && !mat[i] && node.args.iter().all(|a| lay[a.index()].is_some()) {
                mat[i] = true;
                changed = true;
            }
        }
        if changed {
            continue;
        }
        for (i, node) in graph.nodes.iter().enumerate() {
            if is_view(&node.op) && !mat[i] {
                continue;
            }
            for (k, a) in data_args(graph, ValueId(i as u32)).iter().enumerate() {
                let Some(l) = lay[a.index()] else { continue };
                let base_in_memory = !is_inline(&graph.node(l.base).op);
                // A zero cotangent of an LSTM gradient is no operand at all
                // (lowering passes it as absent).
                let absent_zero = node.op.zero_operand_is_absent(k)
                    && matches!(graph.node(l.base).op, Op::Const { value } if value.to_bits() == 0);
                if absent_zero {
                    continue;
                }
                let ok = match &node.op {
                    Op::MatMul | Op::MatMulSum => base_in_memory,
                    Op::Conv { .. }
                    | Op::ConvTranspose { .. }
                    | Op::ConvWeightGrad { .. }
                    | Op::Pool { .. }
                    | Op::PoolGrad { .. }
                    | Op::Resize { .. }
                    | Op::ResizeGrad { .. }
                    | Op::Warp(_)
                    | Op::WarpGradInput(_)
                    | Op::WarpGradFlow(_) => base_in_memory && l.contiguous,
                    Op::Gather { .. }
                    | Op::ScatterSum { .. }
                    | Op::ScatterMax { .. }
                    | Op::ScatterMaxGrad { .. }
                    | Op::Lstm { .. }
                    | Op::LstmGrad { .. } => base_in_memory && l.contiguous,
                    _ => true,
                };
                if !ok && !mat[a.index()] {
                    mat[a.index()] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            let lay = lay
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    l.unwrap_or(Layout { base: ValueId(i as u32), contiguous: true, uniform: false })
                })
                .collect();
            return (mat, lay);
        }
    }
}
