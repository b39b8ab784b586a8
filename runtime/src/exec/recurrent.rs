//! The recurrence of a whole LSTM layer in one call: every time step's
//! product and gate arithmetic, forward ([`lstm_forward`]) and backward
//! ([`lstm_backward`]).
//!
//! Run as separate kernels, each step costs a pool hand-over per product
//! and per gate loop, and the gate loops re-read what the product just
//! wrote. The rows of a batch are independent in an LSTM, so here the batch
//! rows are cut into blocks by [`split`](super::pool::split) and each pool
//! task runs all the steps of its block, with no synchronisation between
//! steps: per step one single-threaded product with the weight packed once
//! per call ([`packed`](super::packed): the weight is the same at every
//! step, so it is laid out for the microkernel once, not at each of the
//! `T` products) into the task's scratch, then the gate arithmetic over the
//! block's rows in vector registers.
//!
//! The forward's product takes the input, the previous state and the bias
//! at once: each step's row `z = [x_t, h_prev, 1]` is kept in the result,
//! so no separate input projection runs before the recurrence, and the
//! weight gradient is `Σ zᵀ·dpre` over all rows and steps. The backward
//! can accumulate that sum itself, one product per step of the step's `z`
//! rows and `dpre` while both are in cache ([`packed::matmul_tn`]), rather
//! than leave the caller a GEMM that reads both back from memory; and when
//! the caller wants nothing else of it, the `[T, B, 6H]` result is not
//! stored at all ([`LstmGrads`]).
//!
//! The gate arithmetic uses the approximations of the compiler's JIT
//! kernels (`nnc_compiler::codegen::approx`: the same algorithms and
//! constants for `exp`, `sigmoid` and `tanh`, so the same bounds — relative
//! error 4e-7 for sigmoid and tanh — and the same special values), written
//! once over a lane trait (`Lane`) and compiled for AVX-512F, for AVX2
//! with FMA, and as portable scalar code (every CPU). All three compute the same bits for
//! every input (NaN results may differ in their payload only). The vector
//! loops take two registers of columns at a time (`Pair`: the same
//! operations on each, so the long dependency chains of `exp` and of the
//! divisions interleave; the forward's gate loop is bound by their latency,
//! not by its instructions' throughput), then one, then scalars.
//!
//! # Layout
//!
//! Batch `B`, steps `T`, hidden size `H`, input features `F` (may be 0);
//! `K = F + H + 1` and `L = 6H + K = 7H + F + 1`. All buffers are
//! row-major f32. The gate blocks of a pre-activation or a weight row are
//! in the order i, f, g, o (PyTorch's).
//!
//! - forward: `x [T, B, F]`, `w [4H, K]` (per gate row the columns
//!   `[W_ih (F) | W_hh (H) | bias (1)]`: PyTorch's `weight_ih`,
//!   `weight_hh` and the sum of its two biases), `h0, c0 [B, H]` →
//!   `y [T, B, L]`; all time-major (a step's rows are contiguous), per
//!   step and row the lanes `[h, c, i, f, g, o, x_t, h_prev, 1]`: the
//!   state, the gates (activated), and in the last `K` lanes the row
//!   `z = [x_t, h_prev, 1]` of the step's product `pre = z · wᵀ`, where
//!   `h_prev` is the previous processed step's `h` (`h0` at the first
//!   processed step);
//! - backward: `y` and the cotangents of its first `6H` lanes, `dh`,
//!   `dc [T, B, H]` and `dgates [T, B, 4H]` (each may be absent: zero; or
//!   hold some steps only, zero at the others: [`lstm_backward_steps`]),
//!   `w`, `c0` → `r [T, B, 6H]`, per step and row
//!   `[dpre (4H), dhp (H), dcp (H)]`: the gradient of the step's gate
//!   pre-activations, and the gradients reaching the previous step's `h`
//!   (through the product, `dpre · W_hh`) and `c` (`dc ⊙ f`). At the first
//!   processed step these are the gradients of `h0` and `c0`; and, when
//!   asked, the weight's gradient transposed, `Σ zᵀ · dpre` over rows and
//!   steps (`[K, 4H]`, or `[4H, K]` written transposed). The cotangents
//!   of the `z` lanes of `y` are the caller's: the gradient of `x_t` is
//!   `dpre · W_ih`.
//!
//! With `reverse`, steps are processed from position `T - 1` down to 0.
//!
//! # Determinism
//!
//! Each element of a product is one chain of fused multiply-adds in a fixed
//! order, whatever block of rows it falls in (see [`packed`](super::packed)),
//! and the gate arithmetic is per element: results are bit-identical from
//! run to run, whichever thread runs which block and however many blocks
//! there are, and the same on every instruction set. The weight's gradient
//! is a sum over rows, so its bits depend on the number of blocks (each
//! block sums its own rows, and the blocks' sums are added in block order):
//! the same for the same number of threads, as every other sum the
//! runtime splits among threads.
//!
//! # Scratch
//!
//! Each thread that runs a block keeps a buffer in a thread-local (the
//! step's product `[rows, 4H]`; or `dpre`, rows padded to whole panels,
//! and without `r` two `[rows, 2H]` slots for the `dhp, dcp` one step
//! passes to the next), and the calling thread the packed weight (`wᵀ`,
//! `[K, 4H]`, forward; `W_hh`, `[4H, H]`, backward) and the weight
//! gradient's sums of the blocks it does not write in place; all grow to
//! the largest call seen and are reused, so calls allocate nothing once the
//! pool's threads have seen the shape.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use nnc_compiler::codegen::approx::{
    EXP_NEG_LN2_HI, EXP_NEG_LN2_LO, EXP_POLY, EXP_ZERO, ROUND_SHIFTER, TANH_CLAMP, TANH_P, TANH_Q,
};

use super::gemm::{MatMut, MatRef};
use super::isa::{line_offset, prefetch_line, Cache, Isa, LINE_FLOATS};
use super::packed::{self, PackedB, Prefetch};
use super::pool::ThreadPool;

/// The extents of one LSTM layer's recurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmShape {
    /// Rows of the batch, `B`.
    pub batch: usize,
    /// Time steps, `T`.
    pub steps: usize,
    /// The hidden size, `H` (the gates have `4H` pre-activations).
    pub hidden: usize,
    /// Input features per step and row, `F` (may be 0).
    pub features: usize,
    /// Steps are processed from position `T - 1` down to 0.
    pub reverse: bool,
}

/// Element counts of a shape's buffers, checked for overflow.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    /// `K = F + H + 1`: columns of `w`, lanes of a step's product row `z`.
    columns: usize,
    /// `T·B·F`: `x`.
    inputs: usize,
    /// `4H·K`: `w`.
    weight: usize,
    /// `B·H`: `h0`, `c0`.
    state: usize,
    /// `T·B·H`: `dh`, `dc`.
    states: usize,
    /// `T·B·4H`: `dgates`.
    gates: usize,
    /// `T·B·L`: `y`.
    lanes: usize,
    /// `T·B·6H`: `r`.
    grads: usize,
}

impl LstmShape {
    fn sizes(self) -> Result<Sizes, String> {
        let (b, t, h, f) = (self.batch, self.steps, self.hidden, self.features);
        let sizes = (|| {
            let bt = b.checked_mul(t)?;
            let columns = f.checked_add(h)?.checked_add(1)?;
            let width = h.checked_mul(6)?.checked_add(columns)?;
            Some(Sizes {
                columns,
                inputs: bt.checked_mul(f)?,
                weight: h.checked_mul(4)?.checked_mul(columns)?,
                state: b.checked_mul(h)?,
                states: bt.checked_mul(h)?,
                gates: bt.checked_mul(h.checked_mul(4)?)?,
                lanes: bt.checked_mul(width)?,
                grads: bt.checked_mul(h.checked_mul(6)?)?,
            })
        })();
        sizes.ok_or_else(|| format!("LSTM of {self:?}: buffer sizes overflow"))
    }

