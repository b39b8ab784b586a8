//! Schedule and memory plan: the order in which kernels run, where every
//! intermediate value lives in one arena, and how each kernel is split
//! across threads — all fixed before running, so the peak memory is known.
//!
//! - **Order**: the partition's kernel order, which is topological (among
//!   ready kernels, the one whose first node comes first); checked here.
//! - **Buffers**: every value a kernel stores (its outputs) gets a buffer;
//!   so does a contraction result that only its epilogue reads (GEMM
//!   scratch, live during its kernel only). Views of a stored value use its
//!   buffer. Graph inputs are external (not in the arena); a graph output
//!   that is a graph input needs no buffer. Elements take 4 bytes (f32, i32;
//!   bool is stored as a 4-byte 0/1 so comparison masks fill SIMD lanes);
//!   buffers are rounded up to 64 bytes and 64-byte aligned.
//! - **Liveness**: a buffer is live from the step of the kernel that writes
//!   it to the last step that reads it (inclusive); graph outputs stay live
//!   to the last step. A kernel's inputs and outputs are live at the same
//!   step, so a kernel never writes over what it reads.
//! - **Offsets**: greedy best fit — buffers by decreasing size (ties by
//!   first step), each placed in the smallest gap between buffers already
//!   placed whose live ranges overlap its own, or above them all.
//! - **Layouts** ([`layout`]): parameter and state updates written over
//!   their inputs, matrix products written transposed for their readers,
//!   the parts of a concatenation written where the concatenation holds
//!   them.
//! - **Accumulation in place** ([`accumulate_in_place`]): a GEMM that adds
//!   its product onto a sum whose addend is read last by that GEMM keeps
//!   the sum in the addend's buffer.
//! - **Split**: each kernel runs as `chunks` index ranges of one axis of its
//!   domain: the outermost axis no reduction of the kernel (its epilogue's,
//!   for a contraction) reduces (so every chunk reduces whole rows, in a
//!   fixed order), with at most
//!   `threads` chunks, none smaller than [`MIN_CHUNK_WORK`] units of work
//!   (multiply-adds for contractions; for loops, elements times 1 plus 16
//!   per transcendental function the kernel evaluates per element), and
//!   none of a matrix product smaller than [`MIN_PRODUCT_CHUNK_WORK`].
//! - **Convolution algorithms** ([`conv`]): per convolution kernel, a
//!   pointwise GEMM or im2col by tiles of output rows, and the tile size.

pub mod conv;
mod layout;

pub(crate) use layout::permuted_strides;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write;

use crate::fusion::{self, KernelKind, Partition, Placement};
use crate::ir::{Graph, Op, Shape, StageError, ValueId};

/// The stage named in this module's errors.
const STAGE: &str = "plan";

/// Alignment of every buffer offset and size, in bytes.
pub const ALIGN: usize = 64;

/// The smallest amount of work (elements, or multiply-adds for
/// contractions) worth giving a thread.
pub const MIN_CHUNK_WORK: usize = 16 * 1024;

/// The smallest product (multiply-adds) worth giving a thread: a product
/// split along its rows packs its other operand once per chunk, which
/// below this costs more than the second thread saves (the benchmark
/// LSTM's per-step input-weight gradient, 32 × 512 × 64: 0.71 ms per
/// training step on one chunk, 0.84 on two).
pub const MIN_PRODUCT_CHUNK_WORK: usize = 1 << 20;

/// How one kernel is divided among threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Axis of the kernel's domain (`Kernel::domain`) divided into ranges;
    /// `None` when the domain has rank 0 or every axis is reduced.
    pub axis: Option<usize>,
    /// The size of that axis (1 without an axis).
    pub extent: usize,
    /// Number of contiguous index ranges (≥ 1, ≤ extent, ≤ threads); chunk
    /// `i` covers `[i * extent / chunks, (i + 1) * extent / chunks)`.
    pub chunks: usize,
}

/// One kernel run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Index into `Partition::kernels`.
    pub kernel: usize,
    pub split: Split,
}

/// One stored value in the arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub value: ValueId,
    /// Size in bytes (a multiple of [`ALIGN`], at least [`ALIGN`]).
    pub bytes: usize,
    /// Byte offset in the arena (a multiple of [`ALIGN`]).
    pub offset: usize,
    /// First and last step (inclusive) at which the buffer holds live data.
    pub live: (usize, usize),
    /// Views of the value that read this buffer, and the sums accumulated
    /// in it ([`Plan::accumulated`]) with their views.
    pub views: Vec<ValueId>,
}

