//! The trainer: one compiled objective, Adam, a seeded data stream, held-out evaluation and a
//! divergence guard (non-finite loss, gradient or parameters → roll back to the last good
//! state, halve the learning rate, say so).

use std::collections::VecDeque;
use std::sync::Arc;

use super::objective::{self, InputKind, NotApplicable, ObjectiveGraph, ObjectiveKind};
use crate::engine::gpu::{GpuContext, GpuError, GpuGradientProgram, GpuStepReport, REPORT_SLOTS};
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
        /// The input nodes of the graph the GPU runs, as `Trainer::inputs`: the same, or a
        /// micro-batch's when a step runs in parts (each gets its rows of `inputs`).
        part_inputs: Vec<Var>,
        /// `at` and `log q` of a reverse-KL step, read back before the target's score.
        samples: (Vec<f32>, Vec<f32>),
        /// The parameters as last read back. Why: `Trainer::flow` is public, and a tool (or a
        /// test poisoning a parameter) may write it; a difference is uploaded before a step.
        synced: Vec<f32>,
        /// The objective, kept to compile it for the CPU should the GPU fail.
        objective: Box<(crate::engine::Graph, Var, Vec<Var>)>,
    },
}

/// Most steps a GPU trainer runs ahead of their reports. Why this many: enough to keep the
/// GPU busy across a read-back's round trip (a frame or two in a browser), few enough that a
/// divergence wastes little (the steps after it are skipped, see [`Pipeline`]).
pub const MAX_STEPS_AHEAD: usize = 24;
/// Steps per read-back of the parameters and the reports.
const STEPS_PER_READ: usize = 4;
/// Steps between snapshots of the last good state (the divergence guard's rollback point).
const SNAPSHOT_EVERY: u64 = 25;
const _: () = assert!(MAX_STEPS_AHEAD < REPORT_SLOTS);

/// GPU steps submitted whose reports have not arrived.
#[derive(Debug, Default)]
struct Pipeline {
    in_flight: VecDeque<InFlight>,
    /// Steps submitted since the last read-back was requested.
    unread: usize,
    /// Bumped by each rollback. Why: the steps submitted after a diverged one, before the
    /// CPU knew, were skipped on the GPU (its sticky flag); their reports say nothing.
    epoch: u32,
    /// A snapshot step was submitted since the last read-back: the next one brings Adam's
    /// moments too.
    moments_wanted: bool,
}

