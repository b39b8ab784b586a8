//! `nnc bench`: compile a model's training step and time it on synthetic
//! data, the same work `peers.py` times for PyTorch and JAX.
//!
//! - **compile time**: reading and parsing the file through differentiation,
//!   optimisation, fusion, planning and code generation, until the step can
//!   run;
//! - **step time**: the median of the timed steps (each one forward,
//!   backward and optimiser update, with the new parameters and optimiser
//!   state fed to the next step), after warm-up steps that are not timed;
//! - **samples/s**: the batch size divided by the median step time;
//! - **peak arena bytes**: the memory plan's peak.
//!
//! With `--profile`, the compile time is also broken down by stage (from the
//! [`Timings`] the pipeline records: parse, sema, autodiff, update, opt,
//! verify, fusion, plan, lower, cranelift, link, and `load` for the
//! runtime's executable), and the step time by kernel.
//!
//! Inputs are drawn once from a seeded generator: data and float targets
//! standard normal, integer targets (class labels) uniform over the classes
//! of the `one_hot` that reads them; parameters start from their
//! initialisers, as in `nnc init`.

use std::io::Write;
use std::time::{Duration, Instant};

use nnc_compiler::codegen::Checking;
use nnc_compiler::ir::interp::Tensor;
use nnc_compiler::ir::{rng, DType, Graph, InputKind, Op};
use nnc_compiler::pipeline::{self, Timings};
use nnc_runtime::exec::{feed, Executable, Gemm, Options};
use nnc_runtime::train::init;
use nnc_runtime::FileLoader;

use crate::cli::BenchArgs;
use crate::commands::{report, Status};
use crate::source::read_source;

/// What one benchmark measured.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub model: String,
    pub batch: usize,
    pub threads: usize,
    pub steps: usize,
    pub compile: Duration,
    pub step_times: Vec<Duration>,
    pub peak_bytes: usize,
    pub kernels: usize,
    pub final_loss: f32,
    /// The compile time of each stage.
    pub timings: Timings,
}

impl Measurement {
    /// Median step time.
    pub fn median(&self) -> Duration {
        let mut t = self.step_times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }

    pub fn samples_per_s(&self) -> f64 {
        let s = self.median().as_secs_f64();
        if s > 0.0 {
            self.batch as f64 / s
        } else {
            0.0
        }
    }
}

/// A standard normal number from the counter-based generator.
fn normal(key: [i32; 2], stream: u64, index: u64) -> f32 {
    let u1 = f64::from(rng::uniform(key, stream, 2 * index)).max(1e-12);
    let u2 = f64::from(rng::uniform(key, stream, 2 * index + 1));
    rng::box_muller(1.0, u1, u2) as f32
}

/// Gives every input of the executable its starting value: parameters and
/// state from their initialisers, the key `[seed, 0]`, the learning rate,
/// and synthetic data (for constants too: `nnc bench` then binds the
/// module's constants to their values).
pub fn feed_synthetic(exe: &mut Executable, graph: &Graph, seed: u64, lr: f64) -> Result<(), String> {
    for (name, value) in init::initial_values(graph, seed)? {
        exe.set_input(&name, &Tensor::Float(value))?;
    }
    for (name, value) in feed::key_inputs(graph, seed)? {
        exe.set_input(&name, &value)?;
    }
    let classes = graph
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::OneHot { classes } => Some(classes),
            _ => None,
        })
        .min()
        .unwrap_or(2)
        .max(1);
    let key = rng::seed_key(seed);
    let shapes: Vec<(String, DType, Vec<usize>)> =
        exe.inputs().map(|(n, d, s)| (n.to_string(), d, s.to_vec())).collect();
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let Some((_, dtype, shape)) = shapes.iter().find(|(n, _, _)| n == name) else { continue };
        let count: usize = shape.iter().product();
        let stream = rng::name_stream(name);
        let value = match (kind, dtype) {
            (InputKind::Hyper, _) => {
                Tensor::Float(ndarray::ArrayD::from_elem(ndarray::IxDyn(shape), lr as f32))
            }
            // Constants get data-like values: timing does not depend on them.
            (InputKind::Data | InputKind::Target | InputKind::Const, DType::F32) => {
                let v = (0..count as u64).map(|i| normal(key, stream, i)).collect();
                Tensor::Float(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).map_err(|e| e.to_string())?,
                )
            }
            (InputKind::Data | InputKind::Target | InputKind::Const, DType::I32) => {
                let v = (0..count as u64)
                    .map(|i| (rng::uniform(key, stream, i) * classes as f32) as i32 % classes as i32)
                    .collect();
                Tensor::Int(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).map_err(|e| e.to_string())?,
                )
            }
            _ => continue,
        };
        exe.set_input(name, &value)?;
    }
    Ok(())
}

