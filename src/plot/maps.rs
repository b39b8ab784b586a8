//! `nnc plot RUN_DIR --maps`: one validation example of a gridded model as
//! heat maps in physical units.
//!
//! Each row shows one variable (one lead time of it for a sequence model,
//! whose targets are `[T, C, H, W]`): the input (its last frame, in the
//! first row of a variable), the target, the prediction and the error
//! (prediction − target), each with its own colour bar. Input (when it is
//! the same variable), target and prediction share one range, over every
//! lead, so that their colours compare; the error has a diverging map
//! centred on zero. Values take viridis, or the diverging map when they are
//! an increment or an anomaly (both signs, [`Scale::of`]). Missing values
//! (NaN) are grey, and a note under the figure says so. When the data say
//! where the cells lie ([`nnc_runtime::data::Grid`]), the axes carry the
//! latitude of the left edge and the longitude of the bottom edge; else the
//! cell indices (row 0 at the top).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::colour::{Scale, MISSING};
use super::figure::{image, Figure, Layer};
use super::run::{chosen_variables, trained_model, variable_names, variable_units};
use super::{drawing, linear_ticks_about, tick_label, Format};

/// What `nnc plot --maps` draws and where.
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    /// The validation example, counted from 0.
    pub example: usize,
    /// Only this variable (by name); all of them when absent.
    pub variable: Option<String>,
    /// The file to write; `RUN_DIR/maps.svg` when absent.
    pub output: Option<PathBuf>,
    /// The format when `output` is absent.
    pub format: Format,
}

/// Width of a map of a grid about as wide as it is high, and of a wide one
/// (more than 1.3 times as wide), in pixels.
const MAP_WIDTH: u32 = 158;
const WIDE_MAP_WIDTH: u32 = 250;
/// Width of the colour bar's column, of the map's tick labels, and of the
/// margins, in pixels.
const BAR_COLUMN: u32 = 78;
const Y_LABELS: u32 = 56;
const X_LABELS: u32 = 24;
const MARGIN: u32 = 6;
const CAPTION: u32 = 24;
const HEADER: u32 = 46;
const FOOTER: u32 = 30;

/// One field of one panel: `h × w` values, row 0 at the top.
struct Field {
    values: Vec<f32>,
    title: String,
    unit: Option<String>,
    scale: Scale,
}

