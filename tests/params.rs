//! Parameter files, batches and the `nnc init` / `nnc grad` commands.
//!
//! The library parts (initial values, safetensors files, npz batches) are
//! checked through their public API; the commands by running the binary and
//! comparing what it writes, bit for bit, with the same computation done
//! through the compiler's API.

mod common;

use common::{nnc, text};

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use ndarray_npy::NpzWriter;
use nnc_compiler::ir::interp::{self, Tensor};
use nnc_compiler::ir::{Init, InputKind, Op, OutputKind};
use nnc_runtime::exec::feed;
use nnc_runtime::io::npz::{self, ArrayValue};
use nnc_runtime::io::tensor_file;
use nnc_runtime::train::init;

// ---------------------------------------------------------------------------
// Helpers

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("nnc-params-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("list temp dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts the exit code and that nothing panicked; returns stdout.
fn expect_status(out: &Output, code: i32, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: nnc panicked:\n{stderr}");
    assert_eq!(out.status.code(), Some(code), "{what}: stdout:\n{}\nstderr:\n{stderr}", text(&out.stdout));
    text(&out.stdout)
}

fn compile(path: &str) -> nnc_compiler::Module {
    let path = common::root().join(path);
    common::compile_ok(&path, &common::read(&path))
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// `n` deterministic values in [-1, 1).
fn values(n: usize, salt: u64) -> Vec<f32> {
    (0..n).map(|i| 2.0 * nnc_compiler::ir::rng::uniform([7, 0], salt, i as u64) - 1.0).collect()
}

fn array(shape: &[usize], salt: u64) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values(shape.iter().product(), salt)).expect("shape")
}

/// Writes an npz archive whose arrays are added by `add`.
fn write_npz(path: &Path, add: impl FnOnce(&mut NpzWriter<File>)) {
    let mut npz = NpzWriter::new(File::create(path).expect("create npz"));
    add(&mut npz);
    npz.finish().expect("finish npz");
}

/// The sine batch: `x` and `y` f32[8, 1].
fn sine_batch(path: &Path) -> (ArrayD<f32>, ArrayD<f32>) {
    let x = Array2::from_shape_vec((8, 1), values(8, 1)).expect("x");
    let y = x.mapv(|v| (3.0 * v).sin());
    write_npz(path, |npz| {
        npz.add_array("x", &x).expect("x");
        npz.add_array("y", &y).expect("y");
    });
    (x.into_dyn(), y.into_dyn())
}

/// Named tensors, as saved and loaded.
type Tensors = [(String, ArrayD<f32>)];

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------
// Initial values

#[test]
fn init_is_deterministic_per_seed_and_differs_across_seeds() {
    for model in ["models/sine.nn", "models/digits.nn", "models/resunet.nn"] {
        let graph = compile(model).train_graph;
        let a = init::initial_values(&graph, 1).expect("init");
        let b = init::initial_values(&graph, 1).expect("init");
        let c = init::initial_values(&graph, 2).expect("init");
        assert_eq!(a, b, "{model}: same seed, same values");
        let random: Vec<usize> = (0..a.len())
            .filter(|&i| a[i].1.iter().collect::<Vec<_>>().windows(2).any(|w| w[0] != w[1]))
            .collect();
        assert!(!random.is_empty(), "{model}: no random tensor");
        for i in random {
            assert_ne!(a[i].1, c[i].1, "{model}: `{}` is the same for seeds 1 and 2", a[i].0);
        }
    }
}

#[test]
fn init_covers_every_param_and_state_input_within_its_bounds() {
    for path in common::nn_files("models") {
        let module = compile(&common::display_path(&path));
        let graph = &module.train_graph;
        let values = init::initial_values(graph, 5).expect("init");
        let mut expected = vec![];
        for (_, node) in graph.inputs() {
            let Op::Input { name, kind } = &node.op else { continue };
            let init = match kind {
                InputKind::Param { init, .. } | InputKind::State { init } => *init,
                _ => continue,
            };
            expected.push((name.clone(), node.ty.shape.as_known().expect("known shape"), init));
        }
        assert_eq!(values.len(), expected.len(), "{}", path.display());
        for ((name, value), (want_name, shape, init)) in values.iter().zip(&expected) {
            assert_eq!(name, want_name);
            assert_eq!(value.shape(), &shape[..], "{name}");
            let ok = |x: f32| match init {
                Init::Zeros => x == 0.0,
                Init::Ones => x == 1.0,
                Init::Uniform { bound } => x.is_finite() && x.abs() <= *bound as f32,
                Init::Normal { .. } => x.is_finite(),
            };
            assert!(value.iter().all(|&x| ok(x)), "{name}: values outside {init:?}");
        }
    }
}

