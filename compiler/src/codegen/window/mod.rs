//! Window kernels: pooling, resizing, warping, their gradients and argmax,
//! compiled to one Cranelift function each with every shape, stride and
//! window parameter baked in.
//!
//! The function has the loop kernels' C signature
//! `fn(inputs: *const *const f32, outputs: *const *mut f32, start: usize, end: usize, lens: *const usize)`
//! with exactly one output, and computes the output's rows `start..end`
//! along its first axis (the batch axis `N` for every op but an argmax over
//! axis 0 of a rank-1 operand, whose output is a scalar: one row). Buffers
//! are contiguous row-major; i32 results (argmax) are stored as i32 bit
//! patterns in their 4-byte slots. `lens` holds the element count of every
//! input and then the output; only checked kernels read it.
//!
//! Semantics follow the reference interpreter (`ir::interp::window`,
//! `ir::interp::warp` and `reduce::argmax`): max pooling, resize,
//! resize_grad, the warp ops and argmax give the same bits as the
//! interpreter run in f32; average pooling too (taps are summed in the same
//! order); the pooling gradients may add overlapping contributions in
//! another order. Gather and the scatters (`ir::interp::index`) give the
//! interpreter's bits too: sums run in increasing index position.
//!
//! Code shape. The loops run over the channel planes of the rows, then over
//! the output positions of each spatial axis. For pooling, the output
//! positions of every axis are split at compile time into runs whose windows
//! have the same in-bounds tap range (the interior, and a few border
//! positions), and each combination of runs gets its own loop nest with the
//! taps unrolled at constant offsets from running pointers: no tap is ever
//! tested against the padding. When the innermost stride is 1, four
//! neighbouring outputs are computed at once in f32x4 lanes. Max uses the
//! `maxss`/`maxps` pattern with NaNs tracked in a separate mask; the
//! gradients zero their rows and then scatter-add. Resize computes each
//! axis's two neighbours and weights once per position of that axis with the
//! interpreter's f32 arithmetic. Warp loops over positions, then channels:
//! each position's taps (data-dependent, resolved into the grid by the
//! boundary rule) serve all its channels. Argmax runs along the axis for four
//! neighbouring lanes at once where the lanes are contiguous. Checked kernels
//! test every load and store against the buffer lengths in `lens` and call
//! the trap function on the first violation, then return.
//!
//! One module per kind of kernel, beside the shared emitter:
//! - `pool`: pooling and its gradients;
//! - `resize`: bilinear resizing and its adjoint;
//! - `argmax`: the index of the first maximum along an axis;
//! - `warp`: sampling along a flow field and its two adjoints (taps that
//!   depend on the data, computed once per position for all channels);
//! - `index`: gather and scatter along an axis by an index list, and the
//!   two passes that make `scatter_max_grad` (rows of positions or of
//!   outer blocks; every call scans the whole index list in order);
//! - `emitter`: what they share — base pointers, checked loads and
//!   stores, counted loops, loops over channel planes, zeroing of rows.
//!
//! This module validates a kernel's shapes against its op (`Geometry`)
//! and emits the function around the kind's loop nests.

mod argmax;
mod emitter;
mod index;
mod pool;
mod resize;
mod warp;

#[cfg(test)]
mod tests;

use cranelift_codegen::ir::{FuncRef, InstBuilder, Type};
use cranelift_frontend::FunctionBuilder;

use super::checks::{enter, Frame};
use crate::ir::op::{PoolKind, WarpAttrs, WindowAttrs};
use argmax::{emit_argmax, ArgMaxGeo};
use emitter::Gen;
use index::{emit_index, IndexGeo, IndexKind};
use pool::{emit_pool, emit_pool_grad, PoolGeo};
use resize::{emit_resize, ResizeGeo};
use warp::{emit_warp, WarpGeo, WarpKind};

/// What a window kernel computes.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowOp {
    /// `Op::Pool`: input `x: [N, C, *S]`.
    Pool(WindowAttrs),
    /// `Op::PoolGrad`: inputs `x: [N, C, *S]`, `dy: [N, C, *S']`.
    PoolGrad(WindowAttrs),
    /// `Op::Resize` (bilinear, half-pixel centres): input `[N, C, *S]`.
    Resize { size: Vec<usize> },
    /// `Op::ResizeGrad`: input `dy: [N, C, *S']`, output `[N, C, *size]`.
    ResizeGrad { size: Vec<usize> },
    /// `Op::ArgMax`: the index of the first maximum along `axis` (i32).
    ArgMax { axis: usize },
    /// `Op::Warp`: inputs `x: [N, C, H, W]`, `flow: [N, 2, H, W]`.
    Warp(WarpAttrs),
    /// `Op::WarpGradInput`: inputs `flow: [N, 2, H, W]`, `dy: [N, C, H, W]`.
    WarpGradInput(WarpAttrs),
    /// `Op::WarpGradFlow`: inputs `x`, `flow`, `dy`; output of `flow`'s shape.
    WarpGradFlow(WarpAttrs),
    /// `Op::Gather`: inputs `x`, `index: i32[E]`.
    Gather { axis: usize },
    /// `Op::ScatterSum`: inputs `x`, `index: i32[E]`.
    ScatterSum { axis: usize, size: usize },
    /// `Op::ScatterMax`: inputs `x`, `index: i32[E]`.
    ScatterMax { axis: usize, size: usize },
    /// The first pass of `Op::ScatterMaxGrad`: inputs `x`, `index` and
    /// `y = scatter_max(x, index)`; the i32 result holds, per element of
    /// `y`, the first `e` whose `x` equals it (NaN matching NaN), or -1.
    ScatterMaxFirst { axis: usize },
    /// The second pass of `Op::ScatterMaxGrad`: inputs `index`, the first
    /// pass's result and `dy`; `dy` sent to those first positions.
    ScatterMaxRoute { axis: usize },
}

