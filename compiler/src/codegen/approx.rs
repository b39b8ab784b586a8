//! Inline polynomial approximations of the transcendental functions, emitted
//! as Cranelift IR for either one f32 or an f32x4 vector.
//!
//! Cranelift has no `exp`, `log`, `tanh` or `sin` instruction, and calling Rust's
//! scalar functions per element is several times slower than evaluating a
//! polynomial in vector registers. Every function here is written once over
//! [`Emit`], which hides whether the lanes are a scalar or a vector, so the
//! scalar tail of a loop computes bit-for-bit what the vector body computes.
//!
//! Error bounds, asserted by the tests of this module against f64 references
//! on dense sweeps (a grid of step 2^-5..2^-13 over each function's
//! interesting range, 512 values in every binade of both signs including
//! subnormals, and the boundary values). "rel." is relative to the exact
//! value where it is a normal f32; results below 2^-126 are held to an
//! absolute bound of 2^-149 (one subnormal ulp). Measured maxima in brackets.
//!
//! | function | bound | special values |
//! |---|---|---|
//! | [`exp`] | rel. 2.5e-7 [8.0e-8] | exp(-Inf)=0, exp(+Inf)=+Inf, exp(x>88.73)=+Inf, gradual underflow to 0 at x<-103.98, NaN→NaN |
//! | [`log`] | rel. 2.5e-7 [7.7e-8] | log(±0)=-Inf, log(x<0)=NaN, log(+Inf)=+Inf, subnormal inputs at full accuracy, NaN→NaN |
//! | [`tanh`] | rel. 4e-7 [2.7e-7] | odd (tanh(-0)=-0), ±1 for |x|≥9 and ±Inf, never above 1 in magnitude, NaN→NaN |
//! | [`sigmoid`] | rel. 4e-7 [1.7e-7] | sigmoid(-Inf)=0, sigmoid(+Inf)=1, sigmoid(±0)=0.5, tiny results keep relative accuracy (down to subnormals), NaN→NaN |
//! | [`erf`] | rel. 4e-7 [2.9e-7] | odd (erf(-0)=-0), ±1 for |x|≥4 and ±Inf, NaN→NaN |
//! | [`gelu`] | 2.5e-7·\|x\| [1.9e-7]; rel. 2.5e-7 [1.9e-7] for x ≥ 0 | gelu(±0)=±0, gelu(+Inf)=+Inf, -0 for x ≤ -5.66 and -Inf, NaN→NaN |
//! | [`gelu_grad`] | abs. 2.5e-7 [2.0e-7] | 0.5 at ±0, 1 at +Inf, 0 at -Inf, NaN→NaN |
//! | [`softplus`] | rel. 5e-7 [2.1e-7] | softplus(-Inf)=0, softplus(+Inf)=+Inf, x for large x, ≈e^x with relative accuracy for very negative x, NaN→NaN |
//! | [`sin`] | rel. 2.5e-7 [1.7e-7] | over every finite f32 (checked exhaustively once, swept in the tests); odd (sin(-0)=-0), sin(x)=x for tiny x, ±Inf→NaN, NaN→NaN |
//! | [`cos`] | rel. 2.5e-7 [1.7e-7] | over every finite f32, as sin; cos(±0)=1, ±Inf→NaN, NaN→NaN |
//!
//! sin and cos reduce their argument modulo π/2 exactly enough for every
//! f32 (Cody–Waite below 2^16, Payne–Hanek above, on a cold path taken only
//! when a lane needs it), so the bound holds next to the zeros of large
//! arguments too.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use crate::ir::UnaryOp;

/// How far the compiled `op` may be from the exact value (the table above).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ErrorBound {
    /// At most this times the exact value's magnitude.
    Relative(f64),
    /// At most this times the input's magnitude: `gelu`, whose `1 + erf`
    /// cancels for negative inputs, so that the small results there carry
    /// the absolute error of `erf` near −1, scaled by `x/2`.
    TimesInput(f64),
    /// At most this: `gelu_grad`, which crosses zero near x = −0.75.
    Absolute(f64),
}

