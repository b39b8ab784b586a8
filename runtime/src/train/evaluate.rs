//! `nnc eval` and `nnc predict`: a checkpoint's model scored on data, and
//! its predictions for new inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::config::{DataSource, Metric};
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{DType, Dim, Graph, InputKind, Op, OutputKind};
use nnc_compiler::Module;

use super::checkpoint::{check_constants, check_model_name, Checkpoint};
use super::engine::{compiled, constant_inputs, evaluate, names_of, predict_rows, set_key, write, Engine};
use super::examples::{prepare, Prepared, Slot};
use super::metrics::{Metrics, TargetView};
use super::normalize::Stats;
use super::RunError;
use crate::exec::{Executable, Gemm, Options as ExecOptions};

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
    /// The loss; with several losses, their sum.
    pub loss: f64,
    /// Every loss `(name, value)`, in the order their optimisers run
    /// (`loss` alone for a model with one loss).
    pub losses: Vec<(String, f64)>,
    /// The loss compares normalised targets (not physical units).
    pub loss_normalized: bool,
    pub metrics: Vec<(String, f64)>,
    /// The metrics of the baseline asked for, on the same examples.
    pub baseline: Vec<(String, f64)>,
    /// What the user should know: constants that changed since the
    /// checkpoint (with `allow_changes`).
    pub warnings: Vec<String>,
}

/// How `nnc predict` runs.
#[derive(Clone, Debug)]
pub struct PredictOptions {
    pub threads: usize,
    /// The seed of the random key (`normal(...)`, and any other draw of the
    /// inference graph): batch k of the input draws from the key (seed, k).
    /// `None`: the `train` section's `seed` (0 without a section).
    pub seed: Option<u64>,
    /// Go on when the model's constants differ from the checkpoint's.
    pub allow_changes: bool,
    /// How many examples to draw when the prediction reads no input (a
    /// GAN's generator, whose only input is its noise); `None` for a
    /// prediction that reads inputs, whose first axis counts the examples.
    pub count: Option<usize>,
}

/// Puts a checkpoint's parameters and model state into a fresh engine.
fn load_model(
    module: &Module,
    ckpt: &Checkpoint,
    checkpoint_path: &Path,
    threads: usize,
    batch: usize,
) -> Result<Engine, String> {
    let seed = module.train.as_ref().map_or(0, |t| t.seed);
    let mut engine = Engine::new(module, threads, Checking::Unchecked, seed, None)?;
    engine.train_exe(batch)?;
    engine.owner = batch;
    let mut values = vec![];
    for name in engine.model_names.clone() {
        let saved = ckpt
            .tensor(&name)
            .ok_or_else(|| format!("{}: the checkpoint has no tensor `{name}`", checkpoint_path.display()))?;
        values.push((name, saved.as_standard_layout().into_owned()));
    }
    let shapes: BTreeMap<String, Vec<usize>> = engine.train[&batch]
        .iter()
        .flat_map(|exe| exe.inputs().map(|(n, _, s)| (n.to_string(), s.to_vec())))
        .collect();
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
    Ok(engine)
}

/// What `nnc eval` scores besides the model, on the same examples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// The last known state: the input itself for a next-step target of
    /// the input's shape, the last input frame for every lead of a
    /// sequence target (`window(...)`, generated sequences).
    Persistence,
}

/// How `nnc eval` runs.
#[derive(Clone, Debug)]
pub struct EvalOptions<'a> {
    pub subset: Subset,
    /// Score every example of this `.npz` archive (arrays named like the
    /// model's input and target) instead of the model's data.
    pub data_file: Option<&'a Path>,
    /// Score this source instead of the model's (paths relative to the
    /// working directory); `subset` applies to its split.
    pub source: Option<DataSource>,
    pub threads: usize,
    /// Go on when the model's constants differ from the checkpoint's.
    pub allow_changes: bool,
    pub baseline: Option<Baseline>,
}

