//! `nnc plot RUN_DIR...`: learning curves of one or several training runs,
//! as an SVG or PNG file; with `--maps` or `--scatter`, what a run's
//! checkpoint predicts for the validation examples ([`maps`], [`scatter`];
//! [`run`] finds the model and checkpoint of a run directory, [`colour`]
//! holds the colour maps and [`figure`] the heat maps drawn as images).
//!
//! A run directory holds `log.jsonl`, one JSON object per epoch with
//! `epoch` (1-based), `train_loss`, `val_loss` and, per metric label `L`,
//! `val_L` and possibly `train_L`; `null` stands for NaN. A resumed run
//! appends to the same log, so an epoch may appear more than once: the last
//! occurrence wins. Other keys (`step`, `lr`, `seconds`, …) are not plotted.
//!
//! The figure has one panel for the losses (logarithmic y axis when every
//! value is positive and they span more than a decade) — for a model with
//! several losses, whose log has `train_loss.NAME` and `val_loss.NAME` for
//! every loss `NAME`, one such panel per loss instead of the panel of their
//! sum — then one panel per metric label in the order the logs first name
//! them; per-variable metrics
//! (`rmse.p`, `rmse.t`, …) are drawn as small multiples, three to a row. x is
//! the epoch. Missing and NaN values break a line rather than being drawn
//! as zero. Several runs are overlaid, one colour per run, with the run
//! names (the directories' names) in the legend.
//!
//! Axes: logarithmic axes have ticks at 1, 2 and 5 times each power of ten
//! (only the powers when that gives more than a dozen), linear axes at 1, 2
//! or 5 times a power of ten; labels carry the digits the tick spacing needs
//! (`0.3`, `0.05`, `2e-3`), and the label area is as wide as its longest
//! label.
//!
//! SVG leaves text to its viewer; PNG (`-o FILE.png`) is the same SVG drawn
//! by resvg with the DejaVu Sans font compiled into the binary, so it looks
//! the same on every machine. The file is written to a temporary name and
//! renamed, so a reader never sees half a plot.

mod colour;
mod figure;
mod maps;
mod run;
mod scatter;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::prelude::*;
use serde_json::Value;

/// The font PNG output draws text with (DejaVu Sans; licence in
/// `src/fonts/DejaVuSans.LICENSE`).
pub(crate) const FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// The file format of the plot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics.
    #[default]
    Svg,
    /// A PNG image (the SVG rendered with the built-in font).
    Png,
}

impl Format {
    /// The format a file name asks for by its extension.
    pub fn of(path: &Path) -> Result<Format, String> {
        match path.extension().map(|e| e.to_string_lossy().to_lowercase()).as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(format!("{}: plots are written as .svg or .png", path.display())),
        }
    }
}

/// Where and how `nnc plot` writes its figure.
#[derive(Clone, Debug, Default)]
pub struct PlotOptions {
    /// The file to write (its extension chooses the format); when absent,
    /// `RUN_DIR/curves.svg` for one run and `compare.svg` for several.
    pub output: Option<PathBuf>,
    /// The format when `output` is absent.
    pub format: Format,
}

/// Width of the figure, height of one full panel and of one small multiple,
/// in pixels.
const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 320;
const SMALL_HEIGHT: u32 = 260;
/// Small multiples per row.
const COLUMNS: usize = 3;
/// Tick label size in pixels, and the width of one character of it.
const LABEL_SIZE: u32 = 14;
const CHAR_WIDTH: u32 = 9;
/// Curves with more points than this are drawn without a marker per point.
const MAX_MARKERS: usize = 60;

/// Colours of the runs, in order (the first two are the single-run colours
/// of validation and training curves).
const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

pub use maps::{plot_maps, MapOptions};
pub use scatter::{plot_scatter, ScatterOptions};

/// Reads `run_dir/log.jsonl` and writes the learning curves; returns the
/// path of the written file. A malformed log is an error naming the file and
/// the line.
pub fn plot(run_dir: &Path, opts: &PlotOptions) -> Result<PathBuf, String> {
    plot_runs(&[run_dir.to_path_buf()], opts)
}

