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
//! - **per lead time**: with `per_lead: true` rmse, mae, csi, pod, far and
//!   hss also report one value per index of axis 1 of the target, the lead
//!   time of a sequence target `[N, T, C, H, W]` (any target of at least two
//!   axes), labelled `LABEL.leadK` with K from 1: `rmse.lead1`,
//!   `csi@2.lead3`. Each is the metric over the elements of that lead alone
//!   (its own sums or contingency counts), after the overall value and any
//!   per-variable values. Every batch must have the same number of leads.
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
//! - **csi**, **pod**, **far**, **hss** at threshold `t` (a call with
//!   several thresholds, `csi([0.5, 2])`, is one metric per threshold): an
//!   event is
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
//! - **mass_error**: the relative error of the field totals. For every
//!   example n and index k of axis 1 (a lead time of `[N, T, C, H, W]`, a
//!   variable of `[N, C, H, W]`) the totals `P_nk` and `T_nk` of prediction
//!   and target over the remaining axes (missing target elements left out
//!   of both); the value is `Σ|P_nk − T_nk| / Σ|T_nk|` over all n and k, and
//!   with `per_lead: true` also over each k alone (`mass_error.lead1`, …).
//!   Prediction and target have the same shape, at least 3 axes. On a
//!   source whose total is conserved from the input to the target (the
//!   periodic `synthetic.advection`), it is the prediction's violation of
//!   conservation relative to the mass present.
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