#[test]
fn init_follows_pytorch_defaults_for_dense_layers() {
    // nn.Linear(64, 64): weight and bias uniform on ±1/sqrt(64) = ±0.125.
    let graph = compile("models/sine.nn").train_graph;
    for (_, node) in graph.inputs() {
        if let Op::Input { name, kind: InputKind::Param { init, .. } } = &node.op {
            if name.starts_with("h.dense_2.") {
                assert_eq!(*init, Init::Uniform { bound: 0.125 }, "{name}");
            }
        }
    }
    let values = init::initial_values(&graph, 0).expect("init");
    let (_, w) = values.iter().find(|(n, _)| n == "h.dense_2.weight").expect("weight");
    // 4096 uniform draws on ±0.125 spread over nearly the whole interval.
    let max = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(max > 0.124 && max <= 0.125, "max |w| = {max}");
}

#[test]
fn init_matches_the_interpreter_example_inputs() {
    let graph = compile("models/resunet.nn").train_graph;
    let dims = HashMap::from([("B".to_string(), 1usize)]);
    let examples = interp::example_inputs::<f32>(&graph, &dims, 9).expect("examples");
    for (name, value) in init::initial_values(&graph, 9).expect("init") {
        assert_eq!(examples[&name], Tensor::Float(value), "{name}");
    }
}

// ---------------------------------------------------------------------------
// safetensors files

fn sample_tensors() -> Vec<(String, ArrayD<f32>)> {
    vec![
        ("a.weight".to_string(), array(&[3, 2], 1)),
        ("a.bias".to_string(), array(&[3], 2)),
        ("scalar".to_string(), ArrayD::from_elem(IxDyn(&[]), -0.0)),
        ("conv.weight".to_string(), array(&[4, 1, 3, 3], 3)),
        ("empty".to_string(), ArrayD::zeros(IxDyn(&[0, 5]))),
        ("odd \"name\" \\ ü".to_string(), array(&[2], 4)),
        (
            "special".to_string(),
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![f32::MAX, f32::MIN_POSITIVE, 1e-45]).expect("special"),
        ),
    ]
}

#[test]
fn safetensors_round_trip() {
    let dir = TempDir::new("round_trip");
    let path = dir.path("t.safetensors");
    let tensors = sample_tensors();
    let note = "a \"quoted\" \\ line\nand ü".to_string();
    let metadata =
        BTreeMap::from([("nnc.model".to_string(), "m".to_string()), ("note".to_string(), note.clone())]);
    tensor_file::save(&path, &tensors, &metadata).expect("save");
    let file = tensor_file::load(&path).expect("load");
    let mut want = tensors.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(file.tensors.len(), want.len());
    for ((name, value), (want_name, want_value)) in file.tensors.iter().zip(&want) {
        assert_eq!(name, want_name);
        assert_eq!(value.shape(), want_value.shape(), "{name}");
        assert_eq!(bits(value), bits(want_value), "{name}");
    }
    assert_eq!(file.metadata.get("format").map(String::as_str), Some("pt"));
    assert_eq!(file.metadata.get("nnc.model").map(String::as_str), Some("m"));
    assert_eq!(file.metadata.get("note"), Some(&note));
    // Saving again gives the same bytes.
    let first = std::fs::read(&path).expect("read");
    tensor_file::save(&path, &tensors, &metadata).expect("save again");
    assert_eq!(std::fs::read(&path).expect("read"), first);
    // Nothing but the file itself is left in the directory.
    assert_eq!(dir.files(), ["t.safetensors"]);

    // The safetensors crate (what PyTorch's loader is built on) reads it too.
    let bytes = std::fs::read(&path).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("deserialize");
    let view = st.tensor("conv.weight").expect("conv.weight");
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    assert_eq!(view.shape(), &[4, 1, 3, 3]);
}

#[test]
fn other_float_dtypes_are_converted() {
    let dir = TempDir::new("dtypes");
    let path = dir.path("mixed.safetensors");
    let f64_bytes: Vec<u8> = [1.5f64, -2.25].iter().flat_map(|x| x.to_le_bytes()).collect();
    let f16_bytes: Vec<u8> = [0x3c00u16, 0xb800].iter().flat_map(|x| x.to_le_bytes()).collect(); // 1, -0.5
    let bf16_bytes: Vec<u8> = [0x4040u16].iter().flat_map(|x| x.to_le_bytes()).collect(); // 3
    let views = [
        (
            "d",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2], &f64_bytes).expect("f64"),
        ),
        (
            "h",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![2, 1], &f16_bytes)
                .expect("f16"),
        ),
        (
            "b",
            safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![1], &bf16_bytes)
                .expect("bf16"),
        ),
    ];
    let bytes = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(&path, bytes).expect("write");
    let file = tensor_file::load(&path).expect("load");
    let get = |n: &str| file.get(n).expect(n).iter().copied().collect::<Vec<f32>>();
    assert_eq!(get("d"), [1.5, -2.25]);
    assert_eq!(get("h"), [1.0, -0.5]);
    assert_eq!(file.get("h").expect("h").shape(), &[2, 1]);
    assert_eq!(get("b"), [3.0]);

    let int_bytes = 7i64.to_le_bytes();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![1], &int_bytes).expect("i64");
    std::fs::write(&path, safetensors::serialize([("n", view)], None).expect("serialize")).expect("write");
    let err = tensor_file::load(&path).expect_err("i64 tensor");
    assert!(err.to_string().contains("tensor `n`") && err.to_string().contains("I64"), "{err}");
}

