//! The flow families: ONE table ([`FAMILIES`]) of their names, descriptions and defaults, their
//! settings ([`FlowConfig`]), and one constructor for all of them ([`build_flow`]).
//!
//! Everything that lists or names families (the CLI's choices, the app's menu, URL parsing,
//! error messages) reads [`FAMILIES`]; nothing else holds a list of them.

use super::base::Base;
use super::coupling::{AdditiveCoupling, AffineCoupling, ConditionerShape, DiagonalScale};
use super::mlp::Activation;
use super::{Flow, Layer};
use crate::engine::{AdamConfig, LrSchedule, ParamError, ParamStore};
use crate::rng::Rng;
use crate::targets::Target;

/// A family of flows; its CLI/URL name and defaults are in [`Family::info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Family {
    /// Planar flows (Rezende & Mohamed 2015).
    Planar,
    /// Radial flows (Rezende & Mohamed 2015).
    Radial,
    /// NICE (Dinh et al. 2015).
    Nice,
    /// RealNVP (Dinh et al. 2017).
    RealNvp,
    /// Glow-style steps (Kingma & Dhariwal 2018).
    Glow,
    /// Masked autoregressive flow (Papamakarios et al. 2017).
    Maf,
    /// Inverse autoregressive flow (Kingma et al. 2016).
    Iaf,
    /// Neural spline flow (Durkan et al. 2019).
    Nsf,
    /// Continuous normalizing flow (Chen et al. 2018; Grathwohl et al. 2019).
    Cnf,
}

/// Which direction of a flow is a single cheap pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FastDirection {
    /// Both directions cost about the same: one pass each way for coupling flows, one ODE
    /// solve each way for a CNF (neither is a single pass there, but neither is favoured).
    Both,
    /// Sampling (base → data) is one pass; the density needs a sequential or iterative
    /// inverse (IAF: one coordinate at a time; planar, radial: a root solve per layer).
    Sampling,
    /// The density (data → base) is one pass; sampling is sequential (MAF: one coordinate at a
    /// time).
    Density,
}

/// What a family is and how it is built by default: one row of [`FAMILIES`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilyInfo {
    /// The family.
    pub family: Family,
    /// Its URL/CLI name (`"realnvp"`).
    pub name: &'static str,
    /// Its display name (`"RealNVP"`).
    pub title: &'static str,
    /// One line a student understands, with the paper.
    pub description: &'static str,
    /// Default number of layers (steps for Glow; time segments for a CNF).
    pub default_layers: usize,
    /// Default hidden width of its MLPs.
    pub default_hidden: usize,
    /// Default nonlinearity of its MLPs: ReLU where it measured better without a seed that
    /// did worse (RealNVP, NICE, MAF, NSF), else tanh (a CNF's field must also be smooth for its
    /// solver).
    pub default_activation: Activation,
    /// Default Adam learning rate: the base rate, before the warm-up and the decay.
    pub default_lr: f32,
    /// Default steps of linear warm-up to the base rate.
    pub default_warmup_steps: u64,
    /// Default decay after the warm-up (a live run goes on at its final rate).
    pub default_schedule: LrSchedule,
    /// The decay on a picture (painted or an image), where it differs from the default.
    pub picture_schedule: Option<LrSchedule>,
    /// Which direction is one cheap pass.
    pub fast_direction: FastDirection,
}

impl FamilyInfo {
    /// Adam as this family trains by default, at base rate `lr` (the family's own if `None`).
    pub fn adam(&self, lr: Option<f32>) -> AdamConfig {
        AdamConfig {
            lr: lr.unwrap_or(self.default_lr),
            warmup_steps: self.default_warmup_steps,
            schedule: self.default_schedule,
            ..AdamConfig::default()
        }
    }

    /// Adam as this family trains `target` by default: [`adam`](Self::adam), with the
    /// picture schedule on a picture. The app and the CLI both start from it.
    pub fn adam_for(&self, lr: Option<f32>, target: &dyn Target) -> AdamConfig {
        let mut adam = self.adam(lr);
        if target.is_picture()
            && let Some(schedule) = self.picture_schedule
        {
            adam.schedule = schedule;
        }
        adam
    }
}

