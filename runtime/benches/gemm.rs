//! Contraction throughput: the tuned GEMM provider at 1024³ next to the same
//! library called directly (the cost of the provider's checks), on 1 and 2
//! threads. (Convolutions, whose packing kernels are generated per model,
//! are timed end to end by `nnc bench --profile`.) Throughput is reported in elements
//! per second where one element is one floating-point operation, so
//! `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnc_runtime::gemm::{GemmProvider, MatMut, MatRef, Tuned};

fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn gemm_1024(c: &mut Criterion) {
    const N: usize = 1024;
    let (a, b) = (values(N * N), values(N * N));
    let mut out = vec![0.0f32; N * N];
    let mut group = c.benchmark_group("gemm_1024");
    group.throughput(Throughput::Elements(2 * (N * N * N) as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("provider/{threads}t"), |bench| {
            bench.iter(|| {
                let (a, b) = (MatRef::row_major(&a, N), MatRef::row_major(&b, N));
                Tuned.gemm(N, N, N, 1.0, a, b, 0.0, MatMut::row_major(&mut out, N), threads).unwrap();
                black_box(&out);
            })
        });
        let parallelism =
            if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        group.bench_function(format!("direct/{threads}t"), |bench| {
            bench.iter(|| {
                // SAFETY: all three buffers hold N·N elements and are read
                // and written as dense row-major N×N matrices (column stride
                // 1, row stride N), so every addressed element is in bounds;
                // `out` is borrowed mutably and does not overlap `a` or `b`.
                unsafe {
                    gemm::gemm(
                        N,
                        N,
                        N,
                        out.as_mut_ptr(),
                        1,
                        N as isize,
                        false,
                        a.as_ptr(),
                        1,
                        N as isize,
                        b.as_ptr(),
                        1,
                        N as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, gemm_1024);
criterion_main!(benches);
