//! `flowlab train` and `flowlab bench`: the same trainer and evaluator the app uses, headless.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use super::{BenchArgs, Objective, TrainArgs, save_png};
use crate::engine::optim::{AdamConfig, LrSchedule};
use crate::flows::cnf::Solver;
use crate::flows::cnf::adaptive::AdaptiveEvaluator;
use crate::flows::cnf::dopri::Tolerance;
use crate::flows::eval::RoundTrip;
use crate::flows::mlp::Activation;
use crate::flows::{Family, Flow, FlowConfig, FlowEvaluator, SavedModel, build_flow};
use crate::rng::Rng;
use crate::targets::Target;
use crate::train::bench::bench_flow;
use crate::train::{HeldOut, ObjectiveKind, TrainConfig, Trainer};
use crate::viz::DensityGrid;
use crate::viz::raster::density_image;
use crate::viz::trace::trace_picture;

/// Samples written to `samples.csv`.
const OUTPUT_SAMPLES: usize = 5000;
/// Side of the density picture in pixels.
const PICTURE: usize = 512;

/// What `flowlab train` writes to `metrics.json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainMetrics {
    /// Flow family.
    pub flow: String,
    /// Target name.
    pub target: String,
    /// Objective name.
    pub objective: String,
    /// Mean training loss over the last 100 steps (NLL for MLE, the reverse-KL estimate for
    /// reverse KL, the regression loss for flow matching).
    pub train_nll: f64,
    /// Negative mean log-likelihood of the `--test` points, or of 4096 fresh target samples.
    pub test_nll: f64,
    /// Where `test_nll` was measured.
    pub test_set: String,
    /// The solvers' work for `test_nll` (`--flow cnf --solver dopri`; planar, radial), else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_solver: Option<SolverMetrics>,
    /// `KL(p*‖q)` on the test set (normalised target density known), else absent.
    pub kl: Option<f64>,
    /// Steps taken.
    pub steps: u64,
    /// Wall time of the whole run in seconds (training only).
    pub wall_s: f64,
    /// Mean milliseconds per training step.
    pub train_ms_per_step: f64,
    /// Trainable scalars.
    pub n_params: usize,
    /// Divergences the guard rolled back.
    pub rollbacks: u32,
    /// Inverse health, for every family: the largest `‖f(f⁻¹(x)) − x‖` over the test points
    /// (`null` if any is NaN). Rounding-level (~1e-6) for closed-form inverses; larger where
    /// root solves or ODE integrations do not meet.
    pub max_inverse_error: Option<f32>,
    /// `(step, loss)` every 10 steps.
    pub loss_curve: Vec<(u64, f32)>,
}

/// What the numerical solvers did to evaluate `test_nll`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum SolverMetrics {
    /// A CNF scored by adaptive Dormand–Prince.
    DormandPrince {
        /// Relative tolerance.
        rtol: f32,
        /// Absolute tolerance.
        atol: f32,
        /// Steps accepted, summed over chunks of points.
        accepted_steps: usize,
        /// Steps rejected and retried smaller.
        rejected_steps: usize,
        /// Vector-field evaluations (the solver's cost).
        evaluations: usize,
    },
    /// Planar/radial layers inverted by root solves.
    RootSolve {
        /// The largest `Σ_k |f_k(f_k⁻¹(y)) − y|` over the test points (NaN if any is NaN).
        max_inverse_residual: f32,
    },
}

fn objective_kind(o: Objective) -> ObjectiveKind {
    match o {
        Objective::Mle => ObjectiveKind::Mle,
        Objective::ReverseKl => ObjectiveKind::ReverseKl,
        Objective::FlowMatching => ObjectiveKind::FlowMatching,
    }
}

fn flow_config(
    flow: &str,
    layers: Option<usize>,
    hidden: Option<usize>,
) -> anyhow::Result<FlowConfig> {
    let mut config = FlowConfig::new(Family::from_name(flow)?);
    if let Some(layers) = layers {
        config.layers = layers;
    }
    if let Some(hidden) = hidden {
        config.hidden = hidden;
    }
    config.validate()?;
    Ok(config)
}

