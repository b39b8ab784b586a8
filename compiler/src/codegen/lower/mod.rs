//! Lowering: turns a planned partition into a [`Program`] — the calls a
//! runtime makes, step by step, with every buffer resolved to an arena
//! offset or a graph input and every loop, copy and window kernel compiled
//! into one [`Jit`].
//!
//! - `loop` kernels become one [`LoopKernel`](crate::codegen::LoopKernel)
//!   each: elementwise nodes are body expressions, operands read from
//!   outside are strided inputs (views resolved into offsets and strides,
//!   inline values into constants), reductions are reduce stores (their
//!   outputs filled with the identity first), `one_hot` is a comparison with
//!   the class coordinate and `rng_uniform` the counter-based generator.
//! - `copy` kernels become loop kernels that read through a view (a
//!   materialised permute or broadcast, a slice at an offset) and write a
//!   region of their output (one per `concat` operand, the interior of a
//!   `pad` after a zero fill).
//! - Window kernels (`pool`, `pool_grad`, `resize`, `resize_grad`,
//!   `argmax`, `warp`, `warp_grad_input`, `warp_grad_flow`) become one
//!   [`WindowKernel`] each; so do `gather`, `scatter_sum` and
//!   `scatter_max`, while `scatter_max_grad` becomes three (`index`).
//! - Contractions become [`Call::MatMul`] / [`Call::Conv`] descriptions for
//!   the runtime's GEMM provider, followed by their epilogue as a loop
//!   kernel that reads the contraction's result.
//! - `lstm` and `lstm_grad` become a [`Call::Lstm`] for the runtime's
//!   recurrence kernels.
//!
//! Buffers: the plan places every stored value in the arena; values the
//! runtime needs that the plan does not hold (operands of window and
//! convolution kernels that are not plain memory) get a scratch region
//! above the plan's peak. Booleans live as f32 0.0/1.0 and i32 values as
//! i32 bit patterns in 4-byte slots.
//!
//! Every call's ranges follow the plan's split: a kernel split along its
//! outermost axis (every axis before it of size 1) runs as index ranges of
//! whole rows; any other kernel runs as one range, so results never depend
//! on the thread count beyond what the plan fixes.
//!
//! One `Lowering` walks the plan's steps; its parts:
//! - `program`: what lowering produces — [`Program`], its [`Call`]s and
//!   [`Buf`]fers;
//! - `access`: how a value is read (views walked down to their base as
//!   an offset and strides, inline values as constants) and where it lives;
//! - `loops`: loop kernels and copy kernels;
//! - `contraction`: GEMM and convolution calls, with the convolution's
//!   packing kernels;
//! - `index`: gather and scatter kernels (`scatter_max_grad` as three
//!   window kernels through scratch buffers);
//! - here: the entry point, the dispatch by kernel kind, the ranges of the
//!   plan's split, window kernels and the Cranelift listing.

mod access;
mod contraction;
mod index;
mod loops;
mod program;

use std::collections::HashMap;
use std::fmt::Write;

pub use contraction::PARALLEL_GEMM_WORK;
pub use program::{
    Buf, Call, ConvKind, ConvPacking, MatOperand, Program, ProgramInput, ProgramOutput, RowOp, Source,
    StepCode, WeightGrad,
};

use super::jit::{Checking, Jit};
use super::window::{WindowKernel, WindowOp};
use super::CodegenError;
use crate::fusion::{Kernel, KernelKind, Partition};
use crate::ir::{Dim, Graph, LstmSizes, Op, ValueId};
use crate::plan::{self, Plan};
use access::Access;

/// One lowering in progress: the plan being lowered, the program's inputs
/// and buffers so far, and the JIT its kernels are compiled into.
struct Lowering<'a> {
    graph: &'a Graph,
    partition: &'a Partition,
    plan: &'a Plan,
    dims: HashMap<String, usize>,
    checking: Checking,
    jit: Jit,
    inputs: Vec<ProgramInput>,
    input_index: HashMap<ValueId, usize>,
    arena: HashMap<ValueId, Buf>,
    arena_len: usize,
    /// New values of parameters and state written over their inputs (the
    /// plan's `in_place`): value → input number.
    in_place: HashMap<ValueId, usize>,
}