    /// The element counts of a call's operands and results, in argument
    /// order: forward `[x, w, h0, c0, y]` = `[T·B·F, 4H·K, B·H, B·H,
    /// T·B·L]`, backward `[y, dh, dc, dgates, w, c0, r, dw]` = `[T·B·L,
    /// T·B·H, T·B·H, T·B·4H, 4H·K, B·H, T·B·6H, K·4H]` (`K = F + H + 1`,
    /// `L = 7H + F + 1`; `dw` the weight's gradient of [`LstmGrads`]);
    /// `Err` when they overflow.
    pub fn lengths(self, backward: bool) -> Result<Vec<usize>, String> {
        let s = self.sizes()?;
        Ok(if backward {
            vec![s.lanes, s.states, s.states, s.gates, s.weight, s.state, s.grads, s.weight]
        } else {
            vec![s.inputs, s.weight, s.state, s.state, s.lanes]
        })
    }

    /// The position of the `s`-th processed step (`s < steps`).
    fn position(self, s: usize) -> usize {
        if self.reverse {
            self.steps - 1 - s
        } else {
            s
        }
    }
}

/// Checks that each `(name, slice length, expected)` matches.
fn check_lengths(shape: LstmShape, buffers: &[(&str, usize, usize)]) -> Result<(), String> {
    for &(name, len, expected) in buffers {
        if len != expected {
            return Err(format!("LSTM of {shape:?}: `{name}` holds {len} elements, expected {expected}"));
        }
    }
    Ok(())
}

thread_local! {
    /// Each thread's `[rows, 4H]` scratch for the tasks it runs: the
    /// step's product (forward) or `dpre` (backward) of the task's rows at
    /// the current step. It grows to the largest block seen and is reused,
    /// so a thread allocates only when the block grows.
    static GATES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's packed weight of a call, read by the call's
    /// tasks: `wᵀ` (`[K, 4H]`) for a forward call, `W_hh` (`[4H, H]`) for
    /// a backward one.
    static WEIGHT: RefCell<PackedB> = RefCell::new(PackedB::new());
}

/// Runs `f` with the calling thread's [`PackedB`] holding the `k × n`
/// matrix `b` (a fresh one if the cell is already borrowed, which the
/// callers of this module never cause); `Err` if `b` does not fit its
/// slice.
fn with_packed<R>(
    k: usize,
    n: usize,
    b: MatRef,
    f: impl FnOnce(&PackedB) -> Result<R, String>,
) -> Result<R, String> {
    WEIGHT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut packed) => {
            packed.pack_into(k, n, b)?;
            f(&packed)
        }
        Err(_) => f(&PackedB::pack(k, n, b)?),
    })
}

/// Runs `f` with `cell`'s buffer grown to at least `len` floats (a fresh one
/// if the cell is already borrowed, which the tasks of this module never
/// cause).
fn with_buffer<R>(
    cell: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    cell.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            f(&mut buffer[..len])
        }
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// The work of one row block: `(block, rows, scratch)`.
type BlockTask<'a> = dyn Fn(usize, Range<usize>, &mut [f32]) -> Result<(), String> + Sync + 'a;

/// Runs `task(part, rows, scratch)` for every row block of
/// `split(batch, parts)` on the pool, each with its thread's scratch of
/// at least `gates` floats per row, starting on a cache line, and returns
/// the error of the lowest failing block.
fn run_blocks(
    pool: &ThreadPool,
    batch: usize,
    parts: usize,
    gates: usize,
    task: &BlockTask,
) -> Result<(), String> {
    // Blocks beyond the batch would be empty (`split` gives them no rows),
    // so at most `batch` tasks run.
    let parts = parts.clamp(1, batch.max(1));
    let first_error: Mutex<Option<(usize, String)>> = Mutex::new(None);
    pool.run(parts, &|part| {
        let rows = block(batch, parts, part);
        let result = with_buffer(&GATES, rows.len() * gates + LINE_FLOATS, |scratch| {
            // The scratch from a cache line's start: its rows are whole lines
            // (`4H` floats, or `dpre_stride`), so that no vector load or
            // store of a row spans two lines — on Intel's cores such a split
            // access costs twice, which took the weight gradient's product
            // (reading `dpre`) from 202 to 176 GFLOP/s in the `packed` bench.
            let skip = line_offset(scratch);
            task(part, rows, &mut scratch[skip..])
        });
        if let Err(message) = result {
            let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
            if first.as_ref().is_none_or(|&(p, _)| part < p) {
                *first = Some((part, message));
            }
        }
    })?;
    match first_error.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some((_, message)) => Err(message),
        None => Ok(()),
    }
}

/// Block `part` of [`split`](super::pool::split)`(len, parts)`, computed
/// without building the whole list.
fn block(len: usize, parts: usize, part: usize) -> Range<usize> {
    let (base, extra) = (len / parts, len % parts);
    let start = part * base + part.min(extra);
    start..start + base + usize::from(part < extra)
}

/// The output buffer, written by several tasks at once in disjoint blocks of
/// rows.
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks only obtain disjoint ranges of the buffer through
// `SharedRows::range` (its contract), so sharing the address between
// threads lets no two of them access one element.
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(data: &mut [f32]) -> SharedRows {
        SharedRows { ptr: data.as_mut_ptr(), len: data.len() }
    }

    /// Elements `range` of the buffer.
    ///
    /// # Safety
    /// The buffer `new` took is still borrowed (by the call that made this
    /// value), `range` lies within it, and no other range obtained while
    /// the returned slice lives overlaps it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, range: Range<usize>) -> &mut [f32] {
        assert!(range.start <= range.end && range.end <= self.len, "row block outside the buffer");
        // SAFETY: in bounds (asserted) of a live exclusive borrow, and
        // disjoint from every other live range (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

/// The forward recurrence: `y [T, B, L]` (lanes `[h, c, i, f, g, o, x_t,
/// h_prev, 1]` per step and row) from `x [T, B, F]`, `w [4H, K]` (columns
/// `[W_ih | W_hh | bias]`), `h0` and `c0` (`[B, H]`), following the
/// module's layout. Per processed step, with `(h_prev, c_prev)` the
/// previous processed step's state or `(h0, c0)`:
///
/// ```text
/// z = [x[t, b], h_prev, 1];  pre = z · wᵀ
/// i, f, g, o = σ(pre_i), σ(pre_f), tanh(pre_g), σ(pre_o)
/// c = f·c_prev + i·g;  h = o·tanh(c)
/// ```
///
/// The rows are cut into `parts` blocks by
/// [`split`](super::pool::split)`(B, parts)`, run as tasks of `pool`; each
/// step's product of a block is one single-threaded product with `wᵀ`,
/// packed once per call, reading `z` where it lies in `y` (a task writes
/// the `x_t` and `1` lanes of its rows before the step's product, and the
/// gate arithmetic writes `h` into the `h_prev` lanes of the next processed
/// step as well as into the `h` lanes). The result depends only on the
/// inputs. Slices whose lengths do not match `shape` are an `Err` (nothing
/// is written); an error of a product is returned after every task has
/// finished (`y` then holds partial results).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    pool: &ThreadPool,
    shape: LstmShape,
    parts: usize,
    x: &[f32],
    w: &[f32],
    h0: &[f32],
    c0: &[f32],
    y: &mut [f32],
) -> Result<(), String> {
    let sizes = shape.sizes()?;
    check_lengths(
        shape,
        &[
            ("x", x.len(), sizes.inputs),
            ("w", w.len(), sizes.weight),
            ("h0", h0.len(), sizes.state),
            ("c0", c0.len(), sizes.state),
            ("y", y.len(), sizes.lanes),
        ],
    )?;
    if sizes.lanes == 0 {
        return Ok(());
    }
    let isa = Isa::host();
    let out = SharedRows::new(y);
    let g = 4 * shape.hidden;
    let wt = MatRef::row_major(w, sizes.columns).t();
    with_packed(sizes.columns, g, wt, |wt| {
        let task = |_: usize, rows: Range<usize>, pre: &mut [f32]| {
            forward_block(isa, shape, wt, x, h0, c0, &out, rows, pre)
        };
        run_blocks(pool, shape.batch, parts, g, &task)
    })
}

