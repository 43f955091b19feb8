//! The built-in targets: ONE table ([`CATALOG`]) of their names, descriptions and kinds, with
//! how to build each.
//!
//! Menus, URL parsing, the CLI and error messages read [`CATALOG`]; the built targets take
//! their [`Target::description`] from it too, so there is one copy of each sentence. Depends
//! on the target implementations beside it; nothing here knows of flows or the UI.

use std::sync::Arc;

use super::energy::{Energy, EnergyKind};
use super::mixture::Mixture;
use super::painted::PaintedGrid;
use super::toy::{Toy, ToyKind};
use super::{Target, TargetError};

/// What sort of target a catalog entry is (menus group by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TargetKind {
    /// A data set defined by its sampler (the FFJORD toys).
    DataSet,
    /// An energy `exp(−U)` with a smooth log-density (Rezende & Mohamed's U1–U4, …).
    Energy,
    /// The Gaussian mixture the user edits.
    Mixture,
    /// A painted grid (the presets; the user paints more).
    Painted,
}

/// One built-in target: a row of [`CATALOG`].
#[derive(Clone, Copy, Debug)]
pub struct TargetInfo {
    /// Stable URL/CLI name (`"moons"`).
    pub name: &'static str,
    /// One sentence shown in the UI; the built target's [`Target::description`] returns it.
    pub description: &'static str,
    /// What sort of target it is.
    pub kind: TargetKind,
    /// Whether its normalised log-density is known (its density kind is `Exact` or
    /// `NumericNormalizer`), so `KL(p*‖q)` can be computed.
    pub normalizer_known: bool,
    build: fn() -> Result<Box<dyn Target>, TargetError>,
}

impl TargetInfo {
    /// Builds the target.
    pub fn build(&self) -> Result<Box<dyn Target>, TargetError> {
        (self.build)()
    }
}

/// The name of the target a new scene or a bare `flowlab render`/`train` uses.
pub const DEFAULT_TARGET: &str = "moons";

const fn toy(
    name: &'static str,
    description: &'static str,
    normalizer_known: bool,
    build: fn() -> Result<Box<dyn Target>, TargetError>,
) -> TargetInfo {
    TargetInfo {
        name,
        description,
        kind: TargetKind::DataSet,
        normalizer_known,
        build,
    }
}

const fn energy(
    name: &'static str,
    description: &'static str,
    build: fn() -> Result<Box<dyn Target>, TargetError>,
) -> TargetInfo {
    TargetInfo {
        name,
        description,
        kind: TargetKind::Energy,
        normalizer_known: true,
        build,
    }
}

const fn painted(
    name: &'static str,
    description: &'static str,
    build: fn() -> Result<Box<dyn Target>, TargetError>,
) -> TargetInfo {
    TargetInfo {
        name,
        description,
        kind: TargetKind::Painted,
        normalizer_known: true,
        build,
    }
}

