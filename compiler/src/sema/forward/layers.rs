//! Layers with weights: `dense`, `conv1d/2d/3d` and `conv_transpose`.
//!
//! Parameters use PyTorch's layouts (`[out, in]`, `[out_c, in_c, *kernel]`,
//! `[in_c, out_c, *kernel]`) and default initialisation: weight and bias
//! uniform on `±1/sqrt(fan_in)`, where `fan_in` is what PyTorch computes from
//! the weight's dimension 1 and kernel (for a transposed convolution that is
//! `out_c · prod(kernel)`, as in `torch.nn.ConvTranspose2d`). Each call
//! creates its weight, then its bias.

use super::emit::{
    broadcast, channel_view, check_param_size, check_size, checked_dim, emit, known_dim, product, reshape_to,
    shape, want_f32,
};
use super::slicing::{check_width, pad_axis, PadMode};
use super::{BuildError, Built, Cx, Padding};
use crate::ir::{BinaryOp, ConvAttrs, Dim, Init, Op, ParamRole, Shape, Type, ValueId};

/// `y = x · Wᵀ + b` over the last axis (PyTorch `nn.Linear`); leading axes
/// are batch axes.
pub fn dense(cx: &mut dyn Cx, x: ValueId, units: usize, bias: bool) -> Built {
    dense_init(cx, x, units, bias, DenseInit::Uniform)
}

/// How `dense` initialises its weight and bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseInit {
    /// PyTorch's default: uniform on ±1/√fan_in.
    Uniform,
    /// Zeros: the layer starts as the constant 0, e.g. the last layer of a
    /// spatial transformer's localisation network, whose output is added
    /// to the identity transform (`eye(2, 3)`).
    Zeros,
}

/// `dense` with the initialisation `init` of its weight and bias.
pub fn dense_init(cx: &mut dyn Cx, x: ValueId, units: usize, bias: bool, init: DenseInit) -> Built {
    let t = want_f32(cx, x, "dense", 0)?;
    let r = t.shape.rank();
    if r == 0 {
        return Err(BuildError::new(format!(
            "`dense` needs an input with at least 1 axis (features last), got {t}"
        ))
        .at(0));
    }
    let n_in = known_dim(&t, r - 1, "dense", 0)?;
    check_size(n_in, "the input feature count of `dense`").map_err(|e| e.at(0))?;
    check_size(units, "`dense` units")?;
    check_param_size(&[units, n_in], "the `dense` weight")?;
    let init = match init {
        DenseInit::Uniform => Init::Uniform { bound: 1.0 / (n_in as f64).sqrt() },
        DenseInit::Zeros => Init::Zeros,
    };
    let w = cx.param("weight", ParamRole::Weight, Shape::known(&[units, n_in]), init);
    let b = bias.then(|| cx.param("bias", ParamRole::Bias, Shape::known(&[units]), init));
    let wt = emit(cx, Op::Permute { axes: vec![1, 0] }, &[w])?;
    let y = if r == 1 {
        let row = reshape_to(cx, x, Shape::known(&[1, n_in]))?;
        let y = emit(cx, Op::MatMul, &[row, wt])?;
        reshape_to(cx, y, Shape::known(&[units]))?
    } else {
        let mut dims = t.shape.dims()[..r - 2].to_vec();
        dims.extend([Dim::Known(n_in), Dim::Known(units)]);
        let wt = broadcast(cx, wt, &Shape(dims))?;
        emit(cx, Op::MatMul, &[x, wt])?
    };
    match b {
        Some(b) => add_bias_last(cx, y, b),
        None => Ok(y),
    }
}

fn add_bias_last(cx: &mut dyn Cx, y: ValueId, b: ValueId) -> Built {
    let s = shape(cx, y);
    let b = broadcast(cx, b, &s)?;
    emit(cx, Op::Binary(BinaryOp::Add), &[y, b])
}

fn add_bias_channel(cx: &mut dyn Cx, y: ValueId, b: ValueId) -> Built {
    let s = shape(cx, y);
    let b = channel_view(cx, b, &s)?;
    emit(cx, Op::Binary(BinaryOp::Add), &[y, b])
}

