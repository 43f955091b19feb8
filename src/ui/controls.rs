//! The model panel: target and flow, every model setting (layers, width, activation, base,
//! objective, learning rate, batch, seed, the CNF's solver and estimators), the training
//! controls with a speed cap, and the model's vital numbers.
//!
//! The pickers list what the registries hold (`targets::CATALOG`, `flows::FAMILIES`,
//! `ObjectiveKind::ALL`, the CNF's choices), so a new entry appears here by being registered.
//! Settings are edited in a draft and committed when the user lets go of a slider or leaves a
//! field, so a drag rebuilds the model once, not on every frame.

use super::{Panel, PanelContext};
use crate::flows::Family;
use crate::flows::cnf::{ProbeKind, Solver, TraceEstimator};
use crate::flows::mlp::Activation;
use crate::i18n::{self, Lang};
use crate::lab::messages::Localized;
use crate::lab::names;
use crate::lab::{Command, Spec};
use crate::tr;
use crate::train::ObjectiveKind;

/// The model panel.
#[derive(Default)]
pub struct ControlsPanel {
    /// The settings being edited, while an edit is in progress.
    draft: Option<Spec>,
    seed_edit: Option<(u64, String)>,
    /// How an opened image becomes a density.
    pub image: ImageOptions,
    /// The family the "Add model" button adds.
    compare_family: Option<Family>,
}

/// How an opened image becomes a density.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageOptions {
    /// Light pixels carry the mass.
    pub invert: bool,
    /// Cells fainter than this share of the darkest are left empty.
    pub threshold: f32,
}

impl Default for ImageOptions {
    fn default() -> Self {
        Self {
            invert: false,
            threshold: 0.05,
        }
    }
}

/// Width of the value column.
const FIELD_WIDTH: f32 = 130.0;

impl Panel for ControlsPanel {
    fn name(&self) -> &'static str {
        "controls"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| self.contents_ui(ui, ctx));
    }
}

