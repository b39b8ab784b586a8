//! Code generation: Cranelift functions for kernels.
