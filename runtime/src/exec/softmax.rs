//! `softmax` and `softmax_grad` over rows (the IR ops `Op::Softmax` and
//! `Op::SoftmaxGrad`): each row read once to its maximum, once more to its
//! exponentials (written to the result) and their sum, and the result
//! scaled in place, while the row is in the L1 cache. Composed of
//! elementwise kernels, the same work stored the masked scores, the
//! exponentials and the weights and read each back (attention's rows of
//! 64 scores: three passes over the scores' memory instead of one).
//!
//! The loops are plain Rust over 16 accumulators, compiled for AVX-512F,
//! for AVX2 with FMA and as portable code; rustc vectorises them. The
//! exponentials are the compiler's approximation (`codegen::approx::exp`,
//! the JIT kernels' bits) for the arguments softmax has, `x − max ≤ 0`,
//! with results below the least normal float (2^-126, from
//! [`EXP_NORMAL_MIN`] down) at +0. Sums and maxima are taken in a fixed order (element
//! `i` of a row into accumulator `i % 16`, then the accumulators as a tree
//! of halves), so the results do not depend on the instruction set or on
//! how rows are divided among threads.

use nnc_compiler::codegen::approx::{EXP_NEG_LN2_HI, EXP_NEG_LN2_LO, EXP_POLY, ROUND_SHIFTER};
use nnc_compiler::ir::op::SOFTMAX_FLOOR;

/// Accumulators per row: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// `y = softmax(x)` per row of `len` elements (`x` and `y` of the same
/// length, a multiple of `len`).
pub fn softmax_rows(x: &[f32], y: &mut [f32], len: usize) {
    assert_eq!(x.len(), y.len(), "softmax: operand and result lengths differ");
    if len == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (detected above), the only
            // requirement of the target-feature function.
            return unsafe { x86::softmax_avx512(x, y, len) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (detected above).
            return unsafe { x86::softmax_avx2(x, y, len) };
        }
    }
    softmax_all(x, y, len)
}

/// `dx = softmax_grad(y, dy)` per row of `len` elements: `y_j·(dy_j −
/// Σ_k y_k·dy_k)`.
pub fn softmax_grad_rows(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) {
    assert!(y.len() == dy.len() && y.len() == dx.len(), "softmax_grad: operand and result lengths differ");
    if len == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (detected above).
            return unsafe { x86::grad_avx512(y, dy, dx, len) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (detected above).
            return unsafe { x86::grad_avx2(y, dy, dx, len) };
        }
    }
    grad_all(y, dy, dx, len)
}

/// The row maximum, at least [`SOFTMAX_FLOOR`], of the entries that are
/// not NaN (a NaN entry makes the sum NaN, and [`softmax_rows_together`]
/// then gives the row as the op defines it).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let larger = |a: f32, v: f32| if v > a { v } else { a };
    let mut acc = [SOFTMAX_FLOOR as f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = larger(*a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = larger(*a, v);
    }
    fold_halves(&mut acc, larger)
}

/// The sum of the accumulators.
#[inline(always)]
fn lanes_sum(acc: &mut [f32; LANES]) -> f32 {
    fold_halves(acc, |a, b| a + b)
}

/// The accumulators combined by `f` as a tree, the upper half onto the
/// lower half until one is left: four dependent steps rather than fifteen
/// (a row of attention's scores is four vectors; a chain of fifteen
/// additions per row took as long as the rest of its work).
#[inline(always)]
fn fold_halves(acc: &mut [f32; LANES], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] = f(acc[i], acc[i + width]);
        }
        width /= 2;
    }
    acc[0]
}

/// Rows whose passes are interleaved: a row's passes depend on each other
/// (maximum, then exponentials and their sum, then the scaling), and one
/// row's chain of latencies took as long as its arithmetic; four rows'
/// independent chains overlap.
const ROWS: usize = 4;

/// `softmax` of `ROWS` rows (`x` and `y` hold `n·len` elements, `n ≤ ROWS`).
#[inline(always)]
fn softmax_rows_together(x: &[f32], y: &mut [f32], len: usize) {
    let n = x.len() / len;
    let mut m = [0.0f32; ROWS];
    for (r, m) in m.iter_mut().enumerate().take(n) {
        *m = row_max(&x[r * len..(r + 1) * len]);
    }
    let mut s = [0.0f32; ROWS];
    for r in 0..n {
        s[r] = exp_row(&x[r * len..(r + 1) * len], &mut y[r * len..(r + 1) * len], m[r]);
    }
    for r in 0..n {
        let row = &mut y[r * len..(r + 1) * len];
        if s[r] > 0.0 {
            let scale = 1.0 / s[r];
            for d in row.iter_mut() {
                *d *= scale;
            }
        } else if s[r].is_nan() && x[r * len..(r + 1) * len].iter().any(|v| v.is_nan()) {
            // The op's maximum is NaN when an entry is, and so is every
            // exponential; the maximum above passed over the NaN.
            row.fill(f32::NAN);
        }
        // Otherwise (every entry masked, or a NaN sum from +∞ entries) the
        // exponentials are the result, as the op defines.
    }
}

