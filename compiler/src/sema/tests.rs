//! Tests of semantic analysis, from source text: the acceptance programs and
//! the model zoo analyse and verify; parameter names, summary rows and the
//! forward pass are as documented; and bad programs give the documented
//! diagnostics, with their labels on the right source text.

use std::collections::HashMap;

use crate::diag::{render_plain, Diagnostic};
use crate::ir::interp::{example_inputs, run, Tensor};
use crate::ir::{Graph, InputKind, Op, OutputKind};

use super::{analyze, Module};

pub(super) const SINE: &str = "\
model sine {
  input  x: f32[B, 1]
  target y: f32[B, 1]

  h = x |> dense(64) |> tanh
  h = h |> dense(64) |> tanh
  out = h |> dense(1)

  loss = mse(out, y)
}

train {
  data = synthetic.sine(n: 2048, noise: 0.0)
  batch = 64
  epochs = 200
  optimizer = adam(lr: 3e-3)
  seed = 1
}
";

pub(super) const DIGITS: &str = "\
model digits {
  input  x: f32[B, 64]
  target y: i32[B]

  h = x |> dense(128) |> relu |> dropout(0.1)
  z = h |> dense(10)

  loss = cross_entropy(z, y) + 1e-4 * l2(weights)
}

train {
  data = dataset(\"digits\")
  normalize = per_variable
  batch = 32
  epochs = 40
  optimizer = sgd(lr: 0.05, momentum: 0.9)
  metrics = [accuracy]
}
";

pub(super) const RESUNET: &str = "\
block residual(x, c: int) {
  h = x |> conv2d(c, kernel: 3, pad: same) |> batchnorm |> relu
  h = h |> conv2d(c, kernel: 3, pad: same) |> batchnorm
  return relu(h + x)
}

block down(x, c: int) {
  return x |> conv2d(c, kernel: 3, pad: same) |> relu |> residual(c)
}

model eddies {
  input  ssh:  f32[B, 1, 32, 32]
  target mask: f32[B, 3, 32, 32]

  e1 = ssh |> down(16)
  e2 = e1 |> maxpool2d(2) |> down(32)
  d1 = e2 |> upsample(2) |> concat(e1, axis: 1) |> down(16)
  p  = d1 |> conv2d(3, kernel: 1) |> softmax(axis: 1)

  loss = dice(p, mask)
}

train {
  data = synthetic.eddies(n: 512, size: 32)
  batch = 16
  epochs = 5
  optimizer = adam(lr: 1e-3)
  metrics = [dice, accuracy]
}
";

// ---------------------------------------------------------------- helpers

pub(super) fn analyse(src: &str) -> Result<Module, Vec<Diagnostic>> {
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "syntax errors: {}", render_plain("t.nn", src, &syntax));
    analyze(&file, src)
}

/// The zoo's models: their paths and sources.
pub(super) fn zoo() -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).expect("models/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "nn") {
            let src = std::fs::read_to_string(&path).expect("readable");
            out.push((path, src));
        }
    }
    out
}

/// Analyses a file of the zoo, reading its constants next to it.
pub(super) fn analyse_file(path: &std::path::Path, src: &str) -> (Option<Module>, Vec<Diagnostic>) {
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "syntax errors: {}", render_plain("t.nn", src, &syntax));
    let dir = path.parent().expect("a directory").to_path_buf();
    super::analyze_all_with(&file, src, &super::test_files::NpyFiles(dir))
}

pub(super) fn ok(src: &str) -> Module {
    match analyse(src) {
        Ok(m) => m,
        Err(d) => panic!("unexpected errors:\n{}", render_plain("t.nn", src, &d)),
    }
}

pub(super) fn errors(src: &str) -> Vec<Diagnostic> {
    match analyse(src) {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(d) => d,
    }
}

pub(super) fn text(src: &str, span: crate::diag::Span) -> &str {
    src.get(span.range()).unwrap_or("<bad span>")
}

/// The one diagnostic whose message contains `message`; its primary label
/// must cover `primary` exactly (when given).
pub(super) fn expect<'d>(
    src: &str,
    diags: &'d [Diagnostic],
    message: &str,
    primary: Option<&str>,
) -> &'d Diagnostic {
    let rendered = || render_plain("t.nn", src, diags);
    let d = diags
        .iter()
        .find(|d| d.message.contains(message))
        .unwrap_or_else(|| panic!("no diagnostic containing {message:?}:\n{}", rendered()));
    if let Some(p) = primary {
        let label = d.labels.iter().find(|l| l.primary).expect("a primary label");
        assert_eq!(text(src, label.span), p, "primary label of {message:?}:\n{}", rendered());
    }
    d
}

/// `d` has a secondary label on `on` whose message contains `message`.
pub(super) fn secondary(src: &str, d: &Diagnostic, on: &str, message: &str) {
    assert!(
        d.labels.iter().any(|l| !l.primary && text(src, l.span) == on && l.message.contains(message)),
        "no secondary label {message:?} on {on:?}: {d:#?}"
    );
}

pub(super) fn noted(d: &Diagnostic, note: &str) {
    assert!(d.notes.iter().any(|n| n.contains(note)), "no note {note:?}: {d:#?}");
}

/// A model with input `x: f32[B, 4]` (and an image `img: f32[B, 1, 8, 8]`,
/// target `y: f32[B, 1]`) around `body`.
pub(super) fn model(body: &str) -> String {
    format!(
        "model m {{\n  input x: f32[B, 4]\n  input img: f32[B, 1, 8, 8]\n  target y: f32[B, 1]\n{body}\n}}\n"
    )
}

