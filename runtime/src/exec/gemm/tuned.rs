//! The tuned GEMM: the f32 kernels of the `gemm` crates (`gemm-f32`), whose
//! packed SIMD microkernels are chosen at run time for the CPU (AVX-512 with
//! the `x86-v4` feature) and whose threads come from rayon's global pool.
//!
//! Only the f32 crate is built (not the `gemm` façade, which also compiles
//! the f64, f16 and complex kernels nnc never calls); [`gemm_f32`] applies
//! the façade's normalisation of layouts before calling the f32 kernel, so
//! every product is computed exactly as through the façade.

use gemm_common::Parallelism;

use super::{check_operands, scale_only, GemmProvider, MatPtr, MatRef};

/// Products with fewer rows than this (and more columns) are computed
/// transposed.
const NARROW: usize = 64;

/// `C = alpha·A·B + beta·C` with the `gemm` crate. `threads > 1` splits the
/// product over up to that many rayon tasks (small products stay on one
/// thread: the library has its own threshold).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuned;

impl GemmProvider for Tuned {
    fn name(&self) -> &'static str {
        "gemm-0.19"
    }

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
    ) -> Result<(), String> {
        check_operands(m, n, k, &a, &b, &c)?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        if alpha == 0.0 || k == 0 {
            // SAFETY: checked operands; `c` under this function's contract.
            return unsafe { scale_only(m, n, beta, c) };
        }
        if m < NARROW && n > m {
            // The library's microkernels are tall (several SIMD vectors of
            // rows): a product with few rows (a convolution with 16 output
            // channels, a weight gradient) fills a fraction of each tile.
            // `Cᵀ = Bᵀ·Aᵀ` is the same product with the long side as rows.
            let ct = MatPtr { row_stride: c.col_stride, col_stride: c.row_stride, ..c };
            // SAFETY: the same elements of the same storage, addressed
            // transposed; this function's contract carries over.
            return unsafe { self.gemm_shared(n, m, k, alpha, b.t(), a.t(), beta, ct, threads) };
        }
        let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        // The library computes `dst := alpha·dst + beta·lhs·rhs` (its alpha
        // and beta are BLAS's beta and alpha); with `read_dst == false` it
        // never reads `dst`, which gives BLAS's `beta == 0` semantics.
        let read_dst = beta != 0.0;
        // SAFETY: `check_operands` proved that every element the library
        // addresses — `offset + i*row_stride + j*col_stride` for i < rows and
        // j < cols of each operand, with m, n, k > 0 here — lies inside its
        // slice or storage, so each pointer plus those offsets stays within
        // one allocation. The destination's addressed elements are pairwise
        // distinct (no two writers share a location), and by this function's
        // contract nothing else reads or writes them during the call; `a`
        // and `b` are shared borrows, which nothing writes meanwhile, so
        // they do not overlap them. Element offsets fit `isize` because they
        // index existing allocations.
        unsafe {
            gemm_f32(
                m,
                n,
                k,
                c.ptr.add(c.offset),
                c.col_stride,
                c.row_stride,
                read_dst,
                a.data.as_ptr().add(a.offset),
                a.col_stride,
                a.row_stride,
                b.data.as_ptr().add(b.offset),
                b.col_stride,
                b.row_stride,
                beta,
                alpha,
                parallelism,
            );
        }
        Ok(())
    }
}

/// `dst := alpha·dst + beta·lhs·rhs` (the library's argument names: its
/// `alpha` scales the destination) with the f32 kernel of `gemm-f32`, after
/// the layout normalisation of the `gemm` façade: a destination with rows
/// closer in memory than columns is computed as its transpose (the kernels
/// prefer column-major destinations), and negative strides are turned
/// positive from the other end.
///
/// # Safety
/// Every element `offset + i·rs + j·cs` the product addresses (`i < m`,
/// `j < n` for `dst`, `i < m`, `j < k` for `lhs`, `i < k`, `j < n` for `rhs`)
/// lies inside one live allocation; the elements of `dst` are pairwise
/// distinct and nothing else accesses them during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    mut dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
    alpha: f32,
    beta: f32,
    parallelism: Parallelism,
) {
    let transpose = dst_cs.abs() < dst_rs.abs();
    let (m, n, mut dst_cs, mut dst_rs, mut lhs, mut lhs_cs, mut lhs_rs, mut rhs, mut rhs_cs, mut rhs_rs) =
        if transpose {
            (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
        } else {
            (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        };
    if dst_rs < 0 && m > 0 {
        dst = dst.wrapping_offset((m - 1) as isize * dst_rs);
        dst_rs = -dst_rs;
        lhs = lhs.wrapping_offset((m - 1) as isize * lhs_rs);
        lhs_rs = -lhs_rs;
    }
    if dst_cs < 0 && n > 0 {
        dst = dst.wrapping_offset((n - 1) as isize * dst_cs);
        dst_cs = -dst_cs;
        rhs = rhs.wrapping_offset((n - 1) as isize * rhs_cs);
        rhs_cs = -rhs_cs;
    }
    if lhs_cs < 0 && k > 0 {
        lhs = lhs.wrapping_offset((k - 1) as isize * lhs_cs);
        lhs_cs = -lhs_cs;
        rhs = rhs.wrapping_offset((k - 1) as isize * rhs_rs);
        rhs_rs = -rhs_rs;
    }
    // SAFETY: the caller's contract; the normalisation above only swaps the
    // roles of the operands or walks the same elements from the other end.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            alpha,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}