/// Draws the maps of one validation example of the run in `run_dir`;
/// returns the path written.
pub fn plot_maps(run_dir: &Path, opts: &MapOptions) -> Result<PathBuf, String> {
    let model = trained_model(run_dir)?;
    let (pred_name, ty, dims) = model.prediction_shape()?;
    let grid_like = dims.len() >= 3 && dims[dims.len() - 2..].iter().all(|d| d.is_none_or(|d| d >= 2));
    if !grid_like {
        return Err(format!(
            "--maps draws gridded predictions ([C, H, W] or [T, C, H, W] per example), and the prediction \
             `{pred_name}` of model {} is {ty}; --scatter draws any regression model's predictions",
            model.module.name
        ));
    }
    let p = model.predictions(Some(opts.example))?;
    let target = p.target.as_ref().unwrap_or(&p.input);
    let pred = &p.prediction.values;
    let per = pred.shape()[1..].to_vec();
    if target.values.shape()[1..] != per[..] {
        return Err(format!(
            "the prediction `{pred_name}` has shape {:?} per example and the target `{}` {:?}: the maps \
             compare them cell by cell",
            per,
            target.name,
            &target.values.shape()[1..]
        ));
    }
    let (leads, channels) = match (target.sequence, per.len()) {
        (true, 4) => (per[0], per[1]),
        (false, 3) => (1, per[0]),
        _ => {
            return Err(format!(
                "--maps draws predictions of [C, H, W] or of [T, C, H, W] per example (a sequence); `{pred_name}` \
                 is {per:?} per example"
            ))
        }
    };
    let (h, w) = (per[per.len() - 2], per[per.len() - 1]);
    let names = variable_names(&target.variables, &target.name, channels);
    let units = variable_units(target.unit.as_deref(), channels);
    let chosen = chosen_variables(&names, opts.variable.as_deref(), &model.module.name)?;
    // The field of `a` (one example) at lead `l` and variable `c`.
    let field = |a: &ArrayD<f32>, l: usize, c: usize| -> Vec<f32> {
        let e = a.index_axis(Axis(0), 0);
        let e = if target.sequence { e.index_axis_move(Axis(0), l) } else { e };
        e.index_axis_move(Axis(0), c).iter().copied().collect()
    };
    let input = InputFrames::of(&p.input, (h, w));
    let columns = if input.is_some() { 4 } else { 3 };
    // Panels, row by row: [input or nothing, target, prediction, error].
    let mut rows: Vec<Vec<Option<Field>>> = vec![];
    for &c in &chosen {
        let targets: Vec<Vec<f32>> = (0..leads).map(|l| field(&target.values, l, c)).collect();
        let preds: Vec<Vec<f32>> = (0..leads).map(|l| field(pred, l, c)).collect();
        let errors: Vec<Vec<f32>> =
            preds.iter().zip(&targets).map(|(p, t)| p.iter().zip(t).map(|(p, t)| p - t).collect()).collect();
        let input_field = input.as_ref().map(|i| i.frame(channels, c, &names[c]));
        // Observations decide whether the values diverge (increments,
        // anomalies); the range covers the predictions too.
        let outputs = Scale::spanning(
            targets.iter().flatten().copied(),
            targets.iter().chain(&preds).flatten().copied(),
            false,
        );
        // The input shares the colours of target and prediction when it is
        // the same variable, of the same kind (not a field against its
        // increment) and in overlapping ranges.
        let same_variable = input_field.as_ref().is_some_and(|f| {
            let own = Scale::of(f.values.iter().copied(), false);
            f.same_variable && own.diverging == outputs.diverging && overlapping(&own, &outputs)
        });
        let scale = if same_variable {
            let shared = targets.iter().chain(&preds).chain(input_field.iter().map(|f| &f.values));
            Scale::spanning(targets.iter().flatten().copied(), shared.flatten().copied(), false)
        } else {
            outputs
        };
        let error_scale = Scale::of(errors.iter().flatten().copied(), true);
        for l in 0..leads {
            let lead = if target.sequence { format!(", lead {}", l + 1) } else { String::new() };
            let mut row: Vec<Option<Field>> = vec![];
            if let Some(f) = &input_field {
                row.push((l == 0).then(|| Field {
                    values: f.values.clone(),
                    title: f.title.clone(),
                    unit: f.unit.clone(),
                    scale: if same_variable { scale } else { Scale::of(f.values.iter().copied(), false) },
                }));
            }
            let unit = units[c].clone();
            row.push(Some(Field {
                values: targets[l].clone(),
                title: format!("target {}{lead}", names[c]),
                unit: unit.clone(),
                scale,
            }));
            row.push(Some(Field {
                values: preds[l].clone(),
                title: format!("prediction {}{lead}", names[c]),
                unit: unit.clone(),
                scale,
            }));
            row.push(Some(Field {
                values: errors[l].clone(),
                title: format!("error{lead}"),
                unit,
                scale: error_scale,
            }));
            rows.push(row);
        }
    }
    let coords = p.grid.as_ref().and_then(|g| g.field(0, h, w));
    let missing = rows.iter().flatten().flatten().any(|f| f.values.iter().any(|v| !v.is_finite()));
    let position = p.positions.first().copied().unwrap_or(opts.example);
    let title =
        format!("{}: validation example {position} of {} ({})", model.module.name, p.subset_size, p.origin);
    let figure = draw(&rows, columns, (h, w), coords.as_ref(), &title, missing)?;
    let (output, format) = match &opts.output {
        Some(path) => (path.clone(), Format::of(path)?),
        None => {
            let ext = if opts.format == Format::Png { "png" } else { "svg" };
            (run_dir.join(format!("maps.{ext}")), opts.format)
        }
    };
    figure.write(&output, format)?;
    Ok(output)
}

/// The last frame of an input on the target's grid.
struct InputFrames<'a> {
    values: &'a nnc_runtime::train::Values,
    /// The number of variables, and where they and time are in an example.
    channels: usize,
    layout: InputLayout,
}

enum InputLayout {
    /// `[C, H, W]`.
    Fields,
    /// `[T, C, H, W]`: the last time step.
    Sequence(usize),
    /// `[C, T, H, W]` (for conv3d): the last time step.
    VariablesFirst(usize),
}

/// One input panel.
struct InputFrame {
    values: Vec<f32>,
    title: String,
    unit: Option<String>,
    /// The input's variable is the target's (same count of variables).
    same_variable: bool,
}

