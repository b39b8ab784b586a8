//! User files as data sources: `csv(...)`, `npy(...)` and `npz(...)`.
//!
//! Arrays are read whatever their NumPy dtype (floats, signed and unsigned
//! integers, booleans) and converted to f32 or i32, as [`crate::io::npz`] does
//! for batches; unlike batches, float arrays may hold NaN here, because the
//! train section's `missing` rule decides what happens to such examples.
//! CSV files have a header row and at least one data row; every selected
//! cell must be a number (an empty cell or `NaN` is a missing value). The
//! selected columns name the variables of `x` and `y`, and each part keeps
//! the line of every row and its empty cells ([`Cells`]), so that a missing
//! value is reported where it is in the file. A misspelt column name gets
//! the closest column as a suggestion.

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Seek};
use std::path::Path;

use ndarray::{ArrayD, Dimension, IxDyn};
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};
use nnc_compiler::suggest::closest;

use super::{ArrayValue, Order, Part, Raw};
use crate::io::error::{index_text, io_message, names_text};
use crate::Error;

/// Reads a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::new(path, format!("cannot read: {}", io_message(&e))))
}

/// Why one attempt to read an array as a given element type failed.
enum Attempt {
    /// The array has another dtype: try the next one.
    OtherDtype(String),
    /// The array is unreadable.
    Failed(String),
}

fn npy_attempt(e: ReadNpyError) -> Attempt {
    match e {
        ReadNpyError::WrongDescriptor(descr) => Attempt::OtherDtype(descr.to_string()),
        ReadNpyError::MissingData => Attempt::Failed("the array's data is truncated".into()),
        ReadNpyError::Io(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Attempt::Failed("the file is truncated".into())
        }
        err => Attempt::Failed(format!("not a valid .npy array: {err}")),
    }
}

/// A source of arrays by element type: a `.npy` byte string or an `.npz` entry.
trait ArraySource {
    fn read<T: ReadableElement>(&mut self) -> Result<ArrayD<T>, Attempt>;
}

/// A `.npy` file held in memory.
struct NpyBytes<'a>(&'a [u8]);

impl ArraySource for NpyBytes<'_> {
    fn read<T: ReadableElement>(&mut self) -> Result<ArrayD<T>, Attempt> {
        ArrayD::<T>::read_npy(self.0).map_err(npy_attempt)
    }
}

/// Why an array could not be read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ArrayError {
    /// Its dtype is not a float, integer or boolean one; the NumPy
    /// descriptor as written in the file (`'<c16'`).
    Dtype(String),
    /// The array is unreadable (truncated, not an array) or holds a value
    /// beyond the range of the type it is converted to.
    Invalid(String),
}

