//! The error of a stage that works on a graph (verifier, plan): a message
//! and, when the failure is about one node, that node's value.
//! [`crate::pipeline`] turns it into a diagnostic pointing at the node's
//! source span when the node has one.

use std::fmt;

use super::graph::ValueId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageError {
    /// The stage that failed (`verify`, `plan`).
    pub stage: &'static str,
    /// What is wrong: the whole text.
    pub message: String,
    /// The value the failure is about, if it is about one.
    pub value: Option<ValueId>,
}

impl StageError {
    /// A failure about `value`.
    pub fn at(stage: &'static str, value: ValueId, message: impl Into<String>) -> StageError {
        StageError { stage, message: message.into(), value: Some(value) }
    }

    /// A failure about no value in particular.
    pub fn new(stage: &'static str, message: impl Into<String>) -> StageError {
        StageError { stage, message: message.into(), value: None }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StageError {}
