//! The layer-by-layer view's engine (`flows::inspect`): densities after `d` layers against the
//! full flow, the base and the sample-direction trace; volume preservation; a CNF's field and
//! trace estimator against finite differences; labels against what each layer computes
//! ([`labels`]).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: test helpers; a failure should panic with its message.

use crate::common;
use flowlab::flows::cnf::{AdaptiveEvaluator, ProbeKind, Solver};
use flowlab::flows::{
    Family, Flow, FlowConfig, FlowEvaluator, FlowInspector, InspectError, build_flow, depth_time,
    hutchinson_spread, solver_evaluations,
};
use flowlab::rng::Rng;

mod labels;

/// ½·log(2π).
const HALF_LOG_TAU: f64 = 0.918_938_533_204_672_7;

/// A family's default flow (dim 2) with every parameter moved by `scale·N(0, 1)`, so that no
/// layer is the identity it starts as.
fn perturbed(config: &FlowConfig, seed: u64, scale: f32) -> Flow {
    let mut flow = build_flow(config, 2, seed).unwrap();
    let mut rng = Rng::seed_from_u64(100 + seed);
    for v in flow.store.values_mut() {
        *v += scale * rng.normal_f32();
    }
    flow
}

/// The family's flow, perturbed. Why tanh (the reference model's networks): perturbed ReLU
/// conditioners have unbounded outputs that push an NSF's bins to their minimum size, where f32
/// arithmetic alone cost 1.2e-3 of log-density; trained ReLU NSFs invert within 6e-5.
fn default_flow(family: Family, seed: u64) -> Flow {
    perturbed(&FlowConfig::reference(family), seed, 0.2)
}

fn points(n: usize, spread: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..2 * n).map(|_| spread * rng.normal_f32()).collect()
}

/// Worst `|a − b| / (1 + |b|)`, NaN if any value is NaN.
fn worst_relative(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, common::worst)
}

/// The number after `key` in a label (`−` read as a minus sign).
fn number_after(label: &str, key: &str) -> f64 {
    let rest = &label[label
        .find(key)
        .unwrap_or_else(|| panic!("`{key}` in `{label}`"))
        + key.len()..];
    let text: String = rest
        .trim_start()
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ')')
        .collect();
    text.replace('−', "-")
        .parse()
        .unwrap_or_else(|e| panic!("`{text}` in `{label}`: {e}"))
}

#[test]
fn depth_k_is_the_flows_density_for_every_family() {
    for family in Family::ALL {
        for seed in [0, 1] {
            let flow = default_flow(family, seed);
            let x = points(200, 1.5, 7 + seed);
            let expected = FlowEvaluator::new(&flow, 128)
                .unwrap()
                .density(&flow, &x)
                .unwrap()
                .log_prob;
            // A chunk of 64 leaves a partial last chunk of 200 points.
            let mut inspector = FlowInspector::new(&flow, 64);
            let depth = flow.layers.len();
            let got = inspector.depth_density(&flow, depth, &x).unwrap();
            let err = worst_relative(&got.log_prob, &expected);
            assert!(err < 1e-4, "{} seed {seed}: error {err:e}", family.name());
            assert_eq!(got.layer_log_det.len(), 200, "{}", family.name());
        }
    }
}

#[test]
fn depth_zero_is_the_base_density() {
    let x = points(50, 2.0, 3);
    let standard = |p: &[f32]| -0.5 * (p[0] as f64).powi(2) - 0.5 * (p[1] as f64).powi(2);
    let flow = default_flow(Family::RealNvp, 0);
    let got = FlowInspector::new(&flow, 16)
        .depth_density(&flow, 0, &x)
        .unwrap();
    assert!(got.layer_log_det.is_empty());
    for (p, &lp) in x.chunks(2).zip(&got.log_prob) {
        let want = standard(p) - 2.0 * HALF_LOG_TAU;
        assert!((lp as f64 - want).abs() < 1e-5, "{lp} vs {want}");
    }

    // A learnable base: N(μ, diag σ²) with μ and log σ moved away from N(0, I).
    let mut config = FlowConfig::new(Family::Maf);
    config.learnable_base = true;
    let flow = perturbed(&config, 2, 0.3);
    let param = |name: &str| {
        let spec = flow.store.specs().iter().find(|s| s.name == name).unwrap();
        flow.store.values()[spec.range()].to_vec()
    };
    let (mean, log_std) = (param("base.mean"), param("base.log_std"));
    let got = FlowInspector::new(&flow, 16)
        .depth_density(&flow, 0, &x)
        .unwrap();
    for (p, &lp) in x.chunks(2).zip(&got.log_prob) {
        let want: f64 = (0..2)
            .map(|j| {
                let u = (p[j] - mean[j]) as f64 / (log_std[j] as f64).exp();
                -0.5 * u * u - log_std[j] as f64 - HALF_LOG_TAU
            })
            .sum();
        assert!((lp as f64 - want).abs() < 1e-5, "{lp} vs {want}");
    }
}

