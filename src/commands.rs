//! Running the commands: read files, compile, print results and diagnostics.
//!
//! Every command writes to the writers it is given (stdout and stderr in the
//! binary, buffers in tests) and returns a [`Status`], which becomes the exit
//! code. Write errors (e.g. a closed pipe in `nnc ir x.nn | head`) are ignored
//! rather than turned into panics.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::Path;

use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{InputKind, Op, OutputKind};
use nnc_compiler::sema::Module;
use nnc_compiler::{compile, diag, fusion, ir, plan, syntax};
use nnc_runtime::{feed, init, npz, tensor_file};

use crate::cli::{
    CheckArgs, Cli, ColorChoice, Command, GradArgs, InitArgs, IrArgs, Mode, Stage, SummaryArgs,
};
use crate::source::read_source;
use crate::summary::{format_count, render_summary, total_params};

/// The outcome of a command; its exit code is the discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A program has errors (diagnostics were printed).
    CompileErrors = 1,
    /// Bad usage or an I/O error (unreadable file).
    Usage = 2,
}

impl Status {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Compiles `source` (read from `file_name`, which is used only in messages).
/// On errors, returns the diagnostics rendered as they are printed.
pub fn check_source(file_name: &str, source: &str, color: bool) -> Result<Module, String> {
    compile(source).map_err(|diags| diag::render(file_name, source, &diags, color))
}

/// Runs a parsed command line.
pub fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let status = match &cli.command {
        Command::Check(args) => run_check(args, color, out, err),
        Command::Ir(args) => run_ir(args, color, out, err),
        Command::Summary(args) => run_summary(args, color, out, err),
        Command::Init(args) => run_init(args, color, out, err),
        Command::Grad(args) => run_grad(args, color, out, err),
        Command::Bench(args) => crate::bench::run_bench(args, color, out, err),
        Command::Train(args) => crate::train::run_train(args, color, out, err),
        Command::Eval(args) => crate::train::run_eval(args, color, out, err),
        Command::Predict(args) => crate::train::run_predict(args, color, out, err),
        Command::Plot(args) => crate::train::run_plot(args, out, err),
        Command::Datasets => {
            // Write errors (a closed pipe) are ignored, as everywhere.
            let mut sink = &mut *out;
            let _ = crate::datasets::print_datasets(&mut sink);
            Status::Ok
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    status
}

fn run_check(args: &CheckArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let mut worst = Status::Ok;
    let mut failed = 0usize;
    for path in &args.files {
        let status = check_file(path, color, out, err);
        if status != Status::Ok {
            failed += 1;
        }
        worst = worst.max(status);
    }
    let n = args.files.len();
    if n > 1 {
        let files = |k: usize| if k == 1 { "file" } else { "files" };
        let line = if failed == 0 {
            format!("checked {n} files: all ok")
        } else {
            format!("checked {n} files: {} ok, {failed} {} with errors", n - failed, files(failed))
        };
        let _ = writeln!(out, "{line}");
    }
    worst
}

fn check_file(path: &Path, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let name = path.display().to_string();
    let source = match read_source(path) {
        Ok(s) => s,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Status::Usage;
        }
    };
    match check_source(&name, &source, color) {
        Ok(module) => {
            let params = total_params(&module);
            let noun = if params == 1 { "parameter" } else { "parameters" };
            let _ = writeln!(out, "ok: {name} (model {}: {} {noun})", module.name, format_count(params));
            Status::Ok
        }
        Err(rendered) => {
            let _ = write!(err, "{rendered}");
            Status::CompileErrors
        }
    }
}

/// Reads and compiles one file, printing I/O errors and diagnostics.
pub(crate) fn load(path: &Path, color: bool, err: &mut dyn Write) -> Result<Module, Status> {
    let source = read_source(path).map_err(|message| {
        let _ = writeln!(err, "error: {message}");
        Status::Usage
    })?;
    check_source(&path.display().to_string(), &source, color).map_err(|rendered| {
        let _ = write!(err, "{rendered}");
        Status::CompileErrors
    })
}

fn run_ir(args: &IrArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    if args.mode.is_some() && !matches!(args.stage, Stage::Forward | Stage::Fused | Stage::Plan | Stage::Clif)
    {
        let _ =
            writeln!(err, "error: `--mode` applies to `--stage forward`, `fused`, `plan` and `clif` only");
        return Status::Usage;
    }
    if (args.batch.is_some() || args.threads.is_some()) && !matches!(args.stage, Stage::Plan | Stage::Clif) {
        let _ = writeln!(err, "error: `--batch` and `--threads` apply to `--stage plan` and `clif` only");
        return Status::Usage;
    }
    match args.stage {
        Stage::Ast => {
            let source = match read_source(&args.file) {
                Ok(s) => s,
                Err(message) => {
                    let _ = writeln!(err, "error: {message}");
                    return Status::Usage;
                }
            };
            let (file, diags) = syntax::parse(&source);
            if !diags.is_empty() {
                let name = args.file.display().to_string();
                let _ = write!(err, "{}", diag::render(&name, &source, &diags, color));
            }
            if diags.iter().any(diag::Diagnostic::is_error) {
                return Status::CompileErrors;
            }
            let _ = write!(out, "{}", syntax::print_ast(&file, &source));
            Status::Ok
        }
        Stage::Forward => match load(&args.file, color, err) {
            Ok(module) => {
                let graph = match args.mode.unwrap_or(Mode::Train) {
                    Mode::Train => &module.train_graph,
                    Mode::Infer => &module.infer_graph,
                };
                let _ = write!(out, "{}", ir::print::print(graph));
                Status::Ok
            }
            Err(status) => status,
        },
        Stage::Grad | Stage::Train | Stage::Opt => {
            let module = match load(&args.file, color, err) {
                Ok(module) => module,
                Err(status) => return status,
            };
            let graph = match args.stage {
                Stage::Grad => nnc_compiler::grad_graph(&module).map(|b| b.graph),
                Stage::Train => nnc_compiler::train_step(&module),
                _ => nnc_compiler::optimized_train_step(&module),
            };
            match graph {
                Ok(graph) => {
                    let _ = write!(out, "{}", ir::print::print(&graph));
                    Status::Ok
                }
                Err(message) => {
                    let _ = writeln!(err, "error: {message}");
                    Status::CompileErrors
                }
            }
        }
        Stage::Fused | Stage::Plan | Stage::Clif => match load(&args.file, color, err) {
            Ok(module) => match fused_or_plan(args, &module) {
                Ok(text) => {
                    let _ = write!(out, "{text}");
                    Status::Ok
                }
                Err(message) => {
                    let _ = writeln!(err, "error: {message}");
                    Status::CompileErrors
                }
            },
            Err(status) => status,
        },
    }
}

/// The fusion report (`--stage fused`) or the plan (`--stage plan`) of the
/// optimised training step or, with `--mode infer`, inference graph.
fn fused_or_plan(args: &IrArgs, module: &Module) -> Result<String, String> {
    let graph = match args.mode.unwrap_or(Mode::Train) {
        Mode::Train => nnc_compiler::optimized_train_step(module)?,
        Mode::Infer => nnc_compiler::opt::optimize(&module.infer_graph)?,
    };
    let partition = fusion::partition(&graph);
    if args.stage == Stage::Fused {
        return Ok(fusion::report(&graph, &partition));
    }
    let batch = match args.batch {
        Some(b) => usize::try_from(b).map_err(|_| format!("batch size {b} is too large"))?,
        None => module.train.as_ref().map_or(1, |t| t.batch),
    };
    let threads = args.threads.map_or(Ok(1), usize::try_from).map_err(|_| "too many threads".to_string())?;
    let mut dims = HashMap::new();
    for node in &graph.nodes {
        for d in node.ty.shape.dims() {
            if let ir::Dim::Sym(s) = d {
                dims.insert(s.clone(), batch);
            }
        }
    }
    let planned = plan::plan(&graph, &partition, &dims, threads)?;
    if args.stage == Stage::Clif {
        let program = nnc_compiler::codegen::lower::lower(
            &graph,
            &partition,
            &planned,
            nnc_compiler::codegen::Checking::Unchecked,
        )
        .map_err(|e| e.to_string())?;
        return Ok(nnc_compiler::codegen::lower::clif_listing(&program));
    }
    Ok(plan::print(&graph, &partition, &planned))
}

/// The seed of `nnc init` and `nnc grad`: the option, else the `train`
/// section's, else 0.
fn seed_of(module: &Module, option: Option<u64>) -> u64 {
    option.or(module.train.as_ref().map(|t| t.seed)).unwrap_or(0)
}

/// Metadata stored in every file nnc writes.
fn file_metadata(module: &Module, content: &str, seed: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("nnc.model".to_string(), module.name.clone()),
        ("nnc.content".to_string(), content.to_string()),
        ("nnc.seed".to_string(), seed.to_string()),
    ])
}