/// Checks the per-spatial-dimension attribute lists and the input of a
/// convolution; returns the input channel count and spatial sizes.
fn conv_input(
    cx: &mut dyn Cx,
    name: &str,
    x: ValueId,
    spatial: usize,
    lists: &[(&str, &[usize])],
) -> Result<(usize, Vec<usize>), BuildError> {
    if !(1..=3).contains(&spatial) {
        return Err(BuildError::new(format!(
            "convolutions have 1, 2 or 3 spatial dimensions, got {spatial}"
        )));
    }
    for (what, list) in lists {
        if list.len() != spatial {
            return Err(BuildError::new(format!(
                "`{name}` {what} needs {spatial} value(s), one per spatial dimension, got {}",
                list.len()
            )));
        }
        if *what != "padding" {
            for &n in *list {
                check_size(n, &format!("`{name}` {what}"))?;
            }
        }
    }
    let t = want_f32(cx, x, name, 0)?;
    if t.shape.rank() != spatial + 2 {
        return Err(BuildError::new(format!(
            "`{name}` needs a rank-{} input {}, got {t}",
            spatial + 2,
            layout(spatial)
        ))
        .at(0)
        .expected(format!("rank {} {}", spatial + 2, layout(spatial)))
        .label(format!("`{name}` needs a rank-{} input", spatial + 2))
        .help(rank_help(spatial, &t)));
    }
    let c = known_dim(&t, 1, name, 0)?;
    let sizes = (0..spatial).map(|i| known_dim(&t, 2 + i, name, 0)).collect::<Result<Vec<_>, _>>()?;
    Ok((c, sizes))
}

/// How to get a convolution input of the right rank from `t`.
fn rank_help(spatial: usize, t: &Type) -> String {
    let want = spatial + 2;
    match t.shape.rank() {
        r if r < want => format!(
            "give the tensor channel and spatial axes with `reshape`, e.g. `reshape(shape: {})`",
            layout(spatial)
        ),
        r if r <= 5 => format!("a rank-{r} input [B, C, ...] takes `conv{}d`", r - 2),
        _ => "merge axes with `reshape` first".to_string(),
    }
}

fn layout(spatial: usize) -> &'static str {
    match spatial {
        1 => "[B, C, L]",
        2 => "[B, C, H, W]",
        _ => "[B, C, D, H, W]",
    }
}

/// The (lo, hi) zero padding of each spatial dimension.
///
/// `same` follows TF/Keras: output size `ceil(in / stride)`, total padding
/// `max((out - 1)·stride + extent - in, 0)` split `lo = total / 2`,
/// `hi = total - lo` (the extra zero goes after, as in TF).
fn conv_padding(
    pad: &Padding,
    sizes: &[usize],
    extents: &[usize],
    stride: &[usize],
) -> Result<Vec<(usize, usize)>, BuildError> {
    match pad {
        Padding::Valid => Ok(vec![(0, 0); sizes.len()]),
        Padding::Explicit(p) => {
            if p.len() != sizes.len() {
                return Err(BuildError::new(format!(
                    "padding needs {} value(s), one per spatial dimension, got {}",
                    sizes.len(),
                    p.len()
                )));
            }
            for &n in p {
                checked_dim(Some(n), "padding")?;
            }
            Ok(p.iter().map(|&n| (n, n)).collect())
        }
        Padding::Same => sizes
            .iter()
            .zip(extents)
            .zip(stride)
            .map(|((&n, &e), &s)| {
                let out = n.div_ceil(s);
                let needed = out.saturating_sub(1).checked_mul(s).and_then(|v| v.checked_add(e));
                let total = checked_dim(needed, "padding")?.saturating_sub(n);
                Ok((total / 2, total - total / 2))
            })
            .collect(),
    }
}

