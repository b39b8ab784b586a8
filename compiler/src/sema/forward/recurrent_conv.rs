//! Convolutional GRUs, unrolled over time: `convgru` and `trajgru`.
//!
//! Both are the GRU of PyTorch's `nn.GRU` with its matrix products replaced
//! by convolutions over frames `[B, C, H, W]`: an input-to-state
//! convolution of the frame and a state-to-state contribution of the
//! previous state give the reset gate `r`, the update gate `z` and the
//! candidate `n` (gate blocks in the order r, z, n). They differ only in
//! the state-to-state part: ConvGRU convolves the state; TrajGRU (Shi et
//! al. 2017) first warps it along `links` flow fields that a small
//! convolutional network predicts from the frame and the state, and mixes
//! the warped copies with a 1×1 convolution. As in `convlstm`, each step is
//! a copy of the cell in the graph, every copy reading the same parameters.

use super::activation::activation;
use super::emit::{
    bin, channel_view, check_param_size, check_size, emit, known_dim, product, reshape_to, splat, unary,
    want_f32,
};
use super::recurrent::MAX_STEPS;
use super::warp::warp;
use super::{Activation, BuildError, Built, Cx};
use crate::ir::{BinaryOp, Boundary, ConvAttrs, Dim, Init, Op, ParamRole, Shape, UnaryOp, ValueId, WarpMode};

/// The arguments `convgru` and `trajgru` share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvCell {
    /// State channels.
    pub hidden: usize,
    /// Size of the square, odd, "same" input-to-state kernel (and of
    /// ConvGRU's state-to-state kernel).
    pub kernel: usize,
    /// Steps run after the input frames, each reading a zero frame; when
    /// positive, only their states are returned.
    pub forecast: usize,
    /// Whether the convolutions have biases.
    pub bias: bool,
}

/// TrajGRU's flow network: `links` flow fields predicted through a hidden
/// layer of `channels` feature maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Links {
    pub links: usize,
    pub channels: usize,
}

/// Kernel size of both convolutions of TrajGRU's flow network (the paper's 5×5).
const FLOW_KERNEL: usize = 5;

/// Negative slope of the leaky ReLU after the flow network's hidden layer
/// (the paper's reference implementation).
const FLOW_SLOPE: f64 = 0.2;

/// A ConvGRU layer over `x: [B, T, C, H, W]` (Ballas et al. 2016, in the
/// form of PyTorch's `nn.GRU`), unrolled for `T` steps over the input frames
/// and then `cell.forecast` steps with a zero frame.
///
/// With `hidden` = h, each step computes, by `kernel`×`kernel` "same"
/// convolutions (stride 1, `(kernel − 1)/2` zeros each side),
/// `a = conv(x_t, weight_ih) + bias_ih` and
/// `b = conv(h_{t-1}, weight_hh) + bias_hh` (`[B, 3h, H, W]`, blocks r, z, n),
/// `r = σ(a_r + b_r)`, `z = σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)` and
/// `h_t = (1 − z)·n + z·h_{t-1}`, from `h_0 = 0`. The weights are
/// `weight_ih: [3h, C, k, k]` and `weight_hh: [3h, h, k, k]` and the biases
/// `[3h]`, each initialised like the PyTorch `Conv2d` it is (fan-in `C·k²`
/// and `h·k²`). The result stacks the states on axis 1: all `T` of them, or
/// the `forecast` forecast states.
pub fn convgru(cx: &mut dyn Cx, x: ValueId, cell: ConvCell) -> Built {
    unroll(cx, x, cell, None)
}

