//! The eframe app: owns the scene and everything derived from it, wires the panels, drives the
//! trainer from the frame loop and publishes the status snapshot.

use std::sync::Arc;

use web_time::{Duration, Instant};

use crate::rng::Rng;
use crate::targets::Target;
use crate::targets::{self as catalog, load_shared as load_target};
use crate::ui::controls::{ControlAction, ControlsPanel, ControlsView};
use crate::ui::plot::{PlotData, PlotPanel};
use crate::ui::scene::{LenientScene, Scene};
use crate::ui::status::{RendererInfo, StatusPanel, StatusSnapshot};
use crate::ui::training::{self, TrainingError, TrainingSession};
use crate::viz::DensityGrid;

/// Target samples drawn in the plot.
pub const DISPLAY_SAMPLE_COUNT: usize = 1500;
/// Cells per side of the log-density heat map.
pub const HEAT_MAP_RESOLUTION: usize = 128;
/// Wall time given to the trainer per frame; the rest of a 60 Hz frame is for drawing.
pub const TRAIN_BUDGET_PER_FRAME: Duration = Duration::from_millis(10);
/// Random stream (see [`Rng::fork`]) of the displayed target samples, so they stay the same
/// whatever else draws from the scene's seed.
const DISPLAY_SAMPLES_STREAM: u64 = 0xD15_B1A7;

/// The flowlab app.
pub struct FlowlabApp {
    scene: Scene,
    playing: bool,
    target: Option<Arc<dyn Target>>,
    target_samples: Vec<[f32; 2]>,
    heat: Option<DensityGrid>,
    heat_generation: u64,
    /// The trainer hook: a running session once `training::start_session` succeeds.
    trainer: Option<Box<dyn TrainingSession>>,
    /// Why `trainer` is `None` when that is expected (not an error), e.g. engine not built.
    trainer_unavailable: Option<String>,
    renderer: RendererInfo,
    scene_errors: Vec<String>,
    target_error: Option<String>,
    training_error: Option<String>,
    controls: ControlsPanel,
    plot: PlotPanel,
    status_panel: StatusPanel,
    frames: u64,
    frame_clock: FrameClock,
}

