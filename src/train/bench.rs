//! Timings of one flow: a training step, sampling and density evaluation, single-threaded.
//! Shared by `cargo bench`, `flowlab bench` and `window.flowlab.bench` so all report the same
//! figure: each times a flow on [`bench_target`] with the objective the app would use there
//! ([`bench_objective`]).

use std::sync::Arc;

use super::{ObjectiveKind, TrainConfig, TrainError, Trainer};
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
    let (trainer, train_ms_per_step) = timed_trainer(config, objective, batch, warmup, steps)?;
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
    Ok(timed_trainer(config, objective, batch, warmup, steps)?.1)
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
    let mut trainer = Trainer::new(flow, Arc::from(target), train)?;
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
