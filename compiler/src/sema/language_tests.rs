//! Tests of the constructs of the language's second part, from source
//! text: layer values and shared parameters, `repeat`, `map`, `split`,
//! indexing, comparisons, named losses and constants.

use std::collections::HashMap;

use crate::ir::interp::{example_inputs, run_all, Tensor};
use crate::ir::{InputKind, Op, OutputKind};

use super::constants::{ConstData, ConstSource, Loaded, Loader};
use super::tests::{errors, expect, model, noted, ok, params, secondary};

/// The parameter names of a module's training graph.
fn names(src: &str) -> Vec<String> {
    params(&ok(src).train_graph).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn a_bound_layer_shares_its_parameters() {
    let src = model(
        "  enc = dense(3)\n  a = x |> enc\n  b = (x * 2) |> enc\n  out = (a + b) |> dense(1)\n  loss = mse(out, y)",
    );
    assert_eq!(names(&src), ["enc.weight", "enc.bias", "out.dense_1.weight", "out.dense_1.bias"]);
}

#[test]
fn an_inline_layer_is_fresh_at_each_use() {
    let src = model("  h = x |> dense(4) |> dense(4)\n  out = h |> dense(1)\n  loss = mse(out, y)");
    assert_eq!(names(&src).len(), 6);
}

#[test]
fn a_bound_block_names_its_layers_after_the_binding() {
    let src = format!(
        "block enc_block(x, width: int) {{\n  h = x |> dense(width) |> tanh\n  return h |> dense(width)\n}}\n{}",
        model("  enc = enc_block(8)\n  za = x |> enc\n  zb = (x + 1) |> enc\n  out = (za - zb) |> dense(1)\n  loss = mse(out, y)")
    );
    assert_eq!(
        names(&src),
        [
            "enc.dense_1.weight",
            "enc.dense_1.bias",
            "enc.dense_2.weight",
            "enc.dense_2.bias",
            "out.dense_1.weight",
            "out.dense_1.bias"
        ]
    );
}

#[test]
fn a_block_of_several_tensors_applies_by_call() {
    let src = format!(
        "block mix(a, b, width: int) {{\n  return concat(a, b, axis: 1) |> dense(width)\n}}\n{}",
        model("  m = mix(width: 2)\n  h = m(x, x * 2)\n  k = m(x + 1, x)\n  out = (h + k) |> dense(1)\n  loss = mse(out, y)")
    );
    let module = ok(&src);
    let ps = params(&module.train_graph);
    assert_eq!(ps[0], ("m.dense_1.weight".to_string(), "f32[2, 8]".to_string()));
    // The second application has inputs of another shape: 2 + 2 features.
    let src = format!(
        "block mix(a, b, width: int) {{\n  return concat(a, b, axis: 1) |> dense(width)\n}}\n{}",
        model(
            "  m = mix(width: 3)\n  h = m(x, x)\n  h = m(h, h)\n  out = h |> dense(1)\n  loss = mse(out, y)"
        )
    );
    let d = errors(&src);
    let e = expect(
        &src,
        &d,
        "the shared layer `m` is applied to an input of another shape",
        Some("dense(width)"),
    );
    secondary(&src, e, "m(h, h)", "in this call of `mix`");
}

#[test]
fn repeat_names_each_copy() {
    let src = model("  stack = repeat(dense(4), 3)\n  out = x |> stack |> dense(1)\n  loss = mse(out, y)");
    let n = names(&src);
    assert_eq!(&n[..2], ["stack.0.dense_1.weight", "stack.0.dense_1.bias"]);
    assert_eq!(n[4], "stack.2.dense_1.weight");
    assert_eq!(n.len(), 8);
}

#[test]
fn map_applies_one_instance_to_every_slice() {
    let src = "model m {\n  input x: f32[B, 5, 3, 4, 4]\n  target y: f32[B, 5, 1, 4, 4]\n  read = conv2d(1, kernel: 1)\n  out = map(read, x, axis: 1)\n  loss = mse(out, y)\n}\n";
    let module = ok(src);
    let ps = params(&module.train_graph);
    assert_eq!(ps.len(), 2, "{ps:?}");
    assert_eq!(ps[0], ("read.weight".to_string(), "f32[1, 3, 1, 1]".to_string()));
    let out =
        module.train_graph.outputs.iter().find(|o| o.kind == OutputKind::Prediction).expect("prediction");
    assert_eq!(module.train_graph.ty(out.value).to_string(), "f32[B, 5, 1, 4, 4]");
    // One summary row with the work of all five uses.
    let rows: Vec<_> = module.layers.iter().filter(|r| r.name == "read").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].params, 4);
}

