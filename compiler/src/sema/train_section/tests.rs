//! The `train` section's checker: the example programs of the language
//! reference, every accepted value, and every error with its message and
//! the span it points at.

use super::*;
use crate::config::datasets::DATASETS;
use crate::config::{Generator, Optimizer, SplitRule};
use crate::diag::render_plain;
use crate::sema::args::Default;
use crate::syntax::ast::BinOp;

/// Parses `src` (which must be free of syntax errors) and checks its `train` section.
fn run(src: &str) -> (Option<TrainConfig>, Vec<Diagnostic>) {
    let (file, errors) = crate::syntax::parse(src);
    assert!(errors.is_empty(), "syntax errors:\n{}", render_plain("t.nn", src, &errors));
    let def = file
        .items
        .iter()
        .find_map(|i| match i {
            ast::Item::Train(t) => Some(t),
            _ => None,
        })
        .expect("a train section");
    check_train(def, src)
}

fn section(body: &str) -> String {
    format!("train {{\n{body}\n}}\n")
}

/// The config of a section with `data = synthetic.sine` and `body`.
fn config(body: &str) -> TrainConfig {
    let src = section(&format!("data = synthetic.sine\n{body}"));
    let (config, diags) = run(&src);
    assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
    config.expect("a config")
}

/// The diagnostics of a section with `body` (and `data = synthetic.sine`
/// unless `body` sets `data`).
fn errors(body: &str) -> (String, Vec<Diagnostic>) {
    let data = if body.starts_with("data =") { "" } else { "data = synthetic.sine\n" };
    let src = section(&format!("{data}{body}"));
    let (config, diags) = run(&src);
    assert!(config.is_none(), "no config expected with errors");
    (src, diags)
}

fn text(src: &str, span: Span) -> &str {
    &src[span.range()]
}

/// The span of the first occurrence of `text` in `src`.
fn span_of(src: &str, text: &str) -> Span {
    let lo = src.find(text).unwrap_or_else(|| panic!("{text:?} not in {src:?}"));
    Span::new(lo, lo + text.len())
}

/// The diagnostic whose message contains `message`, with its primary
/// label on the text `primary`.
fn expect<'d>(src: &str, diags: &'d [Diagnostic], message: &str, primary: &str) -> &'d Diagnostic {
    let rendered = render_plain("t.nn", src, diags);
    let d = diags
        .iter()
        .find(|d| d.message.contains(message))
        .unwrap_or_else(|| panic!("no diagnostic containing {message:?}:\n{rendered}"));
    let label = d.labels.iter().find(|l| l.primary).expect("a primary label");
    assert_eq!(text(src, label.span), primary, "primary label of {message:?}:\n{rendered}");
    d
}

/// Asserts exactly one error, with `message` and its primary label on `primary`.
fn single(body: &str, message: &str, primary: &str) -> Diagnostic {
    let (src, diags) = errors(body);
    assert_eq!(diags.len(), 1, "{}", render_plain("t.nn", &src, &diags));
    assert_eq!(diags[0].message, message);
    expect(&src, &diags, message, primary).clone()
}

fn noted(d: &Diagnostic, note: &str) {
    assert!(d.notes.iter().any(|n| n.contains(note)), "no note {note:?}: {d:#?}");
}

fn secondary(src: &str, d: &Diagnostic, on: &str, message: &str) {
    assert!(
        d.labels.iter().any(|l| !l.primary && text(src, l.span) == on && l.message.contains(message)),
        "no secondary label {message:?} on {on:?}: {d:#?}"
    );
}

fn adam(lr: f64) -> Optimizer {
    Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
}

/// The optimiser of `optimizer = ...` in `src`: of the loss `loss`, every
/// parameter.
fn unnamed(src: &str, optimizer: Optimizer) -> Vec<LossOptimizer> {
    let span = span_of(src, "optimizer");
    vec![LossOptimizer {
        loss: "loss".into(),
        optimizer,
        params: ParamSet::All,
        span: Some(span),
        named: false,
    }]
}

// ---- the example programs of LANGUAGE.md ------------------------------

#[test]
fn example_sine() {
    let src = "train {\n  data = synthetic.sine(n: 2048, noise: 0.0)\n  batch = 64\n  epochs = 200\n  \
               optimizer = adam(lr: 3e-3)\n  seed = 1\n}\n";
    let (config, diags) = run(src);
    assert!(diags.is_empty(), "{diags:#?}");
    let expected = TrainConfig {
        data: DataSource::Synthetic { generator: Generator::Sine { n: 2048, noise: 0.0 } },
        data_span: span_of(src, "data = synthetic.sine(n: 2048, noise: 0.0)"),
        split: Split::by_source(0.8),
        normalize: Normalize::None,
        batch: 64,
        epochs: 200,
        optimizers: unnamed(src, adam(3e-3)),
        schedule: Schedule::Constant,
        clip_grad_norm: None,
        early_stop: None,
        metrics: vec![],
        seed: 1,
        checkpoint: None,
        missing: Missing::Error,
    };
    assert_eq!(config, Some(expected));
}

#[test]
fn example_digits() {
    let src = "train {\n  data = dataset(\"digits\")\n  normalize = per_variable\n  batch = 32\n  \
               epochs = 40\n  optimizer = sgd(lr: 0.05, momentum: 0.9)\n  metrics = [accuracy]\n}\n";
    let (config, diags) = run(src);
    assert!(diags.is_empty(), "{diags:#?}");
    let expected = TrainConfig {
        data: DataSource::Dataset { name: "digits".into(), task: None },
        data_span: span_of(src, "data = dataset(\"digits\")"),
        split: Split::by_source(0.8),
        normalize: Normalize::PerVariable,
        batch: 32,
        epochs: 40,
        optimizers: unnamed(
            src,
            Optimizer::Sgd { lr: 0.05, momentum: 0.9, nesterov: false, weight_decay: 0.0 },
        ),
        schedule: Schedule::Constant,
        clip_grad_norm: None,
        early_stop: None,
        metrics: vec![Metric::Accuracy],
        seed: 0,
        checkpoint: None,
        missing: Missing::Error,
    };
    assert_eq!(config, Some(expected));
}

