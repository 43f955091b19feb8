//! The workspace: the spec, the target it names, and the runs training on it. It changes only
//! through [`Workspace::apply`] (one [`Command`] at a time, so every change has one place to
//! happen) and [`Workspace::tick`] (taking in what the trainers reported).

use std::sync::Arc;

use web_time::Duration;

use super::host::{InlineLink, SpawnTrainer, TrainerLink, TrainingThread};
use super::protocol::ToTrainer;
use super::run::{Run, RunId};
use super::spec::{LenientSpec, Spec, SpecError};
use super::views::{ViewKind, ViewRequest};
use crate::flows::Family;
use crate::rng::Rng;
use crate::targets::{Target, ViewRect};
use crate::viz::density::DensityGrid;

/// Target samples drawn in the plot.
pub const DISPLAY_SAMPLE_COUNT: usize = 1500;
/// Cells per side of the target's log-density heat map.
pub const HEAT_MAP_RESOLUTION: usize = 128;
/// Random stream (see [`Rng::fork`]) of the displayed target samples, so they stay the same
/// whatever else draws from the scene's seed.
const DISPLAY_SAMPLES_STREAM: u64 = 0xD15_B1A7;

/// A change the user (or the URL) asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Show and train on another built-in target.
    SelectTarget(String),
    /// Train another flow family (at its default size).
    SelectFlow(Family),
    /// Start (or resume) training.
    Play,
    /// Pause training.
    Pause,
    /// Take one training step (and pause).
    Step,
    /// Restart every run from step 0 with the current settings.
    Reset,
    /// Use another seed (restarts the runs).
    SetSeed(u64),
    /// Replace the whole spec, e.g. from an edited URL; `errors` are what could not be read.
    Load(LenientSpec),
    /// Change settings (the model panel): what changed decides what restarts — the target
    /// and seed reload the target, model settings rebuild the models, views and speed restart
    /// nothing.
    Edit(Box<Spec>),
    /// Take a point of the plane apart by the change of variables (`None`: stop).
    Probe(Option<[f32; 2]>),
    /// Move the layer view's depth scrubber (`0…K`; `None`: the last layer). `settled`: the
    /// user let go (the URL is rewritten only then, not on every frame of an animation).
    SetDepth {
        /// The new depth.
        depth: Option<f32>,
        /// Whether the move is over.
        settled: bool,
    },
}

/// Particles the layer view traces (the 10,000: dense enough to read a density).
pub const LAYER_PARTICLES: usize = 10_000;
/// Lines of the warped base grid per direction.
pub const GRID_LINES: usize = 13;
/// Cells per side of the learned density pictures.
pub const PICTURE_RESOLUTION: usize = 128;

/// What applying a command changed, for the app to act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Effects {
    /// The spec changed: rewrite the URL and the stored settings.
    pub spec_changed: bool,
}

/// The target the spec names, with what the plot draws of it.
pub struct TargetView {
    /// The density.
    pub target: Arc<dyn Target>,
    /// Samples for the plot.
    pub samples: Vec<[f32; 2]>,
    /// Its normalised log-density over its view, if it has a finite one there.
    pub heat_map: Option<DensityGrid>,
    /// Increases whenever the target (or its heat map) changes.
    pub version: u64,
}

/// The spec, its target and its runs.
pub struct Workspace {
    spec: Spec,
    target: Option<TargetView>,
    runs: Vec<Run>,
    playing: bool,
    next_run_id: u32,
    spawn: SpawnTrainer,
    spec_errors: Vec<SpecError>,
    target_error: Option<String>,
    objective_notice: Option<String>,
    trainer_fallback: Option<String>,
    target_version: u64,
    probe: Option<[f32; 2]>,
}

impl Workspace {
    /// A workspace showing `spec` (with the problems met reading it), training with trainers
    /// from `spawn`; when `spawn` fails, training falls back to the UI thread and
    /// [`Workspace::trainer_fallback`] says why.
    pub fn new(spec: LenientSpec, spawn: SpawnTrainer) -> Self {
        let mut workspace = Self {
            spec: Spec::default(),
            target: None,
            runs: Vec::new(),
            playing: false,
            next_run_id: 0,
            spawn,
            spec_errors: Vec::new(),
            target_error: None,
            objective_notice: None,
            trainer_fallback: None,
            target_version: 0,
            probe: None,
        };
        workspace.load(spec);
        workspace
    }

