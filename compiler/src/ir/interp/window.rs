//! Sliding-window and resampling ops on `[N, C, *spatial]` tensors: conv,
//! conv_transpose, pooling and resize.
//!
//! Each is written once for any number of spatial dimensions: positions are
//! index vectors, and the loops run over every output element (or, for
//! conv_transpose, every input element) and every kernel tap, skipping taps
//! that fall into the zero padding. The convolutions gather each example's
//! taps into a column matrix (`[C/groups · K, positions]`, zeros for
//! padding) and multiply it by the weights with ndarray's matrix product, so
//! the interpreter stays fast enough to check models on real grid sizes.

use ndarray::{indices, Array2, ArrayD, ArrayView2, Dimension, IxDyn};

use super::elementwise::max_nan;
use super::Real;
use crate::ir::op::{ConvAttrs, PoolKind};

/// Along one axis: the (unpadded) input position that output position `out`
/// reads through kernel tap `k`, i.e. `out * stride + k * dilation - lo`, if
/// it lies in `0..size` (otherwise the tap reads padding). For conv_transpose,
/// the adjoint, the same formula gives the output position that input
/// position `out` writes to.
fn tap_pos(out: usize, k: usize, stride: usize, dilation: usize, lo: usize, size: usize) -> Option<usize> {
    let p = (out * stride + k * dilation).checked_sub(lo)?;
    (p < size).then_some(p)
}

/// The number of window positions along one axis.
fn window_out(size: usize, (lo, hi): (usize, usize), extent: usize, stride: usize) -> Result<usize, String> {
    let padded = size + lo + hi;
    if stride == 0 || extent == 0 || padded < extent {
        return Err(format!(
            "a window of extent {extent} and stride {stride} does not fit size {size} padded by ({lo}, {hi})"
        ));
    }
    Ok((padded - extent) / stride + 1)
}

/// The number of spatial dimensions of an `[N, C, *S]` operand, checking that
/// every per-dimension attribute has one entry for each.
fn spatial_rank(shape: &[usize], attribute_lens: &[usize]) -> Result<usize, String> {
    let s = shape.len().saturating_sub(2);
    if s == 0 || attribute_lens.iter().any(|&l| l != s) {
        return Err(format!(
            "operand {shape:?} does not match attributes with {attribute_lens:?} spatial entries"
        ));
    }
    Ok(s)
}

/// For a sliding window over spatial dimensions: which input position (a
/// flat index into one `[*S]` plane) each output position reads through each
/// kernel tap, or none where the tap falls into the padding. Built once per
/// op, so the loops over batch and channels are plain slice arithmetic.
struct Taps {
    /// `table[p * kernel + k]` = input position + 1, or 0 for padding.
    table: Vec<usize>,
    /// Positions in one input plane, one output plane, one kernel.
    inputs: usize,
    outputs: usize,
    kernel: usize,
}

impl Taps {
    fn new(
        input: &[usize],
        output: &[usize],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
        padding: &[(usize, usize)],
    ) -> Taps {
        let (inputs, outputs) = (input.iter().product(), output.iter().product::<usize>());
        let kernel_len = kernel.iter().product::<usize>();
        let mut table = Vec::with_capacity(outputs * kernel_len);
        for p in indices(output) {
            'taps: for k in indices(kernel) {
                let mut flat = 0;
                for d in 0..input.len() {
                    let Some(i) = tap_pos(p[d], k[d], stride[d], dilation[d], padding[d].0, input[d]) else {
                        table.push(0);
                        continue 'taps;
                    };
                    flat = flat * input[d] + i;
                }
                table.push(flat + 1);
            }
        }
        Taps { table, inputs, outputs, kernel: kernel_len }
    }

    fn at(&self, output: usize, tap: usize) -> Option<usize> {
        self.table[output * self.kernel + tap].checked_sub(1)
    }

    /// The column matrix of `planes` consecutive input planes starting at
    /// `x[0]`: row `plane · kernel + k`, column `p` holds the value that
    /// output position `p` reads through tap `k` (zero in the padding).
    fn columns<T: Real>(&self, x: &[T], planes: usize) -> Result<Array2<T>, String> {
        let mut cols = vec![T::zero(); planes * self.kernel * self.outputs];
        for ci in 0..planes {
            let plane = &x[ci * self.inputs..][..self.inputs];
            for k in 0..self.kernel {
                let row = &mut cols[(ci * self.kernel + k) * self.outputs..][..self.outputs];
                for (p, v) in row.iter_mut().enumerate() {
                    if let Some(i) = self.at(p, k) {
                        *v = plane[i];
                    }
                }
            }
        }
        Array2::from_shape_vec((planes * self.kernel, self.outputs), cols).map_err(|e| e.to_string())
    }
}

