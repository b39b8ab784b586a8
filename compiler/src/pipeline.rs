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
//! batch size and thread count. A model with several losses trains with one
//! step per optimiser ([`train_steps`]); the training stages then print
//! every step after a header. A stage after semantic analysis fails with
//! an [`Error`]: diagnostics pointing at the source of the node concerned
//! when it has one, rendered like semantic errors.
//!
//! The `_timed` variants ([`compile_timed`], [`optimized_timed`],
//! [`program_timed`]) also record the wall-clock time of every stage they
//! run in a [`Timings`]; `nnc bench --profile` prints them.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::codegen::lower::{self, Program};
use crate::codegen::Checking;
use crate::config::{LossOptimizer, Optimizer, ParamSet, DEFAULT_LOSS};
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
    /// The warnings of parsing and analysis (unused values, a warm-up as
    /// long as the run, ...).
    pub warnings: Vec<Diagnostic>,
}

/// The optimiser used when a model has no `train` section: `adam(lr: 1e-3)`.
pub const DEFAULT_OPTIMIZER: Optimizer = Optimizer::DEFAULT;

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

/// The wall-clock time of each stage of a compilation, in the order the
/// stages first ran; a stage that runs again (for another training step)
/// adds to its time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    pub stages: Vec<(&'static str, Duration)>,
}

impl Timings {
    /// Runs `f` as (part of) stage `stage`.
    pub fn time<T>(&mut self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        self.add(stage, start.elapsed());
        result
    }

    /// Adds `time` to stage `stage`.
    pub fn add(&mut self, stage: &'static str, time: Duration) {
        match self.stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, t)) => *t += time,
            None => self.stages.push((stage, time)),
        }
    }

    /// The time of every stage together.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|(_, t)| *t).sum()
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

/// Parses and analyses `source`, a program that reads no constant from a
/// file (see [`compile_with`]). Syntax errors stop before semantic analysis
/// (so that one typo does not cascade into unrelated errors).
pub fn compile(source: &str) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(source, &sema::NoFiles)
}

/// Parses and analyses `source`, reading the values of its `const`
/// declarations through `loader`.
pub fn compile_with(source: &str, loader: &dyn sema::Loader) -> Result<Compiled, Vec<Diagnostic>> {
    compile_timed(source, loader, &mut Timings::default())
}

/// [`compile_with`], recording the time of `parse` and `sema`.
pub fn compile_timed(
    source: &str,
    loader: &dyn sema::Loader,
    timings: &mut Timings,
) -> Result<Compiled, Vec<Diagnostic>> {
    let (ast, mut warnings) = timings.time("parse", || parse(source))?;
    let (module, diags) = timings.time("sema", || sema::analyze_all_with(&ast, source, loader));
    let Some(module) = module else { return Err(diags) };
    warnings.extend(diags);
    Ok(Compiled { source: source.to_string(), ast, module, warnings })
}

/// One optimiser's step of a training iteration. A model with one loss has
/// one step; a model with several (`loss NAME = ...`) has one per
/// optimiser of its `train` section, run on every batch in the order
/// written, each seeing the parameters and state the one before it wrote.
#[derive(Clone, Debug)]
pub struct Step {
    /// The loss the step minimises, which names it (`loss` for a model with
    /// one loss).
    pub loss: String,
    /// What the optimiser updates, as written after `params:`.
    pub params: ParamSet,
    /// The step's graph (see [`train_steps`]), or its gradient graph (see
    /// [`gradients`]).
    pub graph: Graph,
}

impl Step {
    /// The line that introduces the step in a listing of several:
    /// `# step 1 of 2: optimizer `disc` (loss `disc`, params: D)`.
    pub fn header(&self, index: usize, count: usize) -> String {
        format!(
            "# step {} of {count}: optimizer `{}` (loss `{}`, params: {})",
            index + 1,
            self.loss,
            self.loss,
            self.params
        )
    }
}

/// The optimisers of `module`'s training iteration, in the order their
/// steps run: the `train` section's, or without one [`DEFAULT_OPTIMIZER`]
/// for every loss.
pub fn optimizers(module: &sema::Module) -> Vec<LossOptimizer> {
    match &module.train {
        Some(t) => t.optimizers.clone(),
        None => module
            .train_graph
            .outputs
            .iter()
            .filter(|o| o.kind == OutputKind::Loss)
            .map(|o| LossOptimizer {
                loss: o.name.clone(),
                named: o.name != DEFAULT_LOSS,
                ..LossOptimizer::default_for_loss()
            })
            .collect(),
    }
}

