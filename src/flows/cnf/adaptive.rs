//! Evaluating a CNF to a tolerance: Dormand–Prince ([`super::dopri`]) driving a compiled
//! program of the vector field and its exact trace, one chunk of points at a time.
//!
//! The state of a chunk of `n` points is `[z (n×D, row-major), ℓ (n)]` with
//! `d/dt [z, ℓ] = [f(z, t), Tr ∂f/∂z]`, solved in f64 around an f32 field program. Densities
//! integrate `T → 0` from `(x, 0)`, samples `0 → T` from `(ε, 0)` (see the module docs of
//! [`super`] for what augmented dimensions mean).

use super::dopri::{SolverError, SolverStats, Tolerance, dopri5};
use super::field::Time;
use super::trace::{TraceMode, TracePlan};
use super::{HALF_LOG_TAU, Ode, ode_of};
use crate::engine::{CpuProgram, ExecError, Graph, Var};
use crate::flows::Flow;

/// Steps allowed per chunk before giving up.
const MAX_STEPS: usize = 10_000;

/// Adaptive evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdaptiveError {
    /// The flow has no ODE layer.
    #[error("adaptive solvers apply to continuous flows (cnf) only")]
    NotContinuous,
    /// A program failed to compile or to take its inputs.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The solver gave up.
    #[error(transparent)]
    Solver(#[from] SolverError),
}

/// Points with their log-densities and what the solver did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdaptiveOutput {
    /// Base points (density) or samples (sampling), row-major `n×dim`.
    pub points: Vec<f32>,
    /// `log p(x)` per point.
    pub log_prob: Vec<f32>,
    /// Steps and evaluations, summed over chunks.
    pub stats: SolverStats,
}

struct FieldProgram {
    program: CpuProgram<f32>,
    z: Var,
    t: Var,
    f: Var,
    trace: Var,
}

struct BaseProgram {
    program: CpuProgram<f32>,
    input: Var,
    z: Var,
    log_prob: Var,
}

/// Compiled programs for adaptive evaluation of one CNF.
pub struct AdaptiveEvaluator {
    chunk: usize,
    field: FieldProgram,
    base_density: BaseProgram,
    base_sample: BaseProgram,
}

impl AdaptiveEvaluator {
    /// Compiles the field (with its exact trace) and the base for `chunk` points at a time.
    pub fn new(flow: &Flow, chunk: usize) -> Result<Self, AdaptiveError> {
        let ode = ode_of(flow).ok_or(AdaptiveError::NotContinuous)?;
        let chunk = chunk.max(1);
        let mut g = Graph::new();
        let z = g.input(chunk, ode.state_dim());
        let t = g.input(1, 1);
        let vars = ode.field.vars(&mut g);
        let eval = vars.eval(&mut g, z, Time::Node(t));
        let plan = TracePlan::new(
            &mut g,
            &vars,
            TraceMode::Exact {
                jacobian_norm: false,
            },
        );
        let trace = plan.divergence(&mut g, &vars, &eval).trace;
        let program = CpuProgram::compile(&g, &flow.store, &[eval.f, trace])?;
        let field = FieldProgram {
            program,
            z,
            t,
            f: eval.f,
            trace,
        };
        let base_program = |sample: bool| -> Result<BaseProgram, ExecError> {
            let mut g = Graph::new();
            let input = g.input(chunk, flow.dim);
            let (z, log_prob) = if sample {
                flow.base.sample(&mut g, input)
            } else {
                (input, flow.base.log_prob(&mut g, input))
            };
            let program = CpuProgram::compile(&g, &flow.store, &[z, log_prob])?;
            Ok(BaseProgram {
                program,
                input,
                z,
                log_prob,
            })
        };
        Ok(Self {
            chunk,
            field,
            base_density: base_program(false)?,
            base_sample: base_program(true)?,
        })
    }

    /// `log p(x)` of `points` (`n×dim`) and their base points, integrating `T → 0`.
    pub fn density(
        &mut self,
        flow: &Flow,
        points: &[f32],
        tol: Tolerance,
    ) -> Result<AdaptiveOutput, AdaptiveError> {
        let ode = ode_of(flow).ok_or(AdaptiveError::NotContinuous)?;
        let (dim, state) = (flow.dim, ode.state_dim());
        let mut out = AdaptiveOutput::default();
        for chunk in points.chunks(self.chunk * dim) {
            let n = chunk.len() / dim;
            let mut y = pack(chunk, n, dim, state);
            let stats = self.solve(flow, ode, &mut y, n, true, tol)?;
            out.stats.add(stats);
            let zs: Vec<f32> = (0..n)
                .flat_map(|r| y[r * state..r * state + dim].iter().map(|&v| v as f32))
                .collect();
            let base = run_base(&mut self.base_density, flow, &zs)?;
            for r in 0..n {
                let aug = augmented_log_prob(&y[r * state + dim..(r + 1) * state]);
                let lp = base.log_prob[r] as f64 + aug + y[n * state + r];
                out.log_prob.push(lp as f32);
            }
            out.points.extend_from_slice(&zs);
        }
        Ok(out)
    }

