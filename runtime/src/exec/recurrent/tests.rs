//! The fused LSTM recurrence against plain f64 loops, its backward against
//! finite differences of the forward, absent cotangents against explicit
//! zeros, and the gate arithmetic at every instruction set against the
//! portable code and against f64.

use super::*;
use crate::exec::pool::split;

/// A deterministic stream of pseudo-random floats in `[-scale, scale)`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        // xorshift64*: enough for test data.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn values(&mut self, len: usize, scale: f64) -> Vec<f32> {
        (0..len).map(|_| ((2.0 * self.next() - 1.0) * scale) as f32).collect()
    }
}

/// Which cotangents of `y`'s lanes a case passes to the backward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CotangentSet {
    /// `dh`, `dc` and `dgates`, dense.
    All,
    /// `dh` alone, zero but at the last processed step (a layer whose
    /// output is its last state); `dc` and `dgates` absent.
    LastState,
    /// Those of the mask `[dh, dc, dgates]`, dense; the others absent.
    Only([bool; 3]),
}

/// `dh`, `dc` and `dgates` as [`lstm_backward`] takes them (`None`: zero).
type Cotangents<'a> = [Option<&'a [f32]>; 3];

/// (batch, steps, hidden, features).
type Dims = (usize, usize, usize, usize);

/// `K = F + H + 1` (columns of `w`) and `L = 7H + F + 1` (lanes of `y`).
fn columns_and_width(shape: LstmShape) -> (usize, usize) {
    let k = shape.features + shape.hidden + 1;
    (k, 6 * shape.hidden + k)
}

/// The inputs of one forward call and the cotangents of its result.
struct Case {
    shape: LstmShape,
    /// `[T, B, F]`.
    x: Vec<f32>,
    /// `[4H, K]`: `[W_ih | W_hh | bias]`.
    w: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// `dh`, `dc` (`[T, B, H]`) and `dgates` (`[T, B, 4H]`); `None` is
    /// absent (zero).
    d: [Option<Vec<f32>>; 3],
}

impl Case {
    fn new(dims: Dims, reverse: bool, seed: u64) -> Case {
        Case::with(dims, reverse, seed, CotangentSet::All)
    }

    fn with((batch, steps, hidden, features): Dims, reverse: bool, seed: u64, which: CotangentSet) -> Case {
        let shape = LstmShape { batch, steps, hidden, features, reverse };
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (b, t, h) = (batch, steps, hidden);
        let (k, _) = columns_and_width(shape);
        let x = rng.values(t * b * features, 2.0);
        let w = rng.values(4 * h * k, 2.0 / (k as f64).sqrt());
        let h0 = rng.values(b * h, 1.0);
        let c0 = rng.values(b * h, 1.0);
        let dense = [rng.values(t * b * h, 1.0), rng.values(t * b * h, 1.0), rng.values(t * b * 4 * h, 1.0)];
        let d = match which {
            CotangentSet::All => dense.map(Some),
            CotangentSet::LastState => {
                let last = shape.position(steps.saturating_sub(1));
                let [mut dh, _, _] = dense;
                for (e, v) in dh.iter_mut().enumerate() {
                    if e / (b * h) != last {
                        *v = 0.0;
                    }
                }
                [Some(dh), None, None]
            }
            CotangentSet::Only([with_dh, with_dc, with_dgates]) => {
                let [dh, dc, dgates] = dense;
                [with_dh.then_some(dh), with_dc.then_some(dc), with_dgates.then_some(dgates)]
            }
        };
        Case { shape, x, w, h0, c0, d }
    }

    /// The cotangents as [`lstm_backward`] takes them.
    fn cotangents(&self) -> Cotangents<'_> {
        [0, 1, 2].map(|k| self.d[k].as_deref())
    }

    /// The cotangents with explicit zeros for the absent ones, in f64.
    fn dense_cotangents(&self) -> [Vec<f64>; 3] {
        let sizes = self.shape.sizes().unwrap();
        let lens = [sizes.states, sizes.states, sizes.gates];
        [0, 1, 2].map(|k| self.d[k].as_deref().map_or_else(|| vec![0.0; lens[k]], widen))
    }

    fn forward(&self, pool: &ThreadPool, parts: usize) -> Vec<f32> {
        let mut y = vec![f32::NAN; self.shape.sizes().unwrap().lanes];
        lstm_forward(pool, self.shape, parts, &self.x, &self.w, &self.h0, &self.c0, &mut y).unwrap();
        y
    }

    fn backward(&self, pool: &ThreadPool, parts: usize, y: &[f32]) -> Vec<f32> {
        self.backward_with(pool, parts, y, self.cotangents())
    }

    fn backward_with(&self, pool: &ThreadPool, parts: usize, y: &[f32], d: Cotangents) -> Vec<f32> {
        let mut r = vec![f32::NAN; self.shape.sizes().unwrap().grads];
        let grads = LstmGrads { lanes: Some(&mut r), weight: None, weight_transposed: false };
        lstm_backward(pool, self.shape, parts, y, d, &self.w, &self.c0, grads).unwrap();
        r
    }

    /// The backward with the weight's gradient (`[K, 4H]`), with `r` or
    /// without it (`None`); both buffers start as NaN.
    fn backward_and_weight(
        &self,
        pool: &ThreadPool,
        parts: usize,
        y: &[f32],
        lanes: bool,
    ) -> (Option<Vec<f32>>, Vec<f32>) {
        let sizes = self.shape.sizes().unwrap();
        let mut r = lanes.then(|| vec![f32::NAN; sizes.grads]);
        let mut dw = vec![f32::NAN; sizes.weight];
        let grads = LstmGrads { lanes: r.as_deref_mut(), weight: Some(&mut dw), weight_transposed: false };
        lstm_backward(pool, self.shape, parts, y, self.cotangents(), &self.w, &self.c0, grads).unwrap();
        (r, dw)
    }
}

