//! The losses of a model against the optimisers of its `train` section.
//!
//! The section is checked on its own (`train_section`), the model on its
//! own (`expand`); this module checks what needs both: every loss has
//! exactly one optimiser (`optimizer NAME = ...`; a plain `optimizer =
//! ...` is the optimiser of the loss `loss`), every optimiser names a loss
//! of the model, and every name in an optimiser's `params:` is a layer
//! value of the model (`D = discriminator(32)`) that owns parameters.
//! Optimisers may update overlapping parameters: each keeps its own state
//! (`optim.NAME.PARAM.SLOT`), and the later step sees what the earlier one
//! wrote.

use crate::config::{LossOptimizer, ParamSet, TrainConfig, DEFAULT_LOSS};
use crate::diag::{Diagnostic, Span};
use crate::ir::{InputKind, Op};
use crate::suggest::{closest, did_you_mean, names_list};
use crate::syntax::ast::{self, DeclKind, Item, Stmt};

use super::Module;

/// The diagnostics of `module`'s losses against the optimisers of its
/// `train` section (none without a section). `file` is the file the
/// module was analysed from: the loss statements and bindings it names are
/// found there.
pub(super) fn check(module: &Module, file: &ast::File) -> Vec<Diagnostic> {
    let (Some(config), Some(model)) = (&module.train, model_of(file, &module.name)) else {
        return vec![];
    };
    let cx = Cx { module, model, file };
    let mut diags = vec![];
    cx.optimizers_of_losses(config, &mut diags);
    for o in &config.optimizers {
        if let ParamSet::Layers(layers) = &o.params {
            for layer in layers {
                if let Some(d) = cx.layer(&layer.name, layer.span, o) {
                    diags.push(d);
                }
            }
        }
    }
    diags
}

fn model_of<'f>(file: &'f ast::File, name: &str) -> Option<&'f ast::ModelDef> {
    file.items.iter().find_map(|i| match i {
        Item::Model(m) if m.name.name == name => Some(m),
        _ => None,
    })
}

struct Cx<'m> {
    module: &'m Module,
    model: &'m ast::ModelDef,
    file: &'m ast::File,
}

