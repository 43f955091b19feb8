//! Flow matching (Lipman et al. 2023, *Flow Matching for Generative Modeling*): train the CNF's
//! vector field by regression, without simulating the ODE.
//!
//! The conditional optimal-transport path from a base draw `x₀ ~ N(0, I)` to a data point
//! `x₁` is `x_s = (1 − (1 − σ_min)s)·x₀ + s·x₁` for `s ∈ [0, 1]`, with velocity
//! `u = x₁ − (1 − σ_min)·x₀`; the loss is `E_{s, x₀, x₁} ‖f(x_s, s) − u‖²`, whose minimiser's
//! flow carries `N(0, I)` to the data (blurred by `σ_min`). With end time `T` the field runs on
//! `t = T·s`, so it regresses on `u / T`. Augmented dimensions are zero-padded in `x₁` (their
//! base coordinates are drawn like the others). Sampling and densities afterwards use the same
//! solvers as a maximum-likelihood CNF.

use super::field::Time;
use super::ode_of;
use crate::engine::{Axis, Graph, Var};
use crate::flows::{Flow, Noise, TrainingTerms};

/// The flow-matching loss as a graph.
#[derive(Clone, Debug)]
pub struct FlowMatchingGraph {
    /// The graph.
    pub graph: Graph,
    /// `mean_rows ‖f(x_s, T·s) − u/T‖²`, `1×1`.
    pub loss: Var,
    /// The data batch `x₁` (`batch × dim`).
    pub data: Var,
    /// The random inputs: `x₀` (standard normal, `batch × D`) and `s` (uniform, `batch × 1`).
    pub terms: TrainingTerms,
}

/// Builds flow matching's loss for `flow`'s vector field, or `None` if it has none.
pub fn flow_matching(flow: &Flow, batch: usize) -> Option<FlowMatchingGraph> {
    let ode = ode_of(flow)?;
    let mut g = Graph::new();
    let mut terms = TrainingTerms::default();
    let data = g.input(batch, flow.dim);
    let x1 = ode.pad(&mut g, data);
    let d = ode.state_dim();
    let x0 = terms.noise_input(&mut g, "matching.x0", batch, d, Noise::StandardNormal);
    let s = terms.noise_input(&mut g, "matching.s", batch, 1, Noise::Uniform);
    let keep = 1.0 - ode.options.sigma_min;
    let end = ode.options.end_time;
    // x_s = (1 − keep·s)·x₀ + s·x₁
    let coef = g.scale(s, -keep);
    let coef = g.add_scalar(coef, 1.0);
    let from_base = g.mul(coef, x0);
    let from_data = g.mul(s, x1);
    let xs = g.add(from_base, from_data);
    // u/T = (x₁ − keep·x₀)/T
    let scaled_x0 = g.scale(x0, keep);
    let mut u = g.sub(x1, scaled_x0);
    let mut t = s;
    if end != 1.0 {
        u = g.scale(u, 1.0 / end);
        t = g.scale(s, end);
    }
    let f = ode.field.vars(&mut g).eval(&mut g, xs, Time::Node(t)).f;
    let diff = g.sub(f, u);
    let sq = g.square(diff);
    let total = g.sum(Axis::All, sq);
    let loss = g.scale(total, 1.0 / batch.max(1) as f32);
    Some(FlowMatchingGraph {
        graph: g,
        loss,
        data,
        terms,
    })
}
