//! What lowering produces: a [`Program`] — its inputs, its steps of
//! [`Call`]s over [`Buf`]fers, its outputs and the JIT that holds the
//! generated kernels — which the runtime loads and runs.

use crate::codegen::jit::{Checking, Jit, KernelId};
use crate::fusion::KernelKind;
use crate::ir::{ConvAttrs, DType, OutputKind, ValueId};

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// Elements `offset..offset + len` of the arena (f32-sized slots).
    Arena { offset: usize, len: usize },
    /// Graph input number `index` of [`Program::inputs`] (`len` elements).
    Input { index: usize, len: usize },
}

impl Buf {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match *self {
            Buf::Arena { len, .. } | Buf::Input { len, .. } => len,
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the two buffers share an element (the arena's ranges
    /// intersect, or both are the same input).
    pub fn overlaps(&self, other: &Buf) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        match (*self, *other) {
            (Buf::Arena { offset: a, len: la }, Buf::Arena { offset: b, len: lb }) => {
                a < b.saturating_add(lb) && b < a.saturating_add(la)
            }
            (Buf::Input { index: a, .. }, Buf::Input { index: b, .. }) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn buffers_overlap_when_they_share_an_element() {
        let arena = |offset, len| Buf::Arena { offset, len };
        let input = |index, len| Buf::Input { index, len };
        for (a, b, want) in [
            (arena(0, 4), arena(4, 4), false),
            (arena(0, 5), arena(4, 4), true),
            (arena(4, 4), arena(0, 5), true),
            (arena(2, 1), arena(0, 8), true),
            (arena(3, 0), arena(0, 8), false),
            (input(1, 4), input(1, 4), true),
            (input(1, 4), input(2, 4), false),
            (input(0, 4), arena(0, 4), false),
            (arena(usize::MAX - 1, 2), arena(usize::MAX - 1, 1), true),
        ] {
            assert_eq!(a.overlaps(&b), want, "{a:?} and {b:?}");
            assert_eq!(b.overlaps(&a), want, "{b:?} and {a:?}");
        }
    }
}

/// A strided matrix operand of a GEMM: element `(i, j)` of batch `b` is at
/// `buf[offsets[b] + i*row_stride + j*col_stride]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatOperand {
    pub buf: Buf,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// What a convolution call computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// `y = conv(x, w)`.
    Forward,
    /// `y = conv_transpose(x, w)` with this output padding.
    Transpose { output_padding: Vec<usize> },
    /// `dw = conv_weight_grad(x, dy)` for a kernel of these spatial sizes
    /// (`w` names `dy`, `y` names `dw`).
    WeightGrad { kernel: Vec<usize> },
}

/// The ops [`Call::Rows`] runs, each per row of the last axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowOp {
    /// `softmax(x)`: one operand.
    Softmax,
    /// `softmax_grad(y, dy)`: two operands.
    SoftmaxGrad,
    /// `standardize(x)` with this `eps`: one operand.
    Standardize { eps: f32 },
    /// `standardize_grad(x, dy)` with this `eps`: two operands.
    StandardizeGrad { eps: f32 },
}

impl RowOp {
    /// How many operands the op takes.
    pub fn operands(self) -> usize {
        match self {
            RowOp::Softmax | RowOp::Standardize { .. } => 1,
            RowOp::SoftmaxGrad | RowOp::StandardizeGrad { .. } => 2,
        }
    }
}

/// One thing a runtime does, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// Sets every element of `buf` to `value`.
    Fill { buf: Buf, value: f32 },
    /// Runs a loop kernel over each range (flat iteration indices); ranges
    /// are disjoint and may run in parallel.
    Loop { kernel: KernelId, inputs: Vec<Buf>, outputs: Vec<Buf>, ranges: Vec<(usize, usize)> },
    /// Runs a window kernel over each range of output rows.
    Window { kernel: KernelId, inputs: Vec<Buf>, output: Buf, ranges: Vec<(usize, usize)> },
    /// `c[b] = a[b] · b[b]` (or `c[b] += a[b] · b[b]` when `accumulate`)
    /// for every batch `b`: `a` is `m×k`, `b` `k×n`, `c` `m×n`;
    /// `offsets[b]` = (a, b, c) element offsets.
    MatMul {
        m: usize,
        n: usize,
        k: usize,
        a: MatOperand,
        b: MatOperand,
        c: MatOperand,
        offsets: Vec<(usize, usize, usize)>,
        /// Threads the GEMM may use.
        threads: usize,
        /// `C = A·B + C` (the result buffer holds the addend) instead of
        /// `C = A·B`.
        accumulate: bool,
    },
    /// A convolution over contiguous row-major buffers.
    Conv {
        kind: ConvKind,
        /// The IR op's attributes.
        attrs: ConvAttrs,
        x: Buf,
        x_shape: Vec<usize>,
        w: Buf,
        w_shape: Vec<usize>,
        y: Buf,
        y_shape: Vec<usize>,
        /// Parts the batch is split into (partial weight gradients are
        /// summed in part order).
        chunks: usize,
        /// The generated kernels that pack one image into the column matrix
        /// and back.
        packing: Box<ConvPacking>,
    },
    /// An op over rows of `len` contiguous elements ([`RowOp`]): `inputs`
    /// are its operands and `output` the result, each `rows·len`
    /// elements, row-major. The rows are cut into `parts` blocks, at most
    /// one per thread.
    Rows { op: RowOp, inputs: Vec<Buf>, output: Buf, rows: usize, len: usize, parts: usize },
    /// A fused LSTM recurrence (`grad`: its gradient) over contiguous
    /// row-major buffers, one per operand of the op (`K = features +
    /// hidden + 1`): `lstm`: `x [steps, batch, features]`, `w [4·hidden,
    /// K]`, `h0`, `c0 [batch, hidden]`, the result `output [steps, batch,
    /// 7·hidden + features + 1]`; `lstm_grad`: `y` (that result), the
    /// cotangents `dh`, `dc [n, batch, hidden]` and `dgates [n, batch,
    /// 4·hidden]` of the `n` steps each holds (`cotangent_steps`; each
    /// `None` when it is zero), `w`, `c0`, the
    /// result `output [steps, batch, 6·hidden]` (`None` when only the
    /// weight gradient is read), and the weight gradient `Σ zᵀ·dpre`
    /// (`[K, 4·hidden]`) when the call computes it. The batch rows are cut
    /// into `parts` blocks (at most one per thread), each running every
    /// step.
    Lstm {
        grad: bool,
        reverse: bool,
        batch: usize,
        steps: usize,
        hidden: usize,
        features: usize,
        inputs: Vec<Option<Buf>>,
        /// The steps each cotangent input holds (`lstm_grad`'s `from` and
        /// the input's steps); all the steps for the forward.
        cotangent_steps: [(usize, usize); 3],
        output: Option<Buf>,
        weight_grad: Option<WeightGrad>,
        parts: usize,
    },
}

