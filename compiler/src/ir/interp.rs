//! The reference interpreter: executes any IR graph on ndarray tensors.
//!
//! It is the oracle for everything below the IR: autodiff is checked against
//! its finite differences (in f64), and compiled code against its results. So
//! it is written to be obviously correct rather than fast: every op is a
//! direct transcription of its definition in [`super::op`], convolution and
//! pooling are plain loops over index vectors, and nothing is fused or cached.
//!
//! Float values are evaluated in a [`Real`] type (f32 or f64); i32 and bool
//! values natively. Before each node is evaluated its operand types, with
//! symbolic dimensions bound from the inputs' actual shapes, are run through
//! the type rules ([`super::infer::infer`]) and must give the node's declared
//! type; the result is checked against that type again. A malformed graph or a
//! wrongly shaped input is therefore an [`InterpError`], never a panic.

mod elementwise;
mod index;
mod recurrent;
mod reduce;
mod structural;
mod warp;
mod window;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use ndarray::{ArrayD, IxDyn};
use num_traits::Float;

use super::graph::{Graph, Node, ValueId};
use super::infer::infer;
use super::op::{Init, InputKind, Op};
use super::rng;
use super::types::{DType, Dim, Shape, Type};

pub use elementwise::{erf, gelu, gelu_grad, sigmoid};

/// The float types the interpreter evaluates `f32` IR values in.
pub trait Real: Float + Default + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The nearest value of this type.
    fn from_f64(x: f64) -> Self;
    /// The value as an f64 (exact for f32 and f64).
    fn as_f64(self) -> f64;
}

impl Real for f32 {
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// A run-time value: an n-dimensional array of the value's element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor<T> {
    Float(ArrayD<T>),
    Int(ArrayD<i32>),
    Bool(ArrayD<bool>),
}

impl<T: Real> Tensor<T> {
    /// A float tensor of the given shape from row-major values (converted to `T`).
    pub fn from_f64(shape: &[usize], values: &[f64]) -> Result<Tensor<T>, String> {
        let data = values.iter().map(|&v| T::from_f64(v)).collect();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(Tensor::Float)
            .map_err(|e| format!("{} values do not fill shape {shape:?}: {e}", values.len()))
    }

    /// A float scalar.
    pub fn scalar(x: T) -> Tensor<T> {
        Tensor::Float(ArrayD::from_elem(IxDyn(&[]), x))
    }

