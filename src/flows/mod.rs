//! Normalizing flows: invertible layers composed over a base distribution.
//!
//! Convention (as zuko's): a flow's transform `f` maps base samples `z` to data `x` (the
//! *sample* direction, [`Layer::forward`]); its inverse maps data to the base (the *density*
//! direction, [`Layer::inverse`]). By the change of variables
//! `log p(x) = log p₀(f⁻¹(x)) + Σᵢ log|det ∂f⁻¹ᵢ/∂·|`.
//! A [`Flow`] applies its layers in the listed order when sampling and in reverse when scoring.
//!
//! Every layer is written once, as graph-building code, and runs through the engine: training,
//! sampling, density heat maps and the per-layer trace all replay the same graph, on the CPU
//! executor now and on the WebGPU executor later. Depends on `engine` and `rng` only.

pub mod autoregressive;
pub mod base;
pub mod cnf;
pub mod coupling;
mod describe;
pub mod eval;
pub mod export;
pub mod glow;
pub mod inspect;
pub mod mlp;
pub mod planar;
pub mod radial;
pub mod registry;
pub mod saved;
pub mod spline;
pub mod terms;

pub use base::Base;
pub use eval::FlowEvaluator;
pub use inspect::{
    DepthDensity, FlowInspector, InspectError, TraceSpread, depth_time, hutchinson_spread,
    layer_labels, solver_evaluations,
};
pub use registry::{
    FAMILIES, Family, FamilyInfo, FastDirection, FlowConfig, FlowError, build_flow,
};
pub use saved::SavedModel;
pub use terms::{Noise, NoiseInput, TrainingTerms};

use crate::engine::{Graph, Init, ParamId, ParamStore, Shape, Var};
use crate::rng::Rng;

/// A parameter handle together with its shape, so layers can put it in a graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamRef {
    /// Its id in the model's store.
    pub id: ParamId,
    /// Its shape.
    pub shape: Shape,
}

impl ParamRef {
    /// Creates a `rows × cols` parameter in `store`.
    pub fn new(
        store: &mut ParamStore,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        init: Init,
        rng: &mut Rng,
    ) -> Self {
        let id = store.add(name, rows, cols, init, rng);
        Self {
            id,
            shape: Shape::new(rows, cols),
        }
    }

    /// Its node in `g`.
    pub fn var(&self, g: &mut Graph) -> Var {
        g.param(self.id, self.shape)
    }
}

/// A layer's output in one direction: the mapped points and, per sample (`rows × 1`),
/// `log|det ∂output/∂input|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerOutput {
    /// The mapped points (`rows × dim`).
    pub y: Var,
    /// `log|det J|` of this direction's map, per row.
    pub log_det: Var,
}

/// One invertible layer.
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// A short human name ("affine coupling", "actnorm", …) for the layer-by-layer view.
    fn kind(&self) -> &'static str;
    /// Sample direction (base → data) and its log-determinant.
    fn forward(&self, g: &mut Graph, x: Var) -> LayerOutput;
    /// Density direction (data → base) and its log-determinant.
    fn inverse(&self, g: &mut Graph, y: Var) -> LayerOutput;
    /// Data-dependent initialisation (Glow's actnorm) from a batch of this layer's inputs in
    /// the density direction (`rows × dim`, row-major). Most layers need none.
    fn init_from_data(&self, _store: &mut ParamStore, _inputs: &[f32], _dim: usize) {}
    /// The density direction plus, for layers with no closed-form inverse (planar, radial),
    /// the root solver's residual `|f(f⁻¹(y)) − y|` per row (`rows × 1`).
    fn inverse_with_residual(&self, g: &mut Graph, y: Var) -> (LayerOutput, Option<Var>) {
        (self.inverse(g, y), None)
    }
    /// The density direction as trained: layers with stochastic estimators or regularisers
    /// (CNF: Hutchinson probes, kinetic and Jacobian penalties) put their random inputs and
    /// per-row penalties in `terms`. Most layers train their exact [`Layer::inverse`].
    fn inverse_for_training(
        &self,
        g: &mut Graph,
        y: Var,
        _terms: &mut TrainingTerms,
    ) -> LayerOutput {
        self.inverse(g, y)
    }
    /// The dynamics of a continuous-time layer (a CNF's time segment), for what only ODEs
    /// support: flow matching and adaptive solvers. `None` for discrete layers.
    fn ode(&self) -> Option<&cnf::Ode> {
        None
    }
    /// What this layer does, with live values from its parameters, for the layer-by-layer
    /// view: the part of its label after "`kind` `n`: " (e.g. `ûᵀw = 0.41 > −1` for a planar
    /// layer). `None` when there is nothing to add to the kind.
    fn describe(&self, _store: &ParamStore) -> Option<String> {
        None
    }
    /// The time interval `(t_a, t_b)` a continuous-time layer integrates over in the sample
    /// direction. `None` for discrete layers.
    fn time_span(&self) -> Option<(f64, f64)> {
        None
    }
}

