//! The contraction library against its oracles: the tuned GEMM provider
//! against the f64 reference loop, and the compiled convolutions (generated
//! packing kernels around GEMM calls) against the reference interpreter's
//! `conv`, `conv_transpose` and `conv_weight_grad`.

use std::collections::HashMap;

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{ConvAttrs, Graph, InputKind, Loc, Mode, Op, OutputKind, Shape, Type};
use nnc_runtime::exec::conv::ConvGeometry;
use nnc_runtime::exec::gemm::{self, GemmProvider, MatMut, MatPtr, MatRef, Reference, Tuned};
use nnc_runtime::exec::{Executable, Gemm, Options};

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

/// How an operand is laid out in its slice.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Row-major with 3 unused elements after each row and 5 before the first.
    Padded,
    /// Row-major with the rows stored last to first and the columns reversed.
    Reversed,
}

/// A `rows × cols` matrix in `layout`: its buffer, offset and strides.
fn place(rows: usize, cols: usize, layout: Layout, seed: u64) -> (Vec<f32>, usize, isize, isize) {
    let (r, c) = (rows as isize, cols as isize);
    match layout {
        Layout::RowMajor => (values(rows * cols, seed), 0, c, 1),
        Layout::ColMajor => (values(rows * cols, seed), 0, 1, r),
        Layout::Padded => (values(5 + rows * (cols + 3), seed), 5, c + 3, 1),
        Layout::Reversed => (values(rows * cols, seed), (rows * cols).saturating_sub(1), -c, -1),
    }
}

/// Runs the same product through the tuned provider and the reference,
/// and checks the results agree within 1e-5 of the magnitude of the terms.
#[allow(clippy::too_many_arguments)]
fn check_gemm(
    (m, n, k): (usize, usize, usize),
    (la, lb, lc): (Layout, Layout, Layout),
    alpha: f32,
    beta: f32,
    c_fill: Option<f32>,
    threads: usize,
) {
    let (a, a_off, a_rs, a_cs) = place(m, k, la, 1);
    let (b, b_off, b_rs, b_cs) = place(k, n, lb, 2);
    let (mut c0, c_off, c_rs, c_cs) = place(m, n, lc, 3);
    if let Some(fill) = c_fill {
        c0.fill(fill);
    }
    let a_ref = MatRef { data: &a, offset: a_off, row_stride: a_rs, col_stride: a_cs };
    let b_ref = MatRef { data: &b, offset: b_off, row_stride: b_rs, col_stride: b_cs };
    let run = |provider: &dyn GemmProvider, a: MatRef, b: MatRef, alpha: f32, beta: f32, c: &[f32]| {
        let mut c = c.to_vec();
        let c_mut = MatMut { data: &mut c, offset: c_off, row_stride: c_rs, col_stride: c_cs };
        provider.gemm(m, n, k, alpha, a, b, beta, c_mut, threads).unwrap();
        c
    };
    let got = run(&Tuned, a_ref, b_ref, alpha, beta, &c0);
    let want = run(&Reference, a_ref, b_ref, alpha, beta, &c0);
    // The magnitude of the terms: |alpha|·|A|·|B| + |beta|·|C|.
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let (a_abs, b_abs, c_abs) = (abs(&a), abs(&b), abs(&c0));
    let scale = run(
        &Reference,
        MatRef { data: &a_abs, ..a_ref },
        MatRef { data: &b_abs, ..b_ref },
        alpha.abs(),
        beta.abs(),
        &c_abs,
    );
    for i in 0..got.len() {
        let tol = 1e-5 * scale[i].max(1e-3);
        assert!(
            (got[i] - want[i]).abs() <= tol || got[i].to_bits() == want[i].to_bits(),
            "{m}x{n}x{k} {la:?}/{lb:?}/{lc:?} alpha {alpha} beta {beta} threads {threads}: \
             element {i} is {} but the reference gives {}",
            got[i],
            want[i]
        );
    }
}

