//! Training objectives, each built as a graph whose inputs the trainer fills every step.
//!
//! - **Maximum likelihood** = forward KL: `L = −(1/n) Σ log p_θ(x_j)`, `x_j ~ p*`; equal to
//!   `KL(p*‖p_θ)` up to the target's entropy.
//! - **Reverse KL** against an unnormalised `log p̃*`: `KL(q_θ‖p*) = E_z[log q_θ(f(z)) − log p*(f(z))]`,
//!   differentiated by reparameterisation. `∇_x log p̃*` is computed outside the graph (targets
//!   are arbitrary code: painted grids, images) and enters as an input `G`; the surrogate
//!   `mean(log q(x) − Σ_j G_j x_j)` has exactly the reparameterised gradient.
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

use crate::engine::{Axis, Graph, Var};
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

/// The reverse-KL surrogate (see the module docs).
pub fn reverse_kl(flow: &Flow, batch: usize) -> ObjectiveGraph {
    let mut g = Graph::new();
    let eps = g.input(batch, flow.dim);
    let s = flow.sample_graph(&mut g, eps);
    let score = g.input(batch, flow.dim);
    let pull = g.mul(score, s.x);
    let pull = g.sum(Axis::Cols, pull);
    let per_sample = g.sub(s.log_prob, pull);
    let loss = g.mean(Axis::All, per_sample);
    ObjectiveGraph {
        graph: g,
        loss,
        inputs: vec![
            (eps, InputKind::StandardNormal),
            (score, InputKind::TargetScore { at: s.x }),
        ],
        samples: Some((s.x, s.log_prob)),
    }
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
