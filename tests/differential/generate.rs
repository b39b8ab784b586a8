//! Random valid `.nn` programs from a seed.
//!
//! The generator keeps the non-batch shape of every tensor it has bound and
//! only writes what checks: each statement applies a construct of the
//! language to live tensors whose shapes fit it (a convolution to a
//! `[B, C, H, W]` tensor large enough for its kernel, a residual to two
//! tensors of one shape, a concat to tensors that differ on its axis only),
//! so every program compiles. It writes source text, not IR, so that the
//! parser, the block expansion, the argument checks and the shape inference
//! run on every program. Sizes stay small (tens to hundreds of values per
//! example) so that the interpreter and the JIT run a program in
//! milliseconds.
//!
//! Programs draw on layers (dense, 1-, 2- and 3-D convolutions with every
//! padding and padding mode, transposed convolution, the normalisations,
//! pooling, upsampling, the recurrent layers, attention and transformers,
//! positional encodings, embeddings, the ConvLSTM family), activations,
//! arithmetic with broadcasting, comparisons (`==` and `!=` where they
//! hold exactly in any precision) and `where`, `zeros_like`, reductions,
//! slices and indexing, concat, stack, split, pad, roll, reshape, flatten,
//! permute, matmul, gather and scatter over grid graphs, warps, random
//! tensors and dropout, `stop_gradient`, blocks (called afresh at every
//! site, with integer arithmetic on their `width` parameter, applied as
//! shared layer values, nested, repeated, mapped over an
//! axis, scanned as recurrent cells) and several losses, each with its own
//! optimiser.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// A generated program and the constructs it uses.
pub struct Program {
    pub source: String,
    pub features: BTreeSet<&'static str>,
}

/// The program of `seed`.
pub fn generate(seed: u64) -> Program {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut g = Gen::new(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes), Scope::Model);
    let source = g.program();
    Program { source, features: g.features }
}

/// Largest number of values per example of a generated tensor.
const MAX_VALUES: usize = 384;

/// A bound tensor: its name and its shape without the batch axis.
#[derive(Clone, Debug)]
struct Value {
    name: String,
    dims: Vec<usize>,
}

/// A generated block taking one tensor: `block NAME(x, width: int, scale: float = 0.5)`.
#[derive(Clone, Debug)]
struct Block {
    name: String,
    width: usize,
    input: Vec<usize>,
    output: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Model,
    /// Inside a block with the given `width` parameter, nested this deep.
    Block {
        width: usize,
        depth: usize,
    },
}

struct Gen {
    rng: TestRng,
    scope: Scope,
    lines: Vec<String>,
    live: Vec<Value>,
    next: usize,
    /// Block definitions, shared by nested generators through `take`/`put`.
    blocks: Vec<Block>,
    block_text: Vec<String>,
    /// Model-level layer values (`NAME = layer(...)`), for `params:`.
    layers: Vec<String>,
    /// Extra declarations (inputs of other types).
    decls: Vec<String>,
    features: BTreeSet<&'static str>,
}

fn shape(dims: &[usize]) -> String {
    let mut s = String::from("B");
    for d in dims {
        write!(s, ", {d}").unwrap();
    }
    s
}

fn count(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// Output size of a window of `kernel` (dilated) over `size` with
/// `before + after` padding and `stride`, or `None` when it does not fit.
fn window(size: usize, kernel: usize, stride: usize, dilation: usize, pad: usize) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    (size + pad >= span).then(|| (size + pad - span) / stride + 1)
}

impl Gen {
    fn new(rng: TestRng, scope: Scope) -> Gen {
        Gen {
            rng,
            scope,
            lines: vec![],
            live: vec![],
            next: 0,
            blocks: vec![],
            block_text: vec![],
            layers: vec![],
            decls: vec![],
            features: BTreeSet::new(),
        }
    }

    // ------------------------------------------------------------ randomness

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.random_range(lo..=hi)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn feature(&mut self, name: &'static str) {
        self.features.insert(name);
    }

    fn fresh(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("{stem}{}", self.next)
    }

    /// A live value, the recent ones more likely.
    fn pick_value(&mut self) -> Value {
        let n = self.live.len();
        let i = if self.chance(0.6) { n - 1 - self.below(n.min(2)) } else { self.below(n) };
        self.live[i].clone()
    }

    /// Binds `expr` to a new name.
    fn bind(&mut self, expr: String, dims: Vec<usize>) -> Value {
        let name = self.fresh("h");
        self.bind_to(name, expr, dims)
    }

    /// Binds a statement's result: to a new name, or now and then to the
    /// name of an earlier value (shadowing it, which then is out of reach).
    /// Only whole statements rebind, so that no expression refers to a
    /// name bound again while it is being built.
    fn bind_statement(&mut self, expr: String, dims: Vec<usize>) -> Value {
        // Inputs and block parameters cannot be bound again.
        let rebindable: Vec<usize> =
            (0..self.live.len()).filter(|&i| self.live[i].name.starts_with('h')).collect();
        if rebindable.len() > 1 && self.chance(0.1) {
            let i = *self.pick(&rebindable);
            let old = self.live.remove(i).name;
            self.feature("rebinding");
            return self.bind_to(old, expr, dims);
        }
        self.bind(expr, dims)
    }

    fn bind_to(&mut self, name: String, expr: String, dims: Vec<usize>) -> Value {
        self.lines.push(format!("{name} = {expr}"));
        let v = Value { name, dims };
        self.live.push(v.clone());
        v
    }

    /// A layer width: in a block, often its `width` parameter.
    fn units(&mut self, lo: usize, hi: usize) -> (String, usize) {
        if let Scope::Block { width, .. } = self.scope {
            if self.chance(0.5) {
                if self.chance(0.3) {
                    self.feature("integer arithmetic on parameters");
                    return match self.below(3) {
                        0 => ("width + 1".into(), width + 1),
                        1 => ("2 * width".into(), 2 * width),
                        _ => ("width * 2 - 1".into(), 2 * width - 1),
                    };
                }
                return ("width".into(), width);
            }
        }
        let n = self.range(lo, hi);
        if n.is_multiple_of(2) && self.chance(0.15) {
            self.feature("constant folding");
            return (format!("2 * {}", n / 2), n);
        }
        (n.to_string(), n)
    }

