//! Tensor operations without parameters: pooling, upsampling, concatenation,
//! reshaping, permutation, reductions and matrix products. Most are one or
//! two primitives; the work here is checking shapes with clear messages.

use super::emit::{
    broadcast, check_size, checked_dim, emit, known_dim, norm_axis, reduce_mean, reduce_sum, reshape_to,
    want_f32,
};
use super::{BuildError, Built, Cx, Reduction, ReshapeDim, UpsampleMode};
use crate::ir::infer::broadcast_shapes;
use crate::ir::{Dim, Op, PoolKind, Shape, Type, ValueId, WindowAttrs};

/// `maxpool2d` / `avgpool2d` over the 2 spatial axes of `[B, C, H, W]` with
/// symmetric zero padding (at most half the window, as PyTorch requires);
/// the average counts padded zeros (`count_include_pad=True`).
pub fn pool(
    cx: &mut dyn Cx,
    x: ValueId,
    kind: PoolKind,
    size: &[usize],
    stride: &[usize],
    pad: &[usize],
) -> Built {
    let what = match kind {
        PoolKind::Max => "maxpool2d",
        PoolKind::Avg => "avgpool2d",
    };
    for (list, label) in [(size, "size"), (stride, "stride"), (pad, "padding")] {
        if list.len() != 2 {
            return Err(BuildError::new(format!(
                "`{what}` {label} needs 2 values, one per spatial dimension, got {}",
                list.len()
            )));
        }
    }
    for i in 0..2 {
        check_size(size[i], &format!("`{what}` size"))?;
        check_size(stride[i], &format!("`{what}` stride"))?;
        if pad[i] > size[i] / 2 {
            return Err(BuildError::new(format!(
                "`{what}` padding {} must be at most half the window size {}",
                pad[i], size[i]
            )));
        }
    }
    let t = want_f32(cx, x, what, 0)?;
    if t.shape.rank() != 4 {
        return Err(BuildError::new(format!("`{what}` needs a rank-4 input [B, C, H, W], got {t}")).at(0));
    }
    for i in 0..2 {
        let n = known_dim(&t, 2 + i, what, 0)?;
        if n.saturating_add(2 * pad[i]) < size[i] {
            return Err(BuildError::new(format!(
                "`{what}` window {} does not fit axis {} of {t} (size {n})",
                size[i],
                i + 2
            ))
            .at(0)
            .label(format!("window {} is larger than the input size {n}", size[i])));
        }
    }
    let op = Op::Pool(WindowAttrs {
        kind,
        window: size.to_vec(),
        stride: stride.to_vec(),
        padding: pad.iter().map(|&p| (p, p)).collect(),
    });
    emit(cx, op, &[x])
}

/// Mean over every spatial axis: `[B, C, *S] → [B, C]`.
pub fn global_avgpool(cx: &mut dyn Cx, x: ValueId) -> Built {
    let t = want_f32(cx, x, "global_avgpool", 0)?;
    let r = t.shape.rank();
    if r < 3 {
        return Err(BuildError::new(format!(
            "`global_avgpool` needs an input [B, C, ...spatial] with at least 3 axes, got {t}"
        ))
        .at(0));
    }
    reduce_mean(cx, x, &(2..r).collect::<Vec<_>>())
}

