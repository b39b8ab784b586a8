//! Packed products against an f64 reference over shapes that cover every
//! edge of the blocking, bit-identical rows whatever block or call they
//! are computed in and at every instruction set, and out-of-bounds
//! operands rejected before anything is written.

use super::*;

/// A deterministic stream of pseudo-random floats in `[-1, 1)`.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn values(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                // xorshift64*: enough for test data.
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let unit = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32;
                2.0 * unit - 1.0
            })
            .collect()
    }
}

/// Where the right operand comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// `wᵀ` of a row-major `[N, K]` weight `w` (row stride 1).
    Transposed,
    /// Columns `3..3 + N` of a row-major `[K, N + 5]` matrix (column
    /// stride 1).
    ColumnRange,
    /// Neither stride 1: every other element of a column-major matrix.
    Strided,
}

/// The right operand of a case: its storage and the view of `B` in it.
struct Right {
    data: Vec<f32>,
    offset: usize,
    row_stride: isize,
    col_stride: isize,
}

impl Right {
    fn new(k: usize, n: usize, source: Source, rng: &mut Rng) -> Right {
        let (len, offset, row_stride, col_stride) = match source {
            Source::Transposed => (n * k, 0, 1, k as isize),
            Source::ColumnRange => (k * (n + 5), 3, (n + 5) as isize, 1),
            Source::Strided => (2 * k * n + 1, 1, 2, 2 * k as isize),
        };
        Right { data: rng.values(len), offset, row_stride, col_stride }
    }

    fn view(&self) -> MatRef<'_> {
        MatRef {
            data: &self.data,
            offset: self.offset,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }

    fn at(&self, i: usize, j: usize) -> f32 {
        self.data
            [(self.offset as isize + i as isize * self.row_stride + j as isize * self.col_stride) as usize]
    }
}

/// One product `C (+)= A·B` with padded rows: `A` is `m × k` at offset
/// `a_offset` with rows `k + a_pad` apart, `C` is `m × n` at offset
/// `c_offset` with rows `n + c_pad` apart.
struct Case {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    a_offset: usize,
    lda: usize,
    b: Right,
    c: Vec<f32>,
    c_offset: usize,
    ldc: usize,
}

impl Case {
    fn new((m, k, n): (usize, usize, usize), source: Source, seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let (lda, ldc) = (k + 3, n + 7);
        let (a_offset, c_offset) = (2, 5);
        let a = rng.values(a_offset + m * lda);
        let b = Right::new(k, n, source, &mut rng);
        let c = rng.values(c_offset + m * ldc + 4);
        Case { m, k, n, a, a_offset, lda, b, c, c_offset, ldc }
    }