/// The schedule and memory plan of a graph: everything code generation
/// needs, decided once.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The planned graph.
    pub graph: Graph,
    /// Its kernels ([`fusion::partition`]).
    pub partition: Partition,
    /// The sizes bound to symbolic dimensions.
    pub dims: BTreeMap<String, usize>,
    pub threads: usize,
    /// Kernels in execution order.
    pub steps: Vec<Step>,
    /// Sorted by value.
    pub buffers: Vec<Buffer>,
    /// Bytes of arena needed: the highest end of any buffer.
    pub peak_bytes: usize,
    /// New values of parameters and state written over the input of the
    /// same name (new value → input), so that no copy follows the step.
    pub in_place: BTreeMap<ValueId, ValueId>,
    /// Sums of products accumulated in the buffer of their addend (sum →
    /// the value whose buffer holds it; see [`accumulate_in_place`]).
    pub accumulated: BTreeMap<ValueId, ValueId>,
    /// Parts of a concatenation written in place, where the concatenation
    /// holds them (part → the concatenation and the part's first index
    /// along its axis; see [`layout::concat_in_place`]); the copy kernel
    /// copies only the other parts.
    pub in_concat: BTreeMap<ValueId, (ValueId, usize)>,
    /// Matrix products written where the reshape of their permutation
    /// holds their elements (product → the reshape; see
    /// [`layout::products_in_reshape`]); the reshape's copy kernel does
    /// nothing.
    pub in_reshape: BTreeMap<ValueId, ValueId>,
    /// Matrix products whose GEMM writes the transposed layout, because
    /// every reader reads them through a transpose.
    pub transposed: BTreeSet<ValueId>,
    /// The algorithm of every convolution (by its `conv`,
    /// `conv_transpose` or `conv_weight_grad` node).
    pub convs: BTreeMap<ValueId, conv::ConvAlgorithm>,
}

impl Plan {
    /// The buffer holding `v` (directly or as a view).
    pub fn buffer_of(&self, v: ValueId) -> Option<&Buffer> {
        self.buffers.iter().find(|b| b.value == v || b.views.contains(&v))
    }
}