/// Lowers a plan — its graph, partition, schedule, buffers and layouts —
/// compiling every generated kernel with `checking`.
pub fn lower(plan: &Plan, checking: Checking) -> Result<Program, CodegenError> {
    let err = |m: String| CodegenError { kernel: String::new(), message: m };
    plan::check(plan).map_err(err)?;
    let (graph, partition) = (&plan.graph, &plan.partition);
    let dims: HashMap<String, usize> = plan.dims.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let mut lw = Lowering {
        graph,
        partition,
        plan,
        dims,
        checking,
        jit: Jit::new()?,
        inputs: vec![],
        input_index: HashMap::new(),
        arena: HashMap::new(),
        arena_len: plan.peak_bytes / 4,
        in_place: HashMap::new(),
    };
    for (v, node) in graph.inputs() {
        let shape = lw.shape(v).map_err(err)?;
        lw.input_index.insert(v, lw.inputs.len());
        let Op::Input { name, .. } = &node.op else { continue };
        lw.inputs.push(ProgramInput { value: v, name: name.clone(), dtype: node.ty.dtype, shape });
    }
    for b in &plan.buffers {
        let len = lw.len_of(b.value).map_err(err)?;
        lw.arena.insert(b.value, Buf::Arena { offset: b.offset / 4, len });
    }
    // Sums accumulated in their addend's buffer (same type, so same length).
    for (&sum, owner) in &plan.accumulated {
        let buf =
            *lw.arena.get(owner).ok_or_else(|| err(format!("{owner} holds {sum} but has no buffer")))?;
        lw.arena.insert(sum, buf);
    }
    // Parts of a concatenation stored where it holds them.
    for (&part, (concat, _)) in &plan.in_concat {
        let buf =
            *lw.arena.get(concat).ok_or_else(|| err(format!("{concat} holds {part} but has no buffer")))?;
        lw.arena.insert(part, buf);
    }
    // Products written where the reshape of their permutation holds them.
    for (&product, reshape) in &plan.in_reshape {
        let buf = *lw
            .arena
            .get(reshape)
            .ok_or_else(|| err(format!("{reshape} holds {product} but has no buffer")))?;
        lw.arena.insert(product, buf);
    }
    // New values written over their inputs: value → the input's number.
    lw.in_place = plan.in_place.iter().filter_map(|(v, p)| Some((*v, *lw.input_index.get(p)?))).collect();
    let mut steps = vec![];
    for (s, step) in plan.steps.iter().enumerate() {
        let kernel = partition.kernels.get(step.kernel).ok_or_else(|| err(format!("no kernel {s}")))?;
        // A kernel whose values nothing reads (dead code of a graph that did
        // not go through the optimisation passes) has nothing to compute.
        if kernel.outputs.is_empty() {
            continue;
        }
        let calls = lw
            .kernel_calls(kernel, step)
            .map_err(|m| CodegenError { kernel: kernel.name.clone(), message: m })?;
        steps.push(StepCode { name: kernel.name.clone(), kind: kernel.kind, calls });
    }
    let mut outputs = vec![];
    for o in &graph.outputs {
        let shape = lw.shape(o.value).map_err(err)?;
        let source = match lw.access(o.value).map_err(err)? {
            Access::Const(c) => Source::Constant(c),
            Access::Mem { base, offset, strides } => {
                Source::Strided { buf: lw.buf(base).map_err(err)?, offset, strides }
            }
        };
        outputs.push(ProgramOutput {
            kind: o.kind,
            name: o.name.clone(),
            dtype: graph.ty(o.value).dtype,
            shape,
            source,
        });
    }
    lw.jit.finalize()?;
    Ok(Program {
        inputs: lw.inputs,
        steps,
        outputs,
        arena_len: lw.arena_len,
        jit: lw.jit,
        threads: plan.threads,
        checking,
        peak_bytes: plan.peak_bytes,
        kernels: partition.kernels.len(),
    })
}