/// Draws the learning curves of several runs into one figure.
pub fn plot_runs(run_dirs: &[PathBuf], opts: &PlotOptions) -> Result<PathBuf, String> {
    let Some(first) = run_dirs.first() else {
        return Err("no run directory given".to_string());
    };
    let mut runs = vec![];
    for dir in run_dirs {
        runs.push(Run { name: run_name(dir), log: read_log(dir)? });
    }
    // Two runs of the same name (`a/x.run`, `b/x.run`) are told apart by
    // their paths.
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    for (run, dir) in runs.iter_mut().zip(run_dirs) {
        if names.iter().filter(|n| **n == run.name).count() > 1 {
            run.name = dir.display().to_string();
        }
    }
    let (output, format) = match &opts.output {
        Some(path) => (path.clone(), Format::of(path)?),
        None => {
            let ext = if opts.format == Format::Png { "png" } else { "svg" };
            let path = if run_dirs.len() == 1 {
                first.join(format!("curves.{ext}"))
            } else {
                PathBuf::from(format!("compare.{ext}"))
            };
            (path, opts.format)
        }
    };
    let svg = render(&runs)?;
    let bytes = match format {
        Format::Svg => svg.into_bytes(),
        Format::Png => svg_to_png(&svg)?,
    };
    write_atomically(&output, &bytes)?;
    Ok(output)
}

/// The SVG document drawn into a PNG image with the built-in font.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    let pixmap = rasterize(svg)?;
    pixmap.encode_png().map_err(|e| format!("cannot encode the PNG image: {e}"))
}

/// The SVG document drawn into pixels with the built-in font.
pub fn rasterize(svg: &str) -> Result<resvg::tiny_skia::Pixmap, String> {
    rasterize_over(svg, |_| {})
}

/// The SVG document drawn with the built-in font over what `under` draws
/// into the empty image first.
fn rasterize_over(
    svg: &str,
    under: impl FnOnce(&mut resvg::tiny_skia::Pixmap),
) -> Result<resvg::tiny_skia::Pixmap, String> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options { font_family: "DejaVu Sans".to_string(), ..Default::default() };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| format!("cannot read the drawing: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("cannot draw an image of {}×{} pixels", size.width(), size.height()))?;
    under(&mut pixmap);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    Ok(pixmap)
}

/// The name a run directory goes by in legends: its last component without
/// a `.run` extension (`models/digits.run` → `digits`).
fn run_name(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    name.strip_suffix(".run").filter(|n| !n.is_empty()).map(str::to_string).unwrap_or(name)
}

fn read_log(run_dir: &Path) -> Result<Log, String> {
    if !run_dir.is_dir() {
        return Err(format!("{}: not a run directory (no such directory)", run_dir.display()));
    }
    let log_path = run_dir.join("log.jsonl");
    let text = std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log = Log::parse(&text).map_err(|e| format!("{}:{e}", log_path.display()))?;
    if log.epochs.is_empty() {
        return Err(format!("{}: no epochs logged yet", log_path.display()));
    }
    Ok(log)
}

/// One run: its name and its log.
struct Run {
    name: String,
    log: Log,
}

/// The epochs of a log, each a map from key to value (NaN for `null`).
struct Log {
    epochs: BTreeMap<u64, BTreeMap<String, f64>>,
    /// Metric labels in the order the log first names them.
    labels: Vec<String>,
    /// The names of the losses of a model with several, in the order the
    /// log first names them (empty for one loss).
    losses: Vec<String>,
}