/// A TrajGRU layer over `x: [B, T, C, H, W]` (Shi et al. 2017), unrolled
/// like [`convgru`]. Each step predicts `L = links.links` flow fields from
/// the frame and the state,
/// `f = leaky_relu(conv5(concat[x_t, h_{t-1}], weight_flow) + bias_flow, 0.2)`,
/// `u = conv5(f, weight_flow_out) + bias_flow_out` (`[B, 2L, H, W]`; channels
/// `2l` and `2l + 1` are the row and column displacements `dy`, `dx` of link
/// `l`), warps the state along each, `w_l = warp(h_{t-1}, u_l)` (bilinear,
/// zeros outside), and takes the state-to-state part of the gates from the
/// 1×1 convolution `b = conv1(concat[w_0, …, w_{L−1}], weight_hh) + bias_hh`;
/// the gates and the new state are then [`convgru`]'s. `conv5` is a 5×5
/// "same" convolution. `weight_hh: [3h, L·h, 1, 1]` (input channels: link 0's
/// state channels, then link 1's, …), `weight_flow:
/// [links.channels, C + h, 5, 5]`, `weight_flow_out: [2L, links.channels, 5,
/// 5]`; the flow output layer starts at zero (so the flows start at zero and
/// every warp at the identity), the rest like PyTorch's `Conv2d`.
pub fn trajgru(cx: &mut dyn Cx, x: ValueId, cell: ConvCell, links: Links) -> Built {
    unroll(cx, x, cell, Some(links))
}

/// The sizes of a checked input `[B, T, C, H, W]`.
struct Frames {
    batch: Dim,
    steps: usize,
    channels: usize,
    height: usize,
    width: usize,
}

impl Frames {
    /// The shape `[B, channels, H, W]` of one frame or state.
    fn frame(&self, channels: usize) -> Shape {
        Shape(vec![self.batch.clone(), Dim::Known(channels), Dim::Known(self.height), Dim::Known(self.width)])
    }
}

/// Checks the input and the sizes of a `what` call.
fn frames(cx: &mut dyn Cx, x: ValueId, what: &str, cell: ConvCell) -> Result<Frames, BuildError> {
    let t = want_f32(cx, x, what, 0)?;
    if t.shape.rank() != 5 {
        let help = match t.shape.rank() {
            4 => "a single frame [B, C, H, W] is a sequence of length 1: `reshape(shape: [B, 1, C, H, W])`",
            _ => "give the tensor time, channel and spatial axes with `reshape`",
        };
        return Err(BuildError::new(format!(
            "`{what}` needs a rank-5 input [B, T, C, H, W] (a sequence of frames), got {t}"
        ))
        .at(0)
        .expected("rank 5 [B, T, C, H, W]")
        .label(format!("`{what}` needs a rank-5 input"))
        .help(help));
    }
    check_size(cell.hidden, &format!("`{what}` hidden channels"))?;
    check_size(cell.kernel, &format!("`{what}` kernel"))?;
    if cell.kernel.is_multiple_of(2) {
        let k = cell.kernel;
        return Err(BuildError::new(format!("`{what}` needs an odd kernel, got {k}"))
            .label("even kernel")
            .note("the convolutions pad (kernel − 1)/2 zeros on each side, so states keep the frame size")
            .help(format!("use `kernel: {}` or `kernel: {}`", k - 1, k + 1)));
    }
    let mut sizes = [0; 4];
    for (axis, size) in sizes.iter_mut().enumerate() {
        *size = known_dim(&t, axis + 1, what, 0)?;
        check_size(*size, &format!("axis {} of the `{what}` input", axis + 1)).map_err(|e| e.at(0))?;
    }
    let [steps, channels, height, width] = sizes;
    if steps.checked_add(cell.forecast).is_none_or(|n| n > MAX_STEPS) {
        return Err(BuildError::new(format!(
            "`{what}` would unroll {steps} input steps and {} forecast steps, \
             more than the limit of {MAX_STEPS} steps",
            cell.forecast
        ))
        .note("every step is a copy of the cell in the graph"));
    }
    Ok(Frames { batch: t.shape.dims()[0].clone(), steps, channels, height, width })
}

/// A "same" convolution with stride 1: weight `[out, in, k, k]`, odd `k`,
/// and an optional bias already laid out over `[B, out, H, W]`.
struct Conv {
    weight: ValueId,
    bias: Option<ValueId>,
    pad: usize,
}

impl Conv {
    /// `conv(x) + bias`, of `x`'s height and width.
    fn apply(&self, cx: &mut dyn Cx, x: ValueId) -> Built {
        let attrs = ConvAttrs {
            stride: vec![1, 1],
            padding: vec![(self.pad, self.pad); 2],
            dilation: vec![1, 1],
            groups: 1,
        };
        let y = emit(cx, Op::Conv(attrs), &[x, self.weight])?;
        match self.bias {
            Some(b) => bin(cx, BinaryOp::Add, y, b),
            None => Ok(y),
        }
    }
}

