//! Energies: targets given as `p(x) ∝ exp(−U(x))`, for reverse-KL training.
//! `log_density` is `−U(x)`, unnormalised; `log_normalizer` is `ln Z`.
//!
//! Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", Table 1, with
//! `w1 = sin(2π z1 / 4)`, `w2 = 3 exp(−½((z1 − 1)/0.6)²)`, `w3 = 3 σ((z1 − 1)/0.3)`:
//! - U1 `= ½((‖z‖ − 2)/0.4)² − ln(e^{−½((z1−2)/0.6)²} + e^{−½((z1+2)/0.6)²})` (ring with two modes)
//! - U2 `= ½((z2 − w1)/0.4)²`
//! - U3 `= −ln(e^{−½((z2 − w1)/0.35)²} + e^{−½((z2 − w1 + w2)/0.35)²})`
//! - U4 `= −ln(e^{−½((z2 − w1)/0.4)²} + e^{−½((z2 − w1 + w3)/0.35)²})`
//!
//! U2–U4 are constant along `z1` far out, so they have no finite normaliser on the plane; the
//! paper shows them on `[−4, 4]²`. Here they get a soft wall `½((|z1| − 4)₊ / 0.2)²` that leaves
//! the box untouched and makes `Z` finite (and keeps a gradient outside, unlike a hard cut).
//!
//! `ln Z` of U1–U4: midpoint rule on `700 × 700` cells over `[−7, 7]²` (h = 0.02), computed once
//! on first use and cached. The box holds the mass to ≥ 5.7 of the narrowest width (0.35), so
//! the truncation error is < 1e-8; halving `h` changes `ln Z` by < 1e-9 (test
//! `normalizer_quadrature_has_converged`). Samples of U1–U4 and the ring mixture: a cell of that
//! grid by inverse CDF on `exp(−U)` at the cell centres, then a uniform point inside the cell
//! (piecewise-constant approximation at h = 0.02, about 1/20 of the narrowest width).
//!
//! Exact in closed form:
//! - banana: `x1 = 1.15 z1`, `x2 = 0.35 z2 + 0.5 x1² − 1.5` (a twisted Gaussian),
//!   `U = x1²/(2·1.15²) + (x2 − 0.5 x1² + 1.5)²/(2·0.35²)`, `Z = 2π·1.15·0.35`; exact sampling.
//! - funnel (Neal 2003), `x = (x1, v)`: `v ~ N(0, 3²)`, `x1 | v ~ N(0, e^v)`,
//!   `U = v²/18 + x1² e^{−v}/2 + v/2`, `Z = 6π`; exact sampling.
//! - ring mixture: four rings of radius 1, width 0.1, centred at `(±2, 0)` and `(0, ±2)`,
//!   `U = −ln Σ_k exp(−(‖x − c_k‖ − 1)²/(2·0.1²))`; each ring has
//!   `Z_k = 2π (s² e^{−R²/2s²} + R s √(2π) Φ(R/s))`, so `Z = 4 Z_1` exactly.

use super::grid::GridDensity;
use super::special::LogSumExp;
use super::{DensityKind, Target, TargetError, ViewRect};
use crate::rng::Rng;
use std::f64::consts::{PI, TAU};
use std::sync::OnceLock;

/// Which energy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnergyKind {
    /// Rezende & Mohamed's U1: a ring with two modes.
    U1,
    /// U2: a sine wave.
    U2,
    /// U3: a sine wave split by a bump.
    U3,
    /// U4: a sine wave split by a step.
    U4,
    /// A twisted Gaussian (exact).
    Banana,
    /// Neal's funnel in 2-D (exact).
    Funnel,
    /// Four separate rings (exact normaliser).
    RingMixture,
}

/// An energy target.
pub struct Energy {
    kind: EnergyKind,
    /// The quadrature grid: normaliser and sampler (built on first use).
    grid: OnceLock<Result<GridDensity, TargetError>>,
}

const GRID_HALF: f64 = 7.0;
const GRID_CELLS: usize = 700;
const BANANA: (f64, f64, f64, f64) = (1.15, 0.35, 0.5, 1.5);
const RING: (f64, f64) = (1.0, 0.1);
const RING_CENTRES: [[f64; 2]; 4] = [[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]];

fn gauss_log(d: f64, s: f64) -> f64 {
    -0.5 * (d / s) * (d / s)
}

fn wall(z1: f64) -> f64 {
    let over = (z1.abs() - 4.0).max(0.0) / 0.2;
    0.5 * over * over
}

