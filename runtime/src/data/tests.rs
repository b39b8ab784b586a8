//! Generators, splits and the shipped data sets, checked directly (the
//! binding and file sources are exercised through `load` in
//! `runtime/tests/data.rs`).

use ndarray::{ArrayD, Axis};
use nnc_compiler::config::Generator;

use super::synthetic::{generate, l96_advance, l96_substeps};
use super::*;

fn f32s(v: &ArrayValue) -> &ArrayD<f32> {
    match v {
        ArrayValue::F32(a) => a,
        ArrayValue::I32(_) => panic!("expected floats"),
    }
}

fn run(g: Generator, seed: u64) -> (ArrayD<f32>, ArrayD<f32>, Order) {
    let raw = generate(&g, seed).expect("generates");
    (f32s(&raw.x.value).clone(), f32s(&raw.y.value).clone(), raw.order)
}

#[test]
fn split_rules() {
    // (n, split, order, validation indices)
    let cases: &[(usize, f64, Order, &[usize])] = &[
        (10, 0.8, Order::Iid, &[4, 9]),
        (12, 0.8, Order::Iid, &[4, 9]),
        (10, 0.8, Order::Chronological, &[8, 9]),
        (6, 0.5, Order::Iid, &[1, 3, 5]),
        (7, 0.5, Order::Chronological, &[3, 4, 5, 6]),
        (4, 0.9, Order::Iid, &[]),
        (3, 0.1, Order::Chronological, &[0, 1, 2]),
    ];
    for &(n, split, order, valid) in cases {
        let (t, v) = split_indices(n, split, order);
        assert_eq!(v, valid, "n {n}, split {split}, {order:?}");
        assert_eq!(t.len() + v.len(), n);
    }
    // The shipped sets' IID rule: index % 5 == 4 validates, for any n.
    let (_, v) = split_indices(1797, 0.8, Order::Iid);
    assert!(v.iter().all(|i| i % 5 == 4) && v.len() == 359);
    let (t, _) = split_indices(720, 0.8, Order::Chronological);
    assert_eq!(t.len(), 576);
}

#[test]
fn split_rules_of_the_train_section() {
    use nnc_compiler::config::{Split, SplitRule};
    let examples =
        |order| Examples { fields: vec![], n: 10, order, origin: "t".into(), dropped: 0, grid: None };
    let chronological = |fraction| Split { fraction, rule: SplitRule::Chronological };
    let iid = examples(Order::Iid);
    // `split = 0.8`: the source's own order.
    assert_eq!(iid.split(0.8).1, [4, 9]);
    assert_eq!(iid.split(Split::by_source(0.8)).1, [4, 9]);
    // `split = chronological(0.8)`: the first 80 % train whatever the source.
    assert_eq!(iid.split(chronological(0.8)), ((0..8).collect(), vec![8, 9]));
    assert_eq!(iid.split(chronological(0.05)).0, Vec::<usize>::new());
    let time = examples(Order::Chronological);
    assert_eq!(time.split(0.8), time.split(chronological(0.8)));
}

#[test]
fn generator_shapes_and_order() {
    let cases = [
        (Generator::Sine { n: 100, noise: 0.1 }, vec![100, 1], vec![100, 1], Order::Iid),
        (
            Generator::Lorenz96 { n: 50, k: 8, forcing: 8.0, dt: 0.05 },
            vec![50, 8],
            vec![50, 8],
            Order::Chronological,
        ),
        (
            Generator::Advection { n: 3, size: 16, steps: 2 },
            vec![3, 1, 16, 16],
            vec![3, 1, 16, 16],
            Order::Iid,
        ),
        (Generator::Eddies { n: 4, size: 32 }, vec![4, 1, 32, 32], vec![4, 3, 32, 32], Order::Iid),
        (Generator::Eddies { n: 2, size: 4 }, vec![2, 1, 4, 4], vec![2, 3, 4, 4], Order::Iid),
    ];
    for (g, xs, ys, order) in cases {
        let (x, y, o) = run(g, 7);
        assert_eq!((x.shape(), y.shape(), o), (xs.as_slice(), ys.as_slice(), order), "{g:?}");
        assert!(x.iter().chain(y.iter()).all(|v| v.is_finite()), "{g:?}");
    }
}

