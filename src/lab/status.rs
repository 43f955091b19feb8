//! Where the app stands, as one plain value: the status line draws it and, on the web,
//! `window.flowlab.status()` returns it as JSON, so tests see what users see.
//!
//! The hook is a public contract: fields are added, never renamed or dropped.

use super::backend::Backend;
use super::workspace::Workspace;

/// Everything the status line shows; serialised as the browser test hook's JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StatusSnapshot {
    /// The executor the first model trains on: `"cpu"` or `"webgpu"` (the GPU executor, also
    /// natively, where wgpu speaks Vulkan, Metal or DX12).
    pub backend: String,
    /// Why the first model trains on the CPU (asked for, no GPU, an emulated GPU, a small
    /// batch, reverse KL, a GPU failure), in the app's language; `null` on the GPU or before
    /// its trainer has said.
    pub backend_reason: Option<String>,
    /// Whether a WebGPU adapter (which always has compute) is available to this page; `null`
    /// while the browser is still being asked. Natively: whether the render device can run
    /// compute shaders.
    pub webgpu_available: Option<bool>,
    /// What draws the UI: `"webgpu"`, `"webgl2"`, `"vulkan"`, `"metal"`, `"dx12"`, `"gl"`.
    pub renderer: &'static str,
    /// The renderer's adapter name (often empty in browsers).
    pub adapter: String,
    /// Optimisation steps the first model took.
    pub step: u64,
    /// The first model's latest training loss, or `null`.
    pub loss: Option<f64>,
    /// What went wrong (bad URL fragment, unknown target, a failed run), or `null`.
    pub error: Option<String>,
    /// The scene's target.
    pub target: String,
    /// The scene's flow.
    pub flow: String,
    /// The scene's seed.
    pub seed: u64,
    /// Whether training is playing (vs paused).
    pub playing: bool,
    /// Why training runs on the UI thread although a worker or thread was asked for, or
    /// `null`.
    pub trainer: Option<String>,
    /// Frames drawn so far.
    pub frames: u64,
    /// Recent frames per second, while the app is animating.
    pub fps: Option<f32>,
    /// Number of target samples drawn.
    pub samples: usize,
    /// The app's own CPU time per frame in milliseconds (update and tessellation, as eframe
    /// measures it), smoothed; `null` before it is known.
    pub frame_ms: Option<f32>,
    /// Where the first model trains: `"worker"`, `"thread"` or `"main"`.
    pub training_thread: &'static str,
    /// One entry per model.
    pub models: Vec<ModelStatus>,
    /// The layer view's depth scrubber, `0…layers` (fractional while it interpolates).
    pub depth: f32,
    /// Layers `K` of the first model (its trace has `K + 1` depths).
    pub layers: usize,
    /// The views shown, by URL name (`"samples"`, `"layers"`, `"density"`, `"field"`,
    /// `"loss"`).
    pub views: Vec<&'static str>,
    /// The first model's full settings, as trained (defaults filled in), keyed by URL key.
    pub settings: serde_json::Value,
    /// What the target is: `"builtin"`, `"painted"`, `"mixture"`, `"image"` or `"csv"`.
    pub target_kind: &'static str,
    /// A hash of the target (16 hex digits), equal for equal targets wherever they were
    /// made (see `targets::source`).
    pub target_fingerprint: String,
    /// The language the app speaks: `"en"` or `"zh"` (Chinese only once its glyphs are
    /// loaded; `lang_wanted` says what was asked for).
    pub lang: &'static str,
    /// The language asked for by the link, the language switch or the browser.
    pub lang_wanted: &'static str,
}

