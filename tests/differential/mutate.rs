//! Mutants of generated programs.
//!
//! A generated program is valid by construction, so it reaches every stage
//! of the compiler by the paths that valid programs take. Its mutants —
//! the program with one or two small edits, as someone editing a model
//! would make them — also take the others: a width of 0, a kernel larger
//! than its input, a stride or axis out of range, a line removed (a name
//! used before or without its definition), lines swapped or duplicated
//! (a name bound twice), an argument dropped, doubled or moved, a reference
//! renamed, a layer, activation, loss or optimiser exchanged for another
//! that takes other arguments or shapes, a keyword or option value changed,
//! an operator changed, or the text cut or a character inserted. Most are
//! rejected with a diagnostic; those that still compile are programs the
//! generator would not write (an activation where a layer was, a reshaped
//! axis order), and go on through the rest of the pipeline.
//!
//! Mutants are a function of the program and the seed, like the programs.

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Names that may stand for each other: a mutation replaces one by another
/// of its group.
const GROUPS: &[&[&str]] = &[
    // Activations and elementwise functions.
    &[
        "relu",
        "tanh",
        "sigmoid",
        "gelu",
        "elu",
        "selu",
        "softplus",
        "abs",
        "square",
        "exp",
        "log",
        "sqrt",
        "leaky_relu",
    ],
    // Layers.
    &[
        "dense",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose2d",
        "maxpool2d",
        "avgpool2d",
        "upsample",
        "batchnorm",
        "layernorm",
        "groupnorm",
        "global_avgpool",
        "flatten",
        "dropout",
        "lstm",
        "gru",
        "rnn",
        "attention",
        "multihead_attention",
        "transformer_layer",
        "positional_encoding",
        "embedding",
        "convlstm",
        "convgru",
        "trajgru",
    ],
    // Losses.
    &["mse", "mae", "huber", "bce", "cross_entropy", "dice", "bmse", "bmae"],
    // Optimisers.
    &["sgd", "adam", "adamw", "rmsprop"],
    // Reductions and comparisons of tensors.
    &["mean", "sum", "max", "min", "minimum", "maximum"],
    // Structural operations.
    &["concat", "stack", "split", "pad", "roll", "reshape", "permute", "matmul", "gather", "scatter", "warp"],
    // Tensors from nothing.
    &["zeros", "ones", "full", "linspace", "arange", "normal", "uniform"],
    // Option values.
    &[
        "causal",
        "none",
        "same",
        "valid",
        "zeros",
        "circular",
        "reflect",
        "edge",
        "bilinear",
        "nearest",
        "pre",
        "post",
        "sum",
        "mean",
        "max",
        "true",
        "false",
        "last",
        "sequence",
        "states",
        "all",
        "sinusoidal",
        "learned",
        "relu",
        "gelu",
    ],
    // Argument keywords.
    &[
        "axis",
        "kernel",
        "stride",
        "pad",
        "dilation",
        "keepdims",
        "mask",
        "mode",
        "boundary",
        "momentum",
        "eps",
        "alpha",
        "bias",
        "reverse",
        "return",
        "init",
        "steps",
        "heads",
        "delta",
        "weight",
        "params",
        "lr",
        "groups",
        "pad_mode",
        "dropout",
        "norm",
        "reduce",
        "activation",
    ],
];

/// Binary operators, exchanged for each other.
const OPERATORS: &[&str] = &["+", "-", "*", "/", "|>", "<", ">", "<=", ">=", "==", "!="];

/// Characters a textual mutation inserts.
const CHARACTERS: &[u8] = b"()[]{},:=|>+-*/.0123456789 xyzBh_\n#\"";

/// A token of the source: its byte range and what it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Name,
    Number,
    Operator,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
}

fn tokens(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Name
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && bytes[i] == b'e' {
                i += 1;
                if i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Kind::Number
        } else if let Some(op) =
            ["|>", "<=", ">=", "==", "!="].iter().find(|op| source[i..].starts_with(**op))
        {
            i += op.len();
            Kind::Operator
        } else if b"+-*/<>".contains(&c) {
            i += 1;
            Kind::Operator
        } else {
            i += 1;
            Kind::Other
        };
        if !c.is_ascii_whitespace() {
            out.push(Token { start, end: i, kind });
        }
    }
    out
}

/// The mutants of `source` for `seed`: `n` programs, each with one or two
/// edits, and the kind of its (last) edit.
pub fn mutants(source: &str, seed: u64, n: usize) -> Vec<(String, &'static str)> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = 0x6d; // a stream apart from the generator's
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    (0..n)
        .map(|_| {
            let mut text = source.to_string();
            let mut kind = "none";
            let edits = if rng.random_bool(0.2) { 2 } else { 1 };
            for _ in 0..edits {
                // An edit that does not apply (no candidate) is tried again.
                for _ in 0..8 {
                    if let Some((t, k)) = mutate(&text, &mut rng) {
                        if t != text {
                            text = t;
                            kind = k;
                            break;
                        }
                    }
                }
            }
            (text, kind)
        })
        .collect()
}

fn pick<'a, T>(rng: &mut TestRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.random_range(0..items.len())])
}

fn replace(source: &str, start: usize, end: usize, with: &str) -> String {
    format!("{}{with}{}", &source[..start], &source[end..])
}

