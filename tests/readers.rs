//! The file readers on damaged input: `.npy`, `.npz`, CSV, safetensors,
//! checkpoints and NetCDF-3, each read by the functions `nnc` uses
//! (constants of a model, batches and prediction inputs, tensor files,
//! training checkpoints, the variables of a `netcdf(...)` source).
//!
//! Seeds are small real files of each format, written by the same writers
//! as real ones (`ndarray-npy`, `Checkpoint::save`, the `netcdf3` crate's
//! writer, `ncgen`) or shipped with nnc (the iris and Nile CSV files). Each is mutated by a seeded generator:
//! truncation, bit flips, bytes overwritten with extreme values, inserted
//! and deleted runs, and header edits that claim far more data than the
//! file holds (an `.npy` shape of 10¹² elements, a safetensors header
//! length of 2⁶³, zip entry sizes of 4 GiB, NetCDF dimension lengths and
//! counts of 2³² − 1). Every read must return (an
//! error or a value), never panic, and never allocate a block larger than
//! the file justifies: [`limit`] bytes for a file of `len` bytes. A
//! counting allocator records the largest single allocation of the reading
//! thread; a request beyond [`HARD_LIMIT`] is refused on the spot (the
//! process then aborts, naming the case).
//!
//! `NNC_FUZZ_CASES` sets the mutations per seed file (default 150);
//! `NNC_FUZZ_SEED` runs one case.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use nnc_compiler::sema::{ConstSource, Loader};
use nnc_runtime::io::tensor_file;
use nnc_runtime::train::checkpoint::{Checkpoint, Fingerprint};
use nnc_runtime::train::normalize::Stats;
use nnc_runtime::FileLoader;
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

// ------------------------------------------------------------ the allocator

/// Requests beyond this while a read is watched are refused at once.
const HARD_LIMIT: usize = 256 << 20;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are watched, and the largest seen.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The case being read, for the message of a refused allocation.
static CASE: AtomicU64 = AtomicU64::new(0);

impl Counting {
    fn record(size: usize) -> bool {
        let watched = WATCHED.try_with(Cell::get).unwrap_or(false);
        if !watched {
            return true;
        }
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        if size > HARD_LIMIT {
            let _ = WATCHED.try_with(|w| w.set(false));
            let _ = writeln!(
                std::io::stderr(),
                "case NNC_FUZZ_SEED={} asked for {size} bytes in one allocation",
                CASE.load(Ordering::Relaxed)
            );
            return false;
        }
        true
    }
}