/// Upsampling of `[B, C, *S]` by an integer factor per spatial axis (one
/// factor applies to every spatial axis). `nearest` repeats each value
/// (reshape to `[.., S, 1, ..]`, broadcast, reshape); `bilinear` is `Resize`
/// (half-pixel centres, PyTorch `align_corners=False`).
pub fn upsample(cx: &mut dyn Cx, x: ValueId, scale: &[usize], mode: UpsampleMode) -> Built {
    let t = want_f32(cx, x, "upsample", 0)?;
    let r = t.shape.rank();
    if r < 3 {
        return Err(BuildError::new(format!(
            "`upsample` needs an input [B, C, ...spatial] with at least 3 axes, got {t}"
        ))
        .at(0));
    }
    let n = r - 2;
    let scale: Vec<usize> = match scale.len() {
        1 => vec![scale[0]; n],
        k if k == n => scale.to_vec(),
        k => return Err(BuildError::new(format!("`upsample` scale needs 1 or {n} values for {t}, got {k}"))),
    };
    let mut sizes = vec![];
    for (i, &s) in scale.iter().enumerate() {
        check_size(s, "`upsample` scale")?;
        let d = known_dim(&t, 2 + i, "upsample", 0)?;
        sizes.push((d, checked_dim(d.checked_mul(s), "the `upsample` output")?));
    }
    match mode {
        UpsampleMode::Bilinear => emit(cx, Op::Resize { size: sizes.iter().map(|p| p.1).collect() }, &[x]),
        UpsampleMode::Nearest => nearest(cx, x, &t, &scale, &sizes),
    }
}

fn nearest(cx: &mut dyn Cx, x: ValueId, t: &Type, scale: &[usize], sizes: &[(usize, usize)]) -> Built {
    let lead = t.shape.dims()[..2].to_vec();
    let mut split = lead.clone();
    let mut spread = lead.clone();
    let mut out = lead;
    for (&s, &(d, big)) in scale.iter().zip(sizes) {
        split.extend([Dim::Known(d), Dim::Known(1)]);
        spread.extend([Dim::Known(d), Dim::Known(s)]);
        out.push(Dim::Known(big));
    }
    let y = reshape_to(cx, x, Shape(split))?;
    let y = broadcast(cx, y, &Shape(spread))?;
    reshape_to(cx, y, Shape(out))
}

/// Joins tensors along `axis`; all other dimensions must agree.
pub fn concat(cx: &mut dyn Cx, xs: &[ValueId], axis: i64) -> Built {
    let Some(&first) = xs.first() else {
        return Err(BuildError::new("`concat` needs at least one tensor"));
    };
    let t0 = cx.graph().ty(first).clone();
    let a = norm_axis("concat", axis, t0.shape.rank()).map_err(|e| e.at(0))?;
    if xs.len() == 1 {
        return Ok(first);
    }
    for (i, &x) in xs.iter().enumerate() {
        let t = cx.graph().ty(x).clone();
        if t.dtype != t0.dtype || t.shape.rank() != t0.shape.rank() {
            return Err(BuildError::new(format!(
                "cannot concatenate {t0} and {t} along axis {a}: they differ in {}",
                if t.dtype != t0.dtype { "element type" } else { "rank" }
            ))
            .at(i));
        }
        let clash = (0..t.shape.rank()).find(|&d| d != a && t.shape.dims()[d] != t0.shape.dims()[d]);
        if let Some(d) = clash {
            return Err(BuildError::new(format!(
                "cannot concatenate {t0} and {t} along axis {a}: dimension {d} is {} vs {}",
                t0.shape.dims()[d],
                t.shape.dims()[d]
            ))
            .at(i)
            .label(format!("dimension {d} differs: {} vs {}", t0.shape.dims()[d], t.shape.dims()[d]))
            .note(format!("all dimensions except the concatenation axis {a} must be equal")));
        }
        known_dim(&t, a, "concat", i)?;
    }
    emit(cx, Op::Concat { axis: a }, xs)
}

/// `[B, d1, d2, ...] → [B, d1·d2·...]` (PyTorch `nn.Flatten`).
pub fn flatten(cx: &mut dyn Cx, x: ValueId) -> Built {
    let t = cx.graph().ty(x).clone();
    if t.shape.rank() < 2 {
        return Err(BuildError::new(format!(
            "`flatten` needs an input with at least 2 axes [B, ...], got {t}"
        ))
        .at(0));
    }
    let mut n = 1usize;
    for i in 1..t.shape.rank() {
        n = checked_dim(n.checked_mul(known_dim(&t, i, "flatten", 0)?), "the `flatten` output")?;
    }
    reshape_to(cx, x, Shape(vec![t.shape.dims()[0].clone(), Dim::Known(n)]))
}

