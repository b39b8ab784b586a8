//! Recomputation: a cheap elementwise value is computed again by the
//! kernels that read it instead of being stored by the kernel that computes
//! it, when what it is computed from is stored anyway.
//!
//! A normalisation's centred input `x - mean` is computed by the loop that
//! sums its squares (the variance) and read by the loop that divides it by
//! the deviation, and again by the backward pass; stored, it is one more
//! tensor of the layer's size written in the forward pass and held until
//! the backward pass, next to `x` itself, which the backward pass reads
//! anyway. Recomputed, it costs one subtraction per element where it is
//! read.
//!
//! A value `v` of kernel `K` is recomputed when:
//! - it is an `add`, `sub`, `mul`, `div`, `max`, `min`, `neg` or `abs`, no
//!   graph output, and no view reads it;
//! - every node reading it is in a loop of `v`'s shape or in the epilogue
//!   of a contraction of that shape (or in `K`), and reads it directly;
//! - each of its operands is a constant, a kernel value stored anyway
//!   (never a graph input, which a parameter update may overwrite in place
//!   before a later reader runs), or a value recomputed itself, which the
//!   readers of `v` then compute too (the normalised `(x - mean) / sd`
//!   from `x`);
//! - each reading kernel gains at most one operand of `v`'s size it did not
//!   already read (the store saved pays for one read) and stays within
//!   [`MAX_LOOP_INPUTS`] inputs;
//! - `K` keeps another output (its epilogue does, when `v` is in it).
//!
//! `v` then joins the nodes of each reading kernel (its epilogue, for a
//! contraction), which computes it from its operands; its placement stays
//! `K`, which computes it for its own nodes and no longer stores it.
//! Operands come from kernels before `K`, or from `K`, so every reading
//! kernel still runs after what it reads. Values are visited in definition
//! order, so an operand's own decision is made, and final, before its
//! reader's: a value stored stays stored.
//!
//! Before all this, a value a kernel computes but does not store, from
//! which two or more of its stored values are computed cheaply and could
//! be recomputed (GELU's `x/√2` and `x/2` of its pre-activation `x`, both
//! read by the epilogue of its gradient's product), becomes one of its
//! outputs: one store in place of two.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::grouping::MAX_LOOP_INPUTS;
use super::views::Layout;
use super::{data_args, is_elementwise, Kernel, KernelKind, Placement};
use crate::ir::{BinaryOp, Graph, Op, UnaryOp, ValueId};

/// Whether `op` is cheap enough to compute again wherever it is read.
fn cheap(op: &Op) -> bool {
    matches!(
        op,
        Op::Binary(
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Max | BinaryOp::Min
        ) | Op::Unary(UnaryOp::Neg | UnaryOp::Abs)
    )
}

/// What a reader of a recomputed value computes: the value and the
/// recomputed values it reads, in definition order; and the stored values
/// they read, each with whether it is read whole (not through a view, and
/// of the value's size).
type Recipe = (Vec<ValueId>, Vec<(ValueId, bool)>);

/// Whether `kernel` still stores something without `v`: another output,
/// and, when `v` is in a contraction's epilogue, another output of the
/// epilogue (the loop that runs it).
fn keeps_a_store(kernel: &Kernel, v: ValueId) -> bool {
    let in_epilogue = kernel.epilogue.contains(&v);
    kernel.outputs.iter().any(|&o| o != v && (!in_epilogue || kernel.epilogue.contains(&o)))
}

/// The kernels other than `k` that read `v` (`readers` are its readers),
/// if each can recompute it: a loop of its shape, or the epilogue of a
/// contraction of its shape; `None` otherwise or when no other kernel
/// reads it.
fn reading_kernels(
    graph: &Graph,
    kernels: &[Kernel],
    placement: &[Placement],
    readers: &[ValueId],
    v: ValueId,
    k: usize,
) -> Option<BTreeSet<usize>> {
    let mut targets: BTreeSet<usize> = BTreeSet::new();
    for &r in readers {
        let Placement::Kernel(l) = placement[r.index()] else { return None };
        if l == k {
            continue;
        }
        let kernel = &kernels[l];
        let fits = kernel.domain == graph.ty(v).shape
            && (kernel.kind == KernelKind::Loop
                || (kernel.kind.takes_epilogue() && kernel.epilogue.contains(&r)));
        if !fits {
            return None;
        }
        targets.insert(l);
    }
    (!targets.is_empty()).then_some(targets)
}

