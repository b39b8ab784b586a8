//! The examples of a run bound to the graph's inputs: split into training
//! and validation rows, normalised with statistics of the training rows (or
//! a checkpoint's), missing values filled, the physical values kept for
//! metrics.

use std::path::Path;

use nnc_compiler::config::{Normalize, TrainConfig};
use nnc_compiler::Module;

use super::checkpoint::Checkpoint;
use super::normalize::Stats;
use super::RunError;
use crate::data::{self, LoadOptions, Role};
use crate::io::npz::ArrayValue;

/// One side of the examples bound to a graph input.
pub(super) struct Slot {
    pub(super) name: String,
    /// Per-example shape.
    pub(super) shape: Vec<usize>,
    /// Values fed to the graph (normalised if `stats` is set).
    pub(super) fed: Values,
    /// Physical values, for metrics, with missing values as NaN (kept when
    /// they differ from `fed`: normalised, or with missing values).
    pub(super) physical: Option<Vec<f32>>,
    pub(super) stats: Option<Stats>,
    /// Names of the variables (axis 1), for per-variable metrics.
    pub(super) variables: Vec<String>,
    /// A sequence: time on axis 1 of the example, the variables on axis 2.
    pub(super) sequence: bool,
    /// The physical unit of the values (`mm/h`, or one per variable:
    /// `Pa, K, m/s`), if the source says.
    pub(super) unit: Option<String>,
}

pub(super) enum Values {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Slot {
    pub(super) fn per(&self) -> usize {
        self.shape.iter().product()
    }

