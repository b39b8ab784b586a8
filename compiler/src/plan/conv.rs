//! Convolution algorithms: how the matrix products of each convolution
//! kernel are cut.
//!
//! A convolution is a GEMM over its column matrix (im2col): `C·|K|` rows
//! (input channel, tap), one column per output position. The tuned GEMM
//! (the `gemm` crate) reads a column matrix it is handed in place, without
//! packing it, when the products have few output channels, so its speed
//! depends on how much of that matrix stays in cache. Measured on the
//! target machine (one thread, `runtime/benches/gemm.rs`, group
//! `conv_tiles`), for the 3×3 convolutions of the benchmark U-Net:
//!
//! | O × C·K × positions | whole image | whole batch (8) | 128–256-column tiles |
//! |---|---|---|---|
//! | 32 × 864 × 4096 | 11 GFLOP/s | 7 | 84–92 |
//! | 32 × 288 × 4096 | 62 | 9 | 81–89 |
//! | 64 × 1728 × 1024 | 73 | 19 | 83–88 |
//! | 128 × 1152 × 256 | 92 | 38 | 89–93 |
//!
//! Folding the images of a batch into one product makes the column matrix
//! larger and the products slower; cutting each image's output positions
//! into tiles whose column block stays in the L2 cache keeps every product
//! near the library's peak (~90 GFLOP/s). Rows of a tile are padded by
//! [`COL_PAD`] elements: a row length that is a multiple of 4 KiB maps the
//! rows of a tile onto the same cache sets (measured 32 → 78 GFLOP/s at
//! 32 × 36 × 4096).
//!
//! 3×3 convolutions with unit stride and dilation avoid most of those
//! products: Winograd F(2×2, 3×3) computes a 2×2 output tile with 16
//! products per channel pair where the direct form needs 36. Measured on
//! the target machine (one thread, `runtime/benches/gemm.rs`, group
//! `winograd`; GFLOP/s counted as the direct convolution's 2·O·C·9 per
//! output, so they compare with the im2col column above; forward / input
//! gradient / weight gradient; the im2col figures of the ResNet layer
//! from `nnc bench --profile`):
//!
//! | N × C × side → O | im2col | Winograd, 512-tile blocks |
//! |---|---|---|
//! | 32 × 16 × 32 → 16 | 119 / 84 / 73 | 186 / 187 / 153 |
//! | 8 × 32 × 64 → 32 | 84–92 | 267 / 263 / 205 |
//! | 8 × 96 × 64 → 32 | 84–92 | 286 / 318 / 218 |
//! | 8 × 192 × 32 → 64 | 83–88 | 310 / 365 / 284 |
//! | 8 × 128 × 16 → 128 | 89–93 | 266 / 225 / 236 |
//!
//! A block's transformed input and products (`16·4·(C + O)` bytes per
//! tile) are written by the input transform, read and written by the 16
//! products, and read by the output transform; the forward convolution
//! and the input gradient run fastest when they stay in half the L2 cache
//! (`runtime/benches/gemm.rs`, group `winograd`, forward at 8 × 96 × 64 →
//! 32: 5.8 ms in 128-tile blocks of 1 MiB, 7.6 ms in 512-tile blocks of
//! 4 MiB; at 64 × 32 × 14 → 64, 2.25 ms in 128–256-tile blocks, 2.4 in
//! 512). Weight gradients run fastest in large blocks, whatever their
//! bytes: their products sum over the tiles and each block ends with a
//! horizontal sum per channel pair (8 × 192 × 32 → 64: 9.4 ms in
//! 128-tile blocks, 6.6 ms in 512).
//!
//! So each convolution is either
//! - [`ConvAlgorithm::Winograd`]: a 2-D 3×3 kernel with unit stride and
//!   dilation, one group, padding of at most 2 and at least
//!   [`WINOGRAD_MIN_CHANNELS`] channels in and out, in blocks of whole
//!   tile rows: for the forward convolution and the input gradient, of at
//!   most [`WINOGRAD_BLOCK_BYTES`] of transformed input and products
//!   (between [`WINOGRAD_MIN_TILES`] and [`WINOGRAD_TILES`] tiles); for
//!   the weight gradient, of about [`WINOGRAD_TILES`] tiles (at most
//!   [`WINOGRAD_BYTES`]);
//! - [`ConvAlgorithm::Pointwise`]: a 1×…×1 kernel with unit stride and no
//!   padding, whose column matrix is the image itself: one GEMM per image
//!   and group, no packing; or
//! - [`ConvAlgorithm::Im2col`]: per image, tiles of whole output rows
//!   (along the first spatial axis) of at most [`TILE_COLUMNS`] positions
//!   and a column block of at most [`TILE_BYTES`] (but not below
//!   [`MIN_TILE_COLUMNS`] positions when rows allow); per tile, im2col into the
//!   block and one GEMM per group writing the result tile in place (NCHW,
//!   no copy), or for the input gradient one GEMM into the block and col2im
//!   out of it; weight gradients accumulate tile after tile in the GEMM.

