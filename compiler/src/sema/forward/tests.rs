//! Tests of the forward-graph library: result types (with a symbolic batch `B`),
//! the parameters each layer creates, error messages for bad shapes, and
//! values computed by the reference interpreter in f64 against hand values.

use std::collections::HashMap;

use ndarray::ArrayD;

use super::*;
use crate::ir::interp::{example_inputs, run, Tensor};
use crate::ir::{
    DType, Dim, Graph, Init, InputKind, Loc, Mode, OutputKind, ParamRole, PoolKind, Shape, Type,
};
use crate::syntax::ast::BinOp;

// The built-ins of part 2 of the language, one file per source file.
mod choice;
mod create;
mod graph;
mod slicing;
mod warp;

// ---------------------------------------------------------------- harness

/// A [`Cx`] that records what the builder asked for.
struct TestCx {
    graph: Graph,
    params: Vec<(String, ParamRole, Shape, Init)>,
    states: Vec<(String, Shape, Init)>,
    updates: Vec<(ValueId, ValueId)>,
    key: Option<ValueId>,
    streams: u64,
    /// Each constant: its input, name, type, values and origin.
    constants: Vec<(ValueId, String, Type, ConstData, String)>,
}

impl Cx for TestCx {
    fn graph(&mut self) -> &mut Graph {
        &mut self.graph
    }
    fn mode(&self) -> Mode {
        self.graph.mode
    }
    fn loc(&self) -> Loc {
        Loc::NONE
    }
    fn param(&mut self, tensor: &str, role: ParamRole, shape: Shape, init: Init) -> ValueId {
        self.params.push((tensor.into(), role, shape.clone(), init));
        self.graph.input(tensor, InputKind::Param { role, init }, Type::f32(shape), Loc::NONE)
    }
    fn state(&mut self, tensor: &str, shape: Shape, init: Init) -> ValueId {
        self.states.push((tensor.into(), shape.clone(), init));
        self.graph.input(tensor, InputKind::State { init }, Type::f32(shape), Loc::NONE)
    }
    fn update_state(&mut self, state: ValueId, new: ValueId) {
        self.updates.push((state, new));
    }
    fn key(&mut self) -> ValueId {
        if let Some(k) = self.key {
            return k;
        }
        let k = self.graph.input("rng", InputKind::Key, Type::new(DType::I32, Shape::known(&[2])), Loc::NONE);
        self.key = Some(k);
        k
    }
    fn next_stream(&mut self) -> u64 {
        self.streams += 1;
        self.streams
    }
    fn constant(&mut self, tensor: &str, ty: Type, data: ConstData, origin: String) -> ValueId {
        // Named like sema names them: a second `values` is `values_2`.
        let mut name = tensor.to_string();
        let mut k = 1;
        while self.constants.iter().any(|c| c.1 == name) {
            k += 1;
            name = format!("{tensor}_{k}");
        }
        let id = self.graph.input(name.clone(), InputKind::Const, ty.clone(), Loc::NONE);
        self.constants.push((id, name, ty, data, origin));
        id
    }
    fn constant_value(&self, id: ValueId) -> Option<&ConstData> {
        self.constants.iter().find(|c| c.0 == id).map(|c| &c.3)
    }
}

fn new_cx(mode: Mode) -> TestCx {
    TestCx {
        graph: Graph::new("t", mode),
        params: vec![],
        states: vec![],
        updates: vec![],
        key: None,
        streams: 0,
        constants: vec![],
    }
}

fn cx() -> TestCx {
    new_cx(Mode::Train)
}

/// `"B, 16, 3"` → a shape with symbolic `B`.
fn shape_of(s: &str) -> Shape {
    if s.trim().is_empty() {
        return Shape::scalar();
    }
    Shape(
        s.split(',')
            .map(|d| d.trim())
            .map(|d| d.parse().map(Dim::Known).unwrap_or_else(|_| Dim::Sym(d.to_string())))
            .collect(),
    )
}

impl TestCx {
    fn input(&mut self, name: &str, s: &str) -> ValueId {
        self.typed_input(name, DType::F32, s)
    }
    fn typed_input(&mut self, name: &str, dtype: DType, s: &str) -> ValueId {
        self.graph.input(name, InputKind::Data, Type::new(dtype, shape_of(s)), Loc::NONE)
    }
    fn ty_of(&self, v: ValueId) -> String {
        self.graph.ty(v).to_string()
    }
    /// Runs the graph with `B = b`, example values for unnamed inputs, and
    /// returns the listed values.
    fn eval(&self, outs: &[ValueId], b: usize, given: &[(&str, Tensor<f64>)]) -> Vec<ArrayD<f64>> {
        let mut g = self.graph.clone();
        for (i, &v) in outs.iter().enumerate() {
            g.output(OutputKind::Other, format!("y{i}"), v);
        }
        let dims = HashMap::from([("B".to_string(), b)]);
        let mut inputs = example_inputs::<f64>(&g, &dims, 7).expect("example inputs");
        for (_, name, ty, data, _) in &self.constants {
            let shape = ty.shape.as_known().expect("constants have known shapes");
            let t = match data {
                ConstData::F32(_) => ft(&shape, &data.to_f64()),
                ConstData::I32(v) => it(&shape, v),
            };
            inputs.insert(name.clone(), t);
        }
        for (name, t) in given {
            inputs.insert(name.to_string(), t.clone());
        }
        run(&g, &inputs).expect("graph runs").into_iter().map(|(_, t)| t.into_float().expect("f32")).collect()
    }
    /// Runs the graph like [`TestCx::eval`] and returns one bool value.
    fn eval_bool(&self, out: ValueId, given: &[(&str, Tensor<f64>)]) -> Vec<bool> {
        let mut g = self.graph.clone();
        g.output(OutputKind::Other, "y", out);
        let b = given.first().map_or(1, |(_, t)| t.shape().first().copied().unwrap_or(1));
        let dims = HashMap::from([("B".to_string(), b)]);
        let mut inputs = example_inputs::<f64>(&g, &dims, 7).expect("example inputs");
        for (name, t) in given {
            inputs.insert(name.to_string(), t.clone());
        }
        let out = run(&g, &inputs).expect("graph runs").remove(0).1;
        out.as_bool().expect("bool").iter().copied().collect()
    }
    fn eval1(&self, out: ValueId, given: &[(&str, Tensor<f64>)]) -> Vec<f64> {
        let b = given.first().map_or(1, |(_, t)| t.shape().first().copied().unwrap_or(1));
        self.eval(&[out], b, given).remove(0).iter().copied().collect()
    }
}

