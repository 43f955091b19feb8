//! The workspace: the spec, the target it names, and the runs training on it. It changes only
//! through [`Workspace::apply`] (one [`Command`] at a time, so every change has one place to
//! happen) and [`Workspace::tick`] (taking in what the trainers reported).

use std::sync::Arc;

use web_time::Duration;

use super::host::{InlineLink, SpawnTrainer, TrainerLink, TrainingThread};
use super::messages::Localized;
use super::protocol::ToTrainer;
use super::run::{Run, RunId};
use super::spec::{LenientSpec, MAX_MODELS, ModelSettings, Spec, SpecError};
use super::views::{ViewKind, ViewRequest};
use crate::flows::Family;
use crate::flows::SavedModel;
use crate::rng::Rng;
use crate::targets::{Target, TargetSource, ViewRect};
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
    /// Show and train on an edited target (a finished stroke, a moved component, an opened
    /// file). One that describes no density is refused with a message, keeping the current.
    SetTarget(Box<TargetSource>),
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
    Load(Box<LenientSpec>),
    /// Change settings (the model panel): what changed decides what restarts — the target
    /// and seed reload the target, model settings rebuild the models, views and speed restart
    /// nothing.
    Edit(Box<Spec>),
    /// Pin a point of the plane, to take it apart by the change of variables (`None`: unpin
    /// every point). At most [`MAX_PINNED`] stay pinned; the oldest goes first.
    Probe(Option<[f32; 2]>),
    /// Train one more model beside the others (at most [`MAX_MODELS`]).
    AddModel(Box<ModelSettings>),
    /// Stop and remove model `index` (`0` is the first; the last model left stays).
    RemoveModel(usize),
    /// Hold (or release) model `index` while the others train.
    PauseModel {
        /// Which model.
        index: usize,
        /// Hold it.
        paused: bool,
    },
    /// Restart model `index` from step 0.
    ResetModel(usize),
    /// Train the first model from an imported `model.json` (its architecture and parameters).
    ImportModel(Box<SavedModel>),
    /// Something the user gave could not be used (a bad file): shown until the next change.
    Problem(String),
    /// Something worth telling that is not a problem (where an export was saved).
    Inform(String),
    /// Prepare a file for the user (see [`Workspace::take_export`]).
    Export(super::export::Export),
    /// Speak another language (a scene setting: it restarts nothing).
    SetLanguage(crate::i18n::Lang),
    /// Move the layer view's depth scrubber (`0…K`; `None`: the last layer). `settled`: the
    /// user let go (the URL is rewritten only then, not on every frame of an animation).
    SetDepth {
        /// The new depth.
        depth: Option<f32>,
        /// Whether the move is over.
        settled: bool,
    },
}

/// The held-out NLL the exported table times each model to.
const TABLE_NLL_GOAL: f64 = 1.80;

