//! `nnc export`: a checkpoint's model as an ONNX file, with the data
//! normalisation folded in so that the ONNX model takes inputs and returns
//! predictions in physical units, exactly like `nnc predict`.

use std::io::Write;

use nnc_compiler::pipeline;
use nnc_onnx::{Model, Normalization};
use nnc_runtime::train::{self, normalize::Stats};

use crate::cli::ExportArgs;
use crate::commands::{load_source, report, Status};

fn normalization(stats: &Stats) -> Normalization {
    Normalization { mean: stats.mean.clone(), std: stats.std.clone(), axis: stats.axis }
}

/// `nnc export FILE --checkpoint C -o MODEL.onnx [--allow-changes]`.
pub fn run_export(args: &ExportArgs, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> Status {
    let fail = |err: &mut dyn Write, message: &str| {
        let _ = writeln!(err, "error: {message}");
        Status::Usage
    };
    let extension = args.output.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if !extension.eq_ignore_ascii_case("onnx") {
        return fail(err, &format!("{}: -o writes an .onnx model", args.output.display()));
    }
    let (module, source) = match load_source(&args.file, color, err) {
        Ok(loaded) => loaded,
        Err(status) => return status,
    };
    let model = match train::inference_model(&module, &args.checkpoint, args.allow_changes) {
        Ok(model) => model,
        Err(message) => return fail(err, &message),
    };
    for warning in &model.warnings {
        let _ = writeln!(err, "warning: {warning}");
    }
    let inputs: Vec<(String, Normalization)> =
        model.inputs.iter().map(|(name, stats)| (name.clone(), normalization(stats))).collect();
    let output = model.output.as_ref().map(normalization);
    let description = format!(
        "model `{}` of {}, parameters of {}; inputs and prediction in physical units",
        module.name,
        args.file.display(),
        args.checkpoint.display()
    );
    let onnx = Model {
        graph: &model.graph,
        tensors: &model.tensors,
        inputs: &inputs,
        output: output.as_ref(),
        description,
    };
    let bytes = match nnc_onnx::export(&onnx) {
        Ok(bytes) => bytes,
        Err(errors) => {
            let error = pipeline::Error::from_stage(&model.graph, Some("cannot export to ONNX"), &errors);
            return report(err, &args.file.display().to_string(), &source, &error, color);
        }
    };
    if let Err(m) = train::write_file(&args.output, &bytes) {
        return fail(err, &m);
    }
    let ops = model.graph.nodes.len();
    let _ = writeln!(
        out,
        "wrote {} (ONNX opset {}, {ops} IR values, {} bytes)",
        args.output.display(),
        nnc_onnx::OPSET,
        bytes.len()
    );
    Status::Ok
}
