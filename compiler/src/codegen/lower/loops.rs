//! Loop and copy kernels: a `loop` kernel's nodes become the body
//! expressions of one [`LoopKernel`] (operands read from outside are strided
//! inputs, reductions are reduce stores whose outputs are filled with the
//! identity first); a `copy` kernel becomes loop kernels that read through
//! a view and write a region of their output (a slice at an offset, one
//! region per `concat` operand, the interior of a `pad` after a zero fill).

use std::collections::HashMap;

use super::access::{row_major, Access};
use super::{Buf, Call, Lowering};
use crate::codegen::loops::{Elem, Expr, LoopKernel, Operand, Reduce, Store};
use crate::fusion::Kernel;
use crate::ir::{DType, Op, ValueId};
use crate::plan;

impl Lowering<'_> {
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

    /// A loop kernel computing `nodes` over `domain` and storing `outputs`,
    /// run in the ranges of the plan's `split` ([`chunked`]).
    pub(super) fn loop_calls(
        &mut self,
        name: &str,
        nodes: &[ValueId],
        outputs: &[ValueId],
        domain: &[usize],
        split: &plan::Split,
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
            // A part of a concatenation goes straight to its block of it.
            let (offset, strides) = if self.plan.in_concat.contains_key(&o) {
                match self.access(o)? {
                    Access::Mem { offset, strides, .. } => (offset, strides),
                    Access::Const(_) => return Err(format!("{o} is stored in place as a constant")),
                }
            } else {
                (0, row_major(domain))
            };
            stores.push((self.buf(o)?, Store { value: e, offset, strides, elem, reduce: None }));
        }
        let kernel = LoopKernel {
            name: name.to_string(),
            shape: domain.to_vec(),
            inputs: inputs.iter().map(|(_, o)| o.clone()).collect(),
            body,
            outputs: stores.iter().map(|(_, s)| s.clone()).collect(),
        };
        if let Some(calls) = self.batch_partials(&kernel, &inputs, &stores, split)? {
            return Ok(calls);
        }
        let (kernel, ranges) = chunked(kernel, split);
        let id = self.jit.add_loop_kernel(&kernel, self.checking).map_err(|e| e.message)?;
        fills.push(Call::Loop {
            kernel: id,
            inputs: inputs.into_iter().map(|(b, _)| b).collect(),
            outputs: stores.into_iter().map(|(b, _)| b).collect(),
            ranges,
        });
        Ok(fills)
    }

    /// A kernel that sums over its outermost axis (a bias's or a
    /// normalisation's gradient: a sum over the batch rows) run on the
    /// plan's threads by halves of that axis instead of by the plan's
    /// split of the kept axis: each part sums its rows into partial sums of
    /// its own (scratch), then one small kernel adds the parts' sums in
    /// part order. Divided along the kept axis, every thread reads part of
    /// every row, including the rows the previous kernel (split by rows)
    /// left in the other core's cache; by rows, each reads the rows it
    /// wrote. The sums are split as a GEMM's by depth is: the bits depend
    /// on the thread count, fixed for a given one. `None` where this does
    /// not apply: one thread, a split of the outermost axis, a reduction
    /// that is not a sum over the outermost axis, a kernel reading
    /// positions, or too little work.
    fn batch_partials(
        &mut self,
        kernel: &LoopKernel,
        inputs: &[(Buf, Operand)],
        stores: &[(Buf, Store)],
        split: &plan::Split,
    ) -> Result<Option<Vec<Call>>, String> {
        let parts = self.plan.threads;
        let Some(&outer) = kernel.shape.first() else { return Ok(None) };
        let sums: Vec<usize> = (0..stores.len()).filter(|&o| stores[o].1.reduce.is_some()).collect();
        let applies = parts > 1
            && split.axis.is_some_and(|a| a > 0)
            && split.chunks > 1
            && outer >= parts
            && outer % parts == 0
            && kernel.elements() >= BATCH_PARTIALS_ELEMENTS
            && !kernel.uses_position()
            && !sums.is_empty()
            && sums.iter().all(|&o| stores[o].1.reduce == Some(Reduce::Sum) && stores[o].1.strides[0] == 0);
        if !applies {
            return Ok(None);
        }
        // Each sum's length: its elements from offset 0.
        let lens: Option<Vec<usize>> = sums
            .iter()
            .map(|&o| match kernel.output_extent(o) {
                Some((0, hi)) => Some(hi as usize + 1),
                _ => None,
            })
            .collect();
        let Some(lens) = lens else { return Ok(None) };
        let mut split_kernel = kernel.split_axis(0, parts);
        let mut calls = vec![];
        let mut outputs: Vec<Buf> = stores.iter().map(|(b, _)| *b).collect();
        let mut combines = vec![];
        for (&o, &len) in sums.iter().zip(&lens) {
            let partial = self.scratch(parts * len);
            calls.push(Call::Fill { buf: partial, value: 0.0 });
            split_kernel.outputs[o].strides[0] = len as isize;
            outputs[o] = partial;
            combines.push((partial, len, stores[o].0));
        }
        let id = self.jit.add_loop_kernel(&split_kernel, self.checking).map_err(|e| e.message)?;
        let total = split_kernel.elements();
        calls.push(Call::Loop {
            kernel: id,
            inputs: inputs.iter().map(|(b, _)| *b).collect(),
            outputs,
            ranges: (0..parts).map(|i| (i * total / parts, (i + 1) * total / parts)).collect(),
        });
        for (i, (partial, len, out)) in combines.into_iter().enumerate() {
            // out = ((p0 + p1) + p2) + …
            let mut body = vec![Expr::Input(0)];
            for p in 1..parts {
                body.push(Expr::Input(p));
                body.push(Expr::Binary(crate::ir::BinaryOp::Add, body.len() - 2, body.len() - 1));
            }
            let sum = LoopKernel {
                name: format!("{}_parts{i}", kernel.name),
                shape: vec![len],
                inputs: (0..parts)
                    .map(|p| Operand { offset: (p * len) as isize, strides: vec![1], elem: Elem::F32 })
                    .collect(),
                body: body.clone(),
                outputs: vec![Store {
                    value: body.len() - 1,
                    offset: 0,
                    strides: vec![1],
                    elem: Elem::F32,
                    reduce: None,
                }],
            };
            let id = self.jit.add_loop_kernel(&sum, self.checking).map_err(|e| e.message)?;
            calls.push(Call::Loop {
                kernel: id,
                inputs: vec![partial; parts],
                outputs: vec![out],
                ranges: vec![(0, len)],
            });
        }
        Ok(Some(calls))
    }

    /// A loop kernel copying `src` (any access) into `dst` at `offset` with
    /// `dst_strides`, over `shape`, in `chunks` ranges of its outermost axis
    /// (each element is written once, so the ranges may run concurrently).
    pub(super) fn copy_into(
        &mut self,
        name: String,
        src: Access,
        shape: &[usize],
        dst: Buf,
        (offset, dst_strides, elem): (isize, Vec<isize>, Elem),
        chunks: usize,
    ) -> Result<Call, String> {
        let (src, shape, dst_strides) = long_inner_axis(src, shape, dst_strides);
        let shape = &shape[..];
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
        let outer = shape.first().copied().unwrap_or(1);
        let parts = chunks.clamp(1, outer.max(1));
        let inner = total.checked_div(outer).unwrap_or(0);
        Ok(Call::Loop {
            kernel: id,
            inputs: inputs.into_iter().map(|(b, _)| b).collect(),
            outputs: vec![dst],
            ranges: (0..parts)
                .map(|i| (i * outer / parts * inner, (i + 1) * outer / parts * inner))
                .collect(),
        })
    }

    pub(super) fn copy_calls(&mut self, kernel: &Kernel, chunks: usize) -> Result<Vec<Call>, String> {
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
            Op::Pad { axis, lo, .. } => {
                let from = self.shape(node.args[0])?;
                let src = self.access(node.args[0])?;
                let fill = Call::Fill { buf: dst, value: 0.0 };
                let copy =
                    self.copy_into(name(0), src, &from, dst, (*lo as isize * out[*axis], out, elem), chunks)?;
                Ok(vec![fill, copy])
            }
            Op::Concat { axis } => {
                let mut calls = vec![];
                let mut at = 0usize;
                for (i, &a) in node.args.iter().enumerate() {
                    let from = self.shape(a)?;
                    if self.plan.in_concat.contains_key(&a) {
                        // Written in place by its own kernel.
                        at += from[*axis];
                        continue;
                    }
                    let src = self.access(a)?;
                    calls.push(self.copy_into(
                        name(i),
                        src,
                        &from,
                        dst,
                        (at as isize * out[*axis], out.clone(), elem),
                        chunks,
                    )?);
                    at += from[*axis];
                }
                Ok(calls)
            }
            Op::Reshape { .. } if self.plan.in_reshape.values().any(|&r| r == v) => {
                // Its operand's product wrote every element in place.
                Ok(vec![])
            }
            Op::Reshape { .. } => {
                // The reshape's row-major memory is its operand's elements in
                // row-major order: iterate over the operand's shape.
                let arg = node.args[0];
                let from = self.shape(arg)?;
                let src = self.access(arg)?;
                Ok(vec![self.copy_into(name(0), src, &from, dst, (0, row_major(&from), elem), chunks)?])
            }
            _ => {
                // A view (a slice among them) or inline value that must
                // exist in memory.
                let src = self.derive(v)?;
                Ok(vec![self.copy_into(name(0), src, &shape, dst, (0, out, elem), chunks)?])
            }
        }
    }
}

