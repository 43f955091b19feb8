//! Continuous normalizing flows: a neural ODE `dz/dt = f(z, t)` from base (`t = 0`) to data
//! (`t = T`).
//!
//! - **Change of variables in continuous time** (Chen et al. 2018, *Neural Ordinary
//!   Differential Equations*): `d log p(z(t))/dt = −Tr(∂f/∂z)`, so
//!   `log p(x) = log p₀(z(0)) − ∫₀ᵀ Tr(∂f/∂z(t)) dt` with `z(T) = x`. The log-det of the map
//!   from `t₀` to `t₁` is `∫_{t₀}^{t₁} Tr(∂f/∂z) dt`, in either direction.
//! - **FFJORD** (Grathwohl et al. 2019): the trace by Hutchinson's estimator `E[uᵀ(∂f/∂z)u]`
//!   (Gaussian or Rademacher `u`), the log-density integrated alongside the state.
//! - **Regularised dynamics** (Finlay et al. 2020, *How to train your neural ODE*):
//!   `λ_K ∫‖f‖² dt + λ_J ∫‖∂f/∂z‖_F² dt` added to the loss keep the paths straight and cheap.
//! - **Augmented neural ODEs** (Dupont et al. 2019): the ODE runs in `D = dim + k` dimensions;
//!   data are padded with `k` zeros, the base is `N(0, I_D)`. What is computed is the augmented
//!   model's log-density *at `(x, 0)`*, `log p_D(x, 0)`, as ANODE does — not the marginal
//!   `log ∫ p_D(x, a) da`, and not normalised over `x`: training on it lets the model squeeze
//!   the augmented coordinates and raise the slice without bound (measured, `k = 2`, 1000 MLE
//!   steps on 8 Gaussians: "NLL" −3.3 and the slice integrating to ≈ 2·10³ over the plane;
//!   flow matching on zero-padded data does the same, the padded data being singular in
//!   those coordinates). Use it to show the homeomorphism escape, not for likelihoods; Huang et
//!   al. 2020's augmented flows (noise, not zeros, and a bound on the marginal) fix this.
//!   Samples start from `(ε, 0)` and keep the first `dim` coordinates.
//!   An augmented CNF is one layer: the extra coordinates cannot pass between 2-D layers.
//! - **Flow matching** (Lipman et al. 2023): simulation-free regression of `f` on the
//!   conditional OT path's velocity ([`matching`]).
//!
//! Training integrates with fixed-step RK4 unrolled into the graph ([`solver`]), so maximum
//! likelihood backpropagates through the solver (discretise-then-optimise). `[0, T]` is split
//! into time segments, one [`OdeSegment`] layer each, sharing one [`VectorField`]: the flow's
//! layer-by-layer trace shows time slices. Evaluation to a tolerance uses Dormand–Prince
//! ([`adaptive`]). With RK4 the round trip `f⁻¹(f(z))` is exact only up to the discretisation
//! (`O(h⁴)`), and the log-det is RK4's quadrature of the trace, not the log-det of the
//! discrete map: both errors shrink with the step.

pub mod adaptive;
pub mod dopri;
pub mod field;
pub mod matching;
pub mod options;
pub mod solver;
pub mod trace;

pub use adaptive::AdaptiveEvaluator;
pub use field::VectorField;
pub use options::{CnfOptions, ProbeKind, Solver, TraceEstimator};

use std::sync::Arc;

use self::solver::{Grid, Integrated};
use self::trace::{TraceMode, TracePlan};
use super::registry::FlowError;
use super::{Base, Flow, FlowConfig, Layer, LayerOutput, Noise, TrainingTerms, describe, sum_cols};
use crate::engine::{Graph, ParamStore, Var};
use crate::rng::Rng;

/// `½·log(2π)`.
const HALF_LOG_TAU: f64 = 0.918_938_533_204_672_7;

/// The dynamics every segment of one CNF shares.
#[derive(Debug)]
pub struct Ode {
    /// The vector field.
    pub field: VectorField,
    /// Solver, trace and regulariser settings.
    pub options: CnfOptions,
    /// The data dimension (the ODE runs in `data_dim + options.augment`).
    pub data_dim: usize,
}