#[test]
fn example_eddies() {
    let src = "train {\n  data = synthetic.eddies(n: 512, size: 32)\n  batch = 16\n  epochs = 5\n  \
               optimizer = adam(lr: 1e-3)\n  metrics = [dice, accuracy]\n}\n";
    let (config, diags) = run(src);
    assert!(diags.is_empty(), "{diags:#?}");
    let expected = TrainConfig {
        data: DataSource::Synthetic { generator: Generator::Eddies { n: 512, size: 32 } },
        data_span: span_of(src, "data = synthetic.eddies(n: 512, size: 32)"),
        split: Split::by_source(0.8),
        normalize: Normalize::None,
        batch: 16,
        epochs: 5,
        optimizers: unnamed(src, adam(1e-3)),
        schedule: Schedule::Constant,
        clip_grad_norm: None,
        early_stop: None,
        metrics: vec![Metric::Dice, Metric::Accuracy],
        seed: 0,
        checkpoint: None,
        missing: Missing::Error,
    };
    assert_eq!(config, Some(expected));
}

// ---- accepted values --------------------------------------------------

#[test]
fn defaults() {
    let c = config("");
    assert_eq!(c.data, DataSource::Synthetic { generator: Generator::Sine { n: 1024, noise: 0.0 } });
    assert_eq!((c.split, c.batch, c.epochs, c.seed), (Split::by_source(0.8), 32, 10, 0));
    assert_eq!(c.optimizers, vec![LossOptimizer::default_for_loss()]);
    assert_eq!(c.optimizers[0].optimizer, adam(1e-3));
    assert_eq!((c.schedule, c.normalize), (Schedule::Constant, Normalize::None));
    assert_eq!((c.clip_grad_norm, c.early_stop, c.checkpoint), (None, None, None));
    assert_eq!(c.missing, Missing::Error);
}

#[test]
fn missing_values_rule() {
    for (text, expected) in [
        ("missing = error", Missing::Error),
        ("missing = drop", Missing::Drop),
        ("missing = mask", Missing::Mask),
    ] {
        assert_eq!(config(text).missing, expected, "{text}");
    }
    let d = single("missing = skip", "unknown missing-value rule `skip`", "skip");
    noted(&d, "valid missing-value rules: `error`, `drop`");
    single(
        "missing = \"drop\"",
        "`missing` must be `error` or `drop`, found a string (\"drop\")",
        "\"drop\"",
    );
}

#[test]
fn split_rules() {
    assert_eq!(config("split = 0.7").split, Split { fraction: 0.7, rule: SplitRule::Source });
    assert_eq!(
        config("split = chronological(0.8)").split,
        Split { fraction: 0.8, rule: SplitRule::Chronological }
    );
    assert_eq!(
        config("split = chronological(fraction: 3 / 4)").split,
        Split { fraction: 0.75, rule: SplitRule::Chronological }
    );
    // Printed as written: configurations printed with `{:?}` show `0.8`.
    assert_eq!(format!("{:?}", Split::by_source(0.8)), "0.8");
    assert_eq!(Split::from(0.8), Split::by_source(0.8));
    assert_eq!(config("split = chronological(0.9)").split.to_string(), "chronological(0.9)");
}

#[test]
fn bad_split_rules() {
    single("split = chronological(1.5)", "`fraction` must be a number in (0, 1), found 1.5", "1.5");
    single("split = chronological(0)", "`fraction` must be a number in (0, 1), found 0", "0");
    let d = single(
        "split = chronological()",
        "`chronological` is missing its argument `fraction`",
        "chronological",
    );
    noted(&d, "help: write `chronological(FRACTION)` or `chronological(fraction: ...)`");
    single("split = chronological", "`chronological` is missing its argument `fraction`", "chronological");
    let d = single("split = random(0.8)", "unknown split rule `random`", "random");
    noted(&d, "valid split rules: `chronological`");
    noted(&d, "`split = 0.8` takes the source's own order");
    let d = single("split = chronologcal(0.8)", "unknown split rule `chronologcal`", "chronologcal");
    noted(&d, "help: did you mean `chronological`?");
    single("split = chronological(0.8, 0.1)", "too many positional arguments for `chronological`", "0.1");
    let (src, diags) = errors("split = chronological(size: 0.8)");
    expect(&src, &diags, "unknown argument `size` for `chronological`", "size");
    single(
        "split = chronological(\"0.8\")",
        "`fraction` must be a number in (0, 1), found a string (\"0.8\")",
        "\"0.8\"",
    );
    single("split = \"0.8\"", "`split` must be a number in (0, 1), found a string (\"0.8\")", "\"0.8\"");
}

#[test]
fn the_data_entry_keeps_its_span() {
    let src = section("batch = 4\n  data = csv(\"obs.csv\", x: [\"a\"], y: \"t\")  # the file\nepochs = 2");
    let (config, diags) = run(&src);
    assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
    let config = config.expect("a config");
    assert_eq!(text(&src, config.data_span), "data = csv(\"obs.csv\", x: [\"a\"], y: \"t\")");
}

#[test]
fn optimizers_with_defaults() {
    assert_eq!(config("optimizer = adam(3e-3)").optimizers[0].optimizer, adam(3e-3));
    assert_eq!(
        config("optimizer = adamw(1e-3)").optimizers[0].optimizer,
        Optimizer::AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    );
    assert_eq!(
        config("optimizer = rmsprop(lr: 0.01, momentum: 0.5)").optimizers[0].optimizer,
        Optimizer::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.5, weight_decay: 0.0 }
    );
    assert_eq!(
        config("optimizer = sgd(0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4)").optimizers[0]
            .optimizer,
        Optimizer::Sgd { lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 5e-4 }
    );
}

