//! The compiled graphs of a run: the training steps (one per optimiser) and
//! the inference graph, one executable per batch size, and the copies of
//! the model's state between them; feeding batches of examples, running one
//! training iteration and scoring rows with the inference graph.
//!
//! A model with one loss has one step. A model with several losses has one
//! step per optimiser, run in the order written on every batch: after a
//! step runs, the parameters and state it updated are copied into the
//! other steps' executables, so the next step sees them (the step counts
//! and moments of an optimiser live only in its own step's executable).
//!
//! In a data-parallel run (a [`Collective`] of more than one rank) each
//! step is split at its gradients ([`nnc_compiler::pipeline::SplitStep`]):
//! the step's executables run the gradient pass on this rank's share of the
//! batch, the ranks sum the weighted gradients, and the step's update
//! executable applies the optimiser to the sum (see [`super::collective`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::config::Metric;
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{Graph, InputKind, Op, OutputKind};
use nnc_compiler::sema::{ConstData, Constant};
use nnc_compiler::Module;

use super::collective::{share, Collective};
use super::examples::{Prepared, Slot, Values};
use super::metrics::{Metrics, TargetView};
use crate::exec::{Executable, Gemm, Options as ExecOptions};

/// One training step of a run: the optimiser of one loss.
pub(super) struct Step {
    /// The loss it minimises (its name in logs).
    pub(super) loss: String,
    /// The optimised step graph.
    pub(super) graph: Graph,
    /// Its optimiser's initial learning rate (the schedule scales it).
    pub(super) base_lr: f64,
    /// The names of its inputs.
    inputs: HashSet<String>,
    /// The names of its random-key inputs.
    keys: Vec<String>,
    /// The parameters and state it updates that another step reads: copied
    /// into the others after it runs.
    shared: Vec<String>,
    /// In a data-parallel run, the update half of the step (`graph` is then
    /// its gradient pass).
    update: Option<Update>,
    /// The model state its graph updates (batchnorm statistics), broadcast
    /// from rank 0 after it runs in a data-parallel run.
    model_state: Vec<String>,
}

/// The optimiser's half of a split step: one executable whatever the batch.
struct Update {
    graph: Graph,
    exe: Executable,
    inputs: HashSet<String>,
    /// The parameters it updates, in the order of their gradients.
    params: Vec<String>,
}

/// The compiled graphs of a run, one executable per step and batch size,
/// with the model's current state in the executables of batch size `owner`.
pub(super) struct Engine {
    /// The training steps, in the order they run on every batch.
    pub(super) steps: Vec<Step>,
    pub(super) infer_graph: Graph,
    pub(super) exec: ExecOptions,
    /// Per batch size, one executable per step, in step order.
    pub(super) train: BTreeMap<usize, Vec<Executable>>,
    pub(super) infer: BTreeMap<usize, Executable>,
    /// The batch size of the training executables holding the current state.
    pub(super) owner: usize,
    /// Every parameter and state input of the steps, once each, in step
    /// order: the state of a run.
    pub(super) state_names: Vec<String>,
    /// Names of the parameter and model-state inputs of the inference graph.
    pub(super) model_names: Vec<String>,
    pub(super) prediction: Option<String>,
    /// How many training steps the inference executables' state is behind.
    pub(super) infer_stale: bool,
    pub(super) seed: u64,
    /// The values of the module's constants, fed to every executable.
    constants: Vec<(String, Tensor<f32>)>,
    /// Time spent feeding batches (gathering the examples' rows into the
    /// executables' inputs) and running the compiled training steps, since
    /// the last [`Engine::take_timing`].
    timing: StepTiming,
    /// The ranks of a data-parallel run.
    collective: Option<Arc<dyn Collective>>,
}

/// Where a training iteration's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTiming {
    /// Feeding the batch: gathering rows, the learning rate and the key.
    pub load: Duration,
    /// The compiled steps and the state they carry to the next (in a
    /// data-parallel run, the time in [`StepTiming::reduce`] included).
    pub compute: Duration,
    /// In a data-parallel run, summing the ranks' gradients and
    /// broadcasting rank 0's model state (waiting for the slowest rank
    /// included).
    pub reduce: Duration,
}

/// The value of every constant of `module`, as graph inputs.
pub fn constant_inputs(module: &Module) -> Result<Vec<(String, Tensor<f32>)>, String> {
    module.constants.iter().map(|c| Ok((c.name.clone(), constant_tensor(c)?))).collect()
}