/// The energy `U(x)` of `kind`.
pub fn energy(kind: EnergyKind, x: [f64; 2]) -> f64 {
    let [z1, z2] = x;
    let w1 = libm::sin(TAU * z1 / 4.0);
    let two = |a: f64, b: f64| {
        let mut acc = LogSumExp::default();
        acc.add(a);
        acc.add(b);
        -acc.value()
    };
    match kind {
        EnergyKind::U1 => {
            let r = libm::hypot(z1, z2);
            -gauss_log(r - 2.0, 0.4) + two(gauss_log(z1 - 2.0, 0.6), gauss_log(z1 + 2.0, 0.6))
        }
        EnergyKind::U2 => -gauss_log(z2 - w1, 0.4) + wall(z1),
        EnergyKind::U3 => {
            let w2 = 3.0 * libm::exp(gauss_log(z1 - 1.0, 0.6));
            two(gauss_log(z2 - w1, 0.35), gauss_log(z2 - w1 + w2, 0.35)) + wall(z1)
        }
        EnergyKind::U4 => {
            let w3 = 3.0 / (1.0 + libm::exp(-(z1 - 1.0) / 0.3));
            two(gauss_log(z2 - w1, 0.4), gauss_log(z2 - w1 + w3, 0.35)) + wall(z1)
        }
        EnergyKind::Banana => {
            let (a, s, b, d) = BANANA;
            -gauss_log(z1, a) - gauss_log(z2 - b * z1 * z1 + d, s)
        }
        EnergyKind::Funnel => z2 * z2 / 18.0 + 0.5 * z1 * z1 * libm::exp(-z2) + 0.5 * z2,
        EnergyKind::RingMixture => {
            let mut acc = LogSumExp::default();
            for c in RING_CENTRES {
                acc.add(gauss_log(
                    libm::hypot(z1 - c[0], z2 - c[1]) - RING.0,
                    RING.1,
                ));
            }
            -acc.value()
        }
    }
}

impl Energy {
    /// The energy `kind`.
    pub fn new(kind: EnergyKind) -> Self {
        Self {
            kind,
            grid: OnceLock::new(),
        }
    }

    /// Which energy this is.
    pub fn kind(&self) -> EnergyKind {
        self.kind
    }

    fn grid(&self) -> Option<&GridDensity> {
        self.grid
            .get_or_init(|| {
                let h = 2.0 * GRID_HALF / GRID_CELLS as f64;
                let centre = |k: usize| -GRID_HALF + (k as f64 + 0.5) * h;
                let values = (0..GRID_CELLS * GRID_CELLS)
                    .map(|k| {
                        libm::exp(-energy(
                            self.kind,
                            [centre(k % GRID_CELLS), centre(k / GRID_CELLS)],
                        ))
                    })
                    .collect();
                let (lo, hi) = ([-GRID_HALF; 2], [GRID_HALF; 2]);
                GridDensity::new(lo, hi, GRID_CELLS, GRID_CELLS, values, 0.0)
            })
            .as_ref()
            .ok()
    }
}

/// `ln Z` of one ring `exp(−(‖x‖ − R)²/2s²)`: `ln 2π(s² e^{−R²/2s²} + R s √(2π) Φ(R/s))`.
fn ring_log_normalizer(r: f64, s: f64) -> f64 {
    let phi = 0.5 * (1.0 + libm::erf(r / (s * std::f64::consts::SQRT_2)));
    libm::log(TAU * (s * s * libm::exp(-r * r / (2.0 * s * s)) + r * s * libm::sqrt(TAU) * phi))
}

impl Target for Energy {
    fn name(&self) -> &str {
        match self.kind {
            EnergyKind::U1 => "u1",
            EnergyKind::U2 => "u2",
            EnergyKind::U3 => "u3",
            EnergyKind::U4 => "u4",
            EnergyKind::Banana => "banana",
            EnergyKind::Funnel => "funnel",
            EnergyKind::RingMixture => "ringmix",
        }
    }

    fn description(&self) -> &str {
        // Why: the catalog holds the one copy of each sentence.
        super::registry::description_of(self.name())
    }

    fn view(&self) -> ViewRect {
        match self.kind {
            EnergyKind::Funnel => ViewRect {
                min: [-8.0, -7.5],
                max: [8.0, 7.5],
            },
            EnergyKind::RingMixture => ViewRect::square(3.5),
            _ => ViewRect::square(4.0),
        }
    }

    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        match self.kind {
            EnergyKind::Banana => {
                let (a, s, b, d) = BANANA;
                for p in out {
                    let x1 = a * rng.normal_f64();
                    let x2 = s * rng.normal_f64() + b * x1 * x1 - d;
                    *p = [x1 as f32, x2 as f32];
                }
            }
            EnergyKind::Funnel => {
                for p in out {
                    let v = 3.0 * rng.normal_f64();
                    let x1 = libm::exp(0.5 * v) * rng.normal_f64();
                    *p = [x1 as f32, v as f32];
                }
            }
            _ => {
                if let Some(g) = self.grid() {
                    g.sample_into(rng, out);
                }
            }
        }
    }

    fn log_density(&self, x: [f64; 2]) -> f64 {
        -energy(self.kind, x)
    }

    fn log_normalizer(&self) -> f64 {
        match self.kind {
            EnergyKind::Banana => libm::log(TAU * BANANA.0 * BANANA.1),
            EnergyKind::Funnel => libm::log(6.0 * PI),
            EnergyKind::RingMixture => libm::log(4.0) + ring_log_normalizer(RING.0, RING.1),
            _ => self.grid().map_or(f64::NAN, GridDensity::log_mass),
        }
    }

    fn density_kind(&self) -> DensityKind {
        match self.kind {
            EnergyKind::Banana | EnergyKind::Funnel | EnergyKind::RingMixture => DensityKind::Exact,
            _ => DensityKind::NumericNormalizer,
        }
    }

    fn has_smooth_log_density(&self) -> bool {
        true
    }
}