fn run_init(args: &InitArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let module = match load(&args.file, color, err) {
        Ok(module) => module,
        Err(status) => return status,
    };
    let seed = seed_of(&module, args.seed);
    let tensors = match init::initial_values(&module.train_graph, seed) {
        Ok(tensors) => tensors,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Status::CompileErrors;
        }
    };
    if let Err(e) = tensor_file::save(&args.output, &tensors, &file_metadata(&module, "parameters", seed)) {
        let _ = writeln!(err, "error: {e}");
        return Status::Usage;
    }
    let mut params = 0u64;
    let mut state = 0u64;
    for (_, node) in module.train_graph.inputs() {
        let count: u64 = node.ty.shape.as_known().map_or(0, |s| s.iter().map(|&d| d as u64).product());
        match &node.op {
            Op::Input { kind: InputKind::Param { .. }, .. } => params += count,
            Op::Input { kind: InputKind::State { .. }, .. } => state += count,
            _ => {}
        }
    }
    let noun = if params == 1 { "parameter" } else { "parameters" };
    let state_text =
        if state > 0 { format!(", {} state values", format_count(state)) } else { String::new() };
    let _ = writeln!(
        out,
        "wrote {} tensors ({} {noun}{state_text}, seed {seed}) to {}",
        tensors.len(),
        format_count(params),
        args.output.display()
    );
    Status::Ok
}

