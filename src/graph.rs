//! `nnc graph FILE`: a picture of a model's graph at one stage of the
//! compiler — the forward graph, the gradient graph, or the fused kernels
//! of the training step — as SVG, PNG or Graphviz DOT text.
//!
//! The stage's graphs come from the pipeline exactly as `nnc ir --stage`
//! prints them; [`picture`] turns one into boxes and arrows (primitive ops
//! grouped back into the layer calls and expressions of the source,
//! parameters listed in the tooltips of the boxes that read them),
//! [`layout`] places them in rows (a layered layout written for this, so the
//! command needs no Graphviz), [`svg`] draws them with a tooltip per box
//! naming its `.nn` source lines, and [`dot`] writes the same picture as
//! DOT. With `--layout dot` Graphviz lays out and draws the DOT text instead.
//!
//! The output format follows the extension of `-o`: `.svg`, `.png` (the
//! SVG drawn with the built-in font, as `nnc plot` does) or `.dot`; without
//! `-o`, or with `-o -`, the DOT text goes to stdout.

mod dot;
mod layout;
mod picture;
mod svg;

use std::io::Write;
use std::path::Path;
use std::process::{Command as Process, Stdio};

use nnc_compiler::{compile_with, diag, fusion, ir, pipeline, Module};
use nnc_runtime::FileLoader;

use crate::cli::{GraphArgs, GraphLayout, GraphStage, Mode};
use crate::commands::{report, Status};
use crate::source::read_source;

pub use picture::{Edge, Item, ItemKind, Picture};

/// Where the picture goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// DOT text on stdout.
    Stdout,
    Svg,
    Png,
    Dot,
}

impl Output {
    fn of(path: Option<&Path>) -> Result<Output, String> {
        let Some(path) = path.filter(|p| p.as_os_str() != "-") else { return Ok(Output::Stdout) };
        match path.extension().map(|e| e.to_string_lossy().to_lowercase()).as_deref() {
            Some("svg") => Ok(Output::Svg),
            Some("png") => Ok(Output::Png),
            Some("dot" | "gv") => Ok(Output::Dot),
            _ => Err(format!(
                "{}: graph pictures are written as .svg, .png or .dot (the extension chooses); `-o -` writes DOT \
                 text to stdout",
                path.display()
            )),
        }
    }
}

/// Runs `nnc graph`.
pub fn run_graph(args: &GraphArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let fail = |err: &mut dyn Write, status: Status, message: &str| {
        let _ = writeln!(err, "error: {message}");
        status
    };
    let output = match Output::of(args.output.as_deref()) {
        Ok(output) => output,
        Err(message) => return fail(err, Status::Usage, &message),
    };
    if args.mode.is_some() && args.stage == GraphStage::Grad {
        return fail(err, Status::Usage, "`--mode` applies to `--stage forward` and `fused` only");
    }
    if let Some(path) = args.output.as_deref().filter(|_| output != Output::Stdout) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            let message = format!("cannot write {}: there is no directory {}", path.display(), dir.display());
            return fail(err, Status::Usage, &message);
        }
    }
    if args.by_layer && args.stage != GraphStage::Fused {
        return fail(err, Status::Usage, "`--by-layer` applies to `--stage fused` only");
    }
    let source = match read_source(&args.file) {
        Ok(s) => s,
        Err(message) => return fail(err, Status::Usage, &message),
    };
    let name = args.file.display().to_string();
    let compiled = match compile_with(&source, &FileLoader::for_model(&args.file)) {
        Ok(c) => c,
        Err(diags) => {
            let _ = write!(err, "{}", diag::render(&name, &source, &diags, color));
            return Status::CompileErrors;
        }
    };
    let mode = match args.mode.unwrap_or(Mode::Train) {
        Mode::Train => ir::Mode::Train,
        Mode::Infer => ir::Mode::Infer,
    };
    let picture = match picture_of(&compiled.module, &source, args.stage, mode, args.by_layer) {
        Ok(p) => p,
        Err(error) => return report(err, &name, &source, &error, color),
    };
    let heading = heading(&compiled.module, args.stage, mode, args.by_layer, &name);
    let text = match render(&picture, output, args.layout, &heading, &name, &source) {
        Ok(bytes) => bytes,
        Err(message) => return fail(err, Status::Usage, &message),
    };
    match (output, &args.output) {
        (Output::Stdout, _) | (_, None) => {
            let _ = out.write_all(&text);
        }
        (_, Some(path)) => {
            if let Err(message) = crate::plot::write_atomically(path, &text) {
                return fail(err, Status::Usage, &message);
            }
            let _ = writeln!(
                out,
                "wrote {} ({} boxes, {} arrows)",
                path.display(),
                picture.items.len(),
                picture.edges.len()
            );
        }
    }
    Status::Ok
}

