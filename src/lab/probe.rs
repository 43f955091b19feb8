//! The probe: one point of the plane taken apart by the change of variables.
//!
//! For `x`, the flow's density direction gives the base point `z₀ = f⁻¹(x)` and every layer's
//! term: `log p(x) = log p₀(z₀) − Σᵢ log|det ∂fᵢ/∂zᵢ₋₁|` (sample-direction log-dets at the
//! pre-images, so a layer that spreads points apart, `log|det| > 0`, lowers the density).
//! Pushing `z₀` forward again measures the reconstruction error `|f(f⁻¹(x)) − x|`: zero up to
//! rounding for closed-form inverses, and the seed's "exploding inverse" where a root-solved
//! or ill-conditioned one fails.

use serde::{Deserialize, Serialize};

use crate::engine::{CpuProgram, ExecError, Graph, Var};
use crate::flows::Flow;

/// One point's change of variables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeBreakdown {
    /// The point `x`.
    pub point: [f32; 2],
    /// `log p(x)`.
    pub log_prob: f32,
    /// `log p₀(z₀)`, the base density at the pre-image.
    pub base_log_prob: f32,
    /// `log|det ∂fᵢ/∂zᵢ₋₁|` of each layer `i = 1…K` (sample direction), at the pre-images.
    pub layer_log_dets: Vec<f32>,
    /// The base-space pre-image `z₀ = f⁻¹(x)` (first two coordinates).
    pub preimage: [f32; 2],
    /// `|f(f⁻¹(x)) − x|`.
    pub reconstruction_error: f32,
}

/// Every pinned point as every model takes it apart, as the JSON `window.flowlab.probe`
/// answers from: `[{"point": [x, y], "models": [{"flow", "step", "log_prob", "base_log_prob",
/// "layer_log_dets", "preimage", "reconstruction_error", "out_of_distribution"}, …]}, …]`.
/// `out_of_distribution`: `log p(x)` below the 1st percentile of the held-out data's (`null`
/// until scored).
pub fn probes_json(workspace: &super::Workspace) -> String {
    let entries: Vec<serde_json::Value> = workspace
        .probes()
        .iter()
        .enumerate()
        .map(|(k, point)| {
            let models: Vec<serde_json::Value> = workspace
                .runs()
                .iter()
                .filter_map(|run| {
                    let probe = run
                        .pictures()?
                        .probes
                        .get(k)
                        .filter(|p| p.point == *point)?;
                    let low = run.latest().and_then(|r| r.held_out_log_q_p01);
                    Some(serde_json::json!({
                        "flow": run.spec().flow.family.name(),
                        "step": run.pictures().map(|p| p.step),
                        "log_prob": probe.log_prob,
                        "base_log_prob": probe.base_log_prob,
                        "layer_log_dets": probe.layer_log_dets,
                        "preimage": probe.preimage,
                        "reconstruction_error": probe.reconstruction_error,
                        "out_of_distribution": low.map(|low| f64::from(probe.log_prob) < low),
                    }))
                })
                .collect();
            serde_json::json!({ "point": point, "models": models })
        })
        .collect();
    serde_json::Value::Array(entries).to_string()
}

/// The compiled probe of one flow architecture (parameters are read at each run).
pub struct ProbeProgram {
    program: CpuProgram<f32>,
    x: Var,
    log_prob: Var,
    z: Var,
    /// Each layer's density-direction log-det, in density order (last layer first).
    inverse_log_dets: Vec<Var>,
    round_trip: Var,
    dim: usize,
}

impl ProbeProgram {
    /// Compiles the probe for `flow`'s architecture.
    pub fn new(flow: &Flow) -> Result<Self, ExecError> {
        let mut g = Graph::new();
        let x = g.input(1, flow.dim);
        let density = flow.density_graph(&mut g, x);
        let mut h = density.z;
        for layer in &flow.layers {
            h = layer.forward(&mut g, h).y;
        }
        let inverse_log_dets: Vec<Var> = density.layers.iter().map(|l| l.log_det).collect();
        let mut outputs = vec![density.log_prob, density.z, h];
        outputs.extend(&inverse_log_dets);
        let program = CpuProgram::compile(&g, &flow.store, &outputs)?;
        Ok(Self {
            program,
            x,
            log_prob: density.log_prob,
            z: density.z,
            inverse_log_dets,
            round_trip: h,
            dim: flow.dim,
        })
    }

    /// Takes `point` apart with `flow`'s current parameters.
    pub fn run(&mut self, flow: &Flow, point: [f32; 2]) -> Result<ProbeBreakdown, ExecError> {
        let mut input = vec![0.0; self.dim];
        input[..2].copy_from_slice(&point);
        self.program.set_input(self.x, &input)?;
        self.program.run(flow.store.values());
        let log_prob = self.program.value(self.log_prob)?[0];
        let z = self.program.value(self.z)?;
        let preimage = [z[0], z[1]];
        let back = self.program.value(self.round_trip)?;
        let reconstruction_error = (back[0] - point[0]).hypot(back[1] - point[1]);
        // Density order is last layer first; the sample direction's log-det is minus it.
        let mut layer_log_dets = Vec::with_capacity(self.inverse_log_dets.len());
        for &v in self.inverse_log_dets.iter().rev() {
            layer_log_dets.push(-self.program.value(v)?[0]);
        }
        let base_log_prob = log_prob + layer_log_dets.iter().sum::<f32>();
        Ok(ProbeBreakdown {
            point,
            log_prob,
            base_log_prob,
            layer_log_dets,
            preimage,
            reconstruction_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{Family, FlowConfig, FlowEvaluator, build_flow};

    #[test]
    fn the_terms_add_up_to_the_flows_density_and_invert() {
        for family in [Family::RealNvp, Family::Glow, Family::Planar, Family::Maf] {
            let flow = build_flow(&FlowConfig::new(family), 2, 3).unwrap();
            let mut probe = ProbeProgram::new(&flow).unwrap();
            let point = [0.7, -1.2];
            let b = probe.run(&flow, point).unwrap();
            let mut eval = FlowEvaluator::new(&flow, 1).unwrap();
            let d = eval.density(&flow, &point).unwrap();
            assert!((b.log_prob - d.log_prob[0]).abs() < 1e-4, "{family:?}");
            assert_eq!(b.layer_log_dets.len(), flow.layers.len());
            // The base density at the pre-image, computed independently.
            let [z0, z1] = b.preimage;
            let base = -(z0 * z0 + z1 * z1) / 2.0 - (std::f32::consts::TAU).ln();
            assert!(
                (b.base_log_prob - base).abs() < 1e-3,
                "{family:?}: {} vs {base}",
                b.base_log_prob
            );
            assert!(
                b.reconstruction_error < 1e-3,
                "{family:?}: {}",
                b.reconstruction_error
            );
        }
    }
}
