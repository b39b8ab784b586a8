//! Winograd convolutions F(2×2, 3×3): 3×3 kernels with unit stride and
//! dilation over `[N, C, H, W]` images, with 16 products per 2×2 output
//! tile where the direct convolution needs 36 (Lavin and Gray 2016,
//! "Fast Algorithms for Convolutional Neural Networks").
//!
//! With `Bᵀ`, `G`, `Aᵀ` the transforms of F(2, 3), an output tile `Y`
//! (2×2) of output channel `k` is `Aᵀ [Σ_c U_kc ⊙ V_c] A` with
//! `U_kc = G g_kc Gᵀ` (the 3×3 kernel, 4×4 transformed) and `V_c = Bᵀ d_c B`
//! (the 4×4 input patch under the tile, two positions to the left and above
//! the tile's first output reading `-lo`). Per transformed position
//! `ξ = 4a + b` the sum over channels is a matrix product
//! `M_ξ = U_ξ · V_ξ` (`[K, C] · [C, tiles]`), so a convolution runs as
//! 16 small products between an input and an output transform.
//!
//! The tiles of a call (image, tile row, tile column) are processed in
//! blocks of whole tile rows, across image boundaries (the plan chooses
//! about 512 tiles per block, `nnc_compiler::plan::conv`): per block, the
//! input transform writes `V` (`[16, C, T]`, `T` tiles padded to a
//! multiple of [`TILE_ALIGN`]), the products write `M` (`[16, K, T]`) and
//! the output transform writes the result's rows in place. The input rows
//! under a tile row are first split into their even and odd columns (the
//! columns a tile starts at and the ones between); consecutive tile rows
//! of an image share two input rows and split them once.
//!
//! - [`conv`]: the forward convolution;
//! - [`conv_input_grad`]: the input gradient, itself a convolution of the
//!   output gradient with the kernels flipped and their channel axes
//!   exchanged, padded by `2 - lo` (so padding up to 2 on each side);
//! - [`conv_weight_grad`]: `dU_ξ = Σ_tiles (A dY Aᵀ)_ξ ⊙ V_ξ` accumulated over
//!   the blocks in order as `[K, tiles] · [tiles, C]` products, then
//!   `dg = Gᵀ dU G`.
//!
//! Products and transforms are written over a vector type (`micro::Simd`)
//! and compiled for AVX-512F and for AVX2 with FMA, run when the CPU has
//! them (detected once), otherwise as portable code. Each output tile's
//! arithmetic does not depend on the block it falls in, so forward results
//! and input gradients do not depend on how a batch is split across
//! threads; weight gradients sum per-block partial products in block
//! order.
//!
//! Rounding differs from the direct convolution: the transforms add and
//! subtract inputs before the products (F(2, 3)'s coefficients are 0, ±½
//! and ±1), which keeps errors within a few units in the last place of the
//! result's magnitude.

use micro::Simd;

use super::isa::{line_offset, LINE_FLOATS};

/// Transformed positions of a 4×4 tile.
const XI: usize = 16;

/// Tiles of a block are padded to a multiple of this (a multiple of every
/// microkernel's column width).
pub const TILE_ALIGN: usize = 32;

/// A 2-D 3×3 convolution with unit stride and dilation and one group, as
/// the Winograd kernels see it: `[batch, c_in, in_h, in_w]` →
/// `[batch, c_out, out_h, out_w]`, output `(i, j)` reading input
/// `(i + a - lo_h, j + b - lo_w)` for taps `(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub lo_h: usize,
    pub lo_w: usize,
}

impl Shape {
    /// Tile rows and columns per image.
    fn tiles(&self) -> (usize, usize) {
        (self.out_h.div_ceil(2), self.out_w.div_ceil(2))
    }

    /// Checks that the output reads the input only where taps can reach it:
    /// `out = in + lo + hi - 2` with `hi ≤ 2` and `lo ≤ 2` (so the input
    /// gradient, padded by `2 - lo` and `2 - hi`, is a convolution too).
    fn check(&self) -> Result<(), String> {
        let fits = |input: usize, out: usize, lo: usize| {
            lo <= 2 && out >= 1 && out + 2 >= input + lo && out + 2 <= input + lo + 2
        };
        if !fits(self.in_h, self.out_h, self.lo_h) || !fits(self.in_w, self.out_w, self.lo_w) {
            return Err(format!("a Winograd convolution cannot map {self:?}"));
        }
        Ok(())
    }

    /// The convolution whose output is this one's input gradient: input and
    /// output exchanged, padded by `2 - lo`.
    fn transposed(&self) -> Shape {
        Shape {
            batch: self.batch,
            c_in: self.c_out,
            c_out: self.c_in,
            in_h: self.out_h,
            in_w: self.out_w,
            out_h: self.in_h,
            out_w: self.in_w,
            lo_h: 2 - self.lo_h,
            lo_w: 2 - self.lo_w,
        }
    }
}

/// Scratch space of the Winograd kernels, reusable across calls.
#[derive(Debug, Default)]
pub struct Scratch {
    u: Vec<f32>,
    v: Vec<f32>,
    m: Vec<f32>,
    du: Vec<f32>,
    rows: Vec<f32>,
}

/// `len` floats of `buf`, grown as needed, from its first cache-line
/// boundary: the block buffers' rows are whole lines (`block_stride`), so
/// no vector load or store of a row spans two lines (which Intel's cores
/// take at twice the cost). The same `len` elements as long as `buf` does
/// not grow ([`aligned`] finds them again).
fn grow(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len + LINE_FLOATS {
        buf.resize(len + LINE_FLOATS, 0.0);
    }
    let skip = line_offset(buf);
    &mut buf[skip..skip + len]
}

/// The `len` floats [`grow`] last gave of `buf`.
fn aligned(buf: &[f32], len: usize) -> &[f32] {
    let skip = line_offset(buf);
    &buf[skip..skip + len]
}

fn check_len(what: &str, len: usize, want: usize) -> Result<(), String> {
    if len != want {
        return Err(format!("{what} holds {len} elements, the convolution needs {want}"));
    }
    Ok(())
}

