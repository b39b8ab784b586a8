//! Inline polynomial approximations of the transcendental functions, emitted
//! as Cranelift IR for either one f32 or an f32x4 vector.
//!
//! Cranelift has no `exp`, `log` or `tanh` instruction, and calling Rust's
//! scalar functions per element is several times slower than evaluating a
//! polynomial in vector registers. Every function here is written once over
//! [`Emit`], which hides whether the lanes are a scalar or a vector, so the
//! scalar tail of a loop computes bit-for-bit what the vector body computes.
//!
//! Error bounds, asserted by the tests of this module against f64 references
//! on dense sweeps (a grid of step 2^-9..2^-13 over each function's
//! interesting range, 512 values in every binade of both signs including
//! subnormals, and the boundary values). "rel." is relative to the exact
//! value where it is a normal f32; results below 2^-126 are held to an
//! absolute bound of 2^-149 (one subnormal ulp). Measured maxima in brackets.
//!
//! | function | bound | special values |
//! |---|---|---|
//! | [`exp`] | rel. 2.5e-7 [8.0e-8] | exp(-Inf)=0, exp(+Inf)=+Inf, exp(x>88.73)=+Inf, gradual underflow to 0 at x<-103.98, NaN→NaN |
//! | [`log`] | rel. 2.5e-7 [7.7e-8] | log(±0)=-Inf, log(x<0)=NaN, log(+Inf)=+Inf, subnormal inputs at full accuracy, NaN→NaN |
//! | [`tanh`] | rel. 4e-7 [1.3e-7] | odd (tanh(-0)=-0), ±1 for |x|≥9.1 and ±Inf, NaN→NaN |
//! | [`sigmoid`] | rel. 4e-7 [1.7e-7] | sigmoid(-Inf)=0, sigmoid(+Inf)=1, sigmoid(±0)=0.5, tiny results keep relative accuracy (down to subnormals), NaN→NaN |
//! | [`erf`] | rel. 4e-7 [2.1e-7] | odd (erf(-0)=-0), ±1 for |x|≥4 and ±Inf, NaN→NaN |
//! | [`softplus`] | rel. 5e-7 [2.1e-7] | softplus(-Inf)=0, softplus(+Inf)=+Inf, x for large x, ≈e^x with relative accuracy for very negative x, NaN→NaN |

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, ConstantData, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// The lane shape of the values being computed: one f32 or four.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    /// The float type (`f32` or `f32x4`).
    pub float: Type,
    /// The integer type of the same shape (`i32` or `i32x4`).
    pub int: Type,
}

impl Lanes {
    /// One f32 per value.
    pub const SCALAR: Lanes = Lanes { float: types::F32, int: types::I32 };
    /// Four f32 lanes per value (128-bit vectors).
    pub const X4: Lanes = Lanes { float: types::F32X4, int: types::I32X4 };

    /// Whether these are vector lanes.
    pub fn is_vector(self) -> bool {
        self.float.is_vector()
    }
}

/// A comparison result: `i8` (0/1) for scalars, an `i32x4` all-ones/zero lane
/// mask for vectors. Only [`Emit`] methods consume it.
#[derive(Clone, Copy, Debug)]
pub struct Mask(pub Value);

/// An instruction emitter for one lane shape. All helpers produce values of
/// `lanes.float` unless they say otherwise.
pub struct Emit<'a, 'b> {
    /// The function being built.
    pub b: &'a mut FunctionBuilder<'b>,
    /// The lane shape of every value handled.
    pub lanes: Lanes,
}

impl Emit<'_, '_> {
    /// A float constant in every lane.
    pub fn f(&mut self, v: f32) -> Value {
        if self.lanes.is_vector() {
            let bytes: Vec<u8> = (0..4).flat_map(|_| v.to_le_bytes()).collect();
            let c = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
            self.b.ins().vconst(self.lanes.float, c)
        } else {
            self.b.ins().f32const(v)
        }
    }

    /// An i32 constant in every lane.
    pub fn i(&mut self, v: i32) -> Value {
        if self.lanes.is_vector() {
            let bytes: Vec<u8> = (0..4).flat_map(|_| v.to_le_bytes()).collect();
            let c = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
            self.b.ins().vconst(self.lanes.int, c)
        } else {
            self.b.ins().iconst(types::I32, i64::from(v))
        }
    }

