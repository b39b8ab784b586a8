//! The fused recurrences: `lstm` and `lstm_grad`, step by step in the
//! order the op documents, each product a plain dot product in index order.

use ndarray::{ArrayD, IxDyn};

use super::elementwise::sigmoid;
use super::Real;

/// The sizes of an LSTM's operands: batch, steps, hidden.
struct Sizes {
    batch: usize,
    steps: usize,
    hidden: usize,
}

/// Checks `w: [4H, H]`, the states `[B, H]` and each `(operand, lanes)`:
/// `[T, B, lanes·H]`.
fn sizes<T: Real>(
    w: &ArrayD<T>,
    states: &[&ArrayD<T>],
    steps: usize,
    seqs: &[(&ArrayD<T>, usize)],
) -> Result<Sizes, String> {
    let ws = w.shape();
    if ws.len() != 2 || ws[1] == 0 || ws[0] != 4 * ws[1] {
        return Err(format!("`lstm`: the recurrent weight {ws:?} is not [4H, H]"));
    }
    let hidden = ws[1];
    let batch = states.first().and_then(|s| s.shape().first().copied()).unwrap_or(0);
    for st in states {
        if st.shape() != [batch, hidden] {
            return Err(format!("`lstm`: a state {:?} is not [{batch}, {hidden}]", st.shape()));
        }
    }
    for &(seq, lanes) in seqs {
        let want = [steps, batch, lanes * hidden];
        if seq.shape() != want {
            return Err(format!("`lstm`: an operand {:?} is not {want:?}", seq.shape()));
        }
    }
    Ok(Sizes { batch, steps, hidden })
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

/// `lstm(gx, w, h0, c0)` (see `Op::Lstm`).
pub(super) fn lstm<T: Real>(
    gx: &ArrayD<T>,
    w: &ArrayD<T>,
    h0: &ArrayD<T>,
    c0: &ArrayD<T>,
    reverse: bool,
) -> Result<ArrayD<T>, String> {
    let steps = gx.shape().first().copied().unwrap_or(0);
    let Sizes { batch, steps, hidden: h } = sizes(w, &[h0, c0], steps, &[(gx, 4)])?;
    let (gx, w, h0, c0) = (row_major(gx), row_major(w), row_major(h0), row_major(c0));
    let mut y = vec![T::zero(); batch * steps * 6 * h];
    let at = |b: usize, t: usize| (t * batch + b) * 6 * h;
    let mut pre = vec![T::zero(); 4 * h];
    for b in 0..batch {
        let mut prev: Option<usize> = None;
        for t in order(steps, reverse) {
            for (j, p) in pre.iter_mut().enumerate() {
                let mut acc = T::zero();
                for k in 0..h {
                    let hk = match prev {
                        Some(s) => y[at(b, s) + k],
                        None => h0[b * h + k],
                    };
                    acc = acc + hk * w[j * h + k];
                }
                *p = gx[(t * batch + b) * 4 * h + j] + acc;
            }
            let o = at(b, t);
            for k in 0..h {
                let c_prev = match prev {
                    Some(s) => y[at(b, s) + h + k],
                    None => c0[b * h + k],
                };
                let i = sigmoid(pre[k]);
                let f = sigmoid(pre[h + k]);
                let g = pre[2 * h + k].tanh();
                let og = sigmoid(pre[3 * h + k]);
                let c = f * c_prev + i * g;
                y[o + k] = og * c.tanh();
                y[o + h + k] = c;
                y[o + 2 * h + k] = i;
                y[o + 3 * h + k] = f;
                y[o + 4 * h + k] = g;
                y[o + 5 * h + k] = og;
            }
            prev = Some(t);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[steps, batch, 6 * h]), y).map_err(|e| e.to_string())
}

/// `lstm_grad(y, dh, dc, dgates, w, c0)` (see `Op::LstmGrad`).
pub(super) fn lstm_grad<T: Real>(
    [y, dh, dc, dgates, w, c0]: [&ArrayD<T>; 6],
    reverse: bool,
) -> Result<ArrayD<T>, String> {
    let steps = y.shape().first().copied().unwrap_or(0);
    let seqs = [(y, 6), (dh, 1), (dc, 1), (dgates, 4)];
    let Sizes { batch, steps, hidden: h } = sizes(w, &[c0], steps, &seqs)?;
    let (y, dh, dc, dg) = (row_major(y), row_major(dh), row_major(dc), row_major(dgates));
    let (w, c0) = (row_major(w), row_major(c0));
    let mut r = vec![T::zero(); batch * steps * 6 * h];
    let at = |b: usize, t: usize, lanes: usize| (t * batch + b) * lanes * h;
    let one = T::one();
    let order = order(steps, reverse);
    for b in 0..batch {
        let mut next: Option<usize> = None;
        for (n, &t) in order.iter().enumerate().rev() {
            let prev = n.checked_sub(1).map(|p| order[p]);
            let (o, s1, s4) = (at(b, t, 6), at(b, t, 1), at(b, t, 4));
            for k in 0..h {
                let (dh_rec, dc_rec) = match next {
                    Some(s) => (r[at(b, s, 6) + 4 * h + k], r[at(b, s, 6) + 5 * h + k]),
                    None => (T::zero(), T::zero()),
                };
                let dh_t = dh[s1 + k] + dh_rec;
                let c = y[o + h + k];
                let (i, f, g, og) = (y[o + 2 * h + k], y[o + 3 * h + k], y[o + 4 * h + k], y[o + 5 * h + k]);
                let c_prev = match prev {
                    Some(s) => y[at(b, s, 6) + h + k],
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
                    acc = acc + r[o + j] * w[j * h + k];
                }
                r[o + 4 * h + k] = acc;
            }
            next = Some(t);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[steps, batch, 6 * h]), r).map_err(|e| e.to_string())
}
