//! The emitter the window kernels share: the function's base pointers with
//! checked loads and stores ([`Gen`]), counted loops that advance pointer
//! variables ([`Counted`]), loops over the channel planes of a row range
//! ([`for_planes`]) and the filling of output rows ([`zero_rows`],
//! [`fill_rows`]).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, Block, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};

use crate::codegen::approx::{Emit, Lanes};
use crate::codegen::checks::{Checks, Site};

/// Everything the emitters share.
pub(super) struct Gen {
    pub ptr: Type,
    pub n_inputs: usize,
    /// Base pointers: inputs, then the output.
    pub bases: Vec<Value>,
    pub checks: Option<Checks>,
    /// The block a failed bounds check jumps to (returns at once).
    pub exit: Block,
}

impl Gen {
    /// The buffer number of the output.
    pub fn out(&self) -> usize {
        self.n_inputs
    }

    /// In checked mode, verifies that `width` elements at `addr + offset`
    /// lie inside buffer `buf`; on failure calls the trap function and
    /// returns from the kernel.
    fn check(&self, b: &mut FunctionBuilder, buf: usize, addr: Value, offset: i32, width: i64) {
        let Some(checks) = &self.checks else { return };
        let at = b.ins().iadd_imm_s(addr, i64::from(offset));
        let site = Site { buf, base: self.bases[buf], at, width };
        checks.emit(b, self.ptr, self.exit, site);
    }

    /// Loads a value of type `ty` (f32, i32 or their x4 vectors) from
    /// buffer `buf` at `addr + offset`, checked in checked mode.
    pub fn load(&self, b: &mut FunctionBuilder, ty: Type, buf: usize, addr: Value, offset: i32) -> Value {
        self.check(b, buf, addr, offset, i64::from(ty.bytes() / 4));
        let mut flags = MemFlagsData::new().with_notrap();
        if buf < self.n_inputs {
            flags = flags.with_readonly();
            // In checked mode loads must stay below their bounds check.
            if self.checks.is_none() {
                flags = flags.with_can_move();
            }
        }
        b.ins().load(ty, flags, addr, offset)
    }

    /// Like [`Gen::load`] for an address computed from loaded data (an
    /// index) and tested before: the load never moves above that test.
    pub fn load_guarded(
        &self,
        b: &mut FunctionBuilder,
        ty: Type,
        buf: usize,
        addr: Value,
        offset: i32,
    ) -> Value {
        self.check(b, buf, addr, offset, i64::from(ty.bytes() / 4));
        let mut flags = MemFlagsData::new().with_notrap();
        if buf < self.n_inputs {
            flags = flags.with_readonly();
        }
        b.ins().load(ty, flags, addr, offset)
    }

    /// Loads input tap values: one f32, four consecutive ones (`stride` 1),
    /// or for `stride` 2 the four elements at `addr + offset + 0, 2, 4, 6`,
    /// from two overlapping vectors (elements 0..4 and 3..7, so no element
    /// past the last one needed is read) combined by one shufps.
    pub fn load_taps(
        &self,
        b: &mut FunctionBuilder,
        lanes: Lanes,
        stride: usize,
        addr: Value,
        offset: i32,
    ) -> Value {
        if !lanes.is_vector() || stride == 1 {
            return self.load(b, lanes.float, 0, addr, offset);
        }
        let lo = self.load(b, types::I8X16, 0, addr, offset);
        let hi = self.load(b, types::I8X16, 0, addr, offset + 12);
        // Lanes 0 and 2 of `lo`, lanes 1 and 3 of `hi`.
        let bytes: Vec<u8> = [0u8, 2, 5, 7].iter().flat_map(|&l| (0..4).map(move |i| l * 4 + i)).collect();
        let mask = b.func.dfg.immediates.push(bytes.as_slice().into());
        let v = b.ins().shuffle(lo, hi, mask);
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        b.ins().bitcast(types::F32X4, flags, v)
    }

    /// Stores `v` to the output at `addr + offset`, checked in checked mode.
    pub fn store(&self, b: &mut FunctionBuilder, v: Value, addr: Value, offset: i32) {
        let lanes = b.func.dfg.value_type(v).lane_count();
        self.check(b, self.out(), addr, offset, i64::from(lanes));
        b.ins().store(MemFlagsData::new().with_notrap(), v, addr, offset);
    }