/// The convolution weight `what.<name>` of `shape` `[out, in, k, k]` and the
/// initialisation of it and its bias: PyTorch's `Conv2d` rule, uniform on
/// `±1/sqrt(in·k²)`, or zeros.
fn weight(
    cx: &mut dyn Cx,
    name: &str,
    shape: [usize; 4],
    zero: bool,
    what: &str,
) -> Result<(ValueId, Init), BuildError> {
    check_size(shape[0], &format!("`{what}` {name} output channels"))?;
    check_param_size(&shape, &format!("the `{what}` {name}"))?;
    let fan_in = product(&shape[1..], &format!("the `{what}` {name}"))?;
    let init = if zero { Init::Zeros } else { Init::Uniform { bound: 1.0 / (fan_in as f64).sqrt() } };
    Ok((cx.param(name, ParamRole::Weight, Shape::known(&shape), init), init))
}

/// The bias `what.<name>` `[out]`, laid out over `[B, out, H, W]`.
fn bias(cx: &mut dyn Cx, name: &str, out: usize, init: Init, fs: &Frames) -> Built {
    let b = cx.param(name, ParamRole::Bias, Shape::known(&[out]), init);
    channel_view(cx, b, &fs.frame(out))
}

/// One convolution's weight and then its bias (if `with_bias`).
fn conv(
    cx: &mut dyn Cx,
    names: [&str; 2],
    shape: [usize; 4],
    zero: bool,
    with_bias: bool,
    fs: &Frames,
    what: &str,
) -> Result<Conv, BuildError> {
    let (w, init) = weight(cx, names[0], shape, zero, what)?;
    let b = if with_bias { Some(bias(cx, names[1], shape[0], init, fs)?) } else { None };
    Ok(Conv { weight: w, bias: b, pad: (shape[2] - 1) / 2 })
}

/// TrajGRU's parameters beyond ConvGRU's: the flow network.
struct FlowNet {
    hidden: Conv,
    out: Conv,
    links: usize,
}

