//! The IR text format: parser, the exact inverse of [`super::print`].
//!
//! It lets tests and debugging sessions feed hand-written or dumped IR back
//! into any stage. The grammar is documented in [`super::print`]. A small
//! lexer turns the text into tokens with line and column; a recursive-descent
//! parser builds the graph with [`Graph::push`], checking syntax only: the
//! result may still be ill-typed, which [`super::verify::verify`] reports.
//! The parser never panics; every error reads `line:col: message`.

use super::graph::{Graph, Loc, Mode, Node, Output, OutputKind, ValueId};
use super::op::{
    AttrKind, AttrType, AttrValue, Init, Leaf, LeafKind, LeafType, Op, OpInfo, OpParts, ParamRole, Word,
};
use super::print::{role_name, CANONICAL_NAN_BITS};
use super::types::{DType, Dim, Shape, Type};

/// Parses the text format. Errors name the line and column.
pub fn parse(text: &str) -> Result<Graph, String> {
    let tokens = lex(text)?;
    Parser { tokens, pos: 0 }.graph()
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// Digits, optionally with a fraction and exponent, or `0x` hex digits.
    Number(String),
    /// `%N`, the digits of N.
    Value(String),
    Str(String),
    Punct(char),
    Newline,
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Pos {
    line: u32,
    col: u32,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: Pos,
}

fn error_at(pos: Pos, message: impl AsRef<str>) -> String {
    format!("{}:{}: {}", pos.line, pos.col, message.as_ref())
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    fn take_while(&mut self, out: &mut String, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            out.push(c);
            self.bump();
        }
    }

    /// After the first digit: the rest of a decimal or `0x` hex number.
    fn number(&mut self, first: char) -> String {
        let mut s = first.to_string();
        if first == '0' && self.peek() == Some('x') {
            self.bump();
            s.push('x');
            self.take_while(&mut s, |c| c.is_ascii_hexdigit());
            return s;
        }
        self.take_while(&mut s, |c| c.is_ascii_digit());
        if self.peek() == Some('.') {
            s.push('.');
            self.bump();
            self.take_while(&mut s, |c| c.is_ascii_digit());
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            // Only an exponent if digits follow (`1e-7`); otherwise the `e`
            // starts the next token.
            let mut ahead = self.chars.clone();
            ahead.next();
            let sign = ahead.peek().copied().filter(|c| matches!(c, '+' | '-'));
            if sign.is_some() {
                ahead.next();
            }
            if ahead.peek().is_some_and(|c| c.is_ascii_digit()) {
                s.extend(self.bump());
                if sign.is_some() {
                    s.extend(self.bump());
                }
                self.take_while(&mut s, |c| c.is_ascii_digit());
            }
        }
        s
    }

    /// After the opening quote.
    fn string(&mut self, start: Pos) -> Result<String, String> {
        let mut s = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => return Err(error_at(start, "unterminated string")),
                Some('"') => return Ok(s),
                Some('\\') => s.push(self.escape(at)?),
                Some(c) => s.push(c),
            }
        }
    }

    /// After a backslash at `at`.
    fn escape(&mut self, at: Pos) -> Result<char, String> {
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('u') if self.peek() == Some('{') => {
                self.bump();
                let mut hex = String::new();
                self.take_while(&mut hex, |c| c.is_ascii_hexdigit());
                if self.bump() != Some('}') || hex.is_empty() || hex.len() > 6 {
                    return Err(error_at(at, "malformed `\\u{...}` escape"));
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| error_at(at, format!("`\\u{{{hex}}}` is not a character")))
            }
            _ => Err(error_at(at, "unknown escape (expected \\\" \\\\ \\n \\t \\r or \\u{...})")),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut lx = Lexer { chars: text.chars().peekable(), pos: Pos { line: 1, col: 1 } };
    let mut tokens = vec![];
    loop {
        let pos = lx.pos;
        let Some(c) = lx.bump() else {
            tokens.push(Token { tok: Tok::Eof, pos });
            return Ok(tokens);
        };
        let tok = match c {
            ' ' | '\t' | '\r' => continue,
            '#' => {
                while lx.peek().is_some_and(|c| c != '\n') {
                    lx.bump();
                }
                continue;
            }
            '\n' => Tok::Newline,
            '"' => Tok::Str(lx.string(pos)?),
            '%' => {
                let mut digits = String::new();
                lx.take_while(&mut digits, |c| c.is_ascii_digit());
                if digits.is_empty() {
                    return Err(error_at(pos, "expected a value number after `%`"));
                }
                Tok::Value(digits)
            }
            c if c.is_ascii_digit() => Tok::Number(lx.number(c)),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = c.to_string();
                lx.take_while(&mut s, |c| c.is_ascii_alphanumeric() || c == '_');
                Tok::Ident(s)
            }
            '[' | ']' | '(' | ')' | '{' | '}' | ',' | ':' | '=' | '@' | '-' => Tok::Punct(c),
            c => return Err(error_at(pos, format!("unexpected character {c:?}"))),
        };
        tokens.push(Token { tok, pos });
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Number(s) => format!("number `{s}`"),
        Tok::Value(s) => format!("`%{s}`"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Punct(c) => format!("`{c}`"),
        Tok::Newline => "end of line".to_string(),
        Tok::Eof => "end of input".to_string(),
    }
}

