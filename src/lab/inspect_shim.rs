//! TEMPORARY stand-in for `flows::inspect` (being written on another branch): same API.
#![allow(missing_docs, dead_code)]
use crate::flows::{Flow, FlowEvaluator};

pub struct DepthDensity {
    pub log_prob: Vec<f32>,
    pub layer_log_det: Vec<f32>,
}

pub struct FlowInspector {
    eval: Option<FlowEvaluator>,
    chunk: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("inspect: {0}")]
pub struct InspectError(String);

impl FlowInspector {
    pub fn new(_flow: &Flow, chunk: usize) -> Self {
        Self { eval: None, chunk }
    }
    pub fn depth_density(
        &mut self,
        flow: &Flow,
        _depth: usize,
        points: &[f32],
    ) -> Result<DepthDensity, InspectError> {
        let chunk = self.chunk;
        let eval = match &mut self.eval {
            Some(e) => e,
            None => self
                .eval
                .insert(FlowEvaluator::new(flow, chunk).map_err(|e| InspectError(e.to_string()))?),
        };
        let d = eval
            .density(flow, points)
            .map_err(|e| InspectError(e.to_string()))?;
        Ok(DepthDensity {
            layer_log_det: vec![0.0; d.log_prob.len()],
            log_prob: d.log_prob,
        })
    }
    pub fn field(
        &mut self,
        _flow: &Flow,
        _time: f32,
        _points: &[f32],
    ) -> Result<Option<Vec<f32>>, InspectError> {
        Ok(None)
    }
}

pub fn layer_labels(flow: &Flow) -> Vec<String> {
    flow.layers
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{} {}", l.kind(), i + 1))
        .collect()
}

pub fn depth_time(_flow: &Flow, _depth: usize) -> Option<f32> {
    None
}

pub fn solver_evaluations(_flow: &Flow, _points: &[f32]) -> Option<u64> {
    None
}