impl<'a> InputFrames<'a> {
    /// The input's frames, when they lie on the `h × w` grid of the target.
    fn of(input: &'a nnc_runtime::train::Values, (h, w): (usize, usize)) -> Option<InputFrames<'a>> {
        let s = &input.values.shape()[1..];
        if s.len() < 3 || s[s.len() - 2..] != [h, w] {
            return None;
        }
        let (channels, layout) = match (input.sequence, s.len()) {
            (false, 3) => (s[0], InputLayout::Fields),
            (true, 4) => (s[1], InputLayout::Sequence(s[0] - 1)),
            (false, 4) => (s[0], InputLayout::VariablesFirst(s[1] - 1)),
            _ => return None,
        };
        Some(InputFrames { values: input, channels, layout })
    }

    /// The frame of the input's variable `c` (of the target's
    /// `target_channels`, `c` named `target_name`), or its first when the
    /// two count their variables differently. An input with as many
    /// variables as the target and no names of its own takes the target's.
    fn frame(&self, target_channels: usize, c: usize, target_name: &str) -> InputFrame {
        let same_variable = self.channels == target_channels;
        let k = if same_variable { c } else { 0 };
        let e = self.values.values.index_axis(Axis(0), 0);
        let (frame, last) = match self.layout {
            InputLayout::Fields => (e.index_axis_move(Axis(0), k), false),
            InputLayout::Sequence(t) => (e.index_axis_move(Axis(0), t).index_axis_move(Axis(0), k), true),
            InputLayout::VariablesFirst(t) => {
                (e.index_axis_move(Axis(0), k).index_axis_move(Axis(0), t), true)
            }
        };
        let mut names = variable_names(&self.values.variables, &self.values.name, self.channels);
        if same_variable && self.values.variables.is_empty() && self.channels > 1 {
            names[k] = target_name.to_string();
        }
        let units = variable_units(self.values.unit.as_deref(), self.channels);
        let suffix = if last { ", last frame" } else { "" };
        InputFrame {
            values: frame.iter().copied().collect(),
            title: format!("input {}{suffix}", names[k]),
            unit: units[k].clone(),
            same_variable,
        }
    }
}

/// Whether two ranges overlap over at least a tenth of their union (rain
/// of 0–4 and 0–9 mm/h do; pressure and its change do not).
fn overlapping(a: &Scale, b: &Scale) -> bool {
    let common = a.hi.min(b.hi) - a.lo.max(b.lo);
    let union = a.hi.max(b.hi) - a.lo.min(b.lo);
    union > 0.0 && common >= 0.1 * union
}

/// An axis of a map: positions in cells, ticks where the labels say.
#[derive(Clone)]
struct MapAxis {
    range: RangedCoordf64,
    ticks: Vec<(f64, String)>,
}

impl Ranged for MapAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.iter().map(|t| t.0).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.range()
    }
}

impl ValueFormatter<f64> for MapAxis {
    fn format_ext(&self, value: &f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - value).abs().total_cmp(&(b.0 - value).abs()))
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// `v` degrees of latitude: `61.5°N`, `30°S`, `0°`.
fn latitude(v: f64, digit: i32) -> String {
    let text = tick_label(v.abs(), digit);
    match v {
        v if v > 0.0 => format!("{text}°N"),
        v if v < 0.0 => format!("{text}°S"),
        _ => "0°".to_string(),
    }
}

/// `v` degrees of longitude, from −180 to 180: `24.5°E`, `90°W`, `180°`.
fn longitude(v: f64, digit: i32) -> String {
    let l = (v + 180.0).rem_euclid(360.0) - 180.0;
    let text = tick_label(l.abs(), digit);
    match l {
        l if l.abs() < 1e-9 => "0°".to_string(),
        l if (l.abs() - 180.0).abs() < 1e-9 => "180°".to_string(),
        l if l > 0.0 => format!("{text}°E"),
        _ => format!("{text}°W"),
    }
}

