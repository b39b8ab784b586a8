//! The training loop of `nnc train`, and the evaluation and prediction of
//! `nnc eval` / `nnc predict`.
//!
//! A run compiles the optimised training step (forward, backward, optimiser
//! update) and the optimised inference graph into [`Executable`]s, one per
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
//! atomic checkpoint ([`checkpoint`]). Every random draw derives from the
//! seed, the epoch and the step, so a run resumed from a checkpoint with the
//! same thread count is bit-identical to one that was never interrupted.

pub mod checkpoint;
pub mod normalize;
pub mod schedule;
pub mod split;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::config::{DataSource, EarlyStop, Metric, Normalize, TrainConfig};
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{rng, DType, Dim, Graph, InputKind, Op, OutputKind};
use nnc_compiler::Module;

use crate::data::{self, LoadOptions, Role};
use crate::exec::{Executable, Gemm, Options as ExecOptions};
use crate::metrics::{self, Metrics, TargetView};
use crate::npz::ArrayValue;
use checkpoint::{source_hash, Checkpoint, Fingerprint};
use normalize::Stats;

/// How to run `nnc train`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Worker threads (results are bit-identical for a given count).
    pub threads: usize,
    /// Overrides the `train` section's `epochs`.
    pub epochs: Option<usize>,
    /// Where the checkpoint is written.
    pub checkpoint: PathBuf,
    /// Where `log.jsonl` is written.
    pub run_dir: PathBuf,
    /// Continue from this checkpoint.
    pub resume: Option<PathBuf>,
    /// Resume even when the model or a `train` key the step depends on
    /// changed since the checkpoint was written (see [`Fingerprint`]).
    pub allow_changes: bool,
    /// Bounds-checked kernels.
    pub checking: Checking,
}

/// What a run is about to do, reported once before the first epoch.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub model: String,
    pub origin: String,
    pub n_train: usize,
    pub n_val: usize,
    pub dropped: usize,
    pub epochs: usize,
    pub first_epoch: usize,
    pub steps_per_epoch: usize,
    pub batch: usize,
    pub threads: usize,
    pub compile_ms: f64,
    pub normalized: Vec<String>,
    /// Things the user should know before the run starts (a resumed run
    /// that will not be bit-identical, no validation examples).
    pub warnings: Vec<String>,
}

/// The summary of one epoch (also one line of `log.jsonl`).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Optimiser steps taken so far.
    pub step: u64,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_s: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    /// Validation metrics in physical units, `(label, value)`.
    pub metrics: Vec<(String, f64)>,
    /// The validation loss improved on every earlier epoch.
    pub best: bool,
}

impl EpochRecord {
    /// The JSON object of this record as written to `log.jsonl`.
    pub fn to_json(&self) -> serde_json::Value {
        let num = |v: f64| if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null };
        let mut m = serde_json::Map::new();
        m.insert("epoch".into(), self.epoch.into());
        m.insert("step".into(), self.step.into());
        m.insert("lr".into(), num(self.lr));
        m.insert("seconds".into(), num(self.seconds));
        m.insert("samples_per_s".into(), num(self.samples_per_s));
        m.insert("train_loss".into(), num(self.train_loss));
        if let Some(v) = self.val_loss {
            m.insert("val_loss".into(), num(v));
        }
        for (label, v) in &self.metrics {
            m.insert(format!("val_{label}"), num(*v));
        }
        serde_json::Value::Object(m)
    }
}

/// Receives progress while a run trains.
pub trait Observer {
    fn start(&mut self, _info: &RunInfo) {}
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// After `done` steps of the epoch; `loss` is the running mean.
    fn step(&mut self, _done: usize, _loss: f64) {}
    fn epoch_end(&mut self, _record: &EpochRecord) {}
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The epochs run by this invocation.
    pub records: Vec<EpochRecord>,
    pub stopped_early: bool,
    /// The epoch whose parameters the final checkpoint holds (1-based), when
    /// early stopping restored the best ones.
    pub best_epoch: Option<usize>,
    pub checkpoint: PathBuf,
    pub log: PathBuf,
    /// Why the run trained nothing (a resumed run that was already
    /// complete); no checkpoint or log was written then.
    pub nothing_to_do: Option<String>,
}

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

/// One side of the examples bound to a graph input.
struct Slot {
    name: String,
    /// Per-example shape.
    shape: Vec<usize>,
    /// Values fed to the graph (normalised if `stats` is set).
    fed: Values,
    /// Physical values, for metrics, with missing values as NaN (kept when
    /// they differ from `fed`: normalised, or with missing values).
    physical: Option<Vec<f32>>,
    stats: Option<Stats>,
    /// Names of the variables (axis 1), for per-variable metrics.
    variables: Vec<String>,
}

