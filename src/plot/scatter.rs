//! `nnc plot RUN_DIR --scatter`: a regression model's predictions against
//! the observed values of every validation example, in physical units.
//!
//! One panel per output variable (small multiples, three to a row): the
//! pairs (observed, predicted) as points, every k-th pair when there are
//! more than [`MAX_POINTS`] (k the smallest that keeps at most that many, so
//! the same run always gives the same figure), the 1:1 line, and the
//! reliability curve: the validation pairs binned by predicted value (ten
//! bins of equal width), each bin drawn at its mean observed and mean
//! predicted value, so that a reliable model follows the 1:1 line. RMSE and
//! bias (mean of predicted − observed) over every pair are written on the
//! panel. Missing observations (NaN) are left out.

use std::path::{Path, PathBuf};

use ndarray::Axis;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::run::{chosen_variables, trained_model, variable_names, variable_units, with_unit};
use super::{drawing, linear_range, linear_ticks, write_atomically, Format, Scale as AxisScale, YAxis};

/// What `nnc plot --scatter` draws and where.
#[derive(Clone, Debug, Default)]
pub struct ScatterOptions {
    /// Only this variable (by name); all of them when absent.
    pub variable: Option<String>,
    /// The file to write; `RUN_DIR/scatter.svg` when absent.
    pub output: Option<PathBuf>,
    /// The format when `output` is absent.
    pub format: Format,
}

/// The most points drawn in one panel.
const MAX_POINTS: usize = 4000;
/// The colours of the points and of the reliability curve.
const POINTS: RGBColor = RGBColor(31, 119, 180);
const CURVE: RGBColor = RGBColor(230, 85, 13);
/// Bins of the reliability curve.
const BINS: usize = 10;
/// Panels to a row.
const COLUMNS: usize = 3;
const HEADER: u32 = 60;

/// The pairs of one variable.
struct Panel {
    name: String,
    unit: Option<String>,
    /// (observed, predicted), both finite.
    pairs: Vec<(f64, f64)>,
}

/// Draws the scatter plots of the run in `run_dir`; returns the path written.
pub fn plot_scatter(run_dir: &Path, opts: &ScatterOptions) -> Result<PathBuf, String> {
    let model = trained_model(run_dir)?;
    let (pred_name, ty, _) = model.prediction_shape()?;
    let p = model.predictions(None)?;
    let observed = p.target.as_ref().unwrap_or(&p.input);
    let (obs, pred) = (&observed.values, &p.prediction.values);
    if obs.shape() != pred.shape() {
        return Err(format!(
            "the prediction `{pred_name}` ({ty}) and the target `{}` differ in shape ({:?} and {:?} per \
             example): --scatter compares them value by value",
            observed.name,
            &pred.shape()[1..],
            &obs.shape()[1..]
        ));
    }
    // The axis of the variables: 2 for a sequence ([n, T, C, ...]), else
    // 1, when the source names them, the example is a grid or a short
    // vector; otherwise every value is one variable.
    let rank = obs.ndim() - 1;
    let axis = if observed.sequence && rank >= 2 {
        Some(2)
    } else if rank >= 1 && (!observed.variables.is_empty() || rank >= 3 || obs.shape()[1] <= 12) {
        Some(1)
    } else {
        None
    };
    let count = axis.map_or(1, |a| obs.shape()[a]);
    let names = variable_names(&observed.variables, &observed.name, count);
    let units = variable_units(observed.unit.as_deref(), count);
    let chosen = chosen_variables(&names, opts.variable.as_deref(), &model.module.name)?;
    let mut panels = vec![];
    for c in chosen {
        let (o, q) = match axis {
            Some(a) => (obs.index_axis(Axis(a), c), pred.index_axis(Axis(a), c)),
            None => (obs.view(), pred.view()),
        };
        let pairs: Vec<(f64, f64)> = o
            .iter()
            .zip(q.iter())
            .map(|(&o, &q)| (o as f64, q as f64))
            .filter(|(o, q)| o.is_finite() && q.is_finite())
            .collect();
        if pairs.is_empty() {
            return Err(format!("{}: every observed value of `{}` is missing", p.origin, names[c]));
        }
        panels.push(Panel { name: names[c].clone(), unit: units[c].clone(), pairs });
    }
    let title = format!(
        "{}: predicted against observed, {} validation examples of {}",
        model.module.name, p.subset_size, p.origin
    );
    let svg = draw(&panels, &title)?;
    let (output, format) = match &opts.output {
        Some(path) => (path.clone(), Format::of(path)?),
        None => {
            let ext = if opts.format == Format::Png { "png" } else { "svg" };
            (run_dir.join(format!("scatter.{ext}")), opts.format)
        }
    };
    let bytes = match format {
        Format::Svg => svg.into_bytes(),
        Format::Png => super::svg_to_png(&svg)?,
    };
    write_atomically(&output, &bytes)?;
    Ok(output)
}

/// RMSE and bias (mean of predicted − observed) of the pairs.
fn scores(pairs: &[(f64, f64)]) -> (f64, f64) {
    let n = pairs.len().max(1) as f64;
    let bias = pairs.iter().map(|(o, p)| p - o).sum::<f64>() / n;
    let mse = pairs.iter().map(|(o, p)| (p - o) * (p - o)).sum::<f64>() / n;
    (mse.sqrt(), bias)
}

