//! The continuous normalizing flow beyond the shared loop in `flows.rs`: its trace
//! estimators, its adaptive solver, its regularisers and augmentation, and the held-out NLL it
//! reaches by maximum likelihood and by flow matching.

// Helpers outside `#[test]` functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowlab::engine::{CpuProgram, Graph, ParamStore};
use flowlab::flows::cnf::field::{Time, VectorField};
use flowlab::flows::cnf::trace::{TraceMode, TracePlan};
use flowlab::flows::mlp::Activation;
use flowlab::flows::{Family, Flow, FlowConfig, build_flow};
use flowlab::rng::Rng;

mod solver;
mod terms;
mod training;

/// A 2-D field `2+1 → 16 → 16 → 2` with every parameter perturbed (the output layer too).
fn random_field(store: &mut ParamStore) -> VectorField {
    let field = VectorField::new(
        store,
        2,
        16,
        2,
        Activation::Tanh,
        &mut Rng::seed_from_u64(4),
    );
    let mut rng = Rng::seed_from_u64(8);
    store
        .values_mut()
        .iter_mut()
        .for_each(|v| *v += 0.5 * rng.normal_f32());
    field
}

/// A small CNF with perturbed parameters.
fn random_cnf(configure: impl Fn(&mut FlowConfig)) -> Flow {
    let mut config = FlowConfig::new(Family::Cnf);
    config.hidden = 16;
    configure(&mut config);
    let mut flow = build_flow(&config, 2, 3).expect("builds");
    let mut rng = Rng::seed_from_u64(5);
    flow.store
        .values_mut()
        .iter_mut()
        .for_each(|v| *v += 0.3 * rng.normal_f32());
    flow
}

/// Five points at which the field is probed.
const POINTS: [[f64; 2]; 5] = [
    [0.0, 0.0],
    [1.0, -0.5],
    [-1.5, 0.7],
    [0.3, 2.0],
    [-0.8, -1.9],
];
const T: f32 = 0.3;

/// `f` and the exact trace (both plans) at the points, in f64.
fn field_and_traces(
    store: &ParamStore,
    field: &VectorField,
    z: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let rows = z.len() / 2;
    let mut g = Graph::new();
    let input = g.input(rows, 2);
    let field = &field.vars(&mut g);
    let eval = field.eval(&mut g, input, Time::Constant(T));
    let bilinear = TracePlan::new(
        &mut g,
        field,
        TraceMode::Exact {
            jacobian_norm: false,
        },
    );
    let tangents = TracePlan::new(
        &mut g,
        field,
        TraceMode::Exact {
            jacobian_norm: true,
        },
    );
    let a = bilinear.divergence(&mut g, field, &eval).trace;
    let b = tangents.divergence(&mut g, field, &eval).trace;
    let mut p = CpuProgram::<f64>::compile(&g, store, &[eval.f, a, b]).expect("compiles");
    p.set_input(input, z).expect("input");
    let params: Vec<f64> = store.values().iter().map(|&v| v as f64).collect();
    p.run(&params);
    let read = |v| p.value(v).expect("value").to_vec();
    (read(eval.f), read(a), read(b))
}

/// The Jacobian `J_ij = ∂f_j/∂z_i` at each point, by central differences in f64.
fn jacobians(store: &ParamStore, field: &VectorField) -> Vec<[[f64; 2]; 2]> {
    let h = 1e-6;
    let z: Vec<f64> = POINTS.iter().flatten().copied().collect();
    let mut jac = vec![[[0.0; 2]; 2]; POINTS.len()];
    for i in 0..2 {
        let shifted = |s: f64| {
            let mut z = z.clone();
            z.iter_mut().skip(i).step_by(2).for_each(|v| *v += s * h);
            field_and_traces(store, field, &z).0
        };
        let (up, down) = (shifted(1.0), shifted(-1.0));
        for (r, j) in jac.iter_mut().enumerate() {
            for k in 0..2 {
                j[i][k] = (up[2 * r + k] - down[2 * r + k]) / (2.0 * h);
            }
        }
    }
    jac
}

#[test]
fn exact_trace_matches_the_finite_difference_jacobian() {
    let mut store = ParamStore::new();
    let field = random_field(&mut store);
    let z: Vec<f64> = POINTS.iter().flatten().copied().collect();
    let (_, bilinear, tangents) = field_and_traces(&store, &field, &z);
    for (r, j) in jacobians(&store, &field).iter().enumerate() {
        let numeric = j[0][0] + j[1][1];
        assert!(
            (bilinear[r] - numeric).abs() < 1e-7,
            "bilinear trace {} vs {numeric}",
            bilinear[r]
        );
        assert!(
            (tangents[r] - numeric).abs() < 1e-7,
            "tangent trace {} vs {numeric}",
            tangents[r]
        );
    }
}