#[test]
fn tuned_gemm_matches_reference_on_odd_sizes() {
    let sizes = [1, 2, 3, 7, 17, 65, 129];
    for (i, &m) in sizes.iter().enumerate() {
        for &n in &sizes {
            // Every (m, n) pair with a k that cycles through the sizes.
            let k = sizes[(i + n) % sizes.len()];
            for threads in [1, 2] {
                let layouts = (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor);
                check_gemm((m, n, k), layouts, 1.0, 0.0, None, threads);
            }
        }
    }
}

#[test]
fn tuned_gemm_handles_strides_alpha_and_beta() {
    use Layout::*;
    // (m, n, k), layouts of A, B, C
    let shapes = [(7, 17, 3), (65, 2, 17), (17, 65, 129), (3, 1, 7), (1, 7, 65)];
    let layouts = [
        (RowMajor, RowMajor, RowMajor),
        (ColMajor, RowMajor, RowMajor),
        (RowMajor, ColMajor, RowMajor),
        (ColMajor, ColMajor, ColMajor),
        (Padded, ColMajor, Padded),
        (Reversed, Padded, Reversed),
        (Reversed, Reversed, ColMajor),
    ];
    // (alpha, beta)
    let scalars = [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (2.5, -1.0), (0.0, 0.5), (0.0, 0.0)];
    for shape in shapes {
        for layout in layouts {
            for (alpha, beta) in scalars {
                for threads in [1, 2] {
                    check_gemm(shape, layout, alpha, beta, None, threads);
                }
            }
        }
    }
}

#[test]
fn tuned_gemm_matches_reference_with_a_left_operand_copied_column_major() {
    use Layout::*;
    // Products whose left operand, once the provider has put the
    // destination column-major (and a product with fewer than 64 rows on
    // its side), has non-contiguous rows and m·k ≥ 4096, so it is copied
    // column-major in blocks of 2^20 / m columns (rounded down to 8):
    // (1100, 12, 1000) with A padded and C column-major in two blocks
    // (952, 48), (9, 1031, 11) with B column-major and C row-major
    // in two (8, 3), the rest in one; odd sizes leave edges outside the
    // 8 × 8 blocks.
    let shapes = [(1100, 12, 1000), (37, 129, 200), (9, 1031, 11), (64, 512, 128)];
    let layouts = [
        (RowMajor, ColMajor, RowMajor),
        (RowMajor, Padded, ColMajor),
        (Reversed, ColMajor, RowMajor),
        (Padded, Reversed, ColMajor),
    ];
    for shape in shapes {
        for layout in layouts {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 2.0)] {
                for threads in [1, 2] {
                    check_gemm(shape, layout, alpha, beta, None, threads);
                }
            }
        }
        check_gemm(shape, (RowMajor, ColMajor, RowMajor), 1.0, 0.0, Some(f32::NAN), 1);
    }
}

#[test]
fn tuned_gemm_matches_reference_computed_transposed_into_scratch() {
    use Layout::*;
    // Products whose left operand (once the destination is column-major)
    // has non-contiguous rows and is much larger than the result and the
    // right operand, so the provider computes the transposed product into
    // scratch and adds it to the result transposed: a dense layer's
    // `x · Wᵀ` with W stored `[out, in]` (B column-major), C row-major,
    // padded, reversed or column-major; sizes off the 8 × 8 blocks.
    let shapes = [(40, 300, 520), (17, 1031, 600), (64, 512, 2048), (3, 700, 900)];
    let layouts = [
        (RowMajor, ColMajor, RowMajor),
        (Padded, ColMajor, Padded),
        (RowMajor, ColMajor, Reversed),
        (Reversed, ColMajor, RowMajor),
        (ColMajor, RowMajor, ColMajor),
    ];
    for shape in shapes {
        for layout in layouts {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 2.0), (1.0, 1.0)] {
                for threads in [1, 2] {
                    check_gemm(shape, layout, alpha, beta, None, threads);
                }
            }
        }
        check_gemm(shape, (RowMajor, ColMajor, RowMajor), 1.0, 0.0, Some(f32::NAN), 1);
    }
}