/// Resolves a shape with the bound dimensions.
pub fn resolve(shape: &Shape, dims: &HashMap<String, usize>) -> Result<Vec<usize>, String> {
    shape.resolve(&|s| dims.get(s).copied()).ok_or_else(|| {
        let missing: Vec<String> = shape
            .dims()
            .iter()
            .filter_map(|d| match d {
                crate::ir::Dim::Sym(s) if !dims.contains_key(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        format!("symbolic dimension `{}` is not bound", missing.join("`, `"))
    })
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN).max(1) * ALIGN
}

/// Partitions `graph` into kernels and plans them with symbolic dimensions
/// bound by `dims` for `threads` threads. A failure names the value it is
/// about when there is one.
pub fn plan(graph: &Graph, dims: &HashMap<String, usize>, threads: usize) -> Result<Plan, StageError> {
    if threads == 0 {
        return Err(StageError::new(STAGE, "the number of threads must be at least 1"));
    }
    plan_partition(graph, fusion::partition(graph), dims, threads)
}

/// Plans `partition`, the kernels [`fusion::partition`] made of `graph`
/// (see [`plan`]).
pub fn plan_partition(
    graph: &Graph,
    partition: Partition,
    dims: &HashMap<String, usize>,
    threads: usize,
) -> Result<Plan, StageError> {
    if threads == 0 {
        return Err(StageError::new(STAGE, "the number of threads must be at least 1"));
    }
    let partition_owned = partition;
    let partition = &partition_owned;
    let steps_n = partition.kernels.len();
    // Step of each kernel = its index; check that the order is topological.
    for (k, kernel) in partition.kernels.iter().enumerate() {
        for &i in &kernel.inputs {
            if let Some(p) = partition.kernel_of(i) {
                if p >= k {
                    let message =
                        format!("{} reads {i} before {} writes it", kernel.name, partition.kernels[p].name);
                    return Err(StageError::at(STAGE, i, message));
                }
            }
        }
    }
    let mut live: BTreeMap<ValueId, (usize, usize)> = BTreeMap::new();
    for (k, kernel) in partition.kernels.iter().enumerate() {
        for &o in &kernel.outputs {
            live.insert(o, (k, k));
        }
        for &n in &kernel.nodes {
            let is_main = !kernel.epilogue.contains(&n);
            // An accumulating product is added onto the sum's buffer; the
            // product itself is never stored.
            let accumulated = kernel.accumulate.is_some_and(|(sum, _)| sum != n);
            if is_main && !accumulated && kernel.kind.is_contraction() && !kernel.outputs.contains(&n) {
                live.insert(n, (k, k));
            }
        }
    }
    for (k, kernel) in partition.kernels.iter().enumerate() {
        for i in &kernel.inputs {
            if let Some(r) = live.get_mut(i) {
                r.1 = r.1.max(k);
            }
        }
    }
    let last = steps_n.saturating_sub(1);
    for o in &graph.outputs {
        if let Some(r) = live.get_mut(&o.value) {
            r.1 = last;
        }
    }
    let mut views: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
    for (i, p) in partition.placement.iter().enumerate() {
        if let Placement::View { base } = p {
            views.entry(*base).or_default().push(ValueId(i as u32));
        }
    }
    let accumulated = accumulate_in_place(graph, partition, &mut live, &mut views);
    let readers = layout::readers(graph);
    let in_place = layout::in_place_updates(graph, partition, &readers);
    for v in in_place.keys() {
        // Stored over its input: no buffer of its own (and no views: a
        // view reading it would have kept it out of place).
        live.remove(v);
    }
    let transposed = layout::transposed_results(graph, partition, &readers);
    let mut in_concat =
        layout::concat_in_place(graph, partition, &readers, &accumulated, &in_place, &transposed);
    in_concat.retain(|&part, &mut (concat, _)| share_buffer(&mut live, &mut views, part, concat));
    let owners: BTreeSet<ValueId> = accumulated.values().copied().collect();
    let decided = |v: ValueId| {
        accumulated.contains_key(&v)
            || owners.contains(&v)
            || in_place.contains_key(&v)
            || transposed.contains(&v)
            || in_concat.contains_key(&v)
            || in_concat.values().any(|&(c, _)| c == v)
    };
    let mut in_reshape = layout::products_in_reshape(graph, partition, &readers, &decided);
    in_reshape.retain(|&product, &mut reshape| share_buffer(&mut live, &mut views, product, reshape));
    let mut buffers = vec![];
    for (&value, &range) in &live {
        let dims_of = resolve(&graph.ty(value).shape, dims).map_err(|m| StageError::at(STAGE, value, m))?;
        let elems = dims_of.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        let bytes = elems
            .and_then(|e| e.checked_mul(4))
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or_else(|| StageError::at(STAGE, value, format!("{value} is too large for the arena")))?;
        buffers.push(Buffer {
            value,
            bytes: round_up(bytes),
            offset: 0,
            live: range,
            views: views.remove(&value).unwrap_or_default(),
        });
    }
    let peak_bytes = assign_offsets(&mut buffers);

    let mut steps = vec![];
    for (k, kernel) in partition.kernels.iter().enumerate() {
        let split = split(graph, kernel, dims, threads).map_err(|m| match kernel.outputs.first() {
            Some(&v) => StageError::at(STAGE, v, m),
            None => StageError::new(STAGE, m),
        })?;
        steps.push(Step { kernel: k, split });
    }
    let mut convs = BTreeMap::new();
    let shape_of = |v: ValueId| resolve(&graph.ty(v).shape, dims);
    for kernel in &partition.kernels {
        let chosen = conv::algorithm(graph, kernel, &shape_of).map_err(|m| match kernel.outputs.first() {
            Some(&v) => StageError::at(STAGE, v, m),
            None => StageError::new(STAGE, m),
        })?;
        if let Some((v, algorithm)) = chosen {
            convs.insert(v, algorithm);
        }
    }
    let plan = Plan {
        graph: graph.clone(),
        partition: partition_owned,
        dims: dims.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        threads,
        steps,
        buffers,
        peak_bytes,
        in_place,
        accumulated,
        in_concat,
        in_reshape,
        transposed,
        convs,
    };
    check(&plan).map_err(|m| StageError::new(STAGE, m))?;
    Ok(plan)
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Greedy best fit by decreasing size; returns the peak.
fn assign_offsets(buffers: &mut [Buffer]) -> usize {
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].bytes), buffers[i].live.0, buffers[i].value));
    // The buffers placed so far as (start, end, live range), sorted by
    // start and end, so that the busy regions of a buffer come in order.
    let mut placed: Vec<(usize, usize, (usize, usize))> = vec![];
    let mut peak = 0;
    for i in order {
        let (size, live) = (buffers[i].bytes, buffers[i].live);
        let mut best: Option<(usize, usize)> = None; // (gap size, offset)
        let mut cursor = 0;
        for &(lo, hi, _) in placed.iter().filter(|(_, _, l)| overlaps(*l, live)) {
            if lo > cursor && lo - cursor >= size && best.is_none_or(|(g, _)| lo - cursor < g) {
                best = Some((lo - cursor, cursor));
            }
            cursor = cursor.max(hi);
        }
        let offset = best.map_or(cursor, |(_, off)| off);
        buffers[i].offset = offset;
        peak = peak.max(offset + size);
        let region = (offset, offset + size);
        let at = placed.partition_point(|&(lo, hi, _)| (lo, hi) <= region);
        placed.insert(at, (offset, offset + size, live));
    }
    peak
}

