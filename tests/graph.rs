//! `nnc graph`: pictures of zoo models at every stage are well-formed SVG
//! with one box per box of the picture, no two boxes overlapping, every
//! arrow from the border of one box to the border of another, and a tooltip
//! naming the source lines of each box; the DOT text of a small model is
//! snapshot-tested; bad input is a clear error without a panic.

mod common;

use std::path::{Path, PathBuf};

use common::{compile_file, nnc, read, root, text};
use nnc::cli::GraphStage;
use nnc_compiler::ir::Mode;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-graph-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A box of the SVG: its id, classes, rectangle and tooltip.
struct SvgBox {
    id: String,
    class: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    title: String,
}

/// An arrow of the SVG: its style, the ids of its boxes and its end points.
struct SvgEdge {
    class: String,
    from: String,
    to: String,
    start: (f64, f64),
    end: (f64, f64),
}

fn number(node: roxmltree::Node, attribute: &str) -> f64 {
    node.attribute(attribute)
        .unwrap_or_else(|| panic!("<{}> has no {attribute}", node.tag_name().name()))
        .parse()
        .unwrap_or_else(|e| panic!("{attribute}: {e}"))
}

/// The first and last point of an SVG path made of M, L and C commands.
fn ends(d: &str) -> ((f64, f64), (f64, f64)) {
    let numbers: Vec<f64> = d
        .split(|c: char| c.is_ascii_alphabetic() || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap_or_else(|e| panic!("{t} in {d}: {e}")))
        .collect();
    assert!(numbers.len() >= 4 && numbers.len().is_multiple_of(2), "path {d}");
    ((numbers[0], numbers[1]), (numbers[numbers.len() - 2], numbers[numbers.len() - 1]))
}

/// Parses the SVG (which must be well-formed XML) into boxes and arrows.
fn parse_svg(svg: &str) -> (Vec<SvgBox>, Vec<SvgEdge>) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut boxes = vec![];
    let mut edges = vec![];
    for node in doc.descendants().filter(|n| n.is_element()) {
        let class = node.attribute("class").unwrap_or_default();
        if node.tag_name().name() == "g" && class.split(' ').next() == Some("node") {
            let rect = node.children().find(|c| c.has_tag_name("rect")).expect("a box has a rect");
            let title = node.children().find(|c| c.has_tag_name("title")).expect("a box has a title");
            boxes.push(SvgBox {
                id: node.attribute("id").expect("a box has an id").to_string(),
                class: class.to_string(),
                x: number(rect, "x"),
                y: number(rect, "y"),
                w: number(rect, "width"),
                h: number(rect, "height"),
                title: title.text().unwrap_or_default().to_string(),
            });
        } else if node.tag_name().name() == "path" && class.split(' ').next() == Some("edge") {
            let (start, end) = ends(node.attribute("d").expect("an arrow has a path"));
            edges.push(SvgEdge {
                class: class.to_string(),
                from: node.attribute("data-from").expect("data-from").to_string(),
                to: node.attribute("data-to").expect("data-to").to_string(),
                start,
                end,
            });
        }
    }
    (boxes, edges)
}

/// `point` lies on the top or bottom border of `b`.
fn on_border(point: (f64, f64), b: &SvgBox) -> bool {
    let eps = 0.02;
    let on_row = (point.1 - b.y).abs() < eps || (point.1 - (b.y + b.h)).abs() < eps;
    on_row && point.0 >= b.x - eps && point.0 <= b.x + b.w + eps
}

fn overlap(a: &SvgBox, b: &SvgBox) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// Draws `model` at `stage` and checks the SVG against the picture the
/// library builds for it. Returns the boxes and arrows.
fn check_svg(model: &str, stage: GraphStage, dir: &Path) -> (Vec<SvgBox>, Vec<SvgEdge>) {
    check_svg_with(model, stage, false, dir)
}

