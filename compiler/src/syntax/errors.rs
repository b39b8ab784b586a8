//! Translates pest's parse errors into diagnostics a user can act on.
//!
//! pest reports the furthest position it reached, the grammar rules it tried
//! there and (with error detail on) the literal tokens it expected. This module
//! turns that into rustc-style messages ("expected `)`, found `loss`") with a
//! primary label on the offending token, using the rule names only as hints
//! ("an expression", "a type such as `f32[B, 1]`").

use pest::error::{Error, ErrorVariant, InputLocation};

use super::grammar::Rule;
use super::lex::{Lexed, TokKind};
use crate::diag::{Diagnostic, Span};

/// What kind of text was parsed, for context in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    File,
    Item,
    Head,
    Stmt,
    Entry,
}

/// Where a parsed piece of text sits in the file.
pub struct Site<'a> {
    pub source: &'a str,
    pub lexed: &'a Lexed,
    /// Byte range of the piece in the file.
    pub lo: usize,
    pub hi: usize,
    pub kind: Piece,
    /// How to describe the end of the piece ("end of line", "end of file").
    pub end: &'a str,
}

/// What the parser found at the error position.
struct Found {
    span: Span,
    text: String,
    is_keyword: bool,
    is_end: bool,
}

pub fn translate(err: &Error<Rule>, site: &Site) -> Diagnostic {
    let (rel, tokens) = match err.parse_attempts() {
        Some(a) => (a.max_position, a.expected_tokens()),
        None => (location(err), vec![]),
    };
    let rules = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => vec![],
    };
    let found = found_at(site, site.lo + rel);
    let d = message(site, &rules, &literals(&tokens), &found);
    match leading_dot_number(site, &found) {
        Some(number) => d.note(format!("help: write `0{number}`")),
        None => d,
    }
}

/// The number written with a leading `.` (`.5`, `.5e-3`) if the parser
/// stopped at its dot: the dot and the number glued to it, unless the dot
/// follows a name or a number (`a.5`), where it is not a decimal point.
fn leading_dot_number(site: &Site, found: &Found) -> Option<String> {
    if found.is_end || found.text != "." {
        return None;
    }
    let tokens = &site.lexed.tokens;
    let at = tokens.iter().position(|t| t.span == found.span)?;
    let number = tokens.get(at + 1).filter(|t| t.kind == TokKind::Number && t.span.lo == found.span.hi)?;
    let glued_to_operand = at
        .checked_sub(1)
        .map(|i| &tokens[i])
        .is_some_and(|t| t.span.hi == found.span.lo && !matches!(t.kind, TokKind::Punct | TokKind::Open));
    if glued_to_operand {
        return None;
    }
    let written = format!(".{}", number.text(site.source));
    format!("0{written}").parse::<f64>().is_ok().then_some(written)
}

fn location(err: &Error<Rule>) -> usize {
    match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((p, _)) => p,
    }
}

/// The literal tokens pest expected, without whitespace and comments.
/// (pest does not export its token type; its `Display` shows a literal as
/// itself, a range as `a..z` and a built-in rule as `BUILTIN_RULE`.)
fn literals<T: std::fmt::Display>(tokens: &[T]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for token in tokens.iter().map(|t| t.to_string()) {
        let noise =
            token.trim().is_empty() || token == "#" || token.contains("..") || token == "BUILTIN_RULE";
        if !noise && !out.contains(&token) {
            out.push(token);
        }
    }
    out
}

fn found_at(site: &Site, pos: usize) -> Found {
    let tok = site.lexed.tokens.iter().find(|t| t.span.hi as usize > pos && (t.span.lo as usize) < site.hi);
    if let Some(t) = tok {
        return Found {
            span: t.span,
            text: t.text(site.source).to_string(),
            is_keyword: t.kind == TokKind::Keyword,
            is_end: false,
        };
    }
    // Past the last token of the piece: point just after it.
    let last = site.lexed.tokens.iter().rev().find(|t| (t.span.hi as usize) <= site.hi.min(pos.max(site.lo)));
    let at = last.map_or(site.lo, |t| t.span.hi as usize).max(site.lo);
    Found { span: Span::new(at, at), text: String::new(), is_keyword: false, is_end: true }
}