#[test]
fn constant_arithmetic_and_ints_as_floats() {
    let c = config("optimizer = adam(lr: 1e-3 * 2)\nseed = 2 + 3\nsplit = 1 - 0.25\nclip_grad_norm = 1");
    assert_eq!(c.optimizers[0].optimizer.lr(), 2e-3);
    assert_eq!((c.seed, c.split, c.clip_grad_norm), (5, Split::by_source(0.75), Some(1.0)));
    assert_eq!(
        config("metrics = [csi(-(1 + 1) / 4)]").metrics,
        vec![Metric::Csi { threshold: -0.5, per_lead: false }]
    );
    assert_eq!(config("batch = 128 / 2").batch, 64);
}

#[test]
fn schedules_metrics_and_early_stop() {
    assert_eq!(config("schedule = step(10)").schedule, Schedule::Step { every: 10, gamma: 0.1 });
    assert_eq!(config("schedule = step(5, 0.5)").schedule, Schedule::Step { every: 5, gamma: 0.5 });
    assert_eq!(
        config("schedule = cosine(warmup: 2)").schedule,
        Schedule::Cosine { warmup: 2, warmup_steps: 0 }
    );
    assert_eq!(config("schedule = cosine").schedule, Schedule::Cosine { warmup: 0, warmup_steps: 0 });
    assert_eq!(
        config("schedule = cosine(warmup_steps: 500)").schedule,
        Schedule::Cosine { warmup: 0, warmup_steps: 500 }
    );
    assert_eq!(config("schedule = exponential(0.95)").schedule, Schedule::Exponential { gamma: 0.95 });
    assert_eq!(
        config("metrics = [rmse, mae, csi(1.0), pod(threshold: 0.5), far(2), hss(0.1), dice]").metrics,
        vec![
            Metric::Rmse { per_variable: false, per_lead: false },
            Metric::Mae { per_variable: false, per_lead: false },
            Metric::Csi { threshold: 1.0, per_lead: false },
            Metric::Pod { threshold: 0.5, per_lead: false },
            Metric::Far { threshold: 2.0, per_lead: false },
            Metric::Hss { threshold: 0.1, per_lead: false },
            Metric::Dice
        ]
    );
    assert_eq!(config("metrics = []").metrics, vec![]);
    assert_eq!(
        config("metrics = [mass_error, mae(per_lead: true)]").metrics,
        vec![Metric::MassError { per_lead: false }, Metric::Mae { per_variable: false, per_lead: true }]
    );
    assert_eq!(
        config("metrics = [mass_error(per_lead: true)]").metrics,
        vec![Metric::MassError { per_lead: true }]
    );
    assert_eq!(
        config("metrics = [rmse(per_variable: true), mae(per_variable: false)]").metrics,
        vec![
            Metric::Rmse { per_variable: true, per_lead: false },
            Metric::Mae { per_variable: false, per_lead: false }
        ]
    );
}

#[test]
fn metrics_with_several_thresholds_and_per_lead() {
    let csi = |threshold, per_lead| Metric::Csi { threshold, per_lead };
    let labels = |body: &str| config(body).metrics.iter().map(Metric::label).collect::<Vec<_>>();
    assert_eq!(
        config("metrics = [csi([0.5, 2, 5, 10])]").metrics,
        vec![csi(0.5, false), csi(2.0, false), csi(5.0, false), csi(10.0, false)]
    );
    assert_eq!(labels("metrics = [csi([0.5, 2, 5, 10])]"), ["csi@0.5", "csi@2", "csi@5", "csi@10"]);
    assert_eq!(
        config("metrics = [csi(thresholds: [1, 1 + 1])]").metrics,
        vec![csi(1.0, false), csi(2.0, false)]
    );
    assert_eq!(config("metrics = [csi(threshold: [3])]").metrics, vec![csi(3.0, false)]);
    assert_eq!(
        config("metrics = [hss([0.5, 2], per_lead: true), pod(thresholds: [1], per_lead: true)]").metrics,
        vec![
            Metric::Hss { threshold: 0.5, per_lead: true },
            Metric::Hss { threshold: 2.0, per_lead: true },
            Metric::Pod { threshold: 1.0, per_lead: true }
        ]
    );
    assert_eq!(
        config("metrics = [rmse(per_lead: true), mae(per_variable: true, per_lead: true), far(0.5)]").metrics,
        vec![
            Metric::Rmse { per_variable: false, per_lead: true },
            Metric::Mae { per_variable: true, per_lead: true },
            Metric::Far { threshold: 0.5, per_lead: false }
        ]
    );
    // Different scores and different thresholds of one score may be listed together.
    assert_eq!(
        labels("metrics = [csi(0.5), csi([2, 5]), pod([0.5, 2])]"),
        ["csi@0.5", "csi@2", "csi@5", "pod@0.5", "pod@2"]
    );
}