/// Recomputes values where they are read (see the module documentation);
/// returns the values no longer stored.
pub(super) fn recompute(
    graph: &Graph,
    kernels: &mut [Kernel],
    placement: &[Placement],
    layout: &[Layout],
) -> Vec<ValueId> {
    let n = graph.nodes.len();
    let mut readers: Vec<Vec<ValueId>> = vec![vec![]; n];
    let mut viewed = vec![false; n];
    for (i, p) in placement.iter().enumerate() {
        let v = ValueId(i as u32);
        match p {
            Placement::Kernel(_) => {
                for &a in data_args(graph, v) {
                    if !readers[a.index()].contains(&v) {
                        readers[a.index()].push(v);
                    }
                }
            }
            Placement::View { base } => viewed[base.index()] = true,
            _ => {}
        }
    }
    let outputs: HashSet<ValueId> = graph.outputs.iter().map(|o| o.value).collect();
    let size = |v: ValueId| graph.ty(v).shape.clone();
    // A cheap stored value no view and no graph output reads.
    let candidate = |v: ValueId, kernel: &Kernel| {
        cheap(&graph.node(v).op) && !outputs.contains(&v) && !viewed[v.index()] && kernel.outputs.contains(&v)
    };
    // A value its kernel computes but does not store, from which two or
    // more stored values are computed cheaply (GELU's `x/√2` and `x/2` of
    // its pre-activation `x`), is stored instead of them: the loop below
    // then recomputes them from it.
    let mut shared: BTreeMap<(usize, ValueId), usize> = BTreeMap::new();
    for (i, p) in placement.iter().enumerate() {
        let v = ValueId(i as u32);
        let Placement::Kernel(k) = *p else { continue };
        let kernel = &kernels[k];
        if !candidate(v, kernel) || reading_kernels(graph, kernels, placement, &readers[i], v, k).is_none() {
            continue;
        }
        let computed: Vec<ValueId> = data_args(graph, v)
            .iter()
            .map(|&a| layout[a.index()].base)
            .filter(|b| placement[b.index()] != Placement::Inline)
            .collect();
        let &[u] = computed.as_slice() else { continue };
        let storable = placement[u.index()] == Placement::Kernel(k)
            && data_args(graph, v).contains(&u)
            && !kernel.outputs.contains(&u)
            && size(u) == size(v)
            && is_elementwise(&graph.node(u).op)
            && (kernel.kind == KernelKind::Loop || kernel.epilogue.contains(&u));
        if storable {
            *shared.entry((k, u)).or_insert(0) += 1;
        }
    }
    let mut added = vec![];
    for ((k, u), count) in shared {
        if count >= 2 {
            let outputs: BTreeSet<ValueId> = kernels[k].outputs.iter().copied().chain([u]).collect();
            kernels[k].outputs = outputs.into_iter().collect();
            added.push((k, u));
        }
    }
    let mut removed: Vec<ValueId> = vec![];
    let mut recipes: HashMap<ValueId, Recipe> = HashMap::new();
    for i in 0..n {
        let v = ValueId(i as u32);
        let Placement::Kernel(k) = placement[i] else { continue };
        if !candidate(v, &kernels[k]) || !keeps_a_store(&kernels[k], v) {
            continue;
        }
        // The operands' bases: constants, values stored anyway, or values
        // recomputed themselves.
        let mut nodes = vec![v];
        let mut bases: Vec<(ValueId, bool)> = vec![];
        let operands_ok = data_args(graph, v).iter().all(|&a| {
            let b = layout[a.index()].base;
            if let Some((more, sources)) = recipes.get(&b) {
                nodes.extend(more.iter().copied());
                bases.extend(sources.iter().copied());
                return a == b;
            }
            match placement[b.index()] {
                Placement::Inline => true,
                Placement::Kernel(p) => {
                    let stored = kernels[p].outputs.contains(&b);
                    if stored {
                        bases.push((b, a == b && size(b) == size(v)));
                    }
                    stored
                }
                _ => false,
            }
        });
        if !operands_ok {
            continue;
        }
        nodes.sort();
        nodes.dedup();
        bases.sort();
        bases.dedup();
        let Some(targets) = reading_kernels(graph, kernels, placement, &readers[i], v, k) else { continue };
        let affordable = targets.iter().all(|&l| {
            let inputs = &kernels[l].inputs;
            let full_new = bases.iter().filter(|&&(b, full)| full && !inputs.contains(&b)).count();
            let mut after: BTreeSet<ValueId> = inputs.iter().copied().filter(|&x| x != v).collect();
            after.extend(bases.iter().map(|&(b, _)| b));
            full_new <= 1 && after.len() <= MAX_LOOP_INPUTS
        });
        if !affordable {
            continue;
        }
        for &l in &targets {
            let kernel = &mut kernels[l];
            let mut inputs: BTreeSet<ValueId> = kernel.inputs.iter().copied().filter(|&x| x != v).collect();
            inputs.extend(bases.iter().map(|&(b, _)| b));
            kernel.inputs = inputs.into_iter().collect();
            let missing: Vec<ValueId> = nodes.iter().copied().filter(|x| !kernel.nodes.contains(x)).collect();
            if kernel.kind.takes_epilogue() {
                kernel.epilogue.extend(missing.iter().copied());
                kernel.epilogue.sort();
            }
            kernel.nodes.extend(missing);
            kernel.nodes.sort();
        }
        kernels[k].outputs.retain(|&o| o != v);
        recipes.insert(v, (nodes, bases));
        removed.push(v);
    }
    // A value stored for recomputations that did not happen (a reader
    // past its inputs) is stored no more: nothing else reads it.
    for (k, u) in added {
        if !recipes.values().any(|(_, sources)| sources.iter().any(|&(b, _)| b == u)) {
            kernels[k].outputs.retain(|&o| o != u);
        }
    }
    removed
}