/// [`lstm_forward`] for the batch rows `rows`: it reads and writes only
/// these rows of `y` (through `out`), at every step.
#[allow(clippy::too_many_arguments)]
fn forward_block(
    isa: Isa,
    shape: LstmShape,
    wt: &PackedB,
    x: &[f32],
    h0: &[f32],
    c0: &[f32],
    out: &SharedRows,
    rows: Range<usize>,
    pre: &mut [f32],
) -> Result<(), String> {
    let LstmShape { batch, steps, hidden: h, features: f, .. } = shape;
    // `z` starts at lane `6H` of a row of `y`: `x_t` at `z`, `h_prev` at
    // `z + F`, the 1 at `z + F + H`.
    let (g, z, k) = (4 * h, 6 * h, f + h + 1);
    let l = z + k;
    let n = rows.len();
    let pre = &mut pre[..n * g];
    let states = rows.start * h..rows.end * h;
    let (h0, c0) = (&h0[states.clone()], &c0[states]);
    // Rows `rows` of step `t` of a `[T, B, lanes]` buffer.
    let step_rows = |t: usize, lanes: usize| (t * batch + rows.start) * lanes..(t * batch + rows.end) * lanes;
    for s in 0..steps {
        let t = shape.position(s);
        let prev = s.checked_sub(1).map(|s| shape.position(s));
        let next = (s + 1 < steps).then(|| shape.position(s + 1));
        // SAFETY: `y` is borrowed for the call; this task alone touches
        // rows `rows` of any step (blocks are disjoint), and the rows of
        // step `t`, of the previous processed step and of the next one are
        // disjoint ranges (three different positions).
        let (y_t, y_prev, y_next) = unsafe {
            (
                out.range(step_rows(t, l)),
                prev.map(|tp| &*out.range(step_rows(tp, l))),
                next.map(|tn| out.range(step_rows(tn, l))),
            )
        };
        // The step's `z` rows: `x_t` and the 1 (and `h0` at the first
        // processed step; later the previous step's gate loop wrote `h`).
        let x_t = &x[step_rows(t, f)];
        for (q, row) in y_t.chunks_exact_mut(l).enumerate() {
            let zq = &mut row[z..];
            zq[..f].copy_from_slice(&x_t[q * f..][..f]);
            if s == 0 {
                zq[f..f + h].copy_from_slice(&h0[q * h..][..h]);
            }
            zq[f + h] = 1.0;
        }
        let a = MatRef { data: y_t, offset: z, row_stride: l as isize, col_stride: 1 };
        packed::matmul(n, a, wt, MatMut::row_major(pre, g))?;
        let (c_prev, c_stride) = match y_prev {
            None => (c0.as_ptr(), h),
            Some(y_prev) => (y_prev.as_ptr().wrapping_add(h), l),
        };
        let step = ForwardGates {
            rows: n,
            hidden: h,
            pre: pre.as_ptr(),
            c_prev,
            c_stride,
            out: y_t.as_mut_ptr(),
            out_stride: l,
            h_next: y_next.map(|y_next| y_next.as_mut_ptr().wrapping_add(z + f)),
        };
        // SAFETY: row `r < n` of each operand lies in its slice: `pre`
        // holds `n·4H`; `c0` holds `n·H`, or `c_prev` reads `H` of each
        // `L`-lane row of the previous step's rows; `out` writes the first
        // `6H` lanes of the `n` rows of `L` of `y_t`, and `h_next` the `H`
        // lanes `[6H + F, 7H + F)` of the `n` rows of `L` of the next
        // step's rows: neither overlaps the other or a read range (other
        // steps, other lanes or other buffers). Nothing else accesses these
        // rows of `y` during the call.
        unsafe { forward_gates(isa, &step) };
    }
    Ok(())
}

/// The backward recurrence: `r [T, B, 6H]` (lanes `[dpre, dhp, dcp]` per
/// step and row) from the forward result `y [T, B, L]`, the cotangents of
/// its first `6H` lanes (`dh`, `dc`: `[T, B, H]`, `dgates`: `[T, B, 4H]`;
/// `None` is zero), `w [4H, K]` and `c0 [B, H]`, following the module's
/// layout (the `z` lanes of `y` are not read). Steps run in the reverse of
/// the processing order; with `(dhp, dcp)` those of the step processed
/// after `t` in the forward recurrence (zero for the last one) and
/// `c_prev` the previous processed step's `c` (or `c0`):
///
/// ```text
/// dh_t = dh + dhp_next;  dc_t = dc + dcp_next + dh_t·o·(1 − tanh²(c))
/// dpre_i = (dc_t·g + dgates_i)·i·(1 − i)    dpre_f = (dc_t·c_prev + dgates_f)·f·(1 − f)
/// dpre_g = (dc_t·i + dgates_g)·(1 − g²)     dpre_o = (dh_t·tanh(c) + dgates_o)·o·(1 − o)
/// dhp = dpre · W_hh;  dcp = dc_t·f
/// ```
///
/// with `W_hh` the columns `F..F + H` of `w`. Rows, tasks, errors and
/// determinism as [`lstm_forward`]; per step one product with `W_hh`,
/// packed once per call, computes `dhp` from a copy of `dpre` in the
/// task's scratch.
///
/// What is written is the caller's choice ([`LstmGrads`]): `r`, and the
/// weight's gradient `Σ zᵀ·dpre` over all rows and steps, accumulated step
/// by step while the step's `dpre` and `z` rows are in cache (one product
/// per step and block, `[K, rows]·[rows, 4H]`, into a `[K, 4H]` sum per
/// block; the blocks' sums are added in block order after the last step).
/// Without `r`, the `dhp` and `dcp` that a step passes to the next stay in
/// the task's scratch and the `[T, B, 6H]` result is never stored. Each
/// element of the weight's gradient is one chain of fused multiply-adds
/// per block, over the block's rows and the steps in processing order, so
/// its bits depend on the number of blocks (the same for the same `parts`
/// and batch), not on the thread that runs a block nor on the instruction
/// set.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    pool: &ThreadPool,
    shape: LstmShape,
    parts: usize,
    y: &[f32],
    cotangents: [Option<&[f32]>; 3],
    w: &[f32],
    c0: &[f32],
    grads: LstmGrads,
) -> Result<(), String> {
    let all = 0..shape.steps;
    let steps = [all.clone(), all.clone(), all];
    lstm_backward_steps(pool, shape, parts, y, cotangents, steps, w, c0, grads)
}

