//! How soon a fit looks right: steps (and ms of training) until the held-out NLL first reaches
//! a goal. One test pins the default RealNVP's pace on twomoons over three seeds; the ignored
//! one measures optimiser settings side by side (`FIT_FAMILY`, `FIT_TARGET`, `FIT_GOAL`,
//! `FIT_ACTIVATION`, `FIT_ONLY`: settings whose name contains it):
//! `cargo test --release --test numerics fit_speed -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: a measurement; a failure should panic.

use std::sync::Arc;

use flowlab::engine::optim::{AdamConfig, LrSchedule};
use flowlab::flows::{Family, FlowConfig, build_flow};
use flowlab::train::{TrainConfig, Trainer};

struct Setting {
    name: &'static str,
    batch: usize,
    adam: AdamConfig,
}

/// First step (checked every `every`) at which the held-out NLL ≤ `goal`, and the ms spent
/// in training steps until then; `None` within `max_steps`.
fn steps_to(
    family: Family,
    target: &str,
    setting: &Setting,
    seed: u64,
    goal: f32,
    max_steps: u64,
) -> (Option<u64>, f64, f32) {
    let mut config = FlowConfig::new(family);
    if let Some(activation) = std::env::var("FIT_ACTIVATION")
        .ok()
        .and_then(|a| flowlab::flows::mlp::Activation::from_name(&a))
    {
        config.activation = activation;
    }
    let flow = build_flow(&config, 2, seed).unwrap();
    let target = flowlab::targets::by_name(target).unwrap();
    let train = TrainConfig {
        batch: setting.batch,
        adam: setting.adam,
        seed,
        held_out: 4096,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(flow, Arc::from(target), train).unwrap();
    let every = 25;
    let mut ms = 0.0;
    let mut last = f32::INFINITY;
    while trainer.steps() < max_steps {
        let started = std::time::Instant::now();
        for _ in 0..every {
            trainer.step();
        }
        ms += started.elapsed().as_secs_f64() * 1e3;
        last = trainer.held_out_nll().unwrap();
        if last <= goal {
            return (Some(trainer.steps()), ms, last);
        }
    }
    (None, ms, last)
}

/// The app's default model (RealNVP, batch 256, the registry's optimiser) reaches held-out NLL
/// 1.80 on twomoons (KL ≈ 0.15 nats) within 900 steps for every one of three seeds. Measured
/// 450–675 steps over seeds 0–3 (ReLU networks; 550–600 with tanh); the constant 1e-3 it
/// replaced took 500–775 there and up to 1,550 with tanh.
#[test]
fn the_default_realnvp_fits_twomoons_within_900_steps() {
    let setting = Setting {
        name: "default",
        batch: 256,
        adam: Family::RealNvp.info().adam(None),
    };
    for seed in 1..=3 {
        let (steps, _, nll) = steps_to(Family::RealNvp, "twomoons", &setting, seed, 1.80, 900);
        assert!(steps.is_some(), "seed {seed}: NLL {nll:.3} after 900 steps");
    }
}

/// The default Glow (eight steps, the size of RealNVP) reaches held-out NLL 1.82 on twomoons
/// within 2,000 steps of 512 for every one of three seeds. Measured 1.765–1.790 by
/// `flowlab train`; four steps (the default before) ended at 1.87–1.93 and fail this.
#[test]
fn the_default_glow_fits_twomoons_within_2000_steps() {
    let setting = Setting {
        name: "default",
        batch: 512,
        adam: Family::Glow.info().adam(None),
    };
    for seed in 1..=3 {
        let (steps, _, nll) = steps_to(Family::Glow, "twomoons", &setting, seed, 1.82, 2000);
        assert!(
            steps.is_some(),
            "seed {seed}: NLL {nll:.3} after 2000 steps"
        );
    }
}

#[test]
#[ignore]
fn fit_speed() {
    let adam = AdamConfig::default();
    let family = std::env::var("FIT_FAMILY")
        .ok()
        .and_then(|f| Family::from_name(&f).ok())
        .unwrap_or(Family::RealNvp);
    let target = std::env::var("FIT_TARGET").unwrap_or_else(|_| "twomoons".into());
    let goal: f32 = std::env::var("FIT_GOAL")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(1.80);
    let cosine = |lr: f32, warmup: u64, total: u64, end: f32| AdamConfig {
        lr,
        warmup_steps: warmup,
        schedule: LrSchedule::Cosine {
            total_steps: total,
            final_fraction: end,
        },
        ..adam
    };
    let settings = [
        Setting {
            name: "the registry's default",
            batch: 256,
            adam: family.info().adam(None),
        },
        Setting {
            name: "lr 1e-3, constant (before 4 Dec)",
            batch: 256,
            adam,
        },
        Setting {
            name: "3e-3 cos→0.1 /800, wu 50, b256",
            batch: 256,
            adam: cosine(3e-3, 50, 800, 0.1),
        },
        Setting {
            name: "5e-3 cos→0.1 /800, wu 50, b512",
            batch: 512,
            adam: cosine(5e-3, 50, 800, 0.1),
        },
        Setting {
            name: "1e-2 cos→0.05 /800, wu 50, b256",
            batch: 256,
            adam: cosine(1e-2, 50, 800, 0.05),
        },
        Setting {
            name: "5e-3 cos→0.05 /500, wu 30, b256",
            batch: 256,
            adam: cosine(5e-3, 30, 500, 0.05),
        },
        Setting {
            name: "7e-3 cos→0.05 /600, wu 30, b256",
            batch: 256,
            adam: cosine(7e-3, 30, 600, 0.05),
        },
        Setting {
            name: "5e-3 cos→0.05 /500, wu 30, b512",
            batch: 512,
            adam: cosine(5e-3, 30, 500, 0.05),
        },
    ];
    println!("{family:?} on {target}, goal NLL ≤ {goal}");
    let only = std::env::var("FIT_ONLY").unwrap_or_default();
    for setting in settings.iter().filter(|s| s.name.contains(&only)) {
        let runs: Vec<_> = (0..=3)
            .map(|seed| steps_to(family, &target, setting, seed, goal, 2000))
            .collect();
        let cells: Vec<String> = runs
            .iter()
            .map(|(steps, ms, nll)| match steps {
                Some(s) => format!("{s} steps / {ms:.0} ms"),
                None => format!("not in 2000 (NLL {nll:.3})"),
            })
            .collect();
        println!("  {:<48} {}", setting.name, cells.join(" | "));
    }
}

/// The app's own path (a workspace, its trainer, its held-out scoring) on the page's scene:
/// the step at which the reported held-out NLL first reaches 1.80.
#[test]
#[ignore]
fn fit_speed_in_the_workspace() {
    use flowlab::lab::{Spec, Workspace};
    let mut workspace = Workspace::inline(Spec::from_fragment_lenient(
        "target=twomoons&views=layers,density,loss&autoplay=1",
    ));
    let started = std::time::Instant::now();
    let mut last = None;
    while started.elapsed().as_secs() < 120 {
        workspace.tick(web_time::Duration::from_millis(20));
        let Some(report) = workspace.runs()[0].latest() else {
            continue;
        };
        if report.test_nll != last {
            last = report.test_nll;
            println!("step {:5}: held-out NLL {:?}", report.step, report.test_nll);
            if report.test_nll.is_some_and(|nll| nll <= 1.80) {
                return;
            }
        }
    }
    panic!("no NLL ≤ 1.80 in 120 s");
}
