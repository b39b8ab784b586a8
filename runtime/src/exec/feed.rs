//! The model-state inputs of a graph: parameters and state from a parameter
//! file, the random-number key from a seed.
//!
//! Together with [`crate::io::npz::batch_inputs`] (data and targets) this gives
//! every input a forward or gradient graph needs, checked against the
//! graph's declared types so that a file written for another model, or a
//! damaged one, is reported by name instead of failing inside the
//! interpreter. Tensor constants ([`InputKind::Const`]) are bound by name
//! like data, with [`crate::exec::Executable::set_input`], whatever their
//! dtype; they are not model state and never come from a parameter file.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{arr1, ArrayD, Dimension};
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{DType, Graph, InputKind, Op, Shape, Type};

use crate::io::error::{index_text, names_text, Error};
use crate::io::tensor_file::TensorFile;
use crate::train::init::initial_value;

/// The parameter and state inputs of `graph` from `file` (read from `path`,
/// which is used in messages).
///
/// Every [`InputKind::Param`] input must be in the file, with the declared
/// shape and finite values. An [`InputKind::State`] input (batchnorm running
/// statistics) is taken from the file if it is there (checked the same way)
/// and otherwise starts from its initial value under `seed`. Tensors of the
/// file that name no input are ignored.
pub fn param_inputs(
    graph: &Graph,
    file: &TensorFile,
    path: &Path,
    seed: u64,
) -> Result<HashMap<String, Tensor<f32>>, Error> {
    let mut out = HashMap::new();
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let (what, init) = match kind {
            InputKind::Param { .. } => ("parameter", None),
            InputKind::State { init } => ("state", Some(*init)),
            _ => continue,
        };
        let shape = node.ty.shape.as_known().filter(|_| node.ty.dtype == DType::F32).ok_or_else(|| {
            Error::new(path, format!("{what} `{name}` has type {}, which cannot be stored", node.ty))
        })?;
        let value = match (file.get(name), init) {
            (Some(array), _) => {
                check_tensor(name, what, &node.ty, &shape, array).map_err(|cause| Error::new(path, cause))?;
                array.clone()
            }
            (None, Some(init)) => initial_value(name, init, &shape, seed),
            (None, None) => {
                let names: Vec<&str> = file.names().collect();
                let present = if names.is_empty() {
                    "the file has no tensors".to_string()
                } else {
                    format!("the file has {} tensors: {}", names.len(), names_text(names.iter().copied(), 8))
                };
                return Err(Error::new(
                    path,
                    format!("no tensor `{name}` for {what} `{name}: {}`; {present}", node.ty),
                ));
            }
        };
        out.insert(name.clone(), Tensor::Float(value));
    }
    Ok(out)
}

/// Checks a stored tensor against its input's type: same shape, finite values.
fn check_tensor(
    name: &str,
    what: &str,
    ty: &Type,
    shape: &[usize],
    array: &ArrayD<f32>,
) -> Result<(), String> {
    if array.shape() != shape {
        return Err(format!(
            "tensor `{name}` has shape {}, but {what} `{name}` is {ty}",
            index_text(array.shape())
        ));
    }
    if let Some((index, v)) = array.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(format!("tensor `{name}` has the value {v} at index {}", index_text(index.slice())));
    }
    Ok(())
}

