//! Moving elements along axes: `stack`, `split`, `pad` (zeros, circular,
//! reflect, edge) and `roll`, each as `Slice`, `Pad`, `Concat`, `Reshape`
//! and `Broadcast` primitives, so their gradients come from the rules of
//! those. Convolutions with a non-zero `pad_mode` pad through [`pad_axis`].

use super::emit::{broadcast, check_size, checked_dim, emit, known_dim, konst, norm_axis, ty};
use super::index::{slice, stack_at};
use super::{BuildError, Built, Cx};
use crate::ir::{DType, Dim, Op, Shape, Type, ValueId};

/// How `pad` fills the new elements along an axis of size `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// A constant (`value`, 0 by default).
    Zeros,
    /// The axis repeats: before it come its last elements, after it its
    /// first (NumPy `wrap`); at most `n` on each side.
    Circular,
    /// Mirrored about the edge element, which is not repeated (NumPy
    /// `reflect`): `[a, b, c]` padded by 2 before is `[c, b, a, b, c]`; at
    /// most `n - 1` on each side.
    Reflect,
    /// The edge element repeated (NumPy `edge`).
    Edge,
}

impl PadMode {
    /// The modes by name, as the language spells them.
    pub const NAMES: &'static [&'static str] = &["zeros", "circular", "reflect", "edge"];

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<PadMode> {
        match name {
            "zeros" => Some(PadMode::Zeros),
            "circular" => Some(PadMode::Circular),
            "reflect" => Some(PadMode::Reflect),
            "edge" => Some(PadMode::Edge),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PadMode::Zeros => "zeros",
            PadMode::Circular => "circular",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
        }
    }
}

/// How `split` divides an axis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sections {
    /// This many parts of equal size (the size must divide evenly).
    Equal(usize),
    /// Parts of these sizes, in order (they must add up to the axis).
    Sizes(Vec<usize>),
}

/// Joins tensors of one type along a new axis `axis` (of the result, so
/// `-1` appends it): `stack([a, b], axis: 1)` of two `[B, F]` is
/// `[B, 2, F]`. Operand `i` is `xs[i]`.
pub fn stack(cx: &mut dyn Cx, xs: &[ValueId], axis: i64) -> Built {
    let Some(&first) = xs.first() else {
        return Err(BuildError::new("`stack` needs at least one tensor"));
    };
    let t0 = ty(cx, first);
    let a = norm_axis("stack", axis, t0.shape.rank() + 1).map_err(|e| e.at(0))?;
    for (i, &x) in xs.iter().enumerate().skip(1) {
        let t = ty(cx, x);
        if t != t0 {
            return Err(BuildError::new(format!(
                "cannot stack {t0} and {t}: stacked tensors must have one type"
            ))
            .at(i)
            .expected(t0.to_string())
            .label(format!("tensor {i} differs from the first")));
        }
    }
    checked_dim(Some(xs.len()), "the `stack` result")?;
    stack_at(cx, xs, a)
}

/// Divides `x` along `axis` into consecutive parts (NumPy `split` with a
/// count, or `torch.split` with sizes). The axis must have a known size.
pub fn split(
    cx: &mut dyn Cx,
    x: ValueId,
    sections: &Sections,
    axis: i64,
) -> Result<Vec<ValueId>, BuildError> {
    let t = ty(cx, x);
    let a = norm_axis("split", axis, t.shape.rank()).map_err(|e| e.at(0))?;
    let n = known_dim(&t, a, "split", 0)?;
    let sizes = match sections {
        Sections::Equal(parts) => {
            check_size(*parts, "the number of `split` parts")?;
            if n % parts != 0 {
                let mut e = BuildError::new(format!(
                    "cannot split axis {a} of {t} (size {n}) into {parts} equal parts"
                ))
                .at(0)
                .label(format!("{n} is not divisible by {parts}"));
                if *parts < n {
                    let (q, r) = (n / parts, n % parts);
                    let mut sizes = vec![q + 1; r];
                    sizes.extend(vec![q; parts - r]);
                    e = e.help(format!("give the sizes of the parts instead, e.g. {sizes:?}"));
                }
                return Err(e);
            }
            vec![n / parts; *parts]
        }
        Sections::Sizes(sizes) => {
            if sizes.is_empty() {
                return Err(BuildError::new("`split` needs at least one part size"));
            }
            for &s in sizes {
                check_size(s, "a `split` part size")?;
            }
            let total = sizes.iter().try_fold(0usize, |acc, &s| acc.checked_add(s));
            if total != Some(n) {
                let total = total.map_or_else(|| "too many".to_string(), |s| s.to_string());
                return Err(BuildError::new(format!(
                    "`split` sizes {sizes:?} add up to {total}, but axis {a} of {t} has size {n}"
                ))
                .at(0)
                .label(format!("the part sizes must add up to {n}")));
            }
            sizes.clone()
        }
    };
    let mut out = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for s in sizes {
        out.push(slice(cx, x, a, start, start + s)?);
        start += s;
    }
    Ok(out)
}

