//! `gather`, `scatter`, `grid_graph` and `knn_graph`.

use super::*;
use crate::ir::Op;

#[test]
fn gather_reads_along_an_axis() {
    let mut c = cx();
    let x = c.input("x", "B, 3, 2");
    let index = c.typed_input("index", DType::I32, "4");
    let y = gather(&mut c, x, index, 1).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 4, 2]");
    let given = [("x", ft(&[1, 3, 2], &[0., 1., 10., 11., 20., 21.])), ("index", it(&[4], &[2, 0, 2, 5]))];
    assert_close(&c.eval1(y, &given), &[20., 21., 0., 1., 20., 21., 0., 0.], 0.0);
    let last = gather(&mut c, x, index, -1).unwrap();
    assert_eq!(c.ty_of(last), "f32[B, 3, 4]");

    let f = c.input("f", "4");
    let e = err_of(gather(&mut c, x, f, 1));
    assert_eq!(e.message, "`gather` needs an index vector i32[E], got f32[4]");
    assert_eq!((e.operand, e.expected.as_deref()), (Some(1), Some("i32[4]")));
    let edges = c.typed_input("edges", DType::I32, "4, 2");
    let e = err_of(gather(&mut c, x, edges, 1));
    assert_eq!(e.notes, ["help: take one column of an edge list, e.g. `edges[:, 0]` for the sources"]);
}

#[test]
fn scatter_sums_averages_and_takes_maxima() {
    let mut c = cx();
    let x = c.input("x", "B, 4, 2");
    let index = c.typed_input("index", DType::I32, "4");
    let sum = scatter(&mut c, x, index, 3, 1, Combine::Sum).unwrap();
    let mean = scatter(&mut c, x, index, 3, 1, Combine::Mean).unwrap();
    let max = scatter(&mut c, x, index, 3, -2, Combine::Max).unwrap();
    assert_eq!(c.ty_of(mean), "f32[B, 3, 2]");
    let given =
        [("x", ft(&[1, 4, 2], &[1., 2., 3., 4., 5., 6., 7., -8.])), ("index", it(&[4], &[0, 2, 0, 2]))];
    let r = c.eval(&[sum, mean, max], 1, &given);
    assert_close(&flat(&r[0]), &[6., 8., 0., 0., 10., -4.], 0.0);
    assert_close(&flat(&r[1]), &[3., 4., 0., 0., 5., -2.], 0.0);
    assert_close(&flat(&r[2]), &[5., 6., 0., 0., 7., 4.], 0.0);
    assert!(c.graph.nodes.iter().any(|n| matches!(n.op, Op::ScatterMax { axis: 1, size: 3 })));

    let short = c.typed_input("short", DType::I32, "3");
    let e = err_of(scatter(&mut c, x, short, 3, 1, Combine::Sum));
    assert_eq!(
        e.message,
        "`scatter` needs one index per position of axis 1: f32[B, 4, 2] has 4 there, the index has 3"
    );
    assert_eq!((e.operand, e.expected.as_deref()), (Some(1), Some("i32[4]")));
    let f = c.input("f", "4");
    assert_eq!(err_of(scatter(&mut c, x, f, 3, 1, Combine::Mean)).operand, Some(1));
}

/// The rows of an edge list.
fn edge_rows(c: &TestCx, edges: ValueId) -> Vec<(i32, i32)> {
    match c.constant_value(edges) {
        Some(ConstData::I32(v)) => v.chunks(2).map(|p| (p[0], p[1])).collect(),
        other => panic!("not an i32 constant: {other:?}"),
    }
}

#[test]
fn grid_graph_lists_neighbours_by_destination() {
    let mut c = cx();
    // 0 1 2
    // 3 4 5
    let g = grid_graph(&mut c, 2, 3, 4, [false, false]).unwrap();
    assert_eq!(c.ty_of(g), "i32[14, 2]");
    assert_eq!(
        edge_rows(&c, g),
        [
            (1, 0),
            (3, 0),
            (0, 1),
            (2, 1),
            (4, 1),
            (1, 2),
            (5, 2),
            (0, 3),
            (4, 3),
            (1, 4),
            (3, 4),
            (5, 4),
            (2, 5),
            (4, 5)
        ]
    );
    // Columns wrap: 2 and 0 are neighbours; two rows make up and down the same node, listed once.
    let g = grid_graph(&mut c, 2, 3, 4, [true, true]).unwrap();
    let rows = edge_rows(&c, g);
    assert_eq!(&rows[..3], [(3, 0), (2, 0), (1, 0)]);
    assert_eq!(rows.len(), 6 * 3);
    let g = grid_graph(&mut c, 3, 3, 8, [false, false]).unwrap();
    assert_eq!(c.ty_of(g), "i32[40, 2]");
    let into_centre: Vec<i32> = edge_rows(&c, g).iter().filter(|e| e.1 == 4).map(|e| e.0).collect();
    assert_eq!(into_centre, [0, 1, 2, 3, 5, 6, 7, 8]);
    let g = grid_graph(&mut c, 1, 4, 4, [false, true]).unwrap();
    assert_eq!(edge_rows(&c, g).len(), 8, "a ring of 4 nodes, no self-loops");

    assert_eq!(
        err_of(grid_graph(&mut c, 1, 1, 4, [true, true])).message,
        "`grid_graph(1, 1)` has no edges: a single node"
    );
    assert_eq!(
        err_of(grid_graph(&mut c, 2, 2, 6, [false, false])).message,
        "`grid_graph` neighbours must be 4 or 8, got 6"
    );
}

#[test]
fn knn_graph_links_each_point_to_its_nearest() {
    let mut c = cx();
    // Points on a line at 0, 1, 3, 7.
    let ty = Type::new(DType::F32, Shape::known(&[4, 1]));
    let points = c.constant("points", ty, ConstData::F32(vec![0., 1., 3., 7.]), "test".into());
    let g = knn_graph(&mut c, points, 2).unwrap();
    assert_eq!(c.ty_of(g), "i32[8, 2]");
    assert_eq!(edge_rows(&c, g), [(1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (0, 2), (2, 3), (1, 3)]);
    // A tie: 1 is equally far from 0 and 2.
    let ty = Type::new(DType::F32, Shape::known(&[3, 2]));
    let tied = c.constant("tied", ty, ConstData::F32(vec![2., 0., 1., 0., 0., 0.]), "test".into());
    let g = knn_graph(&mut c, tied, 1).unwrap();
    assert_eq!(edge_rows(&c, g), [(1, 0), (0, 1), (1, 2)]);
    // Points on a line may be a vector.
    let line = linspace(&mut c, 0.0, 1.0, 3).unwrap();
    let g = knn_graph(&mut c, line, 2).unwrap();
    assert_eq!(edge_rows(&c, g), [(1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (0, 2)]);

    let e = err_of(knn_graph(&mut c, points, 4));
    assert_eq!(e.message, "`knn_graph` with k = 4 needs more than 4 points, but f32[4, 1] has 4");
    let x = c.input("x", "4, 2");
    let e = err_of(knn_graph(&mut c, x, 1));
    assert_eq!(e.message, "`knn_graph` needs points known when the program is compiled");
    assert_eq!(e.operand, Some(0));
    let l = c.typed_input("l", DType::I32, "4");
    assert_eq!(err_of(knn_graph(&mut c, l, 1)).expected.as_deref(), Some("f32[N, D]"));
}
