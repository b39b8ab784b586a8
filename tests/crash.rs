//! `nnc train` killed with SIGKILL at points spread over a run (before the
//! first checkpoint, inside epochs, during checkpoint writes): the
//! checkpoint on disk is always readable, and resuming from it (or
//! starting again when the kill came before the first one) ends with a
//! checkpoint whose parameters and optimiser state are bit-identical to an
//! uninterrupted run's, and without the temporary file a killed write
//! leaves (the next write removes it).
//!
//! The default test kills two zoo models at 4 points each; the long one
//! kills each at 50 points:
//! `cargo test --test crash -- --ignored --nocapture`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nnc_runtime::io::tensor_file;

/// A fresh directory for one test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-crash-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The arguments of a 1-thread run of `model` writing `ckpt`.
fn args(model: &str, ckpt: &Path, resume: bool) -> Vec<String> {
    let ckpt = ckpt.to_str().expect("utf-8 path").to_string();
    let mut a: Vec<String> = ["train", model, "--quiet", "--threads", "1", "--checkpoint", &ckpt]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["--run-dir".to_string(), format!("{ckpt}.run")]);
    if resume {
        a.extend(["--resume".to_string(), ckpt]);
    }
    a
}

fn run_to_end(model: &str, ckpt: &Path, resume: bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(common::root())
        .args(args(model, ckpt, resume))
        .output()
        .expect("run nnc");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{model} (resume: {resume}): {err}");
}

/// The tensors and the `finished` flag of a checkpoint; panics with the
/// reason when it cannot be read.
fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let file = tensor_file::load(path).unwrap_or_else(|e| panic!("unreadable checkpoint: {e}"));
    file.tensors.into_iter().map(|(name, a)| (name, a.iter().map(|v| v.to_bits()).collect())).collect()
}

/// A delay in `[0, 1)` for kill `i` of `n`: the points spread evenly over
/// the run with a deterministic jitter inside each slot.
fn slot(i: usize, n: usize) -> f64 {
    let jitter = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64;
    (i as f64 + jitter) / n as f64
}

/// Kills `model` at `points` moments spread over an uninterrupted run's
/// duration and checks every resumed run against the uninterrupted one.
fn kill_and_resume(model: &str, points: usize) {
    let name = Path::new(model).file_stem().unwrap().to_string_lossy().into_owned();
    let dir = temp(&name);
    let full = dir.join("full.safetensors");
    let start = Instant::now();
    run_to_end(model, &full, false);
    let duration = start.elapsed();
    let expected = tensors(&full);
    let (mut before_first, mut in_write, mut resumed) = (0, 0, 0);
    for i in 0..points {
        let ckpt = dir.join(format!("cut{i}.safetensors"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_nnc"))
            .current_dir(common::root())
            .args(args(model, &ckpt, false))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nnc");
        std::thread::sleep(duration.mul_f64(slot(i, points)));
        // SIGKILL: no destructor, no signal handler runs.
        let _ = child.kill();
        child.wait().expect("reap nnc");
        let temps = || {
            fs::read_dir(&dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref().unwrap().file_name().to_string_lossy().starts_with(&format!(".cut{i}."))
                })
                .count()
        };
        if temps() > 0 {
            in_write += 1;
        }
        if ckpt.exists() {
            // Whatever the moment of the kill, the checkpoint is whole.
            let _ = tensors(&ckpt);
            run_to_end(model, &ckpt, true);
            resumed += 1;
        } else {
            before_first += 1;
            run_to_end(model, &ckpt, false);
        }
        assert!(
            tensors(&ckpt) == expected,
            "{model}: kill {i} at {:.0} % of the run: the resumed run differs",
            100.0 * slot(i, points)
        );
        // The next write swept the temporary file a killed write left.
        if cfg!(target_os = "linux") {
            assert_eq!(temps(), 0, "{model}: kill {i}: a temporary file is left beside the checkpoint");
        }
    }
    eprintln!(
        "{model}: {points} kills over a {duration:.2?} run: {resumed} resumed ({in_write} during a checkpoint write), \
         {before_first} before the first checkpoint; every end bit-identical"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn killed_runs_resume_bit_identically() {
    kill_and_resume("models/digits.nn", 4);
    kill_and_resume("models/nino12.nn", 4);
}

#[test]
#[ignore = "kills two zoo models at 50 points each (minutes)"]
fn killed_runs_resume_bit_identically_at_fifty_points() {
    kill_and_resume("models/digits.nn", 50);
    kill_and_resume("models/nino12.nn", 50);
}
