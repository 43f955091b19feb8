//! The eframe app: a [`Workspace`], the [`Shell`] of panels that shows it, and the frame loop
//! that connects them — take in what the trainers reported (`logic`), draw the panels and
//! apply the commands they return (`ui`), keep the URL and the stored settings in step.

use web_time::{Duration, Instant};

use crate::i18n::{self, Lang};
use crate::lab::protocol::InjectedFault;
use crate::lab::status::FrameFacts;
use crate::lab::{Command, SpawnTrainer, Spec, StatusSnapshot, TrainerLink, Workspace};
use crate::platform;
use crate::ui::PanelContext;
use crate::ui::renderer::RendererInfo;
use crate::ui::shell::Shell;

/// Time a trainer on the UI thread (the fallback) may take per frame.
pub const TRAIN_BUDGET_PER_FRAME: Duration = Duration::from_millis(10);
/// How often a trainer reports, and so wakes the UI, when a GPU draws it.
const WAKE_INTERVAL_GPU: Duration = Duration::from_millis(40);
/// How often a trainer reports, and so wakes the UI, when a software rasterizer draws it. Why: there
/// a frame costs the CPU as much as ~20 training steps (SwiftShader at 1100×700 in headless
/// Chromium on 2 cores): redrawing at 25 Hz cost the trainer 30–40 % of its speed, at 1 Hz
/// about 5 %. Input (hover, clicks) still redraws at once.
const WAKE_INTERVAL_SOFTWARE: Duration = Duration::from_millis(1000);
/// Frames over which `frame_ms` is smoothed.
pub const FRAME_MS_WINDOW: usize = 31;

/// Where the app's trainers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trainers {
    /// Off the UI thread: a Web Worker in the browser, a thread natively.
    Background,
    /// On the UI thread, a time budget per frame (deterministic; for tests).
    UiThread,
}

/// The flowlab app.
pub struct FlowlabApp {
    workspace: Workspace,
    shell: Shell,
    renderer: RendererInfo,
    commands: Vec<Command>,
    frames: u64,
    frame_clock: FrameClock,
    /// When this frame's input was handed to the app (eframe's `raw_input_hook`).
    frame_started: Option<Instant>,
    /// The app's own time of recent frames, in milliseconds (see [`FlowlabApp::frame_ms`]).
    recent_frame_ms: std::collections::VecDeque<f32>,
    /// Keep the spec for the next session when it changes (the app the user opened, not one
    /// a test or `--scene` made).
    keep_spec: bool,
    /// The Chinese glyphs are in the fonts.
    cjk_installed: bool,
}

impl FlowlabApp {
    /// The app as eframe starts it: the scene comes from the URL fragment (web), else from the
    /// settings kept by the last visit, else the default scene; changes are kept for the next.
    pub fn new(cc: &eframe::CreationContext<'_>) -> Self {
        let from_url = platform::initial_fragment();
        let fragment = from_url
            .clone()
            .or_else(platform::stored_spec)
            .unwrap_or_default();
        let mut app = Self::with_trainers(cc, &fragment, Trainers::Background);
        app.keep_spec = true;
        let fragment = app.workspace.spec().to_fragment();
        if from_url.is_none() {
            // The URL shares the scene from the start (a scene with errors in its URL keeps
            // the user's text, so nothing they typed is lost).
            platform::write_fragment(&fragment);
        }
        platform::store_spec(&fragment);
        app
    }

    /// The app showing the scene written in `fragment` (`target=moons&flow=realnvp&…`, leading
    /// `#` optional), training off the UI thread. Problems in the fragment are shown in the
    /// UI; defaults fill in.
    pub fn with_fragment(cc: &eframe::CreationContext<'_>, fragment: &str) -> Self {
        Self::with_trainers(cc, fragment, Trainers::Background)
    }

