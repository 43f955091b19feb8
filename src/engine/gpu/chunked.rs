//! A graph over more points than one run of it takes, without waiting: the points go up in
//! runs of a fixed number of rows, each run's outputs come back by `map_async`, and the
//! caller polls until the last has arrived. What the views' pictures run on the GPU (a 256²
//! grid, 20,000 particles through every layer), where the page's threads may never block.

use super::{GpuContext, GpuError, GpuProgram};
use crate::engine::graph::{Graph, Var};
use crate::engine::params::ParamStore;

/// A graph with one input of `rows × dim` points, compiled for the GPU, evaluated over any
/// number of points in runs of `rows`.
#[derive(Debug)]
pub struct ChunkedProgram {
    program: GpuProgram,
    input: Var,
    outputs: Vec<Var>,
    rows: usize,
    dim: usize,
    pending: Option<Pending>,
}

/// An evaluation on its way.
#[derive(Debug)]
struct Pending {
    /// Points asked for.
    points: usize,
    /// Read-backs expected: one per output per run, run-major.
    expected: usize,
    received: Vec<Vec<f32>>,
}

impl ChunkedProgram {
    /// Compiles `graph`, whose input node `input` holds `rows × dim` points, so that
    /// `outputs` (each with one row per point) can be read back.
    pub fn compile(
        ctx: &GpuContext,
        graph: &Graph,
        store: &ParamStore,
        input: Var,
        outputs: &[Var],
    ) -> Result<Self, GpuError> {
        let shape = graph.shape(input);
        Ok(Self {
            program: GpuProgram::compile(ctx, graph, store, outputs)?,
            input,
            outputs: outputs.to_vec(),
            rows: shape.rows.max(1),
            dim: shape.cols.max(1),
            pending: None,
        })
    }

    /// Points per run.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether an evaluation is on its way.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts evaluating the graph at `points` (`n × dim`, row-major) with `params`: uploads
    /// both and submits every run with its read-backs. The last run's missing rows are
    /// zeros, and their outputs are dropped. An error while another evaluation is on its way.
    pub fn submit(&mut self, params: &[f32], points: &[f32]) -> Result<(), GpuError> {
        if self.pending.is_some() || self.program.reads_pending() > 0 {
            return Err(GpuError::Readback(
                "an evaluation is already on its way".into(),
            ));
        }
        if !points.len().is_multiple_of(self.dim) {
            return Err(GpuError::Validation(format!(
                "{} values are not whole points of dimension {}",
                points.len(),
                self.dim
            )));
        }
        self.program.set_params(params)?;
        let per_run = self.rows * self.dim;
        let mut padded = Vec::new();
        let mut runs = 0;
        for part in points.chunks(per_run) {
            let part = if part.len() == per_run {
                part
            } else {
                padded.clear();
                padded.extend_from_slice(part);
                padded.resize(per_run, 0.0);
                &padded
            };
            // Ordered on the queue: this run reads this upload, the next upload lands after.
            self.program.set_input(self.input, part)?;
            self.program.run();
            for &output in &self.outputs {
                self.program.read_var_later(output)?;
            }
            runs += 1;
        }
        self.pending = Some(Pending {
            points: points.len() / self.dim,
            expected: runs * self.outputs.len(),
            received: Vec::with_capacity(runs * self.outputs.len()),
        });
        Ok(())
    }

    /// The evaluation's outputs once every read-back has arrived, in `outputs` order, each
    /// with one row per point (`None` while some are on their way). Polls the device.
    pub fn poll(&mut self) -> Option<Result<Vec<Vec<f32>>, GpuError>> {
        let pending = self.pending.as_mut()?;
        for read in self.program.finished_reads(false) {
            match read {
                Ok(values) => pending.received.push(values),
                Err(error) => {
                    self.abandon();
                    return Some(Err(error));
                }
            }
        }
        if let Some(fault) = self.program.fault() {
            self.abandon();
            return Some(Err(GpuError::Readback(fault)));
        }
        if pending.received.len() < pending.expected {
            return None;
        }
        let pending = self.pending.take()?;
        let outputs = self.outputs.len();
        let mut joined = vec![Vec::new(); outputs];
        for (i, values) in pending.received.into_iter().enumerate() {
            joined[i % outputs].extend(values);
        }
        let runs = pending.expected / outputs.max(1);
        for values in &mut joined {
            // Each run gave `rows × cols` values of this output; keep the points' rows.
            let cols = values.len() / (self.rows * runs).max(1);
            values.truncate(pending.points * cols);
        }
        Some(Ok(joined))
    }

    /// Forgets the evaluation on its way after a failure. Its other read-backs may still
    /// land: [`Self::submit`] refuses to start another until they have.
    fn abandon(&mut self) {
        self.pending = None;
    }
}
