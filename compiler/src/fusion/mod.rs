//! Fusion: partitions a graph into kernels, the units that code generation
//! compiles and the runtime runs one after another.
//!
//! Every node is placed in exactly one of four ways ([`Placement`]):
//! - **leaf**: graph inputs (data, targets, parameters, state, key, hyper)
//!   live outside the arena and are read by kernels;
//! - **inline**: `const` and `size` are scalars known when the kernel is
//!   generated (sizes of symbolic dimensions are bound at plan time), read as
//!   immediates, never stored;
//! - **view**: `broadcast`, `permute`, `reshape`, `slice` and
//!   `stop_gradient` are not computed: a reader reads the view's *base* (the
//!   leaf, inline value or kernel result underneath the chain of views) at an
//!   offset with strides — stride 0 along broadcast axes, permuted strides
//!   for a permute, a reshape of a contiguous layout (or one that only adds
//!   or drops axes of size 1) is the same memory, a slice starts further in
//!   with its operand's strides, and `stop_gradient` is its operand. Codegen
//!   resolves a view by walking the node's operands down to its base;
//! - **kernel**: computed by one kernel.
//!
//! Kernel kinds ([`KernelKind`]) and the rules that form them:
//! - `Loop`: a maximal group of elementwise ops (unary, binary, compare,
//!   select, cast, and the generated values `rng_uniform` and `one_hot`)
//!   over one iteration domain (their common shape), with the reductions
//!   (`reduce_sum`, `reduce_max`) of domain values. An op joins the group of
//!   an operand it reads *directly* (same shape, same index, not through a
//!   view) when that operand is an elementwise value of the group; the groups
//!   of several such operands merge. A reduction's result leaves the kernel:
//!   elementwise ops that read it (e.g. softmax's `x - max`) are in a later
//!   kernel, as is anything that reads a kernel value through a view
//!   (a broadcast or permute needs the whole value first). Groups never merge
//!   when the kernel graph would get a cycle.
//! - `MatMul`, `Conv`, `ConvTranspose`: contractions, computed with a tuned
//!   GEMM. Elementwise ops of the contraction's pass (forward or backward)
//!   and of the result's shape that read the last op attached (the
//!   contraction's result first) are attached as the kernel's
//!   [`Kernel::epilogue`] (bias add, activation, masks), and so are those
//!   that read the result or any op of the epilogue (a value combining two
//!   of them, as `0.5·x·(1 + erf(x/√2))` does): the GEMM writes its result
//!   to a buffer, then the epilogue runs over it. A `reduce_sum` or
//!   `reduce_max` of an epilogue op (a normalisation's per-channel
//!   statistics) joins the epilogue too when the first axis it keeps has at
//!   least 16 elements and is not the innermost: the value is reduced while
//!   in registers and stored only if something else reads it, and the plan
//!   splits the kernel along an axis no reduction reduces.
//!   A product that nothing else reads, added to a sum of products of its
//!   shape, is instead accumulated onto that sum ([`Kernel::accumulate`]):
//!   the gradient of a weight shared by many products (a recurrence
//!   unrolled over its steps) becomes one accumulating GEMM per product.
//! - `ConvWeightGrad`, `Pool`, `PoolGrad`, `Resize`, `ResizeGrad`, `ArgMax`,
//!   `Warp`, `WarpGradInput`, `WarpGradFlow`: one node each, no epilogue.
//! - `Softmax`, `SoftmaxGrad`, `Standardize`, `StandardizeGrad`: one node
//!   each (rows of the last axis, each read and written once by the
//!   runtime).
//! - `Gather`, `ScatterSum`, `ScatterMax`, `ScatterMaxGrad`: one node each,
//!   no epilogue; their operands (the index included) are contiguous memory.
//! - `Lstm`, `LstmGrad`: one node each, no epilogue, contiguous operands;
//!   the runtime's recurrence kernels. The weight gradient autodiff writes
//!   for an `lstm`, `matmul_sum` of the `z` lanes of its result (permuted)
//!   and the `dpre` lanes of the `lstm_grad`, joins the `lstm_grad`'s
//!   kernel: the recurrence accumulates it step by step while each step's
//!   rows are in cache, instead of a GEMM reading both operands back from
//!   memory. When nothing else reads the `lstm_grad`'s result, it is not
//!   stored at all.
//! - Afterwards, elementwise values a loop computes only for one later
//!   kernel of the same domain move into it (into the epilogue of a
//!   contraction) when they read only what is stored anyway: an
//!   activation's derivative (relu's mask `y > 0`, tanh's `1 - y²`, the
//!   `e^{-x²/2}` of GELU's) is computed where the backward pass reads it,
//!   from the forward result the next layer reads, instead of being stored
//!   by the forward pass. A loop left empty is no kernel.
//! - `Copy`: one data-movement node (`pad`, `concat`), or a view or
//!   inline value that must exist in memory: a graph output, an operand of a
//!   window op or convolution that is not contiguous memory, a matmul
//!   operand over an inline value, or a reshape of a non-contiguous view.
//!
//! Operand requirements: loops, copies and argmax read any view or inline
//! value; matmul reads any strided view of memory; convolutions, pooling,
//! resizing and warping (and their gradients), gather, the scatters and
//! the recurrences read contiguous memory only.
//!
//! Kernels are numbered in a topological order of the kernel graph (among
//! ready kernels, the one whose first node comes first), so running them in
//! index order is valid.
//!
//! Last, a cheap elementwise value (a normalisation's `x - mean`) that
//! later loops or epilogues read is computed again by each of them instead
//! of being stored, when what it is computed from is stored anyway
//! (`recompute`); the listing tags it `(recomputed)` there.
//!
//! The partition is built in four parts:
//! - `views`: which views and inline values must be stored, and the
//!   layout of every value relative to its base;
//! - `grouping`: nodes gathered into kernels by the rules above, without
//!   cycles in the kernel graph;
//! - `recompute`: values computed again where they are read;
//! - [`report`]: why fusion stopped at each boundary, and the listing of
//!   `nnc ir --stage fused`.
//!
//! This module holds the result types, the classification of ops and
//! [`partition`], which runs the parts and orders the kernels.

