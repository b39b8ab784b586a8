//! Running the commands: read files, compile, print results and diagnostics.
//!
//! Every command writes to the writers it is given (stdout and stderr in the
//! binary, buffers in tests) and returns a [`Status`], which becomes the exit
//! code. Write errors (e.g. a closed pipe in `nnc ir x.nn | head`) are ignored
//! rather than turned into panics.

use std::io::{IsTerminal, Write};
use std::path::Path;

use nnc_compiler::sema::Module;
use nnc_compiler::{compile, diag, ir, syntax};

use crate::cli::{CheckArgs, Cli, ColorChoice, Command, IrArgs, Mode, Stage, SummaryArgs};
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
fn load(path: &Path, color: bool, err: &mut dyn Write) -> Result<Module, Status> {
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
            let _ = write!(out, "{}", syntax::print_ast(&file));
            Status::Ok
        }
        Stage::Forward => match load(&args.file, color, err) {
            Ok(module) => {
                let graph = match args.mode {
                    Mode::Train => &module.train_graph,
                    Mode::Infer => &module.infer_graph,
                };
                let _ = write!(out, "{}", ir::print::print(graph));
                Status::Ok
            }
            Err(status) => status,
        },
    }
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
