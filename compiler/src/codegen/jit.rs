//! The JIT: one Cranelift `JITModule` holding every kernel of a model.
//!
//! Kernels are defined first ([`Jit::add_loop_kernel`]), then made executable
//! together by one [`Jit::finalize`]; only then are function pointers handed
//! out, as [`LoopFn`] values that borrow the `Jit` (the machine code lives as
//! long as the module). The Cranelift IR text of every kernel is kept for
//! `nnc ir --stage clif`.
//!
//! Kernels with the same code under different names (the steps of an
//! unrolled recurrence make many) are compiled once: an unchecked kernel
//! equal to one defined before, but for its name, runs that kernel's
//! machine code.
//!
//! Checked kernels report an out-of-bounds access by calling
//! [`nnc_kernel_trap`], which records it in a thread-local slot read by
//! [`take_trap`]; the kernel then returns without touching memory.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use cranelift_codegen::ir::{types, AbiParam, FuncRef, Function, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};

use super::loops::{self, Expr, LoopKernel};
use super::wide;
use super::window::{self, WindowKernel};
use super::CodegenError;
use crate::ir::UnaryOp;

/// Whether a kernel checks its memory accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checking {
    /// Plain loads and stores; callers guarantee the buffers are large enough.
    Unchecked,
    /// Every load and store address is compared with its buffer's length
    /// first; an access out of bounds calls [`nnc_kernel_trap`] and stops
    /// the kernel.
    Checked,
}

/// The machine signature of a loop kernel:
/// `(inputs, outputs, start, end, lens)`; see [`super::loops`].
pub type LoopFnPtr = unsafe extern "C" fn(*const *const f32, *const *mut f32, usize, usize, *const usize);

/// The handle of a kernel defined in a [`Jit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelId(usize);

/// An out-of-bounds access detected by a checked kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTrap {
    /// The kernel's index in its `Jit` (the `KernelId`).
    pub kernel: usize,
    /// The buffer: inputs are numbered first, then outputs.
    pub buffer: usize,
    /// The first element index of the access (may be negative).
    pub index: isize,
    /// The buffer's length in elements.
    pub len: usize,
}

thread_local! {
    static TRAP: Cell<Option<KernelTrap>> = const { Cell::new(None) };
}

/// Called by checked kernels on an out-of-bounds access: records the first
/// trap of the current thread (later ones are dropped until [`take_trap`]).
pub extern "C" fn nnc_kernel_trap(kernel: u64, buffer: u64, index: i64, len: u64) {
    let trap = KernelTrap {
        kernel: kernel as usize,
        buffer: buffer as usize,
        index: index as isize,
        len: len as usize,
    };
    TRAP.with(|t| {
        if t.get().is_none() {
            t.set(Some(trap));
        }
    });
}

/// Takes (and clears) the trap recorded on this thread, if any.
pub fn take_trap() -> Option<KernelTrap> {
    TRAP.with(|t| t.take())
}

/// The symbol checked kernels call on an out-of-bounds access.
const TRAP_SYMBOL: &str = "nnc_kernel_trap";

/// What a defined kernel computes.
enum Desc {
    Loop(LoopKernel),
    Window(WindowKernel),
}

impl Desc {
    /// A text that equal kernels (but for their names) share; kernels with
    /// the same key are compared with `same_code`.
    fn key(&self) -> String {
        match self {
            Desc::Loop(k) => format!("loop {:?} {:?} {:?} {:?}", k.shape, k.inputs, k.body, k.outputs),
            Desc::Window(k) => format!("window {:?} {:?} {:?}", k.op, k.inputs, k.output),
        }
    }

    /// Whether the two kernels compute the same but for their names (and
    /// so compile to the same code).
    fn same_code(&self, other: &Desc) -> bool {
        match (self, other) {
            (Desc::Loop(a), Desc::Loop(b)) => {
                a.shape == b.shape && a.inputs == b.inputs && a.body == b.body && a.outputs == b.outputs
            }
            (Desc::Window(a), Desc::Window(b)) => {
                a.op == b.op && a.inputs == b.inputs && a.output == b.output
            }
            _ => false,
        }
    }

    fn name(&self) -> &str {
        match self {
            Desc::Loop(k) => &k.name,
            Desc::Window(k) => &k.name,
        }
    }