#[test]
fn failed_save_leaves_the_old_file_intact() {
    let dir = TempDir::new("atomic");
    let path = dir.path("p.safetensors");
    let good = sample_tensors();
    tensor_file::save(&path, &good, &BTreeMap::new()).expect("first save");
    let before = std::fs::read(&path).expect("read");
    std::fs::create_dir(dir.path("sub")).expect("subdir");

    let duplicate = vec![("w".to_string(), array(&[2], 1)), ("w".to_string(), array(&[3], 2))];
    let unnamed = vec![(String::new(), array(&[2], 1))];
    let reserved = vec![("__metadata__".to_string(), array(&[2], 1))];
    let cases: Vec<(&str, PathBuf, &Tensors, &str)> = vec![
        ("duplicate names", path.clone(), &duplicate, "two tensors named `w`"),
        ("empty name", path.clone(), &unnamed, "empty name"),
        ("reserved name", path.clone(), &reserved, "reserved"),
        ("path is a directory", dir.path("sub"), &good, "cannot write"),
        ("missing directory", dir.path("nope/p.safetensors"), &good, "cannot write"),
    ];
    for (what, target, tensors, want) in cases {
        let err = tensor_file::save(&target, tensors, &BTreeMap::new()).expect_err(what);
        let message = err.to_string();
        assert!(message.contains(want), "{what}: {message}");
        assert!(message.starts_with(&target.display().to_string()), "{what}: {message}");
        assert_eq!(std::fs::read(&path).expect("read"), before, "{what}: the old file changed");
        assert_eq!(dir.files(), ["p.safetensors", "sub"], "{what}: temporary file left behind");
        assert!(
            dir.path("sub").is_dir() && std::fs::read_dir(dir.path("sub")).expect("sub").next().is_none()
        );
    }
}