/// The settings a model trains with, keyed by the URL's key names, every default filled in.
fn settings_of(
    spec: &super::Spec,
    model: &super::spec::ModelSettings,
    run: Option<&super::Run>,
) -> serde_json::Value {
    let config = run.map_or_else(|| model.flow_config(), |r| r.spec().flow.clone());
    let train = run.map(|r| &r.spec().train);
    let cnf = &config.cnf;
    serde_json::json!({
        "target": spec.target.name(),
        "flow": config.family.name(),
        "layers": config.layers,
        "width": config.hidden,
        "activation": config.activation.name(),
        "base": if config.learnable_base { "diagonal" } else { "normal" },
        "objective": train.map(|t| t.objective.name()),
        "lr": train.map_or_else(|| model.learning_rate(), |t| t.adam.lr),
        "batch": train.map_or(model.batch, |t| t.batch),
        "seed": spec.seed,
        "speed": spec.speed,
        "solver": cnf.solver.name(),
        "steps": cnf.steps,
        "rtol": cnf.rtol,
        "atol": cnf.atol,
        "trace": cnf.trace.name(),
        "probe": cnf.probe.name(),
        "probes": cnf.probes,
        "kinetic": cnf.kinetic,
        "jacobian": cnf.jacobian,
        "augment": cnf.augment,
    })
}

/// One model, in the test hook.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelStatus {
    /// Flow family.
    pub flow: String,
    /// Optimisation steps taken.
    pub step: u64,
    /// Latest training loss (mean over the last report's steps; kept while paused), or
    /// `null` before the first step.
    pub loss: Option<f64>,
    /// Held-out NLL (nats) on a fixed sample of 10,000 target points, refreshed about every
    /// 0.4 s in the first 1,000 steps and every 1–2 s after (scoring takes at most 10 %, then
    /// 2.5 %, of the trainer's time); `null` until measured.
    pub test_nll: Option<f64>,
    /// `KL(p*‖q)` on the same points where the target's normaliser is known, else `null`.
    pub kl: Option<f64>,
    /// Steps per second over the last two seconds (0 while paused).
    pub steps_per_sec: f64,
    /// Trainable scalars (0 until the model reported).
    pub n_params: usize,
    /// Divergences the guard rolled back.
    pub rollbacks: u32,
    /// Pictures for the views received so far (traces, density grids, the field).
    pub pictures: u64,
    /// Milliseconds the trainer took for the latest pictures (drawn on the GPU: from their
    /// submission to their arrival), or `null`.
    pub pictures_ms: Option<f64>,
    /// Step of the model in the latest pictures, or `null`.
    pub pictures_step: Option<u64>,
    /// Its full settings as trained, keyed by URL key (as the top level's `settings`).
    pub settings: serde_json::Value,
    /// Whether it is held while the others train.
    pub paused: bool,
    /// Where it trains: `"worker"`, `"thread"` or `"main"`.
    pub training_thread: &'static str,
    /// Why it stopped, if it failed, else `null`.
    pub failure: Option<String>,
    /// Inverse health: the largest `‖f(f⁻¹(x)) − x‖` over 1,000 held-out points at the latest
    /// scoring (`1.8e308` if one was NaN), or `null` before it; the status line flags it above
    /// 0.01.
    pub inverse_error: Option<f64>,
    /// Times its trainer died or stopped answering and a new one took over from the last
    /// checkpoint (the loss curve marks each).
    pub restarts: u32,
    /// The executor it trains on: `"cpu"` or `"webgpu"`.
    pub backend: &'static str,
    /// Why it trains on the CPU, or `null` (see the top level's `backend_reason`).
    pub backend_reason: Option<String>,
    /// The executor that draws its views' heavy pictures (the particles through every layer,
    /// the density grids): `"webgpu"` where the GPU trains it, else `"cpu"`.
    pub pictures_backend: &'static str,
    /// Why the CPU draws them, or `null`: the reason it trains there, or the GPU's failure.
    pub pictures_backend_reason: Option<String>,
    /// `backend=auto` on a real GPU: its first steps' milliseconds on each executor,
    /// `{"cpu_ms":…, "gpu_ms":…}` (the faster trains on); `null` before or without the race.
    pub race: Option<super::race::RaceTimes>,
    /// Seconds spent training the current model so far (its trainer's clock: pictures and
    /// pauses excluded), as of its latest report.
    pub train_secs: f64,
    /// `train_secs` when `test_nll` was measured, or `null`: with it an outside tool times a
    /// fit (seconds to a held-out NLL) exactly, whatever its polling.
    pub scored_train_secs: Option<f64>,
}