/// The elements in row-major order.
fn flat(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

fn ft(shape: &[usize], values: &[f64]) -> Tensor<f64> {
    Tensor::from_f64(shape, values).expect("values fill shape")
}

fn it(shape: &[usize], values: &[i32]) -> Tensor<f64> {
    Tensor::Int(ArrayD::from_shape_vec(ndarray::IxDyn(shape), values.to_vec()).expect("values fill shape"))
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "got {got:?}, want {want:?}");
    }
}

fn err_of(r: Built) -> BuildError {
    r.expect_err("expected a build error")
}

const POINTS: [f64; 5] = [-2.0, -0.5, 0.0, 0.5, 2.0];

// ---------------------------------------------------------------- arithmetic

#[test]
fn binary_broadcasts_with_symbolic_batch() {
    let mut c = cx();
    let a = c.input("a", "B, 16, 4, 4");
    let b = c.input("b", "B, 1, 4, 4");
    let y = binary(&mut c, BinOp::Add, a, b).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 16, 4, 4]");
    let s = scalar(&mut c, 2.0);
    let z = binary(&mut c, BinOp::Mul, s, a).unwrap();
    assert_eq!(c.ty_of(z), "f32[B, 16, 4, 4]");
}

#[test]
fn binary_values_follow_numpy() {
    let mut c = cx();
    let a = c.input("a", "2, 3");
    let b = c.input("b", "3");
    let y = binary(&mut c, BinOp::Sub, a, b).unwrap();
    let got = c.eval1(y, &[("a", ft(&[2, 3], &[1., 2., 3., 4., 5., 6.])), ("b", ft(&[3], &[1., 1., 2.]))]);
    assert_close(&got, &[0., 1., 1., 3., 4., 4.], 1e-12);
    let n = neg(&mut c, b).unwrap();
    assert_close(
        &c.eval1(n, &[("a", ft(&[2, 3], &[0.; 6])), ("b", ft(&[3], &[1., -2., 0.]))]),
        &[-1., 2., 0.],
        0.0,
    );
}

#[test]
fn binary_mismatch_names_both_shapes_and_the_dimension() {
    let mut c = cx();
    let a = c.input("a", "B, 16, 32, 32");
    let b = c.input("b", "B, 8, 32, 32");
    let e = err_of(binary(&mut c, BinOp::Add, a, b));
    assert_eq!(e.message, "mismatched shapes for `+`: dimension 1 is 16 vs 8");
    assert_eq!(e.label.as_deref(), Some("cannot add f32[B, 16, 32, 32] and f32[B, 8, 32, 32]"));
    assert_eq!(e.operand, None, "neither operand of `+` is singled out");
    assert_eq!(e.notes.len(), 1);
    let l = c.typed_input("l", DType::I32, "B");
    let e = err_of(binary(&mut c, BinOp::Mul, a, l));
    assert!(e.message.contains("arithmetic needs f32"), "{}", e.message);
}

// ---------------------------------------------------------------- layers

#[test]
fn dense_creates_pytorch_linear_params() {
    let mut c = cx();
    let x = c.input("x", "B, 3");
    let y = dense(&mut c, x, 2, true).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2]");
    let bound = 1.0 / 3f64.sqrt();
    assert_eq!(
        c.params,
        vec![
            ("weight".into(), ParamRole::Weight, Shape::known(&[2, 3]), Init::Uniform { bound }),
            ("bias".into(), ParamRole::Bias, Shape::known(&[2]), Init::Uniform { bound }),
        ]
    );
    let w = ft(&[2, 3], &[1., 2., 3., -1., 0., 1.]);
    let b = ft(&[2], &[0.5, -0.5]);
    let xs = ft(&[2, 3], &[1., 1., 1., 2., 0., -1.]);
    let got = c.eval1(y, &[("x", xs), ("weight", w), ("bias", b)]);
    // Row 0: [6, 0] + b; row 1: [2-3, -2-1] + b.
    assert_close(&got, &[6.5, -0.5, -0.5, -3.5], 1e-12);
}

#[test]
fn dense_on_rank_3_and_rank_1_and_without_bias() {
    let mut c = cx();
    let x = c.input("x", "B, 2, 3");
    let y = dense(&mut c, x, 1, false).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2, 1]");
    assert_eq!(c.params.len(), 1);
    let got = c.eval1(
        y,
        &[("x", ft(&[1, 2, 3], &[1., 2., 3., 4., 5., 6.])), ("weight", ft(&[1, 3], &[1., 0., -1.]))],
    );
    assert_close(&got, &[-2., -2.], 1e-12);

    let mut c = cx();
    let v = c.input("v", "3");
    let y = dense(&mut c, v, 4, true).unwrap();
    assert_eq!(c.ty_of(y), "f32[4]");
}

#[test]
fn dense_errors() {
    let mut c = cx();
    let s = c.input("s", "");
    let e = err_of(dense(&mut c, s, 4, true));
    assert_eq!(e.message, "`dense` needs an input with at least 1 axis (features last), got f32[]");
    let x = c.input("x", "B, F");
    assert!(err_of(dense(&mut c, x, 4, true)).message.contains("symbolic `F`"));
    let x = c.input("x2", "B, 4");
    assert!(err_of(dense(&mut c, x, 0, true)).message.contains("must be positive"));
    assert!(err_of(dense(&mut c, x, 1 << 40, true)).message.contains("too large"));
}

