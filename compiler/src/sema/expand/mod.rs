//! Expansion of the model into one forward graph: names, expressions, blocks.
//!
//! A [`Run`] walks the model's statements in order, evaluating each
//! expression to a [`Value`]: constants are folded at compile time (by the
//! rule of `fold`, which the `train` section shares), tensor
//! operations are built as IR through the forward-graph library, and block calls
//! are expanded in place with their own parameters. The same walk runs once
//! per [`Mode`]; the training run reports every diagnostic (the inference
//! run can only repeat them).
//!
//! Parameter naming: each model-level binding `name = expr` opens the scope
//! `name`; every built-in call inside its expression (including inside the
//! blocks it calls) is named `name.kind_k`, with `k` counting calls of that
//! built-in in that scope from 1 (a rebinding continues the count). A layer's
//! parameters are `name.kind_k.tensor`, e.g. `e1.conv2d_1.weight`.

use std::cell::Cell;
use std::collections::HashMap;

use crate::diag::{Diagnostic, Span};
use crate::ir::{DType, Dim, Graph, InputKind, Loc, Mode, OutputKind, ParamRole, Shape, Type, ValueId};
use crate::syntax::ast::{self, DeclKind, Expr, ExprKind, ModelDef, Stmt};

use super::args::MAX_SIZE;
use super::catalogue;
use super::constants::{ConstData, Constant};
use super::fold::{self, FoldError, Num};
use super::forward::{self, BuildError, Built, Cx};
use super::items::BlockInfo;
use super::values::{TensorVal, Value};
use super::{LayerInfo, LayerValue};
use crate::suggest;

mod consts;
mod expr;
mod index;

pub use consts::{load_constants, LoadedConsts};

/// Deepest expression nesting evaluated (pipelines do not count).
const MAX_EXPR_DEPTH: usize = 200;
/// Deepest nesting of block calls.
pub const MAX_BLOCK_DEPTH: usize = 32;
/// Most block expansions in one run (guards against exponential blow-up).
const MAX_EXPANSIONS: usize = 10_000;

/// A name in scope and where it was defined.
#[derive(Clone, Debug)]
pub struct Binding {
    pub value: Value,
    pub def: Span,
    /// Set when the name is read; unread bindings are warned about.
    pub used: Cell<bool>,
    /// What to call the binding in an "is never used" warning (`None`: no
    /// warning, e.g. inputs, the loss, values that already failed, and
    /// names starting with `_`).
    pub what: Option<&'static str>,
}

/// The names visible in a model or in one block expansion.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub vars: HashMap<String, Binding>,
}

impl Env {
    /// Binds a name that is never warned about; returns the binding it shadows.
    pub fn bind(&mut self, name: &str, value: Value, def: Span) -> Option<Binding> {
        self.bind_as(name, value, def, None)
    }

    /// Binds a name that is warned about if never read ("binding",
    /// "parameter"); returns the binding it shadows.
    pub fn bind_as(
        &mut self,
        name: &str,
        value: Value,
        def: Span,
        what: Option<&'static str>,
    ) -> Option<Binding> {
        let what = what.filter(|_| !name.starts_with('_') && !value.has_error());
        self.vars.insert(name.to_string(), Binding { value, def, used: Cell::new(false), what })
    }

    /// Marks `name` as read.
    pub fn mark_used(&self, name: &str) {
        if let Some(b) = self.vars.get(name) {
            b.used.set(true);
        }
    }

    /// The bindings never read, in source order.
    pub fn unused(&self) -> Vec<(&str, &Binding)> {
        let mut out: Vec<(&str, &Binding)> = self
            .vars
            .iter()
            .filter(|(_, b)| b.what.is_some() && !b.used.get())
            .map(|(n, b)| (n.as_str(), b))
            .collect();
        out.sort_by_key(|(_, b)| b.def);
        out
    }
}

/// A block call being expanded, for "in this call of `b`" labels.
pub struct Frame {
    pub block: String,
    pub call: Span,
}

