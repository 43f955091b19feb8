//! Planar and radial flows (Rezende & Mohamed 2015): the invertibility reparameterisation,
//! the root-solved inverse's residual, and reverse-KL training on the paper's U1.

#![allow(clippy::expect_used)] // Why: helpers shared by tests; a failure should panic with its message.

use std::sync::Arc;

use crate::common;
use flowlab::engine::{CpuProgram, GradientProgram, Graph, LrSchedule, ParamStore};
use flowlab::flows::planar::{FOLD_MARGIN, Planar};
use flowlab::flows::{Family, Flow, FlowConfig, FlowEvaluator, build_flow};
use flowlab::rng::Rng;
use flowlab::targets::Target;
use flowlab::train::{ObjectiveKind, TrainConfig, Trainer};

fn softplus(a: f64) -> f64 {
    if a > 30.0 { a } else { a.exp().ln_1p() }
}

/// `ûᵀw` of a planar layer whose raw parameters are set to `u`, `w`.
fn u_hat_dot_w(u: [f32; 2], w: [f32; 2]) -> f32 {
    let mut store = ParamStore::new();
    let layer = Planar::new(&mut store, 0, 2, &mut Rng::seed_from_u64(0));
    let (ru, rw) = (
        store.spec(layer.u.id).range(),
        store.spec(layer.w.id).range(),
    );
    store.values_mut()[ru].copy_from_slice(&u);
    store.values_mut()[rw].copy_from_slice(&w);
    let mut g = Graph::new();
    let p = layer.params(&mut g);
    let mut program = CpuProgram::<f32>::compile(&g, &store, &[p.u_hat_dot_w]).expect("compiles");
    program.run(store.values());
    program.scalar(p.u_hat_dot_w).expect("scalar")
}

#[test]
fn reparameterisation_keeps_u_hat_dot_w_above_minus_one() {
    // The paper's failure case: u anti-parallel to w, so that raw uᵀw ≪ −1.
    for w in [[1.0f32, 0.0], [0.3, -0.4], [2.0, 1.5], [-0.05, 0.02]] {
        let u = [-10.0 * w[0], -10.0 * w[1]];
        let raw = (u[0] * w[0] + u[1] * w[1]) as f64;
        let c = u_hat_dot_w(u, w);
        assert!(c > -1.0, "w = {w:?}: ûᵀw = {c} (raw uᵀw = {raw})");
        let expected = -1.0 + FOLD_MARGIN as f64 + softplus(raw);
        assert!(
            (c as f64 - expected).abs() < 1e-6 + 1e-5 * expected.abs(),
            "ûᵀw = {c}, m(wᵀu) = {expected}"
        );
    }
    // Arbitrary raw parameters, including large ones.
    let mut rng = Rng::seed_from_u64(4);
    for _ in 0..200 {
        let u = [3.0 * rng.normal_f32(), 3.0 * rng.normal_f32()];
        let w = [3.0 * rng.normal_f32(), 3.0 * rng.normal_f32()];
        let c = u_hat_dot_w(u, w);
        assert!(c.is_finite() && c > -1.0, "u = {u:?}, w = {w:?}: ûᵀw = {c}");
    }
}

/// Worst per-row residual `|f(f⁻¹(y)) − y|` of every layer of `flow`, and that the density
/// direction from `inverse_with_residual` is the plain inverse.
fn worst_residual(flow: &Flow, points: &[f32]) -> f32 {
    let rows = points.len() / 2;
    let mut worst = 0.0f32;
    for layer in &flow.layers {
        let mut g = Graph::new();
        let y = g.input(rows, 2);
        let (out, residual) = layer.inverse_with_residual(&mut g, y);
        let residual = residual.expect("planar and radial report a residual");
        let mut p =
            CpuProgram::<f32>::compile(&g, &flow.store, &[out.y, residual]).expect("compiles");
        p.set_input(y, points).expect("input");
        p.run(flow.store.values());
        let r = p.value(residual).expect("residual");
        assert!(
            r.iter().all(|v| v.is_finite()),
            "{}: non-finite residual",
            layer.kind()
        );
        worst = r.iter().copied().fold(worst, common::worst);
    }
    worst
}

fn perturbed_flow(family: Family, scale: f32) -> Flow {
    let mut flow = build_flow(&FlowConfig::new(family), 2, 7).expect("builds");
    let mut rng = Rng::seed_from_u64(8);
    for v in flow.store.values_mut() {
        *v += scale * rng.normal_f32();
    }
    flow
}

#[test]
fn inverse_residual_is_tiny_in_normal_conditions() {
    let mut rng = Rng::seed_from_u64(3);
    let points: Vec<f32> = (0..2 * 512).map(|_| 2.0 * rng.normal_f32()).collect();
    for family in [Family::Planar, Family::Radial] {
        let flow = perturbed_flow(family, 0.5);
        let worst = worst_residual(&flow, &points);
        assert!(worst < 1e-4, "{}: residual up to {worst:e}", family.name());
    }
}

