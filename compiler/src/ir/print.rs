//! The IR text format: printer.

use super::Graph;

/// Prints a graph in the stable text format.
pub fn print(graph: &Graph) -> String {
    format!("{graph:#?}")
}
