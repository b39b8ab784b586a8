//! The catalogue of built-in functions: ONE table, one row per built-in.
//!
//! A row says everything sema needs to know about a built-in: its name, its
//! kind (for `nnc summary` and parameter naming), its parameters with their
//! types, value ranges and defaults, the tensors each call creates (name,
//! role, shape rule, initialisation), a one-line description, and how it
//! builds its IR (a small function calling the forward-graph library with the
//! already-checked arguments). Argument checking, error messages, the
//! reference documentation ([`reference()`]) and "did you mean" suggestions all
//! read this table, so adding a built-in is adding a row.
//!
//! # Semantics (for the language reference)
//!
//! - **Arguments.** Positional arguments first, then keywords `name: value`;
//!   `a |> f(args)` is `f(a, args)` and `a |> f` is `f(a)`. Enum-like values
//!   (`same`, `nearest`, `none`) are bare names. Every argument problem of a
//!   call is reported (unknown or repeated keyword, missing argument, too many
//!   positional arguments, wrong type, value out of range). Sizes, counts and
//!   indices are at most [`MAX_SIZE`](super::args::MAX_SIZE) (2^24); a parameter tensor has at most
//!   2^31 elements.
//! - **Parameter names.** Each model-level binding `name = expr` is a naming
//!   scope `name`; every built-in call in its expression, including the calls
//!   inside the blocks it calls (flattened into the same scope), is named
//!   `name.kind_k`, `k` counting calls of that built-in in that scope from 1;
//!   a rebinding of `name` continues the count. A layer's tensors are
//!   `name.kind_k.tensor` with PyTorch's tensor names (`weight`, `bias`,
//!   `running_mean`, `running_var`): `e1 = ssh |> down(16)` creates
//!   `e1.conv2d_1.weight`, …; `loss = ...` is the scope `loss`.
//! - **Layouts and initialisation** follow PyTorch: dense weight
//!   `[out, in]`, convolution weight `[out_c, in_c, *kernel]`, transposed
//!   convolution weight `[in_c, out_c, *kernel]`; weights and biases uniform
//!   on `±1/sqrt(fan_in)`, normalisation scales ones and shifts zeros,
//!   running means zeros and running variances ones (see [`TensorSpec`]).
//!   `params` lists every trainable tensor in creation order; `weights` only
//!   those with role weight (no biases, no normalisation scales/shifts).
//! - **`dense`** acts on the last axis; leading axes are batch axes.
//! - **Convolutions** are cross-correlations on `[B, C, *spatial]`.
//!   `kernel`, `stride`, `dilation` and an integer `pad` take one value for
//!   every spatial axis or a list with one per axis. `pad: same` follows
//!   TF/Keras: output size `ceil(in / stride)`, total padding
//!   `max((out - 1)·stride + dilation·(kernel - 1) + 1 - in, 0)`, split
//!   `lo = total / 2`, `hi = total - lo` (the odd zero goes after). An
//!   integer pad is symmetric zero padding. `pad_mode: zeros|circular|reflect|edge`
//!   (one for every spatial axis, or a list with one per axis) says how the
//!   padding is filled: `zeros` is the convolution's own zero padding; any
//!   other mode pads the input explicitly by the rule of `pad` and then
//!   convolves without padding along that axis (PyTorch's `padding_mode`).
//!   `pad_mode: [zeros, circular]` on `[B, C, lat, lon]` wraps the longitude
//!   only, as a global grid needs. `conv_transpose2d` has output size
//!   `(in - 1)·stride - 2·pad + kernel` (PyTorch).
//! - **`convlstm(hidden, kernel, forecast: 0)`** is a ConvLSTM cell without
//!   peepholes over frames `[B, T, C, H, W]`, unrolled: at each step
//!   `gates = conv(concat[x_t, h_{t-1}]) + bias` (a `kernel`×`kernel`
//!   convolution, odd kernel, stride 1, "same" zero padding `(kernel − 1)/2`,
//!   to `4·hidden` channels split in the order i, f, g, o),
//!   `c_t = σ(f)·c_{t-1} + σ(i)·tanh(g)`, `h_t = σ(o)·tanh(c_t)`, with
//!   `h_0 = c_0 = 0`. `T` steps read the input frames, then `forecast` steps
//!   read a zero frame. The result stacks the hidden states on axis 1: the
//!   `T` encoder states, or with `forecast: F > 0` only the `F` forecast
//!   states. One weight and one bias serve every step.
//! - **`convgru(hidden, kernel, forecast: 0)`** is PyTorch's `nn.GRU` with
//!   convolutions for products, over frames `[B, T, C, H, W]`, unrolled like
//!   `convlstm`: `a = conv(x_t, weight_ih) + bias_ih`,
//!   `b = conv(h_{t-1}, weight_hh) + bias_hh` ("same" `kernel`×`kernel`,
//!   odd kernel, `3·hidden` channels in blocks r, z, n), `r = σ(a_r + b_r)`,
//!   `z = σ(a_z + b_z)`, `n = tanh(a_n + r·b_n)`, `h_t = (1 − z)·n + z·h_{t-1}`,
//!   `h_0 = 0`; forecast steps read a zero frame (`a` is `bias_ih`) and the
//!   result is `convlstm`'s. **`trajgru(hidden, kernel, links, forecast: 0,
//!   flow_channels: 32)`** (Shi et al. 2017) takes `b` from warped states
//!   instead: a flow network `u = conv5(leaky_relu(conv5(concat[x_t, h_{t-1}])
//!   , 0.2))` (5×5 "same", `flow_channels` hidden maps, `2·links` outputs,
//!   the output layer zero-initialised) gives per link `l` the flow
//!   `(dy, dx)` = channels `(2l, 2l + 1)`; `w_l = warp(h_{t-1}, u_l)`
//!   (bilinear, zeros) and `b = conv1×1(concat[w_0, …]) + bias_hh`.
//! - **`rnn(hidden, activation: tanh)`, `lstm(hidden)`, `gru(hidden)`** are
//!   PyTorch's single-layer `nn.RNN`, `nn.LSTM` and `nn.GRU` with
//!   `batch_first=True` over `[B, T, F]` (`T` known), unrolled from zero
//!   states: per step `a = W_ih·x_t + b_ih`, `b = W_hh·h_{t-1} + b_hh`, split in
//!   gate blocks of `hidden` rows (lstm i, f, g, o; gru r, z, n); rnn
//!   `h = act(a + b)`; lstm `c = σ(f)·c + σ(i)·tanh(g)`, `h = σ(o)·tanh(c)`; gru
//!   `r, z = σ(a + b)`, `n = tanh(a_n + r·b_n)`, `h = (1 − z)·n + z·h`. The
//!   result is the states `[B, T, hidden]` in the input's order, with
//!   `return: last` the final state `[B, hidden]`, with `return: states` the
//!   list of final states (`[h_T]`, for lstm `[h_T, c_T]`, as `scan`'s) and
//!   with `return: all` the list `[states, finals...]`; `reverse: true` runs
//!   from the last step (its final state is the one after `x_0`).
//!   `init: h0` (for lstm `init: [h0, c0]`), each f32 `[B, hidden]`, starts
//!   from given states instead of zeros. The four tensors are uniform on
//!   `±1/sqrt(hidden)`, like PyTorch's.
//! - **`batchnorm`** normalises over every axis but the channel axis 1. In
//!   training it uses the batch mean and biased variance and updates
//!   `running = (1 - momentum)·running + momentum·batch` with the unbiased
//!   batch variance (PyTorch); in inference it uses the running statistics.
//!   `layernorm` normalises over the last axis, `groupnorm` over groups of
//!   consecutive channels (and all spatial positions) of each sample.
//! - **Activations** use PyTorch's definitions: `gelu` is the exact erf
//!   form, `selu` PyTorch's constants, `softplus` the stable
//!   `max(x, 0) + log(1 + exp(-|x|))`; `softmax`/`log_softmax` subtract the
//!   maximum first.
//! - **`dropout(p)`** is inverted dropout in training (keep where a uniform
//!   `u >= p`, scale by `1/(1-p)`; each call site, and each expansion of a
//!   block, its own random stream of the graph's one key input `rng`, called
//!   `rng_key` if the model has an input named `rng`) and the identity in
//!   inference.
//! - **Pooling** pads symmetrically (at most half the window); the average
//!   counts padded zeros. `upsample` takes an integer scale; `nearest`
//!   repeats values, `bilinear` uses half-pixel centres.
//! - **`matmul(a, b)`** multiplies `[..., M, K]` by `[..., K, N]`; the
//!   leading axes broadcast as in NumPy (`[B, T, K] x [K, N]` is allowed).
//! - **Stacking, padding, rolling.** `stack(xs, axis: 0)` joins tensors of
//!   one type along a new axis (`axis` counts in the result, so `-1`
//!   appends it). `pad(x, widths, mode: zeros, value: 0)` takes one
//!   `[before, after]` pair per axis for the *last* `len(widths)` axes
//!   (`pad(img, [[1, 1], [2, 2]])` pads H by 1 and W by 2 of `[B, C, H, W]`).
//!   The modes are NumPy's: `zeros` fills with `value` (the only mode that
//!   takes one); `circular` wraps around (NumPy `wrap`; at most the axis
//!   size); `reflect` mirrors about the edge element without repeating it
//!   (`[a, b, c]` padded by 2 before is `[c, b, a, b, c]`; at most size − 1);
//!   `edge` repeats the edge element. Axes are padded in order, each from
//!   the previous result, which gives NumPy's corners. `roll(x, shift,
//!   axis)` moves element `i` to `(i + shift) mod n` (NumPy: a shift may be
//!   negative or exceed the axis; lists of shifts and axes roll several
//!   axes). Padded and rolled axes need a known size (not `B`). Gradients
//!   flow through all of them.
//! - **Comparisons and choices.** `<`, `<=`, `>`, `>=`, `==`, `!=` compare
//!   elementwise with NumPy broadcasting (as f32: i32 operands are
//!   converted) and give `bool` tensors. In arithmetic a bool is 0 or 1, so
//!   `(x > 0) * x` is a mask. `where(cond, a, b)` is `a` where the bool
//!   `cond` holds and `b` elsewhere; `minimum(a, b)` and `maximum(a, b)` are
//!   the elementwise smaller and larger. All three broadcast as in NumPy,
//!   take numbers for `a` and `b` (`where(x > 0, x, 0)`), and pass the
//!   gradient to the operand chosen. `stop_gradient(x)` is `x` in the
//!   forward pass and a constant to the gradient (a GAN's discriminator loss
//!   on `stop_gradient(fake)` does not train the generator).
//! - **Constants and random tensors.** `zeros(shape)`, `ones(shape)` and
//!   `full(shape, value)` are f32 tensors of a written shape: sizes and
//!   symbolic dimensions that an input has (`zeros([B, 64])`); `zeros_like(x)`
//!   has the type of `x`. `arange(n)` / `arange(start, stop, step: 1)`
//!   (NumPy: the `ceil((stop − start) / step)` values `start + i·step`) and
//!   `linspace(start, stop, n)` (`n` values, both ends included) are f32
//!   vectors computed when the program is compiled: constant inputs named
//!   `scope.kind_k.values` whose values the module carries, never trained.
//!   `uniform(shape, low: 0, high: 1)` draws on `[low, high)` and
//!   `normal(shape, mean: 0, std: 1)` by the Box–Muller transform
//!   `mean + std·sqrt(−2·ln(1 − u1))·cos(2π·u2)` of two uniform draws; both
//!   draw afresh at every step, in training and in inference, each call
//!   site from its own streams of the key input (as `dropout` does).
//! - **Warping.** `warp(x, flow, mode: bilinear, boundary: zeros)` samples
//!   `x: [B, C, H, W]` along `flow: [B, 2, H, W]`, the row and column
//!   displacements `(dy, dx)` in grid cells: output `(i, j)` is `x` at
//!   `(i + dy, j + dx)`. `bilinear` interpolates the four surrounding grid
//!   points, `nearest` takes the closest (halves rounded away from zero); a
//!   grid point outside the image reads 0 (`zeros`), the nearest edge value
//!   (`edge`), or wraps around (`circular`, both axes). Differentiable in
//!   `x` and in the flow. `affine_flow(theta, [H, W])` turns affine matrices
//!   `theta: [B, 2, 3]` into such a flow: pixel `(i, j)` has the normalised
//!   coordinates `x = (2j + 1)/W − 1`, `y = (2i + 1)/H − 1` (PyTorch's
//!   `affine_grid` with `align_corners=False`), its source point is
//!   `(x', y') = theta·(x, y, 1)`, and the flow is `dy = (y' − y)·H/2`,
//!   `dx = (x' − x)·W/2`. So `warp(x, affine_flow(theta, [H, W]))` is
//!   `grid_sample(x, affine_grid(theta, size, align_corners=False),
//!   align_corners=False)` with bilinear sampling and zeros padding, and the
//!   identity `[[1, 0, 0], [0, 1, 0]]` gives a zero flow.
//! - **Graphs.** An edge list is `i32[E, 2]`, one `(source, destination)`
//!   row per edge. `gather(x, index, axis: 1)` reads `x` at the positions
//!   `index: i32[E]` along `axis` (`[B, N, F]` → `[B, E, F]`; an index
//!   outside `0..N` reads 0). `scatter(x, index, n, axis: 1, reduce: sum)`
//!   sends position `e` of `axis` to position `index[e]` of an axis of size
//!   `n` (`[B, E, F]` → `[B, n, F]`), combining what arrives by `sum`,
//!   `mean` (the sum over the number of arrivals) or `max`; a position
//!   nothing arrives at is 0 and an index outside `0..n` is dropped.
//!   Indices must be `i32`. `grid_graph(rows, cols, neighbours: 4,
//!   periodic: false)` is the edge list of a grid whose nodes are numbered
//!   row-major (`r·cols + c`): every node receives an edge from each of its
//!   4 (up, left, right, down) or 8 neighbours; edges are grouped by
//!   destination in node order and, within a node, by neighbour offset in
//!   row-major order (`(−1, −1)`, `(−1, 0)`, …, `(1, 1)`). `periodic: [false,
//!   true]` wraps the columns (one value applies to both axes); a wrap over
//!   an axis of 1 or 2 nodes adds no self-loop and no edge twice.
//!   `knn_graph(points, k)` takes constant points `f32[N, D]` (`f32[N]` on a
//!   line; a `const` or a compile-time built-in) and gives, for each point
//!   `i` in order, the
//!   edges `(j, i)` from its `k` nearest other points `j`, nearest first
//!   (Euclidean distance, ties to the lower index): `i32[N·k, 2]`, each point
//!   receiving from exactly `k` (PyTorch Geometric's `knn_graph`). Both are
//!   computed when the program is compiled (constant inputs
//!   `scope.kind_k.edges`).
//!   `graph_conv(x, edges, units, aggr: sum, edge_features: none,
//!   activation: relu, residual: true)` is one round of message passing
//!   (an interaction network) on nodes `x: [B, N, F]`: every edge `e` makes
//!   the message `m_e = act(message·[x_src, x_dst, f_e] + b)` from its
//!   source's and destination's features and its own features `f_e`
//!   (`edge_features: [E, Fe]` or `[B, E, Fe]`, none by default); each node
//!   combines the messages of its incoming edges by `aggr` (`sum`, `mean`
//!   or `max`, as `scatter`; 0 without incoming edges) into `a_n`; the
//!   update is `u = act(update·[x, a] + b)`, and the result `[B, N, units]`
//!   is `x + u` when `F = units` and `residual` is true, else `u`. Each MLP
//!   is one dense layer with the activation; no normalisation. Tensors
//!   `message.weight [units, 2F + Fe]`, `message.bias`, `update.weight
//!   [units, F + units]`, `update.bias`, uniform on `±1/sqrt(fan_in)`
//!   (PyTorch `nn.Linear` of the concatenations). A constant edge list is
//!   checked when the program is compiled: every index must be a node of
//!   `x`. The same edge list serves every sample of the batch (a batch is
//!   the disjoint union of `B` copies of the graph).
//! - **Axes** may be negative, counting from the end. `sum`/`mean` reduce
//!   every axis by default. Means over a symbolic size (the batch) divide by
//!   the run-time element count.
//! - **Losses** return f32 scalars. `mse`, `mae`, `huber(delta)` average
//!   over every element; with `weight: w` (broadcastable to the prediction)
//!   they return `Σ w·e / Σ w`. Prediction and target must have equal shapes
//!   (no silent broadcasting), but a target may be a number, which stands
//!   for a tensor of the prediction's shape filled with it (`bce(p, 1.0)`,
//!   `mse(p, 0)`). `cross_entropy(logits, labels)` takes logits
//!   `[B, C]` or `[B, C, *S]` and i32 class indices `[B]` / `[B, *S]` (an
//!   out-of-range index contributes zero) or f32 probabilities of the logits'
//!   shape, averaging over samples and positions. `bce` is the stable
//!   with-logits form. `dice(probs, targets)` is
//!   `1 − mean over (sample, channel) of (2·Σ p·t + ε) / (Σ p + Σ t + ε)`,
//!   sums over the spatial axes 2.., with smoothing `ε = 1e-6` (an empty
//!   channel predicted empty scores 1). `l1(list)` is `Σ |w|` and
//!   `l2(list)` is `Σ w²` over every element of every tensor in the list, with
//!   no ½ factor; in `loss = ...` the lists `params`/`weights` hold every
//!   parameter of the model.
//! - **FLOPs** (`nnc summary`) are forward operations for one sample (every
//!   symbolic dimension counts 1): a multiply-add counts 2 (a matrix product
//!   `[M, K] x [K, N]` is `2·M·K·N`, a convolution `2·(C_in/groups)·prod(kernel)`
//!   per output element), a reduction 1 per input element, pooling
//!   `prod(window)` per output element, `warp` 8 per output element
//!   (bilinear: 4 taps, a multiply-add each) or 1 (nearest), `scatter` 1 per
//!   input element, every other elementwise op 1 per output element, pure
//!   data movement (broadcast, reshape, permute, slice, pad, concat, gather)
//!   and constants 0. Arithmetic operators between calls belong to no
//!   summary row.