/// Where an LSTM gradient call writes the weight gradient: a `[K, 4H]`
/// row-major buffer, or its transpose `[4H, K]` (the layout of the weight
/// itself, when every reader reads the sum transposed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightGrad {
    pub buf: Buf,
    pub transposed: bool,
}

/// The generated packing kernels of a convolution call and the tiling
/// they serve ([`crate::plan::conv::ConvAlgorithm`]), each over one image
/// of the underlying convolution's input `[C, *S]` (a forward
/// convolution's and weight gradient's `x`, a transposed convolution's
/// output), `|S'|` output positions and `|K|` taps.
///
/// Buffers: the image (`C·|S|` elements, row-major), the padded image
/// scratch (`C·Π(S + lo + hi)` elements, present only when some padding is
/// not zero; its border holds zeros) and the column block of one tile
/// (`C·|K|` rows of `col_stride` elements, row `c·|K| + tap`, the tile's
/// output positions row-major in the first columns; absent for pointwise
/// convolutions, whose column matrix is the image itself). A tile is
/// `tile_rows` output rows along the first spatial axis (the last tile of
/// an image may have fewer: `*_last` kernels); tile `t` reads the source
/// (the padded scratch, or the image when unpadded) from element
/// `t·tile_step` on. The runtime calls each kernel over its whole
/// iteration space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvPacking {
    /// Tile rows per block of a Winograd convolution (0: im2col or
    /// pointwise); such a convolution has no packing kernels.
    pub winograd_rows: usize,
    /// Elements of the padded image scratch (0 without padding).
    pub padded_len: usize,
    /// Elements of the column block (0 for a pointwise convolution).
    pub col_len: usize,
    /// Output rows (first spatial axis) of a full tile (0 for a pointwise
    /// convolution).
    pub tile_rows: usize,
    /// Elements between two rows of the column block.
    pub col_stride: usize,
    /// Elements of the source between the starts of two tiles.
    pub tile_step: usize,
    /// Copies the image into the interior of the padded scratch (inputs:
    /// image; outputs: padded).
    pub pad: Option<KernelId>,
    /// im2col of a full tile: copies every tap's receptive field from the
    /// source (at the tile's start) into the column block.
    pub im2col: Option<KernelId>,
    /// im2col of the last, shorter tile (when the tile rows do not divide
    /// the output rows).
    pub im2col_last: Option<KernelId>,
    /// col2im of a full tile (transposed convolutions): adds every entry of
    /// the column block onto the source position it was read from, tap by
    /// tap in a fixed order; the target starts zeroed.
    pub col2im: Option<KernelId>,
    /// col2im of the last, shorter tile.
    pub col2im_last: Option<KernelId>,
    /// Copies the interior of the padded scratch into the image.
    pub unpad: Option<KernelId>,
}

/// One step of the program: the calls of one kernel of the partition.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCode {
    /// The partition's kernel name (`k3`).
    pub name: String,
    pub kind: KernelKind,
    pub calls: Vec<Call>,
}

/// A graph input the caller provides.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramInput {
    pub value: ValueId,
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// Where a graph output is read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Element `i` (row-major over `shape`) at `buf[offset + Σ i_a·strides[a]]`.
    Strided { buf: Buf, offset: isize, strides: Vec<isize> },
    /// Every element equals this constant.
    Constant(f32),
}

/// A graph output.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramOutput {
    pub kind: OutputKind,
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub source: Source,
}

/// A lowered graph: its inputs, steps, outputs, arena size and JIT.
pub struct Program {
    pub inputs: Vec<ProgramInput>,
    pub steps: Vec<StepCode>,
    pub outputs: Vec<ProgramOutput>,
    /// Arena elements needed (the plan's peak plus scratch regions).
    pub arena_len: usize,
    /// The compiled loop and window kernels.
    pub jit: Jit,
    /// The threads the plan split the kernels for.
    pub threads: usize,
    /// Whether the kernels bounds-check every access.
    pub checking: Checking,
    /// The plan's peak arena bytes.
    pub peak_bytes: usize,
    /// The number of kernels of the partition.
    pub kernels: usize,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("inputs", &self.inputs)
            .field("steps", &self.steps)
            .field("outputs", &self.outputs)
            .field("arena_len", &self.arena_len)
            .field("threads", &self.threads)
            .field("checking", &self.checking)
            .finish()
    }
}
