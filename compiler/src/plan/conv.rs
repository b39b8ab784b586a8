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
//! So each convolution is either
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
}

impl ConvAlgorithm {
    /// Elements of the column block (0 for a pointwise convolution).
    pub fn col_len(&self) -> usize {
        match *self {
            ConvAlgorithm::Pointwise => 0,
            ConvAlgorithm::Im2col { col_rows, col_stride, .. } => col_rows * col_stride,
        }
    }
}

impl fmt::Display for ConvAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConvAlgorithm::Pointwise => write!(f, "pointwise gemm (no im2col)"),
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
    pub image: &'a [usize],
    pub out: &'a [usize],
    pub taps: &'a [usize],
    pub attrs: &'a ConvAttrs,
}

impl ConvShape<'_> {
    /// True when the column matrix is the image itself.
    pub fn is_pointwise(&self) -> bool {
        self.attrs.padding.iter().all(|&p| p == (0, 0))
            && self.taps.iter().all(|&k| k == 1)
            && self.attrs.stride.iter().all(|&s| s == 1)
            && self.out == &self.image[1..]
    }

    /// The algorithm for this shape (see the module documentation).
    pub fn algorithm(&self) -> ConvAlgorithm {
        if self.is_pointwise() || self.out.is_empty() {
            return ConvAlgorithm::Pointwise;
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
    let (image, out, taps, attrs) = match op {
        Op::Conv(attrs) => (x.get(1..)?, y.get(2..)?, w.get(2..)?, attrs),
        Op::ConvTranspose { conv, .. } => (y.get(1..)?, x.get(2..)?, w.get(2..)?, conv),
        Op::ConvWeightGrad { conv, kernel } => (x.get(1..)?, w.get(2..)?, &kernel[..], conv),
        _ => return None,
    };
    Some(ConvShape { image, out, taps, attrs })
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