/// The error bound of the compiled `op` where an approximation of this
/// module computes it; `None` for the ops Cranelift computes exactly
/// rounded (`sqrt`) or exactly (`neg`, `abs`, `sign`).
pub fn error_bound(op: UnaryOp) -> Option<ErrorBound> {
    match op {
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Sin | UnaryOp::Cos => Some(ErrorBound::Relative(2.5e-7)),
        UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Erf => Some(ErrorBound::Relative(4e-7)),
        UnaryOp::Gelu => Some(ErrorBound::TimesInput(GELU_ERROR_BOUND)),
        UnaryOp::GeluGrad => Some(ErrorBound::Absolute(GELU_GRAD_ERROR_BOUND)),
        UnaryOp::Neg | UnaryOp::Sqrt | UnaryOp::Abs | UnaryOp::Sign => None,
    }
}

/// [`gelu`]'s bound: `|error| ≤ this·|x|` (the table above).
pub const GELU_ERROR_BOUND: f64 = 2.5e-7;
/// [`gelu_grad`]'s absolute bound (the table above).
pub const GELU_GRAD_ERROR_BOUND: f64 = 2.5e-7;

/// The relative error bound of [`softplus`] (the table above).
pub const SOFTPLUS_ERROR_BOUND: f64 = 5e-7;

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

    /// The f32x4 whose lane `i` is lane `lanes[i]` of the eight lanes of
    /// `lo` followed by `hi` (one shuffle; `lo == hi` permutes one vector).
    pub fn pick_lanes(&mut self, lo: Value, hi: Value, lanes: [u8; 4]) -> Value {
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let bytes: Vec<u8> = lanes.iter().flat_map(|&l| (0..4).map(move |i| l * 4 + i)).collect();
        let mask = self.b.func.dfg.immediates.push(bytes.as_slice().into());
        let lo = self.b.ins().bitcast(types::I8X16, little, lo);
        let hi = self.b.ins().bitcast(types::I8X16, little, hi);
        let x = self.b.ins().shuffle(lo, hi, mask);
        self.b.ins().bitcast(types::F32X4, little, x)
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
}

/// e^x. Cody–Waite reduction x = n·ln2 + r with |r| ≤ ln2/2, the Cephes
/// degree-5 polynomial for e^r, and 2^n applied as two factors 2^⌊n/2⌋·2^⌈n/2⌉
/// so that both the overflow boundary and gradual underflow are exact.
/// Inputs are clamped to 88.8 first (where the result already rounds to
/// +Inf), and below [`EXP_ZERO`] (where it already rounds to +0) the result
/// is +0 by a select; NaN propagates.
pub fn exp(e: &mut Emit, x: Value) -> Value {
    let hi = e.f(EXP_MAX);
    let above = e.cmp(FloatCC::GreaterThan, x, hi);
    let x = e.select(above, hi, x);
    exp_clamped(e, x)
}

/// [`exp`] of an `x` at most 88.8 (or NaN).
///
/// Where `x < EXP_ZERO` the result rounds to +0, but computing it takes
/// products whose exact values lie below the smallest normal float, which
/// Intel's cores execute by a microcode assist of some hundred cycles per
/// instruction (a masked attention score is such a lane in every row of a
/// softmax): those lanes compute from 0 instead, and the result is set to
/// +0 at the end. The bits are those of the plain computation (a test
/// checks every float between -104 and `EXP_ZERO`).
fn exp_clamped(e: &mut Emit, x: Value) -> Value {
    let zero_below = e.f(EXP_ZERO);
    let dead = e.cmp(FloatCC::LessThan, x, zero_below);
    let zero = e.f(0.0);
    let x = e.select(dead, zero, x);
    let y = exp_scaled(e, x);
    e.select(dead, zero, y)
}