pub(super) fn params(g: &Graph) -> Vec<(String, String)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name, kind: InputKind::Param { .. } } => Some((name.clone(), n.ty.to_string())),
            _ => None,
        })
        .collect()
}

pub(super) fn param_type(g: &Graph, name: &str) -> Option<String> {
    params(g).into_iter().find(|(n, _)| n == name).map(|(_, t)| t)
}

// ---------------------------------------------------------- valid programs

#[test]
fn acceptance_examples_analyse_and_verify() {
    for src in [SINE, DIGITS, RESUNET] {
        let m = ok(src);
        for g in [&m.train_graph, &m.infer_graph] {
            crate::ir::verify::verify(g).unwrap_or_else(|e| panic!("{e:?}"));
            assert!(g.find_output("loss").is_some());
        }
    }
}

#[test]
fn model_zoo_analyses() {
    let mut count = 0;
    for (path, src) in zoo() {
        let (m, diags) = analyse_file(&path, &src);
        let m = m.unwrap_or_else(|| panic!("{}", render_plain(&path.display().to_string(), &src, &diags)));
        crate::ir::verify::verify(&m.train_graph).expect("train graph verifies");
        crate::ir::verify::verify(&m.infer_graph).expect("infer graph verifies");
        count += 1;
    }
    assert!(count >= 5);
}

#[test]
fn sine_parameter_names() {
    let m = ok(SINE);
    let names: Vec<String> = params(&m.train_graph).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "h.dense_1.weight",
            "h.dense_1.bias",
            "h.dense_2.weight",
            "h.dense_2.bias",
            "out.dense_1.weight",
            "out.dense_1.bias"
        ]
    );
    assert_eq!(param_type(&m.train_graph, "h.dense_2.weight").as_deref(), Some("f32[64, 64]"));
    assert_eq!(params(&m.train_graph), params(&m.infer_graph));
    let prediction =
        m.train_graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("prediction");
    assert_eq!(prediction.name, "out");
}

#[test]
fn resunet_parameter_names_and_block_instances() {
    let m = ok(RESUNET);
    let g = &m.train_graph;
    assert_eq!(param_type(g, "e1.conv2d_1.weight").as_deref(), Some("f32[16, 1, 3, 3]"));
    // `down` then `residual` (two convolutions) flatten into the scope `e1`.
    assert_eq!(param_type(g, "e1.conv2d_2.weight").as_deref(), Some("f32[16, 16, 3, 3]"));
    assert_eq!(param_type(g, "e1.conv2d_3.weight").as_deref(), Some("f32[16, 16, 3, 3]"));
    assert_eq!(param_type(g, "e1.batchnorm_2.weight").as_deref(), Some("f32[16]"));
    // Each call of `down` owns its parameters.
    assert_eq!(param_type(g, "e2.conv2d_1.weight").as_deref(), Some("f32[32, 16, 3, 3]"));
    assert_eq!(param_type(g, "d1.conv2d_1.weight").as_deref(), Some("f32[16, 48, 3, 3]"));
    assert_eq!(param_type(g, "p.conv2d_1.weight").as_deref(), Some("f32[3, 16, 1, 1]"));
    assert_eq!(param_type(g, "e1.conv2d_4.weight"), None);
    // Batchnorm running statistics are state, updated in training only.
    let states = g.outputs.iter().filter(|o| o.kind == OutputKind::State).count();
    assert_eq!(states, 12, "6 batchnorms × (mean, var)");
    assert!(g.find_output("e1.batchnorm_1.running_mean").is_some());
    assert!(m.infer_graph.outputs.iter().all(|o| o.kind != OutputKind::State));
}

#[test]
fn rebinding_shadows_and_continues_counters() {
    let m = ok(&model("  h = x |> dense(3)\n  h = h |> dense(2)\n  z = h |> relu"));
    let names: Vec<String> = params(&m.train_graph).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["h.dense_1.weight", "h.dense_1.bias", "h.dense_2.weight", "h.dense_2.bias"]);
    assert_eq!(param_type(&m.train_graph, "h.dense_2.weight").as_deref(), Some("f32[2, 3]"));
    let p = m.train_graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("prediction");
    assert_eq!((p.name.as_str(), m.train_graph.ty(p.value).to_string()), ("z", "f32[B, 2]".to_string()));
}

#[test]
fn block_constants_and_defaults() {
    let src = "block wide(x, c: int = 3, scale: float = 0.5) { h = x |> dense(c * 2) |> dense(c / 3 + 1)\n return h * scale }\n"
        .to_string()
        + &model("  a = x |> wide\n  b = x |> wide(c: 6)");
    let m = ok(&src);
    let g = &m.train_graph;
    assert_eq!(param_type(g, "a.dense_1.weight").as_deref(), Some("f32[6, 4]"));
    assert_eq!(param_type(g, "a.dense_2.weight").as_deref(), Some("f32[2, 6]"));
    assert_eq!(param_type(g, "b.dense_1.weight").as_deref(), Some("f32[12, 4]"));
    assert_eq!(param_type(g, "b.dense_2.weight").as_deref(), Some("f32[3, 12]"));
}