mod grouping;
mod recompute;
mod report;
mod views;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};

use crate::ir::{Graph, Op, Shape, ValueId};
use grouping::Builder;
use report::boundary_reason;
pub use report::report;
use views::materialise;

/// What a kernel computes; code generation has one strategy per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// Elementwise ops over one domain with the reductions they feed.
    Loop,
    /// `matmul` (GEMM), with an optional elementwise epilogue.
    MatMul,
    /// `conv` (implicit GEMM or im2col), with an optional epilogue.
    Conv,
    /// `conv_transpose`, with an optional epilogue.
    ConvTranspose,
    /// `conv_weight_grad`.
    ConvWeightGrad,
    /// `maxpool` or `avgpool`.
    Pool,
    /// `maxpool_grad` or `avgpool_grad`.
    PoolGrad,
    /// `resize`.
    Resize,
    /// `resize_grad`.
    ResizeGrad,
    /// `argmax`.
    ArgMax,
    /// `warp`.
    Warp,
    /// `warp_grad_input`.
    WarpGradInput,
    /// `warp_grad_flow`.
    WarpGradFlow,
    /// `gather`.
    Gather,
    /// `scatter_sum`.
    ScatterSum,
    /// `scatter_max`.
    ScatterMax,
    /// `scatter_max_grad`.
    ScatterMaxGrad,
    /// `softmax` or `softmax_grad`: rows of the last axis, each read and
    /// written once.
    Softmax,
    /// `standardize` or `standardize_grad`: rows of the last axis, each
    /// read from memory once (three times while in L1) and written once.
    Standardize,
    /// `lstm` or `lstm_reverse`.
    Lstm,
    /// `lstm_grad` or `lstm_reverse_grad`.
    LstmGrad,
    /// Data movement: `pad`, `concat`, or materialising a view or inline
    /// value.
    Copy,
}