use crate::ir::{BinaryOp, Boundary, Init, ParamRole, PoolKind, ValueId, WarpMode};

use super::args::{Arg, Args, Default, MissingArgument, Operand, Param, Range, Ty};
use super::forward::{
    self, Activation, BuildError, Built, Combine, Cx, PadMode, Padding, Penalty, Reduction, UpsampleMode,
};

/// What a built-in is, for `nnc summary` and parameter naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Owns trainable parameters.
    Layer,
    Activation,
    TensorOp,
    /// Returns an f32 scalar.
    Loss,
    /// Makes a tensor from its arguments alone: constants, compile-time
    /// sequences and graphs, random tensors.
    Constant,
}

/// How one built-in builds its IR, given its checked arguments.
pub type BuildFn = fn(&mut dyn Cx, &Args) -> Built;

/// Whether a tensor a layer creates is trained or carried state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A trainable parameter (listed in `params`; in `weights` if its role is
    /// [`ParamRole::Weight`]).
    Param(ParamRole),
    /// Non-trained state updated by the training step (running statistics).
    State,
}

/// How a created tensor is initialised; PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitRule {
    /// Uniform on `±1/sqrt(fan_in)` ([`Init::Uniform`]). For weights this is
    /// exactly PyTorch's `kaiming_uniform_(a=√5)`; for biases it is PyTorch's
    /// bias rule with the weight's fan-in.
    FanInUniform,
    Ones,
    Zeros,
    /// Normal with mean 0 and the standard deviation written
    /// ([`Init::Normal`]).
    Normal(&'static str),
}

impl InitRule {
    /// Whether `init` is an instance of this rule.
    pub fn matches(self, init: Init) -> bool {
        matches!(
            (self, init),
            (InitRule::FanInUniform, Init::Uniform { .. })
                | (InitRule::Ones, Init::Ones)
                | (InitRule::Zeros, Init::Zeros)
                | (InitRule::Normal(_), Init::Normal { .. })
        )
    }

    fn text(self) -> String {
        match self {
            InitRule::FanInUniform => "uniform ±1/√fan_in".into(),
            InitRule::Ones => "ones".into(),
            InitRule::Zeros => "zeros".into(),
            InitRule::Normal(std) => format!("normal with std {std}"),
        }
    }
}

/// A tensor that each call of a layer creates, named
/// `scope.kind_k.NAME` (e.g. `e1.conv2d_1.weight`).
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    /// The last name segment, as in PyTorch (`weight`, `bias`, `running_mean`).
    pub name: &'static str,
    pub role: Role,
    /// The shape in terms of the call's arguments and its input.
    pub shape: &'static str,
    pub init: InitRule,
    /// The fan-in used by [`InitRule::FanInUniform`], if it applies.
    pub fan_in: &'static str,
    /// The argument value under which the tensor exists, if it is optional.
    pub only_if: Option<&'static str>,
}

/// One row of the catalogue.
pub struct Builtin {
    pub name: &'static str,
    pub kind: Kind,
    pub params: &'static [Param<'static>],
    /// The tensors each call creates, in creation order (layers only).
    pub tensors: &'static [TensorSpec],
    pub doc: &'static str,
    pub build: BuildFn,
}

