//! Colour maps of the prediction maps: viridis (perceptually uniform, for
//! values) and a red–blue diverging map centred on zero (for errors,
//! increments and anomalies), each a small table of colours interpolated
//! linearly, and the grey of missing values.

use plotters::style::RGBColor;

/// viridis (van der Walt and Smith, matplotlib), 11 evenly spaced colours
/// from the lowest value to the highest.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (0x44, 0x01, 0x54),
    (0x48, 0x24, 0x75),
    (0x41, 0x44, 0x87),
    (0x35, 0x5f, 0x8d),
    (0x2a, 0x78, 0x8e),
    (0x21, 0x90, 0x8c),
    (0x22, 0xa8, 0x84),
    (0x43, 0xbf, 0x71),
    (0x7a, 0xd1, 0x51),
    (0xbb, 0xdf, 0x27),
    (0xfd, 0xe7, 0x25),
];

/// ColorBrewer RdBu (Brewer, colorbrewer2.org), 11 classes from the most
/// negative value (dark blue) through white at zero to the most positive
/// (dark red).
const RED_BLUE: [(u8, u8, u8); 11] = [
    (0x05, 0x30, 0x61),
    (0x21, 0x66, 0xac),
    (0x43, 0x93, 0xc3),
    (0x92, 0xc5, 0xde),
    (0xd1, 0xe5, 0xf0),
    (0xf7, 0xf7, 0xf7),
    (0xfd, 0xdb, 0xc7),
    (0xf4, 0xa5, 0x82),
    (0xd6, 0x60, 0x4d),
    (0xb2, 0x18, 0x2b),
    (0x67, 0x00, 0x1f),
];

/// The colour of missing (NaN) cells: a mid grey that neither map uses.
pub(super) const MISSING: RGBColor = RGBColor(150, 150, 150);

/// A colour map over a range of values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Scale {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) diverging: bool,
}

impl Scale {
    /// The scale of `values` (NaN ignored): diverging and symmetric about
    /// zero when `diverging`, or when the values take both signs and the
    /// smaller side reaches a tenth of the larger (an increment, an
    /// anomaly); else viridis from the smallest to the largest value.
    pub(super) fn of(values: impl Iterator<Item = f32> + Clone, diverging: bool) -> Scale {
        Scale::spanning(values.clone(), values, diverging)
    }

    /// The scale whose kind the values `kind` decide (as in [`Scale::of`]:
    /// observations, say) and whose range covers `all` (observations and
    /// predictions), so that a prediction below zero does not make rain
    /// rates diverging.
    pub(super) fn spanning(
        kind: impl Iterator<Item = f32>,
        all: impl Iterator<Item = f32>,
        diverging: bool,
    ) -> Scale {
        let bounds = |values: &mut dyn Iterator<Item = f32>| {
            values
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v as f64), hi.max(v as f64)))
        };
        let (klo, khi) = bounds(&mut { kind });
        let (lo, hi) = bounds(&mut { all });
        if !(lo.is_finite() && hi.is_finite()) {
            return Scale { lo: 0.0, hi: 1.0, diverging };
        }
        let both_signs = klo < 0.0 && khi > 0.0 && (-klo).min(khi) >= 0.1 * (-klo).max(khi);
        if diverging || both_signs {
            let m = lo.abs().max(hi.abs());
            let m = if m > 0.0 { m } else { 1.0 };
            return Scale { lo: -m, hi: m, diverging: true };
        }
        if lo == hi {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            return Scale { lo: lo - pad, hi: hi + pad, diverging: false };
        }
        Scale { lo, hi, diverging: false }
    }

    /// The colour of `v`; values outside the range take the colour of the
    /// nearer end, NaN the grey of missing values.
    pub(super) fn colour(&self, v: f32) -> RGBColor {
        if !v.is_finite() {
            return MISSING;
        }
        let t = ((v as f64 - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        interpolate(if self.diverging { &RED_BLUE } else { &VIRIDIS }, t)
    }
}

/// The colour at `t` in `0..=1` along `table`, linear between entries.
fn interpolate(table: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let x = t * (table.len() - 1) as f64;
    let i = (x.floor() as usize).min(table.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (table[i], table[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maps_run_from_end_to_end_and_diverging_is_white_at_zero() {
        let s = Scale::of([0.0f32, 10.0].into_iter(), false);
        assert_eq!(s.colour(0.0), RGBColor(0x44, 0x01, 0x54));
        assert_eq!(s.colour(10.0), RGBColor(0xfd, 0xe7, 0x25));
        assert_eq!(s.colour(f32::NAN), MISSING);
        let d = Scale::of([-1.0f32, 3.0].into_iter(), false);
        assert_eq!((d.lo, d.hi, d.diverging), (-3.0, 3.0, true));
        assert_eq!(d.colour(0.0), RGBColor(0xf7, 0xf7, 0xf7));
        assert_eq!(d.colour(-3.0), RGBColor(0x05, 0x30, 0x61));
        // A field of rain rates with a few small negative values is not an increment,
        // nor are rain rates whose predictions go below zero.
        assert!(!Scale::of([-0.01f32, 30.0].into_iter(), false).diverging);
        let rain = Scale::spanning([0.0f32, 20.0].into_iter(), [-8.0f32, 0.0, 20.0].into_iter(), false);
        assert_eq!((rain.lo, rain.hi, rain.diverging), (-8.0, 20.0, false));
    }
}
