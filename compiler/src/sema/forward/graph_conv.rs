//! `graph_conv`: one round of message passing (an interaction network,
//! Battaglia et al. 2016) on node features `[B, N, F]` and a constant edge
//! list `i32[E, 2]`, as a composition of primitives (matmul, gather,
//! scatter, concat, elementwise), so autodiff, fusion and code generation
//! need nothing new.
//!
//! With `x_n` the features of node `n`, `(s_e, d_e)` edge `e`'s source and
//! destination and `f_e` its features (if any):
//!
//! ```text
//! m_e = act(W_m·[x_{s_e}, x_{d_e}, f_e] + b_m)        message   [B, E, units]
//! a_n = aggr over the edges e with d_e = n of m_e      aggregate [B, N, units]
//! u_n = act(W_u·[x_n, a_n] + b_u)                      update    [B, N, units]
//! y_n = x_n + u_n   when F = units (and `residual`), else u_n
//! ```
//!
//! Each MLP is one dense layer and its activation; there is no
//! normalisation. The parameters are `message.weight [units, 2F + Fe]`,
//! `message.bias [units]`, `update.weight [units, F + units]` and
//! `update.bias [units]`, laid out as PyTorch's `nn.Linear` of the
//! concatenations (input columns: source, destination, edge features; node,
//! aggregate) and initialised as it does (uniform on `±1/√fan_in`).
//!
//! The message layer is linear before its activation, and a linear map
//! commutes with gathering: `W_m·[x_s, x_d] = (x·W_sᵀ)[s] + (x·W_dᵀ)[d]`
//! with `W_s`, `W_d` the column blocks of `W_m`. So when the graph has at
//! least as many edges as nodes, the node features are projected first
//! (`2·N·F·units` multiply-adds) and the projections gathered along the
//! edges, instead of projecting every edge's concatenation
//! (`2·E·F·units`); with fewer edges than nodes, the features are gathered
//! first. Both give the same values up to rounding, and the gradient of a
//! gather is a scatter-add either way.

use super::activation::activation;
use super::emit::{
    bin, broadcast, check_param_size, check_size, emit, known_dim, reshape_to, shape, ty, want_f32,
};
use super::graph::{gather, scatter, Combine};
use super::{Activation, BuildError, Built, Cx};
use crate::ir::{BinaryOp, DType, Dim, Init, Op, ParamRole, Shape, ValueId};

/// The checked arguments of `graph_conv` beside its tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraphConv {
    pub units: usize,
    pub aggregate: Combine,
    pub activation: Activation,
    pub residual: bool,
}

/// A weight `[units, inputs]` and bias `[units]` named `name.weight`,
/// `name.bias`, uniform on `±1/√inputs` (PyTorch `nn.Linear`).
fn linear_params(cx: &mut dyn Cx, name: &str, units: usize, inputs: usize) -> (ValueId, ValueId) {
    let init = Init::Uniform { bound: 1.0 / (inputs as f64).sqrt() };
    let w = cx.param(&format!("{name}.weight"), ParamRole::Weight, Shape::known(&[units, inputs]), init);
    let b = cx.param(&format!("{name}.bias"), ParamRole::Bias, Shape::known(&[units]), init);
    (w, b)
}

/// Columns `start..end` of a weight `[units, inputs]`, transposed:
/// `[end - start, units]`.
fn block_t(cx: &mut dyn Cx, w: ValueId, start: usize, end: usize) -> Built {
    let inputs = known_dim(&ty(cx, w), 1, "graph_conv", 0)?;
    let block =
        if start == 0 && end == inputs { w } else { emit(cx, Op::Slice { axis: 1, start, end }, &[w])? };
    emit(cx, Op::Permute { axes: vec![1, 0] }, &[block])
}