#[test]
fn beta_zero_ignores_nan_in_c() {
    use Layout::*;
    for (shape, layout) in
        [((7, 17, 3), (RowMajor, RowMajor, RowMajor)), ((65, 33, 129), (ColMajor, RowMajor, Padded))]
    {
        for threads in [1, 2] {
            check_gemm(shape, layout, 1.5, 0.0, Some(f32::NAN), threads);
            check_gemm(shape, layout, 0.0, 0.0, Some(f32::NAN), threads);
        }
    }
    // And the results are finite.
    let (a, b) = (values(6, 1), values(6, 2));
    let mut c = vec![f32::NAN; 4];
    Tuned
        .gemm(
            2,
            2,
            3,
            1.0,
            MatRef::row_major(&a, 3),
            MatRef::row_major(&b, 2),
            0.0,
            MatMut::row_major(&mut c, 2),
            1,
        )
        .unwrap();
    assert!(c.iter().all(|v| v.is_finite()), "{c:?}");
}

/// (what, A, B, C offset, C strides, C length) of a product that must be refused.
type BadOperands<'a> = (&'a str, MatRef<'a>, MatRef<'a>, usize, (isize, isize), usize);

#[test]
fn out_of_range_operands_are_errors() {
    let (a, b) = (vec![1.0f32; 12], vec![1.0f32; 12]);
    let ok_a = MatRef::row_major(&a, 4); // 3×4
    let ok_b = MatRef::row_major(&b, 3); // 4×3
                                         // (what, A, B, C offset, C strides, C length) for C = A[3×4]·B[4×3]
    let cases: Vec<BadOperands> = vec![
        ("A offset past the end", ok_a.at(1), ok_b, 0, (3, 1), 9),
        ("A row stride too long", MatRef { row_stride: 5, ..ok_a }, ok_b, 0, (3, 1), 9),
        ("A negative stride before the start", MatRef { row_stride: -4, ..ok_a }, ok_b, 0, (3, 1), 9),
        (
            "B transposed reads past the end",
            ok_a,
            MatRef { col_stride: 5, row_stride: 1, ..ok_b },
            0,
            (3, 1),
            9,
        ),
        ("B huge stride", ok_a, MatRef { col_stride: isize::MAX, ..ok_b }, 0, (3, 1), 9),
        ("B most negative stride", ok_a, MatRef { row_stride: isize::MIN, ..ok_b }, 0, (3, 1), 9),
        ("C too short", ok_a, ok_b, 0, (3, 1), 8),
        ("C offset past the end", ok_a, ok_b, 1, (3, 1), 9),
        ("C rows overlap", ok_a, ok_b, 0, (1, 1), 9),
        ("C zero stride", ok_a, ok_b, 0, (0, 1), 9),
        ("C columns overlap rows", ok_a, ok_b, 0, (2, 1), 9),
    ];
    let providers: [&dyn GemmProvider; 2] = [&Tuned, &Reference];
    for (what, a, b, offset, (rs, cs), len) in cases {
        for provider in providers {
            for threads in [1, 2] {
                let mut c = vec![7.0f32; len];
                let c_mut = MatMut { data: &mut c, offset, row_stride: rs, col_stride: cs };
                let result = provider.gemm(3, 3, 4, 1.0, a, b, 0.0, c_mut, threads);
                assert!(result.is_err(), "{}: {what} was accepted", provider.name());
                assert!(c.iter().all(|&v| v == 7.0), "{}: {what} wrote to C", provider.name());
            }
        }
    }
    // Empty products address nothing, whatever the strides.
    let mut c: Vec<f32> = vec![];
    let empty = MatMut { data: &mut c, offset: 0, row_stride: 0, col_stride: 0 };
    Tuned.gemm(0, 3, 4, 1.0, ok_a, ok_b, 0.0, empty, 1).unwrap();
}

