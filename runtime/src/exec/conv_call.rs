//! The executable's convolution calls ([`Call::Conv`]): the geometry of a
//! call from its shapes and attributes, its generated packing kernels as a
//! [`conv::Packing`] ([`GeneratedPacking`]), and the split of the batch
//! across the pool — each task with its own scratch, partial weight
//! gradients summed in chunk order, so the same thread count gives the
//! same bits.
//!
//! Safety. The result is an exclusively borrowed slice; the only raw
//! pointers are the packing kernels' (whose extents [`GeneratedPacking`]
//! checks against the image and scratch slices before each call) and the
//! result rows handed to the pool's tasks, disjoint per task.

use std::sync::Mutex;

use nnc_compiler::codegen::lower::{Call, ConvKind, ConvPacking};
use nnc_compiler::codegen::{take_trap, Jit, KernelId, KernelTrap, LoopFnPtr};

use super::conv::{self, ConvGeometry};
use super::executable::Shared;
use super::gemm::GemmProvider;
use super::pool::ThreadPool;
use super::winograd;

/// The scratch of one pool task: convolution scratch and the task's partial
/// weight gradient.
pub(crate) type TaskScratch = Mutex<(conv::Scratch, Vec<f32>)>;

/// What a convolution call runs on.
pub(crate) struct ConvContext<'a> {
    /// The program's kernels (the call's packing kernels among them).
    pub jit: &'a Jit,
    pub provider: &'a dyn GemmProvider,
    pub pool: &'a ThreadPool,
    /// One scratch per pool task.
    pub scratch: &'a [TaskScratch],
}

impl ConvContext<'_> {
    /// Runs the convolution `call` on its operands `x` and `w` (the call's
    /// `x` and `w` buffers), writing its result `y`.
    pub(crate) fn run(&self, call: &Call, x: &[f32], w: &[f32], y: &mut [f32]) -> Result<(), String> {
        let Call::Conv { kind, attrs, x_shape, w_shape, y_shape, chunks, packing, .. } = call else {
            return Err("not a convolution".into());
        };
        let geometry = |batch: usize| -> Result<ConvGeometry, String> {
            let mut xs = x_shape.clone();
            xs[0] = batch;
            match kind {
                ConvKind::Forward => ConvGeometry::conv(&xs, w_shape, attrs),
                ConvKind::Transpose { output_padding } => {
                    ConvGeometry::conv_transpose(&xs, w_shape, attrs, output_padding)
                }
                ConvKind::WeightGrad { kernel } => {
                    let mut dys = w_shape.clone();
                    dys[0] = batch;
                    ConvGeometry::weight_grad(&xs, &dys, attrs, kernel)
                }
            }
        };
        let generated = GeneratedPacking::new(self.jit, packing)?;
        let method = if packing.winograd_rows > 0 {
            Method::Winograd(packing.winograd_rows)
        } else if packing.tile_rows == 0 {
            Method::Im2col(conv::Tiling::pointwise())
        } else {
            Method::Im2col(conv::Tiling {
                rows: packing.tile_rows,
                col_stride: packing.col_stride,
                step: packing.tile_step,
            })
        };
        let result = self.run_with(
            &generated,
            kind,
            &geometry,
            &method,
            (x, x_shape),
            (w, w_shape),
            (y, y_shape),
            *chunks,
        );
        let trap = generated.trap.into_inner().map_err(|_| "a convolution task panicked".to_string())?;
        match trap {
            Some(t) => Err(self.jit.describe_trap(&t)),
            None => result,
        }
    }

    /// Runs a convolution with its packing kernels resolved: on the calling
    /// thread, or with the batch split into `chunks` parts on the pool.
    #[allow(clippy::too_many_arguments)]
    fn run_with(
        &self,
        packing: &GeneratedPacking,
        kind: &ConvKind,
        geometry: &(dyn Fn(usize) -> Result<ConvGeometry, String> + Sync),
        method: &Method,
        (x_data, x_shape): (&[f32], &[usize]),
        (w_data, w_shape): (&[f32], &[usize]),
        (y_data, y_shape): (&mut [f32], &[usize]),
        chunks: usize,
    ) -> Result<(), String> {
        let batch = x_shape[0];
        let parts = chunks.clamp(1, batch.max(1));
        let provider = self.provider;
        let scratch_all = self.scratch;
        if parts == 1 {
            let g = geometry(batch)?;
            let mut guard = self.scratch[0].lock().map_err(|_| "scratch poisoned")?;
            return run_one(provider, packing, kind, &g, method, x_data, w_data, y_data, &mut guard.0);
        }
        let x_per: usize = x_shape[1..].iter().product();
        let w_per: usize = w_shape[1..].iter().product();
        let y_per: usize = y_shape[1..].iter().product();
        let ylen = y_data.len();
        let out = Shared(y_data.as_mut_ptr());
        let results: Vec<Result<(), String>> = self.pool.map(parts, &|i| {
            let (n0, n1) = (i * batch / parts, (i + 1) * batch / parts);
            let g = geometry(n1 - n0)?;
            let yp = *out.get();
            let mut guard = scratch_all[i % scratch_all.len()].lock().map_err(|_| "scratch poisoned")?;
            let (scratch, partial) = &mut *guard;
            let xs = &x_data[n0 * x_per..n1 * x_per];
            match kind {
                ConvKind::Forward | ConvKind::Transpose { .. } => {
                    // SAFETY: batch rows n0..n1 of the result `y_data`, which
                    // this call borrows exclusively (its length is the
                    // result shape's, checked when the executable was
                    // built); the tasks' rows are disjoint.
                    let ys = unsafe {
                        std::slice::from_raw_parts_mut(yp.wrapping_add(n0 * y_per), (n1 - n0) * y_per)
                    };
                    run_one(provider, packing, kind, &g, method, xs, w_data, ys, scratch)
                }
                ConvKind::WeightGrad { .. } => {
                    let dys = &w_data[n0 * w_per..n1 * w_per];
                    partial.resize(ylen, 0.0);
                    run_one(provider, packing, kind, &g, method, xs, dys, partial, scratch)
                }
            }
        })?;
        results.into_iter().collect::<Result<Vec<()>, String>>()?;
        if let ConvKind::WeightGrad { .. } = kind {
            for i in 0..parts {
                let guard = self.scratch[i % self.scratch.len()].lock().map_err(|_| "scratch poisoned")?;
                let partial = &guard.1;
                if i == 0 {
                    y_data.copy_from_slice(&partial[..ylen]);
                } else {
                    for (d, p) in y_data.iter_mut().zip(partial) {
                        *d += *p;
                    }
                }
            }
        }
        Ok(())
    }
}

