//! The `nnc` binary: parses the command line and turns the command's
//! [`nnc::Status`] into the process exit code. Everything else is in the
//! library (`src/lib.rs`), where the tests can reach it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nnc::cli::Cli::parse();
    // Unlocked handles: each write takes the lock for that write only. A lock
    // held for the whole command would deadlock the progress bar of `nnc
    // train`, whose drawing thread writes to stderr.
    let status = nnc::run(&cli, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(status.code())
}
