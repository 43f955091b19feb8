//! The trainer's side of the protocol: one model, trained a step at a time, reporting what the
//! UI shows. The same [`TrainLoop`] runs in a Web Worker, on a native thread and, as the
//! fallback, on the UI thread; its hosts only move messages and decide when to call
//! [`TrainLoop::tick`].

use std::collections::VecDeque;
use std::sync::Arc;

use super::backend::{self, Backend, CpuReason, GpuAccess};
use super::gpu_pictures::{GpuPictures, HeavyParts};
use super::probe::ProbeProgram;
use super::protocol::{
    FromTrainer, Report, RunError, RunSpec, Stage, ToTrainer, TrainerFault, TrainingEvent,
};
use super::race::{Race, RaceTimes, Verdict};
use super::views::{FIELD_ARROWS, Pictures, ViewRequest, base_grid};
use crate::flows::cnf::AdaptiveEvaluator;
use crate::flows::cnf::dopri::Tolerance;
use crate::flows::eval::RoundTrip;
use crate::flows::{FlowEvaluator, build_flow, inspect};
use crate::rng::Rng;
use crate::targets::Target;
use crate::train::metrics::{HeldOut, HeldOutScore};
use crate::train::{MAX_STEPS_AHEAD, Trainer};
use crate::viz::density::DensityGrid;

/// Base samples pushed through the flow for the plot.
pub const MODEL_SAMPLES: usize = 1500;
/// Points of the fixed held-out set the trainer scores (the hook's `test_nll` and `kl`).
pub const HELD_OUT_POINTS: usize = 10_000;
/// Random stream (see [`Rng::fork`]) of the base samples shown, so they stay the same while
/// the model trains and the eye can follow them.
const DISPLAY_NOISE_STREAM: u64 = 0xE5;
/// Random stream of the held-out set, apart from the training data's.
const HELD_OUT_STREAM: u64 = 0x7E57;
/// Scoring the held-out set may take at most this share of the trainer's time: natively the
/// reference RealNVP scores its 10,000 points every second, in the browser (~50 ms a score)
/// every two, and a CNF's or a planar flow's costlier density less often still.
const SCORING_SHARE: f64 = 0.025;
/// For the first [`EARLY_STEPS`] steps scoring may take this share instead. Why: that is when
/// the fit changes fastest and a class watches the held-out NLL fall; at 2.5 % the page's
/// readout lagged its model by two to three seconds (measured on twomoons, WebGL2).
const EARLY_SCORING_SHARE: f64 = 0.10;
/// See [`EARLY_SCORING_SHARE`].
const EARLY_STEPS: u64 = 1000;
/// Pushing the displayed samples through the flow for a report may take at most this share of
/// the trainer's time: where it is costly (a CNF; wasm on a slow machine), reports come less
/// often than every [`REPORT_INTERVAL_MS`](super::protocol::REPORT_INTERVAL_MS).
const SAMPLING_SHARE: f64 = 0.05;
/// Score about this often when scoring is cheap.
const SCORE_INTERVAL_MS: f64 = 1000.0;
/// For the first [`EARLY_STEPS`] steps, this often. Why: the page's default model crosses a
/// good fit within its first seconds, and at one score a second the readout showed it up to a
/// second late (measured by tests/e2e/fit.js on twomoons).
const EARLY_SCORE_INTERVAL_MS: f64 = 400.0;
/// Computing the views' pictures may take at most this share of the trainer's time. Why this
/// much: the pictures are what the student watches; the reference RealNVP's (10,000 particles
/// and a 128² grid through 8 layers, ~150 ms in the browser) then come 2.5 times a second,
/// and training keeps more than half the trainer.
const PICTURES_SHARE: f64 = 0.45;
/// Pictures no more often than this: 2.5 a second is smooth enough for heat maps that change
/// slowly, and leaves the rest to training.
const PICTURES_INTERVAL_MS: f64 = 400.0;
/// Most particles traced through the layers.
pub const MAX_PARTICLES: usize = 20_000;
/// Most points taken apart per set of pictures (the pinned ones and the one pointed at).
pub const MAX_PROBES: usize = 8;
/// Most cells per side of a density picture.
pub const MAX_RESOLUTION: usize = 256;
/// Half-width of the base-space square the warped grid covers (±3 standard deviations).
const BASE_GRID_HALF: f32 = 3.0;
/// Random stream of the traced particles.
const PARTICLE_STREAM: u64 = 0x9A27;
/// Held-out points the inverse-health check round-trips at every scoring.
const ROUND_TRIP_POINTS: usize = 1000;
/// Points a CNF's function-evaluation count is measured on.
const SOLVER_PROBE_POINTS: usize = 64;

/// The window of the reported steps per second. Why 2 s: a report can come 750 ms apart (a
/// software-rendered page), and a window of one or two reports jitters with every held-out
/// scoring that falls in it.
pub const RATE_WINDOW_MS: f64 = 2000.0;

/// How long one [`TrainLoop::tick`] trains before it returns to its host.
pub const TICK_MS: f64 = 8.0;

/// How long a host waits before the next tick while every GPU step it may submit is on its
/// way: the reports come back a frame or so later, and a tick before them finds nothing.
const GPU_WAIT_MS: f64 = 1.0;
/// The longest gap between two ticks of a GPU trainer counted as training time.
const GPU_TICK_GAP_MAX_MS: f64 = 100.0;

/// Milliseconds since the first call in this process (or wasm instance).
pub fn now_ms() -> f64 {
    static START: std::sync::OnceLock<web_time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(web_time::Instant::now)
        .elapsed()
        .as_secs_f64()
        * 1e3
}

