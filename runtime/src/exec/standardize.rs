//! `standardize` and `standardize_grad` over rows (the IR ops
//! `Op::Standardize` and `Op::StandardizeGrad`, layer normalisation without
//! its scale and shift): each row read once to its mean, once more to its
//! variance and once to the result, while the row is in the L1 cache.
//! Composed of elementwise kernels, the forward pass took two passes over
//! the rows' memory and the gradient five, the row sums of each pass
//! waiting for the one before.
//!
//! Per row of `D` entries: `mean = Σ x / D`, `var = Σ (x − mean)² / D`,
//! `rstd = 1 / sqrt(var + eps)`, `y = (x − mean)·rstd`; the gradient
//! recomputes `mean`, `rstd` and `xhat = (x − mean)·rstd` as the forward
//! does and gives `dx = ((dy − Σ dy / D) − xhat·(Σ dy·xhat / D))·rstd`.
//!
//! The loops are plain Rust over 16 accumulators, compiled for AVX2 with
//! FMA and as portable code (rustc vectorises them), and written in
//! AVX-512 intrinsics in the same order (`x86`). Sums are
//! taken in a fixed order (element `i` of a row into accumulator `i % 16`
//! with fused multiply-adds where a product is summed, then the
//! accumulators as a tree of halves), and every other operation is one
//! correctly rounded IEEE operation, so the results do not depend on the
//! instruction set or on how rows are divided among threads.

use super::isa::Isa;

/// Accumulators per row: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// `y = standardize(x)` per row of `len` elements (`x` and `y` of the same
/// length, a multiple of `len`).
pub fn standardize_rows(x: &[f32], y: &mut [f32], len: usize, eps: f32) {
    forward_with(Isa::host(), x, y, len, eps)
}

/// `dx = standardize_grad(x, dy)` per row of `len` elements.
pub fn standardize_grad_rows(x: &[f32], dy: &[f32], dx: &mut [f32], len: usize, eps: f32) {
    grad_with(Isa::host(), x, dy, dx, len, eps)
}

/// [`standardize_rows`] with the code compiled for `isa`, one this CPU has
/// ([`Isa::host`], [`Isa::available`]).
fn forward_with(isa: Isa, x: &[f32], y: &mut [f32], len: usize, eps: f32) {
    assert_eq!(x.len(), y.len(), "standardize: operand and result lengths differ");
    if len == 0 {
        return;
    }
    match isa {
        // SAFETY: an `Isa` names only instruction sets the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::forward_avx512(x, y, len, eps) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::forward_avx2(x, y, len, eps) },
        Isa::Portable => forward_all(x, y, len, eps),
    }
}

/// [`standardize_grad_rows`] with the code compiled for `isa`, one this CPU
/// has.
fn grad_with(isa: Isa, x: &[f32], dy: &[f32], dx: &mut [f32], len: usize, eps: f32) {
    assert!(
        x.len() == dy.len() && x.len() == dx.len(),
        "standardize_grad: operand and result lengths differ"
    );
    if len == 0 {
        return;
    }
    match isa {
        // SAFETY: an `Isa` names only instruction sets the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::grad_avx512(x, dy, dx, len, eps) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::grad_avx2(x, dy, dx, len, eps) },
        Isa::Portable => grad_all(x, dy, dx, len, eps),
    }
}

/// The accumulators added as a tree, the upper half onto the lower half
/// until one is left.
#[inline(always)]
fn fold_halves(acc: &mut [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `Σ f(a_i, b_i, acc)` over two rows of one length, element `i` into
/// accumulator `i % LANES`, then the tree.
#[inline(always)]
fn row_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.chunks_exact(LANES);
    for (ca, cb) in (&mut ac).zip(&mut bc) {
        for ((s, &u), &v) in acc.iter_mut().zip(ca).zip(cb) {
            *s = f(u, v, *s);
        }
    }
    for ((s, &u), &v) in acc.iter_mut().zip(ac.remainder()).zip(bc.remainder()) {
        *s = f(u, v, *s);
    }
    fold_halves(&mut acc)
}

/// A row's mean and `1 / sqrt(var + eps)`.
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let d = row.len() as f32;
    let mean = row_sum(row, row, |u, _, s| s + u) / d;
    let q = row_sum(row, row, |u, _, s| {
        let c = u - mean;
        c.mul_add(c, s)
    });
    (mean, 1.0 / (q / d + eps).sqrt())
}

/// `standardize` of one row. Rows are independent: out-of-order execution
/// overlaps one row's chain of latencies (the sums, the division, the
/// square root) with the next row's loads and sums.
#[inline(always)]
fn forward_row(x: &[f32], y: &mut [f32], eps: f32) {
    let (mean, rstd) = moments(x, eps);
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - mean) * rstd;
    }
}