/// [`check_svg`], with `--by-layer` when `by_layer`.
fn check_svg_with(model: &str, stage: GraphStage, by_layer: bool, dir: &Path) -> (Vec<SvgBox>, Vec<SvgEdge>) {
    let name = format!("{}-{stage:?}-{by_layer}.svg", model.replace('/', "_"));
    let path = dir.join(&name);
    let stage_name = format!("{stage:?}").to_lowercase();
    let mut args = vec!["graph", model, "--stage", &stage_name, "-o", path.to_str().expect("utf-8 path")];
    if by_layer {
        args.push("--by-layer");
    }
    let out = nnc(&args);
    assert!(out.status.success(), "{model} {stage_name}: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("wrote {}", path.display())), "{}", text(&out.stdout));
    let svg = read(&path);
    let (boxes, edges) = parse_svg(&svg);

    // One box per box of the picture, one arrow per arrow.
    let module = compile_file(model);
    let source = read(&root().join(model));
    let picture =
        nnc::graph::picture_of(&module, &source, stage, Mode::Train, by_layer).expect("the picture");
    assert_eq!(boxes.len(), picture.items.len(), "{model} {stage_name}: boxes");
    assert_eq!(edges.len(), picture.edges.len(), "{model} {stage_name}: arrows");

    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(!overlap(a, b), "{model} {stage_name}: boxes {} and {} overlap", a.id, b.id);
        }
    }
    let by_id = |id: &str| boxes.iter().find(|b| b.id == id).unwrap_or_else(|| panic!("no box {id}"));
    for e in &edges {
        assert!(
            on_border(e.start, by_id(&e.from)),
            "{model} {stage_name}: arrow {}→{} starts off its box",
            e.from,
            e.to
        );
        assert!(
            on_border(e.end, by_id(&e.to)),
            "{model} {stage_name}: arrow {}→{} ends off its box",
            e.from,
            e.to
        );
    }

    // Tooltips: every layer box names its source lines with their text.
    let lines: Vec<&str> = source.lines().collect();
    for b in boxes.iter().filter(|b| b.class.contains("layer") || b.class.contains("kernel")) {
        let quoted: Vec<&str> = b.title.lines().filter(|l| l.starts_with(&format!("{model}:"))).collect();
        if b.class.contains("layer") {
            assert!(
                !quoted.is_empty(),
                "{model} {stage_name}: box {} names no source line:\n{}",
                b.id,
                b.title
            );
        }
        for q in quoted {
            let rest = &q[model.len() + 1..];
            let (number, code) = rest.split_once(": ").unwrap_or_else(|| panic!("{q}"));
            let number: usize = number.parse().unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(code, lines[number - 1].trim(), "{model} {stage_name}: {q}");
        }
    }
    (boxes, edges)
}

const STAGES: [GraphStage; 3] = [GraphStage::Forward, GraphStage::Grad, GraphStage::Fused];

