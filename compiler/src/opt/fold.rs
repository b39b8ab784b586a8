//! Constant folding: evaluates at compile time what depends on constants only.
//!
//! Two kinds of node become a scalar `const` of the node's type:
//! - a node whose operands are all (scalar) constants and whose result is a
//!   scalar: unary and binary arithmetic, comparisons (a bool constant, 1 or
//!   0), `select`, `cast`, and the structural ops that are identities on
//!   scalars (`broadcast`, `reshape`, `permute`, reductions over no axes);
//! - `size` when its operand's dimensions along `axes` are all known.
//!
//! Folding must not change what the reference interpreter computes, in
//! either precision. The node is therefore evaluated by the interpreter
//! itself ([`crate::ir::interp::run`]) on a graph holding just the constants
//! and the node, once in f64 and once in f32. For an `f32` result the f64
//! value is kept when it rounds to exactly the f32 result, which is then what
//! an f32 run loads; otherwise the f32 result is kept. So an f32 run of the
//! folded graph is bit-identical to an f32 run of the original, and an f64
//! run is identical too unless the two precisions round differently (e.g.
//! `1 - 0.9`, which is `0.09999999999999998` in f64 but `0.100000024` in
//! f32): then the f64 run sees the f32 result. The difference is that of
//! evaluating in f32 — usually an ulp of f32, but cancellation can amplify
//! the rounding of the operands (`1 - 0.9` differs by 2.4e-7 relative).
//! i32 and bool results are exact in both.

use std::collections::HashMap;

use crate::ir::interp::{run as interpret, Real, Tensor};
use crate::ir::{DType, Graph, Mode, Node, Op, OutputKind, ValueId};

use super::rewrite::Rewriter;

/// Replaces constant-valued scalar nodes by constants.
pub fn run(graph: &Graph) -> Graph {
    let mut rw = Rewriter::new(graph);
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(i as u32);
        match fold(&rw, id) {
            Some(value) => {
                rw.keep_as(id, Op::Const { value }, vec![]);
            }
            None => {
                rw.keep(id);
            }
        }
        debug_assert_eq!(rw.graph().nodes.last().map(|n| &n.ty), Some(&node.ty));
    }
    rw.finish()
}

/// The constant value of old node `id`, if it can be folded.
fn fold(rw: &Rewriter, id: ValueId) -> Option<f64> {
    let node = rw.old().node(id);
    match &node.op {
        Op::Input { .. } | Op::Const { .. } => None,
        Op::Size { axes } => {
            let shape = &rw.ty(*rw.args(id).first()?)?.shape;
            let mut n = 1usize;
            for &a in axes {
                n = n.checked_mul(shape.dims().get(a)?.known()?)?;
            }
            Some(n as f64)
        }
        op => {
            if node.ty.shape.rank() != 0 {
                return None;
            }
            let args = rw.args(id);
            let mut consts = Vec::with_capacity(args.len());
            for &a in &args {
                let operand = rw.graph().nodes.get(a.index())?;
                match operand.op {
                    Op::Const { value } => consts.push((value, operand.ty.dtype)),
                    _ => return None,
                }
            }
            if consts.is_empty() {
                return None;
            }
            evaluate(op, &consts, node.ty.dtype)
        }
    }
}

/// The value of `op` applied to scalar constants `(value, dtype)`, as a
/// constant of `dtype`: see the module documentation for the precision rule.
fn evaluate(op: &Op, consts: &[(f64, DType)], dtype: DType) -> Option<f64> {
    let mut g = Graph::new("fold", Mode::Infer);
    for &(value, dtype) in consts {
        g.constant(value, dtype, Default::default());
    }
    let args: Vec<ValueId> = (0..consts.len() as u32).map(ValueId).collect();
    let arg_types: Vec<_> = g.nodes.iter().map(|n| &n.ty).collect();
    let ty = crate::ir::infer::infer(op, &arg_types).ok()?;
    if ty.shape.rank() != 0 || ty.dtype != dtype {
        return None;
    }
    let v = g.push(Node { op: op.clone(), args, ty, loc: Default::default(), span: None, grad_of: None });
    g.output(OutputKind::Other, "v", v);
    let wide = scalar_of(&interpret::<f64>(&g, &HashMap::new()).ok()?)?;
    let narrow = scalar_of(&interpret::<f32>(&g, &HashMap::new()).ok()?)?;
    if dtype != DType::F32 || (wide.is_nan() && narrow.is_nan()) {
        return Some(wide);
    }
    Some(if (wide as f32).to_bits() == (narrow as f32).to_bits() { wide } else { narrow })
}

