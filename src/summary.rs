//! `nnc summary`: the model's layers as a table, like Keras' `model.summary()`.
//!
//! A pure function of the analysed [`Module`], so the zoo tests snapshot it.
//! Numbers are formatted for people but stably: parameter counts with
//! thousands separators, FLOPs with k/M/G/T suffixes, right-aligned.

use nnc_compiler::ir::Type;
use nnc_compiler::Module;

/// Bytes per parameter: parameters are stored as f32.
const BYTES_PER_PARAM: u64 = 4;

const HEADERS: [&str; 5] = ["layer", "kind", "output shape", "params", "FLOPs/sample"];

/// The total number of trainable scalars of the model.
pub fn total_params(module: &Module) -> u64 {
    module.layers.iter().map(|l| l.params).sum()
}

/// The forward FLOPs of one sample, summed over all layers.
pub fn total_flops(module: &Module) -> u64 {
    module.layers.iter().map(|l| l.flops).sum()
}

/// Renders the summary table of `module`, ending with a newline.
pub fn render_summary(module: &Module) -> String {
    let rows: Vec<[String; 5]> = module
        .layers
        .iter()
        .map(|l| {
            [
                l.name.clone(),
                l.kind.clone(),
                shape_text(&l.output),
                format_count(l.params),
                format_flops(l.flops),
            ]
        })
        .collect();
    let params = total_params(module);
    let flops = total_flops(module);
    let total_row =
        ["total".to_string(), String::new(), String::new(), format_count(params), format_flops(flops)];

    let mut widths = HEADERS.map(str::len);
    for row in rows.iter().chain(std::iter::once(&total_row)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let headers = HEADERS.map(str::to_string);
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));

    let mut s = format!("model {}\n\n", module.name);
    s += &table_line(&headers, &widths);
    s += &rule;
    s.push('\n');
    for row in &rows {
        s += &table_line(row, &widths);
    }
    s += &rule;
    s.push('\n');
    s += &table_line(&total_row, &widths);
    s.push('\n');

    let bytes = params * BYTES_PER_PARAM;
    s += &format!("parameters              {}\n", format_count(params));
    s += &format!("FLOPs per sample        {} ({})\n", format_flops(flops), format_count(flops));
    s += &format!("parameter memory (f32)  {}\n", format_bytes(bytes));
    if !module.constants.is_empty() {
        s += "\nconstants (not trained)\n";
        let name_width = module.constants.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
        let types: Vec<String> = module.constants.iter().map(|c| c.ty.to_string()).collect();
        let type_width = types.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        for (c, ty) in module.constants.iter().zip(&types) {
            let hash = c.sha256.get(..12).unwrap_or(&c.sha256);
            s += &format!("  {:<name_width$}  {ty:<type_width$}  {}  sha256 {hash}\n", c.name, c.origin);
        }
    }
    s
}

/// One line of the table: text columns left-aligned, number columns (the
/// last two) right-aligned, two spaces between columns, no trailing spaces.
fn table_line(cells: &[String; 5], widths: &[usize; 5]) -> String {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line += "  ";
        }
        if i >= 3 {
            line += &format!("{cell:>w$}");
        } else {
            line += &format!("{cell:<w$}");
        }
    }
    let mut line = line.trim_end().to_string();
    line.push('\n');
    line
}

/// The shape of a layer's output: `[B, 16, 32, 32]`, `scalar` for rank 0, with
/// the element type prefixed when it is not f32 (`i32[B]`).
pub(crate) fn shape_text(ty: &Type) -> String {
    let shape = if ty.shape.rank() == 0 { "scalar".to_string() } else { ty.shape.to_string() };
    match ty.dtype {
        nnc_compiler::ir::DType::F32 => shape,
        other => format!("{} {shape}", other.name()),
    }
}

/// An integer with thousands separators: `1234567` → `1,234,567`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A FLOP count with one decimal and a k/M/G/T suffix (exact below 1000):
/// `950`, `1.2k`, `294.9k`, `12.3M`.
pub fn format_flops(n: u64) -> String {
    if n < 1000 {
        return n.to_string();
    }
    let mut value = n as f64 / 1000.0;
    for suffix in ["k", "M", "G"] {
        // Round first, so that 999,960 becomes `1.0M`, not `1000.0k`.
        if (value * 10.0).round() < 10_000.0 {
            return format!("{value:.1}{suffix}");
        }
        value /= 1000.0;
    }
    format!("{value:.1}T")
}

