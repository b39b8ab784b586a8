//! Fusion: partitions a graph into kernels, the units that code generation
//! compiles and the runtime runs one after another.
//!
//! Every node is placed in exactly one of four ways ([`Placement`]):
//! - **leaf**: graph inputs (data, targets, parameters, state, key, hyper)
//!   live outside the arena and are read by kernels;
//! - **inline**: `const` and `size` are scalars known when the kernel is
//!   generated (sizes of symbolic dimensions are bound at plan time), read as
//!   immediates, never stored;
//! - **view**: `broadcast`, `permute` and `reshape` are not computed: a
//!   reader reads the view's *base* (the leaf, inline value or kernel result
//!   underneath the chain of views) with strides — stride 0 along broadcast
//!   axes, permuted strides for a permute, and a reshape of a contiguous
//!   layout is the same memory. Codegen resolves a view by walking the
//!   node's operands down to its base;
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
//!   GEMM. A linear chain of elementwise ops that each read the previous
//!   link (the contraction's result first) with the same shape is attached as
//!   the kernel's [`Kernel::epilogue`] (bias add, activation, masks): the
//!   GEMM writes its result to a buffer, then the epilogue runs over it.
//! - `ConvWeightGrad`, `Pool`, `PoolGrad`, `Resize`, `ResizeGrad`, `ArgMax`:
//!   one node each, no epilogue.
//! - `Copy`: one data-movement node (`slice`, `pad`, `concat`), or a view or
//!   inline value that must exist in memory: a graph output, an operand of a
//!   window op or convolution that is not contiguous memory, a matmul
//!   operand over an inline value, or a reshape of a non-contiguous view.
//!
//! Operand requirements: loops, copies and argmax read any view or inline
//! value; matmul reads any strided view of memory; convolutions, pooling and
//! resizing (and their gradients) read contiguous memory only.
//!
//! Kernels are numbered in a topological order of the kernel graph (among
//! ready kernels, the one whose first node comes first), so running them in
//! index order is valid.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
use std::fmt::Write;

use crate::ir::{Dim, Graph, Op, Shape, ValueId};

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
    /// Data movement: `slice`, `pad`, `concat`, or materialising a view or
    /// inline value.
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
    pub nodes: Vec<ValueId>,
    /// For contraction kernels: the elementwise chain run over the
    /// contraction's result, in order (a suffix of `nodes`).
    pub epilogue: Vec<ValueId>,
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

/// How a value is laid out relative to its base.
#[derive(Clone, Copy, Debug)]
struct Layout {
    base: ValueId,
    /// Row-major over the base's memory, offset 0.
    contiguous: bool,
    /// Every element reads the base's single element.
    uniform: bool,
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
    matches!(op, Op::Broadcast { .. } | Op::Permute { .. } | Op::Reshape { .. })
}

fn is_inline(op: &Op) -> bool {
    matches!(op, Op::Const { .. } | Op::Size { .. })
}