fn run_grad(args: &GradArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    match grad(args, color, out, err) {
        Ok(()) => Status::Ok,
        Err(status) => status,
    }
}

/// Prints `message` as an error and returns `status`, for `?` chains.
fn fail(err: &mut dyn Write, status: Status, message: impl std::fmt::Display) -> Status {
    let _ = writeln!(err, "error: {message}");
    status
}

fn grad(args: &GradArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Status> {
    let module = load(&args.file, color, err)?;
    let seed = seed_of(&module, args.seed);
    let backward = nnc_compiler::grad_graph(&module).map_err(|m| fail(err, Status::CompileErrors, m))?;
    let graph = &backward.graph;

    let params = tensor_file::load(&args.params).map_err(|e| fail(err, Status::Usage, e))?;
    let arrays = npz::load_npz(&args.data).map_err(|e| fail(err, Status::Usage, e))?;
    let mut inputs: HashMap<String, Tensor<f32>> =
        feed::param_inputs(graph, &params, &args.params, seed).map_err(|e| fail(err, Status::Usage, e))?;
    inputs.extend(npz::batch_inputs(graph, &args.data, &arrays).map_err(|e| fail(err, Status::Usage, e))?);
    inputs.extend(feed::key_inputs(graph, seed).map_err(|m| fail(err, Status::CompileErrors, m))?);
    for (_, node) in graph.inputs() {
        if let Op::Input { name, .. } = &node.op {
            if !inputs.contains_key(name) {
                let message = format!("the gradient graph has an input `{name}: {}` with no value", node.ty);
                return Err(fail(err, Status::CompileErrors, message));
            }
        }
    }

    let results = interp::run::<f32>(graph, &inputs)
        .map_err(|e| fail(err, Status::CompileErrors, format!("evaluating the gradient graph: {e}")))?;
    let results: HashMap<&str, &Tensor<f32>> = results.iter().map(|(n, t)| (n.as_str(), t)).collect();

    let loss_name = graph.outputs.iter().find(|o| o.kind == OutputKind::Loss).map(|o| o.name.as_str());
    let loss = loss_name
        .and_then(|n| results.get(n))
        .and_then(|t| t.as_float())
        .and_then(|a| a.iter().next().copied())
        .ok_or_else(|| fail(err, Status::CompileErrors, "the gradient graph has no scalar loss output"))?;

    let mut grads = Vec::with_capacity(backward.grads.len());
    for g in &backward.grads {
        let output = format!("grad.{}", g.name);
        let value = results.get(output.as_str()).and_then(|t| t.as_float()).ok_or_else(|| {
            fail(err, Status::CompileErrors, format!("the gradient graph has no float output `{output}`"))
        })?;
        grads.push((g.name.clone(), value.clone()));
    }
    let mut metadata = file_metadata(&module, "gradients", seed);
    metadata.insert("nnc.loss".to_string(), loss.to_string());
    tensor_file::save(&args.output, &grads, &metadata).map_err(|e| fail(err, Status::Usage, e))?;
    let _ = writeln!(out, "loss = {loss}");
    Ok(())
}

fn run_summary(args: &SummaryArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    match load(&args.file, color, err) {
        Ok(module) => {
            let _ = write!(out, "{}", render_summary(&module));
            Status::Ok
        }
        Err(status) => status,
    }
}
