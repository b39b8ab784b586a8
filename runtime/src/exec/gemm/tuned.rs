//! The tuned GEMM: the f32 kernels of the `gemm` crates (`gemm-f32`), whose
//! packed SIMD microkernels are chosen at run time for the CPU (AVX-512 with
//! the `x86-v4` feature) and whose threads come from rayon's global pool.
//!
//! Only the f32 crate is built (not the `gemm` façade, which also compiles
//! the f64, f16 and complex kernels nnc never calls); [`gemm_f32`] applies
//! the façade's normalisation of layouts before calling the f32 kernel, so
//! every product is computed exactly as through the façade — except that
//! a left operand whose rows are not contiguous, which the library packs
//! one element at a time, is first transposed into column-major scratch
//! by blocks of columns, each block's product adding onto the last; or,
//! when that operand is much larger than the result, the transposed
//! product is computed into column-major scratch and added to the result
//! transposed. Products of at most `small::MAX_WORK` multiply-adds on one
//! thread do not reach the library: `small` computes them in registers.

use gemm_common::Parallelism;

use super::small::{self, Product, Strided};
use super::{check_operands, scale_only, GemmProvider, MatPtr, MatRef};
use crate::exec::isa::Isa;

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
        if threads <= 1 && small::suits(m, n, k) {
            let a = Strided {
                // SAFETY: `a.offset` indexes element (0, 0) of `A`, inside
                // its slice (`check_operands`).
                ptr: unsafe { a.data.as_ptr().add(a.offset) },
                row_stride: a.row_stride,
                col_stride: a.col_stride,
            };
            // SAFETY: as for `A`.
            let b = Strided {
                ptr: unsafe { b.data.as_ptr().add(b.offset) },
                row_stride: b.row_stride,
                col_stride: b.col_stride,
            };
            // SAFETY: as for `A`, in the storage of this function's contract.
            let c = Strided {
                ptr: unsafe { c.ptr.add(c.offset) },
                row_stride: c.row_stride,
                col_stride: c.col_stride,
            };
            // SAFETY: m, n, k > 0; `check_operands` proved every addressed
            // element inside its slice or storage and `C`'s elements
            // distinct; by this function's contract nothing else accesses
            // them, and `A` and `B` are shared borrows, so they do not
            // overlap them; `Isa::host` is an instruction set of this CPU.
            if unsafe { small::gemm(Isa::host(), Product { m, n, k, alpha, a, b, beta, c }) } {
                return Ok(());
            }
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
                true,
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
/// positive from the other end. `may_flip` allows computing the
/// transposed product into scratch (see [`flip_pays`]).
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
    may_flip: bool,
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
    // `dst := scale·dst + beta·lhs·rhs` over `k` columns of `lhs` (column
    // stride `lhs_cs`, row stride `lhs_rs`) and rows of `rhs` from `rhs`.
    // SAFETY (of every use): the operands address elements the caller's
    // contract covers (the normalisation above only swaps the roles of the
    // operands or walks the same elements from the other end), or this
    // thread's scratch, which nothing else uses during the call.
    let product = |k: usize, lhs: *const f32, lhs_cs: isize, lhs_rs: isize, rhs: *const f32, read, scale| unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            scale,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    };
    if lhs_rs == 1 || m <= 1 || n <= 1 || k <= 2 || m * n <= 256 || m * k < TRANSPOSE_LHS_MIN {
        return product(k, lhs, lhs_cs, lhs_rs, rhs, read_dst, alpha);
    }
    if may_flip && flip_pays(m, n, k, rhs_cs == 1) {
        // `dstᵀ = rhsᵀ·lhsᵀ` into column-major scratch (`n × m`), then
        // added to `dst` transposed: `lhs` is never copied.
        let ld = leading_dimension(n);
        let mut scratch = TRANSPOSED_RESULT.with(|s| std::mem::take(&mut *s.borrow_mut()));
        if scratch.len() < ld * m {
            scratch.resize(ld * m, 0.0);
        }
        // SAFETY: the operands address the elements the caller's contract
        // covers, read transposed; the destination is this thread's
        // scratch (`ld ≥ n` rows of `m` columns), which nothing else uses.
        unsafe {
            gemm_f32(
                n,
                m,
                k,
                scratch.as_mut_ptr(),
                ld as isize,
                1,
                false,
                rhs,
                rhs_rs,
                rhs_cs,
                lhs,
                lhs_rs,
                lhs_cs,
                0.0,
                beta,
                parallelism,
                false,
            )
        };
        // SAFETY: `dst` addresses `m × n` distinct elements only this call
        // accesses (the contract); the scratch holds `ld·m` elements.
        unsafe { add_transposed(m, n, &scratch, ld, dst, dst_rs, dst_cs, read_dst.then_some(alpha)) };
        TRANSPOSED_RESULT.with(|s| *s.borrow_mut() = scratch);
        return;
    }
    // The library packs a left operand whose rows are not contiguous
    // element by element; a blocked transpose into column-major scratch is
    // several times faster and leaves the library an operand it reads as
    // is. In blocks of `depth` columns, so the copy stays in cache while
    // the library reads it and the scratch stays small; each block adds
    // onto the previous ones.
    let depth = (TRANSPOSE_BLOCK_ELEMENTS / m).clamp(8, k.max(8)) / 8 * 8;
    COLUMN_MAJOR.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let ld = leading_dimension(m);
        if scratch.len() < ld * depth {
            scratch.resize(ld * depth, 0.0);
        }
        for k0 in (0..k).step_by(depth) {
            let kb = depth.min(k - k0);
            let block = &mut scratch[..ld * kb];
            // SAFETY: `lhs` addresses `m × k` elements inside one live
            // allocation (the caller's contract), columns k0..k0+kb of
            // which are `m × kb` elements from `lhs + k0·lhs_cs`.
            unsafe {
                transpose_into(m, kb, lhs.wrapping_offset(k0 as isize * lhs_cs), lhs_rs, lhs_cs, block, ld)
            };
            let (read, scale) = if k0 == 0 { (read_dst, alpha) } else { (true, 1.0) };
            // Rows k0..k0+kb of `rhs` against the block, `m × kb`
            // column-major.
            product(
                kb,
                block.as_ptr(),
                ld as isize,
                1,
                rhs.wrapping_offset(k0 as isize * rhs_rs),
                read,
                scale,
            );
        }
    })
}

