//! Matrix products against a right-hand operand packed once and reused:
//! `C = A·B` and `C += A·B`, single-threaded, for a left operand of a few
//! tens of rows and a right operand that stays the same over many
//! products — the per-step products of the LSTM recurrence
//! ([`recurrent`](super::recurrent)), whose every step multiplies the
//! step's rows by the same weight matrix.
//!
//! A general GEMM ([`GemmProvider`](super::gemm::GemmProvider)) copies its
//! operands into its own panel layouts at every call; at the recurrence's
//! shapes (`[64, 161]·[161, 512]`, `[64, 512]·[512, 128]`, or 32 rows per
//! thread) copying the weight at every step is a sizeable part of each
//! product's time. Here the weight is packed once into a [`PackedB`] (from
//! any strided view: a transposed weight or a block of columns is read
//! where it lies), and [`matmul`] / [`matmul_add`] read it as it is, every
//! step, one call per thread on the thread's own rows.
//!
//! [`matmul_tn`] is the backward's other per-step product, `C (+)= Aᵀ·B`
//! over a step's rows: the weight gradient `Σ zᵀ·dpre` accumulated step by
//! step into the same `C` while the step's `z` rows (`A`) and `dpre` (`B`)
//! are in cache. Both operands change at every step and are read once
//! each, so neither is packed: the same microkernels broadcast `A` down its
//! columns and load `B`'s rows where they lie, each row readable to a whole
//! number of panels.
//! While it computes, it can bring memory the caller reads next into L2
//! ([`Prefetch`]: a share of the lines after each tile), since the
//! microkernels themselves leave the memory bus idle.
//!
//! # Layout
//!
//! A [`PackedB`] holds a `K × N` matrix in panels of [`NR`] columns, the
//! last one padded with zero columns: element `(k, j)` of panel `p` (column
//! `p·NR + j` of the matrix) is at `(p·K + k)·NR + j`, so that a panel is
//! `K` rows of `NR` contiguous floats. The panels start on a 64-byte
//! boundary, so every row of a panel is two whole cache lines.
//!
//! # Products
//!
//! For each panel (`K·NR` floats: 20 KB at `K = 161`, read from L1 by
//! every row block), the rows of `A` are taken in blocks of `MR`: a
//! microkernel keeps the `MR × NR` block of `C` in vector registers and,
//! for each `k`, loads the panel's row `k` and broadcasts `A[i, k]` of each
//! of its rows into one fused multiply-add per vector. `A`'s rows are read
//! where they lie (unit column stride, any row stride), and `C` is written
//! once per block. The rows past the last whole block are computed by
//! blocks of 8, 4, 2 and 1 rows, and a last panel narrower than `NR`
//! columns of `C` through a scratch tile. Panels longer than `KC = 512`
//! rows are taken in blocks of `KC` rows, each block's product added to
//! the last through `C` (an f32 round trip of the accumulators, which
//! changes no bit). [`matmul_tn`]'s microkernels read a tile of `A` as one
//! line per row of depth, `lda` apart: with one block of depth (`k ≤ KC`,
//! as a step's rows) its whole row blocks go outermost, each over all the
//! panels while its lines stay in L1, and `B`'s rows come from L2 (at the
//! recurrence's shapes, the weight gradient's product is 3–4% faster than
//! panel by panel).
//!
//! Microkernels, chosen at run time for the CPU (detected once):
//!
//! - AVX-512F: 8 rows × 32 columns (16 accumulators of 16 lanes, twice as
//!   many as the latency of two FMA pipes needs), a whole panel: no partial
//!   block at the recurrence's shapes (32 or 64 rows, 128 or 512 columns),
//!   where it runs at the FMA peak of a core with full-width AVX-512 (taller
//!   or wider tiles, 12 × 32, 14 × 32, 6 × 64 or 8 × 48, are no faster);
//! - AVX2 with FMA: 6 rows × 16 columns (12 accumulators of 8 lanes), half
//!   a panel at a time;
//! - portable: 4 rows × 8 columns of scalars, with [`f32::mul_add`] (a
//!   library call where the CPU has no fused multiply-add: correct, slow).
//!
//! # Determinism
//!
//! Every element of `C` is one chain of fused multiply-adds over `k` in
//! ascending order, `c ← fma(A[i, k], B[k, j], c)`, starting from 0
//! ([`matmul`]) or from the element's value in `C` ([`matmul_add`]). The
//! chain does not depend on `m`, on the block a row falls in, on the panel
//! a column falls in, nor on the instruction set, so every path gives the
//! same bits, and rows computed by different threads (each calling the
//! product on its own rows) or columns packed separately are bit-identical
//! to the same rows and columns of one whole product.