    /// A pointer variable holding `v`.
    pub fn var(&self, b: &mut FunctionBuilder, v: Value) -> Variable {
        let var = b.declare_var(self.ptr);
        b.def_var(var, v);
        var
    }
}

/// A loop that runs while `rem ≥ unit`, subtracting `unit` and advancing
/// pointer variables by constant steps after each iteration.
pub(super) struct Counted {
    head: Block,
    after: Block,
    rem: Variable,
    unit: i64,
}

impl Counted {
    /// Emits the loop test and leaves the builder in the loop body.
    pub fn begin(b: &mut FunctionBuilder, rem: Variable, unit: i64) -> Counted {
        let (head, body, after) = (b.create_block(), b.create_block(), b.create_block());
        b.ins().jump(head, &[]);
        b.switch_to_block(head);
        let r = b.use_var(rem);
        let enough = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, r, unit);
        b.ins().brif(enough, body, &[], after, &[]);
        b.switch_to_block(body);
        Counted { head, after, rem, unit }
    }

    /// Closes the body and leaves the builder after the loop.
    pub fn end(self, b: &mut FunctionBuilder, steps: &[(Variable, i64)]) {
        for &(var, step) in steps {
            let v = b.use_var(var);
            let v = b.ins().iadd_imm_s(v, step);
            b.def_var(var, v);
        }
        let r = b.use_var(self.rem);
        let r = b.ins().iadd_imm_s(r, -self.unit);
        b.def_var(self.rem, r);
        b.ins().jump(self.head, &[]);
        b.switch_to_block(self.after);
    }
}

/// Loops over the channel planes of rows `start..end`: `per_row` planes per
/// row; for each `(buffer, plane_bytes)` a pointer starting at that buffer's
/// first plane of row `start` and advancing by `plane_bytes` per plane.
/// `body` gets the plane pointers.
pub(super) fn for_planes(
    g: &Gen,
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    per_row: usize,
    bufs: &[(usize, i64)],
    body: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) {
    let rows = b.ins().isub(end, start);
    let planes = b.ins().imul_imm_s(rows, per_row as i64);
    let first = b.ins().imul_imm_s(start, per_row as i64);
    let vars: Vec<Variable> = bufs
        .iter()
        .map(|&(buf, bytes)| {
            let off = b.ins().imul_imm_s(first, bytes);
            let p = b.ins().iadd(g.bases[buf], off);
            g.var(b, p)
        })
        .collect();
    let rem = g.var(b, planes);
    let lp = Counted::begin(b, rem, 1);
    let ptrs: Vec<Value> = vars.iter().map(|&v| b.use_var(v)).collect();
    body(b, &ptrs);
    let steps: Vec<(Variable, i64)> = vars.iter().copied().zip(bufs.iter().map(|&(_, s)| s)).collect();
    lp.end(b, &steps);
}

/// Sets output elements of rows `start..end` (`row_len` elements each) to 0.
pub(super) fn zero_rows(g: &Gen, b: &mut FunctionBuilder, start: Value, end: Value, row_len: usize) {
    fill_rows(g, b, (start, end), row_len, 0);
}

/// Sets output elements of rows `start..end` (`row_len` elements each) to
/// the 32-bit pattern `bits` (an f32, or an i32 for integer outputs).
pub(super) fn fill_rows(
    g: &Gen,
    b: &mut FunctionBuilder,
    (start, end): (Value, Value),
    row_len: usize,
    bits: u32,
) {
    let rows = b.ins().isub(end, start);
    let count = b.ins().imul_imm_s(rows, row_len as i64);
    let first = b.ins().imul_imm_s(start, row_len as i64 * 4);
    let p = b.ins().iadd(g.bases[g.out()], first);
    let p = g.var(b, p);
    let rem = g.var(b, count);
    for (unit, lanes) in [(16, Lanes::X4), (4, Lanes::X4), (1, Lanes::SCALAR)] {
        let lp = Counted::begin(b, rem, unit);
        let value = Emit { b: &mut *b, lanes }.f(f32::from_bits(bits));
        let at = b.use_var(p);
        for u in 0..unit / i64::from(lanes.float.lane_count()) {
            g.store(b, value, at, (u * 16) as i32);
        }
        lp.end(b, &[(p, unit * 4)]);
    }
}
