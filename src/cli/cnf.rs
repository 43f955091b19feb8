//! `flowlab train`'s options of the continuous flow (`--flow cnf`): integrator, trace
//! estimator, regularisers, augmentation. Each maps onto a field of
//! [`CnfOptions`](crate::flows::cnf::CnfOptions); unset options keep its defaults.

use anyhow::bail;
use clap::{Args, ValueEnum};

use crate::flows::cnf::{CnfOptions, ProbeKind, Solver, TraceEstimator};

/// How training estimates `Tr(∂f/∂z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceArg {
    /// The exact trace (cheap in 2-D).
    Exact,
    /// Hutchinson's estimator `uᵀ(∂f/∂z)u` (FFJORD).
    Hutchinson,
}

/// The distribution of Hutchinson's probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProbeArg {
    /// `u ~ N(0, I)`.
    Gaussian,
    /// `u_i = ±1` (lower variance).
    Rademacher,
}

/// The integrator that scores the test set (`test_nll`); training, samples and pictures use RK4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SolverArg {
    /// Fixed-step RK4 on the training grid (`--cnf-steps`).
    Rk4,
    /// Adaptive Dormand–Prince 5(4) to `--rtol`/`--atol`.
    Dopri,
}

/// Options of the continuous flow; an error with any other `--flow`.
#[derive(Clone, Debug, Default, Args)]
pub struct CnfArgs {
    /// CNF: RK4 steps over [0, T] (default 20).
    #[arg(long, value_name = "N")]
    pub cnf_steps: Option<usize>,
    /// CNF: how maximum likelihood estimates the trace (default exact).
    #[arg(long, value_enum)]
    pub trace: Option<TraceArg>,
    /// CNF: Hutchinson's probe distribution (default rademacher).
    #[arg(long, value_enum)]
    pub probe: Option<ProbeArg>,
    /// CNF: Hutchinson probes per sample, averaged (default 1).
    #[arg(long, value_name = "K")]
    pub probes: Option<usize>,
    /// CNF: λ_K, weight of the kinetic energy ∫‖f‖² dt (default 0).
    #[arg(long, value_name = "λ")]
    pub kinetic: Option<f32>,
    /// CNF: λ_J, weight of ∫‖∂f/∂z‖²_F dt (default 0).
    #[arg(long, value_name = "λ")]
    pub jacobian: Option<f32>,
    /// CNF: augmented dimensions (ANODE), the ODE runs in 2 + k dimensions (default 0).
    #[arg(long, value_name = "k")]
    pub augment: Option<usize>,
    /// CNF: the integrator that scores the test set for test_nll (default rk4).
    #[arg(long, value_enum)]
    pub solver: Option<SolverArg>,
    /// CNF: Dormand–Prince's relative tolerance (default 1e-5).
    #[arg(long)]
    pub rtol: Option<f32>,
    /// CNF: Dormand–Prince's absolute tolerance (default 1e-5).
    #[arg(long)]
    pub atol: Option<f32>,
}

impl CnfArgs {
    /// Whether any option was given.
    pub fn any(&self) -> bool {
        self.cnf_steps.is_some()
            || self.trace.is_some()
            || self.probe.is_some()
            || self.probes.is_some()
            || self.kinetic.is_some()
            || self.jacobian.is_some()
            || self.augment.is_some()
            || self.solver.is_some()
            || self.rtol.is_some()
            || self.atol.is_some()
    }

    /// Writes the given options into `options`; refuses them for a flow that is not continuous
    /// (`is_cnf == false`), where they would silently do nothing.
    pub fn apply(&self, is_cnf: bool, options: &mut CnfOptions) -> anyhow::Result<()> {
        if !is_cnf {
            if self.any() {
                bail!(
                    "--cnf-steps, --trace, --probe(s), --kinetic, --jacobian, --augment, --solver, --rtol and --atol apply to --flow cnf only"
                );
            }
            return Ok(());
        }
        if let Some(steps) = self.cnf_steps {
            options.steps = steps;
        }
        if let Some(trace) = self.trace {
            options.trace = match trace {
                TraceArg::Exact => TraceEstimator::Exact,
                TraceArg::Hutchinson => TraceEstimator::Hutchinson,
            };
        }
        if let Some(probe) = self.probe {
            options.probe = match probe {
                ProbeArg::Gaussian => ProbeKind::Gaussian,
                ProbeArg::Rademacher => ProbeKind::Rademacher,
            };
        }
        if let Some(probes) = self.probes {
            options.probes = probes;
        }
        if let Some(kinetic) = self.kinetic {
            options.kinetic = kinetic;
        }
        if let Some(jacobian) = self.jacobian {
            options.jacobian = jacobian;
        }
        if let Some(augment) = self.augment {
            options.augment = augment;
        }
        if let Some(solver) = self.solver {
            options.solver = match solver {
                SolverArg::Rk4 => Solver::Rk4,
                SolverArg::Dopri => Solver::DormandPrince,
            };
        }
        if let Some(rtol) = self.rtol {
            options.rtol = rtol;
        }
        if let Some(atol) = self.atol {
            options.atol = atol;
        }
        Ok(())
    }
}