impl FlowlabApp {
    /// The app as eframe starts it: on the web the scene comes from the URL fragment,
    /// natively it is the default scene.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        #[cfg(target_arch = "wasm32")]
        let fragment = crate::web::location_fragment();
        #[cfg(not(target_arch = "wasm32"))]
        let fragment = String::new();
        Self::with_fragment(cc, &fragment)
    }

    /// The app showing the scene written in `fragment` (`target=moons&flow=realnvp&…`, leading
    /// `#` optional). Problems in the fragment are shown in the UI; defaults fill in.
    pub fn with_fragment(cc: &eframe::CreationContext<'_>, fragment: &str) -> Self {
        #[cfg(target_arch = "wasm32")]
        crate::web::register_context(&cc.egui_ctx);
        crate::ui::fonts::install(&cc.egui_ctx);
        let mut app = Self {
            scene: Scene::default(),
            playing: false,
            target: None,
            target_samples: Vec::new(),
            heat: None,
            heat_generation: 0,
            trainer: None,
            trainer_unavailable: None,
            renderer: RendererInfo::from_render_state(cc.wgpu_render_state.as_ref()),
            scene_errors: Vec::new(),
            target_error: None,
            training_error: None,
            controls: ControlsPanel::default(),
            plot: PlotPanel::default(),
            status_panel: StatusPanel,
            frames: 0,
            frame_clock: FrameClock::default(),
        };
        log::info!(
            "renderer: {} ({}), GPU compute: {}",
            app.renderer.label,
            app.renderer.adapter,
            app.renderer.gpu_compute
        );
        app.apply_fragment(fragment);
        app
    }

    /// Replaces the scene by the one in `fragment` (e.g. after the URL changed).
    pub fn apply_fragment(&mut self, fragment: &str) {
        let LenientScene { scene, errors } = Scene::from_fragment_lenient(fragment);
        for error in &errors {
            log::warn!("{error}");
        }
        self.scene_errors = errors.iter().map(ToString::to_string).collect();
        self.playing = scene.autoplay;
        self.scene = scene;
        self.controls.reset_edits();
        self.reload_target();
    }

    /// The current scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// How many flow samples the plot draws (0 before training starts).
    pub fn model_sample_count(&self) -> usize {
        self.trainer.as_ref().map_or(0, |t| t.model_samples().len())
    }

    /// Whether training is playing.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// The renderer in use.
    pub fn renderer(&self) -> &RendererInfo {
        &self.renderer
    }

    /// The samples of the target shown in the plot.
    pub fn target_samples(&self) -> &[[f32; 2]] {
        &self.target_samples
    }

    /// The heat map shown under the samples, if the target has a log-density.
    pub fn heat_map(&self) -> Option<&DensityGrid> {
        self.heat.as_ref()
    }

    /// Where the app stands (what `window.flowlab.status()` returns on the web).
    pub fn status(&self) -> StatusSnapshot {
        let progress = self.trainer.as_ref().map(|trainer| trainer.progress());
        let errors: Vec<&str> = self
            .scene_errors
            .iter()
            .chain(&self.target_error)
            .chain(&self.training_error)
            .map(String::as_str)
            .collect();
        StatusSnapshot {
            backend: self
                .trainer
                .as_ref()
                .map_or("cpu", |trainer| trainer.compute_backend())
                .to_owned(),
            webgpu_available: self.webgpu_available(),
            renderer: self.renderer.id,
            adapter: self.renderer.adapter.clone(),
            step: progress.map_or(0, |p| p.step),
            loss: progress.and_then(|p| p.loss),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            target: self.scene.target.clone(),
            flow: self.scene.flow.clone(),
            seed: self.scene.seed,
            playing: self.playing,
            trainer: self.trainer_unavailable.clone(),
            frames: self.frames,
            fps: self.frame_clock.fps,
            samples: self.target_samples.len(),
        }
    }

    fn webgpu_available(&self) -> Option<bool> {
        if self.renderer.id == "webgpu" {
            return Some(true);
        }
        #[cfg(target_arch = "wasm32")]
        return crate::web::webgpu_available();
        #[cfg(not(target_arch = "wasm32"))]
        Some(self.renderer.gpu_compute)
    }

    /// Loads the scene's target (samples + heat map), then restarts training.
    fn reload_target(&mut self) {
        self.target_error = None;
        let target = match load_target(&self.scene.target) {
            Ok(target) => target,
            Err(error) => {
                // Why: the parser only accepts known names, so this means the catalog and the
                // parser disagree; show it and fall back to the default rather than panic.
                self.target_error = Some(error.to_string());
                self.scene.target = catalog::DEFAULT_TARGET.to_owned();
                match load_target(catalog::DEFAULT_TARGET) {
                    Ok(target) => target,
                    Err(_) => {
                        self.target = None;
                        self.target_samples.clear();
                        self.heat = None;
                        self.trainer = None;
                        return;
                    }
                }
            }
        };
        let mut rng = Rng::seed_from_u64(self.scene.seed).fork(DISPLAY_SAMPLES_STREAM);
        self.target_samples = target.sample(DISPLAY_SAMPLE_COUNT, &mut rng);
        let grid = DensityGrid::from_target(
            target.as_ref(),
            target.view(),
            HEAT_MAP_RESOLUTION,
            HEAT_MAP_RESOLUTION,
        );
        self.heat = grid.max_finite().is_some().then_some(grid);
        self.heat_generation += 1;
        self.target = Some(target);
        self.restart_training();
    }

    /// Drops the current run and starts the scene's from step 0.
    fn restart_training(&mut self) {
        self.trainer = None;
        self.trainer_unavailable = None;
        self.training_error = None;
        let Some(target) = self.target.clone() else {
            return;
        };
        match training::start_session(&self.scene, target) {
            Ok(session) => self.trainer = Some(session),
            Err(TrainingError::NotBuilt) => {
                self.trainer_unavailable = Some(TrainingError::NotBuilt.to_string());
            }
            Err(error) => self.training_error = Some(error.to_string()),
        }
    }

    fn apply(&mut self, action: ControlAction) {
        // Why: once the user changes the scene, problems of the URL it came from are stale.
        self.scene_errors.clear();
        match action {
            ControlAction::SelectTarget(name) => {
                self.scene.target = name;
                self.reload_target();
            }
            ControlAction::SelectFlow(name) => {
                self.scene.flow = name;
                self.restart_training();
            }
            ControlAction::Play => self.playing = true,
            ControlAction::Pause => self.playing = false,
            ControlAction::Step => {
                self.playing = false;
                if let Some(trainer) = &mut self.trainer
                    && let Err(error) = trainer.step_once()
                {
                    self.training_error = Some(error.to_string());
                }
            }
            ControlAction::Reset => self.reload_target(),
            ControlAction::SetSeed(seed) => {
                self.scene.seed = seed;
                self.reload_target();
            }
        }
        #[cfg(target_arch = "wasm32")]
        crate::web::replace_location_fragment(&self.scene.to_fragment());
    }

    /// Runs the trainer for this frame's budget while playing; asks for the next frame.
    fn advance_training(&mut self, ctx: &egui::Context) {
        let animating = self.playing && self.trainer.is_some();
        self.frame_clock.tick(animating);
        if !self.playing {
            return;
        }
        let Some(trainer) = &mut self.trainer else {
            return;
        };
        match trainer.train_for(TRAIN_BUDGET_PER_FRAME) {
            Ok(()) => {
                if let Some(notice) = trainer.notice() {
                    self.training_error = Some(notice.to_owned());
                }
                ctx.request_repaint();
            }
            Err(error) => {
                self.training_error = Some(error.to_string());
                self.playing = false;
            }
        }
    }
}