/// `G g Gᵀ` of a 3×3 kernel `g` (row-major), into `out[ξ·stride]`.
fn transform_kernel(g: [f32; 9], out: &mut [f32], stride: usize) {
    // G g: rows g0, ½(g0+g1+g2), ½(g0-g1+g2), g2 of the kernel's rows.
    let mut t = [[0.0f32; 3]; 4];
    for j in 0..3 {
        let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
        t[0][j] = a;
        t[1][j] = 0.5 * (a + b + c);
        t[2][j] = 0.5 * (a - b + c);
        t[3][j] = c;
    }
    for (i, row) in t.iter().enumerate() {
        let (a, b, c) = (row[0], row[1], row[2]);
        out[(4 * i) * stride] = a;
        out[(4 * i + 1) * stride] = 0.5 * (a + b + c);
        out[(4 * i + 2) * stride] = 0.5 * (a - b + c);
        out[(4 * i + 3) * stride] = c;
    }
}

/// `U[ξ][k][c]` of weights `w: [K, C, 3, 3]` (`flip`: of the input
/// gradient, `U[ξ][c][k] = G flip(w[k][c]) Gᵀ`).
fn transform_weights(w: &[f32], k_count: usize, c_count: usize, flip: bool, u: &mut [f32]) {
    let plane = k_count * c_count;
    for k in 0..k_count {
        for c in 0..c_count {
            let src = &w[(k * c_count + c) * 9..][..9];
            let mut g = [0.0f32; 9];
            g.copy_from_slice(src);
            let at = if flip {
                g.reverse();
                c * k_count + k
            } else {
                k * c_count + c
            };
            transform_kernel(g, &mut u[at..], plane);
        }
    }
}

/// The transforms run over a tile row in vectors of the instruction set's
/// lanes (at most this many tiles): rows of tiles are padded to a multiple
/// of it in the row buffers, and the block buffers have this many columns
/// of slack past their last tile, so that every vector is whole.
const CHUNK: usize = 16;

/// Tile columns rounded up to whole chunks.
fn chunked(tw: usize) -> usize {
    tw.next_multiple_of(CHUNK)
}

/// Splits the row `src`, shifted right by `lo` (0, 1 or 2) columns, into
/// its even and odd columns: column `x + lo` of the shifted row is
/// `src[x]`; the other elements of `even` and `odd` are left as they are.
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn split_row<S: Simd>(src: &[f32], lo: usize, even: &mut [f32], odd: &mut [f32]) {
    // With `lo` odd, src's even elements land in odd columns.
    let (first, second, at0, at1) =
        if lo.is_multiple_of(2) { (even, odd, lo / 2, lo / 2) } else { (odd, even, 0, 1) };
    let pairs = src.len() / 2;
    let (a, b) = (&mut first[at0..at0 + pairs + src.len() % 2], &mut second[at1..at1 + pairs]);
    let lanes = S::LANES;
    let mut t = 0;
    while t + lanes <= pairs {
        // SAFETY: the CPU has S's instructions (this function's contract).
        unsafe {
            let (x, y) = (load::<S>(src, 2 * t), load::<S>(src, 2 * t + lanes));
            let (e, o) = x.unzip(y);
            store(e, a, t);
            store(o, b, t);
        }
        t += lanes;
    }
    // The rest (fewer than LANES pairs, and the last even column of an
    // odd row) by masked loads and stores.
    let rest = src.len() - 2 * t;
    if rest > 0 {
        // SAFETY: the CPU has S's instructions (this function's contract);
        // the loads read the `rest` elements of `src` from `2t` on, the
        // stores the `a.len() - t` and `b.len() - t` elements of `a` and
        // `b` from `t` on.
        unsafe {
            let x = S::load_first(src[2 * t..].as_ptr(), rest.min(lanes));
            let y = if rest > lanes {
                S::load_first(src[2 * t + lanes..].as_ptr(), rest - lanes)
            } else {
                S::zero()
            };
            let (e, o) = x.unzip(y);
            e.store_first(a[t..].as_mut_ptr(), a.len() - t);
            o.store_first(b[t..].as_mut_ptr(), b.len() - t);
        }
    }
}

/// `S::LANES` elements of `data` from `at` on.
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn load<S: Simd>(data: &[f32], at: usize) -> S {
    let lanes = &data[at..at + S::LANES];
    // SAFETY: `lanes` holds LANES elements; the CPU has S's instructions
    // (this function's contract).
    unsafe { S::load(lanes.as_ptr()) }
}

/// Stores `value` at `data[at..at + S::LANES]`.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn store<S: Simd>(value: S, data: &mut [f32], at: usize) {
    let lanes = &mut data[at..at + S::LANES];
    // SAFETY: as in `load`.
    unsafe { value.store(lanes.as_mut_ptr()) }
}

/// `Bᵀ` along the rows at columns `at..at + LANES` of the four rows `d`:
/// `(d0 - d2, d1 + d2, d2 - d1, d1 - d3)`.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn input_rows<S: Simd>(d: [&[f32]; 4], at: usize) -> [S; 4] {
    // SAFETY: the CPU has S's instructions (this function's contract).
    unsafe {
        let (d0, d1, d2, d3) =
            (load::<S>(d[0], at), load::<S>(d[1], at), load::<S>(d[2], at), load::<S>(d[3], at));
        [d0.sub(d2), d1.add(d2), d2.sub(d1), d1.sub(d3)]
    }
}

/// `Bᵀ d B` of the tiles of one tile row of one channel: `d` the four
/// input rows under the tile row, each split into its even and odd
/// columns (`chunked(tw) + 1` elements each at least; columns from `-lo_w`
/// on, zero outside the image), written to `v[ξ·xi_stride + t]` for
/// `t < chunked(tw)`.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn transform_input_row<S: Simd>(
    even: [&[f32]; 4],
    odd: [&[f32]; 4],
    tw: usize,
    v: &mut [f32],
    xi_stride: usize,
) {
    // SAFETY: the CPU has S's instructions (this function's contract).
    unsafe {
        for t0 in (0..chunked(tw)).step_by(S::LANES) {
            // Bᵀ along the rows (r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1,
            // r3 = d1 - d3) of the tiles' columns even[t], odd[t],
            // even[t + 1], odd[t + 1].
            let e0 = input_rows::<S>(even, t0);
            let o0 = input_rows::<S>(odd, t0);
            let e1 = input_rows::<S>(even, t0 + 1);
            let o1 = input_rows::<S>(odd, t0 + 1);
            for a in 0..4 {
                // B along the columns.
                let base = 4 * a * xi_stride + t0;
                store(e0[a].sub(e1[a]), v, base);
                store(o0[a].add(e1[a]), v, base + xi_stride);
                store(e1[a].sub(o0[a]), v, base + 2 * xi_stride);
                store(o0[a].sub(o1[a]), v, base + 3 * xi_stride);
            }
        }
    }
}