#[test]
fn corrupt_and_truncated_files_are_errors() {
    let dir = TempDir::new("corrupt");
    let good_path = dir.path("good.safetensors");
    tensor_file::save(&good_path, &sample_tensors(), &BTreeMap::new()).expect("save");
    let good = std::fs::read(&good_path).expect("read");
    let header_len = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;

    let mut cases: Vec<(String, Vec<u8>, &str)> = vec![
        ("empty file".into(), vec![], "shorter than"),
        ("4 bytes".into(), vec![1, 2, 3, 4], "shorter than"),
        ("huge header length".into(), u64::MAX.to_le_bytes().to_vec(), "header"),
        ("header beyond the end".into(), [&100u64.to_le_bytes()[..], b"{}"].concat(), "header"),
        ("not JSON".into(), [&4u64.to_le_bytes()[..], b"abcd"].concat(), "corrupt"),
        ("not UTF-8".into(), [&2u64.to_le_bytes()[..], &[0xff, 0xfe]].concat(), "UTF-8"),
        ("text file".into(), b"model sine { }\n".to_vec(), ""),
        ("extra bytes".into(), [&good[..], &[0u8; 4]].concat(), "truncated or corrupt"),
        (
            "bad offsets".into(),
            {
                let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
                [&(header.len() as u64).to_le_bytes()[..], header, &[0u8; 4]].concat()
            },
            "",
        ),
    ];
    for cut in [8, 9, 8 + header_len / 2, 8 + header_len, 8 + header_len + 1, good.len() - 1] {
        cases.push((format!("truncated to {cut} bytes"), good[..cut].to_vec(), ""));
    }
    for (what, bytes, want) in cases {
        let path = dir.path("bad.safetensors");
        std::fs::write(&path, &bytes).expect("write");
        let err = tensor_file::load(&path).expect_err(&what);
        let message = err.to_string();
        assert!(message.starts_with(&path.display().to_string()), "{what}: {message}");
        assert!(message.contains(want), "{what}: {message}");
    }

    let err = tensor_file::load(&dir.path("missing.safetensors")).expect_err("missing");
    assert!(
        err.to_string().ends_with("missing.safetensors: cannot read: No such file or directory"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// npz batches

#[test]
fn npz_arrays_are_converted() {
    let dir = TempDir::new("npz_convert");
    let path = dir.path("b.npz");
    write_npz(&path, |npz| {
        npz.add_array("f64", &Array1::from(vec![0.5f64, -1.0])).expect("f64");
        npz.add_array("i64", &Array1::from(vec![3i64, -4])).expect("i64");
        npz.add_array("u8", &Array1::from(vec![255u8])).expect("u8");
        npz.add_array("bool", &Array1::from(vec![true, false])).expect("bool");
        npz.add_array("f32", &Array2::<f32>::zeros((2, 3))).expect("f32");
    });
    let arrays = npz::load_npz(&path).expect("load");
    // A compressed archive (`np.savez_compressed`) reads the same.
    let compressed = dir.path("c.npz");
    let mut npz = NpzWriter::new_compressed(File::create(&compressed).expect("create"));
    npz.add_array("f64", &Array1::from(vec![0.5f64, -1.0])).expect("f64");
    npz.finish().expect("finish");
    assert_eq!(npz::load_npz(&compressed).expect("load compressed")["f64"], arrays["f64"]);
    let f = |v: &[f32]| ArrayValue::F32(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).expect("f"));
    let i = |v: &[i32]| ArrayValue::I32(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).expect("i"));
    assert_eq!(arrays["f64"], f(&[0.5, -1.0]));
    assert_eq!(arrays["i64"], i(&[3, -4]));
    assert_eq!(arrays["u8"], i(&[255]));
    assert_eq!(arrays["bool"], i(&[1, 0]));
    assert_eq!(arrays["f32"].shape(), &[2, 3]);
}

#[test]
fn bad_npz_files_are_errors() {
    let dir = TempDir::new("npz_bad");
    type Add = Box<dyn FnOnce(&mut NpzWriter<File>)>;
    let cases: Vec<(&str, Add, &str)> = vec![
        (
            "NaN",
            Box::new(|npz| {
                npz.add_array(
                    "x",
                    &Array2::from_shape_vec((2, 2), vec![0f32, 1.0, f32::NAN, 2.0]).expect("x"),
                )
                .expect("x")
            }),
            "array `x`: NaN at index [1, 0]",
        ),
        (
            "infinity",
            Box::new(|npz| npz.add_array("y", &Array1::from(vec![0f64, f64::NEG_INFINITY])).expect("y")),
            "array `y`: infinite value at index [1]",
        ),
        (
            "beyond f32",
            Box::new(|npz| npz.add_array("y", &Array1::from(vec![1e300f64])).expect("y")),
            "array `y`: value 1e300 at index [0] is outside the f32 range",
        ),
        (
            "beyond i32",
            Box::new(|npz| npz.add_array("y", &Array1::from(vec![1i64, 1 << 40])).expect("y")),
            "array `y`: i64 value 1099511627776 at index [1] is outside the i32 range",
        ),
    ];
    for (what, add, want) in cases {
        let path = dir.path("b.npz");
        write_npz(&path, add);
        let err = npz::load_npz(&path).expect_err(what);
        assert_eq!(err.to_string(), format!("{}: {want}", path.display()), "{what}");
    }

    let garbage = dir.path("garbage.npz");
    std::fs::write(&garbage, b"this is not a zip archive").expect("write");
    let err = npz::load_npz(&garbage).expect_err("garbage");
    assert!(err.to_string().contains("not a valid .npz archive"), "{err}");

    let good = dir.path("good.npz");
    sine_batch(&good);
    let bytes = std::fs::read(&good).expect("read");
    for cut in [bytes.len() / 2, bytes.len() - 10] {
        let path = dir.path("cut.npz");
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let err = npz::load_npz(&path).expect_err("truncated");
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
    }

    let err = npz::load_npz(&dir.path("missing.npz")).expect_err("missing");
    assert!(err.to_string().ends_with("missing.npz: cannot read: No such file or directory"), "{err}");
}

#[test]
fn npz_arrays_are_checked_against_the_inputs() {
    let sine = compile("models/sine.nn").train_graph;
    let digits = compile("models/digits.nn").train_graph;
    let f = |shape: &[usize]| ArrayValue::F32(ArrayD::zeros(IxDyn(shape)));
    let i = |shape: &[usize]| ArrayValue::I32(ArrayD::zeros(IxDyn(shape)));
    type Arrays = Vec<(&'static str, ArrayValue)>;
    let cases: Vec<(&nnc_compiler::ir::Graph, Arrays, &str)> = vec![
        (&sine, vec![("x", f(&[8, 1])), ("y", f(&[8, 1])), ("extra", f(&[2]))], ""),
        (&digits, vec![("x", f(&[4, 64])), ("y", i(&[4]))], ""),
        (&sine, vec![("x", f(&[8, 1]))], "no array `y` for target `y: f32[B, 1]`; the file has `x`"),
        (&sine, vec![], "no array `x` for input `x: f32[B, 1]`; the file has no arrays"),
        (
            &sine,
            vec![("x", f(&[8, 1])), ("y", f(&[7, 1]))],
            "array `y` has shape [7, 1], but target `y` is f32[B, 1] and B = 8 from array `x`",
        ),
        (
            &sine,
            vec![("x", f(&[8, 2])), ("y", f(&[8, 1]))],
            "array `x` has shape [8, 2], but input `x` is f32[B, 1] (axis 1 must be 1)",
        ),
        (
            &sine,
            vec![("x", f(&[8])), ("y", f(&[8, 1]))],
            "array `x` has shape [8], but input `x` is f32[B, 1] (2 axes, not 1)",
        ),
        (
            &sine,
            vec![("x", i(&[8, 1])), ("y", f(&[8, 1]))],
            "array `x` holds integers, but input `x` is f32[B, 1]",
        ),
        (
            &digits,
            vec![("x", f(&[4, 64])), ("y", f(&[4]))],
            "array `y` holds floats, but target `y` is i32[B]",
        ),
    ];
    let path = Path::new("batch.npz");
    for (graph, arrays, want) in cases {
        let arrays: BTreeMap<String, ArrayValue> =
            arrays.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
        match npz::batch_inputs(graph, path, &arrays) {
            Ok(inputs) => {
                assert_eq!(want, "", "expected an error");
                let mut names: Vec<&String> = inputs.keys().collect();
                names.sort();
                assert_eq!(names, ["x", "y"]);
            }
            Err(e) => assert_eq!(e.to_string(), format!("batch.npz: {want}")),
        }
    }
}

// ---------------------------------------------------------------------------
// The commands

/// Loss and gradients of sine through the library API, with the parameters
/// of `params` and the batch (x, y).
fn library_gradients(
    params: &Path,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
    seed: u64,
) -> (f32, Vec<(String, ArrayD<f32>)>) {
    let module = compile("models/sine.nn");
    let backward = nnc_compiler::pipeline::grad(&module).expect("grad graph");
    let file = tensor_file::load(params).expect("params");
    let mut inputs: HashMap<String, Tensor<f32>> = HashMap::new();
    for (_, node) in backward.graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let value = match kind {
            InputKind::Param { .. } => Tensor::Float(file.get(name).expect(name).clone()),
            InputKind::Data => Tensor::Float(x.clone()),
            InputKind::Target => Tensor::Float(y.clone()),
            InputKind::Key => {
                Tensor::Int(ArrayD::from_shape_vec(IxDyn(&[2]), vec![seed as i32, 0]).expect("key"))
            }
            other => panic!("unexpected input {name}: {other:?}"),
        };
        inputs.insert(name.clone(), value);
    }
    let results = interp::run::<f32>(&backward.graph, &inputs).expect("run");
    let loss_name = &backward.graph.outputs.iter().find(|o| o.kind == OutputKind::Loss).expect("loss").name;
    let get = |n: &str| results.iter().find(|(r, _)| r == n).expect(n).1.as_float().expect("float").clone();
    let loss = get(loss_name).iter().copied().next().expect("scalar");
    let grads = backward.grads.iter().map(|g| (g.name.clone(), get(&format!("grad.{}", g.name)))).collect();
    (loss, grads)
}

#[test]
fn init_then_grad_matches_the_library_bit_for_bit() {
    let dir = TempDir::new("sine_grad");
    let (params, batch, grads) = (dir.path("p.safetensors"), dir.path("b.npz"), dir.path("g.safetensors"));
    let (x, y) = sine_batch(&batch);

    let out = nnc(&["init", "models/sine.nn", "-o", s(&params)]);
    let stdout = expect_status(&out, 0, "init");
    assert_eq!(stdout, format!("wrote 6 tensors (4,353 parameters, seed 1) to {}\n", params.display()));
    // The seed defaults to the train section's (1).
    let module = compile("models/sine.nn");
    let file = tensor_file::load(&params).expect("params");
    let want = init::initial_values(&module.train_graph, 1).expect("init");
    for (name, value) in &want {
        assert_eq!(bits(file.get(name).expect(name)), bits(value), "{name}");
    }

    let out = nnc(&["grad", "models/sine.nn", "--params", s(&params), "--data", s(&batch), "-o", s(&grads)]);
    let stdout = expect_status(&out, 0, "grad");
    let (loss, want_grads) = library_gradients(&params, &x, &y, 1);
    assert_eq!(stdout, format!("loss = {loss}\n"));
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");

    let written = tensor_file::load(&grads).expect("grads");
    assert_eq!(written.tensors.len(), want_grads.len());
    for (name, value) in &want_grads {
        let got = written.get(name).unwrap_or_else(|| panic!("no gradient `{name}`"));
        assert_eq!(got.shape(), value.shape(), "{name}");
        assert_eq!(bits(got), bits(value), "{name}");
    }
    assert!(want_grads.iter().any(|(_, g)| g.iter().any(|&v| v != 0.0)), "all gradients are zero");
    assert_eq!(written.metadata.get("nnc.loss"), Some(&loss.to_string()));

    // Read with the safetensors crate: PyTorch's names and layouts.
    let bytes = std::fs::read(&grads).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("deserialize");
    let layouts: [(&str, &[usize]); 6] = [
        ("h.dense_1.weight", &[64, 1]),
        ("h.dense_1.bias", &[64]),
        ("h.dense_2.weight", &[64, 64]),
        ("h.dense_2.bias", &[64]),
        ("out.dense_1.weight", &[1, 64]),
        ("out.dense_1.bias", &[1]),
    ];
    let mut names = st.names();
    names.sort();
    let mut want_names: Vec<&str> = layouts.iter().map(|(n, _)| *n).collect();
    want_names.sort();
    assert_eq!(names, want_names);
    for (name, shape) in layouts {
        let view = st.tensor(name).expect(name);
        assert_eq!((view.dtype(), view.shape()), (safetensors::Dtype::F32, shape), "{name}");
    }
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).expect("metadata");
    assert_eq!(metadata.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str), Some("pt"));

    // A second run writes the same file (deterministic), replacing the first.
    let out = nnc(&["grad", "models/sine.nn", "--params", s(&params), "--data", s(&batch), "-o", s(&grads)]);
    expect_status(&out, 0, "second grad");
    assert_eq!(std::fs::read(&grads).expect("read"), bytes);
    assert_eq!(dir.files(), ["b.npz", "g.safetensors", "p.safetensors"]);
}