/// The kind of the kernel a non-elementwise, non-view node forms.
fn own_kind(op: &Op) -> Option<KernelKind> {
    Some(match op {
        Op::MatMul => KernelKind::MatMul,
        Op::Conv { .. } => KernelKind::Conv,
        Op::ConvTranspose { .. } => KernelKind::ConvTranspose,
        Op::ConvWeightGrad { .. } => KernelKind::ConvWeightGrad,
        Op::Pool { .. } => KernelKind::Pool,
        Op::PoolGrad { .. } => KernelKind::PoolGrad,
        Op::Resize { .. } => KernelKind::Resize,
        Op::ResizeGrad { .. } => KernelKind::ResizeGrad,
        Op::ArgMax { .. } => KernelKind::ArgMax,
        Op::Slice { .. } | Op::Pad { .. } | Op::Concat { .. } => KernelKind::Copy,
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

fn is_size_one(d: &Dim) -> bool {
    *d == Dim::Known(1)
}

/// True when the dimensions other than size 1 keep their order.
fn permute_keeps_order(shape: &Shape, axes: &[usize]) -> bool {
    let kept: Vec<usize> =
        axes.iter().copied().filter(|&a| !shape.dims().get(a).is_some_and(is_size_one)).collect();
    kept.windows(2).all(|w| w[0] < w[1])
}

/// True when broadcasting `from` to `to` only adds size-1 or leading axes
/// of size 1 (no element is repeated).
fn broadcast_is_trivial(from: &Shape, to: &Shape) -> bool {
    let lead = to.rank().saturating_sub(from.rank());
    to.dims()[..lead].iter().all(is_size_one)
        && from
            .dims()
            .iter()
            .zip(&to.dims()[lead..])
            .all(|(f, t)| f == t || (is_size_one(f) && is_size_one(t)))
}

/// Layouts of all nodes given the set of materialised views and inline
/// values; `None` for a reshape that cannot be a view of its operand.
fn layouts(graph: &Graph, materialised: &[bool]) -> Vec<Option<Layout>> {
    let mut out: Vec<Option<Layout>> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let v = ValueId(i as u32);
        let own = Layout { base: v, contiguous: true, uniform: node.ty.shape.dims().iter().all(is_size_one) };
        let layout = if materialised[i] || !is_view(&node.op) {
            Some(own)
        } else {
            let arg = node.args.first().and_then(|a| out.get(a.index()).copied().flatten());
            let arg_shape = node.args.first().map(|a| &graph.ty(*a).shape);
            match (arg, arg_shape) {
                (Some(a), Some(arg_shape)) => match &node.op {
                    Op::Broadcast { shape } => Some(Layout {
                        base: a.base,
                        contiguous: a.contiguous && broadcast_is_trivial(arg_shape, shape),
                        uniform: a.uniform,
                    }),
                    Op::Permute { axes } => Some(Layout {
                        base: a.base,
                        contiguous: a.contiguous && permute_keeps_order(arg_shape, axes),
                        uniform: a.uniform,
                    }),
                    _ if a.contiguous || a.uniform => Some(a),
                    _ => None,
                },
                _ => None,
            }
        };
        out.push(layout);
    }
    out
}

/// Decides which views and inline values are stored, by iterating the
/// operand requirements to a fixed point (materialising a view changes the
/// layouts built on it).
fn materialise(graph: &Graph) -> (Vec<bool>, Vec<Layout>) {
    let n = graph.nodes.len();
    let mut mat = vec![false; n];
    for o in &graph.outputs {
        if let Some(node) = graph.nodes.get(o.value.index()) {
            if is_view(&node.op) || is_inline(&node.op) {
                mat[o.value.index()] = true;
            }
        }
    }
    loop {
        let lay = layouts(graph, &mat);
        let mut changed = false;
        for i in 0..n {
            if lay[i].is_none() && !mat[i] {
                mat[i] = true;
                changed = true;
            }
        }
        if changed {
            continue;
        }
        for (i, node) in graph.nodes.iter().enumerate() {
            if is_view(&node.op) && !mat[i] {
                continue;
            }
            for a in data_args(graph, ValueId(i as u32)) {
                let Some(l) = lay[a.index()] else { continue };
                let base_in_memory = !is_inline(&graph.node(l.base).op);
                let ok = match &node.op {
                    Op::MatMul => base_in_memory,
                    Op::Conv { .. }
                    | Op::ConvTranspose { .. }
                    | Op::ConvWeightGrad { .. }
                    | Op::Pool { .. }
                    | Op::PoolGrad { .. }
                    | Op::Resize { .. }
                    | Op::ResizeGrad { .. } => base_in_memory && l.contiguous,
                    _ => true,
                };
                if !ok && !mat[a.index()] {
                    mat[a.index()] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            let lay = lay
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    l.unwrap_or(Layout { base: ValueId(i as u32), contiguous: true, uniform: false })
                })
                .collect();
            return (mat, lay);
        }
    }
}

/// A kernel under construction.
struct Group {
    kind: KernelKind,
    domain: Shape,
    members: Vec<ValueId>,
    epilogue: Vec<ValueId>,
    /// For epilogue-capable kernels: the last value of the chain.
    tail: Option<ValueId>,
}

struct Builder<'g> {
    graph: &'g Graph,
    layout: Vec<Layout>,
    /// Group of each computed node (before union-find resolution).
    group_of: Vec<Option<usize>>,
    parent: Vec<usize>,
    groups: Vec<Group>,
}

impl Builder<'_> {
    fn find(&mut self, mut g: usize) -> usize {
        while self.parent[g] != g {
            self.parent[g] = self.parent[self.parent[g]];
            g = self.parent[g];
        }
        g
    }

    fn group(&mut self, v: ValueId) -> Option<usize> {
        self.group_of[v.index()].map(|g| self.find(g))
    }

    fn new_group(&mut self, kind: KernelKind, domain: Shape, v: ValueId) -> usize {
        let id = self.groups.len();
        let tail = kind.takes_epilogue().then_some(v);
        self.groups.push(Group { kind, domain, members: vec![v], epilogue: vec![], tail });
        self.parent.push(id);
        self.group_of[v.index()] = Some(id);
        id
    }

    fn add(&mut self, g: usize, v: ValueId) {
        self.groups[g].members.push(v);
        self.group_of[v.index()] = Some(g);
    }

    /// The groups a group reads from directly.
    fn preds(&mut self, g: usize) -> Vec<usize> {
        let members = self.groups[g].members.clone();
        let mut out = vec![];
        for m in members {
            for a in data_args(self.graph, m).to_vec() {
                let base = self.layout[a.index()].base;
                if let Some(h) = self.group(base) {
                    if h != g && !out.contains(&h) {
                        out.push(h);
                    }
                }
            }
        }
        out
    }

    /// Whether group `from` depends (transitively) on group `to`.
    fn reaches(&mut self, from: usize, to: usize) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![from];
        while let Some(g) = stack.pop() {
            if g == to {
                return true;
            }
            if seen.insert(g) {
                stack.extend(self.preds(g));
            }
        }
        false
    }

    fn merge(&mut self, into: usize, from: usize) {
        let moved = std::mem::take(&mut self.groups[from].members);
        self.groups[into].members.extend(moved);
        self.groups[into].members.sort();
        self.parent[from] = into;
    }

    /// Operand groups of `v`: (direct reads of elementwise values, all).
    fn operand_groups(&mut self, v: ValueId) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let node = self.graph.node(v);
        let generated = matches!(node.op, Op::OneHot { .. } | Op::RngUniform { .. });
        let mut direct = vec![];
        let mut blocked = vec![];
        let mut all = vec![];
        for a in data_args(self.graph, v).to_vec() {
            let base = self.layout[a.index()].base;
            let Some(g) = self.group(base) else { continue };
            if !all.contains(&g) {
                all.push(g);
            }
            let is_direct = base == a && !generated && !is_reduction(&self.graph.node(a).op);
            if is_direct {
                if !direct.contains(&g) {
                    direct.push(g);
                }
            } else if !blocked.contains(&g) {
                blocked.push(g);
            }
        }
        (direct, blocked, all)
    }

    /// True when every operand group other than `except` is free of a path
    /// to `target` (so `target` may take the node without a cycle).
    fn no_cycle(&mut self, all: &[usize], except: &[usize], target: usize) -> bool {
        all.iter()
            .filter(|h| !except.contains(h))
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .all(|h| !self.reaches(h, target))
    }

    fn elementwise(&mut self, v: ValueId) {
        let shape = self.graph.ty(v).shape.clone();
        let (direct, blocked, all) = self.operand_groups(v);
        // Epilogue of a contraction whose chain ends at one of the operands.
        let node = self.graph.node(v);
        if !matches!(node.op, Op::OneHot { .. } | Op::RngUniform { .. }) {
            for &g in &direct {
                let grp = &self.groups[g];
                let on_chain = grp.tail.is_some_and(|t| node.args.contains(&t));
                if on_chain && grp.domain == shape && !blocked.contains(&g) && self.no_cycle(&all, &[g], g) {
                    self.add(g, v);
                    self.groups[g].epilogue.push(v);
                    self.groups[g].tail = Some(v);
                    return;
                }
            }
        }
        let mut target: Option<usize> = None;
        for &e in &direct {
            let e = self.find(e);
            let grp = &self.groups[e];
            if grp.kind != KernelKind::Loop || grp.domain != shape || blocked.contains(&e) {
                continue;
            }
            match target {
                None => {
                    if self.no_cycle(&all, &[e], e) {
                        target = Some(e);
                    }
                }
                Some(t) if t != e => {
                    if !self.reaches(t, e) && !self.reaches(e, t) && self.no_cycle(&all, &[t, e], e) {
                        self.merge(t, e);
                    }
                }
                Some(_) => {}
            }
        }
        match target {
            Some(t) => self.add(t, v),
            None => {
                self.new_group(KernelKind::Loop, shape, v);
            }
        }
    }

    fn reduction(&mut self, v: ValueId) {
        let Some(&a) = self.graph.node(v).args.first() else {
            self.new_group(KernelKind::Loop, Shape::scalar(), v);
            return;
        };
        let shape = self.graph.ty(a).shape.clone();
        let base = self.layout[a.index()].base;
        let target = match self.group(base) {
            Some(g)
                if base == a
                    && !is_reduction(&self.graph.node(a).op)
                    && self.groups[g].kind == KernelKind::Loop
                    && self.groups[g].domain == shape =>
            {
                Some(g)
            }
            _ => None,
        };
        match target {
            Some(g) => self.add(g, v),
            None => {
                self.new_group(KernelKind::Loop, shape, v);
            }
        }
    }
}

