//! The central area: a toolbar of view toggles, and the views shown, tiled. One file per
//! view; each draws from the workspace and its first run's latest pictures and pushes
//! [`Command`]s, like every panel.
//!
//! - [`samples`]: the flow's samples coloured by where they started, over the target
//! - [`layers`]: the flow layer by layer (depth scrubber, warped grid, p_i, log-det map)
//! - [`density`]: the learned density beside the target's
//! - [`field`]: a CNF's vector field and trajectories
//! - [`loss`]: the loss curves (egui_plot)

pub mod density;
pub mod field;
pub mod layers;
pub mod loss;
pub mod samples;

use super::{Panel, PanelContext};
use crate::lab::views::{Pictures, ViewKind, ViewSet};
use crate::lab::{Command, Run, Workspace};

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
                ui.heading("No view is shown: switch one on above.");
            });
            return;
        }
        let area = ui.available_rect_before_wrap();
        let (columns, rows) = grid_shape(shown.len(), area.width() / area.height().max(1.0));
        let tile = egui::vec2(
            (area.width() - GAP * (columns - 1) as f32) / columns as f32,
            (area.height() - GAP * (rows - 1) as f32) / rows as f32,
        );
        for (i, kind) in shown.into_iter().enumerate() {
            let (column, row) = (i % columns, i / columns);
            let min = area.min
                + egui::vec2(
                    column as f32 * (tile.x + GAP),
                    row as f32 * (tile.y + GAP),
                );
            let rect = egui::Rect::from_min_size(min, tile);
            let mut child = ui.new_child(
                egui::UiBuilder::new()
                    .max_rect(rect)
                    .id_salt(kind.name())
                    .layout(egui::Layout::top_down(egui::Align::Min)),
            );
            child.set_clip_rect(rect);
            tile_ui(&mut child, kind.info().title, |ui| match kind {
                ViewKind::Samples => self.samples.ui(ui, &view),
                ViewKind::Layers => self.layers.ui(ui, &view, ctx.commands),
                ViewKind::Density => self.density.ui(ui, &view),
                ViewKind::Field => self.field.ui(ui, &view),
                ViewKind::Loss => self.loss.ui(ui, &view),
            });
        }
        ui.advance_cursor_after_rect(area);
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

/// Columns and rows for `n` tiles in an area `aspect` times wider than high: the layout whose
/// tiles are closest to square.
pub fn grid_shape(n: usize, aspect: f32) -> (usize, usize) {
    let n = n.max(1);
    (1..=n)
        .map(|columns| (columns, n.div_ceil(columns)))
        .min_by(|&(c1, r1), &(c2, r2)| {
            let badness = |c: usize, r: usize| {
                let tile_aspect = aspect * r as f32 / c as f32;
                // Empty cells waste space too.
                tile_aspect.ln().abs() + 0.3 * (c * r - n) as f32
            };
            badness(c1, r1).total_cmp(&badness(c2, r2))
        })
        .unwrap_or((1, 1))
}

/// A checkbox per view; the vector field only for CNFs.
fn toggles_ui(ui: &mut egui::Ui, workspace: &Workspace, commands: &mut Vec<Command>) {
    let spec = workspace.spec();
    ui.horizontal_wrapped(|ui| {
        ui.label(egui::RichText::new("Views:").strong());
        for kind in ViewKind::ALL {
            let info = kind.info();
            let applies = kind != ViewKind::Field || spec.flow == crate::flows::Family::Cnf;
            let mut on = spec.views.contains(kind);
            let hover = if applies {
                info.description.to_owned()
            } else {
                format!(
                    "{} — only continuous flows have a vector field",
                    info.description
                )
            };
            let response = ui
                .add_enabled(applies, egui::Checkbox::new(&mut on, info.title))
                .on_hover_text(hover)
                .on_disabled_hover_text("Only a continuous flow (CNF) has a vector field");
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
    ui.add_space(2.0);
}

#[cfg(test)]
mod tests {
    use super::grid_shape;

    #[test]
    fn tiles_stay_near_square() {
        assert_eq!(grid_shape(1, 1.6), (1, 1));
        assert_eq!(grid_shape(2, 1.6), (2, 1));
        assert_eq!(grid_shape(4, 1.6), (2, 2));
        assert_eq!(grid_shape(5, 1.6), (3, 2));
        assert_eq!(grid_shape(3, 0.5), (1, 3));
    }
}