#[derive(Debug)]
struct InFlight {
    step: u64,
    epoch: u32,
    lr: f32,
    /// The optimizer's state after this step, if it is a snapshot step: the CPU's half of
    /// the rollback point, kept once the step's report says it was healthy.
    snapshot: Option<Adam>,
    /// The last step a requested read-back covers.
    read_ends: bool,
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
    pipeline: Pipeline,
    /// Why the GPU was given up for the CPU while training, if it was.
    gpu_failure: Option<String>,
    /// The outcomes of the steps the GPU lost, run again on the CPU, not yet polled.
    recovered: Vec<StepOutcome>,
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
        let build = |flow: &Flow, batch: usize| -> Result<ObjectiveGraph, NotApplicable> {
            Ok(match config.objective {
                ObjectiveKind::Mle => objective::mle(flow, batch),
                ObjectiveKind::ReverseKl => objective::reverse_kl(flow, batch),
                ObjectiveKind::FlowMatching => {
                    objective::flow_matching(flow, batch).ok_or(NotApplicable::NotContinuous {
                        family: flow.config.family.name(),
                    })?
                }
            })
        };
        let ObjectiveGraph {
            graph,
            loss,
            inputs,
            samples,
        } = build(&flow, config.batch)?;
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
                // A batch too large for the device trains in parts (micro-batches), unless
                // a step waits for the CPU mid-graph (reverse KL's score).
                let splits = !inputs
                    .iter()
                    .any(|(_, kind)| matches!(kind, InputKind::TargetScore { .. }));
                let mut parts = 1usize;
                let (program, part_inputs) = loop {
                    let part = if parts == 1 {
                        ObjectiveGraph {
                            graph: graph.clone(),
                            loss,
                            inputs: inputs.clone(),
                            samples,
                        }
                    } else {
                        build(&flow, config.batch / parts)?
                    };
                    let part_extra: Vec<Var> =
                        part.samples.iter().flat_map(|&(x, l)| [x, l]).collect();
                    match GpuGradientProgram::in_parts(
                        ctx,
                        part.graph,
                        part.loss,
                        &flow.store,
                        &part_extra,
                        parts as u32,
                    ) {
                        Ok(program) => {
                            break (program, part.inputs.iter().map(|&(v, _)| v).collect());
                        }
                        Err(GpuError::TooLarge { needed, limit }) if splits => {
                            // Memory grows with the batch: at least this many parts, and
                            // a divisor of the batch.
                            let want = (parts as u64 * needed).div_ceil(limit.max(1)) as usize;
                            match (want.max(parts + 1)..=config.batch)
                                .find(|k| config.batch.is_multiple_of(*k))
                            {
                                Some(k) => parts = k,
                                None => return Err(GpuError::TooLarge { needed, limit }.into()),
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                };
                Executor::Gpu {
                    program: Box::new(program),
                    inputs: host,
                    part_inputs,
                    samples: (Vec::new(), Vec::new()),
                    synced: flow.store.values().to_vec(),
                    objective: Box::new((graph, loss, extra)),
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
            pipeline: Pipeline::default(),
            gpu_failure: None,
            recovered: Vec::new(),
        })
    }

    /// Steps taken (rolled-back steps count too: they consumed data), not counting those
    /// still on their way ([`Self::steps_in_flight`]).
    pub fn steps(&self) -> u64 {
        self.steps - self.pipeline.in_flight.len() as u64
    }

    /// GPU steps submitted whose outcome has not arrived.
    pub fn steps_in_flight(&self) -> usize {
        self.pipeline.in_flight.len()
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

    /// Micro-batches per step on the GPU (`None` on the CPU): more than one where the batch's
    /// buffers exceed what the device binds.
    pub fn gpu_parts(&self) -> Option<u32> {
        match &self.executor {
            Executor::Cpu(_) => None,
            Executor::Gpu { program, .. } => Some(program.parts()),
        }
    }

    /// Dispatches per step on the GPU (`None` on the CPU).
    pub fn gpu_dispatches_per_step(&self) -> Option<usize> {
        match &self.executor {
            Executor::Cpu(_) => None,
            Executor::Gpu { program, .. } => Some(program.dispatches_per_step()),
        }
    }

    /// Why the GPU was given up for the CPU while training (its device lost, or an error
    /// no one caught), if it was: training went on on the CPU from the last parameters the
    /// GPU returned.
    pub fn gpu_failure(&self) -> Option<&str> {
        self.gpu_failure.as_deref()
    }

    /// One optimisation step, waiting for its outcome (on the GPU, natively only: in a
    /// browser use [`Self::submit_step`] and [`Self::poll_steps`]).
    pub fn step(&mut self) -> StepOutcome {
        if self.is_pipelined() {
            self.submit_step();
            let outcomes = self.poll_steps(true);
            if let Some(outcome) = outcomes.into_iter().last() {
                return outcome;
            }
            if matches!(self.executor, Executor::Gpu { .. }) {
                return self.roll_back(self.steps, f32::NAN, RollbackReason::NonFiniteLoss);
            }
            // The GPU failed under the step: it runs on the CPU instead.
        }
        self.check_gpu();
        self.steps += 1;
        match self.executor {
            Executor::Cpu(_) => self.cpu_step(),
            Executor::Gpu { .. } => self.gpu_step(),
        }
    }

    /// Whether steps can run ahead of their outcomes ([`Self::submit_step`],
    /// [`Self::poll_steps`]): on the GPU, for objectives with no CPU work inside a step
    /// (reverse KL reads the target's score on the CPU between the halves of each step).
    pub fn is_pipelined(&self) -> bool {
        matches!(self.executor, Executor::Gpu { .. })
            && !self
                .inputs
                .iter()
                .any(|(_, kind)| matches!(kind, InputKind::TargetScore { .. }))
    }

    /// Submits one step without waiting for it, unless [`MAX_STEPS_AHEAD`] are on their way
    /// (or the trainer is not [pipelined](Self::is_pipelined)); returns whether it did. Its
    /// inputs are drawn now, from the same stream as the CPU's, and a read-back of its
    /// report is requested every few steps and after each snapshot step.
    pub fn submit_step(&mut self) -> bool {
        if !self.check_gpu()
            || !self.is_pipelined()
            || self.pipeline.in_flight.len() >= MAX_STEPS_AHEAD
        {
            return false;
        }
        let Executor::Gpu {
            program,
            inputs,
            part_inputs,
            synced,
            ..
        } = &mut self.executor
        else {
            return false;
        };
        if self.flow.store.values() != synced.as_slice() {
            // Written from outside since the last read-back (a tool, a test).
            let _ = program.program_mut().set_params(self.flow.store.values());
            synced.copy_from_slice(self.flow.store.values());
        }
        self.steps += 1;
        for (host, &(_, kind)) in inputs.iter_mut().zip(&self.inputs) {
            draw(kind, self.target.as_ref(), &mut self.rng, host);
        }
        let t = self.adam.advance();
        let snapshot = self.steps.is_multiple_of(SNAPSHOT_EVERY);
        self.pipeline.moments_wanted |= snapshot;
        let slot = (self.steps % REPORT_SLOTS as u64) as usize;
        // Part p takes rows `p·b .. (p+1)·b` of each input (row-major: one contiguous range).
        let parts = program.parts();
        for part in 0..parts {
            for (host, &v) in inputs.iter().zip(part_inputs.iter()) {
                let len = host.len() / parts as usize;
                let rows = &host[part as usize * len..(part as usize + 1) * len];
                let _ = program.program_mut().set_input(v, rows);
            }
            program.submit_part(part, &self.adam.config, t, slot, snapshot);
        }
        self.pipeline.in_flight.push_back(InFlight {
            step: self.steps,
            epoch: self.pipeline.epoch,
            lr: self.adam.config.lr_at(t),
            snapshot: snapshot.then(|| self.adam.clone()),
            read_ends: false,
        });
        self.pipeline.unread += 1;
        if snapshot || self.pipeline.unread >= STEPS_PER_READ {
            self.flush();
        }
        true
    }

    /// Requests the reports of every step submitted so far (a host calls this before it
    /// yields, so that no step waits for more steps to come).
    pub fn flush(&mut self) {
        let Executor::Gpu { program, .. } = &mut self.executor else {
            return;
        };
        if self.pipeline.unread > 0 {
            program.read_later(std::mem::take(&mut self.pipeline.moments_wanted));
            if let Some(last) = self.pipeline.in_flight.back_mut() {
                last.read_ends = true;
            }
            self.pipeline.unread = 0;
        }
    }

    /// The outcomes of the submitted steps whose reports have arrived, in order, with the
    /// guard applied: the first diverged step is rolled back (the GPU restores its snapshot,
    /// the rate is halved) and the steps after it, skipped on the GPU, report a NaN loss.
    /// The flow's parameters are those of the last step reported. With `wait`, waits for
    /// every step submitted (native only).
    pub fn poll_steps(&mut self, wait: bool) -> Vec<StepOutcome> {
        if wait {
            self.flush();
        }
        let Executor::Gpu { program, .. } = &mut self.executor else {
            return std::mem::take(&mut self.recovered);
        };
        let reads = program.finished_reads(wait);
        if !self.check_gpu() {
            // What a failing device read back says nothing about the steps: the CPU ran them.
            return std::mem::take(&mut self.recovered);
        }
        let Executor::Gpu { .. } = &self.executor else {
            return Vec::new();
        };
        let mut outcomes = Vec::new();
        for read in reads {
            // A read-back fails only with the device (in a browser its loss may be told
            // later): the CPU takes over the steps from here.
            let back = match read {
                Ok(back) => Some(back),
                Err(e) => {
                    self.fall_back_to_cpu(e.to_string());
                    outcomes.append(&mut self.recovered);
                    return outcomes;
                }
            };
            let mut covered = Vec::new();
            while let Some(step) = self.pipeline.in_flight.pop_front() {
                let ends = step.read_ends;
                covered.push(step);
                if ends {
                    break;
                }
            }
            // Why check the last step's epoch: a read requested before a rollback's restore
            // holds the skipped steps' parameters, not the restored ones.
            let current = covered
                .last()
                .is_some_and(|s| s.epoch == self.pipeline.epoch);
            let epoch = self.pipeline.epoch;
            for step in covered {
                if step.epoch != self.pipeline.epoch {
                    outcomes.push(StepOutcome {
                        loss: f32::NAN,
                        grad_norm: f32::NAN,
                        lr: self.adam.config.lr,
                        rolled_back: None,
                    });
                    continue;
                }
                let report = back
                    .as_ref()
                    .map(|b| b.report((step.step % REPORT_SLOTS as u64) as usize));
                let verdict = match report {
                    None => Err(RollbackReason::NonFiniteLoss),
                    Some(r) => verdict(&r),
                };
                match verdict {
                    Err(reason) => {
                        let loss = report.map_or(f32::NAN, |r| r.loss);
                        outcomes.push(self.roll_back(step.step, loss, reason));
                    }
                    Ok(report) => {
                        if let (Some(adam), Some(back)) = (step.snapshot, &back) {
                            self.good.params.copy_from_slice(back.params());
                            self.good.adam = adam;
                            if let Some((m, v)) = back.moments() {
                                let (good_m, good_v) = self.good.adam.moments_mut();
                                good_m.copy_from_slice(m);
                                good_v.copy_from_slice(v);
                            }
                        }
                        outcomes.push(StepOutcome {
                            loss: report.loss,
                            grad_norm: report.grad_norm,
                            lr: step.lr,
                            rolled_back: None,
                        });
                    }
                }
            }
            if let (Some(back), true) = (&back, current && epoch == self.pipeline.epoch)
                && back.params().len() == self.flow.store.len()
            {
                self.flow.store.values_mut().copy_from_slice(back.params());
                if let Executor::Gpu { synced, .. } = &mut self.executor {
                    synced.copy_from_slice(back.params());
                }
            }
        }
        outcomes
    }

    /// Whether the GPU (if it trains) is healthy; if its device was lost or reported an
    /// error no one caught, gives it up for the CPU first (see [`Self::fall_back_to_cpu`]).
    fn check_gpu(&mut self) -> bool {
        let fault = match &self.executor {
            Executor::Gpu { program, .. } => program.fault(),
            Executor::Cpu(_) => None,
        };
        match fault {
            Some(reason) => {
                self.fall_back_to_cpu(reason);
                false
            }
            None => true,
        }
    }

    /// Goes on on the CPU after the GPU failed: from the parameters of the last step the GPU
    /// reported healthy (or the last rollback point, should those not be finite), Adam's
    /// moments from the last rollback point, the step count of the last step reported. The
    /// steps on their way are run again on the CPU (with data drawn anew); their outcomes
    /// come out of the next [`Self::poll_steps`].
    fn fall_back_to_cpu(&mut self, reason: String) {
        let Executor::Gpu { objective, .. } = &self.executor else {
            return;
        };
        let (graph, loss, extra) = objective.as_ref();
        let program = match GradientProgram::new(graph.clone(), *loss, &self.flow.store, extra) {
            Ok(program) => program,
            Err(e) => {
                log::warn!("the GPU failed ({reason}) and the CPU cannot compile the model: {e}");
                return;
            }
        };
        log::warn!("training goes on on the CPU: {reason}");
        let lost = self.pipeline.in_flight.len() as u64;
        self.steps -= lost;
        if !self.flow.store.all_finite() {
            self.flow
                .store
                .values_mut()
                .copy_from_slice(&self.good.params);
        }
        let mut adam = self.good.adam.clone();
        adam.config = self.adam.config;
        adam.set_steps(self.adam.steps() - lost);
        self.adam = adam;
        self.pipeline = Pipeline {
            epoch: self.pipeline.epoch + 1,
            ..Pipeline::default()
        };
        self.executor = Executor::Cpu(program);
        self.gpu_failure = Some(reason);
        for _ in 0..lost {
            self.steps += 1;
            let outcome = self.cpu_step();
            self.recovered.push(outcome);
        }
    }

    fn cpu_step(&mut self) -> StepOutcome {
        let Executor::Cpu(program) = &mut self.executor else {
            return self.roll_back(self.steps, f32::NAN, RollbackReason::NonFiniteLoss);
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
            return self.roll_back(self.steps, loss, reason);
        }
        let report = self
            .adam
            .step(self.flow.store.values_mut(), program.grads_mut());
        if !self.flow.store.all_finite() {
            return self.roll_back(self.steps, loss, RollbackReason::NonFiniteParameter);
        }
        if self.steps.is_multiple_of(SNAPSHOT_EVERY) {
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
            ..
        } = &mut self.executor
        else {
            return self.roll_back(self.steps, f32::NAN, RollbackReason::NonFiniteLoss);
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
                if !self.check_gpu() {
                    // Lost with the device: the step runs again, on the CPU (its data drawn
                    // anew; Adam counts it once).
                    self.adam.set_steps(self.adam.steps() - 1);
                    return self.cpu_step();
                }
                return self.roll_back(self.steps, f32::NAN, RollbackReason::NonFiniteLoss);
            }
        };
        // The GPU skipped the update if the loss or the gradient was not finite.
        if let Err(reason) = verdict(&report) {
            return self.roll_back(self.steps, loss, reason);
        }
        if self.steps.is_multiple_of(SNAPSHOT_EVERY) {
            program.snapshot();
            self.good.params.copy_from_slice(self.flow.store.values());
            self.good.adam.clone_from(&self.adam);
            if let Ok((m, v)) = program.moments() {
                let (good_m, good_v) = self.good.adam.moments_mut();
                good_m.copy_from_slice(&m);
                good_v.copy_from_slice(&v);
            }
        }
        StepOutcome {
            loss,
            grad_norm: report.grad_norm,
            lr: config.lr_at(t),
            rolled_back: None,
        }
    }

    fn roll_back(&mut self, step: u64, loss: f32, reason: RollbackReason) -> StepOutcome {
        self.rollbacks += 1;
        self.pipeline.epoch += 1;
        self.flow
            .store
            .values_mut()
            .copy_from_slice(&self.good.params);
        if let Executor::Gpu {
            program, synced, ..
        } = &mut self.executor
        {
            program.restore();
            synced.copy_from_slice(&self.good.params);
        }
        let lr = self.adam.config.lr * 0.5;
        self.adam.clone_from(&self.good.adam);
        self.adam.config.lr = lr;
        self.good.adam.config.lr = lr;
        StepOutcome {
            loss,
            grad_norm: f32::NAN,
            lr,
            rolled_back: Some(Rollback {
                step,
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

/// What a GPU step's report says: healthy, or why the guard rolls it back.
fn verdict(report: &GpuStepReport) -> Result<GpuStepReport, RollbackReason> {
    if !report.loss.is_finite() {
        Err(RollbackReason::NonFiniteLoss)
    } else if !report.grad_norm.is_finite() {
        Err(RollbackReason::NonFiniteGradient)
    } else if report.non_finite_params > 0 {
        Err(RollbackReason::NonFiniteParameter)
    } else {
        Ok(*report)
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
