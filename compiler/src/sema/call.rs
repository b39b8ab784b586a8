//! Calls: matching arguments to parameters, built-in calls, block expansion.
//!
//! Arguments are matched like Python's: positional first (a piped value is
//! the first positional argument), then keywords; every problem is reported
//! (unknown or duplicate keyword, too many positional arguments, missing
//! argument, wrong type or range), not just the first. Built-ins and blocks
//! share the binder of [`args`] with the `train` section; this module words
//! its findings for calls in a model. A built-in call is then built
//! through its catalogue row, a block call expands the block's body with
//! its own constants.

use super::layers::is_constant_expr;
use crate::diag::{Diagnostic, Span};
use crate::ir::{InputKind, Op, ValueId};
use crate::syntax::ast::{self, Expr, ExprKind, Stmt};

use super::args::{self, Arg, Args, Binder, Default, Given, Mismatch, Param, Range, Ty};
use super::catalogue::{self, Builtin};
use super::expand::{Env, Frame, Run, MAX_BLOCK_DEPTH};
use super::flops;
use super::forward::BuildError;
use super::items::BlockInfo;
use super::values::{LayerKind, LayerVal, TensorVal, Value};
use super::LayerInfo;
use crate::suggest::{self, names_list};

/// The callee: its parameters, and its name and signature for messages.
struct Callee<'p> {
    name: &'p str,
    signature: String,
    params: Vec<Param<'p>>,
}

/// Where an argument's value comes from.
enum Source<'e> {
    Expr(&'e Expr),
    /// The value piped in with `|>`.
    Piped(Value),
}

/// A value passed through `|>` and the span of the pipeline's left side.
pub type Piped = Option<(Value, Span)>;

