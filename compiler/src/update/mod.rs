//! The optimiser update as IR: gradient clipping and one optimiser step.
//!
//! [`append_update`] extends a graph that already computes the gradients
//! with the update of one optimiser step, so the whole training step is one
//! graph: (batch, params, state, lr) → (loss, new params, new state). Code
//! generation and the runtime then need nothing optimiser-specific: they feed
//! the `lr` hyperparameter and carry state outputs over to the next step.
//!
//! Conventions of the emitted IR:
//! - One `hyper` input [`LR`] (`f32[]`): the learning rate is fed at every
//!   step, so schedules need no recompilation.
//! - Optimiser state is explicit `state` inputs (initialised to zeros), each
//!   with a `state` output of the same name and type holding its new value.
//!   Names follow PyTorch's `state_dict` keys under a prefix ([`Prefix`]):
//!   `optim.PARAM.SLOT` per parameter ([`state_name`]) and the scalar step
//!   count [`STEP`] for the optimiser of a model with one loss, and
//!   `optim.NAME.PARAM.SLOT`, `optim.NAME.step` for the optimiser of the
//!   loss `NAME` of several, so that optimisers updating the same parameter
//!   keep separate state. Only the state that the configuration uses exists
//!   (no momentum buffer without momentum).
//! - The new value of every parameter is a `param` output named like it.
//! - Nodes that belong to one parameter's update carry that parameter's
//!   source location; nodes shared by all parameters (the learning rate, the
//!   step count, scalar coefficients, their broadcasts and the global
//!   gradient norm) carry [`Loc::NONE`].
//!
//! Each optimiser is one submodule (`sgd`, `adam`, `rmsprop`; clipping is
//! `clip`) written against `Emitter`, which builds nodes with [`Graph::add`]
//! and emits each scalar constant, and each broadcast of a scalar to a shape,
//! once.

mod adam;
mod clip;
mod rmsprop;
mod sgd;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::autodiff::ParamGrad;
use crate::config::Optimizer;
use crate::diag::Span;
use crate::ir::{
    BinaryOp, DType, Graph, Init, InputKind, Loc, Op, OutputKind, Shape, Type, UnaryOp, ValueId,
};

/// Name of the learning-rate input (`hyper`, `f32[]`).
pub const LR: &str = "lr";

/// Name of the step-count state of Adam and AdamW (`f32[]`, the number of
/// steps taken before this one) of the only optimiser.
pub const STEP: &str = "optim.step";

/// The name of optimiser state `slot` (e.g. `exp_avg`) of parameter `param`
/// of the only optimiser: `optim.PARAM.SLOT`.
pub fn state_name(param: &str, slot: &str) -> String {
    Prefix::ONLY.state(param, slot)
}

/// The prefix of one optimiser's state names: `optim` for the optimiser of
/// a model with one loss, `optim.NAME` for the optimiser of the loss `NAME`
/// when there are several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// The prefix of the only optimiser: `optim`.
    pub const ONLY: Prefix = Prefix(String::new());

    /// The prefix of the optimiser of the loss `loss`, one of several:
    /// `optim.LOSS`.
    pub fn of_loss(loss: &str) -> Prefix {
        Prefix(format!(".{loss}"))
    }

    /// `optim[.LOSS].PARAM.SLOT`.
    pub fn state(&self, param: &str, slot: &str) -> String {
        format!("optim{}.{param}.{slot}", self.0)
    }

    /// The step count: `optim[.LOSS].step`.
    pub fn step(&self) -> String {
        format!("optim{}.step", self.0)
    }
}