#[test]
fn sine_summary_rows() {
    let m = ok(SINE);
    let rows: Vec<(&str, &str, u64)> =
        m.layers.iter().map(|l| (l.name.as_str(), l.kind.as_str(), l.params)).collect();
    assert_eq!(
        rows,
        [
            ("h.dense_1", "dense", 128),
            ("h.tanh_1", "tanh", 0),
            ("h.dense_2", "dense", 4160),
            ("h.tanh_2", "tanh", 0),
            ("out.dense_1", "dense", 65),
            ("loss.mse_1", "mse", 0),
        ]
    );
    // One sample: the matrix product is 2·in·out; bias and activation are one
    // operation per element.
    let flops: Vec<u64> = m.layers.iter().map(|l| l.flops).collect();
    assert!((128..=128 + 2 * 64).contains(&flops[0]), "{flops:?}");
    assert_eq!(flops[1], 64);
    assert!((2 * 64 * 64..=2 * 64 * 64 + 2 * 64).contains(&flops[2]), "{flops:?}");
    assert_eq!(m.layers[4].output.to_string(), "f32[B, 1]");
    assert_eq!(m.layers[5].output.to_string(), "f32[]");
    assert_eq!(m.layers[0].loc.line, 5);
}

#[test]
fn sine_train_graph_runs_in_the_interpreter() {
    let m = ok(SINE);
    let dims = HashMap::from([("B".to_string(), 4)]);
    let inputs = example_inputs::<f64>(&m.train_graph, &dims, 7).expect("inputs");
    let outputs = run(&m.train_graph, &inputs).expect("runs");
    let (_, loss) = outputs.iter().find(|(n, _)| n == "loss").expect("loss output");
    let Tensor::Float(a) = loss else { panic!("float loss") };
    assert_eq!(a.shape(), &[] as &[usize]);
    assert!(a.iter().all(|v| v.is_finite()));
}

#[test]
fn digits_dropout_uses_the_rng_key_in_training_only() {
    let m = ok(DIGITS);
    let has_key = |g: &Graph| {
        g.inputs().any(|(_, n)| matches!(&n.op, Op::Input { name, kind: InputKind::Key } if name == "rng"))
    };
    assert!(has_key(&m.train_graph));
    assert!(!has_key(&m.infer_graph));
}

#[test]
fn node_locations_point_at_the_call() {
    let m = ok(SINE);
    let g = &m.train_graph;
    let (_, x) = g.inputs().next().expect("an input");
    assert_eq!(x.loc.line, 2);
    assert!(g.nodes.iter().filter(|n| !matches!(n.op, Op::Input { .. })).all(|n| !n.loc.is_none()));
    // Every located node has the byte span its location was made from.
    for n in g.nodes.iter().filter(|n| !n.loc.is_none()) {
        let span = n.span.unwrap_or_else(|| panic!("{:?} has no span", n.op));
        assert_eq!(crate::ir::Loc::from_span(SINE, span.lo as usize, span.hi as usize), n.loc);
    }
}

// -------------------------------------------------------------- diagnostics

#[test]
fn unknown_function_suggests() {
    let src = model("  h = x |> dens(4)");
    let d = errors(&src);
    noted(expect(&src, &d, "unknown function `dens`", Some("dens")), "did you mean `dense`?");
}

#[test]
fn unknown_keyword_lists_valid_ones() {
    let src = model("  h = x |> dense(4, bais: false)");
    let d = errors(&src);
    let e = expect(&src, &d, "`dense` has no argument `bais`", Some("bais"));
    noted(e, "valid arguments: `x`, `units`, `bias`");
    noted(e, "did you mean `bias`?");
}

#[test]
fn missing_argument() {
    let src = model("  h = x |> dense");
    let d = errors(&src);
    noted(
        expect(&src, &d, "missing argument `units` in call to `dense`", Some("dense")),
        "dense(x, units, bias: true, init: uniform)",
    );
}

#[test]
fn too_many_positional_arguments() {
    let src = model("  h = x |> dense(4, true, zeros, 5)");
    let d = errors(&src);
    expect(&src, &d, "`dense` takes at most 4 positional arguments but 5 were given", Some("5"));
}

#[test]
fn duplicate_argument() {
    let src = model("  h = x |> dense(4, units: 5)");
    let d = errors(&src);
    let e = expect(&src, &d, "argument `units` is given more than once", Some("units"));
    secondary(&src, e, "4", "first given here");
}

#[test]
fn wrong_argument_type() {
    let src = model("  h = x |> dense(\"four\")");
    let d = errors(&src);
    expect(&src, &d, "expected an integer, found a string", Some("\"four\""));
}

#[test]
fn bad_enum_value() {
    let src = model("  h = img |> conv2d(4, kernel: 3, pad: sme)");
    let d = errors(&src);
    let e = expect(&src, &d, "invalid value `sme` for `pad`", Some("sme"));
    assert!(e.message.contains("`valid`, `same` or an integer"), "{}", e.message);
}

#[test]
fn out_of_range_values() {
    let src = model("  a = x |> dense(0)\n  b = x |> dropout(1.5)\n  c = img |> batchnorm(eps: 0)\n  d = x |> dense(99999999)");
    let d = errors(&src);
    expect(&src, &d, "`units` must be at least 1, found 0", Some("0"));
    expect(&src, &d, "`p` must be in [0, 1), found 1.5", Some("1.5"));
    expect(&src, &d, "`eps` must be positive", Some("0"));
    expect(&src, &d, "`units` is too large", Some("99999999"));
}

#[test]
fn undefined_name_suggests_a_binding() {
    let src = model("  hidden = x |> dense(4)\n  out = hiden |> dense(1)");
    let d = errors(&src);
    noted(expect(&src, &d, "cannot find `hiden` in this scope", Some("hiden")), "did you mean `hidden`?");
}