/// Every family, in menu order (the order of [`Family::ALL`], checked at compile time).
pub const FAMILIES: &[FamilyInfo] = &[
    FamilyInfo {
        family: Family::Planar,
        name: "planar",
        title: "Planar",
        description: "Each layer bends the plane along one direction: x + u·tanh(wᵀx + b) (Rezende & Mohamed 2015)",
        default_layers: 16,
        default_hidden: 64,
        default_activation: Activation::Tanh,
        // Measured by reverse KL (tests/numerics/fit_reverse_kl.rs, 1,000 steps of 512, seeds
        // 1–3): at 1e-3 the sixteen layers have barely moved (KL on U1 0.20–0.60, U2–U4
        // 0.77–1.31); at 2e-2, warmed up over 50 steps, U1 0.011–0.086, U2 0.025–0.17,
        // U3 0.17–0.29, U4 0.24–0.39. The decay over 3,000 steps lets a live run settle.
        default_lr: 2e-2,
        default_warmup_steps: 50,
        default_schedule: LrSchedule::Cosine {
            total_steps: 3000,
            final_fraction: 0.1,
        },
        picture_schedule: None,
        fast_direction: FastDirection::Sampling,
    },
    FamilyInfo {
        family: Family::Radial,
        name: "radial",
        title: "Radial",
        description: "Each layer pulls points towards a centre or pushes them away from it (Rezende & Mohamed 2015)",
        default_layers: 16,
        default_hidden: 64,
        default_activation: Activation::Tanh,
        // Measured as planar's (1,000 steps of 512, seeds 1–3): at 1e-3 KL on U1 0.74–0.85,
        // U2 1.11–1.58; at 5e-2 U1 0.054–0.114, U2 0.31–0.43 (2e-2: 0.16–0.19, 0.45–0.58). By
        // maximum likelihood on twomoons (1,000 steps) 5e-2 also reaches NLL 2.02 where 1e-3
        // is at 3.08–3.17, without a rollback.
        default_lr: 5e-2,
        default_warmup_steps: 50,
        default_schedule: LrSchedule::Cosine {
            total_steps: 3000,
            final_fraction: 0.1,
        },
        picture_schedule: None,
        fast_direction: FastDirection::Sampling,
    },
    FamilyInfo {
        family: Family::Nice,
        name: "nice",
        title: "NICE",
        description: "Additive coupling layers: half the coordinates shift the other half, then one overall scale (Dinh et al. 2015)",
        default_layers: 8,
        default_hidden: 64,
        // ReLU: mean held-out NLL over seeds 1–3 after 1,000 steps of 512 (`flowlab train
        // --activation`) 1.93 on twomoons against tanh's 2.14, 3.69 on 8gaussians against 4.30
        // (tanh never left the base there).
        default_activation: Activation::Relu,
        default_lr: 1e-3,
        default_warmup_steps: 0,
        default_schedule: LrSchedule::Constant,
        picture_schedule: None,
        fast_direction: FastDirection::Both,
    },
    FamilyInfo {
        family: Family::RealNvp,
        name: "realnvp",
        title: "RealNVP",
        description: "Affine coupling layers: half the coordinates scale and shift the other half (Dinh et al. 2017)",
        default_layers: 8,
        default_hidden: 64,
        // ReLU, as zuko's: held-out NLL after 1,000 steps of 512 (seeds 1/2/3, `flowlab train
        // --activation`) 2.956/2.961/2.943 on 8gaussians against tanh's 3.125/3.067/3.056,
        // 3.611/3.626/3.621 on checkerboard against 3.697/3.680/3.659, and 1.719/1.750/1.717
        // on twomoons against 1.762/1.758/1.808.
        default_activation: Activation::Relu,
        // Measured (tests/numerics/fit_speed.rs, 3 seeds): a higher rate warmed up over 50
        // steps and decayed over 800 reaches held-out NLL 1.80 on twomoons in 550–600 steps
        // instead of 750–1,550, and ends lower after 2,000 on moons, 8gaussians and checkerboard.
        default_lr: 5e-3,
        default_warmup_steps: 50,
        default_schedule: LrSchedule::Cosine {
            total_steps: 800,
            final_fraction: 0.1,
        },
        // A picture's detail keeps improving at the higher rate: KL after 2,000 steps of 512,
        // seeds 1/2/3 (`flowlab train --decay-steps`), decayed over 2,000 steps, on a face
        // 0.372/0.482/0.450 and the painted word 0.156/0.123/0.093, against 0.472/0.528/0.417
        // and 0.202/0.181/0.121 over 800 (zuko's RealNVP(8): 0.535/0.686/0.365 and
        // 0.153/0.126/0.177); over 3,000, 0.420 and 0.134 on the means.
        picture_schedule: Some(LrSchedule::Cosine {
            total_steps: 2000,
            final_fraction: 0.1,
        }),
        fast_direction: FastDirection::Both,
    },
    FamilyInfo {
        family: Family::Glow,
        name: "glow",
        title: "Glow",
        description: "Steps of actnorm, an invertible 1×1 mixing of the coordinates and an affine coupling (Kingma & Dhariwal 2018)",
        // Eight steps: RealNVP's eight couplings and its size (35,456 parameters against
        // 35,344). With four (17,728) held-out NLL on twomoons after 2,000 steps of 512 was
        // 1.87–1.93 over seeds 1–3, never the 1.80 RealNVP reaches; with eight, 1.76–1.79.
        default_layers: 8,
        default_hidden: 64,
        // tanh: ReLU was better on average (mean held-out NLL over seeds 1–3 after 1,000 steps
        // of 512: 3.04 against 3.16 on 8gaussians) but left seed 1 of twomoons at 1.90 after
        // 2,000 steps, where tanh reaches 1.82 on every seed (tests/numerics/fit_speed.rs).
        default_activation: Activation::Tanh,
        default_lr: 1e-3,
        default_warmup_steps: 0,
        default_schedule: LrSchedule::Constant,
        picture_schedule: None,
        fast_direction: FastDirection::Both,
    },
    FamilyInfo {
        family: Family::Maf,
        name: "maf",
        title: "MAF",
        description: "Masked autoregressive: each coordinate is scaled and shifted by the ones before it; density in one pass, sampling one coordinate at a time (Papamakarios et al. 2017)",
        default_layers: 5,
        default_hidden: 64,
        // ReLU, as zuko's, at 2e-3 warmed up over 50 steps and decayed over 1,000: mean held-out
        // NLL over seeds 0–3 after 1,000 steps of 512 (`flowlab train --activation --lr
        // --warmup --decay-steps`) 1.732 / 3.042 / 3.722 on twomoons / 8gaussians /
        // checkerboard, against 1.757 / 3.104 / 3.743 for ReLU at a constant 1e-3 (whose seed 0
        // ended at 3.23 on 8gaussians) and 1.841 / 3.164 / 3.821 for tanh.
        default_activation: Activation::Relu,
        default_lr: 2e-3,
        default_warmup_steps: 50,
        default_schedule: LrSchedule::Cosine {
            total_steps: 1000,
            final_fraction: 0.1,
        },
        picture_schedule: None,
        fast_direction: FastDirection::Density,
    },
    FamilyInfo {
        family: Family::Iaf,
        name: "iaf",
        title: "IAF",
        description: "Inverse autoregressive: MAF turned around; sampling in one pass, density one coordinate at a time (Kingma et al. 2016)",
        default_layers: 5,
        default_hidden: 64,
        // tanh, and a constant rate: MAF's ReLU and schedule were measured on MAF only. IAF's
        // density direction is MAF's sampling direction (sequential), so its training differs
        // and needs measuring of its own before its defaults change.
        default_activation: Activation::Tanh,
        default_lr: 1e-3,
        default_warmup_steps: 0,
        default_schedule: LrSchedule::Constant,
        picture_schedule: None,
        fast_direction: FastDirection::Sampling,
    },
    FamilyInfo {
        family: Family::Nsf,
        name: "nsf",
        title: "Neural spline",
        description: "Coupling layers whose maps are monotone rational-quadratic splines: flexible bends, still exactly invertible (Durkan et al. 2019)",
        default_layers: 4,
        default_hidden: 64,
        // ReLU, as zuko's: with the layers' own splines (see `spline`), KL after 2,000 steps
        // of 512 at five layers, seeds 1/2/3, on a picture 0.073/0.104/0.079 against tanh's
        // 0.116/0.136/0.091 and zuko's NSF(5) 0.075/0.065/0.091; on toys without those
        // splines the two were level (held-out NLL 1.725 against 1.724 on twomoons).
        // 3e-3 warmed up over 50 steps and decayed over 1,000 rather than a constant 1e-3:
        // held-out NLL after 1,000 steps of 512 at five layers, means over seeds 1–3, 1.695 /
        // 2.853 / 3.536 on twomoons / 8gaussians / checkerboard against 1.707 / 2.865 / 3.598,
        // and KL on the painted word after 2,000 steps 0.048 against 0.062.
        default_activation: Activation::Relu,
        default_lr: 3e-3,
        default_warmup_steps: 50,
        default_schedule: LrSchedule::Cosine {
            total_steps: 1000,
            final_fraction: 0.1,
        },
        picture_schedule: None,
        fast_direction: FastDirection::Both,
    },
    FamilyInfo {
        family: Family::Cnf,
        name: "cnf",
        title: "Continuous (CNF)",
        description: "A neural ODE moves the points smoothly in time; the density follows from integrating the field's divergence (Chen et al. 2018; Grathwohl et al. 2019)",
        default_layers: 10,
        default_hidden: 64,
        default_activation: Activation::Tanh,
        default_lr: 1e-3,
        default_warmup_steps: 0,
        default_schedule: LrSchedule::Constant,
        picture_schedule: None,
        fast_direction: FastDirection::Both,
    },
];