impl Ode {
    /// The ODE's state dimension `D`.
    pub fn state_dim(&self) -> usize {
        self.data_dim + self.options.augment
    }

    /// The time after `step` of the fixed grid's steps.
    pub fn time_at(&self, step: usize) -> f64 {
        self.options.end_time as f64 * step as f64 / self.options.steps.max(1) as f64
    }

    /// Data (`rows × data_dim`) padded with zeros to the state dimension.
    fn pad(&self, g: &mut Graph, x: Var) -> Var {
        if self.options.augment == 0 {
            x
        } else {
            g.pad_cols(x, 0, self.state_dim())
        }
    }

    /// The data coordinates of a state.
    fn unpad(&self, g: &mut Graph, z: Var) -> Var {
        if self.options.augment == 0 {
            z
        } else {
            g.cols(z, 0, self.data_dim)
        }
    }

    /// `log N(a; 0, I_k)` of the augmented coordinates of `z` (`rows × 1`).
    fn augmented_log_prob(&self, g: &mut Graph, z: Var) -> Var {
        let k = self.options.augment;
        let a = g.cols(z, self.data_dim, k);
        let sq = g.square(a);
        let s = sum_cols(g, sq);
        let s = g.scale(s, -0.5);
        g.add_scalar(s, -(k as f64 * HALF_LOG_TAU) as f32)
    }
}

/// One time slice `[t_a, t_b]` of a CNF, integrated by RK4.
#[derive(Debug)]
pub struct OdeSegment {
    ode: Arc<Ode>,
    first_step: usize,
    steps: usize,
}

impl OdeSegment {
    /// The segment's time span.
    pub fn span(&self) -> (f64, f64) {
        (
            self.ode.time_at(self.first_step),
            self.ode.time_at(self.first_step + self.steps),
        )
    }

    fn integrate(&self, g: &mut Graph, z: Var, backwards: bool, mode: TraceMode<'_>) -> Integrated {
        let (ta, tb) = self.span();
        let (t0, t1) = if backwards { (tb, ta) } else { (ta, tb) };
        let field = self.ode.field.vars(g);
        let plan = TracePlan::new(g, &field, mode);
        let kinetic = self.ode.options.kinetic > 0.0;
        let grid = Grid {
            t0,
            t1,
            steps: self.steps,
        };
        solver::rk4(g, &field, &plan, z, grid, kinetic)
    }

    /// The density direction with a given trace mode; `(output, integration)`.
    fn inverse_with(
        &self,
        g: &mut Graph,
        y: Var,
        mode: TraceMode<'_>,
    ) -> (LayerOutput, Integrated) {
        let z = self.ode.pad(g, y);
        let r = self.integrate(g, z, true, mode);
        let mut log_det = r.log_det;
        if self.ode.options.augment > 0 {
            let aug = self.ode.augmented_log_prob(g, r.z);
            log_det = g.add(log_det, aug);
        }
        let y = self.ode.unpad(g, r.z);
        (LayerOutput { y, log_det }, r)
    }
}

