//! Training objectives, each built as a graph whose inputs the trainer fills every step.
//!
//! - **Maximum likelihood** = forward KL: `L = −(1/n) Σ log p_θ(x_j)`, `x_j ~ p*`; equal to
//!   `KL(p*‖p_θ)` up to the target's entropy.
//! - **Reverse KL** against an unnormalised `log p̃*`: `KL(q_θ‖p*) = E_z[log q_θ(f(z)) − log p*(f(z))]`,
//!   differentiated by reparameterisation. `∇_x log p̃*` is computed outside the graph (targets
//!   are arbitrary code: painted grids, images) and enters as an input `G`; the surrogate
//!   `mean(log q(x) − Σ_j G_j x_j)` has exactly the reparameterised gradient. For 2-D flows the
//!   score term `∂_θ log q_θ(x)|_x` (zero in expectation) is left out ([`reverse_kl_path`]): the
//!   path gradient, whose variance vanishes as `q` approaches `p*`.
//! - **Flow matching** (CNF only; Lipman et al. 2023) lives with the CNF in
//!   `flows::cnf::matching`; [`flow_matching`] wraps it.
//!
//! Layers may add random inputs and penalties to the training graph
//! ([`crate::flows::TrainingTerms`]): a CNF's Hutchinson probes become inputs the trainer
//! fills, and its regularisers `λ_K∫‖f‖² + λ_J∫‖∂f/∂z‖_F²` are added to the MLE loss (so the
//! reported loss is the NLL plus the penalty, and a Hutchinson-trained NLL is an estimate).
//!
//! Which objective applies to which flow and target, and which one a run uses by default, is
//! decided here and nowhere else: [`ObjectiveKind::applies`] and [`ObjectiveKind::default_for`].

use crate::engine::{Axis, Graph, Unary, Var};
use crate::flows::{Family, Flow, Noise, TrainingTerms};
use crate::targets::Target;

/// What the trainer writes into an input node before each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputKind {
    /// A batch from the target (`rows × 2`).
    TargetSamples,
    /// Standard-normal draws.
    StandardNormal,
    /// Uniform draws in `[0, 1)`.
    Uniform,
    /// Rademacher (±1) draws (Hutchinson probes).
    Rademacher,
    /// `∇_x log p̃*(x)` at the rows of node `at`, computed after the graph's nodes before the
    /// input have run.
    TargetScore {
        /// The sample node.
        at: Var,
    },
}

/// Which objective to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ObjectiveKind {
    /// Maximum likelihood from target samples (forward KL).
    Mle,
    /// Reverse KL against the target's unnormalised log-density.
    ReverseKl,
    /// Conditional flow matching (CNF only).
    FlowMatching,
}

impl ObjectiveKind {
    /// Every objective, in menu order.
    pub const ALL: [ObjectiveKind; 3] = [
        ObjectiveKind::Mle,
        ObjectiveKind::ReverseKl,
        ObjectiveKind::FlowMatching,
    ];

    /// CLI/URL name.
    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Mle => "mle",
            ObjectiveKind::ReverseKl => "reverse-kl",
            ObjectiveKind::FlowMatching => "flow-matching",
        }
    }

    /// Display name.
    pub fn title(self) -> &'static str {
        match self {
            ObjectiveKind::Mle => "maximum likelihood",
            ObjectiveKind::ReverseKl => "reverse KL",
            ObjectiveKind::FlowMatching => "flow matching",
        }
    }

    /// Parses a CLI/URL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether this objective can train `family` on `target`, and if not, why: reverse KL
    /// needs a target with a smooth log-density (its score drives the gradient); flow matching
    /// needs a vector field (CNF); maximum likelihood always applies.
    pub fn applies(self, family: Family, target: &dyn Target) -> Result<(), NotApplicable> {
        match self {
            ObjectiveKind::Mle => Ok(()),
            ObjectiveKind::ReverseKl if target.has_smooth_log_density() => Ok(()),
            ObjectiveKind::ReverseKl => Err(NotApplicable::NoSmoothLogDensity {
                target: target.name().to_owned(),
            }),
            ObjectiveKind::FlowMatching if family == Family::Cnf => Ok(()),
            ObjectiveKind::FlowMatching => Err(NotApplicable::NotContinuous {
                family: family.name(),
            }),
        }
    }

    /// The objective a run of `family` on `target` uses unless told otherwise (the app, the
    /// CLI and the benchmarks alike): reverse KL for planar/radial on a target with a smooth
    /// log-density (the setting of their paper; their density direction needs a root solve),
    /// flow matching for a CNF (simulation-free, so a frame fits many steps), maximum
    /// likelihood otherwise. It always [`applies`](Self::applies).
    pub fn default_for(family: Family, target: &dyn Target) -> ObjectiveKind {
        match family {
            Family::Planar | Family::Radial if target.has_smooth_log_density() => {
                ObjectiveKind::ReverseKl
            }
            Family::Cnf => ObjectiveKind::FlowMatching,
            _ => ObjectiveKind::Mle,
        }
    }
}