/// One model being trained, with what it needs to report.
struct ActiveRun {
    generation: u64,
    /// The flow's seed (display noise and particles derive from it).
    seed: u64,
    trainer: Trainer,
    sampler: FlowEvaluator,
    noise: Vec<f32>,
    held_out: HeldOut,
    scorer: FlowEvaluator,
    score: Option<HeldOutScore>,
    scored_at_step: Option<u64>,
    next_score_ms: f64,
    sampled_at_step: Option<u64>,
    n_params: usize,
    origins_sent: bool,
    density_ms_per_1k: Option<f64>,
    sample_ms_per_1k: Option<f64>,
    inspector: inspect::FlowInspector,
    /// The trace's evaluator and its inputs (particles' draws, then the base grid), for the
    /// particle count they were made for.
    tracer: Option<Tracer>,
    /// The inverse-health check, compiled at the first scoring.
    round_trip: Option<RoundTrip>,
    /// Its latest value: the largest `‖f(f⁻¹(x)) − x‖` over [`ROUND_TRIP_POINTS`] held-out
    /// points (NaN if one is NaN).
    inverse_error: Option<f64>,
    /// A CNF's adaptive evaluator, when its evaluation solver is Dormand–Prince.
    adaptive: Option<AdaptiveEvaluator>,
    /// The compiled probe, once a point was probed.
    probe: Option<ProbeProgram>,
    /// The step and request of the last pictures.
    pictured: Option<(u64, ViewRequest)>,
    next_pictures_ms: f64,
    /// The executor it trains on, and why.
    backend: Backend,
    /// The GPU's share of the pictures, for a model the GPU trains.
    gpu_pictures: Option<GpuPictures>,
    /// Pictures the GPU drew, not yet reported.
    ready_pictures: Option<Box<Pictures>>,
    /// The executor that draws the heavy pictures, and why the CPU when it does.
    pictures_backend: Backend,
    /// `backend=auto` on a real GPU: the GPU's trainer racing the live CPU trainer, with
    /// its device.
    race: Option<(Race, crate::engine::gpu::GpuContext)>,
    /// The race's measurement, once it ended.
    race_times: Option<RaceTimes>,
}

/// Probes per point when measuring the Hutchinson estimator's spread.
const SPREAD_PROBES: usize = 32;

/// `[mean |exact trace|, Gaussian probe's std, Rademacher probe's std]` at time `t`, on
/// `points`: the teaching note's "exact vs Hutchinson" in numbers (both probe kinds, whichever
/// the model trains with).
fn trace_spread(flow: &crate::flows::Flow, time: f32, points: &[f32]) -> Option<[f32; 3]> {
    use crate::flows::cnf::ProbeKind;
    let spread = |probe: ProbeKind| {
        let mut config = flow.config.clone();
        config.cnf.probe = probe;
        // Same parameters, other probe kind: the estimator reads the probe from the config.
        let mut other = crate::flows::build_flow(&config, flow.dim, 0).ok()?;
        other.store.load_from(&flow.store).ok()?;
        inspect::hutchinson_spread(&other, time, points, SPREAD_PROBES, 0x5EED)
            .ok()
            .flatten()
    };
    let gaussian = spread(ProbeKind::Gaussian)?;
    let rademacher = spread(ProbeKind::Rademacher)?;
    let n = gaussian.exact.len().max(1) as f32;
    let exact = gaussian.exact.iter().map(|v| v.abs()).sum::<f32>() / n;
    Some([exact, gaussian.estimate_std, rademacher.estimate_std])
}

/// Where a model trained on `backend` (on `device` when the GPU trains it) has its heavy
/// pictures drawn: where it trains (see `gpu_pictures`), but never on an emulated GPU,
/// whatever `backend=` says (a second's pictures would take a minute).
fn pictures_device(
    backend: &Backend,
    device: Option<&crate::engine::gpu::GpuContext>,
    layers: usize,
) -> (Option<GpuPictures>, Backend) {
    match device {
        Some(ctx) if ctx.is_software() => (
            None,
            Backend::Cpu(CpuReason::PicturesOnEmulation(ctx.adapter_name())),
        ),
        Some(ctx) => (Some(GpuPictures::new(ctx, layers)), backend.clone()),
        None => (None, backend.clone()),
    }
}

struct Tracer {
    particles: usize,
    grid_lines: usize,
    /// The CPU's evaluator, made the first time the CPU traces.
    evaluator: Option<FlowEvaluator>,
    inputs: Vec<f32>,
}

impl Tracer {
    /// The tracer in `slot`, (re)made if it was for another particle or line count.
    fn ensure(
        slot: &mut Option<Tracer>,
        seed: u64,
        particles: usize,
        grid_lines: usize,
    ) -> Result<&mut Tracer, String> {
        let fits = slot
            .as_ref()
            .is_some_and(|t| t.particles == particles && t.grid_lines == grid_lines);
        if !fits {
            let mut inputs = vec![0.0; 2 * particles];
            Rng::seed_from_u64(seed)
                .fork(PARTICLE_STREAM)
                .fill_normal(&mut inputs);
            inputs.extend(base_grid(grid_lines, BASE_GRID_HALF));
            *slot = Some(Tracer {
                particles,
                grid_lines,
                evaluator: None,
                inputs,
            });
        }
        slot.as_mut().ok_or_else(|| "no tracer".to_owned())
    }

    /// The trace on the CPU: every depth's points, depth-major.
    fn trace_on_cpu(&mut self, flow: &crate::flows::Flow) -> Result<Vec<f32>, String> {
        let evaluator = match &mut self.evaluator {
            Some(evaluator) => evaluator,
            slot => slot.insert(FlowEvaluator::new(flow, 1024).map_err(|e| e.to_string())?),
        };
        let trace = evaluator
            .trace(flow, &self.inputs)
            .map_err(|e| e.to_string())?;
        Ok(trace.points.concat())
    }
}