/// The gradient graph of every step: the training forward graph with the
/// backward pass of the step's loss with respect to the parameters its
/// optimiser updates; outputs are the forward outputs and `grad.NAME` for
/// each of those parameters.
pub fn gradients(module: &sema::Module) -> Result<Vec<Step>, Error> {
    let optimizers = optimizers(module);
    let mut steps = vec![];
    for o in &optimizers {
        let backward = step_gradient(module, o)?;
        steps.push(Step { loss: o.loss.clone(), params: o.params.clone(), graph: backward.graph });
    }
    Ok(steps)
}

/// The backward pass of the step of optimiser `o`.
fn step_gradient(module: &sema::Module, o: &LossOptimizer) -> Result<autodiff::Backward, Error> {
    Ok(autodiff::differentiate_loss(&module.train_graph, &o.loss, &|name| o.updates(name))?)
}

/// The training forward graph with its backward pass, for a model with one
/// loss: outputs are the forward outputs and `grad.NAME` for every
/// parameter. A model with several losses has one per step
/// ([`gradients`]).
pub fn grad(module: &sema::Module) -> Result<autodiff::Backward, Error> {
    let [o] = only_step(module)?;
    step_gradient(module, &o)
}

/// The training steps of `module`, in the order they run on each batch.
/// Each step is one graph: forward (training mode), the backward pass of
/// its loss with respect to the parameters its optimiser updates, gradient
/// clipping and that optimiser's update. Inputs: data, targets, constants,
/// every parameter, state (batchnorm statistics and the optimiser's
/// state), the RNG key and the learning rate `lr`. Outputs: the step's loss,
/// the predictions, and the new value of every parameter it updates and of
/// every state input.
///
/// The optimiser state of a model with one loss is named as in PyTorch
/// (`optim.PARAM.SLOT`, `optim.step`); with several, each optimiser's state
/// is prefixed by its loss (`optim.NAME.PARAM.SLOT`), so that optimisers of
/// overlapping parameters keep their own state.
pub fn train_steps(module: &sema::Module) -> Result<Vec<Step>, Error> {
    train_steps_timed(module, &mut Timings::default())
}

/// [`train_steps`], recording the time of `autodiff` and `update` (the
/// update, clipping and verification of the step).
fn train_steps_timed(module: &sema::Module, timings: &mut Timings) -> Result<Vec<Step>, Error> {
    let optimizers = optimizers(module);
    let several = optimizers.len() > 1;
    let clip = module.train.as_ref().and_then(|t| t.clip_grad_norm);
    let mut steps = vec![];
    for o in &optimizers {
        let backward = timings.time("autodiff", || step_gradient(module, o))?;
        let start = Instant::now();
        let mut graph = backward.graph;
        // The step reports its own loss only: the others' nodes are dead
        // code, which the optimisation passes remove.
        graph.outputs.retain(|out| match out.kind {
            OutputKind::Other => !out.name.starts_with("grad."),
            OutputKind::Loss => out.name == o.loss,
            _ => true,
        });
        let prefix = if several { update::Prefix::of_loss(&o.loss) } else { update::Prefix::ONLY };
        update::append_update(&mut graph, &backward.grads, &o.optimizer, clip, &prefix).map_err(|e| {
            Error::plain(if several { format!("the optimizer of the loss `{}`: {e}", o.loss) } else { e })
        })?;
        let graph = sema::inputs_first(graph);
        ir::verify::violations(&graph)
            .map_err(|e| Error::from_stage(&graph, Some("the training step does not verify"), &e))?;
        timings.add("update", start.elapsed());
        steps.push(Step { loss: o.loss.clone(), params: o.params.clone(), graph });
    }
    Ok(steps)
}

/// One training step split at its gradients, for data-parallel training:
/// every process runs [`SplitStep::gradient`] on its share of the batch,
/// the processes sum the gradients, and each runs [`SplitStep::update`] on
/// the sum, so the parameters stay identical everywhere.
#[derive(Clone, Debug)]
pub struct SplitStep {
    /// The loss the step minimises.
    pub loss: String,
    /// The forward and backward pass of the loss: the inputs of the
    /// training step but the optimiser's state and `lr`; outputs the loss,
    /// the predictions, the new model state (batchnorm statistics) and
    /// `grad.NAME` for every parameter the optimiser updates.
    pub gradient: Graph,
    /// Gradient clipping and the optimiser's update: inputs every updated
    /// parameter, its gradient as the data input `grad.NAME`, the
    /// optimiser's state and `lr`; outputs the new parameters and state.
    pub update: Graph,
    /// The updated parameters, in the order of their gradients.
    pub params: Vec<String>,
}

