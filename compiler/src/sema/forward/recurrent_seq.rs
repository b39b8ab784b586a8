//! Recurrent layers over sequences `[B, T, F]`: `rnn`, `lstm` and `gru`,
//! with PyTorch's gate order, parameter layouts and initialisation.
//!
//! The recurrence is unrolled like `convlstm`'s (one copy of the cell per
//! step, every copy reading the same parameters). Each step projects its
//! input `x_t · W_ihᵀ` and its state `h_{t-1} · W_hhᵀ` with two small GEMMs;
//! the first step starts from `h_0 = c_0 = 0` and skips the second.
//!
//! The input projection is per step, not one product `[B, T, F] × [F, G·H]`
//! sliced afterwards: the gradient of a slice is the slice's cotangent
//! padded to the whole tensor, so `T` slices of a `[B, T, G·H]` projection
//! would add `T` full-size tensors in the backward pass (measured on the
//! `lstm` benchmark: 545 MB of arena and 4.5× the step time). Slicing the
//! input instead costs nothing when it is data (no gradient flows to it).

use super::activation::activation;
use super::emit::{bin, broadcast, check_param_size, check_size, emit, known_dim, unary, want_f32};
use super::index::{slice, stack_at, take};
use super::recurrent::MAX_STEPS;
use super::{Activation, BuildError, Built, Cx};
use crate::ir::{BinaryOp, Dim, Init, Op, ParamRole, Shape, UnaryOp, ValueId};

/// The cell of a sequence layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, `act` tanh or relu.
    Rnn { relu: bool },
    /// Gates (i, f, g, o).
    Lstm,
    /// Gates (r, z, n).
    Gru,
}

