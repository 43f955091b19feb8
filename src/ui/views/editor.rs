//! Editing the target on the samples plot: a brush for a painted target (size, strength,
//! erase, mirror symmetry, undo, clear) and the mouse for a mixture's components (drag to move,
//! click to add, sliders for the selected one's widths and weight, remove).
//!
//! A stroke paints into a draft grid drawn as it grows; the target changes once, when the
//! stroke ends (`Command::SetTarget`), so training restarts on the finished shape and not on
//! every mouse move.

use egui::{Color32, Stroke};

use crate::lab::Command;
use crate::targets::TargetSource;
use crate::targets::mixture::{Component, MAX_COMPONENTS, Mixture};
use crate::targets::painted::{Brush, PaintedGrid, Symmetry};
use crate::tr;
use crate::ui::plot::Canvas;

/// Edits kept for undo.
const UNDO_DEPTH: usize = 32;
/// How near (in points) a click must be to a component's centre to pick it.
const PICK_RADIUS: f32 = 14.0;

/// The target editor's state (brush, draft stroke, undo history, selected component).
#[derive(Default)]
pub struct TargetEditor {
    brush: Brush,
    /// The grid being painted during a stroke.
    draft: Option<PaintedGrid>,
    /// Screen positions of the stroke so far (its preview).
    stroke: Vec<egui::Pos2>,
    undo: Vec<TargetSource>,
    selected: Option<usize>,
    /// The component being dragged, and its mixture as it moves.
    dragging: Option<(usize, Mixture)>,
}

impl TargetEditor {
    /// Whether `source` is a target this editor edits.
    pub fn edits(source: &TargetSource) -> bool {
        matches!(source, TargetSource::Painted(_) | TargetSource::Mixture(_))
    }

    /// The tools for `source` (nothing for targets that are not edited with the mouse).
    pub fn toolbar_ui(
        &mut self,
        ui: &mut egui::Ui,
        source: &TargetSource,
        commands: &mut Vec<Command>,
    ) {
        match source {
            TargetSource::Painted(grid) => self.brush_ui(ui, grid, commands),
            TargetSource::Mixture(mixture) => self.mixture_ui(ui, mixture, commands),
            _ => {}
        }
    }