/// `rows × cols` elements of `data` starting at `start`, as a matrix view.
fn matrix<T>(data: &[T], start: usize, rows: usize, cols: usize) -> Result<ArrayView2<'_, T>, String> {
    let slice = data.get(start..start + rows * cols).ok_or("internal: matrix out of range")?;
    ArrayView2::from_shape((rows, cols), slice).map_err(|e| e.to_string())
}

/// The elements of a standard-layout array as a slice.
fn flat<'a, T>(a: &'a ndarray::CowArray<'_, T, IxDyn>) -> Result<&'a [T], String> {
    a.as_slice().ok_or_else(|| "internal: array is not contiguous".to_string())
}

fn to_array<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>, String> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| e.to_string())
}

/// Cross-correlation `[N, C, *S] x [O, C/groups, *K] -> [N, O, *S']`:
/// `y[n, o, p] = Σ_{c in o's group, k} x[n, c, p*stride + k*dilation - lo] * w[o, c mod (C/groups), k]`.
pub(super) fn conv<T: Real>(x: &ArrayD<T>, w: &ArrayD<T>, g: &ConvAttrs) -> Result<ArrayD<T>, String> {
    let groups = g.groups;
    let (xs, ws) = (x.shape(), w.shape());
    let s = spatial_rank(xs, &[g.stride.len(), g.padding.len(), g.dilation.len()])?;
    if ws.len() != s + 2 {
        return Err(format!("weight {ws:?} must have rank {}", s + 2));
    }
    let (n, c, o, cg) = (xs[0], xs[1], ws[0], ws[1]);
    if groups == 0 || cg * groups != c || o % groups != 0 {
        return Err(format!("input {xs:?} and weight {ws:?} do not fit {groups} group(s)"));
    }
    let og = o / groups;
    let kernel = &ws[2..];
    let mut out_shape = vec![n, o];
    for d in 0..s {
        if g.dilation[d] == 0 || kernel[d] == 0 {
            return Err("kernel sizes and dilations must be positive".into());
        }
        let extent = g.dilation[d] * (kernel[d] - 1) + 1;
        out_shape.push(window_out(xs[2 + d], g.padding[d], extent, g.stride[d])?);
    }
    let taps = Taps::new(&xs[2..], &out_shape[2..], kernel, &g.stride, &g.dilation, &g.padding);
    let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
    let (x, w) = (flat(&x)?, flat(&w)?);
    let mut y = vec![T::zero(); out_shape.iter().product()];
    let rows = cg * taps.kernel;
    for b in 0..n {
        for group in 0..groups {
            // y[b, group's outputs] = w[group's outputs] · columns
            let cols = taps.columns(&x[(b * c + group * cg) * taps.inputs..], cg)?;
            let wg = matrix(w, group * og * rows, og, rows)?;
            let out = wg.dot(&cols);
            let dst = &mut y[(b * o + group * og) * taps.outputs..][..og * taps.outputs];
            for (d, v) in dst.iter_mut().zip(out.iter()) {
                *d = *v;
            }
        }
    }
    to_array(&out_shape, y)
}

