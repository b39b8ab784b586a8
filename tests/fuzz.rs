//! Property tests: the front end never panics, whatever it is given.
//!
//! - `compile` (and rendering its diagnostics) on arbitrary bytes, on soups
//!   of language tokens, and on random mutations of the zoo and the
//!   bad-program corpus (characters and tokens deleted, inserted or
//!   replaced, lines swapped, duplicated or deleted, truncation);
//! - the IR text parser (and the verifier and printer on what it accepts) on
//!   mutations of printed IR.
//!
//! Panics are caught with `catch_unwind` and reported with the input. Case
//! counts keep the file well under 30 s in the test profile.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use nnc_compiler::{diag, ir};

fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Runs `strategy` through `check`, failing with proptest's minimal input.
fn run<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, check) {
        panic!("{e}");
    }
}

/// Compiles `source` and renders its diagnostics; a panic is a test failure
/// showing the input.
fn compile_must_not_panic(source: &str) -> Result<(), TestCaseError> {
    let result = catch_unwind(AssertUnwindSafe(|| match nnc_compiler::compile(source) {
        Ok(compiled) => {
            let _ = nnc::summary::render_summary(&compiled.module);
        }
        Err(diags) => {
            let _ = diag::render_plain("fuzz.nn", source, &diags);
        }
    }));
    match result {
        Ok(()) => Ok(()),
        Err(_) => Err(TestCaseError::fail(format!("compile panicked on input:\n{source:?}"))),
    }
}

/// Parses IR text, then verifies and prints what parses; a panic is a test
/// failure showing the input.
fn ir_parse_must_not_panic(text: &str) -> Result<(), TestCaseError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(graph) = ir::parse::parse(text) {
            let _ = ir::verify::verify(&graph);
            let _ = ir::print::print(&graph);
        }
    }));
    match result {
        Ok(()) => Ok(()),
        Err(_) => Err(TestCaseError::fail(format!("IR parse panicked on input:\n{text:?}"))),
    }
}

/// Seed programs: the zoo and the bad-program corpus.
fn seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut files = common::nn_files("models");
        files.extend(common::nn_files("tests/ui"));
        files.iter().map(|p| common::read(p)).collect()
    })
}

/// Printed IR (train and infer) of every zoo model that compiles.
fn printed_ir() -> &'static [String] {
    static IR: OnceLock<Vec<String>> = OnceLock::new();
    IR.get_or_init(|| {
        common::nn_files("models")
            .iter()
            .filter_map(|p| nnc_compiler::compile(&common::read(p)).ok().map(|c| c.module))
            .flat_map(|m| [ir::print::print(&m.train_graph), ir::print::print(&m.infer_graph)])
            .collect()
    })
}

/// Tokens of the language (and a few near misses) for insertions and soups.
const TOKENS: &[&str] = &[
    "model",
    "block",
    "train",
    "input",
    "target",
    "output",
    "return",
    "loss",
    "true",
    "false",
    "params",
    "weights",
    "x",
    "h",
    "B",
    "T",
    "f32",
    "i32",
    "f64",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    ";",
    "=",
    "|>",
    "+",
    "-",
    "*",
    "/",
    ".",
    "|",
    ">",
    "#",
    "\"",
    "\"s\"",
    "0",
    "1",
    "-2",
    "0.5",
    "1e-3",
    "1e400",
    "99999999999999999999",
    "f32[B, 1]",
    "i32[B]",
    "dense",
    "dense(4)",
    "conv2d(3, kernel: 3, pad: same)",
    "relu",
    "softmax(axis: 1)",
    "concat",
    "mse",
    "cross_entropy",
    "dice",
    "l2(weights)",
    "maxpool2d(2)",
    "upsample(2)",
    "flatten",
    "reshape(shape: [B, -1])",
    "permute(axes: [0, 2, 1])",
    "matmul",
    "sum",
    "dropout(0.5)",
    "batchnorm",
    "adam(lr: 1e-3)",
    "sgd",
    "synthetic.sine(n: 8)",
    "dataset(\"digits\")",
    "batch",
    "epochs",
    "optimizer",
    "data",
    "split",
    "metrics",
    "[accuracy]",
    "same",
    "valid",
    "axis:",
    "kernel:",
    "\n",
    "  ",
    "é",
    "\u{0}",
];

fn any_token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(TOKENS)
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            '(', ')', '{', '}', '[', ']', ',', ':', ';', '=', '|', '>', '"', '#', '\n', '-', '.', '0', '9',
            'e', 'B', ' ',
        ]),
    ]
}

/// A position in a sequence of any length: `Pick(p).index(n)` is
/// `floor(n * p / 2^32)`, so the same value picks proportionally in every text
/// and shrinks towards the start.
#[derive(Clone, Copy, Debug)]
struct Pick(u32);