/// A raw destination pointer that scoped threads may share (each writes
/// its own elements).
#[derive(Clone, Copy)]
struct SharedDst(*mut f32);
// SAFETY: the threads of the test below write disjoint elements through it
// while the buffer it points into outlives them (a scoped borrow).
unsafe impl Send for SharedDst {}
unsafe impl Sync for SharedDst {}

impl SharedDst {
    /// The pointer (a method, so closures capture the whole wrapper).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// The runtime's split of a product among threads: blocks of columns of a
/// row-major result (not contiguous in memory), each computed by its own
/// thread through `gemm_shared` at the same time, give the product of one
/// call; a block reaching outside the storage is an error that writes
/// nothing.
#[test]
fn concurrent_blocks_of_one_result_equal_one_product() {
    let (m, n, k) = (19, 70, 23);
    let (a, b) = (values(m * k, 1), values(k * n, 2));
    let am = MatRef::row_major(&a, k);
    let bm = MatRef::row_major(&b, n);
    let mut want = vec![0.0f32; m * n];
    Reference.gemm(m, n, k, 1.0, am, bm, 0.0, MatMut::row_major(&mut want, n), 1).unwrap();
    let providers: [&dyn GemmProvider; 2] = [&Tuned, &Reference];
    for provider in providers {
        for parts in [2, 3, 5] {
            // Cut the columns (rows for the transposed, column-major result).
            for column_major in [false, true] {
                let (rs, cs) = if column_major { (1, m as isize) } else { (n as isize, 1) };
                let mut c = vec![f32::NAN; m * n];
                let len = c.len();
                let dst = SharedDst(c.as_mut_ptr());
                std::thread::scope(|scope| {
                    for part in 0..parts {
                        let (j0, j1) = (part * n / parts, (part + 1) * n / parts);
                        scope.spawn(move || {
                            let block = MatPtr {
                                ptr: dst.ptr(),
                                len,
                                offset: j0 * cs as usize,
                                row_stride: rs,
                                col_stride: cs,
                            };
                            let b_block = MatRef { offset: j0, ..bm };
                            // SAFETY: `c` outlives the scope and holds `len`
                            // elements; the blocks are disjoint column ranges
                            // of a result whose elements are distinct, so no
                            // element is accessed by two threads.
                            unsafe { provider.gemm_shared(m, j1 - j0, k, 1.0, am, b_block, 0.0, block, 1) }
                                .unwrap();
                        });
                    }
                });
                for i in 0..m {
                    for j in 0..n {
                        let got = c[i * rs as usize + j * cs as usize];
                        let w = want[i * n + j];
                        assert!(
                            (got - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{} in {parts} parts (column-major {column_major}): ({i}, {j}) = {got}, want {w}",
                            provider.name()
                        );
                    }
                }
            }
        }
        // The last block placed one column too far reaches past the storage.
        let mut c = vec![7.0f32; m * n];
        let block = MatPtr {
            ptr: c.as_mut_ptr(),
            len: c.len(),
            offset: n / 2 + 1,
            row_stride: n as isize,
            col_stride: 1,
        };
        // SAFETY: `c` is exclusively borrowed for the call; the provider
        // checks the block against `len` before writing.
        let result = unsafe {
            provider.gemm_shared(m, n - n / 2, k, 1.0, am, MatRef { offset: n / 2, ..bm }, 0.0, block, 1)
        };
        assert!(result.is_err(), "{}: a block past the storage was accepted", provider.name());
        assert!(c.iter().all(|&v| v == 7.0), "{}: a refused block wrote", provider.name());
    }
}

/// (A shape, B shape, A, B and C lengths) of a batched product that must be refused.
type BadMatmul = (&'static [usize], &'static [usize], usize, usize, usize);

#[test]
fn batched_matmul_matches_reference() {
    // (A shape, B shape)
    let cases = [
        (vec![2, 3, 5, 4], vec![2, 3, 4, 6]),
        (vec![7, 1], vec![1, 9]),
        (vec![3, 17, 65], vec![3, 65, 2]),
        (vec![0, 2, 2], vec![0, 2, 2]),
    ];
    for (a_shape, b_shape) in cases {
        let (a, b) = (values(a_shape.iter().product(), 4), values(b_shape.iter().product(), 5));
        let r = a_shape.len();
        let len = a_shape[..r - 1].iter().product::<usize>() * b_shape[r - 1];
        let (mut got, mut want) = (vec![0.0; len], vec![0.0; len]);
        let shape = gemm::matmul(&Tuned, &a_shape, &a, &b_shape, &b, &mut got, 2).unwrap();
        gemm::matmul(&Reference, &a_shape, &a, &b_shape, &b, &mut want, 1).unwrap();
        assert_eq!(shape.len(), r);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{a_shape:?} x {b_shape:?}: {g} vs {w}");
        }
    }
    // Mismatched shapes and buffers.
    let bad: [BadMatmul; 4] = [
        (&[2, 3], &[4, 2], 6, 8, 4),
        (&[2, 2, 3], &[3, 3, 2], 12, 18, 12),
        (&[3], &[3], 3, 3, 1),
        (&[2, 3], &[3, 2], 6, 6, 3),
    ];
    for (a_shape, b_shape, la, lb, lc) in bad {
        let (a, b, mut c) = (vec![0.0; la], vec![0.0; lb], vec![0.0; lc]);
        assert!(
            gemm::matmul(&Tuned, a_shape, &a, b_shape, &b, &mut c, 1).is_err(),
            "{a_shape:?} x {b_shape:?}"
        );
    }
}

/// One convolution test case: `[N, C, *S] x [O, C/groups, *K]`.
struct ConvCase {
    batch: usize,
    channels: usize,
    out_channels: usize,
    spatial: &'static [usize],
    kernel: &'static [usize],
    stride: &'static [usize],
    padding: &'static [(usize, usize)],
    dilation: &'static [usize],
    groups: usize,
    output_padding: &'static [usize],
}

const CONV_CASES: &[ConvCase] = &[
    // 1-D: stride 2, asymmetric padding, groups 2, output padding.
    ConvCase {
        batch: 2,
        channels: 4,
        out_channels: 6,
        spatial: &[11],
        kernel: &[3],
        stride: &[2],
        padding: &[(1, 2)],
        dilation: &[1],
        groups: 2,
        output_padding: &[1],
    },
    // 1-D: dilation 3, no padding.
    ConvCase {
        batch: 1,
        channels: 3,
        out_channels: 2,
        spatial: &[9],
        kernel: &[2],
        stride: &[1],
        padding: &[(0, 0)],
        dilation: &[3],
        groups: 1,
        output_padding: &[0],
    },
    // 2-D: everything at once.
    ConvCase {
        batch: 2,
        channels: 4,
        out_channels: 4,
        spatial: &[7, 6],
        kernel: &[3, 2],
        stride: &[2, 1],
        padding: &[(1, 0), (0, 2)],
        dilation: &[1, 2],
        groups: 2,
        output_padding: &[1, 0],
    },
    // 2-D pointwise (no im2col), groups 2.
    ConvCase {
        batch: 2,
        channels: 6,
        out_channels: 4,
        spatial: &[5, 5],
        kernel: &[1, 1],
        stride: &[1, 1],
        padding: &[(0, 0), (0, 0)],
        dilation: &[1, 1],
        groups: 2,
        output_padding: &[0, 0],
    },
    // 2-D: stride larger than the kernel (input positions skipped).
    ConvCase {
        batch: 1,
        channels: 2,
        out_channels: 3,
        spatial: &[8, 8],
        kernel: &[2, 2],
        stride: &[3, 3],
        padding: &[(0, 0), (0, 1)],
        dilation: &[1, 1],
        groups: 1,
        output_padding: &[2, 1],
    },
    // 2-D depthwise, padding wider than the kernel reach on one side.
    ConvCase {
        batch: 3,
        channels: 3,
        out_channels: 3,
        spatial: &[4, 5],
        kernel: &[3, 3],
        stride: &[1, 2],
        padding: &[(2, 1), (1, 1)],
        dilation: &[1, 1],
        groups: 3,
        output_padding: &[0, 1],
    },
    // 3-D: stride, dilation, asymmetric padding, groups 2, output padding.
    ConvCase {
        batch: 1,
        channels: 2,
        out_channels: 4,
        spatial: &[5, 4, 6],
        kernel: &[2, 3, 2],
        stride: &[1, 2, 2],
        padding: &[(1, 1), (0, 1), (2, 0)],
        dilation: &[2, 1, 1],
        groups: 2,
        output_padding: &[0, 1, 1],
    },
];

/// One configuration's name and result values.
type Run = (String, Vec<f32>);

/// Runs a one-op graph through the reference interpreter and through the
/// compiled executable in every configuration of [`CONFIGS`]: the result's
/// shape, the interpreter's values and each configuration's values.
fn run_op(
    op: Op,
    x_shape: &[usize],
    x: &[f32],
    w_shape: &[usize],
    w: &[f32],
) -> (Vec<usize>, Vec<f32>, Vec<Run>) {
    let mut g = Graph::new("contraction", Mode::Infer);
    let xv = g.input("x", InputKind::Data, Type::f32(Shape::known(x_shape)), Loc::NONE);
    let wv = g.input("w", InputKind::Data, Type::f32(Shape::known(w_shape)), Loc::NONE);
    let y = g.add(op, &[xv, wv], Loc::NONE).unwrap();
    g.output(OutputKind::Other, "y", y);
    let tensor = |shape: &[usize], data: &[f32]| {
        Tensor::Float(ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap())
    };
    let inputs =
        HashMap::from([("x".to_string(), tensor(x_shape, x)), ("w".to_string(), tensor(w_shape, w))]);
    let outputs = interp::run::<f32>(&g, &inputs).unwrap();
    let (shape, want) = match &outputs[0].1 {
        Tensor::Float(a) => (a.shape().to_vec(), a.iter().copied().collect()),
        _ => panic!("the interpreter returned a non-float tensor"),
    };
    let mut got = vec![];
    for &(gemm, threads, checking) in CONFIGS {
        let options = Options { threads, checking, gemm };
        let mut exe = Executable::compile(&g, 1, &options).unwrap();
        exe.set_input("x", &inputs["x"]).unwrap();
        exe.set_input("w", &inputs["w"]).unwrap();
        exe.run().unwrap();
        let Tensor::Float(y) = exe.output("y").unwrap() else { panic!("non-float result") };
        got.push((format!("{gemm:?} GEMM, {threads} threads, {checking:?}"), y.iter().copied().collect()));
    }
    (shape, want, got)
}

/// Executable configurations the convolutions run in.
const CONFIGS: &[(Gemm, usize, Checking)] = &[
    (Gemm::Tuned, 1, Checking::Unchecked),
    (Gemm::Tuned, 2, Checking::Unchecked),
    (Gemm::Tuned, 2, Checking::Checked),
    (Gemm::Reference, 1, Checking::Checked),
];

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what}: element {i} is {g}, the interpreter gives {w}"
        );
    }
}

