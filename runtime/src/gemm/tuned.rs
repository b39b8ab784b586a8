//! The tuned GEMM: the `gemm` crate, whose packed SIMD microkernels are
//! chosen at run time for the CPU (AVX-512 with the `x86-v4` feature) and
//! whose threads come from rayon's global pool.

use super::{check_operands, scale_only, GemmProvider, MatMut, MatRef};

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
        check_operands(m, n, k, &a, &b, &c)?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        if alpha == 0.0 || k == 0 {
            return scale_only(m, n, beta, c);
        }
        if m < NARROW && n > m {
            // The library's microkernels are tall (several SIMD vectors of
            // rows): a product with few rows (a convolution with 16 output
            // channels, a weight gradient) fills a fraction of each tile.
            // `Cᵀ = Bᵀ·Aᵀ` is the same product with the long side as rows.
            let ct =
                MatMut { data: c.data, offset: c.offset, row_stride: c.col_stride, col_stride: c.row_stride };
            return self.gemm(n, m, k, alpha, b.t(), a.t(), beta, ct, threads);
        }
        let parallelism =
            if threads > 1 { ::gemm::Parallelism::Rayon(threads) } else { ::gemm::Parallelism::None };
        // The library computes `dst := alpha·dst + beta·lhs·rhs` (its alpha
        // and beta are BLAS's beta and alpha); with `read_dst == false` it
        // never reads `dst`, which gives BLAS's `beta == 0` semantics.
        let read_dst = beta != 0.0;
        // SAFETY: `check_operands` proved that every element the library
        // addresses — `offset + i*row_stride + j*col_stride` for i < rows and
        // j < cols of each operand, with m, n, k > 0 here — lies inside its
        // slice, so each pointer plus those offsets stays within one
        // allocation. The destination's addressed elements are pairwise
        // distinct (no two writers share a location) and `c.data` is borrowed
        // mutably, so nothing else reads or writes it during the call; `a`
        // and `b` are shared borrows that cannot overlap `c.data`. Element
        // offsets fit `isize` because they index existing slices.
        unsafe {
            ::gemm::gemm(
                m,
                n,
                k,
                c.data.as_mut_ptr().add(c.offset),
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
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok(())
    }
}
