//! Fusion decisions on small graphs: IR text in, report text out.

use super::{partition, report, Placement};
use crate::ir::parse::parse;
use crate::ir::ValueId;

fn fused(text: &str) -> String {
    let graph = parse(text).unwrap_or_else(|e| panic!("bad test IR: {e}"));
    report(&graph, &partition(&graph))
}

/// The body of the report without its first line, trimmed per line.
fn body(report: &str) -> String {
    report.lines().skip(1).map(str::trim).collect::<Vec<_>>().join("\n")
}

fn expect(text: &str, expected: &str) {
    let got = body(&fused(text));
    let want: String =
        expected.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
    assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}");
}

#[test]
fn fusion_decisions() {
    let cases = [
        (
            "a derivative computed for a later loop only moves into it: σ·(1 − σ) is read by the loop \
             after the product, and σ is stored anyway (the product reads it)",
            r#"graph t mode=train {
              %0: f32[8, 8] = input "x"
              %1: f32[8, 8] = input "w"
              %2: f32[8, 8] = sigmoid %0
              %3: f32[8, 8] = matmul %2, %1
              %4: f32[] = const 1.0
              %5: f32[8, 8] = broadcast %4 shape=[8, 8]
              %6: f32[8, 8] = sub %5, %2
              %7: f32[8, 8] = mul %2, %6
              %8: f32[8, 8] = permute %3 axes=[1, 0]
              %9: f32[8, 8] = mul %8, %7
              prediction "y" = %9
            }"#,
            "k0 loop [8, 8]
             %2 sigmoid: f32[8, 8]
             inputs: %0
             outputs: %2
             k1 matmul [8, 8]
             %3 matmul: f32[8, 8]
             inputs: %1, %2
             outputs: %3
             k2 loop [8, 8]
             %6 sub: f32[8, 8]
             %7 mul: f32[8, 8]
             %9 mul: f32[8, 8]
             inputs: %2, %3
             outputs: %9
             views:
             %5 broadcast of %4
             %8 permute of %3
             inline: %4 const
             boundaries:
             %2 sigmoid (k0) -> %3 matmul (k1): matmul is a contraction (GEMM)
             %2 sigmoid (k0) -> %6 sub (k2): fusing would create a cycle through another kernel; value has 2 consumers in different kernels
             %2 sigmoid (k0) -> %7 mul (k2): fusing would create a cycle through another kernel; value has 2 consumers in different kernels
             %3 matmul (k1) -> %9 mul (k2): matmul is a contraction (GEMM); the reader is not on its epilogue chain",
        ),
        (
            "the derivative stays where its operand would otherwise become a new store",
            r#"graph t mode=train {
              %0: f32[8, 8] = input "x"
              %1: f32[8, 8] = input "w"
              %2: f32[8, 8] = exp %0
              %3: f32[8, 8] = sigmoid %2
              %4: f32[8, 8] = matmul %3, %1
              %5: f32[8, 8] = mul %2, %2
              %6: f32[8, 8] = neg %5
              %7: f32[8, 8] = permute %4 axes=[1, 0]
              %8: f32[8, 8] = mul %7, %6
              prediction "y" = %8
            }"#,
            "k0 loop [8, 8]
             %2 exp: f32[8, 8]
             %3 sigmoid: f32[8, 8]
             %5 mul: f32[8, 8]
             %6 neg: f32[8, 8]
             inputs: %0
             outputs: %3, %6
             k1 matmul [8, 8]
             %4 matmul: f32[8, 8]
             inputs: %1, %3
             outputs: %4
             k2 loop [8, 8]
             %8 mul: f32[8, 8]
             inputs: %4, %6
             outputs: %8
             views:
             %7 permute of %4
             inline: -
             boundaries:
             %3 sigmoid (k0) -> %4 matmul (k1): matmul is a contraction (GEMM)
             %4 matmul (k1) -> %8 mul (k2): matmul is a contraction (GEMM); the reader is not on its epilogue chain
             %6 neg (k0) -> %8 mul (k2): fusing would create a cycle through another kernel",
        ),
        (
            "dense layer: bias and relu are the matmul's epilogue; the transposed weight is a view",
            r#"graph t mode=train {
              %0: f32[B, 4] = input "x"
              %1: f32[3, 4] = param "w" role=weight init=zeros
              %2: f32[3] = param "b" role=bias init=zeros
              %3: f32[4, 3] = permute %1 axes=[1, 0]
              %4: f32[B, 3] = matmul %0, %3
              %5: f32[B, 3] = broadcast %2 shape=[B, 3]
              %6: f32[B, 3] = add %4, %5
              %7: f32[] = const 0.0
              %8: f32[B, 3] = broadcast %7 shape=[B, 3]
              %9: f32[B, 3] = max %6, %8
              prediction "y" = %9
            }"#,
            "k0 matmul [B, 3]
             %4 matmul: f32[B, 3]
             %6 add: f32[B, 3] (epilogue)
             %9 max: f32[B, 3] (epilogue)
             inputs: %0, %1, %2
             outputs: %9
             views:
             %3 permute of %1
             %5 broadcast of %2
             %8 broadcast of %7
             inline: %7 const
             boundaries:",
        ),
        (
            "a sum of products accumulates: each product is added onto the running sum by its GEMM; \
             a product added to anything else keeps the add as its epilogue",
            r#"graph t mode=infer {
              %0: f32[4, 3] = input "a"
              %1: f32[3, 5] = input "b"
              %2: f32[4, 3] = input "c"
              %3: f32[4, 5] = input "r"
              %4: f32[4, 5] = matmul %0, %1
              %5: f32[4, 5] = matmul %2, %1
              %6: f32[4, 5] = add %4, %5
              %7: f32[4, 5] = matmul %0, %1
              %8: f32[4, 5] = add %7, %6
              %9: f32[4, 5] = matmul %2, %1
              %10: f32[4, 5] = add %9, %3
              prediction "s" = %8
              prediction "t" = %10
            }"#,
            "k0 matmul [4, 5]
             %4 matmul: f32[4, 5]
             inputs: %0, %1
             outputs: %4
             k1 matmul [4, 5]
             %5 matmul: f32[4, 5]
             %6 add: f32[4, 5] (accumulate)
             inputs: %1, %2, %4
             outputs: %6
             k2 matmul [4, 5]
             %7 matmul: f32[4, 5]
             %8 add: f32[4, 5] (accumulate)
             inputs: %0, %1, %6
             outputs: %8
             k3 matmul [4, 5]
             %9 matmul: f32[4, 5]
             %10 add: f32[4, 5] (epilogue)
             inputs: %1, %2, %3
             outputs: %10
             views:
             inline: -
             boundaries:
             %4 matmul (k0) -> %6 add (k1): add accumulates the product of k1 onto it (C = A·B + C)
             %6 add (k1) -> %8 add (k2): add accumulates the product of k2 onto it (C = A·B + C)",
        ),
        (
            "softmax: the max reduction ends a kernel; exp and the sum fuse; the division reads a broadcast",
            r#"graph t mode=infer {
              %0: f32[B, 10] = input "x"
              %1: f32[B] = reduce_max %0 axes=[1]
              %2: f32[B, 1] = reshape %1 shape=[B, 1]
              %3: f32[B, 10] = broadcast %2 shape=[B, 10]
              %4: f32[B, 10] = sub %0, %3
              %5: f32[B, 10] = exp %4
              %6: f32[B] = reduce_sum %5 axes=[1]
              %7: f32[B, 1] = reshape %6 shape=[B, 1]
              %8: f32[B, 10] = broadcast %7 shape=[B, 10]
              %9: f32[B, 10] = div %5, %8
              prediction "p" = %9
            }"#,
            "k0 loop [B, 10]
             %1 reduce_max: f32[B]
             inputs: %0
             outputs: %1
             k1 loop [B, 10]
             %4 sub: f32[B, 10]
             %5 exp: f32[B, 10]
             %6 reduce_sum: f32[B]
             inputs: %0, %1
             outputs: %5, %6
             k2 loop [B, 10]
             %9 div: f32[B, 10]
             inputs: %5, %6
             outputs: %9
             views:
             %2 reshape of %1
             %3 broadcast of %1
             %7 reshape of %6
             %8 broadcast of %6
             inline: -
             boundaries:
             %1 reduce_max (k0) -> %4 sub (k1): reduction output read by a later loop
             %5 exp (k1) -> %9 div (k2): fusing would create a cycle through another kernel
             %6 reduce_sum (k1) -> %9 div (k2): reduction output read by a later loop",
        ),
        (
            "two independent chains merge into one loop; a permuted output is materialised by a copy",
            r#"graph t mode=train {
              %0: f32[2, 3] = input "a"
              %1: f32[2, 3] = input "b"
              %2: f32[2, 3] = exp %0
              %3: f32[2, 3] = neg %1
              %4: f32[2, 3] = mul %2, %3
              %5: f32[3, 2] = permute %4 axes=[1, 0]
              %6: f32[3] = reduce_sum %5 axes=[1]
              value "t" = %5
              value "s" = %6
            }"#,
            "k0 loop [2, 3]
             %2 exp: f32[2, 3]
             %3 neg: f32[2, 3]
             %4 mul: f32[2, 3]
             inputs: %0, %1
             outputs: %4
             k1 copy [3, 2]
             %5 permute: f32[3, 2]
             inputs: %4
             outputs: %5
             k2 loop [3, 2]
             %6 reduce_sum: f32[3]
             inputs: %5
             outputs: %6
             views:
             inline: -
             boundaries:
             %4 mul (k0) -> %5 permute (k1): permute is materialised (graph output, or read by a kernel that needs contiguous memory)
             %5 permute (k1) -> %6 reduce_sum (k2): permute is its own kernel",
        ),
        (
            "exact gelu after a product: the epilogue holds values that combine two of its values \
             (0.5·x and 1 + erf(x/√2)), and a ReLU-style mask of the product and what reads it",
            r#"graph t mode=train {
              %0: f32[4, 8] = input "x"
              %1: f32[8, 8] = input "w"
              %2: f32[4, 8] = matmul %0, %1
              %3: f32[] = const 0.70710677
              %4: f32[4, 8] = broadcast %3 shape=[4, 8]
              %5: f32[4, 8] = mul %2, %4
              %6: f32[4, 8] = erf %5
              %7: f32[] = const 1.0
              %8: f32[4, 8] = broadcast %7 shape=[4, 8]
              %9: f32[4, 8] = add %6, %8
              %10: f32[] = const 0.5
              %11: f32[4, 8] = broadcast %10 shape=[4, 8]
              %12: f32[4, 8] = mul %2, %11
              %13: f32[4, 8] = mul %12, %9
              %14: f32[] = const 0.0
              %15: f32[4, 8] = broadcast %14 shape=[4, 8]
              %16: bool[4, 8] = gt %2, %15
              %17: f32[4, 8] = input "d"
              %18: f32[4, 8] = select %16, %17, %15
              %19: f32[8] = reduce_sum %18 axes=[0]
              prediction "y" = %13
              prediction "g" = %19
            }"#,
            "k0 matmul [4, 8]
             %2 matmul: f32[4, 8]
             %5 mul: f32[4, 8] (epilogue)
             %6 erf: f32[4, 8] (epilogue)
             %9 add: f32[4, 8] (epilogue)
             %12 mul: f32[4, 8] (epilogue)
             %13 mul: f32[4, 8] (epilogue)
             %16 gt: bool[4, 8] (epilogue)
             %18 select: f32[4, 8] (epilogue)
             inputs: %0, %1, %17
             outputs: %13, %18
             k1 loop [4, 8]
             %19 reduce_sum: f32[8]
             inputs: %18
             outputs: %19
             views:
             %4 broadcast of %3
             %8 broadcast of %7
             %11 broadcast of %10
             %15 broadcast of %14
             inline: %3 const, %7 const, %10 const, %14 const
             boundaries:
             %18 select (k0) -> %19 reduce_sum (k1): matmul is a contraction (GEMM); the reader is not on its epilogue chain",
        ),
    ];
    for (name, text, expected) in cases {
        eprintln!("case: {name}");
        expect(text, expected);
    }
}

