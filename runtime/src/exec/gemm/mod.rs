//! Matrix products behind a provider trait.
//!
//! Contractions (matmul, and convolutions through im2col) are the one kind of
//! kernel that generated code does not reach the speed of a tuned library
//! on, so they go through [`GemmProvider`]: `C = alpha·A·B + beta·C` on
//! strided f32 matrices. Operands are described by [`MatRef`] / [`MatMut`]
//! (a slice, an offset and a row and column stride), so a transposed operand
//! is the same slice with its strides exchanged — no copy.
//!
//! Every provider checks its operands with [`check_operands`] before touching
//! memory: each addressed element must lie inside its slice and the
//! destination's elements must be distinct, so a wrong stride is an `Err`,
//! never undefined behaviour. Two providers exist:
//!
//! - [`Tuned`]: the `gemm` crate (runtime-dispatched SIMD microkernels,
//!   AVX-512 included), threads from its rayon pool, and for small
//!   products on one thread (an attention head's) `small`'s microkernels,
//!   which skip the library's packing;
//! - [`Reference`]: a plain triple loop accumulating in f64, the oracle for
//!   tests.
//!
//! [`matmul`] applies a provider to batched `[..., M, K] x [..., K, N]`
//! row-major tensors, the semantics of the IR's `matmul`.

mod reference;
mod small;
mod tuned;

pub use reference::Reference;
pub use tuned::Tuned;

/// A read-only strided matrix: element `(i, j)` is
/// `data[offset + i*row_stride + j*col_stride]`. Its size is given by the
/// product it takes part in.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The storage the matrix is read from.
    pub data: &'a [f32],
    /// Index of element `(0, 0)` in `data`.
    pub offset: usize,
    /// Distance in elements between `(i, j)` and `(i + 1, j)`; may be negative.
    pub row_stride: isize,
    /// Distance in elements between `(i, j)` and `(i, j + 1)`; may be negative.
    pub col_stride: isize,
}

/// A writable strided matrix, addressed like [`MatRef`].
#[derive(Debug)]
pub struct MatMut<'a> {
    /// The storage the matrix is written to.
    pub data: &'a mut [f32],
    /// Index of element `(0, 0)` in `data`.
    pub offset: usize,
    /// Distance in elements between `(i, j)` and `(i + 1, j)`; may be negative.
    pub row_stride: isize,
    /// Distance in elements between `(i, j)` and `(i, j + 1)`; may be negative.
    pub col_stride: isize,
}

/// A writable strided matrix in storage that other threads may write at
/// the same time, in elements of their own (one block of a product cut
/// among threads): element `(i, j)` is `ptr[offset + i*row_stride +
/// j*col_stride]`, and `ptr[..len]` is the storage it lies in.
#[derive(Clone, Copy, Debug)]
pub struct MatPtr {
    /// The first element of the storage.
    pub ptr: *mut f32,
    /// Elements of the storage.
    pub len: usize,
    /// Index of element `(0, 0)` in the storage.
    pub offset: usize,
    /// Distance in elements between `(i, j)` and `(i + 1, j)`; may be negative.
    pub row_stride: isize,
    /// Distance in elements between `(i, j)` and `(i, j + 1)`; may be negative.
    pub col_stride: isize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix with `cols` columns starting at `data[0]`.
    pub fn row_major(data: &'a [f32], cols: usize) -> MatRef<'a> {
        MatRef { data, offset: 0, row_stride: stride(cols), col_stride: 1 }
    }

    /// A column-major matrix with `rows` rows starting at `data[0]` (the
    /// transpose of a row-major matrix with `rows` columns).
    pub fn col_major(data: &'a [f32], rows: usize) -> MatRef<'a> {
        MatRef { data, offset: 0, row_stride: 1, col_stride: stride(rows) }
    }

    /// The same elements read as the transposed matrix.
    pub fn t(self) -> MatRef<'a> {
        MatRef { row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// The same matrix starting `offset` elements further into `data`.
    pub fn at(self, offset: usize) -> MatRef<'a> {
        MatRef { offset: self.offset.saturating_add(offset), ..self }
    }
}

impl<'a> MatMut<'a> {
    /// A row-major matrix with `cols` columns starting at `data[0]`.
    pub fn row_major(data: &'a mut [f32], cols: usize) -> MatMut<'a> {
        MatMut { data, offset: 0, row_stride: stride(cols), col_stride: 1 }
    }

    /// The same matrix starting `offset` elements further into `data`.
    pub fn at(self, offset: usize) -> MatMut<'a> {
        MatMut { offset: self.offset.saturating_add(offset), ..self }
    }
}

/// A row length as a stride; lengths beyond `isize::MAX` cannot index a
/// slice, so they saturate (and the bounds check then rejects them).
fn stride(len: usize) -> isize {
    isize::try_from(len).unwrap_or(isize::MAX)
}

/// A general matrix product on strided f32 matrices:
/// `C[m×n] = alpha·A[m×k]·B[k×n] + beta·C`.
///
/// BLAS conventions: when `beta == 0`, `C` is not read (NaN in it does not
/// propagate); when `alpha == 0` or `k == 0`, `A` and `B` are not read.
/// `threads` is the number of threads the product may use (0 or 1: the
/// calling thread only).
pub trait GemmProvider: Send + Sync {
    /// A short name for reports and benchmarks.
    fn name(&self) -> &'static str;

    /// Computes the product after checking the operands with
    /// [`check_operands`]; an operand that addresses memory outside its
    /// slice, or a destination whose elements overlap, is an `Err` and
    /// nothing is written.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: MatRef,
        b: MatRef,
        beta: f32,
        c: MatMut,
        threads: usize,
    ) -> Result<(), String> {
        let c = MatPtr {
            ptr: c.data.as_mut_ptr(),
            len: c.data.len(),
            offset: c.offset,
            row_stride: c.row_stride,
            col_stride: c.col_stride,
        };
        // SAFETY: the pointer and length come from a slice borrowed mutably
        // for this call, so the storage is live and valid for reads and
        // writes, and nothing else accesses any of its elements meanwhile.
        unsafe { self.gemm_shared(m, n, k, alpha, a, b, beta, c, threads) }
    }

    /// [`gemm`](GemmProvider::gemm) into one block of a destination that
    /// other threads write at the same time: the same checks (every element
    /// the product addresses lies in `c.ptr[..c.len]`, and no two coincide),
    /// then the same product.
    ///
    /// # Safety
    /// `c.ptr` points to `c.len` elements of one live allocation, valid for
    /// reads and writes for the duration of the call, and no element that
    /// this product addresses in it is read or written by anything else
    /// during the call (other elements of the storage may be).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_shared(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: MatRef,
        b: MatRef,
        beta: f32,
        c: MatPtr,
        threads: usize,
    ) -> Result<(), String>;
}