use super::gemm::{MatMut, MatRef};
use super::isa::{prefetch_line, Cache, Isa};
use super::simd::Vector;

/// Columns of a panel of a [`PackedB`].
pub const NR: usize = 32;

/// Rows of a panel multiplied at once: longer panels are taken in blocks
/// of this many rows. A block of `KC × NR` floats (64 KB) outgrows L1 and
/// is read from L2 by each row block, which at `K = KC` keeps the same
/// speed as blocks that fit in L1.
const KC: usize = 512;

/// Alignment of the panels, in floats (64 bytes).
const ALIGN: usize = 16;

/// The most rows a microkernel computes at once.
const MAX_MR: usize = 16;

/// A `K × N` matrix in panels of [`NR`] columns (see the module's layout),
/// the right operand of [`matmul`] and [`matmul_add`].
#[derive(Debug, Default)]
pub struct PackedB {
    k: usize,
    n: usize,
    /// The storage; the panels start at `data[start]`, 64-byte aligned.
    data: Vec<f32>,
    start: usize,
}

impl Clone for PackedB {
    /// A copy with its panels aligned in its own storage.
    fn clone(&self) -> PackedB {
        let mut copy = PackedB::new();
        let panels = copy.reshape(self.k, self.n).expect("the size of an existing matrix");
        panels.copy_from_slice(self.panels());
        copy
    }
}

impl PackedB {
    /// An empty (`0 × 0`) matrix, to be filled by [`PackedB::pack_into`].
    pub fn new() -> PackedB {
        PackedB::default()
    }

    /// The `k × n` matrix `b` (any strides), packed.
    pub fn pack(k: usize, n: usize, b: MatRef) -> Result<PackedB, String> {
        let mut packed = PackedB::new();
        packed.pack_into(k, n, b)?;
        Ok(packed)
    }

    /// Rows, `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns, `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The panels, `⌈N / NR⌉ · K · NR` floats.
    fn panels(&self) -> &[f32] {
        &self.data[self.start..][..self.n.div_ceil(NR) * self.k * NR]
    }

    /// Makes this a `k × n` matrix, growing the storage if needed, and
    /// returns its panels (their contents unspecified).
    fn reshape(&mut self, k: usize, n: usize) -> Result<&mut [f32], String> {
        let len = n
            .div_ceil(NR)
            .checked_mul(k)
            .and_then(|len| len.checked_mul(NR))
            .filter(|len| len.checked_add(ALIGN).is_some())
            .ok_or_else(|| format!("packing a {k}×{n} matrix: its size overflows"))?;
        if self.data.len() < len + ALIGN {
            self.data.resize(len + ALIGN, 0.0);
        }
        // The first element of `data` on a 64-byte boundary (f32 storage
        // is 4-byte aligned, so one lies within the first 16).
        let misalignment = (self.data.as_ptr() as usize / size_of::<f32>()) % ALIGN;
        self.start = (ALIGN - misalignment) % ALIGN;
        self.k = k;
        self.n = n;
        Ok(&mut self.data[self.start..][..len])
    }

    /// Packs the `k × n` matrix `b` (any strides) in place of this one's
    /// contents, reusing the allocation when it is large enough. A `b`
    /// that addresses elements outside its slice is an `Err`, and `self`
    /// is left as it was.
    pub fn pack_into(&mut self, k: usize, n: usize, b: MatRef) -> Result<(), String> {
        check_in_bounds("B", k, n, b.data.len(), b.offset, b.row_stride, b.col_stride)?;
        let out = self.reshape(k, n)?;
        // Element `(i, j)` of `b`: within the slice for `i < k`, `j < n`
        // (checked above), so the index neither wraps nor overflows.
        let index = |i: usize, j: usize| {
            (b.offset as isize + i as isize * b.row_stride + j as isize * b.col_stride) as usize
        };
        if out.is_empty() {
            return Ok(());
        }
        for (p, panel) in out.chunks_exact_mut(k * NR).enumerate() {
            let first = p * NR;
            let cols = NR.min(n - first);
            if b.col_stride == 1 {
                for (i, row) in panel.chunks_exact_mut(NR).enumerate() {
                    let at = index(i, first);
                    row[..cols].copy_from_slice(&b.data[at..at + cols]);
                    row[cols..].fill(0.0);
                }
            } else if b.row_stride == 1 {
                // A transposed row-major matrix: its columns are contiguous.
                for j in 0..cols {
                    let at = index(0, first + j);
                    for (i, &v) in b.data[at..at + k].iter().enumerate() {
                        panel[i * NR + j] = v;
                    }
                }
            } else {
                for j in 0..cols {
                    for i in 0..k {
                        panel[i * NR + j] = b.data[index(i, first + j)];
                    }
                }
            }
            if b.col_stride != 1 && cols < NR {
                for row in panel.chunks_exact_mut(NR) {
                    row[cols..].fill(0.0);
                }
            }
        }
        Ok(())
    }
}

