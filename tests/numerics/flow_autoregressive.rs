//! MAF and IAF beyond the shared loop in `flows.rs`: the autoregressive structure of
//! every layer in both directions and in several dimensions, exactness of the sequential
//! direction in `D > 2`, and training quality (MAF by maximum likelihood, IAF both ways).
#![allow(clippy::expect_used)] // Why: helpers shared by tests; a failure should panic with its message.

use std::sync::Arc;

use crate::common;
use crate::common::flow_dims::{perturbed_flow, run_layer_f64, worst_log_det_error};
use flowlab::engine::Graph;
use flowlab::flows::{Family, FlowConfig, FlowEvaluator, Layer, build_flow};
use flowlab::rng::Rng;
use flowlab::train::{ObjectiveKind, TrainConfig, Trainer};

/// `∂y_i/∂x_j` of one layer at one point, by central differences in f64.
fn jacobian(flow: &flowlab::flows::Flow, layer: &dyn Layer, forward: bool, x: &[f64]) -> Vec<f64> {
    let dim = x.len();
    let build = |g: &mut Graph, v| {
        let o = if forward {
            layer.forward(g, v)
        } else {
            layer.inverse(g, v)
        };
        (o.y, o.log_det)
    };
    let h = 1e-5;
    let mut jac = vec![0.0; dim * dim];
    for j in 0..dim {
        let mut up = x.to_vec();
        let mut down = x.to_vec();
        up[j] += h;
        down[j] -= h;
        let (yu, _) = run_layer_f64(&flow.store, dim, &up, &build);
        let (yd, _) = run_layer_f64(&flow.store, dim, &down, &build);
        for i in 0..dim {
            jac[i * dim + j] = (yu[i] - yd[i]) / (2.0 * h);
        }
    }
    jac
}