/// Convolution (cross-correlation, PyTorch `nn.Conv{1,2,3}d`) of `[B, C, *S]`
/// with `channels` filters of size `kernel`. `pad` gives the amount of
/// padding, `modes` (one per spatial axis) how it is filled: zeros are the
/// convolution's own padding; any other mode pads the input explicitly
/// ([`super::pad`]'s rule per axis, PyTorch's `padding_mode`) and the
/// convolution then pads nothing along that axis.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    cx: &mut dyn Cx,
    x: ValueId,
    spatial: usize,
    channels: usize,
    kernel: &[usize],
    stride: &[usize],
    pad: &Padding,
    modes: &[PadMode],
    dilation: &[usize],
    bias: bool,
) -> Built {
    let name = format!("conv{spatial}d");
    let lists = [("kernel", kernel), ("stride", stride), ("dilation", dilation)];
    let (c_in, sizes) = conv_input(cx, &name, x, spatial, &lists)?;
    if modes.len() != spatial {
        return Err(BuildError::new(format!(
            "`{name}` pad_mode needs {spatial} value(s), one per spatial dimension, got {}",
            modes.len()
        )));
    }
    check_size(channels, &format!("`{name}` channels"))?;
    let extents = kernel
        .iter()
        .zip(dilation)
        .map(|(&k, &d)| checked_dim((k - 1).checked_mul(d).and_then(|v| v.checked_add(1)), "kernel extent"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut padding = conv_padding(pad, &sizes, &extents, stride)?;
    for i in 0..spatial {
        let padded = checked_dim(sizes[i].checked_add(padding[i].0 + padding[i].1), "padded input")?;
        if padded < extents[i] {
            let t = cx.graph().ty(x).clone();
            return Err(BuildError::new(format!(
                "`{name}` kernel of extent {} does not fit axis {} of {t} (size {} after padding)",
                extents[i],
                i + 2,
                padded
            ))
            .at(0)
            .label("the input is too small for this kernel")
            .help("use `pad: same` or a smaller kernel"));
        }
    }
    let tx = cx.graph().ty(x).clone();
    for (i, (&mode, &width)) in modes.iter().zip(&padding).enumerate() {
        if mode != PadMode::Zeros && width != (0, 0) {
            check_width(&tx, 2 + i, width, mode, &name)?;
        }
    }
    let mut x = x;
    for (i, (&mode, (lo, hi))) in modes.iter().zip(padding.iter_mut()).enumerate() {
        if mode != PadMode::Zeros {
            x = pad_axis(cx, x, 2 + i, *lo, *hi, mode, 0.0, &name)?;
            (*lo, *hi) = (0, 0);
        }
    }
    let fan_in = product(&[&[c_in][..], kernel].concat(), "the kernel")?;
    let init = Init::Uniform { bound: 1.0 / (fan_in as f64).sqrt() };
    let mut wshape = vec![channels, c_in];
    wshape.extend_from_slice(kernel);
    check_param_size(&wshape, &format!("the `{name}` weight"))?;
    let w = cx.param("weight", ParamRole::Weight, Shape::known(&wshape), init);
    let b = bias.then(|| cx.param("bias", ParamRole::Bias, Shape::known(&[channels]), init));
    let op = Op::Conv(ConvAttrs { stride: stride.to_vec(), padding, dilation: dilation.to_vec(), groups: 1 });
    let y = emit(cx, op, &[x, w])?;
    match b {
        Some(b) => add_bias_channel(cx, y, b),
        None => Ok(y),
    }
}

/// Transposed convolution (PyTorch `nn.ConvTranspose{1,2,3}d`, dilation 1,
/// no output padding): output size `(S - 1)·stride - 2·pad + kernel`.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose(
    cx: &mut dyn Cx,
    x: ValueId,
    spatial: usize,
    channels: usize,
    kernel: &[usize],
    stride: &[usize],
    pad: &[usize],
    bias: bool,
) -> Built {
    let name = format!("conv_transpose{spatial}d");
    let lists = [("kernel", kernel), ("stride", stride), ("padding", pad)];
    let (c_in, sizes) = conv_input(cx, &name, x, spatial, &lists)?;
    check_size(channels, &format!("`{name}` channels"))?;
    for i in 0..spatial {
        check_size(sizes[i], &format!("axis {} of the `{name}` input", i + 2)).map_err(|e| e.at(0))?;
        let full = (sizes[i] - 1).checked_mul(stride[i]).and_then(|v| v.checked_add(kernel[i]));
        let full = checked_dim(full, &format!("the `{name}` output"))?;
        let cut = pad[i].saturating_mul(2);
        if full <= cut {
            let t = Type::f32(shape(cx, x));
            return Err(BuildError::new(format!(
                "`{name}` padding {} removes the whole output along axis {} of {t}",
                pad[i],
                i + 2
            ))
            .at(0));
        }
    }
    let fan_in = product(&[&[channels][..], kernel].concat(), "the kernel")?;
    let init = Init::Uniform { bound: 1.0 / (fan_in as f64).sqrt() };
    let mut wshape = vec![c_in, channels];
    wshape.extend_from_slice(kernel);
    check_param_size(&wshape, &format!("the `{name}` weight"))?;
    let w = cx.param("weight", ParamRole::Weight, Shape::known(&wshape), init);
    let b = bias.then(|| cx.param("bias", ParamRole::Bias, Shape::known(&[channels]), init));
    let op = Op::ConvTranspose {
        conv: ConvAttrs {
            stride: stride.to_vec(),
            padding: pad.iter().map(|&p| (p, p)).collect(),
            dilation: vec![1; spatial],
            groups: 1,
        },
        output_padding: vec![0; spatial],
    };
    let y = emit(cx, op, &[x, w])?;
    match b {
        Some(b) => add_bias_channel(cx, y, b),
        None => Ok(y),
    }
}
