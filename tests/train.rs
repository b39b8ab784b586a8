//! Training end to end: models reach their quality thresholds on real and
//! synthetic data, interrupted runs resume bit for bit, and bad input gives a
//! clear error without a panic and without touching an existing checkpoint.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nnc_compiler::codegen::Checking;
use nnc_runtime::data::{self, LoadOptions};
use nnc_runtime::io::tensor_file;
use nnc_runtime::train::{self, EpochRecord, Options, Silent};

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-train-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn options(dir: &Path, epochs: Option<usize>, threads: usize) -> Options {
    Options {
        threads,
        epochs,
        checkpoint: dir.join("model.safetensors"),
        run_dir: dir.join("run"),
        resume: None,
        allow_changes: false,
        checking: Checking::Unchecked,
        ranks: None,
    }
}

/// Trains `models/FILE` with the library, as `nnc train` does.
fn train_model(file: &str, opts: &Options) -> Vec<EpochRecord> {
    let path = common::root().join("models").join(file);
    let source = fs::read_to_string(&path).expect("read model");
    let module =
        nnc_compiler::compile(&source).unwrap_or_else(|d| panic!("{file} does not compile: {d:?}")).module;
    train::train(&module, &source, &path, opts, &mut Silent)
        .unwrap_or_else(|e| panic!("training {file}: {e}"))
        .records
}

fn metric(record: &EpochRecord, label: &str) -> f64 {
    record.metrics.iter().find(|(l, _)| l == label).map(|(_, v)| *v).unwrap_or(f64::NAN)
}