    /// The app showing `fragment`, with its trainers where `trainers` says.
    pub fn with_trainers(
        cc: &eframe::CreationContext<'_>,
        fragment: &str,
        trainers: Trainers,
    ) -> Self {
        platform::register_context(&cc.egui_ctx);
        crate::ui::fonts::install(&cc.egui_ctx);
        let renderer = RendererInfo::from_render_state(cc.wgpu_render_state.as_ref());
        log::info!(
            "renderer: {} ({}), GPU compute: {}",
            renderer.label,
            renderer.adapter,
            renderer.gpu_compute
        );
        let wake_every = if renderer.software {
            WAKE_INTERVAL_SOFTWARE
        } else {
            WAKE_INTERVAL_GPU
        };
        let spawn: SpawnTrainer = match trainers {
            Trainers::Background => {
                let ctx = cc.egui_ctx.clone();
                // Why every model its own trainer, even beyond the cores: compared models
                // must train side by side (the workspace caps them at `MAX_MODELS`); on fewer
                // cores they share them, and the table's steps/s says so honestly.
                Box::new(move || platform::spawn_trainer(&ctx, wake_every))
            }
            Trainers::UiThread => {
                Box::new(|| Ok(Box::new(crate::lab::InlineLink::new()) as Box<dyn TrainerLink>))
            }
        };
        Self {
            workspace: Workspace::new(Spec::from_fragment_lenient(fragment), spawn),
            shell: Shell::default(),
            renderer,
            commands: Vec::new(),
            frames: 0,
            frame_clock: FrameClock::default(),
            frame_started: None,
            recent_frame_ms: std::collections::VecDeque::new(),
            keep_spec: false,
            cjk_installed: false,
        }
    }

    /// The workspace the app shows.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The renderer in use.
    pub fn renderer(&self) -> &RendererInfo {
        &self.renderer
    }

    /// Where the app stands (what `window.flowlab.status()` returns on the web).
    pub fn status(&self) -> StatusSnapshot {
        StatusSnapshot::of(
            &self.workspace,
            FrameFacts {
                renderer: self.renderer.id,
                adapter: self.renderer.adapter.clone(),
                webgpu_available: if self.renderer.id == "webgpu" {
                    Some(true)
                } else {
                    platform::webgpu_available().or(Some(self.renderer.gpu_compute))
                },
                frames: self.frames,
                fps: self.frame_clock.fps,
                frame_ms: self.frame_ms(),
                preferred_lang: platform::preferred_language(),
            },
        )
    }

    /// The app's own time per frame, smoothed: the median of the last [`FRAME_MS_WINDOW`]
    /// frames. Why a median: one frame that loads a target or rebuilds the heat map should not
    /// colour the figure for the next hundred.
    pub fn frame_ms(&self) -> Option<f32> {
        let mut sorted: Vec<f32> = self.recent_frame_ms.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        sorted.get(sorted.len() / 2).copied()
    }

    /// Speaks the language the scene asks for (else the browser's or the system's). Chinese
    /// waits, in English, until its glyphs are in the fonts: never a frame of empty boxes.
    fn speak(&mut self, ctx: &egui::Context) {
        let wanted = self
            .workspace
            .spec()
            .lang
            .unwrap_or_else(platform::preferred_language);
        if wanted == Lang::Zh && !self.cjk_installed {
            if let Some(glyphs) = platform::cjk_font() {
                crate::ui::fonts::install_cjk(ctx, glyphs);
                self.cjk_installed = true;
            } else if platform::cjk_font_failed() {
                self.workspace.set_font_problem();
            }
        }
        let speaking = if wanted == Lang::Zh && !self.cjk_installed {
            Lang::En
        } else {
            wanted
        };
        if i18n::current() != speaking {
            i18n::set(speaking);
            self.workspace.language_changed();
            ctx.request_repaint();
        }
    }

    /// Applies `command` (the one way the workspace changes) and keeps the URL in step.
    pub fn apply(&mut self, command: Command) {
        if self.workspace.apply(command).spec_changed {
            let fragment = self.workspace.spec().to_fragment();
            platform::write_fragment(&fragment);
            if self.keep_spec {
                platform::store_spec(&fragment);
            }
        }
    }
}