// SAFETY: every call forwards to the system allocator with the caller's
// layout and pointer unchanged; `record` only reads and writes
// thread-local cells (const-initialised, so it allocates nothing) and
// refuses a request by returning null, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Counting::record(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Counting::record(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Counting::record(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` with this thread's allocations watched: its result, or its
/// panic's message, and the largest single allocation it made.
fn watched<T>(case: u64, f: impl FnOnce() -> T) -> (Result<T, String>, usize) {
    CASE.store(case, Ordering::Relaxed);
    LARGEST.with(|l| l.set(0));
    WATCHED.with(|w| w.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    WATCHED.with(|w| w.set(false));
    let largest = LARGEST.with(Cell::get);
    let result = result.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    (result, largest)
}

/// The largest single allocation a read of a `len`-byte file may make:
/// a few times the file (its bytes, their decoding into values of up to 8
/// bytes, a decompressed archive entry) plus room for small fixed tables.
fn limit(len: usize) -> usize {
    64 * len + (256 << 10)
}

// ------------------------------------------------------------ seed files

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-readers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn npy_bytes<A: WriteNpyExt>(array: &A) -> Vec<u8> {
    let mut out = vec![];
    array.write_npy(&mut out).expect("write npy");
    out
}

fn npz_bytes(compressed: bool) -> Vec<u8> {
    let mut out = std::io::Cursor::new(vec![]);
    {
        let mut w = if compressed { NpzWriter::new_compressed(&mut out) } else { NpzWriter::new(&mut out) };
        let x = ArrayD::from_shape_vec(IxDyn(&[4, 3]), (0..12).map(|i| i as f32 * 0.5).collect()).unwrap();
        let y = ArrayD::from_shape_vec(IxDyn(&[4]), vec![1i64, 0, 2, 1]).unwrap();
        w.add_array("x", &x).expect("x");
        w.add_array("y", &y).expect("y");
        w.finish().expect("finish");
    }
    out.into_inner()
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        model: "m".into(),
        model_sha256: "ab".repeat(32),
        written_by: None,
        fingerprint: Some(Fingerprint {
            graph: "cd".repeat(32),
            keys: vec![("batch".into(), "8".into())],
            constants: vec![],
        }),
        tensors: vec![
            (
                "d.weight".into(),
                ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.5, -1.0, 2.0, 0.25, 3.0, -0.75]).unwrap(),
            ),
            ("d.bias".into(), ArrayD::from_elem(IxDyn(&[2]), 0.1)),
            ("optim.step".into(), ArrayD::from_elem(IxDyn(&[]), 4.0)),
        ],
        normalize: vec![("x".into(), Stats { mean: vec![0.5, 1.5, 2.0], std: vec![2.0, 1.0, 0.5], axis: 1 })],
        best: vec![],
        epoch: 2,
        step: 8,
        seed: 3,
        threads: 2,
        lr: 1e-3,
        best_val_loss: None,
        best_epoch: None,
        bad_epochs: 0,
        finished: false,
        stopped_early: false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Npy,
    Npz,
    Csv,
    Safetensors,
    Checkpoint,
    Netcdf,
}

/// The seed files: (format, name, bytes).
fn seeds(dir: &Path) -> Vec<(Format, &'static str, Vec<u8>)> {
    let f32s = ArrayD::from_shape_vec(IxDyn(&[3, 4]), (0..12).map(|i| i as f32 - 5.5).collect::<Vec<f32>>())
        .unwrap();
    let i64s = ArrayD::from_shape_vec(IxDyn(&[5]), vec![3i64, -1, 4, 1, 5]).unwrap();
    let bools = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![true, false, false, true]).unwrap();
    let f64s =
        ndarray::Array2::<f64>::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64).reversed_axes().into_dyn();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let safetensors = dir.join("seed.safetensors");
    let meta: BTreeMap<String, String> = [("note".to_string(), "seed".to_string())].into();
    tensor_file::save(
        &safetensors,
        &[
            ("a".into(), ArrayD::from_elem(IxDyn(&[2, 3]), 1.5)),
            ("b".into(), ArrayD::from_elem(IxDyn(&[4]), -2.0)),
        ],
        &meta,
    )
    .expect("safetensors");
    let ckpt = dir.join("seed.ckpt.safetensors");
    checkpoint().save(&ckpt).expect("checkpoint");
    vec![
        (Format::Npy, "f32 [3, 4]", npy_bytes(&f32s)),
        (Format::Npy, "i64 [5]", npy_bytes(&i64s)),
        (Format::Npy, "bool [2, 2]", npy_bytes(&bools)),
        (Format::Npy, "f64 Fortran order", npy_bytes(&f64s)),
        (Format::Npz, "stored", npz_bytes(false)),
        (Format::Npz, "deflated", npz_bytes(true)),
        (Format::Csv, "small", b"a,b,c\n1,2,3\n4,,6.5\n-1e3,NaN,7\n".to_vec()),
        (Format::Csv, "nile.csv", read("runtime/data/nile/nile.csv")),
        (Format::Csv, "iris.csv", read("runtime/data/iris/iris.csv")),
        (Format::Safetensors, "two tensors", std::fs::read(&safetensors).unwrap()),
        (Format::Checkpoint, "checkpoint", std::fs::read(&ckpt).unwrap()),
        (Format::Netcdf, "classic", netcdf_bytes(dir, netcdf3::Version::Classic)),
        (Format::Netcdf, "64-bit offset", netcdf_bytes(dir, netcdf3::Version::Offset64Bit)),
        (Format::Netcdf, "one_record_variable.nc", read("runtime/tests/fixtures/one_record_variable.nc")),
    ]
}

