//! The FFJORD toy data sets (Grathwohl et al. 2019, `lib/toy_data.py`) and the benchmark's two
//! moons, each as an i.i.d. sampler that follows the original construction and the best density
//! available for it.
//!
//! Where the original draws a fixed grid of angles (`np.linspace` in sklearn's `make_moons` /
//! `make_circles` and in FFJORD's `rings`) or a fixed number of points per class, the sampler draws
//! the angle uniformly and the class with the same proportion: the same distribution, i.i.d.

use super::arcs::{Arc, ArcSet};
use super::grid::GridDensity;
use super::mixture::{Component, Mixture};
use super::{DensityKind, Target, TargetError, ViewRect, toy_grid};
use crate::rng::Rng;
use std::f64::consts::PI;
use std::sync::OnceLock;

/// Which toy set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyKind {
    /// FFJORD `moons`: sklearn `make_moons(noise=0.1)·2 + (−1, −0.2)`.
    Moons,
    /// The benchmark's moons (`peers/bench_torch.py`): `make_moons(noise=0.05)·2 − (1, 0.5)`.
    TwoMoons,
    /// FFJORD `circles`: sklearn `make_circles(factor=0.5, noise=0.08)·3`.
    Circles,
    /// FFJORD `rings`: four circles of radius 3, 2.25, 1.5, 0.75, noise 0.08.
    Rings,
    /// FFJORD `8gaussians`: `(4 c_k + N(0, 0.5²)) / 1.414`, `c_k` the 8 unit compass directions.
    EightGaussians,
    /// FFJORD `checkerboard`: uniform on the 8 dark squares of a 4×4 board of side-2 squares.
    Checkerboard,
    /// FFJORD `pinwheel`: 5 arms; radial N(1, 0.3²), tangential N(0, 0.1²), twisted by
    /// `0.25 exp(radial)`, then ·2.
    Pinwheel,
    /// FFJORD `2spirals`: `n = 3π √U`, `±(−n cos n + U₁/2, n sin n + U₂/2) / 3 + N(0, 0.1²)`.
    TwoSpirals,
    /// FFJORD `swissroll`: sklearn `make_swiss_roll(noise=1)` columns 0 and 2, divided by 5.
    SwissRoll,
}

/// A toy data set: its sampler and density.
pub struct Toy {
    kind: ToyKind,
    density: ToyDensity,
}

enum ToyDensity {
    Arcs(ArcSet),
    Gaussians(Mixture),
    Checkerboard,
    /// Tabulated on a grid when first needed (see `toy_grid`).
    Gridded(OnceLock<Result<GridDensity, TargetError>>),
}

/// FFJORD's 8 Gaussians: centres `4 c_k / 1.414`, standard deviation `0.5 / 1.414`.
fn eight_gaussians() -> Mixture {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let dirs = [
        [1.0, 0.0],
        [-1.0, 0.0],
        [0.0, 1.0],
        [0.0, -1.0],
        [s, s],
        [s, -s],
        [-s, s],
        [-s, -s],
    ];
    let scale = 4.0 / 1.414;
    Mixture::from_valid(
        dirs.iter()
            .map(|d| Component::isotropic([scale * d[0], scale * d[1]], 0.5 / 1.414, 1.0))
            .collect(),
    )
}

/// sklearn's moons scaled by `scale` and shifted by `shift`, with noise `noise` (before scaling).
///
/// `make_moons`: outer `(cos θ, sin θ)`, inner `(1 − cos θ, 0.5 − sin θ)`, `θ ∈ [0, π]`, half the
/// points each, then `N(0, noise²)` per coordinate. The inner moon is the circle of centre
/// `(1, 0.5)` at angles `θ + π`.
fn moons(noise: f64, scale: f64, shift: [f64; 2]) -> ArcSet {
    let arc = |center: [f64; 2], start: f64| Arc {
        center: [center[0] * scale + shift[0], center[1] * scale + shift[1]],
        radius: scale,
        start,
        span: PI,
        weight: 0.5,
    };
    ArcSet::new(
        vec![arc([0.0, 0.0], 0.0), arc([1.0, 0.5], PI)],
        noise * scale,
    )
}

/// Concentric full circles of the given radii, equal weights.
fn circles(radii: &[f64], noise: f64) -> ArcSet {
    let arcs = radii
        .iter()
        .map(|&radius| Arc {
            center: [0.0, 0.0],
            radius,
            start: 0.0,
            span: 2.0 * PI,
            weight: 1.0,
        })
        .collect();
    ArcSet::new(arcs, noise)
}

impl Toy {
    /// The toy set `kind`.
    pub fn new(kind: ToyKind) -> Self {
        let density = match kind {
            ToyKind::Moons => ToyDensity::Arcs(moons(0.1, 2.0, [-1.0, -0.2])),
            ToyKind::TwoMoons => ToyDensity::Arcs(moons(0.05, 2.0, [-1.0, -0.5])),
            // make_circles: n//2 points on the unit circle, the rest at `factor`; then ·3.
            ToyKind::Circles => ToyDensity::Arcs(circles(&[3.0, 1.5], 0.08 * 3.0)),
            // rings: batch//4 points on each circle (radii 1, .75, .5, .25, ·3), noise added after.
            ToyKind::Rings => ToyDensity::Arcs(circles(&[3.0, 2.25, 1.5, 0.75], 0.08)),
            ToyKind::EightGaussians => ToyDensity::Gaussians(eight_gaussians()),
            ToyKind::Checkerboard => ToyDensity::Checkerboard,
            ToyKind::Pinwheel | ToyKind::TwoSpirals | ToyKind::SwissRoll => {
                ToyDensity::Gridded(OnceLock::new())
            }
        };
        Self { kind, density }
    }