#[test]
fn grad_with_integer_labels_and_dropout() {
    let dir = TempDir::new("digits_grad");
    let (params, batch, grads) = (dir.path("p.safetensors"), dir.path("b.npz"), dir.path("g.safetensors"));
    expect_status(&nnc(&["init", "models/digits.nn", "--seed", "3", "-o", s(&params)]), 0, "init");
    write_npz(&batch, |npz| {
        npz.add_array("x", &Array2::from_shape_vec((4, 64), values(256, 5)).expect("x")).expect("x");
        npz.add_array("y", &Array1::from(vec![0i64, 9, 3, 3])).expect("y");
    });
    let run = |seed: &str| {
        let out = nnc(&[
            "grad",
            "models/digits.nn",
            "--params",
            s(&params),
            "--data",
            s(&batch),
            "-o",
            s(&grads),
            "--seed",
            seed,
        ]);
        let stdout = expect_status(&out, 0, "grad");
        (stdout, tensor_file::load(&grads).expect("grads"))
    };
    let (loss_a, grads_a) = run("1");
    let (loss_b, grads_b) = run("1");
    let (_, grads_c) = run("2");
    assert!(loss_a.starts_with("loss = "), "{loss_a}");
    assert_eq!((&loss_a, &grads_a), (&loss_b, &grads_b), "same seed, same dropout mask");
    assert_ne!(grads_a, grads_c, "the seed sets the dropout mask");
    let w = grads_a.get("h.dense_1.weight").expect("weight gradient");
    assert_eq!(w.shape(), &[128, 64]);
}

