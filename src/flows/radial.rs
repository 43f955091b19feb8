//! Radial flows (Rezende & Mohamed 2015, "Variational Inference with Normalizing Flows", §4.1).
//!
//! `f(z) = z + β·h(α, r)·(z − z₀)`, `h = 1/(α + r)`, `r = ‖z − z₀‖`: a contraction
//! (`β < 0`) or expansion (`β > 0`) around the centre `z₀`. With `h′ = −1/(α + r)²`,
//! `log|det ∂f/∂z| = (D − 1)·log(1 + βh) + log(1 + βh + βh′r)`, and
//! `1 + βh + βh′r = 1 + βα/(α + r)²`.
//!
//! **Invertibility** (the paper's appendix A): `β ≥ −α`. Parameterised as `α = softplus(α̂) > 0`
//! and `β = −α + softplus(β̂) > −α`. Initialised near the identity: `α̂ = 0` and a small `β̂ − α̂`.
//!
//! **Inverse.** `f` moves points along rays from `z₀`, so the density direction is a 1-D root
//! solve along the ray: with `s = ‖y − z₀‖`, find `r ≥ 0` with `r·(1 + β/(α + r)) = s`
//! (strictly increasing in `r`). Why no iterative solver here: multiplying out gives the
//! quadratic `r² + (α + β − s)·r − α·s = 0`, whose non-negative root is exact and cheap. It is
//! evaluated in the cancellation-free form for each sign of `B = α + β − s`:
//! `r = (√Δ − B)/2` for `B ≤ 0` and `r = 2αs/(B + √Δ)` for `B > 0`, `Δ = B² + 4αs`. Then
//! `z = z₀ + (y − z₀)/(1 + βh(r))` and the log-determinant is exactly minus the forward one at
//! `r`. [`super::Layer::inverse_with_residual`] still reports `|f(f⁻¹(y)) − y|`, which grows as
//! `β → −α` collapses a neighbourhood of `z₀` (the "exploding inverse").

use super::{LayerOutput, ParamRef};
use crate::engine::{Axis, Graph, Init, ParamStore, Unary, Var};
use crate::rng::Rng;

/// Added to squared distances before the square root, so `r` has a finite gradient at `z₀`.
/// It shifts `r` by at most `1e-12`.
const DISTANCE_FLOOR: f32 = 1e-24;

/// One radial layer `f(z) = z + β/(α + r)·(z − z₀)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Radial {
    /// The centre `z₀` (`1×D`).
    pub centre: ParamRef,
    /// Raw `α̂` (`1×1`), `α = softplus(α̂)`.
    pub alpha_raw: ParamRef,
    /// Raw `β̂` (`1×1`), `β = −α + softplus(β̂)`.
    pub beta_raw: ParamRef,
    dim: usize,
}

/// A layer's constrained parameters, as graph nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadialParams {
    /// `z₀` (`1×D`).
    pub centre: Var,
    /// `α > 0` (`1×1`).
    pub alpha: Var,
    /// `β > −α` (`1×1`).
    pub beta: Var,
}

impl Radial {
    /// Layer `k` of a `dim`-dimensional flow: `z₀ ~ N(0, I)`, `α = ln 2`, `β ≈ N(0, 0.005²)`.
    pub fn new(store: &mut ParamStore, k: usize, dim: usize, rng: &mut Rng) -> Self {
        Self {
            centre: ParamRef::new(
                store,
                format!("layer{k}.radial.centre"),
                1,
                dim,
                Init::Normal { std: 1.0 },
                rng,
            ),
            alpha_raw: ParamRef::new(
                store,
                format!("layer{k}.radial.alpha"),
                1,
                1,
                Init::Constant(0.0),
                rng,
            ),
            // softplus′(0) = ½, so β ≈ β̂/2 near the identity.
            beta_raw: ParamRef::new(
                store,
                format!("layer{k}.radial.beta"),
                1,
                1,
                Init::Normal { std: 0.01 },
                rng,
            ),
            dim,
        }
    }

    /// `z₀`, `α = softplus(α̂)`, `β = −α + softplus(β̂)`.
    pub fn params(&self, g: &mut Graph) -> RadialParams {
        let centre = self.centre.var(g);
        let (ar, br) = (self.alpha_raw.var(g), self.beta_raw.var(g));
        let alpha = g.softplus(ar);
        let sb = g.softplus(br);
        let beta = g.sub(sb, alpha);
        RadialParams {
            centre,
            alpha,
            beta,
        }
    }

