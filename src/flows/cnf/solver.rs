//! Classic RK4 on a fixed grid, unrolled into the graph (discretise-then-optimise: training
//! backpropagates through the solver's own arithmetic), and the same scheme in plain Rust for
//! reference solutions.
//!
//! The ODE state is augmented with the quantities integrated along the path (FFJORD):
//! `d/dt [z, ℓ, E_K, E_J] = [f(z,t), Tr ∂f/∂z, ‖f‖², ‖∂f/∂z‖_F²]`. With a step `h` (negative
//! when integrating backwards in time) RK4 is
//! `k₁ = F(y, t)`, `k₂ = F(y + h/2·k₁, t + h/2)`, `k₃ = F(y + h/2·k₂, t + h/2)`,
//! `k₄ = F(y + h·k₃, t + h)`, `y ← y + h/6·(k₁ + 2k₂ + 2k₃ + k₄)`; the accumulators do not feed
//! back into `F`, so they are just RK4's quadrature of their integrands along the stages.
//! Then `ℓ = ∫ Tr(∂f/∂z) dt = log|det ∂z(t₁)/∂z(t₀)|` (Liouville), in either direction. The
//! regularisers are integrated over `|dt|`, so they are positive whichever way we go.

use super::field::{FieldVars, Time};
use super::trace::TracePlan;
use crate::engine::{Graph, Var};

/// What an integration produced (`rows × …` nodes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Integrated {
    /// The state at the end time.
    pub z: Var,
    /// `∫ Tr(∂f/∂z) dt` from the start to the end time (signed), `rows × 1`.
    pub log_det: Var,
    /// `∫ ‖f‖² |dt|`, when asked for.
    pub kinetic: Option<Var>,
    /// `∫ ‖∂f/∂z‖_F² |dt|`, when the trace plan computes it.
    pub jacobian: Option<Var>,
}

/// A fixed grid: `steps` equal steps from `t0` to `t1` (`t1 < t0` integrates backwards).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Grid {
    /// Start time.
    pub t0: f64,
    /// End time.
    pub t1: f64,
    /// Number of steps (at least 1).
    pub steps: usize,
}

struct Stage {
    f: Var,
    trace: Var,
    kinetic: Option<Var>,
    jacobian: Option<Var>,
}

/// Integrates `dz/dt = f(z, t)` with RK4 over `grid`, with the divergence of `plan`.
pub fn rk4(
    g: &mut Graph,
    field: &FieldVars,
    plan: &TracePlan,
    z0: Var,
    grid: Grid,
    kinetic: bool,
) -> Integrated {
    let steps = grid.steps.max(1);
    let h = (grid.t1 - grid.t0) / steps as f64;
    let (hf, habs) = (h as f32, h.abs() as f32);
    let mut z = z0;
    let mut acc = Accumulators::default();
    for n in 0..steps {
        let t = grid.t0 + n as f64 * h;
        let stage = |g: &mut Graph, z: Var, t: f64| -> Stage {
            let eval = field.eval(g, z, Time::Constant(t as f32));
            let div = plan.divergence(g, field, &eval);
            let kinetic = kinetic.then(|| {
                let sq = g.square(eval.f);
                crate::flows::sum_cols(g, sq)
            });
            Stage {
                f: eval.f,
                trace: div.trace,
                kinetic,
                jacobian: div.jacobian_sq,
            }
        };
        let k1 = stage(g, z, t);
        let z2 = axpy(g, z, k1.f, 0.5 * hf);
        let k2 = stage(g, z2, t + 0.5 * h);
        let z3 = axpy(g, z, k2.f, 0.5 * hf);
        let k3 = stage(g, z3, t + 0.5 * h);
        let z4 = axpy(g, z, k3.f, hf);
        let k4 = stage(g, z4, t + h);
        let ks = [&k1, &k2, &k3, &k4];
        z = rk4_update(g, Some(z), ks.map(|k| k.f), hf);
        acc.log_det = Some(rk4_update(g, acc.log_det, ks.map(|k| k.trace), hf));
        if let [Some(a), Some(b), Some(c), Some(d)] = ks.map(|k| k.kinetic) {
            acc.kinetic = Some(rk4_update(g, acc.kinetic, [a, b, c, d], habs));
        }
        if let [Some(a), Some(b), Some(c), Some(d)] = ks.map(|k| k.jacobian) {
            acc.jacobian = Some(rk4_update(g, acc.jacobian, [a, b, c, d], habs));
        }
    }
    let rows = g.shape(z0).rows;
    Integrated {
        z,
        log_det: acc.log_det.unwrap_or_else(|| g.fill(0.0, rows, 1)),
        kinetic: acc.kinetic,
        jacobian: acc.jacobian,
    }
}

#[derive(Default)]
struct Accumulators {
    log_det: Option<Var>,
    kinetic: Option<Var>,
    jacobian: Option<Var>,
}

/// `y + c·k`.
fn axpy(g: &mut Graph, y: Var, k: Var, c: f32) -> Var {
    let ck = g.scale(k, c);
    g.add(y, ck)
}

/// `y + h/6·(k₁ + k₄) + h/3·(k₂ + k₃)` (`y` absent: zero).
fn rk4_update(g: &mut Graph, y: Option<Var>, [k1, k2, k3, k4]: [Var; 4], h: f32) -> Var {
    let outer = g.add(k1, k4);
    let inner = g.add(k2, k3);
    let outer = g.scale(outer, h / 6.0);
    let inner = g.scale(inner, h / 3.0);
    let step = g.add(outer, inner);
    match y {
        Some(y) => g.add(y, step),
        None => step,
    }
}

/// A right-hand side `rhs(t, y, dy)`: writes `dy/dt` at `(t, y)` into `dy`.
pub type RightHandSide<'a> = dyn FnMut(f64, &[f64], &mut [f64]) + 'a;

/// RK4 in f64 on `y` in place, for a right-hand side `rhs(t, y, dy)` (reference solutions).
pub fn rk4_in_place(rhs: &mut RightHandSide<'_>, y: &mut [f64], grid: Grid) {
    let n = y.len();
    let steps = grid.steps.max(1);
    let h = (grid.t1 - grid.t0) / steps as f64;
    let (mut k1, mut k2, mut k3, mut k4, mut tmp) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    for s in 0..steps {
        let t = grid.t0 + s as f64 * h;
        rhs(t, y, &mut k1);
        tmp.iter_mut()
            .zip(y.iter().zip(&k1))
            .for_each(|(o, (a, k))| *o = a + 0.5 * h * k);
        rhs(t + 0.5 * h, &tmp, &mut k2);
        tmp.iter_mut()
            .zip(y.iter().zip(&k2))
            .for_each(|(o, (a, k))| *o = a + 0.5 * h * k);
        rhs(t + 0.5 * h, &tmp, &mut k3);
        tmp.iter_mut()
            .zip(y.iter().zip(&k3))
            .for_each(|(o, (a, k))| *o = a + h * k);
        rhs(t + h, &tmp, &mut k4);
        for i in 0..n {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
}