/// Partitions `graph` into kernels (see the module documentation for the
/// rules).
pub fn partition(graph: &Graph) -> Partition {
    let n = graph.nodes.len();
    let (mat, layout) = materialise(graph);
    let mut b = Builder { graph, layout, group_of: vec![None; n], parent: vec![], groups: vec![] };
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

    // Resolve groups and order them topologically.
    let roots: Vec<usize> = (0..b.groups.len()).filter(|&g| b.parent[g] == g).collect();
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
                            let reason = boundary_reason(graph, &kernels, &placement, base, a, m);
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
    boundaries.sort_by_key(|bd| (bd.consumer, bd.producer));
    Partition { kernels, boundaries, placement }
}

fn boundary_reason(
    graph: &Graph,
    kernels: &[Kernel],
    placement: &[Placement],
    producer: ValueId,
    operand: ValueId,
    consumer: ValueId,
) -> String {
    let kernel_at = |v: ValueId| match placement[v.index()] {
        Placement::Kernel(k) => Some(&kernels[k]),
        _ => None,
    };
    let (Some(pk), Some(ck)) = (kernel_at(producer), kernel_at(consumer)) else {
        return "not computed by a kernel".to_string();
    };
    let pop = &graph.node(producer).op;
    let cop = &graph.node(consumer).op;
    let cm = cop.mnemonic();
    let pm = pop.mnemonic();
    let main_of = |k: &Kernel| k.nodes.iter().copied().find(|v| !k.epilogue.contains(v));
    if ck.kind != KernelKind::Loop && main_of(ck) == Some(consumer) {
        return match ck.kind {
            KernelKind::Copy if is_view(cop) || is_inline(cop) => {
                format!(
                    "{cm} is materialised (graph output, or read by a kernel that needs contiguous memory)"
                )
            }
            KernelKind::Copy => format!("{cm} is data movement (copy kernel)"),
            k if k.is_contraction() => format!("{cm} is a contraction (GEMM)"),
            _ => format!("{cm} is its own kernel"),
        };
    }
    if pk.kind != KernelKind::Loop && !pk.kind.takes_epilogue() {
        return format!("{pm} is its own kernel");
    }
    if pk.kind.takes_epilogue() && ck.kind == KernelKind::Loop {
        let main = main_of(pk).map_or("contraction", |v| graph.node(v).op.mnemonic());
        return format!("{main} is a contraction (GEMM); the reader is not on its epilogue chain");
    }
    if is_reduction(pop) {
        return "reduction output read by a later loop".to_string();
    }
    let pshape = &graph.ty(producer).shape;
    if operand != producer {
        let om = graph.node(operand).op.mnemonic();
        if graph.ty(operand).shape != *pshape {
            return format!("shape changes {pshape}→{} ({om})", graph.ty(operand).shape);
        }
        return format!("read through a {om} view");
    }
    if ck.domain != *pshape {
        return format!("shape changes {pshape}→{}", ck.domain);
    }
    if matches!(cop, Op::OneHot { .. } | Op::RngUniform { .. }) {
        return format!("{cm} reads its operand at other indices");
    }
    if ck.epilogue.contains(&consumer) {
        return format!("the reader is in the epilogue of {}", ck.name);
    }
    let readers: BTreeSet<&str> = kernels
        .iter()
        .filter(|k| k.name != pk.name)
        .filter(|k| {
            k.nodes
                .iter()
                .any(|&m| data_args(graph, m).iter().any(|a| placement_base(placement, *a) == producer))
        })
        .map(|k| k.name.as_str())
        .collect();
    if readers.len() > 1 {
        format!(
            "fusing would create a cycle through another kernel; value has {} consumers in different kernels",
            readers.len()
        )
    } else {
        "fusing would create a cycle through another kernel".to_string()
    }
}

