//! Recurrent layers, unrolled over time: `convlstm`.
//!
//! A recurrence over a known number of steps is written out in the graph,
//! one copy of the cell per step, all copies reading the same parameter
//! inputs. The IR then needs no loop construct: autodiff sums each
//! parameter's gradient over the steps (backpropagation through time), and
//! fusion and planning see ordinary convolutions and elementwise ops.

use super::emit::{
    bin, channel_view, check_param_size, check_size, emit, known_dim, product, reshape_to, splat, unary,
    want_f32,
};
use super::{BuildError, Built, Cx};
use crate::ir::{BinaryOp, ConvAttrs, Dim, Init, Op, ParamRole, Shape, UnaryOp, ValueId};

/// Most time steps (input frames plus forecast steps) one recurrent call
/// unrolls; each step is a copy of the cell in the graph.
pub const MAX_STEPS: usize = 1024;

/// A ConvLSTM layer (Shi et al. 2015, without peephole terms) over
/// `x: [B, T, C, H, W]`, unrolled for `T` steps over the input frames and
/// then `forecast` steps with a zero input frame.
///
/// Each step computes `gates = conv(concat[x_t, h_{t-1}]) + bias` with a
/// `kernel`×`kernel` "same" convolution (stride 1) to `4·hidden` channels,
/// split in the order (i, f, g, o); `c_t = σ(f)·c_{t-1} + σ(i)·tanh(g)` and
/// `h_t = σ(o)·tanh(c_t)`, from `h_0 = c_0 = 0`. The result stacks the
/// hidden states on axis 1: all `T` of them (`[B, T, hidden, H, W]`) when
/// `forecast` is 0, otherwise the `forecast` forecast states
/// (`[B, forecast, hidden, H, W]`). The weight `[4·hidden, C + hidden, k, k]`
/// and bias `[4·hidden]` are shared by every step and initialised like a
/// PyTorch `Conv2d` with fan-in `(C + hidden)·k²`.
pub fn convlstm(
    cx: &mut dyn Cx,
    x: ValueId,
    hidden: usize,
    kernel: usize,
    forecast: usize,
    bias: bool,
) -> Built {
    let t = want_f32(cx, x, "convlstm", 0)?;
    if t.shape.rank() != 5 {
        let help = match t.shape.rank() {
            4 => "a single frame [B, C, H, W] is a sequence of length 1: `reshape(shape: [B, 1, C, H, W])`",
            _ => "give the tensor time, channel and spatial axes with `reshape`",
        };
        return Err(BuildError::new(format!(
            "`convlstm` needs a rank-5 input [B, T, C, H, W] (a sequence of frames), got {t}"
        ))
        .at(0)
        .expected("rank 5 [B, T, C, H, W]")
        .label("`convlstm` needs a rank-5 input")
        .help(help));
    }
    check_size(hidden, "`convlstm` hidden channels")?;
    check_size(kernel, "`convlstm` kernel")?;
    if kernel.is_multiple_of(2) {
        return Err(BuildError::new(format!("`convlstm` needs an odd kernel, got {kernel}"))
            .label("even kernel")
            .note(
                "the gate convolution pads (kernel − 1)/2 zeros on each side, so states keep the frame size",
            )
            .help(format!("use `kernel: {}` or `kernel: {}`", kernel - 1, kernel + 1)));
    }
    let mut sizes = [0; 4];
    for (axis, size) in sizes.iter_mut().enumerate() {
        *size = known_dim(&t, axis + 1, "convlstm", 0)?;
        check_size(*size, &format!("axis {} of the `convlstm` input", axis + 1)).map_err(|e| e.at(0))?;
    }
    let [steps_in, c_in, height, width] = sizes;
    let steps = steps_in.checked_add(forecast).filter(|&n| n <= MAX_STEPS).ok_or_else(|| {
        BuildError::new(format!(
            "`convlstm` would unroll {steps_in} input steps and {forecast} forecast steps, \
             more than the limit of {MAX_STEPS} steps"
        ))
        .note("every step is a copy of the cell in the graph")
    })?;
    let gates = hidden.checked_mul(4).ok_or_else(|| too_large(hidden))?;
    let z_channels = c_in.checked_add(hidden).ok_or_else(|| too_large(hidden))?;
    check_size(gates, "`convlstm` gate channels (4·hidden)")?;
    let fan_in = product(&[z_channels, kernel, kernel], "the `convlstm` kernel")?;
    check_param_size(&[gates, z_channels, kernel, kernel], "the `convlstm` weight")?;

    let init = Init::Uniform { bound: 1.0 / (fan_in as f64).sqrt() };
    let w = cx.param("weight", ParamRole::Weight, Shape::known(&[gates, z_channels, kernel, kernel]), init);
    let b = bias.then(|| cx.param("bias", ParamRole::Bias, Shape::known(&[gates]), init));

    let batch = t.shape.dims()[0].clone();
    let frame = |channels: usize| {
        Shape(vec![batch.clone(), Dim::Known(channels), Dim::Known(height), Dim::Known(width)])
    };
    let b = match b {
        Some(b) => Some(channel_view(cx, b, &frame(gates))?),
        None => None,
    };
    let pad = (kernel - 1) / 2;
    let conv = Op::Conv(ConvAttrs {
        stride: vec![1, 1],
        padding: vec![(pad, pad); 2],
        dilation: vec![1, 1],
        groups: 1,
    });
    let mut h = splat(cx, 0.0, &frame(hidden))?;
    let mut c = h;
    let zero_frame = if forecast > 0 { Some(splat(cx, 0.0, &frame(c_in))?) } else { None };
    let stacked =
        Shape(vec![batch.clone(), Dim::Known(1), Dim::Known(hidden), Dim::Known(height), Dim::Known(width)]);
    let mut outputs = Vec::with_capacity(if forecast > 0 { forecast } else { steps_in });
    for step in 0..steps {
        let x_t = match zero_frame {
            Some(zero) if step >= steps_in => zero,
            _ => {
                let slice = emit(cx, Op::Slice { axis: 1, start: step, end: step + 1 }, &[x])?;
                reshape_to(cx, slice, frame(c_in))?
            }
        };
        let z = emit(cx, Op::Concat { axis: 1 }, &[x_t, h])?;
        let mut g = emit(cx, conv.clone(), &[z, w])?;
        if let Some(b) = b {
            g = bin(cx, BinaryOp::Add, g, b)?;
        }
        let gate = |cx: &mut dyn Cx, k: usize, f: UnaryOp| -> Built {
            let s = emit(cx, Op::Slice { axis: 1, start: k * hidden, end: (k + 1) * hidden }, &[g])?;
            unary(cx, f, s)
        };
        let i = gate(cx, 0, UnaryOp::Sigmoid)?;
        let f = gate(cx, 1, UnaryOp::Sigmoid)?;
        let cand = gate(cx, 2, UnaryOp::Tanh)?;
        let o = gate(cx, 3, UnaryOp::Sigmoid)?;
        let kept = bin(cx, BinaryOp::Mul, f, c)?;
        let added = bin(cx, BinaryOp::Mul, i, cand)?;
        c = bin(cx, BinaryOp::Add, kept, added)?;
        let squashed = unary(cx, UnaryOp::Tanh, c)?;
        h = bin(cx, BinaryOp::Mul, o, squashed)?;
        if forecast == 0 || step >= steps_in {
            outputs.push(reshape_to(cx, h, stacked.clone())?);
        }
    }
    match outputs.as_slice() {
        [one] => Ok(*one),
        _ => emit(cx, Op::Concat { axis: 1 }, &outputs),
    }
}

fn too_large(hidden: usize) -> BuildError {
    BuildError::new(format!("`convlstm` hidden size {hidden} is too large"))
}
