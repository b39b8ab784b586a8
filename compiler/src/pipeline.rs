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
//! batch size and thread count. A stage after semantic analysis fails with
//! an [`Error`]: diagnostics pointing at the source of the node concerned
//! when it has one, rendered like semantic errors.

use std::collections::HashMap;
use std::fmt;

use crate::codegen::lower::{self, Program};
use crate::codegen::Checking;
use crate::config::Optimizer;
use crate::diag::Diagnostic;
use crate::ir::{self, Dim, Graph, GraphError, Mode, OutputKind, StageError};
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

/// A failure of a stage after semantic analysis, as diagnostics. A failure
/// about a node that came from the source points at its span there, so it
/// renders with [`crate::diag::render`] like any semantic error; the others
/// are plain messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub diagnostics: Vec<Diagnostic>,
}

impl Error {
    /// A failure with no place in the source.
    pub fn plain(message: impl Into<String>) -> Error {
        Error { diagnostics: vec![Diagnostic::error(message)] }
    }

    /// The failure `errors` of a stage working on `graph`, as one diagnostic:
    /// the errors' text (after `context: ` when given), with a label at the
    /// source span of every node they name that has one (the first
    /// primary).
    pub fn from_stage(graph: &Graph, context: Option<&str>, errors: &[StageError]) -> Error {
        let text: Vec<String> = errors.iter().map(StageError::to_string).collect();
        let text = text.join("; ");
        let mut d = Diagnostic::error(match context {
            Some(context) => format!("{context}: {text}"),
            None => text,
        });
        for error in errors {
            let Some((span, label)) = error.clone().located(graph).source else { continue };
            d = if d.labels.is_empty() { d.primary(span, label) } else { d.secondary(span, label) };
        }
        Error { diagnostics: vec![d] }
    }
}

/// A failure of autodiff or of the optimisation passes: one diagnostic with
/// a label at the source of every node it names that has one.
impl From<GraphError> for Error {
    fn from(error: GraphError) -> Error {
        let mut d = Diagnostic::error(error.to_string());
        for (span, label) in error.errors.iter().filter_map(|e| e.source.clone()) {
            d = if d.labels.is_empty() { d.primary(span, label) } else { d.secondary(span, label) };
        }
        Error { diagnostics: vec![d] }
    }
}

/// The messages of the diagnostics, one after the other.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<&str> = self.diagnostics.iter().map(|d| d.message.as_str()).collect();
        f.write_str(&messages.join("; "))
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::plain(message)
    }
}

impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

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
pub fn grad(module: &sema::Module) -> Result<autodiff::Backward, Error> {
    Ok(autodiff::differentiate(&module.train_graph)?)
}

/// The complete training step as one graph: forward (training mode),
/// backward, gradient clipping and the optimiser update of the module's
/// `train` section. Inputs: data, targets, parameters, state (batchnorm
/// statistics and optimiser state), the RNG key and the learning rate `lr`.
/// Outputs: the loss, the predictions, and the new value of every parameter
/// and state input.
pub fn train_step(module: &sema::Module) -> Result<Graph, Error> {
    let backward = grad(module)?;
    let mut graph = backward.graph;
    graph.outputs.retain(|o| o.kind != OutputKind::Other || !o.name.starts_with("grad."));
    let (optimizer, clip) = match &module.train {
        Some(t) => (t.optimizer, t.clip_grad_norm),
        None => (DEFAULT_OPTIMIZER, None),
    };
    update::append_update(&mut graph, &backward.grads, &optimizer, clip)?;
    let graph = sema::inputs_first(graph);
    ir::verify::violations(&graph)
        .map_err(|e| Error::from_stage(&graph, Some("the training step does not verify"), &e))?;
    Ok(graph)
}

