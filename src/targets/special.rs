//! Small numerical helpers the targets share: Gauss–Legendre nodes, the scaled Bessel function
//! `I0e`, `log-sum-exp`, and drawing an index from a cumulative table. Pure functions, `libm`
//! only, so native and wasm32 give the same bits.

/// `ln(2π)`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// 8-point Gauss–Legendre nodes on `[-1, 1]` (positive half; the rule is symmetric).
const GL8_NODES: [f64; 4] = [
    0.183_434_642_495_649_8,
    0.525_532_409_916_329,
    0.796_666_477_413_626_7,
    0.960_289_856_497_536_3,
];
/// The matching weights.
const GL8_WEIGHTS: [f64; 4] = [
    0.362_683_783_378_362,
    0.313_706_645_877_887_3,
    0.222_381_034_453_374_5,
    0.101_228_536_290_376_3,
];

/// `∫_a^b f(u) du` by composite 8-point Gauss–Legendre on `panels` equal panels.
/// Exact for polynomials of degree 15 on each panel; spectrally accurate for smooth `f`.
pub fn integrate_gl(a: f64, b: f64, panels: usize, mut f: impl FnMut(f64) -> f64) -> f64 {
    let panels = panels.max(1);
    let h = (b - a) / panels as f64;
    let mut sum = 0.0;
    for p in 0..panels {
        let mid = a + (p as f64 + 0.5) * h;
        let half = 0.5 * h;
        for (node, weight) in GL8_NODES.iter().zip(GL8_WEIGHTS) {
            sum += weight * (f(mid - half * node) + f(mid + half * node)) * half;
        }
    }
    sum
}

/// `I0e(x) = e^{-|x|} I0(x)`, the exponentially scaled modified Bessel function of order 0.
///
/// Abramowitz & Stegun 9.8.1 (`|x| ≤ 3.75`, relative error < 1.6e-7) and 9.8.2 (`|x| > 3.75`,
/// error of `√x e^{-x} I0(x)` < 1.9e-7, i.e. relative < 5e-7).
pub fn bessel_i0e(x: f64) -> f64 {
    let ax = x.abs();
    if ax <= 3.75 {
        let t = (ax / 3.75) * (ax / 3.75);
        let i0 = 1.0
            + t * (3.515_622_9
                + t * (3.089_942_4
                    + t * (1.206_749_2 + t * (0.265_973_2 + t * (0.036_076_8 + t * 0.004_581_3)))));
        i0 * libm::exp(-ax)
    } else {
        let t = 3.75 / ax;
        let p = 0.398_942_28
            + t * (0.013_285_92
                + t * (0.002_253_19
                    + t * (-0.001_575_65
                        + t * (0.009_162_81
                            + t * (-0.020_577_06
                                + t * (0.026_355_37 + t * (-0.016_476_33 + t * 0.003_923_77)))))));
        p / libm::sqrt(ax)
    }
}

/// `ln Σ exp(v)`; `-inf` for an empty slice or when every entry is `-inf`.
#[cfg(test)]
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + libm::log(values.iter().map(|v| libm::exp(v - max)).sum::<f64>())
}

/// A streaming `ln Σ exp(v)` that allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct LogSumExp {
    max: f64,
    sum: f64,
}

impl Default for LogSumExp {
    fn default() -> Self {
        Self {
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
}

impl LogSumExp {
    /// Adds one term `v` (may be `-inf`).
    pub fn add(&mut self, v: f64) {
        if v == f64::NEG_INFINITY || v.is_nan() {
            return;
        }
        if v <= self.max {
            self.sum += libm::exp(v - self.max);
        } else if v.is_finite() {
            self.sum = self.sum * libm::exp(self.max - v) + 1.0;
            self.max = v;
        }
    }

    /// `ln Σ exp(v)` so far (`-inf` if nothing finite was added).
    pub fn value(&self) -> f64 {
        if self.max.is_finite() {
            self.max + libm::log(self.sum)
        } else {
            f64::NEG_INFINITY
        }
    }
}

/// The index `i` with `cumulative[i-1] ≤ u < cumulative[i]` for a non-decreasing table whose last
/// entry is the total; `u` in `[0, total)`. Binary search: `O(log n)`, no allocation.
pub fn search_cumulative(cumulative: &[f64], u: f64) -> usize {
    let idx = cumulative.partition_point(|&c| c <= u);
    idx.min(cumulative.len().saturating_sub(1))
}

/// Builds the running sum of `weights` (all finite and ≥ 0) into a cumulative table.
pub fn cumulative_sum(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .into_iter()
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_a_gaussian_and_a_polynomial() {
        let poly = integrate_gl(0.0, 2.0, 1, |u| u.powi(15));
        assert!((poly - 2f64.powi(16) / 16.0).abs() < 1e-9 * poly);
        let gauss = integrate_gl(-8.0, 8.0, 8, |u| libm::exp(-0.5 * u * u));
        assert!(
            (gauss - (std::f64::consts::TAU).sqrt()).abs() < 1e-10,
            "{gauss}"
        );
    }

    #[test]
    fn i0e_matches_its_integral_definition() {
        // I0(x) = (1/π) ∫_0^π exp(x cos t) dt, so I0e(x) = (1/π) ∫_0^π exp(x (cos t − 1)) dt.
        for x in [0.0, 0.5, 2.0, 3.7, 3.8, 10.0, 100.0, 1000.0] {
            let reference = integrate_gl(0.0, std::f64::consts::PI, 64, |t| {
                libm::exp(x * (libm::cos(t) - 1.0))
            }) / std::f64::consts::PI;
            let rel = (bessel_i0e(x) - reference).abs() / reference;
            assert!(rel < 6e-7, "x {x}: {} vs {reference}", bessel_i0e(x));
        }
    }

    #[test]
    fn cumulative_search_finds_the_bucket() {
        let c = cumulative_sum([1.0, 0.0, 2.0, 1.0]);
        assert_eq!(c, vec![1.0, 1.0, 3.0, 4.0]);
        assert_eq!(search_cumulative(&c, 0.0), 0);
        assert_eq!(search_cumulative(&c, 0.999), 0);
        assert_eq!(search_cumulative(&c, 1.0), 2);
        assert_eq!(search_cumulative(&c, 3.5), 3);
        assert_eq!(search_cumulative(&c, 4.0), 3);
    }
}
