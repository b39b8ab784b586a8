//! `exp`, `sigmoid`, `tanh`, `erf`, `gelu` and `gelu_grad` over arrays, compiled by rustc for the host's
//! widest vector unit (AVX-512 or AVX2 with FMA, chosen at run time), the
//! same bits as [`super::approx`]'s inline versions.
//!
//! Cranelift's x86-64 backend has 128-bit vectors only, so an inline
//! approximation evaluates four lanes per instruction where the CPU has
//! eight or sixteen. A loop kernel heavy in these functions (an LSTM cell
//! evaluates three sigmoids and two tanh per unit and step) therefore runs
//! in strips ([`super::loops`]): its cheap operations inline, each of these
//! functions once per strip by a call to the array function here.
//!
//! Every function below is the operation-for-operation scalar transcription
//! of its Cranelift emitter in [`super::approx`] (the same constants, the
//! same fused multiply-adds, comparisons and bit manipulations in the same
//! order), so a kernel gives the same bits whether an element falls in a
//! strip, in the inline vector loop, or in the scalar tail; the tests check
//! this on sweeps and on every special value. rustc vectorises the loops
//! (no branches: the comparisons become selects).

use super::approx::{
    ERF_CLAMP, ERF_P, ERF_Q, EXP_MAX, EXP_NEG_LN2_HI, EXP_NEG_LN2_LO, EXP_POLY, EXP_ZERO, FRAC_1_SQRT_PI,
    GELU_CLAMP, ROUND_SHIFTER, TANH_CLAMP, TANH_P, TANH_Q,
};
use crate::ir::UnaryOp;

/// The ops with array functions.
pub const OPS: [UnaryOp; 6] =
    [UnaryOp::Exp, UnaryOp::Sigmoid, UnaryOp::Tanh, UnaryOp::Erf, UnaryOp::Gelu, UnaryOp::GeluGrad];

/// The C signature of an array function: `dst[i] = f(src[i])` for
/// `i < n`. `src` and `dst` must not overlap.
pub type ArrayFn = unsafe extern "C" fn(src: *const f32, dst: *mut f32, n: usize);

/// The array functions for the host, or `None` when it has neither
/// AVX-512F nor AVX2 with FMA (then kernels keep to their inline code).
pub fn host() -> Option<&'static Functions> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Some(&x86::AVX512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Some(&x86::AVX2);
        }
    }
    None
}

/// One implementation of every array function, for one instruction set.
pub struct Functions {
    /// The instruction set, for diagnostics (`"avx512f"`, `"avx2+fma"`).
    pub isa: &'static str,
    pub exp: ArrayFn,
    pub sigmoid: ArrayFn,
    pub tanh: ArrayFn,
    pub erf: ArrayFn,
    pub gelu: ArrayFn,
    pub gelu_grad: ArrayFn,
}

impl Functions {
    /// The array function computing `op`, if there is one.
    pub fn of(&self, op: UnaryOp) -> Option<ArrayFn> {
        match op {
            UnaryOp::Exp => Some(self.exp),
            UnaryOp::Sigmoid => Some(self.sigmoid),
            UnaryOp::Tanh => Some(self.tanh),
            UnaryOp::Erf => Some(self.erf),
            UnaryOp::Gelu => Some(self.gelu),
            UnaryOp::GeluGrad => Some(self.gelu_grad),
            _ => None,
        }
    }

    /// The symbol a kernel imports `op`'s array function by.
    pub fn symbol(op: UnaryOp) -> Option<&'static str> {
        match op {
            UnaryOp::Exp => Some("nnc_wide_exp"),
            UnaryOp::Sigmoid => Some("nnc_wide_sigmoid"),
            UnaryOp::Tanh => Some("nnc_wide_tanh"),
            UnaryOp::Erf => Some("nnc_wide_erf"),
            UnaryOp::Gelu => Some("nnc_wide_gelu"),
            UnaryOp::GeluGrad => Some("nnc_wide_gelu_grad"),
            _ => None,
        }
    }
}

/// Horner evaluation with fused multiply-adds, as `Emit::horner`.
#[inline(always)]
fn horner(x: f32, coeffs: &[f32]) -> f32 {
    let mut r = coeffs[0];
    for &c in &coeffs[1..] {
        r = r.mul_add(x, c);
    }
    r
}

/// `approx::pow2`: 2^n for n in [-126, 127], by the exponent bits.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

/// `approx::exp_clamped`: the lanes below `EXP_ZERO` compute from 0 and
/// give +0.
#[inline(always)]
fn exp_clamped(x: f32) -> f32 {
    let dead = x < EXP_ZERO;
    let y = exp_scaled(if dead { 0.0 } else { x });
    if dead {
        0.0
    } else {
        y
    }
}

/// `approx::exp_scaled`.
#[inline(always)]
pub(crate) fn exp_scaled(x: f32) -> f32 {
    let t = x * std::f32::consts::LOG2_E;
    let shifted = t + ROUND_SHIFTER;
    let n = shifted - ROUND_SHIFTER;
    let r = n.mul_add(EXP_NEG_LN2_HI, x);
    let r = n.mul_add(EXP_NEG_LN2_LO, r);
    let p = horner(r, &EXP_POLY);
    let r2 = r * r;
    let y = p.mul_add(r2, r);
    let y = y + 1.0;
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUND_SHIFTER.to_bits() as i32);
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    y * pow2(n1) * pow2(n2)
}

/// `approx::exp` (a NaN passes through the comparisons).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = if x > EXP_MAX { EXP_MAX } else { x };
    exp_clamped(x)
}

