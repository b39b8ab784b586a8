//! `nnc snapshot` end to end, on temporary copies of `models/sine.nn`: new
//! snapshots are created, an unchanged model passes, a changed one fails
//! with a diff and a `.snap.new`, `--accept` takes the new text, missing
//! snapshots fail under `CI`, and bad models and stages are clear errors.
//! The files are checked with insta's own reader, and the snapshots that
//! insta writes for `tests/user_snapshot.rs` are checked by the command.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{nnc, read, root, text};

/// A fresh directory holding a copy of `models/sine.nn` as `sine.nn`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-snapshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(root().join("models/sine.nn"), dir.join("sine.nn")).expect("copy sine.nn");
    dir
}

/// Runs `nnc ARGS` with the environment variable `CI` set to `ci`, or
/// removed (the test suite itself may run under `CI=true`).
fn nnc_ci(args: &[&str], ci: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_nnc"));
    command.current_dir(root()).args(args);
    match ci {
        Some(value) => command.env("CI", value),
        None => command.env_remove("CI").env_remove("TF_BUILD"),
    };
    command.output().unwrap_or_else(|e| panic!("cannot run nnc: {e}"))
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// The exit code, with stdout and stderr in the failure message.
fn code(out: &Output) -> i32 {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "nnc panicked:\n{stderr}");
    out.status.code().unwrap_or_else(|| panic!("killed by a signal; stderr:\n{stderr}"))
}

fn outputs(out: &Output) -> String {
    format!("--- stdout\n{}--- stderr\n{}", text(&out.stdout), text(&out.stderr))
}

/// The last line of stdout: the count of models and stages.
fn last_line(out: &Output) -> String {
    text(&out.stdout).lines().last().unwrap_or_default().to_string()
}

/// What `nnc summary` or `nnc ir --stage STAGE` prints for `model`.
fn stage_text(model: &Path, stage: &str) -> String {
    let model = show(model);
    let out =
        if stage == "summary" { nnc(&["summary", &model]) } else { nnc(&["ir", &model, "--stage", stage]) };
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    text(&out.stdout)
}

/// insta's reading of a snapshot file: its header fields and its text.
fn insta_read(path: &Path) -> (insta::MetaData, String) {
    let snapshot =
        insta::Snapshot::from_file(path).unwrap_or_else(|e| panic!("insta cannot read {}: {e}", show(path)));
    let text =
        snapshot.contents().as_text().unwrap_or_else(|| panic!("{} is not a text snapshot", show(path)));
    (snapshot.metadata().clone(), text.to_string())
}

