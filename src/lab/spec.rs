//! The spec: everything that defines what the app shows and trains, and its text form.
//!
//! `#target=moons&flow=realnvp&autoplay=1&seed=3&layers=6` ⇄ [`Spec`]. One table, [`KEYS`],
//! says for every key how it is read and written (TensorFlow Playground's `PROPS` idea), and
//! that table alone drives the URL fragment (web), eframe's storage (both), and `--scene`
//! (native): a new setting costs one row. Parsing is pure and never panics:
//! [`Spec::from_fragment_lenient`] keeps the default for whatever it cannot read and returns
//! one [`SpecError`] per problem for the UI to show.

use crate::flows::cnf::{CnfOptions, ProbeKind, Solver, TraceEstimator};
use crate::flows::mlp::Activation;
use crate::flows::{Family, FlowConfig};
use crate::targets::{self, Target};
use crate::train::{ObjectiveKind, TrainConfig};

use super::protocol::RunSpec;
use super::views::ViewSet;

/// Everything that defines a scene. Model settings left at `None` take the family's default
/// from the flow registry, so switching the family gives it its own sensible size.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Target name, one of [`targets::names`].
    pub target: String,
    /// Flow family.
    pub flow: Family,
    /// Start training as soon as the scene is loaded.
    pub autoplay: bool,
    /// Seed of every random stream of the scene (data, initialisation, sampling).
    pub seed: u64,
    /// Layers (`None`: the family's default).
    pub layers: Option<usize>,
    /// Hidden width of the conditioner / vector-field networks (`None`: the family's default).
    pub width: Option<usize>,
    /// Adam's learning rate (`None`: the family's default).
    pub lr: Option<f32>,
    /// Samples per training step.
    pub batch: usize,
    /// Training objective (`None`: the registry's choice for the family and target).
    pub objective: Option<ObjectiveKind>,
    /// Hidden nonlinearity of the networks inside the layers.
    pub activation: Activation,
    /// Train the base Gaussian's mean and scale too (a learnable diagonal Gaussian).
    pub learnable_base: bool,
    /// A CNF's solver, trace estimator, regularisers and augmentation.
    pub cnf: CnfOptions,
    /// Most training steps per second (`None`: as fast as it goes).
    pub speed: Option<f64>,
    /// The layer view's depth, `0…K`, fractional between layers (`None`: the last layer).
    pub depth: Option<f32>,
    /// The layer view sweeps its depth from 0 to K, looping.
    pub animate: bool,
    /// The teaching notes are shown beside the views.
    pub notes: bool,
    /// The views shown.
    pub views: ViewSet,
}

/// Samples per training step in the app. Why 256 and not the CLI's 512: the app shows a fit
/// forming, and twice the steps per second at half the batch looks right sooner.
pub const DEFAULT_BATCH: usize = 256;

impl Default for Spec {
    fn default() -> Self {
        Self {
            target: targets::DEFAULT_TARGET.to_owned(),
            flow: Family::DEFAULT,
            autoplay: true,
            seed: 0,
            layers: None,
            width: None,
            lr: None,
            batch: DEFAULT_BATCH,
            objective: None,
            activation: Activation::default(),
            learnable_base: false,
            cnf: CnfOptions::default(),
            speed: None,
            depth: None,
            animate: false,
            notes: true,
            views: ViewSet::default(),
        }
    }
}

/// One row of the key table: a key's name, what it means, and how it is read and written.
pub struct Key {
    /// The key as written in the fragment.
    pub name: &'static str,
    /// One line for help texts and the README.
    pub help: &'static str,
    /// Reads a (decoded) value into the spec; `Err` says what would have been accepted.
    parse: fn(&mut Spec, &str) -> Result<(), String>,
    /// The value to write, or `None` to leave the key out (it has its default).
    write: fn(&Spec) -> Option<String>,
}