#[test]
fn sine_reaches_validation_rmse_0_02() {
    let dir = temp_dir("sine");
    let records = train_model("sine.nn", &options(&dir, None, 2));
    let last = records.last().expect("epochs ran");
    // `mse` on unnormalised data: the validation RMSE is its square root.
    let rmse = last.val_loss.expect("validation loss").sqrt();
    assert!(rmse <= 0.02, "validation RMSE {rmse} > 0.02");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn digits_reach_test_accuracy_0_97() {
    // split = 0.8 validates on exactly the rows with index % 5 == 4.
    let dir = temp_dir("digits");
    let records = train_model("digits.nn", &options(&dir, None, 2));
    let accuracy = metric(records.last().expect("epochs ran"), "accuracy");
    assert!(accuracy >= 0.97, "held-out accuracy {accuracy} < 0.97");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn lorenz96_increment_model_halves_the_persistence_error() {
    let dir = temp_dir("lorenz");
    let path = common::root().join("models/lorenz96.nn");
    let source = fs::read_to_string(&path).expect("read model");
    let module = nnc_compiler::compile(&source).expect("compiles").module;
    let config = module.train.clone().expect("train section");
    let opts = LoadOptions { seed: config.seed, missing: config.missing, base_dir: &dir };
    let examples = data::load(&config.data, &module.train_graph, &opts).expect("data");
    let (_, val) = examples.split(config.split);
    let (data::ArrayValue::F32(x), data::ArrayValue::F32(y)) =
        (&examples.fields[0].value, &examples.fields[1].value)
    else {
        panic!("lorenz96 arrays are f32")
    };
    let k = x.shape()[1];
    let x = x.as_slice().expect("contiguous");
    let y = y.as_slice().expect("contiguous");
    let sq: f64 = val
        .iter()
        .flat_map(|&i| (0..k).map(move |j| (f64::from(x[i * k + j]) - f64::from(y[i * k + j])).powi(2)))
        .sum();
    let persistence = (sq / (val.len() * k) as f64).sqrt();
    let records = train_model("lorenz96.nn", &options(&dir, None, 2));
    let rmse = metric(records.last().expect("epochs ran"), "rmse");
    assert!(rmse <= 0.5 * persistence, "model RMSE {rmse} vs persistence {persistence}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn resunet_improves_dice_on_eddies() {
    let dir = temp_dir("eddies");
    let records = train_model("resunet.nn", &options(&dir, Some(3), 2));
    let first = metric(&records[0], "dice");
    let last = metric(records.last().expect("epochs ran"), "dice");
    assert!(last > first + 0.05, "Dice went from {first} to {last}");
    fs::remove_dir_all(&dir).ok();
}

/// Every tensor and the step of a checkpoint file.
fn checkpoint_contents(path: &Path) -> Vec<(String, Vec<u32>)> {
    let file = tensor_file::load(path).expect("checkpoint loads");
    let mut out: Vec<(String, Vec<u32>)> =
        file.tensors.iter().map(|(n, t)| (n.clone(), t.iter().map(|v| v.to_bits()).collect())).collect();
    for key in ["epoch", "step", "finished"] {
        out.push((format!("meta.{key}"), file.metadata[key].bytes().map(u32::from).collect()));
    }
    out
}

/// Asserts that two checkpoints hold the same bits, naming the first
/// difference.
fn assert_same_checkpoint(a: &Path, b: &Path) {
    let (a, b) = (checkpoint_contents(a), checkpoint_contents(b));
    assert_eq!(a.len(), b.len(), "different tensors");
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let first = va.iter().zip(vb).position(|(x, y)| x != y);
        assert!(first.is_none() && va.len() == vb.len(), "`{na}` differs first at element {first:?}");
    }
}

#[test]
fn resuming_after_an_epoch_is_bit_identical_to_an_uninterrupted_run() {
    // digits: dropout (random keys per step), a partial last batch and SGD
    // momentum state all have to survive the interruption.
    let dir = temp_dir("resume");
    let whole = dir.join("whole");
    let part = dir.join("part");
    train_model("digits.nn", &options(&whole, Some(4), 2));
    train_model("digits.nn", &options(&part, Some(2), 2));
    let mut resumed = options(&part, Some(4), 2);
    resumed.resume = Some(part.join("model.safetensors"));
    train_model("digits.nn", &resumed);
    assert_same_checkpoint(&whole.join("model.safetensors"), &part.join("model.safetensors"));
    // A run that reached its last epoch continues when asked for more.
    let log = fs::read_to_string(part.join("run/log.jsonl")).expect("log");
    assert_eq!(log.lines().count(), 4, "{log}");
    fs::remove_dir_all(&dir).ok();
}

fn nnc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nnc: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_clean_failure(out: &Output, wanted: &[&str]) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "nnc panicked:\n{err}");
    assert_ne!(out.status.code(), Some(0), "nnc succeeded:\n{err}");
    for w in wanted {
        assert!(err.contains(w), "stderr lacks `{w}`:\n{err}");
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_parameters() {
    // mnist_cnn: convolutions, pooling, dropout and Adam; an epoch takes
    // long enough that the kill lands inside the run.
    let dir = temp_dir("kill");
    let model = common::root().join("models/mnist_cnn.nn");
    let model = model.to_str().expect("utf-8 path");
    let run = |ckpt: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["train", model, "--quiet", "--epochs", "2", "--threads", "2", "--checkpoint", ckpt]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(["--run-dir".to_string(), format!("{ckpt}.run")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let full = nnc(&dir, &run("full.safetensors", &[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(full.status.code(), Some(0), "{}", stderr(&full));
    let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(&dir)
        .args(run("cut.safetensors", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nnc");
    // Kill the run as soon as its first epoch's checkpoint is on disk.
    let start = Instant::now();
    while !dir.join("cut.safetensors").exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("kill nnc");
    child.wait().expect("reap nnc");
    let cut = tensor_file::load(&dir.join("cut.safetensors")).expect("the checkpoint is complete");
    assert_eq!(cut.metadata["finished"], "false", "the run ended before it was killed");
    let resumed = nnc(
        &dir,
        &run("cut.safetensors", &["--resume", "cut.safetensors"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_same_checkpoint(&dir.join("full.safetensors"), &dir.join("cut.safetensors"));
    fs::remove_dir_all(&dir).ok();
}

/// Writes `model.nn` with `data` as its data source into `dir`; `keys`
/// replace or add `train` keys (defaults: batch 4, epochs 2).
fn write_model(dir: &Path, data: &str, keys: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("model.nn");
    let mut train = vec![("data", data), ("batch", "4"), ("epochs", "2")];
    for (k, v) in keys {
        match train.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = v,
            None => train.push((k, v)),
        }
    }
    let body: String = train.iter().map(|(k, v)| format!("  {k} = {v}\n")).collect();
    let text = format!(
        "model m {{\n  input x: f32[B, 1]\n  target y: f32[B, 1]\n  out = x |> dense(8) |> tanh |> dense(1)\n  loss = mse(out, y)\n}}\n\
         train {{\n{body}}}\n"
    );
    fs::write(&path, text).expect("write model");
    path
}

fn write_npy(path: &Path, a: &ndarray::ArrayD<f32>) {
    use ndarray_npy::WriteNpyExt;
    let file = fs::File::create(path).expect("create npy");
    a.write_npy(file).expect("write npy");
}

#[test]
fn bad_input_fails_clearly_and_leaves_the_checkpoint_alone() {
    let dir = temp_dir("bad");
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[16, 1]), |i| i[0] as f32 / 16.0);
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &x.mapv(f32::sin));
    write_npy(&dir.join("x3.npy"), &ndarray::ArrayD::zeros(ndarray::IxDyn(&[16, 3])));
    let mut nan = x.clone();
    nan[[5, 0]] = f32::NAN;
    write_npy(&dir.join("xnan.npy"), &nan);
    // A good run first: its checkpoint must survive every failure below.
    let good = write_model(&dir, "npy(x: \"x.npy\", y: \"y.npy\")", &[]);
    let good = good.to_str().expect("utf-8");
    let out = nnc(&dir, &["train", good, "--quiet", "--checkpoint", "keep.safetensors"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept = fs::read(dir.join("keep.safetensors")).expect("checkpoint written");

    let cases: &[(&str, &[&str])] = &[
        ("npy(x: \"missing.npy\", y: \"y.npy\")", &["missing.npy"]),
        ("npy(x: \"x3.npy\", y: \"y.npy\")", &["x3.npy", "[16, 3]", "f32[B, 1]"]),
        ("npy(x: \"xnan.npy\", y: \"y.npy\")", &["xnan.npy", "NaN"]),
    ];
    for (data, wanted) in cases {
        let model = write_model(&dir, data, &[]);
        let out = nnc(
            &dir,
            &["train", model.to_str().expect("utf-8"), "--quiet", "--checkpoint", "keep.safetensors"],
        );
        assert_clean_failure(&out, wanted);
        assert_eq!(
            fs::read(dir.join("keep.safetensors")).expect("kept"),
            kept,
            "checkpoint touched by {data}"
        );
    }

    // Damaged checkpoints: garbage, and a real one cut in half.
    write_model(&dir, "npy(x: \"x.npy\", y: \"y.npy\")", &[]);
    fs::write(dir.join("garbage.safetensors"), b"not a checkpoint at all").expect("write");
    fs::write(dir.join("half.safetensors"), &kept[..kept.len() / 2]).expect("write");
    for name in ["garbage.safetensors", "half.safetensors"] {
        let before = fs::read(dir.join(name)).expect("read");
        let out = nnc(&dir, &["train", good, "--quiet", "--resume", name, "--checkpoint", name]);
        assert_clean_failure(&out, &[name]);
        let out = nnc(&dir, &["eval", good, "--checkpoint", name]);
        assert_clean_failure(&out, &[name]);
        assert_eq!(fs::read(dir.join(name)).expect("read"), before, "{name} was modified");
    }
    assert_eq!(fs::read(dir.join("keep.safetensors")).expect("kept"), kept);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_diverging_run_names_the_step_and_keeps_the_last_good_checkpoint() {
    let dir = temp_dir("diverge");
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[16, 1]), |i| i[0] as f32);
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &x.mapv(|v| 100.0 * v));
    // The rate grows a million-fold per epoch: epoch 1 is fine, then the
    // loss overflows.
    let model = write_model(
        &dir,
        "npy(x: \"x.npy\", y: \"y.npy\")",
        &[("optimizer", "sgd(lr: 1e-6)"), ("schedule", "exponential(1e6)"), ("epochs", "6")],
    );
    let out =
        nnc(&dir, &["train", model.to_str().expect("utf-8"), "--quiet", "--checkpoint", "c.safetensors"]);
    assert_clean_failure(&out, &["diverged", "at step", "c.safetensors"]);
    let ckpt = tensor_file::load(&dir.join("c.safetensors")).expect("the last good checkpoint loads");
    assert!(ckpt.tensors.iter().all(|(_, t)| t.iter().all(|v| v.is_finite())));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_and_predict_use_the_checkpoint_and_its_normalisation() {
    let dir = temp_dir("predict");
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[64, 1]), |i| 10.0 + i[0] as f32 / 8.0);
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &x.mapv(|v| 3.0 * v - 5.0));
    let model = write_model(
        &dir,
        "npy(x: \"x.npy\", y: \"y.npy\")",
        &[
            ("normalize", "per_variable"),
            ("epochs", "150"),
            ("optimizer", "adam(lr: 0.01)"),
            ("metrics", "[rmse]"),
        ],
    );
    let model = model.to_str().expect("utf-8");
    let out = nnc(&dir, &["train", model, "--quiet", "--checkpoint", "c.safetensors"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = nnc(&dir, &["eval", model, "--checkpoint", "c.safetensors", "--subset", "all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rmse: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rmse = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rmse in:\n{text}"));
    assert!(rmse < 0.5, "rmse {rmse} in physical units:\n{text}");
    // Another data set, from an .npz archive named like the model's arrays.
    {
        use ndarray_npy::NpzWriter;
        let xt = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[10, 1]), |i| 11.0 + i[0] as f32 / 10.0);
        let mut npz = NpzWriter::new(fs::File::create(dir.join("test.npz")).expect("create npz"));
        npz.add_array("x", &xt).expect("x");
        npz.add_array("y", &xt.mapv(|v| 3.0 * v - 5.0)).expect("y");
        npz.finish().expect("write npz");
    }
    let out = nnc(&dir, &["eval", model, "--checkpoint", "c.safetensors", "--data", "test.npz"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with("10 examples"), "{text}");
    assert!(text.contains("rmse = "), "{text}");
    let out =
        nnc(&dir, &["predict", model, "--checkpoint", "c.safetensors", "--input", "x.npy", "-o", "p.npy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    use ndarray_npy::ReadNpyExt;
    let p = ndarray::ArrayD::<f32>::read_npy(fs::File::open(dir.join("p.npy")).expect("p.npy")).expect("npy");
    assert_eq!(p.shape(), &[64, 1]);
    for (pv, xv) in p.iter().zip(x.iter()) {
        assert!((pv - (3.0 * xv - 5.0)).abs() < 1.0, "predicted {pv} for x = {xv}");
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_ends_on_the_best_parameters() {
    // With min_delta 1e6 no epoch after the first counts as an improvement,
    // so patience 2 stops the run after epoch 3 and restores epoch 1.
    let dir = temp_dir("early");
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[40, 1]), |i| i[0] as f32 / 40.0);
    write_npy(&dir.join("x.npy"), &x);
    write_npy(&dir.join("y.npy"), &x.mapv(f32::sin));
    let model = write_model(
        &dir,
        "npy(x: \"x.npy\", y: \"y.npy\")",
        &[("epochs", "10"), ("early_stop", "patience(2, min_delta: 1e6)")],
    );
    let source = fs::read_to_string(&model).expect("model");
    let module = nnc_compiler::compile(&source).expect("compiles").module;
    let opts = options(&dir, None, 1);
    let outcome = train::train(&module, &source, &model, &opts, &mut Silent).expect("trains");
    assert!(outcome.stopped_early);
    assert_eq!(outcome.records.len(), 3);
    assert_eq!(outcome.best_epoch, Some(1));
    let file = tensor_file::load(&opts.checkpoint).expect("checkpoint");
    assert_eq!(file.metadata["stopped_early"], "true");
    let params = ["out.dense_1.weight", "out.dense_1.bias"];
    for name in params {
        let current = file.get(name).expect("parameter");
        let best = file.get(&format!("best.{name}")).expect("best parameter");
        assert_eq!(current, best, "{name} is not the best epoch's");
    }
    // Resuming a run that early stopping ended has nothing left to do.
    let mut again = options(&dir, None, 1);
    again.resume = Some(opts.checkpoint.clone());
    let before = fs::read(&opts.checkpoint).expect("read");
    let outcome = train::train(&module, &source, &model, &again, &mut Silent).expect("resumes");
    assert!(outcome.records.is_empty());
    assert_eq!(fs::read(&opts.checkpoint).expect("read"), before);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_without_target_trains_against_its_input() {
    // conv_autoencoder: `loss = mse(recon, x)`; the source's `y` is unused
    // and the rmse metric compares the reconstruction with the input, in
    // the input's physical units.
    let dir = temp_dir("autoencoder");
    let records = train_model("conv_autoencoder.nn", &options(&dir, Some(2), 2));
    let (first, last) = (&records[0], &records[1]);
    assert!(last.val_loss < first.val_loss, "{first:?} → {last:?}");
    let rmse = metric(last, "rmse");
    assert!(rmse.is_finite() && rmse > 0.0, "rmse {rmse}");
    fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------
// Resume, eval and predict as a user meets them: runs that have nothing to
// do, edited model files, checkpoints of other models, output folders that do
// not exist yet and files of the wrong kind.

/// A small model on a built-in sine in `dir/model.nn`; `keys` as in
/// [`write_model`].
fn write_sine_model(dir: &Path, keys: &[(&str, &str)]) -> PathBuf {
    write_model(dir, "synthetic.sine(n: 64, noise: 0.0)", keys)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `nnc` in `dir` and asserts that it succeeded.
fn nnc_ok(dir: &Path, args: &[&str]) -> Output {
    let out = nnc(dir, args);
    assert_eq!(out.status.code(), Some(0), "nnc {}:\n{}", args.join(" "), stderr(&out));
    out
}

#[test]
fn resuming_a_finished_run_says_there_is_nothing_to_do() {
    let dir = temp_dir("nothing");
    write_sine_model(&dir, &[("epochs", "3")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--threads", "1", "--checkpoint", "t.safetensors"]);
    let out = nnc_ok(
        &dir,
        &[
            "train",
            "model.nn",
            "--resume",
            "t.safetensors",
            "--epochs",
            "2",
            "--checkpoint",
            "other/t2.safetensors",
        ],
    );
    insta::assert_snapshot!("resume_past_the_last_epoch", stdout(&out));
    assert!(!dir.join("other/t2.safetensors").exists(), "a no-op run wrote a checkpoint");
    fs::remove_dir_all(&dir).ok();

    // An early-stopped run: nothing to do however many epochs are asked for,
    // and the epoch named is the checkpoint's.
    let dir = temp_dir("nothing-early");
    write_sine_model(&dir, &[("epochs", "10"), ("early_stop", "patience(2, min_delta: 1e6)")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--threads", "1", "--checkpoint", "e.safetensors"]);
    for extra in [&[][..], &["--epochs", "12"]] {
        let mut args =
            vec!["train", "model.nn", "--resume", "e.safetensors", "--checkpoint", "e2.safetensors"];
        args.extend_from_slice(extra);
        let out = nnc_ok(&dir, &args);
        insta::assert_snapshot!("resume_an_early_stopped_run", stdout(&out));
    }
    assert!(!dir.join("e2.safetensors").exists());
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_names_the_epoch_of_the_checkpoint_and_warns_of_another_thread_count() {
    let dir = temp_dir("resume-msg");
    write_sine_model(&dir, &[("epochs", "2")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--threads", "1", "--checkpoint", "a.safetensors"]);
    let out = nnc_ok(
        &dir,
        &[
            "train",
            "model.nn",
            "--resume",
            "a.safetensors",
            "--epochs",
            "4",
            "--threads",
            "2",
            "--checkpoint",
            "b.safetensors",
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains("4 epochs of 13 steps (batch 4), 2 threads") && text.contains("resuming after epoch 2"),
        "{text}"
    );
    assert_eq!(
        stderr(&out),
        "warning: the checkpoint was written by a run on 1 thread, this one uses 2 threads: the result will not be \
         bit-identical to an uninterrupted run\n"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn edits_that_do_not_change_the_step_do_not_block_resume() {
    let dir = temp_dir("edit");
    let model = write_sine_model(&dir, &[("epochs", "2")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--threads", "1", "--checkpoint", "a.safetensors"]);
    // `nnc train model.nn --resume a.safetensors` on one thread into `ckpt`.
    let resume = |ckpt: &str, extra: &[&str]| {
        let mut args = vec!["train", "model.nn", "--resume", "a.safetensors", "--threads", "1"];
        args.extend_from_slice(&["--checkpoint", ckpt]);
        args.extend_from_slice(extra);
        nnc(&dir, &args)
    };
    // A comment, blank lines, more epochs, a metric, early stopping and a
    // checkpoint path: the model and the step are the same.
    let text = fs::read_to_string(&model).expect("model");
    let edited = format!("# temperatures at the station\n\n{text}").replace(
        "epochs = 2",
        "epochs = 4\n  metrics = [rmse]\n  early_stop = patience(5)\n  checkpoint = \"x.safetensors\"",
    );
    fs::write(&model, edited).expect("edit model");
    let out = resume("b.safetensors", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("resuming after epoch 2"), "{}", stdout(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // The optimiser changed: refused, naming the change; --allow-changes goes on.
    let text = fs::read_to_string(&model).expect("model");
    fs::write(&model, text.replace("epochs = 4", "epochs = 4\n  optimizer = sgd(lr: 0.05)")).expect("edit");
    let out = resume("c.safetensors", &[]);
    assert_clean_failure(&out, &["`optimizer`: was"]);
    insta::assert_snapshot!("resume_with_another_optimizer", stderr(&out));
    let out = resume("c.safetensors", &["--allow-changes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let warning = "warning: resuming although model.nn changed (--allow-changes):";
    assert!(stderr(&out).starts_with(warning), "{}", stderr(&out));
    assert!(dir.join("c.safetensors").exists());

    // A layer changed: refused, naming the model.
    let text = fs::read_to_string(&model).expect("model");
    fs::write(&model, text.replace("dense(8)", "dense(9)")).expect("edit");
    let out = resume("d.safetensors", &[]);
    assert_clean_failure(&out, &["the model: its layers, shapes or initialisation differ"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_of_another_nnc_version_is_named_when_resuming() {
    let dir = temp_dir("other-version");
    let model = write_sine_model(&dir, &[("epochs", "2")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--epochs", "1", "--checkpoint", "a.safetensors"]);
    // The same checkpoint as written by nnc 0.0.1.
    let path = dir.join("a.safetensors");
    let mut file = tensor_file::load(&path).expect("checkpoint");
    assert_eq!(file.metadata.get("nnc.version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
    file.metadata.insert("nnc.version".into(), "0.0.1".into());
    tensor_file::save(&path, &file.tensors, &file.metadata).expect("rewrite");

    // The model compiles to the same graph: a warning naming both versions.
    let out = nnc(&dir, &["train", "model.nn", "--resume", "a.safetensors", "--checkpoint", "b.safetensors"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want = format!(
        "warning: a.safetensors was written by nnc 0.0.1, this is nnc {}; the model compiles to the same graph",
        env!("CARGO_PKG_VERSION")
    );
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));

    // Another graph: refused, naming the change and both versions.
    let text = fs::read_to_string(&model).expect("model");
    fs::write(&model, text.replace("dense(8)", "dense(9)")).expect("edit");
    let out = nnc(&dir, &["train", "model.nn", "--resume", "a.safetensors", "--checkpoint", "c.safetensors"]);
    let version =
        format!("nnc: the checkpoint was written by nnc 0.0.1, this is nnc {}", env!("CARGO_PKG_VERSION"));
    assert_clean_failure(&out, &["the model: its layers, shapes or initialisation differ", &version]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_of_another_model_is_refused_by_name() {
    let dir = temp_dir("other-model");
    let model = write_sine_model(&dir, &[("epochs", "1")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--checkpoint", "m.safetensors"]);
    let text = fs::read_to_string(&model).expect("model");
    fs::write(dir.join("temps.nn"), text.replace("model m {", "model temps {")).expect("write");
    write_npy(&dir.join("x.npy"), &ndarray::ArrayD::zeros(ndarray::IxDyn(&[3, 1])));
    let runs: [&[&str]; 3] = [
        &["train", "temps.nn", "--resume", "m.safetensors"],
        &["eval", "temps.nn", "--checkpoint", "m.safetensors"],
        &["predict", "temps.nn", "--checkpoint", "m.safetensors", "--input", "x.npy", "-o", "y.npy"],
    ];
    for args in runs {
        let out = nnc(&dir, args);
        assert_clean_failure(&out, &[]);
        assert_eq!(
            stderr(&out),
            "error: m.safetensors: the checkpoint was written for model `m`, this is model `temps`\n",
            "nnc {}",
            args.join(" ")
        );
    }
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_checkpoint_folder_is_created_or_refused_before_training() {
    let dir = temp_dir("ckpt-dir");
    write_sine_model(&dir, &[("epochs", "1"), ("checkpoint", "\"ckpts/c.safetensors\"")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet"]);
    assert!(dir.join("ckpts/c.safetensors").exists(), "the checkpoint's folder was not created");

    fs::write(dir.join("blocker"), "a file, not a folder").expect("write");
    let out = nnc(&dir, &["train", "model.nn", "--checkpoint", "blocker/c.safetensors"]);
    assert_clean_failure(&out, &["blocker/c.safetensors: cannot create the checkpoint's folder blocker"]);
    assert!(!stdout(&out).contains("epoch 1/1"), "trained before failing:\n{}", stdout(&out));
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn predict_and_eval_name_the_file_at_fault_and_the_kinds_they_take() {
    let dir = temp_dir("kinds");
    write_sine_model(&dir, &[("epochs", "1")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--checkpoint", "c.safetensors"]);
    write_npy(
        &dir.join("x.npy"),
        &ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 1]), vec![0.5, 1.0]).expect("x"),
    );
    fs::write(dir.join("x.csv"), "x\n0.5\n").expect("write");
    let cases: [(&str, &[&str]); 5] = [
        (
            "missing checkpoint",
            &[
                "predict",
                "model.nn",
                "--checkpoint",
                "nothere.safetensors",
                "--input",
                "x.npy",
                "-o",
                "y.npy",
            ],
        ),
        (
            "csv input",
            &["predict", "model.nn", "--checkpoint", "c.safetensors", "--input", "x.csv", "-o", "y.npy"],
        ),
        (
            "txt output",
            &["predict", "model.nn", "--checkpoint", "c.safetensors", "--input", "x.npy", "-o", "y.txt"],
        ),
        ("npy data for eval", &["eval", "model.nn", "--checkpoint", "c.safetensors", "--data", "x.npy"]),
        ("zero epochs", &["train", "model.nn", "--epochs", "0"]),
    ];
    let mut report = String::new();
    for (what, args) in cases {
        let out = nnc(&dir, args);
        assert_clean_failure(&out, &[]);
        report += &format!("== {what}: nnc {}\n{}\n", args.join(" "), stderr(&out));
    }
    insta::assert_snapshot!("wrong_file_kinds", report);

    // CSV predictions: a header, one row per example.
    let out = nnc_ok(
        &dir,
        &["predict", "model.nn", "--checkpoint", "c.safetensors", "--input", "x.npy", "-o", "y.csv"],
    );
    assert!(stdout(&out).contains("wrote predictions [2, 1] to y.csv"), "{}", stdout(&out));
    let csv = fs::read_to_string(dir.join("y.csv")).expect("y.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(lines[0], "out");
    assert!(lines[1..].iter().all(|l| l.parse::<f32>().is_ok_and(f32::is_finite)), "{csv}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_labels_a_loss_on_normalised_targets() {
    let dir = temp_dir("eval-label");
    write_sine_model(&dir, &[("epochs", "1"), ("normalize", "per_variable"), ("metrics", "[rmse]")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--checkpoint", "c.safetensors"]);
    let out = nnc_ok(&dir, &["eval", "model.nn", "--checkpoint", "c.safetensors"]);
    let text = stdout(&out);
    assert!(text.contains("\nloss (normalised units) = ") && text.contains("\nrmse = "), "{text}");
    write_sine_model(&dir, &[("epochs", "1"), ("metrics", "[rmse]")]);
    nnc_ok(&dir, &["train", "model.nn", "--quiet", "--checkpoint", "d.safetensors"]);
    let text = stdout(&nnc_ok(&dir, &["eval", "model.nn", "--checkpoint", "d.safetensors"]));
    assert!(text.contains("\nloss = "), "{text}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_thread_one_step_and_no_validation_are_said_plainly() {
    let dir = temp_dir("plural");
    write_sine_model(&dir, &[("epochs", "1"), ("batch", "64"), ("split", "0.99")]);
    let out = nnc_ok(&dir, &["train", "model.nn", "--threads", "1", "--checkpoint", "c.safetensors"]);
    let text = stdout(&out);
    assert!(text.contains("1 epoch of 1 step (batch 64), 1 thread,"), "{text}");
    assert_eq!(
        stderr(&out),
        "warning: no validation examples: all 64 examples train, so there is no validation loss, no metrics\n"
    );
    fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------
// A model of one's own on a CSV file: errors of the data point at the model
// file, the split can follow the file's order, and per-variable metrics carry
// the column names.

/// A CSV file `dir/obs.csv` with the columns `day`, `t2m`, `u10` and `y`,
/// one row per day (`y` is 0 for the first 8 days and 1000 for the last 2
/// of 10).
fn write_obs_csv(dir: &Path) {
    let mut text = String::from("day,t2m,u10,y\n");
    for day in 0..10 {
        let y = if day < 8 { 0 } else { 1000 };
        text += &format!("{day},{},{},{y}\n", 270 + day, day % 3);
    }
    fs::write(dir.join("obs.csv"), text).expect("write obs.csv");
}

/// Runs `nnc train model.nn` in `dir` (relative paths, as a user would type
/// them) and returns its stderr, asserting a clean failure.
fn train_failure(dir: &Path) -> String {
    let out = nnc(dir, &["train", "model.nn", "--quiet", "--threads", "1"]);
    assert_clean_failure(&out, &[]);
    stderr(&out)
}

/// The last `val_LABEL` of a run's log.
fn last_logged(dir: &Path, label: &str) -> f64 {
    let log = fs::read_to_string(dir.join("model.run/log.jsonl")).expect("log.jsonl");
    let line = log.lines().last().expect("an epoch");
    let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    record[format!("val_{label}")].as_f64().unwrap_or_else(|| panic!("no val_{label} in {line}"))
}

#[test]
fn a_csv_with_a_header_and_no_rows_has_no_data_rows() {
    let dir = temp_dir("csv-empty");
    fs::write(dir.join("obs.csv"), "day,t2m,u10,y\n").expect("write");
    write_model(&dir, "csv(\"obs.csv\", x: \"t2m\", y: \"y\")", &[]);
    let err = train_failure(&dir);
    assert!(!err.contains("NaN"), "{err}");
    insta::assert_snapshot!("csv_without_rows", err);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_chronological_split_validates_on_the_last_rows_of_the_file() {
    // The last two days differ from the rest: validating on them (and only
    // on them) gives an RMSE near 1000; the iid rule of `split = 0.8`
    // validates days 4 and 9, an RMSE near 1000 / sqrt(2).
    let dir = temp_dir("csv-chrono");
    write_obs_csv(&dir);
    let data = "csv(\"obs.csv\", x: \"t2m\", y: \"y\")";
    let keys = [("epochs", "1"), ("optimizer", "sgd(lr: 1e-9)"), ("metrics", "[rmse]")];
    for (split, expected) in [(None, 1000.0 / 2f64.sqrt()), (Some("chronological(0.8)"), 1000.0)] {
        let mut keys = keys.to_vec();
        keys.extend(split.map(|s| ("split", s)));
        write_model(&dir, data, &keys);
        let out = nnc(&dir, &["train", "model.nn", "--threads", "1"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("8 training / 2 validation examples from obs.csv"), "{text}");
        let rmse = last_logged(&dir, "rmse");
        assert!(
            (rmse - expected).abs() < 5.0,
            "split {split:?}: validation RMSE {rmse}, expected {expected}"
        );
    }
    // A bad rule is a compile error pointing at it.
    write_model(&dir, data, &[("split", "random(0.8)")]);
    let out = nnc(&dir, &["train", "model.nn"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    insta::assert_snapshot!("split_unknown_rule", stderr(&out));
    write_model(&dir, data, &[("split", "chronological(1.5)")]);
    let out = nnc(&dir, &["check", "model.nn"]);
    assert_clean_failure(&out, &["`fraction` must be a number in (0, 1), found 1.5"]);
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn per_variable_metrics_of_a_csv_target_carry_the_column_names() {
    let dir = temp_dir("csv-names");
    write_obs_csv(&dir);
    let text = "model m {\n  input x: f32[B, 1]\n  target y: f32[B, 2]\n  out = x |> dense(8) |> tanh |> dense(2)\n  \
                loss = mse(out, y)\n}\ntrain {\n  data = csv(\"obs.csv\", x: \"day\", y: [\"t2m\", \"u10\"])\n  \
                batch = 4\n  epochs = 1\n  metrics = [rmse(per_variable: true), mae(per_variable: true)]\n}\n";
    fs::write(dir.join("model.nn"), text).expect("write model");
    let out = nnc(&dir, &["train", "model.nn", "--threads", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for label in ["rmse.t2m", "rmse.u10", "mae.t2m", "mae.u10"] {
        assert!(stdout.contains(&format!("  {label} ")), "no {label} in:\n{stdout}");
        assert!(last_logged(&dir, label).is_finite(), "{label} is not logged");
    }
    assert!(!stdout.contains("rmse.0"), "{stdout}");
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_of_csv_data_point_at_the_model_and_suggest_a_fix() {
    let dir = temp_dir("csv-errors");
    write_obs_csv(&dir);
    // (a) Two columns for an input declared with one value per example:
    // the input's declaration, the data entry and a declaration that fits.
    write_model(&dir, "csv(\"obs.csv\", x: [\"t2m\", \"u10\"], y: \"y\")", &[]);
    insta::assert_snapshot!("csv_shape_mismatch", train_failure(&dir));
    // The same from `nnc eval` (the model's data, a checkpoint that loads).
    write_model(&dir, "csv(\"obs.csv\", x: \"t2m\", y: \"y\")", &[("epochs", "1")]);
    let out = nnc(&dir, &["train", "model.nn", "--quiet", "--checkpoint", "c.safetensors"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fs::write(dir.join("obs.csv"), "day,t2m,u10,y\n1,,2,3\n2,3,4,5\n").expect("write");
    let out = nnc(&dir, &["eval", "model.nn", "--checkpoint", "c.safetensors"]);
    assert_clean_failure(&out, &["obs.csv: line 2, column `t2m`: empty cell", "  data = csv("]);
    // (b) A misspelt column: the closest column is suggested.
    write_obs_csv(&dir);
    write_model(&dir, "csv(\"obs.csv\", x: \"t2n\", y: \"y\")", &[]);
    insta::assert_snapshot!("csv_misspelt_column", train_failure(&dir));
    // (c) An empty cell: its line and column.
    fs::write(dir.join("obs.csv"), "day,t2m,u10,y\n1,271,0,0\n2,,1,0\n3,273,2,0\n").expect("write");
    write_model(&dir, "csv(\"obs.csv\", x: \"t2m\", y: \"y\")", &[]);
    insta::assert_snapshot!("csv_empty_cell", train_failure(&dir));
    fs::remove_dir_all(&dir).ok();
}

/// A cell written in the language, scanned over 40 steps of windows cut
/// from a shipped series, trains (no stack overflow, no blow-up of the
/// compiled graph); `nnc eval --source` scores it on another cut of the
/// data, next to persistence, and a malformed source is a diagnostic.
#[test]
fn a_40_step_scan_trains_on_windows_and_eval_scores_another_source() {
    let dir = temp_dir("scan40");
    let model = dir.join("scan40.nn");
    fs::write(
        &model,
        "block cell(x, h) {
  return tanh(concat(x, h, axis: 1) |> dense(8))
}

model scan40 {
  input  x: f32[B, 40, 1]
  target y: f32[B, 1, 1]

  step = cell()
  hs = scan(step, x, init: zeros([B, 8]))     # [B, 40, 8]
  p = dense(hs[:, -1], 1) |> reshape([B, 1, 1])

  output p
  loss = mse(p, y)
}

train {
  data = window(dataset(\"sunspots\", task: \"series\"), in: 40)
  normalize = per_variable
  batch = 16
  epochs = 6
  optimizer = adam(lr: 1e-2)
  metrics = [rmse]
  seed = 0
}
",
    )
    .expect("write model");
    let source = fs::read_to_string(&model).expect("read model");
    let module = common::compile_ok(&model, &source);
    let opts = options(&dir, None, 2);
    let records = train::train(&module, &source, &model, &opts, &mut Silent).expect("trains").records;
    let (first, last) = (records.first().expect("epochs"), records.last().expect("epochs"));
    assert!(records.iter().all(|r| r.train_loss.is_finite()));
    assert!(last.train_loss < 0.5 * first.train_loss, "{} → {}", first.train_loss, last.train_loss);
    let ckpt = opts.checkpoint.to_str().expect("utf-8").to_string();
    let model = model.to_str().expect("utf-8");
    let other = "window(dataset(\"sunspots\", task: \"series\"), in: 40, stride: 3)";
    let out = nnc(
        &dir,
        &[
            "eval",
            model,
            "--checkpoint",
            &ckpt,
            "--source",
            other,
            "--subset",
            "all",
            "--baseline",
            "persistence",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    // 308 − 40 + 1 = 269 windows, every third.
    assert!(text.starts_with("90 examples (all subset of window(dataset(\"sunspots\""), "{text}");
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rmse = "))
        .map(|v| v.parse().expect("a number"))
        .collect();
    assert_eq!(values.len(), 2, "the model's RMSE and persistence's:\n{text}");
    assert!(text.contains("persistence, on the same examples:"), "{text}");
    assert!(values.iter().all(|v| v.is_finite() && *v > 0.0), "{values:?}");
    let out = nnc(
        &dir,
        &["eval", model, "--checkpoint", &ckpt, "--source", "window(dataset(\"sunspots\"), out: 2)"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("`window` is missing its argument `in`") && err.contains("--source"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    fs::remove_dir_all(&dir).ok();
}

/// A conditional generator of 8×8 digits: two inputs bound by name (the
/// images `x` and the labels `y`), noise drawn from the seed.
const CONDITIONAL: &str = "\
block generator(z, y) {
  h = concat(z, y |> embedding(10, 8), axis: 1) |> dense(32) |> relu
  return h |> dense(64) |> sigmoid
}

block critic(x, y) {
  h = concat(x, y |> embedding(10, 8), axis: 1) |> dense(32) |> relu
  return h |> dense(1)
}

model cond {
  input x: f32[B, 64]
  input y: i32[B]
  z = normal([B, 8])
  G = generator()
  D = critic()
  fake = G(z, y)
  loss disc = bce(D(x / 16.0, y), 1.0) + bce(D(stop_gradient(fake), y), 0.0)
  loss gen = bce(D(fake, y), 1.0)
  image = fake * 16.0
  output image
}

";

/// The `train` section of the generators above: one epoch of 8×8 digits,
/// each network with its own optimiser.
const GAN_TRAIN: &str = "\
train {
  data = dataset(\"digits\")
  batch = 64
  epochs = 1
  optimizer disc = adam(lr: 1e-3, params: D)
  optimizer gen = adam(lr: 1e-3, params: G)
}
";

/// The command sequence that checks a conditional generator with a
/// classifier: `nnc predict` feeds the requested classes (an i32 input
/// read from whole numbers), draws the noise from `--seed`, and writes the
/// images with their labels to an .npz archive that `nnc eval --source
/// 'npz(...)'` scores with the classifier.
#[test]
fn generated_images_of_requested_classes_are_scored_by_a_classifier() {
    let dir = temp_dir("conditional");
    fs::write(dir.join("cond.nn"), format!("{CONDITIONAL}{GAN_TRAIN}")).expect("write model");
    let digits = common::root().join("models/digits.nn");
    let digits = digits.to_str().expect("utf-8 path");
    nnc_ok(&dir, &["train", "cond.nn", "--quiet", "--threads", "2", "--checkpoint", "g.safetensors"]);
    nnc_ok(
        &dir,
        &["train", digits, "--quiet", "--epochs", "2", "--checkpoint", "c.safetensors", "--run-dir", "c.run"],
    );
    let labels = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[30]), |i| (i[0] % 10) as f32);
    write_npy(&dir.join("labels.npy"), &labels);
    let predict = |seed: &str, out: &str| {
        let args = ["predict", "cond.nn", "--checkpoint", "g.safetensors", "--input", "labels.npy"];
        nnc_ok(&dir, &[&args[..], &["--seed", seed, "-o", out]].concat())
    };
    let out = predict("3", "a.npz");
    assert!(stdout(&out).contains("wrote predictions [30, 64] to a.npz"), "{}", stdout(&out));
    predict("3", "b.npz");
    predict("4", "c.npz");
    let read = |name: &str| nnc_runtime::io::npz::load_npz(&dir.join(name)).expect("archive");
    let (a, b, c) = (read("a.npz"), read("b.npz"), read("c.npz"));
    let names: Vec<&str> = a.keys().map(String::as_str).collect();
    assert_eq!(names, ["image", "y"]);
    let Some(data::ArrayValue::I32(y)) = a.get("y") else { panic!("i32 labels") };
    assert_eq!(y.iter().copied().collect::<Vec<_>>(), (0..30).map(|i| i % 10).collect::<Vec<i32>>());
    let Some(data::ArrayValue::F32(image)) = a.get("image") else { panic!("f32 images") };
    assert_eq!(image.shape(), &[30, 64]);
    assert!(image.iter().all(|v| (0.0..=16.0).contains(v)), "pixels in the data's units");
    assert!(a == b, "one seed, the same images");
    assert!(a["image"] != c["image"], "another seed, other noise");
    // The class matters: the same noise with other labels draws other images.
    write_npy(&dir.join("sevens.npy"), &labels.mapv(|_| 7.0));
    let args =
        ["predict", "cond.nn", "--checkpoint", "g.safetensors", "--input", "sevens.npy", "--seed", "3"];
    nnc_ok(&dir, &[&args[..], &["-o", "d.npz"]].concat());
    assert!(read("d.npz")["image"] != a["image"]);
    // The classifier scores the archive against the requested classes.
    let out = nnc_ok(
        &dir,
        &[
            "eval",
            digits,
            "--checkpoint",
            "c.safetensors",
            "--source",
            "npz(\"a.npz\", x: \"image\", y: \"y\")",
            "--subset",
            "all",
        ],
    );
    let text = stdout(&out);
    assert!(text.starts_with("30 examples (all subset of ") && text.contains("a.npz"), "{text}");
    let accuracy: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("accuracy = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in:\n{text}"));
    assert!((0.0..=1.0).contains(&accuracy));
    // Labels must be whole numbers, and a prediction that reads one input
    // takes no other.
    write_npy(&dir.join("halves.npy"), &labels.mapv(|v| v + 0.5));
    let out = nnc(
        &dir,
        &["predict", "cond.nn", "--checkpoint", "g.safetensors", "--input", "halves.npy", "-o", "e.npy"],
    );
    assert_clean_failure(&out, &["halves.npy: input `y` is i32 (class labels)", "0.5", "whole numbers"]);
    fs::remove_dir_all(&dir).ok();
}

/// An unconditional generator of 8×8 digits: its prediction reads only
/// the noise it draws, so `nnc predict` is told how many to draw.
const UNCONDITIONAL: &str = "\
block generator(z) {
  h = z |> dense(32) |> relu
  return h |> dense(64) |> sigmoid
}

block critic(x) {
  h = x |> dense(32) |> relu
  return h |> dense(1)
}

model gan {
  input x: f32[B, 64]
  z = normal([B, 8])
  G = generator()
  D = critic()
  fake = z |> G
  loss disc = bce(x / 16.0 |> D, 1.0) + bce(stop_gradient(fake) |> D, 0.0)
  loss gen = bce(fake |> D, 1.0)
  image = fake * 16.0
  output image
}

";

/// `nnc predict --count N` draws N examples from a model whose prediction
/// reads no input; without a count, with an input, or with a count for a
/// model that reads inputs, it says what to give instead.
#[test]
fn a_generator_without_inputs_draws_the_number_of_examples_asked_for() {
    let dir = temp_dir("unconditional");
    fs::write(dir.join("gan.nn"), format!("{UNCONDITIONAL}{GAN_TRAIN}")).expect("write model");
    nnc_ok(&dir, &["train", "gan.nn", "--quiet", "--threads", "2", "--checkpoint", "g.safetensors"]);
    let predict = |extra: &[&str]| {
        nnc(&dir, &[&["predict", "gan.nn", "--checkpoint", "g.safetensors"], extra].concat())
    };
    let out = predict(&["--count", "70", "--seed", "3", "-o", "a.npy"]);
    assert!(stdout(&out).contains("wrote predictions [70, 64] to a.npy"), "{}", stderr(&out));
    predict(&["--count", "70", "--seed", "3", "-o", "b.npy"]);
    predict(&["--count", "70", "--seed", "4", "-o", "c.npy"]);
    let read =
        |name: &str| -> ndarray::ArrayD<f32> { ndarray_npy::read_npy(dir.join(name)).expect("read npy") };
    let (a, b, c) = (read("a.npy"), read("b.npy"), read("c.npy"));
    assert!(a.iter().all(|v| (0.0..=16.0).contains(v)), "pixels in the data's units");
    assert_eq!(a, b, "one seed, the same images");
    assert_ne!(a, c, "another seed, other noise");
    // Batch 1 (examples 64..70) draws other noise than batch 0.
    assert_ne!(a.slice(ndarray::s![64..70, ..]), a.slice(ndarray::s![0..6, ..]));
    let out = predict(&["-o", "d.npy"]);
    assert_clean_failure(&out, &["--count"]);
    write_npy(&dir.join("x.npy"), &ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 64])));
    let out = predict(&["--input", "x.npy", "-o", "d.npy"]);
    assert_clean_failure(&out, &["--count"]);
    let out = predict(&["--count", "0", "-o", "d.npy"]);
    assert_clean_failure(&out, &["no examples to predict"]);
    assert!(!dir.join("d.npy").exists());
    fs::write(dir.join("cond.nn"), format!("{CONDITIONAL}{GAN_TRAIN}")).expect("write model");
    let out = nnc(&dir, &["predict", "cond.nn", "--checkpoint", "g.safetensors", "-o", "d.npy"]);
    assert_clean_failure(&out, &["input `y`", "--input"]);
    fs::remove_dir_all(&dir).ok();
}
