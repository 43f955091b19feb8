//! The seam between the app and the trainer: what the UI needs from a training run.
//!
//! The app owns an `Option<Box<dyn TrainingSession>>` and drives it from its frame loop; it never
//! sees the engine, the flow or their buffers — only progress numbers and sample points.
//! [`start_session`] is the single place where a scene becomes a running trainer; until the
//! trainer (issue 4) is wired in, it reports [`TrainingError::NotBuilt`] and the app still shows
//! the target.

use std::sync::Arc;

use web_time::Duration;

use super::scene::Scene;
use crate::targets::Target;

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
}

/// Starts training `scene.flow` on `target`, seeded by `scene.seed`.
pub fn start_session(
    scene: &Scene,
    target: Arc<dyn Target>,
) -> Result<Box<dyn TrainingSession>, TrainingError> {
    // Why unused: the trainer lands with issue 4; the signature is the contract.
    let _ = (scene, target);
    Err(TrainingError::NotBuilt)
}
