//! Tests of the syntax stage, written as tables of source text in and AST or
//! diagnostics out. `check_ok` and `errors` are the only places that call the
//! parser.

use super::ast::*;
use super::{parse, print_ast};

const SINE: &str = include_str!("../../../models/sine.nn");

const DIGITS: &str = include_str!("../../../models/digits.nn");

const RESUNET: &str = include_str!("../../../models/resunet.nn");

fn check_ok(src: &str) -> File {
    let (file, diags) = parse(src);
    assert!(diags.is_empty(), "unexpected errors: {diags:#?}");
    file
}

/// One expression, parsed as the value of `x = ...` in a model.
fn expr(src: &str) -> Expr {
    let file = check_ok(&format!("model m {{ x = {src} }}"));
    match &file.items[..] {
        [Item::Model(m)] => match &m.body[..] {
            [Stmt::Let { value, .. }] => value.clone(),
            other => panic!("expected one let, got {other:?}"),
        },
        other => panic!("expected one model, got {other:?}"),
    }
}

/// An expression as compact prefix text: `(+ a (* b c))`.
fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Float(x) => format!("{x:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Path(p) => p.text(),
        ExprKind::List(items) => format!("[{}]", items.iter().map(sexpr).collect::<Vec<_>>().join(" ")),
        ExprKind::Call { callee, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| match &a.name {
                    Some(n) => format!("{}:{}", n.name, sexpr(&a.value)),
                    None => sexpr(&a.value),
                })
                .collect();
            format!("{}({})", callee.text(), args.join(" "))
        }
        ExprKind::Pipe { lhs, rhs } => format!("(|> {} {})", sexpr(lhs), sexpr(rhs)),
        ExprKind::Binary { op, lhs, rhs } => format!("({} {} {})", op.symbol(), sexpr(lhs), sexpr(rhs)),
        ExprKind::Neg(inner) => format!("(neg {})", sexpr(inner)),
        ExprKind::Compare { op, lhs, rhs } => format!("({} {} {})", op.symbol(), sexpr(lhs), sexpr(rhs)),
        ExprKind::Index { base, subscripts } => {
            let part = |e: &Option<Expr>| e.as_ref().map(sexpr).unwrap_or_default();
            let subs: Vec<String> = subscripts
                .iter()
                .map(|s| match s {
                    Subscript::Index(e) => sexpr(e),
                    Subscript::Ellipsis(_) => "...".into(),
                    Subscript::Slice { start, stop, step: None, .. } => {
                        format!("{}:{}", part(start), part(stop))
                    }
                    Subscript::Slice { start, stop, step, .. } => {
                        format!("{}:{}:{}", part(start), part(stop), part(step))
                    }
                })
                .collect();
            format!("(index {} [{}])", sexpr(base), subs.join(" "))
        }
    }
}

fn model(file: &File) -> &ModelDef {
    file.items
        .iter()
        .find_map(|i| match i {
            Item::Model(m) => Some(m),
            _ => None,
        })
        .expect("a model")
}

fn train(file: &File) -> &TrainDef {
    file.items
        .iter()
        .find_map(|i| match i {
            Item::Train(t) => Some(t),
            _ => None,
        })
        .expect("a train section")
}

fn lets(body: &[Stmt]) -> Vec<(String, String)> {
    body.iter()
        .filter_map(|s| match s {
            Stmt::Let { name, value, .. } => Some((name.name.clone(), sexpr(value))),
            Stmt::Return { value, .. } => Some(("return".to_string(), sexpr(value))),
            _ => None,
        })
        .collect()
}