use std::fmt;

use crate::fusion::{Kernel, KernelKind};
use crate::ir::{ConvAttrs, Graph, Op, ValueId};

/// Most output positions (columns) in one tile.
pub const TILE_COLUMNS: usize = 256;

/// Most bytes of one tile's column block, unless that would leave fewer
/// than [`MIN_TILE_COLUMNS`] columns.
pub const TILE_BYTES: usize = 512 * 1024;

/// Fewest output positions (columns) a tile is cut down to for
/// [`TILE_BYTES`]: narrower products leave the GEMM's tiles half empty
/// (64 columns at 64 × 1728: 88 GFLOP/s).
pub const MIN_TILE_COLUMNS: usize = 64;

/// Elements added to the rows of a column block (beyond rounding the row
/// up to 16 elements), so that consecutive rows fall on different cache
/// sets.
pub const COL_PAD: usize = 16;

/// Fewest input and output channels of a convolution run by Winograd.
pub const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Most tiles of a Winograd block (rounded up to whole tile rows).
pub const WINOGRAD_TILES: usize = 512;

/// Most bytes of a weight gradient's Winograd block: its transformed input
/// and output gradient.
pub const WINOGRAD_BYTES: usize = 8 << 20;

/// Most bytes of a forward or input-gradient Winograd block's transformed
/// input and products (half the L2 cache of the target machine), unless
/// that would leave fewer than [`WINOGRAD_MIN_TILES`] tiles.
pub const WINOGRAD_BLOCK_BYTES: usize = 1 << 20;

/// Fewest tiles a forward or input-gradient block is cut down to for
/// [`WINOGRAD_BLOCK_BYTES`].
pub const WINOGRAD_MIN_TILES: usize = 64;

/// The algorithm of one convolution kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// The image is the column matrix: one GEMM per image and group.
    Pointwise,
    /// im2col by tiles of `rows` output rows (along the first spatial
    /// axis; the last tile may have fewer): `columns` output positions per
    /// full tile, a column block of `col_rows` rows of `col_stride`
    /// elements.
    Im2col { rows: usize, columns: usize, col_rows: usize, col_stride: usize },
    /// Winograd F(2×2, 3×3) (`nnc_runtime::exec::winograd`): a 2-D 3×3
    /// kernel with unit stride and dilation, one group and padding of at
    /// most 2 on each side, processed in blocks of `rows` rows of 2×2
    /// output tiles (`tiles` tiles per block).
    Winograd { rows: usize, tiles: usize },
}

impl ConvAlgorithm {
    /// Elements of the column block (0 for a pointwise convolution).
    pub fn col_len(&self) -> usize {
        match *self {
            ConvAlgorithm::Pointwise | ConvAlgorithm::Winograd { .. } => 0,
            ConvAlgorithm::Im2col { col_rows, col_stride, .. } => col_rows * col_stride,
        }
    }
}

impl fmt::Display for ConvAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConvAlgorithm::Pointwise => write!(f, "pointwise gemm (no im2col)"),
            ConvAlgorithm::Winograd { rows, tiles } => {
                let noun = if rows == 1 { "row" } else { "rows" };
                write!(f, "winograd F(2x2,3x3), blocks of {rows} tile {noun} ({tiles} tiles)")
            }
            ConvAlgorithm::Im2col { rows, columns, col_rows, col_stride } => {
                let noun = if rows == 1 { "row" } else { "rows" };
                write!(
                    f,
                    "im2col tiles of {rows} output {noun} ({columns} columns), column block {col_rows}x{col_stride} ({} KiB)",
                    (col_rows * col_stride * 4).div_ceil(1024)
                )
            }
        }
    }
}

/// The underlying convolution of a convolution op: its input image
/// `[C, *S]`, output positions `S'` and kernel `K` (a transposed
/// convolution is the input gradient of the convolution whose input is its
/// output; a weight gradient reads the convolution's input and output).
pub struct ConvShape<'a> {
    /// Output channels of the underlying convolution.
    pub channels: usize,
    pub image: &'a [usize],
    pub out: &'a [usize],
    pub taps: &'a [usize],
    pub attrs: &'a ConvAttrs,
    /// The op computes the weight gradient (its products sum over the
    /// tiles, so larger blocks need fewer partial sums).
    pub weight_grad: bool,
}

