//! Semantic analysis: names, blocks, arguments, shapes; building the forward IR.
//!
//! [`analyze`] is the stage's one entry point. It sorts the file's items
//! (`items`), checks the `train` section ([`train_section`], producing a
//! [`TrainConfig`]), then expands the model twice (`expand`, `call`): once
//! in training mode, collecting every diagnostic and the `nnc summary`
//! rows, and once in inference mode. Built-ins are described by one table
//! ([`catalogue`], which also documents their semantics) and built as IR
//! primitives by the forward-graph library ([`forward`]). Built-ins, blocks and the
//! callable values of the `train` section share one argument schema and
//! binder ([`args`]) and one constant folder (`fold`). Both graphs have
//! their inputs first and are verified before they are returned.
//!
//! # Names (for the language reference)
//!
//! - A file has exactly one `model`, at most one `train` section and any
//!   number of `block`s, in any order. A block may not have the name of a
//!   built-in or of another block.
//! - Model statements run in order. `name = expr` binds `name`; binding it
//!   again shadows it (later uses see the new value). `input` and `target`
//!   names are bound to data by name and cannot be assigned (a rebound target
//!   would silently change what the loss compares with).
//! - Values and functions are separate: `f(...)` and `x |> f` call a block or
//!   built-in even if a binding is also called `f`; a bare name is a value
//!   (binding, input, block parameter, `params`, `weights`) and a function
//!   used as a value is an error. Enum-like arguments (`pad: same`) are bare
//!   names that win over bindings of the same name.
//! - A block sees only its parameters and its own bindings. Its first
//!   parameter is a tensor; untyped parameters are tensors, typed ones
//!   (`int`, `float`, `bool`, `str`) compile-time constants with optional
//!   defaults. Constants fold at compile time (`c * 2`; `c / 2` stays an
//!   integer when exact). Every call expands the body anew with its own
//!   parameters; a block that calls itself, directly or not, is an error.
//! - `loss = ...` is evaluated after every other statement, so `params` and
//!   `weights` in it list all parameters of the model. `output NAME` names
//!   the prediction; without it the prediction is the last tensor binding
//!   before `loss`.
//! - Parameter names are described in [`catalogue`].
//! - Warnings ([`analyze_all`]): a binding or block parameter that is never
//!   read, a value overwritten before it is read, and a block that is never
//!   called. A name starting with `_` is exempt. Warnings are reported only
//!   when there is no error (next to errors they are mostly echoes of them).

pub mod args;
mod call;
pub mod catalogue;
pub mod constants;
mod expand;
mod flops;
mod fold;
pub mod forward;
mod items;
mod layers;
mod losses;
pub mod train_section;
mod values;

#[cfg(test)]
mod attention_tests;
#[cfg(test)]
mod builtin_tests;
#[cfg(test)]
mod graph_conv_tests;
#[cfg(test)]
mod language_tests;
#[cfg(test)]
pub(crate) mod test_files;
#[cfg(test)]
mod tests;

use crate::config::TrainConfig;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Graph, InputKind, Loc, Mode, Op, Type, ValueId};
use crate::syntax::ast;
pub use constants::{ConstData, ConstSource, Constant, Loaded, Loader, NoFiles};

/// The result of analysing a `.nn` file.
#[derive(Clone, Debug)]
pub struct Module {
    /// The model's name.
    pub name: String,
    /// Forward graph in training mode (dropout active, batchnorm on batch statistics).
    pub train_graph: Graph,
    /// Forward graph in inference mode.
    pub infer_graph: Graph,
    /// One entry per built-in call site, in program order, for `nnc summary`.
    pub layers: Vec<LayerInfo>,
    /// The checked `train` section, if the file has one.
    pub train: Option<TrainConfig>,
    /// The values of the graphs' `constant` inputs, by input name.
    pub constants: Vec<constants::Constant>,
    /// The model's losses in the order written: the graph outputs of kind
    /// `Loss` of the training graph, by name (`loss` for `loss = ...`).
    pub losses: Vec<String>,
    /// The model-level bindings of layer values (`D = discriminator(32)`):
    /// every parameter of such a layer is named `NAME.*`. `params: D` in
    /// the `train` section selects them.
    pub layer_values: Vec<LayerValue>,
}

/// A model-level binding of a layer value.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerValue {
    /// The binding's name, the prefix of its parameters' names.
    pub name: String,
    pub span: Span,
}

/// One row of `nnc summary`.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Stable name, e.g. `e1.conv2d_1`.
    pub name: String,
    /// The built-in, e.g. `conv2d`.
    pub kind: String,
    pub output: Type,
    /// Number of trainable scalars this call site owns.
    pub params: u64,
    /// Forward floating-point operations for one sample (symbolic batch = 1);
    /// see the `flops` module (and [`catalogue`]) for the convention.
    pub flops: u64,
    pub loc: Loc,
}

/// Analyses a parsed file. Returns every error found, not just the first
/// (warnings are dropped; [`analyze_all`] returns them too).
pub fn analyze(file: &ast::File, source: &str) -> Result<Module, Vec<Diagnostic>> {
    analyze_with(file, source, &NoFiles)
}