/// Hutchinson's estimate `uᵀJu` at each point, `draws` times (f32, as trained).
fn hutchinson_draws(
    store: &ParamStore,
    field: &VectorField,
    gaussian: bool,
    draws: usize,
) -> Vec<Vec<f64>> {
    let rows = POINTS.len() * draws;
    let mut g = Graph::new();
    let input = g.input(rows, 2);
    let probe = g.input(rows, 2);
    let field = &field.vars(&mut g);
    let eval = field.eval(&mut g, input, Time::Constant(T));
    let plan = TracePlan::new(
        &mut g,
        field,
        TraceMode::Hutchinson {
            probes: &[probe],
            jacobian_norm: false,
        },
    );
    let est = plan.divergence(&mut g, field, &eval).trace;
    let mut p = CpuProgram::<f32>::compile(&g, store, &[est]).expect("compiles");
    let z: Vec<f32> = POINTS
        .iter()
        .flat_map(|pt| std::iter::repeat_n(pt.map(|v| v as f32), draws))
        .flatten()
        .collect();
    p.set_input(input, &z).expect("points");
    let mut rng = Rng::seed_from_u64(if gaussian { 21 } else { 22 });
    let u: Vec<f32> = (0..rows * 2)
        .map(|_| {
            if gaussian {
                rng.normal_f32()
            } else {
                rng.sign() as f32
            }
        })
        .collect();
    p.set_input(probe, &u).expect("probes");
    p.run(store.values());
    let values = p.value(est).expect("estimates");
    values
        .chunks(draws)
        .map(|c| c.iter().map(|&v| v as f64).collect())
        .collect()
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (
        mean,
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

#[test]
fn hutchinson_is_unbiased_and_its_variance_is_as_theory_says() {
    let mut store = ParamStore::new();
    let field = random_field(&mut store);
    let z: Vec<f64> = POINTS.iter().flatten().copied().collect();
    let exact = field_and_traces(&store, &field, &z).1;
    let jac = jacobians(&store, &field);
    let draws = 20_000;
    let gaussian = hutchinson_draws(&store, &field, true, draws);
    let rademacher = hutchinson_draws(&store, &field, false, draws);
    // Measured at point 0: exact trace 2.8639; Gaussian mean 2.8379, variance 17.20 (theory
    // 17.87); Rademacher mean 2.8542, variance 6.824 (theory 6.824). Over the five points the
    // Gaussian variance is 1.5–9.7× the Rademacher one.
    for (r, j) in jac.iter().enumerate() {
        // Only the symmetric part S matters: Var_N = 2‖S‖_F², Var_R = 2Σ_{i≠j} S_ij² (2-D: 4S₁₂²).
        let s12 = 0.5 * (j[0][1] + j[1][0]);
        let theory_rademacher = 4.0 * s12 * s12;
        let theory_gaussian = 2.0 * (j[0][0].powi(2) + j[1][1].powi(2)) + theory_rademacher;
        for (name, draws_r, theory) in [
            ("Gaussian", &gaussian[r], theory_gaussian),
            ("Rademacher", &rademacher[r], theory_rademacher),
        ] {
            let (mean, var) = mean_var(draws_r);
            // Unbiased: the mean of 20 000 draws within 5 standard errors of the exact trace
            // (a 1-in-3.5-million event if it were chance; seeded, so it never flakes).
            let bound = 5.0 * (theory / draws as f64).sqrt() + 1e-5;
            assert!(
                (mean - exact[r]).abs() < bound,
                "{name} at point {r}: mean {mean} vs exact {} (bound {bound})",
                exact[r]
            );
            // The sample variance within 10% of the theory (its own standard error is ≲ 3%).
            assert!(
                (var - theory).abs() <= 0.1 * theory + 1e-6,
                "{name} at point {r}: variance {var} vs theory {theory}"
            );
        }
        let (var_n, var_r) = (mean_var(&gaussian[r]).1, mean_var(&rademacher[r]).1);
        assert!(
            var_r < var_n,
            "point {r}: Rademacher variance {var_r} ≥ Gaussian {var_n}"
        );
    }
}
