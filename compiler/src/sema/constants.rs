//! Tensor constants: values fixed when the program is compiled.
//!
//! A constant is a graph input of kind [`InputKind::Const`](crate::ir::InputKind)
//! whose value travels with the [`Module`](super::Module): `const NAME: TYPE
//! = npy(PATH)` declarations (also `npz`, `csv`, `netcdf` and `dataset`
//! sources, read through a [`Loader`]), and tensors the
//! built-ins compute at compile time (`arange`, `linspace`, `grid_graph`,
//! `knn_graph`, ...). Executables are fed these values by name, like data;
//! they are never trained. Each constant's SHA-256 goes into checkpoints, so
//! that a run resumed or evaluated with a different constant is refused.

use std::fmt;

use crate::ir::{DType, Type};

/// The elements of a constant, row-major.
#[derive(Clone, PartialEq)]
pub enum ConstData {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl ConstData {
    pub fn len(&self) -> usize {
        match self {
            ConstData::F32(v) => v.len(),
            ConstData::I32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match self {
            ConstData::F32(_) => DType::F32,
            ConstData::I32(_) => DType::I32,
        }
    }

    /// The elements as f64 (for the reference interpreter and tests).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            ConstData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            ConstData::I32(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The little-endian bytes of the elements (what the hash covers).
    pub fn le_bytes(&self) -> Vec<u8> {
        match self {
            ConstData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ConstData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

impl fmt::Debug for ConstData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}[{} elements]", self.dtype(), self.len())
    }
}

/// One constant of a module.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// The name of its graph input (`mask`, or `arange_1` for a built-in's).
    pub name: String,
    /// Its type; every dimension is known.
    pub ty: Type,
    pub data: ConstData,
    /// Where it came from, as written (`npy("mask.npy")`, `arange(10)`), for
    /// messages and `nnc summary`.
    pub origin: String,
    /// Hex SHA-256 of the dtype, the shape and the elements' bytes.
    pub sha256: String,
}

impl Constant {
    /// A constant, hashed.
    pub fn new(name: impl Into<String>, ty: Type, data: ConstData, origin: impl Into<String>) -> Constant {
        let sha256 = hash(&ty, &data);
        Constant { name: name.into(), ty, data, origin: origin.into(), sha256 }
    }
}

fn hash(ty: &Type, data: &ConstData) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(ty.to_string().as_bytes());
    h.update(data.le_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a `const` declaration's value comes from, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstSource {
    /// `npy(PATH)`.
    Npy { path: String },
    /// `npz(PATH, KEY)`.
    Npz { path: String, key: String },
    /// `csv(PATH)`: every value of the file, rows in order; `csv(PATH,
    /// column: NAME)` one column.
    Csv { path: String, column: Option<String> },
    /// `dataset(NAME, field: FIELD)`: an array of a shipped data set.
    Dataset { name: String, field: String },
    /// `netcdf(PATH, var: NAME)`: a variable of a NetCDF file, decoded
    /// (unpacked, its missing values NaN).
    Netcdf { path: String, var: String },
}

impl fmt::Display for ConstSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstSource::Npy { path } => write!(f, "npy({path:?})"),
            ConstSource::Npz { path, key } => write!(f, "npz({path:?}, {key:?})"),
            ConstSource::Csv { path, column: None } => write!(f, "csv({path:?})"),
            ConstSource::Csv { path, column: Some(c) } => write!(f, "csv({path:?}, column: {c:?})"),
            ConstSource::Dataset { name, field } => write!(f, "dataset({name:?}, field: {field:?})"),
            ConstSource::Netcdf { path, var } => write!(f, "netcdf({path:?}, var: {var:?})"),
        }
    }
}

/// An array read by a [`Loader`]: its shape and elements.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub shape: Vec<usize>,
    pub data: ConstData,
}

/// Reads the value of a `const` declaration. The compiler reads no files
/// itself: the command-line tool and the tests pass a loader (the runtime's
/// reads npy, npz, csv and NetCDF files relative to the model file, and data
/// sets).
pub trait Loader {
    /// The array `source` names; an error message names the file and says
    /// what is wrong with it.
    fn load(&self, source: &ConstSource) -> Result<Loaded, String>;
}

/// The loader of [`crate::pipeline::compile`]: a program that reads a
/// constant from a file needs a real loader, and says so.
pub struct NoFiles;

impl Loader for NoFiles {
    fn load(&self, source: &ConstSource) -> Result<Loaded, String> {
        Err(format!("cannot read {source}: this compilation has no file access (compile with a loader)"))
    }
}
