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
use crate::i18n::Lang;
use crate::targets::{Target, TargetSource};
use crate::train::{ObjectiveKind, TrainConfig};

use super::backend::BackendChoice;
use super::protocol::RunSpec;
use super::views::ViewSet;

/// One model's settings. Those left at `None` take the family's default from the flow
/// registry, so switching the family gives it its own sensible size.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSettings {
    /// Flow family.
    pub flow: Family,
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
    /// Hidden nonlinearity of the networks inside the layers (`None`: the family's default).
    pub activation: Option<Activation>,
    /// Train the base Gaussian's mean and scale too (a learnable diagonal Gaussian).
    pub learnable_base: bool,
    /// A CNF's solver, trace estimator, regularisers and augmentation.
    pub cnf: CnfOptions,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self::of(Family::DEFAULT)
    }
}

/// Most models trained side by side (the first and five compared with it).
pub const MAX_MODELS: usize = 6;

/// Everything that defines a scene: the target, the models trained on it, and what is shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The target: a built-in's name, or an edited target's content.
    pub target: TargetSource,
    /// The first model (the views show it).
    pub model: ModelSettings,
    /// Models trained beside the first on the same data stream and seed (at most
    /// [`MAX_MODELS`] − 1).
    pub compare: Vec<ModelSettings>,
    /// Start training as soon as the scene is loaded.
    pub autoplay: bool,
    /// Seed of every random stream of the scene (data, initialisation, sampling).
    pub seed: u64,
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
    /// The language chosen (`None`: the browser's or the system's).
    pub lang: Option<Lang>,
    /// The executor the models train on: automatic, the CPU's or the GPU's.
    pub backend: BackendChoice,
}

/// Samples per training step in the app. Why 256 and not the CLI's 512: the app shows a fit
/// forming, and twice the steps per second at half the batch looks right sooner.
pub const DEFAULT_BATCH: usize = 256;

impl Default for Spec {
    fn default() -> Self {
        Self {
            target: TargetSource::default(),
            model: ModelSettings::default(),
            compare: Vec::new(),
            autoplay: true,
            seed: 0,
            speed: None,
            depth: None,
            animate: false,
            notes: true,
            views: ViewSet::default(),
            lang: None,
            backend: BackendChoice::Auto,
        }
    }
}

impl ModelSettings {
    /// A model of `family` at the family's own size.
    pub fn of(flow: Family) -> Self {
        Self {
            flow,
            layers: None,
            width: None,
            lr: None,
            batch: DEFAULT_BATCH,
            objective: None,
            activation: None,
            learnable_base: false,
            cnf: CnfOptions::default(),
        }
    }
}

/// One row of the key table: a key's name, what it means, and how it is read and written.
pub struct Key {
    /// The key as written in the fragment.
    pub name: &'static str,
    /// One line for help texts and the README.
    pub help: &'static str,
    access: Access,
}

/// How a key reads and writes its value: a setting of the scene, or of a model (the first
/// model's at the top level of the fragment, a compared model's inside `compare=…(…)`).
enum Access {
    /// A scene setting. `parse` reads a decoded value (`Err` says what would have been
    /// accepted); `write` gives the value, or `None` to leave the key out (its default).
    Scene {
        parse: fn(&mut Spec, &str) -> Result<(), String>,
        write: fn(&Spec) -> Option<String>,
    },
    /// A model setting, the same in both places.
    Model {
        parse: fn(&mut ModelSettings, &str) -> Result<(), String>,
        write: fn(&ModelSettings) -> Option<String>,
    },
}

impl Key {
    /// Whether this key is a model setting (it may appear inside `compare=…(…)`).
    pub fn is_model_setting(&self) -> bool {
        matches!(self.access, Access::Model { .. })
    }
}