fn image(batch: usize, channels: usize, spatial: &[usize]) -> Vec<usize> {
    [&[batch, channels][..], spatial].concat()
}

#[test]
fn convolutions_match_the_interpreter() {
    // Each convolution kind compiles to generated packing kernels (pad,
    // im2col, col2im) around GEMM calls; every configuration must match the
    // interpreter.
    for (case_index, case) in CONV_CASES.iter().enumerate() {
        let attrs = ConvAttrs {
            stride: case.stride.to_vec(),
            padding: case.padding.to_vec(),
            dilation: case.dilation.to_vec(),
            groups: case.groups,
        };
        let x_shape = image(case.batch, case.channels, case.spatial);
        let w_shape = [&[case.out_channels, case.channels / case.groups][..], case.kernel].concat();
        let x = values(x_shape.iter().product(), 10 + case_index as u64);
        let w = values(w_shape.iter().product(), 20 + case_index as u64);

        // Forward.
        let op = Op::Conv(attrs.clone());
        let (y_shape, want, got) = run_op(op, &x_shape, &x, &w_shape, &w);
        let geometry = ConvGeometry::conv(&x_shape, &w_shape, &attrs).unwrap();
        assert_eq!(geometry.output_shape(), y_shape, "case {case_index}");
        for (config, y) in &got {
            assert_close(&format!("conv case {case_index} ({config})"), y, &want);
        }

        // Weight gradient, with dy of the forward output's shape.
        let kernel = case.kernel.to_vec();
        let dy = values(y_shape.iter().product(), 30 + case_index as u64);
        let op = Op::ConvWeightGrad { conv: attrs.clone(), kernel: kernel.clone() };
        let (dw_shape, want, got) = run_op(op, &x_shape, &x, &y_shape, &dy);
        let geometry = ConvGeometry::weight_grad(&x_shape, &y_shape, &attrs, &kernel).unwrap();
        assert_eq!(geometry.weight_shape(), dw_shape, "case {case_index}");
        for (config, dw) in &got {
            assert_close(&format!("conv_weight_grad case {case_index} ({config})"), dw, &want);
        }

        // Transposed convolution: x [N, C, S], weight [C, O/groups, K].
        let wt_shape = [&[case.channels, case.out_channels / case.groups][..], case.kernel].concat();
        let wt = values(wt_shape.iter().product(), 40 + case_index as u64);
        let op = Op::ConvTranspose { conv: attrs.clone(), output_padding: case.output_padding.to_vec() };
        let (t_shape, want, got) = run_op(op, &x_shape, &x, &wt_shape, &wt);
        let geometry =
            ConvGeometry::conv_transpose(&x_shape, &wt_shape, &attrs, case.output_padding).unwrap();
        assert_eq!(geometry.input_shape(), t_shape, "case {case_index}");
        assert_eq!(geometry.output_shape(), x_shape, "case {case_index}");
        for (config, t) in &got {
            assert_close(&format!("conv_transpose case {case_index} ({config})"), t, &want);
        }
    }
}

