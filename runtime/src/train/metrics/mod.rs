//! Validation metrics, accumulated batch by batch.
//!
//! Training reports, besides the loss, the metrics a `train` section lists
//! (`metrics = [rmse, csi(0.5), dice]`). The validation set arrives in
//! batches, so each metric keeps a small accumulator — sums or counts — that
//! [`Metrics::update`] feeds and [`Metrics::finish`] turns into one number.
//! Predictions and targets are in physical units (the caller undoes any
//! normalisation), so thresholds are in the units of the data.
//!
//! The leading axis of every array is the example axis. Definitions:
//!
//! - **rmse**, **mae**: root-mean-square and mean absolute error over every
//!   element; prediction and target have the same shape and the target is
//!   `f32`. A target element that is NaN is missing (`missing = mask`) and
//!   left out. Sums are compensated (Neumaier) `f64` sums, so a different
//!   batching changes the result by at most a few ulps. With
//!   `per_variable: true` the metric also reports one value per variable
//!   (index of axis 1), labelled `rmse.NAME` with the variable's name when
//!   the source names them (a shipped data set's variables, the selected
//!   columns of a CSV file; [`Metrics::name_variables`]), else `rmse.0`,
//!   `rmse.1`, ….
//! - **accuracy**: the fraction of positions (example × any trailing
//!   positions) whose predicted class equals the target class. Classes:
//!   - `i32` labels `[N, ...]` against scores `[N, C, ...]` with `C > 1`: the
//!     argmax over axis 1 of the scores;
//!   - `f32` targets of the prediction's shape `[N, C, ...]` with `C > 1`
//!     (one-hot or probabilities): the argmax over axis 1 of both;
//!   - single-channel predictions `[N, 1, ...]` or `[N]` are read as
//!     probabilities of class 1: the class is `value ≥ 0.5`, for `f32`
//!     targets of the same shape too; `i32` targets must then be 0 or 1 and
//!     may omit the channel axis.
//!
//!   An argmax takes the lowest index among ties; a NaN counts as larger than
//!   any number (the first NaN wins, as in NumPy and PyTorch).
//! - **csi**, **pod**, **far**, **hss** at threshold `t`: an event is
//!   `value ≥ t`, for prediction and target alike, over all elements (same
//!   shapes; an `i32` target is compared as a number). With the contingency
//!   counts a = hits, b = false alarms, c = misses, d = correct negatives:
//!   CSI = a/(a+b+c), POD = a/(a+c), FAR = b/(a+b),
//!   HSS = 2(ad−bc)/((a+c)(c+d)+(a+b)(b+d)). Counts are `u64` and the final
//!   arithmetic is exact up to one rounding, so any batching gives the same
//!   bits. A NaN prediction is never an event; a NaN target is missing and
//!   left out.
//! - **dice**: Dice of hard masks. Classes are found as for accuracy; per
//!   class k, Dice = 2|P∩T|/(|P|+|T|) with P, T the positions predicted and
//!   labelled k, counted over all examples; the result is the mean over the
//!   classes that occur in P or T. With several channels every channel is a
//!   class (background included); a single-channel prediction has the one
//!   class "value ≥ 0.5" (the foreground), as the `dice` loss averages over
//!   the prediction's channels.
//!
//! A metric with nothing to measure (no elements, or a zero denominator such
//! as CSI without any event) is NaN. Everything is deterministic: the same
//! batches give the same bits.
//!
//! [`Metrics::update`] checks every metric before changing any accumulator,
//! so a batch that is rejected leaves the state as it was.

use ndarray::ArrayViewD;
use nnc_compiler::config::Metric;

/// The target of a batch: real values (regression, one-hot, probabilities) or
/// integer class labels.
#[derive(Clone, Debug)]
pub enum TargetView<'a> {
    F32(ArrayViewD<'a, f32>),
    I32(ArrayViewD<'a, i32>),
}

impl TargetView<'_> {
    fn shape(&self) -> &[usize] {
        match self {
            TargetView::F32(t) => t.shape(),
            TargetView::I32(t) => t.shape(),
        }
    }

    fn dtype(&self) -> &'static str {
        match self {
            TargetView::F32(_) => "f32",
            TargetView::I32(_) => "i32",
        }
    }
}

