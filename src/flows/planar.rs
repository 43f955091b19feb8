//! Planar flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", §4.1).
//!
//! `f(z) = z + û·tanh(wᵀz + b)`, with `u, w ∈ ℝᴰ`, `b ∈ ℝ`. By the matrix determinant lemma
//! `log|det ∂f/∂z| = log|1 + tanh′(wᵀz + b)·ûᵀw|`, `tanh′ = 1 − tanh²`.
//!
//! **Invertibility** (the paper's appendix A): `f` is invertible iff `ûᵀw ≥ −1`. The raw `u`
//! is reparameterised as `û = u + (m(wᵀu) − wᵀu)·w/‖w‖²` with `m(a) = −1 + softplus(a)`, so
//! `ûᵀw = m(wᵀu) > −1` whatever the raw parameters are ([`FOLD_MARGIN`] keeps it strict in
//! f32). As `wᵀu → −∞` it approaches `−1` and the map approaches a fold: the "exploding
//! inverse" a user can provoke in the app.
//!
//! **Inverse** (density direction) has no closed form. With `c = ûᵀw` and `x = wᵀz + b`,
//! projecting `y = f(z)` on `w` gives `F(x) = x + c·tanh x − (wᵀy + b) = 0`. `F` is strictly
//! increasing (`F′ = 1 + c·tanh′ x ≥ m = 1 + min(c, 0) > 0`) and, since `|tanh| < 1`, its
//! root lies in `wᵀy + b ± |c|`. It is solved in the graph, per row, by [`BISECTION_STEPS`]
//! bisection steps on that bracket, then [`NEWTON_STEPS`] Newton steps, then a clamp to the
//! last bisection bracket. Why this split:
//! with `|F″| ≤ M = 0.77|c|`, Newton converges quadratically once the error is below `m/M`;
//! 16 halvings of the `2|c|` bracket get there for `c²/m < 10⁴` (`c` up to 100, or `ûᵀw` down
//! to `−0.9999`), and 4 Newton steps then reach f64 precision (the finite-difference tests
//! need it). Nearer the fold Newton may wander and the clamp bounds the error by the bracket,
//! `2|c|·2⁻¹⁶`; the residual `|f(f⁻¹(y)) − y|` shows it. Then `z = y − û·tanh x` and the
//! log-determinant is exactly minus the forward one at the solved point.
//!
//! Why this gives correct gradients (maximum likelihood through the density direction): the
//! bisection's choices are `Sign`s, which carry no derivative, and a Newton step
//! `x₁ = x₀ − F(x₀)/F′(x₀)` at a converged `x₀` has derivative `−(∂F/∂θ)/F′` — the
//! implicit-function gradient — whatever `∂x₀/∂θ` was.

use super::{LayerOutput, ParamRef};
use crate::engine::{Axis, Binary, Graph, Init, ParamStore, Unary, Var};
use crate::rng::Rng;

/// Bisection steps of the inverse (see the module docs for why 16).
pub const BISECTION_STEPS: usize = 16;
/// Newton steps after the bisection: from an error below `m/(8M)`, four reach f64 precision.
pub const NEWTON_STEPS: usize = 4;

/// Added to `m(a) = −1 + softplus(a)`: the paper's bound `ûᵀw > −1` is strict, but
/// `−1 + softplus(a)` rounds to `−1` in f32 once `a < −17`; this margin keeps it strict (and the
/// inverse's condition number `≤ 1/(1 + ûᵀw)` finite) for any raw parameters.
pub const FOLD_MARGIN: f32 = 1e-6;

/// `ln(e − 1)`: the `wᵀu` at which `m(wᵀu) = −1 + softplus(wᵀu)` is zero.
const IDENTITY_W_DOT_U: f32 = 0.541_324_87;

/// Keeps `‖w‖²` away from zero in the reparameterisation (`w = 0` is the identity map anyway).
const NORM_FLOOR: f32 = 1e-12;

/// One planar layer `f(z) = z + û·tanh(wᵀz + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Planar {
    /// Raw `u` (`1×D`), before the reparameterisation.
    pub u: ParamRef,
    /// `w` (`1×D`).
    pub w: ParamRef,
    /// `b` (`1×1`).
    pub b: ParamRef,
}

/// The reparameterised vectors of a layer, as graph nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanarParams {
    /// `û` (`1×D`).
    pub u_hat: Var,
    /// `w` (`1×D`).
    pub w: Var,
    /// `b` (`1×1`).
    pub b: Var,
    /// `c = ûᵀw` (`1×1`), always `> −1`.
    pub u_hat_dot_w: Var,
}

