//! The `nnc` binary: parses the command line and turns the command's
//! [`nnc::Status`] into the process exit code. Everything else is in the
//! library (`src/lib.rs`), where the tests can reach it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nnc::cli::Cli::parse();
    let status = nnc::run(&cli, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    ExitCode::from(status.code())
}