/// `standardize_grad` of one row.
#[inline(always)]
fn grad_row(x: &[f32], dy: &[f32], dx: &mut [f32], eps: f32) {
    let d = x.len() as f32;
    let (mean, rstd) = moments(x, eps);
    let a = row_sum(dy, dy, |g, _, s| s + g) / d;
    let b = row_sum(dy, x, |g, v, s| g.mul_add((v - mean) * rstd, s)) / d;
    for ((o, &v), &g) in dx.iter_mut().zip(x).zip(dy) {
        let xhat = (v - mean) * rstd;
        *o = ((g - a) - xhat * b) * rstd;
    }
}

#[inline(always)]
fn forward_all(x: &[f32], y: &mut [f32], len: usize, eps: f32) {
    for (xr, yr) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
        forward_row(xr, yr, eps);
    }
}

#[inline(always)]
fn grad_all(x: &[f32], dy: &[f32], dx: &mut [f32], len: usize, eps: f32) {
    let rows = x.chunks_exact(len).zip(dy.chunks_exact(len)).zip(dx.chunks_exact_mut(len));
    for ((xr, gr), dr) in rows {
        grad_row(xr, gr, dr, eps);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512 rows in explicit vector code: one register of 16
    //! accumulators (element `i` of a row into lane `i % 16`, the last
    //! partial vector by masked operations that leave the other lanes as
    //! they are) and the tree of halves by extracting upper halves, the
    //! order of the portable code; rustc's vectorisation of the portable
    //! loops kept the accumulators on the stack and spent 4× the time. The
    //! AVX2 rows are the portable code compiled for AVX2.

    use std::arch::x86_64::*;

    /// The first `n < 16` lanes.
    #[inline(always)]
    fn first(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// The 16 lanes' sum as the portable `fold_halves` takes it.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn fold(acc: __m512) -> f32 {
        let lo = _mm512_castps512_ps256(acc);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc)));
        let s8 = _mm256_add_ps(lo, hi);
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
        _mm_cvtss_f32(s1)
    }

    /// `Σ_i f(acc, x_i, y_i)` over two rows of one length, in the portable
    /// code's order: `f` computes one vector of the accumulators from the
    /// previous one and the two rows' vectors; past the last whole vector,
    /// the lanes beyond the rows' ends keep their accumulators.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `x` and `y` have the same length.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn sum2(x: &[f32], y: &[f32], f: impl Fn(__m512, __m512, __m512) -> __m512) -> f32 {
        debug_assert_eq!(x.len(), y.len());
        let n = x.len().min(y.len());
        let whole = n / 16;
        let mut acc = _mm512_setzero_ps();
        for c in 0..whole {
            let (xc, yc) = (&x[c * 16..c * 16 + 16], &y[c * 16..c * 16 + 16]);
            // SAFETY: each chunk holds 16 floats.
            let (u, v) = unsafe { (_mm512_loadu_ps(xc.as_ptr()), _mm512_loadu_ps(yc.as_ptr())) };
            acc = f(acc, u, v);
        }
        let rest = n - whole * 16;
        if rest > 0 {
            let k = first(rest);
            // SAFETY: the masked loads read the `rest` floats left in each
            // row, and no lane past them (masked lanes do not fault).
            let (u, v) = unsafe {
                (
                    _mm512_maskz_loadu_ps(k, x[whole * 16..].as_ptr()),
                    _mm512_maskz_loadu_ps(k, y[whole * 16..].as_ptr()),
                )
            };
            acc = _mm512_mask_mov_ps(acc, k, f(acc, u, v));
        }
        fold(acc)
    }

    /// `(mean, rstd)` of a row, as the portable `moments`.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn moments(x: &[f32], eps: f32) -> (f32, f32) {
        let d = x.len() as f32;
        let mean = sum2(x, x, |acc, u, _| _mm512_add_ps(acc, u)) / d;
        let m = _mm512_set1_ps(mean);
        let q = sum2(x, x, |acc, u, _| {
            let c = _mm512_sub_ps(u, m);
            _mm512_fmadd_ps(c, c, acc)
        });
        (mean, 1.0 / (q / d + eps).sqrt())
    }

    /// `out_i = f(x_i, y_i)` over rows of one length, 16 lanes at a time.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the three rows have the same length.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn map2(x: &[f32], y: &[f32], out: &mut [f32], f: impl Fn(__m512, __m512) -> __m512) {
        let n = x.len().min(y.len()).min(out.len());
        let whole = n / 16;
        for c in 0..whole {
            let r = c * 16..c * 16 + 16;
            let (xc, yc, oc) = (&x[r.clone()], &y[r.clone()], &mut out[r]);
            // SAFETY: each chunk holds 16 floats.
            unsafe {
                let v = f(_mm512_loadu_ps(xc.as_ptr()), _mm512_loadu_ps(yc.as_ptr()));
                _mm512_storeu_ps(oc.as_mut_ptr(), v);
            }
        }
        let rest = n - whole * 16;
        if rest > 0 {
            let k = first(rest);
            // SAFETY: the masked loads and the masked store touch the
            // `rest` floats left in each row and no lane past them.
            unsafe {
                let u = _mm512_maskz_loadu_ps(k, x[whole * 16..].as_ptr());
                let v = _mm512_maskz_loadu_ps(k, y[whole * 16..].as_ptr());
                _mm512_mask_storeu_ps(out[whole * 16..].as_mut_ptr(), k, f(u, v));
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn forward_avx512(x: &[f32], y: &mut [f32], len: usize, eps: f32) {
        for (xr, yr) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
            let (mean, rstd) = moments(xr, eps);
            let (m, s) = (_mm512_set1_ps(mean), _mm512_set1_ps(rstd));
            map2(xr, xr, yr, |u, _| _mm512_mul_ps(_mm512_sub_ps(u, m), s));
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_avx2(x: &[f32], y: &mut [f32], len: usize, eps: f32) {
        super::forward_all(x, y, len, eps)
    }

    /// # Safety
    /// The CPU has AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn grad_avx512(x: &[f32], dy: &[f32], dx: &mut [f32], len: usize, eps: f32) {
        let rows = x.chunks_exact(len).zip(dy.chunks_exact(len)).zip(dx.chunks_exact_mut(len));
        for ((xr, gr), dr) in rows {
            let d = len as f32;
            let (mean, rstd) = moments(xr, eps);
            let (m, s) = (_mm512_set1_ps(mean), _mm512_set1_ps(rstd));
            let xhat = |v: __m512| _mm512_mul_ps(_mm512_sub_ps(v, m), s);
            let a = sum2(gr, gr, |acc, g, _| _mm512_add_ps(acc, g)) / d;
            let b = sum2(gr, xr, |acc, g, v| _mm512_fmadd_ps(g, xhat(v), acc)) / d;
            let (a, b) = (_mm512_set1_ps(a), _mm512_set1_ps(b));
            map2(gr, xr, dr, |g, v| {
                let t = _mm512_sub_ps(_mm512_sub_ps(g, a), _mm512_mul_ps(xhat(v), b));
                _mm512_mul_ps(t, s)
            });
        }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn grad_avx2(x: &[f32], dy: &[f32], dx: &mut [f32], len: usize, eps: f32) {
        super::grad_all(x, dy, dx, len, eps)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        forward_all as portable, forward_with, grad_all as portable_grad, grad_with, standardize_grad_rows,
        standardize_rows, Isa,
    };

    /// Rows of `len` values from a small generator: an offset per row (up
    /// to ±100, so the mean is not small against the spread) plus values in
    /// [-4, 4]; in one row in five every entry is the offset.
    fn rows(n: usize, len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut out = Vec::with_capacity(n * len);
        for r in 0..n {
            let offset = 200.0 * next() - 100.0;
            for _ in 0..len {
                let v = if r % 5 == 4 { 0.0 } else { 8.0 * next() - 4.0 };
                out.push(offset + v);
            }
        }
        out
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    /// `(mean, rstd)` of a row in f64.
    fn moments(row: &[f32], eps: f64) -> (f64, f64) {
        let d = row.len() as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / d;
        (mean, 1.0 / (var + eps).sqrt())
    }

    /// The vector code (of every instruction set this CPU has) gives the
    /// portable code's bits, whatever the row
    /// length (whole vectors, tails, shorter than a vector) and the number
    /// of rows (groups of four and the rest); rows split among callers
    /// (threads) give the same bits as all at once; results lie within a
    /// few roundings of the f64 definition, scaled by the row's offset
    /// against its spread (the cancellation in `x − mean`; in one row in
    /// five every entry is equal, the spread 0).
    #[test]
    fn standardized_rows_match_the_definition_on_every_instruction_set() {
        let eps = 1e-5f32;
        for len in [1, 3, 16, 17, 64, 100] {
            for n in [1, 4, 7, 10] {
                let x = rows(n, len, (len * 31 + n) as u64);
                let mut y = vec![0.0f32; x.len()];
                standardize_rows(&x, &mut y, len, eps);
                let mut p = vec![0.0f32; x.len()];
                portable(&x, &mut p, len, eps);
                assert!(same(&y, &p), "len {len}, {n} rows: vector and portable code differ");
                for isa in Isa::available() {
                    let mut v = vec![0.0f32; x.len()];
                    forward_with(isa, &x, &mut v, len, eps);
                    assert!(same(&v, &p), "len {len}, {n} rows: {isa:?} and portable code differ");
                }
                let cut = (n / 3) * len;
                let mut parts = vec![0.0f32; x.len()];
                standardize_rows(&x[..cut], &mut parts[..cut], len, eps);
                standardize_rows(&x[cut..], &mut parts[cut..], len, eps);
                assert!(same(&y, &parts), "len {len}, {n} rows: a split changes the result");
                for r in 0..n {
                    let row = &x[r * len..(r + 1) * len];
                    let (mean, rstd) = moments(row, f64::from(eps));
                    let scale = row.iter().map(|&v| f64::from(v).abs()).fold(0.0, f64::max) * rstd;
                    for j in 0..len {
                        let want = (f64::from(row[j]) - mean) * rstd;
                        let got = f64::from(y[r * len + j]);
                        let bound = (len as f64 + 8.0) * 6e-8 * (scale + want.abs());
                        assert!(
                            (got - want).abs() <= bound,
                            "len {len}, row {r}, entry {j}: {got:e}, want {want:e}"
                        );
                    }
                }
            }
        }
    }

    /// NaN anywhere in a row makes the row NaN; so does ±∞ (its mean is
    /// infinite); a row of one entry is 0 (its variance is 0).
    #[test]
    fn standardized_rows_give_the_defined_special_values() {
        let inf = f32::INFINITY;
        let nan = f32::NAN;
        let cases: [(&[f32], &[f32]); 4] = [
            (&[1.0, nan, 2.0, 3.0], &[nan; 4]),
            (&[1.0, inf, 2.0], &[nan; 3]),
            (&[-inf, 0.0], &[nan; 2]),
            (&[5.0], &[0.0]),
        ];
        for (x, want) in cases {
            for f in [standardize_rows, portable] {
                let mut y = vec![7.0f32; x.len()];
                f(x, &mut y, x.len(), 1e-5);
                assert!(same(&y, want), "standardize({x:?}) = {y:?}, want {want:?}");
            }
        }
    }

    /// The gradient: vector (every instruction set) and portable bits equal,
    /// split rows equal, and
    /// within a few roundings of the definition in f64.
    #[test]
    fn standardize_gradients_match_the_definition_on_every_instruction_set() {
        let eps = 1e-5f32;
        for len in [1, 5, 16, 33, 64] {
            let n = 6;
            let x = rows(n, len, len as u64);
            let dy: Vec<f32> = rows(n, len, 99 + len as u64).iter().map(|v| v / 25.0).collect();
            let mut dx = vec![0.0f32; n * len];
            standardize_grad_rows(&x, &dy, &mut dx, len, eps);
            let mut p = vec![0.0f32; n * len];
            portable_grad(&x, &dy, &mut p, len, eps);
            assert!(same(&dx, &p), "len {len}: vector and portable code differ");
            for isa in Isa::available() {
                let mut v = vec![0.0f32; n * len];
                grad_with(isa, &x, &dy, &mut v, len, eps);
                assert!(same(&v, &p), "len {len}: {isa:?} and portable code differ");
            }
            let mut parts = vec![0.0f32; n * len];
            standardize_grad_rows(&x[..len], &dy[..len], &mut parts[..len], len, eps);
            standardize_grad_rows(&x[len..], &dy[len..], &mut parts[len..], len, eps);
            assert!(same(&dx, &parts), "len {len}: a split changes the result");
            for r in 0..n {
                let (xr, gr) = (&x[r * len..(r + 1) * len], &dy[r * len..(r + 1) * len]);
                let (mean, rstd) = moments(xr, f64::from(eps));
                let d = len as f64;
                let xhat: Vec<f64> = xr.iter().map(|&v| (f64::from(v) - mean) * rstd).collect();
                let a = gr.iter().map(|&g| f64::from(g)).sum::<f64>() / d;
                let b = gr.iter().zip(&xhat).map(|(&g, h)| f64::from(g) * h).sum::<f64>() / d;
                let spread = xr.iter().map(|&v| f64::from(v).abs()).fold(0.0, f64::max) * rstd;
                let size = gr.iter().map(|&g| f64::from(g).abs()).fold(0.0, f64::max);
                for j in 0..len {
                    let want = ((f64::from(gr[j]) - a) - xhat[j] * b) * rstd;
                    let got = f64::from(dx[r * len + j]);
                    let bound = (len as f64 + 8.0) * 6e-8 * size * rstd * (1.0 + spread) * (1.0 + spread);
                    assert!(
                        (got - want).abs() <= bound + 1e-30,
                        "len {len}, row {r}, entry {j}: {got:e}, want {want:e}"
                    );
                }
            }
        }
    }
}