/// The reliability curve: per bin of predicted value (equal widths over
/// the predicted range), the mean observed and mean predicted value of the
/// bins that hold a pair.
fn reliability(pairs: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let (lo, hi) =
        pairs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if !(hi - lo).is_finite() || hi <= lo {
        return vec![];
    }
    let mut sums = [(0.0f64, 0.0f64, 0usize); BINS];
    for &(o, p) in pairs {
        let k = (((p - lo) / (hi - lo)) * BINS as f64).floor().clamp(0.0, (BINS - 1) as f64) as usize;
        sums[k] = (sums[k].0 + o, sums[k].1 + p, sums[k].2 + 1);
    }
    sums.iter().filter(|s| s.2 > 0).map(|&(o, p, n)| (o / n as f64, p / n as f64)).collect()
}

/// `v` with three significant digits (scientific when very small or large).
fn significant(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return format!("{v}");
    }
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

fn draw(panels: &[Panel], title: &str) -> Result<String, String> {
    let columns = panels.len().clamp(1, COLUMNS);
    let side: u32 = if columns == 1 { 540 } else { 320 };
    let rows = panels.len().div_ceil(columns) as u32;
    let (width, height) = (side * columns as u32, HEADER + rows * side);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let (header, body) = root.split_vertically(HEADER);
        header
            .draw_text(title, &TextStyle::from(("sans-serif", 16).into_font()).color(&BLACK), (10, 12))
            .map_err(drawing)?;
        legend(&header)?;
        let cells = body.split_evenly((rows as usize, columns));
        for (panel, cell) in panels.iter().zip(&cells) {
            draw_panel(cell, panel)?;
        }
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// What the marks mean, once for every panel, under the title.
fn legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let y = 44;
    area.draw(&Circle::new((16, y), 3, POINTS.filled())).map_err(drawing)?;
    area.draw_text("validation values", &style, (26, y)).map_err(drawing)?;
    for x in [160, 172] {
        area.draw(&PathElement::new(vec![(x, y), (x + 7, y)], BLACK.stroke_width(1))).map_err(drawing)?;
    }
    area.draw_text("1:1", &style, (186, y)).map_err(drawing)?;
    area.draw(&PathElement::new(vec![(230, y), (254, y)], CURVE.stroke_width(2))).map_err(drawing)?;
    area.draw(&Circle::new((242, y), 3, CURVE.filled())).map_err(drawing)?;
    area.draw_text("mean observed in ten bins of predicted value (reliability)", &style, (262, y))
        .map_err(drawing)?;
    Ok(())
}

/// `2nd`, `3rd`, `11th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let pairs = &panel.pairs;
    let (lo, hi) = pairs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(o, p)| (a.min(o).min(p), b.max(o).max(p)));
    let range = linear_range(lo, hi);
    let axis = || YAxis {
        ticks: linear_ticks(range.start, range.end),
        scale: AxisScale::Linear(range.clone().into()),
    };
    let unit = panel.unit.as_deref();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.name, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(axis(), axis())
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc(with_unit("observed", unit))
        .y_desc(with_unit("predicted", unit))
        .label_style(("sans-serif", 12))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(drawing)?;
    let stride = pairs.len().div_ceil(MAX_POINTS).max(1);
    chart
        .draw_series(
            pairs.iter().step_by(stride).map(|&(o, p)| Circle::new((o, p), 2, POINTS.mix(0.35).filled())),
        )
        .map_err(drawing)?;
    let one_to_one = DashedLineSeries::new(
        vec![(range.start, range.start), (range.end, range.end)],
        6,
        4,
        BLACK.stroke_width(1),
    );
    chart.draw_series(one_to_one).map_err(drawing)?;
    let curve = reliability(pairs);
    chart.draw_series(LineSeries::new(curve.iter().copied(), CURVE.stroke_width(2))).map_err(drawing)?;
    chart.draw_series(curve.iter().map(|&p| Circle::new(p, 3, CURVE.filled()))).map_err(drawing)?;
    let (rmse, bias) = scores(pairs);
    let text = chart.plotting_area().strip_coord_spec();
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
    let unit_text = unit.map_or(String::new(), |u| format!(" {u}"));
    let sign = if bias > 0.0 { "+" } else { "" };
    text.draw_text(&format!("RMSE {}{unit_text}", significant(rmse)), &style, (8, 6)).map_err(drawing)?;
    text.draw_text(&format!("bias {sign}{}{unit_text}", significant(bias)), &style, (8, 24))
        .map_err(drawing)?;
    text.draw_text(&format!("n = {}", pairs.len()), &style, (8, 42)).map_err(drawing)?;
    if stride > 1 {
        text.draw_text(&format!("every {} drawn", ordinal(stride)), &style, (8, 60)).map_err(drawing)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_reliability_of_known_pairs() {
        let pairs = [(0.0, 1.0), (1.0, 1.0), (2.0, 3.0), (3.0, 3.0)];
        let (rmse, bias) = scores(&pairs);
        assert!((rmse - 0.5f64.sqrt()).abs() < 1e-12 && (bias - 0.5).abs() < 1e-12);
        // Predictions 1 and 3 fall into the first and last bins.
        assert_eq!(reliability(&pairs), [(0.5, 1.0), (2.5, 3.0)]);
        assert_eq!(significant(0.012345), "0.0123");
        assert_eq!(significant(-123.4), "-123");
        assert_eq!([ordinal(2), ordinal(3), ordinal(11), ordinal(21)], ["2nd", "3rd", "11th", "21st"]);
    }
}
