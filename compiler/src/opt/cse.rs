//! Common-subexpression elimination: computes each distinct value once.
//!
//! Lowering and autodiff emit many identical nodes (the same broadcast of a
//! bias, the same `size`, a constant per use); merging them shrinks the graph
//! and lets fusion see shared operands. Two nodes merge when they have the
//! same op (attributes included; constants compared by the bits of their
//! value), the same operands and the same type; the later one is replaced by
//! the earlier, whose location and origin are kept. Every op is a pure
//! function of its operands (`rng_uniform` included: its numbers depend only
//! on key, stream and shape), so merging never changes a result.
//!
//! Inputs never merge: each is a distinct value fed from outside.
//!
//! Operands of `add`, `mul`, `eq` and `ne` are compared as unordered pairs,
//! since swapping them gives bit-identical results in IEEE arithmetic (up to
//! the payload of a NaN, which the IR does not define). `max` and `min` are
//! not treated as commutative: the reference semantics return the first
//! operand when the two compare equal, so `max(+0, -0)` is `+0` but
//! `max(-0, +0)` is `-0`.

use std::collections::HashMap;

use crate::ir::{BinaryOp, CmpOp, Graph, Op, Type, ValueId};

use super::rewrite::Rewriter;

/// What identifies a candidate for merging; nodes with equal keys are then
/// compared op by op.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    mnemonic: &'static str,
    /// The bits of a constant's value (0 for other ops).
    const_bits: u64,
    args: Vec<ValueId>,
    ty: Type,
}

fn is_commutative(op: &Op) -> bool {
    matches!(op, Op::Binary(BinaryOp::Add | BinaryOp::Mul) | Op::Compare(CmpOp::Eq | CmpOp::Ne))
}

/// Whether two ops are the same, constants compared by bits.
fn same_op(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::Const { value: x }, Op::Const { value: y }) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Merges nodes that compute the same value.
pub fn run(graph: &Graph) -> Graph {
    let mut rw = Rewriter::new(graph);
    let mut seen: HashMap<Key, Vec<ValueId>> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(i as u32);
        if matches!(node.op, Op::Input { .. }) {
            rw.keep(id);
            continue;
        }
        let mut args = rw.args(id);
        if is_commutative(&node.op) {
            args.sort_unstable();
        }
        let const_bits = match node.op {
            Op::Const { value } => value.to_bits(),
            _ => 0,
        };
        let key = Key { mnemonic: node.op.mnemonic(), const_bits, args, ty: node.ty.clone() };
        let candidates = seen.entry(key).or_default();
        let earlier = candidates.iter().copied().find(|&v| same_op(&rw.graph().node(v).op, &node.op));
        match earlier {
            Some(v) => rw.replace(id, v),
            None => candidates.push(rw.keep(id)),
        }
    }
    rw.finish()
}

#[cfg(test)]
mod tests {
    use super::super::testing::check_all;
    use super::run;