// ---------------------------------------------------------------- parser

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

type P<T> = Result<T, String>;

impl Parser {
    fn peek(&self) -> &Token {
        // `lex` always ends the list with `Eof`, and `next` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].tok
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn unexpected<T>(&self, expected: &str) -> P<T> {
        let t = self.peek();
        Err(error_at(t.pos, format!("expected {expected}, found {}", describe(&t.tok))))
    }

    fn at_punct(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let here = self.at_punct(c);
        if here {
            self.next();
        }
        here
    }

    fn expect_punct(&mut self, c: char) -> P<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.unexpected(&format!("`{c}`"))
        }
    }

    fn expect_keyword(&mut self, word: &str) -> P<()> {
        if matches!(&self.peek().tok, Tok::Ident(s) if s == word) {
            self.next();
            Ok(())
        } else {
            self.unexpected(&format!("`{word}`"))
        }
    }

    fn ident(&mut self, expected: &str) -> P<(String, Pos)> {
        match &self.peek().tok {
            Tok::Ident(s) => {
                let s = s.clone();
                Ok((s, self.next().pos))
            }
            _ => self.unexpected(expected),
        }
    }

    fn string(&mut self, expected: &str) -> P<String> {
        match &self.peek().tok {
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => self.unexpected(expected),
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.next();
        }
    }

    fn end_of_line(&mut self) -> P<()> {
        match self.peek().tok {
            Tok::Newline => {
                self.next();
                Ok(())
            }
            // The missing `}` is reported by the caller.
            Tok::Eof => Ok(()),
            _ => self.unexpected("end of line"),
        }
    }

    // ------------------------------------------------------------ graph

    fn graph(mut self) -> P<Graph> {
        self.skip_newlines();
        self.expect_keyword("graph")?;
        let name = match &self.peek().tok {
            Tok::Ident(s) | Tok::Str(s) => {
                let s = s.clone();
                self.next();
                s
            }
            _ => return self.unexpected("the graph's name"),
        };
        self.expect_keyword("mode")?;
        self.expect_punct('=')?;
        let mode = match self.ident("`train` or `infer`")? {
            (m, _) if m == "train" => Mode::Train,
            (m, _) if m == "infer" => Mode::Infer,
            (m, pos) => return Err(error_at(pos, format!("expected `train` or `infer`, found `{m}`"))),
        };
        self.expect_punct('{')?;
        if self.peek().tok != Tok::Newline {
            return self.unexpected("end of line after `{`");
        }
        let mut graph = Graph::new(name, mode);
        loop {
            self.skip_newlines();
            match &self.peek().tok {
                Tok::Punct('}') => break,
                Tok::Value(_) => {
                    let node = self.node(&graph)?;
                    graph.push(node);
                }
                Tok::Ident(_) => {
                    let output = self.output()?;
                    graph.outputs.push(output);
                }
                _ => return self.unexpected("a node `%N: ...`, an output or `}`"),
            }
            self.end_of_line()?;
        }
        self.next();
        self.skip_newlines();
        if self.peek().tok != Tok::Eof {
            return self.unexpected("end of input after the graph's closing `}`");
        }
        Ok(graph)
    }

    fn output(&mut self) -> P<Output> {
        let kind = match self.ident("an output kind")? {
            (k, _) if k == "loss" => OutputKind::Loss,
            (k, _) if k == "prediction" => OutputKind::Prediction,
            (k, _) if k == "state" => OutputKind::State,
            (k, _) if k == "param" => OutputKind::Param,
            (k, _) if k == "value" => OutputKind::Other,
            (k, pos) => {
                return Err(error_at(
                    pos,
                    format!(
                    "expected a node `%N: ...`, an output (`loss`, `prediction`, `state`, `param`, `value`) \
                         or `}}`, found `{k}`"
                ),
                ))
            }
        };
        let name = self.string("the output's name (a string)")?;
        self.expect_punct('=')?;
        let value = self.value()?;
        Ok(Output { kind, name, value })
    }

    fn value(&mut self) -> P<ValueId> {
        match &self.peek().tok {
            Tok::Value(digits) => match digits.parse::<u32>() {
                Ok(n) => {
                    self.next();
                    Ok(ValueId(n))
                }
                Err(_) => Err(error_at(self.peek().pos, format!("value number `%{digits}` is too large"))),
            },
            _ => self.unexpected("a value `%N`"),
        }
    }

    // ------------------------------------------------------------ nodes

    fn node(&mut self, graph: &Graph) -> P<Node> {
        let index = graph.nodes.len();
        let pos = self.peek().pos;
        let id = self.value()?;
        if id.index() != index {
            return Err(error_at(
                pos,
                format!("expected `%{index}` (values are numbered by position), found `{id}`"),
            ));
        }
        self.expect_punct(':')?;
        let ty = self.ty()?;
        self.expect_punct('=')?;
        let (mnemonic, op_pos) = self.ident("an op")?;
        let unknown = || error_at(op_pos, format!("unknown op `{mnemonic}`"));
        let info = OpInfo::find(&mnemonic).ok_or_else(unknown)?;
        let leaf = match info.leaf {
            LeafKind::Name => Leaf::Name(self.string("the input's name (a string)")?),
            LeafKind::Value => Leaf::Value(self.float()?),
            LeafKind::None => Leaf::None,
        };
        let args = self.operands()?;
        let attrs = self.attrs()?;
        let mut parts = Parts { mnemonic: info.mnemonic, pos: op_pos, leaf, attrs };
        let op = Op::from_parts(info.mnemonic, &mut parts)?.ok_or_else(unknown)?;
        parts.reject_rest()?;
        let loc = if self.at_punct('@') { self.loc()? } else { Loc::NONE };
        let grad_of = if matches!(&self.peek().tok, Tok::Ident(w) if w == "from") {
            self.next();
            Some(self.origin(graph)?)
        } else {
            None
        };
        Ok(Node { op, args, ty, loc, span: None, grad_of })
    }

    /// `%N mnemonic` after `from`: an earlier node and its op's mnemonic.
    fn origin(&mut self, graph: &Graph) -> P<ValueId> {
        let pos = self.peek().pos;
        let of = self.value()?;
        let Some(node) = graph.nodes.get(of.index()) else {
            return Err(error_at(
                pos,
                format!("`from {of}` names a node that is not defined before this one"),
            ));
        };
        let (mnemonic, at) = self.ident("the mnemonic of the node after `from`")?;
        if mnemonic != node.op.mnemonic() {
            return Err(error_at(at, format!("{of} is `{}`, not `{mnemonic}`", node.op.mnemonic())));
        }
        Ok(of)
    }

    fn operands(&mut self) -> P<Vec<ValueId>> {
        let mut args = vec![];
        if !matches!(self.peek().tok, Tok::Value(_)) {
            return Ok(args);
        }
        args.push(self.value()?);
        while self.eat_punct(',') {
            args.push(self.value()?);
        }
        Ok(args)
    }

    fn attrs(&mut self) -> P<Attrs> {
        let mut attrs: Attrs = vec![];
        while matches!(self.peek().tok, Tok::Ident(_)) && *self.peek2() == Tok::Punct('=') {
            let (name, pos) = self.ident("an attribute")?;
            self.next();
            if attrs.iter().any(|(n, _, _)| *n == name) {
                return Err(error_at(pos, format!("attribute `{name}` given twice")));
            }
            let value = self.attr_value(&name, pos)?;
            attrs.push((name, value, pos));
        }
        Ok(attrs)
    }

    /// Each attribute name has one kind of value, whatever the op (the op
    /// table's), so values are read before the op takes them.
    fn attr_value(&mut self, name: &str, pos: Pos) -> P<AttrValue> {
        let Some(kind) = OpInfo::attr_kind(name) else {
            return Err(error_at(pos, format!("unknown attribute `{name}`")));
        };
        Ok(match kind {
            AttrKind::Usize => AttrValue::Usize(self.usize()?),
            AttrKind::U64 => AttrValue::U64(self.integer("an integer")?),
            AttrKind::List => AttrValue::List(self.list(|p| p.usize())?),
            AttrKind::Pairs => AttrValue::Pairs(self.list(|p| p.pair())?),
            AttrKind::Shape => AttrValue::Shape(self.shape()?),
            AttrKind::DType => AttrValue::DType(self.dtype()?),
            AttrKind::Role => AttrValue::Role(self.role()?),
            AttrKind::Init => AttrValue::Init(self.init()?),
            AttrKind::WarpMode => AttrValue::WarpMode(self.word()?),
            AttrKind::Boundary => AttrValue::Boundary(self.word()?),
            AttrKind::F64 => AttrValue::F64(self.float()?),
        })
    }

    fn loc(&mut self) -> P<Loc> {
        self.expect_punct('@')?;
        let line = self.integer("a line number")?;
        self.expect_punct(':')?;
        let col = self.integer("a column number")?;
        self.expect_punct('-')?;
        let end_line = self.integer("a line number")?;
        self.expect_punct(':')?;
        let end_col = self.integer("a column number")?;
        Ok(Loc { line, col, end_line, end_col })
    }

    // ------------------------------------------------------------ values

    fn ty(&mut self) -> P<Type> {
        let dtype = self.dtype()?;
        Ok(Type::new(dtype, self.shape()?))
    }

    fn dtype(&mut self) -> P<DType> {
        match &self.peek().tok {
            Tok::Ident(s) => match DType::parse(s) {
                Some(d) => {
                    self.next();
                    Ok(d)
                }
                None => self.unexpected("a dtype (`f32`, `i32` or `bool`)"),
            },
            _ => self.unexpected("a dtype (`f32`, `i32` or `bool`)"),
        }
    }

    fn shape(&mut self) -> P<Shape> {
        Ok(Shape(self.list(|p| p.dim())?))
    }

    fn dim(&mut self) -> P<Dim> {
        match &self.peek().tok {
            Tok::Number(_) => Ok(Dim::Known(self.usize()?)),
            Tok::Ident(s) | Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(Dim::Sym(s))
            }
            _ => self.unexpected("a dimension (an integer or a name)"),
        }
    }

    /// `[item, item, ...]`, possibly empty.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> P<T>) -> P<Vec<T>> {
        self.expect_punct('[')?;
        let mut items = vec![];
        if self.eat_punct(']') {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat_punct(']') {
                return Ok(items);
            }
            if !self.eat_punct(',') {
                return self.unexpected("`,` or `]`");
            }
        }
    }

    fn pair(&mut self) -> P<(usize, usize)> {
        self.expect_punct('(')?;
        let lo = self.usize()?;
        self.expect_punct(',')?;
        let hi = self.usize()?;
        self.expect_punct(')')?;
        Ok((lo, hi))
    }

    fn usize(&mut self) -> P<usize> {
        self.integer("an integer")
    }

    fn integer<T: std::str::FromStr>(&mut self, expected: &str) -> P<T> {
        match &self.peek().tok {
            Tok::Number(s) if s.bytes().all(|b| b.is_ascii_digit()) => match s.parse::<T>() {
                Ok(n) => {
                    self.next();
                    Ok(n)
                }
                Err(_) => Err(error_at(self.peek().pos, format!("integer `{s}` is too large"))),
            },
            _ => self.unexpected(expected),
        }
    }

    /// `-`? (decimal | `inf` | `nan` | `nan(0x<bits>)`).
    fn float(&mut self) -> P<f64> {
        let negative = self.eat_punct('-');
        let pos = self.peek().pos;
        let magnitude = match &self.peek().tok {
            Tok::Number(s) if !s.starts_with("0x") => {
                let v = s.parse::<f64>().map_err(|_| error_at(pos, format!("malformed number `{s}`")))?;
                self.next();
                v
            }
            Tok::Ident(s) if s == "inf" => {
                self.next();
                f64::INFINITY
            }
            Tok::Ident(s) if s == "nan" => {
                self.next();
                if self.eat_punct('(') {
                    let bits = self.nan_bits()?;
                    self.expect_punct(')')?;
                    bits
                } else {
                    f64::from_bits(CANONICAL_NAN_BITS)
                }
            }
            _ => return self.unexpected("a number"),
        };
        Ok(if negative { f64::from_bits(magnitude.to_bits() ^ (1 << 63)) } else { magnitude })
    }

    fn nan_bits(&mut self) -> P<f64> {
        let pos = self.peek().pos;
        let bits = match &self.peek().tok {
            Tok::Number(s) if s.starts_with("0x") => u64::from_str_radix(&s[2..], 16).ok(),
            _ => return self.unexpected("the NaN's bits in hex (`0x...`)"),
        };
        match bits.map(f64::from_bits) {
            Some(v) if v.is_nan() => {
                self.next();
                Ok(v)
            }
            _ => Err(error_at(pos, "expected the 64 bits of a NaN in hex")),
        }
    }

    fn role(&mut self) -> P<ParamRole> {
        const ROLES: [ParamRole; 4] =
            [ParamRole::Weight, ParamRole::Bias, ParamRole::Scale, ParamRole::Shift];
        let expected = "a role (`weight`, `bias`, `scale` or `shift`)";
        let (word, pos) = self.ident(expected)?;
        ROLES
            .into_iter()
            .find(|r| role_name(*r) == word)
            .ok_or_else(|| error_at(pos, format!("expected {expected}, found `{word}`")))
    }

    /// A [`Word`] attribute's value: one of its names.
    fn word<W: Word>(&mut self) -> P<W> {
        let names: Vec<String> = W::ALL.iter().map(|w| format!("`{}`", w.name())).collect();
        let expected = format!("{} ({})", W::WHAT, names.join(", "));
        let (word, pos) = self.ident(&expected)?;
        W::from_name(&word).ok_or_else(|| error_at(pos, format!("expected {expected}, found `{word}`")))
    }

    fn init(&mut self) -> P<Init> {
        let expected = "an init (`zeros`, `ones`, `uniform(bound=..)` or `normal(std=..)`)";
        let (word, pos) = self.ident(expected)?;
        match word.as_str() {
            "zeros" => Ok(Init::Zeros),
            "ones" => Ok(Init::Ones),
            "uniform" => Ok(Init::Uniform { bound: self.init_arg("bound")? }),
            "normal" => Ok(Init::Normal { std: self.init_arg("std")? }),
            _ => Err(error_at(pos, format!("expected {expected}, found `{word}`"))),
        }
    }

    /// `(name=number)`.
    fn init_arg(&mut self, name: &str) -> P<f64> {
        self.expect_punct('(')?;
        self.expect_keyword(name)?;
        self.expect_punct('=')?;
        let v = self.float()?;
        self.expect_punct(')')?;
        Ok(v)
    }
}

