//! Models with several losses, each minimised by its own optimiser: every
//! optimiser updates only its parameters, the steps of one batch run in the
//! order written (the second sees what the first wrote), every loss is
//! logged, validated and evaluated and decreases, and an interrupted run
//! resumes to the same bytes.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::codegen::Checking;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{InputKind, Op, OutputKind};
use nnc_runtime::data::{self, LoadOptions};
use nnc_runtime::io::tensor_file;
use nnc_runtime::train::{self, init, split, EpochRecord, Options, Silent};

/// Two heads on a shared trunk `F`: `fit_a` trains head `A` by Adam,
/// `fit_c` head `C` by SGD with momentum (`OPTIMIZERS` replaces the two
/// optimizer lines).
const HEADS: &str = "\
block head(x, units: int) {
  h = x |> dense(units) |> tanh
  return h |> dense(1)
}

model heads {
  input  x: f32[B, 1]
  target y: f32[B, 1]
  F = dense(8)
  A = head(16)
  C = head(8)
  t = x |> F |> tanh
  pa = t |> A
  loss fit_a = mse(pa, y)
  loss fit_c = mae(t |> C, y)
  output pa
}

train {
  data = synthetic.sine(n: 512)
  batch = 32
  epochs = 4
  seed = 3
OPTIMIZERS
}
";

const SEPARATE: &str = "  optimizer fit_a = adam(lr: 1e-2, params: A)\n  \
                        optimizer fit_c = sgd(lr: 0.05, momentum: 0.9, params: C)";

/// Both optimisers update the shared trunk too (each with its own state).
const OVERLAPPING: &str = "  optimizer fit_a = adam(lr: 1e-2, params: [A, F])\n  \
                           optimizer fit_c = sgd(lr: 0.05, momentum: 0.9, params: [C, F])";

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-losses-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes the heads model with `optimizers` to `dir/heads.nn`, the `train`
/// keys `keys` set to other values.
fn write_heads(dir: &Path, optimizers: &str, keys: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("heads.nn");
    let mut source = HEADS.replace("OPTIMIZERS", optimizers);
    for (key, value) in keys {
        let line = source.lines().find(|l| l.trim_start().starts_with(&format!("{key} ="))).expect("a key");
        source = source.replace(line, &format!("  {key} = {value}"));
    }
    fs::write(&path, source).expect("write the model");
    path
}

fn options(dir: &Path, epochs: Option<usize>) -> Options {
    Options {
        threads: 2,
        epochs,
        checkpoint: dir.join("heads.safetensors"),
        run_dir: dir.join("heads.run"),
        resume: None,
        allow_changes: false,
        checking: Checking::Unchecked,
        ranks: None,
    }
}

fn module_of(path: &Path) -> (nnc_compiler::Module, String) {
    let source = fs::read_to_string(path).expect("read the model");
    let module = nnc_compiler::compile(&source)
        .unwrap_or_else(|d| panic!("{}", nnc_compiler::diag::render_plain("heads.nn", &source, &d)))
        .module;
    (module, source)
}

fn train_heads(path: &Path, opts: &Options) -> Vec<EpochRecord> {
    let (module, source) = module_of(path);
    train::train(&module, &source, path, opts, &mut Silent)
        .unwrap_or_else(|e| panic!("training: {e}"))
        .records
}