    fn a(&self) -> MatRef<'_> {
        MatRef { data: &self.a, offset: self.a_offset, row_stride: self.lda as isize, col_stride: 1 }
    }

    fn packed(&self) -> PackedB {
        PackedB::pack(self.k, self.n, self.b.view()).unwrap()
    }

    /// `C` after the product at `isa`.
    fn run(&self, isa: Isa, b: &PackedB, accumulate: bool) -> Vec<f32> {
        let mut c = self.c.clone();
        let view =
            MatMut { data: &mut c, offset: self.c_offset, row_stride: self.ldc as isize, col_stride: 1 };
        product(isa, self.m, self.a(), b, view, accumulate).unwrap();
        c
    }

    /// The product in f64 (with `C`'s value when accumulating) and the
    /// scale of its rounding error, `Σ|a·b| (+ |c|)`, per element of `C`.
    fn reference(&self, accumulate: bool) -> (Vec<f64>, Vec<f64>) {
        let (mut want, mut scale) = (vec![0.0; self.m * self.n], vec![0.0; self.m * self.n]);
        for i in 0..self.m {
            for j in 0..self.n {
                let (mut sum, mut abs) = (0.0f64, 0.0f64);
                if accumulate {
                    let c = self.c[self.c_offset + i * self.ldc + j] as f64;
                    (sum, abs) = (c, c.abs());
                }
                for p in 0..self.k {
                    let term = self.a[self.a_offset + i * self.lda + p] as f64 * self.b.at(p, j) as f64;
                    sum += term;
                    abs += term.abs();
                }
                want[i * self.n + j] = sum;
                scale[i * self.n + j] = abs;
            }
        }
        (want, scale)
    }

    /// Checks `got` against the reference, and that the elements of `C`
    /// outside the product were left as they were.
    fn check(&self, what: &str, got: &[f32], accumulate: bool) {
        let (want, scale) = self.reference(accumulate);
        // A chain of k fused multiply-adds errs by at most about k units
        // of 2⁻²⁴ of Σ|a·b|.
        let tol = (self.k as f64 + 2.0) * f32::EPSILON as f64;
        for (at, (&g, &original)) in got.iter().zip(&self.c).enumerate() {
            let inside = at.checked_sub(self.c_offset).map(|r| (r / self.ldc, r % self.ldc));
            match inside {
                Some((i, j)) if i < self.m && j < self.n => {
                    let (w, s) = (want[i * self.n + j], scale[i * self.n + j]);
                    assert!(
                        (g as f64 - w).abs() <= tol * s + f64::MIN_POSITIVE,
                        "{what}: C[{i}, {j}] = {g}, want {w} (scale {s})"
                    );
                }
                _ => {
                    assert_eq!(g.to_bits(), original.to_bits(), "{what}: element {at} outside C was written")
                }
            }
        }
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn products_equal_the_f64_reference_at_every_isa() {
    let sources = [Source::Transposed, Source::ColumnRange, Source::Strided];
    let mut seed = 0;
    for m in [1, 5, 8, 13, 32, 64, 70] {
        for k in [1, 7, 128, 161, 512] {
            for n in [1, 17, 128, 512, 513] {
                seed += 1;
                let source = sources[seed as usize % sources.len()];
                let case = Case::new((m, k, n), source, seed);
                let b = case.packed();
                for accumulate in [false, true] {
                    let what = format!("{m}×{k}×{n} from {source:?}, accumulate {accumulate}");
                    let host = case.run(Isa::host(), &b, accumulate);
                    case.check(&what, &host, accumulate);
                    for isa in Isa::available() {
                        let got = case.run(isa, &b, accumulate);
                        assert_eq!(bits(&got), bits(&host), "{what}: {isa:?} differs from {:?}", Isa::host());
                    }
                }
            }
        }
    }
}

#[test]
fn long_panels_are_taken_in_blocks_without_changing_a_bit() {
    // K > KC: the panel's rows in blocks, the accumulators going through C.
    for (m, k, n) in [(13, KC + 77, 40), (64, 2 * KC + 1, 32)] {
        let case = Case::new((m, k, n), Source::Transposed, 7);
        let b = case.packed();
        for accumulate in [false, true] {
            let host = case.run(Isa::host(), &b, accumulate);
            case.check(&format!("{m}×{k}×{n}, accumulate {accumulate}"), &host, accumulate);
            // One chain per element: the same as a product of one row, at
            // every instruction set.
            for isa in Isa::available() {
                assert_eq!(bits(&case.run(isa, &b, accumulate)), bits(&host), "{isa:?}");
            }
        }
    }
}

/// `C` rows `rows` of `case` computed alone (`A` and `C` starting at row
/// `rows.start`), at `isa`.
fn rows_alone(case: &Case, b: &PackedB, rows: std::ops::Range<usize>, isa: Isa) -> Vec<f32> {
    let mut c = case.c.clone();
    let a = MatRef { offset: case.a_offset + rows.start * case.lda, ..case.a() };
    let view = MatMut {
        data: &mut c,
        offset: case.c_offset + rows.start * case.ldc,
        row_stride: case.ldc as isize,
        col_stride: 1,
    };
    product(isa, rows.len(), a, b, view, false).unwrap();
    c
}

#[test]
fn rows_do_not_depend_on_the_block_or_call_they_fall_in() {
    let case = Case::new((64, 161, 512), Source::Transposed, 11);
    let b = case.packed();
    for isa in Isa::available() {
        let whole = case.run(isa, &b, false);
        // Halves (two threads' rows), and cuts that move every row to
        // another position within its microkernel's block.
        for cuts in [vec![0, 32, 64], vec![0, 5, 64], vec![0, 1, 2, 3, 13, 29, 64], (0..=64).collect()] {
            let mut pieces = case.c.clone();
            for pair in cuts.windows(2) {
                let part = rows_alone(&case, &b, pair[0]..pair[1], isa);
                let span = case.c_offset + pair[0] * case.ldc..case.c_offset + pair[1] * case.ldc;
                pieces[span.clone()].copy_from_slice(&part[span]);
            }
            assert_eq!(bits(&pieces), bits(&whole), "{isa:?}, rows cut at {cuts:?}");
        }
    }
}

#[test]
fn columns_do_not_depend_on_the_panel_they_fall_in() {
    // Columns 100..300 packed alone start mid-panel in the whole matrix.
    let case = Case::new((13, 128, 512), Source::ColumnRange, 13);
    let whole = case.run(Isa::host(), &case.packed(), false);
    let (first, count) = (100, 200);
    let part = PackedB::pack(case.k, count, case.b.view().at(first)).unwrap();
    let mut c = vec![0.0f32; case.m * count];
    matmul(case.m, case.a(), &part, MatMut::row_major(&mut c, count)).unwrap();
    for i in 0..case.m {
        let row = &whole[case.c_offset + i * case.ldc + first..][..count];
        assert_eq!(bits(&c[i * count..][..count]), bits(row), "row {i}");
    }
}

#[test]
fn accumulating_continues_the_chain_from_c() {
    // C += A·B over K = k1 + k2 as two products, the second accumulating,
    // equals the product over K in one call (the chain runs on in C).
    let (m, k1, k2, n) = (9, 40, 33, 70);
    let case = Case::new((m, k1 + k2, n), Source::ColumnRange, 17);
    let whole = case.run(Isa::host(), &case.packed(), false);
    let view = case.b.view();
    let top = PackedB::pack(k1, n, view).unwrap();
    let bottom = PackedB::pack(k2, n, view.at(k1 * view.row_stride as usize)).unwrap();
    let mut c = case.c.clone();
    let (offset, row_stride) = (case.c_offset, case.ldc as isize);
    matmul(m, case.a(), &top, MatMut { data: &mut c, offset, row_stride, col_stride: 1 }).unwrap();
    matmul_add(m, case.a().at(k1), &bottom, MatMut { data: &mut c, offset, row_stride, col_stride: 1 })
        .unwrap();
    assert_eq!(bits(&c), bits(&whole));
}

#[test]
fn negative_row_strides_read_and_write_rows_bottom_up() {
    let case = Case::new((13, 17, 40), Source::Transposed, 19);
    let b = case.packed();
    let want = case.run(Isa::host(), &b, true);
    // The same rows addressed from the last one upwards, through both A
    // and C: row i of the view is row m - 1 - i.
    let last = case.m - 1;
    let a = MatRef { offset: case.a_offset + last * case.lda, row_stride: -(case.lda as isize), ..case.a() };
    // Rows in the reverse order on both sides: the same products.
    let mut c = case.c.clone();
    let view = MatMut {
        data: &mut c,
        offset: case.c_offset + last * case.ldc,
        row_stride: -(case.ldc as isize),
        col_stride: 1,
    };
    matmul_add(case.m, a, &b, view).unwrap();
    assert_eq!(bits(&c), bits(&want));
}

#[test]
fn empty_extents() {
    let mut c = vec![f32::NAN; 12];
    // K = 0: C = 0, or C unchanged when accumulating.
    let empty = PackedB::pack(0, 4, MatRef::row_major(&[], 4)).unwrap();
    assert_eq!((empty.k(), empty.n()), (0, 4));
    matmul_add(3, MatRef::row_major(&[], 0), &empty, MatMut::row_major(&mut c, 4)).unwrap();
    assert!(c.iter().all(|v| v.is_nan()));
    matmul(3, MatRef::row_major(&[], 0), &empty, MatMut::row_major(&mut c, 4)).unwrap();
    assert!(c.iter().all(|&v| v == 0.0));
    // m = 0 and N = 0: nothing is addressed.
    let b = PackedB::pack(2, 4, MatRef::row_major(&[1.0; 8], 4)).unwrap();
    matmul(0, MatRef::row_major(&[], 2), &b, MatMut::row_major(&mut [], 4)).unwrap();
    let no_columns = PackedB::pack(2, 0, MatRef::row_major(&[], 0)).unwrap();
    matmul(3, MatRef::row_major(&[1.0; 6], 2), &no_columns, MatMut::row_major(&mut [], 0)).unwrap();
}

#[test]
fn overwriting_does_not_read_c() {
    let case = Case::new((10, 20, 45), Source::Strided, 23);
    let b = case.packed();
    let mut c = vec![f32::NAN; case.c.len()];
    let view = MatMut { data: &mut c, offset: case.c_offset, row_stride: case.ldc as isize, col_stride: 1 };
    matmul(case.m, case.a(), &b, view).unwrap();
    let mut clean = case.c.clone();
    let view =
        MatMut { data: &mut clean, offset: case.c_offset, row_stride: case.ldc as isize, col_stride: 1 };
    matmul(case.m, case.a(), &b, view).unwrap();
    for i in 0..case.m {
        let row = case.c_offset + i * case.ldc..case.c_offset + i * case.ldc + case.n;
        assert_eq!(bits(&c[row.clone()]), bits(&clean[row]), "row {i}");
    }
}

#[test]
fn repacking_reuses_the_allocation_and_copies_stay_aligned() {
    let case = Case::new((5, 161, 512), Source::Transposed, 29);
    let mut b = case.packed();
    let before = b.data.as_ptr();
    let small = Case::new((5, 30, 50), Source::ColumnRange, 31);
    b.pack_into(small.k, small.n, small.b.view()).unwrap();
    assert_eq!(b.data.as_ptr(), before);
    assert_eq!((b.k(), b.n()), (30, 50));
    assert_eq!(b.panels().as_ptr() as usize % 64, 0);
    let got = small.run(Isa::host(), &b, false);
    small.check("repacked", &got, false);
    assert_eq!(bits(&got), bits(&small.run(Isa::host(), &small.packed(), false)));
    let copy = b.clone();
    assert_eq!(copy.panels().as_ptr() as usize % 64, 0);
    assert_eq!(bits(&small.run(Isa::host(), &copy, false)), bits(&got));
}

#[test]
fn out_of_bounds_operands_are_errors_and_write_nothing() {
    let (m, k, n) = (6, 10, 40);
    let case = Case::new((m, k, n), Source::ColumnRange, 37);
    let b = case.packed();
    let a = case.a();
    // Up to the last element of A, excluded.
    let short_a = MatRef { data: &case.a[..case.a_offset + (m - 1) * case.lda + k - 1], ..a };
    let (offset, ldc) = (case.c_offset, case.ldc as isize);
    // (what, rows, A, C's offset, row stride and column stride)
    let cases = [
        ("A past its end", m, short_a, (offset, ldc, 1)),
        ("A before its start", m, MatRef { row_stride: -(case.lda as isize), ..a }, (offset, ldc, 1)),
        ("A with column stride 2", m, MatRef { col_stride: 2, ..a }, (offset, ldc, 1)),
        ("too many rows", m + 1, a, (offset, ldc, 1)),
        ("C past its end", m, a, (offset + case.ldc, ldc, 1)),
        ("C rows overlapping", m, a, (offset, n as isize - 1, 1)),
        ("C with column stride 2", m, a, (offset, ldc, 2)),
        ("C before its start", m, a, (offset, -ldc, 1)),
    ];
    for (what, rows, a, (offset, row_stride, col_stride)) in cases {
        for accumulate in [false, true] {
            let mut out = case.c.clone();
            let c = MatMut { data: &mut out, offset, row_stride, col_stride };
            let result = product(Isa::host(), rows, a, &b, c, accumulate);
            assert!(result.is_err(), "{what}: accepted");
            assert_eq!(bits(&out), bits(&case.c), "{what}: C was written");
        }
    }
    // Packing an out-of-bounds view fails and keeps the packed matrix.
    let mut packed = case.packed();
    let view = case.b.view();
    assert!(packed.pack_into(k + 1, n, view).is_err());
    assert!(packed.pack_into(k, n + 3, view).is_err());
    assert!(PackedB::pack(k, n, MatRef { offset: 2, row_stride: -1, ..view }).is_err());
    assert_eq!((packed.k(), packed.n()), (k, n));
    assert_eq!(bits(&case.run(Isa::host(), &packed, false)), bits(&case.run(Isa::host(), &b, false)));
}

/// One product `C (+)= Aᵀ·B` with `A` (`k × m`) and `B` (`k × n`) plain
/// row-major matrices with padded rows, `B`'s rows readable to whole
/// panels.
struct Transposed {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    lda: usize,
    b: Vec<f32>,
    ldb: usize,
    c: Vec<f32>,
    ldc: usize,
}

impl Transposed {
    const A_OFFSET: usize = 3;
    const B_OFFSET: usize = 1;
    const C_OFFSET: usize = 2;

    fn new((m, k, n): (usize, usize, usize), seed: u64) -> Transposed {
        let mut rng = Rng::new(seed);
        let (lda, ldb, ldc) = (m + 5, n.next_multiple_of(NR) + 3, n + 1);
        let a = rng.values(Self::A_OFFSET + k * lda);
        let b = rng.values(Self::B_OFFSET + k * ldb);
        let c = rng.values(Self::C_OFFSET + m * ldc + 2);
        Transposed { m, k, n, a, lda, b, ldb, c, ldc }
    }

    /// Rows `rows` of `A` (a `rows.len() × m` matrix).
    fn a(&self, rows: std::ops::Range<usize>) -> MatRef<'_> {
        let offset = Self::A_OFFSET + rows.start * self.lda;
        MatRef { data: &self.a, offset, row_stride: self.lda as isize, col_stride: 1 }
    }

    /// Rows `rows` of `B`.
    fn b(&self, rows: std::ops::Range<usize>) -> MatRef<'_> {
        let offset = Self::B_OFFSET + rows.start * self.ldb;
        MatRef { data: &self.b, offset, row_stride: self.ldb as isize, col_stride: 1 }
    }

    /// `C` after the products over the row ranges `chunks` of `A` and `B`
    /// in order, the first overwriting `C` unless `accumulate`.
    fn run(&self, isa: Isa, chunks: &[std::ops::Range<usize>], accumulate: bool) -> Vec<f32> {
        let mut c = self.c.clone();
        for (i, rows) in chunks.iter().enumerate() {
            let view =
                MatMut { data: &mut c, offset: Self::C_OFFSET, row_stride: self.ldc as isize, col_stride: 1 };
            let (a, b) = (self.a(rows.clone()), self.b(rows.clone()));
            product_tn(
                isa,
                self.m,
                self.n,
                rows.len(),
                a,
                b,
                view,
                accumulate || i > 0,
                &mut Prefetch::none(),
            )
            .unwrap();
        }
        c
    }

    /// `C` after one product over all `k` rows.
    fn run_whole(&self, isa: Isa, accumulate: bool) -> Vec<f32> {
        self.run(isa, std::slice::from_ref(&(0..self.k)), accumulate)
    }

    /// The same product as a [`Case`]: `Aᵀ` copied into a row-major matrix
    /// and `B` packed.
    fn as_case(&self) -> Case {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut at = vec![0.0; m * k];
        for p in 0..k {
            for i in 0..m {
                at[i * k + p] = self.a[Self::A_OFFSET + p * self.lda + i];
            }
        }
        let b = Right {
            data: self.b.clone(),
            offset: Self::B_OFFSET,
            row_stride: self.ldb as isize,
            col_stride: 1,
        };
        let c = self.c.clone();
        Case { m, k, n, a: at, a_offset: 0, lda: k, b, c, c_offset: Self::C_OFFSET, ldc: self.ldc }
    }
}