/// Every built-in target, in menu order.
pub const CATALOG: &[TargetInfo] = &[
    toy(
        "moons",
        "FFJORD's two moons: sklearn make_moons with noise 0.1, scaled by 2; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::Moons))),
    ),
    toy(
        "twomoons",
        "The benchmark's two moons: make_moons with noise 0.05, scaled by 2 and centred; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::TwoMoons))),
    ),
    toy(
        "8gaussians",
        "FFJORD's 8 Gaussians on a circle of radius 2.83, width 0.35; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::EightGaussians))),
    ),
    toy(
        "pinwheel",
        "FFJORD's pinwheel: five twisted arms; density estimated on a fine grid from the generating process.",
        false,
        || Ok(Box::new(Toy::new(ToyKind::Pinwheel))),
    ),
    toy(
        "2spirals",
        "FFJORD's two spirals; density estimated on a fine grid from the generating process.",
        false,
        || Ok(Box::new(Toy::new(ToyKind::TwoSpirals))),
    ),
    toy(
        "checkerboard",
        "FFJORD's checkerboard: uniform on 8 of 16 squares; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::Checkerboard))),
    ),
    toy(
        "rings",
        "FFJORD's rings: four concentric circles of radius 0.75 to 3 with noise 0.08; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::Rings))),
    ),
    toy(
        "swissroll",
        "FFJORD's swiss roll; density estimated on a fine grid from the generating process.",
        false,
        || Ok(Box::new(Toy::new(ToyKind::SwissRoll))),
    ),
    toy(
        "circles",
        "FFJORD's circles: two concentric rings of radius 3 and 1.5 with noise 0.24; exact density.",
        true,
        || Ok(Box::new(Toy::new(ToyKind::Circles))),
    ),
    energy(
        "u1",
        "Rezende & Mohamed's U1: a ring with two modes; normaliser by quadrature.",
        || Ok(Box::new(Energy::new(EnergyKind::U1))),
    ),
    energy(
        "u2",
        "Rezende & Mohamed's U2: a sine wave; normaliser by quadrature.",
        || Ok(Box::new(Energy::new(EnergyKind::U2))),
    ),
    energy(
        "u3",
        "Rezende & Mohamed's U3: a sine wave split by a bump; normaliser by quadrature.",
        || Ok(Box::new(Energy::new(EnergyKind::U3))),
    ),
    energy(
        "u4",
        "Rezende & Mohamed's U4: a sine wave split by a step; normaliser by quadrature.",
        || Ok(Box::new(Energy::new(EnergyKind::U4))),
    ),
    energy(
        "banana",
        "A banana (twisted Gaussian); exact density and samples.",
        || Ok(Box::new(Energy::new(EnergyKind::Banana))),
    ),
    energy(
        "funnel",
        "Neal's funnel: scale varies exponentially with height; exact density and samples.",
        || Ok(Box::new(Energy::new(EnergyKind::Funnel))),
    ),
    energy(
        "ringmix",
        "Four separate thin rings; exact normaliser.",
        || Ok(Box::new(Energy::new(EnergyKind::RingMixture))),
    ),
    TargetInfo {
        name: "mixture",
        description: "A Gaussian mixture you edit with the mouse: add, drag, resize and reweight components; exact density.",
        kind: TargetKind::Mixture,
        normalizer_known: true,
        build: || Ok(Box::new(Mixture::default())),
    },
    painted(
        "paint_blobs",
        "Painted: two separate blobs; one Gaussian pushed through a flow must stretch a bridge between them.",
        || preset("paint_blobs", PaintedGrid::two_blobs()),
    ),
    painted(
        "paint_ring",
        "Painted: a ring; the flow must open a hole the Gaussian does not have.",
        || preset("paint_ring", PaintedGrid::ring()),
    ),
    painted(
        "paint_flow",
        "Painted: the word FLOW; four pieces, one with a hole, from one connected Gaussian.",
        || preset("paint_flow", PaintedGrid::text("FLOW")),
    ),
];

const fn catalog_names() -> [&'static str; CATALOG.len()] {
    let mut names = [""; CATALOG.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = CATALOG[i].name;
        i += 1;
    }
    names
}

/// Every built-in target name, in menu order (derived from [`CATALOG`]).
pub const NAMES: &[&str] = &catalog_names();

/// A painted preset, described by its catalog row.
fn preset(name: &str, grid: PaintedGrid) -> Result<Box<dyn Target>, TargetError> {
    Ok(Box::new(grid.to_target(name, description_of(name))?))
}

/// The catalog row called `name`.
pub fn info(name: &str) -> Option<&'static TargetInfo> {
    CATALOG.iter().find(|t| t.name == name)
}

/// Every built-in target name, in menu order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|t| t.name)
}

/// The catalog's description of `name` (empty for a name not in it).
pub(super) fn description_of(name: &str) -> &'static str {
    info(name).map_or("", |t| t.description)
}

/// The built-in target called `name` (one of [`NAMES`]).
pub fn by_name(name: &str) -> Result<Box<dyn Target>, TargetError> {
    info(name)
        .ok_or_else(|| TargetError::UnknownName {
            name: name.to_owned(),
            known: NAMES.join(", "),
        })?
        .build()
}

/// The built-in target called `name`, shared (`Arc`) because the plot and the trainer both
/// read it.
pub fn load_shared(name: &str) -> Result<Arc<dyn Target>, TargetError> {
    by_name(name).map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::DensityKind;

    #[test]
    fn every_entry_builds_under_its_name_with_its_description() {
        for info in CATALOG {
            let target = info.build().unwrap();
            assert_eq!(target.name(), info.name);
            assert_eq!(target.description(), info.description);
            assert!(!info.description.is_empty(), "{}", info.name);
        }
    }

    #[test]
    fn normalizer_known_matches_the_built_density_kind() {
        for info in CATALOG {
            let kind = info.build().unwrap().density_kind();
            let known = matches!(kind, DensityKind::Exact | DensityKind::NumericNormalizer);
            assert_eq!(info.normalizer_known, known, "{}", info.name);
        }
    }

    #[test]
    fn names_are_unique_and_the_default_is_listed() {
        for (i, name) in names().enumerate() {
            assert_eq!(NAMES[i], name);
            assert_eq!(names().filter(|n| *n == name).count(), 1, "{name}");
        }
        assert!(info(DEFAULT_TARGET).is_some());
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = load_shared("nope").err().unwrap().to_string();
        assert!(
            err.contains("nope") && err.contains(DEFAULT_TARGET),
            "{err}"
        );
    }
}
