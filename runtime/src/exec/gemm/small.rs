//! Small products computed whole in registers, without the library's
//! packing: `C = alpha·A·B + beta·C` for products of at most
//! [`MAX_WORK`] multiply-adds (an attention head's `64 × 64 × 16` and
//! `64 × 16 × 64`, a batch of which a kernel computes one after another).
//!
//! At these shapes the library's fixed work per call (choosing blocks,
//! packing both operands into its panel layouts, dispatching) costs as much
//! as the arithmetic: its products of one attention head run at 40–120
//! GFLOP/s. Here `A` is read where it lies (any strides: each element is
//! broadcast from memory), `B` where it lies when its rows are contiguous
//! and a whole number of vectors long, and otherwise after one copy into
//! row-major scratch padded to whole vectors (a transposed `B`, as `Kᵀ`
//! in `Q·Kᵀ`). A microkernel keeps a tile of `R` rows × `NV` vectors of
//! `C` in registers over the whole depth and writes it once: directly when
//! `C`'s rows are contiguous, else through a scratch tile.
//!
//! Every element of `C` is one chain of fused multiply-adds over the depth
//! in ascending order from zero, then scaled by `alpha` and added to
//! `beta·C` (`C` unread when `beta == 0`); the chain does not depend on
//! the tile the element falls in, so the result does not depend on the
//! product's shape around it.

use crate::exec::isa::Isa;
use crate::exec::simd::Vector;

/// The most multiply-adds of a product computed here.
pub(super) const MAX_WORK: usize = 64 * 64 * 64;

/// Rows of a gathered `B` are padded to a multiple of this (the widest
/// vector).
const PAD: usize = 16;

thread_local! {
    /// A gathered `B`, row-major.
    static PACKED_B: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The longest side of a product computed here (a longer one is a thin
/// product the library handles as well).
const MAX_SIDE: usize = 256;

/// Whether an `m × n × k` product is small enough for this module ([`gemm`]
/// still declines it where the CPU has no vector microkernels here).
pub(super) fn suits(m: usize, n: usize, k: usize) -> bool {
    m.max(n).max(k) <= MAX_SIDE && m * n * k <= MAX_WORK
}

/// A strided matrix by its first element.
#[derive(Clone, Copy)]
pub(super) struct Strided<P> {
    pub ptr: P,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl<P> Strided<P> {
    /// The same elements read as the transposed matrix.
    fn t(self) -> Strided<P> {
        Strided { ptr: self.ptr, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

/// `C[m×n] = alpha·A[m×k]·B[k×n] + beta·C` with `isa`'s microkernels;
/// `C` is not read when `beta == 0`. Returns false (nothing done) for an
/// instruction set without microkernels here.
///
/// # Safety
/// `m, n, k > 0`; every element `ptr + i·row_stride + j·col_stride` the
/// product addresses lies inside one live allocation; `C`'s addressed
/// elements are pairwise distinct, overlap neither operand, and nothing
/// else accesses them during the call; `isa` is one this CPU has.
pub(super) unsafe fn gemm(isa: Isa, p: Product) -> bool {
    let lanes = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => 16,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => 8,
        Isa::Portable => return false,
    };
    let direct = |b: &Strided<*const f32>, n: usize| b.col_stride == 1 && n.is_multiple_of(lanes);
    // A column-major `C` (a head's gradient written into joined rows) is
    // computed as `Cᵀ = Bᵀ·Aᵀ` when `Aᵀ` can be read directly: its rows
    // are then written as vectors. Each element's chain is the same (the
    // products of a fused multiply-add commute exactly).
    let p = if p.c.col_stride != 1 && p.c.row_stride == 1 && direct(&p.a.t(), p.m) {
        Product { m: p.n, n: p.m, a: p.b.t(), b: p.a.t(), c: p.c.t(), ..p }
    } else {
        p
    };
    let (n, k, b) = (p.n, p.k, p.b);
    let run = |b: Strided<*const f32>| {
        let o = Product { b, ..p };
        // SAFETY: the caller's contract; `B`'s rows are contiguous and
        // readable to a whole number of vectors.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => x86::product_avx512(&o),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => x86::product_avx2(&o),
                Isa::Portable => {}
            }
        }
    };
    if direct(&b, n) {
        run(b);
        return true;
    }
    // Any other `B` (the transposed `K` of attention scores `Q·Kᵀ`) is
    // gathered once into row-major scratch, its rows padded with zeros to
    // whole vectors, when its column offsets fit the gathers' 32-bit
    // indices.
    if ((n as i128 - 1) * b.col_stride as i128).abs() > i32::MAX as i128 {
        return false;
    }
    let ld = n.next_multiple_of(PAD);
    PACKED_B.with(|packed| {
        let mut packed = packed.borrow_mut();
        if packed.len() < k * ld {
            packed.resize(k * ld, 0.0);
        }
        // SAFETY: `B`'s k × n elements lie inside one allocation (the
        // caller's contract), its column offsets fit i32 (checked above);
        // the scratch holds k rows of `ld ≥ n` floats; `isa` is this CPU's.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => x86::gather_avx512(k, n, b, packed.as_mut_ptr(), ld),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => x86::gather_avx2(k, n, b, packed.as_mut_ptr(), ld),
                Isa::Portable => {}
            }
        }
        run(Strided { ptr: packed.as_ptr(), row_stride: ld as isize, col_stride: 1 });
    });
    true
}

/// `C[m×n] = alpha·A[m×k]·B[k×n] + beta·C` on strided operands.
#[derive(Clone, Copy)]
pub(super) struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: Strided<*const f32>,
    pub b: Strided<*const f32>,
    pub beta: f32,
    pub c: Strided<*mut f32>,
}