impl std::fmt::Display for ArrayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArrayError::Dtype(descr) => {
                write!(f, "unsupported dtype {descr} (expected a float, integer or boolean array)")
            }
            ArrayError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Reads an array of any supported dtype: floats become f32 (NaN and
/// infinities kept; finite values beyond the f32 range are errors),
/// integers and booleans i32 (values beyond its range are errors).
fn read_array(src: &mut impl ArraySource) -> Result<ArrayValue, ArrayError> {
    macro_rules! try_float {
        ($t:ty) => {
            match src.read::<$t>() {
                Ok(a) => return float_array(a.mapv(f64::from)).map_err(ArrayError::Invalid),
                Err(Attempt::Failed(m)) => return Err(ArrayError::Invalid(m)),
                Err(Attempt::OtherDtype(_)) => {}
            }
        };
    }
    macro_rules! try_int {
        ($t:ty) => {
            match src.read::<$t>() {
                Ok(a) => return int_array(&a, stringify!($t)).map_err(ArrayError::Invalid),
                Err(Attempt::Failed(m)) => return Err(ArrayError::Invalid(m)),
                Err(Attempt::OtherDtype(_)) => {}
            }
        };
    }
    try_float!(f32);
    try_float!(f64);
    try_int!(i32);
    try_int!(i64);
    try_int!(u8);
    try_int!(i8);
    try_int!(i16);
    try_int!(u16);
    try_int!(u32);
    try_int!(u64);
    match src.read::<bool>() {
        Ok(a) => Ok(ArrayValue::I32(a.mapv(i32::from))),
        Err(Attempt::Failed(m)) => Err(ArrayError::Invalid(m)),
        Err(Attempt::OtherDtype(descr)) => Err(ArrayError::Dtype(descr)),
    }
}

fn float_array(values: ArrayD<f64>) -> Result<ArrayValue, String> {
    for (index, &v) in values.indexed_iter() {
        if v.is_finite() && (v as f32).is_infinite() {
            return Err(format!(
                "value {v:e} at index {} is outside the f32 range",
                index_text(index.slice())
            ));
        }
    }
    Ok(ArrayValue::F32(values.mapv(|v| v as f32)))
}

/// Converts integer values to i32, rejecting values beyond its range.
fn int_array<T: Copy + TryInto<i32> + std::fmt::Display>(
    values: &ArrayD<T>,
    dtype: &str,
) -> Result<ArrayValue, String> {
    let mut out = Vec::with_capacity(values.len());
    for (index, &v) in values.indexed_iter() {
        match v.try_into() {
            Ok(x) => out.push(x),
            Err(_) => {
                return Err(format!(
                    "{dtype} value {v} at index {} is outside the i32 range",
                    index_text(index.slice())
                ))
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(values.shape()), out).map(ArrayValue::I32).map_err(|e| e.to_string())
}

/// Reads array `name` of an open `.npz` archive, whatever its dtype:
/// floats as f32 (NaN and infinities kept; finite values beyond the f32
/// range are errors), integers and booleans as i32.
pub(crate) fn read_npz_array<R: Read + Seek>(reader: &mut Npz<R>, name: &str) -> Result<ArrayValue, String> {
    read_npz_entry(reader, name).map_err(|e| e.to_string())
}

/// [`read_npz_array`], telling an unsupported dtype from other failures.
pub(crate) fn read_npz_entry<R: Read + Seek>(
    reader: &mut Npz<R>,
    name: &str,
) -> Result<ArrayValue, ArrayError> {
    let bytes = reader.entry(name).map_err(ArrayError::Invalid)?;
    read_npy(&bytes)
}

/// Parses a `.npy` file's bytes.
pub(crate) fn parse_npy(bytes: &[u8]) -> Result<ArrayValue, String> {
    read_npy(bytes).map_err(|e| e.to_string())
}

/// [`parse_npy`], telling an unsupported dtype from other failures. The
/// header is checked against the bytes first ([`check_npy_size`]), so that
/// no array larger than the file is allocated.
pub(crate) fn read_npy(bytes: &[u8]) -> Result<ArrayValue, ArrayError> {
    check_npy_size(bytes).map_err(ArrayError::Invalid)?;
    read_array(&mut NpyBytes(bytes))
}

/// Checks that a `.npy` byte string holds the header and the data that its
/// header declares, before anything of those sizes is allocated: the
/// reader allocates the header's length and then the declared shape's
/// elements before it reads them, so a corrupt length or shape in a small
/// file (10¹² elements in 1 kB) must be refused here. Byte strings that do
/// not start like a `.npy` file are left to the reader, which refuses
/// them with its own message without allocating more than a few bytes.
pub fn check_npy_size(bytes: &[u8]) -> Result<(), String> {
    let Some((prefix, header_len)) = npy_prefix(bytes) else { return Ok(()) };
    let available = bytes.len() - prefix;
    if header_len > available {
        return Err(format!(
            "not a valid .npy array: truncated: its header is {header_len} bytes long, but the file ends {available} \
             bytes after the header's length"
        ));
    }
    let header = String::from_utf8_lossy(&bytes[prefix..prefix + header_len]);
    let shape = npy_shape(&header).ok_or_else(|| {
        format!("not a valid .npy array: no readable shape in its header {:?}", header.trim_end())
    })?;
    let item = npy_item_size(&header);
    let data = available - header_len;
    let needed = shape.iter().try_fold(item, |n, &d| n.checked_mul(d));
    match needed {
        Some(n) if n <= data => Ok(()),
        _ => Err(format!(
            "its header declares shape {shape:?} of {item}-byte elements, but the file holds {data} bytes of data: \
             the array's data is truncated"
        )),
    }
}

/// The length of a `.npy` file's fixed prefix and of its header, `None`
/// for bytes that do not start like a `.npy` file.
fn npy_prefix(bytes: &[u8]) -> Option<(usize, usize)> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return None;
    }
    match bytes[6] {
        1 => Some((10, usize::from(u16::from_le_bytes([bytes[8], bytes[9]])))),
        2 | 3 if bytes.len() >= 12 => {
            Some((12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize))
        }
        _ => None,
    }
}

/// The shape and element size a `.npy` file's header declares, from the
/// file's first bytes (at least its header); `None` where they cannot be
/// read from them.
pub(crate) fn npy_header(head: &[u8]) -> Option<(Vec<usize>, usize)> {
    let (prefix, header_len) = npy_prefix(head)?;
    let header = String::from_utf8_lossy(head.get(prefix..prefix.checked_add(header_len)?)?);
    Some((npy_shape(&header)?, npy_item_size(&header)))
}

/// The `'shape': (…)` tuple of a `.npy` header.
fn npy_shape(header: &str) -> Option<Vec<usize>> {
    let after = &header[header.find("'shape'")? + "'shape'".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('(')?;
    let inner = &after[..after.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

/// The size in bytes of one element of the `'descr'` of a `.npy` header,
/// at least 1: the digits after the type code (`'<f4'`: 4), four bytes per
/// character of a Unicode string (`'<U8'`: 32).
fn npy_item_size(header: &str) -> usize {
    let Some(at) = header.find("'descr'") else { return 1 };
    let rest = header[at + "'descr'".len()..].trim_start().trim_start_matches(':').trim_start();
    let Some(rest) = rest.strip_prefix('\'') else { return 1 };
    let descr = &rest[..rest.find('\'').unwrap_or(rest.len())];
    let code: String = descr.chars().skip_while(|c| "<>|=".contains(*c)).collect();
    let kind = code.chars().next().unwrap_or('?');
    let digits: String = code.chars().skip(1).take_while(char::is_ascii_digit).collect();
    let size = digits.parse::<usize>().unwrap_or(1).max(1);
    if kind == 'U' {
        size.saturating_mul(4)
    } else {
        size
    }
}

/// An `.npz` archive: a zip archive of `.npy` entries. Each entry is read
/// into memory as far as its stored or compressed stream goes (never by a
/// size the archive claims) and parsed by [`read_npy`].
pub(crate) struct Npz<R: Read + Seek> {
    zip: zip::ZipArchive<R>,
}

impl<R: Read + Seek> Npz<R> {
    /// Opens an archive; "not a valid .npz archive: …" when it is not one.
    pub(crate) fn new(reader: R) -> Result<Npz<R>, String> {
        zip::ZipArchive::new(reader)
            .map(|zip| Npz { zip })
            .map_err(|e| format!("not a valid .npz archive: {e}"))
    }

    /// The names of the arrays (the entries' names without `.npy`).
    pub(crate) fn names(&mut self) -> Result<Vec<String>, String> {
        (0..self.zip.len())
            .map(|i| {
                let file = self.zip.by_index(i).map_err(|e| format!("not a valid .npz archive: {e}"))?;
                let name = file.name();
                Ok(name.strip_suffix(".npy").unwrap_or(name).to_string())
            })
            .collect()
    }

    /// The bytes of array `name` (entry `name`, else `name.npy`).
    fn entry(&mut self, name: &str) -> Result<Vec<u8>, String> {
        let corrupt = |e: &dyn std::fmt::Display| format!("corrupt archive entry: {e}");
        let index = self
            .zip
            .index_for_name(name)
            .or_else(|| self.zip.index_for_name(&format!("{name}.npy")))
            .ok_or_else(|| corrupt(&"no such entry"))?;
        let mut file = self.zip.by_index(index).map_err(|e| corrupt(&e))?;
        let mut bytes = vec![];
        file.read_to_end(&mut bytes).map_err(|e| corrupt(&e))?;
        Ok(bytes)
    }
}

/// The arrays `keys` of an `.npz` archive held in `reader`; an unknown key
/// is an error listing the archive's arrays.
pub(crate) fn npz_arrays<R: Read + Seek>(reader: R, keys: &[&str]) -> Result<Vec<ArrayValue>, String> {
    let mut reader = Npz::new(reader)?;
    let names = reader.names()?;
    let mut out = vec![];
    for key in keys {
        if !names.iter().any(|n| n == key) {
            let have: BTreeSet<&str> = names.iter().map(String::as_str).collect();
            let list = if have.is_empty() {
                "the archive holds no arrays".to_string()
            } else {
                format!("the archive holds {}", names_text(have, 30))
            };
            return Err(format!("no array `{key}`; {list}"));
        }
        let value = read_npz_entry(&mut reader, key).map_err(|e| format!("array `{key}`: {e}"))?;
        out.push(value);
    }
    Ok(out)
}

/// `npy(x: PATH, y: PATH)`: two `.npy` files, first axis = example.
pub(crate) fn load_npy(x: &Path, y: &Path) -> Result<Raw, Error> {
    let part = |path: &Path, array: &str| -> Result<Part, Error> {
        let bytes = read_file(path)?;
        let value = parse_npy(&bytes).map_err(|m| Error::new(path, m))?;
        Ok(Part::of_file(array, path, value))
    };
    Ok(Raw {
        x: part(x, "x")?,
        y: part(y, "y")?,
        order: Order::Iid,
        origin: format!("{} and {}", x.display(), y.display()),
        variable_axis: 1,
        grid: None,
    })
}

/// `npz(PATH, x: KEY, y: KEY)`: two arrays of one archive.
pub(crate) fn load_npz(path: &Path, x: &str, y: &str) -> Result<Raw, Error> {
    let bytes = read_file(path)?;
    let mut arrays = npz_arrays(Cursor::new(bytes), &[x, y]).map_err(|m| Error::new(path, m))?.into_iter();
    let mut part = |array: &str| -> Result<Part, Error> {
        let value = arrays.next().ok_or_else(|| Error::new(path, format!("no array `{array}`")))?;
        Ok(Part::of_file(array, path, value))
    };
    Ok(Raw {
        x: part(x)?,
        y: part(y)?,
        order: Order::Iid,
        origin: path.display().to_string(),
        variable_axis: 1,
        grid: None,
    })
}

/// The columns of a CSV file (header row first), every selected cell a number.
pub(crate) struct Table {
    pub header: Vec<String>,
    /// Row-major cells of every column.
    pub rows: Vec<Vec<String>>,
    /// The line of the file each row starts on (1-based; the header is line 1).
    pub lines: Vec<u64>,
}

impl Table {
    /// Parses CSV text with a header row.
    pub fn parse(bytes: &[u8]) -> Result<Table, String> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| format!("not a valid CSV file: {e}"))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err("the file is empty (a header row naming the columns is needed)".into());
        }
        let (mut rows, mut lines) = (vec![], vec![]);
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(i as u64 + 2, |p| line_of_record(bytes, p));
                format!("line {line}: {}", csv_cause(&e))
            })?;
            lines.push(record.position().map_or(i as u64 + 2, |p| line_of_record(bytes, p)));
            rows.push(record.iter().map(|c| c.trim().to_string()).collect());
        }
        Ok(Table { header, rows, lines })
    }

    /// The line of row `row`.
    fn line(&self, row: usize) -> u64 {
        self.lines.get(row).copied().unwrap_or(row as u64 + 2)
    }

    /// The index of column `name`, or an error listing the columns (and
    /// the closest one, for a misspelt name).
    pub fn column(&self, name: &str) -> Result<usize, String> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            let suggestion = closest(name, self.header.iter().map(String::as_str))
                .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
            format!(
                "no column `{name}`{suggestion}; the columns are {}",
                names_text(self.header.iter().map(String::as_str), 40)
            )
        })
    }

    /// The cell as a number: `NaN` or an empty cell is NaN.
    pub fn number(&self, row: usize, col: usize) -> Result<f64, String> {
        let cell = self.cell(row, col);
        if cell.is_empty() {
            return Ok(f64::NAN);
        }
        cell.parse::<f64>().map_err(|_| {
            format!("line {}, column `{}`: `{cell}` is not a number", self.line(row), self.header[col])
        })
    }

    /// The text of a cell (empty past the end of a short row).
    fn cell(&self, row: usize, col: usize) -> &str {
        self.rows.get(row).and_then(|r| r.get(col)).map_or("", String::as_str)
    }

    /// The columns `names` as an `f32[rows, names.len()]` array.
    pub fn columns(&self, names: &[String]) -> Result<ArrayValue, String> {
        let cols = names.iter().map(|n| self.column(n)).collect::<Result<Vec<_>, _>>()?;
        let mut values = Vec::with_capacity(self.rows.len() * cols.len());
        for row in 0..self.rows.len() {
            for &col in &cols {
                let v = self.number(row, col)?;
                if v.is_finite() && (v as f32).is_infinite() {
                    return Err(format!(
                        "line {}, column `{}`: {v:e} is outside the f32 range",
                        self.line(row),
                        self.header[col]
                    ));
                }
                values.push(v as f32);
            }
        }
        ArrayD::from_shape_vec(IxDyn(&[self.rows.len(), cols.len()]), values)
            .map(ArrayValue::F32)
            .map_err(|e| e.to_string())
    }

    /// Where the values of [`Table::columns`]`(names)` are in the file.
    fn cells(&self, names: &[String]) -> Cells {
        let cols: Vec<usize> = names.iter().filter_map(|n| self.header.iter().position(|h| h == n)).collect();
        let mut empty = vec![];
        for row in 0..self.rows.len() {
            for (position, &col) in cols.iter().enumerate() {
                if self.cell(row, col).is_empty() {
                    empty.push((row, position));
                }
            }
        }
        Cells { lines: self.lines.clone(), columns: names.to_vec(), empty }
    }
}