/// Left operands with at least this many elements are transposed into
/// column-major scratch when their rows are not contiguous.
const TRANSPOSE_LHS_MIN: usize = 1 << 12;

/// Elements of a left operand transposed at a time (blocks of 2^20 / m
/// columns, rounded down to 8).
const TRANSPOSE_BLOCK_ELEMENTS: usize = 1 << 20;

thread_local! {
    /// Each thread's column-major copy of a left operand.
    static COLUMN_MAJOR: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each thread's transposed result of a flipped product.
    static TRANSPOSED_RESULT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether a product whose left operand (`m × k`, rows not contiguous)
/// would be copied column-major is computed transposed instead, into an
/// `n × m` scratch then added to the result: when the elements that way
/// copies — the result, and the right operand unless its rows are
/// contiguous (`rhs_rows`) — are fewer than two thirds of the left
/// operand's. Measured on the target machine, one thread, for `x · Wᵀ`
/// with `W` stored `[out, in]` (a dense layer's forward product; group
/// `wide` of `runtime/benches/gemm.rs` for the first): `mlp_wide`'s middle
/// layer, `[256 × 2048] · [2048 × 2048]`, copies 4M elements of `W` one
/// way and 0.5M + 0.5M the other: 165 → 217 GFLOP/s; `[256 × 2048] ·
/// [2048 × 512]` (1M against 0.64M) 168 → 198; `[32 × 1024] ·
/// [1024 × 1024]` 55 → 185; `[128 × 256] · [256 × 256]` (64K against
/// 64K) would run 184 → 168 and is not flipped.
fn flip_pays(m: usize, n: usize, k: usize, rhs_rows: bool) -> bool {
    let copied = m * n + if rhs_rows { 0 } else { n * k };
    3 * copied < 2 * m * k
}

/// `dst(i, j) := t(j, i)` (or `alpha·dst(i, j) + t(j, i)` with
/// `Some(alpha)`) for `i < m`, `j < n`, `t` column-major with columns `ld`
/// apart (`t(j, i)` at `t[j + i·ld]`), in 8 × 8 blocks through vector
/// registers where the CPU has AVX and `dst`'s rows are contiguous.
///
/// # Safety
/// Every element `i·rs + j·cs` of `dst` lies inside one live allocation,
/// the elements are pairwise distinct and nothing else accesses them
/// during the call; `t.len() >= ld·m`, `ld >= n`.
#[allow(clippy::too_many_arguments)]
unsafe fn add_transposed(
    m: usize,
    n: usize,
    t: &[f32],
    ld: usize,
    dst: *mut f32,
    rs: isize,
    cs: isize,
    alpha: Option<f32>,
) {
    assert!(ld >= n && t.len() >= ld * m, "transposed result of a wrong size");
    let (mut m8, mut n8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    if alpha.is_none() && rs == 1 && cs > 0 && std::arch::is_x86_feature_detected!("avx") {
        (m8, n8) = (m / 8 * 8, n / 8 * 8);
        for i in (0..m8).step_by(8) {
            for j in (0..n8).step_by(8) {
                // SAFETY: the CPU has AVX (just detected); rows i..i+8 of
                // `t`'s columns j..j+8 lie inside `t` (the assertion), and
                // `dst + (j + c)·cs + i + [0, 8)` are elements (i + r, j + c)
                // of `dst` (this function's contract).
                unsafe {
                    avx::block(
                        t.as_ptr().add(i * ld + j),
                        ld as isize,
                        dst.offset(i as isize + j as isize * cs),
                        cs as usize,
                    )
                };
            }
        }
    }
    let element = |i: usize, j: usize| {
        let v = t[j + i * ld];
        // SAFETY: `(i, j)` is an element of `dst` (this function's contract).
        unsafe {
            let d = dst.offset(i as isize * rs + j as isize * cs);
            *d = match alpha {
                Some(a) => a * *d + v,
                None => v,
            };
        }
    };
    for i in 0..m {
        let from = if i < m8 { n8 } else { 0 };
        for j in from..n {
            element(i, j);
        }
    }
}

/// The column stride of an `m`-row column-major copy: `m` rounded up to
/// whole cache lines plus one, so consecutive columns fall in different
/// cache sets (with a stride of a multiple of 4 KiB, the columns written
/// by one block of the transpose would all compete for one set).
fn leading_dimension(m: usize) -> usize {
    m.div_ceil(16) * 16 + 16
}

/// Writes the `m × k` matrix `src` (element `(i, j)` at
/// `src[i·rs + j·cs]`) column-major into `dst` (`(i, j)` at
/// `dst[i + j·ld]`). Rows with unit column stride go through 8 × 8 vector
/// transposes when the CPU has AVX; the rest element by element, in
/// blocks that stay in the first-level cache.
///
/// # Safety
/// Every element `i·rs + j·cs` (`i < m`, `j < k`) of `src` lies inside one
/// live allocation.
unsafe fn transpose_into(
    m: usize,
    k: usize,
    src: *const f32,
    rs: isize,
    cs: isize,
    dst: &mut [f32],
    ld: usize,
) {
    assert!(ld >= m && dst.len() >= ld * k, "transposed copy of a wrong size");
    #[cfg(target_arch = "x86_64")]
    if cs == 1 && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (just detected); the rest is this
        // function's contract and the assertion.
        return unsafe { avx::transpose_into(m, k, src, rs, dst, ld) };
    }
    // SAFETY: this function's contract and the assertion.
    unsafe { transpose_scalar(0..m, 0..k, src, rs, cs, dst, ld) }
}

/// Elements `(i, j)`, `i ∈ rows`, `j ∈ cols`, of [`transpose_into`] one at
/// a time, in square blocks.
///
/// # Safety
/// As [`transpose_into`], for the elements in `rows × cols`;
/// `rows.end <= ld` and `cols.end · ld <= dst.len()`.
unsafe fn transpose_scalar(
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    src: *const f32,
    rs: isize,
    cs: isize,
    dst: &mut [f32],
    ld: usize,
) {
    const BLOCK: usize = 32;
    for j0 in cols.clone().step_by(BLOCK) {
        let j1 = (j0 + BLOCK).min(cols.end);
        for i0 in rows.clone().step_by(BLOCK) {
            let i1 = (i0 + BLOCK).min(rows.end);
            for j in j0..j1 {
                for (i, out) in (i0..i1).zip(&mut dst[j * ld + i0..j * ld + i1]) {
                    // SAFETY: `(i, j)` is an element of `src` (the contract).
                    *out = unsafe { *src.offset(i as isize * rs + j as isize * cs) };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// [`super::transpose_into`] for rows with unit column stride: 8 × 8
    /// blocks through vector registers. Per strip of 8 rows, blocks of
    /// `COLUMNS` columns: the strip's cache lines are read whole before
    /// they are evicted, and the next strip completes the lines of the
    /// columns this one began. The edges go element by element.
    ///
    /// # Safety
    /// The CPU has AVX; every element `i·rs + j` (`i < m`, `j < k`) of
    /// `src` lies inside one live allocation; `ld >= m` and
    /// `dst.len() >= ld·k`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn transpose_into(
        m: usize,
        k: usize,
        src: *const f32,
        rs: isize,
        dst: &mut [f32],
        ld: usize,
    ) {
        const COLUMNS: usize = 64;
        let (m8, k8) = (m / 8 * 8, k / 8 * 8);
        let out = dst.as_mut_ptr();
        for j0 in (0..k8).step_by(COLUMNS) {
            let j1 = (j0 + COLUMNS).min(k8);
            for i in (0..m8).step_by(8) {
                for j in (j0..j1).step_by(8) {
                    // SAFETY: rows i..i+8 and columns j..j+8 lie inside
                    // `src` (i + 8 <= m, j + 8 <= k) and their transposes
                    // `dst[(j + c)·ld + i ..][..8]` inside `dst`
                    // (i + 8 <= ld, (j + 8)·ld <= dst.len()).
                    unsafe { block(src.offset(i as isize * rs + j as isize), rs, out.add(j * ld + i), ld) };
                }
            }
        }
        // SAFETY: the edge rows and columns, under the same contract.
        unsafe {
            super::transpose_scalar(m8..m, 0..k, src, rs, 1, dst, ld);
            super::transpose_scalar(0..m8, k8..k, src, rs, 1, dst, ld);
        }
    }

    /// Transposes the 8 × 8 block at `src` (rows `rs` apart) into the
    /// block at `dst` (columns `ld` apart).
    ///
    /// # Safety
    /// The CPU has AVX; `src + r·rs + [0, 8)` is readable and
    /// `dst + c·ld + [0, 8)` writable for `r, c < 8`.
    #[target_feature(enable = "avx")]
    #[inline]
    pub(super) unsafe fn block(src: *const f32, rs: isize, dst: *mut f32, ld: usize) {
        // SAFETY: the reads and writes this function's contract allows.
        unsafe {
            // (Closures would not inherit the target feature.)
            let r0 = _mm256_loadu_ps(src);
            let r1 = _mm256_loadu_ps(src.offset(rs));
            let r2 = _mm256_loadu_ps(src.offset(2 * rs));
            let r3 = _mm256_loadu_ps(src.offset(3 * rs));
            let r4 = _mm256_loadu_ps(src.offset(4 * rs));
            let r5 = _mm256_loadu_ps(src.offset(5 * rs));
            let r6 = _mm256_loadu_ps(src.offset(6 * rs));
            let r7 = _mm256_loadu_ps(src.offset(7 * rs));
            let t0 = _mm256_unpacklo_ps(r0, r1);
            let t1 = _mm256_unpackhi_ps(r0, r1);
            let t2 = _mm256_unpacklo_ps(r2, r3);
            let t3 = _mm256_unpackhi_ps(r2, r3);
            let t4 = _mm256_unpacklo_ps(r4, r5);
            let t5 = _mm256_unpackhi_ps(r4, r5);
            let t6 = _mm256_unpacklo_ps(r6, r7);
            let t7 = _mm256_unpackhi_ps(r6, r7);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps::<0x20>(s0, s4));
            _mm256_storeu_ps(dst.add(ld), _mm256_permute2f128_ps::<0x20>(s1, s5));
            _mm256_storeu_ps(dst.add(2 * ld), _mm256_permute2f128_ps::<0x20>(s2, s6));
            _mm256_storeu_ps(dst.add(3 * ld), _mm256_permute2f128_ps::<0x20>(s3, s7));
            _mm256_storeu_ps(dst.add(4 * ld), _mm256_permute2f128_ps::<0x31>(s0, s4));
            _mm256_storeu_ps(dst.add(5 * ld), _mm256_permute2f128_ps::<0x31>(s1, s5));
            _mm256_storeu_ps(dst.add(6 * ld), _mm256_permute2f128_ps::<0x31>(s2, s6));
            _mm256_storeu_ps(dst.add(7 * ld), _mm256_permute2f128_ps::<0x31>(s3, s7));
        }
    }
}
