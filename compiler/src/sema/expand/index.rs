//! Subscripts: `x[i]`, `x[:, 0:12]`, `x[..., ::2]` on tensors and
//! `parts[0]` on lists.
//!
//! # Semantics (for the language reference)
//!
//! NumPy's basic indexing with compile-time bounds. An integer selects one
//! position and drops the axis; a slice `start:stop:step` keeps the axis;
//! `...` stands for as many full slices as the other subscripts leave, and
//! missing trailing subscripts are full slices. Negative integers and
//! bounds count from the end. Unlike NumPy, a bound beyond the axis is an
//! error, not clipped (the shape you get is the shape you wrote), an empty
//! slice is an error, and the step must be positive. Only `:` may select
//! along an axis of symbolic size (the batch). Bounds may be any integer
//! expression of constants (`g[:, hidden:2 * hidden]`). A tensor index is
//! `gather(x, index, axis)`.

use super::*;
use crate::sema::forward::index as build;
use crate::syntax::ast::Subscript;

/// One resolved subscript.
enum Select {
    /// Position `i` of `axis`; the axis is dropped.
    Take { axis: usize, i: usize },
    /// `start..stop` by `step` along `axis`.
    Range { axis: usize, start: usize, stop: usize, step: usize },
}

impl Run<'_> {
    /// Evaluates `base[subscripts]`.
    pub fn index(&mut self, env: &Env, base: &Expr, subscripts: &[Subscript], span: Span) -> Value {
        let value = self.eval(env, base, false);
        match value {
            Value::Error => Value::Error,
            Value::Tensor(t) => self.index_tensor(env, t, subscripts, span),
            Value::List(items) => self.index_list(env, items, subscripts, span),
            other => {
                self.error(
                    Diagnostic::error(format!("cannot index {}", other.describe()))
                        .primary(base.span, format!("this is {}", other.describe()))
                        .note("note: tensors and lists (such as the parts of `split`) can be indexed"),
                );
                Value::Error
            }
        }
    }

    /// A compile-time integer subscript or bound.
    fn subscript_int(&mut self, env: &Env, e: &Expr, what: &str) -> Option<i64> {
        match self.eval(env, e, false) {
            Value::Int(n) => Some(n),
            Value::Error => None,
            Value::Tensor(_) => {
                self.error(
                    Diagnostic::error(format!("{what} must be a compile-time integer, not a tensor"))
                        .primary(e.span, "a tensor")
                        .note("help: to select with a tensor of indices, use `gather(x, index, axis: ...)`"),
                );
                None
            }
            other => {
                self.error(
                    Diagnostic::error(format!("{what} must be an integer, found {}", other.describe()))
                        .primary(e.span, "not an integer"),
                );
                None
            }
        }
    }

    fn index_list(&mut self, env: &Env, items: Vec<Value>, subscripts: &[Subscript], span: Span) -> Value {
        let [Subscript::Index(e)] = subscripts else {
            self.error(
                Diagnostic::error("a list takes one integer subscript")
                    .primary(span, "subscripts of a list")
                    .note("help: select the part first, then index it: `parts[0][:, 1:]`"),
            );
            return Value::Error;
        };
        let Some(i) = self.subscript_int(env, e, "a list index") else { return Value::Error };
        let n = items.len() as i64;
        let at = if i < 0 { i + n } else { i };
        if !(0..n).contains(&at) {
            self.error(
                Diagnostic::error(format!("index {i} is out of range for a list of {n}"))
                    .primary(e.span, format!("valid indices are -{n} to {}", n - 1)),
            );
            return Value::Error;
        }
        match items.into_iter().nth(at as usize) {
            Some(Value::Tensor(t)) => Value::Tensor(TensorVal { id: t.id, span, def: None }),
            Some(other) => other,
            None => Value::Error,
        }
    }

    fn index_tensor(&mut self, env: &Env, t: TensorVal, subscripts: &[Subscript], span: Span) -> Value {
        let ty = self.graph.ty(t.id).clone();
        let rank = ty.shape.rank();
        let ellipses: Vec<Span> =
            subscripts.iter().filter(|s| matches!(s, Subscript::Ellipsis(_))).map(Subscript::span).collect();
        if let [_, second, ..] = ellipses.as_slice() {
            self.error(
                Diagnostic::error("an index can have only one `...`").primary(*second, "second `...`"),
            );
            return Value::Error;
        }
        let explicit = subscripts.len() - ellipses.len();
        if explicit > rank {
            let extra = subscripts.iter().filter(|s| !matches!(s, Subscript::Ellipsis(_))).nth(rank);
            self.error(
                Diagnostic::error(format!("too many subscripts: {ty} has {rank} axes, {explicit} are given"))
                    .primary(extra.map_or(span, Subscript::span), "one subscript too many")
                    .secondary(t.span, format!("this is {ty}")),
            );
            return Value::Error;
        }
        let mut selects = vec![];
        // The axis of the input each subscript applies to, and of the result.
        let (mut axis, mut out_axis) = (0usize, 0usize);
        let mut ok = true;
        for sub in subscripts {
            let dim = ty.shape.dims().get(axis).cloned();
            match sub {
                Subscript::Ellipsis(_) => {
                    let skip = rank - explicit;
                    axis += skip;
                    out_axis += skip;
                }
                Subscript::Index(e) => {
                    let Some(i) = self.subscript_int(env, e, "an index") else {
                        ok = false;
                        axis += 1;
                        continue;
                    };
                    let Some(n) = self.known_size(&t, &ty, axis, dim.as_ref(), e.span) else {
                        ok = false;
                        axis += 1;
                        continue;
                    };
                    let at = if i < 0 { i + n as i64 } else { i };
                    if !(0..n as i64).contains(&at) {
                        self.error(
                            Diagnostic::error(format!("index {i} is out of range for axis {axis} of {ty}"))
                                .primary(
                                    e.span,
                                    format!(
                                        "axis {axis} has {n} elements: valid indices are -{n} to {}",
                                        n - 1
                                    ),
                                )
                                .secondary(t.span, format!("this is {ty}")),
                        );
                        ok = false;
                    } else {
                        selects.push(Select::Take { axis: out_axis, i: at as usize });
                    }
                    axis += 1;
                }
                Subscript::Slice { start, stop, step, span: s } => {
                    if start.is_none() && stop.is_none() && step.is_none() {
                        axis += 1;
                        out_axis += 1;
                        continue;
                    }
                    match self.slice_bounds(env, &t, &ty, axis, dim.as_ref(), (start, stop, step), *s) {
                        Some((a, b, st)) => {
                            selects.push(Select::Range { axis: out_axis, start: a, stop: b, step: st })
                        }
                        None => ok = false,
                    }
                    axis += 1;
                    out_axis += 1;
                }
            }
        }
        if !ok {
            return Value::Error;
        }
        let ops = [t.clone()];
        self.lower_with(span, "this subscript", &ops, |cx| {
            let mut v = t.id;
            for s in &selects {
                v = match *s {
                    Select::Take { axis, i } => build::take(cx, v, axis, i)?,
                    Select::Range { axis, start, stop, step } => {
                        build::strided(cx, v, axis, start, stop, step)?
                    }
                };
            }
            Ok(v)
        })
    }

    /// The size of `axis`, which must be known to select along it.
    fn known_size(
        &mut self,
        t: &TensorVal,
        ty: &Type,
        axis: usize,
        dim: Option<&Dim>,
        at: Span,
    ) -> Option<usize> {
        match dim {
            Some(Dim::Known(n)) => Some(*n),
            Some(Dim::Sym(s)) => {
                self.error(
                    Diagnostic::error(format!(
                        "cannot select along axis {axis} of {ty}: its size `{s}` is only known at run time"
                    ))
                    .primary(at, "needs an axis of known size")
                    .secondary(t.span, format!("this is {ty}"))
                    .note("note: only `:` can stand for an axis of symbolic size"),
                );
                None
            }
            None => None,
        }
    }

    /// The resolved `(start, stop, step)` of a slice along `axis`.
    #[allow(clippy::too_many_arguments)]
    fn slice_bounds(
        &mut self,
        env: &Env,
        t: &TensorVal,
        ty: &Type,
        axis: usize,
        dim: Option<&Dim>,
        (start, stop, step): (&Option<Expr>, &Option<Expr>, &Option<Expr>),
        span: Span,
    ) -> Option<(usize, usize, usize)> {
        let n = self.known_size(t, ty, axis, dim, span)? as i64;
        let bound = |run: &mut Self, e: &Option<Expr>, what: &str, default: i64| -> Option<(i64, Span)> {
            match e {
                None => Some((default, span)),
                Some(e) => run.subscript_int(env, e, what).map(|v| (v, e.span)),
            }
        };
        let (st, st_span) = bound(self, step, "a slice step", 1)?;
        if st < 1 {
            let why = if st == 0 {
                "a slice step cannot be zero"
            } else {
                "negative slice steps are not supported"
            };
            self.error(Diagnostic::error(why).primary(st_span, "must be a positive integer"));
            return None;
        }
        let (a, a_span) = bound(self, start, "a slice bound", 0)?;
        let (b, b_span) = bound(self, stop, "a slice bound", n)?;
        let norm = |v: i64| if v < 0 { v + n } else { v };
        let (a, b) = (norm(a), norm(b));
        for (v, s, what) in [(a, a_span, "start"), (b, b_span, "stop")] {
            if !(0..=n).contains(&v) {
                self.error(
                    Diagnostic::error(format!("slice {what} is out of range for axis {axis} of {ty}"))
                        .primary(s, format!("axis {axis} has {n} elements"))
                        .secondary(t.span, format!("this is {ty}"))
                        .note("note: unlike NumPy, out-of-range bounds are not clipped"),
                );
                return None;
            }
        }
        if a >= b {
            self.error(
                Diagnostic::error(format!("the slice selects nothing from axis {axis} of {ty}"))
                    .primary(span, format!("start {a} is not before stop {b}"))
                    .secondary(t.span, format!("this is {ty}")),
            );
            return None;
        }
        Some((a as usize, b as usize, st as usize))
    }
}