fn entries(t: &TrainDef) -> Vec<(String, String)> {
    t.entries.iter().map(|e| (e.key.name.clone(), sexpr(&e.value))).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

// ---- the example programs -------------------------------------------------

#[test]
fn sine_example() {
    let file = check_ok(SINE);
    let m = model(&file);
    assert_eq!(m.name.name, "sine");
    let Stmt::Decl { kind, name, ty, .. } = &m.body[0] else { panic!("expected a decl") };
    assert_eq!((*kind, name.name.as_str(), ty.dtype.name.as_str()), (DeclKind::Input, "x", "f32"));
    assert!(matches!(&ty.dims[..], [DimExpr::Symbol(b), DimExpr::Known(1, _)] if b.name == "B"));
    assert!(matches!(&m.body[1], Stmt::Decl { kind: DeclKind::Target, .. }));
    assert_eq!(
        lets(&m.body),
        pairs(&[
            ("h", "(|> (|> x dense(64)) tanh)"),
            ("h", "(|> (|> h dense(64)) tanh)"),
            ("out", "(|> h dense(1))"),
            ("loss", "mse(out y)"),
        ])
    );
    assert_eq!(
        entries(train(&file)),
        pairs(&[
            ("data", "synthetic.sine(n:2048 noise:0.0)"),
            ("batch", "64"),
            ("epochs", "200"),
            ("optimizer", "adam(lr:0.003)"),
            ("seed", "1"),
        ])
    );
}

#[test]
fn digits_example() {
    let file = check_ok(DIGITS);
    let m = model(&file);
    assert_eq!(
        lets(&m.body),
        pairs(&[
            ("h", "(|> (|> (|> x dense(128)) relu) dropout(0.1))"),
            ("z", "(|> h dense(10))"),
            ("loss", "(+ cross_entropy(z y) (* 0.0001 l2(weights)))"),
        ])
    );
    assert_eq!(
        entries(train(&file)),
        pairs(&[
            ("data", "dataset(\"digits\")"),
            ("normalize", "per_variable"),
            ("batch", "32"),
            ("epochs", "40"),
            ("optimizer", "sgd(lr:0.05 momentum:0.9)"),
            ("metrics", "[accuracy]"),
        ])
    );
}

#[test]
fn resunet_example() {
    let file = check_ok(RESUNET);
    assert_eq!(file.items.len(), 4);
    let Item::Block(residual) = &file.items[0] else { panic!("expected a block") };
    assert_eq!(residual.name.name, "residual");
    let params: Vec<_> = residual
        .params
        .iter()
        .map(|p| (p.name.name.as_str(), p.ty.as_ref().map(|t| t.name.as_str())))
        .collect();
    assert_eq!(params, [("x", None), ("c", Some("int"))]);
    assert_eq!(
        lets(&residual.body),
        pairs(&[
            ("h", "(|> (|> (|> x conv2d(c kernel:3 pad:same)) batchnorm) relu)"),
            ("h", "(|> (|> h conv2d(c kernel:3 pad:same)) batchnorm)"),
            ("return", "relu((+ h x))"),
        ])
    );
    let m = model(&file);
    assert_eq!(
        lets(&m.body)[2],
        ("d1".to_string(), "(|> (|> (|> e2 upsample(2)) concat(e1 axis:1)) down(16))".to_string())
    );
    assert_eq!(entries(train(&file))[4], ("metrics".to_string(), "[dice accuracy]".to_string()));
}

// ---- expressions ------------------------------------------------------------

#[test]
fn precedence_and_associativity() {
    let cases = [
        ("a + b * c", "(+ a (* b c))"),
        ("a * b + c", "(+ (* a b) c)"),
        ("a - b - c", "(- (- a b) c)"),
        ("a / b / c", "(/ (/ a b) c)"),
        ("-a * b", "(* (neg a) b)"),
        ("-2", "(neg 2)"),
        ("- -a", "(neg (neg a))"),
        ("a |> f |> g(1)", "(|> (|> a f) g(1))"),
        ("2 * x |> f", "(|> (* 2 x) f)"),
        ("a + b |> f(k: 1)", "(|> (+ a b) f(k:1))"),
        ("(a + b) * c", "(* (+ a b) c)"),
        ("x |> synthetic.sine", "(|> x synthetic.sine)"),
        ("[a, b,]", "[a b]"),
        ("[]", "[]"),
        ("f(a, b,)", "f(a b)"),
        ("f()", "f()"),
        ("f(1, k: [2, 3], s: \"a\\\"b\\\\\")", "f(1 k:[2 3] s:\"a\\\"b\\\\\")"),
        ("true", "true"),
        ("false_alarm", "false_alarm"),
        ("1e-3 + 2.5e+4 + 0.5 + 3E2", "(+ (+ (+ 0.001 25000.0) 0.5) 300.0)"),
        ("9223372036854775807", "9223372036854775807"),
    ];
    for (src, want) in cases {
        assert_eq!(sexpr(&expr(src)), want, "for {src}");
    }
}

#[test]
fn newlines_and_semicolons_separate_statements() {
    let file = check_ok("model m { a = 1; b = 2\n c = x\n   |> dense(3)\n   |> relu\n d = a +\n b; ; }");
    assert_eq!(
        lets(&model(&file).body),
        pairs(&[("a", "1"), ("b", "2"), ("c", "(|> (|> x dense(3)) relu)"), ("d", "(+ a b)")])
    );
    let file = check_ok("model m { a = 1 b = f(\n  x,\n  k: 2\n) output a }");
    assert_eq!(lets(&model(&file).body), pairs(&[("a", "1"), ("b", "f(x k:2)")]));
    assert!(matches!(&model(&file).body[2], Stmt::Output { name, .. } if name.name == "a"));
}

#[test]
fn block_params_and_return() {
    let file = check_ok("block b(x, c: int, p: float = 0.1, q = -1,) { return x }");
    let Item::Block(b) = &file.items[0] else { panic!("expected a block") };
    let params: Vec<_> = b
        .params
        .iter()
        .map(|p| (p.name.name.clone(), p.ty.as_ref().map(|t| t.name.clone()), p.default.as_ref().map(sexpr)))
        .collect();
    assert_eq!(
        params,
        [
            ("x".into(), None, None),
            ("c".into(), Some("int".into()), None),
            ("p".into(), Some("float".into()), Some("0.1".into())),
            ("q".into(), None, Some("(neg 1)".into())),
        ]
    );
}

#[test]
fn spans() {
    let src = "model m {\n  h = x |> dense(64, bias: false)\n}\n";
    let file = check_ok(src);
    let at = |s: crate::diag::Span| &src[s.range()];
    let m = model(&file);
    assert_eq!(at(m.span), "model m {\n  h = x |> dense(64, bias: false)\n}");
    assert_eq!(at(m.name.span), "m");
    let Stmt::Let { name, value, span } = &m.body[0] else { panic!("expected a let") };
    assert_eq!(at(*span), "h = x |> dense(64, bias: false)");
    assert_eq!(at(name.span), "h");
    assert_eq!(at(value.span), "x |> dense(64, bias: false)");
    let ExprKind::Pipe { rhs, .. } = &value.kind else { panic!("expected a pipe") };
    let ExprKind::Call { callee, args } = &rhs.kind else { panic!("expected a call") };
    assert_eq!(at(callee.span), "dense");
    assert_eq!(at(args[1].span), "bias: false");
    assert_eq!(at(args[1].value.span), "false");

    let e = expr("-(a + b) * [1, 2]");
    let ExprKind::Binary { lhs, rhs, .. } = &e.kind else { panic!("expected a binary") };
    let src = "model m { x = -(a + b) * [1, 2] }";
    assert_eq!(&src[lhs.span.range()], "-(a + b)");
    assert_eq!(&src[rhs.span.range()], "[1, 2]");
    assert_eq!(&src[e.span.range()], "-(a + b) * [1, 2]");

    let src = "model m {\n  input x: f32[B, 1] # the input\n}";
    let file = check_ok(src);
    let Stmt::Decl { ty, span, .. } = &model(&file).body[0] else { panic!("expected a decl") };
    assert_eq!(&src[span.range()], "input x: f32[B, 1]");
    assert_eq!(&src[ty.span.range()], "f32[B, 1]");
    assert_eq!(&src[ty.dims[1].span().range()], "1");
}

#[test]
fn print_ast_of_a_small_program() {
    let src = "block b(x, c: int = 2) { return -x }\nmodel m {\n  input x: f32[B, 1]\n  y = x * 2.5 |> b(c: 3)\n  output y\n}\ntrain { metrics = [rmse, \"a\"]; seed = true }\n";
    let want = "\
file
  block b @1:1-1:37
    param x @1:9-1:10
    param c: int @1:12-1:22
      int 2 @1:21-1:22
    return @1:26-1:35
      neg @1:33-1:35
        path x @1:34-1:35
  model m @2:1-6:2
    input x: f32[B, 1] @3:3-3:21
    let y @4:3-4:25
      pipe @4:7-4:25
        binary * @4:7-4:14
          path x @4:7-4:8
          float 2.5 @4:11-4:14
        call b @4:18-4:25
          kwarg c @4:20-4:24
            int 3 @4:23-4:24
    output y @5:3-5:11
  train @7:1-7:45
    entry metrics @7:9-7:30
      list @7:19-7:30
        path rmse @7:20-7:24
        str \"a\" @7:26-7:29
    entry seed @7:32-7:43
      bool true @7:39-7:43
";
    assert_eq!(print_ast(&check_ok(src), src), want);
}

// ---- errors -----------------------------------------------------------------

/// Every diagnostic as (message, text under the primary label, its offset).
fn errors(src: &str) -> Vec<(String, String, usize)> {
    let (_, diags) = parse(src);
    diags
        .iter()
        .map(|d| {
            let label = d.labels.iter().find(|l| l.primary).expect("a primary label");
            (d.message.clone(), src.get(label.span.range()).unwrap_or("").to_string(), label.span.lo as usize)
        })
        .collect()
}

/// The single error of `src`: its message and the text under its label, and
/// that the label sits where `at` first occurs.
fn check_error(src: &str, message: &str, under: &str, at: &str) {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "for {src:?}: {errs:#?}");
    let (msg, text, lo) = &errs[0];
    assert_eq!((msg.as_str(), text.as_str()), (message, under), "for {src:?}");
    assert_eq!(Some(*lo), src.find(at), "label position for {src:?}");
}

