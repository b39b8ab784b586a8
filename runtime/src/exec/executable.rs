//! The executable: a lowered program (generated kernels, GEMM and
//! convolution calls), its arena, the graph inputs' storage and a thread
//! pool, run step after step.
//!
//! Safety model. Generated kernels receive raw pointers, so everything they
//! may touch is established once, when the executable is built, and never
//! changes afterwards:
//! - the arena holds `Program::arena_len` elements, and every arena buffer a
//!   call names lies inside it;
//! - every input buffer has exactly the element count of its declared shape
//!   ([`Executable::set_input`] rejects any other shape);
//! - for every loop and window call, each buffer is at least as long as the
//!   kernel's extent over it ([`LoopKernel::input_extent`],
//!   [`LoopKernel::output_extent`], [`WindowKernel::input_len`]), and its
//!   ranges lie within the kernel's iteration space;
//! - the plan never lets a kernel's output buffer share bytes with a buffer
//!   live at the same step (checked by `plan::check` during lowering), and
//!   the ranges of one call write disjoint elements, so tasks running in
//!   parallel never write the same memory and never write what another
//!   reads;
//! - a convolution call gets its operands as slices and its result as an
//!   exclusively borrowed slice; its packing kernels run on one image and
//!   its scratch, and each call compares the kernel's extents with the
//!   lengths of the slices it is given (`conv_call::GeneratedPacking`).
//!
//! In the checked mode kernels additionally test each access against the
//! true buffer lengths and report a violation as an error.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::codegen::lower::{self, Buf, Call, Program, RowOp, Source};
use nnc_compiler::codegen::{take_trap, Checking, KernelId, LoopFnPtr};
use nnc_compiler::fusion::KernelKind;
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{DType, Graph, Op, OutputKind};
use nnc_compiler::pipeline;

use super::conv;
use super::conv_call::{ConvContext, TaskScratch};
use super::gemm::{GemmProvider, MatPtr, MatRef, Reference, Tuned};
use super::memory;
use super::pool::ThreadPool;
use super::recurrent::{self, LstmShape};
use super::softmax;
use super::standardize;

/// Which GEMM implementation contractions use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gemm {
    /// The tuned library.
    Tuned,
    /// The reference loop (slow; for tests).
    Reference,
}

/// How to build an [`Executable`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Threads (≥ 1), the caller included.
    pub threads: usize,
    pub checking: Checking,
    pub gemm: Gemm,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            threads: super::pool::available_threads(),
            checking: Checking::Unchecked,
            gemm: Gemm::Tuned,
        }
    }
}

/// The smallest number of result rows (or columns) worth a thread of its
/// own in a matrix product.
const MIN_GEMM_BLOCK: usize = 16;

/// Time spent per step, for `nnc bench --profile`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepTime {
    pub name: String,
    pub kind: KernelKind,
    pub time: Duration,
}

/// An aligned f32 storage (64-byte aligned, zero-initialised).
struct Storage {
    data: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; 16]);

impl Storage {
    fn new(len: usize) -> Storage {
        Storage { data: vec![Block([0.0; 16]); len.div_ceil(16).max(1)], len }
    }

    fn as_slice(&self) -> &[f32] {
        // SAFETY: `Block` is `repr(C)` of 16 f32 with no padding, so the
        // vector's memory is `16 * data.len() ≥ len` initialised f32.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<f32>(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_mut_ptr().cast::<f32>(), self.len) }
    }

    fn ptr(&self) -> *mut f32 {
        self.data.as_ptr().cast::<f32>().cast_mut()
    }
}

/// Raw pointers shared with pool tasks.
pub(crate) struct Shared<T>(pub(crate) T);
// SAFETY: the pointers are only dereferenced by generated kernels and
// contraction tasks on disjoint output ranges (see the module's safety
// model); sharing the addresses between threads is what the split requires.
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The shared value (a method, so closures capture the whole wrapper).
    pub(crate) fn get(&self) -> &T {
        &self.0
    }
}

/// A compiled, runnable graph.
pub struct Executable {
    program: Program,
    arena: Storage,
    inputs: Vec<Storage>,
    input_names: HashMap<String, usize>,
    pool: ThreadPool,
    provider: Box<dyn GemmProvider>,
    checking: Checking,
    threads: usize,
    /// Per pool task: convolution scratch and partial weight gradients.
    scratch: Vec<TaskScratch>,
    profile: Option<Vec<Duration>>,
    peak_bytes: usize,
    kernels: usize,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executable").field("program", &self.program).field("threads", &self.threads).finish()
    }
}

impl Executable {
    /// Compiles `graph` for `batch` examples (the back half of the
    /// compiler's [`pipeline`]) and loads the program.
    pub fn compile(graph: &Graph, batch: usize, options: &Options) -> Result<Executable, String> {
        let program = pipeline::program(graph, batch, options.threads.max(1), options.checking)?;
        Executable::new(program, options.gemm)
    }

    /// Loads a lowered program: an arena of its size, storage for its
    /// inputs and a pool of the threads it was planned for.
    pub fn new(program: Program, gemm: Gemm) -> Result<Executable, String> {
        let threads = program.threads.max(1);
        // Refused before anything is allocated: a failed allocation would
        // abort, an overcommitted one be killed by the kernel.
        let floats = program.inputs.iter().fold(program.arena_len as u64, |n, i| {
            n.saturating_add(i.shape.iter().fold(1u64, |m, &d| m.saturating_mul(d as u64)))
        });
        memory::check_fits(floats.saturating_mul(4), "the compiled step (its arena and inputs)")?;
        let pool = ThreadPool::new(threads).map_err(|e| format!("starting {threads} threads: {e}"))?;
        let provider: Box<dyn GemmProvider> = match gemm {
            Gemm::Tuned => Box::new(Tuned),
            Gemm::Reference => Box::new(Reference),
        };
        let inputs = program.inputs.iter().map(|i| Storage::new(i.shape.iter().product())).collect();
        let input_names = program.inputs.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
        let exe = Executable {
            arena: Storage::new(program.arena_len),
            inputs,
            input_names,
            pool,
            provider,
            checking: program.checking,
            threads,
            scratch: (0..threads).map(|_| Mutex::new((conv::Scratch::default(), vec![]))).collect(),
            profile: None,
            peak_bytes: program.peak_bytes,
            kernels: program.kernels,
            program,
        };
        exe.validate()?;
        Ok(exe)
    }

