//! Algebraic simplification: local rewrites that remove work without
//! changing any result.
//!
//! Lowering and autodiff are written for clarity, not economy: they multiply
//! by one, broadcast to the shape a value already has, permute back and
//! forth. Each rule below replaces a node by one of its operands or by a
//! single cheaper node, and is exact in IEEE arithmetic — for every input,
//! NaN, infinities and signed zeros included, the reference interpreter
//! computes the same bits (up to NaN payloads, which the IR does not
//! define). A replacement must have exactly the type of the node it
//! replaces (symbolic dimensions included); otherwise the rule is skipped.
//!
//! "c" below is a constant operand: a `const` or a chain of `broadcast`s of
//! one.
//!
//! | rule | why it is exact |
//! |---|---|
//! | `neg(neg x) → x` | negation only flips the sign bit |
//! | `x * 1`, `1 * x`, `x / 1 → x` | IEEE multiplication and division by one return x, -0 and NaN included |
//! | `x - 0 → x` | `-0 - +0 = -0`, `+0 - +0 = +0`; not done for `x - (-0)`, which maps `-0` to `+0` |
//! | `x + (-0) → x`, `(-0) + x → x` | `-0` is the additive identity: `+0 + -0 = +0`, `-0 + -0 = -0` |
//! | `max(x, x)`, `min(x, x) → x` | both operands equal |
//! | `select(c, x, x) → x` | both branches are the same value |
//! | `permute(permute(x, p), q) → permute(x, p∘q)`, or `x` if the composition is the identity | index bookkeeping only |
//! | `permute(x, identity) → x` | |
//! | `reshape(reshape(x)) → reshape(x)`; `reshape(x) → x` to x's own shape | row-major order is unchanged |
//! | `broadcast(broadcast(x, s), t) → broadcast(x, t)` | if x broadcasts to s and s to t, x broadcasts to t with the same elements |
//! | `broadcast(x) → x` to x's own shape | |
//! | `slice` of a whole axis, `pad` with `lo = hi = 0`, `concat` of one operand, `reduce_sum`/`reduce_max` over no axes, `cast` to the operand's dtype `→ x` | each copies its operand |
//! | `concat(slice(x, a, 0, n₁), slice(x, a, n₁, n₂), …, slice(x, a, nₖ, N), axis a) → x` | the parts are x's elements in x's order (an unrolled recurrence's inputs rejoined after `batching`) |
//! | `slice(pad(x))` along the padded axis → the slice of `x` it covers, zeros (`+0` broadcast) where it covers only padding, or a smaller pad of a slice of `x`; along another axis → `pad(slice(x))` | the same elements: each is an element of `x` or a `+0` of the padding (an autodiff cotangent of a value read through slices, cut into parts again) |
//! | `slice` of a constant (or its broadcast) → the constant broadcast to the slice's shape; `pad` of `+0` → `+0` broadcast | every element is the constant |
//! | `stop_gradient(x) → x` | the identity on values; it only matters to autodiff, which runs before |
//! | `lstm_grad` of a cotangent that is a `pad` along the time axis, or a `concat` along it of one part and `+0` constants `→` the `lstm_grad` of that part (`from` its first step) | the op reads `+0` at the steps a cotangent does not hold (the cotangent of a layer whose last step alone is read) |
//!
//! `x + 0 → x` (with `+0`) is **not** applied: for `x = -0` it gives `+0`.
//! Neither is `x * 0 → 0` (wrong for NaN, infinities and negative x).

use crate::ir::infer::infer;
use crate::ir::{BinaryOp, Dim, Graph, Op, Shape, Type, UnaryOp, ValueId};

use super::rewrite::Rewriter;

/// What a node becomes.
enum Rewrite {
    /// An existing value of the new graph.
    Value(ValueId),
    /// A different op on new values (type-checked before use).
    Node(Op, Vec<ValueId>),
    /// A new node `first` (op, operands, type) inserted before, and the
    /// node becoming `then` applied to it (both type-checked before use).
    Two((Op, Vec<ValueId>, Type), Op),
}

