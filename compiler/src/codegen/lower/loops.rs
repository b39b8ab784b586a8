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

    /// A loop kernel computing `nodes` over `domain` and storing `outputs`.
    pub(super) fn loop_calls(
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
    pub(super) fn copy_into(
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

    pub(super) fn copy_calls(&mut self, kernel: &Kernel) -> Result<Vec<Call>, String> {
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
                    self.copy_into(name(0), src, &from, dst, (*lo as isize * out[*axis], out, elem))?;
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
                // A view (a slice among them) or inline value that must
                // exist in memory.
                let src = self.derive(v)?;
                Ok(vec![self.copy_into(name(0), src, &shape, dst, (0, out, elem))?])
            }
        }
    }
}
