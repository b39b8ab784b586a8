//! Layer values: layers made without their tensors, shared by every use.
//!
//! # Semantics (for the language reference)
//!
//! - **A layer is a value.** A call of a built-in or block that takes
//!   leading tensors, made without them — no value piped in and a first
//!   positional argument that is a compile-time constant, or none —
//!   is a *layer value*: `dense(64)`, `conv2d(1, kernel: 1)`,
//!   `encoder(32)`, `cell(hidden: 32)`. Its other arguments are checked
//!   when it is made. Each such expression makes one *instance*;
//!   `x |> dense(64) |> dense(64)` (with its tensor) still makes two
//!   fresh layers.
//! - **Sharing.** Every application of one instance uses the same
//!   parameters: `enc = encoder(32)`, then `za = xa |> enc` and
//!   `zb = xb |> enc` (a siamese network), or `step(x, h, c)` for a block
//!   with three tensor parameters. Gradients of a shared parameter sum
//!   over its uses. An application on inputs of another shape than the
//!   first, which would need parameters of another shape, is an error.
//! - **Names.** An instance bound by a model-level binding is named by it:
//!   `enc = encoder(32)` makes `enc.conv2d_1.weight` (the block body's
//!   calls, named as in any block call), `read = conv2d(1, kernel: 1)`
//!   makes `read.weight` and `read.bias`. An instance made anywhere else is
//!   named like a call: `h.dense_1`, `h.encoder_1`. Binding a second layer
//!   value to a name that already names one is an error (their parameters
//!   would be confused).
//! - **`repeat(layer, n)`**: `n` fresh instances of `layer` applied in
//!   sequence; instance `i` is named `NAME.i` (a block's calls
//!   `NAME.i.dense_1`, a built-in `NAME.i.dense_1` too). The result is a
//!   layer value of one tensor.
//! - **`map(layer, x, axis: 1)`**: the same instance applied to every
//!   slice of `x` along `axis` (of compile-time size), the results stacked
//!   along `axis` again — a time-distributed layer, e.g. a 2-D readout over
//!   `[B, T, C, H, W]`. `x |> map(layer, axis: 1)` pipes `x`.
//! - **`split(x, n, axis: 1)`** cuts `x` into `n` equal parts (or parts of
//!   the sizes of a list: `split(x, [2, 6])`) along `axis`; the result is a
//!   list, indexable: `parts[0]`, `parts[-1]`.
//! - **`scan(cell, x, init, axis: 1, reverse: false, return: sequence)`**
//!   applies one instance of `cell` along `axis` of `x`: at step `t` the
//!   cell gets `x_t` (the slice, the axis dropped) and the states, and
//!   returns the new states (a tensor, or a list in the order of `init`:
//!   `init: [h0, c0]`, `return [h, c]`), each of the type it received.
//!   The result is the sequence of the first state stacked along `axis`,
//!   in the input's order (also with `reverse: true`, which runs from the
//!   last step); `return: states` gives the list of final states (to seed
//!   a forecaster), `return: all` the list `[sequence, final states...]`.
//!   `scan(cell, none, init, steps: F)` runs `F` steps of a cell of the
//!   states alone. The recurrence is unrolled (at most 1024 steps); the
//!   gradient of the shared cell sums over the steps.

use crate::diag::{Diagnostic, Span};
use crate::ir::{Dim, ValueId};
use crate::syntax::ast::{self, Expr, ExprKind};

use super::args::Arg;
use super::call::Piped;
use super::catalogue;
use super::expand::{Env, Run};
use super::forward::{self, index, Sections};
use super::values::{LayerKind, LayerVal, TensorVal, Value};

/// The calls that take or make layer values and are not built-ins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerForm {
    Repeat,
    Map,
    Split,
    Scan,
}

impl LayerForm {
    pub const ALL: [LayerForm; 4] = [LayerForm::Repeat, LayerForm::Map, LayerForm::Split, LayerForm::Scan];

