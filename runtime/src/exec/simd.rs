//! The vector type of the runtime's register-tiled products
//! ([`packed`](super::packed) and the small products of
//! [`gemm`](super::gemm)): a vector of f32 lanes, implemented for a scalar
//! (portable code), AVX2 and AVX-512 registers. A product is written once
//! over [`Vector`] and compiled per instruction set under
//! `#[target_feature]`.

/// A vector of f32 lanes (a scalar for the portable code).
pub(crate) trait Vector: Copy {
    const LANES: usize;
    /// The vector registers of the instruction set, which bound the
    /// accumulators a microkernel can keep.
    const REGISTERS: usize;
    /// # Safety
    /// The CPU has the vector's instruction set (the contract of every
    /// method).
    unsafe fn zero() -> Self;
    /// `*p` in every lane.
    /// # Safety
    /// As [`Vector::zero`]; `p` points at a readable f32.
    unsafe fn splat(p: *const f32) -> Self;
    /// # Safety
    /// As [`Vector::zero`]; `p` points at `LANES` readable f32.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// As [`Vector::zero`]; `p` points at `LANES` writable f32.
    unsafe fn store(self, p: *mut f32);
    /// `self + a·b`, rounded once.
    /// # Safety
    /// As [`Vector::zero`].
    unsafe fn fma(self, a: Self, b: Self) -> Self;
    /// `self·b`.
    /// # Safety
    /// As [`Vector::zero`].
    unsafe fn mul(self, b: Self) -> Self;
    /// `self + b`.
    /// # Safety
    /// As [`Vector::zero`].
    unsafe fn add(self, b: Self) -> Self;
}

impl Vector for f32 {
    const LANES: usize = 1;
    const REGISTERS: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        // SAFETY: a readable f32 at `p` (the contract).
        unsafe { p.read() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: a readable f32 at `p` (the contract).
        unsafe { p.read() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: a writable f32 at `p` (the contract).
        unsafe { p.write(self) }
    }
    #[inline(always)]
    unsafe fn fma(self, a: Self, b: Self) -> Self {
        a.mul_add(b, self)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        self * b
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        self + b
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Vector;

    impl Vector for __m256 {
        const LANES: usize = 8;
        const REGISTERS: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            // SAFETY: AVX present, a readable f32 at `p` (the contract).
            unsafe { _mm256_set1_ps(p.read()) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: AVX present, 8 readable f32 at `p` (the contract).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: AVX present, 8 writable f32 at `p` (the contract).
            unsafe { _mm256_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            // SAFETY: FMA present (the contract).
            unsafe { _mm256_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_mul_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_add_ps(self, b) }
        }
    }

    impl Vector for __m512 {
        const LANES: usize = 16;
        const REGISTERS: usize = 32;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            // SAFETY: AVX-512F present, a readable f32 at `p` (the
            // contract).
            unsafe { _mm512_set1_ps(p.read()) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: AVX-512F present, 16 readable f32 at `p` (the
            // contract).
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: AVX-512F present, 16 writable f32 at `p` (the
            // contract).
            unsafe { _mm512_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_mul_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_add_ps(self, b) }
        }
    }
}