#[test]
fn duplicate_declaration_points_at_both() {
    let src = "model m {\n  input x: f32[B, 1]\n  target x: f32[B, 1]\n}\n";
    let d = errors(src);
    let e = expect(src, &d, "`x` is declared twice", Some("x"));
    assert_eq!(e.labels.iter().find(|l| l.primary).map(|l| l.span.lo as usize), src.rfind("x:"));
    secondary(src, e, "x", "first declared here");
}

#[test]
fn return_outside_block() {
    let src = model("  return x");
    let d = errors(&src);
    expect(&src, &d, "`return` outside a block", Some("return x"));
}

#[test]
fn block_without_return() {
    let src = "block b(x) { h = x |> relu }\n".to_string() + &model("  h = x |> b");
    let d = errors(&src);
    expect(&src, &d, "block `b` has no `return`", Some("b"));
    assert_eq!(d.len(), 1, "calls of a broken block report nothing more: {d:#?}");
}

#[test]
fn statement_after_return() {
    let src = "block b(x) { return x\n h = x }\n".to_string() + &model("  h = x |> b");
    let d = errors(&src);
    expect(&src, &d, "statement after `return`", Some("h = x"));
}

#[test]
fn recursive_blocks_are_rejected() {
    let src = "block a(x) { return x |> b }\nblock b(x) { return x |> a }\nblock c(x) { return c(x) }\n"
        .to_string()
        + &model("  h = x |> a\n  k = x |> c");
    let d = errors(&src);
    let e = expect(&src, &d, "recursive block `a`", Some("a"));
    secondary(&src, e, "b", "in this call of `b`");
    secondary(&src, e, "a", "in this call of `a`");
    expect(&src, &d, "recursive block `c`", Some("c(x)"));
}

#[test]
fn missing_loss_with_train_section() {
    let src = "model m {\n  input x: f32[B, 1]\n  h = x |> dense(1)\n}\ntrain { epochs = 1 }\n";
    let d = errors(src);
    noted(expect(src, &d, "model `m` has no `loss`", Some("m")), "add `loss = mse(pred, target)`");
}

#[test]
fn non_scalar_loss() {
    let src = model("  out = x |> dense(1)\n  loss = out - y");
    let d = errors(&src);
    expect(&src, &d, "the loss must be an f32 scalar, but it is f32[B, 1]", Some("out - y"));
}

#[test]
fn two_models_and_no_model() {
    let src = "model a { input x: f32[B, 1] }\nmodel b { input x: f32[B, 1] }\n";
    let d = errors(src);
    let e = expect(src, &d, "only one `model`", Some("b"));
    secondary(src, e, "a", "first model");
    let src = "block b(x) { return x }\n";
    let d = errors(src);
    expect(src, &d, "this file has no `model`", None);
}

#[test]
fn skip_connection_shape_mismatch_names_both_shapes() {
    let src = model("  h = x |> dense(3)\n  s = h + x");
    let d = errors(&src);
    let e = expect(&src, &d, "mismatched shapes for `+`: dimension 1 is 3 vs 4", Some("h + x"));
    let primary = e.labels.iter().find(|l| l.primary).expect("primary");
    assert_eq!(primary.message, "cannot add f32[B, 3] and f32[B, 4]");
    secondary(&src, e, "h", "this is f32[B, 3]");
    secondary(&src, e, "x", "this is f32[B, 4]");
    secondary(&src, e, "input x: f32[B, 4]", "`x` defined here");
    assert_eq!(d.len(), 1);
}

#[test]
fn concat_mismatch() {
    let src = model("  a = img |> conv2d(2, kernel: 3)\n  c = concat(img, a, axis: 1)");
    let d = errors(&src);
    let e = d.iter().find(|d| d.labels.iter().any(|l| l.primary && text(&src, l.span).starts_with("concat")));
    let e = e.unwrap_or_else(|| panic!("no concat error:\n{}", render_plain("t.nn", &src, &d)));
    secondary(&src, e, "a", "this is f32[B, 2, 6, 6]");
}

#[test]
fn dense_on_a_scalar() {
    let src = model("  s = mean(x)\n  h = s |> dense(3)");
    let d = errors(&src);
    let e = d.iter().find(|d| d.labels.iter().any(|l| l.primary && text(&src, l.span) == "dense(3)"));
    let e = e.unwrap_or_else(|| panic!("no dense error:\n{}", render_plain("t.nn", &src, &d)));
    secondary(&src, e, "s", "this is f32[]");
}

#[test]
fn conv2d_on_a_matrix() {
    let src = model("  h = x |> conv2d(4, kernel: 3)");
    let d = errors(&src);
    let e =
        d.iter().find(|d| d.labels.iter().any(|l| l.primary && text(&src, l.span) == "conv2d(4, kernel: 3)"));
    let e = e.unwrap_or_else(|| panic!("no conv2d error:\n{}", render_plain("t.nn", &src, &d)));
    secondary(&src, e, "x", "this is f32[B, 4]");
}

#[test]
fn matmul_mismatch() {
    let src = model("  h = matmul(x, x)");
    let d = errors(&src);
    let e = d.iter().find(|d| d.labels.iter().any(|l| l.primary && text(&src, l.span) == "matmul(x, x)"));
    assert!(e.is_some(), "no matmul error:\n{}", render_plain("t.nn", &src, &d));
}