// Why at compile time: `Family::info` indexes the table by discriminant.
const _: () = {
    assert!(FAMILIES.len() == Family::ALL.len());
    let mut i = 0;
    while i < FAMILIES.len() {
        assert!(FAMILIES[i].family as usize == i && Family::ALL[i] as usize == i);
        i += 1;
    }
};

const fn family_names() -> [&'static str; Family::ALL.len()] {
    let mut names = [""; Family::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = FAMILIES[i].name;
        i += 1;
    }
    names
}

impl Family {
    /// Every family, in the order the UI lists them (the order of [`FAMILIES`]).
    pub const ALL: [Family; 9] = [
        Family::Planar,
        Family::Radial,
        Family::Nice,
        Family::RealNvp,
        Family::Glow,
        Family::Maf,
        Family::Iaf,
        Family::Nsf,
        Family::Cnf,
    ];

    /// Every family's CLI/URL name, in menu order (derived from [`FAMILIES`]).
    pub const NAMES: &'static [&'static str] = &family_names();

    /// The family a new scene or a bare `flowlab train` uses.
    pub const DEFAULT: Family = Family::RealNvp;

    /// Its row of [`FAMILIES`].
    pub fn info(self) -> &'static FamilyInfo {
        &FAMILIES[self as usize]
    }

    /// The CLI/URL name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Parses a CLI/URL name.
    pub fn from_name(name: &str) -> Result<Self, FlowError> {
        FAMILIES
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.family)
            .ok_or_else(|| FlowError::UnknownFamily(name.to_string()))
    }

    /// Default number of layers.
    pub fn default_layers(self) -> usize {
        self.info().default_layers
    }
}