#[test]
fn conv_same_gives_ceil_of_size_over_stride() {
    for stride in [1, 2] {
        for k in [1, 2, 3, 4] {
            for n in [7usize, 8] {
                let mut c = cx();
                let x = c.input("x", &format!("B, 2, {n}, {n}"));
                let y = conv(
                    &mut c,
                    x,
                    2,
                    5,
                    &[k, k],
                    &[stride, stride],
                    &Padding::Same,
                    &[PadMode::Zeros, PadMode::Zeros],
                    &[1, 1],
                    true,
                )
                .unwrap();
                let m = n.div_ceil(stride);
                assert_eq!(c.ty_of(y), format!("f32[B, 5, {m}, {m}]"), "k={k} s={stride} n={n}");
                // The graph runs in the interpreter with these sizes too.
                let out = c.eval(&[y], 2, &[]);
                assert_eq!(out[0].shape(), &[2, 5, m, m]);
            }
        }
    }
}

#[test]
fn conv_params_values_and_errors() {
    let mut c = cx();
    let x = c.input("x", "B, 1, 3, 3");
    let y = conv(
        &mut c,
        x,
        2,
        1,
        &[3, 3],
        &[1, 1],
        &Padding::Same,
        &[PadMode::Zeros, PadMode::Zeros],
        &[1, 1],
        true,
    )
    .unwrap();
    assert_eq!(c.params[0].2, Shape::known(&[1, 1, 3, 3]));
    assert_eq!(c.params[0].3, Init::Uniform { bound: 1.0 / 3.0 });
    assert_eq!(c.params[1].2, Shape::known(&[1]));
    let xs = ft(&[1, 1, 3, 3], &(0..9).map(f64::from).collect::<Vec<_>>());
    let got = c.eval1(y, &[("x", xs), ("weight", ft(&[1, 1, 3, 3], &[1.; 9])), ("bias", ft(&[1], &[1.]))]);
    // Corner (0,0): 0+1+3+4 = 8; centre: 36; plus bias.
    assert_close(&[got[0], got[4]], &[9., 37.], 1e-12);

    let mut c = cx();
    let x = c.input("x", "B, 4, 3");
    let e = err_of(conv(&mut c, x, 1, 2, &[5], &[1], &Padding::Valid, &[PadMode::Zeros], &[1], true));
    assert!(e.message.contains("kernel of extent 5 does not fit axis 2 of f32[B, 4, 3]"), "{}", e.message);
    let e = err_of(conv(
        &mut c,
        x,
        2,
        2,
        &[3, 3],
        &[1, 1],
        &Padding::Valid,
        &[PadMode::Zeros, PadMode::Zeros],
        &[1, 1],
        true,
    ));
    assert_eq!(e.message, "`conv2d` needs a rank-4 input [B, C, H, W], got f32[B, 4, 3]");
    let e = err_of(conv(&mut c, x, 1, 2, &[3, 3], &[1], &Padding::Valid, &[PadMode::Zeros], &[1], true));
    assert!(e.message.contains("kernel needs 1 value(s)"), "{}", e.message);
    let y = conv(&mut c, x, 1, 2, &[3], &[1], &Padding::Explicit(vec![1]), &[PadMode::Zeros], &[1], false)
        .unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2, 3]");
}

#[test]
fn conv_transpose_doubles_size() {
    let mut c = cx();
    let x = c.input("x", "B, 4, 5, 5");
    let y = conv_transpose(&mut c, x, 2, 2, &[2, 2], &[2, 2], &[0, 0], true).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2, 10, 10]");
    assert_eq!(c.params[0].2, Shape::known(&[4, 2, 2, 2]));
    assert_eq!(c.params[0].3, Init::Uniform { bound: 1.0 / 8f64.sqrt() });
    let y = conv_transpose(&mut c, x, 2, 3, &[3, 3], &[2, 2], &[1, 1], false).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 3, 9, 9]");
    assert!(err_of(conv_transpose(&mut c, x, 2, 3, &[1, 1], &[1, 1], &[3, 3], false))
        .message
        .contains("removes the whole output"));
}

// ---------------------------------------------------------------- recurrent

/// Deterministic test values in about [-1, 1].
fn wave(n: usize, phase: f64) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.731 + phase).sin()).collect()
}

/// The ConvLSTM recurrence written out with plain loops (PyTorch's
/// `Conv2d(padding=k // 2)` on `cat([x_t, h])`, `split` into i, f, g, o):
/// every hidden state `h_1 .. h_{T+forecast}`, each `[B, hidden, H, W]`
/// flattened. `x` is `[B, T, C, H, W]`, `w` `[4·hidden, C + hidden, k, k]`.
#[allow(clippy::too_many_arguments)]
fn convlstm_reference(
    x: &[f64],
    [b, t, c, hh, ww]: [usize; 5],
    w: &[f64],
    bias: &[f64],
    hidden: usize,
    k: usize,
    forecast: usize,
) -> Vec<Vec<f64>> {
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let zc = c + hidden;
    let pad = (k / 2) as isize;
    let mut h = vec![0.0; b * hidden * hh * ww];
    let mut cell = h.clone();
    let mut states = vec![];
    for step in 0..t + forecast {
        // z = concat[x_t, h] along channels: [B, C + hidden, H, W].
        let mut z = vec![0.0; b * zc * hh * ww];
        for n in 0..b {
            for ch in 0..zc {
                for p in 0..hh * ww {
                    z[(n * zc + ch) * hh * ww + p] = if ch < c {
                        if step < t {
                            x[(((n * t + step) * c) + ch) * hh * ww + p]
                        } else {
                            0.0
                        }
                    } else {
                        h[(n * hidden + ch - c) * hh * ww + p]
                    };
                }
            }
        }
        let gate = |n: usize, o: usize, y: usize, xx: usize| {
            let mut acc = bias[o];
            for ch in 0..zc {
                for ky in 0..k {
                    for kx in 0..k {
                        let (iy, ix) = (y as isize + ky as isize - pad, xx as isize + kx as isize - pad);
                        if iy >= 0 && ix >= 0 && (iy as usize) < hh && (ix as usize) < ww {
                            let zi = (n * zc + ch) * hh * ww + iy as usize * ww + ix as usize;
                            acc += w[((o * zc + ch) * k + ky) * k + kx] * z[zi];
                        }
                    }
                }
            }
            acc
        };
        for n in 0..b {
            for j in 0..hidden {
                for y in 0..hh {
                    for xx in 0..ww {
                        let i = sig(gate(n, j, y, xx));
                        let f = sig(gate(n, hidden + j, y, xx));
                        let g = gate(n, 2 * hidden + j, y, xx).tanh();
                        let o = sig(gate(n, 3 * hidden + j, y, xx));
                        let at = (n * hidden + j) * hh * ww + y * ww + xx;
                        cell[at] = f * cell[at] + i * g;
                        h[at] = o * cell[at].tanh();
                    }
                }
            }
        }
        states.push(h.clone());
    }
    states
}