    /// Which toy set this is.
    pub fn kind(&self) -> ToyKind {
        self.kind
    }

    fn grid<'a>(
        &self,
        cell: &'a OnceLock<Result<GridDensity, TargetError>>,
    ) -> Option<&'a GridDensity> {
        cell.get_or_init(|| toy_grid::build(self.kind))
            .as_ref()
            .ok()
    }
}

/// FFJORD `checkerboard`, one draw: `x1 = 4U − 2`, `x2 = U − 2B + (⌊x1⌋ mod 2)`, then ·2.
fn checkerboard_point(rng: &mut Rng) -> [f64; 2] {
    let x1 = rng.uniform_f64() * 4.0 - 2.0;
    let x2 = rng.uniform_f64() - 2.0 * (rng.below(2) as f64) + libm::floor(x1).rem_euclid(2.0);
    [2.0 * x1, 2.0 * x2]
}

/// `ln p` of the checkerboard: `1/32` on squares with `⌊x/2⌋ + ⌊y/2⌋` even inside `[−4, 4)²`.
fn checkerboard_log_density(x: [f64; 2]) -> f64 {
    let inside = x.iter().all(|v| (-4.0..4.0).contains(v));
    let parity = (libm::floor(x[0] / 2.0) + libm::floor(x[1] / 2.0)).rem_euclid(2.0);
    if inside && parity == 0.0 {
        -libm::log(32.0)
    } else {
        f64::NEG_INFINITY
    }
}

/// FFJORD `pinwheel`, one draw (an i.i.d. arm instead of `batch/5` per arm).
fn pinwheel_point(rng: &mut Rng) -> [f64; 2] {
    let arm = rng.below(5) as f64;
    let f0 = 1.0 + 0.3 * rng.normal_f64();
    let f1 = 0.1 * rng.normal_f64();
    toy_grid::pinwheel_map(arm, f0, f1)
}

/// FFJORD `2spirals`, one draw.
fn two_spirals_point(rng: &mut Rng) -> [f64; 2] {
    let n = libm::sqrt(rng.uniform_f64()) * 3.0 * PI;
    let bx = 0.5 * rng.uniform_f64();
    let by = 0.5 * rng.uniform_f64();
    let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
    [
        sign * (-libm::cos(n) * n + bx) / 3.0 + 0.1 * rng.normal_f64(),
        sign * (libm::sin(n) * n + by) / 3.0 + 0.1 * rng.normal_f64(),
    ]
}

/// sklearn `make_swiss_roll(noise=1)` → columns `[0, 2]` → `/5`: `t = 1.5π (1 + 2U)`.
fn swiss_roll_point(rng: &mut Rng) -> [f64; 2] {
    let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform_f64());
    [
        (t * libm::cos(t) + rng.normal_f64()) / 5.0,
        (t * libm::sin(t) + rng.normal_f64()) / 5.0,
    ]
}

impl Target for Toy {
    fn name(&self) -> &str {
        match self.kind {
            ToyKind::Moons => "moons",
            ToyKind::TwoMoons => "twomoons",
            ToyKind::Circles => "circles",
            ToyKind::Rings => "rings",
            ToyKind::EightGaussians => "8gaussians",
            ToyKind::Checkerboard => "checkerboard",
            ToyKind::Pinwheel => "pinwheel",
            ToyKind::TwoSpirals => "2spirals",
            ToyKind::SwissRoll => "swissroll",
        }
    }

    fn description(&self) -> &str {
        // Why: the catalog holds the one copy of each sentence.
        super::registry::description_of(self.name())
    }

    fn view(&self) -> ViewRect {
        match self.kind {
            ToyKind::TwoMoons => ViewRect::square(3.5),
            _ => ViewRect::square(4.0),
        }
    }

    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        let draw: fn(&mut Rng) -> [f64; 2] = match &self.density {
            ToyDensity::Arcs(arcs) => return arcs.sample_into(rng, out),
            ToyDensity::Gaussians(m) => return m.sample_into(rng, out),
            ToyDensity::Checkerboard => checkerboard_point,
            ToyDensity::Gridded(_) => match self.kind {
                ToyKind::Pinwheel => pinwheel_point,
                ToyKind::TwoSpirals => two_spirals_point,
                _ => swiss_roll_point,
            },
        };
        for p in out {
            let [x, y] = draw(rng);
            *p = [x as f32, y as f32];
        }
    }

    fn log_density(&self, x: [f64; 2]) -> f64 {
        match &self.density {
            ToyDensity::Arcs(arcs) => arcs.log_density(x),
            ToyDensity::Gaussians(m) => m.log_density(x),
            ToyDensity::Checkerboard => checkerboard_log_density(x),
            ToyDensity::Gridded(cell) => self
                .grid(cell)
                .map_or(f64::NEG_INFINITY, |g| g.log_density(x)),
        }
    }

    fn log_normalizer(&self) -> f64 {
        match &self.density {
            ToyDensity::Gridded(cell) => self.grid(cell).map_or(0.0, GridDensity::log_normalizer),
            _ => 0.0,
        }
    }

    fn density_kind(&self) -> DensityKind {
        match &self.density {
            ToyDensity::Gridded(_) => DensityKind::KernelEstimate,
            _ => DensityKind::Exact,
        }
    }
}