/// The tensors of a checkpoint by name.
fn tensors(path: &Path) -> HashMap<String, ArrayD<f32>> {
    tensor_file::load(path).expect("the checkpoint loads").tensors.into_iter().collect()
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn each_optimizer_updates_only_its_parameters_and_every_loss_decreases() {
    let dir = temp_dir("separate");
    let path = write_heads(&dir, SEPARATE, &[]);
    let records = train_heads(&path, &options(&dir, None));
    let (first, last) = (&records[0], records.last().expect("epochs ran"));
    let names: Vec<&str> = last.losses.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["fit_a", "fit_c"]);
    for (a, b) in first.losses.iter().zip(&last.losses) {
        assert!(b.train < a.train, "training loss `{}`: {} → {}", a.name, a.train, b.train);
        let (va, vb) = (a.val.expect("validated"), b.val.expect("validated"));
        assert!(vb < va, "validation loss `{}`: {va} → {vb}", a.name);
    }
    assert_eq!((last.losses[0].lr, last.losses[1].lr), (1e-2, 0.05));
    let sum: f64 = last.losses.iter().map(|l| l.val.unwrap_or(f64::NAN)).sum();
    assert_eq!(last.val_loss, Some(sum), "early stopping watches the sum");

    // The trunk belongs to no optimiser: it keeps its initial values; the
    // heads moved.
    let (module, _) = module_of(&path);
    let initial: HashMap<String, ArrayD<f32>> =
        init::initial_values(&module.train_graph, 3).expect("initial values").into_iter().collect();
    let saved = tensors(&options(&dir, None).checkpoint);
    for (name, value) in &initial {
        let moved = bits(&saved[name]) != bits(value);
        let owner = name.split('.').next().unwrap_or("");
        assert_eq!(moved, owner != "F", "`{name}` moved: {moved}");
    }
    // Each optimiser's state covers its own parameters, under its loss's name.
    assert_eq!(saved["optim.fit_a.step"].iter().next().copied(), Some(last.step as f32));
    for name in saved.keys().filter(|n| n.starts_with("optim.")) {
        let ok = name == "optim.fit_a.step"
            || name.starts_with("optim.fit_a.A.") && name.ends_with(".exp_avg")
            || name.starts_with("optim.fit_a.A.") && name.ends_with(".exp_avg_sq")
            || name.starts_with("optim.fit_c.C.") && name.ends_with(".momentum_buffer");
        assert!(ok, "unexpected optimiser state `{name}`");
    }
    assert!(!saved.contains_key("optim.step"));

    // The log has every loss; `nnc plot` draws a panel per loss.
    let log = fs::read_to_string(dir.join("heads.run/log.jsonl")).expect("the log");
    let line: serde_json::Value = serde_json::from_str(log.lines().last().expect("a line")).expect("JSON");
    for key in ["train_loss.fit_a", "val_loss.fit_c", "lr.fit_c", "train_loss", "val_loss"] {
        assert!(line.get(key).is_some_and(|v| v.is_number()), "no `{key}` in {line}");
    }
    let plot = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["plot", "heads.run", "-o", "heads.svg"])
        .current_dir(&dir)
        .output()
        .expect("run nnc");
    assert!(plot.status.success(), "{}", String::from_utf8_lossy(&plot.stderr));
    let svg = fs::read_to_string(dir.join("heads.svg")).expect("the plot");
    for title in ["loss fit_a", "loss fit_c", "val_loss.fit_c"] {
        assert!(svg.contains(title), "the plot lacks `{title}`");
    }

    // `nnc eval` reports every loss.
    let eval = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["eval", "heads.nn", "--checkpoint", "heads.safetensors", "--threads", "1"])
        .current_dir(&dir)
        .output()
        .expect("run nnc");
    let stdout = String::from_utf8_lossy(&eval.stdout);
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    assert!(stdout.contains("\nloss fit_a = ") && stdout.contains("\nloss fit_c = "), "{stdout}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_epoch_lines_name_every_loss() {
    let dir = temp_dir("lines");
    write_heads(&dir, SEPARATE, &[("epochs", "1")]);
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["train", "heads.nn", "--threads", "1"])
        .current_dir(&dir)
        .output()
        .expect("run nnc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("epoch 1/1")).unwrap_or_else(|| panic!("{stdout}"));
    for part in ["  train_loss fit_a ", " fit_c ", "  val_loss fit_a ", "  lr fit_a 0.0100 fit_c 0.0500  "] {
        assert!(line.contains(part), "`{part}` not in {line:?}");
    }
    fs::remove_dir_all(&dir).ok();
}

/// Two epochs in one run and one epoch resumed for a second end in the same
/// checkpoint, byte for byte: every optimiser's state and the step count
/// travel in the checkpoint.
#[test]
fn a_resumed_run_ends_in_the_same_bytes() {
    let dir = temp_dir("resume");
    let (whole, part) = (dir.join("whole"), dir.join("part"));
    for d in [&whole, &part] {
        fs::create_dir_all(d).expect("create");
        // A random draw per step, which both steps of a batch share.
        let source = HEADS
            .replace("t = x |> F |> tanh", "t = (x + normal([B, 1], std: 0.01)) |> F |> tanh")
            .replace("OPTIMIZERS", OVERLAPPING);
        fs::write(d.join("heads.nn"), source).expect("write");
    }
    train_heads(&whole.join("heads.nn"), &options(&whole, Some(2)));
    train_heads(&part.join("heads.nn"), &options(&part, Some(1)));
    let mut resumed = options(&part, Some(2));
    resumed.resume = Some(part.join("heads.safetensors"));
    train_heads(&part.join("heads.nn"), &resumed);
    let (a, b) = (whole.join("heads.safetensors"), part.join("heads.safetensors"));
    let saved = tensors(&a);
    assert!(
        saved.contains_key("optim.fit_a.F.weight.exp_avg")
            && saved.contains_key("optim.fit_c.F.weight.momentum_buffer")
    );
    let same = fs::read(&a).expect("read") == fs::read(&b).expect("read");
    if !same {
        let other = tensors(&b);
        let differ: Vec<&String> =
            saved.keys().filter(|k| other.get(*k).map(bits) != Some(bits(&saved[*k]))).collect();
        panic!("the checkpoints differ; tensors: {differ:?}");
    }
    fs::remove_dir_all(&dir).ok();
}

