//! The FFJORD toy data sets (Grathwohl et al. 2019, `lib/toy_data.py`) and the benchmark's two
//! moons, each as an i.i.d. sampler that follows the original construction and the best density
//! available for it.
//!
//! Where the original draws a fixed grid of angles (`np.linspace` in sklearn's `make_moons` /
//! `make_circles` and in FFJORD's `rings`) or a fixed number of points per class, the sampler draws
//! the angle uniformly and the class with the same proportion: the same distribution, i.i.d.

use super::arcs::{Arc, ArcSet};
use super::{DensityKind, Target, ViewRect};
use crate::rng::Rng;
use std::f64::consts::PI;

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
}

/// A toy data set: its sampler and density.
pub struct Toy {
    kind: ToyKind,
    density: ToyDensity,
}

enum ToyDensity {
    Arcs(ArcSet),
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
        };
        Self { kind, density }
    }

    /// Which toy set this is.
    pub fn kind(&self) -> ToyKind {
        self.kind
    }
}

impl Target for Toy {
    fn name(&self) -> &str {
        match self.kind {
            ToyKind::Moons => "moons",
            ToyKind::TwoMoons => "twomoons",
            ToyKind::Circles => "circles",
            ToyKind::Rings => "rings",
        }
    }

    fn description(&self) -> &str {
        match self.kind {
            ToyKind::Moons => {
                "FFJORD's two moons: sklearn make_moons with noise 0.1, scaled by 2; exact density."
            }
            ToyKind::TwoMoons => {
                "The benchmark's two moons: make_moons with noise 0.05, scaled by 2 and centred; exact density."
            }
            ToyKind::Circles => {
                "FFJORD's circles: two concentric rings of radius 3 and 1.5 with noise 0.24; exact density."
            }
            ToyKind::Rings => {
                "FFJORD's rings: four concentric circles of radius 0.75 to 3 with noise 0.08; exact density."
            }
        }
    }

    fn view(&self) -> ViewRect {
        match self.kind {
            ToyKind::TwoMoons => ViewRect::square(3.5),
            _ => ViewRect::square(4.0),
        }
    }

    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        match &self.density {
            ToyDensity::Arcs(arcs) => arcs.sample_into(rng, out),
        }
    }

    fn log_density(&self, x: [f64; 2]) -> f64 {
        match &self.density {
            ToyDensity::Arcs(arcs) => arcs.log_density(x),
        }
    }

    fn log_normalizer(&self) -> f64 {
        0.0
    }

    fn density_kind(&self) -> DensityKind {
        DensityKind::Exact
    }
}