impl KernelKind {
    /// Lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Loop => "loop",
            KernelKind::MatMul => "matmul",
            KernelKind::Conv => "conv",
            KernelKind::ConvTranspose => "conv_transpose",
            KernelKind::ConvWeightGrad => "conv_weight_grad",
            KernelKind::Pool => "pool",
            KernelKind::PoolGrad => "pool_grad",
            KernelKind::Resize => "resize",
            KernelKind::ResizeGrad => "resize_grad",
            KernelKind::ArgMax => "argmax",
            KernelKind::Warp => "warp",
            KernelKind::WarpGradInput => "warp_grad_input",
            KernelKind::WarpGradFlow => "warp_grad_flow",
            KernelKind::Gather => "gather",
            KernelKind::ScatterSum => "scatter_sum",
            KernelKind::ScatterMax => "scatter_max",
            KernelKind::ScatterMaxGrad => "scatter_max_grad",
            KernelKind::Softmax => "softmax",
            KernelKind::Standardize => "standardize",
            KernelKind::Lstm => "lstm",
            KernelKind::LstmGrad => "lstm_grad",
            KernelKind::Copy => "copy",
        }
    }

    /// True for kinds computed with a GEMM (matmul and convolutions).
    pub fn is_contraction(self) -> bool {
        matches!(
            self,
            KernelKind::MatMul | KernelKind::Conv | KernelKind::ConvTranspose | KernelKind::ConvWeightGrad
        )
    }

    fn takes_epilogue(self) -> bool {
        matches!(self, KernelKind::MatMul | KernelKind::Conv | KernelKind::ConvTranspose)
    }
}

/// One kernel: a set of nodes computed together.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// `k0`, `k1`, … in kernel order.
    pub name: String,
    pub kind: KernelKind,
    /// The nodes computed, in definition order (the epilogue included).
    /// An `LstmGrad` kernel holds the `lstm_grad` and, when it computes the
    /// weight gradient as well, that `matmul_sum` second. A recomputed
    /// value (see `recompute`) is a node of every kernel that reads it and
    /// of the kernel of its placement, which does not store it.
    pub nodes: Vec<ValueId>,
    /// For contraction kernels: the elementwise chain run over the
    /// contraction's result, in definition order: the nodes after the
    /// contraction, and values recomputed there (see `recompute`), which
    /// may come before it.
    pub epilogue: Vec<ValueId>,
    /// For a matmul kernel whose product is added to a sum of products
    /// (`sum = add(addend, product)`): `(sum, addend)`. The kernel copies the
    /// addend into the sum's buffer and its GEMM adds the product onto it
    /// (`C = A·B + C`); the product itself is never stored. `sum` is the
    /// last of `nodes`; such a kernel has no epilogue.
    pub accumulate: Option<(ValueId, ValueId)>,
    /// The iteration domain: for `Loop` the common shape of its elementwise
    /// ops (the operand shape of its reductions); otherwise the shape of the
    /// kernel's main node.
    pub domain: Shape,
    /// The values read that live outside the kernel (graph inputs and other
    /// kernels' outputs; views resolved to their base), sorted.
    pub inputs: Vec<ValueId>,
    /// Values computed here and read by other kernels or returned as graph
    /// outputs, sorted. These are the kernel's stores.
    pub outputs: Vec<ValueId>,
}

/// Where a node's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A graph input, outside the arena.
    Leaf,
    /// A `const` or `size`: an immediate in generated code.
    Inline,
    /// A strided view of `base` (a leaf, inline value or kernel value).
    View { base: ValueId },
    /// Computed by kernel `kernels[i]`.
    Kernel(usize),
}

/// Why a value crosses from one kernel into another.
#[derive(Clone, Debug, PartialEq)]
pub struct Boundary {
    /// The value stored by one kernel…
    pub producer: ValueId,
    /// …and the node of another kernel that reads it (maybe through views).
    pub consumer: ValueId,
    pub reason: String,
}

/// The result of [`partition`].
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// In a valid execution (topological) order.
    pub kernels: Vec<Kernel>,
    /// Every kernel-to-kernel edge, by consumer then producer.
    pub boundaries: Vec<Boundary>,
    /// One entry per graph node.
    pub placement: Vec<Placement>,
}