impl ActiveRun {
    fn build(generation: u64, spec: &RunSpec, gpu: &GpuAccess) -> Result<Self, RunError> {
        let target: Arc<dyn Target> = spec
            .target
            .build()
            .map_err(|e| RunError::new(Stage::Target, e))?;
        let model = |e: &dyn std::fmt::Display| RunError::new(Stage::Model, e);
        let make_flow = || match &spec.init {
            // An imported model.json: its own architecture and parameters.
            Some(saved) => saved.clone().into_flow().map_err(|e| model(&e)),
            None => build_flow(&spec.flow, 2, spec.flow_seed).map_err(|e| model(&e)),
        };
        let flow = make_flow()?;
        let n_params = flow.n_params();
        let mut train = spec.train.clone();
        // Why: a data-dependent initialisation would overwrite the imported parameters.
        train.init_from_data &= spec.init.is_none();
        let on_cpu = |flow, reason| {
            let trainer =
                Trainer::new(flow, target.clone(), train.clone()).map_err(|e| model(&e))?;
            Ok::<_, RunError>((trainer, Backend::Cpu(reason)))
        };
        let mut racer = None;
        let (mut trainer, mut backend, device) =
            match backend::decide(spec.backend, gpu, train.objective, train.batch) {
                // The automatic choice on a real GPU measures both (see `race`): the CPU
                // trains meanwhile.
                Ok(ctx) if spec.backend == backend::BackendChoice::Auto => {
                    racer = Some(ctx);
                    let (trainer, backend) = on_cpu(flow, CpuReason::Measuring)?;
                    (trainer, backend, None)
                }
                Ok(ctx) => match Trainer::new_on(flow, target.clone(), train.clone(), Some(&ctx)) {
                    Ok(trainer) => (trainer, Backend::Gpu(ctx.describe()), Some(ctx)),
                    // The same model again, on the CPU: the GPU could not compile or run it.
                    Err(error) => {
                        let (trainer, backend) =
                            on_cpu(make_flow()?, CpuReason::Failed(error.to_string()))?;
                        (trainer, backend, None)
                    }
                },
                Err(reason) => {
                    let (trainer, backend) = on_cpu(flow, reason)?;
                    (trainer, backend, None)
                }
            };
        trainer.resume_at(spec.resume_step);
        // The GPU's racer: the same model, the same data stream, from the same step.
        let race = match racer {
            Some(ctx) => {
                match Trainer::new_on(make_flow()?, target.clone(), train.clone(), Some(&ctx)) {
                    Ok(mut gpu) => {
                        gpu.resume_at(spec.resume_step);
                        Some((Race::new(gpu), ctx))
                    }
                    Err(error) => {
                        backend = Backend::Cpu(CpuReason::Failed(error.to_string()));
                        None
                    }
                }
            }
            None => None,
        };
        let (gpu_pictures, pictures_backend) =
            pictures_device(&backend, device.as_ref(), trainer.flow.layers.len());
        let sampler = FlowEvaluator::new(&trainer.flow, MODEL_SAMPLES).map_err(|e| model(&e))?;
        let inspector = inspect::FlowInspector::new(&trainer.flow, 1024);
        let config = &trainer.flow.config;
        let adaptive = if config.family == crate::flows::Family::Cnf
            && config.cnf.solver == crate::flows::cnf::Solver::DormandPrince
        {
            Some(AdaptiveEvaluator::new(&trainer.flow, 1024).map_err(|e| model(&e))?)
        } else {
            None
        };
        let scorer = FlowEvaluator::new(&trainer.flow, 1024).map_err(|e| model(&e))?;
        let mut noise = vec![0.0; MODEL_SAMPLES * 2];
        Rng::seed_from_u64(spec.flow_seed)
            .fork(DISPLAY_NOISE_STREAM)
            .fill_normal(&mut noise);
        let held_out = HeldOut::sample(
            target.as_ref(),
            HELD_OUT_POINTS,
            spec.train.seed ^ HELD_OUT_STREAM,
        );
        Ok(Self {
            generation,
            seed: spec.flow_seed,
            trainer,
            sampler,
            noise,
            held_out,
            scorer,
            score: None,
            scored_at_step: None,
            next_score_ms: 0.0,
            sampled_at_step: None,
            n_params,
            origins_sent: false,
            density_ms_per_1k: None,
            sample_ms_per_1k: None,
            inspector,
            tracer: None,
            round_trip: None,
            inverse_error: None,
            adaptive,
            probe: None,
            pictured: None,
            next_pictures_ms: 0.0,
            backend,
            gpu_pictures,
            ready_pictures: None,
            pictures_backend,
            race,
            race_times: None,
        })
    }

    /// Scores the held-out set when due: about once a second, less often when scoring is
    /// costly, and once whenever training stops on a step not yet scored.
    fn score_if_due(&mut self, now: f64, playing: bool) -> Result<(), RunError> {
        let step = self.trainer.steps();
        if self.scored_at_step == Some(step) || (playing && now < self.next_score_ms) {
            return Ok(());
        }
        let started = now_ms();
        let score = match self.adaptive.as_mut() {
            // A CNF set to Dormand–Prince is scored by it, as the CLI scores it.
            Some(adaptive) => {
                let flow = &self.trainer.flow;
                let tolerance = Tolerance::of(&flow.config.cnf);
                let out = adaptive
                    .density(flow, self.held_out.points(), tolerance)
                    .map_err(|e| RunError::new(Stage::Evaluation, e))?;
                self.held_out.score_log_q(&out.log_prob)
            }
            None => self
                .held_out
                .score(&self.trainer.flow, &mut self.scorer)
                .map_err(|e| RunError::new(Stage::Evaluation, e))?,
        };
        let density_cost = now_ms() - started;
        self.density_ms_per_1k = Some(density_cost * 1e3 / HELD_OUT_POINTS as f64);
        let flow = &self.trainer.flow;
        let round_trip = match &mut self.round_trip {
            Some(r) => r,
            None => self.round_trip.insert(
                RoundTrip::new(flow, ROUND_TRIP_POINTS)
                    .map_err(|e| RunError::new(Stage::Evaluation, e))?,
            ),
        };
        let points = self.held_out.points();
        let error = round_trip
            .max_error(flow, &points[..points.len().min(2 * ROUND_TRIP_POINTS)])
            .map_err(|e| RunError::new(Stage::Evaluation, e))?;
        self.inverse_error = Some(f64::from(error));
        let cost = now_ms() - started;
        self.score = Some(score);
        self.scored_at_step = Some(step);
        let (share, interval) = if step < EARLY_STEPS {
            (EARLY_SCORING_SHARE, EARLY_SCORE_INTERVAL_MS)
        } else {
            (SCORING_SHARE, SCORE_INTERVAL_MS)
        };
        self.next_score_ms = now + interval.max(cost / share);
        Ok(())
    }

    /// The flow's samples, if the model changed since they were last drawn; else empty.
    fn fresh_samples(&mut self) -> Result<Vec<f32>, RunError> {
        let step = self.trainer.steps();
        if self.sampled_at_step == Some(step) {
            return Ok(Vec::new());
        }
        let started = now_ms();
        let samples = self
            .sampler
            .sample(&self.trainer.flow, &self.noise)
            .map_err(|e| RunError::new(Stage::Evaluation, e))?;
        self.sample_ms_per_1k = Some((now_ms() - started) * 1e3 / MODEL_SAMPLES as f64);
        self.sampled_at_step = Some(step);
        Ok(samples.x)
    }

