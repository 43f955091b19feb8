//! The teaching notes: one short, exact note per concept of the seed article (the Chinese
//! Wikipedia article on flow-based generative models), with its reference, and which notes go
//! beside which view ([`notes_for`]).
//!
//! Every note states what flowlab computes (the module docs of `flows::*` and
//! `train::objective` are the authority) and agrees with the seed where the seed states a fact.
//! Bodies are plain text with Unicode math, English, 2–5 sentences and at most
//! [`MAX_BODY_CHARS`] characters, so that they read on a projector. A reference names the
//! paper (year, section where known) and, where the seed covers the concept, its section
//! heading there as `seed: <heading>` (in English until the app reads Chinese: issue 18).
//!
//! Pure data, no egui: the UI lays them out, a later catalogue translates them.

use super::views::ViewKind;
use crate::flows::Family;
use crate::train::ObjectiveKind;

/// A concept of the seed article the app shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Concept {
    /// The change-of-variables formula and the per-layer log-determinant.
    ChangeOfVariables,
    /// Maximum likelihood = forward KL; the held-out NLL and KL.
    MaximumLikelihood,
    /// Reverse KL against an unnormalised log-density.
    ReverseKl,
    /// Planar flows and their invertibility condition.
    Planar,
    /// Radial flows.
    Radial,
    /// NICE's volume-preserving additive coupling and final scaling.
    NiceVolume,
    /// RealNVP's affine coupling with alternating halves.
    RealNvpPermutations,
    /// Glow's actnorm and LU-parameterised invertible linear map.
    GlowActnormLinear,
    /// MAF vs IAF: which direction is one pass.
    AutoregressiveSpeed,
    /// Neural spline flows (beyond the seed).
    SplineCoupling,
    /// CNF: the trace, exact or by Hutchinson's estimator.
    CnfTrace,
    /// CNF regularisers: λ_K kinetic energy, λ_J Jacobian norm.
    Regularisation,
    /// Augmented neural ODEs.
    AugmentedOde,
    /// Flow matching.
    FlowMatching,
    /// Flows are homeomorphisms.
    Homeomorphism,
    /// Likelihoods of out-of-distribution points.
    OutOfDistribution,
    /// Numerical non-invertibility: exploding inverses.
    ExplodingInverse,
}

/// One note: a title, a body a lecturer can read out, and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// The concept it explains.
    pub concept: Concept,
    /// A short title.
    pub title: &'static str,
    /// 2–5 sentences of plain text with Unicode math.
    pub body: &'static str,
    /// The paper(s), and the seed's section heading where the seed covers it.
    pub reference: &'static str,
}

/// The longest body, in characters (`chars().count()`): what reads on a projector.
pub const MAX_BODY_CHARS: usize = 600;

