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
//! - [`arena`]: the one aligned buffer that holds a plan's intermediate
//!   tensors, with bounds-checked `f32` regions and a base pointer for
//!   generated kernels;
//! - [`pool`]: the persistent thread pool that runs kernels split by index
//!   range, with a deterministic split and an ordered reduction;
//! - [`feed`]: the remaining graph inputs (parameters, state, RNG key) from a
//!   parameter file and a seed;
//! - [`gemm`]: matrix products behind the [`gemm::GemmProvider`] trait (a tuned
//!   library and a reference loop);
//! - [`conv`]: N-d convolutions and their gradients as im2col + GEMM;
//! - [`exec`]: the [`exec::Executable`] that runs a compiled graph's kernels
//!   on the thread pool;
//! - [`metrics`]: validation metrics (rmse, accuracy, CSI, Dice, …) accumulated batch by batch;
//! - [`train`]: the training loop (split, shuffle, normalisation, schedules,
//!   early stopping, atomic checkpoints and exact resumption), `eval` and
//!   `predict`;
//! - [`data`]: training examples from a `train` section's `data` source
//!   (synthetic generators, shipped data sets, CSV, npy and npz files).
//!
//! Every error that comes from a file is an [`Error`] naming the file.

pub mod arena;
pub mod conv;
mod conv_call;
pub mod data;
pub mod exec;
pub mod feed;
pub mod gemm;
pub mod init;
pub mod metrics;
pub mod npz;
pub mod pool;
pub mod tensor_file;
pub mod train;

mod error;

pub use error::Error;