/// [`lstm_backward`] with cotangents that hold some steps only: `dh`,
/// `dc` and `dgates` hold the steps (positions on the time axis)
/// `steps[0]`, `steps[1]` and `steps[2]` (`[n, B, H]` or `[n, B, 4H]` for
/// `n` steps), and are zero at the others — as a layer whose only result
/// read is its last step's `h` has `dh` at that step alone. The result is
/// the same bits as [`lstm_backward`]'s with the cotangents filled with
/// `+0` to all steps; a range past the last step is an `Err`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward_steps(
    pool: &ThreadPool,
    shape: LstmShape,
    parts: usize,
    y: &[f32],
    [dh, dc, dgates]: [Option<&[f32]>; 3],
    steps: [Range<usize>; 3],
    w: &[f32],
    c0: &[f32],
    grads: LstmGrads,
) -> Result<(), String> {
    let sizes = shape.sizes()?;
    if let Some(r) = steps.iter().find(|r| r.start > r.end || r.end > shape.steps) {
        return Err(format!("cotangent steps {r:?} lie outside the {} steps", shape.steps));
    }
    // The elements of `n` of a cotangent's steps (`sizes` has all of them).
    let part = |all: usize, r: &Range<usize>| all.checked_div(shape.steps).unwrap_or(0) * r.len();
    let mut lengths =
        vec![("y", y.len(), sizes.lanes), ("w", w.len(), sizes.weight), ("c0", c0.len(), sizes.state)];
    for (name, d, len) in [
        ("dh", dh, part(sizes.states, &steps[0])),
        ("dc", dc, part(sizes.states, &steps[1])),
        ("dgates", dgates, part(sizes.gates, &steps[2])),
        ("r", grads.lanes.as_deref(), sizes.grads),
        ("the weight's gradient", grads.weight.as_deref(), sizes.weight),
    ] {
        if let Some(d) = d {
            lengths.push((name, d.len(), len));
        }
    }
    check_lengths(shape, &lengths)?;
    let LstmGrads { lanes: r, weight: dw, weight_transposed } = grads;
    if sizes.grads == 0 {
        // No rows or no steps: nothing reaches the weight.
        if let Some(dw) = dw {
            dw.fill(0.0);
        }
        return Ok(());
    }
    let isa = Isa::host();
    let blocks = parts.clamp(1, shape.batch);
    let keep_lanes = r.is_some();
    let out = r.map(SharedRows::new);
    let [dh_steps, dc_steps, dgates_steps] = steps;
    let cotangents = Cotangents {
        dh: dh.map(|d| (d, dh_steps)),
        dc: dc.map(|d| (d, dc_steps)),
        dgates: dgates.map(|d| (d, dgates_steps)),
    };
    let w_hh = MatRef { data: w, offset: shape.features, row_stride: sizes.columns as isize, col_stride: 1 };
    // Per row of a block: `dpre` (its rows padded for the weight
    // gradient's product), and without `r` two `[dhp, dcp]` slots.
    let per_row = dpre_stride(shape.hidden) + if keep_lanes { 0 } else { 4 * shape.hidden };
    // The blocks' sums: block 0's in the result (unless the result is
    // written transposed), the others in the calling thread's partial sums.
    let in_result = !weight_transposed;
    let partial_len = if dw.is_some() { (blocks - usize::from(in_result)) * sizes.weight } else { 0 };
    let mut dw = dw;
    with_partial_sums(partial_len, |partials| {
        let (head, rest) = partials.split_at_mut(if in_result { 0 } else { sizes.weight });
        let sums = dw.as_deref_mut().map(|dw| WeightSums {
            first: SharedRows::new(if in_result { dw } else { head }),
            rest: SharedRows::new(rest),
        });
        with_packed(4 * shape.hidden, shape.hidden, w_hh, |w_hh| {
            let task = |part: usize, rows: Range<usize>, scratch: &mut [f32]| {
                // SAFETY: block `part` alone takes its sum (the first, or
                // `part - 1` of the rest): disjoint ranges of live buffers.
                let sum = sums.as_ref().map(|sums| unsafe { sums.of_block(part, sizes.weight) });
                let block =
                    BackwardBlock { isa, shape, w_hh, y, cotangents: &cotangents, c0, out: out.as_ref() };
                block.run(rows, scratch, sum)
            };
            run_blocks(pool, shape.batch, blocks, per_row, &task)
        })?;
        if let Some(sums) = &sums {
            // SAFETY: the tasks have finished; these are the only views of
            // the two buffers now (`first` is `dw` itself, or lies in the
            // partial sums when `dw` is written transposed).
            let (first, rest) =
                unsafe { (sums.first.range(0..sums.first.len), sums.rest.range(0..sums.rest.len)) };
            for partial in rest.chunks_exact(sizes.weight) {
                for (d, p) in first.iter_mut().zip(partial) {
                    *d += p;
                }
            }
            if let (false, Some(dw)) = (in_result, dw) {
                transpose(first, sizes.columns, 4 * shape.hidden, dw);
            }
        }
        Ok(())
    })
}

/// `to[j·rows + i] = from[i·cols + j]`: the `rows × cols` row-major `from`
/// transposed, in square tiles (both sides stay in cache).
fn transpose(from: &[f32], rows: usize, cols: usize, to: &mut [f32]) {
    const TILE: usize = 16;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..rows.min(i0 + TILE) {
                for j in j0..cols.min(j0 + TILE) {
                    to[j * rows + i] = from[i * cols + j];
                }
            }
        }
    }
}

/// The results of [`lstm_backward`] the caller wants.
#[derive(Debug, Default)]
pub struct LstmGrads<'a> {
    /// `r [T, B, 6H]`: per step and row `[dpre, dhp, dcp]`.
    pub lanes: Option<&'a mut [f32]>,
    /// The weight's gradient, transposed: `Σ zᵀ·dpre` over all rows and
    /// steps, `[K, 4H]` (`K = F + H + 1`; the gradient of `w [4H, K]` is
    /// its transpose).
    pub weight: Option<&'a mut [f32]>,
    /// `weight` is written as `[4H, K]`, the layout of `w` itself.
    pub weight_transposed: bool,
}

/// The row stride of a block's `dpre` scratch for hidden size `h`: `4H`
/// rounded up to whole [`packed::NR`]-column panels, which the weight
/// gradient's product reads, and 16 floats more, so that the rows of a
/// panel do not all fall in the same few sets of L1 (at `4H = 512`, rows
/// 2 KB apart would share 4 of its 64 sets; padded, the `recurrent`
/// bench's backward with the weight gradient takes 5.8 ms instead of 6.3).
fn dpre_stride(h: usize) -> usize {
    (4 * h).next_multiple_of(packed::NR) + 16
}

/// The weight gradient's sums of a backward call: block 0's in `first`
/// (the result itself, or the first of the calling thread's partial sums
/// when the result is written transposed), block `p > 0`'s in
/// `rest[(p − 1)·len..p·len]`.
struct WeightSums {
    first: SharedRows,
    rest: SharedRows,
}

impl WeightSums {
    /// Block `part`'s sum, `len` floats.
    ///
    /// # Safety
    /// As [`SharedRows::range`]: no other live view of the same sum.
    #[allow(clippy::mut_from_ref)]
    unsafe fn of_block(&self, part: usize, len: usize) -> &mut [f32] {
        // SAFETY: the contract.
        unsafe {
            match part.checked_sub(1) {
                None => self.first.range(0..len),
                Some(p) => self.rest.range(p * len..(p + 1) * len),
            }
        }
    }
}

thread_local! {
    /// The calling thread's sums of the weight gradient of the blocks that
    /// do not sum into the result, grown to the largest call seen and
    /// reused.
    static PARTIALS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the calling thread's partial sums grown to `len` floats,
/// starting on a cache line (as the blocks' scratch: rows of `4H` floats
/// are then whole lines).
fn with_partial_sums<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    with_buffer(&PARTIALS, len + LINE_FLOATS, |sums| {
        let skip = line_offset(sums);
        f(&mut sums[skip..skip + len])
    })
}