impl Pick {
    fn index(self, size: usize) -> usize {
        ((size as u64 * u64::from(self.0)) >> 32) as usize
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    any::<u32>().prop_map(Pick)
}

/// One random edit of a program's text.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteChar(Pick),
    InsertChar(Pick, char),
    ReplaceChar(Pick, char),
    DeleteToken(Pick),
    InsertToken(Pick, &'static str),
    ReplaceToken(Pick, &'static str),
    SwapLines(Pick, Pick),
    DuplicateLine(Pick),
    DeleteLine(Pick),
    Truncate(Pick),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        pick().prop_map(Mutation::DeleteChar),
        (pick(), any_char()).prop_map(|(i, c)| Mutation::InsertChar(i, c)),
        (pick(), any_char()).prop_map(|(i, c)| Mutation::ReplaceChar(i, c)),
        pick().prop_map(Mutation::DeleteToken),
        (pick(), any_token()).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
        (pick(), any_token()).prop_map(|(i, t)| Mutation::ReplaceToken(i, t)),
        (pick(), pick()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        pick().prop_map(Mutation::DuplicateLine),
        pick().prop_map(Mutation::DeleteLine),
        pick().prop_map(Mutation::Truncate),
    ]
}

/// Char ranges of the tokens of `text`: runs of identifier characters, `|>`,
/// and single other non-blank characters.
fn token_ranges(chars: &[char]) -> Vec<(usize, usize)> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let mut ranges = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let end = if c.is_whitespace() {
            i += 1;
            continue;
        } else if word(c) {
            i + chars[i..].iter().take_while(|&&c| word(c)).count()
        } else if c == '|' && chars.get(i + 1) == Some(&'>') {
            i + 2
        } else {
            i + 1
        };
        ranges.push((i, end));
        i = end;
    }
    ranges
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    match m {
        Mutation::DeleteChar(i) if n > 0 => {
            chars.remove(i.index(n));
        }
        Mutation::InsertChar(i, c) => chars.insert(i.index(n + 1), *c),
        Mutation::ReplaceChar(i, c) if n > 0 => chars[i.index(n)] = *c,
        Mutation::DeleteToken(i) | Mutation::InsertToken(i, _) | Mutation::ReplaceToken(i, _) => {
            let tokens = token_ranges(&chars);
            if tokens.is_empty() {
                return text.to_string();
            }
            let (lo, hi) = tokens[i.index(tokens.len())];
            match m {
                Mutation::DeleteToken(_) => {
                    chars.drain(lo..hi);
                }
                Mutation::InsertToken(_, t) => {
                    let insert: Vec<char> = format!(" {t} ").chars().collect();
                    chars.splice(lo..lo, insert);
                }
                Mutation::ReplaceToken(_, t) => {
                    chars.splice(lo..hi, t.chars());
                }
                _ => {}
            }
        }
        Mutation::SwapLines(a, b) | Mutation::DuplicateLine(a @ b) | Mutation::DeleteLine(a @ b) => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            match m {
                Mutation::SwapLines(..) => lines.swap(a, b),
                Mutation::DuplicateLine(_) => lines.insert(a, lines[a]),
                _ => {
                    lines.remove(a);
                }
            }
            return lines.join("\n");
        }
        Mutation::Truncate(i) => chars.truncate(i.index(n + 1)),
        _ => {}
    }
    chars.into_iter().collect()
}

#[test]
fn compile_never_panics_on_arbitrary_bytes() {
    run(8192, prop::collection::vec(any::<u8>(), 0..400), |bytes| {
        compile_must_not_panic(&String::from_utf8_lossy(&bytes))
    });
}

#[test]
fn compile_never_panics_on_token_soup() {
    run(12288, prop::collection::vec(any_token(), 0..80), |tokens| compile_must_not_panic(&tokens.join(" ")));
}

#[test]
fn compile_never_panics_on_mutated_programs() {
    let n = seeds().len();
    run(16384, (0..n, prop::collection::vec(mutation(), 1..5)), |(seed, mutations)| {
        let text = mutations.iter().fold(seeds()[seed].clone(), |text, m| apply(&text, m));
        compile_must_not_panic(&text)
    });
}

#[test]
fn compile_never_panics_on_deep_nesting_and_long_input() {
    for text in [
        "(".repeat(100_000),
        format!("model m {{ input x: f32[B, 1]\n y = {}x{} }}", "(".repeat(5000), ")".repeat(5000)),
        format!("model m {{ input x: f32[B, 1]\n y = x{} }}", " |> relu".repeat(5000)),
        format!("model m {{ input x: f32[B, 1]\n y = {} }}", vec!["x"; 5000].join(" + ")),
        format!("model m {{ input x: f32[B, 1]\n y = {}x }}", "-".repeat(5000)),
        "[".repeat(300) + &"]".repeat(300),
    ] {
        if let Err(e) = compile_must_not_panic(&text) {
            panic!("{}", e.to_string().chars().take(500).collect::<String>());
        }
    }
}

#[test]
fn ir_parse_never_panics_on_mutated_ir() {
    let n = printed_ir().len();
    if n == 0 {
        // No zoo model compiles yet; the zoo tests report why.
        return;
    }
    run(4096, (0..n, prop::collection::vec(mutation(), 1..5)), |(seed, mutations)| {
        let text = mutations.iter().fold(printed_ir()[seed].clone(), |text, m| apply(&text, m));
        ir_parse_must_not_panic(&text)
    });
}

#[test]
fn ir_parse_never_panics_on_arbitrary_bytes() {
    run(4096, prop::collection::vec(any::<u8>(), 0..300), |bytes| {
        ir_parse_must_not_panic(&String::from_utf8_lossy(&bytes))
    });
}

#[test]
fn mutations_are_applied() {
    let text = "model m {\n  h = x |> dense(4)\n}";
    let chars: Vec<char> = text.chars().collect();
    assert_eq!(token_ranges(&chars).len(), 12);
    assert_eq!(apply(text, &Mutation::Truncate(Pick(1 << 31))).chars().count(), 16);
    assert_eq!(apply(text, &Mutation::DeleteLine(Pick(0))), "  h = x |> dense(4)\n}");
}
