//! Layout decisions of the plan: where a value's memory is not a fresh
//! row-major buffer of its own.
//!
//! - **In-place updates**: a parameter's or state's new value written over
//!   the input of the same name, saving a copy per step.
//! - **Transposed results**: a matrix product every reader reads through a
//!   transpose is written transposed by its GEMM.
//!
//! - **Concatenations in place**: a part of a concatenation that a loop
//!   kernel stores and nothing else reads is stored where the
//!   concatenation holds it, and the concatenation's copy kernel skips it.
//! - **Products written permuted**: a matrix product read only through a
//!   permutation that a copy reshapes (attention heads joined into the
//!   model's channels) is written by its GEMM where the reshape holds each
//!   element, and the copy disappears.
//!
//! All read one map of each value's readers, built once per plan.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::fusion::{KernelKind, Partition, Placement};
use crate::ir::{Graph, Op, OutputKind, ValueId};

/// The nodes reading each value.
pub(super) fn readers(graph: &Graph) -> HashMap<ValueId, Vec<ValueId>> {
    let mut readers: HashMap<ValueId, Vec<ValueId>> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        for &a in &node.args {
            readers.entry(a).or_default().push(ValueId(i as u32));
        }
    }
    readers
}

/// `param` and `state` outputs whose new value can be written over the
/// input of the same name, as new value → input: the value is stored by a
/// loop kernel whose domain is the input's shape, only that kernel reads
/// the value (in the same iteration that computes it: Adam's new moments,
/// read by the parameter's update), the kernel reads the input only
/// directly (same element, same layout, so each element is read before it
/// is overwritten), and no later kernel reads the input. After a run such
/// inputs hold the new values, and the values take no buffer of their own.
pub(super) fn in_place_updates(
    graph: &Graph,
    partition: &Partition,
    readers: &HashMap<ValueId, Vec<ValueId>>,
) -> BTreeMap<ValueId, ValueId> {
    let inputs_by_name: HashMap<&str, ValueId> = graph
        .inputs()
        .filter_map(|(v, n)| match &n.op {
            Op::Input { name, .. } => Some((name.as_str(), v)),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for o in &graph.outputs {
        if !matches!(o.kind, OutputKind::Param | OutputKind::State) {
            continue;
        }
        let v = o.value;
        let (Some(&p), Some(k)) = (inputs_by_name.get(o.name.as_str()), partition.kernel_of(v)) else {
            continue;
        };
        let kernel = &partition.kernels[k];
        let same_type = graph.ty(p) == graph.ty(v) && kernel.domain == graph.ty(v).shape;
        let read_by_its_kernel = readers.get(&v).into_iter().flatten().all(|r| {
            partition.placement.get(r.index()) == Some(&Placement::Kernel(k)) && !kernel.epilogue.contains(r)
        });
        let once = graph.outputs.iter().filter(|x| x.value == v).count() == 1;
        // Every kernel reading `p` (through views too) runs before `k`;
        // `k` itself reads it only directly.
        let mut read_directly = true;
        let mut stack: Vec<(ValueId, bool)> = vec![(p, true)];
        while let Some((x, direct)) = stack.pop() {
            for r in readers.get(&x).into_iter().flatten() {
                match partition.placement.get(r.index()) {
                    Some(Placement::Kernel(j)) => {
                        read_directly &= *j < k || (*j == k && direct && !kernel.epilogue.contains(r));
                    }
                    Some(Placement::View { .. }) => stack.push((*r, false)),
                    _ => read_directly = false,
                }
            }
        }
        if kernel.kind == KernelKind::Loop && same_type && read_by_its_kernel && once && read_directly {
            out.insert(v, p);
        }
    }
    out
}

/// Matmul results that every reader reads through a permute swapping the
/// last two axes (a weight gradient `xᵀ·dy` read as `[out, in]`): their
/// GEMM writes the transposed layout directly, so the readers see
/// row-major memory instead of a strided transpose. The weight gradient an
/// `lstm_grad` kernel computes ([`crate::fusion::Kernel::nodes`]) qualifies
/// alike: the recurrence writes its sum transposed.
pub(super) fn transposed_results(
    graph: &Graph,
    partition: &Partition,
    readers: &HashMap<ValueId, Vec<ValueId>>,
) -> BTreeSet<ValueId> {
    let outputs: BTreeSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let mut out = BTreeSet::new();
    for k in &partition.kernels {
        let v = match k.kind {
            KernelKind::MatMul if k.epilogue.is_empty() && k.accumulate.is_none() => k.nodes.first(),
            KernelKind::LstmGrad => k.nodes.get(1),
            _ => None,
        };
        let Some(&v) = v else { continue };
        let rank = graph.ty(v).shape.rank();
        let swap: Vec<usize> = (0..rank)
            .map(|a| {
                if a + 2 == rank {
                    rank - 1
                } else if a + 1 == rank {
                    rank - 2
                } else {
                    a
                }
            })
            .collect();
        let Some(rs) = readers.get(&v) else { continue };
        let all_transpose = rs.iter().all(|r| {
            matches!(&graph.node(*r).op, Op::Permute { axes } if *axes == swap)
                && matches!(partition.placement.get(r.index()), Some(Placement::View { .. }))
        });
        if rank >= 2 && all_transpose && !outputs.contains(&v) {
            out.insert(v);
        }
    }
    out
}

/// Parts of concatenations that their kernel stores directly into the
/// concatenation's buffer (part → the concatenation and the part's first
/// index along the concatenation's axis). A part qualifies when it is an
/// elementwise output of a loop kernel or of a contraction's epilogue (a
/// plain store at any offset and strides; not a reduction, which fills its
/// buffer first), the concatenation is its only reader, it appears once in
/// it, and it is no graph output nor any other layout decision's value. An
/// unrolled LSTM's backward step computes its four gate gradients in one
/// loop and concatenates them for three products: the loop then writes
/// them in place and the copy goes (64 copy kernels fewer per step of the
/// LSTM bench).
pub(super) fn concat_in_place(
    graph: &Graph,
    partition: &Partition,
    readers: &HashMap<ValueId, Vec<ValueId>>,
    accumulated: &BTreeMap<ValueId, ValueId>,
    in_place: &BTreeMap<ValueId, ValueId>,
    transposed: &BTreeSet<ValueId>,
) -> BTreeMap<ValueId, (ValueId, usize)> {
    let outputs: BTreeSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let owners: BTreeSet<ValueId> = accumulated.values().copied().collect();
    let mut out = BTreeMap::new();
    for kernel in &partition.kernels {
        if kernel.kind != KernelKind::Copy {
            continue;
        }
        let &[c] = kernel.nodes.as_slice() else { continue };
        let node = graph.node(c);
        let Op::Concat { axis } = node.op else { continue };
        if accumulated.contains_key(&c) || in_place.contains_key(&c) {
            continue;
        }
        let mut at = 0usize;
        for &part in &node.args {
            let start = at;
            let extent = graph.ty(part).shape.dims().get(axis).and_then(|d| d.known());
            let Some(extent) = extent else { break };
            at += extent;
            let once = node.args.iter().filter(|&&a| a == part).count() == 1;
            let only_reader = readers.get(&part).is_some_and(|r| r.iter().all(|&x| x == c));
            let stored_plainly = match partition.placement.get(part.index()) {
                Some(Placement::Kernel(k)) => {
                    let pk = &partition.kernels[*k];
                    let elementwise =
                        !matches!(graph.node(part).op, Op::ReduceSum { .. } | Op::ReduceMax { .. });
                    let by_loop = pk.kind == KernelKind::Loop || pk.epilogue.contains(&part);
                    by_loop && elementwise && pk.outputs.contains(&part)
                }
                _ => false,
            };
            let decided = outputs.contains(&part)
                || accumulated.contains_key(&part)
                || owners.contains(&part)
                || in_place.contains_key(&part)
                || transposed.contains(&part);
            let same_type = graph.ty(part).dtype == graph.ty(c).dtype;
            if once && only_reader && stored_plainly && !decided && same_type {
                out.insert(part, (c, start));
            }
        }
    }
    out
}

/// Matrix products written where the reshape of their permutation holds
/// them, as product → reshape: the product (`V`, no epilogue, not summed
/// or accumulated) is read only by a permutation view (`P`), which is read
/// only by a reshape stored by a copy kernel of its own (`R`). `R`'s
/// row-major memory holds `P`'s elements in `P`'s row-major order, so `V`
/// is stored in `R`'s buffer with the strides of that order taken back
/// through the permutation ([`permuted_strides`]), and the copy has nothing
/// left to do. This joins attention heads (`[B, heads, T, d]`, permuted to
/// `[B, T, heads, d]` and reshaped to `[B, T, heads·d]`) as their products
/// are written, forward and backward.
pub(super) fn products_in_reshape(
    graph: &Graph,
    partition: &Partition,
    readers: &HashMap<ValueId, Vec<ValueId>>,
    decided: &dyn Fn(ValueId) -> bool,
) -> BTreeMap<ValueId, ValueId> {
    let outputs: BTreeSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let only_reader = |v: ValueId, r: ValueId| readers.get(&v).is_some_and(|rs| rs.iter().all(|&x| x == r));
    let mut out = BTreeMap::new();
    for kernel in &partition.kernels {
        if kernel.kind != KernelKind::Copy {
            continue;
        }
        let &[r] = kernel.nodes.as_slice() else { continue };
        let Op::Reshape { .. } = graph.node(r).op else { continue };
        let &[p] = graph.node(r).args.as_slice() else { continue };
        let Op::Permute { .. } = graph.node(p).op else { continue };
        let Some(Placement::View { base: v }) = partition.placement.get(p.index()) else { continue };
        let &[v_arg] = graph.node(p).args.as_slice() else { continue };
        if v_arg != *v || !only_reader(p, r) || !only_reader(*v, p) {
            continue;
        }
        let Some(Placement::Kernel(k)) = partition.placement.get(v.index()) else { continue };
        let producer = &partition.kernels[*k];
        let plain_product = producer.kind == KernelKind::MatMul
            && graph.node(*v).op == Op::MatMul
            && producer.epilogue.is_empty()
            && producer.accumulate.is_none()
            && producer.outputs == [*v];
        let same_type = graph.ty(*v).dtype == graph.ty(r).dtype;
        if plain_product
            && same_type
            && !outputs.contains(v)
            && !outputs.contains(&r)
            && !decided(*v)
            && !decided(r)
        {
            out.insert(*v, r);
        }
    }
    out
}

/// The strides of a value `v` of rank `axes.len()` stored so that its
/// permutation by `axes` (axis `i` of the permutation is axis `axes[i]` of
/// `v`) is row-major with `permuted` row-major strides.
pub(crate) fn permuted_strides(axes: &[usize], permuted: &[isize]) -> Vec<isize> {
    let mut strides = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        strides[a] = permuted[i];
    }
    strides
}