/// Settings shared by every family (each uses what applies to it).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowConfig {
    /// Which family.
    pub family: Family,
    /// Number of layers (steps for Glow; time segments for CNF).
    pub layers: usize,
    /// Hidden width of conditioner / vector-field MLPs.
    pub hidden: usize,
    /// Hidden layers per MLP.
    pub depth: usize,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Train the base distribution's mean and scale too.
    pub learnable_base: bool,
    /// Spline bins (NSF).
    pub bins: usize,
    /// Spline interval half-width `B` (NSF: identity tails outside `[−B, B]`).
    pub tail_bound: f32,
    /// NSF: each layer also bends its conditioning half by splines of its own (see
    /// [`super::spline`]); `false` in a model saved before them, which then loads unchanged.
    #[serde(default)]
    pub marginal_splines: bool,
    /// CNF settings (solver, trace estimator, regularisers, augmentation, flow matching).
    #[serde(default)]
    pub cnf: super::cnf::CnfOptions,
}

impl FlowConfig {
    /// The family's defaults from [`FAMILIES`] (RealNVP: 8 layers, MLP 1→64→64→2, ReLU).
    pub fn new(family: Family) -> Self {
        let info = family.info();
        Self {
            family,
            layers: info.default_layers,
            hidden: info.default_hidden,
            depth: 2,
            activation: info.default_activation,
            learnable_base: false,
            bins: 8,
            tail_bound: 4.0,
            marginal_splines: true,
            cnf: super::cnf::CnfOptions::default(),
        }
    }

    /// The family's reference model for speed comparisons: its defaults with tanh networks,
    /// as the peers' benchmarks (`../shared/peers`) define theirs.
    pub fn reference(family: Family) -> Self {
        Self {
            activation: Activation::Tanh,
            ..Self::new(family)
        }
    }

    /// Rejects settings no one could mean, with a message naming the limit.
    pub fn validate(&self) -> Result<(), FlowError> {
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(FlowError::InvalidConfig(what.to_string()))
            }
        };
        check(
            (1..=64).contains(&self.layers),
            "layers must be between 1 and 64",
        )?;
        check(
            (1..=1024).contains(&self.hidden),
            "hidden width must be between 1 and 1024",
        )?;
        check(
            (1..=8).contains(&self.depth),
            "MLP depth must be between 1 and 8",
        )?;
        check(
            (2..=64).contains(&self.bins),
            "spline bins must be between 2 and 64",
        )?;
        check(
            self.tail_bound.is_finite() && (0.5..=100.0).contains(&self.tail_bound),
            "spline tail bound must be between 0.5 and 100",
        )?;
        self.cnf.validate()
    }

    fn conditioner(&self) -> ConditionerShape {
        ConditionerShape {
            hidden: self.hidden,
            depth: self.depth,
            activation: self.activation,
        }
    }
}

