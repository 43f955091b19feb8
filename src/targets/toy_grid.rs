//! Densities of the toy sets that have no closed form (pinwheel, 2spirals, swissroll), tabulated
//! on a `320 × 320` grid over `[−5, 5]²` (cell `h = 1/32`) and scored by bilinear interpolation.
//!
//! Not a kernel density estimate on random samples: each set is "a latent variable pushed through
//! a map, plus noise", so a *deterministic quadrature* of the latent variable is pushed through the
//! map and deposited on the grid by cloud-in-cell, and the additive Gaussian noise is then applied
//! exactly as a Gaussian blur. Cloud-in-cell deposit adds variance `h²/6` per axis, so the blur
//! uses `σ_b² = σ² − h²/6` to cancel it. What remains is quadrature and interpolation error
//! (bilinear: relative `O(h²/σ²)`, about 1% at σ = 0.1), no bandwidth bias.
//! - swissroll: 4000 midpoint nodes in `t ∈ [1.5π, 4.5π]`, noise `σ = 1/5`.
//! - 2spirals: 3000 nodes in `n ∈ [0, 3π]` weighted by `p(n) = 2n/(3π)²`, × 8×8 nodes of the
//!   uniform offset box `[0, 1/6]²` (mirrored for the second spiral), noise `σ = 0.1`.
//! - pinwheel: the noise is not additive (it enters the twist), so the latent Gaussian `(f0, f1)`
//!   itself is the quadrature: 1200 × 200 Gauss-weighted nodes over ±5σ per arm, then a
//!   half-cell blur against aliasing (with the deposit it adds variance `h²/4 + h²/6 ≈ 4e-4`
//!   per axis, 1% of the arms' tangential variance 0.04).

use super::TargetError;
use super::grid::{GridDensity, deposit, gaussian_blur};
use super::toy::ToyKind;
use std::f64::consts::{PI, TAU};

const HALF: f64 = 5.0;
const CELLS: usize = 320;
/// Share of the mass the floor adds (keeps `ln p` finite far from the data).
const FLOOR_FRACTION: f64 = 1e-6;

/// FFJORD's pinwheel map: arm `arm ∈ {0..4}`, radial `f0`, tangential `f1`:
/// `a = 2π arm/5 + 0.25 e^{f0}`, `x = 2 (f0 cos a + f1 sin a, −f0 sin a + f1 cos a)`.
pub fn pinwheel_map(arm: f64, f0: f64, f1: f64) -> [f64; 2] {
    let a = TAU * arm / 5.0 + 0.25 * libm::exp(f0);
    let (s, c) = (libm::sin(a), libm::cos(a));
    [2.0 * (f0 * c + f1 * s), 2.0 * (-f0 * s + f1 * c)]
}

/// Tabulates the density of `kind` (pinwheel, 2spirals or swissroll).
pub fn build(kind: ToyKind) -> Result<GridDensity, TargetError> {
    let min = [-HALF, -HALF];
    let h = 2.0 * HALF / CELLS as f64;
    let cell = [h, h];
    let mut values = vec![0.0; CELLS * CELLS];
    let mut put = |x: [f64; 2], w: f64| deposit(&mut values, CELLS, CELLS, min, cell, x, w);
    let noise = match kind {
        ToyKind::SwissRoll => {
            let m = 4000;
            for k in 0..m {
                let t = 1.5 * PI + 3.0 * PI * (k as f64 + 0.5) / m as f64;
                put([t * libm::cos(t) / 5.0, t * libm::sin(t) / 5.0], 1.0);
            }
            0.2
        }
        ToyKind::TwoSpirals => {
            let (m, b) = (3000, 8);
            for k in 0..m {
                let n = 3.0 * PI * (k as f64 + 0.5) / m as f64;
                let curve = [-libm::cos(n) * n, libm::sin(n) * n];
                for (bi, bj) in (0..b * b).map(|q| (q % b, q / b)) {
                    let off = [
                        0.5 * (bi as f64 + 0.5) / b as f64,
                        0.5 * (bj as f64 + 0.5) / b as f64,
                    ];
                    for sign in [1.0, -1.0] {
                        put(
                            [
                                sign * (curve[0] + off[0]) / 3.0,
                                sign * (curve[1] + off[1]) / 3.0,
                            ],
                            n,
                        );
                    }
                }
            }
            0.1
        }
        _ => {
            let (m0, m1) = (1200, 200);
            for arm in 0..5 {
                for i in 0..m0 {
                    let z0 = -5.0 + 10.0 * (i as f64 + 0.5) / m0 as f64;
                    for j in 0..m1 {
                        let z1 = -5.0 + 10.0 * (j as f64 + 0.5) / m1 as f64;
                        let w = libm::exp(-0.5 * (z0 * z0 + z1 * z1));
                        put(pinwheel_map(arm as f64, 1.0 + 0.3 * z0, 0.1 * z1), w);
                    }
                }
            }
            // Half a cell of blur against aliasing of the node lattice; see the module doc.
            libm::hypot(0.5 * h, (h * h / 6.0).sqrt())
        }
    };
    let sigma_cells = (noise * noise - h * h / 6.0).max(0.0).sqrt() / h;
    gaussian_blur(&mut values, CELLS, CELLS, sigma_cells, sigma_cells);
    GridDensity::new(min, [HALF, HALF], CELLS, CELLS, values, FLOOR_FRACTION)
}
