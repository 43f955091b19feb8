//! The base distribution: a standard normal, or a diagonal Gaussian with learnable mean and
//! log-scale. `log N(z; μ, σ²) = −½ Σ_j ((z_j − μ_j)/σ_j)² − Σ_j log σ_j − (D/2)·log 2π`.

use super::ParamRef;
use crate::engine::{Axis, Graph, Init, ParamStore, Var};
use crate::rng::Rng;

const HALF_LOG_TAU: f32 = 0.918_938_5; // ½·log(2π)

/// The distribution at the flow's base.
#[derive(Clone, Debug, PartialEq)]
pub enum Base {
    /// `N(0, I)`.
    StandardNormal {
        /// Dimension.
        dim: usize,
    },
    /// `N(μ, diag σ²)` with `μ` and `log σ` trained.
    DiagonalGaussian {
        /// Dimension.
        dim: usize,
        /// Mean `1 × dim`.
        mean: ParamRef,
        /// `log σ`, `1 × dim`.
        log_std: ParamRef,
    },
}

impl Base {
    /// A learnable diagonal Gaussian starting at `N(0, I)`.
    pub fn diagonal(store: &mut ParamStore, dim: usize, rng: &mut Rng) -> Self {
        Base::DiagonalGaussian {
            dim,
            mean: ParamRef::new(store, "base.mean", 1, dim, Init::Constant(0.0), rng),
            log_std: ParamRef::new(store, "base.log_std", 1, dim, Init::Constant(0.0), rng),
        }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        match self {
            Base::StandardNormal { dim } | Base::DiagonalGaussian { dim, .. } => *dim,
        }
    }

    /// `log p₀(z)` per row.
    pub fn log_prob(&self, g: &mut Graph, z: Var) -> Var {
        let dim = self.dim() as f32;
        match self {
            Base::StandardNormal { .. } => {
                let sq = g.square(z);
                let s = g.sum(Axis::Cols, sq);
                let s = g.scale(s, -0.5);
                g.add_scalar(s, -dim * HALF_LOG_TAU)
            }
            Base::DiagonalGaussian { mean, log_std, .. } => {
                let (m, ls) = (mean.var(g), log_std.var(g));
                let centred = g.sub(z, m);
                let neg_ls = g.neg(ls);
                let inv_std = g.exp(neg_ls);
                let u = g.mul(centred, inv_std);
                let sq = g.square(u);
                let s = g.sum(Axis::Cols, sq);
                let s = g.scale(s, -0.5);
                let log_norm = g.sum(Axis::All, ls);
                let s = g.sub(s, log_norm);
                g.add_scalar(s, -dim * HALF_LOG_TAU)
            }
        }
    }

    /// Maps standard-normal draws `eps` to base samples `z`, with `log p₀(z)` per row.
    pub fn sample(&self, g: &mut Graph, eps: Var) -> (Var, Var) {
        match self {
            Base::StandardNormal { .. } => (eps, self.log_prob(g, eps)),
            Base::DiagonalGaussian { mean, log_std, .. } => {
                let (m, ls) = (mean.var(g), log_std.var(g));
                let std = g.exp(ls);
                let scaled = g.mul(eps, std);
                let z = g.add(scaled, m);
                (z, self.log_prob(g, z))
            }
        }
    }
}
