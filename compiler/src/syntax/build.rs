//! Turns pest's parse tree into the AST.
//!
//! The checks that a context-free grammar expresses badly live here, each with
//! its own diagnostic: integer and float literals that do not fit, the
//! right-hand side of `|>`, positional arguments after keyword arguments, and
//! expressions nested too deeply for the later (recursive) stages.

use pest::iterators::Pair;

use super::ast::*;
use super::grammar::Rule;
use crate::diag::{Diagnostic, Span};

/// The deepest expression tree the parser builds. Later stages recurse over
/// expressions, so hostile input must not produce arbitrarily deep trees.
pub const MAX_EXPR_DEPTH: usize = 256;

/// Builds AST nodes from pairs of a text that starts at byte `base` of the
/// file. Errors are collected; a node with an error gets a placeholder, and
/// callers drop any statement or item during whose building an error arose.
pub struct Builder<'a> {
    base: usize,
    /// The end offsets of all tokens of the file, ascending; pest includes
    /// trailing whitespace and comments in some pairs, and spans are cut back
    /// to the last token they cover.
    token_ends: &'a [u32],
    pub diags: Vec<Diagnostic>,
}

type Built = (Expr, usize);

impl<'a> Builder<'a> {
    pub fn new(base: usize, token_ends: &'a [u32]) -> Builder<'a> {
        Builder { base, token_ends, diags: vec![] }
    }

    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        let (lo, hi) = ((self.base + s.start()) as u32, (self.base + s.end()) as u32);
        let covered = self.token_ends.partition_point(|&e| e <= hi);
        let hi = match covered.checked_sub(1).map(|i| self.token_ends[i]) {
            Some(end) if end > lo => end,
            _ => hi,
        };
        Span { lo, hi }
    }