    pub fn dtype(&self) -> DType {
        match self {
            Tensor::Float(_) => DType::F32,
            Tensor::Int(_) => DType::I32,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::Float(a) => a.shape(),
            Tensor::Int(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
    }

    /// The IR type of this value (all dimensions known).
    pub fn ty(&self) -> Type {
        Type::new(self.dtype(), Shape::known(self.shape()))
    }

    pub fn as_float(&self) -> Option<&ArrayD<T>> {
        match self {
            Tensor::Float(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<&ArrayD<i32>> {
        match self {
            Tensor::Int(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<&ArrayD<bool>> {
        match self {
            Tensor::Bool(a) => Some(a),
            _ => None,
        }
    }

    pub fn into_float(self) -> Option<ArrayD<T>> {
        match self {
            Tensor::Float(a) => Some(a),
            _ => None,
        }
    }

    /// The same tensor with float elements converted to another [`Real`] type
    /// (e.g. f32 example inputs for an f64 run).
    pub fn convert<U: Real>(&self) -> Tensor<U> {
        match self {
            Tensor::Float(a) => Tensor::Float(a.mapv(|x| U::from_f64(x.as_f64()))),
            Tensor::Int(a) => Tensor::Int(a.clone()),
            Tensor::Bool(a) => Tensor::Bool(a.clone()),
        }
    }
}

/// Why a graph could not be run: the value it concerns (if any) and what went wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct InterpError {
    pub value: Option<ValueId>,
    pub message: String,
}

impl InterpError {
    fn at(value: ValueId, message: impl Into<String>) -> InterpError {
        InterpError { value: Some(value), message: message.into() }
    }
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{v}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for InterpError {}

/// Runs the graph. `inputs` maps every Input node's name to a tensor; symbolic
/// dims (`B`) are bound from the input tensors' actual shapes (consistently —
/// mismatches are errors naming the input, the dim and both sizes); entries
/// that name no input are ignored. Returns the outputs in `graph.outputs`
/// order, as (name, tensor).
pub fn run<T: Real>(
    graph: &Graph,
    inputs: &HashMap<String, Tensor<T>>,
) -> Result<Vec<(String, Tensor<T>)>, InterpError> {
    let values = run_all(graph, inputs)?;
    graph
        .outputs
        .iter()
        .map(|o| match values.get(o.value.index()) {
            Some(t) => Ok((o.name.clone(), t.clone())),
            None => Err(InterpError::at(o.value, format!("output `{}` names an undefined value", o.name))),
        })
        .collect()
}

/// Like [`run`] but returns every node's value (index = `ValueId`).
pub fn run_all<T: Real>(
    graph: &Graph,
    inputs: &HashMap<String, Tensor<T>>,
) -> Result<Vec<Tensor<T>>, InterpError> {
    let dims = bind_dims(graph, inputs)?;
    let mut values: Vec<Tensor<T>> = Vec::with_capacity(graph.nodes.len());
    for (i, node) in graph.nodes.iter().enumerate() {
        let id = ValueId(i as u32);
        let value = eval_node(node, &values, inputs, &dims)
            .map_err(|m| InterpError::at(id, format!("`{}`: {m}", node.op.mnemonic())))?;
        values.push(value);
    }
    Ok(values)
}

/// Binds every symbolic dimension of the inputs' declared types to the size
/// found in the given tensor, checking dtypes, ranks, known sizes and that
/// each symbol gets one size.
fn bind_dims<T: Real>(
    graph: &Graph,
    inputs: &HashMap<String, Tensor<T>>,
) -> Result<HashMap<String, usize>, InterpError> {
    // Symbol -> (size, name of the input that bound it).
    let mut bound: HashMap<&str, (usize, &str)> = HashMap::new();
    for (id, node) in graph.inputs() {
        let Op::Input { name, .. } = &node.op else { continue };
        let ty = &node.ty;
        let Some(t) = inputs.get(name) else {
            return Err(InterpError::at(id, format!("missing input `{name}` of type {ty}")));
        };
        let shape = t.shape();
        if t.dtype() != ty.dtype || shape.len() != ty.shape.rank() {
            return Err(InterpError::at(
                id,
                format!("input `{name}` must be {ty}, got {}{shape:?}", t.dtype().name()),
            ));
        }
        for (axis, (dim, &size)) in ty.shape.dims().iter().zip(shape).enumerate() {
            match dim {
                Dim::Known(n) if *n != size => {
                    return Err(InterpError::at(
                        id,
                        format!("input `{name}` must be {ty}, but axis {axis} has size {size}, not {n}"),
                    ));
                }
                Dim::Known(_) => {}
                Dim::Sym(s) => match bound.get(s.as_str()) {
                    Some(&(prev, by)) if prev != size => {
                        return Err(InterpError::at(
                            id,
                            format!(
                                "input `{name}` ({ty}) has `{s}` = {size} on axis {axis}, \
                                 but input `{by}` bound `{s}` = {prev}"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        bound.insert(s, (size, name));
                    }
                },
            }
        }
    }
    Ok(bound.into_iter().map(|(s, (n, _))| (s.to_string(), n)).collect())
}

/// A shape with every symbolic dimension replaced by its bound size.
fn resolve_shape(shape: &Shape, dims: &HashMap<String, usize>) -> Result<Vec<usize>, String> {
    shape
        .dims()
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Ok(*n),
            Dim::Sym(s) => {
                dims.get(s).copied().ok_or_else(|| format!("symbolic dimension `{s}` is not bound"))
            }
        })
        .collect()
}

/// The op with the shapes in its attributes resolved to known sizes.
fn resolve_op(op: &Op, dims: &HashMap<String, usize>) -> Result<Op, String> {
    let known = |s: &Shape| resolve_shape(s, dims).map(|n| Shape::known(&n));
    Ok(match op {
        Op::Broadcast { shape } => Op::Broadcast { shape: known(shape)? },
        Op::Reshape { shape } => Op::Reshape { shape: known(shape)? },
        Op::RngUniform { shape, stream } => Op::RngUniform { shape: known(shape)?, stream: *stream },
        other => other.clone(),
    })
}

/// Evaluates one node given the values of all earlier nodes.
fn eval_node<T: Real>(
    node: &Node,
    values: &[Tensor<T>],
    inputs: &HashMap<String, Tensor<T>>,
    dims: &HashMap<String, usize>,
) -> Result<Tensor<T>, String> {
    let declared = Type::new(node.ty.dtype, Shape::known(&resolve_shape(&node.ty.shape, dims)?));
    let mut args = Vec::with_capacity(node.args.len());
    for a in &node.args {
        args.push(values.get(a.index()).ok_or_else(|| format!("operand {a} is not defined before its use"))?);
    }
    let result = match &node.op {
        Op::Input { .. } | Op::Const { .. } if !args.is_empty() => {
            return Err(format!("`{name}` takes no operands", name = node.op.mnemonic()));
        }
        Op::Input { name, .. } => {
            inputs.get(name).cloned().ok_or_else(|| format!("missing input `{name}`"))?
        }
        Op::Const { value } => constant(*value, node.ty.dtype),
        op => {
            let op = resolve_op(op, dims)?;
            let arg_types: Vec<Type> = args.iter().map(|t| t.ty()).collect();
            let arg_refs: Vec<&Type> = arg_types.iter().collect();
            let inferred = infer(&op, &arg_refs)?;
            if inferred != declared {
                return Err(format!(
                    "operands give type {inferred}, but the node declares {} (= {declared})",
                    node.ty
                ));
            }
            eval_op(&op, &args)?
        }
    };
    if result.ty() != declared {
        return Err(format!("computed {}, but the node declares {} (= {declared})", result.ty(), node.ty));
    }
    Ok(result)
}

/// A scalar constant of the given dtype (i32: truncated; bool: non-zero).
fn constant<T: Real>(value: f64, dtype: DType) -> Tensor<T> {
    let shape = IxDyn(&[]);
    match dtype {
        DType::F32 => Tensor::Float(ArrayD::from_elem(shape, T::from_f64(value))),
        DType::I32 => Tensor::Int(ArrayD::from_elem(shape, value as i32)),
        DType::Bool => Tensor::Bool(ArrayD::from_elem(shape, value != 0.0)),
    }
}

fn arg<'a, T>(args: &[&'a Tensor<T>], i: usize) -> Result<&'a Tensor<T>, String> {
    args.get(i).copied().ok_or_else(|| format!("missing operand {i}"))
}

fn float_arg<'a, T: Real>(args: &[&'a Tensor<T>], i: usize) -> Result<&'a ArrayD<T>, String> {
    let t = arg(args, i)?;
    t.as_float().ok_or_else(|| format!("operand {i} must be f32, got {}", t.ty()))
}

/// Applies an expression that works for arrays of every element type to a
/// tensor, keeping its dtype: `$body` uses the array `$a` and returns a `Result`.
macro_rules! each_dtype {
    ($tensor:expr, |$a:ident| $body:expr) => {
        match $tensor {
            Tensor::Float($a) => Tensor::Float($body?),
            Tensor::Int($a) => Tensor::Int($body?),
            Tensor::Bool($a) => Tensor::Bool($body?),
        }
    };
}

/// Evaluates a non-leaf op whose operand types the type rules accepted.
fn eval_op<T: Real>(op: &Op, args: &[&Tensor<T>]) -> Result<Tensor<T>, String> {
    Ok(match op {
        Op::Input { .. } | Op::Const { .. } => return Err("a leaf has no operation to evaluate".into()),
        Op::Unary(u) => Tensor::Float(elementwise::unary(*u, float_arg(args, 0)?)),
        Op::Binary(b) => Tensor::Float(elementwise::binary(*b, float_arg(args, 0)?, float_arg(args, 1)?)?),
        Op::Compare(c) => Tensor::Bool(elementwise::compare(*c, arg(args, 0)?, arg(args, 1)?)?),
        Op::Select => {
            let cond = arg(args, 0)?;
            let cond =
                cond.as_bool().ok_or_else(|| format!("the condition must be bool, got {}", cond.ty()))?;
            elementwise::select(cond, arg(args, 1)?, arg(args, 2)?)?
        }
        Op::Cast { to } => elementwise::cast(arg(args, 0)?, *to),
        Op::Broadcast { shape } => {
            let shape = shape.as_known().ok_or("unresolved broadcast shape")?;
            each_dtype!(arg(args, 0)?, |a| structural::broadcast(a, &shape))
        }
        Op::Reshape { shape } => {
            let shape = shape.as_known().ok_or("unresolved reshape shape")?;
            each_dtype!(arg(args, 0)?, |a| structural::reshape(a, &shape))
        }
        Op::Permute { axes } => each_dtype!(arg(args, 0)?, |a| structural::permute(a, axes)),
        Op::Slice { axis, start, end } => {
            each_dtype!(arg(args, 0)?, |a| structural::slice(a, *axis, *start, *end))
        }
        Op::Pad { axis, lo, hi } => each_dtype!(arg(args, 0)?, |a| structural::pad(a, *axis, *lo, *hi)),
        Op::Concat { axis } => concat(args, *axis)?,
        Op::ReduceSum { axes } => Tensor::Float(reduce::reduce_sum(float_arg(args, 0)?, axes)?),
        Op::ReduceMax { axes } => Tensor::Float(reduce::reduce_max(float_arg(args, 0)?, axes)?),
        Op::ArgMax { axis } => Tensor::Int(reduce::argmax(float_arg(args, 0)?, *axis)?),
        Op::Size { axes } => Tensor::scalar(reduce::size(arg(args, 0)?.shape(), axes)?),
        Op::MatMul => Tensor::Float(reduce::matmul(float_arg(args, 0)?, float_arg(args, 1)?)?),
        Op::MatMulSum => Tensor::Float(reduce::matmul_sum(float_arg(args, 0)?, float_arg(args, 1)?)?),
        Op::Conv(conv) => Tensor::Float(window::conv(float_arg(args, 0)?, float_arg(args, 1)?, conv)?),
        Op::ConvTranspose { conv, output_padding } => Tensor::Float(window::conv_transpose(
            float_arg(args, 0)?,
            float_arg(args, 1)?,
            conv,
            output_padding,
        )?),
        Op::Pool(w) => {
            Tensor::Float(window::pool(float_arg(args, 0)?, w.kind, &w.window, &w.stride, &w.padding)?)
        }
        Op::Resize { size } => Tensor::Float(window::resize(float_arg(args, 0)?, size)?),
        Op::ConvWeightGrad { conv, kernel } => {
            Tensor::Float(window::conv_weight_grad(float_arg(args, 0)?, float_arg(args, 1)?, conv, kernel)?)
        }
        Op::PoolGrad(w) => Tensor::Float(window::pool_grad(
            float_arg(args, 0)?,
            float_arg(args, 1)?,
            w.kind,
            &w.window,
            &w.stride,
            &w.padding,
        )?),
        Op::ResizeGrad { size } => Tensor::Float(window::resize_grad(float_arg(args, 0)?, size)?),
        Op::Warp(attrs) => Tensor::Float(warp::warp(float_arg(args, 0)?, float_arg(args, 1)?, *attrs)?),
        Op::WarpGradInput(attrs) => {
            Tensor::Float(warp::warp_grad_input(float_arg(args, 0)?, float_arg(args, 1)?, *attrs)?)
        }
        Op::WarpGradFlow(attrs) => Tensor::Float(warp::warp_grad_flow(
            float_arg(args, 0)?,
            float_arg(args, 1)?,
            float_arg(args, 2)?,
            *attrs,
        )?),
        Op::OneHot { classes } => {
            let t = arg(args, 0)?;
            let labels = t.as_int().ok_or_else(|| format!("labels must be i32, got {}", t.ty()))?;
            Tensor::Float(structural::one_hot(labels, *classes)?)
        }
        Op::RngUniform { shape, stream } => {
            let shape = shape.as_known().ok_or("unresolved rng_uniform shape")?;
            let t = arg(args, 0)?;
            let key = t.as_int().ok_or_else(|| format!("the key must be i32[2], got {}", t.ty()))?;
            let key: Vec<i32> = key.iter().copied().collect();
            let &[k0, k1] = key.as_slice() else {
                return Err(format!("the key must be i32[2], got {}", t.ty()));
            };
            let count: usize = shape.iter().product();
            let data = (0..count as u64).map(|i| T::from_f64(f64::from(rng::uniform([k0, k1], *stream, i))));
            Tensor::Float(ArrayD::from_shape_vec(IxDyn(&shape), data.collect()).map_err(|e| e.to_string())?)
        }
        Op::Gather { axis } => Tensor::Float(index::gather(float_arg(args, 0)?, int_arg(args, 1)?, *axis)?),
        Op::ScatterSum { axis, size } => {
            Tensor::Float(index::scatter_sum(float_arg(args, 0)?, int_arg(args, 1)?, *axis, *size)?)
        }
        Op::ScatterMax { axis, size } => {
            Tensor::Float(index::scatter_max(float_arg(args, 0)?, int_arg(args, 1)?, *axis, *size)?)
        }
        Op::Softmax => Tensor::Float(reduce::softmax(float_arg(args, 0)?)?),
        Op::SoftmaxGrad => Tensor::Float(reduce::softmax_grad(float_arg(args, 0)?, float_arg(args, 1)?)?),
        Op::Standardize { eps } => Tensor::Float(reduce::standardize(float_arg(args, 0)?, *eps)?),
        Op::StandardizeGrad { eps } => {
            Tensor::Float(reduce::standardize_grad(float_arg(args, 0)?, float_arg(args, 1)?, *eps)?)
        }
        Op::ScatterMaxGrad { axis } => Tensor::Float(index::scatter_max_grad(
            float_arg(args, 0)?,
            int_arg(args, 1)?,
            float_arg(args, 2)?,
            *axis,
        )?),
        Op::Lstm { reverse } => Tensor::Float(recurrent::lstm(
            float_arg(args, 0)?,
            float_arg(args, 1)?,
            float_arg(args, 2)?,
            float_arg(args, 3)?,
            *reverse,
        )?),
        Op::LstmGrad { reverse, from } => Tensor::Float(recurrent::lstm_grad(
            [
                float_arg(args, 0)?,
                float_arg(args, 1)?,
                float_arg(args, 2)?,
                float_arg(args, 3)?,
                float_arg(args, 4)?,
                float_arg(args, 5)?,
            ],
            *reverse,
            from,
        )?),
        Op::StopGradient => arg(args, 0)?.clone(),
    })
}

fn int_arg<'a, T: Real>(args: &[&'a Tensor<T>], i: usize) -> Result<&'a ArrayD<i32>, String> {
    let t = arg(args, i)?;
    t.as_int().ok_or_else(|| format!("operand {i} must be i32, got {}", t.ty()))
}