/// Stacks the chosen states `[B, hidden, H, W]` on axis 1, flattened.
fn stack_states(states: &[Vec<f64>], b: usize) -> Vec<f64> {
    let per = states[0].len() / b;
    let mut out = vec![];
    for n in 0..b {
        for s in states {
            out.extend_from_slice(&s[n * per..(n + 1) * per]);
        }
    }
    out
}

#[test]
fn convlstm_matches_an_unrolled_reference() {
    // (frames T, channels C, hidden, kernel, forecast)
    let cases = [(3, 2, 2, 3, 0), (2, 1, 2, 3, 2), (1, 2, 3, 1, 3), (2, 1, 1, 5, 1)];
    for (t, c_in, hidden, k, forecast) in cases {
        let (b, hh, ww) = (2, 3, 4);
        let mut c = cx();
        let x = c.input("x", &format!("B, {t}, {c_in}, {hh}, {ww}"));
        let y = convlstm(&mut c, x, hidden, k, forecast, true).unwrap();
        let out_steps = if forecast > 0 { forecast } else { t };
        assert_eq!(c.ty_of(y), format!("f32[B, {out_steps}, {hidden}, {hh}, {ww}]"));
        let wshape = [4 * hidden, c_in + hidden, k, k];
        let fan_in = ((c_in + hidden) * k * k) as f64;
        let names: Vec<&str> = c.params.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(c.params[0].2, Shape::known(&wshape));
        assert_eq!(c.params[1].2, Shape::known(&[4 * hidden]));
        assert_eq!(c.params[0].3, Init::Uniform { bound: 1.0 / fan_in.sqrt() });
        assert_eq!(c.params[1].3, c.params[0].3);

        let dims = [b, t, c_in, hh, ww];
        let xs = wave(dims.iter().product(), 0.3);
        // Scaled so that the gates are not saturated.
        let ws: Vec<f64> = wave(wshape.iter().product(), 1.1).iter().map(|v| v * 0.7).collect();
        let bs = wave(4 * hidden, 2.0);
        let given = [("x", ft(&dims, &xs)), ("weight", ft(&wshape, &ws)), ("bias", ft(&[4 * hidden], &bs))];
        let got: Vec<f64> = c.eval(&[y], b, &given).remove(0).iter().copied().collect();
        let states = convlstm_reference(&xs, dims, &ws, &bs, hidden, k, forecast);
        let want = stack_states(&states[states.len() - out_steps..], b);
        assert_close(&got, &want, 1e-12);
    }
}

#[test]
fn convlstm_without_bias_and_its_errors() {
    let mut c = cx();
    let x = c.input("x", "B, 4, 3, 5, 5");
    let y = convlstm(&mut c, x, 2, 3, 0, false).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 4, 2, 5, 5]");
    assert_eq!(c.params.len(), 1);
    // One conv per step, all reading the one weight.
    let convs = c.graph.nodes.iter().filter(|n| matches!(n.op, crate::ir::Op::Conv { .. })).count();
    assert_eq!(convs, 4);

    let img = c.input("img", "B, 3, 5, 5");
    let frames_t = c.input("frames_t", "B, T, 3, 5, 5");
    let labels = c.typed_input("labels", DType::I32, "B, 4, 3, 5, 5");
    let cases: [(ValueId, usize, usize, &str); 5] = [
        (
            img,
            3,
            0,
            "`convlstm` needs a rank-5 input [B, T, C, H, W] (a sequence of frames), got f32[B, 3, 5, 5]",
        ),
        (x, 4, 0, "`convlstm` needs an odd kernel, got 4"),
        (frames_t, 3, 0, "`convlstm` needs a known size on axis 1, got symbolic `T` in f32[B, T, 3, 5, 5]"),
        (labels, 3, 0, "`convlstm` needs an f32 tensor, got i32[B, 4, 3, 5, 5]"),
        (x, 3, MAX_STEPS, "`convlstm` would unroll 4 input steps and 1024 forecast steps"),
    ];
    for (input, kernel, forecast, want) in cases {
        let e = err_of(convlstm(&mut c, input, 2, kernel, forecast, true));
        assert!(e.message.starts_with(want), "{}", e.message);
    }
    let e = err_of(convlstm(&mut c, img, 2, 3, 0, true));
    assert_eq!(e.operand, Some(0));
    assert!(e.notes[0].contains("reshape(shape: [B, 1, C, H, W])"), "{:?}", e.notes);
    let e = err_of(convlstm(&mut c, x, 2, 2, 0, true));
    assert_eq!(e.notes.last().map(String::as_str), Some("help: use `kernel: 1` or `kernel: 3`"));
}

// ---------------------------------------------------------------- normalisation

fn batch_values() -> Vec<f64> {
    (0..24).map(|i| ((i * 7 % 11) as f64) * 0.3 - 1.0).collect()
}