/// [`exp`]'s arithmetic, for `x` in [-104, 88.8] (or NaN).
fn exp_scaled(e: &mut Emit, x: Value) -> Value {
    let log2e = e.f(std::f32::consts::LOG2_E);
    let t = e.b.ins().fmul(x, log2e);
    // n = t rounded to the nearest integer (ties to even), as a float and
    // as an integer: |t| ≤ 151, so t + 1.5·2^23 lies in [2^23, 2^24), where
    // f32 steps by exactly 1 and the addition rounds t like `nearest`; the
    // integer is the difference of the bit patterns. Cheaper than `nearest`
    // and a saturating vector conversion, with the same result.
    let shifter = e.f(ROUND_SHIFTER);
    let shifted = e.b.ins().fadd(t, shifter);
    let n = e.b.ins().fsub(shifted, shifter);
    let neg_hi = e.f(EXP_NEG_LN2_HI);
    let r = e.fma(n, neg_hi, x);
    let neg_lo = e.f(EXP_NEG_LN2_LO);
    let r = e.fma(n, neg_lo, r);
    let p = e.horner(r, &EXP_POLY);
    let r2 = e.b.ins().fmul(r, r);
    let y = e.fma(p, r2, r);
    let one = e.f(1.0);
    let y = e.b.ins().fadd(y, one);
    let shifted_bits = e.bits_of(shifted);
    let shifter_bits = e.i(ROUND_SHIFTER.to_bits() as i32);
    let ni = e.b.ins().isub(shifted_bits, shifter_bits);
    let n1 = e.b.ins().sshr_imm_u(ni, 1);
    let n2 = e.b.ins().isub(ni, n1);
    let s1 = pow2(e, n1);
    let s2 = pow2(e, n2);
    let y = e.b.ins().fmul(y, s1);
    e.b.ins().fmul(y, s2)
}

/// [`exp`] is +0 below this: e^x is below half the smallest subnormal float
/// from about -103.972 down, and the approximation's arithmetic gives +0
/// for every float from -104 (and any below, clamped to -104) up to it.
pub const EXP_ZERO: f32 = -103.98;
/// [`exp`] clamps its argument to this: it already rounds to +Inf.
pub const EXP_MAX: f32 = 88.8;
/// [`tanh`] evaluates its rational function on |x| clamped to this; beyond
/// it tanh rounds to 1.
pub const TANH_CLAMP: f32 = 9.0;
/// -ln 2 in two parts for [`exp`]'s reduction (the high part has trailing
/// zero bits, so n·hi is exact).
pub const EXP_NEG_LN2_HI: f32 = -0.693_359_4;
pub const EXP_NEG_LN2_LO: f32 = 2.121_944_4e-4;
/// [`exp`]'s polynomial: e^r ≈ 1 + r + r²·P(r).
pub const EXP_POLY: [f32; 6] =
    [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5];
/// [`tanh`]'s numerator and denominator polynomials in x².
pub const TANH_P: [f32; 7] = [
    -2.760_768_5e-16,
    2.000_188e-13,
    -8.604_672e-11,
    5.122_297e-8,
    1.485_722_4e-5,
    6.372_619_3e-4,
    4.893_524_6e-3,
];
pub const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// 1.5·2^23: adding it to a float of magnitude below 2^22 rounds the float
/// to an integer held in the low mantissa bits (see [`exp`]).
pub const ROUND_SHIFTER: f32 = 12_582_912.0;

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

/// Hyperbolic tangent, computed on |x| and given x's sign: a rational
/// function of degree 13/6, odd numerator over even denominator (the
/// interpolant of Eigen's `generic_fast_tanh_float`), on |x| clamped to 9,
/// beyond which tanh rounds to 1. One division and eleven multiply-adds, no
/// exponential: a third of the instructions of `1 - 2/(e^{2|x|} + 1)`, which
/// matters in recurrent cells (two tanh per LSTM unit and step). The
/// quotient is capped at 1 so that `1 - tanh²` is never negative.
pub fn tanh(e: &mut Emit, x: Value) -> Value {
    odd_rational(e, x, TANH_CLAMP, &TANH_P, &TANH_Q)
}