/// How a convolution call computes its products.
enum Method {
    /// im2col (or the image itself) and the GEMM provider, in these tiles.
    Im2col(conv::Tiling),
    /// Winograd F(2×2, 3×3) in blocks of this many tile rows.
    Winograd(usize),
}

/// Runs convolution `kind` of geometry `g` by `method`: `x` is the call's
/// first operand, `w` its second (a weight gradient's `dy`), `y` its
/// result.
#[allow(clippy::too_many_arguments)]
fn run_one(
    provider: &dyn GemmProvider,
    packing: &GeneratedPacking,
    kind: &ConvKind,
    g: &ConvGeometry,
    method: &Method,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    scratch: &mut conv::Scratch,
) -> Result<(), String> {
    match *method {
        Method::Winograd(rows) => {
            let shape = g.winograd().ok_or("the plan's Winograd convolution does not fit its shapes")?;
            let scratch = &mut scratch.winograd;
            match kind {
                ConvKind::Forward => winograd::conv(&shape, rows, x, w, y, scratch),
                ConvKind::Transpose { .. } => winograd::conv_input_grad(&shape, rows, x, w, y, scratch),
                ConvKind::WeightGrad { .. } => winograd::conv_weight_grad(&shape, rows, x, w, y, scratch),
            }
        }
        Method::Im2col(ref tiling) => match kind {
            ConvKind::Forward => conv::conv(provider, packing, g, tiling, x, w, y, scratch),
            // A transposed convolution is the input gradient of the
            // convolution whose input is its output.
            ConvKind::Transpose { .. } => {
                conv::conv_input_grad(provider, packing, g, tiling, x, w, y, scratch)
            }
            ConvKind::WeightGrad { .. } => {
                conv::conv_weight_grad(provider, packing, g, tiling, x, w, y, scratch)
            }
        },
    }
}