#[test]
fn generators_are_deterministic_under_a_seed() {
    let gens = [
        Generator::Sine { n: 64, noise: 0.3 },
        Generator::Lorenz96 { n: 20, k: 6, forcing: 8.0, dt: 0.05 },
        Generator::Advection { n: 2, size: 12, steps: 3 },
        Generator::Eddies { n: 2, size: 16 },
    ];
    for g in gens {
        let (a, b, c) = (run(g, 3), run(g, 3), run(g, 4));
        assert_eq!((&a.0, &a.1), (&b.0, &b.1), "{g:?}: same seed, same data");
        assert_ne!(a.0, c.0, "{g:?}: another seed, other data");
    }
    // A prefix does not depend on how many examples are drawn.
    let (small, _, _) = run(Generator::Eddies { n: 2, size: 16 }, 9);
    let (large, _, _) = run(Generator::Eddies { n: 5, size: 16 }, 9);
    assert_eq!(small, large.slice_axis(Axis(0), (0..2).into()).to_owned());
}

#[test]
fn sine_is_sine_plus_noise() {
    for (noise, tolerance) in [(0.0, 1e-6), (0.1, 0.6)] {
        let (x, y, _) = run(Generator::Sine { n: 500, noise }, 1);
        let mut err2 = 0.0;
        for (a, b) in x.iter().zip(y.iter()) {
            assert!((-std::f32::consts::PI..std::f32::consts::PI).contains(a));
            let e = (*b as f64) - (*a as f64).sin();
            assert!(e.abs() <= tolerance, "noise {noise}: error {e}");
            err2 += e * e;
        }
        let rms = (err2 / 500.0).sqrt();
        assert!((rms - noise).abs() <= 0.02 + 0.2 * noise, "noise {noise}: rms {rms}");
    }
}

