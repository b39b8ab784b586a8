//! Contraction throughput: the tuned GEMM provider at 1024³ next to the same
//! library called directly (the cost of the provider's checks), on 1 and 2
//! threads; and the convolution products of the benchmark U-Net's 3×3
//! layers (`conv_tiles`) with the column matrix of a whole image, of a
//! batch of 8 images, and cut into the tiles the plan chooses
//! (`nnc_compiler::plan::conv`). (Convolutions, whose packing kernels are
//! generated per model, are timed end to end by `nnc bench --profile`.)
//! Also the Winograd convolutions of the benchmark ResNet and U-Net layers
//! (`winograd`) and the products of an LSTM step at their own shapes
//! (`recurrent`), the forward product of the benchmark `mlp_wide`'s
//! middle layer with its weight in either layout (`wide`), and the fused
//! LSTM's weight gradient, one product over all steps (`sums`). Throughput
//! is reported in elements per second where one element is one
//! floating-point operation, so `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnc_runtime::exec::gemm::{GemmProvider, MatMut, MatPtr, MatRef, Tuned};

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

/// `y[O × n] = w[O × CK] · col[CK × n]` over `n` columns of a column
/// matrix with rows `ld` apart, written into rows `y_ld` apart, in
/// products of `tile` columns.
#[allow(clippy::too_many_arguments)]
fn conv_product(
    w: &[f32],
    col: &[f32],
    y: &mut [f32],
    o: usize,
    ck: usize,
    n: usize,
    ld: usize,
    tile: usize,
) {
    let y_ld = n;
    for first in (0..n).step_by(tile) {
        let columns = tile.min(n - first);
        let (w, col) = (MatRef::row_major(w, ck), MatRef::row_major(col, ld));
        let y = MatMut::row_major(&mut y[..], y_ld).at(first);
        Tuned.gemm(o, columns, ck, 1.0, w, col.at(first), 0.0, y, 1).unwrap();
    }
}

fn conv_tiles(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_tiles");
    group.sample_size(10);
    // (output channels, input channels × 9 taps, output positions)
    for (o, ck, positions) in [(32, 288, 4096), (32, 864, 4096), (64, 1728, 1024), (128, 1152, 256)] {
        let w = values(o * ck);
        // Whole image, whole batch of 8 (per image), tiles of 128 columns.
        for (name, images, ld, tile) in [
            ("image", 1, positions, positions),
            ("batch8", 8, 8 * positions, 8 * positions),
            ("tile128", 1, 144, 128),
        ] {
            let n = images * positions;
            group.throughput(Throughput::Elements(2 * (o * ck * n) as u64));
            let col = values(ck * ld.max(n));
            let mut y = vec![0.0f32; o * n];
            group.bench_function(format!("{o}x{ck}x{positions}/{name}"), |bench| {
                bench.iter(|| {
                    if name == "tile128" {
                        // Each tile re-packed into the same block, as the runtime does.
                        for first in (0..n).step_by(tile) {
                            let (wm, cm) = (MatRef::row_major(&w, ck), MatRef::row_major(&col, ld));
                            let ym = MatMut::row_major(&mut y[..], n).at(first);
                            Tuned.gemm(o, tile.min(n - first), ck, 1.0, wm, cm, 0.0, ym, 1).unwrap();
                        }
                    } else {
                        conv_product(&w, &col, &mut y, o, ck, n, ld, tile);
                    }
                    black_box(&y);
                });
            });
        }
    }
    group.finish();
}