/// A window kernel over contiguous buffers of known shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowKernel {
    /// The function's symbol name (unique within one [`super::Jit`]).
    pub name: String,
    pub op: WindowOp,
    /// The operands' shapes, in the IR op's argument order.
    pub inputs: Vec<Vec<usize>>,
    /// The result's shape.
    pub output: Vec<usize>,
}

impl WindowKernel {
    /// Element count of input `i`.
    pub fn input_len(&self, i: usize) -> usize {
        self.inputs.get(i).map_or(0, |s| s.iter().product())
    }

    /// Element count of the output.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// The number of rows the function's `start..end` range indexes: the
    /// output's first dimension (1 for a scalar output).
    pub fn rows(&self) -> usize {
        self.output.first().copied().unwrap_or(1)
    }
}

/// Row-major element strides of `shape`.
fn strides_of(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![0i64; shape.len()];
    let mut acc = 1i64;
    for a in (0..shape.len()).rev() {
        s[a] = acc;
        acc = acc.saturating_mul(shape[a] as i64);
    }
    s
}

/// Byte counts must fit the 32-bit immediate offsets of loads and stores.
fn check_size(what: &str, elements: usize) -> Result<(), String> {
    if elements.saturating_mul(4) > i32::MAX as usize {
        return Err(format!("{what} of {elements} elements is too large"));
    }
    Ok(())
}

/// `[N, C, *S]` operand shape check; returns S.
fn image_shape<'a>(what: &str, shape: &'a [usize], spatial: usize) -> Result<&'a [usize], String> {
    if shape.len() < 3 || shape.len() != spatial + 2 {
        return Err(format!("{what} {shape:?} is not [N, C, *spatial] with {spatial} spatial dimensions"));
    }
    Ok(&shape[2..])
}

/// A window kernel's geometry, validated against its op: what the
/// emitter of its kind needs.
enum Geometry {
    Pool {
        geo: PoolGeo,
        kind: PoolKind,
        padding: Vec<(usize, usize)>,
        grad: bool,
    },
    Resize(ResizeGeo),
    ArgMax(ArgMaxGeo),
    Warp(WarpGeo),
    Index(IndexGeo),
    /// The output has no elements: nothing to compute.
    Empty,
}

