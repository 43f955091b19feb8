//! What a layer may add to a *training* graph beyond its log-density: random inputs the
//! trainer fills before every step (Hutchinson's probes, flow matching's draws) and a per-row
//! penalty added to the loss (a CNF's kinetic and Jacobian regularisers).
//!
//! Why here and not in `train`: layers build these nodes while they build their graphs, and
//! `flows` must not depend on `train`; the objectives map [`Noise`] to their input kinds.

use crate::engine::{Graph, Var};

/// The distribution of a random training input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Standard-normal draws.
    StandardNormal,
    /// `±1` with equal probability.
    Rademacher,
    /// Uniform draws in `[0, 1)`.
    Uniform,
}

/// A random input node of a training graph.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseInput {
    /// A name; layers asking for the same name share one draw (e.g. every time segment of a
    /// CNF uses the same Hutchinson probe, as FFJORD does over one solve).
    pub key: String,
    /// The input node.
    pub var: Var,
    /// What to draw into it.
    pub noise: Noise,
}

/// Random inputs and penalties collected while building a training graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingTerms {
    /// Random inputs, in creation order.
    pub noise: Vec<NoiseInput>,
    /// The sum of every layer's per-row penalty (`rows × 1`), if any.
    pub penalty: Option<Var>,
}

impl TrainingTerms {
    /// The `rows × cols` random input named `key`, created on first use.
    pub fn noise_input(
        &mut self,
        g: &mut Graph,
        key: &str,
        rows: usize,
        cols: usize,
        noise: Noise,
    ) -> Var {
        if let Some(existing) = self.noise.iter().find(|n| n.key == key) {
            return existing.var;
        }
        let var = g.input(rows, cols);
        self.noise.push(NoiseInput {
            key: key.to_string(),
            var,
            noise,
        });
        var
    }

    /// Adds a per-row penalty (`rows × 1`) to the loss.
    pub fn add_penalty(&mut self, g: &mut Graph, penalty: Var) {
        self.penalty = Some(match self.penalty {
            Some(p) => g.add(p, penalty),
            None => penalty,
        });
    }
}
