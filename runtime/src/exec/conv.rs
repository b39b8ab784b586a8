//! N-d convolutions on `[N, C, *S]` f32 tensors as matrix products.
//!
//! A convolution is a GEMM once each output position's receptive field is
//! laid out as a column (im2col), so all three convolution ops of the IR run
//! through a [`GemmProvider`], image by image and, within an image, tile by
//! tile: a [`Tiling`] cuts the output positions into tiles of whole output
//! rows (along the first spatial axis) whose column block stays in cache
//! (the plan's choice, `nnc_compiler::plan::conv`):
//!
//! - [`conv`] (forward): per tile, im2col into the column block, then
//!   `y_g[:, tile] = W_g · col_g` per group, written in place into the
//!   `[N, O, *S']` result;
//! - [`conv_input_grad`] (`conv_transpose`): per tile `col_g = W_gᵀ ·
//!   dy_g[:, tile]`, then col2im adds the columns back onto the input
//!   positions they were read from;
//! - [`conv_weight_grad`]: `dW_g += dy_g[:, tile] · col_gᵀ`, the product
//!   accumulating tile after tile and image after image in batch order.
//!
//! The packing itself (im2col, col2im, and the copies into and out of a
//! zero-padded image) is not done here: it is a [`Packing`], which the
//! executable implements with kernels generated for the call's shapes. This
//! module fixes the geometry, the scratch layout and the order of products.
//!
//! Semantics (layouts, padding, dilation, groups, output sizes) are those of
//! the reference interpreter's `conv`, `conv_transpose` and
//! `conv_weight_grad`. A [`ConvGeometry`] is validated once from shapes and
//! attributes; the functions then only check slice lengths. 3×3
//! convolutions the plan gives to Winograd run in `winograd.rs` instead
//! ([`ConvGeometry::winograd`]). Pointwise
//! convolutions (1×…×1 kernel, stride 1, no padding) skip im2col: the input
//! planes already are the column matrix.

use nnc_compiler::ir::ConvAttrs;

use super::gemm::{GemmProvider, MatMut, MatRef};
use super::isa::{line_offset, LINE_FLOATS};

/// A validated convolution `[N, C, *S] x [O, C/groups, *K] -> [N, O, *S']`:
/// output position `p` reads input position `p*stride + k*dilation - lo`
/// through kernel tap `k` (taps in the padding read zero).
///
/// A transposed convolution is described by the convolution whose input
/// gradient it is: its input is this geometry's output and its output this
/// geometry's input ([`ConvGeometry::conv_transpose`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
    input: Vec<usize>,
    output: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    padding: Vec<(usize, usize)>,
    dilation: Vec<usize>,
}

fn checked_product(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("the element count of {dims:?} overflows"))
}

/// The split of an `[N, C, *S]` shape, checking the attribute lengths.
fn split_image<'a>(what: &str, shape: &'a [usize], attribute_lens: &[usize]) -> Result<&'a [usize], String> {
    let spatial = shape.len().saturating_sub(2);
    if spatial == 0 || attribute_lens.iter().any(|&l| l != spatial) {
        return Err(format!(
            "{what} {shape:?} does not match attributes with {attribute_lens:?} spatial entries"
        ));
    }
    Ok(&shape[2..])
}

impl ConvGeometry {
    /// The forward convolution of `x: [N, C, *S]` with `w: [O, C/groups, *K]`.
    pub fn conv(x_shape: &[usize], w_shape: &[usize], attrs: &ConvAttrs) -> Result<ConvGeometry, String> {
        let input = split_image("input", x_shape, &attr_lens(attrs, &[]))?;
        if w_shape.len() != x_shape.len() {
            return Err(format!("weight {w_shape:?} must have rank {}", x_shape.len()));
        }
        let (c, o, cg, groups) = (x_shape[1], w_shape[0], w_shape[1], attrs.groups);
        if groups == 0 || cg.checked_mul(groups) != Some(c) || o % groups != 0 {
            return Err(format!("input {x_shape:?} and weight {w_shape:?} do not fit {groups} group(s)"));
        }
        let kernel = &w_shape[2..];
        let mut output = Vec::with_capacity(input.len());
        for d in 0..input.len() {
            output.push(window_out(
                input[d],
                kernel[d],
                attrs.stride[d],
                attrs.padding[d],
                attrs.dilation[d],
            )?);
        }
        ConvGeometry::build(x_shape[0], c, o, input, &output, kernel, attrs)
    }

