//! nnc-runtime: executes compiled models and runs training.
