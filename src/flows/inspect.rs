//! The engine side of the layer-by-layer view: a flow evaluated part-way.
//!
//! With `z_d = f_d ∘ … ∘ f_1(z_0)`, `z_0` from the base, the density after `d` layers is, by the
//! change of variables through the first `d` layers only (the flow's own formula, stopped early),
//! `log p_d(x) = log p_0(f_1⁻¹ ∘ … ∘ f_d⁻¹(x)) + Σ_{k ≤ d} log|det ∂f_k⁻¹/∂·|`
//! ([`Flow::density_graph_after`]): `p_0` is the base, `p_K` the flow's density. Layer `d`'s own
//! sample-direction log-determinant at `z_{d−1} = f_d⁻¹(x)` is minus its inverse's at `x`
//! (`log|det ∂f/∂z| = −log|det ∂f⁻¹/∂x|` at corresponding points). For a CNF the same is RK4's
//! quadrature of `∫ Tr ∂f/∂z dt` over the segment, read backwards (see [`super::cnf`]).
//!
//! Everything is the flows' own graph code (`Layer::inverse`, `Base::log_prob`, the CNF's
//! [`super::cnf::field::FieldVars::eval`] and [`super::cnf::trace`]), compiled once per depth and
//! run with the current parameters, so it follows training without recompiling.

use super::Flow;
use super::cnf::adaptive::AdaptiveError;
use super::cnf::dopri::Tolerance;
use super::cnf::field::Time;
use super::cnf::trace::{TraceMode, TracePlan};
use super::cnf::{AdaptiveEvaluator, ProbeKind, Solver, ode_of};
use super::eval::run_in_chunks;
use crate::engine::{CpuProgram, ExecError, Graph, Var};
use crate::rng::Rng;

/// The layer-by-layer view asked for something this flow does not have, or evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A depth past the flow's last layer.
    #[error("depth {depth} is past the flow's {layers} layers")]
    DepthOutOfRange {
        /// The depth asked for.
        depth: usize,
        /// The flow's number of layers `K` (the deepest depth).
        layers: usize,
    },
    /// Points whose length is not a whole number of rows.
    #[error("{len} values are not whole points of dimension {dim}")]
    PointsShape {
        /// Values given.
        len: usize,
        /// The flow's dimension.
        dim: usize,
    },
    /// The inspector's programs were compiled for a flow of another architecture.
    #[error("this inspector was built for another flow (rebuild it for the new architecture)")]
    OtherFlow,
    /// Hutchinson's spread needs at least one probe.
    #[error("Hutchinson's estimator needs at least one probe")]
    NoProbes,
    /// A program failed to compile or to take its inputs (never expected for a flow that built).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The adaptive solver failed (e.g. gave up on a stiff field).
    #[error(transparent)]
    Adaptive(#[from] AdaptiveError),
}

/// Densities in the space after some number of layers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DepthDensity {
    /// `log p_depth(x)` per point.
    pub log_prob: Vec<f32>,
    /// Layer `depth`'s `log|det ∂f_depth/∂z_{depth−1}|` (sample direction) at
    /// `z_{depth−1} = f_depth⁻¹(x)`, per point; empty at depth 0.
    pub layer_log_det: Vec<f32>,
}

/// Hutchinson's trace estimator against the exact trace, at some points (see
/// [`hutchinson_spread`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSpread {
    /// The probe distribution used (the flow's configured one).
    pub probe: ProbeKind,
    /// The exact `Tr(∂f/∂z)` per point.
    pub exact: Vec<f32>,
    /// The mean of the single-probe estimates `uᵀ(∂f/∂z)u` per point (tends to `exact`).
    pub estimate_mean: Vec<f32>,
    /// The standard deviation of one single-probe estimate over the draws (sample standard
    /// deviation per point, averaged over the points).
    pub estimate_std: f32,
}

struct DepthProgram {
    program: CpuProgram<f32>,
    x: Var,
    log_prob: Var,
    layer_log_det: Option<Var>,
}

struct FieldProgram {
    program: CpuProgram<f32>,
    z: Var,
    t: Var,
    f: Var,
    state_dim: usize,
}

/// Evaluates a flow part-way, for the layer-by-layer view: compiled programs per depth (built
/// the first time a depth is asked for, then reused with the current parameters) and, for a
/// CNF, one of its vector field.
pub struct FlowInspector {
    chunk: usize,
    dim: usize,
    layers: usize,
    params: usize,
    depths: Vec<Option<DepthProgram>>,
    field: Option<FieldProgram>,
}