/// One expansion of the model in one mode.
pub struct Run<'a> {
    pub source: &'a str,
    pub blocks: &'a HashMap<String, BlockInfo<'a>>,
    pub mode: Mode,
    pub graph: Graph,
    pub diags: Vec<Diagnostic>,
    pub layers: Vec<LayerInfo>,
    /// The current model-level binding (naming scope).
    pub scope: String,
    pub counters: HashMap<(String, &'static str), usize>,
    /// The name of the built-in call being built, e.g. `e1.conv2d_1`.
    pub layer: String,
    pub loc: Loc,
    pub params: Vec<(ValueId, ParamRole)>,
    pub states: Vec<(ValueId, String)>,
    pub updates: Vec<(ValueId, ValueId)>,
    pub key: Option<ValueId>,
    pub key_name: String,
    pub stream: u64,
    pub frames: Vec<Frame>,
    pub expansions: usize,
    pub depth: usize,
    /// Names bound at model level so far (for "blocks cannot see ..." notes).
    pub model_names: Vec<String>,
    /// Blocks expanded at least once.
    pub called: Vec<String>,
    /// `(scope, block)` counters naming instances of blocks (`h.encoder_1`).
    pub block_counters: HashMap<(String, String), usize>,
    /// The layer instances being applied, innermost last: parameters made
    /// under one are found again by its next application.
    pub instances: Vec<String>,
    /// Every parameter and state input made so far, by name.
    pub inputs_by_name: HashMap<String, Made>,
    /// Problems found while a builder ran, reported at its call.
    pub pending: Vec<String>,
    /// The constants of the run: declared ones and built-ins' tensors.
    pub constants: Vec<Constant>,
    /// The graph input of each constant, by constant index.
    pub constant_ids: Vec<ValueId>,
    /// The `const` declarations' values, loaded before the runs.
    pub loaded: &'a LoadedConsts,
    /// Model-level bindings of layer values, by name.
    pub layer_values: Vec<LayerValue>,
    /// The named losses, in order.
    pub losses: Vec<String>,
    /// The file-level constants' inputs, which every block sees.
    pub file_consts: Vec<(String, ValueId, Span)>,
}

/// A parameter or state input made by a layer, and the instance (if any)
/// whose applications share it.
#[derive(Clone, Debug)]
pub struct Made {
    pub id: ValueId,
    pub owner: Option<String>,
}

/// What a run produced besides the graph.
pub struct RunOutput {
    pub graph: Graph,
    pub diags: Vec<Diagnostic>,
    pub layers: Vec<LayerInfo>,
    pub constants: Vec<Constant>,
    pub losses: Vec<String>,
    pub layer_values: Vec<LayerValue>,
}