/// `nnc eval`: every loss and the metrics of a checkpoint on a subset of
/// the model's data, of another source, or on every example of an `.npz`
/// archive with arrays named like the model's input and target, normalised
/// with the checkpoint's statistics; with a baseline, its metrics on the
/// same examples. A checkpoint trained with other constants is refused
/// unless `allow_changes`.
pub fn eval(
    module: &Module,
    model_path: &Path,
    checkpoint_path: &Path,
    options: &EvalOptions,
) -> Result<Evaluation, RunError> {
    let mut config = module
        .train
        .clone()
        .ok_or_else(|| format!("{}: the model has no `train` section", model_path.display()))?;
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let warnings = check_constants(&ckpt, module, checkpoint_path, options.allow_changes)?;
    let mut base_dir = model_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut subset = options.subset;
    if let Some(source) = &options.source {
        config.data = source.clone();
        base_dir = PathBuf::from(".");
    }
    if let Some(file) = options.data_file {
        // Another data set: an .npz archive with arrays named like the
        // model's input and target, every example scored.
        let first = |kind: fn(&InputKind) -> bool| names_of(&module.train_graph, kind).into_iter().next();
        let x = first(|k| matches!(k, InputKind::Data)).ok_or("the model has no input")?;
        let y = first(|k| matches!(k, InputKind::Target)).unwrap_or_else(|| x.clone());
        config.data = DataSource::Npz { path: file.display().to_string(), x, y };
        base_dir = PathBuf::from(".");
        subset = Subset::All;
    }
    let data = prepare(module, &config, &base_dir, Some(&ckpt), false)?;
    let rows: Vec<usize> = match subset {
        Subset::Validation => data.val.clone(),
        Subset::Training => data.train.clone(),
        Subset::All => (0..data.train.len() + data.val.len()).collect(),
    };
    if rows.is_empty() {
        let name = format!("{subset:?}").to_lowercase();
        return Err(format!("{}: the {name} subset is empty", data.origin).into());
    }
    let baseline = match options.baseline {
        Some(Baseline::Persistence) => persistence(&data, &rows, &config.metrics)?,
        None => vec![],
    };
    let batch = config.batch.min(rows.len()).max(1);
    let mut engine = load_model(module, &ckpt, checkpoint_path, options.threads, batch)?;
    let scores = evaluate(&mut engine, &data, &rows, batch, &config.metrics)?;
    let (losses, metrics) = (scores.losses, scores.metrics);
    let loss_normalized = data.target.as_ref().unwrap_or(&data.input).stats.is_some();
    Ok(Evaluation {
        origin: data.origin,
        examples: rows.len(),
        loss: losses.iter().sum(),
        losses: engine.losses().into_iter().zip(losses).collect(),
        loss_normalized,
        metrics,
        baseline,
        warnings,
    })
}

/// The metrics `wanted` of persistence on the examples `rows` of `data`
/// ([`Baseline::Persistence`]), in physical units.
fn persistence(data: &Prepared, rows: &[usize], wanted: &[Metric]) -> Result<Vec<(String, f64)>, String> {
    let input = &data.input;
    let Some(target) = &data.target else {
        return Err("persistence needs a model with a target".into());
    };
    let (xs, ys) = (&input.shape, &target.shape);
    // Per example: which input value each target value persists.
    let from: Vec<usize> = if input.sequence && xs.len() == ys.len() && xs.len() >= 2 && xs[1..] == ys[1..] {
        let frame: usize = xs[1..].iter().product();
        let last = (xs[0] - 1) * frame;
        (0..ys[0]).flat_map(|_| last..last + frame).collect()
    } else if xs == ys && !input.sequence {
        (0..input.per()).collect()
    } else {
        return Err(format!(
            "persistence needs a target of the input's shape (next step) or a sequence of the input's \
             frames; the input is f32{xs:?} and the target f32{ys:?} per example"
        ));
    };
    let physical =
        |slot: &Slot| slot.physical_values().map_err(|e| format!("persistence needs float values; {e}"));
    let (x, y) = (physical(input)?, physical(target)?);
    let (px, py) = (input.per(), target.per());
    let mut metrics = Metrics::new(wanted);
    metrics.name_variables(&target.variables);
    for chunk in rows.chunks(256) {
        let mut shape = vec![chunk.len()];
        shape.extend(ys);
        let x = &x;
        let pred: Vec<f32> = chunk.iter().flat_map(|&r| from.iter().map(move |&i| x[r * px + i])).collect();
        let truth: Vec<f32> = chunk.iter().flat_map(|&r| y[r * py..(r + 1) * py].iter().copied()).collect();
        let pred = ArrayViewD::from_shape(IxDyn(&shape), &pred).map_err(|e| e.to_string())?;
        let truth = ArrayViewD::from_shape(IxDyn(&shape), &truth).map_err(|e| e.to_string())?;
        metrics.update(pred, TargetView::F32(truth))?;
    }
    Ok(metrics.finish())
}

