//! The command-line interface: commands, arguments and their help text.
//!
//! Declared with clap's derive API so that `--help`, usage errors (exit code
//! 2) and the lists of valid values all come from this one definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const TOP_EXAMPLES: &str = "\
Examples:
  nnc check models/*.nn               check programs for errors
  nnc summary models/resunet.nn       layers, shapes, parameters, FLOPs
  nnc ir models/sine.nn --stage forward --mode infer
                                      print the inference graph

Exit status: 0 success, 1 the program has errors, 2 usage or I/O error.";

const CHECK_EXAMPLES: &str = "\
Examples:
  nnc check models/sine.nn
  nnc check models/*.nn --color never

Prints `ok: FILE (model NAME: N parameters)` for each correct file and the
diagnostics of each incorrect one (on stderr), then goes on with the next file.
Exits with 1 if any file has errors.";

const IR_EXAMPLES: &str = "\
Examples:
  nnc ir models/sine.nn --stage ast
  nnc ir models/sine.nn --stage forward
  nnc ir models/digits.nn --stage forward --mode infer

Stages:
  ast       the syntax tree as parsed, before any checking
  forward   the forward graph in the IR text format (training mode by
            default: dropout active, batchnorm on batch statistics)";

const SUMMARY_EXAMPLES: &str = "\
Examples:
  nnc summary models/resunet.nn

One row per layer call site: its stable name, the built-in, the output shape
(`B` is the batch size), trainable parameters and forward FLOPs per sample.
Then the totals and the parameter memory in f32.";

/// nnc: compile and train neural networks described in `.nn` files.
#[derive(Debug, Parser)]
#[command(name = "nnc", version, arg_required_else_help = true, after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour diagnostics: `auto` colours them when stderr is a
    /// terminal and the NO_COLOR environment variable is not set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check `.nn` files for syntax, name, argument and shape errors.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print an intermediate stage of the compiler (syntax tree or IR).
    #[command(after_help = IR_EXAMPLES)]
    Ir(IrArgs),
    /// Print a table of the model's layers, shapes, parameters and FLOPs.
    #[command(after_help = SUMMARY_EXAMPLES)]
    Summary(SummaryArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The `.nn` files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IrArgs {
    /// The `.nn` file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Which stage to print.
    #[arg(long, value_enum, default_value_t = Stage::Forward)]
    pub stage: Stage,

    /// Which forward graph to print: training (dropout active, batchnorm on
    /// batch statistics) or inference.
    #[arg(long, value_enum, default_value_t = Mode::Train)]
    pub mode: Mode,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The `.nn` file to summarise.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// A printable stage of the compiler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// The syntax tree, as parsed.
    Ast,
    /// The forward IR graph.
    Forward,
}

/// Training or inference forward graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Training mode: dropout active, batchnorm on batch statistics.
    Train,
    /// Inference mode: no dropout, batchnorm on running statistics.
    Infer,
}

/// Whether diagnostics are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
