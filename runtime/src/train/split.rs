//! The order in which an epoch visits the training examples.
//!
//! (Which examples train and which validate is
//! [`crate::data::Examples::split`].) Each epoch visits the training
//! examples in a permutation drawn from the seed and the epoch number
//! (Fisher–Yates over the counter-based generator) and nothing else, so a
//! run and its resumption see exactly the same batches.

use nnc_compiler::ir::rng;

/// The training examples of epoch `epoch` (0-based) in the order visited.
pub fn epoch_order(train: &[usize], seed: u64, epoch: usize) -> Vec<usize> {
    let mut order = train.to_vec();
    let key = rng::seed_key(seed);
    let stream = rng::name_stream("train.shuffle").wrapping_add(epoch as u64);
    for i in (1..order.len()).rev() {
        let r = u64::from(rng::random_u32(key, stream, 2 * i as u64)) << 32
            | u64::from(rng::random_u32(key, stream, 2 * i as u64 + 1));
        let j = (r % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let train: Vec<usize> = (0..100).map(|i| i * 2).collect();
        let a = epoch_order(&train, 3, 0);
        assert_eq!(a, epoch_order(&train, 3, 0));
        assert_ne!(a, epoch_order(&train, 3, 1));
        assert_ne!(a, epoch_order(&train, 4, 0));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, train);
    }
}