/// The flow to train: a fresh one built from the flags, or the saved one `--init` names.
fn initial_flow(args: &TrainArgs) -> anyhow::Result<Flow> {
    let Some(path) = &args.init else {
        return Ok(build_flow(&train_flow_config(args)?, 2, args.seed)?);
    };
    if args.flow.is_some()
        || args.layers.is_some()
        || args.hidden.is_some()
        || args.activation.is_some()
        || args.learnable_base
        || args.cnf.any()
    {
        bail!(
            "--init {} brings its own architecture: leave out --flow, --layers, --hidden, --activation, --learnable-base and the CNF options",
            path.display()
        );
    }
    let bytes = crate::targets::read_limited(&path.to_string_lossy())?;
    let saved: SavedModel = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a model.json written by flowlab train",
            path.display()
        )
    })?;
    if saved.dim != 2 {
        bail!(
            "{} holds a {}-D model; targets are 2-D",
            path.display(),
            saved.dim
        );
    }
    saved
        .into_flow()
        .with_context(|| format!("{}: cannot rebuild the model", path.display()))
}

/// `flowlab train`'s architecture: [`flow_config`] plus the base and the CNF's options.
fn train_flow_config(args: &TrainArgs) -> anyhow::Result<FlowConfig> {
    let flow = args.flow.as_deref().unwrap_or(Family::DEFAULT.name());
    let mut config = flow_config(flow, args.layers, args.hidden)?;
    config.learnable_base = args.learnable_base;
    if let Some(activation) = &args.activation {
        config.activation = Activation::from_name(activation)
            .with_context(|| format!("unknown activation '{activation}'"))?;
    }
    args.cnf
        .apply(config.family == Family::Cnf, &mut config.cnf)?;
    config.validate()?;
    Ok(config)
}

/// `log q` of the test points, and what the solvers did: a CNF evaluated with Dormand–Prince
/// reports its steps; planar and radial flows their root solvers' worst residual.
fn test_log_density(
    flow: &Flow,
    points: &[f32],
    evaluator: &mut FlowEvaluator,
) -> anyhow::Result<(Vec<f32>, Option<SolverMetrics>)> {
    let options = &flow.config.cnf;
    if flow.config.family != Family::Cnf || options.solver != Solver::DormandPrince {
        let d = evaluator.density(flow, points)?;
        let solver = (!d.residual.is_empty()).then(|| SolverMetrics::RootSolve {
            // Why not f32::max: it would hide a NaN residual.
            max_inverse_residual: d.residual.iter().fold(0.0, |worst, &r| {
                if r.is_nan() || r > worst { r } else { worst }
            }),
        });
        return Ok((d.log_prob, solver));
    }
    let mut adaptive = AdaptiveEvaluator::new(flow, 1024)?;
    let out = adaptive.density(flow, points, Tolerance::of(options))?;
    let solver = SolverMetrics::DormandPrince {
        rtol: options.rtol,
        atol: options.atol,
        accepted_steps: out.stats.accepted,
        rejected_steps: out.stats.rejected,
        evaluations: out.stats.evaluations,
    };
    Ok((out.log_prob, Some(solver)))
}

/// Refuses flags no one could mean (steps, batch, learning rate, the architecture) before any
/// file is read or any work is done, naming the flag and its range.
pub fn check_train_args(args: &TrainArgs) -> anyhow::Result<()> {
    if !(1..=10_000_000).contains(&args.steps) {
        bail!("--steps must be between 1 and 10000000");
    }
    if !(1..=MAX_BATCH).contains(&args.batch) {
        bail!("--batch must be between 1 and {MAX_BATCH}");
    }
    if let Some(lr) = args.lr
        && !(lr.is_finite() && lr > 0.0 && lr <= 1.0)
    {
        bail!("--lr (the learning rate) must be in (0, 1]");
    }
    if let Some(seconds) = args.progress
        && !(seconds.is_finite() && seconds > 0.0)
    {
        bail!("--progress must be a positive number of seconds");
    }
    if args.init.is_none() {
        train_flow_config(args)?;
    }
    Ok(())
}

/// The family's Adam on `target`, with what `--lr`, `--warmup` and `--decay-steps` change.
fn adam_config(family: Family, target: &dyn Target, args: &TrainArgs) -> AdamConfig {
    let mut adam = family.info().adam_for(args.lr.map(|lr| lr as f32), target);
    if let Some(warmup) = args.warmup {
        adam.warmup_steps = warmup;
    }
    match args.decay_steps {
        Some(0) => adam.schedule = LrSchedule::Constant,
        Some(total_steps) => {
            adam.schedule = LrSchedule::Cosine {
                total_steps,
                final_fraction: 0.1,
            }
        }
        None => {}
    }
    adam
}

/// The largest batch the trainer takes (`Trainer::new` checks it too).
const MAX_BATCH: usize = 65_536;

/// `--progress`: a JSON line on stderr every few seconds.
struct Progress {
    every_s: f64,
    since: web_time::Instant,
    since_step: u64,
    loss_sum: f64,
    losses: u64,
}