/// A NetCDF-3 file with what decoding reads: an unlimited dimension (record
/// variables), a packed short variable with `scale_factor`, `add_offset`,
/// `_FillValue` and `valid_range`, a float variable with `missing_value`,
/// and a fixed coordinate variable.
fn netcdf_bytes(dir: &Path, version: netcdf3::Version) -> Vec<u8> {
    use netcdf3::{DataSet, FileWriter};
    let path = dir.join(format!("seed-{version:?}.nc"));
    let mut ds = DataSet::new();
    ds.set_unlimited_dim("time", 3).unwrap();
    ds.add_fixed_dim("lat", 2).unwrap();
    ds.add_var_f32("t2m", &["time", "lat"]).unwrap();
    ds.add_var_attr_f32("t2m", "missing_value", vec![-1.0]).unwrap();
    ds.add_var_attr_string("t2m", "units", "K").unwrap();
    ds.add_var_i16("precip", &["time", "lat"]).unwrap();
    ds.add_var_attr_f32("precip", "scale_factor", vec![0.5]).unwrap();
    ds.add_var_attr_f32("precip", "add_offset", vec![10.0]).unwrap();
    ds.add_var_attr_i16("precip", "_FillValue", vec![-32767]).unwrap();
    ds.add_var_attr_i16("precip", "valid_range", vec![0, 100]).unwrap();
    ds.add_var_f64("lat", &["lat"]).unwrap();
    let mut writer = FileWriter::open(&path).unwrap();
    writer.set_def(&ds, version, 0).unwrap();
    writer.write_var_f32("t2m", &[280.0, -1.0, 281.5, 282.0, 279.0, 283.25]).unwrap();
    writer.write_var_i16("precip", &[1, 2, -32767, 4, 5, 200]).unwrap();
    writer.write_var_f64("lat", &[50.0, 51.0]).unwrap();
    writer.close().unwrap();
    std::fs::read(&path).expect("the NetCDF seed")
}

// ------------------------------------------------------------ mutations

/// Big numbers written over lengths and counts.
const EXTREMES: [u64; 6] = [u64::MAX, 1 << 63, u32::MAX as u64, 1 << 40, 0x7fff_ffff, 0];

fn mutate(rng: &mut TestRng, format: Format, bytes: &[u8]) -> (Vec<u8>, String) {
    let mut b = bytes.to_vec();
    let n = b.len();
    let at = |rng: &mut TestRng, n: usize| if n == 0 { 0 } else { rng.random_range(0..n) };
    match rng.random_range(0..9) {
        0 => {
            let k = at(rng, n);
            b.truncate(k);
            (b, format!("truncated to {k} bytes"))
        }
        1 => {
            let flips = rng.random_range(1..9);
            for _ in 0..flips {
                let i = at(rng, n);
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.random_range(0..8);
                }
            }
            (b, format!("{flips} bits flipped"))
        }
        2 => {
            let i = at(rng, n);
            let v = [0x00, 0xff, 0x7f, 0x80, b'9', b'(', b'"'][rng.random_range(0..7)];
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
            (b, format!("byte {i} set to {v:#x}"))
        }
        3 => {
            // A little-endian extreme over 2, 4 or 8 bytes (a length field).
            let width = [2, 4, 8][rng.random_range(0..3)];
            let v = EXTREMES[rng.random_range(0..EXTREMES.len())];
            let i = at(rng, n.saturating_sub(width));
            for (k, byte) in v.to_le_bytes().iter().take(width).enumerate() {
                if let Some(x) = b.get_mut(i + k) {
                    *x = *byte;
                }
            }
            (b, format!("{width} bytes at {i} set to {v:#x}"))
        }
        4 => {
            let i = at(rng, n);
            let k = rng.random_range(1..32).min(n - i.min(n));
            b.drain(i..i + k);
            (b, format!("{k} bytes deleted at {i}"))
        }
        5 => {
            let i = at(rng, n);
            let k = rng.random_range(1..32);
            let run: Vec<u8> = (0..k).map(|_| rng.random()).collect();
            b.splice(i..i, run);
            (b, format!("{k} random bytes inserted at {i}"))
        }
        6 => {
            // Duplicate a stretch (repeated records, entries, rows).
            let i = at(rng, n);
            let k = rng.random_range(1..64).min(n - i.min(n));
            let run = b[i..i + k].to_vec();
            b.splice(i..i, run);
            (b, format!("{k} bytes at {i} repeated"))
        }
        _ => oversized(rng, format, b),
    }
}

