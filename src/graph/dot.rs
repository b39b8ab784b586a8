//! The picture as Graphviz DOT text, written by nnc (no Graphviz needed):
//! the same boxes, colours, arrow styles and tooltips as the SVG, for
//! `dot`, `xdot` or any tool that reads DOT.

use std::fmt::Write as _;

use super::picture::{ItemKind, Picture};
use super::svg;

/// A DOT string literal.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The DOT text of `picture`; `styles` is the style of every arrow
/// ([`svg::edge_styles`]), `heading` the graph's label.
pub fn render(picture: &Picture, styles: &[&str], heading: &str, file: &str, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph {} {{", quote(heading));
    let _ = writeln!(
        s,
        "  graph [rankdir=TB, label={}, labelloc=t, fontname=\"DejaVu Sans\", fontsize=15, nodesep=0.3, ranksep=0.45];",
        quote(heading)
    );
    s.push_str(
        "  node [fontname=\"DejaVu Sans\", fontsize=11, shape=box, style=\"filled\", penwidth=1.2];\n",
    );
    s.push_str("  edge [color=\"#555555\", arrowsize=0.7];\n");
    for (i, item) in picture.items.iter().enumerate() {
        let (fill, stroke) = svg::colours(item.kind, item.class);
        let style = match item.kind {
            ItemKind::Input | ItemKind::Output => "rounded,filled",
            ItemKind::Op => "dashed,filled",
            _ => "filled",
        };
        let label = if item.subtitle.is_empty() {
            item.title.clone()
        } else {
            format!("{}\n{}", item.title, item.subtitle)
        };
        let _ = writeln!(
            s,
            "  n{i} [label={}, style={}, fillcolor={}, color={}, tooltip={}];",
            quote(&label),
            quote(style),
            quote(fill),
            quote(stroke),
            quote(&svg::tooltip(picture, i, file, source))
        );
    }
    for (edge, style) in picture.edges.iter().zip(styles) {
        let attrs = match *style {
            "skip" => " [color=\"#d9480f\", penwidth=2]",
            "saved" => " [color=\"#9a9a9a\", style=dashed]",
            _ => "",
        };
        let _ = writeln!(s, "  n{} -> n{}{attrs};", edge.from, edge.to);
    }
    s.push_str("}\n");
    s
}
