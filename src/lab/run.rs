//! One model in the workspace, as the UI sees it: its spec, the link to its trainer, and what
//! the trainer last reported (progress, samples, loss history, events).

use web_time::Duration;

use super::host::{TrainerLink, TrainingThread};
use super::protocol::{FromTrainer, Report, RunError, RunSpec, ToTrainer, TrainingEvent};
use super::views::{Pictures, ViewRequest};

/// Identifies a run in the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunId(pub u32);

/// A point of the loss curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPoint {
    /// Step at the end of the interval the loss was averaged over.
    pub step: u64,
    /// Mean training loss over the interval.
    pub loss: f64,
    /// Seconds of training so far.
    pub train_secs: f64,
}

/// A held-out score of the model, for the loss curves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScorePoint {
    /// Step scored at.
    pub step: u64,
    /// Seconds of training so far.
    pub train_secs: f64,
    /// Held-out NLL, nats.
    pub nll: f64,
    /// `KL(p*‖q)` where the target's normaliser is known.
    pub kl: Option<f64>,
}

/// The loss curve, kept to at most [`LossHistory::CAPACITY`] points: when full, neighbours
/// merge pairwise (an hour of training still draws as one curve and costs 64 kB).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossHistory {
    points: Vec<LossPoint>,
}

impl LossHistory {
    /// Most points kept.
    pub const CAPACITY: usize = 4096;

    /// Appends a point, halving the resolution of the whole curve when it is full.
    pub fn push(&mut self, point: LossPoint) {
        if self.points.len() == Self::CAPACITY {
            let merged: Vec<LossPoint> = self
                .points
                .chunks(2)
                .map(|pair| {
                    let last = pair[pair.len() - 1];
                    let mean = pair.iter().map(|p| p.loss).sum::<f64>() / pair.len() as f64;
                    LossPoint { loss: mean, ..last }
                })
                .collect();
            self.points = merged;
        }
        self.points.push(point);
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[LossPoint] {
        &self.points
    }
}

/// One model: what it is, where it trains, and what it last reported.
pub struct Run {
    id: RunId,
    spec: RunSpec,
    link: Box<dyn TrainerLink>,
    generation: u64,
    latest: Option<Report>,
    samples: Vec<[f32; 2]>,
    origins: Vec<[f32; 2]>,
    pictures: Option<Pictures>,
    pictures_version: u64,
    history: LossHistory,
    scores: Vec<ScorePoint>,
    events: Vec<TrainingEvent>,
    failure: Option<RunError>,
    sent_request: Option<ViewRequest>,
    sent_speed: Option<Option<f64>>,
    paused: bool,
    model: Option<(crate::flows::SavedModel, u64)>,
}

/// Most held-out scores kept (one every second or two: over an hour of training).
const SCORES_CAPACITY: usize = 4096;

impl Run {
    /// A run of `spec` on `link`, started at step 0.
    pub fn new(id: RunId, spec: RunSpec, link: Box<dyn TrainerLink>, playing: bool) -> Self {
        let mut run = Self {
            id,
            spec: spec.clone(),
            link,
            generation: 0,
            latest: None,
            samples: Vec::new(),
            origins: Vec::new(),
            pictures: None,
            pictures_version: 0,
            history: LossHistory::default(),
            scores: Vec::new(),
            events: Vec::new(),
            failure: None,
            sent_request: None,
            sent_speed: None,
            paused: false,
            model: None,
        };
        run.restart(spec, playing);
        run
    }

    /// Rebuilds the model from `spec` in its trainer and starts again from step 0. What the
    /// old model reported stays on screen until the new one reports.
    pub fn restart(&mut self, spec: RunSpec, playing: bool) {
        self.generation += 1;
        self.spec = spec.clone();
        self.history = LossHistory::default();
        self.scores.clear();
        self.events.clear();
        self.failure = None;
        self.model = None;
        self.origins.clear();
        self.link.send(ToTrainer::Start {
            generation: self.generation,
            spec: Box::new(spec),
            playing,
        });
    }

    /// Tells the trainer what the views show and the speed cap, where they changed since it
    /// last heard.
    pub fn sync(&mut self, request: &ViewRequest, speed: Option<f64>) {
        if self.sent_request.as_ref() != Some(request) {
            self.sent_request = Some(request.clone());
            self.link.send(ToTrainer::Views(request.clone()));
        }
        if self.sent_speed != Some(speed) {
            self.sent_speed = Some(speed);
            self.link.send(ToTrainer::Speed {
                steps_per_sec: speed,
            });
        }
    }

    /// Sends a command to the trainer.
    pub fn send(&mut self, command: ToTrainer) {
        self.link.send(command);
    }

    /// Gives a trainer on the UI thread its frame's budget, then takes in every message that
    /// arrived. Returns whether anything new was shown.
    pub fn poll(&mut self, budget: Duration) -> bool {
        self.link.on_frame(budget);
        let mut changed = false;
        while let Some(message) = self.link.poll() {
            changed |= self.receive(message);
        }
        changed
    }

