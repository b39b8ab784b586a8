//! Window kernels: pooling, resizing, their gradients and argmax, compiled
//! to one Cranelift function each with every shape, stride and window
//! parameter baked in.
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
//! Semantics follow the reference interpreter (`ir::interp::window` and
//! `reduce::argmax`) exactly.

use cranelift_codegen::ir::{FuncRef, Type};
use cranelift_frontend::FunctionBuilder;

use crate::ir::op::PoolKind;

/// What a window kernel computes.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowOp {
    /// `Op::Pool`: input `x: [N, C, *S]`.
    Pool { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// `Op::PoolGrad`: inputs `x: [N, C, *S]`, `dy: [N, C, *S']`.
    PoolGrad { kind: PoolKind, window: Vec<usize>, stride: Vec<usize>, padding: Vec<(usize, usize)> },
    /// `Op::Resize` (bilinear, half-pixel centres): input `[N, C, *S]`.
    Resize { size: Vec<usize> },
    /// `Op::ResizeGrad`: input `dy: [N, C, *S']`, output `[N, C, *size]`.
    ResizeGrad { size: Vec<usize> },
    /// `Op::ArgMax`: the index of the first maximum along `axis` (i32).
    ArgMax { axis: usize },
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

/// Emits the body of `kernel` into `b` (whose function has the five-pointer
/// signature). `trap` is the trap function and kernel index for checked
/// kernels.
pub(crate) fn emit(
    kernel: &WindowKernel,
    b: &mut FunctionBuilder,
    ptr: Type,
    trap: Option<(FuncRef, u32)>,
) -> Result<(), String> {
    let _ = (b, ptr, trap);
    Err(format!("window kernel `{}`: code generation is not available", kernel.name))
}
