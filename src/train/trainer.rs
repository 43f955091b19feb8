//! The trainer: one compiled objective, Adam, a seeded data stream, held-out evaluation and a
//! divergence guard (non-finite loss, gradient or parameters → roll back to the last good
//! state, halve the learning rate, say so).

use std::sync::Arc;

use super::objective::{self, InputKind, NotApplicable, ObjectiveGraph, ObjectiveKind};
use crate::engine::gpu::{GpuContext, GpuError, GpuGradientProgram, GpuStepReport};
use crate::engine::{Adam, AdamConfig, ExecError, GradientProgram, Var};
use crate::flows::eval::FlowEvaluator;
use crate::flows::{Flow, FlowError};
use crate::rng::Rng;
use crate::targets::{Target, TargetError};

/// Settings of a training run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Samples per step.
    pub batch: usize,
    /// What to minimise.
    pub objective: ObjectiveKind,
    /// Optimizer settings.
    pub adam: AdamConfig,
    /// Seed of the data stream (the flow has its own).
    pub seed: u64,
    /// Size of the fixed held-out set (MLE).
    pub held_out: usize,
    /// Fit data-dependent initialisations (Glow's actnorm) to a first batch of target samples.
    /// Off for a model that was trained before and is resumed.
    #[serde(default = "yes")]
    pub init_from_data: bool,
}

fn yes() -> bool {
    true
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch: 512,
            objective: ObjectiveKind::Mle,
            adam: AdamConfig::default(),
            seed: 0,
            held_out: 4096,
            init_from_data: true,
        }
    }
}

/// Training could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The model's graph failed to compile.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The flow could not be built or loaded.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The target could not be built.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A setting is out of range.
    #[error("invalid training settings: {0}")]
    InvalidConfig(String),
    /// The objective does not apply to this flow and target.
    #[error(transparent)]
    NotApplicable(#[from] NotApplicable),
    /// Targets are 2-D; the flow is not.
    #[error("targets are 2-D; this flow is {dim}-D")]
    NotTwoDimensional {
        /// The flow's dimension.
        dim: usize,
    },
    /// The GPU executor could not compile or run the model.
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome {
    /// The objective's value (NLL for MLE, the KL estimate for reverse KL).
    pub loss: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Set when the divergence guard rolled this step back.
    pub rolled_back: Option<Rollback>,
}

/// The divergence guard rolled a step back: an event of training, not an error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rollback {
    /// The step that diverged.
    pub step: u64,
    /// What became non-finite.
    pub reason: RollbackReason,
    /// The halved learning rate training continues with.
    pub new_lr: f32,
}

/// What made the guard roll back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackReason {
    /// The loss the step minimised was NaN or infinite.
    NonFiniteLoss,
    /// A gradient was NaN or infinite.
    NonFiniteGradient,
    /// Adam's update left a parameter NaN or infinite.
    NonFiniteParameter,
}

impl std::fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RollbackReason::NonFiniteLoss => "the loss became non-finite",
            RollbackReason::NonFiniteGradient => "a gradient became non-finite",
            RollbackReason::NonFiniteParameter => "a parameter became non-finite",
        })
    }
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged at step {} ({}); rolled back to the last good state and halved the learning rate to {:.2e}",
            self.step, self.reason, self.new_lr
        )
    }
}

#[derive(Clone, Debug)]
struct Snapshot {
    params: Vec<f32>,
    adam: Adam,
}

/// Which executor steps the model.
enum Executor {
    Cpu(GradientProgram<f32>),
    /// Parameters, gradient and Adam's state live on the GPU; the inputs are drawn on the CPU
    /// (the same stream as the CPU path) into `inputs`, one host buffer per input node, and
    /// the parameters come back with each step's report.
    Gpu {
        program: Box<GpuGradientProgram>,
        inputs: Vec<Vec<f32>>,
        /// `at` and `log q` of a reverse-KL step, read back before the target's score.
        samples: (Vec<f32>, Vec<f32>),
        /// The parameters as last read back. Why: `Trainer::flow` is public, and a tool (or a
        /// test poisoning a parameter) may write it; a difference is uploaded before a step.
        synced: Vec<f32>,
    },
}

/// Trains one flow on one target.
pub struct Trainer {
    /// The model being trained.
    pub flow: Flow,
    target: Arc<dyn Target>,
    config: TrainConfig,
    executor: Executor,
    inputs: Vec<(Var, InputKind)>,
    samples: Option<(Var, Var)>,
    adam: Adam,
    rng: Rng,
    steps: u64,
    good: Snapshot,
    held_out: Vec<f32>,
    evaluator: Option<FlowEvaluator>,
    score: Vec<f32>,
    rollbacks: u32,
}

