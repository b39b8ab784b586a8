//! Lowering: turns a planned partition into a [`Program`] — the calls a
//! runtime makes, step by step, with every buffer resolved to an arena
//! offset or a graph input and every loop, copy and window kernel compiled
//! into one [`Jit`].
//!
//! - `loop` kernels become one [`LoopKernel`] each: elementwise nodes are
//!   body expressions, operands read from outside are strided inputs (views
//!   resolved into offsets and strides, inline values into constants),
//!   reductions are reduce stores (their outputs filled with the identity
//!   first), `one_hot` is a comparison with the class coordinate and
//!   `rng_uniform` the counter-based generator.
//! - `copy` kernels become loop kernels that read through a view (a
//!   materialised permute or broadcast, a slice at an offset) and write a
//!   region of their output (one per `concat` operand, the interior of a
//!   `pad` after a zero fill).
//! - Window kernels (`pool`, `pool_grad`, `resize`, `resize_grad`,
//!   `argmax`) become one [`WindowKernel`] each.
//! - Contractions become [`Call::MatMul`] / [`Call::Conv`] descriptions for
//!   the runtime's GEMM provider, followed by their epilogue as a loop
//!   kernel that reads the contraction's result.
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

use std::collections::HashMap;
use std::fmt::Write;

use super::jit::{Checking, Jit, KernelId};
use super::loops::{Elem, Expr, LoopKernel, Operand, Reduce, Store};
use super::window::{WindowKernel, WindowOp};
use super::CodegenError;
use crate::fusion::{Kernel, KernelKind, Partition, Placement};
use crate::ir::{ConvAttrs, DType, Graph, Op, OutputKind, ValueId};
use crate::plan::{self, Plan};

/// The multiply-adds below which a GEMM runs on one thread: handing a
/// smaller product to several threads costs more in synchronisation than
/// it saves.
pub const PARALLEL_GEMM_WORK: usize = 1 << 22;

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// Elements `offset..offset + len` of the arena (f32-sized slots).
    Arena { offset: usize, len: usize },
    /// Graph input number `index` of [`Program::inputs`] (`len` elements).
    Input { index: usize, len: usize },
}

impl Buf {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match *self {
            Buf::Arena { len, .. } | Buf::Input { len, .. } => len,
        }
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A strided matrix operand of a GEMM: element `(i, j)` of batch `b` is at
/// `buf[offsets[b] + i*row_stride + j*col_stride]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatOperand {
    pub buf: Buf,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// Attributes of a convolution call (the IR op's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvCall {
    pub stride: Vec<usize>,
    pub padding: Vec<(usize, usize)>,
    pub dilation: Vec<usize>,
    pub groups: usize,
}

/// What a convolution call computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// `y = conv(x, w)`.
    Forward,
    /// `y = conv_transpose(x, w)` with this output padding.
    Transpose { output_padding: Vec<usize> },
    /// `dw = conv_weight_grad(x, dy)` for a kernel of these spatial sizes
    /// (`w` names `dy`, `y` names `dw`).
    WeightGrad { kernel: Vec<usize> },
}

/// One thing a runtime does, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// Sets every element of `buf` to `value`.
    Fill { buf: Buf, value: f32 },
    /// Runs a loop kernel over each range (flat iteration indices); ranges
    /// are disjoint and may run in parallel.
    Loop { kernel: KernelId, inputs: Vec<Buf>, outputs: Vec<Buf>, ranges: Vec<(usize, usize)> },
    /// Runs a window kernel over each range of output rows.
    Window { kernel: KernelId, inputs: Vec<Buf>, output: Buf, ranges: Vec<(usize, usize)> },
    /// `c[b] = a[b] · b[b]` for every batch `b`: `a` is `m×k`, `b` `k×n`,
    /// `c` `m×n`; `offsets[b]` = (a, b, c) element offsets.
    MatMul {
        m: usize,
        n: usize,
        k: usize,
        a: MatOperand,
        b: MatOperand,
        c: MatOperand,
        offsets: Vec<(usize, usize, usize)>,
        /// Threads the GEMM may use.
        threads: usize,
    },
    /// A convolution over contiguous row-major buffers.
    Conv {
        kind: ConvKind,
        attrs: ConvCall,
        x: Buf,
        x_shape: Vec<usize>,
        w: Buf,
        w_shape: Vec<usize>,
        y: Buf,
        y_shape: Vec<usize>,
        /// Parts the batch is split into (partial weight gradients are
        /// summed in part order).
        chunks: usize,
        /// The generated kernels that pack one image into the column matrix
        /// and back.
        packing: ConvPacking,
    },
}