/// Pads the last `widths.len()` axes of `x` (NumPy `pad` with one
/// `(before, after)` pair per axis, aligned to the last axes: the pairs of
/// a `[B, C, H, W]` image `[[1, 1], [2, 2]]` pad H by 1 and W by 2). Axes
/// are padded in order, each from the result of the previous one, so the
/// corners of `edge`, `reflect` and `circular` are those of NumPy. With
/// [`PadMode::Zeros`] the new elements are `value`; other modes take no
/// value.
pub fn pad(cx: &mut dyn Cx, x: ValueId, widths: &[(usize, usize)], mode: PadMode, value: f64) -> Built {
    let t = ty(cx, x);
    let r = t.shape.rank();
    if widths.is_empty() {
        return Err(BuildError::new("`pad` needs at least one [before, after] pair"));
    }
    if widths.len() > r {
        return Err(BuildError::new(format!(
            "`pad` has {} [before, after] pairs but {t} has only {r} axes",
            widths.len()
        ))
        .at(0)
        .note("the pairs apply to the last axes, one pair per axis"));
    }
    if mode != PadMode::Zeros && value != 0.0 {
        return Err(BuildError::new(format!(
            "`value` applies only to `mode: zeros`, not `mode: {}`",
            mode.name()
        )));
    }
    if !value.is_finite() {
        return Err(BuildError::new(format!("`pad` value must be finite, got {value}")));
    }
    if value != 0.0 && t.dtype != DType::F32 {
        return Err(
            BuildError::new(format!("`pad` with a non-zero value needs an f32 tensor, got {t}")).at(0)
        );
    }
    let first = r - widths.len();
    for (i, &w) in widths.iter().enumerate().filter(|(_, &w)| w != (0, 0)) {
        check_width(&t, first + i, w, mode, "pad")?;
    }
    let mut y = x;
    for (i, &(lo, hi)) in widths.iter().enumerate() {
        y = pad_axis(cx, y, first + i, lo, hi, mode, value, "pad")?;
    }
    Ok(y)
}

/// Pads axis `axis` of `x` by `lo` before and `hi` after in `mode`; `what`
/// names the built-in for messages (operand 0 is `x`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pad_axis(
    cx: &mut dyn Cx,
    x: ValueId,
    axis: usize,
    lo: usize,
    hi: usize,
    mode: PadMode,
    value: f64,
    what: &str,
) -> Built {
    if lo == 0 && hi == 0 {
        return Ok(x);
    }
    let t = ty(cx, x);
    let n = check_width(&t, axis, (lo, hi), mode, what)?;
    let mut parts = vec![];
    match mode {
        PadMode::Zeros if value == 0.0 => return emit(cx, Op::Pad { axis, lo, hi }, &[x]),
        PadMode::Zeros => {
            let fill = |cx: &mut dyn Cx, width: usize| -> Built {
                let mut dims = t.shape.0.clone();
                dims[axis] = Dim::Known(width);
                let c = konst(cx, value);
                broadcast(cx, c, &Shape(dims))
            };
            if lo > 0 {
                parts.push(fill(cx, lo)?);
            }
            parts.push(x);
            if hi > 0 {
                parts.push(fill(cx, hi)?);
            }
        }
        PadMode::Circular => {
            if lo > 0 {
                parts.push(slice(cx, x, axis, n - lo, n)?);
            }
            parts.push(x);
            if hi > 0 {
                parts.push(slice(cx, x, axis, 0, hi)?);
            }
        }
        PadMode::Edge => {
            if lo > 0 {
                parts.push(repeat_slice(cx, x, &t, axis, 0, lo)?);
            }
            parts.push(x);
            if hi > 0 {
                parts.push(repeat_slice(cx, x, &t, axis, n - 1, hi)?);
            }
        }
        PadMode::Reflect => {
            // Before: x[lo], x[lo - 1], ..., x[1]; after: x[n - 2], ..., x[n - 1 - hi].
            for k in (1..=lo).rev() {
                parts.push(slice(cx, x, axis, k, k + 1)?);
            }
            parts.push(x);
            for k in 1..=hi {
                parts.push(slice(cx, x, axis, n - 1 - k, n - k)?);
            }
        }
    }
    emit(cx, Op::Concat { axis }, &parts)
}