const BATCHNORM_MODEL: &str = "\
model bn {
  input  x: f32[B, 3]
  target y: f32[B, 2]

  h = x |> dense(4) |> batchnorm |> relu
  out = h |> dense(2)

  loss = mse(out, y)
}
";

#[test]
fn state_comes_from_the_params_file_or_its_initial_value() {
    let dir = TempDir::new("state");
    let model = dir.path("bn.nn");
    std::fs::write(&model, BATCHNORM_MODEL).expect("write model");
    let (params, batch, grads) = (dir.path("p.safetensors"), dir.path("b.npz"), dir.path("g.safetensors"));
    let stdout = expect_status(&nnc(&["init", s(&model), "-o", s(&params)]), 0, "init");
    assert_eq!(
        stdout,
        format!("wrote 8 tensors (34 parameters, 8 state values, seed 0) to {}\n", params.display())
    );
    let file = tensor_file::load(&params).expect("params");
    assert_eq!(
        file.get("h.batchnorm_1.running_var").expect("running_var").iter().collect::<Vec<_>>(),
        [&1.0; 4]
    );
    write_npz(&batch, |npz| {
        npz.add_array("x", &Array2::from_shape_vec((5, 3), values(15, 8)).expect("x")).expect("x");
        npz.add_array("y", &Array2::from_shape_vec((5, 2), values(10, 9)).expect("y")).expect("y");
    });
    let grad = |params: &Path| {
        let out = nnc(&["grad", s(&model), "--params", s(params), "--data", s(&batch), "-o", s(&grads)]);
        (expect_status(&out, 0, "grad"), tensor_file::load(&grads).expect("grads"))
    };
    let (loss_full, grads_full) = grad(&params);
    // Gradients are written for parameters only, not for state.
    let names: Vec<&str> = grads_full.names().collect();
    assert_eq!(
        names,
        [
            "h.batchnorm_1.bias",
            "h.batchnorm_1.weight",
            "h.dense_1.bias",
            "h.dense_1.weight",
            "out.dense_1.bias",
            "out.dense_1.weight"
        ]
    );

    // Without the state tensors, their initial values are used: same result.
    let only_params: Vec<(String, ArrayD<f32>)> =
        file.tensors.iter().filter(|(n, _)| !n.contains("running")).cloned().collect();
    let partial = dir.path("partial.safetensors");
    tensor_file::save(&partial, &only_params, &BTreeMap::new()).expect("save");
    let (loss_partial, grads_partial) = grad(&partial);
    assert_eq!(loss_full, loss_partial);
    assert_eq!(grads_full.tensors, grads_partial.tensors);

    // The library's feed gives the same state values.
    let graph = nnc_compiler::compile(BATCHNORM_MODEL).expect("compile").module.train_graph;
    let fed =
        feed::param_inputs(&graph, &tensor_file::load(&partial).expect("load"), &partial, 0).expect("feed");
    assert_eq!(fed["h.batchnorm_1.running_mean"], Tensor::Float(ArrayD::zeros(IxDyn(&[4]))));
}