/// The axes reduced by the kernel's reductions (in domain coordinates).
fn reduced_axes(graph: &Graph, nodes: &[ValueId]) -> HashSet<usize> {
    let mut out = HashSet::new();
    for &n in nodes {
        if let Op::ReduceSum { axes } | Op::ReduceMax { axes } = &graph.node(n).op {
            out.extend(axes.iter().copied());
        }
    }
    out
}

/// The work of one element of a loop kernel, in units of one element of a
/// loop of cheap ops (whose work is its element count): 1, plus
/// [`TRANSCENDENTAL_COST`] for each transcendental function evaluated per
/// element. A loop that evaluates several sigmoids and tanhs per element (a
/// recurrent cell's gates) is then worth splitting at far fewer elements;
/// loops without such functions split as before.
fn loop_cost(graph: &Graph, nodes: &[ValueId]) -> usize {
    let transcendental = nodes
        .iter()
        .filter(|&&n| matches!(&graph.node(n).op, Op::Unary(op) if op.is_transcendental()))
        .count();
    1 + TRANSCENDENTAL_COST * transcendental
}

/// The cost of one transcendental function (exp, log, tanh, sigmoid, …) in
/// [`loop_cost`]'s units: its inline polynomial with range reduction is
/// some 15 vector instructions per element where a cheap op is one.
const TRANSCENDENTAL_COST: usize = 16;

/// Elements a copy kernel (slice, pad, concat) moves per unit of work: a
/// copy streams memory at several elements per cycle, so splitting one of a
/// few ten thousand elements costs more in the pool's hand-over than the
/// second thread saves (an LSTM's backward pass has four `[64, 512]` pads
/// per step).
const COPY_ELEMENTS_PER_UNIT: usize = 4;

/// Makes `value` live in `owner`'s buffer: the owner's live range grows to
/// cover the value's, the value leaves `live` and it and its views join the
/// owner's views. False (nothing changed) when either has no live range.
fn share_buffer(
    live: &mut BTreeMap<ValueId, (usize, usize)>,
    views: &mut HashMap<ValueId, Vec<ValueId>>,
    value: ValueId,
    owner: ValueId,
) -> bool {
    let (Some(&range), true) = (live.get(&value), live.contains_key(&owner)) else { return false };
    live.remove(&value);
    let owner_range = live.get_mut(&owner).expect("checked above");
    *owner_range = (owner_range.0.min(range.0), owner_range.1.max(range.1));
    let mut moved = views.remove(&value).unwrap_or_default();
    moved.push(value);
    views.entry(owner).or_default().extend(moved);
    true
}

