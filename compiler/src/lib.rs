//! nnc-compiler: the `.nn` language from source text to IR.
//!
//! The pipeline, one module per stage: [`syntax`] (pest → AST with spans),
//! [`sema`] (names, blocks, arguments, shapes → forward IR), [`ir`] (graph,
//! printer, parser, verifier, reference interpreter), [`autodiff`] (the
//! backward pass as IR), [`update`] (gradient clipping and the optimiser
//! update as IR), [`opt`] (optimisation passes), [`fusion`] and [`plan`]
//! (kernels, schedule, memory and layouts) and [`codegen`] (Cranelift
//! kernels and the lowered program). [`pipeline`] drives them: every caller
//! compiles through it. [`config`] holds the typed training configuration
//! that sema produces from a `train` section and the runtime reads, and the
//! catalogue of the shipped data sets. The crate does no I/O: it takes
//! source text and returns values and [`diag::Diagnostic`]s.

pub mod autodiff;
pub mod codegen;
pub mod config;
pub mod diag;
pub mod fusion;
pub mod ir;
pub mod opt;
pub mod pipeline;
pub mod plan;
pub mod sema;
pub mod suggest;
pub mod syntax;
pub mod update;

pub use pipeline::{compile, compile_with, Compiled, Stage};
pub use sema::{LayerInfo, Module};