#[test]
fn inconsistent_convolution_shapes_are_errors() {
    let attrs = ConvAttrs { stride: vec![1, 1], padding: vec![(0, 0); 2], dilation: vec![1, 1], groups: 2 };
    // (x shape, w shape): channels that do not fit the groups, wrong ranks,
    // a kernel larger than the input.
    let cases: [(&[usize], &[usize]); 4] = [
        (&[1, 3, 4, 4], &[2, 1, 3, 3]),
        (&[1, 4, 4, 4], &[3, 2, 3, 3]),
        (&[1, 4, 4], &[2, 2, 3]),
        (&[1, 4, 2, 4], &[2, 2, 3, 3]),
    ];
    for (x_shape, w_shape) in cases {
        assert!(ConvGeometry::conv(x_shape, w_shape, &attrs).is_err(), "{x_shape:?} * {w_shape:?}");
    }
    assert!(ConvGeometry::conv_transpose(&[1, 4, 4, 4], &[4, 1, 3, 3], &attrs, &[0]).is_err());
    assert!(ConvGeometry::weight_grad(&[1, 4, 4, 4], &[1, 2, 3, 2], &attrs, &[3, 3]).is_err());
    assert!(ConvGeometry::weight_grad(&[1, 4, 4, 4], &[2, 2, 2, 2], &attrs, &[3, 3]).is_err());
}