    fn inputs(&self) -> usize {
        match self {
            Desc::Loop(k) => k.inputs.len(),
            Desc::Window(k) => k.inputs.len(),
        }
    }
}

struct Defined {
    desc: Desc,
    checking: Checking,
    /// The function whose machine code the kernel runs: its own, or that
    /// of the first kernel with the same code.
    code: FuncId,
    clif: Clif,
}

/// The Cranelift IR of a kernel, printed on demand ([`Jit::clif_text`]).
enum Clif {
    /// The function as built, before Cranelift's optimisations.
    Own(Box<Function>),
    /// That of an earlier kernel with the same code, printed under the
    /// function name `u0:name`.
    Same { kernel: usize, name: u32 },
}

/// A JIT module and the kernels defined in it.
pub struct Jit {
    /// Freed (with the machine code) when the `Jit` is dropped.
    module: std::mem::ManuallyDrop<JITModule>,
    ctx: Context,
    fctx: FunctionBuilderContext,
    trap: FuncId,
    /// The array functions of [`super::wide`] the host has, by the op they
    /// compute; loop kernels call them from their strips when `use_wide`.
    wide: Vec<(UnaryOp, FuncId)>,
    use_wide: bool,
    kernels: Vec<Defined>,
    /// The functions of the kernels defined so far.
    declared: HashSet<FuncId>,
    /// The unchecked kernels compiled, by [`Desc::key`].
    compiled: HashMap<String, Vec<usize>>,
    finalized: bool,
    /// Time spent in Cranelift compiling kernels, and in
    /// [`Jit::finalize`].
    compile_time: Duration,
    finalize_time: Duration,
}

