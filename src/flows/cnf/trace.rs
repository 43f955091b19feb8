//! `Tr(∂f/∂z)` — exactly, or by Hutchinson's estimator — and `‖∂f/∂z‖_F²`, as graph ops.
//!
//! Row convention: `J_ij = ∂f_j/∂z_i`, and for the field's MLP
//! `J = W_z·S₁·W₁·S₂ ⋯ S_L·W_out` with `S_l = diag σ′(a_l)` (per row).
//! - **Forward-mode tangents**: `vJ` for a direction `v` is `v·W_z`, then `⊙ σ′(a_l)` and `·W_l`
//!   layer by layer — the same layers as the field, one hidden-width product per hidden layer.
//!   `Tr J = Σ_i (e_i J)_i` and `‖J‖_F² = Σ_i ‖e_i J‖²` take `D` such passes.
//! - **Exact trace, cheaper** (depth ≤ 2, the default field): by the cyclic trace,
//!   `Tr J = Tr(S₁·W₁·S₂·M)` with `M = W_out·W_z` (`H×H`, parameters only), so per row
//!   `Tr J = s₁ᵀ (W₁ ⊙ Mᵀ) s₂` — one `rows×H·H×H` product for any `D` (depth 1:
//!   `Tr J = s₁ · diag M`, no product at all).
//! - **Hutchinson** (Hutchinson 1989; FFJORD, Grathwohl et al. 2019): `Tr J = E[uᵀJu]` for any
//!   `u` with `E[uuᵀ] = I` (Gaussian or Rademacher); one tangent pass per probe, and
//!   `‖uJ‖²` is an unbiased estimate of `‖J‖_F²` for free (RNODE, Finlay et al. 2020).

use super::field::{FieldEval, FieldVars};
use crate::engine::{Axis, Graph, Var};
use crate::flows::sum_cols;

/// How to compute the divergence terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceMode<'a> {
    /// The exact trace; with `jacobian_norm` also the exact `‖J‖_F²` (by `D` tangent passes).
    Exact {
        /// Also compute `‖∂f/∂z‖_F²`.
        jacobian_norm: bool,
    },
    /// Hutchinson's estimate, averaged over the probes (`rows × D` inputs each); with
    /// `jacobian_norm` also the estimate `‖uJ‖²` of `‖J‖_F²`.
    Hutchinson {
        /// The probe inputs.
        probes: &'a [Var],
        /// Also estimate `‖∂f/∂z‖_F²`.
        jacobian_norm: bool,
    },
}

/// Per-row divergence terms of one field evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    /// `Tr(∂f/∂z)` (or its estimate), `rows × 1`.
    pub trace: Var,
    /// `‖∂f/∂z‖_F²` (or its estimate), `rows × 1`, when asked for.
    pub jacobian_sq: Option<Var>,
}

/// What can be computed once per graph (from parameters only) and reused at every stage.
#[derive(Clone, Debug, PartialEq)]
enum Plan {
    /// Depth 1: `diag(W_out·W_z)` as a `1×H` row.
    Diagonal(Var),
    /// Depth 2: `P = W₁ ⊙ (W_out·W_z)ᵀ`.
    Bilinear(Var),
    /// Tangent passes along the basis: the rows `e_i·W_z` (`1×H` each).
    Basis(Vec<Var>),
    /// Tangent passes along probes.
    Probes(Vec<Var>),
}

/// A divergence computation prepared for one graph (see [`TracePlan::new`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TracePlan {
    plan: Plan,
    jacobian_norm: bool,
}