/// The adjoint of [`conv`] with respect to its input:
/// `[N, C, *S] x [C, O/groups, *K] -> [N, O, *S']`. Every input element
/// scatters into the output positions that a convolution with the same
/// geometry would have read it from:
/// `y[n, o, i*stride + k*dilation - lo] += x[n, c, i] * w[c, o mod (O/groups), k]` for `o` in `c`'s group,
/// with `S' = (S-1)*stride - lo - hi + dilation*(K-1) + 1 + output_padding`.
pub(super) fn conv_transpose<T: Real>(
    x: &ArrayD<T>,
    w: &ArrayD<T>,
    g: &ConvAttrs,
    output_padding: &[usize],
) -> Result<ArrayD<T>, String> {
    let groups = g.groups;
    let (xs, ws) = (x.shape(), w.shape());
    let s = spatial_rank(xs, &[g.stride.len(), g.padding.len(), output_padding.len(), g.dilation.len()])?;
    if ws.len() != s + 2 {
        return Err(format!("weight {ws:?} must have rank {}", s + 2));
    }
    let (n, c, wc, og) = (xs[0], xs[1], ws[0], ws[1]);
    if groups == 0 || c != wc || c % groups != 0 {
        return Err(format!("input {xs:?} and weight {ws:?} do not fit {groups} group(s)"));
    }
    let cg = c / groups;
    let kernel = &ws[2..];
    let mut out_shape = vec![n, og * groups];
    for d in 0..s {
        let (size, k, stride, dilation) = (xs[2 + d], kernel[d], g.stride[d], g.dilation[d]);
        if size == 0 || k == 0 || stride == 0 || dilation == 0 {
            return Err("sizes, kernel sizes, strides and dilations must be positive".into());
        }
        let full = (size - 1) * stride + dilation * (k - 1) + 1 + output_padding[d];
        let cut = g.padding[d].0 + g.padding[d].1;
        if full <= cut {
            return Err(format!("padding {:?} removes the whole output of size {full}", g.padding[d]));
        }
        out_shape.push(full - cut);
    }
    // Input position i writes where a convolution's output position i reads.
    let taps = Taps::new(&out_shape[2..], &xs[2..], kernel, &g.stride, &g.dilation, &g.padding);
    let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
    let (x, w) = (flat(&x)?, flat(&w)?);
    let o = og * groups;
    let mut y = vec![T::zero(); out_shape.iter().product()];
    let rows = og * taps.kernel;
    for b in 0..n {
        for group in 0..groups {
            // columns[oi · K + k, i] = Σ_c w[c, oi, k] · x[b, c, i], then each
            // column entry is added where input position i writes through tap k.
            let wg = matrix(w, group * cg * rows, cg, rows)?;
            let xg = matrix(x, (b * c + group * cg) * taps.outputs, cg, taps.outputs)?;
            let cols = wg.t().dot(&xg);
            for oi in 0..og {
                let y_plane = &mut y[(b * o + group * og + oi) * taps.inputs..][..taps.inputs];
                for k in 0..taps.kernel {
                    let row = cols.row(oi * taps.kernel + k);
                    for (i, &v) in row.iter().enumerate() {
                        if let Some(p) = taps.at(i, k) {
                            y_plane[p] = y_plane[p] + v;
                        }
                    }
                }
            }
        }
    }
    to_array(&out_shape, y)
}

/// The number of spatial dimensions and the output shape of pooling an
/// `[N, C, *S]` operand of shape `xs`.
fn pool_shape(
    xs: &[usize],
    window: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
) -> Result<(usize, Vec<usize>), String> {
    let s = spatial_rank(xs, &[window.len(), stride.len(), padding.len()])?;
    let mut out_shape = xs[..2].to_vec();
    for d in 0..s {
        out_shape.push(window_out(xs[2 + d], padding[d], window[d], stride[d])?);
    }
    Ok((s, out_shape))
}