impl Log {
    /// Parses the lines of `log.jsonl`; an error starts with `LINE: `.
    fn parse(text: &str) -> Result<Log, String> {
        let mut epochs = BTreeMap::new();
        // (label, line index, byte position in that line)
        let mut first_seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line).map_err(|e| format!("{number}: not JSON: {e}"))?;
            let Value::Object(fields) = value else {
                return Err(format!("{number}: expected a JSON object, one per epoch"));
            };
            let epoch = match fields.get("epoch") {
                Some(Value::Number(n)) => n.as_u64().filter(|&e| e >= 1),
                _ => None,
            }
            .ok_or_else(|| format!("{number}: `epoch` must be a positive integer"))?;
            let mut values = BTreeMap::new();
            for (key, v) in &fields {
                let Some(label) = plotted_label(key) else { continue };
                let x = match v {
                    Value::Null => f64::NAN,
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    _ => return Err(format!("{number}: `{key}` must be a number or null")),
                };
                values.insert(key.clone(), x);
                if label != "loss" {
                    let position = line.find(&format!("\"{key}\"")).unwrap_or(usize::MAX);
                    let seen = first_seen.entry(label.to_string()).or_insert((index, position));
                    *seen = (*seen).min((index, position));
                }
            }
            epochs.insert(epoch, values);
        }
        let mut labels: Vec<(String, (usize, usize))> = first_seen.into_iter().collect();
        labels.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let (losses, labels): (Vec<String>, Vec<String>) =
            labels.into_iter().map(|(l, _)| l).partition(|l| loss_name(l).is_some());
        let losses = losses.iter().filter_map(|l| loss_name(l)).map(str::to_string).collect();
        Ok(Log { epochs, labels, losses })
    }

    /// `(epoch, value)` of every epoch that logs `key`.
    fn series(&self, key: &str) -> Vec<(i64, f64)> {
        self.epochs.iter().filter_map(|(e, values)| values.get(key).map(|v| (*e as i64, *v))).collect()
    }
}

/// The label a plotted key belongs to: `train_L` and `val_L` give `L`.
fn plotted_label(key: &str) -> Option<&str> {
    key.strip_prefix("train_").or_else(|| key.strip_prefix("val_")).filter(|l| !l.is_empty())
}

/// The loss `NAME` of the label `loss.NAME` (one of several losses).
fn loss_name(label: &str) -> Option<&str> {
    label.strip_prefix("loss.").filter(|n| !n.is_empty())
}

/// One curve: its legend name, points, colour and whether it is the
/// validation curve (drawn thicker).
struct Series {
    name: String,
    points: Vec<(i64, f64)>,
    color: RGBColor,
    validation: bool,
}

/// One panel: a title, a y-axis description and its curves.
struct Panel {
    title: String,
    y_desc: String,
    series: Vec<Series>,
    log_y: bool,
}

/// A row of the figure: one full-width panel, or small multiples.
enum Row {
    Full(Panel),
    Small(Vec<Panel>),
}

impl Row {
    fn height(&self) -> u32 {
        match self {
            Row::Full(_) => PANEL_HEIGHT,
            Row::Small(_) => SMALL_HEIGHT,
        }
    }
}

/// The curves of `label` (`loss` or a metric) in every run: per run the
/// training curve, then the validation curve.
fn curves(runs: &[Run], label: &str) -> Vec<Series> {
    let mut out = vec![];
    for (i, run) in runs.iter().enumerate() {
        for split in ["train", "val"] {
            let key = format!("{split}_{label}");
            let points = run.log.series(&key);
            if points.is_empty() {
                continue;
            }
            let validation = split == "val";
            let (name, color) = if runs.len() == 1 {
                (key, if validation { PALETTE[0] } else { PALETTE[1] })
            } else {
                (format!("{} {key}", run.name), PALETTE[i % PALETTE.len()])
            };
            out.push(Series { name, points, color, validation });
        }
    }
    out
}

fn finite_values(series: &[Series]) -> Vec<f64> {
    series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).collect()
}

/// The panel of the loss `label`: `loss`, or `loss.NAME` of several.
fn loss_panel(runs: &[Run], label: &str) -> Panel {
    let series = curves(runs, label);
    let (lo, hi) = bounds(&finite_values(&series));
    let log_y = lo.is_finite() && lo > 0.0 && hi / lo > 10.0;
    let title = match loss_name(label) {
        Some(name) => format!("loss {name}"),
        None => label.to_string(),
    };
    Panel { title: title.clone(), y_desc: title, series, log_y }
}