/// About `count` round values of degrees over `lo..=hi`: over ten degrees,
/// multiples of 5, 10, 15, 30, 45, 60 or 90 (the graticule of an atlas);
/// else multiples of 1, 2 or 5 times a power of ten.
fn degree_ticks(lo: f64, hi: f64, count: f64) -> super::Ticks {
    if hi - lo < 10.0 {
        return linear_ticks_about(lo, hi, count);
    }
    let steps = [5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 90.0];
    let fits = |step: f64| ((hi / step).floor() - (lo / step).ceil() + 1.0) <= count.ceil() + 1.0;
    let step = steps.iter().copied().find(|&s| fits(s)).unwrap_or(90.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let values: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let digits = vec![0; values.len()];
    super::Ticks { values, digits }
}

/// Ticks along an edge whose cells (at `positions`) have the coordinates
/// `values`: about `count` round values, each placed where the edge
/// crosses it (linearly between cell centres).
fn edge_ticks(
    values: &[f32],
    positions: &[f64],
    count: f64,
    label: fn(f64, i32) -> String,
) -> Vec<(f64, String)> {
    let finite: Vec<f64> = values.iter().map(|&v| v as f64).filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if !(lo.is_finite() && hi > lo) {
        return vec![];
    }
    let ticks = degree_ticks(lo, hi, count);
    let mut out = vec![];
    for (&t, &digit) in ticks.values.iter().zip(&ticks.digits) {
        for i in 0..values.len().saturating_sub(1) {
            let (a, b) = (values[i] as f64, values[i + 1] as f64);
            if a != b && (a - t) * (b - t) <= 0.0 {
                let pos = positions[i] + (t - a) / (b - a) * (positions[i + 1] - positions[i]);
                out.push((pos, label(t, digit)));
                break;
            }
        }
    }
    out
}

/// The two axes of every map of the figure: latitude and longitude of the
/// edges when known, else cell indices. x runs over `0..w` (column c is
/// `c..c + 1`), y over `0..h` with row 0 at the top (`h − 1..h`).
fn axes(
    (h, w): (usize, usize),
    coords: Option<&(ndarray::Array2<f32>, ndarray::Array2<f32>)>,
    (map_w, map_h): (f64, f64),
) -> (MapAxis, MapAxis) {
    let (x_count, y_count) = ((map_w / 75.0).max(2.0), (map_h / 35.0).max(2.0));
    let (mut x_ticks, mut y_ticks) = (vec![], vec![]);
    // At least two ticks on each edge: more round values until two fall
    // inside (a short edge may lie between two round values).
    let at_least_two = |values: &[f32], positions: &[f64], count: f64, label: fn(f64, i32) -> String| {
        let mut count = count;
        loop {
            let ticks = edge_ticks(values, positions, count, label);
            if ticks.len() >= 2 || count > 12.0 {
                return ticks;
            }
            count *= 1.5;
        }
    };
    if let Some((lat, lon)) = coords {
        let bottom: Vec<f32> = lon.row(h - 1).to_vec();
        let xs: Vec<f64> = (0..w).map(|c| c as f64 + 0.5).collect();
        x_ticks = at_least_two(&bottom, &xs, x_count, longitude);
        let left: Vec<f32> = lat.column(0).to_vec();
        let ys: Vec<f64> = (0..h).map(|r| (h - r) as f64 - 0.5).collect();
        y_ticks = at_least_two(&left, &ys, y_count, latitude);
    }
    if x_ticks.len() < 2 || y_ticks.len() < 2 {
        let cells = |n: usize, count: f64| linear_ticks_about(0.0, n as f64, count);
        let t = cells(w, x_count);
        x_ticks = t.values.iter().zip(&t.digits).map(|(&v, &d)| (v, tick_label(v, d))).collect();
        let t = cells(h, y_count);
        y_ticks = t.values.iter().zip(&t.digits).map(|(&v, &d)| (h as f64 - v, tick_label(v, d))).collect();
    }
    (
        MapAxis { range: (0.0..w as f64).into(), ticks: x_ticks },
        MapAxis { range: (0.0..h as f64).into(), ticks: y_ticks },
    )
}

/// Draws the rows of panels into a figure.
fn draw(
    rows: &[Vec<Option<Field>>],
    columns: usize,
    (h, w): (usize, usize),
    coords: Option<&(ndarray::Array2<f32>, ndarray::Array2<f32>)>,
    title: &str,
    missing: bool,
) -> Result<Figure, String> {
    let map_width = if w as f64 > 1.3 * h as f64 { WIDE_MAP_WIDTH } else { MAP_WIDTH };
    let panel_width = map_width + BAR_COLUMN + Y_LABELS + 2 * MARGIN;
    let map_w = map_width as f64;
    let map_h = (map_w * h as f64 / w as f64).clamp(90.0, 1.5 * map_w);
    let row_height = map_h as u32 + CAPTION + X_LABELS + 2 * MARGIN;
    let width = panel_width * columns as u32;
    let footer = if missing { FOOTER } else { 0 };
    let height = HEADER + row_height * rows.len() as u32 + footer;
    let (x_axis, y_axis) = axes((h, w), coords, (map_w, map_h));
    let mut svg = String::new();
    let mut layers = vec![];
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let (header, rest) = root.split_vertically(HEADER);
        header
            .draw_text(title, &TextStyle::from(("sans-serif", 16).into_font()).color(&BLACK), (10, 8))
            .map_err(drawing)?;
        let note = if x_axis.ticks.iter().any(|t| t.1.contains('°')) {
            "axes: latitude of the left edge, longitude of the bottom edge"
        } else {
            "axes: grid cells (row 0 at the top)"
        };
        header
            .draw_text(
                note,
                &TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK.mix(0.7)),
                (10, 28),
            )
            .map_err(drawing)?;
        let mut rest = rest;
        for row in rows {
            let (area, below) = rest.split_vertically(row_height);
            rest = below;
            let cells = area.split_evenly((1, columns));
            for (panel, cell) in row.iter().zip(&cells) {
                if let Some(field) = panel {
                    draw_panel(cell, field, panel_width, (h, w), (&x_axis, &y_axis), &mut layers)?;
                }
            }
        }
        if missing {
            // The note under the maps: a grey swatch and what it means.
            rest.draw(&Rectangle::new([(10, 8), (26, 22)], MISSING.filled())).map_err(drawing)?;
            let style =
                TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            rest.draw_text("grey: missing value (NaN)", &style, (32, 15)).map_err(drawing)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(Figure { svg, layers })
}

/// One map with its title, tick labels and colour bar.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    field: &Field,
    panel_width: u32,
    (h, w): (usize, usize),
    (x_axis, y_axis): (&MapAxis, &MapAxis),
    layers: &mut Vec<Layer>,
) -> Result<(), String> {
    let (map_area, bar_area) = area.split_horizontally(panel_width - BAR_COLUMN);
    let mut chart = ChartBuilder::on(&map_area)
        .caption(&field.title, ("sans-serif", 14))
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(x_axis.clone(), y_axis.clone())
        .map_err(drawing)?;
    chart.configure_mesh().disable_mesh().label_style(("sans-serif", 11)).draw().map_err(drawing)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (w as f64, h as f64)],
            BLACK.stroke_width(1),
        )))
        .map_err(drawing)?;
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let scale = field.scale;
    let pixels = image(w, h, |c, r| scale.colour(field.values[r * w + c]))?;
    layers.push(Layer {
        x: xs.start,
        y: ys.start,
        width: (xs.end - xs.start).max(1) as u32,
        height: (ys.end - ys.start).max(1) as u32,
        image: pixels,
    });
    // The colour bar, as tall as the map.
    let (bx, by) = bar_area.get_base_pixel();
    let (top, bottom) = (ys.start, ys.end);
    let (left, right) = (bx + 8, bx + 22);
    let bar = image(1, 128, |_, r| {
        let t = 1.0 - (r as f64 + 0.5) / 128.0;
        scale.colour((scale.lo + t * (scale.hi - scale.lo)) as f32)
    })?;
    layers.push(Layer {
        x: left,
        y: top,
        width: (right - left) as u32,
        height: (bottom - top).max(1) as u32,
        image: bar,
    });
    let local = |x: i32, y: i32| (x - bx, y - by);
    bar_area
        .draw(&Rectangle::new([local(left, top), local(right, bottom)], BLACK.stroke_width(1)))
        .map_err(drawing)?;
    let count = ((bottom - top) as f64 / 28.0).clamp(2.0, 6.0);
    let ticks = linear_ticks_about(scale.lo, scale.hi, count);
    let style = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (&v, &digit) in ticks.values.iter().zip(&ticks.digits) {
        let y = bottom - ((v - scale.lo) / (scale.hi - scale.lo) * (bottom - top) as f64).round() as i32;
        bar_area
            .draw(&PathElement::new(vec![local(right, y), local(right + 4, y)], BLACK.stroke_width(1)))
            .map_err(drawing)?;
        bar_area.draw_text(&tick_label(v, digit), &style, local(right + 6, y)).map_err(drawing)?;
    }
    if let Some(unit) = &field.unit {
        let style = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
        bar_area.draw_text(unit, &style, local(left - 4, top - 4)).map_err(drawing)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_labelled_in_degrees_with_hemispheres() {
        let labels = |t: super::super::Ticks, label: fn(f64, i32) -> String| -> Vec<String> {
            t.values.iter().zip(&t.digits).map(|(&v, &d)| label(v, d)).collect()
        };
        assert_eq!(labels(degree_ticks(0.0, 357.0, 3.3), longitude), ["0°", "90°E", "180°", "90°W"]);
        assert_eq!(labels(degree_ticks(-90.0, 90.0, 2.6), latitude), ["60°S", "0°", "60°N"]);
        assert_eq!(labels(degree_ticks(61.0, 61.6, 3.0), latitude), ["61.0°N", "61.2°N", "61.4°N", "61.6°N"]);
        // A tick where the edge crosses the value, between cell centres.
        let ticks = edge_ticks(&[10.0, 20.0, 30.0], &[0.5, 1.5, 2.5], 2.0, longitude);
        assert_eq!(ticks, [(0.5, "10°E".to_string()), (1.5, "20°E".to_string()), (2.5, "30°E".to_string())]);
    }
}