#[test]
fn syntax_errors() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (source, message, text under the primary label, where it starts)
        ("model m {\n  h = dense(x, 3\n}", "unclosed `(`", "(", "(x"),
        ("model m { x = f(a] }", "mismatched closing delimiter `]`", "]", "]"),
        ("model m { x = f(a)) }", "unexpected closing delimiter `)`", ")", ") }"),
        (
            "train {\n  data synthetic.sine(n: 3)\n}",
            "expected `=` after the key, found `synthetic`",
            "synthetic",
            "synthetic",
        ),
        (
            "model m {\n  h = x y\n}",
            "expected an operator or the end of the statement, found `y`",
            "y",
            "y\n",
        ),
        ("model m { s = \"abc\n}", "unterminated string", "\"", "\""),
        ("model m { input model: f32[B] }", "expected a name, found keyword `model`", "model", "model:"),
        ("model m { return = 4 }", "expected a name, found keyword `return`", "return", "return"),
        ("block train(x) { return x }", "expected a name, found keyword `train`", "train", "train"),
        ("model m { z = f(a: 1, b) }", "positional argument after a keyword argument", "b", "b)"),
        ("model m { input q: [B, 1] }", "expected a type such as `f32[B, 1]`, found `[`", "[", "["),
        ("model m { input q: f32 }", "expected a type such as `f32[B, 1]`, found `}`", "", " }"),
        ("model m { input q: f32[B, -1] }", "expected a dimension, found `-`", "-", "-"),
        ("model m { y = h |> 3 }", "expected a function name or call after `|>`", "3", "3"),
        ("model m { y = h |> f + 1 }", "expected a function name or call after `|>`", "f + 1", "f + 1"),
        ("model m { y = h |> (f) }", "expected a function name or call after `|>`", "(f)", "(f)"),
        ("model m {\n  x = 1\n", "unclosed `{`", "{", "{"),
        ("model m { x = 99999999999999999999 }", "integer literal is too large", "99999999999999999999", "9"),
        ("model m { x = 1e999 }", "float literal is out of range", "1e999", "1e"),
        ("model m { x = 1. }", "invalid number `1.`", "1.", "1."),
        ("model m { x = a | b }", "unexpected character `|`", "|", "|"),
        ("model m { x = \"a\\q\" }", "unknown escape `\\q` in string", "\\q", "\\q"),
        ("model m { x = f(,) }", "expected `)` or an argument, found `,`", ",", ","),
        ("model m { x = }", "expected an expression, found `}`", "", " }"),
        ("model m { output 3 }", "expected a name, found `3`", "3", "3"),
        ("model { x = 1 }", "expected a name, found `{`", "{", "{"),
        ("model m x = 1", "expected `{`, found `x`", "x", "x"),
        ("block b(x c) { return x }", "expected one of `)`, `,`, `:`, or `=`, found `c`", "c", "c)"),
        ("model m { x = 1 }\n} ", "expected `block`, `model` or `train`, found `}`", "}", "} "),
        ("layer m { }", "expected `block`, `model` or `train`, found `layer`", "layer", "layer"),
        ("model m { x = é }", "unexpected character `é`", "é", "é"),
        ("model m { x = \0 }", "unexpected character `\\0`", "\0", "\0"),
    ];
    for (src, message, under, at) in cases {
        check_error(src, message, under, at);
    }
}

