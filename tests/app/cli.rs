//! The `flowlab` binary, run as a user would.
#![allow(clippy::expect_used)] // Why: helpers shared by tests; a failure should panic with its message.

use std::process::Command;

fn flowlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowlab"))
        .args(args)
        .output()
        .expect("flowlab runs")
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowlab-cli-test-{}-{name}", std::process::id()))
}

/// Runs `flowlab train ARGS --out DIR`, asserts it succeeded and returns its metrics.json.
fn train_ok(args: &[&str], dir: &std::path::Path) -> serde_json::Value {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", dir.to_str().expect("a UTF-8 temp path")]);
    let result = flowlab(&all);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json = std::fs::read(dir.join("metrics.json")).expect("metrics.json written");
    serde_json::from_slice(&json).expect("metrics.json is JSON")
}

#[test]
fn render_writes_a_png_of_the_target() {
    let out = temp_path("moons.png");
    let result = flowlab(&[
        "render",
        "--target",
        "moons",
        "--out",
        out.to_str().unwrap(),
        "--size",
        "96",
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("wrote"));
    let image = image::open(&out).expect("a PNG").to_rgba8();
    assert_eq!(image.dimensions(), (96, 96));
    let first = *image.get_pixel(0, 0);
    let different = image.pixels().filter(|&&p| p != first).count();
    assert!(
        different > 96 * 96 / 10,
        "picture is nearly uniform: {different} pixels differ"
    );
    std::fs::remove_file(&out).ok();
}

#[test]
fn render_rejects_an_unknown_target_with_a_message() {
    let result = flowlab(&["render", "--target", "nope", "--out", "unused.png"]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("nope") && stderr.contains("moons"),
        "{stderr}"
    );
}

#[test]
fn render_reports_an_unwritable_path() {
    let out = temp_path("file-as-dir");
    std::fs::write(&out, b"x").unwrap();
    let inside = out.join("x.png");
    let result = flowlab(&["render", "--out", inside.to_str().unwrap(), "--size", "16"]);
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).starts_with("error: cannot"));
    std::fs::remove_file(&out).ok();
}