/// The line a record starts on, from the position where the reader began
/// to read it: blank lines before it are skipped by the reader but counted
/// in its position.
fn line_of_record(bytes: &[u8], p: &csv::Position) -> u64 {
    let rest = usize::try_from(p.byte()).ok().and_then(|b| bytes.get(b..)).unwrap_or_default();
    let blank = rest.iter().take_while(|&&b| b == b'\n' || b == b'\r').filter(|&&b| b == b'\n').count();
    p.line() + blank as u64
}

/// Where the values of an array read from a CSV file are in the file: the
/// line of each example (row) and the column of each position (axis 1).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cells {
    pub lines: Vec<u64>,
    pub columns: Vec<String>,
    /// `(example, position)` of every empty cell, in order.
    pub empty: Vec<(usize, usize)>,
}

impl Cells {
    /// `line N, column `NAME`` of the value at `example`, `position`.
    pub fn place(&self, example: usize, position: usize) -> String {
        let line = self.lines.get(example).copied().unwrap_or(example as u64 + 2);
        let column = self.columns.get(position).map_or("?", String::as_str);
        format!("line {line}, column `{column}`")
    }

    /// Whether the cell of the value at `example`, `position` is empty.
    pub fn is_empty(&self, example: usize, position: usize) -> bool {
        self.empty.binary_search(&(example, position)).is_ok()
    }
}