#[test]
fn numbers_with_a_leading_dot_get_a_hint() {
    let hints = |src: &str| -> Vec<String> {
        let (_, diags) = parse(src);
        assert!(!diags.is_empty(), "no error for {src:?}");
        diags.iter().flat_map(|d| d.notes.iter().filter(|n| n.starts_with("help: write"))).cloned().collect()
    };
    for (src, hint) in [
        ("model m { y = x |> dropout(.5) }", "help: write `0.5`"),
        ("model m { y = x |> dropout(p: .25) }", "help: write `0.25`"),
        ("model m { y = x * -.5 }", "help: write `0.5`"),
        ("model m { y = [1, .5e-3] }", "help: write `0.5e-3`"),
        ("train { optimizer = sgd(lr: .01) }", "help: write `0.01`"),
        ("train {\n  split = .8\n}", "help: write `0.8`"),
    ] {
        assert_eq!(hints(src), [hint], "for {src:?}");
    }
    check_error("model m { y = x |> dropout(.5) }", "expected `)` or an argument, found `.`", ".", ".5");
    // not a decimal point: after a name or a number, or not followed by digits
    for src in ["model m { y = f(a.5) }", "model m { y = f(.x) }", "model m { y = f(. 5) }"] {
        assert_eq!(hints(src), Vec::<String>::new(), "for {src:?}");
    }
}