/// The least argument of [`exp_nonpositive`] whose result is a normal
/// float (e^-87.33 ≈ 1.18e-38 > 2^-126).
pub const EXP_NORMAL_MIN: f32 = -87.33;

/// e^x for `x ≤ 0` (or NaN), the bits of the compiler's `exp` from
/// [`EXP_NORMAL_MIN`] up; +0 below. With `n = round(x·log2 e)` in
/// [-126, 0], `2^n` is one normal float (where the general `exp` applies
/// it as two factors to reach subnormal results), and no upper clamp is
/// needed: 18 vector instructions where the general one takes 25.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let dead = x < EXP_NORMAL_MIN;
    let x = if dead { 0.0 } else { x };
    let t = x * std::f32::consts::LOG2_E;
    let shifted = t + ROUND_SHIFTER;
    let n = shifted - ROUND_SHIFTER;
    let r = n.mul_add(EXP_NEG_LN2_HI, x);
    let r = n.mul_add(EXP_NEG_LN2_LO, r);
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p.mul_add(r, c);
    }
    let y = p.mul_add(r * r, r) + 1.0;
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUND_SHIFTER.to_bits() as i32);
    let y = y * f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    if dead {
        0.0
    } else {
        y
    }
}

/// `y = exp(x − m)` over a row; returns the sum.
#[inline(always)]
fn exp_row(x: &[f32], y: &mut [f32], m: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact_mut(LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        for ((a, d), &v) in acc.iter_mut().zip(yc.iter_mut()).zip(xc) {
            let e = exp_nonpositive(v - m);
            *d = e;
            *a += e;
        }
    }
    for ((a, d), &v) in acc.iter_mut().zip(ys.into_remainder()).zip(xs.remainder()) {
        let e = exp_nonpositive(v - m);
        *d = e;
        *a += e;
    }
    lanes_sum(&mut acc)
}

#[inline(always)]
fn grad_row(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    let mut acc = [0.0f32; LANES];
    let mut ys = y.chunks_exact(LANES);
    let mut gs = dy.chunks_exact(LANES);
    for (yc, gc) in (&mut ys).zip(&mut gs) {
        for ((a, &p), &g) in acc.iter_mut().zip(yc).zip(gc) {
            *a = p.mul_add(g, *a);
        }
    }
    for ((a, &p), &g) in acc.iter_mut().zip(ys.remainder()).zip(gs.remainder()) {
        *a = p.mul_add(g, *a);
    }
    let t = lanes_sum(&mut acc);
    for ((d, &p), &g) in dx.iter_mut().zip(y).zip(dy) {
        *d = p * (g - t);
    }
}

#[inline(always)]
fn softmax_all(x: &[f32], y: &mut [f32], len: usize) {
    for (xr, yr) in x.chunks(ROWS * len).zip(y.chunks_mut(ROWS * len)) {
        softmax_rows_together(xr, yr, len);
    }
}