/// `nnc predict`: the model's prediction for every example of `input`
/// (leading axis = examples, in physical units), with the checkpoint's
/// normalisation applied to the input and inverted on the prediction.
/// Errors about the input name it `input_label` (its file). The random key
/// is the `train` section's seed; a checkpoint trained with other constants
/// is refused ([`predict_with`] chooses).
pub fn predict(
    module: &Module,
    checkpoint_path: &Path,
    input: &ArrayD<f32>,
    input_label: &str,
    threads: usize,
) -> Result<ArrayD<f32>, String> {
    let options = PredictOptions { threads, seed: None, allow_changes: false, count: None };
    Ok(predict_with(module, checkpoint_path, input, input_label, &options)?.0)
}

/// A data input that a model's prediction reads: its name, element type
/// and per-example shape (every axis after the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictInput {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// The values given for one input of [`predict_inputs`]: every example on
/// the first axis, in physical units (class labels as whole numbers), and
/// what to call them in errors (the file they came from).
#[derive(Clone, Debug)]
pub struct NamedInput {
    pub name: String,
    pub values: ArrayD<f32>,
    pub label: String,
}

/// The inference graph reduced to the model's (first) prediction output,
/// optimised, and that output's name.
fn prediction_graph(module: &Module) -> Result<(nnc_compiler::ir::Graph, String), String> {
    let mut graph = module.infer_graph.clone();
    graph.outputs.retain(|o| o.kind == OutputKind::Prediction);
    let Some(pred) = graph.outputs.first().map(|o| o.name.clone()) else {
        return Err("the model has no prediction output".into());
    };
    graph.outputs.truncate(1);
    Ok((nnc_compiler::opt::optimize(&graph)?, pred))
}

/// The data inputs the model's prediction reads, in declaration order. An
/// input that no path leads from to the prediction is not needed: the real
/// images of a GAN, whose generated `output` reads only the noise and the
/// requested class.
pub fn prediction_inputs(module: &Module) -> Result<Vec<PredictInput>, String> {
    let (graph, _) = prediction_graph(module)?;
    Ok(read_inputs(&graph))
}

