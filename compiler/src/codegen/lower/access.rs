//! How lowering reads a value: from a buffer at an offset with strides
//! (views walked down to their base: stride 0 along broadcast axes,
//! permuted strides, the row-major strides of a contiguous reshape, a
//! slice further in, a `stop_gradient` as its operand) or as
//! a constant (`const`, `size`), a part of a concatenation stored in place
//! as its block of the concatenation; and where a base value lives (a graph
//! input, the plan's arena buffer, or a scratch region above the plan's
//! peak).

use super::{Buf, Call, Lowering};
use crate::codegen::loops::Elem;
use crate::fusion::Placement;
use crate::ir::{DType, Op, ValueId};
use crate::plan;
use crate::plan::permuted_strides;

/// How a value is read: from a buffer with an offset and strides (per axis
/// of the value), or as a constant.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Access {
    Mem { base: ValueId, offset: isize, strides: Vec<isize> },
    Const(f32),
}

pub(super) fn row_major(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut s = 1isize;
    for a in (0..shape.len()).rev() {
        strides[a] = s;
        s = s.saturating_mul(shape[a] as isize);
    }
    strides
}

/// The strides that read a value laid out as `from` with `strides` in the
/// shape `to` (of as many elements) without moving it, as a reshape view
/// needs; `None` when the layout cannot be (axes merged across a gap, as
/// a permuted value's). Row-major layouts always can; so can broadcast
/// ones whose merged axes all have stride 0, and any layout when only
/// size-1 axes come or go. Size-1 axes of `to` get stride 0.
fn reshape_strides(from: &[usize], strides: &[isize], to: &[usize]) -> Option<Vec<isize>> {
    if from.contains(&0) || to.contains(&0) {
        return Some(row_major(to));
    }
    let old: Vec<(usize, isize)> =
        from.iter().zip(strides).filter(|(&n, _)| n != 1).map(|(&n, &s)| (n, s)).collect();
    let new: Vec<(usize, usize)> =
        to.iter().enumerate().filter(|(_, &n)| n != 1).map(|(a, &n)| (a, n)).collect();
    let mut out = vec![0isize; to.len()];
    let (mut oi, mut ni) = (0, 0);
    while oi < old.len() && ni < new.len() {
        // The smallest runs of old and new axes of equal size.
        let (mut oj, mut nj) = (oi + 1, ni + 1);
        let (mut op, mut np) = (old[oi].0, new[ni].1);
        while op != np {
            if op < np {
                op = op.checked_mul(old.get(oj)?.0)?;
                oj += 1;
            } else {
                np = np.checked_mul(new.get(nj)?.1)?;
                nj += 1;
            }
        }
        // The old run must be one block: each axis's stride its inner
        // neighbour's stride times its size.
        for k in oi..oj - 1 {
            if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                return None;
            }
        }
        // The new run takes the block's innermost stride, row-major above it.
        let mut stride = old[oj - 1].1;
        for k in (ni..nj).rev() {
            out[new[k].0] = stride;
            stride *= new[k].1 as isize;
        }
        (oi, ni) = (oj, nj);
    }
    (oi == old.len() && ni == new.len()).then_some(out)
}

/// True when `strides` lay `shape` out row-major (size-1 axes ignored).
fn is_row_major(shape: &[usize], strides: &[isize]) -> bool {
    let want = row_major(shape);
    shape.iter().zip(strides.iter().zip(&want)).all(|(&n, (&s, &w))| n == 1 || s == w)
}

