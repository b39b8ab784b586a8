//! What loop and window kernels share: the function prologue and the
//! bounds checks of checked kernels.
//!
//! Before an access, a checked kernel compares the accessed elements with
//! its buffer's length (from the `lens` argument); out of bounds it calls
//! the trap function with (kernel, buffer, element, length) and leaves the
//! kernel through its exit block, so the access never happens.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, FuncRef, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// Bounds-checking state of a checked kernel.
pub(crate) struct Checks {
    pub trap: FuncRef,
    pub kernel_index: u32,
    /// Per buffer (inputs, then outputs): element count.
    pub lens: Vec<Value>,
}

/// One access to check: `width` elements of buffer `buf` (whose first
/// element is at `base`) starting at byte address `at`.
pub(crate) struct Site {
    pub buf: usize,
    pub base: Value,
    pub at: Value,
    pub width: i64,
}

impl Checks {
    /// Emits the check of `site`; `ptr` is the pointer type and `exit` the
    /// kernel's exit block.
    pub(crate) fn emit(&self, b: &mut FunctionBuilder, ptr: Type, exit: Block, site: Site) {
        let len = self.lens[site.buf];
        let byte_off = b.ins().isub(site.at, site.base);
        let elem = b.ins().sshr_imm_u(byte_off, 2);
        let limit = b.ins().iadd_imm_s(len, -site.width);
        let not_neg = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, byte_off, 0);
        let in_range = b.ins().icmp(IntCC::SignedLessThanOrEqual, elem, limit);
        let ok = b.ins().band(not_neg, in_range);
        let fail = b.create_block();
        let cont = b.create_block();
        b.ins().brif(ok, cont, &[], fail, &[]);
        b.switch_to_block(fail);
        b.set_cold_block(fail);
        let kidx = b.ins().iconst(ptr, i64::from(self.kernel_index));
        let bidx = b.ins().iconst(ptr, site.buf as i64);
        b.ins().call(self.trap, &[kidx, bidx, elem, len]);
        b.ins().jump(exit, &[]);
        b.switch_to_block(cont);
    }
}

/// The common start of every kernel function
/// `fn(inputs, outputs, start, end, lens)`: the entry block, the buffer base
/// pointers (inputs, then outputs), the index range, the exit block and, for
/// checked kernels, the buffer lengths.
pub(crate) struct Frame {
    pub start: Value,
    pub end: Value,
    pub exit: Block,
    pub bases: Vec<Value>,
    pub checks: Option<Checks>,
}

/// Creates the entry block of a kernel with `inputs` and `outputs` buffers
/// and loads its arguments; `trap` is the trap function and kernel index of
/// a checked kernel.
pub(crate) fn enter(
    b: &mut FunctionBuilder,
    ptr: Type,
    inputs: usize,
    outputs: usize,
    trap: Option<(FuncRef, u32)>,
) -> Frame {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let (ins_pp, outs_pp, start, end, lens_p) = (params[0], params[1], params[2], params[3], params[4]);
    let exit = b.create_block();
    let table = MemFlagsData::new().with_notrap().with_readonly();
    let word = ptr.bytes() as i32;
    let mut bases: Vec<Value> =
        (0..inputs).map(|i| b.ins().load(ptr, table, ins_pp, word * i as i32)).collect();
    for o in 0..outputs {
        bases.push(b.ins().load(ptr, table, outs_pp, word * o as i32));
    }
    let checks = trap.map(|(trap, kernel_index)| Checks {
        trap,
        kernel_index,
        lens: (0..inputs + outputs).map(|i| b.ins().load(ptr, table, lens_p, word * i as i32)).collect(),
    });
    Frame { start, end, exit, bases, checks }
}