#[test]
fn mlp_at_every_stage() {
    let dir = scratch("mlp");
    for stage in STAGES {
        check_svg("models/sine.nn", stage, &dir);
    }
    let (boxes, _) = check_svg("models/sine.nn", GraphStage::Forward, &dir);
    let classes: Vec<&str> = boxes.iter().map(|b| b.class.as_str()).collect();
    assert_eq!(
        classes.iter().filter(|c| **c == "node layer").count(),
        6,
        "3 dense, 2 tanh, mse: {classes:?}"
    );
    assert_eq!(classes.iter().filter(|c| **c == "node input").count(), 2, "x and y: {classes:?}");
    assert_eq!(classes.iter().filter(|c| **c == "node output").count(), 2, "loss and out: {classes:?}");
    let dense =
        boxes.iter().find(|b| b.title.starts_with("dense → [B, 64]\nh.dense_2")).expect("the second dense");
    assert!(dense.title.contains("models/sine.nn:7: h = h |> dense(64) |> tanh"), "{}", dense.title);
    assert!(dense.title.contains("reads param h.dense_2.weight: f32[64, 64]"), "{}", dense.title);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The U-Net's concatenation and the residual adds receive skip arrows.
#[test]
fn unet_and_residual_skips_are_drawn() {
    let dir = scratch("unet");
    for stage in STAGES {
        check_svg("models/resunet.nn", stage, &dir);
    }
    let (boxes, edges) = check_svg("models/resunet.nn", GraphStage::Forward, &dir);
    let target = |title: &str| -> usize {
        edges
            .iter()
            .filter(|e| e.class == "edge skip")
            .filter(|e| boxes.iter().any(|b| b.id == e.to && b.title.starts_with(title)))
            .count()
    };
    assert_eq!(target("concat → [B, 48, 32, 32]"), 1, "the U-Net skip into the concatenation");
    assert_eq!(target("add → "), 3, "one residual skip per residual block");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resnet_and_lstm_at_every_stage() {
    let dir = scratch("resnet-lstm");
    for model in ["models/storm_resnet.nn", "models/nino12_lstm.nn"] {
        for stage in STAGES {
            check_svg(model, stage, &dir);
        }
    }
    // The LSTM (one fused node over its 24 steps) is one box, and its
    // backward pass one.
    let (boxes, _) = check_svg("models/nino12_lstm.nn", GraphStage::Grad, &dir);
    let lstm: Vec<&str> =
        boxes.iter().filter(|b| b.title.contains("h.lstm_1")).map(|b| b.class.as_str()).collect();
    assert_eq!(lstm, ["node layer", "node backward"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--by-layer` gathers the hundreds of kernels of a GRU unrolled over its
/// steps into a box per layer, backward pass and update, each listing its
/// kernels.
#[test]
fn fused_kernels_by_layer() {
    let dir = scratch("by-layer");
    let (kernels, _) = check_svg("models/nino12_gru.nn", GraphStage::Fused, &dir);
    let (boxes, _) = check_svg_with("models/nino12_gru.nn", GraphStage::Fused, true, &dir);
    assert!(boxes.len() * 5 < kernels.len(), "{} boxes for {} kernels", boxes.len(), kernels.len());
    let gru = boxes.iter().find(|b| b.title.starts_with("gru → [B, 16]\nh.gru_1 · ")).expect("the GRU's box");
    assert!(gru.title.contains(" kernels\n"), "{}", gru.title);
    assert!(gru.title.contains("models/nino12_gru.nn:9: h = x |> gru(16, return: last)"), "{}", gru.title);
    fails(&["graph", "models/sine.nn", "--by-layer"], 2, "`--by-layer` applies to `--stage fused` only");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DOT text of a small model, written to stdout without `-o`.
#[test]
fn dot_text_of_the_sine_mlp() {
    let out = nnc(&["graph", "models/sine.nn"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    let dash = nnc(&["graph", "models/sine.nn", "-o", "-"]);
    assert_eq!(text(&dash.stdout), dot, "`-o -` is stdout");
    insta::assert_snapshot!(dot);
}

/// PNG and .dot files are written by extension.
#[test]
fn png_and_dot_files() {
    let dir = scratch("files");
    let png = dir.join("sine.png");
    let out = nnc(&["graph", "models/sine.nn", "-o", png.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&png).expect("the PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let dot = dir.join("sine.dot");
    let out = nnc(&["graph", "models/sine.nn", "--stage", "grad", "-o", dot.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(read(&dot).starts_with("digraph \"model sine · forward and backward pass"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs nnc and checks that it failed with `code` and an error message
/// containing `expected`, without a panic.
fn fails(args: &[&str], code: i32, expected: &str) {
    let out = nnc(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: expected `{expected}` in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = scratch("bad");
    fails(
        &["graph", "models/no_such_model.nn"],
        2,
        "error: cannot read models/no_such_model.nn: No such file",
    );
    let bad = dir.join("bad.nn");
    std::fs::write(&bad, "model m {\n  input x: f32[B, 2]\n  h = x |> dense(4\n}\n").expect("write");
    fails(&["graph", bad.to_str().expect("utf-8")], 1, "error");
    let unknown = dir.join("unknown.nn");
    std::fs::write(&unknown, "model m {\n  input x: f32[B, 2]\n  h = x |> denze(4)\n  output h\n}\n")
        .expect("write");
    fails(&["graph", unknown.to_str().expect("utf-8")], 1, "denze");
    fails(&["graph", "models/sine.nn", "--stage", "plan"], 2, "invalid value 'plan' for '--stage <STAGE>'");
    fails(
        &["graph", "models/sine.nn", "-o", "sine.pdf"],
        2,
        "error: sine.pdf: graph pictures are written as .svg, .png or .dot",
    );
    fails(&["graph", "models/sine.nn", "--stage", "grad", "--mode", "infer"], 2, "`--mode` applies to");
    assert!(!root().join("sine.pdf").exists());
    fails(
        &["graph", "models/sine.nn", "-o", "no/such/dir/sine.svg"],
        2,
        "error: cannot write no/such/dir/sine.svg: there is no directory no/such/dir",
    );

    // `--layout dot` without Graphviz on PATH.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(root())
        .env("PATH", &dir)
        .args(["graph", "models/sine.nn", "--layout", "dot", "-o"])
        .arg(dir.join("sine.svg"))
        .output()
        .expect("runs nnc");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`--layout dot` runs Graphviz's `dot`, which is not on PATH"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `nnc graph --help` has examples, and the command is in the top-level help.
#[test]
fn help_has_examples() {
    let out = nnc(&["graph", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Examples:\n  nnc graph models/resunet.nn -o resunet.svg"), "{help}");
    assert!(help.contains("--stage <STAGE>"), "{help}");
    let top = text(&nnc(&["--help"]).stdout);
    assert!(top.contains("nnc graph models/resunet.nn -o resunet.svg"), "{top}");
}

/// With Graphviz on PATH, `--layout dot` draws the DOT text with it.
#[test]
fn graphviz_layout_when_dot_is_installed() {
    let installed = std::process::Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    if !installed {
        return;
    }
    let dir = scratch("graphviz");
    let svg = dir.join("resunet.svg");
    let out = nnc(&["graph", "models/resunet.nn", "--layout", "dot", "-o", svg.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let svg = read(&svg);
    let doc = roxmltree::Document::parse_with_options(&svg, options).expect("well-formed SVG");
    let titles = doc.descendants().filter(|n| n.has_tag_name("title")).count();
    assert!(titles > 30, "{titles} titles");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mode infer` draws the inference graph: batchnorm reads its running
/// statistics instead of updating them.
#[test]
fn inference_mode() {
    let module = compile_file("models/resunet.nn");
    let source = read(&root().join("models/resunet.nn"));
    let notes = |mode: Mode| -> Vec<String> {
        let picture =
            nnc::graph::picture_of(&module, &source, GraphStage::Forward, mode, false).expect("the picture");
        let batchnorm = picture
            .items
            .iter()
            .find(|i| i.subtitle.starts_with("e1.batchnorm_1"))
            .unwrap_or_else(|| panic!("{mode:?}: no batchnorm box"));
        batchnorm.notes.clone()
    };
    let train = notes(Mode::Train);
    assert!(train.contains(&"writes new state e1.batchnorm_1.running_mean".to_string()), "{train:?}");
    let infer = notes(Mode::Infer);
    assert!(infer.contains(&"reads state e1.batchnorm_1.running_mean: f32[16]".to_string()), "{infer:?}");
    assert!(!infer.iter().any(|n| n.starts_with("writes")), "{infer:?}");
    let fused =
        nnc::graph::picture_of(&module, &source, GraphStage::Fused, Mode::Infer, false).expect("the picture");
    assert!(fused.items.iter().all(|i| !i.backward), "no backward pass or update in inference");
}
