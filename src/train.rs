//! `nnc train`, `nnc eval` and `nnc predict`: the command-line side of the
//! runtime's training loop (`nnc_runtime::train`).
//!
//! Progress goes to a progress bar on stderr when stderr is a terminal (and
//! not `--quiet`); the per-epoch summary lines and the final report go to
//! stdout, so they can be logged or piped.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;
use nnc_compiler::codegen::Checking;
use nnc_runtime::train::{
    self, plural, Baseline, EpochRecord, EvalOptions, LossRecord, Observer, PredictOptions, RunInfo, Subset,
};

use crate::cli::{BaselineArg, EvalArgs, PlotArgs, PredictArgs, SubsetArg, TrainArgs};
use crate::commands::{load, load_source, Status};
use crate::summary::format_count;

fn threads_of(t: Option<u64>) -> usize {
    t.map_or_else(nnc_runtime::exec::pool::available_threads, |t| t as usize)
}

fn fail(err: &mut dyn Write, message: &str) -> Status {
    let _ = writeln!(err, "error: {message}");
    Status::Usage
}

/// The error of a failed `train` or `eval`. An error of the data is rendered
/// like a compiler diagnostic on the model file `file`: it points at the
/// declaration of the input or target it concerns and at the `data = ...`
/// entry (when the data came from there, `from_data_entry`), with the fix
/// the error suggests. Any other error is one line.
fn fail_run(
    err: &mut dyn Write,
    error: &train::RunError,
    (module, source): (&nnc_compiler::Module, &str),
    file: &Path,
    from_data_entry: bool,
    color: bool,
) -> Status {
    let Some(data) = &error.data else {
        return fail(err, &error.message);
    };
    let d = data_diagnostic(data, module, from_data_entry);
    let rendered = nnc_compiler::diag::render(&file.display().to_string(), source, &[d], color);
    let _ = write!(err, "{rendered}");
    Status::Usage
}

/// The diagnostic of a data error for the model `module` compiled from `source`.
fn data_diagnostic(
    error: &nnc_runtime::data::LoadError,
    module: &nnc_compiler::Module,
    from_data_entry: bool,
) -> nnc_compiler::diag::Diagnostic {
    use nnc_compiler::diag::Diagnostic;
    use nnc_compiler::ir::{InputKind, Op};
    let mut d = Diagnostic::error(error.to_string());
    // The declaration `input NAME: TYPE` or `target NAME: TYPE`.
    let declaration = error.binding.as_deref().and_then(|name| {
        module.train_graph.inputs().find_map(|(_, node)| match &node.op {
            Op::Input { name: n, kind: kind @ (InputKind::Data | InputKind::Target) } if n == name => {
                let what = if *kind == InputKind::Data { "input" } else { "target" };
                Some((node.span?, format!("{what} `{name}` is declared here")))
            }
            _ => None,
        })
    });
    let entry = module.train.as_ref().map(|t| t.data_span).filter(|s| from_data_entry && s.hi > s.lo);
    match (declaration, entry) {
        (Some((span, label)), Some(entry)) => {
            d = d.primary(span, label).secondary(entry, "the data come from here");
        }
        (Some((span, label)), None) => d = d.primary(span, label),
        (None, Some(entry)) => d = d.primary(entry, "while loading this data source"),
        (None, None) => {}
    }
    if let Some(help) = &error.help {
        d = d.note(format!("help: {help}"));
    }
    d
}

/// A number with four significant digits, in plain or scientific notation.
fn short(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        let digits = if a >= 1.0 { 3usize.saturating_sub(a.log10().floor() as usize) } else { 4 };
        format!("{v:.digits$}")
    }
}