/// Elements below which a sum over the batch stays on the plan's split
/// ([`Lowering::batch_partials`]): the partial sums' extra kernel and
/// scratch cost more than a split of a small kernel saves.
const BATCH_PARTIALS_ELEMENTS: usize = 1 << 16;

/// Shortest innermost axis a copy keeps: a copy whose innermost axis is
/// shorter (the repeats of a nearest upsampling: `[.., W, 2]` with a zero
/// input stride) runs a loop of a few elements per row.
const SHORT_INNER_AXIS: usize = 8;

/// A copy's iteration reordered so that its innermost axis is long: when
/// the innermost axis is shorter than [`SHORT_INNER_AXIS`], the axis (not
/// the outermost, which the plan's split divides) of at least that many
/// elements with the smallest destination stride moves innermost. Every
/// element is still written once from the same source element; only the
/// order changes (the upsampling by 2 of a 32×32 image: rows of 32
/// elements with stores 2 apart instead of rows of 2).
fn long_inner_axis(
    src: Access,
    shape: &[usize],
    dst_strides: Vec<isize>,
) -> (Access, Vec<usize>, Vec<isize>) {
    let n = shape.len();
    let unchanged = |src| (src, shape.to_vec(), dst_strides.clone());
    if n < 3 || shape[n - 1] >= SHORT_INNER_AXIS {
        return unchanged(src);
    }
    let best = (1..n - 1)
        .filter(|&a| shape[a] >= SHORT_INNER_AXIS)
        .min_by_key(|&a| (dst_strides[a].unsigned_abs(), std::cmp::Reverse(shape[a])));
    let Some(axis) = best else { return unchanged(src) };
    let order: Vec<usize> = (0..n).filter(|&a| a != axis).chain([axis]).collect();
    let permute = |v: &[isize]| order.iter().map(|&a| v[a]).collect::<Vec<_>>();
    let src = match src {
        Access::Mem { base, offset, strides } => Access::Mem { base, offset, strides: permute(&strides) },
        other => other,
    };
    (src, order.iter().map(|&a| shape[a]).collect(), permute(&dst_strides))
}

