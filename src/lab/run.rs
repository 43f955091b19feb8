//! One model in the workspace, as the UI sees it: its spec, the link to its trainer, and what
//! the trainer last reported (progress, samples, loss history, events).

use web_time::Duration;

use super::host::{TrainerLink, TrainingThread};
use super::protocol::{FromTrainer, Report, RunError, RunSpec, ToTrainer, TrainingEvent};
use super::session::now_ms;
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

    /// Forgets the points after `step` (training lost since then, resumed from there).
    pub fn truncate_after(&mut self, step: u64) {
        self.points.retain(|p| p.step <= step);
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
    /// Whether the trainer was last told to train (so a silence means something).
    training: bool,
    /// The latest parameters the trainer sent, and their step: where a new trainer resumes
    /// if this one is lost.
    checkpoint: Option<(crate::flows::SavedModel, u64)>,
    next_checkpoint_ms: f64,
    /// When the trainer was last heard from, and the longest it has been silent while training.
    last_heard_ms: f64,
    longest_silence_ms: f64,
    /// Why the trainer is lost (it died, or stopped answering), until the workspace gives the
    /// run a new one.
    lost: Option<String>,
    restarts: u32,
    /// Seconds of training before the current trainer took over (it counts from 0).
    train_secs_before: f64,
}