impl Lowering<'_> {
    pub(super) fn shape(&self, v: ValueId) -> Result<Vec<usize>, String> {
        plan::resolve(&self.graph.ty(v).shape, &self.dims)
    }

    pub(super) fn len_of(&self, v: ValueId) -> Result<usize, String> {
        Ok(self.shape(v)?.iter().product())
    }

    /// The buffer holding base value `v` (a graph input or a stored value).
    pub(super) fn buf(&self, v: ValueId) -> Result<Buf, String> {
        let index = self.in_place.get(&v).or_else(|| self.input_index.get(&v));
        if let Some(&index) = index {
            return Ok(Buf::Input { index, len: self.inputs[index].shape.iter().product() });
        }
        self.arena.get(&v).copied().ok_or_else(|| format!("{v} has no buffer in the plan"))
    }

    /// A fresh scratch region of `len` elements above the plan's buffers.
    pub(super) fn scratch(&mut self, len: usize) -> Buf {
        let offset = self.arena_len.div_ceil(16) * 16;
        self.arena_len = offset + len.max(1).div_ceil(16) * 16;
        Buf::Arena { offset, len }
    }

    /// How `v` is read, walking views down to their base.
    pub(super) fn access(&self, v: ValueId) -> Result<Access, String> {
        match self.partition.placement.get(v.index()) {
            // A part of a concatenation stored in place: its block of the
            // concatenation's row-major memory.
            Some(Placement::Kernel(_)) if self.plan.in_concat.contains_key(&v) => {
                let (concat, start) = self.plan.in_concat[&v];
                let Op::Concat { axis } = self.graph.node(concat).op else {
                    return Err(format!("{v} is stored in {concat}, which is no concatenation"));
                };
                let strides = row_major(&self.shape(concat)?);
                Ok(Access::Mem { base: concat, offset: start as isize * strides[axis], strides })
            }
            // A product stored where the reshape of its permutation holds
            // each element: the reshape's row-major strides, taken back
            // through the permutation.
            Some(Placement::Kernel(_)) if self.plan.in_reshape.contains_key(&v) => {
                let reshape = self.plan.in_reshape[&v];
                let permutation = self.graph.node(reshape).args[0];
                let Op::Permute { axes } = &self.graph.node(permutation).op else {
                    return Err(format!("{v} is stored in {reshape}, which reshapes no permutation"));
                };
                let strides = permuted_strides(axes, &row_major(&self.shape(permutation)?));
                Ok(Access::Mem { base: reshape, offset: 0, strides })
            }
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
    pub(super) fn derive(&self, v: ValueId) -> Result<Access, String> {
        let node = self.graph.node(v);
        match &node.op {
            Op::Const { value } => Ok(Access::Const(*value as f32)),
            Op::Size { axes } => {
                let arg = node.args.first().ok_or("`size` without operand")?;
                let shape = self.shape(*arg)?;
                let n: usize = axes.iter().map(|&a| shape.get(a).copied().unwrap_or(1)).product();
                Ok(Access::Const(n as f32))
            }
            // The identity: read as its operand is.
            Op::StopGradient => {
                self.access(*node.args.first().ok_or_else(|| format!("view {v} has no operand"))?)
            }
            Op::Slice { axis, start, .. } => {
                let arg = *node.args.first().ok_or_else(|| format!("view {v} has no operand"))?;
                match self.access(arg)? {
                    Access::Mem { base, offset, strides } => {
                        let offset = offset + *start as isize * strides[*axis];
                        Ok(Access::Mem { base, offset, strides })
                    }
                    c => Ok(c),
                }
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
                    Op::Reshape { .. } if is_row_major(&from, &strides) => row_major(&to),
                    Op::Reshape { .. } => reshape_strides(&from, &strides, &to).ok_or_else(|| {
                        format!("{v} reshapes a value whose layout cannot be read in the new shape")
                    })?,
                    other => return Err(format!("{v} ({}) is placed as a view", other.mnemonic())),
                };
                Ok(Access::Mem { base, offset, strides })
            }
            other => Err(format!("{v} ({}) is neither a view nor an immediate", other.mnemonic())),
        }
    }

    /// The buffer of `v` as contiguous row-major memory: its own buffer
    /// when it is, else a scratch copy made by a call appended to `calls`.
    pub(super) fn contiguous(
        &mut self,
        v: ValueId,
        name: String,
        calls: &mut Vec<Call>,
    ) -> Result<Buf, String> {
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
        calls.push(self.copy_into(name, access, &shape, dst, (0, row_major(&shape), elem), 1)?);
        Ok(dst)
    }
}

#[cfg(test)]
mod reshape_tests {
    use super::*;

    #[test]
    fn reshapes_of_strided_layouts_are_read_in_place_where_they_can_be() {
        // Row-major: the row-major strides of the new shape.
        assert_eq!(reshape_strides(&[2, 3, 4], &[12, 4, 1], &[6, 4]), Some(vec![4, 1]));
        // A broadcast scalar: stride 0 everywhere.
        assert_eq!(reshape_strides(&[5, 2, 4], &[0, 0, 0], &[5, 1, 2, 4]), Some(vec![0, 0, 0, 0]));
        // A broadcast row: merging the broadcast axes keeps stride 0.
        assert_eq!(reshape_strides(&[5, 2, 4], &[0, 0, 1], &[10, 4]), Some(vec![0, 1]));
        // Size-1 axes in and out of a permuted layout.
        assert_eq!(reshape_strides(&[3, 1, 4], &[1, 99, 3], &[3, 4, 1]), Some(vec![1, 3, 0]));
        // Splitting a transposed axis keeps its stride inside.
        assert_eq!(reshape_strides(&[6, 4], &[1, 6], &[2, 3, 4]), Some(vec![3, 1, 6]));
        // Merging axes across a gap (a transpose) cannot be read in place.
        assert_eq!(reshape_strides(&[3, 4], &[1, 3], &[12]), None);
        assert_eq!(reshape_strides(&[2, 2, 4], &[8, 1, 2], &[2, 8]), None);
    }
}