/// Compiles and times the training step of `args.file`.
fn measure(
    args: &BenchArgs,
    color: bool,
    err: &mut dyn Write,
) -> Result<(Measurement, Option<Executable>), Status> {
    let fail = |err: &mut dyn Write, m: String| {
        let _ = writeln!(err, "error: {m}");
        Status::CompileErrors
    };
    let start = Instant::now();
    let mut timings = Timings::default();
    let name = args.file.display().to_string();
    let source = read_source(&args.file).map_err(|m| {
        let _ = writeln!(err, "error: {m}");
        Status::Usage
    })?;
    let module = pipeline::compile_timed(&source, &FileLoader::for_model(&args.file), &mut timings)
        .map_err(|d| {
            let _ = write!(err, "{}", nnc_compiler::diag::render(&name, &source, &d, color));
            Status::CompileErrors
        })?
        .module;
    let graph = pipeline::optimized_timed(&module, nnc_compiler::ir::Mode::Train, &mut timings)
        .map_err(|e| report(err, &name, &source, &e, color))?;
    let batch = match args.batch {
        Some(b) => b as usize,
        None => module.train.as_ref().map_or(1, |t| t.batch),
    };
    let threads = args.threads.map_or_else(nnc_runtime::exec::pool::available_threads, |t| t as usize);
    let options = Options {
        threads,
        checking: if args.checked { Checking::Checked } else { Checking::Unchecked },
        gemm: Gemm::Tuned,
    };
    let program = pipeline::program_timed(&graph, batch, threads.max(1), options.checking, &mut timings)
        .map_err(|e| report(err, &name, &source, &e, color))?;
    let mut exe =
        timings.time("load", || Executable::new(program, options.gemm)).map_err(|m| fail(err, m))?;
    let compile = start.elapsed();
    let seed = module.train.as_ref().map_or(0, |t| t.seed);
    let lr =
        pipeline::optimizers(&module).first().map_or(pipeline::DEFAULT_OPTIMIZER.lr(), |o| o.optimizer.lr());
    feed_synthetic(&mut exe, &graph, seed, lr).map_err(|m| fail(err, m))?;
    // The constants the model computes or reads (an edge list, a mask) are
    // bound to their values: an index constant decides which memory a
    // gather or scatter touches, so synthetic values would time another
    // program.
    let constants = nnc_runtime::train::constant_inputs(&module).map_err(|m| fail(err, m))?;
    for (name, value) in &constants {
        if exe.inputs().any(|(n, _, _)| n == name) {
            exe.set_input(name, value).map_err(|m| fail(err, m))?;
        }
    }
    let loss_name = graph
        .outputs
        .iter()
        .find(|o| o.kind == nnc_compiler::ir::OutputKind::Loss)
        .map(|o| o.name.clone())
        .ok_or_else(|| fail(err, "the training step has no loss output".into()))?;
    let step = |exe: &mut Executable| -> Result<(), String> {
        exe.run()?;
        exe.carry_state()
    };
    for _ in 0..args.warmup {
        step(&mut exe).map_err(|m| fail(err, m))?;
    }
    exe.set_profiling(args.profile);
    let mut step_times = Vec::with_capacity(args.steps as usize);
    for _ in 0..args.steps.max(1) {
        let t = Instant::now();
        step(&mut exe).map_err(|m| fail(err, m))?;
        step_times.push(t.elapsed());
    }
    let final_loss = match exe.output(&loss_name).map_err(|m| fail(err, m))? {
        Tensor::Float(a) => a.iter().next().copied().unwrap_or(f32::NAN),
        _ => f32::NAN,
    };
    let m = Measurement {
        model: module.name.clone(),
        batch,
        threads,
        steps: step_times.len(),
        compile,
        step_times,
        peak_bytes: exe.peak_bytes(),
        kernels: exe.kernels(),
        final_loss,
        timings,
    };
    Ok((m, args.profile.then_some(exe)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `nnc bench`.
pub fn run_bench(args: &BenchArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let (m, exe) = match measure(args, color, err) {
        Ok(r) => r,
        Err(status) => return status,
    };
    let mut sorted = m.step_times.clone();
    sorted.sort();
    let min = sorted.first().copied().unwrap_or_default();
    let p90 = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or_default();
    if args.json {
        let mut obj = serde_json::json!({
            "model": m.model,
            "file": args.file.display().to_string(),
            "batch": m.batch,
            "threads": m.threads,
            "steps": m.steps,
            "warmup": args.warmup,
            "compile_ms": ms(m.compile),
            "step_ms": ms(m.median()),
            "step_ms_min": ms(min),
            "step_ms_p90": ms(p90),
            "samples_per_s": m.samples_per_s(),
            "peak_bytes": m.peak_bytes,
            "kernels": m.kernels,
            "final_loss": m.final_loss,
        });
        if let Some(exe) = &exe {
            let steps = m.steps.max(1) as f64;
            let profile: Vec<serde_json::Value> = exe
                .profile()
                .iter()
                .map(|s| serde_json::json!({"kernel": s.name, "kind": s.kind.name(), "ms": ms(s.time) / steps}))
                .collect();
            obj["profile"] = serde_json::Value::Array(profile);
            let stages: serde_json::Map<String, serde_json::Value> =
                m.timings.stages.iter().map(|(s, t)| (s.to_string(), serde_json::json!(ms(*t)))).collect();
            obj["compile_stages_ms"] = serde_json::Value::Object(stages);
        }
        let _ = writeln!(out, "{obj}");
        return Status::Ok;
    }
    let _ = writeln!(
        out,
        "{}: batch {}, {} thread{}, {} kernels",
        m.model,
        m.batch,
        m.threads,
        if m.threads == 1 { "" } else { "s" },
        m.kernels
    );
    let _ = writeln!(out, "  compile      {:>10.1} ms", ms(m.compile));
    let _ = writeln!(
        out,
        "  train step   {:>10.3} ms median ({} steps after {} warm-up; min {:.3}, p90 {:.3})",
        ms(m.median()),
        m.steps,
        args.warmup,
        ms(min),
        ms(p90)
    );
    let _ = writeln!(out, "  throughput   {:>10.1} samples/s", m.samples_per_s());
    let _ = writeln!(out, "  peak arena   {:>10} bytes", m.peak_bytes);
    let _ = writeln!(out, "  final loss   {:>10.6}", m.final_loss);
    if let Some(exe) = exe {
        let _ = writeln!(out, "\ncompile by stage (ms, share of compile time):");
        let total = ms(m.compile).max(1e-9);
        let rest = m.compile.saturating_sub(m.timings.total());
        for (stage, t) in m.timings.stages.iter().chain([("other", rest)].iter()) {
            let _ = writeln!(out, "  {:<10} {:>9.1} ms {:>6.1}%", stage, ms(*t), ms(*t) / total * 100.0);
        }
        let mut profile = exe.profile();
        let total: f64 = profile.iter().map(|s| s.time.as_secs_f64()).sum::<f64>().max(1e-12);
        profile.sort_by_key(|s| std::cmp::Reverse(s.time));
        let steps = m.steps.max(1) as f64;
        let _ = writeln!(out, "\nper kernel (ms per step, share of kernel time):");
        for s in &profile {
            let share = s.time.as_secs_f64() / total * 100.0;
            let _ = writeln!(
                out,
                "  {:<10} {:<16} {:>9.3} ms {:>6.1}%",
                s.name,
                s.kind.name(),
                ms(s.time) / steps,
                share
            );
        }
    }
    Status::Ok
}
