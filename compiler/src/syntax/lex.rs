//! A tolerant tokenizer used only for error recovery and lexical diagnostics.
//!
//! pest owns the grammar; this lexer never fails and exists so that the
//! parser can (1) reject hostile nesting before pest recurses, (2) report
//! lexical errors (stray characters, unterminated strings, malformed numbers)
//! with precise messages, and (3) cut a broken file into items and statements
//! that are re-parsed one by one.

use crate::diag::{Diagnostic, Span};

/// The reserved words of the language; none of them is an identifier.
pub const KEYWORDS: &[&str] =
    &["block", "model", "train", "input", "target", "output", "return", "const", "true", "false"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokKind {
    Ident,
    Keyword,
    Number,
    Str,
    /// Operators and separators: `|> = : , . ... ; + - * / < > <= >= == !=`.
    Punct,
    /// `(`, `[` or `{`.
    Open,
    /// `)`, `]` or `}`.
    Close,
    /// A character that starts no token.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokKind,
    pub span: Span,
    /// The token is the first one on its line.
    pub line_start: bool,
}

impl Token {
    pub fn text<'s>(&self, source: &'s str) -> &'s str {
        source.get(self.span.range()).unwrap_or("")
    }

    pub fn is(&self, source: &str, text: &str) -> bool {
        self.text(source) == text
    }
}

/// The tokens of a source text and the lexical errors found in it.
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub errors: Vec<Diagnostic>,
    /// For each entry of `errors`, the span it is about (to attribute errors
    /// to the item or statement that contains them).
    pub error_spans: Vec<Span>,
    /// The end offset of every token, ascending.
    pub token_ends: Vec<u32>,
}

impl Lexed {
    /// The lexical errors whose span lies within `lo..hi`.
    pub fn errors_in(&self, lo: usize, hi: usize) -> Vec<Diagnostic> {
        self.error_spans
            .iter()
            .zip(&self.errors)
            .filter(|(s, _)| s.lo as usize >= lo && (s.lo as usize) < hi.max(lo + 1))
            .map(|(_, d)| d.clone())
            .collect()
    }
}