fn placement_base(placement: &[Placement], v: ValueId) -> ValueId {
    match placement[v.index()] {
        Placement::View { base } => base,
        _ => v,
    }
}

/// A readable, stable listing of the partition: every kernel with its ops,
/// inputs and outputs, the views and inline values, and for each boundary
/// why fusion stopped there.
pub fn report(graph: &Graph, partition: &Partition) -> String {
    let mut s = String::new();
    let mode = graph.mode.name();
    let _ = writeln!(s, "fusion {} mode={mode}: {} kernels", graph.name, partition.kernels.len());
    let list = |vs: &[ValueId]| {
        if vs.is_empty() {
            "-".to_string()
        } else {
            vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        }
    };
    for k in &partition.kernels {
        let _ = writeln!(s, "{} {} {}", k.name, k.kind.name(), k.domain);
        for &v in &k.nodes {
            let node = graph.node(v);
            let tag = if k.epilogue.contains(&v) { " (epilogue)" } else { "" };
            let _ = writeln!(s, "  {v} {}: {}{tag}", node.op.mnemonic(), node.ty);
        }
        let _ = writeln!(s, "  inputs: {}", list(&k.inputs));
        let _ = writeln!(s, "  outputs: {}", list(&k.outputs));
    }
    let mut views = vec![];
    let mut inline = vec![];
    for (i, p) in partition.placement.iter().enumerate() {
        let v = ValueId(i as u32);
        match p {
            Placement::View { base } => views.push(format!("{v} {} of {base}", graph.node(v).op.mnemonic())),
            Placement::Inline => inline.push(format!("{v} {}", graph.node(v).op.mnemonic())),
            _ => {}
        }
    }
    let _ = writeln!(s, "views:");
    for v in views {
        let _ = writeln!(s, "  {v}");
    }
    let _ = writeln!(s, "inline: {}", if inline.is_empty() { "-".to_string() } else { inline.join(", ") });
    let _ = writeln!(s, "boundaries:");
    for bd in &partition.boundaries {
        let name = |v: ValueId| partition.kernel_of(v).map_or("-", |k| partition.kernels[k].name.as_str());
        let _ = writeln!(
            s,
            "  {} {} ({}) -> {} {} ({}): {}",
            bd.producer,
            graph.node(bd.producer).op.mnemonic(),
            name(bd.producer),
            bd.consumer,
            graph.node(bd.consumer).op.mnemonic(),
            name(bd.consumer),
            bd.reason
        );
    }
    s
}

#[cfg(test)]
mod tests;