/// `x·wt` over the last axis of `x: [.., K]` with `wt: [K, U]`.
fn project(cx: &mut dyn Cx, x: ValueId, wt: ValueId) -> Built {
    let s = shape(cx, x);
    let r = s.rank();
    if r == 2 {
        return emit(cx, Op::MatMul, &[x, wt]);
    }
    let mut dims = s.dims()[..r - 2].to_vec();
    dims.extend(shape(cx, wt).dims().iter().cloned());
    let wt = broadcast(cx, wt, &Shape(dims))?;
    emit(cx, Op::MatMul, &[x, wt])
}

/// Column `column` of the edge list `i32[E, 2]` as an index `i32[E]`.
fn column(cx: &mut dyn Cx, edges: ValueId, column: usize) -> Built {
    let e = shape(cx, edges).dims()[0].clone();
    let c = emit(cx, Op::Slice { axis: 1, start: column, end: column + 1 }, &[edges])?;
    reshape_to(cx, c, Shape(vec![e]))
}

/// Checks the edge list (operand 1): `i32[E, 2]`, and, when it is known at
/// compile time, every node index in `0..nodes`. Returns `E`.
fn check_edges(cx: &mut dyn Cx, edges: ValueId, nodes: usize, x: &str) -> Result<Dim, BuildError> {
    let t = ty(cx, edges);
    let dims = t.shape.dims();
    if t.dtype != DType::I32 || dims.len() != 2 || dims[1] != Dim::Known(2) {
        // A transposed list [2, E] names E on its other axis.
        let e = match dims {
            [Dim::Known(2), e] if *e != Dim::Known(2) => e.to_string(),
            [e, _] => e.to_string(),
            _ => "E".to_string(),
        };
        let mut err = BuildError::new(format!(
            "`graph_conv` needs an edge list i32[E, 2] of (source, destination) rows, got {t}"
        ))
        .at(1)
        .expected(format!("i32[{e}, 2]"));
        if t.dtype != DType::I32 {
            err = err.help("node indices are i32: declare the edges as `const edges: i32[E, 2] = ...`");
        } else if dims.len() == 1 {
            err = err
                .help("a single index vector is for `gather` and `scatter`; `graph_conv` takes both columns");
        } else if dims.len() == 2 && dims[0] == Dim::Known(2) {
            err = err.help(
                "the edge list has one row per edge: transpose a [2, E] list with `permute(edges, [1, 0])`",
            );
        }
        return Err(err);
    }
    if let Some(super::ConstData::I32(values)) = cx.constant_value(edges) {
        if let Some(at) = values.iter().position(|&v| v < 0 || v as usize >= nodes) {
            let (edge, end) = (at / 2, ["source", "destination"][at % 2]);
            let list = cx.constant_origin(edges).map_or(String::new(), |o| format!(" {o}"));
            return Err(BuildError::new(format!(
                "edge {edge} of the edge list{list} has the {end} {}, outside the {nodes} nodes of x {x}",
                values[at]
            ))
            .at(1)
            .label(format!("node indices must lie in 0..{nodes}"))
            .note("nodes are the positions along axis 1 of x [B, N, F], numbered from 0"));
        }
    }
    Ok(dims[0].clone())
}

/// Checks the edge features (operand 2): `f32[E, Fe]` or `f32[B, E, Fe]`.
/// Returns `Fe`.
fn check_edge_features(cx: &mut dyn Cx, f: ValueId, e: &Dim, batch: &Dim) -> Result<usize, BuildError> {
    let t = want_f32(cx, f, "graph_conv", 2)?;
    let dims = t.shape.dims();
    let fits = match dims.len() {
        2 => dims[0] == *e,
        3 => dims[0] == *batch && dims[1] == *e,
        _ => false,
    };
    if !fits {
        return Err(BuildError::new(format!(
            "`graph_conv` needs edge features [E, Fe] or [B, E, Fe] with one row per edge ({e} edges), got {t}"
        ))
        .at(2)
        .expected(format!("f32[{e}, Fe] or f32[{batch}, {e}, Fe]")));
    }
    let fe = known_dim(&t, dims.len() - 1, "graph_conv", 2)?;
    check_size(fe, "the `graph_conv` edge feature count")?;
    Ok(fe)
}