#[test]
fn a_conv_reading_a_transposed_view_gets_a_copy() {
    let text = r#"graph t mode=train {
      %0: f32[1, 2, 4, 4] = input "x"
      %1: f32[1, 2, 4, 4] = permute %0 axes=[0, 1, 3, 2]
      %2: f32[3, 2, 1, 1] = param "w" role=weight init=zeros
      %3: f32[1, 3, 4, 4] = conv %1, %2 stride=[1, 1] padding=[(0, 0), (0, 0)] dilation=[1, 1] groups=1
      prediction "y" = %3
    }"#;
    let graph = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let p = partition(&graph);
    assert!(matches!(p.placement[1], Placement::Kernel(0)), "{:?}", p.placement);
    assert_eq!(p.kernels[0].kind, super::KernelKind::Copy);
    assert_eq!(p.kernels[1].inputs, vec![ValueId(1), ValueId(2)]);
}

/// A sum of a value a product's epilogue computes (a normalisation's
/// per-channel statistics) is reduced by the epilogue, and the value it
/// sums is not stored when nothing else reads it. A sum whose first kept
/// axis has fewer than 16 elements, or is the innermost axis (a bias's
/// gradient over rows: a kernel split along it would cut every row),
/// stays a loop of its own. The plan splits the product's kernel along an
/// axis the epilogue does not reduce.
#[test]
fn a_sum_of_an_epilogue_value_joins_the_epilogue() {
    // (product [16, rows, cols], axes reduced, joins)
    for (rows, cols, axes, joins) in
        [(32, 64, "[0, 2]", true), (8, 64, "[0, 2]", false), (64, 32, "[0, 1]", false)]
    {
        let kept = if joins || axes == "[0, 2]" { rows } else { cols };
        let text = format!(
            r#"graph t mode=infer {{
              %0: f32[16, {rows}, 64] = input "x"
              %1: f32[16, 64, {cols}] = input "w"
              %2: f32[16, {rows}, {cols}] = input "mask"
              %3: f32[16, {rows}, {cols}] = matmul %0, %1
              %4: f32[16, {rows}, {cols}] = mul %3, %2
              %5: f32[{kept}] = reduce_sum %4 axes={axes}
              %6: f32[16, {rows}, {cols}] = add %4, %2
              prediction "y" = %6
              prediction "s" = %5
            }}"#
        );
        let graph = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let p = partition(&graph);
        let listing = report(&graph, &p);
        let product = &p.kernels[0];
        assert_eq!(product.kind, super::KernelKind::MatMul, "{listing}");
        assert_eq!(product.epilogue.contains(&ValueId(5)), joins, "{listing}");
        assert_eq!(p.kernels.len(), if joins { 1 } else { 2 }, "{listing}");
        if joins {
            assert_eq!(product.outputs, vec![ValueId(5), ValueId(6)], "{listing}");
            let plan = crate::plan::plan(&graph, &std::collections::HashMap::new(), 2).expect("plans");
            let split = &plan.steps[0].split;
            assert_eq!((split.axis, split.chunks), (Some(1), 2), "{split:?}");
        }
    }
}

