//! Costs the trainer and the heat map pay, and a check that `sample_into` allocates nothing.

use super::*;
use crate::common::counting_alloc::allocations;
use web_time::Instant;

fn all_targets() -> Vec<Box<dyn Target>> {
    let mut all: Vec<Box<dyn Target>> = targets::NAMES
        .iter()
        .map(|n| targets::by_name(n).unwrap())
        .collect();
    let text: String = (0..500)
        .map(|k| format!("{},{}\n", k % 17, k % 13))
        .collect();
    all.push(targets::from_csv_text(&text).unwrap());
    all.push(Box::new(
        targets::csv::from_csv_text(&text, targets::csv::Jitter::Kde).unwrap(),
    ));
    all
}

#[test]
fn sampling_and_scoring_allocate_nothing() {
    let mut out = vec![[0.0f32; 2]; 512];
    for t in all_targets() {
        let mut rng = Rng::seed_from_u64(1);
        // The first calls may build a lazy grid.
        t.sample_into(&mut rng, &mut out);
        let _ = t.log_density([0.1, 0.2]);
        let before = allocations();
        for _ in 0..10 {
            t.sample_into(&mut rng, &mut out);
            let _ = t.log_density([0.1, 0.2]);
        }
        assert_eq!(allocations() - before, 0, "{} allocates", t.name());
    }
}

/// Prints ns per sampled point (batch 512), ns per `log_density` on a 128² heat map, and the
/// one-off cost of the lazily built grids. Run: `cargo test --test numerics -- --ignored --nocapture targets::perf`.
#[test]
#[ignore = "timings, not a check"]
fn report_timings() {
    let mut out = vec![[0.0f32; 2]; 512];
    for t in all_targets() {
        let mut rng = Rng::seed_from_u64(1);
        let start = Instant::now();
        let _ = t.log_normalizer();
        t.sample_into(&mut rng, &mut out);
        let setup_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let batches = 400;
        for _ in 0..batches {
            t.sample_into(&mut rng, &mut out);
        }
        let sample_ns = start.elapsed().as_secs_f64() * 1e9 / (batches * 512) as f64;
        let v = t.view();
        let start = Instant::now();
        let mut acc = 0.0;
        for j in 0..128 {
            for i in 0..128 {
                let x = v.min[0] as f64 + (i as f64 + 0.5) * (v.max[0] - v.min[0]) as f64 / 128.0;
                let y = v.min[1] as f64 + (j as f64 + 0.5) * (v.max[1] - v.min[1]) as f64 / 128.0;
                acc += t.log_density([x, y]).max(-1e3);
            }
        }
        let density_ns = start.elapsed().as_secs_f64() * 1e9 / (128.0 * 128.0);
        println!(
            "{:>12}: first use {setup_ms:7.1} ms, sample_into {sample_ns:6.1} ns/point, log_density {density_ns:7.1} ns ({:?}, {acc:.0})",
            t.name(),
            t.density_kind()
        );
    }
}
