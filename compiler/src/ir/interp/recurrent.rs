//! The fused recurrences: `lstm` and `lstm_grad`, step by step in the
//! order the op documents, each product a plain dot product in index order.

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::elementwise::sigmoid;
use super::Real;
use crate::ir::{LstmSizes, Shape};

/// The sizes of an LSTM's operands: batch, steps, and those its weight
/// gives.
#[derive(Clone, Copy)]
struct Sizes {
    batch: usize,
    steps: usize,
    lstm: LstmSizes,
}

/// Checks `w: [4H, F + H + 1]` and the states `[B, H]`.
fn sizes<T: Real>(w: &ArrayD<T>, states: &[&ArrayD<T>], steps: usize) -> Result<Sizes, String> {
    let ws = w.shape();
    let lstm = LstmSizes::of_weight(&Shape::known(ws))
        .ok_or_else(|| format!("`lstm`: the weight {ws:?} is not [4H, F + H + 1]"))?;
    let hidden = lstm.hidden;
    let batch = states.first().and_then(|s| s.shape().first().copied()).unwrap_or(0);
    for st in states {
        if st.shape() != [batch, hidden] {
            return Err(format!("`lstm`: a state {:?} is not [{batch}, {hidden}]", st.shape()));
        }
    }
    Ok(Sizes { batch, steps, lstm })
}

/// Checks that each `(operand, lanes)` is `[T, B, lanes]`.
fn check_sequences<T: Real>(sizes: &Sizes, seqs: &[(&ArrayD<T>, usize)]) -> Result<(), String> {
    for &(seq, lanes) in seqs {
        let want = [sizes.steps, sizes.batch, lanes];
        if seq.shape() != want {
            return Err(format!("`lstm`: an operand {:?} is not {want:?}", seq.shape()));
        }
    }
    Ok(())
}

/// The steps in processing order.
fn order(steps: usize, reverse: bool) -> Vec<usize> {
    if reverse {
        (0..steps).rev().collect()
    } else {
        (0..steps).collect()
    }
}

fn row_major<T: Real>(a: &ArrayD<T>) -> Vec<T> {
    a.iter().copied().collect()
}

/// `lstm(x, w, h0, c0)` (see `Op::Lstm`).
pub(super) fn lstm<T: Real>(
    x: &ArrayD<T>,
    w: &ArrayD<T>,
    h0: &ArrayD<T>,
    c0: &ArrayD<T>,
    reverse: bool,
) -> Result<ArrayD<T>, String> {
    let steps = x.shape().first().copied().unwrap_or(0);
    let sizes = sizes(w, &[h0, c0], steps)?;
    check_sequences(&sizes, &[(x, sizes.lstm.features)])?;
    let Sizes { batch, steps, lstm } = sizes;
    let (h, nf, l) = (lstm.hidden, lstm.features, lstm.result_lanes());
    let k = nf + h + 1;
    let (x, w, h0, c0) = (row_major(x), row_major(w), row_major(h0), row_major(c0));
    let mut y = vec![T::zero(); batch * steps * l];
    let at = |b: usize, t: usize| (t * batch + b) * l;
    let mut pre = vec![T::zero(); 4 * h];
    for b in 0..batch {
        let mut prev: Option<usize> = None;
        for t in order(steps, reverse) {
            let o = at(b, t);
            // The step's operand z = [x_t, h_prev, 1] in lanes 6H.. of y.
            let z = o + 6 * h;
            y[z..z + nf].copy_from_slice(&x[(t * batch + b) * nf..(t * batch + b + 1) * nf]);
            for j in 0..h {
                y[z + nf + j] = match prev {
                    Some(s) => y[at(b, s) + j],
                    None => h0[b * h + j],
                };
            }
            y[z + nf + h] = T::one();
            for (j, p) in pre.iter_mut().enumerate() {
                let mut acc = T::zero();
                for q in 0..k {
                    acc = acc + y[z + q] * w[j * k + q];
                }
                *p = acc;
            }
            for j in 0..h {
                let c_prev = match prev {
                    Some(s) => y[at(b, s) + h + j],
                    None => c0[b * h + j],
                };
                let i = sigmoid(pre[j]);
                let f = sigmoid(pre[h + j]);
                let g = pre[2 * h + j].tanh();
                let og = sigmoid(pre[3 * h + j]);
                let c = f * c_prev + i * g;
                y[o + j] = og * c.tanh();
                y[o + h + j] = c;
                y[o + 2 * h + j] = i;
                y[o + 3 * h + j] = f;
                y[o + 4 * h + j] = g;
                y[o + 5 * h + j] = og;
            }
            prev = Some(t);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[steps, batch, l]), y).map_err(|e| e.to_string())
}