impl Trainer {
    /// Compiles the objective for `flow` on `target`, for the CPU.
    pub fn new(
        flow: Flow,
        target: Arc<dyn Target>,
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        Self::new_on(flow, target, config, None)
    }

    /// Compiles the objective for `flow` on `target`, for the GPU of `gpu` (the CPU if
    /// `None`). Both executors draw the same data and give the same numbers to rounding.
    pub fn new_on(
        mut flow: Flow,
        target: Arc<dyn Target>,
        config: TrainConfig,
        gpu: Option<&GpuContext>,
    ) -> Result<Self, TrainError> {
        if !(1..=65_536).contains(&config.batch) {
            return Err(TrainError::InvalidConfig(
                "batch size must be between 1 and 65536".into(),
            ));
        }
        let lr = config.adam.lr;
        if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
            return Err(TrainError::InvalidConfig(
                "learning rate must be in (0, 1]".into(),
            ));
        }
        if flow.dim != 2 {
            return Err(TrainError::NotTwoDimensional { dim: flow.dim });
        }
        config
            .objective
            .applies(flow.config.family, target.as_ref())?;
        let mut rng = Rng::seed_from_u64(config.seed);
        // Data-dependent initialisation (actnorm) sees one batch of target samples.
        if config.init_from_data {
            let init_batch = target.sample(config.batch.max(256), &mut rng.fork(7));
            flow.init_from_data(bytemuck::cast_slice(&init_batch))?;
        }
        let ObjectiveGraph {
            graph,
            loss,
            inputs,
            samples,
        } = match config.objective {
            ObjectiveKind::Mle => objective::mle(&flow, config.batch),
            ObjectiveKind::ReverseKl => objective::reverse_kl(&flow, config.batch),
            ObjectiveKind::FlowMatching => objective::flow_matching(&flow, config.batch).ok_or(
                NotApplicable::NotContinuous {
                    family: flow.config.family.name(),
                },
            )?,
        };
        let extra: Vec<Var> = samples.iter().flat_map(|&(x, l)| [x, l]).collect();
        let executor = match gpu {
            None => Executor::Cpu(GradientProgram::new(
                graph.clone(),
                loss,
                &flow.store,
                &extra,
            )?),
            Some(ctx) => {
                let host = inputs
                    .iter()
                    .map(|&(v, _)| vec![0.0; graph.shape(v).len()])
                    .collect();
                let program = GpuGradientProgram::new(ctx, graph, loss, &flow.store, &extra)?;
                Executor::Gpu {
                    program: Box::new(program),
                    inputs: host,
                    samples: (Vec::new(), Vec::new()),
                    synced: flow.store.values().to_vec(),
                }
            }
        };
        let held_out: Vec<[f32; 2]> = target.sample(config.held_out, &mut rng.fork(11));
        let adam = Adam::new(config.adam, flow.store.len());
        let good = Snapshot {
            params: flow.store.values().to_vec(),
            adam: adam.clone(),
        };
        rng = rng.fork(13);
        Ok(Self {
            score: vec![0.0; config.batch * 2],
            held_out: bytemuck::cast_slice(&held_out).to_vec(),
            flow,
            target,
            config,
            executor,
            inputs,
            samples,
            adam,
            rng,
            steps: 0,
            good,
            evaluator: None,
            rollbacks: 0,
        })
    }

    /// Steps taken (rolled-back steps count too: they consumed data).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Continues the step count from `step` (a run restarted from a checkpoint).
    pub fn resume_at(&mut self, step: u64) {
        self.steps = step;
    }

    /// Times the divergence guard rolled back.
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The target.
    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// The current learning rate setting (the guard halves it).
    pub fn learning_rate(&self) -> f32 {
        self.adam.config.lr
    }

    /// The rate the last step applied: the base rate through the warm-up and the decay.
    pub fn scheduled_learning_rate(&self) -> f32 {
        self.adam.config.lr_at(self.adam.steps().max(1))
    }

    /// Which executor steps the model: `"cpu"` or `"gpu"`.
    pub fn backend(&self) -> &'static str {
        match self.executor {
            Executor::Cpu(_) => "cpu",
            Executor::Gpu { .. } => "gpu",
        }
    }

    /// Dispatches per step on the GPU (`None` on the CPU).
    pub fn gpu_dispatches_per_step(&self) -> Option<usize> {
        match &self.executor {
            Executor::Cpu(_) => None,
            Executor::Gpu { program, .. } => Some(program.dispatches_per_step()),
        }
    }

    /// One optimisation step.
    pub fn step(&mut self) -> StepOutcome {
        self.steps += 1;
        match self.executor {
            Executor::Cpu(_) => self.cpu_step(),
            Executor::Gpu { .. } => self.gpu_step(),
        }
    }

    fn cpu_step(&mut self) -> StepOutcome {
        let Executor::Cpu(program) = &mut self.executor else {
            return self.roll_back(f32::NAN, RollbackReason::NonFiniteLoss);
        };
        let mut split_at = None;
        for &(v, kind) in &self.inputs {
            if let InputKind::TargetScore { at } = kind {
                split_at = Some((v, at));
            } else if let Ok(buf) = program.program_mut().input_mut(v) {
                draw(kind, self.target.as_ref(), &mut self.rng, buf);
            }
        }
        // `optimised` is the graph's loss; `loss` is what is reported. They differ for reverse
        // KL, whose graph minimises a surrogate with the KL's gradient.
        let (optimised, loss) = match split_at {
            Some((v, at)) => {
                program.run_until(self.flow.store.values(), v);
                let kl = {
                    let p = program.program();
                    match (self.samples, p.value(at).ok()) {
                        (Some((_, log_q)), Some(xs)) => match p.value(log_q) {
                            Ok(lq) => {
                                fill_target_score(self.target.as_ref(), xs, lq, &mut self.score)
                            }
                            Err(_) => f32::NAN,
                        },
                        _ => f32::NAN,
                    }
                };
                if let Ok(buf) = program.program_mut().input_mut(v) {
                    buf.copy_from_slice(&self.score);
                }
                (program.run_from(self.flow.store.values(), v), kl)
            }
            None => {
                let loss = program.run(self.flow.store.values());
                (loss, loss)
            }
        };
        let grads_finite = program.grads().iter().all(|g| g.is_finite());
        // Why the guard watches `optimised`, not `loss`: the KL estimate is legitimately +inf
        // while samples land where the target has no mass (off a checkerboard's squares),
        // though the step itself is sound; rolling back then would halve the rate forever.
        if !optimised.is_finite() || !grads_finite {
            let reason = if optimised.is_finite() {
                RollbackReason::NonFiniteGradient
            } else {
                RollbackReason::NonFiniteLoss
            };
            return self.roll_back(loss, reason);
        }
        let report = self
            .adam
            .step(self.flow.store.values_mut(), program.grads_mut());
        if !self.flow.store.all_finite() {
            return self.roll_back(loss, RollbackReason::NonFiniteParameter);
        }
        if self.steps.is_multiple_of(25) {
            self.good.params.copy_from_slice(self.flow.store.values());
            self.good.adam.clone_from(&self.adam);
        }
        StepOutcome {
            loss,
            grad_norm: report.grad_norm,
            lr: report.lr,
            rolled_back: None,
        }
    }

    /// The same step on the GPU: the same inputs from the same stream, the update and the
    /// checks on the GPU, the parameters and three floats back. A failing GPU reads as a
    /// non-finite loss: rolled back, and said.
    fn gpu_step(&mut self) -> StepOutcome {
        let Executor::Gpu {
            program,
            inputs,
            samples,
            synced,
        } = &mut self.executor
        else {
            return self.roll_back(f32::NAN, RollbackReason::NonFiniteLoss);
        };
        if self.flow.store.values() != synced.as_slice() {
            let _ = program.program_mut().set_params(self.flow.store.values());
        }
        let mut split_at = None;
        for (host, &(v, kind)) in inputs.iter_mut().zip(&self.inputs) {
            if let InputKind::TargetScore { at } = kind {
                split_at = Some((v, at));
            } else {
                draw(kind, self.target.as_ref(), &mut self.rng, host);
                let _ = program.program_mut().set_input(v, host);
            }
        }
        let t = self.adam.advance();
        let config = self.adam.config;
        let params = self.flow.store.values_mut();
        let result: Result<(GpuStepReport, f32), GpuError> = match split_at {
            Some((v, at)) => (|| {
                program.run_until(v);
                let gpu = program.program_mut();
                samples.0 = gpu.read(at)?;
                let kl = match self.samples {
                    Some((_, log_q)) => {
                        samples.1 = gpu.read(log_q)?;
                        fill_target_score(
                            self.target.as_ref(),
                            &samples.0,
                            &samples.1,
                            &mut self.score,
                        )
                    }
                    None => f32::NAN,
                };
                gpu.set_input(v, &self.score)?;
                let report = program.step_from_and_read(v, &config, t, params)?;
                Ok((report, kl))
            })(),
            None => program
                .step_and_read(&config, t, params)
                .map(|report| (report, report.loss)),
        };
        synced.copy_from_slice(self.flow.store.values());
        let (report, loss) = match result {
            Ok(r) => r,
            Err(e) => {
                log::warn!("GPU step failed: {e}");
                return self.roll_back(f32::NAN, RollbackReason::NonFiniteLoss);
            }
        };
        // The GPU skipped the update if the loss or the gradient was not finite.
        if !report.loss.is_finite() {
            return self.roll_back(loss, RollbackReason::NonFiniteLoss);
        }
        if !report.grad_norm.is_finite() {
            return self.roll_back(loss, RollbackReason::NonFiniteGradient);
        }
        if report.non_finite_params > 0 {
            return self.roll_back(loss, RollbackReason::NonFiniteParameter);
        }
        if self.steps.is_multiple_of(25) {
            program.snapshot();
            self.good.params.copy_from_slice(self.flow.store.values());
            self.good.adam.clone_from(&self.adam);
        }
        StepOutcome {
            loss,
            grad_norm: report.grad_norm,
            lr: config.lr_at(t),
            rolled_back: None,
        }
    }

    fn roll_back(&mut self, loss: f32, reason: RollbackReason) -> StepOutcome {
        self.rollbacks += 1;
        if let Executor::Gpu { program, .. } = &mut self.executor {
            program.restore();
        }
        self.flow
            .store
            .values_mut()
            .copy_from_slice(&self.good.params);
        let lr = self.adam.config.lr * 0.5;
        self.adam.clone_from(&self.good.adam);
        self.adam.config.lr = lr;
        self.good.adam.config.lr = lr;
        StepOutcome {
            loss,
            grad_norm: f32::NAN,
            lr,
            rolled_back: Some(Rollback {
                step: self.steps,
                reason,
                new_lr: lr,
            }),
        }
    }

    /// Negative mean log-likelihood of the fixed held-out set under the current model.
    pub fn held_out_nll(&mut self) -> Result<f32, ExecError> {
        let evaluator = match &mut self.evaluator {
            Some(e) => e,
            None => self.evaluator.insert(FlowEvaluator::new(&self.flow, 1024)?),
        };
        let d = evaluator.density(&self.flow, &self.held_out)?;
        let n = d.log_prob.len().max(1) as f64;
        Ok((-d.log_prob.iter().map(|&v| v as f64).sum::<f64>() / n) as f32)
    }
}