/// Every note, in [`Concept::ALL`] order (checked at compile time).
pub const NOTES: &[Note] = &[
    Note {
        concept: Concept::ChangeOfVariables,
        title: "Change of variables, layer by layer",
        body: "A flow pushes base samples z₀ ~ p₀ through invertible layers, zᵢ = fᵢ(zᵢ₋₁), \
               and the density of x = z_K follows exactly: \
               log p_K(x) = log p₀(z₀) − Σᵢ log|det ∂fᵢ(zᵢ₋₁)/∂zᵢ₋₁|. \
               Drag the depth scrubber from 0 to K: the warped grid shows each fᵢ, the heat map \
               the intermediate density pᵢ, and the log|det J| map each layer's term. \
               Where a layer's log|det J| > 0 it spreads points apart and lowers the density; \
               where it is < 0 it packs them together and raises it.",
        reference: "Rezende & Mohamed 2015, §3.1; \
                    seed: Method, Derivation of the log-likelihood",
    },
    Note {
        concept: Concept::MaximumLikelihood,
        title: "Maximum likelihood = forward KL",
        body: "Training minimises KL(p*‖p_θ) = −E_p*[log p_θ(x)] + E_p*[log p*(x)]; the second \
               term is minus the target's entropy and does not depend on θ, so it is dropped. \
               What remains is estimated on each batch as L = −(1/n) Σⱼ log p_θ(xⱼ), xⱼ ~ p*, \
               and minimised with Adam: minimising the KL is maximising the likelihood. \
               The density view scores a fixed held-out set: NLL = −(1/n) Σᵢ log q(xᵢ) and, \
               where the target's normaliser is known, KL = (1/n) Σᵢ (log p*(xᵢ) − log q(xᵢ)), \
               an estimate of KL(p*‖q), which is 0 only when q = p*.",
        reference: "Papamakarios et al. 2021, §2.3.1; seed: Training method",
    },
    Note {
        concept: Concept::ReverseKl,
        title: "Reverse KL from an unnormalised density",
        body: "Given only log p̃*(x) = log p*(x) + const (an energy U1–U4, or a mixture you \
               place), flowlab minimises KL(q_θ‖p*) = E_z[log q_θ(f(z)) − log p̃*(f(z))] + const, \
               z ~ p₀, by reparameterisation: it needs only the sample direction and the score \
               ∇ log p̃*, never p*'s normaliser. \
               That is why planar and radial flows, whose density direction needs a root solve, \
               train this way by default on such targets. \
               Reverse KL punishes mass where p* is small, not missing a mode: look in the \
               samples view for modes the flow never reaches.",
        reference: "Papamakarios et al. 2021, §2.3.2; Rezende & Mohamed 2015, §6.1",
    },
    Note {
        concept: Concept::Planar,
        title: "Planar flow and its invertibility condition",
        body: "f(z) = z + û·tanh(wᵀz + b) bends the plane along one direction w; by the matrix \
               determinant lemma log|det ∂f/∂z| = log|1 + tanh′(wᵀz + b)·ûᵀw|, which is finite \
               everywhere exactly when ûᵀw > −1. \
               flowlab reparameterises the raw u as û = u + (m(wᵀu) − wᵀu)·w/‖w‖² with \
               m(a) = −1 + softplus(a), so ûᵀw = m(wᵀu) > −1 for any parameters. \
               The inverse has no closed form: the density direction solves \
               a + c·tanh a = wᵀx + b (c = ûᵀw) for a = wᵀz + b by bisection, then Newton.",
        reference: "Rezende & Mohamed 2015, §4.1 and App. A; seed: Planar flow",
    },
    Note {
        concept: Concept::Radial,
        title: "Radial flow",
        body: "f(z) = z + β·h·(z − z₀) with h = 1/(α + r), r = ‖z − z₀‖, pulls points towards \
               the centre z₀ (β < 0) or pushes them away (β > 0); in the plane \
               log|det ∂f/∂z| = log(1 + βh) + log(1 + βα/(α + r)²), so each layer's \
               log|det J| map is radially symmetric about its centre. \
               flowlab keeps it invertible with α = softplus(α̂) > 0 and β = −α + softplus(β̂) > −α. \
               The inverse is exact: along the ray from z₀, r solves the quadratic \
               r² + (α + β − s)·r − α·s = 0, s = ‖x − z₀‖.",
        reference: "Rezende & Mohamed 2015, §4.1 and App. A",
    },
    Note {
        concept: Concept::NiceVolume,
        title: "NICE: additive coupling preserves volume",
        body: "A NICE layer keeps one half and shifts the other, x₂ = z₂ + m(z₁), inverted by \
               z₂ = x₂ − m(x₁); its Jacobian is triangular with unit diagonal, so det = 1 and the \
               coupling's log|det J| map is flat at 0 (in 2-D each layer is a curved shear). \
               Such layers can move mass but never concentrate or spread it, so NICE ends with a \
               diagonal scaling xⱼ = exp(sⱼ)·zⱼ, whose log|det J| = Σⱼ sⱼ is one constant over \
               the plane. Consecutive couplings alternate which coordinate moves.",
        reference: "Dinh et al. 2015, §3.2–3.3; seed: NICE",
    },
    Note {
        concept: Concept::RealNvpPermutations,
        title: "RealNVP: affine coupling, alternating halves",
        body: "RealNVP adds a scale to NICE: x₂ = exp(s(z₁))·z₂ + t(z₁), inverted by \
               z₂ = exp(−s(x₁))·(x₂ − t(x₁)), with log|det J| = Σⱼ sⱼ(z₁); s = 0 gives NICE. \
               A layer leaves z₁ untouched, so the halves must swap roles between layers (the \
               permutation (x₁, x₂) ↦ (x₂, x₁)): flowlab alternates which half conditions, \
               layer 0 moving the second coordinate given the first, layer 1 the first given the \
               second. flowlab bounds s = tanh(ŝ), so in 2-D each layer's log|det J| lies in (−1, 1).",
        reference: "Dinh et al. 2017, §3; seed: Real NVP",
    },
    Note {
        concept: Concept::GlowActnormLinear,
        title: "Glow: actnorm and an invertible linear map",
        body: "A Glow step scores data by actnorm, an invertible linear map, then RealNVP's \
               affine coupling. Actnorm y = s·(x + b) per coordinate is initialised so that its \
               output on the first batch has zero mean and unit variance, then trained. Images' 1×1 convolution (det(K)ᴴᵂ, \
               H = W = 1 here) is a 2×2 matrix W = P·L·(V + diag(σ·exp(ℓ))), P a fixed permutation, L unit \
               lower-triangular, V strictly upper-triangular, σ fixed signs, so \
               log|det W| = Σⱼ ℓⱼ without a determinant; W starts at the identity. Both maps are \
               affine: their log|det J| panels are flat.",
        reference: "Kingma & Dhariwal 2018, §3.1–3.3; seed: Glow",
    },
    Note {
        concept: Concept::AutoregressiveSpeed,
        title: "MAF vs IAF: which direction is one pass",
        body: "Both set xᵢ = μᵢ + exp(αᵢ)·zᵢ, with μᵢ, αᵢ from a masked network (MADE) that sees \
               only earlier coordinates, so the Jacobian is triangular and \
               log|det ∂x/∂z| = Σᵢ αᵢ. MAF reads x: the density z = (x − μ(x))·exp(−α(x)) is \
               one pass, sampling takes D (= 2 here) sequential passes. IAF reads z: sampling is one pass, \
               the density takes D, so IAF trained by maximum likelihood costs D times more per \
               layer (compare steps/s). flowlab bounds αᵢ = 3·tanh(α̂ᵢ/3) and reverses the \
               order between layers.",
        reference: "Papamakarios et al. 2017, §3; Kingma et al. 2016; \
                    seed: MAF",
    },
    Note {
        concept: Concept::SplineCoupling,
        title: "Neural spline flows",
        body: "A coupling layer whose moving coordinate goes through a monotone rational-quadratic \
               spline on [−B, B] with K bins; the conditioner sets the bin widths, heights and \
               inner-knot slopes from the other coordinate. Being strictly increasing, the spline \
               inverts exactly, by a quadratic in each bin. Outside [−B, B] it is the identity, \
               so the log|det J| map is 0 there. With the conditioner's output at zero every \
               layer starts as exactly the identity. This family goes beyond the seed article.",
        reference: "Durkan et al. 2019, eqs. 4–8",
    },
    Note {
        concept: Concept::CnfTrace,
        title: "CNF: exact vs Hutchinson trace",
        body: "A CNF moves points by dz/dt = f(z, t), and log p(x) = log p₀(z₀) − ∫₀ᵀ Tr(∂f/∂z) dt: \
               only the trace is needed, so f is an unrestricted network. flowlab computes it \
               exactly by default; the Hutchinson option uses Tr J = E[uᵀJu], E[uuᵀ] = I, with \
               Gaussian u (variance per probe 2‖S‖²_F, S = (J + Jᵀ)/2) or Rademacher uᵢ = ±1 \
               (variance 2(‖S‖²_F − Σᵢ Jᵢᵢ²), never larger). Only the training loss uses the \
               estimate, which makes it noisier; densities and the held-out NLL use the exact trace. \
               In the layer view a time slice's log|det J| is ∫ Tr(∂f/∂z) dt over that slice, by RK4.",
        reference: "Chen et al. 2018, §4; Grathwohl et al. 2019, §3.1; \
                    seed: Continuous normalizing flow (CNF)",
    },
    Note {
        concept: Concept::Regularisation,
        title: "Kinetic and Jacobian regularisation",
        body: "With weights λ_K, λ_J > 0 the maximum-likelihood loss gains \
               λ_K ∫₀ᵀ ‖f(z_t, t)‖² dt + λ_J ∫₀ᵀ ‖∂f/∂z‖²_F dt, integrated along each data \
               point's path. The first term penalises the field's oscillation in time, the second \
               its oscillation in space; together they favour smooth, nearly straight paths: \
               watch the trajectories in the field view. The loss curve then shows the NLL plus \
               this penalty, not the NLL alone.",
        reference: "Finlay et al. 2020; seed: Continuous normalizing flow (CNF)",
    },
    Note {
        concept: Concept::AugmentedOde,
        title: "Augmented neural ODE",
        body: "With k augmented dimensions the ODE runs in 2 + k dimensions: data are padded to \
               (x, 0), samples start at (ε, 0) and keep their first two coordinates, so paths can \
               pass around each other and their projections on the plane may cross. flowlab's \
               density is log p(x, 0), the augmented model on the zero slice as in ANODE, neither \
               the marginal over the extra coordinates nor normalised over x, and training can \
               raise it without bound: use augmentation to see the homeomorphism escape, not to \
               compare likelihoods. The layer view shows it as one layer.",
        reference: "Dupont et al. 2019; seed: Continuous normalizing flow (CNF)",
    },
    Note {
        concept: Concept::FlowMatching,
        title: "Flow matching",
        body: "Flow matching trains the field by regression instead of simulating the ODE: for \
               x₀ ~ N(0, I), a data point x₁ and s ~ U[0, 1], the point \
               x_s = (1 − (1 − σ_min)s)·x₀ + s·x₁ moves with velocity u = x₁ − (1 − σ_min)·x₀, \
               and the loss is E‖f(x_s, sT) − u/T‖² (T the end time). Training needs no solver and \
               no trace; sampling and densities then integrate the learned field like any CNF. \
               The loss curve is this regression error, not an NLL: judge the fit by the held-out \
               NLL in the density view.",
        reference: "Lipman et al. 2023, §4.1 (Example II); \
                    seed: Continuous normalizing flow (CNF), which cites it",
    },
    Note {
        concept: Concept::Homeomorphism,
        title: "Flows are homeomorphisms",
        body: "Every flow here but an augmented CNF is a continuous bijection of the plane with a \
               continuous inverse, so it keeps topology: the connected Gaussian stays connected and cannot be torn \
               into separate pieces. On a target with separate modes (8 Gaussians, two blobs) \
               the modes stay joined by a thin bridge of samples and density, kept faint only by \
               a large log|det J| there. A CNF also keeps orientation (its det J = exp ∫ Tr > 0): \
               it cannot turn a left hand into a right hand.",
        reference: "Dupont et al. 2019; seed: Continuous normalizing flow (CNF)",
    },
    Note {
        concept: Concept::OutOfDistribution,
        title: "Likelihood does not detect the unfamiliar",
        body: "log q(x) = log p₀(f⁻¹(x)) + log|det ∂f⁻¹/∂x| is finite at every x: the base \
               Gaussian is positive on the whole plane and f is a bijection, so every point, \
               however unlike the data, gets some density. In the density view, compare the \
               learned density on empty regions (the bridges between modes, the gaps between \
               rings) with the target's. Image flows have even given another data set a higher \
               likelihood than their own; typicality, estimation error and the data's entropy \
               are the proposed explanations.",
        reference: "Nalisnick et al. 2019; seed: Downsides",
    },
    Note {
        concept: Concept::ExplodingInverse,
        title: "Exploding inverses",
        body: "Invertibility holds in exact arithmetic; in floating point an inverse can lose \
               accuracy or blow up where the forward map is nearly singular. A planar layer with \
               ûᵀw → −1 approaches a fold: its inverse's condition number is at most \
               1/(1 + ûᵀw), a bound that diverges, and flowlab reports the residual |f(f⁻¹(x)) − x| of planar and radial \
               inverses (a radial layer's grows as β → −α). In training, a step whose loss, gradient or \
               parameters turn non-finite is undone, the learning rate halved and a rollback \
               marked on the loss curve.",
        reference: "Behrmann et al. 2021; seed: Downsides",
    },
];

