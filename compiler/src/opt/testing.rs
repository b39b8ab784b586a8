//! Test helpers shared by the passes' tests: IR text in, IR text out.

use crate::ir::parse::parse;
use crate::ir::print::print;
use crate::ir::verify::verify;
use crate::ir::Graph;

/// Parses IR text that must be a verified graph.
pub fn parse_ok(text: &str) -> Graph {
    let graph = parse(text).unwrap_or_else(|e| panic!("bad test IR: {e}\n{text}"));
    if let Err(errors) = verify(&graph) {
        panic!("test IR does not verify: {errors:#?}\n{text}");
    }
    graph
}

/// Checks that `graph` verifies and prints as `expected` does (so expected
/// text may be aligned freely and indented).
pub fn check_text(case: &str, graph: &Graph, expected: &str) {
    if let Err(errors) = verify(graph) {
        panic!("{case}: result does not verify: {errors:#?}\n{}", print(graph));
    }
    let expected = print(&parse_ok(expected));
    let actual = print(graph);
    assert_eq!(actual, expected, "{case}\n--- actual ---\n{actual}--- expected ---\n{expected}");
}

/// Runs `pass` on the graph `input` and compares the result with `expected`.
pub fn check(pass: fn(&Graph) -> Graph, case: &str, input: &str, expected: &str) {
    check_text(case, &pass(&parse_ok(input)), expected);
}

/// Runs [`check`] on every `(name, input, expected)` case of a table.
pub fn check_all(pass: fn(&Graph) -> Graph, cases: &[(&str, &str, &str)]) {
    for (case, input, expected) in cases {
        check(pass, case, input, expected);
    }
}