    pub fn name(self) -> &'static str {
        match self {
            LayerForm::Repeat => "repeat",
            LayerForm::Map => "map",
            LayerForm::Split => "split",
            LayerForm::Scan => "scan",
        }
    }

    pub fn find(name: &str) -> Option<LayerForm> {
        LayerForm::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The parameters, in positional order, and whether each is required.
    fn params(self) -> &'static [(&'static str, bool)] {
        match self {
            LayerForm::Repeat => &[("layer", true), ("n", true)],
            LayerForm::Map => &[("layer", true), ("x", true), ("axis", false)],
            LayerForm::Split => &[("x", true), ("n", true), ("axis", false)],
            LayerForm::Scan => &[
                ("cell", true),
                ("x", true),
                ("init", true),
                ("axis", false),
                ("reverse", false),
                ("steps", false),
                ("return", false),
            ],
        }
    }

    /// Whether a bare name given for `param` is a value of its own
    /// (`none`, `sequence`) when it names nothing in scope.
    fn takes_names(self, param: &str) -> bool {
        self == LayerForm::Scan && matches!(param, "x" | "return")
    }

    /// The parameter a value piped in with `|>` goes to.
    fn piped_param(self) -> Option<&'static str> {
        match self {
            LayerForm::Repeat => None,
            LayerForm::Map | LayerForm::Split | LayerForm::Scan => Some("x"),
        }
    }

    pub fn signature(self) -> &'static str {
        match self {
            LayerForm::Repeat => "repeat(layer, n)",
            LayerForm::Map => "map(layer, x, axis: 1)",
            LayerForm::Split => "split(x, n, axis: 1)",
            LayerForm::Scan => "scan(cell, x, init, axis: 1, reverse: false, steps: none, return: sequence)",
        }
    }
}

/// Whether `e` is a compile-time constant (a number, string, boolean, list
/// of them, a name bound to one or naming nothing, or arithmetic on them):
/// as the first argument of a call it makes the call a layer value.
pub fn is_constant_expr(env: &Env, e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) | ExprKind::Bool(_) => true,
        ExprKind::List(items) => items.iter().all(|i| is_constant_expr(env, i)),
        ExprKind::Neg(x) => is_constant_expr(env, x),
        ExprKind::Binary { lhs, rhs, .. } => is_constant_expr(env, lhs) && is_constant_expr(env, rhs),
        ExprKind::Path(p) => match p.segments.as_slice() {
            [ident] => env.vars.get(&ident.name).is_none_or(|b| {
                matches!(
                    b.value,
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Str(_) | Value::Symbol(_)
                )
            }),
            _ => false,
        },
        _ => false,
    }
}

/// The arguments of a form, by parameter: the value and its span.
type FormArgs = Vec<Option<(Value, Span)>>;

