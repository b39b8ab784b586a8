//! Products of the steps of a sequence with one matrix become one product.
//!
//! A recurrence unrolled over the steps of `x: [B, T, F]` multiplies each
//! step by the same input weight (`x_t · W_ih` of an LSTM or GRU, a
//! `dense` applied to every step):
//!
//! ```text
//! %s = slice %x axis=1 start=t end=t+1      # [B, 1, F]
//! %a = reshape %s shape=[B, F]
//! %m = matmul %a, %w                        # [B, N], %w: [F, N]
//! ```
//!
//! None of these products depends on the recurrence, so all of them are
//! one product of the whole sequence, `y = matmul(x, broadcast(w, [B, F,
//! N]))` (`[B, T, N]`, which code generation runs as one `[B·T, F] · [F,
//! N]` GEMM), and each step's product is its slice `reshape(slice(y, axis
//! 1, t, t + 1), [B, N])`, a view. A GEMM of 64 rows and 32 columns of `x`
//! per step is dominated by packing and synchronisation; one of 4,096 rows
//! splits among threads and runs at the library's speed.
//!
//! When every step's product is read only by `add(product, c)` with one
//! broadcast bias `c = broadcast(b, [B, N])`, the bias is added once to the
//! whole product and the sums are the slices.
//!
//! Exactness: each element is the same dot product of the same numbers in
//! the same order, and each bias sum the same addition; nothing changes but
//! where the values are computed. The rewrite applies to two or more steps
//! of one `x` and one `w`.

use std::collections::BTreeMap;

use crate::ir::{BinaryOp, Dim, Graph, Op, Shape, Type, ValueId};

use super::rewrite::Rewriter;

/// One step's product: `matmul(reshape(slice(x, 1, t, t + 1)), w)`.
struct Step {
    t: usize,
    product: ValueId,
    /// The `add` of the product and the group's bias, if the bias is folded.
    sum: Option<ValueId>,
}

/// The products of one sequence and one matrix.
struct Group {
    x: ValueId,
    w: ValueId,
    steps: Vec<Step>,
    /// The bias vector `b` of every step's `add(product, broadcast(b))`.
    bias: Option<ValueId>,
}

/// Rewrites the per-step products of every sequence with one matrix into
/// one product (see the module documentation).
pub fn run(graph: &Graph) -> Graph {
    let groups = groups(graph);
    if groups.is_empty() {
        return graph.clone();
    }
    // What happens at each old node: the group whose whole product is
    // computed before it, and the step whose slice replaces it.
    let mut first: BTreeMap<ValueId, usize> = BTreeMap::new();
    let mut replaced: BTreeMap<ValueId, (usize, usize)> = BTreeMap::new();
    for (g, group) in groups.iter().enumerate() {
        let start = group.steps.iter().map(|s| s.product).min().expect("a group has steps");
        first.insert(start, g);
        for s in &group.steps {
            replaced.insert(s.sum.unwrap_or(s.product), (g, s.t));
        }
    }
    let mut whole: Vec<Option<ValueId>> = vec![None; groups.len()];
    let mut rw = Rewriter::new(graph);
    for i in 0..graph.nodes.len() {
        let id = ValueId(i as u32);
        if let Some(&g) = first.get(&id) {
            whole[g] = Some(whole_product(&mut rw, graph, &groups[g], id));
        }
        match replaced.get(&id).and_then(|&(g, t)| Some((whole[g]?, t))) {
            Some((y, t)) => {
                let step = step_of(&mut rw, graph, id, y, t);
                rw.replace(id, step);
            }
            None => {
                rw.keep(id);
            }
        }
    }
    rw.finish()
}

/// The product of the whole sequence (plus the bias), inserted before old
/// node `at`.
fn whole_product(rw: &mut Rewriter, graph: &Graph, group: &Group, at: ValueId) -> ValueId {
    let x_dims = graph.ty(group.x).shape.dims().to_vec();
    let w_dims = graph.ty(group.w).shape.dims().to_vec();
    let (x, w) = (rw.value(group.x).expect("x precedes"), rw.value(group.w).expect("w precedes"));
    let wide = Shape(vec![x_dims[0].clone(), w_dims[0].clone(), w_dims[1].clone()]);
    let out = Shape(vec![x_dims[0].clone(), x_dims[1].clone(), w_dims[1].clone()]);
    let wb = rw.insert(at, Op::Broadcast { shape: wide.clone() }, vec![w], Type::f32(wide));
    let y = rw.insert(at, Op::MatMul, vec![x, wb], Type::f32(out.clone()));
    match group.bias {
        Some(b) => {
            let b = rw.value(b).expect("the bias precedes");
            let bb = rw.insert(at, Op::Broadcast { shape: out.clone() }, vec![b], Type::f32(out.clone()));
            rw.insert(at, Op::Binary(BinaryOp::Add), vec![y, bb], Type::f32(out))
        }
        None => y,
    }
}

