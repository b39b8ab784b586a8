//! The model and checkpoint behind a run directory, and their predictions
//! for the validation examples, for the maps and scatter plots.
//!
//! The run directory's `run.json` names the model file and the checkpoint
//! (`nnc train` writes it); a directory without one is taken to be the
//! default of `nnc train`: `DIR/STEM.run` for `DIR/STEM.nn` and
//! `DIR/STEM.safetensors`. The predictions are the runtime's
//! ([`nnc_runtime::train::predictions`]): the data loaded, split and
//! normalised as `nnc eval` does, the prediction mapped back to physical
//! units as `nnc predict` writes it.

use std::path::{Path, PathBuf};

use nnc_compiler::ir::{Dim, OutputKind};
use nnc_compiler::Module;
use nnc_runtime::train::{self, PredictionOptions, Predictions, RunRecord, Subset};

/// A run directory's model, compiled, and its checkpoint.
pub(super) struct TrainedModel {
    pub(super) module: Module,
    pub(super) model_path: PathBuf,
    pub(super) checkpoint: PathBuf,
}

/// Finds and compiles the model of `run_dir` and checks that its
/// checkpoint exists.
pub(super) fn trained_model(run_dir: &Path) -> Result<TrainedModel, String> {
    if !run_dir.is_dir() {
        return Err(format!("{}: not a run directory (no such directory)", run_dir.display()));
    }
    let record = RunRecord::of(run_dir)?;
    let source = crate::source::read_source(&record.model).map_err(|e| {
        format!("{e} (the model of the run {}; `nnc train` records it in run.json)", run_dir.display())
    })?;
    if !record.checkpoint.is_file() {
        return Err(format!(
            "{}: the run has no checkpoint ({} does not exist); train the model first: nnc train {}",
            run_dir.display(),
            record.checkpoint.display(),
            record.model.display()
        ));
    }
    let module = nnc_compiler::compile_with(&source, &nnc_runtime::FileLoader::for_model(&record.model))
        .map(|c| c.module)
        .map_err(|diags| {
            nnc_compiler::diag::render(&record.model.display().to_string(), &source, &diags, false)
        })?;
    Ok(TrainedModel { module, model_path: record.model, checkpoint: record.checkpoint })
}

impl TrainedModel {
    /// The prediction output's name and its type's per-example dimensions
    /// (`None` for a known size that is symbolic).
    pub(super) fn prediction_shape(&self) -> Result<(String, String, Vec<Option<usize>>), String> {
        let graph = &self.module.infer_graph;
        let outputs: Vec<_> = graph.outputs.iter().filter(|o| o.kind == OutputKind::Prediction).collect();
        let [output] = outputs.as_slice() else {
            return Err(format!(
                "model {} has {} prediction outputs; the plots need exactly one (mark it with `output NAME`)",
                self.module.name,
                outputs.len()
            ));
        };
        let ty = &graph.node(output.value).ty;
        let dims =
            ty.shape.dims().iter().skip(1).map(|d| if let Dim::Known(k) = d { Some(*k) } else { None });
        Ok((output.name.clone(), ty.to_string(), dims.collect()))
    }

    /// The predictions for the validation examples (all of them, or the
    /// one at `example`).
    pub(super) fn predictions(&self, example: Option<usize>) -> Result<Predictions, String> {
        let options = PredictionOptions {
            subset: Subset::Validation,
            example,
            threads: nnc_runtime::exec::pool::available_threads(),
            allow_changes: false,
        };
        train::predictions(&self.module, &self.model_path, &self.checkpoint, &options).map_err(|e| e.message)
    }
}

/// The indices of the variables to draw: all, or the one named `wanted`
/// (an error listing the names when `model` has none of that name).
pub(super) fn chosen_variables(
    names: &[String],
    wanted: Option<&str>,
    model: &str,
) -> Result<Vec<usize>, String> {
    let Some(v) = wanted else { return Ok((0..names.len()).collect()) };
    match names.iter().position(|n| n == v) {
        Some(i) => Ok(vec![i]),
        None => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            Err(format!(
                "--variable {v}: model {model} predicts no variable of that name; its variables are {}",
                list.join(", ")
            ))
        }
    }
}

/// The names of the variables of a field with `count` variables: the
/// source's names, else the field's name alone (one variable) or
/// `NAME[i]`.
pub(super) fn variable_names(names: &[String], field: &str, count: usize) -> Vec<String> {
    if names.len() == count {
        names.to_vec()
    } else if count == 1 {
        vec![field.to_string()]
    } else {
        (0..count).map(|i| format!("{field}[{i}]")).collect()
    }
}

/// The unit of each of `count` variables: one unit for all, or a list
/// (`Pa, K, m/s`) with one per variable.
pub(super) fn variable_units(unit: Option<&str>, count: usize) -> Vec<Option<String>> {
    match unit {
        None => vec![None; count],
        Some(u) => {
            let parts: Vec<&str> = u.split(',').map(str::trim).collect();
            if parts.len() == count {
                parts.iter().map(|p| Some(p.to_string())).collect()
            } else if parts.len() == 1 {
                vec![Some(u.to_string()); count]
            } else {
                vec![None; count]
            }
        }
    }
}

/// `NAME (UNIT)`, or `NAME` without a unit.
pub(super) fn with_unit(name: &str, unit: Option<&str>) -> String {
    match unit {
        Some(u) if !u.is_empty() => format!("{name} ({u})"),
        _ => name.to_string(),
    }
}