/// `Σ dpreᵀ·z` over all rows and steps in f64, `[K, 4H]`, from `r`'s
/// `dpre` lanes and `y`'s `z` lanes, and per element the magnitude of its
/// terms.
fn reference_weight_grad(shape: LstmShape, y: &[f64], r: &[f64], r_mag: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let h = shape.hidden;
    let (k, l) = columns_and_width(shape);
    let (mut dw, mut mag) = (vec![0.0; k * 4 * h], vec![0.0; k * 4 * h]);
    for row in 0..shape.steps * shape.batch {
        for c in 0..k {
            let z = y[row * l + 6 * h + c];
            for j in 0..4 * h {
                dw[c * 4 * h + j] += z * r[row * 6 * h + j];
                mag[c * 4 * h + j] += (z * r_mag[row * 6 * h + j]).abs();
            }
        }
    }
    (dw, mag)
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The forward recurrence in f64, straight from its definition:
/// `y [T, B, L]` with lanes `[h, c, i, f, g, o, x_t, h_prev, 1]`, from
/// `x [T, B, F]` and `w [4H, K]`.
fn reference_forward(shape: LstmShape, x: &[f64], w: &[f64], h0: &[f64], c0: &[f64]) -> Vec<f64> {
    let LstmShape { batch, steps, hidden: h, features: f, .. } = shape;
    let (k, l) = columns_and_width(shape);
    let mut y = vec![0.0; steps * batch * l];
    for b in 0..batch {
        let mut hs = h0[b * h..][..h].to_vec();
        let mut cs = c0[b * h..][..h].to_vec();
        for s in 0..steps {
            let t = shape.position(s);
            let row = t * batch + b;
            let z: Vec<f64> = x[row * f..][..f].iter().chain(&hs).copied().chain([1.0]).collect();
            let pre: Vec<f64> =
                (0..4 * h).map(|j| (0..k).map(|c| z[c] * w[j * k + c]).sum::<f64>()).collect();
            let out = &mut y[row * l..][..l];
            out[6 * h..].copy_from_slice(&z);
            for q in 0..h {
                let i = sigmoid64(pre[q]);
                let f = sigmoid64(pre[h + q]);
                let g = pre[2 * h + q].tanh();
                let o = sigmoid64(pre[3 * h + q]);
                cs[q] = f * cs[q] + i * g;
                hs[q] = o * cs[q].tanh();
                for (lane, v) in [hs[q], cs[q], i, f, g, o].into_iter().enumerate() {
                    out[lane * h + q] = v;
                }
            }
        }
    }
    y
}

/// The backward recurrence in f64 from its definition, with every
/// cotangent explicit (`dh`, `dc [T, B, H]`, `dgates [T, B, 4H]`), and per
/// element the magnitude of the terms it sums (for the tolerance):
/// `r [T, B, 6H]`, from `y [T, B, L]` and `w [4H, K]`.
fn reference_backward(
    shape: LstmShape,
    y: &[f64],
    [dh_in, dc_in, dgates]: [&[f64]; 3],
    w: &[f64],
    c0: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let LstmShape { batch, steps, hidden: h, features, .. } = shape;
    let (k, l) = columns_and_width(shape);
    let w_hh = |j: usize, q: usize| w[j * k + features + q];
    let mut r = vec![0.0; steps * batch * 6 * h];
    let mut mag = vec![0.0; r.len()];
    for b in 0..batch {
        let (mut dhp, mut dcp) = (vec![0.0; h], vec![0.0; h]);
        let (mut dhp_mag, mut dcp_mag) = (vec![0.0; h], vec![0.0; h]);
        for s in (0..steps).rev() {
            let t = shape.position(s);
            let row = |t: usize| t * batch + b;
            let at = |t: usize, lane: usize, q: usize| row(t) * l + lane * h + q;
            let at_r = |t: usize, lane: usize, q: usize| row(t) * 6 * h + lane * h + q;
            let mut dpre = vec![0.0; 4 * h];
            let mut dpre_mag = vec![0.0; 4 * h];
            let mut dc_all = vec![0.0; h];
            for q in 0..h {
                let [c, i, f, g, o] = [1, 2, 3, 4, 5].map(|lane| y[at(t, lane, q)]);
                let c_prev = if s == 0 { c0[b * h + q] } else { y[at(shape.position(s - 1), 1, q)] };
                let (dy_h, dy_c) = (dh_in[row(t) * h + q], dc_in[row(t) * h + q]);
                let dg = |gate: usize| dgates[row(t) * 4 * h + gate * h + q];
                let dh = dy_h + dhp[q];
                let tc = c.tanh();
                let dc = dy_c + dcp[q] + dh * o * (1.0 - tc * tc);
                let dh_mag = dy_h.abs() + dhp_mag[q];
                let dc_mag = dy_c.abs() + dcp_mag[q] + dh_mag;
                dpre[q] = (dc * g + dg(0)) * i * (1.0 - i);
                dpre[h + q] = (dc * c_prev + dg(1)) * f * (1.0 - f);
                dpre[2 * h + q] = (dc * i + dg(2)) * (1.0 - g * g);
                dpre[3 * h + q] = (dh * tc + dg(3)) * o * (1.0 - o);
                dpre_mag[q] = dc_mag + dg(0).abs();
                dpre_mag[h + q] = dc_mag * c_prev.abs() + dg(1).abs();
                dpre_mag[2 * h + q] = dc_mag + dg(2).abs();
                dpre_mag[3 * h + q] = dh_mag + dg(3).abs();
                dc_all[q] = dc;
                dcp_mag[q] = dc_mag;
            }
            for q in 0..h {
                dhp[q] = (0..4 * h).map(|j| dpre[j] * w_hh(j, q)).sum();
                dhp_mag[q] = (0..4 * h).map(|j| (dpre_mag[j] * w_hh(j, q)).abs()).sum();
                dcp[q] = dc_all[q] * y[at(t, 3, q)];
            }
            for j in 0..4 * h {
                r[at_r(t, 0, j)] = dpre[j];
                mag[at_r(t, 0, j)] = dpre_mag[j];
            }
            for q in 0..h {
                r[at_r(t, 4, q)] = dhp[q];
                mag[at_r(t, 4, q)] = dhp_mag[q];
                r[at_r(t, 5, q)] = dcp[q];
                mag[at_r(t, 5, q)] = dcp_mag[q];
            }
        }
    }
    (r, mag)
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// The largest `|got - want| / (1 + mag)`.
fn worst(got: &[f32], want: &[f64], mag: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .zip(mag)
        .map(|((&g, &w), &m)| {
            assert!(g.is_finite(), "non-finite result {g}");
            (f64::from(g) - w).abs() / (1.0 + m)
        })
        .fold(0.0, f64::max)
}

/// The `z` lanes of the forward result `y` of `case`, bit for bit: `x_t`,
/// the previous processed step's `h` lanes (`h0` at the first), and 1.
fn check_z_lanes(case: &Case, y: &[f32]) {
    let LstmShape { batch, steps, hidden: h, features: f, .. } = case.shape;
    let (_, l) = columns_and_width(case.shape);
    for b in 0..batch {
        for s in 0..steps {
            let row = |t: usize| &y[(t * batch + b) * l..][..l];
            let t = case.shape.position(s);
            let h_prev = match s {
                0 => &case.h0[b * h..][..h],
                _ => &row(case.shape.position(s - 1))[..h],
            };
            let x_t = &case.x[(t * batch + b) * f..][..f];
            let want = [x_t, h_prev, &[1.0]].concat();
            assert!(same(&row(t)[6 * h..], &want), "{:?}: z lanes of step {t}, row {b}", case.shape);
        }
    }
}

/// The forward of `case` with `parts` blocks against [`reference_forward`]
/// (its `z` lanes bit for bit), and its backward against
/// [`reference_backward`] (the absent cotangents as explicit zeros).
fn check_against_f64(pool: &ThreadPool, case: &Case, parts: usize, what: &str) {
    let want_y =
        reference_forward(case.shape, &widen(&case.x), &widen(&case.w), &widen(&case.h0), &widen(&case.c0));
    let y_mag: Vec<f64> = want_y.iter().map(|v| v.abs()).collect();
    let y = case.forward(pool, parts);
    let err = worst(&y, &want_y, &y_mag);
    assert!(err < 5e-6, "forward {:?}, {parts} parts: error {err:e}", case.shape);
    check_z_lanes(case, &y);
    let [dh, dc, dgates] = case.dense_cotangents();
    let (want_r, r_mag) =
        reference_backward(case.shape, &widen(&y), [&dh, &dc, &dgates], &widen(&case.w), &widen(&case.c0));
    let r = case.backward(pool, parts, &y);
    let err = worst(&r, &want_r, &r_mag);
    assert!(err < 5e-6, "backward {:?} ({what}), {parts} parts: error {err:e}", case.shape);
    // The weight's gradient, with `r` stored or not: the same bits, and
    // `r` the same bits as without the weight's gradient.
    let (want_dw, dw_mag) = reference_weight_grad(case.shape, &widen(&y), &want_r, &r_mag);
    let (with_r, dw) = case.backward_and_weight(pool, parts, &y, true);
    assert!(same(&with_r.unwrap(), &r), "{:?} ({what}), {parts} parts: r differs", case.shape);
    let err = worst(&dw, &want_dw, &dw_mag);
    assert!(err < 5e-6, "weight gradient {:?} ({what}), {parts} parts: error {err:e}", case.shape);
    let (_, alone) = case.backward_and_weight(pool, parts, &y, false);
    assert!(same(&alone, &dw), "{:?} ({what}), {parts} parts: the weight gradient without r", case.shape);
}

/// (batch, steps, hidden, features): batches that 2 and 3 parts do not
/// divide, a hidden size below one vector, no input features, and the
/// shape of the benchmark's batch.
const SHAPES: [Dims; 5] = [(5, 3, 7, 3), (5, 3, 7, 0), (16, 9, 32, 5), (7, 4, 17, 0), (64, 4, 128, 32)];

#[test]
fn forward_and_backward_match_f64_loops() {
    let pool = ThreadPool::new(2).unwrap();
    for (n, &dims) in SHAPES.iter().enumerate() {
        for reverse in [false, true] {
            for which in [CotangentSet::All, CotangentSet::LastState] {
                let seed = n as u64 * 2 + u64::from(reverse);
                let case = Case::with(dims, reverse, seed, which);
                for parts in [1, 2, 3] {
                    check_against_f64(&pool, &case, parts, &format!("{which:?}"));
                }
            }
        }
    }
}

/// With no hidden state the result is the `z` lanes alone, `[x_t, 1]`.
#[test]
fn no_hidden_state_leaves_the_inputs() {
    let pool = ThreadPool::new(2).unwrap();
    for reverse in [false, true] {
        let case = Case::new((3, 2, 0, 2), reverse, 30);
        let y = case.forward(&pool, 2);
        check_z_lanes(&case, &y);
        assert!(case.backward(&pool, 2, &y).is_empty());
    }
}

/// Every subset of the three cotangents: against f64, and bit for bit as
/// the same call with explicit zeros in place of the absent ones.
#[test]
fn absent_cotangents_are_zeros() {
    let pool = ThreadPool::new(2).unwrap();
    let (b, t, h, f) = SHAPES[0];
    let sizes = LstmShape { batch: b, steps: t, hidden: h, features: f, reverse: false }.sizes().unwrap();
    let zeros = [vec![0.0f32; sizes.states], vec![0.0; sizes.states], vec![0.0; sizes.gates]];
    for reverse in [false, true] {
        for bits in 0..8 {
            let mask = [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0];
            let case = Case::with(SHAPES[0], reverse, 20 + u64::from(reverse), CotangentSet::Only(mask));
            check_against_f64(&pool, &case, 2, &format!("{mask:?}"));
            let y = case.forward(&pool, 2);
            let explicit = [0, 1, 2].map(|k| Some(case.d[k].as_deref().unwrap_or(&zeros[k])));
            assert!(
                same(&case.backward(&pool, 2, &y), &case.backward_with(&pool, 2, &y, explicit)),
                "reverse {reverse}, cotangents {mask:?}: absent and zero differ"
            );
        }
    }
}

/// `Σ dh⊙y_h + Σ dc⊙y_c + Σ dgates⊙y_gates` of the f64 forward (the `z`
/// lanes carry no cotangent here: their gradients are the caller's).
fn loss(case: &Case, x: &[f64], w: &[f64], h0: &[f64], c0: &[f64]) -> f64 {
    let LstmShape { batch, steps, hidden: h, .. } = case.shape;
    let (_, l) = columns_and_width(case.shape);
    let y = reference_forward(case.shape, x, w, h0, c0);
    let [dh, dc, dgates] = case.dense_cotangents();
    let mut sum = 0.0;
    for row in 0..steps * batch {
        let y = &y[row * l..][..6 * h];
        for k in 0..h {
            sum += dh[row * h + k] * y[k] + dc[row * h + k] * y[h + k];
        }
        for j in 0..4 * h {
            sum += dgates[row * 4 * h + j] * y[2 * h + j];
        }
    }
    sum
}

#[test]
fn backward_matches_finite_differences() {
    let pool = ThreadPool::new(2).unwrap();
    for features in [0, 2] {
        for reverse in [false, true] {
            for which in [CotangentSet::All, CotangentSet::LastState] {
                let seed = 40 + 2 * features as u64 + u64::from(reverse);
                let case = Case::with((3, 4, 3, features), reverse, seed, which);
                let LstmShape { batch, steps, hidden: h, features: f, .. } = case.shape;
                let (k, _) = columns_and_width(case.shape);
                let y = case.forward(&pool, 2);
                let (r, dwt) = case.backward_and_weight(&pool, 2, &y, true);
                let r = r.unwrap();
                // The gradients the caller makes of the backward's: x as
                // dpre·W_ih, w as the transpose of the call's Σ zᵀ·dpre,
                // h0 and c0 from the first processed step's dhp and dcp.
                let first = case.shape.position(0);
                let mut dx = vec![0.0; case.x.len()];
                let (mut dh0, mut dc0) = (vec![0.0; batch * h], vec![0.0; batch * h]);
                let mut dw = vec![0.0; 4 * h * k];
                for j in 0..4 * h {
                    for c in 0..k {
                        dw[j * k + c] = f64::from(dwt[c * 4 * h + j]);
                    }
                }
                for row in 0..steps * batch {
                    for j in 0..4 * h {
                        let dpre = f64::from(r[row * 6 * h + j]);
                        for c in 0..f {
                            dx[row * f + c] += dpre * f64::from(case.w[j * k + c]);
                        }
                    }
                }
                for b in 0..batch {
                    let r = &r[(first * batch + b) * 6 * h..][..6 * h];
                    for q in 0..h {
                        dh0[b * h + q] = f64::from(r[4 * h + q]);
                        dc0[b * h + q] = f64::from(r[5 * h + q]);
                    }
                }
                let inputs = [widen(&case.x), widen(&case.w), widen(&case.h0), widen(&case.c0)];
                for (input, (name, grad)) in
                    [("x", &dx), ("w", &dw), ("h0", &dh0), ("c0", &dc0)].into_iter().enumerate()
                {
                    for (e, &g) in grad.iter().enumerate() {
                        const EPS: f64 = 1e-5;
                        let at_offset = |delta: f64| {
                            let mut x = inputs.clone();
                            x[input][e] += delta;
                            loss(&case, &x[0], &x[1], &x[2], &x[3])
                        };
                        let numeric = (at_offset(EPS) - at_offset(-EPS)) / (2.0 * EPS);
                        assert!(
                            (g - numeric).abs() <= 1e-4 * (1.0 + numeric.abs()),
                            "F {f}, reverse {reverse}, {which:?}: d{name}[{e}] = {g} from the backward, \
                             {numeric} by finite differences"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn results_repeat_bit_for_bit_with_any_blocks() {
    let pool = ThreadPool::new(2).unwrap();
    for which in [CotangentSet::All, CotangentSet::LastState] {
        let case = Case::with((16, 9, 32, 5), false, 7, which);
        let y = case.forward(&pool, 2);
        assert!(same(&y, &case.forward(&pool, 2)), "forward, {which:?}");
        let r = case.backward(&pool, 2, &y);
        assert!(same(&r, &case.backward(&pool, 2, &y)), "backward, {which:?}");
        // The products' sums do not depend on the rows' blocks, so neither
        // does any bit of the results.
        for parts in [1, 3, 5] {
            assert!(same(&y, &case.forward(&pool, parts)), "forward, {which:?}, {parts} parts");
            assert!(same(&r, &case.backward(&pool, parts, &y)), "backward, {which:?}, {parts} parts");
        }
        // The weight's gradient sums each block's rows, then the blocks in
        // order: the same bits for the same blocks, whichever thread runs
        // them, with `r` stored or not.
        for parts in [1, 2, 3, 5] {
            let (_, dw) = case.backward_and_weight(&pool, parts, &y, false);
            for lanes in [false, true] {
                let (_, again) = case.backward_and_weight(&pool, parts, &y, lanes);
                assert!(same(&dw, &again), "weight gradient, {which:?}, {parts} parts, r stored: {lanes}");
            }
            let one_thread = ThreadPool::new(1).unwrap();
            let (_, serial) = case.backward_and_weight(&one_thread, parts, &y, false);
            assert!(same(&dw, &serial), "weight gradient, {which:?}, {parts} parts on one thread");
            // Written transposed: the same sums, bit for bit.
            let (k, g) = (case.shape.features + case.shape.hidden + 1, 4 * case.shape.hidden);
            let mut transposed = vec![f32::NAN; dw.len()];
            let grads = LstmGrads { lanes: None, weight: Some(&mut transposed), weight_transposed: true };
            lstm_backward(&pool, case.shape, parts, &y, case.cotangents(), &case.w, &case.c0, grads).unwrap();
            let want: Vec<f32> = (0..g * k).map(|e| dw[(e % k) * g + e / k]).collect();
            assert!(same(&transposed, &want), "weight gradient transposed, {which:?}, {parts} parts");
        }
    }
}

#[test]
fn blocks_are_those_of_split() {
    for len in 0..20 {
        for parts in 1..8 {
            let blocks: Vec<_> = (0..parts).map(|p| block(len, parts, p)).collect();
            assert_eq!(blocks, split(len, parts), "{len} rows in {parts} parts");
        }
    }
}

#[test]
fn wrong_lengths_are_errors() {
    let pool = ThreadPool::new(1).unwrap();
    let case = Case::new((2, 3, 4, 3), false, 9);
    let s = case.shape;
    // B = 2, T = 3, H = 4, F = 3: K = 8, L = 32.
    assert_eq!(s.lengths(false).unwrap(), [18, 128, 8, 8, 192]);
    assert_eq!(s.lengths(true).unwrap(), [192, 24, 24, 96, 128, 8, 144, 128]);
    let mut y = case.forward(&pool, 1);
    let mut r = case.backward(&pool, 1, &y);
    fn lanes(r: &mut [f32]) -> LstmGrads<'_> {
        LstmGrads { lanes: Some(r), weight: None, weight_transposed: false }
    }
    let (x, w, h0, c0) = (&case.x, &case.w, &case.h0, &case.c0);
    let [dh, dc, dgates] = case.cotangents().map(Option::unwrap);
    let short = |v: &[f32]| v[..v.len() - 1].to_vec();
    let forward_cases: [(&str, [&[f32]; 4]); 4] = [
        ("x", [&short(x), w, h0, c0]),
        ("w", [x, &short(w), h0, c0]),
        ("h0", [x, w, &short(h0), c0]),
        ("c0", [x, w, h0, &short(c0)]),
    ];
    for (name, [x, w, h0, c0]) in forward_cases {
        let err = lstm_forward(&pool, s, 1, x, w, h0, c0, &mut y).unwrap_err();
        assert!(err.contains(&format!("`{name}`")), "{err}");
    }
    let err = lstm_forward(&pool, s, 1, x, w, h0, c0, &mut y[1..]).unwrap_err();
    assert!(err.contains("`y`"), "{err}");
    // A present cotangent is checked whatever the others are, and one of
    // another cotangent's length is an error too.
    let (short_dh, short_dc, short_dgates) = (short(dh), short(dc), short(dgates));
    let y_of_r_rows = r.clone();
    let all = [Some(dh), Some(dc), Some(dgates)];
    let backward_cases: [(&str, [&[f32]; 3], Cotangents); 11] = [
        ("y", [&short(&y), w, c0], all),
        // A `y` of the rows `r` has (`6H`) is not the forward's.
        ("y", [&y_of_r_rows, w, c0], all),
        ("w", [&y, &short(w), c0], [Some(dh), None, None]),
        ("c0", [&y, w, &short(c0)], [None; 3]),
        ("dh", [&y, w, c0], [Some(&short_dh), Some(dc), Some(dgates)]),
        ("dh", [&y, w, c0], [Some(&short_dh), None, None]),
        ("dh", [&y, w, c0], [Some(dgates), None, None]),
        ("dc", [&y, w, c0], [None, Some(&short_dc), None]),
        ("dc", [&y, w, c0], [Some(dh), Some(dgates), Some(dgates)]),
        ("dgates", [&y, w, c0], [None, None, Some(&short_dgates)]),
        ("dgates", [&y, w, c0], [Some(dh), Some(dc), Some(dh)]),
    ];
    for (name, [yv, wv, c0v], d) in backward_cases {
        let err = lstm_backward(&pool, s, 1, yv, d, wv, c0v, lanes(&mut r)).unwrap_err();
        assert!(err.contains(&format!("`{name}`")), "{name}: {err}");
    }
    let err = lstm_backward(&pool, s, 1, &y, all, w, c0, lanes(&mut r[1..])).unwrap_err();
    assert!(err.contains("`r`"), "{err}");
    let mut r_as_y = y.clone();
    let err = lstm_backward(&pool, s, 1, &y, all, w, c0, lanes(&mut r_as_y)).unwrap_err();
    assert!(err.contains("`r`"), "{err}");
    let mut dw = vec![0.0; w.len() + 1];
    let grads = LstmGrads { lanes: Some(&mut r), weight: Some(&mut dw), weight_transposed: false };
    let err = lstm_backward(&pool, s, 1, &y, all, w, c0, grads).unwrap_err();
    assert!(err.contains("`the weight's gradient`"), "{err}");
    // A rejected call writes nothing.
    let (y_before, r_before) = (y.clone(), r.clone());
    lstm_forward(&pool, s, 1, x, w, &short(h0), c0, &mut y).unwrap_err();
    lstm_backward(&pool, s, 1, &y, [None, None, Some(&short_dgates)], w, c0, lanes(&mut r)).unwrap_err();
    assert!(same(&y, &y_before) && same(&r, &r_before), "a rejected call wrote its result");
    let huge_batch = LstmShape { batch: usize::MAX / 2, ..s };
    let huge_features = LstmShape { features: usize::MAX - 4, ..s };
    for huge in [huge_batch, huge_features] {
        assert!(huge.lengths(false).unwrap_err().contains("overflow"));
        assert!(lstm_forward(&pool, huge, 1, x, w, h0, c0, &mut y).unwrap_err().contains("overflow"));
        assert!(lstm_backward(&pool, huge, 1, &y, [None; 3], w, c0, lanes(&mut r))
            .unwrap_err()
            .contains("overflow"));
    }
    // Empty shapes need no work.
    let empty = LstmShape { batch: 0, ..s };
    lstm_forward(&pool, empty, 2, &[], w, &[], &[], &mut []).unwrap();
    lstm_backward(&pool, empty, 2, &[], [None; 3], w, &[], lanes(&mut [])).unwrap();
    lstm_backward(&pool, empty, 2, &[], [Some(&[]), Some(&[]), Some(&[])], w, &[], lanes(&mut [])).unwrap();
    // …but the weight's gradient, a sum over no rows, is zero.
    let mut dw = vec![f32::NAN; w.len()];
    for with_lanes in [false, true] {
        let mut none: [f32; 0] = [];
        let grads = LstmGrads {
            lanes: with_lanes.then_some(&mut none[..]),
            weight: Some(&mut dw),
            weight_transposed: false,
        };
        lstm_backward(&pool, empty, 2, &[], [None; 3], w, &[], grads).unwrap();
        assert!(dw.iter().all(|&v| v.to_bits() == 0), "the weight's gradient over no rows");
        dw.fill(f32::NAN);
    }
}

/// The bits of the lanes a gate loop must leave alone.
const UNTOUCHED: u32 = 0x7fc0_1234;

/// One forward step's gate arithmetic with `isa` over `rows` rows of
/// `pre [rows, 4H]` and `c_prev [rows, H]`: `[rows, 6H]`. The loop writes
/// rows of `7H + 3` lanes, and with `next` also `h` to lanes `[6H, 7H)` of
/// each (as to the next step's `h_prev` lanes); the lanes it must not
/// write are checked to hold their bits.
fn forward_step(isa: Isa, h: usize, pre: &[f32], c_prev: &[f32], next: bool) -> Vec<f32> {
    let rows = c_prev.len() / h;
    assert!(pre.len() == rows * 4 * h);
    let stride = 7 * h + 3;
    let mut out = vec![f32::from_bits(UNTOUCHED); rows * stride];
    let base = out.as_mut_ptr();
    let step = ForwardGates {
        rows,
        hidden: h,
        pre: pre.as_ptr(),
        c_prev: c_prev.as_ptr(),
        c_stride: h,
        out: base,
        out_stride: stride,
        h_next: next.then(|| base.wrapping_add(6 * h)),
    };
    // SAFETY: `pre` and `c_prev` hold `rows` rows of their widths
    // (asserted); `out` holds `rows` rows of `7H + 3`, whose lanes
    // `[0, 6H)` and `[6H, 7H)` are the two written ranges; `isa` comes from
    // `Isa::available`.
    unsafe { forward_gates(isa, &step) };
    let untouched = |v: &[f32]| v.iter().all(|x| x.to_bits() == UNTOUCHED);
    for row in out.chunks_exact(stride) {
        let h_next = &row[6 * h..7 * h];
        assert!(if next { same(h_next, &row[..h]) } else { untouched(h_next) }, "{isa:?}: h_next lanes");
        assert!(untouched(&row[7 * h..]), "{isa:?}: lanes past h_next written");
    }
    out.chunks_exact(stride).flat_map(|row| &row[..6 * h]).copied().collect()
}

/// The operands of one backward step over `rows` rows: `y` (rows of
/// `y_stride` lanes, of which the first `6H` are read), `next [rows, 6H]`,
/// `c_prev [rows, H]`, and the cotangents present, `dh`, `dc` (`[rows,
/// H]`) and `dgates` (`[rows, 4H]`).
struct BackwardOperands<'a> {
    y: &'a [f32],
    y_stride: usize,
    c_prev: &'a [f32],
    d: Cotangents<'a>,
    next: Option<&'a [f32]>,
}

/// One backward step's gate arithmetic with `isa`: `r [rows, 6H]` (its
/// `dhp` lanes zero) and `dpre [rows, 4H]`.
fn backward_step(isa: Isa, h: usize, ops: &BackwardOperands) -> (Vec<f32>, Vec<f32>) {
    let rows = ops.c_prev.len() / h;
    let [dh, dc, dgates] = ops.d;
    assert!(ops.y_stride >= 6 * h && ops.y.len() == rows * ops.y_stride);
    assert!(ops.next.is_none_or(|n| n.len() == rows * 6 * h));
    for (d, width) in [(dh, h), (dc, h), (dgates, 4 * h)] {
        assert!(d.is_none_or(|d| d.len() == rows * width));
    }
    let (mut out, mut dpre) = (vec![0.0; rows * 6 * h], vec![0.0; rows * 4 * h]);
    let step = BackwardGates {
        rows,
        hidden: h,
        y: ops.y.as_ptr(),
        y_stride: ops.y_stride,
        y_after: None,
        c_prev: ops.c_prev.as_ptr(),
        c_stride: h,
        dh: dh.map(<[f32]>::as_ptr),
        dc: dc.map(<[f32]>::as_ptr),
        dgates: dgates.map(<[f32]>::as_ptr),
        next: ops.next.map(|next| next[4 * h..].as_ptr()),
        out: Some(out.as_mut_ptr()),
        state: out[4 * h..].as_mut_ptr(),
        state_stride: 6 * h,
        dpre: dpre.as_mut_ptr(),
        dpre_stride: 4 * h,
    };
    // SAFETY: every operand holds `rows` rows of its width (asserted), the
    // outputs are buffers of their own, and `isa` comes from
    // `Isa::available`.
    unsafe { backward_gates(isa, &step) };
    (out, dpre)
}

/// Values that exercise every branch: NaN, ±Inf, ±0, huge, tiny,
/// subnormal, around the clamps of exp and tanh, and ordinary values.
fn awkward_values(len: usize, seed: u64) -> Vec<f32> {
    const SPECIAL: [f32; 18] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        f32::MAX,
        f32::MIN,
        1e-30,
        -1e-30,
        1e-40,
        -1e-40,
        9.0,
        -9.000001,
        88.8,
        -104.0,
        -120.0,
        1e20,
        -3e9,
    ];
    let mut rng = Rng(seed | 1);
    (0..len)
        .map(|_| {
            let u = rng.next();
            if u < 0.3 {
                SPECIAL[(rng.next() * SPECIAL.len() as f64) as usize]
            } else if u < 0.5 {
                // Any magnitude from 2^-140 to 2^100, either sign.
                let e = rng.next() * 240.0 - 140.0;
                let s = if rng.next() < 0.5 { -1.0 } else { 1.0 };
                (s * e.exp2()) as f32
            } else {
                ((rng.next() * 2.0 - 1.0) * 12.0) as f32
            }
        })
        .collect()
}

/// Equal bits, or both NaN (a NaN's payload may differ).
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[test]
fn every_instruction_set_computes_the_same_bits() {
    // 61 columns: a pair of 16-lane vectors, one more and scalars; or
    // three pairs of 8-lane vectors, one more and scalars.
    let (h, rows) = (61, 5);
    let pre = awkward_values(rows * 4 * h, 2);
    let c_prev = awkward_values(rows * h, 3);
    // Rows of `y` wider than the `6H` lanes read, as in the forward's
    // result (whose `z` lanes follow).
    let y_stride = 6 * h + 5;
    let mut y = awkward_values(rows * y_stride, 4);
    // Gates as a forward step leaves them, and some awkward ones.
    let valid = forward_step(Isa::Portable, h, &Rng(5).values(rows * 4 * h, 3.0), &c_prev, false);
    for q in 0..rows {
        for k in (0..6 * h).filter(|k| k % 3 != 0) {
            y[q * y_stride + k] = valid[q * 6 * h + k];
        }
    }
    let (dh, dc, dgates) =
        (awkward_values(rows * h, 6), awkward_values(rows * h, 8), awkward_values(rows * 4 * h, 9));
    let next = awkward_values(rows * 6 * h, 7);
    let want_forward = forward_step(Isa::Portable, h, &pre, &c_prev, false);
    // Every cotangent and the next step's gradients present, some absent,
    // none present (the last processed step of a layer with no gradient).
    let operands = [
        ([Some(&dh[..]), Some(&dc[..]), Some(&dgates[..])], Some(&next[..])),
        ([Some(&dh[..]), None, None], Some(&next[..])),
        ([None, Some(&dc[..]), Some(&dgates[..])], None),
        ([Some(&dh[..]), None, None], None),
        ([None, None, None], Some(&next[..])),
        ([None, None, None], None),
    ]
    .map(|(d, next)| BackwardOperands { y: &y, y_stride, c_prev: &c_prev, d, next });
    for isa in Isa::available() {
        for h_next in [false, true] {
            let got = forward_step(isa, h, &pre, &c_prev, h_next);
            assert!(same(&got, &want_forward), "forward with {isa:?}, h_next {h_next}");
        }
        for ops in &operands {
            let want = backward_step(Isa::Portable, h, ops);
            let (r, dpre) = backward_step(isa, h, ops);
            let present = ops.d.map(|d| d.is_some());
            assert!(
                same(&r, &want.0) && same(&dpre, &want.1),
                "backward with {isa:?}, cotangents {present:?}, next {}",
                ops.next.is_some()
            );
        }
    }
}

/// `sigmoid` and `tanh` of `x` with `isa` (the `i` and `g` lanes of a
/// forward step whose product is `x` in every gate block).
fn activations(isa: Isa, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let h = x.len();
    let pre: Vec<f32> = [x, x, x, x].concat();
    let y = forward_step(isa, h, &pre, &vec![0.0; h], false);
    (y[2 * h..3 * h].to_vec(), y[4 * h..5 * h].to_vec())
}

#[test]
fn activations_are_accurate_with_their_special_values() {
    // A grid over the interesting range, a few values in every binade of
    // both signs (subnormals included), and the boundaries.
    let mut x: Vec<f32> = (-40 * 256..=40 * 256).map(|i| i as f32 / 256.0).collect();
    for e in -149..128 {
        for m in [1.0f32, 1.3, 1.7, 1.999] {
            let v = m * (e as f32).exp2();
            x.extend([v, -v]);
        }
    }
    x.extend([9.0, -9.0, 8.999999, 88.8, -104.0, -103.98, -87.3, 1e-45]);
    for isa in Isa::available() {
        let (sig, th) = activations(isa, &x);
        for ((&x, &s), &t) in x.iter().zip(&sig).zip(&th) {
            let xd = f64::from(x);
            for (name, got, want) in [("sigmoid", s, sigmoid64(xd)), ("tanh", t, xd.tanh())] {
                let err = (f64::from(got) - want).abs();
                let ok = if want.abs() < f64::from(f32::MIN_POSITIVE) {
                    err <= (-149f64).exp2()
                } else {
                    err <= 4e-7 * want.abs()
                };
                assert!(ok, "{isa:?}: {name}({x:e}) = {got:e}, exact {want:e}");
            }
        }
        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, f32::MAX, f32::MIN];
        let (sig, th) = activations(isa, &special);
        assert!(sig[0].is_nan() && th[0].is_nan(), "{isa:?}: NaN propagates");
        let bits = |v: &[f32]| v[1..].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sig), bits(&[f32::NAN, 1.0, 0.0, 0.5, 0.5, 1.0, 0.0]), "{isa:?}: sigmoid {sig:?}");
        assert_eq!(bits(&th), bits(&[f32::NAN, 1.0, -1.0, 0.0, -0.0, 1.0, -1.0]), "{isa:?}: tanh {th:?}");
    }
}

#[test]
fn cotangents_of_some_steps_are_zero_at_the_others() {
    let pool = ThreadPool::new(2).unwrap();
    for reverse in [false, true] {
        let case = Case::new((3, 5, 4, 2), reverse, 71);
        let y = case.forward(&pool, 1);
        let sizes = case.shape.sizes().unwrap();
        let per_step = [sizes.states / 5, sizes.states / 5, sizes.gates / 5];
        // Each cotangent's own steps: the last, the first two, none, all.
        for held in [[4..5, 0..2, 2..2], [0..5, 4..5, 1..4], [2..3, 2..2, 0..5]] {
            let dense = [0, 1, 2].map(|k| case.d[k].clone().unwrap());
            let part =
                [0, 1, 2].map(|k| dense[k][held[k].start * per_step[k]..held[k].end * per_step[k]].to_vec());
            // The same cotangents over all the steps, `+0` outside.
            let filled = [0, 1, 2].map(|k| {
                let mut v = vec![0.0f32; dense[k].len()];
                let range = held[k].start * per_step[k]..held[k].end * per_step[k];
                v[range.clone()].copy_from_slice(&dense[k][range]);
                v
            });
            for parts in [1, 2] {
                for lanes in [false, true] {
                    let run = |d: [&[f32]; 3], steps: [Range<usize>; 3]| {
                        let mut r = lanes.then(|| vec![f32::NAN; sizes.grads]);
                        let mut dw = vec![f32::NAN; sizes.weight];
                        let grads = LstmGrads {
                            lanes: r.as_deref_mut(),
                            weight: Some(&mut dw),
                            weight_transposed: false,
                        };
                        let d = d.map(Some);
                        lstm_backward_steps(&pool, case.shape, parts, &y, d, steps, &case.w, &case.c0, grads)
                            .unwrap();
                        (r, dw)
                    };
                    let got = run([&part[0], &part[1], &part[2]], held.clone());
                    let want = run([&filled[0], &filled[1], &filled[2]], [0..5, 0..5, 0..5]);
                    assert!(
                        got.0.as_deref().map(bits) == want.0.as_deref().map(bits)
                            && bits(&got.1) == bits(&want.1),
                        "steps {held:?}, reverse {reverse}, {parts} parts, r {lanes}"
                    );
                }
            }
        }
        // Steps past the last, and lengths that are not the steps' own.
        let d = case.d[0].as_deref().unwrap();
        for (slice, steps) in
            [(&d[..0], 5..6), (&d[..0], Range { start: 3, end: 2 }), (d, 0..4), (&d[..per_step[0]], 0..2)]
        {
            let mut r = vec![0.0f32; sizes.grads];
            let grads = LstmGrads { lanes: Some(&mut r), weight: None, weight_transposed: false };
            let held = [steps, 0..0, 0..0];
            let d = [Some(slice), None, None];
            assert!(
                lstm_backward_steps(&pool, case.shape, 1, &y, d, held.clone(), &case.w, &case.c0, grads)
                    .is_err(),
                "{held:?} of {} elements",
                slice.len()
            );
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every block's scratch starts on a cache line and holds its rows, and
/// so do the partial sums, whatever the sizes asked before.
#[test]
fn scratch_starts_on_a_cache_line() {
    let pool = ThreadPool::new(2).unwrap();
    for (batch, gates) in [(64, 528), (5, 7), (7, 1), (33, 100), (64, 1040), (1, 3)] {
        for parts in [1, 2, 3] {
            let task = |_: usize, rows: Range<usize>, scratch: &mut [f32]| {
                assert_eq!(scratch.as_ptr() as usize % 64, 0, "{batch} rows of {gates}, {parts} parts");
                assert!(scratch.len() >= rows.len() * gates);
                scratch.fill(1.0);
                Ok(())
            };
            run_blocks(&pool, batch, parts, gates, &task).unwrap();
        }
        with_partial_sums(batch * gates, |sums| {
            assert_eq!(sums.as_ptr() as usize % 64, 0, "partial sums of {batch}·{gates}");
            assert_eq!(sums.len(), batch * gates);
        });
    }
}