#[test]
fn lorenz96_is_a_consistent_rk4_trajectory() {
    for (k, forcing, dt) in [(40, 8.0, 0.05), (10, 8.0, 0.01), (6, 5.0, 0.1)] {
        let (x, y, _) = run(Generator::Lorenz96 { n: 60, k, forcing, dt }, 2);
        // Chronological: y of example i is x of example i + 1.
        assert_eq!(y.slice_axis(Axis(0), (0..59).into()), x.slice_axis(Axis(0), (1..60).into()));
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let spread = (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!(spread > 0.5, "k {k}: the spun-up state is chaotic, spread {spread}");
        let mut step2 = 0.0;
        for (a, b) in x.iter().zip(y.iter()) {
            step2 += ((*b - *a) as f64).powi(2);
        }
        let step = (step2 / x.len() as f64).sqrt();
        assert!(step < 0.5 * spread, "k {k}, dt {dt}: step {step} vs spread {spread}");
        // Integrating x with ten times finer RK4 steps reproduces y.
        let m = 10 * l96_substeps(forcing, dt);
        for i in [0, 17, 59] {
            let mut s: Vec<f64> = x.index_axis(Axis(0), i).iter().map(|&v| v as f64).collect();
            l96_advance(&mut s, forcing, dt, m);
            for (a, b) in s.iter().zip(y.index_axis(Axis(0), i).iter()) {
                assert!((a - *b as f64).abs() < 1e-3 * spread, "k {k}, example {i}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn advection_conserves_mass_and_positivity() {
    for (size, steps) in [(32, 4), (16, 10), (24, 1)] {
        let (x, y, _) = run(Generator::Advection { n: 6, size, steps }, 5);
        for i in 0..6 {
            let (a, b) = (x.index_axis(Axis(0), i), y.index_axis(Axis(0), i));
            let (ma, mb) =
                (a.iter().map(|&v| v as f64).sum::<f64>(), b.iter().map(|&v| v as f64).sum::<f64>());
            assert!(ma > 0.0, "rain is present");
            assert!(((mb - ma) / ma).abs() < 1e-4, "size {size}, steps {steps}: mass {ma} → {mb}");
            assert!(b.iter().all(|&v| v >= 0.0));
            let dry = a.iter().filter(|&&v| v == 0.0).count();
            assert!(dry > 0, "cells are zero outside the rain cells");
        }
        assert_ne!(x, y, "the field moves");
    }
}

#[test]
fn eddy_classes_are_non_trivial_and_match_the_sign_of_the_height() {
    let (x, y, _) = run(Generator::Eddies { n: 64, size: 32 }, 0);
    let cells = 32 * 32;
    let mut counts = [0usize; 3];
    let (mut cyclonic_negative, mut anticyclonic_positive) = (0usize, 0usize);
    for i in 0..64 {
        for p in 0..cells {
            let (r, c) = (p / 32, p % 32);
            let classes: Vec<f32> = (0..3).map(|k| y[[i, k, r, c]]).collect();
            assert_eq!(classes.iter().sum::<f32>(), 1.0, "one-hot");
            let class = classes.iter().position(|&v| v == 1.0).expect("a class");
            counts[class] += 1;
            let h = x[[i, 0, r, c]];
            if class == 1 && h < 0.0 {
                cyclonic_negative += 1;
            }
            if class == 2 && h > 0.0 {
                anticyclonic_positive += 1;
            }
        }
    }
    let total = (64 * cells) as f64;
    let frac: Vec<f64> = counts.iter().map(|&c| c as f64 / total).collect();
    assert!(frac[0] > 0.5 && frac[0] < 0.95, "background fraction {frac:?}");
    assert!(frac[1] > 0.02 && frac[2] > 0.02, "both eddy classes present: {frac:?}");
    assert!(cyclonic_negative as f64 > 0.97 * counts[1] as f64, "cyclonic cores are negative");
    assert!(anticyclonic_positive as f64 > 0.97 * counts[2] as f64, "anticyclonic cores are positive");
}

#[test]
fn unknown_dataset_lists_the_known_ones() {
    let err = datasets::load_dataset("digit", None).expect_err("unknown");
    assert!(err.to_string().contains("dataset(\"digit\")") && err.cause.contains("mnist_5k"), "{err}");
}

#[test]
fn dataset_values_are_the_documented_ones() {
    let get = |name: &str| datasets::load_dataset(name, None).expect("loads");
    let digits = get("digits");
    assert_eq!(&f32s(&digits.x.value).as_slice().expect("contiguous")[..4], &[0.0, 0.0, 5.0, 13.0]);
    let labels = labels_of("digits");
    assert_eq!((labels[0], labels.iter().min(), labels.iter().max()), (0, Some(&0), Some(&9)));
    let elnino = get("elnino_nino12");
    assert_eq!(f32s(&elnino.x.value)[[0, 0]], 23.11, "January 1950");
    let storm = get("storm_jan1996");
    let nan_examples: Vec<usize> =
        (0..63).filter(|&i| f32s(&storm.x.value).index_axis(Axis(0), i).iter().any(|v| v.is_nan())).collect();
    assert_eq!(nan_examples, [17, 36, 37], "inputs with a missing frame");
    let pacific = get("pacific_sst_ndjfm");
    assert!(f32s(&pacific.x.value).iter().all(|v| v.is_finite()));
}

/// The labels of a classification data set.
fn labels_of(name: &str) -> Vec<i32> {
    match datasets::load_dataset(name, None).expect("loads").y.value {
        ArrayValue::I32(a) => a.iter().copied().collect(),
        ArrayValue::F32(_) => vec![],
    }
}

#[test]
fn advection_sequences_continue_the_pairs_with_a_flow_each() {
    let g = Generator::AdvectionSequence { n: 4, size: 16, steps: 2, input: 3, output: 2 };
    let raw = generate(&g, 7).expect("generates");
    assert_eq!(raw.variable_axis, 2, "time on axis 1, channels on axis 2");
    let (x, y) = (f32s(&raw.x.value), f32s(&raw.y.value));
    assert_eq!(x.shape(), [4, 3, 1, 16, 16]);
    assert_eq!(y.shape(), [4, 2, 1, 16, 16]);
    // The first frame is the pairs' initial field of the same example.
    let (pairs, _, _) = run(Generator::Advection { n: 4, size: 16, steps: 2 }, 7);
    assert_eq!(x.index_axis(Axis(1), 0), pairs.view());
    for i in 0..4 {
        let frames: Vec<f64> = (0..5)
            .map(|t| {
                let f = if t < 3 {
                    x.index_axis(Axis(0), i).index_axis(Axis(0), t).to_owned()
                } else {
                    y.index_axis(Axis(0), i).index_axis(Axis(0), t - 3).to_owned()
                };
                assert!(f.iter().all(|&v| v >= 0.0));
                f.iter().map(|&v| v as f64).sum()
            })
            .collect();
        for m in &frames[1..] {
            assert!(((m - frames[0]) / frames[0]).abs() < 1e-4, "mass is conserved: {frames:?}");
        }
    }
    // Every sequence moves along its own flow: the displacement of the
    // centre of mass over the sequence differs between examples.
    let centre = |f: ndarray::ArrayViewD<f32>| {
        let (mut s, mut w) = ((0.0, 0.0), 0.0);
        for ((_, _, i, j), &v) in f.into_dimensionality::<ndarray::Ix4>().expect("4 axes").indexed_iter() {
            s.0 += v as f64 * i as f64;
            s.1 += v as f64 * j as f64;
            w += v as f64;
        }
        (s.0 / w, s.1 / w)
    };
    let shifts: Vec<(f64, f64)> = (0..4)
        .map(|i| {
            let a = centre(x.index_axis(Axis(0), i).slice_axis(Axis(0), (0..1).into()));
            let b = centre(x.index_axis(Axis(0), i).slice_axis(Axis(0), (1..2).into()));
            (b.0 - a.0, b.1 - a.1)
        })
        .collect();
    assert!(
        shifts.windows(2).any(|w| (w[0].0 - w[1].0).abs() + (w[0].1 - w[1].1).abs() > 1e-3),
        "{shifts:?}"
    );
}

/// A time-ordered source of `n` steps: x_t = [t, 10 t] on a 1×4×6 field
/// per variable is too big to read; x_t = [t, 100 + t], y_t = [t + 1].
fn steps(n: usize) -> Raw {
    let x = ArrayD::from_shape_fn(vec![n, 2], |i| (i[0] + 100 * i[1]) as f32);
    let y = ArrayD::from_shape_fn(vec![n, 1], |i| (i[0] + 1) as f32);
    let part = |array: &str, value| Part::of_file(array, std::path::Path::new("s"), ArrayValue::F32(value));
    Raw {
        x: part("x", x),
        y: part("y", y),
        order: Order::Chronological,
        origin: "s".into(),
        variable_axis: 1,
        grid: None,
    }
}

#[test]
fn windows_cut_inputs_and_the_targets_after_them() {
    use nnc_compiler::config::Window;
    let w = Window { input: 3, output: 2, stride: 2, tile: None };
    assert_eq!(w.count(10), 4); // starts 0, 2, 4, 6 (the last needs steps 6 … 10 − 1)
    let raw = super::window::window(steps(10), &w, "w").expect("windows");
    assert_eq!((raw.order, raw.variable_axis), (Order::Chronological, 2));
    let (x, y) = (f32s(&raw.x.value), f32s(&raw.y.value));
    assert_eq!(x.shape(), [4, 3, 2]);
    assert_eq!(y.shape(), [4, 2, 1]);
    for k in 0..4 {
        let s = 2 * k;
        for t in 0..3 {
            assert_eq!(x[[k, t, 0]], (s + t) as f32);
            assert_eq!(x[[k, t, 1]], (100 + s + t) as f32);
        }
        // Targets y_{s+2}, y_{s+3}: the steps s + 3 and s + 4 after the input.
        assert_eq!(
            y.iter().skip(2 * k).take(2).copied().collect::<Vec<_>>(),
            [(s + 3) as f32, (s + 4) as f32]
        );
    }
    let one = Window { input: 10, output: 1, stride: 1, tile: None };
    assert_eq!(super::window::window(steps(10), &one, "w").expect("one window").x.value.shape(), [1, 10, 2]);
    let too_long = Window { input: 10, output: 2, stride: 1, tile: None };
    let e = super::window::window(steps(10), &too_long, "w").expect_err("too few steps");
    assert!(e.to_string().contains("fewer than one window needs (in + out − 1 = 11)"), "{e}");
    let mut iid = steps(10);
    iid.order = Order::Iid;
    let e = super::window::window(iid, &w, "w").expect_err("independent examples");
    assert!(e.to_string().contains("not time steps"), "{e}");
}

#[test]
fn windows_of_fields_cut_into_tiles() {
    use nnc_compiler::config::Window;
    // 5 steps of a 1-channel 5×7 field whose value encodes (t, row, column).
    let field = ArrayD::from_shape_fn(vec![5, 1, 5, 7], |i| (100 * i[0] + 10 * i[2] + i[3]) as f32);
    let next = ArrayD::from_shape_fn(vec![5, 1, 5, 7], |i| (100 * (i[0] + 1) + 10 * i[2] + i[3]) as f32);
    let part = |array: &str, value| Part::of_file(array, std::path::Path::new("f"), ArrayValue::F32(value));
    let raw = Raw {
        x: part("x", field),
        y: part("y", next),
        order: Order::Chronological,
        origin: "f".into(),
        variable_axis: 1,
        grid: None,
    };
    let w = Window { input: 2, output: 2, stride: 1, tile: Some(2) };
    let out = super::window::window(raw.clone(), &w, "w").expect("tiles");
    let (x, y) = (f32s(&out.x.value), f32s(&out.y.value));
    // 3 windows × (2 × 3) tiles, the remainder row and column left out.
    assert_eq!(x.shape(), [18, 2, 1, 2, 2]);
    assert_eq!(y.shape(), [18, 2, 1, 2, 2]);
    // Window 1, tile (1, 2): rows 2–3, columns 4–5; input steps 1, 2, targets 3, 4.
    let k = 6 + 3 + 2;
    assert_eq!(x[[k, 0, 0, 0, 0]], 100.0 + 24.0);
    assert_eq!(x[[k, 1, 0, 1, 1]], 200.0 + 35.0);
    assert_eq!(y[[k, 0, 0, 0, 1]], 300.0 + 25.0);
    assert_eq!(y[[k, 1, 0, 1, 0]], 400.0 + 34.0);
    // A grid follows the tiles: tile (1, 2) of every window starts at row 2, column 4.
    let gridded = Raw { grid: Some(super::Grid::regular(5, 7, (60.0, -1.0), (20.0, 2.0), 5)), ..raw.clone() };
    let grid = super::window::window(gridded, &w, "w").expect("tiles").grid.expect("a grid");
    assert_eq!(grid.origins.len(), 18);
    assert_eq!(grid.origins[k], (2, 4));
    let (lat, lon) = grid.field(k, 2, 2).expect("inside the grid");
    assert_eq!((lat[[0, 0]], lat[[1, 0]], lon[[0, 0]], lon[[0, 1]]), (58.0, 57.0, 28.0, 30.0));
    assert!(grid.field(k, 4, 4).is_none(), "a field beyond the grid");
    let big = Window { input: 2, output: 1, stride: 1, tile: Some(6) };
    let e = super::window::window(raw, &big, "w").expect_err("tile larger than the field");
    assert!(e.to_string().contains("smaller than one 6×6 tile"), "{e}");
}