#[test]
fn cross_entropy_with_float_vector_labels() {
    let src = "model m {\n  input x: f32[B, 4]\n  target y: f32[B]\n  z = x |> dense(3)\n  loss = cross_entropy(z, y)\n}\n";
    let d = errors(src);
    let e =
        d.iter().find(|d| d.labels.iter().any(|l| l.primary && text(src, l.span) == "cross_entropy(z, y)"));
    let e = e.unwrap_or_else(|| panic!("no cross_entropy error:\n{}", render_plain("t.nn", src, &d)));
    secondary(src, e, "y", "this is f32[B]");
}

#[test]
fn output_must_name_a_binding() {
    let src = model("  pred = x |> dense(1)\n  output prd");
    let d = errors(&src);
    noted(
        expect(&src, &d, "`output` names `prd`, which is not defined", Some("prd")),
        "did you mean `pred`?",
    );
}

#[test]
fn error_inside_a_block_labels_the_call_site() {
    let src = "block b(x, c: int) { return x |> dense(c) |> sigmoidd }\n".to_string()
        + &model("  h = x |> b(3)\n  k = x |> b(4)");
    let d = errors(&src);
    let e = expect(&src, &d, "unknown function `sigmoidd`", Some("sigmoidd"));
    secondary(&src, e, "b(3)", "in this call of `b`");
    assert_eq!(d.len(), 1, "reported once although the block is called twice: {d:#?}");
}

#[test]
fn independent_errors_are_all_reported() {
    let src = model("  a = x |> dens(4)\n  b = x |> dense(4, bias: 3)\n  c = x |> relu(alpha: 1)\n  d = zz");
    let d = errors(&src);
    expect(&src, &d, "unknown function `dens`", Some("dens"));
    expect(&src, &d, "expected `true` or `false`, found an integer", Some("3"));
    expect(&src, &d, "`relu` has no argument `alpha`", Some("alpha"));
    expect(&src, &d, "cannot find `zz`", Some("zz"));
    assert_eq!(d.len(), 4, "{d:#?}");
}

#[test]
fn no_cascade_after_an_undefined_name() {
    let src = model("  h = zz |> dense(4) |> relu\n  out = dense(h, 1) + h\n  loss = mse(out, y)");
    let d = errors(&src);
    assert_eq!(d.len(), 1, "{}", render_plain("t.nn", &src, &d));
    expect(&src, &d, "cannot find `zz`", Some("zz"));
}

#[test]
fn block_definition_errors() {
    let src = "block relu(x) { return x }\nblock b(x) { return x }\nblock b(x) { return x }\nblock k(c: int) { return c }\nblock t(x, c: tensor) { return x }\n"
        .to_string()
        + &model("");
    let d = errors(&src);
    expect(&src, &d, "block `relu` has the name of a built-in function", Some("relu"));
    secondary(&src, expect(&src, &d, "block `b` is defined twice", Some("b")), "b", "first definition");
    expect(&src, &d, "the first parameter of block `k` must be a tensor", Some("c: int"));
    expect(&src, &d, "unknown parameter type `tensor`", Some("tensor"));
}

#[test]
fn bad_declarations() {
    let src = "model m {\n  input x: f64[B, 0]\n}\n";
    let d = errors(src);
    expect(src, &d, "unknown element type `f64`", Some("f64"));
}

#[test]
fn functions_are_not_values_and_values_are_not_functions() {
    let src = model("  a = relu\n  b = x |> a");
    let d = errors(&src);
    expect(&src, &d, "`relu` is a function, not a value", Some("relu"));
    let src = model("  a = x\n  b = x |> a");
    let d = errors(&src);
    expect(&src, &d, "`a` is not a function", Some("a"));
}

#[test]
fn rendered_undefined_name() {
    let src = model("  hidden = x |> dense(4)\n  out = hiden |> dense(1)");
    let d = errors(&src);
    let text = render_plain("m.nn", &src, &d);
    assert!(text.contains("error: cannot find `hiden` in this scope"), "{text}");
    assert!(text.contains("m.nn:6:9"), "{text}");
    assert!(text.contains("^^^^^ not defined"), "{text}");
    assert!(text.contains("did you mean `hidden`?"), "{text}");
}

#[test]
fn rendered_skip_connection_mismatch() {
    let src = model("  h = x |> dense(3)\n  s = h + x");
    let d = errors(&src);
    let text = render_plain("m.nn", &src, &d);
    assert!(text.contains("this is f32[B, 3]"), "{text}");
    assert!(text.contains("this is f32[B, 4]"), "{text}");
    assert!(text.contains("`h` defined here"), "{text}");
    assert!(text.contains("m.nn:6:7"), "{text}");
}

#[test]
fn never_panics_on_mutations() {
    // Every prefix of every acceptance program (a crude mutation fuzzer).
    for src in [SINE, DIGITS, RESUNET] {
        for cut in (0..src.len()).step_by(7) {
            if !src.is_char_boundary(cut) {
                continue;
            }
            let part = &src[..cut];
            let (file, _) = crate::syntax::parse(part);
            let _ = analyze(&file, part);
        }
    }
}

