//! Synthetic data sets, generated in memory: `synthetic.NAME(...)`.
//!
//! Each generator is a small physical or mathematical system whose answer
//! is known, so a model's fit can be judged without downloading anything.
//! Every random number is a pure function of `(seed, stream, index)`
//! (Philox-4x32-10), with one stream per purpose and example: the data
//! depend only on the train section's `seed` and the generator's arguments,
//! not on thread count or on what else was generated.
//!
//! - `sine(n, noise)`: `x ~ U(−π, π)` as `f32[n, 1]`; `y = sin(x) +
//!   noise·N(0, 1)` as `f32[n, 1]`. Order: iid.
//! - `lorenz96(n, k, forcing, dt)`: one trajectory of the Lorenz-96 system
//!   `dx_i/dt = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F` (indices mod `k`),
//!   integrated in f64 with classical RK4 at a step `h = dt / m` no larger
//!   than `0.01 · min(1, 8 / |F|)`. It starts at `x_i = F + 0.01·N(0, 1)`
//!   and a spin-up of `ceil(10 / dt)` intervals (at most 200 000) is
//!   discarded. Example `i` is the state after `i` further intervals (`x`,
//!   `f32[n, k]`) and one interval `dt` later (`y`). Order: chronological.
//! - `advection(n, size, steps)`: rain-like fields in mm/h on a periodic
//!   `size × size` grid. Each example holds 2–5 elliptic cells (semi-axes
//!   `size/16 … size/6`, at least one cell; random orientation; peak
//!   2–20 mm/h) with profile `I·(e^{−r²/2} − e^{−2}) / (1 − e^{−2})` for
//!   `r < 2` (in semi-axis units) and exactly zero outside. One steady,
//!   divergence-free flow serves the whole data set (drawn from the seed): a
//!   uniform drift of 0.3–0.6 cells per step in a random direction plus the
//!   swirl of the stream function `ψ = A sin(2πx/L + φ₁) sin(2πy/L + φ₂)`
//!   with a peak speed of 0.3 cells per step. Because the flow is shared,
//!   the field at `t` determines the field later, so no history is needed.
//!   Each step is semi-Lagrangian: the departure point is traced back with
//!   the midpoint rule and the field interpolated bilinearly (periodic),
//!   which keeps values non-negative; a global mass fixer then rescales the
//!   field so the step leaves its total unchanged. `x` is the field at `t`,
//!   `y` the field `steps` steps later, both
//!   `f32[n, 1, size, size]`. Order: iid (independent sequences).
//!   With `in: T_in, out: T_out`, sequences for nowcasting: every example
//!   has its own flow (drawn as above) so its motion must be read from its
//!   frames; `x` holds `T_in` frames `steps` steps apart, `f32[n, T_in, 1,
//!   size, size]`, and `y` the `T_out` frames after them. Order: iid.
//! - `eddies(n, size)`: sea-surface-height anomaly maps in m, `f32[n, 1,
//!   size, size]`. Each holds 3–6 Gaussian vortices `±A e^{−r²/(2R²)}`
//!   (`A` 0.1–0.3 m, `R` from `max(1, size/16)` to `max(1.5, size/8)`
//!   cells, centres apart by at least 1.5 (R₁ + R₂), a vortex skipped when
//!   20 tries find no room), a large-scale wave of amplitude 0.02–0.05 m and
//!   noise N(0, 0.005²). `y` is a one-hot mask `f32[n, 3, size, size]`:
//!   class 1 (cyclonic) or 2 (anticyclonic) where a negative or positive
//!   vortex's own profile is at least half its peak (the strongest vortex
//!   wins where cores overlap), class 0 elsewhere. Order: iid.

use std::f64::consts::{PI, TAU};
use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use nnc_compiler::config::Generator;

use super::rng::{stream, Draws};
use super::{ArrayValue, Order, Part, Raw};
use crate::Error;