#[cfg(test)]
mod copy_order_tests {
    use super::*;

    fn mem(strides: Vec<isize>) -> Access {
        Access::Mem { base: ValueId(0), offset: 3, strides }
    }

    #[test]
    fn copies_with_a_short_inner_axis_run_along_a_long_one() {
        // Nearest upsampling by 2 of [8, 16, 32, 32] into [8, 16, 64, 64]:
        // [8, 16, 32, 2, 32, 2], the inner repeat read with stride 0.
        let shape = [8, 16, 32, 2, 32, 2];
        let src = vec![16384, 1024, 32, 0, 1, 0];
        let dst = vec![65536, 4096, 128, 64, 2, 1];
        let (a, s, d) = long_inner_axis(mem(src), &shape, dst);
        // The image columns (destination stride 2) move innermost; the
        // outermost axis stays first.
        assert_eq!(s, vec![8, 16, 32, 2, 2, 32]);
        assert_eq!(d, vec![65536, 4096, 128, 64, 1, 2]);
        let Access::Mem { offset, strides, .. } = a else { panic!("a memory access") };
        assert_eq!((offset, strides), (3, vec![16384, 1024, 32, 0, 0, 1]));
        // A long inner axis, or no long axis to move, leaves the copy as it is.
        let (_, s, _) = long_inner_axis(mem(vec![64, 1]), &[4, 64], vec![64, 1]);
        assert_eq!(s, vec![4, 64]);
        let (_, s, d) = long_inner_axis(Access::Const(0.0), &[9, 2, 3, 2], vec![12, 6, 2, 1]);
        assert_eq!((s, d), (vec![9, 2, 3, 2], vec![12, 6, 2, 1]));
        let (_, s, _) = long_inner_axis(mem(vec![1, 0]), &[100, 2], vec![2, 1]);
        assert_eq!(s, vec![100, 2]);
    }
}