/// `approx::sigmoid` (its vector form, which picks `t·s` by the sign bit;
/// a NaN is returned as it came).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let bits = x.to_bits();
    let na = f32::from_bits(bits | 0x8000_0000);
    let t = exp_clamped(na);
    let s = 1.0 / (1.0 + t);
    let ts = t * s;
    let r = if (bits as i32) < 0 { ts } else { s };
    #[allow(clippy::eq_op)] // the unordered comparison of x with itself, as the inline code
    if x != x {
        x
    } else {
        r
    }
}

/// `approx::tanh`.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    odd_rational(x, TANH_CLAMP, &TANH_P, &TANH_Q)
}

/// `approx::erf`; a NaN is returned as it came.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let r = odd_rational(x, ERF_CLAMP, &ERF_P, &ERF_Q);
    #[allow(clippy::eq_op)] // the unordered comparison of x with itself, as the inline code
    if x != x {
        x
    } else {
        r
    }
}

/// `approx::gelu`.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let er = erf(x * std::f32::consts::FRAC_1_SQRT_2);
    let one_plus = er + 1.0;
    let lo = -std::f32::consts::SQRT_2 * GELU_CLAMP;
    let xc = if x < lo { lo } else { x };
    (xc * 0.5) * one_plus
}

/// `approx::gelu_grad`.
#[inline(always)]
pub(crate) fn gelu_grad(x: f32) -> f32 {
    let s = x * std::f32::consts::FRAC_1_SQRT_2;
    let cdf = erf(s).mul_add(0.5, 0.5);
    let sc = if s > GELU_CLAMP { GELU_CLAMP } else { s };
    let sc = if sc < -GELU_CLAMP { -GELU_CLAMP } else { sc };
    let ex = exp_clamped(-(sc * sc));
    (sc * ex).mul_add(FRAC_1_SQRT_PI, cdf)
}

/// `approx::odd_rational`.
#[inline(always)]
fn odd_rational(x: f32, clamp: f32, p: &[f32], q: &[f32]) -> f32 {
    let bits = x.to_bits();
    let a = f32::from_bits(bits & 0x7fff_ffff);
    let a = if a > clamp { clamp } else { a };
    let z = a * a;
    let r = (horner(z, p) / horner(z, q)) * a;
    let r = if r > 1.0 { 1.0 } else { r };
    f32::from_bits(r.to_bits() | (bits & 0x8000_0000))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Functions;

    /// Defines `$name`, an [`super::ArrayFn`] applying `$f` under the target
    /// features `$features`.
    macro_rules! array_fn {
        ($name:ident, $inner:ident, $f:path, $features:literal) => {
            #[target_feature(enable = $features)]
            unsafe fn $inner(src: &[f32], dst: &mut [f32]) {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = $f(s);
                }
            }

            unsafe extern "C" fn $name(src: *const f32, dst: *mut f32, n: usize) {
                // SAFETY: the caller (a kernel's strip, or a test) passes `n`
                // readable f32 at `src` and `n` writable f32 at `dst` that do
                // not overlap, so the two slices are valid and `dst` is
                // borrowed exclusively. `Functions` holding this function
                // only exists when `host` detected the target features.
                unsafe {
                    let src = std::slice::from_raw_parts(src, n);
                    let dst = std::slice::from_raw_parts_mut(dst, n);
                    $inner(src, dst)
                }
            }
        };
    }

    array_fn!(exp_avx512, exp_avx512_slices, super::exp, "avx512f,avx2,fma");
    array_fn!(sigmoid_avx512, sigmoid_avx512_slices, super::sigmoid, "avx512f,avx2,fma");
    array_fn!(tanh_avx512, tanh_avx512_slices, super::tanh, "avx512f,avx2,fma");
    array_fn!(erf_avx512, erf_avx512_slices, super::erf, "avx512f,avx2,fma");
    array_fn!(gelu_avx512, gelu_avx512_slices, super::gelu, "avx512f,avx2,fma");
    array_fn!(gelu_grad_avx512, gelu_grad_avx512_slices, super::gelu_grad, "avx512f,avx2,fma");
    array_fn!(exp_avx2, exp_avx2_slices, super::exp, "avx2,fma");
    array_fn!(sigmoid_avx2, sigmoid_avx2_slices, super::sigmoid, "avx2,fma");
    array_fn!(tanh_avx2, tanh_avx2_slices, super::tanh, "avx2,fma");
    array_fn!(erf_avx2, erf_avx2_slices, super::erf, "avx2,fma");
    array_fn!(gelu_avx2, gelu_avx2_slices, super::gelu, "avx2,fma");
    array_fn!(gelu_grad_avx2, gelu_grad_avx2_slices, super::gelu_grad, "avx2,fma");

    pub(super) static AVX512: Functions = Functions {
        isa: "avx512f",
        exp: exp_avx512,
        sigmoid: sigmoid_avx512,
        tanh: tanh_avx512,
        erf: erf_avx512,
        gelu: gelu_avx512,
        gelu_grad: gelu_grad_avx512,
    };
    pub(super) static AVX2: Functions = Functions {
        isa: "avx2+fma",
        exp: exp_avx2,
        sigmoid: sigmoid_avx2,
        tanh: tanh_avx2,
        erf: erf_avx2,
        gelu: gelu_avx2,
        gelu_grad: gelu_grad_avx2,
    };

    /// Every implementation, for tests on whatever the host supports.
    #[cfg(test)]
    pub(super) fn all() -> Vec<&'static Functions> {
        let mut v = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(&AVX512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            v.push(&AVX2);
        }
        v
    }
}

/// Every implementation the host can run (tests).
#[cfg(test)]
pub(crate) fn all() -> Vec<&'static Functions> {
    #[cfg(target_arch = "x86_64")]
    {
        x86::all()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}