fn csv_cause(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len} (a truncated or malformed row)")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// `csv(PATH, x: [COLUMNS], y: COLUMN or [COLUMNS])`: the columns name the
/// variables.
pub(crate) fn load_csv(path: &Path, x: &[String], y: &[String]) -> Result<Raw, Error> {
    let bytes = read_file(path)?;
    let table = Table::parse(&bytes).map_err(|m| Error::new(path, m))?;
    if table.rows.is_empty() {
        return Err(Error::new(path, "no data rows"));
    }
    let columns = |names: &[String]| -> Result<Part, Error> {
        let value = table.columns(names).map_err(|m| Error::new(path, m))?;
        let array = if names.len() == 1 { names[0].clone() } else { format!("[{}]", names.join(", ")) };
        Ok(Part {
            array,
            source: path.to_path_buf(),
            value,
            unit: None,
            variables: names.to_vec(),
            cells: Some(table.cells(names)),
        })
    };
    Ok(Raw {
        x: columns(x)?,
        y: columns(y)?,
        order: Order::Iid,
        origin: path.display().to_string(),
        variable_axis: 1,
        grid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_column_names_are_suggested() {
        let columns = ["t2m", "u10", "v10", "precipitation", "Pressure"];
        let suggest = |name: &str| closest(name, columns.iter().copied());
        assert_eq!(suggest("t2n"), Some("t2m"));
        assert_eq!(suggest("T2M"), Some("t2m"), "case is ignored");
        assert_eq!(suggest("precipitaiton"), Some("precipitation"), "a swap is one edit");
        assert_eq!(suggest("precip"), None, "too far");
        assert_eq!(suggest("pressure"), Some("Pressure"));
        assert_eq!(suggest("w"), None, "a one-letter name is never replaced");
        assert_eq!(suggest("u1"), Some("u10"));
    }

    #[test]
    fn rows_keep_their_lines_and_empty_cells() {
        let table = Table::parse(b"a,b,c\n1,2,3\n\n4,,6\n7,8,\n").expect("parses");
        assert_eq!(table.lines, [2, 4, 5], "the blank line 3 is skipped");
        let names = ["c".to_string(), "b".to_string()];
        let cells = table.cells(&names);
        assert_eq!(cells.empty, [(1, 1), (2, 0)]);
        assert!(cells.is_empty(1, 1) && !cells.is_empty(1, 0));
        assert_eq!(cells.place(2, 0), "line 5, column `c`");
        assert!(table.number(1, 1).expect("an empty cell is a number").is_nan());
        let e = Table::parse(b"a\n1\n\nx\n").expect("parses").number(1, 0).expect_err("not a number");
        assert_eq!(e, "line 4, column `a`: `x` is not a number");
        let e = Table::parse(b"a,b\r\n1,2\r\n\r\n3\r\n").err().expect("a short row");
        assert!(e.starts_with("line 4: 1 fields where the header has 2"), "{e}");
    }
}