/// The generated packing kernels of a convolution call, each over one image
/// of the underlying convolution's input `[C, *S]` (a forward convolution's
/// and weight gradient's `x`, a transposed convolution's output), `|S'|`
/// output positions and `|K|` taps.
///
/// Buffers: the image (`C·|S|` elements, row-major), the padded image
/// scratch (`C·Π(S + lo + hi)` elements, present only when some padding is
/// not zero; its border holds zeros) and the column scratch
/// (`C·|K| × |S'|`, row `c·|K| + tap`, absent for pointwise convolutions,
/// whose column matrix is the image itself). The runtime calls each kernel
/// over its whole iteration space, one image at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvPacking {
    /// Elements of the padded image scratch (0 without padding).
    pub padded_len: usize,
    /// Elements of the column scratch (0 for a pointwise convolution).
    pub col_len: usize,
    /// Copies the image into the interior of the padded scratch (inputs:
    /// image; outputs: padded).
    pub pad: Option<KernelId>,
    /// im2col: copies every tap's receptive field from the padded scratch
    /// (or the image when unpadded) into the column scratch.
    pub im2col: Option<KernelId>,
    /// col2im (transposed convolutions): adds every column entry onto the
    /// position of the padded scratch (or the image when unpadded) it was
    /// read from, tap by tap in a fixed order; the target starts zeroed.
    pub col2im: Option<KernelId>,
    /// Copies the interior of the padded scratch into the image.
    pub unpad: Option<KernelId>,
}

/// One step of the program: the calls of one kernel of the partition.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCode {
    /// The partition's kernel name (`k3`).
    pub name: String,
    pub kind: KernelKind,
    pub calls: Vec<Call>,
}

/// A graph input the caller provides.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramInput {
    pub value: ValueId,
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// Where a graph output is read from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Element `i` (row-major over `shape`) at `buf[offset + Σ i_a·strides[a]]`.
    Strided { buf: Buf, offset: isize, strides: Vec<isize> },
    /// Every element equals this constant.
    Constant(f32),
}

/// A graph output.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramOutput {
    pub kind: OutputKind,
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub source: Source,
}

/// A lowered graph: its inputs, steps, outputs, arena size and JIT.
pub struct Program {
    pub inputs: Vec<ProgramInput>,
    pub steps: Vec<StepCode>,
    pub outputs: Vec<ProgramOutput>,
    /// Arena elements needed (the plan's peak plus scratch regions).
    pub arena_len: usize,
    /// The compiled loop and window kernels.
    pub jit: Jit,
    /// The threads the plan split the kernels for.
    pub threads: usize,
    /// Whether the kernels bounds-check every access.
    pub checking: Checking,
    /// The plan's peak arena bytes.
    pub peak_bytes: usize,
    /// The number of kernels of the partition.
    pub kernels: usize,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("inputs", &self.inputs)
            .field("steps", &self.steps)
            .field("outputs", &self.outputs)
            .field("arena_len", &self.arena_len)
            .field("threads", &self.threads)
            .field("checking", &self.checking)
            .finish()
    }
}

/// How a value is read: from a buffer with an offset and strides (per axis
/// of the value), or as a constant.
#[derive(Clone, Debug, PartialEq)]
enum Access {
    Mem { base: ValueId, offset: isize, strides: Vec<isize> },
    Const(f32),
}

fn row_major(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut s = 1isize;
    for a in (0..shape.len()).rev() {
        strides[a] = s;
        s = s.saturating_mul(shape[a] as isize);
    }
    strides
}