impl Partition {
    /// The kernel computing `v`, if any.
    pub fn kernel_of(&self, v: ValueId) -> Option<usize> {
        match self.placement.get(v.index()) {
            Some(Placement::Kernel(k)) => Some(*k),
            _ => None,
        }
    }

    /// The value holding `v`'s data: `v` itself unless it is a view.
    pub fn base(&self, v: ValueId) -> ValueId {
        match self.placement.get(v.index()) {
            Some(Placement::View { base }) => *base,
            _ => v,
        }
    }
}

fn is_elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast { .. }
            | Op::OneHot { .. }
            | Op::RngUniform { .. }
    )
}

fn is_reduction(op: &Op) -> bool {
    matches!(op, Op::ReduceSum { .. } | Op::ReduceMax { .. })
}

fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Broadcast { .. } | Op::Permute { .. } | Op::Reshape { .. } | Op::Slice { .. } | Op::StopGradient
    )
}

fn is_inline(op: &Op) -> bool {
    matches!(op, Op::Const { .. } | Op::Size { .. })
}

/// The kind of the kernel a non-elementwise, non-view node forms.
fn own_kind(op: &Op) -> Option<KernelKind> {
    Some(match op {
        Op::MatMul | Op::MatMulSum => KernelKind::MatMul,
        Op::Conv { .. } => KernelKind::Conv,
        Op::ConvTranspose { .. } => KernelKind::ConvTranspose,
        Op::ConvWeightGrad { .. } => KernelKind::ConvWeightGrad,
        Op::Pool { .. } => KernelKind::Pool,
        Op::PoolGrad { .. } => KernelKind::PoolGrad,
        Op::Resize { .. } => KernelKind::Resize,
        Op::ResizeGrad { .. } => KernelKind::ResizeGrad,
        Op::ArgMax { .. } => KernelKind::ArgMax,
        Op::Warp(_) => KernelKind::Warp,
        Op::WarpGradInput(_) => KernelKind::WarpGradInput,
        Op::WarpGradFlow(_) => KernelKind::WarpGradFlow,
        Op::Gather { .. } => KernelKind::Gather,
        Op::ScatterSum { .. } => KernelKind::ScatterSum,
        Op::ScatterMax { .. } => KernelKind::ScatterMax,
        Op::ScatterMaxGrad { .. } => KernelKind::ScatterMaxGrad,
        Op::Softmax | Op::SoftmaxGrad => KernelKind::Softmax,
        Op::Standardize { .. } | Op::StandardizeGrad { .. } => KernelKind::Standardize,
        Op::Lstm { .. } => KernelKind::Lstm,
        Op::LstmGrad { .. } => KernelKind::LstmGrad,
        Op::Pad { .. } | Op::Concat { .. } => KernelKind::Copy,
        _ => return None,
    })
}

/// The operands whose data a node reads (`size` reads only a shape).
fn data_args(graph: &Graph, v: ValueId) -> &[ValueId] {
    let node = graph.node(v);
    match node.op {
        Op::Size { .. } => &[],
        _ => &node.args,
    }
}

