//! The `train { ... }` section: from AST entries to a typed
//! [`TrainConfig`].
//!
//! What the section accepts is described by tables: [`KEYS`] (one row per
//! key) and one table of callable values per kind ([`tables`]). Their
//! parameters use the argument schema of every call ([`Param`]), and their
//! arguments are matched by the same binder as a model's calls
//! ([`args::bind`]); values are constants, folded by the one constant
//! folder (`fold`) and checked against the same ranges. This module words
//! what it finds for the section: every call reports the same errors in the
//! same words.
//!
//! [`check_train`] reports every problem of a section in one pass and returns
//! a config only when there are none. The section never refers to the
//! model; the runtime reads the config; this module does no I/O.
//!
//! # Optimizers (for the language reference)
//!
//! - `optimizer = OPT(...)` is the optimizer of the loss `loss`;
//!   `optimizer NAME = OPT(...)` the optimizer of the loss `NAME` (`loss NAME
//!   = ...` in the model). A model with several losses gives each its own,
//!   once; they run on every batch in the order written. Only `optimizer`
//!   takes a name. Without any `optimizer` the loss `loss` is optimised by
//!   `adam(lr: 1e-3)`.
//! - Every optimizer takes `params:`: a layer value of the model (`params:
//!   D` for `D = discriminator(32)`), a non-empty list of them (`params: [G,
//!   E]`, each once) or `params` (every parameter, the default). It updates
//!   those parameters only, with the gradient of its own loss. Two
//!   optimizers may update the same parameters; each keeps its own state.
//! - What needs the model — that each loss has an optimizer, that each
//!   optimizer's loss exists, that `params:` names layer values with
//!   parameters — is checked with the model (`sema::losses`).
//! - `schedule` and `clip_grad_norm` apply to every optimizer.

pub mod tables;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::config::{
    DataSource, EarlyStop, LayerRef, LossOptimizer, Metric, Missing, Normalize, ParamSet, Schedule, Split,
    TrainConfig, DEFAULT_LOSS,
};
use crate::diag::{Diagnostic, Span};
use crate::syntax::ast::{self, Expr, ExprKind};

use super::args::{self, Arg, Args, Binder, FloatOutside, Given, IntOutside, Mismatch, Param, Range, Ty};
use super::fold::{self, Num, Unfolded};
use crate::suggest::{did_you_mean, names_list};
pub use tables::{
    Callable, Table, DISTORTIONS, EARLY_STOPS, GENERATORS, METRICS, MISSINGS, NORMALIZATIONS, OPTIMIZERS,
    SCHEDULES, SOURCES, SPLITS, WINDOWS,
};
use tables::{FRACTION, POSITIVE, SIZE};

// ---- the keys -----------------------------------------------------------------

type Apply = fn(&mut Checker, &ast::TrainEntry, &mut Draft);

/// One key of the `train` section.
pub struct Key {
    pub name: &'static str,
    /// What the value may be, for the reference.
    pub value: &'static str,
    /// The default, for the reference.
    pub default: &'static str,
    apply: Apply,
}

/// The one key that takes a name: `optimizer NAME = ...` is the optimiser
/// of the loss `NAME`, and the key is then given once per loss.
pub const NAMED_KEY: &str = "optimizer";

