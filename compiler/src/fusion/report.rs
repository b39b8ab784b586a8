//! The fusion report: the reason recorded at every kernel boundary
//! ([`boundary_reason`]) and the listing of a partition ([`report`]).

use std::fmt::Write;

use super::{data_args, is_inline, is_reduction, is_view, Kernel, KernelKind, Partition, Placement};
use crate::ir::{Graph, Op, ValueId};

/// The kernels that read each value (directly or through a view of it),
/// in increasing order, by value index: what [`boundary_reason`] counts.
pub(super) fn readers(graph: &Graph, kernels: &[Kernel], placement: &[Placement]) -> Vec<Vec<usize>> {
    let mut readers: Vec<Vec<usize>> = vec![vec![]; placement.len()];
    for (k, kernel) in kernels.iter().enumerate() {
        for &m in &kernel.nodes {
            for &a in data_args(graph, m) {
                let of = &mut readers[placement_base(placement, a).index()];
                if of.last() != Some(&k) {
                    of.push(k);
                }
            }
        }
    }
    readers
}

/// Why `producer`, read by `consumer` through `operand` (the producer
/// itself or a view of it), crosses from one kernel into another;
/// `readers` as made by [`readers`].
pub(super) fn boundary_reason(
    graph: &Graph,
    kernels: &[Kernel],
    placement: &[Placement],
    readers: &[Vec<usize>],
    (producer, operand, consumer): (ValueId, ValueId, ValueId),
) -> String {
    let kernel_at = |v: ValueId| match placement[v.index()] {
        Placement::Kernel(k) => Some(k),
        _ => None,
    };
    let (Some(pi), Some(ck)) = (kernel_at(producer), kernel_at(consumer)) else {
        return "not computed by a kernel".to_string();
    };
    let (pk, ck) = (&kernels[pi], &kernels[ck]);
    let pop = &graph.node(producer).op;
    let cop = &graph.node(consumer).op;
    let cm = cop.mnemonic();
    let pm = pop.mnemonic();
    let main_of = |k: &Kernel| k.nodes.iter().copied().find(|v| !k.epilogue.contains(v));
    // The weight gradient an `lstm_grad` kernel sums with its recurrence.
    let summed_by_recurrence =
        |k: &Kernel, v: ValueId| k.kind == KernelKind::LstmGrad && k.nodes.get(1) == Some(&v);
    if summed_by_recurrence(ck, consumer) {
        return format!("{cm} is summed by the lstm_grad recurrence of {}", ck.name);
    }
    if summed_by_recurrence(pk, producer) {
        return format!("{pm} is summed by the lstm_grad recurrence of {}, its own kernel", pk.name);
    }
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
    if ck.accumulate.is_some_and(|(sum, addend)| sum == consumer && addend == producer) {
        return format!("{cm} accumulates the product of {} onto it (C = A·B + C)", ck.name);
    }
    if pk.kind != KernelKind::Loop && !pk.kind.takes_epilogue() {
        return format!("{pm} is its own kernel");
    }
    if is_reduction(pop) && pk.epilogue.contains(&producer) {
        return format!("reduction output of the epilogue of {}, read by a later kernel", pk.name);
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
    // The kernels other than the producer's that read the value.
    let readers = readers[producer.index()].iter().filter(|&&k| k != pi).count();
    if readers > 1 {
        format!(
            "fusing would create a cycle through another kernel; value has {readers} consumers in different kernels"
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
    for (i, k) in partition.kernels.iter().enumerate() {
        let _ = writeln!(s, "{} {} {}", k.name, k.kind.name(), k.domain);
        for &v in &k.nodes {
            let node = graph.node(v);
            let tag = if partition.kernel_of(v) != Some(i) {
                if k.epilogue.contains(&v) {
                    " (epilogue, recomputed)"
                } else {
                    " (recomputed)"
                }
            } else if k.epilogue.contains(&v) {
                " (epilogue)"
            } else if k.accumulate.is_some_and(|(sum, _)| sum == v) {
                " (accumulate)"
            } else {
                ""
            };
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