/// A graph `y = matmul_sum(permute(x1), w1) + matmul_sum(permute(x2), w2)`
/// with `x·: [batch, depth, m]` and `w·: [batch, depth, n]`: two weight
/// gradients of the shape a dense layer's has, the second accumulated onto
/// the first.
fn summed_products(batch: usize, depth: usize, m: usize, n: usize) -> (Graph, HashMap<String, Tensor<f32>>) {
    let mut g = Graph::new("summed", Mode::Infer);
    let mut inputs = HashMap::new();
    let mut terms = vec![];
    for i in 0..2 {
        let (xs, ws) = ([batch, depth, m], [batch, depth, n]);
        let x = g.input(format!("x{i}"), InputKind::Data, Type::f32(Shape::known(&xs)), Loc::NONE);
        let w = g.input(format!("w{i}"), InputKind::Data, Type::f32(Shape::known(&ws)), Loc::NONE);
        let xt = g.add(Op::Permute { axes: vec![0, 2, 1] }, &[x], Loc::NONE).unwrap();
        terms.push(g.add(Op::MatMulSum, &[xt, w], Loc::NONE).unwrap());
        for (name, shape, seed) in
            [(format!("x{i}"), xs, 10 + i as u64), (format!("w{i}"), ws, 20 + i as u64)]
        {
            let data = values(shape.iter().product(), seed);
            inputs.insert(name, Tensor::Float(ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()));
        }
    }
    let y = g.add(Op::Binary(nnc_compiler::ir::BinaryOp::Add), &terms, Loc::NONE).unwrap();
    g.output(OutputKind::Other, "y", y);
    (g, inputs)
}