fn rows(runs: &[Run]) -> Vec<Row> {
    // Several losses: a panel for each rather than one of their sum.
    let mut losses: Vec<String> = vec![];
    for run in runs {
        for loss in &run.log.losses {
            if !losses.contains(loss) {
                losses.push(loss.clone());
            }
        }
    }
    let mut out = if losses.is_empty() {
        vec![Row::Full(loss_panel(runs, "loss"))]
    } else {
        losses.iter().map(|l| Row::Full(loss_panel(runs, &format!("loss.{l}")))).collect()
    };
    let mut labels: Vec<String> = vec![];
    for run in runs {
        for label in &run.log.labels {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
    }
    // Per-variable metrics (`rmse.p`) are grouped by their metric (`rmse`),
    // per-lead ones (`csi@2.lead1`) by their metric and threshold (`csi@2`).
    let group_of = |label: &str| -> Option<String> {
        if let Some(i) = label.find(".lead") {
            return Some(label[..i].to_string());
        }
        match label.split_once('.') {
            Some((metric, _)) if !metric.is_empty() && !metric.contains('@') => Some(metric.to_string()),
            _ => None,
        }
    };
    let mut done: Vec<String> = vec![];
    for label in &labels {
        if done.contains(label) {
            continue;
        }
        match group_of(label) {
            Some(metric) => {
                let group: Vec<String> = labels
                    .iter()
                    .filter(|l| group_of(l).as_deref() == Some(metric.as_str()))
                    .cloned()
                    .collect();
                let mut panels = group
                    .iter()
                    .map(|l| Panel {
                        title: l.clone(),
                        y_desc: l.clone(),
                        series: curves(runs, l),
                        log_y: false,
                    })
                    .collect::<Vec<_>>();
                while !panels.is_empty() {
                    let rest = panels.split_off(panels.len().min(COLUMNS));
                    out.push(Row::Small(panels));
                    panels = rest;
                }
                done.extend(group);
            }
            _ => {
                out.push(Row::Full(Panel {
                    title: label.clone(),
                    y_desc: label.clone(),
                    series: curves(runs, label),
                    log_y: false,
                }));
                done.push(label.clone());
            }
        }
    }
    out
}

/// Smallest and largest value (`(inf, -inf)` for none).
fn bounds(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}

/// Draws every row into an SVG document.
fn render(runs: &[Run]) -> Result<String, String> {
    let rows = rows(runs);
    let mut svg = String::new();
    {
        let height: u32 = rows.iter().map(Row::height).sum();
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let first = runs.iter().filter_map(|r| r.log.epochs.keys().next()).min().copied().unwrap_or(1) as i64;
        let last =
            runs.iter().filter_map(|r| r.log.epochs.keys().next_back()).max().copied().unwrap_or(1) as i64;
        let x = if first < last { first..last } else { first - 1..last + 1 };
        let mut rest = root;
        for row in &rows {
            let (area, below) = rest.split_vertically(row.height());
            rest = below;
            match row {
                Row::Full(panel) => draw_panel(&area, panel, x.clone(), 22)?,
                Row::Small(panels) => {
                    let cells = area.split_evenly((1, COLUMNS));
                    for (panel, cell) in panels.iter().zip(&cells) {
                        draw_panel(cell, panel, x.clone(), 18)?;
                    }
                }
            }
        }
        rest.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// Ticks of an axis and the decimal exponent of their spacing (which says
/// how many digits a label needs).
struct Ticks {
    values: Vec<f64>,
    /// Per tick, the exponent of the smallest digit its label needs.
    digits: Vec<i32>,
}

/// 1, 2 and 5 times each power of ten in `lo..=hi`; only the powers when
/// that gives more than twelve ticks, and the bounds themselves when no
/// tick falls inside.
fn log_ticks(lo: f64, hi: f64) -> Ticks {
    let (from, to) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let inside = |v: f64| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12);
    let ticks = |mantissas: &[f64]| -> Vec<(f64, i32)> {
        (from..=to)
            .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e), e)))
            .filter(|(v, _)| inside(*v))
            .collect()
    };
    let mut chosen = ticks(&[1.0, 2.0, 5.0]);
    if chosen.len() > 12 {
        chosen = ticks(&[1.0]);
    }
    if chosen.len() < 2 {
        return linear_ticks(lo, hi);
    }
    let (values, digits) = chosen.into_iter().unzip();
    Ticks { values, digits }
}