#[test]
fn batchnorm_train_normalises_and_updates_running_stats() {
    let mut c = cx();
    let x = c.input("x", "B, 2, 3");
    let y = batchnorm(&mut c, x, 0.1, 1e-12).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2, 3]");
    let names: Vec<&str> = c.params.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["weight", "bias"]);
    assert_eq!((c.params[0].1, c.params[0].3), (ParamRole::Scale, Init::Ones));
    assert_eq!((c.params[1].1, c.params[1].3), (ParamRole::Shift, Init::Zeros));
    assert_eq!(c.states[0], ("running_mean".into(), Shape::known(&[2]), Init::Zeros));
    assert_eq!(c.states[1], ("running_var".into(), Shape::known(&[2]), Init::Ones));
    assert_eq!(c.updates.len(), 2);
    let xs = batch_values();
    let outs = [y, c.updates[0].1, c.updates[1].1];
    let r = c.eval(&outs, 4, &[("x", ft(&[4, 2, 3], &xs))]);
    for ch in 0..2 {
        let vals: Vec<f64> =
            (0..4).flat_map(|b| (0..3).map(move |s| (b, s))).map(|(b, s)| xs[b * 6 + ch * 3 + s]).collect();
        let ys: Vec<f64> =
            (0..4).flat_map(|b| (0..3).map(move |s| (b, s))).map(|(b, s)| r[0][[b, ch, s]]).collect();
        let mean = vals.iter().sum::<f64>() / 12.0;
        let ss: f64 = vals.iter().map(|v| (v - mean).powi(2)).sum();
        let ym = ys.iter().sum::<f64>() / 12.0;
        let yv = ys.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / 12.0;
        assert_close(&[ym, yv], &[0.0, 1.0], 1e-9);
        assert_close(&[r[1][[ch]], r[2][[ch]]], &[0.1 * mean, 0.9 + 0.1 * ss / 11.0], 1e-12);
    }
}

#[test]
fn batchnorm_infer_uses_running_stats() {
    let mut c = new_cx(Mode::Infer);
    let x = c.input("x", "B, 2");
    let y = batchnorm(&mut c, x, 0.1, 0.0).unwrap();
    assert!(c.updates.is_empty());
    let got = c.eval1(
        y,
        &[
            ("x", ft(&[1, 2], &[3., 5.])),
            ("running_mean", ft(&[2], &[1., 1.])),
            ("running_var", ft(&[2], &[4., 16.])),
            ("weight", ft(&[2], &[1., 2.])),
            ("bias", ft(&[2], &[0., 1.])),
        ],
    );
    assert_close(&got, &[1.0, 3.0], 1e-12);
    let s = c.input("s", "4");
    assert!(err_of(batchnorm(&mut c, s, 0.1, 1e-5)).message.contains("at least 2 axes"));
    assert!(err_of(batchnorm(&mut c, x, 1.5, 1e-5)).message.contains("momentum"));
}

#[test]
fn layernorm_and_groupnorm_normalise() {
    let mut c = cx();
    let x = c.input("x", "B, 6");
    let y = layernorm(&mut c, x, 1e-12).unwrap();
    assert_eq!(c.params[0].2, Shape::known(&[6]));
    let got = c.eval1(y, &[("x", ft(&[2, 6], &batch_values()[..12]))]);
    for row in got.chunks(6) {
        let m = row.iter().sum::<f64>() / 6.0;
        let v = row.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 6.0;
        assert_close(&[m, v], &[0.0, 1.0], 1e-9);
    }

    let mut c = cx();
    let x = c.input("x", "B, 4, 3");
    let y = groupnorm(&mut c, x, 2, 1e-12).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 4, 3]");
    assert_eq!(c.params[0].2, Shape::known(&[4]));
    let got = c.eval1(y, &[("x", ft(&[2, 4, 3], &batch_values()))]);
    for group in got.chunks(6) {
        let m = group.iter().sum::<f64>() / 6.0;
        let v = group.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 6.0;
        assert_close(&[m, v], &[0.0, 1.0], 1e-9);
    }
    let e = err_of(groupnorm(&mut c, x, 3, 1e-5));
    assert_eq!(
        e.message,
        "`groupnorm` with 3 groups needs a channel count divisible by 3, but f32[B, 4, 3] has 4 channels"
    );
}

// ---------------------------------------------------------------- functions

fn act_values(act: Activation) -> Vec<f64> {
    let mut c = cx();
    let x = c.input("x", "5");
    let y = activation(&mut c, x, act).unwrap();
    c.eval(&[y], 1, &[("x", ft(&[5], &POINTS))]).remove(0).iter().copied().collect()
}

#[test]
fn activations_match_pytorch_at_sample_points() {
    assert_close(&act_values(Activation::Relu), &[0., 0., 0., 0.5, 2.], 0.0);
    assert_close(&act_values(Activation::LeakyRelu { alpha: 0.1 }), &[-0.2, -0.05, 0., 0.5, 2.], 1e-15);
    let elu = |x: f64| if x > 0.0 { x } else { x.exp() - 1.0 };
    assert_close(&act_values(Activation::Elu { alpha: 1.0 }), &POINTS.map(elu), 1e-15);
    let selu = POINTS.map(|x| SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * (x.exp() - 1.0) });
    assert_close(&act_values(Activation::Selu), &selu, 1e-15);
    assert_close(&selu[..1], &[-1.520_166_468_595_893_6], 1e-12);
    let gelu = [
        -0.045_500_263_896_358_42,
        -0.154_268_769_362_993_47,
        0.0,
        0.345_731_230_637_006_5,
        1.954_499_736_103_641_6,
    ];
    assert_close(&act_values(Activation::Gelu), &gelu, 1e-12);
    assert_close(&act_values(Activation::Softplus), &POINTS.map(|x: f64| x.exp().ln_1p()), 1e-12);
    assert_close(&act_values(Activation::Sigmoid), &POINTS.map(|x: f64| 1.0 / (1.0 + (-x).exp())), 1e-12);
    assert_close(&act_values(Activation::Tanh), &POINTS.map(f64::tanh), 1e-12);
    assert_close(&act_values(Activation::Square), &POINTS.map(|x| x * x), 0.0);
    assert_close(&act_values(Activation::Abs), &POINTS.map(f64::abs), 0.0);
}

#[test]
fn softplus_and_elu_are_stable_for_large_inputs() {
    let mut c = cx();
    let x = c.input("x", "2");
    let sp = activation(&mut c, x, Activation::Softplus).unwrap();
    let elu = activation(&mut c, x, Activation::Elu { alpha: 1.0 }).unwrap();
    let r = c.eval(&[sp, elu], 1, &[("x", ft(&[2], &[1000., -1000.]))]);
    assert_close(r[0].as_slice().unwrap(), &[1000., 0.], 1e-12);
    assert_close(r[1].as_slice().unwrap(), &[1000., -1.], 1e-12);
}

