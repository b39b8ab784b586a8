//! Random numbers for the synthetic generators: every draw is a pure
//! function of `(seed, stream, index)` (Philox-4x32-10, the generator behind
//! the IR's `rng_uniform`), so generated data depend on nothing but the seed
//! and the generator's arguments.

use nnc_compiler::ir::rng::{box_muller, philox4x32_10};

/// A sequence of draws: draw `i` of stream `stream` under `seed`.
pub(crate) struct Draws {
    key: [u32; 2],
    stream: u64,
    index: u64,
}

impl Draws {
    /// The draws of `stream` (one per purpose and example) under `seed`.
    pub fn new(seed: u64, stream: u64) -> Draws {
        Draws { key: [seed as u32, (seed >> 32) as u32], stream, index: 0 }
    }

    /// The next 64 random bits: two words of the Philox block of counter
    /// `(index, stream)`.
    fn next_u64(&mut self) -> u64 {
        let i = self.index;
        self.index += 1;
        let c = [i as u32, (i >> 32) as u32, self.stream as u32, (self.stream >> 32) as u32];
        let w = philox4x32_10(c, self.key);
        (u64::from(w[0]) << 32) | u64::from(w[1])
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller, one value per two uniforms).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // in (0, 1]
        let u2 = self.uniform();
        box_muller(1.0, u1, u2)
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        let span = (hi - lo + 1) as f64;
        lo + ((self.uniform() * span) as usize).min(hi - lo)
    }
}

/// The stream of purpose `purpose` for example (or item) `item`.
pub(crate) fn stream(purpose: u64, item: u64) -> u64 {
    (purpose << 48) ^ item
}
