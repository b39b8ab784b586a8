//! nnc-compiler: the `.nn` language from source text to IR.
//!
//! The pipeline, one module per stage: [`syntax`] (pest → AST with spans),
//! [`sema`] (names, blocks, arguments, shapes → forward IR), [`ir`] (graph,
//! printer, parser, verifier, reference interpreter), [`autodiff`] (the
//! backward pass as IR), [`optim`] (optimiser updates as IR) and [`opt`]
//! (optimisation passes). The crate does no I/O: it takes source text and
//! returns values and [`diag::Diagnostic`]s.

pub mod autodiff;
pub mod codegen;
pub mod diag;
pub mod fusion;
pub mod ir;
pub mod opt;
pub mod optim;
pub mod plan;
pub mod sema;
pub mod syntax;

use diag::Diagnostic;
use ir::{Graph, OutputKind};
use sema::train::Optimizer;

/// Parses and analyses `source`. Syntax errors stop before semantic analysis
/// (so that one typo does not cascade into unrelated errors).
pub fn compile(source: &str) -> Result<sema::Module, Vec<Diagnostic>> {
    let (file, errors) = syntax::parse(source);
    if errors.iter().any(Diagnostic::is_error) {
        return Err(errors);
    }
    sema::analyze(&file, source)
}

/// The optimiser used when a model has no `train` section: `adam(lr: 1e-3)`.
pub const DEFAULT_OPTIMIZER: Optimizer =
    Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };

/// The training forward graph with its backward pass: outputs are the
/// forward outputs and `grad.NAME` for every parameter.
pub fn grad_graph(module: &sema::Module) -> Result<autodiff::Backward, String> {
    autodiff::differentiate(&module.train_graph)
}

/// The complete training step as one graph: forward (training mode),
/// backward, gradient clipping and the optimiser update of the module's
/// `train` section. Inputs: data, targets, parameters, state (batchnorm
/// statistics and optimiser state), the RNG key and the learning rate `lr`.
/// Outputs: the loss, the predictions, and the new value of every parameter
/// and state input.
pub fn train_step(module: &sema::Module) -> Result<Graph, String> {
    let backward = grad_graph(module)?;
    let mut graph = backward.graph;
    graph.outputs.retain(|o| o.kind != OutputKind::Other || !o.name.starts_with("grad."));
    let (optimizer, clip) = match &module.train {
        Some(t) => (t.optimizer, t.clip_grad_norm),
        None => (DEFAULT_OPTIMIZER, None),
    };
    optim::append_update(&mut graph, &backward.grads, &optimizer, clip)?;
    let graph = sema::inputs_first(graph);
    ir::verify::verify(&graph).map_err(|e| format!("the training step does not verify: {}", e.join("; ")))?;
    Ok(graph)
}

/// [`train_step`] after the optimisation passes of [`opt::optimize`].
pub fn optimized_train_step(module: &sema::Module) -> Result<Graph, String> {
    opt::optimize(&train_step(module)?)
}
