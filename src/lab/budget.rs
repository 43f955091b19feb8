//! How much memory a model may take, and what the app does with one that would take more.
//!
//! Every setting has its own range (`lab::spec`), but their product does not: 64 layers of
//! width 1024 at batch 65,536 would need some 70 GB of activations, and six of them side by
//! side more. Each model is kept under [`MODEL_MEMORY_BUDGET`]: its size is estimated from
//! its compiled training graph (at batch 1 and 2, one and two layers, extrapolated — the
//! executor's buffers grow linearly in both), and a model over the budget trains at the
//! largest batch that fits, or, if its parameters alone do not fit, at a smaller width. The
//! user is told which, and by how much.

use crate::engine::GradientProgram;
use crate::flows::{FlowConfig, build_flow};
use crate::train::ObjectiveKind;
use crate::train::objective;

/// The most memory one model's trainer may use, in bytes. Why 512 MiB: six compared models
/// then stay under 3 GiB, what a browser gives a tab's workers on a 8 GB laptop, and the
/// largest useful model (8 layers of width 1024 at batch 4096) still fits.
pub const MODEL_MEMORY_BUDGET: u64 = 512 << 20;

/// Bytes per parameter beyond its value: its gradient, Adam's two moments, and the guard's
/// last good copy of the value and of both moments.
const BYTES_PER_PARAMETER: u64 = 7 * 4;

/// Rows the evaluators process at a time (the sampler, the scorer, the tracer, the inspector:
/// about four forward programs of this many rows beside training).
const EVALUATION_ROWS: u64 = 1024;
const EVALUATORS: u64 = 4;

/// A model's estimated memory: `bytes(batch)`, linear in the batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Bytes that do not grow with the batch (parameters and their optimiser state, the
    /// evaluators).
    pub fixed: u64,
    /// Bytes per sample of the batch.
    pub per_sample: u64,
}

impl Estimate {
    /// Estimated bytes at `batch`.
    pub fn at(&self, batch: usize) -> u64 {
        self.fixed
            .saturating_add(self.per_sample.saturating_mul(batch as u64))
    }
}

/// The training buffers of `config` with `layers` layers at `batch`, in bytes, and its
/// parameter count.
fn measured(
    config: &FlowConfig,
    layers: usize,
    batch: usize,
    objective: ObjectiveKind,
) -> Option<(u64, u64)> {
    let mut small = config.clone();
    small.layers = layers;
    let flow = build_flow(&small, 2, 0).ok()?;
    let graph = match objective {
        ObjectiveKind::Mle => objective::mle(&flow, batch),
        ObjectiveKind::ReverseKl => objective::reverse_kl(&flow, batch),
        ObjectiveKind::FlowMatching => objective::flow_matching(&flow, batch)?,
    };
    let extra: Vec<_> = graph.samples.iter().flat_map(|&(x, l)| [x, l]).collect();
    let program = GradientProgram::<f32>::new(graph.graph, graph.loss, &flow.store, &extra).ok()?;
    Some((
        program.program().buffer_bytes() as u64,
        flow.n_params() as u64,
    ))
}

/// Estimates what training `config` by `objective` takes; `None` if it cannot be built (the
/// trainer will say why).
pub fn estimate(config: &FlowConfig, objective: ObjectiveKind) -> Option<Estimate> {
    let layers = config.layers as u64;
    let (a1, p1) = measured(config, 1, 1, objective)?;
    let (a2, _) = measured(config, 1, 2, objective)?;
    let (b1, p2) = measured(config, 2, 1, objective)?;
    let (b2, _) = measured(config, 2, 2, objective)?;
    // Bilinear in (layers, batch): per sample and per layer, and what is left at batch 0.
    let per_sample_1 = a2.saturating_sub(a1);
    let per_sample_2 = b2.saturating_sub(b1);
    let per_sample_per_layer = per_sample_2.saturating_sub(per_sample_1);
    let per_sample = per_sample_1 + per_sample_per_layer * layers.saturating_sub(1);
    let at_zero_1 = a1.saturating_sub(per_sample_1);
    let at_zero_2 = b1.saturating_sub(per_sample_2);
    let at_zero = at_zero_1 + at_zero_2.saturating_sub(at_zero_1) * layers.saturating_sub(1);
    let params = p1 + p2.saturating_sub(p1) * layers.saturating_sub(1);
    // The evaluators run forward only: about half a training step's buffers per row.
    let evaluators = EVALUATORS * EVALUATION_ROWS * per_sample / 2;
    Some(Estimate {
        fixed: at_zero + params * BYTES_PER_PARAMETER + evaluators,
        per_sample,
    })
}