/// The generator call as written in a `.nn` file, for messages.
pub fn describe(g: &Generator) -> String {
    match *g {
        Generator::Sine { n, noise } => format!("synthetic.sine(n: {n}, noise: {noise})"),
        Generator::Lorenz96 { n, k, forcing, dt } => {
            format!("synthetic.lorenz96(n: {n}, k: {k}, forcing: {forcing}, dt: {dt})")
        }
        Generator::Advection { n, size, steps } => {
            format!("synthetic.advection(n: {n}, size: {size}, steps: {steps})")
        }
        Generator::AdvectionSequence { n, size, steps, input, output } => {
            format!("synthetic.advection(n: {n}, size: {size}, steps: {steps}, in: {input}, out: {output})")
        }
        Generator::Eddies { n, size } => format!("synthetic.eddies(n: {n}, size: {size})"),
    }
}

/// Larger generated data sets than this many values are refused (4 GiB of f32).
const MAX_VALUES: u64 = 1 << 30;

/// The values a generator makes (x and y), saturating.
pub(crate) fn generated_values(g: &Generator) -> u64 {
    let m = |factors: &[usize]| factors.iter().fold(1u64, |n, &f| n.saturating_mul(f as u64));
    match *g {
        Generator::Sine { n, .. } => m(&[n, 2]),
        Generator::Lorenz96 { n, k, .. } => m(&[n, k, 2]),
        Generator::Advection { n, size, .. } => m(&[n, size, size, 2]),
        Generator::AdvectionSequence { n, size, input, output, .. } => {
            m(&[n, size, size, input.saturating_add(output)])
        }
        Generator::Eddies { n, size } => m(&[n, size, size, 4]),
    }
}

/// Generates the examples of `g` under `seed`.
pub(crate) fn generate(g: &Generator, seed: u64) -> Result<Raw, Error> {
    let origin = describe(g);
    let here = PathBuf::from(&origin);
    if generated_values(g) > MAX_VALUES {
        return Err(Error::new(&here, "too large to generate in memory (more than 2^30 values)"));
    }
    let (x, y, order, units) = match *g {
        Generator::Sine { n, noise } => {
            let (x, y) = sine(n, noise, seed);
            (x, y, Order::Iid, (None, None))
        }
        Generator::Lorenz96 { n, k, forcing, dt } => {
            let (x, y) = lorenz96(n, k, forcing, dt, seed).map_err(|e| Error::new(&here, e))?;
            (x, y, Order::Chronological, (None, None))
        }
        Generator::Advection { n, size, steps } => {
            let (x, y) = advection(n, size, steps, seed);
            (x, y, Order::Iid, (Some("mm/h"), Some("mm/h")))
        }
        Generator::AdvectionSequence { n, size, steps, input, output } => {
            let (x, y) = advection_sequences(n, size, steps, input, output, seed);
            (x, y, Order::Iid, (Some("mm/h"), Some("mm/h")))
        }
        Generator::Eddies { n, size } => {
            let (x, y) = eddies(n, size, seed);
            (x, y, Order::Iid, (Some("m"), None))
        }
    };
    let part = |array: &str, value: ArrayD<f32>, unit: Option<&str>| Part {
        array: array.to_string(),
        source: here.clone(),
        value: ArrayValue::F32(value),
        unit: unit.map(str::to_string),
        variables: vec![],
        cells: None,
    };
    let variable_axis = if matches!(g, Generator::AdvectionSequence { .. }) { 2 } else { 1 };
    Ok(Raw { x: part("x", x, units.0), y: part("y", y, units.1), order, origin, variable_axis, grid: None })
}

fn array(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    // The shape is computed from the same sizes as the values: they agree.
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap_or_else(|_| ArrayD::zeros(IxDyn(shape)))
}

// ---- sine -----------------------------------------------------------------

/// `x ~ U(−π, π)`, `y = sin x + noise·N(0, 1)`, both `[n, 1]`.
pub fn sine(n: usize, noise: f64, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut ux = Draws::new(seed, stream(1, 0));
    let mut un = Draws::new(seed, stream(2, 0));
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let x = ux.range(-PI, PI);
        let e = if noise > 0.0 { noise * un.normal() } else { 0.0 };
        xs.push(x as f32);
        ys.push((x.sin() + e) as f32);
    }
    (array(&[n, 1], xs), array(&[n, 1], ys))
}

// ---- Lorenz-96 --------------------------------------------------------------

/// The Lorenz-96 tendency of `x` into `out`.
fn l96_tendency(x: &[f64], forcing: f64, out: &mut [f64]) {
    let k = x.len();
    for i in 0..k {
        let (ip1, im1, im2) = ((i + 1) % k, (i + k - 1) % k, (i + k - 2) % k);
        out[i] = (x[ip1] - x[im2]) * x[im1] - x[i] + forcing;
    }
}

