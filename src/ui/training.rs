//! The seam between the app and the trainer: what the UI needs from a training run.
//!
//! The app owns an `Option<Box<dyn TrainingSession>>` and drives it from its frame loop; it never
//! sees the engine, the flow or their buffers — only progress numbers and sample points.
//! [`start_session`] is the single place where a scene becomes a running trainer: a
//! [`CpuSession`] over `crate::train::Trainer` (the WebGPU executor will add a second kind).

use std::sync::Arc;

use web_time::{Duration, Instant};

use super::scene::Scene;
use crate::flows::{Family, FlowConfig, FlowEvaluator, build_flow};
use crate::rng::Rng;
use crate::targets::Target;
use crate::train::{ObjectiveKind, StepOutcome, TrainConfig, Trainer};

/// Progress of a training run, for the status line and the test hook.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrainingProgress {
    /// Optimisation steps taken so far.
    pub step: u64,
    /// The latest training loss (e.g. NLL in nats), once there is one.
    pub loss: Option<f64>,
    /// Recent throughput.
    pub steps_per_sec: Option<f64>,
}

/// Why a training run could not start or continue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainingError {
    /// The trainer is not part of this build yet.
    #[error("the training engine is not built yet")]
    NotBuilt,
    /// The run failed; the message says why.
    #[error("training failed: {0}")]
    Failed(String),
}

/// A training run the app can drive frame by frame. Implemented by `crate::train`.
pub trait TrainingSession {
    /// Trains for about `budget` of wall time (at least one step), so a frame stays smooth.
    fn train_for(&mut self, budget: Duration) -> Result<(), TrainingError>;
    /// Takes exactly one optimisation step.
    fn step_once(&mut self) -> Result<(), TrainingError>;
    /// Where training stands.
    fn progress(&self) -> TrainingProgress;
    /// The flow's current samples (base samples pushed through the flow), for the plot.
    fn model_samples(&self) -> &[[f32; 2]];
    /// The compute backend this run uses: `"cpu"` or `"webgpu"`.
    fn compute_backend(&self) -> &'static str;
    /// Something the user should know that did not stop training (a divergence rolled back).
    fn notice(&self) -> Option<&str> {
        None
    }
}

/// Base samples pushed through the flow for the plot.
const MODEL_SAMPLES: usize = 1500;

/// A training run on the CPU executor.
pub struct CpuSession {
    trainer: Trainer,
    evaluator: FlowEvaluator,
    eps: Vec<f32>,
    samples: Vec<[f32; 2]>,
    progress: TrainingProgress,
    notice: Option<String>,
}

impl CpuSession {
    fn refresh_samples(&mut self) -> Result<(), TrainingError> {
        let s = self
            .evaluator
            .sample(&self.trainer.flow, &self.eps)
            .map_err(|e| TrainingError::Failed(e.to_string()))?;
        self.samples.clear();
        self.samples
            .extend(s.x.chunks_exact(2).map(|p| [p[0], p[1]]));
        Ok(())
    }

    fn record(&mut self, outcome: StepOutcome) {
        self.progress.step = self.trainer.steps();
        if outcome.loss.is_finite() {
            self.progress.loss = Some(outcome.loss as f64);
        }
        if let Some(why) = outcome.rolled_back {
            self.notice = Some(why.to_string());
        }
    }
}

impl TrainingSession for CpuSession {
    fn train_for(&mut self, budget: Duration) -> Result<(), TrainingError> {
        let start = Instant::now();
        let mut steps = 0u32;
        loop {
            let outcome = self.trainer.step();
            self.record(outcome);
            steps += 1;
            if start.elapsed() >= budget {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if secs > 0.0 {
            let rate = steps as f64 / secs;
            // Smoothed over frames so the status line does not flicker.
            let smooth = self
                .progress
                .steps_per_sec
                .map_or(rate, |r| 0.9 * r + 0.1 * rate);
            self.progress.steps_per_sec = Some(smooth);
        }
        self.refresh_samples()
    }

    fn step_once(&mut self) -> Result<(), TrainingError> {
        let outcome = self.trainer.step();
        self.record(outcome);
        self.refresh_samples()
    }

    fn progress(&self) -> TrainingProgress {
        self.progress
    }

    fn model_samples(&self) -> &[[f32; 2]] {
        &self.samples
    }

    fn compute_backend(&self) -> &'static str {
        "cpu"
    }

    fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }
}

/// The objective a family trains with in the app: reverse KL for planar/radial on targets
/// given by a smooth energy (the setting of their paper; their density direction needs a root
/// solve), flow matching for CNFs (simulation-free, so a frame fits many steps), maximum
/// likelihood otherwise.
fn app_objective(family: Family, target: &dyn Target) -> ObjectiveKind {
    match family {
        Family::Planar | Family::Radial if target.has_smooth_log_density() => {
            ObjectiveKind::ReverseKl
        }
        Family::Cnf => ObjectiveKind::FlowMatching,
        _ => ObjectiveKind::Mle,
    }
}

/// Starts training `scene.flow` on `target`, seeded by `scene.seed`.
pub fn start_session(
    scene: &Scene,
    target: Arc<dyn Target>,
) -> Result<Box<dyn TrainingSession>, TrainingError> {
    let failed = |e: &dyn std::fmt::Display| TrainingError::Failed(e.to_string());
    let family = Family::from_name(&scene.flow).map_err(|e| failed(&e))?;
    let flow = build_flow(&FlowConfig::new(family), 2, scene.seed).map_err(|e| failed(&e))?;
    let config = TrainConfig {
        batch: 256,
        objective: app_objective(family, target.as_ref()),
        seed: scene.seed,
        held_out: 256,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(flow, target, config).map_err(|e| failed(&e))?;
    let evaluator = FlowEvaluator::new(&trainer.flow, MODEL_SAMPLES).map_err(|e| failed(&e))?;
    let mut eps = vec![0.0; MODEL_SAMPLES * 2];
    Rng::seed_from_u64(scene.seed)
        .fork(0xE5)
        .fill_normal(&mut eps);
    let mut session = CpuSession {
        trainer,
        evaluator,
        eps,
        samples: Vec::with_capacity(MODEL_SAMPLES),
        progress: TrainingProgress::default(),
        notice: None,
    };
    session.refresh_samples()?;
    Ok(Box::new(session))
}
