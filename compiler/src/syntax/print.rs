//! The AST as indented text: one node per line with its source range, children
//! indented below it. This is what `nnc ir FILE --stage ast` prints and what
//! tests compare, so the format is kept stable. Ranges are written as in the
//! IR text (`@6:12-6:21`: 1-based line and column, in characters, of the
//! start and of the end of the node's text), so a node of any stage is found
//! in the source the same way.

use std::fmt::Write;

use super::ast::*;
use crate::diag::Span;

/// `file` as text; `source` is the text it was parsed from.
pub fn print_file(file: &File, source: &str) -> String {
    let lines = Lines::new(source);
    let mut p = Printer { out: String::new(), indent: 0, lines };
    p.line("file", None);
    p.nested(|p| file.items.iter().for_each(|i| p.item(i)));
    p.out
}

/// Where each line of a source text starts, to turn byte offsets into lines
/// and columns without rescanning the text for every node.
struct Lines<'s> {
    source: &'s str,
    /// The byte offset of the start of every line, ascending; the first is 0.
    starts: Vec<usize>,
}

impl<'s> Lines<'s> {
    fn new(source: &'s str) -> Lines<'s> {
        let breaks = source.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1);
        Lines { source, starts: std::iter::once(0).chain(breaks).collect() }
    }

    /// The 1-based line and column (counted in characters) of byte `pos`, as
    /// [`crate::ir::Loc::from_span`] computes them.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= pos);
        let start = self.starts[line - 1];
        let col = self.source.get(start..pos).map_or(pos - start, |t| t.chars().count()) + 1;
        (line, col)
    }
}

struct Printer<'s> {
    out: String,
    indent: usize,
    lines: Lines<'s>,
}

