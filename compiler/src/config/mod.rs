//! The training configuration: what a `train { ... }` section asks for, as
//! typed values.
//!
//! Semantic analysis checks a section (`sema::train_section`) and produces a
//! [`TrainConfig`], every key with its default applied; the optimiser
//! update ([`crate::update`]) and the runtime (data loading, the training
//! loop, metrics, checkpoints) read it. The module also holds the one
//! catalogue of the real data sets shipped with nnc ([`datasets`]): the
//! names and tasks the checker accepts and what `nnc datasets` lists; the
//! runtime adds only the code that loads them.
//!
//! The types carry no checking and do no I/O. The `Debug` output of the
//! data source, split, normalisation, missing-value rule, optimiser and
//! schedule (and, for several optimisers, the `Display` of their
//! [`ParamSet`]s) is recorded in checkpoints, so it is part of the file
//! format.
//!
//! A model may have several losses (`loss NAME = ...`), each minimised by
//! its own optimiser ([`LossOptimizer`]): a training iteration runs one step
//! of every optimiser, in the order written. A section without `optimizer`
//! has one, [`LossOptimizer::default_for_loss`].

pub mod datasets;
mod metric;
mod optimizer;
mod source;

pub use metric::Metric;
pub use optimizer::{LayerRef, LossOptimizer, Optimizer, ParamSet, Schedule, DEFAULT_LOSS};
pub use source::{DataSource, Distortion, Generator, Missing, Normalize, Split, SplitRule, Window};

use crate::diag::Span;

/// The checked `train { ... }` section, every key with its default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Where the examples come from (required).
    pub data: DataSource,
    /// The span of the `data = ...` entry, so that errors found while
    /// loading the data can point at it.
    pub data_span: Span,
    /// Which examples train and which validate.
    pub split: Split,
    pub normalize: Normalize,
    /// Examples per optimiser step (≥ 1).
    pub batch: usize,
    /// Passes over the training data (≥ 1).
    pub epochs: usize,
    /// The optimiser of every loss, in the order their steps run (the
    /// order written); never empty. The `schedule` and `clip_grad_norm`
    /// apply to each.
    pub optimizers: Vec<LossOptimizer>,
    pub schedule: Schedule,
    /// Maximum global gradient norm of each optimiser's gradients; `None`
    /// means no clipping.
    pub clip_grad_norm: Option<f64>,
    pub early_stop: Option<EarlyStop>,
    /// Metrics reported besides the loss, in the order written.
    pub metrics: Vec<Metric>,
    pub seed: u64,
    /// Path of the checkpoint to write; `None` means next to the model file.
    pub checkpoint: Option<String>,
    /// What loading does with examples holding NaN or infinite values.
    pub missing: Missing,
}

impl TrainConfig {
    /// The optimiser of the loss called `loss`.
    pub fn optimizer_of(&self, loss: &str) -> Option<&LossOptimizer> {
        self.optimizers.iter().find(|o| o.loss == loss)
    }
}

/// Stop when the validation loss (the sum of the losses of a model with
/// several) has not improved by more than `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStop {
    pub patience: usize,
    pub min_delta: f64,
}
