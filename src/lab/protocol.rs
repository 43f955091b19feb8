//! Messages between the UI and a trainer, wherever the trainer runs: a Web Worker (wasm32),
//! a thread (native) or the UI thread itself (the fallback).
//!
//! Both directions are small serde enums; on the web they travel as JSON strings (serde_json
//! is already a dependency, and a string structured-clones cheaply). Bulk data never goes
//! through serde: a report's sample points travel beside it, as a transferred `Float32Array`
//! on the web and a `Vec<f32>` natively ([`Report::samples`]). No SharedArrayBuffer, so the
//! page works from any static host without special headers.

use serde::{Deserialize, Serialize};

use crate::flows::FlowConfig;
use crate::train::TrainConfig;

/// What a trainer needs to build and train one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The target (the trainer builds its own copy).
    pub target: crate::targets::TargetSource,
    /// The architecture.
    pub flow: FlowConfig,
    /// Seed of the flow's initial parameters.
    pub flow_seed: u64,
    /// Batch, objective, optimiser and the data stream's seed.
    pub train: TrainConfig,
    /// Parameters to start from instead of a fresh initialisation (an imported `model.json`,
    /// or the checkpoint of a run whose trainer died; its architecture is `flow`).
    pub init: Option<crate::flows::SavedModel>,
    /// The step count to continue from (a run restarted from a checkpoint), else 0.
    #[serde(default)]
    pub resume_step: u64,
    /// The executor asked for (`backend=` in the link).
    #[serde(default)]
    pub backend: super::backend::BackendChoice,
}

/// A fault the test hook's `window.flowlab.inject_fault(name)` injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// The app panics in its next frame (the crash page must appear).
    Panic,
    /// The first model's trainer simulates a fault (it must be replaced, the run resumed).
    Trainer(TrainerFault),
}

impl InjectedFault {
    /// Every fault, by the name the hook takes.
    pub const ALL: [(&'static str, InjectedFault); 4] = [
        ("panic", InjectedFault::Panic),
        ("trainer-crash", InjectedFault::Trainer(TrainerFault::Crash)),
        ("trainer-hang", InjectedFault::Trainer(TrainerFault::Hang)),
        ("gpu-lost", InjectedFault::Trainer(TrainerFault::LoseGpu)),
    ];

    /// The fault called `name`; `Err` lists the names.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, fault)| fault)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown fault '{name}' (one of {})", names.join(", "))
            })
    }
}

/// A fault the test hook's `inject_fault` has a trainer simulate, to prove the UI survives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainerFault {
    /// The trainer panics (in a Web Worker: the worker dies with an error event).
    Crash,
    /// The trainer stops answering, as a worker stuck in a loop would.
    Hang,
    /// The trainer's GPU device is destroyed, as a lost GPU would be (a driver reset, a
    /// browser reclaiming it): a model it trains must go on on the CPU and say why.
    LoseGpu,
}

/// UI → trainer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToTrainer {
    /// Build a fresh model and start it at step 0, replacing any current one. Reports about it
    /// carry `generation`, so the UI can drop late reports about the model it replaced.
    Start {
        /// Increases with every `Start` the UI sends to this trainer.
        generation: u64,
        /// The model and how to train it (boxed: the other commands are a few bytes).
        spec: Box<RunSpec>,
        /// Train at once (else wait for `Play` or `Step`).
        playing: bool,
    },
    /// Train continuously.
    Play,
    /// Stop training (the model is kept).
    Pause,
    /// Take exactly one step, then pause.
    Step,
    /// What the views show, so the trainer computes their pictures (none until sent).
    Views(super::views::ViewRequest),
    /// Train at most this many steps per second (`None`: as fast as it goes).
    Speed {
        /// The cap.
        steps_per_sec: Option<f64>,
    },
    /// Send the current model's architecture and parameters ([`FromTrainer::Model`]), for
    /// `model.json` and the PyTorch export.
    SendModel,
    /// Simulate a fault (the test hook's `inject_fault`).
    Fault(TrainerFault),
    /// Report at most this often while training (the UI draws no more often than this: a
    /// software-rendered page redraws slowly, and samples nobody sees are wasted work).
    Pace {
        /// Shortest time between two reports, in milliseconds (clamped to 10 ms … 5 s).
        report_every_ms: f64,
    },
}

/// Trainer → UI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromTrainer {
    /// The trainer runs and takes commands (sent once, first).
    Ready,
    /// Where a model stands. Sent at least [`REPORT_INTERVAL_MS`] apart while training (more
    /// where drawing the samples is costly, see `lab::session`), and at once after every
    /// command.
    Report(Box<Report>),
    /// The current model as `model.json` holds it (the answer to [`ToTrainer::SendModel`]).
    Model {
        /// Which model.
        generation: u64,
        /// Its architecture and parameters, at `step`.
        model: Box<crate::flows::SavedModel>,
        /// The step it was taken at.
        step: u64,
    },
    /// The model could not be built or trained any further.
    Failed {
        /// Which model.
        generation: u64,
        /// What went wrong.
        error: RunError,
    },
}

