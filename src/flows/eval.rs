//! Evaluating a flow outside training: densities on many points, samples, and the
//! layer-by-layer trace the app animates. Programs are compiled once per chunk size and
//! reused; any number of points is processed in chunks.

use super::Flow;
use crate::engine::{CpuProgram, ExecError, Graph, Var};

/// Evaluation failed (an invalid graph; never expected for a flow that built).
pub type EvalError = ExecError;

/// The trace of a batch through the flow in the sample direction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// `points[i]` is the batch after `i` layers (`points[0]` = base samples), row-major `n×dim`.
    pub points: Vec<Vec<f32>>,
    /// `log_det[i]` is layer `i`'s `log|det ∂f_i/∂·|` per sample (`n` values).
    pub log_det: Vec<Vec<f32>>,
    /// Layer names, for labels.
    pub kinds: Vec<&'static str>,
}

struct DensityProgram {
    program: CpuProgram<f32>,
    x: Var,
    log_prob: Var,
    z: Var,
    residual: Option<Var>,
}

struct SampleProgram {
    program: CpuProgram<f32>,
    nodes: SampleNodes,
}

struct SampleNodes {
    eps: Var,
    x: Var,
    log_prob: Var,
    layers: Vec<(Var, Var)>,
    base: Var,
}

/// Compiled evaluation programs for one flow architecture.
pub struct FlowEvaluator {
    dim: usize,
    density: DensityProgram,
    sample: SampleProgram,
}

/// Densities of many points.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Densities {
    /// `log p(x)` per point.
    pub log_prob: Vec<f32>,
    /// The base point `f⁻¹(x)` per point, row-major.
    pub z: Vec<f32>,
    /// The root solvers' residual per point (see [`super::DensityGraph::residual`]); empty
    /// for flows whose inverses are closed-form.
    pub residual: Vec<f32>,
}

/// Samples with their log-densities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Points, row-major `n×dim`.
    pub x: Vec<f32>,
    /// `log q(x)` per point.
    pub log_prob: Vec<f32>,
}

impl FlowEvaluator {
    /// Compiles density and sampling programs processing `chunk` points at a time.
    pub fn new(flow: &Flow, chunk: usize) -> Result<Self, EvalError> {
        let chunk = chunk.max(1);
        let dim = flow.dim;
        let mut g = Graph::new();
        let x = g.input(chunk, dim);
        let d = flow.density_graph(&mut g, x);
        let mut outputs = vec![d.log_prob, d.z];
        outputs.extend(d.residual);
        let program = CpuProgram::compile(&g, &flow.store, &outputs)?;
        let density = DensityProgram {
            program,
            x,
            log_prob: d.log_prob,
            z: d.z,
            residual: d.residual,
        };

        let mut g = Graph::new();
        let eps = g.input(chunk, dim);
        let s = flow.sample_graph(&mut g, eps);
        let layers: Vec<(Var, Var)> = s.layers.iter().map(|l| (l.y, l.log_det)).collect();
        let base = match s.layers.first() {
            Some(_) => flow.base.sample(&mut g, eps).0,
            None => s.x,
        };
        let mut outputs = vec![s.x, s.log_prob, base];
        outputs.extend(layers.iter().flat_map(|&(y, l)| [y, l]));
        let program = CpuProgram::compile(&g, &flow.store, &outputs)?;
        let sample = SampleProgram {
            program,
            nodes: SampleNodes {
                eps,
                x: s.x,
                log_prob: s.log_prob,
                layers,
                base,
            },
        };
        Ok(Self {
            dim,
            density,
            sample,
        })
    }

