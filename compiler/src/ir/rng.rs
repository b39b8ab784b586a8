//! The counter-based random number generator behind `rng_uniform`.
