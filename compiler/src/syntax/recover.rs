//! Error recovery: cuts a file that failed to parse into items, and item
//! bodies into statements, and parses each piece on its own, so that one run
//! reports every error of the file and keeps every piece that is valid.
//!
//! The cuts come from the tolerant lexer. An item starts at `block NAME`,
//! `model NAME` or `train {` when it is at brace depth 0 or first on its line
//! (so that an unclosed `{` does not swallow the next item). Inside a body, a
//! statement ends at `;` or at a line break outside brackets, unless the line
//! break sits inside an expression: the line ends with an operator, `=`, `,`
//! or `:`, or the next line starts with one (`|>`, `+`, ...). A line starting
//! with `NAME =` or a statement keyword always starts a statement, which stops
//! an unclosed `(` from swallowing the rest of the body.

use pest::Parser;

use super::ast::{BlockDef, Ident, Item, ModelDef, ParamDef, Stmt, TrainDef, TrainEntry};
use super::build::Builder;
use super::errors::{translate, Piece, Site};
use super::grammar::{NnParser, Rule};
use super::lex::{Lexed, TokKind, Token};
use crate::diag::{Diagnostic, Span};

pub struct Recovery<'a> {
    source: &'a str,
    lexed: &'a Lexed,
    pub items: Vec<Item>,
    pub diags: Vec<Diagnostic>,
}

/// A run of tokens `start..end` (indices into the token list).
#[derive(Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
}