/// The cotangents of the lanes of `y` ([`lstm_backward_steps`]), each
/// with the steps it holds; `None`, and any other step, is zero.
struct Cotangents<'a> {
    dh: Option<(&'a [f32], Range<usize>)>,
    dc: Option<(&'a [f32], Range<usize>)>,
    dgates: Option<(&'a [f32], Range<usize>)>,
}

/// What the blocks of one [`lstm_backward`] call share.
struct BackwardBlock<'a> {
    isa: Isa,
    shape: LstmShape,
    /// The `[4H, H]` recurrent weight.
    w_hh: &'a PackedB,
    y: &'a [f32],
    cotangents: &'a Cotangents<'a>,
    c0: &'a [f32],
    /// `r`, when it is stored.
    out: Option<&'a SharedRows>,
}

impl BackwardBlock<'_> {
    /// [`lstm_backward`] for the batch rows `rows`: it writes only these
    /// rows of `r` (when stored), at every step, and adds their share of
    /// the weight's gradient into `sum` (`[K, 4H]`, overwritten at the
    /// first step) when present. `scratch` holds `rows.len()` rows of
    /// [`dpre_stride`] floats, and without `r` `4H` more per row.
    fn run(
        &self,
        rows: Range<usize>,
        scratch: &mut [f32],
        mut sum: Option<&mut [f32]>,
    ) -> Result<(), String> {
        let LstmShape { batch, steps, hidden: h, features: f, .. } = self.shape;
        let (g, l, lr, k) = (4 * h, 7 * h + f + 1, 6 * h, f + h + 1);
        let n = rows.len();
        let ld = dpre_stride(h);
        let (dpre, slots) = scratch.split_at_mut(n * ld);
        let c0 = &self.c0[rows.start * h..rows.end * h];
        // Rows `rows` of step `t` of a `[T, B, lanes]` buffer.
        let step_rows =
            |t: usize, lanes: usize| (t * batch + rows.start) * lanes..(t * batch + rows.end) * lanes;
        for s in (0..steps).rev() {
            let t = self.shape.position(s);
            let (c_prev, c_stride) = match s.checked_sub(1).map(|s| self.shape.position(s)) {
                None => (c0.as_ptr(), h),
                Some(tp) => (self.y[step_rows(tp, l)].as_ptr().wrapping_add(h), l),
            };
            // Where the step writes `dpre` (besides the scratch), and its
            // `[dhp, dcp]`, and where the next processed step wrote them.
            let (out, state, next, state_stride) = match self.out {
                // SAFETY: `r` is borrowed for the call; this task alone
                // touches rows `rows` of any step (blocks are disjoint),
                // and the rows of step `t` and of the next processed step
                // `≠ t` are disjoint.
                Some(r) => unsafe {
                    let next = (s + 1 < steps)
                        .then(|| r.range(step_rows(self.shape.position(s + 1), lr)).as_ptr().wrapping_add(g));
                    let r_t = r.range(step_rows(t, lr)).as_mut_ptr();
                    (Some(r_t), r_t.wrapping_add(g), next, lr)
                },
                None => {
                    // Two `[n, 2H]` slots, used in turn.
                    let (a, b) = slots.split_at_mut(n * 2 * h);
                    let (this, other) = if s % 2 == 0 { (a, b) } else { (b, a) };
                    (None, this.as_mut_ptr(), (s + 1 < steps).then_some(other.as_ptr()), 2 * h)
                }
            };
            // Rows `rows` of step `t` of a cotangent holding steps `held`.
            let read = |d: &Option<(&[f32], Range<usize>)>, lanes: usize| match d {
                Some((d, held)) if held.contains(&t) => Some(d[step_rows(t - held.start, lanes)].as_ptr()),
                _ => None,
            };
            let y_t = &self.y[step_rows(t, l)];
            let step = BackwardGates {
                rows: n,
                hidden: h,
                y: y_t.as_ptr(),
                y_stride: l,
                y_after: s.checked_sub(1).map(|sp| self.y[step_rows(self.shape.position(sp), l)].as_ptr()),
                c_prev,
                c_stride,
                dh: read(&self.cotangents.dh, h),
                dc: read(&self.cotangents.dc, h),
                dgates: read(&self.cotangents.dgates, g),
                next,
                out,
                state,
                state_stride,
                dpre: dpre.as_mut_ptr(),
                dpre_stride: ld,
            };
            // SAFETY: row `q < n` of each operand lies in its slice: `y`
            // holds the block's rows of step `t`, `L` each (of which the
            // first `6H` are read); `out` the block's rows of step `t` of
            // `r` (`6H` each), and `state` and `next` rows of `2H` at
            // `state_stride`: lanes `[4H, 6H)` of the block's rows of step
            // `t` and of the next step of `r`, or the two scratch slots;
            // `dh`, `dc` (`H`) and `dgates` (`4H`) the block's rows of step
            // `t`; `c_prev` reads `H` of each `L`-lane row of the previous
            // step of `y`, or of `c0`'s `n·H`; `dpre` holds `n` rows of
            // `ld ≥ 4H`. The written ranges overlap no read range (other
            // steps, other slots or other buffers). Nothing else accesses
            // these rows of `r` or the scratch during the call.
            unsafe { backward_gates(self.isa, &step) };
            let dpre_rows = MatRef { data: dpre, offset: 0, row_stride: ld as isize, col_stride: 1 };
            // SAFETY: `state` is `n` rows of `2H` at `state_stride` (above);
            // the product writes the first `H` of each.
            let state_rows = unsafe { std::slice::from_raw_parts_mut(state, (n - 1) * state_stride + 2 * h) };
            let c = MatMut { data: state_rows, offset: 0, row_stride: state_stride as isize, col_stride: 1 };
            // What reaches `h_prev` of the first processed step is the
            // gradient of `h0`, part of `r`: without `r`, nobody reads it.
            if self.out.is_some() || s > 0 {
                packed::matmul(n, dpre_rows, self.w_hh, c)?;
            }
            if let Some(sum) = sum.as_deref_mut() {
                let z = MatRef { data: y_t, offset: 6 * h, row_stride: l as isize, col_stride: 1 };
                let c = MatMut { data: sum, offset: 0, row_stride: g as isize, col_stride: 1 };
                // The next step's rows come from memory into L2 while this
                // product computes: lanes `[2H, L)` (its gates and `z`;
                // its `c` lanes are this step's `c_prev`, already read).
                let mut next = match s.checked_sub(1) {
                    Some(sp) => {
                        let rows = self.y[step_rows(self.shape.position(sp), l)].as_ptr();
                        Prefetch::rows(rows.wrapping_add(2 * h), n, l, l - 2 * h)
                    }
                    _ => Prefetch::none(),
                };
                packed::matmul_tn(k, g, n, z, dpre_rows, c, s + 1 < steps, &mut next)?;
            }
        }
        Ok(())
    }
}

/// The operands of one forward step's gate arithmetic over a block of
/// rows. Row `r` reads `pre + r·4H` (`4H`: the step's product) and
/// `c_prev + r·c_stride` (`H`), and writes `out + r·out_stride` (`6H`:
/// `[h, c, i, f, g, o]`) and, when present, `h_next + r·out_stride` (`H`:
/// `h` again, the next processed step's `h_prev`).
struct ForwardGates {
    rows: usize,
    hidden: usize,
    pre: *const f32,
    c_prev: *const f32,
    c_stride: usize,
    out: *mut f32,
    out_stride: usize,
    h_next: Option<*mut f32>,
}

/// The operands of one backward step's gate arithmetic over a block of
/// rows. Row `q` reads `y + q·y_stride` (`6H`: the step's lanes
/// `[h, c, i, f, g, o]`), `c_prev + q·c_stride` (`H`), the cotangents
/// present, `dh + q·H`, `dc + q·H` (`H`) and `dgates + q·4H` (`4H`), and,
/// unless this is the last processed step, `next + q·state_stride` (`2H`:
/// the next step's `dhp` and `dcp`); it writes `dpre` to `dpre +
/// q·dpre_stride` (`4H`) and, when present, to `out + q·6H` (`4H`), and
/// `dcp` to `state + q·state_stride + H` (`H`).
struct BackwardGates {
    rows: usize,
    hidden: usize,
    y: *const f32,
    y_stride: usize,
    /// The next processed step's rows of `y` (as `y`), which the last rows
    /// prefetch; only an address, never read here.
    y_after: Option<*const f32>,
    c_prev: *const f32,
    c_stride: usize,
    dh: Option<*const f32>,
    dc: Option<*const f32>,
    dgates: Option<*const f32>,
    next: Option<*const f32>,
    out: Option<*mut f32>,
    state: *mut f32,
    state_stride: usize,
    dpre: *mut f32,
    dpre_stride: usize,
}