/// Every key, in the order they are written.
pub const KEYS: &[Key] = &[
    Key {
        name: "target",
        help: "a built-in target (moons, 8gaussians, checkerboard, u1, …)",
        parse: |spec, value| {
            let name = value.to_ascii_lowercase();
            match targets::info(&name) {
                Some(info) => {
                    spec.target = info.name.to_owned();
                    Ok(())
                }
                None => Err(targets::names().collect::<Vec<_>>().join(", ")),
            }
        },
        write: |spec| Some(spec.target.clone()),
    },
    Key {
        name: "flow",
        help: "the flow family (planar, radial, nice, realnvp, glow, maf, iaf, nsf, cnf)",
        parse: |spec, value| {
            spec.flow = Family::from_name(&value.to_ascii_lowercase()).map_err(|_| {
                Family::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            })?;
            Ok(())
        },
        write: |spec| Some(spec.flow.name().to_owned()),
    },
    Key {
        name: "autoplay",
        help: "1 to start training at once, 0 to start paused",
        parse: |spec, value| {
            spec.autoplay = parse_flag(value)?;
            Ok(())
        },
        write: |spec| Some(u8::from(spec.autoplay).to_string()),
    },
    Key {
        name: "seed",
        help: "seed of the data, the initialisation and the sampling",
        parse: |spec, value| {
            spec.seed = value
                .parse()
                .map_err(|_| "an integer in 0..=2^64-1".to_owned())?;
            Ok(())
        },
        write: |spec| Some(spec.seed.to_string()),
    },
    Key {
        name: "layers",
        help: "number of layers (default: the family's own)",
        parse: |spec, value| {
            spec.layers = Some(parse_in(value, LAYERS, "an integer from 1 to 64")?);
            Ok(())
        },
        write: |spec| spec.layers.map(|n| n.to_string()),
    },
    Key {
        name: "width",
        help: "hidden width of the networks inside the layers (default: the family's own)",
        parse: |spec, value| {
            spec.width = Some(parse_in(value, WIDTH, "an integer from 1 to 1024")?);
            Ok(())
        },
        write: |spec| spec.width.map(|n| n.to_string()),
    },
    Key {
        name: "lr",
        help: "Adam's learning rate, in (0, 1] (default: the family's own)",
        parse: |spec, value| {
            let lr: f32 = value
                .parse()
                .ok()
                .filter(|lr: &f32| lr.is_finite() && *lr > 0.0 && *lr <= 1.0)
                .ok_or_else(|| "a number in (0, 1], e.g. 0.001".to_owned())?;
            spec.lr = Some(lr);
            Ok(())
        },
        write: |spec| spec.lr.map(|lr| lr.to_string()),
    },
    Key {
        name: "batch",
        help: "samples per training step",
        parse: |spec, value| {
            spec.batch = parse_in(value, BATCH, "an integer from 1 to 65536")?;
            Ok(())
        },
        write: |spec| (spec.batch != DEFAULT_BATCH).then(|| spec.batch.to_string()),
    },
    Key {
        name: "objective",
        help: "mle, reverse-kl or flow-matching (default: the family's usual one)",
        parse: |spec, value| {
            spec.objective = Some(
                ObjectiveKind::from_name(&value.to_ascii_lowercase()).ok_or_else(|| {
                    ObjectiveKind::ALL
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                })?,
            );
            Ok(())
        },
        write: |spec| spec.objective.map(|o| o.name().to_owned()),
    },
    Key {
        name: "activation",
        help: "the networks' nonlinearity: tanh, relu, silu or elu",
        parse: |spec, value| {
            spec.activation = choice(value, &Activation::ALL, |a| a.name())?;
            Ok(())
        },
        write: |spec| {
            (spec.activation != Activation::default()).then(|| spec.activation.name().to_owned())
        },
    },
    Key {
        name: "base",
        help: "the base distribution: normal (standard) or diagonal (a learnable diagonal Gaussian)",
        parse: |spec, value| {
            spec.learnable_base = match value.to_ascii_lowercase().as_str() {
                "normal" => false,
                "diagonal" => true,
                _ => return Err("normal or diagonal".to_owned()),
            };
            Ok(())
        },
        write: |spec| spec.learnable_base.then(|| "diagonal".to_owned()),
    },
    Key {
        name: "solver",
        help: "CNF: the integrator evaluating the trained model, rk4 or dopri (adaptive)",
        parse: |spec, value| {
            spec.cnf.solver = choice(value, Solver::ALL, |s| s.name())?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.solver).then(|| spec.cnf.solver.name().to_owned()),
    },
    Key {
        name: "steps",
        help: "CNF: RK4 steps over [0, T]",
        parse: |spec, value| {
            spec.cnf.steps = parse_in(value, CNF_STEPS, "an integer from 1 to 1000")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.steps).then(|| spec.cnf.steps.to_string()),
    },
    Key {
        name: "rtol",
        help: "CNF: dopri's relative tolerance",
        parse: |spec, value| {
            spec.cnf.rtol = parse_f32_in(value, TOLERANCE, "a number in [1e-10, 1]")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.rtol).then(|| spec.cnf.rtol.to_string()),
    },
    Key {
        name: "atol",
        help: "CNF: dopri's absolute tolerance",
        parse: |spec, value| {
            spec.cnf.atol = parse_f32_in(value, TOLERANCE, "a number in [1e-10, 1]")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.atol).then(|| spec.cnf.atol.to_string()),
    },
    Key {
        name: "trace",
        help: "CNF: how training gets Tr(∂f/∂z), exact or hutchinson",
        parse: |spec, value| {
            spec.cnf.trace = choice(value, TraceEstimator::ALL, |t| t.name())?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.trace).then(|| spec.cnf.trace.name().to_owned()),
    },
    Key {
        name: "probe",
        help: "CNF: Hutchinson's probe vectors, rademacher or gaussian",
        parse: |spec, value| {
            spec.cnf.probe = choice(value, ProbeKind::ALL, |p| p.name())?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.probe).then(|| spec.cnf.probe.name().to_owned()),
    },
    Key {
        name: "probes",
        help: "CNF: Hutchinson probes per sample",
        parse: |spec, value| {
            spec.cnf.probes = parse_in(value, PROBES, "an integer from 1 to 64")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.probes).then(|| spec.cnf.probes.to_string()),
    },
    Key {
        name: "kinetic",
        help: "CNF: λ_K, weight of the kinetic energy ∫‖f‖² dt",
        parse: |spec, value| {
            spec.cnf.kinetic = parse_f32_in(value, WEIGHT, "a number in [0, 10000]")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.kinetic).then(|| spec.cnf.kinetic.to_string()),
    },
    Key {
        name: "jacobian",
        help: "CNF: λ_J, weight of ∫‖∂f/∂z‖²_F dt",
        parse: |spec, value| {
            spec.cnf.jacobian = parse_f32_in(value, WEIGHT, "a number in [0, 10000]")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.jacobian).then(|| spec.cnf.jacobian.to_string()),
    },
    Key {
        name: "augment",
        help: "CNF: augmented dimensions (ANODE)",
        parse: |spec, value| {
            spec.cnf.augment = parse_in(value, AUGMENT, "an integer from 0 to 16")?;
            Ok(())
        },
        write: |spec| cnf_differs(spec, |c| c.augment).then(|| spec.cnf.augment.to_string()),
    },
    Key {
        name: "speed",
        help: "most training steps per second (max: as fast as it goes)",
        parse: |spec, value| {
            spec.speed = match value.to_ascii_lowercase().as_str() {
                "max" => None,
                text => Some(f64::from(parse_f32_in(
                    text,
                    SPEED,
                    "max, or a number of steps per second from 0.1 to 100000",
                )?)),
            };
            Ok(())
        },
        write: |spec| spec.speed.map(|s| s.to_string()),
    },
    Key {
        name: "depth",
        help: "the layer view's depth, 0 to the number of layers (fractional between layers)",
        parse: |spec, value| {
            spec.depth = Some(parse_f32_in(value, DEPTH, "a number from 0 to 64")?);
            Ok(())
        },
        write: |spec| spec.depth.map(|d| d.to_string()),
    },
    Key {
        name: "animate",
        help: "1: the layer view sweeps its depth from 0 to K, looping",
        parse: |spec, value| {
            spec.animate = parse_flag(value)?;
            Ok(())
        },
        write: |spec| spec.animate.then(|| "1".to_owned()),
    },
    Key {
        name: "notes",
        help: "0 to hide the teaching notes beside the views",
        parse: |spec, value| {
            spec.notes = parse_flag(value)?;
            Ok(())
        },
        write: |spec| (!spec.notes).then(|| "0".to_owned()),
    },
    Key {
        name: "views",
        help: "the views shown, comma-separated: samples, layers, density, field, loss",
        parse: |spec, value| {
            spec.views = ViewSet::from_names(value).map_err(|bad| {
                format!(
                    "view names from {} ('{bad}' is none)",
                    super::views::VIEWS
                        .iter()
                        .map(|v| v.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            Ok(())
        },
        write: |spec| (spec.views != ViewSet::default()).then(|| spec.views.to_names()),
    },
];

// Why these ranges here too: a bad URL value should be refused while parsing, with the key
// named; `FlowConfig::validate` and `Trainer::new` check the same bounds again.
const LAYERS: std::ops::RangeInclusive<usize> = 1..=64;
const WIDTH: std::ops::RangeInclusive<usize> = 1..=1024;
const BATCH: std::ops::RangeInclusive<usize> = 1..=65_536;
const CNF_STEPS: std::ops::RangeInclusive<usize> = 1..=1000;
const PROBES: std::ops::RangeInclusive<usize> = 1..=64;
const AUGMENT: std::ops::RangeInclusive<usize> = 0..=16;
const TOLERANCE: std::ops::RangeInclusive<f32> = 1e-10..=1.0;
const WEIGHT: std::ops::RangeInclusive<f32> = 0.0..=1e4;
const SPEED: std::ops::RangeInclusive<f32> = 0.1..=1e5;
const DEPTH: std::ops::RangeInclusive<f32> = 0.0..=64.0;

fn parse_flag(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("0 or 1".to_owned()),
    }
}

fn parse_f32_in(
    value: &str,
    range: std::ops::RangeInclusive<f32>,
    expected: &str,
) -> Result<f32, String> {
    value
        .parse()
        .ok()
        .filter(|v: &f32| v.is_finite() && range.contains(v))
        .ok_or_else(|| expected.to_owned())
}

/// One of `all`, by its name (case-insensitive); `Err` lists the names.
fn choice<T: Copy>(value: &str, all: &[T], name: fn(T) -> &'static str) -> Result<T, String> {
    let value = value.to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|&v| name(v) == value)
        .ok_or_else(|| all.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", "))
}

/// Whether a CNF setting differs from its default (only then is it written).
fn cnf_differs<T: PartialEq>(spec: &Spec, field: fn(&CnfOptions) -> T) -> bool {
    field(&spec.cnf) != field(&CnfOptions::default())
}

fn parse_in(
    value: &str,
    range: std::ops::RangeInclusive<usize>,
    expected: &str,
) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| expected.to_owned())
}