/// Runs `g` on `inputs` in `config`, `runs` times in one executable: the
/// result of each run.
fn run_graph(
    g: &Graph,
    inputs: &HashMap<String, Tensor<f32>>,
    (gemm, threads, checking): (Gemm, usize, Checking),
    runs: usize,
) -> Vec<Vec<f32>> {
    let mut exe = Executable::compile(g, 1, &Options { threads, checking, gemm }).unwrap();
    for (name, t) in inputs {
        exe.set_input(name, t).unwrap();
    }
    (0..runs)
        .map(|_| {
            exe.run().unwrap();
            let Tensor::Float(y) = exe.output("y").unwrap() else { panic!("non-float result") };
            y.iter().copied().collect()
        })
        .collect()
}

/// Products divided among threads: a batch of attention-head products
/// (each computed whole by one thread, so the same bits as on one thread)
/// and weight gradients over a long depth (divided by depth, each thread's
/// partial sum added in order: the same bits at every run), against the
/// interpreter.
#[test]
fn products_divided_among_threads_match_the_interpreter() {
    // Scores and weighted values of 16 × 8 heads of 64 positions and 16
    // features: 8 Mi multiply-adds, enough for two threads.
    for (x_shape, w_shape) in [([16, 8, 64, 16], [16, 8, 16, 64]), ([16, 8, 64, 64], [16, 8, 64, 16])] {
        let (x, w) = (values(x_shape.iter().product(), 6), values(w_shape.iter().product(), 7));
        let (_, want, got) = run_op(Op::MatMul, &x_shape, &x, &w_shape, &w);
        for (name, g) in &got {
            assert_close(&format!("{x_shape:?} x {w_shape:?}, {name}"), g, &want);
        }
        let one_thread = &got[0].1;
        for (name, g) in &got[1..3] {
            assert!(
                g.iter().zip(one_thread).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{x_shape:?} x {w_shape:?}: {name} differs from one thread"
            );
        }
    }
    // Two [64, 48] gradients over 32 × 64 rows, the second accumulated onto
    // the first.
    let (g, inputs) = summed_products(32, 64, 64, 48);
    let outputs = interp::run::<f32>(&g, &inputs).unwrap();
    let Tensor::Float(want) = &outputs[0].1 else { panic!("non-float result") };
    let want: Vec<f32> = want.iter().copied().collect();
    for &config in CONFIGS {
        let runs = run_graph(&g, &inputs, config, 3);
        // Sums of 4096 products of values in [-1, 1): the tolerance of
        // `assert_close` scaled by the terms' count.
        for (i, (r, w)) in runs[0].iter().zip(&want).enumerate() {
            assert!((r - w).abs() <= 1e-4 * w.abs().max(1.0), "{config:?}: element {i} is {r}, want {w}");
        }
        for r in &runs[1..] {
            assert!(
                r.iter().zip(&runs[0]).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{config:?}: runs differ"
            );
        }
    }
}
