//! The picture as SVG: boxes laid out by [`super::layout`], text measured
//! with the DejaVu Sans font that `nnc plot` draws PNG text with (so boxes
//! fit their labels in PNG output exactly, and in SVG viewers with any
//! similar sans-serif font), and a `<title>` per box and arrow that viewers
//! show on hover: the `.nn` lines the box came from (`file:line: text`) and
//! what it reads and writes.
//!
//! Every box is a `<g class="node KIND" id="nI">` holding its `<title>`,
//! one `<rect>` and its text; every arrow a `<path class="edge STYLE"
//! data-from="nI" data-to="nJ">`, starting on the border of one box and
//! ending on the border of the other. Styles: `skip` for an arrow of the
//! forward pass from a computed value that passes at least one row
//! (residual adds, U-Net concatenations), `saved` for a forward value read
//! by the backward pass or the update, `data` otherwise.

use std::fmt::Write as _;

use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use super::layout::{layout, Layout, Point};
use super::picture::{ItemKind, Picture};

/// Font sizes of a box's two lines and of the heading, in pixels.
const TITLE_SIZE: f64 = 13.0;
const SUBTITLE_SIZE: f64 = 11.0;
const HEADING_SIZE: f64 = 15.0;
/// Padding inside a box, the height of a box, the smallest box width.
const PAD_X: f64 = 10.0;
const BOX_HEIGHT: f64 = 40.0;
const MIN_WIDTH: f64 = 64.0;
/// Margin around the drawing and the height of the heading and legend.
const MARGIN: f64 = 16.0;
const HEADER: f64 = 58.0;

/// Text widths in the built-in font.
pub struct Measure<'a> {
    font: FontRef<'a>,
}

impl Measure<'static> {
    pub fn new() -> Result<Measure<'static>, String> {
        let font =
            FontRef::new(crate::plot::FONT).map_err(|e| format!("cannot read the built-in font: {e}"))?;
        Ok(Measure { font })
    }
}

impl Measure<'_> {
    /// The advance width of `text` at `size` pixels (characters the font
    /// lacks count as wide as an `M`).
    pub fn width(&self, text: &str, size: f64) -> f64 {
        let charmap = self.font.charmap();
        let metrics = self.font.glyph_metrics(Size::new(size as f32), LocationRef::default());
        let wide = charmap.map('M').and_then(|g| metrics.advance_width(g)).unwrap_or(size as f32 * 0.8);
        text.chars()
            .map(|c| charmap.map(c).and_then(|g| metrics.advance_width(g)).unwrap_or(wide) as f64)
            .sum()
    }
}

/// The size of every box of `picture`.
pub fn box_sizes(picture: &Picture, measure: &Measure) -> Vec<(f64, f64)> {
    picture
        .items
        .iter()
        .map(|item| {
            let text =
                measure.width(&item.title, TITLE_SIZE).max(measure.width(&item.subtitle, SUBTITLE_SIZE));
            let round =
                if matches!(item.kind, ItemKind::Input | ItemKind::Output) { BOX_HEIGHT / 2.0 } else { 0.0 };
            ((text + 2.0 * PAD_X + round).ceil().max(MIN_WIDTH), BOX_HEIGHT)
        })
        .collect()
}

/// Lays out `picture` with the built-in layout, its boxes of `sizes`.
pub fn lay_out(picture: &Picture, sizes: &[(f64, f64)]) -> Layout {
    let edges: Vec<(usize, usize)> = picture.edges.iter().map(|e| (e.from, e.to)).collect();
    layout(sizes, &edges)
}

/// The style of each arrow: `skip`, `saved` or `data` (see the module
/// documentation).
pub fn edge_styles(picture: &Picture, ranks: &[usize]) -> Vec<&'static str> {
    picture
        .edges
        .iter()
        .map(|e| {
            let (from, to) = (&picture.items[e.from], &picture.items[e.to]);
            if !from.backward && to.backward {
                "saved"
            } else if from.kind != ItemKind::Input
                && !from.backward
                && !to.backward
                && ranks[e.to].abs_diff(ranks[e.from]) > 1
            {
                "skip"
            } else {
                "data"
            }
        })
        .collect()
}