impl Planar {
    /// Layer `k` of a `dim`-dimensional flow, near the identity: `w ~ N(0, 1/D)` picks a random
    /// direction, `b = 0`, and `u = ln(e − 1)·w/‖w‖² + N(0, 0.01²)`.
    ///
    /// Why not simply a small `u`: the reparameterisation gives `û = u⊥ + m(wᵀu)·w/‖w‖²`
    /// (`u⊥` the part of `u` orthogonal to `w`), and `m(0) = −1 + ln 2 ≈ −0.31`, so a small `u`
    /// makes every layer a contraction with `ûᵀw ≈ −0.31`; sixteen of them stack into a spike.
    /// The identity needs `u⊥ = 0` and `m(wᵀu) = 0`, i.e. `wᵀu = ln(e − 1)`.
    pub fn new(store: &mut ParamStore, k: usize, dim: usize, rng: &mut Rng) -> Self {
        let w_std = 1.0 / (dim.max(1) as f32).sqrt();
        let u = ParamRef::new(
            store,
            format!("layer{k}.planar.u"),
            1,
            dim,
            Init::Normal { std: 0.01 },
            rng,
        );
        let w = ParamRef::new(
            store,
            format!("layer{k}.planar.w"),
            1,
            dim,
            Init::Normal { std: w_std },
            rng,
        );
        let b = ParamRef::new(
            store,
            format!("layer{k}.planar.b"),
            1,
            1,
            Init::Constant(0.0),
            rng,
        );
        let w_values = store.values()[store.spec(w.id).range()].to_vec();
        let norm2: f32 = w_values.iter().map(|v| v * v).sum::<f32>() + NORM_FLOOR;
        let u_range = store.spec(u.id).range();
        for (uj, wj) in store.values_mut()[u_range].iter_mut().zip(&w_values) {
            *uj += IDENTITY_W_DOT_U * wj / norm2;
        }
        Self { u, w, b }
    }

    /// `û = u + (m(wᵀu) − wᵀu)·w/‖w‖²`, `m(a) = −1 + FOLD_MARGIN + softplus(a)`, and
    /// `ûᵀw = m(wᵀu)`.
    pub fn params(&self, g: &mut Graph) -> PlanarParams {
        let (u, w, b) = (self.u.var(g), self.w.var(g), self.b.var(g));
        let uw = g.mul(u, w);
        let w_dot_u = g.sum(Axis::All, uw);
        let sp = g.softplus(w_dot_u);
        let m = g.add_scalar(sp, FOLD_MARGIN - 1.0);
        let w2 = g.square(w);
        let norm2 = g.sum(Axis::All, w2);
        let floored = g.add_scalar(norm2, NORM_FLOOR);
        let gap = g.sub(m, w_dot_u);
        let coef = g.div(gap, floored);
        let shift = g.mul(coef, w);
        let u_hat = g.add(u, shift);
        // ûᵀw in closed form rather than as a dot product of û with w: the dot product of
        // large, nearly cancelling terms can round below −1 in f32. With the floor it is
        // m·ρ + wᵀu·(1 − ρ), ρ = ‖w‖²/(‖w‖² + floor), each weight computed directly.
        let rho = g.div(norm2, floored);
        let rest = g.fill(NORM_FLOOR, 1, 1);
        let rest = g.div(rest, floored);
        let mr = g.mul(m, rho);
        let ar = g.mul(w_dot_u, rest);
        let u_hat_dot_w = g.add(mr, ar);
        PlanarParams {
            u_hat,
            w,
            b,
            u_hat_dot_w,
        }
    }

    /// `x·wᵀ` (`r×1`).
    fn project(g: &mut Graph, x: Var, w: Var) -> Var {
        g.matmul_t(x, w, false, true)
    }

    /// `1 + c·(1 − th²)`: the slope of the map along `w` (`TanhGrad` computes `c·(1 − th²)`).
    fn slope(g: &mut Graph, c: Var, th: Var) -> Var {
        let bend = g.binary(Binary::TanhGrad, c, th);
        g.add_scalar(bend, 1.0)
    }

    /// `log|det| = log(1 + c·(1 − tanh²))` from `tanh(wᵀz + b)`.
    fn log_det_from_tanh(g: &mut Graph, p: &PlanarParams, th: Var) -> Var {
        let det = Self::slope(g, p.u_hat_dot_w, th);
        g.log(det)
    }