    fn brush_ui(&mut self, ui: &mut egui::Ui, grid: &PaintedGrid, commands: &mut Vec<Command>) {
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("editor.brush"));
            ui.add(
                egui::Slider::new(&mut self.brush.radius, 0.1..=1.5)
                    .text(tr!("editor.size"))
                    .fixed_decimals(1),
            )
            .on_hover_text(tr!("editor.size.hint"));
            ui.add(
                egui::Slider::new(&mut self.brush.strength, 0.05..=1.0)
                    .text(tr!("editor.strength"))
                    .fixed_decimals(2),
            )
            .on_hover_text(tr!("editor.strength.hint"));
            ui.checkbox(&mut self.brush.erase, tr!("editor.erase"));
            egui::ComboBox::from_id_salt("mirror")
                .selected_text(symmetry_name(self.brush.symmetry))
                .show_ui(ui, |ui| {
                    for symmetry in [
                        Symmetry::None,
                        Symmetry::MirrorX,
                        Symmetry::MirrorY,
                        Symmetry::Both,
                        Symmetry::Radial4,
                    ] {
                        ui.selectable_value(
                            &mut self.brush.symmetry,
                            symmetry,
                            symmetry_name(symmetry),
                        );
                    }
                })
                .response
                .on_hover_text(tr!("editor.mirror.hint"));
            if ui
                .add_enabled(!self.undo.is_empty(), egui::Button::new(tr!("editor.undo")))
                .clicked()
                && let Some(previous) = self.undo.pop()
            {
                commands.push(Command::SetTarget(Box::new(previous)));
            }
            if ui.button(tr!("editor.clear")).clicked() {
                // Why not an empty grid: a blank painting is no density. Clearing keeps
                // one faint dab in the centre, so training goes on while the user paints.
                self.remember(TargetSource::Painted(grid.clone()));
                let mut blank = PaintedGrid::blank(grid.view(), grid.size().0, grid.size().1);
                blank.stroke(
                    [0.0, 0.0],
                    &Brush {
                        radius: 0.6,
                        strength: 0.3,
                        ..Brush::default()
                    },
                );
                commands.push(Command::SetTarget(Box::new(TargetSource::Painted(blank))));
            }
        });
        ui.label(egui::RichText::new(tr!("editor.paint_hint")).weak());
    }

    fn mixture_ui(&mut self, ui: &mut egui::Ui, mixture: &Mixture, commands: &mut Vec<Command>) {
        let selected = self.selected.filter(|&i| i < mixture.components().len());
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("editor.components", count = mixture.components().len()));
            if ui
                .add_enabled(!self.undo.is_empty(), egui::Button::new(tr!("editor.undo")))
                .clicked()
                && let Some(previous) = self.undo.pop()
            {
                commands.push(Command::SetTarget(Box::new(previous)));
            }
            let Some(index) = selected else {
                ui.label(egui::RichText::new(tr!("editor.select_hint")).weak());
                return;
            };
            let mut component = mixture.components()[index];
            let mut changed = false;
            let mut done = false;
            let [sx, sy] = &mut component.std;
            for (value, name, range) in [
                (sx, "σx", 0.05..=3.0),
                (sy, "σy", 0.05..=3.0),
                (&mut component.weight, tr!("editor.weight"), 0.05..=10.0),
            ] {
                let response = ui.add(
                    egui::Slider::new(value, range)
                        .text(name)
                        .fixed_decimals(2)
                        .logarithmic(true),
                );
                changed |= response.changed();
                done |= response.drag_stopped() || (response.changed() && !response.dragged());
            }
            if changed && done {
                let mut edited = mixture.clone();
                let updated = edited
                    .resize(index, component.std)
                    .and_then(|()| edited.reweight(index, component.weight));
                if updated.is_ok() {
                    self.remember(TargetSource::Mixture(mixture.clone()));
                    commands.push(Command::SetTarget(Box::new(TargetSource::Mixture(edited))));
                }
            }
            if ui
                .add_enabled(
                    mixture.components().len() > 1,
                    egui::Button::new(tr!("editor.remove")),
                )
                .clicked()
            {
                let mut edited = mixture.clone();
                if edited.remove(index).is_ok() {
                    self.remember(TargetSource::Mixture(mixture.clone()));
                    self.selected = None;
                    commands.push(Command::SetTarget(Box::new(TargetSource::Mixture(edited))));
                }
            }
        });
        ui.label(egui::RichText::new(tr!("editor.mixture_hint")).weak());
    }

    /// Handles the pointer on the plot and draws the editor's marks. Returns whether the
    /// editor used the pointer (then a click does not also probe the point).
    pub fn canvas_ui(
        &mut self,
        response: &egui::Response,
        canvas: &Canvas,
        source: &TargetSource,
        commands: &mut Vec<Command>,
    ) -> bool {
        match source {
            TargetSource::Painted(grid) => self.paint(response, canvas, grid, commands),
            TargetSource::Mixture(mixture) => {
                self.place(response, canvas, mixture, commands);
                true
            }
            _ => false,
        }
    }

    fn paint(
        &mut self,
        response: &egui::Response,
        canvas: &Canvas,
        grid: &PaintedGrid,
        commands: &mut Vec<Command>,
    ) -> bool {
        let pointer = response.interact_pointer_pos();
        if (response.drag_started() || response.clicked()) && self.draft.is_none() {
            self.draft = Some(grid.clone());
            self.stroke.clear();
        }
        if let (Some(draft), Some(pos)) = (&mut self.draft, pointer)
            && (response.dragged() || response.clicked() || response.drag_started())
        {
            // Dabs every quarter radius along the path, so a fast stroke has no gaps.
            let step = (0.25 * self.brush.radius as f32 * canvas.transform.scale).max(1.0);
            let from = self.stroke.last().copied().unwrap_or(pos);
            let dabs = ((pos - from).length() / step).ceil().max(1.0) as usize;
            for k in 1..=dabs {
                let at = from + (pos - from) * (k as f32 / dabs as f32);
                let [x, y] = canvas.transform.inverse(at);
                draft.stroke([f64::from(x), f64::from(y)], &self.brush);
            }
            self.stroke.push(pos);
        }
        let finished = response.drag_stopped() || response.clicked();
        if finished && let Some(draft) = self.draft.take() {
            self.stroke.clear();
            if draft != *grid {
                self.remember(TargetSource::Painted(grid.clone()));
                commands.push(Command::SetTarget(Box::new(TargetSource::Painted(draft))));
            }
        }
        // The stroke so far, and the brush under the pointer.
        let radius = self.brush.radius as f32 * canvas.transform.scale;
        let ink = if self.brush.erase {
            Color32::from_rgba_unmultiplied(0, 0, 0, 90)
        } else {
            Color32::from_rgba_unmultiplied(255, 255, 255, 60)
        };
        for &p in &self.stroke {
            canvas.painter.circle_filled(p, radius, ink);
        }
        if let Some(hover) = response.hover_pos() {
            canvas
                .painter
                .circle_stroke(hover, radius, Stroke::new(1.5, Color32::WHITE));
        }
        true
    }

    fn place(
        &mut self,
        response: &egui::Response,
        canvas: &Canvas,
        mixture: &Mixture,
        commands: &mut Vec<Command>,
    ) {
        let transform = canvas.transform;
        // Picks among the components as they are (not as a drag moves them).
        let nearest = |pos: egui::Pos2| {
            mixture
                .components()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let centre = transform.transform([c.mean[0] as f32, c.mean[1] as f32]);
                    (i, (centre - pos).length())
                })
                .filter(|&(_, d)| d <= PICK_RADIUS)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        if response.drag_started()
            && let Some(index) = response.interact_pointer_pos().and_then(nearest)
        {
            self.selected = Some(index);
            self.dragging = Some((index, mixture.clone()));
        }
        if let (Some((index, moving)), Some(pos)) =
            (&mut self.dragging, response.interact_pointer_pos())
        {
            let [x, y] = canvas.transform.inverse(pos);
            let _ = moving.move_to(*index, [f64::from(x), f64::from(y)]);
        }
        if response.drag_stopped()
            && let Some((_, moved)) = self.dragging.take()
            && moved != *mixture
        {
            self.remember(TargetSource::Mixture(mixture.clone()));
            commands.push(Command::SetTarget(Box::new(TargetSource::Mixture(moved))));
        }
        if response.clicked()
            && let Some(pos) = response.interact_pointer_pos()
        {
            match nearest(pos) {
                Some(index) => self.selected = Some(index),
                None if mixture.components().len() < MAX_COMPONENTS => {
                    let [x, y] = canvas.transform.inverse(pos);
                    let mut edited = mixture.clone();
                    if let Ok(index) =
                        edited.add(Component::isotropic([f64::from(x), f64::from(y)], 0.4, 1.0))
                    {
                        self.remember(TargetSource::Mixture(mixture.clone()));
                        self.selected = Some(index);
                        commands.push(Command::SetTarget(Box::new(TargetSource::Mixture(edited))));
                    }
                }
                None => {}
            }
        }
        let shown = self.dragging.as_ref().map_or(mixture, |(_, moving)| moving);
        for (i, c) in shown.components().iter().enumerate() {
            let centre = canvas
                .transform
                .transform([c.mean[0] as f32, c.mean[1] as f32]);
            let size = egui::vec2(c.std[0] as f32, c.std[1] as f32) * 2.0 * canvas.transform.scale;
            let selected = self.selected == Some(i);
            let stroke = Stroke::new(
                if selected { 2.5 } else { 1.5 },
                if selected {
                    Color32::YELLOW
                } else {
                    Color32::WHITE
                },
            );
            canvas
                .painter
                .add(egui::Shape::ellipse_stroke(centre, size / 2.0, stroke));
            canvas.painter.circle_filled(centre, 5.0, stroke.color);
        }
    }

    fn remember(&mut self, source: TargetSource) {
        if self.undo.len() == UNDO_DEPTH {
            self.undo.remove(0);
        }
        self.undo.push(source);
    }
}

fn symmetry_name(symmetry: Symmetry) -> &'static str {
    match symmetry {
        Symmetry::None => tr!("editor.mirror.none"),
        Symmetry::MirrorX => tr!("editor.mirror.left_right"),
        Symmetry::MirrorY => tr!("editor.mirror.up_down"),
        Symmetry::Both => tr!("editor.mirror.both"),
        Symmetry::Radial4 => tr!("editor.mirror.radial4"),
    }
}
