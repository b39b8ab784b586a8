//! Type rules: the result type of every primitive from its operand types.
//!
//! This is the single definition of what each op accepts. The graph builder
//! ([`super::Graph::add`]) and the verifier both call [`infer`], so a graph
//! that verifies is one the builder could have built.

use super::op::{ConvAttrs, InputKind, LstmSizes, Op, WindowAttrs};
use super::types::{DType, Dim, Shape, Type};

type R = Result<Type, String>;

fn arity(op: &Op, args: &[&Type], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("`{}` takes {n} operand(s), got {}", op.mnemonic(), args.len()));
    }
    Ok(())
}

fn want_dtype(op: &Op, t: &Type, d: DType) -> Result<(), String> {
    if t.dtype != d {
        return Err(format!("`{}` needs {} operands, got {t}", op.mnemonic(), d.name()));
    }
    Ok(())
}

fn known(op: &Op, d: &Dim, what: &str) -> Result<usize, String> {
    d.known().ok_or_else(|| format!("`{}` needs a known {what}, got symbolic `{d}`", op.mnemonic()))
}

fn check_axes(op: &Op, axes: &[usize], rank: usize) -> Result<(), String> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= rank {
            return Err(format!("`{}`: axis {a} out of range for rank {rank}", op.mnemonic()));
        }
        if i > 0 && axes[i - 1] >= a {
            return Err(format!("`{}`: axes must be sorted and distinct, got {axes:?}", op.mnemonic()));
        }
    }
    Ok(())
}

/// Element count of a shape as (known product, sorted symbolic names).
fn count(shape: &Shape) -> (usize, Vec<&str>) {
    let mut n = 1usize;
    let mut syms = vec![];
    for d in shape.dims() {
        match d {
            Dim::Known(k) => n = n.saturating_mul(*k),
            Dim::Sym(s) => syms.push(s.as_str()),
        }
    }
    syms.sort_unstable();
    (n, syms)
}

/// Whether `from` broadcasts to `to` under NumPy's rules.
pub fn broadcasts_to(from: &Shape, to: &Shape) -> bool {
    if from.rank() > to.rank() {
        return false;
    }
    let off = to.rank() - from.rank();
    from.dims().iter().enumerate().all(|(i, d)| *d == to.dims()[i + off] || *d == Dim::Known(1))
}

/// The NumPy broadcast of two shapes, if they are compatible.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Option<Shape> {
    let r = a.rank().max(b.rank());
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.rank() >= r { Some(&a.dims()[i + a.rank() - r]) } else { None };
        let db = if i + b.rank() >= r { Some(&b.dims()[i + b.rank() - r]) } else { None };
        let d = match (da, db) {
            (Some(x), None) | (None, Some(x)) => x.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(Dim::Known(1)), Some(y)) => y.clone(),
            (Some(x), Some(Dim::Known(1))) => x.clone(),
            _ => return None,
        };
        out.push(d);
    }
    Some(Shape(out))
}

/// Output size of a sliding window along one axis, or an error if the window
/// does not fit.
fn window_out(
    op: &Op,
    size: usize,
    lo: usize,
    hi: usize,
    extent: usize,
    stride: usize,
) -> Result<usize, String> {
    if stride == 0 {
        return Err(format!("`{}`: stride must be positive", op.mnemonic()));
    }
    let padded = size.checked_add(lo).and_then(|n| n.checked_add(hi)).ok_or_else(|| overflow(op))?;
    if padded < extent {
        return Err(format!(
            "`{}`: window of extent {extent} does not fit input size {size} (padded to {padded})",
            op.mnemonic()
        ));
    }
    Ok((padded - extent) / stride + 1)
}

fn overflow(op: &Op) -> String {
    format!("`{}`: sizes overflow", op.mnemonic())
}

fn spatial_params(op: &Op, rank: usize, lens: &[usize]) -> Result<usize, String> {
    let s = lens[0];
    if s == 0 || lens.iter().any(|&l| l != s) {
        return Err(format!(
            "`{}`: per-dimension attributes must have equal, non-zero length",
            op.mnemonic()
        ));
    }
    if rank != s + 2 {
        return Err(format!(
            "`{}` with {s} spatial dimension(s) needs a rank-{} operand [N, C, ...], got rank {rank}",
            op.mnemonic(),
            s + 2
        ));
    }
    Ok(s)
}