/// The training steps of `module` split at their gradients (see
/// [`SplitStep`]), both graphs optimised. The optimiser state is named as
/// in [`train_steps`], so checkpoints of split and whole steps agree.
pub fn split_steps(module: &sema::Module) -> Result<Vec<SplitStep>, Error> {
    let optimizers = optimizers(module);
    let several = optimizers.len() > 1;
    let clip = module.train.as_ref().and_then(|t| t.clip_grad_norm);
    let mut steps = vec![];
    for o in &optimizers {
        let backward = step_gradient(module, o)?;
        let mut gradient = backward.graph;
        let params: Vec<String> = backward.grads.iter().map(|g| g.name.clone()).collect();
        let grad_names: Vec<String> = params.iter().map(|p| format!("grad.{p}")).collect();
        gradient.outputs.retain(|out| match out.kind {
            OutputKind::Other if out.name.starts_with("grad.") => grad_names.contains(&out.name),
            OutputKind::Loss => out.name == o.loss,
            _ => true,
        });
        let mut update = Graph::new(format!("{}.update", gradient.name), gradient.mode);
        let mut grads = vec![];
        for pg in &backward.grads {
            let node = gradient.node(pg.param);
            let (ir::Op::Input { kind, .. }, ty, loc) = (&node.op, node.ty.clone(), node.loc) else {
                return Err(Error::plain(format!("parameter `{}` is not an input", pg.name)));
            };
            let param = update.input(&pg.name, kind.clone(), ty.clone(), loc);
            let grad = update.input(format!("grad.{}", pg.name), ir::InputKind::Data, ty, loc);
            grads.push(autodiff::ParamGrad { name: pg.name.clone(), param, grad });
        }
        let prefix = if several { update::Prefix::of_loss(&o.loss) } else { update::Prefix::ONLY };
        update::append_update(&mut update, &grads, &o.optimizer, clip, &prefix).map_err(|e| {
            Error::plain(if several { format!("the optimizer of the loss `{}`: {e}", o.loss) } else { e })
        })?;
        for graph in [&mut gradient, &mut update] {
            *graph =
                opt::optimize(&sema::inputs_first(std::mem::replace(graph, Graph::new("", Mode::Train))))?;
            ir::verify::violations(graph)
                .map_err(|e| Error::from_stage(graph, Some("the split training step does not verify"), &e))?;
        }
        steps.push(SplitStep { loss: o.loss.clone(), gradient, update, params });
    }
    Ok(steps)
}

/// The complete training step as one graph, for a model with one loss (see
/// [`train_steps`]).
pub fn train_step(module: &sema::Module) -> Result<Graph, Error> {
    only_step(module)?;
    let mut steps = train_steps(module)?;
    Ok(steps.remove(0).graph)
}

/// The training steps after [`opt::optimize`].
pub fn optimized_steps(module: &sema::Module) -> Result<Vec<Step>, Error> {
    let mut steps = train_steps(module)?;
    for step in &mut steps {
        step.graph = opt::optimize(&step.graph)?;
    }
    Ok(steps)
}

/// The graph that runs in `mode`, optimised: the training step after
/// [`opt::optimize`] (of a model with one loss; see [`optimized_steps`]),
/// or the optimised inference graph.
pub fn optimized(module: &sema::Module, mode: Mode) -> Result<Graph, Error> {
    optimized_timed(module, mode, &mut Timings::default())
}

/// [`optimized`], recording the time of `autodiff`, `update` and `opt`.
pub fn optimized_timed(module: &sema::Module, mode: Mode, timings: &mut Timings) -> Result<Graph, Error> {
    let graph = match mode {
        Mode::Train => {
            only_step(module)?;
            train_steps_timed(module, timings)?.remove(0).graph
        }
        Mode::Infer => module.infer_graph.clone(),
    };
    Ok(timings.time("opt", || opt::optimize(&graph))?)
}