/// Memory the caller reads after a product, brought into L2 while the
/// product computes ([`matmul_tn`]): `rows` rows of `len` floats,
/// `stride` floats apart, from `start`. After each microkernel tile the
/// product requests its share of the lines still to come (the lines left
/// over the tiles left), so that they arrive spread over the product —
/// which reads from L1 and registers, leaving the memory bus idle — rather
/// than all at once or when the caller waits for them. Only addresses:
/// nothing is read or written, and any address is allowed.
#[derive(Clone, Copy, Debug)]
pub struct Prefetch {
    start: *const f32,
    stride: usize,
    /// Lines per row: one more than `len` covers, for a start inside a
    /// line.
    lines: usize,
    /// The row and line to request next.
    at: (usize, usize),
    left: usize,
}

/// Floats per cache line.
const LINE: usize = 16;

impl Prefetch {
    /// Nothing to request.
    pub fn none() -> Prefetch {
        Prefetch { start: std::ptr::null(), stride: 0, lines: 0, at: (0, 0), left: 0 }
    }

    /// The `rows` rows of `len` floats from `start`, `stride` floats apart.
    pub fn rows(start: *const f32, rows: usize, stride: usize, len: usize) -> Prefetch {
        let lines = if len == 0 { 0 } else { len.div_ceil(LINE) + 1 };
        Prefetch { start, stride, lines, at: (0, 0), left: rows * lines }
    }

    /// The lines not yet requested.
    pub fn left(&self) -> usize {
        self.left
    }

    /// Requests the share of the lines left for one of `tiles` tiles left.
    #[inline(always)]
    fn share(&mut self, tiles: usize) {
        for _ in 0..self.left.div_ceil(tiles.max(1)) {
            let (row, line) = self.at;
            prefetch_line(self.start.wrapping_add(row * self.stride + line * LINE), Cache::L2);
            self.at = if line + 1 < self.lines { (row, line + 1) } else { (row + 1, 0) };
            self.left -= 1;
        }
    }
}

/// `C = A·B`: `A` is `m × K` with unit column stride (any row stride), `B`
/// is `K × N` packed, `C` is `m × N` with unit column stride and rows that
/// do not overlap. `C` is not read. Operands that address elements outside
/// their slices, other column strides and overlapping rows of `C` are an
/// `Err`, and nothing is written.
pub fn matmul(m: usize, a: MatRef, b: &PackedB, c: MatMut) -> Result<(), String> {
    product(Isa::host(), m, a, b, c, false)
}

/// `C += A·B`, with the operands of [`matmul`]: each element's chain of
/// fused multiply-adds starts from its value in `C`.
pub fn matmul_add(m: usize, a: MatRef, b: &PackedB, c: MatMut) -> Result<(), String> {
    product(Isa::host(), m, a, b, c, true)
}

/// Checks that the `rows × cols` strided matrix at `offset` addresses only
/// elements `0..len`.
fn check_in_bounds(
    what: &str,
    rows: usize,
    cols: usize,
    len: usize,
    offset: usize,
    row_stride: isize,
    col_stride: isize,
) -> Result<(), String> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let (mut lo, mut hi) = (offset as i128, offset as i128);
    for (count, stride) in [(rows, row_stride), (cols, col_stride)] {
        let reach = (count as i128 - 1) * stride as i128;
        if reach < 0 {
            lo += reach;
        } else {
            hi += reach;
        }
    }
    if lo < 0 || hi >= len as i128 {
        return Err(format!(
            "{what} ({rows}×{cols}, offset {offset}, strides ({row_stride}, {col_stride})) addresses \
             elements {lo}..={hi} of a slice of length {len}"
        ));
    }
    Ok(())
}