enum Values {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Slot {
    fn per(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The examples of a run, split, normalised and ready to batch.
struct Prepared {
    origin: String,
    input: Slot,
    /// None for a model without a target (an autoencoder's loss compares
    /// its output with the input; metrics then do the same).
    target: Option<Slot>,
    /// The `valid` masks of `missing = mask`, fed unchanged.
    masks: Vec<Slot>,
    train: Vec<usize>,
    val: Vec<usize>,
    dropped: usize,
}

impl Prepared {
    /// Every slot fed to the graph: input, target, masks.
    fn slots(&self) -> impl Iterator<Item = &Slot> {
        std::iter::once(&self.input).chain(&self.target).chain(&self.masks)
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
    let (name, variables) = (field.name.clone(), field.variables.clone());
    match &field.value {
        ArrayValue::I32(a) => Slot {
            name,
            shape,
            fed: Values::I32(a.iter().copied().collect()),
            physical: None,
            stats: None,
            variables,
        },
        ArrayValue::F32(a) => {
            let mut fed: Vec<f32> = a.iter().copied().collect();
            let stats = normalize.then(|| saved.cloned().unwrap_or_else(|| Stats::from_examples(a, rows)));
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
            Slot { name, shape, fed: Values::F32(fed), physical, stats, variables }
        }
    }
}

fn prepare(
    module: &Module,
    config: &TrainConfig,
    base_dir: &Path,
    saved: Option<&Checkpoint>,
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
    let input = slot_of(x, per_variable, &train, stats_of(x), !has_target);
    let target_norm = per_variable && regression_targets(module);
    let target = data_field(Role::Target).map(|y| slot_of(y, target_norm, &train, stats_of(y), true));
    let masks =
        examples.fields.iter().filter(|f| f.mask).map(|f| slot_of(f, false, &train, None, false)).collect();
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
        train,
        val,
        dropped: examples.dropped,
    })
}

/// The compiled graphs of a run, one executable per batch size, with the
/// model's current state in the executable `owner`.
struct Engine {
    train_graph: Graph,
    infer_graph: Graph,
    exec: ExecOptions,
    train: BTreeMap<usize, Executable>,
    infer: BTreeMap<usize, Executable>,
    /// The batch size of the training executable holding the current state.
    owner: usize,
    /// Names of every parameter and state input of the training step.
    state_names: Vec<String>,
    /// Names of the parameter and model-state inputs of the inference graph.
    model_names: Vec<String>,
    loss: String,
    prediction: Option<String>,
    /// How many training steps the inference executables' state is behind.
    infer_stale: bool,
    seed: u64,
}

/// `graph` compiled for `batch` examples, its random key set to (seed, 0).
fn compiled(graph: &Graph, batch: usize, exec: &ExecOptions, seed: u64) -> Result<Executable, String> {
    let mut exe = Executable::compile(graph, batch, exec)?;
    for (name, value) in crate::feed::key_inputs(graph, seed)? {
        exe.set_input(&name, &value)?;
    }
    Ok(exe)
}

fn names_of(graph: &Graph, pred: impl Fn(&InputKind) -> bool) -> Vec<String> {
    graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, kind } if pred(kind) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn read(exe: &mut Executable, name: &str) -> Result<Vec<f32>, String> {
    Ok(exe.input_mut(name)?.to_vec())
}

fn write(exe: &mut Executable, name: &str, values: &[f32]) -> Result<(), String> {
    let dst = exe.input_mut(name)?;
    if dst.len() != values.len() {
        return Err(format!("`{name}` holds {} values, {} given", dst.len(), values.len()));
    }
    dst.copy_from_slice(values);
    Ok(())
}

impl Engine {
    fn new(module: &Module, threads: usize, checking: Checking, seed: u64) -> Result<Engine, String> {
        let train_graph = nnc_compiler::pipeline::optimized(module, nnc_compiler::ir::Mode::Train)?;
        let infer_graph = nnc_compiler::pipeline::optimized(module, nnc_compiler::ir::Mode::Infer)?;
        let state_names =
            names_of(&train_graph, |k| matches!(k, InputKind::Param { .. } | InputKind::State { .. }));
        let model_names =
            names_of(&infer_graph, |k| matches!(k, InputKind::Param { .. } | InputKind::State { .. }));
        let loss = train_graph
            .outputs
            .iter()
            .find(|o| o.kind == OutputKind::Loss)
            .map(|o| o.name.clone())
            .ok_or("the model has no loss")?;
        let predictions: Vec<&str> = infer_graph
            .outputs
            .iter()
            .filter(|o| o.kind == OutputKind::Prediction)
            .map(|o| o.name.as_str())
            .collect();
        let prediction = (predictions.len() == 1).then(|| predictions[0].to_string());
        Ok(Engine {
            train_graph,
            infer_graph,
            exec: ExecOptions { threads, checking, gemm: Gemm::Tuned },
            train: BTreeMap::new(),
            infer: BTreeMap::new(),
            owner: 0,
            state_names,
            model_names,
            loss,
            prediction,
            infer_stale: true,
            seed,
        })
    }