    /// `a * b + c` with one rounding.
    pub fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.b.ins().fma(a, b, c)
    }

    /// `a * b + c` with a constant `c`.
    fn fma_c(&mut self, a: Value, b: Value, c: f32) -> Value {
        let c = self.f(c);
        self.fma(a, b, c)
    }

    /// Horner evaluation of `coeffs[0] * x^(n-1) + … + coeffs[n-1]` with fma.
    pub fn horner(&mut self, x: Value, coeffs: &[f32]) -> Value {
        let mut r = self.f(coeffs[0]);
        for &c in &coeffs[1..] {
            r = self.fma_c(r, x, c);
        }
        r
    }

    /// A float comparison.
    pub fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Mask {
        Mask(self.b.ins().fcmp(cc, a, b))
    }

    /// Both masks.
    pub fn and(&mut self, a: Mask, b: Mask) -> Mask {
        Mask(self.b.ins().band(a.0, b.0))
    }

    /// Either mask.
    pub fn or(&mut self, a: Mask, b: Mask) -> Mask {
        Mask(self.b.ins().bor(a.0, b.0))
    }

    /// `a` where the mask is set, else `b` (per lane).
    pub fn select(&mut self, m: Mask, a: Value, b: Value) -> Value {
        if self.lanes.is_vector() {
            let mf = self.b.ins().bitcast(self.lanes.float, MemFlagsData::new(), m.0);
            self.b.ins().bitselect(mf, a, b)
        } else {
            self.b.ins().select(m.0, a, b)
        }
    }

    /// 1.0 where the mask is set, else 0.0.
    pub fn mask_to_float(&mut self, m: Mask) -> Value {
        let one = self.f(1.0);
        if self.lanes.is_vector() {
            let mf = self.b.ins().bitcast(self.lanes.float, MemFlagsData::new(), m.0);
            self.b.ins().band(mf, one)
        } else {
            let zero = self.f(0.0);
            self.b.ins().select(m.0, one, zero)
        }
    }

    /// The float's bits as an integer of the same shape.
    fn bits_of(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.lanes.int, MemFlagsData::new(), x)
    }

    /// An integer's bits as a float of the same shape.
    fn float_of(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.lanes.float, MemFlagsData::new(), x)
    }

    /// `mag` with the sign bit of `sign` (bit operations: `fcopysign` has no
    /// f32x4 lowering on x86-64).
    pub fn copysign(&mut self, mag: Value, sign: Value) -> Value {
        let m = self.bits_of(mag);
        let s = self.bits_of(sign);
        let abs_mask = self.i(0x7fff_ffff);
        let sign_mask = self.i(i32::MIN);
        let m = self.b.ins().band(m, abs_mask);
        let s = self.b.ins().band(s, sign_mask);
        let r = self.b.ins().bor(m, s);
        self.float_of(r)
    }

    /// `x` clamped to `[lo, hi]`; NaN stays NaN (no `fmin`/`fmax`, which are
    /// expensive on x86 because of their NaN rules).
    fn clamp(&mut self, x: Value, lo: f32, hi: f32) -> Value {
        let lo_v = self.f(lo);
        let hi_v = self.f(hi);
        let below = self.cmp(FloatCC::LessThan, x, lo_v);
        let x = self.select(below, lo_v, x);
        let above = self.cmp(FloatCC::GreaterThan, x, hi_v);
        self.select(above, hi_v, x)
    }
}

/// e^x. Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2, the Cephes
/// degree-5 polynomial for e^r, and 2^n applied as two factors 2^⌊n/2⌋·2^⌈n/2⌉
/// so that both the overflow boundary and gradual underflow are exact.
/// Inputs are clamped to [-104, 88.8] first (both ends already round to 0
/// and +Inf); NaN propagates.
pub fn exp(e: &mut Emit, x: Value) -> Value {
    let x = e.clamp(x, -104.0, 88.8);
    let log2e = e.f(std::f32::consts::LOG2_E);
    let t = e.b.ins().fmul(x, log2e);
    let n = e.b.ins().nearest(t);
    let neg_hi = e.f(-0.693_359_4);
    let r = e.fma(n, neg_hi, x);
    let neg_lo = e.f(2.121_944_4e-4);
    let r = e.fma(n, neg_lo, r);
    let p = e.horner(r, &[1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5]);
    let r2 = e.b.ins().fmul(r, r);
    let y = e.fma(p, r2, r);
    let one = e.f(1.0);
    let y = e.b.ins().fadd(y, one);
    let ni = e.b.ins().fcvt_to_sint_sat(e.lanes.int, n);
    let n1 = e.b.ins().sshr_imm_u(ni, 1);
    let n2 = e.b.ins().isub(ni, n1);
    let s1 = pow2(e, n1);
    let s2 = pow2(e, n2);
    let y = e.b.ins().fmul(y, s1);
    e.b.ins().fmul(y, s2)
}