/// A row maximum of masked attention scores (`[B, heads, rows, rows]`,
/// reduced along the innermost axis) joins the epilogue of the product
/// computing the scores: the first axis it keeps is the symbolic batch,
/// which the plan binds and splits by. The softmax's first pass over the
/// scores goes (the benchmark transformer: 0.11 ms per layer).
#[test]
fn a_row_maximum_over_a_symbolic_batch_joins_the_epilogue() {
    let text = r#"graph t mode=infer {
      %0: f32[B, 4, 64, 16] = input "q"
      %1: f32[B, 4, 16, 64] = input "k"
      %2: f32[B, 4, 64, 64] = input "mask"
      %3: f32[B, 4, 64, 64] = matmul %0, %1
      %4: f32[B, 4, 64, 64] = add %3, %2
      %5: f32[B, 4, 64] = reduce_max %4 axes=[3]
      prediction "s" = %4
      prediction "m" = %5
    }"#;
    let graph = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let p = partition(&graph);
    let listing = report(&graph, &p);
    assert_eq!(p.kernels.len(), 1, "{listing}");
    assert!(p.kernels[0].epilogue.contains(&ValueId(5)), "{listing}");
    let dims = std::collections::HashMap::from([("B".to_string(), 8usize)]);
    let plan = crate::plan::plan(&graph, &dims, 2).expect("plans");
    let split = &plan.steps[0].split;
    assert_eq!((split.axis, split.chunks), (Some(0), 2), "{split:?}");
}