/// One planar layer with `w = (0.8, −0.6)`, `u = k·w`, `b = 0.3`.
fn single_planar(k: f32) -> Flow {
    let mut store = ParamStore::new();
    let layer = Planar::new(&mut store, 0, 2, &mut Rng::seed_from_u64(0));
    let w = [0.8f32, -0.6];
    let ranges = [layer.u.id, layer.w.id, layer.b.id].map(|id| store.spec(id).range());
    store.values_mut()[ranges[0].clone()].copy_from_slice(&[k * w[0], k * w[1]]);
    store.values_mut()[ranges[1].clone()].copy_from_slice(&w);
    store.values_mut()[ranges[2].clone()].copy_from_slice(&[0.3]);
    Flow {
        config: FlowConfig::new(Family::Planar),
        dim: 2,
        layers: vec![Box::new(layer)],
        base: flowlab::flows::Base::StandardNormal { dim: 2 },
        store,
    }
}

#[test]
fn near_the_fold_the_solver_stays_exact_but_the_inverse_explodes() {
    // u = −10·w and −30·w: ûᵀw = −1 + 4.5e-5 and −1 + 1e-6 (the margin), so the map's slope
    // along w nearly vanishes at wᵀz = −b. The root solve still meets its equation
    // (residual |f(f⁻¹(y)) − y| tiny), but f⁻¹(f(z)) misses z by ~1e-3 in f32: the condition
    // number 1/(1 + ûᵀw) amplifies rounding. Measured: residual 5e-7 / 1e-6, round trip
    // 2.6e-3 / 5.9e-3. A well-conditioned layer (u = 0.5·w) round-trips to ~1e-6.
    let mut rng = Rng::seed_from_u64(5);
    let points: Vec<f32> = (0..2 * 4096).map(|_| 2.0 * rng.normal_f32()).collect();
    for (k, exploded) in [(-10.0, true), (-30.0, true), (0.5, false)] {
        let flow = single_planar(k);
        let residual = worst_residual(&flow, &points);
        assert!(residual < 1e-5, "u = {k}·w: residual {residual:e}");
        let mut eval = FlowEvaluator::new(&flow, 4096).expect("compiles");
        let x = eval.sample(&flow, &points).expect("samples").x;
        let z = eval.density(&flow, &x).expect("density").z;
        let miss = z
            .iter()
            .zip(&points)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, common::worst);
        if exploded {
            assert!(
                (1e-4..0.05).contains(&miss),
                "u = {k}·w: round trip misses by {miss:e}"
            );
        } else {
            assert!(miss < 1e-5, "u = {k}·w: round trip misses by {miss:e}");
        }
    }
}

