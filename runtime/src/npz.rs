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

use ndarray::{ArrayD, Dimension, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError, ReadableElement};
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{DType, Dim, Graph, InputKind, Node, Op};

pub use crate::error::Error;
use crate::error::{index_text, names_text};

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

/// Why one attempt to read an array as a given element type failed.
enum Attempt {
    /// The array has another dtype: try the next one.
    OtherDtype(String),
    /// The array (or archive) is unreadable.
    Failed(String),
}

fn read_as<T: ReadableElement>(
    reader: &mut NpzReader<BufReader<File>>,
    name: &str,
) -> Result<ArrayD<T>, Attempt> {
    reader.by_name::<OwnedRepr<T>, IxDyn>(name).map_err(|e| match e {
        ReadNpzError::Npy(ReadNpyError::WrongDescriptor(descr)) => Attempt::OtherDtype(descr.to_string()),
        ReadNpzError::Npy(ReadNpyError::MissingData) => {
            Attempt::Failed("the array's data is truncated".into())
        }
        ReadNpzError::Npy(err) => Attempt::Failed(err.to_string()),
        ReadNpzError::Zip(err) => Attempt::Failed(format!("corrupt archive entry: {err}")),
    })
}

/// Reads every array of an `.npz` file. Float arrays become f32, integer and
/// boolean arrays i32. NaN or infinite floats, floats beyond the f32 range
/// and integers beyond the i32 range are errors naming the array and the
/// first bad index; so are unsupported dtypes (complex, strings, objects).
pub fn load_npz(path: &Path) -> Result<BTreeMap<String, ArrayValue>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    let mut reader = NpzReader::new(BufReader::new(file))
        .map_err(|e| Error::new(path, format!("not a valid .npz archive: {}", npz_cause(&e))))?;
    let names = reader
        .names()
        .map_err(|e| Error::new(path, format!("not a valid .npz archive: {}", npz_cause(&e))))?;
    let mut out = BTreeMap::new();
    for name in names {
        let value = read_array(&mut reader, &name)
            .map_err(|cause| Error::new(path, format!("array `{name}`: {cause}")))?;
        out.insert(name, value);
    }
    Ok(out)
}

fn npz_cause(e: &ReadNpzError) -> String {
    match e {
        ReadNpzError::Zip(err) => err.to_string(),
        ReadNpzError::Npy(err) => err.to_string(),
    }
}

/// Reads one array, trying the supported element types in turn.
fn read_array(reader: &mut NpzReader<BufReader<File>>, name: &str) -> Result<ArrayValue, String> {
    macro_rules! try_float {
        ($t:ty) => {
            match read_as::<$t>(reader, name) {
                Ok(a) => return float_array(a.mapv(f64::from)),
                Err(Attempt::Failed(m)) => return Err(m),
                Err(Attempt::OtherDtype(_)) => {}
            }
        };
    }
    macro_rules! try_int {
        ($t:ty) => {
            match read_as::<$t>(reader, name) {
                Ok(a) => return int_array(&a, stringify!($t)),
                Err(Attempt::Failed(m)) => return Err(m),
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
    match read_as::<bool>(reader, name) {
        Ok(a) => Ok(ArrayValue::I32(a.mapv(i32::from))),
        Err(Attempt::Failed(m)) => Err(m),
        Err(Attempt::OtherDtype(descr)) => {
            Err(format!("unsupported dtype {descr} (expected a float, integer or boolean array)"))
        }
    }
}

/// Converts float values to f32, rejecting NaN, infinities and values
/// beyond the f32 range.
fn float_array(values: ArrayD<f64>) -> Result<ArrayValue, String> {
    for (index, &v) in values.indexed_iter() {
        let at = index_text(index.slice());
        if v.is_nan() {
            return Err(format!("NaN at index {at}"));
        }
        if v.is_infinite() {
            return Err(format!("infinite value at index {at}"));
        }
        if (v as f32).is_infinite() {
            return Err(format!("value {v:e} at index {at} is outside the f32 range"));
        }
    }
    Ok(ArrayValue::F32(values.mapv(|v| v as f32)))
}

/// Converts integer values to i32, rejecting values beyond its range.
pub(crate) fn int_array<T: Copy + TryInto<i32> + std::fmt::Display>(
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