#[test]
fn intermediate_densities_of_realnvp_integrate_to_one() {
    // Perturbed enough that every layer scales by up to e^{±1} and mass reaches |x| ≈ 10 (with
    // tanh networks: ReLU's unbounded ones send mass past the grid at this perturbation).
    let flow = perturbed(&FlowConfig::reference(Family::RealNvp), 4, 0.2);
    // Midpoint rule on [−16, 16]², 640² cells of 0.05.
    let (cells, half) = (640, 16.0f32);
    let h = 2.0 * half / cells as f32;
    let grid: Vec<f32> = (0..cells * cells)
        .flat_map(|k| {
            let (i, j) = (k / cells, k % cells);
            [-half + (j as f32 + 0.5) * h, -half + (i as f32 + 0.5) * h]
        })
        .collect();
    let mut inspector = FlowInspector::new(&flow, 4096);
    for depth in [0, 2, 5, 8] {
        let d = inspector.depth_density(&flow, depth, &grid).unwrap();
        let mass: f64 =
            d.log_prob.iter().map(|&lp| (lp as f64).exp()).sum::<f64>() * (h as f64).powi(2);
        // Measured: 1.00000 at every depth; on [−10, 10]² depths 5 and 8 miss 2·10⁻⁴.
        assert!((mass - 1.0).abs() < 1e-3, "depth {depth}: mass {mass}");
    }
}

#[test]
fn layer_log_det_and_density_follow_the_sample_trace_for_every_family() {
    for family in Family::ALL {
        let flow = default_flow(family, 2);
        let eps = points(100, 1.0, 11);
        let trace = FlowEvaluator::new(&flow, 64)
            .unwrap()
            .trace(&flow, &eps)
            .unwrap();
        let mut inspector = FlowInspector::new(&flow, 64);
        // Change of variables along the path: log p_d(z_d) = log p_0(z_0) − Σ_{k ≤ d} log det_k.
        let mut log_prob = inspector
            .depth_density(&flow, 0, &trace.points[0])
            .unwrap()
            .log_prob;
        for depth in 1..=flow.layers.len() {
            let got = inspector
                .depth_density(&flow, depth, &trace.points[depth])
                .unwrap();
            let want = &trace.log_det[depth - 1];
            let err = worst_relative(&got.layer_log_det, want);
            let name = format!(
                "{} layer {depth} ({})",
                family.name(),
                trace.kinds[depth - 1]
            );
            assert!(err < 2e-4, "{name}: layer log det error {err:e}");
            for (lp, ld) in log_prob.iter_mut().zip(want) {
                *lp -= ld;
            }
            let err = worst_relative(&got.log_prob, &log_prob);
            assert!(err < 5e-4, "{name}: log p_d error {err:e}");
        }
    }
}

#[test]
fn nice_additive_couplings_have_log_det_exactly_zero() {
    let flow = default_flow(Family::Nice, 0);
    let eps = points(64, 1.0, 5);
    let trace = FlowEvaluator::new(&flow, 64)
        .unwrap()
        .trace(&flow, &eps)
        .unwrap();
    let mut inspector = FlowInspector::new(&flow, 64);
    for (depth, layer) in (1..).zip(&flow.layers) {
        let got = inspector
            .depth_density(&flow, depth, &trace.points[depth])
            .unwrap();
        match layer.kind() {
            "additive coupling" => assert!(
                got.layer_log_det.iter().all(|&v| v == 0.0),
                "layer {depth}: {:?}",
                &got.layer_log_det[..4]
            ),
            "diagonal scaling" => {
                let spec = flow.store.specs().iter().find(|s| s.name == "nice.scale");
                let total: f32 = flow.store.values()[spec.unwrap().range()].iter().sum();
                assert!(
                    total.abs() > 1e-3,
                    "the perturbed scale is not the identity"
                );
                for &v in &got.layer_log_det {
                    assert!((v - total).abs() < 1e-6, "{v} vs Σ s = {total}");
                }
            }
            other => panic!("NICE has no `{other}` layer"),
        }
    }
}