    /// Compiles the training executable for `batch` if needed.
    fn train_exe(&mut self, batch: usize) -> Result<(), String> {
        if !self.train.contains_key(&batch) {
            let exe = compiled(&self.train_graph, batch, &self.exec, self.seed)?;
            self.train.insert(batch, exe);
        }
        Ok(())
    }

    /// Compiles the inference executable for `batch` if needed.
    fn infer_exe(&mut self, batch: usize) -> Result<(), String> {
        if !self.infer.contains_key(&batch) {
            let exe = compiled(&self.infer_graph, batch, &self.exec, self.seed)?;
            self.infer.insert(batch, exe);
            self.infer_stale = true;
        }
        Ok(())
    }

    /// Sets the current state (parameters, model and optimiser state).
    fn set_state(&mut self, values: &[(String, ArrayD<f32>)]) -> Result<(), String> {
        let exe = self.train.get_mut(&self.owner).ok_or("no training executable")?;
        for (name, value) in values {
            write(exe, name, value.as_slice().ok_or("non-contiguous tensor")?)?;
        }
        self.infer_stale = true;
        Ok(())
    }

    /// The current value of every state input, with its shape.
    fn state(&mut self, names: &[String]) -> Result<Vec<(String, ArrayD<f32>)>, String> {
        let shapes: BTreeMap<String, Vec<usize>> =
            self.train[&self.owner].inputs().map(|(n, _, s)| (n.to_string(), s.to_vec())).collect();
        let exe = self.train.get_mut(&self.owner).ok_or("no training executable")?;
        names
            .iter()
            .map(|name| {
                let shape = shapes.get(name).ok_or_else(|| format!("no state `{name}`"))?;
                let v = read(exe, name)?;
                let a = ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| e.to_string())?;
                Ok((name.clone(), a))
            })
            .collect()
    }

    /// Moves the current state into the training executable for `batch`.
    fn take_state(&mut self, batch: usize) -> Result<(), String> {
        if batch == self.owner {
            return Ok(());
        }
        let names = self.state_names.clone();
        let values = self.state(&names)?;
        self.owner = batch;
        self.set_state(&values)
    }

    /// Copies parameters and model state into every inference executable.
    fn sync_infer(&mut self) -> Result<(), String> {
        if !self.infer_stale {
            return Ok(());
        }
        let names = self.model_names.clone();
        let values = self.state(&names)?;
        for exe in self.infer.values_mut() {
            for (name, value) in &values {
                write(exe, name, value.as_slice().ok_or("non-contiguous tensor")?)?;
            }
        }
        self.infer_stale = false;
        Ok(())
    }
}

/// Copies the examples `rows` of `slot` into input `slot.name` of `exe`.
fn feed(exe: &mut Executable, slot: &Slot, rows: &[usize]) -> Result<(), String> {
    let per = slot.per();
    match &slot.fed {
        Values::F32(values) => {
            let dst = exe.input_mut(&slot.name)?;
            for (i, &r) in rows.iter().enumerate() {
                dst[i * per..(i + 1) * per].copy_from_slice(&values[r * per..(r + 1) * per]);
            }
        }
        Values::I32(values) => {
            let mut shape = vec![rows.len()];
            shape.extend(&slot.shape);
            let v: Vec<i32> =
                rows.iter().flat_map(|&r| values[r * per..(r + 1) * per].iter().copied()).collect();
            let a = ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| e.to_string())?;
            exe.set_input(&slot.name, &Tensor::Int(a))?;
        }
    }
    Ok(())
}

fn scalar(t: &Tensor<f32>) -> f64 {
    match t {
        Tensor::Float(a) => a.iter().next().map_or(f64::NAN, |&v| f64::from(v)),
        _ => f64::NAN,
    }
}