/// Checks that axis `axis` of `t` (operand 0 of `what`) has a known size
/// `n` that `mode` can pad by `(lo, hi)`; returns `n`.
pub(crate) fn check_width(
    t: &Type,
    axis: usize,
    (lo, hi): (usize, usize),
    mode: PadMode,
    what: &str,
) -> Result<usize, BuildError> {
    let n = known_dim(t, axis, what, 0)?;
    checked_dim(n.checked_add(lo).and_then(|s| s.checked_add(hi)), &format!("the `{what}` result"))?;
    let limit = match mode {
        PadMode::Circular => n,
        PadMode::Reflect => n - 1,
        PadMode::Zeros | PadMode::Edge => usize::MAX,
    };
    if lo.max(hi) > limit {
        let most = if mode == PadMode::Circular { "the size" } else { "one less than the size" };
        return Err(BuildError::new(format!(
            "`{what}`: {} padding of {} is wider than axis {axis} of {t} allows (size {n})",
            mode.name(),
            lo.max(hi)
        ))
        .at(0)
        .label(format!("{} padding is at most {most} of the axis", mode.name()))
        .help("pad less, or use `mode: edge` or `mode: zeros`"));
    }
    Ok(n)
}

/// Element `at` of `axis` repeated `times` times along it.
fn repeat_slice(cx: &mut dyn Cx, x: ValueId, t: &Type, axis: usize, at: usize, times: usize) -> Built {
    let s = slice(cx, x, axis, at, at + 1)?;
    let mut dims = t.shape.0.clone();
    dims[axis] = Dim::Known(times);
    broadcast(cx, s, &Shape(dims))
}

/// Rolls `x` along each of `axes` by the matching shift (NumPy `roll`):
/// element `i` moves to `(i + shift) mod n`, so a shift may be negative or
/// larger than the axis. `shifts` and `axes` have equal lengths, or one of
/// them a single entry that pairs with every entry of the other.
pub fn roll(cx: &mut dyn Cx, x: ValueId, shifts: &[i64], axes: &[i64]) -> Built {
    let pairs: Vec<(i64, i64)> = match (shifts.len(), axes.len()) {
        (s, a) if s == a => shifts.iter().copied().zip(axes.iter().copied()).collect(),
        (1, _) => axes.iter().map(|&a| (shifts[0], a)).collect(),
        (_, 1) => shifts.iter().map(|&s| (s, axes[0])).collect(),
        (s, a) => {
            return Err(BuildError::new(format!(
                "`roll` has {s} shifts for {a} axes; give one shift per axis, or one for all"
            )))
        }
    };
    let mut y = x;
    for (shift, axis) in pairs {
        let t = ty(cx, y);
        let a = norm_axis("roll", axis, t.shape.rank()).map_err(|e| e.at(0))?;
        let n = known_dim(&t, a, "roll", 0)?;
        let s = shift.rem_euclid(n as i64) as usize;
        if s == 0 {
            continue;
        }
        let tail = slice(cx, y, a, n - s, n)?;
        let head = slice(cx, y, a, 0, n - s)?;
        y = emit(cx, Op::Concat { axis: a }, &[tail, head])?;
    }
    Ok(y)
}
