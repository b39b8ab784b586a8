//! Sums of pads that tile an axis become one concatenation.
//!
//! The gradient of `slice` is `pad` (the slice's gradient placed at its
//! offset, zeros elsewhere), and the gradients of several slices of one
//! value are added. When the slices cut an axis into pieces — the four
//! gates an LSTM cuts out of one `[B, 4H]` product, the three of a GRU —
//! the gradient is a sum of pads whose ranges tile the axis:
//!
//! ```text
//! add(add(add(pad(di, lo=0, hi=3H), pad(df, lo=H, hi=2H)), pad(dg, lo=2H, hi=H)), pad(do, lo=3H, hi=0))
//! ```
//!
//! Every element of that sum is one piece's element plus zeros, which is
//! `concat(di, df, dg, do)`: one copy instead of a copy per piece into a
//! zeroed value of the full size and an add per piece. The rewrite applies
//! to an `add` whose operands, through `add`s that nothing else reads, are
//! all pads of its own type along one axis with ranges that cover the axis
//! exactly once; the pieces are concatenated in axis order.
//!
//! Exactness: each element is the same piece element, except that a `-0`
//! element of a piece stays `-0` in the concatenation where the sum of it
//! and `+0` padding gave `+0` (the only difference; values, infinities and
//! NaN are unchanged).

use crate::ir::infer::infer;
use crate::ir::{BinaryOp, Graph, Op, ValueId};

use super::rewrite::Rewriter;

/// Rewrites every sum of pads that tiles an axis (see the module
/// documentation) into a concatenation.
pub fn run(graph: &Graph) -> Graph {
    let uses = graph.use_counts();
    let mut rw = Rewriter::new(graph);
    for i in 0..graph.nodes.len() {
        let id = ValueId(i as u32);
        match tiling(graph, &uses, id) {
            Some((axis, pieces)) => {
                let args: Vec<ValueId> = pieces.iter().map(|&p| rw.args(p)[0]).collect();
                let op = Op::Concat { axis };
                let types: Option<Vec<_>> = args.iter().map(|&a| rw.ty(a)).collect();
                if types.is_some_and(|t| infer(&op, &t).is_ok_and(|ty| ty == graph.node(id).ty)) {
                    rw.keep_as(id, op, args);
                } else {
                    rw.keep(id);
                }
            }
            None => {
                rw.keep(id);
            }
        }
    }
    rw.finish()
}

/// For an `add` that is a sum of pads tiling one axis: the axis and the
/// pads in axis order.
fn tiling(graph: &Graph, uses: &[usize], id: ValueId) -> Option<(usize, Vec<ValueId>)> {
    let node = graph.node(id);
    if node.op != Op::Binary(BinaryOp::Add) {
        return None;
    }
    let mut leaves = vec![];
    let mut stack: Vec<ValueId> = node.args.clone();
    while let Some(v) = stack.pop() {
        let n = graph.node(v);
        if n.op == Op::Binary(BinaryOp::Add) && uses[v.index()] == 1 && n.ty == node.ty {
            stack.extend(n.args.iter().copied());
        } else {
            leaves.push(v);
        }
    }
    let mut axis = None;
    let mut pieces: Vec<(usize, usize, ValueId)> = vec![];
    for &v in &leaves {
        let n = graph.node(v);
        let Op::Pad { axis: a, lo, hi } = n.op else { return None };
        if n.ty != node.ty || *axis.get_or_insert(a) != a {
            return None;
        }
        let size = n.ty.shape.0.get(a)?.known()?;
        pieces.push((lo, size.checked_sub(hi)?, v));
    }
    let axis = axis?;
    let size = node.ty.shape.0.get(axis)?.known()?;
    pieces.sort_by_key(|&(lo, _, _)| lo);
    let mut at = 0;
    for &(lo, end, _) in &pieces {
        if lo != at || end <= lo {
            return None;
        }
        at = end;
    }
    (at == size && pieces.len() > 1).then(|| (axis, pieces.into_iter().map(|(_, _, v)| v).collect()))
}

#[cfg(test)]
mod tests {
    use super::run;
    use crate::ir::interp::{example_inputs, run as interpret};
    use crate::opt::testing::{check, check_all, parse_ok};