    /// Every example's values in physical units, missing values NaN where
    /// they were kept (`physical`), else the fed values with the
    /// normalisation inverted.
    pub(super) fn physical_values(&self) -> Result<Vec<f32>, String> {
        match (&self.physical, &self.fed) {
            (Some(p), _) => Ok(p.clone()),
            (None, Values::F32(fed)) => {
                let mut v = fed.clone();
                if let Some(stats) = &self.stats {
                    let mut shape = vec![v.len() / self.per().max(1)];
                    shape.extend(&self.shape);
                    stats.invert(&mut v, &shape);
                }
                Ok(v)
            }
            (None, Values::I32(_)) => Err(format!("`{}` holds labels, not values", self.name)),
        }
    }
}

/// The examples of a run, split, normalised and ready to batch.
pub(super) struct Prepared {
    pub(super) origin: String,
    pub(super) input: Slot,
    /// None for a model without a target (an autoencoder's loss compares
    /// its output with the input; metrics then do the same).
    pub(super) target: Option<Slot>,
    /// The `valid` masks of `missing = mask`, fed unchanged.
    pub(super) masks: Vec<Slot>,
    /// A second input bound by name to the source's `y` (the class labels
    /// that condition a generator), fed as loaded: never normalised.
    pub(super) conditions: Vec<Slot>,
    pub(super) train: Vec<usize>,
    pub(super) val: Vec<usize>,
    pub(super) dropped: usize,
    /// Where the cells of the examples' fields lie, when the source says.
    pub(super) grid: Option<data::Grid>,
}

impl Prepared {
    /// Every slot fed to the graph: input, target, masks, conditions.
    pub(super) fn slots(&self) -> impl Iterator<Item = &Slot> {
        std::iter::once(&self.input).chain(&self.target).chain(&self.masks).chain(&self.conditions)
    }
}

/// Whether float targets are normalised: only when every loss of the model
/// compares values (regression losses), never for labels, masks or
/// probabilities.
fn regression_targets(module: &Module) -> bool {
    let losses: Vec<&str> = module
        .layers
        .iter()
        .filter(|l| {
            matches!(
                l.kind.as_str(),
                "mse" | "mae" | "huber" | "cross_entropy" | "bce" | "dice" | "l1" | "l2"
            )
        })
        .map(|l| l.kind.as_str())
        .filter(|k| !matches!(*k, "l1" | "l2"))
        .collect();
    !losses.is_empty() && losses.iter().all(|k| matches!(*k, "mse" | "mae" | "huber"))
}

/// The slot of `field`: its values normalised with `saved` statistics or
/// statistics of the examples `rows` (if `normalize`), missing values fed
/// as 0, and the physical values kept for metrics if `keep_physical`.
fn slot_of(
    field: &data::Field,
    normalize: bool,
    rows: &[usize],
    saved: Option<&Stats>,
    keep_physical: bool,
) -> Slot {
    let shape = field.value.shape()[1..].to_vec();
    let (name, variables, unit) = (field.name.clone(), field.variables.clone(), field.unit.clone());
    let sequence = field.variable_axis == 2;
    match &field.value {
        ArrayValue::I32(a) => Slot {
            name,
            shape,
            fed: Values::I32(a.iter().copied().collect()),
            physical: None,
            stats: None,
            variables,
            sequence,
            unit,
        },
        ArrayValue::F32(a) => {
            let mut fed: Vec<f32> = a.iter().copied().collect();
            let stats = normalize.then(|| {
                saved.cloned().unwrap_or_else(|| Stats::from_examples(a, rows, field.variable_axis))
            });
            let missing = fed.iter().any(|v| !v.is_finite());
            // A copy in physical units only where `fed` will differ from it.
            let physical = (keep_physical && (stats.is_some() || missing)).then(|| fed.clone());
            if let Some(stats) = &stats {
                stats.apply(&mut fed, a.shape());
            }
            // Missing values (`missing = mask`): 0 after normalisation, the
            // training mean of the variable.
            if missing {
                fed.iter_mut().filter(|v| !v.is_finite()).for_each(|v| *v = 0.0);
            }
            Slot { name, shape, fed: Values::F32(fed), physical, stats, variables, sequence, unit }
        }
    }
}

/// The examples of `config`'s data for `module`, normalised with the
/// statistics of `saved` (else of the training rows). The input's physical
/// values are kept, missing values NaN, when `keep_input` (or when the model
/// has no target, whose metrics compare with the input).
pub(super) fn prepare(
    module: &Module,
    config: &TrainConfig,
    base_dir: &Path,
    saved: Option<&Checkpoint>,
    keep_input: bool,
) -> Result<Prepared, RunError> {
    let opts = LoadOptions { seed: config.seed, missing: config.missing, base_dir };
    let examples = data::load(&config.data, &module.train_graph, &opts)?;
    let (train, val) = examples.split(config.split);
    if train.is_empty() {
        let cause = format!("no training examples ({} in all, `split = {}`)", examples.n, config.split);
        return Err(data::Error::new(Path::new(&examples.origin), cause).into());
    }
    let per_variable = config.normalize == Normalize::PerVariable;
    let stats_of = |f: &data::Field| saved.and_then(|ckpt| ckpt.stats(&f.name));
    let data_field = |role: Role| examples.fields.iter().find(|f| f.role == role && !f.mask);
    let has_target = data_field(Role::Target).is_some();
    let x = data_field(Role::Input).ok_or_else(|| format!("{}: no input array", examples.origin))?;
    let input = slot_of(x, per_variable, &train, stats_of(x), keep_input || !has_target);
    let target_norm = per_variable && regression_targets(module);
    let target = data_field(Role::Target).map(|y| slot_of(y, target_norm, &train, stats_of(y), true));
    let masks =
        examples.fields.iter().filter(|f| f.mask).map(|f| slot_of(f, false, &train, None, false)).collect();
    let conditions = examples
        .fields
        .iter()
        .filter(|f| f.role == Role::Input && !f.mask && f.name != x.name)
        .map(|f| slot_of(f, false, &train, None, false))
        .collect();
    if let Some(ckpt) = saved {
        for slot in std::iter::once(&input).chain(&target) {
            if slot.stats.is_some() && ckpt.stats(&slot.name).is_none() {
                return Err(format!(
                    "the checkpoint holds no normalisation statistics for `{}`, which this model normalises",
                    slot.name
                )
                .into());
            }
        }
    }
    Ok(Prepared {
        origin: examples.origin.clone(),
        input,
        target,
        masks,
        conditions,
        train,
        val,
        dropped: examples.dropped,
        grid: examples.grid.clone(),
    })
}