/// [`analyze`], reading `const` declarations through `loader`.
pub fn analyze_with(file: &ast::File, source: &str, loader: &dyn Loader) -> Result<Module, Vec<Diagnostic>> {
    match analyze_all_with(file, source, loader) {
        (Some(module), _) => Ok(module),
        (None, diags) => Err(diags),
    }
}

/// Analyses a parsed file, returning the module (if there is no error) and
/// every diagnostic: all errors, and warnings (unused bindings) when there
/// is no error.
pub fn analyze_all(file: &ast::File, source: &str) -> (Option<Module>, Vec<Diagnostic>) {
    analyze_all_with(file, source, &NoFiles)
}

/// [`analyze_all`], reading `const` declarations through `loader`.
pub fn analyze_all_with(
    file: &ast::File,
    source: &str,
    loader: &dyn Loader,
) -> (Option<Module>, Vec<Diagnostic>) {
    let mut diags = vec![];
    let items = items::check_items(file, &mut diags);
    let mut config = None;
    if let Some(t) = items.train {
        let (c, d) = train_section::check_train(t, source);
        config = c;
        diags.extend(d);
    }
    let Some(model) = items.model else { return (None, diags) };
    if items.train.is_some() {
        check_has_loss(model, &mut diags);
    }
    let name = model.name.name.clone();
    let loaded = expand::load_constants(model, &items.consts, loader, &mut diags);
    let train = expand::Run::new(&name, source, &items.blocks, &loaded, Mode::Train).model(model);
    diags.extend(dedup(train.diags));
    if diags.iter().any(Diagnostic::is_error) {
        // Warnings next to errors are mostly their echoes (`h` is unused
        // because its use was misspelt); report the errors alone.
        diags.retain(Diagnostic::is_error);
        return (None, diags);
    }
    let infer = expand::Run::new(&name, source, &items.blocks, &loaded, Mode::Infer).model(model);
    // The inference run repeats the training run's warnings.
    diags.extend(dedup(infer.diags).into_iter().filter(Diagnostic::is_error));
    let (train_graph, infer_graph) = (inputs_first(train.graph), inputs_first(infer.graph));
    for graph in [&train_graph, &infer_graph] {
        if let Err(errors) = crate::ir::verify::violations(graph) {
            diags.push(internal_error(graph, &errors));
        }
    }
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let module = Module {
        name,
        train_graph,
        infer_graph,
        layers: train.layers,
        train: config,
        constants: train.constants,
        losses: train.losses,
        layer_values: train.layer_values,
    };
    // What needs both the model and the `train` section: an optimiser per loss.
    diags.extend(losses::check(&module, file));
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    (Some(module), diags)
}

/// Moves every `Input` node to the front of the graph, in the order data,
/// target, constants, parameters, state, RNG key, hyperparameters (each group in
/// creation order), and
/// renumbers operands and outputs. Expansion creates a layer's parameters
/// when it reaches the layer; consumers expect all inputs first. Inputs have
/// no operands, so moving them earlier keeps the graph in SSA order.
pub fn inputs_first(graph: Graph) -> Graph {
    let group = |node: &crate::ir::Node| match &node.op {
        Op::Input { kind, .. } => match kind {
            InputKind::Data => 0,
            InputKind::Target => 1,
            InputKind::Const => 2,
            InputKind::Param { .. } => 3,
            InputKind::State { .. } => 4,
            InputKind::Key => 5,
            InputKind::Hyper => 6,
        },
        _ => 7,
    };
    let mut order: Vec<ValueId> = (0..graph.nodes.len() as u32).map(ValueId).collect();
    order.sort_by_key(|&v| group(graph.node(v)));
    graph.rebuild(&order).finish().0
}

fn check_has_loss(model: &ast::ModelDef, diags: &mut Vec<Diagnostic>) {
    let has_loss = model.body.iter().any(|s| {
        matches!(s, ast::Stmt::Let { name, .. } if name.name == "loss") || matches!(s, ast::Stmt::Loss { .. })
    });
    if !has_loss {
        diags.push(
            Diagnostic::error(format!("model `{}` has no `loss`", model.name.name))
                .primary(model.name.span, "this model is trained but defines no loss")
                .note("help: add `loss = mse(pred, target)` (or another loss) to the model"),
        );
    }
}

/// Drops repeats of the same message at the same place (a block called
/// twice reports a problem in its body once).
fn dedup(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen: Vec<(String, Option<Span>)> = vec![];
    let mut out = vec![];
    for d in diags {
        let key = (d.message.clone(), d.labels.iter().find(|l| l.primary).map(|l| l.span));
        if !seen.contains(&key) {
            seen.push(key);
            out.push(d);
        }
    }
    out
}

fn internal_error(graph: &Graph, errors: &[crate::ir::StageError]) -> Diagnostic {
    let mut d = Diagnostic::error(format!(
        "internal compiler error: the {} graph of `{}` does not verify",
        graph.mode.name(),
        graph.name
    ));
    let first =
        errors.iter().filter_map(|e| e.value).find_map(|v| Some((v, graph.nodes.get(v.index())?.span?)));
    if let Some((v, span)) = first {
        d = d.primary(span, format!("{v} comes from here"));
    }
    for e in errors.iter().take(10) {
        d = d.note(format!("note: {e}"));
    }
    d
}