/// The stable key of a metric in logs and plots: its name, and for the
/// thresholded scores `@` and the threshold in Rust's shortest `f64` form
/// (`csi@0.5`, `pod@2`).
pub fn label(m: &Metric) -> String {
    match m {
        Metric::Csi(t) | Metric::Pod(t) | Metric::Far(t) | Metric::Hss(t) => format!("{}@{}", m.name(), t),
        _ => m.name().to_string(),
    }
}

/// Accumulators for a list of metrics, fed one validation batch at a time.
#[derive(Clone, Debug)]
pub struct Metrics {
    entries: Vec<(Metric, Acc)>,
    /// Names of the target's variables for per-variable labels.
    variables: Vec<String>,
}

impl Metrics {
    /// Empty accumulators for `metrics`, reported in this order.
    pub fn new(metrics: &[Metric]) -> Metrics {
        let entries = metrics.iter().map(|m| (*m, Acc::empty(m))).collect();
        Metrics { entries, variables: vec![] }
    }

    /// Names the variables (axis 1) in per-variable labels (`rmse.p`); a
    /// list that does not match the number of variables is not used.
    pub fn name_variables(&mut self, names: &[String]) {
        self.variables = names.to_vec();
    }

    /// Adds one batch. `pred` and `target` have the example axis first. An
    /// error names the metric and both shapes; on error no accumulator
    /// changes.
    pub fn update(&mut self, pred: ArrayViewD<'_, f32>, target: TargetView<'_>) -> Result<(), String> {
        let mut deltas = Vec::with_capacity(self.entries.len());
        for (m, acc) in &self.entries {
            let delta = batch(m, acc, &pred, &target).map_err(|e| {
                format!(
                    "metric {}: {e} (prediction f32{:?}, target {}{:?})",
                    label(m),
                    pred.shape(),
                    target.dtype(),
                    target.shape()
                )
            })?;
            deltas.push(delta);
        }
        for ((_, acc), delta) in self.entries.iter_mut().zip(deltas) {
            acc.merge(delta);
        }
        Ok(())
    }

    /// `(label, value)` of every metric, in the order given to [`Metrics::new`];
    /// NaN where the metric is undefined.
    pub fn finish(&self) -> Vec<(String, f64)> {
        let mut out = vec![];
        for (m, acc) in &self.entries {
            out.push((label(m), acc.value(m)));
            let (Metric::Rmse { per_variable: true } | Metric::Mae { per_variable: true }) = m else {
                continue;
            };
            let Acc::Error { vars, .. } = acc else { continue };
            let named = self.variables.len() == vars.len();
            for (i, (sum, n)) in vars.iter().enumerate() {
                let name = if named { self.variables[i].clone() } else { i.to_string() };
                let one = Acc::Error { sum: *sum, n: *n, vars: vec![] };
                out.push((format!("{}.{name}", label(m)), one.value(m)));
            }
        }
        out
    }
}

/// A compensated `f64` sum (Neumaier's variant of Kahan summation).
#[derive(Clone, Copy, Debug, Default)]
struct Sum {
    sum: f64,
    comp: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn total(&self) -> f64 {
        self.sum + self.comp
    }
}

/// The state of one metric (also the contribution of one batch).
#[derive(Clone, Debug)]
enum Acc {
    /// rmse (sum of squares) or mae (sum of absolute values), over `n` elements.
    Error {
        sum: Sum,
        n: u64,
        /// Per variable (axis 1) when the metric asks for it.
        vars: Vec<(Sum, u64)>,
    },
    Correct {
        correct: u64,
        total: u64,
    },
    /// Contingency table: hits, false alarms, misses, correct negatives.
    Table {
        a: u64,
        b: u64,
        c: u64,
        d: u64,
    },
    /// Per class: |P∩T|, |P|, |T|.
    Dice {
        classes: Vec<[u64; 3]>,
    },
}