#[inline(always)]
fn grad_all(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) {
    for ((yr, gr), dr) in y.chunks_exact(len).zip(dy.chunks_exact(len)).zip(dx.chunks_exact_mut(len)) {
        grad_row(yr, gr, dr);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// # Safety
    /// The CPU has AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn softmax_avx512(x: &[f32], y: &mut [f32], len: usize) {
        super::softmax_all(x, y, len)
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_avx2(x: &[f32], y: &mut [f32], len: usize) {
        super::softmax_all(x, y, len)
    }

    /// # Safety
    /// The CPU has AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn grad_avx512(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) {
        super::grad_all(y, dy, dx, len)
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn grad_avx2(y: &[f32], dy: &[f32], dx: &mut [f32], len: usize) {
        super::grad_all(y, dy, dx, len)
    }
}

#[cfg(test)]
mod tests {
    use super::{grad_all as portable_grad, softmax_all as portable, softmax_grad_rows, softmax_rows};

    /// Rows of `len` values in [-8, 8] from a small generator, with a few
    /// masked entries (-1e30) and, in one row in five, every entry masked.
    fn rows(n: usize, len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n * len)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32;
                if (i / len) % 5 == 4 || (s >> 20).is_multiple_of(7) {
                    -1e30
                } else {
                    16.0 * u - 8.0
                }
            })
            .collect()
    }

    fn reference(x: &[f32], len: usize) -> Vec<f64> {
        let mut out = vec![];
        for row in x.chunks(len) {
            let m = row.iter().fold(-5e29f64, |m, &v| m.max(f64::from(v)));
            let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) - m).exp()).collect();
            let s: f64 = e.iter().sum();
            out.extend(e.iter().map(|&v| if s > 0.0 { v / s } else { v }));
        }
        out
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    /// The vector code gives the portable code's bits, whatever the row
    /// length (whole vectors, tails, shorter than a vector) and the number
    /// of rows (groups of four and the rest), and rows split among callers
    /// (threads) give the same bits as all at once. Results lie within
    /// (length + 8) roundings of the f64 definition plus one subnormal-free
    /// absolute step (results below 2^-126 are +0); masked entries weigh
    /// exactly 0, a row masked everywhere is all zeros.
    #[test]
    fn softmax_rows_match_the_definition_on_every_instruction_set() {
        for len in [1, 3, 16, 17, 64, 100] {
            for n in [1, 4, 7, 10] {
                let x = rows(n, len, (len * 31 + n) as u64);
                let mut y = vec![0.0f32; x.len()];
                softmax_rows(&x, &mut y, len);
                let mut p = vec![0.0f32; x.len()];
                portable(&x, &mut p, len);
                assert!(same(&y, &p), "len {len}, {n} rows: vector and portable code differ");
                let cut = (n / 3) * len;
                let mut parts = vec![0.0f32; x.len()];
                softmax_rows(&x[..cut], &mut parts[..cut], len);
                softmax_rows(&x[cut..], &mut parts[cut..], len);
                assert!(same(&y, &parts), "len {len}, {n} rows: a split changes the result");
                let want = reference(&x, len);
                let bound = (len as f64 + 8.0) * f64::from(f32::EPSILON) / 2.0 + 3e-7;
                for (i, (&got, &w)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(got) - w).abs() <= bound * w + 1.2e-38,
                        "len {len}, row {}, entry {}: {got:e}, want {w:e}",
                        i / len,
                        i % len
                    );
                    if x[i] == -1e30 {
                        assert_eq!(got.to_bits(), 0, "a masked entry weighs +0");
                    }
                }
            }
        }
    }

    /// NaN anywhere in a row makes the whole row NaN (the op's maximum is
    /// NaN); a row with +∞ has no positive sum, so its exponentials are the
    /// result (0 at the finite entries, NaN at the infinite one); −∞
    /// entries weigh 0; results below the least normal float are +0.
    #[test]
    fn softmax_rows_give_the_defined_special_values() {
        let inf = f32::INFINITY;
        let cases: [(&[f32], &[f32]); 5] = [
            (&[1.0, f32::NAN, 2.0, 3.0], &[f32::NAN; 4]),
            (&[1.0, inf, 2.0], &[0.0, f32::NAN, 0.0]),
            (&[-inf, 0.0, -inf], &[0.0, 1.0, 0.0]),
            (&[0.0, -100.0], &[1.0, 0.0]),
            (&[-1e30, -1e30, -inf], &[0.0, 0.0, 0.0]),
        ];
        for (x, want) in cases {
            for f in [softmax_rows, portable] {
                let mut y = vec![7.0f32; x.len()];
                f(x, &mut y, x.len());
                assert!(same(&y, want), "softmax({x:?}) = {y:?}, want {want:?}");
            }
        }
    }

    /// The gradient: vector and portable bits equal, split rows equal, and
    /// within a few roundings of `y·(dy − Σ y·dy)` in f64.
    #[test]
    fn softmax_gradients_match_the_definition_on_every_instruction_set() {
        for len in [1, 5, 16, 33, 64] {
            let n = 6;
            let mut y = vec![0.0f32; n * len];
            softmax_rows(&rows(n, len, len as u64), &mut y, len);
            let dy: Vec<f32> =
                rows(n, len, 99 + len as u64).iter().map(|&v| if v < -1e29 { 0.5 } else { v }).collect();
            let mut dx = vec![0.0f32; n * len];
            softmax_grad_rows(&y, &dy, &mut dx, len);
            let mut p = vec![0.0f32; n * len];
            portable_grad(&y, &dy, &mut p, len);
            assert!(same(&dx, &p), "len {len}: vector and portable code differ");
            let mut parts = vec![0.0f32; n * len];
            softmax_grad_rows(&y[..len], &dy[..len], &mut parts[..len], len);
            softmax_grad_rows(&y[len..], &dy[len..], &mut parts[len..], len);
            assert!(same(&dx, &parts), "len {len}: a split changes the result");
            for r in 0..n {
                let (yr, gr) = (&y[r * len..(r + 1) * len], &dy[r * len..(r + 1) * len]);
                let t: f64 = yr.iter().zip(gr).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
                let scale: f64 = yr.iter().zip(gr).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
                for j in 0..len {
                    let want = f64::from(yr[j]) * (f64::from(gr[j]) - t);
                    let bound =
                        f64::from(yr[j]) * (f64::from(gr[j]).abs() + (len as f64 + 2.0) * scale) * 6e-8;
                    let got = f64::from(dx[r * len + j]);
                    assert!(
                        (got - want).abs() <= bound + 1e-30,
                        "len {len}, row {r}, entry {j}: {got:e}, want {want:e}"
                    );
                }
            }
        }
    }
}