/// The keys of the `train` section.
pub const KEYS: &[Key] = &[
    Key {
        name: "data",
        value: "`synthetic.NAME(...)`, `dataset(\"NAME\")`, `csv(...)`, `npy(...)`, `npz(...)` or `netcdf(...)`",
        default: "required",
        apply: |cx, entry, d| d.data = cx.data(&entry.value).or(d.data.take()),
    },
    Key {
        name: "split",
        value: "fraction of the examples used for training, in (0, 1), taken by the source's order; or \
                `chronological(F)`: the first F of the examples train",
        default: "0.8",
        apply: |cx, entry, d| {
            if let Some(split) = cx.split(&entry.value) {
                d.split = split;
            }
        },
    },
    Key {
        name: "normalize",
        value: "`none` or `per_variable`",
        default: "none",
        apply: |cx, entry, d| cx.named("normalize", &NORMALIZATIONS, &entry.value, &mut d.normalize),
    },
    Key {
        name: "batch",
        value: "batch size, a positive integer",
        default: "32",
        apply: |cx, entry, d| cx.size("batch", &entry.value, &mut d.batch),
    },
    Key {
        name: "epochs",
        value: "passes over the training data, a positive integer",
        default: "10",
        apply: |cx, entry, d| cx.size("epochs", &entry.value, &mut d.epochs),
    },
    Key {
        name: "optimizer",
        value: "`sgd(...)`, `adam(...)`, `adamw(...)` or `rmsprop(...)`, each with `params: LAYER | [LAYERS] | \
                params` (default: every parameter); `optimizer NAME = ...` is the optimizer of the loss `NAME`, \
                one per loss",
        default: "adam(lr: 1e-3)",
        apply: |cx, entry, d| {
            if let Some(o) = cx.optimizer(entry) {
                d.optimizers.push(o);
            }
        },
    },
    Key {
        name: "schedule",
        value: "`constant`, `step(...)`, `cosine(...)` or `exponential(...)`",
        default: "constant",
        apply: |cx, entry, d| cx.named("schedule", &SCHEDULES, &entry.value, &mut d.schedule),
    },
    Key {
        name: "clip_grad_norm",
        value: "maximum global gradient norm, a positive number",
        default: "off",
        apply: |cx, entry, d| {
            let mut x = 0.0;
            if cx.number("clip_grad_norm", POSITIVE, &entry.value, &mut x) {
                d.clip_grad_norm = Some(x);
            }
        },
    },
    Key {
        name: "early_stop",
        value: "`patience(N, min_delta: 0)`",
        default: "off",
        apply: |cx, entry, d| {
            if let Some(s) = cx.call("early_stop", &EARLY_STOPS, &entry.value) {
                d.early_stop = Some(s);
            }
        },
    },
    Key {
        name: "metrics",
        value: "a list of metrics",
        default: "[] (loss only)",
        apply: |cx, entry, d| d.metrics = cx.metrics(&entry.value),
    },
    Key {
        name: "seed",
        value: "random seed, a non-negative integer",
        default: "0",
        apply: |cx, entry, d| {
            let mut n = 0i64;
            if cx.number("seed", (Ty::Int, Range::Seed), &entry.value, &mut n) {
                d.seed = n.unsigned_abs();
            }
        },
    },
    Key {
        name: "checkpoint",
        value: "path of the checkpoint file (safetensors), a string",
        default: "next to the model",
        apply: |cx, entry, d| {
            if let Some(Arg::Str(s)) = cx.value("checkpoint", (Ty::Str, Range::Any), &entry.value) {
                d.checkpoint = Some(s);
            }
        },
    },
    Key {
        name: "missing",
        value: "`error` or `drop`: what loading does with examples holding NaN or infinite values",
        default: "error",
        apply: |cx, entry, d| cx.named("missing", &MISSINGS, &entry.value, &mut d.missing),
    },
];

// ---- checking -------------------------------------------------------------

/// The configuration under construction: [`TrainConfig`] with `data` not yet known.
struct Draft {
    data: Option<DataSource>,
    data_span: Span,
    split: Split,
    normalize: Normalize,
    batch: usize,
    epochs: usize,
    optimizers: Vec<LossOptimizer>,
    schedule: Schedule,
    clip_grad_norm: Option<f64>,
    early_stop: Option<EarlyStop>,
    metrics: Vec<Metric>,
    seed: u64,
    checkpoint: Option<String>,
    missing: Missing,
}

impl Draft {
    fn new() -> Draft {
        Draft {
            data: None,
            data_span: Span::default(),
            split: Split::by_source(0.8),
            normalize: Normalize::None,
            batch: 32,
            epochs: 10,
            optimizers: vec![],
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stop: None,
            metrics: vec![],
            seed: 0,
            checkpoint: None,
            missing: Missing::Error,
        }
    }

    fn finish(self) -> Option<TrainConfig> {
        let optimizers = if self.optimizers.is_empty() {
            vec![LossOptimizer::default_for_loss()]
        } else {
            self.optimizers
        };
        Some(TrainConfig {
            data: self.data?,
            data_span: self.data_span,
            split: self.split,
            normalize: self.normalize,
            batch: self.batch,
            epochs: self.epochs,
            optimizers,
            schedule: self.schedule,
            clip_grad_norm: self.clip_grad_norm,
            early_stop: self.early_stop,
            metrics: self.metrics,
            seed: self.seed,
            checkpoint: self.checkpoint,
            missing: self.missing,
        })
    }
}

/// A data source written on its own, as the value of a train section's
/// `data` key (`nnc eval --source`): the source, or the diagnostics; their
/// spans point into [`source_text`]`(text)`, which a front end shows them in.
pub fn check_data_source(text: &str) -> Result<DataSource, Vec<Diagnostic>> {
    let wrapped = source_text(text);
    let (file, diags) = crate::syntax::parse(&wrapped);
    if !diags.is_empty() {
        return Err(diags);
    }
    let value = file.items.iter().find_map(|item| match item {
        ast::Item::Train(def) => def.entries.iter().find(|e| e.key.name == "data").map(|e| &e.value),
        _ => None,
    });
    let Some(value) = value else {
        let span = Span::new(0, wrapped.len());
        return Err(vec![Diagnostic::error("not a data source").primary(span, "expected a data source")]);
    };
    let mut cx = Checker { diags: vec![] };
    match cx.data(value) {
        Some(source) if cx.diags.is_empty() => Ok(source),
        _ => Err(cx.diags),
    }
}