impl<'a> Run<'a> {
    pub fn new(
        name: &str,
        source: &'a str,
        blocks: &'a HashMap<String, BlockInfo<'a>>,
        loaded: &'a LoadedConsts,
        mode: Mode,
    ) -> Run<'a> {
        Run {
            source,
            blocks,
            mode,
            graph: Graph::new(name, mode),
            diags: vec![],
            layers: vec![],
            scope: String::new(),
            counters: HashMap::new(),
            layer: String::new(),
            loc: Loc::NONE,
            params: vec![],
            states: vec![],
            updates: vec![],
            key: None,
            key_name: "rng".into(),
            stream: 0,
            frames: vec![],
            expansions: 0,
            depth: 0,
            model_names: vec![],
            called: vec![],
            block_counters: HashMap::new(),
            instances: vec![],
            inputs_by_name: HashMap::new(),
            pending: vec![],
            constants: vec![],
            constant_ids: vec![],
            loaded,
            layer_values: vec![],
            losses: vec![],
            file_consts: vec![],
        }
    }

    pub fn loc_of(&self, span: Span) -> Loc {
        Loc::from_span(self.source, span.lo as usize, span.hi as usize)
    }

    /// Records an error, labelled with the block calls it happened in.
    pub fn error(&mut self, mut d: Diagnostic) {
        for f in self.frames.iter().rev() {
            d = d.secondary(f.call, format!("in this call of `{}`", f.block));
        }
        self.diags.push(d);
    }

    /// Expands the whole model.
    pub fn model(mut self, model: &ModelDef) -> RunOutput {
        let mut env = Env::default();
        let inputs = self.declare_inputs(model);
        let declared = declarations(model);
        let first_loss = model.body.iter().position(is_loss);
        self.declare_constants(model, &mut env);
        let mut prediction: Option<(String, Value)> = None;
        let mut outputs: Vec<&ast::Ident> = vec![];
        let mut output_spans: Vec<Span> = vec![];
        for (i, stmt) in model.body.iter().enumerate() {
            match stmt {
                Stmt::Decl { name, span, .. } => {
                    self.model_names.push(name.name.clone());
                    if let Some(id) = inputs.get(&span.lo) {
                        env.bind(&name.name, tensor(*id, *span), *span);
                    } else if !env.vars.contains_key(&name.name) {
                        // The declaration itself was wrong (already reported):
                        // uses of the name must not add "cannot find" errors.
                        env.bind(&name.name, Value::Error, *span);
                    }
                }
                Stmt::Let { name, .. } if name.name == "loss" => {}
                Stmt::Loss { .. } | Stmt::Const { .. } => {}
                Stmt::Let { name, value, .. } => {
                    let v = self.model_binding(&mut env, &declared, name, value);
                    if first_loss.is_none_or(|l| i < l) && matches!(v, Value::Tensor(_)) {
                        prediction = Some((name.name.clone(), v));
                    }
                }
                Stmt::Output { name, span } => {
                    outputs.push(name);
                    output_spans.push(*span);
                }
                Stmt::Return { span, .. } => self.error(
                    Diagnostic::error("`return` outside a block")
                        .primary(*span, "only blocks return values")
                        .note("help: a model names its result with `output NAME`"),
                ),
            }
        }
        let losses = self.losses(model, &mut env);
        if let [first, second, rest @ ..] = output_spans.as_slice() {
            let mut d = Diagnostic::error("more than one `output`")
                .primary(*second, "second `output`")
                .secondary(*first, "first `output` here");
            for extra in rest {
                d = d.secondary(*extra, "another `output`");
            }
            self.error(d.note("note: a model has one prediction; `nnc predict` returns it"));
        }
        if let Some(name) = outputs.last() {
            prediction = self.named_output(&env, name);
        }
        if let Some((name, _)) = &prediction {
            env.mark_used(name);
        }
        self.warn_unused(&env);
        self.finish(losses, prediction)
    }

    /// Evaluates and binds a model-level `name = expr` (not the loss);
    /// returns the value bound.
    fn model_binding(
        &mut self,
        env: &mut Env,
        declared: &HashMap<&str, (DeclKind, Span)>,
        name: &ast::Ident,
        value: &Expr,
    ) -> Value {
        let mut v = self.binding(env, &name.name, value);
        if let (Value::Layer(layer), ExprKind::Call { .. }) = (&mut v, &value.kind) {
            self.name_layer(layer, name);
        }
        if let Some(decl) = declared.get(name.name.as_str()) {
            self.assigned_declaration(name, *decl);
            env.bind(&name.name, Value::Error, name.span);
            return Value::Error;
        }
        self.model_names.push(name.name.clone());
        let shadowed = env.bind_as(&name.name, v.clone(), name.span, Some("binding"));
        self.overwritten(&name.name, shadowed, name.span);
        v
    }

    /// Records a warning (without the "in this call" labels of errors: a
    /// warning about a block's body is about every call).
    pub fn warn(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Warns when a binding is shadowed before it was ever read.
    pub fn overwritten(&mut self, name: &str, shadowed: Option<Binding>, again: Span) {
        let Some(old) = shadowed else { return };
        if old.what.is_none() || old.used.get() {
            return;
        }
        self.warn(
            Diagnostic::warning(format!("the value bound to `{name}` is never used"))
                .primary(old.def, "this value is never read")
                .secondary(again, format!("`{name}` is bound again here")),
        );
    }

    /// Warns about every block that no call expanded, in source order.
    fn warn_unused_blocks(&mut self) {
        let mut unused: Vec<_> = self
            .blocks
            .values()
            .filter(|b| b.ok && !b.def.name.name.starts_with('_'))
            .filter(|b| !self.called.contains(&b.def.name.name))
            .map(|b| (b.def.name.span, b.def.name.name.clone()))
            .collect();
        unused.sort();
        for (span, name) in unused {
            self.warn(
                Diagnostic::warning(format!("block `{name}` is never used"))
                    .primary(span, "defined here but never called"),
            );
        }
    }

    /// Warns about every binding of `env` that was never read.
    pub fn warn_unused(&mut self, env: &Env) {
        for (name, b) in env.unused() {
            let what = b.what.unwrap_or("binding");
            let d = Diagnostic::warning(format!("{what} `{name}` is never used"))
                .primary(b.def, "never read")
                .note(format!(
                    "help: if this is intentional, name it `_{name}`; layers it computes still create parameters"
                ));
            self.warn(d);
        }
    }

    /// Reports `x = ...` where `x` is an `input` or `target`: inputs and
    /// targets are bound to data by name, so they are never rebound (a
    /// rebound target would silently change what the loss compares with).
    fn assigned_declaration(&mut self, name: &ast::Ident, (kind, decl): (DeclKind, Span)) {
        let what = match kind {
            DeclKind::Input => "an input",
            DeclKind::Target => "a target",
        };
        self.error(
            Diagnostic::error(format!("cannot assign to `{}`, which is {what} of the model", name.name))
                .primary(name.span, format!("`{}` is {what}", name.name))
                .secondary(decl, "declared here")
                .note("help: bind the result to a new name, e.g. `h = ...`"),
        );
    }

    /// Creates the graph inputs for every `input`/`target` declaration, in
    /// declaration order; returns them keyed by the declaration's start.
    fn declare_inputs(&mut self, model: &ModelDef) -> HashMap<u32, ValueId> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = HashMap::new();
        for stmt in &model.body {
            let Stmt::Decl { kind, name, ty, span } = stmt else { continue };
            if let Some(first) = seen.get(name.name.as_str()) {
                self.error(
                    Diagnostic::error(format!("`{}` is declared twice", name.name))
                        .primary(name.span, "second declaration")
                        .secondary(*first, "first declared here"),
                );
                continue;
            }
            seen.insert(&name.name, name.span);
            let Some(ty) = self.declared_type(ty) else { continue };
            let kind = match kind {
                DeclKind::Input => InputKind::Data,
                DeclKind::Target => InputKind::Target,
            };
            let loc = self.loc_of(*span);
            out.insert(span.lo, self.graph.input(name.name.clone(), kind, ty, loc));
        }
        // The RNG key is `rng` unless an input has that name.
        let mut n = 1;
        while seen.contains_key(self.key_name.as_str()) {
            self.key_name = if n == 1 { "rng_key".into() } else { format!("rng_key_{n}") };
            n += 1;
        }
        out
    }

    fn declared_type(&mut self, ty: &ast::TensorType) -> Option<Type> {
        let dtype = match DType::parse(&ty.dtype.name) {
            Some(d @ (DType::F32 | DType::I32)) => d,
            _ => {
                self.error(
                    Diagnostic::error(format!("unknown element type `{}`", ty.dtype.name))
                        .primary(ty.dtype.span, "expected `f32` or `i32`"),
                );
                return None;
            }
        };
        let mut dims = vec![];
        let mut ok = true;
        for d in &ty.dims {
            match d {
                ast::DimExpr::Known(n, span) if *n == 0 || *n > MAX_SIZE as u64 => {
                    self.error(
                        Diagnostic::error(format!("invalid dimension {n}"))
                            .primary(*span, format!("must be between 1 and {MAX_SIZE}")),
                    );
                    ok = false;
                }
                ast::DimExpr::Known(n, _) => dims.push(Dim::Known(*n as usize)),
                ast::DimExpr::Symbol(s) => match self.loaded.dims.get(&s.name) {
                    // A size bound by a constant's file.
                    Some(&(n, _)) => dims.push(Dim::Known(n)),
                    None => dims.push(Dim::Sym(s.name.clone())),
                },
            }
        }
        ok.then(|| Type::new(dtype, Shape(dims)))
    }

    /// Evaluates `name = expr` in the naming scope `name`.
    fn binding(&mut self, env: &Env, name: &str, value: &Expr) -> Value {
        self.scope = name.to_string();
        self.eval(env, value, false)
    }

    /// Evaluates the losses last (so that `params` and `weights` list every
    /// parameter), in the order written, each in its own naming scope, and
    /// checks that each is an f32 scalar. `loss = ...` is the loss `loss`;
    /// binding it again replaces it.
    fn losses(&mut self, model: &ModelDef, env: &mut Env) -> Vec<(String, ValueId)> {
        let mut out: Vec<(String, ValueId)> = vec![];
        let mut seen: HashMap<String, Span> = HashMap::new();
        for stmt in &model.body {
            let (name, value, named) = match stmt {
                Stmt::Let { name, value, .. } if name.name == "loss" => (name, value, false),
                Stmt::Loss { name, value, .. } => (name, value, true),
                _ => continue,
            };
            match seen.get(&name.name) {
                Some(first) if named || self.named_before(model, &name.name, stmt) => {
                    self.error(
                        Diagnostic::error(format!("the loss `{}` is defined twice", name.name))
                            .primary(name.span, "second definition")
                            .secondary(*first, "first defined here"),
                    );
                    continue;
                }
                _ => {
                    seen.insert(name.name.clone(), name.span);
                }
            }
            let v = self.binding(env, &name.name, value);
            let id = self.check_loss(&v, value.span);
            if !named {
                env.bind("loss", v, name.span);
            }
            out.retain(|(n, _)| *n != name.name);
            if let Some(id) = id {
                out.push((name.name.clone(), id));
            }
            if !self.losses.contains(&name.name) {
                self.losses.push(name.name.clone());
            }
        }
        out
    }

    /// Whether a `loss NAME = ...` statement named `name` comes before `stmt`.
    fn named_before(&self, model: &ModelDef, name: &str, stmt: &Stmt) -> bool {
        model
            .body
            .iter()
            .take_while(|s| !std::ptr::eq(*s, stmt))
            .any(|s| matches!(s, Stmt::Loss { name: n, .. } if n.name == name))
    }

    /// Names a layer value made by a model-level binding after the binding.
    fn name_layer(&mut self, layer: &mut super::values::LayerVal, name: &ast::Ident) {
        if let Some(first) = self.layer_values.iter().find(|l| l.name == name.name) {
            let first = first.span;
            self.error(
                Diagnostic::error(format!("`{}` already names a layer", name.name))
                    .primary(name.span, "a second layer bound to the same name")
                    .secondary(first, "the first layer is bound here")
                    .note("note: a layer's parameters are named after its binding, so the two would be confused")
                    .note("help: bind the second layer to another name"),
            );
            return;
        }
        layer.prefix = name.name.clone();
        self.layer_values.push(LayerValue { name: name.name.clone(), span: name.span });
    }

    fn check_loss(&mut self, v: &Value, span: Span) -> Option<ValueId> {
        let scalar = Type::scalar(DType::F32);
        match v {
            Value::Tensor(t) if *self.graph.ty(t.id) == scalar => Some(t.id),
            Value::Tensor(t) => {
                let ty = self.graph.ty(t.id).clone();
                self.error(
                    Diagnostic::error(format!("the loss must be an f32 scalar, but it is {ty}"))
                        .primary(span, format!("this is {ty}"))
                        .note("help: reduce it to a scalar, e.g. `mean(...)`, or use a loss such as `mse(pred, target)`"),
                );
                None
            }
            Value::Error => None,
            other => {
                self.error(
                    Diagnostic::error(format!(
                        "the loss must be an f32 scalar tensor, found {}",
                        other.describe()
                    ))
                    .primary(span, "not a tensor"),
                );
                None
            }
        }
    }

    fn named_output(&mut self, env: &Env, name: &ast::Ident) -> Option<(String, Value)> {
        env.mark_used(&name.name);
        let Some(binding) = env.vars.get(&name.name) else {
            let mut d = Diagnostic::error(format!("`output` names `{}`, which is not defined", name.name))
                .primary(name.span, "not a binding of this model");
            if let Some(help) = suggest::did_you_mean(&name.name, env.vars.keys().map(String::as_str)) {
                d = d.note(help);
            }
            self.error(d);
            return None;
        };
        match &binding.value {
            _ if name.name == "loss" => {
                self.error(
                    Diagnostic::error("`output` cannot name the loss")
                        .primary(name.span, "the loss is already an output")
                        .note("note: `output` names what `nnc predict` returns, e.g. the prediction"),
                );
                None
            }
            Value::Tensor(_) => Some((name.name.clone(), binding.value.clone())),
            Value::Error => None,
            other => {
                self.error(
                    Diagnostic::error(format!(
                        "`output` must name a tensor, but `{}` is {}",
                        name.name,
                        other.describe()
                    ))
                    .primary(name.span, "not a tensor"),
                );
                None
            }
        }
    }

    /// Adds the graph outputs: loss, prediction, and (training) new state.
    fn finish(mut self, losses: Vec<(String, ValueId)>, prediction: Option<(String, Value)>) -> RunOutput {
        for (name, l) in losses {
            self.graph.output(OutputKind::Loss, name, l);
        }
        if let Some((name, Value::Tensor(t))) = prediction {
            self.graph.output(OutputKind::Prediction, name, t.id);
        }
        if self.mode == Mode::Train {
            for (state, name) in self.states.clone() {
                if let Some((_, new)) = self.updates.iter().rev().find(|(s, _)| *s == state) {
                    self.graph.output(OutputKind::State, name, *new);
                }
            }
        }
        self.warn_unused_blocks();
        set_spans(&mut self.graph, self.source);
        RunOutput {
            graph: self.graph,
            diags: self.diags,
            layers: self.layers,
            constants: self.constants,
            losses: self.losses,
            layer_values: self.layer_values,
        }
    }
}

