//! The training loop of `nnc train`: its options, the run information and
//! per-epoch records reported to an [`Observer`], and the outcome.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::ArrayD;
use nnc_compiler::codegen::Checking;
use nnc_compiler::config::{EarlyStop, Schedule};
use nnc_compiler::Module;

use super::checkpoint::{check_model_name, source_hash, Checkpoint, Fingerprint, NNC_VERSION};
use super::collective::Ranks;
use super::engine::{evaluate, Engine};
use super::examples::prepare;
use super::{schedule, split, RunError};

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
    /// The ranks of a data-parallel run (see [`super::collective`]): each
    /// trains on its share of every batch and rank 0 alone writes the
    /// checkpoint, the log and the run record. `None`: one process.
    pub ranks: Option<Ranks>,
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
    /// The losses, in the order their optimisers run (`loss` alone for a
    /// model with one loss).
    pub losses: Vec<String>,
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
    /// Training iterations (batches) so far; every optimiser takes one step
    /// per batch.
    pub step: u64,
    /// The learning rate of the first optimiser at the epoch's last step
    /// (`losses` holds every optimiser's).
    pub lr: f64,
    pub seconds: f64,
    /// Training examples per second of the epoch's training part (feeding
    /// the batches included, validation not).
    pub samples_per_s: f64,
    /// Training examples per second of the compiled steps alone: what the
    /// step could sustain if feeding the batches took no time.
    pub step_samples_per_s: f64,
    /// The share of the epoch's time (validation included) spent feeding
    /// batches to the training steps: near 1, data feeding and not compute
    /// limits training.
    pub loader_share: f64,
    /// In a data-parallel run, the share of the epoch's time spent summing
    /// the ranks' gradients (and broadcasting model state), waiting for
    /// the slowest rank included; `None` on one process.
    pub reduce_share: Option<f64>,
    /// The mean training loss over the epoch's batches; with several
    /// losses, the sum of their means.
    pub train_loss: f64,
    /// The validation loss; with several losses, the sum (what early
    /// stopping and `best` watch).
    pub val_loss: Option<f64>,
    /// Every loss, in the order its optimiser runs.
    pub losses: Vec<LossRecord>,
    /// Validation metrics in physical units, `(label, value)`.
    pub metrics: Vec<(String, f64)>,
    /// The validation loss improved on every earlier epoch.
    pub best: bool,
}

/// One loss in an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct LossRecord {
    pub name: String,
    /// The learning rate of its optimiser.
    pub lr: f64,
    /// Its mean over the epoch's training batches.
    pub train: f64,
    /// Its mean over the validation examples.
    pub val: Option<f64>,
}

impl EpochRecord {
    /// The JSON object of this record as written to `log.jsonl`. A model
    /// with several losses also has `lr.NAME`, `train_loss.NAME` and
    /// `val_loss.NAME` for every loss (`lr` is then the first optimiser's,
    /// `train_loss` and `val_loss` the sums).
    pub fn to_json(&self) -> serde_json::Value {
        let num = |v: f64| if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null };
        let mut m = serde_json::Map::new();
        m.insert("epoch".into(), self.epoch.into());
        m.insert("step".into(), self.step.into());
        m.insert("lr".into(), num(self.lr));
        m.insert("seconds".into(), num(self.seconds));
        m.insert("samples_per_s".into(), num(self.samples_per_s));
        m.insert("step_samples_per_s".into(), num(self.step_samples_per_s));
        m.insert("loader_share".into(), num(self.loader_share));
        if let Some(share) = self.reduce_share {
            m.insert("reduce_share".into(), num(share));
        }
        m.insert("train_loss".into(), num(self.train_loss));
        if let Some(v) = self.val_loss {
            m.insert("val_loss".into(), num(v));
        }
        if self.losses.len() > 1 {
            for loss in &self.losses {
                m.insert(format!("lr.{}", loss.name), num(loss.lr));
                m.insert(format!("train_loss.{}", loss.name), num(loss.train));
                if let Some(v) = loss.val {
                    m.insert(format!("val_loss.{}", loss.name), num(v));
                }
            }
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
    /// After `done` batches of the epoch; `losses` holds the running mean of
    /// every loss, in the order of [`RunInfo::losses`].
    fn step(&mut self, _done: usize, _losses: &[f64]) {}
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

/// What produced a run directory: the model file and the checkpoint, as
/// `run.json` in the directory records them (absolute paths), so that `nnc
/// plot --maps` and `--scatter` find them from the directory alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub model: PathBuf,
    pub checkpoint: PathBuf,
}

impl RunRecord {
    /// The file name of the record in a run directory.
    pub const FILE: &'static str = "run.json";