/// Element count as (known product, sorted symbolic names).
fn count<'a>(dims: impl Iterator<Item = &'a Dim>) -> Option<(usize, Vec<String>)> {
    let mut n = 1usize;
    let mut syms = vec![];
    for d in dims {
        match d {
            Dim::Known(k) => n = n.checked_mul(*k)?,
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    syms.sort();
    Some((n, syms))
}

fn show_target(shape: &[ReshapeDim]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| match d {
            ReshapeDim::Known(n) => n.to_string(),
            ReshapeDim::Sym(s) => s.clone(),
            ReshapeDim::Infer => "-1".into(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn show_count((n, syms): &(usize, Vec<String>)) -> String {
    let mut parts = syms.clone();
    if *n != 1 || parts.is_empty() {
        parts.insert(0, n.to_string());
    }
    parts.join("·")
}

/// Same elements, new shape; one `-1` entry is inferred from the count.
pub fn reshape(cx: &mut dyn Cx, x: ValueId, shape: &[ReshapeDim]) -> Built {
    let t = cx.graph().ty(x).clone();
    let target = show_target(shape);
    if shape.iter().filter(|d| **d == ReshapeDim::Infer).count() > 1 {
        return Err(BuildError::new(format!("`reshape` can infer at most one dimension, got {target}")));
    }
    let mut dims: Vec<Dim> = vec![];
    for d in shape {
        match d {
            ReshapeDim::Known(n) => {
                check_size(*n, &format!("dimension {} of the `reshape` shape", dims.len()))?;
                dims.push(Dim::Known(*n));
            }
            ReshapeDim::Sym(s) => dims.push(Dim::Sym(s.clone())),
            ReshapeDim::Infer => dims.push(Dim::Known(0)),
        }
    }
    let too_big = || BuildError::new(format!("`reshape` of {t} to {target}: element count overflows"));
    let have = count(t.shape.dims().iter()).ok_or_else(too_big)?;
    let infer_at = shape.iter().position(|d| *d == ReshapeDim::Infer);
    let want = count(dims.iter().enumerate().filter(|(i, _)| Some(*i) != infer_at).map(|p| p.1))
        .ok_or_else(too_big)?;
    let mismatch = || {
        BuildError::new(format!(
            "cannot reshape {t} to {target}: {} elements vs {}",
            show_count(&have),
            show_count(&want)
        ))
        .at(0)
        .label(format!("{} elements cannot become {}", show_count(&have), show_count(&want)))
    };
    if have.1 != want.1 {
        return Err(mismatch().note("symbolic dimensions must appear on both sides"));
    }
    if let Some(i) = infer_at {
        if want.0 == 0 || have.0 % want.0 != 0 {
            return Err(mismatch());
        }
        dims[i] = Dim::Known(checked_dim(Some(have.0 / want.0), "the inferred `reshape` dimension")?);
    } else if have.0 != want.0 {
        return Err(mismatch());
    }
    reshape_to(cx, x, Shape(dims))
}

/// Reorders axes: result axis `i` is input axis `axes[i]`.
pub fn permute(cx: &mut dyn Cx, x: ValueId, axes: &[i64]) -> Built {
    let t = cx.graph().ty(x).clone();
    let r = t.shape.rank();
    if axes.len() != r {
        return Err(BuildError::new(format!("`permute` needs {r} axes for {t}, got {}", axes.len())));
    }
    let mut out = Vec::with_capacity(r);
    for &a in axes {
        let a = norm_axis("permute", a, r)?;
        if out.contains(&a) {
            return Err(BuildError::new(format!("`permute` lists axis {a} twice, in {axes:?}")));
        }
        out.push(a);
    }
    if out.iter().enumerate().all(|(i, &a)| i == a) {
        return Ok(x);
    }
    emit(cx, Op::Permute { axes: out }, &[x])
}

/// `sum` / `mean` over `axes` (all when `None`), optionally keeping the
/// reduced axes with size 1. The mean divides by the run-time count.
pub fn reduce(cx: &mut dyn Cx, x: ValueId, kind: Reduction, axes: Option<&[i64]>, keepdims: bool) -> Built {
    let what = match kind {
        Reduction::Sum => "sum",
        Reduction::Mean => "mean",
    };
    let t = want_f32(cx, x, what, 0)?;
    let r = t.shape.rank();
    let mut list: Vec<usize> = match axes {
        None => (0..r).collect(),
        Some(axes) => axes.iter().map(|&a| norm_axis(what, a, r)).collect::<Result<_, _>>()?,
    };
    list.sort_unstable();
    if list.windows(2).any(|w| w[0] == w[1]) {
        return Err(BuildError::new(format!("`{what}` lists an axis twice: {:?}", axes.unwrap_or(&[]))));
    }
    let y = match kind {
        Reduction::Sum => reduce_sum(cx, x, &list)?,
        Reduction::Mean => reduce_mean(cx, x, &list)?,
    };
    if keepdims {
        reshape_to(cx, y, super::emit::kept_shape(&t.shape, &list))
    } else {
        Ok(y)
    }
}

/// `[..., M, K] x [..., K, N] → [..., M, N]`. The leading (batch) axes
/// broadcast as in NumPy's `matmul`, so `[B, T, K] x [K, N]` multiplies every
/// `[T, K]` slice by the same matrix (explicit `Broadcast` nodes).
pub fn matmul(cx: &mut dyn Cx, a: ValueId, b: ValueId) -> Built {
    let ta = want_f32(cx, a, "matmul", 0)?;
    let tb = want_f32(cx, b, "matmul", 1)?;
    for (i, t) in [(0, &ta), (1, &tb)] {
        if t.shape.rank() < 2 {
            return Err(BuildError::new(format!("`matmul` needs operands with at least 2 axes, got {t}"))
                .at(i)
                .help("make a vector a matrix with `reshape`, e.g. `reshape(v, shape: [1, -1])`"));
        }
    }
    let (ra, rb) = (ta.shape.rank(), tb.shape.rank());
    let (k1, k2) = (&ta.shape.dims()[ra - 1], &tb.shape.dims()[rb - 2]);
    if k1 != k2 {
        return Err(BuildError::new(format!(
            "cannot multiply {ta} by {tb}: inner dimensions differ ({k1} vs {k2})"
        ))
        .at(1)
        .label(format!("inner dimensions {k1} and {k2} differ"))
        .note("`matmul(a, b)` needs the last axis of `a` to match the second-to-last axis of `b`"));
    }
    let batch_a = Shape(ta.shape.dims()[..ra - 2].to_vec());
    let batch_b = Shape(tb.shape.dims()[..rb - 2].to_vec());
    let Some(batch) = broadcast_shapes(&batch_a, &batch_b) else {
        return Err(BuildError::new(format!(
            "`matmul` batch dimensions {batch_a} and {batch_b} of {ta} and {tb} do not broadcast"
        ))
        .at(1)
        .label(format!("cannot multiply {ta} by {tb}"))
        .note("the axes before the last two broadcast as in NumPy: aligned from the right, equal or 1"));
    };
    let with = |mut dims: Vec<Dim>, t: &Type, r: usize| {
        dims.extend_from_slice(&t.shape.dims()[r - 2..]);
        Shape(dims)
    };
    let a = broadcast(cx, a, &with(batch.0.clone(), &ta, ra))?;
    let b = broadcast(cx, b, &with(batch.0, &tb, rb))?;
    emit(cx, Op::MatMul, &[a, b])
}
