//! Forward FLOPs of the nodes a call emitted, for `nnc summary`.
//!
//! Convention (one sample: every symbolic dimension, e.g. the batch `B`,
//! counts as 1; a multiply-add counts as 2):
//! - `MatMul` `[..., M, K] x [..., K, N]`: 2·K per output element;
//! - `Conv`: 2·(C/groups)·prod(kernel) per output element;
//! - `ConvTranspose`: 2·(O/groups)·prod(kernel) per input element;
//! - reductions (`ReduceSum`, `ReduceMax`, `ArgMax`): 1 per input element;
//! - pooling: prod(window) per output element;
//! - `Warp`: 8 per output element bilinear (4 taps, a multiply-add each),
//!   1 nearest;
//! - scatters (`ScatterSum`, `ScatterMax`): 1 per input element;
//! - inputs, constants, `StopGradient` and pure data movement (`Broadcast`,
//!   `Reshape`, `Permute`, `Slice`, `Pad`, `Concat`, `Gather`, `Size`): 0;
//! - every other op (elementwise, `Select`, `Resize`, `OneHot`, RNG): 1 per
//!   output element.
//!
//! Only built-in calls have rows in the summary; the arithmetic operators
//! between them (`h + x`) are not attributed to any row. Counts saturate
//! instead of overflowing.

use crate::ir::{Dim, Graph, LstmSizes, Op, Shape, WarpAttrs, WarpMode};

/// Elements of a shape with symbolic dimensions set to 1.
pub fn elements(shape: &Shape) -> u64 {
    shape.dims().iter().fold(1u64, |acc, d| match d {
        Dim::Known(n) => acc.saturating_mul(*n as u64),
        Dim::Sym(_) => acc,
    })
}

fn elements_from(shape: &Shape, from: usize) -> u64 {
    shape.dims().iter().skip(from).fold(1u64, |acc, d| acc.saturating_mul(d.known().unwrap_or(1) as u64))
}

/// FLOPs of nodes `from..` of the graph.
pub fn flops_since(graph: &Graph, from: usize) -> u64 {
    (from..graph.nodes.len()).fold(0u64, |acc, i| acc.saturating_add(node_flops(graph, i)))
}

fn operand_shape(graph: &Graph, index: usize, operand: usize) -> Option<&Shape> {
    let id = graph.nodes.get(index)?.args.get(operand)?;
    graph.nodes.get(id.index()).map(|n| &n.ty.shape)
}

fn node_flops(graph: &Graph, index: usize) -> u64 {
    let Some(node) = graph.nodes.get(index) else { return 0 };
    let out = elements(&node.ty.shape);
    match &node.op {
        Op::Input { .. }
        | Op::Const { .. }
        | Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Permute { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Concat { .. }
        | Op::Gather { .. }
        | Op::StopGradient
        | Op::Size { .. } => 0,
        Op::ReduceSum { .. }
        | Op::ReduceMax { .. }
        | Op::ArgMax { .. }
        | Op::ScatterSum { .. }
        | Op::ScatterMax { .. } => operand_shape(graph, index, 0).map_or(out, elements),
        Op::Warp(WarpAttrs { mode: WarpMode::Bilinear, .. }) => out.saturating_mul(8),
        // The sum, the centring, the squares and their sum, the scaling.
        Op::Standardize { .. } => out.saturating_mul(5),
        Op::Pool(pool) => {
            let per = pool.window.iter().fold(1u64, |acc, &w| acc.saturating_mul(w as u64));
            out.saturating_mul(per)
        }
        Op::MatMul => {
            let k = operand_shape(graph, index, 0)
                .and_then(|s| s.dims().last())
                .and_then(Dim::known)
                .unwrap_or(1);
            out.saturating_mul(2).saturating_mul(k as u64)
        }
        Op::MatMulSum => {
            // Every element sums over the batches and K: the operand's
            // elements per row of the result.
            let a = operand_shape(graph, index, 0);
            let m = a.and_then(|s| s.dims().iter().rev().nth(1)).and_then(Dim::known).unwrap_or(1);
            let per = a.map_or(1, elements) / (m as u64).max(1);
            out.saturating_mul(2).saturating_mul(per)
        }
        Op::Conv { .. } => {
            let per = operand_shape(graph, index, 1).map_or(1, |w| elements_from(w, 1));
            out.saturating_mul(2).saturating_mul(per)
        }
        Op::ConvTranspose { .. } => {
            let input = operand_shape(graph, index, 0).map_or(0, elements);
            let per = operand_shape(graph, index, 1).map_or(1, |w| elements_from(w, 1));
            input.saturating_mul(2).saturating_mul(per)
        }
        // Per batch row and step: the step's product `[x_t, h_prev, 1]·wᵀ`
        // (2·4H·(F + H + 1)), the four activations (4H), then `f·c`, `i·g`,
        // their sum, `tanh(c)` and `o·tanh(c)` (H each); the gradient:
        // `dpre·w_hh` (2·4H·H) and about 20 per hidden unit.
        Op::Lstm { .. } | Op::LstmGrad { .. } => {
            let weight = node.op.lstm_weight().and_then(|i| operand_shape(graph, index, i));
            let Some(LstmSizes { hidden, features }) = weight.and_then(LstmSizes::of_weight) else {
                return out;
            };
            let lanes = node.ty.shape.dims().last().and_then(Dim::known).unwrap_or(1).max(1) as u64;
            let rows = out / lanes;
            let (h, f) = (hidden as u64, features as u64);
            let per = if matches!(node.op, Op::Lstm { .. }) {
                8 * h * (f + h + 1) + 9 * h
            } else {
                8 * h * h + 20 * h
            };
            rows.saturating_mul(per)
        }
        _ => out,
    }
}