/// `sign(x) · min(a·(P(a²)/Q(a²)), 1)` with `a = min(|x|, clamp)`: [`tanh`]
/// and [`erf`]. |x| and x's sign bit by masks of x's bits (`fabs` builds
/// its mask anew on x86-64); the result's sign is or-ed onto the
/// non-negative quotient; a·(p/q), not (a·p)/q, since a·p underflows for
/// tiny a, where both functions are ≈ a times a constant.
fn odd_rational(e: &mut Emit, x: Value, clamp: f32, p: &[f32], q: &[f32]) -> Value {
    let bits = e.bits_of(x);
    let abs_mask = e.i(0x7fff_ffff);
    let a_bits = e.b.ins().band(bits, abs_mask);
    let a = e.float_of(a_bits);
    let limit = e.f(clamp);
    let big = e.cmp(FloatCC::GreaterThan, a, limit);
    let a = e.select(big, limit, a);
    let z = e.b.ins().fmul(a, a);
    let p = e.horner(z, p);
    let q = e.horner(z, q);
    let ratio = e.b.ins().fdiv(p, q);
    let r = e.b.ins().fmul(ratio, a);
    let one = e.f(1.0);
    let over = e.cmp(FloatCC::GreaterThan, r, one);
    let r = e.select(over, one, r);
    let sign_mask = e.i(i32::MIN);
    let sign = e.b.ins().band(bits, sign_mask);
    let r_bits = e.bits_of(r);
    let r_bits = e.b.ins().bor(r_bits, sign);
    e.float_of(r_bits)
}

/// The logistic function: with t = e^{-|x|} and s = 1/(1+t), s for x ≥ 0 and
/// t·s for x < 0, so no intermediate overflows and tiny results stay
/// relatively accurate.
///
/// Three of these run per unit and step of an LSTM, so the instructions
/// count: `-|x|` is `x` with its sign bit set (one `or`, where `fabs` and
/// `fneg` each build a mask), it needs no upper clamp (it is never
/// positive), and vector lanes choose `t·s` by the sign bit of `x` (an
/// arithmetic shift of its bits) rather than by a comparison with zero.
/// The results are the same bits: `-0` takes `t·s = 1·½ = ½`, as `+0`
/// takes `s`; a NaN is returned as it came.
pub fn sigmoid(e: &mut Emit, x: Value) -> Value {
    let bits = e.bits_of(x);
    let sign_bit = e.i(i32::MIN);
    let na_bits = e.b.ins().bor(bits, sign_bit);
    let na = e.float_of(na_bits);
    // No clamp: -|x| ≤ 0 < 88.8, or NaN.
    let t = exp_clamped(e, na);
    let one = e.f(1.0);
    let den = e.b.ins().fadd(one, t);
    let s = e.b.ins().fdiv(one, den);
    let ts = e.b.ins().fmul(t, s);
    let r = if e.lanes.is_vector() {
        let neg = e.b.ins().sshr_imm_u(bits, 31);
        e.select(Mask(neg), ts, s)
    } else {
        let zero = e.f(0.0);
        let neg = e.cmp(FloatCC::LessThan, x, zero);
        e.select(neg, ts, s)
    };
    // A NaN is returned as it came: the array function's arithmetic on it
    // is LLVM's, which may fold `-|x|`'s sign into a constant and so give
    // another NaN than this code's.
    let nan = e.cmp(FloatCC::Unordered, x, x);
    e.select(nan, x, r)
}

/// [`erf`]'s numerator polynomial in x², highest degree first (fitted with
/// the denominator: its constant term is one ulp below 2/√π, not 2/√π).
#[allow(clippy::approx_constant)]
pub(super) const ERF_P: [f32; 6] =
    [1.986_583_8e-6, 2.845_546_4e-4, 3.883_418_4e-3, 5.310_19e-2, 1.935_485_6e-1, 1.128_379_1];
/// [`erf`]'s denominator polynomial in x², highest degree first.
pub(super) const ERF_Q: [f32; 6] =
    [3.741_752_5e-5, 1.185_565_6e-3, 1.520_74e-2, 1.153_511_7e-1, 5.048_605e-1, 1.0];