/// Checks the image `x: f32[N, C, H, W]` and the displacement field
/// `flow: f32[N, 2, H, W]` of a warp op (or its gradients).
fn warp_operands(op: &Op, x: &Type, flow: &Type) -> Result<(), String> {
    want_dtype(op, x, DType::F32)?;
    want_dtype(op, flow, DType::F32)?;
    let (xs, fs) = (x.shape.dims(), flow.shape.dims());
    if xs.len() != 4 || fs.len() != 4 || fs[1] != Dim::Known(2) || fs[0] != xs[0] || fs[2..] != xs[2..] {
        return Err(format!(
            "`{}` needs an image [N, C, H, W] and a flow [N, 2, H, W], got {x} and {flow}",
            op.mnemonic()
        ));
    }
    Ok(())
}

/// The result type of `op` applied to operands of types `args`.
/// A normalisation's `eps`: finite and not negative.
fn want_eps(op: &Op, eps: f64) -> Result<(), String> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(format!("`{}` needs eps >= 0, got {eps}", op.mnemonic()))
    }
}

pub fn infer(op: &Op, args: &[&Type]) -> R {
    match op {
        Op::Input { .. } | Op::Const { .. } => {
            Err(format!("`{}` is a leaf: its type is declared, not inferred", op.mnemonic()))
        }
        Op::Unary(_) => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            Ok(args[0].clone())
        }
        Op::Binary(_) => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[1], DType::F32)?;
            if args[0].shape != args[1].shape {
                return Err(format!(
                    "`{}` needs operands of equal shape, got {} and {}",
                    op.mnemonic(),
                    args[0].shape,
                    args[1].shape
                ));
            }
            Ok(args[0].clone())
        }
        Op::Compare(_) => {
            arity(op, args, 2)?;
            if args[0] != args[1] {
                return Err(format!(
                    "`{}` needs operands of equal type, got {} and {}",
                    op.mnemonic(),
                    args[0],
                    args[1]
                ));
            }
            Ok(Type::new(DType::Bool, args[0].shape.clone()))
        }
        Op::Select => {
            arity(op, args, 3)?;
            want_dtype(op, args[0], DType::Bool)?;
            if args[1] != args[2] || args[0].shape != args[1].shape {
                return Err(format!(
                    "`select` needs bool[S], T[S], T[S], got {}, {}, {}",
                    args[0], args[1], args[2]
                ));
            }
            Ok(args[1].clone())
        }
        Op::Cast { to } => {
            arity(op, args, 1)?;
            Ok(Type::new(*to, args[0].shape.clone()))
        }
        Op::Broadcast { shape } => {
            arity(op, args, 1)?;
            if !broadcasts_to(&args[0].shape, shape) {
                return Err(format!("cannot broadcast {} to {shape}", args[0].shape));
            }
            Ok(Type::new(args[0].dtype, shape.clone()))
        }
        Op::Reshape { shape } => {
            arity(op, args, 1)?;
            if count(&args[0].shape) != count(shape) {
                return Err(format!("cannot reshape {} to {shape}: element counts differ", args[0].shape));
            }
            Ok(Type::new(args[0].dtype, shape.clone()))
        }
        Op::Permute { axes } => {
            arity(op, args, 1)?;
            let r = args[0].shape.rank();
            let mut seen = vec![false; r];
            if axes.len() != r || axes.iter().any(|&a| a >= r || std::mem::replace(&mut seen[a], true)) {
                return Err(format!("`permute`: {axes:?} is not a permutation of the {r} axes"));
            }
            let dims = axes.iter().map(|&a| args[0].shape.dims()[a].clone()).collect();
            Ok(Type::new(args[0].dtype, Shape(dims)))
        }
        Op::Slice { axis, start, end } => {
            arity(op, args, 1)?;
            let sh = &args[0].shape;
            if *axis >= sh.rank() {
                return Err(format!("`slice`: axis {axis} out of range for rank {}", sh.rank()));
            }
            let n = known(op, &sh.dims()[*axis], "size on the sliced axis")?;
            if start > end || *end > n {
                return Err(format!("`slice`: range {start}..{end} out of bounds for size {n}"));
            }
            let mut dims = sh.0.clone();
            dims[*axis] = Dim::Known(end - start);
            Ok(Type::new(args[0].dtype, Shape(dims)))
        }
        Op::Pad { axis, lo, hi } => {
            arity(op, args, 1)?;
            let sh = &args[0].shape;
            if *axis >= sh.rank() {
                return Err(format!("`pad`: axis {axis} out of range for rank {}", sh.rank()));
            }
            let n = known(op, &sh.dims()[*axis], "size on the padded axis")?;
            let mut dims = sh.0.clone();
            let padded = n.checked_add(*lo).and_then(|n| n.checked_add(*hi)).ok_or_else(|| overflow(op))?;
            dims[*axis] = Dim::Known(padded);
            Ok(Type::new(args[0].dtype, Shape(dims)))
        }
        Op::Concat { axis } => {
            if args.is_empty() {
                return Err("`concat` needs at least one operand".into());
            }
            let first = args[0];
            if *axis >= first.shape.rank() {
                return Err(format!("`concat`: axis {axis} out of range for rank {}", first.shape.rank()));
            }
            let mut total = 0usize;
            for t in args {
                if t.dtype != first.dtype || t.shape.rank() != first.shape.rank() {
                    return Err(format!("`concat` operands differ in type: {first} and {t}"));
                }
                for (i, (a, b)) in t.shape.dims().iter().zip(first.shape.dims()).enumerate() {
                    if i != *axis && a != b {
                        return Err(format!(
                            "`concat` along axis {axis} needs equal sizes on the other axes, got {} and {}",
                            first.shape, t.shape
                        ));
                    }
                }
                let n = known(op, &t.shape.dims()[*axis], "size on the concatenation axis")?;
                total = total.checked_add(n).ok_or_else(|| overflow(op))?;
            }
            let mut dims = first.shape.0.clone();
            dims[*axis] = Dim::Known(total);
            Ok(Type::new(first.dtype, Shape(dims)))
        }
        Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            check_axes(op, axes, args[0].shape.rank())?;
            let dims = args[0]
                .shape
                .dims()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, d)| d.clone());
            Ok(Type::f32(Shape(dims.collect())))
        }
        Op::ArgMax { axis } => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            check_axes(op, &[*axis], args[0].shape.rank())?;
            let mut dims = args[0].shape.0.clone();
            dims.remove(*axis);
            Ok(Type::new(DType::I32, Shape(dims)))
        }
        Op::Size { axes } => {
            arity(op, args, 1)?;
            check_axes(op, axes, args[0].shape.rank())?;
            Ok(Type::scalar(DType::F32))
        }
        Op::MatMul => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[1], DType::F32)?;
            let (a, b) = (&args[0].shape, &args[1].shape);
            let r = a.rank();
            if r < 2
                || b.rank() != r
                || a.dims()[..r - 2] != b.dims()[..r - 2]
                || a.dims()[r - 1] != b.dims()[r - 2]
            {
                return Err(format!(
                    "`matmul` needs [..., M, K] and [..., K, N] with equal leading dimensions, got {a} and {b}"
                ));
            }
            let mut dims = a.0.clone();
            dims[r - 1] = b.dims()[r - 1].clone();
            Ok(Type::f32(Shape(dims)))
        }
        Op::MatMulSum => {
            let batched = infer(&Op::MatMul, args).map_err(|e| e.replace("`matmul`", "`matmul_sum`"))?;
            let dims = batched.shape.dims();
            if dims.len() < 3 {
                return Err(format!("`matmul_sum` needs a batch dimension, got {} and {}", args[0], args[1]));
            }
            Ok(Type::f32(Shape(dims[dims.len() - 2..].to_vec())))
        }
        Op::Conv(ConvAttrs { stride, padding, dilation, groups }) => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[1], DType::F32)?;
            let (x, w) = (&args[0].shape, &args[1].shape);
            let s = spatial_params(op, x.rank(), &[stride.len(), padding.len(), dilation.len()])?;
            if w.rank() != s + 2 {
                return Err(format!("`conv` weight must have rank {}, got {w}", s + 2));
            }
            let c = known(op, &x.dims()[1], "channel count")?;
            let o = known(op, &w.dims()[0], "output channel count")?;
            let wc = known(op, &w.dims()[1], "weight input channel count")?;
            let expects = wc.checked_mul(*groups).ok_or_else(|| overflow(op))?;
            if *groups == 0 || c % groups != 0 || o % groups != 0 || expects != c {
                return Err(format!(
                    "`conv` with {groups} group(s): input {x} has {c} channels but weight {w} expects {expects}"
                ));
            }
            let mut dims = vec![x.dims()[0].clone(), Dim::Known(o)];
            for i in 0..s {
                let size = known(op, &x.dims()[2 + i], "spatial size")?;
                let k = known(op, &w.dims()[2 + i], "kernel size")?;
                if dilation[i] == 0 || k == 0 {
                    return Err("`conv`: kernel size and dilation must be positive".into());
                }
                let extent = dilation[i]
                    .checked_mul(k - 1)
                    .and_then(|n| n.checked_add(1))
                    .ok_or_else(|| overflow(op))?;
                dims.push(Dim::Known(window_out(op, size, padding[i].0, padding[i].1, extent, stride[i])?));
            }
            Ok(Type::f32(Shape(dims)))
        }
        Op::ConvTranspose { conv: ConvAttrs { stride, padding, dilation, groups }, output_padding } => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[1], DType::F32)?;
            let (x, w) = (&args[0].shape, &args[1].shape);
            let s = spatial_params(
                op,
                x.rank(),
                &[stride.len(), padding.len(), output_padding.len(), dilation.len()],
            )?;
            if w.rank() != s + 2 {
                return Err(format!("`conv_transpose` weight must have rank {}, got {w}", s + 2));
            }
            let c = known(op, &x.dims()[1], "channel count")?;
            let wc = known(op, &w.dims()[0], "weight input channel count")?;
            let og = known(op, &w.dims()[1], "weight output channel count")?;
            if *groups == 0 || c != wc || c % groups != 0 {
                return Err(format!(
                    "`conv_transpose`: input {x} has {c} channels but weight {w} expects {wc}"
                ));
            }
            let out_c = og.checked_mul(*groups).ok_or_else(|| overflow(op))?;
            let mut dims = vec![x.dims()[0].clone(), Dim::Known(out_c)];
            for i in 0..s {
                let size = known(op, &x.dims()[2 + i], "spatial size")?;
                let k = known(op, &w.dims()[2 + i], "kernel size")?;
                if stride[i] == 0 || dilation[i] == 0 || k == 0 || size == 0 {
                    return Err("`conv_transpose`: sizes, strides and dilations must be positive".into());
                }
                if output_padding[i] >= stride[i].max(dilation[i]) {
                    return Err(
                        "`conv_transpose`: output padding must be smaller than stride or dilation".into()
                    );
                }
                let full = (size - 1)
                    .checked_mul(stride[i])
                    .and_then(|n| n.checked_add(dilation[i].checked_mul(k - 1)?))
                    .and_then(|n| n.checked_add(1 + output_padding[i]))
                    .ok_or_else(|| overflow(op))?;
                let cut = padding[i].0.checked_add(padding[i].1).ok_or_else(|| overflow(op))?;
                if full <= cut {
                    return Err("`conv_transpose`: padding removes the whole output".into());
                }
                dims.push(Dim::Known(full - cut));
            }
            Ok(Type::f32(Shape(dims)))
        }
        Op::Pool(WindowAttrs { window, stride, padding, .. }) => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            let x = &args[0].shape;
            let s = spatial_params(op, x.rank(), &[window.len(), stride.len(), padding.len()])?;
            let mut dims = x.0[..2].to_vec();
            for i in 0..s {
                let size = known(op, &x.dims()[2 + i], "spatial size")?;
                if window[i] == 0 {
                    return Err(format!("`{}`: window must be positive", op.mnemonic()));
                }
                dims.push(Dim::Known(window_out(
                    op,
                    size,
                    padding[i].0,
                    padding[i].1,
                    window[i],
                    stride[i],
                )?));
            }
            Ok(Type::f32(Shape(dims)))
        }
        Op::Resize { size } => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            let x = &args[0].shape;
            if size.is_empty() || x.rank() != size.len() + 2 || size.contains(&0) {
                return Err(format!("`resize` to {size:?} needs a rank-{} operand, got {x}", size.len() + 2));
            }
            for d in &x.dims()[2..] {
                known(op, d, "spatial size")?;
            }
            let mut dims = x.0[..2].to_vec();
            dims.extend(size.iter().map(|&n| Dim::Known(n)));
            Ok(Type::f32(Shape(dims)))
        }
        Op::ConvWeightGrad { conv, kernel } => {
            let groups = conv.groups;
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[1], DType::F32)?;
            let (x, dy) = (&args[0].shape, &args[1].shape);
            if x.rank() < 3 || dy.rank() != x.rank() || kernel.len() != x.rank() - 2 {
                return Err(format!(
                    "`conv_weight_grad` needs [N, C, *S] and [N, O, *S'] with {} kernel sizes, got {x} and {dy}",
                    kernel.len()
                ));
            }
            let c = known(op, &x.dims()[1], "channel count")?;
            let o = known(op, &dy.dims()[1], "output channel count")?;
            if groups == 0 || c % groups != 0 || o % groups != 0 {
                return Err(format!("`conv_weight_grad`: {c} and {o} channels do not fit {groups} group(s)"));
            }
            let mut w = vec![Dim::Known(o), Dim::Known(c / groups)];
            w.extend(kernel.iter().map(|&k| Dim::Known(k)));
            let w = Type::f32(Shape(w));
            let y = infer(&Op::Conv(conv.clone()), &[args[0], &w])?;
            if y != *args[1] {
                return Err(format!(
                    "`conv_weight_grad`: the output gradient must have the convolution's output type {y}, got {}",
                    args[1]
                ));
            }
            Ok(w)
        }
        Op::PoolGrad(window) => {
            arity(op, args, 2)?;
            let y = infer(&Op::Pool(window.clone()), &[args[0]])?;
            if y != *args[1] {
                return Err(format!(
                    "`{}`: the output gradient must have the pooling's output type {y}, got {}",
                    op.mnemonic(),
                    args[1]
                ));
            }
            Ok(args[0].clone())
        }
        Op::ResizeGrad { size } => infer(&Op::Resize { size: size.clone() }, args),
        Op::Warp(_) => {
            arity(op, args, 2)?;
            warp_operands(op, args[0], args[1])?;
            Ok(args[0].clone())
        }
        Op::WarpGradInput(_) => {
            arity(op, args, 2)?;
            warp_operands(op, args[1], args[0])?;
            Ok(args[1].clone())
        }
        Op::WarpGradFlow(_) => {
            arity(op, args, 3)?;
            warp_operands(op, args[0], args[1])?;
            if args[2] != args[0] {
                return Err(format!(
                    "`{}`: the output gradient must have the warped input's type {}, got {}",
                    op.mnemonic(),
                    args[0],
                    args[2]
                ));
            }
            Ok(args[1].clone())
        }
        Op::OneHot { classes } => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::I32)?;
            let mut dims = args[0].shape.0.clone();
            dims.push(Dim::Known(*classes));
            Ok(Type::f32(Shape(dims)))
        }
        Op::RngUniform { shape, .. } => {
            arity(op, args, 1)?;
            if *args[0] != Type::new(DType::I32, Shape::known(&[2])) {
                return Err(format!("`rng_uniform` needs an i32[2] key, got {}", args[0]));
            }
            Ok(Type::f32(shape.clone()))
        }
        Op::Gather { axis } => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            check_axes(op, &[*axis], args[0].shape.rank())?;
            let e = index_length(op, args[1])?;
            let mut dims = args[0].shape.0.clone();
            dims[*axis] = e.clone();
            Ok(Type::f32(Shape(dims)))
        }
        Op::ScatterSum { axis, size } | Op::ScatterMax { axis, size } => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            scattered(op, args[0], args[1], *axis)?;
            let mut dims = args[0].shape.0.clone();
            dims[*axis] = Dim::Known(*size);
            Ok(Type::f32(Shape(dims)))
        }
        Op::Softmax => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            if args[0].shape.rank() == 0 {
                return Err(format!("`softmax` needs a tensor with a last axis, got {}", args[0]));
            }
            known(op, &args[0].shape.dims()[args[0].shape.rank() - 1], "last axis")?;
            Ok(args[0].clone())
        }
        Op::SoftmaxGrad => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            if args[0] != args[1] || args[0].shape.rank() == 0 {
                return Err(format!(
                    "`softmax_grad` needs the weights and their cotangent, two f32 tensors of one shape \
                     with a last axis, got {} and {}",
                    args[0], args[1]
                ));
            }
            known(op, &args[0].shape.dims()[args[0].shape.rank() - 1], "last axis")?;
            Ok(args[0].clone())
        }
        Op::Standardize { eps } => {
            arity(op, args, 1)?;
            want_dtype(op, args[0], DType::F32)?;
            want_eps(op, *eps)?;
            if args[0].shape.rank() == 0 {
                return Err(format!("`standardize` needs a tensor with a last axis, got {}", args[0]));
            }
            known(op, &args[0].shape.dims()[args[0].shape.rank() - 1], "last axis")?;
            Ok(args[0].clone())
        }
        Op::StandardizeGrad { eps } => {
            arity(op, args, 2)?;
            want_dtype(op, args[0], DType::F32)?;
            want_eps(op, *eps)?;
            if args[0] != args[1] || args[0].shape.rank() == 0 {
                return Err(format!(
                    "`standardize_grad` needs the operand and the result's cotangent, two f32 tensors of \
                     one shape with a last axis, got {} and {}",
                    args[0], args[1]
                ));
            }
            known(op, &args[0].shape.dims()[args[0].shape.rank() - 1], "last axis")?;
            Ok(args[0].clone())
        }
        Op::ScatterMaxGrad { axis } => {
            arity(op, args, 3)?;
            want_dtype(op, args[0], DType::F32)?;
            want_dtype(op, args[2], DType::F32)?;
            scattered(op, args[0], args[1], *axis)?;
            let (x, dy) = (&args[0].shape, &args[2].shape);
            let off_axis_equal = dy.rank() == x.rank()
                && x.dims().iter().zip(dy.dims()).enumerate().all(|(i, (a, b))| i == *axis || a == b);
            if !off_axis_equal {
                return Err(format!(
                    "`scatter_max_grad`: the output gradient {dy} must have the shape of {x} \
                     except on axis {axis}"
                ));
            }
            Ok(args[0].clone())
        }
        Op::Lstm { .. } => {
            arity(op, args, 4)?;
            let LstmSizes { hidden, features } = lstm_operands(op, args[1], args[2], args[3])?;
            let dims = args[0].shape.dims();
            if args[0].dtype != DType::F32
                || args[0].shape.rank() != 3
                || dims[1] != args[2].shape.dims()[0]
                || dims[2] != Dim::Known(features)
            {
                return Err(format!(
                    "`{}` needs inputs f32[T, B, {features}] for the weight {} and states {}, got {}",
                    op.mnemonic(),
                    args[1],
                    args[2],
                    args[0]
                ));
            }
            let lanes = Dim::Known(LstmSizes { hidden, features }.result_lanes());
            Ok(Type::f32(Shape(vec![dims[0].clone(), dims[1].clone(), lanes])))
        }
        Op::LstmGrad { from, .. } => {
            arity(op, args, 6)?;
            let sizes = lstm_operands(op, args[4], args[5], args[5])?;
            let hidden = sizes.hidden;
            let y = args[0].shape.dims();
            let l = sizes.result_lanes();
            if y.len() != 3 || y[1] != args[5].shape.dims()[0] {
                return Err(format!(
                    "`{}`: operand 0 must be f32[T, B, {l}] for the weight {} and states {}, got {}",
                    op.mnemonic(),
                    args[4],
                    args[5],
                    args[0]
                ));
            }
            if from.len() != 3 {
                return Err(format!(
                    "`{}`: `from` needs 3 steps, one per cotangent, got {from:?}",
                    op.mnemonic()
                ));
            }
            // Cotangent `1 + i` holds the steps `from[i]..from[i] + n`: all
            // of them (`from[i] = 0`, `n = T`, `T` known or not), or some
            // of a known `T`.
            let held = |i: usize| -> Result<Dim, String> {
                let n = args[i].shape.dims().first().cloned().unwrap_or(Dim::Known(0));
                match (&y[0], &n) {
                    _ if from[i - 1] == 0 && n == y[0] => Ok(n),
                    (Dim::Known(t), Dim::Known(k))
                        if from[i - 1].checked_add(*k).is_some_and(|e| e <= *t) =>
                    {
                        Ok(n)
                    }
                    _ => Err(format!(
                        "`{}`: operand {i} holds steps from {} of {}, got {}",
                        op.mnemonic(),
                        from[i - 1],
                        y[0],
                        args[i]
                    )),
                }
            };
            let lanes = |t: Dim, n: usize| Type::f32(Shape(vec![t, y[1].clone(), Dim::Known(n)]));
            let want = [
                lanes(y[0].clone(), l),
                lanes(held(1)?, hidden),
                lanes(held(2)?, hidden),
                lanes(held(3)?, 4 * hidden),
            ];
            let lanes = |n: usize| lanes(y[0].clone(), n);
            if let Some(i) = (0..4).find(|&i| *args[i] != want[i]) {
                return Err(format!(
                    "`{}`: operand {i} must be {} for the weight {} and states {}, got {}",
                    op.mnemonic(),
                    want[i],
                    args[4],
                    args[5],
                    args[i]
                ));
            }
            Ok(lanes(6 * hidden))
        }
        Op::StopGradient => {
            arity(op, args, 1)?;
            Ok(args[0].clone())
        }
    }
}

