//! Surface syntax: the pest grammar in `grammar/nn.pest` to an AST with spans.

pub mod ast;

use crate::diag::Diagnostic;

/// Parses a whole file. Never panics. Returns the items that parsed and a
/// diagnostic for every syntax error found.
pub fn parse(source: &str) -> (ast::File, Vec<Diagnostic>) {
    let _ = source;
    (ast::File { items: vec![] }, vec![Diagnostic::error("parser not built yet")])
}

/// Prints the AST as indented text (`nnc ir FILE --stage ast`).
pub fn print_ast(file: &ast::File) -> String {
    format!("{file:#?}")
}
