//! Timings of one flow: a training step, sampling and density evaluation, single-threaded.
//! Shared by `cargo bench`, `flowlab bench` and `window.flowlab.bench` so all report the same
//! figure: each times a flow on [`bench_target`] with the objective the app would use there
//! ([`bench_objective`]).

use std::sync::Arc;

use super::{ObjectiveKind, TrainConfig, TrainError, Trainer};
use crate::engine::gpu::{GpuContext, GpuProgram};
use crate::flows::{Family, FlowConfig, FlowEvaluator, build_flow};
use crate::rng::Rng;
use crate::targets::Target;
use crate::targets::toy::{Toy, ToyKind};
use web_time::Instant;

/// What `bench` measured (medians, milliseconds).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BenchReport {
    /// Flow family name.
    pub flow: String,
    /// The objective the training step was timed with.
    pub objective: String,
    /// Samples per step.
    pub batch: usize,
    /// Trainable scalars.
    pub n_params: usize,
    /// One training step (forward + backward + Adam).
    pub train_ms_per_step: f64,
    /// Sampling `batch` points (base → data).
    pub sample_ms: f64,
    /// Log-density of `batch` points (data → base).
    pub density_ms: f64,
    /// [`inputs_fingerprint`] of the timed run: the same on every platform.
    pub inputs_fingerprint: String,
}