#[test]
fn indexing_follows_numpy() {
    let cases = [
        ("x[:, -1]", "f32[B]"),
        ("x[:, 1:3]", "f32[B, 2]"),
        ("x[..., 1:]", "f32[B, 3]"),
        ("x[:, ::2]", "f32[B, 2]"),
        ("x[:, 1::2]", "f32[B, 2]"),
        ("img[:, 0, 2:7:2]", "f32[B, 3, 8]"),
        ("img[..., -1]", "f32[B, 1, 8]"),
        ("split(x, 2, axis: 1)[1]", "f32[B, 2]"),
        ("split(x, [1, 3])[-1]", "f32[B, 3]"),
    ];
    for (expr, want) in cases {
        let src = model(&format!("  h = {expr}\n  out = x |> dense(1)\n  loss = mse(out, y) + mean(h)"));
        let module = ok(&src);
        let g = &module.infer_graph;
        let h = g.nodes.iter().rposition(|n| n.ty.to_string() == want);
        assert!(h.is_some(), "{expr}: no value of type {want}");
    }
}

#[test]
fn indexing_values_match_numpy() {
    // x[:, 1::2] of [[0, 1, 2, 3]] is [[1, 3]]; x[:, -1] is [3].
    let src = model(
        "  h = x[:, 1::2]\n  k = x[:, -1]\n  out = x |> dense(1)\n  loss = mse(out, y) + mean(h) + mean(k)",
    );
    let module = ok(&src);
    let g = &module.infer_graph;
    let dims = HashMap::from([("B".to_string(), 1)]);
    let mut inputs: HashMap<String, Tensor<f64>> = example_inputs(g, &dims, 0).expect("inputs");
    let x =
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 4]), vec![0.0, 1.0, 2.0, 3.0]).expect("shape");
    inputs.insert("x".into(), Tensor::Float(x));
    let values = run_all(g, &inputs).expect("runs");
    let h = g.nodes.iter().rposition(|n| n.ty.to_string() == "f32[B, 2]").expect("h");
    assert_eq!(floats(&values[h]), [1.0, 3.0]);
    let k = g.nodes.iter().rposition(|n| n.ty.to_string() == "f32[B]").expect("k");
    assert_eq!(floats(&values[k]), [3.0]);
}

fn floats(t: &Tensor<f64>) -> Vec<f64> {
    match t {
        Tensor::Float(a) => a.iter().copied().collect(),
        other => panic!("not a float tensor: {other:?}"),
    }
}

#[test]
fn bad_subscripts_are_located() {
    let cases = [
        ("x[:, 4]", "index 4 is out of range for axis 1 of f32[B, 4]", "4"),
        ("x[:, 0:5]", "slice stop is out of range for axis 1 of f32[B, 4]", "5"),
        ("x[:, 3:1]", "the slice selects nothing", "3:1"),
        ("x[:, ::0]", "a slice step cannot be zero", "0"),
        ("x[0]", "cannot select along axis 0 of f32[B, 4]", "0"),
        ("x[:, :, 0]", "too many subscripts: f32[B, 4] has 2 axes, 3 are given", "0"),
        ("x[..., ...]", "an index can have only one `...`", "..."),
        ("x[:, x]", "an index must be a compile-time integer, not a tensor", "x"),
        ("x[:, 1.5]", "an index must be an integer", "1.5"),
    ];
    for (expr, message, at) in cases {
        let src = model(&format!("  h = {expr}\n  loss = mse(x |> dense(1), y)"));
        let d = errors(&src);
        expect(&src, &d, message, Some(at));
    }
}

