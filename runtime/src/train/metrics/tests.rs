//! Hand-computed cases for every metric, batching invariance and rejected
//! batches.

use super::*;
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use nnc_compiler::config::Metric::{self, *};

const RMSE: Metric = Metric::Rmse { per_variable: false, per_lead: false };
const MAE: Metric = Metric::Mae { per_variable: false, per_lead: false };
const MASS: Metric = Metric::MassError { per_lead: false };

fn csi(threshold: f64) -> Metric {
    Csi { threshold, per_lead: false }
}

fn pod(threshold: f64) -> Metric {
    Pod { threshold, per_lead: false }
}

fn far(threshold: f64) -> Metric {
    Far { threshold, per_lead: false }
}

fn hss(threshold: f64) -> Metric {
    Hss { threshold, per_lead: false }
}

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
        (MASS, "mass_error"),
        (MassError { per_lead: true }, "mass_error"),
        (csi(0.5), "csi@0.5"),
        (pod(2.0), "pod@2"),
        (far(1e-4), "far@0.0001"),
        (hss(-0.5), "hss@-0.5"),
        (Csi { threshold: 2.0, per_lead: true }, "csi@2"),
        (Rmse { per_variable: true, per_lead: true }, "rmse"),
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
            vec![csi(2.0), pod(2.0), far(2.0), hss(2.0)],
            f(&[8], &[0., 1., 2., 3., 0.5, 2., 0., 0.]),
            Target::F(f(&[8], &[0., 2., 0., 3., 2., 2., 0., 0.])),
            vec![0.4, 0.5, 1.0 / 3.0, 0.25],
        ),
        (
            "hss below zero: a=0 b=1 c=1 d=0",
            vec![hss(1.0)],
            f(&[2], &[1., 0.]),
            Target::F(f(&[2], &[0., 1.])),
            vec![-1.0],
        ),
        (
            "no events at all",
            vec![csi(1.0), pod(1.0), far(1.0), hss(1.0)],
            f(&[3], &[0., 0.5, 0.9]),
            Target::F(f(&[3], &[0., 0., 0.])),
            vec![nan, nan, nan, nan],
        ),
        (
            "thresholds on an i32 target",
            vec![csi(1.0), far(1.0)],
            f(&[3], &[0.5, 1.5, 1.0]),
            Target::I(i(&[3], &[0, 1, 0])),
            vec![0.5, 0.5],
        ),
        (
            "a NaN prediction is never an event",
            vec![pod(1.0)],
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
            "mass_error: totals 3, 6, 0, 2 against 4, 7, 1, 2",
            vec![MASS],
            f(&[2, 2, 2], &[1., 2., 3., 3., 0., 0., 1., 1.]),
            Target::F(f(&[2, 2, 2], &[2., 2., 3., 4., 1., 0., 1., 1.])),
            vec![3.0 / 14.0],
        ),
        (
            "mass_error leaves a missing target out of both totals",
            vec![MASS],
            f(&[1, 1, 2], &[5., 1.]),
            Target::F(f(&[1, 1, 2], &[f32::NAN, 2.])),
            vec![0.5],
        ),
        (
            "mass_error of a field of zero mass",
            vec![MASS],
            f(&[1, 1, 2], &[1., -1.]),
            Target::F(f(&[1, 1, 2], &[0., 0.])),
            vec![nan],
        ),
        (
            "an empty batch",
            vec![RMSE, Accuracy, csi(1.0), Dice],
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
    let all = [RMSE, MAE, Accuracy, csi(1.0), pod(1.0), far(1.0), hss(1.0), Dice, MASS];
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
    let all = [RMSE, MAE, Accuracy, csi(0.3), pod(0.5), far(0.7), hss(0.4), Dice, MASS];
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
                if name == "rmse" || name == "mae" || name == "mass_error" {
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
            csi(0.5),
            f(&[2], &[0.; 2]),
            Target::F(f(&[3], &[0.; 3])),
            vec!["csi@0.5", "examples", "[2]", "[3]"],
        ),
        (
            "scalar prediction",
            pod(1.0),
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
    let mut m = Metrics::new(&[
        Metric::Rmse { per_variable: true, per_lead: false },
        Metric::Mae { per_variable: true, per_lead: false },
        csi(5.0),
    ]);
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

/// A sequence target `[N, T, C, H, W]` = `[2, 2, 1, 1, 2]`: per-lead
/// contingency scores and errors from hand-counted tables.
#[test]
fn per_lead_values() {
    let lead = |m: Metric| match m {
        Csi { threshold, .. } => Csi { threshold, per_lead: true },
        Pod { threshold, .. } => Pod { threshold, per_lead: true },
        Far { threshold, .. } => Far { threshold, per_lead: true },
        Hss { threshold, .. } => Hss { threshold, per_lead: true },
        Rmse { per_variable, .. } => Rmse { per_variable, per_lead: true },
        Mae { per_variable, .. } => Mae { per_variable, per_lead: true },
        MassError { .. } => MassError { per_lead: true },
        other => other,
    };
    let metrics = [
        lead(csi(1.0)),
        lead(pod(1.0)),
        lead(far(1.0)),
        lead(hss(1.0)),
        csi(3.0),
        lead(RMSE),
        lead(MAE),
        lead(MASS),
    ];
    // Row-major order: example, lead, then the two pixels.
    let shape = [2, 2, 1, 1, 2];
    let pred = f(&shape, &[2., 0., 2., 2., 0., 2., 0., 0.]);
    let target = f(&shape, &[2., 2., 0., 2., 0., 2., 2., 2.]);
    // Lead 1 (elements 0, 1, 4, 5): hit, miss, correct negative, hit → a=2 b=0 c=1 d=1.
    // Lead 2 (elements 2, 3, 6, 7): false alarm, hit, miss, miss   → a=1 b=1 c=2 d=0.
    // Overall a=3 b=1 c=3 d=1. Errors: lead 1 0, -2, 0, 0; lead 2 2, 0, -2, -2.
    let got = run(&metrics, &pred, &Target::F(target.clone()));
    let expected = [
        ("csi@1", 3.0 / 7.0),
        ("csi@1.lead1", 2.0 / 3.0),
        ("csi@1.lead2", 1.0 / 4.0),
        ("pod@1", 0.5),
        ("pod@1.lead1", 2.0 / 3.0),
        ("pod@1.lead2", 1.0 / 3.0),
        ("far@1", 0.25),
        ("far@1.lead1", 0.0),
        ("far@1.lead2", 0.5),
        ("hss@1", 0.0),
        ("hss@1.lead1", 0.5),
        ("hss@1.lead2", -0.5),
        ("csi@3", f64::NAN),
        ("rmse", 2.0f64.sqrt()),
        ("rmse.lead1", 1.0),
        ("rmse.lead2", 3.0f64.sqrt()),
        ("mae", 1.0),
        ("mae.lead1", 0.5),
        ("mae.lead2", 1.5),
        // Totals: pred 2, 4 (example 0), 2, 0 (example 1); target 4, 2, 2, 4.
        ("mass_error", 8.0 / 12.0),
        ("mass_error.lead1", 2.0 / 6.0),
        ("mass_error.lead2", 6.0 / 6.0),
    ];
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, expected.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    for ((name, v), (_, w)) in got.iter().zip(expected) {
        assert!(same(*v, w), "{name} = {v}, expected {w}");
    }
    // One example per batch: the same counts, the same bits.
    let mut m = Metrics::new(&metrics);
    for e in 0..2 {
        let s = Slice::from(e..e + 1);
        m.update(pred.slice_axis(Axis(0), s), TargetView::F32(target.slice_axis(Axis(0), s))).expect("batch");
    }
    for ((name, a), (_, b)) in m.finish().iter().zip(&got) {
        if name.starts_with("csi")
            || name.starts_with("pod")
            || name.starts_with("far")
            || name.starts_with("hss")
        {
            assert_eq!(a.to_bits(), b.to_bits(), "{name}: {a} vs {b}");
        } else {
            assert!(same(*a, *b), "{name}: {a} vs {b}");
        }
    }
}

/// Overall, per-variable and per-lead values come in that order; the
/// labels of a list of thresholds are one per threshold.
#[test]
fn per_lead_labels() {
    let both = Rmse { per_variable: true, per_lead: true };
    let thresholds = [0.5, 2.0, 5.0, 10.0].map(|threshold| Csi { threshold, per_lead: true });
    let mut metrics = vec![both];
    metrics.extend(thresholds);
    let pred = f(&[1, 2, 3], &[0., 1., 2., 3., 4., 5.]);
    let got = run(&metrics, &pred, &Target::F(pred.clone()));
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "rmse",
            "rmse.0",
            "rmse.1",
            "rmse.lead1",
            "rmse.lead2",
            "csi@0.5",
            "csi@0.5.lead1",
            "csi@0.5.lead2",
            "csi@2",
            "csi@2.lead1",
            "csi@2.lead2",
            "csi@5",
            "csi@5.lead1",
            "csi@5.lead2",
            "csi@10",
            "csi@10.lead1",
            "csi@10.lead2",
        ]
    );
    // A perfect prediction: errors 0, CSI 1 where there are events, NaN
    // where none (lead 1 holds 0, 1, 2 and lead 2 holds 3, 4, 5).
    let values: Vec<f64> = got.iter().map(|(_, v)| *v).collect();
    assert_eq!(values[..5], [0.0; 5]);
    assert_eq!(values[5..12], [1.0; 7]);
    assert!(values[12].is_nan() && values[13] == 1.0, "{got:?}");
    assert!(values[14..].iter().all(|v| v.is_nan()), "{got:?}");
}

