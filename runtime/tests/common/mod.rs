//! Helpers shared by the data-loading tests.

#![allow(dead_code)] // each test crate uses a different subset

use std::fs;
use std::path::{Path, PathBuf};

use nnc_compiler::config::DataSource;
use nnc_compiler::ir::Graph;
use nnc_runtime::data::{load, Examples, LoadOptions, Missing};

/// The training graph of a model with input `x: X` and target `y: Y`
/// (classes when `Y` is i32, values otherwise).
pub fn graph(x: &str, y: &str) -> Graph {
    let body = if y.starts_with("i32") {
        "z = x |> flatten |> dense(5)\n  loss = cross_entropy(z, y)"
    } else {
        "z = x |> flatten |> dense(1)\n  loss = mean(z) + mean(y)"
    };
    let src = format!("model m {{\n  input x: {x}\n  target y: {y}\n  {body}\n}}\n");
    match nnc_compiler::compile(&src) {
        Ok(c) => c.module.train_graph,
        Err(d) => panic!("{src}\n{d:#?}"),
    }
}

pub fn opts(missing: Missing, base: &Path) -> LoadOptions<'_> {
    LoadOptions { seed: 0, missing, base_dir: base }
}

/// Loads `source` for the model of [`graph`]`(x, y)`; errors as text.
pub fn try_load(
    source: &DataSource,
    x: &str,
    y: &str,
    missing: Missing,
    base: &Path,
) -> Result<Examples, String> {
    load(source, &graph(x, y), &opts(missing, base)).map_err(|e| e.to_string())
}

/// A fresh temporary directory for one test of `suite`, removed with
/// everything in it when the test ends (also when it fails).
pub fn temp(suite: &str, name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("nnc-{suite}-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// A temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