/// Max or average pooling over the spatial dimensions of `[N, C, *S]`.
/// Max ignores padded positions (a window entirely in the padding gives
/// -inf); average counts them as zeros and divides by the full window size.
pub(super) fn pool<T: Real>(
    x: &ArrayD<T>,
    kind: PoolKind,
    window: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
) -> Result<ArrayD<T>, String> {
    let xs = x.shape();
    let (s, out_shape) = pool_shape(xs, window, stride, padding)?;
    let window_size = T::from_f64(window.iter().product::<usize>() as f64);
    let taps = Taps::new(&xs[2..], &out_shape[2..], window, stride, &vec![1; s], padding);
    let x = x.as_standard_layout();
    let x = flat(&x)?;
    let mut y = vec![T::zero(); out_shape.iter().product()];
    for (plane, y_plane) in y.chunks_mut(taps.outputs.max(1)).enumerate() {
        let x_plane = &x[plane * taps.inputs..][..taps.inputs];
        for (p, yv) in y_plane.iter_mut().enumerate() {
            let mut acc = match kind {
                PoolKind::Max => T::neg_infinity(),
                PoolKind::Avg => T::zero(),
            };
            for k in 0..taps.kernel {
                let Some(i) = taps.at(p, k) else { continue };
                acc = match kind {
                    PoolKind::Max => max_nan(acc, x_plane[i]),
                    PoolKind::Avg => acc + x_plane[i],
                };
            }
            *yv = match kind {
                PoolKind::Max => acc,
                PoolKind::Avg => acc / window_size,
            };
        }
    }
    to_array(&out_shape, y)
}

/// Multilinear resampling of `[N, C, *S]` to `[N, C, *size]` with half-pixel
/// centres (PyTorch's `align_corners=False`, no antialiasing). Along each axis,
/// output position `j` samples input coordinate
/// `src = max(0, (j + 0.5) * S / size - 0.5)` between neighbours
/// `i0 = floor(src)` and `i1 = min(i0 + 1, S - 1)` with weights `1 - λ` and
/// `λ = src - i0`; the result sums the 2^d corner products.
pub(super) fn resize<T: Real>(x: &ArrayD<T>, size: &[usize]) -> Result<ArrayD<T>, String> {
    let xs = x.shape();
    let s = spatial_rank(xs, &[size.len()])?;
    let taps = resize_taps::<T>(&xs[2..], size)?;
    let mut out_shape = xs[..2].to_vec();
    out_shape.extend_from_slice(size);
    let mut y = ArrayD::zeros(IxDyn(&out_shape));
    let mut xi = vec![0; s + 2];
    for (yi, yv) in y.indexed_iter_mut() {
        (xi[0], xi[1]) = (yi[0], yi[1]);
        let mut acc = T::zero();
        for corner in 0..(1usize << s) {
            let weight = corner_weight(&taps, yi.slice(), corner, &mut xi);
            acc = acc + weight * x[xi.as_slice()];
        }
        *yv = acc;
    }
    Ok(y)
}

/// The adjoint of [`resize`]: `dy` of shape `[N, C, *S']` back to the
/// input's shape `[N, C, *size]`, sending each element to the corners it was
/// interpolated from, with the same weights.
pub(super) fn resize_grad<T: Real>(dy: &ArrayD<T>, size: &[usize]) -> Result<ArrayD<T>, String> {
    let ys = dy.shape();
    let s = spatial_rank(ys, &[size.len()])?;
    let taps = resize_taps::<T>(size, &ys[2..])?;
    let mut in_shape = ys[..2].to_vec();
    in_shape.extend_from_slice(size);
    let mut dx = ArrayD::zeros(IxDyn(&in_shape));
    let mut xi = vec![0; s + 2];
    for (yi, &g) in dy.indexed_iter() {
        (xi[0], xi[1]) = (yi[0], yi[1]);
        for corner in 0..(1usize << s) {
            let weight = corner_weight(&taps, yi.slice(), corner, &mut xi);
            let target = &mut dx[xi.as_slice()];
            *target = *target + weight * g;
        }
    }
    Ok(dx)
}