impl Progress {
    fn every(seconds: f64) -> Self {
        Self {
            every_s: seconds,
            since: web_time::Instant::now(),
            since_step: 0,
            loss_sum: 0.0,
            losses: 0,
        }
    }

    fn step(&mut self, step: u64, loss: f32) {
        if loss.is_finite() {
            self.loss_sum += f64::from(loss);
            self.losses += 1;
        }
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed < self.every_s {
            return;
        }
        let line = serde_json::json!({
            "step": step,
            "steps_per_sec": (step - self.since_step) as f64 / elapsed,
            "loss": self.loss_sum / self.losses.max(1) as f64,
            "rss_mib": resident_mib(),
        });
        eprintln!("{line}");
        *self = Self {
            since_step: step,
            ..Self::every(self.every_s)
        };
    }
}

/// This process's resident memory in MiB, where the system says (Linux), else `None`.
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `flowlab train`; returns a one-line summary.
pub fn train(args: &TrainArgs) -> anyhow::Result<String> {
    check_train_args(args)?;
    let target: Arc<dyn Target> = Arc::from(crate::targets::load(&args.target)?);
    let test_points = match &args.test {
        Some(path) => {
            let bytes = crate::targets::read_limited(&path.to_string_lossy())?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
            Some(crate::targets::csv::parse_points(&text)?)
        }
        None => None,
    };
    let flow = initial_flow(args)?;
    let resumed = args.init.is_some();
    let n_params = flow.n_params();
    let family = flow.config.family;
    let objective = match args.objective {
        Some(o) => objective_kind(o),
        None => ObjectiveKind::default_for(family, target.as_ref()),
    };
    let config = TrainConfig {
        batch: args.batch,
        objective,
        adam: adam_config(family, target.as_ref(), args),
        seed: args.seed,
        held_out: 16,
        // A resumed model keeps its trained actnorm instead of re-fitting it to a batch.
        init_from_data: !resumed,
    };
    let mut trainer = Trainer::new(flow, target.clone(), config)?;

    let start = web_time::Instant::now();
    let mut curve = Vec::new();
    let mut recent = std::collections::VecDeque::with_capacity(100);
    let mut last_notice = None;
    let mut progress = args.progress.map(Progress::every);
    for _ in 0..args.steps {
        let outcome = trainer.step();
        if let Some(progress) = &mut progress {
            progress.step(trainer.steps(), outcome.loss);
        }
        if let Some(rollback) = outcome.rolled_back {
            eprintln!("warning: {rollback}");
            last_notice = Some(rollback);
        }
        if recent.len() == 100 {
            recent.pop_front();
        }
        recent.push_back(outcome.loss as f64);
        if trainer.steps() % 10 == 0 {
            curve.push((trainer.steps(), outcome.loss));
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    if trainer.rollbacks() > 0 && !trainer.flow.store.all_finite() {
        let why = last_notice.map(|r| r.to_string()).unwrap_or_default();
        bail!("training failed: {why}");
    }

    let (test, test_set) = match test_points {
        Some(points) => (
            HeldOut::from_points(points, target.as_ref()),
            args.test
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
        ),
        None => (
            HeldOut::sample(target.as_ref(), 4096, args.seed ^ 0x7E57),
            "4096 fresh target samples".into(),
        ),
    };
    let mut evaluator = FlowEvaluator::new(&trainer.flow, 4096)?;
    let (log_q, test_solver) = test_log_density(&trainer.flow, test.points(), &mut evaluator)?;
    let score = test.score_log_q(&log_q);
    let max_inverse_error =
        RoundTrip::new(&trainer.flow, 1024)?.max_error(&trainer.flow, test.points())?;
    let metrics = TrainMetrics {
        flow: trainer.flow.config.family.name().to_string(),
        target: target.name().to_string(),
        objective: trainer.config().objective.name().to_string(),
        train_nll: recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        test_nll: score.nll,
        test_set,
        test_solver,
        kl: score.kl,
        steps: trainer.steps(),
        wall_s,
        train_ms_per_step: wall_s * 1e3 / trainer.steps().max(1) as f64,
        n_params,
        rollbacks: trainer.rollbacks(),
        max_inverse_error: Some(max_inverse_error).filter(|e| !e.is_nan()),
        loss_curve: curve,
    };
    write_outputs(
        &args.out,
        &trainer.flow,
        target.as_ref(),
        &metrics,
        &mut evaluator,
        args.seed,
    )?;
    Ok(format!(
        "{} on {}: test NLL {:.4} nats, {} steps in {:.2} s ({:.3} ms/step); wrote {}",
        metrics.flow,
        metrics.target,
        metrics.test_nll,
        metrics.steps,
        metrics.wall_s,
        metrics.train_ms_per_step,
        args.out.display()
    ))
}

fn write_outputs(
    dir: &Path,
    flow: &Flow,
    target: &dyn Target,
    metrics: &TrainMetrics,
    evaluator: &mut FlowEvaluator,
    seed: u64,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(metrics)?;
    std::fs::write(dir.join("metrics.json"), json).context("cannot write metrics.json")?;
    let model = SavedModel::of(flow);
    std::fs::write(dir.join("model.json"), serde_json::to_string(&model)?)
        .context("cannot write model.json")?;

    let mut eps = vec![0.0f32; OUTPUT_SAMPLES * 2];
    Rng::seed_from_u64(seed).fork(0x5A).fill_normal(&mut eps);
    let samples = evaluator.sample(flow, &eps)?;
    let mut csv = String::from("x,y,log_q\n");
    for (p, l) in samples.x.chunks_exact(2).zip(&samples.log_prob) {
        let _ = writeln!(csv, "{},{},{}", p[0], p[1], l);
    }
    std::fs::write(dir.join("samples.csv"), csv).context("cannot write samples.csv")?;

    // The learned log-density over the target's view.
    let view = target.view();
    let grid_points = DensityGrid::cell_centres(view, PICTURE, PICTURE);
    let log_q = evaluator.density(flow, &grid_points)?.log_prob;
    let grid = DensityGrid::from_values(view, PICTURE, PICTURE, log_q);
    save_png(&density_image(&grid), &dir.join("density.png"))?;

    let trace = evaluator.trace(flow, &eps[..2000 * 2])?;
    save_png(&trace_picture(&trace, view), &dir.join("trace.png"))?;
    Ok(())
}

/// Runs `flowlab bench`; returns what to print.
pub fn bench(args: &BenchArgs) -> anyhow::Result<String> {
    let mut config = flow_config(&args.flow, args.layers, args.hidden)?;
    // The peers' reference models, whatever the family's default activation.
    config.activation = FlowConfig::reference(config.family).activation;
    if args.profile {
        let profile = crate::train::bench::profile_flow(&config, args.batch, 100)?;
        let total: f64 = profile.iter().map(|(_, s)| s).sum();
        let mut out = format!(
            "{} MLE step, batch {}: {:.3} ms in kernels\n",
            config.family.name(),
            args.batch,
            total * 1e3
        );
        for (kind, secs) in profile.iter().take(20) {
            let _ = writeln!(
                out,
                "{:>9.1} us {:>5.1}%  {kind}",
                secs * 1e6,
                100.0 * secs / total
            );
        }
        return Ok(out.trim_end().to_string());
    }
    let objective = crate::train::bench::bench_objective(config.family);
    if args.backend == "gpu" {
        let ctx = crate::engine::gpu::GpuContext::headless()?;
        // Why fewer steps than the CPU's 300: a GPU step's time varies little; and a software
        // adapter runs a workgroup's threads one after another, seconds a step (lavapipe took
        // 2.1-2.9 s at batch 512), so it gets the fewest.
        let steps = if ctx.is_software() {
            5
        } else {
            (2_000_000 / args.batch.max(1)).clamp(5, 100)
        };
        let report =
            crate::train::bench::bench_gpu(&config, objective, args.batch, 3, steps, &ctx)?;
        return Ok(if args.json {
            serde_json::to_string(&report)?
        } else {
            format!(
                "{} {} (batch {}): CPU {:.3} ms/step, GPU {:.3} ms/step in {} dispatches on {}{}",
                report.flow,
                report.objective,
                report.batch,
                report.cpu_ms_per_step,
                report.gpu_ms_per_step,
                report.dispatches_per_step,
                report.adapter,
                if report.software {
                    " (a CPU emulation: not a GPU's figure)"
                } else {
                    ""
                }
            )
        });
    }
    let report = bench_flow(&config, objective, args.batch, 30, 300)?;
    Ok(if args.json {
        serde_json::to_string(&report)?
    } else {
        format!(
            "{} (batch {}, {} parameters): train {:.3} ms/step ({}), sample {:.3} ms, density {:.3} ms",
            report.flow,
            report.batch,
            report.n_params,
            report.train_ms_per_step,
            report.objective,
            report.sample_ms,
            report.density_ms
        )
    })
}