#[test]
fn a_new_model_gets_snapshots_that_insta_reads_and_then_passes() {
    let dir = scratch("new");
    let model = dir.join("sine.nn");
    let out = nnc_ci(&["snapshot", &show(&dir)], None);
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    let stdout = text(&out.stdout);
    for stage in ["summary", "forward", "opt", "fused"] {
        let snap = dir.join(format!("snapshots/sine@{stage}.snap"));
        let line = format!("created: {}, stage {stage}: wrote {}", show(&model), show(&snap));
        assert!(stdout.contains(&line), "no `{line}` in\n{}", outputs(&out));
        let (metadata, contents) = insta_read(&snap);
        assert_eq!(contents, stage_text(&model, stage).trim_end(), "{stage}: the text of the snapshot");
        let command = if stage == "summary" {
            "nnc summary sine.nn".to_string()
        } else {
            format!("nnc ir sine.nn --stage {stage}")
        };
        assert_eq!(metadata.expression(), Some(command.as_str()));
        assert_eq!(metadata.source(), Some("sine.nn"));
        assert_eq!(metadata.input_file(), Some("sine.nn"));
        assert!(metadata.description().is_some_and(|d| !d.is_empty()), "{stage}: no description");
        assert_eq!(metadata.assertion_line(), None);
    }
    assert_eq!(last_line(&out), "1 model, 4 stages: 4 created");

    let again = nnc(&["snapshot", &show(&model)]);
    assert_eq!(code(&again), 0, "{}", outputs(&again));
    assert!(text(&again.stdout).contains(&format!("unchanged: {}, stage fused\n", show(&model))));
    assert_eq!(last_line(&again), "1 model, 4 stages: 4 unchanged");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The unified diff's hunk header for texts whose first difference is on
/// line `first` (0-based) of the text, after a header of `header` lines:
/// the hunk starts 3 lines of context before it.
fn hunk_start(old: &str, new: &str, header: usize) -> usize {
    let first = old.lines().zip(new.lines()).position(|(a, b)| a != b).expect("the texts differ");
    first.saturating_sub(3) + 1 + header
}

#[test]
fn a_changed_model_fails_with_a_diff_until_accepted() {
    let dir = scratch("changed");
    let model = dir.join("sine.nn");
    let m = show(&model);
    let accepted = nnc(&["snapshot", &m, "--stage", "summary,forward", "--accept"]);
    assert_eq!(code(&accepted), 0, "{}", outputs(&accepted));
    assert_eq!(last_line(&accepted), "1 model, 2 stages: 2 created");
    let summary_snap = dir.join("snapshots/sine@summary.snap");
    let forward_snap = dir.join("snapshots/sine@forward.snap");
    let stored_summary = read(&summary_snap);
    let old_summary = stage_text(&model, "summary");

    // The first layer gets 32 units instead of 64.
    let source = read(&model);
    std::fs::write(&model, source.replacen("h = x |> dense(64)", "h = x |> dense(32)", 1))
        .expect("write model");
    let new_summary = stage_text(&model, "summary");
    let out = nnc(&["snapshot", &m, "--stage", "summary,forward"]);
    assert_eq!(code(&out), 1, "{}", outputs(&out));
    let stdout = text(&out.stdout);
    for (stage, snap) in [("summary", &summary_snap), ("forward", &forward_snap)] {
        let pending = snap.with_extension("snap.new");
        let line = format!(
            "changed: {m}, stage {stage}: differs from {} (new text in {})",
            show(snap),
            show(&pending)
        );
        assert!(stdout.contains(&line), "no `{line}` in\n{}", outputs(&out));
        assert!(stdout.contains(&format!("--- {}\n+++ {}\n@@ -", show(snap), show(&pending))), "{stdout}");
        let (_, contents) = insta_read(&pending);
        assert_eq!(contents, stage_text(&model, stage).trim_end(), "{stage}: the text of the .snap.new");
    }
    // The diff of the summary names the lines of the files: a header of 6
    // lines, then the text.
    let start = hunk_start(&old_summary, &new_summary, 6);
    assert!(stdout.contains(&format!("@@ -{start},")), "no hunk at line {start} in\n{stdout}");
    let old_row = old_summary.lines().find(|l| l.starts_with("h.dense_1")).expect("a dense_1 row");
    let new_row = new_summary.lines().find(|l| l.starts_with("h.dense_1")).expect("a dense_1 row");
    assert!(
        stdout.contains(&format!("\n-{old_row}\n")) && stdout.contains(&format!("\n+{new_row}\n")),
        "{stdout}"
    );
    assert_eq!(read(&summary_snap), stored_summary, "a failed check leaves the snapshot as it was");
    assert_eq!(last_line(&out), "1 model, 2 stages: 2 changed");
    let hint = text(&out.stdout).lines().rev().nth(1).unwrap_or_default().to_string();
    assert!(hint.contains("--accept") && hint.contains("cargo insta review"), "{hint}");

    let accept = nnc(&["snapshot", &m, "--stage", "summary,forward", "--accept"]);
    assert_eq!(code(&accept), 0, "{}", outputs(&accept));
    assert_eq!(last_line(&accept), "1 model, 2 stages: 2 updated");
    assert!(!summary_snap.with_extension("snap.new").exists(), "--accept removes the .snap.new");
    assert_eq!(insta_read(&summary_snap).1, new_summary.trim_end());
    let pass = nnc(&["snapshot", &m, "--stage", "summary,forward"]);
    assert_eq!(code(&pass), 0, "{}", outputs(&pass));
    assert_eq!(last_line(&pass), "1 model, 2 stages: 2 unchanged");

    // Back to 64 units: changed again; then a run against the restored
    // snapshot removes the stale `.snap.new`.
    std::fs::write(&model, &source).expect("write model");
    let out = nnc(&["snapshot", &m, "--stage", "summary"]);
    assert_eq!(code(&out), 1, "{}", outputs(&out));
    assert!(summary_snap.with_extension("snap.new").exists());
    std::fs::write(&summary_snap, &stored_summary).expect("restore the snapshot");
    let out = nnc(&["snapshot", &m, "--stage", "summary"]);
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    assert!(!summary_snap.with_extension("snap.new").exists(), "a stale .snap.new is removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_snapshot_fails_under_ci() {
    let dir = scratch("ci");
    let model = dir.join("sine.nn");
    let snap = dir.join("snapshots/sine@summary.snap");
    let out = nnc_ci(&["snapshot", &show(&model), "--stage", "summary"], Some("true"));
    assert_eq!(code(&out), 1, "{}", outputs(&out));
    let line = format!(
        "missing: {}, stage summary: no {} and CI is set, so none is created (new text in {})",
        show(&model),
        show(&snap),
        show(&snap.with_extension("snap.new"))
    );
    assert!(text(&out.stdout).contains(&line), "no `{line}` in\n{}", outputs(&out));
    assert!(!snap.exists() && snap.with_extension("snap.new").exists());
    assert_eq!(last_line(&out), "1 model, 1 stage: 1 missing");

    // `CI=false` is no CI run, as for insta.
    let out = nnc_ci(&["snapshot", &show(&model), "--stage", "summary"], Some("false"));
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    assert_eq!(last_line(&out), "1 model, 1 stage: 1 created");
    assert!(snap.exists() && !snap.with_extension("snap.new").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_with_a_syntax_error_is_reported_and_the_others_are_checked() {
    let dir = scratch("syntax");
    let bad = dir.join("sine.nn");
    std::fs::copy(&bad, dir.join("good.nn")).expect("copy");
    std::fs::write(&bad, read(&bad).replacen("dense(64) |> tanh", "dense(64 |> tanh", 1))
        .expect("write model");
    let out = nnc(&["snapshot", &show(&dir), "--stage", "summary", "--accept"]);
    assert_eq!(code(&out), 1, "{}", outputs(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&format!("┌─ {}:6:", show(&bad))), "the diagnostic points at line 6:\n{stderr}");
    assert!(text(&out.stdout).contains(&format!("created: {}, stage summary", show(&dir.join("good.nn")))));
    assert_eq!(last_line(&out), "2 models, 1 stage: 1 created; 1 model has errors");
    assert!(!dir.join("snapshots/sine@summary.snap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors() {
    let out = nnc(&["snapshot", "models/sine.nn", "--stage", "summary,fuse"]);
    assert_eq!(code(&out), 2, "{}", outputs(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid value 'fuse' for '--stage"), "{stderr}");
    assert!(stderr.contains("[possible values: summary, ast, forward"), "{stderr}");

    // The repository root has no `.nn` files: the default directory is the
    // current one.
    let out = nnc(&["snapshot"]);
    assert_eq!(code(&out), 2, "{}", outputs(&out));
    assert_eq!(
        text(&out.stderr),
        "error: no .nn files in the current directory; give the model files or their directories \
         (`nnc snapshot models/`)\n"
    );

    let out = nnc(&["snapshot", "models/no_such_model.nn"]);
    assert_eq!(code(&out), 2, "{}", outputs(&out));
    assert!(
        text(&out.stderr).contains("error: cannot read models/no_such_model.nn: No such file or directory")
    );
}

#[test]
fn a_stored_file_that_is_not_a_snapshot_is_an_error_until_accepted() {
    let dir = scratch("corrupt");
    let model = dir.join("sine.nn");
    let snap = dir.join("snapshots/sine@summary.snap");
    std::fs::create_dir_all(snap.parent().expect("a directory")).expect("snapshots dir");
    std::fs::write(&snap, "model sine\n").expect("write");
    let out = nnc(&["snapshot", &show(&model), "--stage", "summary"]);
    assert_eq!(code(&out), 2, "{}", outputs(&out));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}, stage summary: {}: not a snapshot file: it does not begin with a `---` line \
             (`--accept` replaces it)\n",
            show(&model),
            show(&snap)
        )
    );
    assert_eq!(last_line(&out), "1 model, 1 stage: 1 failed");
    assert_eq!(read(&snap), "model sine\n", "the file is left as it was");

    let out = nnc(&["snapshot", &show(&model), "--stage", "summary", "--accept"]);
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    assert_eq!(insta_read(&snap).1, stage_text(&model, "summary").trim_end());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The snapshots insta writes through `nnc::assert_stage!` (in
/// `tests/user_snapshot.rs`) are the ones `nnc snapshot` checks: same
/// place, same text, the same header but for `source` and `input_file`
/// (insta records the test file and the model's path in the crate).
#[test]
fn the_command_checks_the_snapshots_insta_writes() {
    let out = nnc(&["snapshot", "models/sine.nn", "--stage", "summary,fused"]);
    assert_eq!(code(&out), 0, "{}", outputs(&out));
    assert_eq!(last_line(&out), "1 model, 2 stages: 2 unchanged");

    let dir = scratch("insta");
    let accepted = nnc(&["snapshot", &show(&dir), "--stage", "summary,fused", "--accept"]);
    assert_eq!(code(&accepted), 0, "{}", outputs(&accepted));
    for stage in ["summary", "fused"] {
        let ours = read(&dir.join(format!("snapshots/sine@{stage}.snap")));
        let insta = read(&root().join(format!("models/snapshots/sine@{stage}.snap")));
        let expected = insta.replacen("source: tests/user_snapshot.rs\n", "source: sine.nn\n", 1).replacen(
            "input_file: models/sine.nn\n",
            "input_file: sine.nn\n",
            1,
        );
        assert_eq!(ours, expected, "{stage}: the file nnc writes and the one insta writes");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