    /// The transposed convolution of `x: [N, C, *S]` with `w: [C, O/groups, *K]`
    /// into `[N, O, *S']`, `S' = (S-1)*stride - lo - hi + dilation*(K-1) + 1 + output_padding`,
    /// described as the convolution `[N, O, *S'] -> [N, C, *S]` whose input
    /// gradient it is (run it with [`conv_input_grad`]).
    pub fn conv_transpose(
        x_shape: &[usize],
        w_shape: &[usize],
        attrs: &ConvAttrs,
        output_padding: &[usize],
    ) -> Result<ConvGeometry, String> {
        let spatial = split_image("input", x_shape, &attr_lens(attrs, &[output_padding.len()]))?;
        if w_shape.len() != x_shape.len() {
            return Err(format!("weight {w_shape:?} must have rank {}", x_shape.len()));
        }
        let (c, og, groups) = (x_shape[1], w_shape[1], attrs.groups);
        if groups == 0 || w_shape[0] != c || c % groups != 0 {
            return Err(format!("input {x_shape:?} and weight {w_shape:?} do not fit {groups} group(s)"));
        }
        let o = og.checked_mul(groups).ok_or("channel count overflows")?;
        let kernel = &w_shape[2..];
        let mut full_output = Vec::with_capacity(spatial.len());
        for d in 0..spatial.len() {
            let (size, k, stride, dilation) = (spatial[d], kernel[d], attrs.stride[d], attrs.dilation[d]);
            if size == 0 || k == 0 || stride == 0 || dilation == 0 {
                return Err("sizes, kernel sizes, strides and dilations must be positive".into());
            }
            let full = (size - 1)
                .checked_mul(stride)
                .and_then(|v| v.checked_add(dilation.checked_mul(k - 1)?))
                .and_then(|v| v.checked_add(1)?.checked_add(output_padding[d]))
                .ok_or("output size overflows")?;
            let (lo, hi) = attrs.padding[d];
            match lo.checked_add(hi) {
                Some(cut) if cut < full => full_output.push(full - cut),
                _ => {
                    return Err(format!(
                        "padding {:?} removes the whole output of size {full}",
                        attrs.padding[d]
                    ))
                }
            }
        }
        ConvGeometry::build(x_shape[0], o, c, &full_output, spatial, kernel, attrs)
    }

    /// The weight gradient `(x: [N, C, *S], dy: [N, O, *S']) -> [O, C/groups, *kernel]`
    /// of the convolution of `x` with the given attributes; `dy` must have
    /// that convolution's output shape.
    pub fn weight_grad(
        x_shape: &[usize],
        dy_shape: &[usize],
        attrs: &ConvAttrs,
        kernel: &[usize],
    ) -> Result<ConvGeometry, String> {
        let input = split_image("input", x_shape, &attr_lens(attrs, &[kernel.len()]))?;
        if dy_shape.len() != x_shape.len() || dy_shape[0] != x_shape[0] {
            return Err(format!("output gradient {dy_shape:?} does not fit input {x_shape:?}"));
        }
        let (c, o, groups) = (x_shape[1], dy_shape[1], attrs.groups);
        if groups == 0 || c % groups != 0 || o % groups != 0 {
            return Err(format!("{c} input and {o} output channels do not fit {groups} group(s)"));
        }
        for d in 0..input.len() {
            let expected =
                window_out(input[d], kernel[d], attrs.stride[d], attrs.padding[d], attrs.dilation[d])?;
            if dy_shape[2 + d] != expected {
                return Err(format!(
                    "output gradient {dy_shape:?} does not match the convolution of {x_shape:?}"
                ));
            }
        }
        ConvGeometry::build(x_shape[0], c, o, input, &dy_shape[2..], kernel, attrs)
    }