impl Jit {
    /// A JIT for the host CPU (all its features, e.g. AVX and FMA), with
    /// `opt_level=speed`; the Cranelift verifier runs in debug builds only.
    pub fn new() -> Result<Jit, CodegenError> {
        let err = |m: String| CodegenError { kernel: String::new(), message: m };
        let mut flags = settings::builder();
        for (k, v) in [
            ("opt_level", "speed"),
            ("is_pic", "false"),
            ("use_colocated_libcalls", "false"),
            ("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }),
        ] {
            flags.set(k, v).map_err(|e| err(format!("setting {k}={v}: {e}")))?;
        }
        let isa = cranelift_native::builder()
            .map_err(|e| err(format!("host machine is not supported: {e}")))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| err(format!("building the target ISA: {e}")))?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.symbol(TRAP_SYMBOL, nnc_kernel_trap as *const u8);
        let host = wide::host();
        if let Some(fns) = host {
            for op in wide::OPS {
                if let (Some(name), Some(f)) = (wide::Functions::symbol(op), fns.of(op)) {
                    builder.symbol(name, f as *const u8);
                }
            }
        }
        let mut module = JITModule::new(builder);
        let mut sig = module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(types::I64));
        }
        let trap = module
            .declare_function(TRAP_SYMBOL, Linkage::Import, &sig)
            .map_err(|e| err(format!("declaring the trap function: {e}")))?;
        let mut wide = Vec::new();
        if host.is_some() {
            let mut sig = module.make_signature();
            for _ in 0..3 {
                sig.params.push(AbiParam::new(types::I64));
            }
            for op in wide::OPS {
                let Some(name) = wide::Functions::symbol(op) else { continue };
                let id = module
                    .declare_function(name, Linkage::Import, &sig)
                    .map_err(|e| err(format!("declaring {name}: {e}")))?;
                wide.push((op, id));
            }
        }
        Ok(Jit {
            wide,
            use_wide: true,
            ctx: module.make_context(),
            module: std::mem::ManuallyDrop::new(module),
            fctx: FunctionBuilderContext::new(),
            trap,
            kernels: vec![],
            declared: HashSet::new(),
            compiled: HashMap::new(),
            finalized: false,
            compile_time: Duration::ZERO,
            finalize_time: Duration::ZERO,
        })
    }

    /// Compiles a loop kernel into the module. Fails on an inconsistent
    /// kernel, a duplicate name, or after [`Jit::finalize`].
    pub fn add_loop_kernel(
        &mut self,
        kernel: &LoopKernel,
        checking: Checking,
    ) -> Result<KernelId, CodegenError> {
        self.define(Desc::Loop(kernel.clone()), checking, |k, b, ptr, trap, wide| match k {
            Desc::Loop(k) => loops::emit(k, b, ptr, trap, wide),
            Desc::Window(_) => Err("not a loop kernel".into()),
        })
    }

    /// Compiles a window kernel (pooling, resizing, their gradients,
    /// argmax) into the module. Fails on an inconsistent kernel, a
    /// duplicate name, or after [`Jit::finalize`].
    pub fn add_window_kernel(
        &mut self,
        kernel: &WindowKernel,
        checking: Checking,
    ) -> Result<KernelId, CodegenError> {
        self.define(Desc::Window(kernel.clone()), checking, |k, b, ptr, trap, _| match k {
            Desc::Window(k) => window::emit(k, b, ptr, trap),
            Desc::Loop(_) => Err("not a window kernel".into()),
        })
    }

    /// Declares and defines one kernel function with the five-pointer
    /// signature, its body produced by `emit`.
    fn define(
        &mut self,
        desc: Desc,
        checking: Checking,
        emit: impl FnOnce(
            &Desc,
            &mut FunctionBuilder,
            types::Type,
            Option<(FuncRef, u32)>,
            &[(UnaryOp, FuncRef)],
        ) -> Result<(), String>,
    ) -> Result<KernelId, CodegenError> {
        let err = |m: String| CodegenError { kernel: desc.name().to_string(), message: m };
        if self.finalized {
            return Err(err("the JIT is already finalized".into()));
        }
        let ptr = self.module.target_config().pointer_type();
        if ptr != types::I64 {
            return Err(err(format!("unsupported pointer type {ptr}")));
        }
        let mut sig = self.module.make_signature();
        for _ in 0..5 {
            sig.params.push(AbiParam::new(ptr));
        }
        let func = self
            .module
            .declare_function(desc.name(), Linkage::Local, &sig)
            .map_err(|e| err(e.to_string()))?;
        // A name declared before returns its function again.
        if self.declared.contains(&func) {
            let e = cranelift_module::ModuleError::DuplicateDefinition(desc.name().to_string());
            return Err(err(format!("{e:?}")));
        }
        let index = self.kernels.len();
        // An unchecked kernel's code depends on its description only.
        let key = (checking == Checking::Unchecked).then(|| desc.key());
        let same = key.as_ref().and_then(|key| {
            let defined = self.compiled.get(key)?;
            defined.iter().copied().find(|&i| self.kernels[i].desc.same_code(&desc))
        });
        if let Some(same) = same {
            let code = self.kernels[same].code;
            let clif = Clif::Same { kernel: same, name: func.as_u32() };
            self.declared.insert(func);
            self.kernels.push(Defined { desc, checking, code, clif });
            return Ok(KernelId(index));
        }
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, func.as_u32());
        {
            let trap = match checking {
                Checking::Checked => {
                    Some((self.module.declare_func_in_func(self.trap, &mut self.ctx.func), index as u32))
                }
                Checking::Unchecked => None,
            };
            // Only the array functions the kernel may call are imported.
            let mut wide = Vec::new();
            if let (true, Desc::Loop(k)) = (self.use_wide, &desc) {
                for &(op, id) in &self.wide {
                    if k.body.iter().any(|e| matches!(e, Expr::Unary(o, _) if *o == op)) {
                        wide.push((op, self.module.declare_func_in_func(id, &mut self.ctx.func)));
                    }
                }
            }
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            emit(&desc, &mut b, ptr, trap, &wide).map_err(err)?;
            b.finalize(self.module.target_config());
        }
        let clif = Clif::Own(Box::new(self.ctx.func.clone()));
        let start = Instant::now();
        self.module.define_function(func, &mut self.ctx).map_err(|e| err(format!("{e:?}")))?;
        self.compile_time += start.elapsed();
        self.declared.insert(func);
        if let Some(key) = key {
            self.compiled.entry(key).or_default().push(index);
        }
        self.kernels.push(Defined { desc, checking, code: func, clif });
        Ok(KernelId(index))
    }

    /// Whether loop kernels compiled from now on may evaluate `exp`,
    /// `sigmoid`, `tanh` and `erf` in strips by [`super::wide`]'s array functions
    /// (on by default where the host has them; the same bits either way,
    /// except sums along a row, which strips add per strip). Set it before
    /// adding kernels: kernels with the same description share their code.
    pub fn set_wide(&mut self, on: bool) {
        self.use_wide = on;
    }

    /// The instruction set of the array functions kernels call, if any.
    pub fn wide_isa(&self) -> Option<&'static str> {
        if self.use_wide && !self.wide.is_empty() {
            wide::host().map(|f| f.isa)
        } else {
            None
        }
    }

    /// Links every defined kernel and makes it executable. Call once, after
    /// the last kernel is added.
    pub fn finalize(&mut self) -> Result<(), CodegenError> {
        if !self.finalized {
            let start = Instant::now();
            self.module
                .finalize_definitions()
                .map_err(|e| CodegenError { kernel: String::new(), message: e.to_string() })?;
            self.finalize_time = start.elapsed();
            self.finalized = true;
        }
        Ok(())
    }

    /// The time spent compiling the kernels to machine code, and making
    /// the code executable ([`Jit::finalize`]).
    pub fn compile_times(&self) -> (Duration, Duration) {
        (self.compile_time, self.finalize_time)
    }

    /// The finalized entry point of kernel `id`, checked to be defined.
    fn entry(&self, id: KernelId) -> Result<(&Defined, *const u8), CodegenError> {
        let d = self.kernels.get(id.0).ok_or_else(|| CodegenError {
            kernel: String::new(),
            message: format!("no kernel number {}", id.0),
        })?;
        if !self.finalized {
            return Err(CodegenError {
                kernel: d.desc.name().to_string(),
                message: "the JIT is not finalized".into(),
            });
        }
        Ok((d, self.module.get_finalized_function(d.code)))
    }

    /// The callable loop kernel; fails before [`Jit::finalize`], for an id
    /// of another `Jit` or for a window kernel.
    pub fn loop_fn(&self, id: KernelId) -> Result<LoopFn<'_>, CodegenError> {
        let (d, code) = self.entry(id)?;
        let Desc::Loop(kernel) = &d.desc else {
            return Err(CodegenError {
                kernel: d.desc.name().to_string(),
                message: "not a loop kernel".into(),
            });
        };
        // SAFETY: `code` is the entry of a finalized function that was
        // declared with exactly five pointer-sized parameters and no results
        // in the host's default (System V / C) calling convention, which is
        // `LoopFnPtr`'s ABI.
        let ptr = unsafe { std::mem::transmute::<*const u8, LoopFnPtr>(code) };
        Ok(LoopFn { kernel, checking: d.checking, index: id.0, ptr, _jit: PhantomData })
    }

    /// The callable window kernel; fails before [`Jit::finalize`], for an id
    /// of another `Jit` or for a loop kernel.
    pub fn window_fn(&self, id: KernelId) -> Result<WindowFn<'_>, CodegenError> {
        let (d, code) = self.entry(id)?;
        let Desc::Window(kernel) = &d.desc else {
            return Err(CodegenError {
                kernel: d.desc.name().to_string(),
                message: "not a window kernel".into(),
            });
        };
        // SAFETY: as in `loop_fn`: the function was declared with five
        // pointer-sized parameters and no results in the host C convention.
        let ptr = unsafe { std::mem::transmute::<*const u8, LoopFnPtr>(code) };
        Ok(WindowFn { kernel, checking: d.checking, index: id.0, ptr, _jit: PhantomData })
    }

    /// The Cranelift IR text of every kernel, as (name, text), in definition
    /// order (the IR before Cranelift's own optimisations).
    pub fn clif_text(&self) -> Vec<(String, String)> {
        let text = |d: &Defined| match &d.clif {
            Clif::Own(f) => f.display().to_string(),
            Clif::Same { kernel, name } => {
                let Clif::Own(f) = &self.kernels[*kernel].clif else { return String::new() };
                // The same text under the kernel's own function name.
                let mut f = f.clone();
                f.name = UserFuncName::user(0, *name);
                f.display().to_string()
            }
        };
        self.kernels.iter().map(|d| (d.desc.name().to_string(), text(d))).collect()
    }

    /// A readable message for a trap recorded by one of this JIT's kernels.
    pub fn describe_trap(&self, trap: &KernelTrap) -> String {
        let Some(d) = self.kernels.get(trap.kernel) else {
            return format!("unknown kernel {}: out-of-bounds access", trap.kernel);
        };
        let n_in = d.desc.inputs();
        let buffer = if trap.buffer < n_in {
            format!("input {}", trap.buffer)
        } else {
            format!("output {}", trap.buffer - n_in)
        };
        format!(
            "kernel `{}`: out-of-bounds access to {buffer} at element {} (buffer length {})",
            d.desc.name(),
            trap.index,
            trap.len
        )
    }
}