/// Applies the simplification rules to every node, in order (so a rule
/// sees its operands already simplified).
pub fn run(graph: &Graph) -> Graph {
    let mut rw = Rewriter::new(graph);
    for i in 0..graph.nodes.len() {
        let id = ValueId(i as u32);
        let node = graph.node(id);
        let args = rw.args(id);
        let applied = match simplify(rw.graph(), &node.op, &args) {
            Some(Rewrite::Value(v)) if rw.ty(v) == Some(&node.ty) => {
                rw.replace(id, v);
                true
            }
            Some(Rewrite::Node(op, args)) if rewrite_type_ok(rw.graph(), &op, &args, node) => {
                rw.keep_as(id, op, args);
                true
            }
            Some(Rewrite::Two((op, args, ty), then))
                if two_types_ok(rw.graph(), (&op, &args, &ty), &then, node) =>
            {
                let first = rw.insert(id, op, args, ty);
                rw.keep_as(id, then, vec![first]);
                true
            }
            _ => false,
        };
        if !applied {
            rw.keep(id);
        }
    }
    rw.finish()
}

/// Whether `op` of `args` (new values) has the type of the node it replaces.
fn rewrite_type_ok(g: &Graph, op: &Op, args: &[ValueId], node: &crate::ir::Node) -> bool {
    let mut types = Vec::with_capacity(args.len());
    for a in args {
        match g.nodes.get(a.index()) {
            Some(n) => types.push(&n.ty),
            None => return false,
        }
    }
    infer(op, &types).is_ok_and(|ty| ty == node.ty)
}

/// Whether `first` (op, new operands, type) has its stated type (a
/// `const` is a scalar of its dtype) and `then` of it the type of the node
/// it replaces.
fn two_types_ok(
    g: &Graph,
    (op, args, ty): (&Op, &[ValueId], &Type),
    then: &Op,
    node: &crate::ir::Node,
) -> bool {
    let first_ok = match op {
        Op::Const { .. } => args.is_empty() && ty.shape.rank() == 0,
        _ => {
            let types: Option<Vec<&Type>> =
                args.iter().map(|a| g.nodes.get(a.index()).map(|n| &n.ty)).collect();
            types.is_some_and(|t| infer(op, &t).is_ok_and(|t| t == *ty))
        }
    };
    first_ok && infer(then, &[ty]).is_ok_and(|t| t == node.ty)
}

/// The zeros of type `ty`: a `+0` constant broadcast to its shape.
fn zeros(ty: &Type) -> Rewrite {
    let scalar = Type::new(ty.dtype, Shape::scalar());
    Rewrite::Two((Op::Const { value: 0.0 }, vec![], scalar), Op::Broadcast { shape: ty.shape.clone() })
}

/// A slice of a padded value (`pad` along `axis`, `lo` and `hi` zeros,
/// around `x`), cut `start..end` along `cut` (of type `ty`): the slice of
/// `x` it covers, zeros, or a smaller pad of a slice of `x`.
fn slice_of_pad(
    g: &Graph,
    x: ValueId,
    (axis, lo, hi): (usize, usize, usize),
    (cut, start, end): (usize, usize, usize),
    ty: &Type,
) -> Option<Rewrite> {
    let x_ty = &g.nodes.get(x.index())?.ty;
    let slice_ty = |axis: usize, start: usize, end: usize| {
        let mut dims = x_ty.shape.dims().to_vec();
        dims[axis] = Dim::Known(end - start);
        Type::new(x_ty.dtype, Shape(dims))
    };
    if cut != axis {
        // The pad and the slice act on different axes: they commute.
        let first = (Op::Slice { axis: cut, start, end }, vec![x], slice_ty(cut, start, end));
        return Some(Rewrite::Two(first, Op::Pad { axis, lo, hi }));
    }
    let n = x_ty.shape.dims().get(axis)?.known()?;
    let (inner_start, inner_end) = (start.max(lo), end.min(lo + n));
    if inner_start >= inner_end {
        return Some(zeros(ty));
    }
    let inner = Op::Slice { axis, start: inner_start - lo, end: inner_end - lo };
    if start >= lo && end <= lo + n {
        if end - start == n {
            return Some(Rewrite::Value(x));
        }
        return Some(Rewrite::Node(inner, vec![x]));
    }
    let pad = Op::Pad { axis, lo: inner_start - start, hi: end - inner_end };
    Some(Rewrite::Two((inner, vec![x], slice_ty(axis, inner_start - lo, inner_end - lo)), pad))
}

fn is_constant(g: &Graph, v: ValueId, bits: f64) -> bool {
    g.splat(v).is_some_and(|(_, c)| c.to_bits() == bits.to_bits())
}