    fn build(
        batch: usize,
        in_channels: usize,
        out_channels: usize,
        input: &[usize],
        output: &[usize],
        kernel: &[usize],
        attrs: &ConvAttrs,
    ) -> Result<ConvGeometry, String> {
        let geometry = ConvGeometry {
            batch,
            in_channels,
            out_channels,
            groups: attrs.groups,
            input: input.to_vec(),
            output: output.to_vec(),
            kernel: kernel.to_vec(),
            stride: attrs.stride.clone(),
            padding: attrs.padding.clone(),
            dilation: attrs.dilation.clone(),
        };
        // Every buffer size must be representable, so the kernels' index
        // arithmetic cannot overflow.
        for shape in [geometry.input_shape(), geometry.output_shape(), geometry.weight_shape()] {
            checked_product(&shape)?;
        }
        checked_product(&[in_channels, checked_product(kernel)?, checked_product(output)?])?;
        let padded: Vec<usize> = input
            .iter()
            .zip(&attrs.padding)
            .map(|(&s, &(lo, hi))| s.checked_add(lo).and_then(|v| v.checked_add(hi)))
            .collect::<Option<_>>()
            .ok_or("the padded input size overflows")?;
        checked_product(&[in_channels, checked_product(&padded)?])?;
        Ok(geometry)
    }

    /// `[N, C, *S]`: the convolution's input (a transposed convolution's output).
    pub fn input_shape(&self) -> Vec<usize> {
        [&[self.batch, self.in_channels][..], &self.input].concat()
    }

    /// `[N, O, *S']`: the convolution's output (a transposed convolution's input).
    pub fn output_shape(&self) -> Vec<usize> {
        [&[self.batch, self.out_channels][..], &self.output].concat()
    }

    /// `[O, C/groups, *K]`: the weight (a transposed convolution's weight too).
    pub fn weight_shape(&self) -> Vec<usize> {
        [&[self.out_channels, self.in_channels / self.groups][..], &self.kernel].concat()
    }

    /// True when the column matrix is the input itself (1×…×1 kernel,
    /// stride 1, no padding), so no scratch space is needed.
    pub fn is_pointwise(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1)
            && self.stride.iter().all(|&s| s == 1)
            && self.padding.iter().all(|&p| p == (0, 0))
            && self.input == self.output
    }

    /// The convolution as the Winograd kernels see it, when they compute it
    /// (2-D, 3×3, unit stride and dilation, one group, padding ≤ 2).
    pub fn winograd(&self) -> Option<super::winograd::Shape> {
        let two_d = self.input.len() == 2 && self.kernel == [3, 3];
        let unit = self.stride.iter().chain(&self.dilation).all(|&v| v == 1);
        let padded = self.padding.iter().all(|&(lo, hi)| lo <= 2 && hi <= 2);
        if !(two_d && unit && padded && self.groups == 1) {
            return None;
        }
        Some(super::winograd::Shape {
            batch: self.batch,
            c_in: self.in_channels,
            c_out: self.out_channels,
            in_h: self.input[0],
            in_w: self.input[1],
            out_h: self.output[0],
            out_w: self.output[1],
            lo_h: self.padding[0].0,
            lo_w: self.padding[1].0,
        })
    }

    /// True when some padding is not zero: packing then goes through a
    /// zero-padded copy of the image.
    pub fn is_padded(&self) -> bool {
        self.padding.iter().any(|&p| p != (0, 0))
    }

    /// Elements of the padded image scratch, `C · Π(S + lo + hi)` (0
    /// without padding).
    pub fn padded_len(&self) -> usize {
        if !self.is_padded() {
            return 0;
        }
        // Cannot overflow: `build` checked this product.
        self.in_channels
            * self.input.iter().zip(&self.padding).map(|(&s, &(lo, hi))| s + lo + hi).product::<usize>()
    }

    /// The row and column counts of the per-group products:
    /// (C/groups, O/groups, |K|, |S|, |S'|).
    fn dims(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.in_channels / self.groups,
            self.out_channels / self.groups,
            self.kernel.iter().product(),
            self.input.iter().product(),
            self.output.iter().product(),
        )
    }

    fn check_len(&self, what: &str, shape: &[usize], len: usize) -> Result<(), String> {
        let expected = checked_product(shape)?;
        if len != expected {
            return Err(format!("{what} holds {len} elements, its shape {shape:?} needs {expected}"));
        }
        Ok(())
    }
}