impl Drop for Jit {
    fn drop(&mut self) {
        // SAFETY: `module` is taken exactly once, here, and not used again.
        // Freeing its memory invalidates the kernels' code: every typed
        // handle (`LoopFn`, `WindowFn`) borrows the `Jit` and so cannot
        // outlive it, and raw entry points are documented as valid only
        // while the `Jit` lives (runtimes keep the `Jit` beside the calls
        // that use it and fetch entry points from it per call), so no
        // kernel is running or can be called afterwards.
        unsafe { std::mem::ManuallyDrop::take(&mut self.module).free_memory() };
    }
}

/// A compiled loop kernel, valid while its [`Jit`] lives. The raw pointer is
/// `Send + Sync`: the kernel may run on many threads at once on disjoint
/// index ranges.
#[derive(Clone, Copy)]
pub struct LoopFn<'jit> {
    kernel: &'jit LoopKernel,
    checking: Checking,
    index: usize,
    ptr: LoopFnPtr,
    _jit: PhantomData<&'jit ()>,
}

impl fmt::Debug for LoopFn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopFn").field("kernel", &self.kernel.name).field("checking", &self.checking).finish()
    }
}

impl LoopFn<'_> {
    /// The kernel this function computes.
    pub fn kernel(&self) -> &LoopKernel {
        self.kernel
    }

    /// The raw machine-code entry point, for runtimes that manage buffers
    /// themselves. Calling it is sound when the argument arrays hold one
    /// valid pointer per input and output, every input pointer is valid for
    /// reads over [`LoopKernel::input_extent`], every output pointer for
    /// reads and writes over [`LoopKernel::output_extent`] (offsets relative
    /// to the pointer), no output overlaps another output or an input other
    /// than an in-place update (see [`LoopKernel::outputs`]), calls that
    /// reduce into the same elements do not run concurrently,
    /// `start ≤ end ≤ elements()`, and (checked kernels) `lens` points to one
    /// length per input and output.
    pub fn raw(&self) -> LoopFnPtr {
        self.ptr
    }

    /// Runs iterations `start..end` on the given buffers after checking that
    /// they are large enough for the whole iteration space (unchecked
    /// kernels) or with the kernel checking every access itself (checked
    /// kernels). Buffers of [`super::loops::Elem::I32`] hold the bits of
    /// their i32 elements (`f32::from_bits(x as u32)`).
    pub fn run(
        &self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        start: usize,
        end: usize,
    ) -> Result<(), String> {
        let k = self.kernel;
        let name = &k.name;
        if inputs.len() != k.inputs.len() || outputs.len() != k.outputs.len() {
            return Err(format!(
                "kernel `{name}` takes {} inputs and {} outputs, got {} and {}",
                k.inputs.len(),
                k.outputs.len(),
                inputs.len(),
                outputs.len()
            ));
        }
        if start > end || end > k.elements() {
            return Err(format!("kernel `{name}`: range {start}..{end} is not within 0..{}", k.elements()));
        }
        if self.checking == Checking::Unchecked {
            let fits = |extent: Option<(isize, isize)>, len: usize| match extent {
                Some((lo, hi)) => lo >= 0 && (hi as usize) < len,
                None => true,
            };
            for (b, buf) in inputs.iter().enumerate() {
                if !fits(k.input_extent(b), buf.len()) {
                    let (lo, hi) = k.input_extent(b).unwrap_or_default();
                    return Err(format!(
                        "kernel `{name}`: input {b} is read at elements {lo}..={hi} but has {}",
                        buf.len()
                    ));
                }
            }
            for (o, buf) in outputs.iter().enumerate() {
                if !fits(k.output_extent(o), buf.len()) {
                    let (lo, hi) = k.output_extent(o).unwrap_or_default();
                    return Err(format!(
                        "kernel `{name}`: output {o} is written at elements {lo}..={hi} but has {}",
                        buf.len()
                    ));
                }
            }
        }
        let in_ptrs: Vec<*const f32> = inputs.iter().map(|b| b.as_ptr()).collect();
        let out_ptrs: Vec<*mut f32> = outputs.iter_mut().map(|b| b.as_mut_ptr()).collect();
        let lens: Vec<usize> =
            inputs.iter().map(|b| b.len()).chain(outputs.iter().map(|b| b.len())).collect();
        take_trap();
        // SAFETY: the pointer arrays hold one pointer per input and output
        // (checked above) and outlive the call. Unchecked kernels: every
        // input is readable over its extent and every output readable and
        // writable over its extent, both over the whole iteration space
        // (checked above), and the generated code only accesses elements
        // inside those extents, for indices in `start..end ⊆ 0..elements`.
        // Checked kernels: `lens` holds the true length of every buffer and
        // the code tests each access against it before performing it.
        // Outputs are distinct `&mut` slices and so alias neither each other
        // nor the inputs.
        unsafe { (self.ptr)(in_ptrs.as_ptr(), out_ptrs.as_ptr(), start, end, lens.as_ptr()) };
        match take_trap() {
            Some(t) if t.kernel == self.index => Err(format!(
                "kernel `{name}`: out-of-bounds access to {} at element {} (buffer length {})",
                if t.buffer < k.inputs.len() {
                    format!("input {}", t.buffer)
                } else {
                    format!("output {}", t.buffer - k.inputs.len())
                },
                t.index,
                t.len
            )),
            Some(t) => Err(format!("kernel `{name}`: unexpected trap record {t:?}")),
            None => Ok(()),
        }
    }
}

