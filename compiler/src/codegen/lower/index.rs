//! Gather and scatter kernels: `gather`, `scatter_sum` and `scatter_max`
//! become one window kernel each ([`WindowOp::Gather`], …) over contiguous
//! operands; `scatter_max_grad` becomes three, through two scratch buffers
//! above the plan's peak: the `scatter_max` of its operands, then per
//! element of that maximum the first position holding it
//! ([`WindowOp::ScatterMaxFirst`], i32), then the output gradient routed to
//! those positions ([`WindowOp::ScatterMaxRoute`]).

use super::{Buf, Call, Lowering};
use crate::codegen::window::{WindowKernel, WindowOp};
use crate::fusion::Kernel;
use crate::ir::Op;
use crate::plan;

impl Lowering<'_> {
    pub(super) fn index_calls(&mut self, kernel: &Kernel, step: &plan::Step) -> Result<Vec<Call>, String> {
        let &[v] = kernel.nodes.as_slice() else {
            return Err(format!(
                "an index kernel computes one value, {} has {}",
                kernel.name,
                kernel.nodes.len()
            ));
        };
        let node = self.graph.node(v);
        let mut calls = vec![];
        let mut operands = vec![];
        for (i, &a) in node.args.iter().enumerate() {
            let buf = self.contiguous(a, format!("{}_in{i}", kernel.name), &mut calls)?;
            operands.push((buf, self.shape(a)?));
        }
        let output = (self.buf(v)?, self.shape(v)?);
        let single = |op| vec![(kernel.name.clone(), op, operands.clone(), output.clone())];
        let kernels = match &node.op {
            Op::Gather { axis } => single(WindowOp::Gather { axis: *axis }),
            Op::ScatterSum { axis, size } => single(WindowOp::ScatterSum { axis: *axis, size: *size }),
            Op::ScatterMax { axis, size } => single(WindowOp::ScatterMax { axis: *axis, size: *size }),
            Op::ScatterMaxGrad { axis } => {
                let axis = *axis;
                let [x, index, dy] = operands.as_slice() else {
                    return Err(format!("{v}: `scatter_max_grad` takes 3 operands, got {}", operands.len()));
                };
                // The maximum and the first positions have the output gradient's shape.
                let len = dy.1.iter().product();
                let y = (self.scratch(len), dy.1.clone());
                let first = (self.scratch(len), dy.1.clone());
                let size = dy.1.get(axis).copied().ok_or_else(|| format!("{v}: axis {axis} out of range"))?;
                vec![
                    (
                        format!("{}_max", kernel.name),
                        WindowOp::ScatterMax { axis, size },
                        vec![x.clone(), index.clone()],
                        y.clone(),
                    ),
                    (
                        format!("{}_first", kernel.name),
                        WindowOp::ScatterMaxFirst { axis },
                        vec![x.clone(), index.clone(), y],
                        first.clone(),
                    ),
                    (
                        kernel.name.clone(),
                        WindowOp::ScatterMaxRoute { axis },
                        vec![index.clone(), first, dy.clone()],
                        output,
                    ),
                ]
            }
            other => return Err(format!("{v} ({}) is not a gather or scatter", other.mnemonic())),
        };
        for (name, op, inputs, (out, shape)) in kernels {
            calls.push(self.index_call(name, op, inputs, out, shape, step)?);
        }
        Ok(calls)
    }

    /// One window kernel call over whole buffers.
    fn index_call(
        &mut self,
        name: String,
        op: WindowOp,
        inputs: Vec<(Buf, Vec<usize>)>,
        output: Buf,
        shape: Vec<usize>,
        step: &plan::Step,
    ) -> Result<Call, String> {
        let (bufs, shapes): (Vec<Buf>, Vec<Vec<usize>>) = inputs.into_iter().unzip();
        let wk = WindowKernel { name, op, inputs: shapes, output: shape };
        let ranges = self.row_ranges(wk.rows(), &step.split);
        let id = self.jit.add_window_kernel(&wk, self.checking).map_err(|e| e.message)?;
        Ok(Call::Window { kernel: id, inputs: bufs, output, ranges })
    }
}