/// The stable key of a metric's overall value in logs and plots: its name,
/// and for the thresholded scores `@` and the threshold in Rust's shortest
/// `f64` form (`csi@0.5`, `pod@2`); [`Metric::label`]. Per-variable and
/// per-lead values append `.NAME` and `.leadK` to it.
pub fn label(m: &Metric) -> String {
    m.label()
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

    /// `(label, value)` of every metric, in the order given to [`Metrics::new`]:
    /// the overall value, then one per variable (`rmse.p`), then one per
    /// lead (`csi@2.lead1`); NaN where the metric is undefined.
    pub fn finish(&self) -> Vec<(String, f64)> {
        let mut out = vec![];
        for (m, acc) in &self.entries {
            let label = label(m);
            out.push((label.clone(), acc.value(m)));
            match acc {
                Acc::Error { vars, leads, .. } => {
                    let named = self.variables.len() == vars.len();
                    for (i, (sum, n)) in vars.iter().enumerate() {
                        let name = if named { self.variables[i].clone() } else { i.to_string() };
                        out.push((format!("{label}.{name}"), error_value(m, sum, *n)));
                    }
                    for (i, (sum, n)) in leads.iter().enumerate() {
                        out.push((format!("{label}.lead{}", i + 1), error_value(m, sum, *n)));
                    }
                }
                Acc::Table { leads, .. } => {
                    for (i, counts) in leads.iter().enumerate() {
                        out.push((format!("{label}.lead{}", i + 1), score(m, *counts)));
                    }
                }
                Acc::Mass { leads, .. } => {
                    for (i, (diff, total)) in leads.iter().enumerate() {
                        out.push((format!("{label}.lead{}", i + 1), relative(diff, total)));
                    }
                }
                Acc::Correct { .. } | Acc::Dice { .. } => {}
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
        /// Per lead (axis 1) when the metric asks for it.
        leads: Vec<(Sum, u64)>,
    },
    Correct {
        correct: u64,
        total: u64,
    },
    /// Contingency table `[a, b, c, d]`: hits, false alarms, misses,
    /// correct negatives.
    Table {
        counts: [u64; 4],
        /// One table per lead (axis 1) when the metric asks for it.
        leads: Vec<[u64; 4]>,
    },
    /// Per class: |P∩T|, |P|, |T|.
    Dice {
        classes: Vec<[u64; 3]>,
    },
    /// mass_error: Σ|P − T| and Σ|T| of the totals, overall and per lead.
    Mass {
        diff: Sum,
        total: Sum,
        leads: Vec<(Sum, Sum)>,
    },
}

impl Acc {
    fn empty(m: &Metric) -> Acc {
        match m {
            Metric::Rmse { .. } | Metric::Mae { .. } => {
                Acc::Error { sum: Sum::default(), n: 0, vars: vec![], leads: vec![] }
            }
            Metric::Accuracy => Acc::Correct { correct: 0, total: 0 },
            Metric::Csi { .. } | Metric::Pod { .. } | Metric::Far { .. } | Metric::Hss { .. } => {
                Acc::Table { counts: [0; 4], leads: vec![] }
            }
            Metric::Dice => Acc::Dice { classes: vec![] },
            Metric::MassError { .. } => {
                Acc::Mass { diff: Sum::default(), total: Sum::default(), leads: vec![] }
            }
        }
    }

    fn merge(&mut self, delta: Acc) {
        match (self, delta) {
            (Acc::Error { sum, n, vars, leads }, Acc::Error { sum: s, n: k, vars: v, leads: l }) => {
                sum.add(s.sum);
                sum.add(s.comp);
                *n += k;
                for (acc, delta) in [(vars, v), (leads, l)] {
                    if acc.is_empty() {
                        *acc = delta;
                    } else {
                        for ((sum, n), (s, k)) in acc.iter_mut().zip(delta) {
                            sum.add(s.sum);
                            sum.add(s.comp);
                            *n += k;
                        }
                    }
                }
            }
            (Acc::Correct { correct, total }, Acc::Correct { correct: c, total: t }) => {
                *correct += c;
                *total += t;
            }
            (Acc::Table { counts, leads }, Acc::Table { counts: delta, leads: l }) => {
                add_counts(counts, delta);
                if leads.is_empty() {
                    *leads = l;
                } else {
                    for (acc, delta) in leads.iter_mut().zip(l) {
                        add_counts(acc, delta);
                    }
                }
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
            (Acc::Mass { diff, total, leads }, Acc::Mass { diff: d, total: t, leads: l }) => {
                add_sum(diff, &d);
                add_sum(total, &t);
                if leads.is_empty() {
                    *leads = l;
                } else {
                    for ((diff, total), (d, t)) in leads.iter_mut().zip(l) {
                        add_sum(diff, &d);
                        add_sum(total, &t);
                    }
                }
            }
            // `batch` returns the variant of the accumulator it is given.
            _ => unreachable!("metric accumulator and batch contribution differ in kind"),
        }
    }

    fn value(&self, m: &Metric) -> f64 {
        match self {
            Acc::Error { sum, n, .. } => error_value(m, sum, *n),
            Acc::Correct { correct, total } => ratio(*correct as u128, *total as u128),
            Acc::Table { counts, .. } => score(m, *counts),
            Acc::Mass { diff, total, .. } => relative(diff, total),
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

fn add_sum(acc: &mut Sum, delta: &Sum) {
    acc.add(delta.sum);
    acc.add(delta.comp);
}

/// `diff / total`, NaN when the total is zero.
fn relative(diff: &Sum, total: &Sum) -> f64 {
    let total = total.total();
    if total == 0.0 {
        f64::NAN
    } else {
        diff.total() / total
    }
}

fn add_counts(acc: &mut [u64; 4], delta: [u64; 4]) {
    for (s, v) in acc.iter_mut().zip(delta) {
        *s += v;
    }
}

/// rmse or mae from the sum of squared or absolute errors over `n` elements.
fn error_value(m: &Metric, sum: &Sum, n: u64) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    let mean = sum.total() / n as f64;
    match m {
        Metric::Rmse { .. } => mean.sqrt(),
        _ => mean,
    }
}

/// A contingency score from the table `[a, b, c, d]`, exact up to one rounding.
fn score(m: &Metric, [a, b, c, d]: [u64; 4]) -> f64 {
    let (a, b, c, d) = (a as u128, b as u128, c as u128, d as u128);
    match m {
        Metric::Csi { .. } => ratio(a, a + b + c),
        Metric::Pod { .. } => ratio(a, a + c),
        Metric::Far { .. } => ratio(b, a + b),
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

/// The lead-time axis (axis 1) of a `per_lead` metric: the number of leads
/// and the elements of one lead of one example; `None` without `per_lead`.
/// `seen` is the number of leads of earlier batches (0 before the first).
fn lead_axis(m: &Metric, seen: usize, shape: &[usize]) -> Result<Option<(usize, usize)>, String> {
    if !m.per_lead() {
        return Ok(None);
    }
    let [_, leads, rest @ ..] = shape else {
        return Err(
            "`per_lead: true` needs a target with a lead-time axis: at least 2 axes [N, T, ...]".into()
        );
    };
    if seen != 0 && seen != *leads {
        return Err(format!("{leads} lead times in this batch, {seen} in earlier ones"));
    }
    Ok(Some((*leads, rest.iter().product::<usize>().max(1))))
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
        Metric::Rmse { per_variable, .. } | Metric::Mae { per_variable, .. } => {
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
            let Acc::Error { vars: seen_vars, leads: seen_leads, .. } = acc else {
                unreachable!("rmse and mae accumulate errors")
            };
            if *per_variable && !seen_vars.is_empty() && seen_vars.len() != nvars {
                return Err(format!("{nvars} variables in this batch, {} in earlier ones", seen_vars.len()));
            }
            let lead = lead_axis(m, seen_leads.len(), t.shape())?;
            let (mut sum, mut n) = (Sum::default(), 0u64);
            let mut vars = vec![(Sum::default(), 0u64); if *per_variable { nvars } else { 0 }];
            let mut leads = vec![(Sum::default(), 0u64); lead.map_or(0, |(count, _)| count)];
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
                if let Some((count, inner)) = lead {
                    let (s, c) = &mut leads[(k / inner) % count];
                    s.add(e);
                    *c += 1;
                }
            }
            Ok(Acc::Error { sum, n, vars, leads })
        }
        Metric::Csi { threshold, .. }
        | Metric::Pod { threshold, .. }
        | Metric::Far { threshold, .. }
        | Metric::Hss { threshold, .. } => {
            same_shape(pred.shape(), target.shape())?;
            let Acc::Table { leads: seen_leads, .. } = acc else {
                unreachable!("contingency scores accumulate tables")
            };
            let lead = lead_axis(m, seen_leads.len(), target.shape())?;
            let mut counts = [0u64; 4];
            let mut leads = vec![[0u64; 4]; lead.map_or(0, |(count, _)| count)];
            // Cell of the table: 0 hit, 1 false alarm, 2 miss, 3 correct negative.
            let mut count = |k: usize, p: f32, t: f64| {
                let cell = match (p as f64 >= *threshold, t >= *threshold) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, true) => 2,
                    (false, false) => 3,
                };
                counts[cell] += 1;
                if let Some((n, inner)) = lead {
                    leads[(k / inner) % n][cell] += 1;
                }
            };
            match target {
                TargetView::F32(t) => pred
                    .iter()
                    .zip(t.iter())
                    .enumerate()
                    .filter(|(_, (_, t))| !t.is_nan())
                    .for_each(|(k, (p, t))| count(k, *p, *t as f64)),
                TargetView::I32(t) => {
                    pred.iter().zip(t.iter()).enumerate().for_each(|(k, (p, t))| count(k, *p, *t as f64))
                }
            }
            Ok(Acc::Table { counts, leads })
        }
        Metric::MassError { .. } => {
            let TargetView::F32(t) = target else {
                return Err("needs an f32 target, not class labels".into());
            };
            same_shape(pred.shape(), t.shape())?;
            let (n, k, rest) = match t.shape() {
                [n, k, rest @ ..] if !rest.is_empty() => (*n, *k, rest),
                _ => {
                    return Err("needs fields of at least 3 axes [N, T, ...]: the totals are over the axes \
                                after the first two"
                        .into())
                }
            };
            let Acc::Mass { leads: seen_leads, .. } = acc else {
                unreachable!("mass_error accumulates totals")
            };
            let lead = lead_axis(m, seen_leads.len(), t.shape())?;
            let inner: usize = rest.iter().product();
            let (p, t) = (pred.as_standard_layout(), t.as_standard_layout());
            let (p, t) = (p.as_slice().unwrap_or(&[]), t.as_slice().unwrap_or(&[]));
            let (mut diff, mut total) = (Sum::default(), Sum::default());
            let mut leads = vec![(Sum::default(), Sum::default()); if lead.is_some() { k } else { 0 }];
            for field in 0..n * k {
                let range = field * inner..(field + 1) * inner;
                let (mut mp, mut mt) = (Sum::default(), Sum::default());
                for (p, t) in p[range.clone()].iter().zip(&t[range]) {
                    if !t.is_nan() {
                        mp.add(f64::from(*p));
                        mt.add(f64::from(*t));
                    }
                }
                let (error, mass) = ((mp.total() - mt.total()).abs(), mt.total().abs());
                diff.add(error);
                total.add(mass);
                if let Some((d, t)) = leads.get_mut(field % k) {
                    d.add(error);
                    t.add(mass);
                }
            }
            Ok(Acc::Mass { diff, total, leads })
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