#[test]
fn transposed_products_equal_the_f64_reference_and_the_packed_product() {
    let mut seed = 100;
    for m in [1, 7, 8, 9, 161] {
        for k in [1, 5, 32, 64, 600] {
            for n in [1, 16, 40, 512] {
                seed += 1;
                let t = Transposed::new((m, k, n), seed);
                let case = t.as_case();
                let packed = case.packed();
                for accumulate in [false, true] {
                    let what = format!("{m}×{k}×{n}, accumulate {accumulate}");
                    let host = t.run_whole(Isa::host(), accumulate);
                    case.check(&what, &host, accumulate);
                    assert_eq!(bits(&host), bits(&case.run(Isa::host(), &packed, accumulate)), "{what}");
                    for isa in Isa::available() {
                        let got = t.run_whole(isa, accumulate);
                        assert_eq!(bits(&got), bits(&host), "{what}: {isa:?} differs from {:?}", Isa::host());
                    }
                }
            }
        }
    }
}

#[test]
fn transposed_products_over_consecutive_rows_continue_one_chain() {
    // The sum over rows in pieces, each adding onto `C`, is the sum in one
    // call: the pieces of a gradient accumulated step after step.
    let t = Transposed::new((21, 64, 70), 5);
    let whole = t.run_whole(Isa::host(), false);
    for chunks in [vec![0..1, 1..64], vec![0..32, 32..64], vec![0..10, 10..10, 10..40, 40..64]] {
        for isa in Isa::available() {
            assert_eq!(bits(&t.run(isa, &chunks, false)), bits(&whole), "{chunks:?} at {isa:?}");
        }
    }
}

