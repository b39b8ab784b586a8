//! Plans of small graphs: offsets, reuse, splits and the checker.

use std::collections::HashMap;

use super::{check, plan, Buffer, Plan, ALIGN};
use crate::fusion::partition;
use crate::ir::parse::parse;
use crate::ir::{Graph, Mode, ValueId};

const CHAIN: &str = r#"graph t mode=infer {
  %0: f32[B, 1024] = input "x"
  %1: f32[1024, 1024] = param "w" role=weight init=zeros
  %2: f32[B, 1024] = matmul %0, %1
  %3: f32[B, 1024] = matmul %2, %1
  %4: f32[B, 1024] = matmul %3, %1
  %5: f32[B, 1024] = matmul %4, %1
  prediction "y" = %5
}"#;

fn plan_of(text: &str, batch: usize, threads: usize) -> Plan {
    let graph = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let dims = HashMap::from([("B".to_string(), batch)]);
    plan(&graph, &dims, threads).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn buffers_are_reused_by_liveness() {
    // Four [8, 1024] f32 values of 32 KiB; at most two are live at once.
    let p = plan_of(CHAIN, 8, 1);
    assert_eq!(p.buffers.len(), 4);
    assert!(p.buffers.iter().all(|b| b.bytes == 8 * 1024 * 4 && b.offset % ALIGN == 0));
    assert_eq!(p.peak_bytes, 2 * 8 * 1024 * 4);
    let live: Vec<(usize, usize)> = p.buffers.iter().map(|b| b.live).collect();
    assert_eq!(live, vec![(0, 1), (1, 2), (2, 3), (3, 3)]);
    assert!(check(&p).is_ok());
}

#[test]
fn splits_follow_threads_and_minimum_chunks() {
    let cases = [
        // (batch, threads, expected chunks of each matmul)
        (8, 1, 1),
        (8, 4, 4),
        (2, 4, 2),
        (1, 4, 1),
    ];
    for (batch, threads, chunks) in cases {
        let p = plan_of(CHAIN, batch, threads);
        for s in &p.steps {
            assert_eq!(s.split.axis, Some(0));
            assert_eq!(s.split.chunks, chunks, "batch {batch} threads {threads}");
        }
    }
    let tiny = r#"graph t mode=infer {
      %0: f32[B, 4] = input "x"
      %1: f32[B, 4] = exp %0
      %2: f32[4] = reduce_sum %1 axes=[0]
      value "s" = %2
    }"#;
    let p = plan_of(tiny, 64, 4);
    assert_eq!((p.steps[0].split.axis, p.steps[0].split.chunks), (Some(1), 1));
}

#[test]
fn unbound_dimensions_and_zero_threads_are_errors() {
    let graph = parse(CHAIN).unwrap_or_else(|e| panic!("{e}"));
    let err = plan(&graph, &HashMap::new(), 1).err().map(|e| e.message).unwrap_or_default();
    assert!(err.contains("`B` is not bound"), "{err}");
    let dims = HashMap::from([("B".to_string(), 2)]);
    assert!(plan(&graph, &dims, 0).is_err());
}

#[test]
fn checker_rejects_overlapping_live_buffers() {
    let buffer = |v: u32, offset: usize, live: (usize, usize)| Buffer {
        value: ValueId(v),
        bytes: 128,
        offset,
        live,
        views: vec![],
    };
    let empty = Graph::new("t", Mode::Infer);
    let plan = |buffers: Vec<Buffer>| Plan {
        partition: partition(&empty),
        graph: empty.clone(),
        in_place: Default::default(),
        accumulated: Default::default(),
        in_concat: Default::default(),
        in_reshape: Default::default(),
        transposed: Default::default(),
        convs: Default::default(),
        dims: Default::default(),
        threads: 1,
        steps: vec![],
        buffers,
        peak_bytes: 256,
    };
    let cases = [
        ("disjoint bytes", vec![buffer(1, 0, (0, 3)), buffer(2, 128, (1, 2))], true),
        ("disjoint lives", vec![buffer(1, 0, (0, 1)), buffer(2, 0, (2, 3))], true),
        ("shared step", vec![buffer(1, 0, (0, 1)), buffer(2, 64, (1, 3))], false),
        ("misaligned", vec![buffer(1, 32, (0, 1))], false),
        ("above the peak", vec![buffer(1, 192, (0, 1))], false),
    ];
    for (name, buffers, ok) in cases {
        assert_eq!(check(&plan(buffers)).is_ok(), ok, "{name}");
    }
}