impl FlowInspector {
    /// An inspector for `flow` processing `chunk` points at a time. Cheap: nothing is compiled
    /// until a depth (or the field) is first evaluated.
    pub fn new(flow: &Flow, chunk: usize) -> Self {
        Self {
            chunk: chunk.max(1),
            dim: flow.dim,
            layers: flow.layers.len(),
            params: flow.store.len(),
            depths: (0..=flow.layers.len()).map(|_| None).collect(),
            field: None,
        }
    }

    /// For points `x` (`n×dim`, row-major) in the space after `depth` layers
    /// (`0 ≤ depth ≤ K`): `log p_depth(x)`, the density of `z_depth = f_depth ∘ … ∘ f_1(z_0)`
    /// (depth 0: the base density; depth `K`: the flow's, as [`super::FlowEvaluator::density`]
    /// computes it), and layer `depth`'s sample-direction `log|det|` at `f_depth⁻¹(x)` (empty at
    /// depth 0). An error for `depth > K`.
    pub fn depth_density(
        &mut self,
        flow: &Flow,
        depth: usize,
        points: &[f32],
    ) -> Result<DepthDensity, InspectError> {
        self.check(flow, points)?;
        let chunk = self.chunk;
        let slot = self
            .depths
            .get_mut(depth)
            .ok_or(InspectError::DepthOutOfRange {
                depth,
                layers: flow.layers.len(),
            })?;
        let d = match slot {
            Some(d) => d,
            None => slot.insert(DepthProgram::compile(flow, depth, chunk)?),
        };
        let mut out = DepthDensity::default();
        let params = flow.store.values();
        run_in_chunks(&mut d.program, d.x, self.dim, params, points, |p, n| {
            out.log_prob.extend_from_slice(&p.value(d.log_prob)?[..n]);
            if let Some(l) = d.layer_log_det {
                out.layer_log_det.extend_from_slice(&p.value(l)?[..n]);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// A CNF's vector field `f(z, t)` at `points` (`n×dim`) and time `t`, row-major `n×dim`.
    /// An augmented CNF's state is the point padded with zeros, and only its first `dim`
    /// velocity coordinates are returned. `Ok(None)` for discrete flows.
    pub fn field(
        &mut self,
        flow: &Flow,
        time: f32,
        points: &[f32],
    ) -> Result<Option<Vec<f32>>, InspectError> {
        self.check(flow, points)?;
        if ode_of(flow).is_none() {
            return Ok(None);
        }
        let f = match &mut self.field {
            Some(f) => f,
            slot => slot.insert(FieldProgram::compile(flow, self.chunk)?),
        };
        f.program.set_input(f.t, &[time])?;
        let (dim, state) = (self.dim, f.state_dim);
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(self.chunk * dim) {
            let n = chunk.len() / dim;
            let z = f.program.input_mut(f.z)?;
            // Why not `run_in_chunks`: the state has `augment` more columns than the points.
            z.fill(0.0);
            for (row, point) in z.chunks_exact_mut(state).zip(chunk.chunks_exact(dim)) {
                row[..dim].copy_from_slice(point);
            }
            f.program.run(flow.store.values());
            let velocity = f.program.value(f.f)?;
            for row in velocity.chunks_exact(state).take(n) {
                out.extend_from_slice(&row[..dim]);
            }
        }
        Ok(Some(out))
    }

    /// The same architecture as at [`FlowInspector::new`], and whole points.
    fn check(&self, flow: &Flow, points: &[f32]) -> Result<(), InspectError> {
        if flow.dim != self.dim
            || flow.layers.len() != self.layers
            || flow.store.len() != self.params
        {
            return Err(InspectError::OtherFlow);
        }
        if !points.len().is_multiple_of(self.dim.max(1)) {
            return Err(InspectError::PointsShape {
                len: points.len(),
                dim: self.dim,
            });
        }
        Ok(())
    }
}

/// The nodes of [`depth_graph`].
#[derive(Clone, Copy, Debug)]
pub struct DepthNodes {
    /// `log p_depth(x)` per point.
    pub log_prob: Var,
    /// Layer `depth`'s sample-direction `log|det|` at `f_depth⁻¹(x)` per point (none at
    /// depth 0).
    pub layer_log_det: Option<Var>,
}

impl DepthNodes {
    /// The nodes to read, `log_prob` first.
    pub fn outputs(&self) -> Vec<Var> {
        std::iter::once(self.log_prob)
            .chain(self.layer_log_det)
            .collect()
    }
}

/// The graph of [`FlowInspector::depth_density`] at points `x`, built into `g` (the GPU's
/// pictures compile the same one).
pub fn depth_graph(flow: &Flow, g: &mut Graph, x: Var, depth: usize) -> DepthNodes {
    let d = flow.density_graph_after(g, x, depth);
    // `layers[0]` inverts layer `depth`: its sample-direction log-det is minus the inverse's.
    let layer_log_det = d.layers.first().map(|l| g.neg(l.log_det));
    DepthNodes {
        log_prob: d.log_prob,
        layer_log_det,
    }
}

/// The particles of the layer view: base draws `eps` after every depth, `[z_0, z_1, …, z_K]`
/// (`z_0` is the base's sample of `eps`, which for a learned base is not `eps` itself).
pub fn trace_graph(flow: &Flow, g: &mut Graph, eps: Var) -> Vec<Var> {
    let s = flow.sample_graph(g, eps);
    let base = match s.layers.first() {
        Some(_) => flow.base.sample(g, eps).0,
        None => s.x,
    };
    std::iter::once(base)
        .chain(s.layers.iter().map(|l| l.y))
        .collect()
}

impl DepthProgram {
    fn compile(flow: &Flow, depth: usize, chunk: usize) -> Result<Self, ExecError> {
        let mut g = Graph::new();
        let x = g.input(chunk, flow.dim);
        let d = depth_graph(flow, &mut g, x, depth);
        Ok(Self {
            program: CpuProgram::compile(&g, &flow.store, &d.outputs())?,
            x,
            log_prob: d.log_prob,
            layer_log_det: d.layer_log_det,
        })
    }
}

impl FieldProgram {
    fn compile(flow: &Flow, chunk: usize) -> Result<Self, InspectError> {
        let ode = ode_of(flow).ok_or(AdaptiveError::NotContinuous)?;
        let mut g = Graph::new();
        let state_dim = ode.state_dim();
        let z = g.input(chunk, state_dim);
        let t = g.input(1, 1);
        let f = ode.field.vars(&mut g).eval(&mut g, z, Time::Node(t)).f;
        Ok(Self {
            program: CpuProgram::compile(&g, &flow.store, &[f])?,
            z,
            t,
            f,
            state_dim,
        })
    }
}

/// One label per layer, in sample order: the layer's kind, its number among the flow's layers
/// of that kind (omitted when there is only one), and what it does with live values from the
/// parameters ([`super::Layer::describe`]), e.g. `affine coupling 3: x₁ scaled and shifted
/// given x₂` or `planar 4: ûᵀw = 0.41 > −1`.
pub fn layer_labels(flow: &Flow) -> Vec<String> {
    let count = |kind: &str| flow.layers.iter().filter(|l| l.kind() == kind).count();
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    flow.layers
        .iter()
        .map(|layer| {
            let kind = layer.kind();
            let n = match seen.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((kind, 1));
                    1
                }
            };
            // The kind in the language of the trainer's thread (the views' request sets it).
            let said =
                crate::i18n::text(&format!("layer.{}", kind.to_lowercase().replace(' ', "_")));
            let name = match count(kind) {
                1 => said.to_string(),
                _ => format!("{said} {n}"),
            };
            match layer.describe(&flow.store) {
                Some(what) => format!("{name}: {what}"),
                None => name,
            }
        })
        .collect()
}

/// A CNF's time at the boundary after `depth` time segments: 0 at depth 0, `T` at depth `K`.
/// `None` for discrete flows and for `depth > K`.
pub fn depth_time(flow: &Flow, depth: usize) -> Option<f32> {
    let span = match depth {
        0 => flow.layers.first()?.time_span()?.0,
        d => flow.layers.get(d - 1)?.time_span()?.1,
    };
    Some(span as f32)
}

/// Evaluations of a CNF's vector field in one density evaluation of `points` (`n×dim`), with
/// the flow's configured solver: RK4's fixed grid takes 4 per step; Dormand–Prince is measured
/// by running [`AdaptiveEvaluator`] on `points` as one batch (every point shares its steps).
/// `Ok(None)` for discrete flows.
pub fn solver_evaluations(flow: &Flow, points: &[f32]) -> Result<Option<u64>, InspectError> {
    let Some(ode) = ode_of(flow) else {
        return Ok(None);
    };
    match ode.options.solver {
        Solver::Rk4 => Ok(Some(4 * ode.options.steps as u64)),
        Solver::DormandPrince => {
            let rows = points.len() / flow.dim.max(1);
            let mut adaptive = AdaptiveEvaluator::new(flow, rows.max(1))?;
            let out = adaptive.density(flow, points, Tolerance::of(&ode.options))?;
            Ok(Some(out.stats.evaluations as u64))
        }
    }
}

/// Hutchinson's estimator `uᵀ(∂f/∂z)u` (Hutchinson 1989; FFJORD) against the exact trace of a
/// CNF's Jacobian at `points` (`n×dim`, augmented coordinates at 0) and time `time`: the
/// exact trace per point, and the mean and spread of `probes` single-probe estimates drawn
/// from the flow's configured probe kind (seeded by `seed`). In 2-D the Rademacher estimate
/// is `J₁₁ + J₂₂ + u₁u₂(J₁₂ + J₂₁)`, so its spread is `|J₁₂ + J₂₁|` (zero where the Jacobian's
/// off-diagonal part is antisymmetric, e.g. a rotation); the Gaussian one's is `√2·‖J_sym‖_F`
/// (see [`ProbeKind`]). `Ok(None)` for discrete flows. Compiles a program for the points on
/// each call: meant for a few points, not a grid.
pub fn hutchinson_spread(
    flow: &Flow,
    time: f32,
    points: &[f32],
    probes: usize,
    seed: u64,
) -> Result<Option<TraceSpread>, InspectError> {
    let Some(ode) = ode_of(flow) else {
        return Ok(None);
    };
    if probes == 0 {
        return Err(InspectError::NoProbes);
    }
    let (dim, state) = (flow.dim, ode.state_dim());
    if !points.len().is_multiple_of(dim.max(1)) {
        return Err(InspectError::PointsShape {
            len: points.len(),
            dim,
        });
    }
    let rows = points.len() / dim.max(1);
    let mut g = Graph::new();
    let z = g.input(rows, state);
    let u = g.input(rows, state);
    let vars = ode.field.vars(&mut g);
    let eval = vars.eval(&mut g, z, Time::Constant(time));
    let exact_mode = TraceMode::Exact {
        jacobian_norm: false,
    };
    let exact = TracePlan::new(&mut g, &vars, exact_mode).divergence(&mut g, &vars, &eval);
    let probe_mode = TraceMode::Hutchinson {
        probes: &[u],
        jacobian_norm: false,
    };
    let estimate = TracePlan::new(&mut g, &vars, probe_mode).divergence(&mut g, &vars, &eval);
    let mut program = CpuProgram::<f32>::compile(&g, &flow.store, &[exact.trace, estimate.trace])?;
    let padded = program.input_mut(z)?;
    for (row, point) in padded.chunks_exact_mut(state).zip(points.chunks_exact(dim)) {
        row[..dim].copy_from_slice(point);
    }

    // Welford's running mean and sum of squared deviations per point, in f64.
    let (mut mean, mut m2) = (vec![0.0f64; rows], vec![0.0f64; rows]);
    let mut rng = Rng::seed_from_u64(seed);
    let probe = ode.options.probe;
    for k in 0..probes {
        for v in program.input_mut(u)? {
            *v = match probe {
                ProbeKind::Gaussian => rng.normal_f32(),
                ProbeKind::Rademacher => rng.sign() as f32,
            };
        }
        program.run(flow.store.values());
        for (i, &e) in program.value(estimate.trace)?.iter().enumerate() {
            let e = f64::from(e);
            let delta = e - mean[i];
            mean[i] += delta / (k + 1) as f64;
            m2[i] += delta * (e - mean[i]);
        }
    }
    let spread = |m2: f64| (m2 / (probes.max(2) - 1) as f64).sqrt();
    let estimate_std = m2.iter().map(|&s| spread(s)).sum::<f64>() / rows.max(1) as f64;
    Ok(Some(TraceSpread {
        probe,
        exact: program.value(exact.trace)?.to_vec(),
        estimate_mean: mean.iter().map(|&m| m as f32).collect(),
        estimate_std: estimate_std as f32,
    }))
}