fn attr_lens(attrs: &ConvAttrs, extra: &[usize]) -> Vec<usize> {
    [&[attrs.stride.len(), attrs.padding.len(), attrs.dilation.len()][..], extra].concat()
}

/// The number of window positions along one axis.
fn window_out(
    size: usize,
    k: usize,
    stride: usize,
    (lo, hi): (usize, usize),
    dilation: usize,
) -> Result<usize, String> {
    if dilation == 0 || k == 0 {
        return Err("kernel sizes and dilations must be positive".into());
    }
    let extent = dilation.checked_mul(k - 1).and_then(|e| e.checked_add(1));
    let padded = size.checked_add(lo).and_then(|p| p.checked_add(hi));
    match (extent, padded) {
        (Some(extent), Some(padded)) if stride > 0 && padded >= extent => Ok((padded - extent) / stride + 1),
        _ => Err(format!(
            "a kernel of size {k} with dilation {dilation} and stride {stride} does not fit size {size} padded by ({lo}, {hi})"
        )),
    }
}

/// How the output positions of each image are cut into tiles: `rows`
/// output rows along the first spatial axis per tile (the last tile may
/// have fewer), a column block whose rows are `col_stride` elements apart,
/// and `step` elements of the packing source (the padded image, or the
/// image when unpadded) between the starts of two tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    pub rows: usize,
    pub col_stride: usize,
    pub step: usize,
}

/// One tile of an image's output positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tile {
    /// The first output position (flat over `S'`).
    first: usize,
    /// Output positions in the tile.
    columns: usize,
    /// Where the tile's packing source starts.
    source: usize,
    /// True for a last tile shorter than the others.
    short: bool,
}

impl Tiling {
    /// The tiling of a pointwise convolution, which packs nothing.
    pub fn pointwise() -> Tiling {
        Tiling { rows: 0, col_stride: 0, step: 0 }
    }

    /// The tiles of one image of `geometry`, checking that they fit it.
    fn tiles(&self, geometry: &ConvGeometry) -> Result<Vec<Tile>, String> {
        let rows_total = geometry.output[0];
        let row: usize = geometry.output[1..].iter().product();
        if self.rows == 0 || self.rows > rows_total || self.col_stride < self.rows * row {
            return Err(format!("tiles of {} rows do not fit output {:?}", self.rows, geometry.output));
        }
        let count = rows_total.div_ceil(self.rows);
        Ok((0..count)
            .map(|t| {
                let rows = self.rows.min(rows_total - t * self.rows);
                Tile {
                    first: t * self.rows * row,
                    columns: rows * row,
                    source: t * self.step,
                    short: rows < self.rows,
                }
            })
            .collect())
    }

    /// Elements of the column block of `geometry` (0 when pointwise).
    fn col_len(&self, geometry: &ConvGeometry) -> usize {
        if geometry.is_pointwise() {
            return 0;
        }
        geometry.in_channels * geometry.kernel.iter().product::<usize>() * self.col_stride
    }
}

/// Packs one tile of an image of a convolution's input into its column
/// block and back; implemented by the executable with generated kernels.
/// Every kernel runs over its whole iteration space.
pub trait Packing {
    /// Copies image `x` (`[C, *S]`, one batch element of
    /// [`ConvGeometry::input_shape`]) into the interior of `padded`
    /// ([`ConvGeometry::padded_len`] elements), whose border the caller
    /// keeps zero.
    fn pad(&self, x: &[f32], padded: &mut [f32]) -> Result<(), String>;

    /// Writes the column block of one tile into `col` (the tiling's
    /// `col_stride` elements per row); `source` is the padded image (or
    /// the image when unpadded) from the tile's start on; `short` selects
    /// the kernel of the shorter last tile.
    fn im2col(&self, short: bool, source: &[f32], col: &mut [f32]) -> Result<(), String>;