/// Checks `C` (`m × n`, unit column stride, rows that do not overlap, in
/// its slice) once the other operands are checked, and completes the
/// products that need no microkernel: `Ok(true)` when nothing is left to
/// do (`C` empty, or a sum over `k = 0` terms: `C` zeroed unless
/// accumulating).
fn finished_without_microkernel(
    m: usize,
    n: usize,
    k: usize,
    c: &mut MatMut,
    accumulate: bool,
) -> Result<bool, String> {
    if c.col_stride != 1 && m > 0 && n > 1 {
        return Err(format!("C ({m}×{n}) has column stride {}, not 1", c.col_stride));
    }
    check_in_bounds("C", m, n, c.data.len(), c.offset, c.row_stride, 1)?;
    if m > 1 && n > 0 && c.row_stride.unsigned_abs() < n {
        return Err(format!("C ({m}×{n}) with row stride {} has overlapping rows", c.row_stride));
    }
    if m == 0 || n == 0 {
        return Ok(true);
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                let at = (c.offset as isize + i as isize * c.row_stride) as usize;
                c.data[at..at + n].fill(0.0);
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// A checked product, as raw pointers: `C[m×n] (+)= A[m×k]·B[k×n]` with
/// `m, n, k > 0`; `a` at `A[0, 0]`, its rows `lda` apart (column stride 1)
/// or, for a transposed `A`, its columns `lda` apart (row stride 1); `b` at
/// `B[0, 0]`, its rows `ldb` apart and its groups of [`NR`] columns
/// `panel` apart (packed panels: `ldb = NR`, `panel = K·NR`; a plain
/// row-major matrix: `panel = NR`), every row readable to a whole number of
/// panels; `c` at `C[0, 0]` with rows `ldc` apart.
#[derive(Clone, Copy)]
struct Operands {
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    ldb: usize,
    panel: usize,
    c: *mut f32,
    ldc: isize,
    accumulate: bool,
}

impl Operands {
    /// The block of columns `group..group + width` (fewer at the last) of
    /// panel `first / NR`, rows `k0..k0 + KC` (fewer at the last).
    #[inline(always)]
    fn block(&self, first: usize, group: usize, k0: usize, width: usize) -> Block {
        Block {
            // `group - first < NR` columns and `k0 < k` rows into panel
            // `first / NR`, which lies within `B`.
            b: self.b.wrapping_add(first / NR * self.panel + k0 * self.ldb + group - first),
            col: group,
            cols: width.min(self.n - group),
            k0,
            kc: KC.min(self.k - k0),
            accumulate: self.accumulate || k0 > 0,
        }
    }

    /// `A[i, p]`.
    ///
    /// # Safety
    /// `i < m`, `p < k`, and `a` as the struct describes it (`TA`: `A` is
    /// transposed).
    #[inline(always)]
    unsafe fn a_at<const TA: bool>(&self, i: usize, p: usize) -> *const f32 {
        // SAFETY: the contract: the element lies in `A`.
        unsafe {
            if TA {
                self.a.offset(p as isize * self.lda).add(i)
            } else {
                self.a.offset(i as isize * self.lda).add(p)
            }
        }
    }
}

fn product(
    isa: Isa,
    m: usize,
    a: MatRef,
    b: &PackedB,
    mut c: MatMut,
    accumulate: bool,
) -> Result<(), String> {
    let (k, n) = (b.k, b.n);
    if a.col_stride != 1 && m > 0 && k > 1 {
        return Err(format!("A ({m}×{k}) has column stride {}, not 1", a.col_stride));
    }
    check_in_bounds("A", m, k, a.data.len(), a.offset, a.row_stride, 1)?;
    if finished_without_microkernel(m, n, k, &mut c, accumulate)? {
        return Ok(());
    }
    let operands = Operands {
        m,
        n,
        k,
        // SAFETY (of both `add`s): element (0, 0) of `A` and of `C` lies in
        // its slice (checked above, with m, n, k > 0).
        a: unsafe { a.data.as_ptr().add(a.offset) },
        lda: a.row_stride,
        b: b.panels().as_ptr(),
        ldb: NR,
        panel: k * NR,
        c: unsafe { c.data.as_mut_ptr().add(c.offset) },
        ldc: c.row_stride,
        accumulate,
    };
    // SAFETY: every element `A[i, p]`, `C[i, j]` (`i < m`, `p < k`,
    // `j < n`) lies in its slice (checked above), and `b` points at the
    // `⌈n / NR⌉·k·NR` floats of `B`'s panels; `C` is borrowed mutably and
    // its rows do not overlap, `A` and `B` are shared borrows (so none of
    // them overlaps `C`).
    unsafe { dispatch::<false>(isa, &operands, &mut Prefetch::none()) };
    Ok(())
}

/// `C = Aᵀ·B` (`accumulate`: `C += Aᵀ·B`): `A` is `k × m` and `B` `k × n`,
/// both with unit column stride (any row stride) and neither packed, `C`
/// is `m × n` as in [`matmul`] — the sum over `k` rows of outer products
/// `A[p, :]ᵀ·B[p, :]`, such as a weight's gradient accumulated over the
/// rows of a batch. Every row of `B` must be readable to a whole number of
/// [`NR`]-column panels (`n.next_multiple_of(NR)` columns; what the columns
/// past `n` hold does not matter): the microkernels read `B` where it lies,
/// whole panels at a time. Each element of `C` is one chain of fused
/// multiply-adds over `p` in ascending order, from 0 or from `C`, as in
/// [`matmul`], so the same bits at every instruction set. Operands out of
/// bounds, other column strides and overlapping rows of `C` are an `Err`,
/// and nothing is written. `prefetch`'s lines are requested while it
/// computes.
#[allow(clippy::too_many_arguments)]
pub fn matmul_tn(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: MatMut,
    accumulate: bool,
    prefetch: &mut Prefetch,
) -> Result<(), String> {
    product_tn(Isa::host(), m, n, k, a, b, c, accumulate, prefetch)
}

#[allow(clippy::too_many_arguments)]
fn product_tn(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    mut c: MatMut,
    accumulate: bool,
    prefetch: &mut Prefetch,
) -> Result<(), String> {
    for (what, rows, cols, stride) in [("A", k, m, a.col_stride), ("B", k, n, b.col_stride)] {
        if stride != 1 && rows > 0 && cols > 1 {
            return Err(format!("{what} ({rows}×{cols}) has column stride {stride}, not 1"));
        }
    }
    if k > 1 && n > 0 && b.row_stride < n.next_multiple_of(NR) as isize {
        return Err(format!(
            "B ({k}×{n}) has row stride {}, less than its {} columns of whole panels",
            b.row_stride,
            n.next_multiple_of(NR)
        ));
    }
    check_in_bounds("A", k, m, a.data.len(), a.offset, a.row_stride, 1)?;
    check_in_bounds("B", k, n.next_multiple_of(NR), b.data.len(), b.offset, b.row_stride, 1)?;
    if finished_without_microkernel(m, n, k, &mut c, accumulate)? {
        return Ok(());
    }
    let operands = Operands {
        m,
        n,
        k,
        // SAFETY (of the three `add`s): element (0, 0) of `A`, `B` and `C`
        // lies in its slice (checked above, with m, n, k > 0).
        a: unsafe { a.data.as_ptr().add(a.offset) },
        lda: a.row_stride,
        b: unsafe { b.data.as_ptr().add(b.offset) },
        ldb: b.row_stride as usize,
        panel: NR,
        c: unsafe { c.data.as_mut_ptr().add(c.offset) },
        ldc: c.row_stride,
        accumulate,
    };
    // SAFETY: every element `A[p, i]`, `C[i, j]` (`i < m`, `p < k`,
    // `j < n`) and `B[p, j]` for `j < ⌈n / NR⌉·NR` lies in its slice
    // (checked above; `B`'s rows are at least that long, so `ldb` is
    // positive when `k > 1`); `C` is borrowed mutably and its rows do not
    // overlap, `A` and `B` are shared borrows (so neither overlaps `C`).
    unsafe { dispatch::<true>(isa, &operands, prefetch) };
    Ok(())
}

/// The product `o` with `isa`'s microkernels (`TA`: `A` transposed).
///
/// # Safety
/// `o` describes operands as [`Operands`] says, every addressed element
/// inside its allocation, and nothing else accesses `C`'s elements during
/// the call. An `Isa` names only an instruction set this CPU has
/// (`Isa::host`, `Isa::available`), so the microkernels' instructions
/// exist.
unsafe fn dispatch<const TA: bool>(isa: Isa, o: &Operands, prefetch: &mut Prefetch) {
    // SAFETY: the contract.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::product_avx512::<TA>(o, prefetch),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::product_avx2::<TA>(o, prefetch),
            Isa::Portable => product_with::<f32, 4, 8, TA>(o, prefetch),
        }
    }
}