#[test]
fn convolution_algorithms_follow_the_tile_budget() {
    use super::conv::{ConvAlgorithm, ConvShape};
    use crate::ir::ConvAttrs;
    let attrs = |pad: usize, spatial: usize| ConvAttrs {
        stride: vec![1; spatial],
        padding: vec![(pad, pad); spatial],
        dilation: vec![1; spatial],
        groups: 1,
    };
    let tiles =
        |rows, columns, col_rows, col_stride| ConvAlgorithm::Im2col { rows, columns, col_rows, col_stride };
    let winograd = |rows, tiles| ConvAlgorithm::Winograd { rows, tiles };
    // (image [C, *S], output channels, output S', kernel K, padding, weight
    // gradient, algorithm)
    let cases = [
        // 4 channels, 64×64, 3×3: four rows of 64 fill the 256 columns.
        (vec![4, 64, 64], 32, vec![64, 64], vec![3, 3], 1, false, tiles(4, 256, 36, 272)),
        // 96 channels into 4: 864 rows of the column block fit 128 columns in 512 KiB.
        (vec![96, 64, 64], 4, vec![64, 64], vec![3, 3], 1, false, tiles(2, 128, 864, 144)),
        // A 7×7 image fits one tile.
        (vec![32, 7, 7], 1, vec![7, 7], vec![3, 3], 1, false, tiles(7, 49, 288, 80)),
        // Very many channels: still one output row per tile.
        (vec![1024, 64, 64], 2, vec![64, 64], vec![3, 3], 1, false, tiles(1, 64, 9216, 80)),
        // 192 channels of 32×32: two rows, beyond 512 KiB but 64 columns wide.
        (vec![192, 32, 32], 4, vec![32, 32], vec![3, 3], 1, false, tiles(2, 64, 1728, 80)),
        // One spatial axis: positions are the rows.
        (vec![2, 1000], 8, vec![998], vec![3], 0, false, tiles(256, 256, 6, 272)),
        // 1×1 without padding: the image is the column matrix.
        (vec![32, 64, 64], 32, vec![64, 64], vec![1, 1], 0, false, ConvAlgorithm::Pointwise),
        // 3×3 with 8 or more channels each way: Winograd. Forward blocks
        // hold 1 MiB of transformed tiles (2 KiB per tile for 16 + 16
        // channels: 512 tiles, 32 rows of a 32×32 image's 16 tiles)...
        (vec![16, 32, 32], 16, vec![32, 32], vec![3, 3], 1, false, winograd(32, 512)),
        // ... 8 KiB per tile for 96 + 32: 128 tiles, 4 rows of 32 ...
        (vec![96, 64, 64], 32, vec![64, 64], vec![3, 3], 1, false, winograd(4, 128)),
        // ... at most 512 tiles (171 rows of 3) ...
        (vec![8, 5, 5], 8, vec![5, 5], vec![3, 3], 1, false, winograd(171, 513)),
        // ... and at least 64 (1024 + 64 channels, 68 KiB per tile).
        (vec![1024, 64, 64], 64, vec![64, 64], vec![3, 3], 1, false, winograd(2, 64)),
        // Without padding: 62×62 outputs, 31 tiles per row (256 tiles of 4 KiB).
        (vec![32, 64, 64], 32, vec![62, 62], vec![3, 3], 0, false, winograd(9, 279)),
        // Weight gradients: 512 tiles per block ...
        (vec![96, 64, 64], 32, vec![64, 64], vec![3, 3], 1, true, winograd(16, 512)),
        (vec![32, 64, 64], 32, vec![62, 62], vec![3, 3], 0, true, winograd(17, 527)),
        // ... held to 8 MiB (120 tiles, 4 rows of 32).
        (vec![1024, 64, 64], 64, vec![64, 64], vec![3, 3], 1, true, winograd(4, 128)),
    ];
    for (image, channels, out, taps, pad, weight_grad, want) in cases {
        let a = attrs(pad, taps.len());
        let shape = ConvShape { channels, image: &image, out: &out, taps: &taps, attrs: &a, weight_grad };
        assert_eq!(shape.algorithm(), want, "{image:?} * {taps:?}");
        // Only tiles narrowed to the fewest columns exceed the budget.
        let narrow = matches!(want, ConvAlgorithm::Im2col { columns, .. }
            if columns < 2 * super::conv::MIN_TILE_COLUMNS);
        assert!(want.col_len() * 4 <= super::conv::TILE_BYTES || narrow, "{image:?}");
    }
}

