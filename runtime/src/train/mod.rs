//! The training loop of `nnc train`, and the evaluation and prediction of
//! `nnc eval` / `nnc predict`.
//!
//! A run compiles the optimised training steps (forward, backward, optimiser
//! update; one per optimiser) and the optimised inference graph into
//! [`Executable`](crate::exec::Executable)s, one per
//! batch size it needs (the full batch and, when the examples do not divide
//! evenly, the last partial batch — never silently dropped). The current
//! parameters, model state and optimiser state live in the inputs of the
//! executable that ran last; switching executables copies them.
//!
//! One epoch: the learning rate of the schedule ([`schedule`]), the training
//! examples in the epoch's seeded order ([`split`]), one optimiser step per
//! batch (the dropout key is `(seed, step + 1)`), a check that the loss is
//! finite (a diverging run stops with an error naming the step and leaves
//! the last checkpoint as it was), then the validation loss and metrics in
//! physical units, early stopping, a line in the run's `log.jsonl` and an
//! atomic checkpoint ([`checkpoint`]).
//!
//! A model with several losses has one training step per optimiser: each
//! batch runs them in the order written, with the same random key, each
//! seeing the parameters and state the one before it wrote; every loss is
//! logged and validated, and early stopping watches their sum. Every random draw derives from the
//! seed, the epoch and the step, so a run resumed from a checkpoint with the
//! same thread count is bit-identical to one that was never interrupted.
//!
//! - `run`: [`train`], its [`Options`], the [`RunInfo`] and [`EpochRecord`]s
//!   an [`Observer`] receives, and the [`Outcome`];
//! - `evaluate`: [`eval`], [`predict`] and [`predictions`] (for `nnc plot
//!   --maps` and `--scatter`) with a checkpoint's model;
//! - `engine`: the executables per batch size, the copies of the state
//!   between them, feeding batches and scoring rows with the inference graph;
//! - `examples`: the examples of a run bound to the graph's inputs, split
//!   and normalised;
//! - [`checkpoint`], [`normalize`], [`schedule`], [`split`]: the checkpoint
//!   file, normalisation statistics, learning-rate schedules, the split and
//!   the epoch order;
//! - [`metrics`]: validation metrics accumulated batch by batch;
//! - [`init`]: the initial values of parameters and state.

pub mod checkpoint;
pub mod collective;
mod engine;
pub use engine::constant_inputs;
mod evaluate;
mod examples;
pub mod init;
pub mod metrics;
pub mod normalize;
mod run;
pub mod schedule;
pub mod split;

use std::path::Path;

use nnc_compiler::config::TrainConfig;

use crate::data;

pub use evaluate::{
    eval, inference_model, predict, predict_inputs, predict_with, prediction_inputs, predictions, Baseline,
    EvalOptions, Evaluation, InferenceModel, NamedInput, PredictInput, PredictOptions, PredictionOptions,
    Predictions, Subset, Values,
};
pub use run::{
    default_checkpoint, default_run_dir, plural, train, EpochRecord, LossRecord, Observer, Options, Outcome,
    RunInfo, RunRecord, Silent,
};

/// Why `train` or `eval` failed: the message, and when the data could not
/// be loaded or do not fit the model, the loading error itself, so that a
/// front end can point at the model's source (the `data` entry, the input
/// or target concerned).
#[derive(Debug)]
pub struct RunError {
    /// The whole message (for a data error, its `PATH: CAUSE`).
    pub message: String,
    pub data: Option<data::LoadError>,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunError {}

impl From<String> for RunError {
    fn from(message: String) -> RunError {
        RunError { message, data: None }
    }
}

impl From<&str> for RunError {
    fn from(message: &str) -> RunError {
        RunError::from(message.to_string())
    }
}

impl From<data::LoadError> for RunError {
    fn from(error: data::LoadError) -> RunError {
        RunError { message: error.to_string(), data: Some(error) }
    }
}

impl From<data::Error> for RunError {
    fn from(error: data::Error) -> RunError {
        RunError::from(data::LoadError::from(error))
    }
}

/// Labels of the configured metrics, in order.
pub fn metric_labels(config: &TrainConfig) -> Vec<String> {
    config.metrics.iter().map(metrics::label).collect()
}

/// Writes `text` to `path` atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::io::tensor_file::write_atomically(path, bytes).map_err(|e| e.to_string())
}