/// A flow: layers over a base distribution, with the parameters they all live in.
#[derive(Debug)]
pub struct Flow {
    /// Which family built it (and with what settings).
    pub config: FlowConfig,
    /// Dimension of the data (2 in the app; more for augmented CNFs).
    pub dim: usize,
    /// Layers in sample order.
    pub layers: Vec<Box<dyn Layer>>,
    /// The base distribution.
    pub base: Base,
    /// Every trainable parameter.
    pub store: ParamStore,
}

/// The density direction built into a graph, with every intermediate for the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct DensityGraph {
    /// `log p(x)` per row.
    pub log_prob: Var,
    /// The base point `f⁻¹(x)`.
    pub z: Var,
    /// Layer outputs in density order: `layers[0]` inverts the last sample-order layer of those
    /// inverted (the flow's last, or layer `depth` of [`Flow::density_graph_after`]).
    pub layers: Vec<LayerOutput>,
    /// For flows with root-solved inverses (planar, radial), `Σ_k |f_k(f_k⁻¹(y)) − y|` per
    /// row over those layers: how far the solved inverse is from exact. `None` for others
    /// (and in the training graph, which does not need it).
    pub residual: Option<Var>,
}

/// The sample direction built into a graph, with every intermediate for the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleGraph {
    /// The data point `f(z)`.
    pub x: Var,
    /// `log q(x)` per row, from `log p₀(z) − Σ log|det ∂f/∂z|`.
    pub log_prob: Var,
    /// Layer outputs in sample order.
    pub layers: Vec<LayerOutput>,
}

impl Flow {
    /// Builds `log p(x)` for `x` (`rows × dim`).
    pub fn density_graph(&self, g: &mut Graph, x: Var) -> DensityGraph {
        self.density_graph_with(g, x, self.layers.len(), None)
    }

    /// Builds `log p_depth(x)`, the density of `z_depth = f_depth ∘ … ∘ f_1(z_0)`, `z_0` from the
    /// base, for points `x` (`rows × dim`) in the space after the first `depth` layers (sample
    /// order): only those layers are inverted. `depth = layers.len()` is [`Flow::density_graph`],
    /// `depth = 0` the base density; larger depths are treated as `layers.len()`.
    pub fn density_graph_after(&self, g: &mut Graph, x: Var, depth: usize) -> DensityGraph {
        self.density_graph_with(g, x, depth, None)
    }

    /// Builds `log p(x)` as trained (see [`Layer::inverse_for_training`]), with the random
    /// inputs the trainer must fill and the penalty to add to the loss.
    pub fn training_density_graph(&self, g: &mut Graph, x: Var) -> (DensityGraph, TrainingTerms) {
        let mut terms = TrainingTerms::default();
        let d = self.density_graph_with(g, x, self.layers.len(), Some(&mut terms));
        (d, terms)
    }