/// Winograd F(2×2, 3×3) convolutions (`nnc_runtime::exec::winograd`) at
/// the shapes of the benchmark CNN, ResNet and U-Net, forward, input gradient
/// and weight gradient, per blocks of about 64–512 tiles (whole tile rows); throughput in the direct
/// convolution's floating-point operations (2·K·C·9 per output), so
/// `Gelem/s` compares with the im2col products' GFLOP/s.
fn winograd(c: &mut Criterion) {
    use nnc_runtime::exec::winograd::{self, Scratch, Shape};
    let mut group = c.benchmark_group("winograd");
    group.sample_size(10);
    // (batch, channels in, channels out, image side)
    for (batch, c_in, c_out, side) in [
        (64, 32, 64, 14),
        (32, 16, 16, 32),
        (8, 32, 32, 64),
        (8, 96, 32, 64),
        (8, 192, 64, 32),
        (8, 128, 128, 16),
    ] {
        let s =
            Shape { batch, c_in, c_out, in_h: side, in_w: side, out_h: side, out_w: side, lo_h: 1, lo_w: 1 };
        let (x, w) = (values(batch * c_in * side * side), values(c_out * c_in * 9));
        let dy = values(batch * c_out * side * side);
        let (mut y, mut dx, mut dw) = (vec![0.0f32; dy.len()], vec![0.0f32; x.len()], vec![0.0f32; w.len()]);
        let mut scratch = Scratch::default();
        group.throughput(Throughput::Elements((2 * c_out * c_in * 9 * batch * side * side) as u64));
        for tiles in [64usize, 128, 256, 512] {
            let rows = tiles.div_ceil(side.div_ceil(2));
            let name = format!("{batch}x{c_in}x{side}x{side}->{c_out}/{tiles}tiles");
            group.bench_function(format!("{name}/forward"), |bench| {
                bench.iter(|| winograd::conv(&s, rows, &x, &w, &mut y, &mut scratch).unwrap())
            });
            group.bench_function(format!("{name}/input_grad"), |bench| {
                bench.iter(|| winograd::conv_input_grad(&s, rows, &dy, &w, &mut dx, &mut scratch).unwrap())
            });
            group.bench_function(format!("{name}/weight_grad"), |bench| {
                bench.iter(|| winograd::conv_weight_grad(&s, rows, &x, &dy, &mut dw, &mut scratch).unwrap())
            });
        }
    }
    group.finish();
}

