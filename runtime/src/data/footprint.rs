//! The memory a data source needs once loaded, estimated from file sizes
//! and headers before anything is read, so that a data set too large for
//! the machine is refused with the figures (bytes needed against bytes
//! available) instead of ending in an allocation failure or the kernel's
//! out-of-memory killer half-way through loading.
//!
//! The estimate is a lower bound, never an over-estimate that would refuse
//! data that fits: every file source is read whole into memory and then
//! decoded into f32 (or i32) arrays alongside, so it needs its file's bytes
//! plus 4 bytes per decoded element; generated data needs 4 bytes per value;
//! a window cuts copies of the steps it covers.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use nnc_compiler::config::DataSource;

use super::synthetic::generated_values;
use super::{files, resolve};
use crate::exec::memory;
use crate::io::error::io_message;
use crate::Error;

/// Refuses `source` when the machine cannot hold it; the message names the
/// bytes needed and available.
pub(crate) fn check(source: &DataSource, base: &Path, origin: &str) -> Result<(), Error> {
    let needed = bytes(source, base)?;
    let hint = "the data is read whole into memory, so fewer examples or fewer variables are needed";
    memory::check_fits_or(needed, "loading the data", hint).map_err(|m| Error::new(Path::new(origin), m))
}

/// The bytes `source` needs once loaded (see the module documentation).
pub(crate) fn bytes(source: &DataSource, base: &Path) -> Result<u64, Error> {
    Ok(match source {
        DataSource::Csv { path, .. } => {
            // The text, and the cells split out of it.
            file_size(&resolve(base, path))?.saturating_mul(2)
        }
        DataSource::Npy { x, y } => npy(&resolve(base, x))?.saturating_add(npy(&resolve(base, y))?),
        DataSource::Npz { path, .. } => npz(&resolve(base, path))?,
        DataSource::Netcdf { path, .. } => file_size(&resolve(base, path))?,
        DataSource::Synthetic { generator } => generated_values(generator).saturating_mul(4),
        // The shipped data sets are small and read from nnc's own files.
        DataSource::Dataset { .. } => 0,
        DataSource::Distort { source, .. } => bytes(source, base)?.saturating_mul(2),
        DataSource::Window { source, window } => {
            // Each window copies `in + out` steps, one window per `stride`.
            let inner = bytes(source, base)?;
            let span = (window.input + window.output) as u64;
            inner.saturating_add(inner.saturating_mul(span) / window.stride.max(1) as u64)
        }
    })
}

fn file_size(path: &Path) -> Result<u64, Error> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::new(path, format!("cannot read: {}", io_message(&e))))
}

/// A `.npy` file: its bytes and its elements decoded to 4 bytes each (from
/// its header; a file whose header cannot be read counts its bytes only,
/// and the reader reports what is wrong with it).
fn npy(path: &Path) -> Result<u64, Error> {
    let size = file_size(path)?;
    let mut head = Vec::with_capacity(4096);
    File::open(path)
        .and_then(|f| f.take(65_536).read_to_end(&mut head))
        .map_err(|e| Error::new(path, format!("cannot read: {}", io_message(&e))))?;
    let elements = files::npy_header(&head)
        .map_or(0, |(shape, _)| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)));
    Ok(size.saturating_add(elements.saturating_mul(4)))
}

/// An `.npz` archive: its bytes and its entries' uncompressed bytes (from
/// the archive's directory; an unreadable archive counts its bytes only).
fn npz(path: &Path) -> Result<u64, Error> {
    let size = file_size(path)?;
    let entries =
        File::open(path).ok().and_then(|f| zip::ZipArchive::new(f).ok()).map_or(0, |mut archive| {
            (0..archive.len())
                .filter_map(|i| archive.by_index_raw(i).ok().map(|e| e.size()))
                .fold(0u64, u64::saturating_add)
        });
    Ok(size.saturating_add(entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnc_compiler::config::{Generator, Window};

    #[test]
    fn generated_data_counts_its_values() {
        let g = Generator::Advection { n: 1000, size: 32, steps: 3 };
        assert_eq!(generated_values(&g), 1000 * 32 * 32 * 2);
        let huge = Generator::Eddies { n: usize::MAX, size: 1 << 20 };
        assert_eq!(generated_values(&huge), u64::MAX);
        let source = DataSource::Synthetic { generator: g };
        assert_eq!(bytes(&source, Path::new(".")).unwrap(), 4 * 1000 * 32 * 32 * 2);
    }

    #[test]
    fn a_window_counts_the_copies_it_cuts() {
        let inner = DataSource::Synthetic { generator: Generator::Sine { n: 1000, noise: 0.0 } };
        let window = Window { input: 3, output: 1, stride: 2, tile: None };
        let source = DataSource::Window { source: Box::new(inner), window };
        assert_eq!(bytes(&source, Path::new(".")).unwrap(), 8000 + 8000 * 4 / 2);
    }

    #[test]
    fn an_npy_file_counts_its_bytes_and_decoded_elements() {
        let dir = std::env::temp_dir().join(format!("nnc-footprint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let array = ndarray::Array2::<f64>::zeros((10, 3));
        ndarray_npy::write_npy(&path, &array).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(npy(&path).unwrap(), size + 30 * 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