/// The heads of an attention joined (`reshape` of a `permute` of their
/// product: no layout of its own, so stored) and then transposed for the
/// weight's gradient: the transpose is a view of the stored join, read by
/// the product through strides, not a second copy.
#[test]
fn a_view_of_a_stored_view_is_not_stored_again() {
    let text = r#"graph t mode=train {
      %0: f32[2, 3, 4, 5] = input "x"
      %1: f32[2, 3, 5, 6] = input "v"
      %2: f32[2, 3, 4, 6] = matmul %0, %1
      %3: f32[2, 4, 3, 6] = permute %2 axes=[0, 2, 1, 3]
      %4: f32[2, 4, 18] = reshape %3 shape=[2, 4, 18]
      %5: f32[2, 18, 4] = permute %4 axes=[0, 2, 1]
      %6: f32[2, 4, 7] = input "dy"
      %7: f32[18, 7] = matmul_sum %5, %6
      prediction "y" = %7
    }"#;
    let graph = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let p = partition(&graph);
    let copies: Vec<_> = p.kernels.iter().filter(|k| k.kind == super::KernelKind::Copy).collect();
    assert_eq!(copies.len(), 1, "{}", report(&graph, &p));
    assert_eq!(copies[0].nodes, vec![ValueId(4)]);
    assert!(matches!(p.placement[5], Placement::View { .. }), "{:?}", p.placement);
    let product = p.kernels.iter().find(|k| k.nodes.contains(&ValueId(7))).expect("the summed product");
    assert!(product.inputs.contains(&ValueId(4)), "{:?}", product.inputs);
}