    /// The samples' standard-normal draws, once per model.
    fn origins_once(&mut self) -> Vec<f32> {
        if std::mem::replace(&mut self.origins_sent, true) {
            Vec::new()
        } else {
            self.noise.clone()
        }
    }

    /// New pictures for `request`, if the model or the request changed since the last ones
    /// and they are due: at once when paused or asked for something new, else no more often
    /// than their cost allows. Pictures the GPU draws come from a later call, once they have
    /// arrived ([`ActiveRun::poll_gpu_pictures`]).
    fn pictures_if_due(
        &mut self,
        request: &ViewRequest,
        now: f64,
        playing: bool,
    ) -> Result<Option<Box<Pictures>>, RunError> {
        if let Some(ready) = self.ready_pictures.take() {
            return Ok(Some(ready));
        }
        if !self.pictures_due(request, now, playing) {
            return Ok(None);
        }
        let step = self.trainer.steps();
        let started = now_ms();
        let drawn = self
            .draw_pictures(request, now)
            .map_err(|message| RunError::new(Stage::Evaluation, message))?;
        self.pictured = Some((step, request.clone()));
        let Some(pictures) = drawn else {
            return Ok(None);
        };
        let cost = now_ms() - started;
        self.next_pictures_ms = now + PICTURES_INTERVAL_MS.max(cost / PICTURES_SHARE);
        Ok(Some(Box::new(Pictures {
            cost_ms: cost,
            ..pictures
        })))
    }

    /// Takes the GPU's pictures if they have arrived (for [`ActiveRun::pictures_if_due`]). A
    /// GPU that fails hands the pictures to the CPU, which draws them at the next chance.
    fn poll_gpu_pictures(&mut self, now: f64) {
        let Some(gpu) = &mut self.gpu_pictures else {
            return;
        };
        match gpu.poll() {
            None => {}
            Some(Ok((pictures, submitted_ms))) => {
                // Their cost is the wait from submission: the GPU's time, shared with the
                // steps queued before them; the trainer's thread went on training.
                let cost = now - submitted_ms;
                self.next_pictures_ms = now + PICTURES_INTERVAL_MS.max(cost / PICTURES_SHARE);
                self.ready_pictures = Some(Box::new(Pictures {
                    cost_ms: cost,
                    ..pictures
                }));
            }
            Some(Err(error)) => self.pictures_to_cpu(CpuReason::PicturesFailed(error.to_string())),
        }
    }

    /// The CPU draws the pictures from now on, for `reason` (the GPU failed or was lost).
    fn pictures_to_cpu(&mut self, reason: CpuReason) {
        log::warn!("flowlab: the views' pictures go to the CPU: {reason:?}");
        self.gpu_pictures = None;
        self.pictures_backend = Backend::Cpu(reason);
        self.pictured = None;
    }

    /// Whether `auto`'s race holds the CPU trainer while the GPU's catches up.
    fn race_holds_the_cpu(&self) -> bool {
        self.race
            .as_ref()
            .is_some_and(|(race, _)| race.holds_the_cpu())
    }

    /// Whether the GPU is drawing pictures.
    fn pictures_on_the_way(&self) -> bool {
        self.gpu_pictures.as_ref().is_some_and(GpuPictures::is_busy)
    }

    /// Whether new pictures are due (see [`ActiveRun::pictures_if_due`]).
    fn pictures_due(&self, request: &ViewRequest, now: f64, playing: bool) -> bool {
        if self.ready_pictures.is_some() {
            return true;
        }
        if self.pictures_on_the_way() {
            return false;
        }
        let wants_any = request.particles > 0
            || (request.resolution > 0 && (request.density || request.depth.is_some()))
            || request.field
            || !request.probes.is_empty();
        let same_request = self.pictured.as_ref().is_some_and(|(_, r)| r == request);
        let same_step = self
            .pictured
            .as_ref()
            .is_some_and(|(s, _)| *s == self.trainer.steps());
        wants_any && !(same_request && (same_step || (playing && now < self.next_pictures_ms)))
    }

    /// The pictures for `request`: drawn on the CPU, or `None` when the GPU draws their heavy
    /// parts (then they come from [`ActiveRun::poll_gpu_pictures`]).
    fn draw_pictures(
        &mut self,
        request: &ViewRequest,
        now: f64,
    ) -> Result<Option<Pictures>, String> {
        let layers = self.trainer.flow.layers.len();
        let resolution = request.resolution.min(MAX_RESOLUTION);
        let depth = request.depth.map(|d| d.min(layers));
        let mut pictures = Pictures {
            step: self.trainer.steps(),
            layers,
            labels: inspect::layer_labels(&self.trainer.flow),
            times: (0..=layers)
                .map_while(|d| inspect::depth_time(&self.trainer.flow, d))
                .collect(),
            view: request.view,
            resolution,
            depth,
            ..Pictures::default()
        };
        let particles = request.particles.min(MAX_PARTICLES);
        let traced = particles > 0 || request.grid_lines > 0;
        if traced {
            let tracer = Tracer::ensure(
                &mut self.tracer,
                self.seed,
                particles,
                request.grid_lines.min(64),
            )?;
            pictures.particles = tracer.particles;
            pictures.grid_lines = tracer.grid_lines;
        }
        let cells = if resolution > 0 && (depth.is_some() || request.density) {
            DensityGrid::cell_centres(request.view, resolution, resolution)
        } else {
            Vec::new()
        };
        self.draw_light_parts(&mut pictures, request, &cells)?;
        if let Some(gpu) = &mut self.gpu_pictures {
            let heavy = HeavyParts {
                trace_inputs: match &self.tracer {
                    Some(tracer) if traced => &tracer.inputs,
                    _ => &[],
                },
                cells: &cells,
                depth,
                density: request.density && self.adaptive.is_none(),
            };
            match gpu.submit(&self.trainer.flow, pictures.clone(), &heavy, now) {
                Ok(()) => return Ok(None),
                Err(error) => {
                    self.pictures_to_cpu(CpuReason::PicturesFailed(error.to_string()));
                }
            }
        }
        let flow = &self.trainer.flow;
        if let Some(tracer) = &mut self.tracer
            && traced
        {
            pictures.trace = tracer.trace_on_cpu(flow)?;
        }
        if !cells.is_empty() {
            if let Some(depth) = depth {
                let at_depth = self
                    .inspector
                    .depth_density(flow, depth, &cells)
                    .map_err(|e| e.to_string())?;
                if depth == layers && request.density && pictures.density.is_empty() {
                    pictures.density = at_depth.log_prob.clone();
                }
                pictures.depth_density = at_depth.log_prob;
                pictures.log_det = at_depth.layer_log_det;
            }
            if request.density && pictures.density.is_empty() {
                pictures.density = self
                    .inspector
                    .depth_density(flow, layers, &cells)
                    .map_err(|e| e.to_string())?
                    .log_prob;
            }
        }
        Ok(Some(pictures))
    }