/// One generated packing kernel, resolved from the [`Jit`] (which cannot be
/// shared between threads) before a convolution's tasks start.
struct PackKernel {
    f: LoopFnPtr,
    name: String,
    elements: usize,
    input_extent: Option<(isize, isize)>,
    output_extent: Option<(isize, isize)>,
}

/// A convolution's packing as its generated kernels ([`ConvPacking`]),
/// each run over its whole iteration space on the calling thread.
struct GeneratedPacking {
    pad: Option<PackKernel>,
    im2col: Option<PackKernel>,
    im2col_last: Option<PackKernel>,
    col2im: Option<PackKernel>,
    col2im_last: Option<PackKernel>,
    unpad: Option<PackKernel>,
    /// The first out-of-bounds access a checked kernel reported.
    trap: Mutex<Option<KernelTrap>>,
}

impl GeneratedPacking {
    fn new(jit: &Jit, packing: &ConvPacking) -> Result<GeneratedPacking, String> {
        let resolve = |id: Option<KernelId>| -> Result<Option<PackKernel>, String> {
            let Some(id) = id else { return Ok(None) };
            let f = jit.loop_fn(id).map_err(|e| e.to_string())?;
            let k = f.kernel();
            if k.inputs.len() != 1 || k.outputs.len() != 1 {
                return Err(format!("packing kernel {} must have one input and one output", k.name));
            }
            Ok(Some(PackKernel {
                f: f.raw(),
                name: k.name.clone(),
                elements: k.elements(),
                input_extent: k.input_extent(0),
                output_extent: k.output_extent(0),
            }))
        };
        Ok(GeneratedPacking {
            pad: resolve(packing.pad)?,
            im2col: resolve(packing.im2col)?,
            im2col_last: resolve(packing.im2col_last)?,
            col2im: resolve(packing.col2im)?,
            col2im_last: resolve(packing.col2im_last)?,
            unpad: resolve(packing.unpad)?,
            trap: Mutex::new(None),
        })
    }

    /// Runs packing kernel `k` from `input` into `output`.
    fn run(&self, k: &Option<PackKernel>, input: &[f32], output: &mut [f32]) -> Result<(), String> {
        let k = k.as_ref().ok_or("the convolution lacks a packing kernel")?;
        let within = |extent: Option<(isize, isize)>, len: usize| {
            extent.is_none_or(|(lo, hi)| lo >= 0 && (hi as usize) < len)
        };
        if !within(k.input_extent, input.len()) || !within(k.output_extent, output.len()) {
            return Err(format!("packing kernel {} does not fit its buffers", k.name));
        }
        let ins = [input.as_ptr()];
        let outs = [output.as_mut_ptr()];
        let lens = [input.len(), output.len()];
        // SAFETY: the kernel has one input and one output (checked in `new`),
        // reads only elements of its input extent and writes only elements of
        // its output extent, both checked above to lie inside the slices;
        // `0..elements` is its whole iteration space; `output` is borrowed
        // mutably, so nothing else touches it during the call, and it cannot
        // overlap the shared `input`.
        unsafe { (k.f)(ins.as_ptr(), outs.as_ptr(), 0, k.elements, lens.as_ptr()) };
        match take_trap() {
            Some(t) => {
                let message = format!("packing kernel {} accessed memory out of bounds", k.name);
                if let Ok(mut slot) = self.trap.lock() {
                    slot.get_or_insert(t);
                }
                Err(message)
            }
            None => Ok(()),
        }
    }
}

impl conv::Packing for GeneratedPacking {
    fn pad(&self, x: &[f32], padded: &mut [f32]) -> Result<(), String> {
        self.run(&self.pad, x, padded)
    }

    fn im2col(&self, short: bool, source: &[f32], col: &mut [f32]) -> Result<(), String> {
        self.run(if short { &self.im2col_last } else { &self.im2col }, source, col)
    }

    fn col2im(&self, short: bool, col: &[f32], target: &mut [f32]) -> Result<(), String> {
        self.run(if short { &self.col2im_last } else { &self.col2im }, col, target)
    }

    fn unpad(&self, padded: &[f32], dx: &mut [f32]) -> Result<(), String> {
        self.run(&self.unpad, padded, dx)
    }
}
