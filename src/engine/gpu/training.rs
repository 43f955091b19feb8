//! A training step on the GPU: loss, gradient, its norm, Adam and the finite checks in one
//! compute pass, with three floats read back.
//!
//! Storage layout (P parameters, S = 4 scratch floats): `[0, P)` parameters, `[P, P+S)` scratch
//! (the gradient's sum of squares, the count of non-finite parameters after the update, the
//! loss), `[P+S, 3P+S)` Adam's m and v, `[3P+S, 4P+S)` the gradient (each parameter's gradient
//! node is computed in place there), `[4P+S, 7P+2S)` a snapshot of everything before the
//! gradient (the divergence guard's rollback point), then the graph's buffers. Why scratch
//! right after the parameters: one read-back returns the new parameters and the step's report.

use super::lower::{self, Args, Dispatch, Kernel, code, groups_for, tag};
use super::program::Regions;
use super::{GpuContext, GpuError, GpuProgram};
use crate::engine::graph::{Graph, Var};
use crate::engine::optim::AdamConfig;
use crate::engine::params::ParamStore;

/// What one GPU step measured (read back after it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuStepReport {
    /// The graph's loss.
    pub loss: f32,
    /// The gradient's L2 norm (before clipping).
    pub grad_norm: f32,
    /// Parameters that are not finite after the update (the guard rolls those back).
    pub non_finite_params: u32,
}

/// A loss with its gradient and Adam, compiled for the GPU: the GPU's `GradientProgram`.
pub struct GpuGradientProgram {
    program: GpuProgram,
    loss: Var,
    n: u32,
    adam_dispatch: usize,
}

impl std::fmt::Debug for GpuGradientProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuGradientProgram")
            .field("program", &self.program)
            .field("params", &self.n)
            .finish()
    }
}

impl GpuGradientProgram {
    /// Differentiates `loss` with respect to every parameter `graph` uses and compiles the
    /// result with the optimizer after it; `extra_outputs` stay readable after each run.
    pub fn new(
        ctx: &GpuContext,
        mut graph: Graph,
        loss: Var,
        store: &ParamStore,
        extra_outputs: &[Var],
    ) -> Result<Self, GpuError> {
        let params = graph.param_nodes().to_vec();
        let vars: Vec<Var> = params.iter().map(|&(_, v)| v).collect();
        let grad_vars = graph.grad(loss, &vars);
        let mut outputs = vec![loss];
        outputs.extend(&grad_vars);
        outputs.extend(extra_outputs);
        let n = store.len() as u32;
        let scratch = n;
        let (m, v, grads) = (n + SCRATCH, 2 * n + SCRATCH, 3 * n + SCRATCH);
        let (snapshot, state_len) = (4 * n + SCRATCH, (3 * n + SCRATCH) as usize);
        let placed: Vec<(Var, u32)> = params
            .iter()
            .zip(&grad_vars)
            .map(|(&(id, _), &g)| (g, grads + store.spec(id).offset as u32))
            .collect();
        let regions = Regions {
            reserved: 6 * n as usize + 2 * SCRATCH as usize,
        };
        let mut program = GpuProgram::compile_with(ctx, &graph, store, &outputs, regions, &placed)?;
        let loss_at = program.offset_of(loss)?;
        let mut dispatches = std::mem::take(&mut program.dispatches);
        let optimizer = |mut d: Dispatch| {
            d.node = tag::OPTIMIZER;
            d
        };
        dispatches.push(optimizer(lower::reduce(
            0,
            code::REDUCE_SQUARES,
            grads,
            n,
            1,
            scratch,
        )));
        dispatches.push(optimizer(lower::copy(0, loss_at, scratch + 2, 1)));
        let adam_dispatch = dispatches.len();
        dispatches.push(Dispatch {
            kernel: Kernel::Adam,
            groups: groups_for(n as usize),
            args: Args {
                n,
                out: 0,
                a: m,
                b: v,
                c: grads,
                k: scratch,
                start: loss_at,
                ..Args::default()
            },
            node: tag::OPTIMIZER,
        });
        dispatches.push(optimizer(lower::reduce(
            0,
            code::REDUCE_NON_FINITE,
            0,
            n,
            1,
            scratch + 1,
        )));
        let mut snapshot_copy = lower::copy(0, 0, snapshot, state_len);
        snapshot_copy.node = tag::SNAPSHOT;
        let mut restore_copy = lower::copy(0, snapshot, 0, state_len);
        restore_copy.node = tag::RESTORE;
        dispatches.extend([snapshot_copy, restore_copy]);
        program.set_dispatches(dispatches)?;
        Ok(Self {
            program,
            loss,
            n,
            adam_dispatch,
        })
    }

    /// The underlying program (to fill inputs and read extra outputs).
    pub fn program_mut(&mut self) -> &mut GpuProgram {
        &mut self.program
    }

