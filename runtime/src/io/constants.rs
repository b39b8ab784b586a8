//! The values of `const` declarations, read when a program is compiled.
//!
//! The compiler reads no files: semantic analysis asks a
//! [`Loader`](nnc_compiler::sema::Loader) for the array of each `const NAME:
//! TYPE = SOURCE` and checks it against TYPE. [`FileLoader`] is the loader of
//! every command that compiles a user's model: paths are relative to the
//! model file's directory (absolute paths are used as given), and
//!
//! - `npy(PATH)` and `npz(PATH, KEY)` read arrays as the data sources do
//!   ([`crate::data::files`]): floats as f32 (f64 converted; a finite value
//!   beyond the f32 range is an error), signed and unsigned integers as i32
//!   (a value beyond its range is an error), booleans as i32 0 and 1, either
//!   byte order, C or Fortran order;
//! - `csv(PATH)` reads every cell as a `[rows, columns]` array and
//!   `csv(PATH, column: NAME)` one column as `[rows]`: i32 when every cell
//!   read is an integer literal (an edge list), else f32. A first line whose
//!   cells are all numbers is data (a file written by `np.savetxt`); any
//!   other first line is the header naming the columns;
//! - `netcdf(PATH, var: NAME)` reads a variable of a NetCDF file as the
//!   data source `netcdf(...)` does ([`crate::data::netcdf`]): NetCDF-3
//!   always, NetCDF-4 with the cargo feature `netcdf`; packed values are
//!   unpacked (`value · scale_factor + add_offset`) and the array is f32,
//!   except that an integer variable (`byte`, `short`, `int`) without
//!   `scale_factor` or `add_offset` is read as i32 (a land-sea mask can
//!   feed an `i32` constant). A fill value, a `missing_value` or a value
//!   outside `valid_range` is an error naming its index and why it is
//!   missing: a constant has no missing values;
//! - `dataset(NAME, field: FIELD)` reads a stored array of a shipped data
//!   set (the arrays the catalogue [`nnc_compiler::config::datasets`]
//!   lists, such as `dataset("landsea_etopo60", field: "landsea")`) or, for
//!   a set stored as a CSV table, one column of it as `[rows]` (typed as a
//!   CSV column above). Synthetic sources are not data sets: they have no
//!   fixed arrays to read.
//!
//! A constant's values must be finite: a NaN or an infinity (an empty CSV
//! cell included) is a data error, reported with the first bad index or
//! cell. Every error is one sentence that names the file as written and as
//! resolved: "cannot read `mask.npy` (models/mask.npy): No such file or
//! directory".

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use nnc_compiler::config::datasets;
use nnc_compiler::sema::{ConstData, ConstSource, Loaded, Loader};
use nnc_compiler::suggest::closest;

use super::error::{index_text, io_message, names_text};
use super::npz::ArrayValue;
use crate::data::files::{read_npy, read_npz_entry, ArrayError, Npz, Table};
use crate::data::netcdf::read_variable;

/// Reads `const` declarations' files relative to a base directory: the
/// model file's.
#[derive(Clone, Debug)]
pub struct FileLoader {
    base: PathBuf,
}

impl FileLoader {
    /// A loader resolving relative paths against `base`.
    pub fn new(base: impl Into<PathBuf>) -> FileLoader {
        FileLoader { base: base.into() }
    }

    /// The loader of the model file `model`: relative paths resolve against
    /// its directory.
    pub fn for_model(model: &Path) -> FileLoader {
        FileLoader::new(model.parent().unwrap_or(Path::new("")))
    }