impl Builtin {
    /// The signature as a user would write it, e.g. `dense(x, units, bias: true)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(param_text).collect();
        format!("{}({})", self.name, params.join(", "))
    }
}

fn param_text(p: &Param) -> String {
    match p.default {
        Default::Required if p.ty == Ty::Tensors => format!("{}...", p.name),
        Default::Required | Default::Written => p.name.to_string(),
        Default::None => format!("{}: none", p.name),
        Default::Int(n) => format!("{}: {n}", p.name),
        Default::Float(x) => format!("{}: {x}", p.name),
        Default::Bool(b) => format!("{}: {b}", p.name),
        Default::Enum(e) | Default::Same(e) => format!("{}: {e}", p.name),
        Default::Str(t) => format!("{}: \"{t}\"", p.name),
    }
}

/// The layer arguments that need the input's rank: one value per spatial
/// dimension.
impl Args {
    /// One size per spatial dimension: a single value applies to all.
    pub fn spatial(&self, name: &str, n: usize) -> Result<Vec<usize>, BuildError> {
        let values = self.ints(name)?.ok_or_else(|| MissingArgument { name: name.to_string() })?;
        spread(name, &sizes(&values), n)
    }

    /// One padding mode per spatial dimension: a single mode applies to all.
    pub fn pad_modes(&self, name: &str, n: usize) -> Result<Vec<PadMode>, BuildError> {
        let names = self.enums(name)?;
        let modes: Vec<PadMode> = names
            .iter()
            .map(|m| PadMode::from_name(m).ok_or_else(|| MissingArgument { name: name.to_string() }))
            .collect::<Result<_, _>>()?;
        spread(name, &modes, n)
    }

    pub fn padding(&self, name: &str, n: usize) -> Result<Padding, BuildError> {
        match self.get(name) {
            Some(Arg::Enum(e)) if e == "same" => Ok(Padding::Same),
            Some(Arg::Enum(_)) => Ok(Padding::Valid),
            Some(Arg::Ints(v)) => Ok(Padding::Explicit(spread(name, &sizes(v), n)?)),
            _ => Err(MissingArgument { name: name.to_string() }.into()),
        }
    }
}

/// Integers checked non-negative by their range, as sizes.
fn sizes(values: &[i64]) -> Vec<usize> {
    values.iter().map(|&v| usize::try_from(v).unwrap_or(0)).collect()
}

/// `[3]` → `[3; n]`; `[a, b]` stays when `n == 2`; other lengths are errors.
fn spread<T: Clone>(name: &str, values: &[T], n: usize) -> Result<Vec<T>, BuildError> {
    match values.len() {
        1 => Ok(vec![values[0].clone(); n]),
        len if len == n => Ok(values.to_vec()),
        len => Err(BuildError::new(format!(
            "`{name}` has {len} values but this call has {n} spatial dimension{}",
            if n == 1 { "" } else { "s" }
        ))
        .note(format!("give one value for all dimensions or exactly {n}"))),
    }
}

const fn p(name: &'static str, ty: Ty, range: Range, default: Default) -> Param<'static> {
    Param::positional(name, ty, range, default)
}

const fn tensor(name: &'static str) -> Param<'static> {
    p(name, Ty::Tensor, Range::Any, Default::Required)
}

const fn tensor_or_number(name: &'static str) -> Param<'static> {
    p(name, Ty::TensorOrNumber, Range::Any, Default::Required)
}

const X: Param = tensor("x");
const BIAS: Param = p("bias", Ty::Bool, Range::Any, Default::Bool(true));
const EPS: Param = p("eps", Ty::Float, Range::PositiveFloat, Default::Float(1e-5));
const AXIS_LAST: Param = p("axis", Ty::Int, Range::Any, Default::Int(-1));
const WEIGHT: Param = p("weight", Ty::OptTensor, Range::Any, Default::None);
const PAD_NAMES: &[&str] = &["valid", "same"];
const PAD_MODE: Param = p("pad_mode", Ty::Enums(PadMode::NAMES), Range::Any, Default::Enum("zeros"));
const WARP_MODES: &[&str] = &["bilinear", "nearest"];
const BOUNDARIES: &[&str] = &["zeros", "edge", "circular"];
const COMBINE: &[&str] = &["sum", "mean", "max"];
const SHAPE: Param = p("shape", Ty::Shape, Range::Any, Default::Required);
const UPSAMPLE_MODES: &[&str] = &["nearest", "bilinear"];
const HIDDEN: Param = p("hidden", Ty::Int, Range::Positive, Default::Required);
const RNN_ACTIVATIONS: &[&str] = &["tanh", "relu"];
const RETURN_STATES: Param =
    p("return", Ty::Enum(&["sequence", "last", "states", "all"]), Range::Any, Default::Enum("sequence"));
const REVERSE: Param = p("reverse", Ty::Bool, Range::Any, Default::Bool(false));
/// The initial states of `rnn`, `lstm`, `gru`: `h0`, or `[h0, c0]` for lstm.
const INIT_STATES: Param = p("init", Ty::State, Range::Any, Default::None);

const UNARY: &[Param] = &[X];
const CONV: &[Param] = &[
    X,
    p("channels", Ty::Int, Range::Positive, Default::Required),
    p("kernel", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Int(1)),
    p("pad", Ty::IntOrEnum(PAD_NAMES), Range::NonNegative, Default::Enum("valid")),
    p("dilation", Ty::Ints, Range::Positive, Default::Int(1)),
    BIAS,
    PAD_MODE,
];
const CONV_TRANSPOSE: &[Param] = &[
    X,
    p("channels", Ty::Int, Range::Positive, Default::Required),
    p("kernel", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Int(1)),
    p("pad", Ty::Ints, Range::NonNegative, Default::Int(0)),
    BIAS,
];
const POOL: &[Param] = &[
    X,
    p("size", Ty::Ints, Range::Positive, Default::Required),
    p("stride", Ty::Ints, Range::Positive, Default::Same("size")),
    p("pad", Ty::Ints, Range::NonNegative, Default::Int(0)),
];
const ALPHA_SMALL: &[Param] = &[X, p("alpha", Ty::Float, Range::Any, Default::Float(0.01))];
const ALPHA_ONE: &[Param] = &[X, p("alpha", Ty::Float, Range::Any, Default::Float(1.0))];
const SOFTMAX: &[Param] = &[X, AXIS_LAST];
const REDUCE: &[Param] = &[
    X,
    p("axis", Ty::Ints, Range::Any, Default::None),
    p("keepdims", Ty::Bool, Range::Any, Default::Bool(false)),
];
const REGRESSION: &[Param] = &[tensor("pred"), tensor_or_number("target"), WEIGHT];
const EXTREMUM: &[Param] = &[tensor_or_number("a"), tensor_or_number("b")];
const BALANCED: &[Param] = &[
    tensor("pred"),
    tensor("target"),
    p("thresholds", Ty::Floats, Range::Any, Default::None),
    p("weights", Ty::Floats, Range::Any, Default::None),
];
const PENALTY: &[Param] = &[p("params", Ty::TensorList, Range::Any, Default::Required)];

const fn tensor_spec(
    name: &'static str,
    role: Role,
    shape: &'static str,
    init: InitRule,
    fan_in: &'static str,
    only_if: Option<&'static str>,
) -> TensorSpec {
    TensorSpec { name, role, shape, init, fan_in, only_if }
}

const WEIGHT_ROLE: Role = Role::Param(ParamRole::Weight);
const BIAS_ROLE: Role = Role::Param(ParamRole::Bias);
const IF_BIAS: Option<&str> = Some("bias: true");

const DENSE_TENSORS: &[TensorSpec] = &[
    tensor_spec("weight", WEIGHT_ROLE, "[units, in]", InitRule::FanInUniform, "in", None),
    tensor_spec("bias", BIAS_ROLE, "[units]", InitRule::FanInUniform, "in", IF_BIAS),
];
const CONV_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[channels, in_channels, *kernel]",
        InitRule::FanInUniform,
        "in_channels·prod(kernel)",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[channels]", InitRule::FanInUniform, "in_channels·prod(kernel)", IF_BIAS),
];
const CONV_TRANSPOSE_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[in_channels, channels, *kernel]",
        InitRule::FanInUniform,
        "channels·prod(kernel) (PyTorch's rule: weight dimension 1 times the kernel)",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[channels]", InitRule::FanInUniform, "channels·prod(kernel)", IF_BIAS),
];
const CONVLSTM_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight",
        WEIGHT_ROLE,
        "[4·hidden, C + hidden, kernel, kernel] (gates i, f, g, o; input channels, then hidden)",
        InitRule::FanInUniform,
        "(C + hidden)·kernel²",
        None,
    ),
    tensor_spec("bias", BIAS_ROLE, "[4·hidden]", InitRule::FanInUniform, "(C + hidden)·kernel²", IF_BIAS),
];
const CONVGRU_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight_ih",
        WEIGHT_ROLE,
        "[3·hidden, C, kernel, kernel] (gates r, z, n)",
        InitRule::FanInUniform,
        "C·kernel²",
        None,
    ),
    tensor_spec(
        "weight_hh",
        WEIGHT_ROLE,
        "[3·hidden, hidden, kernel, kernel] (gates r, z, n)",
        InitRule::FanInUniform,
        "hidden·kernel²",
        None,
    ),
    tensor_spec("bias_ih", BIAS_ROLE, "[3·hidden]", InitRule::FanInUniform, "C·kernel²", IF_BIAS),
    tensor_spec("bias_hh", BIAS_ROLE, "[3·hidden]", InitRule::FanInUniform, "hidden·kernel²", IF_BIAS),
];
const TRAJGRU_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight_ih",
        WEIGHT_ROLE,
        "[3·hidden, C, kernel, kernel] (gates r, z, n)",
        InitRule::FanInUniform,
        "C·kernel²",
        None,
    ),
    tensor_spec(
        "weight_hh",
        WEIGHT_ROLE,
        "[3·hidden, links·hidden, 1, 1] (gates r, z, n; the warped states of link 0, then link 1, …)",
        InitRule::FanInUniform,
        "links·hidden",
        None,
    ),
    tensor_spec("bias_ih", BIAS_ROLE, "[3·hidden]", InitRule::FanInUniform, "C·kernel²", IF_BIAS),
    tensor_spec("bias_hh", BIAS_ROLE, "[3·hidden]", InitRule::FanInUniform, "links·hidden", IF_BIAS),
    tensor_spec(
        "weight_flow",
        WEIGHT_ROLE,
        "[flow_channels, C + hidden, 5, 5] (the flow network's hidden layer; input channels, then hidden)",
        InitRule::FanInUniform,
        "(C + hidden)·25",
        None,
    ),
    tensor_spec("bias_flow", BIAS_ROLE, "[flow_channels]", InitRule::FanInUniform, "(C + hidden)·25", IF_BIAS),
    tensor_spec(
        "weight_flow_out",
        WEIGHT_ROLE,
        "[2·links, flow_channels, 5, 5] (the flows (dy, dx) of link 0, then link 1, …; zero, so flows start at 0)",
        InitRule::Zeros,
        "",
        None,
    ),
    tensor_spec("bias_flow_out", BIAS_ROLE, "[2·links]", InitRule::Zeros, "", IF_BIAS),
];
const RECURRENT_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "weight_ih",
        WEIGHT_ROLE,
        "[G·hidden, F] (G = 1 rnn, 4 lstm (i, f, g, o), 3 gru (r, z, n))",
        InitRule::FanInUniform,
        "hidden",
        None,
    ),
    tensor_spec("weight_hh", WEIGHT_ROLE, "[G·hidden, hidden]", InitRule::FanInUniform, "hidden", None),
    tensor_spec("bias_ih", BIAS_ROLE, "[G·hidden]", InitRule::FanInUniform, "hidden", IF_BIAS),
    tensor_spec("bias_hh", BIAS_ROLE, "[G·hidden]", InitRule::FanInUniform, "hidden", IF_BIAS),
];
const NORM_SCALE: TensorSpec =
    tensor_spec("weight", Role::Param(ParamRole::Scale), "[C] (C = axis 1)", InitRule::Ones, "", None);
