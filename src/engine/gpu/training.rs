//! A training step on the GPU: loss, gradient, its norm, Adam and the finite checks in one
//! compute pass, with the parameters and the step's report read back.
//!
//! Storage layout (P parameters, S scratch floats): `[0, P)` parameters, `[P, P+S)` scratch
//! (the gradient's sum of squares, the count of non-finite parameters after the update, the
//! loss, the sticky divergence flag, then the report ring: three floats per step, one slot
//! per step in flight), `[P+S, 3P+S)` Adam's m and v, `[3P+S, 4P+S)` the gradient (each
//! parameter's gradient node is computed in place there), `[4P+S, 7P+2S)` a snapshot of
//! everything before the gradient (the divergence guard's rollback point), then the graph's
//! buffers. Why scratch right after the parameters: one read-back returns the new parameters
//! and the reports of every step since the last one.
//!
//! Steps may run ahead of their reports ([`GpuGradientProgram::submit_step`]): once a step
//! diverges, the sticky flag makes the steps after it skip their update and the snapshot, so
//! whatever the CPU learns late, the rollback point is a state from before the divergence.

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
    /// Runs of the graph per step (micro-batches).
    parts: u32,
    adam_dispatch: usize,
    verdict_dispatch: usize,
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
        graph: Graph,
        loss: Var,
        store: &ParamStore,
        extra_outputs: &[Var],
    ) -> Result<Self, GpuError> {
        Self::in_parts(ctx, graph, loss, store, extra_outputs, 1)
    }

    /// [`Self::new`] for a step made of `parts` runs of `graph` (a micro-batch each, see
    /// [`Self::submit_part`]): their gradients and losses are summed on the GPU, and their
    /// mean takes one Adam step. Why: a batch whose buffers exceed what the device binds
    /// trains in parts of a batch that fits. For a loss that is a mean over the batch, the
    /// mean of the parts' gradients is the whole batch's, to rounding.
    pub fn in_parts(
        ctx: &GpuContext,
        mut graph: Graph,
        loss: Var,
        store: &ParamStore,
        extra_outputs: &[Var],
        parts: u32,
    ) -> Result<Self, GpuError> {
        let parts = parts.max(1);
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
        // The parts' sums after the snapshot: the gradient's, then the loss's.
        let sums = 7 * n + 2 * SCRATCH;
        let regions = Regions {
            reserved: 6 * n as usize + 2 * SCRATCH as usize + (n as usize + 1),
        };
        let mut program = GpuProgram::compile_with(ctx, &graph, store, &outputs, regions, &placed)?;
        let loss_at = program.offset_of(loss)?;
        let mut dispatches = std::mem::take(&mut program.dispatches);
        if parts > 1 {
            let len = n as usize;
            let mean = 1.0 / parts as f32;
            dispatches.extend([
                lower::copy(tag::PART_FIRST, grads, sums, len),
                lower::copy(tag::PART_FIRST, loss_at, sums + n, 1),
                lower::add(tag::PART_ADD, sums, grads, sums, len),
                lower::add(tag::PART_ADD, sums + n, loss_at, sums + n, 1),
                lower::scale(tag::PART_END, sums, grads, len, mean),
                lower::scale(tag::PART_END, sums + n, loss_at, 1, mean),
            ]);
        }
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
        // The count of non-finite parameters after the update, then the step's report.
        let verdict_dispatch = dispatches.len();
        let mut verdict = lower::reduce(0, code::REDUCE_VERDICT, 0, n, 1, scratch + 1);
        verdict.args.b = scratch + REPORTS;
        verdict.args.c = loss_at;
        verdict.args.k = scratch;
        dispatches.push(optimizer(verdict));
        let mut snapshot_copy = lower::copy(0, 0, snapshot, state_len);
        snapshot_copy.args.code = code::COPY_IF_HEALTHY;
        snapshot_copy.args.k = scratch + STICKY;
        snapshot_copy.node = tag::SNAPSHOT;
        let mut restore_copy = lower::copy(0, snapshot, 0, state_len);
        restore_copy.node = tag::RESTORE;
        dispatches.extend([snapshot_copy, restore_copy]);
        program.set_dispatches(dispatches)?;
        let mut trainer = Self {
            program,
            loss,
            n,
            parts,
            adam_dispatch,
            verdict_dispatch,
        };
        // The first rollback point: the state as compiled.
        trainer.snapshot();
        Ok(trainer)
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

    /// Submits one step at Adam step `t` without waiting, its report going to ring slot
    /// `slot` (of [`REPORT_SLOTS`]), followed by the snapshot when `snapshot` (skipped on
    /// the GPU if a step diverged since the last restore). Inputs written before this call
    /// are the step's: a queue write lands before the next submission.
    pub fn submit_step(&mut self, config: &AdamConfig, t: u64, slot: usize, snapshot: bool) {
        self.submit_part(self.parts - 1, config, t, slot, snapshot);
    }

    /// Runs per step (see [`Self::in_parts`]).
    pub fn parts(&self) -> u32 {
        self.parts
    }

    /// Submits part `part` (of [`Self::parts`]) of a step, its micro-batch's inputs written
    /// before; the last part ends the step as [`Self::submit_step`] does. Parts of a step
    /// are submitted in order, nothing else between them.
    pub fn submit_part(
        &mut self,
        part: u32,
        config: &AdamConfig,
        t: u64,
        slot: usize,
        snapshot: bool,
    ) {
        let (split, last) = (self.parts > 1, part + 1 >= self.parts);
        let accumulate = if part == 0 {
            tag::PART_FIRST
        } else {
            tag::PART_ADD
        };
        if last {
            self.set_adam(config, t);
            if let Some(mut args) = self
                .program
                .dispatches
                .get(self.verdict_dispatch)
                .map(|d| d.args)
            {
                args.b = self.n + REPORTS + 3 * (slot % REPORT_SLOTS) as u32;
                self.program.set_args(self.verdict_dispatch, args);
            }
        }
        self.program.submit(|node| {
            node <= tag::AFTER_GRAPH
                || (split && node == accumulate)
                || (last
                    && ((split && node == tag::PART_END)
                        || node == tag::OPTIMIZER
                        || (snapshot && node == tag::SNAPSHOT)))
        });
    }

    /// Requests the parameters and the report ring as they are after the steps submitted so
    /// far, with Adam's moments when `moments`; [`Self::finished_reads`] returns them once
    /// they arrive. Why the moments only sometimes: they double the read, and a trainer needs
    /// them only at its rollback points (to go on on the CPU should the GPU fail).
    pub fn read_later(&mut self, moments: bool) {
        let len = if moments { 3 * self.n } else { self.n } + SCRATCH;
        self.program.read_later(0, len as usize);
    }

    /// The device's loss or first uncaught error, if any (see [`GpuContext::fault`]).
    pub fn fault(&self) -> Option<String> {
        self.program.fault()
    }

    /// Read-backs requested and not yet returned.
    pub fn reads_pending(&self) -> usize {
        self.program.reads_pending()
    }

    /// The read-backs that arrived, oldest first; with `wait`, all of them (native only).
    pub fn finished_reads(&mut self, wait: bool) -> Vec<Result<GpuReadBack, GpuError>> {
        let n = self.n as usize;
        self.program
            .finished_reads(wait)
            .into_iter()
            .map(|r| r.map(|values| GpuReadBack { values, n }))
            .collect()
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
        self.program.launches_up_to(tag::OPTIMIZER)
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

/// Steps whose reports can be in flight at once: the report ring's slots.
pub const REPORT_SLOTS: usize = 64;
/// Where the sticky divergence flag and the report ring start in the scratch.
const STICKY: u32 = 3;
const REPORTS: u32 = 4;
/// Scratch floats after the parameters.
const SCRATCH: u32 = REPORTS + 3 * REPORT_SLOTS as u32;

/// The parameters and the report ring, as one read-back found them.
#[derive(Clone, Debug)]
pub struct GpuReadBack {
    values: Vec<f32>,
    n: usize,
}

impl GpuReadBack {
    /// The flat parameters.
    pub fn params(&self) -> &[f32] {
        &self.values[..self.n.min(self.values.len())]
    }

    /// Adam's first and second moments, when the read-back asked for them.
    pub fn moments(&self) -> Option<(&[f32], &[f32])> {
        let at = self.n + SCRATCH as usize;
        let m = self.values.get(at..at + self.n)?;
        let v = self.values.get(at + self.n..at + 2 * self.n)?;
        Some((m, v))
    }

    /// The report in ring slot `slot` (the step submitted with it).
    pub fn report(&self, slot: usize) -> GpuStepReport {
        let at = self.n + (REPORTS as usize) + 3 * (slot % REPORT_SLOTS);
        match self.values.get(at..at + 3) {
            Some(&[loss, squares, bad]) => GpuStepReport {
                loss,
                grad_norm: squares.sqrt(),
                non_finite_params: bad as u32,
            },
            _ => GpuStepReport {
                loss: f32::NAN,
                grad_norm: f32::NAN,
                non_finite_params: 0,
            },
        }
    }
}