impl Cell {
    pub fn name(self) -> &'static str {
        match self {
            Cell::Rnn { .. } => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Gate blocks of `hidden` rows in the weights.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn { .. } => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// The arguments of a sequence layer besides its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recurrence {
    pub hidden: usize,
    /// Only the final hidden state `[B, hidden]` (`return: last`) instead of
    /// the sequence of states `[B, T, hidden]`.
    pub last: bool,
    /// Runs from the last step to the first; the sequence keeps the input's
    /// order and the final state is the one after `x_0`.
    pub reverse: bool,
    pub bias: bool,
}

/// A single-layer `rnn`, `lstm` or `gru` over `x: [B, T, F]` (PyTorch's
/// `batch_first=True` layer), unrolled for the known `T` steps.
///
/// Tensors `weight_ih [G·hidden, F]`, `weight_hh [G·hidden, hidden]`,
/// `bias_ih [G·hidden]`, `bias_hh [G·hidden]` (G = 1, 4, 3), all uniform on
/// `±1/sqrt(hidden)`. With `a_t = W_ih x_t + b_ih` and `b_t = W_hh h_{t-1} + b_hh`
/// split into gate blocks:
/// - rnn: `h_t = act(a + b)`;
/// - lstm: `i, f, g, o = a + b`, `c_t = σ(f)·c_{t-1} + σ(i)·tanh(g)`,
///   `h_t = σ(o)·tanh(c_t)`;
/// - gru: `r = σ(a_r + b_r)`, `z = σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`,
///   `h_t = (1 − z)·n + z·h_{t-1}`.
pub fn recurrent(cx: &mut dyn Cx, x: ValueId, cell: Cell, r: Recurrence) -> Built {
    let name = cell.name();
    let t = want_f32(cx, x, name, 0)?;
    if t.shape.rank() != 3 {
        let help = match t.shape.rank() {
            2 => {
                "one feature per step is `reshape(shape: [B, T, 1])`; one step is `reshape(shape: [B, 1, F])`"
            }
            _ => "give the tensor a time axis and a feature axis with `reshape`",
        };
        return Err(BuildError::new(format!(
            "`{name}` needs a rank-3 input [B, T, F] (a sequence of feature vectors), got {t}"
        ))
        .at(0)
        .expected("rank 3 [B, T, F]")
        .label(format!("`{name}` needs a rank-3 input"))
        .help(help));
    }
    let steps = known_dim(&t, 1, name, 0)?;
    let features = known_dim(&t, 2, name, 0)?;
    check_size(steps, &format!("the number of `{name}` steps (axis 1)")).map_err(|e| e.at(0))?;
    check_size(features, &format!("the `{name}` input features (axis 2)")).map_err(|e| e.at(0))?;
    if steps > MAX_STEPS {
        return Err(BuildError::new(format!(
            "`{name}` would unroll {steps} steps, more than the limit of {MAX_STEPS} steps"
        ))
        .at(0)
        .note("every step is a copy of the cell in the graph"));
    }
    let hidden = r.hidden;
    check_size(hidden, &format!("`{name}` hidden size"))?;
    let gates = hidden
        .checked_mul(cell.gates())
        .ok_or_else(|| BuildError::new(format!("`{name}` hidden size {hidden} is too large")))?;
    check_size(gates, &format!("`{name}` gate rows ({}·hidden)", cell.gates()))?;
    check_param_size(&[gates, features], &format!("the `{name}` input weight"))?;
    check_param_size(&[gates, hidden], &format!("the `{name}` hidden weight"))?;

    let init = Init::Uniform { bound: 1.0 / (hidden as f64).sqrt() };
    let w_ih = cx.param("weight_ih", ParamRole::Weight, Shape::known(&[gates, features]), init);
    let w_hh = cx.param("weight_hh", ParamRole::Weight, Shape::known(&[gates, hidden]), init);
    let biases = if r.bias {
        let b_ih = cx.param("bias_ih", ParamRole::Bias, Shape::known(&[gates]), init);
        let b_hh = cx.param("bias_hh", ParamRole::Bias, Shape::known(&[gates]), init);
        Some((b_ih, b_hh))
    } else {
        None
    };

    // Both biases join the input projection, except GRU's `b_hn`, which
    // the reset gate scales: its hidden bias joins the hidden projection.
    let (input_bias, step_bias) = match (cell, biases) {
        (_, None) => (None, None),
        (Cell::Gru, Some((b_ih, b_hh))) => (Some(b_ih), Some(b_hh)),
        (_, Some((b_ih, b_hh))) => (Some(bin(cx, BinaryOp::Add, b_ih, b_hh)?), None),
    };
    let rows = Shape(vec![t.shape.dims()[0].clone(), Dim::Known(gates)]);
    let input_bias = match input_bias {
        Some(b) => Some(broadcast(cx, b, &rows)?),
        None => None,
    };
    let step_bias = match step_bias {
        Some(b) => Some(broadcast(cx, b, &rows)?),
        None => None,
    };
    let w_iht = emit(cx, Op::Permute { axes: vec![1, 0] }, &[w_ih])?;
    let w_hht = emit(cx, Op::Permute { axes: vec![1, 0] }, &[w_hh])?;

    let order: Vec<usize> = if r.reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
    let mut states: Vec<Option<ValueId>> = vec![None; steps];
    let mut h: Option<ValueId> = None;
    let mut c: Option<ValueId> = None;
    for &step in &order {
        let x_t = take(cx, x, 1, step)?;
        let a = emit(cx, Op::MatMul, &[x_t, w_iht])?;
        let a = add(cx, a, input_bias)?;
        let b = match h {
            Some(h) => Some(emit(cx, Op::MatMul, &[h, w_hht])?),
            None => None,
        };
        let b = match (b, step_bias) {
            (Some(b), Some(bias)) => Some(bin(cx, BinaryOp::Add, b, bias)?),
            (b, bias) => b.or(bias),
        };
        let block = |cx: &mut dyn Cx, v: ValueId, k: usize| slice(cx, v, 1, k * hidden, (k + 1) * hidden);
        let next = match cell {
            Cell::Rnn { relu } => {
                let g = add(cx, a, b)?;
                let act = if relu { Activation::Relu } else { Activation::Tanh };
                activation(cx, g, act)?
            }
            Cell::Lstm => {
                let g = add(cx, a, b)?;
                let gate = |cx: &mut dyn Cx, k: usize, f: UnaryOp| -> Built {
                    let s = block(cx, g, k)?;
                    unary(cx, f, s)
                };
                let i = gate(cx, 0, UnaryOp::Sigmoid)?;
                let u = gate(cx, 2, UnaryOp::Tanh)?;
                let o = gate(cx, 3, UnaryOp::Sigmoid)?;
                let added = bin(cx, BinaryOp::Mul, i, u)?;
                // The forget gate only acts on a previous cell state: the
                // first step (c_0 = 0) emits no node it would not use.
                let cell_state = match c {
                    Some(c) => {
                        let f = gate(cx, 1, UnaryOp::Sigmoid)?;
                        let kept = bin(cx, BinaryOp::Mul, f, c)?;
                        bin(cx, BinaryOp::Add, kept, added)?
                    }
                    None => added,
                };
                c = Some(cell_state);
                let squashed = unary(cx, UnaryOp::Tanh, cell_state)?;
                bin(cx, BinaryOp::Mul, o, squashed)?
            }
            Cell::Gru => {
                let a_rz = slice(cx, a, 1, 0, 2 * hidden)?;
                let b_rz = match b {
                    Some(b) => Some(slice(cx, b, 1, 0, 2 * hidden)?),
                    None => None,
                };
                let rz = add(cx, a_rz, b_rz)?;
                let rz = unary(cx, UnaryOp::Sigmoid, rz)?;
                let update = block(cx, rz, 1)?;
                let a_n = block(cx, a, 2)?;
                let pre = match b {
                    Some(b) => {
                        let reset = block(cx, rz, 0)?;
                        let b_n = block(cx, b, 2)?;
                        let scaled = bin(cx, BinaryOp::Mul, reset, b_n)?;
                        bin(cx, BinaryOp::Add, a_n, scaled)?
                    }
                    None => a_n,
                };
                let n = unary(cx, UnaryOp::Tanh, pre)?;
                // (1 − z)·n + z·h = n + z·(h − n); with h = 0, n − z·n.
                let toward = match h {
                    Some(h) => bin(cx, BinaryOp::Sub, h, n)?,
                    None => unary(cx, UnaryOp::Neg, n)?,
                };
                let moved = bin(cx, BinaryOp::Mul, update, toward)?;
                bin(cx, BinaryOp::Add, n, moved)?
            }
        };
        h = Some(next);
        states[step] = Some(next);
    }
    let states: Vec<ValueId> = states.into_iter().flatten().collect();
    match (r.last, h) {
        (true, Some(h)) => Ok(h),
        _ => stack_at(cx, &states, 1),
    }
}

/// `a + b`, or `a` when `b` is absent (the zero initial state's product).
fn add(cx: &mut dyn Cx, a: ValueId, b: Option<ValueId>) -> Built {
    match b {
        Some(b) => bin(cx, BinaryOp::Add, a, b),
        None => Ok(a),
    }
}
