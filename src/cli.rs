//! The command-line interface: commands, arguments and their help text.
//!
//! Declared with clap's derive API so that `--help`, usage errors (exit code
//! 2) and the lists of valid values all come from this one definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use nnc_compiler::Stage;

use crate::snapshot::SnapshotStage;

const TOP_EXAMPLES: &str = "\
Examples:
  nnc check models/*.nn               check programs for errors
  nnc summary models/resunet.nn       layers, shapes, parameters, FLOPs
  nnc ir models/sine.nn --stage forward --mode infer
                                      print the inference graph
  nnc snapshot models/                compare each model's stages with its snapshots
  nnc init models/sine.nn -o params.safetensors
                                      initial parameters (PyTorch defaults)
  nnc grad models/sine.nn --params params.safetensors --data batch.npz -o grads.safetensors
                                      loss and gradients of one batch
  nnc train models/sine.nn            train on the model's data, checkpoint each epoch
  nnc eval models/sine.nn --checkpoint models/sine.safetensors
                                      validation loss and metrics of a checkpoint
  nnc predict models/sine.nn --checkpoint models/sine.safetensors --input x.npy -o y.npy
                                      run the trained model on new inputs
  nnc plot models/sine.run            loss and metric curves of runs (SVG or PNG)
  nnc plot models/fmi_convlstm.run --maps
                                      prediction maps of a validation example
  nnc graph models/resunet.nn -o resunet.svg
                                      a picture of the model's layers (SVG, PNG or DOT)
  nnc datasets                        the real data sets shipped with nnc
  nnc bench models/bench/mlp.nn --threads 2
                                      compile time and training-step speed

Exit status: 0 success, 1 the program has errors, 2 usage or I/O error.";

const CHECK_EXAMPLES: &str = "\
Examples:
  nnc check models/sine.nn
  nnc check models/*.nn --color never

Prints `ok: FILE (model NAME: N parameters)` for each correct file and the
diagnostics of each incorrect one (on stderr), then goes on with the next file.
Exits with 1 if any file has errors.";

const IR_EXAMPLES: &str = "\
Examples:
  nnc ir models/sine.nn --stage ast
  nnc ir models/sine.nn --stage forward
  nnc ir models/digits.nn --stage forward --mode infer
  nnc ir models/sine.nn --stage grad
  nnc ir models/sine.nn --stage opt
  nnc ir models/mnist_cnn.nn --stage fused
  nnc ir models/mnist_cnn.nn --stage plan --batch 32 --threads 2
  nnc ir models/sine.nn --stage clif

Stages:
  ast       the syntax tree as parsed, before any checking
  forward   the forward graph in the IR text format (training mode by
            default: dropout active, batchnorm on batch statistics)
  grad      the training forward graph with its backward pass: outputs
            are the forward outputs and `grad.NAME` for every parameter
  train     the whole training step: forward, backward, gradient
            clipping and the optimiser update of the `train` section
  opt       the training step after the optimisation passes
  fused     the optimised graph partitioned into kernels: each kernel's
            kind, ops, inputs and outputs, and why fusion stopped at each
            kernel boundary
  plan      the kernels in execution order with their parallel split, the
            arena buffer of every stored value (offset, bytes, live range)
            and the peak arena bytes
  clif      the Cranelift IR of every generated kernel (loops, copies,
            window kernels, contraction epilogues), as handed to Cranelift

`--mode` selects the graph of `--stage forward`, `fused`, `plan` and `clif`:
the training step (default) or the inference graph (both optimised for
`fused`, `plan` and `clif`). `--batch` binds every symbolic dimension for
`plan` and `clif` (default: the `train` section's batch, else 1);
`--threads` is the thread count the plan splits kernels for (default 1).";

const BENCH_EXAMPLES: &str = "\
Examples:
  nnc bench models/bench/mlp.nn
  nnc bench models/bench/cnn.nn --threads 1 --steps 50 --json
  nnc bench models/bench/unet.nn --profile

Compiles the training step (forward, backward, optimiser update) and runs it
on synthetic data drawn from a fixed seed: data and float targets standard
normal, class labels uniform. Reports the compile time (parse to runnable),
the median step time over `--steps` timed steps after `--warmup` untimed
ones, samples per second (batch / median step time) and the memory plan's
peak arena bytes. `--profile` adds the time spent in each kernel.

With `--json` prints one JSON object with the keys compile_ms, step_ms,
step_ms_min, step_ms_p90, samples_per_s, peak_bytes, threads, batch, steps,
warmup, kernels, final_loss, model and file (and profile with `--profile`).";

const TRAIN_EXAMPLES: &str = "\
Examples:
  nnc train models/sine.nn
  nnc train models/digits.nn --threads 2 --epochs 5
  nnc train models/digits.nn --resume models/digits.safetensors
  nnc train models/resunet.nn --quiet --checkpoint eddies.safetensors --run-dir runs/eddies

Trains the model as its `train` section says: loads the data (checked
against the model's input and target declarations), splits it into training
and validation examples, normalises with training statistics only, and runs
`epochs` passes of shuffled mini-batches (the last partial batch included).
A progress bar (on a terminal) shows epoch, step, loss, samples/s and ETA;
one line per epoch gives the training and validation loss and the metrics in
physical units.

After every epoch the checkpoint (default: next to the model, FILE with the
extension .safetensors) is replaced atomically: parameters in PyTorch's
names and layouts, optimiser state, normalisation statistics, epoch, step and
a hash of the model source. `--resume CKPT` continues a run so that it ends
bit-identical to one that was never interrupted (same thread count). The
run directory (default: FILE with the extension .run) receives `log.jsonl`,
one JSON object per epoch, which `nnc plot` draws.

A loss that becomes NaN or infinite stops the run with an error naming the
step; the last checkpoint is kept as it was.";

const EVAL_EXAMPLES: &str = "\
Examples:
  nnc eval models/digits.nn --checkpoint models/digits.safetensors
  nnc eval models/sine.nn --checkpoint models/sine.safetensors --subset all
  nnc eval models/sine.nn --checkpoint models/sine.safetensors --data test.npz

Loads the model's data as `nnc train` does, normalises it with the
checkpoint's statistics, and prints the loss and the `metrics` of the
`train` section (in physical units) on the validation examples, the training
examples or all of them. With `--data`, scores every example of an .npz
archive whose arrays are named like the model's input and target
(`np.savez(\"test.npz\", x=x, y=y)`), checked like any data source.";

const PREDICT_EXAMPLES: &str = "\
Examples:
  nnc predict models/sine.nn --checkpoint models/sine.safetensors --input x.npy -o y.npy
  nnc predict models/cgan_mnist.nn --checkpoint models/cgan_mnist.safetensors --input digits.npy \\
      --seed 7 -o generated.npz
  nnc eval models/mnist_cnn.nn --checkpoint models/mnist_cnn.safetensors \\
      --source 'npz(\"generated.npz\", x: \"image\", y: \"y\")' --subset all

Reads an .npy array whose first axis counts examples and whose other axes
hold the model's input (any float or integer dtype; the values must hold
the input's per-example size), applies the checkpoint's normalisation, runs
the inference graph (dropout off, batchnorm on running statistics) and
writes the prediction, mapped back to physical units, as f32 .npy.

Only the inputs the prediction reads are needed: a GAN's generated output
reads its noise, drawn from --seed, and (for a conditional GAN) the
requested classes, not the real images. An i32 input (class labels) takes
whole numbers. When the prediction reads several inputs, --input is an .npz
archive with an array named like each. -o FILE.npz writes an archive with
the prediction, named like the model's output, and the inputs it read, so
that `nnc eval --source 'npz(...)'` can score it with another model.";

const EXPORT_EXAMPLES: &str = "\
Examples:
  nnc export models/sine.nn --checkpoint models/sine.safetensors -o sine.onnx

Writes the inference graph that `nnc predict` runs (dropout off, batchnorm
on running statistics) as an ONNX model (opset 18) with the checkpoint's
parameters as initializers. The checkpoint's normalisation is part of the
model: it takes its inputs and returns its prediction in physical units,
and its batch dimension is free. A model with an op that ONNX cannot
express (a random draw at inference, a periodic warp) is refused with an
error pointing at the op's source.";

const PLOT_EXAMPLES: &str = "\
Examples:
  nnc plot models/sine.run
  nnc plot runs/eddies -o eddies.png
  nnc plot runs/lr1e-3.run runs/lr3e-3.run -o compare.svg
  nnc plot models/fmi_convlstm.run --maps --example 3 -o maps.png
  nnc plot models/storm_resnet.run --maps --variable t
  nnc plot models/sine.run --scatter -o scatter.png

Draws the training and validation loss and every validation metric of a run
directory's log.jsonl against the epoch; several runs are overlaid, one
colour per run. SVG, or PNG drawn with a built-in font.

--maps and --scatter run the run's checkpoint on the validation examples
(the model and checkpoint come from the run directory's run.json, which
`nnc train` writes; else MODEL.nn and MODEL.safetensors beside MODEL.run),
with the data loaded and normalised as `nnc eval` does and the predictions
in physical units as `nnc predict` writes them.

--maps: one validation example of a gridded model (prediction [C, H, W],
or [T, C, H, W] for a sequence: one row per lead time): the input's last
frame, the target, the prediction and the error, each with a colour bar;
viridis for values, a diverging map centred on zero for errors and
increments, missing values grey, latitude and longitude on the axes when
the data carry them (dataset(\"fmi_radar\"), the maps of era5_members).
Default output RUN_DIR/maps.svg.

--scatter: predicted against observed for every validation value, one panel
per output variable, with the 1:1 line, the reliability curve (mean
observed in ten bins of predicted value) and the RMSE and bias. Default
output RUN_DIR/scatter.svg.";

const GRAPH_EXAMPLES: &str = "\
Examples:
  nnc graph models/resunet.nn -o resunet.svg
  nnc graph models/resunet.nn --stage grad -o resunet-grad.svg
  nnc graph models/nino12_lstm.nn --stage fused -o lstm-kernels.png
  nnc graph models/nino12_lstm.nn --stage fused --by-layer -o lstm-kernels-by-layer.svg
  nnc graph models/sine.nn > sine.dot
  nnc graph models/sine.nn --layout dot -o sine.svg

Draws the model's graph at one stage: `forward` (default) has one box per
layer call (`conv2d 3×3 → [B, 16, 32, 32]`, its name and parameter count)
and per expression (`h + x`), `grad` adds one `∇` box per forward box with
the backward pass of its ops, and `fused` has one box per kernel of the
optimised training step, named after the layers its ops come from
(`--by-layer`: one box per layer, its kernels listed in its tooltip).
Parameters and optimiser state are not boxes: hovering over a box lists
what it reads and writes, with the `.nn` source lines it came from
(`file:line: text`). Inputs and targets are green, the loss and outputs red;
arrows that skip rows of the forward pass (residual adds, U-Net
concatenations) are orange, values saved for the backward pass dashed.

The extension of -o chooses the format: .svg, .png (drawn with the built-in
font) or .dot (Graphviz DOT text, with the same labels and tooltips);
without -o, or with `-o -`, the DOT text goes to stdout. The layout is
nnc's own layered layout and needs no other program; `--layout dot` has
Graphviz's `dot` (on PATH) lay out and draw .svg and .png instead.";

const INIT_EXAMPLES: &str = "\
Examples:
  nnc init models/sine.nn -o params.safetensors
  nnc init models/resunet.nn --seed 7 -o resunet-init.safetensors

Writes the initial value of every parameter and state tensor (batchnorm
running statistics) to a safetensors file, named and laid out as in PyTorch
(`h.dense_1.weight` is [out, in]) and initialised with PyTorch's defaults.
The values depend only on the seed and each tensor's name. The seed defaults
to the `seed` of the model's `train` section, else 0.

In Python: `safetensors.torch.load_file(\"params.safetensors\")`.";

const GRAD_EXAMPLES: &str = "\
Examples:
  nnc grad models/sine.nn --params params.safetensors --data batch.npz -o grads.safetensors

Runs the training forward pass and the backward pass on one batch with the
reference interpreter, prints `loss = VALUE` and writes d loss / d param for
every parameter, stored under the parameter's own name (like PyTorch's
`param.grad`).

The batch is an .npz archive (`np.savez(\"batch.npz\", x=x, y=y)`) with one
array per model input and target, named like them, of the declared shapes;
symbolic sizes such as `B` must agree across arrays. Float arrays are read as
f32, integer and boolean arrays as i32. State tensors missing from the
parameter file start from their initial values. The random-number key
(dropout) is [seed, 0]; the seed defaults to the `train` section's, else 0.";

const SUMMARY_EXAMPLES: &str = "\
Examples:
  nnc summary models/resunet.nn

One row per layer call site: its stable name, the built-in, the output shape
(`B` is the batch size), trainable parameters and forward FLOPs per sample.
Then the totals and the parameter memory in f32.";

const SNAPSHOT_EXAMPLES: &str = "\
Examples:
  nnc snapshot models/storm_unet.nn
  nnc snapshot models/ --stage summary,fused
  nnc snapshot --accept
  CI=true nnc snapshot models/

For each model file (a directory stands for the .nn files directly in it;
default: the current directory), renders each stage — the table of `nnc
summary`, or the text of `nnc ir --stage NAME` with its defaults — and
compares it with its snapshot beside the model, DIR/snapshots/NAME@STAGE.snap
(insta's .snap format, so `cargo insta review` works on them). Trailing
whitespace and the header do not count.

  unchanged  the text equals the snapshot (a stale NAME@STAGE.snap.new is
             removed)
  created    there was no snapshot: it is written
  changed    the text differs: a unified diff is printed (line numbers of
             the .snap and .snap.new files) and the new text is written to
             NAME@STAGE.snap.new
  missing    there was no snapshot and the environment variable CI is set
             (as insta decides: not empty, 0 or false): nothing is created,
             the text is written to NAME@STAGE.snap.new

  updated    with --accept, the text differed: the snapshot is rewritten

--accept writes every differing or missing snapshot and removes the
.snap.new files; `cargo insta review` (add `--workspace-root .` outside a
Cargo project) accepts or rejects them one by one. Snapshot files are
replaced atomically. Diffs are coloured on a terminal (see --color). The
last line counts the models and stages by outcome.

Exit status: 0 every stage unchanged, created or accepted; 1 a stage
changed or is missing, or a model has errors; 2 usage or I/O error.";

/// nnc: compile and train neural networks described in `.nn` files.
#[derive(Debug, Parser)]
#[command(name = "nnc", version, arg_required_else_help = true, after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour diagnostics: `auto` colours them when stderr is a
    /// terminal and the NO_COLOR environment variable is not set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check `.nn` files for syntax, name, argument and shape errors.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Print an intermediate stage of the compiler (syntax tree or IR).
    #[command(after_help = IR_EXAMPLES)]
    Ir(IrArgs),
    /// Print a table of the model's layers, shapes, parameters and FLOPs.
    #[command(after_help = SUMMARY_EXAMPLES)]
    Summary(SummaryArgs),
    /// Compare stages of models (summary, IR, fusion) with their stored
    /// snapshots.
    #[command(after_help = SNAPSHOT_EXAMPLES)]
    Snapshot(SnapshotArgs),
    /// Write initial parameters (PyTorch's defaults) to a safetensors file.
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Compute the loss and the gradients of one batch.
    #[command(after_help = GRAD_EXAMPLES)]
    Grad(GradArgs),
    /// Time the compiled training step on synthetic data.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Train a model as its `train` section says.
    #[command(after_help = TRAIN_EXAMPLES)]
    Train(TrainArgs),
    /// Loss and metrics of a checkpoint on the model's data.
    #[command(after_help = EVAL_EXAMPLES)]
    Eval(EvalArgs),
    /// Run a trained model on the inputs of an .npy file.
    #[command(after_help = PREDICT_EXAMPLES)]
    Predict(PredictArgs),
    /// Write a trained model as an ONNX file (inputs and prediction in
    /// physical units, like `predict`).
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Draw the loss and metric curves of training runs, or a run's
    /// prediction maps or scatter plot.
    #[command(after_help = PLOT_EXAMPLES)]
    Plot(PlotArgs),
    /// Draw the model's graph (forward, gradient or fused kernels) as SVG,
    /// PNG or DOT.
    #[command(after_help = GRAPH_EXAMPLES)]
    Graph(GraphArgs),
    /// List the real data sets shipped with nnc: shapes, units, tasks and
    /// provenance.
    Datasets,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The `.nn` file to train.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Threads, the calling one included (default: all cores). Results are
    /// bit-identical for a given count.
    #[arg(long, value_name = "T", value_parser = thread_count)]
    pub threads: Option<u64>,

    /// Train for this many epochs instead of the `train` section's.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub epochs: Option<u64>,

    /// Where to write the checkpoint (default: the `train` section's
    /// `checkpoint`, else FILE with the extension .safetensors).
    #[arg(long, value_name = "CKPT.safetensors")]
    pub checkpoint: Option<PathBuf>,

    /// The run directory for log.jsonl (default: FILE with the extension .run).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,

    /// Continue the run saved in this checkpoint.
    #[arg(long, value_name = "CKPT.safetensors")]
    pub resume: Option<PathBuf>,

    /// With --resume: go on although the model, a `train` key that the
    /// optimiser step depends on (data, split, normalize, batch, seed,
    /// optimizer, schedule, clip_grad_norm) or a constant changed since the
    /// checkpoint.
    #[arg(long, requires = "resume")]
    pub allow_changes: bool,

    /// Print only errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Generated code bounds-checks every memory access (slower).
    #[arg(long)]
    pub checked: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The `.nn` file the checkpoint was trained from.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The checkpoint written by `nnc train`.
    #[arg(long, value_name = "CKPT.safetensors")]
    pub checkpoint: PathBuf,

    /// Which examples to score.
    #[arg(long, value_enum, default_value_t = SubsetArg::Validation)]
    pub subset: SubsetArg,

    /// Score every example of this .npz archive instead (arrays named like
    /// the model's input and target).
    #[arg(long, value_name = "DATA.npz", conflicts_with_all = ["subset", "source"])]
    pub data: Option<PathBuf>,

    /// Score another data source, written as in a train section
    /// (`'window(dataset("fmi_radar"), in: 4, out: 4, tile: 32)'`); with
    /// `--subset` (default `validation`) of its own split. Paths are relative
    /// to the working directory.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,

    /// Also score a baseline on the same examples: `persistence` (the input
    /// for a next-step target, the last input frame at every lead of a
    /// sequence).
    #[arg(long, value_enum)]
    pub baseline: Option<BaselineArg>,

    /// Threads (default: all cores).
    #[arg(long, value_name = "T", value_parser = thread_count)]
    pub threads: Option<u64>,

    /// Go on although a constant of the model changed since the checkpoint
    /// was trained.
    #[arg(long)]
    pub allow_changes: bool,
}

/// What `nnc eval --baseline` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BaselineArg {
    /// The last known state.
    Persistence,
}

/// The examples `nnc eval` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SubsetArg {
    /// The validation examples of the `split`.
    Validation,
    /// The training examples.
    Training,
    /// Every example.
    All,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The `.nn` file the checkpoint was trained from.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The checkpoint written by `nnc train` (or `nnc init`).
    #[arg(long, value_name = "CKPT.safetensors")]
    pub checkpoint: PathBuf,

    /// Where to write the ONNX model.
    #[arg(short, long, value_name = "MODEL.onnx")]
    pub output: PathBuf,

    /// Go on although a constant of the model changed since the checkpoint
    /// was trained.
    #[arg(long)]
    pub allow_changes: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The `.nn` file the checkpoint was trained from.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The checkpoint written by `nnc train`.
    #[arg(long, value_name = "CKPT.safetensors")]
    pub checkpoint: PathBuf,

    /// The inputs in physical units, first axis = examples: an .npy array,
    /// or an .npz archive with an array named like each input the
    /// prediction reads (class labels of an i32 input as whole numbers).
    /// Needed unless the prediction reads no input (then: --count).
    #[arg(long, value_name = "X.npy|X.npz")]
    pub input: Option<PathBuf>,

    /// How many examples to draw, for a model whose prediction reads no
    /// input (the generator of a GAN, which reads only its noise).
    #[arg(long, value_name = "N", conflicts_with = "input")]
    pub count: Option<usize>,

    /// Where to write the predictions: .npy (f32, any shape), .npz (the
    /// prediction named like the model's output, with the inputs it read)
    /// or .csv (a header row, then one row per example).
    #[arg(short, long, value_name = "Y.npy|Y.npz|Y.csv")]
    pub output: PathBuf,

    /// Threads (default: all cores).
    #[arg(long, value_name = "T", value_parser = thread_count)]
    pub threads: Option<u64>,

    /// The seed of the model's random draws (`normal(...)`): batch k of the
    /// input draws from the key [seed, k] (default: the `train` section's
    /// seed, else 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Go on although a constant of the model changed since the checkpoint
    /// was trained.
    #[arg(long)]
    pub allow_changes: bool,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The run directories (each holding log.jsonl); several are overlaid.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    pub run_dirs: Vec<PathBuf>,

    /// Where to write the figure, .svg or .png (default: RUN_DIR/curves.svg
    /// for one run, compare.svg for several; RUN_DIR/maps.svg with --maps,
    /// RUN_DIR/scatter.svg with --scatter).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Maps of one validation example of a gridded model: input, target,
    /// prediction and error in physical units.
    #[arg(long, conflicts_with = "scatter")]
    pub maps: bool,

    /// Predicted against observed for every validation value, per output
    /// variable, with the 1:1 line, the reliability curve, RMSE and bias.
    #[arg(long)]
    pub scatter: bool,

    /// With --maps: which validation example, counted from 0.
    #[arg(long, value_name = "N", requires = "maps")]
    pub example: Option<usize>,

    /// With --maps or --scatter: only this output variable (by name).
    #[arg(long, value_name = "NAME")]
    pub variable: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The `.nn` file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The batch size (default: the `train` section's batch, else 1).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub batch: Option<u64>,

    /// Threads, the calling one included (default: all cores).
    #[arg(long, value_name = "T", value_parser = thread_count)]
    pub threads: Option<u64>,

    /// Timed steps.
    #[arg(long, value_name = "S", default_value_t = 20, value_parser = at_least_one)]
    pub steps: u64,

    /// Untimed steps before the timed ones.
    #[arg(long, value_name = "W", default_value_t = 3)]
    pub warmup: u64,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,

    /// Also report the time spent in each kernel.
    #[arg(long)]
    pub profile: bool,

    /// Generated code bounds-checks every memory access (slower).
    #[arg(long)]
    pub checked: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The `.nn` files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IrArgs {
    /// The `.nn` file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Which stage to print.
    #[arg(long, value_parser = stage_parser(), default_value = "forward")]
    pub stage: Stage,

    /// Which graph to print (`--stage forward`, `fused` and `plan`):
    /// training (dropout active, batchnorm on batch statistics; the
    /// default) or inference.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// The batch size bound to symbolic dimensions (`--stage plan` and
    /// `clif`; default: the `train` section's batch, else 1).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub batch: Option<u64>,

    /// The number of threads kernels are split for (`--stage plan` and
    /// `clif`; default 1).
    #[arg(long, value_name = "T", value_parser = thread_count)]
    pub threads: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The `.nn` file to draw.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Which graph to draw.
    #[arg(long, value_enum, default_value_t = GraphStage::Forward)]
    pub stage: GraphStage,

    /// Where to write the picture: .svg, .png or .dot (default, and `-`:
    /// DOT text on stdout).
    #[arg(short, long, value_name = "FILE.svg|FILE.png|FILE.dot")]
    pub output: Option<PathBuf>,

    /// The graph of `--stage forward` and `fused`: training (dropout
    /// active, batchnorm on batch statistics; the default) or inference.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// With `--stage fused`: one box per layer, expression, backward pass
    /// or update, holding the kernels that mostly compute it (listed in its
    /// tooltip), instead of one box per kernel.
    #[arg(long)]
    pub by_layer: bool,

    /// Who lays out .svg and .png output.
    #[arg(long, value_enum, default_value_t = GraphLayout::Builtin)]
    pub layout: GraphLayout,
}

/// The stages `nnc graph` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphStage {
    /// The forward graph: one box per layer call and expression.
    Forward,
    /// The forward graph and its backward pass (one `∇` box per forward box).
    Grad,
    /// The kernels of the optimised training step (or inference graph).
    Fused,
}

/// Who lays out the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphLayout {
    /// nnc's own layered layout (no other program needed).
    Builtin,
    /// Graphviz's `dot`, which must be on PATH.
    Dot,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The `.nn` file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The random seed (default: the `train` section's seed, else 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Where to write the parameters (safetensors).
    #[arg(short, long, value_name = "PARAMS.safetensors")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct GradArgs {
    /// The `.nn` file to compile.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The parameters (safetensors, e.g. from `nnc init`).
    #[arg(long, value_name = "PARAMS.safetensors")]
    pub params: PathBuf,

    /// The batch: an .npz archive with one array per input and target.
    #[arg(long, value_name = "BATCH.npz")]
    pub data: PathBuf,

    /// Where to write the gradients (safetensors).
    #[arg(short, long, value_name = "GRADS.safetensors")]
    pub output: PathBuf,

    /// The random seed: the dropout key is [seed, 0] and missing state
    /// tensors start from their initial values under it (default: the
    /// `train` section's seed, else 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The `.nn` file to summarise.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The `.nn` files, or directories of them (default: the current
    /// directory).
    #[arg(value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,

    /// The stages to compare, separated by commas.
    #[arg(
        long = "stage",
        value_name = "STAGE,...",
        value_delimiter = ',',
        value_parser = snapshot_stage_parser(),
        default_value = "summary,forward,opt,fused"
    )]
    pub stages: Vec<SnapshotStage>,

    /// Write every differing or missing snapshot and remove `.snap.new`
    /// files.
    #[arg(long)]
    pub accept: bool,
}

/// `nnc snapshot --stage`: `summary` and the names of the compiler's
/// stages, with their help.
fn snapshot_stage_parser() -> impl clap::builder::TypedValueParser<Value = SnapshotStage> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        SnapshotStage::all().into_iter().map(|s| PossibleValue::new(s.name()).help(s.about())),
    )
    .map(|name| SnapshotStage::from_name(&name).unwrap_or(SnapshotStage::Summary))
}

/// `--stage`: the names of the compiler's stages, with their help.
fn stage_parser() -> impl clap::builder::TypedValueParser<Value = Stage> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Stage::ALL.map(|s| PossibleValue::new(s.name()).help(s.about())))
        .map(|name| Stage::from_name(&name).unwrap_or(Stage::Forward))
}

/// Training or inference forward graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Training mode: dropout active, batchnorm on batch statistics.
    Train,
    /// Inference mode: no dropout, batchnorm on running statistics.
    Infer,
}

/// Whether diagnostics are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// A count of at least 1 (`--epochs`, `--batch`, `--steps`).
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number (at least 1 is needed)")),
    }
}

/// A thread count, 1 to 1024.
fn thread_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n @ 1..=1024) => Ok(n),
        Ok(n) => Err(format!("{n} threads: give 1 to 1024")),
        Err(_) => Err(format!("`{text}` is not a whole number of threads (1 to 1024)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
