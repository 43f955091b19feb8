//! Targets: the densities a flow learns. Each is a sampler (for maximum likelihood) and an
//! unnormalised log-density (for reverse KL and for the heat map).
//!
//! Depends only on `crate::rng`; knows nothing of flows, the engine or the UI.

use crate::rng::Rng;

mod arcs;
mod error;
mod special;
pub mod toy;

pub use error::TargetError;

/// Every built-in target name, in the order a menu shows them.
pub const NAMES: &[&str] = &["moons", "twomoons", "circles", "rings"];

/// Largest file (image or CSV) accepted, in bytes: 20 MB.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// The built-in target called `name` (one of [`NAMES`]).
pub fn by_name(name: &str) -> Result<Box<dyn Target>, TargetError> {
    use toy::{Toy, ToyKind};
    let target: Box<dyn Target> = match name {
        "moons" => Box::new(Toy::new(ToyKind::Moons)),
        "twomoons" => Box::new(Toy::new(ToyKind::TwoMoons)),
        "circles" => Box::new(Toy::new(ToyKind::Circles)),
        "rings" => Box::new(Toy::new(ToyKind::Rings)),
        _ => {
            return Err(TargetError::UnknownName {
                name: name.to_owned(),
                known: NAMES.join(", "),
            });
        }
    };
    Ok(target)
}

/// A rectangle of the plane, in data coordinates, that shows a target well.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewRect {
    /// Lower-left corner `[x, y]`.
    pub min: [f32; 2],
    /// Upper-right corner `[x, y]`.
    pub max: [f32; 2],
}

impl ViewRect {
    /// The square `[-half, half]²`.
    pub fn square(half: f32) -> Self {
        Self {
            min: [-half, -half],
            max: [half, half],
        }
    }
}

/// How trustworthy a target's `log_density` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DensityKind {
    /// A closed form, normalised by `log_normalizer`.
    Exact,
    /// An unnormalised energy whose normaliser was computed numerically (quadrature on a grid).
    NumericNormalizer,
    /// No closed form exists (data sets defined by a sampler): a kernel density estimate on
    /// many samples stands in, and the UI says so.
    KernelEstimate,
}

/// A 2-D target density.
pub trait Target: Send + Sync {
    /// Stable identifier used in URLs and on the CLI (`moons`, `8gaussians`, `u1`, …).
    fn name(&self) -> &str;
    /// One stable sentence shown in the UI.
    fn description(&self) -> &str;
    /// The rectangle the app shows by default.
    fn view(&self) -> ViewRect;
    /// Fills `out` with independent samples. Allocates nothing: the trainer calls it every step.
    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]);
    /// The (possibly unnormalised) log-density at `x`; `-inf` where the density is zero.
    fn log_density(&self, x: [f64; 2]) -> f64;
    /// `log Z` such that `log_density(x) - log Z` is normalised.
    fn log_normalizer(&self) -> f64;
    /// How `log_density` was obtained.
    fn density_kind(&self) -> DensityKind;

    /// `n` fresh samples.
    fn sample(&self, n: usize, rng: &mut Rng) -> Vec<[f32; 2]> {
        let mut out = vec![[0.0; 2]; n];
        self.sample_into(rng, &mut out);
        out
    }

    /// The normalised log-density.
    fn normalized_log_density(&self, x: [f64; 2]) -> f64 {
        self.log_density(x) - self.log_normalizer()
    }
}