/// How often a training run's parameters are copied to the UI as its checkpoint.
const CHECKPOINT_EVERY_MS: f64 = 10_000.0;
/// Largest model checkpointed. Why: a checkpoint travels as JSON (~12 bytes a parameter); at
/// 2 million parameters that is ~24 MB every 10 s, beyond which the copy costs more than the
/// steps it would save.
const MAX_CHECKPOINT_PARAMS: usize = 2_000_000;
/// A training trainer silent this long is taken for hung (or longer, if its messages have
/// come this far apart before: a huge model's step can take seconds). Why 15 s: a trainer
/// reports at least every 5 s while training (`ToTrainer::Pace` is capped there).
const SILENCE_MS: f64 = 15_000.0;
/// A run's trainer is replaced at most this many times; after that its failure stands.
const MAX_RESTARTS: u32 = 3;

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
            training: playing,
            checkpoint: None,
            next_checkpoint_ms: 0.0,
            last_heard_ms: now_ms(),
            longest_silence_ms: 0.0,
            lost: None,
            restarts: 0,
            train_secs_before: 0.0,
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
        self.checkpoint = None;
        self.train_secs_before = 0.0;
        self.next_checkpoint_ms = now_ms() + CHECKPOINT_EVERY_MS;
        self.training = playing;
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
        match command {
            ToTrainer::Play => {
                // Silence while paused means nothing: the watch starts again from now.
                self.training = true;
                self.last_heard_ms = now_ms();
            }
            ToTrainer::Pause | ToTrainer::Step => self.training = false,
            _ => {}
        }
        self.link.send(command);
    }

    /// Gives a trainer on the UI thread its frame's budget, then takes in every message that
    /// arrived, asks for a checkpoint when one is due, and watches for a lost trainer.
    /// Returns whether anything new was shown.
    pub fn poll(&mut self, budget: Duration) -> bool {
        self.link.on_frame(budget);
        let mut changed = false;
        let now = now_ms();
        while let Some(message) = self.link.poll() {
            if self.training {
                self.longest_silence_ms = self.longest_silence_ms.max(now - self.last_heard_ms);
            }
            self.last_heard_ms = now;
            changed |= self.receive(message);
        }
        if self.training && self.failure.is_none() && self.lost.is_none() {
            let fits = self
                .latest()
                .is_some_and(|r| r.n_params <= MAX_CHECKPOINT_PARAMS);
            if fits && now >= self.next_checkpoint_ms {
                self.next_checkpoint_ms = now + CHECKPOINT_EVERY_MS;
                self.link.send(ToTrainer::SendModel);
            }
            let limit = SILENCE_MS.max(3.0 * self.longest_silence_ms);
            let silent = now - self.last_heard_ms;
            if self.link.thread() != TrainingThread::Main && silent > limit {
                self.lose_trainer(format!(
                    "the trainer stopped answering ({:.0} s without a word)",
                    silent / 1e3
                ));
                changed = true;
            }
        }
        changed
    }

    /// Marks the trainer lost (see [`Run::lost_trainer`]), or, after [`MAX_RESTARTS`], failed.
    fn lose_trainer(&mut self, reason: String) {
        if self.restarts >= MAX_RESTARTS {
            self.failure = Some(RunError::new(
                super::protocol::Stage::Trainer,
                format!("{reason}, and {MAX_RESTARTS} new trainers were lost before it"),
            ));
        } else {
            self.lost = Some(reason);
        }
    }

    /// Times its trainer was lost and replaced.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Why the trainer is lost, if it is: the workspace then gives the run a new one
    /// ([`Run::replace_trainer`]).
    pub fn lost_trainer(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Hands the run a new trainer in place of a lost one: it resumes from the latest
    /// checkpoint (the model as it was, and its step; Adam's moments start afresh), or starts
    /// the model again if there was none, and the event is marked on the loss curve.
    pub fn replace_trainer(&mut self, link: Box<dyn TrainerLink>) {
        let reason = self
            .lost
            .take()
            .unwrap_or_else(|| "the trainer was replaced".to_owned());
        self.restarts += 1;
        let step = self.latest().map_or(0, |r| r.step);
        let mut spec = self.spec.clone();
        let from = self.checkpoint.as_ref().map(|(model, at)| {
            spec.init = Some(model.clone());
            spec.resume_step = *at;
            *at
        });
        let kept = from.unwrap_or(0);
        self.history.truncate_after(kept);
        self.train_secs_before = self.history.points().last().map_or(0.0, |p| p.train_secs);
        self.scores.retain(|s| s.step <= kept);
        self.events
            .push(TrainingEvent::Restarted { step, from, reason });
        self.link = link;
        self.generation += 1;
        // The new trainer has heard nothing: the views' request and the speed go again.
        self.sent_request = None;
        self.sent_speed = None;
        self.last_heard_ms = now_ms();
        self.longest_silence_ms = 0.0;
        self.next_checkpoint_ms = now_ms() + CHECKPOINT_EVERY_MS;
        self.link.send(ToTrainer::Start {
            generation: self.generation,
            spec: Box::new(spec),
            playing: self.training,
        });
    }

    fn receive(&mut self, message: FromTrainer) -> bool {
        match message {
            FromTrainer::Ready => false,
            FromTrainer::Report(mut report) if report.generation == self.generation => {
                report.train_secs += self.train_secs_before;
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
                self.checkpoint = Some(((*model).clone(), step));
                self.model = Some((*model, step));
                true
            }
            // A trainer that died (a crashed worker, a stopped thread) is replaced; a model
            // that cannot be built or evaluated fails, since a new trainer would fail the same.
            FromTrainer::Failed { generation, error }
                if generation == self.generation
                    && error.stage == super::protocol::Stage::Trainer
                    && self.link.thread() != TrainingThread::Main =>
            {
                self.lose_trainer(error.to_string());
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
        self.send(if workspace_playing && !paused {
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
    use crate::lab::InlineLink;
    use crate::lab::protocol::{Stage, TrainerFault};

    /// A trainer "off the UI thread" that can die: an [`InlineLink`] whose panics end it, as
    /// a panicking trainer thread or Web Worker ends, with the same message the thread link
    /// sends.
    #[derive(Default)]
    struct MortalLink {
        inner: InlineLink,
        generation: u64,
        dead: bool,
        obituary: bool,
    }

    impl TrainerLink for MortalLink {
        fn send(&mut self, command: ToTrainer) {
            if let ToTrainer::Start { generation, .. } = &command {
                self.generation = *generation;
            }
            if self.dead {
                return;
            }
            let inner = &mut self.inner;
            let survived =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.send(command)));
            if survived.is_err() {
                (self.dead, self.obituary) = (true, true);
            }
        }

        fn poll(&mut self) -> Option<FromTrainer> {
            if std::mem::take(&mut self.obituary) {
                return Some(FromTrainer::Failed {
                    generation: self.generation,
                    error: RunError::new(Stage::Trainer, "the trainer thread stopped"),
                });
            }
            if self.dead { None } else { self.inner.poll() }
        }

        fn on_frame(&mut self, budget: Duration) {
            if !self.dead {
                self.inner.on_frame(budget);
            }
        }

        fn thread(&self) -> TrainingThread {
            TrainingThread::Thread
        }

        fn needs_frames(&self) -> bool {
            true
        }
    }

    fn train_until(run: &mut Run, step: u64) {
        for _ in 0..10_000 {
            run.poll(Duration::from_millis(20));
            if run.latest().is_some_and(|r| r.step >= step) {
                return;
            }
        }
        panic!("the run did not reach step {step}");
    }

    #[test]
    fn a_run_whose_trainer_dies_resumes_from_its_checkpoint_on_a_new_one() {
        let spec = crate::lab::Spec::from_fragment("target=moons&flow=maf&width=16").unwrap();
        let target = spec.target.build().unwrap();
        let run_spec = spec.run_spec(&spec.model, target.as_ref());
        let mut run = Run::new(RunId(0), run_spec, Box::<MortalLink>::default(), true);
        train_until(&mut run, 40);
        run.request_model();
        train_until(&mut run, 80);
        let (_, checkpoint) = run
            .checkpoint
            .clone()
            .expect("the model arrived as a checkpoint");
        assert!(checkpoint >= 40);
        // The trainer dies.
        run.send(ToTrainer::Fault(TrainerFault::Crash));
        run.poll(Duration::from_millis(1));
        let lost = run.lost_trainer().expect("the death is noticed").to_owned();
        assert!(lost.contains("stopped"), "{lost}");
        assert!(
            run.failure().is_none(),
            "a lost trainer is replaced, not a failure"
        );
        run.replace_trainer(Box::<MortalLink>::default());
        assert!(run.lost_trainer().is_none());
        // It resumes where the checkpoint was, and the curve keeps what came before it.
        assert!(run.history().points().iter().all(|p| p.step <= checkpoint));
        train_until(&mut run, checkpoint + 20);
        let report = run.latest().unwrap();
        assert!(report.loss.is_some_and(f64::is_finite));
        assert!(matches!(
            run.events().last(),
            Some(TrainingEvent::Restarted { from: Some(from), .. }) if *from == checkpoint
        ));
        // A fourth loss in a row is a failure that stands.
        for _ in 0..MAX_RESTARTS {
            run.send(ToTrainer::Fault(TrainerFault::Crash));
            run.poll(Duration::from_millis(1));
            if run.lost_trainer().is_some() {
                run.replace_trainer(Box::<MortalLink>::default());
            }
        }
        assert!(run.failure().is_some(), "{:?}", run.lost_trainer());
    }

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