/// `kernel` and the ranges of flat indices it runs in for the plan's
/// `split` of axis `a` into `chunks` index ranges.
///
/// A kernel's calls divide the flat (row-major) index range of its
/// iteration space, so a split of the outermost axis larger than 1 is a
/// split of that range. A split of an axis with larger axes before it (a
/// reduction over the batch into per-channel or per-feature sums, which
/// the plan divides along the channels) is made one by rearranging the
/// space: when `chunks` divides the axis, it becomes `[chunks, extent /
/// chunks]` and the chunk axis moves first, every other axis in place (the
/// innermost axis, which the code vectorises, stays innermost); otherwise
/// the whole axis moves first. Every operand and store keeps its
/// addresses, only the order of the axes changes, and the elements that
/// reduce into one output element (all at the same index of the split
/// axis, which no reduction reduces) are visited in the same order as
/// before, so the results have the same bits as one range's. A kernel that
/// reads the positions of its elements (`AxisIndex`, `Random`: positions
/// are flat indices of its space) keeps its space and runs as one range.
pub(super) fn chunked(kernel: LoopKernel, split: &plan::Split) -> (LoopKernel, Vec<(usize, usize)>) {
    let total = kernel.elements();
    let (Some(a), chunks) = (split.axis, split.chunks) else {
        return (kernel, vec![(0, total)]);
    };
    let extent = kernel.shape.get(a).copied().unwrap_or(1);
    if chunks <= 1 || extent != split.extent || chunks > extent {
        return (kernel, vec![(0, total)]);
    }
    let ranges_of = |outer: usize, inner: usize| -> Vec<(usize, usize)> {
        (0..chunks).map(|i| (i * outer / chunks * inner, (i + 1) * outer / chunks * inner)).collect()
    };
    if kernel.shape[..a].iter().all(|&n| n == 1) {
        let inner = kernel.shape[a + 1..].iter().product();
        return (kernel, ranges_of(extent, inner));
    }
    if kernel.uses_position() {
        return (kernel, vec![(0, total)]);
    }
    // The split axis (or its chunk axis) first, every other axis in place.
    let first = |k: &LoopKernel| {
        let order: Vec<usize> = [a].into_iter().chain((0..k.shape.len()).filter(|&x| x != a)).collect();
        k.permuted(&order)
    };
    if extent % chunks == 0 {
        (first(&kernel.split_axis(a, chunks)), ranges_of(chunks, total / chunks))
    } else {
        (first(&kernel), ranges_of(extent, total / extent))
    }
}

#[cfg(test)]
mod tests {
    use super::chunked;
    use crate::codegen::loops::{Elem, Expr, LoopKernel, Operand, Reduce, Store};
    use crate::codegen::tests::{contiguous as row_major, reduced_strides as reduced};
    use crate::codegen::{Checking, Jit};
    use crate::ir::BinaryOp;
    use crate::plan::Split;

