//! Held-out scoring: how well a flow fits its target on a fixed set of points.
//!
//! `NLL = −(1/n) Σ log q(x_i)` and, where the target's normaliser is known,
//! `KL(p*‖q) = (1/n) Σ (log p*(x_i) − log q(x_i))`, over fixed points `x_i` (target samples or
//! a user's test file). The target's log-densities are computed once, when the set is made, so
//! scoring costs one density pass of the flow and allocates nothing: the app scores 10 000
//! points about once a second, `flowlab train` once at the end.
//!
//! Depends on `flows` and `targets`; knows nothing of the UI or the CLI.

use crate::flows::Flow;
use crate::flows::eval::{EvalError, FlowEvaluator};
use crate::rng::Rng;
use crate::targets::{DensityKind, Target};

/// A fixed held-out set: the points, and the target's normalised log-density at each when
/// its normaliser is known.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOut {
    /// The points, row-major `n×2`.
    points: Vec<f32>,
    /// `log p*(x_i)`, normalised; `None` when the target's normaliser is unknown (a kernel
    /// estimate), so no KL is reported.
    target_log_density: Option<Vec<f64>>,
}

/// A flow's score on a [`HeldOut`] set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldOutScore {
    /// `−(1/n) Σ log q(x_i)`, in nats.
    pub nll: f64,
    /// `(1/n) Σ (log p*(x_i) − log q(x_i))`, in nats, where the target's normaliser is known.
    pub kl: Option<f64>,
    /// The 1st percentile of `log q(x_i)`: a point scoring below it is less likely under the
    /// model than 99 % of held-out data (the app's out-of-distribution flag).
    pub log_q_p01: f64,
}

impl HeldOut {
    /// `n` target samples drawn with `seed`.
    pub fn sample(target: &dyn Target, n: usize, seed: u64) -> Self {
        Self::from_points(target.sample(n, &mut Rng::seed_from_u64(seed)), target)
    }

    /// Given points (a test file), scored against `target`.
    pub fn from_points(points: Vec<[f32; 2]>, target: &dyn Target) -> Self {
        let normalizer_known = target.density_kind() != DensityKind::KernelEstimate;
        let target_log_density = normalizer_known.then(|| {
            points
                .iter()
                .map(|p| target.normalized_log_density([p[0] as f64, p[1] as f64]))
                .collect()
        });
        Self {
            points: points.into_iter().flatten().collect(),
            target_log_density,
        }
    }

    /// The points, row-major `n×2`.
    pub fn points(&self) -> &[f32] {
        &self.points
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len() / 2
    }

    /// Whether the set has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Scores `flow`, evaluating `log q` with `evaluator` (compiled for `flow`); allocates
    /// only the list the percentile is read from.
    pub fn score(
        &self,
        flow: &Flow,
        evaluator: &mut FlowEvaluator,
    ) -> Result<HeldOutScore, EvalError> {
        let mut sums = Sums::default();
        evaluator.for_each_log_prob(flow, &self.points, |i, log_q| {
            sums.add(log_q, self.target_log_density.as_ref().map(|p| p[i]));
        })?;
        Ok(sums.score(self.len(), self.target_log_density.is_some()))
    }

    /// Scores given `log q(x_i)`, one per point in order (computed elsewhere, e.g. by an
    /// adaptive ODE solver).
    pub fn score_log_q(&self, log_q: &[f32]) -> HeldOutScore {
        let mut sums = Sums::default();
        for (i, &l) in log_q.iter().enumerate() {
            let p = self
                .target_log_density
                .as_ref()
                .and_then(|p| p.get(i).copied());
            sums.add(l, p);
        }
        sums.score(log_q.len(), self.target_log_density.is_some())
    }
}

/// Running sums of `log q` and `log p* − log q`, in f64 and in point order (so every caller
/// gets the same bits).
#[derive(Default)]
struct Sums {
    log_q: f64,
    kl: f64,
    all: Vec<f32>,
}

impl Sums {
    fn add(&mut self, log_q: f32, log_p: Option<f64>) {
        self.log_q += log_q as f64;
        self.all.push(log_q);
        if let Some(p) = log_p {
            self.kl += p - log_q as f64;
        }
    }

    fn score(mut self, n: usize, with_kl: bool) -> HeldOutScore {
        let n = n.max(1) as f64;
        let p01 = if self.all.is_empty() {
            f64::NAN
        } else {
            let k = self.all.len() / 100;
            let (_, value, _) = self.all.select_nth_unstable_by(k, f32::total_cmp);
            f64::from(*value)
        };
        HeldOutScore {
            nll: -self.log_q / n,
            kl: with_kl.then_some(self.kl / n),
            log_q_p01: p01,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{Family, FlowConfig, build_flow};

    #[test]
    fn streaming_and_given_log_q_agree_bit_for_bit() {
        let target = crate::targets::by_name("8gaussians").unwrap();
        let held_out = HeldOut::sample(target.as_ref(), 300, 1);
        let flow = build_flow(&FlowConfig::new(Family::RealNvp), 2, 0).unwrap();
        let mut evaluator = FlowEvaluator::new(&flow, 128).unwrap();
        let score = held_out.score(&flow, &mut evaluator).unwrap();
        let log_q = evaluator
            .density(&flow, held_out.points())
            .unwrap()
            .log_prob;
        assert_eq!(score, held_out.score_log_q(&log_q));
        assert!(score.nll.is_finite() && score.kl.is_some_and(f64::is_finite));
    }

    #[test]
    fn no_kl_without_a_known_normaliser() {
        let target = crate::targets::by_name("pinwheel").unwrap();
        let held_out = HeldOut::sample(target.as_ref(), 10, 1);
        let flow = build_flow(&FlowConfig::new(Family::Nice), 2, 0).unwrap();
        let mut evaluator = FlowEvaluator::new(&flow, 16).unwrap();
        assert_eq!(held_out.score(&flow, &mut evaluator).unwrap().kl, None);
    }
}
