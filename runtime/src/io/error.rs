//! The error of every file-facing function of the runtime: which file, and
//! what is wrong with it, in one line a user can act on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A problem with a file: it could not be read or written, it is corrupt, or
/// its contents do not fit the model. Displayed as `PATH: CAUSE`.
#[derive(Debug)]
pub struct Error {
    /// The file concerned.
    pub path: PathBuf,
    /// What went wrong, as a phrase (no trailing period, no path).
    pub cause: String,
}

impl Error {
    /// An error about `path`.
    pub fn new(path: &Path, cause: impl Into<String>) -> Error {
        Error { path: path.to_path_buf(), cause: cause.into() }
    }

    /// An I/O error while doing `action` (e.g. "cannot read") on `path`.
    pub fn io(path: &Path, action: &str, err: &io::Error) -> Error {
        Error::new(path, format!("{action}: {}", io_message(err)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.cause)
    }
}

impl std::error::Error for Error {}

/// The description of an I/O error without the `(os error N)` suffix that
/// `std` appends, so that messages are stable across systems.
pub(crate) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A multi-dimensional index as `[i, j, k]`.
pub(crate) fn index_text(index: &[usize]) -> String {
    let parts: Vec<String> = index.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A list of names as "`a`, `b`, `c`", at most `limit` of them and then
/// "and N more".
pub(crate) fn names_text<'a>(names: impl IntoIterator<Item = &'a str>, limit: usize) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let mut parts: Vec<String> = names.iter().take(limit).map(|n| format!("`{n}`")).collect();
    if names.len() > limit {
        parts.push(format!("and {} more", names.len() - limit));
    }
    parts.join(", ")
}
