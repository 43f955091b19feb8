//! The vector field `f(z, t)`: an MLP `(D + 1) → hidden → … → D` with time as an input column.
//!
//! The first layer's weight `W_in` (`(D+1) × H`) multiplies `[z, t]`. Where the time is one
//! constant for every row (a fixed-step solver's stage) it is split as
//! `a₁ = z·W_z + (b₁ + t·w_t)`, so the time folds into the bias and costs nothing per row.
//! The output layer starts at zero, so the initial field is `f ≡ 0` and the flow starts as the
//! identity (near-identity initialisation).
//!
//! [`FieldEval`] keeps every hidden layer's pre- and post-activation, because the trace and
//! the Jacobian norm (`trace.rs`) push tangents through the same layers:
//! a dense layer maps a tangent `v ↦ v·W`, an activation `v ↦ σ′(a) ⊙ v`.

use crate::engine::{Binary, Graph, Init, ParamStore, Unary, Var};
use crate::flows::ParamRef;
use crate::flows::mlp::Activation;
use crate::rng::Rng;

/// The time argument of one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Time {
    /// One time for every row, known when the graph is built (a fixed-step solver's stage).
    Constant(f32),
    /// A node: `1×1` (one time for every row, e.g. an adaptive solver's input) or `rows×1`
    /// (a time per row, as flow matching draws them).
    Node(Var),
}

/// A dense layer's weight and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseParams {
    /// Weight `in × out`.
    pub w: ParamRef,
    /// Bias `1 × out`.
    pub b: ParamRef,
}

/// The field's parameters (shared by every time segment of one CNF).
#[derive(Clone, Debug, PartialEq)]
pub struct VectorField {
    /// State dimension `D`.
    pub dim: usize,
    /// The first layer on `[z, t]`: weight `(D+1) × H`, bias `1 × H`.
    pub input: DenseParams,
    /// Hidden-to-hidden layers (`depth − 1` of them).
    pub hidden: Vec<DenseParams>,
    /// Output layer `H × D`, zero at initialisation.
    pub out: DenseParams,
    /// Hidden nonlinearity.
    pub activation: Activation,
}

/// One evaluation of the field at `(z, t)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldEval {
    /// `f(z, t)`, `rows × D`.
    pub f: Var,
    /// Per hidden layer: (pre-activation, post-activation), `rows × H`.
    pub layers: Vec<(Var, Var)>,
}

impl VectorField {
    /// A field on `dim` dimensions with `depth` hidden layers of width `hidden`.
    pub fn new(
        store: &mut ParamStore,
        dim: usize,
        hidden: usize,
        depth: usize,
        activation: Activation,
        rng: &mut Rng,
    ) -> Self {
        let glorot = Init::GlorotUniform { gain: 1.0 };
        let zero = Init::Constant(0.0);
        let mut dense = |i: &str, fan_in, fan_out, init| DenseParams {
            w: ParamRef::new(store, format!("cnf.field.w{i}"), fan_in, fan_out, init, rng),
            b: ParamRef::new(store, format!("cnf.field.b{i}"), 1, fan_out, zero, rng),
        };
        let input = dense("0", dim + 1, hidden, glorot);
        let hidden_layers = (1..depth.max(1))
            .map(|i| dense(&i.to_string(), hidden, hidden, glorot))
            .collect();
        let out = dense("_out", hidden, dim, zero);
        Self {
            dim,
            input,
            hidden: hidden_layers,
            out,
            activation,
        }
    }

    /// Hidden layers (the MLP's depth).
    pub fn depth(&self) -> usize {
        self.hidden.len() + 1
    }

    /// The field's nodes in `g`, with `W_z` and `w_t` split off `W_in` (do this once per
    /// graph region and evaluate through the result).
    pub fn vars(&self, g: &mut Graph) -> FieldVars {
        let d = self.dim;
        let w_in = self.input.w.var(g);
        // Row selectors: W_z = [I_D 0]·W_in, w_t = e_D·W_in (the graph slices columns only).
        let select_z = (0..d * (d + 1))
            .map(|k| if k / (d + 1) == k % (d + 1) { 1.0 } else { 0.0 })
            .collect();
        let select_z = g.constant(d, d + 1, select_z);
        let w_z = g.matmul(select_z, w_in);
        let mut e_t = vec![0.0; d + 1];
        e_t[d] = 1.0;
        let e_t = g.constant(1, d + 1, e_t);
        let w_t = g.matmul(e_t, w_in);
        FieldVars {
            dim: d,
            w_in,
            w_z,
            w_t,
            b_in: self.input.b.var(g),
            hidden: self
                .hidden
                .iter()
                .map(|l| (l.w.var(g), l.b.var(g)))
                .collect(),
            w_out: self.out.w.var(g),
            b_out: self.out.b.var(g),
            activation: self.activation,
        }
    }
}

