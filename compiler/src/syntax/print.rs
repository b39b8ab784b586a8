//! The AST as indented text: one node per line with its byte span, children
//! indented below it. This is what `nnc ir FILE --stage ast` prints and what
//! snapshot tests compare, so the format is kept stable.

use std::fmt::Write;

use super::ast::*;
use crate::diag::Span;

pub fn print_file(file: &File) -> String {
    let mut p = Printer { out: String::new(), indent: 0 };
    p.line("file", None);
    p.nested(|p| file.items.iter().for_each(|i| p.item(i)));
    p.out
}

struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self, text: &str, span: Option<Span>) {
        let pad = "  ".repeat(self.indent);
        let _ = match span {
            Some(s) => writeln!(self.out, "{pad}{text} @{}..{}", s.lo, s.hi),
            None => writeln!(self.out, "{pad}{text}"),
        };
    }

    fn nested(&mut self, f: impl FnOnce(&mut Printer)) {
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
            Item::Train(t) => {
                self.line("train", Some(t.span));
                self.nested(|p| {
                    for e in &t.entries {
                        p.line(&format!("entry {}", e.key.name), Some(e.span));
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
        }
    }

    fn children(&mut self, text: &str, span: Option<Span>, kids: &[&Expr]) {
        self.line(text, span);
        self.nested(|p| kids.iter().for_each(|k| p.expr(k)));
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