/// Loss and metrics of `rows` with the inference graph.
fn evaluate(
    engine: &mut Engine,
    data: &Prepared,
    rows: &[usize],
    batch: usize,
    wanted: &[Metric],
) -> Result<(f64, Vec<(String, f64)>), String> {
    if !wanted.is_empty() && engine.prediction.is_none() {
        return Err("metrics need exactly one prediction output (mark it with `output NAME`)".into());
    }
    let mut metrics = Metrics::new(wanted);
    metrics.name_variables(&data.target.as_ref().unwrap_or(&data.input).variables);
    let (mut sum, mut count) = (0f64, 0usize);
    for chunk in rows.chunks(batch) {
        engine.infer_exe(chunk.len())?;
        engine.sync_infer()?;
        let exe = engine.infer.get_mut(&chunk.len()).ok_or("no inference executable")?;
        for slot in data.slots() {
            feed(exe, slot, chunk)?;
        }
        exe.run()?;
        let loss = scalar(&exe.output(&engine.loss)?);
        sum += loss * chunk.len() as f64;
        count += chunk.len();
        if wanted.is_empty() {
            continue;
        }
        let Some(pred_name) = &engine.prediction else { continue };
        let Tensor::Float(mut pred) = exe.output(pred_name)? else {
            return Err(format!("prediction `{pred_name}` is not f32"));
        };
        // Metrics compare the prediction with the target, or with the
        // input for a model without one.
        let reference = data.target.as_ref().unwrap_or(&data.input);
        if let Some(stats) = &reference.stats {
            if pred.shape()[1..] == reference.shape[..] {
                let shape = pred.shape().to_vec();
                if let Some(s) = pred.as_slice_mut() {
                    stats.invert(s, &shape);
                }
            }
        }
        let per = reference.per();
        let mut tshape = vec![chunk.len()];
        tshape.extend(&reference.shape);
        match (&reference.fed, &reference.physical) {
            (_, Some(phys)) | (Values::F32(phys), None) => {
                let v: Vec<f32> =
                    chunk.iter().flat_map(|&r| phys[r * per..(r + 1) * per].iter().copied()).collect();
                let t = ArrayViewD::from_shape(IxDyn(&tshape), &v).map_err(|e| e.to_string())?;
                metrics.update(pred.view(), TargetView::F32(t))?;
            }
            (Values::I32(labels), None) => {
                let v: Vec<i32> =
                    chunk.iter().flat_map(|&r| labels[r * per..(r + 1) * per].iter().copied()).collect();
                let t = ArrayViewD::from_shape(IxDyn(&tshape), &v).map_err(|e| e.to_string())?;
                metrics.update(pred.view(), TargetView::I32(t))?;
            }
        }
    }
    Ok((sum / count.max(1) as f64, metrics.finish()))
}

/// The default checkpoint path of a model file: `DIR/STEM.safetensors`.
pub fn default_checkpoint(model_path: &Path) -> PathBuf {
    model_path.with_extension("safetensors")
}

/// The default run directory of a model file: `DIR/STEM.run`.
pub fn default_run_dir(model_path: &Path) -> PathBuf {
    model_path.with_extension("run")
}

/// Early-stopping bookkeeping.
struct Best {
    rule: Option<EarlyStop>,
    loss: Option<f64>,
    epoch: Option<usize>,
    bad: usize,
    params: Vec<(String, ArrayD<f32>)>,
}