/// 2^n for integer lanes n in [-126, 127].
fn pow2(e: &mut Emit, n: Value) -> Value {
    let bias = e.i(127);
    let biased = e.b.ins().iadd(n, bias);
    let bits = e.b.ins().ishl_imm_u(biased, 23);
    e.float_of(bits)
}

/// Natural logarithm (Cephes `logf`): x = m·2^k with m in [√½, √2), the
/// degree-8 polynomial for log(1+f), and k·ln2 added in two parts.
/// Subnormal inputs are scaled by 2^23 first, so they keep full accuracy.
pub fn log(e: &mut Emit, x: Value) -> Value {
    let min_normal = e.f(f32::MIN_POSITIVE);
    let tiny = e.cmp(FloatCC::LessThan, x, min_normal);
    let scale = e.f(8_388_608.0);
    let scaled = e.b.ins().fmul(x, scale);
    let xs = e.select(tiny, scaled, x);
    let k_adj_tiny = e.f(-23.0);
    let k_adj_zero = e.f(0.0);
    let k_adj = e.select(tiny, k_adj_tiny, k_adj_zero);

    let bits = e.bits_of(xs);
    let exp_bits = e.b.ins().ushr_imm_u(bits, 23);
    let k_bias = e.i(126);
    let k_int = e.b.ins().isub(exp_bits, k_bias);
    let mant_mask = e.i(0x007f_ffff);
    let mant = e.b.ins().band(bits, mant_mask);
    let half_bits = e.i(0x3f00_0000);
    let m_bits = e.b.ins().bor(mant, half_bits);
    let m = e.float_of(m_bits); // m in [0.5, 1), xs = m * 2^k
    let k = e.b.ins().fcvt_from_sint(e.lanes.float, k_int);
    let k = e.b.ins().fadd(k, k_adj);

    // m < √½: use 2m - 1 and k - 1; else m - 1.
    let sqrt_half = e.f(std::f32::consts::FRAC_1_SQRT_2);
    let low = e.cmp(FloatCC::LessThan, m, sqrt_half);
    let one = e.f(1.0);
    let m2 = e.b.ins().fadd(m, m);
    let m_sel = e.select(low, m2, m);
    let f = e.b.ins().fsub(m_sel, one);
    let k_minus = e.b.ins().fsub(k, one);
    let k = e.select(low, k_minus, k);

    let z = e.b.ins().fmul(f, f);
    let p = e.horner(
        f,
        &[
            7.037_683_6e-2,
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333e-1,
        ],
    );
    let fz = e.b.ins().fmul(f, z);
    let y = e.b.ins().fmul(p, fz);
    let ln2_lo = e.f(-2.121_944_4e-4);
    let y = e.fma(k, ln2_lo, y);
    let neg_half = e.f(-0.5);
    let y = e.fma(z, neg_half, y);
    let r = e.b.ins().fadd(f, y);
    let ln2_hi = e.f(0.693_359_4);
    let r = e.fma(k, ln2_hi, r);

    // Special values: +Inf → +Inf, ±0 → -Inf, x < 0 or NaN → NaN.
    let inf = e.f(f32::INFINITY);
    let is_inf = e.cmp(FloatCC::Equal, x, inf);
    let r = e.select(is_inf, inf, r);
    let zero = e.f(0.0);
    let is_zero = e.cmp(FloatCC::Equal, x, zero);
    let neg_inf = e.f(f32::NEG_INFINITY);
    let r = e.select(is_zero, neg_inf, r);
    let invalid = e.cmp(FloatCC::UnorderedOrLessThan, x, zero);
    let nan = e.f(f32::NAN);
    e.select(invalid, nan, r)
}

/// Hyperbolic tangent, computed on |x| and given x's sign: for |x| < 0.625
/// the Cephes odd polynomial, otherwise 1 - 2/(e^{2|x|} + 1) (which reaches
/// exactly 1 once e^{2|x|} is large or +Inf).
pub fn tanh(e: &mut Emit, x: Value) -> Value {
    let a = e.b.ins().fabs(x);
    let z = e.b.ins().fmul(a, a);
    let p = e.horner(z, &[-0.0057049887, 0.02063909, -5.373_971_6e-2, 1.333_144_2e-1, -0.3333328]);
    let az = e.b.ins().fmul(a, z);
    let small = e.fma(az, p, a);
    let two_a = e.b.ins().fadd(a, a);
    let ex = exp(e, two_a);
    let one = e.f(1.0);
    let den = e.b.ins().fadd(ex, one);
    let two = e.f(2.0);
    let q = e.b.ins().fdiv(two, den);
    let large = e.b.ins().fsub(one, q);
    let threshold = e.f(0.625);
    let is_small = e.cmp(FloatCC::LessThan, a, threshold);
    let r = e.select(is_small, small, large);
    e.copysign(r, x)
}