#[test]
fn threshold_list_errors() {
    single("metrics = [csi([])]", "`threshold` must not be an empty list", "[]");
    single("metrics = [pod(thresholds: [])]", "`thresholds` must not be an empty list", "[]");
    single(
        "metrics = [csi([0.5, 1e300 * 1e300])]",
        "`threshold` must be finite (a number), found inf",
        "1e300 * 1e300",
    );
    single(
        "metrics = [far(thresholds: [1, \"x\"])]",
        "`thresholds` must be a number, found a string (\"x\")",
        "\"x\"",
    );
    single("metrics = [csi([0.5, 2, 0.5])]", "threshold 0.5 is listed twice in `csi`", "[0.5, 2, 0.5]");
    single(
        "metrics = [hss(thresholds: [2, 2.0])]",
        "threshold 2 is listed twice in `hss`",
        "thresholds: [2, 2.0]",
    );
    let d = single(
        "metrics = [csi(0.5, thresholds: [1, 2])]",
        "`csi` is given both `threshold` and `thresholds`",
        "thresholds: [1, 2]",
    );
    noted(&d, "help: list them once");
    let d = single(
        "metrics = [pod(per_lead: true)]",
        "`pod` is missing its argument `threshold`",
        "pod(per_lead: true)",
    );
    noted(&d, "pod([0.5, 2, 5])");
    single(
        "metrics = [csi(0.5, per_lead: 1)]",
        "`per_lead` must be `true` or `false`, found an integer (`1`)",
        "1",
    );
    let d = single(
        "metrics = [accuracy(per_lead: true)]",
        "unknown argument `per_lead` for `accuracy`",
        "per_lead",
    );
    noted(&d, "valid arguments: none");
    let d = single(
        "metrics = [mass_error(per_variable: true)]",
        "unknown argument `per_variable` for `mass_error`",
        "per_variable",
    );
    noted(&d, "per_lead");
    // The same threshold twice across entries, or with and without `per_lead`.
    let (src, diags) = errors("metrics = [csi([0.5, 2]), pod(2), csi(2, per_lead: true)]");
    assert_eq!(diags.len(), 1, "{}", render_plain("t.nn", &src, &diags));
    let d = expect(&src, &diags, "metric `csi@2` is listed twice", "csi(2, per_lead: true)");
    secondary(&src, d, "csi([0.5, 2])", "first listed here");
    noted(d, "`per_lead: true` add");
    let (src, diags) = errors("metrics = [rmse, rmse(per_lead: true)]");
    expect(&src, &diags, "metric `rmse` is listed twice", "rmse(per_lead: true)");
}

#[test]
fn data_sources() {
    let c = config("early_stop = patience(5, min_delta: 1e-4)\ncheckpoint = \"out/m.safetensors\"");
    assert_eq!(c.early_stop, Some(EarlyStop { patience: 5, min_delta: 1e-4 }));
    assert_eq!(c.checkpoint.as_deref(), Some("out/m.safetensors"));
    let data = |body: &str| {
        let src = section(body);
        let (config, diags) = run(&src);
        assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
        config.expect("a config").data
    };
    assert_eq!(
        data("data = csv(\"w.csv\", x: [\"a\", \"b\"], y: \"c\")"),
        DataSource::Csv { path: "w.csv".into(), x: vec!["a".into(), "b".into()], y: vec!["c".into()] }
    );
    assert_eq!(
        data("data = npy(x: \"x.npy\", y: \"y.npy\")"),
        DataSource::Npy { x: "x.npy".into(), y: "y.npy".into() }
    );
    assert_eq!(
        data("data = npz(\"d.npz\", x: \"inputs\", y: \"labels\")"),
        DataSource::Npz { path: "d.npz".into(), x: "inputs".into(), y: "labels".into() }
    );
    assert_eq!(
        data("data = synthetic.lorenz96(k: 8)"),
        DataSource::Synthetic { generator: Generator::Lorenz96 { n: 2048, k: 8, forcing: 8.0, dt: 0.05 } }
    );
    assert_eq!(
        data("data = synthetic.advection()"),
        DataSource::Synthetic { generator: Generator::Advection { n: 256, size: 32, steps: 4 } }
    );
    for d in DATASETS {
        assert_eq!(
            data(&format!("data = dataset(\"{}\")", d.name)),
            DataSource::Dataset { name: d.name.into(), task: None }
        );
    }
}

// ---- errors -----------------------------------------------------------

#[test]
fn unknown_key() {
    let (src, diags) = errors("bacth = 64");
    let d = expect(&src, &diags, "unknown key `bacth` in the `train` section", "bacth");
    noted(d, "valid keys: `data`, `split`, `normalize`, `batch`, `epochs`, `optimizer`");
    noted(d, "help: did you mean `batch`?");
}

#[test]
fn duplicate_key() {
    let (src, diags) = errors("batch = 16\nbatch = 32");
    let d = expect(&src, &diags, "`batch` is set twice", "batch");
    assert_eq!(d.labels[0].span.lo as usize, src.rfind("batch").unwrap());
    secondary(&src, d, "batch", "first set here");
    assert_eq!(diags.len(), 1);
}

#[test]
fn wrong_value_type() {
    single("batch = \"64\"", "`batch` must be a positive integer, found a string (\"64\")", "\"64\"");
    single("epochs = 2.5", "`epochs` must be a positive integer, found a float (`2.5`)", "2.5");
    single("split = true", "`split` must be a number in (0, 1), found a boolean (`true`)", "true");
    single(
        "optimizer = 3",
        "`optimizer` must be an optimizer such as `adam(lr: 1e-3)`, found an integer (`3`)",
        "3",
    );
    single(
        "optimizer = sgd(lr: 0.1, nesterov: 1)",
        "`nesterov` must be `true` or `false`, found an integer (`1`)",
        "1",
    );
    single("checkpoint = out", "`checkpoint` must be a string, found the name `out`", "out");
    single(
        "metrics = accuracy",
        "`metrics` must be a list of metrics such as `[rmse, mae]`, found the name `accuracy`",
        "accuracy",
    );
    single("seed = x |> relu", "`seed` must be a non-negative integer, found a pipeline", "x |> relu");
}

#[test]
fn string_expected_but_name_found() {
    let src = section("data = dataset(digits)");
    let (_, diags) = run(&src);
    let d = expect(&src, &diags, "`name` must be a string, found the name `digits`", "digits");
    noted(d, "help: strings are written in double quotes: \"digits\"");
}

#[test]
fn out_of_range_sizes() {
    single("batch = 0", "`batch` must be a positive integer, found 0", "0");
    single("batch = -3", "`batch` must be a positive integer, found -3", "-3");
    single("epochs = 0", "`epochs` must be a positive integer, found 0", "0");
    single("seed = -1", "`seed` must be a non-negative integer, found -1", "-1");
    single("batch = 100000000", "`batch` is too large: 100000000 (at most 16777216)", "100000000");
    single("early_stop = patience(0)", "`n` must be a positive integer, found 0", "0");
    single("schedule = step(0)", "`every` must be a positive integer, found 0", "0");
}