    /// `(x − z₀, ‖x − z₀‖)`.
    fn offset(g: &mut Graph, p: &RadialParams, x: Var) -> (Var, Var) {
        let d = g.sub(x, p.centre);
        let d2 = g.square(d);
        let s = g.sum(Axis::Cols, d2);
        let s = g.add_scalar(s, DISTANCE_FLOOR);
        (d, g.unary(Unary::Sqrt, s))
    }

    /// `(1 + βh, log|det|)` at radius `r` (`r×1`).
    fn gain_and_log_det(&self, g: &mut Graph, p: &RadialParams, r: Var) -> (Var, Var) {
        let ar = g.add(r, p.alpha);
        let bh = g.div(p.beta, ar);
        let gain = g.add_scalar(bh, 1.0);
        // 1 + βh + βh′r = 1 + βh·α/(α + r)
        let ah = g.div(p.alpha, ar);
        let radial = g.mul(bh, ah);
        let radial = g.add_scalar(radial, 1.0);
        let mut log_det = g.log(radial);
        if self.dim > 1 {
            let lg = g.log(gain);
            let lg = g.scale(lg, (self.dim - 1) as f32);
            log_det = g.add(log_det, lg);
        }
        (gain, log_det)
    }

    /// `f(x)` and its log-determinant.
    fn apply(&self, g: &mut Graph, p: &RadialParams, x: Var) -> LayerOutput {
        let (d, r) = Self::offset(g, p, x);
        let (gain, log_det) = self.gain_and_log_det(g, p, r);
        let moved = g.mul(d, gain);
        LayerOutput {
            y: g.add(p.centre, moved),
            log_det,
        }
    }

    /// The radius `r` with `r·(1 + β/(α + r)) = s`, from the quadratic's stable root.
    fn solve(g: &mut Graph, p: &RadialParams, s: Var) -> Var {
        let ab = g.add(p.alpha, p.beta);
        let b = g.sub(ab, s);
        let b2 = g.square(b);
        let as4 = g.mul(s, p.alpha);
        let as4 = g.scale(as4, 4.0);
        let disc = g.add(b2, as4);
        let root = g.unary(Unary::Sqrt, disc);
        let positive = g.unary(Unary::Step, b);
        // B ≤ 0: (√Δ − B)/2, no cancellation.
        let plain = g.sub(root, b);
        let plain = g.scale(plain, 0.5);
        // B > 0: 2αs/(B + √Δ). Why the select on the denominator too: the unused branch must
        // stay finite, or its zero adjoint times an infinite partial makes a NaN gradient.
        let sum = g.add(b, root);
        let one = g.fill(1.0, 1, 1);
        let denom = g.select(positive, sum, one);
        let twice = g.scale(as4, 0.5);
        let stable = g.div(twice, denom);
        g.select(positive, stable, plain)
    }

    /// The density direction with its parameters already in the graph.
    fn invert(&self, g: &mut Graph, p: &RadialParams, y: Var) -> LayerOutput {
        let (d, s) = Self::offset(g, p, y);
        let r = Self::solve(g, p, s);
        let (gain, log_det) = self.gain_and_log_det(g, p, r);
        let moved = g.div(d, gain);
        LayerOutput {
            y: g.add(p.centre, moved),
            log_det: g.neg(log_det),
        }
    }
}

impl super::Layer for Radial {
    fn kind(&self) -> &'static str {
        "radial"
    }
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        let p = self.params(g);
        self.apply(g, &p, x)
    }
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        let p = self.params(g);
        self.invert(g, &p, y)
    }
    fn inverse_with_residual(&self, g: &mut Graph, y: Var) -> (LayerOutput, Option<Var>) {
        let p = self.params(g);
        let out = self.invert(g, &p, y);
        let again = self.apply(g, &p, out.y);
        let residual = super::planar::row_distance(g, again.y, y);
        (out, Some(residual))
    }
    /// `β = 0.30 > −α = −0.80`: the constrained `β` against the invertibility bound, and
    /// whether the layer contracts towards its centre or expands away from it.
    fn describe(&self, store: &ParamStore) -> Option<String> {
        let mut g = Graph::new();
        let p = self.params(&mut g);
        let values = super::describe::evaluate(&g, store, &[p.alpha, p.beta])?;
        let (alpha, beta) = (*values.first()?.first()?, *values.get(1)?.first()?);
        let (beta_text, bound) = super::describe::apart(f64::from(beta), -f64::from(alpha));
        let motion = match beta_text
            .trim_start_matches('−')
            .trim_start_matches(['0', '.'])
        {
            "" => crate::tr!("layer.nearly_identity"),
            _ if beta < 0.0 => crate::tr!("layer.contracts"),
            _ => crate::tr!("layer.expands"),
        };
        Some(format!("β = {beta_text} > −α = {bound} ({motion})"))
    }
}