/// Every key, in the order they are written.
pub const KEYS: &[Key] = &[
    Key {
        name: "target",
        help: "a built-in target (moons, 8gaussians, checkerboard, u1, …), or an edited one \
               (painted:…, mixture:…, image:…, csv:…, as the app writes it)",
        access: Access::Scene {
            parse: |spec, value| {
                spec.target = TargetSource::from_text(value)
                    .map_err(|e| format!("a built-in target's name or an edited target ({e})"))?;
                Ok(())
            },
            write: |spec| Some(spec.target.to_text()),
        },
    },
    Key {
        name: "flow",
        help: "the flow family (planar, radial, nice, realnvp, glow, maf, iaf, nsf, cnf)",
        access: Access::Model {
            parse: |model, value| {
                model.flow = Family::from_name(&value.to_ascii_lowercase()).map_err(|_| {
                    Family::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                })?;
                Ok(())
            },
            write: |model| Some(model.flow.name().to_owned()),
        },
    },
    Key {
        name: "autoplay",
        help: "1 to start training at once, 0 to start paused",
        access: Access::Scene {
            parse: |spec, value| {
                spec.autoplay = parse_flag(value)?;
                Ok(())
            },
            write: |spec| Some(u8::from(spec.autoplay).to_string()),
        },
    },
    Key {
        name: "seed",
        help: "seed of the data, the initialisation and the sampling",
        access: Access::Scene {
            parse: |spec, value| {
                spec.seed = value
                    .parse()
                    .map_err(|_| "an integer in 0..=2^64-1".to_owned())?;
                Ok(())
            },
            write: |spec| Some(spec.seed.to_string()),
        },
    },
    Key {
        name: "layers",
        help: "number of layers (default: the family's own)",
        access: Access::Model {
            parse: |model, value| {
                model.layers = Some(parse_in(value, LAYERS, "an integer from 1 to 64")?);
                Ok(())
            },
            write: |model| model.layers.map(|n| n.to_string()),
        },
    },
    Key {
        name: "width",
        help: "hidden width of the networks inside the layers (default: the family's own)",
        access: Access::Model {
            parse: |model, value| {
                model.width = Some(parse_in(value, WIDTH, "an integer from 1 to 1024")?);
                Ok(())
            },
            write: |model| model.width.map(|n| n.to_string()),
        },
    },
    Key {
        name: "lr",
        help: "Adam's learning rate, in (0, 1] (default: the family's own)",
        access: Access::Model {
            parse: |model, value| {
                let lr: f32 = value
                    .parse()
                    .ok()
                    .filter(|lr: &f32| lr.is_finite() && *lr > 0.0 && *lr <= 1.0)
                    .ok_or_else(|| "a number in (0, 1], e.g. 0.001".to_owned())?;
                model.lr = Some(lr);
                Ok(())
            },
            write: |model| model.lr.map(|lr| lr.to_string()),
        },
    },
    Key {
        name: "batch",
        help: "samples per training step",
        access: Access::Model {
            parse: |model, value| {
                model.batch = parse_in(value, BATCH, "an integer from 1 to 65536")?;
                Ok(())
            },
            write: |model| (model.batch != DEFAULT_BATCH).then(|| model.batch.to_string()),
        },
    },
    Key {
        name: "objective",
        help: "mle, reverse-kl or flow-matching (default: the family's usual one)",
        access: Access::Model {
            parse: |model, value| {
                model.objective = Some(
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
            write: |model| model.objective.map(|o| o.name().to_owned()),
        },
    },
    Key {
        name: "activation",
        help: "the networks' nonlinearity: tanh, relu, silu or elu",
        access: Access::Model {
            parse: |model, value| {
                model.activation = Some(choice(value, &Activation::ALL, |a| a.name())?);
                Ok(())
            },
            write: |model| model.activation.map(|a| a.name().to_owned()),
        },
    },
    Key {
        name: "base",
        help: "the base distribution: normal (standard) or diagonal (a learnable diagonal Gaussian)",
        access: Access::Model {
            parse: |model, value| {
                model.learnable_base = match value.to_ascii_lowercase().as_str() {
                    "normal" => false,
                    "diagonal" => true,
                    _ => return Err("normal or diagonal".to_owned()),
                };
                Ok(())
            },
            write: |model| model.learnable_base.then(|| "diagonal".to_owned()),
        },
    },
    Key {
        name: "solver",
        help: "CNF: the integrator evaluating the trained model, rk4 or dopri (adaptive)",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.solver = choice(value, Solver::ALL, |s| s.name())?;
                Ok(())
            },
            write: |model| {
                cnf_differs(model, |c| c.solver).then(|| model.cnf.solver.name().to_owned())
            },
        },
    },
    Key {
        name: "steps",
        help: "CNF: RK4 steps over [0, T]",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.steps = parse_in(value, CNF_STEPS, "an integer from 1 to 1000")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.steps).then(|| model.cnf.steps.to_string()),
        },
    },
    Key {
        name: "rtol",
        help: "CNF: dopri's relative tolerance",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.rtol = parse_f32_in(value, TOLERANCE, "a number in [1e-10, 1]")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.rtol).then(|| model.cnf.rtol.to_string()),
        },
    },
    Key {
        name: "atol",
        help: "CNF: dopri's absolute tolerance",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.atol = parse_f32_in(value, TOLERANCE, "a number in [1e-10, 1]")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.atol).then(|| model.cnf.atol.to_string()),
        },
    },
    Key {
        name: "trace",
        help: "CNF: how training gets Tr(∂f/∂z), exact or hutchinson",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.trace = choice(value, TraceEstimator::ALL, |t| t.name())?;
                Ok(())
            },
            write: |model| {
                cnf_differs(model, |c| c.trace).then(|| model.cnf.trace.name().to_owned())
            },
        },
    },
    Key {
        name: "probe",
        help: "CNF: Hutchinson's probe vectors, rademacher or gaussian",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.probe = choice(value, ProbeKind::ALL, |p| p.name())?;
                Ok(())
            },
            write: |model| {
                cnf_differs(model, |c| c.probe).then(|| model.cnf.probe.name().to_owned())
            },
        },
    },
    Key {
        name: "probes",
        help: "CNF: Hutchinson probes per sample",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.probes = parse_in(value, PROBES, "an integer from 1 to 64")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.probes).then(|| model.cnf.probes.to_string()),
        },
    },
    Key {
        name: "kinetic",
        help: "CNF: λ_K, weight of the kinetic energy ∫‖f‖² dt",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.kinetic = parse_f32_in(value, WEIGHT, "a number in [0, 10000]")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.kinetic).then(|| model.cnf.kinetic.to_string()),
        },
    },
    Key {
        name: "jacobian",
        help: "CNF: λ_J, weight of ∫‖∂f/∂z‖²_F dt",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.jacobian = parse_f32_in(value, WEIGHT, "a number in [0, 10000]")?;
                Ok(())
            },
            write: |model| {
                cnf_differs(model, |c| c.jacobian).then(|| model.cnf.jacobian.to_string())
            },
        },
    },
    Key {
        name: "augment",
        help: "CNF: augmented dimensions (ANODE)",
        access: Access::Model {
            parse: |model, value| {
                model.cnf.augment = parse_in(value, AUGMENT, "an integer from 0 to 16")?;
                Ok(())
            },
            write: |model| cnf_differs(model, |c| c.augment).then(|| model.cnf.augment.to_string()),
        },
    },
    Key {
        name: "speed",
        help: "most training steps per second (max: as fast as it goes)",
        access: Access::Scene {
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
    },
    Key {
        name: "backend",
        help: "the executor: auto (the GPU where it wins), cpu, or webgpu (the GPU whenever one computes)",
        access: Access::Scene {
            parse: |spec, value| {
                spec.backend = BackendChoice::from_name(value)
                    .ok_or_else(|| "auto, cpu or webgpu".to_owned())?;
                Ok(())
            },
            write: |spec| {
                (spec.backend != BackendChoice::Auto).then(|| spec.backend.name().to_owned())
            },
        },
    },
    Key {
        name: "depth",
        help: "the layer view's depth, 0 to the number of layers (fractional between layers)",
        access: Access::Scene {
            parse: |spec, value| {
                spec.depth = Some(parse_f32_in(value, DEPTH, "a number from 0 to 64")?);
                Ok(())
            },
            write: |spec| spec.depth.map(|d| d.to_string()),
        },
    },
    Key {
        name: "animate",
        help: "1: the layer view sweeps its depth from 0 to K, looping",
        access: Access::Scene {
            parse: |spec, value| {
                spec.animate = parse_flag(value)?;
                Ok(())
            },
            write: |spec| spec.animate.then(|| "1".to_owned()),
        },
    },
    Key {
        name: "notes",
        help: "0 to hide the teaching notes beside the views",
        access: Access::Scene {
            parse: |spec, value| {
                spec.notes = parse_flag(value)?;
                Ok(())
            },
            write: |spec| (!spec.notes).then(|| "0".to_owned()),
        },
    },
    Key {
        name: "lang",
        help: "the app's language: en (English) or zh (中文); the browser's language by default",
        access: Access::Scene {
            parse: |spec, value| {
                spec.lang = Some(Lang::from_code(value).ok_or_else(|| "en or zh".to_owned())?);
                Ok(())
            },
            write: |spec| spec.lang.map(|lang| lang.code().to_owned()),
        },
    },
    Key {
        name: "views",
        help: "the views shown, comma-separated: samples, layers, density, field, loss",
        access: Access::Scene {
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
    },
    Key {
        name: "compare",
        help: "models trained beside the first, comma-separated, each a flow with its settings \
               in brackets: maf,nsf(layers=4,width=32)",
        access: Access::Scene {
            parse: |spec, value| {
                let (models, problems) = parse_compare(value);
                spec.compare = models;
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                }
            },
            write: |spec| (!spec.compare.is_empty()).then(|| write_compare(&spec.compare)),
        },
    },
];

