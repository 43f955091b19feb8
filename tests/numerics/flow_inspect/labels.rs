//! Labels against what each layer computes, and a CNF's depth times.

use super::{default_flow, number_after, perturbed, points};
use flowlab::engine::{CpuProgram, Graph};
use flowlab::flows::{Family, Flow, FlowConfig, build_flow, depth_time, layer_labels};

#[test]
fn depth_time_runs_from_zero_to_the_end_time() {
    let mut config = FlowConfig::new(Family::Cnf);
    config.cnf.end_time = 2.0;
    config.layers = 3; // 20 steps as 7 + 7 + 6
    let flow = build_flow(&config, 2, 0).unwrap();
    let times: Vec<f32> = (0..=3).map(|d| depth_time(&flow, d).unwrap()).collect();
    let want = [0.0, 0.7, 1.4, 2.0];
    for (t, w) in times.iter().zip(want) {
        assert!((t - w).abs() < 1e-6, "{times:?}");
    }
    assert_eq!(depth_time(&flow, 4), None);
    let labels = layer_labels(&flow);
    assert_eq!(labels[1], "ODE segment 2: t from 0.7 to 1.4, 7 RK4 steps");
    assert_eq!(depth_time(&default_flow(Family::Planar, 0), 0), None);
}

/// Runs layer `k`'s sample direction on `x` (`n×2`).
fn layer_forward(flow: &Flow, k: usize, x: &[f32]) -> Vec<f32> {
    let mut g = Graph::new();
    let input = g.input(x.len() / 2, 2);
    let out = flow.layers[k].forward(&mut g, input);
    let mut p = CpuProgram::<f32>::compile(&g, &flow.store, &[out.y]).unwrap();
    p.set_input(input, x).unwrap();
    p.run(flow.store.values());
    p.value(out.y).unwrap().to_vec()
}

/// The 0-based column of `x₁`/`x₂` right after `key` in a label.
fn column_after(label: &str, key: &str) -> usize {
    let at = label
        .find(key)
        .unwrap_or_else(|| panic!("`{key}` in `{label}`"))
        + key.len();
    match label[at..].trim_start().chars().nth(1) {
        Some('₁') => 0,
        Some('₂') => 1,
        other => panic!("no coordinate after `{key}` in `{label}` ({other:?})"),
    }
}

#[test]
fn labels_are_one_per_layer_and_say_what_each_layer_does() {
    for family in Family::ALL {
        let flow = default_flow(family, 1);
        let labels = layer_labels(&flow);
        assert_eq!(labels.len(), flow.layers.len(), "{}", family.name());
        let x = points(32, 1.5, 8);
        for (k, (label, layer)) in labels.iter().zip(&flow.layers).enumerate() {
            assert!(label.starts_with(layer.kind()), "{label}");
            let y = layer_forward(&flow, k, &x);
            // Couplings: the "given" coordinate passes through, the other moves.
            if label.contains(" given ") {
                let (moved, given) = (column_after(label, ":"), column_after(label, "given"));
                assert_ne!(moved, given, "{label}");
                let moves = (0..32).any(|r| y[2 * r + moved] != x[2 * r + moved]);
                let same = if label.contains("of its own") {
                    // A spline's own map bends the "given" coordinate too, but never with the
                    // moved one.
                    let mut nudged = x.clone();
                    (0..32).for_each(|r| nudged[2 * r + moved] += 0.5);
                    let z = layer_forward(&flow, k, &nudged);
                    (0..32).all(|r| (z[2 * r + given] - y[2 * r + given]).abs() < 1e-6)
                } else {
                    (0..32).all(|r| y[2 * r + given] == x[2 * r + given])
                };
                assert!(same && moves, "{}: {label}", family.name());
            }
            // Autoregressive: the first coordinate in the order ignores the second.
            if label.contains("order") {
                let (first, second) = (column_after(label, "order"), column_after(label, "→"));
                let mut nudged = x.clone();
                (0..32).for_each(|r| nudged[2 * r + second] += 0.5);
                let z = layer_forward(&flow, k, &nudged);
                let same = (0..32).all(|r| (z[2 * r + first] - y[2 * r + first]).abs() < 1e-6);
                assert!(same, "{}: {label}", family.name());
            }
        }
    }
}