    /// Samples from standard-normal draws `eps` (`n×dim`), integrating `0 → T`.
    pub fn sample(
        &mut self,
        flow: &Flow,
        eps: &[f32],
        tol: Tolerance,
    ) -> Result<AdaptiveOutput, AdaptiveError> {
        let ode = ode_of(flow).ok_or(AdaptiveError::NotContinuous)?;
        let (dim, state) = (flow.dim, ode.state_dim());
        let mut out = AdaptiveOutput::default();
        for chunk in eps.chunks(self.chunk * dim) {
            let n = chunk.len() / dim;
            let base = run_base(&mut self.base_sample, flow, chunk)?;
            let mut y = pack(&base.z, n, dim, state);
            let stats = self.solve(flow, ode, &mut y, n, false, tol)?;
            out.stats.add(stats);
            let aug_at_zero = -(ode.options.augment as f64) * HALF_LOG_TAU;
            for r in 0..n {
                out.points
                    .extend(y[r * state..r * state + dim].iter().map(|&v| v as f32));
                let lp = base.log_prob[r] as f64 + aug_at_zero - y[n * state + r];
                out.log_prob.push(lp as f32);
            }
        }
        Ok(out)
    }

    /// The velocity `f(x, t)` at `points` (`n×dim`; augmented coordinates at 0), for drawing
    /// the vector field at time `t`; row-major `n×dim`.
    pub fn velocity(
        &mut self,
        flow: &Flow,
        points: &[f32],
        t: f32,
    ) -> Result<Vec<f32>, AdaptiveError> {
        let ode = ode_of(flow).ok_or(AdaptiveError::NotContinuous)?;
        let (dim, state) = (flow.dim, ode.state_dim());
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(self.chunk * dim) {
            let n = chunk.len() / dim;
            let p = &mut self.field.program;
            let z = p.input_mut(self.field.z)?;
            z.fill(0.0);
            for r in 0..n {
                z[r * state..r * state + dim].copy_from_slice(&chunk[r * dim..(r + 1) * dim]);
            }
            p.set_input(self.field.t, &[t])?;
            p.run(flow.store.values());
            let f = p.value(self.field.f)?;
            for r in 0..n {
                out.extend_from_slice(&f[r * state..r * state + dim]);
            }
        }
        Ok(out)
    }

    /// Solves one chunk's packed state in place.
    fn solve(
        &mut self,
        flow: &Flow,
        ode: &Ode,
        y: &mut [f64],
        n: usize,
        backwards: bool,
        tol: Tolerance,
    ) -> Result<SolverStats, AdaptiveError> {
        let state = ode.state_dim();
        let end = ode.options.end_time as f64;
        let (t0, t1) = if backwards { (end, 0.0) } else { (0.0, end) };
        let field = &mut self.field;
        let params = flow.store.values();
        let mut failure: Option<ExecError> = None;
        let mut rhs = |t: f64, y: &[f64], dy: &mut [f64]| {
            if let Err(e) = eval_field(field, params, t, y, dy, n, state) {
                failure.get_or_insert(e);
                dy.fill(f64::NAN);
            }
        };
        let stats = dopri5(&mut rhs, y, t0, t1, tol, MAX_STEPS);
        if let Some(e) = failure {
            return Err(e.into());
        }
        Ok(stats?)
    }
}

/// `[x padded with zeros to `state` columns, then n zeros for ℓ]` in f64.
fn pack(x: &[f32], n: usize, dim: usize, state: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * state + n];
    for r in 0..n {
        for c in 0..dim {
            y[r * state + c] = x[r * dim + c] as f64;
        }
    }
    y
}

/// `log N(a; 0, I)`.
fn augmented_log_prob(a: &[f64]) -> f64 {
    -0.5 * a.iter().map(|v| v * v).sum::<f64>() - a.len() as f64 * HALF_LOG_TAU
}

/// `dy = [f(z, t), Tr ∂f/∂z]` for the first `n` rows.
fn eval_field(
    field: &mut FieldProgram,
    params: &[f32],
    t: f64,
    y: &[f64],
    dy: &mut [f64],
    n: usize,
    state: usize,
) -> Result<(), ExecError> {
    let p = &mut field.program;
    let z = p.input_mut(field.z)?;
    for (dst, &src) in z.iter_mut().zip(&y[..n * state]) {
        *dst = src as f32;
    }
    z[n * state..].fill(0.0);
    p.set_input(field.t, &[t as f32])?;
    p.run(params);
    for (dst, &src) in dy[..n * state].iter_mut().zip(p.value(field.f)?) {
        *dst = src as f64;
    }
    for (dst, &src) in dy[n * state..].iter_mut().zip(p.value(field.trace)?) {
        *dst = src as f64;
    }
    Ok(())
}

struct BaseOut {
    z: Vec<f32>,
    log_prob: Vec<f32>,
}

/// Runs a base program on up to a chunk of rows.
fn run_base(base: &mut BaseProgram, flow: &Flow, rows: &[f32]) -> Result<BaseOut, ExecError> {
    let n = rows.len() / flow.dim.max(1);
    let p = &mut base.program;
    let input = p.input_mut(base.input)?;
    input[..rows.len()].copy_from_slice(rows);
    input[rows.len()..].fill(0.0);
    p.run(flow.store.values());
    Ok(BaseOut {
        z: p.value(base.z)?[..rows.len()].to_vec(),
        log_prob: p.value(base.log_prob)?[..n].to_vec(),
    })
}

impl Tolerance {
    /// The tolerances a CNF's settings name.
    pub fn of(options: &super::CnfOptions) -> Self {
        Self {
            rtol: options.rtol as f64,
            atol: options.atol as f64,
        }
    }
}
