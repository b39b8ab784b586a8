//! Contractions: a `matmul` (or `matmul_sum`) becomes a [`Call::MatMul`]
//! over strided operands, a convolution a [`Call::Conv`] with its packing kernels
//! ([`ConvPacking`]); either is followed by its epilogue as a loop kernel
//! that reads the contraction's result. A matmul that accumulates onto a
//! sum ([`Kernel::accumulate`]) first copies the addend into the sum's
//! buffer, then adds its product there.

use super::access::{row_major, Access};
use super::{Call, ConvKind, ConvPacking, Lowering, MatOperand};
use crate::codegen::loops::{Elem, Expr, LoopKernel, Operand, Reduce, Store};
use crate::fusion::Kernel;
use crate::ir::{Op, ValueId};
use crate::plan::{self, conv::ConvAlgorithm, conv::ConvShape};

/// The multiply-adds below which a GEMM runs on one thread: handing a
/// smaller product to several threads costs more in synchronisation than
/// it saves.
pub const PARALLEL_GEMM_WORK: usize = 1 << 22;

impl Lowering<'_> {
    /// The calls of a contraction kernel: its GEMM or convolution, then its
    /// epilogue.
    pub(super) fn contraction_calls(
        &mut self,
        kernel: &Kernel,
        step: &plan::Step,
    ) -> Result<Vec<Call>, String> {
        let main = kernel
            .nodes
            .iter()
            .copied()
            .find(|n| !kernel.epilogue.contains(n))
            .ok_or_else(|| format!("{} has no contraction", kernel.name))?;
        let node = self.graph.node(main);
        let y_shape = self.shape(main)?;
        // The buffer the contraction writes: its own result, or the sum it
        // accumulates onto.
        let result = kernel.accumulate.map_or(main, |(sum, _)| sum);
        let y = self.buf(result)?;
        let mut calls = vec![];
        match &node.op {
            Op::MatMul | Op::MatMulSum => {
                let summed = node.op == Op::MatMulSum;
                let (a, b) = (node.args[0], node.args[1]);
                let a_shape = self.shape(a)?;
                let r = a_shape.len();
                let (m, k, n) = (a_shape[r - 2], a_shape[r - 1], *y_shape.last().ok_or("a scalar product")?);
                let mat =
                    |this: &mut Self, v: ValueId, calls: &mut Vec<Call>, tag: &str| -> Result<_, String> {
                        match this.access(v)? {
                            Access::Mem { base, offset, strides } => Ok((this.buf(base)?, offset, strides)),
                            Access::Const(_) => {
                                let buf = this.contiguous(v, format!("{}_{tag}", kernel.name), calls)?;
                                Ok((buf, 0, row_major(&this.shape(v)?)))
                            }
                        }
                    };
                let (mut abuf, mut aoff, mut ast) = mat(self, a, &mut calls, "a")?;
                let (mut bbuf, mut boff, mut bst) = mat(self, b, &mut calls, "b")?;
                let Access::Mem { offset: c_offset, strides: cst, .. } = self.access(result)? else {
                    return Err(format!("{result}: a matmul result is a constant"));
                };
                if let Some((_, addend)) = kernel.accumulate {
                    // The addend is copied into the result unless the plan
                    // keeps the sum in the addend's own buffer (both then
                    // have the same row-major layout: the addend is a
                    // product or sum read directly, never transposed).
                    let src = self.access(addend)?;
                    let (in_place, same_layout) = match &src {
                        Access::Mem { base, offset, strides } => {
                            (self.buf(*base)? == y, *offset == c_offset && *strides == cst)
                        }
                        Access::Const(_) => (false, false),
                    };
                    if in_place && !same_layout {
                        return Err(format!(
                            "{}: the sum {result} shares its addend's buffer in another layout",
                            kernel.name
                        ));
                    }
                    if !in_place {
                        let name = format!("{}_addend", kernel.name);
                        calls.push(self.copy_into(
                            name,
                            src,
                            &y_shape,
                            y,
                            (c_offset, cst.clone(), Elem::F32),
                            1,
                        )?);
                    }
                }
                let batch_shape = &a_shape[..r - 2];
                let offsets_of = |aoff: isize, ast: &[isize], boff: isize, bst: &[isize]| {
                    let batches: usize = batch_shape.iter().product();
                    let mut offsets = Vec::with_capacity(batches);
                    for bi in 0..batches {
                        let mut rem = bi;
                        let (mut ao, mut bo, mut co) = (aoff, boff, c_offset);
                        for d in (0..r - 2).rev() {
                            let i = (rem % batch_shape[d]) as isize;
                            rem /= batch_shape[d];
                            ao += i * ast[d];
                            bo += i * bst[d];
                            // A summed product writes one result for every batch.
                            if !summed {
                                co += i * cst[d];
                            }
                        }
                        let conv = |x: isize| {
                            usize::try_from(x).map_err(|_| format!("{main}: negative operand offset"))
                        };
                        offsets.push((conv(ao)?, conv(bo)?, conv(co)?));
                    }
                    Ok::<_, String>(offsets)
                };
                let mut offsets = offsets_of(aoff, &ast, boff, &bst)?;
                let (c_row, c_col) = (cst[cst.len() - 2], cst[cst.len() - 1]);
                let batched = offsets.len() > 1;
                let (a_part, b_part, c_part): (Part, Part, Part) = (|o| o.0, |o| o.1, |o| o.2);
                if !summed
                    && batched
                    && fold_batches_into_rows(&offsets, m, ast[r - 2], c_row).is_none()
                    && advances(&offsets, b_part, 0)
                    && c_row > 0
                    && advances(&offsets, c_part, (m as isize) * c_row)
                {
                    // Batches of rows of a strided view (a time-major view
                    // of a batch-major sequence) times one shared matrix: a
                    // row-major copy of A makes them one product.
                    abuf = self.contiguous(a, format!("{}_a_rows", kernel.name), &mut calls)?;
                    (aoff, ast) = (0, row_major(&a_shape));
                    offsets = offsets_of(aoff, &ast, boff, &bst)?;
                }
                // A sum over batches is one product over `batches·K` when
                // each batch's columns of A and rows of B continue the
                // previous batch's; an operand whose batches do not is
                // copied so that they do: A with its columns outermost
                // within a batch, B row-major.
                if summed && batched && !advances(&offsets, a_part, (k as isize) * ast[r - 1]) {
                    // Copied as its transpose `[..., K, M]`, row-major, so
                    // that the copy writes in order.
                    let mut swapped = a_shape.clone();
                    swapped.swap(r - 2, r - 1);
                    let src = match self.access(a)? {
                        Access::Mem { base, offset, mut strides } => {
                            strides.swap(r - 2, r - 1);
                            Access::Mem { base, offset, strides }
                        }
                        constant => constant,
                    };
                    abuf = self.scratch(a_shape.iter().product());
                    let name = format!("{}_a_columns", kernel.name);
                    let written = row_major(&swapped);
                    calls.push(self.copy_into(
                        name,
                        src,
                        &swapped,
                        abuf,
                        (0, written.clone(), Elem::F32),
                        1,
                    )?);
                    ast = written;
                    ast.swap(r - 2, r - 1);
                    aoff = 0;
                    offsets = offsets_of(aoff, &ast, boff, &bst)?;
                }
                if summed && batched && !advances(&offsets, b_part, (k as isize) * bst[r - 2]) {
                    bbuf = self.contiguous(b, format!("{}_b_rows", kernel.name), &mut calls)?;
                    (boff, bst) = (0, row_major(&self.shape(b)?));
                    offsets = offsets_of(aoff, &ast, boff, &bst)?;
                }
                // A product of every batch's rows with one shared matrix
                // (a dense layer over [B, T, F]) is one product of all the
                // rows when the batches' rows follow each other in A and C.
                let folded_rows =
                    if summed { None } else { fold_batches_into_rows(&offsets, m, ast[r - 2], c_row) };
                let folded_depth =
                    if summed { fold_batches_into_depth(&offsets, k, ast[r - 1], bst[r - 2]) } else { None };
                if summed && batched && folded_depth.is_none() {
                    return Err(format!(
                        "{main}: the batches of a summed product do not continue each other"
                    ));
                }
                let (m, k) = match (folded_rows, folded_depth) {
                    (Some(rows), _) => {
                        offsets.truncate(1);
                        (rows, k)
                    }
                    (_, Some(depth)) => {
                        offsets.truncate(1);
                        (m, depth)
                    }
                    _ => (m, k),
                };
                calls.push(Call::MatMul {
                    m,
                    n,
                    k,
                    a: MatOperand { buf: abuf, row_stride: ast[r - 2], col_stride: ast[r - 1] },
                    b: MatOperand { buf: bbuf, row_stride: bst[r - 2], col_stride: bst[r - 1] },
                    c: MatOperand { buf: y, row_stride: c_row, col_stride: c_col },
                    threads: if m * n * k * offsets.len() >= PARALLEL_GEMM_WORK {
                        self.plan.threads
                    } else {
                        1
                    },
                    offsets,
                    accumulate: kernel.accumulate.is_some(),
                });
            }
            Op::Conv(conv) | Op::ConvWeightGrad { conv, .. } | Op::ConvTranspose { conv, .. } => {
                let kind = match &node.op {
                    Op::ConvWeightGrad { kernel, .. } => ConvKind::WeightGrad { kernel: kernel.clone() },
                    Op::ConvTranspose { output_padding, .. } => {
                        ConvKind::Transpose { output_padding: output_padding.clone() }
                    }
                    _ => ConvKind::Forward,
                };
                let x = self.contiguous(node.args[0], format!("{}_x", kernel.name), &mut calls)?;
                let w = self.contiguous(node.args[1], format!("{}_w", kernel.name), &mut calls)?;
                let attrs = conv.clone();
                let (x_shape, w_shape) = (self.shape(node.args[0])?, self.shape(node.args[1])?);
                let algorithm = self.plan.convs.get(&main).cloned().ok_or_else(|| {
                    format!("{}: the plan chose no algorithm for convolution {main}", kernel.name)
                })?;
                let shape = plan::conv::conv_shape(&node.op, &x_shape, &w_shape, &y_shape)
                    .ok_or_else(|| format!("{}: convolution shapes do not fit", kernel.name))?;
                let packing = self.conv_packing(&kernel.name, &kind, &shape, &algorithm)?;
                calls.push(Call::Conv {
                    kind,
                    attrs,
                    x,
                    x_shape,
                    w,
                    w_shape,
                    y,
                    y_shape: y_shape.clone(),
                    chunks: step.split.chunks,
                    packing: Box::new(packing),
                });
            }
            other => return Err(format!("{main} ({}) is not a contraction", other.mnemonic())),
        }
        if !kernel.epilogue.is_empty() {
            let outputs: Vec<ValueId> =
                kernel.outputs.iter().copied().filter(|o| kernel.epilogue.contains(o)).collect();
            calls.extend(self.loop_calls(
                &format!("{}_epilogue", kernel.name),
                &kernel.epilogue,
                &outputs,
                &y_shape,
                &step.split,
            )?);
        }
        Ok(calls)
    }

    /// Compiles the packing kernels of a convolution (see [`ConvPacking`])
    /// of `shape` for the plan's `algorithm`.
    fn conv_packing(
        &mut self,
        name: &str,
        kind: &ConvKind,
        shape: &ConvShape,
        algorithm: &ConvAlgorithm,
    ) -> Result<ConvPacking, String> {
        let ConvShape { image, out, taps, attrs, .. } = *shape;
        let spatial = image.len().saturating_sub(1);
        if spatial == 0
            || out.len() != spatial
            || taps.len() != spatial
            || [attrs.stride.len(), attrs.padding.len(), attrs.dilation.len()].iter().any(|&l| l != spatial)
        {
            return Err(format!("{name}: convolution attributes do not fit image {image:?}"));
        }
        let size = |dims: &[usize]| -> Result<usize, String> {
            dims.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .filter(|&n| isize::try_from(n).is_ok())
                .ok_or_else(|| format!("{name}: the size of {dims:?} overflows"))
        };
        let padded_dims: Vec<usize> = (0..=spatial)
            .map(|d| match d {
                0 => Some(image[0]),
                _ => image[d].checked_add(attrs.padding[d - 1].0)?.checked_add(attrs.padding[d - 1].1),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{name}: the padded image size overflows"))?;
        let padded = attrs.padding.iter().any(|&p| p != (0, 0));
        let padded_len = if padded { size(&padded_dims)? } else { 0 };
        if let &ConvAlgorithm::Winograd { rows, .. } = algorithm {
            if !shape.is_winograd() || rows == 0 {
                return Err(format!("{name}: the plan's Winograd blocks do not fit the convolution"));
            }
            return Ok(ConvPacking { winograd_rows: rows, ..ConvPacking::default() });
        }
        let mut packing = ConvPacking {
            winograd_rows: 0,
            padded_len,
            col_len: 0,
            tile_rows: 0,
            col_stride: 0,
            tile_step: 0,
            pad: None,
            im2col: None,
            im2col_last: None,
            col2im: None,
            col2im_last: None,
            unpad: None,
        };
        let &ConvAlgorithm::Im2col { rows: tile_rows, col_rows, col_stride, .. } = algorithm else {
            if shape.is_pointwise() {
                return Ok(packing);
            }
            return Err(format!("{name}: a convolution with a window needs im2col"));
        };
        if tile_rows == 0 || tile_rows > out[0] || col_rows != size(&[&image[..1], taps].concat())? {
            return Err(format!("{name}: the plan's tiles do not fit the convolution"));
        }
        packing.col_len = size(&[col_rows, col_stride])?;
        packing.tile_rows = tile_rows;
        packing.col_stride = col_stride;
        // Where a column entry (c, tap, p) reads in the padded image:
        // c·|Sp| + Σ (tap_d·dilation_d + p_d·stride_d)·row_d.
        let rows = row_major(&padded_dims);
        let at = |v: usize| isize::try_from(v).map_err(|_| format!("{name}: a stride overflows"));
        let mut window = vec![rows[0]];
        for d in 0..spatial {
            window.push(at(attrs.dilation[d])?.checked_mul(rows[d + 1]).ok_or("stride overflow")?);
        }
        for d in 0..spatial {
            window.push(at(attrs.stride[d])?.checked_mul(rows[d + 1]).ok_or("stride overflow")?);
        }
        // Tile `t` starts at output row `t·tile_rows`, which reads from
        // source row `t·tile_rows·stride_0` on (the source is the padded
        // image, or the image itself, whose rows are then the same).
        packing.tile_step = attrs.stride[0]
            .checked_mul(tile_rows)
            .and_then(|r| r.checked_mul(rows[1].unsigned_abs()))
            .ok_or_else(|| format!("{name}: the tile step overflows"))?;
        let interior: isize = (0..spatial).map(|d| attrs.padding[d].0 as isize * rows[d + 1]).sum();
        let copy =
            |from: (isize, Vec<isize>), to: (isize, Vec<isize>), shape: &[usize], suffix: &str| LoopKernel {
                name: format!("{name}_{suffix}"),
                shape: shape.to_vec(),
                inputs: vec![Operand { offset: from.0, strides: from.1, elem: Elem::F32 }],
                body: vec![Expr::Input(0)],
                outputs: vec![Store { value: 0, offset: to.0, strides: to.1, elem: Elem::F32, reduce: None }],
            };
        // A tile of `r` output rows: [C, *K, r, *S'[1..]]; in the column
        // block, rows (c, tap) `col_stride` apart, positions row-major.
        let tile = |r: usize| -> Result<(Vec<usize>, Vec<isize>), String> {
            let positions: Vec<usize> = [&[r][..], &out[1..]].concat();
            let shape: Vec<usize> = [&image[..1], taps, &positions[..]].concat();
            let mut strides = row_major(&[&image[..1], taps].concat());
            for s in &mut strides {
                *s = s.checked_mul(at(col_stride)?).ok_or("stride overflow")?;
            }
            strides.extend(row_major(&positions));
            Ok((shape, strides))
        };
        let full = tile_rows;
        let last = out[0] % tile_rows;
        let dense = row_major(image);
        let checking = self.checking;
        let add =
            |this: &mut Self, k: LoopKernel| this.jit.add_loop_kernel(&k, checking).map_err(|e| e.message);
        match kind {
            ConvKind::Forward | ConvKind::WeightGrad { .. } => {
                if padded {
                    let k = copy((0, dense), (interior, rows.clone()), image, "pad");
                    packing.pad = Some(add(self, k)?);
                }
                let (shape, strides) = tile(full)?;
                let k = copy((0, window.clone()), (0, strides), &shape, "im2col");
                packing.im2col = Some(add(self, k)?);
                if last > 0 {
                    let (shape, strides) = tile(last)?;
                    let k = copy((0, window), (0, strides), &shape, "im2col_last");
                    packing.im2col_last = Some(add(self, k)?);
                }
            }
            ConvKind::Transpose { .. } => {
                let (shape, strides) = tile(full)?;
                let mut k = copy((0, strides), (0, window.clone()), &shape, "col2im");
                k.outputs[0].reduce = Some(Reduce::Sum);
                packing.col2im = Some(add(self, k)?);
                if last > 0 {
                    let (shape, strides) = tile(last)?;
                    let mut k = copy((0, strides), (0, window), &shape, "col2im_last");
                    k.outputs[0].reduce = Some(Reduce::Sum);
                    packing.col2im_last = Some(add(self, k)?);
                }
                if padded {
                    let k = copy((interior, rows), (0, dense), image, "unpad");
                    packing.unpad = Some(add(self, k)?);
                }
            }
        }
        Ok(packing)
    }
}

/// One component (A, B or C) of a batch's element offsets.
type Part = fn(&(usize, usize, usize)) -> usize;

/// Whether component `part` of the batches' `offsets` advances by `step`
/// elements from each batch to the next.
fn advances(offsets: &[(usize, usize, usize)], part: Part, step: isize) -> bool {
    let Some(first) = offsets.first() else { return true };
    offsets.iter().enumerate().all(|(i, o)| part(o) as isize == part(first) as isize + i as isize * step)
}

/// The rows of one product equal to the batched product at `offsets`
/// (`(a, b, c)` element offsets per batch) of `m` rows each: `Some` when
/// every batch reads the same B and batch `i`'s rows of A and C start `i·m`
/// rows after the first batch's (`a_row`, `c_row`: the row strides).
fn fold_batches_into_rows(
    offsets: &[(usize, usize, usize)],
    m: usize,
    a_row: isize,
    c_row: isize,
) -> Option<usize> {
    let rows = m as isize;
    let follows = offsets.len() >= 2
        && a_row > 0
        && c_row > 0
        && advances(offsets, |o| o.1, 0)
        && advances(offsets, |o| o.0, rows * a_row)
        && advances(offsets, |o| o.2, rows * c_row);
    follows.then(|| m * offsets.len())
}

/// The inner dimension of a summed product (`matmul_sum`) of `batches`
/// products of inner dimension `k` as one product, when batch `i`'s
/// columns of A and rows of B follow batch `i − 1`'s (A's column stride
/// `a_col`, B's row stride `b_row`) and every batch writes the same result.
fn fold_batches_into_depth(
    offsets: &[(usize, usize, usize)],
    k: usize,
    a_col: isize,
    b_row: isize,
) -> Option<usize> {
    let depth = k as isize;
    let follows = offsets.len() >= 2
        && advances(offsets, |o| o.2, 0)
        && advances(offsets, |o| o.0, depth * a_col)
        && advances(offsets, |o| o.1, depth * b_row);
    follows.then(|| k * offsets.len())
}

#[cfg(test)]
mod tests {
    use super::{fold_batches_into_depth, fold_batches_into_rows};

    #[test]
    fn summed_batches_fold_into_depth_only_when_their_columns_and_rows_follow() {
        // Time-major [T, B, 6H] rows: A = [H, B] columns of 6H elements,
        // B = [B, 4H] rows of 6H, each batch B·6H further.
        let follow: Vec<_> = (0..3).map(|t| (t * 64 * 768, 100 + t * 64 * 768, 5)).collect();
        assert_eq!(fold_batches_into_depth(&follow, 64, 768, 768), Some(192));
        // Batch-major: the next batch is not where the last column ends.
        let apart: Vec<_> = (0..3).map(|t| (t * 768, 100 + t * 768, 5)).collect();
        assert_eq!(fold_batches_into_depth(&apart, 64, 64 * 768, 64 * 768), None);
        // One batch: nothing to fold.
        assert_eq!(fold_batches_into_depth(&follow[..1], 64, 768, 768), None);
    }

    #[test]
    fn batches_fold_into_rows_only_when_their_rows_follow_each_other() {
        // [3, 4, 5] · [5, 6] broadcast: A rows of 5, C rows of 6, B shared.
        let follow: Vec<_> = (0..3).map(|i| (i * 20, 7, i * 24)).collect();
        assert_eq!(fold_batches_into_rows(&follow, 4, 5, 6), Some(12));
        // B differs per batch (a batched product of distinct matrices).
        let own_b: Vec<_> = (0..3).map(|i| (i * 20, i * 30, i * 24)).collect();
        assert_eq!(fold_batches_into_rows(&own_b, 4, 5, 6), None);
        // A gap between batches (a slice of a longer axis).
        let gap: Vec<_> = (0..3).map(|i| (i * 25, 0, i * 24)).collect();
        assert_eq!(fold_batches_into_rows(&gap, 4, 5, 6), None);
        // C written transposed (row stride 1): its batches do not follow.
        let transposed: Vec<_> = (0..3).map(|i| (i * 20, 0, i * 24)).collect();
        assert_eq!(fold_batches_into_rows(&transposed, 4, 5, 1), None);
        // One batch: nothing to fold.
        assert_eq!(fold_batches_into_rows(&[(0, 0, 0)], 4, 5, 6), None);
    }
}
