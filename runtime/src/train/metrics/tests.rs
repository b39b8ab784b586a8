//! Hand-computed cases for every metric, batching invariance and rejected
//! batches.

use super::*;
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use nnc_compiler::config::Metric::{self, *};

const RMSE: Metric = Metric::Rmse { per_variable: false };
const MAE: Metric = Metric::Mae { per_variable: false };

fn f(shape: &[usize], data: &[f32]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("test array shape")
}

fn i(shape: &[usize], data: &[i32]) -> ArrayD<i32> {
    ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("test array shape")
}

enum Target {
    F(ArrayD<f32>),
    I(ArrayD<i32>),
}

impl Target {
    fn view(&self) -> TargetView<'_> {
        match self {
            Target::F(t) => TargetView::F32(t.view()),
            Target::I(t) => TargetView::I32(t.view()),
        }
    }
}

/// A batch and what to expect of it: a description, the metrics, the
/// prediction, the target and the expected values (or error words).
type Case<M, W> = (&'static str, M, ArrayD<f32>, Target, Vec<W>);

fn run(metrics: &[Metric], pred: &ArrayD<f32>, target: &Target) -> Vec<(String, f64)> {
    let mut m = Metrics::new(metrics);
    m.update(pred.view(), target.view()).expect("batch accepted");
    m.finish()
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn labels() {
    let cases = [
        (RMSE, "rmse"),
        (MAE, "mae"),
        (Accuracy, "accuracy"),
        (Dice, "dice"),
        (Csi(0.5), "csi@0.5"),
        (Pod(2.0), "pod@2"),
        (Far(1e-4), "far@0.0001"),
        (Hss(-0.5), "hss@-0.5"),
    ];
    for (m, want) in cases {
        assert_eq!(label(&m), want);
    }
}

#[test]
fn hand_computed_values() {
    let nan = f64::NAN;
    // (what, metrics, prediction, target, expected values)
    let cases: Vec<Case<Vec<Metric>, f64>> = vec![
        (
            "errors 0,1,2,3",
            vec![RMSE, MAE],
            f(&[2, 2], &[1., 2., 3., 4.]),
            Target::F(f(&[2, 2], &[1., 1., 1., 1.])),
            vec![3.5f64.sqrt(), 1.5],
        ),
        (
            "negative errors",
            vec![RMSE, MAE],
            f(&[2], &[-1., 0.]),
            Target::F(f(&[2], &[1., 0.])),
            vec![2.0f64.sqrt(), 1.0],
        ),
        (
            "accuracy, i32 labels, tie takes the lowest class",
            vec![Accuracy],
            f(&[3, 2], &[0.1, 0.9, 0.8, 0.2, 0.5, 0.5]),
            Target::I(i(&[3], &[1, 1, 0])),
            vec![2.0 / 3.0],
        ),
        (
            "accuracy, one-hot f32 targets",
            vec![Accuracy],
            f(&[2, 3], &[1., 2., 3., 3., 2., 1.]),
            Target::F(f(&[2, 3], &[0., 0., 1., 0., 1., 0.])),
            vec![0.5],
        ),
        (
            "accuracy, single-channel probabilities [N]",
            vec![Accuracy],
            f(&[4], &[0.2, 0.7, 0.5, 0.4]),
            Target::F(f(&[4], &[0., 1., 0., 0.])),
            vec![0.75],
        ),
        (
            "accuracy, [N, 1] against i32 [N]",
            vec![Accuracy],
            f(&[2, 1], &[0.6, 0.3]),
            Target::I(i(&[2], &[1, 1])),
            vec![0.5],
        ),
        (
            "accuracy per pixel, scores [1, 2, 2] against labels [1, 2]",
            vec![Accuracy],
            f(&[1, 2, 2], &[0.9, 0.1, 0.1, 0.9]),
            Target::I(i(&[1, 2], &[0, 0])),
            vec![0.5],
        ),
        (
            "argmax: the first NaN wins",
            vec![Accuracy],
            f(&[2, 3], &[1., f32::NAN, f32::NAN, f32::NAN, 5., 6.]),
            Target::I(i(&[2], &[1, 0])),
            vec![1.0],
        ),
        (
            "contingency a=2 b=1 c=2 d=3 at t=2",
            vec![Csi(2.0), Pod(2.0), Far(2.0), Hss(2.0)],
            f(&[8], &[0., 1., 2., 3., 0.5, 2., 0., 0.]),
            Target::F(f(&[8], &[0., 2., 0., 3., 2., 2., 0., 0.])),
            vec![0.4, 0.5, 1.0 / 3.0, 0.25],
        ),
        (
            "hss below zero: a=0 b=1 c=1 d=0",
            vec![Hss(1.0)],
            f(&[2], &[1., 0.]),
            Target::F(f(&[2], &[0., 1.])),
            vec![-1.0],
        ),
        (
            "no events at all",
            vec![Csi(1.0), Pod(1.0), Far(1.0), Hss(1.0)],
            f(&[3], &[0., 0.5, 0.9]),
            Target::F(f(&[3], &[0., 0., 0.])),
            vec![nan, nan, nan, nan],
        ),
        (
            "thresholds on an i32 target",
            vec![Csi(1.0), Far(1.0)],
            f(&[3], &[0.5, 1.5, 1.0]),
            Target::I(i(&[3], &[0, 1, 0])),
            vec![0.5, 0.5],
        ),
        (
            "a NaN prediction is never an event",
            vec![Pod(1.0)],
            f(&[2], &[f32::NAN, 2.]),
            Target::F(f(&[2], &[1., 1.])),
            vec![0.5],
        ),
        (
            "dice over three classes: 1, 2/3, 2/3",
            vec![Dice],
            f(&[1, 3, 4], &[9., 0., 0., 0., 0., 9., 9., 0., 0., 0., 0., 9.]),
            Target::I(i(&[1, 4], &[0, 1, 2, 2])),
            vec![7.0 / 9.0],
        ),
        (
            "dice skips classes absent from both masks",
            vec![Dice],
            f(&[2, 3], &[5., 1., 1., 5., 1., 1.]),
            Target::F(f(&[2, 3], &[1., 0., 0., 1., 0., 0.])),
            vec![1.0],
        ),
        (
            "dice, single channel: the foreground",
            vec![Dice, Accuracy],
            f(&[1, 1, 4], &[0.9, 0.1, 0.6, 0.2]),
            Target::F(f(&[1, 1, 4], &[1., 0., 0., 1.])),
            vec![0.5, 0.5],
        ),
        (
            "dice, single channel against i32 labels without channel axis",
            vec![Dice],
            f(&[2, 1], &[0.9, 0.7]),
            Target::I(i(&[2], &[1, 0])),
            vec![2.0 / 3.0],
        ),
        (
            "dice, no foreground anywhere",
            vec![Dice],
            f(&[2, 1, 2], &[0.1, 0.2, 0.3, 0.4]),
            Target::F(f(&[2, 1, 2], &[0., 0., 0., 0.])),
            vec![nan],
        ),
        (
            "an empty batch",
            vec![RMSE, Accuracy, Csi(1.0), Dice],
            f(&[0], &[]),
            Target::F(f(&[0], &[])),
            vec![nan, nan, nan, nan],
        ),
    ];
    for (what, metrics, pred, target, want) in cases {
        let got = run(&metrics, &pred, &target);
        assert_eq!(got.len(), want.len(), "{what}");
        for ((name, v), (m, w)) in got.iter().zip(metrics.iter().zip(want)) {
            assert_eq!(name, &label(m), "{what}");
            assert!(same(*v, w), "{what}: {name} = {v}, expected {w}");
        }
    }
}

#[test]
fn nothing_seen_is_nan() {
    let all = [RMSE, MAE, Accuracy, Csi(1.0), Pod(1.0), Far(1.0), Hss(1.0), Dice];
    for (name, v) in Metrics::new(&all).finish() {
        assert!(v.is_nan(), "{name} = {v}");
    }
}

/// A deterministic pseudo-random sequence in [0, 1).
fn sequence(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

#[test]
fn batching_does_not_change_results() {
    let all = [RMSE, MAE, Accuracy, Csi(0.3), Pod(0.5), Far(0.7), Hss(0.4), Dice];
    let n = 37;
    let pred = f(&[n, 3, 2], &sequence(n * 6, 1));
    let target = f(&[n, 3, 2], &sequence(n * 6, 2));
    let labels = i(&[n, 2], &sequence(n * 2, 3).iter().map(|x| (x * 3.0) as i32).collect::<Vec<_>>());
    let by = |size: usize, i32_labels: bool| {
        let metrics: &[Metric] = if i32_labels { &[Accuracy, Dice] } else { &all };
        let mut m = Metrics::new(metrics);
        for start in (0..n).step_by(size) {
            let s = Slice::from(start..(start + size).min(n));
            let p = pred.slice_axis(Axis(0), s);
            let t = if i32_labels {
                TargetView::I32(labels.slice_axis(Axis(0), s))
            } else {
                TargetView::F32(target.slice_axis(Axis(0), s))
            };
            m.update(p, t).expect("batch accepted");
        }
        m.finish()
    };
    for i32_labels in [false, true] {
        let whole = by(n, i32_labels);
        for size in [1, 4, 5, 36] {
            for ((name, a), (_, b)) in by(size, i32_labels).iter().zip(&whole) {
                assert!(!b.is_nan(), "{name} is defined on this data");
                if name == "rmse" || name == "mae" {
                    assert!((a - b).abs() <= 1e-12 * b.abs(), "{name}: {a} vs {b} in batches of {size}");
                } else {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name}: {a} vs {b} in batches of {size}");
                }
            }
        }
        // The same batches twice give the same bits.
        assert_eq!(format!("{:?}", by(5, i32_labels)), format!("{:?}", by(5, i32_labels)));
    }
}

#[test]
fn rejected_batches() {
    // (what, metric, prediction, target, words the error must contain)
    let cases: Vec<Case<Metric, &str>> = vec![
        (
            "shape mismatch",
            RMSE,
            f(&[2, 2], &[0.; 4]),
            Target::F(f(&[2, 3], &[0.; 6])),
            vec!["rmse", "[2, 2]", "[2, 3]"],
        ),
        ("i32 target", MAE, f(&[2], &[0.; 2]), Target::I(i(&[2], &[0; 2])), vec!["mae", "f32", "i32[2]"]),
        (
            "example counts differ",
            Csi(0.5),
            f(&[2], &[0.; 2]),
            Target::F(f(&[3], &[0.; 3])),
            vec!["csi@0.5", "examples", "[2]", "[3]"],
        ),
        (
            "scalar prediction",
            Pod(1.0),
            f(&[], &[0.]),
            Target::F(f(&[], &[0.])),
            vec!["pod@1", "example axis"],
        ),
        (
            "label out of range",
            Accuracy,
            f(&[2, 3], &[0.; 6]),
            Target::I(i(&[2], &[1, 3])),
            vec!["accuracy", "label 3", "0..3"],
        ),
        (
            "binary label not 0/1",
            Dice,
            f(&[2], &[0.; 2]),
            Target::I(i(&[2], &[1, 2])),
            vec!["dice", "label 2"],
        ),
        (
            "f32 class indices",
            Accuracy,
            f(&[2, 3], &[0.; 6]),
            Target::F(f(&[2], &[0.; 2])),
            vec!["accuracy", "f32[2, 3]", "f32[2]"],
        ),
        (
            "i32 labels with the channel axis of several classes",
            Dice,
            f(&[2, 3], &[0.; 6]),
            Target::I(i(&[2, 3], &[0; 6])),
            vec!["dice", "i32[2, 3]"],
        ),
    ];
    for (what, metric, pred, target, words) in cases {
        let mut m = Metrics::new(&[metric]);
        let err = m.update(pred.view(), target.view()).expect_err(what);
        for w in words {
            assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
        }
    }
}

#[test]
fn a_rejected_batch_changes_nothing() {
    let mut m = Metrics::new(&[RMSE, Dice, Accuracy]);
    let pred = f(&[2, 2], &[1., 0., 0., 1.]);
    let good = f(&[2, 2], &[1., 0., 1., 0.]);
    m.update(pred.view(), TargetView::F32(good.view())).expect("batch accepted");
    let before = format!("{:?}", m.finish());
    // rmse would accept this batch; dice rejects it (3 classes after 2).
    let wide = f(&[1, 3], &[0., 1., 2.]);
    let err = m.update(wide.view(), TargetView::F32(wide.view())).expect_err("class count changed");
    assert!(err.contains("dice") && err.contains("3 classes"), "{err}");
    assert_eq!(format!("{:?}", m.finish()), before);
}

#[test]
fn one_hot_targets_are_read_by_their_argmax() {
    // Two examples, three classes, two positions each; the target is one-hot
    // over axis 1 and the prediction gets 3 of the 4 positions right.
    let target = f(&[2, 3, 2], &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    let pred = f(&[2, 3, 2], &[0.8, 0.2, 0.1, 0.1, 0.1, 0.7, 0.1, 0.3, 0.2, 0.6, 0.7, 0.1]);
    let got = run(&[Accuracy, Dice], &pred, &Target::F(target));
    // Classes (pred, target) per position:
    // example 0: position 0 → (0, 0), position 1 → (2, 2);
    // example 1: position 0 → (2, 1), position 1 → (1, 1).
    assert!(same(got[0].1, 0.75), "accuracy {}", got[0].1);
    // Dice per class: 0 → 2·1/(1+1) = 1; 1 → 2·1/(1+2) = 2/3; 2 → 2·1/(2+1) = 2/3.
    assert!(same(got[1].1, (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0), "dice {}", got[1].1);
}

/// NaN targets are missing: left out of the errors and the contingency
/// table. Per-variable errors use axis 1 and the variables' names.
#[test]
fn missing_targets_and_per_variable_errors() {
    // [2 examples, 2 variables, 2 positions]
    let pred = f(&[2, 2, 2], &[1.0, 2.0, 10.0, 10.0, 3.0, 4.0, 10.0, 10.0]);
    let target = f(&[2, 2, 2], &[0.0, f32::NAN, 12.0, 10.0, 3.0, 6.0, f32::NAN, 13.0]);
    let mut m =
        Metrics::new(&[Metric::Rmse { per_variable: true }, Metric::Mae { per_variable: true }, Csi(5.0)]);
    m.name_variables(&["a".to_string(), "b".to_string()]);
    m.update(pred.view(), TargetView::F32(target.view())).expect("valid batch");
    let got: Vec<(String, f64)> = m.finish();
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["rmse", "rmse.a", "rmse.b", "mae", "mae.a", "mae.b", "csi@5"]);
    // Errors: a: 1, 0, 2 (one missing); b: -2, 0, -3 (one missing).
    let close = |v: f64, want: f64| assert!((v - want).abs() < 1e-12, "{v} vs {want}");
    close(got[0].1, ((1.0 + 0.0 + 4.0 + 4.0 + 0.0 + 9.0) / 6.0f64).sqrt());
    close(got[1].1, (5.0f64 / 3.0).sqrt());
    close(got[2].1, (13.0f64 / 3.0).sqrt());
    close(got[3].1, 8.0 / 6.0);
    close(got[4].1, 1.0);
    close(got[5].1, 5.0 / 3.0);
    // Events ≥ 5 among the 6 present targets: hits 3 (targets 12, 10, 13 predicted 10), one miss
    // (target 6 predicted 4); the prediction 10 at the missing target is not a false alarm.
    close(got[6].1, 0.75);
}