/// One classical Runge–Kutta step of size `h`, in place.
pub fn l96_rk4(x: &mut [f64], forcing: f64, h: f64) {
    let k = x.len();
    let (mut k1, mut k2, mut k3, mut k4) = (vec![0.0; k], vec![0.0; k], vec![0.0; k], vec![0.0; k]);
    let mut tmp = vec![0.0; k];
    l96_tendency(x, forcing, &mut k1);
    for i in 0..k {
        tmp[i] = x[i] + 0.5 * h * k1[i];
    }
    l96_tendency(&tmp, forcing, &mut k2);
    for i in 0..k {
        tmp[i] = x[i] + 0.5 * h * k2[i];
    }
    l96_tendency(&tmp, forcing, &mut k3);
    for i in 0..k {
        tmp[i] = x[i] + h * k3[i];
    }
    l96_tendency(&tmp, forcing, &mut k4);
    for i in 0..k {
        x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    }
}

/// The number of RK4 substeps per interval `dt` (see the module docs).
pub fn l96_substeps(forcing: f64, dt: f64) -> usize {
    let h_max = 0.01 * (8.0 / forcing.abs().max(1e-12)).min(1.0);
    ((dt / h_max).ceil() as usize).max(1)
}

/// Advances `x` by `dt` in `m` RK4 substeps.
pub fn l96_advance(x: &mut [f64], forcing: f64, dt: f64, m: usize) {
    let h = dt / m as f64;
    for _ in 0..m {
        l96_rk4(x, forcing, h);
    }
}

fn lorenz96(
    n: usize,
    k: usize,
    forcing: f64,
    dt: f64,
    seed: u64,
) -> Result<(ArrayD<f32>, ArrayD<f32>), String> {
    let mut draws = Draws::new(seed, stream(1, 0));
    let mut x: Vec<f64> = (0..k).map(|_| forcing + 0.01 * draws.normal()).collect();
    let m = l96_substeps(forcing, dt);
    let spin = ((10.0 / dt).ceil() as usize).clamp(1, 200_000);
    for _ in 0..spin {
        l96_advance(&mut x, forcing, dt, m);
    }
    let mut states = Vec::with_capacity((n + 1) * k);
    states.extend(x.iter().map(|&v| v as f32));
    for _ in 0..n {
        l96_advance(&mut x, forcing, dt, m);
        if x.iter().any(|v| !v.is_finite() || v.abs() > 1e30) {
            return Err(format!(
                "the trajectory diverged (forcing {forcing}, dt {dt}); use a smaller forcing"
            ));
        }
        states.extend(x.iter().map(|&v| v as f32));
    }
    let xs = states[..n * k].to_vec();
    let ys = states[k..].to_vec();
    Ok((array(&[n, k], xs), array(&[n, k], ys)))
}

// ---- advection ----------------------------------------------------------------

/// A steady flow, in cells per step: one per `advection` data set of
/// pairs, one per sequence of a data set of sequences.
struct Flow {
    drift: (f64, f64),
    swirl: f64,
    phase: (f64, f64),
    len: f64,
}

impl Flow {
    /// A flow drawn from `d`.
    fn new(d: &mut Draws, size: usize) -> Flow {
        let speed = d.range(0.3, 0.6);
        let angle = d.range(0.0, TAU);
        let phase = (d.range(0.0, TAU), d.range(0.0, TAU));
        // ψ = A sin(kx + φ₁) sin(ky + φ₂) with peak speed A k = 0.3.
        Flow { drift: (speed * angle.cos(), speed * angle.sin()), swirl: 0.3, phase, len: size as f64 }
    }

    /// Velocity (along columns, along rows) at (column, row) = (x, y):
    /// `u = ∂ψ/∂y`, `v = −∂ψ/∂x` plus the drift; divergence-free.
    fn velocity(&self, x: f64, y: f64) -> (f64, f64) {
        let k = TAU / self.len;
        let (sx, cx) = (k * x + self.phase.0).sin_cos();
        let (sy, cy) = (k * y + self.phase.1).sin_cos();
        (self.drift.0 + self.swirl * sx * cy, self.drift.1 - self.swirl * cx * sy)
    }
}

