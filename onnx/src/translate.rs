//! The translation of an IR graph to an ONNX `ModelProto`, one IR op at a
//! time ([`Translator::op`] is the table of what each op becomes).
//!
//! Shapes with the symbolic batch dimension are built at run time from the
//! `Shape` of a graph input that has it, so the exported model takes any
//! batch size; every other dimension is fixed, as in the IR.

use std::collections::HashMap;

use ndarray::ArrayD;
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{
    BinaryOp, Boundary, CmpOp, DType, Dim, Graph, InputKind, Loc, LstmSizes, Op, OutputKind, PoolKind, Shape,
    StageError, UnaryOp, ValueId, WarpMode,
};
use prost::Message;

use crate::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The ONNX operator set the exported models use (ONNX 1.13 and later;
/// `ReduceMax` with its axes as an input and `ScatterElements` with `max`
/// need 18).
pub const OPSET: i64 = 18;

/// The ONNX IR version that goes with [`OPSET`].
const IR_VERSION: i64 = 8;

/// The statistics of one normalised array, as `nnc train` stores them in a
/// checkpoint: per variable (an index of axis `axis` of the array, counting
/// the example axis as 0), `(x − mean) / std` is what the graph reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub axis: usize,
}

/// What [`export`] writes.
pub struct Model<'a> {
    /// The inference graph (optimised, with one prediction output).
    pub graph: &'a Graph,
    /// The value of every parameter, state and constant input the graph
    /// reads, by input name.
    pub tensors: &'a [(String, Tensor<f32>)],
    /// The statistics of the data inputs that were normalised in training,
    /// by input name: the exported model applies them to its inputs.
    pub inputs: &'a [(String, Normalization)],
    /// The statistics the prediction is mapped back with, to physical units.
    pub output: Option<&'a Normalization>,
    /// Free text stored in the model (`doc_string`): where it came from.
    pub description: String,
}

/// The ONNX model of `model`, encoded; or, for a graph with ops that have
/// no ONNX equivalent, one error per such op (each naming its node).
pub fn export(model: &Model) -> Result<Vec<u8>, Vec<StageError>> {
    let graph = model.graph;
    let outputs: Vec<_> = graph.outputs.iter().filter(|o| o.kind == OutputKind::Prediction).collect();
    let [output] = outputs.as_slice() else {
        return Err(vec![StageError::new(
            "export",
            format!("an exported graph has one prediction output; this one has {}", outputs.len()),
        )]);
    };
    let mut t = Translator::new(graph);
    let mut inputs = vec![];
    // Inputs no node reads stay out: a target after dead-code elimination,
    // the real images of a GAN whose prediction is generated from noise
    // (`nnc predict` does not ask for them either).
    let mut used = vec![false; graph.nodes.len()];
    for a in graph.nodes.iter().flat_map(|n| &n.args).chain(graph.outputs.iter().map(|o| &o.value)) {
        used[a.index()] = true;
    }
    for (id, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        if !used[id.index()] {
            continue;
        }
        match kind {
            InputKind::Data => {
                inputs.push(value_info(name, node.ty.dtype, &node.ty.shape));
                t.symbols(name, &node.ty.shape);
                let stats = model.inputs.iter().find(|(n, _)| n == name).map(|(_, s)| s);
                t.names[id.index()] = match stats {
                    Some(stats) if node.ty.dtype == DType::F32 => t.normalize(name, &node.ty.shape, stats),
                    _ => name.clone(),
                };
            }
            InputKind::Param { .. } | InputKind::State { .. } | InputKind::Const => {
                match model.tensors.iter().find(|(n, _)| n == name) {
                    Some((_, value)) => {
                        t.initializers.push(tensor_proto(name, value));
                        t.names[id.index()] = name.clone();
                    }
                    None => {
                        t.errors.push(StageError::at("export", id, format!("no value for input `{name}`")))
                    }
                }
            }
            // The random key is read only by `rng_uniform`, whose draws
            // become inputs (below).
            InputKind::Key => {}
            InputKind::Target | InputKind::Hyper => t.errors.push(StageError::at(
                "export",
                id,
                format!("`{name}` is a training input; an inference graph does not read it"),
            )),
        }
    }
    // Random draws are inputs: nnc's generator (Philox, keyed by seed and
    // batch) has no ONNX equivalent, so whoever runs the model supplies the
    // uniform numbers, and the transforms nnc applies to them (Box–Muller
    // for `normal`) stay in the graph.
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Op::RngUniform { stream, .. } = node.op {
            let name = draw_input(stream);
            let mut info = value_info(&name, DType::F32, &node.ty.shape);
            info.doc_string = Some(format!(
                "uniform numbers on [0, 1) in place of nnc's random draw (stream {stream}){}; \
                 nnc predict draws them from the key (seed, batch)",
                if node.loc.is_none() { String::new() } else { format!(" at line {}", node.loc.line) }
            ));
            inputs.push(info);
            t.symbols(&name, &node.ty.shape);
            t.names[i] = name;
        }
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Input { .. } | Op::RngUniform { .. }) {
            t.op(ValueId(i as u32));
        }
    }
    if !t.errors.is_empty() {
        return Err(t.errors);
    }
    let value = output.value;
    let ty = graph.ty(value);
    let result = t.names[value.index()].clone();
    let result = match model.output {
        Some(stats) if ty.dtype == DType::F32 => t.denormalize(&result, &ty.shape, stats),
        _ => result,
    };
    t.node("Identity", &[&result], vec![], Loc::NONE, Some(output.name.clone()));
    let graph_proto = GraphProto {
        node: t.nodes,
        name: Some(graph.name.clone()),
        initializer: t.initializers,
        input: inputs,
        output: vec![value_info(&output.name, ty.dtype, &ty.shape)],
        doc_string: Some(model.description.clone()),
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("nnc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(model.description.clone()),
        graph: Some(graph_proto),
        metadata_props: vec![StringStringEntryProto {
            key: Some("nnc.model".into()),
            value: Some(graph.name.clone()),
        }],
        ..Default::default()
    };
    Ok(proto.encode_to_vec())
}

