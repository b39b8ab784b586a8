//! Parameter and gradient files in the safetensors format.
//!
//! safetensors is a header of JSON (`dtype`, `shape`, byte offsets of every
//! tensor, plus string metadata) followed by the raw little-endian data. It
//! is what the PyTorch ecosystem uses for checkpoints that cannot run code
//! when loaded; `safetensors.torch.load_file(path)` reads what [`save`]
//! writes into a `dict` of tensors named as the model's parameters, with
//! PyTorch's layouts, and `metadata["format"] = "pt"`.
//!
//! Files are written atomically: a crash or an error while writing never
//! leaves a half-written file under the target name, and never damages a file
//! that was there before.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

pub use super::error::Error;

/// The tensors and metadata of a safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorFile {
    /// Every tensor, as f32, sorted by name.
    pub tensors: Vec<(String, ArrayD<f32>)>,
    /// The file's `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The tensor called `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The names of all tensors, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }
}

/// Writes `tensors` (as F32) and `metadata` to `path` in the safetensors
/// format, tensors sorted by name. `metadata` gets `format = "pt"` unless it
/// sets `format` itself. The same arguments always give the same bytes.
/// Tensor names must be non-empty, distinct and not `__metadata__`.
///
/// The file is written atomically: to a temporary file in the same
/// directory, flushed to disk, renamed over `path`, and the directory is
/// flushed. On any error the temporary file is removed and a file already at
/// `path` is left as it was.
pub fn save(
    path: &Path,
    tensors: &[(String, ArrayD<f32>)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for (name, _) in tensors {
        if name.is_empty() {
            return Err(Error::new(path, "cannot write a tensor with an empty name"));
        }
        if name == "__metadata__" {
            return Err(Error::new(
                path,
                "cannot write a tensor named `__metadata__` (reserved for metadata)",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::new(path, format!("cannot write two tensors named `{name}`")));
        }
    }
    let mut metadata = metadata.clone();
    metadata.entry("format".to_string()).or_insert_with(|| "pt".to_string());
    let mut sorted: Vec<&(String, ArrayD<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = encode(&sorted, &metadata);
    write_atomically(path, &bytes)
}

/// The safetensors encoding of `tensors` (sorted by name) as F32.
///
/// The header is built here rather than by the `safetensors` crate so that
/// it is deterministic: metadata keys and tensors appear in sorted order, so
/// the same tensors always give the same bytes. The layout is the one the
/// crate writes: an 8-byte little-endian header length, the JSON header
/// padded with spaces to a multiple of 8 bytes, then the tensors' data
/// back to back in header order.
fn encode(tensors: &[&(String, ArrayD<f32>)], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let json = |s: &str| serde_json::Value::from(s).to_string();
    let mut entries = vec![];
    if !metadata.is_empty() {
        let fields: Vec<String> = metadata.iter().map(|(k, v)| format!("{}:{}", json(k), json(v))).collect();
        entries.push(format!("\"__metadata__\":{{{}}}", fields.join(",")));
    }
    let mut offset = 0usize;
    for (name, array) in tensors {
        let shape: Vec<String> = array.shape().iter().map(usize::to_string).collect();
        let end = offset + 4 * array.len();
        entries.push(format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json(name),
            shape.join(",")
        ));
        offset = end;
    }
    let mut header = format!("{{{}}}", entries.join(",")).into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    for (_, array) in tensors {
        bytes.extend(array.iter().flat_map(|x| x.to_le_bytes()));
    }
    bytes
}

/// Distinguishes the temporary files of concurrent saves in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file when dropped, unless it has been renamed.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let file_name =
        path.file_name().ok_or_else(|| Error::new(path, "cannot write: the path does not name a file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temps(&dir, &file_name.to_string_lossy());
    let temp_name = format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut temp = TempFile { path: dir.join(temp_name), armed: false };
    let failure = InjectedFailure::from_env(path);
    if failure == Some(InjectedFailure::ReadOnly) {
        return Err(Error::io(path, "cannot write", &InjectedFailure::ReadOnly.error()));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp.path)
        .map_err(|e| Error::io(path, "cannot write", &e))?;
    temp.armed = true;
    if failure == Some(InjectedFailure::Full) {
        // The device fills up half-way through the temporary file.
        let _ = file.write_all(&bytes[..bytes.len() / 2]);
        return Err(Error::io(path, "cannot write", &InjectedFailure::Full.error()));
    }
    file.write_all(bytes).map_err(|e| Error::io(path, "cannot write", &e))?;
    file.sync_all().map_err(|e| Error::io(path, "cannot write", &e))?;
    drop(file);
    fs::rename(&temp.path, path).map_err(|e| Error::io(path, "cannot write", &e))?;
    temp.armed = false;
    sync_dir(&dir).map_err(|e| Error::io(path, "written, but cannot flush its directory", &e))
}

/// A write failure injected by the environment variable
/// `NNC_TEST_WRITE_FAILURE`, so that the error paths of a full or read-only
/// file system can be tested where no such file system can be mounted:
/// `full` fails every atomic write half-way through its temporary file as
/// a full device does, `read-only` fails it before the temporary file is
/// created as a read-only file system does; `full:PATH` and
/// `read-only:PATH` fail the writes of that file only. Unset (as in normal
/// use), writes are not touched.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum InjectedFailure {
    Full,
    ReadOnly,
}

impl InjectedFailure {
    fn from_env(path: &Path) -> Option<InjectedFailure> {
        let value = std::env::var("NNC_TEST_WRITE_FAILURE").ok()?;
        let (kind, only) = match value.split_once(':') {
            Some((kind, file)) => (kind, Some(Path::new(file))),
            None => (value.as_str(), None),
        };
        if only.is_some_and(|file| file != path) {
            return None;
        }
        match kind {
            "full" => Some(InjectedFailure::Full),
            "read-only" => Some(InjectedFailure::ReadOnly),
            _ => None,
        }
    }

    /// The error the operating system gives for this failure.
    fn error(self) -> std::io::Error {
        use std::io::{Error, ErrorKind};
        match self {
            InjectedFailure::Full => Error::new(ErrorKind::StorageFull, "No space left on device"),
            InjectedFailure::ReadOnly => Error::new(ErrorKind::ReadOnlyFilesystem, "Read-only file system"),
        }
    }
}

/// Removes the temporary files `.{file_name}.tmp-PID-N` in `dir` left by
/// writes of `file_name` whose process no longer runs (killed in the middle
/// of a write: its temporary file is never renamed nor removed). Files of
/// running processes, this one included, are left alone; where it cannot
/// be told whether a process runs (no `/proc`), nothing is removed.
fn remove_stale_temps(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && process_ended(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` has ended, as `/proc` tells; false where it cannot
/// be told.
fn process_ended(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Flushes a directory's entries (the rename) to disk.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files on this platform; the rename is as
/// durable as the file system makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Reads a safetensors file. F32 tensors are read as they are; F64, F16 and
/// BF16 tensors are converted to f32 (F64 values outside the f32 range are an
/// error). Missing, truncated and corrupt files, and tensors of other
/// dtypes, are errors naming the file and the problem.
pub fn load(path: &Path) -> Result<TensorFile, Error> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::new(path, format_error(&e)))?;
    let metadata: BTreeMap<String, String> =
        header.metadata().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    let file = SafeTensors::deserialize(&bytes).map_err(|e| Error::new(path, format_error(&e)))?;
    let mut tensors = vec![];
    for (name, view) in file.tensors() {
        let values = to_f32(view.dtype(), view.data())
            .map_err(|cause| Error::new(path, format!("tensor `{name}`: {cause}")))?;
        let array = ArrayD::from_shape_vec(IxDyn(view.shape()), values).map_err(|e| {
            Error::new(path, format!("tensor `{name}`: data does not fill shape {:?}: {e}", view.shape()))
        })?;
        tensors.push((name, array));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(TensorFile { tensors, metadata })
}

/// What is wrong with a file the safetensors reader rejected, in words.
fn format_error(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooSmall => {
            "not a safetensors file: shorter than its 8-byte header length".to_string()
        }
        SafeTensorError::InvalidHeaderLength => {
            "truncated or not a safetensors file: the header is longer than the file".to_string()
        }
        SafeTensorError::HeaderTooLarge => {
            "not a safetensors file: the header length is implausibly large".to_string()
        }
        SafeTensorError::InvalidHeader(_) => "corrupt safetensors header: not UTF-8 text".to_string(),
        SafeTensorError::InvalidHeaderDeserialization(err) => {
            format!("corrupt safetensors header: {err}")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "truncated or corrupt: the tensor data does not match the file size".to_string()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("corrupt safetensors header: invalid data offsets for tensor `{name}`")
        }
        SafeTensorError::TensorInvalidInfo | SafeTensorError::ValidationOverflow => {
            "corrupt safetensors header: a tensor's shape, dtype and offsets disagree".to_string()
        }
        other => format!("not a valid safetensors file: {other}"),
    }
}

/// Little-endian elements of `dtype` as f32.
fn to_f32(dtype: Dtype, data: &[u8]) -> Result<Vec<f32>, String> {
    match dtype {
        Dtype::F32 => {
            Ok(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| {
                let v = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                let x = v as f32;
                if x.is_infinite() && v.is_finite() {
                    Err(format!("F64 value {v} is outside the f32 range"))
                } else {
                    Ok(x)
                }
            })
            .collect(),
        Dtype::F16 => {
            Ok(data.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect())
        }
        Dtype::BF16 => Ok(data
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect()),
        other => Err(format!("dtype {other:?} is not supported (only F32, F64, F16 and BF16 tensors)")),
    }
}

/// IEEE 754 half precision to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac · 2^-24, normalised for f32.
            let shift = frac.leading_zeros() - 21; // bring the leading 1 to bit 10
            let frac = (frac << shift) & 0x3ff;
            let exp = 127 - 15 + 1 - shift;
            sign | (exp << 23) | (frac << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_removes_the_temporary_files_of_ended_processes_only() {
        let dir = std::env::temp_dir().join(format!("nnc-stale-temps-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A process that has ended (pid_max is at most 2^22 on Linux), this
        // one (a concurrent save), another file's, and an unrelated name.
        let ended = dir.join(".m.safetensors.tmp-4294967295-3");
        let ours = dir.join(format!(".m.safetensors.tmp-{}-9", std::process::id()));
        let other = dir.join(".n.safetensors.tmp-4294967295-0");
        let unrelated = dir.join(".m.safetensors.tmp-x");
        for p in [&ended, &ours, &other, &unrelated] {
            fs::write(p, b"partial").unwrap();
        }
        write_atomically(&dir.join("m.safetensors"), b"whole").unwrap();
        assert_eq!(fs::read(dir.join("m.safetensors")).unwrap(), b"whole");
        assert_eq!(
            !ended.exists(),
            cfg!(target_os = "linux"),
            "the ended process's file is removed on Linux"
        );
        assert!(ours.exists() && other.exists() && unrelated.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn half_precision_values() {
        let cases: [(u16, f32); 9] = [
            (0x0000, 0.0),
            (0x3c00, 1.0),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8), // smallest subnormal, 2^-24
            (0x03ff, 6.097_555e-5),   // largest subnormal
            (0x0400, 6.103_515_6e-5), // smallest normal, 2^-14
            (0xfc00, f32::NEG_INFINITY),
        ];
        for (bits, want) in cases {
            assert_eq!(f16_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn bfloat16_and_f64_values() {
        assert_eq!(to_f32(Dtype::BF16, &[0x80, 0x3f]), Ok(vec![1.0]));
        assert_eq!(to_f32(Dtype::F64, &2.5f64.to_le_bytes()), Ok(vec![2.5]));
        assert!(to_f32(Dtype::F64, &1e300f64.to_le_bytes()).is_err());
        assert!(to_f32(Dtype::I64, &[0; 8]).unwrap_err().contains("I64"));
    }
}