pub fn lex(source: &str) -> Lexed {
    let mut lexer = Lexer { src: source, pos: 0, line_start: true, out: Vec::new(), errors: vec![] };
    lexer.run();
    let (error_spans, errors) = lexer.errors.into_iter().unzip();
    let token_ends = lexer.out.iter().map(|t| t.span.hi).collect();
    Lexed { tokens: lexer.out, errors, error_spans, token_ends }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line_start: bool,
    out: Vec<Token>,
    errors: Vec<(Span, Diagnostic)>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.src.get(self.pos + offset..).and_then(|s| s.chars().next())
    }

    fn eat_while(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                '\n' => {
                    self.pos += 1;
                    self.line_start = true;
                }
                ' ' | '\t' | '\r' => self.pos += 1,
                '#' => self.eat_while(|c| c != '\n'),
                _ => self.token(c),
            }
        }
    }

    fn push(&mut self, kind: TokKind, lo: usize) {
        let span = Span::new(lo, self.pos);
        self.out.push(Token { kind, span, line_start: self.line_start });
        self.line_start = false;
    }

    fn error(&mut self, span: Span, diag: Diagnostic) {
        self.errors.push((span, diag));
    }

    fn token(&mut self, c: char) {
        let lo = self.pos;
        if is_ident_start(c) {
            self.eat_while(is_ident_char);
            let kind =
                if KEYWORDS.contains(&&self.src[lo..self.pos]) { TokKind::Keyword } else { TokKind::Ident };
            return self.push(kind, lo);
        }
        if c.is_ascii_digit() {
            return self.number(lo);
        }
        if c == '"' {
            return self.string(lo);
        }
        let pair = |second: char| self.peek_at(1) == Some(second);
        if c == '|' && pair('>') || matches!(c, '<' | '>' | '=' | '!') && pair('=') {
            self.pos += 2;
            return self.push(TokKind::Punct, lo);
        }
        if c == '.' && pair('.') && self.peek_at(2) == Some('.') {
            self.pos += 3;
            return self.push(TokKind::Punct, lo);
        }
        self.pos += c.len_utf8();
        let kind = match c {
            '=' | ':' | ',' | '.' | ';' | '+' | '-' | '*' | '/' | '<' | '>' => TokKind::Punct,
            '(' | '[' | '{' => TokKind::Open,
            ')' | ']' | '}' => TokKind::Close,
            _ => TokKind::Unknown,
        };
        if kind == TokKind::Unknown {
            self.unknown_char(c, lo);
        }
        self.push(kind, lo);
    }

    fn unknown_char(&mut self, c: char, lo: usize) {
        let span = Span::new(lo, self.pos);
        let shown: String = c.escape_debug().collect();
        let mut d = Diagnostic::error(format!("unexpected character `{shown}`"))
            .primary(span, "not part of any token");
        d = match c {
            '|' => d.note("the pipeline operator is written `|>`"),
            '\'' => d.note("strings are written in double quotes: \"...\""),
            _ => d,
        };
        self.error(span, d);
    }

    /// Numbers: `42`, `0.5`, `1e-3`, `2.5E+4`. Anything glued to a number
    /// (`3x`, `1.`, `1e`) makes the whole run one malformed number.
    fn number(&mut self, lo: usize) {
        self.eat_while(|c| c.is_ascii_digit());
        let mut ok = true;
        if self.peek() == Some('.') {
            if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
                self.eat_while(|c| c.is_ascii_digit());
            } else {
                self.pos += 1;
                ok = false;
            }
        }
        if ok && matches!(self.peek(), Some('e' | 'E')) {
            ok = self.exponent();
        }
        if self.peek().is_some_and(|c| is_ident_char(c) || c == '.') {
            ok = false;
            self.eat_while(|c| is_ident_char(c) || c == '.');
        }
        if !ok {
            let span = Span::new(lo, self.pos);
            let text = &self.src[lo..self.pos];
            let d = Diagnostic::error(format!("invalid number `{text}`"))
                .primary(span, "not a valid number")
                .note("numbers are written like `42`, `0.5`, `1e-3` or `2.5e+4`");
            self.error(span, d);
        }
        self.push(TokKind::Number, lo);
    }

    /// Consumes `e[+-]digits`; returns whether digits followed.
    fn exponent(&mut self) -> bool {
        let sign = matches!(self.peek_at(1), Some('+' | '-'));
        let digits_at = if sign { 2 } else { 1 };
        if !self.peek_at(digits_at).is_some_and(|c| c.is_ascii_digit()) {
            return false;
        }
        self.pos += digits_at;
        self.eat_while(|c| c.is_ascii_digit());
        true
    }

    fn string(&mut self, lo: usize) {
        self.pos += 1;
        loop {
            match self.peek() {
                None | Some('\n') => return self.unterminated(lo),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => self.escape(),
                Some(c) => self.pos += c.len_utf8(),
            }
        }
        self.push(TokKind::Str, lo);
    }

    fn escape(&mut self) {
        let lo = self.pos;
        self.pos += 1;
        match self.peek() {
            Some('"' | '\\' | 'n' | 't') => self.pos += 1,
            Some('\n') | None => {}
            Some(c) => {
                self.pos += c.len_utf8();
                let span = Span::new(lo, self.pos);
                let shown: String = c.escape_debug().collect();
                let d = Diagnostic::error(format!("unknown escape `\\{shown}` in string"))
                    .primary(span, "unknown escape")
                    .note("the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`");
                self.error(span, d);
            }
        }
    }

    fn unterminated(&mut self, lo: usize) {
        let span = Span::new(lo, lo + 1);
        let d = Diagnostic::error("unterminated string")
            .primary(span, "this string is never closed")
            .note("a string ends with `\"` on the same line");
        self.error(span, d);
        self.push(TokKind::Str, lo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokKind, String)> {
        lex(src).tokens.iter().map(|t| (t.kind, t.text(src).to_string())).collect()
    }

    #[test]
    fn tokens_and_comments() {
        let k = kinds("h = x |> dense(64) # comment\n\"a\\\"b\" 1e-3");
        let texts: Vec<_> = k.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["h", "=", "x", "|>", "dense", "(", "64", ")", "\"a\\\"b\"", "1e-3"]);
        assert_eq!(k[8].0, TokKind::Str);
    }

    #[test]
    fn lexical_errors() {
        let l = lex("a @ \"open\n 3x 1. \"\\q\" é");
        let msgs: Vec<_> = l.errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "unexpected character `@`",
                "unterminated string",
                "invalid number `3x`",
                "invalid number `1.`",
                "unknown escape `\\q` in string",
                "unexpected character `é`",
            ]
        );
    }
}