/// Appends gradient clipping (if `clip_grad_norm` is set) and the update of
/// `optimizer` for every parameter in `grads`, its state named under
/// `prefix`.
///
/// Each [`ParamGrad`] must name a `param` input of `graph` (by value and by
/// name) and a gradient of the same type. The optimiser's `lr` field is only
/// the initial value of the [`LR`] input and does not enter the graph. On
/// error the graph is left unchanged.
pub fn append_update(
    graph: &mut Graph,
    grads: &[ParamGrad],
    optimizer: &Optimizer,
    clip_grad_norm: Option<f64>,
    prefix: &Prefix,
) -> Result<(), String> {
    check_hyperparameters(optimizer, clip_grad_norm)?;
    let params = grads.iter().map(|pg| Param::new(graph, pg)).collect::<Result<Vec<_>, _>>()?;
    let mut e = Emitter::new(graph.clone(), prefix.clone());
    let lr = e.input(LR, InputKind::Hyper, Type::scalar(DType::F32), Loc::NONE)?;
    let grads = match clip_grad_norm {
        Some(max_norm) => clip::clip_grad_norm(&mut e, &params, max_norm)?,
        None => params.iter().map(|p| p.grad).collect(),
    };
    match *optimizer {
        Optimizer::Sgd { momentum, nesterov, weight_decay, .. } => {
            let sgd = sgd::Sgd { momentum, nesterov, weight_decay };
            for (p, &g) in params.iter().zip(&grads) {
                sgd.update(&mut e, p, g, lr)?;
            }
        }
        Optimizer::Adam { beta1, beta2, eps, weight_decay, .. } => {
            let adam = adam::Adam { beta1, beta2, eps, weight_decay, decoupled: false };
            adam.update_all(&mut e, &params, &grads, lr)?;
        }
        Optimizer::AdamW { beta1, beta2, eps, weight_decay, .. } => {
            let adam = adam::Adam { beta1, beta2, eps, weight_decay, decoupled: true };
            adam.update_all(&mut e, &params, &grads, lr)?;
        }
        Optimizer::RmsProp { alpha, eps, momentum, weight_decay, .. } => {
            let rmsprop = rmsprop::RmsProp { alpha, eps, momentum, weight_decay };
            for (p, &g) in params.iter().zip(&grads) {
                rmsprop.update(&mut e, p, g, lr)?;
            }
        }
    }
    *graph = e.graph;
    Ok(())
}

/// Rejects hyperparameters for which the update is undefined, with the
/// bounds PyTorch checks (and finiteness).
fn check_hyperparameters(optimizer: &Optimizer, clip_grad_norm: Option<f64>) -> Result<(), String> {
    let name = optimizer.name();
    let at_least_zero = |what: &str, x: f64| {
        if x.is_finite() && x >= 0.0 {
            Ok(())
        } else {
            Err(format!("{name}: `{what}` must be a finite number ≥ 0, got {x}"))
        }
    };
    let beta = |what: &str, x: f64| {
        if (0.0..1.0).contains(&x) {
            Ok(())
        } else {
            Err(format!("{name}: `{what}` must be in [0, 1), got {x}"))
        }
    };
    at_least_zero("lr", optimizer.lr())?;
    match *optimizer {
        Optimizer::Sgd { momentum, nesterov, weight_decay, .. } => {
            at_least_zero("momentum", momentum)?;
            at_least_zero("weight_decay", weight_decay)?;
            if nesterov && momentum == 0.0 {
                return Err(format!("{name}: Nesterov momentum needs `momentum` > 0"));
            }
        }
        Optimizer::Adam { beta1, beta2, eps, weight_decay, .. }
        | Optimizer::AdamW { beta1, beta2, eps, weight_decay, .. } => {
            beta("beta1", beta1)?;
            beta("beta2", beta2)?;
            at_least_zero("eps", eps)?;
            at_least_zero("weight_decay", weight_decay)?;
        }
        Optimizer::RmsProp { alpha, eps, momentum, weight_decay, .. } => {
            at_least_zero("alpha", alpha)?;
            at_least_zero("eps", eps)?;
            at_least_zero("momentum", momentum)?;
            at_least_zero("weight_decay", weight_decay)?;
        }
    }
    match clip_grad_norm {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(format!("`clip_grad_norm` must be a finite number > 0, got {x}"))
        }
        _ => Ok(()),
    }
}

