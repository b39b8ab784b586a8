//! Data-parallel training: ranks that each take a share of every batch and
//! sum their gradients end with the parameters of one process training on
//! the whole batch (to rounding: the sums are added in another order).
//!
//! The ranks run as threads of the test process ([`Threads`]) everywhere,
//! and, with the cargo feature `mpi`, as the processes of `mpirun -np 2`
//! (`cargo test --features mpi --test distributed`, which needs Open MPI
//! or MPICH): the checkpoint equals a single-process run's, and a rank
//! killed during the run ends it with an error and leaves the last
//! checkpoint readable.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nnc_runtime::train::checkpoint::Checkpoint;
use nnc_runtime::train::collective::{Collective, Ranks, Threads};
use nnc_runtime::train::{self, Options, Silent};

/// A fresh directory for one test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-distributed-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// An MLP on `synthetic.sine` whose one epoch is 20 steps of 64 examples
/// (1,280 of the 1,600 examples train; the default split keeps 20 % for
/// validation), trained by `optimizer`, its gradient clipped.
fn write_model(dir: &Path, optimizer: &str, batch: usize) -> PathBuf {
    let source = format!(
        "model sine {{
  input  x: f32[B, 1]
  target y: f32[B, 1]
  h = x |> dense(32) |> tanh |> dense(32) |> tanh
  out = h |> dense(1)
  loss = mse(out, y)
}}

train {{
  data = synthetic.sine(n: 1600, noise: 0.1)
  batch = {batch}
  epochs = 1
  optimizer = {optimizer}
  clip_grad_norm = 1.0
  seed = 3
}}
"
    );
    let path = dir.join("sine.nn");
    fs::write(&path, source).expect("write model");
    path
}

fn options(dir: &Path, name: &str, ranks: Option<Ranks>) -> Options {
    Options {
        threads: 1,
        epochs: None,
        checkpoint: dir.join(format!("{name}.safetensors")),
        run_dir: dir.join(format!("{name}.run")),
        resume: None,
        allow_changes: false,
        checking: nnc_compiler::codegen::Checking::Unchecked,
        ranks,
    }
}

/// Trains the model at `path` on one process into `dir/NAME.safetensors`.
fn train_alone(path: &Path, dir: &Path, name: &str) -> Checkpoint {
    let source = fs::read_to_string(path).expect("model");
    let module = nnc_compiler::compile(&source).expect("compiles").module;
    train::train(&module, &source, path, &options(dir, name, None), &mut Silent).expect("trains");
    Checkpoint::load(&dir.join(format!("{name}.safetensors"))).expect("checkpoint")
}

/// The largest difference between the tensors of two checkpoints relative
/// to the tensor's largest magnitude, and the name of that tensor.
fn difference(a: &Checkpoint, b: &Checkpoint) -> (f64, String) {
    assert_eq!(a.tensors.len(), b.tensors.len(), "the checkpoints hold different tensors");
    let mut worst = (0.0f64, String::new());
    for (name, x) in &a.tensors {
        let y = b.tensor(name).unwrap_or_else(|| panic!("`{name}` is missing"));
        assert_eq!(x.shape(), y.shape(), "`{name}`");
        let scale = x.iter().fold(1e-12f64, |m, v| m.max(f64::from(v.abs())));
        let diff = x.iter().zip(y.iter()).fold(0.0f64, |m, (p, q)| m.max(f64::from((p - q).abs())));
        if diff / scale > worst.0 {
            worst = (diff / scale, name.clone());
        }
    }
    worst
}