#[test]
fn transposed_operands_out_of_bounds_are_errors_and_write_nothing() {
    let (m, k, n) = (9, 6, 40);
    let t = Transposed::new((m, k, n), 41);
    let (a, b) = (t.a(0..k), t.b(0..k));
    // `B` ends one element before the last row's whole panels.
    let last = Transposed::B_OFFSET + (k - 1) * t.ldb + n.next_multiple_of(NR);
    let short_b = MatRef { data: &t.b[..last - 1], ..b };
    let short_a = MatRef { data: &t.a[..Transposed::A_OFFSET + (k - 1) * t.lda + m - 1], ..a };
    let cases = [
        ("A past its end", short_a, b, t.ldc as isize),
        ("A with column stride 2", MatRef { col_stride: 2, ..a }, b, t.ldc as isize),
        ("B short of its last panel", a, short_b, t.ldc as isize),
        (
            "B rows shorter than whole panels",
            a,
            MatRef { row_stride: (NR + 1) as isize, ..b },
            t.ldc as isize,
        ),
        ("B with column stride 2", a, MatRef { col_stride: 2, ..b }, t.ldc as isize),
        ("C rows overlapping", a, b, n as isize - 1),
    ];
    for (what, a, b, ldc) in cases {
        let mut out = t.c.clone();
        let c = MatMut { data: &mut out, offset: Transposed::C_OFFSET, row_stride: ldc, col_stride: 1 };
        assert!(
            product_tn(Isa::host(), m, n, k, a, b, c, true, &mut Prefetch::none()).is_err(),
            "{what}: accepted"
        );
        assert_eq!(bits(&out), bits(&t.c), "{what}: C was written");
    }
    // Nothing to sum: `C = 0`, or unchanged when accumulating.
    let mut out = t.c.clone();
    let c =
        MatMut { data: &mut out, offset: Transposed::C_OFFSET, row_stride: t.ldc as isize, col_stride: 1 };
    product_tn(Isa::host(), m, n, 0, a, b, c, true, &mut Prefetch::none()).unwrap();
    assert_eq!(bits(&out), bits(&t.c));
    let c =
        MatMut { data: &mut out, offset: Transposed::C_OFFSET, row_stride: t.ldc as isize, col_stride: 1 };
    product_tn(Isa::host(), m, n, 0, a, b, c, false, &mut Prefetch::none()).unwrap();
    for i in 0..m {
        let row = Transposed::C_OFFSET + i * t.ldc;
        assert!(out[row..row + n].iter().all(|&v| v == 0.0), "row {i}");
    }
}

