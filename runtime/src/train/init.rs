//! Initial values of a model's parameters and state.
//!
//! Each parameter and state input of a graph carries its [`Init`] (PyTorch's
//! default for that layer, chosen by the compiler's catalogue). Values are
//! drawn from the counter-based generator [`rng::uniform`]: element `i` of
//! tensor `name` is a pure function of `(seed, name, i)`. So a tensor's
//! values do not depend on which other parameters exist, on their order, or
//! on how many threads draw them, and adding a layer leaves the others'
//! initial values unchanged.
//!
//! The values are exactly those of [`nnc_compiler::ir::interp::example_inputs`]
//! for the same seed, so tests written against the interpreter see the same
//! parameters as `nnc init` writes.

use ndarray::{ArrayD, Dimension, IxDyn};
use nnc_compiler::ir::{rng, DType, Graph, Init, InputKind, Op};

pub use nnc_compiler::ir::rng::{name_stream, seed_key};

/// The initial value of tensor `name` of the given shape under `init`
/// (element by element as [`rng::init_element`] defines). Values are
/// computed in f64 and rounded to f32 once.
pub fn initial_value(name: &str, init: Init, shape: &[usize], seed: u64) -> ArrayD<f32> {
    let key = seed_key(seed);
    let stream = name_stream(name);
    ArrayD::from_shape_fn(IxDyn(shape), |index| {
        let i = flat_index(index.slice(), shape) as u64;
        rng::init_element(init, key, stream, i) as f32
    })
}

/// Row-major position of `index` in an array of `shape`.
fn flat_index(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// The initial value of every [`InputKind::Param`] and [`InputKind::State`]
/// input of `graph`, in graph order, named like the input.
///
/// Fails (naming the input) if such an input is not `f32` or has a symbolic
/// dimension, which a compiled model never produces.
pub fn initial_values(graph: &Graph, seed: u64) -> Result<Vec<(String, ArrayD<f32>)>, String> {
    let mut out = vec![];
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let init = match kind {
            InputKind::Param { init, .. } | InputKind::State { init } => *init,
            _ => continue,
        };
        if node.ty.dtype != DType::F32 {
            return Err(format!("`{name}` has type {}; parameters and state must be f32", node.ty));
        }
        let shape = node
            .ty
            .shape
            .as_known()
            .ok_or_else(|| format!("`{name}` has type {}; its shape must be fully known", node.ty))?;
        out.push((name.clone(), initial_value(name, init, &shape, seed)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_answers() {
        // Published FNV-1a 64-bit test vectors.
        let cases =
            [("", 0xcbf2_9ce4_8422_2325u64), ("a", 0xaf63_dc4c_8601_ec8c), ("foobar", 0x8594_4171_f739_67e8)];
        for (text, want) in cases {
            assert_eq!(name_stream(text), want, "{text:?}");
        }
    }

    #[test]
    fn constant_inits() {
        let cases = [(Init::Zeros, 0.0f32), (Init::Ones, 1.0)];
        for (init, want) in cases {
            let v = initial_value("t", init, &[2, 3], 7);
            assert_eq!(v.shape(), &[2, 3]);
            assert!(v.iter().all(|&x| x == want), "{init:?}");
        }
    }

    #[test]
    fn normal_has_the_requested_spread() {
        let v = initial_value("w", Init::Normal { std: 0.5 }, &[20_000], 3);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn element_values_do_not_depend_on_the_shape_layout() {
        // Element i of a tensor is the same whatever the shape, as long as
        // its row-major position is i.
        let a = initial_value("w", Init::Uniform { bound: 1.0 }, &[6], 1);
        let b = initial_value("w", Init::Uniform { bound: 1.0 }, &[2, 3], 1);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), b.iter().copied().collect::<Vec<_>>());
    }
}
