//! Checkpoints on a full disk and in a read-only file system: `nnc train`
//! stops with an error naming the checkpoint and the cause, exits with 2
//! (an I/O error), and leaves the previous checkpoint byte for byte as it
//! was (and no temporary file beside it). The file systems are small tmpfs
//! mounts, which need the privilege to mount; where the tests cannot mount
//! one they say so and check nothing. The same failures are also injected
//! (`NNC_TEST_WRITE_FAILURE=full:PATH` or `read-only:PATH` makes the writes
//! of the checkpoint fail as the file system would) on an ordinary
//! directory, which every machine can test.

mod common;

use common::{nnc, text};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir`; `None` where mounting is not
    /// allowed.
    fn mount(dir: &Path, bytes: usize) -> Option<Tmpfs> {
        fs::create_dir_all(dir).expect("mount point");
        let size = format!("size={bytes}");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs { dir: dir.to_path_buf() })
    }

    /// Changes the mount's options (`size=...`, `ro`).
    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.dir)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount {options}: {}", text(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
    }
}

/// A fresh directory for one test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-disk-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Where the checkpoint is written, and how its second write fails.
enum Failure<'a> {
    /// A tmpfs whose mount `restrict` changes after the first checkpoint
    /// (given its size).
    Mounted(&'a dyn Fn(&Tmpfs, u64)),
    /// An ordinary directory; the failure `NNC_TEST_WRITE_FAILURE` names
    /// is injected.
    Injected(&'a str),
}

/// Trains `models/sine.nn` for one epoch with its checkpoint on a tmpfs,
/// then resumes it for another epoch after `failure` has made writing
/// fail: the second run must fail with a message containing `cause` and
/// leave the first checkpoint as it was.
fn resume_fails_and_keeps_the_checkpoint(name: &str, failure: Failure, cause: &str) {
    let dir = temp(name);
    let disk_dir = dir.join("disk");
    let mounted = match failure {
        Failure::Mounted(_) => match Tmpfs::mount(&disk_dir, 1 << 20) {
            Some(disk) => Some(disk),
            None => {
                eprintln!("skipped: cannot mount a tmpfs here (needs the privilege to mount)");
                let _ = fs::remove_dir_all(&dir);
                return;
            }
        },
        Failure::Injected(_) => {
            fs::create_dir_all(&disk_dir).expect("checkpoint directory");
            None
        }
    };
    let ckpt = disk_dir.join("sine.safetensors");
    let (ckpt_s, run_s) = (ckpt.to_str().unwrap(), dir.join("run"));
    let run_s = run_s.to_str().unwrap();
    let out =
        nnc(&["train", "models/sine.nn", "--epochs", "1", "-q", "--checkpoint", ckpt_s, "--run-dir", run_s]);
    assert_eq!(out.status.code(), Some(0), "first epoch: {}", text(&out.stderr));
    let before = fs::read(&ckpt).expect("the first checkpoint");
    let mut resume = Command::new(env!("CARGO_BIN_EXE_nnc"));
    resume.current_dir(common::root()).args([
        "train",
        "models/sine.nn",
        "--epochs",
        "2",
        "-q",
        "--resume",
        ckpt_s,
        "--checkpoint",
        ckpt_s,
        "--run-dir",
        run_s,
    ]);
    match (failure, &mounted) {
        (Failure::Mounted(restrict), Some(disk)) => restrict(disk, before.len() as u64),
        (Failure::Injected(what), _) => {
            resume.env("NNC_TEST_WRITE_FAILURE", format!("{what}:{ckpt_s}"));
        }
        (Failure::Mounted(_), None) => unreachable!("a mounted failure has its mount"),
    }
    let out = resume.output().expect("run nnc");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "nnc panicked:\n{err}");
    assert_eq!(out.status.code(), Some(2), "resumed run, an I/O error: {err}");
    assert!(
        err.contains(ckpt_s) && err.contains(cause),
        "the error names the checkpoint and `{cause}`: {err}"
    );
    assert_eq!(fs::read(&ckpt).expect("the checkpoint is still there"), before, "the checkpoint changed");
    let left: Vec<_> = fs::read_dir(&disk_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["sine.safetensors"], "only the checkpoint is on the disk");
    drop(mounted);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_leaves_the_previous_checkpoint_intact() {
    // Room for the checkpoint and less than one more page: the new
    // checkpoint's temporary file cannot be written beside it.
    let fill = |disk: &Tmpfs, used: u64| disk.remount(&format!("size={}", used.div_ceil(4096) * 4096 + 4096));
    resume_fails_and_keeps_the_checkpoint("full", Failure::Mounted(&fill), "No space left on device");
}

#[test]
fn a_read_only_file_system_leaves_the_previous_checkpoint_intact() {
    let read_only = |disk: &Tmpfs, _| disk.remount("ro");
    resume_fails_and_keeps_the_checkpoint("readonly", Failure::Mounted(&read_only), "Read-only file system");
}

#[test]
fn an_injected_full_disk_leaves_the_previous_checkpoint_intact() {
    resume_fails_and_keeps_the_checkpoint(
        "full-injected",
        Failure::Injected("full"),
        "No space left on device",
    );
}

#[test]
fn an_injected_read_only_file_system_leaves_the_previous_checkpoint_intact() {
    resume_fails_and_keeps_the_checkpoint(
        "readonly-injected",
        Failure::Injected("read-only"),
        "Read-only file system",
    );
}