/// One iteration of the compiled run equals the steps run one after the
/// other in the reference interpreter: the second step starts from the
/// parameters and state the first wrote, with the same random key.
#[test]
fn the_second_step_sees_what_the_first_wrote() {
    let dir = temp_dir("order");
    // One batch of every training example: one iteration per epoch.
    let path = write_heads(&dir, OVERLAPPING, &[("epochs", "1"), ("batch", "512")]);
    train_heads(&path, &options(&dir, None));
    let saved = tensors(&options(&dir, None).checkpoint);

    let (module, _) = module_of(&path);
    let config = module.train.clone().expect("a train section");
    let examples = data::load(
        &config.data,
        &module.train_graph,
        &LoadOptions { seed: config.seed, missing: config.missing, base_dir: &dir },
    )
    .expect("the data");
    let (train_rows, _) = examples.split(config.split);
    let rows = split::epoch_order(&train_rows, config.seed, 0);
    let batch = |field: usize| -> Tensor<f32> {
        let data::ArrayValue::F32(a) = &examples.fields[field].value else { panic!("f32 data") };
        let v: Vec<f32> = rows.iter().map(|&r| a[[r, 0]]).collect();
        Tensor::Float(ArrayD::from_shape_vec(IxDyn(&[rows.len(), 1]), v).expect("shape"))
    };
    let mut values: HashMap<String, Tensor<f32>> = HashMap::new();
    values.insert(examples.fields[0].name.clone(), batch(0));
    values.insert(examples.fields[1].name.clone(), batch(1));
    let key = nnc_compiler::ir::rng::seed_key(config.seed)[0];
    values.insert("rng".into(), Tensor::Int(ndarray::arr1(&[key, 1]).into_dyn()));
    let steps = nnc_compiler::pipeline::train_steps(&module).expect("the steps");
    for (step, lr) in steps.iter().zip([1e-2f32, 0.05]) {
        for (name, value) in init::initial_values(&step.graph, config.seed).expect("initial values") {
            values.entry(name).or_insert(Tensor::Float(value));
        }
        values.insert("lr".into(), Tensor::Float(ArrayD::from_elem(IxDyn(&[]), lr)));
        let mut inputs = HashMap::new();
        for (_, node) in step.graph.inputs() {
            let Op::Input { name, kind } = &node.op else { continue };
            let key_name = matches!(kind, InputKind::Key).then(|| "rng".to_string());
            let value = values
                .get(key_name.as_ref().unwrap_or(name))
                .unwrap_or_else(|| panic!("no value for `{name}`"));
            inputs.insert(name.clone(), value.clone());
        }
        let outputs = interp::run::<f32>(&step.graph, &inputs).expect("the step runs");
        for (name, value) in outputs {
            let kind = step.graph.outputs.iter().find(|o| o.name == name).map(|o| o.kind);
            if matches!(kind, Some(OutputKind::Param | OutputKind::State)) {
                values.insert(name, value);
            }
        }
    }
    let mut compared = 0;
    for (name, want) in &values {
        let (Some(got), Tensor::Float(want)) = (saved.get(name), want) else { continue };
        for (g, w) in got.iter().zip(want.iter()) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "`{name}`: compiled {g}, reference {w}");
        }
        compared += 1;
    }
    // Parameters, Adam's moments and step, SGD's momentum buffers.
    assert!(compared >= 20, "only {compared} tensors compared");
    fs::remove_dir_all(&dir).ok();
}

/// A run killed after its first epoch's checkpoint and resumed ends in the
/// same bytes as a run that was never interrupted.
#[test]
fn a_killed_run_resumes_to_the_same_bytes() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = temp_dir("kill");
    // Long enough epochs that the kill lands inside the second one.
    let source = HEADS
        .replace("t = x |> F |> tanh", "t = (x + normal([B, 1], std: 0.01)) |> F |> tanh")
        .replace("synthetic.sine(n: 512)", "synthetic.sine(n: 200000)")
        .replace("OPTIMIZERS", OVERLAPPING);
    fs::write(dir.join("heads.nn"), source).expect("write");
    let args = |ckpt: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["train", "heads.nn", "--quiet", "--epochs", "2", "--threads", "2", "--checkpoint", ckpt]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(["--run-dir".to_string(), format!("{ckpt}.run")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let nnc = || Command::new(env!("CARGO_BIN_EXE_nnc"));
    let full = nnc().current_dir(&dir).args(args("full.safetensors", &[])).output().expect("run nnc");
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let mut child = nnc()
        .current_dir(&dir)
        .args(args("cut.safetensors", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nnc");
    let start = Instant::now();
    while !dir.join("cut.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("kill nnc");
    child.wait().expect("reap nnc");
    let cut = tensor_file::load(&dir.join("cut.safetensors")).expect("the checkpoint is complete");
    assert_eq!(cut.metadata["finished"], "false", "the run ended before it was killed");
    let resumed = nnc()
        .current_dir(&dir)
        .args(args("cut.safetensors", &["--resume", "cut.safetensors"]))
        .output()
        .expect("run nnc");
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let (a, b) = (
        fs::read(dir.join("full.safetensors")).expect("read"),
        fs::read(dir.join("cut.safetensors")).expect("read"),
    );
    assert!(a == b, "the resumed run's checkpoint differs from the uninterrupted run's");
    fs::remove_dir_all(&dir).ok();
}