/// Most points pinned at once.
pub const MAX_PINNED: usize = 4;

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
    /// The target as data (what the URL holds).
    pub source: TargetSource,
    /// [`TargetSource::fingerprint`] of `source`.
    pub fingerprint: String,
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
    target_error: Option<crate::targets::TargetError>,
    objective_notice: Option<String>,
    /// Per model: how it was cut down to fit the memory budget (`lab::budget`), if it was.
    budget_notices: Vec<Option<String>>,
    trainer_fallback: Option<String>,
    target_version: u64,
    pinned: Vec<[f32; 2]>,
    /// Parameters the first model starts from (an imported `model.json`), until its
    /// settings change.
    imported: Option<SavedModel>,
    /// A file or edit that could not be used, until the next change.
    input_problem: Option<String>,
    /// A message that is not a problem, until the next change.
    info: Option<String>,
    /// The Chinese glyphs could not be loaded (the app stays in English).
    font_problem: bool,
    /// An export asked for and not yet handed out.
    export: Option<super::export::Export>,
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
            budget_notices: Vec::new(),
            trainer_fallback: None,
            target_version: 0,
            pinned: Vec::new(),
            imported: None,
            input_problem: None,
            font_problem: false,
            info: None,
            export: None,
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
        if !matches!(command, Command::Load(_) | Command::Inform(_)) {
            self.spec_errors.clear();
            self.input_problem = None;
            self.info = None;
        }
        let spec_changed = match command {
            Command::SelectTarget(name) => {
                self.spec.target = TargetSource::Builtin(name);
                self.reload_target();
                true
            }
            Command::SetTarget(source) => {
                let previous = std::mem::replace(&mut self.spec.target, source.canonical());
                self.reload_target();
                previous != self.spec.target
            }
            Command::SelectFlow(family) => {
                // A family's size and rate are its own: switching resets them to its defaults.
                let mut spec = self.spec.clone();
                spec.model = ModelSettings {
                    batch: spec.model.batch,
                    ..ModelSettings::of(family)
                };
                self.adopt(spec);
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
                self.load(*spec);
                true
            }
            Command::Edit(spec) => {
                let changed = *spec != self.spec;
                self.adopt(*spec);
                changed
            }
            Command::Probe(point) => {
                match point.filter(|p| p.iter().all(|v| v.is_finite())) {
                    Some(point) => {
                        if self.pinned.len() == MAX_PINNED {
                            self.pinned.remove(0);
                        }
                        self.pinned.push(point);
                    }
                    None => self.pinned.clear(),
                }
                false
            }
            Command::SetLanguage(lang) => {
                let changed = self.spec.lang != Some(lang);
                self.spec.lang = Some(lang);
                changed
            }
            Command::SetDepth { depth, settled } => {
                self.spec.depth = depth;
                settled
            }
            Command::AddModel(model) => {
                if self.spec.compare.len() + 1 >= MAX_MODELS {
                    self.input_problem = Some(crate::tr!("lab.too_many_models", max = MAX_MODELS));
                    false
                } else {
                    let mut spec = self.spec.clone();
                    spec.compare.push(*model);
                    self.adopt(spec);
                    true
                }
            }
            Command::RemoveModel(index) => {
                let mut spec = self.spec.clone();
                if index == 0 && !spec.compare.is_empty() {
                    spec.model = spec.compare.remove(0);
                    self.imported = None;
                    // The second run becomes the first: keep it training where it is.
                    self.runs.remove(0);
                } else if index >= 1 && index <= spec.compare.len() {
                    spec.compare.remove(index - 1);
                    self.runs.remove(index);
                } else {
                    return Effects::default();
                }
                self.spec = spec;
                true
            }
            Command::PauseModel { index, paused } => {
                let playing = self.playing;
                if let Some(run) = self.runs.get_mut(index) {
                    run.set_paused(paused, playing);
                }
                false
            }
            Command::ResetModel(index) => {
                self.restart_run(index);
                false
            }
            Command::ImportModel(saved) => {
                let mut spec = self.spec.clone();
                spec.model = settings_of(&saved, spec.model.batch);
                self.imported = Some(*saved);
                let old = std::mem::replace(&mut self.spec, spec);
                self.reconcile(&old, true);
                true
            }
            Command::Problem(message) => {
                self.input_problem = Some(message);
                false
            }
            Command::Inform(message) => {
                self.info = Some(message);
                false
            }
            Command::Export(export) => {
                if export.needs_model()
                    && let Some(run) = self.runs.first_mut()
                {
                    run.request_model();
                }
                self.export = Some(export);
                false
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
        let field = views.contains(ViewKind::Field) && self.spec.model.flow == Family::Cnf;
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
            probes: self.probes(),
            lang: crate::i18n::current(),
        }
    }

    /// What a compared model's trainer computes: the learned density (for the small
    /// multiples) and the probed points, nothing of the layer view.
    fn compared_request(&self) -> ViewRequest {
        ViewRequest {
            view: self.view(),
            resolution: PICTURE_RESOLUTION,
            density: self.spec.views.contains(ViewKind::Compare),
            probes: self.probes(),
            lang: crate::i18n::current(),
            ..ViewRequest::default()
        }
    }

    /// A message that is not a problem (where an export went), if any.
    pub fn info(&self) -> Option<&str> {
        self.info.as_deref()
    }

    /// The file of the export asked for, once it can be made (a model's export waits for its
    /// trainer to send the parameters); `Err` says why it could not be made.
    pub fn take_export(&mut self) -> Option<Result<super::export::ExportFile, String>> {
        use super::export::{self, Export};
        let kind = self.export?;
        let run = self.runs.first()?;
        let file = match kind {
            Export::ModelJson | Export::PyTorch => {
                let (model, _) = run.model()?;
                if kind == Export::ModelJson {
                    export::model_json(model)
                } else {
                    export::pytorch(model)
                }
            }
            Export::Samples => Ok(export::samples_csv(run.samples())),
            Export::Table => Ok(export::table_csv(&self.runs, TABLE_NLL_GOAL)),
            Export::Picture => {
                let learned = run
                    .pictures()
                    .filter(|p| !p.density.is_empty())
                    .map(|p| (p.density.as_slice(), p.resolution));
                let fallback = self.target.as_ref().and_then(|t| t.heat_map.as_ref());
                export::picture_png(self.view(), learned, fallback, run.samples())
            }
        };
        self.export = None;
        Some(file)
    }

    /// The points probed (pinned), oldest first.
    pub fn probes(&self) -> Vec<[f32; 2]> {
        self.pinned.clone()
    }

    /// The latest pinned point, if any.
    pub fn probe(&self) -> Option<[f32; 2]> {
        self.pinned.last().copied()
    }

    /// The UI thread now speaks another language: the trainers redraw what they label (the
    /// layers' names) in it, and the notices are said again in it.
    pub fn language_changed(&mut self) {
        self.sync_trainers();
        // The objective's and the budget's notices are said when a run starts: say them again.
        for index in 0..self.runs.len() {
            let _ = self.run_spec(index);
        }
    }

    /// Sends the trainers what changed since they last heard: the views' request, the speed.
    fn sync_trainers(&mut self) {
        let first = self.view_request();
        let compared = self.compared_request();
        let speed = self.spec.speed;
        for (index, run) in self.runs.iter_mut().enumerate() {
            run.sync(if index == 0 { &first } else { &compared }, speed);
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
        self.replace_lost_trainers();
        changed
    }

    /// Gives every run whose trainer died or hung a new one (on the UI thread if no other
    /// can start), resuming from its checkpoint.
    fn replace_lost_trainers(&mut self) {
        let lost: Vec<usize> = (0..self.runs.len())
            .filter(|&i| self.runs[i].lost_trainer().is_some())
            .collect();
        if lost.is_empty() {
            return;
        }
        for index in lost {
            let link = self.spawn_link();
            self.runs[index].replace_trainer(link);
        }
        self.sync_trainers();
    }

    /// Whether a trainer off the UI thread is expected to report: the app then wakes now and
    /// then even without news, so a trainer that stopped answering is noticed.
    pub fn awaits_reports(&self) -> bool {
        self.playing && self.runs.iter().any(|run| !run.is_paused())
    }

    /// Has the trainer of run `index` simulate `fault` (the test hook's `inject_fault`).
    pub fn inject_fault(&mut self, index: usize, fault: super::protocol::TrainerFault) {
        if let Some(run) = self.runs.get_mut(index) {
            run.send(ToTrainer::Fault(fault));
        }
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

    /// The views shown: those the spec asks for that apply (the vector field to a CNF, the
    /// comparison to several models).
    pub fn shown_views(&self) -> impl Iterator<Item = ViewKind> + '_ {
        self.spec.views.iter().filter(|&view| match view {
            ViewKind::Field => self.spec.model.flow == Family::Cnf,
            ViewKind::Compare => !self.spec.compare.is_empty(),
            _ => true,
        })
    }

    /// Layers `K` of the first model (the layer view's last depth): from its pictures, else
    /// its setting.
    pub fn layer_count(&self) -> usize {
        self.runs
            .first()
            .and_then(|run| run.pictures())
            .map_or_else(|| self.spec.model.flow_config().layers, |p| p.layers)
    }

    /// The layer view's depth, `0…K`.
    pub fn depth(&self) -> f32 {
        let last = self.layer_count() as f32;
        self.spec.depth.map_or(last, |d| d.clamp(0.0, last))
    }

    /// The runs, one per model of the spec, in its order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Says that the Chinese glyphs could not be loaded (the app stays in English).
    pub fn set_font_problem(&mut self) {
        self.font_problem = true;
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
            .map(Localized::localized)
            .chain(
                self.target_error
                    .as_ref()
                    .map(|e| crate::tr!("lab.target_kept", error = e.localized())),
            )
            .chain(self.input_problem.clone())
            .chain(
                self.font_problem
                    .then(|| crate::tr!("lab.font_failed").to_owned()),
            )
            .chain(self.objective_notice.clone())
            .chain(
                self.budget_notices
                    .iter()
                    .take(1 + self.spec.compare.len())
                    .flatten()
                    .cloned(),
            )
            .chain(
                self.runs
                    .iter()
                    .filter_map(|run| run.failure())
                    .map(|e| crate::tr!("lab.training_failed", error = e.localized())),
            )
            .collect()
    }

    fn set_playing(&mut self, playing: bool) -> bool {
        self.playing = playing;
        for run in &mut self.runs {
            let paused = run.is_paused();
            run.set_paused(paused, playing);
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
    /// the runs whose model changed (and starting or stopping runs for added or removed ones).
    fn adopt(&mut self, mut spec: Spec) {
        spec.compare.truncate(MAX_MODELS - 1);
        let old = std::mem::replace(&mut self.spec, spec);
        if self.target.is_none() || old.target != self.spec.target || old.seed != self.spec.seed {
            self.reload_target();
        } else {
            self.reconcile(&old, false);
        }
    }

    /// Makes the runs match the spec's models: restarts those whose model differs from `old`'s
    /// (the first one also when `restart_first`), starts new ones, stops removed ones.
    fn reconcile(&mut self, old: &Spec, restart_first: bool) {
        if self.spec.model.differs(&old.model) && !restart_first {
            self.imported = None;
        }
        let old_models: Vec<&ModelSettings> = old.models().collect();
        let count = 1 + self.spec.compare.len();
        // Another executor retrains every model (the comparison stays like for like).
        let backend_changed = old.backend != self.spec.backend;
        self.runs.truncate(count);
        for index in 0..count {
            let changed = old_models
                .get(index)
                .is_none_or(|m| m.differs(self.model(index)));
            if index >= self.runs.len() {
                self.start_run(index);
            } else if changed || backend_changed || (index == 0 && restart_first) {
                self.restart_run(index);
            }
        }
    }

    fn model(&self, index: usize) -> &ModelSettings {
        match index {
            0 => &self.spec.model,
            i => &self.spec.compare[i - 1],
        }
    }

    /// Loads the spec's target (samples + heat map), then restarts training on it. A target
    /// that fails to load keeps the previous one (or the default), and says why.
    fn reload_target(&mut self) {
        self.target_error = None;
        let target: Arc<dyn Target> = match self.spec.target.build() {
            Ok(target) => target,
            Err(error) => {
                self.target_error = Some(error);
                match &self.target {
                    Some(previous) => {
                        self.spec.target = previous.source.clone();
                        previous.target.clone()
                    }
                    None => {
                        self.spec.target = TargetSource::default();
                        match self.spec.target.build() {
                            Ok(target) => target,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
        if self
            .target
            .as_ref()
            .is_some_and(|t| t.source == self.spec.target && Arc::ptr_eq(&t.target, &target))
        {
            return;
        }
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
            fingerprint: self.spec.target.fingerprint(),
            source: self.spec.target.clone(),
            target,
            samples,
            heat_map: grid.max_finite().is_some().then_some(grid),
            version: self.target_version,
        });
        self.restart_runs();
    }

    /// Starts every run again from step 0 on the current spec and target (creating the runs
    /// that do not exist yet).
    fn restart_runs(&mut self) {
        let count = 1 + self.spec.compare.len();
        self.runs.truncate(count);
        for index in 0..count {
            if index < self.runs.len() {
                self.restart_run(index);
            } else {
                self.start_run(index);
            }
        }
    }

    /// The trainer's spec for model `index` on the current target.
    fn run_spec(&mut self, index: usize) -> Option<super::protocol::RunSpec> {
        let target = self.target.as_ref()?.target.clone();
        let model = self.model(index).clone();
        let mut run_spec = self.spec.run_spec(&model, target.as_ref());
        if index == 0 {
            let (_, notice) = model.objective_for(target.as_ref());
            self.objective_notice = notice.map(|why| {
                let instead = crate::train::ObjectiveKind::default_for(model.flow, target.as_ref());
                crate::tr!(
                    "lab.objective_instead",
                    why = why.localized(),
                    objective = super::names::objective(instead)
                )
            });
            if let Some(saved) = &self.imported {
                run_spec.flow = saved.config.clone();
                run_spec.init = Some(saved.clone());
            }
        }
        let fitted = super::budget::fit(
            &run_spec.flow,
            run_spec.train.batch,
            run_spec.train.objective,
        );
        // An imported model keeps its architecture: only its batch may shrink, and only where
        // the budget did not have to narrow it (then its parameters, already loaded, stand).
        let applies = run_spec.init.is_none() || fitted.flow == run_spec.flow;
        if self.budget_notices.len() <= index {
            self.budget_notices.resize(index + 1, None);
        }
        self.budget_notices[index] = fitted
            .notice
            .filter(|_| applies)
            .map(|why| crate::tr!("lab.model_notice", index = index + 1, notice = why));
        if applies {
            run_spec.flow = fitted.flow;
            run_spec.train.batch = fitted.batch;
        }
        Some(run_spec)
    }

    fn restart_run(&mut self, index: usize) {
        let playing = self.playing && !self.runs.get(index).is_some_and(Run::is_paused);
        if let Some(run_spec) = self.run_spec(index)
            && let Some(run) = self.runs.get_mut(index)
        {
            run.restart(run_spec, playing);
        }
    }

    /// A new trainer off the UI thread, or, when none can start, one on it (and why).
    fn spawn_link(&mut self) -> Box<dyn TrainerLink> {
        match (self.spawn)() {
            Ok(link) => link,
            Err(reason) => {
                self.trainer_fallback = Some(crate::tr!("lab.trainer_fallback", reason = reason));
                Box::new(InlineLink::new())
            }
        }
    }

    /// Starts a trainer for model `index` (which must be the next one).
    fn start_run(&mut self, index: usize) {
        let Some(run_spec) = self.run_spec(index) else {
            return;
        };
        let link = self.spawn_link();
        let id = RunId(self.next_run_id);
        self.next_run_id += 1;
        self.runs.push(Run::new(id, run_spec, link, self.playing));
        self.sync_trainers();
    }
}

/// The settings that describe a saved model's architecture (`batch` kept from the scene).
fn settings_of(saved: &SavedModel, batch: usize) -> ModelSettings {
    let config = &saved.config;
    let info = config.family.info();
    ModelSettings {
        flow: config.family,
        layers: (config.layers != info.default_layers).then_some(config.layers),
        width: (config.hidden != info.default_hidden).then_some(config.hidden),
        lr: None,
        batch,
        objective: None,
        activation: (config.activation != info.default_activation).then_some(config.activation),
        learnable_base: config.learnable_base,
        cnf: config.cnf.clone(),
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

    /// Every problem is said in the language spoken when it is read: the URL's and the
    /// target's at once, the objective's once the workspace hears of the change.
    #[test]
    fn problems_follow_the_language() {
        let mut workspace = workspace("target=nope&flow=maf&objective=flow-matching&bogus=1");
        let english = workspace.problems();
        assert_eq!(english.len(), 3, "{english:?}");
        let all = english.join("; ");
        for part in [
            "unknown key 'bogus'",
            "Unknown target",
            "flow matching trains",
        ] {
            assert!(all.contains(part), "{all}");
        }
        crate::i18n::set(crate::i18n::Lang::Zh);
        workspace.language_changed();
        let chinese = workspace.problems().join("; ");
        crate::i18n::set(crate::i18n::Lang::En);
        for problem in &english {
            assert!(
                !chinese.contains(problem.as_str()),
                "still in English: {problem}"
            );
        }
        assert!(
            chinese.contains("bogus") && chinese.contains("nope"),
            "{chinese}"
        );
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
        let probe = pictures.probes.first().expect("the probe");
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

    #[test]
    fn a_compare_link_trains_every_model_on_the_same_data_and_seed() {
        let mut workspace = workspace("compare=maf,nsf(layers=3)&autoplay=0&seed=4");
        workspace.tick(Duration::ZERO);
        let runs = workspace.runs();
        let families: Vec<Family> = runs.iter().map(|r| r.spec().flow.family).collect();
        assert_eq!(families, [Family::RealNvp, Family::Maf, Family::Nsf]);
        assert_eq!(runs[2].spec().flow.layers, 3);
        for run in runs {
            assert_eq!(run.spec().target, runs[0].spec().target);
            assert_eq!(run.spec().train.seed, runs[0].spec().train.seed);
            assert_eq!(run.spec().flow_seed, runs[0].spec().flow_seed);
        }
        let _ = workspace.apply(Command::Step);
        workspace.tick(Duration::ZERO);
        assert!(
            workspace
                .runs()
                .iter()
                .all(|r| r.latest().is_some_and(|r| r.step == 1)),
            "every model took the step"
        );
        // Removing one keeps the others; the link says so.
        let _ = workspace.apply(Command::RemoveModel(1));
        assert_eq!(workspace.runs().len(), 2);
        assert!(workspace.spec().to_fragment().contains("compare=nsf"));
    }

    #[test]
    fn a_target_with_no_mass_is_refused_and_the_previous_one_kept() {
        let mut workspace = workspace("target=painted:ring&autoplay=0");
        workspace.tick(Duration::ZERO);
        let before = workspace.target().unwrap().fingerprint.clone();
        let TargetSource::Painted(ring) = workspace.spec().target.clone() else {
            panic!("{:?}", workspace.spec().target.kind())
        };
        let (nx, ny) = ring.size();
        let blank = crate::targets::painted::PaintedGrid::blank(ring.view(), nx, ny);
        let _ = workspace.apply(Command::SetTarget(Box::new(TargetSource::Painted(blank))));
        workspace.tick(Duration::ZERO);
        assert_eq!(workspace.target().unwrap().fingerprint, before);
        assert_eq!(workspace.spec().target, TargetSource::Painted(ring));
        let problems = workspace.problems().join(" ");
        assert!(problems.contains("previous target is kept"), "{problems}");
    }

    #[test]
    fn an_edited_target_restarts_training_on_it_and_its_link_restores_it() {
        let mut workspace = workspace("target=painted:two-blobs&autoplay=0");
        let _ = workspace.apply(Command::Step);
        workspace.tick(Duration::ZERO);
        let TargetSource::Painted(mut grid) = workspace.spec().target.clone() else {
            panic!()
        };
        grid.stroke([0.0, 0.0], &crate::targets::painted::Brush::default());
        let _ = workspace.apply(Command::SetTarget(Box::new(TargetSource::Painted(grid))));
        workspace.tick(Duration::ZERO);
        let fingerprint = workspace.target().unwrap().fingerprint.clone();
        assert_eq!(workspace.runs()[0].spec().target, workspace.spec().target);
        assert_eq!(workspace.runs()[0].latest().map(|r| r.step), Some(0));
        let link = workspace.spec().to_fragment();
        let restored = Workspace::inline(Spec::from_fragment_lenient(&link));
        assert_eq!(restored.target().unwrap().fingerprint, fingerprint);
    }
}