    /// The adjoint of [`Packing::im2col`]: adds every entry of the tile's
    /// column block onto the position of `target` (the padded image, or
    /// the image when unpadded, from the tile's start on) it was read from.
    fn col2im(&self, short: bool, col: &[f32], target: &mut [f32]) -> Result<(), String>;

    /// Copies the interior of `padded` into the image `dx`.
    fn unpad(&self, padded: &[f32], dx: &mut [f32]) -> Result<(), String>;
}

/// Scratch space of the convolution functions, reusable across calls.
#[derive(Debug, Default)]
pub struct Scratch {
    padded: Vec<f32>,
    col: Vec<f32>,
    /// The Winograd kernels' buffers.
    pub winograd: super::winograd::Scratch,
}

impl Scratch {
    /// The (padded image, column block) buffers of `geometry`, the padded
    /// image all zeros.
    ///
    /// Both start on a cache line (as the Winograd kernels' buffers), so
    /// that rows of whole lines are read without loads spanning two.
    fn prepare(&mut self, geometry: &ConvGeometry, tiling: &Tiling) -> (&mut [f32], &mut [f32]) {
        let (padded_len, col_len) = (geometry.padded_len(), tiling.col_len(geometry));
        self.padded.clear();
        self.padded.resize(padded_len + LINE_FLOATS, 0.0);
        if self.col.len() < col_len + LINE_FLOATS {
            self.col.resize(col_len + LINE_FLOATS, 0.0);
        }
        let (p, c) = (line_offset(&self.padded), line_offset(&self.col));
        (&mut self.padded[p..p + padded_len], &mut self.col[c..c + col_len])
    }
}

/// The packing source of image `x_b`: its padded copy when the convolution
/// pads, else the image itself.
fn source<'a>(
    geometry: &ConvGeometry,
    packing: &dyn Packing,
    x_b: &'a [f32],
    padded: &'a mut [f32],
) -> Result<&'a [f32], String> {
    if geometry.is_padded() {
        packing.pad(x_b, padded)?;
        Ok(padded)
    } else {
        Ok(x_b)
    }
}

/// The tail of `data` from `offset` on (an error when it lies beyond).
fn tail(data: &[f32], offset: usize) -> Result<&[f32], String> {
    data.get(offset..).ok_or_else(|| format!("tile start {offset} lies beyond {} elements", data.len()))
}

/// The forward convolution `y = conv(x, w)` of `geometry` (shapes
/// [`ConvGeometry::input_shape`], [`ConvGeometry::weight_shape`] →
/// [`ConvGeometry::output_shape`]); `y` is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    provider: &dyn GemmProvider,
    packing: &dyn Packing,
    geometry: &ConvGeometry,
    tiling: &Tiling,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    geometry.check_len("input", &geometry.input_shape(), x.len())?;
    geometry.check_len("weight", &geometry.weight_shape(), w.len())?;
    geometry.check_len("output", &geometry.output_shape(), y.len())?;
    let (cg, og, taps, inputs, outputs) = geometry.dims();
    let (groups, c, o) = (geometry.groups, geometry.in_channels, geometry.out_channels);
    let (padded, col) = scratch.prepare(geometry, tiling);
    for b in 0..geometry.batch {
        let x_b = &x[b * c * inputs..][..c * inputs];
        if geometry.is_pointwise() {
            for g in 0..groups {
                let w_g = MatRef::row_major(w, cg).at(g * og * cg);
                let x_g = MatRef::row_major(x_b, outputs).at(g * cg * outputs);
                let y_g = MatMut::row_major(&mut y[..], outputs).at((b * o + g * og) * outputs);
                provider.gemm(og, outputs, cg, 1.0, w_g, x_g, 0.0, y_g, 1)?;
            }
            continue;
        }
        let source = source(geometry, packing, x_b, padded)?;
        for tile in tiling.tiles(geometry)? {
            packing.im2col(tile.short, tail(source, tile.source)?, col)?;
            for g in 0..groups {
                let w_g = MatRef::row_major(w, cg * taps).at(g * og * cg * taps);
                let col_g = MatRef::row_major(col, tiling.col_stride).at(g * cg * taps * tiling.col_stride);
                let y_g = MatMut::row_major(&mut y[..], outputs).at((b * o + g * og) * outputs + tile.first);
                provider.gemm(og, tile.columns, cg * taps, 1.0, w_g, col_g, 0.0, y_g, 1)?;
            }
        }
    }
    Ok(())
}

