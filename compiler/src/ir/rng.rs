//! The counter-based random number generator behind `rng_uniform`.
//!
//! Dropout masks must not depend on evaluation order, thread count or which
//! backend (reference interpreter or generated code) draws them, so every
//! random number is a pure function of `(key, stream, index)`: there is no
//! generator state to carry or split.
//!
//! The block function is Philox-4x32-10 (Salmon, Moraes, Dror and Shaw,
//! "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011), exactly as in the
//! Random123 library, so its published known-answer vectors apply. It needs
//! only 32×32→64-bit multiplies, xors and wrapping 32-bit adds, which is what
//! makes it easy to emit as straight-line code later.
//!
//! Mapping of the IR's arguments onto Philox's 128-bit counter and 64-bit key:
//! - key words: `k = [key[0] as u32, key[1] as u32]`, i.e. (seed, step);
//! - counter words: `c = [lo32(index / 4), hi32(index / 4), lo32(stream), hi32(stream)]`;
//! - one Philox call yields four 32-bit words; element `index` takes word
//!   `index % 4`, so four consecutive elements share one block.
//!
//! A 32-bit word `w` becomes a float as `(w >> 8) * 2^-24`: the top 24 bits
//! (an f32 mantissa's worth) scaled into `[0, 1 - 2^-24]`. Every such value is
//! exactly representable in f32, so the conversion is exact and identical in
//! every implementation.

use super::op::Init;

