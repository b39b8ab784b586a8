//! Contraction throughput: the tuned GEMM provider at 1024³ next to the same
//! library called directly (the cost of the provider's checks), on 1 and 2
//! threads. (Convolutions, whose packing kernels are generated per model,
//! are timed end to end by `nnc bench --profile`.) Throughput is reported in elements
//! per second where one element is one floating-point operation, so
//! `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnc_runtime::exec::gemm::{GemmProvider, MatMut, MatRef, Tuned};

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
        let parallelism = if threads > 1 {
            gemm_common::Parallelism::Rayon(threads)
        } else {
            gemm_common::Parallelism::None
        };
        group.bench_function(format!("direct/{threads}t"), |bench| {
            bench.iter(|| {
                // SAFETY: all three buffers hold N·N elements and are read
                // and written as dense N×N matrices (unit and N strides), so
                // every addressed element is in bounds; `out` is borrowed
                // mutably and does not overlap `a` or `b`. The row-major
                // product `out = a·b` is computed as its column-major
                // transpose `outᵀ = bᵀ·aᵀ`, the layout the kernel prefers.
                unsafe {
                    gemm_f32::gemm::f32::get_gemm_fn()(
                        N,
                        N,
                        N,
                        out.as_mut_ptr(),
                        N as isize,
                        1,
                        false,
                        b.as_ptr(),
                        N as isize,
                        1,
                        a.as_ptr(),
                        N as isize,
                        1,
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