#[test]
fn planar_and_radial_labels_show_their_invertibility_bounds() {
    let mut flow = default_flow(Family::Planar, 0);
    let range = |flow: &Flow, name: &str| {
        let spec = flow.store.specs().iter().find(|s| s.name == name);
        spec.unwrap().range()
    };
    // Push layer 0 next to the fold: wᵀu = −12 makes ûᵀw = −1 + softplus(−12) + 1e-6.
    let (ur, wr) = (
        range(&flow, "layer0.planar.u"),
        range(&flow, "layer0.planar.w"),
    );
    let wv = flow.store.values()[wr].to_vec();
    let norm2: f32 = wv.iter().map(|v| v * v).sum();
    for (uj, wj) in flow.store.values_mut()[ur].iter_mut().zip(&wv) {
        *uj = -12.0 * wj / norm2;
    }
    let labels = layer_labels(&flow);
    for (k, label) in labels.iter().enumerate() {
        let c = number_after(label, "ûᵀw =");
        assert!(c > -1.0, "{label}");
        // Independently of the graph: ûᵀw = m(wᵀu) = −1 + 1e-6 + log(1 + e^{wᵀu}).
        let value = |name: String| -> Vec<f64> {
            let values = &flow.store.values()[range(&flow, &name)];
            values.iter().map(|&v| v as f64).collect()
        };
        let (u, w) = (
            value(format!("layer{k}.planar.u")),
            value(format!("layer{k}.planar.w")),
        );
        let a: f64 = u.iter().zip(&w).map(|(a, b)| a * b).sum();
        let want = -1.0 + 1e-6 + (1.0 + a.exp()).ln();
        // The label's resolution: one unit in its last decimal.
        let shown = label
            .split('=')
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .trim();
        let decimals = shown.split('.').nth(1).map_or(0, |d| d.chars().count());
        let resolution = 10f64.powi(-(decimals as i32));
        assert!((c - want).abs() < resolution, "{label}: want {want}");
    }
    assert!(labels[0].contains("> −1.0000"), "{}", labels[0]);

    let flow = default_flow(Family::Radial, 0);
    for label in layer_labels(&flow) {
        let (beta, bound) = (number_after(&label, "β ="), number_after(&label, "−α ="));
        assert!(beta > bound, "{label}");
    }
}

#[test]
fn glow_labels_give_the_determinant_of_the_layers_matrix() {
    // Four steps, as this test counts them (the default is eight).
    let config = FlowConfig {
        layers: 4,
        ..FlowConfig::new(Family::Glow)
    };
    let flow = perturbed(&config, 0, 0.3);
    let labels = layer_labels(&flow);
    let mut checked = 0;
    for (k, label) in labels.iter().enumerate() {
        if !label.starts_with("invertible linear") {
            continue;
        }
        // The density direction maps the rows of I to the rows of W.
        let mut g = Graph::new();
        let input = g.input(2, 2);
        let out = flow.layers[k].inverse(&mut g, input);
        let mut p = CpuProgram::<f64>::compile(&g, &flow.store, &[out.y]).unwrap();
        p.set_input(input, &[1.0, 0.0, 0.0, 1.0]).unwrap();
        let params: Vec<f64> = flow.store.values().iter().map(|&v| v as f64).collect();
        p.run(&params);
        let w = p.value(out.y).unwrap();
        let det = w[0] * w[3] - w[1] * w[2];
        let shown = number_after(label, "det W =");
        assert!((det - shown).abs() < 0.006, "{label}: det W = {det}");
        assert!(
            (det - 1.0).abs() > 0.01,
            "the perturbed W is not a rotation"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
    assert!(
        labels[0].starts_with("affine coupling 1: x₂"),
        "{}",
        labels[0]
    );
    assert!(labels[2].starts_with("actnorm 1: scale ("), "{}", labels[2]);
}
