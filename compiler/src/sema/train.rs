//! The `train` section: checked training configuration (stub until written).

use crate::diag::Diagnostic;
use crate::syntax::ast;

/// The checked `train { ... }` section.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {}

/// Checks a `train` section.
pub fn check_train(def: &ast::TrainDef, source: &str) -> (Option<TrainConfig>, Vec<Diagnostic>) {
    let _ = (def, source);
    (None, vec![])
}