/// One problem found in a URL fragment (or a stored spec).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A `&`-separated part without `=`.
    #[error("URL fragment: '{part}' is not of the form key=value")]
    NotKeyValue {
        /// The offending part, decoded.
        part: String,
    },
    /// A key that is not in [`KEYS`].
    #[error("URL fragment: unknown key '{key}' (known keys: {})", key_names())]
    UnknownKey {
        /// The key, decoded.
        key: String,
    },
    /// A value that does not parse or is out of range.
    #[error("URL fragment: bad value '{value}' for '{key}': expected {expected}")]
    BadValue {
        /// The key.
        key: &'static str,
        /// The value, decoded.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8.
    #[error("URL fragment: bad percent-encoding in '{text}'")]
    BadEncoding {
        /// The raw text.
        text: String,
    },
}

fn key_names() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// A spec read leniently: what could be read, and what could not.
#[derive(Clone, Debug, PartialEq)]
pub struct LenientSpec {
    /// Defaults, overridden by every key that parsed.
    pub spec: Spec,
    /// One entry per problem, in fragment order.
    pub errors: Vec<SpecError>,
}

impl Spec {
    /// Parses a fragment strictly: the first problem is an error. A leading `#` is optional;
    /// an empty fragment gives the default spec; a repeated key keeps its last value.
    pub fn from_fragment(fragment: &str) -> Result<Self, SpecError> {
        let LenientSpec { spec, errors } = Self::from_fragment_lenient(fragment);
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(spec),
        }
    }

    /// Parses a fragment, keeping the default for every key that is missing or bad.
    pub fn from_fragment_lenient(fragment: &str) -> LenientSpec {
        let mut spec = Self::default();
        let mut errors = Vec::new();
        let body = fragment.strip_prefix('#').unwrap_or(fragment);
        for part in body.split('&').filter(|part| !part.is_empty()) {
            if let Err(error) = spec.apply_part(part) {
                errors.push(error);
            }
        }
        LenientSpec { spec, errors }
    }

    /// The fragment (without `#`) that [`Spec::from_fragment`] reads back as `self`. Model
    /// settings at their defaults are left out, so a default scene's link stays short.
    pub fn to_fragment(&self) -> String {
        KEYS.iter()
            .filter_map(|key| {
                (key.write)(self).map(|value| format!("{}={}", key.name, percent_encode(&value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn apply_part(&mut self, part: &str) -> Result<(), SpecError> {
        let Some((raw_key, raw_value)) = part.split_once('=') else {
            return Err(SpecError::NotKeyValue {
                part: percent_decode(part)?,
            });
        };
        let name = percent_decode(raw_key)?;
        let value = percent_decode(raw_value)?;
        let Some(key) = KEYS.iter().find(|key| key.name == name) else {
            return Err(SpecError::UnknownKey { key: name });
        };
        (key.parse)(self, &value).map_err(|expected| SpecError::BadValue {
            key: key.name,
            value,
            expected,
        })
    }

    /// The architecture these settings describe: the family's defaults from the registry,
    /// overridden by the settings that are set.
    pub fn flow_config(&self) -> FlowConfig {
        let mut config = FlowConfig::new(self.flow);
        if let Some(layers) = self.layers {
            config.layers = layers;
        }
        if let Some(width) = self.width {
            config.hidden = width;
        }
        config.activation = self.activation;
        config.learnable_base = self.learnable_base;
        config.cnf = self.cnf.clone();
        config
    }

    /// Whether `other` trains a different model (architecture, objective or optimisation):
    /// then the runs start again.
    pub fn model_differs(&self, other: &Spec) -> bool {
        self.flow_config() != other.flow_config()
            || self.learning_rate() != other.learning_rate()
            || self.batch != other.batch
            || self.objective != other.objective
    }

    /// The learning rate in use: the setting, or the family's default.
    pub fn learning_rate(&self) -> f32 {
        self.lr.unwrap_or(self.flow.info().default_lr)
    }

    /// The objective to train `target` with: the setting where it applies, otherwise the
    /// registry's choice for the family (and why the setting was not used).
    pub fn objective_for(
        &self,
        target: &dyn Target,
    ) -> (ObjectiveKind, Option<crate::train::NotApplicable>) {
        let default = ObjectiveKind::default_for(self.flow, target);
        match self.objective {
            None => (default, None),
            Some(chosen) => match chosen.applies(self.flow, target) {
                Ok(()) => (chosen, None),
                Err(why) => (default, Some(why)),
            },
        }
    }

    /// What a trainer needs to train this scene's model on `target`.
    pub fn run_spec(&self, target: &dyn Target) -> RunSpec {
        let (objective, _) = self.objective_for(target);
        RunSpec {
            target: self.target.clone(),
            flow: self.flow_config(),
            flow_seed: self.seed,
            train: TrainConfig {
                batch: self.batch,
                objective,
                adam: crate::engine::AdamConfig {
                    lr: self.learning_rate(),
                    ..crate::engine::AdamConfig::default()
                },
                seed: self.seed,
                // Why small: the app scores its own fixed held-out set (see `lab::session`).
                held_out: 16,
                init_from_data: true,
            },
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space, like form encoding).
fn percent_decode(text: &str) -> Result<String, SpecError> {
    let bad = || SpecError::BadEncoding {
        text: text.to_owned(),
    };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'%' => {
                let [high, low, ..] = tail else {
                    return Err(bad());
                };
                let hex = |digit: u8| (digit as char).to_digit(16);
                let (Some(high), Some(low)) = (hex(*high), hex(*low)) else {
                    return Err(bad());
                };
                bytes.push((high * 16 + low) as u8);
                rest = &tail[2..];
            }
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// Escapes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::views::ViewKind;
    use super::*;

    #[test]
    fn empty_fragment_is_the_default_spec() {
        for fragment in ["", "#", "#&&", "&"] {
            assert_eq!(
                Spec::from_fragment(fragment),
                Ok(Spec::default()),
                "{fragment:?}"
            );
        }
    }

    #[test]
    fn reads_every_key() {
        let spec = Spec::from_fragment(
            "#target=8gaussians&flow=maf&autoplay=0&seed=3&layers=6&width=32&lr=0.005&batch=128&objective=mle",
        )
        .unwrap();
        assert_eq!(
            spec,
            Spec {
                target: "8gaussians".into(),
                flow: Family::Maf,
                autoplay: false,
                seed: 3,
                layers: Some(6),
                width: Some(32),
                lr: Some(0.005),
                batch: 128,
                objective: Some(ObjectiveKind::Mle),
                ..Spec::default()
            }
        );
    }

    #[test]
    fn every_key_round_trips_through_to_fragment() {
        let spec = Spec {
            target: "u2".into(),
            flow: Family::Cnf,
            autoplay: false,
            seed: u64::MAX,
            layers: Some(3),
            width: Some(17),
            lr: Some(0.0123),
            batch: 1000,
            objective: Some(ObjectiveKind::FlowMatching),
            activation: Activation::Silu,
            learnable_base: true,
            cnf: CnfOptions {
                solver: Solver::DormandPrince,
                steps: 7,
                rtol: 1e-3,
                atol: 2e-4,
                trace: TraceEstimator::Hutchinson,
                probe: ProbeKind::Gaussian,
                probes: 5,
                kinetic: 0.05,
                jacobian: 0.01,
                augment: 2,
                ..CnfOptions::default()
            },
            speed: Some(12.5),
            depth: Some(2.25),
            animate: true,
            notes: false,
            views: [ViewKind::Layers, ViewKind::Field].into_iter().collect(),
        };
        let fragment = spec.to_fragment();
        for key in KEYS {
            assert!(
                fragment.contains(&format!("{}=", key.name)),
                "{} not written: {fragment}",
                key.name
            );
        }
        assert_eq!(Spec::from_fragment(&fragment), Ok(spec));
    }

    #[test]
    fn defaults_keep_the_link_short() {
        assert_eq!(
            Spec::default().to_fragment(),
            "target=moons&flow=realnvp&autoplay=1&seed=0"
        );
    }

    #[test]
    fn leading_hash_is_optional_and_names_are_case_insensitive() {
        let with_hash = Spec::from_fragment("#flow=NSF&autoplay=true&target=U1").unwrap();
        let without = Spec::from_fragment("flow=nsf&autoplay=1&target=u1").unwrap();
        assert_eq!(with_hash, without);
        assert_eq!((without.flow, without.target.as_str()), (Family::Nsf, "u1"));
    }

    #[test]
    fn last_repeated_key_wins_and_escapes_are_decoded() {
        assert_eq!(Spec::from_fragment("seed=1&seed=2").unwrap().seed, 2);
        let spec = Spec::from_fragment("%66low=%6Eice&seed=%34%32").unwrap();
        assert_eq!((spec.flow, spec.seed), (Family::Nice, 42));
    }

    #[test]
    fn unknown_key_is_named_with_the_known_ones() {
        let err = Spec::from_fragment("#bogus=1").unwrap_err();
        assert_eq!(
            err,
            SpecError::UnknownKey {
                key: "bogus".into()
            }
        );
        let text = err.to_string();
        assert!(text.contains("unknown key 'bogus'"), "{text}");
        assert!(
            text.contains("target, flow, autoplay, seed, layers"),
            "{text}"
        );
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let cases = [
            ("flow=glowy", "flow", "realnvp"),
            ("target=mooons", "target", "moons"),
            ("autoplay=maybe", "autoplay", "0 or 1"),
            ("seed=-1", "seed", "integer"),
            ("seed=1e3", "seed", "integer"),
            ("seed=99999999999999999999999", "seed", "integer"),
            ("layers=0", "layers", "1 to 64"),
            ("layers=65", "layers", "1 to 64"),
            ("width=5000", "width", "1 to 1024"),
            ("lr=0", "lr", "(0, 1]"),
            ("lr=NaN", "lr", "(0, 1]"),
            ("lr=2", "lr", "(0, 1]"),
            ("batch=0", "batch", "1 to 65536"),
            ("objective=sgd", "objective", "reverse-kl"),
        ];
        for (fragment, key, hint) in cases {
            let err = Spec::from_fragment(fragment).unwrap_err();
            let SpecError::BadValue {
                key: got_key,
                expected,
                ..
            } = &err
            else {
                panic!("{fragment}: {err:?}");
            };
            assert_eq!(*got_key, key, "{fragment}");
            assert!(expected.contains(hint), "{fragment}: {expected}");
        }
    }

    #[test]
    fn broken_parts_are_errors_not_panics() {
        assert_eq!(
            Spec::from_fragment("#autoplay").unwrap_err(),
            SpecError::NotKeyValue {
                part: "autoplay".into()
            }
        );
        for fragment in [
            "flow=%",
            "flow=%4",
            "flow=%zz",
            "flow=%ff%fe",
            "%=1",
            "seed=%C3",
        ] {
            let err = Spec::from_fragment(fragment).unwrap_err();
            assert!(
                matches!(err, SpecError::BadEncoding { .. }),
                "{fragment}: {err:?}"
            );
        }
    }

    #[test]
    fn lenient_parse_keeps_good_keys_and_defaults_for_bad_ones() {
        let parsed = Spec::from_fragment_lenient("#target=moons&flow=nope&seed=5&x=1&autoplay=0");
        assert_eq!(
            parsed.spec,
            Spec {
                seed: 5,
                autoplay: false,
                ..Spec::default()
            }
        );
        assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
        assert!(matches!(
            parsed.errors[0],
            SpecError::BadValue { key: "flow", .. }
        ));
        assert!(matches!(parsed.errors[1], SpecError::UnknownKey { .. }));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every short string over an alphabet of the interesting characters.
        let alphabet = ['#', '&', '=', '%', '+', 'a', '1', 'f', 'é', '\u{0}'];
        let mut stack = vec![String::new()];
        while let Some(text) = stack.pop() {
            let _ = Spec::from_fragment_lenient(&text);
            if text.chars().count() < 4 {
                for c in alphabet {
                    stack.push(format!("{text}{c}"));
                }
            }
        }
    }

    #[test]
    fn model_settings_override_the_family_defaults() {
        let spec = Spec::from_fragment("flow=maf&layers=3&width=16").unwrap();
        let config = spec.flow_config();
        assert_eq!(
            (config.family, config.layers, config.hidden),
            (Family::Maf, 3, 16)
        );
        let defaults = Spec::from_fragment("flow=maf").unwrap().flow_config();
        assert_eq!(defaults.layers, Family::Maf.info().default_layers);
        assert_eq!(defaults.hidden, Family::Maf.info().default_hidden);
    }

    #[test]
    fn an_objective_that_does_not_apply_falls_back_with_a_reason() {
        let moons = targets::by_name("moons").unwrap();
        let spec = Spec::from_fragment("flow=realnvp&objective=flow-matching").unwrap();
        let (objective, why) = spec.objective_for(moons.as_ref());
        assert_eq!(objective, ObjectiveKind::Mle);
        assert!(why.is_some());
        let u1 = targets::by_name("u1").unwrap();
        let spec = Spec::from_fragment("flow=planar").unwrap();
        assert_eq!(spec.objective_for(u1.as_ref()).0, ObjectiveKind::ReverseKl);
    }
}