/// The input gradient of the convolution `geometry`: `dx = conv_transpose(dy, w)`
/// with `dy` of [`ConvGeometry::output_shape`] and `dx` of
/// [`ConvGeometry::input_shape`] (overwritten). With a geometry from
/// [`ConvGeometry::conv_transpose`] this is the transposed convolution
/// (`dy` its input, `dx` its output).
#[allow(clippy::too_many_arguments)]
pub fn conv_input_grad(
    provider: &dyn GemmProvider,
    packing: &dyn Packing,
    geometry: &ConvGeometry,
    tiling: &Tiling,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    geometry.check_len("output gradient", &geometry.output_shape(), dy.len())?;
    geometry.check_len("weight", &geometry.weight_shape(), w.len())?;
    geometry.check_len("input gradient", &geometry.input_shape(), dx.len())?;
    let (cg, og, taps, inputs, outputs) = geometry.dims();
    let (groups, c, o) = (geometry.groups, geometry.in_channels, geometry.out_channels);
    let (padded, col) = scratch.prepare(geometry, tiling);
    for b in 0..geometry.batch {
        let dx_b = &mut dx[b * c * inputs..][..c * inputs];
        if geometry.is_pointwise() {
            for g in 0..groups {
                // W_gᵀ: [C/groups, O/groups], read through exchanged strides.
                let w_t = MatRef::row_major(w, cg).at(g * og * cg).t();
                let dy_g = MatRef::row_major(dy, outputs).at((b * o + g * og) * outputs);
                let dx_g = MatMut::row_major(&mut dx_b[..], outputs).at(g * cg * outputs);
                provider.gemm(cg, outputs, og, 1.0, w_t, dy_g, 0.0, dx_g, 1)?;
            }
            continue;
        }
        let target: &mut [f32] = if geometry.is_padded() { &mut padded[..] } else { &mut dx_b[..] };
        target.fill(0.0);
        for tile in tiling.tiles(geometry)? {
            for g in 0..groups {
                // W_gᵀ: [C/groups·|K|, O/groups], read through exchanged strides.
                let w_t = MatRef::row_major(w, cg * taps).at(g * og * cg * taps).t();
                let dy_g = MatRef::row_major(dy, outputs).at((b * o + g * og) * outputs + tile.first);
                let col_g =
                    MatMut::row_major(&mut col[..], tiling.col_stride).at(g * cg * taps * tiling.col_stride);
                provider.gemm(cg * taps, tile.columns, og, 1.0, w_t, dy_g, 0.0, col_g, 1)?;
            }
            let len = target.len();
            let at = target.get_mut(tile.source..).ok_or_else(|| format!("tile start beyond {len}"))?;
            packing.col2im(tile.short, col, at)?;
        }
        if geometry.is_padded() {
            packing.unpad(padded, dx_b)?;
        }
    }
    Ok(())
}