/// A flow that could not be built or loaded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlowError {
    /// No family has this name.
    #[error("unknown flow `{0}` (choose one of {names})", names = Family::NAMES.join(", "))]
    UnknownFamily(String),
    /// A setting is out of range.
    #[error("invalid flow settings: {0}")]
    InvalidConfig(String),
    /// Saved parameters do not fit the architecture they were saved with.
    #[error(transparent)]
    Params(#[from] ParamError),
}

/// Builds one step of a discrete family: its layers (one, or Glow's three) at index `k`.
type StepBuilder = fn(&mut ParamStore, usize, usize, &FlowConfig, &mut Rng) -> Vec<Box<dyn Layer>>;

/// Builds a `dim`-dimensional flow with fresh parameters drawn from `seed`.
pub fn build_flow(config: &FlowConfig, dim: usize, seed: u64) -> Result<Flow, FlowError> {
    use super::autoregressive::{Autoregression, AutoregressiveAffine};
    config.validate()?;
    if dim == 0 || dim > 64 {
        return Err(FlowError::InvalidConfig(
            "dimension must be between 1 and 64".into(),
        ));
    }
    let step: StepBuilder = match config.family {
        Family::Cnf => return super::cnf::build(config, dim, seed),
        Family::RealNvp => |store, k, dim, config, r| {
            vec![Box::new(AffineCoupling::new(
                store,
                k,
                dim,
                config.conditioner(),
                r,
            ))]
        },
        Family::Nice => |store, k, dim, config, r| {
            vec![Box::new(AdditiveCoupling::new(
                store,
                k,
                dim,
                config.conditioner(),
                r,
            ))]
        },
        Family::Nsf => |store, k, dim, config, r| {
            let shape = super::spline::SplineShape::new(config.bins, config.tail_bound);
            vec![Box::new(super::spline::SplineCoupling::new(
                store,
                k,
                dim,
                config.conditioner(),
                shape,
                config.marginal_splines,
                r,
            ))]
        },
        Family::Planar => {
            |store, k, dim, _, r| vec![Box::new(super::planar::Planar::new(store, k, dim, r))]
        }
        Family::Radial => {
            |store, k, dim, _, r| vec![Box::new(super::radial::Radial::new(store, k, dim, r))]
        }
        Family::Glow => |store, k, dim, config, r| {
            super::glow::glow_step(store, k, dim, config.conditioner(), r)
                .into_iter()
                .collect()
        },
        Family::Maf => |store, k, dim, config, r| {
            let c = config.conditioner();
            let kind = Autoregression::Masked;
            vec![Box::new(AutoregressiveAffine::new(
                store, k, dim, c, kind, r,
            ))]
        },
        Family::Iaf => |store, k, dim, config, r| {
            let c = config.conditioner();
            let kind = Autoregression::Inverse;
            vec![Box::new(AutoregressiveAffine::new(
                store, k, dim, c, kind, r,
            ))]
        },
    };
    let rng = Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    for k in 0..config.layers {
        // One stream per layer: changing one layer's size leaves the others' draws alone.
        layers.extend(step(&mut store, k, dim, config, &mut rng.fork(k as u64)));
    }
    let mut r = rng.fork(1 << 32);
    if config.family == Family::Nice {
        layers.push(Box::new(DiagonalScale::new(
            &mut store,
            "nice.scale",
            dim,
            &mut r,
        )));
    }
    let base = if config.learnable_base {
        Base::diagonal(&mut store, dim, &mut r)
    } else {
        Base::StandardNormal { dim }
    };
    Ok(Flow {
        config: config.clone(),
        dim,
        layers,
        base,
        store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_menu_order_and_names_round_trip() {
        for (info, family) in FAMILIES.iter().zip(Family::ALL) {
            assert_eq!(info.family, family);
            assert_eq!(family.info(), info);
            assert_eq!(Family::from_name(info.name), Ok(family));
        }
        assert_eq!(Family::NAMES.len(), FAMILIES.len());
        assert_eq!(Family::DEFAULT.name(), "realnvp");
    }

    #[test]
    fn an_unknown_name_lists_every_family() {
        let err = Family::from_name("resnet").unwrap_err().to_string();
        for info in FAMILIES {
            assert!(err.contains(info.name), "{err}");
        }
    }

    #[test]
    fn every_family_builds_with_its_defaults() {
        for family in Family::ALL {
            let config = FlowConfig::new(family);
            assert_eq!(config.layers, family.default_layers());
            assert!(build_flow(&config, 2, 0).is_ok(), "{}", family.name());
        }
    }
}