/// The picture of `stage` of `module` (several training steps side by
/// side); `by_layer` groups the kernels of the fused stage by layer.
pub fn picture_of(
    module: &Module,
    source: &str,
    stage: GraphStage,
    mode: ir::Mode,
    by_layer: bool,
) -> Result<Picture, pipeline::Error> {
    Ok(match stage {
        GraphStage::Forward => {
            let graph = match mode {
                ir::Mode::Train => &module.train_graph,
                ir::Mode::Infer => &module.infer_graph,
            };
            picture::of_graph(graph, module, source)
        }
        GraphStage::Grad => {
            let steps = pipeline::gradients(module)?;
            steps_picture(&steps, |g| picture::of_graph(g, module, source))
        }
        GraphStage::Fused => match mode {
            ir::Mode::Train => {
                let steps = pipeline::optimized_steps(module)?;
                steps_picture(&steps, |g| {
                    picture::of_partition(g, &fusion::partition(g), module, source, by_layer)
                })
            }
            ir::Mode::Infer => {
                let graph = pipeline::optimized(module, ir::Mode::Infer)?;
                picture::of_partition(&graph, &fusion::partition(&graph), module, source, by_layer)
            }
        },
    })
}

/// One picture of the steps' graphs: the graph alone for one step, each
/// step's boxes marked with the step for several.
fn steps_picture(steps: &[pipeline::Step], picture: impl Fn(&ir::Graph) -> Picture) -> Picture {
    if let [step] = steps {
        return picture(&step.graph);
    }
    let mut all = Picture::default();
    for (i, step) in steps.iter().enumerate() {
        all.append(picture(&step.graph), &format!("step {} ({})", i + 1, step.loss));
    }
    all
}

/// The picture's heading: `model eddies · forward graph (training) · models/resunet.nn`.
fn heading(module: &Module, stage: GraphStage, mode: ir::Mode, by_layer: bool, file: &str) -> String {
    let mode = if mode == ir::Mode::Train { "training" } else { "inference" };
    let what = match stage {
        GraphStage::Forward => format!("forward graph ({mode})"),
        GraphStage::Grad => "forward and backward pass".to_string(),
        GraphStage::Fused if by_layer => format!("fused kernels by layer ({mode})"),
        GraphStage::Fused => format!("fused kernels ({mode})"),
    };
    format!("model {} · {what} · {file}", module.name)
}

/// The bytes of the picture in `output`'s format.
fn render(
    picture: &Picture,
    output: Output,
    layout: GraphLayout,
    heading: &str,
    file: &str,
    source: &str,
) -> Result<Vec<u8>, String> {
    let measure = svg::Measure::new()?;
    let sizes = svg::box_sizes(picture, &measure);
    let laid_out = svg::lay_out(picture, &sizes);
    let styles = svg::edge_styles(picture, &laid_out.ranks);
    let dot_text = || dot::render(picture, &styles, heading, file, source);
    Ok(match (output, layout) {
        (Output::Stdout | Output::Dot, _) => dot_text().into_bytes(),
        (Output::Svg, GraphLayout::Builtin) => {
            svg::render(picture, &laid_out, &sizes, heading, file, source).into_bytes()
        }
        (Output::Png, GraphLayout::Builtin) => {
            crate::plot::svg_to_png(&svg::render(picture, &laid_out, &sizes, heading, file, source))?
        }
        (Output::Svg, GraphLayout::Dot) => graphviz(&dot_text(), "svg")?,
        (Output::Png, GraphLayout::Dot) => graphviz(&dot_text(), "png")?,
    })
}

/// Graphviz's `dot` drawing `text` in `format`.
fn graphviz(text: &str, format: &str) -> Result<Vec<u8>, String> {
    let mut child = Process::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "`--layout dot` runs Graphviz's `dot`, which is not on PATH; the built-in layout (the default) \
                 needs nothing"
                    .to_string()
            } else {
                format!("cannot run Graphviz's `dot`: {e}")
            }
        })?;
    // Written from another thread: `dot` may fill its output pipe before it
    // has read all of its input.
    let mut stdin = child.stdin.take().ok_or("cannot write to Graphviz's `dot`")?;
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let result = child.wait_with_output().map_err(|e| format!("cannot run Graphviz's `dot`: {e}"))?;
    let _ = writer.join();
    if !result.status.success() {
        return Err(format!(
            "Graphviz's `dot` failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        ));
    }
    Ok(result.stdout)
}
