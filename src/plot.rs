//! `nnc plot RUN_DIR`: learning curves of a training run, as an SVG file.
//!
//! A run directory holds `log.jsonl`, one JSON object per epoch with
//! `epoch` (1-based), `train_loss`, `val_loss` and, per metric label `L`,
//! `val_L` and possibly `train_L`; `null` stands for NaN. A resumed run
//! appends to the same log, so an epoch may appear more than once: the last
//! occurrence wins. Other keys (`step`, `lr`, `seconds`, …) are not plotted.
//!
//! The figure has one panel for the losses (logarithmic y axis when every
//! value is positive and they span more than a decade), then one panel per
//! metric label in the order the log first names them; x is the epoch.
//! Missing and NaN values break a line rather than being drawn as zero.
//!
//! The output is SVG only: raster output would need a font to draw text,
//! while an SVG file leaves text to its viewer. The file is written to a
//! temporary name and renamed, so a reader never sees half a plot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde_json::Value;

/// The file format of the plot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Scalable vector graphics.
    #[default]
    Svg,
}

/// Where and how `nnc plot` writes its figure.
#[derive(Clone, Debug, Default)]
pub struct PlotOptions {
    /// The file to write; `RUN_DIR/curves.svg` when absent.
    pub output: Option<PathBuf>,
    pub format: Format,
}

/// Width of the figure and height of one panel, in pixels.
const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 320;

/// Reads `run_dir/log.jsonl` and writes the learning curves; returns the
/// path of the written file. A malformed log is an error naming the file and
/// the line.
pub fn plot(run_dir: &Path, opts: &PlotOptions) -> Result<PathBuf, String> {
    if !run_dir.is_dir() {
        return Err(format!("{}: not a run directory (no such directory)", run_dir.display()));
    }
    let log_path = run_dir.join("log.jsonl");
    let text = std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log = Log::parse(&text).map_err(|e| format!("{}:{e}", log_path.display()))?;
    if log.epochs.is_empty() {
        return Err(format!("{}: no epochs logged yet", log_path.display()));
    }
    let output = opts.output.clone().unwrap_or_else(|| run_dir.join("curves.svg"));
    let svg = render(&log)?;
    write_atomically(&output, svg.as_bytes())?;
    Ok(output)
}

/// The epochs of a log, each a map from key to value (NaN for `null`).
struct Log {
    epochs: BTreeMap<u64, BTreeMap<String, f64>>,
    /// Metric labels in the order the log first names them.
    labels: Vec<String>,
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
        Ok(Log { epochs, labels: labels.into_iter().map(|(l, _)| l).collect() })
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

/// One panel: a title, a y-axis description and named series.
struct Panel {
    title: String,
    y_desc: String,
    series: Vec<(String, Vec<(i64, f64)>)>,
    log_y: bool,
}

fn panels(log: &Log) -> Vec<Panel> {
    let named = |keys: [String; 2]| -> Vec<(String, Vec<(i64, f64)>)> {
        keys.into_iter()
            .map(|k| {
                let s = log.series(&k);
                (k, s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect()
    };
    let losses = named(["train_loss".into(), "val_loss".into()]);
    let finite: Vec<f64> =
        losses.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = bounds(&finite);
    let log_y = !finite.is_empty() && lo > 0.0 && hi / lo > 10.0;
    let mut out = vec![Panel { title: "loss".into(), y_desc: "loss".into(), series: losses, log_y }];
    for label in &log.labels {
        out.push(Panel {
            title: label.clone(),
            y_desc: label.clone(),
            series: named([format!("val_{label}"), format!("train_{label}")]),
            log_y: false,
        });
    }
    out
}

/// Smallest and largest value (`(inf, -inf)` for none).
fn bounds(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}

/// Draws every panel into an SVG document.
fn render(log: &Log) -> Result<String, String> {
    let panels = panels(log);
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT * panels.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let areas = root.split_evenly((panels.len(), 1));
        let first = *log.epochs.keys().next().unwrap_or(&1) as i64;
        let last = *log.epochs.keys().next_back().unwrap_or(&1) as i64;
        let x = if first < last { first..last } else { first - 1..last + 1 };
        for (panel, area) in panels.iter().zip(&areas) {
            let finite: Vec<f64> = panel
                .series
                .iter()
                .flat_map(|(_, s)| s.iter().map(|p| p.1))
                .filter(|v| v.is_finite())
                .collect();
            let (lo, hi) = bounds(&finite);
            if panel.log_y {
                draw_panel(area, panel, x.clone(), (lo / 1.2..hi * 1.2).log_scale())?;
            } else {
                draw_panel(area, panel, x.clone(), linear_range(lo, hi))?;
            }
        }
        root.present().map_err(drawing)?;
    }
    Ok(svg)
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

fn draw_panel<DB, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    x: std::ops::Range<i64>,
    y: Y,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d::<std::ops::Range<i64>, Y>(x, y)
        .map_err(drawing)?;
    chart.configure_mesh().x_desc("epoch").y_desc(panel.y_desc.as_str()).draw().map_err(drawing)?;
    for (name, points) in &panel.series {
        let color = if name.starts_with("train_") { BLUE } else { RED };
        let style = ShapeStyle::from(&color).stroke_width(2);
        // The legend entry, drawn even when every value is NaN.
        chart
            .draw_series(LineSeries::new(std::iter::empty::<(i64, f64)>(), style))
            .map_err(drawing)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        for segment in segments(points) {
            chart.draw_series(LineSeries::new(segment.iter().copied(), style)).map_err(drawing)?;
            chart.draw_series(segment.iter().map(|p| Circle::new(*p, 2, color.filled()))).map_err(drawing)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)?;
    Ok(())
}

/// Runs of consecutive finite points; a NaN or an infinite value ends a run.
fn segments(points: &[(i64, f64)]) -> Vec<Vec<(i64, f64)>> {
    points.split(|p| !p.1.is_finite()).filter(|s| !s.is_empty()).map(<[(i64, f64)]>::to_vec).collect()
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    format!("cannot draw the plot: {e}")
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
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
