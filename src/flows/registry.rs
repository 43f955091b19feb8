//! The flow families by name, their settings, and one constructor for all of them.

use super::base::Base;
use super::coupling::{AdditiveCoupling, AffineCoupling, ConditionerShape, DiagonalScale};
use super::mlp::Activation;
use super::{Flow, Layer};
use crate::engine::ParamStore;
use crate::rng::Rng;

/// A family of flows; its CLI/URL name is [`Family::name`].
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

impl Family {
    /// Every family, in the order the UI lists them.
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

    /// The CLI/URL name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Planar => "planar",
            Family::Radial => "radial",
            Family::Nice => "nice",
            Family::RealNvp => "realnvp",
            Family::Glow => "glow",
            Family::Maf => "maf",
            Family::Iaf => "iaf",
            Family::Nsf => "nsf",
            Family::Cnf => "cnf",
        }
    }

    /// Parses a CLI/URL name.
    pub fn from_name(name: &str) -> Result<Self, FlowError> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| FlowError::UnknownFamily(name.to_string()))
    }

    /// Default number of layers.
    pub fn default_layers(self) -> usize {
        match self {
            Family::Planar | Family::Radial => 16,
            Family::Cnf => 10,
            Family::Glow | Family::Nsf => 4,
            Family::Maf | Family::Iaf => 5,
            Family::Nice | Family::RealNvp => 8,
        }
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
    /// CNF settings (solver, trace estimator, regularisers, augmentation, flow matching).
    #[serde(default)]
    pub cnf: super::cnf::CnfOptions,
}

impl FlowConfig {
    /// The family's defaults (the reference RealNVP: 8 layers, MLP 1→64→64→2, tanh).
    pub fn new(family: Family) -> Self {
        Self {
            family,
            layers: family.default_layers(),
            hidden: 64,
            depth: 2,
            activation: Activation::Tanh,
            learnable_base: false,
            bins: 8,
            tail_bound: 4.0,
            cnf: super::cnf::CnfOptions::default(),
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
        self.cnf.validate().map_err(FlowError::InvalidConfig)
    }

    fn conditioner(&self) -> ConditionerShape {
        ConditionerShape {
            hidden: self.hidden,
            depth: self.depth,
            activation: self.activation,
        }
    }
}

/// A flow that could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlowError {
    /// No family has this name.
    #[error(
        "unknown flow `{0}` (choose one of planar, radial, nice, realnvp, glow, maf, iaf, nsf, cnf)"
    )]
    UnknownFamily(String),
    /// A setting is out of range.
    #[error("invalid flow settings: {0}")]
    InvalidConfig(String),
    /// The family exists but is not available in this build.
    #[error("the {0} flow is not available yet")]
    NotAvailable(&'static str),
}

/// Builds a `dim`-dimensional flow with fresh parameters drawn from `seed`.
pub fn build_flow(config: &FlowConfig, dim: usize, seed: u64) -> Result<Flow, FlowError> {
    config.validate()?;
    if dim == 0 || dim > 64 {
        return Err(FlowError::InvalidConfig(
            "dimension must be between 1 and 64".into(),
        ));
    }
    if config.family == Family::Cnf {
        return super::cnf::build(config, dim, seed).map_err(FlowError::InvalidConfig);
    }
    let rng = Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let c = config.conditioner();
    let mut layers: Vec<Box<dyn Layer>> = Vec::new();
    for k in 0..config.layers {
        // One stream per layer: changing one layer's size leaves the others' draws alone.
        let mut r = rng.fork(k as u64);
        match config.family {
            Family::RealNvp => {
                layers.push(Box::new(AffineCoupling::new(&mut store, k, dim, c, &mut r)))
            }
            Family::Nice => layers.push(Box::new(AdditiveCoupling::new(
                &mut store, k, dim, c, &mut r,
            ))),
            Family::Nsf => layers.push(Box::new(super::spline::SplineCoupling::new(
                &mut store,
                k,
                dim,
                c,
                super::spline::SplineShape::new(config.bins, config.tail_bound),
                &mut r,
            ))),
            Family::Planar => layers.push(Box::new(super::planar::Planar::new(
                &mut store, k, dim, &mut r,
            ))),
            Family::Radial => layers.push(Box::new(super::radial::Radial::new(
                &mut store, k, dim, &mut r,
            ))),
            Family::Glow => layers.extend(super::glow::glow_step(&mut store, k, dim, c, &mut r)),
            Family::Maf | Family::Iaf => {
                let kind = match config.family {
                    Family::Maf => super::autoregressive::Autoregression::Masked,
                    _ => super::autoregressive::Autoregression::Inverse,
                };
                layers.push(Box::new(super::autoregressive::AutoregressiveAffine::new(
                    &mut store, k, dim, c, kind, &mut r,
                )))
            }
            other => return Err(FlowError::NotAvailable(other.name())),
        }
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