/// Sums of products accumulate in the buffer of their addend when the
/// accumulating GEMM is the addend's last reader: `%7` in `%5`'s buffer
/// and `%10` in `%3`'s. `%5` adds onto `%3`, which `%10` reads later, so it
/// gets a buffer of its own (and a copy of `%3`).
#[test]
fn sums_of_products_accumulate_in_the_buffer_of_an_addend_read_last() {
    let text = r#"graph t mode=infer {
      %0: f32[4, B] = input "a"
      %1: f32[B, 5] = input "b"
      %2: f32[4, B] = input "c"
      %3: f32[4, 5] = matmul %0, %1
      %4: f32[4, 5] = matmul %2, %1
      %5: f32[4, 5] = add %3, %4
      %6: f32[4, 5] = matmul %0, %1
      %7: f32[4, 5] = add %5, %6
      %8: f32[4, 5] = exp %7
      %9: f32[4, 5] = matmul %2, %1
      %10: f32[4, 5] = add %9, %3
      prediction "y" = %8
      prediction "z" = %10
    }"#;
    let p = plan_of(text, 3, 1);
    let v = |i: u32| ValueId(i);
    assert_eq!(p.accumulated, [(v(7), v(5)), (v(10), v(3))].into_iter().collect());
    assert!(p.buffer_of(v(7)).is_some_and(|b| b.value == v(5)));
    assert!(p.buffer_of(v(10)).is_some_and(|b| b.value == v(3)));
    assert!(p.buffers.iter().all(|b| b.value != v(7) && b.value != v(10)));
    assert!(check(&p).is_ok());
}

/// A part of a concatenation that only the concatenation reads is written
/// in place by the loop computing it (its buffer is gone; the concatenation
/// is live from that loop on); a part read elsewhere too is copied.
#[test]
fn parts_read_only_by_a_concat_are_written_in_place() {
    let text = r#"graph t mode=infer {
      %0: f32[B, 4] = input "x"
      %1: f32[B, 4] = exp %0
      %2: f32[B, 4] = neg %0
      %3: f32[B, 8] = concat %1, %2 axis=1
      %4: f32[B, 4] = mul %2, %2
      prediction "y" = %3
      prediction "z" = %4
    }"#;
    let p = plan_of(text, 3, 1);
    assert_eq!(p.in_concat.len(), 1, "{:?}\n{}", p.in_concat, super::print(&p));
    assert_eq!(p.in_concat.get(&ValueId(1)), Some(&(ValueId(3), 0)));
    assert!(!p.buffers.iter().any(|b| b.value == ValueId(1)));
    let concat = p.buffers.iter().find(|b| b.value == ValueId(3)).expect("the concatenation has a buffer");
    let writer = p.partition.kernel_of(ValueId(1)).expect("a kernel computes %1");
    assert_eq!(concat.live.0, writer);
    assert!(concat.views.contains(&ValueId(1)));
    assert!(p.buffers.iter().any(|b| b.value == ValueId(2)));
    assert!(super::print(&p).contains("in place: %1"), "{}", super::print(&p));
    assert!(check(&p).is_ok());
}