    #[test]
    fn sums_of_pads_that_tile_an_axis() {
        let cases = [(
            "three pieces added in any order become one concat in axis order",
            r#"graph t mode=infer {
                  %0: f32[B, 2] = input "a"
                  %1: f32[B, 3] = input "b"
                  %2: f32[B, 1] = input "c"
                  %3: f32[B, 6] = pad %1 axis=1 lo=2 hi=1
                  %4: f32[B, 6] = pad %2 axis=1 lo=5 hi=0
                  %5: f32[B, 6] = add %3, %4
                  %6: f32[B, 6] = pad %0 axis=1 lo=0 hi=4
                  %7: f32[B, 6] = add %6, %5
                  prediction "y" = %7
                }"#,
            r#"graph t mode=infer {
                  %0: f32[B, 2] = input "a"
                  %1: f32[B, 3] = input "b"
                  %2: f32[B, 1] = input "c"
                  %3: f32[B, 6] = pad %1 axis=1 lo=2 hi=1
                  %4: f32[B, 6] = pad %2 axis=1 lo=5 hi=0
                  %5: f32[B, 6] = add %3, %4
                  %6: f32[B, 6] = pad %0 axis=1 lo=0 hi=4
                  %7: f32[B, 6] = concat %0, %1, %2 axis=1
                  prediction "y" = %7
                }"#,
        )];
        check_all(run, &cases);
        let unchanged = [
            (
                "a gap between the pieces: the zeros are the sum's",
                r#"graph t mode=infer {
                  %0: f32[B, 2] = input "a"
                  %1: f32[B, 2] = input "b"
                  %2: f32[B, 5] = pad %0 axis=1 lo=0 hi=3
                  %3: f32[B, 5] = pad %1 axis=1 lo=3 hi=0
                  %4: f32[B, 5] = add %2, %3
                  prediction "y" = %4
                }"#,
            ),
            (
                "overlapping pieces add there",
                r#"graph t mode=infer {
                  %0: f32[B, 3] = input "a"
                  %1: f32[B, 2] = input "b"
                  %2: f32[B, 4] = pad %0 axis=1 lo=0 hi=1
                  %3: f32[B, 4] = pad %1 axis=1 lo=2 hi=0
                  %4: f32[B, 4] = add %2, %3
                  prediction "y" = %4
                }"#,
            ),
            (
                "a partial sum read elsewhere is a leaf, and not a pad",
                r#"graph t mode=infer {
                  %0: f32[B, 1] = input "a"
                  %1: f32[B, 1] = input "b"
                  %2: f32[B, 1] = input "c"
                  %3: f32[B, 3] = pad %0 axis=1 lo=0 hi=2
                  %4: f32[B, 3] = pad %1 axis=1 lo=1 hi=1
                  %5: f32[B, 3] = add %3, %4
                  %6: f32[B, 3] = pad %2 axis=1 lo=2 hi=0
                  %7: f32[B, 3] = add %5, %6
                  prediction "y" = %7
                  prediction "partial" = %5
                }"#,
            ),
            (
                "pieces along different axes",
                r#"graph t mode=infer {
                  %0: f32[1, 2] = input "a"
                  %1: f32[2, 1] = input "b"
                  %2: f32[2, 2] = pad %0 axis=0 lo=0 hi=1
                  %3: f32[2, 2] = pad %1 axis=1 lo=1 hi=0
                  %4: f32[2, 2] = add %2, %3
                  prediction "y" = %4
                }"#,
            ),
        ];
        for (case, text) in unchanged {
            check(run, case, text, text);
        }
    }

    #[test]
    fn the_concat_computes_the_sum() {
        let g = parse_ok(
            r#"graph t mode=infer {
              %0: f32[3, 2] = input "a"
              %1: f32[3, 3] = input "b"
              %2: f32[3, 5] = pad %1 axis=1 lo=2 hi=0
              %3: f32[3, 5] = pad %0 axis=1 lo=0 hi=3
              %4: f32[3, 5] = add %2, %3
              prediction "y" = %4
            }"#,
        );
        let inputs = example_inputs::<f64>(&g, &Default::default(), 7).expect("inputs");
        let before = interpret::<f64>(&g, &inputs).expect("runs");
        let after = interpret::<f64>(&run(&g), &inputs).expect("runs");
        assert_eq!(before, after);
    }
}
