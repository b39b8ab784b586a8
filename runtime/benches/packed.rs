//! Products against a packed right operand (`nnc_runtime::exec::packed`)
//! at the shapes of the LSTM recurrence's steps (batch 64, hidden size 128,
//! 32 input features), on one thread, next to the tuned GEMM provider
//! doing the same products: 64 forward products `z[m, 161] · wᵀ[161, 512]`
//! (the `z` lanes of a step of `y`, rows `L = 7H + F + 1` apart, into a
//! contiguous `[m, 512]`; the provider reads a row-major copy of `wᵀ`, the
//! packed product `wᵀ` packed from the weight read transposed) and 64
//! backward products `dpre[m, 512] · W_hh[512, 128]` (into the `dhp` lanes
//! of a step of `r`, rows `6H` apart; `W_hh` read where it lies in `w`),
//! with `m = 64` (one block of rows) and `m = 32` (one of two). The
//! weights are packed once, outside the timed products; `pack` times the
//! packing of each. Throughput is in elements per second where one element
//! is one floating-point operation, so `Gelem/s` reads as GFLOP/s.
//!
//! `weight_grad` times the backward's weight gradient, accumulated step by
//! step: 64 products `C[161, 512] += z[m, 161]ᵀ · dpre[m, 512]` (the `z`
//! lanes of a step of `y`, `dpre` in a scratch of rows padded to
//! `512 + 16`), next to the same sum by the tuned GEMM provider as one
//! product of depth `T·m` over `y`'s `z` lanes and a `[T·m, 512]` `dpre`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnc_runtime::exec::gemm::{GemmProvider, MatMut, MatRef, Tuned};
use nnc_runtime::exec::packed::{matmul, matmul_tn, PackedB, Prefetch, NR};

const B: usize = 64;
const T: usize = 64;
const H: usize = 128;
const F: usize = 32;
/// Columns of `w`: `[W_ih | W_hh | bias]`.
const K: usize = F + H + 1;
/// Lanes of a row of `y`: `[h, c, i, f, g, o, x_t, h_prev, 1]`.
const L: usize = 6 * H + K;
/// Gate pre-activations per row.
const G: usize = 4 * H;

fn values(len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * scale).collect()
}

/// `W_hh` where it lies in `w`: columns `F..F + H`, rows `K` apart.
fn w_hh(w: &[f32]) -> MatRef<'_> {
    MatRef { data: w, offset: F, row_stride: K as isize, col_stride: 1 }
}

/// Step `t`'s `dhp` lanes of `r`: `H` from lane `4H` of rows `6H` apart.
fn dhp(r: &mut [f32], t: usize) -> MatMut<'_> {
    MatMut { data: r, offset: t * B * 6 * H + G, row_stride: (6 * H) as isize, col_stride: 1 }
}