#[test]
fn out_of_range_fractions_and_rates() {
    single("split = 1.0", "`split` must be a number in (0, 1), found 1", "1.0");
    single("split = 0", "`split` must be a number in (0, 1), found 0", "0");
    single("optimizer = adam(lr: 0)", "`lr` must be a positive number, found 0", "0");
    single("optimizer = adam(-1e-3)", "`lr` must be a positive number, found -0.001", "-1e-3");
    single("optimizer = sgd(0.1, momentum: 1)", "`momentum` must be a number in [0, 1), found 1", "1");
    single("optimizer = adam(1e-3, beta2: 1.5)", "`beta2` must be a number in [0, 1), found 1.5", "1.5");
    single(
        "optimizer = adamw(1e-3, weight_decay: -0.1)",
        "`weight_decay` must be a non-negative number, found -0.1",
        "-0.1",
    );
    single("clip_grad_norm = 0", "`clip_grad_norm` must be a positive number, found 0", "0");
    single("data = synthetic.sine(noise: -1)", "`noise` must be a non-negative number, found -1", "-1");
    single("data = synthetic.lorenz96(k: 3)", "`k` must be an integer of at least 4, found 3", "3");
    single(
        "metrics = [csi(1e300 * 1e300)]",
        "`threshold` must be finite (a number), found inf",
        "1e300 * 1e300",
    );
}

#[test]
fn unknown_optimizer() {
    let (src, diags) = errors("optimizer = adm(lr: 1e-3)");
    let d = expect(&src, &diags, "unknown optimizer `adm`", "adm");
    noted(d, "valid optimizers: `sgd`, `adam`, `adamw`, `rmsprop`");
    noted(d, "help: did you mean `adam`?");
}

#[test]
fn unknown_optimizer_argument() {
    let (src, diags) = errors("optimizer = adam(lr: 1e-3, beta: 0.9)");
    let d = expect(&src, &diags, "unknown argument `beta` for `adam`", "beta");
    noted(d, "valid arguments: `lr`, `beta1`, `beta2`, `eps`, `weight_decay`");
    noted(d, "help: did you mean `beta1`?");
}

#[test]
fn missing_lr() {
    let d = single("optimizer = adam(beta1: 0.5)", "`adam` is missing its argument `lr`", "adam");
    noted(&d, "help: write `adam(LR)` or `adam(lr: ...)`");
    single("optimizer = sgd", "`sgd` is missing its argument `lr`", "sgd");
}

#[test]
fn duplicate_argument() {
    let (src, diags) = errors("optimizer = adam(1e-3, lr: 2e-3)");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = expect(&src, &diags, "argument `lr` of `adam` is given twice", "lr: 2e-3");
    secondary(&src, d, "1e-3", "first given here");
}

#[test]
fn positional_after_keyword() {
    // The parser rejects this order, so the AST is built from the
    // well-ordered call with its arguments swapped.
    let src = section("data = synthetic.sine\noptimizer = sgd(0.1, momentum: 0.9)");
    let (file, _) = crate::syntax::parse(&src);
    let Some(ast::Item::Train(mut def)) = file.items.into_iter().next() else { panic!("a train section") };
    let ExprKind::Call { args, .. } = &mut def.entries[1].value.kind else { panic!("a call") };
    args.swap(0, 1);
    let (config, diags) = check_train(&def, &src);
    assert!(config.is_none());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = expect(&src, &diags, "positional argument after a keyword argument in `sgd`", "0.1");
    secondary(&src, d, "momentum: 0.9", "keyword argument before it");
}

#[test]
fn too_many_positional() {
    let d = single("optimizer = adam(1e-3, 0.9)", "too many positional arguments for `adam`", "0.9");
    noted(&d, "`adam` takes 1 positional argument (`lr`)");
    noted(&d, "give the others by name: `beta1`");
    let d = single("data = synthetic.sine(100)", "too many positional arguments for `synthetic.sine`", "100");
    noted(&d, "takes no positional arguments");
    single("normalize = none(1)", "too many positional arguments for `none`", "1");
}

#[test]
fn unknown_schedule_metric_normalize() {
    let (src, diags) = errors("schedule = cosin(warmup: 2)\nmetrics = [rmes, csi(1)]\nnormalize = per_var");
    assert_eq!(diags.len(), 3, "{}", render_plain("t.nn", &src, &diags));
    noted(expect(&src, &diags, "unknown schedule `cosin`", "cosin"), "did you mean `cosine`?");
    noted(expect(&src, &diags, "unknown metric `rmes`", "rmes"), "did you mean `rmse`?");
    let d = expect(&src, &diags, "unknown normalization `per_var`", "per_var");
    noted(d, "valid normalizations: `none`, `per_variable`");
}

#[test]
fn missing_threshold() {
    single("metrics = [csi]", "`csi` is missing its argument `threshold`", "csi");
}

#[test]
fn missing_data() {
    let src = "# config\ntrain {\n  batch = 8\n}\n";
    let (config, diags) = run(src);
    assert!(config.is_none());
    assert_eq!(diags.len(), 1);
    let d = expect(src, &diags, "the `train` section has no `data`", "train");
    noted(d, "help: add e.g. `data = dataset(\"digits\")`");
}