impl Run<'_> {
    /// Calls the function `callee`: a binding of a layer value, one of the
    /// layer forms (`repeat`, `map`, `split`), a block or a built-in.
    pub fn call(
        &mut self,
        env: &Env,
        callee: &ast::Path,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Value {
        let name = callee.text();
        if let Some(b) = env.vars.get(&name) {
            if let Value::Layer(layer) = &b.value {
                b.used.set(true);
                let layer = layer.clone();
                return self.call_layer(env, &layer, args, piped, span);
            }
        }
        let blocks = self.blocks;
        if let Some(block) = blocks.get(&name) {
            return self.call_block(env, block, args, piped, span);
        }
        if let Some(form) = super::layers::LayerForm::find(&name) {
            return self.layer_form(env, form, args, piped, span);
        }
        if let Some(b) = catalogue::find(&name) {
            return self.call_builtin(env, b, args, piped, span);
        }
        self.unknown_function(env, &name, callee.span);
        Value::Error
    }

    fn unknown_function(&mut self, env: &Env, name: &str, span: Span) {
        if env.vars.contains_key(name) {
            self.error(
                Diagnostic::error(format!("`{name}` is not a function"))
                    .primary(span, "a value, not a function")
                    .note("note: only built-ins and blocks can be called"),
            );
            return;
        }
        let mut d =
            Diagnostic::error(format!("unknown function `{name}`")).primary(span, "not a built-in or block");
        let mut candidates: Vec<&str> = catalogue::builtins().iter().map(|b| b.name).collect();
        candidates.extend(self.blocks.keys().map(String::as_str));
        candidates.extend(super::layers::LayerForm::ALL.iter().map(|f| f.name()));
        if let Some(help) = suggest::did_you_mean(name, candidates) {
            d = d.note(help);
        }
        self.error(d);
    }

    fn call_builtin(
        &mut self,
        env: &Env,
        b: &'static Builtin,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Value {
        let callee = Callee { name: b.name, signature: b.signature(), params: b.params.to_vec() };
        let inputs = b.params.iter().take_while(|p| p.ty == Ty::Tensor).count();
        if piped.is_none() && self.makes_layer(env, inputs, b.params.len(), args) {
            let slots = self.match_args(env, &callee, args, self.placeholders(inputs, span), span);
            let name = self.next_name(b.name);
            let Some(slots) = slots else { return Value::Error };
            let kind = LayerKind::Builtin { name: b.name, slots };
            return Value::Layer(LayerVal { kind, prefix: name, inputs, span });
        }
        let slots = self.match_args(env, &callee, args, piped.into_iter().collect(), span);
        let name = self.next_name(b.name);
        let Some(slots) = slots else { return Value::Error };
        self.build_builtin(b, slots, name, span)
    }

    /// Builds a built-in call whose arguments are bound, as the layer `name`.
    pub fn build_builtin(
        &mut self,
        b: &'static Builtin,
        slots: Vec<Option<Arg>>,
        name: String,
        span: Span,
    ) -> Value {
        let values = args::fill_defaults(b.params, slots);
        let args = Args { params: b.params, values };
        let start = self.graph.nodes.len();
        self.layer = name.clone();
        let label = format!("this call of `{}`", b.name);
        // A call may return a list (`lstm(..., return: states)`): the
        // first result stands for it while it is built.
        let mut results = vec![];
        let value = self.lower_with(span, &label, &args.operands(), |cx| {
            results = catalogue::build_results(cx, b, &args)?;
            results.first().copied().ok_or_else(|| BuildError::new(format!("`{}` made no result", b.name)))
        });
        if let Value::Tensor(t) = &value {
            self.record_layer(name, b.name, t.id, start, span);
            if catalogue::returns_list(b, &args) {
                let item = |id| Value::Tensor(TensorVal { id, span, def: None });
                return Value::List(results.into_iter().map(item).collect());
            }
        }
        value
    }

    /// Whether a call without a piped value makes a layer value: the callee
    /// takes leading tensors and the call's first positional argument (if
    /// any) is a compile-time constant (`dense(64)`, `encoder(32)`,
    /// `cell(hidden: 32)`).
    fn makes_layer(&self, env: &Env, inputs: usize, params: usize, args: &[ast::Arg]) -> bool {
        if inputs == 0 {
            return false;
        }
        match args.iter().find(|a| a.name.is_none()) {
            None => true,
            // `relu("a")` is a call with a wrong argument, not a layer.
            Some(first) => params > inputs && is_constant_expr(env, &first.value),
        }
    }

    /// Stand-ins for the tensors a layer value is applied to, so that its
    /// other arguments bind as they will at each application.
    fn placeholders(&self, inputs: usize, span: Span) -> Vec<(Value, Span)> {
        let t = TensorVal { id: ValueId(u32::MAX), span, def: None };
        (0..inputs).map(|_| (Value::Tensor(t.clone()), span)).collect()
    }

    /// The next `scope.kind_k` name.
    pub fn next_name(&mut self, kind: &'static str) -> String {
        let k = self.counters.entry((self.scope.clone(), kind)).or_insert(0);
        *k += 1;
        format!("{}.{kind}_{k}", self.scope)
    }

    /// The next `scope.block_k` name, for an instance of a block.
    fn next_name_of(&mut self, block: &str) -> String {
        let k = self.block_counters.entry((self.scope.clone(), block.to_string())).or_insert(0);
        *k += 1;
        format!("{}.{block}_{k}", self.scope)
    }

    pub fn record_layer(&mut self, name: String, kind: &str, out: ValueId, start: usize, span: Span) {
        let params = self.graph.nodes[start.min(self.graph.nodes.len())..]
            .iter()
            .filter(|n| matches!(n.op, Op::Input { kind: InputKind::Param { .. }, .. }))
            .fold(0u64, |acc, n| acc.saturating_add(flops::elements(&n.ty.shape)));
        let flops = flops::flops_since(&self.graph, start);
        // A shared layer applied again: one row, with the work of every use.
        if let Some(row) = self.layers.iter_mut().find(|row| row.name == name) {
            row.flops = row.flops.saturating_add(flops);
            row.params = row.params.saturating_add(params);
            return;
        }
        let info = LayerInfo {
            name,
            kind: kind.to_string(),
            output: self.graph.ty(out).clone(),
            params,
            flops,
            loc: self.loc_of(span),
        };
        self.layers.push(info);
    }

    /// Matches and checks the arguments of a call (see [`args::bind`]).
    /// Returns one slot per parameter (`None` where not given), or `None` if
    /// anything was wrong.
    fn match_args(
        &mut self,
        env: &Env,
        callee: &Callee,
        args: &[ast::Arg],
        lead: Vec<(Value, Span)>,
        span: Span,
    ) -> Option<Vec<Option<Arg>>> {
        let piped_count = lead.len();
        let given = lead
            .into_iter()
            .map(|(v, s)| Given { name: None, span: s, value_span: s, source: Source::Piped(v) })
            .chain(args.iter().map(|a| Given {
                name: a.name.as_ref(),
                span: a.name.as_ref().map_or(a.value.span, |n| n.span.to(a.value.span)),
                value_span: a.value.span,
                source: Source::Expr(&a.value),
            }));
        let mut binder = CallBinder { run: self, env, callee, call: span, extra: vec![], piped: piped_count };
        let bound = args::bind(&callee.params, given, &mut binder);
        binder.report_extra();
        bound.map(|b| b.slots)
    }

    /// Evaluates an argument knowing the parameter's type: enum-like names
    /// win over bindings of the same name, and unbound names become symbols
    /// where the type accepts them.
    fn eval_arg(&mut self, env: &Env, expr: &Expr, param: &Param) -> Value {
        let ty = param.ty;
        if let ExprKind::Path(p) = &expr.kind {
            if let [ident] = p.segments.as_slice() {
                let enum_name = match ty.names() {
                    [] => param.default == Default::None && ident.name == "none",
                    names => names.contains(&ident.name.as_str()),
                };
                if enum_name {
                    return Value::Symbol(ident.name.clone());
                }
            }
        }
        // A bare name that is not in scope is a value of its own where the
        // parameter takes names; for a boolean it is reported as the wrong
        // type (`bias: yes`) rather than as an undefined name.
        self.eval(env, expr, ty.takes_names())
    }

    fn call_block(
        &mut self,
        env: &Env,
        block: &BlockInfo,
        args: &[ast::Arg],
        piped: Piped,
        span: Span,
    ) -> Value {
        let def = block.def;
        if !block.ok {
            return Value::Error;
        }
        let callee = block_callee(def);
        let inputs = def.params.iter().take_while(|p| p.ty.is_none()).count();
        if piped.is_none() && self.makes_layer(env, inputs, def.params.len(), args) {
            let slots = self.match_args(env, &callee, args, self.placeholders(inputs, span), span);
            let name = self.next_name_of(&def.name.name);
            let Some(slots) = slots else { return Value::Error };
            if !self.called.contains(&def.name.name) {
                self.called.push(def.name.name.clone());
            }
            let kind = LayerKind::Block { name: def.name.name.clone(), slots };
            return Value::Layer(LayerVal { kind, prefix: name, inputs, span });
        }
        let Some(slots) = self.match_args(env, &callee, args, piped.into_iter().collect(), span) else {
            return Value::Error;
        };
        self.expand_block(def, slots, span)
    }

    /// Expands the body of `def` with its arguments bound (`slots`, one per
    /// parameter) at the call `span`.
    pub fn expand_block(&mut self, def: &ast::BlockDef, slots: Vec<Option<Arg>>, span: Span) -> Value {
        if self.frames.iter().any(|f| f.block == def.name.name) {
            self.error(
                Diagnostic::error(format!("recursive block `{}`", def.name.name))
                    .primary(span, format!("`{}` is called again while it is being expanded", def.name.name))
                    .secondary(def.name.span, "block defined here")
                    .note("note: blocks are expanded at compile time, so they cannot call themselves, directly or indirectly"),
            );
            return Value::Error;
        }
        if self.frames.len() >= MAX_BLOCK_DEPTH {
            self.error(
                Diagnostic::error(format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"))
                    .primary(span, "too deep"),
            );
            return Value::Error;
        }
        if !self.count_expansion(span) {
            return Value::Error;
        }
        if !self.called.contains(&def.name.name) {
            self.called.push(def.name.name.clone());
        }
        let callee = block_callee(def);
        self.frames.push(Frame { block: def.name.name.clone(), call: span });
        let result = self.expand_body(def, &callee, slots);
        self.frames.pop();
        match result {
            Value::Tensor(t) => Value::Tensor(TensorVal { id: t.id, span, def: None }),
            other => other,
        }
    }

    fn expand_body(&mut self, def: &ast::BlockDef, callee: &Callee, slots: Vec<Option<Arg>>) -> Value {
        let mut env = Env::default();
        // File-level constants are visible in every block.
        for (name, id, span) in &self.file_consts {
            env.bind(
                name,
                Value::Tensor(TensorVal { id: *id, span: *span, def: Some((name.clone(), *span)) }),
                *span,
            );
        }
        for ((p, sig), slot) in def.params.iter().zip(&callee.params).zip(slots) {
            let value = match slot {
                Some(arg) => arg_value(arg),
                None => self.block_default(p, sig),
            };
            if value.has_error() {
                return Value::Error;
            }
            env.bind_as(&p.name.name, value, p.name.span, Some("parameter"));
        }
        for stmt in &def.body {
            match stmt {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval(&env, value, false);
                    let shadowed = env.bind_as(&name.name, v, name.span, Some("binding"));
                    self.overwritten(&name.name, shadowed, name.span);
                }
                Stmt::Return { value, .. } => {
                    let result = self.eval(&env, value, false);
                    self.warn_unused(&env);
                    return result;
                }
                Stmt::Decl { .. } | Stmt::Output { .. } | Stmt::Loss { .. } | Stmt::Const { .. } => {}
            }
        }
        Value::Error
    }

    /// The default of a block constant, evaluated without any names in scope.
    fn block_default(&mut self, p: &ast::ParamDef, sig: &Param) -> Value {
        let Some(expr) = &p.default else { return Value::Error };
        let value = self.eval(&Env::default(), expr, sig.ty == Ty::Str);
        if value.has_error() {
            return Value::Error;
        }
        match args::check(sig.name, sig.ty, sig.range, &value) {
            Ok(arg) => arg_value(arg),
            Err(r) => {
                self.error(
                    Diagnostic::error(format!("invalid default for `{}`: {}", sig.name, r.message))
                        .primary(expr.span, r.label),
                );
                Value::Error
            }
        }
    }
}