/// For `v`, `+0` along axis 0 but for the steps of one part: the first
/// step and the part (a `pad` along axis 0, or a `concat` along it of that
/// part and `+0` constants).
fn held_steps(g: &Graph, v: ValueId) -> Option<(usize, ValueId)> {
    let node = g.nodes.get(v.index())?;
    match node.op {
        Op::Pad { axis: 0, lo, .. } => Some((lo, *node.args.first()?)),
        Op::Concat { axis: 0 } => {
            let mut parts = node.args.iter().filter(|&&a| !is_constant(g, a, 0.0));
            let (held, None) = (*parts.next()?, parts.next()) else { return None };
            let mut first = 0;
            for &a in node.args.iter().take_while(|&&a| a != held) {
                first += g.nodes.get(a.index())?.ty.shape.dims().first()?.known()?;
            }
            Some((first, held))
        }
        _ => None,
    }
}

/// The rewrite of `op` applied to new values `args`, if a rule applies.
fn simplify(g: &Graph, op: &Op, args: &[ValueId]) -> Option<Rewrite> {
    let operand = |i: usize| args.get(i).and_then(|a| g.nodes.get(a.index()));
    let x = *args.first()?;
    let same = |v: ValueId| Some(Rewrite::Value(v));
    match op {
        Op::Unary(UnaryOp::Neg) => match operand(0)? {
            n if n.op == Op::Unary(UnaryOp::Neg) => same(*n.args.first()?),
            _ => None,
        },
        Op::Binary(b) => {
            let y = *args.get(1)?;
            match b {
                BinaryOp::Mul if is_constant(g, y, 1.0) => same(x),
                BinaryOp::Mul if is_constant(g, x, 1.0) => same(y),
                BinaryOp::Div if is_constant(g, y, 1.0) => same(x),
                BinaryOp::Sub if is_constant(g, y, 0.0) => same(x),
                BinaryOp::Add if is_constant(g, y, -0.0) => same(x),
                BinaryOp::Add if is_constant(g, x, -0.0) => same(y),
                BinaryOp::Max | BinaryOp::Min if x == y => same(x),
                _ => None,
            }
        }
        Op::Select => {
            let (a, b) = (*args.get(1)?, *args.get(2)?);
            if a == b {
                same(a)
            } else {
                None
            }
        }
        Op::Cast { to } if operand(0)?.ty.dtype == *to => same(x),
        Op::Permute { axes } => {
            let identity = |p: &[usize]| p.iter().enumerate().all(|(i, &a)| i == a);
            if identity(axes) {
                return same(x);
            }
            let inner = operand(0)?;
            match &inner.op {
                Op::Permute { axes: first } => {
                    // Result axis i is inner axis axes[i], which is x's axis first[axes[i]].
                    let composed: Option<Vec<usize>> = axes.iter().map(|&a| first.get(a).copied()).collect();
                    let composed = composed?;
                    let y = *inner.args.first()?;
                    if identity(&composed) {
                        same(y)
                    } else {
                        Some(Rewrite::Node(Op::Permute { axes: composed }, vec![y]))
                    }
                }
                _ => None,
            }
        }
        Op::Reshape { shape } | Op::Broadcast { shape } => {
            // Look through an inner op of the same kind, then drop the op if
            // the source already has the target shape.
            let inner = operand(0)?;
            if inner.ty.shape == *shape {
                return same(x);
            }
            let source = match (&inner.op, op) {
                (Op::Reshape { .. }, Op::Reshape { .. }) | (Op::Broadcast { .. }, Op::Broadcast { .. }) => {
                    *inner.args.first()?
                }
                _ => x,
            };
            if g.nodes.get(source.index())?.ty.shape == *shape {
                same(source)
            } else if source != x {
                Some(Rewrite::Node(op.clone(), vec![source]))
            } else {
                None
            }
        }
        Op::Slice { axis, start, end } => {
            let inner = operand(0)?;
            let n = inner.ty.shape.dims().get(*axis)?.known()?;
            if *start == 0 && *end == n {
                return same(x);
            }
            let ty = Type::new(inner.ty.dtype, {
                let mut dims = inner.ty.shape.dims().to_vec();
                dims[*axis] = Dim::Known(end - start);
                Shape(dims)
            });
            match &inner.op {
                Op::Pad { axis: a, lo, hi } => {
                    slice_of_pad(g, *inner.args.first()?, (*a, *lo, *hi), (*axis, *start, *end), &ty)
                }
                Op::Broadcast { .. } | Op::Const { .. } => {
                    Some(Rewrite::Node(Op::Broadcast { shape: ty.shape }, vec![g.splat(x)?.0]))
                }
                _ => None,
            }
        }
        Op::Pad { lo: 0, hi: 0, .. } => same(x),
        // Zeros padded with zeros are zeros (`+0` only: a pad adds `+0`).
        Op::Pad { axis, lo, hi } if is_constant(g, x, 0.0) => {
            let mut dims = operand(0)?.ty.shape.dims().to_vec();
            let n = dims.get(*axis)?.known()?;
            dims[*axis] = Dim::Known(n + lo + hi);
            Some(Rewrite::Node(Op::Broadcast { shape: Shape(dims) }, vec![g.splat(x)?.0]))
        }
        Op::Concat { .. } if args.len() == 1 => same(x),
        Op::Concat { axis } => {
            // Consecutive slices of one value along the concatenated axis,
            // from its start to its end, are that value.
            let source = *operand(0)?.args.first()?;
            let mut next = 0;
            for a in args {
                let part = g.nodes.get(a.index())?;
                match part.op {
                    Op::Slice { axis: s, start, end } if s == *axis && start == next => next = end,
                    _ => return None,
                }
                if *part.args.first()? != source {
                    return None;
                }
            }
            let whole = g.nodes.get(source.index())?.ty.shape.dims().get(*axis)?.known()?;
            if next == whole {
                same(source)
            } else {
                None
            }
        }
        Op::ReduceSum { axes } | Op::ReduceMax { axes } if axes.is_empty() => same(x),
        Op::LstmGrad { reverse, from } => {
            // A cotangent that is `+0` but for some steps holds those steps.
            let (mut from, mut cut) = (from.clone(), args.to_vec());
            for i in 0..3 {
                if let Some((first, held)) = held_steps(g, args.get(1 + i).copied()?) {
                    *from.get_mut(i)? += first;
                    cut[1 + i] = held;
                }
            }
            (cut != args).then_some(Rewrite::Node(Op::LstmGrad { reverse: *reverse, from }, cut))
        }
        // The identity on values: only autodiff, which comes before the
        // passes in the pipeline, tells it apart from its operand.
        Op::StopGradient => same(x),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::check_all;
    use super::run;

    /// A graph with inputs `x: f32[B, 4]` and `m: bool[B, 4]`, the given
    /// body, and output `y`.
    fn g(body: &str) -> String {
        format!(
            "graph t mode=infer {{\n  %0: f32[B, 4] = input \"x\"\n  %1: bool[B, 4] = input \"m\"\n{body}\n}}"
        )
    }

    #[test]
    fn arithmetic_identities() {
        let cases = [
            (
                "neg(neg x), even through a chain",
                g("%2: f32[B, 4] = neg %0\n %3: f32[B, 4] = neg %2\n %4: f32[B, 4] = neg %3\n \
                   %5: f32[B, 4] = neg %4\n prediction \"y\" = %5"),
                g("%2: f32[B, 4] = neg %0\n %3: f32[B, 4] = neg %0\n prediction \"y\" = %0"),
            ),
            (
                "x * 1 and 1 * x with broadcast chains of one, x / 1",
                g("%2: f32[] = const 1.0\n %3: f32[4] = broadcast %2 shape=[4]\n \
                   %4: f32[B, 4] = broadcast %3 shape=[B, 4]\n %5: f32[B, 4] = mul %0, %4\n \
                   %6: f32[B, 4] = mul %4, %5\n %7: f32[B, 4] = div %6, %4\n prediction \"y\" = %7"),
                g("%2: f32[] = const 1.0\n %3: f32[4] = broadcast %2 shape=[4]\n \
                   %4: f32[B, 4] = broadcast %2 shape=[B, 4]\n prediction \"y\" = %0"),
            ),
            (
                "1 / x, x * 1.0000001 and x - 1 stay",
                g("%2: f32[] = const 1.0\n %3: f32[B, 4] = broadcast %2 shape=[B, 4]\n \
                   %4: f32[B, 4] = div %3, %0\n %5: f32[] = const 1.0000001\n \
                   %6: f32[B, 4] = broadcast %5 shape=[B, 4]\n %7: f32[B, 4] = mul %4, %6\n \
                   %8: f32[B, 4] = sub %7, %3\n prediction \"y\" = %8"),
                g("%2: f32[] = const 1.0\n %3: f32[B, 4] = broadcast %2 shape=[B, 4]\n \
                   %4: f32[B, 4] = div %3, %0\n %5: f32[] = const 1.0000001\n \
                   %6: f32[B, 4] = broadcast %5 shape=[B, 4]\n %7: f32[B, 4] = mul %4, %6\n \
                   %8: f32[B, 4] = sub %7, %3\n prediction \"y\" = %8"),
            ),
            (
                "x - 0 and x + (-0) go; x + 0, 0 - x, x - (-0) and x * 0 stay",
                g("%2: f32[] = const 0.0\n %3: f32[B, 4] = broadcast %2 shape=[B, 4]\n \
                   %4: f32[] = const -0.0\n %5: f32[B, 4] = broadcast %4 shape=[B, 4]\n \
                   %6: f32[B, 4] = sub %0, %3\n %7: f32[B, 4] = add %6, %5\n \
                   %8: f32[B, 4] = add %5, %7\n %9: f32[B, 4] = add %8, %3\n \
                   %10: f32[B, 4] = sub %3, %9\n %11: f32[B, 4] = sub %10, %5\n \
                   %12: f32[B, 4] = mul %11, %3\n prediction \"y\" = %12"),
                g("%2: f32[] = const 0.0\n %3: f32[B, 4] = broadcast %2 shape=[B, 4]\n \
                   %4: f32[] = const -0.0\n %5: f32[B, 4] = broadcast %4 shape=[B, 4]\n \
                   %6: f32[B, 4] = add %0, %3\n \
                   %7: f32[B, 4] = sub %3, %6\n %8: f32[B, 4] = sub %7, %5\n \
                   %9: f32[B, 4] = mul %8, %3\n prediction \"y\" = %9"),
            ),
            (
                "max(x, x), min(x, x) and select(m, x, x)",
                g("%2: f32[B, 4] = max %0, %0\n %3: f32[B, 4] = min %2, %2\n \
                   %4: f32[B, 4] = select %1, %3, %3\n %5: f32[B, 4] = exp %4\n \
                   %6: f32[B, 4] = select %1, %4, %5\n prediction \"y\" = %6"),
                g("%2: f32[B, 4] = exp %0\n %3: f32[B, 4] = select %1, %0, %2\n prediction \"y\" = %3"),
            ),
            (
                "scalar operands: x * 1 of scalars, location kept on survivors",
                "graph t mode=train {\n %0: f32[] = hyper \"lr\"\n %1: f32[] = const 1.0\n \
                 %2: f32[] = mul %1, %0   @1:1-1:2\n %3: f32[] = exp %2   @2:1-2:2 from %2 mul\n \
                 loss \"l\" = %3\n}"
                    .to_string(),
                "graph t mode=train {\n %0: f32[] = hyper \"lr\"\n %1: f32[] = const 1.0\n \
                 %2: f32[] = exp %0   @2:1-2:2 from %0 hyper\n loss \"l\" = %2\n}"
                    .to_string(),
            ),
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|(n, i, e)| (*n, i.as_str(), e.as_str())).collect();
        check_all(run, &cases);
    }

    #[test]
    fn structural_identities() {
        let cases = [
            (
                "permute of permute composes; back and forth is the identity",
                "graph t mode=infer {\n %0: f32[2, 3, 5] = input \"x\"\n \
                 %1: f32[3, 5, 2] = permute %0 axes=[1, 2, 0]\n \
                 %2: f32[5, 3, 2] = permute %1 axes=[1, 0, 2]\n \
                 %3: f32[2, 3, 5] = permute %1 axes=[2, 0, 1]\n \
                 %4: f32[2, 3, 5] = permute %3 axes=[0, 1, 2]\n \
                 value \"a\" = %2\n value \"b\" = %4\n}",
                "graph t mode=infer {\n %0: f32[2, 3, 5] = input \"x\"\n \
                 %1: f32[3, 5, 2] = permute %0 axes=[1, 2, 0]\n \
                 %2: f32[5, 3, 2] = permute %0 axes=[2, 1, 0]\n \
                 value \"a\" = %2\n value \"b\" = %0\n}",
            ),
            (
                "reshape of reshape is one reshape; reshape to the own shape goes",
                "graph t mode=infer {\n %0: f32[B, 6] = input \"x\"\n \
                 %1: f32[B, 2, 3] = reshape %0 shape=[B, 2, 3]\n \
                 %2: f32[B, 3, 2] = reshape %1 shape=[B, 3, 2]\n \
                 %3: f32[B, 6] = reshape %2 shape=[B, 6]\n \
                 %4: f32[B, 3, 2] = reshape %2 shape=[B, 3, 2]\n \
                 value \"a\" = %2\n value \"b\" = %3\n value \"c\" = %4\n}",
                "graph t mode=infer {\n %0: f32[B, 6] = input \"x\"\n \
                 %1: f32[B, 2, 3] = reshape %0 shape=[B, 2, 3]\n \
                 %2: f32[B, 3, 2] = reshape %0 shape=[B, 3, 2]\n \
                 value \"a\" = %2\n value \"b\" = %0\n value \"c\" = %2\n}",
            ),
            (
                "broadcast of broadcast is one broadcast; broadcast to the own shape goes",
                "graph t mode=infer {\n %0: f32[4] = input \"x\"\n \
                 %1: f32[1, 4] = broadcast %0 shape=[1, 4]\n \
                 %2: f32[B, 3, 4] = broadcast %1 shape=[B, 3, 4]\n \
                 %3: f32[4] = broadcast %0 shape=[4]\n \
                 %4: f32[B, 4] = input \"y\"\n \
                 %5: f32[B, 4] = broadcast %4 shape=[B, 4]\n \
                 value \"a\" = %2\n value \"b\" = %3\n value \"c\" = %5\n}",
                "graph t mode=infer {\n %0: f32[4] = input \"x\"\n \
                 %1: f32[1, 4] = broadcast %0 shape=[1, 4]\n \
                 %2: f32[B, 3, 4] = broadcast %0 shape=[B, 3, 4]\n \
                 %3: f32[B, 4] = input \"y\"\n \
                 value \"a\" = %2\n value \"b\" = %0\n value \"c\" = %3\n}",
            ),
            (
                "whole-axis slice, empty pad, single concat, reductions over no axes, same-dtype cast",
                "graph t mode=infer {\n %0: f32[B, 4] = input \"x\"\n \
                 %1: i32[B] = input \"l\"\n \
                 %2: f32[B, 4] = slice %0 axis=1 start=0 end=4\n \
                 %3: f32[B, 4] = pad %2 axis=1 lo=0 hi=0\n \
                 %4: f32[B, 4] = concat %3 axis=1\n \
                 %5: f32[B, 4] = reduce_sum %4 axes=[]\n \
                 %6: f32[B, 4] = reduce_max %5 axes=[]\n \
                 %7: f32[B, 4] = cast %6 to=f32\n \
                 %8: i32[B] = cast %1 to=i32\n \
                 %9: f32[B, 3] = slice %7 axis=1 start=1 end=4\n \
                 %10: f32[B, 5] = pad %7 axis=1 lo=0 hi=1\n \
                 %11: f32[B, 8] = concat %7, %7 axis=1\n \
                 %12: f32[B] = reduce_sum %7 axes=[1]\n \
                 value \"a\" = %7\n value \"b\" = %8\n value \"c\" = %9\n value \"d\" = %10\n \
                 value \"e\" = %11\n value \"f\" = %12\n}",
                "graph t mode=infer {\n %0: f32[B, 4] = input \"x\"\n \
                 %1: i32[B] = input \"l\"\n \
                 %2: f32[B, 3] = slice %0 axis=1 start=1 end=4\n \
                 %3: f32[B, 5] = pad %0 axis=1 lo=0 hi=1\n \
                 %4: f32[B, 8] = concat %0, %0 axis=1\n \
                 %5: f32[B] = reduce_sum %0 axes=[1]\n \
                 value \"a\" = %0\n value \"b\" = %1\n value \"c\" = %2\n value \"d\" = %3\n \
                 value \"e\" = %4\n value \"f\" = %5\n}",
            ),
            (
                "reshapes through a scalar",
                "graph t mode=infer {\n %0: f32[1] = input \"x\"\n \
                 %1: f32[] = const 1.0\n \
                 %2: f32[1] = broadcast %1 shape=[1]\n \
                 %3: f32[1] = mul %0, %2\n \
                 %4: f32[1] = reshape %1 shape=[1]\n \
                 %5: f32[] = reshape %4 shape=[]\n \
                 value \"a\" = %3\n value \"b\" = %5\n}",
                "graph t mode=infer {\n %0: f32[1] = input \"x\"\n \
                 %1: f32[] = const 1.0\n \
                 %2: f32[1] = broadcast %1 shape=[1]\n \
                 %3: f32[1] = reshape %1 shape=[1]\n \
                 value \"a\" = %0\n value \"b\" = %1\n}",
            ),
        ];
        check_all(run, &cases);
    }

    /// The data movement around the slices of a value: concatenated
    /// back, or cut out of a pad (the cotangent of a value read through
    /// slices, cut into parts again).
    #[test]
    fn slices_of_concats_and_pads() {
        let g = |body: &str| format!("graph t mode=infer {{\n %0: f32[3, 4] = input \"x\"\n{body}\n}}");
        let unchanged = g(" %1: f32[3, 2] = slice %0 axis=1 start=2 end=4\n \
                             %2: f32[3, 2] = slice %0 axis=1 start=0 end=2\n \
                             %3: f32[3, 4] = concat %1, %2 axis=1\n \
                             %4: f32[3, 1] = slice %0 axis=1 start=0 end=1\n \
                             %5: f32[3, 4] = concat %4, %1, %4 axis=1\n \
                             %6: f32[1, 4] = slice %0 axis=0 start=0 end=1\n \
                             %7: f32[2, 4] = slice %0 axis=0 start=1 end=3\n \
                             %8: f32[3, 8] = concat %0, %0 axis=1\n \
                             value \"a\" = %3\n value \"b\" = %5\n value \"c\" = %8");
        check_all(
            run,
            &[
                (
                    "consecutive slices covering the axis, concatenated, are the value",
                    &g(" %1: f32[3, 1] = slice %0 axis=1 start=0 end=1\n \
                        %2: f32[3, 3] = slice %0 axis=1 start=1 end=4\n \
                        %3: f32[3, 4] = concat %1, %2 axis=1\n value \"y\" = %3"),
                    &g(" %1: f32[3, 1] = slice %0 axis=1 start=0 end=1\n \
                        %2: f32[3, 3] = slice %0 axis=1 start=1 end=4\n value \"y\" = %0"),
                ),
                ("slices out of order, with a gap, or along another axis stay", &unchanged, &unchanged),
                (
                    "a slice of a pad: the value, part of it, zeros, a smaller pad; across axes they commute",
                    &g(" %1: f32[3, 9] = pad %0 axis=1 lo=2 hi=3\n \
                        %2: f32[3, 4] = slice %1 axis=1 start=2 end=6\n \
                        %3: f32[3, 2] = slice %1 axis=1 start=3 end=5\n \
                        %4: f32[3, 2] = slice %1 axis=1 start=0 end=2\n \
                        %5: f32[3, 3] = slice %1 axis=1 start=5 end=8\n \
                        %6: f32[2, 9] = slice %1 axis=0 start=1 end=3\n \
                        value \"a\" = %2\n value \"b\" = %3\n value \"c\" = %4\n \
                        value \"d\" = %5\n value \"e\" = %6"),
                    &g(" %1: f32[3, 9] = pad %0 axis=1 lo=2 hi=3\n \
                        %2: f32[3, 2] = slice %0 axis=1 start=1 end=3\n \
                        %3: f32[] = const 0.0\n \
                        %4: f32[3, 2] = broadcast %3 shape=[3, 2]\n \
                        %5: f32[3, 1] = slice %0 axis=1 start=3 end=4\n \
                        %6: f32[3, 3] = pad %5 axis=1 lo=0 hi=2\n \
                        %7: f32[2, 4] = slice %0 axis=0 start=1 end=3\n \
                        %8: f32[2, 9] = pad %7 axis=1 lo=2 hi=3\n \
                        value \"a\" = %0\n value \"b\" = %2\n value \"c\" = %4\n \
                        value \"d\" = %6\n value \"e\" = %8"),
                ),
                (
                    "slices and pads of constants are constants; not of -0",
                    &g(" %1: f32[] = const 0.0\n \
                        %2: f32[3, 4] = broadcast %1 shape=[3, 4]\n \
                        %3: f32[3, 6] = pad %2 axis=1 lo=1 hi=1\n \
                        %4: f32[] = const 2.5\n \
                        %5: f32[3, 4] = broadcast %4 shape=[3, 4]\n \
                        %6: f32[2, 4] = slice %5 axis=0 start=1 end=3\n \
                        %7: f32[] = const -0.0\n \
                        %8: f32[3, 4] = broadcast %7 shape=[3, 4]\n \
                        %9: f32[3, 6] = pad %8 axis=1 lo=1 hi=1\n \
                        value \"a\" = %3\n value \"b\" = %6\n value \"c\" = %9"),
                    &g(" %1: f32[] = const 0.0\n \
                        %2: f32[3, 4] = broadcast %1 shape=[3, 4]\n \
                        %3: f32[3, 6] = broadcast %1 shape=[3, 6]\n \
                        %4: f32[] = const 2.5\n \
                        %5: f32[3, 4] = broadcast %4 shape=[3, 4]\n \
                        %6: f32[2, 4] = broadcast %4 shape=[2, 4]\n \
                        %7: f32[] = const -0.0\n \
                        %8: f32[3, 4] = broadcast %7 shape=[3, 4]\n \
                        %9: f32[3, 6] = pad %8 axis=1 lo=1 hi=1\n \
                        value \"a\" = %3\n value \"b\" = %6\n value \"c\" = %9"),
                ),
            ],
        );
    }

    /// The cotangents of an LSTM whose last steps alone are read: `+0`
    /// steps padded around the steps read.
    #[test]
    fn lstm_gradients_read_the_steps_a_cotangent_holds() {
        // An LSTM of hidden size 1 over 1 feature and 3 steps; `d` one
        // step of a cotangent.
        let g = |body: &str| {
            format!(
                "graph t mode=infer {{\n %0: f32[3, B, 1] = input \"x\"\n %1: f32[4, 3] = input \"w\"\n \
                 %2: f32[B, 1] = input \"s\"\n %3: f32[3, B, 9] = lstm %0, %1, %2, %2\n \
                 %4: f32[1, B, 1] = input \"d\"\n %5: f32[] = const 0.0\n{body}\n}}"
            )
        };
        let unchanged = g(" %6: f32[2, B, 1] = slice %0 axis=0 start=0 end=2\n \
                            %7: f32[3, B, 1] = concat %6, %4 axis=0\n \
                            %8: f32[] = const -0.0\n \
                            %9: f32[2, B, 1] = broadcast %8 shape=[2, B, 1]\n \
                            %10: f32[3, B, 1] = concat %9, %4 axis=0\n \
                            %11: f32[3, B, 4] = broadcast %5 shape=[3, B, 4]\n \
                            %12: f32[3, B, 6] = lstm_grad %3, %7, %10, %11, %1, %2 from=[0, 0, 0]\n \
                            value \"y\" = %12");
        check_all(
            run,
            &[
                (
                    "a pad along the time axis, a concat with +0 steps: the steps held; whole +0 stays",
                    &g(" %6: f32[2, B, 1] = broadcast %5 shape=[2, B, 1]\n \
                        %7: f32[3, B, 1] = concat %6, %4 axis=0\n \
                        %8: f32[3, B, 1] = pad %4 axis=0 lo=1 hi=1\n \
                        %9: f32[3, B, 4] = broadcast %5 shape=[3, B, 4]\n \
                        %10: f32[3, B, 6] = lstm_grad %3, %7, %8, %9, %1, %2 from=[0, 0, 0]\n \
                        value \"y\" = %10"),
                    &g(" %6: f32[2, B, 1] = broadcast %5 shape=[2, B, 1]\n \
                        %7: f32[3, B, 1] = concat %6, %4 axis=0\n \
                        %8: f32[3, B, 1] = pad %4 axis=0 lo=1 hi=1\n \
                        %9: f32[3, B, 4] = broadcast %5 shape=[3, B, 4]\n \
                        %10: f32[3, B, 6] = lstm_grad %3, %4, %4, %9, %1, %2 from=[2, 1, 0]\n \
                        value \"y\" = %10"),
                ),
                ("other values and -0 steps stay", &unchanged, &unchanged),
            ],
        );
        // Steps past the last, or a whole cotangent said to start later.
        for (operand, from) in [("%4", "[3, 0, 0]"), ("%4", "[2, 1, 0]"), ("%0", "[1, 0, 0]")] {
            let text = g(&format!(
                " %6: f32[3, B, 4] = broadcast %5 shape=[3, B, 4]\n \
                 %7: f32[3, B, 6] = lstm_grad %3, {operand}, %0, %6, %1, %2 from={from}\n value \"y\" = %7"
            ));
            let graph = crate::ir::parse::parse(&text).unwrap();
            let err = crate::ir::verify::verify(&graph).expect_err(&text).join("\n");
            assert!(err.contains("holds steps from"), "{from}: {err}");
        }
    }

    #[test]
    fn stop_gradient_is_its_operand() {
        check_all(
            run,
            &[(
                "stop_gradient of any dtype goes, also as an output",
                "graph t mode=infer {\n %0: f32[B, 4] = input \"x\"\n %1: i32[B] = constant \"l\"\n \
                 %2: f32[B, 4] = stop_gradient %0\n %3: f32[B, 4] = exp %2\n \
                 %4: i32[B] = stop_gradient %1\n %5: f32[B, 4] = stop_gradient %3\n \
                 value \"a\" = %5\n value \"b\" = %4\n}",
                "graph t mode=infer {\n %0: f32[B, 4] = input \"x\"\n %1: i32[B] = constant \"l\"\n \
                 %2: f32[B, 4] = exp %0\n value \"a\" = %2\n value \"b\" = %1\n}",
            )],
        );
    }
}