#[test]
fn grad_reports_bad_inputs() {
    let dir = TempDir::new("grad_errors");
    let (params, batch, grads) = (dir.path("p.safetensors"), dir.path("b.npz"), dir.path("g.safetensors"));
    expect_status(&nnc(&["init", "models/sine.nn", "-o", s(&params)]), 0, "init");
    sine_batch(&batch);

    let other_params = dir.path("digits.safetensors");
    expect_status(&nnc(&["init", "models/digits.nn", "-o", s(&other_params)]), 0, "init digits");
    let corrupt = dir.path("corrupt.safetensors");
    let bytes = std::fs::read(&params).expect("read");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).expect("write");
    let nan_params = dir.path("nan.safetensors");
    let mut tensors = tensor_file::load(&params).expect("load").tensors;
    tensors[0].1[[3]] = f32::NAN;
    tensor_file::save(&nan_params, &tensors, &BTreeMap::new()).expect("save");
    let missing_tensor = dir.path("missing.safetensors");
    let mut tensors = tensor_file::load(&params).expect("load").tensors;
    tensors.retain(|(n, _)| n != "out.dense_1.bias");
    tensor_file::save(&missing_tensor, &tensors, &BTreeMap::new()).expect("save");

    let no_y = dir.path("no_y.npz");
    write_npz(&no_y, |npz| npz.add_array("x", &Array2::<f32>::zeros((8, 1))).expect("x"));
    let nan_batch = dir.path("nan.npz");
    write_npz(&nan_batch, |npz| {
        npz.add_array("x", &Array2::<f32>::zeros((8, 1))).expect("x");
        npz.add_array("y", &Array2::from_elem((8, 1), f32::INFINITY)).expect("y");
    });
    let bad_b = dir.path("bad_b.npz");
    write_npz(&bad_b, |npz| {
        npz.add_array("x", &Array2::<f32>::zeros((8, 1))).expect("x");
        npz.add_array("y", &Array2::<f32>::zeros((4, 1))).expect("y");
    });

    let p = |path: &Path| path.display().to_string();
    let cases: Vec<(&str, PathBuf, PathBuf, String)> = vec![
        ("missing params", dir.path("none.safetensors"), batch.clone(), format!("{}: cannot read: No such file or directory", p(&dir.path("none.safetensors")))),
        ("corrupt params", corrupt.clone(), batch.clone(), format!("{}: truncated or corrupt", p(&corrupt))),
        ("params of another model", other_params.clone(), batch.clone(), format!("{}: tensor `h.dense_1.weight` has shape [128, 64], but parameter `h.dense_1.weight` is f32[64, 1]", p(&other_params))),
        ("missing tensor", missing_tensor.clone(), batch.clone(), format!("{}: no tensor `out.dense_1.bias` for parameter `out.dense_1.bias: f32[1]`; the file has 5 tensors: `h.dense_1.bias`, `h.dense_1.weight`, `h.dense_2.bias`, `h.dense_2.weight`, `out.dense_1.weight`", p(&missing_tensor))),
        ("NaN parameter", nan_params.clone(), batch.clone(), format!("{}: tensor `h.dense_1.bias` has the value NaN at index [3]", p(&nan_params))),
        ("missing batch", params.clone(), dir.path("none.npz"), format!("{}: cannot read", p(&dir.path("none.npz")))),
        ("missing array", params.clone(), no_y.clone(), format!("{}: no array `y` for target `y: f32[B, 1]`; the file has `x`", p(&no_y))),
        ("infinite target", params.clone(), nan_batch.clone(), format!("{}: array `y`: infinite value at index [0, 0]", p(&nan_batch))),
        ("inconsistent batch size", params.clone(), bad_b.clone(), format!("{}: array `y` has shape [4, 1], but target `y` is f32[B, 1] and B = 8 from array `x`", p(&bad_b))),
    ];
    for (what, params, data, want) in cases {
        let out =
            nnc(&["grad", "models/sine.nn", "--params", s(&params), "--data", s(&data), "-o", s(&grads)]);
        expect_status(&out, 2, what);
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with(&format!("error: {want}")), "{what}: stderr:\n{stderr}");
        assert!(out.stdout.is_empty(), "{what}");
        assert!(!grads.exists(), "{what}: a gradient file was written");
    }

    // An unwritable output is an I/O error too.
    let out = nnc(&["grad", "models/sine.nn", "--params", s(&params), "--data", s(&batch), "-o", s(&dir.0)]);
    expect_status(&out, 2, "output is a directory");
    // A program with errors exits with 1, before any file is read.
    let out = nnc(&[
        "grad",
        "--color",
        "never",
        "tests/ui/unknown_layer.nn",
        "--params",
        "x",
        "--data",
        "y",
        "-o",
        "z",
    ]);
    expect_status(&out, 1, "compile errors");
}