    /// The parts of the pictures that stay on the CPU whoever draws the rest: a CNF's density
    /// by its adaptive solver, the probed points, the vector field.
    fn draw_light_parts(
        &mut self,
        pictures: &mut Pictures,
        request: &ViewRequest,
        cells: &[f32],
    ) -> Result<(), String> {
        let flow = &self.trainer.flow;
        if request.density
            && !cells.is_empty()
            && let Some(adaptive) = self.adaptive.as_mut()
        {
            // The learned density by the model's evaluation solver (the layer view's
            // intermediate densities stay on the training grid's RK4 segments).
            let out = adaptive
                .density(flow, cells, Tolerance::of(&flow.config.cnf))
                .map_err(|e| e.to_string())?;
            pictures.density = out.log_prob;
        }
        if !request.probes.is_empty() {
            let probe = match &mut self.probe {
                Some(probe) => probe,
                None => self
                    .probe
                    .insert(ProbeProgram::new(flow).map_err(|e| e.to_string())?),
            };
            for &point in request.probes.iter().take(MAX_PROBES) {
                pictures
                    .probes
                    .push(probe.run(flow, point).map_err(|e| e.to_string())?);
            }
        }
        if request.field {
            let time = pictures
                .depth
                .and_then(|d| inspect::depth_time(flow, d))
                .unwrap_or(0.0);
            let arrows = DensityGrid::cell_centres(request.view, FIELD_ARROWS, FIELD_ARROWS);
            if let Some(field) = self
                .inspector
                .field(flow, time, &arrows)
                .map_err(|e| e.to_string())?
            {
                pictures.field = field;
                pictures.field_time = Some(time);
                let probe = &self.noise[..(2 * SOLVER_PROBE_POINTS).min(self.noise.len())];
                pictures.solver_evaluations =
                    inspect::solver_evaluations(flow, probe).ok().flatten();
                pictures.trace_spread = trace_spread(flow, time, probe);
            }
        }
        Ok(())
    }
}

/// The trainer's loop state: feed it commands with [`TrainLoop::handle`], call
/// [`TrainLoop::tick`] as often as [`TrainLoop::is_training`] says, and send what
/// [`TrainLoop::drain`] returns.
pub struct TrainLoop {
    run: Option<ActiveRun>,
    playing: bool,
    outbox: Vec<FromTrainer>,
    report_now: bool,
    next_report_ms: f64,
    /// Shortest time between reports ([`ToTrainer::Pace`]).
    report_every_ms: f64,
    loss_sum: f64,
    loss_count: u32,
    events: Vec<TrainingEvent>,
    /// `(ms, step)` at recent reports, for the steps/s window.
    rate_window: VecDeque<(f64, u64)>,
    steps_per_sec: f64,
    train_secs: f64,
    /// What the views show ([`ToTrainer::Views`]).
    request: ViewRequest,
    /// Most steps per second ([`ToTrainer::Speed`]), and the `(ms, step)` the cap counts from.
    speed: Option<f64>,
    speed_anchor: Option<(f64, u64)>,
    /// Set by [`TrainerFault::Hang`]: the loop ignores everything and says nothing again.
    hung: bool,
    /// The GPU the host gave this loop (asked for once, by the first model that may use it).
    gpu: GpuAccess,
    /// A start that waits for the host's answer about the GPU ([`TrainLoop::set_gpu`]).
    waiting_for_gpu: Option<ToTrainer>,
    /// Single steps asked for ([`ToTrainer::Step`]) that a full GPU pipeline could not take
    /// yet.
    steps_wanted: u32,
    /// When the last tick of a GPU trainer began (its training time runs between ticks).
    last_tick_ms: Option<f64>,
    /// The share of the CPU's step time the GPU's must come within to win `auto`'s race
    /// ([`super::race::GPU_WIN_SHARE`]; [`TrainLoop::set_race_share`]).
    race_share: f64,
}

impl Default for TrainLoop {
    fn default() -> Self {
        Self {
            run: None,
            playing: false,
            outbox: Vec::new(),
            report_now: false,
            next_report_ms: 0.0,
            report_every_ms: super::protocol::REPORT_INTERVAL_MS,
            loss_sum: 0.0,
            loss_count: 0,
            events: Vec::new(),
            rate_window: VecDeque::new(),
            steps_per_sec: 0.0,
            train_secs: 0.0,
            request: ViewRequest::default(),
            speed: None,
            speed_anchor: None,
            hung: false,
            race_share: super::race::GPU_WIN_SHARE,
            gpu: GpuAccess::Unknown,
            waiting_for_gpu: None,
            steps_wanted: 0,
            last_tick_ms: None,
        }
    }
}

impl TrainLoop {
    /// An idle loop with no model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the host should keep calling [`TrainLoop::tick`]: while playing, while GPU
    /// steps are on their way, and while the GPU draws pictures.
    pub fn is_training(&self) -> bool {
        self.steps_pending()
            || !self.hung
                && self
                    .run
                    .as_ref()
                    .is_some_and(ActiveRun::pictures_on_the_way)
    }

    /// Whether steps are to be taken or on their way: playing, single steps asked for, GPU
    /// steps in flight.
    fn steps_pending(&self) -> bool {
        !self.hung
            && self.run.as_ref().is_some_and(|run| {
                self.playing
                    || self.steps_wanted > 0
                    || run.trainer.steps_in_flight() > 0
                    || run.race_holds_the_cpu()
            })
    }

    /// Sets the share of the CPU's step time the GPU's must come within to win `auto`'s race:
    /// a share of 1,000 lets an emulated GPU win, so that the tests can follow the hand-over.
    pub fn set_race_share(&mut self, share: f64) {
        self.race_share = share;
    }

