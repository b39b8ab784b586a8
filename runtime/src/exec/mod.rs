//! Running a compiled program: the [`Executable`] and what it runs on.
//!
//! - `executable`: the [`Executable`] (a lowered program, its storage and
//!   its safety model), run step after step;
//! - [`arena`]: the one aligned buffer of a plan's intermediate tensors;
//! - [`pool`]: the persistent thread pool that runs kernels split by index
//!   range, with a deterministic split and an ordered reduction;
//! - [`gemm`]: matrix products behind the [`gemm::GemmProvider`] trait (a
//!   tuned library and a reference loop);
//! - [`conv`]: N-d convolutions and their gradients as im2col + GEMM, and
//!   `conv_call`, which runs a program's convolution call on the pool;
//! - [`packed`]: single-threaded products against a right operand packed
//!   once and reused (the weights of a recurrence's steps);
//! - [`recurrent`]: the whole recurrence of an LSTM layer, forward and
//!   backward, with the batch rows split among pool tasks;
//! - [`winograd`]: 3×3 convolutions and their gradients by Winograd
//!   F(2×2, 3×3);
//! - `simd`: the vector type the packed and small products are written
//!   over, for scalars, AVX2 and AVX-512;
//! - [`feed`]: the model-state inputs (parameters, state, RNG key) from a
//!   parameter file and a seed.

pub mod arena;
pub mod conv;
mod conv_call;
mod executable;
pub mod feed;
pub mod gemm;
mod isa;
pub mod memory;
pub mod packed;
pub mod pool;
pub mod recurrent;
mod simd;
pub mod softmax;
pub mod standardize;
pub mod winograd;

pub use executable::{Executable, Gemm, Options, StepTime};