#[test]
fn cnf_field_matches_the_vector_field_and_the_paths_velocity() {
    let flow = default_flow(Family::Cnf, 0);
    let mut inspector = FlowInspector::new(&flow, 32);
    let mut adaptive = AdaptiveEvaluator::new(&flow, 32).unwrap();
    let x = points(50, 1.5, 2);
    for t in [0.0, 0.37, 1.0] {
        let got = inspector.field(&flow, t, &x).unwrap().unwrap();
        let want = adaptive.velocity(&flow, &x, t).unwrap();
        assert!(worst_relative(&got, &want) < 1e-6, "t = {t}");
    }

    // Along sampled paths: f(z(t_d), t_d) ≈ (z(t_{d+1}) − z(t_{d−1})) / (t_{d+1} − t_{d−1}),
    // with one RK4 step per segment so the difference spans 0.1 (error `O(0.05²)`).
    let mut config = FlowConfig::new(Family::Cnf);
    config.layers = 20;
    let flow = perturbed(&config, 0, 0.2);
    let mut inspector = FlowInspector::new(&flow, 32);
    let eps = points(50, 1.0, 3);
    let trace = FlowEvaluator::new(&flow, 64)
        .unwrap()
        .trace(&flow, &eps)
        .unwrap();
    let time = |d| depth_time(&flow, d).unwrap();
    let mut largest = 0.0f32;
    for d in 1..flow.layers.len() {
        let f = inspector
            .field(&flow, time(d), &trace.points[d])
            .unwrap()
            .unwrap();
        let dt = time(d + 1) - time(d - 1);
        for (i, &v) in f.iter().enumerate() {
            let fd = (trace.points[d + 1][i] - trace.points[d - 1][i]) / dt;
            assert!(
                (v - fd).abs() < 0.02 * (1.0 + v.abs()),
                "d {d}: {v} vs {fd}"
            );
            largest = largest.max(v.abs());
        }
    }
    assert!(
        largest > 0.1,
        "the perturbed field moves points ({largest})"
    );

    // Augmented: the state is padded with zeros, the data coordinates come back.
    let mut config = FlowConfig::new(Family::Cnf);
    config.cnf.augment = 2;
    let flow = perturbed(&config, 1, 0.1);
    let got = FlowInspector::new(&flow, 16)
        .field(&flow, 0.5, &x)
        .unwrap()
        .unwrap();
    let want = AdaptiveEvaluator::new(&flow, 16)
        .unwrap()
        .velocity(&flow, &x, 0.5)
        .unwrap();
    assert_eq!(got.len(), x.len());
    assert!(worst_relative(&got, &want) < 1e-6);

    let discrete = default_flow(Family::RealNvp, 0);
    let field = FlowInspector::new(&discrete, 16).field(&discrete, 0.5, &x);
    assert_eq!(field.unwrap(), None);
}

/// The 2×2 Jacobian `J_ij = ∂f_j/∂z_i` of a CNF's field at one point, by central differences.
fn field_jacobian(inspector: &mut FlowInspector, flow: &Flow, t: f32, p: &[f32]) -> [[f64; 2]; 2] {
    let h = 1e-2;
    let mut jac = [[0.0; 2]; 2];
    for (i, row) in jac.iter_mut().enumerate() {
        let mut shifted = vec![p[0], p[1], p[0], p[1]];
        shifted[i] += h;
        shifted[2 + i] -= h;
        let f = inspector.field(flow, t, &shifted).unwrap().unwrap();
        for (j, v) in row.iter_mut().enumerate() {
            *v = (f[j] as f64 - f[2 + j] as f64) / (2.0 * h as f64);
        }
    }
    jac
}