// Why at compile time: `Concept::note` indexes the table by discriminant.
const _: () = {
    assert!(NOTES.len() == Concept::ALL.len());
    let mut i = 0;
    while i < NOTES.len() {
        assert!(NOTES[i].concept as usize == i && Concept::ALL[i] as usize == i);
        i += 1;
    }
};

impl Concept {
    /// Every concept, in the order of [`NOTES`].
    pub const ALL: [Concept; 17] = [
        Concept::ChangeOfVariables,
        Concept::MaximumLikelihood,
        Concept::ReverseKl,
        Concept::Planar,
        Concept::Radial,
        Concept::NiceVolume,
        Concept::RealNvpPermutations,
        Concept::GlowActnormLinear,
        Concept::AutoregressiveSpeed,
        Concept::SplineCoupling,
        Concept::CnfTrace,
        Concept::Regularisation,
        Concept::AugmentedOde,
        Concept::FlowMatching,
        Concept::Homeomorphism,
        Concept::OutOfDistribution,
        Concept::ExplodingInverse,
    ];

    /// Its note.
    pub fn note(self) -> &'static Note {
        &NOTES[self as usize]
    }
}

/// The concept that explains what `family`'s layers compute (MAF and IAF share one).
pub fn family_concept(family: Family) -> Concept {
    match family {
        Family::Planar => Concept::Planar,
        Family::Radial => Concept::Radial,
        Family::Nice => Concept::NiceVolume,
        Family::RealNvp => Concept::RealNvpPermutations,
        Family::Glow => Concept::GlowActnormLinear,
        Family::Maf | Family::Iaf => Concept::AutoregressiveSpeed,
        Family::Nsf => Concept::SplineCoupling,
        Family::Cnf => Concept::CnfTrace,
    }
}