// ---------------------------------------------------------------- ops

/// A node's attributes as read: name, value and where the name is.
type Attrs = Vec<(String, AttrValue, Pos)>;

/// A node's leaf and attributes as read, which [`Op::from_parts`] takes in
/// the order of the op table.
struct Parts {
    mnemonic: &'static str,
    /// Where the mnemonic is, for errors about the op as a whole.
    pos: Pos,
    leaf: Leaf,
    attrs: Attrs,
}

impl OpParts for Parts {
    type Error = String;

    fn leaf<T: LeafType>(&mut self) -> P<T> {
        T::from_leaf(std::mem::replace(&mut self.leaf, Leaf::None))
            .ok_or_else(|| error_at(self.pos, format!("`{}` needs a {:?} leaf", self.mnemonic, T::KIND)))
    }

    fn attr<T: AttrType>(&mut self, name: &'static str) -> P<T> {
        let Some(i) = self.attrs.iter().position(|(n, _, _)| n == name) else {
            return Err(error_at(self.pos, format!("`{}` needs the attribute `{name}=`", self.mnemonic)));
        };
        T::from_value(self.attrs.remove(i).1)
            .ok_or_else(|| error_at(self.pos, format!("attribute `{name}` has the wrong kind of value")))
    }
}

impl Parts {
    /// Fails on the first attribute the op did not take.
    fn reject_rest(&self) -> P<()> {
        match self.attrs.first() {
            Some((name, _, pos)) => {
                Err(error_at(*pos, format!("`{}` has no attribute `{name}`", self.mnemonic)))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::print::print;
    use super::super::print::tests::{sample_infer, sample_train};
    use super::super::verify::verify;
    use super::super::{Boundary, Graph, Loc, Mode, Op, Type, WarpAttrs, WarpMode};
    use super::parse;

    /// The error for `text`, which must start with `line:col:`.
    fn error(text: &str, line_col: &str) -> String {
        match parse(text) {
            Ok(g) => panic!("parsed, expected an error at {line_col}:\n{}", print(&g)),
            Err(e) => {
                assert!(e.starts_with(&format!("{line_col}: ")), "error `{e}` is not at {line_col}");
                e
            }
        }
    }

    fn graph(body: &str) -> String {
        format!("graph g mode=train {{\n{body}\n}}\n")
    }

    const X: &str = "  %0: f32[2, 3] = input \"x\"\n";

    #[test]
    fn accepts_comments_blank_lines_and_free_spacing() {
        let text = "# a dump\n\ngraph g   mode=infer{   # header\n\n  %0:f32[B,3]=input \"x\"@1:2-3:4\n\
                    %1 : f32[B, 3] = neg %0 # comment\n  prediction \"y\"=%1\n}\n# end\n";
        let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.mode, Mode::Infer);
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.nodes[0].loc, Loc { line: 1, col: 2, end_line: 3, end_col: 4 });
        assert_eq!(g.nodes[1].op, Op::Unary(crate::ir::UnaryOp::Neg));
        assert_eq!(verify(&g), Ok(()));
    }

    #[test]
    fn attributes_in_any_order() {
        let text = graph(&format!("{X}  %1: f32[2, 2] = slice %0 end=2 start=0 axis=1"));
        let g = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.nodes[1].op, Op::Slice { axis: 1, start: 0, end: 2 });
    }