/// Step `t` of the whole product `y`, standing for old node `id` (of shape
/// `[B, N]`).
fn step_of(rw: &mut Rewriter, graph: &Graph, id: ValueId, y: ValueId, t: usize) -> ValueId {
    let dims = graph.ty(id).shape.dims().to_vec();
    let sliced = Shape(vec![dims[0].clone(), Dim::Known(1), dims[1].clone()]);
    let s = rw.insert(id, Op::Slice { axis: 1, start: t, end: t + 1 }, vec![y], Type::f32(sliced));
    let shape = graph.ty(id).shape.clone();
    rw.insert(id, Op::Reshape { shape: shape.clone() }, vec![s], Type::f32(shape))
}

/// For a `matmul` of one step of a sequence: the sequence, the step and
/// the matrix.
fn step_product(graph: &Graph, m: ValueId) -> Option<(ValueId, usize, ValueId)> {
    let node = graph.node(m);
    if node.op != Op::MatMul {
        return None;
    }
    let (a, w) = (node.args[0], node.args[1]);
    let Op::Reshape { .. } = graph.node(a).op else { return None };
    let s = graph.node(a).args[0];
    let Op::Slice { axis: 1, start, end } = graph.node(s).op else { return None };
    let x = graph.node(s).args[0];
    let (xd, ad, wd) = (graph.ty(x).shape.dims(), graph.ty(a).shape.dims(), graph.ty(w).shape.dims());
    let fits = end == start + 1
        && xd.len() == 3
        && wd.len() == 2
        && ad.len() == 2
        && ad[0] == xd[0]
        && ad[1] == xd[2]
        && wd[0] == xd[2];
    fits.then_some((x, start, w))
}

/// For the `add(product, broadcast(b, [B, N]))` that is the only reader of
/// `product`: the add and `b` (a vector of `N`).
fn bias_sum(
    graph: &Graph,
    readers: &[Vec<ValueId>],
    uses: &[usize],
    product: ValueId,
) -> Option<(ValueId, ValueId)> {
    if uses[product.index()] != 1 {
        return None;
    }
    let &[sum] = readers[product.index()].as_slice() else { return None };
    let node = graph.node(sum);
    if node.op != Op::Binary(BinaryOp::Add) || node.ty != *graph.ty(product) {
        return None;
    }
    let c = if node.args[0] == product { node.args[1] } else { node.args[0] };
    if c == product || !matches!(graph.node(c).op, Op::Broadcast { .. }) {
        return None;
    }
    let b = graph.node(c).args[0];
    let n = graph.ty(product).shape.dims()[1].clone();
    (graph.ty(b).shape.dims() == [n]).then_some((sum, b))
}