impl Acc {
    fn empty(m: &Metric) -> Acc {
        match m {
            Metric::Rmse { .. } | Metric::Mae { .. } => {
                Acc::Error { sum: Sum::default(), n: 0, vars: vec![] }
            }
            Metric::Accuracy => Acc::Correct { correct: 0, total: 0 },
            Metric::Csi(_) | Metric::Pod(_) | Metric::Far(_) | Metric::Hss(_) => {
                Acc::Table { a: 0, b: 0, c: 0, d: 0 }
            }
            Metric::Dice => Acc::Dice { classes: vec![] },
        }
    }

    fn merge(&mut self, delta: Acc) {
        match (self, delta) {
            (Acc::Error { sum, n, vars }, Acc::Error { sum: s, n: k, vars: v }) => {
                sum.add(s.sum);
                sum.add(s.comp);
                *n += k;
                if vars.is_empty() {
                    *vars = v;
                } else {
                    for ((sum, n), (s, k)) in vars.iter_mut().zip(v) {
                        sum.add(s.sum);
                        sum.add(s.comp);
                        *n += k;
                    }
                }
            }
            (Acc::Correct { correct, total }, Acc::Correct { correct: c, total: t }) => {
                *correct += c;
                *total += t;
            }
            (Acc::Table { a, b, c, d }, Acc::Table { a: a2, b: b2, c: c2, d: d2 }) => {
                *a += a2;
                *b += b2;
                *c += c2;
                *d += d2;
            }
            (Acc::Dice { classes }, Acc::Dice { classes: delta }) => {
                if classes.is_empty() {
                    *classes = delta;
                } else {
                    for (acc, x) in classes.iter_mut().zip(delta) {
                        for (s, v) in acc.iter_mut().zip(x) {
                            *s += v;
                        }
                    }
                }
            }
            // `batch` returns the variant of the accumulator it is given.
            _ => unreachable!("metric accumulator and batch contribution differ in kind"),
        }
    }

    fn value(&self, m: &Metric) -> f64 {
        match self {
            Acc::Error { n: 0, .. } => f64::NAN,
            Acc::Error { sum, n, .. } => {
                let mean = sum.total() / *n as f64;
                match m {
                    Metric::Rmse { .. } => mean.sqrt(),
                    _ => mean,
                }
            }
            Acc::Correct { correct, total } => ratio(*correct as u128, *total as u128),
            Acc::Table { a, b, c, d } => {
                let (a, b, c, d) = (*a as u128, *b as u128, *c as u128, *d as u128);
                match m {
                    Metric::Csi(_) => ratio(a, a + b + c),
                    Metric::Pod(_) => ratio(a, a + c),
                    Metric::Far(_) => ratio(b, a + b),
                    _ => {
                        let den = (a + c) * (c + d) + (a + b) * (b + d);
                        let (ad, bc) = (a * d, b * c);
                        let num = if ad >= bc { 2 * (ad - bc) } else { 2 * (bc - ad) };
                        let v = ratio(num, den);
                        if ad >= bc {
                            v
                        } else {
                            -v
                        }
                    }
                }
            }
            Acc::Dice { classes } => {
                let mut sum = 0.0;
                let mut present = 0usize;
                for [inter, p, t] in classes {
                    if p + t > 0 {
                        sum += 2.0 * *inter as f64 / (p + t) as f64;
                        present += 1;
                    }
                }
                if present == 0 {
                    f64::NAN
                } else {
                    sum / present as f64
                }
            }
        }
    }
}