impl Layer for OdeSegment {
    fn kind(&self) -> &'static str {
        "ODE segment"
    }

    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        let z = self.ode.pad(g, x);
        let r = self.integrate(
            g,
            z,
            false,
            TraceMode::Exact {
                jacobian_norm: false,
            },
        );
        let k = self.ode.options.augment;
        let log_det = if k > 0 {
            // The augmented base coordinates start at 0: log N(0; 0, I_k) = −k·½log 2π.
            g.add_scalar(r.log_det, (k as f64 * HALF_LOG_TAU) as f32)
        } else {
            r.log_det
        };
        LayerOutput {
            y: self.ode.unpad(g, r.z),
            log_det,
        }
    }

    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        self.inverse_with(
            g,
            y,
            TraceMode::Exact {
                jacobian_norm: false,
            },
        )
        .0
    }

    fn inverse_for_training(
        &self,
        g: &mut Graph,
        y: Var,
        terms: &mut TrainingTerms,
    ) -> LayerOutput {
        let options = &self.ode.options;
        let rows = g.shape(y).rows;
        let probes: Vec<Var> = match options.trace {
            TraceEstimator::Exact => Vec::new(),
            TraceEstimator::Hutchinson => {
                let noise = match options.probe {
                    ProbeKind::Gaussian => Noise::StandardNormal,
                    ProbeKind::Rademacher => Noise::Rademacher,
                };
                // One draw per probe for the whole solve, shared by every segment (FFJORD).
                (0..options.probes)
                    .map(|p| {
                        let key = format!("cnf.probe{p}");
                        terms.noise_input(g, &key, rows, self.ode.state_dim(), noise)
                    })
                    .collect()
            }
        };
        let mode = match options.trace {
            TraceEstimator::Exact => TraceMode::Exact {
                jacobian_norm: options.wants_jacobian_norm(),
            },
            TraceEstimator::Hutchinson => TraceMode::Hutchinson {
                probes: &probes,
                jacobian_norm: options.wants_jacobian_norm(),
            },
        };
        let (out, r) = self.inverse_with(g, y, mode);
        if let Some(kinetic) = r.kinetic {
            let p = g.scale(kinetic, options.kinetic);
            terms.add_penalty(g, p);
        }
        if let (Some(jac), true) = (r.jacobian, options.wants_jacobian_norm()) {
            let p = g.scale(jac, options.jacobian);
            terms.add_penalty(g, p);
        }
        out
    }

    fn ode(&self) -> Option<&Ode> {
        Some(&self.ode)
    }

    /// `t from 0.2 to 0.3, 2 RK4 steps` (and the state's dimensions when augmented).
    fn describe(&self, _store: &ParamStore) -> Option<String> {
        let (ta, tb) = self.span();
        let (ta, tb) = (describe::short(ta), describe::short(tb));
        let steps = match self.steps {
            1 => crate::tr!("layer.rk4_step").to_owned(),
            n => crate::tr!("layer.rk4_steps", count = n),
        };
        let augmented = match self.ode.options.augment {
            0 => String::new(),
            k => crate::tr!("layer.augmented", data = self.ode.data_dim, extra = k),
        };
        Some(crate::tr!(
            "layer.time_span",
            from = ta,
            to = tb,
            steps = steps,
            augmented = augmented,
        ))
    }

    fn time_span(&self) -> Option<(f64, f64)> {
        Some(self.span())
    }
}

/// Builds a CNF: one vector field, split over `min(config.layers, steps)` time segments (one
/// when augmented), over a standard-normal (or learnable diagonal) base in `dim` dimensions.
pub fn build(config: &FlowConfig, dim: usize, seed: u64) -> Result<Flow, FlowError> {
    let options = config.cnf.clone();
    options.validate()?;
    // Every segment takes at least one step.
    let segments = if options.augment > 0 {
        1
    } else {
        config.layers.min(options.steps)
    };
    let rng = Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    let state_dim = dim + options.augment;
    let field = VectorField::new(
        &mut store,
        state_dim,
        config.hidden,
        config.depth,
        config.activation,
        &mut rng.fork(0),
    );
    let ode = Arc::new(Ode {
        field,
        options,
        data_dim: dim,
    });
    let steps = ode.options.steps;
    let mut layers: Vec<Box<dyn Layer>> = Vec::with_capacity(segments);
    let mut first_step = 0;
    for k in 0..segments {
        // Spread the steps: the first `steps % segments` segments take one more.
        let n = steps / segments + usize::from(k < steps % segments);
        layers.push(Box::new(OdeSegment {
            ode: Arc::clone(&ode),
            first_step,
            steps: n,
        }));
        first_step += n;
    }
    let base = if config.learnable_base {
        Base::diagonal(&mut store, dim, &mut rng.fork(1 << 32))
    } else {
        Base::StandardNormal { dim }
    };
    Ok(Flow {
        config: config.clone(),
        dim,
        layers,
        base,
        store,
    })
}

/// The dynamics of a flow's first ODE layer, if it has one.
pub fn ode_of(flow: &Flow) -> Option<&Ode> {
    flow.layers.iter().find_map(|l| l.ode())
}
