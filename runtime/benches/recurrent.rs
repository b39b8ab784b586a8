//! The fused LSTM recurrence (`nnc_runtime::exec::recurrent`) at batch 64,
//! 64 steps and hidden size 128: the forward and the backward over 1 and 2
//! row blocks (a pool of 2 threads), the backward with all three
//! cotangents of `y`'s lanes (`all`) and with `dh` alone (`dh`), next to
//! the 64 recurrent products alone, as the recurrence calls them
//! (`products`): the forward's `h_prev[64, 128] · wᵀ[128, 512]` (the `h`
//! lanes of a step of `y`, rows `6H` apart) with `wᵀ` a row-major copy or
//! the weight read transposed, and the backward's `dpre[64, 512] · w[512,
//! 128]` into the `dhp` lanes of a step of `r`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use nnc_runtime::exec::gemm::{GemmProvider, MatMut, MatRef, Tuned};
use nnc_runtime::exec::pool::ThreadPool;
use nnc_runtime::exec::recurrent::{lstm_backward, lstm_forward, LstmShape};

const B: usize = 64;
const T: usize = 64;
const H: usize = 128;

fn values(len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * scale).collect()
}

fn lstm(c: &mut Criterion) {
    let pool = ThreadPool::new(2).unwrap();
    let shape = LstmShape { batch: B, steps: T, hidden: H, reverse: false };
    let gx = values(T * B * 4 * H, 2.0);
    let w = values(4 * H * H, 0.2);
    let (h0, c0) = (values(B * H, 1.0), values(B * H, 1.0));
    let (dh, dc, dgates) = (values(T * B * H, 1.0), values(T * B * H, 1.0), values(T * B * 4 * H, 1.0));
    let mut y = vec![0.0f32; T * B * 6 * H];
    let mut r = vec![0.0f32; T * B * 6 * H];
    let mut group = c.benchmark_group("lstm");
    group.sample_size(20);
    for parts in [1, 2] {
        group.bench_function(format!("forward/{parts}parts"), |bench| {
            bench.iter(|| {
                lstm_forward(&pool, &Tuned, shape, parts, &gx, &w, &h0, &c0, &mut y).unwrap();
                black_box(&y);
            })
        });
    }
    lstm_forward(&pool, &Tuned, shape, 1, &gx, &w, &h0, &c0, &mut y).unwrap();
    let all = [Some(&dh[..]), Some(&dc[..]), Some(&dgates[..])];
    let dh_only = [Some(&dh[..]), None, None];
    for (name, d) in [("all", all), ("dh", dh_only)] {
        for parts in [1, 2] {
            group.bench_function(format!("backward/{name}/{parts}parts"), |bench| {
                bench.iter(|| {
                    lstm_backward(&pool, &Tuned, shape, parts, &y, d, &w, &c0, &mut r).unwrap();
                    black_box(&r);
                })
            });
        }
    }
    group.finish();
}

fn products(c: &mut Criterion) {
    let w = values(4 * H * H, 0.2);
    let mut wt = vec![0.0f32; 4 * H * H];
    for j in 0..4 * H {
        for k in 0..H {
            wt[k * 4 * H + j] = w[j * H + k];
        }
    }
    let y = values(T * B * 6 * H, 1.0);
    let dpre = values(B * 4 * H, 1.0);
    let mut pre = vec![0.0f32; B * 4 * H];
    let mut r = vec![0.0f32; T * B * 6 * H];
    // A step's rows of `y` and `r` are contiguous, `6H` apart.
    let row = (6 * H) as isize;
    let mut group = c.benchmark_group("lstm_products");
    group.sample_size(20);
    for (name, transposed) in [("forward_wt_copy", false), ("forward_w_transposed", true)] {
        group.bench_function(format!("{name}/64x"), |bench| {
            bench.iter(|| {
                let b = if transposed { MatRef::row_major(&w, H).t() } else { MatRef::row_major(&wt, 4 * H) };
                for t in 0..T {
                    let a = MatRef { data: &y, offset: t * B * 6 * H, row_stride: row, col_stride: 1 };
                    let c = MatMut::row_major(&mut pre, 4 * H);
                    Tuned.gemm(B, 4 * H, H, 1.0, a, b, 0.0, c, 1).unwrap();
                }
                black_box(&pre);
            })
        });
    }
    group.bench_function("backward/64x", |bench| {
        bench.iter(|| {
            for t in 0..T {
                let a = MatRef::row_major(&dpre, 4 * H);
                let c =
                    MatMut { data: &mut r, offset: t * B * 6 * H + 4 * H, row_stride: row, col_stride: 1 };
                Tuned.gemm(B, H, 4 * H, 1.0, a, MatRef::row_major(&w, H), 0.0, c, 1).unwrap();
            }
            black_box(&r);
        })
    });
    group.finish();
}

criterion_group!(benches, lstm, products);
criterion_main!(benches);