    // ------------------------------------------------------------- programs

    fn program(&mut self) -> String {
        // Inputs of one of the usual layouts.
        let kinds: [&[usize]; 5] = [&[1, 1], &[2, 3], &[2, 3, 3], &[3, 3, 3, 3], &[1, 2, 3, 3]];
        let layout = *self.pick(&kinds);
        let dims = self.input_dims(layout);
        self.lines.push(format!("input x: f32[{}]", shape(&dims)));
        self.live.push(Value { name: "x".into(), dims: dims.clone() });
        if self.chance(0.3) {
            let other = if self.chance(0.5) {
                dims.clone()
            } else {
                let layout = *self.pick(&kinds);
                self.input_dims(layout)
            };
            self.lines.push(format!("input x2: f32[{}]", shape(&other)));
            self.live.push(Value { name: "x2".into(), dims: other });
            self.feature("several inputs");
        }
        if self.chance(0.12) {
            let t = self.range(2, 5);
            let vocab = self.range(2, 6);
            let dim = self.range(2, 6);
            self.lines.push(format!("input ids: i32[B, {t}]"));
            self.bind(format!("embedding(ids, {vocab}, {dim})"), vec![t, dim]);
            self.feature("embedding");
        }
        let steps = self.range(2, 9);
        for _ in 0..steps {
            self.statement();
        }
        let body = self.losses();
        let mut out = String::new();
        for b in &self.block_text {
            out.push_str(b);
            out.push('\n');
        }
        out.push_str("model fuzz {\n");
        for l in self.decls.iter().chain(&self.lines) {
            writeln!(out, "  {l}").unwrap();
        }
        out.push_str(&body);
        out.push_str("}\n");
        out
    }

    fn input_dims(&mut self, layout: &[usize]) -> Vec<usize> {
        // layout: the smallest size of each axis; sizes grow from there.
        let mut dims: Vec<usize> = layout.iter().map(|&lo| self.range(lo, lo + 3)).collect();
        if layout.len() == 1 {
            dims[0] = self.range(1, 8);
        }
        while count(&dims) > MAX_VALUES / 2 {
            let i = dims.iter().enumerate().max_by_key(|(_, d)| **d).map(|(i, _)| i).unwrap();
            dims[i] -= 1;
        }
        dims
    }

