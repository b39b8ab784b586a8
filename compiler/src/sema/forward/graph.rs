//! Graphs for message passing: reading node features along edges
//! (`gather`), combining edge features at nodes (`scatter`), and the
//! compile-time edge lists of a grid (`grid_graph`) and of nearest
//! neighbours (`knn_graph`).
//!
//! An edge list is `i32[E, 2]`: row `e` is `(source, destination)`, so
//! `gather(x, edges[:, 0])` reads the source of every edge and
//! `scatter(m, edges[:, 1], n)` delivers messages to their destinations.

use super::emit::{bin, bin_const, broadcast, emit, known_dim, norm_axis, reshape_to, splat, ty, want_f32};
use super::{BuildError, Built, ConstData, Cx};
use crate::ir::{BinaryOp, DType, Dim, Op, Shape, Type, ValueId};

/// Most edges of a built edge list (2^24).
pub const MAX_EDGES: usize = 1 << 24;
/// Most points of `knn_graph`, which compares every pair at compile time.
pub const MAX_KNN_POINTS: usize = 1 << 16;

/// How `scatter` combines the contributions that reach one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combine {
    Sum,
    /// The sum over the number of contributions (0 where there is none).
    Mean,
    /// The largest contribution (0 where there is none).
    Max,
}

/// Checks that `index` is an `i32[E]` vector (operand `operand`).
fn want_index(cx: &mut dyn Cx, what: &str, index: ValueId, operand: usize) -> Result<Dim, BuildError> {
    let t = ty(cx, index);
    if t.dtype != DType::I32 || t.shape.rank() != 1 {
        let e =
            t.shape.dims().first().filter(|_| t.shape.rank() == 1).map_or("E".to_string(), |d| d.to_string());
        let mut err = BuildError::new(format!("`{what}` needs an index vector i32[E], got {t}"))
            .at(operand)
            .expected(format!("i32[{e}]"));
        if t.dtype == DType::I32 && t.shape.rank() == 2 {
            err = err.help("take one column of an edge list, e.g. `edges[:, 0]` for the sources");
        }
        return Err(err);
    }
    Ok(t.shape.dims()[0].clone())
}

/// `gather(x, index, axis)`: `x[..., index[e], ...]` for every `e`, so axis
/// `axis` of `x` (size `N`) becomes the index length `E`:
/// `[B, N, F]`, `i32[E]` → `[B, E, F]`. An index outside `0..N` reads 0.
/// Operand 0 is `x`, 1 the index.
pub fn gather(cx: &mut dyn Cx, x: ValueId, index: ValueId, axis: i64) -> Built {
    let t = want_f32(cx, x, "gather", 0)?;
    want_index(cx, "gather", index, 1)?;
    let a = norm_axis("gather", axis, t.shape.rank()).map_err(|e| e.at(0))?;
    emit(cx, Op::Gather { axis: a }, &[x, index])
}

