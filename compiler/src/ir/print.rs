//! The IR text format: printer.
//!
//! Every stage after sema is dumped, snapshotted and debugged as this text,
//! and [`super::parse::parse`] reads it back exactly (`parse(print(g)) == g`,
//! `print(parse(print(g))) == print(g)`), so tests can be written as IR in,
//! IR out.
//!
//! # Grammar
//!
//! Line-oriented: one item per line; blank lines and `#` comments (to the
//! end of the line) are ignored; spaces between tokens are free (the printer
//! starts `@loc` at column 64, the parser ignores alignment).
//!
//! ```text
//! graph    := "graph" name "mode=" ("train" | "infer") "{" NL
//!             (node NL | output NL)* "}"
//! node     := "%" N ":" type "=" op loc? origin?     # N = the node's index
//! op       := mnemonic leaf? operands? attr*
//! leaf     := string | number                        # an input's name, a constant's value
//! operands := "%" N ("," "%" N)*                     # none for leaves
//! attr     := attr-name "=" value                    # any order, each once
//! output   := ("loss" | "prediction" | "state" | "param" | "value") string "=" "%" N
//! loc      := "@" line ":" col "-" end_line ":" end_col
//! origin   := "from" "%" N mnemonic                  # backward ops: the forward
//!                                                    # node whose rule made them
//!
//! type     := dtype "[" (dim ("," dim)*)? "]"        # f32[B, 64], i32[], bool[3]
//! dim      := integer | ident | string               # ident/string: symbolic
//! name     := ident | string
//! role     := "weight" | "bias" | "scale" | "shift"
//! init     := "zeros" | "ones" | "uniform(bound=" number ")"
//!           | "normal(std=" number ")"
//! word     := ident                                  # mode=bilinear | nearest,
//!                                                    # boundary=zeros | edge | circular
//! number   := "-"? (decimal | "inf" | "nan" | "nan(" hex-bits ")")
//! string   := '"' (char | '\"' | '\\' | '\n' | '\t' | '\r' | '\u{' hex '}')* '"'
//! ```
//!
//! Each op's mnemonic, leaf and attributes (names, kinds and printing
//! order) are its row of the op table, [`super::op::OPS`]; for example
//!
//! ```text
//! %3: f32[B, 4, 8, 8] = conv %0, %1 stride=[1, 1] padding=[(1, 1), (1, 1)] dilation=[1, 1] groups=1
//! %7: f32[B, 4, 4, 4] = maxpool %6 window=[2, 2] stride=[2, 2] padding=[(0, 0), (0, 0)]
//! ```
//!
//! Floats print in Rust's shortest round-trip form (`0.5`, `1e-7`, `-0.0`),
//! so they read back bit-exactly; `inf`, `-inf` and `nan` (the canonical
//! quiet NaN, `-nan` with the sign bit set) are words, and any other NaN
//! prints its bits: `nan(0x7ff0000000000001)`.

use std::fmt::{self, Write};

use super::graph::{Graph, Loc, Node, Output};
use super::op::{AttrValue, Init, Leaf, ParamRole, Word};
use super::types::{Dim, Shape, Type};

/// The column (1-based) where `@loc` starts; longer lines put it after one
/// space. A fixed column keeps a node's line unchanged when others change.
const LOC_COLUMN: usize = 64;