/// The products of one step of the benchmark LSTM (batch 64, 32 inputs,
/// 128 hidden, gates 512) through the provider, one thread: the recurrent
/// product `h·W_hhᵀ`, its input gradient `dg·W_hh`, the weight gradient
/// `dgᵀ·h` of one step, and the input product of all 64 steps at once.
fn recurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("recurrent");
    group.sample_size(20);
    // (name, m, n, k, A transposed, B transposed)
    for (name, m, n, k, at, bt) in [
        ("h_whh_t/64x512x128", 64, 512, 128, false, true),
        ("dg_whh/64x128x512", 64, 128, 512, false, false),
        ("dg_t_h/512x128x64", 512, 128, 64, true, false),
        ("x_wih_t/4096x512x32", 4096, 512, 32, false, true),
        ("xt_dg/32x512x4096", 32, 512, 4096, true, false),
        ("ht_dg/128x512x4032", 128, 512, 4032, true, false),
        ("dg_t_x/512x32x4096", 512, 32, 4096, true, false),
    ] {
        let (a, b) = (values(m * k), values(k * n));
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                let a = if at { MatRef::row_major(&a, m).t() } else { MatRef::row_major(&a, k) };
                let b = if bt { MatRef::row_major(&b, k).t() } else { MatRef::row_major(&b, n) };
                Tuned.gemm(m, n, k, 1.0, a, b, 0.0, MatMut::row_major(&mut out, n), 1).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

/// The forward product of the benchmark `mlp_wide`'s middle layer,
/// `x[256 × 2048] · Wᵀ` with `W[2048 × 2048]` stored `[out, in]`, through
/// the provider: the weight read transposed (its storage) or row-major (a
/// transposed copy), on one thread, the library's own two-thread split, and
/// two threads each computing half of the result's columns or rows.
fn wide(c: &mut Criterion) {
    const M: usize = 256;
    const N: usize = 2048;
    const K: usize = 2048;
    let (x, w) = (values(M * K), values(N * K));
    let mut out = vec![0.0f32; M * N];
    let mut group = c.benchmark_group("wide");
    group.throughput(Throughput::Elements(2 * (M * N * K) as u64));
    group.sample_size(10);
    for (layout, transposed) in [("w_t", true), ("w_rowmajor", false)] {
        let b = || if transposed { MatRef::row_major(&w, K).t() } else { MatRef::row_major(&w, N) };
        for threads in [1, 2] {
            group.bench_function(format!("{layout}/library/{threads}t"), |bench| {
                bench.iter(|| {
                    Tuned
                        .gemm(
                            M,
                            N,
                            K,
                            1.0,
                            MatRef::row_major(&x, K),
                            b(),
                            0.0,
                            MatMut::row_major(&mut out, N),
                            threads,
                        )
                        .unwrap();
                    black_box(&out);
                })
            });
        }
        for (split, cut_rows) in [("rows", true), ("columns", false)] {
            group.bench_function(format!("{layout}/{split}/2t"), |bench| {
                bench.iter(|| {
                    let (ptr, len) = (out.as_mut_ptr() as usize, out.len());
                    let block = |part: usize| {
                        let ptr = ptr as *mut f32;
                        let (rows, cols, ar, bc) =
                            if cut_rows { (M / 2, N, part * M / 2, 0) } else { (M, N / 2, 0, part * N / 2) };
                        let bm = b();
                        let bm = MatRef { offset: (bc as isize * bm.col_stride) as usize, ..bm };
                        let c =
                            MatPtr { ptr, len, offset: ar * N + bc, row_stride: N as isize, col_stride: 1 };
                        // SAFETY: `out` is live for the whole scope and the
                        // two parts write disjoint halves of its rows or
                        // columns.
                        unsafe {
                            Tuned.gemm_shared(
                                rows,
                                cols,
                                K,
                                1.0,
                                MatRef::row_major(&x, K).at(ar * K),
                                bm,
                                0.0,
                                c,
                                1,
                            )
                        }
                        .unwrap();
                    };
                    let block = &block;
                    std::thread::scope(|s| {
                        s.spawn(move || block(1));
                        block(0);
                    });
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

/// The weight gradients of the fused LSTM (`nnc_compiler`'s `matmul_sum`
/// over the steps): `x_tᵀ · dpre_t` and `h_tᵀ · dpre_t` summed over 64
/// steps as one product of inner dimension 4096, `dpre` read in place as
/// 512 of the 768 lanes of the gradient's rows, the result row-major or
/// column-major.
fn sums(c: &mut Criterion) {
    let mut group = c.benchmark_group("sums");
    group.sample_size(20);
    // The LSTM's weight gradient `Σ zᵀ·dpre` over 4096 rows (batch 64,
    // 64 steps, hidden size 128, 32 features): `z` the last 161 lanes of
    // `y`'s rows of 929, `dpre` the first 512 of `r`'s 768.
    let (m, n, k, y_lanes, r_lanes) = (161, 512, 4096, 929, 768);
    let y = values(k * y_lanes);
    let r = values(k * r_lanes);
    let mut out = vec![0.0f32; m * n];
    group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
    for column_major in [false, true] {
        let layout = if column_major { "c_columns" } else { "c_rows" };
        group.bench_function(format!("zt_dpre/{m}x{n}x{k}/{layout}"), |bench| {
            bench.iter(|| {
                let a = MatRef { data: &y, offset: 768, row_stride: 1, col_stride: y_lanes as isize };
                let b = MatRef { data: &r, offset: 0, row_stride: r_lanes as isize, col_stride: 1 };
                let c = if column_major {
                    MatMut { data: &mut out, offset: 0, row_stride: 1, col_stride: m as isize }
                } else {
                    MatMut::row_major(&mut out, n)
                };
                Tuned.gemm(m, n, k, 1.0, a, b, 0.0, c, 1).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, gemm_1024, conv_tiles, winograd, recurrent, wide, sums);
criterion_main!(benches);
