//! Recurrent layers over sequences `[B, T, F]`: `rnn`, `lstm` and `gru`,
//! with PyTorch's gate order, parameter layouts and initialisation.
//!
//! `rnn` and `gru` are unrolled like `convlstm` (one copy of the cell per
//! step, every copy reading the same parameters). Each step projects its
//! input `x_t · W_ihᵀ` and its state `h_{t-1} · W_hhᵀ` with two small GEMMs;
//! from the default zero state the first step skips the second (an `init:`
//! state given by the program is multiplied like any other).
//!
//! `lstm` is one `lstm` node (`Op::Lstm`), whose gradient is one
//! `lstm_grad` node: an LSTM is the layer of this family that sequence
//! models spend most of their time in, and the fused op lets the runtime
//! run each block of batch rows through every step on its own thread, one
//! product per step of `[x_t, h_prev, 1]` with the joined weight
//! `[W_ih, W_hh, b_ih + b_hh]` and the gate functions applied in wide
//! vectors on it (see `runtime/src/exec/recurrent.rs`). Its result
//! `[T, B, 7H + F + 1]` holds per step and row the lanes
//! `[h, c, i, f, g, o, x_t, h_prev, 1]`; the layer's results are slices of
//! it (the sequence transposed back to `[B, T, H]`), and the weight's
//! gradient is one product over all steps of the last lanes with the gate
//! gradients.
//!
//! For `rnn` and `gru`, the input projection is per step, not one product
//! `[B, T, F] × [F, G·H]` sliced afterwards: the gradient of a slice is the slice's cotangent
//! padded to the whole tensor, so `T` slices of a `[B, T, G·H]` projection
//! would add `T` full-size tensors in the backward pass (measured on the
//! `lstm` benchmark: 545 MB of arena and 4.5× the step time). Slicing the
//! input instead costs nothing when it is data (no gradient flows to it).
//! The weight gradients are then sums of one product per step; fusion
//! computes each such sum with one GEMM per step accumulating onto the
//! running sum, which the plan keeps in a single buffer
//! (`fusion::Kernel::accumulate`).

use super::activation::activation;
use super::emit::{
    bin, broadcast, check_param_size, check_size, emit, known_dim, reshape_to, splat, unary, want_f32,
};
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

/// What a sequence layer returns (`return:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqResult {
    /// The states `[B, T, hidden]` in the input's order.
    Sequence,
    /// The final hidden state `[B, hidden]`.
    Last,
    /// The final states: `[h_T]` for rnn and gru, `[h_T, c_T]` for lstm.
    States,
    /// `[sequence, final states...]`.
    All,
}

impl SeqResult {
    /// The value of `return:` (`sequence`, `last`, `states` or `all`).
    pub fn from_name(name: &str) -> Option<SeqResult> {
        match name {
            "sequence" => Some(SeqResult::Sequence),
            "last" => Some(SeqResult::Last),
            "states" => Some(SeqResult::States),
            "all" => Some(SeqResult::All),
            _ => None,
        }
    }

    /// Whether the result is a list (`states`, `all`) rather than a tensor.
    pub fn is_list(self) -> bool {
        matches!(self, SeqResult::States | SeqResult::All)
    }
}

/// The arguments of a sequence layer besides its input and initial states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recurrence {
    pub hidden: usize,
    pub result: SeqResult,
    /// Runs from the last step to the first; the sequence keeps the input's
    /// order and the final state is the one after `x_0`.
    pub reverse: bool,
    pub bias: bool,
}

impl Cell {
    /// The number of states: 2 for lstm (`h`, `c`), 1 otherwise.
    pub fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            _ => 1,
        }
    }
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
///
/// The result is a tensor; see [`recurrent_results`] for initial states and
/// the results `states` and `all`.
pub fn recurrent(cx: &mut dyn Cx, x: ValueId, cell: Cell, r: Recurrence) -> Built {
    let results = recurrent_results(cx, x, &[], cell, r)?;
    results.first().copied().ok_or_else(|| BuildError::new(format!("`{}` made no result", cell.name())))
}

/// [`recurrent`] from the initial states `initial` (`init:`; none: zeros; else
/// `[h0]`, or `[h0, c0]` for lstm, each `[B, hidden]` f32; they are the
/// call's operands 1 and 2), returning `r.result`: `[sequence]`, `[h_T]`,
/// the final states (`[h_T]` or `[h_T, c_T]`) or `[sequence, finals...]`.
/// "Final" is after the last step processed: with `reverse`, the one at
/// position 0 (PyTorch's `h_n`).
pub fn recurrent_results(
    cx: &mut dyn Cx,
    x: ValueId,
    initial: &[ValueId],
    cell: Cell,
    r: Recurrence,
) -> Result<Vec<ValueId>, BuildError> {
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
    if cell == Cell::Lstm {
        let states = initial_states(cx, initial, cell, hidden, &t.shape.dims()[0])?;
        return lstm(cx, x, [w_ih, w_hh], input_bias, states, steps, r);
    }
    let rows = Shape(vec![t.shape.dims()[0].clone(), Dim::Known(gates)]);
    let input_bias = match input_bias {
        Some(b) => Some(broadcast(cx, b, &rows)?),
        None => None,
    };
    let step_bias = match step_bias {
        Some(b) => Some(broadcast(cx, b, &rows)?),
        None => None,
    };
    let (h0, c0) = initial_states(cx, initial, cell, hidden, &t.shape.dims()[0])?;
    let w_iht = emit(cx, Op::Permute { axes: vec![1, 0] }, &[w_ih])?;
    let w_hht = emit(cx, Op::Permute { axes: vec![1, 0] }, &[w_hh])?;

    let order: Vec<usize> = if r.reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
    let mut states: Vec<Option<ValueId>> = vec![None; steps];
    let mut h: Option<ValueId> = h0;
    let mut c: Option<ValueId> = c0;
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
    let h = h.ok_or_else(|| BuildError::new(format!("`{name}` ran no step")))?;
    let finals: Vec<ValueId> = std::iter::once(h).chain(c).collect();
    Ok(match r.result {
        SeqResult::Last => vec![h],
        SeqResult::States => finals,
        SeqResult::Sequence => vec![stack_at(cx, &states, 1)?],
        SeqResult::All => {
            let mut all = vec![stack_at(cx, &states, 1)?];
            all.extend(finals);
            all
        }
    })
}