#[test]
fn layer_misuse_is_located() {
    let src = model("  enc = dense(3)\n  h = enc + 1\n  loss = mse(x |> dense(1), y)");
    expect(&src, &errors(&src), "cannot apply `+` to a layer (`enc`) and an integer", Some("enc + 1"));

    let src = model("  enc = dense(3)\n  enc = dense(4)\n  h = x |> enc\n  loss = mse(h |> dense(1), y)");
    let d = errors(&src);
    secondary(&src, expect(&src, &d, "`enc` already names a layer", Some("enc")), "enc", "first layer");

    let src = model("  h = map(x, x, axis: 1)\n  loss = mse(x |> dense(1), y)");
    noted(expect(&src, &errors(&src), "`map` needs a layer value, found a tensor", Some("x")), "dense(64)");

    let src = model("  h = map(dense(2), x, axis: 0)\n  loss = mse(x |> dense(1), y)");
    expect(&src, &errors(&src), "`map` needs an axis of known size", Some("0"));

    let src = model("  h = split(x, 3)\n  loss = mse(x |> dense(1), y)");
    expect(&src, &errors(&src), "cannot split axis 1 of f32[B, 4] (size 4) into 3 equal parts", Some("3"));

    let src = model("  m = dense(2)\n  h = m(x, x)\n  loss = mse(x |> dense(1), y)");
    expect(&src, &errors(&src), "the layer `m` takes 1 tensor, but 2 were given", Some("m(x, x)"));

    let src = model("  h = repeat(x, 2)\n  loss = mse(x |> dense(1), y)");
    expect(&src, &errors(&src), "`repeat` needs a layer value, found a tensor", Some("x"));
}

#[test]
fn comparisons_make_bool_masks() {
    let src = model(
        "  m = x > 0\n  h = where(m, x, 0.0) + (x <= 1) * x\n  out = h |> dense(1)\n  loss = mse(out, y)",
    );
    let module = ok(&src);
    assert!(module.train_graph.nodes.iter().any(|n| matches!(n.op, Op::Compare(_))));
}

#[test]
fn named_losses_are_outputs_in_order() {
    let src = model(
        "  a = x |> dense(1)\n  b = x |> dense(1)\n  loss first = mse(a, y)\n  loss second = mae(b, y)\n  output a",
    );
    let module = ok(&src);
    assert_eq!(module.losses, ["first", "second"]);
    let outs: Vec<&str> = module
        .train_graph
        .outputs
        .iter()
        .filter(|o| o.kind == OutputKind::Loss)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(outs, ["first", "second"]);

    let src = model("  a = x |> dense(1)\n  loss l = mse(a, y)\n  loss l = mae(a, y)");
    expect(&src, &errors(&src), "the loss `l` is defined twice", Some("l"));
}

/// A loader of fixed arrays, by path.
struct Arrays(Vec<(&'static str, Loaded)>);

impl Loader for Arrays {
    fn load(&self, source: &ConstSource) -> Result<Loaded, String> {
        let path = match source {
            ConstSource::Npy { path }
            | ConstSource::Npz { path, .. }
            | ConstSource::Csv { path, .. }
            | ConstSource::Netcdf { path, .. } => path,
            ConstSource::Dataset { name, .. } => name,
        };
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, l)| l.clone())
            .ok_or_else(|| format!("cannot read `{path}`: no such file"))
    }
}

