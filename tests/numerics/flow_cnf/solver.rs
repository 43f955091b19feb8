//! The solvers: Dormand–Prince against an exact solution and a fine RK4, and the adaptive
//! CNF evaluator against a fine RK4 in f64.

use flowlab::engine::{CpuProgram, Graph};
use flowlab::flows::Flow;
use flowlab::flows::cnf::AdaptiveEvaluator;
use flowlab::flows::cnf::dopri::{Tolerance, dopri5};
use flowlab::flows::cnf::solver::{Grid, rk4_in_place};
use flowlab::rng::Rng;

use super::random_cnf;

/// `dz/dt = A z` with `A = [[−½, −2], [2, −½]]`: `z(t) = e^{−t/2}·R(2t)·z₀`.
fn spiral(_t: f64, y: &[f64], dy: &mut [f64]) {
    for (p, d) in y.chunks(2).zip(dy.chunks_mut(2)) {
        d[0] = -0.5 * p[0] - 2.0 * p[1];
        d[1] = 2.0 * p[0] - 0.5 * p[1];
    }
}

fn spiral_exact(z0: [f64; 2], t: f64) -> [f64; 2] {
    let (c, s, e) = ((2.0 * t).cos(), (2.0 * t).sin(), (-0.5 * t).exp());
    [e * (c * z0[0] - s * z0[1]), e * (s * z0[0] + c * z0[1])]
}

#[test]
fn dormand_prince_meets_its_tolerance_on_a_linear_ode() {
    let starts = [[1.0, 0.0], [0.5, -2.0], [-3.0, 1.5]];
    let (t0, t1) = (0.0, 4.0);
    let mut reference: Vec<f64> = starts.iter().flatten().copied().collect();
    rk4_in_place(
        &mut spiral,
        &mut reference,
        Grid {
            t0,
            t1,
            steps: 20_000,
        },
    );
    let mut previous_steps = 0;
    for tol in [1e-3, 1e-5, 1e-7, 1e-9] {
        let mut y: Vec<f64> = starts.iter().flatten().copied().collect();
        let stats = dopri5(
            &mut spiral,
            &mut y,
            t0,
            t1,
            Tolerance {
                rtol: tol,
                atol: tol,
            },
            10_000,
        )
        .expect("solves");
        let err = starts
            .iter()
            .enumerate()
            .map(|(r, &z0)| {
                let exact = spiral_exact(z0, t1);
                (0..2)
                    .map(|k| (y[2 * r + k] - exact[k]).abs() / (1.0 + exact[k].abs()))
                    .fold(0.0, crate::common::worst)
            })
            .fold(0.0, crate::common::worst);
        let vs_rk4 = y
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, crate::common::worst);
        // Local error control keeps the global error within a small multiple of the tolerance.
        // Measured: ≤ 1.1 × tol against the exact solution, ≤ 1.6 × tol against 20 000 RK4
        // steps, with 10, 22, 51 and 126 steps for tolerances 1e-3 … 1e-9.
        assert!(
            err < 3.0 * tol,
            "tol {tol:e}: global error {err:e} ({stats:?})"
        );
        assert!(
            vs_rk4 < 3.0 * tol + 1e-12,
            "tol {tol:e}: differs from fine RK4 by {vs_rk4:e}"
        );
        assert!(
            stats.accepted > previous_steps,
            "tighter tolerances take more steps ({stats:?})"
        );
        previous_steps = stats.accepted;
        // Backwards from the solution returns to the start.
        let stats_back = dopri5(
            &mut spiral,
            &mut y,
            t1,
            t0,
            Tolerance {
                rtol: tol,
                atol: tol,
            },
            10_000,
        )
        .expect("solves");
        let back = y
            .iter()
            .zip(starts.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, crate::common::worst);
        // Backwards the spiral expands (×e² ≈ 7.4 over the span), and so do the forward
        // solve's errors: measured ≤ 18.4 × tol.
        assert!(
            back < 50.0 * tol,
            "tol {tol:e}: back-and-forth error {back:e} ({stats_back:?})"
        );
    }
}