impl eframe::App for FlowlabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frames += 1;
        #[cfg(target_arch = "wasm32")]
        if let Some(fragment) = crate::web::take_pending_fragment() {
            self.apply_fragment(&fragment);
        }
        self.advance_training(ui.ctx());
        let status = self.status();

        let description = self
            .target
            .as_ref()
            .map_or("", |target| target.description());
        let controls_view = ControlsView {
            scene: &self.scene,
            playing: self.playing,
            target_description: description,
        };
        let actions = egui::Panel::left("controls")
            .resizable(false)
            .default_size(230.0)
            .show(ui, |ui| self.controls.ui(ui, &controls_view))
            .inner;
        egui::Panel::bottom("status").show(ui, |ui| {
            self.status_panel.ui(ui, &status, &self.renderer);
        });
        let model_samples = self
            .trainer
            .as_ref()
            .map_or(&[][..], |trainer| trainer.model_samples());
        let plot_data = PlotData {
            title: &self.scene.target,
            view: self
                .target
                .as_ref()
                .map_or(crate::targets::ViewRect::square(4.0), |target| {
                    target.view()
                }),
            heat: self.heat.as_ref(),
            heat_generation: self.heat_generation,
            target_samples: &self.target_samples,
            model_samples,
        };
        egui::CentralPanel::default().show(ui, |ui| {
            self.plot.ui(ui, &plot_data);
        });

        let changed = !actions.is_empty();
        for action in actions {
            self.apply(action);
        }
        if changed {
            ui.ctx().request_repaint();
        }
        #[cfg(target_arch = "wasm32")]
        crate::web::publish_status(&self.status());
    }
}

/// Frames per second, smoothed, measured only while the app animates (an idle egui app draws
/// only on input, so its frame rate means nothing).
#[derive(Default)]
struct FrameClock {
    last: Option<Instant>,
    fps: Option<f32>,
}

impl FrameClock {
    fn tick(&mut self, animating: bool) {
        if !animating {
            self.last = None;
            self.fps = None;
            return;
        }
        let now = Instant::now();
        if let Some(last) = self.last.replace(now) {
            let secs = now.duration_since(last).as_secs_f32();
            if secs > 0.0 {
                let fps = 1.0 / secs;
                self.fps = Some(self.fps.map_or(fps, |old| 0.9 * old + 0.1 * fps));
            }
        }
    }
}
