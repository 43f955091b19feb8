//! The scalar types the CPU executor runs in: `f32` for training, `f64` for gradient checks.
//!
//! Why a trait: the same graph runs in both precisions, so finite-difference tests check the
//! exact code path that trains. The f32 `exp`/`tanh` here are branch-free polynomial kernels that
//! LLVM vectorises (native SIMD and wasm simd128); libm's scalar `tanh` was the single largest
//! cost in the peers' engines (see `shared/peers/README.md`).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point element type the CPU executor supports.
pub trait Real:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Converts from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Converts to f64 (exact).
    fn to_f64(self) -> f64;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// `ln(1 + e^x)`, stable for large |x|.
    fn softplus(self) -> Self {
        let x = self.to_f64();
        Self::from_f64(if x > 30.0 { x } else { x.exp().ln_1p() })
    }
    /// Whether the value is finite.
    fn is_finite(self) -> bool;
    /// `y[i] = exp(x[i])`, vectorised where the type allows.
    fn exp_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.exp();
        }
    }
    /// `y[i] = tanh(x[i])`, vectorised where the type allows.
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.tanh();
        }
    }
    /// `C ← alpha·A·B + beta·C` for strided matrices (see [`crate::engine::gemm`]).
    fn gemm(g: crate::engine::gemm::Gemm<'_, Self>);
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn gemm(g: crate::engine::gemm::Gemm<'_, Self>) {
        crate::engine::gemm::dgemm(g);
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn exp(self) -> Self {
        exp_f32(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn exp_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = exp_f32(x);
        }
    }
    #[inline(always)]
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = tanh_f32(x);
        }
    }
    #[inline(always)]
    fn gemm(g: crate::engine::gemm::Gemm<'_, Self>) {
        crate::engine::gemm::sgemm(g);
    }
}

/// `e^x` in f32, branch-free: `x = n·ln2 + r`, `|r| ≤ ln2/2`, `e^r` by a degree-7 Taylor
/// polynomial (truncation < 3e-9 relative), `2^n` assembled in the exponent bits.
/// Inputs are clamped to [-87, 88] (results stay normal and finite); NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a high part exact in f32 and a low correction (Cody & Waite).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a libm call.
    const ROUNDER: f32 = 12_582_912.0;
    let is_nan = x.is_nan();
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if is_nan { f32::NAN } else { p * scale }
}

/// `tanh x` in f32 as a rational function `x·P(x²)/Q(x²)` on `[−9, 9]` (clamped outside, where
/// `tanh` is 1 to within 3e-8): nine multiply-adds and one division, branch-free, so it
/// vectorises. Coefficients fitted for this project by Loeb's reweighted least squares to
/// minimise the absolute error (5e-8 in exact arithmetic, < 5e-7 after f32 rounding; tested).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const P: [f32; 5] = [
        0.999_999_9,
        0.133_847_7,
        3.500_271_2e-3,
        2.069_505e-5,
        1.348_984_6e-8,
    ];
    const Q: [f32; 5] = [
        1.0,
        0.467_180_73,
        2.589_419_7e-2,
        3.293_683e-4,
        7.828_520_4e-7,
    ];
    let x = x.clamp(-9.0, 9.0);
    let x2 = x * x;
    let p = x * (P[0] + x2 * (P[1] + x2 * (P[2] + x2 * (P[3] + x2 * P[4]))));
    let q = Q[0] + x2 * (Q[1] + x2 * (Q[2] + x2 * (Q[3] + x2 * Q[4])));
    (p / q).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_f64_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let exact = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64 - exact) / exact).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(1e6).is_finite() && exp_f32(-1e6) >= 0.0);
    }

    #[test]
    fn fast_tanh_matches_f64() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let exact = (x as f64).tanh();
            worst = worst.max((tanh_f32(x) as f64 - exact).abs());
            x += 0.000_73;
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert!((tanh_f32(1e-5) - 1e-5).abs() < 1e-11);
        assert!(tanh_f32(f32::NAN).is_nan());
    }
}