/// The text [`check_data_source`] checks `text` in: a train section of one
/// `data` key.
pub fn source_text(text: &str) -> String {
    format!("train {{\n  data = {text}\n}}\n")
}

/// Checks a `train` section. Returns the config if the section has no
/// errors, and every diagnostic found. Never panics.
pub fn check_train(def: &ast::TrainDef, source: &str) -> (Option<TrainConfig>, Vec<Diagnostic>) {
    let mut cx = Checker { diags: vec![] };
    let mut draft = Draft::new();
    // Per key (and per loss for `optimizer`): where it was first set, and
    // whether with a name.
    let mut seen: HashMap<(&str, &str), (Span, bool)> = HashMap::new();
    for entry in &def.entries {
        let name = entry.key.name.as_str();
        let Some(key) = KEYS.iter().find(|k| k.name == name) else {
            cx.unknown_key(&entry.key);
            continue;
        };
        if let (Some(entry_name), false) = (&entry.name, name == NAMED_KEY) {
            cx.diags.push(
                Diagnostic::error(format!("`{name}` takes no name"))
                    .primary(entry_name.span, "unexpected name")
                    .note(format!("help: write `{name} = ...`"))
                    .note(format!(
                        "only `{NAMED_KEY}` is named: `{NAMED_KEY} NAME = ...` is the optimizer of the loss `NAME`"
                    )),
            );
        }
        let loss = match (&entry.name, name == NAMED_KEY) {
            (Some(n), true) => n.name.as_str(),
            (None, true) => DEFAULT_LOSS,
            (_, false) => "",
        };
        let span = entry.name.as_ref().filter(|_| name == NAMED_KEY).map_or(entry.key.span, |n| n.span);
        match seen.get(&(name, loss)) {
            // `optimizer gen` twice, or `optimizer` and `optimizer loss`.
            Some(&(first, first_named)) if name == NAMED_KEY && (first_named || entry.name.is_some()) => {
                cx.diags.push(
                    Diagnostic::error(format!("the loss `{loss}` has two optimizers"))
                        .primary(span, format!("a second optimizer of `{loss}`"))
                        .secondary(first, "the first")
                        .note("each loss has one optimizer; remove one of them"),
                );
            }
            Some(&(first, _)) => cx.diags.push(
                Diagnostic::error(format!("`{name}` is set twice"))
                    .primary(entry.key.span, "set again here")
                    .secondary(first, "first set here"),
            ),
            None => {
                seen.insert((name, loss), (span, entry.name.is_some()));
            }
        }
        if name == "data" {
            draft.data_span = entry.span;
        }
        (key.apply)(&mut cx, entry, &mut draft);
    }
    if !seen.contains_key(&("data", "")) {
        cx.diags.push(
            Diagnostic::error("the `train` section has no `data`")
                .primary(keyword_span(def.span, source), "missing `data = ...`")
                .note("help: add e.g. `data = dataset(\"digits\")` or `data = synthetic.sine(n: 1024)`"),
        );
    }
    if let Schedule::Cosine { warmup, .. } = draft.schedule {
        if warmup > 0 && warmup >= draft.epochs {
            let entry = def.entries.iter().find(|e| e.key.name == "schedule");
            let epochs = def.entries.iter().find(|e| e.key.name == "epochs");
            let mut d = Diagnostic::warning(format!(
                "the warm-up of {warmup} epochs is not shorter than the run of {} epochs",
                draft.epochs
            ));
            if let Some(e) = entry {
                d = d.primary(e.value.span, "the learning rate rises for the whole run and never decays");
            }
            if let Some(e) = epochs {
                d = d.secondary(e.value.span, "the run's length");
            }
            cx.diags.push(d.note(format!(
                "help: a warm-up of a few epochs (`cosine(warmup: {})`), or one in steps (`warmup_steps: ...`)",
                (draft.epochs / 10).max(1)
            )));
        }
    }
    let config = if cx.diags.iter().any(Diagnostic::is_error) { None } else { draft.finish() };
    (config, cx.diags)
}

/// The span of the `train` keyword that starts `span` (or all of `span`).
fn keyword_span(span: Span, source: &str) -> Span {
    let lo = span.lo as usize;
    match source.get(lo..lo + 5) {
        Some("train") => Span::new(lo, lo + 5),
        _ => span,
    }
}

