//! Optimisation passes over IR graphs.
//!
//! Each pass is a pure function from a verified graph to a verified graph
//! that computes the same outputs (bit for bit in the reference interpreter;
//! see [`fold`] for its one precision caveat and [`tiling`] for the sign of
//! zeros), never removes an input, and
//! keeps the source location and `from` origin of every node it keeps. They
//! run in the visible order of [`PASSES`]; since one pass exposes work for
//! another (a simplified `x * 1` leaves a dead constant, a folded constant
//! duplicates another), the whole list is repeated until a round changes
//! nothing, at most [`MAX_ROUNDS`] times. The verifier runs after every
//! pass, in every build, and a failure names the pass.
//!
//! - [`simplify`]: algebraic identities (`x * 1`, `neg(neg x)`, permute of
//!   permute, broadcast to the own shape, ...), each exact in IEEE arithmetic;
//! - [`tiling`]: a sum of pads that tiles an axis (the gradient of the
//!   slices cut out of one value) becomes one `concat` (exact but for the
//!   sign of zero elements, see the module);
//! - [`batching`]: the products of the steps of a sequence with one
//!   matrix (an unrolled recurrence's input projections) become one
//!   product of the whole sequence, each step a slice of it;
//! - [`fold`]: scalar constant expressions and `size` of known dimensions;
//! - [`cse`]: merges nodes computing the same value;
//! - [`dce`]: removes what no output depends on.
//!
//! All six rebuild the graph with [`rewrite::Rewriter`], which renumbers
//! values (a value is a node index) and remaps operands, outputs and origins.

pub mod batching;
pub mod cse;
pub mod dce;
pub mod fold;
pub mod rewrite;
pub mod simplify;
pub mod tiling;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use crate::ir::verify::violations;
use crate::ir::Graph;
use crate::ir::GraphError;

/// One optimisation pass: a name for traces and errors, and the transform.
pub struct Pass {
    /// Short name, e.g. `"cse"`.
    pub name: &'static str,
    /// Maps a verified graph to an equivalent verified graph.
    pub run: fn(&Graph) -> Graph,
}

/// The pipeline, in order. Simplification comes first because it exposes
/// constants to fold and duplicates to merge; dead-code elimination last
/// because every other pass leaves dead nodes behind.
pub const PASSES: &[Pass] = &[
    Pass { name: "simplify", run: simplify::run },
    Pass { name: "tiling", run: tiling::run },
    Pass { name: "batching", run: batching::run },
    Pass { name: "fold", run: fold::run },
    Pass { name: "cse", run: cse::run },
    Pass { name: "dce", run: dce::run },
];

/// The most times [`PASSES`] is run over a graph; a fixed point is normally
/// reached in two or three rounds.
pub const MAX_ROUNDS: usize = 8;

/// One pass run of [`optimize_traced`]: the pass, the round (from 1) and
/// the graph it produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub pass: &'static str,
    pub round: usize,
    pub graph: Graph,
}

/// Runs the passes of [`PASSES`] in order, repeatedly until a round changes
/// nothing (at most [`MAX_ROUNDS`] rounds), verifying the input and the
/// result of every pass. The error names the pass whose result does not
/// verify, with the verifier's messages.
pub fn optimize(graph: &Graph) -> Result<Graph, GraphError> {
    run_pipeline(graph, PASSES, &mut |_, _, _| {})
}

/// Like [`optimize`], but also returns the graph after every pass run, in
/// order (the last step's graph is the result), so that each pass's effect
/// can be inspected.
pub fn optimize_traced(graph: &Graph) -> Result<Vec<Step>, GraphError> {
    let mut steps = vec![];
    run_pipeline(graph, PASSES, &mut |pass, round, g| steps.push(Step { pass, round, graph: g.clone() }))?;
    Ok(steps)
}

/// The fixed-point driver over any list of passes; `on_step` sees the
/// result of every pass run.
fn run_pipeline(
    graph: &Graph,
    passes: &[Pass],
    on_step: &mut dyn FnMut(&'static str, usize, &Graph),
) -> Result<Graph, GraphError> {
    violations(graph).map_err(|e| GraphError::located("the graph to optimise does not verify", graph, e))?;
    let mut current = graph.clone();
    for round in 1..=MAX_ROUNDS {
        let start = current.clone();
        for pass in passes {
            current = (pass.run)(&current);
            violations(&current).map_err(|e| {
                GraphError::located(
                    format!("after optimisation pass `{}` (round {round})", pass.name),
                    &current,
                    e,
                )
            })?;
            on_step(pass.name, round, &current);
        }
        if rewrite::same_graph(&start, &current) {
            break;
        }
    }
    Ok(current)
}