/// The logistic function: with t = e^{-|x|} and s = 1/(1+t), s for x ≥ 0 and
/// t·s for x < 0, so no intermediate overflows and tiny results stay
/// relatively accurate.
pub fn sigmoid(e: &mut Emit, x: Value) -> Value {
    let a = e.b.ins().fabs(x);
    let na = e.b.ins().fneg(a);
    let t = exp(e, na);
    let one = e.f(1.0);
    let den = e.b.ins().fadd(one, t);
    let s = e.b.ins().fdiv(one, den);
    let ts = e.b.ins().fmul(t, s);
    let zero = e.f(0.0);
    let neg = e.cmp(FloatCC::LessThan, x, zero);
    e.select(neg, ts, s)
}

/// The error function on |x|, given x's sign: for |x| < 1, x·P(x²) with P a
/// degree-6 minimax fit of erf(x)/x; for 1 ≤ |x| < 4, 1 - e^{Q(|x|-2.5)} with
/// Q a degree-9 minimax fit of log(erfc t) on [1, 4]; 1 from 4 on (erfc 4 is
/// below a quarter ulp of 1).
pub fn erf(e: &mut Emit, x: Value) -> Value {
    let a = e.b.ins().fabs(x);
    let s = e.b.ins().fmul(a, a);
    let p = e.horner(
        s,
        &[
            7.854_026_6e-5,
            -0.0008010248,
            5.188_334_7e-3,
            -2.685_381_7e-2,
            1.128_358_5e-1,
            -3.761_262_6e-1,
            std::f32::consts::FRAC_2_SQRT_PI,
        ],
    );
    let small = e.b.ins().fmul(a, p);
    let a4 = e.clamp(a, 1.0, 4.0);
    let centre = e.f(2.5);
    let u = e.b.ins().fsub(a4, centre);
    let q = e.horner(
        u,
        &[
            -5.555_587_6e-8,
            1.614_954_4e-6,
            -1.302_811_6e-5,
            7.739_041e-5,
            -4.206_192_7e-4,
            2.165_166e-3,
            -1.085_822e-2,
            -9.438_937e-1,
            -5.352_681,
            -7.806_815,
        ],
    );
    let erfc = exp(e, q);
    let one = e.f(1.0);
    let mid = e.b.ins().fsub(one, erfc);
    let four = e.f(4.0);
    let is_big = e.cmp(FloatCC::GreaterThanOrEqual, a, four);
    let mid = e.select(is_big, one, mid);
    let is_small = e.cmp(FloatCC::LessThan, a, one);
    let r = e.select(is_small, small, mid);
    // NaN fails both comparisons above and would become 1: keep it.
    let nan = e.cmp(FloatCC::Unordered, x, x);
    let r = e.select(nan, x, r);
    e.copysign(r, x)
}

/// log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}), with log1p(u) computed as
/// log(w)·u/(w-1) for w = 1+u (exact cancellation of w's rounding), and u
/// itself when w rounds to 1.
pub fn softplus(e: &mut Emit, x: Value) -> Value {
    let a = e.b.ins().fabs(x);
    let na = e.b.ins().fneg(a);
    let u = exp(e, na);
    let one = e.f(1.0);
    let w = e.b.ins().fadd(one, u);
    let lw = log(e, w);
    let wm1 = e.b.ins().fsub(w, one);
    let ratio = e.b.ins().fdiv(u, wm1);
    let l = e.b.ins().fmul(lw, ratio);
    let w_is_one = e.cmp(FloatCC::Equal, w, one);
    let log1p = e.select(w_is_one, u, l);
    let zero = e.f(0.0);
    let pos = e.cmp(FloatCC::GreaterThan, x, zero);
    let xpos = e.select(pos, x, zero);
    let r = e.b.ins().fadd(xpos, log1p);
    // NaN: |NaN| propagates through exp and log already; keep the input NaN.
    let nan = e.cmp(FloatCC::Unordered, x, x);
    e.select(nan, x, r)
}