#[test]
fn train_writes_metrics_samples_and_pictures() {
    let dir = temp_path("train");
    let test_csv = temp_path("test.csv");
    std::fs::write(&test_csv, "x,y\n0.5,0.2\n-1.0,0.7\n1.5,-0.3\n").unwrap();
    let result = flowlab(&[
        "train",
        "--target",
        "8gaussians",
        "--flow",
        "realnvp",
        "--layers",
        "4",
        "--hidden",
        "16",
        "--steps",
        "60",
        "--batch",
        "128",
        "--test",
        test_csv.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    for key in [
        "train_nll",
        "test_nll",
        "kl",
        "steps",
        "wall_s",
        "train_ms_per_step",
        "n_params",
    ] {
        // 8 Gaussians has a closed-form density, so `kl` is a number too.
        assert!(
            metrics[key].is_number(),
            "metrics.json lacks {key} as a number: {metrics}"
        );
    }
    assert_eq!(metrics["steps"], 60);
    assert!(metrics["test_nll"].as_f64().unwrap().is_finite());
    assert!(metrics["test_set"].as_str().unwrap().ends_with("test.csv"));
    let samples = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert_eq!(samples.lines().count(), 5001, "header + 5000 samples");
    // The saved model reloads into a fresh flow and reproduces the trained densities.
    let saved: flowlab::flows::SavedModel =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    let mut fresh = flowlab::flows::build_flow(&saved.config, saved.dim, 99).unwrap();
    fresh.store.load_from(&saved.params).unwrap();
    let mut eval = flowlab::flows::FlowEvaluator::new(&fresh, 8).unwrap();
    let lines: Vec<Vec<f32>> = samples
        .lines()
        .skip(1)
        .take(8)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let points: Vec<f32> = lines.iter().flat_map(|v| [v[0], v[1]]).collect();
    let log_q = eval.density(&fresh, &points).unwrap().log_prob;
    for (l, line) in log_q.iter().zip(&lines) {
        assert!(
            (l - line[2]).abs() < 1e-3,
            "reloaded log q {l} vs saved {}",
            line[2]
        );
    }
    for png in ["density.png", "trace.png"] {
        let bytes = std::fs::read(dir.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_file(&test_csv).ok();
}

#[test]
fn a_cnf_trains_with_hutchinson_and_is_scored_by_dormand_prince() {
    let dir = temp_path("cnf");
    let metrics = train_ok(
        &[
            "--target",
            "8gaussians",
            "--flow",
            "cnf",
            "--objective",
            "mle",
            "--hidden",
            "16",
            "--steps",
            "20",
            "--batch",
            "64",
            "--cnf-steps",
            "4",
            "--trace",
            "hutchinson",
            "--probe",
            "gaussian",
            "--probes",
            "2",
            "--kinetic",
            "0.01",
            "--solver",
            "dopri",
            "--rtol",
            "1e-4",
            "--atol",
            "1e-4",
        ],
        &dir,
    );
    assert!(
        metrics["test_nll"].as_f64().unwrap().is_finite(),
        "{metrics}"
    );
    let solver = &metrics["test_solver"];
    assert!(solver["evaluations"].as_u64().unwrap() > 6, "{metrics}");
    assert_eq!(solver["rtol"].as_f64().unwrap() as f32, 1e-4);
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    let cnf = &model["config"]["cnf"];
    assert_eq!(cnf["trace"], "Hutchinson");
    assert_eq!(cnf["probe"], "Gaussian");
    assert_eq!(cnf["probes"], 2);
    assert_eq!(cnf["steps"], 4);
    std::fs::remove_dir_all(&dir).ok();

    // The same options on a discrete flow would do nothing: refused, with the reason.
    let result = flowlab(&[
        "train",
        "--flow",
        "realnvp",
        "--trace",
        "hutchinson",
        "--steps",
        "1",
    ]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("--flow cnf only"), "{stderr}");
}

#[test]
fn a_saved_model_resumes_training_and_bad_ones_are_refused() {
    let common = ["--target", "twomoons", "--steps", "150", "--batch", "256"];
    let first = temp_path("resume-first");
    let mut args = common.to_vec();
    args.extend(["--flow", "glow", "--layers", "2", "--hidden", "16"]);
    let nll_first = train_ok(&args, &first)["test_nll"].as_f64().unwrap();

    // Resumed: same architecture (Glow, whose actnorm must not be re-fitted), training goes on.
    let model = first.join("model.json");
    let second = temp_path("resume-second");
    let mut args = common.to_vec();
    args.extend(["--init", model.to_str().unwrap()]);
    let metrics = train_ok(&args, &second);
    assert_eq!(metrics["flow"], "glow");
    let nll_second = metrics["test_nll"].as_f64().unwrap();
    assert!(
        nll_second < nll_first + 0.05,
        "resumed run got worse: {nll_first} -> {nll_second}"
    );

    // An architecture flag beside --init, a file that is not a model, a missing file.
    let refused = |init: &str, extra: &[&str]| {
        let mut all = vec!["train", "--steps", "1", "--init", init];
        all.extend_from_slice(extra);
        let result = flowlab(&all);
        assert!(!result.status.success());
        String::from_utf8_lossy(&result.stderr).into_owned()
    };
    let model = model.to_str().unwrap();
    assert!(refused(model, &["--flow", "maf"]).contains("brings its own architecture"));
    let metrics_file = first.join("metrics.json");
    let stderr = refused(metrics_file.to_str().unwrap(), &[]);
    assert!(stderr.contains("is not a model.json"), "{stderr}");
    let stderr = refused("/nonexistent/model.json", &[]);
    assert!(stderr.contains("Could not read"), "{stderr}");
    std::fs::remove_dir_all(&first).ok();
    std::fs::remove_dir_all(&second).ok();
}

#[test]
fn planar_metrics_report_the_root_solver_residual() {
    let dir = temp_path("planar");
    let metrics = train_ok(
        &[
            "--target",
            "u1",
            "--flow",
            "planar",
            "--objective",
            "reverse-kl",
            "--steps",
            "30",
            "--batch",
            "64",
        ],
        &dir,
    );
    let residual = metrics["test_solver"]["max_inverse_residual"]
        .as_f64()
        .unwrap_or_else(|| panic!("no residual: {metrics}"));
    // Bisection + Newton in f32 on points of scale ~3: far below the data's scale.
    assert!((0.0..1e-3).contains(&residual), "{residual}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn metrics_report_inverse_health_for_every_family() {
    for family in flowlab::flows::Family::NAMES {
        let dir = temp_path(&format!("inverse-{family}"));
        let metrics = train_ok(
            &[
                "--flow", family, "--target", "twomoons", "--steps", "20", "--batch", "64",
                "--layers", "2", "--hidden", "16",
            ],
            &dir,
        );
        let error = metrics["max_inverse_error"]
            .as_f64()
            .unwrap_or_else(|| panic!("{family}: no max_inverse_error: {metrics}"));
        // A freshly trained small flow of any family returns every test point to itself.
        assert!((0.0..1e-2).contains(&error), "{family}: {error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn absurd_settings_get_one_clear_message() {
    for (args, needle) in [
        (
            &["train", "--lr", "1e9", "--steps", "1"][..],
            "learning rate",
        ),
        (
            &["train", "--layers", "100000", "--steps", "1"][..],
            "layers",
        ),
        (&["train", "--batch", "0", "--steps", "1"][..], "batch"),
        (
            &["train", "--objective", "reverse-kl", "--steps", "1"][..],
            "smooth log-density",
        ),
        (
            &["train", "--target", "/nonexistent/x.png", "--steps", "1"][..],
            "x.png",
        ),
    ] {
        let result = flowlab(args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn bench_prints_one_json_line() {
    let result = flowlab(&[
        "bench", "--flow", "nice", "--layers", "2", "--hidden", "8", "--batch", "64", "--json",
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in ["train_ms_per_step", "sample_ms", "density_ms"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
}

#[test]
fn help_lists_the_commands() {
    let result = flowlab(&["--help"]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    for command in ["render", "train", "bench", "--scene"] {
        assert!(
            stdout.contains(command),
            "{command} missing from:\n{stdout}"
        );
    }
}