    /// Whether a model waits for the host to say which GPU it may use: the host then asks
    /// for a device (a Web Worker asynchronously) and answers with [`TrainLoop::set_gpu`].
    pub fn needs_gpu(&self) -> bool {
        self.waiting_for_gpu.is_some() && matches!(self.gpu, GpuAccess::Unknown)
    }

    /// The host's GPU, or why there is none; starts the model that waited for it.
    pub fn set_gpu(&mut self, gpu: Result<crate::engine::gpu::GpuContext, String>) {
        self.gpu = match gpu {
            Ok(ctx) => GpuAccess::Ready(Box::new(ctx)),
            Err(why) => GpuAccess::Unavailable(why),
        };
        if let Some(start) = self.waiting_for_gpu.take() {
            self.handle(start);
        }
    }

    /// Milliseconds until the speed cap allows the next step (0 when uncapped or due): a host
    /// may sleep that long instead of calling [`TrainLoop::tick`] in a busy loop.
    pub fn idle_ms(&self) -> f64 {
        if let Some(run) = &self.run
            && (run.trainer.steps_in_flight() > 0
                || run.pictures_on_the_way()
                || run.race_holds_the_cpu())
            && (run.trainer.steps_in_flight() >= MAX_STEPS_AHEAD
                || !(self.playing || self.steps_wanted > 0))
        {
            // Nothing to do until the GPU's reports or pictures arrive: wait a little, don't
            // spin.
            return GPU_WAIT_MS;
        }
        let (Some(cap), Some((since, from)), Some(run)) =
            (self.speed, self.speed_anchor, &self.run)
        else {
            return 0.0;
        };
        let next = (run.trainer.steps() - from + 1) as f64;
        let due = since + next * 1e3 / cap;
        // Why also the next report: a capped trainer still reports (and draws pictures).
        (due - now_ms())
            .min(self.next_report_ms - now_ms())
            .max(0.0)
    }

    /// Whether the speed cap allows a step now.
    fn may_step(&mut self) -> bool {
        let (Some(cap), Some(run)) = (self.speed, &self.run) else {
            return true;
        };
        let now = now_ms();
        let step = run.trainer.steps();
        let (since, from) = *self.speed_anchor.get_or_insert((now, step));
        // The first step at once, then one every 1/cap seconds.
        let allowed = ((now - since) * cap / 1e3).floor() as u64 + 1;
        step - from < allowed
    }

    /// Applies a command from the UI.
    pub fn handle(&mut self, command: ToTrainer) {
        if self.hung {
            return;
        }
        match command {
            // A model that may train on the GPU waits for the host's device (asked once).
            ToTrainer::Start { ref spec, .. }
                if matches!(self.gpu, GpuAccess::Unknown)
                    && backend::cpu_regardless(
                        spec.backend,
                        spec.train.objective,
                        spec.train.batch,
                    )
                    .is_none() =>
            {
                self.run = None;
                self.waiting_for_gpu = Some(command);
                return;
            }
            ToTrainer::Start {
                generation,
                spec,
                playing,
            } => {
                self.run = None;
                self.steps_wanted = 0;
                self.playing = playing;
                self.loss_sum = 0.0;
                self.loss_count = 0;
                self.events.clear();
                self.rate_window.clear();
                self.steps_per_sec = 0.0;
                self.train_secs = 0.0;
                self.speed_anchor = None;
                match ActiveRun::build(generation, &spec, &self.gpu) {
                    Ok(run) => self.run = Some(run),
                    Err(error) => {
                        self.outbox.push(FromTrainer::Failed { generation, error });
                        return;
                    }
                }
            }
            ToTrainer::Play | ToTrainer::Pause
                if matches!(self.waiting_for_gpu, Some(ToTrainer::Start { .. })) =>
            {
                if let Some(ToTrainer::Start { playing, .. }) = &mut self.waiting_for_gpu {
                    *playing = command == ToTrainer::Play;
                }
                return;
            }
            ToTrainer::Play => {
                self.playing = true;
                self.speed_anchor = None;
            }
            ToTrainer::Pause => self.playing = false,
            ToTrainer::Views(request) => {
                crate::i18n::set(request.lang);
                self.request = request;
            }
            ToTrainer::Speed { steps_per_sec } => {
                self.speed = steps_per_sec.filter(|s| s.is_finite() && *s > 0.0);
                self.speed_anchor = None;
                return;
            }
            ToTrainer::Step => {
                self.playing = false;
                self.step_once();
            }
            ToTrainer::SendModel => {
                if let Some(run) = &self.run {
                    self.outbox.push(FromTrainer::Model {
                        generation: run.generation,
                        model: Box::new(crate::flows::SavedModel::of(&run.trainer.flow)),
                        step: run.trainer.steps(),
                    });
                }
                return;
            }
            ToTrainer::Fault(TrainerFault::Crash) => {
                // Why a real panic: the point is to prove the UI survives its trainer dying.
                panic!("a trainer crash injected by the test hook's inject_fault");
            }
            ToTrainer::Fault(TrainerFault::Hang) => {
                self.hung = true;
                return;
            }
            ToTrainer::Fault(TrainerFault::LoseGpu) => {
                if let GpuAccess::Ready(ctx) = &self.gpu {
                    ctx.destroy();
                }
                // The model's next GPU step finds it failed (see `watch_gpu`).
            }
            ToTrainer::Pace { report_every_ms } => {
                self.report_every_ms = if report_every_ms.is_finite() {
                    report_every_ms.clamp(10.0, 5000.0)
                } else {
                    super::protocol::REPORT_INTERVAL_MS
                };
                return;
            }
        }
        self.report_now = true;
        self.report_if_due();
    }