    /// `f(x)` with `tanh(wᵀx + b)`.
    fn apply(g: &mut Graph, p: &PlanarParams, x: Var) -> (Var, Var) {
        let a = Self::project(g, x, p.w);
        let a = g.add(a, p.b);
        let th = g.tanh(a);
        let bend = g.mul(th, p.u_hat);
        (g.add(x, bend), th)
    }

    /// `tanh x` at the root `x = wᵀz + b` of `x + c·tanh x = wᵀy + b`, per row (`r×1`).
    fn solve(g: &mut Graph, p: &PlanarParams, y: Var) -> Var {
        let c = p.u_hat_dot_w;
        let target = Self::project(g, y, p.w);
        let target = g.add(target, p.b);
        // Bisection as signed steps from the bracket's centre: after step k the root lies within
        // `x ± |c|·2⁻ᵏ`. One op fewer per step than tracking an end point and a mask.
        let mut half = g.unary(Unary::Abs, c);
        let mut x = target;
        for _ in 0..BISECTION_STEPS {
            let th = g.tanh(x);
            let ct = g.mul(th, c);
            let value = g.add(x, ct);
            // +1 when the root lies above `x` (x falls short of the target), −1 below.
            let shortfall = g.sub(target, value);
            let direction = g.unary(Unary::Sign, shortfall);
            half = g.scale(half, 0.5);
            let step = g.mul(direction, half);
            x = g.add(x, step);
        }
        // Why stop the gradient here: the bisection's signs carry no derivative anyway, and at a
        // converged root a Newton step from a constant start has exactly the implicit-function
        // gradient `−(∂F/∂θ)/F′`; so the backward pass skips all the bracketing work.
        let centre = g.unary(Unary::StopGradient, x);
        let half = g.unary(Unary::StopGradient, half);
        let mut x = centre;
        for _ in 0..NEWTON_STEPS {
            let th = g.tanh(x);
            let ct = g.mul(th, c);
            let value = g.add(x, ct);
            let residual = g.sub(value, target);
            let slope = Self::slope(g, c, th);
            let delta = g.div(residual, slope);
            x = g.sub(x, delta);
        }
        // Clamp to the last bracket `centre ± half`, widened to `± 2·half` so that a converged
        // root is never snapped to an edge by rounding (its gradient would be lost).
        let reach = g.scale(half, 2.0);
        let low = g.sub(centre, reach);
        let high = g.add(centre, reach);
        let over = g.sub(x, high);
        let over = g.unary(Unary::Step, over);
        let under = g.sub(low, x);
        let under = g.unary(Unary::Step, under);
        let outside = g.add(over, under);
        let bound = g.select(over, high, low);
        let x = g.select(outside, bound, x);
        g.tanh(x)
    }

    /// The density direction with its parameters already in the graph.
    fn invert(g: &mut Graph, p: &PlanarParams, y: Var) -> LayerOutput {
        let th = Self::solve(g, p, y);
        let bend = g.mul(th, p.u_hat);
        let z = g.sub(y, bend);
        let log_det = Self::log_det_from_tanh(g, p, th);
        LayerOutput {
            y: z,
            log_det: g.neg(log_det),
        }
    }
}

/// `‖a − b‖` per row (`r×1`).
pub(crate) fn row_distance(g: &mut Graph, a: Var, b: Var) -> Var {
    let d = g.sub(a, b);
    let d2 = g.square(d);
    let s = g.sum(Axis::Cols, d2);
    g.unary(Unary::Sqrt, s)
}

impl super::Layer for Planar {
    fn kind(&self) -> &'static str {
        "planar"
    }
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        let p = self.params(g);
        let (y, th) = Self::apply(g, &p, x);
        LayerOutput {
            y,
            log_det: Self::log_det_from_tanh(g, &p, th),
        }
    }
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        let p = self.params(g);
        Self::invert(g, &p, y)
    }
    fn inverse_with_residual(&self, g: &mut Graph, y: Var) -> (LayerOutput, Option<Var>) {
        let p = self.params(g);
        let out = Self::invert(g, &p, y);
        let (again, _) = Self::apply(g, &p, out.y);
        let residual = row_distance(g, again, y);
        (out, Some(residual))
    }
    /// `ûᵀw = 0.41 > −1`: the reparameterised `ûᵀw` that keeps the layer invertible.
    fn describe(&self, store: &ParamStore) -> Option<String> {
        let mut g = Graph::new();
        let p = self.params(&mut g);
        let values = super::describe::evaluate(&g, store, &[p.u_hat_dot_w])?;
        let c = *values.first()?.first()?;
        let (c, bound) = super::describe::apart(f64::from(c), -1.0);
        Some(format!("ûᵀw = {c} > {bound}"))
    }
}