/// The gate arithmetic of one forward step with `isa`.
///
/// # Safety
/// Every row's ranges described at [`ForwardGates`] lie in live
/// allocations, the written ranges overlap no read range and no other
/// written range, and nothing else accesses the written ranges during the
/// call.
unsafe fn forward_gates(isa: Isa, step: &ForwardGates) {
    match isa {
        // SAFETY: the caller's contract; an `Isa` names only instruction
        // sets the CPU has (`Isa::host`, `Isa::available`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::forward_gates_avx512(step) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::forward_gates_avx2(step) },
        // SAFETY: the caller's contract; scalar code runs on any CPU.
        Isa::Portable => unsafe { forward_gates_with::<f32>(step) },
    }
}

/// The gate arithmetic of one backward step with `isa`.
///
/// # Safety
/// As [`forward_gates`], for the ranges described at [`BackwardGates`].
unsafe fn backward_gates(isa: Isa, step: &BackwardGates) {
    match isa {
        // SAFETY: the caller's contract; an `Isa` names only instruction
        // sets the CPU has (`Isa::host`, `Isa::available`).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::backward_gates_avx512(step) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::backward_gates_avx2(step) },
        // SAFETY: the caller's contract; scalar code runs on any CPU.
        Isa::Portable => unsafe { backward_gates_with::<f32>(step) },
    }
}

/// [`forward_gates`] with lanes `S` (and scalars for the columns left
/// over).
///
/// # Safety
/// As [`forward_gates`]; the CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn forward_gates_with<S: Lane>(step: &ForwardGates) {
    let h = step.hidden;
    for r in 0..step.rows {
        // SAFETY: row `r`'s ranges lie in their allocations (the contract),
        // and every column `j < h` addressed below is within them.
        unsafe {
            let row = ForwardRow {
                h,
                pre: step.pre.add(r * 4 * h),
                c_prev: step.c_prev.add(r * step.c_stride),
                out: step.out.add(r * step.out_stride),
                h_next: step.h_next.map(|p| p.add(r * step.out_stride)),
            };
            let mut j = 0;
            while j + 2 * S::WIDTH <= h {
                forward_lanes::<Pair<S>>(&row, j);
                j += 2 * S::WIDTH;
            }
            while j + S::WIDTH <= h {
                forward_lanes::<S>(&row, j);
                j += S::WIDTH;
            }
            while j < h {
                forward_lanes::<f32>(&row, j);
                j += 1;
            }
        }
    }
}

/// One row of [`ForwardGates`], its pointers offset to the row.
struct ForwardRow {
    h: usize,
    pre: *const f32,
    c_prev: *const f32,
    out: *mut f32,
    h_next: Option<*mut f32>,
}

/// Columns `j..j + S::WIDTH` of one row of a forward step.
///
/// # Safety
/// The columns lie in the row's ranges of [`ForwardGates`] (`j + WIDTH ≤
/// H`); the CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn forward_lanes<S: Lane>(row: &ForwardRow, j: usize) {
    let h = row.h;
    // SAFETY: the contract: every offset below is a column `< H` of an
    // `H`-lane block of a `4H`, `H` or `6H` range of the row.
    unsafe {
        let i = sigmoid(lane::<S>(row.pre, h, 0, j));
        let f = sigmoid(lane::<S>(row.pre, h, 1, j));
        let g = tanh(lane::<S>(row.pre, h, 2, j));
        let o = sigmoid(lane::<S>(row.pre, h, 3, j));
        let c = f.mul_add(lane(row.c_prev, h, 0, j), i.mul(g));
        let hv = o.mul(tanh(c));
        for (k, v) in [hv, c, i, f, g, o].into_iter().enumerate() {
            v.store(row.out.add(k * h + j));
        }
        if let Some(h_next) = row.h_next {
            hv.store(h_next.add(j));
        }
    }
}

/// [`backward_gates`] with lanes `S` (and scalars for the columns left
/// over).
///
/// # Safety
/// As [`backward_gates`]; the CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn backward_gates_with<S: Lane>(step: &BackwardGates) {
    let h = step.hidden;
    for q in 0..step.rows {
        // The rows of `y` come from memory (the forward wrote all steps
        // long before): ask for a later row's lanes `[H, L)` (the gates,
        // and the `z` lanes the weight gradient's product reads next),
        // across the page boundaries the hardware's prefetchers stop at.
        // The row is one of this step's or of the next processed step's
        // rows (the prefetch would be harmless anywhere, but stays in `y`).
        let ahead = q + PREFETCH_ROWS;
        let later = if ahead < step.rows {
            Some(step.y.wrapping_add(ahead * step.y_stride))
        } else {
            step.y_after
                .filter(|_| ahead - step.rows < step.rows)
                .map(|p| p.wrapping_add((ahead - step.rows) * step.y_stride))
        };
        if let Some(later) = later {
            prefetch(later.wrapping_add(h), step.y_stride - h);
        }
        // …and its `c_prev` (the previous step's `c` lanes, also from
        // memory; `c0` is small and in cache) and cotangents.
        if ahead < step.rows {
            prefetch(step.c_prev.wrapping_add(ahead * step.c_stride), h);
            for (d, lanes) in [(step.dh, h), (step.dc, h), (step.dgates, 4 * h)] {
                if let Some(d) = d {
                    prefetch(d.wrapping_add(ahead * lanes), lanes);
                }
            }
        }
        // SAFETY: row `q`'s ranges lie in their allocations (the contract),
        // and every column `j < h` addressed below is within them.
        unsafe {
            let row = BackwardRow {
                h,
                y: step.y.add(q * step.y_stride),
                c_prev: step.c_prev.add(q * step.c_stride),
                dh: step.dh.map(|p| p.add(q * h)),
                dc: step.dc.map(|p| p.add(q * h)),
                dgates: step.dgates.map(|p| p.add(q * 4 * h)),
                next: step.next.map(|p| p.add(q * step.state_stride)),
                out: step.out.map(|p| p.add(q * 6 * h)),
                state: step.state.add(q * step.state_stride),
                dpre: step.dpre.add(q * step.dpre_stride),
            };
            let mut j = 0;
            while j + 2 * S::WIDTH <= h {
                backward_lanes::<Pair<S>>(&row, j);
                j += 2 * S::WIDTH;
            }
            while j + S::WIDTH <= h {
                backward_lanes::<S>(&row, j);
                j += S::WIDTH;
            }
            while j < h {
                backward_lanes::<f32>(&row, j);
                j += 1;
            }
        }
    }
}

/// How many rows ahead [`backward_gates_with`] asks for `y`'s rows.
const PREFETCH_ROWS: usize = 2;

/// Asks the CPU to bring the `len` floats from `p` into L1: a hint, which
/// reads nothing and never faults, whatever the address.
#[inline(always)]
fn prefetch(p: *const f32, len: usize) {
    for i in (0..len).step_by(16) {
        prefetch_line(p.wrapping_add(i), Cache::L1);
    }
}

/// One row of [`BackwardGates`], its pointers offset to the row.
struct BackwardRow {
    h: usize,
    y: *const f32,
    c_prev: *const f32,
    dh: Option<*const f32>,
    dc: Option<*const f32>,
    dgates: Option<*const f32>,
    next: Option<*const f32>,
    out: Option<*mut f32>,
    state: *mut f32,
    dpre: *mut f32,
}