/// [`convgru`] (without `links`) or [`trajgru`], one copy of the cell per step.
fn unroll(cx: &mut dyn Cx, x: ValueId, cell: ConvCell, links: Option<Links>) -> Built {
    let what = if links.is_some() { "trajgru" } else { "convgru" };
    let fs = frames(cx, x, what, cell)?;
    let (hidden, k) = (cell.hidden, cell.kernel);
    let gates = hidden.checked_mul(3).ok_or_else(|| too_large(what, hidden))?;
    let z_channels = fs.channels.checked_add(hidden).ok_or_else(|| too_large(what, hidden))?;
    let ih = [gates, fs.channels, k, k];
    let hh = match links {
        None => [gates, hidden, k, k],
        Some(l) => {
            check_size(l.links, "`trajgru` links")?;
            check_size(l.channels, "`trajgru` flow channels")?;
            let warped = hidden.checked_mul(l.links).ok_or_else(|| too_large(what, hidden))?;
            [gates, warped, 1, 1]
        }
    };
    // Creation order: weight_ih, weight_hh, bias_ih, bias_hh (as PyTorch's
    // `nn.GRU`), then the flow network's weight and bias, layer by layer.
    let (w_ih, init_ih) = weight(cx, "weight_ih", ih, false, what)?;
    let (w_hh, init_hh) = weight(cx, "weight_hh", hh, false, what)?;
    let (b_ih, b_hh) = if cell.bias {
        (Some(bias(cx, "bias_ih", gates, init_ih, &fs)?), Some(bias(cx, "bias_hh", gates, init_hh, &fs)?))
    } else {
        (None, None)
    };
    let input_conv = Conv { weight: w_ih, bias: b_ih, pad: (k - 1) / 2 };
    let state_conv = Conv { weight: w_hh, bias: b_hh, pad: (hh[2] - 1) / 2 };
    let flow = match links {
        Some(l) => {
            let two = l.links.checked_mul(2).ok_or_else(|| too_large(what, hidden))?;
            let f = FLOW_KERNEL;
            let names = ["weight_flow", "bias_flow"];
            let hidden_layer = conv(cx, names, [l.channels, z_channels, f, f], false, cell.bias, &fs, what)?;
            let names = ["weight_flow_out", "bias_flow_out"];
            let out = conv(cx, names, [two, l.channels, f, f], true, cell.bias, &fs, what)?;
            Some(FlowNet { hidden: hidden_layer, out, links: l.links })
        }
        None => None,
    };

    let mut h = splat(cx, 0.0, &fs.frame(hidden))?;
    let stacked = Shape(vec![
        fs.batch.clone(),
        Dim::Known(1),
        Dim::Known(hidden),
        Dim::Known(fs.height),
        Dim::Known(fs.width),
    ]);
    let mut outputs = Vec::with_capacity(if cell.forecast > 0 { cell.forecast } else { fs.steps });
    for step in 0..fs.steps + cell.forecast {
        // The frame x_t, or `None` for a forecast step's zero frame, whose
        // input convolution is its bias alone.
        let x_t = if step < fs.steps {
            let slice = emit(cx, Op::Slice { axis: 1, start: step, end: step + 1 }, &[x])?;
            Some(reshape_to(cx, slice, fs.frame(fs.channels))?)
        } else {
            None
        };
        let a = match x_t {
            Some(x_t) => Some(input_conv.apply(cx, x_t)?),
            None => input_conv.bias,
        };
        let b = match &flow {
            None => state_conv.apply(cx, h)?,
            Some(net) => {
                let frame = match x_t {
                    Some(x_t) => x_t,
                    None => splat(cx, 0.0, &fs.frame(fs.channels))?,
                };
                let both = emit(cx, Op::Concat { axis: 1 }, &[frame, h])?;
                let features = net.hidden.apply(cx, both)?;
                let features = activation(cx, features, Activation::LeakyRelu { alpha: FLOW_SLOPE })?;
                let flows = net.out.apply(cx, features)?;
                let mut warped = Vec::with_capacity(net.links);
                for l in 0..net.links {
                    let u = emit(cx, Op::Slice { axis: 1, start: 2 * l, end: 2 * l + 2 }, &[flows])?;
                    warped.push(warp(cx, h, u, WarpMode::Bilinear, Boundary::Zeros)?);
                }
                let warped = match warped.as_slice() {
                    [one] => *one,
                    _ => emit(cx, Op::Concat { axis: 1 }, &warped)?,
                };
                state_conv.apply(cx, warped)?
            }
        };
        let block = |cx: &mut dyn Cx, v: ValueId, k: usize| -> Built {
            emit(cx, Op::Slice { axis: 1, start: k * hidden, end: (k + 1) * hidden }, &[v])
        };
        // Gate k's pre-activation: a_k + b_k (b_k alone for a zero frame
        // without bias).
        let pre = |cx: &mut dyn Cx, k: usize| -> Built {
            let b_k = block(cx, b, k)?;
            match a {
                Some(a) => {
                    let a_k = block(cx, a, k)?;
                    bin(cx, BinaryOp::Add, a_k, b_k)
                }
                None => Ok(b_k),
            }
        };
        let r = pre(cx, 0)?;
        let r = unary(cx, UnaryOp::Sigmoid, r)?;
        let z = pre(cx, 1)?;
        let z = unary(cx, UnaryOp::Sigmoid, z)?;
        let b_n = block(cx, b, 2)?;
        let mut n = bin(cx, BinaryOp::Mul, r, b_n)?;
        if let Some(a) = a {
            let a_n = block(cx, a, 2)?;
            n = bin(cx, BinaryOp::Add, a_n, n)?;
        }
        let n = unary(cx, UnaryOp::Tanh, n)?;
        // (1 − z)·n + z·h as n + z·(h − n).
        let d = bin(cx, BinaryOp::Sub, h, n)?;
        let d = bin(cx, BinaryOp::Mul, z, d)?;
        h = bin(cx, BinaryOp::Add, n, d)?;
        if cell.forecast == 0 || step >= fs.steps {
            outputs.push(reshape_to(cx, h, stacked.clone())?);
        }
    }
    match outputs.as_slice() {
        [one] => Ok(*one),
        _ => emit(cx, Op::Concat { axis: 1 }, &outputs),
    }
}

fn too_large(what: &str, hidden: usize) -> BuildError {
    BuildError::new(format!("`{what}` hidden size {hidden} is too large"))
}