/// Checks the weight `w: f32[4H, F + H + 1]` and the states `f32[B, H]` of
/// `lstm` or `lstm_grad`; returns `H` and `F`.
fn lstm_operands(op: &Op, w: &Type, h0: &Type, c0: &Type) -> Result<LstmSizes, String> {
    for t in [w, h0, c0] {
        want_dtype(op, t, DType::F32)?;
    }
    let name = op.mnemonic();
    let bad_weight =
        || format!("`{name}` needs a weight [4H, F + H + 1] (input, recurrent and bias columns), got {w}");
    if w.shape.rank() != 2 {
        return Err(bad_weight());
    }
    known(op, &w.shape.dims()[0], "gate rows")?;
    known(op, &w.shape.dims()[1], "weight columns")?;
    let sizes = LstmSizes::of_weight(&w.shape).ok_or_else(bad_weight)?;
    let LstmSizes { hidden, features } = sizes;
    if hidden.checked_mul(8).and_then(|h| h.checked_add(features)).is_none() {
        return Err(bad_weight());
    }
    for t in [h0, c0] {
        if t.shape.rank() != 2 || t.shape.dims()[1] != Dim::Known(hidden) || *t != *h0 {
            return Err(format!("`{name}` needs states f32[B, {hidden}] for the weight {w}, got {t}"));
        }
    }
    Ok(sizes)
}