/// What a model trains with once it fits [`MODEL_MEMORY_BUDGET`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fitted {
    /// The architecture (its width reduced if its parameters alone did not fit).
    pub flow: FlowConfig,
    /// The batch (reduced if the asked one did not fit).
    pub batch: usize,
    /// What was changed and why, for the status line; `None` if nothing was.
    pub notice: Option<String>,
}

/// Smallest batch the budget reduces to before it reduces the width instead.
const MIN_BATCH: usize = 16;

/// `config` at `batch`, made to fit the budget (see the module doc).
pub fn fit(config: &FlowConfig, batch: usize, objective: ObjectiveKind) -> Fitted {
    let unchanged = Fitted {
        flow: config.clone(),
        batch,
        notice: None,
    };
    let Some(asked_for) = estimate(config, objective) else {
        return unchanged;
    };
    let needed = asked_for.at(batch);
    if needed <= MODEL_MEMORY_BUDGET {
        return unchanged;
    }
    let mib = |bytes: u64| bytes as f64 / (1u64 << 20) as f64;
    let asked = crate::tr!(
        "lab.budget.asked",
        layers = config.layers,
        hidden = config.hidden,
        batch = batch,
        mib = format!("{:.0}", mib(needed))
    );
    let budget = format!("{:.0}", mib(MODEL_MEMORY_BUDGET));
    let fits = |e: &Estimate, b: usize| e.at(b) <= MODEL_MEMORY_BUDGET;
    if fits(&asked_for, MIN_BATCH.min(batch)) {
        let room = (MODEL_MEMORY_BUDGET - asked_for.fixed) / asked_for.per_sample.max(1);
        let fitted = (room as usize).clamp(1, batch);
        return Fitted {
            flow: config.clone(),
            batch: fitted,
            notice: Some(crate::tr!(
                "lab.budget.smaller_batch",
                asked = asked,
                batch = fitted,
                budget = budget
            )),
        };
    }
    let mut narrower = config.clone();
    while narrower.hidden > 1 {
        narrower.hidden /= 2;
        let Some(e) = estimate(&narrower, objective) else {
            break;
        };
        if fits(&e, MIN_BATCH.min(batch)) {
            let room = (MODEL_MEMORY_BUDGET - e.fixed) / e.per_sample.max(1);
            let fitted = (room as usize).clamp(1, batch);
            return Fitted {
                notice: Some(crate::tr!(
                    "lab.budget.narrower",
                    asked = asked,
                    hidden = narrower.hidden,
                    batch = fitted,
                    budget = budget
                )),
                flow: narrower,
                batch: fitted,
            };
        }
    }
    unchanged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::Family;

    #[test]
    fn the_estimate_matches_the_compiled_graph() {
        let mut config = FlowConfig::new(Family::RealNvp);
        config.layers = 6;
        let estimated = estimate(&config, ObjectiveKind::Mle).unwrap();
        let (buffers, params) = measured(&config, 6, 300, ObjectiveKind::Mle).unwrap();
        let expected = buffers + params * BYTES_PER_PARAMETER;
        let training = estimated.at(300) - EVALUATORS * EVALUATION_ROWS * estimated.per_sample / 2;
        let error = (training as f64 - expected as f64).abs() / expected as f64;
        assert!(error < 0.1, "estimated {training}, compiled {expected}");
    }

    #[test]
    fn a_model_that_fits_is_left_alone_and_one_that_does_not_is_cut_down_with_a_reason() {
        let config = FlowConfig::new(Family::RealNvp);
        assert_eq!(fit(&config, 256, ObjectiveKind::Mle).notice, None);
        let mut huge = config.clone();
        huge.layers = 64;
        huge.hidden = 1024;
        for (batch, objective) in [
            (65_536, ObjectiveKind::Mle),
            (256, ObjectiveKind::ReverseKl),
        ] {
            let started = web_time::Instant::now();
            let fitted = fit(&huge, batch, objective);
            let notice = fitted.notice.expect("over the budget");
            eprintln!(
                "{notice} ({:.0} ms to decide)",
                started.elapsed().as_secs_f64() * 1e3
            );
            assert!(notice.contains("MiB"), "{notice}");
            let cut = estimate(&fitted.flow, objective).unwrap();
            assert!(cut.at(fitted.batch) <= MODEL_MEMORY_BUDGET, "{notice}");
        }
        let mut wide_batch = config;
        wide_batch.hidden = 1024;
        let fitted = fit(&wide_batch, 65_536, ObjectiveKind::Mle);
        assert_eq!(fitted.flow.hidden, 1024, "only the batch shrinks");
        assert!((MIN_BATCH..65_536).contains(&fitted.batch), "{fitted:?}");
    }
}
