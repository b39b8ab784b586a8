//! Evaluating expressions: names, pipelines, arithmetic on constants and
//! tensors, and running a built-in's IR builder at a call's span.

use super::*;

impl Run<'_> {
    /// Evaluates an expression. With `symbols`, a bare name that is not in
    /// scope is a [`Value::Symbol`] (an enum-like value) instead of an error.
    pub fn eval(&mut self, env: &Env, e: &Expr, symbols: bool) -> Value {
        if self.depth >= MAX_EXPR_DEPTH {
            self.error(Diagnostic::error("expression nested too deeply").primary(e.span, "too deep"));
            return Value::Error;
        }
        self.depth += 1;
        let v = self.eval_inner(env, e, symbols);
        self.depth -= 1;
        v
    }

    fn eval_inner(&mut self, env: &Env, e: &Expr, symbols: bool) -> Value {
        match &e.kind {
            ExprKind::Int(n) => Value::Int(*n),
            ExprKind::Float(x) => Value::Float(*x),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Path(p) => self.name(env, p, e.span, symbols),
            ExprKind::List(items) => Value::List(items.iter().map(|i| self.eval(env, i, symbols)).collect()),
            ExprKind::Call { callee, args } => self.call(env, callee, args, None, e.span),
            ExprKind::Pipe { .. } => self.pipeline(env, e),
            ExprKind::Binary { op, lhs, rhs } => {
                let (a, b) = (self.eval(env, lhs, false), self.eval(env, rhs, false));
                self.binary(*op, (a, lhs.span), (b, rhs.span), e.span)
            }
            ExprKind::Neg(x) => {
                let v = self.eval(env, x, false);
                self.negate(v, e.span)
            }
            ExprKind::Compare { op, lhs, rhs } => {
                let (a, b) = (self.eval(env, lhs, false), self.eval(env, rhs, false));
                self.compare(*op, (a, lhs.span), (b, rhs.span), e.span)
            }
            ExprKind::Index { base, subscripts } => self.index(env, base, subscripts, e.span),
        }
    }

    /// Resolves a name used as a value.
    fn name(&mut self, env: &Env, path: &ast::Path, span: Span, symbols: bool) -> Value {
        let [ident] = path.segments.as_slice() else {
            self.error(
                Diagnostic::error(format!("unknown name `{}`", path.text())).primary(span, "not defined"),
            );
            return Value::Error;
        };
        let name = ident.name.as_str();
        if let Some(b) = env.vars.get(name) {
            b.used.set(true);
            return match &b.value {
                Value::Tensor(t) => {
                    Value::Tensor(TensorVal { id: t.id, span, def: Some((name.to_string(), b.def)) })
                }
                Value::List(items) => Value::List(
                    items
                        .iter()
                        .map(|item| match item {
                            Value::Tensor(t) => Value::Tensor(TensorVal { id: t.id, span, def: None }),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
        }
        if symbols {
            return Value::Symbol(name.to_string());
        }
        match name {
            "params" => return self.param_list(span, |_| true),
            "weights" => return self.param_list(span, |r| r == ParamRole::Weight),
            _ => {}
        }
        if catalogue::find(name).is_some() || self.blocks.contains_key(name) {
            self.error(
                Diagnostic::error(format!("`{name}` is a function, not a value"))
                    .primary(span, "used as a value")
                    .note(format!("help: call it, e.g. `x |> {name}` or `{name}(x)`")),
            );
            return Value::Error;
        }
        self.undefined(env, name, span);
        Value::Error
    }

    fn undefined(&mut self, env: &Env, name: &str, span: Span) {
        // Only values are candidates: functions are never valid here.
        let mut candidates: Vec<&str> = env.vars.keys().map(String::as_str).collect();
        candidates.extend(["params", "weights"]);
        let mut d =
            Diagnostic::error(format!("cannot find `{name}` in this scope")).primary(span, "not defined");
        if let Some(help) = suggest::did_you_mean(name, candidates) {
            d = d.note(help);
        }
        if self.is_dimension(name) {
            d = d.note(format!(
                "note: `{name}` is a symbolic dimension of the declared inputs, not a value; \
                 it can be used in `reshape(shape: [...])`"
            ));
        } else if !self.frames.is_empty() && self.model_names.iter().any(|n| n == name) {
            d = d.note(format!(
                "note: a block sees only its parameters and its own bindings; \
                 `{name}` is a binding of the model"
            ));
            d = d.note(format!("help: pass `{name}` to the block as a parameter"));
        }
        self.error(d);
    }

    /// Whether `name` is a symbolic dimension of an `input` or `target`.
    fn is_dimension(&self, name: &str) -> bool {
        self.graph
            .inputs()
            .any(|(_, n)| n.ty.shape.dims().iter().any(|d| matches!(d, Dim::Sym(s) if s == name)))
    }

    fn param_list(&mut self, span: Span, keep: impl Fn(ParamRole) -> bool) -> Value {
        let items = self
            .params
            .iter()
            .filter(|(_, role)| keep(*role))
            .map(|(id, _)| Value::Tensor(TensorVal { id: *id, span, def: None }))
            .collect();
        Value::List(items)
    }

    /// `a |> f(b) |> g`: evaluated left to right without recursion.
    fn pipeline(&mut self, env: &Env, e: &Expr) -> Value {
        let mut stages: Vec<(&Expr, Span)> = vec![];
        let mut head = e;
        while let ExprKind::Pipe { lhs, rhs } = &head.kind {
            stages.push((rhs, head.span));
            head = lhs;
        }
        let mut value = self.eval(env, head, false);
        let mut lhs_span = head.span;
        for (rhs, pipe_span) in stages.into_iter().rev() {
            value = match &rhs.kind {
                ExprKind::Call { callee, args } => {
                    self.call(env, callee, args, Some((value, lhs_span)), rhs.span)
                }
                ExprKind::Path(p) => self.call(env, p, &[], Some((value, lhs_span)), rhs.span),
                _ => {
                    self.error(
                        Diagnostic::error("the right side of `|>` must be a function")
                            .primary(rhs.span, "not a function name or call")
                            .note("help: write `x |> f` or `x |> f(args)`, meaning `f(x, args)`"),
                    );
                    Value::Error
                }
            };
            lhs_span = pipe_span;
        }
        value
    }

    fn binary(
        &mut self,
        op: ast::BinOp,
        (a, a_span): (Value, Span),
        (b, b_span): (Value, Span),
        span: Span,
    ) -> Value {
        match (&a, &b) {
            (Value::Error, _) | (_, Value::Error) => Value::Error,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                match fold::binary(op, number(&a), number(&b)) {
                    Ok(n) => constant(n),
                    Err(FoldError::DivisionByZero) => {
                        self.error(Diagnostic::error("division by zero").primary(span, "divides by zero"));
                        Value::Error
                    }
                    Err(FoldError::Overflow) => {
                        self.error(
                            Diagnostic::error("integer overflow").primary(span, "overflows a 64-bit integer"),
                        );
                        Value::Error
                    }
                }
            }
            _ if is_arithmetic(&a) && is_arithmetic(&b) => {
                self.elementwise(op.symbol(), (a, a_span), (b, b_span), span, |cx, x, y| {
                    forward::binary(cx, op, x, y)
                })
            }
            _ => {
                self.error(
                    Diagnostic::error(format!(
                        "cannot apply `{}` to {} and {}",
                        op.symbol(),
                        a.describe(),
                        b.describe()
                    ))
                    .primary(span, "unsupported operands")
                    .note("note: arithmetic works on tensors and numbers"),
                );
                Value::Error
            }
        }
    }

    /// `a < b` and the other comparisons: folded for two numbers, else an
    /// elementwise comparison with a `bool` result.
    fn compare(
        &mut self,
        op: ast::CmpOp,
        (a, a_span): (Value, Span),
        (b, b_span): (Value, Span),
        span: Span,
    ) -> Value {
        match (&a, &b) {
            (Value::Error, _) | (_, Value::Error) => Value::Error,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                Value::Bool(op.holds(a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0)))
            }
            _ if is_arithmetic(&a) && is_arithmetic(&b) => {
                self.elementwise(op.symbol(), (a, a_span), (b, b_span), span, |cx, x, y| {
                    forward::compare(cx, op, x, y)
                })
            }
            _ => {
                self.error(
                    Diagnostic::error(format!("cannot compare {} with {}", a.describe(), b.describe()))
                        .primary(span, "unsupported operands")
                        .note("note: comparisons work on tensors and numbers"),
                );
                Value::Error
            }
        }
    }

    /// `a OP b` on tensors and numbers (a number becomes an f32 scalar),
    /// built by `build` at the operator's span.
    fn elementwise(
        &mut self,
        symbol: &str,
        (a, a_span): (Value, Span),
        (b, b_span): (Value, Span),
        span: Span,
        build: impl FnOnce(&mut dyn Cx, ValueId, ValueId) -> Built,
    ) -> Value {
        let (x, y) = (self.operand(a, a_span), self.operand(b, b_span));
        let ops = [x.clone(), y.clone()];
        self.lower_with(span, &format!("this `{symbol}`"), &ops, |cx| build(cx, x.id, y.id))
    }

    /// A tensor operand, or a number made into an f32 scalar constant.
    fn operand(&mut self, v: Value, span: Span) -> TensorVal {
        match v {
            Value::Tensor(t) => t,
            other => {
                self.loc = self.loc_of(span);
                let id = forward::scalar(self, other.as_f64().unwrap_or(0.0));
                TensorVal { id, span, def: None }
            }
        }
    }

    fn negate(&mut self, v: Value, span: Span) -> Value {
        match v {
            // The negation of the smallest integer is the float it would be.
            Value::Int(n) => fold::negate(Num::Int(n)).map_or(Value::Float(-(n as f64)), constant),
            Value::Float(x) => Value::Float(-x),
            Value::Tensor(t) => {
                let ops = [t.clone()];
                self.lower_with(span, "this negation", &ops, |cx| forward::neg(cx, t.id))
            }
            Value::Error => Value::Error,
            other => {
                self.error(
                    Diagnostic::error(format!("cannot negate {}", other.describe()))
                        .primary(span, "unsupported operand"),
                );
                Value::Error
            }
        }
    }

    /// Runs a builder at `span`; turns a [`BuildError`] into a diagnostic
    /// that labels every tensor operand with its type.
    pub fn lower_with(
        &mut self,
        span: Span,
        label: &str,
        operands: &[TensorVal],
        f: impl FnOnce(&mut dyn Cx) -> Built,
    ) -> Value {
        self.loc = self.loc_of(span);
        let built = f(self);
        if !self.pending.is_empty() {
            // Problems of shared parameters: the application is at fault.
            for message in std::mem::take(&mut self.pending) {
                self.error(Diagnostic::error(message).primary(span, "applied here"));
            }
            return Value::Error;
        }
        match built {
            Ok(id) => Value::Tensor(TensorVal { id, span, def: None }),
            Err(e) => {
                let d = self.lower_error(e, span, label, operands);
                self.error(d);
                Value::Error
            }
        }
    }

    fn lower_error(&self, e: BuildError, span: Span, label: &str, operands: &[TensorVal]) -> Diagnostic {
        let primary = e.label.clone().unwrap_or_else(|| label.to_string());
        let mut d = Diagnostic::error(e.message).primary(span, primary);
        let mut labelled = vec![span];
        let mut defs = vec![];
        for (i, t) in operands.iter().enumerate() {
            if labelled.contains(&t.span) {
                continue;
            }
            labelled.push(t.span);
            let ty = self.graph.nodes.get(t.id.index()).map(|n| n.ty.to_string()).unwrap_or_default();
            let text = match (&e.expected, e.operand == Some(i)) {
                (Some(want), true) => format!("this is {ty}, expected {want}"),
                _ => format!("this is {ty}"),
            };
            d = d.secondary(t.span, text);
            if let Some((name, def)) = &t.def {
                defs.push((name.clone(), *def));
            }
        }
        for (name, def) in defs {
            if !labelled.contains(&def) {
                labelled.push(def);
                d = d.secondary(def, format!("`{name}` defined here"));
            }
        }
        for n in e.notes {
            d = d.note(n);
        }
        d
    }
}