    /// A workspace whose trainers run on the UI thread (tests, and platforms with no threads).
    pub fn inline(spec: LenientSpec) -> Self {
        Self::new(
            spec,
            Box::new(|| Ok(Box::new(InlineLink::new()) as Box<dyn TrainerLink>)),
        )
    }

    /// Applies one command.
    pub fn apply(&mut self, command: Command) -> Effects {
        // Why: once the user changes the scene, problems of the URL it came from are stale.
        if !matches!(command, Command::Load(_)) {
            self.spec_errors.clear();
        }
        let spec_changed = match command {
            Command::SelectTarget(name) => {
                self.spec.target = name;
                self.reload_target();
                true
            }
            Command::SelectFlow(family) => {
                self.spec.flow = family;
                // A family's size and rate are its own: switching resets them to its defaults.
                self.spec.layers = None;
                self.spec.width = None;
                self.spec.lr = None;
                self.spec.objective = None;
                self.restart_runs();
                true
            }
            Command::Play => self.set_playing(true),
            Command::Pause => self.set_playing(false),
            Command::Step => {
                self.playing = false;
                for run in &mut self.runs {
                    run.send(ToTrainer::Step);
                }
                false
            }
            Command::Reset => {
                self.restart_runs();
                false
            }
            Command::SetSeed(seed) => {
                self.spec.seed = seed;
                self.reload_target();
                true
            }
            Command::Load(spec) => {
                self.load(spec);
                true
            }
            Command::Edit(spec) => {
                let changed = *spec != self.spec;
                self.adopt(*spec);
                changed
            }
            Command::Probe(point) => {
                self.probe = point.filter(|p| p.iter().all(|v| v.is_finite()));
                false
            }
            Command::SetDepth { depth, settled } => {
                self.spec.depth = depth;
                settled
            }
        };
        self.sync_trainers();
        Effects { spec_changed }
    }

    /// What the views need from the trainers, from the spec.
    pub fn view_request(&self) -> ViewRequest {
        let views = self.spec.views;
        let layers = views.contains(ViewKind::Layers);
        let density = views.contains(ViewKind::Density);
        let field = views.contains(ViewKind::Field) && self.spec.flow == Family::Cnf;
        ViewRequest {
            view: self.view(),
            particles: if layers || field { LAYER_PARTICLES } else { 0 },
            grid_lines: if layers { GRID_LINES } else { 0 },
            resolution: if layers || density {
                PICTURE_RESOLUTION
            } else {
                0
            },
            density,
            // Why the nearest whole layer: the heat maps exist per layer; the particles
            // interpolate in between. `usize::MAX`: the last layer, whatever K is.
            depth: (layers || field).then(|| {
                self.spec
                    .depth
                    .map_or(usize::MAX, |d| d.round().max(0.0) as usize)
            }),
            field,
            probe: self.probe,
        }
    }

    /// The point being probed, if any.
    pub fn probe(&self) -> Option<[f32; 2]> {
        self.probe
    }

    /// Sends the trainers what changed since they last heard: the views' request, the speed.
    fn sync_trainers(&mut self) {
        let request = self.view_request();
        let speed = self.spec.speed;
        for run in &mut self.runs {
            run.sync(&request, speed);
        }
    }

    /// Takes in what the trainers reported, giving trainers on the UI thread `budget` in
    /// all. Returns whether anything new is to be shown.
    pub fn tick(&mut self, budget: Duration) -> bool {
        let inline = self.runs.iter().filter(|run| run.needs_frames()).count();
        let share = budget / u32::try_from(inline.max(1)).unwrap_or(1);
        let mut changed = false;
        for run in &mut self.runs {
            changed |= run.poll(share);
        }
        changed
    }

    /// Whether the UI must keep running frames for training to progress (a trainer on the UI
    /// thread); other trainers wake the UI when they report.
    pub fn needs_frames(&self) -> bool {
        self.runs.iter().any(Run::needs_frames)
    }

    /// The spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Whether training is playing.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// The target and what the plot shows of it, once loaded.
    pub fn target(&self) -> Option<&TargetView> {
        self.target.as_ref()
    }