/// Prints a graph in the stable text format.
pub fn print(graph: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph {} mode={} {{", name_text(&graph.name), graph.mode.name());
    for (index, node) in graph.nodes.iter().enumerate() {
        let line = format!("  {}", node_text(index, node));
        out.push_str(&line);
        let mut tail = vec![];
        if !node.loc.is_none() {
            tail.push(loc_text(node.loc));
        }
        if let Some(of) = node.grad_of {
            let mnemonic = graph.nodes.get(of.index()).map_or("?", |n| n.op.mnemonic());
            tail.push(format!("from {of} {mnemonic}"));
        }
        if !tail.is_empty() {
            let pad = (LOC_COLUMN - 1).saturating_sub(line.chars().count()).max(1);
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(&tail.join(" "));
        }
        out.push('\n');
    }
    for output in &graph.outputs {
        let _ = writeln!(out, "  {}", output_text(output));
    }
    out.push_str("}\n");
    out
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

/// A node without its location: `%N: type = op operands attrs`.
fn node_text(index: usize, node: &Node) -> String {
    let mut s = format!("%{index}: {} = {}", type_text(&node.ty), node.op.mnemonic());
    match node.op.leaf() {
        Leaf::Name(name) => {
            let _ = write!(s, " {}", string_text(&name));
        }
        Leaf::Value(value) => {
            let _ = write!(s, " {}", float_text(value));
        }
        Leaf::None => {}
    }
    // Leaves have no operands in a well-formed graph; printing them anyway
    // keeps the dump of a broken graph faithful.
    for (i, a) in node.args.iter().enumerate() {
        s.push_str(if i == 0 { " " } else { ", " });
        let _ = write!(s, "{a}");
    }
    for (name, value) in node.op.attrs() {
        let _ = write!(s, " {name}={}", attr_text(&value));
    }
    s
}

fn attr_text(value: &AttrValue) -> String {
    match value {
        AttrValue::Usize(n) => n.to_string(),
        AttrValue::U64(n) => n.to_string(),
        AttrValue::List(values) => list_text(values),
        AttrValue::Pairs(pairs) => pairs_text(pairs),
        AttrValue::Shape(shape) => shape_text(shape),
        AttrValue::DType(dtype) => dtype.name().to_string(),
        AttrValue::Role(role) => role_name(*role).to_string(),
        AttrValue::Init(init) => init_text(*init),
        AttrValue::WarpMode(mode) => mode.name().to_string(),
        AttrValue::Boundary(boundary) => boundary.name().to_string(),
        AttrValue::F64(value) => float_text(*value),
    }
}

fn output_text(output: &Output) -> String {
    format!("{} {} = {}", output.kind.name(), string_text(&output.name), output.value)
}

fn loc_text(loc: Loc) -> String {
    format!("@{}:{}-{}:{}", loc.line, loc.col, loc.end_line, loc.end_col)
}

fn type_text(ty: &Type) -> String {
    format!("{}{}", ty.dtype.name(), shape_text(&ty.shape))
}

fn shape_text(shape: &Shape) -> String {
    let dims: Vec<String> = shape.dims().iter().map(dim_text).collect();
    format!("[{}]", dims.join(", "))
}

fn dim_text(dim: &Dim) -> String {
    match dim {
        Dim::Known(n) => n.to_string(),
        Dim::Sym(s) => name_text(s),
    }
}

fn list_text(values: &[usize]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn pairs_text(pairs: &[(usize, usize)]) -> String {
    let items: Vec<String> = pairs.iter().map(|(lo, hi)| format!("({lo}, {hi})")).collect();
    format!("[{}]", items.join(", "))
}

pub(super) fn role_name(role: ParamRole) -> &'static str {
    match role {
        ParamRole::Weight => "weight",
        ParamRole::Bias => "bias",
        ParamRole::Scale => "scale",
        ParamRole::Shift => "shift",
    }
}

fn init_text(init: Init) -> String {
    match init {
        Init::Zeros => "zeros".to_string(),
        Init::Ones => "ones".to_string(),
        Init::Uniform { bound } => format!("uniform(bound={})", float_text(bound)),
        Init::Normal { std } => format!("normal(std={})", float_text(std)),
    }
}

/// The canonical quiet NaN, printed as `nan` (and `-nan` with the sign bit).
pub(super) const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// A float that reads back bit-exactly.
pub(super) fn float_text(value: f64) -> String {
    if value.is_nan() {
        let bits = value.to_bits();
        if bits == CANONICAL_NAN_BITS {
            "nan".to_string()
        } else if bits == CANONICAL_NAN_BITS | (1 << 63) {
            "-nan".to_string()
        } else {
            format!("nan(0x{bits:016x})")
        }
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        // `Debug` is the shortest representation that round-trips, with a
        // `.0` on integers and an exponent for very large or small values.
        format!("{value:?}")
    }
}

/// Whether `s` can print without quotes: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A graph name or symbolic dimension: bare if it is an identifier.
fn name_text(s: &str) -> String {
    if is_ident(s) {
        s.to_string()
    } else {
        string_text(s)
    }
}

/// A quoted string with `"`, `\` and control characters escaped.
pub(super) fn string_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::graph::{Graph, Loc, Mode, OutputKind, ValueId};
    use super::super::op::OPS;
    use super::super::op::{
        BinaryOp, Boundary, CmpOp, ConvAttrs, Init, InputKind, Op, ParamRole, PoolKind, UnaryOp, WarpAttrs,
        WarpMode, WindowAttrs,
    };
    use super::super::parse::parse;
    use super::super::types::{DType, Dim, Shape, Type};
    use super::print;

    fn loc(line: u32, col: u32, end_line: u32, end_col: u32) -> Loc {
        Loc { line, col, end_line, end_col }
    }

    fn batch(dims: &[usize]) -> Shape {
        let mut s = vec![Dim::Sym("B".into())];
        s.extend(dims.iter().map(|&d| Dim::Known(d)));
        Shape(s)
    }

    fn add(g: &mut Graph, op: Op, args: &[ValueId], at: Loc) -> ValueId {
        g.add(op, args, at).unwrap_or_else(|e| panic!("test graph is ill-typed: {e}"))
    }

    /// A training graph using every op, input kind, init, role and output
    /// kind, with and without locations, known and symbolic dimensions.
    pub(crate) fn sample_train() -> Graph {
        let mut g = Graph::new("every_op", Mode::Train);
        let l = loc(4, 3, 4, 21);
        let x = g.input("x", InputKind::Data, Type::f32(batch(&[3, 8, 8])), l);
        let y = g.input("y", InputKind::Target, Type::new(DType::I32, batch(&[])), loc(5, 3, 5, 21));
        let weight = |init| InputKind::Param { role: ParamRole::Weight, init };
        let w = g.input(
            "c.conv_1.weight",
            weight(Init::Uniform { bound: 0.19245008972987526 }),
            Type::f32(Shape::known(&[4, 3, 3, 3])),
            loc(7, 12, 7, 21),
        );
        let b = g.input(
            "c.conv_1.bias",
            InputKind::Param { role: ParamRole::Bias, init: Init::Zeros },
            Type::f32(Shape::known(&[4])),
            loc(7, 12, 7, 21),
        );
        let gamma = g.input(
            "n.scale",
            InputKind::Param { role: ParamRole::Scale, init: Init::Ones },
            Type::f32(Shape::known(&[4])),
            Loc::NONE,
        );
        let beta = g.input(
            "n.shift",
            InputKind::Param { role: ParamRole::Shift, init: Init::Normal { std: 0.02 } },
            Type::f32(Shape::known(&[4])),
            Loc::NONE,
        );
        let mean = g.input(
            "n.running_mean",
            InputKind::State { init: Init::Zeros },
            Type::f32(Shape::known(&[4])),
            Loc::NONE,
        );
        let key = g.input("rng", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
        let up_w = g.input(
            "u.weight",
            weight(Init::Normal { std: 1e-7 }),
            Type::f32(Shape::known(&[8, 2, 2, 2])),
            Loc::NONE,
        );
        let dense_w = g.input(
            "d.weight \"quoted\" \\ back\tslash",
            weight(Init::Uniform { bound: -0.0 }),
            Type::f32(Shape::known(&[10, 64])),
            Loc::NONE,
        );

        let half = g.constant(0.5, DType::F32, Loc::NONE);
        let _ = g.constant(-0.0, DType::F32, l);
        let _ = g.constant(f64::INFINITY, DType::F32, Loc::NONE);
        let _ = g.constant(f64::NEG_INFINITY, DType::F32, Loc::NONE);
        let _ = g.constant(1e300, DType::F32, Loc::NONE);
        let _ = g.constant(3.0, DType::I32, Loc::NONE);
        let _ = g.constant(1.0, DType::Bool, Loc::NONE);

        let cl = loc(9, 5, 9, 40);
        let conv = Op::Conv(ConvAttrs {
            stride: vec![1, 1],
            padding: vec![(1, 1), (1, 1)],
            dilation: vec![1, 1],
            groups: 1,
        });
        let h = add(&mut g, conv, &[x, w], cl);
        let b4 = add(&mut g, Op::Reshape { shape: Shape::known(&[1, 4, 1, 1]) }, &[b], cl);
        let bb = add(&mut g, Op::Broadcast { shape: batch(&[4, 8, 8]) }, &[b4], cl);
        let mut h = add(&mut g, Op::Binary(BinaryOp::Add), &[h, bb], cl);
        for u in UnaryOp::ALL {
            h = add(&mut g, Op::Unary(u), &[h], loc(10, 1, 12, 100));
        }
        let hb = add(&mut g, Op::Broadcast { shape: batch(&[4, 8, 8]) }, &[half], Loc::NONE);
        for op in BinaryOp::ALL {
            h = add(&mut g, Op::Binary(op), &[h, hb], Loc::NONE);
        }
        let mut cond = h;
        for c in CmpOp::ALL {
            cond = add(&mut g, Op::Compare(c), &[h, hb], Loc::NONE);
        }
        let h = add(&mut g, Op::Select, &[cond, h, hb], Loc::NONE);
        let _ = add(&mut g, Op::Cast { to: DType::F32 }, &[cond], Loc::NONE);
        let _ = add(&mut g, Op::Cast { to: DType::I32 }, &[h], Loc::NONE);
        let _ = add(&mut g, Op::Cast { to: DType::Bool }, &[h], Loc::NONE);
        let _ = add(&mut g, Op::Permute { axes: vec![0, 2, 3, 1] }, &[h], Loc::NONE);
        let s = add(&mut g, Op::Slice { axis: 1, start: 0, end: 2 }, &[h], Loc::NONE);
        let p = add(&mut g, Op::Pad { axis: 1, lo: 1, hi: 1 }, &[s], Loc::NONE);
        let cat = add(&mut g, Op::Concat { axis: 1 }, &[h, p], Loc::NONE);
        let window = |kind, w: usize, st: usize, pd: usize| {
            Op::Pool(WindowAttrs {
                kind,
                window: vec![w, w],
                stride: vec![st, st],
                padding: vec![(pd, pd), (pd, pd)],
            })
        };
        let m = add(&mut g, window(PoolKind::Max, 2, 2, 0), &[cat], Loc::NONE);
        let a = add(&mut g, window(PoolKind::Avg, 3, 1, 1), &[m], Loc::NONE);
        let up = Op::ConvTranspose {
            conv: ConvAttrs {
                stride: vec![2, 2],
                padding: vec![(1, 0), (0, 1)],
                dilation: vec![1, 1],
                groups: 2,
            },
            output_padding: vec![1, 0],
        };
        let up = add(&mut g, up, &[a, up_w], loc(20, 1, 20, 2));
        let r = add(&mut g, Op::Resize { size: vec![4, 4] }, &[up], Loc::NONE);
        let flow = add(&mut g, Op::Slice { axis: 1, start: 0, end: 2 }, &[r], Loc::NONE);
        let warp = |mode, boundary| WarpAttrs { mode, boundary };
        let sample = Op::Warp(warp(WarpMode::Bilinear, Boundary::Zeros));
        let _ = add(&mut g, sample, &[r, flow], Loc::NONE);
        let grad_input = Op::WarpGradInput(warp(WarpMode::Nearest, Boundary::Edge));
        let _ = add(&mut g, grad_input, &[flow, r], Loc::NONE);
        let grad_flow = Op::WarpGradFlow(warp(WarpMode::Bilinear, Boundary::Circular));
        let _ = add(&mut g, grad_flow, &[r, flow, r], Loc::NONE);
        let stats = add(&mut g, Op::ReduceSum { axes: vec![0, 2, 3] }, &[r], Loc::NONE);
        let _ = add(&mut g, Op::ReduceSum { axes: vec![2, 3] }, &[r], Loc::NONE);
        let rmax = add(&mut g, Op::ReduceMax { axes: vec![2] }, &[r], Loc::NONE);
        let count = add(&mut g, Op::Size { axes: vec![0] }, &[r], Loc::NONE);
        let flat = add(&mut g, Op::Reshape { shape: batch(&[64]) }, &[r], Loc::NONE);
        let wt = add(&mut g, Op::Permute { axes: vec![1, 0] }, &[dense_w], Loc::NONE);
        let logits = add(&mut g, Op::MatMul, &[flat, wt], loc(30, 7, 30, 19));
        let class = add(&mut g, Op::ArgMax { axis: 1 }, &[logits], Loc::NONE);
        let edges = g.input("edges", InputKind::Const, Type::new(DType::I32, Shape::known(&[5])), Loc::NONE);
        let picked = add(&mut g, Op::Gather { axis: 1 }, &[logits, edges], Loc::NONE);
        let _ = add(&mut g, Op::ScatterSum { axis: 1, size: 3 }, &[picked, edges], Loc::NONE);
        let most = add(&mut g, Op::ScatterMax { axis: 1, size: 3 }, &[picked, edges], Loc::NONE);
        let _ = add(&mut g, Op::ScatterMaxGrad { axis: 1 }, &[picked, edges, most], Loc::NONE);
        let weights = add(&mut g, Op::Softmax, &[picked], Loc::NONE);
        let _ = add(&mut g, Op::SoftmaxGrad, &[weights, picked], Loc::NONE);
        let _ = add(&mut g, Op::Standardize { eps: 1e-5 }, &[picked], Loc::NONE);
        let _ = add(&mut g, Op::StandardizeGrad { eps: 1e-5 }, &[picked, weights], Loc::NONE);
        let _ = add(&mut g, Op::StopGradient, &[picked], Loc::NONE);
        let _ = add(&mut g, Op::StopGradient, &[y], Loc::NONE);
        let same =
            ConvAttrs { stride: vec![1, 1], padding: vec![(1, 1), (1, 1)], dilation: vec![1, 1], groups: 1 };
        let _ = add(&mut g, Op::ConvWeightGrad { conv: same, kernel: vec![3, 3] }, &[x, h], Loc::NONE);
        let max_grad = match window(PoolKind::Max, 2, 2, 0) {
            Op::Pool(attrs) => Op::PoolGrad(attrs),
            other => other,
        };
        let _ = add(&mut g, max_grad, &[cat, m], Loc::NONE);
        let avg_grad = match window(PoolKind::Avg, 3, 1, 1) {
            Op::Pool(attrs) => Op::PoolGrad(attrs),
            other => other,
        };
        let _ = add(&mut g, avg_grad, &[m, a], Loc::NONE);
        let _ = add(&mut g, Op::ResizeGrad { size: vec![8, 7] }, &[r], Loc::NONE);
        let steps_first = Shape(vec![Dim::Known(3), Dim::Sym("B".into()), Dim::Known(8)]);
        let gx = g.input("gx", InputKind::Data, Type::f32(steps_first), Loc::NONE);
        let w_hh = g.input("w_hh", InputKind::Data, Type::f32(Shape::known(&[8, 2])), Loc::NONE);
        let h0 = g.input("h0", InputKind::Data, Type::f32(batch(&[2])), Loc::NONE);
        let steps_w = add(&mut g, Op::Broadcast { shape: Shape::known(&[3, 8, 2]) }, &[w_hh], Loc::NONE);
        let _ = add(&mut g, Op::MatMulSum, &[gx, steps_w], Loc::NONE);
        // An LSTM of hidden size 2 over 3 input features: the weight
        // [8, 3 + 2 + 1].
        let x_seq = add(&mut g, Op::Slice { axis: 2, start: 0, end: 3 }, &[gx], Loc::NONE);
        let w = g.input("w", InputKind::Data, Type::f32(Shape::known(&[8, 6])), Loc::NONE);
        for reverse in [false, true] {
            let seq = add(&mut g, Op::Lstm { reverse }, &[x_seq, w, h0, h0], Loc::NONE);
            let mut operands = vec![seq];
            for (start, end) in [(0, 2), (2, 4), (4, 12)] {
                operands.push(add(&mut g, Op::Slice { axis: 2, start, end }, &[seq], Loc::NONE));
            }
            operands.extend([w, h0]);
            let _ = add(&mut g, Op::LstmGrad { reverse, from: vec![0; 3] }, &operands, Loc::NONE);
        }
        let onehot = add(&mut g, Op::OneHot { classes: 10 }, &[y], Loc::NONE);
        let noise = add(&mut g, Op::RngUniform { shape: batch(&[10]), stream: 7 }, &[key], Loc::NONE);
        let prod = add(&mut g, Op::Binary(BinaryOp::Mul), &[onehot, noise], Loc::NONE);
        let total = add(&mut g, Op::ReduceSum { axes: vec![0, 1] }, &[prod], Loc::NONE);
        let loss = add(&mut g, Op::Binary(BinaryOp::Div), &[total, count], loc(31, 1, 31, 9));
        let _ = (gamma, beta, mean, rmax);
        let lr = g.input("lr", InputKind::Hyper, Type::scalar(DType::F32), Loc::NONE);
        let lr_b = add(&mut g, Op::Broadcast { shape: Shape::known(&[4]) }, &[lr], Loc::NONE);
        let new_b = add(&mut g, Op::Binary(BinaryOp::Sub), &[b, lr_b], loc(7, 12, 7, 21));
        g.nodes[new_b.index()].grad_of = Some(loss);
        let step = add(&mut g, Op::Binary(BinaryOp::Mul), &[lr, lr], Loc::NONE);
        g.nodes[step.index()].grad_of = Some(lr);

        g.output(OutputKind::Loss, "loss", loss);
        g.output(OutputKind::Param, "c.conv_1.bias", new_b);
        g.output(OutputKind::Prediction, "out", logits);
        g.output(OutputKind::State, "n.running_mean", stats);
        g.output(OutputKind::Other, "class", class);
        g
    }

    /// An inference graph with an awkward name, odd symbolic dimensions and
    /// no locations.
    pub(crate) fn sample_infer() -> Graph {
        let mut g = Graph::new("odd \"name\"\n\u{1}é", Mode::Infer);
        let dims = Shape(vec![Dim::Sym("seq len".into()), Dim::Sym("".into()), Dim::Sym("T_2".into())]);
        let x = g.input("", InputKind::Data, Type::f32(dims), Loc::NONE);
        let y = add(&mut g, Op::Unary(UnaryOp::Tanh), &[x], Loc::NONE);
        g.output(OutputKind::Prediction, "ŷ", y);
        g
    }

    fn assert_round_trip(g: &Graph) {
        let text = print(g);
        let parsed = parse(&text).unwrap_or_else(|e| panic!("printed graph does not parse: {e}\n{text}"));
        assert_eq!(print(&parsed), text);
        assert_eq!(&parsed, g);
    }

    #[test]
    fn every_op_round_trips() {
        assert_round_trip(&sample_train());
        assert_round_trip(&sample_infer());
        assert_round_trip(&Graph::new("empty", Mode::Infer));
    }

    /// The sample holds every row of the op table, so that the round trip
    /// covers every op's text.
    #[test]
    fn sample_uses_every_row_of_the_op_table() {
        let g = sample_train();
        for info in OPS {
            let used = g.nodes.iter().any(|n| n.op.mnemonic() == info.mnemonic);
            assert!(used, "`{}` is not in the sample graph", info.mnemonic);
        }
    }

    #[test]
    fn every_op_snapshot() {
        insta::assert_snapshot!(print(&sample_train()));
    }

    #[test]
    fn infer_graph_snapshot() {
        insta::assert_snapshot!(print(&sample_infer()));
    }

    #[test]
    fn display_is_print() {
        let g = sample_infer();
        assert_eq!(g.to_string(), print(&g));
    }

    #[test]
    fn floats_round_trip_bit_exactly() {
        let values = [
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            -2.5,
            1e300,
            -1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::from(0.1f32),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001),
            f64::from_bits(0xfff4_0000_0000_0000),
        ];
        let mut g = Graph::new("floats", Mode::Train);
        for v in values {
            g.constant(v, DType::F32, Loc::NONE);
            let init = Init::Normal { std: v };
            g.input(
                "p",
                InputKind::Param { role: ParamRole::Weight, init },
                Type::scalar(DType::F32),
                Loc::NONE,
            );
        }
        let text = print(&g);
        let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(print(&parsed), text);
        for (i, v) in values.iter().enumerate() {
            match (&parsed.nodes[2 * i].op, &parsed.nodes[2 * i + 1].op) {
                (
                    Op::Const { value },
                    Op::Input { kind: InputKind::Param { init: Init::Normal { std }, .. }, .. },
                ) => {
                    assert_eq!(value.to_bits(), v.to_bits(), "{v:?} read back as {value:?}");
                    assert_eq!(std.to_bits(), v.to_bits(), "{v:?} read back as {std:?}");
                }
                other => panic!("unexpected ops {other:?}"),
            }
        }
    }
}