impl Lowering<'_> {
    fn kernel_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        match kernel.kind {
            KernelKind::Loop => {
                let domain = plan::resolve(&kernel.domain, &self.dims)?;
                self.loop_calls(&kernel.name, &kernel.nodes, &kernel.outputs, &domain, &step.split)
            }
            KernelKind::Copy => self.copy_calls(kernel, step.split.chunks),
            KernelKind::MatMul
            | KernelKind::Conv
            | KernelKind::ConvTranspose
            | KernelKind::ConvWeightGrad => self.contraction_calls(kernel, step),
            KernelKind::Pool
            | KernelKind::PoolGrad
            | KernelKind::Resize
            | KernelKind::ResizeGrad
            | KernelKind::ArgMax
            | KernelKind::Warp
            | KernelKind::WarpGradInput
            | KernelKind::WarpGradFlow => self.window_calls(kernel, step),
            KernelKind::Gather
            | KernelKind::ScatterSum
            | KernelKind::ScatterMax
            | KernelKind::ScatterMaxGrad => self.index_calls(kernel, step),
            KernelKind::Lstm | KernelKind::LstmGrad => self.recurrence_calls(kernel, step),
            KernelKind::Softmax | KernelKind::Standardize => self.row_calls(kernel, step),
        }
    }

    /// `softmax`, `standardize` or their gradients: the operands made
    /// contiguous, then one [`Call::Rows`] over the rows of the last axis,
    /// divided among as many threads as the plan's split has chunks.
    fn row_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let v = kernel.nodes[0];
        let node = self.graph.node(v);
        let op = match node.op {
            Op::Softmax => RowOp::Softmax,
            Op::SoftmaxGrad => RowOp::SoftmaxGrad,
            Op::Standardize { eps } => RowOp::Standardize { eps: eps as f32 },
            Op::StandardizeGrad { eps } => RowOp::StandardizeGrad { eps: eps as f32 },
            ref other => return Err(format!("{v} ({}) is not an op over rows", other.mnemonic())),
        };
        let mut calls = vec![];
        let mut inputs = vec![];
        for (i, &a) in node.args.iter().enumerate() {
            inputs.push(self.contiguous(a, format!("{}_in{i}", kernel.name), &mut calls)?);
        }
        let shape = self.shape(v)?;
        let len = *shape.last().ok_or_else(|| format!("{v}: an op over the rows of a scalar"))?;
        let rows = shape[..shape.len() - 1].iter().product::<usize>();
        let parts = step.split.chunks.clamp(1, rows.max(1));
        calls.push(Call::Rows { op, inputs, output: self.buf(v)?, rows, len, parts });
        Ok(calls)
    }

    /// A fused recurrence: its operands made contiguous (a cotangent that
    /// is the constant zero is absent instead), then one [`Call::Lstm`]
    /// whose batch rows follow the plan's split; a gradient's call also
    /// writes the weight gradient when the kernel holds it.
    fn recurrence_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let v = kernel.nodes[0];
        let node = self.graph.node(v);
        let (grad, reverse, from) = match &node.op {
            Op::Lstm { reverse } => (false, *reverse, &[][..]),
            Op::LstmGrad { reverse, from } => (true, *reverse, &from[..]),
            other => return Err(format!("{v} ({}) is not a recurrence", other.mnemonic())),
        };
        let mut calls = vec![];
        let mut inputs = vec![];
        for (i, &a) in node.args.iter().enumerate() {
            let zero = matches!(self.access(a)?, Access::Const(c) if c.to_bits() == 0);
            inputs.push(if node.op.zero_operand_is_absent(i) && zero {
                None
            } else {
                Some(self.contiguous(a, format!("{}_in{i}", kernel.name), &mut calls)?)
            });
        }
        let shape = self.shape(v)?;
        let weight = node.op.lstm_weight().and_then(|i| node.args.get(i));
        let sizes = weight.and_then(|&w| LstmSizes::of_weight(&self.graph.ty(w).shape));
        let (steps, batch, LstmSizes { hidden, features }) = match (shape.as_slice(), sizes) {
            (&[t, b, _], Some(sizes)) => (t, b, sizes),
            _ => return Err(format!("{v}: {shape:?} is not a recurrence result")),
        };
        let parts = match step.split.axis {
            Some(1) if step.split.extent == batch => step.split.chunks.max(1),
            _ => 1,
        };
        // The result is stored when another kernel or the graph reads it;
        // a gradient kernel may compute only the weight gradient.
        let output = if grad && !kernel.outputs.contains(&v) { None } else { Some(self.buf(v)?) };
        let weight_grad = match kernel.nodes.get(1) {
            Some(&dw) if grad => {
                Some(WeightGrad { buf: self.buf(dw)?, transposed: self.plan.transposed.contains(&dw) })
            }
            Some(&dw) => return Err(format!("{dw} is computed by the forward recurrence {v}")),
            None => None,
        };
        if output.is_none() && weight_grad.is_none() {
            return Err(format!("{v}: a recurrence whose result nothing reads"));
        }
        // Cotangent `1 + i` of a gradient holds `n` steps from `from[i]`.
        let cotangent_steps = std::array::from_fn(|i| {
            let first = from.get(i).copied().unwrap_or(0);
            let held = node.args.get(i + 1).and_then(|&d| self.graph.ty(d).shape.dims().first().cloned());
            match held {
                Some(Dim::Known(n)) if grad => (first, first + n),
                _ => (0, steps),
            }
        });
        calls.push(Call::Lstm {
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
        });
        Ok(calls)
    }

    fn row_ranges(&self, rows: usize, split: &plan::Split) -> Vec<(usize, usize)> {
        match split.axis {
            Some(0) if split.chunks > 1 && split.extent == rows => {
                (0..split.chunks).map(|i| (i * rows / split.chunks, (i + 1) * rows / split.chunks)).collect()
            }
            _ => vec![(0, rows)],
        }
    }

    fn window_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let v = kernel.nodes[0];
        let node = self.graph.node(v);
        let op = match &node.op {
            Op::Pool(w) => WindowOp::Pool(w.clone()),
            Op::PoolGrad(w) => WindowOp::PoolGrad(w.clone()),
            Op::Resize { size } => WindowOp::Resize { size: size.clone() },
            Op::ResizeGrad { size } => WindowOp::ResizeGrad { size: size.clone() },
            Op::ArgMax { axis } => WindowOp::ArgMax { axis: *axis },
            Op::Warp(attrs) => WindowOp::Warp(*attrs),
            Op::WarpGradInput(attrs) => WindowOp::WarpGradInput(*attrs),
            Op::WarpGradFlow(attrs) => WindowOp::WarpGradFlow(*attrs),
            other => return Err(format!("{v} ({}) is not a window op", other.mnemonic())),
        };
        let mut calls = vec![];
        let mut bufs = vec![];
        let mut shapes = vec![];
        for (i, &a) in node.args.iter().enumerate() {
            bufs.push(self.contiguous(a, format!("{}_in{i}", kernel.name), &mut calls)?);
            shapes.push(self.shape(a)?);
        }
        let output = self.shape(v)?;
        let wk = WindowKernel { name: kernel.name.clone(), op, inputs: shapes, output };
        let ranges = self.row_ranges(wk.rows(), &step.split);
        let id = self.jit.add_window_kernel(&wk, self.checking).map_err(|e| e.message)?;
        calls.push(Call::Window { kernel: id, inputs: bufs, output: self.buf(v)?, ranges });
        Ok(calls)
    }
}

/// The Cranelift IR of every kernel of `program`, one block per kernel.
pub fn clif_listing(program: &Program) -> String {
    let mut out = String::new();
    for (name, text) in program.jit.clif_text() {
        let _ = writeln!(out, "; kernel {name}\n{text}");
    }
    out
}