/// [`erf`] evaluates its rational function on |x| clamped to this; beyond
/// it erf rounds to 1 (erfc 4 is below a quarter ulp of 1).
pub const ERF_CLAMP: f32 = 4.0;

/// The error function: with a = min(|x|, 4), erf|x| = a·(P(a²)/Q(a²)), P
/// and Q of degree 5, fitted for the least maximum relative error on
/// (0, 4] (2.5e-8 in exact arithmetic; the f32 evaluation's rounding
/// makes the 2.9e-7 measured), never above 1; the sign of x. One rational
/// function, where a polynomial for |x| < 1 and `1 − e^{Q(|x|)}` beyond
/// were both evaluated for every lane: 1.6 → 4.1 Gelem/s inline, 1.7 →
/// 4.6 as an AVX-512 array function (`throughput_of_fused_kernels`).
pub fn erf(e: &mut Emit, x: Value) -> Value {
    let r = odd_rational(e, x, ERF_CLAMP, &ERF_P, &ERF_Q);
    // A NaN is returned as it came (the array function's arithmetic on it
    // is LLVM's, which may give another NaN).
    let nan = e.cmp(FloatCC::Unordered, x, x);
    e.select(nan, x, r)
}

/// [`gelu`] and [`gelu_grad`] clamp `x/√2` to ±this where only the limit
/// matters: beyond it `1 + erf` is exactly 0 or 2 and `e^{-x²/2}` is 0.
pub const GELU_CLAMP: f32 = 12.0;

/// `x·Φ(x) = (0.5·x)·(1 + erf(x/√2))` with [`erf`], the operations in
/// this order (those of the five primitives it replaced, so the same bits).
/// `1 + erf` cancels for negative `x`: the error there is [`erf`]'s
/// absolute error near −1 times `x/2` ([`ErrorBound::TimesInput`]), and
/// the result is −0 from x ≈ −5.66 down. `x/2` is taken of `x` clamped
/// below at −√2·[`GELU_CLAMP`] (where `1 + erf` is already 0), so −∞ gives
/// −0, the limit, not `−∞·0`.
pub fn gelu(e: &mut Emit, x: Value) -> Value {
    let c = e.f(std::f32::consts::FRAC_1_SQRT_2);
    let s = e.b.ins().fmul(x, c);
    let er = erf(e, s);
    let one = e.f(1.0);
    let one_plus = e.b.ins().fadd(er, one);
    let lo = e.f(-std::f32::consts::SQRT_2 * GELU_CLAMP);
    let below = e.cmp(FloatCC::LessThan, x, lo);
    let xc = e.select(below, lo, x);
    let half = e.f(0.5);
    let h = e.b.ins().fmul(xc, half);
    e.b.ins().fmul(h, one_plus)
}

/// `Φ(x) + x·φ(x)`, gelu's derivative: `Φ = 0.5 + 0.5·erf(s)` and
/// `x·φ(x) = s·e^{-s²}/√π` with `s = x/√2` clamped to ±[`GELU_CLAMP`] in
/// the second term (so ±∞ give 1 and 0, the limits, not `∞·0`).
pub fn gelu_grad(e: &mut Emit, x: Value) -> Value {
    let c = e.f(std::f32::consts::FRAC_1_SQRT_2);
    let s = e.b.ins().fmul(x, c);
    let er = erf(e, s);
    let half = e.f(0.5);
    let cdf = e.fma(er, half, half);
    let hi = e.f(GELU_CLAMP);
    let lo = e.f(-GELU_CLAMP);
    let above = e.cmp(FloatCC::GreaterThan, s, hi);
    let sc = e.select(above, hi, s);
    let below = e.cmp(FloatCC::LessThan, sc, lo);
    let sc = e.select(below, lo, sc);
    let sq = e.b.ins().fmul(sc, sc);
    let nsq = e.b.ins().fneg(sq);
    let ex = exp_clamped(e, nsq);
    let r = e.b.ins().fmul(sc, ex);
    let k = e.f(FRAC_1_SQRT_PI);
    e.fma(r, k, cdf)
}

/// 1/√π as f32.
pub const FRAC_1_SQRT_PI: f32 = 0.564_189_6;

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