#[test]
fn every_layer_is_triangular_in_its_order_both_directions() {
    for family in [Family::Maf, Family::Iaf] {
        for dim in [2, 3, 5] {
            let flow = perturbed_flow(family, dim, 2);
            let mut rng = Rng::seed_from_u64(dim as u64);
            let x: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
            for (k, layer) in flow.layers.iter().enumerate() {
                // Layer k's order: 0, 1, … for even k, reversed for odd k.
                let position = |i: usize| if k % 2 == 0 { i } else { dim - 1 - i };
                for forward in [true, false] {
                    let jac = jacobian(&flow, layer.as_ref(), forward, &x);
                    for i in 0..dim {
                        for j in 0..dim {
                            let d = jac[i * dim + j];
                            let name = family.name();
                            if position(j) > position(i) {
                                assert!(
                                    d.abs() < 1e-9,
                                    "{name} D={dim} layer {k}: ∂y{i}/∂x{j} = {d:e}"
                                );
                            } else if i == j {
                                assert!(d.abs() > 1e-3, "{name} D={dim} layer {k}: zero diagonal");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn round_trips_and_log_dets_hold_beyond_two_dimensions() {
    for family in [Family::Maf, Family::Iaf] {
        for dim in [3, 5] {
            let flow = perturbed_flow(family, dim, 4);
            let n = 128;
            let mut rng = Rng::seed_from_u64(7);
            let x: Vec<f32> = (0..n * dim).map(|_| 1.2 * rng.normal_f32()).collect();
            let mut eval = FlowEvaluator::new(&flow, n).expect("compiles");
            let d = eval.density(&flow, &x).expect("density");
            let s = eval.sample(&flow, &d.z).expect("samples");
            let worst =
                s.x.iter()
                    .zip(&x)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, common::worst);
            assert!(
                worst < 1e-4,
                "{} D={dim}: |f(f⁻¹(x)) − x| up to {worst:e}",
                family.name()
            );
            // Relative beyond 1 nat: the perturbed ReLU networks send some points to |z| ≈ 9,000,
            // where log q ≈ −4e7 carries f32's rounding of a few nats.
            let worst_lp = s
                .log_prob
                .iter()
                .zip(&d.log_prob)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0.0f32, common::worst);
            assert!(
                worst_lp < 1e-3,
                "{} D={dim}: log q differs by {worst_lp:e} (relative beyond 1 nat)",
                family.name()
            );

            let points: Vec<f64> = x[..16 * dim].iter().map(|&v| v as f64).collect();
            for (k, layer) in flow.layers.iter().enumerate() {
                let e = worst_log_det_error(&flow.store, dim, &points, layer.as_ref());
                assert!(
                    e < 1e-5,
                    "{} D={dim} layer {k}: log-det error {e:e}",
                    family.name()
                );
            }
        }
    }
}

/// Trains a default flow (seed 0) for `steps` steps (batch 512, the family's own optimiser):
/// the held-out NLL on 4096 target samples, and the mean loss of the last 100 steps.
fn train(family: Family, target: &str, objective: ObjectiveKind, steps: usize) -> (f32, f32) {
    let flow = build_flow(&FlowConfig::new(family), 2, 0).expect("builds");
    let target = flowlab::targets::by_name(target).expect("target");
    let config = TrainConfig {
        objective,
        adam: family.info().adam(None),
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(flow, Arc::from(target), config).expect("trainer");
    let mut recent = Vec::with_capacity(steps);
    for _ in 0..steps {
        let s = t.step();
        assert!(s.rolled_back.is_none(), "diverged: {:?}", s.rolled_back);
        recent.push(s.loss);
    }
    let tail = &recent[recent.len().saturating_sub(100)..];
    let mean_tail = tail.iter().sum::<f32>() / tail.len() as f32;
    let nll = t.held_out_nll().expect("evaluates");
    eprintln!(
        "{} on {}: held-out NLL {nll:.4}, mean loss of the last 100 steps {mean_tail:.4}",
        family.name(),
        t.target().name()
    );
    (nll, mean_tail)
}

// MAF (5 layers, MADE 2→64→64→4 ReLU, 2e-3 warmed up and decayed), 1000 steps of MLE. On
// twomoons zuko's MAF reaches 1.744/1.790/1.903 over seeds 1–3 at 1000 steps, and a plain
// PyTorch MAF of the same shape 1.918 (peers/README.md). Measured by `flowlab train` on the
// peers' test sets over seeds 0–3: twomoons 1.720–1.748, 8gaussians 3.027–3.074, checkerboard
// 3.696–3.768 (here, seed 0: 1.718, 3.037, 3.690). The tanh networks at a constant 1e-3 that
// were the default before reached 1.806–1.884, 3.157–3.172 and 3.793–3.851, and fail these.

#[test]
fn maf_fits_two_moons() {
    let (nll, _) = train(Family::Maf, "twomoons", ObjectiveKind::Mle, 1000);
    assert!(nll < 1.78, "{nll}");
}

#[test]
fn maf_fits_eight_gaussians() {
    let (nll, _) = train(Family::Maf, "8gaussians", ObjectiveKind::Mle, 1000);
    assert!(nll < 3.10, "{nll}");
}

#[test]
fn maf_fits_checkerboard() {
    // The uniform checkerboard's entropy is ln 32 ≈ 3.466.
    let (nll, _) = train(Family::Maf, "checkerboard", ObjectiveKind::Mle, 1000);
    assert!(nll < 3.80, "{nll}");
}

#[test]
fn iaf_fits_two_moons_by_maximum_likelihood_through_its_sequential_inverse() {
    // Measured 1.830 (the same MADE as MAF's, reading the base side).
    let (nll, _) = train(Family::Iaf, "twomoons", ObjectiveKind::Mle, 1000);
    assert!(nll < 1.89, "{nll}");
}

#[test]
fn iaf_fits_u1_by_reverse_kl() {
    // KL estimate, mean of the last 100 steps: measured 0.068; a collapse onto one of U1's two
    // modes gives ≈ ln 2 = 0.69.
    let (_, kl) = train(Family::Iaf, "u1", ObjectiveKind::ReverseKl, 1000);
    assert!(kl < 0.12, "{kl}");
}
