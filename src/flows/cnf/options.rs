//! The CNF's settings (part of [`crate::flows::FlowConfig`] as its `cnf` field), with defaults
//! and validation.

use crate::flows::registry::FlowError;

/// How `Tr(∂f/∂z)` enters the training objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TraceEstimator {
    /// The exact trace (cheap in 2-D: one extra hidden-width product per evaluation).
    #[default]
    Exact,
    /// Hutchinson's `uᵀ(∂f/∂z)u`, averaged over `probes` draws of `u` (FFJORD).
    Hutchinson,
}

/// The distribution of Hutchinson's probe vectors `u` (both have `E[uuᵀ] = I`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ProbeKind {
    /// `u ~ N(0, I)`: variance `2‖J_sym‖_F²`.
    Gaussian,
    /// `u_i = ±1`: variance `2(‖J_sym‖_F² − Σ_i J_ii²)`, never more than Gaussian's.
    #[default]
    Rademacher,
}

/// The integrator used to evaluate a trained model (training always uses fixed-step RK4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Solver {
    /// Classic fourth-order Runge–Kutta on a fixed grid of `steps` steps, built into the graph.
    #[default]
    Rk4,
    /// Dormand–Prince 5(4) with adaptive steps (`rtol`, `atol`), driven from Rust.
    DormandPrince,
}

/// Settings of a continuous normalizing flow.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CnfOptions {
    /// RK4 steps over `[0, T]` in total (split evenly-ish over the time segments).
    pub steps: usize,
    /// The end time `T`.
    pub end_time: f32,
    /// How training estimates the trace.
    pub trace: TraceEstimator,
    /// Hutchinson's probe distribution.
    pub probe: ProbeKind,
    /// Hutchinson's probes per sample (averaged).
    pub probes: usize,
    /// `λ_K`, weight of the kinetic energy `∫‖f‖² dt` (Finlay et al. 2020); 0 disables it.
    pub kinetic: f32,
    /// `λ_J`, weight of `∫‖∂f/∂z‖_F² dt` (Finlay et al. 2020); 0 disables it.
    pub jacobian: f32,
    /// Augmented dimensions `k` (ANODE): the ODE runs in `D = dim + k` dimensions.
    pub augment: usize,
    /// The evaluation integrator.
    pub solver: Solver,
    /// Dormand–Prince's relative tolerance.
    pub rtol: f32,
    /// Dormand–Prince's absolute tolerance.
    pub atol: f32,
    /// `σ_min` of flow matching's conditional OT path.
    pub sigma_min: f32,
}

impl Default for CnfOptions {
    /// The benchmark setting: RK4, 20 steps over `T = 1`, exact trace, no regularisers.
    fn default() -> Self {
        Self {
            steps: 20,
            end_time: 1.0,
            trace: TraceEstimator::Exact,
            probe: ProbeKind::Rademacher,
            probes: 1,
            kinetic: 0.0,
            jacobian: 0.0,
            augment: 0,
            solver: Solver::Rk4,
            rtol: 1e-5,
            atol: 1e-5,
            sigma_min: 1e-4,
        }
    }
}

/// URL/CLI names of the CNF's choices: `ALL` in menu order, `name`, `from_name`.
macro_rules! named {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every choice, in menu order.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            /// Its URL/CLI name.
            pub fn name(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $name),+
                }
            }

            /// Parses a URL/CLI name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

named!(TraceEstimator { Exact => "exact", Hutchinson => "hutchinson" });
named!(ProbeKind { Rademacher => "rademacher", Gaussian => "gaussian" });
named!(Solver { Rk4 => "rk4", DormandPrince => "dopri" });

impl CnfOptions {
    /// Rejects settings no one could mean, with a message naming the limit.
    pub fn validate(&self) -> Result<(), FlowError> {
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(FlowError::InvalidConfig(what.to_string()))
            }
        };
        check(
            (1..=1000).contains(&self.steps),
            "CNF steps must be between 1 and 1000",
        )?;
        check(
            self.end_time.is_finite() && self.end_time > 0.0 && self.end_time <= 100.0,
            "CNF end time must be in (0, 100]",
        )?;
        check(
            (1..=64).contains(&self.probes),
            "Hutchinson probes must be between 1 and 64",
        )?;
        let weight = |w: f32| w.is_finite() && (0.0..=1e4).contains(&w);
        check(
            weight(self.kinetic) && weight(self.jacobian),
            "regulariser weights must be in [0, 10000]",
        )?;
        check(
            self.augment <= 16,
            "augmented dimensions must be between 0 and 16",
        )?;
        let tol = |t: f32| t.is_finite() && (1e-10..=1.0).contains(&t);
        check(
            tol(self.rtol) && tol(self.atol),
            "solver tolerances must be in [1e-10, 1]",
        )?;
        check(
            self.sigma_min.is_finite() && (0.0..1.0).contains(&self.sigma_min),
            "flow matching's sigma_min must be in [0, 1)",
        )
    }

    /// Whether training needs the Jacobian's Frobenius norm.
    pub fn wants_jacobian_norm(&self) -> bool {
        self.jacobian > 0.0
    }
}