/// Multiples of a step of 1, 2 or 5 times a power of ten, about six over
/// `lo..=hi`.
fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    linear_ticks_about(lo, hi, 6.0)
}

/// Multiples of a step of 1, 2 or 5 times a power of ten, about `count`
/// over `lo..=hi`.
fn linear_ticks_about(lo: f64, hi: f64, count: f64) -> Ticks {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        let e = if lo == 0.0 || !lo.is_finite() { 0 } else { lo.abs().log10().floor() as i32 - 2 };
        return Ticks { values: vec![lo], digits: vec![e] };
    }
    let raw = span / count.max(1.0);
    let mut e = raw.log10().floor() as i32;
    let m = raw / 10f64.powi(e);
    let step_m = if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        e += 1;
        1.0
    };
    let step = step_m * 10f64.powi(e);
    // A bound that is a multiple of the step up to rounding is a tick.
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let values: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let digits = vec![e; values.len()];
    Ticks { values, digits }
}

/// The label of a tick with the digits down to `10^digit`: `0.3`, `0.05`,
/// `120`; scientific below 0.01 and from 10⁵ on: `2e-3`, `1.5e6`.
pub fn tick_label(v: f64, digit: i32) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if (1e-2..1e5).contains(&a) {
        let decimals = (-digit).max(0) as usize;
        let s = format!("{v:.decimals$}");
        return if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
            s[1..].to_string()
        } else {
            s
        };
    }
    let e = a.log10().floor() as i32;
    let mantissa = v / 10f64.powi(e);
    let decimals = (e - digit).max(0) as usize;
    let m = format!("{mantissa:.decimals$}");
    // Rounding can carry the mantissa to 10 (9.96 → 10.0).
    if m.trim_start_matches('-').starts_with("10") {
        let m = format!("{:.decimals$}", mantissa / 10.0);
        return format!("{m}e{}", e + 1);
    }
    format!("{m}e{e}")
}

/// A y axis, linear or logarithmic, with this module's ticks and labels.
struct YAxis {
    scale: Scale,
    ticks: Ticks,
}

enum Scale {
    Linear(RangedCoordf64),
    Log(LogCoord<f64>),
}

impl Ranged for YAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match &self.scale {
            Scale::Linear(c) => c.map(value, limit),
            Scale::Log(c) => c.map(value, limit),
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.values.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        match &self.scale {
            Scale::Linear(c) => c.range(),
            Scale::Log(c) => c.range(),
        }
    }
}

impl ValueFormatter<f64> for YAxis {
    fn format_ext(&self, value: &f64) -> String {
        label_of(&self.ticks, *value)
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    x: std::ops::Range<i64>,
    title_size: u32,
) -> Result<(), String> {
    let (lo, hi) = bounds(&finite_values(&panel.series));
    let y = if panel.log_y {
        let (lo, hi) = (lo / 1.15, hi * 1.15);
        YAxis { scale: Scale::Log((lo..hi).log_scale().into()), ticks: log_ticks(lo, hi) }
    } else {
        let range = linear_range(lo, hi);
        YAxis { ticks: linear_ticks(range.start, range.end), scale: Scale::Linear(range.into()) }
    };
    draw_chart(area, panel, x, y, title_size)
}

/// A y range around `lo..hi` with a margin; `0..1` when there is no value.
fn linear_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        0.0..1.0
    } else if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo - pad..hi + pad
    } else {
        let pad = (hi - lo) * 0.05;
        lo - pad..hi + pad
    }
}