#[test]
fn unknown_sources() {
    let src = section("data = synthetic.sin(n: 10)");
    let (_, diags) = run(&src);
    let d = expect(&src, &diags, "unknown synthetic generator `sin`", "sin");
    noted(d, "valid synthetic generators: `sine`, `lorenz96`, `advection`, `eddies`");
    noted(d, "did you mean `sine`?");

    let src = section("data = dataset(\"digit\")");
    let (_, diags) = run(&src);
    let d = expect(&src, &diags, "unknown dataset `digit`", "\"digit\"");
    noted(d, "did you mean `digits`?");
    noted(d, "`mnist_5k`");

    let src = section("data = dataset(\"storm_jan1996\", task: \"increments\")");
    let (_, diags) = run(&src);
    let d = expect(&src, &diags, "dataset `storm_jan1996` has no task `increments`", "task: \"increments\"");
    noted(d, "the tasks of `storm_jan1996`: `default`, `increment`, `sequence`");
    noted(d, "did you mean `increment`?");
    let (config, diags) = run(&section("data = dataset(\"storm_jan1996\", task: \"sequence\")"));
    assert!(diags.is_empty(), "{diags:?}");
    let data = config.map(|c| c.data);
    assert_eq!(
        data,
        Some(DataSource::Dataset { name: "storm_jan1996".into(), task: Some("sequence".into()) })
    );

    let src = section("data = datset(\"digits\")");
    let (_, diags) = run(&src);
    noted(expect(&src, &diags, "unknown data source `datset`", "datset"), "did you mean `dataset`?");

    let src = section("data = 42");
    let (_, diags) = run(&src);
    expect(&src, &diags, "`data` must be a data source", "42");
    assert_eq!(diags.len(), 1, "`data` was given, so it is not also reported missing");
}

#[test]
fn unknown_generator_argument() {
    let src = section("data = synthetic.sine(samples: 10)");
    let (_, diags) = run(&src);
    assert_eq!(diags.len(), 1);
    let d = expect(&src, &diags, "unknown argument `samples` for `synthetic.sine`", "samples");
    noted(d, "valid arguments: `n`, `noise`");
}

#[test]
fn constant_expression_errors() {
    single("batch = 64 / 0", "division by zero in constant expression", "0");
    single(
        "seed = 9223372036854775807 + 1",
        "integer overflow in constant expression",
        "9223372036854775807 + 1",
    );
    single("split = 0.5 + x", "`split` must be a number in (0, 1), found an expression", "0.5 + x");
}

#[test]
fn cross_argument_and_list_rules() {
    single(
        "optimizer = sgd(0.1, nesterov: true)",
        "Nesterov momentum needs `momentum` > 0",
        "nesterov: true",
    );
    let (src, diags) = errors("metrics = [rmse, mae, rmse]");
    let d = expect(&src, &diags, "metric `rmse` is listed twice", "rmse");
    assert_eq!(d.labels[0].span.lo as usize, src.rfind("rmse").unwrap());
    single("checkpoint = \"\"", "`checkpoint` must not be empty", "\"\"");
    let src = section("data = csv(\"a.csv\", x: [], y: 3)");
    let (_, diags) = run(&src);
    assert_eq!(diags.len(), 2, "{diags:#?}");
    expect(&src, &diags, "`x` must not be an empty list", "[]");
    expect(&src, &diags, "`y` must be a string or a list of strings, found an integer (`3`)", "3");
}

#[test]
fn all_errors_in_one_pass() {
    let src = section(
        "batch = 0\nepochs = \"ten\"\nbacth = 3\noptimizer = adam(lr: 0, bta1: 0.9)\n\
         schedule = stp(10)\nmetrics = [rmse, csi]\nsplit = 2\nsplit = 0.5",
    );
    let (config, diags) = run(&src);
    assert!(config.is_none());
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`batch` must be a positive integer, found 0",
            "`epochs` must be a positive integer, found a string (\"ten\")",
            "unknown key `bacth` in the `train` section",
            "`lr` must be a positive number, found 0",
            "unknown argument `bta1` for `adam`",
            "unknown schedule `stp`",
            "`csi` is missing its argument `threshold`",
            "`split` must be a number in (0, 1), found 2",
            "`split` is set twice",
            "the `train` section has no `data`",
        ],
        "{}",
        render_plain("t.nn", &src, &diags)
    );
}

#[test]
fn hand_built_ast() {
    let span = Span::new(0, 0);
    let ident = |name: &str| ast::Ident { name: name.into(), span };
    let expr = |kind| Expr { kind, span };
    let path = |names: &[&str]| ast::Path { segments: names.iter().map(|n| ident(n)).collect(), span };
    let entry = |key: &str, value| ast::TrainEntry { key: ident(key), name: None, value, span };
    let def = ast::TrainDef {
        entries: vec![
            entry("data", expr(ExprKind::Path(path(&["synthetic", "eddies"])))),
            entry(
                "optimizer",
                expr(ExprKind::Call {
                    callee: path(&["adam"]),
                    args: vec![ast::Arg {
                        name: None,
                        value: expr(ExprKind::Neg(Box::new(expr(ExprKind::Neg(Box::new(expr(
                            ExprKind::Float(0.01),
                        ))))))),
                        span,
                    }],
                }),
            ),
        ],
        span,
    };
    let (config, diags) = check_train(&def, "");
    assert!(diags.is_empty(), "{diags:#?}");
    let config = config.expect("a config");
    assert_eq!(config.optimizers[0].optimizer, adam(0.01));
    assert_eq!(config.data, DataSource::Synthetic { generator: Generator::Eddies { n: 512, size: 32 } });
}

#[test]
fn deep_arithmetic_is_rejected_not_overflowed() {
    let mut e = Expr { kind: ExprKind::Int(1), span: Span::new(0, 1) };
    for _ in 0..10_000 {
        e = Expr {
            kind: ExprKind::Binary {
                op: BinOp::Add,
                lhs: Box::new(e),
                rhs: Box::new(Expr { kind: ExprKind::Int(1), span: Span::new(0, 1) }),
            },
            span: Span::new(0, 1),
        };
    }
    let def = ast::TrainDef {
        entries: vec![ast::TrainEntry {
            key: ast::Ident { name: "seed".into(), span: Span::new(0, 1) },
            name: None,
            value: e,
            span: Span::new(0, 1),
        }],
        span: Span::new(0, 1),
    };
    let (_, diags) = check_train(&def, "s");
    assert!(diags.iter().any(|d| d.message.contains("too deeply nested")), "{diags:#?}");
    // Dropping a 10 000-deep tree recursively is fine on the test thread's stack.
}