/// A block's parameters as a callee's.
fn block_callee(def: &ast::BlockDef) -> Callee<'_> {
    Callee {
        name: &def.name.name,
        signature: block_signature(def),
        params: def
            .params
            .iter()
            .map(|p| {
                let default = if p.default.is_none() { Default::Required } else { Default::Written };
                Param::positional(&p.name.name, block_param_type(p), Range::Any, default)
            })
            .collect(),
    }
}

fn block_param_type(p: &ast::ParamDef) -> Ty {
    match p.ty.as_ref().map(|t| t.name.as_str()) {
        None => Ty::Tensor,
        Some("int") => Ty::Int,
        Some("float") => Ty::Float,
        Some("bool") => Ty::Bool,
        Some(_) => Ty::Str,
    }
}

fn block_signature(def: &ast::BlockDef) -> String {
    let params: Vec<String> = def
        .params
        .iter()
        .map(|p| match &p.ty {
            Some(t) => format!("{}: {}", p.name.name, t.name),
            None => p.name.name.clone(),
        })
        .collect();
    format!("{}({})", def.name.name, params.join(", "))
}

/// A checked block argument as a value in the block's scope.
fn arg_value(arg: Arg) -> Value {
    match arg {
        Arg::Tensor(t) => Value::Tensor(t),
        Arg::Int(n) => Value::Int(n),
        Arg::Float(x) => Value::Float(x),
        Arg::Bool(b) => Value::Bool(b),
        Arg::Str(s) | Arg::Enum(s) => Value::Str(s),
        _ => Value::Error,
    }
}