/// The label of the tick nearest `v` (key points come back as the values
/// given, but compare with a tolerance all the same).
fn label_of(ticks: &Ticks, v: f64) -> String {
    let i = ticks
        .values
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - v).abs().total_cmp(&(b.1 - v).abs()))
        .map_or(0, |(i, _)| i);
    match (ticks.values.get(i), ticks.digits.get(i)) {
        (Some(t), Some(d)) if (t - v).abs() <= 1e-9 * t.abs().max(1e-300) => tick_label(*t, *d),
        _ => tick_label(v, v.abs().log10().floor() as i32 - 2),
    }
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    x: std::ops::Range<i64>,
    y: YAxis,
    title_size: u32,
) -> Result<(), String> {
    let ticks = &y.ticks;
    let widest = ticks.values.iter().map(|v| label_of(ticks, *v).chars().count()).max().unwrap_or(1) as u32;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", title_size))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(widest * CHAR_WIDTH + 34)
        .build_cartesian_2d(x, y)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.y_desc.as_str())
        .label_style(("sans-serif", LABEL_SIZE))
        .x_labels(8)
        .draw()
        .map_err(drawing)?;
    for series in &panel.series {
        let color = series.color;
        let style = if series.validation {
            ShapeStyle::from(&color).stroke_width(2)
        } else {
            ShapeStyle::from(&color.mix(0.75)).stroke_width(1)
        };
        // The legend entry, drawn even when every value is NaN.
        chart
            .draw_series(LineSeries::new(std::iter::empty::<(i64, f64)>(), style))
            .map_err(drawing)?
            .label(series.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        // A marker per epoch while they stay apart; a long run is a line.
        let markers = series.points.len() <= MAX_MARKERS;
        for segment in segments(&series.points) {
            chart.draw_series(LineSeries::new(segment.iter().copied(), style)).map_err(drawing)?;
            if markers || segment.len() == 1 {
                chart
                    .draw_series(segment.iter().map(|p| Circle::new(*p, 2, color.filled())))
                    .map_err(drawing)?;
            }
        }
    }
    let position = legend_position(&chart, panel);
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)?;
    Ok(())
}

/// The corner of the plotting area where the legend hides the fewest
/// points of the curves (the upper right when several tie): the curves and
/// their markers are sampled in pixels and counted inside the legend box
/// each position would give, estimated as `plotters` lays it out.
fn legend_position<DB: DrawingBackend>(
    chart: &ChartContext<DB, Cartesian2d<RangedCoordi64, YAxis>>,
    panel: &Panel,
) -> SeriesLabelPosition {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (area_w, area_h) = (xs.end - xs.start, ys.end - ys.start);
    let widest = panel.series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as i32;
    // Label font 13 px: about 7.5 px a character and 16 px a line, plus
    // the 30 px legend mark and 10 px margins.
    let (w, h) = (widest * 15 / 2 + 30 + 20, panel.series.len() as i32 * 16 + 20);
    let mut samples = Vec::new();
    for series in &panel.series {
        for segment in segments(&series.points) {
            let pixels: Vec<(i32, i32)> = segment
                .iter()
                .map(|p| chart.backend_coord(p))
                .map(|(x, y)| (x - xs.start, y - ys.start))
                .collect();
            samples.extend(pixels.iter().copied());
            for pair in pixels.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                let steps = ((x1 - x0).abs().max((y1 - y0).abs()) / 4).max(1);
                samples.extend((1..steps).map(|k| (x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps)));
            }
        }
    }
    let candidates = [
        (SeriesLabelPosition::UpperRight, area_w - w - 5, 5),
        (SeriesLabelPosition::LowerRight, area_w - w - 5, area_h - h - 5),
        (SeriesLabelPosition::UpperLeft, 5, 5),
        (SeriesLabelPosition::LowerLeft, 5, area_h - h - 5),
        (SeriesLabelPosition::UpperMiddle, (area_w - w) / 2, 5),
        (SeriesLabelPosition::LowerMiddle, (area_w - w) / 2, area_h - h - 5),
    ];
    let hidden = |x0: i32, y0: i32| {
        samples
            .iter()
            .filter(|(x, y)| (x0 - 3..=x0 + w + 3).contains(x) && (y0 - 3..=y0 + h + 3).contains(y))
            .count()
    };
    candidates
        .into_iter()
        .map(|(position, x0, y0)| (hidden(x0, y0), position))
        .min_by_key(|(count, _)| *count)
        .map_or(SeriesLabelPosition::UpperRight, |(_, position)| position)
}

