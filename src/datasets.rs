//! `nnc datasets`: the real data sets shipped inside the binary, as a table.
//!
//! The catalogue itself lives with the training configuration
//! (`nnc_compiler::config::datasets`); this module only renders it for a
//! terminal.

use std::io::{self, Write};

use nnc_compiler::config::datasets::{ArrayInfo, DATASETS};

/// A shape as `[a, b, c]`.
fn shape_text(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// An array of a task as `f32[n, 8, 8] mm`.
fn array_text(a: &ArrayInfo) -> String {
    match a.unit {
        Some(unit) => format!("{}{} {unit}", a.dtype, shape_text(a.shape)),
        None => format!("{}{}", a.dtype, shape_text(a.shape)),
    }
}

/// Prints every task of every shipped data set: name, task, examples, `x`
/// and `y` (shape and unit) and split order as aligned columns, and then
/// each set's description, tasks, provenance and licence.
pub fn print_datasets(out: &mut impl Write) -> io::Result<()> {
    let entries = DATASETS;
    let header = ["name", "task", "examples", "x", "y", "order"];
    let rows: Vec<[String; 6]> = entries
        .iter()
        .flat_map(|e| {
            e.tasks.iter().map(|t| {
                [
                    e.name.to_string(),
                    t.name.to_string(),
                    t.examples.to_string(),
                    array_text(&t.x),
                    array_text(&t.y),
                    t.order.name().to_string(),
                ]
            })
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = w - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &header)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Use a data set with `data = dataset(\"NAME\")` (its default task) or \
         `data = dataset(\"NAME\", task: \"TASK\")` in a train section."
    )?;
    for e in entries {
        writeln!(out)?;
        writeln!(out, "{}: {}", e.name, e.description)?;
        for t in e.tasks {
            writeln!(out, "  task {}: {}", t.name, t.about)?;
        }
        writeln!(out, "  provenance: {}", e.provenance)?;
        writeln!(out, "  licence: {}", e.licence)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_data_set_with_its_shapes() {
        let mut out = vec![];
        print_datasets(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        let first = text.lines().next().unwrap_or_default();
        assert!(first.starts_with("name") && first.contains("order"), "{text}");
        for (name, part) in [
            ("digits", "f32[1797, 8, 8]"),
            ("mnist_5k", "i32[5000]"),
            ("stageiv_precip", "f32[22, 1, 118, 87] mm"),
            ("storm_jan1996", "missing = drop"),
            ("storm_jan1996", "f32[60, 6, 4, 33, 22]"),
            ("landsea_etopo60", "f32[50, 5, 36, 36]"),
        ] {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing:\n{text}");
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
    }
}