#[test]
fn all_errors_of_a_file_are_reported_and_valid_pieces_kept() {
    let src = "\
block ok(x) { return x }
model m {
  input x: f32[B, 1]
  a = f(1
  b = x |> dense(3)
  c = x y
  d = 1 +
  output b
}
train {
  seed 1
  batch = 32
}
junk
";
    let errs = errors(src);
    let messages: Vec<_> = errs.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unclosed `(`",
            "expected an operator or the end of the statement, found `y`",
            "expected an expression, found end of line",
            "expected `=` after the key, found `1`",
            "expected `block`, `model` or `train`, found `junk`",
        ]
    );
    let (file, _) = parse(src);
    assert_eq!(file.items.len(), 3);
    let m = model(&file);
    assert_eq!(lets(&m.body), pairs(&[("b", "(|> x dense(3))")]));
    assert_eq!(m.body.len(), 3, "input, b and output survive");
    assert_eq!(entries(train(&file)), pairs(&[("batch", "32")]));
}

#[test]
fn unclosed_item_does_not_swallow_the_next() {
    let src = "model m {\n  x = 1\ntrain {\n  seed = 1\n}\n";
    let errs = errors(src);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "unclosed `{`");
    let (file, _) = parse(src);
    assert_eq!(entries(train(&file)), pairs(&[("seed", "1")]));
}