/// `graph_conv(x, edges, units, aggr, edge_features, activation, residual)`
/// (see the module documentation). Operand 0 is `x: f32[B, N, F]`, 1 the
/// edge list `i32[E, 2]`, 2 the edge features.
pub fn graph_conv(
    cx: &mut dyn Cx,
    x: ValueId,
    edges: ValueId,
    features: Option<ValueId>,
    g: GraphConv,
) -> Built {
    let what = "graph_conv";
    let t = want_f32(cx, x, what, 0)?;
    if t.shape.rank() != 3 {
        return Err(BuildError::new(format!("`{what}` needs node features [B, N, F], got {t}"))
            .at(0)
            .expected("rank 3 [B, N, F] (batch, nodes, features)")
            .help("a grid [B, C, H, W] becomes nodes with `permute(reshape(x, [B, C, H * W]), [0, 2, 1])`"));
    }
    let nodes = known_dim(&t, 1, what, 0)?;
    let width = known_dim(&t, 2, what, 0)?;
    check_size(width, &format!("the `{what}` feature count (axis 2)")).map_err(|e| e.at(0))?;
    let e = check_edges(cx, edges, nodes, &t.shape.to_string())?;
    let batch = t.shape.dims()[0].clone();
    let fe = match features {
        Some(f) => check_edge_features(cx, f, &e, &batch)?,
        None => 0,
    };
    let units = g.units;
    check_size(units, &format!("`{what}` units"))?;
    check_param_size(&[units, 2 * width + fe], &format!("the `{what}` message weight"))?;
    check_param_size(&[units, width + units], &format!("the `{what}` update weight"))?;

    let (wm, bm) = linear_params(cx, "message", units, 2 * width + fe);
    let (wu, bu) = linear_params(cx, "update", units, width + units);
    let src = column(cx, edges, 0)?;
    let dst = column(cx, edges, 1)?;

    // W_m·[x_s, x_d] as the sum of one projection per end of the edge.
    let project_first = e.known().is_none_or(|e| nodes <= e);
    let mut pre: Option<ValueId> = None;
    for (k, index) in [(0, src), (1, dst)] {
        let wt = block_t(cx, wm, k * width, (k + 1) * width)?;
        let part = if project_first {
            let p = project(cx, x, wt)?;
            gather(cx, p, index, 1)?
        } else {
            let xe = gather(cx, x, index, 1)?;
            project(cx, xe, wt)?
        };
        pre = Some(match pre {
            Some(sum) => bin(cx, BinaryOp::Add, sum, part)?,
            None => part,
        });
    }
    let mut pre = pre.expect("two ends");
    let full = shape(cx, pre);
    if let Some(f) = features {
        let wt = block_t(cx, wm, 2 * width, 2 * width + fe)?;
        let part = project(cx, f, wt)?;
        let part = broadcast(cx, part, &full)?;
        pre = bin(cx, BinaryOp::Add, pre, part)?;
    }
    let b = broadcast(cx, bm, &full)?;
    let pre = bin(cx, BinaryOp::Add, pre, b)?;
    let messages = activation(cx, pre, g.activation)?;

    let aggregate = scatter(cx, messages, dst, nodes, 1, g.aggregate)?;
    let joined = emit(cx, Op::Concat { axis: 2 }, &[x, aggregate])?;
    let wt = block_t(cx, wu, 0, width + units)?;
    let u = project(cx, joined, wt)?;
    let s = shape(cx, u);
    let b = broadcast(cx, bu, &s)?;
    let u = bin(cx, BinaryOp::Add, u, b)?;
    let u = activation(cx, u, g.activation)?;
    if g.residual && width == units {
        bin(cx, BinaryOp::Add, x, u)
    } else {
        Ok(u)
    }
}