#[test]
fn clip_limits_values() {
    let mut c = cx();
    let x = c.input("x", "5");
    let y = clip(&mut c, x, -1.0, 1.0).unwrap();
    assert_close(&c.eval1(y, &[("x", ft(&[5], &POINTS))]), &[-1., -0.5, 0., 0.5, 1.], 0.0);
    assert!(err_of(clip(&mut c, x, 2.0, 1.0)).message.contains("min <= max"));
}

#[test]
fn softmax_rows_sum_to_one_and_log_softmax_is_its_log() {
    let mut c = cx();
    let x = c.input("x", "B, 3");
    let s = softmax(&mut c, x, -1).unwrap();
    let l = log_softmax(&mut c, x, 1).unwrap();
    assert_eq!(c.ty_of(s), "f32[B, 3]");
    let xs = ft(&[2, 3], &[1., 2., 3., 1000., 0., -1000.]);
    let r = c.eval(&[s, l], 2, &[("x", xs)]);
    let sm: Vec<f64> = r[0].iter().copied().collect();
    assert_close(
        &sm[..3],
        &[0.090_030_573_170_380_46, 0.244_728_471_054_797_64, 0.665_240_955_774_821_9],
        1e-12,
    );
    assert_close(&sm[3..], &[1.0, 0.0, 0.0], 1e-12);
    let logs: Vec<f64> = r[1].iter().copied().collect();
    assert_close(&logs[..3], &sm[..3].iter().map(|v| v.ln()).collect::<Vec<_>>(), 1e-12);
    assert_close(&logs[3..5], &[0.0, -1000.0], 1e-9);
    let e = err_of(softmax(&mut c, x, 2));
    assert_eq!(e.message, "`softmax`: axis 2 is out of range for a tensor of rank 2");
    assert_eq!(e.notes, vec!["note: valid axes are -2 to 1".to_string()]);
}

#[test]
fn dropout_is_identity_in_infer_and_masks_in_train() {
    let mut c = new_cx(Mode::Infer);
    let x = c.input("x", "B, 4");
    assert_eq!(dropout(&mut c, x, 0.5).unwrap(), x);
    assert!(c.key.is_none());

    let mut c = cx();
    let x = c.input("x", "B, 1000");
    let y = dropout(&mut c, x, 0.3).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 1000]");
    assert!(c.key.is_some());
    assert_eq!(c.streams, 1);
    let got = c.eval1(y, &[("x", ft(&[2, 1000], &[1.0; 2000]))]);
    let zeros = got.iter().filter(|&&v| v == 0.0).count();
    assert!((500..700).contains(&zeros), "{zeros} of 2000 zeroed");
    assert!(got.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-12));
    assert!(err_of(dropout(&mut c, x, 1.0)).message.contains("[0, 1)"));
}

// ---------------------------------------------------------------- tensor ops

#[test]
fn pooling_shapes_and_global_average() {
    let mut c = cx();
    let x = c.input("x", "B, 3, 8, 8");
    let y = pool(&mut c, x, PoolKind::Max, &[2, 2], &[2, 2], &[0, 0]).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 3, 4, 4]");
    let y = pool(&mut c, x, PoolKind::Avg, &[3, 3], &[1, 1], &[1, 1]).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 3, 8, 8]");
    assert!(err_of(pool(&mut c, x, PoolKind::Max, &[2, 2], &[2, 2], &[2, 2]))
        .message
        .contains("at most half"));

    let mut c = cx();
    let x = c.input("x", "B, 2, 2, 2");
    let y = global_avgpool(&mut c, x).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2]");
    let got = c.eval1(y, &[("x", ft(&[1, 2, 2, 2], &[1., 2., 3., 4., 0., 0., 0., 8.]))]);
    assert_close(&got, &[2.5, 2.0], 1e-12);
}

#[test]
fn upsample_nearest_repeats_and_bilinear_interpolates() {
    let mut c = cx();
    let x = c.input("x", "B, 1, 2, 2");
    let y = upsample(&mut c, x, &[2], UpsampleMode::Nearest).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 1, 4, 4]");
    let got = c.eval1(y, &[("x", ft(&[1, 1, 2, 2], &[1., 2., 3., 4.]))]);
    let want = [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.];
    assert_close(&got, &want, 0.0);

    let mut c = cx();
    let x = c.input("x", "B, 1, 1, 2");
    let y = upsample(&mut c, x, &[1, 2], UpsampleMode::Bilinear).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 1, 1, 4]");
    // Half-pixel centres: sources -0.25, 0.25, 0.75, 1.25, clamped to the edge.
    assert_close(&c.eval1(y, &[("x", ft(&[1, 1, 1, 2], &[0., 1.]))]), &[0., 0.25, 0.75, 1.], 1e-12);
    assert!(err_of(upsample(&mut c, x, &[2, 2, 2], UpsampleMode::Nearest)).message.contains("1 or 2 values"));
}

#[test]
fn concat_joins_and_reports_the_disagreeing_operand() {
    let mut c = cx();
    let a = c.input("a", "B, 1, 2");
    let b = c.input("b", "B, 2, 2");
    let y = concat(&mut c, &[a, b], 1).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 3, 2]");
    let got = c.eval1(y, &[("a", ft(&[1, 1, 2], &[1., 2.])), ("b", ft(&[1, 2, 2], &[3., 4., 5., 6.]))]);
    assert_close(&got, &[1., 2., 3., 4., 5., 6.], 0.0);
    let d = c.input("d", "B, 2, 3");
    let e = err_of(concat(&mut c, &[a, b, d], 1));
    assert_eq!(
        e.message,
        "cannot concatenate f32[B, 1, 2] and f32[B, 2, 3] along axis 1: dimension 2 is 2 vs 3"
    );
    assert_eq!(e.operand, Some(2));
    assert!(err_of(concat(&mut c, &[a, b], 0)).message.contains("symbolic `B`"));
    assert!(err_of(concat(&mut c, &[], 0)).message.contains("at least one"));
}