/// Which notes go beside which view, most relevant first, for a flow family and objective:
/// the vector field has notes only for CNFs.
pub fn notes_for(view: ViewKind, family: Family, objective: ObjectiveKind) -> Vec<Concept> {
    use Concept as C;
    let cnf = family == Family::Cnf;
    let mle = objective == ObjectiveKind::Mle;
    // The note on what the run minimises (flow matching trains only CNFs).
    let objective_note = match objective {
        ObjectiveKind::Mle => Some(C::MaximumLikelihood),
        ObjectiveKind::ReverseKl => Some(C::ReverseKl),
        ObjectiveKind::FlowMatching => cnf.then_some(C::FlowMatching),
    };
    let mut notes = Vec::new();
    match view {
        ViewKind::Samples => {
            if objective == ObjectiveKind::ReverseKl {
                notes.push(C::ReverseKl);
            }
            notes.push(C::Homeomorphism);
            // Sampling is MAF's slow direction and IAF's fast one.
            if matches!(family, Family::Maf | Family::Iaf) {
                notes.push(C::AutoregressiveSpeed);
            }
        }
        ViewKind::Layers => {
            notes.push(C::ChangeOfVariables);
            notes.push(family_concept(family));
            match family {
                // A Glow step ends in RealNVP's alternating affine coupling.
                Family::Glow => notes.push(C::RealNvpPermutations),
                // An augmented CNF shows as one layer.
                Family::Cnf => notes.push(C::AugmentedOde),
                _ => {}
            }
        }
        ViewKind::Density => {
            notes.push(C::MaximumLikelihood);
            if cnf {
                notes.push(C::CnfTrace);
            }
            // The density direction of planar and radial layers is a root solve.
            if matches!(family, Family::Planar | Family::Radial) {
                notes.push(C::ExplodingInverse);
            }
            notes.push(C::Homeomorphism);
            notes.push(C::OutOfDistribution);
        }
        ViewKind::Field if cnf => {
            match objective {
                ObjectiveKind::FlowMatching => notes.push(C::FlowMatching),
                // The regularisers are added to the maximum-likelihood loss only.
                ObjectiveKind::Mle => notes.push(C::Regularisation),
                ObjectiveKind::ReverseKl => {}
            }
            notes.push(C::AugmentedOde);
            notes.push(C::Homeomorphism);
        }
        ViewKind::Compare => {
            notes.push(C::AutoregressiveSpeed);
            notes.push(C::Homeomorphism);
        }
        ViewKind::Loss => {
            notes.extend(objective_note);
            if cnf && mle {
                notes.push(C::Regularisation);
                notes.push(C::CnfTrace);
            }
            // The slow direction is the one the objective trains through.
            let slow = match family {
                Family::Iaf => mle,
                Family::Maf => objective == ObjectiveKind::ReverseKl,
                _ => false,
            };
            if slow {
                notes.push(C::AutoregressiveSpeed);
            }
            notes.push(C::ExplodingInverse);
        }
        ViewKind::Field => {}
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The (family, objective) pairs a run can have: flow matching trains only CNFs.
    fn runs() -> impl Iterator<Item = (Family, ObjectiveKind)> {
        Family::ALL.into_iter().flat_map(|family| {
            ObjectiveKind::ALL
                .into_iter()
                .filter(move |&o| o != ObjectiveKind::FlowMatching || family == Family::Cnf)
                .map(move |o| (family, o))
        })
    }

    #[test]
    fn the_table_is_in_concept_order() {
        for (note, concept) in NOTES.iter().zip(Concept::ALL) {
            assert_eq!(note.concept, concept);
            assert_eq!(concept.note(), note);
        }
        assert_eq!(NOTES.len(), Concept::ALL.len());
        let titles: HashSet<_> = NOTES.iter().map(|n| n.title).collect();
        assert_eq!(titles.len(), NOTES.len(), "titles are distinct");
    }

    #[test]
    fn every_concept_is_reachable_from_some_view() {
        let mut reached = HashSet::new();
        for (family, objective) in runs() {
            for view in ViewKind::ALL {
                reached.extend(notes_for(view, family, objective));
            }
        }
        for concept in Concept::ALL {
            assert!(reached.contains(&concept), "{concept:?} is beside no view");
        }
    }

    #[test]
    fn no_view_repeats_a_note_and_only_cnfs_have_a_field_note() {
        for (family, objective) in runs() {
            for view in ViewKind::ALL {
                let notes = notes_for(view, family, objective);
                let distinct: HashSet<_> = notes.iter().collect();
                assert_eq!(
                    distinct.len(),
                    notes.len(),
                    "{view:?} {family:?} {objective:?}"
                );
            }
            // Every view but the CNF-only field view has notes for every run.
            for view in ViewKind::ALL.into_iter().filter(|&v| v != ViewKind::Field) {
                assert!(!notes_for(view, family, objective).is_empty(), "{view:?}");
            }
            assert_eq!(
                notes_for(ViewKind::Field, family, objective).is_empty(),
                family != Family::Cnf
            );
        }
    }

    #[test]
    fn every_family_gets_its_own_note_in_the_layers_view() {
        for (family, objective) in runs() {
            let notes = notes_for(ViewKind::Layers, family, objective);
            let own = family_concept(family);
            assert!(notes.contains(&own), "{family:?} {objective:?}: {notes:?}");
            // Specific: beside the layers of at most two families (MAF and IAF share one;
            // Glow's step ends in RealNVP's coupling).
            let sharing = Family::ALL
                .into_iter()
                .filter(|&other| {
                    notes_for(ViewKind::Layers, other, ObjectiveKind::Mle).contains(&own)
                })
                .count();
            assert!(sharing <= 2, "{own:?} is beside {sharing} families' layers");
        }
        let distinct: HashSet<_> = Family::ALL.into_iter().map(family_concept).collect();
        assert_eq!(
            distinct.len(),
            Family::ALL.len() - 1,
            "only MAF and IAF share"
        );
    }

    #[test]
    fn the_objective_is_explained_beside_the_loss() {
        for (family, objective) in runs() {
            let first = notes_for(ViewKind::Loss, family, objective)[0];
            let expected = match objective {
                ObjectiveKind::Mle => Concept::MaximumLikelihood,
                ObjectiveKind::ReverseKl => Concept::ReverseKl,
                ObjectiveKind::FlowMatching => Concept::FlowMatching,
            };
            assert_eq!(first, expected, "{family:?}");
        }
    }

    #[test]
    fn bodies_are_short_complete_sentences() {
        for note in NOTES {
            let body = note.body;
            let chars = body.chars().count();
            assert!(
                (1..=MAX_BODY_CHARS).contains(&chars),
                "{:?}: {chars} chars",
                note.concept
            );
            assert!(!note.title.is_empty() && !note.reference.is_empty());
            assert!(body.ends_with('.'), "{:?}", note.concept);
            // Sentence ends: ". " inside, and the final ".".
            let sentences = body.matches(". ").count() + 1;
            assert!(
                (2..=5).contains(&sentences),
                "{:?}: {sentences} sentences",
                note.concept
            );
            // Continuation lines are joined with one space, never two.
            assert!(
                !body.contains("  ") && !body.contains('\n'),
                "{:?}",
                note.concept
            );
        }
    }

    #[test]
    fn no_placeholder_text() {
        for note in NOTES {
            for text in [note.title, note.body, note.reference] {
                let lower = text.to_lowercase();
                for bad in ["todo", "tbd", "fixme", "xxx", "lorem", "placeholder", "..."] {
                    assert!(!lower.contains(bad), "{:?} contains {bad:?}", note.concept);
                }
            }
        }
    }

    #[test]
    fn references_name_a_year_and_the_seed_where_it_covers_the_concept() {
        // The seed article has no section on these.
        let beyond_seed = [Concept::Radial, Concept::ReverseKl, Concept::SplineCoupling];
        for note in NOTES {
            assert!(note.reference.contains("20"), "{:?}: no year", note.concept);
            assert_eq!(
                note.reference.contains("seed: "),
                !beyond_seed.contains(&note.concept),
                "{:?}",
                note.concept
            );
        }
    }

    #[test]
    fn bodies_use_only_the_listed_symbols() {
        // What a font must cover to draw the notes besides ASCII. The app's Ubuntu Light
        // lacks the combining hat and tilde, ᴴᵂᵀᵢⱼ⁻₋, ‖, ′, →, ↦ and ∇ (and the references'
        // CJK section headings).
        const SYMBOLS: &str = "±²·¹×ûŝ\u{302}\u{303}ΣαβεθλμσᴴᵂᵀᵢⱼΣ‖′⁻₀₁₂₋ℓ–→↦∂∇−∫";
        for note in NOTES {
            for c in note.title.chars().chain(note.body.chars()) {
                assert!(
                    c.is_ascii() || SYMBOLS.contains(c),
                    "{:?}: {c:?} (U+{:04X})",
                    note.concept,
                    c as u32
                );
            }
        }
    }
}
