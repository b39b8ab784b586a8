//! A layered (Sugiyama-style) drawing of a directed graph, top to bottom.
//!
//! 1. Cycles are broken by reversing the back edges of a depth-first
//!    search (grouping nodes into boxes can close a cycle); reversed edges
//!    are drawn with their arrow at the original target.
//! 2. Layering: longest path from the sources, so every edge points down.
//! 3. An edge spanning several layers gets a dummy node in each layer it
//!    crosses, so that it is routed between the boxes of those layers.
//! 4. Ordering: sweeps down and up that sort each layer by the barycentre
//!    of its neighbours in the layer before; the order with the fewest
//!    crossings is kept.
//! 5. Coordinates: layers are rows of equal-height boxes; within a row each
//!    node is pulled to the mean position of its neighbours, subject to the
//!    row's order and a minimum gap, by isotonic regression (pool adjacent
//!    violators), which finds the closest positions that keep the gaps.
//! 6. Edges are polylines from the bottom border of the upper box through
//!    their dummies' columns to the top border of the lower box; where
//!    several edges leave or enter one box their ports are spread along the
//!    border in the order of their other ends.
//!
//! Connected components are laid out one by one and placed side by side.

use std::collections::HashMap;

/// Horizontal gap between neighbouring boxes of a row, and the width a
/// passing edge takes in a row.
const NODE_GAP: f64 = 24.0;
const DUMMY_WIDTH: f64 = 8.0;
/// Vertical gap between rows.
const ROW_GAP: f64 = 44.0;
/// Gap between components placed side by side.
const COMPONENT_GAP: f64 = 48.0;
/// Ordering sweeps (each down and up) and coordinate passes.
const SWEEPS: usize = 12;
const PASSES: usize = 8;

/// A point in the drawing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// Where the layout put everything. Boxes are given by their top-left
/// corner and size; every box of the same row has the row's top `y`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Top-left corner of every box.
    pub boxes: Vec<Point>,
    /// The points of every edge, from the border of its source box to the
    /// border of its target box.
    pub edges: Vec<Vec<Point>>,
    /// The layer of every box (0 at the top of its component).
    pub ranks: Vec<usize>,
    pub width: f64,
    pub height: f64,
}

/// Lays out boxes of `sizes` (width, height; all of one height) with
/// `edges` (from, to) between them.
pub fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Layout {
    let n = sizes.len();
    let height = sizes.iter().map(|s| s.1).fold(0.0, f64::max);
    // Components.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut v: usize) -> usize {
        while parent[v] != v {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        v
    }
    for &(a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut components: Vec<Vec<usize>> = vec![];
    let mut component_of: HashMap<usize, usize> = HashMap::new();
    for v in 0..n {
        let r = find(&mut parent, v);
        let c = *component_of.entry(r).or_insert_with(|| {
            components.push(vec![]);
            components.len() - 1
        });
        components[c].push(v);
    }
    let mut result = Layout {
        boxes: vec![Point { x: 0.0, y: 0.0 }; n],
        edges: vec![vec![]; edges.len()],
        ranks: vec![0; n],
        width: 0.0,
        height: 0.0,
    };
    // Single boxes (an unused input) go after the components with edges,
    // side by side in one row.
    components.sort_by_key(|c| c.len() == 1);
    let mut x0 = 0.0;
    for nodes in &components {
        let local: HashMap<usize, usize> = nodes.iter().enumerate().map(|(i, &v)| (v, i)).collect();
        let sub_sizes: Vec<(f64, f64)> = nodes.iter().map(|&v| sizes[v]).collect();
        let sub_edges: Vec<(usize, usize, usize)> = edges
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| local.contains_key(a))
            .map(|(i, &(a, b))| (local[&a], local[&b], i))
            .collect();
        let part =
            component(&sub_sizes, &sub_edges.iter().map(|&(a, b, _)| (a, b)).collect::<Vec<_>>(), height);
        for (i, &v) in nodes.iter().enumerate() {
            result.boxes[v] = Point { x: part.boxes[i].x + x0, y: part.boxes[i].y };
            result.ranks[v] = part.ranks[i];
        }
        for (j, &(_, _, i)) in sub_edges.iter().enumerate() {
            result.edges[i] = part.edges[j].iter().map(|p| Point { x: p.x + x0, y: p.y }).collect();
        }
        x0 += part.width + COMPONENT_GAP;
        result.height = result.height.max(part.height);
    }
    result.width = (x0 - COMPONENT_GAP).max(0.0);
    result
}