/// The name of the model input that holds the uniform numbers of the
/// random draw of stream `stream`.
pub fn draw_input(stream: u64) -> String {
    format!("draw.{stream}")
}

fn elem_type(dtype: DType) -> i32 {
    match dtype {
        DType::F32 => DataType::Float as i32,
        DType::I32 => DataType::Int32 as i32,
        DType::Bool => DataType::Bool as i32,
    }
}

fn value_info(name: &str, dtype: DType, shape: &Shape) -> ValueInfoProto {
    let dim = shape
        .dims()
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Known(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
                Dim::Sym(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type(dtype)),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor_proto(name: &str, value: &Tensor<f32>) -> TensorProto {
    fn raw<T: Copy, const N: usize>(a: &ArrayD<T>, bytes: impl Fn(T) -> [u8; N]) -> (Vec<i64>, Vec<u8>) {
        let dims = a.shape().iter().map(|&d| d as i64).collect();
        (dims, a.iter().flat_map(|&v| bytes(v)).collect())
    }
    let ((dims, raw_data), dtype) = match value {
        Tensor::Float(a) => (raw(a, f32::to_le_bytes), DType::F32),
        Tensor::Int(a) => (raw(a, i32::to_le_bytes), DType::I32),
        Tensor::Bool(a) => (raw(a, |b| [u8::from(b)]), DType::Bool),
    };
    TensorProto {
        dims,
        data_type: Some(elem_type(dtype)),
        name: Some(name.into()),
        raw_data: Some(raw_data),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(i),
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: impl IntoIterator<Item = usize>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: ints.into_iter().map(|v| v as i64).collect(),
        ..Default::default()
    }
}

fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

/// ONNX's `pads` of a window op: every dimension's start, then every end.
fn pads(padding: &[(usize, usize)]) -> impl Iterator<Item = usize> + '_ {
    padding.iter().map(|p| p.0).chain(padding.iter().map(|p| p.1))
}

struct Translator<'g> {
    graph: &'g Graph,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// The ONNX name of each IR value.
    names: Vec<String>,
    errors: Vec<StageError>,
    /// Per symbolic dimension, a data input that has it and the axis.
    symbols: HashMap<String, (String, usize)>,
    /// Per symbolic dimension, the `int64[1]` tensor of its size.
    dims: HashMap<String, String>,
    /// Per shape, the `int64[rank]` tensor that holds it.
    shapes: HashMap<Shape, String>,
    fresh: usize,
}