/// A number value as a [`Num`] (other values are never passed).
fn number(v: &Value) -> Num {
    match v {
        Value::Int(n) => Num::Int(*n),
        other => Num::Float(other.as_f64().unwrap_or(0.0)),
    }
}

fn constant(n: Num) -> Value {
    match n {
        Num::Int(n) => Value::Int(n),
        Num::Float(x) => Value::Float(x),
    }
}

fn is_arithmetic(v: &Value) -> bool {
    matches!(v, Value::Tensor(_) | Value::Int(_) | Value::Float(_))
}

/// The `input` and `target` names of a model with their first declarations.
fn declarations(model: &ModelDef) -> HashMap<&str, (DeclKind, Span)> {
    let mut out = HashMap::new();
    for stmt in &model.body {
        if let Stmt::Decl { kind, name, span, .. } = stmt {
            out.entry(name.name.as_str()).or_insert((*kind, *span));
        }
    }
    out
}

fn is_loss(stmt: &Stmt) -> bool {
    matches!(stmt, Stmt::Let { name, .. } if name.name == "loss") || matches!(stmt, Stmt::Loss { .. })
}

fn tensor(id: ValueId, span: Span) -> Value {
    Value::Tensor(TensorVal { id, span, def: None })
}

impl Cx for Run<'_> {
    fn graph(&mut self) -> &mut Graph {
        &mut self.graph
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn loc(&self) -> Loc {
        self.loc
    }

    fn param(&mut self, tensor: &str, role: ParamRole, shape: Shape, init: crate::ir::Init) -> ValueId {
        let name = format!("{}.{tensor}", self.layer);
        if let Some(id) = self.shared(&name, &shape) {
            return id;
        }
        let id = self.graph.input(name.clone(), InputKind::Param { role, init }, Type::f32(shape), self.loc);
        self.made(name, id);
        self.params.push((id, role));
        id
    }

    fn state(&mut self, tensor: &str, shape: Shape, init: crate::ir::Init) -> ValueId {
        let name = format!("{}.{tensor}", self.layer);
        if let Some(id) = self.shared(&name, &shape) {
            return id;
        }
        let id = self.graph.input(name.clone(), InputKind::State { init }, Type::f32(shape), self.loc);
        self.made(name.clone(), id);
        self.states.push((id, name));
        id
    }

    fn update_state(&mut self, state: ValueId, new: ValueId) {
        self.updates.push((state, new));
    }

    fn key(&mut self) -> ValueId {
        if let Some(k) = self.key {
            return k;
        }
        let ty = Type::new(DType::I32, Shape::known(&[2]));
        let k = self.graph.input(self.key_name.clone(), InputKind::Key, ty, self.loc);
        self.key = Some(k);
        k
    }

    fn next_stream(&mut self) -> u64 {
        self.stream += 1;
        self.stream - 1
    }

    fn constant(&mut self, tensor: &str, ty: Type, data: ConstData, origin: String) -> ValueId {
        let name = format!("{}.{tensor}", self.layer);
        // A shared layer's constant is the same tensor at every use.
        if let Some(i) = self.constants.iter().position(|c| c.name == name && c.ty == ty && c.data == data) {
            return self.constant_ids[i];
        }
        let mut unique = name.clone();
        let mut k = 2;
        while self.constants.iter().any(|c| c.name == unique) {
            unique = format!("{name}_{k}");
            k += 1;
        }
        let id = self.graph.input(unique.clone(), InputKind::Const, ty.clone(), self.loc);
        self.constants.push(Constant::new(unique, ty, data, origin));
        self.constant_ids.push(id);
        id
    }

    fn constant_value(&self, id: ValueId) -> Option<&ConstData> {
        let i = self.constant_ids.iter().position(|&c| c == id)?;
        Some(&self.constants[i].data)
    }

    fn constant_origin(&self, id: ValueId) -> Option<&str> {
        let i = self.constant_ids.iter().position(|&c| c == id)?;
        Some(&self.constants[i].origin)
    }
}