/// `num / den` with one rounding, NaN for a zero denominator.
fn ratio(num: u128, den: u128) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// The contribution of one batch to the metric whose state is `acc`.
fn batch(m: &Metric, acc: &Acc, pred: &ArrayViewD<'_, f32>, target: &TargetView<'_>) -> Result<Acc, String> {
    if pred.ndim() == 0 {
        return Err("the prediction needs an example axis".into());
    }
    if target.shape().first() != pred.shape().first() {
        return Err("prediction and target differ in the number of examples".into());
    }
    match m {
        Metric::Rmse { per_variable } | Metric::Mae { per_variable } => {
            let TargetView::F32(t) = target else {
                return Err("needs an f32 target, not class labels".into());
            };
            same_shape(pred.shape(), t.shape())?;
            let square = matches!(m, Metric::Rmse { .. });
            // Variable of the k-th element in row-major order: (k / inner) % vars.
            let (nvars, inner) = match (per_variable, t.shape()) {
                (true, [_, v, rest @ ..]) => (*v, rest.iter().product::<usize>()),
                _ => (1, t.len().max(1)),
            };
            if let Acc::Error { vars, .. } = acc {
                if *per_variable && !vars.is_empty() && vars.len() != nvars {
                    return Err(format!("{nvars} variables in this batch, {} in earlier ones", vars.len()));
                }
            }
            let (mut sum, mut n) = (Sum::default(), 0u64);
            let mut vars = vec![(Sum::default(), 0u64); if *per_variable { nvars } else { 0 }];
            for (k, (p, t)) in pred.iter().zip(t.iter()).enumerate() {
                if t.is_nan() {
                    continue;
                }
                let e = *p as f64 - *t as f64;
                let e = if square { e * e } else { e.abs() };
                sum.add(e);
                n += 1;
                if let Some((s, c)) = vars.get_mut((k / inner.max(1)) % nvars.max(1)) {
                    s.add(e);
                    *c += 1;
                }
            }
            Ok(Acc::Error { sum, n, vars })
        }
        Metric::Csi(th) | Metric::Pod(th) | Metric::Far(th) | Metric::Hss(th) => {
            same_shape(pred.shape(), target.shape())?;
            let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
            let mut count = |p: f32, t: f64| match (p as f64 >= *th, t >= *th) {
                (true, true) => a += 1,
                (true, false) => b += 1,
                (false, true) => c += 1,
                (false, false) => d += 1,
            };
            match target {
                TargetView::F32(t) => pred
                    .iter()
                    .zip(t.iter())
                    .filter(|(_, t)| !t.is_nan())
                    .for_each(|(p, t)| count(*p, *t as f64)),
                TargetView::I32(t) => pred.iter().zip(t.iter()).for_each(|(p, t)| count(*p, *t as f64)),
            }
            Ok(Acc::Table { a, b, c, d })
        }
        Metric::Accuracy => {
            let classes = Classes::of(pred, target)?;
            let correct = classes.pairs.iter().filter(|(p, t)| p == t).count() as u64;
            Ok(Acc::Correct { correct, total: classes.pairs.len() as u64 })
        }
        Metric::Dice => {
            let classes = Classes::of(pred, target)?;
            let (n, first) = if classes.binary { (1, 1) } else { (classes.count, 0) };
            if let Acc::Dice { classes: seen } = acc {
                if !seen.is_empty() && seen.len() != n {
                    return Err(format!("{n} classes in this batch, {} in earlier ones", seen.len()));
                }
            }
            let mut counts = vec![[0u64; 3]; n];
            for &(p, t) in &classes.pairs {
                if p == t && p >= first {
                    counts[p - first][0] += 1;
                }
                if p >= first {
                    counts[p - first][1] += 1;
                }
                if t >= first {
                    counts[t - first][2] += 1;
                }
            }
            Ok(Acc::Dice { classes: counts })
        }
    }
}

fn same_shape(pred: &[usize], target: &[usize]) -> Result<(), String> {
    if pred == target {
        Ok(())
    } else {
        Err("prediction and target shapes must be equal".into())
    }
}

