//! Training checkpoints: one safetensors file that holds everything a run
//! needs to continue exactly where it stopped.
//!
//! Tensors (all f32):
//! - every parameter and model state tensor under its own name, in
//!   PyTorch's layouts (`h.dense_1.weight` is `[out, in]`), so
//!   `safetensors.torch.load_file` gives a state dict;
//! - optimiser state under `optim.PARAM.SLOT` and `optim.step`; a model
//!   with several losses has every optimiser's, under `optim.LOSS.PARAM.SLOT`
//!   and `optim.LOSS.step`;
//! - normalisation statistics as `normalize.NAME.mean` / `normalize.NAME.std`
//!   for every normalised input or target `NAME` (and, for sequences, the
//!   variables' axis in the metadata `normalize.NAME.axis`);
//! - with early stopping, the best parameters so far as `best.NAME`.
//!
//! Metadata (strings): `format = pt`, `nnc.checkpoint` (the format version),
//! `nnc.version` (the version of nnc that wrote it), `model`, `model_sha256` (of the whole `.nn` source), the run's
//! [`Fingerprint`] (`graph_sha256`, one `train.KEY` per `train` key the
//! step depends on and one `const.NAME` per constant of the model: its
//! SHA-256 and origin), `epoch` (completed epochs), `step` (training
//! iterations taken: every optimiser steps once per batch), `seed`, `rng`
//! (how every random draw derives from seed, epoch and step — the generator
//! is counter-based, so these numbers are its whole state), `threads`, `lr`
//! (of the first optimiser), the early-stopping record (`best_val_loss`,
//! `best_epoch`, `bad_epochs`), `finished` and `stopped_early`.
//!
//! Files are written atomically ([`tensor_file::save`]: temporary file,
//! fsync, rename), so a crash never leaves a half-written checkpoint and an
//! existing one is only ever replaced by a complete one.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayD;
use sha2::{Digest, Sha256};

use nnc_compiler::config::{LossOptimizer, ParamSet, DEFAULT_LOSS};
use nnc_compiler::Module;

use super::normalize::Stats;
use crate::io::error::Error;
use crate::io::tensor_file::{self, TensorFile};

/// The checkpoint format version written to `nnc.checkpoint`.
pub const VERSION: &str = "1";

/// The version of this nnc, recorded in the checkpoints it writes.
pub const NNC_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How the random draws of a run derive from the seed, recorded in `rng`.
pub const RNG: &str = "philox4x32-10; shuffle stream `train.shuffle` + epoch; dropout key (seed, step + 1)";

/// The state of a run at the end of an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: String,
    pub model_sha256: String,
    /// The version of nnc that wrote the file, as read from it (`None`
    /// before it was first written, and in files of versions that did not
    /// record it); [`Checkpoint::save`] always records this nnc's version.
    pub written_by: Option<String>,
    /// `None` in checkpoints of format 1 written before fingerprints were
    /// recorded; such a run resumes only from an identical source file.
    pub fingerprint: Option<Fingerprint>,
    /// Parameters, model state and optimiser state, by input name.
    pub tensors: Vec<(String, ArrayD<f32>)>,
    /// Normalisation statistics by input or target name.
    pub normalize: Vec<(String, Stats)>,
    /// The best parameters and model state (early stopping only).
    pub best: Vec<(String, ArrayD<f32>)>,
    pub epoch: usize,
    pub step: u64,
    pub seed: u64,
    pub threads: usize,
    pub lr: f64,
    pub best_val_loss: Option<f64>,
    pub best_epoch: Option<usize>,
    pub bad_epochs: usize,
    /// The run reached its last epoch or stopped early.
    pub finished: bool,
    /// Early stopping ended the run (resuming it has nothing left to do).
    pub stopped_early: bool,
}

