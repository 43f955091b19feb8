//! The training-only terms: Hutchinson probes as trainer inputs, the regularisers' values,
//! augmented dimensions, and which flows flow matching accepts.

use std::sync::Arc;

use flowlab::engine::{CpuProgram, Graph};
use flowlab::flows::cnf::field::Time;
use flowlab::flows::cnf::solver::{Grid, rk4_in_place};
use flowlab::flows::cnf::{ProbeKind, TraceEstimator, ode_of};
use flowlab::flows::{Family, FlowConfig, FlowEvaluator, build_flow};
use flowlab::rng::Rng;
use flowlab::train::{InputKind, ObjectiveKind, TrainConfig, TrainError, Trainer, objective};

use super::random_cnf;

#[test]
fn hutchinson_probes_are_shared_inputs_and_the_mle_loss_is_unbiased() {
    let hutchinson = random_cnf(|c| {
        c.cnf.trace = TraceEstimator::Hutchinson;
        c.cnf.probe = ProbeKind::Gaussian;
        c.cnf.probes = 2;
    });
    let rows = 32;
    let o = objective::mle(&hutchinson, rows);
    let probes: Vec<_> = o
        .inputs
        .iter()
        .filter(|(_, k)| *k == InputKind::StandardNormal)
        .collect();
    // Two probes for the whole solve, shared by all ten time segments (FFJORD).
    assert_eq!(probes.len(), 2, "inputs: {:?}", o.inputs);
    let mut p =
        CpuProgram::<f32>::compile(&o.graph, &hutchinson.store, &[o.loss]).expect("compiles");
    let mut rng = Rng::seed_from_u64(3);
    let x: Vec<f32> = (0..rows * 2).map(|_| rng.normal_f32()).collect();
    p.set_input(o.inputs[0].0, &x).expect("data");
    let draws = 400;
    let losses: Vec<f64> = (0..draws)
        .map(|_| {
            for (v, _) in &probes {
                rng.fill_normal(p.input_mut(*v).expect("probe"));
            }
            p.run(hutchinson.store.values());
            p.scalar(o.loss).expect("loss") as f64
        })
        .collect();
    let mean = losses.iter().sum::<f64>() / draws as f64;
    let sd = (losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (draws - 1) as f64).sqrt();
    let d = FlowEvaluator::new(&hutchinson, rows)
        .expect("compiles")
        .density(&hutchinson, &x)
        .expect("density");
    let exact = -d.log_prob.iter().map(|&v| v as f64).sum::<f64>() / rows as f64;
    assert!(sd > 0.0, "the probes must change the estimate");
    assert!(
        (mean - exact).abs() < 5.0 * sd / (draws as f64).sqrt(),
        "Hutchinson NLL {mean} ± {sd} vs exact {exact}"
    );
}

#[test]
fn regularisers_integrate_the_kinetic_energy_and_jacobian_norm() {
    let (lambda_k, lambda_j) = (0.7, 0.3);
    let flow = random_cnf(|c| {
        c.cnf.kinetic = lambda_k;
        c.cnf.jacobian = lambda_j;
    });
    let rows = 8;
    let mut g = Graph::new();
    let x = g.input(rows, 2);
    let (_, terms) = flow.training_density_graph(&mut g, x);
    let penalty = terms.penalty.expect("a penalty");
    let mut p = CpuProgram::<f64>::compile(&g, &flow.store, &[penalty]).expect("compiles");
    let mut rng = Rng::seed_from_u64(6);
    let points: Vec<f64> = (0..rows * 2).map(|_| rng.normal_f64()).collect();
    p.set_input(x, &points).expect("points");
    let params: Vec<f64> = flow.store.values().iter().map(|&v| v as f64).collect();
    p.run(&params);
    let got = p.value(penalty).expect("penalty").to_vec();

    // Reference: RK4 (same grid, from T back to 0) on [z, ∫‖f‖², ∫‖J‖_F²] with the Jacobian by
    // central differences, all in f64.
    let ode = ode_of(&flow).expect("an ODE");
    let mut field_graph = Graph::new();
    let z = field_graph.input(1, 2);
    let t = field_graph.input(1, 1);
    let vars = ode.field.vars(&mut field_graph);
    let f = vars.eval(&mut field_graph, z, Time::Node(t)).f;
    let mut fp = CpuProgram::<f64>::compile(&field_graph, &flow.store, &[f]).expect("compiles");
    let mut eval = |time: f64, at: [f64; 2]| -> [f64; 2] {
        fp.set_input(z, &at).expect("z");
        fp.set_input(t, &[time]).expect("t");
        fp.run(&params);
        let v = fp.value(f).expect("f");
        [v[0], v[1]]
    };
    for r in 0..rows {
        let mut rhs = |time: f64, y: &[f64], dy: &mut [f64]| {
            let at = [y[0], y[1]];
            let fv = eval(time, at);
            let h = 1e-6;
            let mut frob = 0.0;
            for i in 0..2 {
                let (mut up, mut down) = (at, at);
                up[i] += h;
                down[i] -= h;
                let (fu, fd) = (eval(time, up), eval(time, down));
                frob += (0..2)
                    .map(|j| ((fu[j] - fd[j]) / (2.0 * h)).powi(2))
                    .sum::<f64>();
            }
            // Integrated backwards in time; the penalties are over |dt|.
            dy[..2].copy_from_slice(&fv);
            dy[2] = -(fv[0] * fv[0] + fv[1] * fv[1]);
            dy[3] = -frob;
        };
        let mut y = [points[2 * r], points[2 * r + 1], 0.0, 0.0];
        rk4_in_place(
            &mut rhs,
            &mut y,
            Grid {
                t0: 1.0,
                t1: 0.0,
                steps: 20,
            },
        );
        let want = lambda_k as f64 * y[2] + lambda_j as f64 * y[3];
        assert!(want > 0.01, "a perturbed field has energy ({want})");
        assert!(
            (got[r] - want).abs() < 1e-6 * (1.0 + want),
            "row {r}: penalty {} vs reference {want}",
            got[r]
        );
    }
}