/// The value of every [`InputKind::Key`] input of `graph`: `[seed, 0]`
/// (seed truncated to i32, step 0), the key a first training step uses.
pub fn key_inputs(graph: &Graph, seed: u64) -> Result<HashMap<String, Tensor<f32>>, String> {
    let key_type = Type::new(DType::I32, Shape::known(&[2]));
    let mut out = HashMap::new();
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind: InputKind::Key } = &node.op else { continue };
        if node.ty != key_type {
            return Err(format!("the key input `{name}` has type {}, not {key_type}", node.ty));
        }
        out.insert(name.clone(), Tensor::Int(arr1(&[seed as i32, 0]).into_dyn()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nnc_compiler::ir::{Init, Loc, ParamRole};

    fn graph() -> Graph {
        let mut g = Graph::new("g", nnc_compiler::ir::Mode::Train);
        let role = ParamRole::Weight;
        g.input(
            "w",
            InputKind::Param { role, init: Init::Ones },
            Type::f32(Shape::known(&[2, 3])),
            Loc::NONE,
        );
        g.input("s", InputKind::State { init: Init::Ones }, Type::f32(Shape::known(&[3])), Loc::NONE);
        g.input("rng", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
        g.input("table", InputKind::Const, Type::new(DType::I32, Shape::known(&[4])), Loc::NONE);
        g
    }

    type Tensors = Vec<(&'static str, ArrayD<f32>)>;

    fn file(tensors: Tensors) -> TensorFile {
        let tensors = tensors.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
        TensorFile { tensors, metadata: Default::default() }
    }

    #[test]
    fn params_from_the_file_state_defaults_to_its_init() {
        let w = ArrayD::from_elem(ndarray::IxDyn(&[2, 3]), 0.5f32);
        let inputs =
            param_inputs(&graph(), &file(vec![("w", w.clone())]), Path::new("p"), 0).expect("inputs");
        assert_eq!(inputs["w"], Tensor::Float(w));
        assert_eq!(inputs["s"], Tensor::Float(ArrayD::from_elem(ndarray::IxDyn(&[3]), 1.0)));
        assert!(!inputs.contains_key("rng"));
        assert!(!inputs.contains_key("table"), "a constant is not model state");
    }

    /// An executable takes a constant's value by name, like data, in any
    /// dtype, and computes with it.
    #[test]
    fn constants_are_set_by_name() {
        use crate::exec::{Executable, Gemm, Options};
        use nnc_compiler::codegen::Checking;
        use nnc_compiler::ir::{BinaryOp, Op, OutputKind};

        let mut g = Graph::new("g", nnc_compiler::ir::Mode::Infer);
        let x = g.input("x", InputKind::Data, Type::f32(Shape::known(&[3])), Loc::NONE);
        let index = g.input("index", InputKind::Const, Type::new(DType::I32, Shape::known(&[4])), Loc::NONE);
        let shift = g.input("shift", InputKind::Const, Type::f32(Shape::known(&[4])), Loc::NONE);
        let picked = g.add(Op::Gather { axis: 0 }, &[x, index], Loc::NONE).expect("types");
        let y = g.add(Op::Binary(BinaryOp::Add), &[picked, shift], Loc::NONE).expect("types");
        g.output(OutputKind::Prediction, "y", y);
        for checking in [Checking::Unchecked, Checking::Checked] {
            let options = Options { threads: 1, checking, gemm: Gemm::Reference };
            let mut exe = Executable::compile(&g, 1, &options).expect("compiles");
            exe.set_input("x", &Tensor::Float(arr1(&[1.0f32, 2.0, 3.0]).into_dyn())).expect("x");
            exe.set_input("index", &Tensor::Int(arr1(&[2, 0, 7, 2]).into_dyn())).expect("index");
            exe.set_input("shift", &Tensor::Float(arr1(&[0.5f32, 0.5, 0.5, -1.0]).into_dyn()))
                .expect("shift");
            let e = exe.set_input("index", &Tensor::Float(arr1(&[0.0f32; 4]).into_dyn())).expect_err("dtype");
            assert!(e.contains("i32"), "{e}");
            exe.run().expect("runs");
            let want = Tensor::Float(arr1(&[3.5f32, 1.5, 0.5, 2.0]).into_dyn());
            assert_eq!(exe.output("y").expect("y"), want);
        }
    }

    #[test]
    fn bad_files_are_reported() {
        let nan = {
            let mut a = ArrayD::zeros(ndarray::IxDyn(&[2, 3]));
            a[[1, 2]] = f32::NAN;
            a
        };
        let cases: Vec<(Tensors, &str)> = vec![
            (vec![], "p: no tensor `w` for parameter `w: f32[2, 3]`; the file has no tensors"),
            (
                vec![("v", ArrayD::zeros(ndarray::IxDyn(&[1])))],
                "p: no tensor `w` for parameter `w: f32[2, 3]`; the file has 1 tensors: `v`",
            ),
            (
                vec![("w", ArrayD::zeros(ndarray::IxDyn(&[3, 2])))],
                "p: tensor `w` has shape [3, 2], but parameter `w` is f32[2, 3]",
            ),
            (vec![("w", nan)], "p: tensor `w` has the value NaN at index [1, 2]"),
        ];
        for (tensors, want) in cases {
            let err = param_inputs(&graph(), &file(tensors), Path::new("p"), 0).expect_err(want);
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn key_is_seed_and_step_zero() {
        let keys = key_inputs(&graph(), 42).expect("keys");
        assert_eq!(keys["rng"], Tensor::Int(arr1(&[42, 0]).into_dyn()));
    }
}
