//! Reading `.nn` files: the only file I/O of the front end.
//!
//! Errors come back as one-line messages in the words users expect
//! (`cannot read models/x.nn: No such file or directory`), without the
//! operating system's error numbers, so that they are stable in tests.

use std::io;
use std::path::Path;

/// Reads `path` as UTF-8 text. The error is a complete message without the
/// leading `error: `.
pub fn read_source(path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_message(&e)))?;
    String::from_utf8(bytes).map_err(|e| {
        let err = e.utf8_error();
        let offset = err.valid_up_to();
        let (line, col) = line_col(&e.as_bytes()[..offset]);
        format!(
            "cannot read {}: not UTF-8 text (invalid byte 0x{:02x} at line {line}, column {col}, byte offset {offset})",
            path.display(),
            e.as_bytes()[offset],
        )
    })
}

/// The description of an I/O error without the `(os error N)` suffix that
/// `std` appends.
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// 1-based line and column just after `valid` (the valid UTF-8 prefix).
fn line_col(valid: &[u8]) -> (usize, usize) {
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_message_has_no_os_error_number() {
        let err = read_source(Path::new("no/such/file.nn")).unwrap_err();
        assert_eq!(err, "cannot read no/such/file.nn: No such file or directory");
    }

    #[test]
    fn invalid_utf8_position() {
        assert_eq!(line_col(b"ab\ncd"), (2, 3));
        assert_eq!(line_col(b""), (1, 1));
    }
}
