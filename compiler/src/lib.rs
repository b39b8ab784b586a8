//! nnc-compiler: the `.nn` language from source text to IR.
//!
//! The pipeline, one module per stage: [`syntax`] (pest → AST with spans),
//! [`sema`] (names, blocks, arguments, shapes → forward IR), [`ir`] (graph,
//! printer, parser, verifier, reference interpreter), [`autodiff`] (the
//! backward pass as IR), [`optim`] (optimiser updates as IR), [`opt`]
//! (optimisation passes), [`fusion`] and [`plan`] (kernels, schedule,
//! memory and layouts) and [`codegen`] (Cranelift kernels and the lowered
//! program). [`pipeline`] drives them: every caller compiles through it.
//! The crate does no I/O: it takes source text and returns values and
//! [`diag::Diagnostic`]s.

pub mod autodiff;
pub mod codegen;
pub mod diag;
pub mod fusion;
pub mod ir;
pub mod opt;
pub mod optim;
pub mod pipeline;
pub mod plan;
pub mod sema;
pub mod syntax;

pub use pipeline::{compile, Compiled, Stage};