#[test]
fn augmented_cnf_scores_x_padded_with_zeros() {
    let mut config = FlowConfig::new(Family::Cnf);
    config.hidden = 16;
    config.cnf.augment = 2;
    let flow = build_flow(&config, 2, 1).expect("builds");
    assert_eq!(flow.layers.len(), 1, "an augmented CNF is one layer");
    assert_eq!(ode_of(&flow).expect("an ODE").state_dim(), 4);
    // At initialisation f ≡ 0, so log p_D(x, 0) = log N(x; 0, I₂) + log N(0; 0, I₂).
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let d = FlowEvaluator::new(&flow, 2)
        .expect("compiles")
        .density(&flow, &x)
        .expect("density");
    let log_tau = (2.0 * std::f64::consts::PI).ln();
    for (r, lp) in d.log_prob.iter().enumerate() {
        let sq = (x[2 * r] as f64).powi(2) + (x[2 * r + 1] as f64).powi(2);
        let want = -0.5 * sq - 2.0 * log_tau;
        assert!((*lp as f64 - want).abs() < 1e-5, "row {r}: {lp} vs {want}");
    }
    // Both objectives train it (and lower the slice's NLL easily: it is not normalised, see
    // the `flows::cnf` module docs; this checks the plumbing, not a likelihood).
    for objective in [ObjectiveKind::Mle, ObjectiveKind::FlowMatching] {
        let flow = build_flow(&config, 2, 1).expect("builds");
        let target = flowlab::targets::by_name("twomoons").expect("target");
        let train = TrainConfig {
            batch: 64,
            objective,
            held_out: 256,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(flow, Arc::from(target), train).expect("trainer");
        let before = t.held_out_nll().expect("nll");
        for _ in 0..60 {
            assert!(t.step().rolled_back.is_none());
        }
        let after = t.held_out_nll().expect("nll");
        assert!(
            after.is_finite() && after < before,
            "{objective:?}: NLL {before} → {after}"
        );
    }
}

#[test]
fn flow_matching_needs_a_vector_field() {
    let target: Arc<dyn flowlab::targets::Target> =
        Arc::from(flowlab::targets::by_name("twomoons").expect("target"));
    let train = TrainConfig {
        batch: 32,
        objective: ObjectiveKind::FlowMatching,
        ..TrainConfig::default()
    };
    let realnvp = build_flow(&FlowConfig::new(Family::RealNvp), 2, 0).expect("builds");
    let err = Trainer::new(realnvp, Arc::clone(&target), train.clone()).err();
    assert!(matches!(err, Some(TrainError::NotApplicable(_))), "{err:?}");
    let cnf = build_flow(&FlowConfig::new(Family::Cnf), 2, 0).expect("builds");
    let fm = objective::flow_matching(&cnf, 32).expect("a CNF has a field");
    let kinds: Vec<_> = fm.inputs.iter().map(|(_, k)| *k).collect();
    assert_eq!(
        kinds,
        [
            InputKind::TargetSamples,
            InputKind::StandardNormal,
            InputKind::Uniform
        ]
    );
    assert!(Trainer::new(cnf, target, train).is_ok());
}
