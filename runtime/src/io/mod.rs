//! Tensor files: what the runtime reads and writes besides data sources.
//!
//! - [`tensor_file`]: parameter, gradient and checkpoint files in the
//!   safetensors format (what PyTorch users read with
//!   `safetensors.torch.load_file`), written atomically;
//! - [`npz`]: batches of data and targets from NumPy `.npz` archives,
//!   checked against the graph's declared inputs;
//! - [`constants`]: the values of `const` declarations (npy, npz, csv and
//!   shipped data sets) for the compiler, read by a [`FileLoader`] relative
//!   to the model file;
//! - [`Error`]: the error of every file-facing function, naming the file.

pub mod constants;
pub(crate) mod error;
pub mod npz;
pub mod tensor_file;

pub use constants::FileLoader;
pub use error::Error;