/// `Aᵀ m A` of the tiles of one tile row of one output channel,
/// `m[ξ·xi_stride + t]` for `t < chunked(tw)`, into its two output rows
/// (`None`: a row below the output), each `≤ 2·tw` elements: whole chunks
/// by plain stores, the last partial one by masked stores.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn transform_output_row<S: Simd>(
    m: &[f32],
    xi_stride: usize,
    tw: usize,
    mut rows: [Option<&mut [f32]>; 2],
) {
    let lanes = S::LANES;
    // SAFETY: the CPU has S's instructions (this function's contract).
    unsafe {
        for t0 in (0..chunked(tw)).step_by(lanes) {
            if rows.iter().all(|r| r.as_ref().is_none_or(|y| 2 * t0 >= y.len())) {
                break;
            }
            // Aᵀ along the rows: p_b = m_0b + m_1b + m_2b, q_b = m_1b - m_2b - m_3b.
            let mut p = [S::zero(); 4];
            let mut q = [S::zero(); 4];
            for b in 0..4 {
                let m0 = load::<S>(m, b * xi_stride + t0);
                let m1 = load::<S>(m, (4 + b) * xi_stride + t0);
                let m2 = load::<S>(m, (8 + b) * xi_stride + t0);
                let m3 = load::<S>(m, (12 + b) * xi_stride + t0);
                p[b] = m0.add(m1).add(m2);
                q[b] = m1.sub(m2).sub(m3);
            }
            // Then along the columns, interleaving even and odd output columns.
            for (r, row) in [p, q].iter().zip(rows.iter_mut()) {
                let Some(y) = row else { continue };
                let even = r[0].add(r[1]).add(r[2]);
                let odd = r[1].sub(r[2]).sub(r[3]);
                let (lo, hi) = even.zip(odd);
                let at = 2 * t0;
                if at + 2 * lanes <= y.len() {
                    store(lo, y, at);
                    store(hi, y, at + lanes);
                } else if at < y.len() {
                    // The masked stores write the `rest` elements of `y`
                    // from `at` on.
                    let rest = y.len() - at;
                    lo.store_first(y[at..].as_mut_ptr(), rest.min(lanes));
                    if rest > lanes {
                        hi.store_first(y[at + lanes..].as_mut_ptr(), rest - lanes);
                    }
                }
            }
        }
    }
}

/// `A dY Aᵀ` of the tiles of one tile row of one output channel: `g0`, `g1`
/// the two output-gradient rows, each split into even and odd columns
/// (`chunked(tw)` elements each; zero beyond the output), written to
/// `v[ξ·xi_stride + t]` for `t < chunked(tw)`.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn transform_gradient_row<S: Simd>(g: [&[f32]; 4], tw: usize, v: &mut [f32], xi_stride: usize) {
    // SAFETY: the CPU has S's instructions (this function's contract).
    unsafe {
        for t0 in (0..chunked(tw)).step_by(S::LANES) {
            let (a, b, c, d) =
                (load::<S>(g[0], t0), load::<S>(g[1], t0), load::<S>(g[2], t0), load::<S>(g[3], t0));
            // A = [[1,0],[1,1],[1,-1],[0,-1]]: rows of A dY, then columns.
            let zero = S::zero();
            let rows = [[a, b], [a.add(c), b.add(d)], [a.sub(c), b.sub(d)], [zero.sub(c), zero.sub(d)]];
            for (i, [x, y]) in rows.into_iter().enumerate() {
                let base = 4 * i * xi_stride + t0;
                store(x, v, base);
                store(x.add(y), v, base + xi_stride);
                store(x.sub(y), v, base + 2 * xi_stride);
                store(zero.sub(y), v, base + 3 * xi_stride);
            }
        }
    }
}

/// `Gᵀ dU G` of a 4×4 transformed gradient `du[ξ·stride]` into a 3×3 kernel.
fn untransform_kernel(du: &[f32], stride: usize) -> [f32; 9] {
    let at = |xi: usize| du[xi * stride];
    // Gᵀ = [[1, ½, ½, 0], [0, ½, -½, 0], [0, ½, ½, 1]].
    let column = |b: usize| {
        let (m0, m1, m2, m3) = (at(b), at(4 + b), at(8 + b), at(12 + b));
        [m0 + 0.5 * (m1 + m2), 0.5 * (m1 - m2), 0.5 * (m1 + m2) + m3]
    };
    let columns = [column(0), column(1), column(2), column(3)];
    let t: [[f32; 4]; 3] = std::array::from_fn(|i| std::array::from_fn(|b| columns[b][i]));
    let mut g = [0.0f32; 9];
    for (i, row) in t.iter().enumerate() {
        let [m0, m1, m2, m3] = *row;
        g[3 * i] = m0 + 0.5 * (m1 + m2);
        g[3 * i + 1] = 0.5 * (m1 - m2);
        g[3 * i + 2] = 0.5 * (m1 + m2) + m3;
    }
    g
}

/// Blocks of tile rows: `(first row, rows)` over the `batch · th` tile rows.
fn blocks(total_rows: usize, rows_per_block: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = rows_per_block.max(1);
    (0..total_rows).step_by(step).map(move |r| (r, step.min(total_rows - r)))
}

/// Columns of a block's transformed buffers: its tiles rounded up to
/// [`TILE_ALIGN`], and a chunk of slack (the transforms of the last tile
/// row run over whole chunks).
fn block_stride(rows_per_block: usize, tw: usize) -> usize {
    (rows_per_block.max(1) * tw).next_multiple_of(TILE_ALIGN) + CHUNK
}

/// Elements between the 16 planes (one per ξ) of a block buffer of `rows`
/// rows `ld` apart: `rows · ld` rounded up to an odd number of cache
/// lines. The transforms read or write a tile's 16 values in 16 planes at
/// once; planes a multiple of 4 KiB apart would all fall in one set of
/// the L1 cache, more than its ways, and evict each other (64 channels of
/// 560 columns: an input transform 3.5 times as slow as for 32).
fn plane_stride(rows: usize, ld: usize) -> usize {
    let lines = (rows * ld).div_ceil(LINE_FLOATS);
    (lines | 1) * LINE_FLOATS
}

/// Elements of the line buffers of tile rows `tw` tiles wide.
fn rows_len(tw: usize) -> usize {
    9 * (chunked(tw) + CHUNK) + 4 * chunked(tw)
}