/// Trains `module` (compiled from `source`, read from `model_path`).
pub fn train(
    module: &Module,
    source: &str,
    model_path: &Path,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Outcome, RunError> {
    let file = model_path.display();
    let config = module.train.clone().ok_or_else(|| format!("{file}: the model has no `train` section"))?;
    let epochs = opts.epochs.unwrap_or(config.epochs);
    let hash = source_hash(source);
    let fingerprint = Fingerprint::of(module);
    let mut warnings = vec![];
    let resumed = match &opts.resume {
        Some(path) => {
            let ckpt = Checkpoint::load(path).map_err(|e| e.to_string())?;
            check_model_name(&ckpt, module, path)?;
            let changes = match &ckpt.fingerprint {
                Some(saved) => fingerprint.changes_since(saved),
                None if ckpt.model_sha256 != hash => {
                    vec!["the model source (this checkpoint records only the hash of the whole file)"
                        .to_string()]
                }
                None => vec![],
            };
            if !changes.is_empty() {
                let list: String = changes.iter().map(|c| format!("\n  - {c}")).collect();
                if !opts.allow_changes {
                    return Err(format!(
                        "{}: the checkpoint was trained with another version of {file}; what changed:{list}\n\
                         resume with the file it was trained from, or pass --allow-changes to go on with the file \
                         as it is now (the run then differs from an uninterrupted one)",
                        path.display()
                    ).into());
                }
                warnings.push(format!("resuming although {file} changed (--allow-changes):{list}"));
            }
            if ckpt.stopped_early {
                return Ok(Outcome::nothing(format!(
                    "early stopping ended the run of {} at epoch {}{}",
                    path.display(),
                    ckpt.epoch,
                    ckpt.best_epoch
                        .map_or(String::new(), |b| format!(" (its parameters are those of epoch {b})"))
                )));
            }
            if ckpt.epoch >= epochs {
                return Ok(Outcome::nothing(format!(
                    "{} is already at epoch {} of {epochs}; give --epochs above {} to train on",
                    path.display(),
                    ckpt.epoch,
                    ckpt.epoch
                )));
            }
            if ckpt.threads != opts.threads {
                warnings.push(format!(
                    "the checkpoint was written by a run on {}, this one uses {}: the result will not be \
                     bit-identical to an uninterrupted run",
                    plural(ckpt.threads, "thread"),
                    plural(opts.threads, "thread")
                ));
            }
            Some(ckpt)
        }
        None => None,
    };
    // Every output path is checked before the work starts.
    if let Some(dir) = opts.checkpoint.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| {
            format!(
                "{}: cannot create the checkpoint's folder {}: {e}",
                opts.checkpoint.display(),
                dir.display()
            )
        })?;
    }
    fs::create_dir_all(&opts.run_dir)
        .map_err(|e| format!("{}: cannot create: {e}", opts.run_dir.display()))?;
    let base_dir = model_path.parent().unwrap_or(Path::new("."));
    let compile_start = Instant::now();
    let data = prepare(module, &config, base_dir, resumed.as_ref())?;
    let mut engine = Engine::new(module, opts.threads, opts.checking, config.seed)?;
    let batch = config.batch.min(data.train.len()).max(1);
    engine.train_exe(batch)?;
    engine.owner = batch;
    let initial = crate::init::initial_values(&engine.train_graph, config.seed)?;
    engine.set_state(&initial)?;
    let mut best = Best { rule: config.early_stop, loss: None, epoch: None, bad: 0, params: vec![] };
    let (mut first_epoch, mut step) = (0usize, 0u64);
    if let Some(ckpt) = &resumed {
        let mut values = vec![];
        for (name, value) in &initial {
            let saved = ckpt.tensor(name).ok_or_else(|| {
                format!(
                    "{}: the checkpoint has no tensor `{name}`",
                    opts.resume.as_ref().map_or(String::new(), |p| p.display().to_string())
                )
            })?;
            if saved.shape() != value.shape() {
                return Err(format!(
                    "checkpoint tensor `{name}` has shape {:?}, the model needs {:?}",
                    saved.shape(),
                    value.shape()
                )
                .into());
            }
            values.push((name.clone(), saved.as_standard_layout().into_owned()));
        }
        engine.set_state(&values)?;
        first_epoch = ckpt.epoch;
        step = ckpt.step;
        best.loss = ckpt.best_val_loss;
        best.epoch = ckpt.best_epoch;
        best.bad = ckpt.bad_epochs;
        best.params = ckpt.best.clone();
    }
    if data.val.is_empty() {
        warnings.push(format!(
            "no validation examples: all {} examples train, so there is no validation loss, no metrics{}",
            data.train.len(),
            if config.early_stop.is_some() { " and no early stopping" } else { "" }
        ));
    }
    let compile_ms = compile_start.elapsed().as_secs_f64() * 1e3;
    let steps_per_epoch = data.train.len().div_ceil(batch);
    observer.start(&RunInfo {
        model: module.name.clone(),
        origin: data.origin.clone(),
        n_train: data.train.len(),
        n_val: data.val.len(),
        dropped: data.dropped,
        epochs,
        first_epoch,
        steps_per_epoch,
        batch,
        threads: opts.threads,
        compile_ms,
        normalized: std::iter::once(&data.input)
            .chain(&data.target)
            .filter(|s| s.stats.is_some())
            .map(|s| s.name.clone())
            .collect(),
        warnings,
    });
    let log_path = opts.run_dir.join("log.jsonl");
    let mut log = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed.is_some())
        .truncate(resumed.is_none())
        .open(&log_path)
        .map_err(|e| format!("{}: cannot write: {e}", log_path.display()))?;
    let model_names = engine.model_names.clone();
    let state_names = engine.state_names.clone();
    let base_lr = config.optimizer.lr();
    let key_names = names_of(&engine.train_graph, |k| matches!(k, InputKind::Key));
    let mut records = vec![];
    let mut stopped_early = false;
    let mut epoch = first_epoch;
    while epoch < epochs {
        let start = Instant::now();
        let lr = schedule::lr_at(&config.schedule, base_lr, epoch, epochs);
        let order = split::epoch_order(&data.train, config.seed, epoch);
        observer.epoch_start(epoch + 1, epochs, steps_per_epoch);
        let (mut sum, mut seen) = (0f64, 0usize);
        for (i, chunk) in order.chunks(batch).enumerate() {
            engine.train_exe(chunk.len())?;
            engine.take_state(chunk.len())?;
            let exe = engine.train.get_mut(&chunk.len()).ok_or("no training executable")?;
            for slot in data.slots() {
                feed(exe, slot, chunk)?;
            }
            exe.set_input(
                nnc_compiler::update::LR,
                &Tensor::Float(ArrayD::from_elem(IxDyn(&[]), lr as f32)),
            )?;
            let key = rng::seed_key(config.seed)[0];
            for name in &key_names {
                let k = ndarray::arr1(&[key, (step + 1) as u32 as i32]).into_dyn();
                exe.set_input(name, &Tensor::Int(k))?;
            }
            exe.run()?;
            let loss = scalar(&exe.output(&engine.loss)?);
            if !loss.is_finite() {
                let kept = if first_epoch < epoch || resumed.is_some() {
                    format!("; the last good checkpoint ({}) is kept", opts.checkpoint.display())
                } else {
                    String::new()
                };
                return Err(format!(
                    "training diverged: the loss is {loss} at step {} (epoch {}, batch {} of {steps_per_epoch}){kept}; \
                     try a smaller learning rate or `clip_grad_norm`",
                    step + 1,
                    epoch + 1,
                    i + 1
                ).into());
            }
            exe.carry_state()?;
            engine.infer_stale = true;
            step += 1;
            sum += loss * chunk.len() as f64;
            seen += chunk.len();
            observer.step(i + 1, sum / seen as f64);
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let (val_loss, metrics) = if data.val.is_empty() {
            (None, vec![])
        } else {
            let (l, m) = evaluate(&mut engine, &data, &data.val, batch, &config.metrics)?;
            (Some(l), m)
        };
        let mut improved = false;
        if let Some(v) = val_loss {
            let min_delta = best.rule.map_or(0.0, |r| r.min_delta);
            if best.loss.is_none_or(|b| v < b - min_delta) {
                best.loss = Some(v);
                best.epoch = Some(epoch + 1);
                best.bad = 0;
                improved = true;
                if best.rule.is_some() {
                    best.params = engine.state(&model_names)?;
                }
            } else {
                best.bad += 1;
            }
        }
        if let Some(rule) = best.rule {
            if val_loss.is_some() && best.bad >= rule.patience {
                stopped_early = true;
            }
        }
        let record = EpochRecord {
            epoch: epoch + 1,
            epochs,
            step,
            lr,
            seconds: start.elapsed().as_secs_f64(),
            samples_per_s: seen as f64 / train_seconds.max(1e-9),
            train_loss: sum / seen.max(1) as f64,
            val_loss,
            metrics,
            best: improved,
        };
        epoch += 1;
        let finished = stopped_early || epoch >= epochs;
        if finished && best.rule.is_some() && !best.params.is_empty() {
            // Early stopping ends on the best parameters seen.
            let params = best.params.clone();
            engine.set_state(&params)?;
        }
        let ckpt = Checkpoint {
            model: module.name.clone(),
            model_sha256: hash.clone(),
            fingerprint: Some(fingerprint.clone()),
            tensors: engine.state(&state_names)?,
            normalize: std::iter::once(&data.input)
                .chain(&data.target)
                .filter_map(|s| s.stats.clone().map(|st| (s.name.clone(), st)))
                .collect(),
            best: if best.rule.is_some() { best.params.clone() } else { vec![] },
            epoch,
            step,
            seed: config.seed,
            threads: opts.threads,
            lr,
            best_val_loss: best.loss,
            best_epoch: best.epoch,
            bad_epochs: best.bad,
            finished,
            stopped_early,
        };
        ckpt.save(&opts.checkpoint).map_err(|e| e.to_string())?;
        writeln!(log, "{}", record.to_json())
            .map_err(|e| format!("{}: cannot write: {e}", log_path.display()))?;
        observer.epoch_end(&record);
        records.push(record);
        if stopped_early {
            break;
        }
    }
    Ok(Outcome {
        records,
        stopped_early,
        best_epoch: best.rule.and(best.epoch),
        checkpoint: opts.checkpoint.clone(),
        log: log_path,
        nothing_to_do: None,
    })
}