/// `scatter(x, index, n, axis, reduce)`: contribution `e` (position `e` of
/// axis `axis` of `x`) goes to position `index[e]` of an axis of size `n`:
/// `[B, E, F]`, `i32[E]` → `[B, n, F]`. Positions no index names are 0;
/// indices outside `0..n` are dropped. Operand 0 is `x`, 1 the index.
pub fn scatter(cx: &mut dyn Cx, x: ValueId, index: ValueId, n: usize, axis: i64, combine: Combine) -> Built {
    let t = want_f32(cx, x, "scatter", 0)?;
    let e = want_index(cx, "scatter", index, 1)?;
    let a = norm_axis("scatter", axis, t.shape.rank()).map_err(|e| e.at(0))?;
    super::emit::check_size(n, "the `scatter` size `n`")?;
    let along = &t.shape.dims()[a];
    if *along != e {
        return Err(BuildError::new(format!(
            "`scatter` needs one index per position of axis {a}: {t} has {along} there, the index has {e}"
        ))
        .at(1)
        .expected(format!("i32[{along}]"))
        .label(format!("{along} contributions, {e} indices")));
    }
    match combine {
        Combine::Sum => emit(cx, Op::ScatterSum { axis: a, size: n }, &[x, index]),
        Combine::Max => emit(cx, Op::ScatterMax { axis: a, size: n }, &[x, index]),
        Combine::Mean => {
            let sum = emit(cx, Op::ScatterSum { axis: a, size: n }, &[x, index])?;
            let ones = splat(cx, 1.0, &Shape(vec![e]))?;
            let count = emit(cx, Op::ScatterSum { axis: 0, size: n }, &[ones, index])?;
            let count = bin_const(cx, BinaryOp::Max, count, 1.0)?;
            let out = cx.graph().ty(sum).shape.clone();
            let mut dims = vec![Dim::Known(1); out.rank()];
            dims[a] = Dim::Known(n);
            let count = reshape_to(cx, count, Shape(dims))?;
            let count = broadcast(cx, count, &out)?;
            bin(cx, BinaryOp::Div, sum, count)
        }
    }
}

/// The neighbour offsets (row, column) of a grid node, in row-major order.
fn offsets(neighbours: usize) -> Vec<(i64, i64)> {
    let mut out = vec![];
    for dr in -1i64..=1 {
        for dc in -1i64..=1 {
            let diagonal = dr != 0 && dc != 0;
            if (dr, dc) != (0, 0) && (neighbours == 8 || !diagonal) {
                out.push((dr, dc));
            }
        }
    }
    out
}

/// The edge list `i32[E, 2]` of a `rows`×`cols` grid whose nodes are
/// numbered row-major (`r·cols + c`): every node receives an edge from each
/// of its 4 (up, left, right, down) or 8 neighbours; an axis that is
/// `periodic` wraps around (a torus, or longitude on a lat-lon grid). Edges
/// are grouped by destination in node order, each group by neighbour
/// offset in row-major order (`(−1, −1)`, `(−1, 0)`, … `(1, 1)`); a wrap on
/// an axis of size 1 or 2 that would repeat an edge or make a self-loop
/// adds nothing. Every edge appears in both directions.
pub fn grid_graph(
    cx: &mut dyn Cx,
    rows: usize,
    cols: usize,
    neighbours: usize,
    periodic: [bool; 2],
) -> Built {
    if neighbours != 4 && neighbours != 8 {
        return Err(BuildError::new(format!("`grid_graph` neighbours must be 4 or 8, got {neighbours}")));
    }
    super::emit::check_size(rows, "the `grid_graph` row count")?;
    super::emit::check_size(cols, "the `grid_graph` column count")?;
    let nodes = rows.checked_mul(cols).filter(|&n| n <= MAX_EDGES);
    let Some(nodes) = nodes else {
        return Err(BuildError::new(format!(
            "`grid_graph({rows}, {cols})` has too many nodes (at most 2^24)"
        )));
    };
    let offsets = offsets(neighbours);
    let mut edges: Vec<i32> = vec![];
    let mut seen: Vec<usize> = vec![];
    for node in 0..nodes {
        let (r, c) = ((node / cols) as i64, (node % cols) as i64);
        seen.clear();
        for &(dr, dc) in &offsets {
            let (Some(nr), Some(nc)) = (wrap(r + dr, rows, periodic[0]), wrap(c + dc, cols, periodic[1]))
            else {
                continue;
            };
            let source = nr * cols + nc;
            if source == node || seen.contains(&source) {
                continue;
            }
            seen.push(source);
            edges.extend([source as i32, node as i32]);
        }
        if edges.len() / 2 > MAX_EDGES {
            return Err(BuildError::new(format!(
                "`grid_graph({rows}, {cols})` would have more than 2^24 edges"
            )));
        }
    }
    if edges.is_empty() {
        return Err(BuildError::new(format!("`grid_graph({rows}, {cols})` has no edges: a single node")));
    }
    let e = edges.len() / 2;
    let origin = format!(
        "grid_graph({rows}, {cols}, neighbours: {neighbours}, periodic: [{}, {}])",
        periodic[0], periodic[1]
    );
    let ty = Type::new(DType::I32, Shape::known(&[e, 2]));
    Ok(cx.constant("edges", ty, ConstData::I32(edges), origin))
}