fn describe_found(found: &Found, site: &Site) -> String {
    if found.is_end {
        site.end.to_string()
    } else if found.is_keyword {
        format!("keyword `{}`", found.text)
    } else {
        format!("`{}`", found.text)
    }
}

/// A readable description of a grammar rule, if it is worth naming.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr
        | Rule::compare
        | Rule::postfix
        | Rule::arith
        | Rule::term
        | Rule::unary
        | Rule::int
        | Rule::float
        | Rule::string
        | Rule::boolean
        | Rule::call
        | Rule::list
        | Rule::paren
        | Rule::path => "an expression",
        Rule::ident | Rule::arg_name | Rule::param_type => "a name",
        Rule::tensor_type => "a type such as `f32[B, 1]`",
        Rule::dim_int => "a dimension (an integer or a name)",
        // A subscript `x[...]` continues an expression like an operator.
        Rule::pipe_op | Rule::add_op | Rule::mul_op | Rule::cmp_op | Rule::index => "an operator",
        Rule::param => "a parameter",
        Rule::arg => "an argument",
        Rule::decl
        | Rule::output_stmt
        | Rule::return_stmt
        | Rule::let_stmt
        | Rule::loss_stmt
        | Rule::const_stmt
        | Rule::kw_const => "a statement",
        Rule::train_entry => "an entry `key = value`",
        Rule::block_def | Rule::model_def | Rule::train_def => "`block`, `model` or `train`",
        Rule::decl_kind | Rule::kw_input | Rule::kw_target => "a statement",
        Rule::EOI => "end of input",
        _ => return None,
    })
}

fn describe_literal(tok: &str) -> String {
    match tok {
        "+" | "-" | "*" | "/" | "|>" | "<" | "<=" | ">" | ">=" | "==" | "!=" | "[" => {
            "an operator".to_string()
        }
        "true" | "false" => "an expression".to_string(),
        "block" | "model" | "train" => "`block`, `model` or `train`".to_string(),
        "input" | "target" | "output" | "return" | "const" => "a statement".to_string(),
        _ => format!("`{tok}`"),
    }
}

/// Joins alternatives the way rustc does: "`a`", "`a` or `b`",
/// "one of `a`, `b` or `c`".
fn join(items: &[String]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("one of {}, or {last}", init.join(", ")),
    }
}

/// The expectations in the order they are worth reading: closing and
/// separating tokens first, then rule descriptions, then "an operator".
fn expectations(rules: &[Rule], literals: &[String]) -> Vec<String> {
    let described: Vec<&str> = rules.iter().filter_map(|r| describe_rule(*r)).collect();
    let wants_expr = described.contains(&"an expression") || described.contains(&"an argument");
    let wants_name = described.contains(&"a name");
    let operator = described.contains(&"an operator");
    let literals: Vec<String> = literals
        .iter()
        .filter(|l| !(operator && matches!(l.as_str(), "(" | "." | "e" | "E")))
        .filter(|l| {
            !(wants_expr && matches!(l.as_str(), "\"" | "(" | "-" | "[" | "_" | "true" | "false" | "return"))
        })
        .filter(|l| !(wants_name && l.as_str() == "_"))
        .cloned()
        .collect();
    let literals = literals.as_slice();
    let mut out: Vec<String> = vec![];
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for l in literals.iter().filter(|l| l.chars().all(|c| !c.is_alphanumeric())) {
        let d = describe_literal(l);
        if d != "an operator" {
            push(d);
        }
    }
    for d in rules.iter().filter_map(|r| describe_rule(*r)) {
        if d != "an operator" && d != "end of input" {
            push(d.to_string());
        }
    }
    for l in literals.iter().filter(|l| l.chars().any(|c| c.is_alphanumeric())) {
        push(describe_literal(l));
    }
    let operator = operator || literals.iter().any(|l| describe_literal(l) == "an operator");
    if operator {
        push("an operator".to_string());
    }
    out
}

