//! UI tests of the whole app with egui_kittest, rendered by wgpu on the software Vulkan adapter
//! (lavapipe). Widgets are found by their visible labels, as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: test helpers; a failure should panic with its message.

use egui_kittest::{Harness, kittest::Queryable as _};
use flowlab::app::FlowlabApp;

const SIZE: egui::Vec2 = egui::vec2(1000.0, 640.0);

fn harness(fragment: &'static str) -> Harness<'static, FlowlabApp> {
    Harness::builder()
        .with_size(SIZE)
        .wgpu()
        .build_eframe(move |cc| FlowlabApp::with_fragment(cc, fragment))
}

#[test]
fn opens_on_the_default_scene() {
    let mut harness = Harness::builder()
        .with_size(SIZE)
        .wgpu()
        .build_eframe(|cc| FlowlabApp::new(cc));
    harness.run_steps(4);
    let app = harness.state();
    assert_eq!(app.scene().target, "moons");
    assert_eq!(app.scene().flow, "realnvp");
    assert!(!app.target_samples().is_empty(), "no samples drawn");
    assert!(app.heat_map().is_some(), "no heat map");
    harness.get_by_label("Plot of moons");
    harness.get_by_label_contains("Renderer: native Vulkan");
    harness.get_by_label_contains("Compute: CPU");
    let status = harness.state().status();
    assert_eq!(status.renderer, "vulkan");
    assert_eq!(status.error, None);
    assert!(status.frames > 0);
    // The default scene trains from the first frame: steps are taken and the loss is real.
    assert!(status.step > 0, "no training step after 4 frames");
    let loss = status.loss.expect("a loss after training steps");
    assert!(loss.is_finite() && loss < 10.0, "loss {loss}");
    harness.get_by_label_contains(&format!("Step {}", status.step));
    assert_eq!(
        harness.state().model_sample_count(),
        1500,
        "flow samples not drawn"
    );
}

#[test]
fn play_pause_and_step_toggle_the_state() {
    let mut harness = harness("autoplay=1");
    harness.run_steps(4);
    assert!(harness.state().is_playing());
    harness.get_by_label("Pause").click();
    harness.run_steps(4);
    assert!(!harness.state().is_playing());
    assert!(harness.query_by_label("Pause").is_none());
    harness.get_by_label("Play").click();
    harness.run_steps(4);
    assert!(harness.state().is_playing());
    // Step pauses (one step at a time).
    harness.get_by_label("Step").click();
    harness.run_steps(4);
    assert!(!harness.state().is_playing());
    harness.get_by_label("Play");
}

#[test]
fn flow_picker_changes_the_scene() {
    let mut harness = harness("autoplay=0");
    harness.run_steps(4);
    let flow_picker = harness.get_by_label("Flow");
    assert_eq!(flow_picker.value().as_deref(), Some("realnvp"));
    flow_picker.click();
    harness.run_steps(4);
    harness.get_by_label("maf").click();
    harness.run_steps(4);
    assert_eq!(harness.state().scene().flow, "maf");
    assert_eq!(harness.state().status().flow, "maf");
    assert_eq!(harness.get_by_label("Flow").value().as_deref(), Some("maf"));
}

#[test]
fn seed_is_applied_from_the_text_field() {
    let mut harness = harness("autoplay=0&seed=1");
    harness.run_steps(4);
    let before = harness.state().target_samples().to_vec();
    harness.get_by_label("Seed").set_text_value_accesskit("42");
    harness.run_steps(4);
    harness.get_by_label("Apply seed").click();
    harness.run_steps(4);
    assert_eq!(harness.state().scene().seed, 42);
    assert_ne!(
        harness.state().target_samples(),
        &before[..],
        "samples ignore the seed"
    );
}

#[test]
fn a_malformed_fragment_is_shown_and_defaults_are_kept() {
    let mut harness = harness("#target=nope&bogus=1&seed=3");
    harness.run_steps(4);
    let app = harness.state();
    assert_eq!(app.scene().target, "moons");
    assert_eq!(app.scene().seed, 3);
    let error = app.status().error.unwrap_or_default();
    assert!(
        error.contains("'nope'") && error.contains("unknown key 'bogus'"),
        "{error}"
    );
    harness.get_by_label_contains("Error: URL fragment: bad value 'nope'");
    harness.get_by_label("Plot of moons");
}

#[test]
fn snapshot_of_the_default_scene() {
    let mut harness = harness("target=moons&flow=realnvp&autoplay=0&seed=0");
    harness.run_steps(4);
    harness.snapshot("app");
}