    /// `x · w` (w broadcast along the first axis) summed and maximised over
    /// `axes` and stored plainly: a bias's or a normalisation's gradient.
    fn kernel(shape: &[usize], axes: &[usize]) -> (LoopKernel, Vec<usize>) {
        let (strides, len) = reduced(shape, axes);
        let mut w = row_major(shape);
        w[0] = 0;
        let n = shape.iter().product();
        let kernel = LoopKernel {
            name: format!("k_{}_{}", shape.len(), n),
            shape: shape.to_vec(),
            inputs: vec![
                Operand { offset: 0, strides: row_major(shape), elem: Elem::F32 },
                Operand { offset: 0, strides: w, elem: Elem::F32 },
            ],
            body: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(BinaryOp::Mul, 0, 1)],
            outputs: vec![
                Store {
                    value: 2,
                    offset: 0,
                    strides: strides.clone(),
                    elem: Elem::F32,
                    reduce: Some(Reduce::Sum),
                },
                Store { value: 2, offset: 0, strides, elem: Elem::F32, reduce: Some(Reduce::Max) },
                Store { value: 2, offset: 0, strides: row_major(shape), elem: Elem::F32, reduce: None },
            ],
        };
        (kernel, vec![len, len, n])
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0).collect()
    }

    /// A split of an axis with larger axes before it runs as the plan's
    /// chunks: whether the chunks divide the axis or not, the rearranged
    /// kernel's ranges cover the space, and running them (in either order)
    /// gives the bits of the original kernel run as one range.
    #[test]
    fn a_split_behind_larger_axes_runs_in_chunks_with_the_same_bits() {
        let cases: [(&[usize], &[usize], usize, usize); 5] = [
            // A bias's gradient over [batch, positions, features].
            (&[6, 10, 12], &[0, 1], 2, 2),
            (&[6, 10, 12], &[0, 1], 2, 5),
            // A normalisation's per-channel sums over [N, C, H, W].
            (&[4, 6, 5, 7], &[0, 2, 3], 1, 2),
            (&[4, 6, 5, 7], &[0, 2, 3], 1, 4),
            (&[3, 8, 16], &[0], 1, 2),
        ];
        let mut jit = Jit::new().expect("host JIT");
        let mut compiled = vec![];
        for (i, &(shape, axes, axis, chunks)) in cases.iter().enumerate() {
            let (k, lens) = kernel(shape, axes);
            let split = Split { axis: Some(axis), extent: shape[axis], chunks };
            let (c, ranges) = chunked(k.clone(), &split);
            c.validate().expect("the rearranged kernel is valid");
            assert_eq!(c.elements(), k.elements());
            assert_eq!(c.shape[0], if shape[axis] % chunks == 0 { chunks } else { shape[axis] });
            assert_eq!(ranges.len(), chunks);
            assert_eq!(ranges.first().map(|r| r.0), Some(0));
            assert_eq!(ranges.last().map(|r| r.1), Some(k.elements()));
            assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
            let (mut one, mut parts) = (k, c);
            one.name = format!("one_{i}");
            parts.name = format!("parts_{i}");
            let ids = [one, parts].map(|k| jit.add_loop_kernel(&k, Checking::Checked).expect("compiles"));
            compiled.push((ids, ranges, lens, shape.iter().product::<usize>()));
        }
        jit.finalize().expect("finalizes");
        for (i, (ids, ranges, lens, n)) in compiled.iter().enumerate() {
            let (x, w) = (values(*n, i as u32), values(*n, 7 + i as u32));
            let run = |id, ranges: &[(usize, usize)]| {
                let f = jit.loop_fn(id).expect("finalized");
                let mut outs =
                    vec![vec![0.0f32; lens[0]], vec![f32::NEG_INFINITY; lens[1]], vec![0.0; lens[2]]];
                let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
                for &(s, e) in ranges {
                    f.run(&[&x, &w], &mut refs, s, e).expect("runs");
                }
                outs
            };
            let want = run(ids[0], &[(0, *n)]);
            let bits = |o: &[Vec<f32>]| o.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
            let mut reversed = ranges.clone();
            reversed.reverse();
            for order in [ranges, &reversed] {
                assert_eq!(bits(&run(ids[1], order)), bits(&want), "case {i}: ranges {order:?}");
            }
        }
    }

    /// A kernel reading its elements' positions keeps its space: its
    /// positions are flat indices of it.
    #[test]
    fn a_kernel_reading_positions_runs_as_one_range() {
        let (mut k, _) = kernel(&[4, 6, 8], &[0, 2]);
        k.body.push(Expr::AxisIndex(1));
        let split = Split { axis: Some(1), extent: 6, chunks: 2 };
        let (c, ranges) = chunked(k.clone(), &split);
        assert_eq!(c, k);
        assert_eq!(ranges, vec![(0, k.elements())]);
        // An outermost split needs no rearranging.
        let (k, _) = kernel(&[4, 6, 8], &[1, 2]);
        let (c, ranges) = chunked(k.clone(), &Split { axis: Some(0), extent: 4, chunks: 2 });
        assert_eq!(c, k);
        assert_eq!(ranges, vec![(0, 96), (96, 192)]);
    }
}