/// A transposed matrix that four or more products multiply by (an unrolled
/// recurrence's `W_hhᵀ`) is stored once by a copy kernel and every product
/// reads the copy; with three products it stays a view each GEMM reads
/// through strides.
#[test]
fn a_transpose_many_products_multiply_by_is_stored_once() {
    for (products, stored) in [(4, true), (3, false)] {
        let mut text = String::from(
            "graph t mode=infer {\n  %0: f32[2, 3] = input \"x\"\n  %1: f32[5, 3] = input \"w\"\n  \
             %2: f32[3, 5] = permute %1 axes=[1, 0]\n",
        );
        let mut last = 0;
        for p in 0..products {
            let v = if p == 0 { 3 } else { 2 * p + 2 };
            text.push_str(&format!("  %{v}: f32[2, 5] = matmul %0, %2\n"));
            let sum = if p == 0 { v } else { v + 1 };
            if p > 0 {
                text.push_str(&format!("  %{sum}: f32[2, 5] = add %{last}, %{v}\n"));
            }
            last = sum;
        }
        text.push_str(&format!("  prediction \"y\" = %{last}\n}}"));
        let graph = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = partition(&graph);
        let copies = p.kernels.iter().filter(|k| k.kind == super::KernelKind::Copy).count();
        match stored {
            true => {
                assert!(matches!(p.placement[2], Placement::Kernel(0)), "{:?}", p.placement);
                assert_eq!(copies, 1);
                assert!(p.kernels[1..].iter().all(|k| k.inputs.contains(&ValueId(2))));
            }
            false => {
                assert!(matches!(p.placement[2], Placement::View { .. }), "{:?}", p.placement);
                assert_eq!(copies, 0);
            }
        }
    }
}

/// `stop_gradient` is a view of its operand, even of a view; a scatter
/// reads its operands as contiguous memory, so a transposed one is copied.
#[test]
fn stop_gradient_is_a_view_and_scatters_read_contiguous_memory() {
    let text = r#"graph t mode=infer {
      %0: f32[4, 3] = input "x"
      %1: i32[4] = constant "index"
      %2: f32[3, 4] = permute %0 axes=[1, 0]
      %3: f32[3, 4] = stop_gradient %2
      %4: f32[3, 4] = exp %3
      %5: f32[3, 5] = scatter_sum %3, %1 axis=1 segments=5
      %6: f32[3, 4] = gather %5, %1 axis=1
      value "a" = %4
      value "b" = %6
    }"#;
    let graph = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let p = partition(&graph);
    assert_eq!(p.placement[2], Placement::View { base: ValueId(0) });
    // Read by the scatter, the stop_gradient of the transpose is materialised.
    let Placement::Kernel(copy) = p.placement[3] else { panic!("{:?}", p.placement) };
    assert_eq!(p.kernels[copy].kind, super::KernelKind::Copy);
    let kinds: Vec<_> = p.kernels.iter().map(|k| k.kind.name()).collect();
    assert_eq!(kinds, ["copy", "loop", "scatter_sum", "gather"], "{p:?}");
    let Placement::Kernel(scatter) = p.placement[5] else { panic!("{:?}", p.placement) };
    assert_eq!(p.kernels[scatter].inputs, vec![ValueId(1), ValueId(3)]);
}