/// Where `what` first occurs in `bytes`.
fn find(bytes: &[u8], what: &[u8]) -> Option<usize> {
    bytes.windows(what.len()).position(|w| w == what)
}

/// A header edit that claims far more data than the file holds.
fn oversized(rng: &mut TestRng, format: Format, mut b: Vec<u8>) -> (Vec<u8>, String) {
    let huge = ["1000000000000", "4294967296", "18446744073709551615", "99999999999999999999", "65536"]
        [rng.random_range(0..5)];
    let replace = |b: &[u8], from: &str, to: &str| -> Option<Vec<u8>> {
        let at = find(b, from.as_bytes())?;
        let mut out = b[..at].to_vec();
        out.extend_from_slice(to.as_bytes());
        out.extend_from_slice(&b[at + from.len()..]);
        Some(out)
    };
    match format {
        Format::Npy | Format::Npz => {
            // The shape tuple of an .npy header (inside a stored .npz entry
            // too), or the zip sizes of an archive.
            if let Some(at) = find(&b, b"'shape': (") {
                let start = at + "'shape': (".len();
                let end = start + find(&b[start..], b")").unwrap_or(0);
                let shape = if rng.random_bool(0.5) { format!("{huge}, {huge}") } else { format!("{huge},") };
                let mut out = b[..start].to_vec();
                out.extend_from_slice(shape.as_bytes());
                out.extend_from_slice(&b[end..]);
                // The header's length follows the edit (version 1: a u16 at
                // byte 8), so that the header still parses.
                if out.starts_with(b"\x93NUMPY\x01") {
                    let len = u16::from_le_bytes([out[8], out[9]]) as usize + shape.len() - (end - start);
                    out[8..10].copy_from_slice(&(len as u16).to_le_bytes());
                }
                return (out, format!("shape set to ({shape})"));
            }
            // Sizes of the first zip local header (offsets 18 and 22).
            if b.len() > 26 && b.starts_with(b"PK\x03\x04") {
                let v = (EXTREMES[rng.random_range(0..4)] as u32).to_le_bytes();
                let off = if rng.random_bool(0.5) { 18 } else { 22 };
                b[off..off + 4].copy_from_slice(&v);
                return (b, format!("zip size at {off} set to {v:?}"));
            }
            (b, "unchanged".into())
        }
        Format::Safetensors | Format::Checkpoint => {
            if rng.random_bool(0.3) && b.len() >= 8 {
                let v = EXTREMES[rng.random_range(0..EXTREMES.len())];
                b[..8].copy_from_slice(&v.to_le_bytes());
                return (b, format!("header length set to {v:#x}"));
            }
            let edits = [
                ("\"shape\":[2,3]", format!("\"shape\":[{huge},{huge}]")),
                ("\"data_offsets\":[0,", format!("\"data_offsets\":[{huge},")),
            ];
            let (from, to) = &edits[rng.random_range(0..edits.len())];
            match replace(&b, from, to) {
                Some(out) => (out, format!("`{from}` → `{to}`")),
                None => (b, "unchanged".into()),
            }
        }
        Format::Netcdf => {
            // A big-endian count or length of the header (dimension
            // lengths, list counts, name lengths, sizes and offsets).
            let header = b.len().min(512);
            let i = rng.random_range(0..header.saturating_sub(4).max(1)) & !3;
            let v = (EXTREMES[rng.random_range(0..EXTREMES.len())] as u32).to_be_bytes();
            if b.len() >= i + 4 {
                b[i..i + 4].copy_from_slice(&v);
            }
            (b, format!("header word at {i} set to {v:?}"))
        }
        Format::Csv => {
            // A cell with a huge number and a very long row.
            let row = format!("{huge},{}\n", "1,".repeat(rng.random_range(1..200)));
            b.extend_from_slice(row.as_bytes());
            (b, "a long row appended".into())
        }
    }
}