    /// The lowered program (steps, inputs, outputs, JIT).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The plan's peak arena bytes.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// The number of kernels of the partition.
    pub fn kernels(&self) -> usize {
        self.kernels
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Starts (or stops) accumulating the time spent in each step.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(|| vec![Duration::ZERO; self.program.steps.len()]);
    }

    /// Time accumulated per step since profiling was switched on.
    pub fn profile(&self) -> Vec<StepTime> {
        let Some(times) = &self.profile else { return vec![] };
        self.program
            .steps
            .iter()
            .zip(times)
            .map(|(s, t)| StepTime { name: s.name.clone(), kind: s.kind, time: *t })
            .collect()
    }

    fn buf_len_ok(&self, buf: &Buf) -> bool {
        match *buf {
            Buf::Arena { offset, len } => offset.checked_add(len).is_some_and(|end| end <= self.arena.len),
            Buf::Input { index, len } => self.inputs.get(index).is_some_and(|s| s.len == len),
        }
    }

    /// Establishes the safety model's per-call facts (see the module doc).
    fn validate(&self) -> Result<(), String> {
        let jit = &self.program.jit;
        for step in &self.program.steps {
            let err = |m: String| format!("kernel {}: {m}", step.name);
            for call in &step.calls {
                let bufs: Vec<&Buf> = match call {
                    Call::Fill { buf, .. } => vec![buf],
                    Call::Loop { inputs, outputs, .. } => inputs.iter().chain(outputs).collect(),
                    Call::Window { inputs, output, .. } => inputs.iter().chain([output]).collect(),
                    Call::MatMul { a, b, c, .. } => vec![&a.buf, &b.buf, &c.buf],
                    Call::Conv { x, w, y, .. } => vec![x, w, y],
                    Call::Rows { inputs, output, .. } => inputs.iter().chain([output]).collect(),
                    Call::Lstm { inputs, output, weight_grad, .. } => inputs
                        .iter()
                        .flatten()
                        .chain(output)
                        .chain(weight_grad.as_ref().map(|w| &w.buf))
                        .collect(),
                };
                if let Some(b) = bufs.iter().find(|b| !self.buf_len_ok(b)) {
                    return Err(err(format!("buffer {b:?} lies outside its storage")));
                }
                match call {
                    Call::Loop { kernel, inputs, outputs, ranges } => {
                        let f = jit.loop_fn(*kernel).map_err(|e| e.to_string())?;
                        let k = f.kernel();
                        if inputs.len() != k.inputs.len() || outputs.len() != k.outputs.len() {
                            return Err(err("buffer count differs from the kernel's".into()));
                        }
                        for (i, b) in inputs.iter().enumerate() {
                            if let Some((lo, hi)) = k.input_extent(i) {
                                if lo < 0 || hi as usize >= b.len() {
                                    return Err(err(format!("input {i} read at {lo}..={hi} of {}", b.len())));
                                }
                            }
                        }
                        for (o, b) in outputs.iter().enumerate() {
                            if let Some((lo, hi)) = k.output_extent(o) {
                                if lo < 0 || hi as usize >= b.len() {
                                    return Err(err(format!(
                                        "output {o} written at {lo}..={hi} of {}",
                                        b.len()
                                    )));
                                }
                            }
                        }
                        if ranges.iter().any(|&(s, e)| s > e || e > k.elements()) {
                            return Err(err("a range lies outside the iteration space".into()));
                        }
                    }
                    Call::Window { kernel, inputs, output, ranges } => {
                        let f = jit.window_fn(*kernel).map_err(|e| e.to_string())?;
                        let k = f.kernel();
                        if inputs.len() != k.inputs.len()
                            || inputs.iter().enumerate().any(|(i, b)| b.len() < k.input_len(i))
                            || output.len() < k.output_len()
                        {
                            return Err(err("a buffer is shorter than the kernel's shapes".into()));
                        }
                        if ranges.iter().any(|&(s, e)| s > e || e > k.rows()) {
                            return Err(err("a range lies outside the kernel's rows".into()));
                        }
                    }
                    Call::Rows { op, inputs, output, rows, len, parts } => {
                        let n = rows.checked_mul(*len);
                        let fits = n.is_some_and(|n| {
                            inputs.len() == op.operands()
                                && inputs.iter().chain([output]).all(|b| b.len() == n)
                        });
                        if !fits || *parts == 0 {
                            return Err(err(format!(
                                "buffers {inputs:?} -> {output:?} do not fit {op:?} over {rows} rows of {len}"
                            )));
                        }
                        if inputs.iter().any(|b| b.overlaps(output)) {
                            return Err(err(format!("the result of {op:?} overlaps its operands")));
                        }
                    }
                    Call::Lstm {
                        grad,
                        batch,
                        steps,
                        hidden,
                        features,
                        inputs,
                        cotangent_steps,
                        output,
                        weight_grad,
                        ..
                    } => {
                        let results = [output.map(|b| b.len()), weight_grad.map(|w| w.buf.len())];
                        // The forward writes its result alone, the gradient
                        // its result, the weight gradient or both.
                        let results = match (*grad, results) {
                            (false, [Some(_), None]) => &results[..1],
                            (true, [None, None]) | (false, _) => {
                                return Err(err("an LSTM call that writes the wrong results".into()))
                            }
                            (true, _) => &results[..],
                        };
                        // Both results are written through one exclusive
                        // slice each.
                        if let (Some(out), Some(dw)) = (output, weight_grad) {
                            if out.overlaps(&dw.buf) {
                                return Err(err("the LSTM's two results overlap".into()));
                            }
                        }
                        let got: Vec<Option<usize>> = inputs
                            .iter()
                            .map(|i| i.map(|b| b.len()))
                            .chain(results.iter().copied())
                            .collect();
                        let operands = inputs.len();
                        let shape = LstmShape {
                            batch: *batch,
                            steps: *steps,
                            hidden: *hidden,
                            features: *features,
                            reverse: false,
                        };
                        // A gradient's cotangents hold some of the steps.
                        let held = cotangent_steps.iter().all(|&(a, b)| a <= b && b <= *steps);
                        let fits = held
                            && shape.lengths(*grad).is_ok_and(|mut want| {
                                if *grad && *steps > 0 {
                                    for (i, &(a, b)) in cotangent_steps.iter().enumerate() {
                                        want[1 + i] = want[1 + i] / steps * (b - a);
                                    }
                                }
                                // Only the operands the op lets be absent (the
                                // gradient's zero cotangents) may be.
                                want.len() == got.len()
                                    && got.iter().zip(&want).enumerate().all(|(i, (g, w))| match g {
                                        Some(g) => g == w,
                                        None => {
                                            i >= operands
                                                || *grad
                                                    && Op::LstmGrad { reverse: false, from: vec![0; 3] }
                                                        .zero_operand_is_absent(i)
                                        }
                                    })
                            });
                        if !fits {
                            return Err(err(format!(
                                "buffers of {got:?} elements do not fit an LSTM of batch {batch}, \
                                 {steps} steps, hidden size {hidden}, {features} input features \
                                 (cotangents of steps {cotangent_steps:?})"
                            )));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The index of input `name`.
    fn input_index(&self, name: &str) -> Result<usize, String> {
        self.input_names.get(name).copied().ok_or_else(|| format!("the graph has no input `{name}`"))
    }

    /// Sets input `name` from a tensor of exactly its declared type.
    pub fn set_input(&mut self, name: &str, value: &Tensor<f32>) -> Result<(), String> {
        let i = self.input_index(name)?;
        let want = &self.program.inputs[i];
        if value.shape() != want.shape.as_slice() {
            return Err(format!("input `{name}` must have shape {:?}, got {:?}", want.shape, value.shape()));
        }
        let dst = self.inputs[i].as_mut_slice();
        match (value, want.dtype) {
            (Tensor::Float(a), DType::F32) => {
                for (d, s) in dst.iter_mut().zip(a.iter()) {
                    *d = *s;
                }
            }
            (Tensor::Int(a), DType::I32) => {
                for (d, s) in dst.iter_mut().zip(a.iter()) {
                    *d = f32::from_bits(*s as u32);
                }
            }
            (Tensor::Bool(a), DType::Bool) => {
                for (d, s) in dst.iter_mut().zip(a.iter()) {
                    *d = if *s { 1.0 } else { 0.0 };
                }
            }
            (v, want) => return Err(format!("input `{name}` must be {}, got {}", want.name(), v.ty())),
        }
        Ok(())
    }

    /// The storage of f32 input `name`, to fill in place (row-major).
    pub fn input_mut(&mut self, name: &str) -> Result<&mut [f32], String> {
        let i = self.input_index(name)?;
        if self.program.inputs[i].dtype != DType::F32 {
            return Err(format!("input `{name}` is not f32"));
        }
        Ok(self.inputs[i].as_mut_slice())
    }

    /// Names and shapes of the inputs.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, DType, &[usize])> {
        self.program.inputs.iter().map(|i| (i.name.as_str(), i.dtype, i.shape.as_slice()))
    }

    fn slice(&self, buf: Buf) -> &[f32] {
        match buf {
            Buf::Arena { offset, len } => &self.arena.as_slice()[offset..offset + len],
            Buf::Input { index, .. } => self.inputs[index].as_slice(),
        }
    }

    fn ptr(&self, buf: Buf) -> *mut f32 {
        match buf {
            // `validate` established offset + len ≤ arena length.
            Buf::Arena { offset, .. } => self.arena.ptr().wrapping_add(offset),
            Buf::Input { index, .. } => self.inputs[index].ptr(),
        }
    }

    /// Runs every step once.
    pub fn run(&mut self) -> Result<(), String> {
        for s in 0..self.program.steps.len() {
            let start = self.profile.is_some().then(Instant::now);
            for c in 0..self.program.steps[s].calls.len() {
                self.call(s, c).map_err(|m| format!("kernel {}: {m}", self.program.steps[s].name))?;
            }
            if let (Some(start), Some(times)) = (start, self.profile.as_mut()) {
                times[s] += start.elapsed();
            }
        }
        Ok(())
    }

    fn call(&mut self, s: usize, c: usize) -> Result<(), String> {
        let call = &self.program.steps[s].calls[c];
        match call {
            Call::Fill { buf, value } => {
                let (p, len) = (self.ptr(*buf), buf.len());
                // SAFETY: `validate` established that the buffer lies inside
                // its storage; no other reference to it is live here.
                unsafe { std::slice::from_raw_parts_mut(p, len) }.fill(*value);
                Ok(())
            }
            Call::Loop { kernel, inputs, outputs, ranges } => {
                let f = self.program.jit.loop_fn(*kernel).map_err(|e| e.to_string())?.raw();
                self.launch(f, kernel, inputs, outputs, ranges)
            }
            Call::Window { kernel, inputs, output, ranges } => {
                let f = self.program.jit.window_fn(*kernel).map_err(|e| e.to_string())?.raw();
                self.launch(f, kernel, inputs, std::slice::from_ref(output), ranges)
            }
            Call::MatMul { m, n, k, a, b, c, offsets, threads, accumulate } => {
                let a_data = self.slice(a.buf);
                let b_data = self.slice(b.buf);
                let (cp, clen) = (self.ptr(c.buf), c.buf.len());
                // A batch of products whose results lie in disjoint ranges
                // of memory is divided among threads by products, each
                // computed whole, as on one thread: a product of the
                // attention heads' shapes (64 × 64 × 16) is too small to
                // share, and halves of it cost the library's per-call work
                // twice. Otherwise the result is cut into one block per
                // thread along rows or columns. A block of rows reads all of
                // B and a block of columns all of A, and the library packs
                // what it reads, so the cut goes along the longer side and
                // the smaller operand is the one each thread reads whole
                // (for a [64, 128] · [128, 512] step of an LSTM, halves of
                // columns take 58 µs where halves of rows take 77).
                let positive = c.row_stride > 0 && c.col_stride > 0;
                let by_products = *threads > 1
                    && offsets.len() >= *threads
                    && positive
                    && disjoint_parts(*m, *n, c.row_stride, c.col_stride, offsets, *threads);
                let cut_rows = *m >= *n;
                let extent = if cut_rows { *m } else { *n };
                if offsets.len() == 1 && depth_split(*m, *n, *k, *threads) {
                    return self.matmul_by_depth(call);
                }
                let parts = if by_products {
                    *threads
                } else if *threads > 1 && extent >= 2 * MIN_GEMM_BLOCK && positive {
                    (*threads).min(extent / MIN_GEMM_BLOCK)
                } else {
                    1
                };
                let out = Shared(cp);
                let provider = self.provider.as_ref();
                let task = |part: usize| -> Result<(), String> {
                    let ((i0, i1), products) = if by_products {
                        ((0, extent), &offsets[share(part, parts, offsets.len())])
                    } else {
                        let rows = share(part, parts, extent);
                        ((rows.start, rows.end), &offsets[..])
                    };
                    let (rows, cols) = if cut_rows { (i1 - i0, *n) } else { (*m, i1 - i0) };
                    if rows == 0 || cols == 0 {
                        return Ok(());
                    }
                    let cut_stride = if cut_rows { c.row_stride } else { c.col_stride };
                    let (ar, bc) = if cut_rows { (i0, 0) } else { (0, i0) };
                    // An accumulating product adds onto the addend the
                    // kernel copied into its result buffer.
                    let beta = if *accumulate { 1.0 } else { 0.0 };
                    for &(ao, bo, co) in products {
                        let am = block(a_data, a, ao, (ar, 0));
                        let bm = block(b_data, b, bo, (0, bc));
                        let cm = MatPtr {
                            ptr: *out.get(),
                            len: clen,
                            offset: co + i0 * cut_stride as usize,
                            row_stride: c.row_stride,
                            col_stride: c.col_stride,
                        };
                        // SAFETY: `out` is the result buffer, which lies
                        // inside the arena (`validate`) and holds `clen`
                        // elements; the provider checks that the block's
                        // elements lie among them. No element is written by
                        // two tasks: parts that divide the products write
                        // blocks in disjoint ranges of memory
                        // (`disjoint_parts`), and parts that cut every
                        // product write disjoint ranges of rows (or columns)
                        // of a result whose elements are distinct (checked
                        // by the provider); the result shares no bytes with
                        // the operands (the plan never places a kernel's
                        // output over a buffer live at its step), and
                        // nothing else runs during the call.
                        unsafe { provider.gemm_shared(rows, cols, *k, 1.0, am, bm, beta, cm, 1)? };
                    }
                    Ok(())
                };
                if parts == 1 {
                    return task(0);
                }
                self.pool.map(parts, &task)?.into_iter().collect::<Result<Vec<()>, String>>().map(|_| ())
            }
            Call::Conv { x, w, y, .. } => {
                let (yp, ylen) = (self.ptr(*y), y.len());
                // SAFETY: `validate` established that the result buffer lies
                // inside its storage; the plan never places a kernel's output
                // over a buffer live at its step, so it shares no bytes with
                // the operands, and no other reference to it is live here.
                let y_data = unsafe { std::slice::from_raw_parts_mut(yp, ylen) };
                let cx = ConvContext {
                    jit: &self.program.jit,
                    provider: self.provider.as_ref(),
                    pool: &self.pool,
                    scratch: &self.scratch,
                };
                cx.run(call, self.slice(*x), self.slice(*w), y_data)
            }
            Call::Rows { op, inputs, output, rows, len, parts } => {
                let (yp, ylen) = (self.ptr(*output), output.len());
                let out = Shared(yp);
                let operands: Vec<&[f32]> = inputs.iter().map(|b| self.slice(*b)).collect();
                let parts = (*parts).min(*rows).max(1);
                let task = |part: usize| {
                    let range = share(part, parts, *rows);
                    let (lo, hi) = (range.start * len, range.end * len);
                    // SAFETY: `validate` established that the result buffer
                    // lies inside its storage, holds `rows·len` elements
                    // (`ylen`) and overlaps no operand; the tasks take
                    // disjoint ranges of rows (`share`), so each element is
                    // borrowed by one task, and nothing else runs during
                    // the call.
                    let y = unsafe { std::slice::from_raw_parts_mut(out.get().add(lo), hi - lo) };
                    debug_assert!(hi <= ylen);
                    match *op {
                        RowOp::Softmax => softmax::softmax_rows(&operands[0][lo..hi], y, *len),
                        RowOp::SoftmaxGrad => {
                            softmax::softmax_grad_rows(&operands[0][lo..hi], &operands[1][lo..hi], y, *len)
                        }
                        RowOp::Standardize { eps } => {
                            standardize::standardize_rows(&operands[0][lo..hi], y, *len, eps)
                        }
                        RowOp::StandardizeGrad { eps } => standardize::standardize_grad_rows(
                            &operands[0][lo..hi],
                            &operands[1][lo..hi],
                            y,
                            *len,
                            eps,
                        ),
                    }
                };
                if parts == 1 {
                    task(0);
                    return Ok(());
                }
                self.pool.map(parts, &task).map(|_| ())
            }
            Call::Lstm {
                grad,
                reverse,
                batch,
                steps,
                hidden,
                features,
                inputs,
                cotangent_steps,
                output,
                weight_grad,
                parts,
            } => {
                let shape = LstmShape {
                    batch: *batch,
                    steps: *steps,
                    hidden: *hidden,
                    features: *features,
                    reverse: *reverse,
                };
                // SAFETY (of both results): as for a convolution's result:
                // `validate` established that the buffer lies inside its
                // storage and that the two results do not overlap, and the
                // plan never places a kernel's output over a buffer live at
                // its step, so it shares no bytes with the operands or the
                // other result, and no other reference to it is live here.
                let result = |b: &Buf| unsafe { std::slice::from_raw_parts_mut(self.ptr(*b), b.len()) };
                let out = output.as_ref().map(result);
                let operand = |i: usize| inputs.get(i).copied().flatten().map(|b| self.slice(b));
                let need = |i: usize| operand(i).ok_or_else(|| format!("LSTM operand {i} is missing"));
                if *grad {
                    let cotangents = [operand(1), operand(2), operand(3)];
                    recurrent::lstm_backward_steps(
                        &self.pool,
                        shape,
                        *parts,
                        need(0)?,
                        cotangents,
                        cotangent_steps.map(|(a, b)| a..b),
                        need(4)?,
                        need(5)?,
                        recurrent::LstmGrads {
                            lanes: out,
                            weight: weight_grad.as_ref().map(|w| result(&w.buf)),
                            weight_transposed: weight_grad.is_some_and(|w| w.transposed),
                        },
                    )
                } else {
                    recurrent::lstm_forward(
                        &self.pool,
                        shape,
                        *parts,
                        need(0)?,
                        need(1)?,
                        need(2)?,
                        need(3)?,
                        out.ok_or("the LSTM's result is missing")?,
                    )
                }
            }
        }
    }

    /// A single product of small result and long depth (a weight's
    /// gradient, a sum over the rows of a batch) divided among threads
    /// along its depth: task `p` computes the product over its range of
    /// depth, the first into the result (onto it, when accumulating), the
    /// others into their own scratch, and the partial results are then
    /// added to the result in task order. Each task packs only its share
    /// of both operands, where a cut of a 64 × 64 result along its rows
    /// packs all of the larger operand on every thread. The rounding
    /// differs from one thread's (a sum split in `threads` parts) and is
    /// fixed for a given thread count.
    fn matmul_by_depth(&self, call: &Call) -> Result<(), String> {
        let Call::MatMul { m, n, k, a, b, c, offsets, threads, accumulate } = call else {
            return Err("not a matrix product".into());
        };
        let (m, n, k, parts) = (*m, *n, *k, (*threads).min(self.scratch.len()));
        let &[(ao, bo, co)] = offsets.as_slice() else {
            return Err("a product divided by depth is one product".into());
        };
        let a_data = self.slice(a.buf);
        let b_data = self.slice(b.buf);
        let (cp, clen) = (self.ptr(c.buf), c.buf.len());
        let out = Shared(cp);
        let provider = self.provider.as_ref();
        let scratch = &self.scratch;
        let task = |part: usize| -> Result<(), String> {
            let (k0, k1) = (part * k / parts, (part + 1) * k / parts);
            let am = block(a_data, a, ao, (0, k0));
            let bm = block(b_data, b, bo, (k0, 0));
            if part == 0 {
                let beta = if *accumulate { 1.0 } else { 0.0 };
                let cm = MatPtr {
                    ptr: *out.get(),
                    len: clen,
                    offset: co,
                    row_stride: c.row_stride,
                    col_stride: c.col_stride,
                };
                // SAFETY: `out` is the result buffer, which lies inside the
                // arena (`validate`) and holds `clen` elements; the provider
                // checks that the block's elements lie among them and are
                // distinct. Only this task writes the result (the others
                // write their own scratch); it shares no bytes with the
                // operands (the plan never places a kernel's output over a
                // buffer live at its step).
                return unsafe { provider.gemm_shared(m, n, k1 - k0, 1.0, am, bm, beta, cm, 1) };
            }
            let mut guard = scratch[part].lock().map_err(|_| "scratch poisoned")?;
            let partial = &mut guard.1;
            partial.clear();
            partial.resize(m * n, 0.0);
            let cm = MatPtr {
                ptr: partial.as_mut_ptr(),
                len: m * n,
                offset: 0,
                row_stride: n as isize,
                col_stride: 1,
            };
            // SAFETY: `partial` holds the `m × n` row-major block written,
            // borrowed exclusively through the task's lock for the call.
            unsafe { provider.gemm_shared(m, n, k1 - k0, 1.0, am, bm, 0.0, cm, 1) }
        };
        self.pool.map(parts, &task)?.into_iter().collect::<Result<Vec<()>, String>>()?;
        // SAFETY: `validate` established that the result buffer lies inside
        // its storage; the tasks above have finished, so no other reference
        // to it is live.
        let result = unsafe { std::slice::from_raw_parts_mut(cp, clen) };
        for part in 1..parts {
            let guard = self.scratch[part].lock().map_err(|_| "scratch poisoned")?;
            for i in 0..m {
                let row = co as isize + i as isize * c.row_stride;
                for (j, &v) in guard.1[i * n..(i + 1) * n].iter().enumerate() {
                    let at = usize::try_from(row + j as isize * c.col_stride)
                        .ok()
                        .filter(|&at| at < clen)
                        .ok_or("a partial product's element lies outside the result")?;
                    result[at] += v;
                }
            }
        }
        Ok(())
    }

    /// Runs a generated kernel over its ranges on the pool.
    fn launch(
        &self,
        f: LoopFnPtr,
        kernel: &KernelId,
        inputs: &[Buf],
        outputs: &[Buf],
        ranges: &[(usize, usize)],
    ) -> Result<(), String> {
        let ins: Vec<*const f32> = inputs.iter().map(|b| self.ptr(*b).cast_const()).collect();
        let outs: Vec<*mut f32> = outputs.iter().map(|b| self.ptr(*b)).collect();
        let lens: Vec<usize> = inputs.iter().chain(outputs).map(|b| b.len()).collect();
        let shared = Shared((ins, outs, lens));
        let trap = Mutex::new(None);
        let task = |i: usize| {
            let (s, e) = ranges[i];
            let (ins, outs, lens) = shared.get();
            // SAFETY: the kernel's buffers and ranges were checked against
            // its extents when the executable was built (`validate`); the
            // pointer arrays hold one pointer per input and output and
            // outlive the call; ranges of one call write disjoint elements.
            unsafe { f(ins.as_ptr(), outs.as_ptr(), s, e, lens.as_ptr()) };
            if let Some(t) = take_trap() {
                if let Ok(mut slot) = trap.lock() {
                    slot.get_or_insert(t);
                }
            }
        };
        if ranges.len() == 1 {
            task(0);
        } else {
            self.pool.run(ranges.len(), &task)?;
        }
        let recorded = trap.into_inner().map_err(|_| "a kernel task panicked".to_string())?;
        match recorded {
            Some(t) => Err(self.program.jit.describe_trap(&t)),
            None => {
                let _ = kernel;
                Ok(())
            }
        }
    }

    /// Every graph output as a tensor (bools from 0/1, i32 from their bits).
    pub fn outputs(&self) -> Vec<(String, OutputKind, Tensor<f32>)> {
        self.program.outputs.iter().map(|o| (o.name.clone(), o.kind, self.read(o))).collect()
    }

    /// Graph output `name`.
    pub fn output(&self, name: &str) -> Result<Tensor<f32>, String> {
        let o = self
            .program
            .outputs
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| format!("the graph has no output `{name}`"))?;
        Ok(self.read(o))
    }

    fn gather(&self, o: &lower::ProgramOutput) -> Vec<f32> {
        let count: usize = o.shape.iter().product();
        match &o.source {
            Source::Constant(c) => vec![*c; count],
            Source::Strided { buf, offset, strides } => {
                let data = self.slice(*buf);
                if let Some(run) = contiguous_run(&o.shape, *offset, strides, data.len()) {
                    return data[run].to_vec();
                }
                let mut out = Vec::with_capacity(count);
                let mut idx = vec![0usize; o.shape.len()];
                for _ in 0..count {
                    let at = *offset + idx.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum::<isize>();
                    out.push(data.get(at as usize).copied().unwrap_or(f32::NAN));
                    for a in (0..idx.len()).rev() {
                        idx[a] += 1;
                        if idx[a] < o.shape[a] {
                            break;
                        }
                        idx[a] = 0;
                    }
                }
                out
            }
        }
    }

    fn read(&self, o: &lower::ProgramOutput) -> Tensor<f32> {
        let values = self.gather(o);
        let shape = IxDyn(&o.shape);
        let arr =
            |v| ArrayD::from_shape_vec(shape.clone(), v).unwrap_or_else(|_| ArrayD::zeros(shape.clone()));
        match o.dtype {
            DType::F32 => Tensor::Float(arr(values)),
            DType::I32 => {
                let v: Vec<i32> = values.iter().map(|x| x.to_bits() as i32).collect();
                Tensor::Int(
                    ArrayD::from_shape_vec(shape.clone(), v).unwrap_or_else(|_| ArrayD::zeros(shape.clone())),
                )
            }
            DType::Bool => {
                let v: Vec<bool> = values.iter().map(|&x| x != 0.0).collect();
                Tensor::Bool(
                    ArrayD::from_shape_vec(shape.clone(), v)
                        .unwrap_or_else(|_| ArrayD::from_elem(shape.clone(), false)),
                )
            }
        }
    }

    /// Copies every `param` and `state` output into the input of the same
    /// name, so the next [`run`](Executable::run) continues from them (one
    /// training step after another).
    pub fn carry_state(&mut self) -> Result<(), String> {
        for o in 0..self.program.outputs.len() {
            let out = &self.program.outputs[o];
            if !matches!(out.kind, OutputKind::Param | OutputKind::State) {
                continue;
            }
            let i = self.input_index(&out.name)?;
            let count: usize = out.shape.iter().product();
            if self.inputs[i].len != count {
                return Err(format!("output `{}` does not fit the input of the same name", out.name));
            }
            if let Source::Strided { buf: Buf::Input { index, .. }, .. } = &out.source {
                if *index == i {
                    // Updated in place by its kernel.
                    continue;
                }
            }
            let direct = match &out.source {
                Source::Strided { buf: buf @ Buf::Arena { .. }, offset, strides } => {
                    contiguous_run(&out.shape, *offset, strides, buf.len()).map(|r| (*buf, r))
                }
                _ => None,
            };
            match direct {
                Some((Buf::Arena { offset, .. }, run)) => {
                    let src = &self.arena.as_slice()[offset + run.start..offset + run.end];
                    self.inputs[i].as_mut_slice().copy_from_slice(src);
                }
                _ => {
                    let values = self.gather(out);
                    self.inputs[i].as_mut_slice().copy_from_slice(&values);
                }
            }
        }
        Ok(())
    }

    /// Whether kernels check their accesses.
    pub fn checking(&self) -> Checking {
        self.checking
    }
}

/// The block of the operand `op` (its strides) in `data` whose element
/// (0, 0) is element `(row, col)` of the matrix at `offset`. The provider
/// checks the block's elements against `data` before it reads them.
fn block<'a>(
    data: &'a [f32],
    op: &lower::MatOperand,
    offset: usize,
    (row, col): (usize, usize),
) -> MatRef<'a> {
    MatRef {
        data,
        offset: (offset as isize + row as isize * op.row_stride + col as isize * op.col_stride) as usize,
        row_stride: op.row_stride,
        col_stride: op.col_stride,
    }
}

/// Whether a product `[m, k] · [k, n]` on `threads` threads is divided along
/// its depth ([`Executable::matmul_by_depth`]): a depth of at least four
/// times the longer side of the result and 256 per thread, and a result too
/// small to give each thread a block of 128 rows or columns.
fn depth_split(m: usize, n: usize, k: usize, threads: usize) -> bool {
    threads > 1 && k >= 4 * m.max(n) && k >= 256 * threads && m.max(n) < 128 * threads
}

/// Task `part`'s share of `len` items split among `parts` tasks in order.
fn share(part: usize, parts: usize, len: usize) -> std::ops::Range<usize> {
    part * len / parts..(part + 1) * len / parts
}

/// Whether `parts` tasks, task `p` computing the products
/// `offsets[share(p, parts, len)]` (`m × n` blocks at the
/// result offsets, the third of each triple, of a result with positive
/// strides `row_stride` and `col_stride`), write in pairwise disjoint
/// ranges of memory: a block spans `[co, co + (m - 1)·row_stride +
/// (n - 1)·col_stride]`, a task the hull of its blocks' spans, and no two
/// tasks' spans meet. Attention heads written into their joined rows
/// (`[B, T, heads·d]`) interleave within one batch row and pass when each
/// task takes whole batch rows.
fn disjoint_parts(
    m: usize,
    n: usize,
    row_stride: isize,
    col_stride: isize,
    offsets: &[(usize, usize, usize)],
    parts: usize,
) -> bool {
    if m == 0 || n == 0 || offsets.is_empty() {
        return true;
    }
    let reach = (m - 1) as u128 * row_stride.unsigned_abs() as u128
        + (n - 1) as u128 * col_stride.unsigned_abs() as u128;
    let parts = parts.clamp(1, offsets.len());
    let mut spans: Vec<(u128, u128)> = (0..parts)
        .map(|p| {
            let blocks = &offsets[share(p, parts, offsets.len())];
            let lo = blocks.iter().map(|&(_, _, co)| co as u128).min().unwrap_or(0);
            let hi = blocks.iter().map(|&(_, _, co)| co as u128).max().unwrap_or(0) + reach;
            (lo, hi)
        })
        .collect();
    spans.sort_unstable();
    spans.windows(2).all(|w| w[0].1 < w[1].0)
}

/// The element range of a row-major layout of `shape` at `offset` with
/// `strides`, when it is one contiguous run inside `0..len`.
fn contiguous_run(
    shape: &[usize],
    offset: isize,
    strides: &[isize],
    len: usize,
) -> Option<std::ops::Range<usize>> {
    let count: usize = shape.iter().product();
    let mut expect = 1isize;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 && s != expect {
            return None;
        }
        expect = expect.checked_mul(n as isize)?;
    }
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(count)?;
    (end <= len).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{depth_split, disjoint_parts, Executable, Gemm};
    use nnc_compiler::codegen::lower::Call;
    use nnc_compiler::codegen::Checking;
    use nnc_compiler::ir::interp::{self, Tensor};

    /// A sum over the batch rows (a bias's gradient, with the rows' own
    /// elementwise result beside it) on two threads runs as two halves of
    /// the rows into partial sums added by one more kernel; the results
    /// equal the interpreter's, and on one thread the kernel is one call.
    #[test]
    fn sums_over_the_batch_run_by_halves_of_the_rows_on_two_threads() {
        let text = "graph g mode=infer {\n  %0: f32[64, 2048] = input \"x\"\n  %1: f32[64, 2048] = exp %0\n  \
                    %2: f32[2048] = reduce_sum %1 axes=[0]\n  prediction \"e\" = %1\n  prediction \"s\" = %2\n}\n";
        let graph = nnc_compiler::ir::parse::parse(text).expect("parses");
        // Values that are f32 numbers, so both interpreters read the same.
        let values: Vec<f64> =
            (0..64 * 2048).map(|i| f64::from((f64::from(i) * 0.013).sin() as f32)).collect();
        let x = Tensor::<f32>::from_f64(&[64, 2048], &values).expect("a tensor");
        let x64 = Tensor::<f64>::from_f64(&[64, 2048], &values).expect("a tensor");
        let want =
            interp::run::<f64>(&graph, &[("x".to_string(), x64)].into_iter().collect()).expect("interprets");
        for threads in [1, 2] {
            let program =
                nnc_compiler::pipeline::program(&graph, 64, threads, Checking::Checked).expect("compiles");
            let loops: Vec<String> = program
                .steps
                .iter()
                .flat_map(|s| &s.calls)
                .filter_map(|c| match c {
                    Call::Loop { kernel, .. } => {
                        Some(program.jit.loop_fn(*kernel).expect("a kernel").kernel().name.clone())
                    }
                    _ => None,
                })
                .collect();
            let partials = loops.iter().filter(|n| n.ends_with("_parts0")).count();
            assert_eq!(partials, usize::from(threads == 2), "{threads} threads: {loops:?}");
            let mut exe = Executable::new(program, Gemm::Tuned).expect("loads");
            exe.set_input("x", &x).expect("sets x");
            exe.run().expect("runs");
            for name in ["e", "s"] {
                let got = exe.output(name).expect("an output");
                let w = &want.iter().find(|(n, _)| n == name).expect("the output").1;
                for (g, w) in got.as_float().expect("f32").iter().zip(w.as_float().expect("f64").iter()) {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{threads} threads, {name}: {g} vs {w}"
                    );
                }
            }
        }
    }