/// Predicted and target class of every position of a batch.
struct Classes {
    /// `(predicted, target)` per position, in row-major order.
    pairs: Vec<(usize, usize)>,
    /// Number of classes (2 for a single-channel prediction).
    count: usize,
    /// A single-channel prediction read as the probability of class 1.
    binary: bool,
}

impl Classes {
    fn of(pred: &ArrayViewD<'_, f32>, target: &TargetView<'_>) -> Result<Classes, String> {
        let ps = pred.shape();
        let ts = target.shape();
        let channels = if ps.len() >= 2 { ps[1] } else { 1 };
        let with_channel_axis =
            ps.len() >= 2 && ts.len() + 1 == ps.len() && ts[0] == ps[0] && ts[1..] == ps[2..];
        let pred = pred.as_standard_layout();
        let pred = pred.as_slice().unwrap_or(&[]);
        match target {
            TargetView::I32(labels) if with_channel_axis && channels > 1 => {
                let labels = labels.as_standard_layout();
                let labels = labels.as_slice().unwrap_or(&[]);
                let mut pairs = argmax_rows(pred, ps[0], channels);
                for (pair, &l) in pairs.iter_mut().zip(labels) {
                    pair.1 = usize::try_from(l)
                        .ok()
                        .filter(|&l| l < channels)
                        .ok_or_else(|| format!("label {l} outside 0..{channels}"))?;
                }
                Ok(Classes { pairs, count: channels, binary: false })
            }
            TargetView::I32(labels) if channels == 1 && (with_channel_axis || ps == ts) => {
                let labels = labels.as_standard_layout();
                let labels = labels.as_slice().unwrap_or(&[]);
                let pairs = pred
                    .iter()
                    .zip(labels)
                    .map(|(&p, &l)| match l {
                        0 | 1 => Ok((usize::from(p >= 0.5), l as usize)),
                        _ => Err(format!("label {l} is not 0 or 1 (single-channel prediction)")),
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Classes { pairs, count: 2, binary: true })
            }
            TargetView::F32(t) if ps == ts => {
                let t = t.as_standard_layout();
                let t = t.as_slice().unwrap_or(&[]);
                if channels > 1 {
                    let mut pairs = argmax_rows(pred, ps[0], channels);
                    for (pair, (c, _)) in pairs.iter_mut().zip(argmax_rows(t, ps[0], channels)) {
                        pair.1 = c;
                    }
                    Ok(Classes { pairs, count: channels, binary: false })
                } else {
                    let pairs =
                        pred.iter().zip(t).map(|(&p, &t)| (usize::from(p >= 0.5), usize::from(t >= 0.5)));
                    Ok(Classes { pairs: pairs.collect(), count: 2, binary: true })
                }
            }
            TargetView::F32(_) => {
                Err("needs f32 targets of the prediction's shape (one-hot, probabilities or 0/1), \
                 or i32 labels"
                    .into())
            }
            TargetView::I32(_) => {
                Err("needs i32 labels [N, ...] with scores [N, C, ...] or a single-channel \
                 prediction [N, 1, ...] or [N]"
                    .into())
            }
        }
    }
}

/// The argmax over axis 1 of a row-major `[n, channels, rest...]` array, one
/// `(class, 0)` per `(example, rest...)` position: lowest index among ties,
/// first NaN wins.
fn argmax_rows(x: &[f32], n: usize, channels: usize) -> Vec<(usize, usize)> {
    let rest = x.len().checked_div(n * channels).unwrap_or(0);
    let mut out = Vec::with_capacity(n * rest);
    for e in 0..n {
        let block = &x[e * channels * rest..(e + 1) * channels * rest];
        for r in 0..rest {
            let mut best = 0;
            let mut best_v = block[r];
            for c in 1..channels {
                let v = block[c * rest + r];
                if !best_v.is_nan() && (v > best_v || v.is_nan()) {
                    best = c;
                    best_v = v;
                }
            }
            out.push((best, 0));
        }
    }
    out
}

#[cfg(test)]
mod tests;