/// What `params:` of an optimizer may be, for messages.
const PARAMS_EXPECTED: &str =
    "a layer (`params: D`), a list of layers (`params: [G, D]`) or `params` (every \
                               parameter)";

/// The `params:` argument of an optimizer: `params` (every parameter), the
/// name of a layer value of the model, or a non-empty list of such names,
/// each once. Whether the names are layer values of the model is checked
/// with the model (`sema::losses`).
fn param_set(expr: &Expr) -> Result<ParamSet, Diagnostic> {
    let layer = |e: &Expr| -> Result<LayerRef, Diagnostic> {
        match &e.kind {
            ExprKind::Path(p) if p.segments.len() == 1 => Ok(LayerRef { name: p.text(), span: e.span }),
            _ => Err(Diagnostic::error(format!("`params` must be {PARAMS_EXPECTED}, found {}", describe(e)))
                .primary(e.span, "expected the name of a layer value")),
        }
    };
    match &expr.kind {
        ExprKind::List(items) if items.is_empty() => {
            Err(Diagnostic::error("`params` must not be an empty list")
                .primary(expr.span, "empty list")
                .note("help: name the layers the optimizer updates, e.g. `params: [G, D]`"))
        }
        ExprKind::List(items) => {
            let mut layers: Vec<LayerRef> = vec![];
            for item in items {
                let l = layer(item)?;
                if l.name == "params" {
                    return Err(Diagnostic::error("`params` (every parameter) cannot be listed with layers")
                        .primary(item.span, "every parameter")
                        .note("help: write `params: params` alone, or list only layers"));
                }
                if let Some(first) = layers.iter().find(|f| f.name == l.name) {
                    return Err(Diagnostic::error(format!("layer `{}` is listed twice in `params`", l.name))
                        .primary(l.span, "listed again here")
                        .secondary(first.span, "first listed here"));
                }
                layers.push(l);
            }
            Ok(ParamSet::Layers(layers))
        }
        _ => {
            let l = layer(expr)?;
            Ok(if l.name == "params" { ParamSet::All } else { ParamSet::Layers(vec![l]) })
        }
    }
}

/// What an expression is, for "found X" messages.
fn describe(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Str(s) => format!("a string ({s:?})"),
        ExprKind::Bool(b) => format!("a boolean (`{b}`)"),
        ExprKind::Path(p) => format!("the name `{}`", p.text()),
        ExprKind::List(_) => "a list".into(),
        ExprKind::Call { callee, .. } => format!("a call to `{}`", callee.text()),
        ExprKind::Pipe { .. } => "a pipeline".into(),
        _ => match fold::expression(expr) {
            Ok(Num::Int(n)) => format!("an integer (`{n}`)"),
            Ok(Num::Float(x)) => format!("a float (`{x}`)"),
            Err(_) => "an expression".into(),
        },
    }
}