/// An LSTM's gradient: `%6 lstm_grad` and the weight gradient autodiff
/// writes for it, `%10 matmul_sum` of `%3`'s `z` lanes (permuted) and
/// `%6`'s `dpre` lanes, with `extra` lines appended (other readers).
fn lstm_gradient(extra: &str, outputs: &str) -> String {
    format!(
        r#"graph t mode=train {{
          %0: f32[3, 2, 2] = input "x"
          %1: f32[8, 5] = input "w"
          %2: f32[2, 2] = input "h0"
          %3: f32[3, 2, 17] = lstm %0, %1, %2, %2
          %4: f32[3, 2, 2] = input "dh"
          %5: f32[3, 2, 8] = input "dgates"
          %6: f32[3, 2, 12] = lstm_grad %3, %4, %4, %5, %1, %2 from=[0, 0, 0]
          %7: f32[3, 2, 5] = slice %3 axis=2 start=12 end=17
          %8: f32[3, 5, 2] = permute %7 axes=[0, 2, 1]
          %9: f32[3, 2, 8] = slice %6 axis=2 start=0 end=8
          %10: f32[5, 8] = matmul_sum %8, %9
          {extra}
          value "dw" = %10
          {outputs}
        }}"#
    )
}

/// The weight gradient joins the `lstm_grad`'s kernel; the recurrence's
/// own result is stored only when something else reads it.
#[test]
fn an_lstm_weight_gradient_is_summed_by_its_recurrence() {
    for (extra, outputs, stored) in [
        ("", "", false),
        ("%11: f32[3, 2, 8] = exp %9", "value \"e\" = %11", true),
        ("", "value \"r\" = %6", true),
    ] {
        let text = lstm_gradient(extra, outputs);
        let graph = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = partition(&graph);
        let (Placement::Kernel(k), Placement::Kernel(dw)) = (p.placement[6], p.placement[10]) else {
            panic!("{:?}", p.placement)
        };
        assert_eq!(k, dw, "{extra} {outputs}: {p:?}");
        let kernel = &p.kernels[k];
        assert_eq!(kernel.kind, super::KernelKind::LstmGrad);
        assert_eq!(kernel.nodes, [ValueId(6), ValueId(10)]);
        assert_eq!(kernel.outputs.contains(&ValueId(6)), stored, "{extra} {outputs}: {:?}", kernel.outputs);
        assert!(kernel.outputs.contains(&ValueId(10)));
    }
    // Other lanes of either operand are no such weight gradient: a GEMM of
    // their own.
    for (from, to) in [
        (
            "%7: f32[3, 2, 5] = slice %3 axis=2 start=12 end=17",
            "%7: f32[3, 2, 5] = slice %3 axis=2 start=11 end=16",
        ),
        (
            "%9: f32[3, 2, 8] = slice %6 axis=2 start=0 end=8",
            "%9: f32[3, 2, 8] = slice %6 axis=2 start=4 end=12",
        ),
    ] {
        let text = lstm_gradient("", "").replace(from, to);
        let graph = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let p = partition(&graph);
        let Placement::Kernel(dw) = p.placement[10] else { panic!("{:?}", p.placement) };
        assert_eq!(p.kernels[dw].kind, super::KernelKind::MatMul, "{to}: {p:?}");
    }
}

/// The fused training step of `layers` (a `|>` chain from `x: f32[B, 32]`
/// to a 32-wide result), trained on a mean squared error.
fn fused_step(layers: &str) -> (crate::ir::Graph, super::Partition) {
    let source = format!(
        "model m {{
           input x: f32[B, 32]
           target y: f32[B, 32]
           out = x |> {layers}
           output out
           loss = mse(out, y)
         }}
         train {{
           data = synthetic.sine(n: 64)
           batch = 16
           optimizer = sgd(lr: 0.1)
         }}"
    );
    let compiled = crate::pipeline::compile(&source).unwrap_or_else(|e| panic!("{e:?}"));
    let graph = crate::pipeline::optimized(&compiled.module, crate::ir::Mode::Train).expect("optimises");
    let p = partition(&graph);
    (graph, p)
}