#[test]
fn rendered_error() {
    let src = "model m {\n  h = x |> dense(64\n  loss = h\n}\n";
    let (_, diags) = parse(src);
    let text = crate::diag::render_plain("m.nn", src, &diags);
    assert!(text.contains("error: unclosed `(`"), "{text}");
    assert!(text.contains("this `(` is never closed"), "{text}");
    assert!(text.contains("m.nn:2:17"), "{text}");
}

// ---- hostile input ----------------------------------------------------------

/// Runs `f` on a thread with a small stack, as the test harness does, and
/// fails if it panics.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new().stack_size(2 << 20).spawn(f).expect("a thread");
    assert!(handle.join().is_ok(), "parser panicked");
}

#[test]
fn deep_nesting_is_rejected() {
    on_small_stack(|| {
        for open in ["(", "[", "f("] {
            let src = format!("model m {{ x = {}1 }}", open.repeat(100_000));
            let errs = errors(&src);
            assert_eq!(errs[0].0, "brackets are nested too deeply");
        }
        let ok = format!(
            "model m {{ x = {}1{} }}",
            "(".repeat(super::MAX_NESTING - 1),
            ")".repeat(super::MAX_NESTING - 1)
        );
        check_ok(&ok);
    });
}

#[test]
fn long_chains_are_bounded() {
    on_small_stack(|| {
        for sep in [" + ", " |> ", " * "] {
            let src = format!("model m {{ x = a{} }}", format!("{sep}f").repeat(100_000));
            let errs = errors(&src);
            assert_eq!(errs[0].0, "expression is too deeply nested", "for {sep}");
        }
        let src = format!("model m {{ x = {}a }}", "-".repeat(100_000));
        assert_eq!(errors(&src)[0].0, "expression is too deeply nested");
        let fine = format!("model m {{ x = a{} }}", " + a".repeat(200));
        check_ok(&fine);
    });
}

#[test]
fn no_panic_on_hostile_input() {
    on_small_stack(|| {
        let all = [SINE, DIGITS, RESUNET].concat();
        for end in (0..=all.len()).filter(|&i| all.is_char_boundary(i)) {
            let _ = parse(&all[..end]);
        }
        for start in (0..all.len()).filter(|&i| all.is_char_boundary(i)).step_by(7) {
            let _ = parse(&all[start..]);
        }
        const ALPHABET: &[u8] = b"model{}()[]|>=:,.;+-*/\"\\# \n\tabx019e\0\xff";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                })
                .collect();
            let src = String::from_utf8_lossy(&bytes);
            let (_, diags) = parse(&src);
            let _ = crate::diag::render_plain("x.nn", &src, &diags);
        }
        for src in ["", "}", "{", ")", "\"", "model", "train", "block", "block b(", "model m {", "x ="] {
            let _ = parse(src);
        }
        let many = "x\n".repeat(10_000);
        let (_, diags) = parse(&many);
        assert!(diags.len() <= super::MAX_ERRORS + 1);
    });
}

#[test]
fn valid_programs_round_trip_through_print() {
    for src in [SINE, DIGITS, RESUNET] {
        let file = check_ok(src);
        assert!(!print_ast(&file, src).is_empty());
    }
}

// ---- part 2: comparisons, subscripts, named losses, constants --------------

