//! The central area: a toolbar of view toggles, and the views shown, tiled. One file per
//! view; each draws from the workspace and its first run's latest pictures and pushes
//! [`Command`]s, like every panel.
//!
//! - [`samples`]: the flow's samples coloured by where they started, over the target
//! - [`layers`]: the flow layer by layer (depth scrubber, warped grid, p_i, log-det map)
//! - [`density`]: the learned density beside the target's
//! - [`field`]: a CNF's vector field and trajectories
//! - [`compare`]: every model side by side (small multiples and a table)
//! - [`editor`]: painting a target and placing a mixture's components, on the samples plot
//! - [`loss`]: the loss curves (egui_plot)

pub mod compare;
pub mod density;
pub mod editor;
pub mod field;
pub mod layers;
pub mod loss;
pub mod samples;

use super::{Panel, PanelContext};
use crate::lab::views::{Pictures, ViewKind, ViewSet};
use crate::lab::{Command, Run, Workspace, names};
use crate::tr;

/// What a view reads this frame.
pub struct ViewContext<'a> {
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The first model, if there is one.
    pub run: Option<&'a Run>,
    /// Its latest pictures, if any arrived.
    pub pictures: Option<&'a Pictures>,
}

/// The views panel: toggles, then the shown views in a grid.
#[derive(Default)]
pub struct ViewsPanel {
    samples: samples::SamplesView,
    layers: layers::LayersView,
    density: density::DensityView,
    field: field::FieldView,
    compare: compare::CompareView,
    loss: loss::LossView,
}

/// Gap between tiles, in points.
const GAP: f32 = 6.0;

impl Panel for ViewsPanel {
    fn name(&self) -> &'static str {
        "views"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let workspace = ctx.workspace;
        let run = workspace.runs().first();
        let view = ViewContext {
            workspace,
            run,
            pictures: run.and_then(Run::pictures),
        };
        toggles_ui(ui, workspace, ctx.commands);
        let shown: Vec<ViewKind> = workspace.shown_views().collect();
        if shown.is_empty() {
            ui.centered_and_justified(|ui| {
                ui.heading(tr!("views.none_shown"));
            });
            return;
        }
        let area = ui.available_rect_before_wrap();
        for (kind, rect) in tile_rects(&shown, area) {
            let mut child = ui.new_child(
                egui::UiBuilder::new()
                    .max_rect(rect)
                    .id_salt(kind.name())
                    .layout(egui::Layout::top_down(egui::Align::Min)),
            );
            child.set_clip_rect(rect.intersect(ui.clip_rect()));
            tile_ui(&mut child, names::view(kind), |ui| match kind {
                ViewKind::Samples => self.samples.ui(ui, &view, ctx.commands),
                ViewKind::Layers => self.layers.ui(ui, &view, ctx.commands),
                ViewKind::Density => self.density.ui(ui, &view, ctx.commands),
                ViewKind::Field => self.field.ui(ui, &view),
                ViewKind::Compare => self.compare.ui(ui, &view, ctx.commands),
                ViewKind::Loss => self.loss.ui(ui, &view),
            });
        }
        ui.advance_cursor_after_rect(area);
    }
}

/// A click on a plot pins that point (the change of variables, taken apart in the notes and,
/// with several models, in the comparison); a right click unpins every point. Pinned points
/// are marked on every plot of the plane, the latest ringed.
pub fn probe_ui(
    response: &egui::Response,
    canvas: &crate::ui::plot::Canvas,
    workspace: &Workspace,
    commands: &mut Vec<Command>,
) {
    if response.clicked()
        && let Some(pos) = response.interact_pointer_pos()
    {
        commands.push(Command::Probe(Some(canvas.transform.inverse(pos))));
    }
    if response.secondary_clicked() {
        commands.push(Command::Probe(None));
    }
    let pinned = workspace.probes();
    for (i, &point) in pinned.iter().enumerate() {
        let centre = canvas.transform.transform(point);
        if canvas.screen.contains(centre) {
            let radius = if i + 1 == pinned.len() { 7.0 } else { 4.5 };
            let painter = &canvas.painter;
            painter.circle_stroke(centre, radius, egui::Stroke::new(2.5, egui::Color32::BLACK));
            painter.circle_stroke(centre, radius, egui::Stroke::new(1.5, egui::Color32::WHITE));
        }
    }
}

/// A tile: its title, then the view.
fn tile_ui(ui: &mut egui::Ui, title: &str, body: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::group(ui.style())
        .inner_margin(4.0)
        .show(ui, |ui| {
            ui.set_min_size(ui.available_size());
            ui.label(egui::RichText::new(title).strong().size(15.0));
            body(ui);
        });
}

/// Height of a tile's title and toolbar rows, in points.
const TILE_CHROME: f32 = 64.0;