/// Every table row builds from its defaults (plus a sample value for each
/// required parameter): the rows name their parameters correctly.
#[test]
fn tables_are_consistent() {
    fn sample(p: &Param) -> Arg {
        match (p.default, p.ty) {
            (Default::Int(n), _) => Arg::Int(n),
            (Default::Float(x), _) => Arg::Float(x),
            (Default::Bool(b), _) => Arg::Bool(b),
            (Default::Str(t), _) => Arg::Str(t.to_string()),
            // The first of `threshold` and `thresholds`.
            (Default::None, Ty::Floats) if p.positional => Arg::Floats(vec![0.5]),
            (Default::None, _) => Arg::None,
            (_, Ty::Int) => Arg::Int(p.range.min_int().max(1)),
            (_, Ty::Float) => Arg::Float(0.5),
            (_, Ty::Bool) => Arg::Bool(false),
            (_, Ty::Str) => Arg::Str("digits".into()),
            (_, Ty::Strs) => Arg::Strs(vec!["a".into()]),
            (_, ty) => panic!("the train section has no parameters of type {ty:?}"),
        }
    }
    fn rows<T>(table: &Table<T>) {
        for row in table.rows {
            let values = row.params.iter().map(sample).collect();
            assert!((row.build)(&Args { params: row.params, values }).is_ok(), "{}", row.name);
            assert!(!row.signature(table.prefix).is_empty());
        }
    }
    rows(&OPTIMIZERS);
    rows(&SCHEDULES);
    rows(&METRICS);
    rows(&NORMALIZATIONS);
    rows(&EARLY_STOPS);
    rows(&SPLITS);
    rows(&SOURCES);
    rows(&MISSINGS);
    rows(&GENERATORS);
    for row in GENERATORS.rows {
        let values = row.params.iter().map(sample).collect();
        match (row.build)(&Args { params: row.params, values }) {
            Ok(DataSource::Synthetic { generator }) => assert_eq!(generator.name(), row.name),
            _ => panic!("{} builds no generator", row.name),
        }
    }
    assert_eq!(
        OPTIMIZERS.rows[1].signature(""),
        "adam(lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, params)"
    );
    assert_eq!(GENERATORS.rows[0].signature("synthetic."), "synthetic.sine(n: 1024, noise: 0.0)");
    assert_eq!(KEYS.len(), 13);
}

proptest::proptest! {
    /// Any token soup inside a `train` section is checked without panicking.
    #[test]
    fn never_panics(tokens in proptest::collection::vec(proptest::sample::select(vec![
        "data", "=", "batch", "optimizer", "adam", "(", ")", "[", "]", ",", ":", "lr", "1e-3", "-", "*",
        "/", "0", "3", "2.5", "\"x\"", "true", "synthetic", ".", "sine", "n", "metrics", "csi", "split",
        "dataset", "\"digits\"", "sgd", "momentum", "seed", "+", "9223372036854775807", "1e999", "x",
        "params", "gen",
    ]), 0..40)) {
        let src = format!("train {{\n{}\n}}\n", tokens.join(" "));
        let (file, _) = crate::syntax::parse(&src);
        for item in &file.items {
            if let ast::Item::Train(def) = item {
                let _ = check_train(def, &src);
            }
        }
    }
}

// ---- several losses: named optimizers and `params` ----------------------