#[test]
fn per_lead_rejections() {
    let per_lead = Csi { threshold: 1.0, per_lead: true };
    let mut m = Metrics::new(&[per_lead]);
    let flat = f(&[2], &[0.; 2]);
    let err = m.update(flat.view(), TargetView::F32(flat.view())).expect_err("no lead axis");
    for w in ["csi@1", "per_lead", "at least 2 axes", "f32[2]"] {
        assert!(err.contains(w), "{err:?} lacks {w:?}");
    }
    let two = f(&[1, 2, 1], &[0.; 2]);
    m.update(two.view(), TargetView::F32(two.view())).expect("two leads");
    let three = f(&[1, 3, 1], &[0.; 3]);
    let err = m.update(three.view(), TargetView::F32(three.view())).expect_err("lead count changed");
    assert!(err.contains("3 lead times in this batch, 2 in earlier ones"), "{err}");
    let mut m = Metrics::new(&[Mae { per_variable: false, per_lead: true }]);
    let err = m.update(flat.view(), TargetView::F32(flat.view())).expect_err("no lead axis");
    assert!(err.contains("mae") && err.contains("lead-time axis"), "{err}");
    let mut m = Metrics::new(&[MASS]);
    let rows = f(&[2, 3], &[0.; 6]);
    let err = m.update(rows.view(), TargetView::F32(rows.view())).expect_err("no field axes");
    assert!(err.contains("mass_error") && err.contains("at least 3 axes"), "{err}");
}
