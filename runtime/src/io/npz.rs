//! Batches of data and targets from NumPy `.npz` archives.
//!
//! A batch is what `np.savez("batch.npz", x=x, y=y)` writes: one array per
//! model input or target, named like it. Arrays are read whatever their
//! NumPy dtype (floats, signed and unsigned integers, booleans, either byte
//! order, C or Fortran order), converted to the two element types the IR
//! feeds (f32 and i32), and checked: no NaN or infinity, no integer outside
//! the i32 range, and shapes that match the model's declared input types,
//! with every symbolic dimension (`B`) the same size in every array.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::{ArrayD, Dimension};
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{DType, Dim, Graph, InputKind, Node, Op};

pub use super::error::Error;
use super::error::{index_text, names_text};

/// An array of a batch, converted to an element type the IR feeds.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayValue {
    /// From any NumPy float dtype.
    F32(ArrayD<f32>),
    /// From any NumPy integer or boolean dtype.
    I32(ArrayD<i32>),
}

impl ArrayValue {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            ArrayValue::F32(a) => a.shape(),
            ArrayValue::I32(a) => a.shape(),
        }
    }

    /// The IR element type the array is fed as.
    pub fn dtype(&self) -> DType {
        match self {
            ArrayValue::F32(_) => DType::F32,
            ArrayValue::I32(_) => DType::I32,
        }
    }
}

/// Reads every array of an `.npz` file. Float arrays become f32, integer and
/// boolean arrays i32. NaN or infinite floats, floats beyond the f32 range
/// and integers beyond the i32 range are errors naming the array and the
/// first bad index; so are unsupported dtypes (complex, strings, objects).
pub fn load_npz(path: &Path) -> Result<BTreeMap<String, ArrayValue>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    let mut reader = crate::data::files::Npz::new(BufReader::new(file)).map_err(|e| Error::new(path, e))?;
    let names = reader.names().map_err(|e| Error::new(path, e))?;
    let mut out = BTreeMap::new();
    for name in names {
        let value = crate::data::files::read_npz_array(&mut reader, &name)
            .and_then(finite)
            .map_err(|cause| Error::new(path, format!("array `{name}`: {cause}")))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// Reads an `.npy` file, whatever its dtype, as [`load_npz`] reads an
/// archive's arrays (NaN and infinite values are errors naming the first).
pub fn load_npy(path: &Path) -> Result<ArrayValue, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    crate::data::files::parse_npy(&bytes).and_then(finite).map_err(|cause| Error::new(path, cause))
}

/// Rejects NaN and infinite values, naming the first one's index.
fn finite(value: ArrayValue) -> Result<ArrayValue, String> {
    if let ArrayValue::F32(a) = &value {
        if let Some((index, v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
            let at = index_text(index.slice());
            return Err(if v.is_nan() {
                format!("NaN at index {at}")
            } else {
                format!("infinite value at index {at}")
            });
        }
    }
    Ok(value)
}

/// What an input is, for messages: `input`, `target`.
fn input_role(kind: &InputKind) -> &'static str {
    match kind {
        InputKind::Target => "target",
        _ => "input",
    }
}

/// The batch inputs of `graph`: for every [`InputKind::Data`] and
/// [`InputKind::Target`] input, the array of `arrays` (read from `path`,
/// which is used in messages) with the same name, checked against the
/// input's declared type. A symbolic dimension takes its size from the first
/// array that has it; every other array must agree. Arrays that name no
/// input are ignored.
pub fn batch_inputs(
    graph: &Graph,
    path: &Path,
    arrays: &BTreeMap<String, ArrayValue>,
) -> Result<HashMap<String, Tensor<f32>>, Error> {
    // Symbolic dimension → (size, the array it came from).
    let mut dims: HashMap<String, (usize, String)> = HashMap::new();
    let mut out = HashMap::new();
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        if !matches!(kind, InputKind::Data | InputKind::Target) {
            continue;
        }
        let role = input_role(kind);
        let Some(array) = arrays.get(name) else {
            let present = if arrays.is_empty() {
                "the file has no arrays".to_string()
            } else {
                format!("the file has {}", names_text(arrays.keys().map(String::as_str), 20))
            };
            return Err(Error::new(
                path,
                format!("no array `{name}` for {role} `{name}: {}`; {present}", node.ty),
            ));
        };
        if array.dtype() != node.ty.dtype {
            let held = match array {
                ArrayValue::F32(_) => "floats",
                ArrayValue::I32(_) => "integers",
            };
            return Err(Error::new(
                path,
                format!("array `{name}` holds {held}, but {role} `{name}` is {}", node.ty),
            ));
        }
        check_shape(node, name, role, array.shape(), &mut dims).map_err(|cause| Error::new(path, cause))?;
        let tensor = match array {
            ArrayValue::F32(a) => Tensor::Float(a.clone()),
            ArrayValue::I32(a) => Tensor::Int(a.clone()),
        };
        out.insert(name.clone(), tensor);
    }
    Ok(out)
}

/// Checks an array's shape against the declared shape of input `node`,
/// binding symbolic dimensions in `dims`.
fn check_shape(
    node: &Node,
    name: &str,
    role: &str,
    shape: &[usize],
    dims: &mut HashMap<String, (usize, String)>,
) -> Result<(), String> {
    let declared = node.ty.shape.dims();
    let mismatch = |why: String| {
        format!("array `{name}` has shape {}, but {role} `{name}` is {}{why}", index_text(shape), node.ty)
    };
    if declared.len() != shape.len() {
        return Err(mismatch(format!(" ({} axes, not {})", declared.len(), shape.len())));
    }
    for (axis, (d, &n)) in declared.iter().zip(shape).enumerate() {
        match d {
            Dim::Known(k) if *k != n => {
                return Err(mismatch(format!(" (axis {axis} must be {k})")));
            }
            Dim::Known(_) => {}
            Dim::Sym(s) => match dims.get(s) {
                Some((size, from)) if *size != n => {
                    return Err(mismatch(format!(" and {s} = {size} from array `{from}`")));
                }
                Some(_) => {}
                None => {
                    dims.insert(s.clone(), (n, name.to_string()));
                }
            },
        }
    }
    Ok(())
}
