//! `window(SOURCE, in: T_in, out: T_out, stride: S, tile: N)`: sequences cut
//! out of a time-ordered source ([`Window`] gives the rule).
//!
//! The source's example `t` is time step `t`: its input `x_t` and its
//! target `y_t`. Window `k` (start `s = k·S`) has the input `x_s …
//! x_{s+T_in−1}` stacked on a new axis 1 and the target `y_{s+T_in−1} …
//! y_{s+T_in+T_out−2}`, so a next-step source (`y_t = x_{t+1}`) gives the
//! `T_out` states after the input. The result is time-ordered by the
//! window's start, so `split` validates on the last windows, and a window
//! with a missing value is handled by `missing` like any example. With
//! `tile: N` each window becomes its `N × N` tiles (row-major over the last
//! two axes of both arrays, which must agree; edges that do not fill a tile
//! are left out), the tiles of one window kept together.

use ndarray::{concatenate, ArrayD, Axis, ShapeError, Slice};
use nnc_compiler::config::Window;

use super::{ArrayValue, Order, Part, Raw};
use crate::Error;

/// `raw` cut into the windows of `w`; `origin` names the window source in
/// messages.
pub(crate) fn window(raw: Raw, w: &Window, origin: &str) -> Result<Raw, Error> {
    let here = std::path::PathBuf::from(origin);
    if raw.order != Order::Chronological {
        return Err(Error::new(
            &here,
            format!(
                "{} holds independent examples, not time steps: a window needs a time-ordered source \
                 (a chronological data set such as dataset(\"stageiv_precip\"), or a file)",
                raw.origin
            ),
        ));
    }
    let n = raw.x.value.shape()[0];
    if raw.y.value.shape()[0] != n {
        return Err(Error::new(
            &here,
            format!("{}: x has {n} time steps but y has {}", raw.origin, raw.y.value.shape()[0]),
        ));
    }
    let count = w.count(n);
    if count == 0 {
        return Err(Error::new(
            &here,
            format!(
                "{} has {n} time steps, fewer than one window needs (in + out − 1 = {})",
                raw.origin,
                w.input + w.output - 1
            ),
        ));
    }
    let starts: Vec<usize> = (0..count).map(|k| k * w.stride).collect();
    let internal = |e: ShapeError| Error::new(&here, format!("internal error cutting windows: {e}"));
    // Every window lies where its first step does.
    let mut located = raw.grid.as_ref().map(|g| g.select(&starts));
    let mut x = cut(&raw.x.value, &starts, 0, w.input).map_err(internal)?;
    let mut y = cut(&raw.y.value, &starts, w.input - 1, w.output).map_err(internal)?;
    if let Some(size) = w.tile {
        let (xs, ys) = (x.shape().to_vec(), y.shape().to_vec());
        let grid = |s: &[usize]| (s.len() >= 4).then(|| (s[s.len() - 2], s[s.len() - 1]));
        match (grid(&xs), grid(&ys)) {
            (Some(gx), Some(gy)) if gx == gy && gx.0 >= size && gx.1 >= size => {
                x = tiles(&x, size).map_err(internal)?;
                y = tiles(&y, size).map_err(internal)?;
                // Tile (i, j) of a window starts i·N rows and j·N columns
                // further, in the row-major order of `tiles`.
                let (rows, cols) = (gx.0 / size, gx.1 / size);
                located = located.map(|g| {
                    let origins = g
                        .origins
                        .iter()
                        .flat_map(|&(r, c)| {
                            (0..rows).flat_map(move |i| (0..cols).map(move |j| (r + i * size, c + j * size)))
                        })
                        .collect();
                    super::Grid { origins, ..g }
                });
            }
            (Some(gx), Some(gy)) if gx == gy => {
                return Err(Error::new(
                    &here,
                    format!(
                        "the fields of {} are {}×{}, smaller than one {size}×{size} tile",
                        raw.origin, gx.0, gx.1
                    ),
                ))
            }
            _ => {
                return Err(Error::new(
                    &here,
                    format!(
                    "`tile` needs input and target fields on the same grid (last two axes); the windows of \
                         {} are x {xs:?} and y {ys:?}",
                    raw.origin
                ),
                ))
            }
        }
    }
    // The variables of axis 1 moved to axis 2: per-variable labels no longer apply.
    let part = |p: Part, value: ArrayValue| Part { value, variables: vec![], source: here.clone(), ..p };
    Ok(Raw {
        x: part(raw.x, x),
        y: part(raw.y, y),
        order: Order::Chronological,
        origin: origin.to_string(),
        variable_axis: raw.variable_axis + 1,
        grid: located,
    })
}

/// For every start `s`, examples `s + offset … s + offset + len − 1` of `a`
/// stacked on a new axis 1.
fn cut(a: &ArrayValue, starts: &[usize], offset: usize, len: usize) -> Result<ArrayValue, ShapeError> {
    fn go<T: Clone>(
        a: &ArrayD<T>,
        starts: &[usize],
        offset: usize,
        len: usize,
    ) -> Result<ArrayD<T>, ShapeError> {
        let mut shape = vec![starts.len(), len];
        shape.extend_from_slice(&a.shape()[1..]);
        let mut values = Vec::with_capacity(shape.iter().product());
        for &s in starts {
            let part = a.slice_axis(Axis(0), Slice::from(s + offset..s + offset + len));
            values.extend(part.iter().cloned());
        }
        // `values` holds exactly the elements of `shape`, in row-major order.
        ArrayD::from_shape_vec(shape, values)
    }
    Ok(match a {
        ArrayValue::F32(a) => ArrayValue::F32(go(a, starts, offset, len)?),
        ArrayValue::I32(a) => ArrayValue::I32(go(a, starts, offset, len)?),
    })
}

/// Every example of `a` cut into the `size × size` tiles of its last two
/// axes (row-major), the tiles of one example consecutive.
fn tiles(a: &ArrayValue, size: usize) -> Result<ArrayValue, ShapeError> {
    fn go<T: Clone>(a: &ArrayD<T>, size: usize) -> Result<ArrayD<T>, ShapeError> {
        let r = a.ndim();
        let (rows, cols) = (a.shape()[r - 2] / size, a.shape()[r - 1] / size);
        let mut parts = Vec::with_capacity(a.shape()[0] * rows * cols);
        for example in a.axis_chunks_iter(Axis(0), 1) {
            for i in 0..rows {
                for j in 0..cols {
                    let tile = example
                        .clone()
                        .slice_axis_move(Axis(r - 2), Slice::from(i * size..(i + 1) * size))
                        .slice_axis_move(Axis(r - 1), Slice::from(j * size..(j + 1) * size));
                    parts.push(tile);
                }
            }
        }
        // Every part has the same shape [1, ..., size, size].
        concatenate(Axis(0), &parts)
    }
    Ok(match a {
        ArrayValue::F32(a) => ArrayValue::F32(go(a, size)?),
        ArrayValue::I32(a) => ArrayValue::I32(go(a, size)?),
    })
}