/// `−mean log p(x)` through the density direction (the root solves included) in f64, with its
/// gradient from autodiff, against central differences of the loss in each parameter.
fn mle_gradient_error(family: Family) -> f64 {
    let mut config = FlowConfig::new(family);
    config.layers = 3;
    let mut flow = build_flow(&config, 2, 11).expect("builds");
    let mut rng = Rng::seed_from_u64(12);
    for v in flow.store.values_mut() {
        *v += 0.3 * rng.normal_f32();
    }
    let rows = 32;
    let x: Vec<f64> = (0..2 * rows).map(|_| 1.5 * rng.normal_f64()).collect();
    let build = || {
        let mut g = Graph::new();
        let input = g.input(rows, 2);
        let d = flow.density_graph(&mut g, input);
        let mean = g.mean(flowlab::engine::Axis::All, d.log_prob);
        let loss = g.neg(mean);
        (g, input, loss)
    };
    let (g, input, loss) = build();
    let mut with_grad = GradientProgram::<f64>::new(g, loss, &flow.store, &[]).expect("compiles");
    with_grad.program_mut().set_input(input, &x).expect("input");
    let params: Vec<f64> = flow.store.values().iter().map(|&v| v as f64).collect();
    with_grad.run(&params);
    let analytic = with_grad.grads().to_vec();
    let (g, input, loss) = build();
    let mut plain = CpuProgram::<f64>::compile(&g, &flow.store, &[loss]).expect("compiles");
    plain.set_input(input, &x).expect("input");
    let h = 1e-6;
    let mut worst = 0.0f64;
    for i in 0..params.len() {
        let mut at = |delta: f64| {
            let mut p = params.clone();
            p[i] += delta;
            plain.run(&p);
            plain.scalar(loss).expect("loss")
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        worst = worst.max((numeric - analytic[i]).abs() / (1.0 + numeric.abs()));
    }
    worst
}

#[test]
fn likelihood_gradients_through_the_root_solve_match_finite_differences() {
    // The bisection carries no derivative; the final Newton step supplies the implicit-function
    // gradient, so maximum likelihood through the density direction trains correctly.
    for family in [Family::Planar, Family::Radial] {
        let err = mle_gradient_error(family);
        assert!(
            err < 1e-6,
            "{}: gradient relative error {err:e}",
            family.name()
        );
    }
}

struct KlRun {
    /// Mean of the trainer's KL estimate over the last 100 steps.
    train_kl: f64,
    /// `mean(log q − log p*)` on a fresh sample of 20 000 points.
    fresh_kl: f64,
}

/// Reverse KL on U1 (`batch`, Adam at `lr` with cosine decay to 5 %), the flow built from `seed`.
fn train_on_u1(family: Family, steps: usize, batch: usize, lr: f32, seed: u64) -> KlRun {
    let flow = build_flow(&FlowConfig::new(family), 2, seed).expect("builds");
    let target: Arc<dyn Target> = Arc::from(flowlab::targets::by_name("u1").expect("u1"));
    let mut train = TrainConfig {
        batch,
        objective: ObjectiveKind::ReverseKl,
        held_out: 16,
        seed,
        ..TrainConfig::default()
    };
    train.adam.lr = lr;
    train.adam.schedule = LrSchedule::Cosine {
        total_steps: steps as u64,
        final_fraction: 0.05,
    };
    let mut trainer = Trainer::new(flow, target.clone(), train).expect("trainer");
    let mut tail = Vec::new();
    for i in 0..steps {
        let out = trainer.step();
        assert!(
            out.rolled_back.is_none(),
            "{}: {:?}",
            family.name(),
            out.rolled_back
        );
        if i + 100 >= steps {
            tail.push(out.loss as f64);
        }
    }
    let n = 20_000;
    let mut eps = vec![0.0f32; 2 * n];
    Rng::seed_from_u64(99).fill_normal(&mut eps);
    let mut eval = FlowEvaluator::new(&trainer.flow, 2048).expect("compiles");
    let s = eval.sample(&trainer.flow, &eps).expect("samples");
    let fresh_kl =
        s.x.chunks_exact(2)
            .zip(&s.log_prob)
            .map(|(x, &lq)| lq as f64 - target.normalized_log_density([x[0] as f64, x[1] as f64]))
            .sum::<f64>()
            / n as f64;
    KlRun {
        train_kl: tail.iter().sum::<f64>() / tail.len() as f64,
        fresh_kl,
    }
}

/// The stated KL on U1 for `family` after 3000 steps of batch 512 (seed 1), on both estimates.
fn assert_u1_kl(family: Family, threshold: f64) {
    let r = train_on_u1(family, 3000, 512, 1e-2, 1);
    let name = family.name();
    assert!(
        r.train_kl < threshold,
        "{name}: trainer's KL {:.4} ≥ {threshold}",
        r.train_kl
    );
    assert!(
        r.fresh_kl < threshold,
        "{name}: fresh-sample KL {:.4} ≥ {threshold}",
        r.fresh_kl
    );
    // The trainer's running estimate and a fresh 20 000-point estimate tell the same story.
    assert!(
        (r.train_kl - r.fresh_kl).abs() < 0.02,
        "{name}: KL {:.4} vs fresh {:.4}",
        r.train_kl,
        r.fresh_kl
    );
}

#[test]
fn planar_reverse_kl_on_u1_reaches_a_stated_kl() {
    // Measured on this machine (`measure_reverse_kl_on_u1` below, seeds 1–6 of flow and data):
    // seed 1 reaches KL 0.0108 (trainer, mean of the last 100 steps) / 0.0094 (fresh 20 000
    // samples); seeds 2–6 reach 0.012–0.058. The untrained flow (the base N(0, I)) is at 4.57.
    // Threshold 0.08: above the worst seed, so engine changes that reorder rounding don't flake.
    assert_u1_kl(Family::Planar, 0.08);
}

#[test]
fn radial_reverse_kl_on_u1_reaches_a_stated_kl() {
    // Measured: seed 1 reaches 0.108 (trainer) / 0.102 (fresh); seeds 2–6 reach 0.083–0.134.
    // Untrained: 4.60. Radial layers are isotropic about their centres, so U1's two lobes cost
    // more layers than planar ones need. Threshold 0.18.
    assert_u1_kl(Family::Radial, 0.18);
}

/// Prints KL figures for the settings in `FLOWLAB_MEASURE` (`family:steps:batch:lr:seed,…`):
/// `cargo test --test numerics -- --ignored --nocapture flow_planar::measure`.
#[test]
#[ignore]
fn measure_reverse_kl_on_u1() {
    let list = std::env::var("FLOWLAB_MEASURE")
        .unwrap_or_else(|_| "planar:2000:256:0.01:1,radial:2000:256:0.01:1".into());
    for item in list.split(',') {
        let f: Vec<&str> = item.split(':').collect();
        let family = Family::from_name(f[0]).expect("family");
        let (steps, batch, lr, seed): (usize, usize, f32, u64) = (
            f[1].parse().expect("steps"),
            f[2].parse().expect("batch"),
            f[3].parse().expect("lr"),
            f[4].parse().expect("seed"),
        );
        let t = std::time::Instant::now();
        let r = train_on_u1(family, steps, batch, lr, seed);
        println!(
            "{} steps {steps} batch {batch} lr {lr} seed {seed}: train KL {:.4}, fresh KL {:.4} ({:.1} s)",
            family.name(),
            r.train_kl,
            r.fresh_kl,
            t.elapsed().as_secs_f64()
        );
    }
}