const NORM_SHIFT: TensorSpec =
    tensor_spec("bias", Role::Param(ParamRole::Shift), "[C] (C = axis 1)", InitRule::Zeros, "", None);
const BATCHNORM_TENSORS: &[TensorSpec] = &[
    NORM_SCALE,
    NORM_SHIFT,
    tensor_spec("running_mean", Role::State, "[C] (C = axis 1)", InitRule::Zeros, "", None),
    tensor_spec("running_var", Role::State, "[C] (C = axis 1)", InitRule::Ones, "", None),
];
const LAYERNORM_TENSORS: &[TensorSpec] = &[
    tensor_spec("weight", Role::Param(ParamRole::Scale), "[D] (D = last axis)", InitRule::Ones, "", None),
    tensor_spec("bias", Role::Param(ParamRole::Shift), "[D] (D = last axis)", InitRule::Zeros, "", None),
];
const GROUPNORM_TENSORS: &[TensorSpec] = &[NORM_SCALE, NORM_SHIFT];
const MHA_TENSORS: &[TensorSpec] = &[
    tensor_spec("q_proj.weight", WEIGHT_ROLE, "[E, E] (E = width of x)", InitRule::FanInUniform, "E", None),
    tensor_spec("q_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", IF_BIAS),
    tensor_spec(
        "k_proj.weight",
        WEIGHT_ROLE,
        "[E, Ec] (Ec = width of the context, E without one)",
        InitRule::FanInUniform,
        "Ec",
        None,
    ),
    tensor_spec("k_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "Ec", IF_BIAS),
    tensor_spec("v_proj.weight", WEIGHT_ROLE, "[E, Ec]", InitRule::FanInUniform, "Ec", None),
    tensor_spec("v_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "Ec", IF_BIAS),
    tensor_spec(
        "out_proj.weight",
        WEIGHT_ROLE,
        "[E, E] (input: the heads joined, head j = features j·E/heads ..)",
        InitRule::FanInUniform,
        "E",
        None,
    ),
    tensor_spec("out_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", IF_BIAS),
];
const TRANSFORMER_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "self_attn.q_proj.weight",
        WEIGHT_ROLE,
        "[E, E] (E = width of x)",
        InitRule::FanInUniform,
        "E",
        None,
    ),
    tensor_spec("self_attn.q_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.k_proj.weight", WEIGHT_ROLE, "[E, E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.k_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.v_proj.weight", WEIGHT_ROLE, "[E, E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.v_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.out_proj.weight", WEIGHT_ROLE, "[E, E]", InitRule::FanInUniform, "E", None),
    tensor_spec("self_attn.out_proj.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "E", None),
    tensor_spec("linear1.weight", WEIGHT_ROLE, "[ff, E]", InitRule::FanInUniform, "E", None),
    tensor_spec("linear1.bias", BIAS_ROLE, "[ff]", InitRule::FanInUniform, "E", None),
    tensor_spec("linear2.weight", WEIGHT_ROLE, "[E, ff]", InitRule::FanInUniform, "ff", None),
    tensor_spec("linear2.bias", BIAS_ROLE, "[E]", InitRule::FanInUniform, "ff", None),
    tensor_spec("norm1.weight", Role::Param(ParamRole::Scale), "[E]", InitRule::Ones, "", None),
    tensor_spec("norm1.bias", Role::Param(ParamRole::Shift), "[E]", InitRule::Zeros, "", None),
    tensor_spec("norm2.weight", Role::Param(ParamRole::Scale), "[E]", InitRule::Ones, "", None),
    tensor_spec("norm2.bias", Role::Param(ParamRole::Shift), "[E]", InitRule::Zeros, "", None),
];
const EMBEDDING_TENSORS: &[TensorSpec] = &[tensor_spec(
    "weight",
    WEIGHT_ROLE,
    "[vocab, dim]",
    InitRule::Normal("1 (PyTorch `nn.Embedding`)"),
    "",
    None,
)];
const POSITIONAL_TENSORS: &[TensorSpec] = &[tensor_spec(
    "weight",
    WEIGHT_ROLE,
    "[T, D] (the last two axes of x)",
    InitRule::Normal("0.02"),
    "",
    Some("kind: learned"),
)];
const GRAPH_CONV_TENSORS: &[TensorSpec] = &[
    tensor_spec(
        "message.weight",
        WEIGHT_ROLE,
        "[units, 2F + Fe] (input columns: source features, destination features, edge features)",
        InitRule::FanInUniform,
        "2F + Fe",
        None,
    ),
    tensor_spec("message.bias", BIAS_ROLE, "[units]", InitRule::FanInUniform, "2F + Fe", None),
    tensor_spec(
        "update.weight",
        WEIGHT_ROLE,
        "[units, F + units] (input columns: node features, aggregated messages)",
        InitRule::FanInUniform,
        "F + units",
        None,
    ),
    tensor_spec("update.bias", BIAS_ROLE, "[units]", InitRule::FanInUniform, "F + units", None),
];
/// The activations `graph_conv` offers for its two layers.
const GRAPH_ACTIVATIONS: &[&str] = &["relu", "tanh", "gelu", "sigmoid", "softplus", "elu", "selu"];
const MASK: Param = p("mask", Ty::Mask, Range::Any, Default::None);
const HEADS: Param = p("heads", Ty::Int, Range::Positive, Default::Required);
const DROPOUT: Param = p("dropout", Ty::Float, Range::Probability, Default::Float(0.0));

/// The combination named `name` (one of [`COMBINE`]).
fn combine(name: &str) -> Combine {
    match name {
        "mean" => Combine::Mean,
        "max" => Combine::Max,
        _ => Combine::Sum,
    }
}

/// The catalogue of built-ins.
pub fn builtins() -> &'static [Builtin] {
    CATALOGUE
}

/// The built-in called `name`, if any.
pub fn find(name: &str) -> Option<&'static Builtin> {
    CATALOGUE.iter().find(|b| b.name == name)
}