/// `log p(x)` and `f⁻¹(x)` by 400 RK4 steps, in f64 (a reference with negligible error).
fn fine_rk4_density(flow: &Flow, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut fine = random_cnf(|c| c.cnf.steps = 400);
    fine.store.values_mut().copy_from_slice(flow.store.values());
    let mut g = Graph::new();
    let input = g.input(x.len() / 2, 2);
    let d = fine.density_graph(&mut g, input);
    let mut p = CpuProgram::<f64>::compile(&g, &fine.store, &[d.log_prob, d.z]).expect("compiles");
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    p.set_input(input, &xs).expect("input");
    let params: Vec<f64> = fine.store.values().iter().map(|&v| v as f64).collect();
    p.run(&params);
    (
        p.value(d.log_prob).expect("log p").to_vec(),
        p.value(d.z).expect("z").to_vec(),
    )
}

fn max_error(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, b)| (a as f64 - b).abs())
        .fold(0.0, crate::common::worst)
}

#[test]
fn adaptive_evaluation_meets_its_tolerance_against_fine_rk4() {
    let flow = random_cnf(|_| {});
    let mut rng = Rng::seed_from_u64(2);
    let x: Vec<f32> = (0..128).map(|_| 1.5 * rng.normal_f32()).collect();
    let (log_prob, z) = fine_rk4_density(&flow, &x);
    let mut adaptive = AdaptiveEvaluator::new(&flow, 64).expect("compiles");
    let mut steps = Vec::new();
    for tol in [1e-3, 1e-5, 1e-7] {
        let tolerance = Tolerance {
            rtol: tol,
            atol: tol,
        };
        let d = adaptive.density(&flow, &x, tolerance).expect("solves");
        let (lp, ze) = (max_error(&d.log_prob, &log_prob), max_error(&d.points, &z));
        // Local error control bounds the global error by a few × tol. Measured: log p within
        // 3.9× tol and z within 2.3× tol at 1e-3 and 1e-5; at 1e-7 the f32 field evaluations
        // floor log p at 1.7e-6. (3, 6 and 13 accepted steps.)
        let bound = (10.0 * tol).max(2e-5);
        assert!(
            lp < bound && ze < bound,
            "tol {tol:e}: log p off by {lp:e}, z by {ze:e} ({:?})",
            d.stats
        );
        steps.push(d.stats.accepted);
        // And back: sampling from the base points returns the data.
        let s = adaptive
            .sample(&flow, &d.points, tolerance)
            .expect("solves");
        let back = s
            .points
            .iter()
            .zip(&x)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, crate::common::worst);
        assert!(
            (back as f64) < 2.0 * bound,
            "tol {tol:e}: sample(density(x)) off by {back:e}"
        );
        let lq = s
            .log_prob
            .iter()
            .zip(&d.log_prob)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, crate::common::worst);
        assert!(
            (lq as f64) < 2.0 * bound,
            "tol {tol:e}: log q of the round trip off by {lq:e}"
        );
    }
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "tighter tolerance, more steps: {steps:?}"
    );
}

#[test]
fn velocity_matches_the_field() {
    let flow = random_cnf(|_| {});
    let ode = flowlab::flows::cnf::ode_of(&flow).expect("an ODE");
    let mut rng = Rng::seed_from_u64(4);
    let x: Vec<f32> = (0..2 * 100).map(|_| rng.normal_f32()).collect();
    // Chunks of 64: the second chunk is partial.
    let v = AdaptiveEvaluator::new(&flow, 64)
        .expect("compiles")
        .velocity(&flow, &x, 0.4)
        .expect("evaluates");
    let mut g = Graph::new();
    let z = g.input(100, 2);
    let vars = ode.field.vars(&mut g);
    let f = vars
        .eval(&mut g, z, flowlab::flows::cnf::field::Time::Constant(0.4))
        .f;
    let mut p = CpuProgram::<f32>::compile(&g, &flow.store, &[f]).expect("compiles");
    p.set_input(z, &x).expect("points");
    p.run(flow.store.values());
    let want = p.value(f).expect("f");
    let worst = v
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, crate::common::worst);
    assert!(
        worst < 1e-5 && want.iter().any(|w| w.abs() > 0.1),
        "velocity off by {worst}"
    );
}