/// `i` on an axis of size `n`: wrapped if `periodic`, else `None` outside.
fn wrap(i: i64, n: usize, periodic: bool) -> Option<usize> {
    let n = n as i64;
    match (0..n).contains(&i) {
        true => Some(i as usize),
        false if periodic => Some(i.rem_euclid(n) as usize),
        false => None,
    }
}

/// The edge list `i32[N·k, 2]` of the `k` nearest neighbours of every one of
/// the `N` points `f32[N, D]` (`f32[N]`: points on a line), which must be a
/// compile-time constant (a
/// `const` declaration or a built-in such as `linspace`): for each point
/// `i` in order, the edges `(j, i)` from its `k` nearest other points `j`,
/// nearest first (Euclidean distance; ties go to the lower index), so
/// every point receives messages from exactly `k` neighbours (PyTorch
/// Geometric's `knn_graph`). Operand 0 is the points.
pub fn knn_graph(cx: &mut dyn Cx, points: ValueId, k: usize) -> Built {
    let t = ty(cx, points);
    if t.dtype != DType::F32 || !(1..=2).contains(&t.shape.rank()) {
        return Err(BuildError::new(format!(
            "`knn_graph` needs points f32[N, D] (or f32[N] on a line), got {t}"
        ))
        .at(0)
        .expected("f32[N, D]"));
    }
    let Some(ConstData::F32(values)) = cx.constant_value(points).cloned() else {
        return Err(BuildError::new("`knn_graph` needs points known when the program is compiled")
            .at(0)
            .expected("constant points, not ones computed when the model runs")
            .help("declare them as a constant, e.g. `const mesh: f32[N, 2] = npy(\"mesh.npy\")`"));
    };
    let n = known_dim(&t, 0, "knn_graph", 0)?;
    let d = if t.shape.rank() == 2 { known_dim(&t, 1, "knn_graph", 0)? } else { 1 };
    super::emit::check_size(k, "`knn_graph` k")?;
    if k >= n {
        return Err(BuildError::new(format!(
            "`knn_graph` with k = {k} needs more than {k} points, but {t} has {n}"
        ))
        .at(0)
        .label(format!("each point has only {} other point(s)", n - 1)));
    }
    if n > MAX_KNN_POINTS {
        return Err(BuildError::new(format!(
            "`knn_graph` compares every pair of points at compile time: at most {MAX_KNN_POINTS} points, got {n}"
        ))
        .at(0));
    }
    if n * k > MAX_EDGES {
        return Err(BuildError::new(format!("`knn_graph` would have {} edges, more than 2^24", n * k)));
    }
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(BuildError::new(format!(
            "`knn_graph` points must be finite, but point {} has a coordinate {}",
            bad / d.max(1),
            values[bad]
        ))
        .at(0));
    }
    let point = |i: usize| &values[i * d..(i + 1) * d];
    let mut edges: Vec<i32> = Vec::with_capacity(2 * n * k);
    let mut order: Vec<(f64, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        order.clear();
        for j in (0..n).filter(|&j| j != i) {
            let dist: f64 =
                point(i).iter().zip(point(j)).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
            order.push((dist, j));
        }
        let by = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        order.select_nth_unstable_by(k - 1, by);
        order[..k].sort_unstable_by(by);
        for &(_, j) in &order[..k] {
            edges.extend([j as i32, i as i32]);
        }
    }
    let ty = Type::new(DType::I32, Shape::known(&[n * k, 2]));
    Ok(cx.constant("edges", ty, ConstData::I32(edges), format!("knn_graph({n} points, k: {k})")))
}