/// `lstm_grad(y, dh, dc, dgates, w, c0)` (see `Op::LstmGrad`), cotangent
/// `1 + i` holding the steps from `from[i]` (`+0` at the others).
pub(super) fn lstm_grad<T: Real>(
    [y, dh, dc, dgates, w, c0]: [&ArrayD<T>; 6],
    reverse: bool,
    from: &[usize],
) -> Result<ArrayD<T>, String> {
    let steps = y.shape().first().copied().unwrap_or(0);
    // Each cotangent over all the steps: its steps, `+0` at the others.
    let whole = |d: &ArrayD<T>, i: usize| -> Result<ArrayD<T>, String> {
        let first = from.get(i).copied().unwrap_or(0);
        let held = d.shape().first().copied().unwrap_or(0);
        if first == 0 && held == steps {
            return Ok(d.clone());
        }
        if first.checked_add(held).is_none_or(|end| end > steps) {
            return Err(format!("cotangent {i} holds steps {first}..{} of {steps}", first + held));
        }
        let mut shape = d.shape().to_vec();
        shape[0] = steps;
        let mut all = ArrayD::from_elem(IxDyn(&shape), T::zero());
        all.slice_axis_mut(Axis(0), Slice::from(first..first + held)).assign(d);
        Ok(all)
    };
    let (dh, dc, dgates) = (&whole(dh, 0)?, &whole(dc, 1)?, &whole(dgates, 2)?);
    let sizes = sizes(w, &[c0], steps)?;
    let Sizes { batch, steps, lstm } = sizes;
    let (h, nf, l) = (lstm.hidden, lstm.features, lstm.result_lanes());
    check_sequences(&sizes, &[(y, l), (dh, h), (dc, h), (dgates, 4 * h)])?;
    let (y, dh, dc, dg) = (row_major(y), row_major(dh), row_major(dc), row_major(dgates));
    let (w, c0) = (row_major(w), row_major(c0));
    let mut r = vec![T::zero(); batch * steps * 6 * h];
    let k_cols = nf + h + 1;
    let at = |b: usize, t: usize, lanes: usize| (t * batch + b) * lanes;
    let one = T::one();
    let order = order(steps, reverse);
    for b in 0..batch {
        let mut next: Option<usize> = None;
        for (n, &t) in order.iter().enumerate().rev() {
            let prev = n.checked_sub(1).map(|p| order[p]);
            let (o, s1, s4, yo) = (at(b, t, 6 * h), at(b, t, h), at(b, t, 4 * h), at(b, t, l));
            for k in 0..h {
                let (dh_rec, dc_rec) = match next {
                    Some(s) => (r[at(b, s, 6 * h) + 4 * h + k], r[at(b, s, 6 * h) + 5 * h + k]),
                    None => (T::zero(), T::zero()),
                };
                let dh_t = dh[s1 + k] + dh_rec;
                let c = y[yo + h + k];
                let (i, f, g, og) =
                    (y[yo + 2 * h + k], y[yo + 3 * h + k], y[yo + 4 * h + k], y[yo + 5 * h + k]);
                let c_prev = match prev {
                    Some(s) => y[at(b, s, l) + h + k],
                    None => c0[b * h + k],
                };
                let tc = c.tanh();
                let dc_t = dc[s1 + k] + dc_rec + dh_t * og * (one - tc * tc);
                r[o + k] = (dc_t * g + dg[s4 + k]) * i * (one - i);
                r[o + h + k] = (dc_t * c_prev + dg[s4 + h + k]) * f * (one - f);
                r[o + 2 * h + k] = (dc_t * i + dg[s4 + 2 * h + k]) * (one - g * g);
                r[o + 3 * h + k] = (dh_t * tc + dg[s4 + 3 * h + k]) * og * (one - og);
                r[o + 5 * h + k] = dc_t * f;
            }
            for k in 0..h {
                let mut acc = T::zero();
                for j in 0..4 * h {
                    acc = acc + r[o + j] * w[j * k_cols + nf + k];
                }
                r[o + 4 * h + k] = acc;
            }
            next = Some(t);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[steps, batch, 6 * h]), r).map_err(|e| e.to_string())
}
