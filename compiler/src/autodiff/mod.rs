//! Reverse-mode automatic differentiation as a graph-to-graph transform.
//!
//! [`differentiate`] takes a forward graph with a `loss` output and returns a
//! copy with the backward pass appended (with respect to every parameter;
//! [`differentiate_loss`] picks one of several losses and the parameters an
//! optimiser updates): one vector-Jacobian rule per
//! primitive (all in [`rules`]), applied in reverse definition order. Every
//! backward node records the forward node it came from (`grad_of`) and that
//! node's source location, so the printed graph reads `... @6:12-6:21 from %9
//! matmul`.
//!
//! `compiler/tests/primitive_gradients.rs` checks every rule against finite
//! differences on the primitive case table (`compiler/tests/cases`).

pub mod rules;

use crate::ir::graph::DANGLING;
use crate::ir::verify::violations;
use crate::ir::{DType, Graph, GraphError, InputKind, Op, OutputKind, Shape, Type, ValueId};

use rules::Emitter;

/// The gradient of the loss with respect to one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGrad {
    /// The parameter's stable name (e.g. `h.dense_1.weight`).
    pub name: String,
    /// The parameter's input node.
    pub param: ValueId,
    /// The node holding d loss / d param (same type as the parameter).
    pub grad: ValueId,
}

/// A forward graph extended with its backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Backward {
    /// The forward nodes, then the backward nodes. Outputs: the forward
    /// outputs, then one `value "grad.NAME"` output per differentiated
    /// parameter.
    pub graph: Graph,
    /// One entry per differentiated parameter input, in input order.
    pub grads: Vec<ParamGrad>,
}

/// Appends the backward pass of `forward`'s loss output (its first output
/// of kind `loss`) with respect to every parameter input.
///
/// Only nodes on a path from a parameter to the loss through differentiable
/// ops are differentiated; a parameter the loss does not depend on gets a
/// zero gradient. Where a value feeds several consumers, their
/// contributions are added in reverse definition order.
pub fn differentiate(forward: &Graph) -> Result<Backward, GraphError> {
    let loss = forward
        .outputs
        .iter()
        .find(|o| o.kind == OutputKind::Loss)
        .ok_or("the graph has no `loss` output to differentiate")?
        .value;
    backward(forward, loss, &|_| true)
}

/// Appends the backward pass of the loss output called `loss` with respect
/// to the parameter inputs whose names `wrt` accepts (in input order); the
/// other parameters are constants of the backward pass and get no
/// gradient. This is one optimiser's step of a model with several losses;
/// [`differentiate`] is the case of one loss and every parameter.
pub fn differentiate_loss(
    forward: &Graph,
    loss: &str,
    wrt: &dyn Fn(&str) -> bool,
) -> Result<Backward, GraphError> {
    let output = forward
        .outputs
        .iter()
        .find(|o| o.kind == OutputKind::Loss && o.name == loss)
        .ok_or_else(|| format!("the graph has no loss output `{loss}` to differentiate"))?;
    backward(forward, output.value, wrt)
}

/// The backward pass of the value `loss` with respect to the parameters
/// `wrt` accepts.
fn backward(forward: &Graph, loss: ValueId, wrt: &dyn Fn(&str) -> bool) -> Result<Backward, GraphError> {
    if loss.index() >= forward.nodes.len() || forward.ty(loss) != &Type::scalar(DType::F32) {
        return Err(format!("the loss {loss} must be an f32[] value").into());
    }
    let active = active_nodes(forward, loss, wrt);
    let mut graph = forward.clone();
    let mut cotangent: Vec<Option<ValueId>> = vec![None; forward.nodes.len()];
    if active[loss.index()] {
        let mut e = Emitter { graph: &mut graph, of: loss, loc: forward.node(loss).loc };
        cotangent[loss.index()] = Some(e.filled(1.0, &Shape::scalar())?);
    }
    for index in (0..forward.nodes.len()).rev() {
        let (Some(gy), true) = (cotangent[index], active[index]) else { continue };
        let node = &forward.nodes[index];
        let y = ValueId(index as u32);
        let mut e = Emitter { graph: &mut graph, of: y, loc: node.loc };
        let contributions = rules::vjp(&mut e, node, y, gy)?;
        for (&arg, contribution) in node.args.iter().zip(contributions) {
            let Some(g) = contribution else { continue };
            if !active[arg.index()] || forward.ty(arg).dtype != DType::F32 {
                continue;
            }
            cotangent[arg.index()] = Some(match cotangent[arg.index()] {
                None => g,
                Some(previous) => e.add(previous, g)?,
            });
        }
    }
    let mut grads = vec![];
    for (param, node) in forward.inputs() {
        let Op::Input { name, kind: InputKind::Param { .. } } = &node.op else { continue };
        if !wrt(name) {
            continue;
        }
        let grad = match cotangent[param.index()] {
            Some(g) => g,
            None => {
                let mut e = Emitter { graph: &mut graph, of: param, loc: node.loc };
                rules::zero_like(&mut e, &node.ty)?
            }
        };
        graph.output(OutputKind::Other, format!("grad.{name}"), grad);
        grads.push(ParamGrad { name: name.clone(), param, grad });
    }
    let (graph, grads) = prune(&graph, forward.nodes.len(), grads);
    violations(&graph).map_err(|e| GraphError::located("the gradient graph does not verify", &graph, e))?;
    Ok(Backward { graph, grads })
}

/// Removes the backward nodes (those from index `first` on) that no output
/// uses — the rules give a contribution for every float operand, including
/// operands that need none (data, sizes) — and renumbers the rest.
fn prune(graph: &Graph, first: usize, grads: Vec<ParamGrad>) -> (Graph, Vec<ParamGrad>) {
    let n = graph.nodes.len();
    let mut used = vec![false; n];
    used[..first].fill(true);
    for o in &graph.outputs {
        used[o.value.index()] = true;
    }
    for i in (first..n).rev() {
        if used[i] {
            for a in &graph.nodes[i].args {
                used[a.index()] = true;
            }
        }
    }
    let kept: Vec<ValueId> = (0..n as u32).map(ValueId).filter(|v| used[v.index()]).collect();
    let (out, new_id) = graph.rebuild(&kept).finish();
    // Every gradient is an output, so it is kept.
    let grads =
        grads.into_iter().map(|g| ParamGrad { grad: new_id[g.grad.index()].unwrap_or(DANGLING), ..g });
    (out, grads.collect())
}

/// Nodes whose value depends on a parameter `wrt` accepts through
/// differentiable ops and on which the loss depends: exactly the nodes that
/// need a cotangent.
fn active_nodes(graph: &Graph, loss: ValueId, wrt: &dyn Fn(&str) -> bool) -> Vec<bool> {
    let n = graph.nodes.len();
    let mut from_param = vec![false; n];
    for (i, node) in graph.nodes.iter().enumerate() {
        from_param[i] = match &node.op {
            Op::Input { name, kind } => matches!(kind, InputKind::Param { .. }) && wrt(name),
            op => op.is_differentiable() && node.args.iter().any(|a| from_param[a.index()]),
        };
    }
    let mut to_loss = vec![false; n];
    to_loss[loss.index()] = true;
    for i in (0..n).rev() {
        if to_loss[i] && graph.nodes[i].op.is_differentiable() {
            for a in &graph.nodes[i].args {
                to_loss[a.index()] = true;
            }
        }
    }
    (0..n).map(|i| from_param[i] && to_loss[i]).collect()
}