impl TracePlan {
    /// Prepares `mode` for `field` in `g` (parameter-only products are built here, once).
    pub fn new(g: &mut Graph, field: &FieldVars, mode: TraceMode<'_>) -> Self {
        let dim = field.dim;
        let (plan, jacobian_norm) = match mode {
            TraceMode::Hutchinson {
                probes,
                jacobian_norm,
            } => (Plan::Probes(probes.to_vec()), jacobian_norm),
            TraceMode::Exact { jacobian_norm } if jacobian_norm || field.depth() > 2 => {
                let w_z = field.w_z;
                let rows = (0..dim)
                    .map(|i| {
                        let mut e = vec![0.0; dim];
                        e[i] = 1.0;
                        let e = g.constant(1, dim, e);
                        g.matmul(e, w_z)
                    })
                    .collect();
                (Plan::Basis(rows), jacobian_norm)
            }
            TraceMode::Exact { .. } => {
                let (w_z, w_out) = (field.w_z, field.w_out);
                // (W_zᵀ·W_outᵀ)[j,k] = (W_out·W_z)[k,j] = Mᵀ[j,k].
                let m_t = g.matmul_t(w_z, w_out, true, true);
                match field.hidden.first() {
                    Some(&(w1, _)) => (Plan::Bilinear(g.mul(w1, m_t)), false),
                    None => {
                        let h = g.shape(m_t).rows;
                        let eye = (0..h * h)
                            .map(|k| if k / h == k % h { 1.0 } else { 0.0 })
                            .collect();
                        let eye = g.constant(h, h, eye);
                        let masked = g.mul(m_t, eye);
                        (Plan::Diagonal(g.sum(Axis::Rows, masked)), false)
                    }
                }
            }
        };
        Self {
            plan,
            jacobian_norm,
        }
    }

    /// The divergence terms at one evaluation of `field`.
    pub fn divergence(&self, g: &mut Graph, field: &FieldVars, eval: &FieldEval) -> Divergence {
        match &self.plan {
            Plan::Diagonal(diag) => {
                let weighted = field.activation_tangent(g, eval.layers[0], *diag);
                Divergence {
                    trace: sum_cols(g, weighted),
                    jacobian_sq: None,
                }
            }
            Plan::Bilinear(p) => {
                let s1 = field.activation_slope(g, eval.layers[0]);
                let q = g.matmul(s1, *p);
                // q ⊙ s₂, fused for tanh as TanhGrad(q, h₂).
                let qs = field.activation_tangent(g, eval.layers[1], q);
                Divergence {
                    trace: sum_cols(g, qs),
                    jacobian_sq: None,
                }
            }
            Plan::Basis(rows) => {
                let mut trace = None;
                let mut frob = None;
                for (i, &row) in rows.iter().enumerate() {
                    let vj = tangent(g, field, eval, row);
                    let diag = g.cols(vj, i, 1);
                    trace = Some(accumulate(g, trace, diag));
                    if self.jacobian_norm {
                        let sq = g.square(vj);
                        let sq = sum_cols(g, sq);
                        frob = Some(accumulate(g, frob, sq));
                    }
                }
                let rows_n = g.shape(eval.f).rows;
                Divergence {
                    trace: trace.unwrap_or_else(|| g.fill(0.0, rows_n, 1)),
                    jacobian_sq: frob,
                }
            }
            Plan::Probes(probes) => {
                let mut trace = None;
                let mut frob = None;
                for &u in probes {
                    let first = g.matmul(u, field.w_z);
                    let uj = tangent(g, field, eval, first);
                    let uju = g.mul(uj, u);
                    let est = sum_cols(g, uju);
                    trace = Some(accumulate(g, trace, est));
                    if self.jacobian_norm {
                        let sq = g.square(uj);
                        let sq = sum_cols(g, sq);
                        frob = Some(accumulate(g, frob, sq));
                    }
                }
                let k = probes.len().max(1) as f32;
                let rows_n = g.shape(eval.f).rows;
                let trace = match trace {
                    Some(t) if k > 1.0 => g.scale(t, 1.0 / k),
                    Some(t) => t,
                    None => g.fill(0.0, rows_n, 1),
                };
                let jacobian_sq = frob.map(|f| if k > 1.0 { g.scale(f, 1.0 / k) } else { f });
                Divergence { trace, jacobian_sq }
            }
        }
    }
}

/// `vJ` (`rows × D`) from the first layer's tangent `v·W_z` (`1×H` or `rows×H`).
fn tangent(g: &mut Graph, field: &FieldVars, eval: &FieldEval, first: Var) -> Var {
    let mut v = field.activation_tangent(g, eval.layers[0], first);
    for (&(w, _), &layer) in field.hidden.iter().zip(&eval.layers[1..]) {
        let vw = g.matmul(v, w);
        v = field.activation_tangent(g, layer, vw);
    }
    g.matmul(v, field.w_out)
}

fn accumulate(g: &mut Graph, total: Option<Var>, x: Var) -> Var {
    match total {
        Some(t) => g.add(t, x),
        None => x,
    }
}