/// sin x: see [`sin_cos`].
pub fn sin(e: &mut Emit, x: Value) -> Value {
    sin_cos(e, x, false)
}

/// cos x: see [`sin_cos`].
pub fn cos(e: &mut Emit, x: Value) -> Value {
    sin_cos(e, x, true)
}

/// Odd Taylor coefficients of sin r = r + r³·S(r²), highest degree first
/// (the first term left out, r¹¹/11!, is below 3e-9 relative on the
/// reduced range).
const SIN_TAYLOR: [f32; 4] = [2.755_731_9e-6, -1.984_127e-4, 8.333_334e-3, -0.166_666_67];

/// Even Taylor coefficients of cos r = 1 − r²/2 + r⁴·C(r²), highest degree
/// first (the first term left out, r¹²/12!, is below 2e-10).
const COS_TAYLOR: [f32; 4] = [-2.755_732e-7, 2.480_158_8e-5, -1.388_888_9e-3, 4.166_666_8e-2];

/// sin x (`cos` false) or cos x (`cos` true). The argument |x| is reduced
/// to |x| = q·π/2 + r ([`reduce_quadrant`]); then sin |x| is ±sin r or
/// ±cos r by q mod 4 (cos uses q + 1, as cos x = sin(|x| + π/2)), each a
/// polynomial in r² evaluated with fma; sin takes the sign of x. sin is
/// odd (sin(−0) = −0); ±Inf and NaN give NaN.
fn sin_cos(e: &mut Emit, x: Value, cos: bool) -> Value {
    let a = e.b.ins().fabs(x);
    let (r, q) = reduce_quadrant(e, a);
    let z = e.b.ins().fmul(r, r);
    let ps = e.horner(z, &SIN_TAYLOR);
    let rz = e.b.ins().fmul(r, z);
    let s = e.fma(rz, ps, r);
    let pc = e.horner(z, &COS_TAYLOR);
    let zz = e.b.ins().fmul(z, z);
    let minus_half = e.f(-0.5);
    let one = e.f(1.0);
    let head = e.fma(z, minus_half, one);
    let c = e.fma(zz, pc, head);
    let q = if cos {
        let one = e.i(1);
        e.b.ins().iadd(q, one)
    } else {
        q
    };
    // Odd quadrants take the cosine polynomial; quadrants 2 and 3 negate.
    let (bit0, bit1, zero) = (e.i(1), e.i(2), e.i(0));
    let odd = e.b.ins().band(q, bit0);
    let odd = Mask(e.b.ins().icmp(IntCC::NotEqual, odd, zero));
    let v = e.select(odd, c, s);
    let negate = e.b.ins().band(q, bit1);
    let flip = e.b.ins().ishl_imm_u(negate, 30);
    let bits = e.bits_of(v);
    let mut bits = e.b.ins().bxor(bits, flip);
    if !cos {
        let sign_mask = e.i(i32::MIN);
        let xb = e.bits_of(x);
        let sign = e.b.ins().band(xb, sign_mask);
        bits = e.b.ins().bxor(bits, sign);
    }
    let r = e.float_of(bits);
    let inf = e.f(f32::INFINITY);
    let finite = e.cmp(FloatCC::LessThan, a, inf);
    let nan = e.f(f32::NAN);
    e.select(finite, r, nan)
}

/// Arguments below this are reduced by Cody–Waite, larger ones by
/// Payne–Hanek ([`reduce_quadrant`]).
const CODY_WAITE_LIMIT: f32 = 65536.0;

/// π/2 as the sum of three f32, each the f32 nearest to what the ones
/// before leave (together 2^-76 from π/2).
const PIO2: [f32; 3] = [std::f32::consts::FRAC_PI_2, -4.371_139e-8, -1.715_124_5e-15];

/// The bits of 2/π after the binary point (2/π = 0.1010_0010_1111_1001…₂),
/// most significant first, as 64-bit words after 72 zero bits: enough for
/// the 96-bit window that [`reduce_large`] takes at any f32 exponent.
const TWO_OVER_PI_BITS: [u64; 5] =
    [0, 0x00a2_f983_6e4e_4415, 0x29fc_2757_d1f5_34dd, 0xc0db_6295_993c_4390, 0x41fe_5163_abde_bbc5];