/// Columns `j..j + S::WIDTH` of one row of a backward step.
///
/// # Safety
/// The columns lie in the row's ranges of [`BackwardGates`] (`j + WIDTH ≤
/// H`); the CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn backward_lanes<S: Lane>(row: &BackwardRow, j: usize) {
    let h = row.h;
    // SAFETY: the contract: every offset below is a column `< H` of an
    // `H`-lane block of a `6H`, `4H` or `H` range of the row.
    unsafe {
        let c = lane::<S>(row.y, h, 1, j);
        let i = lane::<S>(row.y, h, 2, j);
        let f = lane::<S>(row.y, h, 3, j);
        let g = lane::<S>(row.y, h, 4, j);
        let o = lane::<S>(row.y, h, 5, j);
        let zero = S::splat(0.0);
        let read = |p: Option<*const f32>, k: usize| p.map_or(zero, |p| lane::<S>(p, h, k, j));
        let (mut dh, mut dc_in) = (read(row.dh, 0), read(row.dc, 0));
        if let Some(next) = row.next {
            dh = dh.add(lane(next, h, 0, j));
            dc_in = dc_in.add(lane(next, h, 1, j));
        }
        let one = S::splat(1.0);
        let tc = tanh(c);
        let dc = dh.mul(o).mul_add(one.sub(tc.mul(tc)), dc_in);
        let di = dc.mul_add(g, read(row.dgates, 0)).mul(i.mul(one.sub(i)));
        let df = dc.mul_add(lane(row.c_prev, h, 0, j), read(row.dgates, 1)).mul(f.mul(one.sub(f)));
        let dg = dc.mul_add(i, read(row.dgates, 2)).mul(one.sub(g.mul(g)));
        let d_o = dh.mul_add(tc, read(row.dgates, 3)).mul(o.mul(one.sub(o)));
        for (k, v) in [di, df, dg, d_o].into_iter().enumerate() {
            if let Some(out) = row.out {
                v.store(out.add(k * h + j));
            }
            v.store(row.dpre.add(k * h + j));
        }
        dc.mul(f).store(row.state.add(h + j));
    }
}

/// Columns `j..j + S::WIDTH` of block `k` (of `h` lanes) of a row at `p`.
///
/// # Safety
/// The `S::WIDTH` floats at `p + k·h + j` are readable; the CPU has `S`'s
/// instruction set.
#[inline(always)]
unsafe fn lane<S: Lane>(p: *const f32, h: usize, k: usize, j: usize) -> S {
    // SAFETY: the contract.
    unsafe { S::load(p.add(k * h + j)) }
}

/// e^x for `x` at most 88.8 or NaN: the compiler's `approx::exp` after
/// its clamp (Cody–Waite reduction, the degree-5 polynomial, 2^n applied in
/// two halves), with its lanes below `EXP_ZERO` computed from 0 and set to
/// +0 (the same bits, without the subnormal products that Intel's cores
/// take a microcode assist for).
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn exp_clamped<S: Lane>(x: S) -> S {
    // SAFETY: the contract.
    unsafe {
        let bound = S::splat(EXP_ZERO);
        let x_in = x;
        let x = x_in.zero_where_below(bound, x_in);
        let t = x.mul(S::splat(std::f32::consts::LOG2_E));
        let shifter = S::splat(ROUND_SHIFTER);
        let shifted = t.add(shifter);
        let n = shifted.sub(shifter);
        let r = n.mul_add(S::splat(EXP_NEG_LN2_HI), x);
        let r = n.mul_add(S::splat(EXP_NEG_LN2_LO), r);
        let p = horner(r, &EXP_POLY);
        let r2 = r.mul(r);
        let y = p.mul_add(r2, r).add(S::splat(1.0));
        let (s1, s2) = shifted.pow2_halves();
        x_in.zero_where_below(bound, y.mul(s1).mul(s2))
    }
}

/// `coeffs[0]·x^(n-1) + … + coeffs[n-1]` by Horner's rule with fused
/// multiply-adds.
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn horner<S: Lane>(x: S, coeffs: &[f32]) -> S {
    // SAFETY: the contract.
    unsafe {
        let mut r = S::splat(coeffs[0]);
        for &c in &coeffs[1..] {
            r = r.mul_add(x, S::splat(c));
        }
        r
    }
}

/// The logistic function as the compiler's `approx::sigmoid`: with
/// `t = e^{-|x|}` and `s = 1/(1+t)`, `s` where `x`'s sign bit is clear and
/// `t·s` where it is set.
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn sigmoid<S: Lane>(x: S) -> S {
    // SAFETY: the contract.
    unsafe {
        let na = x.or_bits(SIGN);
        let t = exp_clamped(na);
        let one = S::splat(1.0);
        let s = one.div(one.add(t));
        x.select_sign(t.mul(s), s)
    }
}

/// The hyperbolic tangent as the compiler's `approx::tanh`: the rational
/// function on `|x|` clamped to 9, capped at 1, given `x`'s sign.
///
/// # Safety
/// The CPU has `S`'s instruction set.
#[inline(always)]
unsafe fn tanh<S: Lane>(x: S) -> S {
    // SAFETY: the contract.
    unsafe {
        let a = x.and_bits(!SIGN).at_most(S::splat(TANH_CLAMP));
        let z = a.mul(a);
        let ratio = horner(z, &TANH_P).div(horner(z, &TANH_Q));
        let r = ratio.mul(a).at_most(S::splat(1.0));
        r.or(x.and_bits(SIGN))
    }
}

/// The sign bit of an f32.
const SIGN: u32 = 0x8000_0000;

/// Lanes of f32 computed alike: one scalar, or a vector register. Every
/// operation rounds as IEEE 754 single precision, lane by lane, so a
/// function written over this trait gives the same bits at every width.
///
/// Every method requires (as its safety contract) that the CPU has the
/// type's instruction set; `load` and `store` also that `WIDTH` floats at
/// the pointer are readable or writable.
trait Lane: Copy {
    /// Lanes per value.
    const WIDTH: usize;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn sub(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn div(self, b: Self) -> Self;
    /// `self·b + c` with one rounding.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// The bits of each lane and `mask`.
    unsafe fn and_bits(self, mask: u32) -> Self;
    /// The bits of each lane or `mask`.
    unsafe fn or_bits(self, mask: u32) -> Self;
    /// The bits of each lane or those of `b`'s.
    unsafe fn or(self, b: Self) -> Self;
    /// `bound` in the lanes where `self > bound`, else `self` (so NaN
    /// stays).
    unsafe fn at_most(self, bound: Self) -> Self;
    /// `+0` in the lanes where `self < bound`, else `v` (so NaN keeps `v`).
    unsafe fn zero_where_below(self, bound: Self, v: Self) -> Self;
    /// `neg` in the lanes where `self`'s sign bit is set, else `pos`.
    unsafe fn select_sign(self, neg: Self, pos: Self) -> Self;
    /// `(2^⌊n/2⌋, 2^(n − ⌊n/2⌋))` for the integer `n` held in the low
    /// mantissa bits of `self = n + ROUND_SHIFTER` (`n` in [-150, 128]:
    /// both factors are normal floats).
    unsafe fn pow2_halves(self) -> (Self, Self);
}

impl Lane for f32 {
    const WIDTH: usize = 1;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: one readable f32 at `p` (the contract).
        unsafe { p.read() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: one writable f32 at `p` (the contract).
        unsafe { p.write(self) }
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        self + b
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        self - b
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        self * b
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        self / b
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        f32::mul_add(self, b, c)
    }
    #[inline(always)]
    unsafe fn and_bits(self, mask: u32) -> Self {
        f32::from_bits(self.to_bits() & mask)
    }
    #[inline(always)]
    unsafe fn or_bits(self, mask: u32) -> Self {
        f32::from_bits(self.to_bits() | mask)
    }
    #[inline(always)]
    unsafe fn or(self, b: Self) -> Self {
        f32::from_bits(self.to_bits() | b.to_bits())
    }
    #[inline(always)]
    unsafe fn at_most(self, bound: Self) -> Self {
        if self > bound {
            bound
        } else {
            self
        }
    }
    #[inline(always)]
    unsafe fn zero_where_below(self, bound: Self, v: Self) -> Self {
        if self < bound {
            0.0
        } else {
            v
        }
    }
    #[inline(always)]
    unsafe fn select_sign(self, neg: Self, pos: Self) -> Self {
        if self.to_bits() & SIGN != 0 {
            neg
        } else {
            pos
        }
    }
    #[inline(always)]
    unsafe fn pow2_halves(self) -> (Self, Self) {
        // Wrapping, as the vector lanes: a NaN's bits give garbage factors,
        // and the NaN they multiply stays NaN.
        let n = self.to_bits().wrapping_sub(ROUND_SHIFTER.to_bits()) as i32;
        let n1 = n >> 1;
        let n2 = n.wrapping_sub(n1);
        (pow2(n1), pow2(n2))
    }
}

/// Two values of `S` computed side by side: the same operations on each,
/// so independent dependency chains interleave in the instruction stream.
#[derive(Clone, Copy)]
struct Pair<S>(S, S);

/// [`Lane`] methods of [`Pair`] that apply `S`'s method to each half:
/// `f(b, …)` takes further pairs, `f(mask: u32)` a scalar for both.
macro_rules! pair_lanes {
    ($($f:ident($($b:ident),*);)*) => {$(
        #[inline(always)]
        unsafe fn $f(self, $($b: Self),*) -> Self {
            // SAFETY: the contract.
            unsafe { Pair(self.0.$f($($b.0),*), self.1.$f($($b.1),*)) }
        }
    )*};
    ($($f:ident(mask: u32);)*) => {$(
        #[inline(always)]
        unsafe fn $f(self, mask: u32) -> Self {
            // SAFETY: the contract.
            unsafe { Pair(self.0.$f(mask), self.1.$f(mask)) }
        }
    )*};
}

impl<S: Lane> Lane for Pair<S> {
    const WIDTH: usize = 2 * S::WIDTH;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the contract.
        unsafe { Pair(S::splat(x), S::splat(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: `2·S::WIDTH` readable floats at `p` (the contract).
        unsafe { Pair(S::load(p), S::load(p.add(S::WIDTH))) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: `2·S::WIDTH` writable floats at `p` (the contract).
        unsafe {
            self.0.store(p);
            self.1.store(p.add(S::WIDTH));
        }
    }
    pair_lanes! {
        add(b);
        sub(b);
        mul(b);
        div(b);
        mul_add(b, c);
        or(b);
        at_most(bound);
        zero_where_below(bound, v);
        select_sign(neg, pos);
    }
    pair_lanes! {
        and_bits(mask: u32);
        or_bits(mask: u32);
    }
    #[inline(always)]
    unsafe fn pow2_halves(self) -> (Self, Self) {
        // SAFETY: the contract.
        unsafe {
            let ((a1, a2), (b1, b2)) = (self.0.pow2_halves(), self.1.pow2_halves());
            (Pair(a1, b1), Pair(a2, b2))
        }
    }
}

/// 2^n for `n` in [-126, 127], built from its exponent bits (wrapping
/// outside, as the vector lanes).
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32).wrapping_shl(23))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! [`Lane`] for AVX2 and AVX-512 registers, and the gate loops compiled
    //! for each.