/// The binder of one call in a model: evaluates each argument in the
/// caller's scope and words every problem for a model's call.
struct CallBinder<'r, 'a, 'c> {
    run: &'r mut Run<'a>,
    env: &'r Env,
    callee: &'c Callee<'c>,
    /// The whole call, where missing arguments are reported.
    call: Span,
    /// Positional arguments beyond the parameters, reported together.
    extra: Vec<Span>,
    /// 1 if a value was piped in (it counts as a positional argument).
    piped: usize,
}

impl<'e> Binder<'e, Source<'e>> for CallBinder<'_, '_, '_> {
    fn value(&mut self, param: &Param, source: Source<'e>, span: Span) -> Option<Arg> {
        let value = match source {
            Source::Piped(v) => v,
            Source::Expr(expr) => self.run.eval_arg(self.env, expr, param),
        };
        if value.has_error() {
            return None;
        }
        // `none` spells "not given" for a parameter absent by default.
        if param.default == Default::None
            && param.ty != Ty::OptTensor
            && value == Value::Symbol("none".into())
        {
            return Some(Arg::None);
        }
        match args::check(param.name, param.ty, param.range, &value) {
            Ok(arg) => Some(arg),
            Err(r) => {
                self.run.error(
                    Diagnostic::error(format!(
                        "{} (argument `{}` of `{}`)",
                        r.message, param.name, self.callee.name
                    ))
                    .primary(span, r.label)
                    .note(format!("note: signature: {}", self.callee.signature)),
                );
                None
            }
        }
    }