    /// `path` resolved against the base directory unless it is absolute.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn file<'a>(&self, written: &'a str) -> ConstFile<'a> {
        ConstFile { written, resolved: self.resolve(written) }
    }

    fn npy(&self, path: &str) -> Result<Loaded, String> {
        let file = self.file(path);
        let bytes = file.read()?;
        let value = read_npy(&bytes).map_err(|e| array_error(&file.to_string(), e))?;
        finite(&file.to_string(), value)
    }

    fn npz(&self, path: &str, key: &str) -> Result<Loaded, String> {
        let file = self.file(path);
        let bytes = file.read()?;
        let value = npz_array(&file.to_string(), bytes, key)?;
        finite(&format!("array `{key}` of {file}"), value)
    }

    fn csv(&self, path: &str, column: Option<&str>) -> Result<Loaded, String> {
        let file = self.file(path);
        let bytes = file.read()?;
        let origin = file.to_string();
        let table = CsvTable::parse(&origin, &bytes)?;
        match column {
            None => table.all(&origin),
            Some(name) => table.column(&origin, name),
        }
    }

    fn netcdf(&self, path: &str, name: &str) -> Result<Loaded, String> {
        let file = self.file(path);
        let bytes = file.read()?;
        let var = read_variable(&file.resolved, bytes, name)
            .map_err(|cause| format!("cannot load {file}: {cause}"))?;
        let origin = format!("variable `{name}` of {file}");
        let decoded = var.decoded();
        if let Some(flat) = decoded.iter().position(|v| !v.is_finite()) {
            let at = index_text(&unflatten(flat, &var.shape));
            return Err(match var.why_missing(var.values[flat]) {
                Some(why) => format!(
                    "{origin} has a missing value at index {at} ({why}); a constant's values must be \
                     finite: fill the gaps in the file (e.g. with `cdo setmisstoc,0`)"
                ),
                None => not_finite(&origin, decoded[flat], &format!("index {at}")),
            });
        }
        let unpacked = var.scale == 1.0 && var.offset == 0.0;
        let fits = |v: &f64| (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(v);
        let data = if var.integer && unpacked && var.values.iter().all(fits) {
            ConstData::I32(var.values.iter().map(|&v| v as i32).collect())
        } else {
            ConstData::F32(decoded)
        };
        Ok(Loaded { shape: var.shape, data })
    }
}

impl Loader for FileLoader {
    fn load(&self, source: &ConstSource) -> Result<Loaded, String> {
        match source {
            ConstSource::Npy { path } => self.npy(path),
            ConstSource::Npz { path, key } => self.npz(path, key),
            ConstSource::Csv { path, column } => self.csv(path, column.as_deref()),
            ConstSource::Dataset { name, field } => dataset_field(name, field),
            ConstSource::Netcdf { path, var } => self.netcdf(path, var),
        }
    }
}

/// A constant's file, shown as written and, when that differs, as resolved:
/// "`mask.npy` (models/mask.npy)".
struct ConstFile<'a> {
    written: &'a str,
    resolved: PathBuf,
}

impl ConstFile<'_> {
    fn read(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.resolved).map_err(|e| format!("cannot read {self}: {}", io_message(&e)))
    }
}

impl fmt::Display for ConstFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.resolved == Path::new(self.written) {
            write!(f, "`{}`", self.written)
        } else {
            write!(f, "`{}` ({})", self.written, self.resolved.display())
        }
    }
}

/// The message for an array of `origin` that could not be read.
fn array_error(origin: &str, error: ArrayError) -> String {
    match error {
        ArrayError::Dtype(descr) => format!(
            "{origin} holds {} values; a constant must be numeric (f32, f64, signed or unsigned \
             integers, bool)",
            numpy_dtype(&descr)
        ),
        ArrayError::Invalid(cause) => format!("cannot load {origin}: {cause}"),
    }
}

/// NumPy's name of the dtype of a descriptor as `ndarray-npy` shows it
/// (`'<c16'` is `complex128`), or the descriptor itself.
fn numpy_dtype(descr: &str) -> String {
    let typestr = descr.trim_matches(|c| c == '\'' || c == '"');
    if typestr.starts_with('[') {
        return "structured (record)".into();
    }
    let body = typestr.trim_start_matches(['<', '>', '|', '=']);
    let Some(kind) = body.chars().next() else { return descr.to_string() };
    let bits = body[kind.len_utf8()..].parse::<usize>().ok().map(|bytes| bytes * 8);
    match (kind, bits) {
        ('c', Some(bits)) => format!("complex{bits}"),
        ('f', Some(bits)) => format!("float{bits}"),
        ('U', _) => "string (str)".into(),
        ('S' | 'a', _) => "bytes".into(),
        ('O', _) => "object (Python object)".into(),
        ('M', _) => "datetime64".into(),
        ('m', _) => "timedelta64".into(),
        ('V', _) => "void (raw bytes)".into(),
        _ => descr.to_string(),
    }
}