    /// `log p(x)` and `f⁻¹(x)` for every row of `points` (`n×dim`, row-major).
    pub fn density(&mut self, flow: &Flow, points: &[f32]) -> Result<Densities, EvalError> {
        let mut out = Densities::default();
        let dim = self.dim;
        let d = &mut self.density;
        let params = flow.store.values();
        run_in_chunks(&mut d.program, d.x, dim, params, points, |p, n| {
            out.log_prob.extend_from_slice(&p.value(d.log_prob)?[..n]);
            out.z.extend_from_slice(&p.value(d.z)?[..n * dim]);
            if let Some(r) = d.residual {
                out.residual.extend_from_slice(&p.value(r)?[..n]);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `visit(i, log p(x_i))` for every row `i` of `points` (`n×dim`, row-major), in
    /// order. Allocates nothing: for scores computed often (the app's held-out NLL).
    pub fn for_each_log_prob(
        &mut self,
        flow: &Flow,
        points: &[f32],
        mut visit: impl FnMut(usize, f32),
    ) -> Result<(), EvalError> {
        let (d, dim) = (&mut self.density, self.dim);
        let params = flow.store.values();
        let mut first = 0;
        run_in_chunks(&mut d.program, d.x, dim, params, points, |p, n| {
            for (i, &log_prob) in p.value(d.log_prob)?[..n].iter().enumerate() {
                visit(first + i, log_prob);
            }
            first += n;
            Ok(())
        })
    }

    /// Pushes standard-normal draws `eps` (`n×dim`) through the flow.
    pub fn sample(&mut self, flow: &Flow, eps: &[f32]) -> Result<Samples, EvalError> {
        let mut out = Samples::default();
        let dim = self.dim;
        self.for_each_sample_chunk(flow, eps, |p, s, n| {
            out.x.extend_from_slice(&p.value(s.x)?[..n * dim]);
            out.log_prob.extend_from_slice(&p.value(s.log_prob)?[..n]);
            Ok(())
        })?;
        Ok(out)
    }

    /// The layer-by-layer trace of standard-normal draws `eps` (`n×dim`).
    pub fn trace(&mut self, flow: &Flow, eps: &[f32]) -> Result<Trace, EvalError> {
        let layers = self.sample.nodes.layers.len();
        let dim = self.dim;
        let mut t = Trace {
            points: vec![Vec::new(); layers + 1],
            log_det: vec![Vec::new(); layers],
            kinds: flow.layers.iter().map(|l| l.kind()).collect(),
        };
        self.for_each_sample_chunk(flow, eps, |p, s, n| {
            t.points[0].extend_from_slice(&p.value(s.base)?[..n * dim]);
            for (i, &(y, l)) in s.layers.iter().enumerate() {
                t.points[i + 1].extend_from_slice(&p.value(y)?[..n * dim]);
                t.log_det[i].extend_from_slice(&p.value(l)?[..n]);
            }
            Ok(())
        })?;
        Ok(t)
    }

    fn for_each_sample_chunk(
        &mut self,
        flow: &Flow,
        eps: &[f32],
        mut take: impl FnMut(&CpuProgram<f32>, &SampleNodes, usize) -> Result<(), EvalError>,
    ) -> Result<(), EvalError> {
        let SampleProgram { program, nodes } = &mut self.sample;
        let params = flow.store.values();
        run_in_chunks(program, nodes.eps, self.dim, params, eps, |p, n| {
            take(p, nodes, n)
        })
    }
}

/// Runs `program` over `points` (`n×dim`, row-major) a chunk at a time: its input node `input`
/// holds one chunk (`chunk × dim`), the last chunk is padded with zeros, and after each run
/// `take(program, rows)` reads the outputs of that chunk's `rows` real points, in order.
/// Above this round-trip error (data units; the views span about ±4) a flow's inverse is
/// flagged as unreliable: its samples and its densities no longer describe the same
/// distribution. Closed-form inverses stay near 1e-6, converged root solves and RK4 round
/// trips near 1e-4.
pub const ROUND_TRIP_TOLERANCE: f32 = 1e-2;

/// The round trip `x → f⁻¹(x) → f(f⁻¹(x))` compiled for one architecture (see
/// [`Flow::round_trip_graph`]): the inverse-health check of `flowlab train` and the app.
pub struct RoundTrip {
    program: CpuProgram<f32>,
    x: Var,
    squared_error: Var,
    dim: usize,
}

impl RoundTrip {
    /// Compiles the round trip for `chunk` points at a time.
    pub fn new(flow: &Flow, chunk: usize) -> Result<Self, EvalError> {
        let mut g = Graph::new();
        let x = g.input(chunk.max(1), flow.dim);
        let squared_error = flow.round_trip_graph(&mut g, x);
        let program = CpuProgram::compile(&g, &flow.store, &[squared_error])?;
        Ok(Self {
            program,
            x,
            squared_error,
            dim: flow.dim,
        })
    }

    /// The largest `‖f(f⁻¹(x)) − x‖` over the rows of `points` (`n×dim`); NaN if any row's
    /// is NaN (a NaN must not hide behind a maximum).
    pub fn max_error(&mut self, flow: &Flow, points: &[f32]) -> Result<f32, EvalError> {
        let mut worst = 0.0f32;
        let (error, dim) = (self.squared_error, self.dim);
        run_in_chunks(
            &mut self.program,
            self.x,
            dim,
            flow.store.values(),
            points,
            |p, n| {
                for &squared in &p.value(error)?[..n] {
                    let e = squared.sqrt();
                    if e.is_nan() || worst.is_nan() {
                        worst = f32::NAN;
                    } else {
                        worst = worst.max(e);
                    }
                }
                Ok(())
            },
        )?;
        Ok(worst)
    }
}

pub(crate) fn run_in_chunks(
    program: &mut CpuProgram<f32>,
    input: Var,
    dim: usize,
    params: &[f32],
    points: &[f32],
    mut take: impl FnMut(&CpuProgram<f32>, usize) -> Result<(), EvalError>,
) -> Result<(), EvalError> {
    let stride = program.input_mut(input)?.len().max(1);
    for chunk in points.chunks(stride) {
        let buffer = program.input_mut(input)?;
        buffer[..chunk.len()].copy_from_slice(chunk);
        buffer[chunk.len()..].fill(0.0);
        program.run(params);
        take(program, chunk.len() / dim.max(1))?;
    }
    Ok(())
}