/// `a` = |x| (non-negative) as `q·π/2 + r`: `r` (float lanes) and `q`
/// (integer lanes, used mod 4). Below [`CODY_WAITE_LIMIT`] (and for Inf and
/// NaN, whose result is replaced anyway), `q = round(a·2/π)` and
/// `r = a − q·π/2` with π/2 in three parts ([`PIO2`]) and one fma each: the
/// first product is exact and the subtraction cancels exactly, so `r` keeps
/// its relative accuracy even next to a multiple of π/2; `|r| ≤ 0.792` (the
/// rounding of `a·2/π` may pick a neighbouring `q`). Larger finite lanes
/// take the Payne–Hanek reduction of [`reduce_large`], with `|r| ≤ π/4`, on
/// a cold path entered only when some lane needs it.
fn reduce_quadrant(e: &mut Emit, a: Value) -> (Value, Value) {
    let two_over_pi = e.f(std::f32::consts::FRAC_2_PI);
    let t = e.b.ins().fmul(a, two_over_pi);
    let n = e.b.ins().nearest(t);
    let mut r = a;
    for part in PIO2 {
        let minus = e.f(-part);
        r = e.fma(n, minus, r);
    }
    let q = e.b.ins().fcvt_to_sint_sat(e.lanes.int, n);
    let limit = e.f(CODY_WAITE_LIMIT);
    let inf = e.f(f32::INFINITY);
    let at_least = e.cmp(FloatCC::GreaterThanOrEqual, a, limit);
    let finite = e.cmp(FloatCC::LessThan, a, inf);
    let large = e.and(at_least, finite);

    let r_var = e.b.declare_var(e.lanes.float);
    e.b.def_var(r_var, r);
    let q_var = e.b.declare_var(e.lanes.int);
    e.b.def_var(q_var, q);
    let (slow, done) = (e.b.create_block(), e.b.create_block());
    let any = if e.lanes.is_vector() { e.b.ins().vany_true(large.0) } else { large.0 };
    e.b.ins().brif(any, slow, &[], done, &[]);
    e.b.switch_to_block(slow);
    e.b.set_cold_block(slow);
    if e.lanes.is_vector() {
        // Every lane is reduced (the others from the limit, a valid
        // argument), then the large lanes are picked.
        let safe = e.select(large, a, limit);
        let (mut rs, mut qs) = (r, q);
        for lane in 0..4u8 {
            let al = e.b.ins().extractlane(safe, lane);
            let (rl, ql) = reduce_large(e.b, al);
            rs = e.b.ins().insertlane(rs, rl, lane);
            qs = e.b.ins().insertlane(qs, ql, lane);
        }
        let r = e.select(large, rs, r);
        let q = e.b.ins().bitselect(large.0, qs, q);
        e.b.def_var(r_var, r);
        e.b.def_var(q_var, q);
    } else {
        let (r, q) = reduce_large(e.b, a);
        e.b.def_var(r_var, r);
        e.b.def_var(q_var, q);
    }
    e.b.ins().jump(done, &[]);
    e.b.switch_to_block(done);
    (e.b.use_var(r_var), e.b.use_var(q_var))
}