    fn mismatch(&mut self, mismatch: Mismatch<'e>) {
        let callee = self.callee;
        let d = match mismatch {
            Mismatch::PositionalAfterKeyword { arg, keyword } => {
                Diagnostic::error("positional argument after a keyword argument")
                    .primary(arg, "positional argument")
                    .secondary(keyword, "keyword argument given before it")
            }
            Mismatch::UnknownKeyword(ident) => {
                let names: Vec<&str> = callee.params.iter().map(|p| p.name).collect();
                let mut d = Diagnostic::error(format!("`{}` has no argument `{}`", callee.name, ident.name))
                    .primary(ident.span, "unknown argument")
                    .note(format!("note: valid arguments: {}", names_list(&names)));
                if let Some(help) = suggest::did_you_mean(&ident.name, names.iter().copied()) {
                    d = d.note(help);
                } else if ident.name == "activation" {
                    d = d.note(format!(
                        "help: apply the activation in the pipeline instead, e.g. `x |> {}(...) |> relu`",
                        callee.name
                    ));
                }
                d
            }
            Mismatch::VariadicByName(ident) => {
                Diagnostic::error(format!("`{}` cannot be given by name", ident.name))
                    .primary(ident.span, "pass these tensors as positional arguments")
            }
            Mismatch::GivenTwice { param, name, again, first_value, .. } => {
                Diagnostic::error(format!("argument `{}` is given more than once", callee.params[param].name))
                    .primary(name.map_or(again, |n| n.span), "given again here")
                    .secondary(first_value, "first given here")
            }
            Mismatch::ExtraPositional(span) => {
                self.extra.push(span);
                return;
            }
            Mismatch::Missing(missing) => {
                self.report_extra();
                let missing: Vec<&str> = missing.iter().map(|&i| callee.params[i].name).collect();
                let list = names_list(&missing);
                let (what, verb) = if missing.len() == 1 { ("argument", "is") } else { ("arguments", "are") };
                Diagnostic::error(format!("missing {what} {list} in call to `{}`", callee.name))
                    .primary(self.call, format!("{list} {verb} not given"))
                    .note(format!("note: signature: {}", callee.signature))
            }
        };
        self.run.error(d);
    }
}

impl CallBinder<'_, '_, '_> {
    /// One diagnostic for all positional arguments beyond the parameters.
    fn report_extra(&mut self) {
        let Some((&first, rest)) = self.extra.split_first() else { return };
        let callee = self.callee;
        let most = callee.params.len();
        let given = most + self.extra.len();
        let piped_note = if self.piped > 0 { " (counting the value piped in with `|>`)" } else { "" };
        let mut d = Diagnostic::error(format!(
            "`{}` takes at most {most} positional argument{} but {given} were given{piped_note}",
            callee.name,
            if most == 1 { "" } else { "s" }
        ))
        .primary(first, "unexpected argument");
        for s in rest {
            d = d.secondary(*s, "unexpected argument");
        }
        self.run.error(d.note(format!("note: signature: {}", callee.signature)));
        self.extra.clear();
    }
}