/// The kernels computing an op with this mnemonic, with whether it is in
/// their epilogue.
fn kernels_with(graph: &crate::ir::Graph, p: &super::Partition, mnemonic: &str) -> Vec<(usize, bool)> {
    let mut found = vec![];
    for (k, kernel) in p.kernels.iter().enumerate() {
        for &n in &kernel.nodes {
            if graph.node(n).op.mnemonic() == mnemonic {
                found.push((k, kernel.epilogue.contains(&n)));
            }
        }
    }
    found
}

/// A derivative of an activation (relu's mask, tanh's `1 - y²`, GELU's
/// `gelu_grad`) is computed by the backward product's epilogue that reads
/// it, from what the forward pass stores anyway: the forward product of
/// relu or tanh stores its activation's result and nothing else, and no
/// loop of its own computes the derivative.
#[test]
fn derivatives_of_activations_are_computed_where_the_backward_pass_reads_them() {
    for (activation, derivative_op) in [("relu", "gt"), ("tanh", "sub"), ("gelu", "gelu_grad")] {
        let (graph, p) = fused_step(&format!("dense(64) |> {activation} |> dense(32)"));
        let listing = report(&graph, &p);
        let forward = &p.kernels[0];
        assert_eq!(forward.kind, super::KernelKind::MatMul, "{listing}");
        assert!(graph.node(forward.nodes[0]).grad_of.is_none(), "{listing}");
        // GELU's forward epilogue stores what its gradient reads, its
        // pre-activation `x`, besides its result.
        let stores = if activation == "gelu" { 2 } else { 1 };
        assert_eq!(forward.outputs.len(), stores, "{activation}: what the first product stores\n{listing}");
        let stored = *forward.outputs.last().expect("an output");
        assert!(
            p.kernels[1].nodes.iter().any(|&n| graph.node(n).args.contains(&stored)),
            "{activation}: the second product reads what the first stores\n{listing}"
        );
        let derivative: Vec<_> = kernels_with(&graph, &p, derivative_op)
            .into_iter()
            .filter(|&(k, _)| p.kernels[k].nodes.iter().any(|&n| graph.node(n).grad_of.is_some()))
            .collect();
        assert_eq!(derivative.len(), 1, "{activation}\n{listing}");
        let (k, in_epilogue) = derivative[0];
        assert!(in_epilogue && p.kernels[k].kind == super::KernelKind::MatMul, "{activation}\n{listing}");
        assert!(
            p.kernels[k].inputs.iter().any(|i| forward.outputs.contains(i)),
            "{activation}: the derivative is computed from what the forward product stores\n{listing}"
        );
        // The kernels are in an order that runs: each reads only what
        // kernels before it compute.
        for (k, kernel) in p.kernels.iter().enumerate() {
            for &i in &kernel.inputs {
                if let Placement::Kernel(from) = p.placement[i.index()] {
                    assert!(from < k, "k{k} reads {i} of k{from}\n{listing}");
                }
            }
        }
    }
}