/// Where each shown view goes in `area`: the plots in a grid, choosing the column count that
/// makes them largest; the loss curves as a band across the bottom.
pub fn tile_rects(shown: &[ViewKind], area: egui::Rect) -> Vec<(ViewKind, egui::Rect)> {
    let plots: Vec<ViewKind> = shown
        .iter()
        .copied()
        .filter(|&k| k != ViewKind::Loss)
        .collect();
    let has_loss = shown.contains(&ViewKind::Loss);
    let loss_height = if plots.is_empty() {
        area.height()
    } else if has_loss {
        (0.3 * area.height()).clamp(150.0, 280.0)
    } else {
        0.0
    };
    let plot_area = egui::Rect::from_min_max(
        area.min,
        egui::pos2(
            area.max.x,
            area.max.y - loss_height - if has_loss { GAP } else { 0.0 },
        ),
    );
    let rows_for = |columns: usize| plots.len().div_ceil(columns).max(1);
    let side = |columns: usize| {
        let rows = rows_for(columns) as f32;
        let width = (plot_area.width() - GAP * (columns as f32 - 1.0)) / columns as f32;
        let height = (plot_area.height() - GAP * (rows - 1.0)) / rows - TILE_CHROME;
        width.min(height)
    };
    // The largest plots; between equals, fewer columns (wider tiles hold their toolbars).
    let columns = (1..=plots.len().max(1))
        .max_by(|&a, &b| side(a).total_cmp(&side(b)).then(b.cmp(&a)))
        .unwrap_or(1);
    let rows = rows_for(columns);
    let width = (plot_area.width() - GAP * (columns as f32 - 1.0)) / columns as f32;
    let height = (plot_area.height() - GAP * (rows as f32 - 1.0)) / rows as f32;
    let mut out: Vec<(ViewKind, egui::Rect)> = plots
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let (column, row) = ((i % columns) as f32, (i / columns) as f32);
            let min = plot_area.min + egui::vec2(column * (width + GAP), row * (height + GAP));
            (k, egui::Rect::from_min_size(min, egui::vec2(width, height)))
        })
        .collect();
    if has_loss {
        out.push((
            ViewKind::Loss,
            egui::Rect::from_min_max(egui::pos2(area.min.x, area.max.y - loss_height), area.max),
        ));
    }
    out
}

/// A checkbox per view; the vector field only for CNFs.
fn toggles_ui(ui: &mut egui::Ui, workspace: &Workspace, commands: &mut Vec<Command>) {
    let spec = workspace.spec();
    ui.horizontal_wrapped(|ui| {
        ui.label(egui::RichText::new(tr!("views.heading")).strong());
        for kind in ViewKind::ALL {
            let applies = match kind {
                ViewKind::Field => spec.model.flow == crate::flows::Family::Cnf,
                ViewKind::Compare => !spec.compare.is_empty(),
                _ => true,
            };
            let mut on = spec.views.contains(kind);
            let response = ui
                .add_enabled(applies, egui::Checkbox::new(&mut on, names::view(kind)))
                .on_hover_text(names::view_description(kind))
                .on_disabled_hover_text(if kind == ViewKind::Compare {
                    tr!("views.compare_unavailable")
                } else {
                    tr!("views.field_unavailable")
                });
            if response.changed() {
                let mut views: ViewSet = spec.views;
                if on {
                    views.insert(kind);
                } else {
                    views.remove(kind);
                }
                let mut edited = spec.clone();
                edited.views = views;
                commands.push(Command::Edit(Box::new(edited)));
            }
        }
    });
    ui.horizontal_wrapped(|ui| {
        ui.separator();
        let mut notes = spec.notes;
        if ui
            .checkbox(&mut notes, tr!("views.notes"))
            .on_hover_text(tr!("views.notes.hint"))
            .changed()
        {
            let mut edited = spec.clone();
            edited.notes = notes;
            commands.push(Command::Edit(Box::new(edited)));
        }
    });
    ui.add_space(2.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area() -> egui::Rect {
        egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(900.0, 700.0))
    }

    #[test]
    fn tiles_do_not_overlap_and_stay_inside() {
        let all: Vec<ViewKind> = ViewKind::ALL.to_vec();
        for n in 1..=all.len() {
            let rects = tile_rects(&all[..n], area());
            assert_eq!(rects.len(), n);
            for (i, (_, a)) in rects.iter().enumerate() {
                assert!(area().expand(0.5).contains_rect(*a), "{a:?}");
                for (_, b) in &rects[i + 1..] {
                    assert!(!a.shrink(0.5).intersects(*b), "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn the_loss_curves_are_a_band_at_the_bottom_under_the_plots() {
        let rects = tile_rects(
            &[ViewKind::Layers, ViewKind::Density, ViewKind::Loss],
            area(),
        );
        let find = |k| {
            rects
                .iter()
                .find(|(v, _)| *v == k)
                .map(|(_, r)| *r)
                .unwrap()
        };
        let loss = find(ViewKind::Loss);
        assert_eq!((loss.width(), loss.bottom()), (900.0, 700.0));
        let (layers, density) = (find(ViewKind::Layers), find(ViewKind::Density));
        assert_eq!(layers.size(), density.size());
        assert!(layers.bottom() < loss.top() && layers.top() == density.top());
    }
}
