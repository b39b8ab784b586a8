//! `nnc plot`: learning curves from a run directory's `log.jsonl`.

use std::path::PathBuf;

use nnc::plot::{plot, Format, PlotOptions};

/// A fresh, empty directory for one test case.
fn run_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("plot-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn write_log(dir: &std::path::Path, lines: &[&str]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("log.jsonl"), text).unwrap_or_else(|e| panic!("cannot write the log: {e}"));
}

/// The contents of the SVG document's `<text>` elements, in document order.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

const LOG: &[&str] = &[
    r#"{"epoch":1,"step":10,"lr":0.001,"seconds":0.5,"samples_per_s":640,"train_loss":2.0,"val_loss":2.2,"val_rmse":1.4,"val_csi@0.5":0.1}"#,
    r#"{"epoch":2,"step":20,"lr":0.001,"seconds":0.5,"samples_per_s":640,"train_loss":1.0,"val_loss":1.3,"val_rmse":1.1,"val_csi@0.5":null}"#,
    "",
    r#"{"epoch":3,"step":30,"lr":0.001,"seconds":0.5,"samples_per_s":640,"train_loss":0.5,"val_loss":0.9,"val_rmse":0.9,"val_csi@0.5":0.3,"train_rmse":0.7}"#,
    // a resumed run repeats epoch 3; this line wins
    r#"{"epoch":3,"step":30,"lr":0.001,"seconds":0.5,"samples_per_s":640,"train_loss":0.4,"val_loss":0.8,"val_rmse":0.8,"val_csi@0.5":0.35,"train_rmse":0.6}"#,
];

#[test]
fn a_small_log_gives_an_svg_with_every_panel_and_series() {
    // (case, log, expected texts)
    let no_validation: &[&str] = &[r#"{"epoch":1,"train_loss":1e-3}"#, r#"{"epoch":2,"train_loss":1e-5}"#];
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "metrics",
            LOG,
            &[
                "loss",
                "rmse",
                "csi@0.5",
                "train_loss",
                "val_loss",
                "val_rmse",
                "train_rmse",
                "val_csi@0.5",
                "epoch",
            ],
        ),
        ("no-validation", no_validation, &["loss", "train_loss", "epoch"]),
    ];
    for (case, log, want) in cases {
        let dir = run_dir(case);
        write_log(&dir, log);
        let written = plot(&dir, &PlotOptions::default()).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(written, dir.join("curves.svg"), "{case}");
        let svg = std::fs::read_to_string(&written).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(svg.starts_with("<svg"), "{case}: not an SVG document");
        let drawn = texts(&svg);
        for text in want {
            assert!(drawn.iter().any(|t| t == text), "{case}: the SVG lacks the text {text:?} in {drawn:?}");
        }
        // Nothing but the plot is left in the run directory.
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        assert_eq!(names, ["curves.svg", "log.jsonl"], "{case}");
    }
}

#[test]
fn metric_panels_follow_the_logs_order() {
    let dir = run_dir("order");
    write_log(&dir, LOG);
    let svg = std::fs::read_to_string(plot(&dir, &PlotOptions::default()).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_default();
    let drawn = texts(&svg);
    let at = |title: &str| drawn.iter().position(|t| t == title).unwrap_or_else(|| panic!("no {title}"));
    assert!(at("loss") < at("rmse") && at("rmse") < at("csi@0.5"), "panels out of order");
}

#[test]
fn explicit_output_path() {
    let dir = run_dir("output");
    write_log(&dir, LOG);
    let out = dir.join("figure.svg");
    let opts = PlotOptions { output: Some(out.clone()), format: Format::Svg };
    assert_eq!(plot(&dir, &opts), Ok(out.clone()));
    assert!(out.is_file());
}

/// A bad run directory: its name, its log lines (`None`: no log) and words the
/// error must contain.
type BadRun<'a> = (&'a str, Option<&'a [&'a str]>, &'a [&'a str]);

