//! The `nnc` command-line tool, as a library.
//!
//! The binary (`src/main.rs`) only parses arguments and sets the exit code;
//! everything it does lives here so that integration tests can call exactly
//! the code users run: [`cli`] declares the commands, [`commands`] runs them,
//! [`source`] is the one place that reads `.nn` files (the compiler crate does
//! no I/O), [`summary`] renders the `nnc summary` table, and [`snapshot`]
//! runs snapshot tests of models (`nnc snapshot`, [`assert_stage!`]).

pub mod bench;
pub mod cli;
pub mod commands;
pub mod datasets;
pub mod export;
pub mod graph;
pub mod plot;
pub mod snapshot;
pub mod source;
pub mod summary;
pub mod train;

pub use commands::{check_source, run, Status};