/// `concat` of operands that all have one dtype.
fn concat<T: Real>(args: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>, String> {
    let mismatch = || "`concat` operands differ in dtype".to_string();
    Ok(match arg(args, 0)? {
        Tensor::Float(_) => {
            let parts: Vec<_> =
                args.iter().map(|t| t.as_float().ok_or_else(mismatch)).collect::<Result<_, _>>()?;
            Tensor::Float(structural::concat(&parts, axis)?)
        }
        Tensor::Int(_) => {
            let parts: Vec<_> =
                args.iter().map(|t| t.as_int().ok_or_else(mismatch)).collect::<Result<_, _>>()?;
            Tensor::Int(structural::concat(&parts, axis)?)
        }
        Tensor::Bool(_) => {
            let parts: Vec<_> =
                args.iter().map(|t| t.as_bool().ok_or_else(mismatch)).collect::<Result<_, _>>()?;
            Tensor::Bool(structural::concat(&parts, axis)?)
        }
    })
}

/// Deterministic example inputs for every Input node.
///
/// - data and constants: f32 uniform in [-1, 1); targets: f32 uniform in
///   [0, 1); i32 and bool values of all three in {0, 1};
/// - params and state: drawn from their [`Init`] (`Uniform { bound }` on
///   [-bound, bound), `Normal { std }` by Box–Muller, `Zeros`, `Ones`);
/// - keys: `[seed as i32, 0]`;
/// - hyperparameters (the learning rate): 0.001.
///
/// Values come from [`rng::uniform`] with key (low, high 32 bits of `seed`)
/// and a stream hashed from the input's name. `dims` binds symbolic
/// dimensions (e.g. `{"B": 2}`); an unbound one is an error.
pub fn example_inputs<T: Real>(
    graph: &Graph,
    dims: &HashMap<String, usize>,
    seed: u64,
) -> Result<HashMap<String, Tensor<T>>, InterpError> {
    let key = rng::seed_key(seed);
    let mut out = HashMap::new();
    for (id, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let shape = resolve_shape(&node.ty.shape, dims)
            .map_err(|m| InterpError::at(id, format!("input `{name}` ({}): {m}", node.ty)))?;
        let count: usize = shape.iter().product();
        let stream = rng::name_stream(name);
        let u = |i: usize| f64::from(rng::uniform(key, stream, i as u64));
        let init_values = |init: &Init| -> Vec<f64> {
            (0..count as u64).map(|i| rng::init_element(*init, key, stream, i)).collect()
        };
        let values: Vec<f64> = match kind {
            InputKind::Key => {
                if node.ty != Type::new(DType::I32, Shape::known(&[2])) {
                    return Err(InterpError::at(id, format!("key `{name}` must be i32[2], got {}", node.ty)));
                }
                vec![f64::from(seed as i32), 0.0]
            }
            // Data in [-1, 1); f32 targets in [0, 1), the range of one-hot
            // labels, probabilities and loss weights (a weight summing to
            // nearly zero would make a weighted mean ill-conditioned).
            InputKind::Data | InputKind::Target | InputKind::Const => match node.ty.dtype {
                DType::F32 if *kind == InputKind::Target => (0..count).map(u).collect(),
                DType::F32 => (0..count).map(|i| 2.0 * u(i) - 1.0).collect(),
                DType::I32 | DType::Bool => (0..count).map(|i| if u(i) < 0.5 { 0.0 } else { 1.0 }).collect(),
            },
            InputKind::Param { init, .. } | InputKind::State { init } => init_values(init),
            InputKind::Hyper => vec![1e-3],
        };
        let tensor = match node.ty.dtype {
            DType::F32 => Tensor::from_f64(&shape, &values),
            DType::I32 => {
                ArrayD::from_shape_vec(IxDyn(&shape), values.iter().map(|&v| v.round() as i32).collect())
                    .map(Tensor::Int)
                    .map_err(|e| e.to_string())
            }
            DType::Bool => ArrayD::from_shape_vec(IxDyn(&shape), values.iter().map(|&v| v != 0.0).collect())
                .map(Tensor::Bool)
                .map_err(|e| e.to_string()),
        }
        .map_err(|m| InterpError::at(id, format!("input `{name}`: {m}")))?;
        out.insert(name.clone(), tensor);
    }
    Ok(out)
}
