//! `normalize = per_variable`: zero mean and unit variance per variable,
//! from the training examples only.
//!
//! A variable is an index of an array's axis 1 (after the example axis): a
//! feature of `f32[B, F]`, a channel of `f32[B, C, H, W]`; an array with one
//! value per example is one variable. Sequences (`window(...)`, generated
//! sequences) have time on axis 1 and their variables on axis 2: a feature
//! of `f32[B, T, F]`, a channel of `f32[B, T, C, H, W]`, with one mean and
//! scale over every time step ([`Stats::axis`]). The mean and the population standard
//! deviation are accumulated in f64 over every training example and every
//! other position, leaving out missing (non-finite) values, which only
//! `missing = mask` lets through; a variable that never varies keeps scale 1 (as
//! scikit-learn's `StandardScaler` does), so constant pixels stay finite.
//! The statistics are stored in the checkpoint and applied unchanged by
//! `eval` and `predict`; predictions are mapped back with [`Stats::invert`]
//! so that metrics are in the data's physical units.

use ndarray::ArrayD;

/// The statistics of one array: `mean` and `std` per variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// The axis of the variables: 1, or 2 for sequences.
    pub axis: usize,
}

/// For an array of `shape` (leading axis = examples) with its variables on
/// `axis`: how many blocks of variables an example holds (the product of
/// the axes between the example axis and `axis`), the number of variables,
/// and how many consecutive values each variable's run has.
fn layout(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let axis = axis.max(1);
    let outer: usize = shape.iter().take(axis.min(shape.len())).skip(1).product();
    let vars = shape.get(axis).copied().unwrap_or(1);
    let inner: usize = shape.iter().skip(axis + 1).product();
    (outer, vars, inner)
}

impl Stats {
    /// The statistics of the examples `rows` of `data`, variables on `axis`.
    pub fn from_examples(data: &ArrayD<f32>, rows: &[usize], axis: usize) -> Stats {
        let shape = data.shape();
        let (outer, vars, inner) = layout(shape, axis);
        let per = outer * vars * inner;
        let flat = data.as_slice_memory_order().filter(|_| data.is_standard_layout());
        let owned;
        let flat = match flat {
            Some(f) => f,
            None => {
                owned = data.iter().copied().collect::<Vec<f32>>();
                &owned
            }
        };
        // The runs of variable `v` in example `r`.
        let runs = |r: usize, v: usize| {
            let row = &flat[r * per..(r + 1) * per];
            (0..outer).flat_map(move |o| row[(o * vars + v) * inner..(o * vars + v + 1) * inner].iter())
        };
        let mut sum = vec![0f64; vars];
        let mut count = vec![0usize; vars];
        for &r in rows {
            for (v, s) in sum.iter_mut().enumerate() {
                let run = runs(r, v).filter(|x| x.is_finite());
                *s += run.clone().map(|&x| f64::from(x)).sum::<f64>();
                count[v] += run.count();
            }
        }
        let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &c)| s / c.max(1) as f64).collect();
        let mut sq = vec![0f64; vars];
        for &r in rows {
            for (v, s) in sq.iter_mut().enumerate() {
                *s += runs(r, v)
                    .filter(|x| x.is_finite())
                    .map(|&x| (f64::from(x) - mean[v]).powi(2))
                    .sum::<f64>();
            }
        }
        let std = sq
            .iter()
            .zip(&count)
            .map(|(s, &c)| {
                let sd = (s / c.max(1) as f64).sqrt();
                if sd > 1e-12 * (1.0 + sd) && sd.is_finite() {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        Stats { mean: mean.iter().map(|&m| m as f32).collect(), std, axis: axis.max(1) }
    }

    /// `(x − mean) / std` in place, for an array of examples of `shape`.
    pub fn apply(&self, values: &mut [f32], shape: &[usize]) {
        self.map(values, shape, |x, m, s| (x - m) / s);
    }

    /// `x · std + mean` in place: back to physical units.
    pub fn invert(&self, values: &mut [f32], shape: &[usize]) {
        self.map(values, shape, |x, m, s| x * s + m);
    }

    fn map(&self, values: &mut [f32], shape: &[usize], f: impl Fn(f32, f32, f32) -> f32) {
        let (outer, vars, inner) = layout(shape, self.axis);
        if vars != self.mean.len() || inner == 0 || outer == 0 {
            return;
        }
        for block in values.chunks_mut(vars * inner) {
            for (v, run) in block.chunks_mut(inner).enumerate() {
                let (m, s) = (self.mean[v], self.std[v]);
                for x in run {
                    *x = f(*x, m, s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn statistics_per_channel_from_training_rows_only() {
        // [3 examples, 2 channels, 2 positions]; example 2 is validation.
        let data = ArrayD::from_shape_vec(
            IxDyn(&[3, 2, 2]),
            vec![1.0, 3.0, 5.0, 5.0, 3.0, 5.0, 5.0, 5.0, 100.0, 100.0, -7.0, 9.0],
        )
        .unwrap();
        let stats = Stats::from_examples(&data, &[0, 1], 1);
        assert_eq!(stats.mean, vec![3.0, 5.0]);
        assert!((stats.std[0] - 2f32.sqrt()).abs() < 1e-6);
        assert_eq!(stats.std[1], 1.0, "a constant channel keeps scale 1");
        let mut v = data.iter().copied().collect::<Vec<_>>();
        stats.apply(&mut v, data.shape());
        assert!((v[0] + 2f32.sqrt()).abs() < 1e-6);
        stats.invert(&mut v, data.shape());
        for (a, b) in v.iter().zip(data.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} {b}");
        }
    }

    #[test]
    fn one_value_per_example_is_one_variable() {
        let data = ArrayD::from_shape_vec(IxDyn(&[4]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let stats = Stats::from_examples(&data, &[0, 1, 2, 3], 1);
        assert_eq!(stats.mean, vec![2.5]);
        assert!((stats.std[0] - 1.25f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn missing_values_are_left_out_of_the_statistics() {
        // [2 examples, 1 variable, 3 positions]; NaN (missing = mask) is skipped.
        let data =
            ArrayD::from_shape_vec(IxDyn(&[2, 1, 3]), vec![1.0, f32::NAN, 3.0, 5.0, 7.0, f32::NAN]).unwrap();
        let stats = Stats::from_examples(&data, &[0, 1], 1);
        assert_eq!(stats.mean, vec![4.0]);
        assert!((stats.std[0] - 5f32.sqrt()).abs() < 1e-6, "{:?}", stats.std);
    }

    #[test]
    fn sequences_have_their_variables_on_axis_2() {
        // [2 examples, 3 time steps, 2 features]: feature 0 is 1..6 over
        // examples and steps, feature 1 is 10 everywhere.
        let values: Vec<f32> = (0..6).flat_map(|i| [i as f32 + 1.0, 10.0]).collect();
        let data = ArrayD::from_shape_vec(IxDyn(&[2, 3, 2]), values).unwrap();
        let stats = Stats::from_examples(&data, &[0, 1], 2);
        assert_eq!(stats.mean, vec![3.5, 10.0]);
        assert!((stats.std[0] - (35.0f32 / 12.0).sqrt()).abs() < 1e-6);
        assert_eq!(stats.std[1], 1.0);
        let mut v = data.iter().copied().collect::<Vec<_>>();
        stats.apply(&mut v, data.shape());
        assert_eq!(v[1], 0.0);
        assert!((v[10] - 2.5 / (35.0f32 / 12.0).sqrt()).abs() < 1e-6, "{v:?}");
        stats.invert(&mut v, data.shape());
        for (a, b) in v.iter().zip(data.iter()) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
    }
}