/// FNV-1a over the bits of the seed-`seed` flow's initial parameters and `batch` samples of
/// two moons drawn with that seed, in hex.
///
/// Why: the promise that one seed gives the same numbers natively and in wasm32 rests on the
/// RNG and the initialisers (libm, never the platform's maths); the browser test compares this
/// value with the one native tests pin. Training itself then agrees to rounding only: the
/// GEMM sums in a different order (and with FMA) natively.
pub fn inputs_fingerprint(
    config: &FlowConfig,
    seed: u64,
    batch: usize,
) -> Result<String, TrainError> {
    let flow = build_flow(config, 2, seed)?;
    let target = bench_target();
    let samples = target.sample(batch, &mut Rng::seed_from_u64(seed));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for v in flow.store.values().iter().chain(samples.iter().flatten()) {
        for byte in v.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The target every flow is timed on: the benchmark's two moons (`twomoons`, the peers' data
/// set).
pub fn bench_target() -> Box<dyn Target> {
    Box::new(Toy::new(ToyKind::TwoMoons))
}

/// The objective a flow is timed with: the one the app trains it with on [`bench_target`]
/// ([`ObjectiveKind::default_for`]), so the figure is the app's.
pub fn bench_objective(family: Family) -> ObjectiveKind {
    ObjectiveKind::default_for(family, bench_target().as_ref())
}

/// Times `steps` training steps (after `warmup`) and as many sample/density passes.
pub fn bench_flow(
    config: &FlowConfig,
    objective: ObjectiveKind,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<BenchReport, TrainError> {
    let (trainer, train_ms_per_step) =
        timed_trainer(config, objective, batch, warmup, steps, None)?;
    let n_params = trainer.flow.n_params();

    let flow = &trainer.flow;
    let mut evaluator = FlowEvaluator::new(flow, batch)?;
    let mut eps = vec![0.0f32; batch * 2];
    Rng::seed_from_u64(1).fill_normal(&mut eps);
    let passes = steps.clamp(5, 200);
    let (mut sample, mut density) = (Vec::new(), Vec::new());
    for _ in 0..passes {
        let t = Instant::now();
        let s = evaluator.sample(flow, &eps)?;
        sample.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        evaluator.density(flow, &s.x)?;
        density.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(BenchReport {
        flow: config.family.name().to_string(),
        objective: objective.name().to_string(),
        batch,
        n_params,
        train_ms_per_step,
        sample_ms: median(sample),
        density_ms: median(density),
        inputs_fingerprint: inputs_fingerprint(config, 0, batch)?,
    })
}

/// The median milliseconds of one training step under `objective` (after `warmup` steps), and
/// nothing else: how `cargo bench` times a CNF's flow-matching step beside its MLE step.
pub fn bench_train_step(
    config: &FlowConfig,
    objective: ObjectiveKind,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<f64, TrainError> {
    Ok(timed_trainer(config, objective, batch, warmup, steps, None)?.1)
}

/// One training step on a GPU beside the same step on the CPU (medians, milliseconds).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GpuBenchReport {
    /// Flow family name.
    pub flow: String,
    /// The objective both steps were timed with.
    pub objective: String,
    /// Samples per step.
    pub batch: usize,
    /// The adapter ([`GpuContext::describe`]).
    pub adapter: String,
    /// Whether it is a CPU emulation (lavapipe, SwiftShader): its figures are not a GPU's.
    pub software: bool,
    /// The CPU executor's step.
    pub cpu_ms_per_step: f64,
    /// The GPU executor's step as the app runs it: steps submitted ahead of their reports
    /// (at most [`MAX_STEPS_AHEAD`](super::trainer::MAX_STEPS_AHEAD)), the parameters read
    /// back every few steps; the mean over `steps`.
    pub gpu_ms_per_step: f64,
    /// The GPU executor's step when each waits for its own read-back (the CLI's `step()`):
    /// the median, latency included.
    pub gpu_ms_per_synced_step: f64,
    /// Launches per GPU step after fusion.
    pub dispatches_per_step: usize,
    /// The log-density of a 128² grid (16,384 points): CPU, GPU (with the read-back).
    pub density_128_ms: [f64; 2],
    /// The same on a 512² grid (262,144 points).
    pub density_512_ms: [f64; 2],
    /// 100,000 base samples pushed through every layer, each layer's points kept (the layer
    /// view's trace): CPU, GPU (with the read-back).
    pub push_100k_ms: [f64; 2],
}

/// Times `steps` training steps (after `warmup`) on the CPU and on `ctx`'s GPU.
pub fn bench_gpu(
    config: &FlowConfig,
    objective: ObjectiveKind,
    batch: usize,
    warmup: usize,
    steps: usize,
    ctx: &GpuContext,
) -> Result<GpuBenchReport, TrainError> {
    let (_, cpu_ms_per_step) = timed_trainer(config, objective, batch, warmup, steps, None)?;
    let (mut trainer, gpu_ms_per_synced_step) =
        timed_trainer(config, objective, batch, warmup, steps, Some(ctx))?;
    let started = Instant::now();
    let (mut submitted, mut done) = (0, 0);
    while done < steps {
        // Only the timed steps: the pipeline would take up to 24 more, timed for nothing.
        while submitted < steps && trainer.submit_step() {
            submitted += 1;
        }
        trainer.flush();
        done += trainer.poll_steps(false).len();
    }
    let gpu_ms_per_step = started.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
    let flow = &trainer.flow;
    let grid = |side: usize| {
        // The cell centres of a side² grid over [−4, 4]², the plots' square.
        let cells: Vec<f32> = (0..side * side)
            .flat_map(|i| {
                let at = |k: usize| -4.0 + 8.0 * (k as f32 + 0.5) / side as f32;
                [at(i % side), at(i / side)]
            })
            .collect();
        Ok::<_, TrainError>([
            time_cpu_density(flow, &cells)?,
            time_gpu_density(flow, ctx, &cells)?,
        ])
    };
    let density_128_ms = grid(128)?;
    let density_512_ms = grid(512)?;
    let mut eps = vec![0.0; 200_000];
    Rng::seed_from_u64(1).fill_normal(&mut eps);
    let push_100k_ms = [time_cpu_push(flow, &eps)?, time_gpu_push(flow, ctx, &eps)?];
    Ok(GpuBenchReport {
        flow: config.family.name().to_string(),
        objective: objective.name().to_string(),
        batch,
        adapter: ctx.describe(),
        software: ctx.is_software(),
        cpu_ms_per_step,
        gpu_ms_per_step,
        gpu_ms_per_synced_step,
        dispatches_per_step: trainer.gpu_dispatches_per_step().unwrap_or(0),
        density_128_ms,
        density_512_ms,
        push_100k_ms,
    })
}

/// Milliseconds to take the best of three: the first run of a program pays for its setup.
fn best_of_three(mut run: impl FnMut() -> Result<(), TrainError>) -> Result<f64, TrainError> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        run()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

fn time_cpu_density(flow: &crate::flows::Flow, points: &[f32]) -> Result<f64, TrainError> {
    let mut evaluator = FlowEvaluator::new(flow, 1024)?;
    best_of_three(|| {
        evaluator.density(flow, points)?;
        Ok(())
    })
}

fn time_cpu_push(flow: &crate::flows::Flow, eps: &[f32]) -> Result<f64, TrainError> {
    let mut evaluator = FlowEvaluator::new(flow, 1024)?;
    best_of_three(|| {
        evaluator.trace(flow, eps)?;
        Ok(())
    })
}

/// Points per GPU run of the evaluation benches. Why chunks: the whole 512² grid's buffers
/// exceed the 128 MiB one binding may cover on some devices (lavapipe).
const GPU_CHUNK: usize = 32_768;

/// The density graph over `GPU_CHUNK` points per run, each run's `log p` read back.
fn time_gpu_density(
    flow: &crate::flows::Flow,
    ctx: &GpuContext,
    points: &[f32],
) -> Result<f64, TrainError> {
    let chunk = GPU_CHUNK.min(points.len() / 2);
    let mut g = crate::engine::Graph::new();
    let x = g.input(chunk, 2);
    let log_prob = flow.density_graph(&mut g, x).log_prob;
    let mut program = GpuProgram::compile(ctx, &g, &flow.store, &[log_prob])?;
    best_of_three(|| {
        for part in points.chunks_exact(2 * chunk) {
            program.set_input(x, part)?;
            program.run();
            program.read(log_prob)?;
        }
        Ok(())
    })
}

/// The sampling graph over `GPU_CHUNK` draws per run, each layer's output read back.
fn time_gpu_push(
    flow: &crate::flows::Flow,
    ctx: &GpuContext,
    eps: &[f32],
) -> Result<f64, TrainError> {
    let chunk = GPU_CHUNK.min(eps.len() / 2);
    let mut g = crate::engine::Graph::new();
    let input = g.input(chunk, 2);
    let layers: Vec<_> = flow
        .sample_graph(&mut g, input)
        .layers
        .iter()
        .map(|l| l.y)
        .collect();
    let mut program = GpuProgram::compile(ctx, &g, &flow.store, &layers)?;
    best_of_three(|| {
        for part in eps.chunks(2 * chunk) {
            // The last, shorter chunk is padded with the first draws.
            let mut padded = part.to_vec();
            padded.extend_from_slice(&eps[..2 * chunk - part.len()]);
            program.set_input(input, &padded)?;
            program.run();
            for &y in &layers {
                program.read(y)?;
            }
        }
        Ok(())
    })
}

/// A trainer for `config` after `warmup + steps` steps, with the median milliseconds of the
/// timed ones. The target is [`bench_target`], except U1 for reverse KL, which two moons does
/// not admit ([`ObjectiveKind::applies`]); U1's energy is cheap and closed-form, so the figure
/// measures the flow.
fn timed_trainer(
    config: &FlowConfig,
    objective: ObjectiveKind,
    batch: usize,
    warmup: usize,
    steps: usize,
    gpu: Option<&GpuContext>,
) -> Result<(Trainer, f64), TrainError> {
    let flow = build_flow(config, 2, 0)?;
    let target = if objective == ObjectiveKind::ReverseKl {
        crate::targets::by_name("u1")?
    } else {
        bench_target()
    };
    let train = TrainConfig {
        batch,
        objective,
        held_out: 16,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new_on(flow, Arc::from(target), train, gpu)?;
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let t = Instant::now();
        trainer.step();
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok((trainer, median(times)))
}

/// Where one maximum-likelihood training step of `config` spends its time: seconds per op
/// kind and output shape, averaged over `runs` replays, largest first.
pub fn profile_flow(
    config: &FlowConfig,
    batch: usize,
    runs: usize,
) -> Result<Vec<(String, f64)>, TrainError> {
    let flow = build_flow(config, 2, 0)?;
    let objective = super::objective::mle(&flow, batch);
    let mut g = objective.graph;
    let params: Vec<_> = g.param_nodes().iter().map(|&(_, v)| v).collect();
    let grads = g.grad(objective.loss, &params);
    let mut outputs = vec![objective.loss];
    outputs.extend(grads);
    let mut program = crate::engine::CpuProgram::<f32>::compile(&g, &flow.store, &outputs)?;
    let mut totals: Vec<(String, f64)> = Vec::new();
    let runs = runs.max(1);
    for _ in 0..runs {
        for (kind, secs) in program.run_profiled(flow.store.values()) {
            match totals.iter_mut().find(|(k, _)| *k == kind) {
                Some(entry) => entry.1 += secs / runs as f64,
                None => totals.push((kind, secs / runs as f64)),
            }
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(totals)
}