#[test]
fn flatten_reshape_permute() {
    let mut c = cx();
    let x = c.input("x", "B, 2, 3");
    let f = flatten(&mut c, x).unwrap();
    assert_eq!(c.ty_of(f), "f32[B, 6]");
    let r =
        reshape(&mut c, f, &[ReshapeDim::Sym("B".into()), ReshapeDim::Infer, ReshapeDim::Known(2)]).unwrap();
    assert_eq!(c.ty_of(r), "f32[B, 3, 2]");
    let p = permute(&mut c, x, &[0, -1, 1]).unwrap();
    assert_eq!(c.ty_of(p), "f32[B, 3, 2]");
    let vals: Vec<f64> = (0..6).map(f64::from).collect();
    let got = c.eval(&[r, p], 1, &[("x", ft(&[1, 2, 3], &vals))]);
    assert_close(got[0].as_slice().unwrap(), &vals, 0.0);
    assert_close(&got[1].iter().copied().collect::<Vec<_>>(), &[0., 3., 1., 4., 2., 5.], 0.0);

    let e = err_of(reshape(&mut c, x, &[ReshapeDim::Sym("B".into()), ReshapeDim::Known(4)]));
    assert_eq!(e.message, "cannot reshape f32[B, 2, 3] to [B, 4]: 6·B elements vs 4·B");
    let e = err_of(reshape(&mut c, x, &[ReshapeDim::Infer, ReshapeDim::Known(3)]));
    assert!(e.notes[0].contains("symbolic"), "{e:?}");
    assert!(err_of(reshape(&mut c, x, &[ReshapeDim::Infer, ReshapeDim::Infer]))
        .message
        .contains("at most one"));
    assert!(err_of(permute(&mut c, x, &[0, 1, 1])).message.contains("twice"));
    assert!(err_of(permute(&mut c, x, &[0, 1])).message.contains("needs 3 axes"));
    let s = c.input("s", "3");
    assert!(err_of(flatten(&mut c, s)).message.contains("at least 2 axes"));
}

#[test]
fn reductions_sum_and_mean() {
    let mut c = cx();
    let x = c.input("x", "B, 2, 3");
    let s = reduce(&mut c, x, Reduction::Sum, Some(&[-1]), false).unwrap();
    let m = reduce(&mut c, x, Reduction::Mean, Some(&[0, 2]), true).unwrap();
    let all = reduce(&mut c, x, Reduction::Mean, None, false).unwrap();
    assert_eq!(c.ty_of(s), "f32[B, 2]");
    assert_eq!(c.ty_of(m), "f32[1, 2, 1]");
    assert_eq!(c.ty_of(all), "f32[]");
    let vals: Vec<f64> = (0..12).map(f64::from).collect();
    let r = c.eval(&[s, m, all], 2, &[("x", ft(&[2, 2, 3], &vals))]);
    assert_close(r[0].as_slice().unwrap(), &[3., 12., 21., 30.], 0.0);
    assert_close(r[1].as_slice().unwrap(), &[4., 7.], 1e-12);
    assert_close(r[2].as_slice().unwrap(), &[5.5], 1e-12);
    assert!(err_of(reduce(&mut c, x, Reduction::Sum, Some(&[1, -2]), false)).message.contains("twice"));
    assert!(err_of(reduce(&mut c, x, Reduction::Sum, Some(&[3]), false)).message.contains("out of range"));
}

#[test]
fn matmul_values_and_inner_dimension_error() {
    let mut c = cx();
    let a = c.input("a", "2, 3");
    let b = c.input("b", "3, 1");
    let y = matmul(&mut c, a, b).unwrap();
    let got =
        c.eval1(y, &[("a", ft(&[2, 3], &[1., 2., 3., 4., 5., 6.])), ("b", ft(&[3, 1], &[1., 0., -1.]))]);
    assert_close(&got, &[-2., -2.], 0.0);
    let e = err_of(matmul(&mut c, a, a));
    assert_eq!(e.message, "cannot multiply f32[2, 3] by f32[2, 3]: inner dimensions differ (3 vs 2)");
    let v = c.input("v", "3");
    assert_eq!(err_of(matmul(&mut c, a, v)).operand, Some(1));
    // Batch axes broadcast as in NumPy.
    let s = c.input("s", "B, 4, 2, 3");
    let w = c.input("w", "3, 5");
    let sw = matmul(&mut c, s, w).unwrap();
    assert_eq!(c.ty_of(sw), "f32[B, 4, 2, 5]");
    let t = c.input("t", "4, 3, 1");
    let st = matmul(&mut c, s, t).unwrap();
    assert_eq!(c.ty_of(st), "f32[B, 4, 2, 1]");
    let u = c.input("u", "5, 3, 1");
    let e = err_of(matmul(&mut c, s, u));
    assert!(e.message.contains("batch dimensions [B, 4] and [5] of"), "{}", e.message);
    // Values: a [2, 2, 3] batch times one [3, 1] matrix.
    let mut c = cx();
    let a = c.input("a", "2, 2, 3");
    let b = c.input("b", "3, 1");
    let y = matmul(&mut c, a, b).unwrap();
    let got = c.eval1(
        y,
        &[
            ("a", ft(&[2, 2, 3], &[1., 2., 3., 4., 5., 6., 0., 0., 1., 1., 0., 0.])),
            ("b", ft(&[3, 1], &[1., 0., -1.])),
        ],
    );
    assert_close(&got, &[-2., -2., -1., 1.], 0.0);
}

// ---------------------------------------------------------------- losses

fn loss_of(f: impl Fn(&mut TestCx, ValueId, ValueId) -> Built, p: &[f64], t: &[f64]) -> f64 {
    let mut c = cx();
    let pv = c.input("p", &format!("B, {}", p.len() / 2));
    let tv = c.input("t", &format!("B, {}", p.len() / 2));
    let y = f(&mut c, pv, tv).unwrap();
    assert_eq!(c.ty_of(y), "f32[]");
    let shape = [2, p.len() / 2];
    c.eval(&[y], 2, &[("p", ft(&shape, p)), ("t", ft(&shape, t))])[0].iter().copied().next().unwrap()
}