/// Collects the diagnostics of one section.
struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn unknown_key(&mut self, key: &ast::Ident) {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut d = Diagnostic::error(format!("unknown key `{}` in the `train` section", key.name))
            .primary(key.span, "unknown key")
            .note(format!("valid keys: {}", names_list(&names)));
        if let Some(help) = did_you_mean(&key.name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d);
    }

    fn wrong_type(&mut self, name: &str, expected: &str, expr: &Expr) {
        let mut d = Diagnostic::error(format!("`{name}` must be {expected}, found {}", describe(expr)))
            .primary(expr.span, format!("expected {expected}"));
        if let (true, ExprKind::Path(p)) = (expected.contains("string"), &expr.kind) {
            d = d.note(format!("help: strings are written in double quotes: \"{}\"", p.text()));
        }
        self.diags.push(d);
    }

    fn out_of_range(&mut self, name: &str, expected: &str, found: String, span: Span) {
        self.diags.push(
            Diagnostic::error(format!("`{name}` must be {expected}, found {found}"))
                .primary(span, format!("must be {expected}")),
        );
    }

    /// Checks the constant `expr` as a value of type `ty` within `range` for
    /// the key or parameter `name`. Strings must not be empty.
    fn value(&mut self, name: &str, (ty, range): (Ty, Range), expr: &Expr) -> Option<Arg> {
        let expected = ty.expected_in(range);
        match ty {
            Ty::Int => match self.fold(name, &expected, expr)? {
                Num::Int(n) => match range.int(n) {
                    Ok(n) => Some(Arg::Int(n)),
                    Err(IntOutside::Below(_)) => {
                        self.out_of_range(name, &expected, n.to_string(), expr.span);
                        None
                    }
                    Err(IntOutside::TooLarge(max)) => {
                        self.diags.push(
                            Diagnostic::error(format!("`{name}` is too large: {n} (at most {max})"))
                                .primary(expr.span, format!("at most {max}")),
                        );
                        None
                    }
                },
                Num::Float(_) => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
            Ty::Float => {
                let x = self.fold(name, &expected, expr)?.as_f64();
                match range.float(x) {
                    Ok(x) => Some(Arg::Float(x)),
                    Err(outside) => {
                        let expected = match outside {
                            FloatOutside::NotFinite => format!("finite ({expected})"),
                            FloatOutside::Outside => expected,
                        };
                        self.out_of_range(name, &expected, format!("{x}"), expr.span);
                        None
                    }
                }
            }
            Ty::Bool => match expr.kind {
                ExprKind::Bool(b) => Some(Arg::Bool(b)),
                _ => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
            Ty::Str => self.string(name, expr).map(Arg::Str),
            // A number or a non-empty list of numbers (`csi([0.5, 2])`),
            // each checked as a `Ty::Float` of the same range.
            Ty::Floats => {
                let one = |cx: &mut Checker, e: &Expr| match cx.value(name, (Ty::Float, range), e)? {
                    Arg::Float(x) => Some(x),
                    _ => None,
                };
                match &expr.kind {
                    ExprKind::List(items) if items.is_empty() => self.empty_list(name, expr),
                    ExprKind::List(items) => {
                        let xs: Vec<Option<f64>> = items.iter().map(|e| one(self, e)).collect();
                        xs.into_iter().collect::<Option<Vec<f64>>>().map(Arg::Floats)
                    }
                    _ => one(self, expr).map(|x| Arg::Floats(vec![x])),
                }
            }
            Ty::Strs => match &expr.kind {
                ExprKind::List(items) if items.is_empty() => self.empty_list(name, expr),
                ExprKind::List(items) => {
                    let strings: Vec<Option<String>> = items.iter().map(|e| self.string(name, e)).collect();
                    strings.into_iter().collect::<Option<Vec<_>>>().map(Arg::Strs)
                }
                ExprKind::Str(_) => self.string(name, expr).map(|s| Arg::Strs(vec![s])),
                _ => {
                    self.wrong_type(name, &expected, expr);
                    None
                }
            },
            // `params: D` of an optimizer: names of the model's layer
            // values, resolved against the model by `sema::losses`.
            Ty::TensorList => match param_set(expr) {
                Ok(_) => Some(Arg::None),
                Err(d) => {
                    self.diags.push(d);
                    None
                }
            },
            // The section takes no tensors or other names.
            _ => {
                self.wrong_type(name, &expected, expr);
                None
            }
        }
    }

    /// Folds a numeric expression, reporting why it is not one.
    fn fold(&mut self, name: &str, expected: &str, expr: &Expr) -> Option<Num> {
        match fold::expression(expr) {
            Ok(n) => Some(n),
            Err(Unfolded::NotNumber) => {
                self.wrong_type(name, expected, expr);
                None
            }
            Err(Unfolded::Invalid(d)) => {
                self.diags.push(d);
                None
            }
        }
    }

    /// Reports an empty list given to `name`, which needs at least one item.
    fn empty_list<T>(&mut self, name: &str, expr: &Expr) -> Option<T> {
        self.diags.push(
            Diagnostic::error(format!("`{name}` must not be an empty list")).primary(expr.span, "empty list"),
        );
        None
    }

    fn string(&mut self, name: &str, expr: &Expr) -> Option<String> {
        match &expr.kind {
            ExprKind::Str(s) if s.is_empty() => {
                self.diags.push(
                    Diagnostic::error(format!("`{name}` must not be empty"))
                        .primary(expr.span, "empty string"),
                );
                None
            }
            ExprKind::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(name, "a string", expr);
                None
            }
        }
    }

    /// Checks a numeric key; stores it in `out` and returns true if valid.
    fn number<T: FromArg>(&mut self, name: &str, ty: (Ty, Range), expr: &Expr, out: &mut T) -> bool {
        match self.value(name, ty, expr).and_then(T::from_arg) {
            Some(v) => {
                *out = v;
                true
            }
            None => false,
        }
    }

    fn size(&mut self, name: &str, expr: &Expr, out: &mut usize) {
        self.number(name, SIZE, expr, out);
    }

    /// Checks a key whose value is a row of `table`; stores it in `out`.
    fn named<T>(&mut self, key: &str, table: &Table<T>, expr: &Expr, out: &mut T) {
        if let Some(v) = self.call(key, table, expr) {
            *out = v;
        }
    }

    /// Resolves `expr` (a name or a call) in `table` and binds its arguments.
    fn call<T>(&mut self, key: &str, table: &Table<T>, expr: &Expr) -> Option<T> {
        let (callee, args) = match &expr.kind {
            ExprKind::Path(p) => (p, &[][..]),
            ExprKind::Call { callee, args } => (callee, &args[..]),
            _ => {
                self.wrong_type(key, table.expected, expr);
                return None;
            }
        };
        let name = callee.text();
        match table.rows.iter().find(|r| format!("{}{}", table.prefix, r.name) == name) {
            Some(row) => self.bind(row, &name, callee, args, expr.span),
            None => {
                self.unknown(table, &name, callee.span);
                None
            }
        }
    }

    fn unknown<T>(&mut self, table: &Table<T>, name: &str, span: Span) {
        let names = table.names();
        let mut d = Diagnostic::error(format!("unknown {} `{name}`", table.what))
            .primary(span, format!("unknown {}", table.what))
            .note(format!("valid {}s: {}", table.what, names_list(&names)));
        if let Some(help) = did_you_mean(name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d);
    }

    /// Binds `args` to the parameters of `row` ([`args::bind`]), applies
    /// defaults, and builds the value; a rule the build finds broken is
    /// reported on the argument it names.
    fn bind<T>(
        &mut self,
        row: &Callable<T>,
        name: &str,
        callee: &ast::Path,
        args: &[ast::Arg],
        call_span: Span,
    ) -> Option<T> {
        let given = args.iter().map(|a| Given {
            name: a.name.as_ref(),
            span: a.span,
            value_span: a.value.span,
            source: &a.value,
        });
        let mut binder = SectionBinder { cx: self, name, params: row.params, callee: callee.span };
        let bound = args::bind(row.params, given, &mut binder)?;
        let values = args::fill_defaults(row.params, bound.slots);
        match (row.build)(&Args { params: row.params, values }) {
            Ok(v) => Some(v),
            Err(inv) => {
                let span = row
                    .params
                    .iter()
                    .position(|p| p.name == inv.param)
                    .and_then(|i| bound.spans[i])
                    .unwrap_or(call_span);
                let mut d = Diagnostic::error(inv.message).primary(span, inv.label);
                for note in inv.notes {
                    d = d.note(note);
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// Checks an `optimizer` entry: a row of [`OPTIMIZERS`] and its
    /// `params:`, for the loss the entry names (`loss` when it names none).
    fn optimizer(&mut self, entry: &ast::TrainEntry) -> Option<LossOptimizer> {
        let optimizer = self.call("optimizer", &OPTIMIZERS, &entry.value)?;
        // The binder checked `params:` already.
        let params = match &entry.value.kind {
            ExprKind::Call { args, .. } => args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == "params"))
                .map_or(Ok(ParamSet::All), |a| param_set(&a.value))
                .ok()?,
            _ => ParamSet::All,
        };
        let (loss, span) = match &entry.name {
            Some(name) => (name.name.clone(), name.span),
            None => (DEFAULT_LOSS.to_string(), entry.key.span),
        };
        Some(LossOptimizer { loss, optimizer, params, span: Some(span), named: entry.name.is_some() })
    }

    /// Checks the `data` key: `synthetic.NAME(...)` or a row of [`SOURCES`].
    fn data(&mut self, expr: &Expr) -> Option<DataSource> {
        let callee = match &expr.kind {
            ExprKind::Path(p) | ExprKind::Call { callee: p, .. } => p,
            _ => {
                self.wrong_type("data", SOURCES.expected, expr);
                return None;
            }
        };
        match &callee.segments[..] {
            [first, generator] if first.name == "synthetic" => {
                if !GENERATORS.rows.iter().any(|r| r.name == generator.name) {
                    self.unknown(&GENERATORS, &generator.name, generator.span);
                    return None;
                }
                self.call("data", &GENERATORS, expr)
            }
            [w] if w.name == "window" => self.window(expr),
            [d] if d.name == "distort" => self.distort(expr),
            [_] if SOURCES.rows.iter().any(|r| r.name == callee.text()) => self.call("data", &SOURCES, expr),
            _ => {
                let mut names = SOURCES.names();
                names.extend(["window", "distort", "synthetic"]);
                let mut d = Diagnostic::error(format!("unknown data source `{}`", callee.text()))
                    .primary(callee.span, "unknown data source")
                    .note(format!(
                        "valid data sources: {}, `synthetic.NAME(...)`",
                        names_list(&[SOURCES.names(), vec!["window", "distort"]].concat())
                    ));
                let first = callee.segments.first().map_or("", |s| s.name.as_str());
                if let Some(help) = did_you_mean(first, names.iter().copied()) {
                    d = d.note(help);
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// Checks `window(SOURCE, in: T_in, ...)`: its first argument as a data
    /// source of its own, the others as the row of [`WINDOWS`].
    fn window(&mut self, expr: &Expr) -> Option<DataSource> {
        let ExprKind::Call { callee, args } = &expr.kind else {
            self.diags.push(
                Diagnostic::error("`window` needs a data source and `in:`")
                    .primary(expr.span, "no arguments")
                    .note("help: write `window(dataset(\"stageiv_precip\"), in: 4, out: 4)`"),
            );
            return None;
        };
        let Some(first) = args.first().filter(|a| a.name.is_none()) else {
            self.diags.push(
                Diagnostic::error("`window` needs the source to cut sequences from as its first argument")
                    .primary(callee.span, "no source")
                    .note("help: write `window(dataset(\"stageiv_precip\"), in: 4, out: 4)`"),
            );
            return None;
        };
        if let ExprKind::Call { callee: inner, .. } | ExprKind::Path(inner) = &first.value.kind {
            if inner.text() == "window" {
                self.diags.push(
                    Diagnostic::error("a window of windows is not a data source")
                        .primary(first.value.span, "already a window")
                        .note("help: cut the sequences in one `window(...)`"),
                );
                return None;
            }
        }
        let source = self.data(&first.value);
        let window = self.bind(&WINDOWS.rows[0], "window", callee, &args[1..], expr.span);
        Some(DataSource::Window { source: Box::new(source?), window: window? })
    }

    /// Checks `distort(SOURCE, rotate: D, shift: F)`: its first argument as a
    /// data source of its own, the others as the row of [`DISTORTIONS`].
    fn distort(&mut self, expr: &Expr) -> Option<DataSource> {
        const HELP: &str = "help: write `distort(dataset(\"mnist_5k\"), rotate: 45, shift: 0.25)`";
        let ExprKind::Call { callee, args } = &expr.kind else {
            self.diags.push(
                Diagnostic::error("`distort` needs a data source of images")
                    .primary(expr.span, "no arguments")
                    .note(HELP),
            );
            return None;
        };
        let Some(first) = args.first().filter(|a| a.name.is_none()) else {
            self.diags.push(
                Diagnostic::error(
                    "`distort` needs the source of the images to distort as its first argument",
                )
                .primary(callee.span, "no source")
                .note(HELP),
            );
            return None;
        };
        let source = self.data(&first.value);
        let distortion = self.bind(&DISTORTIONS.rows[0], "distort", callee, &args[1..], expr.span);
        Some(DataSource::Distort { source: Box::new(source?), distortion: distortion? })
    }

    /// Checks the `split` key: a fraction (the source's own rule) or a row
    /// of [`SPLITS`] such as `chronological(0.8)`.
    fn split(&mut self, expr: &Expr) -> Option<Split> {
        let callee = match &expr.kind {
            ExprKind::Path(p) | ExprKind::Call { callee: p, .. } => p,
            _ => {
                let mut fraction = 0.0;
                let ok = self.number("split", FRACTION, expr, &mut fraction);
                return ok.then(|| Split::by_source(fraction));
            }
        };
        let name = callee.text();
        if SPLITS.rows.iter().any(|r| r.name == name) {
            return self.call("split", &SPLITS, expr);
        }
        let names = SPLITS.names();
        let mut d = Diagnostic::error(format!("unknown split rule `{name}`"))
            .primary(callee.span, "unknown split rule")
            .note(format!("valid split rules: {}", names_list(&names)));
        if let Some(help) = did_you_mean(&name, names.iter().copied()) {
            d = d.note(help);
        }
        self.diags.push(d.note(
            "help: `split = 0.8` takes the source's own order; `split = chronological(0.8)` trains on the \
             first 80 % of the examples and validates on the last 20 %",
        ));
        None
    }

    /// Checks the `metrics` key: a list of rows of [`METRICS`], each
    /// threshold of a score its own metric, no two with the same label
    /// (`csi@0.5`, `rmse`).
    fn metrics(&mut self, expr: &Expr) -> Vec<Metric> {
        let ExprKind::List(items) = &expr.kind else {
            self.wrong_type("metrics", "a list of metrics such as `[rmse, mae]`", expr);
            return vec![];
        };
        let mut out = vec![];
        let mut seen: Vec<(String, Span)> = vec![];
        for item in items {
            let Some(ms) = self.call("metrics", &METRICS, item) else { continue };
            for m in ms {
                let label = m.label();
                if let Some((_, first)) = seen.iter().find(|(s, _)| *s == label) {
                    self.diags.push(
                        Diagnostic::error(format!("metric `{label}` is listed twice"))
                            .primary(item.span, "listed again here")
                            .secondary(*first, "first listed here")
                            .note(
                                "help: list each metric once; `per_variable: true` and `per_lead: true` \
                                 add values to the same entry",
                            ),
                    );
                    continue;
                }
                seen.push((label, item.span));
                out.push(m);
            }
        }
        out
    }
}

/// The binder of one callable value of the section: checks each argument
/// as a constant and words every problem for the section.
struct SectionBinder<'c> {
    cx: &'c mut Checker,
    /// The callee as written (`synthetic.sine`).
    name: &'c str,
    params: &'static [Param<'static>],
    /// The callee's name, where missing arguments are reported.
    callee: Span,
}

impl<'e> Binder<'e, &'e Expr> for SectionBinder<'_> {
    fn value(&mut self, param: &Param, expr: &'e Expr, _span: Span) -> Option<Arg> {
        self.cx.value(param.name, (param.ty, param.range), expr)
    }

    fn mismatch(&mut self, mismatch: Mismatch<'e>) {
        let (name, params) = (self.name, self.params);
        match mismatch {
            Mismatch::PositionalAfterKeyword { arg, keyword } => self.cx.diags.push(
                Diagnostic::error(format!("positional argument after a keyword argument in `{name}`"))
                    .primary(arg, "positional argument")
                    .secondary(keyword, "keyword argument before it")
                    .note("positional arguments come first, then `name: value` arguments"),
            ),
            Mismatch::ExtraPositional(span) => self.too_many_positional(span),
            Mismatch::UnknownKeyword(id) | Mismatch::VariadicByName(id) => {
                let names: Vec<&str> = params.iter().map(|p| p.name).collect();
                let valid = if names.is_empty() { "none".to_string() } else { names_list(&names) };
                let mut d = Diagnostic::error(format!("unknown argument `{}` for `{name}`", id.name))
                    .primary(id.span, "unknown argument")
                    .note(format!("valid arguments: {valid}"));
                if let Some(help) = did_you_mean(&id.name, names.iter().copied()) {
                    d = d.note(help);
                }
                self.cx.diags.push(d);
            }
            Mismatch::GivenTwice { param, again, first, .. } => self.cx.diags.push(
                Diagnostic::error(format!("argument `{}` of `{name}` is given twice", params[param].name))
                    .primary(again, "given again here")
                    .secondary(first, "first given here"),
            ),
            Mismatch::Missing(missing) => {
                for p in missing.iter().map(|&i| &params[i]) {
                    let how = if name == "window" {
                        // The source is checked apart, as the first argument.
                        format!("`window(SOURCE, {}: ...)`", p.name)
                    } else if p.positional {
                        format!("`{name}({})` or `{name}({}: ...)`", p.name.to_uppercase(), p.name)
                    } else {
                        format!("`{name}({}: ...)`", p.name)
                    };
                    self.cx.diags.push(
                        Diagnostic::error(format!("`{name}` is missing its argument `{}`", p.name))
                            .primary(self.callee, format!("missing `{}`", p.name))
                            .note(format!("help: write {how}")),
                    );
                }
            }
        }
    }
}

impl SectionBinder<'_> {
    fn too_many_positional(&mut self, span: Span) {
        let (name, params) = (self.name, self.params);
        let listed: Vec<&str> = params.iter().filter(|p| p.positional).map(|p| p.name).collect();
        let takes = match listed.len() {
            0 => "no positional arguments".to_string(),
            1 => format!("1 positional argument ({})", names_list(&listed)),
            n => format!("{n} positional arguments ({})", names_list(&listed)),
        };
        let mut d = Diagnostic::error(format!("too many positional arguments for `{name}`"))
            .primary(span, "unexpected positional argument")
            .note(format!("`{name}` takes {takes}"));
        let keyword: Vec<&str> = params.iter().filter(|p| !p.positional).map(|p| p.name).collect();
        if !keyword.is_empty() {
            d = d.note(format!("give the others by name: {}", names_list(&keyword)));
        }
        self.cx.diags.push(d);
    }
}

/// Conversion of a checked value to a config field's type.
trait FromArg: Sized {
    fn from_arg(v: Arg) -> Option<Self>;
}

impl FromArg for f64 {
    fn from_arg(v: Arg) -> Option<f64> {
        match v {
            Arg::Float(x) => Some(x),
            Arg::Int(n) => Some(n as f64),
            _ => None,
        }
    }
}

impl FromArg for usize {
    fn from_arg(v: Arg) -> Option<usize> {
        match v {
            Arg::Int(n) => usize::try_from(n).ok(),
            _ => None,
        }
    }
}

impl FromArg for i64 {
    fn from_arg(v: Arg) -> Option<i64> {
        match v {
            Arg::Int(n) => Some(n),
            _ => None,
        }
    }
}