fn constant_tensor(c: &Constant) -> Result<Tensor<f32>, String> {
    let shape = c.ty.shape.as_known().ok_or_else(|| format!("constant `{}` has type {}", c.name, c.ty))?;
    let wrong = |e: ndarray::ShapeError| format!("constant `{}` ({}): {e}", c.name, c.origin);
    Ok(match &c.data {
        ConstData::F32(v) => Tensor::Float(ArrayD::from_shape_vec(IxDyn(&shape), v.clone()).map_err(wrong)?),
        ConstData::I32(v) => Tensor::Int(ArrayD::from_shape_vec(IxDyn(&shape), v.clone()).map_err(wrong)?),
    })
}

/// `graph` compiled for `batch` examples, its random key set to (seed, 0)
/// and every constant it reads set.
pub(super) fn compiled(
    graph: &Graph,
    batch: usize,
    exec: &ExecOptions,
    seed: u64,
    constants: &[(String, Tensor<f32>)],
) -> Result<Executable, String> {
    let mut exe = Executable::compile(graph, batch, exec)?;
    for (name, value) in crate::exec::feed::key_inputs(graph, seed)? {
        exe.set_input(&name, &value)?;
    }
    let reads: HashSet<&str> = exe.inputs().map(|(name, _, _)| name).collect();
    let read: Vec<&(String, Tensor<f32>)> =
        constants.iter().filter(|(n, _)| reads.contains(n.as_str())).collect();
    for (name, value) in read {
        exe.set_input(name, value)?;
    }
    Ok(exe)
}

/// Sets every key input of `exe` (named `names`) to `(seed, counter)`: the
/// low word of the seed and a counter (the training step, or the batch of
/// an evaluation).
pub(super) fn set_key(exe: &mut Executable, names: &[String], seed: u64, counter: u64) -> Result<(), String> {
    let key = nnc_compiler::ir::rng::seed_key(seed)[0];
    for name in names {
        let k = ndarray::arr1(&[key, counter as u32 as i32]).into_dyn();
        exe.set_input(name, &Tensor::Int(k))?;
    }
    Ok(())
}

