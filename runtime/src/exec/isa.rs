//! The instruction sets the runtime's hand-written vector kernels (the
//! LSTM recurrence's gate arithmetic, the packed products) are compiled
//! for, and which of them this CPU has. A kernel matches on an [`Isa`] to
//! call the code compiled for it; tests run every one the CPU has and
//! compare their bits.

/// An instruction set a kernel runs with: only those this CPU has are
/// returned by [`Isa::host`] and [`Isa::available`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// Scalar code, on any CPU.
    Portable,
    /// 8 lanes with AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// 16 lanes with AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest instruction set of this CPU (detected once).
    pub(crate) fn host() -> Isa {
        static HOST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *HOST.get_or_init(|| *Isa::available().last().unwrap_or(&Isa::Portable))
    }

    /// Every instruction set this CPU can run, narrowest first.
    pub(crate) fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
        }
        all
    }
}

/// The cache level a prefetch brings a line into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cache {
    /// L1, for data the caller's next loop reads.
    L1,
    /// L2 only, for data wanted later, while the caller's own loop keeps
    /// its lines in L1.
    L2,
}

/// Floats per cache line (64 bytes).
pub(crate) const LINE_FLOATS: usize = 16;

/// Elements of `buf` before its first cache-line boundary (at most
/// [`LINE_FLOATS`]): a scratch buffer given that many floats of slack holds
/// its data from there on, so that rows of whole lines are read and
/// written without a vector access spanning two lines (which Intel's cores
/// take at twice the cost).
pub(crate) fn line_offset(buf: &[f32]) -> usize {
    buf.as_ptr().align_offset(LINE_FLOATS * size_of::<f32>()).min(LINE_FLOATS)
}

/// Asks the CPU to bring the cache line holding `p` into `cache`. A hint:
/// it reads and writes nothing, never faults, and any address is allowed.
#[inline(always)]
pub(crate) fn prefetch_line(p: *const f32, cache: Cache) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        // SAFETY: a prefetch accesses no memory, so any address is
        // allowed; SSE is part of x86-64.
        unsafe {
            match cache {
                Cache::L1 => _mm_prefetch::<_MM_HINT_T0>(p.cast()),
                Cache::L2 => _mm_prefetch::<_MM_HINT_T1>(p.cast()),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, cache);
}