#[test]
fn bad_run_directories_are_errors() {
    // (case, log lines or None for no log, words the error must contain)
    let cases: [BadRun; 6] = [
        ("no-log", None, &["log.jsonl"]),
        ("not-json", Some(&[LOG[0], "{\"epoch\": 2, \"train_loss\": "]), &["log.jsonl:2:", "not JSON"]),
        ("not-an-object", Some(&[LOG[0], LOG[1], "[1, 2]"]), &["log.jsonl:3:", "object"]),
        ("no-epoch", Some(&[r#"{"train_loss": 1.0}"#]), &["log.jsonl:1:", "epoch"]),
        ("text-value", Some(&[LOG[0], r#"{"epoch": 2, "val_rmse": "high"}"#]), &["log.jsonl:2:", "val_rmse"]),
        ("empty", Some(&[""]), &["log.jsonl", "no epochs"]),
    ];
    for (case, log, words) in cases {
        let dir = run_dir(case);
        if let Some(lines) = log {
            write_log(&dir, lines);
        }
        let err = plot(&dir, &PlotOptions::default()).expect_err(case);
        for w in words {
            assert!(err.contains(w), "{case}: {err:?} lacks {w:?}");
        }
        assert!(!dir.join("curves.svg").exists(), "{case}: a plot was written");
    }
    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plot-no-such-run");
    let err = plot(&missing, &PlotOptions::default()).expect_err("missing directory");
    assert!(err.contains("plot-no-such-run") && err.contains("no such directory"), "{err}");
}

/// A log whose loss falls over two decades and whose accuracy rises, with
/// per-variable metrics (`rmse.NAME`).
fn long_log(scale: f64) -> Vec<String> {
    (1..=30)
        .map(|e| {
            let e = e as f64;
            format!(
                r#"{{"epoch":{e},"train_loss":{},"val_loss":{},"val_accuracy":{},"val_rmse.p":{},"val_rmse.t":{},"val_rmse.u":{},"val_rmse.v":{}}}"#,
                scale * 0.8 / e.powf(1.3),
                scale * 0.9 / e.powf(1.1) + 0.02,
                0.95 + 0.03 * (1.0 - 1.0 / e),
                400.0 + 100.0 / e,
                3.0 + 1.0 / e,
                3.2 + 1.0 / e,
                3.4 + 1.0 / e,
            )
        })
        .collect()
}

/// The tick labels of the SVG: texts that parse as numbers.
fn number_texts(svg: &str) -> Vec<String> {
    texts(svg).into_iter().filter(|t| t.parse::<f64>().is_ok()).collect()
}

#[test]
fn log_axes_have_one_two_five_ticks_with_short_labels() {
    let dir = run_dir("ticks");
    let lines = long_log(1.0);
    write_log(&dir, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let svg = std::fs::read_to_string(plot(&dir, &PlotOptions::default()).expect("plot")).expect("svg");
    let numbers = number_texts(&svg);
    // The loss falls from about 0.9 to 0.02: every 1-2-5 tick in between is
    // labelled with the digits it needs.
    for want in ["0.02", "0.05", "0.1", "0.2", "0.5"] {
        assert!(numbers.iter().any(|t| t == want), "no tick {want} in {numbers:?}");
    }
    for label in &numbers {
        let digits = label.trim_start_matches('-').replace(['.', 'e', '-'], "");
        assert!(digits.len() <= 5, "tick label {label:?} has more digits than its spacing needs");
    }
    // Per-variable metrics are small multiples, each with its own title.
    let drawn = texts(&svg);
    for title in ["rmse.p", "rmse.t", "rmse.u", "rmse.v", "accuracy"] {
        assert!(drawn.iter().any(|t| t == title), "no panel {title}");
    }
}

#[test]
fn several_runs_are_overlaid_with_their_names() {
    let (a, b) = (run_dir("cmp-lr1e-3.run"), run_dir("cmp-lr3e-3.run"));
    let (la, lb) = (long_log(1.0), long_log(0.5));
    write_log(&a, &la.iter().map(String::as_str).collect::<Vec<_>>());
    write_log(&b, &lb.iter().map(String::as_str).collect::<Vec<_>>());
    let out = a.parent().expect("parent").join("plot-compare.svg");
    let opts = PlotOptions { output: Some(out.clone()), format: Format::Svg };
    assert_eq!(nnc::plot::plot_runs(&[a, b], &opts), Ok(out.clone()));
    let drawn = texts(&std::fs::read_to_string(&out).expect("svg"));
    for legend in ["plot-cmp-lr1e-3 val_loss", "plot-cmp-lr3e-3 train_loss", "plot-cmp-lr3e-3 val_rmse.v"] {
        assert!(drawn.iter().any(|t| t == legend), "no legend entry {legend:?} in {drawn:?}");
    }
}

#[test]
fn every_plot_renders_to_png_with_its_labels_inside_the_image() {
    use resvg::tiny_skia::Pixmap;
    let single = run_dir("png-single");
    let lines = long_log(1.0);
    write_log(&single, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let other = run_dir("png-other");
    let lines = long_log(0.3);
    write_log(&other, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let small = run_dir("png-small");
    write_log(&small, LOG);
    let cases: [(&str, Vec<PathBuf>); 3] = [
        ("curves", vec![single.clone()]),
        ("comparison", vec![single.clone(), other]),
        ("short", vec![small]),
    ];
    for (case, dirs) in cases {
        let out = single.parent().expect("parent").join(format!("plot-{case}.png"));
        let opts = PlotOptions { output: Some(out.clone()), format: Format::Svg };
        nnc::plot::plot_runs(&dirs, &opts).unwrap_or_else(|e| panic!("{case}: {e}"));
        let image = Pixmap::load_png(&out).unwrap_or_else(|e| panic!("{case}: not a PNG image: {e}"));
        assert_eq!(image.width(), 900, "{case}");
        let (w, h) = (image.width() as usize, image.height() as usize);
        let pixel = |x: usize, y: usize| image.pixels()[y * w + x].demultiply();
        let white = |x: usize, y: usize| {
            let p = pixel(x, y);
            p.red() > 245 && p.green() > 245 && p.blue() > 245
        };
        // Nothing is cut at the left edge: the labels fit their margin.
        assert!((0..h).all(|y| (0..4).all(|x| white(x, y))), "{case}: something is drawn at the left edge");
        // Text was drawn with the built-in font: dark pixels in the label
        // margin of the first panel.
        let dark = (0..320.min(h)).flat_map(|y| (4..90).map(move |x| (x, y))).filter(|&(x, y)| {
            let p = pixel(x, y);
            p.red() < 100 && p.green() < 100 && p.blue() < 100
        });
        assert!(dark.count() > 50, "{case}: no tick labels drawn");
        // The curves: the validation colour (red) in the plot area.
        let red = (0..h)
            .flat_map(|y| (100..w).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = pixel(x, y);
                p.red() > 180 && p.green() < 80 && p.blue() < 80
            })
            .count();
        assert!(red > 100, "{case}: no validation curve drawn");
    }
    let err = plot(&single, &PlotOptions { output: Some(single.join("x.gif")), format: Format::Svg })
        .expect_err("a .gif output");
    assert!(err.contains(".svg or .png"), "{err}");
}

// ---- prediction maps and scatter plots of trained runs ---------------------------------

use std::path::Path;
use std::process::{Command, Output};

/// Runs `nnc` in `dir`.
fn nnc_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run nnc: {e}"))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `model.nn` into a fresh directory and trains it for its epochs
/// on one thread; returns the directory.
fn trained(name: &str, model: &str, files: &[(&str, &ndarray::ArrayD<f32>)]) -> PathBuf {
    let dir = run_dir(name);
    for (file, a) in files {
        use ndarray_npy::WriteNpyExt;
        let f = std::fs::File::create(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        a.write_npy(f).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    std::fs::write(dir.join("model.nn"), model).unwrap_or_else(|e| panic!("cannot write the model: {e}"));
    let out = nnc_in(&dir, &["train", "model.nn", "--quiet", "--threads", "1"]);
    assert!(out.status.success(), "{name}: training failed: {}", stderr_of(&out));
    dir
}

/// Draws `args` of `nnc plot` in `dir` and reads the PNG written to `file`.
fn plotted(dir: &Path, args: &[&str], file: &str) -> resvg::tiny_skia::Pixmap {
    let mut all = vec!["plot", "model.run"];
    all.extend(args);
    all.extend(["-o", file]);
    let out = nnc_in(dir, &all);
    assert!(out.status.success(), "nnc {all:?}: {}", stderr_of(&out));
    resvg::tiny_skia::Pixmap::load_png(dir.join(file)).unwrap_or_else(|e| panic!("{file}: not a PNG: {e}"))
}

/// Pixels of `image` for which `keep(red, green, blue)` holds.
fn pixels(image: &resvg::tiny_skia::Pixmap, keep: impl Fn(u8, u8, u8) -> bool) -> usize {
    image.pixels().iter().map(|p| p.demultiply()).filter(|p| keep(p.red(), p.green(), p.blue())).count()
}

/// The distinct colours of `image` that are neither grey nor white.
fn distinct_colours(image: &resvg::tiny_skia::Pixmap) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for p in image.pixels() {
        let p = p.demultiply();
        let (r, g, b) = (p.red(), p.green(), p.blue());
        if r.max(g).max(b) - r.min(g).min(b) > 24 {
            seen.insert((r, g, b));
        }
    }
    seen.len()
}

/// 24 steps of a field moving one cell right per step; the target (the
/// next step) is missing in its top-left 2×2 cells.
fn moving_fields() -> (ndarray::ArrayD<f32>, ndarray::ArrayD<f32>) {
    let field = |t: usize, r: usize, c: usize| ((c as f32 - t as f32) * 0.7).sin() + 0.3 * r as f32;
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[24, 1, 8, 10]), |i| field(i[0], i[2], i[3]));
    let y = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[24, 1, 8, 10]), |i| {
        if i[2] < 2 && i[3] < 2 {
            f32::NAN
        } else {
            field(i[0] + 1, i[2], i[3])
        }
    });
    (x, y)
}

const GRID_MODEL: &str = "model grid {
  input  x: f32[B, 1, 8, 10]
  target y: f32[B, 1, 8, 10]
  target valid: f32[B, 1, 8, 10]
  out = x |> conv2d(1, kernel: 3, pad: same)
  output out
  loss = mse(out, y, weight: valid)
}
train {
  data = npy(x: \"x.npy\", y: \"y.npy\")
  missing = mask
  split = chronological(0.75)
  batch = 6
  epochs = 1
  seed = 0
}
";

#[test]
fn maps_of_a_gridded_model_have_colour_bars_and_grey_missing_cells() {
    let (x, y) = moving_fields();
    let dir = trained("maps-grid", GRID_MODEL, &[("x.npy", &x), ("y.npy", &y)]);
    let run = std::fs::read_to_string(dir.join("model.run/run.json")).expect("run.json");
    assert!(run.contains("model.nn") && run.contains("model.safetensors"), "{run}");
    let image = plotted(&dir, &["--maps", "--example", "2"], "maps.png");
    // Four panels (input, target, prediction, error) of 304 pixels.
    assert_eq!(image.width(), 4 * 304);
    assert!(image.height() > 200 && image.height() < 400, "height {}", image.height());
    // The missing target cells (and so their errors) are grey.
    let grey = pixels(&image, |r, g, b| r == 150 && g == 150 && b == 150);
    assert!(grey > 200, "{grey} grey pixels");
    // viridis and the diverging map along the colour bars and maps.
    assert!(distinct_colours(&image) > 100, "{} colours", distinct_colours(&image));
    let dark_purple = pixels(&image, |r, g, b| r < 90 && g < 40 && b > 60 && b < 110);
    let red = pixels(&image, |r, g, b| r > 150 && g < 60 && b < 70);
    let blue = pixels(&image, |r, g, b| b > 120 && r < 60 && g < 120);
    assert!(dark_purple > 20 && red > 20 && blue > 20, "purple {dark_purple}, red {red}, blue {blue}");
    // The SVG embeds the maps as images and names the panels.
    let out = nnc_in(&dir, &["plot", "model.run", "--maps"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let svg = std::fs::read_to_string(dir.join("model.run/maps.svg")).expect("maps.svg");
    assert_eq!(svg.matches("<image").count(), 8, "four maps and four colour bars");
    let drawn = texts(&svg);
    for want in ["input x", "target y", "prediction y", "error", "grey: missing value (NaN)"] {
        assert!(drawn.iter().any(|t| t == want), "no text {want:?} in {drawn:?}");
    }
}

#[test]
fn maps_of_a_sequence_model_have_one_row_per_lead() {
    let model = "model seq {
  input  x: f32[B, 2, 1, 8, 8]
  target y: f32[B, 3, 1, 8, 8]
  f = x |> reshape([B, 2, 8, 8])
  change = f |> conv2d(3, kernel: 3, pad: same) |> reshape([B, 3, 1, 8, 8])
  next = x[:, -1:] + change
  output next
  loss = mse(next, y)
}
train {
  data = synthetic.advection(n: 16, size: 8, steps: 1, in: 2, out: 3)
  split = 0.75
  normalize = none
  batch = 4
  epochs = 1
  seed = 0
}
";
    let dir = trained("maps-sequence", model, &[]);
    let image = plotted(&dir, &["--maps"], "leads.png");
    assert_eq!(image.width(), 4 * 304);
    assert!(image.height() > 3 * 200, "three rows: height {}", image.height());
    assert!(distinct_colours(&image) > 100);
    assert_eq!(pixels(&image, |r, g, b| r == 150 && g == 150 && b == 150), 0, "no missing values");
    let out = nnc_in(&dir, &["plot", "model.run", "--maps", "-o", "leads.svg"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let drawn = texts(&std::fs::read_to_string(dir.join("leads.svg")).expect("svg"));
    for want in ["input x, last frame", "target y, lead 1", "prediction y, lead 3", "error, lead 2"] {
        assert!(drawn.iter().any(|t| t == want), "no text {want:?} in {drawn:?}");
    }
}

#[test]
fn maps_of_data_with_coordinates_have_latitude_and_longitude_axes() {
    let model = "model globe {
  input  x: f32[B, 3, 61, 120]
  target y: f32[B, 1, 61, 120]
  out = x |> conv2d(1, kernel: 1)
  output out
  loss = mse(out, y)
}
train {
  data = dataset(\"era5_members\", task: \"maps\")
  normalize = per_variable
  batch = 8
  epochs = 1
  seed = 0
}
";
    let dir = trained("maps-globe", model, &[]);
    let out = nnc_in(&dir, &["plot", "model.run", "--maps"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let drawn = texts(&std::fs::read_to_string(dir.join("model.run/maps.svg")).expect("svg"));
    let lat: Vec<&String> = drawn.iter().filter(|t| t.ends_with("°N") || t.ends_with("°S")).collect();
    let lon: Vec<&String> = drawn.iter().filter(|t| t.ends_with("°E") || t.ends_with("°W")).collect();
    assert!(lat.len() >= 4 && lon.len() >= 4, "latitudes {lat:?}, longitudes {lon:?}");
    // The units of the data set are on the colour bars.
    assert!(drawn.iter().any(|t| t == "K"), "no unit K in {drawn:?}");
}

const SINE_MODEL: &str = "model sine {
  input  x: f32[B, 1]
  target y: f32[B, 1]
  out = x |> dense(16) |> tanh |> dense(1)
  loss = mse(out, y)
}
train {
  data = synthetic.sine(n: 256, noise: 0.1)
  batch = 16
  epochs = 1
  seed = 0
}
";

#[test]
fn scatter_of_a_regression_model_has_the_one_to_one_line_and_scores() {
    let dir = trained("scatter-sine", SINE_MODEL, &[]);
    let image = plotted(&dir, &["--scatter"], "scatter.png");
    assert_eq!(image.width(), 540);
    // Light blue points (drawn translucent) and the orange curve.
    let blue = pixels(&image, |r, g, b| b > 150 && b as i32 > r as i32 + 40 && g > r);
    let orange = pixels(&image, |r, g, b| r > 200 && g > 60 && g < 130 && b < 60);
    assert!(blue > 100 && orange > 30, "points {blue}, reliability curve {orange}");
    let out = nnc_in(&dir, &["plot", "model.run", "--scatter"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let drawn = texts(&std::fs::read_to_string(dir.join("model.run/scatter.svg")).expect("svg"));
    assert!(drawn.iter().any(|t| t.starts_with("RMSE ")), "{drawn:?}");
    assert!(drawn.iter().any(|t| t.starts_with("bias ")), "{drawn:?}");
    for want in ["1:1", "validation values", "n = 51"] {
        assert!(drawn.iter().any(|t| t == want), "no text {want:?} in {drawn:?}");
    }
}

/// A plot that cannot be drawn: the case, the directory, the arguments
/// after `plot model.run`, the exit code and words of the error.
type BadPlot<'a> = (&'a str, &'a Path, &'a [&'a str], i32, &'a [&'a str]);

#[test]
fn prediction_plots_explain_what_they_cannot_draw() {
    let sine = trained("errors-sine", SINE_MODEL, &[]);
    let (x, y) = moving_fields();
    let grid = trained("errors-grid", GRID_MODEL, &[("x.npy", &x), ("y.npy", &y)]);
    let lonely = run_dir("errors-untrained");
    std::fs::write(lonely.join("model.nn"), GRID_MODEL).expect("model");
    std::fs::create_dir_all(lonely.join("model.run")).expect("run dir");
    let cases: [BadPlot; 6] = [
        (
            "not gridded",
            &sine,
            &["--maps"],
            2,
            &["--maps draws gridded predictions", "f32[B, 1]", "--scatter"],
        ),
        ("no checkpoint", &lonely, &["--maps"], 2, &["no checkpoint", "model.safetensors", "nnc train"]),
        (
            "example out of range",
            &grid,
            &["--maps", "--example", "99"],
            2,
            &["no example 99", "6 examples, 0 to 5"],
        ),
        (
            "unknown variable",
            &grid,
            &["--maps", "--variable", "t"],
            2,
            &["--variable t", "variables are `y`"],
        ),
        ("unknown scatter variable", &sine, &["--scatter", "--variable", "z"], 2, &["variables are `y`"]),
        ("example without maps", &grid, &["--example", "1"], 2, &["--maps"]),
    ];
    for (case, dir, args, code, words) in cases {
        let mut all = vec!["plot", "model.run"];
        all.extend(args);
        let out = nnc_in(dir, &all);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        for w in words {
            assert!(err.contains(w), "{case}: {err:?} lacks {w:?}");
        }
    }
    let out = nnc_in(&grid, &["plot", "model.run", "model.run", "--scatter"]);
    assert!(stderr_of(&out).contains("one run directory"), "{}", stderr_of(&out));
}
