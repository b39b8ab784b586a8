use super::*;

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The input position output `o` reads through tap `a`, if inside.
fn at(o: usize, a: usize, lo: usize, size: usize) -> Option<usize> {
    let i = (o + a) as isize - lo as isize;
    (i >= 0 && (i as usize) < size).then_some(i as usize)
}

/// The direct convolution in f64 and the sum of the magnitudes of its
/// terms (the scale of each result's rounding error).
fn direct(s: &Shape, x: &[f32], w: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let len = s.batch * s.c_out * s.out_h * s.out_w;
    let (mut y, mut scale) = (vec![0.0; len], vec![0.0; len]);
    for n in 0..s.batch {
        for k in 0..s.c_out {
            for i in 0..s.out_h {
                for j in 0..s.out_w {
                    let o = ((n * s.c_out + k) * s.out_h + i) * s.out_w + j;
                    for c in 0..s.c_in {
                        for a in 0..3 {
                            for b in 0..3 {
                                if let (Some(p), Some(q)) =
                                    (at(i, a, s.lo_h, s.in_h), at(j, b, s.lo_w, s.in_w))
                                {
                                    let xv = x[((n * s.c_in + c) * s.in_h + p) * s.in_w + q] as f64;
                                    let wv = w[((k * s.c_in + c) * 3 + a) * 3 + b] as f64;
                                    y[o] += xv * wv;
                                    scale[o] += (xv * wv).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (y, scale)
}

/// Input and weight gradients of the direct convolution in f64 for the
/// output gradient `dy`, with their scales.
#[allow(clippy::type_complexity)]
fn direct_grads(s: &Shape, x: &[f32], w: &[f32], dy: &[f32]) -> ((Vec<f64>, Vec<f64>), (Vec<f64>, Vec<f64>)) {
    let mut dx = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let mut dw = (vec![0.0; w.len()], vec![0.0; w.len()]);
    for n in 0..s.batch {
        for k in 0..s.c_out {
            for i in 0..s.out_h {
                for j in 0..s.out_w {
                    let g = dy[((n * s.c_out + k) * s.out_h + i) * s.out_w + j] as f64;
                    for c in 0..s.c_in {
                        for a in 0..3 {
                            for b in 0..3 {
                                if let (Some(p), Some(q)) =
                                    (at(i, a, s.lo_h, s.in_h), at(j, b, s.lo_w, s.in_w))
                                {
                                    let xi = ((n * s.c_in + c) * s.in_h + p) * s.in_w + q;
                                    let wi = ((k * s.c_in + c) * 3 + a) * 3 + b;
                                    dx.0[xi] += g * w[wi] as f64;
                                    dx.1[xi] += (g * w[wi] as f64).abs();
                                    dw.0[wi] += g * x[xi] as f64;
                                    dw.1[wi] += (g * x[xi] as f64).abs();
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

fn assert_close(what: &str, got: &[f32], (want, scale): &(Vec<f64>, Vec<f64>)) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tolerance = 1e-5 * s + 1e-30;
        assert!(((g as f64) - w).abs() <= tolerance, "{what}[{i}]: {g} vs {w} (scale {s})");
    }
}

fn shape(
    batch: usize,
    c_in: usize,
    c_out: usize,
    (h, w): (usize, usize),
    (lo_h, hi_h): (usize, usize),
    (lo_w, hi_w): (usize, usize),
) -> Shape {
    Shape {
        batch,
        c_in,
        c_out,
        in_h: h,
        in_w: w,
        out_h: h + lo_h + hi_h - 2,
        out_w: w + lo_w + hi_w - 2,
        lo_h,
        lo_w,
    }
}

fn cases() -> Vec<Shape> {
    vec![
        shape(2, 3, 5, (7, 9), (1, 1), (1, 1)),
        shape(1, 16, 16, (8, 8), (1, 1), (1, 1)),
        shape(3, 17, 9, (5, 6), (0, 0), (0, 0)),
        shape(2, 4, 12, (6, 5), (2, 2), (2, 2)),
        shape(1, 2, 3, (4, 11), (0, 2), (2, 0)),
        shape(2, 1, 1, (3, 3), (1, 0), (0, 1)),
        shape(2, 8, 33, (1, 1), (1, 1), (1, 1)),
        shape(1, 33, 8, (10, 3), (2, 1), (1, 2)),
        // More tile rows per image than a small block holds, and tile rows
        // of two chunks.
        shape(2, 3, 4, (37, 40), (1, 1), (0, 2)),
    ]
}

#[test]
fn winograd_convolutions_equal_the_direct_convolution() {
    for s in cases() {
        let x = values(s.batch * s.c_in * s.in_h * s.in_w, 1);
        let w = values(s.c_out * s.c_in * 9, 2);
        let dy = values(s.batch * s.c_out * s.out_h * s.out_w, 3);
        let want_y = direct(&s, &x, &w);
        let (want_dx, want_dw) = direct_grads(&s, &x, &w, &dy);
        for isa in micro::available() {
            for rows in [1, 2, 5, 64] {
                let what = format!("{s:?}, {isa:?}, {rows} rows per block");
                let mut scratch = Scratch::default();
                let mut y = vec![f32::NAN; want_y.0.len()];
                conv_with(isa, &s, rows, &x, &w, &mut y, &mut scratch).unwrap();
                assert_close(&format!("y of {what}"), &y, &want_y);
                let mut dx = vec![f32::NAN; x.len()];
                conv_input_grad_with(isa, &s, rows, &dy, &w, &mut dx, &mut scratch).unwrap();
                assert_close(&format!("dx of {what}"), &dx, &want_dx);
                let mut dw = vec![f32::NAN; w.len()];
                conv_weight_grad_with(isa, &s, rows, &x, &dy, &mut dw, &mut scratch).unwrap();
                assert_close(&format!("dw of {what}"), &dw, &want_dw);
            }
        }
    }
}

#[test]
fn winograd_results_do_not_depend_on_blocks_or_batch_split() {
    let s = shape(3, 6, 7, (9, 10), (1, 1), (1, 1));
    let x = values(s.batch * s.c_in * s.in_h * s.in_w, 4);
    let w = values(s.c_out * s.c_in * 9, 5);
    let dy = values(s.batch * s.c_out * s.out_h * s.out_w, 6);
    let mut scratch = Scratch::default();
    let (mut y, mut dx) = (vec![0.0; dy.len()], vec![0.0; x.len()]);
    conv(&s, 3, &x, &w, &mut y, &mut scratch).unwrap();
    conv_input_grad(&s, 3, &dy, &w, &mut dx, &mut scratch).unwrap();
    for rows in [1, 2, 4, 100] {
        for n in 0..s.batch {
            let one = Shape { batch: 1, ..s };
            let (xs, ys) = (s.c_in * s.in_h * s.in_w, s.c_out * s.out_h * s.out_w);
            let mut y1 = vec![0.0; ys];
            conv(&one, rows, &x[n * xs..][..xs], &w, &mut y1, &mut scratch).unwrap();
            assert_eq!(
                y1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y[n * ys..][..ys].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "y, image {n}, {rows} rows"
            );
            let mut dx1 = vec![0.0; xs];
            conv_input_grad(&one, rows, &dy[n * ys..][..ys], &w, &mut dx1, &mut scratch).unwrap();
            assert_eq!(
                dx1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                dx[n * xs..][..xs].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "dx, image {n}, {rows} rows"
            );
        }
    }
}

#[test]
fn winograd_rejects_shapes_it_cannot_map() {
    let mut scratch = Scratch::default();
    let mut bad = shape(1, 2, 2, (5, 5), (1, 1), (1, 1));
    bad.out_h = 7;
    let err = conv(&bad, 2, &[0.0; 50], &[0.0; 36], &mut [0.0; 70], &mut scratch).unwrap_err();
    assert!(err.contains("cannot map"), "{err}");
    let s = shape(1, 2, 2, (5, 5), (1, 1), (1, 1));
    let err = conv(&s, 2, &[0.0; 49], &[0.0; 36], &mut [0.0; 50], &mut scratch).unwrap_err();
    assert!(err.contains("input holds 49 elements"), "{err}");
}

/// The block buffers start on a cache line; growing to a length not
/// larger gives the same elements again, and `aligned` finds them.
#[test]
fn scratch_buffers_start_on_a_cache_line() {
    let mut buf = Vec::new();
    for len in [1, 7, 16, 100, 4096, 33, 70_000, 5] {
        let slice = grow(&mut buf, len);
        assert_eq!(slice.as_ptr() as usize % 64, 0, "{len} floats");
        assert_eq!(slice.len(), len);
        slice.fill(len as f32);
        let again = grow(&mut buf, len);
        assert!(again.iter().all(|&v| v == len as f32), "{len} floats grown again");
        let seen = aligned(&buf, len);
        assert_eq!(seen.as_ptr() as usize % 64, 0);
        assert!(seen.iter().all(|&v| v == len as f32), "{len} floats found again");
    }
}

/// The 16 planes of a block buffer hold its rows, start on cache lines,
/// and fall on 16 different sets of a 64-set L1 cache (an odd number of
/// lines apart), whatever the channels and block width — in particular
/// where `rows · ld` is a multiple of 4 KiB (64 channels of 560 columns).
#[test]
fn block_planes_fall_on_different_cache_sets() {
    for rows in [1, 8, 16, 32, 64, 96, 128, 192, 256] {
        for block_rows in [1, 2, 7, 74, 128] {
            for tw in [1, 7, 8, 16, 32, 33] {
                let ld = block_stride(block_rows, tw);
                let stride = plane_stride(rows, ld);
                assert!(stride >= rows * ld, "{rows} rows of {ld}");
                assert!(stride < rows * ld + 2 * LINE_FLOATS, "{rows} rows of {ld}: {stride}");
                assert_eq!(stride % LINE_FLOATS, 0);
                let sets: std::collections::HashSet<usize> =
                    (0..XI).map(|xi| (xi * stride / LINE_FLOATS) % 64).collect();
                assert_eq!(sets.len(), XI, "{rows} rows of {ld}: planes {stride} apart");
            }
        }
    }
}

/// `load_first` reads the first `n` lanes and gives zero in the others,
/// reading nothing past them (the loads here end at the end of a buffer of
/// `n` elements); `store_first` writes the first `n` lanes and nothing past
/// them — the invariants of their `unsafe` blocks, on every instruction set
/// the CPU has.
#[test]
fn masked_loads_and_stores_touch_only_their_lanes() {
    use micro::Simd;

    /// # Safety
    /// The CPU has `S`'s instruction set.
    unsafe fn check<S: Simd>(isa: micro::Isa) {
        for n in 0..=S::LANES {
            let src: Vec<f32> = (1..=n).map(|i| i as f32).collect();
            let mut lanes = vec![f32::NAN; S::LANES];
            // SAFETY: `src` holds `n` elements and `lanes` LANES; the CPU
            // has S's instructions (this function's contract).
            unsafe { S::load_first(src.as_ptr(), n).store(lanes.as_mut_ptr()) };
            let want: Vec<f32> = (0..S::LANES).map(|i| if i < n { (i + 1) as f32 } else { 0.0 }).collect();
            assert_eq!(lanes, want, "load_first of {n} lanes, {isa:?}");
            let mut dst = vec![-1.0f32; S::LANES + 1];
            // SAFETY: `lanes` holds LANES elements and `dst` more than `n`.
            unsafe { S::load(lanes.as_ptr()).store_first(dst.as_mut_ptr(), n) };
            let want: Vec<f32> = (0..=S::LANES).map(|i| if i < n { (i + 1) as f32 } else { -1.0 }).collect();
            assert_eq!(dst, want, "store_first of {n} lanes, {isa:?}");
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(isa: micro::Isa) {
        // SAFETY: the caller checked AVX-512F.
        unsafe { check::<std::arch::x86_64::__m512>(isa) }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(isa: micro::Isa) {
        // SAFETY: the caller checked AVX2 and FMA.
        unsafe { check::<std::arch::x86_64::__m256>(isa) }
    }
    for isa in micro::available() {
        match isa.level() {
            // SAFETY: `available` lists only instruction sets the CPU has.
            #[cfg(target_arch = "x86_64")]
            micro::Level::Avx512 => unsafe { avx512(isa) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            micro::Level::Avx2 => unsafe { avx2(isa) },
            // SAFETY: portable code runs on any CPU.
            micro::Level::Portable => unsafe { check::<micro::Portable>(isa) },
        }
    }
}