/// The groups of two or more step products of one sequence and matrix.
fn groups(graph: &Graph) -> Vec<Group> {
    let mut by_key: BTreeMap<(ValueId, ValueId), Vec<(usize, ValueId)>> = BTreeMap::new();
    for i in 0..graph.nodes.len() {
        let m = ValueId(i as u32);
        if let Some((x, t, w)) = step_product(graph, m) {
            by_key.entry((x, w)).or_default().push((t, m));
        }
    }
    by_key.retain(|_, steps| steps.len() > 1);
    if by_key.is_empty() {
        return vec![];
    }
    let uses = graph.use_counts();
    let mut readers: Vec<Vec<ValueId>> = vec![vec![]; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for a in &node.args {
            readers[a.index()].push(ValueId(i as u32));
        }
    }
    let mut out = vec![];
    for ((x, w), steps) in by_key {
        let start = steps.iter().map(|&(_, m)| m).min().expect("steps");
        // The bias folds when every step adds the same vector, defined
        // before the first step's product.
        let sums: Option<Vec<(ValueId, ValueId)>> =
            steps.iter().map(|&(_, m)| bias_sum(graph, &readers, &uses, m)).collect();
        let bias = sums.as_ref().and_then(|s| {
            let b = s[0].1;
            (s.iter().all(|&(_, bi)| bi == b) && b < start).then_some(b)
        });
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, &(t, product))| Step { t, product, sum: bias.and(sums.as_ref().map(|s| s[i].0)) })
            .collect();
        out.push(Group { x, w, steps, bias });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::run;
    use crate::ir::interp::{example_inputs, run as interpret};
    use crate::opt::testing::{check_all, parse_ok};

    #[test]
    fn step_products_with_one_matrix_become_one_product() {
        let cases = [
            (
                "two steps with a shared bias: one product plus the bias, steps are slices",
                r#"graph t mode=infer {
                  %0: f32[B, 3, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[4] = input "b"
                  %3: f32[B, 4] = broadcast %2 shape=[B, 4]
                  %4: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %5: f32[B, 2] = reshape %4 shape=[B, 2]
                  %6: f32[B, 4] = matmul %5, %1
                  %7: f32[B, 4] = add %6, %3
                  %8: f32[B, 1, 2] = slice %0 axis=1 start=2 end=3
                  %9: f32[B, 2] = reshape %8 shape=[B, 2]
                  %10: f32[B, 4] = matmul %9, %1
                  %11: f32[B, 4] = add %3, %10
                  %12: f32[B, 4] = mul %7, %11
                  prediction "y" = %12
                }"#,
                r#"graph t mode=infer {
                  %0: f32[B, 3, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[4] = input "b"
                  %3: f32[B, 4] = broadcast %2 shape=[B, 4]
                  %4: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %5: f32[B, 2] = reshape %4 shape=[B, 2]
                  %6: f32[B, 2, 4] = broadcast %1 shape=[B, 2, 4]
                  %7: f32[B, 3, 4] = matmul %0, %6
                  %8: f32[B, 3, 4] = broadcast %2 shape=[B, 3, 4]
                  %9: f32[B, 3, 4] = add %7, %8
                  %10: f32[B, 4] = matmul %5, %1
                  %11: f32[B, 1, 4] = slice %9 axis=1 start=0 end=1
                  %12: f32[B, 4] = reshape %11 shape=[B, 4]
                  %13: f32[B, 1, 2] = slice %0 axis=1 start=2 end=3
                  %14: f32[B, 2] = reshape %13 shape=[B, 2]
                  %15: f32[B, 4] = matmul %14, %1
                  %16: f32[B, 1, 4] = slice %9 axis=1 start=2 end=3
                  %17: f32[B, 4] = reshape %16 shape=[B, 4]
                  %18: f32[B, 4] = mul %12, %17
                  prediction "y" = %18
                }"#,
            ),
            (
                "a product read twice: no bias folded, the products are slices",
                r#"graph t mode=infer {
                  %0: f32[B, 2, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %3: f32[B, 2] = reshape %2 shape=[B, 2]
                  %4: f32[B, 4] = matmul %3, %1
                  %5: f32[B, 1, 2] = slice %0 axis=1 start=1 end=2
                  %6: f32[B, 2] = reshape %5 shape=[B, 2]
                  %7: f32[B, 4] = matmul %6, %1
                  %8: f32[B, 4] = mul %4, %7
                  %9: f32[B, 4] = add %8, %4
                  prediction "y" = %9
                }"#,
                r#"graph t mode=infer {
                  %0: f32[B, 2, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %3: f32[B, 2] = reshape %2 shape=[B, 2]
                  %4: f32[B, 2, 4] = broadcast %1 shape=[B, 2, 4]
                  %5: f32[B, 2, 4] = matmul %0, %4
                  %6: f32[B, 1, 4] = slice %5 axis=1 start=0 end=1
                  %7: f32[B, 4] = reshape %6 shape=[B, 4]
                  %8: f32[B, 1, 2] = slice %0 axis=1 start=1 end=2
                  %9: f32[B, 2] = reshape %8 shape=[B, 2]
                  %10: f32[B, 1, 4] = slice %5 axis=1 start=1 end=2
                  %11: f32[B, 4] = reshape %10 shape=[B, 4]
                  %12: f32[B, 4] = mul %7, %11
                  %13: f32[B, 4] = add %12, %7
                  prediction "y" = %13
                }"#,
            ),
        ];
        check_all(run, &cases);
        // The same outputs, bit for bit, in the reference interpreter.
        for (case, input, _) in &cases {
            let g = parse_ok(input);
            let dims = crate::pipeline::batch_dims(&g, 3);
            let inputs = example_inputs::<f32>(&g, &dims, 5).expect("inputs");
            let (want, got) =
                (interpret(&g, &inputs).expect("runs"), interpret(&run(&g), &inputs).expect("runs"));
            for ((n, w), (_, v)) in want.iter().zip(&got) {
                let bits = |t: &crate::ir::interp::Tensor<f32>| match t {
                    crate::ir::interp::Tensor::Float(a) => a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    _ => vec![],
                };
                assert_eq!(bits(w), bits(v), "{case}: `{n}` differs");
            }
        }
        // One step, or steps with different matrices: nothing to batch.
        for source in [
            r#"graph t mode=infer {
                  %0: f32[B, 2, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %3: f32[B, 2] = reshape %2 shape=[B, 2]
                  %4: f32[B, 4] = matmul %3, %1
                  prediction "y" = %4
                }"#,
            r#"graph t mode=infer {
                  %0: f32[B, 2, 2] = input "x"
                  %1: f32[2, 4] = input "w"
                  %2: f32[2, 4] = input "v"
                  %3: f32[B, 1, 2] = slice %0 axis=1 start=0 end=1
                  %4: f32[B, 2] = reshape %3 shape=[B, 2]
                  %5: f32[B, 4] = matmul %4, %1
                  %6: f32[B, 1, 2] = slice %0 axis=1 start=1 end=2
                  %7: f32[B, 2] = reshape %6 shape=[B, 2]
                  %8: f32[B, 4] = matmul %7, %2
                  %9: f32[B, 4] = add %5, %8
                  prediction "y" = %9
                }"#,
        ] {
            let g = parse_ok(source);
            assert!(crate::opt::rewrite::same_graph(&run(&g), &g), "changed:\n{source}");
        }
    }
}