#[test]
fn prefetching_requests_every_line_and_changes_no_bit() {
    for (m, k, n) in [(161, 64, 512), (9, 5, 40), (1, 1, 1)] {
        let t = Transposed::new((m, k, n), 53);
        let plain = t.run_whole(Isa::host(), true);
        // Some rows of another buffer, and addresses outside any (a hint
        // may name any address).
        let other = vec![0.0f32; 3000];
        for (start, rows, stride, len) in
            [(other.as_ptr(), 7, 300, 250), (std::ptr::null(), 3, 1 << 40, 17), (other.as_ptr(), 0, 1, 5)]
        {
            for isa in Isa::available() {
                let mut prefetch = Prefetch::rows(start, rows, stride, len);
                let want = rows * if len == 0 { 0 } else { len.div_ceil(LINE) + 1 };
                assert_eq!(prefetch.left(), want);
                let mut c = t.c.clone();
                let view = MatMut {
                    data: &mut c,
                    offset: Transposed::C_OFFSET,
                    row_stride: t.ldc as isize,
                    col_stride: 1,
                };
                product_tn(isa, m, n, k, t.a(0..k), t.b(0..k), view, true, &mut prefetch).unwrap();
                assert_eq!(prefetch.left(), 0, "{m}×{k}×{n} at {isa:?}: lines left");
                assert_eq!(bits(&c), bits(&plain), "{m}×{k}×{n} at {isa:?}");
            }
        }
    }
}