/// The models of a `compare` value; what could not be read is reported and left out.
fn parse_compare(value: &str) -> (Vec<ModelSettings>, Vec<String>) {
    let mut models = Vec::new();
    let mut problems = Vec::new();
    for item in split_top_level(value)
        .into_iter()
        .filter(|i| !i.trim().is_empty())
    {
        if models.len() == MAX_MODELS - 1 {
            problems.push(format!("at most {} compared models", MAX_MODELS - 1));
            break;
        }
        match parse_model(item.trim()) {
            Ok(model) => models.push(model),
            Err(why) => problems.push(format!("'{item}': {why}")),
        }
    }
    (models, problems)
}

/// `family` or `family(key=value,…)` with model keys only.
fn parse_model(item: &str) -> Result<ModelSettings, String> {
    let (family, settings) = match item.split_once('(') {
        Some((family, rest)) => (
            family,
            rest.strip_suffix(')')
                .ok_or_else(|| "a '(' without its ')'".to_owned())?,
        ),
        None => (item, ""),
    };
    let mut model = ModelSettings::default();
    model_key("flow").map_or(Ok(()), |parse| parse(&mut model, family.trim()))?;
    for setting in settings.split(',').filter(|s| !s.trim().is_empty()) {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("'{setting}' is not key=value"))?;
        let parse = model_key(name.trim())
            .filter(|_| name.trim() != "flow")
            .ok_or_else(|| format!("'{name}' is not a model setting"))?;
        parse(&mut model, value.trim())
            .map_err(|expected| format!("{name}: expected {expected}"))?;
    }
    Ok(model)
}