#[test]
fn comparisons_bind_looser_than_arithmetic() {
    assert_eq!(sexpr(&expr("x + 1 > y * 2")), "(> (+ x 1) (* y 2))");
    assert_eq!(sexpr(&expr("a <= b")), "(<= a b)");
    assert_eq!(sexpr(&expr("a == -1")), "(== a (neg 1))");
    assert_eq!(sexpr(&expr("(x > 0) |> f")), "(|> (> x 0) f)");
}

#[test]
fn subscripts_follow_numpy_syntax() {
    assert_eq!(sexpr(&expr("x[:, -1]")), "(index x [: (neg 1)])");
    assert_eq!(sexpr(&expr("x[:, 0:12]")), "(index x [: 0:12])");
    assert_eq!(sexpr(&expr("x[..., 1:]")), "(index x [... 1:])");
    assert_eq!(sexpr(&expr("x[:, ::2]")), "(index x [: ::2])");
    assert_eq!(sexpr(&expr("g[:, h:2 * h]")), "(index g [: h:(* 2 h)])");
    assert_eq!(sexpr(&expr("split(x, 2)[0][:, 1]")), "(index (index split(x 2) [0]) [: 1])");
    assert_eq!(sexpr(&expr("-x[0]")), "(neg (index x [0]))");
}

#[test]
fn named_losses_constants_and_optimisers() {
    let file = check_ok(
        "model m {\n  input x: f32[B, 4]\n  const mask: f32[4] = npy(\"mask.npy\")\n  loss = mean(x)\n  loss gen = mean(x * mask)\n}\ntrain {\n  optimizer gen = adam(lr: 1e-3)\n  optimizer = sgd(lr: 0.1)\n}\n",
    );
    let m = model(&file);
    assert!(matches!(&m.body[1], Stmt::Const { name, ty, .. } if name.name == "mask" && ty.dims.len() == 1));
    assert!(matches!(&m.body[2], Stmt::Let { name, .. } if name.name == "loss"));
    assert!(
        matches!(&m.body[3], Stmt::Loss { name, value, .. } if name.name == "gen" && sexpr(value) == "mean((* x mask))")
    );
    let t = train(&file);
    assert_eq!(t.entries[0].name.as_ref().map(|n| n.name.as_str()), Some("gen"));
    assert_eq!(t.entries[1].name, None);
    // `loss_total = ...` and `losses = ...` are ordinary bindings.
    let file = check_ok(
        "model m {\n  input x: f32[B, 4]\n  loss_total = mean(x)\n  losses = x\n  loss = loss_total\n}\n",
    );
    assert_eq!(lets(&model(&file).body).len(), 3);
}

#[test]
fn chained_comparisons_and_const_as_a_name_are_syntax_errors() {
    for src in [
        "model m {\n  input x: f32[B, 4]\n  h = 1 < x < 2\n}\n",
        "model m {\n  input x: f32[B, 4]\n  const = x\n}\n",
        "model m {\n  input x: f32[B, 4]\n  h = x[1:2:3:4]\n}\n",
    ] {
        let (_, diags) = parse(src);
        assert!(diags.iter().any(|d| d.is_error()), "{src}");
    }
}

#[test]
fn file_level_constants_are_items() {
    let file = check_ok("const edges: i32[E, 2] = npy(\"mesh.npy\")\nmodel m {\n  input x: f32[B, 4]\n  const w: f32[4] = npy(\"w.npy\")\n  loss = mean(x * w)\n}\n");
    assert!(matches!(&file.items[0], Item::Const(c) if c.name.name == "edges"));
    assert!(matches!(&model(&file).body[1], Stmt::Const { .. }));
    // In a file with an error elsewhere, the constant is still an item of its own.
    let (file, diags) = parse("const edges: i32[E, 2] = npy(\"mesh.npy\")\nmodel m {\n  input x: f32[B, 4]\n  const w: f32[4] = npy(\"w.npy\")\n  h = x +\n  loss = mean(x * w)\n}\n");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(matches!(&file.items[0], Item::Const(_)));
    assert!(matches!(&model(&file).body[1], Stmt::Const { .. }));
}