/// A compiled window kernel, valid while its [`Jit`] lives; like
/// [`LoopFn`] it may run on many threads at once on disjoint ranges.
#[derive(Clone, Copy)]
pub struct WindowFn<'jit> {
    kernel: &'jit WindowKernel,
    checking: Checking,
    index: usize,
    ptr: LoopFnPtr,
    _jit: PhantomData<&'jit ()>,
}

impl fmt::Debug for WindowFn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowFn")
            .field("kernel", &self.kernel.name)
            .field("checking", &self.checking)
            .finish()
    }
}

impl WindowFn<'_> {
    /// The kernel this function computes.
    pub fn kernel(&self) -> &WindowKernel {
        self.kernel
    }

    /// The raw entry point. Calling it is sound when the argument arrays
    /// hold one valid pointer per input and output, input `i` is readable
    /// for [`WindowKernel::input_len`]`(i)` elements, the output writable for
    /// [`WindowKernel::output_len`] elements, `start ≤ end ≤`
    /// [`WindowKernel::rows`], and (checked kernels) `lens` points to one
    /// length per input and output.
    pub fn raw(&self) -> LoopFnPtr {
        self.ptr
    }

    /// Computes rows `start..end` (along the output's first axis) after
    /// checking every buffer's length.
    pub fn run(&self, inputs: &[&[f32]], output: &mut [f32], start: usize, end: usize) -> Result<(), String> {
        let k = self.kernel;
        let name = &k.name;
        if inputs.len() != k.inputs.len() {
            return Err(format!("kernel `{name}` takes {} inputs, got {}", k.inputs.len(), inputs.len()));
        }
        if start > end || end > k.rows() {
            return Err(format!("kernel `{name}`: range {start}..{end} is not within 0..{}", k.rows()));
        }
        if self.checking == Checking::Unchecked {
            for (i, buf) in inputs.iter().enumerate() {
                if buf.len() < k.input_len(i) {
                    return Err(format!(
                        "kernel `{name}`: input {i} has {} elements, needs {}",
                        buf.len(),
                        k.input_len(i)
                    ));
                }
            }
            if output.len() < k.output_len() {
                return Err(format!(
                    "kernel `{name}`: the output has {} elements, needs {}",
                    output.len(),
                    k.output_len()
                ));
            }
        }
        let in_ptrs: Vec<*const f32> = inputs.iter().map(|b| b.as_ptr()).collect();
        let out_ptrs: [*mut f32; 1] = [output.as_mut_ptr()];
        let lens: Vec<usize> = inputs.iter().map(|b| b.len()).chain([output.len()]).collect();
        take_trap();
        // SAFETY: one pointer per input and the output (checked above), all
        // outliving the call. Unchecked kernels: every buffer holds at least
        // the elements the kernel's shapes imply (checked above) and the
        // generated code accesses only those, for rows in `start..end ⊆
        // 0..rows`. Checked kernels test every access against `lens`. The
        // output is `&mut` and so does not alias the inputs.
        unsafe { (self.ptr)(in_ptrs.as_ptr(), out_ptrs.as_ptr(), start, end, lens.as_ptr()) };
        match take_trap() {
            Some(t) if t.kernel == self.index => Err(format!(
                "kernel `{name}`: out-of-bounds access to {} at element {} (buffer length {})",
                if t.buffer < k.inputs.len() { format!("input {}", t.buffer) } else { "the output".into() },
                t.index,
                t.len
            )),
            Some(t) => Err(format!("kernel `{name}`: unexpected trap record {t:?}")),
            None => Ok(()),
        }
    }
}

