//! `nnc train`, `nnc eval` and `nnc predict`: the command-line side of the
//! runtime's training loop (`nnc_runtime::train`).
//!
//! Progress goes to a progress bar on stderr when stderr is a terminal (and
//! not `--quiet`); the per-epoch summary lines and the final report go to
//! stdout, so they can be logged or piped.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use nnc_compiler::codegen::Checking;
use nnc_runtime::train::{self, EpochRecord, Observer, RunInfo, Subset};

use crate::cli::{EvalArgs, PlotArgs, PredictArgs, SubsetArg, TrainArgs};
use crate::commands::{load, Status};
use crate::summary::format_count;

fn threads_of(t: Option<u64>) -> usize {
    t.map_or_else(nnc_runtime::pool::available_threads, |t| t as usize)
}

fn fail(err: &mut dyn Write, message: &str) -> Status {
    let _ = writeln!(err, "error: {message}");
    Status::Usage
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

/// Prints the run's progress: a bar on a terminal, one line per epoch.
struct Reporter<'a> {
    out: &'a mut dyn Write,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Observer for Reporter<'_> {
    fn start(&mut self, info: &RunInfo) {
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
            "{} epochs of {} steps (batch {}), {} threads, compiled in {:.0} ms{norm}{resumed}",
            info.epochs, info.steps_per_epoch, info.batch, info.threads, info.compile_ms
        );
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr_with_hz(10));
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} loss {msg}  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn step(&mut self, done: usize, loss: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(short(loss));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.quiet {
            return;
        }
        let mut line = format!(
            "epoch {:>w$}/{}  train_loss {}",
            r.epoch,
            r.epochs,
            short(r.train_loss),
            w = digits(r.epochs)
        );
        if let Some(v) = r.val_loss {
            line += &format!("  val_loss {}", short(v));
        }
        for (label, v) in &r.metrics {
            line += &format!("  {label} {}", short(*v));
        }
        let time = if r.seconds < 1.0 {
            format!("{:.0} ms", r.seconds * 1e3)
        } else {
            format!("{:.1} s", r.seconds)
        };
        line += &format!(
            "  lr {}  {time}  {} samples/s",
            short(r.lr),
            format_count(r.samples_per_s.round() as u64)
        );
        if r.best {
            line += "  *";
        }
        let _ = writeln!(self.out, "{line}");
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// `nnc train FILE`.
pub fn run_train(args: &TrainArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let module = match load(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let source = match std::fs::read_to_string(&args.file) {
        Ok(s) => s,
        Err(e) => return fail(err, &format!("{}: {e}", args.file.display())),
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
    let options = train::Options {
        threads: threads_of(args.threads),
        epochs: args.epochs.map(|e| e as usize),
        checkpoint,
        run_dir: args.run_dir.clone().unwrap_or_else(|| train::default_run_dir(&args.file)),
        resume: args.resume.clone(),
        checking: if args.checked { Checking::Checked } else { Checking::Unchecked },
    };
    let mut reporter = Reporter { out, quiet: args.quiet, bar: None };
    let result = train::train(&module, &source, &args.file, &options, &mut reporter);
    if let Some(bar) = reporter.bar.take() {
        bar.abandon();
    }
    match result {
        Ok(outcome) => {
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
        Err(message) => fail(err, &message),
    }
}

/// `nnc eval FILE --checkpoint C`.
pub fn run_eval(args: &EvalArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let module = match load(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let subset = match args.subset {
        SubsetArg::Validation => Subset::Validation,
        SubsetArg::Training => Subset::Training,
        SubsetArg::All => Subset::All,
    };
    let data = args.data.as_deref();
    match train::eval(&module, &args.file, &args.checkpoint, subset, data, threads_of(args.threads)) {
        Ok(e) => {
            let what = match data {
                Some(_) => e.origin.clone(),
                None => format!("{} subset of {}", format!("{:?}", args.subset).to_lowercase(), e.origin),
            };
            let _ = writeln!(out, "{} examples ({what})", e.examples);
            let _ = writeln!(out, "loss = {}", e.loss);
            for (label, v) in &e.metrics {
                let _ = writeln!(out, "{label} = {v}");
            }
            Status::Ok
        }
        Err(message) => fail(err, &message),
    }
}

/// An .npy array of any float or integer dtype, as f32.
fn read_npy(path: &Path) -> Result<ArrayD<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let cursor = || std::io::Cursor::new(bytes.as_slice());
    let first = match ArrayD::<f32>::read_npy(cursor()) {
        Ok(a) => return Ok(a),
        Err(e) => e,
    };
    if let Ok(a) = ArrayD::<f64>::read_npy(cursor()) {
        return Ok(a.mapv(|v| v as f32));
    }
    if let Ok(a) = ArrayD::<i64>::read_npy(cursor()) {
        return Ok(a.mapv(|v| v as f32));
    }
    if let Ok(a) = ArrayD::<i32>::read_npy(cursor()) {
        return Ok(a.mapv(|v| v as f32));
    }
    if let Ok(a) = ArrayD::<u8>::read_npy(cursor()) {
        return Ok(a.mapv(f32::from));
    }
    Err(format!("{}: not a readable .npy array of floats or integers: {first}", path.display()))
}

/// `nnc predict FILE --checkpoint C --input X.npy -o Y.npy`.
pub fn run_predict(args: &PredictArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let module = match load(&args.file, color, err) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let x = match read_npy(&args.input) {
        Ok(x) => x,
        Err(m) => return fail(err, &m),
    };
    let y = match train::predict(&module, &args.checkpoint, &x, threads_of(args.threads)) {
        Ok(y) => y,
        Err(m) => return fail(err, &format!("{}: {m}", args.input.display())),
    };
    let mut bytes = vec![];
    if let Err(e) = y.write_npy(&mut bytes) {
        return fail(err, &format!("{}: cannot encode: {e}", args.output.display()));
    }
    if let Err(m) = train::write_file(&args.output, &bytes) {
        return fail(err, &m);
    }
    let _ = writeln!(out, "wrote predictions {:?} to {}", y.shape(), args.output.display());
    Status::Ok
}

/// `nnc plot RUN_DIR [-o FILE]`.
pub fn run_plot(args: &PlotArgs, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let opts = crate::plot::PlotOptions { output: args.output.clone(), ..Default::default() };
    match crate::plot::plot(&args.run_dir, &opts) {
        Ok(path) => {
            let _ = writeln!(out, "wrote {}", path.display());
            Status::Ok
        }
        Err(m) => fail(err, &m),
    }
}
