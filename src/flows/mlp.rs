//! The multilayer perceptron that conditions couplings and autoregressive layers.
//!
//! Hidden layers draw weights *and biases* from `U(±1/√fan_in)` (PyTorch's default): with a
//! one-dimensional input the biases spread the `tanh` units across the data's range, a far
//! richer basis than zero biases (which make every unit an odd function through the origin).
//! The output layer starts at exactly zero, so every layer it conditions starts as the identity map (`s = 0`, `t = 0`)
//! and the flow starts as its base distribution — the near-identity initialisation that
//! makes early training stable.

use super::ParamRef;
use crate::engine::{Graph, Init, ParamStore, Unary, Var};
use crate::rng::Rng;

/// Hidden-layer nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// `tanh` (the reference model's).
    #[default]
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `x·sigmoid(x)`.
    Silu,
    /// `x` or `e^x − 1`.
    Elu,
}

impl Activation {
    /// Applies it in `g`.
    pub fn apply(self, g: &mut Graph, x: Var) -> Var {
        match self {
            Activation::Tanh => g.tanh(x),
            Activation::Relu => g.unary(Unary::Relu, x),
            Activation::Silu => g.unary(Unary::Silu, x),
            Activation::Elu => g.unary(Unary::Elu, x),
        }
    }

    /// Every activation, in menu order.
    pub const ALL: [Activation; 4] = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Silu,
        Activation::Elu,
    ];

    /// Its CLI/URL name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Silu => "silu",
            Activation::Elu => "elu",
        }
    }

    /// Every name, in menu order (for the CLI's parser).
    pub const NAMES: [&'static str; 4] = ["tanh", "relu", "silu", "elu"];

    /// Parses a CLI/URL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One dense layer `x·W + b`, with an optional constant mask multiplied into `W` (MADE).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Weight `in × out`.
    pub w: ParamRef,
    /// Bias `1 × out`.
    pub b: ParamRef,
    /// A 0/1 mask of `W`'s shape, row-major.
    pub mask: Option<Vec<f32>>,
}

impl Dense {
    /// Applies the layer.
    pub fn apply(&self, g: &mut Graph, x: Var) -> Var {
        let mut w = self.w.var(g);
        if let Some(mask) = &self.mask {
            let m = g.constant(self.w.shape.rows, self.w.shape.cols, mask.clone());
            w = g.mul(w, m);
        }
        let b = self.b.var(g);
        g.linear(x, w, b)
    }
}

/// An MLP `in → hidden… → out`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// The dense layers, input first.
    pub layers: Vec<Dense>,
    /// Between hidden layers.
    pub activation: Activation,
}

impl Mlp {
    /// A new MLP with widths `sizes = [in, h1, …, out]`; the last layer is zero.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        sizes: &[usize],
        activation: Activation,
        rng: &mut Rng,
    ) -> Self {
        let n = sizes.len().saturating_sub(1);
        let layers = (0..n)
            .map(|i| {
                let last = i + 1 == n;
                let (fan_in, fan_out) = (sizes[i], sizes[i + 1]);
                let init = if last {
                    Init::Constant(0.0)
                } else {
                    Init::FanInUniform { fan_in }
                };
                let w = ParamRef::new(store, format!("{name}.w{i}"), fan_in, fan_out, init, rng);
                let b = ParamRef::new(store, format!("{name}.b{i}"), 1, fan_out, init, rng);
                Dense { w, b, mask: None }
            })
            .collect();
        Self { layers, activation }
    }

    /// Applies the MLP to `x` (`rows × in`).
    pub fn apply(&self, g: &mut Graph, x: Var) -> Var {
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.apply(g, h);
            if i + 1 < self.layers.len() {
                h = self.activation.apply(g, h);
            }
        }
        h
    }
}
