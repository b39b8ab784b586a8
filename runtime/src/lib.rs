//! nnc-runtime: executes compiled models and trains them.
//!
//! The compiler crate does no I/O; this crate is where model state meets the
//! file system. Its modules follow what they are for:
//!
//! - [`exec`]: running a compiled program — the [`exec::Executable`], the
//!   arena of its intermediate tensors, the persistent thread pool, matrix
//!   products behind [`exec::gemm::GemmProvider`], N-d convolutions as
//!   im2col + GEMM, and the graph inputs fed from a parameter file and a
//!   seed ([`exec::feed`]);
//! - [`io`]: tensor files — parameters, gradients and checkpoints in the
//!   safetensors format ([`io::tensor_file`], written atomically), batches
//!   from NumPy `.npz` archives ([`io::npz`]), the values of `const`
//!   declarations read when a model is compiled ([`FileLoader`]), and the
//!   [`Error`] that names the file;
//! - [`data`]: training examples from a `train` section's `data` source
//!   (synthetic generators, shipped data sets, CSV, npy and npz files);
//! - [`train`]: training and what it needs — the loop, `eval` and `predict`,
//!   checkpoints with exact resumption, the split, normalisation, learning
//!   rate schedules, validation metrics ([`train::metrics`]) and the initial
//!   values of parameters and state ([`train::init`]).
//!
//! Every error that comes from a file is an [`Error`] naming the file.

pub mod data;
pub mod exec;
pub mod io;
pub mod train;

pub use io::{Error, FileLoader};