impl ControlsPanel {
    fn contents_ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let workspace = ctx.workspace;
        let spec = workspace.spec().clone();
        ui.horizontal(|ui| {
            ui.heading("flowlab");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                language_ui(ui, ctx);
            });
        });
        ui.label(tr!("controls.tagline"));
        ui.separator();

        self.pickers_ui(ui, ctx, &spec);
        ui.separator();
        self.training_ui(ui, ctx, &spec);
        ui.separator();

        let mut draft = self.draft.clone().unwrap_or_else(|| spec.clone());
        let mut commit = false;
        let mut editing = false;
        let mut track = |response: egui::Response| {
            commit |= response.drag_stopped()
                || response.lost_focus()
                || (response.changed() && !response.dragged() && !response.has_focus());
            editing |= response.dragged() || response.has_focus();
        };
        ui.label(egui::RichText::new(tr!("controls.model")).strong());
        let reasons = egui::Grid::new("model_settings")
            .num_columns(2)
            .spacing([8.0, 6.0])
            .show(ui, |ui| model_rows(ui, &mut draft, workspace, &mut track))
            .inner;
        for reason in reasons {
            ui.label(
                egui::RichText::new(tr!("controls.not_available", reason = reason))
                    .weak()
                    .small(),
            );
        }
        if draft.model.flow == Family::Cnf {
            ui.add_space(4.0);
            egui::CollapsingHeader::new(tr!("controls.cnf_section"))
                .id_salt("cnf_section")
                .default_open(true)
                .show(ui, |ui| {
                    // Why narrower: the section is indented, and the panel's width is fixed.
                    ui.spacing_mut().slider_width = 80.0;
                    egui::Grid::new("cnf_settings")
                        .num_columns(2)
                        .spacing([8.0, 6.0])
                        .show(ui, |ui| cnf_rows(ui, &mut draft, &mut track));
                });
        }
        if commit && draft != spec {
            ctx.commands.push(Command::Edit(Box::new(draft)));
            self.draft = None;
        } else if editing {
            self.draft = Some(draft);
        } else {
            self.draft = None;
        }
        ui.separator();
        self.seed_ui(ui, ctx, spec.seed);
        ui.separator();
        self.compare_ui(ui, ctx, &spec);
        ui.separator();
        export_ui(ui, ctx);
    }

    fn compare_ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>, spec: &Spec) {
        let count = 1 + spec.compare.len();
        ui.label(
            egui::RichText::new(tr!(
                "controls.compare",
                count = count,
                max = crate::lab::spec::MAX_MODELS,
            ))
            .strong(),
        );
        let family = self.compare_family.unwrap_or(Family::Maf);
        ui.horizontal(|ui| {
            let label = ui.label(tr!("controls.compare_with"));
            egui::ComboBox::from_id_salt("compare_flow")
                .selected_text(names::family(family))
                .width(FIELD_WIDTH - 40.0)
                .show_ui(ui, |ui| {
                    for f in Family::ALL {
                        if ui.selectable_label(f == family, names::family(f)).clicked() {
                            self.compare_family = Some(f);
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    count < crate::lab::spec::MAX_MODELS,
                    egui::Button::new(tr!("controls.add_model")),
                )
                .on_hover_text(tr!("controls.add_model.hint"))
                .clicked()
            {
                // Why the first model's batch: the same data stream, step for step.
                ctx.commands.push(Command::AddModel(Box::new(
                    crate::lab::spec::ModelSettings {
                        batch: spec.model.batch,
                        ..crate::lab::spec::ModelSettings::of(family)
                    },
                )));
            }
        });
    }

    fn pickers_ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>, spec: &Spec) {
        let workspace = ctx.workspace;
        let current_target = spec.target.name();
        ui.horizontal(|ui| {
            let label = ui.label(tr!("controls.target"));
            egui::ComboBox::from_id_salt("target")
                .selected_text(current_target)
                .width(FIELD_WIDTH)
                .show_ui(ui, |ui| {
                    for info in crate::targets::CATALOG {
                        let picked = ui
                            .selectable_label(info.name == current_target, info.name)
                            .on_hover_text(names::say(
                                &format!("target.{}", info.name),
                                info.description,
                            ));
                        if picked.clicked() && info.name != current_target {
                            ctx.commands
                                .push(Command::SelectTarget(info.name.to_owned()));
                        }
                    }
                    ui.separator();
                    ui.label(egui::RichText::new(tr!("controls.your_own")).weak());
                    for preset in crate::targets::source::PRESETS {
                        if ui
                            .selectable_label(false, names::preset(preset))
                            .on_hover_text(names::preset_lesson(preset))
                            .clicked()
                        {
                            ctx.commands
                                .push(Command::SetTarget(Box::new((preset.make)().canonical())));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.horizontal_wrapped(|ui| {
            if ui
                .button(tr!("controls.open_file"))
                .on_hover_text(tr!("controls.open_file.hint"))
                .clicked()
                && let Err(why) = crate::platform::open_file()
            {
                ctx.commands.push(Command::Inform(why));
            }
            ui.checkbox(&mut self.image.invert, tr!("controls.invert"))
                .on_hover_text(tr!("controls.invert.hint"));
        });
        ui.horizontal(|ui| {
            ui.label(tr!("controls.threshold"));
            ui.add(egui::Slider::new(&mut self.image.threshold, 0.0..=0.9).fixed_decimals(2))
                .on_hover_text(tr!("controls.threshold.hint"));
        });
        if let Some(view) = workspace.target() {
            ui.label(egui::RichText::new(names::target_description(view.target.as_ref())).weak());
        }
        ui.horizontal(|ui| {
            let label = ui.label(tr!("controls.flow"));
            egui::ComboBox::from_id_salt("flow")
                .selected_text(names::family(spec.model.flow))
                .width(FIELD_WIDTH)
                .show_ui(ui, |ui| {
                    for family in Family::ALL {
                        let picked = ui
                            .selectable_label(family == spec.model.flow, names::family(family))
                            .on_hover_text(names::family_description(family));
                        if picked.clicked() && family != spec.model.flow {
                            ctx.commands.push(Command::SelectFlow(family));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.label(egui::RichText::new(names::family_description(spec.model.flow)).weak());
    }

    fn training_ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>, spec: &Spec) {
        let workspace = ctx.workspace;
        ui.horizontal(|ui| {
            if workspace.is_playing() {
                if ui.button(tr!("controls.pause")).clicked() {
                    ctx.commands.push(Command::Pause);
                }
            } else if ui.button(tr!("controls.play")).clicked() {
                ctx.commands.push(Command::Play);
            }
            if ui
                .button(tr!("controls.step"))
                .on_hover_text(tr!("controls.step.hint"))
                .clicked()
            {
                ctx.commands.push(Command::Step);
            }
            if ui
                .button(tr!("controls.reset"))
                .on_hover_text(tr!("controls.reset.hint"))
                .clicked()
            {
                ctx.commands.push(Command::Reset);
                self.seed_edit = None;
            }
        });
        ui.horizontal(|ui| {
            let mut fastest = spec.speed.is_none();
            if ui
                .checkbox(&mut fastest, tr!("controls.fastest"))
                .on_hover_text(tr!("controls.fastest.hint"))
                .changed()
            {
                let mut edited = spec.clone();
                edited.speed = if fastest { None } else { Some(10.0) };
                ctx.commands.push(Command::Edit(Box::new(edited)));
            }
        });
        if let Some(speed) = spec.speed {
            let mut value = speed;
            let response = ui.add(
                egui::Slider::new(&mut value, 0.5..=1000.0)
                    .logarithmic(true)
                    .text(tr!("controls.speed_cap")),
            );
            // (The slider's text names it for screen readers.)
            if (response.drag_stopped() || (response.changed() && !response.dragged()))
                && value != speed
            {
                let mut edited = spec.clone();
                edited.speed = Some(value);
                ctx.commands.push(Command::Edit(Box::new(edited)));
            }
        }
        let model = ctx.status.models.first();
        let report = workspace.runs().first().and_then(|r| r.latest());
        egui::Grid::new("vitals").num_columns(2).show(ui, |ui| {
            let mut row = |name: &str, value: String| {
                ui.label(name);
                ui.label(egui::RichText::new(value).monospace());
                ui.end_row();
            };
            row(tr!("vitals.step"), model.map_or(0, |m| m.step).to_string());
            row(
                tr!("vitals.steps_per_sec"),
                model.map_or("–".to_owned(), |m| format!("{:.0}", m.steps_per_sec)),
            );
            row(
                tr!("vitals.training_time"),
                report.map_or("–".to_owned(), |r| {
                    tr!("unit.seconds", value = format!("{:.1}", r.train_secs))
                }),
            );
            row(
                tr!("vitals.parameters"),
                model.map_or("–".to_owned(), |m| group_thousands(m.n_params)),
            );
            if let Some(lr) = report.map(|r| r.lr) {
                row(tr!("vitals.learning_rate"), format!("{lr:.1e}"));
            }
        });
    }

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
            let label = ui.label(tr!("controls.seed"));
            ui.add(egui::TextEdit::singleline(seed_text).desired_width(90.0))
                .labelled_by(label.id);
        });
        let parsed = seed_text.trim().parse::<u64>();
        ui.horizontal(|ui| {
            let changed = parsed.as_ref().is_ok_and(|new| *new != seed);
            if ui
                .add_enabled(changed, egui::Button::new(tr!("controls.apply_seed")))
                .clicked()
                && let Ok(new) = parsed
            {
                ctx.commands.push(Command::SetSeed(new));
            }
            if parsed.is_err() {
                ui.label(egui::RichText::new(tr!("controls.seed_invalid")).small());
            }
        });
    }
}

/// The architecture and optimisation rows of the model grid; returns why the objectives that
/// do not apply do not.
fn model_rows(
    ui: &mut egui::Ui,
    draft: &mut Spec,
    workspace: &crate::lab::Workspace,
    track: &mut impl FnMut(egui::Response),
) -> Vec<String> {
    let info = draft.model.flow.info();
    let mut layers = draft.model.layers.unwrap_or(info.default_layers);
    let label = ui.label(tr!("controls.layers"));
    let response = ui
        .add(egui::Slider::new(&mut layers, 1..=64).logarithmic(true))
        .labelled_by(label.id);
    if response.changed() {
        draft.model.layers = Some(layers);
    }
    track(response.on_hover_text(match draft.model.flow {
        Family::Glow => tr!("controls.layers.hint_glow"),
        Family::Cnf => tr!("controls.layers.hint_cnf"),
        _ => tr!("controls.layers.hint"),
    }));
    ui.end_row();

    let uses_networks = !matches!(draft.model.flow, Family::Planar | Family::Radial);
    let mut width = draft.model.width.unwrap_or(info.default_hidden);
    let label = ui.label(tr!("controls.width"));
    let response = ui
        .add_enabled(
            uses_networks,
            egui::Slider::new(&mut width, 1..=1024).logarithmic(true),
        )
        .labelled_by(label.id);
    if response.changed() {
        draft.model.width = Some(width);
    }
    track(response.on_disabled_hover_text(tr!("controls.width.disabled")));
    ui.end_row();

    let label = ui.label(tr!("controls.activation"));
    let mut activation = draft.model.activation.unwrap_or(info.default_activation);
    ui.add_enabled_ui(uses_networks, |ui| {
        if choice_combo(
            ui,
            label.id,
            &mut activation,
            &Activation::ALL,
            |a| a.name(),
            track,
        ) {
            draft.model.activation = Some(activation);
        }
    });
    ui.end_row();

    let label = ui.label(tr!("controls.base"));
    let mut learnable = draft.model.learnable_base;
    egui::ComboBox::from_id_salt("base")
        .selected_text(base_title(learnable))
        .width(FIELD_WIDTH)
        .show_ui(ui, |ui| {
            for option in [false, true] {
                let response = ui.selectable_value(&mut learnable, option, base_title(option));
                if response.clicked() {
                    draft.model.learnable_base = learnable;
                }
                track(response);
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();

    let reasons = objective_rows(ui, draft, workspace, track);

    let mut lr = draft.model.learning_rate();
    let label = ui.label(tr!("controls.learning_rate"));
    let response = ui
        .add(
            egui::Slider::new(&mut lr, 1e-5..=1e-1)
                .logarithmic(true)
                .custom_formatter(|v, _| format!("{v:.1e}")),
        )
        .labelled_by(label.id);
    if response.changed() {
        draft.model.lr = Some(lr);
    }
    let target = workspace.target().map(|t| t.target.as_ref());
    track(response.on_hover_text(learning_rate_hint(draft.model.flow, target)));
    ui.end_row();

    let mut batch = draft.model.batch;
    let label = ui.label(tr!("controls.batch"));
    let response = ui
        .add(egui::Slider::new(&mut batch, 1..=65_536).logarithmic(true))
        .labelled_by(label.id);
    if response.changed() {
        draft.model.batch = batch;
    }
    track(response.on_hover_text(tr!("controls.batch.hint")));
    ui.end_row();
    reasons
}

fn base_title(learnable: bool) -> &'static str {
    if learnable {
        tr!("controls.base.learnable")
    } else {
        tr!("controls.base.standard")
    }
}

/// The objective picker: every objective, the ones that do not apply greyed out; returns
/// their reasons, which the panel writes under the grid.
fn objective_rows(
    ui: &mut egui::Ui,
    draft: &mut Spec,
    workspace: &crate::lab::Workspace,
    track: &mut impl FnMut(egui::Response),
) -> Vec<String> {
    let Some(target) = workspace.target() else {
        return Vec::new();
    };
    let target = target.target.as_ref();
    let (current, _) = draft.model.objective_for(target);
    let label = ui.label(tr!("controls.objective"));
    let mut reasons = Vec::new();
    egui::ComboBox::from_id_salt("objective")
        .selected_text(names::objective(current))
        .width(FIELD_WIDTH)
        .show_ui(ui, |ui| {
            for objective in ObjectiveKind::ALL {
                let applies = objective.applies(draft.model.flow, target);
                let response = ui
                    .add_enabled(
                        applies.is_ok(),
                        egui::Button::selectable(objective == current, names::objective(objective)),
                    )
                    .on_disabled_hover_text(
                        applies
                            .as_ref()
                            .err()
                            .map_or(String::new(), ToString::to_string),
                    );
                if response.clicked() {
                    draft.model.objective = Some(objective);
                }
                track(response);
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    for objective in ObjectiveKind::ALL {
        if let Err(why) = objective.applies(draft.model.flow, target) {
            reasons.push(tr!(
                "lab.objective_reason",
                objective = names::objective(objective),
                why = why.localized()
            ));
        }
    }
    reasons
}

/// The CNF's rows.
fn cnf_rows(ui: &mut egui::Ui, draft: &mut Spec, track: &mut impl FnMut(egui::Response)) {
    let cnf = &mut draft.model.cnf;
    let label = ui.label(tr!("controls.solver"));
    choice_combo(
        ui,
        label.id,
        &mut cnf.solver,
        Solver::ALL,
        solver_title,
        track,
    );
    ui.end_row();
    match cnf.solver {
        Solver::Rk4 => {
            slider_row(
                ui,
                tr!("controls.rk4_steps"),
                egui::Slider::new(&mut cnf.steps, 1..=1000).logarithmic(true),
                tr!("controls.rk4_steps.hint"),
                track,
            );
        }
        Solver::DormandPrince => {
            for (name, value) in [
                (tr!("controls.rtol"), &mut cnf.rtol),
                (tr!("controls.atol"), &mut cnf.atol),
            ] {
                let slider = egui::Slider::new(value, 1e-8..=1e-1)
                    .logarithmic(true)
                    .custom_formatter(|v, _| format!("{v:.0e}"));
                slider_row(ui, name, slider, tr!("controls.tolerance.hint"), track);
            }
        }
    }
    let label = ui.label(tr!("controls.trace"));
    choice_combo(
        ui,
        label.id,
        &mut cnf.trace,
        TraceEstimator::ALL,
        trace_title,
        track,
    );
    ui.end_row();
    if cnf.trace == TraceEstimator::Hutchinson {
        let label = ui.label(tr!("controls.probes"));
        choice_combo(
            ui,
            label.id,
            &mut cnf.probe,
            ProbeKind::ALL,
            |p| i18n::text(&format!("controls.probe.{}", p.name())),
            track,
        );
        ui.end_row();
        slider_row(
            ui,
            tr!("controls.probe_count"),
            egui::Slider::new(&mut cnf.probes, 1..=64),
            tr!("controls.probe_count.hint"),
            track,
        );
    }
    slider_row(
        ui,
        tr!("controls.kinetic"),
        egui::Slider::new(&mut cnf.kinetic, 0.0..=10.0)
            .logarithmic(true)
            .custom_formatter(|v, _| format!("{v:.3}")),
        tr!("controls.kinetic.hint"),
        track,
    );
    slider_row(
        ui,
        tr!("controls.jacobian"),
        egui::Slider::new(&mut cnf.jacobian, 0.0..=10.0)
            .logarithmic(true)
            .custom_formatter(|v, _| format!("{v:.3}")),
        tr!("controls.jacobian.hint"),
        track,
    );
    slider_row(
        ui,
        tr!("controls.augment"),
        egui::Slider::new(&mut cnf.augment, 0..=16),
        tr!("controls.augment.hint"),
        track,
    );
}

/// A labelled slider row of a grid.
fn slider_row(
    ui: &mut egui::Ui,
    name: &str,
    slider: egui::Slider<'_>,
    hover: &str,
    track: &mut impl FnMut(egui::Response),
) {
    let label = ui.label(name);
    track(ui.add(slider).labelled_by(label.id).on_hover_text(hover));
    ui.end_row();
}

fn solver_title(solver: Solver) -> &'static str {
    match solver {
        Solver::Rk4 => tr!("controls.solver.rk4"),
        Solver::DormandPrince => tr!("controls.solver.dopri"),
    }
}

fn trace_title(trace: TraceEstimator) -> &'static str {
    match trace {
        TraceEstimator::Exact => tr!("controls.trace.exact"),
        TraceEstimator::Hutchinson => tr!("controls.trace.hutchinson"),
    }
}

/// A combo box over `all`, named by `title`; true when an option was picked this frame.
fn choice_combo<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    label: egui::Id,
    value: &mut T,
    all: &[T],
    title: fn(T) -> &'static str,
    track: &mut impl FnMut(egui::Response),
) -> bool {
    let mut chosen = false;
    egui::ComboBox::from_id_salt(label)
        .selected_text(title(*value))
        .width(FIELD_WIDTH)
        .show_ui(ui, |ui| {
            for &option in all {
                let response = ui.selectable_value(value, option, title(option));
                chosen |= response.clicked();
                track(response);
            }
        })
        .response
        .labelled_by(label);
    chosen
}

/// The language switch: one button per language, the current one selected.
fn language_ui(ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
    let current = i18n::current();
    // Right to left: the last language first.
    for lang in Lang::ALL.into_iter().rev() {
        if ui
            .selectable_label(lang == current, lang.endonym())
            .on_hover_text(tr!("controls.language.hint"))
            .clicked()
            && lang != current
        {
            ctx.commands.push(Command::SetLanguage(lang));
        }
    }
}

/// What the rate slider sets, and how the family's default schedule on this target moves
/// from it.
fn learning_rate_hint(family: Family, target: Option<&dyn crate::targets::Target>) -> String {
    let info = family.info();
    let adam = match target {
        Some(target) => info.adam_for(None, target),
        None => info.adam(None),
    };
    let base = tr!("controls.learning_rate.hint");
    match adam.schedule {
        crate::engine::LrSchedule::Cosine {
            total_steps,
            final_fraction,
        } => format!(
            "{base}\n{}",
            tr!(
                "controls.learning_rate.schedule",
                family = names::family(family),
                warmup = adam.warmup_steps,
                fraction = final_fraction,
                end = total_steps
            )
        ),
        crate::engine::LrSchedule::Constant => base.to_owned(),
    }
}

/// `35344` → `"35,344"`.
fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Exports of the first model and the scene, and the import of a `model.json`.
fn export_ui(ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
    ui.label(egui::RichText::new(tr!("controls.export")).strong());
    ui.horizontal_wrapped(|ui| {
        for export in crate::lab::export::Export::ALL {
            if ui
                .button(names::export(export))
                .on_hover_text(names::export_description(export))
                .clicked()
            {
                ctx.commands.push(Command::Export(export));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::group_thousands(35_344), "35,344");
        assert_eq!(super::group_thousands(999), "999");
        assert_eq!(super::group_thousands(1_000_000), "1,000,000");
    }
}
