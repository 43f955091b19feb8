//! The side panel: target and flow pickers, play / pause / step, seed.
//!
//! It changes nothing itself: it reads a [`ControlsView`] and returns [`ControlAction`]s that the
//! app applies, so every change goes through one place (and one place updates the URL).

use super::scene::Scene;
use crate::{flows::Family, targets as catalog};

/// What the controls show.
pub struct ControlsView<'a> {
    /// The current scene.
    pub scene: &'a Scene,
    /// Whether training is playing.
    pub playing: bool,
    /// One line about the current target.
    pub target_description: &'a str,
}

/// A change the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlAction {
    /// Show and train on another target.
    SelectTarget(String),
    /// Train another flow family.
    SelectFlow(String),
    /// Start (or resume) training.
    Play,
    /// Pause training.
    Pause,
    /// Take one training step.
    Step,
    /// Restart the scene from step 0 with the current settings.
    Reset,
    /// Use another seed (restarts the scene).
    SetSeed(u64),
}

/// The controls panel. Holds the seed being edited, so typing does not restart the scene on
/// every keystroke: the seed is applied when the user presses "Apply seed".
#[derive(Default)]
pub struct ControlsPanel {
    seed_text: Option<String>,
}

impl ControlsPanel {
    /// Draws the controls; returns what the user asked for this frame.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &ControlsView<'_>) -> Vec<ControlAction> {
        let mut actions = Vec::new();
        ui.heading("flowlab");
        ui.label("Normalizing flows, trained live.");
        ui.separator();

        picker_ui(
            ui,
            "Target",
            &view.scene.target,
            catalog::NAMES,
            &mut |name| {
                actions.push(ControlAction::SelectTarget(name));
            },
        );
        ui.label(egui::RichText::new(view.target_description).small().weak());
        picker_ui(ui, "Flow", &view.scene.flow, Family::NAMES, &mut |name| {
            actions.push(ControlAction::SelectFlow(name));
        });
        ui.separator();

        ui.horizontal(|ui| {
            if view.playing {
                if ui.button("Pause").clicked() {
                    actions.push(ControlAction::Pause);
                }
            } else if ui.button("Play").clicked() {
                actions.push(ControlAction::Play);
            }
            if ui.button("Step").clicked() {
                actions.push(ControlAction::Step);
            }
            if ui.button("Reset").clicked() {
                actions.push(ControlAction::Reset);
            }
        });
        ui.separator();

        let seed_text = self
            .seed_text
            .get_or_insert_with(|| view.scene.seed.to_string());
        ui.horizontal(|ui| {
            let label = ui.label("Seed");
            ui.add(egui::TextEdit::singleline(seed_text).desired_width(90.0))
                .labelled_by(label.id);
        });
        let parsed = seed_text.trim().parse::<u64>();
        ui.horizontal(|ui| {
            let changed = parsed.as_ref().is_ok_and(|seed| *seed != view.scene.seed);
            if ui
                .add_enabled(changed, egui::Button::new("Apply seed"))
                .clicked()
                && let Ok(seed) = parsed
            {
                actions.push(ControlAction::SetSeed(seed));
            }
            if parsed.is_err() {
                ui.label(egui::RichText::new("not a whole number ≥ 0").small());
            }
        });
        if actions
            .iter()
            .any(|action| matches!(action, ControlAction::Reset))
        {
            // Why: a reset (or a scene loaded from the URL) should show the scene's seed again.
            self.seed_text = None;
        }
        actions
    }

    /// Forgets the text being edited, e.g. after the scene changed from outside.
    pub fn reset_edits(&mut self) {
        self.seed_text = None;
    }
}

fn picker_ui(
    ui: &mut egui::Ui,
    label: &str,
    current: &str,
    names: &[&str],
    on_pick: &mut dyn FnMut(String),
) {
    ui.horizontal(|ui| {
        let label_response = ui.label(label);
        let combo = egui::ComboBox::from_id_salt(label)
            .selected_text(current)
            .width(120.0)
            .show_ui(ui, |ui| {
                for &name in names {
                    if ui.selectable_label(name == current, name).clicked() && name != current {
                        on_pick(name.to_owned());
                    }
                }
            });
        combo.response.labelled_by(label_response.id);
    });
}