    /// The call over rows of a program.
    fn row_call(p: &mut nnc_compiler::codegen::lower::Program) -> &mut Call {
        p.steps
            .iter_mut()
            .flat_map(|s| s.calls.iter_mut())
            .find(|c| matches!(c, Call::Rows { .. }))
            .expect("a call over rows")
    }

    /// `softmax` and `standardize_grad` of `[6, 8]` (in two parts, on two
    /// threads), each compiled to a program with one call over rows, run
    /// against the interpreter; the loader refuses the call when its result
    /// would overlap an operand or its buffers do not hold `rows·len`
    /// elements (the invariants of the call's unsafe result slices).
    #[test]
    fn row_calls_run_and_calls_whose_buffers_do_not_fit_are_refused() {
        for op in ["softmax %0", "standardize_grad %0, %1 eps=1e-5"] {
            let text = format!(
                "graph g mode=infer {{\n  %0: f32[6, 8] = input \"x\"\n  %1: f32[6, 8] = input \"d\"\n  \
                 %2: f32[6, 8] = {op}\n  prediction \"y\" = %2\n}}\n"
            );
            let graph = nnc_compiler::ir::parse::parse(&text).expect("parses");
            let program =
                || nnc_compiler::pipeline::program(&graph, 6, 2, Checking::Checked).expect("compiles");
            let mut good = program();
            // The plan keeps so small a kernel on one thread; two parts run
            // the rows on both of the pool's threads.
            match row_call(&mut good) {
                Call::Rows { parts, rows: 6, len: 8, .. } => *parts = 2,
                other => panic!("{other:?}"),
            }
            let mut exe = Executable::new(good, Gemm::Tuned).expect("loads");
            let mut inputs = HashMap::new();
            for (name, k) in [("x", 0.37), ("d", 0.91)] {
                let v: Vec<f64> = (0..48).map(|i| (f64::from(i) * k).sin() * 4.0).collect();
                let t = Tensor::<f32>::from_f64(&[6, 8], &v).expect("a tensor");
                exe.set_input(name, &t).expect("sets an input");
                inputs.insert(name.to_string(), t);
            }
            exe.run().expect("runs");
            let got = exe.output("y").expect("y");
            let want = interp::run::<f32>(&graph, &inputs).expect("interprets");
            let want = &want.iter().find(|(n, _)| n == "y").expect("y").1;
            let (got, want) = (got.as_float().expect("f32"), want.as_float().expect("f32"));
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((g - w).abs() <= 2e-6 * w.abs() + 1e-6, "{op}: {g} vs {w}");
            }
            let mut overlapping = program();
            if let Call::Rows { inputs, output, .. } = row_call(&mut overlapping) {
                *output = inputs[0];
            }
            let err = Executable::new(overlapping, Gemm::Tuned).expect_err("refused");
            assert!(err.contains("overlaps"), "{err}");
            let mut short = program();
            if let Call::Rows { rows, .. } = row_call(&mut short) {
                *rows += 1;
            }
            let err = Executable::new(short, Gemm::Tuned).expect_err("refused");
            assert!(err.contains("do not fit"), "{err}");
        }
    }

    #[test]
    fn tasks_of_a_batch_of_products_are_disjoint_when_their_spans_do_not_meet() {
        // Attention heads [B, 4, 64, 16], one after another: disjoint, in any
        // order of the offsets, one product per task or several.
        let heads: Vec<_> = (0..8).map(|i| (0, 0, i * 1024)).collect();
        assert!(disjoint_parts(64, 16, 16, 1, &heads, 8));
        assert!(disjoint_parts(64, 16, 16, 1, &heads, 2));
        let shuffled: Vec<_> = [5, 0, 7, 2, 1, 6, 3, 4].iter().map(|&i| (0, 0, i * 1024)).collect();
        assert!(disjoint_parts(64, 16, 16, 1, &shuffled, 8));
        // The same heads written into their joined rows [B, 64, 4·16]: the
        // heads of one batch row interleave, so tasks must take whole rows.
        let joined: Vec<_> = (0..2).flat_map(|b| (0..4).map(move |h| (0, 0, b * 4096 + h * 16))).collect();
        assert!(disjoint_parts(64, 16, 64, 1, &joined, 2));
        assert!(!disjoint_parts(64, 16, 64, 1, &joined, 4));
        assert!(!disjoint_parts(64, 16, 64, 1, &joined[..4], 2));
        // One element of overlap, and a repeated block.
        assert!(!disjoint_parts(2, 3, 3, 1, &[(0, 0, 0), (0, 0, 5)], 2));
        assert!(disjoint_parts(2, 3, 3, 1, &[(0, 0, 0), (0, 0, 6)], 2));
        assert!(!disjoint_parts(2, 3, 3, 1, &[(0, 0, 6), (0, 0, 6)], 2));
        // A transposed result (column stride > row stride).
        assert!(disjoint_parts(3, 2, 1, 3, &[(0, 0, 0), (0, 0, 6)], 2));
        assert!(!disjoint_parts(3, 2, 1, 3, &[(0, 0, 0), (0, 0, 5)], 2));
        // One task: nothing to overlap with.
        assert!(disjoint_parts(2, 3, 3, 1, &[(0, 0, 0), (0, 0, 5)], 1));
    }

    #[test]
    fn long_products_into_small_results_are_divided_by_depth() {
        // A weight's gradient summed over 32 × 64 rows: [64, 64] by depth; a
        // [64, 256] one is cut into halves of 128 columns instead (as fast).
        assert!(depth_split(64, 64, 2048, 2));
        assert!(!depth_split(64, 256, 2048, 2));
        // One thread; a depth too short for its result or for the threads; a
        // result large enough to cut into blocks of rows.
        assert!(!depth_split(64, 64, 2048, 1));
        assert!(!depth_split(256, 256, 512, 2));
        assert!(!depth_split(16, 16, 384, 2));
        assert!(!depth_split(512, 64, 4096, 2));
    }
}