/// The data inputs of `graph` that its outputs depend on.
fn read_inputs(graph: &nnc_compiler::ir::Graph) -> Vec<PredictInput> {
    // Nodes are in topological order: one backward sweep marks every value
    // an output depends on.
    let mut needed = vec![false; graph.nodes.len()];
    for o in &graph.outputs {
        needed[o.value.index()] = true;
    }
    for i in (0..graph.nodes.len()).rev() {
        if needed[i] {
            for a in &graph.nodes[i].args {
                needed[a.index()] = true;
            }
        }
    }
    graph
        .inputs()
        .filter(|(id, _)| needed[id.index()])
        .filter_map(|(_, n)| match &n.op {
            Op::Input { name, kind: InputKind::Data } => Some(PredictInput {
                name: name.clone(),
                dtype: n.ty.dtype,
                shape: n
                    .ty
                    .shape
                    .dims()
                    .iter()
                    .skip(1)
                    .map(|d| if let Dim::Known(k) = d { *k } else { 0 })
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

/// [`predict`] with `options`; returns the prediction and warnings (the
/// constants that changed since the checkpoint, with `allow_changes`).
/// For a prediction that reads one input; [`predict_inputs`] feeds several.
pub fn predict_with(
    module: &Module,
    checkpoint_path: &Path,
    input: &ArrayD<f32>,
    input_label: &str,
    options: &PredictOptions,
) -> Result<(ArrayD<f32>, Vec<String>), String> {
    let needed = prediction_inputs(module)?;
    let [only] = needed.as_slice() else {
        let names: Vec<String> = needed.iter().map(|i| format!("`{}`", i.name)).collect();
        return Err(format!(
            "predict needs one array for each input the prediction reads; this model's prediction reads {} ({})",
            needed.len(),
            names.join(", ")
        ));
    };
    let given = NamedInput { name: only.name.clone(), values: input.clone(), label: input_label.to_string() };
    predict_inputs(module, checkpoint_path, &[given], options)
}

/// One input's values checked against `want` and ready to feed: f32
/// values normalised with the checkpoint's statistics, or class labels as
/// i32 (whole numbers only).
enum Fed {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

fn fed_input(given: &NamedInput, want: &PredictInput, n: usize, ckpt: &Checkpoint) -> Result<Fed, String> {
    let (label, name) = (&given.label, &want.name);
    let per: usize = want.shape.iter().product();
    let input = &given.values;
    let count = input.shape().first().copied().unwrap_or(0);
    if count == 0 || input.len() != count * per {
        return Err(format!(
            "{label}: the array has shape {:?}; the model's input `{name}` needs [N, {}]",
            input.shape(),
            want.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    if count != n {
        return Err(format!("{label}: the array for `{name}` has {count} examples, the other inputs {n}"));
    }
    if let Some(i) = input.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "{label}: the array holds a non-finite value at flat index {i} (example {})",
            i / per
        ));
    }
    match want.dtype {
        DType::F32 => {
            let mut x: Vec<f32> = input.iter().copied().collect();
            let mut shape = vec![n];
            shape.extend(&want.shape);
            if let Some(stats) = ckpt.stats(name) {
                stats.apply(&mut x, &shape);
            }
            Ok(Fed::F32(x))
        }
        DType::I32 => {
            let mut x = Vec::with_capacity(input.len());
            for (i, &v) in input.iter().enumerate() {
                if v.fract() != 0.0 || v.abs() > 16_777_216.0 {
                    return Err(format!(
                        "{label}: input `{name}` is i32 (class labels) and the array holds {v} at flat index \
                         {i} (example {}); give whole numbers",
                        i / per
                    ));
                }
                x.push(v as i32);
            }
            Ok(Fed::I32(x))
        }
        other => Err(format!("input `{name}` is {}, predict reads f32 and i32 inputs", other.name())),
    }
}

/// The model's prediction for every example of `inputs`, one array for
/// each input the prediction reads ([`prediction_inputs`]; others are
/// ignored), all with the same number of examples on the first axis, in
/// physical units: f32 inputs get the checkpoint's normalisation, i32
/// inputs (class labels) must hold whole numbers. The prediction is mapped
/// back to physical units. Batch k draws its random numbers from the key
/// (seed, k), so a seed gives the same prediction whatever the threads.
/// Returns the prediction and warnings (constants changed since the
/// checkpoint, with `allow_changes`).
pub fn predict_inputs(
    module: &Module,
    checkpoint_path: &Path,
    inputs: &[NamedInput],
    options: &PredictOptions,
) -> Result<(ArrayD<f32>, Vec<String>), String> {
    let threads = options.threads;
    let (graph, pred) = prediction_graph(module)?;
    let needed = read_inputs(&graph);
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let warnings = check_constants(&ckpt, module, checkpoint_path, options.allow_changes)?;
    let constants = constant_inputs(module)?;
    match (needed.as_slice(), options.count) {
        ([], None) => {
            return Err("the prediction reads no input (it is drawn from the model's random numbers), so \
                        nothing says how many examples to predict: give their number (`--count N`)"
                .into())
        }
        ([first, ..], Some(_)) => {
            return Err(format!(
                "the prediction reads input `{}`: the examples are those of the input, not a count",
                first.name
            ))
        }
        _ => {}
    }
    let mut fed = vec![];
    let mut n = None;
    for want in &needed {
        let given = inputs
            .iter()
            .find(|g| g.name == want.name)
            .ok_or_else(|| format!("no array for input `{}`, which the prediction reads", want.name))?;
        let count = *n.get_or_insert_with(|| given.values.shape().first().copied().unwrap_or(0));
        fed.push(fed_input(given, want, count, &ckpt)?);
    }
    let n = n.or(options.count).unwrap_or(0);
    if n == 0 {
        return Err("no examples to predict: the first axis of the input, or the count, is 0".into());
    }
    let batch = module.train.as_ref().map_or(32, |t| t.batch).clamp(1, n);
    let seed = options.seed.unwrap_or_else(|| module.train.as_ref().map_or(0, |t| t.seed));
    let keys = names_of(&graph, |k| matches!(k, InputKind::Key));
    let exec = ExecOptions { threads, checking: Checking::Unchecked, gemm: Gemm::Tuned };
    let mut exes: BTreeMap<usize, Executable> = BTreeMap::new();
    let mut out: Vec<f32> = vec![];
    let mut out_shape = vec![];
    let model_names = names_of(&graph, |k| matches!(k, InputKind::Param { .. } | InputKind::State { .. }));
    for start in (0..n).step_by(batch) {
        let b = batch.min(n - start);
        if let std::collections::btree_map::Entry::Vacant(slot) = exes.entry(b) {
            let mut exe = compiled(&graph, b, &exec, seed, &constants)?;
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
        for (want, values) in needed.iter().zip(&fed) {
            let per: usize = want.shape.iter().product();
            let rows = start * per..(start + b) * per;
            match values {
                Fed::F32(x) => write(exe, &want.name, &x[rows])?,
                Fed::I32(x) => {
                    let mut shape = vec![b];
                    shape.extend(&want.shape);
                    let a =
                        ArrayD::from_shape_vec(IxDyn(&shape), x[rows].to_vec()).map_err(|e| e.to_string())?;
                    exe.set_input(&want.name, &Tensor::Int(a))?;
                }
            }
        }
        set_key(exe, &keys, seed, (start / batch) as u64)?;
        exe.run()?;
        let Tensor::Float(y) = exe.output(&pred)? else {
            return Err(format!("prediction `{pred}` is not f32"));
        };
        out_shape = y.shape()[1..].to_vec();
        out.extend(y.iter());
    }
    let mut full = vec![n];
    full.extend(&out_shape);
    let out_dims: Vec<Dim> = out_shape.iter().map(|&k| Dim::Known(k)).collect();
    if let Some(stats) = output_stats(module, &ckpt, &out_dims) {
        stats.invert(&mut out, &full);
    }
    Ok((ArrayD::from_shape_vec(IxDyn(&full), out).map_err(|e| e.to_string())?, warnings))
}

/// The statistics that map a prediction whose examples have the shape
/// `example` back to physical units: the target's, or for a model without
/// a target the (first) data input's when the prediction has that input's
/// shape (an autoencoder's reconstruction, a GAN's generated images).
fn output_stats<'c>(module: &Module, ckpt: &'c Checkpoint, example: &[Dim]) -> Option<&'c Stats> {
    if let Some(target) = names_of(&module.infer_graph, |k| matches!(k, InputKind::Target)).first() {
        return ckpt.stats(target);
    }
    let (_, first) =
        module.infer_graph.inputs().find(|(_, n)| matches!(n.op, Op::Input { kind: InputKind::Data, .. }))?;
    let Op::Input { name, .. } = &first.op else { return None };
    ckpt.stats(name).filter(|_| first.ty.shape.dims().get(1..) == Some(example))
}

/// Everything needed to run a checkpoint's model outside nnc, as `nnc
/// predict` runs it (what `nnc export` writes).
#[derive(Clone, Debug)]
pub struct InferenceModel {
    /// The graph of [`predict`]: the optimised inference graph with one
    /// prediction output.
    pub graph: Graph,
    /// The value of every parameter, model state and constant the graph
    /// reads.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// The statistics `predict` normalises each data input with.
    pub inputs: Vec<(String, Stats)>,
    /// The statistics `predict` maps the prediction back with.
    pub output: Option<Stats>,
    /// Constants that changed since the checkpoint (with `allow_changes`).
    pub warnings: Vec<String>,
}

/// The inference model of `module` with the parameters, state and
/// normalisation of the checkpoint at `checkpoint_path`. A checkpoint
/// trained with other constants is refused unless `allow_changes`.
pub fn inference_model(
    module: &Module,
    checkpoint_path: &Path,
    allow_changes: bool,
) -> Result<InferenceModel, String> {
    let (graph, pred) = prediction_graph(module)?;
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let warnings = check_constants(&ckpt, module, checkpoint_path, allow_changes)?;
    let constants = constant_inputs(module)?;
    let mut tensors = vec![];
    let mut data_inputs = vec![];
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        match kind {
            InputKind::Param { .. } | InputKind::State { .. } => {
                let saved = ckpt.tensor(name).ok_or_else(|| {
                    format!("{}: the checkpoint has no tensor `{name}`", checkpoint_path.display())
                })?;
                let want = node.ty.shape.as_known().unwrap_or_default();
                if saved.shape() != want.as_slice() {
                    return Err(format!(
                        "{}: tensor `{name}` has shape {:?}, the model needs {want:?}",
                        checkpoint_path.display(),
                        saved.shape()
                    ));
                }
                tensors.push((name.clone(), Tensor::Float(saved.as_standard_layout().into_owned())));
            }
            InputKind::Const => {
                let value = constants
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| format!("no constant `{name}`"))?;
                tensors.push(value.clone());
            }
            InputKind::Data => data_inputs.push((name.clone(), node.ty.shape.clone())),
            _ => {}
        }
    }
    let inputs: Vec<(String, Stats)> = data_inputs
        .iter()
        .filter_map(|(name, _)| ckpt.stats(name).map(|s| (name.clone(), s.clone())))
        .collect();
    // The same statistics as `predict_inputs` maps its prediction with.
    let output = graph.find_output(&pred).and_then(|o| {
        let example = graph.ty(o.value).shape.dims().get(1..).unwrap_or_default().to_vec();
        output_stats(module, &ckpt, &example).cloned()
    });
    Ok(InferenceModel { graph, tensors, inputs, output, warnings })
}

/// Which examples [`predictions`] runs the model on.
#[derive(Clone, Debug)]
pub struct PredictionOptions {
    pub subset: Subset,
    /// One example, counted from 0 within the subset; `None`: all of them.
    pub example: Option<usize>,
    pub threads: usize,
    /// Go on when the model's constants differ from the checkpoint's.
    pub allow_changes: bool,
}

/// The values of one input, target or prediction for several examples, in
/// physical units (missing values NaN).
#[derive(Clone, Debug)]
pub struct Values {
    /// The name of the input, target or prediction in the model.
    pub name: String,
    /// `[examples, ...]`: the leading axis counts the examples.
    pub values: ArrayD<f32>,
    /// The physical unit (`mm/h`, or one per variable: `Pa, K, m/s`).
    pub unit: Option<String>,
    /// The names of the variables, if the source names them.
    pub variables: Vec<String>,
    /// Time on axis 1 of an example and the variables on axis 2 (else the
    /// variables on axis 1).
    pub sequence: bool,
}

/// A checkpoint's predictions for examples of the model's data, with the
/// inputs and targets they came from, all in physical units: what `nnc
/// predict` would write for those inputs.
#[derive(Clone, Debug)]
pub struct Predictions {
    /// The data source, as messages name it.
    pub origin: String,
    /// The number of examples in the subset.
    pub subset_size: usize,
    /// The positions of the examples within the subset (from 0).
    pub positions: Vec<usize>,
    pub input: Values,
    /// `None` for a model without a target (it is compared with its input).
    pub target: Option<Values>,
    pub prediction: Values,
    /// Where the cells of the examples' fields lie, when the data say.
    pub grid: Option<crate::data::Grid>,
    /// Constants that changed since the checkpoint (with `allow_changes`).
    pub warnings: Vec<String>,
}

/// The checkpoint's predictions for the examples of a subset of the
/// model's data (loaded, split and normalised as `nnc eval` does), with
/// their inputs and targets, in physical units. A target of class labels
/// is an error: there is no value to compare a prediction with.
pub fn predictions(
    module: &Module,
    model_path: &Path,
    checkpoint_path: &Path,
    options: &PredictionOptions,
) -> Result<Predictions, RunError> {
    let config = module
        .train
        .clone()
        .ok_or_else(|| format!("{}: the model has no `train` section", model_path.display()))?;
    let ckpt = Checkpoint::load(checkpoint_path).map_err(|e| e.to_string())?;
    check_model_name(&ckpt, module, checkpoint_path)?;
    let warnings = check_constants(&ckpt, module, checkpoint_path, options.allow_changes)?;
    let base_dir = model_path.parent().unwrap_or(Path::new("."));
    let data = prepare(module, &config, base_dir, Some(&ckpt), true)?;
    let subset: Vec<usize> = match options.subset {
        Subset::Validation => data.val.clone(),
        Subset::Training => data.train.clone(),
        Subset::All => (0..data.train.len() + data.val.len()).collect(),
    };
    let name = format!("{:?}", options.subset).to_lowercase();
    if subset.is_empty() {
        return Err(format!("{}: the {name} subset is empty", data.origin).into());
    }
    let positions: Vec<usize> = match options.example {
        Some(i) if i >= subset.len() => {
            return Err(format!(
                "there is no example {i}: the {name} subset of {} has {} examples, 0 to {}",
                data.origin,
                subset.len(),
                subset.len() - 1
            )
            .into())
        }
        Some(i) => vec![i],
        None => (0..subset.len()).collect(),
    };
    let rows: Vec<usize> = positions.iter().map(|&p| subset[p]).collect();
    let values = |slot: &Slot, per: Vec<f32>| -> Result<Values, String> {
        let mut shape = vec![rows.len()];
        shape.extend(&slot.shape);
        let n = slot.per();
        let picked: Vec<f32> = rows.iter().flat_map(|&r| per[r * n..(r + 1) * n].iter().copied()).collect();
        Ok(Values {
            name: slot.name.clone(),
            values: ArrayD::from_shape_vec(IxDyn(&shape), picked).map_err(|e| e.to_string())?,
            unit: slot.unit.clone(),
            variables: slot.variables.clone(),
            sequence: slot.sequence,
        })
    };
    let input = values(&data.input, data.input.physical_values()?)?;
    let target = match &data.target {
        Some(t) => {
            let physical = t.physical_values().map_err(|_| {
                format!(
                    "the target `{}` holds class labels, not values a prediction can be compared with",
                    t.name
                )
            })?;
            Some(values(t, physical)?)
        }
        None => None,
    };
    let batch = config.batch.min(rows.len()).max(1);
    let mut engine = load_model(module, &ckpt, checkpoint_path, options.threads, batch)?;
    let (pred, per_shape) = predict_rows(&mut engine, &data, &rows, batch)?;
    let mut shape = vec![rows.len()];
    shape.extend(&per_shape);
    let reference = target.as_ref().unwrap_or(&input);
    let prediction = Values {
        name: engine.prediction.clone().unwrap_or_default(),
        values: ArrayD::from_shape_vec(IxDyn(&shape), pred).map_err(|e| e.to_string())?,
        unit: reference.unit.clone(),
        variables: reference.variables.clone(),
        sequence: reference.sequence,
    };
    Ok(Predictions {
        origin: data.origin.clone(),
        subset_size: subset.len(),
        positions,
        input,
        target,
        prediction,
        grid: data.grid.as_ref().map(|g| g.select(&rows)),
        warnings,
    })
}
