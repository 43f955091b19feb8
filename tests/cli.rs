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
fn train_and_bench_say_the_engine_is_not_built_yet() {
    for args in [
        &["train", "--flow", "realnvp", "--steps", "1"][..],
        &["bench", "--json"][..],
    ] {
        let result = flowlab(args);
        assert_eq!(result.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&result.stderr).contains("not built yet"),
            "{args:?}"
        );
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