#[test]
fn regression_losses_match_hand_values() {
    let p = [1., 2., 3., 4.];
    let t = [1., 0., 5., 4.5];
    assert_close(&[loss_of(|c, a, b| mse(c, a, b, None), &p, &t)], &[(4. + 4. + 0.25) / 4.], 1e-12);
    assert_close(&[loss_of(|c, a, b| mae(c, a, b, None), &p, &t)], &[(2. + 2. + 0.5) / 4.], 1e-12);
    // delta 1: |d| = 0, 2, 2, 0.5 -> 0, 1.5, 1.5, 0.125.
    assert_close(&[loss_of(|c, a, b| huber(c, a, b, 1.0, None), &p, &t)], &[3.125 / 4.], 1e-12);

    let mut c = cx();
    let pv = c.input("p", "B, 2");
    let tv = c.input("t", "B, 2");
    let w = c.input("w", "2");
    let y = mse(&mut c, pv, tv, Some(w)).unwrap();
    let got = c.eval1(y, &[("p", ft(&[2, 2], &p)), ("t", ft(&[2, 2], &t)), ("w", ft(&[2], &[1., 3.]))]);
    assert_close(&got, &[(0. + 3. * 4. + 4. + 3. * 0.25) / 8.], 1e-12);
    let bad = c.input("bad", "3");
    assert_eq!(err_of(mse(&mut c, pv, tv, Some(bad))).operand, Some(2));
    let col = c.input("col", "B");
    let e = err_of(mse(&mut c, pv, col, None));
    assert_eq!(e.message, "`mse` needs a prediction and target of equal shape, got f32[B, 2] and f32[B]");
    assert_eq!(e.operand, Some(1));
}

#[test]
fn bce_matches_hand_value() {
    let z: [f64; 4] = [0., 2., -1., 100.];
    let t: [f64; 4] = [1., 0., 0., 1.];
    let want: f64 = z
        .iter()
        .zip(&t)
        .map(|(z, t)| -(t * (1.0 / (1.0 + (-z).exp())).ln() + (1.0 - t) * (1.0 / (1.0 + z.exp())).ln()))
        .sum::<f64>()
        / 4.0;
    assert_close(&[loss_of(|c, a, b| bce(c, a, b), &z, &t)], &[want], 1e-12);
}

fn ce_hand(rows: &[[f64; 3]], labels: &[usize]) -> f64 {
    rows.iter().zip(labels).map(|(r, &l)| r.iter().map(|v| v.exp()).sum::<f64>().ln() - r[l]).sum::<f64>()
        / rows.len() as f64
}

#[test]
fn cross_entropy_with_indices_and_probabilities() {
    let mut c = cx();
    let z = c.input("z", "B, 3");
    let y = c.typed_input("y", DType::I32, "B");
    let q = c.input("q", "B, 3");
    let li = cross_entropy(&mut c, z, y).unwrap();
    let lp = cross_entropy(&mut c, z, q).unwrap();
    assert_eq!(c.ty_of(li), "f32[]");
    let zs = [1., 2., 3., 0.5, -1., 0.];
    let r = c.eval(
        &[li, lp],
        2,
        &[("z", ft(&[2, 3], &zs)), ("y", it(&[2], &[2, 0])), ("q", ft(&[2, 3], &[0., 0., 1., 1., 0., 0.]))],
    );
    let want = ce_hand(&[[1., 2., 3.], [0.5, -1., 0.]], &[2, 0]);
    assert_close(&[r[0][[]], r[1][[]]], &[want, want], 1e-12);

    let bad = c.typed_input("bad", DType::I32, "B, 3");
    let e = err_of(cross_entropy(&mut c, z, bad));
    assert_eq!(e.operand, Some(1));
    assert_eq!(
        e.message,
        "`cross_entropy` labels for logits f32[B, 3] must be class indices i32[B] or probabilities f32[B, 3], found i32[B, 3]"
    );
    assert_eq!(e.expected.as_deref(), Some("i32[B] or f32[B, 3]"));
}

#[test]
fn cross_entropy_spatial_means_over_positions() {
    let mut c = cx();
    let z = c.input("z", "B, 3, 2");
    let y = c.typed_input("y", DType::I32, "B, 2");
    let l = cross_entropy(&mut c, z, y).unwrap();
    // Channels-first: position 0 has logits (1, 2, 3), position 1 (0.5, -1, 0).
    let zs = [1., 0.5, 2., -1., 3., 0.];
    let got = c.eval1(l, &[("z", ft(&[1, 3, 2], &zs)), ("y", it(&[1, 2], &[1, 2]))]);
    assert_close(&got, &[ce_hand(&[[1., 2., 3.], [0.5, -1., 0.]], &[1, 2])], 1e-12);
}

#[test]
fn dice_and_penalties_match_hand_values() {
    let mut c = cx();
    let p = c.input("p", "B, 2, 2");
    let t = c.input("t", "B, 2, 2");
    let d = dice(&mut c, p, t).unwrap();
    let got =
        c.eval1(d, &[("p", ft(&[1, 2, 2], &[0.5, 0.5, 1., 0.])), ("t", ft(&[1, 2, 2], &[1., 0., 0., 1.]))]);
    let e = DICE_EPS;
    let want = 1.0 - ((1.0 + e) / (2.0 + e) + e / (2.0 + e)) / 2.0;
    assert_close(&got, &[want], 1e-12);

    let mut c = cx();
    let a = c.input("a", "2");
    let b = c.input("b", "1, 2");
    let l1 = penalty(&mut c, &[a, b], Penalty::L1).unwrap();
    let l2 = penalty(&mut c, &[a, b], Penalty::L2).unwrap();
    let zero = penalty(&mut c, &[], Penalty::L2).unwrap();
    let r = c.eval(&[l1, l2, zero], 1, &[("a", ft(&[2], &[1., -2.])), ("b", ft(&[1, 2], &[3., 0.5]))]);
    assert_close(&[r[0][[]], r[1][[]], r[2][[]]], &[6.5, 14.25, 0.0], 1e-12);
}