/// Prints the run's progress: one line per epoch on `out`, and on a terminal
/// one progress bar on stderr for the whole run.
///
/// The bar counts every step of the run that is left (so its ETA is the
/// run's, not the epoch's) and is drawn by indicatif's ticker thread. That
/// thread takes the stderr lock to draw, so no writer of this process may
/// hold stderr locked while the run trains (`src/main.rs` passes unlocked
/// handles); the epoch lines are printed with the bar suspended, so the two
/// never interleave.
struct Reporter<'a> {
    out: &'a mut dyn Write,
    /// Where warnings go.
    err: &'a mut dyn Write,
    quiet: bool,
    /// Draw a bar (stderr is a terminal and not `--quiet`).
    show_bar: bool,
    batch: usize,
    /// The names of the losses (several when the model has several).
    losses: Vec<String>,
    bar: Option<RunBar>,
}

/// The bar of a run and where the run stood when it was created.
struct RunBar {
    bar: ProgressBar,
    /// The first epoch the bar counts (1-based).
    first_epoch: usize,
    /// The epoch in progress and its number of steps.
    epoch: usize,
    steps: usize,
}

impl Reporter<'_> {
    fn print(&mut self, line: &str) {
        let out = &mut *self.out;
        match &self.bar {
            Some(b) => b.bar.suspend(|| {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }),
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.bar.finish_and_clear();
        }
    }
}

/// The bar's style: epoch, bar over the run, step of the epoch and running
/// loss (the message), samples per second as in the epoch lines, ETA of the
/// run.
fn bar_style(batch: usize) -> ProgressStyle {
    let rate = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let per_s = state.per_sec() * batch as f64;
        let _ = if per_s.is_finite() && per_s > 0.0 {
            write!(w, "{} samples/s", format_count(per_s.round() as u64))
        } else {
            write!(w, "- samples/s")
        };
    };
    ProgressStyle::with_template("{prefix} [{bar:30.cyan/blue}] {msg}  {rate}  ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate)
        .progress_chars("=> ")
}

