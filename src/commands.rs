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
use nnc_compiler::Module;
use nnc_compiler::{compile_with, diag, ir, pipeline, syntax, Stage};
use nnc_runtime::exec::feed;
use nnc_runtime::io::{npz, tensor_file};
use nnc_runtime::train::init;
use nnc_runtime::FileLoader;

use crate::cli::{CheckArgs, Cli, ColorChoice, Command, GradArgs, InitArgs, IrArgs, Mode, SummaryArgs};
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

/// Compiles `source`, read from the file `file_name` (shown in messages;
/// `const` declarations read their files relative to its directory). On
/// errors, returns the diagnostics rendered as they are printed.
pub fn check_source(file_name: &str, source: &str, color: bool) -> Result<Module, String> {
    check_file_source(Path::new(file_name), source, color)
}

/// [`check_source`] for the model file `path`.
fn check_file_source(path: &Path, source: &str, color: bool) -> Result<Module, String> {
    compile_file_source(path, source, color).map(|(module, _)| module)
}

/// Compiles the model file `path`: the module and its warnings rendered as
/// they are printed (empty without any), or the rendered errors.
fn compile_file_source(path: &Path, source: &str, color: bool) -> Result<(Module, String), String> {
    let name = path.display().to_string();
    match compile_with(source, &FileLoader::for_model(path)) {
        Ok(c) if c.warnings.is_empty() => Ok((c.module, String::new())),
        Ok(c) => Ok((c.module, diag::render(&name, source, &c.warnings, color))),
        Err(diags) => Err(diag::render(&name, source, &diags, color)),
    }
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
        Command::Snapshot(args) => crate::snapshot::run_snapshot(args, cli.color, color, out, err),
        Command::Init(args) => run_init(args, color, out, err),
        Command::Grad(args) => run_grad(args, color, out, err),
        Command::Bench(args) => crate::bench::run_bench(args, color, out, err),
        Command::Train(args) => crate::train::run_train(args, color, out, err),
        Command::Eval(args) => crate::train::run_eval(args, color, out, err),
        Command::Predict(args) => crate::train::run_predict(args, color, out, err),
        Command::Export(args) => crate::export::run_export(args, color, out, err),
        Command::Plot(args) => crate::train::run_plot(args, out, err),
        Command::Graph(args) => crate::graph::run_graph(args, color, out, err),
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
    match compile_file_source(path, &source, color) {
        Ok((module, warnings)) => {
            let _ = write!(err, "{warnings}");
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
    load_source(path, color, err).map(|(module, _)| module)
}

/// [`load`], also returning the source text (which the spans of the
/// module's graphs index).
pub(crate) fn load_source(path: &Path, color: bool, err: &mut dyn Write) -> Result<(Module, String), Status> {
    let source = read_source(path).map_err(|message| {
        let _ = writeln!(err, "error: {message}");
        Status::Usage
    })?;
    let (module, warnings) = compile_file_source(path, &source, color).map_err(|rendered| {
        let _ = write!(err, "{rendered}");
        Status::CompileErrors
    })?;
    let _ = write!(err, "{warnings}");
    Ok((module, source))
}

/// Prints the diagnostics of a failure after semantic analysis, rendered
/// against the source like semantic errors, and returns
/// [`Status::CompileErrors`].
pub(crate) fn report(
    err: &mut dyn Write,
    file_name: &str,
    source: &str,
    error: &pipeline::Error,
    color: bool,
) -> Status {
    let _ = write!(err, "{}", diag::render(file_name, source, &error.diagnostics, color));
    Status::CompileErrors
}

/// "`--stage a`, `b` and `c`" for the stages that take an option.
fn stage_list(stages: impl Iterator<Item = Stage>) -> String {
    let names: Vec<String> = stages
        .enumerate()
        .map(|(i, s)| format!("`{}{}`", if i == 0 { "--stage " } else { "" }, s.name()))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn run_ir(args: &IrArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let stage = args.stage;
    if args.mode.is_some() && !stage.takes_mode() {
        let stages = stage_list(Stage::ALL.into_iter().filter(|s| s.takes_mode()));
        let _ = writeln!(err, "error: `--mode` applies to {stages} only");
        return Status::Usage;
    }
    if (args.batch.is_some() || args.threads.is_some()) && !stage.takes_batch() {
        let stages = stage_list(Stage::ALL.into_iter().filter(|s| s.takes_batch()));
        let _ = writeln!(err, "error: `--batch` and `--threads` apply to {stages} only");
        return Status::Usage;
    }
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Status::Usage;
        }
    };
    let name = args.file.display().to_string();
    if stage == Stage::Ast {
        // The syntax tree is printed for any program that parses, whatever
        // semantic analysis would say of it.
        return match pipeline::parse(&source) {
            Ok((file, warnings)) => {
                if !warnings.is_empty() {
                    let _ = write!(err, "{}", diag::render(&name, &source, &warnings, color));
                }
                let _ = write!(out, "{}", syntax::print_ast(&file, &source));
                Status::Ok
            }
            Err(diags) => {
                let _ = write!(err, "{}", diag::render(&name, &source, &diags, color));
                Status::CompileErrors
            }
        };
    }
    let compiled = match compile_with(&source, &FileLoader::for_model(&args.file)) {
        Ok(c) => c,
        Err(diags) => {
            let _ = write!(err, "{}", diag::render(&name, &source, &diags, color));
            return Status::CompileErrors;
        }
    };
    let options = pipeline::Options {
        mode: match args.mode.unwrap_or(Mode::Train) {
            Mode::Train => ir::Mode::Train,
            Mode::Infer => ir::Mode::Infer,
        },
        batch: args.batch.map(|b| b as usize),
        threads: args.threads.map_or(1, |t| t as usize),
        checking: nnc_compiler::codegen::Checking::Unchecked,
    };
    match compiled.dump(stage, &options) {
        Ok(text) => {
            let _ = write!(out, "{text}");
            Status::Ok
        }
        Err(error) => report(err, &name, &source, &error, color),
    }
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
    let (module, source) = load_source(&args.file, color, err)?;
    let seed = seed_of(&module, args.seed);
    let name = args.file.display().to_string();
    let backward = pipeline::grad(&module).map_err(|e| report(err, &name, &source, &e, color))?;
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