/// The whole product, panel after panel, in microkernels of `MR` rows and
/// `NV` vectors, requesting `prefetch`'s lines a share after each tile.
///
/// # Safety
/// The CPU has `V`'s instruction set; `o` describes operands as
/// [`Operands`] says, every addressed element inside its allocation, and
/// nothing else accesses `C`'s elements during the call. `NV·LANES`
/// divides [`NR`]; `MR ≤ MAX_MR`.
#[inline(always)]
unsafe fn product_with<V: Vector, const MR: usize, const NV: usize, const TA: bool>(
    o: &Operands,
    prefetch: &mut Prefetch,
) {
    let width = NV * V::LANES;
    let mut tiles = o.n.div_ceil(width) * o.k.div_ceil(KC) * o.m.div_ceil(MR);
    // A transposed `A`'s tile is one line per row of depth (`kc` lines
    // `lda` apart), which L1 keeps only while the tile stays: with one
    // block of depth, its whole tiles go row block by row block, each over
    // all the columns (`B`'s rows are read `MR` times as often, from L2, as
    // lines in a row).
    let first_row = if TA && o.k <= KC { o.m / MR * MR } else { 0 };
    for i in (0..first_row).step_by(MR) {
        for first in (0..o.n).step_by(NR) {
            for group in (first..o.n.min(first + NR)).step_by(width) {
                let block = o.block(first, group, 0, width);
                // SAFETY: rows `i..i + MR ≤ m` of A and C, `block` within B
                // and C (the contract).
                unsafe { rows::<V, MR, NV, TA>(o, &block, i) };
                prefetch.share(tiles);
                tiles = tiles.saturating_sub(1);
            }
        }
    }
    for (first, group, k0) in (0..o.n).step_by(NR).flat_map(|first| {
        (first..o.n.min(first + NR))
            .step_by(width)
            .flat_map(move |group| (0..o.k).step_by(KC).map(move |k0| (first, group, k0)))
    }) {
        let block = o.block(first, group, k0, width);
        let mut i = first_row;
        // SAFETY: rows `i..i + R ≤ m` of A and C, `block` within B
        // and C (the contract).
        unsafe {
            while i + MR <= o.m {
                rows::<V, MR, NV, TA>(o, &block, i);
                prefetch.share(tiles);
                tiles = tiles.saturating_sub(1);
                i += MR;
            }
            if MR > 8 && o.m - i >= 8 {
                rows::<V, 8, NV, TA>(o, &block, i);
                i += 8;
            }
            if MR > 4 && o.m - i >= 4 {
                rows::<V, 4, NV, TA>(o, &block, i);
                i += 4;
            }
            if MR > 2 && o.m - i >= 2 {
                rows::<V, 2, NV, TA>(o, &block, i);
                i += 2;
            }
            if i < o.m {
                rows::<V, 1, NV, TA>(o, &block, i);
            }
            if !o.m.is_multiple_of(MR) {
                prefetch.share(tiles);
                tiles = tiles.saturating_sub(1);
            }
        }
    }
}

