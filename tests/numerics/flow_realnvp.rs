//! RealNVP (and NICE) reach stated held-out NLLs by maximum likelihood, and RealNVP a stated
//! KL on U1 by reverse KL. Protocol as the references: batch 512, Adam 1e-3, the
//! reference size (8 couplings, MLP 1→64→64→2, tanh), held-out NLL in nats on 4096 samples.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: test helpers; a failure should panic with its message.

use std::sync::Arc;

use flowlab::flows::{Family, FlowConfig, build_flow};
use flowlab::train::{ObjectiveKind, TrainConfig, Trainer};

fn train(family: Family, target: &str, objective: ObjectiveKind, steps: usize) -> (f32, f32) {
    let flow = build_flow(&FlowConfig::new(family), 2, 0).expect("builds");
    let target = flowlab::targets::by_name(target).expect("target");
    let config = TrainConfig {
        objective,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(flow, Arc::from(target), config).expect("trainer");
    let mut last = f32::NAN;
    let mut recent = Vec::new();
    for _ in 0..steps {
        let s = t.step();
        assert!(s.rolled_back.is_none(), "diverged: {:?}", s.rolled_back);
        last = s.loss;
        recent.push(s.loss);
    }
    let tail = &recent[recent.len().saturating_sub(100)..];
    let mean_tail = tail.iter().sum::<f32>() / tail.len() as f32;
    let nll = t.held_out_nll().expect("evaluates");
    eprintln!(
        "{} on {target_name}: held-out NLL {nll:.4}, last loss {last:.4}, mean of last 100 {mean_tail:.4}",
        family.name(),
        target_name = t.target().name()
    );
    (nll, mean_tail)
}

#[test]
fn realnvp_fits_two_moons() {
    // Measured 1.821 (data entropy ≈ 1.673; plain PyTorch 1.884, zuko 1.775 at 1000 steps).
    let (nll, _) = train(Family::RealNvp, "twomoons", ObjectiveKind::Mle, 1000);
    assert!(nll < 1.87, "{nll}");
}

#[test]
fn realnvp_fits_eight_gaussians() {
    // Measured 3.120.
    let (nll, _) = train(Family::RealNvp, "8gaussians", ObjectiveKind::Mle, 1000);
    assert!(nll < 3.20, "{nll}");
}

#[test]
fn realnvp_fits_checkerboard() {
    // Measured 3.818 (the uniform checkerboard's entropy is ln 32 ≈ 3.466).
    let (nll, _) = train(Family::RealNvp, "checkerboard", ObjectiveKind::Mle, 1000);
    assert!(nll < 3.90, "{nll}");
}

#[test]
fn nice_fits_two_moons() {
    // Measured 2.184: volume-preserving couplings and one global scale fit less well.
    let (nll, _) = train(Family::Nice, "twomoons", ObjectiveKind::Mle, 1000);
    assert!(nll < 2.26, "{nll}");
}

#[test]
fn realnvp_fits_u1_by_reverse_kl() {
    // The KL estimate (mean of the last 100 steps) after 2000 steps: 0.027 for this seed with
    // the default ReLU networks and the path gradient (0.049 with tanh and the total gradient,
    // flow seeds 0–5 then 0.027–0.049). A collapse onto one of the two modes gives ≈ ln 2 =
    // 0.69. Fresh-sample KL over seeds 1–3 is in tests/numerics/fit_reverse_kl.rs.
    let (_, kl) = train(Family::RealNvp, "u1", ObjectiveKind::ReverseKl, 2000);
    assert!(kl < 0.08, "{kl}");
}