/// Why an objective cannot train a flow on a target; `Display` is one line for the user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    /// Reverse KL on a target without a smooth log-density.
    #[error(
        "reverse KL needs a target with a smooth log-density, and `{target}` has none; train it by maximum likelihood"
    )]
    NoSmoothLogDensity {
        /// The target's name.
        target: String,
    },
    /// Flow matching on a flow without a vector field.
    #[error("flow matching trains continuous flows (cnf) only, not `{family}`")]
    NotContinuous {
        /// The family's name.
        family: &'static str,
    },
}

/// An objective's graph: a scalar loss and the inputs to fill.
#[derive(Clone, Debug)]
pub struct ObjectiveGraph {
    /// The graph.
    pub graph: Graph,
    /// The scalar to minimise.
    pub loss: Var,
    /// Inputs with what to write into them, in node order.
    pub inputs: Vec<(Var, InputKind)>,
    /// For reverse KL: the samples and their `log q` (the KL value is computed from them).
    pub samples: Option<(Var, Var)>,
}

/// Negative mean log-likelihood of a target batch (plus the layers' mean penalty, if any).
pub fn mle(flow: &Flow, batch: usize) -> ObjectiveGraph {
    let mut g = Graph::new();
    let x = g.input(batch, flow.dim);
    let (d, terms) = flow.training_density_graph(&mut g, x);
    let per_sample = match terms.penalty {
        Some(p) => g.sub(d.log_prob, p),
        None => d.log_prob,
    };
    let mean = g.mean(Axis::All, per_sample);
    let loss = g.neg(mean);
    let mut inputs = vec![(x, InputKind::TargetSamples)];
    inputs.extend(noise_inputs(&terms));
    ObjectiveGraph {
        graph: g,
        loss,
        inputs,
        samples: None,
    }
}

/// Conditional flow matching for a flow with a vector field (a CNF); `None` for others.
pub fn flow_matching(flow: &Flow, batch: usize) -> Option<ObjectiveGraph> {
    let m = crate::flows::cnf::matching::flow_matching(flow, batch)?;
    let mut inputs = vec![(m.data, InputKind::TargetSamples)];
    inputs.extend(noise_inputs(&m.terms));
    Some(ObjectiveGraph {
        graph: m.graph,
        loss: m.loss,
        inputs,
        samples: None,
    })
}

/// The layers' random inputs, as what the trainer writes into them.
fn noise_inputs(terms: &TrainingTerms) -> impl Iterator<Item = (Var, InputKind)> + '_ {
    terms.noise.iter().map(|n| {
        let kind = match n.noise {
            Noise::StandardNormal => InputKind::StandardNormal,
            Noise::Rademacher => InputKind::Rademacher,
            Noise::Uniform => InputKind::Uniform,
        };
        (n.var, kind)
    })
}

/// The reverse-KL surrogate (see the module docs), with the path gradient for 2-D flows
/// ([`reverse_kl_path`]) and the total gradient otherwise ([`reverse_kl_total`]).
pub fn reverse_kl(flow: &Flow, batch: usize) -> ObjectiveGraph {
    if flow.dim == 2 {
        reverse_kl_path(flow, batch)
    } else {
        reverse_kl_total(flow, batch)
    }
}

/// The reverse-KL surrogate `mean(log q(x) − Σ_j G_j x_j)`, `x = f(ε)`, differentiated through
/// everything: its gradient is the reparameterised gradient including the score term
/// `E[∂_θ log q_θ(x)|_x]`, which is zero in expectation but not sample by sample.
pub fn reverse_kl_total(flow: &Flow, batch: usize) -> ObjectiveGraph {
    let mut g = Graph::new();
    let eps = g.input(batch, flow.dim);
    let s = flow.sample_graph(&mut g, eps);
    let score = g.input(batch, flow.dim);
    let pull = g.mul(score, s.x);
    let pull = g.sum(Axis::Cols, pull);
    let per_sample = g.sub(s.log_prob, pull);
    reverse_kl_graph(g, per_sample, eps, score, (s.x, s.log_prob))
}

/// A reverse-KL surrogate's objective: the mean of `per_sample`, with the base draws `eps`
/// and the target's score `score` (filled at the samples `x`) as inputs.
fn reverse_kl_graph(
    mut g: Graph,
    per_sample: Var,
    eps: Var,
    score: Var,
    (x, log_q): (Var, Var),
) -> ObjectiveGraph {
    let loss = g.mean(Axis::All, per_sample);
    ObjectiveGraph {
        graph: g,
        loss,
        inputs: vec![
            (eps, InputKind::StandardNormal),
            (score, InputKind::TargetScore { at: x }),
        ],
        samples: Some((x, log_q)),
    }
}

/// Largest `|∇_x log q|` the path gradient uses, as the target's score is clamped.
const MAX_FLOW_SCORE: f32 = 1e4;