/// Sums accumulated where their addend lies: a matmul kernel that adds its
/// product onto an addend ([`fusion::Kernel::accumulate`]) at the last step
/// that reads the addend, which is no graph output, keeps the sum in the
/// addend's buffer (the buffer then lives until the sum's last reader) and
/// need not copy the addend first. A chain of such sums (a weight gradient
/// summed over the steps of a recurrence) lives in one buffer. Returns sum
/// → the value owning the buffer; the sums (and their views) leave `live`
/// and join the owner's views.
fn accumulate_in_place(
    graph: &Graph,
    partition: &Partition,
    live: &mut BTreeMap<ValueId, (usize, usize)>,
    views: &mut HashMap<ValueId, Vec<ValueId>>,
) -> BTreeMap<ValueId, ValueId> {
    let outputs: HashSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let mut owner_of: BTreeMap<ValueId, ValueId> = BTreeMap::new();
    for (k, kernel) in partition.kernels.iter().enumerate() {
        let Some((sum, addend)) = kernel.accumulate else { continue };
        if outputs.contains(&addend) || graph.ty(sum) != graph.ty(addend) {
            continue;
        }
        // The addend's own last reader: itself, or (for an earlier sum of
        // the chain) the range recorded before it joined its owner.
        let addend_end = match owner_of.get(&addend) {
            Some(_) => partition
                .kernels
                .iter()
                .enumerate()
                .filter(|(_, kr)| kr.inputs.contains(&addend))
                .map(|(j, _)| j)
                .max(),
            None => live.get(&addend).map(|r| r.1),
        };
        if addend_end != Some(k) || partition.kernel_of(addend).is_none() {
            continue;
        }
        let owner = owner_of.get(&addend).copied().unwrap_or(addend);
        if !share_buffer(live, views, sum, owner) {
            continue;
        }
        owner_of.insert(sum, owner);
    }
    owner_of
}

fn split(
    graph: &Graph,
    kernel: &crate::fusion::Kernel,
    dims: &HashMap<String, usize>,
    threads: usize,
) -> Result<Split, String> {
    let domain = resolve(&kernel.domain, dims)?;
    let elems: usize = domain.iter().product();
    // A contraction's epilogue may reduce too (a normalisation's
    // per-channel statistics): its
    // split must not divide a reduced axis either.
    let reduced = if kernel.kind == KernelKind::Loop {
        reduced_axes(graph, &kernel.nodes)
    } else {
        reduced_axes(graph, &kernel.epilogue)
    };
    let main = kernel.nodes.iter().copied().find(|v| !kernel.epilogue.contains(v));
    let inner = match main.map(|v| graph.node(v)) {
        Some(node) => {
            let arg_dims = |i: usize| {
                node.args
                    .get(i)
                    .map(|a| resolve(&graph.ty(*a).shape, dims))
                    .transpose()
                    .map(|d| d.unwrap_or_default())
            };
            match &node.op {
                Op::MatMul => arg_dims(0)?.last().copied().unwrap_or(1),
                // Each result element sums over the batches and `K`.
                Op::MatMulSum => {
                    let a = arg_dims(0)?;
                    a.iter().take(a.len().saturating_sub(2)).product::<usize>()
                        * a.last().copied().unwrap_or(1)
                }
                Op::Conv { .. } | Op::ConvTranspose { .. } => arg_dims(1)?.iter().skip(1).product(),
                Op::ConvWeightGrad { .. } => {
                    let dy = arg_dims(1)?;
                    dy.first().copied().unwrap_or(1) * dy.iter().skip(2).product::<usize>()
                }
                // Per result element, its share of the row's step product
                // (the weight's elements over the row's lanes).
                Op::Lstm { .. } | Op::LstmGrad { .. } => {
                    let w = arg_dims(node.op.lstm_weight().unwrap_or(1))?;
                    w.iter().product::<usize>() / domain.last().copied().unwrap_or(1).max(1)
                }
                _ if kernel.kind == KernelKind::Loop => loop_cost(graph, &kernel.nodes),
                _ => 1,
            }
        }
        None => 1,
    };
    let work = if kernel.kind == KernelKind::Copy {
        elems / COPY_ELEMENTS_PER_UNIT
    } else {
        elems.saturating_mul(inner.max(1))
    };
    // A recurrence runs its steps in order; its batch rows (axis 1 of its
    // `[T, B, lanes]` result) are independent.
    let recurrence = matches!(kernel.kind, KernelKind::Lstm | KernelKind::LstmGrad);
    let axis = if recurrence { Some(1) } else { (0..domain.len()).find(|a| !reduced.contains(a)) };
    let extent = axis.map_or(1, |a| domain[a]);
    let product = main.is_some_and(|v| matches!(graph.node(v).op, Op::MatMul | Op::MatMulSum));
    let least = if product { MIN_PRODUCT_CHUNK_WORK } else { MIN_CHUNK_WORK };
    let chunks = threads.min(extent).min(work / least).max(1);
    Ok(Split { axis, extent, chunks })
}