/// A node of the layered graph: a box or a dummy of a long edge.
#[derive(Clone, Debug)]
struct Slot {
    width: f64,
    rank: usize,
    /// The x of the centre.
    x: f64,
    dummy: bool,
}

/// Lays out one connected component.
fn component(sizes: &[(f64, f64)], edges: &[(usize, usize)], height: f64) -> Layout {
    let n = sizes.len();
    // 1. Break cycles: depth-first from nodes in index order; an edge to a
    // node on the stack is reversed.
    let mut out: Vec<Vec<(usize, usize)>> = vec![vec![]; n];
    for (i, &(a, b)) in edges.iter().enumerate() {
        out[a].push((b, i));
    }
    let mut reversed = vec![false; edges.len()];
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&(w, i)) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => reversed[i] = true,
                    _ => {}
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    // Edges as laid out (upper → lower), self-loops dropped.
    let directed: Vec<(usize, usize)> =
        edges.iter().zip(&reversed).map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) }).collect();

    // 2. Longest-path layering, in a topological order (Kahn).
    let mut indegree = vec![0usize; n];
    let mut succ: Vec<Vec<usize>> = vec![vec![]; n];
    for &(a, b) in &directed {
        if a != b {
            indegree[b] += 1;
            succ[a].push(b);
        }
    }
    let mut rank = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).rev().collect();
    while let Some(v) = ready.pop() {
        for &w in &succ[v] {
            rank[w] = rank[w].max(rank[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    // A source moves down to the row above its highest successor, so that
    // an input (a target read only by the loss) sits next to its use.
    for v in 0..n {
        if directed.iter().all(|&(_, b)| b != v) {
            if let Some(lowest) = succ[v].iter().map(|&w| rank[w]).min() {
                rank[v] = lowest.saturating_sub(1);
            }
        }
    }
    let ranks = rank.iter().max().map_or(0, |&r| r + 1);

    // 3. Dummies: every edge becomes a chain of slots, one per row.
    let mut slots: Vec<Slot> =
        (0..n).map(|v| Slot { width: sizes[v].0, rank: rank[v], x: 0.0, dummy: false }).collect();
    let mut chains: Vec<Vec<usize>> = vec![];
    for &(a, b) in &directed {
        let mut chain = vec![a];
        if a != b {
            for r in rank[a] + 1..rank[b] {
                slots.push(Slot { width: DUMMY_WIDTH, rank: r, x: 0.0, dummy: true });
                chain.push(slots.len() - 1);
            }
        }
        chain.push(b);
        chains.push(chain);
    }
    let m = slots.len();
    let mut up: Vec<Vec<usize>> = vec![vec![]; m];
    let mut down: Vec<Vec<usize>> = vec![vec![]; m];
    for chain in &chains {
        for pair in chain.windows(2) {
            if pair[0] != pair[1] {
                down[pair[0]].push(pair[1]);
                up[pair[1]].push(pair[0]);
            }
        }
    }

    // 4. Ordering. Initial order: depth first from the sources, so that
    // connected slots start near each other.
    let mut rows: Vec<Vec<usize>> = vec![vec![]; ranks];
    let mut seen = vec![false; m];
    for start in 0..m {
        if seen[start] || !up[start].is_empty() {
            continue;
        }
        let mut stack = vec![start];
        while let Some(v) = stack.pop() {
            if seen[v] {
                continue;
            }
            seen[v] = true;
            rows[slots[v].rank].push(v);
            for &w in down[v].iter().rev() {
                if !seen[w] {
                    stack.push(w);
                }
            }
        }
    }
    for (v, s) in seen.iter().enumerate() {
        if !s {
            rows[slots[v].rank].push(v);
        }
    }
    let mut best = rows.clone();
    let mut best_crossings = crossings(&rows, &down);
    for sweep in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        let downward = sweep % 2 == 0;
        let order: Vec<usize> =
            if downward { (1..ranks).collect() } else { (0..ranks.saturating_sub(1)).rev().collect() };
        for r in order {
            let (fixed, neighbours) = if downward { (r - 1, &up) } else { (r + 1, &down) };
            let position: HashMap<usize, usize> =
                rows[fixed].iter().enumerate().map(|(i, &v)| (v, i)).collect();
            let mut keyed: Vec<(f64, usize, usize)> = rows[r]
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ps: Vec<f64> =
                        neighbours[v].iter().filter_map(|w| position.get(w)).map(|&p| p as f64).collect();
                    let key = if ps.is_empty() { i as f64 } else { ps.iter().sum::<f64>() / ps.len() as f64 };
                    (key, i, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[r] = keyed.into_iter().map(|(_, _, v)| v).collect();
        }
        let c = crossings(&rows, &down);
        if c < best_crossings {
            best_crossings = c;
            best = rows.clone();
        }
    }
    let rows = best;

    // 5. Coordinates: packed rows, then passes pulling each slot towards its
    // neighbours.
    for row in &rows {
        let mut x = 0.0;
        for &v in row {
            slots[v].x = x + slots[v].width / 2.0;
            x += slots[v].width + NODE_GAP;
        }
    }
    for pass in 0..PASSES {
        let downward = pass % 2 == 0;
        let order: Vec<usize> = if downward { (0..ranks).collect() } else { (0..ranks).rev().collect() };
        for r in order {
            let neighbours = if downward { &up } else { &down };
            let desired: Vec<(f64, f64)> = rows[r]
                .iter()
                .map(|&v| {
                    let others = if neighbours[v].is_empty() {
                        if downward {
                            &down[v]
                        } else {
                            &up[v]
                        }
                    } else {
                        &neighbours[v]
                    };
                    let xs: Vec<f64> = others.iter().map(|&w| slots[w].x).collect();
                    // Dummies pull harder, which straightens long edges.
                    let weight = if slots[v].dummy { 4.0 } else { 1.0 };
                    if xs.is_empty() {
                        (slots[v].x, 0.1)
                    } else {
                        (xs.iter().sum::<f64>() / xs.len() as f64, weight)
                    }
                })
                .collect();
            let widths: Vec<f64> = rows[r].iter().map(|&v| slots[v].width).collect();
            let xs = place_row(&desired, &widths);
            for (&v, x) in rows[r].iter().zip(xs) {
                slots[v].x = x;
            }
        }
    }
    let left = slots.iter().map(|s| s.x - s.width / 2.0).fold(f64::INFINITY, f64::min);
    let right = slots.iter().map(|s| s.x + s.width / 2.0).fold(f64::NEG_INFINITY, f64::max);
    let left = if left.is_finite() { left } else { 0.0 };
    for s in &mut slots {
        s.x -= left;
    }
    let row_top = |r: usize| r as f64 * (height + ROW_GAP);

    // 6. Edges: ports spread along the borders, in the order of the other
    // ends.
    let mut out_ports: Vec<Vec<(f64, usize)>> = vec![vec![]; n];
    let mut in_ports: Vec<Vec<(f64, usize)>> = vec![vec![]; n];
    for (i, chain) in chains.iter().enumerate() {
        if chain[0] == chain[chain.len() - 1] {
            continue;
        }
        out_ports[chain[0]].push((slots[chain[1]].x, i));
        in_ports[chain[chain.len() - 1]].push((slots[chain[chain.len() - 2]].x, i));
    }
    let port = |ports: &mut Vec<(f64, usize)>, v: usize, slots: &[Slot]| -> HashMap<usize, f64> {
        ports.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let k = ports.len() as f64;
        let span = slots[v].width * 0.6;
        ports
            .iter()
            .enumerate()
            .map(|(j, &(_, i))| {
                let offset = if ports.len() == 1 { 0.0 } else { -span / 2.0 + span * j as f64 / (k - 1.0) };
                (i, slots[v].x + offset)
            })
            .collect()
    };
    let mut start_x: HashMap<usize, f64> = HashMap::new();
    let mut end_x: HashMap<usize, f64> = HashMap::new();
    for v in 0..n {
        start_x.extend(port(&mut out_ports[v], v, &slots));
        end_x.extend(port(&mut in_ports[v], v, &slots));
    }
    let mut edge_points: Vec<Vec<Point>> = vec![];
    for (i, chain) in chains.iter().enumerate() {
        let (a, b) = (chain[0], chain[chain.len() - 1]);
        let mut points = vec![];
        if a == b {
            // A box reading itself (a cycle inside one box): a loop on its
            // right side.
            let right = slots[a].x + slots[a].width / 2.0;
            let top = row_top(slots[a].rank);
            points.push(Point { x: right, y: top + height * 0.7 });
            points.push(Point { x: right + 16.0, y: top + height * 0.5 });
            points.push(Point { x: right, y: top + height * 0.3 });
        } else {
            points.push(Point { x: start_x[&i], y: row_top(slots[a].rank) + height });
            for &d in &chain[1..chain.len() - 1] {
                let top = row_top(slots[d].rank);
                points.push(Point { x: slots[d].x, y: top });
                points.push(Point { x: slots[d].x, y: top + height });
            }
            points.push(Point { x: end_x[&i], y: row_top(slots[b].rank) });
        }
        if reversed[i] {
            points.reverse();
        }
        edge_points.push(points);
    }
    Layout {
        boxes: (0..n)
            .map(|v| Point { x: slots[v].x - slots[v].width / 2.0, y: row_top(slots[v].rank) })
            .collect(),
        edges: edge_points,
        ranks: rank,
        width: right - left,
        height: if ranks == 0 { 0.0 } else { row_top(ranks - 1) + height },
    }
}

/// Positions of a row's centres closest (weighted least squares) to
/// `desired` (position, weight) that keep the row's order with `NODE_GAP`
/// between neighbours of `widths`.
///
/// With `offset[i]` the least distance from the first centre to the i-th,
/// `y = x - offset` must be non-decreasing: isotonic regression of
/// `desired - offset`, solved by pooling adjacent violators.
fn place_row(desired: &[(f64, f64)], widths: &[f64]) -> Vec<f64> {
    let mut offsets = Vec::with_capacity(widths.len());
    let mut acc = 0.0;
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            acc += (widths[i - 1] + w) / 2.0 + NODE_GAP;
        }
        offsets.push(acc);
    }
    // Blocks of (weighted mean, total weight, count).
    let mut blocks: Vec<(f64, f64, usize)> = vec![];
    for (i, &(d, w)) in desired.iter().enumerate() {
        blocks.push((d - offsets[i], w, 1));
        while blocks.len() > 1 {
            let (m2, w2, c2) = blocks[blocks.len() - 1];
            let (m1, w1, c1) = blocks[blocks.len() - 2];
            if m1 <= m2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = ((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2);
        }
    }
    let mut xs = Vec::with_capacity(desired.len());
    for (m, _, c) in blocks {
        for _ in 0..c {
            let i = xs.len();
            xs.push(m + offsets[i]);
        }
    }
    xs
}

/// The number of crossings between consecutive rows.
fn crossings(rows: &[Vec<usize>], down: &[Vec<usize>]) -> usize {
    let mut total = 0;
    for pair in rows.windows(2) {
        let position: HashMap<usize, usize> = pair[1].iter().enumerate().map(|(i, &v)| (v, i)).collect();
        // Edges as (upper position, lower position), sorted; crossings are
        // the inversions of the lower positions.
        let mut ends: Vec<(usize, usize)> = vec![];
        for (i, &v) in pair[0].iter().enumerate() {
            for w in &down[v] {
                if let Some(&j) = position.get(w) {
                    ends.push((i, j));
                }
            }
        }
        ends.sort_unstable();
        let lower: Vec<usize> = ends.iter().map(|e| e.1).collect();
        total += inversions(&lower);
    }
    total
}

/// Pairs i < j with `values[i] > values[j]`, counted by merge sort.
fn inversions(values: &[usize]) -> usize {
    fn sort(v: &mut Vec<usize>) -> usize {
        if v.len() < 2 {
            return 0;
        }
        let mut right = v.split_off(v.len() / 2);
        let mut count = sort(v) + sort(&mut right);
        let mut merged = Vec::with_capacity(v.len() + right.len());
        let (mut i, mut j) = (0, 0);
        while i < v.len() && j < right.len() {
            if v[i] <= right[j] {
                merged.push(v[i]);
                i += 1;
            } else {
                count += v.len() - i;
                merged.push(right[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&v[i..]);
        merged.extend_from_slice(&right[j..]);
        *v = merged;
        count
    }
    sort(&mut values.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_order_and_gaps() {
        let xs = place_row(&[(0.0, 1.0), (0.0, 1.0), (100.0, 1.0)], &[20.0, 20.0, 20.0]);
        assert!((xs[1] - xs[0] - (20.0 + NODE_GAP)).abs() < 1e-9, "{xs:?}");
        assert!((xs[2] - 100.0).abs() < 1e-9, "{xs:?}");
    }

    #[test]
    fn inversions_are_counted() {
        assert_eq!(inversions(&[0, 1, 2]), 0);
        assert_eq!(inversions(&[2, 1, 0]), 3);
        assert_eq!(inversions(&[1, 0, 1]), 1);
    }

    /// A diamond with a skip edge: every edge points down, starts on the
    /// bottom border of its source and ends on the top border of its target.
    #[test]
    fn edges_go_down_from_border_to_border() {
        let sizes = vec![(60.0, 30.0); 4];
        let edges = [(0, 1), (1, 2), (0, 2), (2, 3), (0, 3)];
        let l = layout(&sizes, &edges);
        assert_eq!(l.ranks, [0, 1, 2, 3]);
        for (e, &(a, b)) in l.edges.iter().zip(&edges) {
            let (first, last) = (e[0], e[e.len() - 1]);
            assert!((first.y - (l.boxes[a].y + 30.0)).abs() < 1e-9);
            assert!((last.y - l.boxes[b].y).abs() < 1e-9);
            assert!(first.x >= l.boxes[a].x && first.x <= l.boxes[a].x + 60.0);
            assert!(last.x >= l.boxes[b].x && last.x <= l.boxes[b].x + 60.0);
        }
    }

    /// A cycle is drawn: one edge reversed, its arrow still at its target.
    #[test]
    fn cycles_are_broken() {
        let sizes = vec![(40.0, 20.0); 3];
        let edges = [(0, 1), (1, 2), (2, 0)];
        let l = layout(&sizes, &edges);
        let e = &l.edges[2];
        assert!((e[0].y - l.boxes[2].y).abs() < 1e-9, "starts on the top of box 2");
        assert!((e[e.len() - 1].y - (l.boxes[0].y + 20.0)).abs() < 1e-9, "ends on the bottom of box 0");
    }
}