pub(super) fn names_of(graph: &Graph, pred: impl Fn(&InputKind) -> bool) -> Vec<String> {
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

pub(super) fn write(exe: &mut Executable, name: &str, values: &[f32]) -> Result<(), String> {
    let dst = exe.input_mut(name)?;
    if dst.len() != values.len() {
        return Err(format!("`{name}` holds {} values, {} given", dst.len(), values.len()));
    }
    dst.copy_from_slice(values);
    Ok(())
}

impl Engine {
    pub(super) fn new(
        module: &Module,
        threads: usize,
        checking: Checking,
        seed: u64,
        collective: Option<Arc<dyn Collective>>,
    ) -> Result<Engine, String> {
        let collective = collective.filter(|c| c.size() > 1);
        let exec = ExecOptions { threads, checking, gemm: Gemm::Tuned };
        let constants = constant_inputs(module)?;
        let optimizers = nnc_compiler::pipeline::optimizers(module);
        // Each step's graph, and when split, its update and the parameters
        // that update changes.
        type Split = Option<(Graph, Vec<String>)>;
        let graphs: Vec<(Graph, Split)> = match &collective {
            None => nnc_compiler::pipeline::optimized_steps(module)?
                .into_iter()
                .map(|s| (s.graph, None))
                .collect(),
            Some(_) => nnc_compiler::pipeline::split_steps(module)?
                .into_iter()
                .map(|s| (s.gradient, Some((s.update, s.params))))
                .collect(),
        };
        let infer_graph = nnc_compiler::pipeline::optimized(module, nnc_compiler::ir::Mode::Infer)?;
        let is_state = |k: &InputKind| matches!(k, InputKind::Param { .. } | InputKind::State { .. });
        let mut steps: Vec<Step> = vec![];
        for ((graph, split), o) in graphs.into_iter().zip(&optimizers) {
            let inputs: HashSet<String> = names_of(&graph, |_| true).into_iter().collect();
            let has_loss = graph.outputs.iter().any(|out| out.kind == OutputKind::Loss && out.name == o.loss);
            if !has_loss {
                return Err(format!("the training step of `{}` has no loss output", o.loss));
            }
            let keys = names_of(&graph, |k| matches!(k, InputKind::Key));
            let model_state = names_of(&graph, |k| matches!(k, InputKind::State { .. }));
            let update = match split {
                None => None,
                Some((graph, params)) => {
                    let exe = compiled(&graph, 1, &exec, seed, &constants)?;
                    let inputs = names_of(&graph, |_| true).into_iter().collect();
                    Some(Update { graph, exe, inputs, params })
                }
            };
            steps.push(Step {
                loss: o.loss.clone(),
                graph,
                base_lr: o.optimizer.lr(),
                inputs,
                keys,
                shared: vec![],
                update,
                model_state,
            });
        }
        if steps.is_empty() {
            return Err("the model has no loss".into());
        }
        // What a step updates and another reads is copied after it runs.
        for k in 0..steps.len() {
            let updated: Vec<String> = steps[k]
                .graph
                .outputs
                .iter()
                .filter(|o| matches!(o.kind, OutputKind::Param | OutputKind::State))
                .map(|o| o.name.clone())
                .filter(|name| steps.iter().enumerate().any(|(j, s)| j != k && s.inputs.contains(name)))
                .collect();
            steps[k].shared = updated;
        }
        let mut state_names: Vec<String> = vec![];
        for step in &steps {
            let graphs = std::iter::once(&step.graph).chain(step.update.as_ref().map(|u| &u.graph));
            for name in graphs.flat_map(|g| names_of(g, is_state)) {
                if !state_names.contains(&name) {
                    state_names.push(name);
                }
            }
        }
        let model_names = names_of(&infer_graph, is_state);
        let predictions: Vec<&str> = infer_graph
            .outputs
            .iter()
            .filter(|o| o.kind == OutputKind::Prediction)
            .map(|o| o.name.as_str())
            .collect();
        let prediction = (predictions.len() == 1).then(|| predictions[0].to_string());
        Ok(Engine {
            steps,
            infer_graph,
            exec,
            train: BTreeMap::new(),
            infer: BTreeMap::new(),
            owner: 0,
            state_names,
            model_names,
            prediction,
            infer_stale: true,
            seed,
            constants,
            timing: StepTiming::default(),
            collective,
        })
    }

    /// Every graph whose inputs hold the state of the run: the steps' (and,
    /// split, their updates').
    pub(super) fn state_graphs(&self) -> impl Iterator<Item = &Graph> {
        self.steps.iter().flat_map(|s| std::iter::once(&s.graph).chain(s.update.as_ref().map(|u| &u.graph)))
    }

    /// The time spent feeding and computing since the last call.
    pub(super) fn take_timing(&mut self) -> StepTiming {
        std::mem::take(&mut self.timing)
    }

    /// The names of the losses, in step order.
    pub(super) fn losses(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.loss.clone()).collect()
    }

    /// Compiles the training executables for `batch` if needed.
    pub(super) fn train_exe(&mut self, batch: usize) -> Result<(), String> {
        if !self.train.contains_key(&batch) {
            let exes = self
                .steps
                .iter()
                .map(|s| compiled(&s.graph, batch, &self.exec, self.seed, &self.constants))
                .collect::<Result<Vec<_>, _>>()?;
            self.train.insert(batch, exes);
        }
        Ok(())
    }

    /// Compiles the inference executable for `batch` if needed.
    fn infer_exe(&mut self, batch: usize) -> Result<(), String> {
        if !self.infer.contains_key(&batch) {
            let exe = compiled(&self.infer_graph, batch, &self.exec, self.seed, &self.constants)?;
            self.infer.insert(batch, exe);
            self.infer_stale = true;
        }
        Ok(())
    }

    /// Sets the current state (parameters, model and optimiser state) in
    /// every step that reads it.
    pub(super) fn set_state(&mut self, values: &[(String, ArrayD<f32>)]) -> Result<(), String> {
        let exes = self.train.get_mut(&self.owner).ok_or("no training executable")?;
        for (name, value) in values {
            let value = value.as_slice().ok_or("non-contiguous tensor")?;
            let mut found = false;
            for (step, exe) in self.steps.iter_mut().zip(exes.iter_mut()) {
                if step.inputs.contains(name) {
                    write(exe, name, value)?;
                    found = true;
                }
                if let Some(u) = step.update.as_mut().filter(|u| u.inputs.contains(name)) {
                    write(&mut u.exe, name, value)?;
                    found = true;
                }
            }
            if !found {
                return Err(format!("the training steps have no input `{name}`"));
            }
        }
        self.infer_stale = true;
        Ok(())
    }

    /// The current value of every state input `names`, with its shape.
    pub(super) fn state(&mut self, names: &[String]) -> Result<Vec<(String, ArrayD<f32>)>, String> {
        let exes = self.train.get_mut(&self.owner).ok_or("no training executable")?;
        names
            .iter()
            .map(|name| {
                // Every step that reads a value holds the same copy of it;
                // the optimiser's state of a split step is in its update.
                let exe = match self.steps.iter().position(|s| s.inputs.contains(name)) {
                    Some(k) => &mut exes[k],
                    None => self
                        .steps
                        .iter_mut()
                        .find_map(|s| s.update.as_mut().filter(|u| u.inputs.contains(name)))
                        .map(|u| &mut u.exe)
                        .ok_or_else(|| format!("no state `{name}`"))?,
                };
                let shape = exe
                    .inputs()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, _, s)| s.to_vec())
                    .ok_or_else(|| format!("no state `{name}`"))?;
                let v = read(exe, name)?;
                let a = ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| e.to_string())?;
                Ok((name.clone(), a))
            })
            .collect()
    }

    /// Moves the current state into the training executables for `batch`.
    pub(super) fn take_state(&mut self, batch: usize) -> Result<(), String> {
        if batch == self.owner {
            return Ok(());
        }
        let names = self.state_names.clone();
        let values = self.state(&names)?;
        self.owner = batch;
        self.set_state(&values)
    }

    /// One training iteration on the examples `rows`: every step in order,
    /// step k with learning rate `lrs[k]`, all with the random key (seed,
    /// `counter`). Returns each step's loss; the state moves on only past
    /// the steps whose loss is finite (the caller stops at the first that
    /// is not).
    pub(super) fn iterate(
        &mut self,
        data: &Prepared,
        rows: &[usize],
        lrs: &[f64],
        counter: u64,
    ) -> Result<Vec<f64>, String> {
        if let Some(collective) = self.collective.clone() {
            return self.iterate_shared(&*collective, data, rows, lrs, counter);
        }
        self.train_exe(rows.len())?;
        self.take_state(rows.len())?;
        let exes = self.train.get_mut(&rows.len()).ok_or("no training executable")?;
        let mut losses = vec![];
        for k in 0..self.steps.len() {
            let step = &self.steps[k];
            let exe = &mut exes[k];
            let start = Instant::now();
            for slot in data.slots() {
                feed(exe, slot, rows)?;
            }
            let lr = lrs.get(k).copied().ok_or("no learning rate for a step")?;
            exe.set_input(
                nnc_compiler::update::LR,
                &Tensor::Float(ArrayD::from_elem(IxDyn(&[]), lr as f32)),
            )?;
            set_key(exe, &step.keys, self.seed, counter)?;
            let fed = Instant::now();
            self.timing.load += fed - start;
            exe.run()?;
            let loss = scalar(&exe.output(&step.loss)?);
            losses.push(loss);
            if !loss.is_finite() {
                break;
            }
            exe.carry_state()?;
            self.timing.compute += fed.elapsed();
            for name in &step.shared {
                let value = read(&mut exes[k], name)?;
                for (j, (other, exe)) in self.steps.iter().zip(exes.iter_mut()).enumerate() {
                    if j != k && other.inputs.contains(name) {
                        write(exe, name, &value)?;
                    }
                }
            }
        }
        self.infer_stale = true;
        Ok(losses)
    }

    /// [`Engine::iterate`] in a data-parallel run: this rank's share of the
    /// global batch `rows` through each step's gradient pass, the ranks'
    /// gradients (and losses) summed weighted by their shares, the update
    /// applied to the sum, the model state broadcast from rank 0. Every
    /// rank returns the same losses: those of the whole batch.
    fn iterate_shared(
        &mut self,
        collective: &dyn Collective,
        data: &Prepared,
        rows: &[usize],
        lrs: &[f64],
        counter: u64,
    ) -> Result<Vec<f64>, String> {
        let mine = share(rows, collective.rank(), collective.size());
        let weight = mine.len() as f64 / rows.len().max(1) as f64;
        if !mine.is_empty() {
            self.train_exe(mine.len())?;
            self.take_state(mine.len())?;
        }
        let mut losses = vec![];
        for k in 0..self.steps.len() {
            let start = Instant::now();
            // This rank's gradients and loss, weighted, in one vector.
            let mut local = vec![];
            let params =
                self.steps[k].update.as_ref().map(|u| u.params.clone()).ok_or("a step is not split")?;
            if mine.is_empty() {
                for name in &params {
                    let len = self.steps[k]
                        .update
                        .as_mut()
                        .map_or(Ok(0), |u| u.exe.input_mut(name).map(|v| v.len()))?;
                    local.extend(std::iter::repeat_n(0.0, len));
                }
                local.push(0.0);
            } else {
                let exes = self.train.get_mut(&mine.len()).ok_or("no training executable")?;
                let (step, exe) = (&self.steps[k], &mut exes[k]);
                for slot in data.slots() {
                    feed(exe, slot, mine)?;
                }
                set_key(exe, &step.keys, self.seed, counter)?;
                self.timing.load += start.elapsed();
                exe.run()?;
                for name in &params {
                    match exe.output(&format!("grad.{name}"))? {
                        Tensor::Float(g) => local.extend(g.iter().map(|&x| f64::from(x) * weight)),
                        _ => return Err(format!("the gradient of `{name}` is not a float tensor")),
                    }
                }
                local.push(scalar(&exe.output(&step.loss)?) * weight);
                exe.carry_state()?;
            }
            let reducing = Instant::now();
            let total = collective.sum(&local)?;
            self.timing.reduce += reducing.elapsed();
            let loss = total.last().copied().unwrap_or(f64::NAN);
            losses.push(loss);
            if !loss.is_finite() {
                break;
            }
            // The model state of rank 0 (a rank without examples has none
            // of its own this step).
            let model_state = self.steps[k].model_state.clone();
            if !model_state.is_empty() {
                let owner = if mine.is_empty() { self.owner } else { mine.len() };
                let exes = self.train.get_mut(&owner).ok_or("no training executable")?;
                let reducing = Instant::now();
                for name in &model_state {
                    let mut value = read(&mut exes[k], name)?;
                    collective.broadcast(&mut value)?;
                    write(&mut exes[k], name, &value)?;
                }
                self.timing.reduce += reducing.elapsed();
            }
            // The update of the summed gradients.
            let update = self.steps[k].update.as_mut().ok_or("a step is not split")?;
            let mut at = 0;
            for name in &params {
                let dst = update.exe.input_mut(&format!("grad.{name}"))?;
                let n = dst.len();
                for (d, &g) in dst.iter_mut().zip(&total[at..at + n]) {
                    *d = g as f32;
                }
                at += n;
            }
            let lr = lrs.get(k).copied().ok_or("no learning rate for a step")?;
            update.exe.set_input(
                nnc_compiler::update::LR,
                &Tensor::Float(ArrayD::from_elem(IxDyn(&[]), lr as f32)),
            )?;
            update.exe.run()?;
            update.exe.carry_state()?;
            // The new parameters into every executable that reads them.
            let owner = self.owner;
            let exes = self.train.get_mut(&owner).ok_or("no training executable")?;
            for name in &params {
                let value = match &mut self.steps[k].update {
                    Some(u) => read(&mut u.exe, name)?,
                    None => continue,
                };
                for (j, (step, exe)) in self.steps.iter_mut().zip(exes.iter_mut()).enumerate() {
                    if step.inputs.contains(name) {
                        write(exe, name, &value)?;
                    }
                    if let Some(u) = step.update.as_mut().filter(|u| j != k && u.inputs.contains(name)) {
                        write(&mut u.exe, name, &value)?;
                    }
                }
            }
            // Model state another step reads.
            for name in &model_state {
                let value = read(&mut exes[k], name)?;
                for (j, (step, exe)) in self.steps.iter().zip(exes.iter_mut()).enumerate() {
                    if j != k && step.inputs.contains(name) {
                        write(exe, name, &value)?;
                    }
                }
            }
            self.timing.compute += start.elapsed();
        }
        self.infer_stale = true;
        Ok(losses)
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
pub(super) fn feed(exe: &mut Executable, slot: &Slot, rows: &[usize]) -> Result<(), String> {
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

pub(super) fn scalar(t: &Tensor<f32>) -> f64 {
    match t {
        Tensor::Float(a) => a.iter().next().map_or(f64::NAN, |&v| f64::from(v)),
        _ => f64::NAN,
    }
}

/// What [`evaluate`] finds.
pub(super) struct Scores {
    /// The mean of every loss, in step order.
    pub(super) losses: Vec<f64>,
    /// The metrics in physical units, `(label, value)`.
    pub(super) metrics: Vec<(String, f64)>,
}

/// Runs the inference graph on the examples `chunk` (batch `k`, which draws
/// from the random key (seed, k)) and returns its executable, outputs set.
fn infer_batch<'e>(
    engine: &'e mut Engine,
    data: &Prepared,
    keys: &[String],
    k: usize,
    chunk: &[usize],
) -> Result<&'e mut Executable, String> {
    engine.infer_exe(chunk.len())?;
    engine.sync_infer()?;
    let seed = engine.seed;
    let exe = engine.infer.get_mut(&chunk.len()).ok_or("no inference executable")?;
    for slot in data.slots() {
        feed(exe, slot, chunk)?;
    }
    set_key(exe, keys, seed, k as u64)?;
    exe.run()?;
    Ok(exe)
}