/// Philox-4x32 round multipliers (Random123's `PHILOX_M4x32_0`, `PHILOX_M4x32_1`).
pub const PHILOX_M0: u32 = 0xD251_1F53;
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl-sequence key increments applied between rounds (`PHILOX_W32_0`,
/// `PHILOX_W32_1`: the golden ratio and sqrt(3) - 1 in 0.32 fixed point).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
pub const PHILOX_W1: u32 = 0xBB67_AE85;
/// Number of Philox rounds.
pub const PHILOX_ROUNDS: usize = 10;

/// The high and low 32-bit halves of the 64-bit product `a * b`.
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// The Philox-4x32-10 block function: ten rounds of
/// `c = [hi(M1*c2) ^ c1 ^ k0, lo(M1*c2), hi(M0*c0) ^ c3 ^ k1, lo(M0*c0)]`,
/// with the key incremented by `(W0, W1)` (wrapping) before every round but the first.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The 32-bit random word for element `index` of stream `stream` under `key` = (seed, step).
pub fn random_u32(key: [i32; 2], stream: u64, index: u64) -> u32 {
    let block = index / 4;
    let lane = (index % 4) as usize;
    let counter = [block as u32, (block >> 32) as u32, stream as u32, (stream >> 32) as u32];
    philox4x32_10(counter, [key[0] as u32, key[1] as u32])[lane]
}

/// Uniform f32 in [0, 1) for element `index` of stream `stream` under `key` = (seed, step).
pub fn uniform(key: [i32; 2], stream: u64, index: u64) -> f32 {
    const SCALE: f32 = 1.0 / 16_777_216.0; // 2^-24
    (random_u32(key, stream, index) >> 8) as f32 * SCALE
}

/// The generator key for `seed`: its low and high 32-bit halves.
pub fn seed_key(seed: u64) -> [i32; 2] {
    [seed as u32 as i32, (seed >> 32) as u32 as i32]
}

/// The random stream of the tensor called `name`: the 64-bit FNV-1a hash of
/// its bytes (stable across platforms and releases), so a tensor's values do
/// not depend on which other tensors exist or on their order.
pub fn name_stream(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Element `i` (row-major) of a tensor initialised by `init` from `stream`:
///
/// - `Zeros`, `Ones`: constant;
/// - `Uniform { bound }`: `(2u - 1)·bound`, on `[-bound, bound)`;
/// - `Normal { std }`: [`box_muller`]`(std, 1 - u₁, u₂)` with `u₁`, `u₂` the
///   generator's elements `2i` and `2i + 1`.
///
/// Shared by `nnc init` and the interpreter's example inputs, so both give
/// the same parameters for the same seed.
pub fn init_element(init: Init, key: [i32; 2], stream: u64, i: u64) -> f64 {
    let u = |i: u64| f64::from(uniform(key, stream, i));
    match init {
        Init::Zeros => 0.0,
        Init::Ones => 1.0,
        Init::Uniform { bound } => (2.0 * u(i) - 1.0) * bound,
        Init::Normal { std } => {
            // 1 - u is in (0, 1], so the logarithm is finite.
            box_muller(std, 1.0 - u(2 * i), u(2 * i + 1))
        }
    }
}

/// A normal number of standard deviation `scale` from two uniform numbers by
/// the Box–Muller transform: `scale·sqrt(-2 ln u₁)·cos(2π u₂)`, multiplied
/// left to right in f64. `u₁` must lie in (0, 1], so the logarithm is
/// finite. Parameter initialisation ([`init_element`]), the synthetic data
/// sets and `nnc bench` draw their normal numbers with it.
pub fn box_muller(scale: f64, u1: f64, u2: f64) -> f64 {
    scale * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's published known-answer vectors for Philox-4x32-10
    /// (`tests/kat_vectors`: counter, key, expected output).
    #[test]
    fn philox_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(philox4x32_10(counter, key), want, "counter {counter:x?} key {key:x?}");
        }
    }

    #[test]
    fn counter_layout() {
        // Element 0 of stream 0 under key (0, 0) is the top 24 bits of the first KAT word.
        assert_eq!(random_u32([0, 0], 0, 0), 0x6627e8d5);
        assert_eq!(random_u32([0, 0], 0, 3), 0x9b00dbd8);
        assert_eq!(uniform([0, 0], 0, 0), (0x6627e8d5u32 >> 8) as f32 / 16_777_216.0);
        // Key words are the i32 key reinterpreted as u32; stream fills counter words 2 and 3.
        // (index / 4 < 2^62, so counter word 1 is below 2^30.)
        let w = philox4x32_10([0x243f6a88, 0x05a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]);
        let index = ((0x05a308d3u64 << 32) | 0x243f6a88) * 4 + 2;
        let stream = (0x03707344u64 << 32) | 0x13198a2e;
        assert_eq!(random_u32([0xa4093822u32 as i32, 0x299f31d0], stream, index), w[2]);
    }

    #[test]
    fn deterministic() {
        for i in 0..100 {
            assert_eq!(uniform([7, 3], 5, i).to_bits(), uniform([7, 3], 5, i).to_bits());
        }
    }

    #[test]
    fn streams_steps_and_seeds_differ() {
        let draw =
            |key: [i32; 2], stream: u64| -> Vec<f32> { (0..16).map(|i| uniform(key, stream, i)).collect() };
        let base = draw([1, 0], 0);
        assert_ne!(base, draw([1, 0], 1), "stream");
        assert_ne!(base, draw([1, 1], 0), "step");
        assert_ne!(base, draw([2, 0], 0), "seed");
        assert_ne!(base, draw([-1, 0], 0), "negative seed");
        // Elements of one draw differ from each other too.
        let mut sorted = base.clone();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        assert_eq!(sorted.len(), base.len());
    }

    #[test]
    fn moments_and_range() {
        let n = 100_000u64;
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        let (mut lo, mut hi) = (f32::MAX, f32::MIN);
        for i in 0..n {
            let u = uniform([12345, 6], 2, i);
            assert!((0.0..1.0).contains(&u), "{u} out of [0, 1)");
            lo = lo.min(u);
            hi = hi.max(u);
            sum += f64::from(u);
            sum_sq += f64::from(u) * f64::from(u);
        }
        let mean = sum / n as f64;
        let var = sum_sq / n as f64 - mean * mean;
        // Standard errors: 1/sqrt(12 n) ≈ 0.0009 for the mean, ≈ 0.0003 for the variance.
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
        assert!(lo < 0.001 && hi > 0.999, "range [{lo}, {hi}]");
    }

    #[test]
    fn largest_word_stays_below_one() {
        assert!(((u32::MAX >> 8) as f32 / 16_777_216.0) < 1.0);
    }
}
