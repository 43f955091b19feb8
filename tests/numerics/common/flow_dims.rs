//! Helpers for checking flows in any dimension `D` (the shared loop in `flows.rs` is
//! 2-D): a perturbed flow, one layer run in f64, and its log-det against a finite-difference
//! Jacobian's.
#![allow(clippy::expect_used)] // Why: helpers shared by tests; a failure should panic with its message.

use flowlab::engine::{CpuProgram, Graph, ParamStore, Var};
use flowlab::flows::{Family, Flow, FlowConfig, Layer, build_flow};
use flowlab::rng::Rng;

/// A small `dim`-dimensional flow with every parameter perturbed away from its initial value.
pub fn perturbed_flow(family: Family, dim: usize, layers: usize) -> Flow {
    let mut config = FlowConfig::new(family);
    config.layers = layers;
    config.hidden = 16;
    let mut flow = build_flow(&config, dim, 3).unwrap_or_else(|e| panic!("{}: {e}", family.name()));
    let mut rng = Rng::seed_from_u64(5);
    for v in flow.store.values_mut() {
        *v += 0.3 * rng.normal_f32();
    }
    flow
}

/// Runs `build` on the rows of `x` (`n × dim`) in f64: (outputs, log-dets).
pub fn run_layer_f64(
    store: &ParamStore,
    dim: usize,
    x: &[f64],
    build: &dyn Fn(&mut Graph, Var) -> (Var, Var),
) -> (Vec<f64>, Vec<f64>) {
    let mut g = Graph::new();
    let input = g.input(x.len() / dim, dim);
    let (y, log_det) = build(&mut g, input);
    let mut p = CpuProgram::<f64>::compile(&g, store, &[y, log_det]).expect("compiles");
    p.set_input(input, x).expect("input");
    let params: Vec<f64> = store.values().iter().map(|&v| v as f64).collect();
    p.run(&params);
    (
        p.value(y).expect("y").to_vec(),
        p.value(log_det).expect("log det").to_vec(),
    )
}

/// `log|det A|` of a row-major `n×n` matrix, by elimination with partial pivoting.
pub fn log_abs_det(mut a: Vec<f64>, n: usize) -> f64 {
    let mut total = 0.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| a[i * n + k].abs().total_cmp(&a[j * n + k].abs()))
            .unwrap_or(k);
        for j in 0..n {
            a.swap(k * n + j, p * n + j);
        }
        let pivot = a[k * n + k];
        total += pivot.abs().ln();
        for i in k + 1..n {
            let f = a[i * n + k] / pivot;
            for j in k..n {
                a[i * n + j] -= f * a[k * n + j];
            }
        }
    }
    total
}

/// Worst |analytic − numeric| `log|det J|` of `layer` over the rows of `x`, both directions.
pub fn worst_log_det_error(store: &ParamStore, dim: usize, x: &[f64], layer: &dyn Layer) -> f64 {
    let rows = x.len() / dim;
    let mut worst = 0.0f64;
    for forward in [true, false] {
        let build = |g: &mut Graph, v: Var| {
            let o = if forward {
                layer.forward(g, v)
            } else {
                layer.inverse(g, v)
            };
            (o.y, o.log_det)
        };
        let (_, analytic) = run_layer_f64(store, dim, x, &build);
        let h = 1e-5;
        let mut jac = vec![vec![0.0f64; dim * dim]; rows];
        for j in 0..dim {
            // Rows are independent: shifting column j of every row gives column j of each Jacobian.
            let shifted = |sign: f64| {
                let mut xs = x.to_vec();
                xs.iter_mut()
                    .skip(j)
                    .step_by(dim)
                    .for_each(|v| *v += sign * h);
                run_layer_f64(store, dim, &xs, &build).0
            };
            let (up, down) = (shifted(1.0), shifted(-1.0));
            for r in 0..rows {
                for i in 0..dim {
                    jac[r][i * dim + j] = (up[r * dim + i] - down[r * dim + i]) / (2.0 * h);
                }
            }
        }
        for (r, j) in jac.into_iter().enumerate() {
            worst = worst.max((log_abs_det(j, dim) - analytic[r]).abs());
        }
    }
    worst
}