    use std::arch::x86_64::*;

    use super::{backward_gates_with, forward_gates_with, BackwardGates, ForwardGates, Lane, ROUND_SHIFTER};

    /// The gate loops compiled with AVX-512F.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the contract of [`super::forward_gates`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_gates_avx512(step: &ForwardGates) {
        // SAFETY: the contract.
        unsafe { forward_gates_with::<__m512>(step) }
    }

    /// The gate loops compiled with AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the contract of [`super::forward_gates`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_gates_avx2(step: &ForwardGates) {
        // SAFETY: the contract.
        unsafe { forward_gates_with::<__m256>(step) }
    }

    /// The gate-gradient loops compiled with AVX-512F.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the contract of [`super::backward_gates`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn backward_gates_avx512(step: &BackwardGates) {
        // SAFETY: the contract.
        unsafe { backward_gates_with::<__m512>(step) }
    }

    /// The gate-gradient loops compiled with AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the contract of [`super::backward_gates`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn backward_gates_avx2(step: &BackwardGates) {
        // SAFETY: the contract.
        unsafe { backward_gates_with::<__m256>(step) }
    }

    impl Lane for __m256 {
        const WIDTH: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 8 readable f32 at `p` (the contract).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 8 writable f32 at `p` (the contract).
            unsafe { _mm256_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_add_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_sub_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_mul_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn div(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_div_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: FMA present (the contract).
            unsafe { _mm256_fmadd_ps(self, b, c) }
        }
        #[inline(always)]
        unsafe fn and_bits(self, mask: u32) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_and_ps(self, _mm256_castsi256_ps(_mm256_set1_epi32(mask as i32))) }
        }
        #[inline(always)]
        unsafe fn or_bits(self, mask: u32) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_or_ps(self, _mm256_castsi256_ps(_mm256_set1_epi32(mask as i32))) }
        }
        #[inline(always)]
        unsafe fn or(self, b: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_or_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn at_most(self, bound: Self) -> Self {
            // `min(a, b)` is `a < b ? a : b`, so `bound < self ? bound :
            // self`, which keeps a NaN `self`.
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_min_ps(bound, self) }
        }
        #[inline(always)]
        unsafe fn zero_where_below(self, bound: Self, v: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(self, bound), v) }
        }
        #[inline(always)]
        unsafe fn select_sign(self, neg: Self, pos: Self) -> Self {
            // SAFETY: AVX present (the contract).
            unsafe { _mm256_blendv_ps(pos, neg, self) }
        }
        #[inline(always)]
        unsafe fn pow2_halves(self) -> (Self, Self) {
            // SAFETY: AVX2 present (the contract).
            unsafe {
                let n = _mm256_sub_epi32(
                    _mm256_castps_si256(self),
                    _mm256_set1_epi32(ROUND_SHIFTER.to_bits() as i32),
                );
                let n1 = _mm256_srai_epi32::<1>(n);
                let n2 = _mm256_sub_epi32(n, n1);
                let bias = _mm256_set1_epi32(127);
                (
                    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias))),
                    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias))),
                )
            }
        }
    }

    impl Lane for __m512 {
        const WIDTH: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: 16 readable f32 at `p` (the contract).
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: 16 writable f32 at `p` (the contract).
            unsafe { _mm512_storeu_ps(p, self) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_add_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn sub(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_sub_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_mul_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn div(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_div_ps(self, b) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_fmadd_ps(self, b, c) }
        }
        #[inline(always)]
        unsafe fn and_bits(self, mask: u32) -> Self {
            // Integer instructions: the float ones need AVX-512DQ.
            // SAFETY: AVX-512F present (the contract).
            unsafe {
                _mm512_castsi512_ps(_mm512_and_si512(
                    _mm512_castps_si512(self),
                    _mm512_set1_epi32(mask as i32),
                ))
            }
        }
        #[inline(always)]
        unsafe fn or_bits(self, mask: u32) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe {
                _mm512_castsi512_ps(_mm512_or_si512(
                    _mm512_castps_si512(self),
                    _mm512_set1_epi32(mask as i32),
                ))
            }
        }
        #[inline(always)]
        unsafe fn or(self, b: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(self), _mm512_castps_si512(b))) }
        }
        #[inline(always)]
        unsafe fn at_most(self, bound: Self) -> Self {
            // As for AVX2: `bound < self ? bound : self`.
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_min_ps(bound, self) }
        }
        #[inline(always)]
        unsafe fn zero_where_below(self, bound: Self, v: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe { _mm512_maskz_mov_ps(!_mm512_cmp_ps_mask::<_CMP_LT_OQ>(self, bound), v) }
        }
        #[inline(always)]
        unsafe fn select_sign(self, neg: Self, pos: Self) -> Self {
            // SAFETY: AVX-512F present (the contract).
            unsafe {
                let negative = _mm512_cmplt_epi32_mask(_mm512_castps_si512(self), _mm512_setzero_si512());
                _mm512_mask_blend_ps(negative, pos, neg)
            }
        }
        #[inline(always)]
        unsafe fn pow2_halves(self) -> (Self, Self) {
            // SAFETY: AVX-512F present (the contract).
            unsafe {
                let n = _mm512_sub_epi32(
                    _mm512_castps_si512(self),
                    _mm512_set1_epi32(ROUND_SHIFTER.to_bits() as i32),
                );
                let n1 = _mm512_srai_epi32::<1>(n);
                let n2 = _mm512_sub_epi32(n, n1);
                let bias = _mm512_set1_epi32(127);
                (
                    _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n1, bias))),
                    _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n2, bias))),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