impl Run<'_> {
    /// The input `name` made earlier by the instance being applied (its
    /// parameters are shared by every application). A name made
    /// otherwise, or of another shape, is a problem reported at the call.
    fn shared(&mut self, name: &str, shape: &Shape) -> Option<ValueId> {
        let made = self.inputs_by_name.get(name)?.clone();
        let owner = self.instances.last();
        let old = self.graph.ty(made.id).shape.clone();
        if made.owner.is_none() || made.owner.as_ref() != owner {
            self.pending.push(format!(
                "two layers would both create the parameter `{name}`; give one of them another name"
            ));
        } else if old != *shape {
            let layer = owner.map_or(name, String::as_str);
            self.pending.push(format!(
                "the shared layer `{layer}` is applied to an input of another shape: its `{name}` is f32{old} from its \
                 first use, this use needs f32{shape}"
            ));
        } else {
            return Some(made.id);
        }
        None
    }

    fn made(&mut self, name: String, id: ValueId) {
        let owner = self.instances.last().cloned();
        self.inputs_by_name.entry(name).or_insert(Made { id, owner });
    }
}

impl Run<'_> {
    /// Counts one more block expansion; false (after reporting) past the limit.
    pub fn count_expansion(&mut self, span: Span) -> bool {
        self.expansions += 1;
        if self.expansions == MAX_EXPANSIONS + 1 {
            self.error(
                Diagnostic::error(format!("the model expands to more than {MAX_EXPANSIONS} block calls"))
                    .primary(span, "expansion stopped here"),
            );
        }
        self.expansions <= MAX_EXPANSIONS
    }
}

/// Sets the byte span of every node that has a location: sema makes every
/// location from a span of `source` ([`Run::loc_of`]), and this is its
/// inverse.
fn set_spans(graph: &mut Graph, source: &str) {
    for node in graph.nodes.iter_mut().filter(|n| !n.loc.is_none()) {
        node.span = node.loc.to_span(source).map(|(lo, hi)| Span::new(lo, hi));
    }
}