impl Outcome {
    /// A run that had nothing to train, for `reason`.
    fn nothing(reason: String) -> Outcome {
        Outcome {
            records: vec![],
            stopped_early: false,
            best_epoch: None,
            checkpoint: PathBuf::new(),
            log: PathBuf::new(),
            nothing_to_do: Some(reason),
        }
    }
}

/// `n` and `noun`, in the plural unless `n` is 1: `1 thread`, `2 threads`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Refuses a checkpoint written for a model of another name.
fn check_model_name(ckpt: &Checkpoint, module: &Module, path: &Path) -> Result<(), String> {
    if ckpt.model == module.name {
        return Ok(());
    }
    Err(format!(
        "{}: the checkpoint was written for model `{}`, this is model `{}`",
        path.display(),
        ckpt.model,
        module.name
    ))
}

/// Which examples `nnc eval` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    Validation,
    Training,
    All,
}

/// The result of `nnc eval`.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub origin: String,
    pub examples: usize,
    pub loss: f64,
    /// The loss compares normalised targets (not physical units).
    pub loss_normalized: bool,
    pub metrics: Vec<(String, f64)>,
}

/// Puts a checkpoint's parameters and model state into a fresh engine.
fn load_model(
    module: &Module,
    checkpoint_path: &Path,
    threads: usize,
    batch: usize,
) -> Result<(Engine, Checkpoint), String> {
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let seed = module.train.as_ref().map_or(0, |t| t.seed);
    let mut engine = Engine::new(module, threads, Checking::Unchecked, seed)?;
    engine.train_exe(batch)?;
    engine.owner = batch;
    let mut values = vec![];
    for name in engine.model_names.clone() {
        let saved = ckpt
            .tensor(&name)
            .ok_or_else(|| format!("{}: the checkpoint has no tensor `{name}`", checkpoint_path.display()))?;
        values.push((name, saved.as_standard_layout().into_owned()));
    }
    let shapes: BTreeMap<String, Vec<usize>> =
        engine.train[&batch].inputs().map(|(n, _, s)| (n.to_string(), s.to_vec())).collect();
    for (name, value) in &values {
        if shapes.get(name).is_some_and(|s| s.as_slice() != value.shape()) {
            return Err(format!(
                "{}: tensor `{name}` has shape {:?}, the model needs {:?}",
                checkpoint_path.display(),
                value.shape(),
                shapes[name]
            ));
        }
    }
    engine.set_state(&values)?;
    Ok((engine, ckpt))
}