/// The mean of every loss and the metrics of `rows` with the inference
/// graph. Batch k of the rows draws from the random key (seed, k).
pub(super) fn evaluate(
    engine: &mut Engine,
    data: &Prepared,
    rows: &[usize],
    batch: usize,
    wanted: &[Metric],
) -> Result<Scores, String> {
    if !wanted.is_empty() && engine.prediction.is_none() {
        return Err("metrics need exactly one prediction output (mark it with `output NAME`)".into());
    }
    let mut metrics = Metrics::new(wanted);
    metrics.name_variables(&data.target.as_ref().unwrap_or(&data.input).variables);
    let losses = engine.losses();
    for loss in &losses {
        let has = engine.infer_graph.outputs.iter().any(|o| o.kind == OutputKind::Loss && &o.name == loss);
        if !has {
            return Err(format!("the inference graph has no loss `{loss}`"));
        }
    }
    let keys = names_of(&engine.infer_graph, |k| matches!(k, InputKind::Key));
    let prediction = engine.prediction.clone();
    let (mut sums, mut count) = (vec![0f64; losses.len()], 0usize);
    for (k, chunk) in rows.chunks(batch).enumerate() {
        let exe = infer_batch(engine, data, &keys, k, chunk)?;
        for (sum, loss) in sums.iter_mut().zip(&losses) {
            *sum += scalar(&exe.output(loss)?) * chunk.len() as f64;
        }
        count += chunk.len();
        if wanted.is_empty() {
            continue;
        }
        let Some(pred_name) = &prediction else { continue };
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
    let losses = sums.iter().map(|s| s / count.max(1) as f64).collect();
    Ok(Scores { losses, metrics: metrics.finish() })
}

/// The prediction of the inference graph for the examples `rows`, in
/// physical units (the normalisation of the target, or of the input for a
/// model without one, inverted when the prediction has its shape), and
/// its per-example shape. Batch k of the rows draws from the random key
/// (seed, k), as in [`evaluate`].
pub(super) fn predict_rows(
    engine: &mut Engine,
    data: &Prepared,
    rows: &[usize],
    batch: usize,
) -> Result<(Vec<f32>, Vec<usize>), String> {
    let Some(pred_name) = engine.prediction.clone() else {
        return Err("the model needs exactly one prediction output (mark it with `output NAME`)".into());
    };
    let keys = names_of(&engine.infer_graph, |k| matches!(k, InputKind::Key));
    let reference = data.target.as_ref().unwrap_or(&data.input);
    let (mut out, mut shape) = (vec![], vec![]);
    for (k, chunk) in rows.chunks(batch.max(1)).enumerate() {
        let exe = infer_batch(engine, data, &keys, k, chunk)?;
        let Tensor::Float(mut pred) = exe.output(&pred_name)? else {
            return Err(format!("prediction `{pred_name}` is not f32"));
        };
        if let Some(stats) = &reference.stats {
            if pred.shape()[1..] == reference.shape[..] {
                let full = pred.shape().to_vec();
                if let Some(s) = pred.as_slice_mut() {
                    stats.invert(s, &full);
                }
            }
        }
        shape = pred.shape()[1..].to_vec();
        out.extend(pred.iter().copied());
    }
    Ok((out, shape))
}