/// The hex SHA-256 of a model's source text.
pub fn source_hash(source: &str) -> String {
    Sha256::digest(source.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What a run's parameters and optimiser steps depend on, recorded in its
/// checkpoints and compared when a run resumes: the model's graph (layers,
/// shapes, parameter names and initialisation; not comments, layout or
/// source positions), the `train` keys that change the step or the
/// batches it sees, and the values of the model's constants. Keys that may
/// change between the runs of one training (`epochs`, `metrics`,
/// `early_stop`, `checkpoint`) are left out. `nnc eval` and `nnc predict`
/// compare the constants.
#[derive(Clone, Debug, PartialEq)]
pub struct Fingerprint {
    /// Hex SHA-256 of the training graph's text without source positions.
    pub graph: String,
    /// `(key, value)` of the `train` keys the step depends on, as checked.
    pub keys: Vec<(String, String)>,
    /// Every constant of the model (stored as `const.NAME = SHA256 ORIGIN`).
    pub constants: Vec<ConstantPrint>,
}

/// A constant as a [`Fingerprint`] records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantPrint {
    pub name: String,
    /// Hex SHA-256 of its type and values ([`nnc_compiler::sema::Constant`]).
    pub sha256: String,
    /// Where its values came from, as written (`npy("mask.npy")`).
    pub origin: String,
}

impl ConstantPrint {
    /// The metadata value: `SHA256 ORIGIN`.
    fn text(&self) -> String {
        format!("{} {}", self.sha256, self.origin)
    }

    fn parse(name: &str, text: &str) -> ConstantPrint {
        let (sha256, origin) = text.split_once(' ').unwrap_or((text, ""));
        ConstantPrint { name: name.to_string(), sha256: sha256.to_string(), origin: origin.to_string() }
    }
}

/// The metadata key prefix of a constant's fingerprint.
const CONST_PREFIX: &str = "const.";

/// The `train` keys of a [`Fingerprint`], as stored (`train.KEY`).
const FINGERPRINT_KEYS: [&str; 9] =
    ["data", "split", "normalize", "missing", "batch", "seed", "optimizer", "schedule", "clip_grad_norm"];

impl Fingerprint {
    /// The fingerprint of a checked module.
    pub fn of(module: &Module) -> Fingerprint {
        let text = nnc_compiler::ir::print::print(&module.train_graph);
        let graph: String = text.lines().map(|l| without_position(l).to_string() + "\n").collect();
        let keys = match &module.train {
            Some(c) => vec![
                format!("{:?}", c.data),
                format!("{:?}", c.split),
                format!("{:?}", c.normalize),
                format!("{:?}", c.missing),
                c.batch.to_string(),
                c.seed.to_string(),
                optimizers_text(&c.optimizers),
                format!("{:?}", c.schedule),
                format!("{:?}", c.clip_grad_norm),
            ],
            None => vec![],
        };
        Fingerprint {
            graph: source_hash(&graph),
            keys: FINGERPRINT_KEYS.iter().map(|k| k.to_string()).zip(keys).collect(),
            constants: module
                .constants
                .iter()
                .map(|c| ConstantPrint {
                    name: c.name.clone(),
                    sha256: c.sha256.clone(),
                    origin: c.origin.clone(),
                })
                .collect(),
        }
    }

    /// What differs between the constants of `saved` and `self`, one phrase
    /// per constant that changed, appeared or disappeared.
    pub fn constant_changes_since(&self, saved: &Fingerprint) -> Vec<String> {
        let mut changes = vec![];
        for now in &self.constants {
            match saved.constants.iter().find(|c| c.name == now.name) {
                Some(was) if was.sha256 != now.sha256 => changes.push(format!(
                    "the constant `{}` ({}): its values differ (SHA-256 {} then, {} now)",
                    now.name,
                    now.origin,
                    short_hash(&was.sha256),
                    short_hash(&now.sha256)
                )),
                Some(_) => {}
                None => changes
                    .push(format!("the constant `{}` ({}): not in the checkpoint", now.name, now.origin)),
            }
        }
        for was in &saved.constants {
            if !self.constants.iter().any(|c| c.name == was.name) {
                changes.push(format!("the constant `{}` ({}): no longer in the model", was.name, was.origin));
            }
        }
        changes
    }

    /// What differs between `saved` (a checkpoint's) and `self` (the file's
    /// now), one phrase per difference; empty when nothing does.
    pub fn changes_since(&self, saved: &Fingerprint) -> Vec<String> {
        let mut changes = vec![];
        if self.graph != saved.graph {
            changes.push("the model: its layers, shapes or initialisation differ".to_string());
        }
        for (key, now) in &self.keys {
            match saved.keys.iter().find(|(k, _)| k == key) {
                Some((_, was)) if was != now => changes.push(format!("`{key}`: was {was}, is now {now}")),
                None => changes.push(format!("`{key}`: not recorded in the checkpoint")),
                Some(_) => {}
            }
        }
        changes.extend(self.constant_changes_since(saved));
        changes
    }
}

/// The first 12 hex digits of a hash, enough to tell two apart.
fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// The fingerprint of the optimisers: the optimiser's `Debug` text for the
/// one optimiser of the loss `loss` over every parameter (as checkpoints
/// have always recorded it), else `LOSS: OPTIMIZER, params: P` per
/// optimiser in order, joined by `; `.
fn optimizers_text(optimizers: &[LossOptimizer]) -> String {
    match optimizers {
        [o] if o.loss == DEFAULT_LOSS && o.params == ParamSet::All => format!("{:?}", o.optimizer),
        _ => optimizers
            .iter()
            .map(|o| format!("{}: {:?}, params: {}", o.loss, o.optimizer, o.params))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A line of printed IR without its trailing source range (`@3:3-3:22`).
fn without_position(line: &str) -> &str {
    match line.rfind(" @") {
        Some(i) if line[i + 2..].starts_with(|c: char| c.is_ascii_digit()) => line[..i].trim_end(),
        _ => line,
    }
}

fn stats_names(name: &str) -> (String, String) {
    (format!("normalize.{name}.mean"), format!("normalize.{name}.std"))
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut tensors = self.tensors.clone();
        for (name, stats) in &self.normalize {
            let (m, s) = stats_names(name);
            tensors.push((
                m,
                ArrayD::from_shape_vec(vec![stats.mean.len()], stats.mean.clone()).unwrap_or_default(),
            ));
            tensors.push((
                s,
                ArrayD::from_shape_vec(vec![stats.std.len()], stats.std.clone()).unwrap_or_default(),
            ));
        }
        for (name, value) in &self.best {
            tensors.push((format!("best.{name}"), value.clone()));
        }
        let mut meta = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            meta.insert(k.to_string(), v);
        };
        put("format", "pt".into());
        put("nnc.checkpoint", VERSION.into());
        put("nnc.version", NNC_VERSION.into());
        put("model", self.model.clone());
        put("model_sha256", self.model_sha256.clone());
        if let Some(f) = &self.fingerprint {
            put("graph_sha256", f.graph.clone());
            for (k, v) in &f.keys {
                put(&format!("train.{k}"), v.clone());
            }
            for c in &f.constants {
                put(&format!("{CONST_PREFIX}{}", c.name), c.text());
            }
        }
        put("epoch", self.epoch.to_string());
        put("step", self.step.to_string());
        put("seed", self.seed.to_string());
        put("rng", RNG.into());
        put("threads", self.threads.to_string());
        put("lr", format!("{:e}", self.lr));
        put("bad_epochs", self.bad_epochs.to_string());
        put("finished", self.finished.to_string());
        put("stopped_early", self.stopped_early.to_string());
        put("normalized", self.normalize.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(","));
        for (name, stats) in self.normalize.iter().filter(|(_, s)| s.axis != 1) {
            put(&format!("normalize.{name}.axis"), stats.axis.to_string());
        }
        if let Some(v) = self.best_val_loss {
            put("best_val_loss", format!("{v:e}"));
        }
        if let Some(e) = self.best_epoch {
            put("best_epoch", e.to_string());
        }
        tensor_file::save(path, &tensors, &meta)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`], checking that it
    /// is complete: the version, every metadata field and the statistics of
    /// every normalised array.
    pub fn load(path: &Path) -> Result<Checkpoint, Error> {
        let file = tensor_file::load(path)?;
        Checkpoint::from_file(path, file)
    }

    fn from_file(path: &Path, file: TensorFile) -> Result<Checkpoint, Error> {
        let bad = |m: String| Error::new(path, m);
        let meta = &file.metadata;
        let get = |k: &str| -> Result<&str, Error> {
            meta.get(k)
                .map(String::as_str)
                .ok_or_else(|| bad(format!("not an nnc training checkpoint: metadata `{k}` is missing")))
        };
        let version = get("nnc.checkpoint")?;
        if version != VERSION {
            return Err(bad(format!(
                "checkpoint format {version} is not supported (this nnc reads {VERSION})"
            )));
        }
        fn num<T: std::str::FromStr>(path: &Path, k: &str, v: &str) -> Result<T, Error> {
            v.parse().map_err(|_| Error::new(path, format!("metadata `{k}` = `{v}` is not a valid number")))
        }
        let normalized: Vec<String> =
            get("normalized")?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let mut normalize = vec![];
        for name in &normalized {
            let (m, s) = stats_names(name);
            let (Some(mean), Some(std)) = (file.get(&m), file.get(&s)) else {
                return Err(bad(format!("the normalisation statistics of `{name}` are missing")));
            };
            if mean.len() != std.len() {
                return Err(bad(format!("`{m}` and `{s}` have different lengths")));
            }
            // Written only for sequences (variables on axis 2).
            let key = format!("normalize.{name}.axis");
            let axis = match meta.get(&key) {
                Some(v) => num::<usize>(path, &key, v)?.max(1),
                None => 1,
            };
            normalize.push((
                name.clone(),
                Stats { mean: mean.iter().copied().collect(), std: std.iter().copied().collect(), axis },
            ));
        }
        let mut tensors = vec![];
        let mut best = vec![];
        for (name, value) in &file.tensors {
            if name.starts_with("normalize.") {
                continue;
            }
            match name.strip_prefix("best.") {
                Some(rest) => best.push((rest.to_string(), value.clone())),
                None => tensors.push((name.clone(), value.clone())),
            }
        }
        let opt_num = |k: &str| -> Result<Option<f64>, Error> {
            meta.get(k).map(|v| num::<f64>(path, k, v)).transpose()
        };
        let fingerprint = meta.get("graph_sha256").map(|graph| Fingerprint {
            graph: graph.clone(),
            keys: FINGERPRINT_KEYS
                .iter()
                .filter_map(|k| meta.get(&format!("train.{k}")).map(|v| (k.to_string(), v.clone())))
                .collect(),
            constants: meta
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(CONST_PREFIX).map(|name| ConstantPrint::parse(name, v)))
                .collect(),
        });
        Ok(Checkpoint {
            model: get("model")?.to_string(),
            model_sha256: get("model_sha256")?.to_string(),
            written_by: meta.get("nnc.version").cloned(),
            fingerprint,
            tensors,
            normalize,
            best,
            epoch: num(path, "epoch", get("epoch")?)?,
            step: num(path, "step", get("step")?)?,
            seed: num(path, "seed", get("seed")?)?,
            threads: num(path, "threads", get("threads")?)?,
            lr: num(path, "lr", get("lr")?)?,
            best_val_loss: opt_num("best_val_loss")?,
            best_epoch: opt_num("best_epoch")?.map(|e| e as usize),
            bad_epochs: num(path, "bad_epochs", get("bad_epochs")?)?,
            finished: num(path, "finished", get("finished")?)?,
            stopped_early: num(path, "stopped_early", get("stopped_early")?)?,
        })
    }

    /// Tensor `name` (parameter, model or optimiser state).
    pub fn tensor(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The statistics of normalised array `name`.
    pub fn stats(&self, name: &str) -> Option<&Stats> {
        self.normalize.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// Refuses a checkpoint trained with other constants than `module`'s (for
/// `nnc eval` and `nnc predict`), naming each and where it came from;
/// with `allow_changes`, returns the differences as warnings instead.
pub(super) fn check_constants(
    ckpt: &Checkpoint,
    module: &Module,
    path: &Path,
    allow_changes: bool,
) -> Result<Vec<String>, String> {
    let Some(saved) = &ckpt.fingerprint else { return Ok(vec![]) };
    let changes = Fingerprint::of(module).constant_changes_since(saved);
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let list: String = changes.iter().map(|c| format!("\n  - {c}")).collect();
    if allow_changes {
        return Ok(vec![format!(
            "using {} although its constants changed (--allow-changes):{list}",
            path.display()
        )]);
    }
    Err(format!(
        "{}: the checkpoint was trained with other constants than the model has now:{list}\n\
         use the constants it was trained with, or pass --allow-changes to go on with the model as it is now",
        path.display()
    ))
}

/// Refuses a checkpoint written for a model of another name.
pub(super) fn check_model_name(ckpt: &Checkpoint, module: &Module, path: &Path) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn example() -> Checkpoint {
        Checkpoint {
            model: "m".into(),
            model_sha256: source_hash("model m {}"),
            written_by: None,
            fingerprint: Some(Fingerprint {
                graph: source_hash("graph m"),
                keys: vec![("batch".into(), "32".into()), ("optimizer".into(), "Adam { lr: 0.001 }".into())],
                constants: vec![ConstantPrint {
                    name: "edges".into(),
                    sha256: source_hash("edges"),
                    origin: "npy(\"edges.npy\")".into(),
                }],
            }),
            tensors: vec![
                (
                    "w".into(),
                    ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, -2.0, 3.5, f32::MIN_POSITIVE]).unwrap(),
                ),
                ("optim.step".into(), ArrayD::from_elem(IxDyn(&[]), 7.0)),
            ],
            normalize: vec![("x".into(), Stats { mean: vec![0.5, 1.5], std: vec![2.0, 1.0], axis: 1 })],
            best: vec![("w".into(), ArrayD::from_elem(IxDyn(&[2, 2]), 0.25))],
            epoch: 3,
            step: 96,
            seed: 11,
            threads: 2,
            lr: 1e-3,
            best_val_loss: Some(0.125),
            best_epoch: Some(2),
            bad_epochs: 1,
            finished: false,
            stopped_early: false,
        }
    }

    #[test]
    fn round_trips_exactly() {
        let dir = std::env::temp_dir().join(format!("nnc-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let c = example();
        c.save(&path).unwrap();
        let mut back = Checkpoint::load(&path).unwrap();
        back.tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want = c.clone();
        want.tensors.sort_by(|a, b| a.0.cmp(&b.0));
        want.written_by = Some(NNC_VERSION.to_string());
        assert_eq!(back, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn incomplete_files_are_rejected_by_name() {
        let dir = std::env::temp_dir().join(format!("nnc-ckpt-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.safetensors");
        tensor_file::save(&path, &[("w".into(), ArrayD::zeros(IxDyn(&[1])))], &BTreeMap::new()).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("not an nnc training checkpoint"), "{err}");
        let bytes = std::fs::read(dir.join("p.safetensors")).unwrap();
        let c = example();
        c.save(&path).unwrap();
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!bytes.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