/// Array `key` of the `.npz` archive `bytes` (read from `origin`).
fn npz_array(origin: &str, bytes: impl AsRef<[u8]>, key: &str) -> Result<ArrayValue, String> {
    let invalid = |cause: String| format!("cannot load {origin}: {cause}");
    let mut reader = Npz::new(Cursor::new(bytes)).map_err(invalid)?;
    let names = reader.names().map_err(invalid)?;
    if !names.iter().any(|n| n == key) {
        return Err(format!("{origin} has no array `{key}`{}", choices(key, &names, "arrays")));
    }
    read_npz_entry(&mut reader, key).map_err(|e| array_error(&format!("array `{key}` of {origin}"), e))
}

/// "(did you mean `b`?); its arrays are `a`, `b`" for a name not among `names`.
fn choices(wanted: &str, names: &[String], what: &str) -> String {
    if names.is_empty() {
        return format!("; it has no {what}");
    }
    let suggestion = closest(wanted, names.iter().map(String::as_str))
        .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
    format!("{suggestion}; its {what} are {}", names_text(names.iter().map(String::as_str), 40))
}

/// The array as a constant, refusing NaN and infinities (naming the first).
fn finite(origin: &str, value: ArrayValue) -> Result<Loaded, String> {
    let shape = value.shape().to_vec();
    let data = match value {
        // `iter` runs in logical (row-major) order whatever the memory order.
        ArrayValue::F32(a) => ConstData::F32(a.iter().copied().collect()),
        ArrayValue::I32(a) => ConstData::I32(a.iter().copied().collect()),
    };
    if let ConstData::F32(values) = &data {
        if let Some(flat) = values.iter().position(|v| !v.is_finite()) {
            let at = index_text(&unflatten(flat, &shape));
            return Err(not_finite(origin, values[flat], &format!("index {at}")));
        }
    }
    Ok(Loaded { shape, data })
}

/// "ORIGIN holds NaN at PLACE; ...".
fn not_finite(origin: &str, value: f32, place: &str) -> String {
    let what = if value.is_nan() { "NaN" } else { "an infinite value" };
    format!("{origin} holds {what} at {place}; a constant's values must be finite")
}

/// The row-major index of element `flat` of an array of `shape`.
fn unflatten(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            index[i] = flat % n;
            flat /= n;
        }
    }
    index
}

/// A CSV file's cells, its header (if the first line is one) and the line
/// of every row.
struct CsvTable {
    /// The column names, or `None` when the first line is data.
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
    lines: Vec<u64>,
}

impl CsvTable {
    /// Parses CSV text (read from `origin`); a first line of numbers is data.
    fn parse(origin: &str, bytes: &[u8]) -> Result<CsvTable, String> {
        let table = Table::parse(bytes).map_err(|m| format!("cannot load {origin}: {m}"))?;
        let numeric = table.header.iter().all(|cell| cell.parse::<f64>().is_ok());
        let parsed = if numeric {
            let rows = std::iter::once(table.header).chain(table.rows).collect();
            let lines = std::iter::once(1).chain(table.lines).collect();
            CsvTable { header: None, rows, lines }
        } else {
            CsvTable { header: Some(table.header), rows: table.rows, lines: table.lines }
        };
        if parsed.rows.is_empty() {
            return Err(format!("{origin} has no data rows (only a header)"));
        }
        Ok(parsed)
    }

    fn columns(&self) -> usize {
        self.header.as_ref().or(self.rows.first()).map_or(0, Vec::len)
    }

