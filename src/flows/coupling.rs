//! Coupling layers: half the coordinates condition an invertible map of the other half.
//!
//! Split `x = (x_a, x_b)`; `x_a` passes through unchanged, so the Jacobian is triangular and
//! its determinant is the product of the diagonal of `∂y_b/∂x_b`.
//! - **NICE** (Dinh, Krueger & Bengio 2015): additive, `y_b = x_b + m(x_a)`; `log|det J| = 0`
//!   (volume preserving), so NICE ends with a diagonal scaling `y = e^{s} ⊙ x`,
//!   `log|det J| = Σ_j s_j`.
//! - **RealNVP** (Dinh, Sohl-Dickstein & Bengio 2017): affine, `y_b = x_b ⊙ e^{s(x_a)} + t(x_a)`,
//!   `log|det J| = Σ_j s_j(x_a)`; inverse `x_b = (y_b − t) ⊙ e^{−s}`. The log-scale is bounded,
//!   `s = tanh(ŝ)`, which keeps early steps from exploding.
//!
//! Layer `k` conditions on the coordinates `j` with `j + k` even, so consecutive layers
//! alternate which half moves (in 2-D: layer 0 moves `x₁` given `x₀`, layer 1 the reverse).

use super::mlp::{Activation, Mlp};
use super::{LayerOutput, ParamRef, describe, sum_cols, zero_log_det};
use crate::engine::{Graph, Init, ParamStore, Var};
use crate::rng::Rng;

/// Which coordinates condition and which move.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// Columns passed through (and fed to the conditioner).
    pub conditioned: Vec<usize>,
    /// Columns transformed.
    pub transformed: Vec<usize>,
}

impl Partition {
    /// The alternating partition of layer `k` in `dim` dimensions.
    pub fn alternating(dim: usize, k: usize) -> Self {
        let (conditioned, transformed) = (0..dim).partition(|j| (j + k).is_multiple_of(2));
        Self {
            conditioned,
            transformed,
        }
    }

    /// `x₂ <how> given x₁` (`x₂ given x₁` when `how` is empty): which coordinates move and
    /// which condition them, for [`super::Layer::describe`].
    pub(crate) fn describe(&self, how: &str) -> String {
        let moved = describe::coordinates(&self.transformed);
        let given = describe::coordinates(&self.conditioned);
        match how {
            "" => crate::tr!("layer.moved_given", moved = moved, given = given),
            how => crate::tr!(
                "layer.moved_how_given",
                moved = moved,
                how = how,
                given = given
            ),
        }
    }

    /// `(x_a, x_b)`.
    pub fn split(&self, g: &mut Graph, x: Var) -> (Var, Var) {
        (pick(g, x, &self.conditioned), pick(g, x, &self.transformed))
    }

    /// Reassembles `(x_a, y_b)` into the original column order.
    pub fn merge(&self, g: &mut Graph, a: Var, b: Var) -> Var {
        let dim = self.conditioned.len() + self.transformed.len();
        // Runs of consecutive output columns that come from one side, contiguously.
        let mut pieces: Vec<Var> = Vec::new();
        let mut j = 0;
        while j < dim {
            let (side, list) = match self.conditioned.iter().position(|&c| c == j) {
                Some(_) => (a, &self.conditioned),
                None => (b, &self.transformed),
            };
            let start = list.iter().position(|&c| c == j).unwrap_or(0);
            let mut len = 1;
            while j + len < dim && list.get(start + len) == Some(&(j + len)) {
                len += 1;
            }
            pieces.push(g.cols(side, start, len));
            j += len;
        }
        g.concat(&pieces)
    }
}

/// The columns `list` of `x`, as one matrix.
fn pick(g: &mut Graph, x: Var, list: &[usize]) -> Var {
    let contiguous = list.windows(2).all(|w| w[1] == w[0] + 1);
    match list.first() {
        Some(&start) if contiguous => g.cols(x, start, list.len()),
        _ => {
            let singles: Vec<Var> = list.iter().map(|&c| g.cols(x, c, 1)).collect();
            g.concat(&singles)
        }
    }
}

/// Sizes of a conditioner MLP.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConditionerShape {
    /// Hidden width.
    pub hidden: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// Hidden nonlinearity.
    pub activation: Activation,
}

impl ConditionerShape {
    fn sizes(&self, input: usize, output: usize) -> Vec<usize> {
        let mut s = vec![input];
        s.extend(std::iter::repeat_n(self.hidden, self.depth));
        s.push(output);
        s
    }
}

/// NICE's additive coupling.
#[derive(Debug)]
pub struct AdditiveCoupling {
    partition: Partition,
    shift: Mlp,
}

impl AdditiveCoupling {
    /// Layer `k` of a `dim`-dimensional flow.
    pub fn new(
        store: &mut ParamStore,
        k: usize,
        dim: usize,
        c: ConditionerShape,
        rng: &mut Rng,
    ) -> Self {
        let partition = Partition::alternating(dim, k);
        let sizes = c.sizes(partition.conditioned.len(), partition.transformed.len());
        let shift = Mlp::new(store, &format!("layer{k}.shift"), &sizes, c.activation, rng);
        Self { partition, shift }
    }
}

