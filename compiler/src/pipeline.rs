//! The compiler's one driver. Every caller — the `nnc` commands, `nnc
//! bench`, the trainer, the runtime's `Executable` and the tests — goes
//! from source text to any stage through these functions, so the stages run
//! in one order with one set of options everywhere:
//!
//! ```text
//! source ─ syntax::parse ─► ast ─ sema::analyze ─► forward graphs (Module)
//!        ─ autodiff ─► grad ─ update (clipping, optimiser) ─► train ─ opt ─► opt
//!        ─ plan (fusion, schedule, memory, layouts) ─► fused, plan
//!        ─ codegen::lower ─► Program (clif)
//! ```
//!
//! [`compile`] runs the front half once and returns a [`Compiled`]; the
//! later stages are computed on demand from it ([`Compiled::dump`] prints
//! any of them), and [`program`] runs the back half for one graph at one
//! batch size and thread count.

use std::collections::HashMap;

use crate::codegen::lower::{self, Program};
use crate::codegen::Checking;
use crate::config::Optimizer;
use crate::diag::Diagnostic;
use crate::ir::{self, Dim, Graph, Mode, OutputKind};
use crate::plan::{self, Plan};
use crate::{autodiff, fusion, opt, sema, syntax, update};

/// A printable stage of the compiler, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The syntax tree, as parsed.
    Ast,
    /// The forward IR graph.
    Forward,
    /// The training forward graph with its backward pass.
    Grad,
    /// The complete training step (forward, backward, optimiser update).
    Train,
    /// The training step after the optimisation passes.
    Opt,
    /// The optimised graph partitioned into kernels, with the fusion report.
    Fused,
    /// The schedule and memory plan of the kernels.
    Plan,
    /// The Cranelift IR of every generated kernel.
    Clif,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 8] = [
        Stage::Ast,
        Stage::Forward,
        Stage::Grad,
        Stage::Train,
        Stage::Opt,
        Stage::Fused,
        Stage::Plan,
        Stage::Clif,
    ];

    /// The stage's name on the command line (`nnc ir --stage NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ast => "ast",
            Stage::Forward => "forward",
            Stage::Grad => "grad",
            Stage::Train => "train",
            Stage::Opt => "opt",
            Stage::Fused => "fused",
            Stage::Plan => "plan",
            Stage::Clif => "clif",
        }
    }

    /// One line saying what the stage shows.
    pub fn about(self) -> &'static str {
        match self {
            Stage::Ast => "The syntax tree, as parsed",
            Stage::Forward => "The forward IR graph",
            Stage::Grad => "The training forward graph with its backward pass",
            Stage::Train => "The complete training step (forward, backward, optimiser update)",
            Stage::Opt => "The training step after the optimisation passes",
            Stage::Fused => "The optimised graph partitioned into kernels, with the fusion report",
            Stage::Plan => "The schedule and memory plan of the kernels",
            Stage::Clif => "The Cranelift IR of every generated kernel",
        }
    }

    /// The stage called `name`.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The stage prints a training or an inference graph as
    /// [`Options::mode`] says; the others have one graph.
    pub fn takes_mode(self) -> bool {
        matches!(self, Stage::Forward | Stage::Fused | Stage::Plan | Stage::Clif)
    }

    /// The stage depends on the batch size and thread count.
    pub fn takes_batch(self) -> bool {
        matches!(self, Stage::Plan | Stage::Clif)
    }
}

/// How the back-end stages are compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The training step or the inference graph (stages that
    /// [take a mode](Stage::takes_mode)).
    pub mode: Mode,
    /// The size bound to the batch dimension; `None`: the `train` section's
    /// batch, else 1.
    pub batch: Option<usize>,
    /// The threads kernels are split for.
    pub threads: usize,
    /// Generated kernels bounds-check every memory access.
    pub checking: Checking,
}

impl Default for Options {
    fn default() -> Options {
        Options { mode: Mode::Train, batch: None, threads: 1, checking: Checking::Unchecked }
    }
}

/// A checked program: its syntax tree and its module (the forward graphs
/// and the `train` configuration). Every later stage derives from it.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The source text (positions in the tree and the graphs index it).
    pub source: String,
    pub ast: syntax::ast::File,
    pub module: sema::Module,
}

/// The optimiser used when a model has no `train` section: `adam(lr: 1e-3)`.
pub const DEFAULT_OPTIMIZER: Optimizer =
    Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };

/// Parses `source`: the syntax tree and every syntax diagnostic, or the
/// diagnostics when one of them is an error.
pub fn parse(source: &str) -> Result<(syntax::ast::File, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (file, diagnostics) = syntax::parse(source);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok((file, diagnostics))
}

/// Parses and analyses `source`. Syntax errors stop before semantic analysis
/// (so that one typo does not cascade into unrelated errors).
pub fn compile(source: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let (ast, _) = parse(source)?;
    let module = sema::analyze(&ast, source)?;
    Ok(Compiled { source: source.to_string(), ast, module })
}

/// The training forward graph with its backward pass: outputs are the
/// forward outputs and `grad.NAME` for every parameter.
pub fn grad(module: &sema::Module) -> Result<autodiff::Backward, String> {
    autodiff::differentiate(&module.train_graph)
}

/// The complete training step as one graph: forward (training mode),
/// backward, gradient clipping and the optimiser update of the module's
/// `train` section. Inputs: data, targets, parameters, state (batchnorm
/// statistics and optimiser state), the RNG key and the learning rate `lr`.
/// Outputs: the loss, the predictions, and the new value of every parameter
/// and state input.
pub fn train_step(module: &sema::Module) -> Result<Graph, String> {
    let backward = grad(module)?;
    let mut graph = backward.graph;
    graph.outputs.retain(|o| o.kind != OutputKind::Other || !o.name.starts_with("grad."));
    let (optimizer, clip) = match &module.train {
        Some(t) => (t.optimizer, t.clip_grad_norm),
        None => (DEFAULT_OPTIMIZER, None),
    };
    update::append_update(&mut graph, &backward.grads, &optimizer, clip)?;
    let graph = sema::inputs_first(graph);
    ir::verify::verify(&graph).map_err(|e| format!("the training step does not verify: {}", e.join("; ")))?;
    Ok(graph)
}

/// The graph that runs in `mode`, optimised: the training step after
/// [`opt::optimize`], or the optimised inference graph.
pub fn optimized(module: &sema::Module, mode: Mode) -> Result<Graph, String> {
    match mode {
        Mode::Train => opt::optimize(&train_step(module)?),
        Mode::Infer => opt::optimize(&module.infer_graph),
    }
}

/// Every symbolic dimension of `graph` bound to `batch` (the language has
/// one symbolic dimension, the batch).
pub fn batch_dims(graph: &Graph, batch: usize) -> HashMap<String, usize> {
    let mut dims = HashMap::new();
    for node in &graph.nodes {
        for d in node.ty.shape.dims() {
            if let Dim::Sym(s) = d {
                dims.insert(s.clone(), batch);
            }
        }
    }
    dims
}

/// Partitions and plans `graph` for `batch` examples and `threads` threads.
pub fn plan(graph: &Graph, batch: usize, threads: usize) -> Result<Plan, String> {
    plan::plan(graph, &batch_dims(graph, batch), threads)
}

/// The back half for one graph: partition, plan and lowering to a
/// [`Program`] of generated kernels and library calls, for `batch`
/// examples and `threads` threads.
pub fn program(graph: &Graph, batch: usize, threads: usize, checking: Checking) -> Result<Program, String> {
    lower::lower(&plan(graph, batch, threads)?, checking).map_err(|e| e.to_string())
}

impl Compiled {
    /// The text of `stage`: the syntax tree, a graph in the IR text format,
    /// the fusion report, the plan or the Cranelift IR of the kernels.
    pub fn dump(&self, stage: Stage, options: &Options) -> Result<String, String> {
        let module = &self.module;
        let batch = options.batch.unwrap_or_else(|| module.train.as_ref().map_or(1, |t| t.batch));
        Ok(match stage {
            Stage::Ast => syntax::print_ast(&self.ast, &self.source),
            Stage::Forward => ir::print::print(match options.mode {
                Mode::Train => &module.train_graph,
                Mode::Infer => &module.infer_graph,
            }),
            Stage::Grad => ir::print::print(&grad(module)?.graph),
            Stage::Train => ir::print::print(&train_step(module)?),
            Stage::Opt => ir::print::print(&optimized(module, Mode::Train)?),
            Stage::Fused => {
                let graph = optimized(module, options.mode)?;
                fusion::report(&graph, &fusion::partition(&graph))
            }
            Stage::Plan => plan::print(&plan(&optimized(module, options.mode)?, batch, options.threads)?),
            Stage::Clif => {
                let graph = optimized(module, options.mode)?;
                lower::clif_listing(&program(&graph, batch, options.threads, options.checking)?)
            }
        })
    }
}