/// Bytes with their KiB and MiB equivalents: `17,412 bytes (17.0 KiB, 0.02 MiB)`.
pub fn format_bytes(bytes: u64) -> String {
    let kib = bytes as f64 / 1024.0;
    let mib = kib / 1024.0;
    format!("{} bytes ({} KiB, {} MiB)", format_count(bytes), format_decimal(kib, 1), format_decimal(mib, 2))
}

/// A non-negative number with `places` decimals and thousands separators in
/// its integer part: `1647.03` → `1,647.0`.
fn format_decimal(x: f64, places: usize) -> String {
    let text = format!("{x:.places$}");
    match text.split_once('.') {
        Some((int, frac)) => match int.parse::<u64>() {
            Ok(n) => format!("{}.{frac}", format_count(n)),
            Err(_) => text,
        },
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(4353), "4,353");
        assert_eq!(format_count(1234567), "1,234,567");
    }

    #[test]
    fn flops() {
        assert_eq!(format_flops(0), "0");
        assert_eq!(format_flops(999), "999");
        assert_eq!(format_flops(1000), "1.0k");
        assert_eq!(format_flops(294_912), "294.9k");
        assert_eq!(format_flops(999_960), "1.0M");
        assert_eq!(format_flops(12_345_678), "12.3M");
        assert_eq!(format_flops(3_000_000_000), "3.0G");
        assert_eq!(format_flops(u64::MAX), "18446744.1T");
    }

    #[test]
    fn bytes() {
        assert_eq!(format_bytes(17_412), "17,412 bytes (17.0 KiB, 0.02 MiB)");
        assert_eq!(format_bytes(1_686_568), "1,686,568 bytes (1,647.0 KiB, 1.61 MiB)");
        assert_eq!(format_bytes(0), "0 bytes (0.0 KiB, 0.00 MiB)");
    }
}

#[cfg(test)]
mod table_tests {
    use nnc_compiler::ir::{DType, Dim, Graph, Loc, Mode, Shape, Type};
    use nnc_compiler::{LayerInfo, Module};

    use super::render_summary;

    fn layer(name: &str, kind: &str, dtype: DType, dims: &[&str], params: u64, flops: u64) -> LayerInfo {
        let dims =
            dims.iter().map(|d| d.parse().map_or_else(|_| Dim::Sym(d.to_string()), Dim::Known)).collect();
        LayerInfo {
            name: name.into(),
            kind: kind.into(),
            output: Type::new(dtype, Shape(dims)),
            params,
            flops,
            loc: Loc::NONE,
        }
    }

    #[test]
    fn table_layout() {
        let module = Module {
            name: "demo".into(),
            train_graph: Graph::new("demo", Mode::Train),
            infer_graph: Graph::new("demo", Mode::Infer),
            train: None,
            constants: vec![],
            losses: vec!["loss".into()],
            layer_values: vec![],
            layers: vec![
                layer("e1.conv2d_1", "conv2d", DType::F32, &["B", "16", "32", "32"], 160, 294_912),
                layer("e1.relu_1", "relu", DType::F32, &["B", "16", "32", "32"], 0, 16_384),
                layer("z.dense_1", "dense", DType::F32, &["B", "10"], 1_290, 2_560),
                layer("loss.cross_entropy_1", "cross_entropy", DType::F32, &[], 0, 50),
            ],
        };
        let expected = "\
model demo

layer                 kind           output shape     params  FLOPs/sample
--------------------------------------------------------------------------
e1.conv2d_1           conv2d         [B, 16, 32, 32]     160        294.9k
e1.relu_1             relu           [B, 16, 32, 32]       0         16.4k
z.dense_1             dense          [B, 10]           1,290          2.6k
loss.cross_entropy_1  cross_entropy  scalar                0            50
--------------------------------------------------------------------------
total                                                  1,450        313.9k

parameters              1,450
FLOPs per sample        313.9k (313,906)
parameter memory (f32)  5,800 bytes (5.7 KiB, 0.01 MiB)
";
        assert_eq!(render_summary(&module), expected);
    }
}