/// True when `strides` lay `shape` out row-major (size-1 axes ignored).
fn is_row_major(shape: &[usize], strides: &[isize]) -> bool {
    let want = row_major(shape);
    shape.iter().zip(strides.iter().zip(&want)).all(|(&n, (&s, &w))| n == 1 || s == w)
}

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
    // New values written over their inputs: value → the input's number.
    lw.in_place = plan.in_place.iter().filter_map(|(v, p)| Some((*v, *lw.input_index.get(p)?))).collect();
    let mut steps = vec![];
    for (s, step) in plan.steps.iter().enumerate() {
        let kernel = partition.kernels.get(step.kernel).ok_or_else(|| err(format!("no kernel {s}")))?;
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
    fn shape(&self, v: ValueId) -> Result<Vec<usize>, String> {
        plan::resolve(&self.graph.ty(v).shape, &self.dims)
    }

    fn len_of(&self, v: ValueId) -> Result<usize, String> {
        Ok(self.shape(v)?.iter().product())
    }

    /// The buffer holding base value `v` (a graph input or a stored value).
    fn buf(&self, v: ValueId) -> Result<Buf, String> {
        let index = self.in_place.get(&v).or_else(|| self.input_index.get(&v));
        if let Some(&index) = index {
            return Ok(Buf::Input { index, len: self.inputs[index].shape.iter().product() });
        }
        self.arena.get(&v).copied().ok_or_else(|| format!("{v} has no buffer in the plan"))
    }

    /// A fresh scratch region of `len` elements above the plan's buffers.
    fn scratch(&mut self, len: usize) -> Buf {
        let offset = self.arena_len.div_ceil(16) * 16;
        self.arena_len = offset + len.max(1).div_ceil(16) * 16;
        Buf::Arena { offset, len }
    }

    /// How `v` is read, walking views down to their base.
    fn access(&self, v: ValueId) -> Result<Access, String> {
        match self.partition.placement.get(v.index()) {
            Some(Placement::Leaf) | Some(Placement::Kernel(_)) => {
                let shape = self.shape(v)?;
                let mut strides = row_major(&shape);
                if self.plan.transposed.contains(&v) {
                    let r = shape.len();
                    strides[r - 2] = 1;
                    strides[r - 1] = shape[r - 2] as isize;
                }
                Ok(Access::Mem { base: v, offset: 0, strides })
            }
            Some(Placement::Inline) | Some(Placement::View { .. }) => self.derive(v),
            None => Err(format!("{v} has no placement")),
        }
    }

    /// How the value of a view, constant or size node `v` is read, from
    /// its operand's access (whatever `v`'s own placement).
    fn derive(&self, v: ValueId) -> Result<Access, String> {
        let node = self.graph.node(v);
        match &node.op {
            Op::Const { value } => Ok(Access::Const(*value as f32)),
            Op::Size { axes } => {
                let arg = node.args.first().ok_or("`size` without operand")?;
                let shape = self.shape(*arg)?;
                let n: usize = axes.iter().map(|&a| shape.get(a).copied().unwrap_or(1)).product();
                Ok(Access::Const(n as f32))
            }
            Op::Broadcast { .. } | Op::Permute { .. } | Op::Reshape { .. } => {
                let arg = *node.args.first().ok_or_else(|| format!("view {v} has no operand"))?;
                let inner = self.access(arg)?;
                let Access::Mem { base, offset, strides } = inner else { return Ok(inner) };
                let from = self.shape(arg)?;
                let to = self.shape(v)?;
                let strides = match &node.op {
                    Op::Broadcast { .. } => {
                        let off = to.len() - from.len();
                        (0..to.len())
                            .map(|a| {
                                if a < off || (from[a - off] == 1 && to[a] != 1) {
                                    0
                                } else {
                                    strides[a - off]
                                }
                            })
                            .collect()
                    }
                    Op::Permute { axes } => axes.iter().map(|&a| strides[a]).collect(),
                    Op::Reshape { .. } => {
                        if !is_row_major(&from, &strides) {
                            return Err(format!("{v} reshapes a value that is not contiguous"));
                        }
                        row_major(&to)
                    }
                    other => return Err(format!("{v} ({}) is placed as a view", other.mnemonic())),
                };
                Ok(Access::Mem { base, offset, strides })
            }
            other => Err(format!("{v} ({}) is neither a view nor an immediate", other.mnemonic())),
        }
    }

    /// Ranges of flat indices over `domain` for the plan's split of a step.
    fn flat_ranges(&self, domain: &[usize], split: &plan::Split) -> Vec<(usize, usize)> {
        let total: usize = domain.iter().product();
        match split.axis {
            Some(a) if split.chunks > 1 && domain[..a].iter().all(|&n| n == 1) => {
                let inner: usize = domain[a + 1..].iter().product();
                (0..split.chunks)
                    .map(|i| {
                        (
                            i * split.extent / split.chunks * inner,
                            (i + 1) * split.extent / split.chunks * inner,
                        )
                    })
                    .collect()
            }
            _ => vec![(0, total)],
        }
    }

    fn row_ranges(&self, rows: usize, split: &plan::Split) -> Vec<(usize, usize)> {
        match split.axis {
            Some(0) if split.chunks > 1 && split.extent == rows => {
                (0..split.chunks).map(|i| (i * rows / split.chunks, (i + 1) * rows / split.chunks)).collect()
            }
            _ => vec![(0, rows)],
        }
    }

    fn kernel_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        match kernel.kind {
            KernelKind::Loop => {
                let domain = plan::resolve(&kernel.domain, &self.dims)?;
                let ranges = self.flat_ranges(&domain, &step.split);
                self.loop_calls(&kernel.name, &kernel.nodes, &kernel.outputs, &domain, ranges)
            }
            KernelKind::Copy => self.copy_calls(kernel),
            KernelKind::MatMul
            | KernelKind::Conv
            | KernelKind::ConvTranspose
            | KernelKind::ConvWeightGrad => self.contraction_calls(kernel, step),
            KernelKind::Pool
            | KernelKind::PoolGrad
            | KernelKind::Resize
            | KernelKind::ResizeGrad
            | KernelKind::ArgMax => self.window_calls(kernel, step),
        }
    }

    /// An input of a loop kernel being built: its buffer and operand.
    fn operand(
        &self,
        inputs: &mut Vec<(Buf, Operand)>,
        base: ValueId,
        offset: isize,
        strides: Vec<isize>,
    ) -> Result<usize, String> {
        let buf = self.buf(base)?;
        let elem = if self.graph.ty(base).dtype == DType::I32 { Elem::I32 } else { Elem::F32 };
        let op = Operand { offset, strides, elem };
        if let Some(i) = inputs.iter().position(|(b, o)| *b == buf && *o == op) {
            return Ok(i);
        }
        inputs.push((buf, op));
        Ok(inputs.len() - 1)
    }

    /// The body expression reading `v` (of the domain's shape) from outside
    /// the kernel.
    fn read(
        &self,
        inputs: &mut Vec<(Buf, Operand)>,
        body: &mut Vec<Expr>,
        v: ValueId,
    ) -> Result<usize, String> {
        match self.access(v)? {
            Access::Const(c) => body.push(Expr::Const(c)),
            Access::Mem { base, offset, strides } => {
                let i = self.operand(inputs, base, offset, strides)?;
                body.push(Expr::Input(i));
            }
        }
        Ok(body.len() - 1)
    }

    /// A loop kernel computing `nodes` over `domain` and storing `outputs`.
    fn loop_calls(
        &mut self,
        name: &str,
        nodes: &[ValueId],
        outputs: &[ValueId],
        domain: &[usize],
        ranges: Vec<(usize, usize)>,
    ) -> Result<Vec<Call>, String> {
        let mut inputs: Vec<(Buf, Operand)> = vec![];
        let mut body: Vec<Expr> = vec![];
        let mut expr_of: HashMap<ValueId, usize> = HashMap::new();
        let mut stores: Vec<(Buf, Store)> = vec![];
        let mut fills = vec![];
        let in_kernel: std::collections::HashSet<ValueId> = nodes.iter().copied().collect();
        for &v in nodes {
            let node = self.graph.node(v);
            let arg = |this: &Self, body: &mut Vec<Expr>, inputs: &mut Vec<(Buf, Operand)>, i: usize| {
                let a = *node.args.get(i).ok_or_else(|| format!("{v} lacks operand {i}"))?;
                match expr_of.get(&a) {
                    Some(&e) if in_kernel.contains(&a) => Ok(e),
                    _ => this.read(inputs, body, a),
                }
            };
            let e = match &node.op {
                Op::Unary(u) => {
                    let a = arg(self, &mut body, &mut inputs, 0)?;
                    Expr::Unary(*u, a)
                }
                Op::Binary(b) => {
                    let x = arg(self, &mut body, &mut inputs, 0)?;
                    let y = arg(self, &mut body, &mut inputs, 1)?;
                    Expr::Binary(*b, x, y)
                }
                Op::Compare(c) => {
                    let x = arg(self, &mut body, &mut inputs, 0)?;
                    let y = arg(self, &mut body, &mut inputs, 1)?;
                    Expr::Compare(*c, x, y)
                }
                Op::Select => {
                    let c = arg(self, &mut body, &mut inputs, 0)?;
                    let x = arg(self, &mut body, &mut inputs, 1)?;
                    let y = arg(self, &mut body, &mut inputs, 2)?;
                    Expr::Select(c, x, y)
                }
                Op::Cast { to } => {
                    let from = self.graph.ty(node.args[0]).dtype;
                    let a = arg(self, &mut body, &mut inputs, 0)?;
                    Expr::Cast { from, to: *to, arg: a }
                }
                Op::OneHot { .. } => {
                    let labels = node.args[0];
                    let Access::Mem { base, offset, mut strides } = self.access(labels)? else {
                        return Err(format!("{v}: one_hot of a constant"));
                    };
                    strides.push(0);
                    let i = self.operand(&mut inputs, base, offset, strides)?;
                    body.push(Expr::Input(i));
                    let l = body.len() - 1;
                    body.push(Expr::AxisIndex(domain.len() - 1));
                    Expr::Compare(crate::ir::op::CmpOp::Eq, l, body.len() - 1)
                }
                Op::RngUniform { stream, .. } => {
                    let key = node.args[0];
                    let Access::Mem { base, offset, .. } = self.access(key)? else {
                        return Err(format!("{v}: rng key is a constant"));
                    };
                    let i = self.operand(&mut inputs, base, offset, vec![0; domain.len()])?;
                    Expr::Random { key: i, stream: *stream }
                }
                Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
                    let a = arg(self, &mut body, &mut inputs, 0)?;
                    let out_shape = self.shape(v)?;
                    let out_strides = row_major(&out_shape);
                    let mut strides = vec![0isize; domain.len()];
                    let mut k = 0;
                    for (ax, s) in strides.iter_mut().enumerate() {
                        if !axes.contains(&ax) {
                            *s = out_strides[k];
                            k += 1;
                        }
                    }
                    let (reduce, init) = match node.op {
                        Op::ReduceSum { .. } => (Reduce::Sum, 0.0),
                        _ => (Reduce::Max, f32::NEG_INFINITY),
                    };
                    let buf = self.buf(v)?;
                    fills.push(Call::Fill { buf, value: init });
                    stores.push((
                        buf,
                        Store { value: a, offset: 0, strides, elem: Elem::F32, reduce: Some(reduce) },
                    ));
                    continue;
                }
                other => return Err(format!("{v} ({}) cannot be part of a loop kernel", other.mnemonic())),
            };
            body.push(e);
            expr_of.insert(v, body.len() - 1);
        }
        for &o in outputs {
            if matches!(self.graph.node(o).op, Op::ReduceSum { .. } | Op::ReduceMax { .. }) {
                continue;
            }
            let e = *expr_of.get(&o).ok_or_else(|| format!("output {o} is not computed by the kernel"))?;
            let shape = self.shape(o)?;
            if shape != domain {
                return Err(format!("output {o} has shape {shape:?}, the kernel's domain is {domain:?}"));
            }
            let elem = if self.graph.ty(o).dtype == DType::I32 { Elem::I32 } else { Elem::F32 };
            stores.push((
                self.buf(o)?,
                Store { value: e, offset: 0, strides: row_major(domain), elem, reduce: None },
            ));
        }
        let kernel = LoopKernel {
            name: name.to_string(),
            shape: domain.to_vec(),
            inputs: inputs.iter().map(|(_, o)| o.clone()).collect(),
            body,
            outputs: stores.iter().map(|(_, s)| s.clone()).collect(),
        };
        let id = self.jit.add_loop_kernel(&kernel, self.checking).map_err(|e| e.message)?;
        fills.push(Call::Loop {
            kernel: id,
            inputs: inputs.into_iter().map(|(b, _)| b).collect(),
            outputs: stores.into_iter().map(|(b, _)| b).collect(),
            ranges,
        });
        Ok(fills)
    }

    /// A loop kernel copying `src` (any access) into `dst` at `offset` with
    /// `dst_strides`, over `shape`.
    fn copy_into(
        &mut self,
        name: String,
        src: Access,
        shape: &[usize],
        dst: Buf,
        (offset, dst_strides, elem): (isize, Vec<isize>, Elem),
    ) -> Result<Call, String> {
        let mut inputs = vec![];
        let mut body = vec![];
        match src {
            Access::Const(c) => body.push(Expr::Const(c)),
            Access::Mem { base, offset, strides } => {
                let i = self.operand(&mut inputs, base, offset, strides)?;
                body.push(Expr::Input(i));
            }
        }
        let kernel = LoopKernel {
            name,
            shape: shape.to_vec(),
            inputs: inputs.iter().map(|(_, o): &(Buf, Operand)| o.clone()).collect(),
            body,
            outputs: vec![Store { value: 0, offset, strides: dst_strides, elem, reduce: None }],
        };
        let id = self.jit.add_loop_kernel(&kernel, self.checking).map_err(|e| e.message)?;
        let total: usize = shape.iter().product();
        Ok(Call::Loop {
            kernel: id,
            inputs: inputs.into_iter().map(|(b, _)| b).collect(),
            outputs: vec![dst],
            ranges: vec![(0, total)],
        })
    }

    fn copy_calls(&mut self, kernel: &Kernel) -> Result<Vec<Call>, String> {
        let &[v] = kernel.nodes.as_slice() else {
            return Err(format!(
                "a copy kernel computes one value, {} has {}",
                kernel.name,
                kernel.nodes.len()
            ));
        };
        let node = self.graph.node(v);
        let shape = self.shape(v)?;
        let dst = self.buf(v)?;
        let elem = if node.ty.dtype == DType::I32 { Elem::I32 } else { Elem::F32 };
        let out = row_major(&shape);
        let name = |i: usize| format!("{}_{i}", kernel.name);
        match &node.op {
            Op::Slice { axis, start, .. } => {
                let src = match self.access(node.args[0])? {
                    Access::Mem { base, offset, strides } => {
                        Access::Mem { base, offset: offset + *start as isize * strides[*axis], strides }
                    }
                    c => c,
                };
                Ok(vec![self.copy_into(name(0), src, &shape, dst, (0, out, elem))?])
            }
            Op::Pad { axis, lo, .. } => {
                let from = self.shape(node.args[0])?;
                let src = self.access(node.args[0])?;
                let fill = Call::Fill { buf: dst, value: 0.0 };
                let copy =
                    self.copy_into(name(0), src, &from, dst, (*lo as isize * out[*axis], out, elem))?;
                Ok(vec![fill, copy])
            }
            Op::Concat { axis } => {
                let mut calls = vec![];
                let mut at = 0usize;
                for (i, &a) in node.args.iter().enumerate() {
                    let from = self.shape(a)?;
                    let src = self.access(a)?;
                    calls.push(self.copy_into(
                        name(i),
                        src,
                        &from,
                        dst,
                        (at as isize * out[*axis], out.clone(), elem),
                    )?);
                    at += from[*axis];
                }
                Ok(calls)
            }
            Op::Reshape { .. } => {
                // The reshape's row-major memory is its operand's elements in
                // row-major order: iterate over the operand's shape.
                let arg = node.args[0];
                let from = self.shape(arg)?;
                let src = self.access(arg)?;
                Ok(vec![self.copy_into(name(0), src, &from, dst, (0, row_major(&from), elem))?])
            }
            _ => {
                // A view or inline value that must exist in memory.
                let src = self.derive(v)?;
                Ok(vec![self.copy_into(name(0), src, &shape, dst, (0, out, elem))?])
            }
        }
    }

    /// The buffer of `v` as contiguous row-major memory: its own buffer
    /// when it is, else a scratch copy made by a call appended to `calls`.
    fn contiguous(&mut self, v: ValueId, name: String, calls: &mut Vec<Call>) -> Result<Buf, String> {
        let shape = self.shape(v)?;
        let access = self.access(v)?;
        if let Access::Mem { base, offset: 0, strides } = &access {
            if is_row_major(&shape, strides) {
                let buf = self.buf(*base)?;
                if buf.len() == shape.iter().product::<usize>() {
                    return Ok(buf);
                }
            }
        }
        let len = shape.iter().product();
        let dst = self.scratch(len);
        let elem = if self.graph.ty(v).dtype == DType::I32 { Elem::I32 } else { Elem::F32 };
        calls.push(self.copy_into(name, access, &shape, dst, (0, row_major(&shape), elem))?);
        Ok(dst)
    }

    fn window_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let v = kernel.nodes[0];
        let node = self.graph.node(v);
        let op = match &node.op {
            Op::Pool(w) => WindowOp::Pool {
                kind: w.kind,
                window: w.window.clone(),
                stride: w.stride.clone(),
                padding: w.padding.clone(),
            },
            Op::PoolGrad(w) => WindowOp::PoolGrad {
                kind: w.kind,
                window: w.window.clone(),
                stride: w.stride.clone(),
                padding: w.padding.clone(),
            },
            Op::Resize { size } => WindowOp::Resize { size: size.clone() },
            Op::ResizeGrad { size } => WindowOp::ResizeGrad { size: size.clone() },
            Op::ArgMax { axis } => WindowOp::ArgMax { axis: *axis },
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

    fn contraction_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let main = kernel
            .nodes
            .iter()
            .copied()
            .find(|n| !kernel.epilogue.contains(n))
            .ok_or_else(|| format!("{} has no contraction", kernel.name))?;
        let node = self.graph.node(main);
        let y_shape = self.shape(main)?;
        let y = self.buf(main)?;
        let mut calls = vec![];
        match &node.op {
            Op::MatMul => {
                let (a, b) = (node.args[0], node.args[1]);
                let a_shape = self.shape(a)?;
                let r = a_shape.len();
                let (m, k, n) = (a_shape[r - 2], a_shape[r - 1], y_shape[r - 1]);
                let mat =
                    |this: &mut Self, v: ValueId, calls: &mut Vec<Call>, tag: &str| -> Result<_, String> {
                        match this.access(v)? {
                            Access::Mem { base, offset, strides } => Ok((this.buf(base)?, offset, strides)),
                            Access::Const(_) => {
                                let buf = this.contiguous(v, format!("{}_{tag}", kernel.name), calls)?;
                                Ok((buf, 0, row_major(&this.shape(v)?)))
                            }
                        }
                    };
                let (abuf, aoff, ast) = mat(self, a, &mut calls, "a")?;
                let (bbuf, boff, bst) = mat(self, b, &mut calls, "b")?;
                let Access::Mem { strides: cst, .. } = self.access(main)? else {
                    return Err(format!("{main}: a matmul result is a constant"));
                };
                let batch_shape = &y_shape[..r - 2];
                let batches: usize = batch_shape.iter().product();
                let mut offsets = Vec::with_capacity(batches);
                for bi in 0..batches {
                    let mut rem = bi;
                    let (mut ao, mut bo, mut co) = (aoff, boff, 0isize);
                    for d in (0..r - 2).rev() {
                        let i = (rem % batch_shape[d]) as isize;
                        rem /= batch_shape[d];
                        ao += i * ast[d];
                        bo += i * bst[d];
                        co += i * cst[d];
                    }
                    let conv =
                        |x: isize| usize::try_from(x).map_err(|_| format!("{main}: negative operand offset"));
                    offsets.push((conv(ao)?, conv(bo)?, conv(co)?));
                }
                calls.push(Call::MatMul {
                    m,
                    n,
                    k,
                    a: MatOperand { buf: abuf, row_stride: ast[r - 2], col_stride: ast[r - 1] },
                    b: MatOperand { buf: bbuf, row_stride: bst[r - 2], col_stride: bst[r - 1] },
                    c: MatOperand { buf: y, row_stride: cst[r - 2], col_stride: cst[r - 1] },
                    threads: if m * n * k * offsets.len() >= PARALLEL_GEMM_WORK {
                        self.plan.threads
                    } else {
                        1
                    },
                    offsets,
                });
            }
            Op::Conv(ConvAttrs { stride, padding, dilation, groups })
            | Op::ConvWeightGrad { conv: ConvAttrs { stride, padding, dilation, groups }, .. }
            | Op::ConvTranspose { conv: ConvAttrs { stride, padding, dilation, groups }, .. } => {
                let kind = match &node.op {
                    Op::ConvWeightGrad { kernel, .. } => ConvKind::WeightGrad { kernel: kernel.clone() },
                    Op::ConvTranspose { output_padding, .. } => {
                        ConvKind::Transpose { output_padding: output_padding.clone() }
                    }
                    _ => ConvKind::Forward,
                };
                let x = self.contiguous(node.args[0], format!("{}_x", kernel.name), &mut calls)?;
                let w = self.contiguous(node.args[1], format!("{}_w", kernel.name), &mut calls)?;
                let attrs = ConvCall {
                    stride: stride.clone(),
                    padding: padding.clone(),
                    dilation: dilation.clone(),
                    groups: *groups,
                };
                let (x_shape, w_shape) = (self.shape(node.args[0])?, self.shape(node.args[1])?);
                // The underlying convolution's input image, output positions
                // and kernel.
                let (image, out, taps) = match &kind {
                    ConvKind::Forward => (&x_shape[1..], &y_shape[2..], &w_shape[2..]),
                    ConvKind::Transpose { .. } => (&y_shape[1..], &x_shape[2..], &w_shape[2..]),
                    ConvKind::WeightGrad { kernel } => (&x_shape[1..], &w_shape[2..], &kernel[..]),
                };
                let packing = self.conv_packing(&kernel.name, &kind, &attrs, image, out, taps)?;
                calls.push(Call::Conv {
                    kind,
                    attrs,
                    x,
                    x_shape,
                    w,
                    w_shape,
                    y,
                    y_shape: y_shape.clone(),
                    chunks: step.split.chunks,
                    packing,
                });
            }
            other => return Err(format!("{main} ({}) is not a contraction", other.mnemonic())),
        }
        if !kernel.epilogue.is_empty() {
            let outputs: Vec<ValueId> =
                kernel.outputs.iter().copied().filter(|o| kernel.epilogue.contains(o)).collect();
            let ranges = self.flat_ranges(&y_shape, &step.split);
            calls.extend(self.loop_calls(
                &format!("{}_epilogue", kernel.name),
                &kernel.epilogue,
                &outputs,
                &y_shape,
                ranges,
            )?);
        }
        Ok(calls)
    }
}