/// The graph that runs in `mode`, optimised: the training step after
/// [`opt::optimize`], or the optimised inference graph.
pub fn optimized(module: &sema::Module, mode: Mode) -> Result<Graph, Error> {
    Ok(match mode {
        Mode::Train => opt::optimize(&train_step(module)?)?,
        Mode::Infer => opt::optimize(&module.infer_graph)?,
    })
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

/// Verifies, partitions and plans `graph` for `batch` examples and
/// `threads` threads.
pub fn plan(graph: &Graph, batch: usize, threads: usize) -> Result<Plan, Error> {
    ir::verify::violations(graph)
        .map_err(|e| Error::from_stage(graph, Some("the graph to plan does not verify"), &e))?;
    plan::plan(graph, &batch_dims(graph, batch), threads).map_err(|e| Error::from_stage(graph, None, &[e]))
}

/// The back half for one graph: partition, plan and lowering to a
/// [`Program`] of generated kernels and library calls, for `batch`
/// examples and `threads` threads.
pub fn program(graph: &Graph, batch: usize, threads: usize, checking: Checking) -> Result<Program, Error> {
    let plan = plan(graph, batch, threads)?;
    lower::lower(&plan, checking).map_err(|e| {
        let mut d = Diagnostic::error(e.to_string());
        // A kernel's failure points at the source of the value it computes.
        let kernel = plan.partition.kernels.iter().find(|k| !e.kernel.is_empty() && k.name == e.kernel);
        if let Some(&v) = kernel.and_then(|k| k.outputs.first()) {
            let node = plan.graph.node(v);
            if let Some(span) = node.span {
                d = d.primary(
                    span,
                    format!("kernel `{}` computes {v} `{}` from here", e.kernel, node.op.mnemonic()),
                );
            }
        }
        Error { diagnostics: vec![d] }
    })
}

impl Compiled {
    /// The text of `stage`: the syntax tree, a graph in the IR text format,
    /// the fusion report, the plan or the Cranelift IR of the kernels.
    pub fn dump(&self, stage: Stage, options: &Options) -> Result<String, Error> {
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

#[cfg(test)]
mod tests {
    use super::{compile, optimized, plan};
    use crate::diag::render_plain;
    use crate::ir::Mode;

    const SOURCE: &str = "\
model m {
  input  x: f32[B, 4]
  target y: f32[B, 1]

  h = x |> dense(8) |> tanh
  out = h |> dense(1)

  loss = mse(out, y)
}
";

    /// A node that does not verify is reported at the source of the node:
    /// the rendered diagnostic has a caret under its `.nn` expression.
    #[test]
    fn a_node_that_does_not_verify_points_at_its_source() {
        let compiled = compile(SOURCE).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", SOURCE, &d)));
        let mut graph = compiled.module.infer_graph.clone();
        let tanh = graph.nodes.iter().position(|n| n.op.mnemonic() == "tanh").expect("a tanh node");
        assert!(graph.nodes[tanh].span.is_some(), "sema gives the node a span");
        // The `tanh` of the input `x: f32[B, 4]` instead of the dense layer's
        // `f32[B, 8]`.
        let (x, _) = graph.inputs().next().expect("the input x");
        graph.nodes[tanh].args = vec![x];
        let error = plan(&graph, 4, 1).expect_err("the corrupted graph does not verify");
        insta::assert_snapshot!(render_plain("m.nn", SOURCE, &error.diagnostics));
    }

    /// The optimisation passes report a node that does not verify at its
    /// source too, through the same diagnostics.
    #[test]
    fn the_passes_locate_a_node_that_does_not_verify() {
        let compiled = compile(SOURCE).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", SOURCE, &d)));
        let mut graph = compiled.module.infer_graph.clone();
        let tanh = graph.nodes.iter().position(|n| n.op.mnemonic() == "tanh").expect("a tanh node");
        let (x, _) = graph.inputs().next().expect("the input x");
        graph.nodes[tanh].args = vec![x];
        let error: super::Error =
            crate::opt::optimize(&graph).expect_err("the corrupted graph does not verify").into();
        let rendered = render_plain("m.nn", SOURCE, &error.diagnostics);
        assert!(rendered.starts_with("error: the graph to optimise does not verify: %"), "{rendered}");
        assert!(
            rendered.contains("5 │   h = x |> dense(8) |> tanh\n  │                        ^^^^ "),
            "{rendered}"
        );
    }

    /// The nodes of the backward pass and of the update have the spans of
    /// the nodes they come from, through the optimisation passes.
    #[test]
    fn derived_nodes_keep_the_source_span() {
        let compiled = compile(SOURCE).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", SOURCE, &d)));
        let graph = optimized(&compiled.module, Mode::Train).expect("the training step");
        let mut backward = 0;
        for node in &graph.nodes {
            if let Some(of) = node.grad_of {
                assert_eq!(node.span, graph.node(of).span, "{:?}", node.op);
                backward += 1;
            }
            assert_eq!(node.span.is_some(), !node.loc.is_none(), "{:?}", node.op);
        }
        assert!(backward > 0);
    }

    /// A failure about no node is a plain diagnostic.
    #[test]
    fn a_failure_without_a_node_is_plain() {
        let compiled = compile(SOURCE).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", SOURCE, &d)));
        let error = plan(&compiled.module.infer_graph, 4, 0).expect_err("zero threads");
        assert_eq!(error.to_string(), "the number of threads must be at least 1");
        assert!(error.diagnostics.iter().all(|d| d.labels.is_empty()));
        assert_eq!(
            render_plain("m.nn", SOURCE, &error.diagnostics),
            "error: the number of threads must be at least 1\n\n"
        );
    }
}
