//! Surface syntax: source text to an AST with spans, and every syntax error.
//!
//! `grammar/nn.pest` is the single definition of the syntax. A valid file is
//! parsed by it in one go. A broken file is cut into items and statements
//! (see [`recover`]) that are parsed one by one, so that all errors of a file
//! are reported in one run and every valid piece still reaches the AST.
//! Invariant: [`parse`] never panics, whatever the input.

pub mod ast;
mod build;
mod errors;
mod grammar;
mod lex;
mod print;
mod recover;

#[cfg(test)]
mod tests;

use pest::Parser;

use crate::diag::{Diagnostic, Span};
use build::Builder;
use errors::{translate, Piece, Site};
use grammar::{NnParser, Rule};
use lex::Lexed;

/// The deepest bracket nesting accepted; deeper input is rejected before the
/// (recursive) pest parser sees it.
pub const MAX_NESTING: usize = 128;

/// At most this many syntax errors are reported for one file.
const MAX_ERRORS: usize = 100;

/// Parses a whole file. Never panics. Returns the items that parsed and a
/// diagnostic for every syntax error found.
pub fn parse(source: &str) -> (ast::File, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let lexed = lex::lex(source);
    if let Some(d) = nesting_error(source, &lexed) {
        return (ast::File { items: vec![] }, vec![d]);
    }
    let (items, mut diags) = match NnParser::parse(Rule::file, source) {
        Ok(mut pairs) => {
            let mut b = Builder::new(0, &lexed.token_ends);
            let items = pairs.next().map(|p| b.file(p)).unwrap_or_default();
            (items, b.diags)
        }
        Err(err) => recover(source, &lexed, &err),
    };
    if diags.len() > MAX_ERRORS {
        diags.truncate(MAX_ERRORS);
        diags.push(Diagnostic::error(format!(
            "too many syntax errors; only the first {MAX_ERRORS} are shown"
        )));
    }
    (ast::File { items }, diags)
}

/// Parses a broken file piece by piece (see [`recover`]).
fn recover(source: &str, lexed: &Lexed, err: &pest::error::Error<Rule>) -> (Vec<ast::Item>, Vec<Diagnostic>) {
    let mut r = recover::Recovery::new(source, lexed);
    r.run();
    if r.diags.is_empty() {
        let site = Site { source, lexed, lo: 0, hi: source.len(), kind: Piece::File, end: "end of file" };
        r.diags.push(translate(err, &site));
    }
    (r.items, r.diags)
}

/// Rejects bracket nesting deeper than [`MAX_NESTING`].
fn nesting_error(source: &str, lexed: &Lexed) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for t in &lexed.tokens {
        match t.kind {
            lex::TokKind::Open => depth += 1,
            lex::TokKind::Close => depth = depth.saturating_sub(1),
            _ => continue,
        }
        if depth > MAX_NESTING {
            let text = t.text(source);
            return Some(
                Diagnostic::error("brackets are nested too deeply")
                    .primary(
                        Span { lo: t.span.lo, hi: t.span.hi },
                        format!("this `{text}` is nested more than {MAX_NESTING} deep"),
                    )
                    .note("split the expression into several bindings"),
            );
        }
    }
    None
}

/// Prints the AST of `source` as indented, stable, human-readable text, each
/// node with its `line:col` range (`nnc ir FILE --stage ast`).
pub fn print_ast(file: &ast::File, source: &str) -> String {
    print::print_file(file, source)
}