/// The whole product in tiles of up to 8 rows × `MAX_NV` vectors
/// (narrower tiles for the last columns, shorter ones for the last rows).
///
/// # Safety
/// The CPU has `V`'s instruction set; the contract of [`gemm`] for `o`,
/// whose `B` rows are readable to whole vectors. `MAX_NV ≤ 4`.
#[inline(always)]
unsafe fn product_with<V: Vector, const MAX_NV: usize>(o: &Product) {
    let lanes = V::LANES;
    let mut j = 0;
    while j < o.n {
        let nv = (o.n - j).div_ceil(lanes).min(MAX_NV);
        // SAFETY: the contract; columns j.. of the product.
        unsafe {
            match nv {
                4 => columns::<V, 4>(o, j),
                3 => columns::<V, 3>(o, j),
                2 => columns::<V, 2>(o, j),
                _ => columns::<V, 1>(o, j),
            }
        }
        j += nv * lanes;
    }
}

/// Columns `j .. j + NV·LANES` (fewer at the end of `C`) of every row, by
/// tiles of as many rows (8 or 6) as the vector registers hold
/// accumulators for next to a row of `B` and a broadcast, then of 4 and 1.
///
/// # Safety
/// As [`product_with`].
#[inline(always)]
unsafe fn columns<V: Vector, const NV: usize>(o: &Product, j: usize) {
    let rows = ((V::REGISTERS - NV - 1) / NV).min(8);
    let mut i = 0;
    // SAFETY (of each tile): rows i.., columns j.. of the product.
    unsafe {
        macro_rules! tiles {
            ($($r:literal),*) => {
                $(if rows >= $r {
                    while i + $r <= o.m {
                        tile::<V, $r, NV>(o, i, j);
                        i += $r;
                    }
                } else)* {}
            };
        }
        tiles!(16, 12, 8, 6);
        while i + 4 <= o.m {
            tile::<V, 4, NV>(o, i, j);
            i += 4;
        }
        while i < o.m {
            tile::<V, 1, NV>(o, i, j);
            i += 1;
        }
    }
}