    /// The rectangle of the plane the plot shows.
    pub fn view(&self) -> ViewRect {
        self.target
            .as_ref()
            .map_or(ViewRect::square(4.0), |t| t.target.view())
    }

    /// The views shown: those the spec asks for that apply to its flow.
    pub fn shown_views(&self) -> impl Iterator<Item = ViewKind> + '_ {
        self.spec
            .views
            .iter()
            .filter(|&view| view != ViewKind::Field || self.spec.flow == Family::Cnf)
    }

    /// Layers `K` of the first model (the layer view's last depth): from its pictures, else
    /// its setting.
    pub fn layer_count(&self) -> usize {
        self.runs
            .first()
            .and_then(|run| run.pictures())
            .map_or_else(|| self.spec.flow_config().layers, |p| p.layers)
    }

    /// The layer view's depth, `0…K`.
    pub fn depth(&self) -> f32 {
        let last = self.layer_count() as f32;
        self.spec.depth.map_or(last, |d| d.clamp(0.0, last))
    }

    /// The runs (one today; several when comparing).
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Where the first run trains.
    pub fn training_thread(&self) -> TrainingThread {
        self.runs.first().map_or(TrainingThread::Main, Run::thread)
    }

    /// Why training runs on the UI thread although a worker or thread was asked for.
    pub fn trainer_fallback(&self) -> Option<&str> {
        self.trainer_fallback.as_deref()
    }

    /// Every problem to show, once each: the URL's, the target's, the objective's, and runs
    /// that failed. (Events such as rollbacks are not problems: see [`Run::events`].)
    pub fn problems(&self) -> Vec<String> {
        self.spec_errors
            .iter()
            .map(ToString::to_string)
            .chain(self.target_error.clone())
            .chain(self.objective_notice.clone())
            .chain(
                self.runs
                    .iter()
                    .filter_map(|run| run.failure().map(|e| format!("training failed: {e}"))),
            )
            .collect()
    }

    fn set_playing(&mut self, playing: bool) -> bool {
        self.playing = playing;
        for run in &mut self.runs {
            run.send(if playing {
                ToTrainer::Play
            } else {
                ToTrainer::Pause
            });
        }
        false
    }

    /// Shows `spec`: restarts only what it changes (an edited URL that only moves the depth
    /// or hides a view leaves training alone), and plays or pauses as it says.
    fn load(&mut self, LenientSpec { spec, errors }: LenientSpec) {
        // Shown in the status line (see `problems`), so not logged too.
        self.spec_errors = errors;
        let playing = spec.autoplay;
        if self.playing != playing && self.target.is_some() {
            self.set_playing(playing);
        }
        self.playing = playing;
        self.adopt(spec);
    }

    /// Replaces the spec, reloading the target if it or the seed changed, else restarting
    /// the runs if the model changed.
    fn adopt(&mut self, spec: Spec) {
        let old = std::mem::replace(&mut self.spec, spec);
        if self.target.is_none() || old.target != self.spec.target || old.seed != self.spec.seed {
            self.reload_target();
        } else if old.model_differs(&self.spec) {
            self.restart_runs();
        }
    }

    /// Loads the spec's target (samples + heat map), then restarts training on it. A target
    /// that fails to load keeps the previous one (or the default), and says why.
    fn reload_target(&mut self) {
        self.target_error = None;
        let target: Arc<dyn Target> = match crate::targets::by_name(&self.spec.target) {
            Ok(target) => Arc::from(target),
            Err(error) => {
                self.target_error = Some(error.to_string());
                match &self.target {
                    Some(previous) => {
                        self.spec.target = previous.target.name().to_owned();
                        previous.target.clone()
                    }
                    None => {
                        self.spec.target = crate::targets::DEFAULT_TARGET.to_owned();
                        match crate::targets::by_name(crate::targets::DEFAULT_TARGET) {
                            Ok(target) => Arc::from(target),
                            Err(_) => return,
                        }
                    }
                }
            }
        };
        let mut rng = Rng::seed_from_u64(self.spec.seed).fork(DISPLAY_SAMPLES_STREAM);
        let samples = target.sample(DISPLAY_SAMPLE_COUNT, &mut rng);
        let grid = DensityGrid::from_target(
            target.as_ref(),
            target.view(),
            HEAT_MAP_RESOLUTION,
            HEAT_MAP_RESOLUTION,
        );
        self.target_version += 1;
        self.target = Some(TargetView {
            target,
            samples,
            heat_map: grid.max_finite().is_some().then_some(grid),
            version: self.target_version,
        });
        self.restart_runs();
    }

    /// Starts every run again from step 0 on the current spec and target (creating the first
    /// run if there is none).
    fn restart_runs(&mut self) {
        let Some(target) = &self.target else {
            return;
        };
        let (_, notice) = self.spec.objective_for(target.target.as_ref());
        self.objective_notice = notice.map(|why| {
            format!(
                "objective: {why}; training with {} instead",
                crate::train::ObjectiveKind::default_for(self.spec.flow, target.target.as_ref())
                    .title()
            )
        });
        let run_spec = self.spec.run_spec(target.target.as_ref());
        if self.runs.is_empty() {
            let link = match (self.spawn)() {
                Ok(link) => link,
                Err(reason) => {
                    self.trainer_fallback = Some(format!(
                        "training on the UI thread: the background trainer could not start ({reason})"
                    ));
                    Box::new(InlineLink::new())
                }
            };
            let id = RunId(self.next_run_id);
            self.next_run_id += 1;
            self.runs.push(Run::new(id, run_spec, link, self.playing));
            self.sync_trainers();
        } else {
            for run in &mut self.runs {
                run.restart(run_spec.clone(), self.playing);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(fragment: &str) -> Workspace {
        Workspace::inline(Spec::from_fragment_lenient(fragment))
    }

    /// Ticks until the first run has reported a step ≥ `step` (or a second passed).
    fn train_until(workspace: &mut Workspace, step: u64) -> u64 {
        let started = web_time::Instant::now();
        loop {
            workspace.tick(Duration::from_millis(10));
            let now = workspace.runs()[0].latest().map_or(0, |r| r.step);
            if now >= step || started.elapsed() > Duration::from_secs(20) {
                return now;
            }
        }
    }

    #[test]
    fn a_new_workspace_loads_the_target_and_starts_one_run() {
        let mut workspace = workspace("");
        let target = workspace.target().unwrap();
        assert_eq!(target.target.name(), "moons");
        assert_eq!(target.samples.len(), DISPLAY_SAMPLE_COUNT);
        assert!(target.heat_map.is_some());
        assert!(workspace.is_playing());
        assert!(train_until(&mut workspace, 5) >= 5);
        assert_eq!(
            workspace.runs()[0].samples().len(),
            super::super::session::MODEL_SAMPLES
        );
        assert!(
            workspace.problems().is_empty(),
            "{:?}",
            workspace.problems()
        );
    }

    #[test]
    fn pause_stops_and_step_takes_exactly_one_step() {
        let mut workspace = workspace("autoplay=0");
        workspace.tick(Duration::from_millis(5));
        assert_eq!(workspace.runs()[0].latest().unwrap().step, 0);
        assert!(!workspace.apply(Command::Step).spec_changed);
        workspace.tick(Duration::from_millis(5));
        assert_eq!(workspace.runs()[0].latest().unwrap().step, 1);
        assert!(
            !workspace.needs_frames(),
            "a paused inline trainer needs no frames"
        );
    }

    #[test]
    fn changing_the_flow_restarts_from_step_zero_and_drops_late_reports() {
        let mut workspace = workspace("");
        train_until(&mut workspace, 3);
        // Paused, so that no step of the new model can have been taken when it reports.
        let _ = workspace.apply(Command::Pause);
        let effects = workspace.apply(Command::SelectFlow(Family::Maf));
        assert!(effects.spec_changed);
        workspace.tick(Duration::ZERO);
        let run = &workspace.runs()[0];
        assert_eq!(run.spec().flow.family, Family::Maf);
        let report = run.latest().unwrap();
        assert_eq!(report.step, 0, "the new model starts at 0");
    }

    #[test]
    fn the_trainer_draws_the_views_pictures_and_takes_a_probed_point_apart() {
        let mut workspace = workspace("autoplay=0&views=layers,density");
        let _ = workspace.apply(Command::Probe(Some([0.5, 0.25])));
        workspace.tick(Duration::ZERO);
        let pictures = workspace.runs()[0].pictures().expect("pictures");
        assert_eq!(pictures.layers, 8);
        assert_eq!(pictures.labels.len(), 8);
        assert_eq!(pictures.trace.len(), 9 * 2 * pictures.trace_stride());
        assert_eq!(pictures.particles, LAYER_PARTICLES);
        let cells = PICTURE_RESOLUTION * PICTURE_RESOLUTION;
        assert_eq!(
            (pictures.density.len(), pictures.depth_density.len()),
            (cells, cells)
        );
        assert_eq!(pictures.depth, Some(8));
        let probe = pictures.probe.as_ref().expect("the probe");
        assert_eq!(probe.point, [0.5, 0.25]);
        let sum = probe.base_log_prob - probe.layer_log_dets.iter().sum::<f32>();
        assert!((sum - probe.log_prob).abs() < 1e-4, "{probe:?}");
        // Hiding the views stops the pictures; showing the layers at depth 0 gives the base.
        let mut spec = workspace.spec().clone();
        spec.depth = Some(0.0);
        let _ = workspace.apply(Command::Edit(Box::new(spec)));
        let _ = workspace.apply(Command::Step);
        workspace.tick(Duration::ZERO);
        let pictures = workspace.runs()[0].pictures().unwrap();
        assert_eq!(pictures.depth, Some(0));
        assert!(pictures.log_det.is_empty(), "the base has no layer");
    }

    #[test]
    fn a_cnf_set_to_dormand_prince_is_scored_and_pictured_by_it() {
        let mut workspace =
            workspace("flow=cnf&solver=dopri&rtol=1e-4&atol=1e-4&autoplay=0&views=density,field");
        workspace.tick(Duration::ZERO);
        let run = &workspace.runs()[0];
        let nll = run.latest().and_then(|r| r.test_nll).expect("scored");
        assert!(nll.is_finite() && nll > 0.0, "{nll}");
        let pictures = run.pictures().expect("pictures");
        let cells = PICTURE_RESOLUTION * PICTURE_RESOLUTION;
        assert_eq!(pictures.density.len(), cells);
        assert!(pictures.density.iter().all(|v| v.is_finite()));
        // Dormand–Prince counts its own evaluations (RK4 would be 4 × 20 steps = 80).
        assert!(pictures.solver_evaluations.is_some_and(|n| n > 0));
        assert_eq!(pictures.field.len(), 2 * FIELD_ARROWS_SQUARED);
    }

    /// Arrows of the vector field picture.
    const FIELD_ARROWS_SQUARED: usize =
        crate::lab::views::FIELD_ARROWS * crate::lab::views::FIELD_ARROWS;

    #[test]
    fn a_bad_url_is_reported_and_the_good_keys_apply() {
        let workspace = workspace("target=nope&seed=4&bogus=1");
        assert_eq!(workspace.spec().seed, 4);
        assert_eq!(workspace.target().unwrap().target.name(), "moons");
        let problems = workspace.problems().join("; ");
        assert!(
            problems.contains("'nope'") && problems.contains("'bogus'"),
            "{problems}"
        );
    }

    #[test]
    fn the_user_changing_the_scene_clears_the_url_problems() {
        let mut workspace = workspace("bogus=1");
        assert!(!workspace.problems().is_empty());
        let _ = workspace.apply(Command::SelectTarget("8gaussians".into()));
        assert!(workspace.problems().is_empty());
        assert_eq!(workspace.target().unwrap().target.name(), "8gaussians");
    }

    #[test]
    fn an_objective_that_does_not_apply_is_explained() {
        let workspace = workspace("flow=realnvp&objective=reverse-kl&target=moons&autoplay=0");
        let problems = workspace.problems().join("; ");
        assert!(problems.contains("objective"), "{problems}");
        assert_eq!(
            workspace.runs()[0].spec().train.objective,
            crate::train::ObjectiveKind::Mle
        );
    }

    #[test]
    fn a_failing_spawner_falls_back_to_the_ui_thread_and_says_why() {
        let mut workspace = Workspace::new(
            Spec::from_fragment_lenient(""),
            Box::new(|| Err("no workers here".to_owned())),
        );
        assert_eq!(workspace.training_thread(), TrainingThread::Main);
        assert!(
            workspace
                .trainer_fallback()
                .unwrap()
                .contains("no workers here")
        );
        assert!(train_until(&mut workspace, 2) >= 2);
    }
}