/// The reverse-KL surrogate with the path gradient ("sticking the landing": Roeder, Wu &
/// Duvenaud 2017; for flows, Vaitl et al. 2022): the score term is left out, so each sample's
/// gradient is `(∇_x log q(x) − ∇_x log p*(x))·∂x/∂θ`, which vanishes sample by sample where
/// `q = p*`. Its expectation is the same gradient; its variance falls as the fit improves,
/// where the total gradient's does not. Measured on U1–U4 (`tests/numerics/fit_reverse_kl.rs`):
/// RealNVP reaches a lower KL at equal steps on most targets and seeds, for about twice the
/// cost of a step (three vector–Jacobian products build `∇_x log q`).
///
/// The graph's value is `mean(log q)`: `(∇_x log q − G)·(x − stop(x))` is zero but carries the
/// path gradient, and `log q` itself is stopped.
pub fn reverse_kl_path(flow: &Flow, batch: usize) -> ObjectiveGraph {
    let mut g = Graph::new();
    let eps = g.input(batch, 2);
    let s = flow.sample_graph(&mut g, eps);
    let flow_score = flow_score_2d(&mut g, eps, s.x, s.log_prob, batch);
    let score = g.input(batch, 2);
    let flow_score = g.unary(Unary::Clamp(-MAX_FLOW_SCORE, MAX_FLOW_SCORE), flow_score);
    let flow_score = g.unary(Unary::StopGradient, flow_score);
    let push = g.sub(flow_score, score);
    let x_stopped = g.unary(Unary::StopGradient, s.x);
    let dx = g.sub(s.x, x_stopped);
    let pull = g.mul(push, dx);
    let pull = g.sum(Axis::Cols, pull);
    let log_q = g.unary(Unary::StopGradient, s.log_prob);
    let per_sample = g.add(log_q, pull);
    reverse_kl_graph(g, per_sample, eps, score, (s.x, s.log_prob))
}

/// The flow's score `∇_x log q(x)` at its samples `x = f(ε)` (`batch × 2`), built from the
/// sample direction alone: `∇_ε log q(f(ε)) = Jᵀ ∇_x log q(x)` with `J = ∂x/∂ε`, so
/// `∇_x log q = J⁻ᵀ ∇_ε log q(f(ε))`; `J`'s rows are two vector–Jacobian products (the rows of
/// a batch are independent samples) and the 2×2 system is solved in closed form.
pub fn flow_score_2d(g: &mut Graph, eps: Var, x: Var, log_q: Var, batch: usize) -> Var {
    let total = g.sum(Axis::All, log_q);
    let along_eps = g.grad(total, &[eps])[0];
    let one = g.fill(1.0, batch, 1);
    let zero = g.fill(0.0, batch, 1);
    let e1 = g.concat(&[one, zero]);
    let e2 = g.concat(&[zero, one]);
    let row1 = g.vjp(x, e1, &[eps])[0];
    let row2 = g.vjp(x, e2, &[eps])[0];
    let (j11, j12) = (g.cols(row1, 0, 1), g.cols(row1, 1, 1));
    let (j21, j22) = (g.cols(row2, 0, 1), g.cols(row2, 1, 1));
    let (a1, a2) = (g.cols(along_eps, 0, 1), g.cols(along_eps, 1, 1));
    let d1 = g.mul(j11, j22);
    let d2 = g.mul(j12, j21);
    let det = g.sub(d1, d2);
    let n1a = g.mul(a1, j22);
    let n1b = g.mul(a2, j21);
    let n1 = g.sub(n1a, n1b);
    let n2a = g.mul(a2, j11);
    let n2b = g.mul(a1, j12);
    let n2 = g.sub(n2a, n2b);
    let w1 = g.div(n1, det);
    let w2 = g.div(n2, det);
    g.concat(&[w1, w2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_objective_always_applies() {
        for name in crate::targets::names() {
            let target = crate::targets::by_name(name).unwrap();
            for family in Family::ALL {
                let objective = ObjectiveKind::default_for(family, target.as_ref());
                assert_eq!(
                    objective.applies(family, target.as_ref()),
                    Ok(()),
                    "{} on {name}",
                    family.name()
                );
            }
        }
    }

    #[test]
    fn the_policy_says_why_not() {
        let moons = crate::targets::by_name("moons").unwrap();
        let u1 = crate::targets::by_name("u1").unwrap();
        assert!(
            ObjectiveKind::ReverseKl
                .applies(Family::Planar, u1.as_ref())
                .is_ok()
        );
        let err = ObjectiveKind::ReverseKl
            .applies(Family::Planar, moons.as_ref())
            .unwrap_err();
        assert!(err.to_string().contains("moons"), "{err}");
        let err = ObjectiveKind::FlowMatching
            .applies(Family::RealNvp, u1.as_ref())
            .unwrap_err();
        assert!(err.to_string().contains("realnvp"), "{err}");
        for objective in ObjectiveKind::ALL {
            assert_eq!(ObjectiveKind::from_name(objective.name()), Some(objective));
        }
    }
}