/// Fill and stroke colours of a box.
pub fn colours(kind: ItemKind, class: Option<&str>) -> (&'static str, &'static str) {
    match kind {
        ItemKind::Input => ("#dff0d8", "#2e7d32"),
        ItemKind::Output => ("#fbe3e0", "#b23a2b"),
        ItemKind::Layer => ("#e3ecfa", "#2b5797"),
        ItemKind::Op => ("#f3f3f3", "#6b6b6b"),
        ItemKind::Backward => ("#fff0d9", "#b36b00"),
        ItemKind::Kernel => match class {
            Some("matmul" | "conv" | "conv_transpose" | "conv_weight_grad") => ("#e3ecfa", "#2b5797"),
            Some("loop") => ("#eef6ea", "#4f7f3a"),
            Some("copy") => ("#f3f3f3", "#6b6b6b"),
            _ => ("#f3e9f7", "#7b4b94"),
        },
    }
}

/// Stroke colours and dashes of the arrow styles.
fn edge_stroke(style: &str) -> (&'static str, &'static str, f64) {
    match style {
        "skip" => ("#d9480f", "", 2.0),
        "saved" => ("#9a9a9a", "4 3", 1.0),
        _ => ("#555555", "", 1.2),
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The tooltip of a box: its two lines, its source lines as
/// `file:line: text`, and its notes.
pub fn tooltip(picture: &Picture, i: usize, file: &str, source: &str) -> String {
    let item = &picture.items[i];
    let mut lines = vec![item.title.clone()];
    if !item.subtitle.is_empty() {
        lines.push(item.subtitle.clone());
    }
    let text: Vec<&str> = source.lines().collect();
    for &line in &item.lines {
        let code = (line as usize).checked_sub(1).and_then(|i| text.get(i)).map_or("", |l| l.trim());
        lines.push(format!("{file}:{line}: {code}"));
    }
    lines.extend(item.notes.iter().cloned());
    lines.join("\n")
}

/// A two-decimal number for coordinates.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// The SVG path of an arrow through `points`: vertical curves between rows,
/// straight lines down the columns of the rows it passes.
fn path_data(points: &[Point]) -> String {
    let mut d = format!("M{} {}", num(points[0].x), num(points[0].y));
    for pair in points.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if (a.x - b.x).abs() < 0.01 || (a.y - b.y).abs() < 0.01 {
            let _ = write!(d, " L{} {}", num(b.x), num(b.y));
        } else {
            let dy = (b.y - a.y) / 2.0;
            let _ = write!(
                d,
                " C{} {} {} {} {} {}",
                num(a.x),
                num(a.y + dy),
                num(b.x),
                num(b.y - dy),
                num(b.x),
                num(b.y)
            );
        }
    }
    d
}

/// The SVG document of `picture` laid out as `layout` with boxes of
/// `sizes`, headed by `heading`; tooltips quote `source`, read from `file`.
pub fn render(
    picture: &Picture,
    layout: &Layout,
    sizes: &[(f64, f64)],
    heading: &str,
    file: &str,
    source: &str,
) -> String {
    let styles = edge_styles(picture, &layout.ranks);
    let mut key = String::new();
    let legend_end = legend(&mut key, picture, &styles);
    let width = (layout.width + 2.0 * MARGIN).max(legend_end + MARGIN).ceil();
    let height = (layout.height + HEADER + 2.0 * MARGIN).ceil();
    let (dx, dy) = (MARGIN, MARGIN + HEADER);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans, Verdana, sans-serif\">",
        w = num(width),
        h = num(height)
    );
    s.push_str("<defs>\n");
    for style in ["data", "skip", "saved"] {
        let (colour, _, _) = edge_stroke(style);
        let _ = writeln!(
            s,
            "<marker id=\"arrow-{style}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
             markerHeight=\"7\" orient=\"auto-start-reverse\" markerUnits=\"userSpaceOnUse\"><path d=\"M0 0 L10 5 \
             L0 10 z\" fill=\"{colour}\"/></marker>"
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(s, "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"{HEADING_SIZE}\" font-weight=\"bold\" fill=\"#222222\">{}</text>",
        num(MARGIN),
        num(MARGIN + HEADING_SIZE),
        escape(heading)
    );
    s.push_str(&key);

    // Arrows first, so boxes cover their ends.
    for (i, (edge, points)) in picture.edges.iter().zip(&layout.edges).enumerate() {
        if points.len() < 2 {
            continue;
        }
        let moved: Vec<Point> = points.iter().map(|p| Point { x: p.x + dx, y: p.y + dy }).collect();
        let style = styles[i];
        let (colour, dash, stroke_width) = edge_stroke(style);
        let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let from = &picture.items[edge.from];
        let to = &picture.items[edge.to];
        let _ = writeln!(
            s,
            "<path class=\"edge {style}\" data-from=\"n{}\" data-to=\"n{}\" d=\"{}\" fill=\"none\" \
             stroke=\"{colour}\" stroke-width=\"{}\"{dash} marker-end=\"url(#arrow-{style})\"><title>{}</title></path>",
            edge.from,
            edge.to,
            path_data(&moved),
            num(stroke_width),
            escape(&format!("{} → {}: {}", from.title, to.title, edge.value))
        );
    }
    for (i, item) in picture.items.iter().enumerate() {
        let at = layout.boxes[i];
        let (x, y, w, h) = (at.x + dx, at.y + dy, sizes[i].0, sizes[i].1);
        let (fill, stroke) = colours(item.kind, item.class);
        let rx = match item.kind {
            ItemKind::Input | ItemKind::Output => h / 2.0,
            _ => 4.0,
        };
        let dash = if item.kind == ItemKind::Op { " stroke-dasharray=\"3 2\"" } else { "" };
        let class = match item.class {
            Some(class) => format!("node {} {class}", item.kind.name()),
            None => format!("node {}", item.kind.name()),
        };
        let _ = writeln!(s, "<g class=\"{class}\" id=\"n{i}\">");
        let _ = writeln!(s, "<title>{}</title>", escape(&tooltip(picture, i, file, source)));
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" \
             stroke-width=\"1.2\"{dash}/>",
            num(x),
            num(y),
            num(w),
            num(h),
            num(rx)
        );
        let cx = x + w / 2.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"{TITLE_SIZE}\" text-anchor=\"middle\" fill=\"#1a1a1a\">{}</text>",
            num(cx),
            num(y + 17.0),
            escape(&item.title)
        );
        if !item.subtitle.is_empty() {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"{SUBTITLE_SIZE}\" text-anchor=\"middle\" fill=\"#555555\">{}</text>",
                num(cx),
                num(y + 32.0),
                escape(&item.subtitle)
            );
        }
        s.push_str("</g>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// One row of swatches under the heading: the kinds of box and styles of
/// arrow the picture uses. Returns where the row ends.
fn legend(s: &mut String, picture: &Picture, styles: &[&str]) -> f64 {
    let mut x = MARGIN;
    let y = MARGIN + HEADING_SIZE + 14.0;
    let measure = Measure::new().ok();
    let advance =
        |text: &str| measure.as_ref().map_or(text.len() as f64 * 6.5, |m| m.width(text, SUBTITLE_SIZE));
    let kinds = [
        (ItemKind::Input, "input, target, constant"),
        (ItemKind::Layer, "layer"),
        (ItemKind::Op, "expression"),
        (ItemKind::Backward, "backward pass"),
        (ItemKind::Kernel, "kernel"),
        (ItemKind::Output, "loss, output"),
    ];
    let _ = writeln!(s, "<g class=\"legend\" font-size=\"{SUBTITLE_SIZE}\" fill=\"#333333\">");
    for (kind, text) in kinds {
        if !picture.items.iter().any(|i| i.kind == kind) {
            continue;
        }
        let (fill, stroke) = colours(kind, Some("loop"));
        let rx = if matches!(kind, ItemKind::Input | ItemKind::Output) { 6.0 } else { 2.0 };
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"22\" height=\"12\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"{stroke}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            num(x),
            num(y),
            num(x + 27.0),
            num(y + 10.0),
            escape(text)
        );
        x += 27.0 + advance(text) + 16.0;
    }
    for (style, text) in [("skip", "skip connection"), ("saved", "saved for the backward pass")] {
        if !styles.contains(&style) {
            continue;
        }
        let (colour, dash, width) = edge_stroke(style);
        let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
        let _ = writeln!(
            s,
            "<path d=\"M{} {} h22\" stroke=\"{colour}\" stroke-width=\"{}\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            num(x),
            num(y + 6.0),
            num(width),
            num(x + 27.0),
            num(y + 10.0),
            escape(text)
        );
        x += 27.0 + advance(text) + 16.0;
    }
    s.push_str("</g>\n");
    x - 16.0
}