/// Reads one model setting's value into the settings (an error says what was expected).
type ModelParser = fn(&mut ModelSettings, &str) -> Result<(), String>;

fn model_key(name: &str) -> Option<ModelParser> {
    KEYS.iter()
        .find(|k| k.name == name)
        .and_then(|k| match k.access {
            Access::Model { parse, .. } => Some(parse),
            Access::Scene { .. } => None,
        })
}

fn write_compare(models: &[ModelSettings]) -> String {
    models
        .iter()
        .map(|model| {
            let settings: Vec<String> = KEYS
                .iter()
                .filter(|k| k.name != "flow")
                .filter_map(|k| match k.access {
                    Access::Model { write, .. } => write(model).map(|v| format!("{}={v}", k.name)),
                    Access::Scene { .. } => None,
                })
                .collect();
            if settings.is_empty() {
                model.flow.name().to_owned()
            } else {
                format!("{}({})", model.flow.name(), settings.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits at the commas outside brackets.
fn split_top_level(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

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
fn cnf_differs<T: PartialEq>(model: &ModelSettings, field: fn(&CnfOptions) -> T) -> bool {
    field(&model.cnf) != field(&CnfOptions::default())
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

pub(crate) fn key_names() -> String {
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
                let value = match key.access {
                    Access::Scene { write, .. } => write(self),
                    Access::Model { write, .. } => write(&self.model),
                };
                value.map(|value| format!("{}={}", key.name, percent_encode(&value)))
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
        let parsed = match key.access {
            Access::Scene { parse, .. } => parse(self, &value),
            Access::Model { parse, .. } => parse(&mut self.model, &value),
        };
        parsed.map_err(|expected| SpecError::BadValue {
            key: key.name,
            value: abbreviated(&value),
            expected,
        })
    }

    /// Every model: the first, then the compared ones.
    pub fn models(&self) -> impl Iterator<Item = &ModelSettings> {
        std::iter::once(&self.model).chain(&self.compare)
    }

    /// What a trainer needs to train `model` on `target` (this scene's seed: every model
    /// sees the same data stream and starts from the same seed).
    pub fn run_spec(&self, model: &ModelSettings, target: &dyn Target) -> RunSpec {
        let (objective, _) = model.objective_for(target);
        RunSpec {
            target: self.target.clone(),
            flow: model.flow_config(),
            flow_seed: self.seed,
            train: TrainConfig {
                batch: model.batch,
                objective,
                adam: model.flow.info().adam_for(model.lr, target),
                seed: self.seed,
                // Why small: the app scores its own fixed held-out set (see `lab::session`).
                held_out: 16,
                init_from_data: true,
            },
            init: None,
            resume_step: 0,
            backend: self.backend,
        }
    }
}

impl ModelSettings {
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
        if let Some(activation) = self.activation {
            config.activation = activation;
        }
        config.learnable_base = self.learnable_base;
        config.cnf = self.cnf.clone();
        config
    }

    /// Whether `other` trains a different model (architecture, objective or optimisation):
    /// then its run starts again.
    pub fn differs(&self, other: &ModelSettings) -> bool {
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
}

/// `text`, cut to its first 48 characters (an edited target's value can be long).
fn abbreviated(text: &str) -> String {
    match text.char_indices().nth(48) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
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

/// Escapes everything but RFC 3986's unreserved characters and the few sub-delimiters the
/// values use (`,` `:` `(` `)` `=`), which a fragment may hold as they are (the fragment's own
/// separators, `&` and the first `=` of each part, still split it correctly).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~,:()=".contains(&byte) {
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
                model: ModelSettings {
                    layers: Some(6),
                    width: Some(32),
                    lr: Some(0.005),
                    batch: 128,
                    objective: Some(ObjectiveKind::Mle),
                    ..ModelSettings::of(Family::Maf)
                },
                autoplay: false,
                seed: 3,
                ..Spec::default()
            }
        );
    }

    #[test]
    fn every_key_round_trips_through_to_fragment() {
        let model = ModelSettings {
            flow: Family::Cnf,
            layers: Some(3),
            width: Some(17),
            lr: Some(0.0123),
            batch: 1000,
            objective: Some(ObjectiveKind::FlowMatching),
            activation: Some(Activation::Silu),
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
        };
        let spec = Spec {
            target: "u2".into(),
            model,
            compare: vec![
                ModelSettings::of(Family::Maf),
                ModelSettings {
                    layers: Some(4),
                    width: Some(32),
                    ..ModelSettings::of(Family::Nsf)
                },
            ],
            autoplay: false,
            seed: u64::MAX,
            speed: Some(12.5),
            depth: Some(2.25),
            animate: true,
            notes: false,
            views: [ViewKind::Layers, ViewKind::Field].into_iter().collect(),
            lang: Some(Lang::Zh),
            backend: BackendChoice::Webgpu,
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
        assert_eq!(
            (without.model.flow, without.target.name()),
            (Family::Nsf, "u1")
        );
    }

    #[test]
    fn last_repeated_key_wins_and_escapes_are_decoded() {
        assert_eq!(Spec::from_fragment("seed=1&seed=2").unwrap().seed, 2);
        let spec = Spec::from_fragment("%66low=%6Eice&seed=%34%32").unwrap();
        assert_eq!((spec.model.flow, spec.seed), (Family::Nice, 42));
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
        let config = spec.model.flow_config();
        assert_eq!(
            (config.family, config.layers, config.hidden),
            (Family::Maf, 3, 16)
        );
        let defaults = Spec::from_fragment("flow=maf").unwrap().model.flow_config();
        assert_eq!(defaults.layers, Family::Maf.info().default_layers);
        assert_eq!(defaults.hidden, Family::Maf.info().default_hidden);
    }

    #[test]
    fn an_objective_that_does_not_apply_falls_back_with_a_reason() {
        let moons = crate::targets::by_name("moons").unwrap();
        let spec = Spec::from_fragment("flow=realnvp&objective=flow-matching").unwrap();
        let (objective, why) = spec.model.objective_for(moons.as_ref());
        assert_eq!(objective, ObjectiveKind::Mle);
        assert!(why.is_some());
        let u1 = crate::targets::by_name("u1").unwrap();
        let spec = Spec::from_fragment("flow=planar").unwrap();
        assert_eq!(
            spec.model.objective_for(u1.as_ref()).0,
            ObjectiveKind::ReverseKl
        );
    }
}