impl Observer for Reporter<'_> {
    fn start(&mut self, info: &RunInfo) {
        self.batch = info.batch;
        self.losses = info.losses.clone();
        if self.quiet {
            return;
        }
        let dropped = if info.dropped > 0 {
            format!(", {} examples with missing values dropped", info.dropped)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "model {}: {} training / {} validation examples from {}{dropped}",
            info.model, info.n_train, info.n_val, info.origin
        );
        let norm = if info.normalized.is_empty() {
            String::new()
        } else {
            format!(", normalised: {}", info.normalized.join(", "))
        };
        let resumed = if info.first_epoch > 0 {
            format!(", resuming after epoch {}", info.first_epoch)
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{} of {} (batch {}), {}, compiled in {:.0} ms{norm}{resumed}",
            plural(info.epochs, "epoch"),
            plural(info.steps_per_epoch, "step"),
            info.batch,
            plural(info.threads, "thread"),
            info.compile_ms
        );
        let _ = self.out.flush();
        for warning in &info.warnings {
            let _ = writeln!(self.err, "warning: {warning}");
        }
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        if !self.show_bar {
            return;
        }
        let run = self.bar.get_or_insert_with(|| {
            let total = (epochs + 1).saturating_sub(epoch) * steps;
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(bar_style(self.batch));
            bar.enable_steady_tick(Duration::from_millis(200));
            RunBar { bar, first_epoch: epoch, epoch, steps }
        });
        run.epoch = epoch;
        run.steps = steps;
        run.bar.set_prefix(format!("epoch {epoch:>w$}/{epochs}", w = digits(epochs)));
        run.bar.set_position(((epoch - run.first_epoch) * steps) as u64);
        run.bar.set_message(format!("{:>w$}/{steps}", 0, w = digits(steps)));
    }

    fn step(&mut self, done: usize, losses: &[f64]) {
        if let Some(run) = &self.bar {
            let steps = run.steps;
            run.bar.set_position(((run.epoch - run.first_epoch) * steps + done) as u64);
            let values: Vec<(&str, f64)> =
                self.losses.iter().map(String::as_str).zip(losses.iter().copied()).collect();
            let text = match values.as_slice() {
                [(_, loss)] => format!("loss {}", short(*loss)),
                _ => values
                    .iter()
                    .map(|(name, v)| format!("{name} {}", short(*v)))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            run.bar.set_message(format!("{done:>w$}/{steps}  {text}", w = digits(steps)));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if self.quiet {
            return;
        }
        let mut line = format!("epoch {:>w$}/{}", r.epoch, r.epochs, w = digits(r.epochs));
        // A model with several losses prints each: `train_loss disc 0.69 gen 0.71`.
        let several = r.losses.len() > 1;
        let each = |value: fn(&LossRecord) -> Option<f64>| -> String {
            r.losses.iter().filter_map(|l| value(l).map(|v| format!(" {} {}", l.name, short(v)))).collect()
        };
        if several {
            line += &format!("  train_loss{}", each(|l| Some(l.train)));
        } else {
            line += &format!("  train_loss {}", short(r.train_loss));
        }
        if let Some(v) = r.val_loss {
            if several {
                line += &format!("  val_loss{}", each(|l| l.val));
            } else {
                line += &format!("  val_loss {}", short(v));
            }
        }
        // Per-lead values stay in the log (`log.jsonl`, `nnc plot`, `nnc
        // eval`): the line shows each metric over all leads.
        for (label, v) in r.metrics.iter().filter(|(label, _)| !label.contains(".lead")) {
            line += &format!("  {label} {}", short(*v));
        }
        let time = if r.seconds < 1.0 {
            format!("{:.0} ms", r.seconds * 1e3)
        } else {
            format!("{:.1} s", r.seconds)
        };
        let lr = if r.losses.iter().all(|l| l.lr == r.lr) {
            short(r.lr)
        } else {
            each(|l| Some(l.lr)).trim_start().to_string()
        };
        let reduce = r.reduce_share.map_or(String::new(), |s| format!(", allreduce {:.0} %", 100.0 * s));
        line += &format!(
            "  lr {lr}  {time}  {} samples/s (step {} samples/s, loader {:.0} %{reduce})",
            format_count(r.samples_per_s.round() as u64),
            format_count(r.step_samples_per_s.round() as u64),
            100.0 * r.loader_share
        );
        if r.best {
            line += "  *";
        }
        self.print(&line);
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// The ranks of a data-parallel run launched by `mpirun`.
mod ranks {
    use nnc_runtime::train::collective::Ranks;

    /// Environment variables by which MPI launchers tell a process how many
    /// processes they started (Open MPI, PMIx, MPICH/Hydra and Slurm).
    const SIZE_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "SLURM_NTASKS"];

    /// How many processes a launcher started, if one did.
    fn launched() -> Option<usize> {
        SIZE_VARIABLES.iter().find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
    }

    /// The MPI processes of this run.
    pub struct Launched {
        #[cfg(feature = "mpi")]
        mpi: std::sync::Arc<nnc_runtime::train::collective::mpi::Mpi>,
    }

    impl Launched {
        pub fn ranks(&self) -> Ranks {
            #[cfg(feature = "mpi")]
            return Ranks(self.mpi.clone());
            #[cfg(not(feature = "mpi"))]
            unreachable!("without the `mpi` feature no run is launched on several ranks")
        }

        /// Ends every rank with `code`.
        pub fn abort(&self, code: i32) -> ! {
            #[cfg(feature = "mpi")]
            self.mpi.abort(code);
            #[cfg(not(feature = "mpi"))]
            std::process::exit(code)
        }
    }

    /// The ranks when `mpirun` (or another MPI launcher) started this
    /// process among several, `None` for a single process; an error when
    /// it did and this nnc cannot take part.
    pub fn of_launcher() -> Result<Option<Launched>, String> {
        let size = launched().unwrap_or(1);
        #[cfg(feature = "mpi")]
        {
            if size <= 1 {
                return Ok(None);
            }
            let mpi = nnc_runtime::train::collective::mpi::Mpi::init()
                .ok_or("MPI was initialised before training started")?;
            Ok(Some(Launched { mpi: std::sync::Arc::new(mpi) }))
        }
        #[cfg(not(feature = "mpi"))]
        {
            if size > 1 {
                return Err(format!(
                    "started as one of {size} MPI processes, but this nnc was built without the cargo feature `mpi`: \
                     each process would train the whole model alone; build it with `cargo build --release \
                     --features mpi` (needs an MPI library such as Open MPI, and libclang)"
                ));
            }
            Ok(None)
        }
    }
}

/// `nnc train FILE`.
pub fn run_train(args: &TrainArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let (module, source) = match load_source(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let Some(config) = &module.train else {
        return fail(
            err,
            &format!("{}: the model has no `train` section to train with", args.file.display()),
        );
    };
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| match &config.checkpoint {
        Some(p) => args.file.parent().unwrap_or(Path::new(".")).join(p),
        None => train::default_checkpoint(&args.file),
    });
    let ranks = match ranks::of_launcher() {
        Ok(r) => r,
        Err(message) => return fail(err, &message),
    };
    let options = train::Options {
        threads: threads_of(args.threads),
        epochs: args.epochs.map(|e| e as usize),
        checkpoint,
        run_dir: args.run_dir.clone().unwrap_or_else(|| train::default_run_dir(&args.file)),
        resume: args.resume.clone(),
        allow_changes: args.allow_changes,
        checking: if args.checked { Checking::Checked } else { Checking::Unchecked },
        ranks: ranks.as_ref().map(|r| r.ranks()),
    };
    // Rank 0 alone reports; the others say nothing unless they fail.
    let rank = ranks.as_ref().map_or(0, |r| r.ranks().0.rank());
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if rank == 0 { out } else { &mut sink };
    let quiet = args.quiet || rank != 0;
    if let (Some(r), false) = (&ranks, quiet) {
        let size = r.ranks().0.size();
        let _ =
            writeln!(out, "data-parallel over {size} MPI ranks; rank 0 writes the checkpoint and the log");
    }
    let show_bar = !quiet && std::io::stderr().is_terminal();
    let mut reporter = Reporter { out, err, quiet, show_bar, batch: 1, losses: vec![], bar: None };
    let result = train::train(&module, &source, &args.file, &options, &mut reporter);
    reporter.finish();
    let (out, err) = (reporter.out, reporter.err);
    if let (Err(e), Some(r)) = (&result, &ranks) {
        // The other ranks wait for this one in the next collective
        // operation: end them all.
        let prefix = if rank == 0 { String::new() } else { format!("rank {rank}: ") };
        let _ = writeln!(err, "{prefix}error: {}", e.message);
        let _ = err.flush();
        r.abort(2);
    }
    match result {
        Ok(outcome) => {
            if let Some(reason) = &outcome.nothing_to_do {
                // Said even with --quiet: no checkpoint was written.
                let _ = writeln!(out, "nothing to do: {reason}; no checkpoint written");
                return Status::Ok;
            }
            if !args.quiet {
                if outcome.stopped_early {
                    let _ = writeln!(
                        out,
                        "early stopping: no improvement for the configured patience; best epoch {}",
                        outcome.best_epoch.map_or("-".to_string(), |e| e.to_string())
                    );
                } else if let Some(best) = outcome.best_epoch {
                    let _ = writeln!(out, "restored the parameters of the best epoch, {best}");
                }
                let _ = writeln!(
                    out,
                    "checkpoint: {}\nlog: {}",
                    outcome.checkpoint.display(),
                    outcome.log.display()
                );
            }
            Status::Ok
        }
        Err(e) => fail_run(err, &e, (&module, &source), &args.file, true, color),
    }
}

/// `nnc eval FILE --checkpoint C`.
pub fn run_eval(args: &EvalArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let (module, source) = match load_source(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let subset = match args.subset {
        SubsetArg::Validation => Subset::Validation,
        SubsetArg::Training => Subset::Training,
        SubsetArg::All => Subset::All,
    };
    let data = args.data.as_deref();
    if let Some(path) = data.filter(|p| extension(p) != "npz") {
        return fail(
            err,
            &format!(
                "{}: --data takes an .npz archive with arrays named like the model's input and target, not {}",
                path.display(),
                kind_of(path)
            ),
        );
    }
    let other = match &args.source {
        Some(text) => match nnc_compiler::sema::train_section::check_data_source(text) {
            Ok(source) => Some(source),
            Err(diags) => {
                let shown = nnc_compiler::sema::train_section::source_text(text);
                let _ = write!(err, "{}", nnc_compiler::diag::render("--source", &shown, &diags, color));
                return Status::Usage;
            }
        },
        None => None,
    };
    let options = EvalOptions {
        subset,
        data_file: data,
        source: other,
        threads: threads_of(args.threads),
        allow_changes: args.allow_changes,
        baseline: args.baseline.map(|b| match b {
            BaselineArg::Persistence => Baseline::Persistence,
        }),
    };
    match train::eval(&module, &args.file, &args.checkpoint, &options) {
        Ok(e) => {
            for warning in &e.warnings {
                let _ = writeln!(err, "warning: {warning}");
            }
            let what = match data {
                Some(_) => e.origin.clone(),
                None => format!("{} subset of {}", format!("{:?}", args.subset).to_lowercase(), e.origin),
            };
            let _ = writeln!(out, "{} examples ({what})", e.examples);
            let units = if e.loss_normalized { " (normalised units)" } else { "" };
            match e.losses.as_slice() {
                [_] | [] => {
                    let _ = writeln!(out, "loss{units} = {}", e.loss);
                }
                several => {
                    for (name, v) in several {
                        let _ = writeln!(out, "loss {name}{units} = {v}");
                    }
                }
            }
            for (label, v) in &e.metrics {
                let _ = writeln!(out, "{label} = {v}");
            }
            if !e.baseline.is_empty() {
                let _ = writeln!(out, "persistence, on the same examples:");
                for (label, v) in &e.baseline {
                    let _ = writeln!(out, "  {label} = {v}");
                }
            }
            Status::Ok
        }
        Err(e) => {
            fail_run(err, &e, (&module, &source), &args.file, data.is_none() && args.source.is_none(), color)
        }
    }
}

/// An .npy array of any float, integer or boolean dtype, as f32.
fn read_npy(path: &Path) -> Result<ArrayD<f32>, String> {
    match nnc_runtime::io::npz::load_npy(path).map_err(|e| e.to_string())? {
        nnc_runtime::io::npz::ArrayValue::F32(a) => Ok(a),
        nnc_runtime::io::npz::ArrayValue::I32(a) => Ok(a.mapv(|v| v as f32)),
    }
}

/// The extension of `path`, lower case (empty when it has none).
fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default()
}

/// "a .EXT file", or "a file without an extension".
fn kind_of(path: &Path) -> String {
    match extension(path).as_str() {
        "" => "a file without an extension".to_string(),
        ext => format!("a .{ext} file"),
    }
}

/// The arrays of `nnc predict --input`, one for each input the prediction
/// reads (`needed`): an .npy array when it reads one, else an .npz archive
/// with an array named like each (an archive with a single array serves a
/// prediction that reads one input, whatever its name).
fn read_inputs(path: &Path, needed: &[train::PredictInput]) -> Result<Vec<train::NamedInput>, String> {
    let label = path.display().to_string();
    let names = || needed.iter().map(|i| format!("`{}`", i.name)).collect::<Vec<_>>().join(", ");
    match extension(path).as_str() {
        "npy" => match needed {
            [only] => Ok(vec![train::NamedInput { name: only.name.clone(), values: read_npy(path)?, label }]),
            _ => Err(format!(
                "{}: the prediction reads {} inputs ({}); give an .npz archive with an array named like each",
                path.display(),
                needed.len(),
                names()
            )),
        },
        "npz" => {
            let mut arrays = nnc_runtime::io::npz::load_npz(path).map_err(|e| e.to_string())?;
            let single = arrays.len() == 1 && needed.len() == 1;
            let mut out = vec![];
            for want in needed {
                let key = if arrays.contains_key(&want.name) {
                    want.name.clone()
                } else if single {
                    arrays.keys().next().cloned().unwrap_or_default()
                } else {
                    let have: Vec<String> = arrays.keys().map(|k| format!("`{k}`")).collect();
                    return Err(format!(
                        "{}: no array `{}` (an input the prediction reads: {}) among {}",
                        path.display(),
                        want.name,
                        names(),
                        have.join(", ")
                    ));
                };
                let values = match arrays.remove(&key) {
                    Some(nnc_runtime::io::npz::ArrayValue::F32(a)) => a,
                    Some(nnc_runtime::io::npz::ArrayValue::I32(a)) => a.mapv(|v| v as f32),
                    None => return Err(format!("{}: no array `{key}`", path.display())),
                };
                out.push(train::NamedInput { name: want.name.clone(), values, label: label.clone() });
            }
            Ok(out)
        }
        _ => Err(format!(
            "{}: --input takes an .npy array or an .npz archive (with {} named {}), not {}",
            path.display(),
            if needed.len() == 1 { "an array" } else { "arrays" },
            names(),
            kind_of(path)
        )),
    }
}

/// An .npz archive of the prediction, named like the model's output, and
/// the inputs it was computed from, named like the model's inputs (i32
/// inputs as i32): `nnc eval --source 'npz(...)'` scores it directly.
fn predictions_npz(
    y: &ArrayD<f32>,
    name: &str,
    inputs: &[train::NamedInput],
    needed: &[train::PredictInput],
) -> Result<Vec<u8>, String> {
    let mut bytes = std::io::Cursor::new(vec![]);
    {
        let mut npz = ndarray_npy::NpzWriter::new(&mut bytes);
        let fail = |e: ndarray_npy::WriteNpzError| format!("cannot encode the archive: {e}");
        npz.add_array(name, y).map_err(fail)?;
        for (given, want) in inputs.iter().zip(needed) {
            if given.name == name {
                continue;
            }
            if want.dtype == nnc_compiler::ir::DType::I32 {
                npz.add_array(given.name.as_str(), &given.values.mapv(|v| v as i32)).map_err(fail)?;
            } else {
                npz.add_array(given.name.as_str(), &given.values).map_err(fail)?;
            }
        }
        npz.finish().map_err(fail)?;
    }
    Ok(bytes.into_inner())
}

/// Predictions as CSV: a header row, then one row per example. Only for
/// predictions of one value or one vector per example.
fn predictions_csv(y: &ArrayD<f32>, columns: &[String], path: &Path) -> Result<Vec<u8>, String> {
    let (n, k) = match y.shape() {
        [n] => (*n, 1),
        [n, k] => (*n, *k),
        shape => {
            return Err(format!(
                "{}: CSV holds one row of values per example, and these predictions have shape {shape:?}; \
                 write them as .npy",
                path.display()
            ))
        }
    };
    let mut text = columns.join(",") + "\n";
    let values: Vec<f32> = y.iter().copied().collect();
    for row in values.chunks(k.max(1)).take(n) {
        let cells: Vec<String> = row.iter().map(f32::to_string).collect();
        text += &(cells.join(",") + "\n");
    }
    Ok(text.into_bytes())
}

/// The CSV header of predictions with `k` values per example: the target
/// columns of a model trained on CSV, else `NAME` or `NAME.0`, `NAME.1`, ….
fn prediction_columns(module: &nnc_compiler::Module, k: usize) -> Vec<String> {
    if let Some(nnc_compiler::config::DataSource::Csv { y, .. }) = module.train.as_ref().map(|t| &t.data) {
        if y.len() == k {
            return y.clone();
        }
    }
    let name = prediction_name(module);
    if k == 1 {
        vec![name]
    } else {
        (0..k).map(|i| format!("{name}.{i}")).collect()
    }
}

/// The name of the model's (first) prediction output.
fn prediction_name(module: &nnc_compiler::Module) -> String {
    module
        .infer_graph
        .outputs
        .iter()
        .find(|o| o.kind == nnc_compiler::ir::OutputKind::Prediction)
        .map_or("prediction".to_string(), |o| o.name.clone())
}

/// `nnc predict FILE --checkpoint C --input X.npy -o Y.npy`.
pub fn run_predict(args: &PredictArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let format = extension(&args.output);
    if !matches!(format.as_str(), "npy" | "csv" | "npz") {
        return fail(
            err,
            &format!(
                "{}: -o writes an .npy array, an .npz archive or a .csv table, not {}",
                args.output.display(),
                kind_of(&args.output)
            ),
        );
    }
    let module = match load(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let needed = match train::prediction_inputs(&module) {
        Ok(n) => n,
        Err(m) => return fail(err, &m),
    };
    let inputs = match (&args.input, needed.first()) {
        (Some(_), None) => return fail(
            err,
            "the prediction reads no input (it is drawn from the model's random numbers): give the number \
                 of examples to draw with --count N instead of --input",
        ),
        (Some(path), Some(_)) => match read_inputs(path, &needed) {
            Ok(x) => x,
            Err(m) => return fail(err, &m),
        },
        (None, Some(first)) => {
            return fail(
                err,
                &format!(
                    "the prediction reads input `{}`: give the examples with --input X.npy|X.npz",
                    first.name
                ),
            )
        }
        (None, None) => vec![],
    };
    let options = PredictOptions {
        threads: threads_of(args.threads),
        seed: args.seed,
        allow_changes: args.allow_changes,
        count: args.count,
    };
    let y = match train::predict_inputs(&module, &args.checkpoint, &inputs, &options) {
        Ok((y, warnings)) => {
            for warning in warnings {
                let _ = writeln!(err, "warning: {warning}");
            }
            y
        }
        Err(m) => return fail(err, &m),
    };
    let encoded = match format.as_str() {
        "csv" => {
            let k = y.shape().get(1).copied().unwrap_or(1);
            predictions_csv(&y, &prediction_columns(&module, k), &args.output)
        }
        "npz" => predictions_npz(&y, &prediction_name(&module), &inputs, &needed),
        _ => {
            let mut bytes = vec![];
            y.write_npy(&mut bytes)
                .map(|()| bytes)
                .map_err(|e| format!("{}: cannot encode: {e}", args.output.display()))
        }
    };
    let bytes = match encoded {
        Ok(b) => b,
        Err(m) => return fail(err, &m),
    };
    if let Err(m) = train::write_file(&args.output, &bytes) {
        return fail(err, &m);
    }
    let _ = writeln!(out, "wrote predictions {:?} to {}", y.shape(), args.output.display());
    Status::Ok
}

/// `nnc plot RUN_DIR... [-o FILE] [--maps [--example N] | --scatter] [--variable NAME]`.
pub fn run_plot(args: &PlotArgs, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let kind = if args.maps {
        Some("--maps")
    } else if args.scatter {
        Some("--scatter")
    } else {
        None
    };
    let result = match (kind, args.run_dirs.as_slice()) {
        (None, _) if args.variable.is_some() => {
            return fail(err, "--variable chooses the variable of --maps or --scatter")
        }
        (None, dirs) => {
            let opts = crate::plot::PlotOptions { output: args.output.clone(), ..Default::default() };
            crate::plot::plot_runs(dirs, &opts)
        }
        (Some(kind), [_, _, ..]) => {
            return fail(err, &format!("{kind} draws the predictions of one run; give one run directory"))
        }
        (Some(_), [dir]) if args.maps => {
            let opts = crate::plot::MapOptions {
                example: args.example.unwrap_or(0),
                variable: args.variable.clone(),
                output: args.output.clone(),
                ..Default::default()
            };
            crate::plot::plot_maps(dir, &opts)
        }
        (Some(_), [dir]) => {
            let opts = crate::plot::ScatterOptions {
                variable: args.variable.clone(),
                output: args.output.clone(),
                ..Default::default()
            };
            crate::plot::plot_scatter(dir, &opts)
        }
        (Some(_), []) => return fail(err, "no run directory given"),
    };
    match result {
        Ok(path) => {
            let _ = writeln!(out, "wrote {}", path.display());
            Status::Ok
        }
        Err(m) => fail(err, &m),
    }
}
