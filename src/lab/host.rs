//! Where a trainer runs, behind one small trait: a Web Worker (`crate::web`), a native thread
//! (`crate::native`), or the UI thread itself ([`InlineLink`], the fallback when neither can
//! start). The UI sends [`ToTrainer`] commands and polls [`FromTrainer`] messages; it never
//! sees the engine.

use std::collections::VecDeque;

use web_time::{Duration, Instant};

use super::protocol::{FromTrainer, ToTrainer};
use super::session::TrainLoop;

/// How a trainer's message wakes the UI: a frame after this delay. Why not
/// `request_repaint()`: egui then draws two frames (one more for layouts to settle), and on a
/// software rasterizer every frame costs the trainer ~20 steps; a deadline draws one.
pub const WAKE_DELAY: Duration = Duration::from_millis(1);

/// Where training runs, as the test hook's `training_thread` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingThread {
    /// A dedicated Web Worker (the browser).
    Worker,
    /// A native thread.
    Thread,
    /// The UI thread, a time budget per frame (the fallback).
    Main,
}

impl TrainingThread {
    /// The hook's name for it.
    pub fn name(self) -> &'static str {
        match self {
            TrainingThread::Worker => "worker",
            TrainingThread::Thread => "thread",
            TrainingThread::Main => "main",
        }
    }
}

/// The UI's handle on one trainer.
pub trait TrainerLink {
    /// Sends a command (a link queues it until its trainer is ready).
    fn send(&mut self, command: ToTrainer);
    /// The next message from the trainer, if one arrived.
    fn poll(&mut self) -> Option<FromTrainer>;
    /// Called once per UI frame with the frame's training budget: only a trainer on the UI
    /// thread uses it.
    fn on_frame(&mut self, _budget: Duration) {}
    /// Where the trainer runs.
    fn thread(&self) -> TrainingThread;
    /// Whether the trainer needs the UI to keep running frames to make progress (true only
    /// for [`InlineLink`]); other trainers wake the UI when they have news.
    fn needs_frames(&self) -> bool {
        false
    }
}

/// Makes trainers: the platform's (worker, thread), or [`InlineLink`]s.
pub type SpawnTrainer = Box<dyn FnMut() -> Result<Box<dyn TrainerLink>, String>>;

/// Trains on the UI thread within a time budget per frame.
#[derive(Default)]
pub struct InlineLink {
    train: TrainLoop,
    inbox: VecDeque<FromTrainer>,
}

impl InlineLink {
    /// A trainer with no model yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn collect(&mut self) {
        if self.train.needs_gpu() {
            // Natively a device answers at once; on the page's own thread it cannot be
            // waited for, and the model trains on the CPU, saying why.
            self.train
                .set_gpu(crate::engine::gpu::GpuContext::headless().map_err(|e| e.to_string()));
        }
        self.inbox.extend(self.train.drain());
    }
}

impl TrainerLink for InlineLink {
    fn send(&mut self, command: ToTrainer) {
        self.train.handle(command);
        self.collect();
    }

    fn poll(&mut self) -> Option<FromTrainer> {
        self.inbox.pop_front()
    }

    fn on_frame(&mut self, budget: Duration) {
        let started = Instant::now();
        while self.train.is_training() {
            self.train.tick();
            if started.elapsed() >= budget || self.train.idle_ms() > 0.0 {
                break;
            }
        }
        self.collect();
    }

    fn thread(&self) -> TrainingThread {
        TrainingThread::Main
    }

    fn needs_frames(&self) -> bool {
        self.train.is_training()
    }
}