static CATALOGUE: &[Builtin] = &[
    // Layers.
    Builtin {
        name: "dense",
        kind: Kind::Layer,
        params: &[
            X,
            p("units", Ty::Int, Range::Positive, Default::Required),
            BIAS,
            p("init", Ty::Enum(&["uniform", "zeros"]), Range::Any, Default::Enum("uniform")),
        ],
        tensors: DENSE_TENSORS,
        doc: "fully connected layer on the last axis: x · Wᵀ + b; `init: zeros` starts weight and bias at 0",
        build: |cx, a| {
            let init = if a.enum_value("init")? == "zeros" {
                forward::DenseInit::Zeros
            } else {
                forward::DenseInit::Uniform
            };
            forward::dense_init(cx, a.tensor("x")?, a.size("units")?, a.bool("bias")?, init)
        },
    },
    Builtin {
        name: "conv1d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "1-D convolution of [B, C, L]; `pad_mode` fills the padding with zeros or by circular, reflect or edge",
        build: conv1d,
    },
    Builtin {
        name: "conv2d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "2-D convolution of [B, C, H, W]; `pad_mode` (one, or one per axis) fills the padding with zeros \
              or by circular, reflect or edge",
        build: conv2d,
    },
    Builtin {
        name: "conv3d",
        kind: Kind::Layer,
        params: CONV,
        tensors: CONV_TENSORS,
        doc: "3-D convolution of [B, C, D, H, W]; `pad_mode` fills the padding with zeros or by circular, \
              reflect or edge",
        build: conv3d,
    },
    Builtin {
        name: "conv_transpose2d",
        kind: Kind::Layer,
        params: CONV_TRANSPOSE,
        tensors: CONV_TRANSPOSE_TENSORS,
        doc: "2-D transposed convolution (learned upsampling): output (in − 1)·stride − 2·pad + kernel",
        build: |cx, a| {
            let x = a.tensor("x")?;
            let (kernel, stride, pad) =
                (a.spatial("kernel", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
            forward::conv_transpose(cx, x, 2, a.size("channels")?, &kernel, &stride, &pad, a.bool("bias")?)
        },
    },
    Builtin {
        name: "convlstm",
        kind: Kind::Layer,
        params: &[
            X,
            p("hidden", Ty::Int, Range::Positive, Default::Required),
            p("kernel", Ty::Int, Range::Positive, Default::Required),
            p("forecast", Ty::Int, Range::NonNegative, Default::Int(0)),
            BIAS,
        ],
        tensors: CONVLSTM_TENSORS,
        doc: "ConvLSTM over frames [B, T, C, H, W]: gates = conv_same(concat[x_t, h]) split (i, f, g, o), \
              c = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c) from zero state; returns the T hidden states \
              [B, T, hidden, H, W], or with `forecast: F` the F states of further steps with zero input \
              [B, F, hidden, H, W]",
        build: |cx, a| {
            let (hidden, kernel) = (a.size("hidden")?, a.size("kernel")?);
            forward::convlstm(cx, a.tensor("x")?, hidden, kernel, a.size("forecast")?, a.bool("bias")?)
        },
    },
    Builtin {
        name: "convgru",
        kind: Kind::Layer,
        params: &[
            X,
            p("hidden", Ty::Int, Range::Positive, Default::Required),
            p("kernel", Ty::Int, Range::Positive, Default::Required),
            p("forecast", Ty::Int, Range::NonNegative, Default::Int(0)),
            BIAS,
        ],
        tensors: CONVGRU_TENSORS,
        doc: "ConvGRU over frames [B, T, C, H, W]: a = conv_same(x_t) + b_ih, b = conv_same(h) + b_hh split \
              (r, z, n), r, z = σ(a + b), n = tanh(a_n + r·b_n), h = (1 − z)·n + z·h from zero state; returns \
              the T states [B, T, hidden, H, W], or with `forecast: F` the F states of further steps with zero \
              input [B, F, hidden, H, W]",
        build: |cx, a| forward::convgru(cx, a.tensor("x")?, conv_cell(a)?),
    },
    Builtin {
        name: "trajgru",
        kind: Kind::Layer,
        params: &[
            X,
            p("hidden", Ty::Int, Range::Positive, Default::Required),
            p("kernel", Ty::Int, Range::Positive, Default::Required),
            p("links", Ty::Int, Range::Positive, Default::Required),
            p("forecast", Ty::Int, Range::NonNegative, Default::Int(0)),
            p("flow_channels", Ty::Int, Range::Positive, Default::Int(32)),
            BIAS,
        ],
        tensors: TRAJGRU_TENSORS,
        doc: "TrajGRU (Shi et al. 2017) over frames [B, T, C, H, W]: a 5×5 conv net on concat[x_t, h] \
              predicts `links` flows (dy, dx), the state is warped along each (bilinear, zeros) and a 1×1 \
              conv of the warped states replaces convgru's state convolution; same gates, state and result",
        build: |cx, a| {
            let links = forward::Links { links: a.size("links")?, channels: a.size("flow_channels")? };
            forward::trajgru(cx, a.tensor("x")?, conv_cell(a)?, links)
        },
    },
    Builtin {
        name: "rnn",
        kind: Kind::Layer,
        params: &[
            X,
            HIDDEN,
            p("activation", Ty::Enum(RNN_ACTIVATIONS), Range::Any, Default::Enum("tanh")),
            RETURN_STATES,
            REVERSE,
            INIT_STATES,
            BIAS,
        ],
        tensors: RECURRENT_TENSORS,
        doc: "Elman RNN over [B, T, F] (PyTorch `nn.RNN`, batch_first): h = act(W_ih·x_t + b_ih + W_hh·h + b_hh) \
              from `init` (h0 [B, hidden], default zeros), act tanh or relu; returns the states [B, T, hidden], \
              with `return: last` the final state [B, hidden], `states` the list [h_T], `all` [states, h_T]; \
              `reverse` runs from the last step",
        build: |cx, a| {
            let relu = a.enum_value("activation")? == "relu";
            sequence_layer(cx, a, forward::Cell::Rnn { relu })
        },
    },
    Builtin {
        name: "lstm",
        kind: Kind::Layer,
        params: &[X, HIDDEN, RETURN_STATES, REVERSE, INIT_STATES, BIAS],
        tensors: RECURRENT_TENSORS,
        doc: "LSTM over [B, T, F] (PyTorch `nn.LSTM`, batch_first): gates W_ih·x_t + b_ih + W_hh·h + b_hh split \
              (i, f, g, o), c = σ(f)·c + σ(i)·tanh(g), h = σ(o)·tanh(c) from `init: [h0, c0]` ([B, hidden] each, \
              default zeros); returns the states [B, T, hidden], with `return: last` the final state [B, hidden], \
              `states` the list [h_T, c_T], `all` [states, h_T, c_T]; `reverse` runs from the last step",
        build: |cx, a| sequence_layer(cx, a, forward::Cell::Lstm),
    },
    Builtin {
        name: "gru",
        kind: Kind::Layer,
        params: &[X, HIDDEN, RETURN_STATES, REVERSE, INIT_STATES, BIAS],
        tensors: RECURRENT_TENSORS,
        doc: "GRU over [B, T, F] (PyTorch `nn.GRU`, batch_first): gates (r, z, n), r, z = σ(W_i·x_t + b_i + \
              W_h·h + b_h), n = tanh(W_in·x_t + b_in + r·(W_hn·h + b_hn)), h = (1 − z)·n + z·h from `init` (h0 \
              [B, hidden], default zeros); returns the states [B, T, hidden], with `return: last` the final state \
              [B, hidden], `states` the list [h_T], `all` [states, h_T]; `reverse` runs from the last step",
        build: |cx, a| sequence_layer(cx, a, forward::Cell::Gru),
    },
    Builtin {
        name: "batchnorm",
        kind: Kind::Layer,
        params: &[X, p("momentum", Ty::Float, Range::UnitInterval, Default::Float(0.1)), EPS],
        tensors: BATCHNORM_TENSORS,
        doc: "batch normalisation per channel (axis 1): batch statistics in training, running statistics in inference",
        build: |cx, a| forward::batchnorm(cx, a.tensor("x")?, a.float("momentum")?, a.float("eps")?),
    },
    Builtin {
        name: "layernorm",
        kind: Kind::Layer,
        params: &[X, EPS],
        tensors: LAYERNORM_TENSORS,
        doc: "layer normalisation over the last axis",
        build: |cx, a| forward::layernorm(cx, a.tensor("x")?, a.float("eps")?),
    },
    Builtin {
        name: "groupnorm",
        kind: Kind::Layer,
        params: &[X, p("groups", Ty::Int, Range::Positive, Default::Required), EPS],
        tensors: GROUPNORM_TENSORS,
        doc: "group normalisation: channels (axis 1) split into `groups` groups, each normalised per sample",
        build: |cx, a| forward::groupnorm(cx, a.tensor("x")?, a.size("groups")?, a.float("eps")?),
    },
    Builtin {
        name: "multihead_attention",
        kind: Kind::Layer,
        params: &[X, HEADS, p("context", Ty::OptTensor, Range::Any, Default::None), MASK, DROPOUT, BIAS],
        tensors: MHA_TENSORS,
        doc: "multi-head attention over x [B, T, E] (PyTorch `nn.MultiheadAttention`, batch_first, separate \
              projections): q = x·Wqᵀ, k, v from `context` [B, S, Ec] (default x), `heads` heads of E/heads \
              features, softmax(q·kᵀ/√(E/heads)) per head with `mask` (`causal` or 0/1 broadcastable to \
              [B, heads, T, S]), heads joined and projected by out_proj → [B, T, E]; `dropout` on the weights",
        build: |cx, a| {
            let context = a.opt_tensor("context")?;
            let mask = mask(a, 1 + usize::from(context.is_some()))?;
            let heads = forward::Heads { heads: a.size("heads")?, mask, dropout: a.float("dropout")?, bias: a.bool("bias")? };
            forward::multihead_attention(cx, a.tensor("x")?, context, heads)
        },
    },
    Builtin {
        name: "transformer_layer",
        kind: Kind::Layer,
        params: &[
            X,
            HEADS,
            p("ff", Ty::Int, Range::Positive, Default::Required),
            p("norm", Ty::Enum(&["pre", "post"]), Range::Any, Default::Enum("pre")),
            DROPOUT,
            p("activation", Ty::Enum(&["gelu", "relu"]), Range::Any, Default::Enum("gelu")),
            MASK,
            EPS,
        ],
        tensors: TRANSFORMER_TENSORS,
        doc: "a transformer encoder layer over [B, T, E] (PyTorch `nn.TransformerEncoderLayer`, batch_first): \
              self-attention (`heads`, `mask`) and linear2(act(linear1(.))) with `ff` hidden units, each added \
              to its input, with layer norms before (`norm: pre`: h = x + attn(norm1(x)), y = h + ff(norm2(h))) \
              or after (`post`: h = norm1(x + attn(x)), y = norm2(h + ff(h))); `dropout` on the attention \
              weights, the hidden units and both branches",
        build: |cx, a| {
            let norm = if a.enum_value("norm")? == "post" { forward::Norm::Post } else { forward::Norm::Pre };
            let act = if a.enum_value("activation")? == "relu" { Activation::Relu } else { Activation::Gelu };
            let e = forward::Encoder {
                heads: a.size("heads")?,
                ff: a.size("ff")?,
                norm,
                dropout: a.float("dropout")?,
                activation: act,
                mask: mask(a, 1)?,
                eps: a.float("eps")?,
            };
            forward::transformer_layer(cx, a.tensor("x")?, e)
        },
    },
    Builtin {
        name: "embedding",
        kind: Kind::Layer,
        params: &[
            X,
            p("vocab", Ty::Int, Range::Positive, Default::Required),
            p("dim", Ty::Int, Range::Positive, Default::Required),
        ],
        tensors: EMBEDDING_TENSORS,
        doc: "looks up row x of weight [vocab, dim] for every i32 index: [...] → [..., dim] (PyTorch \
              `nn.Embedding`); an index outside 0..vocab gives zeros",
        build: |cx, a| forward::embedding(cx, a.tensor("x")?, a.size("vocab")?, a.size("dim")?),
    },
    Builtin {
        name: "positional_encoding",
        kind: Kind::Layer,
        params: &[X, p("kind", Ty::Enum(&["sinusoidal", "learned"]), Range::Any, Default::Enum("sinusoidal"))],
        tensors: POSITIONAL_TENSORS,
        doc: "x + pe over the last two axes [.., T, D]: fixed sinusoids pe[t, 2i] = sin(t/10000^(2i/D)), \
              pe[t, 2i+1] = cos(t/10000^(2i/D)) (Vaswani et al. 2017), or with `kind: learned` a trained weight [T, D]",
        build: |cx, a| {
            let kind = if a.enum_value("kind")? == "learned" {
                forward::Positions::Learned
            } else {
                forward::Positions::Sinusoidal
            };
            forward::positional_encoding(cx, a.tensor("x")?, kind)
        },
    },
    // Activations.
    Builtin {
        name: "relu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "max(x, 0)",
        build: |cx, a| act(cx, a, Activation::Relu),
    },
    Builtin {
        name: "leaky_relu",
        kind: Kind::Activation,
        params: ALPHA_SMALL,
        tensors: &[],
        doc: "x if x > 0 else alpha·x",
        build: |cx, a| act(cx, a, Activation::LeakyRelu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "elu",
        kind: Kind::Activation,
        params: ALPHA_ONE,
        tensors: &[],
        doc: "x if x > 0 else alpha·(exp(x) − 1)",
        build: |cx, a| act(cx, a, Activation::Elu { alpha: a.float("alpha")? }),
    },
    Builtin {
        name: "selu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "scale·elu(x, alpha) with PyTorch's constants scale ≈ 1.0507, alpha ≈ 1.6733",
        build: |cx, a| act(cx, a, Activation::Selu),
    },
    Builtin {
        name: "gelu",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "x·Φ(x), the exact erf form 0.5·x·(1 + erf(x/√2))",
        build: |cx, a| act(cx, a, Activation::Gelu),
    },
    Builtin {
        name: "sigmoid",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "1 / (1 + exp(−x))",
        build: |cx, a| act(cx, a, Activation::Sigmoid),
    },
    Builtin {
        name: "tanh",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "hyperbolic tangent",
        build: |cx, a| act(cx, a, Activation::Tanh),
    },
    Builtin {
        name: "softplus",
        kind: Kind::Activation,
        params: UNARY,
        tensors: &[],
        doc: "log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(−|x|))",
        build: |cx, a| act(cx, a, Activation::Softplus),
    },
    Builtin {
        name: "softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        tensors: &[],
        doc: "exp(x − max) normalised to sum 1 along `axis`",
        build: |cx, a| forward::softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    Builtin {
        name: "log_softmax",
        kind: Kind::Activation,
        params: SOFTMAX,
        tensors: &[],
        doc: "log of softmax along `axis`",
        build: |cx, a| forward::log_softmax(cx, a.tensor("x")?, a.int("axis")?),
    },
    // Tensor operations.
    Builtin {
        name: "exp",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "eˣ",
        build: |cx, a| act(cx, a, Activation::Exp),
    },
    Builtin {
        name: "log",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "natural logarithm",
        build: |cx, a| act(cx, a, Activation::Log),
    },
    Builtin {
        name: "sqrt",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "square root",
        build: |cx, a| act(cx, a, Activation::Sqrt),
    },
    Builtin {
        name: "abs",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "absolute value",
        build: |cx, a| act(cx, a, Activation::Abs),
    },
    Builtin {
        name: "square",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "x²",
        build: |cx, a| act(cx, a, Activation::Square),
    },
    Builtin {
        name: "clip",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("min", Ty::Float, Range::Any, Default::Required),
            p("max", Ty::Float, Range::Any, Default::Required),
        ],
        tensors: &[],
        doc: "limits values to [min, max]",
        build: |cx, a| forward::clip(cx, a.tensor("x")?, a.float("min")?, a.float("max")?),
    },
    Builtin {
        name: "dropout",
        kind: Kind::TensorOp,
        params: &[X, p("p", Ty::Float, Range::Probability, Default::Required)],
        tensors: &[],
        doc: "inverted dropout: zeroes elements with probability p and scales the rest by 1/(1−p) in training; identity in inference",
        build: |cx, a| forward::dropout(cx, a.tensor("x")?, a.float("p")?),
    },
    Builtin {
        name: "maxpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        tensors: &[],
        doc: "maximum over size×size windows",
        build: |cx, a| pool(cx, a, PoolKind::Max),
    },
    Builtin {
        name: "avgpool2d",
        kind: Kind::TensorOp,
        params: POOL,
        tensors: &[],
        doc: "average over size×size windows",
        build: |cx, a| pool(cx, a, PoolKind::Avg),
    },
    Builtin {
        name: "global_avgpool",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "average over all spatial positions: [B, C, ...] → [B, C]",
        build: |cx, a| forward::global_avgpool(cx, a.tensor("x")?),
    },
    Builtin {
        name: "upsample",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("scale", Ty::Ints, Range::Positive, Default::Required),
            p("mode", Ty::Enum(UPSAMPLE_MODES), Range::Any, Default::Enum("nearest")),
        ],
        tensors: &[],
        doc: "enlarges the spatial axes of [B, C, *S] by the integer `scale` (nearest: repeat; bilinear: half-pixel centres)",
        build: |cx, a| {
            let x = a.tensor("x")?;
            let mode = if a.enum_value("mode")? == "bilinear" {
                UpsampleMode::Bilinear
            } else {
                UpsampleMode::Nearest
            };
            let scale = a.spatial("scale", spatial_rank(cx, x))?;
            forward::upsample(cx, x, &scale, mode)
        },
    },
    Builtin {
        name: "concat",
        kind: Kind::TensorOp,
        params: &[
            p("xs", Ty::Tensors, Range::Any, Default::Required),
            p("axis", Ty::Int, Range::Any, Default::Int(1)),
        ],
        tensors: &[],
        doc: "joins tensors along `axis`",
        build: |cx, a| forward::concat(cx, &a.tensors("xs")?, a.int("axis")?),
    },
    Builtin {
        name: "flatten",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "[B, ...] → [B, product of the rest]",
        build: |cx, a| forward::flatten(cx, a.tensor("x")?),
    },
    Builtin {
        name: "reshape",
        kind: Kind::TensorOp,
        params: &[X, p("shape", Ty::Shape, Range::Any, Default::Required)],
        tensors: &[],
        doc: "same elements, new shape (`-1` is inferred)",
        build: |cx, a| forward::reshape(cx, a.tensor("x")?, &a.shape("shape")?),
    },
    Builtin {
        name: "permute",
        kind: Kind::TensorOp,
        params: &[X, p("axes", Ty::IntList, Range::Any, Default::Required)],
        tensors: &[],
        doc: "reorders the axes",
        build: |cx, a| forward::permute(cx, a.tensor("x")?, &a.ints("axes")?.unwrap_or_default()),
    },
    Builtin {
        name: "sum",
        kind: Kind::TensorOp,
        params: REDUCE,
        tensors: &[],
        doc: "sum over `axis` (all axes by default)",
        build: |cx, a| reduce(cx, a, Reduction::Sum),
    },
    Builtin {
        name: "mean",
        kind: Kind::TensorOp,
        params: REDUCE,
        tensors: &[],
        doc: "mean over `axis` (all axes by default)",
        build: |cx, a| reduce(cx, a, Reduction::Mean),
    },
    Builtin {
        name: "matmul",
        kind: Kind::TensorOp,
        params: &[tensor("a"), tensor("b")],
        tensors: &[],
        doc: "matrix product of the last two axes; the leading (batch) axes broadcast as in NumPy",
        build: |cx, a| forward::matmul(cx, a.tensor("a")?, a.tensor("b")?),
    },
    Builtin {
        name: "attention",
        kind: Kind::TensorOp,
        params: &[tensor("q"), tensor("k"), tensor("v"), MASK],
        tensors: &[],
        doc: "scaled dot-product attention softmax(q·kᵀ/√D)·v over q [.., T, D], k [.., S, D], v [.., S, Dv] \
              (rank 3 [B, T, D] or 4 [B, H, T, D]) → [.., T, Dv]; max-subtracted softmax; `mask: causal` (key ≤ \
              query) or a 0/1 or bool tensor broadcastable to [.., T, S]; masked positions weigh exactly 0",
        build: |cx, a| {
            let mask = mask(a, 3)?;
            forward::attention(cx, a.tensor("q")?, a.tensor("k")?, a.tensor("v")?, mask)
        },
    },
    Builtin {
        name: "stack",
        kind: Kind::TensorOp,
        params: &[
            p("xs", Ty::Tensors, Range::Any, Default::Required),
            p("axis", Ty::Int, Range::Any, Default::Int(0)),
        ],
        tensors: &[],
        doc: "joins tensors of one type along a new axis `axis` (of the result)",
        build: |cx, a| forward::stack(cx, &a.tensors("xs")?, a.int("axis")?),
    },
    Builtin {
        name: "pad",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("widths", Ty::Pairs, Range::NonNegative, Default::Required),
            p("mode", Ty::Enum(PadMode::NAMES), Range::Any, Default::Enum("zeros")),
            p("value", Ty::Float, Range::Any, Default::Float(0.0)),
        ],
        tensors: &[],
        doc: "pads the last len(widths) axes by [before, after] each (NumPy modes: zeros with `value`, \
              circular = wrap, reflect, edge)",
        build: |cx, a| {
            let mode = PadMode::from_name(a.enum_value("mode")?).ok_or_else(|| MissingArgument { name: "mode".into() })?;
            forward::pad(cx, a.tensor("x")?, &a.pairs("widths")?, mode, a.float("value")?)
        },
    },
    Builtin {
        name: "roll",
        kind: Kind::TensorOp,
        params: &[
            X,
            p("shift", Ty::Ints, Range::Any, Default::Required),
            p("axis", Ty::Ints, Range::Any, Default::Required),
        ],
        tensors: &[],
        doc: "moves element i of `axis` to (i + shift) mod n (NumPy); lists roll several axes",
        build: |cx, a| {
            let (shift, axis) = (a.ints("shift")?.unwrap_or_default(), a.ints("axis")?.unwrap_or_default());
            forward::roll(cx, a.tensor("x")?, &shift, &axis)
        },
    },
    Builtin {
        name: "where",
        kind: Kind::TensorOp,
        params: &[tensor("cond"), tensor_or_number("a"), tensor_or_number("b")],
        tensors: &[],
        doc: "`a` where the bool `cond` holds, else `b` (NumPy broadcasting; `a` and `b` may be numbers)",
        build: |cx, a| {
            let cond = a.tensor("cond")?;
            let (x, y) = (operand(cx, a, "a")?, operand(cx, a, "b")?);
            renumbered(a, forward::select(cx, cond, x, y))
        },
    },
    Builtin {
        name: "minimum",
        kind: Kind::TensorOp,
        params: EXTREMUM,
        tensors: &[],
        doc: "the elementwise smaller of `a` and `b` (NumPy broadcasting; numbers allowed)",
        build: |cx, a| extremum(cx, a, BinaryOp::Min),
    },
    Builtin {
        name: "maximum",
        kind: Kind::TensorOp,
        params: EXTREMUM,
        tensors: &[],
        doc: "the elementwise larger of `a` and `b` (NumPy broadcasting; numbers allowed)",
        build: |cx, a| extremum(cx, a, BinaryOp::Max),
    },
    Builtin {
        name: "stop_gradient",
        kind: Kind::TensorOp,
        params: UNARY,
        tensors: &[],
        doc: "`x`, through which no gradient flows (a constant to training)",
        build: |cx, a| forward::stop_gradient(cx, a.tensor("x")?),
    },
    Builtin {
        name: "warp",
        kind: Kind::TensorOp,
        params: &[
            X,
            tensor("flow"),
            p("mode", Ty::Enum(WARP_MODES), Range::Any, Default::Enum("bilinear")),
            p("boundary", Ty::Enum(BOUNDARIES), Range::Any, Default::Enum("zeros")),
        ],
        tensors: &[],
        doc: "samples x [B, C, H, W] at (i + dy, j + dx), flow [B, 2, H, W] = (dy, dx) in grid cells",
        build: |cx, a| {
            let mode = if a.enum_value("mode")? == "nearest" { WarpMode::Nearest } else { WarpMode::Bilinear };
            let boundary = match a.enum_value("boundary")? {
                "edge" => Boundary::Edge,
                "circular" => Boundary::Circular,
                _ => Boundary::Zeros,
            };
            forward::warp(cx, a.tensor("x")?, a.tensor("flow")?, mode, boundary)
        },
    },
    Builtin {
        name: "affine_flow",
        kind: Kind::TensorOp,
        params: &[tensor("theta"), p("size", Ty::IntList, Range::Positive, Default::Required)],
        tensors: &[],
        doc: "the flow [B, 2, H, W] of affine matrices theta [B, 2, 3] on normalised coordinates \
              (PyTorch affine_grid, align_corners=False), for `warp`",
        build: |cx, a| {
            let size: Vec<usize> = sizes(&a.ints("size")?.unwrap_or_default());
            forward::affine_flow(cx, a.tensor("theta")?, &size)
        },
    },
    Builtin {
        name: "gather",
        kind: Kind::TensorOp,
        params: &[X, tensor("index"), p("axis", Ty::Int, Range::Any, Default::Int(1))],
        tensors: &[],
        doc: "x at the i32 positions `index` along `axis`: [B, N, F], i32[E] → [B, E, F]",
        build: |cx, a| forward::gather(cx, a.tensor("x")?, a.tensor("index")?, a.int("axis")?),
    },
    Builtin {
        name: "scatter",
        kind: Kind::TensorOp,
        params: &[
            X,
            tensor("index"),
            p("n", Ty::Int, Range::Positive, Default::Required),
            p("axis", Ty::Int, Range::Any, Default::Int(1)),
            p("reduce", Ty::Enum(COMBINE), Range::Any, Default::Enum("sum")),
        ],
        tensors: &[],
        doc: "sends position e of `axis` to position index[e] of n, combined by sum, mean or max: \
              [B, E, F], i32[E] → [B, n, F]",
        build: |cx, a| {
            let (x, index) = (a.tensor("x")?, a.tensor("index")?);
            forward::scatter(cx, x, index, a.size("n")?, a.int("axis")?, combine(a.enum_value("reduce")?))
        },
    },
    Builtin {
        name: "graph_conv",
        kind: Kind::Layer,
        params: &[
            X,
            tensor("edges"),
            p("units", Ty::Int, Range::Positive, Default::Required),
            p("aggr", Ty::Enum(COMBINE), Range::Any, Default::Enum("sum")),
            p("edge_features", Ty::OptTensor, Range::Any, Default::None),
            p("activation", Ty::Enum(GRAPH_ACTIVATIONS), Range::Any, Default::Enum("relu")),
            p("residual", Ty::Bool, Range::Any, Default::Bool(true)),
        ],
        tensors: GRAPH_CONV_TENSORS,
        doc: "an interaction-network layer on nodes x [B, N, F] and edges i32[E, 2] (source, destination): \
              messages m_e = act(message·[x_src, x_dst, edge_features] + b), combined at each destination by \
              `aggr` (sum, mean or max; 0 without incoming edges), y = act(update·[x, aggregate] + b), plus x \
              when F = units and `residual` → [B, N, units]; edge features [E, Fe] or [B, E, Fe]",
        build: |cx, a| {
            let activation = match a.enum_value("activation")? {
                "tanh" => Activation::Tanh,
                "gelu" => Activation::Gelu,
                "sigmoid" => Activation::Sigmoid,
                "softplus" => Activation::Softplus,
                "elu" => Activation::Elu { alpha: 1.0 },
                "selu" => Activation::Selu,
                _ => Activation::Relu,
            };
            let g = forward::GraphConv {
                units: a.size("units")?,
                aggregate: combine(a.enum_value("aggr")?),
                activation,
                residual: a.bool("residual")?,
            };
            let features = a.opt_tensor("edge_features")?;
            forward::graph_conv(cx, a.tensor("x")?, a.tensor("edges")?, features, g)
        },
    },
    // Constants, sequences, random tensors and graphs.
    Builtin {
        name: "zeros",
        kind: Kind::Constant,
        params: &[SHAPE],
        tensors: &[],
        doc: "an f32 tensor of zeros, e.g. `zeros([B, 64])`",
        build: |cx, a| forward::full(cx, "zeros", &a.shape("shape")?, 0.0),
    },
    Builtin {
        name: "ones",
        kind: Kind::Constant,
        params: &[SHAPE],
        tensors: &[],
        doc: "an f32 tensor of ones",
        build: |cx, a| forward::full(cx, "ones", &a.shape("shape")?, 1.0),
    },
    Builtin {
        name: "full",
        kind: Kind::Constant,
        params: &[SHAPE, p("value", Ty::Float, Range::Any, Default::Required)],
        tensors: &[],
        doc: "an f32 tensor with every element `value`",
        build: |cx, a| forward::full(cx, "full", &a.shape("shape")?, a.float("value")?),
    },
    Builtin {
        name: "zeros_like",
        kind: Kind::Constant,
        params: UNARY,
        tensors: &[],
        doc: "zeros of the type (element type and shape) of `x`",
        build: |cx, a| forward::zeros_like(cx, a.tensor("x")?),
    },
    Builtin {
        name: "arange",
        kind: Kind::Constant,
        params: &[
            p("start", Ty::Float, Range::Any, Default::Required),
            p("stop", Ty::Float, Range::Any, Default::None),
            p("step", Ty::Float, Range::Any, Default::Float(1.0)),
        ],
        tensors: &[],
        doc: "f32 [start, start + step, ...] before `stop` (NumPy); `arange(n)` is 0, 1, ..., n − 1",
        build: |cx, a| {
            let (first, step) = (a.float("start")?, a.float("step")?);
            match a.opt_float("stop")? {
                Some(stop) => forward::arange(cx, first, stop, step),
                None => forward::arange(cx, 0.0, first, step),
            }
        },
    },
    Builtin {
        name: "eye",
        kind: Kind::Constant,
        params: &[
            p("rows", Ty::Int, Range::Positive, Default::Required),
            p("cols", Ty::Int, Range::Positive, Default::None),
        ],
        tensors: &[],
        doc: "the f32 [rows, cols] matrix with ones on the diagonal (NumPy `eye`; `cols` defaults to `rows`)",
        build: |cx, a| {
            let rows = a.size("rows")?;
            let cols = match a.ints("cols")?.as_deref() {
                Some([c]) => usize::try_from(*c).unwrap_or(0),
                _ => rows,
            };
            forward::eye(cx, rows, cols)
        },
    },
    Builtin {
        name: "linspace",
        kind: Kind::Constant,
        params: &[
            p("start", Ty::Float, Range::Any, Default::Required),
            p("stop", Ty::Float, Range::Any, Default::Required),
            p("n", Ty::Int, Range::Positive, Default::Required),
        ],
        tensors: &[],
        doc: "`n` evenly spaced f32 values from `start` to `stop`, both included",
        build: |cx, a| forward::linspace(cx, a.float("start")?, a.float("stop")?, a.size("n")?),
    },
    Builtin {
        name: "uniform",
        kind: Kind::Constant,
        params: &[
            SHAPE,
            p("low", Ty::Float, Range::Any, Default::Float(0.0)),
            p("high", Ty::Float, Range::Any, Default::Float(1.0)),
        ],
        tensors: &[],
        doc: "random numbers uniform on [low, high), drawn afresh at every step",
        build: |cx, a| forward::uniform(cx, &a.shape("shape")?, a.float("low")?, a.float("high")?),
    },
    Builtin {
        name: "normal",
        kind: Kind::Constant,
        params: &[
            SHAPE,
            p("mean", Ty::Float, Range::Any, Default::Float(0.0)),
            p("std", Ty::Float, Range::NonNegativeFloat, Default::Float(1.0)),
        ],
        tensors: &[],
        doc: "random numbers from a normal distribution (Box–Muller), drawn afresh at every step",
        build: |cx, a| forward::normal(cx, &a.shape("shape")?, a.float("mean")?, a.float("std")?),
    },
    Builtin {
        name: "grid_graph",
        kind: Kind::Constant,
        params: &[
            p("rows", Ty::Int, Range::Positive, Default::Required),
            p("cols", Ty::Int, Range::Positive, Default::Required),
            p("neighbours", Ty::Int, Range::Positive, Default::Int(4)),
            p("periodic", Ty::Bools, Range::Any, Default::Bool(false)),
        ],
        tensors: &[],
        doc: "the edges i32[E, 2] (source, destination) of a rows×cols grid, nodes row-major, from each node's \
              4 or 8 neighbours; `periodic` wraps rows and columns",
        build: |cx, a| {
            let periodic = spread("periodic", &a.bools("periodic")?, 2)?;
            let (rows, cols) = (a.size("rows")?, a.size("cols")?);
            forward::grid_graph(cx, rows, cols, a.size("neighbours")?, [periodic[0], periodic[1]])
        },
    },
    Builtin {
        name: "knn_graph",
        kind: Kind::Constant,
        params: &[tensor("points"), p("k", Ty::Int, Range::Positive, Default::Required)],
        tensors: &[],
        doc: "the edges i32[N·k, 2] (j, i) from the k nearest other points j of each of the constant points \
              f32[N, D]",
        build: |cx, a| forward::knn_graph(cx, a.tensor("points")?, a.size("k")?),
    },
    // Losses.
    Builtin {
        name: "mse",
        kind: Kind::Loss,
        params: REGRESSION,
        tensors: &[],
        doc: "mean squared error; with `weight`, Σ w·e² / Σ w; `target` may be a number",
        build: |cx, a| {
            let (pred, target) = prediction_and_target(cx, a, "target")?;
            renumbered(a, forward::mse(cx, pred, target, a.opt_tensor("weight")?))
        },
    },
    Builtin {
        name: "mae",
        kind: Kind::Loss,
        params: REGRESSION,
        tensors: &[],
        doc: "mean absolute error; with `weight`, Σ w·|e| / Σ w; `target` may be a number",
        build: |cx, a| {
            let (pred, target) = prediction_and_target(cx, a, "target")?;
            renumbered(a, forward::mae(cx, pred, target, a.opt_tensor("weight")?))
        },
    },
    Builtin {
        name: "bmse",
        kind: Kind::Loss,
        params: BALANCED,
        tensors: &[],
        doc: "balanced MSE (Shi et al. 2017): mean of w(target)·(pred − target)², w = `weights[k]` from \
              `thresholds[k]` up (1 below the first); defaults: rain rates 0.5, 2, 5, 10, 30 mm/h, weights \
              1, 2, 5, 10, 30",
        build: |cx, a| balanced(cx, a, forward::Balanced::Squared),
    },
    Builtin {
        name: "bmae",
        kind: Kind::Loss,
        params: BALANCED,
        tensors: &[],
        doc: "balanced MAE (Shi et al. 2017): mean of w(target)·|pred − target|, weights as `bmse`",
        build: |cx, a| balanced(cx, a, forward::Balanced::Absolute),
    },
    Builtin {
        name: "huber",
        kind: Kind::Loss,
        params: &[
            tensor("pred"),
            tensor_or_number("target"),
            p("delta", Ty::Float, Range::PositiveFloat, Default::Float(1.0)),
            WEIGHT,
        ],
        tensors: &[],
        doc: "mean Huber loss (PyTorch): 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta)",
        build: |cx, a| {
            let (pred, target) = prediction_and_target(cx, a, "target")?;
            renumbered(a, forward::huber(cx, pred, target, a.float("delta")?, a.opt_tensor("weight")?))
        },
    },
    Builtin {
        name: "cross_entropy",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor("labels")],
        tensors: &[],
        doc: "mean softmax cross-entropy, classes on axis 1; labels are i32 class indices or f32 probabilities",
        build: |cx, a| forward::cross_entropy(cx, a.tensor("logits")?, a.tensor("labels")?),
    },
    Builtin {
        name: "bce",
        kind: Kind::Loss,
        params: &[tensor("logits"), tensor_or_number("targets")],
        tensors: &[],
        doc: "mean binary cross-entropy on logits (stable with-logits form); `targets` may be a number",
        build: |cx, a| {
            let logits = a.tensor("logits")?;
            let targets = target_like(cx, a, "targets", logits)?;
            renumbered(a, forward::bce(cx, logits, targets))
        },
    },
    Builtin {
        name: "dice",
        kind: Kind::Loss,
        params: &[tensor("probs"), tensor("targets")],
        tensors: &[],
        doc: "1 − mean over (sample, channel) of the soft Dice coefficient, smoothing 1e-6",
        build: |cx, a| forward::dice(cx, a.tensor("probs")?, a.tensor("targets")?),
    },
    Builtin {
        name: "l1",
        kind: Kind::Loss,
        params: PENALTY,
        tensors: &[],
        doc: "sum of absolute values of a list of tensors, e.g. `l1(weights)`",
        build: |cx, a| forward::penalty(cx, &a.tensors("params")?, Penalty::L1),
    },
    Builtin {
        name: "l2",
        kind: Kind::Loss,
        params: PENALTY,
        tensors: &[],
        doc: "sum of squares of a list of tensors (no ½ factor), e.g. `l2(weights)`",
        build: |cx, a| forward::penalty(cx, &a.tensors("params")?, Penalty::L2),
    },
];