/// The optimiser of a model with one step; an error naming the steps of a
/// model with several.
fn only_step(module: &sema::Module) -> Result<[LossOptimizer; 1], Error> {
    let optimizers = optimizers(module);
    let count = optimizers.len();
    <[LossOptimizer; 1]>::try_from(optimizers).map_err(|all| {
        let names: Vec<String> = all.iter().map(|o| format!("`{}`", o.loss)).collect();
        Error::plain(format!(
            "model `{}` trains with {count} optimizers ({}), one training step each; this needs a model with one \
             loss",
            module.name,
            names.join(", ")
        ))
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
    plan_timed(graph, batch, threads, &mut Timings::default())
}

/// [`plan`], recording the time of `verify`, `fusion` and `plan`.
fn plan_timed(graph: &Graph, batch: usize, threads: usize, timings: &mut Timings) -> Result<Plan, Error> {
    timings
        .time("verify", || ir::verify::violations(graph))
        .map_err(|e| Error::from_stage(graph, Some("the graph to plan does not verify"), &e))?;
    let partition = timings.time("fusion", || fusion::partition(graph));
    timings
        .time("plan", || plan::plan_partition(graph, partition, &batch_dims(graph, batch), threads))
        .map_err(|e| Error::from_stage(graph, None, &[e]))
}

/// The back half for one graph: partition, plan and lowering to a
/// [`Program`] of generated kernels and library calls, for `batch`
/// examples and `threads` threads.
pub fn program(graph: &Graph, batch: usize, threads: usize, checking: Checking) -> Result<Program, Error> {
    program_timed(graph, batch, threads, checking, &mut Timings::default())
}

/// [`program`], recording the time of `verify`, `fusion`, `plan`, `lower`
/// (building the kernels and calls), `cranelift` (compiling the kernels
/// to machine code) and `link` (making the code executable).
pub fn program_timed(
    graph: &Graph,
    batch: usize,
    threads: usize,
    checking: Checking,
    timings: &mut Timings,
) -> Result<Program, Error> {
    let plan = plan_timed(graph, batch, threads, timings)?;
    let start = Instant::now();
    let program = lower::lower(&plan, checking);
    let elapsed = start.elapsed();
    if let Ok(p) = &program {
        let (cranelift, link) = p.jit.compile_times();
        timings.add("lower", elapsed.saturating_sub(cranelift + link));
        timings.add("cranelift", cranelift);
        timings.add("link", link);
    }
    program.map_err(|e| {
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
            Stage::Grad => listing(&gradients(module)?, |g| Ok(ir::print::print(g)))?,
            Stage::Train => listing(&train_steps(module)?, |g| Ok(ir::print::print(g)))?,
            Stage::Opt => listing(&optimized_steps(module)?, |g| Ok(ir::print::print(g)))?,
            Stage::Fused | Stage::Plan | Stage::Clif => {
                let back_half = |graph: &Graph| -> Result<String, Error> {
                    Ok(match stage {
                        Stage::Fused => fusion::report(graph, &fusion::partition(graph)),
                        Stage::Plan => plan::print(&plan(graph, batch, options.threads)?),
                        _ => lower::clif_listing(&program(graph, batch, options.threads, options.checking)?),
                    })
                };
                match options.mode {
                    Mode::Train => listing(&optimized_steps(module)?, back_half)?,
                    Mode::Infer => back_half(&opt::optimize(&module.infer_graph)?)?,
                }
            }
        })
    }
}

/// The text of every step's graph made by `text`: the text alone for one
/// step, each after its [header](Step::header) for several.
fn listing(steps: &[Step], text: impl Fn(&Graph) -> Result<String, Error>) -> Result<String, Error> {
    if let [step] = steps {
        return text(&step.graph);
    }
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&step.header(i, steps.len()));
        out.push('\n');
        out.push_str(&text(&step.graph)?);
    }
    Ok(out)
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

    /// Two heads on one input, each loss with its own optimiser and layer.
    const HEADS: &str = "\
model heads {
  input  x: f32[B, 4]
  target y: f32[B, 1]
  A = dense(1)
  C = dense(1)
  loss first = mse(x |> A, y)
  loss second = mse(x |> C, y) + mse(x |> A, y)
}
train {
  data = synthetic.sine
  optimizer second = adam(1e-3, params: [C, A])
  optimizer first = sgd(0.1, momentum: 0.9, params: A)
}
";

    /// Names of the inputs and outputs of `graph` of the given kinds.
    fn names(graph: &crate::ir::Graph) -> (Vec<String>, Vec<String>) {
        use crate::ir::{InputKind, Op};
        let inputs = graph
            .inputs()
            .filter_map(|(_, n)| match &n.op {
                Op::Input { name, kind: InputKind::Param { .. } | InputKind::State { .. } } => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        let outputs = graph.outputs.iter().map(|o| format!("{} {}", o.kind.name(), o.name)).collect();
        (inputs, outputs)
    }

    /// One step per optimiser, in the order written: each differentiates its
    /// own loss, updates only its parameters and keeps its state under its
    /// loss's name, so that overlapping parameters do not share state.
    #[test]
    fn a_step_per_optimizer_updates_its_parameters_only() {
        let compiled = compile(HEADS).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", HEADS, &d)));
        let steps = super::train_steps(&compiled.module).expect("the steps");
        let losses: Vec<&str> = steps.iter().map(|s| s.loss.as_str()).collect();
        assert_eq!(losses, ["second", "first"]);
        let (inputs, outputs) = names(&steps[0].graph);
        assert_eq!(
            inputs,
            [
                "A.weight",
                "A.bias",
                "C.weight",
                "C.bias",
                "optim.second.step",
                "optim.second.A.weight.exp_avg",
                "optim.second.A.weight.exp_avg_sq",
                "optim.second.A.bias.exp_avg",
                "optim.second.A.bias.exp_avg_sq",
                "optim.second.C.weight.exp_avg",
                "optim.second.C.weight.exp_avg_sq",
                "optim.second.C.bias.exp_avg",
                "optim.second.C.bias.exp_avg_sq",
            ]
            .map(String::from)
        );
        assert!(outputs.contains(&"loss second".to_string()) && !outputs.contains(&"loss first".to_string()));
        assert!(
            outputs.contains(&"param C.weight".to_string())
                && outputs.contains(&"param A.weight".to_string())
        );
        let (inputs, outputs) = names(&steps[1].graph);
        assert_eq!(
            inputs,
            [
                "A.weight",
                "A.bias",
                "C.weight",
                "C.bias",
                "optim.first.A.weight.momentum_buffer",
                "optim.first.A.bias.momentum_buffer"
            ]
            .map(String::from)
        );
        let params: Vec<&String> = outputs.iter().filter(|o| o.starts_with("param ")).collect();
        assert_eq!(params, ["param A.weight", "param A.bias"]);
        // The gradient graphs: the parameters each optimiser updates.
        let grads = super::gradients(&compiled.module).expect("the gradients");
        let grad_outputs: Vec<Vec<&str>> = grads
            .iter()
            .map(|s| {
                s.graph
                    .outputs
                    .iter()
                    .filter(|o| o.name.starts_with("grad."))
                    .map(|o| o.name.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            grad_outputs,
            [
                vec!["grad.A.weight", "grad.A.bias", "grad.C.weight", "grad.C.bias"],
                vec!["grad.A.weight", "grad.A.bias"]
            ]
        );
        // Every step compiles through the back half.
        for step in super::optimized_steps(&compiled.module).expect("optimised") {
            super::program(&step.graph, 3, 1, crate::codegen::Checking::Checked).expect("lowers");
        }
    }

    /// The one-step entry points name the steps of a model with several;
    /// the listings print each step after a header.
    #[test]
    fn several_steps_are_listed_with_headers() {
        let compiled = compile(HEADS).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", HEADS, &d)));
        let error = super::train_step(&compiled.module).expect_err("two steps");
        assert_eq!(
            error.to_string(),
            "model `heads` trains with 2 optimizers (`second`, `first`), one training step each; this needs a \
             model with one loss"
        );
        assert!(super::grad(&compiled.module).is_err());
        let options = super::Options::default();
        for stage in [
            super::Stage::Grad,
            super::Stage::Train,
            super::Stage::Opt,
            super::Stage::Fused,
            super::Stage::Plan,
        ] {
            let text = compiled.dump(stage, &options).unwrap_or_else(|e| panic!("{}: {e}", stage.name()));
            let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("# step")).collect();
            assert_eq!(
                headers,
                [
                    "# step 1 of 2: optimizer `second` (loss `second`, params: [C, A])",
                    "# step 2 of 2: optimizer `first` (loss `first`, params: A)"
                ],
                "{}",
                stage.name()
            );
        }
        // A model with one loss: one graph, no header, as before.
        let one = compile(SOURCE).expect("compiles");
        let text = one.dump(super::Stage::Train, &options).expect("train");
        assert!(text.starts_with("graph m mode=train {"), "{text}");
        assert_eq!(crate::ir::print::print(&super::train_step(&one.module).expect("one step")), text);
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
