//! The bad-program corpus: `tests/ui/*.nn`, one mistake per file (named by
//! the file's first line, a `# ` comment). Each must fail to compile; the
//! rendered diagnostics — exactly what `nnc check` prints — are
//! snapshot-tested. The binary is run on every file too, to check the exit
//! code and that nothing panics.

mod common;

use std::path::Path;
use std::process::Command;

use common::{display_path, for_each_file, nn_files, root, stem};

/// The corpus must cover at least this many mistakes.
const MIN_CASES: usize = 35;

fn corpus() -> Vec<std::path::PathBuf> {
    nn_files("tests/ui")
}

/// The first line's comment: what is wrong with the program.
fn header(path: &Path, source: &str) -> String {
    let first = source.lines().next().unwrap_or("");
    match first.strip_prefix("# ") {
        Some(text) if !text.trim().is_empty() => text.trim().to_string(),
        _ => panic!("{}: the first line must be a `# ` comment saying what is wrong", display_path(path)),
    }
}

#[test]
fn corpus_is_large_enough() {
    let n = corpus().len();
    assert!(n >= MIN_CASES, "tests/ui has {n} programs; at least {MIN_CASES} expected");
}

#[test]
fn diagnostics_snapshots() {
    for_each_file(&corpus(), |path, source| {
        let what = header(path, source);
        let name = display_path(path);
        let rendered = match nnc::check_source(&name, source, false) {
            Ok(module) => panic!("{name} compiled (model {}) but should fail: {what}", module.name),
            Err(rendered) => rendered,
        };
        assert!(rendered.contains("error"), "{name}: no error in the diagnostics:\n{rendered}");
        let mut settings = insta::Settings::clone_current();
        settings.set_input_file(path);
        settings.set_description(format!("{name}: {what}"));
        settings.bind(|| insta::assert_snapshot!(stem(path), rendered));
    });
}

#[test]
fn binary_exits_with_1_and_prints_the_diagnostics() {
    for_each_file(&corpus(), |path, source| {
        let name = display_path(path);
        let output = Command::new(env!("CARGO_BIN_EXE_nnc"))
            .current_dir(root())
            .args(["check", "--color", "never", &name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run nnc: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{name}: nnc panicked:\n{stderr}");
        assert_eq!(output.status.code(), Some(1), "{name}: exit status; stderr:\n{stderr}");
        assert!(
            output.stdout.is_empty(),
            "{name}: unexpected stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let expected = nnc::check_source(&name, source, false).err().unwrap_or_default();
        assert_eq!(stderr, expected, "{name}: the binary prints other diagnostics than the library renders");
    });
}