/// Partitions `graph` into kernels (see the module documentation for the
/// rules).
pub fn partition(graph: &Graph) -> Partition {
    let n = graph.nodes.len();
    let (mat, layout) = materialise(graph);
    let mut b = Builder::new(graph, layout);
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let shape = node.ty.shape.clone();
        if matches!(node.op, Op::Input { .. }) {
            continue;
        }
        if mat[i] && (is_view(&node.op) || is_inline(&node.op)) {
            b.new_group(KernelKind::Copy, shape, v);
        } else if is_view(&node.op) || is_inline(&node.op) {
            continue;
        } else if let Some(g) = b.recurrence_weight_grad(v) {
            b.join_recurrence(g, v);
        } else if let Some(kind) = own_kind(&node.op) {
            b.new_group(kind, shape, v);
        } else if is_reduction(&node.op) {
            b.reduction(v);
        } else if is_elementwise(&node.op) {
            b.elementwise(v);
        } else {
            b.new_group(KernelKind::Copy, shape, v);
        }
    }

    b.sink();

    // Resolve groups and order them topologically.
    let roots: Vec<usize> =
        (0..b.groups.len()).filter(|&g| b.parent[g] == g && !b.groups[g].members.is_empty()).collect();
    let mut preds: Vec<Vec<usize>> = vec![vec![]; b.groups.len()];
    let mut succs: Vec<Vec<usize>> = vec![vec![]; b.groups.len()];
    for &g in &roots {
        for p in b.preds(g) {
            preds[g].push(p);
            succs[p].push(g);
        }
    }
    let mut indegree: Vec<usize> = preds.iter().map(Vec::len).collect();
    let first = |g: usize, b: &Builder| b.groups[g].members.first().map_or(u32::MAX, |v| v.0);
    let mut ready: BinaryHeap<Reverse<(u32, usize)>> =
        roots.iter().filter(|&&g| indegree[g] == 0).map(|&g| Reverse((first(g, &b), g))).collect();
    let mut order = vec![];
    while let Some(Reverse((_, g))) = ready.pop() {
        order.push(g);
        for &s in &succs[g] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(Reverse((first(s, &b), s)));
            }
        }
    }
    if order.len() < roots.len() {
        // Unreachable when the cycle checks hold; keep every kernel anyway.
        let placed: HashSet<usize> = order.iter().copied().collect();
        order.extend(roots.iter().filter(|g| !placed.contains(g)));
    }
    let mut index_of = vec![usize::MAX; b.groups.len()];
    for (k, &g) in order.iter().enumerate() {
        index_of[g] = k;
    }

    let mut placement = vec![Placement::Leaf; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        placement[i] = if let Some(g) = b.group(v) {
            Placement::Kernel(index_of[g])
        } else if matches!(node.op, Op::Input { .. }) {
            Placement::Leaf
        } else if is_inline(&node.op) {
            Placement::Inline
        } else {
            Placement::View { base: b.layout[i].base }
        };
    }

    let output_values: HashSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let mut kernels: Vec<Kernel> = order
        .iter()
        .enumerate()
        .map(|(k, &g)| {
            let grp = &b.groups[g];
            Kernel {
                name: format!("k{k}"),
                kind: grp.kind,
                nodes: grp.members.clone(),
                epilogue: grp.epilogue.clone(),
                accumulate: grp.accumulate,
                domain: grp.domain.clone(),
                inputs: vec![],
                outputs: vec![],
            }
        })
        .collect();
    let mut inputs: Vec<BTreeSet<ValueId>> = vec![BTreeSet::new(); kernels.len()];
    let mut outputs: Vec<BTreeSet<ValueId>> = vec![BTreeSet::new(); kernels.len()];
    let mut boundaries = vec![];
    let mut seen = HashSet::new();
    let readers = report::readers(graph, &kernels, &placement);
    for (k, kernel) in kernels.iter().enumerate() {
        for &m in &kernel.nodes {
            if output_values.contains(&m) {
                outputs[k].insert(m);
            }
            for &a in data_args(graph, m) {
                let base = b.layout[a.index()].base;
                match placement[base.index()] {
                    Placement::Leaf => {
                        inputs[k].insert(base);
                    }
                    Placement::Kernel(p) if p != k => {
                        inputs[k].insert(base);
                        outputs[p].insert(base);
                        if seen.insert((base, m)) {
                            let reason = boundary_reason(graph, &kernels, &placement, &readers, (base, a, m));
                            boundaries.push(Boundary { producer: base, consumer: m, reason });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for (k, kernel) in kernels.iter_mut().enumerate() {
        kernel.inputs = inputs[k].iter().copied().collect();
        kernel.outputs = outputs[k].iter().copied().collect();
    }
    let recomputed = recompute::recompute(graph, &mut kernels, &placement, &b.layout);
    boundaries.retain(|bd| !recomputed.contains(&bd.producer));
    boundaries.sort_by_key(|bd| (bd.consumer, bd.producer));
    Partition { kernels, boundaries, placement }
}
