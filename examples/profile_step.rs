//! Prints where a reference RealNVP training step spends its time, per op kind.
use flowlab::engine::{CpuProgram, GradientProgram};
use flowlab::flows::{Family, FlowConfig, build_flow};
use flowlab::train::objective;

fn main() {
    let flow = build_flow(&FlowConfig::new(Family::RealNvp), 2, 0).expect("builds");
    let o = objective::mle(&flow, 512);
    let mut g = o.graph.clone();
    let params: Vec<_> = g.param_nodes().iter().map(|&(_, v)| v).collect();
    let grads = g.grad(o.loss, &params);
    let mut outs = vec![o.loss];
    outs.extend(grads);
    let mut p = CpuProgram::<f32>::compile(&g, &flow.store, &outs).expect("compiles");
    let _ = GradientProgram::<f32>::new(o.graph, o.loss, &flow.store, &[]);
    let mut acc: Vec<(String, f64)> = Vec::new();
    for _ in 0..200 {
        for (k, s) in p.run_profiled(flow.store.values()) {
            match acc.iter_mut().find(|(n, _)| *n == k) {
                Some(e) => e.1 += s,
                None => acc.push((k, s)),
            }
        }
    }
    acc.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = acc.iter().map(|a| a.1).sum();
    println!(
        "steps {} total {:.3} ms/run",
        p.step_count(),
        total / 200.0 * 1e3
    );
    for (k, s) in acc.iter().take(25) {
        println!(
            "{:>8.1} us  {:5.1}%  {k}",
            s / 200.0 * 1e6,
            100.0 * s / total
        );
    }
}
