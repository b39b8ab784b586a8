//! Bounds checks of checked kernels, shared by loop and window kernels.
//!
//! Before an access, a checked kernel compares the accessed elements with
//! its buffer's length (from the `lens` argument); out of bounds it calls
//! the trap function with (kernel, buffer, element, length) and leaves the
//! kernel through its exit block, so the access never happens.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, FuncRef, InstBuilder, Type, Value};
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