impl<'a> Recovery<'a> {
    pub fn new(source: &'a str, lexed: &'a Lexed) -> Recovery<'a> {
        Recovery { source, lexed, items: vec![], diags: vec![] }
    }

    fn tok(&self, i: usize) -> Option<&'a Token> {
        self.lexed.tokens.get(i)
    }

    fn is(&self, i: usize, text: &str) -> bool {
        self.tok(i).is_some_and(|t| t.is(self.source, text))
    }

    fn kind(&self, i: usize) -> Option<TokKind> {
        self.tok(i).map(|t| t.kind)
    }

    /// Byte range covered by a run of tokens.
    fn bytes(&self, run: Run) -> (usize, usize) {
        let toks = &self.lexed.tokens;
        match (toks.get(run.start), run.end.checked_sub(1).and_then(|e| toks.get(e))) {
            (Some(a), Some(b)) if run.end > run.start => (a.span.lo as usize, b.span.hi as usize),
            _ => (0, 0),
        }
    }

    /// What follows a run, for "found ..." in messages.
    fn end_description(&self, next: usize) -> &'static str {
        match self.tok(next) {
            None => "end of file",
            Some(t) if t.is(self.source, "}") => "`}`",
            Some(t) if t.is(self.source, ";") => "`;`",
            Some(_) => "end of line",
        }
    }

    fn is_item_keyword(&self, i: usize) -> bool {
        self.is(i, "block") || self.is(i, "model") || self.is(i, "train") || self.is(i, "const")
    }

    /// `block NAME`, `model NAME` or `train {`: an item keyword that cannot
    /// be a misplaced name inside a body (`model = 1`). A `train {` right after
    /// `model` or `block` is a keyword misused as the item's name, not a new item.
    fn starts_item(&self, i: usize) -> bool {
        let next_ok = |want: TokKind| self.kind(i + 1) == Some(want);
        let after_header = i > 0 && (self.is(i - 1, "block") || self.is(i - 1, "model"));
        (self.is(i, "block") || self.is(i, "model") || self.is(i, "const")) && next_ok(TokKind::Ident)
            || self.is(i, "train") && self.is(i + 1, "{") && !after_header
    }

    // ---- items -----------------------------------------------------------

    pub fn run(&mut self) {
        let n = self.lexed.tokens.len();
        let mut i = 0;
        while i < n {
            if self.is_item_keyword(i) {
                let (end, closed) = self.item_end(i);
                self.item(Run { start: i, end }, closed);
                i = end;
            } else {
                i = self.junk(i);
            }
        }
    }

    /// Reports one error for a run of tokens outside any item; returns where
    /// the next item starts.
    fn junk(&mut self, i: usize) -> usize {
        let Some(t) = self.tok(i) else { return i + 1 };
        let text = t.text(self.source);
        let found =
            if t.kind == TokKind::Keyword { format!("keyword `{text}`") } else { format!("`{text}`") };
        let mut d = Diagnostic::error(format!("expected `block`, `model` or `train`, found {found}"))
            .primary(t.span, "expected an item");
        if text == "}" {
            d = d.note("this `}` closes nothing");
        }
        self.diags.push(d);
        let n = self.lexed.tokens.len();
        (i + 1..n).find(|&j| self.is_item_keyword(j)).unwrap_or(n)
    }

    /// The end of the item starting at `start`, and whether its `{` closed.
    fn item_end(&self, start: usize) -> (usize, bool) {
        let mut depth = 0usize;
        for j in start + 1..self.lexed.tokens.len() {
            // A `const` on its own line inside a body is a statement.
            let inner_const = depth > 0 && self.is(j, "const");
            if self.starts_item(j)
                && !inner_const
                && (depth == 0 || self.tok(j).is_some_and(|t| t.line_start))
            {
                return (j, false);
            }
            if self.is(j, "{") {
                depth += 1;
            } else if self.is(j, "}") && depth > 0 {
                depth -= 1;
                if depth == 0 {
                    return (j + 1, true);
                }
            }
        }
        (self.lexed.tokens.len(), false)
    }

    fn item(&mut self, run: Run, closed: bool) {
        let (lo, hi) = self.bytes(run);
        let text = &self.source[lo..hi];
        let whole = NnParser::parse(Rule::item_line, text);
        let err = match whole {
            Ok(mut pairs) => {
                let mut b = Builder::new(lo, &self.lexed.token_ends);
                let item = pairs.next().and_then(|p| b.item(p));
                if b.diags.is_empty() {
                    self.items.extend(item);
                }
                self.diags.extend(b.diags);
                return;
            }
            Err(e) => e,
        };
        let before = self.diags.len();
        if self.is(run.start, "const") {
            // A file-level constant is one statement: its error is the parser's.
            let site = self.site(lo, hi, Piece::Item, self.end_description(run.end));
            self.diags.push(translate(&err, &site));
            return;
        }
        self.item_pieces(run, closed);
        if self.diags.len() == before {
            let site = self.site(lo, hi, Piece::Item, self.end_description(run.end));
            self.diags.push(translate(&err, &site));
        }
    }

    fn site(&self, lo: usize, hi: usize, kind: Piece, end: &'a str) -> Site<'a> {
        Site { source: self.source, lexed: self.lexed, lo, hi, kind, end }
    }

    /// Parses the header and each statement of a broken item separately.
    fn item_pieces(&mut self, run: Run, closed: bool) {
        let (lo, hi) = self.bytes(run);
        let Some(open) = (run.start..run.end).find(|&j| self.is(j, "{")) else {
            self.head(run, lo, hi);
            return;
        };
        let head = self.head(run, lo, hi);
        let body_end = if closed { run.end - 1 } else { run.end };
        if !closed {
            if let Some(t) = self.tok(open) {
                self.diags.push(
                    Diagnostic::error("unclosed `{`")
                        .primary(t.span, "this `{` is never closed")
                        .note("every `{` needs a matching `}`"),
                );
            }
        }
        let body = Run { start: open + 1, end: body_end };
        let is_train = self.is(run.start, "train");
        let span = Span::new(lo, hi);
        match head {
            Some(Head::Block(name, params)) => {
                let body = self.stmts(body);
                self.items.push(Item::Block(BlockDef { name, params, body, span }));
            }
            Some(Head::Model(name)) => {
                let body = self.stmts(body);
                self.items.push(Item::Model(ModelDef { name, body, span }));
            }
            Some(Head::Train) => {
                let entries = self.entries(body);
                self.items.push(Item::Train(TrainDef { entries, span }));
            }
            None if is_train => drop(self.entries(body)),
            None => drop(self.stmts(body)),
        }
    }

    fn head(&mut self, run: Run, lo: usize, hi: usize) -> Option<Head> {
        if let Some(d) = self.keyword_item_name(run) {
            self.diags.push(d);
            return None;
        }
        let rule = if self.is(run.start, "block") {
            Rule::block_head
        } else if self.is(run.start, "model") {
            Rule::model_head
        } else {
            Rule::train_head
        };
        let text = &self.source[lo..hi];
        match NnParser::parse(rule, text) {
            Ok(pairs) => {
                let mut b = Builder::new(lo, &self.lexed.token_ends);
                let mut it = pairs.filter(|p| !matches!(p.as_rule(), Rule::kw_block | Rule::kw_model));
                let head = match rule {
                    Rule::block_head => {
                        let (name, params) = b.block_header(&mut it);
                        Head::Block(name, params)
                    }
                    Rule::model_head => match it.next() {
                        Some(p) => Head::Model(b.ident(p)),
                        None => return None,
                    },
                    _ => Head::Train,
                };
                let ok = b.diags.is_empty();
                self.diags.extend(b.diags);
                ok.then_some(head)
            }
            Err(e) => {
                let site = self.site(lo, hi, Piece::Head, self.end_description(run.end));
                self.diags.push(translate(&e, &site));
                None
            }
        }
    }

    // ---- statements ------------------------------------------------------

    fn stmts(&mut self, body: Run) -> Vec<Stmt> {
        let mut out = vec![];
        for piece in self.split(body) {
            if let Some(s) = self.piece(piece, Piece::Stmt).and_then(Parsed::into_stmt) {
                out.push(s);
            }
        }
        out
    }

    fn entries(&mut self, body: Run) -> Vec<TrainEntry> {
        let mut out = vec![];
        for piece in self.split(body) {
            if let Some(e) = self.piece(piece, Piece::Entry).and_then(Parsed::into_entry) {
                out.push(e);
            }
        }
        out
    }

    /// Splits a body into statements (see the module documentation).
    fn split(&self, body: Run) -> Vec<Run> {
        let mut pieces = vec![];
        let mut start = body.start;
        let mut depth = 0usize;
        for j in body.start..body.end {
            if self.is(j, ";") && depth == 0 {
                pieces.push(Run { start, end: j });
                start = j + 1;
                continue;
            }
            if j > start && self.breaks_before(j, depth) {
                pieces.push(Run { start, end: j });
                start = j;
                depth = 0;
            }
            match self.kind(j) {
                Some(TokKind::Open) => depth += 1,
                Some(TokKind::Close) => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        pieces.push(Run { start, end: body.end });
        pieces.retain(|r| r.end > r.start);
        pieces
    }

    /// Whether a new statement starts at token `j`.
    fn breaks_before(&self, j: usize, depth: usize) -> bool {
        let Some(t) = self.tok(j) else { return false };
        if !t.line_start {
            return false;
        }
        let strong = matches!(t.text(self.source), "input" | "target" | "output" | "return")
            || (t.kind == TokKind::Ident || t.kind == TokKind::Keyword) && self.is(j + 1, "=");
        if strong {
            return true;
        }
        if depth > 0 {
            return false;
        }
        const CONTINUES: &[&str] = &["|>", "+", "-", "*", "/", ".", ",", ":", "=", ")", "]", "("];
        const OPEN_ENDED: &[&str] = &["|>", "+", "-", "*", "/", ".", ",", ":", "=", "(", "["];
        let prev = j.checked_sub(1).and_then(|p| self.tok(p)).map_or("", |p| p.text(self.source));
        !(CONTINUES.contains(&t.text(self.source)) || OPEN_ENDED.contains(&prev))
    }

    /// Parses one statement or train entry; reports its errors.
    fn piece(&mut self, run: Run, kind: Piece) -> Option<Parsed> {
        let (lo, hi) = self.bytes(run);
        let lexical = self.lexed.errors_in(lo, hi);
        if !lexical.is_empty() {
            self.diags.extend(lexical);
            return None;
        }
        if let Some(d) = self.keyword_binding(run).or_else(|| self.brackets(run)) {
            self.diags.push(d);
            return None;
        }
        let rule = if kind == Piece::Entry { Rule::entry_line } else { Rule::stmt_line };
        let pairs = match NnParser::parse(rule, &self.source[lo..hi]) {
            Ok(pairs) => pairs,
            Err(e) => {
                let site = self.site(lo, hi, kind, self.end_description(run.end));
                self.diags.push(translate(&e, &site));
                return None;
            }
        };
        let mut b = Builder::new(lo, &self.lexed.token_ends);
        let pair = pairs.into_iter().next()?;
        let parsed = match kind {
            Piece::Entry => b.train_entry(pair).map(Parsed::Entry),
            _ => b.stmt(pair).map(Parsed::Stmt),
        };
        self.diags.extend(b.diags);
        parsed
    }

    /// `model train { ... }`, `block input(x)`: a keyword used as an item's name.
    fn keyword_item_name(&self, run: Run) -> Option<Diagnostic> {
        if !(self.is(run.start, "block") || self.is(run.start, "model")) {
            return None;
        }
        let t = self.tok(run.start + 1)?;
        (t.kind == TokKind::Keyword).then(|| self.keyword_as_name(t))
    }

    fn keyword_as_name(&self, t: &Token) -> Diagnostic {
        let text = t.text(self.source);
        Diagnostic::error(format!("expected a name, found keyword `{text}`"))
            .primary(t.span, "expected a name")
            .note(format!("`{text}` is a keyword and cannot be used as a name"))
    }

    /// `return = ...`, `input = ...`: a keyword used as the name bound.
    fn keyword_binding(&self, run: Run) -> Option<Diagnostic> {
        let t = self.tok(run.start)?;
        (t.kind == TokKind::Keyword && self.is(run.start + 1, "=")).then(|| self.keyword_as_name(t))
    }

    /// Reports the first unbalanced bracket of a piece.
    fn brackets(&self, run: Run) -> Option<Diagnostic> {
        let mut stack: Vec<&Token> = vec![];
        for j in run.start..run.end {
            let t = self.tok(j)?;
            match t.kind {
                TokKind::Open => stack.push(t),
                TokKind::Close => {
                    let close = t.text(self.source);
                    let Some(open) = stack.pop() else {
                        return Some(
                            Diagnostic::error(format!("unexpected closing delimiter `{close}`"))
                                .primary(t.span, "unexpected closing delimiter"),
                        );
                    };
                    let open_text = open.text(self.source);
                    if closer(open_text) != close {
                        return Some(
                            Diagnostic::error(format!("mismatched closing delimiter `{close}`"))
                                .primary(t.span, format!("expected `{}`", closer(open_text)))
                                .secondary(open.span, "unclosed delimiter"),
                        );
                    }
                }
                _ => {}
            }
        }
        let open = stack.pop()?;
        let text = open.text(self.source);
        let (_, hi) = self.bytes(run);
        Some(
            Diagnostic::error(format!("unclosed `{text}`"))
                .primary(open.span, format!("this `{text}` is never closed"))
                .secondary(Span::new(hi, hi), format!("expected `{}` here", closer(text))),
        )
    }
}

fn closer(open: &str) -> &'static str {
    match open {
        "(" => ")",
        "[" => "]",
        _ => "}",
    }
}

enum Head {
    Block(Ident, Vec<ParamDef>),
    Model(Ident),
    Train,
}

enum Parsed {
    Stmt(Stmt),
    Entry(TrainEntry),
}

impl Parsed {
    fn into_stmt(self) -> Option<Stmt> {
        match self {
            Parsed::Stmt(s) => Some(s),
            Parsed::Entry(_) => None,
        }
    }

    fn into_entry(self) -> Option<TrainEntry> {
        match self {
            Parsed::Entry(e) => Some(e),
            Parsed::Stmt(_) => None,
        }
    }
}