    /// "line 3, column `lat`" (or "column 2" without a header).
    fn place(&self, row: usize, col: usize) -> String {
        let line = self.lines.get(row).copied().unwrap_or(row as u64 + 1);
        match &self.header {
            Some(names) => format!("line {line}, column `{}`", names[col]),
            None => format!("line {line}, column {}", col + 1),
        }
    }

    /// The finite f32 value of a cell.
    fn number(&self, origin: &str, row: usize, col: usize) -> Result<f32, String> {
        let cell = self.rows.get(row).and_then(|r| r.get(col)).map_or("", String::as_str);
        if cell.is_empty() {
            return Err(format!(
                "{origin} has an empty cell at {}; a constant's values must be finite",
                self.place(row, col)
            ));
        }
        let v = cell.parse::<f64>().map_err(|_| {
            format!("cannot load {origin}: {} holds `{cell}`, not a number", self.place(row, col))
        })?;
        if !v.is_finite() {
            return Err(not_finite(origin, v as f32, &self.place(row, col)));
        }
        if (v as f32).is_infinite() {
            return Err(format!(
                "cannot load {origin}: {} holds {v:e}, outside the f32 range",
                self.place(row, col)
            ));
        }
        Ok(v as f32)
    }

    /// The cells of `cols` in every row, as an array of `shape`: i32 when
    /// every cell is an integer literal within its range (so that an edge
    /// list can feed an `i32` constant; an `f32` one converts it), else f32.
    fn values(&self, origin: &str, cols: &[usize], shape: Vec<usize>) -> Result<Loaded, String> {
        let cell =
            |row: usize, col: usize| self.rows.get(row).and_then(|r| r.get(col)).map_or("", String::as_str);
        let cells = || (0..self.rows.len()).flat_map(|row| cols.iter().map(move |&col| (row, col)));
        if let Ok(values) = cells().map(|(row, col)| cell(row, col).parse::<i32>()).collect() {
            return Ok(Loaded { shape, data: ConstData::I32(values) });
        }
        let values = cells().map(|(row, col)| self.number(origin, row, col)).collect::<Result<_, _>>()?;
        Ok(Loaded { shape, data: ConstData::F32(values) })
    }

    /// Every cell, `[rows, columns]`.
    fn all(&self, origin: &str) -> Result<Loaded, String> {
        let cols: Vec<usize> = (0..self.columns()).collect();
        self.values(origin, &cols, vec![self.rows.len(), cols.len()])
    }

    /// Column `name`, `[rows]`.
    fn column(&self, origin: &str, name: &str) -> Result<Loaded, String> {
        let Some(header) = &self.header else {
            return Err(format!(
                "{origin} has no header row (its first line holds numbers), so it has no column `{name}`"
            ));
        };
        let Some(col) = header.iter().position(|h| h == name) else {
            return Err(format!("{origin} has no column `{name}`{}", choices(name, header, "columns")));
        };
        self.values(origin, &[col], vec![self.rows.len()])
    }
}