/// Checks that no two buffers with overlapping live ranges share bytes,
/// that offsets are aligned and that every buffer lies below the peak.
pub fn check(plan: &Plan) -> Result<(), String> {
    for (i, a) in plan.buffers.iter().enumerate() {
        if a.offset % ALIGN != 0 {
            return Err(format!("buffer of {} is not {ALIGN}-byte aligned", a.value));
        }
        if a.offset + a.bytes > plan.peak_bytes {
            return Err(format!("buffer of {} ends above the peak", a.value));
        }
        if a.live.0 > a.live.1 {
            return Err(format!("buffer of {} has an empty live range", a.value));
        }
        for b in &plan.buffers[i + 1..] {
            let bytes_overlap = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
            if overlaps(a.live, b.live) && bytes_overlap {
                return Err(format!(
                    "buffers of {} and {} are live together (steps {}-{} and {}-{}) and share bytes",
                    a.value, b.value, a.live.0, a.live.1, b.live.0, b.live.1
                ));
            }
        }
    }
    Ok(())
}

/// A readable listing of the plan: the steps with their split, the buffers
/// with offsets and live ranges, and the peak arena bytes.
pub fn print(plan: &Plan) -> String {
    let (graph, partition) = (&plan.graph, &plan.partition);
    let mut s = String::new();
    let dims: Vec<String> = plan.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "plan {} mode={} dims=[{}] threads={}: {} kernels, {} buffers",
        graph.name,
        graph.mode.name(),
        dims.join(", "),
        plan.threads,
        plan.steps.len(),
        plan.buffers.len()
    );
    let _ = writeln!(s, "steps:");
    for (i, step) in plan.steps.iter().enumerate() {
        let Some(kernel) = partition.kernels.get(step.kernel) else { continue };
        let split = match step.split.axis {
            Some(a) => {
                let noun = if step.split.chunks == 1 { "chunk" } else { "chunks" };
                format!("axis {a} of {} in {} {noun}", step.split.extent, step.split.chunks)
            }
            None => "1 chunk".to_string(),
        };
        let outs: Vec<String> = kernel.outputs.iter().map(|v| v.to_string()).collect();
        let algorithm =
            kernel.nodes.iter().find_map(|v| plan.convs.get(v)).map_or(String::new(), |a| format!("; {a}"));
        // A concatenation whose parts were written in place.
        let parts: Vec<String> = kernel
            .nodes
            .iter()
            .flat_map(|&c| {
                graph.node(c).args.iter().filter(move |a| plan.in_concat.get(a).is_some_and(|p| p.0 == c))
            })
            .map(|v| v.to_string())
            .collect();
        let algorithm =
            if parts.is_empty() { algorithm } else { format!("{algorithm}; in place: {}", parts.join(", ")) };
        // A reshape whose operand's product was written where it holds it.
        let written: Vec<String> = plan
            .in_reshape
            .iter()
            .filter(|(_, r)| kernel.nodes.contains(r))
            .map(|(v, _)| v.to_string())
            .collect();
        let algorithm = if written.is_empty() {
            algorithm
        } else {
            format!("{algorithm}; written in place by its product {}", written.join(", "))
        };
        let _ = writeln!(
            s,
            "  {i:>3} {} {} {}: {split} -> {}{algorithm}",
            kernel.name,
            kernel.kind.name(),
            kernel.domain,
            if outs.is_empty() { "-".to_string() } else { outs.join(", ") }
        );
    }
    let _ = writeln!(s, "buffers:");
    for b in &plan.buffers {
        let (sums, views): (Vec<ValueId>, Vec<ValueId>) =
            b.views.iter().partition(|v| plan.accumulated.contains_key(v));
        let (parts, views): (Vec<ValueId>, Vec<ValueId>) =
            views.iter().partition(|v| plan.in_concat.contains_key(v) || plan.in_reshape.contains_key(v));
        let list = |vs: &[ValueId]| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        let mut views = if views.is_empty() { String::new() } else { format!(" views {}", list(&views)) };
        if !sums.is_empty() {
            views.push_str(&format!(" sums {}", list(&sums)));
        }
        if !parts.is_empty() {
            views.push_str(&format!(" parts {}", list(&parts)));
        }
        let _ = writeln!(
            s,
            "  {:<6} {} offset {} bytes {} live {}-{}{views}",
            b.value.to_string(),
            graph.ty(b.value),
            b.offset,
            b.bytes,
            b.live.0,
            b.live.1
        );
    }
    let total: usize = plan.buffers.iter().map(|b| b.bytes).sum();
    let _ = writeln!(s, "peak arena bytes: {} (without reuse: {total})", plan.peak_bytes);
    s
}

#[cfg(test)]
mod tests;
