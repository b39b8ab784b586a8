//! The compiled graphs of a run: the training step and the inference graph,
//! one executable per batch size, and the copies of the model's state
//! between them; feeding batches of examples and scoring rows with the
//! inference graph.

use std::collections::BTreeMap;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::config::Metric;
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{Graph, InputKind, Op, OutputKind};
use nnc_compiler::Module;

use super::examples::{Prepared, Slot, Values};
use super::metrics::{Metrics, TargetView};
use crate::exec::{Executable, Gemm, Options as ExecOptions};

/// The compiled graphs of a run, one executable per batch size, with the
/// model's current state in the executable `owner`.
pub(super) struct Engine {
    pub(super) train_graph: Graph,
    pub(super) infer_graph: Graph,
    pub(super) exec: ExecOptions,
    pub(super) train: BTreeMap<usize, Executable>,
    pub(super) infer: BTreeMap<usize, Executable>,
    /// The batch size of the training executable holding the current state.
    pub(super) owner: usize,
    /// Names of every parameter and state input of the training step.
    pub(super) state_names: Vec<String>,
    /// Names of the parameter and model-state inputs of the inference graph.
    pub(super) model_names: Vec<String>,
    pub(super) loss: String,
    pub(super) prediction: Option<String>,
    /// How many training steps the inference executables' state is behind.
    pub(super) infer_stale: bool,
    pub(super) seed: u64,
}

/// `graph` compiled for `batch` examples, its random key set to (seed, 0).
pub(super) fn compiled(
    graph: &Graph,
    batch: usize,
    exec: &ExecOptions,
    seed: u64,
) -> Result<Executable, String> {
    let mut exe = Executable::compile(graph, batch, exec)?;
    for (name, value) in crate::exec::feed::key_inputs(graph, seed)? {
        exe.set_input(&name, &value)?;
    }
    Ok(exe)
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
    ) -> Result<Engine, String> {
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
    pub(super) fn train_exe(&mut self, batch: usize) -> Result<(), String> {
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
    pub(super) fn set_state(&mut self, values: &[(String, ArrayD<f32>)]) -> Result<(), String> {
        let exe = self.train.get_mut(&self.owner).ok_or("no training executable")?;
        for (name, value) in values {
            write(exe, name, value.as_slice().ok_or("non-contiguous tensor")?)?;
        }
        self.infer_stale = true;
        Ok(())
    }

    /// The current value of every state input, with its shape.
    pub(super) fn state(&mut self, names: &[String]) -> Result<Vec<(String, ArrayD<f32>)>, String> {
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
    pub(super) fn take_state(&mut self, batch: usize) -> Result<(), String> {
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

/// Loss and metrics of `rows` with the inference graph.
pub(super) fn evaluate(
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