/// Checks the kernel's operand and result shapes against its op.
fn geometry(k: &WindowKernel) -> Result<Geometry, String> {
    let want_inputs = match k.op {
        WindowOp::PoolGrad { .. } | WindowOp::Warp(_) | WindowOp::WarpGradInput(_) => 2,
        WindowOp::WarpGradFlow(_) => 3,
        WindowOp::Gather { .. } | WindowOp::ScatterSum { .. } | WindowOp::ScatterMax { .. } => 2,
        WindowOp::ScatterMaxFirst { .. } | WindowOp::ScatterMaxRoute { .. } => 3,
        _ => 1,
    };
    if k.inputs.len() != want_inputs {
        return Err(format!("takes {want_inputs} input(s), the kernel lists {}", k.inputs.len()));
    }
    for (i, s) in k.inputs.iter().chain([&k.output]).enumerate() {
        let len = s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if len.is_none_or(|l| l > isize::MAX as usize / 4) {
            let what = if i < k.inputs.len() { format!("input {i}") } else { "the output".into() };
            return Err(format!("{what} of shape {s:?} is too large"));
        }
    }
    let expect = |want: &[usize]| -> Result<(), String> {
        if k.output != want {
            return Err(format!("output shape {:?} should be {want:?}", k.output));
        }
        Ok(())
    };
    let geometry = match &k.op {
        WindowOp::Pool(WindowAttrs { kind, window, stride, padding })
        | WindowOp::PoolGrad(WindowAttrs { kind, window, stride, padding }) => {
            let geo = PoolGeo::new(k, window, stride, padding)?;
            let grad = matches!(k.op, WindowOp::PoolGrad { .. });
            if grad {
                if k.inputs[1] != geo.out_shape(k) {
                    return Err(format!(
                        "output gradient {:?} does not match the pooling of {:?}",
                        k.inputs[1], k.inputs[0]
                    ));
                }
                expect(&k.inputs[0])?;
            } else {
                expect(&geo.out_shape(k))?;
            }
            Geometry::Pool { geo, kind: *kind, padding: padding.clone(), grad }
        }
        WindowOp::Resize { size } | WindowOp::ResizeGrad { size } => {
            let grad = matches!(k.op, WindowOp::ResizeGrad { .. });
            let x = &k.inputs[0];
            let xs = image_shape("input", x, size.len())?;
            let mut out = x[..2].to_vec();
            out.extend_from_slice(size);
            expect(&out)?;
            let (from, to) = if grad { (size.clone(), xs.to_vec()) } else { (xs.to_vec(), size.clone()) };
            check_size("an input plane", from.iter().product())?;
            check_size("an output plane", to.iter().product())?;
            if to.iter().product::<usize>() > 0 && from.contains(&0) {
                return Err(format!("cannot resample the empty spatial size {from:?}"));
            }
            Geometry::Resize(ResizeGeo { from, to, channels: x[1], grad })
        }
        WindowOp::ArgMax { axis } => {
            let x = &k.inputs[0];
            if *axis >= x.len() {
                return Err(format!("axis {axis} is out of range for rank {}", x.len()));
            }
            let mut out = x.clone();
            let n = out.remove(*axis);
            expect(&out)?;
            let inner: usize = x[axis + 1..].iter().product();
            let outer: usize = x[..*axis].iter().product();
            if n == 0 && inner * outer > 0 {
                return Err(format!("argmax along the empty axis {axis} of {x:?}"));
            }
            if i32::try_from(n).is_err() {
                return Err(format!("argmax along an axis of {n} elements: indices exceed i32"));
            }
            let rows = k.rows();
            let per_row = k.output_len().checked_div(rows).unwrap_or(0);
            let outer_per_row = if *axis > 0 { outer.checked_div(x[0]).unwrap_or(0) } else { 0 };
            Geometry::ArgMax(ArgMaxGeo { n, inner, outer_per_row, per_row })
        }
        WindowOp::Warp(attrs) => Geometry::Warp(WarpGeo::new(k, WarpKind::Sample, *attrs)?),
        WindowOp::WarpGradInput(attrs) => Geometry::Warp(WarpGeo::new(k, WarpKind::GradInput, *attrs)?),
        WindowOp::WarpGradFlow(attrs) => Geometry::Warp(WarpGeo::new(k, WarpKind::GradFlow, *attrs)?),
        WindowOp::Gather { axis } => Geometry::Index(IndexGeo::new(k, IndexKind::Gather, *axis)?),
        WindowOp::ScatterSum { axis, size } | WindowOp::ScatterMax { axis, size } => {
            let kind = if matches!(k.op, WindowOp::ScatterSum { .. }) {
                IndexKind::ScatterSum
            } else {
                IndexKind::ScatterMax
            };
            let geo = IndexGeo::new(k, kind, *axis)?;
            if k.output.get(*axis) != Some(size) {
                return Err(format!(
                    "output shape {:?} should have {size} positions on axis {axis}",
                    k.output
                ));
            }
            Geometry::Index(geo)
        }
        WindowOp::ScatterMaxFirst { axis } => Geometry::Index(IndexGeo::new(k, IndexKind::MaxFirst, *axis)?),
        WindowOp::ScatterMaxRoute { axis } => Geometry::Index(IndexGeo::new(k, IndexKind::MaxRoute, *axis)?),
    };
    if k.output_len() == 0 {
        return Ok(Geometry::Empty);
    }
    Ok(geometry)
}

/// Emits the body of `kernel` into `b` (whose function has the five-pointer
/// signature and no blocks yet). `trap` is the trap function and kernel
/// index for checked kernels.
pub(crate) fn emit(
    kernel: &WindowKernel,
    b: &mut FunctionBuilder,
    ptr: Type,
    trap: Option<(FuncRef, u32)>,
) -> Result<(), String> {
    let geometry = geometry(kernel)?;
    let n_inputs = kernel.inputs.len();
    let Frame { start, end, exit, bases, checks } = enter(b, ptr, n_inputs, 1, trap);
    let g = Gen { ptr, n_inputs, bases, checks, exit };
    let se = (start, end);
    match &geometry {
        Geometry::Pool { geo, kind, padding, grad: false } => emit_pool(&g, b, geo, *kind, padding, se),
        Geometry::Pool { geo, kind, padding, grad: true } => emit_pool_grad(&g, b, geo, *kind, padding, se),
        Geometry::Resize(geo) => emit_resize(&g, b, geo, se),
        Geometry::ArgMax(geo) => emit_argmax(&g, b, geo, se),
        Geometry::Warp(geo) => emit_warp(&g, b, geo, se),
        Geometry::Index(geo) => emit_index(&g, b, geo, se),
        Geometry::Empty => {}
    }
    b.ins().jump(exit, &[]);
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    Ok(())
}