fn message(site: &Site, rules: &[Rule], literals: &[String], found: &Found) -> Diagnostic {
    let wants_name = rules.iter().any(|r| matches!(r, Rule::ident | Rule::arg_name | Rule::param_type));
    if wants_name {
        if let Some(kw) = keyword_before(site, found) {
            return keyword_as_name(&kw);
        }
    }
    let found_text = describe_found(found, site);
    if in_decl(site) {
        if let Some(d) = decl_message(site, found, &found_text, literals) {
            return d;
        }
    }
    if site.kind == Piece::Entry && literals.iter().any(|l| l == "=") {
        return Diagnostic::error(format!("expected `=` after the key, found {found_text}"))
            .primary(found.span, "expected `=`")
            .note("train entries are written `key = value`");
    }
    let mut expected = expectations(rules, literals);
    let ends_here = rules.contains(&Rule::EOI) && site.kind != Piece::File;
    if ends_here {
        expected.push(format!(
            "the end of the {}",
            if site.kind == Piece::Entry { "entry" } else { "statement" }
        ));
    }
    let expected = join(&expected);
    let d = Diagnostic::error(format!("expected {expected}, found {found_text}"))
        .primary(found.span, format!("expected {expected}"));
    if ends_here {
        return d.note("statements are separated by line breaks or `;`");
    }
    d
}

/// A keyword where a name belongs: either the found token, or the token that
/// ends where the error is (pest reports the position after a keyword that
/// its `!keyword` lookahead consumed).
fn keyword_before(site: &Site, found: &Found) -> Option<Found> {
    if found.is_keyword {
        return Some(Found { span: found.span, text: found.text.clone(), is_keyword: true, is_end: false });
    }
    let t = site.lexed.tokens.iter().find(|t| t.span.hi == found.span.lo)?;
    let leading = t.span.lo as usize <= site.lo;
    (t.kind == TokKind::Keyword && !leading).then(|| Found {
        span: t.span,
        text: t.text(site.source).to_string(),
        is_keyword: true,
        is_end: false,
    })
}

fn keyword_as_name(kw: &Found) -> Diagnostic {
    Diagnostic::error(format!("expected a name, found keyword `{}`", kw.text))
        .primary(kw.span, "expected a name")
        .note(format!("`{}` is a keyword and cannot be used as a name", kw.text))
}

/// The piece is an `input` or `target` declaration.
fn in_decl(site: &Site) -> bool {
    site.kind == Piece::Stmt
        && site
            .lexed
            .tokens
            .iter()
            .find(|t| t.span.lo as usize >= site.lo)
            .is_some_and(|t| matches!(t.text(site.source), "input" | "target"))
}

/// Errors in the type of a declaration: after the `:`, or inside `[...]`.
fn decl_message(site: &Site, found: &Found, found_text: &str, literals: &[String]) -> Option<Diagnostic> {
    let before: Vec<&str> = site
        .lexed
        .tokens
        .iter()
        .filter(|t| t.span.lo as usize >= site.lo && t.span.hi <= found.span.lo)
        .map(|t| t.text(site.source))
        .collect();
    let colon = before.iter().position(|t| *t == ":")?;
    let in_dims = before[colon..].contains(&"[");
    if in_dims && before.last().is_some_and(|t| *t == "[" || *t == ",") {
        return Some(
            Diagnostic::error(format!("expected a dimension, found {found_text}"))
                .primary(found.span, "expected an integer or a name")
                .note("dimensions are integers (`64`) or symbolic names (`B`)"),
        );
    }
    if in_dims {
        return None;
    }
    let _ = literals;
    Some(
        Diagnostic::error(format!("expected a type such as `f32[B, 1]`, found {found_text}"))
            .primary(found.span, "expected a type")
            .note("a tensor type is an element type and its dimensions: `f32[B, 1]`, `i32[B]`"),
    )
}