/// Payne–Hanek reduction of one finite f32 `a ≥ 2^-47` (scalar): `a·2/π`
/// mod 4 in fixed point, then `(q, r)` with `q` the nearest integer (mod 4,
/// i32) and `r = (a·2/π − q)·π/2` (f32, `|r| ≤ π/4`).
///
/// With `a = m·2^s` (`m` the 24-bit significand), the bits of 2/π whose
/// products with `a` are multiples of 4 are skipped: the 96-bit window `g`
/// of [`TWO_OVER_PI_BITS`] that starts two places above the units of `a`
/// gives `a·2/π ≡ m·g·2^-94 (mod 4)` up to less than 2^-70 (the bits left
/// out after the window). The low 96 bits of `m·g` are three 32-bit
/// partial products with carries; the top two are the quadrant, the rest a
/// signed fraction after rounding to the nearest quadrant, scaled by π/2
/// in f64 (53 bits, so `r` is accurate to an f32 rounding even when it is
/// tiny).
fn reduce_large(b: &mut FunctionBuilder, a: Value) -> (Value, Value) {
    let bits = b.ins().bitcast(types::I32, MemFlagsData::new(), a);
    let bits = b.ins().uextend(types::I64, bits);
    let exponent = b.ins().ushr_imm_u(bits, 23);
    let fraction = b.ins().band_imm_u(bits, 0x7f_ffff);
    let m = b.ins().bor_imm_u(fraction, 0x80_0000);
    // a = m·2^(exponent − 150); the window starts at bit exponent − 150 − 1
    // of 2/π, which is bit exponent − 80 of the table (72 zero bits first).
    let start = b.ins().iadd_imm_s(exponent, -80);
    let word = b.ins().ushr_imm_u(start, 6);
    let shift = b.ins().band_imm_u(start, 63);
    let words: Vec<Value> = TWO_OVER_PI_BITS.iter().map(|&w| b.ins().iconst(types::I64, w as i64)).collect();
    let is_0 = b.ins().icmp_imm_u(IntCC::Equal, word, 0);
    let is_1 = b.ins().icmp_imm_u(IntCC::Equal, word, 1);
    let mut pick = |j: usize| {
        let v = b.ins().select(is_1, words[j + 1], words[j + 2]);
        b.ins().select(is_0, words[j], v)
    };
    let (w0, w1, w2) = (pick(0), pick(1), pick(2));
    // `(hi << shift) | (lo >> (64 − shift))`, the second shift in two steps
    // so that a shift of 0 takes nothing from `lo`.
    let c63 = b.ins().iconst(types::I64, 63);
    let back = b.ins().isub(c63, shift);
    let mut join = |hi: Value, lo: Value| {
        let h = b.ins().ishl(hi, shift);
        let l = b.ins().ushr_imm_u(lo, 1);
        let l = b.ins().ushr(l, back);
        b.ins().bor(h, l)
    };
    let top = join(w0, w1);
    let next = join(w1, w2);
    let g0 = b.ins().ushr_imm_u(top, 32);
    let g1 = b.ins().band_imm_u(top, 0xffff_ffff);
    let g2 = b.ins().ushr_imm_u(next, 32);
    // The low 96 bits of m·g, 32 bits at a time: p2 (lowest), t1, t0.
    let p2 = b.ins().imul(m, g2);
    let carry = b.ins().ushr_imm_u(p2, 32);
    let t1 = b.ins().imul(m, g1);
    let t1 = b.ins().iadd(t1, carry);
    let carry = b.ins().ushr_imm_u(t1, 32);
    let t0 = b.ins().imul(m, g0);
    let t0 = b.ins().iadd(t0, carry);
    let low = b.ins().band_imm_u(p2, 0xffff_ffff);
    let high = b.ins().ishl_imm_u(t0, 32);
    let middle = b.ins().band_imm_u(t1, 0xffff_ffff);
    // y = (a·2/π mod 4)·2^62.
    let y = b.ins().bor(high, middle);
    let half = b.ins().iadd_imm_s(y, 1i64 << 61);
    let q = b.ins().ushr_imm_u(half, 62);
    let whole = b.ins().ishl_imm_u(q, 62);
    let f = b.ins().isub(y, whole);
    let f = b.ins().fcvt_from_sint(types::F64, f);
    let low = b.ins().fcvt_from_sint(types::F64, low);
    let scale = b.ins().f64const(1.0 / 4_294_967_296.0);
    let f = b.ins().fma(low, scale, f);
    let pio2 = b.ins().f64const(std::f64::consts::FRAC_PI_2 / (1u64 << 62) as f64);
    let r = b.ins().fmul(f, pio2);
    let r = b.ins().fdemote(types::F32, r);
    (r, b.ins().ireduce(types::I32, q))
}
