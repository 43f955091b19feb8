//! The teaching notes: one short, exact note per concept of the seed article (the Chinese
//! Wikipedia article on flow-based generative models), with its reference, and which notes go
//! beside which view ([`notes_for`]).
//!
//! Every note states what flowlab computes (the module docs of `flows::*` and
//! `train::objective` are the authority) and agrees with the seed where the seed states a fact.
//! Bodies are plain text with Unicode math, 2–5 sentences and at most [`MAX_BODY_CHARS`]
//! characters, so that they read on a projector. A reference names the paper (year, section
//! where known) and, where the seed covers the concept, its section heading there
//! (`seed: <heading>`, in Chinese `条目：<标题>` as the seed writes it).
//!
//! The text is in the catalogue (`src/i18n/en/notes.txt`, `src/i18n/zh/notes.txt`); this
//! module says which concepts exist and which go beside which view. No egui: the UI lays
//! them out.

use super::views::ViewKind;
use crate::flows::Family;
use crate::i18n::{self, Lang};
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

/// One note: a title, a body a lecturer can read out, and where it comes from, in the
/// current language (the catalogue's `note.<id>.*`, `src/i18n/*/notes.txt`).
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

impl Concept {
    /// Every concept.
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

    /// The concept's key in the catalogue (`note.<id>.title`, `.body`, `.reference`).
    pub fn id(self) -> &'static str {
        match self {
            Concept::ChangeOfVariables => "change_of_variables",
            Concept::MaximumLikelihood => "maximum_likelihood",
            Concept::ReverseKl => "reverse_kl",
            Concept::Planar => "planar",
            Concept::Radial => "radial",
            Concept::NiceVolume => "nice_volume",
            Concept::RealNvpPermutations => "real_nvp_permutations",
            Concept::GlowActnormLinear => "glow_actnorm_linear",
            Concept::AutoregressiveSpeed => "autoregressive_speed",
            Concept::SplineCoupling => "spline_coupling",
            Concept::CnfTrace => "cnf_trace",
            Concept::Regularisation => "regularisation",
            Concept::AugmentedOde => "augmented_ode",
            Concept::FlowMatching => "flow_matching",
            Concept::Homeomorphism => "homeomorphism",
            Concept::OutOfDistribution => "out_of_distribution",
            Concept::ExplodingInverse => "exploding_inverse",
        }
    }

    /// Its note in the current language.
    pub fn note(self) -> Note {
        self.note_in(i18n::current())
    }

    /// Its note in `lang`.
    pub fn note_in(self, lang: Lang) -> Note {
        let part = |part: &str| i18n::text_in(lang, &format!("note.{}.{part}", self.id()));
        Note {
            concept: self,
            title: part("title"),
            body: part("body"),
            reference: part("reference"),
        }
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

    /// Every note in every language.
    fn notes() -> impl Iterator<Item = (Lang, Note)> {
        Lang::ALL
            .into_iter()
            .flat_map(|lang| Concept::ALL.map(|concept| (lang, concept.note_in(lang))))
    }

    #[test]
    fn every_note_is_in_the_catalogue_of_every_language() {
        for lang in Lang::ALL {
            for concept in Concept::ALL {
                for part in ["title", "body", "reference"] {
                    let key = format!("note.{}.{part}", concept.id());
                    assert!(
                        crate::i18n::catalogue(lang).contains_key(key.as_str()),
                        "{lang:?} lacks {key}"
                    );
                }
            }
            let titles: HashSet<_> = Concept::ALL.map(|c| c.note_in(lang).title).into();
            assert_eq!(
                titles.len(),
                Concept::ALL.len(),
                "{lang:?} titles are distinct"
            );
        }
        assert_eq!(
            Concept::ALL.map(Concept::note),
            Concept::ALL.map(|c| c.note_in(Lang::En))
        );
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
        for (lang, note) in notes() {
            let body = note.body;
            let chars = body.chars().count();
            assert!(
                (1..=MAX_BODY_CHARS).contains(&chars),
                "{lang:?} {:?}: {chars} chars",
                note.concept
            );
            assert!(!note.title.is_empty() && !note.reference.is_empty());
            // Sentence ends: ". " inside and the final "." in English, "。" in Chinese.
            let (end, sentences) = match lang {
                Lang::En => (".", body.matches(". ").count() + 1),
                Lang::Zh => ("。", body.matches('。').count()),
            };
            assert!(body.ends_with(end), "{lang:?} {:?}", note.concept);
            assert!(
                (2..=5).contains(&sentences),
                "{lang:?} {:?}: {sentences} sentences",
                note.concept
            );
            // Continuation lines are joined with one space, never two.
            assert!(
                !body.contains("  ") && !body.contains('\n'),
                "{lang:?} {:?}",
                note.concept
            );
        }
    }

    #[test]
    fn no_placeholder_text() {
        for (lang, note) in notes() {
            for text in [note.title, note.body, note.reference] {
                let lower = text.to_lowercase();
                for bad in [
                    "todo",
                    "tbd",
                    "fixme",
                    "xxx",
                    "lorem",
                    "placeholder",
                    "...",
                    "note.",
                ] {
                    assert!(
                        !lower.contains(bad),
                        "{lang:?} {:?} contains {bad:?}",
                        note.concept
                    );
                }
            }
        }
    }

    #[test]
    fn references_name_a_year_and_the_seed_where_it_covers_the_concept() {
        // The seed article has no section on these.
        let beyond_seed = [Concept::Radial, Concept::ReverseKl, Concept::SplineCoupling];
        for (lang, note) in notes() {
            let seed = match lang {
                Lang::En => "seed: ",
                Lang::Zh => "条目：",
            };
            assert!(note.reference.contains("20"), "{:?}: no year", note.concept);
            assert_eq!(
                note.reference.contains(seed),
                !beyond_seed.contains(&note.concept),
                "{lang:?} {:?}",
                note.concept
            );
        }
    }

    #[test]
    fn bodies_use_only_the_listed_symbols() {
        // What a font must cover to draw the notes besides ASCII and (in Chinese) CJK. The
        // app's Ubuntu Light lacks the combining hat and tilde, ᴴᵂᵀᵢⱼ⁻₋, ‖, ′, →, ↦ and ∇.
        const SYMBOLS: &str = "±²·¹×ûŝ\u{302}\u{303}ΣαβεθλμσᴴᵂᵀᵢⱼΣ‖′⁻₀₁₂₋ℓ–→↦∂∇−∫“”";
        for (lang, note) in notes() {
            for c in note.title.chars().chain(note.body.chars()) {
                assert!(
                    c.is_ascii()
                        || SYMBOLS.contains(c)
                        || (lang == Lang::Zh && crate::i18n::is_wide(c)),
                    "{lang:?} {:?}: {c:?} (U+{:04X})",
                    note.concept,
                    c as u32
                );
            }
        }
    }
}