    pub fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: self.span(&pair) }
    }

    /// Children that carry meaning (keyword tokens and `EOI` dropped).
    fn children<'i>(pair: Pair<'i, Rule>) -> impl Iterator<Item = Pair<'i, Rule>> {
        pair.into_inner().filter(|p| {
            !matches!(
                p.as_rule(),
                Rule::kw_block
                    | Rule::kw_model
                    | Rule::kw_train
                    | Rule::kw_output
                    | Rule::kw_return
                    | Rule::kw_const
                    | Rule::kw_loss
                    | Rule::EOI
            )
        })
    }

    // ---- items -----------------------------------------------------------

    /// Builds the items of a `file` pair, dropping items that had errors.
    pub fn file(&mut self, pair: Pair<Rule>) -> Vec<Item> {
        let mut items = vec![];
        for p in Self::children(pair) {
            let before = self.diags.len();
            let item = self.item(p);
            if self.diags.len() == before {
                items.extend(item);
            }
        }
        items
    }

    pub fn item(&mut self, pair: Pair<Rule>) -> Option<Item> {
        match pair.as_rule() {
            Rule::block_def => Some(Item::Block(self.block_def(pair))),
            Rule::model_def => Some(Item::Model(self.model_def(pair))),
            Rule::train_def => Some(Item::Train(self.train_def(pair))),
            Rule::const_stmt => match self.stmt(pair)? {
                Stmt::Const { name, ty, value, span } => {
                    Some(Item::Const(ConstDef { name, ty, value, span }))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn block_def(&mut self, pair: Pair<Rule>) -> BlockDef {
        let span = self.span(&pair);
        let mut it = Self::children(pair);
        let (name, params) = self.block_header(&mut it);
        let body = it.filter_map(|p| self.stmt(p)).collect();
        BlockDef { name, params, body, span }
    }

    /// Reads `ident param_list` from the front of a block's children.
    pub fn block_header<'i>(
        &mut self,
        it: &mut impl Iterator<Item = Pair<'i, Rule>>,
    ) -> (Ident, Vec<ParamDef>) {
        let mut name = Ident { name: String::new(), span: Span::default() };
        let mut params = vec![];
        for p in it.by_ref() {
            match p.as_rule() {
                Rule::ident => name = self.ident(p),
                Rule::param_list => {
                    params = Self::children(p).map(|p| self.param(p)).collect();
                    break;
                }
                _ => {}
            }
        }
        (name, params)
    }

    fn param(&mut self, pair: Pair<Rule>) -> ParamDef {
        let span = self.span(&pair);
        let mut name = Ident { name: String::new(), span };
        let (mut ty, mut default) = (None, None);
        for p in Self::children(pair) {
            match p.as_rule() {
                Rule::ident => name = self.ident(p),
                Rule::param_type => ty = Self::children(p).next().map(|p| self.ident(p)),
                Rule::expr => default = Some(self.expr(p).0),
                _ => {}
            }
        }
        ParamDef { name, ty, default, span }
    }

    fn model_def(&mut self, pair: Pair<Rule>) -> ModelDef {
        let span = self.span(&pair);
        let mut it = Self::children(pair);
        let name = it.next().map(|p| self.ident(p)).unwrap_or(Ident { name: String::new(), span });
        let body = it.filter_map(|p| self.stmt(p)).collect();
        ModelDef { name, body, span }
    }

    fn train_def(&mut self, pair: Pair<Rule>) -> TrainDef {
        let span = self.span(&pair);
        let entries = Self::children(pair).filter_map(|p| self.train_entry(p)).collect();
        TrainDef { entries, span }
    }

    // ---- statements ------------------------------------------------------

    /// A train entry, or `None` if it had an error (reported).
    pub fn train_entry(&mut self, pair: Pair<Rule>) -> Option<TrainEntry> {
        let before = self.diags.len();
        let span = self.span(&pair);
        let mut it = Self::children(pair);
        let key = self.ident(it.next()?);
        let mut next = it.next()?;
        let mut name = None;
        if next.as_rule() == Rule::entry_name {
            name = Some(self.ident(next.into_inner().next()?));
            next = it.next()?;
        }
        let value = self.expr(next).0;
        (self.diags.len() == before).then_some(TrainEntry { key, name, value, span })
    }

    /// A statement, or `None` if it had an error (reported).
    pub fn stmt(&mut self, pair: Pair<Rule>) -> Option<Stmt> {
        let before = self.diags.len();
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut it = Self::children(pair);
        let stmt = match rule {
            Rule::decl => {
                let kind = match it.next()?.into_inner().next()?.as_rule() {
                    Rule::kw_input => DeclKind::Input,
                    _ => DeclKind::Target,
                };
                let name = self.ident(it.next()?);
                let ty = self.tensor_type(it.next()?);
                Stmt::Decl { kind, name, ty, span }
            }
            Rule::output_stmt => Stmt::Output { name: self.ident(it.next()?), span },
            Rule::return_stmt => Stmt::Return { value: self.expr(it.next()?).0, span },
            Rule::let_stmt => {
                let name = self.ident(it.next()?);
                Stmt::Let { name, value: self.expr(it.next()?).0, span }
            }
            Rule::loss_stmt => {
                let name = self.ident(it.next()?);
                Stmt::Loss { name, value: self.expr(it.next()?).0, span }
            }
            Rule::const_stmt => {
                let name = self.ident(it.next()?);
                let ty = self.tensor_type(it.next()?);
                Stmt::Const { name, ty, value: self.expr(it.next()?).0, span }
            }
            _ => return None,
        };
        (self.diags.len() == before).then_some(stmt)
    }

    fn tensor_type(&mut self, pair: Pair<Rule>) -> TensorType {
        let span = self.span(&pair);
        let mut it = Self::children(pair);
        let dtype = match it.next() {
            Some(p) => self.ident(p),
            None => Ident { name: String::new(), span },
        };
        let dims = it.map(|p| self.dim(p)).collect();
        TensorType { dtype, dims, span }
    }

    fn dim(&mut self, pair: Pair<Rule>) -> DimExpr {
        let span = self.span(&pair);
        if pair.as_rule() == Rule::ident {
            return DimExpr::Symbol(self.ident(pair));
        }
        match pair.as_str().parse::<u64>() {
            Ok(n) => DimExpr::Known(n, span),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error("dimension is too large").primary(span, "does not fit in 64 bits"),
                );
                DimExpr::Known(0, span)
            }
        }
    }

    // ---- expressions -----------------------------------------------------

    /// A placeholder for an expression that had an error.
    fn poisoned(span: Span) -> Built {
        (Expr { kind: ExprKind::Int(0), span }, 1)
    }

    /// Checks that a chain of `ops` operators over operands of depth up to
    /// `deepest` stays within [`MAX_EXPR_DEPTH`].
    fn depth_ok(&mut self, span: Span, deepest: usize, ops: usize) -> bool {
        if deepest + ops <= MAX_EXPR_DEPTH {
            return true;
        }
        self.diags.push(
            Diagnostic::error("expression is too deeply nested")
                .primary(span, format!("more than {MAX_EXPR_DEPTH} nested operations"))
                .note("split it into several bindings"),
        );
        false
    }

    pub fn expr(&mut self, pair: Pair<Rule>) -> Built {
        match pair.as_rule() {
            Rule::expr => self.pipeline(pair),
            Rule::compare => self.compare(pair),
            Rule::arith | Rule::term => self.binary_chain(pair),
            Rule::unary => self.unary(pair),
            Rule::postfix => self.postfix(pair),
            _ => self.atom(pair),
        }
    }

    fn pipeline(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let parts: Vec<_> = pair.into_inner().filter(|p| p.as_rule() != Rule::pipe_op).collect();
        let ops = parts.len().saturating_sub(1);
        let mut built = Vec::with_capacity(parts.len());
        for (i, p) in parts.into_iter().enumerate() {
            if i > 0 && !self.check_pipe_rhs(&p) {
                return Self::poisoned(span);
            }
            built.push(self.expr(p));
        }
        let deepest = built.iter().map(|b| b.1).max().unwrap_or(0);
        if !self.depth_ok(span, deepest, ops) {
            return Self::poisoned(span);
        }
        let mut it = built.into_iter().map(|b| b.0);
        let Some(mut acc) = it.next() else { return Self::poisoned(span) };
        for rhs in it {
            let span = acc.span.to(rhs.span);
            acc = Expr { kind: ExprKind::Pipe { lhs: Box::new(acc), rhs: Box::new(rhs) }, span };
        }
        (acc, deepest + ops)
    }

    /// The right side of `|>` must be a name or a call, written as such.
    fn check_pipe_rhs(&mut self, arith: &Pair<Rule>) -> bool {
        let mut p = arith.clone();
        while matches!(p.as_rule(), Rule::compare | Rule::arith | Rule::term | Rule::unary | Rule::postfix) {
            let mut inner = p.clone().into_inner();
            match (inner.next(), inner.next()) {
                (Some(only), None) => p = only,
                _ => break,
            }
        }
        if matches!(p.as_rule(), Rule::call | Rule::path) {
            return true;
        }
        let span = self.span(arith);
        self.diags.push(
            Diagnostic::error("expected a function name or call after `|>`")
                .primary(span, "not a function name or call")
                .note("`a |> f(b)` means `f(a, b)`, and `a |> f` means `f(a)`"),
        );
        false
    }

    fn binary_chain(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut operands = vec![];
        let mut ops = vec![];
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::add_op | Rule::mul_op => ops.push(match p.as_str() {
                    "+" => BinOp::Add,
                    "-" => BinOp::Sub,
                    "*" => BinOp::Mul,
                    _ => BinOp::Div,
                }),
                _ => operands.push(self.expr(p)),
            }
        }
        let deepest = operands.iter().map(|b| b.1).max().unwrap_or(0);
        let depth = deepest + ops.len();
        if !self.depth_ok(span, deepest, ops.len()) {
            return Self::poisoned(span);
        }
        let mut it = operands.into_iter().map(|b| b.0);
        let Some(mut acc) = it.next() else { return Self::poisoned(span) };
        for (op, rhs) in ops.into_iter().zip(it) {
            let span = acc.span.to(rhs.span);
            acc = Expr { kind: ExprKind::Binary { op, lhs: Box::new(acc), rhs: Box::new(rhs) }, span };
        }
        (acc, depth)
    }

    /// `a < b` (comparisons do not chain: `a < b < c` is a syntax error).
    fn compare(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let Some(lhs) = it.next() else { return Self::poisoned(span) };
        let lhs = self.expr(lhs);
        let (Some(op), Some(rhs)) = (it.next(), it.next()) else { return lhs };
        let op = CmpOp::from_symbol(op.as_str()).unwrap_or(CmpOp::Eq);
        let rhs = self.expr(rhs);
        let deepest = lhs.1.max(rhs.1);
        if !self.depth_ok(span, deepest, 1) {
            return Self::poisoned(span);
        }
        let kind = ExprKind::Compare { op, lhs: Box::new(lhs.0), rhs: Box::new(rhs.0) };
        (Expr { kind, span }, deepest + 1)
    }

    /// `atom[...][...]`.
    fn postfix(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let Some(atom) = it.next() else { return Self::poisoned(span) };
        let (mut acc, mut depth) = self.expr(atom);
        for index in it {
            let index_span = self.span(&index);
            let mut subscripts = vec![];
            for sub in index.into_inner() {
                let (sub, d) = self.subscript(sub);
                depth = depth.max(d);
                subscripts.push(sub);
            }
            if !self.depth_ok(span, depth, 1) {
                return Self::poisoned(span);
            }
            depth += 1;
            let span = acc.span.to(index_span);
            acc = Expr { kind: ExprKind::Index { base: Box::new(acc), subscripts }, span };
        }
        (acc, depth)
    }

    fn subscript(&mut self, pair: Pair<Rule>) -> (Subscript, usize) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::ellipsis => (Subscript::Ellipsis(span), 1),
            Rule::slice => {
                // The bounds before and after the first `:`, then the step.
                let text = pair.as_str();
                let base = pair.as_span().start();
                let colon = text.find(':').map_or(usize::MAX, |c| base + c);
                let (mut start, mut stop, mut step, mut depth) = (None, None, None, 1);
                for p in pair.into_inner() {
                    let before_colon = p.as_span().start() < colon;
                    let rule = p.as_rule();
                    let Some(inner) = p.into_inner().next() else { continue };
                    let (e, d) = self.expr(inner);
                    depth = depth.max(d + 1);
                    match rule {
                        Rule::slice_step => step = Some(e),
                        _ if before_colon => start = Some(e),
                        _ => stop = Some(e),
                    }
                }
                (Subscript::Slice { start, stop, step, span }, depth)
            }
            _ => {
                let (e, d) = self.expr(pair);
                (Subscript::Index(e), d)
            }
        }
    }

    fn unary(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut negs = vec![];
        let mut atom = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::neg => negs.push(self.span(&p).lo),
                _ => atom = Some(self.expr(p)),
            }
        }
        let Some((mut acc, depth)) = atom else { return Self::poisoned(span) };
        if !self.depth_ok(span, depth, negs.len()) {
            return Self::poisoned(span);
        }
        for lo in negs.iter().rev() {
            let span = Span { lo: *lo, hi: acc.span.hi };
            acc = Expr { kind: ExprKind::Neg(Box::new(acc)), span };
        }
        (acc, depth + negs.len())
    }

    fn atom(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::int => self.int(&pair, span),
            Rule::float => self.float(&pair, span),
            Rule::string => ExprKind::Str(unescape(pair.as_str())),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::path => ExprKind::Path(self.path(pair)),
            Rule::call => return self.call(pair),
            Rule::list => return self.list(pair),
            Rule::paren => {
                let Some(inner) = pair.into_inner().next() else { return Self::poisoned(span) };
                let (mut e, depth) = self.expr(inner);
                e.span = span;
                return (e, depth);
            }
            _ => return Self::poisoned(span),
        };
        (Expr { kind, span }, 1)
    }

    fn int(&mut self, pair: &Pair<Rule>, span: Span) -> ExprKind {
        match pair.as_str().parse::<i64>() {
            Ok(n) => ExprKind::Int(n),
            Err(_) => {
                self.diags.push(
                    Diagnostic::error("integer literal is too large")
                        .primary(span, "does not fit in a 64-bit signed integer")
                        .note(format!("the largest integer is {}", i64::MAX)),
                );
                ExprKind::Int(0)
            }
        }
    }

    fn float(&mut self, pair: &Pair<Rule>, span: Span) -> ExprKind {
        match pair.as_str().parse::<f64>() {
            Ok(x) if x.is_finite() => ExprKind::Float(x),
            _ => {
                self.diags.push(
                    Diagnostic::error("float literal is out of range")
                        .primary(span, "too large for a 64-bit float"),
                );
                ExprKind::Float(0.0)
            }
        }
    }

    fn path(&self, pair: Pair<Rule>) -> Path {
        let span = self.span(&pair);
        let segments = pair.into_inner().map(|p| self.ident(p)).collect();
        Path { segments, span }
    }

    fn call(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let Some(callee) = it.next().map(|p| self.path(p)) else { return Self::poisoned(span) };
        let mut args = vec![];
        let mut depth = 0;
        for p in it {
            let (arg, d) = self.arg(p);
            depth = depth.max(d);
            args.push(arg);
        }
        self.check_arg_order(&args);
        if !self.depth_ok(span, depth, 1) {
            return Self::poisoned(span);
        }
        (Expr { kind: ExprKind::Call { callee, args }, span }, depth + 1)
    }

    fn arg(&mut self, pair: Pair<Rule>) -> (Arg, usize) {
        let span = self.span(&pair);
        let mut name = None;
        let mut value = Self::poisoned(span);
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::arg_name => name = p.into_inner().next().map(|p| self.ident(p)),
                _ => value = self.expr(p),
            }
        }
        (Arg { name, value: value.0, span }, value.1)
    }

    fn check_arg_order(&mut self, args: &[Arg]) {
        let Some(first_kw) = args.iter().find(|a| a.name.is_some()) else { return };
        for a in args.iter().skip_while(|a| a.name.is_none()).filter(|a| a.name.is_none()) {
            self.diags.push(
                Diagnostic::error("positional argument after a keyword argument")
                    .primary(a.span, "positional argument")
                    .secondary(first_kw.span, "keyword argument")
                    .note("positional arguments come first: `f(a, b, key: value)`"),
            );
        }
    }

    fn list(&mut self, pair: Pair<Rule>) -> Built {
        let span = self.span(&pair);
        let mut items = vec![];
        let mut depth = 0;
        for p in pair.into_inner() {
            let (e, d) = self.expr(p);
            depth = depth.max(d);
            items.push(e);
        }
        if !self.depth_ok(span, depth, 1) {
            return Self::poisoned(span);
        }
        (Expr { kind: ExprKind::List(items), span }, depth + 1)
    }
}

/// The value of a string literal (with its quotes) after escapes.
fn unescape(quoted: &str) -> String {
    let inner = quoted.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(quoted);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}