/// The length `E` of an index operand, which must be `i32[E]`.
fn index_length<'a>(op: &Op, index: &'a Type) -> Result<&'a Dim, String> {
    if index.dtype != DType::I32 || index.shape.rank() != 1 {
        return Err(format!("`{}` needs an i32[E] index, got {index}", op.mnemonic()));
    }
    Ok(&index.shape.dims()[0])
}

/// Checks the operands of a scatter: `x` has an axis `axis` whose size is
/// the length of the index `i32[E]`.
fn scattered(op: &Op, x: &Type, index: &Type, axis: usize) -> Result<(), String> {
    check_axes(op, &[axis], x.shape.rank())?;
    let e = index_length(op, index)?;
    if x.shape.dims()[axis] != *e {
        return Err(format!(
            "`{}`: axis {axis} of {} must have the index's length {e}",
            op.mnemonic(),
            x.shape
        ));
    }
    Ok(())
}

/// Checks a leaf node's declared type (inputs: any; keys: `i32[2]`;
/// constants: scalars).
pub fn check_leaf(op: &Op, ty: &Type) -> Result<(), String> {
    match op {
        Op::Input { kind: InputKind::Key, .. } if *ty != Type::new(DType::I32, Shape::known(&[2])) => {
            Err(format!("a `key` input must be i32[2], got {ty}"))
        }
        Op::Input { kind: InputKind::Hyper, .. } if *ty != Type::scalar(DType::F32) => {
            Err(format!("a `hyper` input must be f32[], got {ty}"))
        }
        Op::Const { .. } if ty.shape.rank() != 0 => Err(format!("a constant must be a scalar, got {ty}")),
        _ => Ok(()),
    }
}