    /// Writes `run.json` into `run_dir` (atomically).
    pub fn save(&self, run_dir: &Path) -> Result<(), String> {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let json = serde_json::json!({
            "model": absolute(&self.model).display().to_string(),
            "checkpoint": absolute(&self.checkpoint).display().to_string(),
        });
        super::write_file(&run_dir.join(Self::FILE), format!("{json:#}\n").as_bytes())
    }

    /// The model and checkpoint of `run_dir`: its `run.json`, else (a run
    /// directory of an older nnc) the defaults of `nnc train`, `DIR/STEM.nn`
    /// and `DIR/STEM.safetensors` for the directory `DIR/STEM.run`. An
    /// unreadable record is an error naming it.
    pub fn of(run_dir: &Path) -> Result<RunRecord, String> {
        let path = run_dir.join(Self::FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
                let field =
                    |key: &str| {
                        value.get(key).and_then(|v| v.as_str()).map(PathBuf::from).ok_or_else(|| {
                            format!("{}: no `{key}` (the path of the {key} file)", path.display())
                        })
                    };
                Ok(RunRecord { model: field("model")?, checkpoint: field("checkpoint")? })
            }
            Err(_) => {
                let model = run_dir.with_extension("nn");
                Ok(RunRecord { checkpoint: default_checkpoint(&model), model })
            }
        }
    }
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
            let mut changes = changes;
            match ckpt.written_by.as_deref() {
                Some(v) if v != NNC_VERSION && !changes.is_empty() => changes.push(format!(
                    "nnc: the checkpoint was written by nnc {v}, this is nnc {NNC_VERSION} (another version \
                     may compile the same file to another graph)"
                )),
                Some(v) if v != NNC_VERSION => warnings.push(format!(
                    "{} was written by nnc {v}, this is nnc {NNC_VERSION}; the model compiles to the same graph",
                    path.display()
                )),
                _ => {}
            }
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
    // Rank 0 writes for the run.
    let writer = opts.ranks.as_ref().is_none_or(|r| r.0.rank() == 0);
    if writer {
        RunRecord { model: model_path.to_path_buf(), checkpoint: opts.checkpoint.clone() }
            .save(&opts.run_dir)?;
    }
    let base_dir = model_path.parent().unwrap_or(Path::new("."));
    let compile_start = Instant::now();
    let data = prepare(module, &config, base_dir, resumed.as_ref(), false)?;
    let collective = opts.ranks.as_ref().map(|r| r.0.clone());
    let mut engine = Engine::new(module, opts.threads, opts.checking, config.seed, collective)?;
    let batch = config.batch.min(data.train.len()).max(1);
    engine.train_exe(batch)?;
    engine.owner = batch;
    let mut initial = vec![];
    for graph in engine.state_graphs() {
        for (name, value) in super::init::initial_values(graph, config.seed)? {
            if !initial.iter().any(|(n, _): &(String, _)| *n == name) {
                initial.push((name, value));
            }
        }
    }
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
    // A warm-up in epochs against the `train` section's `epochs` is the
    // compiler's warning already; here against `--epochs` or in steps.
    let in_steps = matches!(config.schedule, Schedule::Cosine { warmup_steps, .. } if warmup_steps > 0);
    if in_steps || epochs != config.epochs {
        warnings.extend(schedule::warmup_warning(&config.schedule, epochs, steps_per_epoch));
    }
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
        losses: engine.losses(),
        warnings,
    });
    let log_path = opts.run_dir.join("log.jsonl");
    let mut log = match writer {
        true => Some(
            OpenOptions::new()
                .create(true)
                .write(true)
                .append(resumed.is_some())
                .truncate(resumed.is_none())
                .open(&log_path)
                .map_err(|e| format!("{}: cannot write: {e}", log_path.display()))?,
        ),
        false => None,
    };
    let model_names = engine.model_names.clone();
    let state_names = engine.state_names.clone();
    let losses = engine.losses();
    let base_lrs: Vec<f64> = engine.steps.iter().map(|s| s.base_lr).collect();
    let mut records = vec![];
    let mut stopped_early = false;
    let mut epoch = first_epoch;
    while epoch < epochs {
        let start = Instant::now();
        engine.take_timing();
        let lrs_at = |step: u64| -> Vec<f64> {
            let at = schedule::Progress { epoch, epochs, step, steps_per_epoch };
            base_lrs.iter().map(|&lr| schedule::lr_at(&config.schedule, lr, at)).collect()
        };
        let mut lrs = lrs_at(step);
        let order = split::epoch_order(&data.train, config.seed, epoch);
        observer.epoch_start(epoch + 1, epochs, steps_per_epoch);
        let (mut sums, mut seen) = (vec![0f64; losses.len()], 0usize);
        for (i, chunk) in order.chunks(batch).enumerate() {
            lrs = lrs_at(step);
            let values = engine.iterate(&data, chunk, &lrs, step + 1)?;
            if let Some((k, loss)) = values.iter().enumerate().find(|(_, l)| !l.is_finite()) {
                let kept = if first_epoch < epoch || resumed.is_some() {
                    format!("; the last good checkpoint ({}) is kept", opts.checkpoint.display())
                } else {
                    String::new()
                };
                let which =
                    if losses.len() > 1 { format!("the loss `{}`", losses[k]) } else { "the loss".into() };
                return Err(format!(
                    "training diverged: {which} is {loss} at step {} (epoch {}, batch {} of {steps_per_epoch}){kept}; \
                     try a smaller learning rate or `clip_grad_norm`",
                    step + 1,
                    epoch + 1,
                    i + 1
                ).into());
            }
            step += 1;
            for (sum, loss) in sums.iter_mut().zip(&values) {
                *sum += loss * chunk.len() as f64;
            }
            seen += chunk.len();
            let means: Vec<f64> = sums.iter().map(|s| s / seen as f64).collect();
            observer.step(i + 1, &means);
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let timing = engine.take_timing();
        let (val_losses, metrics) = if data.val.is_empty() {
            (None, vec![])
        } else {
            let scores = evaluate(&mut engine, &data, &data.val, batch, &config.metrics)?;
            (Some(scores.losses), scores.metrics)
        };
        // Early stopping watches the sum of the losses.
        let val_loss = val_losses.as_ref().map(|v| v.iter().sum::<f64>());
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
        let train_means: Vec<f64> = sums.iter().map(|s| s / seen.max(1) as f64).collect();
        let record = EpochRecord {
            epoch: epoch + 1,
            epochs,
            step,
            lr: lrs[0],
            seconds: start.elapsed().as_secs_f64(),
            samples_per_s: seen as f64 / train_seconds.max(1e-9),
            step_samples_per_s: seen as f64 / timing.compute.as_secs_f64().max(1e-9),
            loader_share: timing.load.as_secs_f64() / start.elapsed().as_secs_f64().max(1e-9),
            reduce_share: opts
                .ranks
                .as_ref()
                .map(|_| timing.reduce.as_secs_f64() / start.elapsed().as_secs_f64().max(1e-9)),
            train_loss: train_means.iter().sum(),
            val_loss,
            losses: losses
                .iter()
                .enumerate()
                .map(|(k, name)| LossRecord {
                    name: name.clone(),
                    lr: lrs[k],
                    train: train_means[k],
                    val: val_losses.as_ref().map(|v| v[k]),
                })
                .collect(),
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
            written_by: None,
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
            lr: lrs[0],
            best_val_loss: best.loss,
            best_epoch: best.epoch,
            bad_epochs: best.bad,
            finished,
            stopped_early,
        };
        if let Some(log) = log.as_mut() {
            ckpt.save(&opts.checkpoint).map_err(|e| e.to_string())?;
            writeln!(log, "{}", record.to_json())
                .map_err(|e| format!("{}: cannot write: {e}", log_path.display()))?;
        }
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