/// The shortest time between two reports of a training model. Why 40 ms: at 25 updates a
/// second the samples move smoothly, and the UI has no reason to draw more often than that.
pub const REPORT_INTERVAL_MS: f64 = 40.0;

/// Where a model stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Which model (see [`ToTrainer::Start`]).
    pub generation: u64,
    /// Optimisation steps taken.
    pub step: u64,
    /// Whether it is training.
    pub playing: bool,
    /// Mean training loss since the previous report (`None` before the first step).
    pub loss: Option<f64>,
    /// Steps per second over the last two seconds of training.
    pub steps_per_sec: f64,
    /// Seconds spent training so far.
    pub train_secs: f64,
    /// Trainable scalars.
    pub n_params: usize,
    /// Divergences the guard rolled back so far.
    pub rollbacks: u32,
    /// The learning rate the latest step applied (warm-up and decay included; the guard halves
    /// the base rate after a divergence).
    pub lr: f32,
    /// Held-out NLL (nats) on the trainer's fixed set of target samples, refreshed about once
    /// a second; `None` until first measured.
    pub test_nll: Option<f64>,
    /// `KL(p*‖q)` on the same set where the target's normaliser is known, else `None`.
    pub kl: Option<f64>,
    /// Step at which `test_nll`/`kl` were measured.
    pub scored_at_step: u64,
    /// What happened since the previous report (rollbacks, …), oldest first.
    pub events: Vec<TrainingEvent>,
    /// The 1st percentile of the held-out points' `log q` (scored with `test_nll`): below it a
    /// point is flagged out of distribution.
    #[serde(default)]
    pub held_out_log_q_p01: Option<f64>,
    /// Inverse health, measured with `test_nll`: the largest `‖f(f⁻¹(x)) − x‖` over 1,000
    /// held-out points (`f64::MAX` if one was NaN); above
    /// [`ROUND_TRIP_TOLERANCE`](crate::flows::eval::ROUND_TRIP_TOLERANCE) the app flags it.
    #[serde(default)]
    pub inverse_error: Option<f64>,
    /// The executor the model trains on (and why the CPU, when it is); `None` from a trainer
    /// that predates the choice.
    #[serde(default)]
    pub backend: Option<super::backend::Backend>,
    /// The executor that draws the views' heavy pictures (the trace and the density grids),
    /// and why the CPU when it does; `None` from a trainer that predates the choice.
    #[serde(default)]
    pub pictures_backend: Option<super::backend::Backend>,
    /// `backend=auto`'s measurement of both executors on this model, once it ended.
    #[serde(default)]
    pub race: Option<super::race::RaceTimes>,
    /// Milliseconds to evaluate the density of 1,000 points (measured while scoring).
    pub density_ms_per_1k: Option<f64>,
    /// Milliseconds to sample 1,000 points (measured while drawing the samples).
    pub sample_ms_per_1k: Option<f64>,
    /// The views' pictures, when new ones were computed (about twice a second).
    pub pictures: Option<Box<super::views::Pictures>>,
    /// Lengths of the bulk arrays (see [`Report::take_bulk`]) where they travel as one buffer.
    #[serde(default)]
    pub bulk_lengths: Vec<usize>,
    /// The flow's samples, row-major `[x0, y0, x1, y1, …]`: base samples pushed through the
    /// flow. Why skipped by serde: on the web they travel as a transferred `Float32Array`.
    #[serde(skip)]
    pub samples: Vec<f32>,
    /// Where each sample started: its standard-normal draw, `[x0, y0, …]` (for the colour
    /// wheel); sent with the first samples of a model only, as it never changes.
    #[serde(skip)]
    pub origins: Vec<f32>,
}

impl Report {
    /// Moves every bulk array (samples, origins, the pictures' arrays) into one buffer and
    /// records their lengths in [`Report::bulk_lengths`]: what travels beside the JSON.
    pub fn take_bulk(&mut self) -> Vec<f32> {
        let mut arrays = vec![
            std::mem::take(&mut self.samples),
            std::mem::take(&mut self.origins),
        ];
        if let Some(pictures) = &mut self.pictures {
            arrays.extend(pictures.arrays_mut().into_iter().map(std::mem::take));
        }
        self.bulk_lengths = arrays.iter().map(Vec::len).collect();
        arrays.concat()
    }