/// One parameter being updated: its input node and its (checked) gradient.
struct Param {
    name: String,
    value: ValueId,
    grad: ValueId,
    ty: Type,
    loc: Loc,
    span: Option<Span>,
}

impl Param {
    /// Checks that `pg` names a `param` input of `graph` and a gradient of
    /// the same type.
    fn new(graph: &Graph, pg: &ParamGrad) -> Result<Param, String> {
        let node = graph
            .nodes
            .get(pg.param.index())
            .ok_or_else(|| format!("parameter `{}`: {} is not a value of the graph", pg.name, pg.param))?;
        match &node.op {
            Op::Input { name, kind: InputKind::Param { .. } } if *name == pg.name => {}
            Op::Input { name, kind: InputKind::Param { .. } } => {
                return Err(format!("parameter `{}`: {} is the parameter `{name}`", pg.name, pg.param));
            }
            op => {
                return Err(format!(
                    "parameter `{}`: {} is a `{}` node, not a parameter input",
                    pg.name,
                    pg.param,
                    op.mnemonic()
                ));
            }
        }
        if node.ty.dtype != DType::F32 {
            return Err(format!(
                "parameter `{}` has type {}; only f32 parameters are trained",
                pg.name, node.ty
            ));
        }
        let grad = graph.nodes.get(pg.grad.index()).ok_or_else(|| {
            format!("parameter `{}`: gradient {} is not a value of the graph", pg.name, pg.grad)
        })?;
        if grad.ty != node.ty {
            return Err(format!(
                "parameter `{}` has type {} but its gradient {} has type {}",
                pg.name, node.ty, pg.grad, grad.ty
            ));
        }
        Ok(Param {
            name: pg.name.clone(),
            value: pg.param,
            grad: pg.grad,
            ty: node.ty.clone(),
            loc: node.loc,
            span: node.span,
        })
    }
}

/// Builds the update's nodes on a graph, emitting every scalar constant and
/// every broadcast of a scalar to a shape once.
struct Emitter {
    graph: Graph,
    /// Where the optimiser's state names start.
    prefix: Prefix,
    constants: HashMap<u64, ValueId>,
    broadcasts: HashMap<(ValueId, Shape), ValueId>,
}

impl Emitter {
    fn new(graph: Graph, prefix: Prefix) -> Emitter {
        Emitter { graph, prefix, constants: HashMap::new(), broadcasts: HashMap::new() }
    }

    /// Adds an input, refusing a name some input already has.
    fn input(&mut self, name: &str, kind: InputKind, ty: Type, loc: Loc) -> Result<ValueId, String> {
        let taken = self.graph.inputs().any(|(_, n)| matches!(&n.op, Op::Input { name: m, .. } if m == name));
        if taken {
            return Err(format!("the graph already has an input named `{name}`"));
        }
        Ok(self.graph.input(name, kind, ty, loc))
    }

    /// Adds an output, refusing a name some output already has.
    fn output(&mut self, kind: OutputKind, name: &str, value: ValueId) -> Result<(), String> {
        if self.graph.find_output(name).is_some() {
            return Err(format!("the graph already has an output named `{name}`"));
        }
        self.graph.output(kind, name, value);
        Ok(())
    }

    /// The state input `optim.PARAM.SLOT` of `p` (zeros at the first step).
    fn state(&mut self, p: &Param, slot: &str) -> Result<ValueId, String> {
        let v = self.input(
            &self.prefix.state(&p.name, slot),
            InputKind::State { init: Init::Zeros },
            p.ty.clone(),
            p.loc,
        )?;
        self.graph.nodes[v.index()].span = p.span;
        Ok(v)
    }

    /// Declares `value` the new value of state `optim.PARAM.SLOT` of `p`.
    fn set_state(&mut self, p: &Param, slot: &str, value: ValueId) -> Result<(), String> {
        let name = self.prefix.state(&p.name, slot);
        self.output(OutputKind::State, &name, value)
    }