#[test]
fn never_panics_on_token_mutations() {
    // Deterministic mutations: delete, duplicate or swap whitespace-separated
    // words of the acceptance programs and the zoo, and splice in numbers.
    let words =
        ["0", "-1", "99999999", "x", "h", "[B]", "same", "loss", "(", ")", "|>", "+", "dense", "block"];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    for src in [SINE, DIGITS, RESUNET] {
        let tokens: Vec<&str> = src.split(' ').collect();
        for _ in 0..300 {
            let mut t = tokens.clone();
            for _ in 0..3 {
                let i = next(t.len());
                match next(4) {
                    0 => {
                        t.remove(i);
                    }
                    1 => {
                        let w = t[i];
                        t.insert(i, w);
                    }
                    2 => {
                        let j = next(t.len());
                        t.swap(i, j);
                    }
                    _ => t.insert(i, words[next(words.len())]),
                }
            }
            let mutated = t.join(" ");
            let (file, _) = crate::syntax::parse(&mutated);
            let _ = analyze(&file, &mutated);
        }
    }
}

#[test]
fn deep_and_wide_expansions_are_bounded() {
    let mut src = String::from("block b0(x) { return x |> relu }\n");
    for i in 1..40 {
        src += &format!("block b{i}(x) {{ h = x |> b{} \n return h |> b{} }}\n", i - 1, i - 1);
    }
    src += &model("  h = x |> b39");
    let d = errors(&src);
    assert!(d
        .iter()
        .any(|d| d.message.contains("nested more than") || d.message.contains("expands to more")));
    let chain = vec!["x"; 500].join(" + ");
    let src = model(&format!("  h = {chain}"));
    let (file, _) = crate::syntax::parse(&src);
    let _ = analyze(&file, &src);
}

// ------------------------------------------------- more error classes

#[test]
fn inputs_and_targets_cannot_be_reassigned() {
    let src = model("  x = x |> dense(3)\n  y = x\n  h = x + 1");
    let d = errors(&src);
    let e = expect(&src, &d, "cannot assign to `x`, which is an input of the model", Some("x"));
    secondary(&src, e, "input x: f32[B, 4]", "declared here");
    noted(e, "help: bind the result to a new name");
    expect(&src, &d, "cannot assign to `y`, which is a target of the model", Some("y"));
    assert_eq!(d.len(), 2, "later uses of `x` report nothing more: {d:#?}");
}

#[test]
fn wrong_argument_types_and_enum_values() {
    let src = model("  a = conv2d(img, 3.5, kernel: 3)\n  b = img |> conv2d(2, kernel: 3, pad: sideways)\n  c = relu(\"a\")\n  d = x |> dense(4, bias: yes)");
    let d = errors(&src);
    let e = expect(&src, &d, "expected an integer, found a float (`3.5`)", Some("3.5"));
    noted(
        e,
        "note: signature: conv2d(x, channels, kernel, stride: 1, pad: valid, dilation: 1, bias: true, pad_mode: zeros)",
    );
    let e = expect(&src, &d, "invalid value `sideways` for `pad`", Some("sideways"));
    assert!(e.message.contains("expected one of `valid`, `same` or an integer"), "{}", e.message);
    expect(&src, &d, "expected a tensor, found a string", Some("\"a\""));
    expect(&src, &d, "expected `true` or `false`, found the name `yes`", Some("yes"));
    assert_eq!(d.len(), 4, "{}", render_plain("t.nn", &src, &d));
}

#[test]
fn sizes_out_of_range() {
    let src = model("  a = img |> conv2d(4, kernel: 0)\n  b = img |> maxpool2d(2, stride: -1)\n  c = x |> dense(16777216) |> dense(16777216)\n  e = x |> dense(99999999999999)");
    let d = errors(&src);
    expect(&src, &d, "`kernel` must be at least 1, found 0", Some("0"));
    expect(&src, &d, "`stride` must be at least 1, found -1", Some("-1"));
    let e = expect(&src, &d, "the `dense` weight [16777216, 16777216] would have", Some("dense(16777216)"));
    assert!(e.message.contains("more than the limit of 2^31"), "{}", e.message);
    expect(&src, &d, "`units` is too large: 99999999999999", Some("99999999999999"));
}

#[test]
fn conv_input_too_small_and_pooling_window_too_large() {
    let src = model("  a = img |> conv2d(4, kernel: 9)\n  b = img |> maxpool2d(16)");
    let d = errors(&src);
    let e = expect(
        &src,
        &d,
        "`conv2d` kernel of extent 9 does not fit axis 2 of f32[B, 1, 8, 8]",
        Some("conv2d(4, kernel: 9)"),
    );
    secondary(&src, e, "img", "this is f32[B, 1, 8, 8]");
    noted(e, "help: use `pad: same` or a smaller kernel");
    expect(&src, &d, "`maxpool2d` window 16 does not fit axis 2 of f32[B, 1, 8, 8]", Some("maxpool2d(16)"));
}

#[test]
fn loss_shape_mismatch_names_both_shapes() {
    let src = model("  out = x |> dense(2)\n  loss = mse(out, y)");
    let d = errors(&src);
    let e = expect(
        &src,
        &d,
        "`mse` needs a prediction and target of equal shape, got f32[B, 2] and f32[B, 1]",
        Some("mse(out, y)"),
    );
    secondary(&src, e, "out", "this is f32[B, 2]");
    secondary(&src, e, "y", "this is f32[B, 1], expected f32[B, 2]");
    secondary(&src, e, "out", "`out` defined here");
}

#[test]
fn cross_entropy_label_dtype_says_what_is_expected() {
    let src = "model m {\n  input x: f32[B, 4]\n  target y: f32[B]\n  z = x |> dense(3)\n  loss = cross_entropy(z, y)\n}\n";
    let d = errors(src);
    let e = expect(
        src,
        &d,
        "`cross_entropy` labels for logits f32[B, 3] must be class indices i32[B] or probabilities f32[B, 3], found f32[B]",
        Some("cross_entropy(z, y)"),
    );
    secondary(src, e, "y", "this is f32[B], expected i32[B] or f32[B, 3]");
    secondary(src, e, "target y: f32[B]", "`y` defined here");
    noted(e, "help: declare class indices as i32");
}