/// The single scalar output of an interpreter run, as an f64.
fn scalar_of<T: Real>(outputs: &[(String, Tensor<T>)]) -> Option<f64> {
    let (_, tensor) = outputs.first()?;
    match tensor {
        Tensor::Float(a) => a.iter().next().map(|x| x.as_f64()),
        Tensor::Int(a) => a.iter().next().map(|&x| f64::from(x)),
        Tensor::Bool(a) => a.iter().next().map(|&x| if x { 1.0 } else { 0.0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::check_all;
    use super::run;

    #[test]
    fn fold() {
        check_all(
            run,
            &[
                (
                    "arithmetic on scalar constants, keeping location and origin",
                    r#"graph t mode=train {
                      %0: f32[] = const 2.0
                      %1: f32[] = const 3.0
                      %2: f32[] = mul %0, %1                                   @1:1-1:9
                      %3: f32[] = neg %2                                       @2:1-2:9 from %2 mul
                      %4: f32[] = sqrt %1
                      %5: f32[] = div %0, %1
                      %6: f32[] = sub %0, %0
                      %7: f32[] = log %6
                      value "a" = %3
                      value "b" = %4
                      value "c" = %5
                      value "d" = %7
                    }"#,
                    r#"graph t mode=train {
                      %0: f32[] = const 2.0
                      %1: f32[] = const 3.0
                      %2: f32[] = const 6.0                                    @1:1-1:9
                      %3: f32[] = const -6.0                                   @2:1-2:9 from %2 const
                      %4: f32[] = const 1.7320508075688772
                      %5: f32[] = const 0.6666666666666666
                      %6: f32[] = const 0.0
                      %7: f32[] = const -inf
                      value "a" = %3
                      value "b" = %4
                      value "c" = %5
                      value "d" = %7
                    }"#,
                ),
                (
                    "where f32 and f64 round differently the f32 result is kept",
                    r#"graph t mode=infer {
                      %0: f32[] = const 1.0
                      %1: f32[] = const 0.9
                      %2: f32[] = sub %0, %1
                      %3: f32[] = const 0.1
                      %4: f32[] = add %3, %0
                      value "a" = %2
                      value "b" = %4
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[] = const 1.0
                      %1: f32[] = const 0.9
                      %2: f32[] = const 0.10000002384185791
                      %3: f32[] = const 0.1
                      %4: f32[] = const 1.1
                      value "a" = %2
                      value "b" = %4
                    }"#,
                ),
                (
                    "comparisons, select and casts across dtypes",
                    r#"graph t mode=infer {
                      %0: f32[] = const 2.5
                      %1: f32[] = const nan
                      %2: bool[] = lt %1, %0
                      %3: bool[] = ne %1, %1
                      %4: f32[] = select %3, %0, %1
                      %5: i32[] = cast %0 to=i32
                      %6: i32[] = const -7.0
                      %7: f32[] = cast %6 to=f32
                      %8: bool[] = cast %6 to=bool
                      %9: i32[] = cast %3 to=i32
                      %10: f32[] = const -2.5
                      %11: i32[] = cast %10 to=i32
                      value "a" = %2
                      value "b" = %4
                      value "c" = %5
                      value "d" = %7
                      value "e" = %8
                      value "f" = %9
                      value "g" = %11
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[] = const 2.5
                      %1: f32[] = const nan
                      %2: bool[] = const 0.0
                      %3: bool[] = const 1.0
                      %4: f32[] = const 2.5
                      %5: i32[] = const 2.0
                      %6: i32[] = const -7.0
                      %7: f32[] = const -7.0
                      %8: bool[] = const 1.0
                      %9: i32[] = const 1.0
                      %10: f32[] = const -2.5
                      %11: i32[] = const -2.0
                      value "a" = %2
                      value "b" = %4
                      value "c" = %5
                      value "d" = %7
                      value "e" = %8
                      value "f" = %9
                      value "g" = %11
                    }"#,
                ),
                (
                    "unary functions use the interpreter's definitions",
                    r#"graph t mode=infer {
                      %0: f32[] = const 0.5
                      %1: f32[] = erf %0
                      %2: f32[] = sigmoid %0
                      %3: f32[] = tanh %0
                      %4: f32[] = exp %0
                      %5: f32[] = const -0.0
                      %6: f32[] = sign %5
                      value "a" = %1
                      value "b" = %2
                      value "c" = %3
                      value "d" = %4
                      value "e" = %6
                    }"#,
                    &format!(
                        r#"graph t mode=infer {{
                          %0: f32[] = const 0.5
                          %1: f32[] = const {}
                          %2: f32[] = const {}
                          %3: f32[] = const {}
                          %4: f32[] = const {}
                          %5: f32[] = const -0.0
                          %6: f32[] = const 0.0
                          value "a" = %1
                          value "b" = %2
                          value "c" = %3
                          value "d" = %4
                          value "e" = %6
                        }}"#,
                        expected_f32_or_f64(crate::ir::interp::erf(0.5), crate::ir::interp::erf(0.5) as f32),
                        expected_f32_or_f64(
                            crate::ir::interp::sigmoid(0.5f64),
                            crate::ir::interp::sigmoid(0.5f32)
                        ),
                        expected_f32_or_f64(0.5f64.tanh(), 0.5f32.tanh()),
                        expected_f32_or_f64(0.5f64.exp(), 0.5f32.exp()),
                    ),
                ),
                (
                    "structural identities on scalars and size over known axes",
                    r#"graph t mode=infer {
                      %0: f32[B, 3, 5] = input "x"
                      %1: f32[] = const 4.0
                      %2: f32[] = broadcast %1 shape=[]
                      %3: f32[] = reshape %1 shape=[]
                      %4: f32[] = reduce_sum %1 axes=[]
                      %5: f32[] = reduce_max %1 axes=[]
                      %6: f32[] = permute %1 axes=[]
                      %7: f32[] = size %0 axes=[1, 2]
                      %8: f32[] = size %0 axes=[0, 1]
                      %9: f32[] = size %0 axes=[]
                      %10: f32[1, 1] = broadcast %1 shape=[1, 1]
                      value "a" = %2
                      value "b" = %3
                      value "c" = %4
                      value "d" = %5
                      value "e" = %6
                      value "f" = %7
                      value "g" = %8
                      value "h" = %9
                      value "i" = %10
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[B, 3, 5] = input "x"
                      %1: f32[] = const 4.0
                      %2: f32[] = const 4.0
                      %3: f32[] = const 4.0
                      %4: f32[] = const 4.0
                      %5: f32[] = const 4.0
                      %6: f32[] = const 4.0
                      %7: f32[] = const 15.0
                      %8: f32[] = size %0 axes=[0, 1]
                      %9: f32[] = const 1.0
                      %10: f32[1, 1] = broadcast %1 shape=[1, 1]
                      value "a" = %2
                      value "b" = %3
                      value "c" = %4
                      value "d" = %5
                      value "e" = %6
                      value "f" = %7
                      value "g" = %8
                      value "h" = %9
                      value "i" = %10
                    }"#,
                ),
                (
                    "folding cascades within one run; non-constant operands stop it",
                    r#"graph t mode=infer {
                      %0: f32[] = hyper "lr"
                      %1: f32[] = const 2.0
                      %2: f32[] = add %1, %1
                      %3: f32[] = mul %2, %2
                      %4: f32[] = mul %3, %0
                      value "a" = %4
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[] = hyper "lr"
                      %1: f32[] = const 2.0
                      %2: f32[] = const 4.0
                      %3: f32[] = const 16.0
                      %4: f32[] = mul %3, %0
                      value "a" = %4
                    }"#,
                ),
            ],
        );
    }

    /// The constant text folding gives for a function of 0.5: its f64 value
    /// if that rounds to the f32 one, else the f32 value.
    fn expected_f32_or_f64(wide: f64, narrow: f32) -> String {
        let v = if wide as f32 == narrow { wide } else { f64::from(narrow) };
        format!("{v:?}")
    }

    #[test]
    fn folded_graphs_compute_what_the_original_does_in_both_precisions() {
        use crate::ir::interp::{run as interpret, Tensor};
        use std::collections::HashMap;
        let g = super::super::testing::parse_ok(
            r#"graph t mode=infer {
              %0: f32[] = const 1.0
              %1: f32[] = const 0.9
              %2: f32[] = sub %0, %1
              %3: f32[] = const 0.3
              %4: f32[] = mul %3, %1
              %5: f32[] = exp %3
              %6: f32[] = erf %1
              %7: f32[] = div %0, %3
              value "a" = %2
              value "b" = %4
              value "c" = %5
              value "d" = %6
              value "e" = %7
            }"#,
        );
        let folded = run(&g);
        let (none32, none64) = (HashMap::new(), HashMap::new());
        let narrow = interpret::<f32>(&g, &none32).unwrap();
        assert_eq!(Ok(&narrow), interpret::<f32>(&folded, &none32).as_ref(), "f32 runs are bit-identical");
        let before = interpret::<f64>(&g, &none64).unwrap();
        let after = interpret::<f64>(&folded, &none64).unwrap();
        let scalar = |t: &Tensor<f64>| t.as_float().unwrap().sum();
        for (((name, x), (_, y)), (_, z)) in before.iter().zip(&after).zip(&narrow) {
            let (x, y, z) = (scalar(x), scalar(y), f64::from(z.as_float().unwrap().sum()));
            assert!(x == y || y == z, "{name}: f64 {x}, folded {y}, f32 {z}");
        }
        // `1 - 0.9` differs (see the module documentation); so does
        // `exp 0.3`, whose operand rounds in f32.
        let differs: Vec<&str> = before
            .iter()
            .zip(&after)
            .filter(|((_, x), (_, y))| x != y)
            .map(|((name, _), _)| name.as_str())
            .collect();
        assert!(differs.contains(&"a") && !differs.contains(&"e"), "{differs:?}");
    }
}