impl ConvShape<'_> {
    /// True when the column matrix is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.attrs.padding.iter().all(|&p| p == (0, 0))
            && self.taps.iter().all(|&k| k == 1)
            && self.attrs.stride.iter().all(|&s| s == 1)
            && self.out == &self.image[1..]
    }

    /// True when Winograd F(2×2, 3×3) computes this convolution: two
    /// spatial axes, a 3×3 kernel, unit stride and dilation, one group,
    /// padding of at most 2 on each side (the input gradient is then a
    /// convolution padded by `2 - lo`), and at least
    /// [`WINOGRAD_MIN_CHANNELS`] input and output channels.
    pub fn is_winograd(&self) -> bool {
        let a = self.attrs;
        self.taps == [3, 3]
            && self.image.len() == 3
            && self.out.len() == 2
            && a.stride.iter().all(|&s| s == 1)
            && a.dilation.iter().all(|&d| d == 1)
            && a.groups == 1
            && a.padding.iter().all(|&(lo, hi)| lo <= 2 && hi <= 2)
            && (0..2).all(|d| self.image[d + 1] + a.padding[d].0 + a.padding[d].1 == self.out[d] + 2)
            && self.image[0] >= WINOGRAD_MIN_CHANNELS
            && self.channels >= WINOGRAD_MIN_CHANNELS
    }

    /// The algorithm for this shape (see the module documentation).
    pub fn algorithm(&self) -> ConvAlgorithm {
        if self.is_pointwise() || self.out.is_empty() {
            return ConvAlgorithm::Pointwise;
        }
        if self.is_winograd() {
            let tw = self.out[1].div_ceil(2);
            let channels = self.image[0] + self.channels;
            // Bytes of a block's transformed input and products per tile.
            let per_tile = 16 * 4 * channels;
            let tiles = if self.weight_grad {
                WINOGRAD_TILES.min(WINOGRAD_BYTES / per_tile).max(1)
            } else {
                (WINOGRAD_BLOCK_BYTES / per_tile).clamp(WINOGRAD_MIN_TILES, WINOGRAD_TILES)
            };
            // Blocks run across image boundaries, so they may hold more
            // rows than one image has.
            let rows = tiles.div_ceil(tw).max(1);
            return ConvAlgorithm::Winograd { rows, tiles: rows * tw };
        }
        let col_rows = self.image[0].saturating_mul(self.taps.iter().product());
        let row: usize = self.out[1..].iter().product::<usize>().max(1);
        let stride_of = |columns: usize| columns.next_multiple_of(16) + COL_PAD;
        let mut rows = (TILE_COLUMNS / row).clamp(1, self.out[0]);
        while rows > 1
            && (rows - 1) * row >= MIN_TILE_COLUMNS
            && col_rows.saturating_mul(stride_of(rows * row)).saturating_mul(4) > TILE_BYTES
        {
            rows -= 1;
        }
        let columns = rows * row;
        ConvAlgorithm::Im2col { rows, columns, col_rows, col_stride: stride_of(columns) }
    }
}

/// The shapes of the underlying convolution of `node` (a `conv`,
/// `conv_transpose` or `conv_weight_grad`), from its operand and result
/// shapes; `None` for any other op.
pub fn conv_shape<'a>(op: &'a Op, x: &'a [usize], w: &'a [usize], y: &'a [usize]) -> Option<ConvShape<'a>> {
    // The underlying convolution's weight is `[O, C/groups, *K]` (a
    // transposed convolution's too); a weight gradient reads `dy: [N, O, *S']`.
    let (image, out, taps, attrs, channels) = match op {
        Op::Conv(attrs) => (x.get(1..)?, y.get(2..)?, w.get(2..)?, attrs, *w.first()?),
        Op::ConvTranspose { conv, .. } => (y.get(1..)?, x.get(2..)?, w.get(2..)?, conv, *w.first()?),
        Op::ConvWeightGrad { conv, kernel } => (x.get(1..)?, w.get(2..)?, &kernel[..], conv, *w.get(1)?),
        _ => return None,
    };
    let weight_grad = matches!(op, Op::ConvWeightGrad { .. });
    Some(ConvShape { channels, image, out, taps, attrs, weight_grad })
}

/// The algorithm of a contraction kernel's convolution, or `None` when the
/// kernel is no convolution.
pub(super) fn algorithm(
    graph: &Graph,
    kernel: &Kernel,
    resolve: &dyn Fn(ValueId) -> Result<Vec<usize>, String>,
) -> Result<Option<(ValueId, ConvAlgorithm)>, String> {
    if !matches!(kernel.kind, KernelKind::Conv | KernelKind::ConvTranspose | KernelKind::ConvWeightGrad) {
        return Ok(None);
    }
    let Some(main) = kernel.nodes.iter().copied().find(|n| !kernel.epilogue.contains(n)) else {
        return Ok(None);
    };
    let node = graph.node(main);
    let (Some(&a), Some(&b)) = (node.args.first(), node.args.get(1)) else { return Ok(None) };
    let (x, w, y) = (resolve(a)?, resolve(b)?, resolve(main)?);
    Ok(conv_shape(&node.op, &x, &w, &y).map(|s| (main, s.algorithm())))
}