    fn density_graph_with(
        &self,
        g: &mut Graph,
        x: Var,
        depth: usize,
        mut terms: Option<&mut TrainingTerms>,
    ) -> DensityGraph {
        let inverted = &self.layers[..depth.min(self.layers.len())];
        let mut h = x;
        let mut total: Option<Var> = None;
        let mut layers = Vec::with_capacity(inverted.len());
        let mut residual: Option<Var> = None;
        for layer in inverted.iter().rev() {
            let out = match terms.as_deref_mut() {
                Some(t) => layer.inverse_for_training(g, h, t),
                None => {
                    let (out, r) = layer.inverse_with_residual(g, h);
                    if let Some(r) = r {
                        residual = Some(residual.map_or(r, |total| g.add(total, r)));
                    }
                    out
                }
            };
            total = Some(match total {
                Some(t) => g.add(t, out.log_det),
                None => out.log_det,
            });
            layers.push(out);
            h = out.y;
        }
        let base = self.base.log_prob(g, h);
        let log_prob = match total {
            Some(t) => g.add(base, t),
            None => base,
        };
        DensityGraph {
            log_prob,
            z: h,
            layers,
            residual,
        }
    }

    /// Builds samples `f(z)` from base points `z` (`rows × dim`, standard normal draws; a
    /// learnable base rescales them first) and their log-density.
    pub fn sample_graph(&self, g: &mut Graph, eps: Var) -> SampleGraph {
        let (z, base_log_prob) = self.base.sample(g, eps);
        let mut h = z;
        let mut log_prob = base_log_prob;
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let out = layer.forward(g, h);
            log_prob = g.sub(log_prob, out.log_det);
            layers.push(out);
            h = out.y;
        }
        SampleGraph {
            x: h,
            log_prob,
            layers,
        }
    }

    /// Builds `‖f(f⁻¹(x)) − x‖²` per row (`rows × 1`): `x` taken to the base by the density
    /// direction and brought back by the sample direction. Zero up to rounding where both are
    /// exact inverses; it grows where a root-solved inverse (planar, radial) fails to
    /// converge, where an ODE's two integrations part (CNF), or where a layer's scales blow
    /// up — the seed's "exploding inverses".
    pub fn round_trip_graph(&self, g: &mut Graph, x: Var) -> Var {
        let mut h = self.density_graph(g, x).z;
        for layer in &self.layers {
            h = layer.forward(g, h).y;
        }
        let error = g.sub(h, x);
        let squared = g.square(error);
        sum_cols(g, squared)
    }

    /// Runs every layer's data-dependent initialisation on a data batch (`rows × dim`),
    /// passing the batch through each initialised layer in the density direction.
    pub fn init_from_data(&mut self, data: &[f32]) -> Result<(), eval::EvalError> {
        let rows = data.len() / self.dim.max(1);
        let mut h = data.to_vec();
        for k in (0..self.layers.len()).rev() {
            self.layers[k].init_from_data(&mut self.store, &h, self.dim);
            let mut g = Graph::new();
            let x = g.input(rows, self.dim);
            let out = self.layers[k].inverse(&mut g, x);
            let mut program = crate::engine::CpuProgram::<f32>::compile(&g, &self.store, &[out.y])?;
            program.set_input(x, &h)?;
            program.run(self.store.values());
            h = program.value(out.y)?.to_vec();
        }
        Ok(())
    }

    /// Number of trainable scalars.
    pub fn n_params(&self) -> usize {
        self.store.len()
    }
}

/// `Σ_j ` over columns, as an `r×1` log-det (a helper most layers use).
pub fn sum_cols(g: &mut Graph, x: Var) -> Var {
    if g.shape(x).cols == 1 {
        x
    } else {
        g.sum(crate::engine::Axis::Cols, x)
    }
}

/// `r×1` zeros: the log-det of a volume-preserving map.
pub fn zero_log_det(g: &mut Graph, x: Var) -> Var {
    let rows = g.shape(x).rows;
    g.fill(0.0, rows, 1)
}