// ------------------------------------------------------------ readers

/// Every reader of `format` on the file `path`; each result as text.
fn read_all(format: Format, path: &Path) -> Vec<(&'static str, Result<(), String>)> {
    let loader = FileLoader::new(path.parent().unwrap());
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let constant = |source: ConstSource| loader.load(&source).map(|_| ());
    match format {
        Format::Npy => vec![
            ("const npy", constant(ConstSource::Npy { path: name.clone() })),
            ("npy input", nnc_runtime::io::npz::load_npy(path).map(|_| ()).map_err(|e| e.to_string())),
        ],
        Format::Npz => vec![
            ("const npz", constant(ConstSource::Npz { path: name.clone(), key: "x".into() })),
            ("npz batch", nnc_runtime::io::npz::load_npz(path).map(|_| ()).map_err(|e| e.to_string())),
        ],
        Format::Csv => vec![
            ("const csv", constant(ConstSource::Csv { path: name.clone(), column: None })),
            ("const csv column", constant(ConstSource::Csv { path: name.clone(), column: Some("b".into()) })),
        ],
        Format::Safetensors => {
            vec![("safetensors", tensor_file::load(path).map(|_| ()).map_err(|e| e.to_string()))]
        }
        Format::Checkpoint => {
            vec![("checkpoint", Checkpoint::load(path).map(|_| ()).map_err(|e| e.to_string()))]
        }
        Format::Netcdf => {
            let read = nnc_runtime::data::netcdf::variables(path).map(|vars| {
                // Decoding too: fill values, packing and valid ranges.
                vars.iter().map(|v| v.decoded().len()).sum::<usize>()
            });
            vec![("netcdf", read.map(|_| ()).map_err(|e| e.to_string()))]
        }
    }
}

/// Reads one mutated file; the failures found.
fn check(case: u64, format: Format, what: &str, bytes: &[u8], dir: &Path) -> Vec<String> {
    let ext = match format {
        Format::Npy => "npy",
        Format::Npz => "npz",
        Format::Csv => "csv",
        Format::Safetensors | Format::Checkpoint => "safetensors",
        Format::Netcdf => "nc",
    };
    let path = dir.join(format!("case{case}.{ext}"));
    std::fs::write(&path, bytes).expect("write case");
    let (results, largest) = watched(case, || read_all(format, &path));
    let _ = std::fs::remove_file(&path);
    let mut failures = vec![];
    let label = format!("case NNC_FUZZ_SEED={case} ({format:?}, {what}, {} bytes)", bytes.len());
    match results {
        Err(panic) => failures.push(format!("{label}: panicked: {panic}")),
        Ok(results) => {
            for (reader, r) in results {
                if let Err(e) = r {
                    if e.trim().is_empty() {
                        failures.push(format!("{label}: {reader} failed with an empty message"));
                    }
                }
            }
        }
    }
    if largest > limit(bytes.len()) {
        failures.push(format!(
            "{label}: allocated {largest} bytes at once (a {}-byte file justifies {})",
            bytes.len(),
            limit(bytes.len())
        ));
    }
    failures
}