/// The weight gradient of the convolution `geometry`:
/// `dw[o, c, k] = Σ_{n, p} dy[n, o, p] · x[n, g·C/groups + c, p*stride + k*dilation - lo]`
/// with `x` of [`ConvGeometry::input_shape`], `dy` of
/// [`ConvGeometry::output_shape`] and `dw` of [`ConvGeometry::weight_shape`]
/// (overwritten; the images are added in batch order, the tiles of an
/// image in order).
#[allow(clippy::too_many_arguments)]
pub fn conv_weight_grad(
    provider: &dyn GemmProvider,
    packing: &dyn Packing,
    geometry: &ConvGeometry,
    tiling: &Tiling,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    geometry.check_len("input", &geometry.input_shape(), x.len())?;
    geometry.check_len("output gradient", &geometry.output_shape(), dy.len())?;
    geometry.check_len("weight gradient", &geometry.weight_shape(), dw.len())?;
    let (cg, og, taps, inputs, outputs) = geometry.dims();
    let (groups, c, o) = (geometry.groups, geometry.in_channels, geometry.out_channels);
    let (padded, col) = scratch.prepare(geometry, tiling);
    dw.fill(0.0);
    for b in 0..geometry.batch {
        let x_b = &x[b * c * inputs..][..c * inputs];
        if geometry.is_pointwise() {
            for g in 0..groups {
                let dy_g = MatRef::row_major(dy, outputs).at((b * o + g * og) * outputs);
                let x_t = MatRef::row_major(x_b, outputs).at(g * cg * outputs).t();
                let dw_g = MatMut::row_major(&mut dw[..], cg).at(g * og * cg);
                provider.gemm(og, cg, outputs, 1.0, dy_g, x_t, 1.0, dw_g, 1)?;
            }
            continue;
        }
        let source = source(geometry, packing, x_b, padded)?;
        for tile in tiling.tiles(geometry)? {
            packing.im2col(tile.short, tail(source, tile.source)?, col)?;
            for g in 0..groups {
                let dy_g = MatRef::row_major(dy, outputs).at((b * o + g * og) * outputs + tile.first);
                let col_t =
                    MatRef::row_major(col, tiling.col_stride).at(g * cg * taps * tiling.col_stride).t();
                let dw_g = MatMut::row_major(&mut dw[..], cg * taps).at(g * og * cg * taps);
                provider.gemm(og, cg * taps, tile.columns, 1.0, dy_g, col_t, 1.0, dw_g, 1)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(stride: &[usize], padding: &[(usize, usize)], dilation: &[usize], groups: usize) -> ConvAttrs {
        ConvAttrs { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
    }

    #[test]
    fn geometry_shapes() {
        // (x, w, attrs, output shape)
        let cases = [
            (vec![2, 4, 9], vec![6, 2, 3], attrs(&[2], &[(1, 0)], &[1], 2), vec![2, 6, 4]),
            (
                vec![1, 3, 8, 8],
                vec![5, 3, 3, 3],
                attrs(&[1, 1], &[(1, 1), (1, 1)], &[1, 1], 1),
                vec![1, 5, 8, 8],
            ),
            (
                vec![1, 1, 7, 7],
                vec![1, 1, 3, 2],
                attrs(&[2, 3], &[(0, 2), (1, 0)], &[2, 1], 1),
                vec![1, 1, 3, 3],
            ),
        ];
        for (x, w, a, want) in cases {
            let geometry = ConvGeometry::conv(&x, &w, &a).unwrap();
            assert_eq!(geometry.output_shape(), want, "{x:?} * {w:?}");
            assert_eq!(geometry.weight_shape(), w);
        }
    }

    #[test]
    fn bad_geometries_are_errors() {
        // (x, w, attrs)
        let cases = [
            (vec![2, 4, 9], vec![6, 2, 3], attrs(&[2], &[(1, 0)], &[1], 3)),
            (vec![2, 4, 9], vec![6, 4, 3], attrs(&[0], &[(0, 0)], &[1], 1)),
            (vec![2, 4, 2], vec![6, 4, 3], attrs(&[1], &[(0, 0)], &[1], 1)),
            (vec![2, 4, 9], vec![6, 4, 3], attrs(&[1, 1], &[(0, 0)], &[1], 1)),
            (vec![2, 4], vec![6, 4], attrs(&[], &[], &[], 1)),
            (vec![2, 4, 9], vec![6, 4, 3, 3], attrs(&[1], &[(0, 0)], &[1], 1)),
            (vec![2, 4, 9], vec![6, 4, 0], attrs(&[1], &[(0, 0)], &[1], 1)),
            (vec![usize::MAX, 4, 9], vec![6, 4, 3], attrs(&[1], &[(0, 0)], &[1], 1)),
        ];
        for (x, w, a) in cases {
            assert!(ConvGeometry::conv(&x, &w, &a).is_err(), "{x:?} * {w:?} with {a:?}");
        }
        let a = attrs(&[1], &[(2, 2)], &[1], 1);
        assert!(ConvGeometry::conv_transpose(&[1, 2, 1], &[2, 2, 1], &a, &[0]).is_err());
        assert!(ConvGeometry::weight_grad(&[1, 2, 5], &[1, 2, 4], &a, &[3]).is_err());
    }

    /// A packing for pointwise geometries, which never pack.
    struct NoPacking;

    impl Packing for NoPacking {
        fn pad(&self, _: &[f32], _: &mut [f32]) -> Result<(), String> {
            Err("a pointwise convolution packs nothing".into())
        }

        fn im2col(&self, _: bool, _: &[f32], _: &mut [f32]) -> Result<(), String> {
            Err("a pointwise convolution packs nothing".into())
        }

        fn col2im(&self, _: bool, _: &[f32], _: &mut [f32]) -> Result<(), String> {
            Err("a pointwise convolution packs nothing".into())
        }

        fn unpad(&self, _: &[f32], _: &mut [f32]) -> Result<(), String> {
            Err("a pointwise convolution packs nothing".into())
        }
    }

    #[test]
    fn scratch_lengths() {
        // (x, w, attrs, tiling, padded_len, col_len)
        let tiling = |rows, col_stride| Tiling { rows, col_stride, step: 0 };
        let cases = [
            (vec![1, 2, 5], vec![2, 2, 3], attrs(&[1], &[(1, 1)], &[1], 1), tiling(5, 16), 14, 6 * 16),
            (vec![1, 4, 9], vec![6, 2, 3], attrs(&[2], &[(0, 0)], &[1], 2), tiling(2, 8), 0, 12 * 8),
            (
                vec![2, 3, 4, 4],
                vec![5, 3, 1, 1],
                attrs(&[1, 1], &[(0, 0); 2], &[1, 1], 1),
                Tiling::pointwise(),
                0,
                0,
            ),
        ];
        for (x, w, a, t, padded, col) in cases {
            let geometry = ConvGeometry::conv(&x, &w, &a).unwrap();
            assert_eq!((geometry.padded_len(), t.col_len(&geometry)), (padded, col), "{x:?} * {w:?}");
        }
    }

    #[test]
    fn tiles_cover_the_output_rows() {
        // Output [5, 3] in tiles of 2 rows: 3 tiles, the last one short.
        let a = attrs(&[1, 1], &[(1, 1), (0, 0)], &[1, 1], 1);
        let geometry = ConvGeometry::conv(&[1, 2, 5, 5], &[3, 2, 3, 3], &a).unwrap();
        assert_eq!(geometry.output_shape(), vec![1, 3, 5, 3]);
        let tiling = Tiling { rows: 2, col_stride: 16, step: 10 };
        let tiles = tiling.tiles(&geometry).unwrap();
        let summary: Vec<(usize, usize, usize, bool)> =
            tiles.iter().map(|t| (t.first, t.columns, t.source, t.short)).collect();
        assert_eq!(summary, vec![(0, 6, 0, false), (6, 6, 10, false), (12, 3, 20, true)]);
        // Tiles that do not fit the output are errors.
        for bad in
            [Tiling { rows: 0, ..tiling }, Tiling { rows: 6, ..tiling }, Tiling { col_stride: 5, ..tiling }]
        {
            assert!(bad.tiles(&geometry).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wrong_buffer_lengths_are_errors() {
        let a = attrs(&[1], &[(0, 0)], &[1], 1);
        let geometry = ConvGeometry::conv(&[1, 2, 5], &[2, 2, 1], &a).unwrap();
        let provider = crate::exec::gemm::Reference;
        let mut scratch = Scratch::default();
        let (x, w, mut y) = (vec![0.0; 10], vec![0.0; 4], vec![0.0; 10]);
        let (p, t) = (&NoPacking, &Tiling::pointwise());
        assert!(conv(&provider, p, &geometry, t, &x[..9], &w, &mut y, &mut scratch).is_err());
        assert!(conv(&provider, p, &geometry, t, &x, &w[..3], &mut y, &mut scratch).is_err());
        assert!(conv(&provider, p, &geometry, t, &x, &w, &mut y[..9], &mut scratch).is_err());
        assert!(conv(&provider, p, &geometry, t, &x, &w, &mut y, &mut scratch).is_ok());
    }
}