/// A normalisation's `x - mean`, computed by the loop that sums its squares
/// and read by the loop that divides it, is computed again there instead of
/// stored; `(x - mean) / sd` read by a later loop is too, from the stored
/// `x`. Never from a graph input: a parameter may be updated in place
/// before a later reader runs.
#[test]
fn a_centred_value_is_recomputed_where_it_is_read() {
    let graph_text = |x: &str| {
        format!(
            r#"graph t mode=infer {{
              %0: f32[8, 16] = input "x"
              %1: f32[8, 16] = {x}
              %2: f32[8] = reduce_sum %1 axes=[1]
              %3: f32[8, 1] = reshape %2 shape=[8, 1]
              %4: f32[8, 16] = broadcast %3 shape=[8, 16]
              %5: f32[8, 16] = sub %1, %4
              %6: f32[8, 16] = mul %5, %5
              %7: f32[8] = reduce_sum %6 axes=[1]
              %8: f32[8, 1] = reshape %7 shape=[8, 1]
              %9: f32[8, 16] = broadcast %8 shape=[8, 16]
              %10: f32[8, 16] = div %5, %9
              %11: f32[8] = reduce_max %10 axes=[1]
              %12: f32[8, 1] = reshape %11 shape=[8, 1]
              %13: f32[8, 16] = broadcast %12 shape=[8, 16]
              %14: f32[8, 16] = mul %10, %13
              prediction "y" = %14
            }}"#
        )
    };
    expect(
        &graph_text("exp %0"),
        "k0 loop [8, 16]
         %1 exp: f32[8, 16]
         %2 reduce_sum: f32[8]
         inputs: %0
         outputs: %1, %2
         k1 loop [8, 16]
         %5 sub: f32[8, 16]
         %6 mul: f32[8, 16]
         %7 reduce_sum: f32[8]
         inputs: %1, %2
         outputs: %7
         k2 loop [8, 16]
         %5 sub: f32[8, 16] (recomputed)
         %10 div: f32[8, 16]
         %11 reduce_max: f32[8]
         inputs: %1, %2, %7
         outputs: %11
         k3 loop [8, 16]
         %5 sub: f32[8, 16] (recomputed)
         %10 div: f32[8, 16] (recomputed)
         %14 mul: f32[8, 16]
         inputs: %1, %2, %7, %11
         outputs: %14
         views:
         %3 reshape of %2
         %4 broadcast of %2
         %8 reshape of %7
         %9 broadcast of %7
         %12 reshape of %11
         %13 broadcast of %11
         inline: -
         boundaries:
         %1 exp (k0) -> %5 sub (k1): fusing would create a cycle through another kernel
         %2 reduce_sum (k0) -> %5 sub (k1): reduction output read by a later loop
         %7 reduce_sum (k1) -> %10 div (k2): reduction output read by a later loop
         %11 reduce_max (k2) -> %14 mul (k3): reduction output read by a later loop",
    );
    // From a graph input, the centred value is stored (what is computed
    // from it may still be recomputed).
    let graph =
        parse(&graph_text("neg %0").replace("%1: f32[8, 16] = neg %0", "%1: f32[8, 16] = input \"p\""))
            .unwrap_or_else(|e| panic!("{e}"));
    let p = partition(&graph);
    let listing = report(&graph, &p);
    assert!(p.kernels[1].outputs.contains(&ValueId(5)), "{listing}");
    assert!(!listing.contains("%5 sub: f32[8, 16] (recomputed)"), "{listing}");
}

/// Two stored values computed cheaply from one value their kernel does
/// not store (GELU's `x/√2` and `x/2` of its pre-activation `x`): the
/// kernel stores that value instead, and the later loops reading them
/// recompute them from it (and so their product, which the reduction's
/// loop reads), so the product's epilogue stores one tensor, not three.
#[test]
fn a_shared_operand_is_stored_instead_of_two_cheap_values() {
    expect(
        r#"graph t mode=infer {
          %0: f32[8, 16] = input "x"
          %1: f32[16, 16] = input "w"
          %2: f32[8, 16] = input "b"
          %3: f32[8, 16] = matmul %0, %1
          %4: f32[8, 16] = add %3, %2
          %5: f32[] = const 0.5
          %6: f32[8, 16] = broadcast %5 shape=[8, 16]
          %7: f32[8, 16] = mul %4, %6
          %8: f32[8, 16] = sub %4, %6
          %9: f32[8, 16] = mul %7, %8
          %10: f32[8] = reduce_max %9 axes=[1]
          %11: f32[8, 1] = reshape %10 shape=[8, 1]
          %12: f32[8, 16] = broadcast %11 shape=[8, 16]
          %13: f32[8, 16] = mul %7, %12
          %14: f32[8, 16] = add %13, %8
          prediction "y" = %14
        }"#,
        "k0 matmul [8, 16]
         %3 matmul: f32[8, 16]
         %4 add: f32[8, 16] (epilogue)
         %7 mul: f32[8, 16] (epilogue)
         %8 sub: f32[8, 16] (epilogue)
         %9 mul: f32[8, 16] (epilogue)
         inputs: %0, %1, %2
         outputs: %4
         k1 loop [8, 16]
         %7 mul: f32[8, 16] (recomputed)
         %8 sub: f32[8, 16] (recomputed)
         %9 mul: f32[8, 16] (recomputed)
         %10 reduce_max: f32[8]
         inputs: %4
         outputs: %10
         k2 loop [8, 16]
         %7 mul: f32[8, 16] (recomputed)
         %8 sub: f32[8, 16] (recomputed)
         %13 mul: f32[8, 16]
         %14 add: f32[8, 16]
         inputs: %4, %10
         outputs: %14
         views:
         %6 broadcast of %5
         %11 reshape of %10
         %12 broadcast of %10
         inline: %5 const
         boundaries:
         %10 reduce_max (k1) -> %13 mul (k2): reduction output read by a later loop",
    );
}