/// `nnc eval`: the loss and metrics of a checkpoint on a subset of the
/// model's data, or on every example of `data_file` (an `.npz` archive with
/// arrays named like the model's input and target), normalised with the
/// checkpoint's statistics.
pub fn eval(
    module: &Module,
    model_path: &Path,
    checkpoint_path: &Path,
    subset: Subset,
    data_file: Option<&Path>,
    threads: usize,
) -> Result<Evaluation, RunError> {
    let mut config = module
        .train
        .clone()
        .ok_or_else(|| format!("{}: the model has no `train` section", model_path.display()))?;
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let mut base_dir = model_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut subset = subset;
    if let Some(file) = data_file {
        // Another data set: an .npz archive with arrays named like the
        // model's input and target, every example scored.
        let first = |kind: fn(&InputKind) -> bool| names_of(&module.train_graph, kind).into_iter().next();
        let x = first(|k| matches!(k, InputKind::Data)).ok_or("the model has no input")?;
        let y = first(|k| matches!(k, InputKind::Target)).unwrap_or_else(|| x.clone());
        config.data = DataSource::Npz { path: file.display().to_string(), x, y };
        base_dir = PathBuf::from(".");
        subset = Subset::All;
    }
    let data = prepare(module, &config, &base_dir, Some(&ckpt))?;
    let rows: Vec<usize> = match subset {
        Subset::Validation => data.val.clone(),
        Subset::Training => data.train.clone(),
        Subset::All => (0..data.train.len() + data.val.len()).collect(),
    };
    if rows.is_empty() {
        let name = format!("{subset:?}").to_lowercase();
        return Err(format!("{}: the {name} subset is empty", data.origin).into());
    }
    let batch = config.batch.min(rows.len()).max(1);
    let (mut engine, _) = load_model(module, checkpoint_path, threads, batch)?;
    let (loss, metrics) = evaluate(&mut engine, &data, &rows, batch, &config.metrics)?;
    let loss_normalized = data.target.as_ref().unwrap_or(&data.input).stats.is_some();
    Ok(Evaluation { origin: data.origin, examples: rows.len(), loss, loss_normalized, metrics })
}

