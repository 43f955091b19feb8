//! Held-out NLL after training, by maximum likelihood (through the RK4 solver, exact trace)
//! and by flow matching, on the three targets. Thresholds are the measured figures
//! (in the comments: `cargo test --test numerics flow_cnf::training` on the 2-core dev
//! machine) plus a margin for platform differences in floating-point summation order.
//!
//! The MLE tests use a smaller model than the benchmark's so that each stays within seconds:
//! field `(x, t) → 32 → 32 → 2`, 10 RK4 steps over `T = 1`, batch 256, Adam at 3e-3,
//! 1000 steps. Flow matching is cheap (no solver in training), so it trains the default field
//! `(x, t) → 64 → 64 → 2` (evaluated with 20 RK4 steps) for 10 000 steps at batch 512,
//! Adam at 3e-3. The entropies these NLLs approach: two moons ≈ 1.673 (issue #4),
//! 8 Gaussians ≈ 2.84 (`ln 8 + 1 + ln 2π + 2 ln(0.5/1.414)`), checkerboard `ln 32` ≈ 3.466.

use std::sync::Arc;

use flowlab::flows::{Family, FlowConfig, build_flow};
use flowlab::train::{ObjectiveKind, TrainConfig, Trainer};

/// Trains a CNF and returns its held-out NLL (4096 fresh target samples, exact trace).
fn held_out_nll(target: &str, objective: ObjectiveKind) -> f32 {
    let mut config = FlowConfig::new(Family::Cnf);
    let (steps, batch) = match objective {
        ObjectiveKind::FlowMatching => (10_000, 512),
        _ => {
            config.hidden = 32;
            config.cnf.steps = 10;
            (1000, 256)
        }
    };
    let flow = build_flow(&config, 2, 1).expect("builds");
    let target = flowlab::targets::by_name(target).expect("target");
    let mut train = TrainConfig {
        batch,
        objective,
        ..TrainConfig::default()
    };
    train.adam.lr = 3e-3;
    let mut trainer = Trainer::new(flow, Arc::from(target), train).expect("trainer");
    for _ in 0..steps {
        let outcome = trainer.step();
        assert!(outcome.rolled_back.is_none(), "{:?}", outcome.rolled_back);
    }
    trainer.held_out_nll().expect("evaluates")
}

fn check(target: &str, objective: ObjectiveKind, measured: f32, threshold: f32) {
    let nll = held_out_nll(target, objective);
    eprintln!(
        "{target} {}: held-out NLL {nll:.4} (measured {measured}, threshold {threshold})",
        objective.name()
    );
    assert!(
        nll < threshold,
        "{target} {}: held-out NLL {nll} ≥ {threshold}",
        objective.name()
    );
}

#[test]
fn mle_two_moons() {
    check("twomoons", ObjectiveKind::Mle, 1.796, 1.85);
}

#[test]
fn mle_eight_gaussians() {
    check("8gaussians", ObjectiveKind::Mle, 2.867, 2.93);
}

#[test]
fn mle_checkerboard() {
    check("checkerboard", ObjectiveKind::Mle, 3.808, 3.88);
}

#[test]
fn flow_matching_two_moons() {
    check("twomoons", ObjectiveKind::FlowMatching, 1.878, 1.95);
}

#[test]
fn flow_matching_eight_gaussians() {
    check("8gaussians", ObjectiveKind::FlowMatching, 2.911, 2.97);
}

#[test]
fn flow_matching_checkerboard() {
    check("checkerboard", ObjectiveKind::FlowMatching, 3.798, 3.88);
}
