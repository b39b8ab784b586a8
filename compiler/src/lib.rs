//! nnc-compiler: the `.nn` language from source text to IR.
//!
//! The pipeline, one module per stage: [`syntax`] (pest → AST with spans),
//! [`sema`] (names, blocks, arguments, shapes → forward IR), [`ir`] (graph,
//! printer, parser, verifier, reference interpreter). The crate does no I/O:
//! it takes source text and returns values and [`diag::Diagnostic`]s.

pub mod diag;
pub mod ir;
pub mod sema;
pub mod syntax;

use diag::Diagnostic;

/// Parses and analyses `source`. Syntax errors stop before semantic analysis
/// (so that one typo does not cascade into unrelated errors).
pub fn compile(source: &str) -> Result<sema::Module, Vec<Diagnostic>> {
    let (file, errors) = syntax::parse(source);
    if errors.iter().any(Diagnostic::is_error) {
        return Err(errors);
    }
    sema::analyze(&file, source)
}
