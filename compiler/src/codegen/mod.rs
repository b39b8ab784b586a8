//! Code generation: Cranelift functions for kernels.
//!
//! - [`loops`]: elementwise loop kernels (fused expressions over strided
//!   buffers) and their generator.
//! - [`approx`]: inline f32/f32x4 approximations of exp, log, tanh,
//!   sigmoid, erf, softplus, sin and cos, with documented error bounds.
//! - [`wide`]: exp, sigmoid, tanh and erf over arrays, compiled by rustc for
//!   the host's widest vectors, the same bits as [`approx`]; the strips of
//!   loop kernels heavy in them call these.
//! - [`window`]: pooling, resizing, their gradients, argmax, and gather and
//!   scatter by an index list.
//! - [`lower`]: a planned partition turned into the calls a runtime makes.
//! - [`jit`]: the JIT module that owns the machine code of a model's
//!   kernels and hands out typed function pointers.

pub mod approx;
mod checks;
pub mod jit;
pub mod loops;
pub mod lower;
pub mod wide;
pub mod window;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

pub use jit::{take_trap, Checking, Jit, KernelId, KernelTrap, LoopFn, LoopFnPtr, WindowFn};
pub use loops::{Elem, Expr, LoopKernel, Operand, Reduce, Store};
pub use window::{WindowKernel, WindowOp};

/// A kernel that could not be compiled (an inconsistent kernel description
/// or a Cranelift error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError {
    /// The kernel's name (empty for module-wide errors).
    pub kernel: String,
    pub message: String,
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kernel.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "kernel `{}`: {}", self.kernel, self.message)
        }
    }
}

impl std::error::Error for CodegenError {}