#[test]
fn keyword_help_for_keras_style_activation() {
    let src = model("  b = x |> dense(8, activation: relu)");
    let d = errors(&src);
    noted(
        expect(&src, &d, "`dense` has no argument `activation`", Some("activation")),
        "help: apply the activation in the pipeline instead, e.g. `x |> dense(...) |> relu`",
    );
}

#[test]
fn block_call_errors() {
    let blocks = "block b(x, c: int, s: float = 0.5) { return x |> dense(c) }\n";
    let src = blocks.to_string()
        + &model("  a = x |> b\n  k = x |> b(\"wide\")\n  m = x |> b(3, t: 1)\n  n = x |> b(3, 0.1, 7)");
    let d = errors(&src);
    noted(
        expect(&src, &d, "missing argument `c` in call to `b`", Some("b")),
        "note: signature: b(x, c: int, s: float)",
    );
    expect(
        &src,
        &d,
        "expected an integer, found a string (\"wide\") (argument `c` of `b`)",
        Some("\"wide\""),
    );
    noted(expect(&src, &d, "`b` has no argument `t`", Some("t")), "valid arguments: `x`, `c`, `s`");
    expect(&src, &d, "`b` takes at most 3 positional arguments but 4 were given", Some("7"));
    assert_eq!(d.len(), 4, "{}", render_plain("t.nn", &src, &d));
}

#[test]
fn block_signature_errors() {
    let src = "block a(x, c: int, c: int) { return x }\nblock t(x, y = 3) { return x }\nblock e() { return 1 }\nblock o(x) { output x\n return x }\n".to_string()
        + &model("");
    let d = errors(&src);
    secondary(
        &src,
        expect(&src, &d, "parameter `c` is declared twice", Some("c")),
        "c",
        "first declaration here",
    );
    expect(&src, &d, "tensor parameter `y` cannot have a default", Some("y = 3"));
    expect(&src, &d, "block `e` has no input", Some("e"));
    expect(&src, &d, "`output` belongs in the model, not in a block", Some("output x"));
}

#[test]
fn constant_arithmetic_in_blocks() {
    let src = "block b(x, c: int) { return x |> dense(c / 2) }\n".to_string()
        + &model("  a = x |> b(4)\n  k = x |> b(3)\n  z = x |> dense(2 / 0)");
    let d = errors(&src);
    let e = expect(&src, &d, "expected an integer, found a float (`1.5`)", Some("c / 2"));
    secondary(&src, e, "b(3)", "in this call of `b`");
    expect(&src, &d, "division by zero", Some("2 / 0"));
    assert_eq!(d.len(), 2, "`b(4)` is fine: {}", render_plain("t.nn", &src, &d));
}

#[test]
fn undefined_names_inside_blocks_suggest_block_names_and_label_the_call() {
    let src = "block residual(x) { return x |> relu }\nblock b(x) { return x + hh }\n".to_string()
        + &model("  h = x |> resdual\n  k = x |> b");
    let d = errors(&src);
    noted(expect(&src, &d, "unknown function `resdual`", Some("resdual")), "help: did you mean `residual`?");
    let e = expect(&src, &d, "cannot find `hh` in this scope", Some("hh"));
    secondary(&src, e, "b", "in this call of `b`");
}

#[test]
fn bad_reshapes_permutes_and_axes() {
    let src = model("  b = img |> reshape(shape: [B, 63])\n  c = img |> permute(axes: [0, 1, 1, 2])\n  e = img |> sum(axis: 4)");
    let d = errors(&src);
    expect(&src, &d, "cannot reshape f32[B, 1, 8, 8] to [B, 63]: 64·B elements vs 63·B", None);
    expect(&src, &d, "`permute` lists axis 1 twice", None);
    noted(
        expect(&src, &d, "`sum`: axis 4 is out of range for a tensor of rank 4", None),
        "note: valid axes are -4 to 3",
    );
}

#[test]
fn file_level_errors() {
    let src = "model m {\n  input x: f32[B, 1]\n  h = x |> dense(1)\n  output h\n  output x\n  loss = mse(h, x)\n}\ntrain { epochs = 1 }\ntrain { epochs = 2 }\n";
    let d = errors(src);
    secondary(
        src,
        expect(src, &d, "a file can have only one `train` section", None),
        "train { epochs = 1 }",
        "first",
    );
    expect(src, &d, "more than one `output`", Some("output x"));
    let src = "model m {\n  input x: f32[B, 0]\n  input z: f32[B, 99999999999]\n}\n";
    let d = errors(src);
    expect(src, &d, "invalid dimension 0", Some("0"));
    expect(src, &d, "invalid dimension 99999999999", Some("99999999999"));
}

#[test]
fn loss_must_be_a_scalar_tensor() {
    let src = model("  loss = 3");
    let d = errors(&src);
    expect(&src, &d, "the loss must be an f32 scalar tensor, found an integer (`3`)", Some("3"));
    let src = model("  h = img |> conv2d(2, kernel: 3)\n  loss = h * h");
    let d = errors(&src);
    let e = expect(&src, &d, "the loss must be an f32 scalar, but it is f32[B, 2, 6, 6]", Some("h * h"));
    noted(e, "help: reduce it to a scalar");
}