/// Columns `col..col + cols` of `C` and rows `k0..k0 + kc` of the panel
/// that holds them (`b` at row `k0`, column `col`), for a microkernel.
struct Block {
    b: *const f32,
    col: usize,
    cols: usize,
    k0: usize,
    kc: usize,
    accumulate: bool,
}

/// Rows `i..i + R` of `C` at the columns of `block`: a microkernel writing
/// straight into `C`, or into a scratch tile copied into the block's
/// columns when they are fewer than the tile's.
///
/// # Safety
/// As [`product_with`]; `i + R ≤ m`, `block` one of `product_with`'s.
#[inline(always)]
unsafe fn rows<V: Vector, const R: usize, const NV: usize, const TA: bool>(
    o: &Operands,
    block: &Block,
    i: usize,
) {
    // SAFETY: row `i < m` of A at column `k0 < k`, of C at column `col < n`.
    let (a, c) = unsafe { (o.a_at::<TA>(i, block.k0), o.c.offset(i as isize * o.ldc).add(block.col)) };
    if block.cols == NV * V::LANES {
        // SAFETY: the tile's `R` rows and `NV·LANES` columns lie in C, its
        // rows of A hold `kc` elements from `k0`, and the panel `kc` rows.
        unsafe { tile::<V, R, NV, TA>(block.kc, a, o.lda, block.b, o.ldb, c, o.ldc, block.accumulate) };
        return;
    }
    let mut scratch = [[0.0f32; NR]; MAX_MR];
    let tmp = scratch.as_mut_ptr().cast::<f32>();
    // SAFETY: rows `r < R` of C hold `cols` elements from `c`, and
    // `scratch` `MAX_MR ≥ R` rows of `NR ≥ NV·LANES` floats.
    unsafe {
        if block.accumulate {
            for r in 0..R {
                std::ptr::copy_nonoverlapping(c.offset(r as isize * o.ldc), tmp.add(r * NR), block.cols);
            }
        }
        tile::<V, R, NV, TA>(block.kc, a, o.lda, block.b, o.ldb, tmp, NR as isize, block.accumulate);
        for r in 0..R {
            std::ptr::copy_nonoverlapping(tmp.add(r * NR), c.offset(r as isize * o.ldc), block.cols);
        }
    }
}