/// Along one spatial axis, for each output position: the two input
/// neighbours and the weight `λ` of the second.
type AxisTaps<T> = Vec<(usize, usize, T)>;

/// Interpolation taps of a resize from spatial size `from` to `to`:
/// `taps[d][j] = (i0, i1, λ)` for output position `j` along spatial axis `d`.
fn resize_taps<T: Real>(from: &[usize], to: &[usize]) -> Result<Vec<AxisTaps<T>>, String> {
    let s = from.len();
    if s >= usize::BITS as usize {
        return Err(format!("cannot interpolate over {s} spatial dimensions"));
    }
    let out_len: usize = to.iter().product();
    let half = T::from_f64(0.5);
    let mut taps: Vec<AxisTaps<T>> = Vec::with_capacity(s);
    for d in 0..s {
        let (n_in, n_out) = (from[d], to[d]);
        if n_in == 0 {
            if out_len > 0 {
                return Err(format!("cannot resample the empty spatial axis {d} of size {from:?}"));
            }
            taps.push(vec![]);
            continue;
        }
        let scale = T::from_f64(n_in as f64) / T::from_f64(n_out as f64);
        let axis_taps = (0..n_out).map(|j| {
            let src = (scale * (T::from_f64(j as f64) + half) - half).max(T::zero());
            let i0 = (src.as_f64() as usize).min(n_in - 1);
            let i1 = (i0 + 1).min(n_in - 1);
            (i0, i1, src - T::from_f64(i0 as f64))
        });
        taps.push(axis_taps.collect());
    }
    Ok(taps)
}

/// The weight of one of the 2^d corners (bit `d` of `corner` picks `i1` along
/// spatial axis `d`) for output index `yi`; writes the corner's input index
/// into the spatial part of `xi`.
fn corner_weight<T: Real>(taps: &[AxisTaps<T>], yi: &[usize], corner: usize, xi: &mut [usize]) -> T {
    let mut weight = T::one();
    for (d, axis_taps) in taps.iter().enumerate() {
        let (i0, i1, lambda) = axis_taps[yi[2 + d]];
        if (corner >> d) & 1 == 1 {
            xi[2 + d] = i1;
            weight = weight * lambda;
        } else {
            xi[2 + d] = i0;
            weight = weight * (T::one() - lambda);
        }
    }
    weight
}