    /// Training steps for about [`TICK_MS`] (at least one) while training, then a report if
    /// one is due. Why several steps: a host yields to its event loop between ticks (so
    /// commands get in), and each yield costs a little; 8 ms keeps a command's wait short.
    pub fn tick(&mut self) {
        if self.hung {
            return;
        }
        self.advance_race();
        if !self.steps_pending() {
            self.last_tick_ms = None;
        }
        let started = now_ms();
        if self.run.as_ref().is_some_and(|r| r.trainer.is_pipelined()) {
            // The GPU trains between ticks too: its training time is the wall time since
            // the last tick (a pause longer than a frame or two is not training).
            if let Some(last) = self.last_tick_ms.replace(started) {
                self.train_secs += (started - last).min(GPU_TICK_GAP_MAX_MS) / 1e3;
            }
            self.collect_outcomes();
            while self.steps_wanted > 0 && self.submit_step() {
                self.steps_wanted -= 1;
            }
            while self.playing && self.may_step() && self.submit_step() {
                if now_ms() - started >= TICK_MS || self.report_now {
                    break;
                }
            }
            if let Some(run) = &mut self.run {
                run.trainer.flush();
            }
            self.collect_outcomes();
        } else {
            // Steps the GPU lost, run again on the CPU; single steps asked of a GPU that
            // failed before it could take them.
            self.collect_outcomes();
            let race_holds = |train: &Self| {
                train
                    .run
                    .as_ref()
                    .is_some_and(ActiveRun::race_holds_the_cpu)
            };
            while self.steps_wanted > 0 && !race_holds(self) {
                self.steps_wanted -= 1;
                self.step_once();
            }
            while self.playing && !race_holds(self) && self.may_step() {
                self.step_once();
                if now_ms() - started >= TICK_MS || self.report_now {
                    break;
                }
            }
        }
        self.report_if_due();
    }

    /// Says so when the GPU a model trained on failed and the CPU took over.
    fn watch_gpu(&mut self) {
        if let Some(run) = &mut self.run
            && matches!(run.backend, Backend::Gpu(_))
            && let Some(why) = run.trainer.gpu_failure().map(str::to_owned)
        {
            run.backend = Backend::Cpu(CpuReason::Lost(why.clone()));
            if run.gpu_pictures.is_some() {
                run.pictures_to_cpu(CpuReason::Lost(why.clone()));
            }
            // A later model must not be started on the lost device.
            self.gpu = GpuAccess::Unavailable(why);
            self.report_now = true;
        }
    }

    /// Submits one GPU step (see [`Trainer::submit_step`]); false when the pipeline is full.
    fn submit_step(&mut self) -> bool {
        self.run
            .as_mut()
            .is_some_and(|run| run.trainer.submit_step())
    }

    /// Takes the outcomes of the GPU steps whose reports arrived. While paused (stepping one
    /// at a time) each is reported on its own, as a CPU step is.
    fn collect_outcomes(&mut self) {
        let Some(run) = &mut self.run else {
            return;
        };
        let outcomes = run.trainer.poll_steps(false);
        let stepping = !self.playing && !outcomes.is_empty();
        for outcome in outcomes {
            if stepping {
                self.loss_sum = 0.0;
                self.loss_count = 0;
            }
            self.record(&outcome);
        }
        if stepping {
            self.report_now = true;
        }
    }

    fn record(&mut self, outcome: &crate::train::StepOutcome) {
        if outcome.loss.is_finite() {
            self.loss_sum += f64::from(outcome.loss);
            self.loss_count += 1;
        }
        if let Some(rollback) = outcome.rolled_back {
            self.events.push(TrainingEvent::RolledBack {
                step: rollback.step,
                reason: rollback.to_string(),
                lr: outcome.lr,
            });
        }
    }

    /// The messages to send, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, FromTrainer> {
        self.outbox.drain(..)
    }

    fn step_once(&mut self) {
        let Some(run) = &mut self.run else {
            return;
        };
        if run.trainer.is_pipelined() {
            // A single step on the GPU: reported when its outcome arrives; one the full
            // pipeline cannot take yet is submitted by a later tick.
            if !self.submit_step() {
                self.steps_wanted += 1;
            }
            if let Some(run) = &mut self.run {
                run.trainer.flush();
            }
            return;
        }
        if run.race_holds_the_cpu() {
            // The GPU's racer catches up first; a later tick takes this step.
            self.steps_wanted += 1;
            return;
        }
        let started = now_ms();
        let outcome = run.trainer.step();
        let ms = now_ms() - started;
        self.train_secs += ms / 1e3;
        if let Some((race, _)) = &mut run.race {
            race.cpu_stepped(ms, run.trainer.steps());
        }
        self.record(&outcome);
    }

    /// Moves `auto`'s race on, and hands the model to the GPU if the GPU won.
    fn advance_race(&mut self) {
        let Some(run) = &mut self.run else {
            return;
        };
        let Some((race, _)) = &mut run.race else {
            return;
        };
        let Some(verdict) = race.advance(now_ms(), self.race_share) else {
            return;
        };
        let Some((race, ctx)) = run.race.take() else {
            return;
        };
        run.backend = match verdict {
            Verdict::Gpu(times) => {
                run.trainer = race.into_gpu_trainer();
                run.race_times = Some(times);
                Backend::Gpu(ctx.describe())
            }
            Verdict::Cpu(times) => {
                run.race_times = Some(times);
                Backend::Cpu(CpuReason::Slower(times))
            }
            Verdict::GpuFailed(why) => Backend::Cpu(CpuReason::Failed(why)),
        };
        let device = matches!(run.backend, Backend::Gpu(_)).then_some(&ctx);
        (run.gpu_pictures, run.pictures_backend) =
            pictures_device(&run.backend, device, run.trainer.flow.layers.len());
        run.pictured = None;
        self.report_now = true;
    }

    fn report_if_due(&mut self) {
        self.watch_gpu();
        let now = now_ms();
        if let Some(run) = &mut self.run {
            run.poll_gpu_pictures(now);
        }
        // Why pictures too: a slow report pace (a software-rendered page) must not slow the
        // views' pictures, which are what the student watches.
        let pictures_due = self
            .run
            .as_ref()
            .is_some_and(|run| run.pictures_due(&self.request, now, self.playing));
        if !self.report_now && now < self.next_report_ms && !pictures_due {
            return;
        }
        self.report_now = false;
        let Some(run) = &mut self.run else {
            return;
        };
        let generation = run.generation;
        let mut sampling_ms = 0.0;
        let request = &self.request;
        let playing = self.playing;
        let evaluated = run.score_if_due(now, playing).and_then(|()| {
            let started = now_ms();
            let samples = run.fresh_samples()?;
            sampling_ms = now_ms() - started;
            let pictures = run.pictures_if_due(request, now, playing)?;
            Ok((samples, pictures))
        });
        let (samples, pictures) = match evaluated {
            Ok(evaluated) => evaluated,
            Err(error) => {
                self.run = None;
                self.outbox.push(FromTrainer::Failed { generation, error });
                return;
            }
        };
        self.next_report_ms = now + self.report_every_ms.max(sampling_ms / SAMPLING_SHARE);
        let step = run.trainer.steps();
        self.steps_per_sec = rate_over_last_second(
            &mut self.rate_window,
            self.playing,
            now,
            step,
            self.steps_per_sec,
        );
        let loss = (self.loss_count > 0).then(|| self.loss_sum / f64::from(self.loss_count));
        self.loss_sum = 0.0;
        self.loss_count = 0;
        self.outbox.push(FromTrainer::Report(Box::new(Report {
            generation,
            step,
            playing: self.playing,
            loss,
            steps_per_sec: if self.playing {
                self.steps_per_sec
            } else {
                0.0
            },
            train_secs: self.train_secs,
            n_params: run.n_params,
            rollbacks: run.trainer.rollbacks(),
            lr: run.trainer.scheduled_learning_rate(),
            test_nll: run.score.map(|s| s.nll),
            kl: run.score.and_then(|s| s.kl),
            held_out_log_q_p01: run.score.map(|s| s.log_q_p01).filter(|v| v.is_finite()),
            // Why NaN becomes f64::MAX: JSON has neither NaN nor infinity (serde writes null),
            // and a NaN round trip is the worst there is.
            inverse_error: run
                .inverse_error
                .map(|e| if e.is_finite() { e } else { f64::MAX }),
            scored_at_step: run.scored_at_step.unwrap_or(0),
            events: std::mem::take(&mut self.events),
            backend: Some(run.backend.clone()),
            pictures_backend: Some(run.pictures_backend.clone()),
            race: run.race_times,
            density_ms_per_1k: run.density_ms_per_1k,
            sample_ms_per_1k: run.sample_ms_per_1k,
            pictures,
            bulk_lengths: Vec::new(),
            origins: if samples.is_empty() {
                Vec::new()
            } else {
                run.origins_once()
            },
            samples,
        })));
    }
}