/// `dataset(NAME, field: FIELD)`: a stored array of a shipped data set, or
/// a column of one stored as a CSV table.
fn dataset_field(name: &str, field: &str) -> Result<Loaded, String> {
    let Some(set) = datasets::find(name) else {
        let names = datasets::names();
        let suggestion =
            closest(name, names.iter().copied()).map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
        return Err(format!(
            "there is no data set `{name}`{suggestion}; the data sets are {}",
            names_text(names, 40)
        ));
    };
    let origin = format!("`dataset(\"{name}\", field: \"{field}\")`");
    let bytes = crate::data::datasets::embedded_file(set.name)
        .ok_or_else(|| format!("cannot load {origin}: internal error: the data set has no embedded file"))?;
    if set.arrays.first().is_some_and(|a| a.dtype == "csv") {
        let table = CsvTable::parse(&origin, bytes)?;
        let columns = table.header.clone().unwrap_or_default();
        if !columns.iter().any(|c| c == field) {
            return Err(format!(
                "data set `{name}` has no field `{field}`{}",
                choices(field, &columns, "fields")
            ));
        }
        return table.column(&origin, field);
    }
    let fields: Vec<String> = set.arrays.iter().map(|a| a.name.to_string()).collect();
    if !fields.iter().any(|f| f == field) {
        return Err(format!("data set `{name}` has no field `{field}`{}", choices(field, &fields, "fields")));
    }
    let value = npz_array(&origin, bytes, field)?;
    finite(&origin, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, arr2, Array2, ShapeBuilder};
    use ndarray_npy::{NpzWriter, WriteNpyExt};

    /// A fresh temporary directory for one test.
    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nnc-const-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn write_npy<A: WriteNpyExt>(dir: &Path, name: &str, array: &A) {
        let file = std::fs::File::create(dir.join(name)).expect("create");
        array.write_npy(file).expect("write npy");
    }

    /// A `.npy` file with any descriptor (for dtypes ndarray cannot write).
    fn raw_npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    fn npy(path: &str) -> ConstSource {
        ConstSource::Npy { path: path.into() }
    }

    fn npz(path: &str, key: &str) -> ConstSource {
        ConstSource::Npz { path: path.into(), key: key.into() }
    }

    fn csv(path: &str, column: Option<&str>) -> ConstSource {
        ConstSource::Csv { path: path.into(), column: column.map(str::to_string) }
    }

    fn dataset(name: &str, field: &str) -> ConstSource {
        ConstSource::Dataset { name: name.into(), field: field.into() }
    }

    fn ok(loader: &FileLoader, source: &ConstSource) -> Loaded {
        loader.load(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn err(loader: &FileLoader, source: &ConstSource) -> String {
        match loader.load(source) {
            Ok(l) => panic!("{source} loaded: {l:?}"),
            Err(e) => e,
        }
    }

    fn floats(shape: &[usize], values: &[f32]) -> Loaded {
        Loaded { shape: shape.to_vec(), data: ConstData::F32(values.to_vec()) }
    }

    fn ints(shape: &[usize], values: &[i32]) -> Loaded {
        Loaded { shape: shape.to_vec(), data: ConstData::I32(values.to_vec()) }
    }

    #[test]
    fn npy_arrays_of_every_numeric_dtype() {
        let dir = temp("npy");
        write_npy(&dir, "f32.npy", &arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        write_npy(&dir, "f64.npy", &arr1(&[0.5f64, -2.0]));
        write_npy(&dir, "i32.npy", &arr1(&[1i32, -7]));
        write_npy(&dir, "i64.npy", &arr2(&[[0i64, 1], [2, 3]]));
        write_npy(&dir, "u8.npy", &arr1(&[255u8, 0]));
        write_npy(&dir, "bool.npy", &arr1(&[true, false, true]));
        let fortran =
            Array2::from_shape_vec((2, 3).f(), vec![1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]).expect("shape");
        write_npy(&dir, "fortran.npy", &fortran);
        let loader = FileLoader::new(&dir);
        assert_eq!(ok(&loader, &npy("f32.npy")), floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(ok(&loader, &npy("f64.npy")), floats(&[2], &[0.5, -2.0]));
        assert_eq!(ok(&loader, &npy("i32.npy")), ints(&[2], &[1, -7]));
        assert_eq!(ok(&loader, &npy("i64.npy")), ints(&[2, 2], &[0, 1, 2, 3]));
        assert_eq!(ok(&loader, &npy("u8.npy")), ints(&[2], &[255, 0]));
        assert_eq!(ok(&loader, &npy("bool.npy")), ints(&[3], &[1, 0, 1]));
        assert_eq!(
            ok(&loader, &npy("fortran.npy")),
            floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            "Fortran order is read in row-major order"
        );
        let scalar = raw_npy("<f4", "()", &2.5f32.to_le_bytes());
        std::fs::write(dir.join("scalar.npy"), scalar).expect("write");
        assert_eq!(ok(&loader, &npy("scalar.npy")), floats(&[], &[2.5]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_resolve_against_the_base_unless_absolute() {
        let dir = temp("paths");
        std::fs::create_dir_all(dir.join("sub")).expect("sub dir");
        write_npy(&dir.join("sub"), "m.npy", &arr1(&[1.0f32]));
        let model = dir.join("model.nn");
        let loader = FileLoader::for_model(&model);
        assert_eq!(ok(&loader, &npy("sub/m.npy")), floats(&[1], &[1.0]));
        let absolute = dir.join("sub/m.npy").display().to_string();
        assert_eq!(ok(&FileLoader::new("/nonexistent"), &npy(&absolute)), floats(&[1], &[1.0]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_named_as_written_and_as_resolved() {
        let e = err(&FileLoader::new("models"), &npy("mask.npy"));
        assert_eq!(e, "cannot read `mask.npy` (models/mask.npy): No such file or directory");
        let e = err(&FileLoader::for_model(Path::new("model.nn")), &npy("mask.npy"));
        assert_eq!(e, "cannot read `mask.npy`: No such file or directory", "the same path is shown once");
        let e = err(&FileLoader::new("models"), &csv("s.csv", None));
        assert_eq!(e, "cannot read `s.csv` (models/s.csv): No such file or directory");
    }

    #[test]
    fn npz_arrays_by_key() {
        let dir = temp("npz");
        let file = std::fs::File::create(dir.join("mesh.npz")).expect("create");
        let mut writer = NpzWriter::new(file);
        writer.add_array("edges", &arr2(&[[0i64, 1], [1, 2], [2, 0]])).expect("edges");
        writer.add_array("coords", &arr1(&[0.0f32, 1.0, 2.0])).expect("coords");
        writer.add_array("big", &arr1(&[1i64, 3_000_000_000])).expect("big");
        writer.finish().expect("finish");
        let loader = FileLoader::new(&dir);
        assert_eq!(ok(&loader, &npz("mesh.npz", "edges")), ints(&[3, 2], &[0, 1, 1, 2, 2, 0]));
        assert_eq!(ok(&loader, &npz("mesh.npz", "coords")), floats(&[3], &[0.0, 1.0, 2.0]));
        let resolved = dir.join("mesh.npz").display().to_string();
        assert_eq!(
            err(&loader, &npz("mesh.npz", "edge")),
            format!(
                "`mesh.npz` ({resolved}) has no array `edge` (did you mean `edges`?); its arrays are \
                 `edges`, `coords`, `big`"
            )
        );
        assert_eq!(
            err(&loader, &npz("mesh.npz", "big")),
            format!(
                "cannot load array `big` of `mesh.npz` ({resolved}): i64 value 3000000000 at index [1] is \
                 outside the i32 range"
            )
        );
        std::fs::write(dir.join("bad.npz"), b"not a zip archive").expect("write");
        let e = err(&loader, &npz("bad.npz", "x"));
        assert!(e.starts_with("cannot load `bad.npz` (") && e.contains("not a valid .npz archive"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsupported_dtypes_are_named_as_numpy_names_them() {
        let dir = temp("dtype");
        std::fs::write(dir.join("x.npy"), raw_npy("<c16", "(1,)", &[0; 16])).expect("write");
        std::fs::write(dir.join("s.npy"), raw_npy("<U3", "(1,)", &[0; 12])).expect("write");
        std::fs::write(dir.join("h.npy"), raw_npy("<f2", "(1,)", &[0; 2])).expect("write");
        let loader = FileLoader::for_model(&dir.join("m.nn"));
        let resolved = dir.join("x.npy").display().to_string();
        assert_eq!(
            err(&loader, &npy("x.npy")),
            format!(
                "`x.npy` ({resolved}) holds complex128 values; a constant must be numeric (f32, f64, \
                 signed or unsigned integers, bool)"
            )
        );
        assert!(err(&loader, &npy("s.npy")).contains("holds string (str) values"));
        assert!(err(&loader, &npy("h.npy")).contains("holds float16 values"));
        assert_eq!(numpy_dtype("'|O'"), "object (Python object)");
        assert_eq!(numpy_dtype("'<M8[ns]'"), "datetime64");
        assert_eq!(numpy_dtype("[('a', '<f4')]"), "structured (record)");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_and_truncated_files_are_refused() {
        let dir = temp("corrupt");
        std::fs::write(dir.join("junk.npy"), b"hello, world").expect("write");
        let mut truncated = raw_npy("<f4", "(4,)", &[0; 16]);
        truncated.truncate(truncated.len() - 5);
        std::fs::write(dir.join("short.npy"), truncated).expect("write");
        let loader = FileLoader::new(&dir);
        let e = err(&loader, &npy("junk.npy"));
        assert!(e.starts_with("cannot load `junk.npy` (") && e.contains("not a valid .npy array"), "{e}");
        let e = err(&loader, &npy("short.npy"));
        assert!(e.starts_with("cannot load `short.npy` (") && e.ends_with("truncated"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nan_and_infinity_are_data_errors_at_their_index() {
        let dir = temp("nan");
        write_npy(&dir, "nan.npy", &arr2(&[[0.0f32, 1.0], [f32::NAN, 2.0]]));
        write_npy(&dir, "inf.npy", &arr1(&[0.0f64, f64::INFINITY]));
        write_npy(&dir, "huge.npy", &arr1(&[1e300f64]));
        let loader = FileLoader::new(&dir);
        let resolved = |f: &str| dir.join(f).display().to_string();
        assert_eq!(
            err(&loader, &npy("nan.npy")),
            format!(
                "`nan.npy` ({}) holds NaN at index [1, 0]; a constant's values must be finite",
                resolved("nan.npy")
            )
        );
        assert_eq!(
            err(&loader, &npy("inf.npy")),
            format!(
                "`inf.npy` ({}) holds an infinite value at index [1]; a constant's values must be finite",
                resolved("inf.npy")
            )
        );
        assert!(err(&loader, &npy("huge.npy")).contains("outside the f32 range"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn csv_files_whole_or_by_column() {
        let dir = temp("csv");
        std::fs::write(dir.join("stations.csv"), "lat, lon\n40.0, -105.3\n\n-33.9,151.2\n").expect("write");
        std::fs::write(dir.join("plain.csv"), "1,2,3\n4,5,6\n").expect("write");
        std::fs::write(dir.join("mixed.csv"), "a,b\n1,2.5\n3,4\n").expect("write");
        std::fs::write(dir.join("names.csv"), "id,name\n1,Boulder\n").expect("write");
        std::fs::write(dir.join("gap.csv"), "a,b\n1,2\n3,\n").expect("write");
        std::fs::write(dir.join("nan.csv"), "a\n1\nnan\n").expect("write");
        std::fs::write(dir.join("header.csv"), "a,b\n").expect("write");
        std::fs::write(dir.join("ragged.csv"), "a,b\n1,2\n3\n").expect("write");
        let loader = FileLoader::new(&dir);
        let resolved = |f: &str| dir.join(f).display().to_string();
        assert_eq!(ok(&loader, &csv("stations.csv", None)), floats(&[2, 2], &[40.0, -105.3, -33.9, 151.2]));
        assert_eq!(ok(&loader, &csv("stations.csv", Some("lon"))), floats(&[2], &[-105.3, 151.2]));
        assert_eq!(
            ok(&loader, &csv("plain.csv", None)),
            ints(&[2, 3], &[1, 2, 3, 4, 5, 6]),
            "a first line of numbers is data; integer literals are i32"
        );
        assert_eq!(ok(&loader, &csv("mixed.csv", None)), floats(&[2, 2], &[1.0, 2.5, 3.0, 4.0]));
        assert_eq!(ok(&loader, &csv("mixed.csv", Some("a"))), ints(&[2], &[1, 3]));
        assert_eq!(
            err(&loader, &csv("stations.csv", Some("lat2"))),
            format!(
                "`stations.csv` ({}) has no column `lat2` (did you mean `lat`?); its columns are `lat`, `lon`",
                resolved("stations.csv")
            )
        );
        assert_eq!(
            err(&loader, &csv("plain.csv", Some("a"))),
            format!(
                "`plain.csv` ({}) has no header row (its first line holds numbers), so it has no column `a`",
                resolved("plain.csv")
            )
        );
        assert_eq!(
            err(&loader, &csv("names.csv", None)),
            format!(
                "cannot load `names.csv` ({}): line 2, column `name` holds `Boulder`, not a number",
                resolved("names.csv")
            )
        );
        assert_eq!(ok(&loader, &csv("names.csv", Some("id"))), ints(&[1], &[1]));
        assert_eq!(
            err(&loader, &csv("gap.csv", None)),
            format!(
                "`gap.csv` ({}) has an empty cell at line 3, column `b`; a constant's values must be finite",
                resolved("gap.csv")
            )
        );
        assert_eq!(
            err(&loader, &csv("nan.csv", Some("a"))),
            format!(
                "`nan.csv` ({}) holds NaN at line 3, column `a`; a constant's values must be finite",
                resolved("nan.csv")
            )
        );
        assert_eq!(
            err(&loader, &csv("header.csv", None)),
            format!("`header.csv` ({}) has no data rows (only a header)", resolved("header.csv"))
        );
        let e = err(&loader, &csv("ragged.csv", None));
        assert!(e.starts_with("cannot load `ragged.csv` (") && e.contains("line 3: 1 fields"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dataset_fields_are_stored_arrays_or_csv_columns() {
        let loader = FileLoader::new("");
        let mask = ok(&loader, &dataset("landsea_etopo60", "landsea"));
        assert_eq!(
            (mask.shape.as_slice(), mask.data.dtype()),
            (&[180, 360][..], nnc_compiler::ir::DType::I32)
        );
        let lat = ok(&loader, &dataset("landsea_etopo60", "lat"));
        assert_eq!(lat.shape, [180]);
        let sepal = ok(&loader, &dataset("iris", "sepal_length_cm"));
        assert_eq!((sepal.shape.as_slice(), sepal.data.dtype()), (&[150][..], nnc_compiler::ir::DType::F32));
        let species = ok(&loader, &dataset("iris", "species"));
        assert_eq!(
            (species.shape.as_slice(), species.data.dtype()),
            (&[150][..], nnc_compiler::ir::DType::I32)
        );
        assert_eq!(
            err(&loader, &dataset("landsea_etopo60", "mask")),
            "data set `landsea_etopo60` has no field `mask`; its fields are `elevation_m`, `landsea`, `lat`"
        );
        let e = err(&loader, &dataset("landsea", "mask"));
        assert!(e.starts_with("there is no data set `landsea`; the data sets are `digits`,"), "{e}");
        let e = err(&loader, &dataset("iris", "sepal_lenght_cm"));
        assert!(e.contains("no field `sepal_lenght_cm` (did you mean `sepal_length_cm`?)"), "{e}");
        let e = err(&loader, &dataset("pacific_sst_ndjfm", "sst_anom"));
        assert!(
            e.starts_with("`dataset(\"pacific_sst_ndjfm\", field: \"sst_anom\")` holds NaN at index [0, "),
            "{e}"
        );
    }

    #[test]
    fn every_stored_array_of_the_catalogue_loads_or_is_refused_cleanly() {
        let loader = FileLoader::new("");
        for set in datasets::DATASETS {
            assert!(crate::data::datasets::embedded_file(set.name).is_some(), "{} has no file", set.name);
            for array in set.arrays.iter().filter(|a| a.dtype != "csv") {
                match loader.load(&dataset(set.name, array.name)) {
                    Ok(l) => assert_eq!(l.shape, array.shape, "{}.{}", set.name, array.name),
                    Err(e) => assert!(e.contains("NaN"), "{}.{}: {e}", set.name, array.name),
                }
            }
        }
    }

    #[test]
    fn unflatten_is_row_major() {
        assert_eq!(unflatten(5, &[2, 3]), [1, 2]);
        assert_eq!(unflatten(0, &[]), Vec::<usize>::new());
        assert_eq!(unflatten(7, &[2, 2, 2]), [1, 1, 1]);
    }
}