/// Bilinear interpolation of the periodic field `f` (`size × size`, row-major)
/// at (column, row) = (x, y).
fn bilinear(f: &[f64], size: usize, x: f64, y: f64) -> f64 {
    let l = size as f64;
    let (x, y) = (x.rem_euclid(l), y.rem_euclid(l));
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (i0, j0) = ((y0 as usize) % size, (x0 as usize) % size);
    let (i1, j1) = ((i0 + 1) % size, (j0 + 1) % size);
    let at = |i: usize, j: usize| f[i * size + j];
    (1.0 - fy) * ((1.0 - fx) * at(i0, j0) + fx * at(i0, j1))
        + fy * ((1.0 - fx) * at(i1, j0) + fx * at(i1, j1))
}

/// Periodic difference `a − b` folded into `[−l/2, l/2)`.
fn periodic(a: f64, b: f64, l: f64) -> f64 {
    (a - b + 0.5 * l).rem_euclid(l) - 0.5 * l
}

/// The initial rain field of advection example `item`.
fn rain_cells(seed: u64, item: u64, size: usize) -> Vec<f64> {
    let l = size as f64;
    let mut d = Draws::new(seed, stream(11, item));
    let count = d.int(2, 5);
    let cut = (-2.0f64).exp();
    let mut f = vec![0.0; size * size];
    for _ in 0..count {
        let (cx, cy) = (d.range(0.0, l), d.range(0.0, l));
        let a = d.range(l / 16.0, l / 6.0).max(1.0);
        let b = d.range(l / 16.0, l / 6.0).max(1.0);
        let (s, c) = d.range(0.0, PI).sin_cos();
        let peak = d.range(2.0, 20.0);
        for i in 0..size {
            for j in 0..size {
                let (dx, dy) = (periodic(j as f64, cx, l), periodic(i as f64, cy, l));
                let (u, v) = ((c * dx + s * dy) / a, (-s * dx + c * dy) / b);
                let r2 = u * u + v * v;
                if r2 < 4.0 {
                    f[i * size + j] += peak * ((-0.5 * r2).exp() - cut) / (1.0 - cut);
                }
            }
        }
    }
    f
}

impl Flow {
    /// The departure point of every cell for one semi-Lagrangian step
    /// (midpoint rule), row-major.
    fn departures(&self, size: usize) -> Vec<(f64, f64)> {
        let mut departure = Vec::with_capacity(size * size);
        for i in 0..size {
            for j in 0..size {
                let (x, y) = (j as f64, i as f64);
                let (u, v) = self.velocity(x, y);
                let (um, vm) = self.velocity(x - 0.5 * u, y - 0.5 * v);
                departure.push((x - um, y - vm));
            }
        }
        departure
    }
}

/// Advances `f` by `steps` semi-Lagrangian steps along `departure`
/// (bilinear, periodic), each followed by the global mass fixer; `next` is
/// scratch space of the same size.
fn advect(f: &mut Vec<f64>, next: &mut Vec<f64>, departure: &[(f64, f64)], size: usize, steps: usize) {
    for _ in 0..steps {
        for (out, &(x, y)) in next.iter_mut().zip(departure) {
            *out = bilinear(f, size, x, y);
        }
        // Global mass fixer: interpolation loses or gains a little mass.
        let (before, after) = (f.iter().sum::<f64>(), next.iter().sum::<f64>());
        if after > 0.0 {
            next.iter_mut().for_each(|v| *v *= before / after);
        }
        std::mem::swap(f, next);
    }
}

fn advection(n: usize, size: usize, steps: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    // The flow is steady and shared: every step uses the same departure points.
    let departure = Flow::new(&mut Draws::new(seed, stream(10, 0)), size).departures(size);
    let cells = size * size;
    let mut xs = Vec::with_capacity(n * cells);
    let mut ys = Vec::with_capacity(n * cells);
    let mut next = vec![0.0; cells];
    for item in 0..n {
        let mut f = rain_cells(seed, item as u64, size);
        xs.extend(f.iter().map(|&v| v as f32));
        advect(&mut f, &mut next, &departure, size, steps);
        ys.extend(f.iter().map(|&v| v as f32));
    }
    (array(&[n, 1, size, size], xs), array(&[n, 1, size, size], ys))
}