#[test]
fn rendered_cross_entropy_and_multiple_errors() {
    let src = "model m {\n  input x: f32[B, 4]\n  target y: f32[B]\n  z = x |> dense(3) |> tanhh\n  w = x |> dense(3, bais: false)\n  loss = cross_entropy(x |> dense(3), y)\n}\n";
    let d = errors(src);
    assert_eq!(d.len(), 3, "{}", render_plain("m.nn", src, &d));
    let text = render_plain("m.nn", src, &d);
    let expected = [
        "error: unknown function `tanhh`",
        "= help: did you mean `tanh`?",
        "error: `dense` has no argument `bais`",
        "= note: valid arguments: `x`, `units`, `bias`",
        "= help: did you mean `bias`?",
        "error: `cross_entropy` labels for logits f32[B, 3] must be class indices i32[B] or probabilities f32[B, 3], found f32[B]",
        "`y` defined here",
        "this is f32[B], expected i32[B] or f32[B, 3]",
        "labels do not match the logits",
    ];
    let mut at = 0;
    for line in expected {
        let found = text[at..].find(line).unwrap_or_else(|| panic!("{line:?} not found in order:\n{text}"));
        at += found;
    }
}

#[test]
fn recursion_through_two_blocks_renders_each_call() {
    let src =
        "block a(x) { return x |> b }\nblock b(x) { return x |> a }\n".to_string() + &model("  h = x |> a");
    let d = errors(&src);
    assert_eq!(d.len(), 1, "{}", render_plain("m.nn", &src, &d));
    let text = render_plain("m.nn", &src, &d);
    assert!(text.contains("error: recursive block `a`"), "{text}");
    assert!(text.contains("in this call of `a`"), "{text}");
    assert!(text.contains("in this call of `b`"), "{text}");
    assert!(text.contains("= note: blocks are expanded at compile time"), "{text}");
}

#[test]
fn all_missing_arguments_in_one_diagnostic() {
    let src = model("  h = img |> conv2d");
    let d = errors(&src);
    assert_eq!(d.len(), 1, "{}", render_plain("t.nn", &src, &d));
    let e = expect(&src, &d, "missing arguments `channels`, `kernel` in call to `conv2d`", Some("conv2d"));
    assert_eq!(e.labels[0].message, "`channels`, `kernel` are not given");
}

#[test]
fn undefined_names_explain_dimensions_and_block_scope() {
    let src = "block b(x) { return x + img }\n".to_string() + &model("  h = B + 1\n  k = x |> b");
    let d = errors(&src);
    noted(expect(&src, &d, "cannot find `B` in this scope", Some("B")), "`B` is a symbolic dimension");
    let e = expect(&src, &d, "cannot find `img` in this scope", Some("img"));
    noted(e, "help: pass `img` to the block as a parameter");
    secondary(&src, e, "b", "in this call of `b`");
}

// --------------------------------------------------------------- warnings

fn warnings(src: &str) -> Vec<Diagnostic> {
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "syntax errors: {}", render_plain("t.nn", src, &syntax));
    let (module, diags) = super::analyze_all(&file, src);
    assert!(module.is_some(), "unexpected errors:\n{}", render_plain("t.nn", src, &diags));
    diags.into_iter().filter(|d| !d.is_error()).collect()
}

#[test]
fn acceptance_examples_and_zoo_have_no_warnings() {
    for src in [SINE, DIGITS, RESUNET] {
        let w = warnings(src);
        assert!(w.is_empty(), "{}", render_plain("t.nn", src, &w));
    }
    for (path, src) in zoo() {
        let (m, diags) = analyse_file(&path, &src);
        let shown = path.display().to_string();
        assert!(m.is_some(), "unexpected errors:\n{}", render_plain(&shown, &src, &diags));
        let w: Vec<Diagnostic> = diags.into_iter().filter(|d| !d.is_error()).collect();
        assert!(w.is_empty(), "{}", render_plain(&shown, &src, &w));
    }
}

#[test]
fn unused_bindings_and_parameters_are_warned_about() {
    let src = "block b(x, c: int, _d: int = 1) { t = x |> relu\n return x }\n".to_string()
        + &model("  h = x |> dense(8)\n  h = x |> dense(4)\n  out = h |> dense(1) |> b(3)\n  spare = img |> relu\n  _kept = img |> tanh\n  loss = mse(out, y)");
    let w = warnings(&src);
    let rendered = render_plain("t.nn", &src, &w);
    let e = expect(&src, &w, "the value bound to `h` is never used", Some("h"));
    assert_eq!(e.labels[0].span.lo as usize, src.find("h = x |> dense(8)").expect("first h"), "{rendered}");
    secondary(&src, e, "h", "`h` is bound again here");
    expect(&src, &w, "binding `spare` is never used", Some("spare"));
    expect(&src, &w, "parameter `c` is never used", Some("c"));
    noted(
        expect(&src, &w, "binding `t` is never used", Some("t")),
        "help: if this is intentional, name it `_t`",
    );
    assert_eq!(w.len(), 4, "{rendered}");
    let src =
        "block spare(x) { return x }\nblock _draft(x) { return x }\n".to_string() + &model("  h = x |> relu");
    let w = warnings(&src);
    expect(&src, &w, "block `spare` is never used", Some("spare"));
    assert_eq!(w.len(), 1, "{}", render_plain("t.nn", &src, &w));
    // Errors come alone: no warning echoes them.
    let src = model("  h = x |> dense(8)\n  out = hh |> dense(1)");
    assert_eq!(errors(&src).len(), 1);
}