    /// Declares `value` the new value of `p`.
    fn set_param(&mut self, p: &Param, value: ValueId) -> Result<(), String> {
        self.output(OutputKind::Param, &p.name, value)
    }

    /// The f32 scalar constant `x`.
    fn constant(&mut self, x: f64) -> ValueId {
        let graph = &mut self.graph;
        *self.constants.entry(x.to_bits()).or_insert_with(|| graph.constant(x, DType::F32, Loc::NONE))
    }

    /// A binary op on shared values (scalars).
    fn shared(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId, String> {
        self.graph.add(Op::Binary(op), &[a, b], Loc::NONE)
    }

    /// A unary op on a shared value (scalar).
    fn shared_unary(&mut self, op: UnaryOp, a: ValueId) -> Result<ValueId, String> {
        self.graph.add(Op::Unary(op), &[a], Loc::NONE)
    }

    /// Scalar `s` broadcast to `shape` (`s` itself for a scalar shape).
    fn splat(&mut self, s: ValueId, shape: &Shape) -> Result<ValueId, String> {
        if shape.rank() == 0 {
            return Ok(s);
        }
        if let Some(&v) = self.broadcasts.get(&(s, shape.clone())) {
            return Ok(v);
        }
        let v = self.graph.add(Op::Broadcast { shape: shape.clone() }, &[s], Loc::NONE)?;
        self.broadcasts.insert((s, shape.clone()), v);
        Ok(v)
    }

    /// A binary op in the update of `p`.
    fn binary(&mut self, p: &Param, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId, String> {
        self.add(p, Op::Binary(op), &[a, b])
    }

    /// A unary op in the update of `p`.
    fn unary(&mut self, p: &Param, op: UnaryOp, a: ValueId) -> Result<ValueId, String> {
        self.add(p, Op::Unary(op), &[a])
    }

    /// An op in the update of `p`, at `p`'s location and span.
    fn add(&mut self, p: &Param, op: Op, args: &[ValueId]) -> Result<ValueId, String> {
        let v = self.graph.add(op, args, p.loc)?;
        self.graph.nodes[v.index()].span = p.span;
        Ok(v)
    }

    /// `c · x` for a constant `c` and a tensor `x` of `p`'s shape.
    fn scale(&mut self, p: &Param, c: f64, x: ValueId) -> Result<ValueId, String> {
        let c = self.constant(c);
        self.scale_by(p, c, x)
    }

    /// `s · x` for a scalar value `s` and a tensor `x` of `p`'s shape.
    fn scale_by(&mut self, p: &Param, s: ValueId, x: ValueId) -> Result<ValueId, String> {
        let s = self.splat(s, &p.ty.shape)?;
        self.binary(p, BinaryOp::Mul, s, x)
    }

    /// `a · x + b · y` for constants `a`, `b` (a term whose constant is 1 is
    /// not multiplied).
    fn mix(&mut self, p: &Param, a: f64, x: ValueId, b: f64, y: ValueId) -> Result<ValueId, String> {
        let x = if a == 1.0 { x } else { self.scale(p, a, x)? };
        let y = if b == 1.0 { y } else { self.scale(p, b, y)? };
        self.binary(p, BinaryOp::Add, x, y)
    }

    /// L2 weight decay added to the gradient: `g + wd · p` (`g` when `wd` is 0).
    fn l2(&mut self, p: &Param, g: ValueId, weight_decay: f64) -> Result<ValueId, String> {
        if weight_decay == 0.0 {
            return Ok(g);
        }
        self.mix(p, 1.0, g, weight_decay, p.value)
    }

    /// `from − s · d` for a scalar step size `s` (the learning rate): a step
    /// along `−d`.
    fn descend(&mut self, p: &Param, from: ValueId, s: ValueId, d: ValueId) -> Result<ValueId, String> {
        let step = self.scale_by(p, s, d)?;
        self.binary(p, BinaryOp::Sub, from, step)
    }
}