#[test]
fn init_reports_bad_output_paths() {
    let dir = TempDir::new("init_errors");
    let cases = [("directory", dir.0.clone()), ("missing directory", dir.path("a/b.safetensors"))];
    for (what, target) in cases {
        let out = nnc(&["init", "models/sine.nn", "-o", s(&target)]);
        expect_status(&out, 2, what);
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {}: cannot write", target.display())),
            "{what}: {stderr}"
        );
    }
    assert!(dir.files().is_empty(), "temporary files left: {:?}", dir.files());
}

#[test]
fn ir_prints_the_gradient_and_training_stages() {
    for (stage, wants) in [
        ("grad", &["value \"grad.h.dense_1.weight\""][..]),
        ("train", &["param \"h.dense_1.weight\"", "loss"][..]),
        ("opt", &["param \"h.dense_1.weight\""][..]),
    ] {
        let out = nnc(&["ir", "models/sine.nn", "--stage", stage]);
        let stdout = expect_status(&out, 0, stage);
        for want in wants {
            assert!(stdout.contains(want), "--stage {stage} lacks {want}:\n{stdout}");
        }
        let graph =
            nnc_compiler::ir::parse::parse(&stdout).unwrap_or_else(|e| panic!("--stage {stage}: {e:?}"));
        assert!(nnc_compiler::ir::verify::verify(&graph).is_ok(), "--stage {stage} does not verify");
    }
    let out = nnc(&["ir", "models/sine.nn", "--stage", "grad", "--mode", "infer"]);
    expect_status(&out, 2, "--mode with --stage grad");
    assert_eq!(
        text(&out.stderr),
        "error: `--mode` applies to `--stage forward`, `fused`, `plan` and `clif` only\n"
    );
}

#[test]
fn bench_prints_the_documented_json_keys() {
    let out =
        nnc(&["bench", "models/digits.nn", "--threads", "2", "--steps", "2", "--warmup", "1", "--json"]);
    let stdout = expect_status(&out, 0, "bench --json");
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for key in ["compile_ms", "step_ms", "samples_per_s", "peak_bytes", "threads", "batch"] {
        assert!(value.get(key).is_some_and(|v| v.is_number()), "key {key} missing in {stdout}");
    }
    assert_eq!(value["threads"], 2);
    assert!(value["final_loss"].as_f64().is_some_and(f64::is_finite), "{stdout}");
    let out = nnc(&["bench", "models/digits.nn", "--steps", "1", "--warmup", "0", "--profile"]);
    let stdout = expect_status(&out, 0, "bench --profile");
    assert!(stdout.contains("per kernel") && stdout.contains("matmul"), "{stdout}");
    let out = nnc(&["bench", "models/missing.nn"]);
    assert_eq!(out.status.code(), Some(2), "a missing file is a usage error");
}

#[test]
fn ir_clif_prints_every_generated_kernel() {
    let out = nnc(&["ir", "models/sine.nn", "--stage", "clif", "--batch", "3"]);
    let stdout = expect_status(&out, 0, "--stage clif");
    assert!(stdout.contains("; kernel k0") && stdout.contains("function"), "{stdout}");
    assert!(stdout.contains("f32x4"), "vector code expected:\n{stdout}");
}

#[test]
fn help_of_the_new_commands_has_examples() {
    for command in ["init", "grad"] {
        let out = nnc(&[command, "--help"]);
        let stdout = expect_status(&out, 0, command);
        assert!(stdout.contains("Examples:") && stdout.contains(&format!("nnc {command} ")), "{stdout}");
    }
    let out = nnc(&["ir", "--help"]);
    let stdout = expect_status(&out, 0, "ir --help");
    for stage in ["grad", "train", "opt"] {
        assert!(stdout.contains(stage), "ir --help lacks {stage}");
    }
}