fn packed_products(c: &mut Criterion) {
    let w = values(G * K, 0.2);
    let mut wt = vec![0.0f32; K * G];
    for j in 0..G {
        for k in 0..K {
            wt[k * G + j] = w[j * K + k];
        }
    }
    let y = values(T * B * L, 1.0);
    let dpre = values(B * G, 1.0);
    let mut pre = vec![0.0f32; B * G];
    let mut r = vec![0.0f32; T * B * 6 * H];
    let forward_b = PackedB::pack(K, G, MatRef::row_major(&w, K).t()).unwrap();
    let backward_b = PackedB::pack(G, H, w_hh(&w)).unwrap();
    // A step's `z` lanes: `K` from lane `6H` of rows `L` apart.
    let z = |t: usize| MatRef { data: &y, offset: t * B * L + 6 * H, row_stride: L as isize, col_stride: 1 };
    let mut group = c.benchmark_group("packed");
    group.sample_size(20);
    for m in [64, 32] {
        group.throughput(Throughput::Elements(2 * (T * m * K * G) as u64));
        group.bench_function(format!("forward/packed/m{m}"), |bench| {
            bench.iter(|| {
                for t in 0..T {
                    matmul(m, z(t), &forward_b, MatMut::row_major(&mut pre, G)).unwrap();
                }
                black_box(&pre);
            })
        });
        group.bench_function(format!("forward/tuned/m{m}"), |bench| {
            bench.iter(|| {
                for t in 0..T {
                    let (b, c) = (MatRef::row_major(&wt, G), MatMut::row_major(&mut pre, G));
                    Tuned.gemm(m, G, K, 1.0, z(t), b, 0.0, c, 1).unwrap();
                }
                black_box(&pre);
            })
        });
        group.throughput(Throughput::Elements(2 * (T * m * G * H) as u64));
        group.bench_function(format!("backward/packed/m{m}"), |bench| {
            bench.iter(|| {
                for t in 0..T {
                    matmul(m, MatRef::row_major(&dpre, G), &backward_b, dhp(&mut r, t)).unwrap();
                }
                black_box(&r);
            })
        });
        group.bench_function(format!("backward/tuned/m{m}"), |bench| {
            bench.iter(|| {
                for t in 0..T {
                    let a = MatRef::row_major(&dpre, G);
                    Tuned.gemm(m, H, G, 1.0, a, w_hh(&w), 0.0, dhp(&mut r, t), 1).unwrap();
                }
                black_box(&r);
            })
        });
    }
    let ld = G.next_multiple_of(NR) + 16;
    let dpre_padded = values(B * ld, 1.0);
    let dpre_all = values(T * B * G, 1.0);
    let mut dw = vec![0.0f32; K * G];
    for m in [64, 32] {
        group.throughput(Throughput::Elements(2 * (T * m * K * G) as u64));
        group.bench_function(format!("weight_grad/packed/m{m}"), |bench| {
            bench.iter(|| {
                for t in 0..T {
                    let b = MatRef { data: &dpre_padded, offset: 0, row_stride: ld as isize, col_stride: 1 };
                    matmul_tn(K, G, m, z(t), b, MatMut::row_major(&mut dw, G), t > 0, &mut Prefetch::none())
                        .unwrap();
                }
                black_box(&dw);
            })
        });
    }
    group.throughput(Throughput::Elements(2 * (T * 64 * K * G) as u64));
    group.bench_function("weight_grad/packed/m64hot", |bench| {
        bench.iter(|| {
            for t in 0..T {
                let b = MatRef { data: &dpre_padded, offset: 0, row_stride: ld as isize, col_stride: 1 };
                matmul_tn(K, G, 64, z(0), b, MatMut::row_major(&mut dw, G), t > 0, &mut Prefetch::none())
                    .unwrap();
            }
            black_box(&dw);
        })
    });
    group.throughput(Throughput::Elements(2 * (T * B * K * G) as u64));
    group.bench_function("weight_grad/tuned/m64", |bench| {
        bench.iter(|| {
            let zt = MatRef { data: &y, offset: 6 * H, row_stride: 1, col_stride: L as isize };
            let b = MatRef::row_major(&dpre_all, G);
            Tuned.gemm(K, G, T * B, 1.0, zt, b, 0.0, MatMut::row_major(&mut dw, G), 1).unwrap();
            black_box(&dw);
        })
    });
    group.finish();
    let mut group = c.benchmark_group("pack");
    group.sample_size(20);
    let mut packed = PackedB::new();
    group.throughput(Throughput::Elements((K * G) as u64));
    group.bench_function("forward_w_transposed", |bench| {
        bench.iter(|| {
            packed.pack_into(K, G, MatRef::row_major(&w, K).t()).unwrap();
            black_box(&packed);
        })
    });
    group.throughput(Throughput::Elements((G * H) as u64));
    group.bench_function("backward_w_hh", |bench| {
        bench.iter(|| {
            packed.pack_into(G, H, w_hh(&w)).unwrap();
            black_box(&packed);
        })
    });
    group.finish();
}

criterion_group!(benches, packed_products);
criterion_main!(benches);
