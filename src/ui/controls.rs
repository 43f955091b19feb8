//! The side panel: target and flow pickers, play / pause / step / reset, seed.
//!
//! The pickers list what the registries hold (`targets::CATALOG`, `flows::FAMILIES`), so a new
//! target or family appears here by being registered.

use super::{Panel, PanelContext};
use crate::flows::Family;
use crate::lab::Command;

/// The controls panel. Holds the seed being edited (and the seed it was edited from), so
/// typing does not restart the scene on every keystroke and a seed changed elsewhere (the URL)
/// shows up here.
#[derive(Default)]
pub struct ControlsPanel {
    seed_edit: Option<(u64, String)>,
}

impl Panel for ControlsPanel {
    fn name(&self) -> &'static str {
        "controls"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let workspace = ctx.workspace;
        let spec = workspace.spec();
        ui.heading("flowlab");
        ui.label("Normalizing flows, trained live.");
        ui.separator();

        let current_target = spec.target.as_str();
        ui.horizontal(|ui| {
            let label = ui.label("Target");
            egui::ComboBox::from_id_salt("Target")
                .selected_text(current_target)
                .width(140.0)
                .show_ui(ui, |ui| {
                    for info in crate::targets::CATALOG {
                        let picked = ui
                            .selectable_label(info.name == current_target, info.name)
                            .on_hover_text(info.description);
                        if picked.clicked() && info.name != current_target {
                            ctx.commands
                                .push(Command::SelectTarget(info.name.to_owned()));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        if let Some(view) = workspace.target() {
            ui.label(egui::RichText::new(view.target.description()).weak());
        }

        ui.horizontal(|ui| {
            let label = ui.label("Flow");
            egui::ComboBox::from_id_salt("Flow")
                .selected_text(spec.flow.info().title)
                .width(140.0)
                .show_ui(ui, |ui| {
                    for family in Family::ALL {
                        let info = family.info();
                        let picked = ui
                            .selectable_label(family == spec.flow, info.title)
                            .on_hover_text(info.description);
                        if picked.clicked() && family != spec.flow {
                            ctx.commands.push(Command::SelectFlow(family));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.label(egui::RichText::new(spec.flow.info().description).weak());
        ui.separator();

        ui.horizontal(|ui| {
            if workspace.is_playing() {
                if ui.button("Pause").clicked() {
                    ctx.commands.push(Command::Pause);
                }
            } else if ui.button("Play").clicked() {
                ctx.commands.push(Command::Play);
            }
            if ui.button("Step").clicked() {
                ctx.commands.push(Command::Step);
            }
            if ui.button("Reset").clicked() {
                ctx.commands.push(Command::Reset);
                self.seed_edit = None;
            }
        });
        ui.separator();

        self.seed_ui(ui, ctx, spec.seed);
    }
}

impl ControlsPanel {
    fn seed_ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>, seed: u64) {
        if self
            .seed_edit
            .as_ref()
            .is_some_and(|(from, _)| *from != seed)
        {
            self.seed_edit = None;
        }
        let (_, seed_text) = self
            .seed_edit
            .get_or_insert_with(|| (seed, seed.to_string()));
        ui.horizontal(|ui| {
            let label = ui.label("Seed");
            ui.add(egui::TextEdit::singleline(seed_text).desired_width(90.0))
                .labelled_by(label.id);
        });
        let parsed = seed_text.trim().parse::<u64>();
        ui.horizontal(|ui| {
            let changed = parsed.as_ref().is_ok_and(|new| *new != seed);
            if ui
                .add_enabled(changed, egui::Button::new("Apply seed"))
                .clicked()
                && let Ok(new) = parsed
            {
                ctx.commands.push(Command::SetSeed(new));
            }
            if parsed.is_err() {
                ui.label(egui::RichText::new("not a whole number ≥ 0").small());
            }
        });
    }
}