    #[test]
    fn cse() {
        check_all(
            run,
            &[
                (
                    "equal nodes merge into the first, which keeps its location and origin",
                    r#"graph t mode=train {
                      %0: f32[B, 4] = input "x"                                @1:1-1:2
                      %1: f32[B, 4] = exp %0                                   @2:1-2:2
                      %2: f32[B, 4] = exp %0                                   @3:1-3:2
                      %3: f32[B, 4] = neg %1                                   @4:1-4:2 from %1 exp
                      %4: f32[B, 4] = neg %2                                   @5:1-5:2 from %2 exp
                      %5: f32[B, 4] = add %3, %4                               @6:1-6:2 from %2 exp
                      prediction "y" = %5
                      value "e" = %2
                    }"#,
                    r#"graph t mode=train {
                      %0: f32[B, 4] = input "x"                                @1:1-1:2
                      %1: f32[B, 4] = exp %0                                   @2:1-2:2
                      %2: f32[B, 4] = neg %1                                   @4:1-4:2 from %1 exp
                      %3: f32[B, 4] = add %2, %2                               @6:1-6:2 from %1 exp
                      prediction "y" = %3
                      value "e" = %1
                    }"#,
                ),
                (
                    "constants merge by value bits and dtype; inputs never merge",
                    r#"graph t mode=infer {
                      %0: f32[] = input "a"
                      %1: f32[] = input "b"
                      %2: f32[] = const 1.0
                      %3: f32[] = const 1.0
                      %4: i32[] = const 1.0
                      %5: f32[] = const -0.0
                      %6: f32[] = const 0.0
                      %7: f32[] = const nan
                      %8: f32[] = const nan
                      %9: f32[] = const nan(0x7ff8000000000001)
                      %10: f32[] = add %0, %2
                      %11: f32[] = add %1, %3
                      %12: f32[] = sub %5, %6
                      %13: f32[] = sub %7, %8
                      %14: f32[] = sub %8, %9
                      %15: i32[] = const 1.0
                      %16: bool[] = eq %4, %15
                      value "p" = %10
                      value "q" = %11
                      value "r" = %12
                      value "s" = %13
                      value "t" = %14
                      value "u" = %16
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[] = input "a"
                      %1: f32[] = input "b"
                      %2: f32[] = const 1.0
                      %3: i32[] = const 1.0
                      %4: f32[] = const -0.0
                      %5: f32[] = const 0.0
                      %6: f32[] = const nan
                      %7: f32[] = const nan(0x7ff8000000000001)
                      %8: f32[] = add %0, %2
                      %9: f32[] = add %1, %2
                      %10: f32[] = sub %4, %5
                      %11: f32[] = sub %6, %6
                      %12: f32[] = sub %6, %7
                      %13: bool[] = eq %3, %3
                      value "p" = %8
                      value "q" = %9
                      value "r" = %10
                      value "s" = %11
                      value "t" = %12
                      value "u" = %13
                    }"#,
                ),
                (
                    "commutative ops merge with swapped operands; others do not",
                    r#"graph t mode=infer {
                      %0: f32[3] = input "a"
                      %1: f32[3] = input "b"
                      %2: f32[3] = add %0, %1
                      %3: f32[3] = add %1, %0
                      %4: f32[3] = mul %0, %1
                      %5: f32[3] = mul %1, %0
                      %6: bool[3] = eq %0, %1
                      %7: bool[3] = eq %1, %0
                      %8: bool[3] = ne %0, %1
                      %9: bool[3] = ne %1, %0
                      %10: f32[3] = sub %0, %1
                      %11: f32[3] = sub %1, %0
                      %12: f32[3] = max %0, %1
                      %13: f32[3] = max %1, %0
                      %14: bool[3] = lt %0, %1
                      %15: bool[3] = lt %1, %0
                      value "add" = %3
                      value "mul" = %5
                      value "eq" = %7
                      value "ne" = %9
                      value "sub" = %11
                      value "max" = %13
                      value "lt" = %15
                      value "v2" = %2
                      value "v4" = %4
                      value "v6" = %6
                      value "v8" = %8
                      value "v10" = %10
                      value "v12" = %12
                      value "v14" = %14
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[3] = input "a"
                      %1: f32[3] = input "b"
                      %2: f32[3] = add %0, %1
                      %3: f32[3] = mul %0, %1
                      %4: bool[3] = eq %0, %1
                      %5: bool[3] = ne %0, %1
                      %6: f32[3] = sub %0, %1
                      %7: f32[3] = sub %1, %0
                      %8: f32[3] = max %0, %1
                      %9: f32[3] = max %1, %0
                      %10: bool[3] = lt %0, %1
                      %11: bool[3] = lt %1, %0
                      value "add" = %2
                      value "mul" = %3
                      value "eq" = %4
                      value "ne" = %5
                      value "sub" = %7
                      value "max" = %9
                      value "lt" = %11
                      value "v2" = %2
                      value "v4" = %3
                      value "v6" = %4
                      value "v8" = %5
                      value "v10" = %6
                      value "v12" = %8
                      value "v14" = %10
                    }"#,
                ),
                (
                    "attributes and types must match; merging cascades",
                    r#"graph t mode=infer {
                      %0: f32[B, 4] = input "x"
                      %1: f32[4, B] = permute %0 axes=[1, 0]
                      %2: f32[4, B] = permute %0 axes=[1, 0]
                      %3: f32[4] = reduce_sum %1 axes=[1]
                      %4: f32[4] = reduce_sum %2 axes=[1]
                      %5: f32[B] = reduce_sum %2 axes=[0]
                      %6: f32[] = size %0 axes=[0]
                      %7: f32[] = size %0 axes=[1]
                      %8: i32[2] = key "k"
                      %9: f32[4] = rng_uniform %8 shape=[4] stream=0
                      %10: f32[4] = rng_uniform %8 shape=[4] stream=1
                      %11: f32[4] = rng_uniform %8 shape=[4] stream=0
                      value "a" = %3
                      value "b" = %4
                      value "c" = %5
                      value "d" = %6
                      value "e" = %7
                      value "f" = %9
                      value "g" = %10
                      value "h" = %11
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[B, 4] = input "x"
                      %1: f32[4, B] = permute %0 axes=[1, 0]
                      %2: f32[4] = reduce_sum %1 axes=[1]
                      %3: f32[B] = reduce_sum %1 axes=[0]
                      %4: f32[] = size %0 axes=[0]
                      %5: f32[] = size %0 axes=[1]
                      %6: i32[2] = key "k"
                      %7: f32[4] = rng_uniform %6 shape=[4] stream=0
                      %8: f32[4] = rng_uniform %6 shape=[4] stream=1
                      value "a" = %2
                      value "b" = %2
                      value "c" = %3
                      value "d" = %4
                      value "e" = %5
                      value "f" = %7
                      value "g" = %8
                      value "h" = %7
                    }"#,
                ),
            ],
        );
    }
}