#[test]
fn named_optimizers_in_the_order_written() {
    let src = section(
        "data = synthetic.sine\n\
         optimizer disc = adam(lr: 2e-4, beta1: 0.5, params: D)\n\
         optimizer gen = sgd(0.1, params: [G, H])",
    );
    let (config, diags) = run(&src);
    assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
    let config = config.expect("a config");
    // The layer `name`, `offset` bytes into the first `text`.
    let layer = |name: &str, text: &str, offset: usize| {
        let lo = src.find(text).expect("in the source") + offset;
        LayerRef { name: name.into(), span: Span::new(lo, lo + name.len()) }
    };
    let expected = vec![
        LossOptimizer {
            loss: "disc".into(),
            optimizer: Optimizer::Adam { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
            params: ParamSet::Layers(vec![layer("D", "params: D", 8)]),
            span: Some(span_of(&src, "disc")),
            named: true,
        },
        LossOptimizer {
            loss: "gen".into(),
            optimizer: Optimizer::Sgd { lr: 0.1, momentum: 0.0, nesterov: false, weight_decay: 0.0 },
            params: ParamSet::Layers(vec![layer("G", "[G, H]", 1), layer("H", "[G, H]", 4)]),
            span: Some(span_of(&src, "gen")),
            named: true,
        },
    ];
    assert_eq!(config.optimizers, expected);
    assert_eq!(config.optimizer_of("gen").map(|o| o.optimizer.name()), Some("sgd"));
    assert_eq!(config.optimizers[1].params.to_string(), "[G, H]");
    assert!(config.optimizers[1].updates("G.dense_1.weight"));
    assert!(!config.optimizers[1].updates("Gx.dense_1.weight"), "a layer owns `NAME.*` only");
    assert!(!config.optimizers[1].updates("D.dense_1.weight"));
}

#[test]
fn params_params_is_every_parameter() {
    let c = config("optimizer = adam(1e-3, params: params)");
    assert_eq!(c.optimizers[0].params, ParamSet::All);
    assert_eq!(c.optimizers[0].params.to_string(), "params");
    assert!(c.optimizers[0].updates("anything.weight"));
}

#[test]
fn two_optimizers_of_one_loss() {
    let (src, diags) = errors("optimizer gen = adam(1e-3)\noptimizer gen = sgd(0.1)");
    assert_eq!(diags.len(), 1, "{}", render_plain("t.nn", &src, &diags));
    let d = expect(&src, &diags, "the loss `gen` has two optimizers", "gen");
    let second = Span::new(src.rfind("gen").unwrap(), src.rfind("gen").unwrap() + 3);
    assert_eq!(d.labels.iter().find(|l| l.primary).map(|l| l.span), Some(second));
    // `optimizer = ...` is the optimizer of `loss`.
    let (src, diags) = errors("optimizer = adam(1e-3)\noptimizer loss = sgd(0.1)");
    let d = expect(&src, &diags, "the loss `loss` has two optimizers", "loss");
    secondary(&src, d, "optimizer", "the first");
    // Twice without a name is a key set twice.
    let (src, diags) = errors("optimizer = adam(1e-3)\noptimizer = sgd(0.1)");
    expect(&src, &diags, "`optimizer` is set twice", "optimizer");
}

/// The grammar gives only `optimizer` a name; a syntax tree built otherwise
/// is checked all the same.
#[test]
fn only_optimizer_takes_a_name() {
    let src = "data = synthetic.sine batch b = 4";
    let at = |text: &str| span_of(src, text);
    let ident = |text: &str| ast::Ident { name: text.into(), span: at(text) };
    let path = |text: &str| Expr {
        kind: ExprKind::Path(ast::Path { segments: text.split('.').map(ident).collect(), span: at(text) }),
        span: at(text),
    };
    let def = ast::TrainDef {
        entries: vec![
            ast::TrainEntry {
                key: ident("data"),
                name: None,
                value: path("synthetic.sine"),
                span: at("data = synthetic.sine"),
            },
            ast::TrainEntry {
                key: ident("batch"),
                name: Some(ast::Ident {
                    name: "b".into(),
                    span: Span::new(src.find(" b ").unwrap() + 1, src.find(" b ").unwrap() + 2),
                }),
                value: Expr { kind: ExprKind::Int(4), span: at("4") },
                span: at("batch b = 4"),
            },
        ],
        span: at(src),
    };
    let (config, diags) = check_train(&def, src);
    assert!(config.is_none());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = expect(src, &diags, "`batch` takes no name", "b");
    assert_eq!(d.labels[0].span.lo as usize, src.find(" b ").unwrap() + 1);
    noted(d, "help: write `batch = ...`");
    noted(d, "`optimizer NAME = ...` is the optimizer of the loss `NAME`");
}

#[test]
fn params_must_name_layers() {
    let d = single(
        "optimizer = adam(1e-3, params: \"D\")",
        "`params` must be a layer (`params: D`), a list of layers (`params: [G, D]`) or `params` (every \
         parameter), found a string (\"D\")",
        "\"D\"",
    );
    assert!(d.notes.is_empty());
    single("optimizer = adam(1e-3, params: [])", "`params` must not be an empty list", "[]");
    let (src, diags) = errors("optimizer = adam(1e-3, params: [D, G, D])");
    let d = expect(&src, &diags, "layer `D` is listed twice in `params`", "D");
    secondary(&src, d, "D", "first listed here");
    single(
        "optimizer = adam(1e-3, params: [params, D])",
        "`params` (every parameter) cannot be listed with layers",
        "params",
    );
    single(
        "optimizer = adam(1e-3, params: D.conv)",
        "`params` must be a layer (`params: D`), a list of layers (`params: [G, D]`) or `params` (every \
         parameter), found the name `D.conv`",
        "D.conv",
    );
    let (src, diags) = errors("optimizer = adam(1e-3, param: D)");
    let d = expect(&src, &diags, "unknown argument `param` for `adam`", "param");
    noted(d, "help: did you mean `params`?");
}

// ---- distort(SOURCE, ...) ---------------------------------------------

#[test]
fn distort_wraps_a_source_of_images() {
    let src = section("data = distort(dataset(\"mnist_5k\"), rotate: 45, shift: 0.25)");
    let (config, diags) = run(&src);
    assert!(diags.is_empty(), "{}", render_plain("t.nn", &src, &diags));
    let data = config.expect("a config").data;
    let want = DataSource::Distort {
        source: Box::new(DataSource::Dataset { name: "mnist_5k".into(), task: None }),
        distortion: crate::config::Distortion { rotate: 45.0, shift: 0.25 },
    };
    assert_eq!(data, want);
    // Both ranges default to no motion.
    let src = section("data = distort(dataset(\"digits\"))");
    let (config, _) = run(&src);
    let Some(DataSource::Distort { distortion, .. }) = config.map(|c| c.data) else { panic!("distort") };
    assert_eq!((distortion.rotate, distortion.shift), (0.0, 0.0));
}

#[test]
fn distort_errors_point_at_the_argument() {
    let d = single(
        "data = distort(dataset(\"mnist_5k\"), rotate: 200)",
        "`rotate` is the largest angle in degrees, at most 180; got 200",
        "rotate: 200",
    );
    assert!(d.labels[0].message.contains("half a turn"));
    let d = single(
        "data = distort(dataset(\"mnist_5k\"), shift: 1.5)",
        "`shift` is a fraction of the image's size, at most 1; got 1.5",
        "shift: 1.5",
    );
    noted(&d, "`shift: 0.25`");
    single(
        "data = distort(dataset(\"mnist_5k\"), shift: -0.1)",
        "`shift` must be a non-negative number, found -0.1",
        "-0.1",
    );
    let d = single(
        "data = distort(rotate: 10)",
        "`distort` needs the source of the images to distort as its first argument",
        "distort",
    );
    noted(&d, "distort(dataset(\"mnist_5k\"), rotate: 45, shift: 0.25)");
    single(
        "data = distort(dataset(\"mnist_5k\"), angle: 10)",
        "unknown argument `angle` for `distort`",
        "angle",
    );
    // The source inside is checked as a source of its own.
    single("data = distort(dataset(\"mnist\"), rotate: 10)", "unknown dataset `mnist`", "\"mnist\"");
}