/// Rows `i .. i + R`, columns `j .. j + NV·LANES` of `C` (the columns past
/// `n` computed from `B`'s padding and not written).
///
/// # Safety
/// As [`product_with`]; `i + R ≤ m`, `j < n`.
#[inline(always)]
unsafe fn tile<V: Vector, const R: usize, const NV: usize>(o: &Product, i: usize, j: usize) {
    let lanes = V::LANES;
    // SAFETY: rows i..i+R of `A` (all `k` columns), rows 0..k of `B` at
    // columns j..j+NV·LANES (readable: whole vectors), and the elements of
    // `C` in rows i..i+R, columns j..min(j+NV·LANES, n): all addressed by
    // the product.
    unsafe {
        let rows: [*const f32; R] =
            std::array::from_fn(|r| o.a.ptr.offset((i + r) as isize * o.a.row_stride));
        let mut acc = [[V::zero(); NV]; R];
        let mut bp = o.b.ptr.add(j);
        for p in 0..o.k {
            let bv: [V; NV] = std::array::from_fn(|v| V::load(bp.add(v * lanes)));
            let at = p as isize * o.a.col_stride;
            for r in 0..R {
                let x = V::splat(rows[r].offset(at));
                for v in 0..NV {
                    acc[r][v] = acc[r][v].fma(x, bv[v]);
                }
            }
            bp = bp.offset(o.b.row_stride);
        }
        let width = (o.n - j).min(NV * lanes);
        if o.c.col_stride == 1 && width == NV * lanes {
            let (alpha, beta) = (V::splat(&o.alpha), V::splat(&o.beta));
            for (r, row) in acc.iter().enumerate() {
                let c = o.c.ptr.offset((i + r) as isize * o.c.row_stride).add(j);
                for (v, x) in row.iter().enumerate() {
                    let at = c.add(v * lanes);
                    let y =
                        if o.beta == 0.0 { x.mul(alpha) } else { x.mul(alpha).add(V::load(at).mul(beta)) };
                    y.store(at);
                }
            }
            return;
        }
        let mut out = [0.0f32; 64];
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                x.store(out.as_mut_ptr().add(v * lanes));
            }
            let c = o.c.ptr.offset((i + r) as isize * o.c.row_stride + j as isize * o.c.col_stride);
            for (jj, &x) in out[..width].iter().enumerate() {
                let at = c.offset(jj as isize * o.c.col_stride);
                *at = if o.beta == 0.0 { o.alpha * x } else { o.alpha * x + o.beta * *at };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The product compiled for AVX2 and for AVX-512, and the gathers of
    //! a right operand.

    use std::arch::x86_64::*;

    use super::{product_with, Product, Strided};

    /// # Safety
    /// The CPU has AVX-512F; the contract of [`product_with`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product_avx512(o: &Product) {
        // SAFETY: the contract.
        unsafe { product_with::<__m512, 4>(o) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA; the contract of [`product_with`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_avx2(o: &Product) {
        // SAFETY: the contract.
        unsafe { product_with::<__m256, 2>(o) }
    }

    /// Rows `0..k` of the strided `k × n` matrix `b` into row-major `dst`
    /// (rows `ld` apart, columns `n..ld` zero), 16 columns per gather.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `b`'s elements lie inside one allocation and
    /// `(n - 1)·col_stride` fits i32; `dst` holds `k·ld` floats, `ld` a
    /// multiple of 16 and at least `n`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gather_avx512(k: usize, n: usize, b: Strided<*const f32>, dst: *mut f32, ld: usize) {
        for j0 in (0..ld).step_by(16) {
            let live = n.saturating_sub(j0).min(16);
            let mask = ((1u32 << live) - 1) as u16;
            let idx: [i32; 16] =
                std::array::from_fn(|l| if l < live { ((j0 + l) as isize * b.col_stride) as i32 } else { 0 });
            // SAFETY: the contract: lanes under the mask address elements
            // (p, j0 + l) of `b`; the others are not read and give zero;
            // the store writes row p's columns j0..j0+16 < ld.
            unsafe {
                let idx = _mm512_loadu_si512(idx.as_ptr().cast());
                for p in 0..k {
                    let row = b.ptr.offset(p as isize * b.row_stride);
                    let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, row.cast());
                    _mm512_storeu_ps(dst.add(p * ld + j0), v);
                }
            }
        }
    }

    /// As [`gather_avx512`], 8 columns per gather.
    ///
    /// # Safety
    /// As [`gather_avx512`], with AVX2 for AVX-512F (`ld` a multiple of 8).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gather_avx2(k: usize, n: usize, b: Strided<*const f32>, dst: *mut f32, ld: usize) {
        for j0 in (0..ld).step_by(8) {
            let live = n.saturating_sub(j0).min(8);
            let idx: [i32; 8] =
                std::array::from_fn(|l| if l < live { ((j0 + l) as isize * b.col_stride) as i32 } else { 0 });
            let mask: [i32; 8] = std::array::from_fn(|l| if l < live { -1 } else { 0 });
            // SAFETY: as in `gather_avx512`, lanes under the mask only.
            unsafe {
                let idx = _mm256_loadu_si256(idx.as_ptr().cast());
                let mask = _mm256_castsi256_ps(_mm256_loadu_si256(mask.as_ptr().cast()));
                for p in 0..k {
                    let row = b.ptr.offset(p as isize * b.row_stride);
                    let v = _mm256_mask_i32gather_ps::<4>(_mm256_setzero_ps(), row, idx, mask);
                    _mm256_storeu_ps(dst.add(p * ld + j0), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strided operand over `data`: rows of `rows × cols` elements at
    /// `(i, j) → base + i·rs + j·cs`.
    struct Layout {
        rs: isize,
        cs: isize,
        base: usize,
        len: usize,
    }

    /// Row-major with rows `pad` longer than `cols`, column-major, and both
    /// reversed (negative strides).
    fn layouts(rows: usize, cols: usize, pad: usize) -> Vec<Layout> {
        let (r, c) = (rows as isize, cols as isize);
        let ld = c + pad as isize;
        let len = rows * (cols + pad);
        vec![
            Layout { rs: ld, cs: 1, base: 0, len },
            Layout { rs: 1, cs: r, base: 0, len: rows * cols },
            Layout { rs: -ld, cs: 1, base: ((r - 1) * ld) as usize, len },
            Layout { rs: ld, cs: -1, base: (c - 1) as usize, len },
        ]
    }

    fn at(l: &Layout, i: usize, j: usize) -> usize {
        (l.base as isize + i as isize * l.rs + j as isize * l.cs) as usize
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn small_products_equal_one_chain_of_fused_multiply_adds_per_element() {
        let isas: Vec<Isa> = Isa::available().into_iter().filter(|&i| i != Isa::Portable).collect();
        let mut checked = 0;
        for &isa in &isas {
            for (m, n, k) in [
                (1usize, 16usize, 1usize),
                (3, 16, 2),
                (7, 32, 5),
                (13, 48, 16),
                (64, 16, 64),
                (64, 64, 16),
                (9, 80, 7),
                (6, 128, 3),
                (17, 64, 33),
                (64, 256, 16),
                (5, 9, 3),
                (12, 20, 17),
            ] {
                for (ai, la) in layouts(m, k, 3).iter().enumerate() {
                    // B read in place (contiguous rows a whole number of
                    // vectors long) or gathered (columns contiguous,
                    // reversed, or rows of another length), with C in
                    // every layout over the combinations.
                    for (bi, lb) in layouts(k, n, 5).iter().enumerate() {
                        let lc = &layouts(m, n, 2)[(ai + bi) % 4];
                        for (alpha, beta) in [(1.0f32, 0.0f32), (-1.5, 0.0), (0.5, 1.0), (-1.5, -0.25)] {
                            let a = values(la.len, 1);
                            let b = values(lb.len, 2);
                            let mut c = values(lc.len, 3);
                            if beta == 0.0 {
                                c.fill(f32::NAN);
                            }
                            let before = c.clone();
                            // SAFETY: the layouts address elements inside
                            // their vectors; `c` is distinct from `a` and `b`.
                            let done = unsafe {
                                gemm(
                                    isa,
                                    Product {
                                        m,
                                        n,
                                        k,
                                        alpha,
                                        a: Strided {
                                            ptr: a.as_ptr().add(la.base),
                                            row_stride: la.rs,
                                            col_stride: la.cs,
                                        },
                                        b: Strided {
                                            ptr: b.as_ptr().add(lb.base),
                                            row_stride: lb.rs,
                                            col_stride: lb.cs,
                                        },
                                        beta,
                                        c: Strided {
                                            ptr: c.as_mut_ptr().add(lc.base),
                                            row_stride: lc.rs,
                                            col_stride: lc.cs,
                                        },
                                    },
                                )
                            };
                            assert!(done, "{isa:?} {m}x{n}x{k}");
                            let mut written = vec![false; c.len()];
                            for i in 0..m {
                                for j in 0..n {
                                    let mut acc = 0.0f32;
                                    for p in 0..k {
                                        acc = a[at(la, i, p)].mul_add(b[at(lb, p, j)], acc);
                                    }
                                    let x = at(lc, i, j);
                                    let want = if beta == 0.0 {
                                        alpha * acc
                                    } else {
                                        alpha * acc + beta * before[x]
                                    };
                                    assert_eq!(
                                        c[x].to_bits(),
                                        want.to_bits(),
                                        "{isa:?} {m}x{n}x{k} ({i}, {j}) strides A {:?} C {:?}: {} vs {want}",
                                        (la.rs, la.cs),
                                        (lc.rs, lc.cs),
                                        c[x]
                                    );
                                    written[x] = true;
                                }
                            }
                            for (x, w) in written.iter().enumerate() {
                                if !w {
                                    assert_eq!(
                                        c[x].to_bits(),
                                        before[x].to_bits(),
                                        "element {x} outside C written"
                                    );
                                }
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(isas.is_empty() || checked > 300, "{checked} products checked");
    }

    #[test]
    fn only_the_portable_instruction_set_declines_products() {
        let a = vec![1.0f32; 64];
        let b = vec![1.0f32; 64];
        let mat = |p: *const f32, rs, cs| Strided { ptr: p, row_stride: rs, col_stride: cs };
        for isa in Isa::available() {
            // B read in place, transposed (gathered), and rows of 4 (gathered).
            for (rs, cs) in [(16, 1), (1, 4), (4, 1)] {
                let mut c = vec![7.0f32; 64];
                // SAFETY: 4 × 4 operands inside 64-element vectors.
                let done = unsafe {
                    gemm(
                        isa,
                        Product {
                            m: 4,
                            n: 4,
                            k: 4,
                            alpha: 1.0,
                            a: mat(a.as_ptr(), 4, 1),
                            b: mat(b.as_ptr(), rs, cs),
                            beta: 0.0,
                            c: Strided { ptr: c.as_mut_ptr(), row_stride: 4, col_stride: 1 },
                        },
                    )
                };
                assert_eq!(done, isa != Isa::Portable, "{isa:?}");
                let want = if done { 4.0 } else { 7.0 };
                assert!(c[..16].iter().all(|&x| x == want), "{isa:?}: {:?}", &c[..16]);
                assert!(c[16..].iter().all(|&x| x == 7.0), "{isa:?}: wrote past C");
            }
        }
        assert!(suits(64, 64, 64) && !suits(65, 64, 64) && !suits(300, 1, 1) || Isa::host() == Isa::Portable);
    }
}