    /// Puts back what [`Report::take_bulk`] took, from `data`. A buffer that does not match
    /// the lengths is an error (the report is then dropped, not misread).
    pub fn put_bulk(&mut self, data: &[f32]) -> Result<(), RunError> {
        let total: usize = self.bulk_lengths.iter().sum();
        if total != data.len() || self.bulk_lengths.len() < 2 {
            return Err(RunError::new(
                Stage::Trainer,
                format!(
                    "a report's arrays do not match their lengths ({} values for {:?})",
                    data.len(),
                    self.bulk_lengths
                ),
            ));
        }
        let mut rest = data;
        let mut next = |len: usize| {
            let (head, tail) = rest.split_at(len);
            rest = tail;
            head.to_vec()
        };
        let lengths = std::mem::take(&mut self.bulk_lengths);
        self.samples = next(lengths[0]);
        self.origins = next(lengths[1]);
        if let Some(pictures) = &mut self.pictures {
            for (array, &len) in pictures.arrays_mut().into_iter().zip(&lengths[2..]) {
                *array = next(len);
            }
        }
        Ok(())
    }
}

/// Something the user should know that did not stop training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TrainingEvent {
    /// The divergence guard restored the last good state and lowered the learning rate.
    RolledBack {
        /// The step that diverged.
        step: u64,
        /// What the guard saw, in words.
        reason: String,
        /// The learning rate from now on.
        lr: f32,
    },
    /// The trainer died or stopped answering; a new one took over from the last checkpoint.
    Restarted {
        /// The step the run had reached when its trainer was lost.
        step: u64,
        /// The step of the checkpoint it continues from (`None`: none was taken yet, so it
        /// starts again from its initialisation).
        from: Option<u64>,
        /// What happened to the trainer.
        reason: String,
    },
}

impl std::fmt::Display for TrainingEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainingEvent::RolledBack { step, reason, lr } => write!(
                f,
                "step {step}: {reason}; rolled back to the last good state, learning rate now {lr:.2e}"
            ),
            TrainingEvent::Restarted { step, from, reason } => match from {
                Some(from) => write!(
                    f,
                    "step {step}: {reason}; a new trainer took over from the checkpoint at step {from}"
                ),
                None => write!(
                    f,
                    "step {step}: {reason}; a new trainer started the model again (no checkpoint yet)"
                ),
            },
        }
    }
}

/// Why a model could not be built or trained: which stage failed, and the typed error's
/// message. Why not the typed errors themselves: this crosses into a Web Worker and back as
/// data; each error is rendered once, where it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct RunError {
    /// What was being done.
    pub stage: Stage,
    /// The error, in words.
    pub message: String,
}

/// The stages of building and running a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Building the target.
    Target,
    /// Building the flow or compiling its training step.
    Model,
    /// Evaluating samples or held-out densities.
    Evaluation,
    /// The trainer itself (a worker that failed, a message it could not read).
    Trainer,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Target => "target",
            Stage::Model => "model",
            Stage::Evaluation => "evaluation",
            Stage::Trainer => "trainer",
        })
    }
}

impl RunError {
    /// An error of `stage`, in the words of `error`.
    pub fn new(stage: Stage, error: impl std::fmt::Display) -> Self {
        Self {
            stage,
            message: error.to_string(),
        }
    }
}

/// Encodes a message as JSON (these types always serialise).
pub fn encode<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).unwrap_or_else(|error| format!("\"unencodable: {error}\""))
}

/// Decodes a JSON message.
pub fn decode<'a, T: Deserialize<'a>>(json: &'a str) -> Result<T, RunError> {
    serde_json::from_str(json).map_err(|error| {
        RunError::new(
            Stage::Trainer,
            format!("unreadable message ({error}): {json:.80}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::Family;

    #[test]
    fn messages_round_trip_as_json() {
        let spec = RunSpec {
            target: "moons".into(),
            flow: FlowConfig::new(Family::RealNvp),
            flow_seed: 4,
            train: TrainConfig::default(),
            init: None,
            resume_step: 120,
            backend: super::super::backend::BackendChoice::Webgpu,
        };
        for command in [
            ToTrainer::Start {
                generation: 3,
                spec: Box::new(spec),
                playing: true,
            },
            ToTrainer::Play,
            ToTrainer::Pause,
            ToTrainer::Fault(TrainerFault::Hang),
            ToTrainer::Step,
            ToTrainer::Pace {
                report_every_ms: 400.0,
            },
        ] {
            assert_eq!(decode::<ToTrainer>(&encode(&command)), Ok(command));
        }
        let report = FromTrainer::Report(Box::new(Report {
            step: 7,
            loss: Some(1.5),
            events: vec![TrainingEvent::RolledBack {
                step: 6,
                reason: "the loss became non-finite".into(),
                lr: 5e-4,
            }],
            ..Report::default()
        }));
        assert_eq!(decode::<FromTrainer>(&encode(&report)), Ok(report));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = decode::<ToTrainer>("{\"Start\":1}").unwrap_err();
        assert_eq!(err.stage, Stage::Trainer);
        assert!(decode::<FromTrainer>("").is_err());
    }
}