fn with_arrays(
    src: &str,
    arrays: Vec<(&'static str, Loaded)>,
) -> Result<super::Module, Vec<crate::diag::Diagnostic>> {
    let (file, syntax) = crate::syntax::parse(src);
    assert!(syntax.is_empty(), "{syntax:?}");
    super::analyze_with(&file, src, &Arrays(arrays))
}

#[test]
fn constants_are_inputs_with_their_values() {
    let mask = Loaded { shape: vec![4], data: ConstData::F32(vec![1.0, 0.0, 1.0, 1.0]) };
    let edges = Loaded { shape: vec![3, 2], data: ConstData::I32(vec![0, 1, 1, 2, 2, 3]) };
    let src = model(
        "  const mask: f32[4] = npy(\"mask.npy\")\n  const edges: i32[E, 2] = npz(\"mesh.npz\", \"edges\")\n  out = (x * mask) |> dense(1)\n  loss = mse(out, y)",
    );
    let module = with_arrays(&src, vec![("mask.npy", mask.clone()), ("mesh.npz", edges)]).expect("analyses");
    assert_eq!(module.constants.len(), 2);
    assert_eq!(module.constants[1].ty.to_string(), "i32[3, 2]");
    assert_eq!(module.constants[0].origin, "npy(\"mask.npy\")");
    assert_eq!(module.constants[0].sha256.len(), 64);
    let consts: Vec<&str> = module
        .train_graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Input { name, kind: InputKind::Const } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(consts, ["mask", "edges"]);
    // The file's shape must match the declared one; the message names the file.
    let src = model("  const mask: f32[5] = npy(\"mask.npy\")\n  out = x |> dense(1)\n  loss = mse(out, y)");
    let d = with_arrays(&src, vec![("mask.npy", mask)]).expect_err("wrong shape");
    expect(&src, &d, "npy(\"mask.npy\") does not match the type of `mask`", Some("f32[5]"));
    let d = with_arrays(&src, vec![]).expect_err("no file");
    expect(&src, &d, "cannot read `mask.npy`", Some("npy(\"mask.npy\")"));
}

/// `netcdf(PATH, var: NAME)` (or `netcdf(PATH, NAME)`) names a variable of
/// a NetCDF file; without the variable, or with another argument, it is an
/// error at the source.
#[test]
fn netcdf_constants_name_a_variable() {
    let lsm = Loaded { shape: vec![4], data: ConstData::F32(vec![1.0, 0.0, 1.0, 1.0]) };
    for source in ["netcdf(\"lsm.nc\", var: \"lsm\")", "netcdf(\"lsm.nc\", \"lsm\")"] {
        let src = model(&format!(
            "  const lsm: f32[4] = {source}\n  out = (x * lsm) |> dense(1)\n  loss = mse(out, y)"
        ));
        let module = with_arrays(&src, vec![("lsm.nc", lsm.clone())]).expect("analyses");
        assert_eq!(module.constants[0].origin, "netcdf(\"lsm.nc\", var: \"lsm\")");
    }
    let src = model(
        "  const lsm: f32[4] = netcdf(\"lsm.nc\")\n  out = (x * lsm) |> dense(1)\n  loss = mse(out, y)",
    );
    let d = with_arrays(&src, vec![("lsm.nc", lsm.clone())]).expect_err("no variable named");
    expect(&src, &d, "`netcdf(PATH, var: NAME)`", Some("netcdf(\"lsm.nc\")"));
    let src = model(
        "  const lsm: f32[4] = netcdf(\"lsm.nc\", field: \"lsm\")\n  out = (x * lsm) |> dense(1)\n  loss = mse(out, y)",
    );
    let d = with_arrays(&src, vec![("lsm.nc", lsm)]).expect_err("another argument");
    expect(&src, &d, "`netcdf` has no argument `field`", Some("field"));
}

/// The language reference documents every built-in and layer form: its
/// signature appears in docs/language.md.
#[test]
fn the_reference_documents_every_builtin() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md")).expect("docs");
    let mut missing = vec![];
    for b in super::catalogue::builtins() {
        if !doc.contains(&format!("`{}`", b.signature())) && !doc.contains(&format!("`{}(", b.name)) {
            missing.push(b.signature());
        }
    }
    for form in super::layers::LayerForm::ALL {
        if !doc.contains(&format!("`{}", form.signature())) {
            missing.push(form.signature().to_string());
        }
    }
    assert!(missing.is_empty(), "docs/language.md does not document:\n{}", missing.join("\n"));
}

/// A file-level constant is seen by the model and by every block.
#[test]
fn file_level_constants_are_seen_by_blocks() {
    let mask = Loaded { shape: vec![4], data: ConstData::F32(vec![1.0, 0.0, 1.0, 1.0]) };
    let src = format!(
        "const mask: f32[4] = npy(\"mask.npy\")\nblock masked(x) {{\n  return (x * mask) |> dense(1)\n}}\n{}",
        model("  out = x |> masked\n  loss = mse(out, y) + mean(mask)")
    );
    let module = with_arrays(&src, vec![("mask.npy", mask)]).expect("analyses");
    assert_eq!(module.constants.len(), 1);
    assert_eq!(module.constants[0].name, "mask");
    let src = format!(
        "const mask: f32[4] = npy(\"mask.npy\")\n{}",
        model("  const mask: f32[4] = npy(\"mask.npy\")\n  loss = mse(x |> dense(1), y)")
    );
    let arrays = vec![("mask.npy", Loaded { shape: vec![4], data: ConstData::F32(vec![0.0; 4]) })];
    let d = with_arrays(&src, arrays).expect_err("declared twice");
    expect(&src, &d, "the constant `mask` is declared twice", Some("mask"));
}