/// The microkernel: `C[R × NV·LANES] (+)= A[R × kc] · B[kc × NV·LANES]`,
/// `A`'s rows `lda` apart (`TA`: its columns `lda` apart, its rows
/// adjacent), `B`'s rows `ldb` apart, `C`'s rows `ldc` apart; each element
/// one chain of fused multiply-adds in `k` order from 0, or from `C` with
/// `accumulate`.
///
/// # Safety
/// The CPU has `V`'s instruction set; `a` reads `R` rows of `kc` elements,
/// `b` `kc` rows of `NV·LANES`, and `c` reads and writes `R` rows of
/// `NV·LANES` elements, which nothing else accesses during the call.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<V: Vector, const R: usize, const NV: usize, const TA: bool>(
    kc: usize,
    a: *const f32,
    lda: isize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: isize,
    accumulate: bool,
) {
    // SAFETY: every pointer below stays inside the extents of the
    // contract.
    unsafe {
        let mut acc = [[V::zero(); NV]; R];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = V::load(c.offset(r as isize * ldc).add(j * V::LANES));
                }
            }
        }
        if TA {
            for p in 0..kc {
                let bv: [V; NV] = std::array::from_fn(|j| V::load(b.add(p * ldb + j * V::LANES)));
                let column = a.offset(p as isize * lda);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let s = V::splat(column.add(r));
                    for (v, bj) in acc_r.iter_mut().zip(bv) {
                        *v = v.fma(s, bj);
                    }
                }
            }
        } else {
            let rows: [*const f32; R] = std::array::from_fn(|r| a.offset(r as isize * lda));
            for p in 0..kc {
                let bv: [V; NV] = std::array::from_fn(|j| V::load(b.add(p * ldb + j * V::LANES)));
                for (row, acc_r) in rows.iter().zip(acc.iter_mut()) {
                    let s = V::splat(row.add(p));
                    for (v, bj) in acc_r.iter_mut().zip(bv) {
                        *v = v.fma(s, bj);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                v.store(c.offset(r as isize * ldc).add(j * V::LANES));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The product compiled for AVX2 and for AVX-512.

    use std::arch::x86_64::*;

    use super::{product_with, Operands, Prefetch};

    /// The product with AVX-512F microkernels of 8 × 32.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the contract of [`product_with`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn product_avx512<const TA: bool>(o: &Operands, prefetch: &mut Prefetch) {
        // SAFETY: the contract.
        unsafe { product_with::<__m512, 8, 2, TA>(o, prefetch) }
    }

    /// The product with AVX2 microkernels of 6 × 16.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the contract of [`product_with`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn product_avx2<const TA: bool>(o: &Operands, prefetch: &mut Prefetch) {
        // SAFETY: the contract.
        unsafe { product_with::<__m256, 6, 2, TA>(o, prefetch) }
    }
}

#[cfg(test)]
mod tests;