/// A field's parameter nodes in one graph.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldVars {
    /// State dimension `D`.
    pub dim: usize,
    /// `W_in`, `(D+1) × H`.
    pub w_in: Var,
    /// Its rows on `z`, `D × H`.
    pub w_z: Var,
    /// Its row on `t`, `1 × H`.
    pub w_t: Var,
    /// The first bias, `1 × H`.
    pub b_in: Var,
    /// Hidden-to-hidden (weight, bias) pairs.
    pub hidden: Vec<(Var, Var)>,
    /// Output weight, `H × D`.
    pub w_out: Var,
    /// Output bias, `1 × D`.
    pub b_out: Var,
    /// Hidden nonlinearity.
    pub activation: Activation,
}

impl FieldVars {
    /// Hidden layers (the MLP's depth).
    pub fn depth(&self) -> usize {
        self.hidden.len() + 1
    }

    /// `f(z, t)` for `z` (`rows × D`).
    pub fn eval(&self, g: &mut Graph, z: Var, t: Time) -> FieldEval {
        let pre = match t {
            Time::Constant(t) => {
                let shift = g.scale(self.w_t, t);
                let bias = g.add(self.b_in, shift);
                g.linear(z, self.w_z, bias)
            }
            Time::Node(t) if g.shape(t).rows == 1 => {
                let shift = g.mul(self.w_t, t);
                let bias = g.add(self.b_in, shift);
                g.linear(z, self.w_z, bias)
            }
            Time::Node(t) => {
                let zt = g.concat(&[z, t]);
                g.linear(zt, self.w_in, self.b_in)
            }
        };
        let mut post = self.activation.apply(g, pre);
        let mut layers = vec![(pre, post)];
        for &(w, b) in &self.hidden {
            let pre = g.linear(post, w, b);
            post = self.activation.apply(g, pre);
            layers.push((pre, post));
        }
        let f = g.linear(post, self.w_out, self.b_out);
        FieldEval { f, layers }
    }

    /// `σ′(a)` of hidden layer `(pre, post)`, `rows × H`.
    pub fn activation_slope(&self, g: &mut Graph, (pre, post): (Var, Var)) -> Var {
        match self.activation {
            Activation::Tanh => {
                // 1 − tanh², fused: TanhGrad(1, y) = 1·(1 − y²).
                let one = g.fill(1.0, 1, 1);
                g.binary(Binary::TanhGrad, one, post)
            }
            Activation::Relu => g.unary(Unary::Step, pre),
            Activation::Silu => {
                // σ(a)·(1 + a·(1 − σ(a)))
                let s = g.sigmoid(pre);
                let one_minus = g.neg(s);
                let one_minus = g.add_scalar(one_minus, 1.0);
                let t = g.mul(pre, one_minus);
                let t = g.add_scalar(t, 1.0);
                g.mul(s, t)
            }
            Activation::Elu => {
                // 1 above zero, e^a = y + 1 below.
                let step = g.unary(Unary::Step, pre);
                let one = g.fill(1.0, 1, 1);
                let below = g.add_scalar(post, 1.0);
                g.select(step, one, below)
            }
        }
    }

    /// `v ↦ σ′(a) ⊙ v` for a tangent `v` through hidden layer `(pre, post)`.
    pub fn activation_tangent(&self, g: &mut Graph, layer: (Var, Var), v: Var) -> Var {
        match self.activation {
            // Fused: TanhGrad(v, y) = v ⊙ (1 − y²).
            Activation::Tanh => g.binary(Binary::TanhGrad, v, layer.1),
            _ => {
                let slope = self.activation_slope(g, layer);
                g.mul(slope, v)
            }
        }
    }
}