/// The input transform of one block: `V[ξ][c][t]` (at `ξ·vp + c·ld + t`)
/// for the tile rows `first..first + count` of `x: [N, C, in_h, in_w]`,
/// columns past the block's tiles zero.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn input_block<S: Simd>(
    s: &Shape,
    x: &[f32],
    first: usize,
    count: usize,
    v: &mut [f32],
    (ld, vp): (usize, usize),
    rows: &mut [f32],
) {
    let (th, tw) = s.tiles();
    let n = chunked(tw) + CHUNK;
    let (halves, rest) = rows.split_at_mut(8 * n);
    let zero = &mut rest[..n];
    zero.fill(0.0);
    let zero = &*zero;
    // Each row writes the same elements of its halves; the others (the
    // padding) stay zero.
    halves.fill(0.0);
    let plane = s.in_h * s.in_w;
    let used = count * tw;
    let columns = used.next_multiple_of(TILE_ALIGN);
    for c in 0..s.c_in {
        // The buffer (slot) holding each of the four rows under the tile
        // row; the next tile row of the same image reuses the last two.
        let mut slot = [0usize, 1, 2, 3];
        let mut present = [false; 4];
        let mut previous = None;
        for r in 0..count {
            let (img, ti) = ((first + r) / th, (first + r) % th);
            let image = &x[(img * s.c_in + c) * plane..][..plane];
            let fresh = if ti > 0 && previous == Some((img, ti - 1)) {
                slot = [slot[2], slot[3], slot[0], slot[1]];
                present = [present[2], present[3], false, false];
                2
            } else {
                present = [false; 4];
                0
            };
            previous = Some((img, ti));
            for i in fresh..4 {
                let y = (2 * ti + i) as isize - s.lo_h as isize;
                if y >= 0 && (y as usize) < s.in_h {
                    let (even, odd) = halves[2 * slot[i] * n..][..2 * n].split_at_mut(n);
                    // SAFETY: the CPU has S's instructions (this function's contract).
                    unsafe { split_row::<S>(&image[y as usize * s.in_w..][..s.in_w], s.lo_w, even, odd) };
                    present[i] = true;
                }
            }
            let half =
                |i: usize, h: usize| if present[i] { &halves[(2 * slot[i] + h) * n..][..n] } else { zero };
            let even: [&[f32]; 4] = [half(0, 0), half(1, 0), half(2, 0), half(3, 0)];
            let odd: [&[f32]; 4] = [half(0, 1), half(1, 1), half(2, 1), half(3, 1)];
            // SAFETY: the CPU has S's instructions (this function's contract).
            unsafe { transform_input_row::<S>(even, odd, tw, &mut v[c * ld + r * tw..], vp) };
        }
        if columns > used {
            for xi in 0..XI {
                v[xi * vp + c * ld..][used..columns].fill(0.0);
            }
        }
    }
}

/// The output transform of one block: rows of `y: [N, K, out_h, out_w]`
/// from `M[ξ][k][t]` (at `ξ·mp + k·ld + t`).
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn output_block<S: Simd>(
    s: &Shape,
    m: &[f32],
    (ld, mp): (usize, usize),
    first: usize,
    count: usize,
    y: &mut [f32],
) {
    let (th, tw) = s.tiles();
    let plane = s.out_h * s.out_w;
    for k in 0..s.c_out {
        for r in 0..count {
            let (n, ti) = ((first + r) / th, (first + r) % th);
            let image = &mut y[(n * s.c_out + k) * plane..][..plane];
            let (above, below) = image[2 * ti * s.out_w..].split_at_mut(s.out_w);
            let second = (2 * ti + 1 < s.out_h).then(|| &mut below[..s.out_w]);
            // SAFETY: the CPU has S's instructions (this function's contract).
            unsafe { transform_output_row::<S>(&m[k * ld + r * tw..], mp, tw, [Some(above), second]) };
        }
    }
}

/// The convolution of `x` with the transformed kernels `u` (`[16, K, C]`),
/// block after block.
///
/// # Safety
/// As [`load`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_blocks<S: Simd>(
    isa: micro::Isa,
    s: &Shape,
    rows_per_block: usize,
    x: &[f32],
    u: &[f32],
    y: &mut [f32],
    scratch: &mut Scratch,
) {
    let (th, tw) = s.tiles();
    let ld = block_stride(rows_per_block, tw);
    let (vp, mp) = (plane_stride(s.c_in, ld), plane_stride(s.c_out, ld));
    let v = grow(&mut scratch.v, XI * vp);
    let m = grow(&mut scratch.m, XI * mp);
    let rows = grow(&mut scratch.rows, rows_len(tw));
    for (first, count) in blocks(s.batch * th, rows_per_block) {
        // SAFETY: the CPU has S's instructions (this function's contract).
        unsafe { input_block::<S>(s, x, first, count, v, (ld, vp), rows) };
        let columns = (count * tw).next_multiple_of(TILE_ALIGN);
        for xi in 0..XI {
            let a = &u[xi * s.c_out * s.c_in..][..s.c_out * s.c_in];
            let b = &v[xi * vp..][..s.c_in * ld];
            let c = &mut m[xi * mp..][..s.c_out * ld];
            micro::product(isa, s.c_out, s.c_in, columns, a, b, ld, c);
        }
        // SAFETY: as above.
        unsafe { output_block::<S>(s, m, (ld, mp), first, count, y) };
    }
}

