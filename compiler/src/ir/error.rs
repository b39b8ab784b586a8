//! The error of a stage that works on a graph (verifier, plan): a message
//! and, when the failure is about one node, that node's value.
//! [`crate::pipeline`] turns it into a diagnostic pointing at the node's
//! source span when the node has one.

use std::fmt;

use super::graph::{Graph, ValueId};
use crate::diag::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageError {
    /// The stage that failed (`verify`, `plan`).
    pub stage: &'static str,
    /// What is wrong: the whole text.
    pub message: String,
    /// The value the failure is about, if it is about one.
    pub value: Option<ValueId>,
    /// Where that value came from in the source, with a label for it, when
    /// the failing stage knew it (see [`StageError::located`]).
    pub source: Option<(Span, String)>,
}

impl StageError {
    /// A failure about `value`.
    pub fn at(stage: &'static str, value: ValueId, message: impl Into<String>) -> StageError {
        StageError { stage, message: message.into(), value: Some(value), source: None }
    }

    /// This failure with the source span of its value in `graph`, when the
    /// value has one: the label says which node it is.
    pub fn located(mut self, graph: &Graph) -> StageError {
        if let Some(v) = self.value {
            if let Some((span, node)) = graph.nodes.get(v.index()).and_then(|n| n.span.map(|s| (s, n))) {
                self.source = Some((span, format!("{v} `{}` comes from here", node.op.mnemonic())));
            }
        }
        self
    }

    /// A failure about no value in particular.
    pub fn new(stage: &'static str, message: impl Into<String>) -> StageError {
        StageError { stage, message: message.into(), value: None, source: None }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StageError {}

/// The failure of a stage over a whole graph (autodiff, the optimisation
/// passes): what failed (`after optimisation pass `cse` (round 1)`) and the
/// violations found, each naming its node and, where known, its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    pub context: String,
    pub errors: Vec<StageError>,
}

impl GraphError {
    /// The violations `errors` of `graph`, located in the source.
    pub fn located(context: impl Into<String>, graph: &Graph, errors: Vec<StageError>) -> GraphError {
        GraphError { context: context.into(), errors: errors.into_iter().map(|e| e.located(graph)).collect() }
    }
}

/// `context: error; error; …`, or the context alone.
impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if !self.errors.is_empty() {
            let text: Vec<String> = self.errors.iter().map(StageError::to_string).collect();
            write!(f, ": {}", text.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

impl From<String> for GraphError {
    fn from(context: String) -> GraphError {
        GraphError { context, errors: vec![] }
    }
}

impl From<&str> for GraphError {
    fn from(context: &str) -> GraphError {
        GraphError { context: context.to_string(), errors: vec![] }
    }
}

impl From<GraphError> for String {
    fn from(error: GraphError) -> String {
        error.to_string()
    }
}
