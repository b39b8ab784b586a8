//! `distort(SOURCE, rotate: DEG, shift: F)`: the images of a source turned
//! and moved at random, for models that must find the object before they
//! classify it (spatial transformers). [`Distortion`] gives the rule.
//!
//! Example `i` draws its angle and its two offsets from the train
//! section's seed and `i` alone (Philox, as the synthetic generators), so
//! an example looks the same in every epoch, every run with that seed and
//! whatever the other examples are. The transformed image is resampled
//! bilinearly; a point that maps from outside the image reads 0 (an empty
//! background, as MNIST's).

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::config::Distortion;

use super::rng::{stream, Draws};
use super::{ArrayValue, Part, Raw};
use crate::Error;

/// The stream purpose of the distortions' draws.
const PURPOSE: u64 = 30;

/// One example's distortion: the angle (radians, counter-clockwise as
/// seen with row 0 at the top) and the offsets in cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Motion {
    pub angle: f64,
    pub dy: f64,
    pub dx: f64,
}

/// The motion of example `item` under `d` for images of `rows × columns`.
pub(crate) fn motion(d: &Distortion, seed: u64, item: u64, rows: usize, columns: usize) -> Motion {
    let mut draws = Draws::new(seed, stream(PURPOSE, item));
    let angle = draws.range(-d.rotate, d.rotate).to_radians();
    let dy = draws.range(-d.shift, d.shift) * rows as f64;
    let dx = draws.range(-d.shift, d.shift) * columns as f64;
    Motion { angle, dy, dx }
}

/// `image` (`rows × columns`, row-major) moved by `m`: the output at
/// `(i, j)` is the input, bilinearly interpolated, at the point that the
/// rotation about the centre followed by the translation carries to
/// `(i, j)`; taps outside the image read 0.
pub(crate) fn apply(image: &[f32], rows: usize, columns: usize, m: Motion, out: &mut [f32]) {
    let (cy, cx) = ((rows as f64 - 1.0) / 2.0, (columns as f64 - 1.0) / 2.0);
    let (sin, cos) = m.angle.sin_cos();
    let tap = |r: isize, c: isize| -> f64 {
        if r < 0 || c < 0 || r >= rows as isize || c >= columns as isize {
            0.0
        } else {
            f64::from(image[r as usize * columns + c as usize])
        }
    };
    for i in 0..rows {
        for j in 0..columns {
            // Undo the translation, then the rotation (by −angle).
            let (y, x) = (i as f64 - m.dy - cy, j as f64 - m.dx - cx);
            let sy = cos * y + sin * x + cy;
            let sx = -sin * y + cos * x + cx;
            let (r0, c0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - r0, sx - c0);
            let (r0, c0) = (r0 as isize, c0 as isize);
            let v = (1.0 - fy) * ((1.0 - fx) * tap(r0, c0) + fx * tap(r0, c0 + 1))
                + fy * ((1.0 - fx) * tap(r0 + 1, c0) + fx * tap(r0 + 1, c0 + 1));
            out[i * columns + j] = v as f32;
        }
    }
}

/// `raw` with its images `x` distorted by `d` under `seed` (the targets
/// unchanged); `origin` names the source in messages.
pub(crate) fn distort(raw: Raw, d: &Distortion, seed: u64, origin: &str) -> Result<Raw, Error> {
    let here = std::path::PathBuf::from(origin);
    let shape = raw.x.value.shape().to_vec();
    if shape.len() < 3 {
        return Err(Error::new(
            &here,
            format!(
                "{}: array `{}` has shape {shape:?}; `distort` moves images, whose last two axes are rows \
                 and columns ([n, H, W] or [n, C, H, W])",
                raw.origin, raw.x.array
            ),
        ));
    }
    let (rows, columns) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let plane = rows * columns;
    let per: usize = shape[1..].iter().product();
    let values: Vec<f32> = match &raw.x.value {
        ArrayValue::F32(a) => a.iter().copied().collect(),
        ArrayValue::I32(a) => a.iter().map(|&v| v as f32).collect(),
    };
    let mut out = vec![0f32; values.len()];
    if plane > 0 {
        for (item, (example, moved)) in values.chunks(per).zip(out.chunks_mut(per)).enumerate() {
            let m = motion(d, seed, item as u64, rows, columns);
            for (image, target) in example.chunks(plane).zip(moved.chunks_mut(plane)) {
                apply(image, rows, columns, m, target);
            }
        }
    }
    let value = ArrayD::from_shape_vec(IxDyn(&shape), out)
        .map_err(|e| Error::new(&here, format!("internal error distorting images: {e}")))?;
    let x = Part { value: ArrayValue::F32(value), ..raw.x };
    // The images no longer lie on the source's grid.
    Ok(Raw { x, origin: origin.to_string(), grid: None, ..raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn still() -> Motion {
        Motion { angle: 0.0, dy: 0.0, dx: 0.0 }
    }

    #[test]
    fn no_motion_is_the_identity() {
        let image: Vec<f32> = (0..20).map(|v| v as f32).collect();
        let mut out = vec![0.0; 20];
        apply(&image, 4, 5, still(), &mut out);
        assert_eq!(out, image);
    }

    #[test]
    fn whole_cell_shifts_move_pixels_and_fill_with_zeros() {
        let image: Vec<f32> = (1..=12).map(|v| v as f32).collect(); // 3 × 4
        let mut out = vec![0.0; 12];
        apply(&image, 3, 4, Motion { dy: 1.0, dx: -1.0, ..still() }, &mut out);
        // Down one row, left one column: output (i, j) = input (i − 1, j + 1).
        let want = [0., 0., 0., 0., 2., 3., 4., 0., 6., 7., 8., 0.];
        assert_eq!(out, want);
    }

    #[test]
    fn a_half_cell_shift_averages_neighbours() {
        let image = [0.0, 2.0, 4.0, 6.0]; // 1 × 4
        let mut out = vec![0.0; 4];
        apply(&image, 1, 4, Motion { dx: 0.5, ..still() }, &mut out);
        assert_eq!(out, [0.0, 1.0, 3.0, 5.0]);
    }

    #[test]
    fn a_quarter_turn_turns_the_image() {
        // 3 × 3 with a mark right of the centre: a counter-clockwise quarter
        // turn (row 0 on top) carries it above the centre.
        let mut image = [0.0f32; 9];
        image[5] = 1.0;
        let mut out = [0.0f32; 9];
        apply(&image, 3, 3, Motion { angle: std::f64::consts::FRAC_PI_2, ..still() }, &mut out);
        let want = [0., 1., 0., 0., 0., 0., 0., 0., 0.];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn motions_are_reproducible_and_within_range() {
        let d = Distortion { rotate: 45.0, shift: 0.25 };
        let mut seen = vec![];
        for item in 0..200 {
            let m = motion(&d, 7, item, 28, 28);
            assert_eq!(m, motion(&d, 7, item, 28, 28));
            assert!(m.angle.abs() <= 45f64.to_radians() && m.dy.abs() <= 7.0 && m.dx.abs() <= 7.0, "{m:?}");
            seen.push(m);
        }
        assert_ne!(motion(&d, 8, 0, 28, 28), seen[0], "another seed draws other motions");
        // The draws cover the ranges: some rotation beyond 40° each way.
        assert!(seen.iter().any(|m| m.angle > 40f64.to_radians()));
        assert!(seen.iter().any(|m| m.angle < -40f64.to_radians()));
    }
}