    #[test]
    fn unknown_op() {
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = frobnicate %0")), "3:19");
        assert!(e.contains("unknown op `frobnicate`"), "{e}");
    }

    #[test]
    fn bad_type() {
        let e = error(&graph("  %0: f64[2] = input \"x\""), "2:7");
        assert!(e.contains("expected a dtype"), "{e}");
        let e = error(&graph("  %0: f32[2, -1] = input \"x\""), "2:14");
        assert!(e.contains("expected a dimension"), "{e}");
        let e = error(&graph("  %0: f32[2 3] = input \"x\""), "2:13");
        assert!(e.contains("expected `,` or `]`"), "{e}");
        error(&graph("  %0: f32[99999999999999999999999] = input \"x\""), "2:11");
    }

    #[test]
    fn missing_operand() {
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = add %0,")), "3:26");
        assert!(e.contains("expected a value `%N`, found end of line"), "{e}");
    }

    #[test]
    fn value_number_mismatch() {
        let e = error(&graph(&format!("{X}  %2: f32[2, 3] = neg %0")), "3:3");
        assert!(e.contains("expected `%1`"), "{e}");
        let e = error(&graph("  %99999999999: f32[] = const 1.0"), "2:3");
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn unterminated_string() {
        let e = error(&graph("  %0: f32[2] = input \"x"), "2:22");
        assert!(e.contains("unterminated string"), "{e}");
        let e = error("graph \"g", "1:7");
        assert!(e.contains("unterminated string"), "{e}");
        error(&graph("  %0: f32[2] = input \"x\\q\""), "2:24");
        error(&graph("  %0: f32[2] = input \"x\\u{110000}\""), "2:24");
    }

    #[test]
    fn trailing_garbage() {
        let e = error(&format!("{}junk\n", graph(X)), "5:1");
        assert!(e.contains("after the graph's closing `}`"), "{e}");
        let e = error(&graph("  %0: f32[2] = input \"x\" extra"), "2:26");
        assert!(e.contains("expected end of line"), "{e}");
        let e = error(&graph("  %0: f32[2] = input \"x\" @1:2-3:4 !"), "2:35");
        assert!(e.contains("unexpected character '!'"), "{e}");
    }

    #[test]
    fn attribute_errors() {
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = slice %0 axis=1 start=0")), "3:19");
        assert!(e.contains("`slice` needs the attribute `end=`"), "{e}");
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = neg %0 axis=1")), "3:26");
        assert!(e.contains("`neg` has no attribute `axis`"), "{e}");
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = neg %0 colour=1")), "3:26");
        assert!(e.contains("unknown attribute `colour`"), "{e}");
        let e = error(&graph(&format!("{X}  %1: f32[2, 3] = concat %0 axis=1 axis=1")), "3:36");
        assert!(e.contains("given twice"), "{e}");
        let e = error(&graph("  %0: f32[2] = param \"w\" role=weight init=uniform(std=1)"), "2:51");
        assert!(e.contains("expected `bound`"), "{e}");
        error(&graph("  %0: f32[2] = param \"w\" role=king init=zeros"), "2:31");
        error(&graph("  %0: f32[] = const nan(0x1)"), "2:25");
    }

    /// Warp attributes are words; an unknown one names the choices.
    #[test]
    fn warp_attributes_are_words() {
        let nodes = "  %0: f32[2, 3, 5, 7] = input \"x\"\n  %1: f32[2, 2, 5, 7] = input \"flow\"\n";
        let warp = |attrs: &str| graph(&format!("{nodes}  %2: f32[2, 3, 5, 7] = warp %0, %1 {attrs}"));
        let g = parse(&warp("boundary=circular mode=nearest")).unwrap_or_else(|e| panic!("{e}"));
        let attrs = WarpAttrs { mode: WarpMode::Nearest, boundary: Boundary::Circular };
        assert_eq!(g.nodes[2].op, Op::Warp(attrs));
        assert_eq!(verify(&g), Ok(()));
        let e = error(&warp("mode=cubic boundary=zeros"), "4:42");
        assert!(e.contains("expected a warp mode (`bilinear`, `nearest`), found `cubic`"), "{e}");
        let e = error(&warp("mode=bilinear boundary=reflect"), "4:60");
        assert!(e.contains("expected a boundary (`zeros`, `edge`, `circular`), found `reflect`"), "{e}");
        let e = error(&warp("mode=bilinear boundary=1"), "4:60");
        assert!(e.contains("expected a boundary"), "{e}");
    }

    #[test]
    fn header_and_structure_errors() {
        error("", "1:1");
        error("graph g mode=test {\n}", "1:14");
        error("graph g mode=train { %0: f32[] = const 1.0\n}", "1:22");
        let e = error("graph g mode=train {\n  %0: f32[] = const 1.0\n", "3:1");
        assert!(e.contains("expected a node `%N: ...`, an output or `}`, found end of input"), "{e}");
        let e = error(&graph("  output \"y\" = %0"), "2:3");
        assert!(e.contains("found `output`"), "{e}");
        error(&graph("  loss y = %0"), "2:8");
        error(&graph("  %0: f32[] = const 1.0 @1:2"), "2:29");
        error(&graph("  % 0: f32[] = const 1.0"), "2:3");
    }

    /// The parser checks syntax only; a well-formed but ill-typed graph
    /// parses and the verifier reports it.
    #[test]
    fn ill_typed_graphs_parse() {
        let g = parse(&graph(&format!("{X}  %1: i32[7] = add %0, %5\n  loss \"l\" = %9")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.nodes[1].ty, Type::new(super::DType::I32, super::Shape::known(&[7])));
        let errors = verify(&g).expect_err("ill-typed");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(print(&parse(&print(&g)).unwrap_or_else(|e| panic!("{e}"))), print(&g));
    }

    /// xorshift64: a deterministic source of noise for the no-panic tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Characters the format uses, plus a few it does not.
    const ALPHABET: &[char] = &[
        '%', '0', '1', '9', ':', '=', '[', ']', '(', ')', ',', '{', '}', '@', '-', '"', '\\', '#', '\n', ' ',
        'x', 'e', 'f', '3', '2', '.', 'u', '!', 'é', '\t', '\r', '\0',
    ];

    /// Parses `text` and, if it parses, verifies and reprints it: none of it
    /// may panic, and the reprint must parse to the same text again.
    fn exercise(text: &str) {
        if let Ok(g) = parse(text) {
            let _ = verify(&g);
            let printed = print(&g);
            match parse(&printed) {
                Ok(again) => assert_eq!(print(&again), printed, "from {text:?}"),
                Err(e) => panic!("reprint of {text:?} does not parse: {e}\n{printed}"),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            exercise(&String::from_utf8_lossy(&bytes));
            let chars: String = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
            exercise(&format!("graph g mode=train {{\n{chars}\n}}\n"));
        }
    }

    #[test]
    fn mutated_dumps_never_panic() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for source in [print(&sample_train()), print(&sample_infer()), print(&Graph::new("e", Mode::Infer))] {
            let chars: Vec<char> = source.chars().collect();
            for _ in 0..5_000 {
                let mut text = chars.clone();
                let at = rng.below(text.len());
                match rng.below(3) {
                    0 => text[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => {
                        text.remove(at);
                    }
                    _ => text.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                }
                exercise(&text.into_iter().collect::<String>());
            }
        }
    }
}