/// What the app knows about itself that the workspace does not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameFacts {
    /// The renderer's id.
    pub renderer: &'static str,
    /// The renderer's adapter name.
    pub adapter: String,
    /// Whether WebGPU compute is available (see [`StatusSnapshot::webgpu_available`]).
    pub webgpu_available: Option<bool>,
    /// Frames drawn.
    pub frames: u64,
    /// Smoothed frames per second while animating.
    pub fps: Option<f32>,
    /// Smoothed CPU milliseconds per frame.
    pub frame_ms: Option<f32>,
    /// The browser's or the system's language (the scene's `lang` overrides it).
    pub preferred_lang: crate::i18n::Lang,
}

impl StatusSnapshot {
    /// The status of `workspace`, as the app with `facts` shows it.
    pub fn of(workspace: &Workspace, facts: FrameFacts) -> Self {
        let spec = workspace.spec();
        let models: Vec<ModelStatus> = workspace
            .runs()
            .iter()
            .zip(spec.models())
            .map(|(run, model)| {
                let report = run.latest();
                let backend = report.and_then(|r| r.backend.as_ref());
                let pictures_backend = report.and_then(|r| r.pictures_backend.as_ref());
                ModelStatus {
                    flow: run.spec().flow.family.name().to_owned(),
                    step: report.map_or(0, |r| r.step),
                    loss: run.history().points().last().map(|p| p.loss),
                    test_nll: report.and_then(|r| r.test_nll),
                    kl: report.and_then(|r| r.kl),
                    steps_per_sec: report.map_or(0.0, |r| r.steps_per_sec),
                    n_params: report.map_or(0, |r| r.n_params),
                    rollbacks: report.map_or(0, |r| r.rollbacks),
                    pictures: run.pictures_version(),
                    pictures_ms: run.pictures().map(|p| p.cost_ms),
                    pictures_step: run.pictures().map(|p| p.step),
                    settings: settings_of(spec, model, Some(run)),
                    paused: run.is_paused(),
                    training_thread: run.thread().name(),
                    failure: run.failure().map(ToString::to_string),
                    inverse_error: report.and_then(|r| r.inverse_error),
                    restarts: run.restarts(),
                    backend: backend.map_or("cpu", Backend::name),
                    backend_reason: backend.and_then(Backend::reason),
                    pictures_backend: pictures_backend.map_or("cpu", Backend::name),
                    pictures_backend_reason: pictures_backend.and_then(Backend::reason),
                    race: report.and_then(|r| r.race),
                    train_secs: report.map_or(0.0, |r| r.train_secs),
                    scored_train_secs: run.scores().last().map(|s| s.train_secs),
                }
            })
            .collect();
        let first = models.first();
        let problems = workspace.problems();
        Self {
            backend: first.map_or("cpu", |m| m.backend).to_owned(),
            backend_reason: first.and_then(|m| m.backend_reason.clone()),
            webgpu_available: facts.webgpu_available,
            renderer: facts.renderer,
            adapter: facts.adapter,
            step: first.map_or(0, |m| m.step),
            loss: first.and_then(|m| m.loss),
            error: (!problems.is_empty()).then(|| problems.join("; ")),
            target: spec.target.name().to_owned(),
            flow: spec.model.flow.name().to_owned(),
            seed: spec.seed,
            playing: workspace.is_playing(),
            trainer: workspace.trainer_fallback().map(str::to_owned),
            frames: facts.frames,
            fps: facts.fps,
            samples: workspace.target().map_or(0, |t| t.samples.len()),
            frame_ms: facts.frame_ms,
            training_thread: workspace.training_thread().name(),
            models,
            depth: workspace.depth(),
            layers: workspace.layer_count(),
            views: workspace.shown_views().map(|v| v.name()).collect(),
            settings: settings_of(spec, &spec.model, workspace.runs().first()),
            target_kind: spec.target.kind().name(),
            target_fingerprint: workspace
                .target()
                .map_or_else(|| spec.target.fingerprint(), |t| t.fingerprint.clone()),
            lang: crate::i18n::current().code(),
            lang_wanted: spec.lang.unwrap_or(facts.preferred_lang).code(),
        }
    }
}