/// Trains on `size` ranks that are threads of this process; rank 0 writes
/// `dir/NAME.safetensors`.
fn train_on_threads(path: &Path, dir: &Path, name: &str, size: usize) -> Checkpoint {
    let source = fs::read_to_string(path).expect("model");
    let module = nnc_compiler::compile(&source).expect("compiles").module;
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = Threads::ranks(size)
            .into_iter()
            .map(|rank| {
                let (module, source) = (&module, &source);
                s.spawn(move || {
                    let ranks: Arc<dyn Collective> = Arc::new(rank);
                    let opts = options(dir, name, Some(Ranks(ranks)));
                    train::train(module, source, path, &opts, &mut Silent).map(|_| ()).map_err(|e| e.message)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a rank panicked")).collect()
    });
    for (rank, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "rank {rank}: {r:?}");
    }
    Checkpoint::load(&dir.join(format!("{name}.safetensors"))).expect("rank 0 wrote the checkpoint")
}

#[test]
fn two_ranks_end_with_the_parameters_of_one_process() {
    let dir = temp("threads");
    // The sums of the ranks' gradients are added in another order than the
    // single process's batch mean: rounding differences, which Adam's
    // normalised steps keep within 1e-6 of the parameters' scale over 20
    // steps and SGD with momentum 0.9 at lr 0.1 amplifies a little (the
    // scalar output bias moves furthest relative to its size).
    for (optimizer, batch, tolerance) in
        [("adam(lr: 1e-2)", 64, 1e-6), ("sgd(lr: 0.1, momentum: 0.9)", 63, 1e-5)]
    {
        let path = write_model(&dir, optimizer, batch);
        let alone = train_alone(&path, &dir, "alone");
        let two = train_on_threads(&path, &dir, "two", 2);
        assert_eq!(alone.step, two.step);
        assert!(alone.step >= 20, "{} steps", alone.step);
        let (diff, name) = difference(&alone, &two);
        eprintln!("{optimizer}, batch {batch}: largest relative difference {diff:.2e} (`{name}`)");
        assert!(diff <= tolerance, "{optimizer}: `{name}` differs by {diff:e} relative");
        // Three ranks: shares of 21 or 22 examples of 64 (or 63).
        let three = train_on_threads(&path, &dir, "three", 3);
        let (diff, name) = difference(&alone, &three);
        eprintln!("{optimizer}, batch {batch}, 3 ranks: largest relative difference {diff:.2e} (`{name}`)");
        assert!(diff <= tolerance, "{optimizer}, 3 ranks: `{name}` differs by {diff:e} relative");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Two losses with their own optimisers, run in order on every batch; the
/// second reads the first's network, so each update must reach the other
/// step's executables.
#[test]
fn two_ranks_of_a_model_with_two_optimisers_end_with_the_parameters_of_one_process() {
    let dir = temp("two-losses");
    let source = "block head(x) {
  return x |> dense(16) |> tanh |> dense(1)
}

model two {
  input  x: f32[B, 1]
  target y: f32[B, 1]
  F = head()
  H = head()
  a = x |> F
  b = concat([x, a], axis: 1) |> H
  loss first = mse(a, y)
  loss second = mse(b, y)
}

train {
  data = synthetic.sine(n: 1600, noise: 0.1)
  batch = 64
  epochs = 1
  optimizer first = adam(lr: 1e-2, params: F)
  optimizer second = sgd(lr: 0.05, params: H)
  seed = 5
}
";
    let path = dir.join("two.nn");
    fs::write(&path, source).expect("write model");
    let alone = train_alone(&path, &dir, "alone");
    let two = train_on_threads(&path, &dir, "two", 2);
    assert_eq!(alone.step, two.step);
    let (diff, name) = difference(&alone, &two);
    eprintln!("two optimisers: largest relative difference {diff:.2e} (`{name}`)");
    assert!(diff <= 1e-6, "`{name}` differs by {diff:e} relative");
    let _ = fs::remove_dir_all(&dir);
}

#[cfg(not(feature = "mpi"))]
#[test]
fn under_mpirun_without_the_feature_the_run_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(common::root())
        .args(["train", "models/sine.nn", "--epochs", "1"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .expect("run nnc");
    let err = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("started as one of 2 MPI processes"), "{err}");
    assert!(err.contains("cargo feature `mpi`"), "{err}");
}

#[cfg(feature = "mpi")]
mod mpi {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// `mpirun -np N nnc ARGS` in `dir`.
    fn mpirun(dir: &Path, n: usize, args: &[&str]) -> Command {
        let mut c = Command::new("mpirun");
        c.current_dir(dir)
            .args(["-np", &n.to_string(), "--oversubscribe"])
            .arg(env!("CARGO_BIN_EXE_nnc"))
            .args(args)
            // Open MPI refuses root without these; harmless otherwise.
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        c
    }

    #[test]
    fn two_mpi_ranks_end_with_the_parameters_of_one_process() {
        let dir = temp("mpirun");
        let path = write_model(&dir, "adam(lr: 1e-2)", 64);
        let alone = train_alone(&path, &dir, "alone");
        let out = mpirun(&dir, 2, &["train", "sine.nn", "--threads", "1", "--checkpoint", "two.safetensors"])
            .output()
            .expect("run mpirun");
        let (stdout, stderr) = (common::text(&out.stdout), common::text(&out.stderr));
        assert!(out.status.success(), "mpirun failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("data-parallel over 2 MPI ranks"), "{stdout}");
        assert_eq!(stdout.matches("epoch 1/1").count(), 1, "rank 0 alone reports:\n{stdout}");
        let two = Checkpoint::load(&dir.join("two.safetensors")).expect("checkpoint");
        assert_eq!(alone.step, two.step);
        let (diff, name) = difference(&alone, &two);
        eprintln!("mpirun -np 2: largest relative difference {diff:.2e} (`{name}`)");
        assert!(diff <= 1e-6, "`{name}` differs by {diff:e} relative");
        let _ = fs::remove_dir_all(&dir);
    }

    /// The parent of process `pid`.
    fn parent_of(pid: u32) -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
    }

    /// The pid of the process of rank `rank` started by `mpirun` process
    /// `parent` (its child, or a child of the launcher daemon it started):
    /// only a descendant of `parent` counts, so another run's ranks (a test
    /// running alongside) are never taken.
    fn rank_pid(parent: u32, rank: usize) -> Option<u32> {
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        let descends = |pid: u32| {
            let mut p = pid;
            for _ in 0..8 {
                match parent_of(p) {
                    Some(pp) if pp == parent => return true,
                    Some(pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        };
        fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
            let is_rank = environ.split(|&b| b == 0).any(|v| v == want.as_bytes());
            (is_rank && descends(pid)).then_some(pid)
        })
    }

    #[test]
    fn a_killed_rank_ends_the_run_and_the_last_checkpoint_stays_readable() {
        let dir = temp("killed");
        let path = write_model(&dir, "adam(lr: 1e-2)", 64);
        let text = fs::read_to_string(&path).unwrap().replace("epochs = 1", "epochs = 1000");
        fs::write(&path, text).unwrap();
        let child = mpirun(&dir, 2, &["train", "sine.nn", "--threads", "1", "--checkpoint", "c.safetensors"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mpirun");
        let ckpt = dir.join("c.safetensors");
        let start = Instant::now();
        while !ckpt.exists() {
            assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = rank_pid(child.id(), 1).expect("the process of rank 1");
        let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
        assert!(killed.success());
        let out = child.wait_with_output().expect("mpirun ends");
        let stderr = common::text(&out.stderr);
        assert!(!out.status.success(), "the run went on without rank 1");
        assert!(stderr.contains("rank 1") && stderr.contains("signal 9"), "{stderr}");
        let saved = Checkpoint::load(&ckpt).expect("the last checkpoint is readable");
        assert!(saved.epoch >= 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