#[test]
fn hutchinson_spread_matches_the_fields_jacobian() {
    let probes = 600;
    for probe in [ProbeKind::Rademacher, ProbeKind::Gaussian] {
        let mut config = FlowConfig::new(Family::Cnf);
        config.cnf.probe = probe;
        let flow = perturbed(&config, 3, 0.2);
        let x = points(8, 1.0, 4);
        let t = 0.4;
        let spread = hutchinson_spread(&flow, t, &x, probes, 9).unwrap().unwrap();
        assert_eq!(spread.probe, probe);
        let mut inspector = FlowInspector::new(&flow, 4);
        let mut expected_std = 0.0;
        for (r, p) in x.chunks(2).enumerate() {
            let j = field_jacobian(&mut inspector, &flow, t, p);
            let trace = j[0][0] + j[1][1];
            let exact = spread.exact[r] as f64;
            assert!(
                (exact - trace).abs() < 1e-2 * (1.0 + trace.abs()),
                "{exact} vs {trace}"
            );
            // Var uᵀJu: Rademacher (J₁₂ + J₂₁)²; Gaussian 2‖J_sym‖_F².
            let off = j[0][1] + j[1][0];
            let variance = match probe {
                ProbeKind::Rademacher => off * off,
                ProbeKind::Gaussian => 2.0 * (j[0][0].powi(2) + j[1][1].powi(2)) + off * off,
            };
            let std = variance.sqrt();
            expected_std += std / 8.0;
            let mean = spread.estimate_mean[r] as f64;
            let allowed = 5.0 * std / (probes as f64).sqrt() + 1e-4;
            assert!(
                (mean - exact).abs() < allowed,
                "{probe:?}: mean {mean} vs {exact}"
            );
        }
        let got = spread.estimate_std as f64;
        assert!(expected_std > 0.05, "the perturbed field has a spread");
        assert!(
            (got - expected_std).abs() < 0.1 * expected_std,
            "{probe:?}: std {got} vs {expected_std}"
        );
    }
    let discrete = default_flow(Family::Glow, 0);
    assert_eq!(
        hutchinson_spread(&discrete, 0.0, &[0.0, 0.0], 4, 0).unwrap(),
        None
    );
}

#[test]
fn solver_evaluations_count_the_fields_calls() {
    let x = points(20, 1.0, 6);
    let flow = default_flow(Family::Cnf, 0);
    // RK4: four stages on each of the 20 steps.
    assert_eq!(solver_evaluations(&flow, &x).unwrap(), Some(80));

    let mut config = FlowConfig::new(Family::Cnf);
    config.cnf.solver = Solver::DormandPrince;
    let flow = perturbed(&config, 0, 0.1);
    let counted = solver_evaluations(&flow, &x).unwrap().unwrap();
    let tol = flowlab::flows::cnf::dopri::Tolerance::of(&flow.config.cnf);
    let stats = AdaptiveEvaluator::new(&flow, 20)
        .unwrap()
        .density(&flow, &x, tol)
        .unwrap()
        .stats;
    assert_eq!(counted, stats.evaluations as u64);
    assert!(counted >= 8, "at least one Dormand–Prince step ({counted})");

    let discrete = default_flow(Family::Nsf, 0);
    assert_eq!(solver_evaluations(&discrete, &x).unwrap(), None);
}

#[test]
fn a_depth_past_the_last_layer_is_an_error() {
    let flow = default_flow(Family::RealNvp, 0);
    let mut inspector = FlowInspector::new(&flow, 16);
    let k = flow.layers.len();
    let x = points(4, 1.0, 1);
    assert!(inspector.depth_density(&flow, k, &x).is_ok());
    assert!(matches!(
        inspector.depth_density(&flow, k + 1, &x),
        Err(InspectError::DepthOutOfRange {
            depth: 9,
            layers: 8
        })
    ));
    assert!(matches!(
        inspector.depth_density(&flow, 1, &x[..3]),
        Err(InspectError::PointsShape { len: 3, dim: 2 })
    ));
    let other = default_flow(Family::Nice, 0);
    assert!(matches!(
        inspector.depth_density(&other, 1, &x),
        Err(InspectError::OtherFlow)
    ));
}

/// Times one 128² `depth_density` at depth K for the reference RealNVP (median and fastest of 15
/// calls after the first, which compiles):
/// `cargo test --test numerics -- --ignored --nocapture flow_inspect::measure`.
#[test]
#[ignore]
fn measure_depth_density_on_a_128_grid() {
    let flow = perturbed(&FlowConfig::new(Family::RealNvp), 0, 0.2);
    let grid = points(128 * 128, 2.0, 0);
    let time = |run: &mut dyn FnMut()| {
        let mut ms: Vec<f64> = (0..15)
            .map(|_| {
                let t = std::time::Instant::now();
                run();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        format!("median {:.1} ms, fastest {:.1} ms", ms[7], ms[0])
    };
    for chunk in [1024, 4096, 16384] {
        let mut inspector = FlowInspector::new(&flow, chunk);
        let t = std::time::Instant::now();
        inspector.depth_density(&flow, 8, &grid).unwrap();
        let first = t.elapsed().as_secs_f64() * 1e3;
        let rest = time(&mut || drop(inspector.depth_density(&flow, 8, &grid).unwrap()));
        println!("inspector, chunk {chunk}: first call {first:.1} ms, then {rest}");
    }
    let mut evaluator = FlowEvaluator::new(&flow, 4096).unwrap();
    let rest = time(&mut || drop(evaluator.density(&flow, &grid).unwrap()));
    println!("FlowEvaluator::density, chunk 4096: {rest}");
}
