//! A loader of `.npy` files for the compiler's own tests of the model zoo
//! (the compiler reads no files; the runtime's `FileLoader` is the real one).

use super::{ConstData, ConstSource, Loaded, Loader};

/// The `.npy` files (little-endian f4 or i4) of a directory, for the model
/// zoo's constants: the compiler reads no files, its tests read these.
pub struct NpyFiles(pub std::path::PathBuf);

impl Loader for NpyFiles {
    fn load(&self, source: &ConstSource) -> Result<Loaded, String> {
        let ConstSource::Npy { path } = source else {
            return Err(format!("{source}: not an npy file"));
        };
        let bytes = std::fs::read(self.0.join(path)).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let (len, start) = match bytes.get(6) {
            Some(1) => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        };
        let header = std::str::from_utf8(&bytes[start..start + len]).map_err(|e| e.to_string())?;
        let shape_text =
            header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).ok_or("no shape")?;
        let shape: Vec<usize> = shape_text.split(',').filter_map(|d| d.trim().parse().ok()).collect();
        let words = bytes[start + len..].chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
        let data = if header.contains("'<f4'") {
            ConstData::F32(words.map(f32::from_le_bytes).collect())
        } else if header.contains("'<i4'") {
            ConstData::I32(words.map(i32::from_le_bytes).collect())
        } else {
            return Err(format!("`{path}`: not f4 or i4"));
        };
        Ok(Loaded { shape, data })
    }
}