/// The smallest and largest offset that a `rows × cols` strided matrix
/// addresses, or `None` when it addresses no element.
fn addressed_range(
    rows: usize,
    cols: usize,
    offset: usize,
    row_stride: isize,
    col_stride: isize,
) -> Option<(i128, i128)> {
    if rows == 0 || cols == 0 {
        return None;
    }
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for (count, s) in [(rows, row_stride), (cols, col_stride)] {
        let reach = (count as i128 - 1) * s as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    Some((lo, hi))
}

fn check_in_bounds(
    what: &str,
    (rows, cols): (usize, usize),
    len: usize,
    offset: usize,
    row_stride: isize,
    col_stride: isize,
) -> Result<(), String> {
    match addressed_range(rows, cols, offset, row_stride, col_stride) {
        Some((lo, hi)) if lo < 0 || hi >= len as i128 => Err(format!(
            "{what} ({rows}×{cols}, offset {offset}, strides ({row_stride}, {col_stride})) addresses \
             elements {lo}..={hi} of a slice of length {len}"
        )),
        _ => Ok(()),
    }
}

/// True when distinct `(i, j)` of a `rows × cols` strided matrix always
/// address distinct elements. Sufficient condition: ordered by magnitude,
/// the smaller stride is nonzero and the larger one steps over a whole run
/// of the smaller (dimensions of size 1 impose nothing).
fn is_injective(rows: usize, cols: usize, row_stride: isize, col_stride: isize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let mut dims: Vec<(usize, u128)> = [(rows, row_stride), (cols, col_stride)]
        .into_iter()
        .filter(|&(count, _)| count > 1)
        .map(|(count, s)| (count, s.unsigned_abs() as u128))
        .collect();
    dims.sort_by_key(|&(_, s)| s);
    match dims[..] {
        [] => true,
        [(_, s)] => s > 0,
        [(inner_count, inner), (_, outer)] => inner > 0 && outer >= inner * inner_count as u128,
        _ => false,
    }
}

/// Checks the operands of `C[m×n] = A[m×k]·B[k×n]`: every element that is
/// addressed lies inside its slice, and the elements of `C` are distinct
/// (so no two threads ever write one location). `A` and `B` do not
/// overlap `C`: they are shared borrows, and `C`'s addressed elements are
/// accessed by nothing else during a product (the contract of
/// [`GemmProvider::gemm_shared`]).
pub fn check_operands(
    m: usize,
    n: usize,
    k: usize,
    a: &MatRef,
    b: &MatRef,
    c: &MatPtr,
) -> Result<(), String> {
    check_in_bounds("A", (m, k), a.data.len(), a.offset, a.row_stride, a.col_stride)?;
    check_in_bounds("B", (k, n), b.data.len(), b.offset, b.row_stride, b.col_stride)?;
    check_in_bounds("C", (m, n), c.len, c.offset, c.row_stride, c.col_stride)?;
    if !is_injective(m, n, c.row_stride, c.col_stride) {
        return Err(format!(
            "C ({m}×{n}) with strides ({}, {}) addresses some element twice",
            c.row_stride, c.col_stride
        ));
    }
    Ok(())
}

/// `C = beta·C` over the addressed elements (the whole product when
/// `alpha == 0` or `k == 0`); `beta == 0` writes zeros without reading.
///
/// # Safety
/// The operands passed [`check_operands`], and `c` meets the contract of
/// [`GemmProvider::gemm_shared`].
unsafe fn scale_only(m: usize, n: usize, beta: f32, c: MatPtr) -> Result<(), String> {
    for i in 0..m {
        for j in 0..n {
            let at = element(c.offset, c.row_stride, c.col_stride, i, j)?;
            if at >= c.len {
                return Err("C index out of range".into());
            }
            // SAFETY: `at < c.len`, inside the storage, and the element is
            // this product's alone (the caller's contract).
            unsafe {
                let v = c.ptr.add(at);
                *v = if beta == 0.0 { 0.0 } else { beta * *v };
            }
        }
    }
    Ok(())
}

/// The offset of element `(i, j)`, as an index (checked, never wrapping).
fn element(offset: usize, row_stride: isize, col_stride: isize, i: usize, j: usize) -> Result<usize, String> {
    let at = offset as i128 + i as i128 * row_stride as i128 + j as i128 * col_stride as i128;
    usize::try_from(at).map_err(|_| format!("element ({i}, {j}) lies before its slice"))
}

/// Batched matrix product of row-major tensors, `[..., M, K] x [..., K, N]
/// -> [..., M, N]` with equal leading (batch) dimensions, into `c` (which is
/// overwritten). Returns the result's shape.
pub fn matmul(
    provider: &dyn GemmProvider,
    a_shape: &[usize],
    a: &[f32],
    b_shape: &[usize],
    b: &[f32],
    c: &mut [f32],
    threads: usize,
) -> Result<Vec<usize>, String> {
    let r = a_shape.len();
    if r < 2 || b_shape.len() != r || a_shape[..r - 2] != b_shape[..r - 2] || a_shape[r - 1] != b_shape[r - 2]
    {
        return Err(format!(
            "matmul of {a_shape:?} and {b_shape:?}: shapes do not fit [..., M, K] x [..., K, N]"
        ));
    }
    let (m, k, n) = (a_shape[r - 2], a_shape[r - 1], b_shape[r - 1]);
    let batch = a_shape[..r - 2].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let sizes = batch
        .and_then(|bt| Some((bt, bt.checked_mul(m * k)?, bt.checked_mul(k * n)?, bt.checked_mul(m * n)?)));
    let Some((batch, a_len, b_len, c_len)) = sizes else {
        return Err(format!("matmul of {a_shape:?} and {b_shape:?}: sizes overflow"));
    };
    if a.len() != a_len || b.len() != b_len || c.len() != c_len {
        return Err(format!(
            "matmul of {a_shape:?} and {b_shape:?}: buffers hold {}, {} and {} elements, expected {a_len}, {b_len} and {c_len}",
            a.len(),
            b.len(),
            c.len()
        ));
    }
    for i in 0..batch {
        let a_mat = MatRef::row_major(a, k).at(i * m * k);
        let b_mat = MatRef::row_major(b, n).at(i * k * n);
        let c_mat = MatMut::row_major(&mut c[..], n).at(i * m * n);
        provider.gemm(m, n, k, 1.0, a_mat, b_mat, 0.0, c_mat, threads)?;
    }
    let mut shape = a_shape[..r - 1].to_vec();
    shape.push(n);
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injectivity_of_destination_strides() {
        // (rows, cols, row_stride, col_stride, distinct elements)
        let cases = [
            (3, 4, 4, 1, true),
            (3, 4, 1, 3, true),
            (3, 4, -4, -1, true),
            (3, 4, 3, 1, false),
            (3, 4, 0, 1, false),
            (1, 4, 0, 1, true),
            (3, 1, 7, 0, true),
            (1, 1, 0, 0, true),
            (0, 3, 0, 0, true),
            (3, 4, 2, 2, false),
            (2, 2, 1, 1, false),
        ];
        for (rows, cols, rs, cs, want) in cases {
            assert_eq!(is_injective(rows, cols, rs, cs), want, "{rows}x{cols} strides ({rs}, {cs})");
        }
    }

    #[test]
    fn addressed_ranges() {
        // (rows, cols, offset, row_stride, col_stride, range)
        let cases = [
            (2, 3, 0, 3, 1, Some((0, 5))),
            (2, 3, 5, -3, -1, Some((0, 5))),
            (2, 3, 1, -3, 1, Some((-2, 3))),
            (0, 3, 0, 3, 1, None),
            (2, 3, 1, 1, 2, Some((1, 6))),
        ];
        for (rows, cols, offset, rs, cs, want) in cases {
            assert_eq!(addressed_range(rows, cols, offset, rs, cs), want);
        }
    }
}