/// Steps per second over about the last [`RATE_WINDOW_MS`] of training, from the `(ms, step)` of recent
/// reports in `window`; `current` while there is not yet a second window.
fn rate_over_last_second(
    window: &mut VecDeque<(f64, u64)>,
    playing: bool,
    now: f64,
    step: u64,
    current: f64,
) -> f64 {
    if !playing {
        window.clear();
        return current;
    }
    window.push_back((now, step));
    while window
        .front()
        .is_some_and(|&(then, _)| now - then > RATE_WINDOW_MS && window.len() > 2)
    {
        window.pop_front();
    }
    match (window.front(), window.back()) {
        (Some(&(t0, s0)), Some(&(t1, s1))) if t1 > t0 => (s1 - s0) as f64 * 1e3 / (t1 - t0),
        _ => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::spec::Spec;

    fn start(spec: &Spec, playing: bool) -> ToTrainer {
        let target = spec.target.build().unwrap();
        ToTrainer::Start {
            generation: 1,
            spec: Box::new(spec.run_spec(&spec.model, target.as_ref())),
            playing,
        }
    }

    fn reports(train: &mut TrainLoop) -> Vec<Report> {
        train
            .drain()
            .map(|message| match message {
                FromTrainer::Report(report) => *report,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_paused_start_reports_the_untrained_model_with_its_score() {
        let mut train = TrainLoop::new();
        train.handle(start(&Spec::default(), false));
        assert!(!train.is_training());
        let reports = reports(&mut train);
        let [report] = &reports[..] else {
            panic!("{reports:?}")
        };
        assert_eq!((report.step, report.loss, report.playing), (0, None, false));
        assert_eq!(report.samples.len(), MODEL_SAMPLES * 2);
        assert!(report.samples.iter().all(|v| v.is_finite()));
        let nll = report.test_nll.unwrap();
        assert!(nll.is_finite() && nll > 0.0, "{nll}");
        // Two moons' density is known exactly, so the KL is reported too, and it is the NLL
        // less the target's entropy: smaller, and positive.
        let kl = report.kl.unwrap();
        assert!(kl > 0.0 && kl < nll, "KL {kl}, NLL {nll}");
        assert_eq!(report.n_params, 35_344, "the reference RealNVP");
    }

    #[test]
    fn steps_train_the_model_and_pause() {
        let mut train = TrainLoop::new();
        train.handle(start(&Spec::default(), false));
        let first = reports(&mut train).remove(0);
        for _ in 0..30 {
            train.handle(ToTrainer::Step);
        }
        let last = reports(&mut train).pop().unwrap();
        assert_eq!((last.step, last.playing), (30, false));
        assert!(last.loss.is_some_and(f64::is_finite));
        assert_eq!(last.scored_at_step, 30, "a paused model is scored at once");
        assert!(last.test_nll.unwrap() < first.test_nll.unwrap());
    }

    #[test]
    fn playing_trains_until_paused() {
        let mut train = TrainLoop::new();
        train.handle(start(&Spec::default(), true));
        let started = now_ms();
        while now_ms() - started < 300.0 {
            train.tick();
        }
        train.handle(ToTrainer::Pause);
        let all = reports(&mut train);
        let last = all.last().unwrap();
        assert!(!last.playing && last.step > 10, "{last:?}");
        assert!(all.len() >= 3, "reports while training: {}", all.len());
        let before = last.step;
        train.tick();
        train.tick();
        assert!(!train.is_training());
        assert!(reports(&mut train).iter().all(|r| r.step == before));
    }

    #[test]
    fn a_model_that_cannot_be_built_fails_with_its_stage() {
        let mut train = TrainLoop::new();
        let mut spec = Spec::default().run_spec(
            &Default::default(),
            crate::targets::by_name("moons").unwrap().as_ref(),
        );
        spec.flow.layers = 0;
        train.handle(ToTrainer::Start {
            generation: 9,
            spec: Box::new(spec),
            playing: true,
        });
        let messages: Vec<_> = train.drain().collect();
        let [FromTrainer::Failed { generation, error }] = &messages[..] else {
            panic!("{messages:?}")
        };
        assert_eq!((*generation, error.stage), (9, Stage::Model));
        assert!(error.message.contains("layers"), "{error}");
        assert!(!train.is_training());
    }
}