impl Run<'_> {
    /// `enc(a, b)` or `x |> enc`: applies the layer value bound to `enc`.
    pub fn call_layer(
        &mut self,
        env: &Env,
        layer: &LayerVal,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Value {
        let mut inputs: Vec<(Value, Span)> = piped.into_iter().collect();
        let mut ok = true;
        for a in args {
            if let Some(name) = &a.name {
                self.error(
                    Diagnostic::error(format!("the layer `{}` takes only its input tensors", layer.prefix))
                        .primary(name.span, "keyword argument")
                        .secondary(layer.span, "its other arguments were given here, when it was made"),
                );
                ok = false;
                continue;
            }
            inputs.push((self.eval(env, &a.value, false), a.value.span));
        }
        if !ok || inputs.iter().any(|(v, _)| v.has_error()) {
            return Value::Error;
        }
        if inputs.len() != layer.inputs {
            let want = plural(layer.inputs, "tensor");
            self.error(
                Diagnostic::error(format!(
                    "the layer `{}` takes {want}, but {} {} given",
                    layer.prefix,
                    inputs.len(),
                    if inputs.len() == 1 { "was" } else { "were" }
                ))
                .primary(span, format!("needs {want}"))
                .secondary(layer.span, "the layer is made here"),
            );
            return Value::Error;
        }
        let mut tensors = vec![];
        for (v, s) in inputs {
            match v {
                Value::Tensor(t) => tensors.push(t),
                other => {
                    self.error(
                        Diagnostic::error(format!(
                            "a layer is applied to tensors, not to {}",
                            other.describe()
                        ))
                        .primary(s, "not a tensor")
                        .secondary(layer.span, "the layer is made here"),
                    );
                    return Value::Error;
                }
            }
        }
        self.apply_layer(layer, tensors, span)
    }

    /// Applies one instance to its input tensors at `span`.
    pub fn apply_layer(&mut self, layer: &LayerVal, inputs: Vec<TensorVal>, span: Span) -> Value {
        match &layer.kind {
            LayerKind::Builtin { name, slots } => {
                let Some(b) = catalogue::find(name) else { return Value::Error };
                let slots = with_inputs(slots, inputs);
                self.instances.push(layer.prefix.clone());
                let v = self.build_builtin(b, slots, layer.prefix.clone(), span);
                self.instances.pop();
                v
            }
            LayerKind::Block { name, slots } => {
                let blocks = self.blocks;
                let Some(block) = blocks.get(name) else { return Value::Error };
                let slots = with_inputs(slots, inputs);
                // Every application names the body's layers alike, so that
                // they find the parameters of the first.
                let scope = std::mem::replace(&mut self.scope, layer.prefix.clone());
                self.counters.retain(|(s, _), _| *s != layer.prefix);
                self.block_counters.retain(|(s, _), _| *s != layer.prefix);
                self.instances.push(layer.prefix.clone());
                let v = self.expand_block(block.def, slots, span);
                self.instances.pop();
                self.scope = scope;
                v
            }
            LayerKind::Repeat { inner, n } => {
                let Some(mut x) = inputs.into_iter().next() else { return Value::Error };
                for i in 0..*n {
                    let mut copy = (**inner).clone();
                    copy.prefix = match &copy.kind {
                        LayerKind::Builtin { name, .. } => format!("{}.{i}.{name}_1", layer.prefix),
                        _ => format!("{}.{i}", layer.prefix),
                    };
                    match self.apply_layer(&copy, vec![x], span) {
                        Value::Tensor(t) => x = t,
                        Value::Error => return Value::Error,
                        other => {
                            self.error(
                                Diagnostic::error(format!(
                                    "`repeat` needs a layer that returns a tensor, but `{}` returns {}",
                                    inner.prefix,
                                    other.describe()
                                ))
                                .primary(span, "repeated here")
                                .secondary(inner.span, "the layer is made here"),
                            );
                            return Value::Error;
                        }
                    }
                }
                Value::Tensor(TensorVal { id: x.id, span, def: None })
            }
        }
    }

    /// `repeat(...)`, `map(...)` or `split(...)`.
    pub fn layer_form(
        &mut self,
        env: &Env,
        form: LayerForm,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Value {
        let Some(given) = self.form_args(env, form, args, piped, span) else { return Value::Error };
        match form {
            LayerForm::Repeat => self.repeat(&given, span),
            LayerForm::Map => self.map(&given, span),
            LayerForm::Split => self.split(&given, span),
            LayerForm::Scan => self.scan(&given, span),
        }
    }

    /// Binds a form's arguments (positional, then keywords; a piped value to
    /// [`LayerForm::piped_param`]) and evaluates them. A piped value into
    /// `repeat(...)` applies the repeated layer to it.
    fn form_args(
        &mut self,
        env: &Env,
        form: LayerForm,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Option<FormArgs> {
        let params = form.params();
        let mut given: FormArgs = vec![None; params.len()];
        let mut ok = true;
        let mut positional: Vec<usize> = (0..params.len()).collect();
        if let (Some((v, s)), Some(p)) = (&piped, form.piped_param()) {
            let i = params.iter().position(|(n, _)| *n == p).unwrap_or(0);
            given[i] = Some((v.clone(), *s));
            positional.retain(|&j| j != i);
        }
        let mut next = positional.into_iter();
        for a in args {
            let slot = match &a.name {
                None => match next.next() {
                    Some(i) => i,
                    None => {
                        self.error(
                            Diagnostic::error(format!("too many arguments to `{}`", form.name()))
                                .primary(a.span, "unexpected argument")
                                .note(format!("note: signature: {}", form.signature())),
                        );
                        ok = false;
                        continue;
                    }
                },
                Some(name) => match params.iter().position(|(n, _)| *n == name.name) {
                    Some(i) => i,
                    None => {
                        self.error(
                            Diagnostic::error(format!("`{}` has no argument `{}`", form.name(), name.name))
                                .primary(name.span, "unknown argument")
                                .note(format!("note: signature: {}", form.signature())),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            if given[slot].is_some() {
                self.error(
                    Diagnostic::error(format!("argument `{}` is given more than once", params[slot].0))
                        .primary(a.span, "given again here"),
                );
                ok = false;
                continue;
            }
            let v = self.eval(env, &a.value, form.takes_names(params[slot].0));
            ok &= !v.has_error();
            given[slot] = Some((v, a.value.span));
        }
        let missing: Vec<&str> = params
            .iter()
            .zip(&given)
            .filter(|((_, req), g)| *req && g.is_none())
            .map(|((n, _), _)| *n)
            .collect();
        if !missing.is_empty() && ok {
            self.error(
                Diagnostic::error(format!(
                    "missing {} {} in call to `{}`",
                    if missing.len() == 1 { "argument" } else { "arguments" },
                    crate::suggest::names_list(&missing),
                    form.name()
                ))
                .primary(span, "not given")
                .note(format!("note: signature: {}", form.signature())),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        // `x |> repeat(layer, n)`: the repeated layer applied to `x`.
        if form == LayerForm::Repeat {
            if let Some((v, s)) = piped {
                given.push(Some((v, s)));
            }
        }
        Some(given)
    }

    fn layer_arg(&mut self, form: LayerForm, arg: &Option<(Value, Span)>) -> Option<LayerVal> {
        match arg {
            Some((Value::Layer(l), _)) => Some(l.clone()),
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!("`{}` needs a layer value, found {}", form.name(), other.describe()))
                        .primary(*s, "not a layer")
                        .note("help: a layer value is a layer made without its tensor, e.g. `dense(64)`, or a binding of one"),
                );
                None
            }
            None => None,
        }
    }

    fn int_arg(
        &mut self,
        form: LayerForm,
        name: &str,
        arg: &Option<(Value, Span)>,
        default: i64,
    ) -> Option<i64> {
        match arg {
            None => Some(default),
            Some((Value::Int(n), _)) => Some(*n),
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "argument `{name}` of `{}` must be an integer, found {}",
                        form.name(),
                        other.describe()
                    ))
                    .primary(*s, "not an integer"),
                );
                None
            }
        }
    }

    fn tensor_arg(&mut self, form: LayerForm, arg: &Option<(Value, Span)>) -> Option<TensorVal> {
        match arg {
            Some((Value::Tensor(t), _)) => Some(t.clone()),
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` needs a tensor, found {}",
                        form.name(),
                        other.describe()
                    ))
                    .primary(*s, "not a tensor"),
                );
                None
            }
            None => None,
        }
    }

    fn repeat(&mut self, given: &FormArgs, span: Span) -> Value {
        let Some(inner) = self.layer_arg(LayerForm::Repeat, &given[0]) else { return Value::Error };
        let Some(n) = self.int_arg(LayerForm::Repeat, "n", &given[1], 1) else { return Value::Error };
        if !(1..=1024).contains(&n) {
            let s = given[1].as_ref().map_or(span, |(_, s)| *s);
            self.error(
                Diagnostic::error(format!("`repeat` needs between 1 and 1024 copies, not {n}"))
                    .primary(s, "out of range"),
            );
            return Value::Error;
        }
        if inner.inputs != 1 {
            self.error(
                Diagnostic::error(format!(
                    "`repeat` chains layers of one input, but `{}` takes {}",
                    inner.prefix,
                    plural(inner.inputs, "tensor")
                ))
                .primary(given[0].as_ref().map_or(span, |(_, s)| *s), "takes several tensors"),
            );
            return Value::Error;
        }
        let layer = LayerVal {
            prefix: self.next_name("repeat"),
            kind: LayerKind::Repeat { inner: Box::new(inner), n: n as usize },
            inputs: 1,
            span,
        };
        match given.get(2) {
            Some(Some((Value::Tensor(x), _))) => self.apply_layer(&layer, vec![x.clone()], span),
            Some(Some((other, s))) => {
                self.error(
                    Diagnostic::error(format!("a layer is applied to tensors, not to {}", other.describe()))
                        .primary(*s, "not a tensor"),
                );
                Value::Error
            }
            _ => Value::Layer(layer),
        }
    }

    /// The axis argument `arg` of a form on a tensor of `rank`, normalised.
    fn axis_arg(
        &mut self,
        form: LayerForm,
        arg: &Option<(Value, Span)>,
        rank: usize,
        span: Span,
    ) -> Option<usize> {
        let axis = self.int_arg(form, "axis", arg, 1)?;
        let norm = if axis < 0 { axis + rank as i64 } else { axis };
        if (0..rank as i64).contains(&norm) {
            return Some(norm as usize);
        }
        self.error(
            Diagnostic::error(format!("axis {axis} is out of range for a tensor of rank {rank}"))
                .primary(arg.as_ref().map_or(span, |(_, s)| *s), format!("must be in -{rank}..{rank}")),
        );
        None
    }

    /// The compile-time size of `axis` of `x`, or an error.
    fn known_axis(&mut self, form: LayerForm, x: &TensorVal, axis: usize, span: Span) -> Option<usize> {
        let ty = self.graph.ty(x.id).clone();
        match &ty.shape.dims()[axis] {
            Dim::Known(n) => Some(*n),
            Dim::Sym(s) => {
                self.error(
                    Diagnostic::error(format!(
                        "`{}` needs an axis of known size, but axis {axis} of {ty} is `{s}`",
                        form.name()
                    ))
                    .primary(span, "the size is only known at run time")
                    .secondary(x.span, format!("this is {ty}")),
                );
                None
            }
        }
    }

    fn map(&mut self, given: &FormArgs, span: Span) -> Value {
        let Some(layer) = self.layer_arg(LayerForm::Map, &given[0]) else { return Value::Error };
        let Some(x) = self.tensor_arg(LayerForm::Map, &given[1]) else { return Value::Error };
        let rank = self.graph.ty(x.id).shape.rank();
        let Some(axis) = self.axis_arg(LayerForm::Map, &given[2], rank, span) else { return Value::Error };
        let axis_span = given[2].as_ref().map_or(span, |(_, s)| *s);
        let Some(steps) = self.known_axis(LayerForm::Map, &x, axis, axis_span) else { return Value::Error };
        if layer.inputs != 1 {
            self.error(
                Diagnostic::error(format!(
                    "`map` applies a layer of one input, but `{}` takes {}",
                    layer.prefix,
                    plural(layer.inputs, "tensor")
                ))
                .primary(given[0].as_ref().map_or(span, |(_, s)| *s), "takes several tensors"),
            );
            return Value::Error;
        }
        let mut outs: Vec<ValueId> = vec![];
        for t in 0..steps {
            let slice = self.lower_with(span, "this `map`", std::slice::from_ref(&x), |cx| {
                index::take(cx, x.id, axis, t)
            });
            let Value::Tensor(slice) = slice else { return Value::Error };
            match self.apply_layer(&layer, vec![slice], span) {
                Value::Tensor(y) => outs.push(y.id),
                Value::Error => return Value::Error,
                other => {
                    self.error(
                        Diagnostic::error(format!(
                            "`map` needs a layer that returns a tensor, not {}",
                            other.describe()
                        ))
                        .primary(span, "mapped here"),
                    );
                    return Value::Error;
                }
            }
        }
        let out_rank = self.graph.ty(outs[0]).shape.rank();
        if axis > out_rank {
            self.error(
                Diagnostic::error(format!("`map` cannot stack results of rank {out_rank} along axis {axis}"))
                    .primary(span, "the layer's results have too few axes"),
            );
            return Value::Error;
        }
        self.lower_with(span, "this `map`", &[x], |cx| index::stack_at(cx, &outs, axis))
    }

    fn split(&mut self, given: &FormArgs, span: Span) -> Value {
        let Some(x) = self.tensor_arg(LayerForm::Split, &given[0]) else { return Value::Error };
        let rank = self.graph.ty(x.id).shape.rank();
        let Some(axis) = self.axis_arg(LayerForm::Split, &given[2], rank, span) else { return Value::Error };
        let axis_span = given[2].as_ref().map_or(span, |(_, s)| *s);
        if self.known_axis(LayerForm::Split, &x, axis, axis_span).is_none() {
            return Value::Error;
        }
        let n_span = given[1].as_ref().map_or(span, |(_, s)| *s);
        let sections = match &given[1] {
            Some((Value::Int(n), _)) if *n >= 1 => Sections::Equal(*n as usize),
            Some((Value::List(items), _)) if items.iter().all(|v| matches!(v, Value::Int(n) if *n >= 1)) => {
                Sections::Sizes(items.iter().map(|v| v.as_f64().unwrap_or(0.0) as usize).collect())
            }
            Some((other, _)) => {
                self.error(
                    Diagnostic::error(format!(
                        "`split` takes a number of parts or a list of part sizes (positive integers), not {}",
                        other.describe()
                    ))
                    .primary(n_span, "expected a positive integer or a list of them"),
                );
                return Value::Error;
            }
            None => return Value::Error,
        };
        // The parts: the first is the built value, all of them the list.
        let mut parts = vec![];
        let first = self.lower_with(n_span, "this `split`", std::slice::from_ref(&x), |cx| {
            parts = forward::split(cx, x.id, &sections, axis as i64)?;
            parts.first().copied().ok_or_else(|| forward::BuildError::new("`split` made no part"))
        });
        if first.has_error() {
            return Value::Error;
        }
        Value::List(parts.into_iter().map(|id| Value::Tensor(TensorVal { id, span, def: None })).collect())
    }
    /// `scan(cell, x, init, ...)`: the recurrence, unrolled.
    fn scan(&mut self, given: &FormArgs, span: Span) -> Value {
        const FORM: LayerForm = LayerForm::Scan;
        let arg_span = |i: usize| given[i].as_ref().map_or(span, |(_, s)| *s);
        let Some(cell) = self.layer_arg(FORM, &given[0]) else { return Value::Error };
        let Some(init) = self.scan_init(&given[2]) else { return Value::Error };
        let reverse = match &given[4] {
            None => false,
            Some((Value::Bool(b), _)) => *b,
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "`reverse` of `scan` is `true` or `false`, not {}",
                        other.describe()
                    ))
                    .primary(*s, "not a boolean"),
                );
                return Value::Error;
            }
        };
        let result = match &given[6] {
            None => "sequence".to_string(),
            Some((Value::Symbol(r), _)) if matches!(r.as_str(), "sequence" | "states" | "all") => r.clone(),
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "`return` of `scan` is `sequence`, `states` or `all`, not {}",
                        other.describe()
                    ))
                    .primary(*s, "unknown result"),
                );
                return Value::Error;
            }
        };
        // The input sequence, or `none` with a number of steps.
        let x = match &given[1] {
            Some((Value::Symbol(n), _)) if n == "none" => None,
            Some((Value::Tensor(t), _)) => Some(t.clone()),
            Some((other, s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "`scan` runs over a tensor or `none`, not {}",
                        other.describe()
                    ))
                    .primary(*s, "not a sequence"),
                );
                return Value::Error;
            }
            None => return Value::Error,
        };
        let Some((steps, axis)) = self.scan_steps(given, x.as_ref(), span) else { return Value::Error };
        let want = init.len() + usize::from(x.is_some());
        if cell.inputs != want {
            let what = if x.is_some() { "the step's input and the states" } else { "the states" };
            self.error(
                Diagnostic::error(format!(
                    "the cell `{}` takes {}, but `scan` passes {want} ({what})",
                    cell.prefix,
                    plural(cell.inputs, "tensor"),
                ))
                .primary(arg_span(0), "the cell")
                .secondary(arg_span(2), plural(init.len(), "state")),
            );
            return Value::Error;
        }
        let types: Vec<crate::ir::Type> = init.iter().map(|t| self.graph.ty(t.id).clone()).collect();
        let mut states = init;
        let mut firsts: Vec<(usize, ValueId)> = Vec::with_capacity(steps);
        for k in 0..steps {
            let t = if reverse { steps - 1 - k } else { k };
            let mut inputs = vec![];
            if let Some(x) = &x {
                let step = self.lower_with(span, "this `scan`", std::slice::from_ref(x), |cx| {
                    index::take(cx, x.id, axis, t)
                });
                let Value::Tensor(step) = step else { return Value::Error };
                inputs.push(step);
            }
            inputs.extend(states.iter().cloned());
            let next: Vec<TensorVal> = match self.apply_layer(&cell, inputs, span) {
                Value::Tensor(t) => vec![t],
                Value::List(items) => items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Tensor(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
                _ => return Value::Error,
            };
            let got: Vec<crate::ir::Type> = next.iter().map(|t| self.graph.ty(t.id).clone()).collect();
            if got != types {
                let show =
                    |ts: &[crate::ir::Type]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
                self.error(
                    Diagnostic::error(format!(
                        "the cell `{}` must return its states as it receives them: it gets [{}] and returns [{}]",
                        cell.prefix,
                        show(&types),
                        show(&got)
                    ))
                    .primary(span, "the state would change from step to step")
                    .secondary(cell.span, "the cell is made here")
                    .note("help: a cell of several states returns them as a list in the order of `init`"),
                );
                return Value::Error;
            }
            firsts.push((t, next[0].id));
            states = next;
        }
        let finals: Vec<Value> =
            states.iter().map(|t| Value::Tensor(TensorVal { id: t.id, span, def: None })).collect();
        if result == "states" {
            return Value::List(finals);
        }
        // The sequence of the first state, in the input's time order.
        firsts.sort_by_key(|&(t, _)| t);
        let ids: Vec<ValueId> = firsts.into_iter().map(|(_, id)| id).collect();
        let out_rank = types[0].shape.rank();
        if axis > out_rank {
            self.error(
                Diagnostic::error(format!("`scan` cannot stack states of rank {out_rank} along axis {axis}"))
                    .primary(arg_span(3), "too few axes"),
            );
            return Value::Error;
        }
        let operands: Vec<TensorVal> = x.iter().cloned().collect();
        let sequence = self.lower_with(span, "this `scan`", &operands, |cx| index::stack_at(cx, &ids, axis));
        if result == "sequence" || sequence.has_error() {
            return sequence;
        }
        let mut all = vec![sequence];
        all.extend(finals);
        Value::List(all)
    }

    /// The initial states of `scan`: one tensor or a list of them.
    fn scan_init(&mut self, arg: &Option<(Value, Span)>) -> Option<Vec<TensorVal>> {
        let (value, span) = arg.as_ref()?;
        let items = match value {
            Value::Tensor(t) => return Some(vec![t.clone()]),
            Value::List(items) if !items.is_empty() => items,
            other => {
                self.error(
                    Diagnostic::error(format!(
                        "`init` of `scan` is a tensor or a list of tensors, not {}",
                        other.describe()
                    ))
                    .primary(*span, "the initial states")
                    .note("help: e.g. `init: zeros([B, 64])` or `init: [h0, c0]`"),
                );
                return None;
            }
        };
        let mut states = vec![];
        for item in items {
            match item {
                Value::Tensor(t) => states.push(t.clone()),
                other => {
                    self.error(
                        Diagnostic::error(format!("a state of `scan` is a tensor, not {}", other.describe()))
                            .primary(*span, "the initial states"),
                    );
                    return None;
                }
            }
        }
        Some(states)
    }

    /// The number of steps of `scan` and the axis of its sequences.
    fn scan_steps(&mut self, given: &FormArgs, x: Option<&TensorVal>, span: Span) -> Option<(usize, usize)> {
        const FORM: LayerForm = LayerForm::Scan;
        let arg_span = |i: usize| given[i].as_ref().map_or(span, |(_, s)| *s);
        let (steps, axis) = match x {
            Some(x) => {
                if given[5].is_some() {
                    self.error(
                        Diagnostic::error(
                            "`steps` is the length of a `scan` without input; this one runs over `x`",
                        )
                        .primary(arg_span(5), "remove `steps`")
                        .secondary(arg_span(1), "the steps are this sequence's"),
                    );
                    return None;
                }
                let rank = self.graph.ty(x.id).shape.rank();
                let axis = self.axis_arg(FORM, &given[3], rank, span)?;
                (self.known_axis(FORM, x, axis, arg_span(3))?, axis)
            }
            None => {
                if given[5].is_none() {
                    self.error(
                        Diagnostic::error("a `scan` without input needs `steps`")
                            .primary(span, "how many steps?")
                            .note("help: e.g. `scan(cell, none, init: h, steps: 12)`"),
                    );
                    return None;
                }
                let steps = self.int_arg(FORM, "steps", &given[5], 0)?;
                let axis = self.int_arg(FORM, "axis", &given[3], 1)?;
                if axis < 0 {
                    self.error(
                        Diagnostic::error("the `axis` of a `scan` without input counts from the front")
                            .primary(arg_span(3), "must be 0 or more"),
                    );
                    return None;
                }
                (steps.max(0) as usize, axis as usize)
            }
        };
        if steps == 0 || steps > super::forward::MAX_STEPS {
            let at = if x.is_some() { arg_span(1) } else { arg_span(5) };
            self.error(
                Diagnostic::error(format!(
                    "`scan` runs between 1 and {} steps, not {steps}",
                    super::forward::MAX_STEPS
                ))
                .primary(at, "steps"),
            );
            return None;
        }
        Some((steps, axis))
    }
}

/// A layer value's bound arguments with its input tensors in front.
fn with_inputs(slots: &[Option<Arg>], inputs: Vec<TensorVal>) -> Vec<Option<Arg>> {
    let mut slots = slots.to_vec();
    for (slot, t) in slots.iter_mut().zip(inputs) {
        *slot = Some(Arg::Tensor(t));
    }
    slots
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