impl super::Layer for AdditiveCoupling {
    fn kind(&self) -> &'static str {
        "additive coupling"
    }
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        let (a, b) = self.partition.split(g, x);
        let m = self.shift.apply(g, a);
        let yb = g.add(b, m);
        LayerOutput {
            y: self.partition.merge(g, a, yb),
            log_det: zero_log_det(g, x),
        }
    }
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        let (a, b) = self.partition.split(g, y);
        let m = self.shift.apply(g, a);
        let xb = g.sub(b, m);
        LayerOutput {
            y: self.partition.merge(g, a, xb),
            log_det: zero_log_det(g, y),
        }
    }
    /// `x₂ shifted given x₁ (volume-preserving, log det = 0)`.
    fn describe(&self, _store: &ParamStore) -> Option<String> {
        let moves = self.partition.describe(crate::tr!("layer.shifted"));
        Some(crate::tr!("layer.volume_preserving", moves = moves))
    }
}

/// NICE's final diagonal scaling `y = e^{s} ⊙ x`.
#[derive(Debug)]
pub struct DiagonalScale {
    log_scale: ParamRef,
}

impl DiagonalScale {
    /// Starts at the identity (`s = 0`).
    pub fn new(store: &mut ParamStore, name: &str, dim: usize, rng: &mut Rng) -> Self {
        Self {
            log_scale: ParamRef::new(store, name, 1, dim, Init::Constant(0.0), rng),
        }
    }

    fn apply(&self, g: &mut Graph, x: Var, sign: f32) -> LayerOutput {
        let s = self.log_scale.var(g);
        let s = g.scale(s, sign);
        let factor = g.exp(s);
        let y = g.mul(x, factor);
        let total = g.sum(crate::engine::Axis::All, s);
        let rows = g.shape(x).rows;
        let log_det = g.broadcast(total, crate::engine::Shape::new(rows, 1));
        LayerOutput { y, log_det }
    }
}

impl super::Layer for DiagonalScale {
    fn kind(&self) -> &'static str {
        "diagonal scaling"
    }
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        self.apply(g, x, 1.0)
    }
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        self.apply(g, y, -1.0)
    }
    /// `scale (1.10, 0.95), log det = Σ s = 0.05`.
    fn describe(&self, store: &ParamStore) -> Option<String> {
        let s = store.get(self.log_scale.id);
        let scale = describe::vector(s.iter().map(|&v| f64::from(v).exp()));
        let total: f64 = s.iter().map(|&v| f64::from(v)).sum();
        let total = describe::number(total, 2);
        Some(crate::tr!("layer.scaling", scale = scale, total = total))
    }
}

/// RealNVP's affine coupling.
#[derive(Debug)]
pub struct AffineCoupling {
    partition: Partition,
    conditioner: Mlp,
}

impl AffineCoupling {
    /// Layer `k` of a `dim`-dimensional flow; the conditioner outputs `(ŝ, t)`.
    pub fn new(
        store: &mut ParamStore,
        k: usize,
        dim: usize,
        c: ConditionerShape,
        rng: &mut Rng,
    ) -> Self {
        let partition = Partition::alternating(dim, k);
        let nb = partition.transformed.len();
        let sizes = c.sizes(partition.conditioned.len(), 2 * nb);
        let conditioner = Mlp::new(
            store,
            &format!("layer{k}.affine"),
            &sizes,
            c.activation,
            rng,
        );
        Self {
            partition,
            conditioner,
        }
    }

    /// `(s, t)` from the conditioning half.
    fn scale_shift(&self, g: &mut Graph, a: Var) -> (Var, Var) {
        let nb = self.partition.transformed.len();
        let out = self.conditioner.apply(g, a);
        let raw = g.cols(out, 0, nb);
        let t = g.cols(out, nb, nb);
        (g.tanh(raw), t)
    }
}

impl super::Layer for AffineCoupling {
    fn kind(&self) -> &'static str {
        "affine coupling"
    }
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput {
        let (a, b) = self.partition.split(g, x);
        let (s, t) = self.scale_shift(g, a);
        let es = g.exp(s);
        let scaled = g.mul(b, es);
        let yb = g.add(scaled, t);
        LayerOutput {
            y: self.partition.merge(g, a, yb),
            log_det: sum_cols(g, s),
        }
    }
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput {
        let (a, b) = self.partition.split(g, y);
        let (s, t) = self.scale_shift(g, a);
        let shifted = g.sub(b, t);
        let neg_s = g.neg(s);
        let factor = g.exp(neg_s);
        let xb = g.mul(shifted, factor);
        let log_det = sum_cols(g, neg_s);
        LayerOutput {
            y: self.partition.merge(g, a, xb),
            log_det,
        }
    }
    /// `x₂ scaled and shifted given x₁`.
    fn describe(&self, _store: &ParamStore) -> Option<String> {
        Some(
            self.partition
                .describe(crate::tr!("layer.scaled_and_shifted")),
        )
    }
}
