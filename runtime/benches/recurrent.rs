//! The fused LSTM recurrence (`nnc_runtime::exec::recurrent`) at batch 64,
//! 64 steps, hidden size 128 and 32 input features: the forward and the
//! backward over 1 and 2 row blocks (a pool of 2 threads), the backward
//! with all three cotangents of `y`'s lanes (`all`) and with `dh` alone
//! (`dh`), and with `dh` alone and the weight's gradient (`weight+r`; and
//! `weight`, without storing `r`). The per-step products alone are in the
//! `packed` benchmark.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use nnc_runtime::exec::pool::ThreadPool;
use nnc_runtime::exec::recurrent::{lstm_backward, lstm_forward, LstmGrads, LstmShape};

const B: usize = 64;
const T: usize = 64;
const H: usize = 128;
const F: usize = 32;
/// Columns of `w`: `[W_ih | W_hh | bias]`.
const K: usize = F + H + 1;
/// Lanes of a row of `y`: `[h, c, i, f, g, o, x_t, h_prev, 1]`.
const L: usize = 6 * H + K;

fn values(len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * scale).collect()
}

fn lstm(c: &mut Criterion) {
    let pool = ThreadPool::new(2).unwrap();
    let shape = LstmShape { batch: B, steps: T, hidden: H, features: F, reverse: false };
    let x = values(T * B * F, 2.0);
    let w = values(4 * H * K, 0.2);
    let (h0, c0) = (values(B * H, 1.0), values(B * H, 1.0));
    let (dh, dc, dgates) = (values(T * B * H, 1.0), values(T * B * H, 1.0), values(T * B * 4 * H, 1.0));
    let mut y = vec![0.0f32; T * B * L];
    let mut r = vec![0.0f32; T * B * 6 * H];
    let mut dw = vec![0.0f32; K * 4 * H];
    let mut group = c.benchmark_group("lstm");
    group.sample_size(20);
    for parts in [1, 2] {
        group.bench_function(format!("forward/{parts}parts"), |bench| {
            bench.iter(|| {
                lstm_forward(&pool, shape, parts, &x, &w, &h0, &c0, &mut y).unwrap();
                black_box(&y);
            })
        });
    }
    lstm_forward(&pool, shape, 1, &x, &w, &h0, &c0, &mut y).unwrap();
    let all = [Some(&dh[..]), Some(&dc[..]), Some(&dgates[..])];
    let dh_only = [Some(&dh[..]), None, None];
    for (name, d) in [("all", all), ("dh", dh_only)] {
        for parts in [1, 2] {
            group.bench_function(format!("backward/{name}/{parts}parts"), |bench| {
                bench.iter(|| {
                    let grads = LstmGrads { lanes: Some(&mut r), weight: None, weight_transposed: false };
                    lstm_backward(&pool, shape, parts, &y, d, &w, &c0, grads).unwrap();
                    black_box(&r);
                })
            });
        }
    }
    // With the weight's gradient, `r` stored or not.
    for (name, lanes) in [("weight+r", true), ("weight", false)] {
        for parts in [1, 2] {
            group.bench_function(format!("backward/dh/{name}/{parts}parts"), |bench| {
                bench.iter(|| {
                    let grads = LstmGrads {
                        lanes: lanes.then_some(&mut r[..]),
                        weight: Some(&mut dw),
                        weight_transposed: false,
                    };
                    lstm_backward(&pool, shape, parts, &y, dh_only, &w, &c0, grads).unwrap();
                    black_box(&dw);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lstm);
criterion_main!(benches);
