//! End-to-end runs of the `nnc` binary: output, exit codes and help texts.

mod common;

use common::{nnc, text};

use std::process::Output;

fn assert_no_panic(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "nnc panicked:\n{stderr}");
}

#[test]
fn check_sine_is_ok() {
    let out = nnc(&["check", "models/sine.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: models/sine.nn (model sine: 4,353 parameters)\n");
}

#[test]
fn check_several_files_prints_a_summary_line() {
    let out = nnc(&["check", "models/sine.nn", "models/digits.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("checked 2 files: all ok\n"), "stdout:\n{}", text(&out.stdout));
}

#[test]
fn check_goes_on_after_a_bad_file() {
    let out = nnc(&["check", "--color", "never", "models/does_not_exist.nn", "models/sine.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("ok: models/sine.nn"), "stdout:\n{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("checked 2 files: 1 ok, 1 file with errors"));
}

#[test]
fn missing_file_is_an_io_error() {
    let out = nnc(&["check", "models/x.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "error: cannot read models/x.nn: No such file or directory\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn non_utf8_file_is_an_io_error() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("latin1.nn");
    std::fs::write(&file, b"# caf\xe9\nmodel m {}\n").expect("write temp file");
    let out = nnc(&["check", &file.display().to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not UTF-8") && stderr.contains("line 1, column 6"), "stderr:\n{stderr}");
}

#[test]
fn summary_of_sine_has_the_parameter_total() {
    let out = nnc(&["summary", "models/sine.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // 64*1+64 + 64*64+64 + 64+1
    assert!(stdout.contains("4,353"), "stdout:\n{stdout}");
    assert!(stdout.contains("17,412 bytes"), "stdout:\n{stdout}");
}

#[test]
fn ir_prints_ast_and_forward_stages() {
    for args in [
        &["ir", "models/sine.nn", "--stage", "ast"][..],
        &["ir", "models/sine.nn", "--stage", "forward"],
        &["ir", "models/sine.nn", "--stage", "forward", "--mode", "infer"],
    ] {
        let out = nnc(args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: stderr:\n{}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{args:?}: no output");
    }
}

#[test]
fn unknown_stage_lists_the_valid_ones() {
    let out = nnc(&["ir", "models/sine.nn", "--stage", "bogus"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ast") && stderr.contains("forward"), "stderr:\n{stderr}");
}

#[test]
fn compile_errors_exit_with_1() {
    let out = nnc(&["summary", "--color", "never", "tests/ui/unknown_layer.nn"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error"), "stderr:\n{}", text(&out.stderr));
}

#[test]
fn help_of_every_command() {
    for args in [&["--help"][..], &["check", "--help"], &["ir", "--help"], &["summary", "--help"], &["help"]]
    {
        let out = nnc(args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}: stdout:\n{}", text(&out.stdout));
    }
    for command in ["check", "ir", "summary"] {
        let out = nnc(&[command, "--help"]);
        assert!(text(&out.stdout).contains("Examples:"), "`nnc {command} --help` has no examples");
    }
}

#[test]
fn no_arguments_prints_usage_and_exits_with_2() {
    let out = nnc(&[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage:"));
}

#[test]
fn ast_stage_shows_line_col_ranges_like_the_ir() {
    let out = nnc(&["ir", "models/sine.nn", "--stage", "ast"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let ast = text(&out.stdout);
    // every node but the file itself ends in `@LINE:COL-LINE:COL`
    for line in ast.lines().skip(1) {
        let (_, range) = line.rsplit_once(" @").unwrap_or_else(|| panic!("no range in {line:?}:\n{ast}"));
        let numbers: Vec<&str> = range.split(['-', ':']).collect();
        assert!(
            numbers.len() == 4 && numbers.iter().all(|n| n.parse::<u32>().is_ok_and(|n| n > 0)),
            "{line:?} has no line:col range:\n{ast}"
        );
    }
    assert!(ast.contains("\n  model sine @2:1-11:2\n"), "stdout:\n{ast}");
    assert!(ast.contains("\n    let h @6:3-6:29\n"), "stdout:\n{ast}");
    // the forward stage shows the declaration of `x` at the same range
    let input = "    input x: f32[B, 1] @3:3-3:22\n";
    assert!(ast.contains(input), "stdout:\n{ast}");
    let forward = text(&nnc(&["ir", "models/sine.nn", "--stage", "forward"]).stdout);
    let x = forward.lines().find(|l| l.contains("input \"x\"")).unwrap_or_else(|| panic!("{forward}"));
    assert!(x.ends_with("@3:3-3:22"), "forward stage: {x:?}");
}

#[test]
fn check_suggests_close_names_and_the_leading_zero() {
    // (file, what stderr must contain, what it must not)
    let cases: [(&str, &str, &str); 4] = [
        ("tests/ui/swapped_letters.nn", "help: did you mean `relu`?", "`elu`"),
        ("tests/ui/capitalised_builtin.nn", "help: did you mean `relu`?", "`elu`"),
        ("tests/ui/no_close_builtin.nn", "unknown function `mamba`", "did you mean"),
        ("tests/ui/leading_dot_number.nn", "help: write `0.5`", "panicked"),
    ];
    for (file, want, never) in cases {
        let out = nnc(&["check", "--color", "never", file]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(want), "{file}: stderr lacks {want:?}:\n{stderr}");
        assert!(!stderr.contains(never), "{file}: stderr has {never:?}:\n{stderr}");
    }
}

/// A model reading `const mask: f32[4] = npy("mask.npy")` from its own
/// directory: `nnc check` compiles it from any working directory, and
/// without the file exits with 1 and the loader's message.
#[test]
fn check_reads_a_const_file_next_to_the_model() {
    use ndarray_npy::WriteNpyExt;
    let dir = std::env::temp_dir().join(format!("nnc-cli-const-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("masked.nn");
    std::fs::write(
        &model,
        "model masked {\n  const mask: f32[4] = npy(\"mask.npy\")\n  input x: f32[B, 4]\n  \
         y = x * mask\n  output y\n}\n",
    )
    .expect("write model");
    let model = model.display().to_string();

    let missing = nnc(&["check", "--color", "never", &model]);
    assert_no_panic(&missing);
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "stderr:\n{stderr}");
    let message =
        format!("cannot read `mask.npy` ({}): No such file or directory", dir.join("mask.npy").display());
    assert!(stderr.contains(&message), "stderr:\n{stderr}");
    assert!(missing.stdout.is_empty(), "stdout:\n{}", text(&missing.stdout));

    let mask = ndarray::arr1(&[1.0f32, 0.0, 1.0, 1.0]);
    let file = std::fs::File::create(dir.join("mask.npy")).expect("create mask.npy");
    mask.write_npy(file).expect("write mask.npy");
    let out = nnc(&["check", "--color", "never", &model]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("ok: {model} (model masked: 0 parameters)\n"));
}

#[test]
fn a_step_larger_than_the_memory_is_refused_with_the_figures() {
    // A batch of 4·10⁹ examples: terabytes, more than any machine has,
    // refused after planning and before anything is allocated.
    let out =
        nnc(&["bench", "models/bench/mlp.nn", "--batch", "4000000000", "--steps", "1", "--warmup", "0"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("the compiled step (its arena and inputs) needs "), "{err}");
    assert!(err.contains("TiB") && err.contains("of memory are available; a smaller `batch`"), "{err}");
}

#[test]
fn a_data_set_larger_than_the_memory_is_refused_before_it_is_read() {
    // An .npy file of 2⁴⁰ bytes (1 TiB: its header declares [2³⁶, 4]
    // f32), sparse on disk: refused from its size and header, before the
    // loader reads or allocates any of it.
    let dir = std::env::temp_dir().join(format!("nnc-cli-huge-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rows: u64 = 1 << 36;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, 4), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut head = b"\x93NUMPY\x01\x00".to_vec();
    head.extend_from_slice(&(header.len() as u16).to_le_bytes());
    head.extend_from_slice(header.as_bytes());
    std::fs::write(dir.join("x.npy"), &head).expect("write x.npy");
    let x = std::fs::OpenOptions::new().write(true).open(dir.join("x.npy")).expect("open x.npy");
    x.set_len(head.len() as u64 + rows * 16).expect("a sparse 1 TiB file");
    drop(x);
    ndarray_npy::write_npy(dir.join("y.npy"), &ndarray::Array2::<f32>::zeros((4, 1))).expect("write y.npy");
    let model = dir.join("huge.nn");
    let source = std::fs::read_to_string(common::root().join("models/sine.nn"))
        .expect("sine.nn")
        .replace("f32[B, 1]\n  target", "f32[B, 4]\n  target")
        .replace("synthetic.sine(n: 2048, noise: 0.0)", "npy(x: \"x.npy\", y: \"y.npy\")");
    assert!(source.contains("npy(x: \"x.npy\"") && source.contains("f32[B, 4]"), "{source}");
    std::fs::write(&model, source).expect("write model");

    let out = nnc(&["train", "--color", "never", model.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("loading the data needs 2.000 TiB"), "{err}");
    assert!(err.contains("of memory are available; the data is read whole into memory, so fewer"), "{err}");
    assert!(err.contains("x.npy"), "the message names the files: {err}");
}

#[test]
fn a_warm_up_as_long_as_the_run_is_a_warning_naming_both() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-warmup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("m.nn");
    let source = std::fs::read_to_string(common::root().join("models/sine.nn"))
        .expect("sine.nn")
        .replace("epochs = 200", "epochs = 20\n  schedule = cosine(warmup: 20)");
    assert!(source.contains("cosine(warmup: 20)"), "sine.nn has `epochs = 200`");
    std::fs::write(&model, source).expect("write model");
    let out = nnc(&["check", "--color", "never", model.to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("warning: the warm-up of 20 epochs is not shorter than the run of 20 epochs"),
        "{err}"
    );
    assert!(err.contains("the run's length") && err.contains("never decays"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