impl Lowering<'_> {
    /// Compiles the packing kernels of a convolution (see [`ConvPacking`])
    /// whose input image is `image` (`[C, *S]`), with `out` output positions
    /// per spatial axis and kernel `taps`.
    fn conv_packing(
        &mut self,
        name: &str,
        kind: &ConvKind,
        attrs: &ConvCall,
        image: &[usize],
        out: &[usize],
        taps: &[usize],
    ) -> Result<ConvPacking, String> {
        let spatial = image.len().saturating_sub(1);
        if spatial == 0
            || out.len() != spatial
            || taps.len() != spatial
            || [attrs.stride.len(), attrs.padding.len(), attrs.dilation.len()].iter().any(|&l| l != spatial)
        {
            return Err(format!("{name}: convolution attributes do not fit image {image:?}"));
        }
        let size = |dims: &[usize]| -> Result<usize, String> {
            dims.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .filter(|&n| isize::try_from(n).is_ok())
                .ok_or_else(|| format!("{name}: the size of {dims:?} overflows"))
        };
        let padded_dims: Vec<usize> = (0..=spatial)
            .map(|d| match d {
                0 => Some(image[0]),
                _ => image[d].checked_add(attrs.padding[d - 1].0)?.checked_add(attrs.padding[d - 1].1),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{name}: the padded image size overflows"))?;
        let padded = attrs.padding.iter().any(|&p| p != (0, 0));
        let pointwise = !padded
            && taps.iter().all(|&k| k == 1)
            && attrs.stride.iter().all(|&s| s == 1)
            && out == &image[1..];
        let col_shape: Vec<usize> = [&image[..1], taps, out].concat();
        let col_len = if pointwise { 0 } else { size(&col_shape)? };
        let padded_len = if padded { size(&padded_dims)? } else { 0 };
        let mut packing =
            ConvPacking { padded_len, col_len, pad: None, im2col: None, col2im: None, unpad: None };
        if pointwise {
            return Ok(packing);
        }
        // Where a column entry (c, tap, p) reads in the padded image:
        // c·|Sp| + Σ (tap_d·dilation_d + p_d·stride_d)·row_d.
        let rows = row_major(&padded_dims);
        let at = |v: usize| isize::try_from(v).map_err(|_| format!("{name}: a stride overflows"));
        let mut window = vec![rows[0]];
        for d in 0..spatial {
            window.push(at(attrs.dilation[d])?.checked_mul(rows[d + 1]).ok_or("stride overflow")?);
        }
        for d in 0..spatial {
            window.push(at(attrs.stride[d])?.checked_mul(rows[d + 1]).ok_or("stride overflow")?);
        }
        let interior: isize = (0..spatial).map(|d| attrs.padding[d].0 as isize * rows[d + 1]).sum();
        let copy =
            |from: (isize, Vec<isize>), to: (isize, Vec<isize>), shape: &[usize], suffix: &str| LoopKernel {
                name: format!("{name}_{suffix}"),
                shape: shape.to_vec(),
                inputs: vec![Operand { offset: from.0, strides: from.1, elem: Elem::F32 }],
                body: vec![Expr::Input(0)],
                outputs: vec![Store { value: 0, offset: to.0, strides: to.1, elem: Elem::F32, reduce: None }],
            };
        let dense = row_major(image);
        let checking = self.checking;
        let add =
            |this: &mut Self, k: LoopKernel| this.jit.add_loop_kernel(&k, checking).map_err(|e| e.message);
        match kind {
            ConvKind::Forward | ConvKind::WeightGrad { .. } => {
                if padded {
                    let k = copy((0, dense), (interior, rows.clone()), image, "pad");
                    packing.pad = Some(add(self, k)?);
                }
                let k = copy((0, window), (0, row_major(&col_shape)), &col_shape, "im2col");
                packing.im2col = Some(add(self, k)?);
            }
            ConvKind::Transpose { .. } => {
                let mut k = copy((0, row_major(&col_shape)), (0, window), &col_shape, "col2im");
                k.outputs[0].reduce = Some(Reduce::Sum);
                packing.col2im = Some(add(self, k)?);
                if padded {
                    let k = copy((interior, rows), (0, dense), image, "unpad");
                    packing.unpad = Some(add(self, k)?);
                }
            }
        }
        Ok(packing)
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
