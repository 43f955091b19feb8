//! Divergence everywhere: every flow family under every objective that applies to it, driven
//! into divergence — by a poisoned parameter (deterministic), and by the settings a user could
//! pick (the largest learning rate, a batch of one, duplicated and extreme data). The guard
//! must catch a divergence in the step it happens, roll back to the last good state, halve the
//! learning rate and say so; no step may leave a parameter non-finite.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: test helpers; a failure should panic with its message.

use std::sync::Arc;

use flowlab::engine::AdamConfig;
use flowlab::flows::eval::{ROUND_TRIP_TOLERANCE, RoundTrip};
use flowlab::flows::{Family, FlowConfig, build_flow};
use flowlab::targets::Target;
use flowlab::train::{ObjectiveKind, RollbackReason, TrainConfig, Trainer};

/// Every (family, objective, target) the app can train: MLE on a data target, reverse KL on
/// an energy, flow matching for the CNF.
fn every_run() -> Vec<(Family, ObjectiveKind, &'static str)> {
    let mut runs = Vec::new();
    for family in Family::ALL {
        for objective in ObjectiveKind::ALL {
            let target = match objective {
                ObjectiveKind::ReverseKl => "u1",
                _ => "twomoons",
            };
            let t = flowlab::targets::by_name(target).expect("target");
            if objective.applies(family, t.as_ref()).is_ok() {
                runs.push((family, objective, target));
            }
        }
    }
    runs
}

fn small(family: Family) -> FlowConfig {
    let mut config = FlowConfig::new(family);
    config.layers = config.layers.min(4);
    config.hidden = 16;
    config.cnf.steps = 4;
    config
}

fn trainer(
    config: &FlowConfig,
    objective: ObjectiveKind,
    target: Arc<dyn Target>,
    batch: usize,
    lr: f32,
) -> Trainer {
    let flow = build_flow(config, 2, 1).expect("builds");
    let train = TrainConfig {
        batch,
        held_out: 64,
        objective,
        adam: AdamConfig {
            lr,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    };
    Trainer::new(flow, target, train).expect("trainer")
}

#[test]
fn a_poisoned_parameter_is_caught_in_its_step_for_every_family_and_objective() {
    for (family, objective, target) in every_run() {
        let what = format!("{} by {}", family.name(), objective.name());
        let target: Arc<dyn Target> = Arc::from(flowlab::targets::by_name(target).unwrap());
        let mut t = trainer(&small(family), objective, target, 32, 1e-3);
        for _ in 0..25 {
            t.step();
        }
        // Step 25 took the last good snapshot.
        let good = t.flow.store.values().to_vec();
        let lr = t.learning_rate();
        let rollbacks = t.rollbacks();
        for index in [0, t.flow.store.len() / 2, t.flow.store.len() - 1] {
            t.flow.store.values_mut()[index] = f32::NAN;
            let outcome = t.step();
            let rollback = outcome
                .rolled_back
                .unwrap_or_else(|| panic!("{what}: NaN at parameter {index} not caught"));
            assert_ne!(
                rollback.reason,
                RollbackReason::NonFiniteParameter,
                "{what}: caught only after Adam's update"
            );
            assert_eq!(t.flow.store.values(), &good[..], "{what}: not the snapshot");
            assert!(rollback.to_string().contains("halved the learning rate"));
        }
        assert_eq!(t.rollbacks(), rollbacks + 3, "{what}");
        assert_eq!(t.learning_rate(), lr / 8.0, "{what}: three halvings");
        // Training goes on from the good state.
        for _ in 0..10 {
            let s = t.step();
            assert!(s.rolled_back.is_none(), "{what}: {:?}", s.rolled_back);
        }
        assert!(t.flow.store.all_finite(), "{what}");
    }
}

/// A data set of duplicated points far from the origin, with one outlier: the MLE's
/// densities become needle-sharp and the log-determinants huge.
fn extreme_data() -> Arc<dyn Target> {
    let mut csv = String::from("x,y\n");
    for _ in 0..200 {
        csv.push_str("3.5,3.5\n");
    }
    csv.push_str("-3.9,-3.9\n");
    Arc::from(flowlab::targets::from_csv_text(&csv).expect("a CSV target"))
}

#[test]
fn settings_that_diverge_are_rolled_back_and_never_leave_a_non_finite_parameter() {
    let (mut caught, mut flagged) = (0u32, 0u32);
    for (family, objective, target) in every_run() {
        let named: Arc<dyn Target> = Arc::from(flowlab::targets::by_name(target).unwrap());
        let mut stresses = vec![("lr 1, batch 1", named.clone(), 1, 1.0f32)];
        stresses.push(("lr 1, batch 256", named, 256, 1.0));
        if objective == ObjectiveKind::Mle {
            stresses.push(("duplicated extreme data, lr 1", extreme_data(), 64, 1.0));
        }
        for (stress, target, batch, lr) in stresses {
            let what = format!("{} by {}, {stress}", family.name(), objective.name());
            let mut t = trainer(&small(family), objective, target, batch, lr);
            for _ in 0..60 {
                let before = t.rollbacks();
                let lr_before = t.learning_rate();
                let s = t.step();
                assert!(
                    t.flow.store.all_finite(),
                    "{what}: a parameter is not finite"
                );
                match s.rolled_back {
                    Some(rollback) => {
                        assert_eq!(t.rollbacks(), before + 1, "{what}");
                        assert_eq!(rollback.new_lr, lr_before * 0.5, "{what}");
                        assert_eq!(rollback.step, t.steps(), "{what}: reported late");
                        caught += 1;
                    }
                    // Reverse KL may report an infinite KL estimate for a sound step (a
                    // sample where the target has no mass); everything else is finite.
                    None if objective != ObjectiveKind::ReverseKl => {
                        assert!(s.loss.is_finite(), "{what}: a non-finite loss not caught")
                    }
                    None => {}
                }
            }
            // Whatever happened, the model still evaluates — or, where its parameters are
            // finite but extreme enough that the density direction fails (a reverse-KL run
            // never trains that direction), the inverse-health check says so.
            let nll = t.held_out_nll().expect("evaluates");
            if nll.is_nan() {
                let points = t
                    .target()
                    .sample(256, &mut flowlab::rng::Rng::seed_from_u64(3));
                let error = RoundTrip::new(&t.flow, 256)
                    .expect("compiles")
                    .max_error(&t.flow, bytemuck::cast_slice(&points))
                    .expect("runs");
                assert!(
                    error.is_nan() || error > ROUND_TRIP_TOLERANCE,
                    "{what}: held-out NLL is NaN, yet the inverse looks healthy ({error})"
                );
                flagged += 1;
            }
        }
    }
    // The stresses are real: at learning rate 1 some of these runs do diverge.
    assert!(caught > 0, "no stress diverged: the test proves nothing");
    println!("divergences caught and rolled back: {caught}; broken inverses flagged: {flagged}");
}