impl FlowlabApp {
    /// Opens what the user dropped on the window or picked in the file input: an image or CSV
    /// becomes the target, a `model.json` the first model; a bad file is one message, and
    /// the scene stays as it was.
    fn take_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<egui::DroppedFileHandle> = ctx.input(|i| i.raw.dropped_files.clone());
        if !dropped.is_empty() {
            platform::receive_dropped(dropped);
        }
        let files = platform::take_opened_files();
        let options = self.shell.image_options();
        for (name, content) in files {
            let opened = content.and_then(|content| {
                crate::lab::export::open_content(&name, &content, options.invert, options.threshold)
            });
            self.apply(match opened {
                Ok(crate::lab::export::Opened::Target(source)) => {
                    Command::SetTarget(Box::new(source))
                }
                Ok(crate::lab::export::Opened::Model(model)) => Command::ImportModel(model),
                Err(why) => Command::Problem(crate::tr!(
                    "lab.scene_unchanged",
                    problem = why.trim_end_matches(['.', '。'])
                )),
            });
        }
    }
}

impl eframe::App for FlowlabApp {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, _raw_input: &mut egui::RawInput) {
        self.frame_started = Some(Instant::now());
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let Some(fragment) = platform::take_fragment_change() {
            self.apply(Command::Load(Box::new(Spec::from_fragment_lenient(
                &fragment,
            ))));
        }
        self.speak(ctx);
        self.take_files(ctx);
        for point in platform::take_hook_probes() {
            self.apply(Command::Probe(Some(point)));
        }
        for _ in 0..platform::take_hook_steps() {
            self.apply(Command::Step);
        }
        for fault in platform::take_hook_faults() {
            match fault {
                // Why a real panic: the crash page and the saved scene are what is tested.
                InjectedFault::Panic => panic!("a panic injected by the test hook's inject_fault"),
                InjectedFault::Trainer(fault) => self.workspace.inject_fault(0, fault),
            }
        }
        self.workspace.tick(TRAIN_BUDGET_PER_FRAME);
        if let Some(file) = self.workspace.take_export() {
            let message = file.and_then(|file| platform::save_file(&file));
            self.apply(match message {
                Ok(done) => Command::Inform(done),
                Err(why) => Command::Problem(why),
            });
        }
        // Why gated: only the page's hook reads it, and with no pinned point it is `[]`.
        if platform::IS_WEB {
            let probes = if self.workspace.probes().is_empty() {
                "[]".to_owned()
            } else {
                crate::lab::probe::probes_json(&self.workspace)
            };
            platform::publish_probes(probes);
        }
        // Why only then: a trainer off the UI thread wakes the app when it reports, so the app
        // draws when there is something new and leaves the CPU to training otherwise.
        if self.workspace.needs_frames() {
            ctx.request_repaint();
        } else if self.workspace.awaits_reports() {
            // A trainer that stopped answering wakes nothing: look in now and then.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        self.frame_clock
            .tick(self.workspace.is_playing() && !self.workspace.runs().is_empty());
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frames += 1;
        let status = self.status();
        let mut commands = std::mem::take(&mut self.commands);
        let mut panel_context = PanelContext {
            workspace: &self.workspace,
            status: &status,
            renderer: &self.renderer,
            commands: &mut commands,
        };
        self.shell.ui(ui, &mut panel_context);
        let changed = !commands.is_empty();
        for command in commands.drain(..) {
            self.apply(command);
        }
        self.commands = commands;
        if changed {
            ui.ctx().request_repaint();
        }
        // Why measured here and not eframe's `cpu_usage`: in the browser that includes
        // `paint`, which on a software renderer waits for the GPU process. This is the app's
        // own work: input, logic, panels and their shapes (the sample clouds are built as
        // ready meshes, so what is left for egui's tessellator is text and a few rectangles).
        if let Some(started) = self.frame_started.take() {
            if self.recent_frame_ms.len() == FRAME_MS_WINDOW {
                self.recent_frame_ms.pop_front();
            }
            self.recent_frame_ms
                .push_back(started.elapsed().as_secs_f32() * 1e3);
        }
        platform::publish_status(&self.status());
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