/// `nnc predict`: the model's prediction for every example of `input`
/// (leading axis = examples, in physical units), with the checkpoint's
/// normalisation applied to the input and inverted on the prediction.
/// Errors about the input name it `input_label` (its file).
pub fn predict(
    module: &Module,
    checkpoint_path: &Path,
    input: &ArrayD<f32>,
    input_label: &str,
    threads: usize,
) -> Result<ArrayD<f32>, String> {
    let mut graph = module.infer_graph.clone();
    graph.outputs.retain(|o| o.kind == OutputKind::Prediction);
    let Some(pred) = graph.outputs.first().map(|o| o.name.clone()) else {
        return Err("the model has no prediction output".into());
    };
    if graph.outputs.len() > 1 {
        graph.outputs.truncate(1);
    }
    let graph = nnc_compiler::opt::optimize(&graph)?;
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let data_inputs: Vec<(String, Vec<Dim>, DType)> = graph
        .inputs()
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, kind: InputKind::Data } => {
                Some((name.clone(), n.ty.shape.dims().to_vec(), n.ty.dtype))
            }
            _ => None,
        })
        .collect();
    let [(in_name, dims, dtype)] = data_inputs.as_slice() else {
        return Err(format!("predict needs a model with one input; this one has {}", data_inputs.len()));
    };
    if *dtype != DType::F32 {
        return Err(format!("input `{in_name}` is {}, predict reads f32 arrays", dtype.name()));
    }
    let per_shape: Vec<usize> =
        dims.iter().skip(1).map(|d| if let Dim::Known(k) = d { *k } else { 0 }).collect();
    let n = input.shape().first().copied().unwrap_or(0);
    let per: usize = per_shape.iter().product();
    if n == 0 || input.len() != n * per {
        return Err(format!(
            "{input_label}: the array has shape {:?}; the model's input `{in_name}` needs [N, {}]",
            input.shape(),
            per_shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(i) = input.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "{input_label}: the array holds a non-finite value at flat index {i} (example {})",
            i / per
        ));
    }
    let mut x: Vec<f32> = input.iter().copied().collect();
    let mut shape = vec![n];
    shape.extend(&per_shape);
    if let Some(stats) = ckpt.stats(in_name) {
        stats.apply(&mut x, &shape);
    }
    let batch = module.train.as_ref().map_or(32, |t| t.batch).clamp(1, n);
    let seed = module.train.as_ref().map_or(0, |t| t.seed);
    let exec = ExecOptions { threads, checking: Checking::Unchecked, gemm: Gemm::Tuned };
    let mut exes: BTreeMap<usize, Executable> = BTreeMap::new();
    let mut out: Vec<f32> = vec![];
    let mut out_shape = vec![];
    let model_names = names_of(&graph, |k| matches!(k, InputKind::Param { .. } | InputKind::State { .. }));
    for start in (0..n).step_by(batch) {
        let b = batch.min(n - start);
        if let std::collections::btree_map::Entry::Vacant(slot) = exes.entry(b) {
            let mut exe = compiled(&graph, b, &exec, seed)?;
            for name in &model_names {
                let saved = ckpt.tensor(name).ok_or_else(|| {
                    format!("{}: the checkpoint has no tensor `{name}`", checkpoint_path.display())
                })?;
                let saved = saved.as_standard_layout();
                write(&mut exe, name, saved.as_slice().ok_or("non-contiguous tensor")?)
                    .map_err(|e| format!("{}: {e}", checkpoint_path.display()))?;
            }
            slot.insert(exe);
        }
        let exe = exes.get_mut(&b).ok_or("no executable")?;
        write(exe, in_name, &x[start * per..(start + b) * per])?;
        exe.run()?;
        let Tensor::Float(y) = exe.output(&pred)? else {
            return Err(format!("prediction `{pred}` is not f32"));
        };
        out_shape = y.shape()[1..].to_vec();
        out.extend(y.iter());
    }
    let mut full = vec![n];
    full.extend(&out_shape);
    let target_name = names_of(&module.infer_graph, |k| matches!(k, InputKind::Target)).into_iter().next();
    // Back to physical units: the target's statistics, or the input's for a
    // model without a target whose prediction has the input's shape.
    let stats = match target_name.as_deref() {
        Some(t) => ckpt.stats(t),
        None => ckpt.stats(in_name).filter(|_| out_shape == per_shape),
    };
    if let Some(stats) = stats {
        stats.invert(&mut out, &full);
    }
    ArrayD::from_shape_vec(IxDyn(&full), out).map_err(|e| e.to_string())
}

/// Labels of the configured metrics, in order.
pub fn metric_labels(config: &TrainConfig) -> Vec<String> {
    config.metrics.iter().map(metrics::label).collect()
}

/// Writes `text` to `path` atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::tensor_file::write_atomically(path, bytes).map_err(|e| e.to_string())
}