impl<'g> Translator<'g> {
    fn new(graph: &'g Graph) -> Translator<'g> {
        Translator {
            graph,
            nodes: vec![],
            initializers: vec![],
            names: vec![String::new(); graph.nodes.len()],
            errors: vec![],
            symbols: HashMap::new(),
            dims: HashMap::new(),
            shapes: HashMap::new(),
            fresh: 0,
        }
    }

    fn fresh(&mut self, stem: &str) -> String {
        self.fresh += 1;
        format!("{stem}.{}", self.fresh)
    }

    /// Appends a node; returns its (first) output's name, `output` when
    /// given.
    fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        loc: Loc,
        output: Option<String>,
    ) -> String {
        let output = output.unwrap_or_else(|| self.fresh(&op_type.to_lowercase()));
        let doc_string = (!loc.is_none()).then(|| format!("nnc source {}:{}", loc.line, loc.col));
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: Some(output.clone()),
            op_type: Some(op_type.into()),
            attribute,
            doc_string,
            ..Default::default()
        });
        output
    }

    fn initializer(&mut self, stem: &str, value: Tensor<f32>) -> String {
        let name = self.fresh(stem);
        self.initializers.push(tensor_proto(&name, &value));
        name
    }

    fn ints(&mut self, values: &[i64]) -> String {
        let name = self.fresh("ints");
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.clone()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    fn scalar_f32(&mut self, value: f32) -> String {
        self.initializer("const", Tensor::Float(ndarray::arr0(value).into_dyn()))
    }

    fn float_tensor(&mut self, stem: &str, shape: &[usize], values: Vec<f32>) -> String {
        let a = ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).expect("shape matches values");
        self.initializer(stem, Tensor::Float(a))
    }

    /// Records where the symbolic dimensions of data input `name` can be read.
    fn symbols(&mut self, name: &str, shape: &Shape) {
        for (axis, d) in shape.dims().iter().enumerate() {
            if let Dim::Sym(s) = d {
                self.symbols.entry(s.clone()).or_insert_with(|| (name.to_string(), axis));
            }
        }
    }

    /// The `int64[1]` size of symbolic dimension `sym`, read from a data input.
    fn dim(&mut self, sym: &str, at: ValueId) -> Option<String> {
        if let Some(name) = self.dims.get(sym) {
            return Some(name.clone());
        }
        let Some((input, axis)) = self.symbols.get(sym).cloned() else {
            self.errors.push(StageError::at(
                "export",
                at,
                format!("dimension `{sym}` is not a dimension of any input, so its size is unknown"),
            ));
            return None;
        };
        let attrs = vec![attr_int("start", axis as i64), attr_int("end", axis as i64 + 1)];
        let name = self.node("Shape", &[&input], attrs, Loc::NONE, Some(format!("dim.{sym}")));
        self.dims.insert(sym.to_string(), name.clone());
        Some(name)
    }

    /// An `int64[rank]` tensor holding `shape`, symbolic dimensions read at
    /// run time.
    fn shape(&mut self, shape: &Shape, at: ValueId) -> Option<String> {
        if let Some(name) = self.shapes.get(shape) {
            return Some(name.clone());
        }
        let name = if let Some(known) = shape.as_known() {
            self.ints(&known.iter().map(|&d| d as i64).collect::<Vec<_>>())
        } else {
            // Runs of known dimensions as constants, symbolic ones read.
            let mut parts: Vec<String> = vec![];
            let mut run: Vec<i64> = vec![];
            for d in shape.dims() {
                match d {
                    Dim::Known(n) => run.push(*n as i64),
                    Dim::Sym(s) => {
                        if !run.is_empty() {
                            parts.push(self.ints(&std::mem::take(&mut run)));
                        }
                        parts.push(self.dim(s, at)?);
                    }
                }
            }
            if !run.is_empty() {
                parts.push(self.ints(&run));
            }
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            self.node("Concat", &refs, vec![attr_int("axis", 0)], Loc::NONE, None)
        };
        self.shapes.insert(shape.clone(), name.clone());
        Some(name)
    }

    /// The broadcastable `[vars, 1, ...]` constants of `stats` for an array
    /// of `shape`, or `None` where `nnc predict` would not apply them either
    /// (the number of variables differs).
    fn stats_tensors(&mut self, shape: &Shape, stats: &Normalization) -> Option<(String, String)> {
        let rank = shape.rank();
        let axis = stats.axis.max(1);
        let vars = match shape.dims().get(axis) {
            Some(d) => d.known()?,
            None => 1,
        };
        if vars != stats.mean.len() || stats.std.len() != vars {
            return None;
        }
        let mut dims = vec![vars];
        dims.extend(std::iter::repeat_n(1, rank.saturating_sub(axis + 1)));
        if axis >= rank {
            dims = vec![];
        }
        let mean = self.float_tensor("mean", &dims, stats.mean.clone());
        let std = self.float_tensor("std", &dims, stats.std.clone());
        Some((mean, std))
    }

    /// `(x − mean) / std` of data input `name`.
    fn normalize(&mut self, name: &str, shape: &Shape, stats: &Normalization) -> String {
        let Some((mean, std)) = self.stats_tensors(shape, stats) else { return name.to_string() };
        let centred = self.node("Sub", &[name, &mean], vec![], Loc::NONE, Some(format!("{name}.centred")));
        self.node("Div", &[&centred, &std], vec![], Loc::NONE, Some(format!("{name}.normalized")))
    }

    /// `y · std + mean`: the prediction in physical units.
    fn denormalize(&mut self, value: &str, shape: &Shape, stats: &Normalization) -> String {
        let Some((mean, std)) = self.stats_tensors(shape, stats) else { return value.to_string() };
        let scaled = self.node("Mul", &[value, &std], vec![], Loc::NONE, None);
        self.node("Add", &[&scaled, &mean], vec![], Loc::NONE, None)
    }

    fn unsupported(&mut self, v: ValueId, why: &str) {
        let op = self.graph.node(v).op.mnemonic();
        self.errors.push(StageError::at("export", v, format!("`{op}` has no ONNX equivalent: {why}")));
    }

    /// Translates node `v` (not an input), naming its result.
    fn op(&mut self, v: ValueId) {
        let graph = self.graph;
        let node = graph.node(v);
        let loc = node.loc;
        let out = Some(format!("v{}", v.0));
        let args: Vec<String> = node.args.iter().map(|a| self.names[a.index()].clone()).collect();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let arg_ty = |i: usize| graph.ty(node.args[i]);
        let name = match &node.op {
            Op::Input { .. } => return,
            Op::Const { value } => {
                let value = match node.ty.dtype {
                    DType::F32 => Tensor::Float(ndarray::arr0(*value as f32).into_dyn()),
                    DType::I32 => Tensor::Int(ndarray::arr0(*value as i32).into_dyn()),
                    DType::Bool => Tensor::Bool(ndarray::arr0(*value != 0.0).into_dyn()),
                };
                let name = format!("v{}", v.0);
                self.initializers.push(tensor_proto(&name, &value));
                name
            }
            Op::Unary(UnaryOp::Gelu) => {
                // Opset 18 has no Gelu: 0.5·x·(1 + erf(x/√2)), as PyTorch exports it.
                let c = self.scalar_f32(std::f32::consts::FRAC_1_SQRT_2);
                let s = self.node("Mul", &[a[0], &c], vec![], loc, None);
                let e = self.node("Erf", &[&s], vec![], loc, None);
                let one = self.scalar_f32(1.0);
                let one_plus = self.node("Add", &[&e, &one], vec![], loc, None);
                let half = self.scalar_f32(0.5);
                let h = self.node("Mul", &[a[0], &half], vec![], loc, None);
                self.node("Mul", &[&h, &one_plus], vec![], loc, out)
            }
            Op::Unary(UnaryOp::GeluGrad) => {
                // Φ(x) + x·φ(x) = 0.5 + 0.5·erf(s) + s·e^{-s²}/√π, s = x/√2.
                let c = self.scalar_f32(std::f32::consts::FRAC_1_SQRT_2);
                let s = self.node("Mul", &[a[0], &c], vec![], loc, None);
                let e = self.node("Erf", &[&s], vec![], loc, None);
                let half = self.scalar_f32(0.5);
                let he = self.node("Mul", &[&e, &half], vec![], loc, None);
                let cdf = self.node("Add", &[&he, &half], vec![], loc, None);
                let sq = self.node("Mul", &[&s, &s], vec![], loc, None);
                let nsq = self.node("Neg", &[&sq], vec![], loc, None);
                let ex = self.node("Exp", &[&nsq], vec![], loc, None);
                let se = self.node("Mul", &[&s, &ex], vec![], loc, None);
                let k = self.scalar_f32((1.0 / std::f64::consts::PI.sqrt()) as f32);
                let density = self.node("Mul", &[&se, &k], vec![], loc, None);
                self.node("Add", &[&cdf, &density], vec![], loc, out)
            }
            Op::Unary(u) => {
                let op_type = match u {
                    UnaryOp::Neg => "Neg",
                    UnaryOp::Exp => "Exp",
                    UnaryOp::Log => "Log",
                    UnaryOp::Sqrt => "Sqrt",
                    UnaryOp::Abs => "Abs",
                    UnaryOp::Sign => "Sign",
                    UnaryOp::Tanh => "Tanh",
                    UnaryOp::Sigmoid => "Sigmoid",
                    UnaryOp::Erf => "Erf",
                    UnaryOp::Sin => "Sin",
                    UnaryOp::Cos => "Cos",
                    UnaryOp::Gelu | UnaryOp::GeluGrad => unreachable!("decomposed above"),
                };
                self.node(op_type, &a, vec![], loc, out)
            }
            Op::Binary(b) => {
                let op_type = match b {
                    BinaryOp::Add => "Add",
                    BinaryOp::Sub => "Sub",
                    BinaryOp::Mul => "Mul",
                    BinaryOp::Div => "Div",
                    BinaryOp::Max => "Max",
                    BinaryOp::Min => "Min",
                };
                self.node(op_type, &a, vec![], loc, out)
            }
            Op::Compare(c) => {
                // ONNX orders numbers only: truth values compare as 0/1.
                let (x, y) = if arg_ty(0).dtype == DType::Bool && !matches!(c, CmpOp::Eq | CmpOp::Ne) {
                    let to = vec![attr_int("to", DataType::Int32 as i64)];
                    (
                        self.node("Cast", &[a[0]], to.clone(), loc, None),
                        self.node("Cast", &[a[1]], to, loc, None),
                    )
                } else {
                    (args[0].clone(), args[1].clone())
                };
                let op_type = match c {
                    CmpOp::Lt => "Less",
                    CmpOp::Le => "LessOrEqual",
                    CmpOp::Gt => "Greater",
                    CmpOp::Ge => "GreaterOrEqual",
                    CmpOp::Eq | CmpOp::Ne => "Equal",
                };
                if *c == CmpOp::Ne {
                    let eq = self.node(op_type, &[&x, &y], vec![], loc, None);
                    self.node("Not", &[&eq], vec![], loc, out)
                } else {
                    self.node(op_type, &[&x, &y], vec![], loc, out)
                }
            }
            Op::Select => self.node("Where", &a, vec![], loc, out),
            Op::Cast { to } => self.node("Cast", &a, vec![attr_int("to", elem_type(*to) as i64)], loc, out),
            Op::Broadcast { shape } => {
                let Some(s) = self.shape(shape, v) else { return };
                self.node("Expand", &[a[0], &s], vec![], loc, out)
            }
            Op::Reshape { shape } => {
                let Some(s) = self.shape(shape, v) else { return };
                self.node("Reshape", &[a[0], &s], vec![attr_int("allowzero", 1)], loc, out)
            }
            Op::Permute { axes } => {
                self.node("Transpose", &a, vec![attr_ints("perm", axes.clone())], loc, out)
            }
            Op::Slice { axis, start, end } => {
                let (s, e, x) =
                    (self.ints(&[*start as i64]), self.ints(&[*end as i64]), self.ints(&[*axis as i64]));
                self.node("Slice", &[a[0], &s, &e, &x], vec![], loc, out)
            }
            Op::Pad { axis, lo, hi } => {
                let rank = node.ty.shape.rank();
                let mut p = vec![0i64; 2 * rank];
                p[*axis] = *lo as i64;
                p[rank + axis] = *hi as i64;
                let p = self.ints(&p);
                self.node("Pad", &[a[0], &p], vec![], loc, out)
            }
            Op::Concat { axis } => self.node("Concat", &a, vec![attr_int("axis", *axis as i64)], loc, out),
            Op::ReduceSum { axes } | Op::ReduceMax { axes } if axes.is_empty() => {
                self.node("Identity", &a, vec![], loc, out)
            }
            Op::ReduceSum { axes } | Op::ReduceMax { axes } => {
                let op_type = if matches!(node.op, Op::ReduceSum { .. }) { "ReduceSum" } else { "ReduceMax" };
                let axes = self.ints(&axes.iter().map(|&x| x as i64).collect::<Vec<_>>());
                self.node(op_type, &[a[0], &axes], vec![attr_int("keepdims", 0)], loc, out)
            }
            Op::Softmax => {
                // The op's definition, operator by operator (ONNX's Softmax
                // has no floor and gives NaN or 1/n for a row masked
                // everywhere, where the op gives zeros).
                let axes = self.ints(&[-1]);
                let keep = vec![attr_int("keepdims", 1)];
                let max = self.node("ReduceMax", &[a[0], &axes], keep.clone(), loc, None);
                let floor = self.scalar_f32(nnc_compiler::ir::op::SOFTMAX_FLOOR as f32);
                let m = self.node("Max", &[&max, &floor], vec![], loc, None);
                let shifted = self.node("Sub", &[a[0], &m], vec![], loc, None);
                let e = self.node("Exp", &[&shifted], vec![], loc, None);
                let sum = self.node("ReduceSum", &[&e, &axes], keep, loc, None);
                let zero = self.scalar_f32(0.0);
                let one = self.scalar_f32(1.0);
                let positive = self.node("Greater", &[&sum, &zero], vec![], loc, None);
                let divisor = self.node("Where", &[&positive, &sum, &one], vec![], loc, None);
                self.node("Div", &[&e, &divisor], vec![], loc, out)
            }
            Op::Standardize { eps } => {
                // The op's definition, operator by operator.
                let axes = self.ints(&[-1]);
                let keep = vec![attr_int("keepdims", 1)];
                let mean = self.node("ReduceMean", &[a[0], &axes], keep.clone(), loc, None);
                let centered = self.node("Sub", &[a[0], &mean], vec![], loc, None);
                let square = self.node("Mul", &[&centered, &centered], vec![], loc, None);
                let var = self.node("ReduceMean", &[&square, &axes], keep, loc, None);
                let eps = self.scalar_f32(*eps as f32);
                let shifted = self.node("Add", &[&var, &eps], vec![], loc, None);
                let sd = self.node("Sqrt", &[&shifted], vec![], loc, None);
                let rstd = self.node("Reciprocal", &[&sd], vec![], loc, None);
                self.node("Mul", &[&centered, &rstd], vec![], loc, out)
            }
            Op::ArgMax { axis } => {
                let attrs = vec![attr_int("axis", *axis as i64), attr_int("keepdims", 0)];
                let index = self.node("ArgMax", &a, attrs, loc, None);
                self.node("Cast", &[&index], vec![attr_int("to", DataType::Int32 as i64)], loc, out)
            }
            Op::Size { axes } => {
                let dims = arg_ty(0).shape.dims();
                let known: Option<Vec<usize>> = axes.iter().map(|&x| dims[x].known()).collect();
                match known {
                    Some(sizes) => {
                        let name = format!("v{}", v.0);
                        let value = sizes.iter().product::<usize>() as f32;
                        self.initializers
                            .push(tensor_proto(&name, &Tensor::Float(ndarray::arr0(value).into_dyn())));
                        name
                    }
                    None => {
                        let shape = self.node("Shape", &a, vec![], loc, None);
                        let idx = self.ints(&axes.iter().map(|&x| x as i64).collect::<Vec<_>>());
                        let picked = self.node("Gather", &[&shape, &idx], vec![], loc, None);
                        let product =
                            self.node("ReduceProd", &[&picked], vec![attr_int("keepdims", 0)], loc, None);
                        self.node("Cast", &[&product], vec![attr_int("to", DataType::Float as i64)], loc, out)
                    }
                }
            }
            Op::MatMul => self.node("MatMul", &a, vec![], loc, out),
            Op::MatMulSum => {
                let batched = self.node("MatMul", &a, vec![], loc, None);
                let rank = arg_ty(0).shape.rank() as i64;
                let axes = self.ints(&(0..rank - 2).collect::<Vec<_>>());
                self.node("ReduceSum", &[&batched, &axes], vec![attr_int("keepdims", 0)], loc, out)
            }
            Op::Conv(c) => {
                let attrs = vec![
                    attr_ints("strides", c.stride.clone()),
                    attr_ints("pads", pads(&c.padding)),
                    attr_ints("dilations", c.dilation.clone()),
                    attr_int("group", c.groups as i64),
                ];
                self.node("Conv", &a, attrs, loc, out)
            }
            Op::ConvTranspose { conv: c, output_padding } => {
                let attrs = vec![
                    attr_ints("strides", c.stride.clone()),
                    attr_ints("pads", pads(&c.padding)),
                    attr_ints("dilations", c.dilation.clone()),
                    attr_int("group", c.groups as i64),
                    attr_ints("output_padding", output_padding.clone()),
                ];
                self.node("ConvTranspose", &a, attrs, loc, out)
            }
            Op::Pool(w) => {
                let mut attrs = vec![
                    attr_ints("kernel_shape", w.window.clone()),
                    attr_ints("strides", w.stride.clone()),
                    attr_ints("pads", pads(&w.padding)),
                ];
                let op_type = match w.kind {
                    PoolKind::Max => "MaxPool",
                    PoolKind::Avg => {
                        attrs.push(attr_int("count_include_pad", 1));
                        "AveragePool"
                    }
                };
                self.node(op_type, &a, attrs, loc, out)
            }
            Op::Resize { size } => {
                let mut shape = arg_ty(0).shape.dims()[..2].to_vec();
                shape.extend(size.iter().map(|&s| Dim::Known(s)));
                let Some(sizes) = self.shape(&Shape(shape), v) else { return };
                let attrs = vec![
                    attr_string("mode", "linear"),
                    attr_string("coordinate_transformation_mode", "half_pixel"),
                ];
                self.node("Resize", &[a[0], "", "", &sizes], attrs, loc, out)
            }
            Op::Warp(w) => {
                let Some(name) = self.warp(v, &args, w.mode, w.boundary) else { return };
                name
            }
            Op::OneHot { classes } => {
                // Out-of-range indices give all zeros, as in nnc (ONNX's
                // OneHot would wrap negative ones).
                let axes = self.ints(&[-1]);
                let column = self.node("Unsqueeze", &[a[0], &axes], vec![], loc, None);
                let range = ndarray::Array1::from_iter(0..*classes as i32).into_dyn();
                let range = self.initializer("classes", Tensor::Int(range));
                let hot = self.node("Equal", &[&column, &range], vec![], loc, None);
                self.node("Cast", &[&hot], vec![attr_int("to", DataType::Float as i64)], loc, out)
            }
            Op::Gather { axis } => {
                let Some(n) = arg_ty(0).shape.dims()[*axis].known() else {
                    return self.unsupported(v, "gathering along the batch dimension");
                };
                let (index, in_range) = self.in_range(&args[1], n, loc);
                let gathered =
                    self.node("Gather", &[a[0], &index], vec![attr_int("axis", *axis as i64)], loc, None);
                // An index outside 0..N reads 0.
                let rank = node.ty.shape.rank();
                let mut mask_shape = vec![-1i64];
                mask_shape.extend(std::iter::repeat_n(1, rank - axis - 1));
                let mask_shape = self.ints(&mask_shape);
                let mask = self.node("Reshape", &[&in_range, &mask_shape], vec![], loc, None);
                let zero = self.scalar_f32(0.0);
                self.node("Where", &[&mask, &gathered, &zero], vec![], loc, out)
            }
            Op::ScatterSum { axis, size } | Op::ScatterMax { axis, size } => {
                let max = matches!(node.op, Op::ScatterMax { .. });
                let Some(name) = self.scatter(v, &args, *axis, *size, max) else { return };
                name
            }
            Op::StopGradient => self.node("Identity", &a, vec![], loc, out),
            Op::Lstm { reverse } => {
                let Some(LstmSizes { hidden, .. }) = LstmSizes::of_weight(&graph.ty(node.args[1]).shape)
                else {
                    return self.unsupported(v, "its weight's shape is not known");
                };
                let Some(steps) = node.ty.shape.dims()[0].known() else {
                    return self.unsupported(v, "its number of steps is not known");
                };
                self.lstm(&a, hidden, steps, *reverse, loc, out)
            }
            // An input of the model (see `export`).
            Op::RngUniform { .. } => return,
            Op::ConvWeightGrad { .. }
            | Op::PoolGrad(_)
            | Op::ResizeGrad { .. }
            | Op::WarpGradInput(_)
            | Op::WarpGradFlow(_)
            | Op::ScatterMaxGrad { .. }
            | Op::SoftmaxGrad
            | Op::StandardizeGrad { .. }
            | Op::LstmGrad { .. } => {
                return self
                    .unsupported(v, "it belongs to a backward pass, which an inference graph does not have")
            }
        };
        self.names[v.index()] = name;
    }

    /// `lstm(x, w, h0, c0)` unrolled over its steps (ONNX's `LSTM` gives
    /// no per-step cell states or gates, which the op's result holds): per
    /// step the operand `z = [x_t, h_prev, 1]`, `pre = z·wᵀ`, split into
    /// the four gates, activated, and the step's lanes
    /// `[h, c, i, f, g, o, z]` concatenated; the steps stacked on axis 0
    /// (time-major, as the op's operands and result) in position order.
    fn lstm(
        &mut self,
        a: &[&str],
        hidden: usize,
        steps: usize,
        reverse: bool,
        loc: Loc,
        out: Option<String>,
    ) -> String {
        let (x, w, mut h, mut c) = (a[0].to_string(), a[1], a[2].to_string(), a[3].to_string());
        let wt = self.node("Transpose", &[w], vec![attr_ints("perm", vec![1, 0])], loc, None);
        let (axis0, axis1) = (self.ints(&[0]), self.ints(&[1]));
        // The column of ones, `[B, 1]`, shaped after a column of `h0`.
        let (s, e) = (self.ints(&[0]), self.ints(&[1]));
        let column = self.node("Slice", &[&h, &s, &e, &axis1], vec![], loc, None);
        let column = self.node("Shape", &[&column], vec![], loc, None);
        let one = self.scalar_f32(1.0);
        let ones = self.node("Expand", &[&one, &column], vec![], loc, None);
        let order: Vec<usize> = if reverse { (0..steps).rev().collect() } else { (0..steps).collect() };
        let mut lanes = vec![String::new(); steps];
        for t in order {
            let (s, e) = (self.ints(&[t as i64]), self.ints(&[t as i64 + 1]));
            let x_t = self.node("Slice", &[&x, &s, &e, &axis0], vec![], loc, None);
            let x_t = self.node("Squeeze", &[&x_t, &axis0], vec![], loc, None);
            let z = self.node("Concat", &[&x_t, &h, &ones], vec![attr_int("axis", 1)], loc, None);
            let pre = self.node("MatMul", &[&z, &wt], vec![], loc, None);
            let mut gates = vec![];
            for (k, act) in ["Sigmoid", "Sigmoid", "Tanh", "Sigmoid"].into_iter().enumerate() {
                let (s, e) = (self.ints(&[(k * hidden) as i64]), self.ints(&[((k + 1) * hidden) as i64]));
                let block = self.node("Slice", &[&pre, &s, &e, &axis1], vec![], loc, None);
                gates.push(self.node(act, &[&block], vec![], loc, None));
            }
            let kept = self.node("Mul", &[&gates[1], &c], vec![], loc, None);
            let added = self.node("Mul", &[&gates[0], &gates[2]], vec![], loc, None);
            c = self.node("Add", &[&kept, &added], vec![], loc, None);
            let squashed = self.node("Tanh", &[&c], vec![], loc, None);
            h = self.node("Mul", &[&gates[3], &squashed], vec![], loc, None);
            let parts: Vec<&str> =
                [&h, &c].into_iter().chain(&gates).chain([&z]).map(String::as_str).collect();
            let joined = self.node("Concat", &parts, vec![attr_int("axis", 1)], loc, None);
            lanes[t] = self.node("Unsqueeze", &[&joined, &axis0], vec![], loc, None);
        }
        let parts: Vec<&str> = lanes.iter().map(String::as_str).collect();
        self.node("Concat", &parts, vec![attr_int("axis", 0)], loc, out)
    }

    /// `(index clamped to 0..n, whether it lies in 0..n)` of an `i32` index.
    fn in_range(&mut self, index: &str, n: usize, loc: Loc) -> (String, String) {
        let zero = self.initializer("zero", Tensor::Int(ndarray::arr0(0).into_dyn()));
        let last = self.initializer("last", Tensor::Int(ndarray::arr0(n as i32 - 1).into_dyn()));
        let low = self.node("GreaterOrEqual", &[index, &zero], vec![], loc, None);
        let high = self.node("LessOrEqual", &[index, &last], vec![], loc, None);
        let in_range = self.node("And", &[&low, &high], vec![], loc, None);
        let clamped = self.node("Max", &[index, &zero], vec![], loc, None);
        let clamped = self.node("Min", &[&clamped, &last], vec![], loc, None);
        (clamped, in_range)
    }

    /// `scatter_sum` / `scatter_max` as `ScatterElements` into `size + 1`
    /// segments, the last one taking the out-of-range contributions (which
    /// nnc drops) and then cut off. Contributions are combined in
    /// increasing element order, from 0 for a sum.
    fn scatter(
        &mut self,
        v: ValueId,
        args: &[String],
        axis: usize,
        size: usize,
        max: bool,
    ) -> Option<String> {
        let node = self.graph.node(v);
        let loc = node.loc;
        let x_shape = self.graph.ty(node.args[0]).shape.clone();
        let rank = x_shape.rank();
        // The segment of every contribution, `size` for out-of-range ones.
        let (_, in_range) = self.in_range(&args[1], size, loc);
        let spare = self.initializer("spare", Tensor::Int(ndarray::arr0(size as i32).into_dyn()));
        let segment = self.node("Where", &[&in_range, &args[1], &spare], vec![], loc, None);
        let mut column = vec![-1i64];
        column.extend(std::iter::repeat_n(1, rank - axis - 1));
        let column = self.ints(&column);
        let segment = self.node("Reshape", &[&segment, &column], vec![], loc, None);
        let x_dims = self.shape(&x_shape, v)?;
        let segment = self.node("Expand", &[&segment, &x_dims], vec![], loc, None);
        let segment = self.node("Cast", &[&segment], vec![attr_int("to", DataType::Int64 as i64)], loc, None);
        let mut padded = x_shape.dims().to_vec();
        padded[axis] = Dim::Known(size + 1);
        let padded = self.shape(&Shape(padded), v)?;
        let fill = |value: f32| {
            let t = TensorProto {
                dims: vec![1],
                data_type: Some(DataType::Float as i32),
                raw_data: Some(value.to_le_bytes().to_vec()),
                ..Default::default()
            };
            vec![attr_tensor("value", t)]
        };
        let start = if max { f32::NEG_INFINITY } else { 0.0 };
        let base = self.node("ConstantOfShape", &[&padded], fill(start), loc, None);
        let attrs =
            |reduction: &str| vec![attr_int("axis", axis as i64), attr_string("reduction", reduction)];
        let reduced = self.node(
            "ScatterElements",
            &[&base, &segment, &args[0]],
            attrs(if max { "max" } else { "add" }),
            loc,
            None,
        );
        let reduced = if max {
            // A segment no contribution reaches is 0, not −inf.
            let zeros = self.node("ConstantOfShape", &[&padded], fill(0.0), loc, None);
            let ones = self.node("ConstantOfShape", &[&x_dims], fill(1.0), loc, None);
            let count = self.node("ScatterElements", &[&zeros, &segment, &ones], attrs("add"), loc, None);
            let zero = self.scalar_f32(0.0);
            let reached = self.node("Greater", &[&count, &zero], vec![], loc, None);
            self.node("Where", &[&reached, &reduced, &zero], vec![], loc, None)
        } else {
            reduced
        };
        let (s, e, x) = (self.ints(&[0]), self.ints(&[size as i64]), self.ints(&[axis as i64]));
        Some(self.node("Slice", &[&reduced, &s, &e, &x], vec![], loc, Some(format!("v{}", v.0))))
    }

    /// `warp` as `GridSample` with corner-aligned coordinates: the sampling
    /// position `(i + dy, j + dx)` in grid cells becomes the normalised
    /// `(2 (j + dx) / (W − 1) − 1, 2 (i + dy) / (H − 1) − 1)` (for a
    /// circular boundary, see below).
    fn warp(&mut self, v: ValueId, args: &[String], mode: WarpMode, boundary: Boundary) -> Option<String> {
        let node = self.graph.node(v);
        let loc = node.loc;
        let dims = node.ty.shape.as_known().unwrap_or_default();
        let (h, w) = match node.ty.shape.dims() {
            [_, _, h, w] => (h.known(), w.known()),
            _ => (None, None),
        };
        let (Some(h), Some(w)) = (h, w) else {
            self.unsupported(v, "the grid's size is not fixed");
            return None;
        };
        let _ = dims;
        if h < 2 || w < 2 {
            self.unsupported(v, "ONNX's GridSample needs a grid of at least 2 × 2 points");
            return None;
        }
        // GridSample has no periodic boundary: a circular warp wraps the
        // sampling position into [0, n) and samples an image grown by its
        // own first row and column, so that bilinear weights (and nearest
        // rounding) across the seam read the opposite edge.
        let circular = boundary == Boundary::Circular;
        let padding_mode = match boundary {
            Boundary::Zeros => "zeros",
            Boundary::Edge | Boundary::Circular => "border",
        };
        let image = if circular {
            let grow = |t: &mut Self, x: &str, axis: i64| {
                let (s, e, a) = (t.ints(&[0]), t.ints(&[1]), t.ints(&[axis]));
                let first = t.node("Slice", &[x, &s, &e, &a], vec![], loc, None);
                t.node("Concat", &[x, &first], vec![attr_int("axis", axis)], loc, None)
            };
            let grown = grow(self, &args[0], 2);
            grow(self, &grown, 3)
        } else {
            args[0].clone()
        };
        let (rows, cols): (Vec<f32>, Vec<f32>) = (0..h * w).map(|k| ((k / w) as f32, (k % w) as f32)).unzip();
        let rows = self.float_tensor("rows", &[h, w], rows);
        let cols = self.float_tensor("cols", &[h, w], cols);
        let channel = |t: &mut Self, c: i64| {
            let (s, e, x) = (t.ints(&[c]), t.ints(&[c + 1]), t.ints(&[1]));
            t.node("Slice", &[&args[1], &s, &e, &x], vec![], loc, None)
        };
        let dy = channel(self, 0);
        let dx = channel(self, 1);
        let normalised = |t: &mut Self, d: &str, base: &str, n: usize| {
            let mut p = t.node("Add", &[d, base], vec![], loc, None);
            let mut last = n - 1;
            if circular {
                // p − n·floor(p / n), on the grown grid of n + 1 points.
                let size = t.scalar_f32(n as f32);
                let q = t.node("Div", &[&p, &size], vec![], loc, None);
                let q = t.node("Floor", &[&q], vec![], loc, None);
                let q = t.node("Mul", &[&q, &size], vec![], loc, None);
                p = t.node("Sub", &[&p, &q], vec![], loc, None);
                last = n;
            }
            let scale = t.scalar_f32(2.0 / last as f32);
            let p = t.node("Mul", &[&p, &scale], vec![], loc, None);
            let one = t.scalar_f32(1.0);
            t.node("Sub", &[&p, &one], vec![], loc, None)
        };
        let gy = normalised(self, &dy, &rows, h);
        let gx = normalised(self, &dx, &cols, w);
        let grid = self.node("Concat", &[&gx, &gy], vec![attr_int("axis", 1)], loc, None);
        let grid = self.node("Transpose", &[&grid], vec![attr_ints("perm", [0, 2, 3, 1])], loc, None);
        let attrs = vec![
            attr_string("mode", if mode == WarpMode::Bilinear { "bilinear" } else { "nearest" }),
            attr_string("padding_mode", padding_mode),
            attr_int("align_corners", 1),
        ];
        Some(self.node("GridSample", &[&image, &grid], attrs, loc, Some(format!("v{}", v.0))))
    }
}