/// `n` sequences of `input + output` frames `steps` steps apart; sequence
/// `item` has its own flow (stream 12) and rain cells (stream 11, as the
/// pairs): `x` = the first `input` frames `[n, input, 1, size, size]`, `y`
/// the next `output`.
fn advection_sequences(
    n: usize,
    size: usize,
    steps: usize,
    input: usize,
    output: usize,
    seed: u64,
) -> (ArrayD<f32>, ArrayD<f32>) {
    let cells = size * size;
    let mut xs = Vec::with_capacity(n * input * cells);
    let mut ys = Vec::with_capacity(n * output * cells);
    let mut next = vec![0.0; cells];
    for item in 0..n {
        let departure = Flow::new(&mut Draws::new(seed, stream(12, item as u64)), size).departures(size);
        let mut f = rain_cells(seed, item as u64, size);
        for frame in 0..input + output {
            if frame > 0 {
                advect(&mut f, &mut next, &departure, size, steps);
            }
            let out = if frame < input { &mut xs } else { &mut ys };
            out.extend(f.iter().map(|&v| v as f32));
        }
    }
    (array(&[n, input, 1, size, size], xs), array(&[n, output, 1, size, size], ys))
}

// ---- eddies ---------------------------------------------------------------------

/// The fraction of its peak above which a vortex's own profile is its core.
pub const CORE_FRACTION: f64 = 0.5;

struct Vortex {
    x: f64,
    y: f64,
    radius: f64,
    /// Signed peak anomaly (m): negative = cyclonic.
    amplitude: f64,
}

fn vortices(d: &mut Draws, size: usize) -> Vec<Vortex> {
    let l = size as f64;
    let count = d.int(3, 6);
    let (r_lo, r_hi) = ((l / 16.0).max(1.0), (l / 8.0).max(1.5));
    let mut out: Vec<Vortex> = vec![];
    for _ in 0..count {
        let radius = d.range(r_lo, r_hi);
        let amplitude = d.range(0.1, 0.3) * if d.uniform() < 0.5 { -1.0 } else { 1.0 };
        for _ in 0..20 {
            let (x, y) = (d.range(0.0, l), d.range(0.0, l));
            let free = out.iter().all(|v| (v.x - x).hypot(v.y - y) >= 1.5 * (v.radius + radius));
            if free {
                out.push(Vortex { x, y, radius, amplitude });
                break;
            }
        }
    }
    out
}

fn eddies(n: usize, size: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let l = size as f64;
    let cells = size * size;
    let mut xs = Vec::with_capacity(n * cells);
    let mut ys = vec![0.0f32; n * 3 * cells];
    for item in 0..n {
        let mut d = Draws::new(seed, stream(20, item as u64));
        let mut noise = Draws::new(seed, stream(21, item as u64));
        let vs = vortices(&mut d, size);
        let wave = d.range(0.02, 0.05);
        let (kx, ky) = [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)][d.int(0, 2)];
        let phase = d.range(0.0, TAU);
        let mask = &mut ys[item * 3 * cells..(item + 1) * 3 * cells];
        for i in 0..size {
            for j in 0..size {
                let (x, y) = (j as f64, i as f64);
                let mut h = wave * (TAU * (kx * x + ky * y) / l + phase).sin() + 0.005 * noise.normal();
                // The vortex whose core holds this cell with the largest |profile|.
                let mut core: Option<(f64, f64)> = None;
                for v in &vs {
                    let r2 = (x - v.x).powi(2) + (y - v.y).powi(2);
                    let g = (-r2 / (2.0 * v.radius * v.radius)).exp();
                    h += v.amplitude * g;
                    let strength = (v.amplitude * g).abs();
                    if g >= CORE_FRACTION && core.is_none_or(|(s, _)| strength > s) {
                        core = Some((strength, v.amplitude));
                    }
                }
                let class = match core {
                    Some((_, a)) if a < 0.0 => 1,
                    Some(_) => 2,
                    None => 0,
                };
                mask[class * cells + i * size + j] = 1.0;
                xs.push(h as f32);
            }
        }
    }
    (array(&[n, 1, size, size], xs), array(&[n, 3, size, size], ys))
}