/// Runs of consecutive finite points; a NaN or an infinite value ends a run.
fn segments(points: &[(i64, f64)]) -> Vec<Vec<(i64, f64)>> {
    points.split(|p| !p.1.is_finite()).filter(|s| !s.is_empty()).map(<[(i64, f64)]>::to_vec).collect()
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    format!("cannot draw the plot: {e}")
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, bytes).map_err(|e| format!("{}: {e}", temp.display()))?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("{}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_carry_the_digits_their_spacing_needs() {
        let cases = [
            (0.30000000000000004, -1, "0.3"),
            (0.6000000000000001, -1, "0.6"),
            (0.05, -2, "0.05"),
            (2e-3, -3, "2e-3"),
            (0.002, -4, "2.0e-3"),
            (1.5e6, 5, "1.5e6"),
            (120.0, 1, "120"),
            (1.0, 0, "1"),
            (0.0, -1, "0"),
            (-0.25, -2, "-0.25"),
            (9.96e-4, -4, "1e-3"),
            (5e-3, -3, "5e-3"),
        ];
        for (v, digit, want) in cases {
            assert_eq!(tick_label(v, digit), want, "tick_label({v}, {digit})");
        }
    }

    #[test]
    fn log_ticks_are_one_two_five_per_decade() {
        let t = log_ticks(0.015, 0.9);
        let labels: Vec<String> = t.values.iter().zip(&t.digits).map(|(v, d)| tick_label(*v, *d)).collect();
        assert_eq!(labels, ["0.02", "0.05", "0.1", "0.2", "0.5"]);
        let wide = log_ticks(1e-6, 10.0);
        let labels: Vec<String> =
            wide.values.iter().zip(&wide.digits).map(|(v, d)| tick_label(*v, *d)).collect();
        assert_eq!(labels, ["1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1", "1", "10"]);
    }

    #[test]
    fn linear_ticks_are_multiples_of_one_two_five() {
        let t = linear_ticks(0.93, 0.985);
        let labels: Vec<String> = t.values.iter().zip(&t.digits).map(|(v, d)| tick_label(*v, *d)).collect();
        assert_eq!(labels, ["0.93", "0.94", "0.95", "0.96", "0.97", "0.98"]);
        let t = linear_ticks(-3.0, 12.0);
        let labels: Vec<String> = t.values.iter().zip(&t.digits).map(|(v, d)| tick_label(*v, *d)).collect();
        assert_eq!(labels, ["-2", "0", "2", "4", "6", "8", "10", "12"]);
    }

    /// The position chosen for one rising curve on a 600 × 300 SVG panel.
    fn legend_for(points: Vec<(i64, f64)>) -> String {
        let panel = Panel {
            title: "accuracy".into(),
            y_desc: "accuracy".into(),
            series: vec![Series { name: "val_accuracy".into(), points, color: RED, validation: true }],
            log_y: false,
        };
        let mut svg = String::new();
        let area = SVGBackend::with_string(&mut svg, (600, 300)).into_drawing_area();
        let range = linear_range(0.0, 1.0);
        let y = YAxis { ticks: linear_ticks(range.start, range.end), scale: Scale::Linear(range.into()) };
        let mut builder = ChartBuilder::on(&area);
        let chart = builder
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1..40i64, y)
            .unwrap();
        format!("{:?}", std::mem::discriminant(&legend_position(&chart, &panel)))
    }

    #[test]
    fn the_legend_goes_where_it_hides_no_curve() {
        let name = |p: SeriesLabelPosition| format!("{:?}", std::mem::discriminant(&p));
        // A curve that rises to a plateau along the top: the legend goes low.
        let rising: Vec<(i64, f64)> = (1..=40).map(|e| (e, 1.0 - 0.9 * (-(e as f64) / 3.0).exp())).collect();
        assert_eq!(legend_for(rising), name(SeriesLabelPosition::LowerRight));
        // A falling loss keeps the upper right free.
        let falling: Vec<(i64, f64)> = (1..=40).map(|e| (e, 0.9 * (-(e as f64) / 3.0).exp())).collect();
        assert_eq!(legend_for(falling), name(SeriesLabelPosition::UpperRight));
    }
}