    /// Forward and backward only (no update); returns the loss and the flat gradient. For
    /// parity checks and tools: a training step is [`Self::step`].
    pub fn gradient(&mut self) -> Result<(f32, Vec<f32>), GpuError> {
        self.program.submit(|node| node <= tag::AFTER_GRAPH);
        let loss = self.program.read(self.loss)?;
        let grads = self
            .program
            .read_range(3 * self.n + SCRATCH, self.n as usize)?;
        Ok((loss.first().copied().unwrap_or(f32::NAN), grads))
    }

    /// One full step at Adam step `t` (1-based): forward, backward, norm, update, checks.
    /// An update with a non-finite loss or gradient is skipped on the GPU; the caller reads
    /// that from the report and restores the snapshot.
    pub fn step(&mut self, config: &AdamConfig, t: u64) -> Result<GpuStepReport, GpuError> {
        self.set_adam(config, t);
        self.program.submit(|node| node <= tag::OPTIMIZER);
        self.report()
    }

    /// [`Self::step`], and the parameters after it, in one read-back.
    pub fn step_and_read(
        &mut self,
        config: &AdamConfig,
        t: u64,
        params: &mut [f32],
    ) -> Result<GpuStepReport, GpuError> {
        self.set_adam(config, t);
        self.program.submit(|node| node <= tag::OPTIMIZER);
        self.report_and_params(params)
    }

    /// Finishes a step begun with [`Self::run_until`]; reads the parameters with the report.
    pub fn step_from_and_read(
        &mut self,
        v: Var,
        config: &AdamConfig,
        t: u64,
        params: &mut [f32],
    ) -> Result<GpuStepReport, GpuError> {
        self.set_adam(config, t);
        let v = v.index() as u32;
        self.program
            .submit(|node| node >= v && node <= tag::OPTIMIZER);
        self.report_and_params(params)
    }

    /// Runs the graph's nodes created before `v` (a reverse-KL step fills the target's score
    /// from the samples in between; see [`crate::engine::CpuProgram::run_until`]).
    pub fn run_until(&mut self, v: Var) {
        self.program.run_until(v);
    }

    /// Copies parameters and Adam's moments to the snapshot.
    pub fn snapshot(&mut self) {
        self.program.submit(|node| node == tag::SNAPSHOT);
    }

    /// Copies the snapshot back.
    pub fn restore(&mut self) {
        self.program.submit(|node| node == tag::RESTORE);
    }

    /// The parameters; waits for the GPU.
    pub fn params(&mut self) -> Result<Vec<f32>, GpuError> {
        self.program.params()
    }

    /// Replaces the parameters and clears Adam's moments (a rebuilt or resumed model).
    pub fn set_params(&mut self, params: &[f32]) -> Result<(), GpuError> {
        self.program.set_params(params)?;
        self.program
            .write(self.n + SCRATCH, &vec![0.0; 2 * self.n as usize]);
        Ok(())
    }

    /// Adam's first and second moments; waits for the GPU.
    pub fn moments(&mut self) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let both = self
            .program
            .read_range(self.n + SCRATCH, 2 * self.n as usize)?;
        let (m, v) = both.split_at(self.n as usize);
        Ok((m.to_vec(), v.to_vec()))
    }

    /// Dispatches per training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.program
            .dispatches
            .iter()
            .filter(|d| d.node <= tag::OPTIMIZER)
            .count()
    }

    fn set_adam(&mut self, config: &AdamConfig, t: u64) {
        let s = config.scalars(t);
        let Some(mut args) = self
            .program
            .dispatches
            .get(self.adam_dispatch)
            .map(|d| d.args)
        else {
            return;
        };
        args.f = [
            s.step_size,
            s.inv_sqrt_bias2,
            config.eps,
            s.decay,
            config.beta1,
            config.beta2,
            config.clip_norm.unwrap_or(0.0),
            0.0,
        ];
        self.program.set_args(self.adam_dispatch, args);
    }

    fn report(&mut self) -> Result<GpuStepReport, GpuError> {
        let scratch = self.program.read_range(self.n, 3)?;
        Ok(Self::parse_report(&scratch))
    }

    fn report_and_params(&mut self, params: &mut [f32]) -> Result<GpuStepReport, GpuError> {
        let n = self.n as usize;
        let values = self.program.read_range(0, n + 3)?;
        if params.len() == n {
            params.copy_from_slice(&values[..n]);
        }
        Ok(Self::parse_report(&values[n..]))
    }

    fn parse_report(scratch: &[f32]) -> GpuStepReport {
        GpuStepReport {
            loss: scratch[2],
            grad_norm: scratch[0].sqrt(),
            non_finite_params: scratch[1] as u32,
        }
    }
}

/// Scratch floats after the parameters.
const SCRATCH: u32 = 4;