fn cases_per_seed() -> u64 {
    std::env::var("NNC_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150)
}

/// Case `case` of seed file `index`: its mutated bytes and a description.
fn case(seeds: &[(Format, &'static str, Vec<u8>)], case: u64) -> (Format, String, Vec<u8>) {
    let index = (case % seeds.len() as u64) as usize;
    let (format, name, bytes) = &seeds[index];
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&case.to_le_bytes());
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let (mut mutated, mut what) = mutate(&mut rng, *format, bytes);
    // Now and then a second mutation on top of the first.
    if rng.random_bool(0.3) {
        let (again, also) = mutate(&mut rng, *format, &mutated);
        mutated = again;
        what = format!("{what}, then {also}");
    }
    (*format, format!("{name}: {what}"), mutated)
}

#[test]
fn damaged_files_give_errors_not_panics_or_huge_allocations() {
    let dir = temp_dir();
    let seeds = seeds(&dir);
    // The seeds themselves read cleanly (except the CSV cells the readers
    // refuse, which are errors too).
    for (i, (format, name, bytes)) in seeds.iter().enumerate() {
        let failures = check(i as u64, *format, name, bytes, &dir);
        assert!(failures.is_empty(), "seed file {name}: {failures:?}");
    }
    let cases: Vec<u64> = match std::env::var("NNC_FUZZ_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(c) => vec![c],
        None => (0..cases_per_seed() * seeds.len() as u64).collect(),
    };
    let mut failures = vec![];
    for &c in &cases {
        let (format, what, bytes) = case(&seeds, c);
        failures.extend(check(c, format, &what, &bytes, &dir));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// An `.npy` header that claims 10¹² elements in a file of 100 bytes is
/// refused before anything of that size is allocated, naming the shape.
#[test]
fn an_npy_header_claiming_a_huge_shape_is_refused() {
    let dir = temp_dir().join("huge");
    std::fs::create_dir_all(&dir).unwrap();
    let mut header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }".to_vec();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&[0u8; 16]);
    let path = dir.join("huge.npy");
    std::fs::write(&path, &bytes).unwrap();
    let (result, largest) = watched(0, || nnc_runtime::io::npz::load_npy(&path).map(|_| ()));
    let message = result.expect("no panic").expect_err("refused").to_string();
    assert!(message.contains("[1000000, 1000000]") && message.contains("16 bytes of data"), "{message}");
    assert!(largest < 1 << 16, "allocated {largest} bytes");
    // The same array as the entry of an archive whose checksums are right.
    let npz = dir.join("huge.npz");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&npz).unwrap());
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("x.npy", options).unwrap();
        zip.write_all(&bytes).unwrap();
        zip.finish().unwrap();
    }
    let (result, largest) = watched(0, || nnc_runtime::io::npz::load_npz(&npz).map(|_| ()));
    let message = result.expect("no panic").expect_err("refused").to_string();
    assert!(message.contains("array `x`") && message.contains("[1000000, 1000000]"), "{message}");
    assert!(largest < 1 << 16, "allocated {largest} bytes");
    let loader = FileLoader::new(&dir);
    let (result, largest) = watched(0, || {
        loader.load(&ConstSource::Npz { path: "huge.npz".into(), key: "x".into() }).map(|_| ())
    });
    let message = result.expect("no panic").expect_err("refused");
    assert!(message.contains("[1000000, 1000000]"), "{message}");
    assert!(largest < 1 << 16, "allocated {largest} bytes");
    // A version-2 header whose length field says 4 GiB.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&header);
    std::fs::write(&path, &bytes).unwrap();
    let (result, largest) = watched(0, || nnc_runtime::io::npz::load_npy(&path).map(|_| ()));
    let message = result.expect("no panic").expect_err("refused").to_string();
    assert!(message.contains("4294967295"), "{message}");
    assert!(largest < 1 << 16, "allocated {largest} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