/// `dU` (`[16, K, C]`, accumulated) of the convolution `s` from `x` and
/// `dy`, block after block.
///
/// # Safety
/// As [`load`].
#[inline(always)]
unsafe fn weight_grad_blocks<S: Simd>(
    isa: micro::Isa,
    s: &Shape,
    rows_per_block: usize,
    x: &[f32],
    dy: &[f32],
    scratch: &mut Scratch,
) {
    let (th, tw) = s.tiles();
    let twp = chunked(tw);
    let ld = block_stride(rows_per_block, tw);
    let (vp, mp) = (plane_stride(s.c_in, ld), plane_stride(s.c_out, ld));
    let v = grow(&mut scratch.v, XI * vp);
    let m = grow(&mut scratch.m, XI * mp);
    let du = grow(&mut scratch.du, XI * s.c_out * s.c_in);
    let rows = grow(&mut scratch.rows, rows_len(tw));
    let (halves, rest) = rows.split_at_mut(4 * twp);
    halves.fill(0.0);
    let plane = s.out_h * s.out_w;
    for (first, count) in blocks(s.batch * th, rows_per_block) {
        // SAFETY: the CPU has S's instructions (this function's contract).
        unsafe { input_block::<S>(s, x, first, count, v, (ld, vp), rest) };
        for k in 0..s.c_out {
            for r in 0..count {
                let (n, ti) = ((first + r) / th, (first + r) % th);
                let image = &dy[(n * s.c_out + k) * plane..][..plane];
                for i in 0..2 {
                    let row = 2 * ti + i;
                    let (even, odd) = halves[2 * i * twp..][..2 * twp].split_at_mut(twp);
                    if row < s.out_h {
                        // The elements past the output stay zero.
                        // SAFETY: the CPU has S's instructions (this function's contract).
                        unsafe { split_row::<S>(&image[row * s.out_w..][..s.out_w], 0, even, odd) };
                    } else {
                        even.fill(0.0);
                        odd.fill(0.0);
                    }
                }
                let g: [&[f32]; 4] = std::array::from_fn(|i| &halves[i * twp..][..twp]);
                // SAFETY: as above.
                unsafe { transform_gradient_row::<S>(g, tw, &mut m[k * ld + r * tw..], mp) };
            }
            let (used, columns) = (count * tw, (count * tw).next_multiple_of(TILE_ALIGN));
            if columns > used {
                for xi in 0..XI {
                    m[xi * mp + k * ld..][used..columns].fill(0.0);
                }
            }
        }
        let columns = (count * tw).next_multiple_of(TILE_ALIGN);
        for xi in 0..XI {
            let a = &m[xi * mp..][..s.c_out * ld];
            let b = &v[xi * vp..][..s.c_in * ld];
            let c = &mut du[xi * s.c_out * s.c_in..][..s.c_out * s.c_in];
            micro::product_nt(isa, s.c_out, s.c_in, columns, a, b, ld, c);
        }
    }
}

