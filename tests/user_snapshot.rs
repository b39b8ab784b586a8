//! Snapshot tests of models as a user writes them in a crate that embeds
//! nnc: `nnc::assert_stage!(MODEL, STAGE)` compares a stage of a model file
//! with `snapshots/NAME@STAGE.snap` beside it, through insta. The snapshots
//! of these tests are `models/snapshots/*.snap`, the files `nnc snapshot
//! models/sine.nn` checks too (see `tests/snapshot.rs`).

#![cfg(feature = "snapshot")]

#[test]
fn sine_summary() {
    nnc::assert_stage!("models/sine.nn", "summary");
}

#[test]
fn sine_fused() {
    nnc::assert_stage!("models/sine.nn", "fused");
}

#[test]
fn nino12_forward() {
    nnc::assert_stage!("models/nino12.nn", "forward");
}

/// A model with errors fails the test with its rendered diagnostics.
#[test]
#[should_panic(expected = "cannot find `hiden` in this scope")]
fn a_model_with_errors_fails_with_its_diagnostics() {
    nnc::assert_stage!("tests/ui/undefined_name.nn", "summary");
}

/// An unknown stage fails the test naming the known ones.
#[test]
#[should_panic(expected = "unknown stage `fuse`; the stages are summary, ast, forward")]
fn an_unknown_stage_fails_naming_the_stages() {
    nnc::assert_stage!("models/sine.nn", "fuse");
}