/// Fills `score` with `∇ log p̃*` at the samples `xs` (the target's score, clamped to ±1e4 so
/// one sample at a cliff cannot blow the step up) and returns the KL estimate
/// `mean(log q − log p*)` with the normalised target.
fn fill_target_score(target: &dyn Target, xs: &[f32], log_q: &[f32], score: &mut [f32]) -> f32 {
    const MAX_SCORE: f64 = 1e4;
    let mut kl = 0.0f64;
    for ((x, s), &q) in xs.chunks_exact(2).zip(score.chunks_exact_mut(2)).zip(log_q) {
        let p = [x[0] as f64, x[1] as f64];
        for (s, grad) in s.iter_mut().zip(target.grad_log_density(p)) {
            *s = grad.clamp(-MAX_SCORE, MAX_SCORE) as f32;
        }
        kl += q as f64 - target.normalized_log_density(p);
    }
    (kl / (xs.len() / 2).max(1) as f64) as f32
}

/// Draws one input of a step from the trainer's stream (the same on either executor).
fn draw(kind: InputKind, target: &dyn Target, rng: &mut Rng, buf: &mut [f32]) {
    match kind {
        InputKind::TargetSamples => target.sample_into(rng, bytemuck::cast_slice_mut(buf)),
        InputKind::StandardNormal => rng.fill_normal(buf),
        InputKind::Uniform => buf.iter_mut().for_each(|b| *b = rng.uniform_f32()),
        InputKind::Rademacher => buf.iter_mut().for_each(|b| *b = rng.sign() as f32),
        // Filled from the samples mid-step (`fill_target_score`).
        InputKind::TargetScore { .. } => {}
    }
}