/// The block loops compiled for each instruction set, so that the
/// transforms run at the CPU's vector width too.
macro_rules! for_each_isa {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name(isa: micro::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512(isa: micro::Isa, $($arg: $ty),*) {
                // SAFETY: this function only runs with AVX-512F (below).
                unsafe { $body::<std::arch::x86_64::__m512>(isa, $($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2(isa: micro::Isa, $($arg: $ty),*) {
                // SAFETY: this function only runs with AVX2 and FMA (below).
                unsafe { $body::<std::arch::x86_64::__m256>(isa, $($arg),*) }
            }
            match isa.level() {
                // SAFETY: an `Isa` exists only for an instruction set the
                // CPU has (`micro::host`, `micro::available`).
                #[cfg(target_arch = "x86_64")]
                micro::Level::Avx512 => unsafe { avx512(isa, $($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                micro::Level::Avx2 => unsafe { avx2(isa, $($arg),*) },
                // SAFETY: portable code runs on any CPU.
                micro::Level::Portable => unsafe { $body::<micro::Portable>(isa, $($arg),*) },
            }
        }
    };
}

for_each_isa!(run_forward, forward_blocks, (s: &Shape, rows_per_block: usize, x: &[f32], u: &[f32], y: &mut [f32], scratch: &mut Scratch));
for_each_isa!(run_weight_grad, weight_grad_blocks, (s: &Shape, rows_per_block: usize, x: &[f32], dy: &[f32], scratch: &mut Scratch));

/// The forward convolution of `shape` (`x: [N, C, H, W]`, `w: [K, C, 3, 3]`,
/// `y: [N, K, OH, OW]`, overwritten), in blocks of `rows_per_block` tile rows.
pub fn conv(
    shape: &Shape,
    rows_per_block: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    conv_with(micro::host(), shape, rows_per_block, x, w, y, scratch)
}

fn conv_with(
    isa: micro::Isa,
    shape: &Shape,
    rows_per_block: usize,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    let s = shape;
    check_len("input", x.len(), s.batch * s.c_in * s.in_h * s.in_w)?;
    check_len("output", y.len(), s.batch * s.c_out * s.out_h * s.out_w)?;
    transformed_forward(isa, s, false, rows_per_block, x, w, y, scratch)
}

/// The forward convolution run by [`conv`] and [`conv_input_grad`]: of
/// `input` with `w` (of `shape`) transformed, or with `w` flipped and its
/// channel axes exchanged over `shape.transposed()` when `transposed`.
#[allow(clippy::too_many_arguments)]
fn transformed_forward(
    isa: micro::Isa,
    shape: &Shape,
    transposed: bool,
    rows_per_block: usize,
    input: &[f32],
    w: &[f32],
    out: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    shape.check()?;
    let s = shape;
    check_len("weight", w.len(), s.c_out * s.c_in * 9)?;
    let len = XI * s.c_out * s.c_in;
    let mut u = std::mem::take(&mut scratch.u);
    let transformed = grow(&mut u, len);
    transform_weights(w, s.c_out, s.c_in, transposed, transformed);
    let run = if transposed { s.transposed() } else { *s };
    run_forward(isa, &run, rows_per_block, input, transformed, out, scratch);
    scratch.u = u;
    Ok(())
}

/// The input gradient of the convolution `shape`: `dx` (`[N, C, H, W]`,
/// overwritten) from `dy: [N, K, OH, OW]` and `w: [K, C, 3, 3]`.
pub fn conv_input_grad(
    shape: &Shape,
    rows_per_block: usize,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    conv_input_grad_with(micro::host(), shape, rows_per_block, dy, w, dx, scratch)
}

fn conv_input_grad_with(
    isa: micro::Isa,
    shape: &Shape,
    rows_per_block: usize,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    let s = shape;
    check_len("output gradient", dy.len(), s.batch * s.c_out * s.out_h * s.out_w)?;
    check_len("input gradient", dx.len(), s.batch * s.c_in * s.in_h * s.in_w)?;
    transformed_forward(isa, s, true, rows_per_block, dy, w, dx, scratch)
}

/// The weight gradient of the convolution `shape`: `dw` (`[K, C, 3, 3]`,
/// overwritten) from `x: [N, C, H, W]` and `dy: [N, K, OH, OW]`.
pub fn conv_weight_grad(
    shape: &Shape,
    rows_per_block: usize,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    conv_weight_grad_with(micro::host(), shape, rows_per_block, x, dy, dw, scratch)
}

fn conv_weight_grad_with(
    isa: micro::Isa,
    shape: &Shape,
    rows_per_block: usize,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    scratch: &mut Scratch,
) -> Result<(), String> {
    shape.check()?;
    let s = shape;
    check_len("input", x.len(), s.batch * s.c_in * s.in_h * s.in_w)?;
    check_len("output gradient", dy.len(), s.batch * s.c_out * s.out_h * s.out_w)?;
    check_len("weight gradient", dw.len(), s.c_out * s.c_in * 9)?;
    grow(&mut scratch.du, XI * s.c_out * s.c_in).fill(0.0);
    run_weight_grad(isa, s, rows_per_block, x, dy, scratch);
    let plane = s.c_out * s.c_in;
    let du = aligned(&scratch.du, XI * plane);
    for k in 0..s.c_out {
        for c in 0..s.c_in {
            let g = untransform_kernel(&du[k * s.c_in + c..], plane);
            dw[(k * s.c_in + c) * 9..][..9].copy_from_slice(&g);
        }
    }
    Ok(())
}

/// The products of the transformed tiles, on the widest vectors the CPU
/// has.
mod micro {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    /// An instruction set the microkernels are compiled for that this CPU
    /// has: only [`host`] and [`available`] make one, after detecting it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Isa(Level);

    /// What an [`Isa`] is, for code compiled per instruction set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Level {
        Portable,
        #[cfg(target_arch = "x86_64")]
        Avx2,
        #[cfg(target_arch = "x86_64")]
        Avx512,
    }

    impl Isa {
        pub fn level(self) -> Level {
            self.0
        }
    }

    /// The widest instruction set of this CPU (detected once).
    pub fn host() -> Isa {
        static HOST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *HOST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Isa(Level::Avx512);
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    return Isa(Level::Avx2);
                }
            }
            Isa(Level::Portable)
        })
    }

    /// The instruction sets this CPU can run (for tests).
    #[cfg(test)]
    pub fn available() -> Vec<Isa> {
        let mut all = vec![Isa(Level::Portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                all.push(Isa(Level::Avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa(Level::Avx512));
            }
        }
        all
    }

    /// A vector of f32 lanes.
    pub(super) trait Simd: Copy {
        const LANES: usize;
        /// # Safety
        /// The CPU has the vector's instruction set.
        unsafe fn zero() -> Self;
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn splat(x: f32) -> Self;
        /// # Safety
        /// `p` points at `LANES` readable f32.
        unsafe fn load(p: *const f32) -> Self;
        /// # Safety
        /// `p` points at `LANES` writable f32.
        unsafe fn store(self, p: *mut f32);
        /// The first `n` lanes (`n ≤ LANES`) from `p`, the others zero;
        /// nothing past them is read.
        /// # Safety
        /// `p` points at `n` readable f32.
        unsafe fn load_first(p: *const f32, n: usize) -> Self;
        /// Stores the first `n` lanes (`n ≤ LANES`) at `p`; nothing past
        /// them is written.
        /// # Safety
        /// `p` points at `n` writable f32.
        unsafe fn store_first(self, p: *mut f32, n: usize);
        /// `self + a·b`.
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn fma(self, a: Self, b: Self) -> Self;
        /// The sum of the lanes.
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn sum(self) -> f32;
        /// `self + b`.
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn add(self, b: Self) -> Self;
        /// `self - b`.
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn sub(self, b: Self) -> Self;
        /// The lanes of `self` and `b` interleaved: `(a0 b0 a1 b1 …)`, the
        /// first half of the lanes in the first vector.
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn zip(self, b: Self) -> (Self, Self);
        /// The even and the odd lanes of `self` followed by `b`:
        /// `(a0 a2 … b0 b2 …, a1 a3 … b1 b3 …)` (the inverse of [`Simd::zip`]).
        /// # Safety
        /// As [`Simd::zero`].
        unsafe fn unzip(self, b: Self) -> (Self, Self);
    }

    /// Four lanes in plain Rust (no fused multiply-add).
    #[derive(Clone, Copy)]
    pub(super) struct Portable([f32; 4]);

    impl Simd for Portable {
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Portable([0.0; 4])
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            Portable([x; 4])
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees 4 readable f32 at `p`.
            Portable(unsafe { p.cast::<[f32; 4]>().read_unaligned() })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller guarantees 4 writable f32 at `p`.
            unsafe { p.cast::<[f32; 4]>().write_unaligned(self.0) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // SAFETY: the caller guarantees `n` readable f32 at `p`, and
            // only the first `n ≤ 4` are read.
            Portable(std::array::from_fn(|i| if i < n { unsafe { *p.add(i) } } else { 0.0 }))
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            for (i, &x) in self.0.iter().enumerate().take(n) {
                // SAFETY: the caller guarantees `n` writable f32 at `p`.
                unsafe { *p.add(i) = x };
            }
        }
        #[inline(always)]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            Portable(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            (self.0[0] + self.0[1]) + (self.0[2] + self.0[3])
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            Portable(std::array::from_fn(|i| self.0[i] + b.0[i]))
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            Portable(std::array::from_fn(|i| self.0[i] - b.0[i]))
        }
        #[inline(always)]
        unsafe fn zip(self, b: Self) -> (Self, Self) {
            let (a, b) = (self.0, b.0);
            (Portable([a[0], b[0], a[1], b[1]]), Portable([a[2], b[2], a[3], b[3]]))
        }
        #[inline(always)]
        unsafe fn unzip(self, b: Self) -> (Self, Self) {
            let (a, b) = (self.0, b.0);
            (Portable([a[0], a[2], b[0], b[2]]), Portable([a[1], a[3], b[1], b[3]]))
        }
    }

    /// The mask of the first `n` of eight lanes (all bits set in each).
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn first_lanes(n: usize) -> __m256i {
        // SAFETY: AVX2 present (this function's contract).
        unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
    }

    #[cfg(target_arch = "x86_64")]
    impl Simd for __m256 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: AVX2 present (the caller's contract).
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: as `zero`.
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 8 readable f32 at `p` (the caller's contract).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 8 writable f32 at `p` (the caller's contract).
            unsafe { _mm256_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // SAFETY: AVX2 present (the caller's contract); the masked load
            // reads only the first `n` lanes, which the caller guarantees
            // readable, and faults on no other.
            unsafe { _mm256_maskload_ps(p, first_lanes(n)) }
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            // SAFETY: as `load_first`, for writing.
            unsafe { _mm256_maskstore_ps(p, first_lanes(n), self) }
        }
        #[inline(always)]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            // SAFETY: FMA present (the caller's contract).
            unsafe { _mm256_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            // SAFETY: AVX present (the caller's contract).
            unsafe {
                let four = _mm_add_ps(_mm256_castps256_ps128(self), _mm256_extractf128_ps::<1>(self));
                let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
                _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps::<0b01>(two, two)))
            }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX present (the caller's contract).
            unsafe { _mm256_add_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: as `add`.
            unsafe { _mm256_sub_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn zip(self, b: Self) -> (Self, Self) {
            // SAFETY: as `add`.
            unsafe {
                // (a0 b0 a1 b1 | a4 b4 a5 b5), (a2 b2 a3 b3 | a6 b6 a7 b7).
                let (lo, hi) = (_mm256_unpacklo_ps(self, b), _mm256_unpackhi_ps(self, b));
                (_mm256_permute2f128_ps::<0x20>(lo, hi), _mm256_permute2f128_ps::<0x31>(lo, hi))
            }
        }
        #[inline(always)]
        unsafe fn unzip(self, b: Self) -> (Self, Self) {
            // SAFETY: AVX2 present (the caller's contract).
            unsafe {
                // (a0 a2 b0 b2 | a4 a6 b4 b6), then the 64-bit lanes 0 2 1 3.
                let even = _mm256_shuffle_ps::<0b10_00_10_00>(self, b);
                let odd = _mm256_shuffle_ps::<0b11_01_11_01>(self, b);
                #[inline(always)]
                unsafe fn order(v: __m256) -> __m256 {
                    // SAFETY: AVX2 present (the caller's contract).
                    unsafe { _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v))) }
                }
                (order(even), order(odd))
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    impl Simd for __m512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: AVX-512F present (the caller's contract).
            unsafe { _mm512_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: as `zero`.
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 16 readable f32 at `p` (the caller's contract).
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 16 writable f32 at `p` (the caller's contract).
            unsafe { _mm512_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // SAFETY: AVX-512F present (the caller's contract); the masked
            // load reads only the first `n` lanes, which the caller
            // guarantees readable, and faults on no other.
            unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p) }
        }
        #[inline(always)]
        unsafe fn store_first(self, p: *mut f32, n: usize) {
            // SAFETY: as `load_first`, for writing.
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self) }
        }
        #[inline(always)]
        unsafe fn fma(self, a: Self, b: Self) -> Self {
            // SAFETY: as `zero`.
            unsafe { _mm512_fmadd_ps(a, b, self) }
        }
        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            // SAFETY: AVX-512F present (the caller's contract).
            unsafe { _mm512_reduce_add_ps(self) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the caller's contract).
            unsafe { _mm512_add_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: as `add`.
            unsafe { _mm512_sub_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn zip(self, b: Self) -> (Self, Self) {
            // Lane i of the result takes lane idx[i] & 15 of `self` (bit 4
            // clear) or of `b` (bit 4 set).
            const LO: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
            const HI: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];
            // SAFETY: as `add`; the index arrays hold 16 i32.
            unsafe {
                let lo = _mm512_loadu_si512(LO.as_ptr().cast());
                let hi = _mm512_loadu_si512(HI.as_ptr().cast());
                (_mm512_permutex2var_ps(self, lo, b), _mm512_permutex2var_ps(self, hi, b))
            }
        }
        #[inline(always)]
        unsafe fn unzip(self, b: Self) -> (Self, Self) {
            const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
            const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
            // SAFETY: AVX-512F present (the caller's contract); the index
            // arrays hold 16 i32.
            unsafe {
                let even = _mm512_loadu_si512(EVEN.as_ptr().cast());
                let odd = _mm512_loadu_si512(ODD.as_ptr().cast());
                (_mm512_permutex2var_ps(self, even, b), _mm512_permutex2var_ps(self, odd, b))
            }
        }
    }

    /// `C[KB, TV·LANES] = A[KB, n] · B[n, TV·LANES]`, rows of `A` `lda`
    /// apart, of `B` and `C` `ld` apart.
    ///
    /// # Safety
    /// The CPU has `S`'s instruction set; `a` reads `KB` rows of `n`, `b`
    /// `n` rows and `c` `KB` rows of `TV·LANES` elements.
    #[inline(always)]
    unsafe fn nn_tile<S: Simd, const KB: usize, const TV: usize>(
        n: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ld: usize,
        c: *mut f32,
    ) {
        // SAFETY: every pointer below stays inside the extents of this
        // function's contract.
        unsafe {
            let mut acc = [[S::zero(); TV]; KB];
            for p in 0..n {
                let mut row = [S::zero(); TV];
                for (j, r) in row.iter_mut().enumerate() {
                    *r = S::load(b.add(p * ld + j * S::LANES));
                }
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let s = S::splat(*a.add(i * lda + p));
                    for j in 0..TV {
                        acc_i[j] = acc_i[j].fma(s, row[j]);
                    }
                }
            }
            for (i, acc_i) in acc.iter().enumerate() {
                for (j, v) in acc_i.iter().enumerate() {
                    v.store(c.add(i * ld + j * S::LANES));
                }
            }
        }
    }

    /// `C[m, cols] = A[m, n] · B[n, cols]` in tiles of `KB` rows.
    ///
    /// # Safety
    /// As [`nn_tile`], for the whole product; `cols` a multiple of
    /// `TV·LANES`.
    #[inline(always)]
    unsafe fn nn<S: Simd, const KB: usize, const TV: usize>(
        m: usize,
        n: usize,
        cols: usize,
        a: &[f32],
        b: &[f32],
        ld: usize,
        c: &mut [f32],
    ) {
        let width = TV * S::LANES;
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        for j in (0..cols).step_by(width) {
            let mut i = 0;
            // SAFETY: rows i..i+KB (or i) of A and C, columns j..j+width of
            // B and C, inside the extents checked by `product`.
            unsafe {
                while i + KB <= m {
                    nn_tile::<S, KB, TV>(n, a.add(i * n), n, b.add(j), ld, c.add(i * ld + j));
                    i += KB;
                }
                while i < m {
                    nn_tile::<S, 1, TV>(n, a.add(i * n), n, b.add(j), ld, c.add(i * ld + j));
                    i += 1;
                }
            }
        }
    }

    /// `C[OB, CB] += A[OB, cols] · B[CB, cols]ᵀ`.
    ///
    /// # Safety
    /// The CPU has `S`'s instruction set; `a` reads `OB` rows and `b` `CB`
    /// rows of `cols` elements (`ld` apart, `cols` a multiple of `LANES`),
    /// `c` `OB` rows of `CB` elements `ldc` apart.
    #[inline(always)]
    unsafe fn nt_tile<S: Simd, const OB: usize, const CB: usize>(
        cols: usize,
        a: *const f32,
        b: *const f32,
        ld: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        // SAFETY: every pointer below stays inside the extents of this
        // function's contract.
        unsafe {
            let mut acc = [[S::zero(); CB]; OB];
            for t in (0..cols).step_by(S::LANES) {
                let x: [S; OB] = std::array::from_fn(|i| S::load(a.add(i * ld + t)));
                let y: [S; CB] = std::array::from_fn(|j| S::load(b.add(j * ld + t)));
                for i in 0..OB {
                    for j in 0..CB {
                        acc[i][j] = acc[i][j].fma(x[i], y[j]);
                    }
                }
            }
            for (i, row) in acc.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    *c.add(i * ldc + j) += v.sum();
                }
            }
        }
    }

    /// `C[m, p] += A[m, cols] · B[p, cols]ᵀ` in tiles of `OB × CB`.
    ///
    /// # Safety
    /// As [`nt_tile`], for the whole product.
    #[inline(always)]
    unsafe fn nt<S: Simd, const OB: usize, const CB: usize>(
        m: usize,
        p: usize,
        cols: usize,
        a: &[f32],
        b: &[f32],
        ld: usize,
        c: &mut [f32],
    ) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        // SAFETY: rows of A, B and C inside the extents checked by
        // `product_nt`.
        unsafe {
            let mut i = 0;
            while i < m {
                let rows = if i + OB <= m { OB } else { 1 };
                let mut j = 0;
                while j < p {
                    let at = (a.add(i * ld), b.add(j * ld), c.add(i * p + j));
                    match (rows == OB, j + CB <= p) {
                        (true, true) => nt_tile::<S, OB, CB>(cols, at.0, at.1, ld, at.2, p),
                        (true, false) => nt_tile::<S, OB, 1>(cols, at.0, at.1, ld, at.2, p),
                        (false, true) => nt_tile::<S, 1, CB>(cols, at.0, at.1, ld, at.2, p),
                        (false, false) => nt_tile::<S, 1, 1>(cols, at.0, at.1, ld, at.2, p),
                    }
                    j += if j + CB <= p { CB } else { 1 };
                }
                i += rows;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn nn_avx512(m: usize, n: usize, cols: usize, a: &[f32], b: &[f32], ld: usize, c: &mut [f32]) {
        // SAFETY: this function's callers checked AVX-512F and the extents.
        unsafe { nn::<__m512, 8, 2>(m, n, cols, a, b, ld, c) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nn_avx2(m: usize, n: usize, cols: usize, a: &[f32], b: &[f32], ld: usize, c: &mut [f32]) {
        // SAFETY: this function's callers checked AVX2, FMA and the extents.
        unsafe { nn::<__m256, 4, 2>(m, n, cols, a, b, ld, c) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn nt_avx512(m: usize, p: usize, cols: usize, a: &[f32], b: &[f32], ld: usize, c: &mut [f32]) {
        // SAFETY: this function's callers checked AVX-512F and the extents.
        unsafe { nt::<__m512, 4, 4>(m, p, cols, a, b, ld, c) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nt_avx2(m: usize, p: usize, cols: usize, a: &[f32], b: &[f32], ld: usize, c: &mut [f32]) {
        // SAFETY: this function's callers checked AVX2, FMA and the extents.
        unsafe { nt::<__m256, 3, 4>(m, p, cols, a, b, ld, c) }
    }

    /// `C[m, cols] = A[m, n] · B[n, cols]` (A rows `n` apart, B and C rows
    /// `ld` apart; `cols` a multiple of [`super::TILE_ALIGN`]) with `isa`.
    #[allow(clippy::too_many_arguments)]
    pub fn product(
        isa: Isa,
        m: usize,
        n: usize,
        cols: usize,
        a: &[f32],
        b: &[f32],
        ld: usize,
        c: &mut [f32],
    ) {
        assert!(
            cols.is_multiple_of(super::TILE_ALIGN) && cols <= ld,
            "product columns {cols} do not fit rows of {ld}"
        );
        assert!(a.len() >= m * n, "product operand too short");
        assert!(n == 0 || b.len() >= (n - 1) * ld + cols, "product operand too short");
        assert!(m == 0 || c.len() >= (m - 1) * ld + cols, "product result too short");
        match isa.0 {
            // SAFETY: extents checked above; an `Isa` exists only for an
            // instruction set the CPU has (made by `host` or `available`).
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { nn_avx512(m, n, cols, a, b, ld, c) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { nn_avx2(m, n, cols, a, b, ld, c) },
            // SAFETY: extents checked above; portable code runs anywhere.
            Level::Portable => unsafe { nn::<Portable, 4, 2>(m, n, cols, a, b, ld, c) },
        }
    }

    /// `C[m, p] += A[m, cols] · B[p, cols]ᵀ` (A and B rows `ld` apart, C
    /// row-major `[m, p]`) with `isa`.
    #[allow(clippy::too_many_arguments)]
    pub fn product_nt(
        isa: Isa,
        m: usize,
        p: usize,
        cols: usize,
        a: &[f32],
        b: &[f32],
        ld: usize,
        c: &mut [f32],
    ) {
        assert!(
            cols.is_multiple_of(super::TILE_ALIGN) && cols <= ld,
            "product columns {cols} do not fit rows of {ld}"
        );
        assert!(a.len() >= m.saturating_sub(1) * ld + cols, "product operand too short");
        assert!(b.len() >= p.saturating_sub(1) * ld + cols, "product operand too short");
        assert!(c.len() >= m * p, "product result too short");
        match isa.0 {
            // SAFETY: extents checked above; an `Isa` exists only for an
            // instruction set the CPU has.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => unsafe { nt_avx512(m, p, cols, a, b, ld, c) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => unsafe { nt_avx2(m, p, cols, a, b, ld, c) },
            // SAFETY: extents checked above; portable code runs anywhere.
            Level::Portable => unsafe { nt::<Portable, 4, 4>(m, p, cols, a, b, ld, c) },
        }
    }
}

#[cfg(test)]
mod tests;