    /// The losses and outputs: the last value (or one of its reductions) is
    /// the prediction, compared with a target by a random loss.
    fn losses(&mut self) -> String {
        let mut out = String::new();
        let pred = self.live.last().cloned().expect("a value");
        let mut terms = vec![];
        let r = pred.dims.len();
        let choice = self.below(10);
        let data_loss = match choice {
            0 | 1 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                self.feature("mse");
                if self.chance(0.3) {
                    self.feature("weighted loss");
                    self.decls.push(format!("target w: f32[{}]", shape(&pred.dims)));
                    format!("mse({}, y, weight: w)", pred.name)
                } else {
                    format!("mse({}, y)", pred.name)
                }
            }
            2 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                self.feature("mae");
                format!("mae({}, y)", pred.name)
            }
            3 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                self.feature("huber");
                format!("huber({}, y, delta: {})", pred.name, self.pick(&["0.5", "1.0", "0.1"]))
            }
            4 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                self.feature("bce");
                format!("bce({}, y)", pred.name)
            }
            5 if r >= 1 && pred.dims[0] >= 2 => {
                self.feature("cross_entropy");
                if self.chance(0.5) {
                    self.decls.push(format!("target y: i32[{}]", shape(&pred.dims[1..])));
                    format!("cross_entropy({}, y)", pred.name)
                } else {
                    self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                    format!("cross_entropy({}, softmax(y, axis: 1))", pred.name)
                }
            }
            6 if r >= 2 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                self.feature("dice");
                format!("dice(sigmoid({}), y)", pred.name)
            }
            7 => {
                self.decls.push(format!("target y: f32[{}]", shape(&pred.dims)));
                let f = *self.pick(&["bmse", "bmae"]);
                self.feature(if f == "bmse" { "bmse" } else { "bmae" });
                format!("{f}({}, y, thresholds: [0.2, 0.5], weights: [1, 3])", pred.name)
            }
            _ => {
                self.feature("loss expression");
                format!("mean(square({})) + 0.1 * sum(abs({}))", pred.name, pred.name)
            }
        };
        terms.push(data_loss);
        if self.chance(0.25) {
            let f = *self.pick(&["l1", "l2"]);
            let set = *self.pick(&["weights", "params"]);
            self.feature("regularisation");
            terms.push(format!("1e-3 * {f}({set})"));
        }
        if self.live.len() > 1 && self.chance(0.25) {
            let i = self.below(self.live.len() - 1);
            let v = self.live[i].clone();
            terms.push(format!("0.1 * mean({}) * mean({})", v.name, v.name));
            self.feature("loss of an intermediate value");
        }
        if self.chance(0.4) {
            writeln!(out, "  output {}", pred.name).unwrap();
        }
        // A second loss with its own optimiser over a layer value.
        let several = !self.layers.is_empty() && self.chance(0.5);
        if several {
            let i = self.below(self.layers.len());
            let layer = self.layers[i].clone();
            let i = self.below(self.live.len());
            let v = self.live[i].clone();
            writeln!(out, "  loss main = {}", terms.join(" + ")).unwrap();
            writeln!(out, "  loss aux = mean(square({})) + 1e-2 * l2(params)", v.name).unwrap();
            self.feature("several losses");
            writeln!(out, "}}\n\ntrain {{").unwrap();
            writeln!(out, "  data = synthetic.sine").unwrap();
            let opt = self.optimizer();
            writeln!(out, "  optimizer main = {opt}").unwrap();
            let opt = self.optimizer();
            let opt = opt.trim_end_matches(')').to_string();
            writeln!(out, "  optimizer aux = {opt}, params: [{layer}])").unwrap();
            if self.chance(0.3) {
                writeln!(out, "  clip_grad_norm = 0.5").unwrap();
                self.feature("clip_grad_norm");
            }
            // The closing brace of the train section stands in for the model's.
            return out;
        }
        writeln!(out, "  loss = {}", terms.join(" + ")).unwrap();
        if self.chance(0.5) {
            writeln!(out, "}}\n\ntrain {{").unwrap();
            writeln!(out, "  data = synthetic.sine").unwrap();
            let opt = self.optimizer();
            writeln!(out, "  optimizer = {opt}").unwrap();
            if self.chance(0.3) {
                writeln!(out, "  clip_grad_norm = 1.0").unwrap();
                self.feature("clip_grad_norm");
            }
        }
        out
    }

    /// An optimiser of the training steps. RMSprop is left out: its first
    /// step divides each gradient element by √((1 − α)·g²) = 0.1·|g|, so
    /// the rounding noise of a gradient that is zero (a bias before a
    /// normalisation) becomes an update of ±10·lr and a momentum buffer of
    /// ±10, which no elementwise comparison with the interpreter can hold;
    /// its formulas are checked exactly in the optimiser's own tests.
    fn optimizer(&mut self) -> String {
        match self.below(5) {
            0 => "sgd(lr: 0.01)".into(),
            1 => "sgd(lr: 0.01, momentum: 0.9, nesterov: true, weight_decay: 1e-4)".into(),
            2 => "adam(lr: 1e-3)".into(),
            3 => "adam(lr: 1e-3, weight_decay: 0.01)".into(),
            _ => "adamw(lr: 2e-3)".into(),
        }
    }

    // ----------------------------------------------------------- statements

    /// One statement: a random construct applied to live values.
    fn statement(&mut self) {
        for _ in 0..40 {
            let v = self.pick_value();
            if let Some((expr, dims)) = self.construct(&v) {
                if count(&dims) <= MAX_VALUES && count(&dims) >= 1 {
                    self.bind_statement(expr, dims);
                    return;
                }
            }
        }
        // Always applicable.
        let v = self.pick_value();
        self.bind(format!("relu({})", v.name), v.dims);
    }

    fn construct(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let x = v.name.clone();
        let d = v.dims.clone();
        let r = d.len();
        let in_block = matches!(self.scope, Scope::Block { .. });
        match self.below(46) {
            0..=2 => {
                let f = *self.pick(&[
                    "relu",
                    "leaky_relu(alpha: 0.2)",
                    "elu",
                    "elu(alpha: 0.5)",
                    "selu",
                    "gelu",
                    "sigmoid",
                    "tanh",
                    "softplus",
                    "abs",
                    "square",
                ]);
                self.feature("activations");
                if let Some((name, args)) = f.split_once('(') {
                    Some((format!("{name}({x}, {args}"), d))
                } else if self.chance(0.5) {
                    self.feature("pipelines");
                    Some((format!("{x} |> {f}"), d))
                } else {
                    Some((format!("{f}({x})"), d))
                }
            }
            3 => {
                self.feature("exp, log, sqrt, clip");
                let e = match self.below(4) {
                    0 => format!("exp(tanh({x}))"),
                    1 => format!("log(softplus({x}) + 0.5)"),
                    2 => format!("sqrt(square({x}) + 0.25)"),
                    _ => format!("clip({x}, -0.5, 0.75)"),
                };
                Some((e, d))
            }
            4 if r >= 1 => {
                let axis = self.axis(r);
                let f = *self.pick(&["softmax", "log_softmax"]);
                self.feature("softmax");
                Some((format!("{f}({x}, axis: {axis})"), d))
            }
            5 => {
                let p = *self.pick(&["0.1", "0.25", "0.5"]);
                self.feature("dropout");
                Some((format!("dropout({x}, {p})"), d))
            }
            6 => {
                self.feature("arithmetic with numbers");
                let e = match self.below(5) {
                    0 => format!("{x} * 0.5 + 0.1"),
                    1 => format!("1 - {x}"),
                    2 => format!("{x} / 2"),
                    3 => format!("-{x}"),
                    _ => format!("2 * 3 * {x} - {x} / 4"),
                };
                Some((e, d))
            }
            7..=9 => self.binary(v),
            10 if r >= 1 => {
                self.feature("reductions");
                let axis = self.range(1, r);
                let f = *self.pick(&["mean", "sum"]);
                let op = *self.pick(&["-", "*", "+"]);
                Some((format!("{x} {op} {f}({x}, axis: {axis}, keepdims: true)"), d))
            }
            11..=13 if r >= 1 => {
                let (u, n) = self.units(1, 8);
                self.feature("dense");
                let bias = if self.chance(0.2) { ", bias: false" } else { "" };
                let mut out = d.clone();
                out[r - 1] = n;
                if self.chance(0.5) {
                    self.feature("pipelines");
                    Some((format!("{x} |> dense({u}{bias})"), out))
                } else {
                    Some((format!("dense({x}, {u}{bias})"), out))
                }
            }
            14 if r >= 1 => {
                self.feature("layernorm");
                Some((format!("layernorm({x})"), d))
            }
            15 if r >= 1 => {
                self.feature("batchnorm");
                let args = if self.chance(0.3) { ", momentum: 0.3, eps: 1e-3" } else { "" };
                Some((format!("batchnorm({x}{args})"), d))
            }
            16 if r >= 2 => {
                let c = d[0];
                let divisors: Vec<usize> = (1..=c).filter(|g| c.is_multiple_of(*g)).collect();
                let g = *self.pick(&divisors);
                self.feature("groupnorm");
                Some((format!("groupnorm({x}, {g})"), d))
            }
            17 if r >= 1 => self.reduce(v),
            18 | 19 if r >= 1 => self.slice(v),
            20 if r >= 1 => self.concat(v),
            21 if r >= 1 => {
                self.feature("stack");
                let axis = self.range(1, r + 1);
                let u = self.same_shape(v);
                let mut out = d.clone();
                out.insert(axis - 1, 2);
                Some((format!("stack({x}, {u}, axis: {axis})"), out))
            }
            22 if r >= 1 => self.split(v),
            23 if r >= 1 => self.pad(v),
            24 if r >= 1 => {
                self.feature("roll");
                let axis = self.range(1, r);
                let shift = self.range(0, 6) as i64 - 3;
                Some((format!("roll({x}, {shift}, axis: {axis})"), d))
            }
            25 if r >= 1 => self.reshape(v),
            26 if r >= 1 => self.matmul(v),
            27 if r == 2 || r == 3 || r == 4 => self.conv(v),
            28 if r == 3 => self.conv_transpose(v),
            29 if r == 3 => self.pool(v),
            30 if r >= 2 => {
                self.feature("global_avgpool");
                Some((format!("global_avgpool({x})"), vec![d[0]]))
            }
            31 if r >= 2 => self.upsample(v),
            32 if r == 3 => self.warp(v),
            33 if r == 2 => self.recurrent(v),
            34 if r == 2 => self.attention(v),
            35 if r >= 2 => {
                self.feature("positional_encoding");
                let kind = *self.pick(&["sinusoidal", "learned"]);
                Some((format!("positional_encoding({x}, kind: {kind})"), d))
            }
            36 if r >= 1 => self.graph_ops(v),
            37 if r == 4 => self.conv_recurrent(v),
            38 | 39 => self.call_block(v),
            40 if !in_block => self.shared_layer(v),
            41 if r >= 1 => self.repeat(v),
            42 if r >= 2 => self.map(v),
            43 if r == 2 && !in_block => self.scan(v),
            44 => {
                self.feature("random tensors");
                let f = if self.chance(0.5) { "normal" } else { "uniform" };
                let args = if f == "normal" { "std: 0.1" } else { "low: -0.1, high: 0.1" };
                Some((format!("{x} + {f}([{}], {args})", shape(&d)), d))
            }
            45 => {
                self.feature("stop_gradient");
                let u = self.same_shape(v);
                Some((format!("{x} * stop_gradient({u})"), d))
            }
            _ => None,
        }
    }

    /// An axis of a tensor of `r` non-batch axes, written positive or
    /// negative (never the batch axis).
    fn axis(&mut self, r: usize) -> String {
        let a = self.range(1, r);
        if self.chance(0.3) {
            format!("{}", a as i64 - (r as i64 + 1))
        } else {
            a.to_string()
        }
    }

    /// The name of a live value of `v`'s shape other than `v` if there is
    /// one, else a new one computed from `v`.
    fn same_shape(&mut self, v: &Value) -> String {
        let others: Vec<Value> =
            self.live.iter().filter(|u| u.dims == v.dims && u.name != v.name).cloned().collect();
        if !others.is_empty() && self.chance(0.7) {
            return self.pick(&others).name.clone();
        }
        let e = match self.below(3) {
            0 => format!("tanh({})", v.name),
            1 => format!("{} * 0.5", v.name),
            _ => format!("sigmoid({})", v.name),
        };
        self.bind(e, v.dims.clone()).name
    }

    fn binary(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let x = v.name.clone();
        let d = v.dims.clone();
        let r = d.len();
        // The other operand: a value of the same shape, or one that
        // broadcasts (a reduction kept with its axes, a row of constants).
        let u = match self.below(4) {
            0 | 1 => {
                self.feature("residual connections");
                self.same_shape(v)
            }
            2 if r >= 1 => {
                self.feature("broadcasting");
                let last = d[r - 1];
                match self.below(4) {
                    0 => format!("linspace(0.5, 1.5, {last})"),
                    1 => format!("(arange({last}) * 0.1)"),
                    2 => format!("full([1, {last}], 0.3)"),
                    _ => format!("ones([{last}])"),
                }
            }
            _ => {
                self.feature("broadcasting");
                if r == 0 {
                    "0.5".into()
                } else {
                    let axis = self.range(1, r);
                    format!("mean({x}, axis: {axis}, keepdims: true)")
                }
            }
        };
        let e = match self.below(13) {
            0 => format!("{x} + {u}"),
            1 => format!("{x} - {u}"),
            2 => format!("{x} * {u}"),
            3 => format!("{x} / (1 + {u} * {u})"),
            4 => {
                self.feature("minimum, maximum");
                format!("minimum({x}, {u})")
            }
            5 => {
                self.feature("minimum, maximum");
                format!("maximum({u}, {x})")
            }
            6 => {
                self.feature("comparisons, where");
                format!("where({x} > {u}, {x}, {u} * 0.5)")
            }
            7 => {
                self.feature("comparisons, where");
                format!("({x} >= {u}) * {x}")
            }
            8 => {
                self.feature("comparisons, where");
                format!("where({x} < 0, 0.1 * {x}, {u})")
            }
            // Equalities that hold exactly in any precision: a maximum is
            // one of its operands, relu(x) is x or 0.
            10 => {
                self.feature("==, !=");
                format!("where({x} == maximum({x}, {u}), {x}, {u})")
            }
            11 => {
                self.feature("==, !=");
                format!("({x} != relu({x})) * {u}")
            }
            12 => {
                // Of `x`: `u` may be a number, which `zeros_like` refuses.
                self.feature("zeros_like");
                format!("where({x} > {u}, {x}, zeros_like({x}))")
            }
            _ => format!("({x} + {u}) * 0.5"),
        };
        Some((e, d))
    }

    fn reduce(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        self.feature("reductions");
        let f = *self.pick(&["mean", "sum"]);
        let keep = self.chance(0.3);
        let mut axes: Vec<usize> = (1..=r).filter(|_| self.rng.random_bool(0.5)).collect();
        if axes.is_empty() {
            axes.push(self.range(1, r));
        }
        let out: Vec<usize> = (1..=r)
            .filter_map(|a| if axes.contains(&a) { keep.then_some(1) } else { Some(d[a - 1]) })
            .collect();
        let axis = if axes.len() == 1 {
            axes[0].to_string()
        } else {
            format!("[{}]", axes.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))
        };
        let keep = if keep { ", keepdims: true" } else { "" };
        Some((format!("{f}({}, axis: {axis}{keep})", v.name), out))
    }

    fn slice(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        let axis = self.range(1, r);
        let n = d[axis - 1];
        let (sub, size) = match self.below(6) {
            0 if r >= 2 => {
                self.feature("indexing");
                let i = self.below(n);
                let text = if self.chance(0.4) { format!("{}", i as i64 - n as i64) } else { i.to_string() };
                (text, None)
            }
            1 if n >= 2 => {
                self.feature("slicing");
                let step = self.range(2, 3);
                (format!("::{step}"), Some(n.div_ceil(step)))
            }
            2 if n >= 2 => {
                self.feature("slicing");
                let k = self.range(1, n - 1);
                (format!("-{k}:"), Some(k))
            }
            3 if n >= 2 => {
                self.feature("slicing");
                (":-1".into(), Some(n - 1))
            }
            _ => {
                self.feature("slicing");
                let a = self.below(n);
                let b = self.range(a + 1, n);
                let step = if b - a >= 3 && self.chance(0.3) { 2 } else { 1 };
                let text = if step == 2 { format!("{a}:{b}:2") } else { format!("{a}:{b}") };
                (text, Some((b - a).div_ceil(step)))
            }
        };
        let mut out = d.clone();
        match size {
            Some(s) => out[axis - 1] = s,
            None => {
                out.remove(axis - 1);
            }
        }
        let subs = if axis == r && r >= 2 && self.chance(0.5) {
            self.feature("ellipsis");
            format!("..., {sub}")
        } else {
            let mut parts = vec![":".to_string(); axis];
            parts.push(sub);
            parts.join(", ")
        };
        Some((format!("{}[{subs}]", v.name), out))
    }

    fn concat(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        let axis = self.range(1, r);
        // Partners: live values equal to v but on `axis`.
        let partners: Vec<Value> = self
            .live
            .iter()
            .filter(|u| {
                u.dims.len() == r && (0..r).all(|i| i == axis - 1 || u.dims[i] == d[i]) && u.name != v.name
            })
            .cloned()
            .collect();
        let (u, n) = if !partners.is_empty() && self.chance(0.6) {
            let u = self.pick(&partners).clone();
            (u.name, u.dims[axis - 1])
        } else if axis == r {
            let n = self.range(1, 4);
            let u = self.bind(format!("dense({}, {n})", v.name), {
                let mut o = d.clone();
                o[r - 1] = n;
                o
            });
            (u.name, n)
        } else {
            (self.same_shape(v), d[axis - 1])
        };
        self.feature("concat");
        let mut out = d.clone();
        out[axis - 1] += n;
        let axis_text = if axis == r && self.chance(0.5) { "-1".to_string() } else { axis.to_string() };
        if self.chance(0.3) {
            Some((format!("concat([{}, {u}], axis: {axis_text})", v.name), out))
        } else {
            Some((format!("concat({}, {u}, axis: {axis_text})", v.name), out))
        }
    }

    fn split(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        let axis = self.range(1, r);
        let n = d[axis - 1];
        if n < 2 {
            return None;
        }
        self.feature("split");
        let mut out = d.clone();
        let parts = self.fresh("parts");
        let divisors: Vec<usize> = (2..=n).filter(|k| n.is_multiple_of(*k)).collect();
        if self.chance(0.5) && !divisors.is_empty() {
            let k = *self.pick(&divisors);
            self.lines.push(format!("{parts} = split({}, {k}, axis: {axis})", v.name));
            out[axis - 1] = n / k;
            let i = self.below(k);
            let i = if self.chance(0.3) { i as i64 - k as i64 } else { i as i64 };
            Some((format!("{parts}[{i}]"), out))
        } else {
            let a = self.range(1, n - 1);
            self.lines.push(format!("{parts} = split({}, [{a}, {}], axis: {axis})", v.name, n - a));
            let i = self.below(2);
            out[axis - 1] = if i == 0 { a } else { n - a };
            Some((format!("{parts}[{i}]"), out))
        }
    }

    fn pad(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        let m = self.range(1, r.min(2));
        let mode = *self.pick(&["zeros", "circular", "reflect", "edge"]);
        let mut out = d.clone();
        let mut widths = vec![];
        for i in r - m..r {
            let limit = match mode {
                "circular" => d[i],
                "reflect" => d[i] - 1,
                _ => 2,
            }
            .min(2);
            let a = self.range(0, limit);
            let b = self.range(0, limit);
            out[i] += a + b;
            widths.push(format!("[{a}, {b}]"));
        }
        self.feature("pad");
        let extra = match mode {
            "zeros" if self.chance(0.5) => ", value: -0.5".to_string(),
            "zeros" => String::new(),
            _ => format!(", mode: {mode}"),
        };
        Some((format!("pad({}, [{}]{extra})", v.name, widths.join(", ")), out))
    }

    fn reshape(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        match self.below(3) {
            0 if r >= 2 => {
                self.feature("flatten");
                Some((format!("flatten({})", v.name), vec![count(d)]))
            }
            1 if r >= 2 => {
                self.feature("permute");
                let mut perm: Vec<usize> = (1..=r).collect();
                for i in (1..r).rev() {
                    let j = self.below(i + 1);
                    perm.swap(i, j);
                }
                let out = perm.iter().map(|&a| d[a - 1]).collect();
                let axes: Vec<String> = std::iter::once(0).chain(perm).map(|a| a.to_string()).collect();
                Some((format!("permute({}, axes: [{}])", v.name, axes.join(", ")), out))
            }
            _ => {
                self.feature("reshape");
                // A factorisation of the example's size into one to three axes.
                let n = count(d);
                let mut out = vec![];
                let mut rest = n;
                for _ in 0..self.range(0, 2) {
                    let divisors: Vec<usize> = (1..=rest).filter(|k| rest.is_multiple_of(*k)).collect();
                    let k = *self.pick(&divisors);
                    out.push(k);
                    rest /= k;
                }
                out.push(rest);
                let infer = self.below(out.len() + 1);
                let parts: Vec<String> = out
                    .iter()
                    .enumerate()
                    .map(|(i, k)| if i == infer { "-1".to_string() } else { k.to_string() })
                    .collect();
                Some((format!("reshape({}, shape: [B, {}])", v.name, parts.join(", ")), out))
            }
        }
    }

    fn matmul(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        self.feature("matmul");
        if r >= 2 && self.chance(0.5) {
            // v · vᵀ over the last two axes.
            let mut axes: Vec<usize> = (0..=r).collect();
            axes.swap(r - 1, r);
            let axes: Vec<String> = axes.iter().map(|a| a.to_string()).collect();
            let mut out = d.clone();
            out[r - 1] = d[r - 2];
            return Some((
                format!("matmul({}, permute({}, axes: [{}]))", v.name, v.name, axes.join(", ")),
                out,
            ));
        }
        // v · W with a constant matrix of numbers.
        let k = d[r - 1];
        let n = self.range(1, 5);
        let mut out = d.clone();
        out[r - 1] = n;
        Some((format!("matmul({}, reshape(linspace(-1, 1, {}), shape: [{k}, {n}]))", v.name, k * n), out))
    }

    /// conv1d/2d/3d on `[B, C, *S]`.
    fn conv(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let spatial = d.len() - 1;
        let f = ["conv1d", "conv2d", "conv3d"][spatial - 1];
        let (u, c) = self.units(1, 4);
        let kernel = self.range(1, 3);
        let stride = if self.chance(0.3) { 2 } else { 1 };
        let dilation = if kernel > 1 && self.chance(0.2) { 2 } else { 1 };
        let smallest = *d[1..].iter().min().unwrap();
        let mut out = vec![c];
        let mut args = format!("{f}({}, {u}, kernel: {kernel}", v.name);
        if stride > 1 {
            write!(args, ", stride: {stride}").unwrap();
        }
        if dilation > 1 {
            write!(args, ", dilation: {dilation}").unwrap();
        }
        let padded = match self.below(3) {
            0 => {
                for &s in &d[1..] {
                    out.push(window(s, kernel, stride, dilation, 0)?);
                }
                false
            }
            1 => {
                args.push_str(", pad: same");
                for &s in &d[1..] {
                    out.push(s.div_ceil(stride));
                }
                let total = (smallest.div_ceil(stride) - 1) * stride + dilation * (kernel - 1) + 1;
                total > smallest
            }
            _ => {
                let p = self.range(0, 1);
                write!(args, ", pad: {p}").unwrap();
                for &s in &d[1..] {
                    out.push(window(s, kernel, stride, dilation, 2 * p)?);
                }
                p > 0
            }
        };
        if padded && smallest >= 3 && self.chance(0.4) {
            let mode = *self.pick(&["circular", "reflect", "edge"]);
            write!(args, ", pad_mode: {mode}").unwrap();
            self.feature("pad_mode");
        }
        if self.chance(0.15) {
            args.push_str(", bias: false");
        }
        args.push(')');
        self.feature(f);
        Some((args, out))
    }

    fn conv_transpose(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let (u, c) = self.units(1, 3);
        let kernel = self.range(1, 3);
        let stride = self.range(1, 2);
        let pad = if kernel >= 3 && self.chance(0.4) { 1 } else { 0 };
        let mut out = vec![c];
        for &s in &d[1..] {
            let o = (s - 1) * stride + kernel;
            if o <= 2 * pad {
                return None;
            }
            out.push(o - 2 * pad);
        }
        self.feature("conv_transpose2d");
        Some((
            format!("conv_transpose2d({}, {u}, kernel: {kernel}, stride: {stride}, pad: {pad})", v.name),
            out,
        ))
    }

    fn pool(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let f = *self.pick(&["maxpool2d", "avgpool2d"]);
        let size = self.range(2, 3);
        let stride = self.range(1, size);
        let pad = if self.chance(0.3) { size / 2 } else { 0 };
        let mut out = vec![d[0]];
        for &s in &d[1..] {
            out.push(window(s, size, stride, 1, 2 * pad)?);
        }
        self.feature(if f == "maxpool2d" { "maxpool2d" } else { "avgpool2d" });
        Some((format!("{f}({}, {size}, stride: {stride}, pad: {pad})", v.name), out))
    }

    fn upsample(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let bilinear = d.len() == 3 && self.chance(0.5);
        let mut out = d.clone();
        for s in &mut out[1..] {
            *s *= 2;
        }
        self.feature("upsample");
        let mode = if bilinear { ", mode: bilinear" } else { "" };
        Some((format!("upsample({}, 2{mode})", v.name), out))
    }

    fn warp(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        self.feature("warp");
        let boundary = *self.pick(&["zeros", "edge", "circular"]);
        let (h, w) = (d[1], d[2]);
        let flow = if self.chance(0.5) {
            self.bind(format!("tanh(conv2d({}, 2, kernel: 1)) * 1.5", v.name), vec![2, h, w])
        } else {
            self.feature("affine_flow");
            let theta =
                self.bind(format!("reshape(dense(flatten({}), 6), shape: [B, 2, 3])", v.name), vec![2, 3]);
            self.bind(format!("affine_flow({}, [{h}, {w}])", theta.name), vec![2, h, w])
        };
        let mode = if self.chance(0.3) {
            self.feature("warp, nearest");
            ", mode: nearest"
        } else {
            ""
        };
        Some((format!("warp({}, {}{mode}, boundary: {boundary})", v.name, flow.name), d.clone()))
    }

    fn recurrent(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let (t, _f) = (d[0], d[1]);
        if t > 6 {
            return None;
        }
        let layer = *self.pick(&["rnn", "lstm", "gru"]);
        self.feature(match layer {
            "rnn" => "rnn",
            "lstm" => "lstm",
            _ => "gru",
        });
        let (u, hidden) = self.units(1, 5);
        let mut args = format!("{layer}({}, {u}", v.name);
        if layer == "rnn" && self.chance(0.4) {
            args.push_str(", activation: relu");
        }
        if self.chance(0.3) {
            args.push_str(", reverse: true");
        }
        if self.chance(0.2) {
            args.push_str(", bias: false");
        }
        if self.chance(0.2) {
            self.feature("recurrent init");
            if layer == "lstm" {
                write!(args, ", init: [zeros([B, {hidden}]), ones([B, {hidden}]) * 0.1]").unwrap();
            } else {
                write!(args, ", init: full([B, {hidden}], 0.2)").unwrap();
            }
        }
        match self.below(4) {
            0 => Some((format!("{args}, return: last)"), vec![hidden])),
            1 => {
                self.feature("recurrent return: states/all");
                let i = if layer == "lstm" { self.below(2) } else { 0 };
                Some((format!("{args}, return: states)[{i}]"), vec![hidden]))
            }
            2 => {
                self.feature("recurrent return: states/all");
                Some((format!("{args}, return: all)[0]"), vec![t, hidden]))
            }
            _ => Some((format!("{args})"), vec![t, hidden])),
        }
    }

    fn attention(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let (t, e) = (d[0], d[1]);
        if t > 8 {
            return None;
        }
        let mask = if self.chance(0.4) { "causal" } else { "none" };
        match self.below(3) {
            0 => {
                self.feature("attention");
                let (u, dv) = self.units(1, 4);
                let vv = self.bind(format!("dense({}, {u})", v.name), vec![t, dv]);
                let k = self.same_shape(v);
                Some((format!("attention({}, {k}, {}, mask: {mask})", v.name, vv.name), vec![t, dv]))
            }
            1 => {
                self.feature("multihead_attention");
                let divisors: Vec<usize> = (1..=e).filter(|h| e.is_multiple_of(*h)).collect();
                let heads = *self.pick(&divisors);
                let mut args = format!("multihead_attention({}, {heads}, mask: {mask}", v.name);
                if self.chance(0.3) {
                    // Cross-attention to another sequence.
                    let s = self.range(1, 4);
                    let c = self.range(1, 4);
                    let ctx =
                        self.bind(format!("dense({}[:, 0:{}], {c})", v.name, s.min(t)), vec![s.min(t), c]);
                    if mask == "none" {
                        write!(args, ", context: {}", ctx.name).unwrap();
                        self.feature("cross-attention");
                    }
                }
                if self.chance(0.3) {
                    args.push_str(", dropout: 0.2");
                }
                args.push(')');
                Some((args, d.clone()))
            }
            _ => {
                self.feature("transformer_layer");
                let divisors: Vec<usize> = (1..=e).filter(|h| e.is_multiple_of(*h)).collect();
                let heads = *self.pick(&divisors);
                let ff = self.range(2, 8);
                let norm = *self.pick(&["pre", "post"]);
                let act = *self.pick(&["gelu", "relu"]);
                let drop = if self.chance(0.3) { ", dropout: 0.1" } else { "" };
                Some((
                    format!(
                        "transformer_layer({}, {heads}, {ff}, norm: {norm}, activation: {act}, mask: {mask}{drop})",
                        v.name
                    ),
                    d.clone(),
                ))
            }
        }
    }

    /// gather and scatter along an axis whose size is a grid's node count.
    fn graph_ops(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let r = d.len();
        let axis = self.range(1, r);
        let n = d[axis - 1];
        let rows: Vec<usize> = (1..=n).filter(|k| n.is_multiple_of(*k)).collect();
        let rows = *self.pick(&rows);
        let cols = n / rows;
        if rows * cols < 2 {
            return None;
        }
        let neighbours = if self.chance(0.3) { 8 } else { 4 };
        let periodic = if self.chance(0.3) { ", periodic: true" } else { "" };
        let edges = self.fresh("edges");
        self.lines.push(format!("{edges} = grid_graph({rows}, {cols}, neighbours: {neighbours}{periodic})"));
        self.feature("gather, scatter, grid_graph");
        // Messages along every edge (at most 8 per node), summed back.
        if 8 * count(d) > 4 * MAX_VALUES {
            return None;
        }
        let m = format!("gather({}, {edges}[:, 0], axis: {axis})", v.name);
        let reduce = *self.pick(&["sum", "mean", "max"]);
        Some((format!("scatter(tanh({}), {edges}[:, 1], {n}, axis: {axis}, reduce: {reduce})", m), d.clone()))
    }

    fn conv_recurrent(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let (t, h, w) = (d[0], d[2], d[3]);
        if t > 3 || h * w > 25 {
            return None;
        }
        let hidden = self.range(1, 2);
        let kernel = *self.pick(&[1, 3]);
        let forecast = if self.chance(0.3) { self.range(1, 2) } else { 0 };
        let layer = *self.pick(&["convlstm", "convgru", "trajgru"]);
        self.feature("convlstm, convgru, trajgru");
        let extra = if layer == "trajgru" { ", links: 1, flow_channels: 2" } else { "" };
        let steps = if forecast > 0 { forecast } else { t };
        Some((
            format!("{layer}({}, {hidden}, kernel: {kernel}, forecast: {forecast}{extra})", v.name),
            vec![steps, hidden, h, w],
        ))
    }

    // --------------------------------------------------------------- blocks

    /// A new block for inputs of `dims`, or an existing one.
    fn block_for(&mut self, dims: &[usize], preserve: bool) -> Option<Block> {
        let depth = match self.scope {
            Scope::Model => 0,
            Scope::Block { depth, .. } => depth,
        };
        let existing: Vec<Block> = self
            .blocks
            .iter()
            .filter(|b| b.input == dims && (!preserve || b.output == dims))
            .cloned()
            .collect();
        if !existing.is_empty() && self.chance(0.5) {
            return Some(self.pick(&existing).clone());
        }
        if depth >= 2 {
            return None;
        }
        let width = self.range(1, 5);
        let seed: u64 = self.rng.random();
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut inner = Gen::new(
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
            Scope::Block { width, depth: depth + 1 },
        );
        inner.blocks = std::mem::take(&mut self.blocks);
        inner.block_text = std::mem::take(&mut self.block_text);
        inner.live.push(Value { name: "x".into(), dims: dims.to_vec() });
        let steps = self.range(1, 4);
        for _ in 0..steps {
            inner.statement();
        }
        let mut last = inner.live.last().cloned().unwrap();
        if preserve && last.dims != dims {
            // Back to the input's shape: a dense layer per position does it
            // when only the last axis differs; else a residual of the input.
            if last.dims.len() == dims.len() && last.dims[..dims.len() - 1] == dims[..dims.len() - 1] {
                last = inner.bind(format!("dense({}, {})", last.name, dims[dims.len() - 1]), dims.to_vec());
            } else {
                last = inner.bind("x * scale".into(), dims.to_vec());
            }
        }
        if inner.chance(0.3) {
            last = inner.bind(format!("{} * scale", last.name), last.dims.clone());
        }
        self.blocks = std::mem::take(&mut inner.blocks);
        self.block_text = std::mem::take(&mut inner.block_text);
        self.features.extend(inner.features.iter().copied());
        self.feature("blocks");
        if depth > 0 {
            self.feature("nested blocks");
        }
        let name = format!("blk{}", self.blocks.len() + 1);
        let mut text = format!("block {name}(x, width: int, scale: float = 0.5) {{\n");
        for l in &inner.lines {
            writeln!(text, "  {l}").unwrap();
        }
        writeln!(text, "  return {}\n}}", last.name).unwrap();
        let block = Block { name, width, input: dims.to_vec(), output: last.dims };
        self.blocks.push(block.clone());
        self.block_text.push(text);
        Some(block)
    }

    fn call_block(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let b = self.block_for(&v.dims, false)?;
        let scale = if self.chance(0.3) { ", scale: 0.25" } else { "" };
        let e = if self.chance(0.5) {
            format!("{} |> {}({}{scale})", v.name, b.name, b.width)
        } else {
            format!("{}({}, {}{scale})", b.name, v.name, b.width)
        };
        Some((e, b.output))
    }

    /// A layer value applied to two tensors of one shape.
    fn shared_layer(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        if d.is_empty() {
            return None;
        }
        let name = self.fresh("layer");
        let out = if self.chance(0.5) {
            let b = self.block_for(d, false)?;
            self.lines.push(format!("{name} = {}({})", b.name, b.width));
            b.output
        } else {
            let n = self.range(1, 5);
            self.lines.push(format!("{name} = dense({n})"));
            let mut o = d.clone();
            let r = o.len();
            o[r - 1] = n;
            o
        };
        // A block may own no parameters; an optimiser's `params:` needs some.
        if out.len() == d.len() && self.lines.last().is_some_and(|l| l.contains("= dense(")) {
            self.layers.push(name.clone());
        }
        self.feature("shared layer values");
        let u = self.same_shape(v);
        let a = self.bind(format!("{} |> {name}", v.name), out.clone());
        Some((format!("{name}({u}) + {}", a.name), out))
    }

    fn repeat(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let n = self.range(1, 3);
        self.feature("repeat");
        if self.chance(0.5) {
            let units = d[d.len() - 1];
            return Some((format!("{} |> repeat(dense({units}), {n})", v.name), d.clone()));
        }
        let b = self.block_for(d, true)?;
        Some((format!("{} |> repeat({}({}), {n})", v.name, b.name, b.width), d.clone()))
    }

    fn map(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let axis = self.range(1, d.len());
        if d[axis - 1] > 4 {
            return None;
        }
        let mut slice = d.clone();
        let size = slice.remove(axis - 1);
        self.feature("map");
        let (layer, mut out) = if self.chance(0.5) {
            let n = self.range(1, 4);
            let mut o = slice.clone();
            let k = o.len();
            o[k - 1] = n;
            (format!("dense({n})"), o)
        } else {
            let b = self.block_for(&slice, false)?;
            (format!("{}({})", b.name, b.width), b.output)
        };
        // The results are stacked on `axis`, which they must have room for.
        if out.len() < axis - 1 {
            return None;
        }
        out.insert(axis - 1, size);
        if self.chance(0.5) {
            Some((format!("{} |> map({layer}, axis: {axis})", v.name), out))
        } else {
            Some((format!("map({layer}, {}, axis: {axis})", v.name), out))
        }
    }

    /// A recurrent cell written as a block, run by `scan`.
    fn scan(&mut self, v: &Value) -> Option<(String, Vec<usize>)> {
        let d = &v.dims;
        let (t, f) = (d[0], d[1]);
        if t > 6 {
            return None;
        }
        let hidden = self.range(1, 4);
        let id = self.blocks.len() + self.block_text.len() + 1;
        self.feature("scan");
        let reverse = if self.chance(0.3) { ", reverse: true" } else { "" };
        match self.below(3) {
            0 => {
                let name = format!("rcell{id}");
                self.block_text.push(format!(
                    "block {name}(x, h, hidden: int) {{\n  z = concat(x, h, axis: 1) |> dense(hidden) |> sigmoid\n  c = concat(x, h, axis: 1) |> dense(hidden) |> tanh\n  return z * h + (1 - z) * c\n}}"
                ));
                let cell = self.fresh("cell");
                self.lines.push(format!("{cell} = {name}(hidden: {hidden})"));
                Some((
                    format!("scan({cell}, {}, init: zeros([B, {hidden}]){reverse})", v.name),
                    vec![t, hidden],
                ))
            }
            1 => {
                let name = format!("rcell{id}");
                self.block_text.push(format!(
                    "block {name}(x, h, c, hidden: int) {{\n  g = concat(x, h, axis: 1) |> dense(2 * hidden)\n  c2 = c * sigmoid(g[:, 0:hidden]) + tanh(g[:, hidden:2 * hidden])\n  return [tanh(c2) * 0.5 + h * 0.5, c2]\n}}"
                ));
                let cell = self.fresh("cell");
                self.lines.push(format!("{cell} = {name}(hidden: {hidden})"));
                let init = format!("init: [zeros([B, {hidden}]), ones([B, {hidden}])]");
                if self.chance(0.5) {
                    self.feature("scan return: states");
                    let i = self.below(2);
                    Some((
                        format!("scan({cell}, {}, {init}, return: states{reverse})[{i}]", v.name),
                        vec![hidden],
                    ))
                } else {
                    Some((format!("scan({cell}, {}, {init}{reverse})", v.name), vec![t, hidden]))
                }
            }
            _ => {
                // Forecast: a cell of the state alone, seeded by a summary of v.
                let name = format!("rcell{id}");
                self.block_text.push(format!(
                    "block {name}(h, hidden: int) {{\n  return h |> dense(hidden) |> tanh\n}}"
                ));
                let cell = self.fresh("cell");
                self.lines.push(format!("{cell} = {name}(hidden: {f})"));
                let steps = self.range(1, 4);
                self.feature("scan forecast");
                Some((
                    format!("scan({cell}, none, init: mean({}, axis: 1), steps: {steps})", v.name),
                    vec![steps, f],
                ))
            }
        }
    }
}