impl Printer<'_> {
    fn line(&mut self, text: &str, span: Option<Span>) {
        let pad = "  ".repeat(self.indent);
        let _ = match span {
            Some(s) => {
                let (line, col) = self.lines.line_col(s.lo as usize);
                let (end_line, end_col) = self.lines.line_col(s.hi as usize);
                writeln!(self.out, "{pad}{text} @{line}:{col}-{end_line}:{end_col}")
            }
            None => writeln!(self.out, "{pad}{text}"),
        };
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.indent += 1;
        f(self);
        self.indent -= 1;
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Block(b) => {
                self.line(&format!("block {}", b.name.name), Some(b.span));
                self.nested(|p| {
                    b.params.iter().for_each(|x| p.param(x));
                    b.body.iter().for_each(|s| p.stmt(s));
                });
            }
            Item::Model(m) => {
                self.line(&format!("model {}", m.name.name), Some(m.span));
                self.nested(|p| m.body.iter().for_each(|s| p.stmt(s)));
            }
            Item::Const(c) => {
                self.line(&format!("const {}: {}", c.name.name, type_text(&c.ty)), Some(c.span));
                self.nested(|p| p.expr(&c.value));
            }
            Item::Train(t) => {
                self.line("train", Some(t.span));
                self.nested(|p| {
                    for e in &t.entries {
                        let name = e.name.as_ref().map(|n| format!(" {}", n.name)).unwrap_or_default();
                        p.line(&format!("entry {}{name}", e.key.name), Some(e.span));
                        p.nested(|p| p.expr(&e.value));
                    }
                });
            }
        }
    }

    fn param(&mut self, x: &ParamDef) {
        let ty = x.ty.as_ref().map(|t| format!(": {}", t.name)).unwrap_or_default();
        self.line(&format!("param {}{ty}", x.name.name), Some(x.span));
        if let Some(d) = &x.default {
            self.nested(|p| p.expr(d));
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Decl { kind, name, ty, span } => {
                let kw = match kind {
                    DeclKind::Input => "input",
                    DeclKind::Target => "target",
                };
                self.line(&format!("{kw} {}: {}", name.name, type_text(ty)), Some(*span));
            }
            Stmt::Let { name, value, span } => {
                self.line(&format!("let {}", name.name), Some(*span));
                self.nested(|p| p.expr(value));
            }
            Stmt::Loss { name, value, span } => {
                self.line(&format!("loss {}", name.name), Some(*span));
                self.nested(|p| p.expr(value));
            }
            Stmt::Const { name, ty, value, span } => {
                self.line(&format!("const {}: {}", name.name, type_text(ty)), Some(*span));
                self.nested(|p| p.expr(value));
            }
            Stmt::Output { name, span } => self.line(&format!("output {}", name.name), Some(*span)),
            Stmt::Return { value, span } => {
                self.line("return", Some(*span));
                self.nested(|p| p.expr(value));
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        let span = Some(e.span);
        match &e.kind {
            ExprKind::Int(n) => self.line(&format!("int {n}"), span),
            ExprKind::Float(x) => self.line(&format!("float {x:?}"), span),
            ExprKind::Str(s) => self.line(&format!("str {s:?}"), span),
            ExprKind::Bool(b) => self.line(&format!("bool {b}"), span),
            ExprKind::Path(path) => self.line(&format!("path {}", path.text()), span),
            ExprKind::List(items) => {
                self.line("list", span);
                self.nested(|p| items.iter().for_each(|i| p.expr(i)));
            }
            ExprKind::Call { callee, args } => {
                self.line(&format!("call {}", callee.text()), span);
                self.nested(|p| args.iter().for_each(|a| p.arg(a)));
            }
            ExprKind::Pipe { lhs, rhs } => self.children("pipe", span, &[lhs, rhs]),
            ExprKind::Binary { op, lhs, rhs } => {
                self.children(&format!("binary {}", op.symbol()), span, &[lhs, rhs])
            }
            ExprKind::Neg(inner) => self.children("neg", span, &[inner]),
            ExprKind::Compare { op, lhs, rhs } => {
                self.children(&format!("compare {}", op.symbol()), span, &[lhs, rhs])
            }
            ExprKind::Index { base, subscripts } => {
                self.line("index", span);
                self.nested(|p| {
                    p.expr(base);
                    for s in subscripts {
                        p.subscript(s);
                    }
                });
            }
        }
    }

    fn children(&mut self, text: &str, span: Option<Span>, kids: &[&Expr]) {
        self.line(text, span);
        self.nested(|p| kids.iter().for_each(|k| p.expr(k)));
    }

    fn subscript(&mut self, s: &Subscript) {
        match s {
            Subscript::Index(e) => self.expr(e),
            Subscript::Ellipsis(span) => self.line("ellipsis", Some(*span)),
            Subscript::Slice { start, stop, step, span } => {
                self.line("slice", Some(*span));
                self.nested(|p| {
                    for (part, e) in [("start", start), ("stop", stop), ("step", step)] {
                        if let Some(e) = e {
                            p.line(part, None);
                            p.nested(|p| p.expr(e));
                        }
                    }
                });
            }
        }
    }

    fn arg(&mut self, a: &Arg) {
        match &a.name {
            Some(name) => {
                self.line(&format!("kwarg {}", name.name), Some(a.span));
                self.nested(|p| p.expr(&a.value));
            }
            None => self.expr(&a.value),
        }
    }
}

fn type_text(ty: &TensorType) -> String {
    let dims: Vec<String> = ty
        .dims
        .iter()
        .map(|d| match d {
            DimExpr::Known(n, _) => n.to_string(),
            DimExpr::Symbol(s) => s.name.clone(),
        })
        .collect();
    format!("{}[{}]", ty.dtype.name, dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::Lines;
    use crate::ir::Loc;

    #[test]
    fn line_col_agrees_with_ir_locations() {
        let source = "# é ü\r\nmodel m {\n\n  x = 1 # ∑\n}";
        let lines = Lines::new(source);
        for pos in (0..=source.len()).filter(|&p| source.is_char_boundary(p)) {
            let loc = Loc::from_span(source, pos, pos);
            assert_eq!(lines.line_col(pos), (loc.line as usize, loc.col as usize), "byte {pos}");
        }
        assert_eq!(lines.line_col(source.len() + 5), lines.line_col(source.len()));
    }
}
