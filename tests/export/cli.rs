//! The commands' answers to bad input: one clear message, exit code 1, never a panic.

use super::{arg, flowlab, temp_dir};
use flowlab::flows::{Family, FlowConfig, SavedModel, build_flow};

fn write_model(dir: &std::path::Path, family: Family) -> std::path::PathBuf {
    let flow = build_flow(&FlowConfig::new(family), 2, 3).unwrap();
    let path = dir.join("model.json");
    std::fs::write(
        &path,
        serde_json::to_string(&SavedModel::of(&flow)).unwrap(),
    )
    .unwrap();
    path
}

/// Asserts the command failed with exit code 1 and a stderr line starting `error:` that contains
/// every one of `needles`; returns stderr.
fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let out = flowlab(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
    stderr
}

#[test]
fn export_writes_a_script_to_a_file_or_stdout() {
    let dir = temp_dir("export-ok");
    let model = write_model(&dir, Family::Nsf);
    let out = dir.join("sub/flow.py");
    let result = flowlab(&["export", "--model", arg(&model), "--out", arg(&out)]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stdout).starts_with("wrote "));
    let script = std::fs::read_to_string(&out).unwrap();
    assert!(script.contains("BUILD = build_nsf"));
    let piped = flowlab(&["export", "--model", arg(&model), "--format", "pytorch"]);
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stdout), script);
    let dash = flowlab(&["export", "--model", arg(&model), "--out", "-"]);
    assert_eq!(String::from_utf8_lossy(&dash.stdout), script);
}

#[test]
fn export_and_eval_refuse_bad_models_with_one_message() {
    let dir = temp_dir("bad-models");
    let missing = dir.join("missing.json");
    let points = dir.join("points.csv");
    std::fs::write(&points, "x,y\n0,0\n1,1\n").unwrap();
    for command in ["export", "eval"] {
        let with = |model: &std::path::Path| -> Vec<String> {
            let mut a = vec![command.to_string(), "--model".into(), arg(model).into()];
            if command == "eval" {
                a.extend(["--points".into(), arg(&points).into()]);
            }
            a
        };
        let run = |model: &std::path::Path, needles: &[&str]| {
            let a = with(model);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            fails_with(&a, needles);
        };
        run(&missing, &["missing.json"]);
        let garbage = dir.join("garbage.json");
        std::fs::write(&garbage, "{\"config\": ").unwrap();
        run(
            &garbage,
            &[
                "garbage.json",
                "is not a model.json written by flowlab train",
            ],
        );
        let model = write_model(&dir, Family::Maf);
        let mut saved: SavedModel =
            serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
        saved.config.layers += 1;
        let misfit = dir.join("misfit.json");
        std::fs::write(&misfit, serde_json::to_string(&saved).unwrap()).unwrap();
        run(&misfit, &["misfit.json", "do not fit", "tensors saved"]);
    }
}

#[test]
fn eval_prints_log_p_per_point_and_a_summary() {
    let dir = temp_dir("eval-ok");
    let model = write_model(&dir, Family::RealNvp);
    let points = dir.join("points.csv");
    std::fs::write(&points, "# two points\nx,y\n0,0\n0.5,-1\n").unwrap();
    let out = flowlab(&["eval", "--model", arg(&model), "--points", arg(&points)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "x,y,log_p");
    assert_eq!(lines.len(), 3, "{stdout}");
    // A fresh flow is its standard-normal base: log p(0) = −log 2π.
    let first: f64 = lines[1].split(',').nth(2).unwrap().parse().unwrap();
    assert!(
        (first + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-5,
        "{first}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("2 points, mean log p(x) = "), "{stderr}");

    let file = dir.join("out/logp.csv");
    let single = dir.join("one.csv");
    std::fs::write(&single, "1,2").unwrap();
    let args = [
        "eval",
        "--model",
        arg(&model),
        "--points",
        arg(&single),
        "--out",
        arg(&file),
    ];
    let out = flowlab(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.starts_with("x,y,log_p\n1,2,"), "{written}");
}

#[test]
fn eval_refuses_bad_points_with_the_reason() {
    let dir = temp_dir("bad-points");
    let model = write_model(&dir, Family::RealNvp);
    let cases: [(&str, &[u8], &[&str]); 6] = [
        ("empty.csv", b"", &["empty.csv", "holds no points"]),
        ("header.csv", b"x,y\n", &["header.csv", "holds no points"]),
        (
            "malformed.csv",
            b"x,y\n0,0\n1,2,3\n",
            &["malformed.csv", "CSV line 3", "2 columns"],
        ),
        (
            "text.csv",
            b"0,0\n1,abc\n",
            &["CSV line 2", "not a pair of numbers"],
        ),
        ("nan.csv", b"0,0\nnan,1\n", &["CSV line 2", "finite"]),
        ("binary.csv", b"\xff\xfe\x00", &["binary.csv", "not UTF-8"]),
    ];
    for (name, bytes, needles) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        fails_with(
            &["eval", "--model", arg(&model), "--points", arg(&path)],
            needles,
        );
    }
    let missing = dir.join("nowhere.csv");
    fails_with(
        &["eval", "--model", arg(&model), "--points", arg(&missing)],
        &["nowhere.csv"],
    );
    // Larger than the 20 MB limit: refused before it is read.
    let huge = dir.join("huge.csv");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(21 * 1024 * 1024).unwrap();
    fails_with(
        &["eval", "--model", arg(&model), "--points", arg(&huge)],
        &["too large"],
    );
    std::fs::remove_dir_all(&dir).ok();
}
