//! File-level checks: one model, at most one train section, well-formed blocks.
//!
//! These run once per file, before any expansion, so that a problem in a
//! block's definition is reported once rather than at every call.

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::syntax::ast::{BlockDef, File, Item, ModelDef, Stmt, TrainDef};

use super::catalogue;

/// The block parameter types a user may write.
pub const PARAM_TYPES: &[&str] = &["int", "float", "bool", "str"];

/// A block definition and whether its signature and body are usable.
pub struct BlockInfo<'a> {
    pub def: &'a BlockDef,
    /// False if its signature is malformed or it has no `return`; calls to
    /// it then evaluate to an error value without further diagnostics.
    pub ok: bool,
}

/// The items of a file, sorted out.
pub struct Items<'a> {
    pub model: Option<&'a ModelDef>,
    pub train: Option<&'a TrainDef>,
    pub blocks: HashMap<String, BlockInfo<'a>>,
    /// The file-level `const` declarations, in order.
    pub consts: Vec<&'a crate::syntax::ast::ConstDef>,
}

/// Sorts the items of a file, reporting duplicates and malformed blocks.
pub fn check_items<'a>(file: &'a File, diags: &mut Vec<Diagnostic>) -> Items<'a> {
    let mut items = Items { model: None, train: None, blocks: HashMap::new(), consts: vec![] };
    for item in &file.items {
        match item {
            Item::Model(m) => add_model(&mut items, m, diags),
            Item::Train(t) => add_train(&mut items, t, diags),
            Item::Block(b) => add_block(&mut items, b, diags),
            Item::Const(c) => items.consts.push(c),
        }
    }
    if items.model.is_none() {
        diags
            .push(Diagnostic::error("this file has no `model`").note(
                "help: a `.nn` file needs exactly one `model NAME { ... }` with its inputs and layers",
            ));
    }
    items
}

fn add_model<'a>(items: &mut Items<'a>, m: &'a ModelDef, diags: &mut Vec<Diagnostic>) {
    match items.model {
        Some(first) => diags.push(
            Diagnostic::error("a file can define only one `model`")
                .primary(m.name.span, "second model")
                .secondary(first.name.span, "first model defined here")
                .note("help: put each model in its own file; shared layers can be `block`s"),
        ),
        None => items.model = Some(m),
    }
}

fn add_train<'a>(items: &mut Items<'a>, t: &'a TrainDef, diags: &mut Vec<Diagnostic>) {
    match items.train {
        Some(first) => diags.push(
            Diagnostic::error("a file can have only one `train` section")
                .primary(t.span, "second `train` section")
                .secondary(first.span, "first `train` section here"),
        ),
        None => items.train = Some(t),
    }
}

fn add_block<'a>(items: &mut Items<'a>, b: &'a BlockDef, diags: &mut Vec<Diagnostic>) {
    let name = &b.name.name;
    if catalogue::find(name).is_some() {
        diags.push(
            Diagnostic::error(format!("block `{name}` has the name of a built-in function"))
                .primary(b.name.span, "this name is taken by a built-in")
                .note(format!("help: rename the block, e.g. `my_{name}`")),
        );
        return;
    }
    if let Some(first) = items.blocks.get(name) {
        diags.push(
            Diagnostic::error(format!("block `{name}` is defined twice"))
                .primary(b.name.span, "second definition")
                .secondary(first.def.name.span, "first definition here"),
        );
        return;
    }
    let signature_ok = check_signature(b, diags);
    let body_ok = check_body(b, diags);
    items.blocks.insert(name.clone(), BlockInfo { def: b, ok: signature_ok && body_ok });
}

fn check_signature(b: &BlockDef, diags: &mut Vec<Diagnostic>) -> bool {
    let name = &b.name.name;
    let mut ok = true;
    match b.params.first() {
        None => {
            diags.push(
                Diagnostic::error(format!("block `{name}` has no input"))
                    .primary(b.name.span, "needs a tensor input")
                    .note(format!(
                        "help: the first parameter is the tensor input: `block {name}(x) {{ ... }}`"
                    )),
            );
            ok = false;
        }
        Some(first) if first.ty.is_some() => {
            diags.push(
                Diagnostic::error(format!("the first parameter of block `{name}` must be a tensor"))
                    .primary(first.span, "this is a constant")
                    .note("help: tensor parameters have no type: `block b(x, c: int)`"),
            );
            ok = false;
        }
        Some(_) => {}
    }
    let mut seen: HashMap<&str, &crate::syntax::ast::ParamDef> = HashMap::new();
    for p in &b.params {
        if let Some(first) = seen.get(p.name.name.as_str()) {
            diags.push(
                Diagnostic::error(format!("parameter `{}` is declared twice", p.name.name))
                    .primary(p.name.span, "second declaration")
                    .secondary(first.name.span, "first declaration here"),
            );
            ok = false;
        }
        seen.insert(&p.name.name, p);
        ok &= check_param(p, diags);
    }
    ok
}

fn check_param(p: &crate::syntax::ast::ParamDef, diags: &mut Vec<Diagnostic>) -> bool {
    match &p.ty {
        Some(ty) if !PARAM_TYPES.contains(&ty.name.as_str()) => {
            diags.push(
                Diagnostic::error(format!("unknown parameter type `{}`", ty.name))
                    .primary(ty.span, "not a constant type")
                    .note("note: block constants are `int`, `float`, `bool` or `str`; tensors have no type"),
            );
            false
        }
        None if p.default.is_some() => {
            diags.push(
                Diagnostic::error(format!("tensor parameter `{}` cannot have a default", p.name.name))
                    .primary(p.span, "tensor parameter with a default")
                    .note("note: only typed constants (`c: int = 16`) have defaults"),
            );
            false
        }
        _ => true,
    }
}

fn check_body(b: &BlockDef, diags: &mut Vec<Diagnostic>) -> bool {
    let mut returned: Option<&Stmt> = None;
    for stmt in &b.body {
        if let Some(ret) = returned {
            diags.push(
                Diagnostic::error("statement after `return`")
                    .primary(stmt.span(), "never evaluated")
                    .secondary(ret.span(), "the block returns here"),
            );
            continue;
        }
        match stmt {
            Stmt::Return { .. } => returned = Some(stmt),
            Stmt::Decl { span, .. } => diags.push(
                Diagnostic::error("inputs and targets are declared in the model, not in a block")
                    .primary(*span, "not allowed in a block")
                    .note("help: pass the tensor to the block as a parameter"),
            ),
            Stmt::Output { span, .. } => diags.push(
                Diagnostic::error("`output` belongs in the model, not in a block")
                    .primary(*span, "not allowed in a block"),
            ),
            Stmt::Loss { span, .. } => diags.push(
                Diagnostic::error("a named loss belongs in the model, not in a block")
                    .primary(*span, "not allowed in a block")
                    .note("help: return the value from the block and write `loss NAME = ...` in the model"),
            ),
            Stmt::Const { span, .. } => diags.push(
                Diagnostic::error("constants are declared in the model, not in a block")
                    .primary(*span, "not allowed in a block")
                    .note("help: declare it in the model and pass it to the block as a parameter"),
            ),
            Stmt::Let { .. } => {}
        }
    }
    if returned.is_none() {
        diags.push(
            Diagnostic::error(format!("block `{}` has no `return`", b.name.name))
                .primary(b.name.span, "this block returns nothing")
                .note("help: end the block with `return EXPR`"),
        );
        return false;
    }
    true
}
