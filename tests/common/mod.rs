//! Helpers shared by the integration tests: finding the `.nn` corpora and
//! running one check per file so that every failing file is reported (and
//! every changed snapshot written), not only the first.

#![allow(dead_code)] // each test crate uses a different subset

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use nnc_compiler::Module;

/// The root of the `nnc` package (the workspace root).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// All `*.nn` files directly in `dir` (relative to the package root), sorted
/// by name. Listed at test time so that new files are picked up.
pub fn nn_files(dir: &str) -> Vec<PathBuf> {
    let dir = root().join(dir);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "nn"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .nn files in {}", dir.display());
    files
}

/// The file name without `.nn`.
pub fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The path relative to the package root, with `/` separators (as shown in
/// diagnostics and snapshot metadata).
pub fn display_path(path: &Path) -> String {
    let rel = path.strip_prefix(root()).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs `check` on every file, catching failures, and fails at the end with
/// the list of files that failed.
pub fn for_each_file(files: &[PathBuf], check: impl Fn(&Path, &str)) {
    let mut failed = vec![];
    for path in files {
        let source = read(path);
        if catch_unwind(AssertUnwindSafe(|| check(path, &source))).is_err() {
            failed.push(display_path(path));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} files failed (see above): {}",
        failed.len(),
        files.len(),
        failed.join(", ")
    );
}

/// Compiles a file that must compile, failing with its rendered diagnostics.
/// `const` declarations read their files relative to the file's directory.
pub fn compile_ok(path: &Path, source: &str) -> Module {
    let name = display_path(path);
    nnc_compiler::compile_with(source, &nnc_runtime::FileLoader::for_model(path))
        .unwrap_or_else(|diags| {
            panic!("{name} does not compile:\n{}", nnc_compiler::diag::render_plain(&name, source, &diags))
        })
        .module
}

/// Reads and compiles the file `path` (relative to the package root, e.g.
/// `models/sine.nn`), which must compile; its `const` declarations read
/// their files relative to its directory.
pub fn compile_file(path: &str) -> Module {
    let path = root().join(path);
    compile_ok(&path, &read(&path))
}

/// Runs the `nnc` binary in the repository root with `args`.
pub fn nnc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nnc: {e}"))
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