    fn receive(&mut self, message: FromTrainer) -> bool {
        match message {
            FromTrainer::Ready => false,
            FromTrainer::Report(report) if report.generation == self.generation => {
                if let Some(loss) = report.loss {
                    self.history.push(LossPoint {
                        step: report.step,
                        loss,
                        train_secs: report.train_secs,
                    });
                }
                if let Some(nll) = report.test_nll
                    && self
                        .scores
                        .last()
                        .is_none_or(|s| s.step != report.scored_at_step)
                {
                    if self.scores.len() == SCORES_CAPACITY {
                        // Every other point: the curve keeps its shape, at half the detail.
                        self.scores = self.scores.iter().copied().step_by(2).collect();
                    }
                    self.scores.push(ScorePoint {
                        step: report.scored_at_step,
                        train_secs: report.train_secs,
                        nll,
                        kl: report.kl,
                    });
                }
                self.events.extend(report.events.iter().cloned());
                let pairs = |flat: &[f32]| flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
                if !report.samples.is_empty() {
                    self.samples = pairs(&report.samples);
                }
                if !report.origins.is_empty() {
                    self.origins = pairs(&report.origins);
                }
                let mut report = report;
                if let Some(pictures) = report.pictures.take() {
                    self.pictures = Some(*pictures);
                    self.pictures_version += 1;
                }
                self.latest = Some(Report {
                    samples: Vec::new(),
                    origins: Vec::new(),
                    events: Vec::new(),
                    ..*report
                });
                true
            }
            FromTrainer::Model {
                generation,
                model,
                step,
            } if generation == self.generation => {
                self.model = Some((*model, step));
                true
            }
            FromTrainer::Failed { generation, error } if generation == self.generation => {
                self.failure = Some(error);
                true
            }
            // A late message about a model this run has replaced.
            FromTrainer::Report(_) | FromTrainer::Failed { .. } | FromTrainer::Model { .. } => {
                false
            }
        }
    }

    /// Asks the trainer for the current model's parameters (they arrive in [`Run::model`]).
    pub fn request_model(&mut self) {
        self.model = None;
        self.link.send(ToTrainer::SendModel);
    }

    /// The model the trainer last sent (architecture, parameters, and the step), if any.
    pub fn model(&self) -> Option<(&crate::flows::SavedModel, u64)> {
        self.model.as_ref().map(|(m, step)| (m, *step))
    }

    /// Whether this run is held while the others train.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Holds or releases this run; it trains when the workspace plays and it is not held.
    pub fn set_paused(&mut self, paused: bool, workspace_playing: bool) {
        self.paused = paused;
        self.link.send(if workspace_playing && !paused {
            ToTrainer::Play
        } else {
            ToTrainer::Pause
        });
    }

    /// Its id.
    pub fn id(&self) -> RunId {
        self.id
    }

    /// What it trains.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The latest report about the current model (its `samples` moved to [`Run::samples`]).
    pub fn latest(&self) -> Option<&Report> {
        self.latest
            .as_ref()
            .filter(|report| report.generation == self.generation)
    }

    /// The flow's latest samples (the previous model's until the new one reports).
    pub fn samples(&self) -> &[[f32; 2]] {
        &self.samples
    }

    /// Where each of [`Run::samples`] started (its standard-normal draw); empty until known.
    pub fn origins(&self) -> &[[f32; 2]] {
        &self.origins
    }

    /// The views' latest pictures (the previous model's until the new one's arrive).
    pub fn pictures(&self) -> Option<&Pictures> {
        self.pictures.as_ref()
    }

    /// Increases with every new [`Run::pictures`] (keys the textures made from them).
    pub fn pictures_version(&self) -> u64 {
        self.pictures_version
    }

    /// Held-out scores of the current model, oldest first.
    pub fn scores(&self) -> &[ScorePoint] {
        &self.scores
    }

    /// The loss curve of the current model.
    pub fn history(&self) -> &LossHistory {
        &self.history
    }

    /// Everything that happened to the current model, oldest first.
    pub fn events(&self) -> &[TrainingEvent] {
        &self.events
    }

    /// Why the current model stopped, if it failed.
    pub fn failure(&self) -> Option<&RunError> {
        self.failure.as_ref()
    }

    /// Where it trains.
    pub fn thread(&self) -> TrainingThread {
        self.link.thread()
    }

    /// Whether the UI must keep running frames for it to progress.
    pub fn needs_frames(&self) -> bool {
        self.link.needs_frames()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_history_halves_its_resolution_and_keeps_the_latest_point() {
        let mut history = LossHistory::default();
        for step in 0..(LossHistory::CAPACITY as u64 + 10) {
            history.push(LossPoint {
                step,
                loss: step as f64,
                train_secs: 0.0,
            });
        }
        let points = history.points();
        assert!(points.len() <= LossHistory::CAPACITY);
        assert_eq!(
            points.last().unwrap().step,
            LossHistory::CAPACITY as u64 + 9
        );
        assert!(points.windows(2).all(|w| w[0].step < w[1].step));
        // A merged point is the mean of its pair, stamped with the later step.
        assert_eq!((points[0].step, points[0].loss), (1, 0.5));
    }
}