/// The catalogue as Markdown, for the language reference: one section per
/// kind, one entry per built-in with its signature, description and the
/// tensors it creates.
pub fn reference() -> String {
    let mut out = String::new();
    let sections = [
        (Kind::Layer, "Layers"),
        (Kind::Activation, "Activations"),
        (Kind::TensorOp, "Tensor operations"),
        (Kind::Constant, "Constants, random tensors and graphs"),
        (Kind::Loss, "Losses"),
    ];
    for (kind, title) in sections {
        out.push_str(&format!("## {title}\n\n"));
        for b in CATALOGUE.iter().filter(|b| b.kind == kind) {
            out.push_str(&format!("- `{}` — {}\n", b.signature(), b.doc));
            for t in b.tensors {
                out.push_str(&format!("  - `{}`: {}", t.name, t.shape));
                let role = match t.role {
                    Role::Param(r) => format!("{r:?}").to_lowercase(),
                    Role::State => "state".to_string(),
                };
                out.push_str(&format!(", {role}, init {}", t.init.text()));
                if !t.fan_in.is_empty() {
                    out.push_str(&format!(" with fan_in = {}", t.fan_in));
                }
                if let Some(cond) = t.only_if {
                    out.push_str(&format!(" (only with `{cond}`)"));
                }
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

fn act(cx: &mut dyn Cx, a: &Args, activation: Activation) -> Built {
    forward::activation(cx, a.tensor("x")?, activation)
}

/// `rnn`, `lstm` and `gru`: the first of their results (see
/// [`build_results`] for all of them).
fn sequence_layer(cx: &mut dyn Cx, a: &Args, cell: forward::Cell) -> Built {
    let results = sequence_results(cx, a, cell)?;
    results.first().copied().ok_or_else(|| BuildError::new(format!("`{}` made no result", cell.name())))
}

/// `rnn`, `lstm` and `gru`: the arguments they share, and their results.
fn sequence_results(cx: &mut dyn Cx, a: &Args, cell: forward::Cell) -> Result<Vec<ValueId>, BuildError> {
    let returned = a.enum_value("return")?;
    let result = forward::SeqResult::from_name(returned)
        .ok_or_else(|| BuildError::new(format!("`{}` cannot return `{returned}`", cell.name())))?;
    let r = forward::Recurrence {
        hidden: a.size("hidden")?,
        result,
        reverse: a.bool("reverse")?,
        bias: a.bool("bias")?,
    };
    forward::recurrent_results(cx, a.tensor("x")?, &a.states("init")?, cell, r)
}

/// The cell of a sequence layer (`rnn`, `lstm`, `gru`), `None` for any
/// other built-in.
fn sequence_cell(b: &Builtin, a: &Args) -> Option<forward::Cell> {
    match b.name {
        "rnn" => Some(forward::Cell::Rnn { relu: a.enum_value("activation").ok()? == "relu" }),
        "lstm" => Some(forward::Cell::Lstm),
        "gru" => Some(forward::Cell::Gru),
        _ => None,
    }
}

/// Whether a call of `b` with arguments `a` returns a list of tensors
/// (`rnn`, `lstm`, `gru` with `return: states` or `return: all`) rather
/// than one tensor.
pub fn returns_list(b: &Builtin, a: &Args) -> bool {
    sequence_cell(b, a).is_some()
        && a.enum_value("return").ok().and_then(forward::SeqResult::from_name).is_some_and(|r| r.is_list())
}

/// Builds a call of `b`: its results, one tensor unless [`returns_list`].
pub fn build_results(cx: &mut dyn Cx, b: &Builtin, a: &Args) -> Result<Vec<ValueId>, BuildError> {
    match sequence_cell(b, a) {
        Some(cell) => sequence_results(cx, a, cell),
        None => Ok(vec![(b.build)(cx, a)?]),
    }
}

/// The `mask` argument: `none`, `causal`, or a tensor that is the call's
/// tensor operand `operand`.
fn mask(a: &Args, operand: usize) -> Result<forward::Mask, BuildError> {
    Ok(match a.get("mask") {
        Some(Arg::Tensor(t)) => forward::Mask::Tensor { mask: t.id, operand },
        Some(Arg::Enum(e)) if e == "causal" => forward::Mask::Causal,
        Some(Arg::None) => forward::Mask::None,
        _ => return Err(MissingArgument { name: "mask".into() }.into()),
    })
}

/// `convgru` and `trajgru`: the arguments they share.
fn conv_cell(a: &Args) -> Result<forward::ConvCell, BuildError> {
    Ok(forward::ConvCell {
        hidden: a.size("hidden")?,
        kernel: a.size("kernel")?,
        forecast: a.size("forecast")?,
        bias: a.bool("bias")?,
    })
}

/// A [`Ty::TensorOrNumber`] argument as a tensor: a number becomes an f32
/// scalar constant.
fn operand(cx: &mut dyn Cx, a: &Args, name: &str) -> Built {
    match a.operand(name)? {
        Operand::Tensor(t) => Ok(t),
        Operand::Number(x) => Ok(forward::scalar(cx, x)),
    }
}

/// The target of a loss: a tensor, or a number filling the shape of `pred`.
fn target_like(cx: &mut dyn Cx, a: &Args, name: &str, pred: ValueId) -> Built {
    match a.operand(name)? {
        Operand::Tensor(t) => Ok(t),
        Operand::Number(x) => forward::full_like(cx, pred, x),
    }
}

/// `pred` and the target `name` of a regression loss.
fn prediction_and_target(cx: &mut dyn Cx, a: &Args, name: &str) -> Result<(ValueId, ValueId), BuildError> {
    let pred = a.tensor("pred")?;
    Ok((pred, target_like(cx, a, name, pred)?))
}

/// A builder's result with its error's operand renumbered for a call that
/// may have numbers in tensor positions ([`Args::renumber`]).
/// `bmse` and `bmae`: the thresholds and weights given, or the paper's.
fn balanced(cx: &mut dyn Cx, a: &Args, kind: forward::Balanced) -> Built {
    let (pred, target) = prediction_and_target(cx, a, "target")?;
    let thresholds = a.floats("thresholds")?.unwrap_or_else(|| forward::BALANCED_THRESHOLDS.to_vec());
    let weights = a.floats("weights")?.unwrap_or_else(|| forward::BALANCED_WEIGHTS.to_vec());
    renumbered(a, forward::balanced(cx, pred, target, &thresholds, &weights, kind))
}

fn renumbered(a: &Args, built: Built) -> Built {
    built.map_err(|e| a.renumber(e))
}

fn extremum(cx: &mut dyn Cx, a: &Args, op: BinaryOp) -> Built {
    let (x, y) = (operand(cx, a, "a")?, operand(cx, a, "b")?);
    renumbered(a, forward::extremum(cx, op, x, y))
}

fn conv_n(cx: &mut dyn Cx, a: &Args, n: usize) -> Built {
    let x = a.tensor("x")?;
    let (kernel, stride, dilation) =
        (a.spatial("kernel", n)?, a.spatial("stride", n)?, a.spatial("dilation", n)?);
    let (pad, modes) = (a.padding("pad", n)?, a.pad_modes("pad_mode", n)?);
    forward::conv(cx, x, n, a.size("channels")?, &kernel, &stride, &pad, &modes, &dilation, a.bool("bias")?)
}

fn conv1d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 1)
}

fn conv2d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 2)
}

fn conv3d(cx: &mut dyn Cx, a: &Args) -> Built {
    conv_n(cx, a, 3)
}

fn pool(cx: &mut dyn Cx, a: &Args, kind: PoolKind) -> Built {
    let x = a.tensor("x")?;
    let (size, stride, pad) = (a.spatial("size", 2)?, a.spatial("stride", 2)?, a.spatial("pad", 2)?);
    forward::pool(cx, x, kind, &size, &stride, &pad)
}

fn reduce(cx: &mut dyn Cx, a: &Args, kind: Reduction) -> Built {
    let axes = a.ints("axis")?;
    forward::reduce(cx, a.tensor("x")?, kind, axes.as_deref(), a.bool("keepdims")?)
}

/// The number of spatial dimensions of an `[N, C, *S]` tensor (at least 1).
fn spatial_rank(cx: &mut dyn Cx, x: ValueId) -> usize {
    let rank = cx.graph().nodes.get(x.index()).map_or(0, |n| n.ty.shape.rank());
    rank.saturating_sub(2).max(1)
}