/// The weight gradient of [`conv`]: `(x: [N, C, *S], dy: [N, O, *S']) ->
/// [O, C/groups, *kernel]`, `dw[o, c, k] = Σ_{n, p} dy[n, o, p] *
/// x[n, g*C/groups + c, p*stride + k*dilation - lo]` (taps in the padding
/// contribute nothing).
pub(super) fn conv_weight_grad<T: Real>(
    x: &ArrayD<T>,
    dy: &ArrayD<T>,
    g: &ConvAttrs,
    kernel: &[usize],
) -> Result<ArrayD<T>, String> {
    let groups = g.groups;
    let (xs, ys) = (x.shape(), dy.shape());
    let s = spatial_rank(xs, &[g.stride.len(), g.padding.len(), g.dilation.len(), kernel.len()])?;
    if ys.len() != s + 2 || ys[0] != xs[0] {
        return Err(format!("output gradient {ys:?} does not fit input {xs:?}"));
    }
    let (n, c, o) = (xs[0], xs[1], ys[1]);
    if groups == 0 || c % groups != 0 || o % groups != 0 {
        return Err(format!("{c} input and {o} output channels do not fit {groups} group(s)"));
    }
    for d in 0..s {
        if g.dilation[d] == 0 || kernel[d] == 0 {
            return Err("kernel sizes and dilations must be positive".into());
        }
        let extent = g.dilation[d] * (kernel[d] - 1) + 1;
        let expected = window_out(xs[2 + d], g.padding[d], extent, g.stride[d])?;
        if ys[2 + d] != expected {
            return Err(format!("output gradient {ys:?} does not match the convolution of {xs:?}"));
        }
    }
    let (cg, og) = (c / groups, o / groups);
    let mut w_shape = vec![o, cg];
    w_shape.extend_from_slice(kernel);
    let taps = Taps::new(&xs[2..], &ys[2..], kernel, &g.stride, &g.dilation, &g.padding);
    let (x, dy) = (x.as_standard_layout(), dy.as_standard_layout());
    let (x, dy) = (flat(&x)?, flat(&dy)?);
    let mut dw = vec![T::zero(); w_shape.iter().product()];
    let rows = cg * taps.kernel;
    for group in 0..groups {
        // dw[group's outputs] = Σ_b dy[b, group's outputs] · columnsᵀ
        let mut acc = Array2::<T>::zeros((og, rows));
        for b in 0..n {
            let cols = taps.columns(&x[(b * c + group * cg) * taps.inputs..], cg)?;
            let dyg = matrix(dy, (b * o + group * og) * taps.outputs, og, taps.outputs)?;
            acc = acc + dyg.dot(&cols.t());
        }
        let dst = &mut dw[group * og * rows..][..og * rows];
        for (d, v) in dst.iter_mut().zip(acc.iter()) {
            *d = *v;
        }
    }
    to_array(&w_shape, dw)
}

/// The input gradient of [`pool`]: `(x, dy) -> dx` of `x`'s shape. Max sends
/// each `dy` element to the first position of its window (in row-major tap
/// order) holding the window's maximum — a NaN, if the window has one;
/// average adds `dy / window size` to every in-bounds position.
pub(super) fn pool_grad<T: Real>(
    x: &ArrayD<T>,
    dy: &ArrayD<T>,
    kind: PoolKind,
    window: &[usize],
    stride: &[usize],
    padding: &[(usize, usize)],
) -> Result<ArrayD<T>, String> {
    let xs = x.shape();
    let (s, out_shape) = pool_shape(xs, window, stride, padding)?;
    if dy.shape() != out_shape.as_slice() {
        return Err(format!("output gradient {:?} does not match the pooling of {xs:?}", dy.shape()));
    }
    let window_size = T::from_f64(window.iter().product::<usize>() as f64);
    let taps = Taps::new(&xs[2..], &out_shape[2..], window, stride, &vec![1; s], padding);
    let (x, dy) = (x.as_standard_layout(), dy.as_standard_layout());
    let (x, dy) = (flat(&x)?, flat(&dy)?);
    let mut dx = vec![T::zero(); x.len()];
    for (plane, dy_plane) in dy.chunks(taps.outputs.max(1)).enumerate() {
        let x_plane = &x[plane * taps.inputs..][..taps.inputs];
        let dx_plane = &mut dx[plane * taps.inputs..][..taps.inputs];
        for (p, &gv) in dy_plane.iter().enumerate() {
            match kind {
                PoolKind::Avg => {
                    for k in 0..taps.kernel {
                        if let Some(i) = taps.at(p, k) {
                            dx_plane[i] = dx_plane[i] + gv / window_size;
                        }
                    }
                }
                PoolKind::Max => {
                    // The first position holding the window's maximum (a NaN if any).
                    let mut best: Option<(usize, T)> = None;
                    for k in 0..taps.kernel {
                        let Some(i) = taps.at(p, k) else { continue };
                        let v = x_plane[i];
                        let better = match best {
                            None => true,
                            Some((_, b)) => !b.is_nan() && (v.is_nan() || v > b),
                        };
                        if better {
                            best = Some((i, v));
                        }
                    }
                    if let Some((i, _)) = best {
                        dx_plane[i] = dx_plane[i] + gv;
                    }
                }
            }
        }
    }
    to_array(xs, dx)
}