/// One edit of `source`, or `None` where the chosen kind has no candidate.
fn mutate(source: &str, rng: &mut TestRng) -> Option<(String, &'static str)> {
    let toks = tokens(source);
    let lines: Vec<&str> = source.lines().collect();
    // Lines of statements (not a brace alone or empty).
    let statements: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim();
            !l.is_empty() && l != "}" && !l.ends_with('{')
        })
        .collect();
    let join = |ls: Vec<&str>| {
        let mut s = ls.join("\n");
        s.push('\n');
        s
    };
    match rng.random_range(0..12) {
        0 | 1 => {
            // A number: a neighbour, a small value, zero, negative or large.
            let numbers: Vec<&Token> = toks.iter().filter(|t| t.kind == Kind::Number).collect();
            let t = *pick(rng, &numbers)?;
            let old = &source[t.start..t.end];
            let new = match old.parse::<i64>() {
                Ok(v) => match rng.random_range(0..6) {
                    0 => (v + 1).to_string(),
                    1 => (v - 1).to_string(),
                    2 => (v * 2).to_string(),
                    3 => "0".to_string(),
                    4 => rng.random_range(1..=9).to_string(),
                    _ => (*pick(rng, &["64", "-1", "-3", "1.5", "1e9"])?).to_string(),
                },
                Err(_) => (*pick(rng, &["0", "1", "-0.5", "2.5", "1e-30", "1e30", "3"])?).to_string(),
            };
            Some((replace(source, t.start, t.end, &new), "number"))
        }
        2 => {
            let i = *pick(rng, &statements)?;
            let mut ls = lines.clone();
            ls.remove(i);
            Some((join(ls), "delete line"))
        }
        3 => {
            let i = *pick(rng, &statements)?;
            let mut ls = lines.clone();
            ls.insert(i + 1, lines[i]);
            Some((join(ls), "duplicate line"))
        }
        4 => {
            let i = *pick(rng, &statements)?;
            let j = *pick(rng, &statements)?;
            let mut ls = lines.clone();
            ls.swap(i, j);
            Some((join(ls), "swap lines"))
        }
        5 => {
            // A reference to another bound name, or to one never bound.
            let bound: Vec<&str> = lines
                .iter()
                .filter_map(|l| {
                    let l = l.trim();
                    let l = l.strip_prefix("input ").or_else(|| l.strip_prefix("target ")).unwrap_or(l);
                    let name = l.split([' ', ':', '=']).next()?;
                    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                        .then_some(name)
                })
                .collect();
            let uses: Vec<&Token> = toks
                .iter()
                .filter(|t| t.kind == Kind::Name && bound.contains(&&source[t.start..t.end]))
                .collect();
            let t = *pick(rng, &uses)?;
            let new = if rng.random_bool(0.15) { "nowhere" } else { pick(rng, &bound)? };
            Some((replace(source, t.start, t.end, new), "rename reference"))
        }
        6 | 7 => {
            // A name of a group exchanged for another of the group.
            let names: Vec<(&Token, &[&str])> = toks
                .iter()
                .filter(|t| t.kind == Kind::Name)
                .filter_map(|t| {
                    let word = &source[t.start..t.end];
                    let groups: Vec<&[&str]> = GROUPS.iter().copied().filter(|g| g.contains(&word)).collect();
                    let g = *pick(rng, &groups)?;
                    Some((t, g))
                })
                .collect();
            let (t, group) = *pick(rng, &names)?;
            let new = pick(rng, group)?;
            Some((replace(source, t.start, t.end, new), "exchange name"))
        }
        8 | 9 => {
            // An argument of a call deleted, duplicated or moved.
            let opens: Vec<usize> = toks
                .windows(2)
                .filter(|w| w[0].kind == Kind::Name && &source[w[1].start..w[1].end] == "(")
                .map(|w| w[1].start)
                .collect();
            let open = *pick(rng, &opens)?;
            let mut depth = 0;
            let mut commas = vec![open];
            let mut close = None;
            for (i, c) in source[open..].char_indices() {
                match c {
                    '(' | '[' => depth += 1,
                    ')' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(open + i);
                            break;
                        }
                    }
                    ',' if depth == 1 => commas.push(open + i),
                    _ => {}
                }
            }
            let close = close?;
            commas.push(close);
            let args: Vec<&str> = commas.windows(2).map(|w| source[w[0] + 1..w[1]].trim()).collect();
            let mut new: Vec<&str> = args.clone();
            let i = rng.random_range(0..args.len());
            let kind = match rng.random_range(0..3) {
                0 => {
                    new.remove(i);
                    "delete argument"
                }
                1 => {
                    new.insert(i, args[i]);
                    "duplicate argument"
                }
                _ => {
                    let j = rng.random_range(0..args.len());
                    new.swap(i, j);
                    "swap arguments"
                }
            };
            Some((replace(source, open + 1, close, &new.join(", ")), kind))
        }
        10 => {
            let ops: Vec<&Token> = toks.iter().filter(|t| t.kind == Kind::Operator).collect();
            let t = *pick(rng, &ops)?;
            let new = pick(rng, OPERATORS)?;
            Some((replace(source, t.start, t.end, new), "operator"))
        }
        _ => {
            // Text: a character deleted or inserted, or the end cut off.
            if source.is_empty() {
                return None;
            }
            let at = rng.random_range(0..source.len());
            if !source.is_char_boundary(at) {
                return None;
            }
            match rng.random_range(0..3) {
                0 => {
                    let end = source[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                    Some((replace(source, at, end, ""), "delete character"))
                }
                1 => {
                    let c = *pick(rng, CHARACTERS)? as char;
                    Some((replace(source, at, at, &c.to_string()), "insert character"))
                }
                _ => Some((source[..at].to_string(), "truncate")),
            }
        }
    }
}