impl Cx<'_> {
    /// Every loss has one optimiser and every optimiser a loss. (Two
    /// optimisers of one loss are the section's own error.)
    fn optimizers_of_losses(&self, config: &TrainConfig, diags: &mut Vec<Diagnostic>) {
        let losses = &self.module.losses;
        let model = &self.model.name.name;
        let written: Vec<&LossOptimizer> = config.optimizers.iter().filter(|o| o.span.is_some()).collect();
        // `optimizer = ...` alone in front of several losses: one mistake.
        if let ([only], true) = (written.as_slice(), losses.len() > 1) {
            if !only.named {
                let mut d = Diagnostic::error(format!(
                    "model `{model}` has {} losses but the `train` section has one optimizer without a name",
                    losses.len()
                ))
                .primary(only.span.unwrap_or_default(), "the optimizer of the loss `loss` only");
                for loss in losses {
                    if let Some(span) = self.loss_span(loss) {
                        d = d.secondary(span, format!("the loss `{loss}`"));
                    }
                }
                let example: Vec<String> = losses.iter().map(|l| format!("`optimizer {l} = ...`")).collect();
                diags
                    .push(d.note(format!("help: give every loss its own optimizer: {}", example.join(", "))));
                return;
            }
        }
        // A loss without an optimizer whose name an optimizer misspells is
        // that optimizer's mistake, reported once, on the optimizer.
        let unoptimized: Vec<&str> =
            losses.iter().filter(|l| config.optimizer_of(l).is_none()).map(String::as_str).collect();
        let mut misspelt: Vec<&str> = vec![];
        for o in &written {
            if losses.contains(&o.loss) {
                continue;
            }
            if let Some(meant) = closest(&o.loss, unoptimized.iter().copied()) {
                misspelt.push(meant);
            }
            let span = o.span.unwrap_or_default();
            let mut d = if o.named {
                Diagnostic::error(format!("model `{model}` has no loss `{}`", o.loss))
                    .primary(span, "no such loss")
            } else {
                Diagnostic::error(format!(
                    "`optimizer` without a name is the optimizer of the loss `{DEFAULT_LOSS}`, which model \
                     `{model}` does not define"
                ))
                .primary(span, format!("the optimizer of `{DEFAULT_LOSS}`"))
            };
            d = match losses.as_slice() {
                [] => d,
                [one] if !o.named => {
                    d.note(format!("help: name the loss it optimizes: `optimizer {one} = ...`"))
                }
                _ => {
                    let names: Vec<&str> = losses.iter().map(String::as_str).collect();
                    d.note(format!("the losses of `{model}`: {}", names_list(&names)))
                }
            };
            if o.named {
                if let Some(help) = did_you_mean(&o.loss, losses.iter().map(String::as_str)) {
                    d = d.note(help);
                }
            }
            diags.push(d);
        }
        // One optimizer of an unknown loss and one loss without an
        // optimizer: one mistake too.
        let unknown = written.iter().filter(|o| !losses.contains(&o.loss)).count();
        if let (1, [only]) = (unknown, unoptimized.as_slice()) {
            misspelt.push(only);
        }
        for loss in losses {
            // The default optimiser (a section without `optimizer`) covers `loss`.
            if config.optimizer_of(loss).is_some() || misspelt.contains(&loss.as_str()) {
                continue;
            }
            let mut d = Diagnostic::error(format!("the loss `{loss}` has no optimizer"));
            if let Some(span) = self.loss_span(loss) {
                d = d.primary(span, "this loss is not optimized");
            }
            let how =
                if loss == DEFAULT_LOSS { "optimizer".to_string() } else { format!("optimizer {loss}") };
            diags.push(d.note(format!(
                "help: add `{how} = adam(lr: 1e-3)` to the `train` section (`params: LAYER` updates only that \
                 layer's parameters)"
            )));
        }
    }

    /// The error of `name` in the `params:` of `o`, if it is not a layer
    /// value of the model that owns parameters.
    fn layer(&self, name: &str, span: Span, o: &LossOptimizer) -> Option<Diagnostic> {
        let model = &self.model.name.name;
        if let Some(value) = self.module.layer_values.iter().find(|l| l.name == name) {
            let owns = self.module.train_graph.inputs().any(|(_, node)| match &node.op {
                Op::Input { name: param, kind: InputKind::Param { .. } } => {
                    param.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'))
                }
                _ => false,
            });
            if owns {
                return None;
            }
            return Some(
                Diagnostic::error(format!(
                    "layer `{name}` has no parameters for `optimizer {}` to train",
                    o.loss
                ))
                .primary(span, "no parameters")
                .secondary(value.span, format!("`{name}` is bound here")),
            );
        }
        let layers: Vec<&str> = self.module.layer_values.iter().map(|l| l.name.as_str()).collect();
        let mut d = match self.what(name) {
            Some((what, at)) => {
                let d = Diagnostic::error(format!("`{name}` is {what}, not a layer"))
                    .primary(span, "`params` takes layer values");
                match at {
                    Some(at) => d.secondary(at, format!("`{name}` is defined here")),
                    None => d,
                }
            }
            None => {
                let d = Diagnostic::error(format!("model `{model}` has no layer value `{name}`"))
                    .primary(span, "not a layer value of the model");
                match did_you_mean(name, layers.iter().copied()) {
                    Some(help) => d.note(help),
                    None => d,
                }
            }
        };
        d = if layers.is_empty() {
            d.note(format!(
                "help: bind the layer to a name in the model (`{name} = dense(16)`, then `x |> {name}`) and \
                 name that here"
            ))
        } else {
            d.note(format!("the layer values of `{model}`: {}", names_list(&layers)))
        };
        if name == "weights" {
            d = d.note("help: `params: params` updates every parameter");
        }
        Some(d)
    }

    /// What `name` is in the model when it is not a layer value, and where
    /// it is defined; `None` when the model does not define it.
    fn what(&self, name: &str) -> Option<(String, Option<Span>)> {
        let model = &self.model.name.name;
        let mut found = None;
        for stmt in &self.model.body {
            match stmt {
                Stmt::Decl { kind, name: n, .. } if n.name == name => {
                    let kind = if *kind == DeclKind::Input { "an input" } else { "a target" };
                    found = Some((format!("{kind} of model `{model}`"), Some(n.span)));
                }
                Stmt::Const { name: n, .. } if n.name == name => {
                    found = Some(("a constant".to_string(), Some(n.span)));
                }
                Stmt::Loss { name: n, .. } if n.name == name => {
                    found = Some(("a loss".to_string(), Some(n.span)));
                }
                Stmt::Let { name: n, .. } if n.name == name && name == DEFAULT_LOSS => {
                    found = Some(("the loss".to_string(), Some(n.span)));
                }
                Stmt::Let { name: n, .. } if n.name == name => {
                    found = Some(("a tensor".to_string(), Some(n.span)));
                }
                _ => {}
            }
        }
        if found.is_some() {
            return found;
        }
        if matches!(name, "params" | "weights") {
            return Some((format!("the list of the model's {name}"), None));
        }
        for item in &self.file.items {
            if let Item::Block(b) = item {
                if b.name.name == name {
                    return Some(("a block".to_string(), Some(b.name.span)));
                }
            }
        }
        super::catalogue::find(name).map(|_| ("a built-in".to_string(), None))
    }

    /// The name of the statement that defines the loss `loss`.
    fn loss_span(&self, loss: &str) -> Option<Span> {
        self.model.body.iter().rev().find_map(|stmt| match stmt {
            Stmt::Loss { name, .. } if name.name == loss => Some(name.span),
            Stmt::Let { name, .. } if name.name == loss && loss == DEFAULT_LOSS => Some(name.span),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::{render_plain, Diagnostic};
    use crate::pipeline::compile;

    /// A model with the losses `first` (of the layer value `A`) and
    /// `second` (of `C`), and `section` as the body of its `train` section
    /// after `data`.
    fn heads(section: &str) -> String {
        format!(
            "model heads {{\n  input x: f32[B, 1]\n  target y: f32[B, 1]\n  A = dense(1)\n  C = dense(1)\n  \
             R = dropout(0.5)\n  pa = x |> R |> A\n  loss first = mse(pa, y)\n  loss second = mse(x |> C, y)\n}}\n\
             train {{\n  data = synthetic.sine\n{section}\n}}\n"
        )
    }

    /// The errors of `src`, rendered.
    fn errors(src: &str) -> (Vec<Diagnostic>, String) {
        match compile(src) {
            Ok(_) => panic!("compiles:\n{src}"),
            Err(diags) => {
                let text = render_plain("m.nn", src, &diags);
                (diags, text)
            }
        }
    }

    /// Asserts one error with `message`, its primary label on `primary`.
    fn single(src: &str, message: &str, primary: &str) -> Diagnostic {
        let (diags, text) = errors(src);
        assert_eq!(diags.len(), 1, "{text}");
        assert_eq!(diags[0].message, message, "{text}");
        let label = diags[0].labels.iter().find(|l| l.primary).expect("a primary label");
        assert_eq!(&src[label.span.range()], primary, "{text}");
        diags[0].clone()
    }

    fn noted(d: &Diagnostic, note: &str) {
        assert!(d.notes.iter().any(|n| n.contains(note)), "no note {note:?}: {:#?}", d.notes);
    }

    #[test]
    fn every_loss_with_its_optimizer_compiles() {
        // Overlapping parameters are allowed: each optimizer keeps its state.
        let src =
            heads("  optimizer second = sgd(0.1, params: [C, A])\n  optimizer first = adam(1e-3, params: A)");
        let compiled = compile(&src).unwrap_or_else(|d| panic!("{}", render_plain("m.nn", &src, &d)));
        let losses: Vec<&str> =
            compiled.module.train.as_ref().unwrap().optimizers.iter().map(|o| o.loss.as_str()).collect();
        assert_eq!(losses, ["second", "first"]);
        assert_eq!(compiled.module.losses, ["first", "second"]);
    }

    #[test]
    fn a_loss_without_an_optimizer() {
        let d = single(
            &heads("  optimizer first = adam(1e-3, params: A)"),
            "the loss `second` has no optimizer",
            "second",
        );
        noted(&d, "help: add `optimizer second = adam(lr: 1e-3)` to the `train` section");
        // No `optimizer` at all: each loss but `loss` needs one.
        let (diags, text) = errors(&heads(""));
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            ["the loss `first` has no optimizer", "the loss `second` has no optimizer"],
            "{text}"
        );
    }

    #[test]
    fn an_optimizer_of_a_loss_the_model_lacks() {
        let src =
            heads("  optimizer first = adam(1e-3, params: A)\n  optimizer secnd = adam(1e-3, params: C)");
        let d = single(&src, "model `heads` has no loss `secnd`", "secnd");
        noted(&d, "the losses of `heads`: `first`, `second`");
        noted(&d, "help: did you mean `second`?");
        // The plain `optimizer` of a model whose one loss has a name.
        let src =
            "model m {\n  input x: f32[B, 1]\n  target y: f32[B, 1]\n  loss fit = mse(x |> dense(1), y)\n}\n\
                   train {\n  data = synthetic.sine\n  optimizer = adam(1e-3)\n}\n";
        let d = single(
            src,
            "`optimizer` without a name is the optimizer of the loss `loss`, which model `m` does not define",
            "optimizer",
        );
        noted(&d, "help: name the loss it optimizes: `optimizer fit = ...`");
    }

    #[test]
    fn one_unnamed_optimizer_for_several_losses() {
        let d = single(
            &heads("  optimizer = adam(1e-3)"),
            "model `heads` has 2 losses but the `train` section has one optimizer without a name",
            "optimizer",
        );
        noted(
            &d,
            "help: give every loss its own optimizer: `optimizer first = ...`, `optimizer second = ...`",
        );
        assert_eq!(d.labels.iter().filter(|l| !l.primary).count(), 2, "a label at each loss");
    }

    #[test]
    fn params_name_layer_values_and_say_what_else_they_name() {
        let with = |params: &str| {
            heads(&format!(
                "  optimizer first = adam(1e-3, params: {params})\n  optimizer second = adam(1e-3, params: C)"
            ))
        };
        let d = single(&with("Ax"), "model `heads` has no layer value `Ax`", "Ax");
        noted(&d, "help: did you mean `A`?");
        noted(&d, "the layer values of `heads`: `A`, `C`, `R`");
        single(&with("pa"), "`pa` is a tensor, not a layer", "pa");
        single(&with("x"), "`x` is an input of model `heads`, not a layer", "x");
        single(&with("y"), "`y` is a target of model `heads`, not a layer", "y");
        single(&with("second"), "`second` is a loss, not a layer", "second");
        single(&with("dense"), "`dense` is a built-in, not a layer", "dense");
        let d =
            single(&with("weights"), "`weights` is the list of the model's weights, not a layer", "weights");
        noted(&d, "help: `params: params` updates every parameter");
        single(&with("R"), "layer `R` has no parameters for `optimizer first` to train", "R");
    }
}