/// `fn(x: *const f32, y: *mut f32, n: usize)`: `y[i] = f(x[i])`.
#[cfg(test)]
pub(crate) type MapFnPtr = unsafe extern "C" fn(*const f32, *mut f32, usize);

#[cfg(test)]
impl Jit {
    /// Compiles `y[i] = f(x[i])` for `i < n`: f32x4 while four or more
    /// elements remain, then scalar; for testing [`super::approx`] directly.
    pub(crate) fn add_map(
        &mut self,
        name: &str,
        f: fn(&mut super::approx::Emit, cranelift_codegen::ir::Value) -> cranelift_codegen::ir::Value,
    ) -> Result<FuncId, CodegenError> {
        use cranelift_codegen::ir::condcodes::IntCC;
        use cranelift_codegen::ir::{InstBuilder, MemFlagsData};

        use super::approx::{Emit, Lanes};
        let err = |m: String| CodegenError { kernel: name.to_string(), message: m };
        let mut sig = self.module.make_signature();
        for _ in 0..3 {
            sig.params.push(AbiParam::new(types::I64));
        }
        let func =
            self.module.declare_function(name, Linkage::Local, &sig).map_err(|e| err(e.to_string()))?;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, func.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let p = b.block_params(entry).to_vec();
            let (x, y, n) = (b.declare_var(types::I64), b.declare_var(types::I64), b.declare_var(types::I64));
            b.def_var(x, p[0]);
            b.def_var(y, p[1]);
            b.def_var(n, p[2]);
            let flags = MemFlagsData::new().with_notrap();
            for lanes in [Lanes::X4, Lanes::SCALAR] {
                let width: i64 = if lanes.is_vector() { 4 } else { 1 };
                let (head, body, after) = (b.create_block(), b.create_block(), b.create_block());
                b.ins().jump(head, &[]);
                b.switch_to_block(head);
                let nv = b.use_var(n);
                let more = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, nv, width);
                b.ins().brif(more, body, &[], after, &[]);
                b.switch_to_block(body);
                let (xv, yv, nv) = (b.use_var(x), b.use_var(y), b.use_var(n));
                let v = b.ins().load(lanes.float, flags, xv, 0);
                let r = f(&mut Emit { b: &mut b, lanes }, v);
                b.ins().store(flags, r, yv, 0);
                let xn = b.ins().iadd_imm_s(xv, 4 * width);
                let yn = b.ins().iadd_imm_s(yv, 4 * width);
                let nn = b.ins().iadd_imm_s(nv, -width);
                b.def_var(x, xn);
                b.def_var(y, yn);
                b.def_var(n, nn);
                b.ins().jump(head, &[]);
                b.switch_to_block(after);
            }
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        self.module.define_function(func, &mut self.ctx).map_err(|e| err(format!("{e:?}")))?;
        Ok(func)
    }

    /// The entry point of a function made by [`Jit::add_map`] (after
    /// [`Jit::finalize`]).
    pub(crate) fn map_fn(&self, func: FuncId) -> MapFnPtr {
        assert!(self.finalized, "map_fn before finalize");
        let code = self.module.get_finalized_function(func);
        // SAFETY: `func` was declared by `add_map` with three pointer-sized
        // parameters and no results in the host C calling convention, and
        // the module is finalized, so `code` is executable with that ABI.
        unsafe { std::mem::transmute::<*const u8, MapFnPtr>(code) }
    }
}
