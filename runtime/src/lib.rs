//! nnc-runtime: executes compiled models and runs training.
//!
//! The compiler crate does no I/O; this crate is where model state meets the
//! file system. So far it holds what `nnc init` and `nnc grad` need:
//!
//! - [`init`]: initial values of parameters and state, drawn from each
//!   tensor's [`nnc_compiler::ir::Init`] with a counter-based generator;
//! - [`tensor_file`]: parameter and gradient files in the safetensors format
//!   (what PyTorch users read with `safetensors.torch.load_file`), written
//!   atomically;
//! - [`npz`]: batches of data and targets from NumPy `.npz` archives, checked
//!   against the graph's declared inputs;
//! - [`feed`]: the remaining graph inputs (parameters, state, RNG key) from a
//!   parameter file and a seed.
//!
//! Every error that comes from a file is an [`Error`] naming the file.

pub mod feed;
pub mod gemm;
pub mod init;
pub mod npz;
pub mod pool;
pub mod tensor_file;

mod error;

pub use error::Error;