/// An `lstm` layer as one `lstm` node (`Op::Lstm`): the input transposed
/// to time-major (`[T, B, F]`) and the weights joined column-wise into the
/// op's `[W_ih, W_hh, bias]` (`bias = b_ih + b_hh`, or zeros), so that each
/// step's input projection, recurrent product and bias are one product in
/// the op; the results are slices of the op's `[T, B, 7H + F + 1]` (lanes
/// `h, c, …` per step).
fn lstm(
    cx: &mut dyn Cx,
    x: ValueId,
    [w_ih, w_hh]: [ValueId; 2],
    bias: Option<ValueId>,
    (h0, c0): (Option<ValueId>, Option<ValueId>),
    steps: usize,
    r: Recurrence,
) -> Result<Vec<ValueId>, BuildError> {
    let hidden = r.hidden;
    let batch = cx.graph().ty(x).shape.dims()[0].clone();
    let xt = emit(cx, Op::Permute { axes: vec![1, 0, 2] }, &[x])?;
    let gates = Shape::known(&[4 * hidden]);
    let bias = match bias {
        Some(b) => b,
        None => splat(cx, 0.0, &gates)?,
    };
    let bias = reshape_to(cx, bias, Shape::known(&[4 * hidden, 1]))?;
    let w = emit(cx, Op::Concat { axis: 1 }, &[w_ih, w_hh, bias])?;
    let state = Shape(vec![batch.clone(), Dim::Known(hidden)]);
    let h0 = match h0 {
        Some(h0) => h0,
        None => splat(cx, 0.0, &state)?,
    };
    let c0 = match c0 {
        Some(c0) => c0,
        None => splat(cx, 0.0, &state)?,
    };
    let y = emit(cx, Op::Lstm { reverse: r.reverse }, &[xt, w, h0, c0])?;
    let last = if r.reverse { 0 } else { steps - 1 };
    // Lanes before the step is taken, so that the gradient of the other
    // lanes is a slice of a pad that the optimisation passes make a zero.
    let final_lanes = |cx: &mut dyn Cx, lane: usize| -> Built {
        let step = slice(cx, y, 0, last, last + 1)?;
        let part = slice(cx, step, 2, lane * hidden, (lane + 1) * hidden)?;
        reshape_to(cx, part, state.clone())
    };
    let h = final_lanes(cx, 0)?;
    let sequence = |cx: &mut dyn Cx| -> Built {
        let lanes = slice(cx, y, 2, 0, hidden)?;
        emit(cx, Op::Permute { axes: vec![1, 0, 2] }, &[lanes])
    };
    Ok(match r.result {
        SeqResult::Last => vec![h],
        SeqResult::States => vec![h, final_lanes(cx, 1)?],
        SeqResult::Sequence => vec![sequence(cx)?],
        SeqResult::All => vec![sequence(cx)?, h, final_lanes(cx, 1)?],
    })
}

/// Checks the initial states `init` (operands 1, 2 of the call) against
/// `[batch, hidden]` f32: none, or one per state of `cell`.
fn initial_states(
    cx: &mut dyn Cx,
    init: &[ValueId],
    cell: Cell,
    hidden: usize,
    batch: &Dim,
) -> Result<(Option<ValueId>, Option<ValueId>), BuildError> {
    let name = cell.name();
    if init.is_empty() {
        return Ok((None, None));
    }
    let want = cell.states();
    let form = match cell {
        Cell::Lstm => "a list `[h0, c0]`",
        _ => "one tensor `h0`",
    };
    if init.len() != want {
        let got = match init.len() {
            1 => "1 state".to_string(),
            n => format!("{n} states"),
        };
        return Err(BuildError::new(format!(
            "`init` of `{name}` is {form} of [B, hidden] states, got {got}"
        ))
        .at(1)
        .label(format!("`{name}` has {want} state{}", if want == 1 { "" } else { "s" }))
        .help(match cell {
            Cell::Lstm => "give the hidden and the cell state: `init: [h0, c0]`",
            _ => "give one tensor: `init: h0`",
        }));
    }
    let shape = Shape(vec![batch.clone(), Dim::Known(hidden)]);
    let names = ["h0", "c0"];
    for (k, &s) in init.iter().enumerate() {
        let ty = cx.graph().ty(s).clone();
        let ok = ty.dtype == crate::ir::DType::F32 && ty.shape == shape;
        if !ok {
            return Err(BuildError::new(format!(
                "the initial state `{}` of `{name}` must be f32{shape} (batch, hidden), got {ty}",
                names[k]
            ))
            .at(1 + k)
            .expected(format!("f32{shape}"))
            .label(format!("`{name}({hidden})` starts from states f32{shape}")));
        }
    }
    Ok((init.first().copied(), init.get(1).copied()))
}

/// `a + b`, or `a` when `b` is absent (the zero initial state's product).
fn add(cx: &mut dyn Cx, a: ValueId, b: Option<ValueId>) -> Built {
    match b {
        Some(b) => bin(cx, BinaryOp::Add, a, b),
        None => Ok(a),
    }
}
