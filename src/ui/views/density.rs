//! The learned density beside the target's, on one colour scale (the target's maximum at the
//! top), so "where is the flow still wrong" is read off at a glance; the held-out NLL and,
//! where the target's normaliser is known, the KL divergence underneath.

use super::ViewContext;
use crate::tr;
use crate::ui::plot::{CachedTexture, Canvas, MapColor as _, color_bar, color_image};
use crate::viz::density::{DYNAMIC_RANGE_NATS, DensityGrid, Scale, colormap};

/// The density view.
#[derive(Default)]
pub struct DensityView {
    linear: bool,
    learned: CachedTexture,
    target: CachedTexture,
}

impl DensityView {
    /// Draws the view.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        view: &ViewContext<'_>,
        commands: &mut Vec<crate::lab::Command>,
    ) {
        let scale = if self.linear {
            Scale::Linear
        } else {
            Scale::Log
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("density.colour_by"));
            ui.radio_value(&mut self.linear, false, "log p(x)")
                .on_hover_text(tr!("density.log.hint"));
            ui.radio_value(&mut self.linear, true, "p(x)")
                .on_hover_text(tr!("density.linear.hint"));
        });
        let report = view.run.and_then(|r| r.latest());
        let mut scores = Vec::new();
        if let Some(nll) = report.and_then(|r| r.test_nll) {
            scores.push(tr!("density.nll", nll = format!("{nll:.3}")));
        }
        if let Some(kl) = report.and_then(|r| r.kl) {
            scores.push(tr!("density.kl", kl = format!("{kl:.3}")));
        }
        if let Some(step) = report.map(|r| r.scored_at_step) {
            scores.push(tr!("density.at_step", step = step));
        }
        let target = view.workspace.target();
        let target_grid = target.and_then(|t| t.heat_map.as_ref());
        let learned = view.pictures.and_then(|p| {
            let n = p.resolution;
            (n > 0 && p.density.len() == n * n)
                .then(|| DensityGrid::from_values(p.view, n, n, p.density.clone()))
        });
        // One scale for both: the target's maximum where it has a density, else the flow's.
        let high = target_grid
            .and_then(DensityGrid::max_finite)
            .or_else(|| learned.as_ref().and_then(DensityGrid::max_finite))
            .unwrap_or(0.0);
        let footer = 22.0;
        let size = ui.available_size() - egui::vec2(0.0, footer);
        // Side by side in a wide tile, one above the other in a tall one.
        let stacked = size.x < 1.2 * size.y;
        let layout = if stacked {
            egui::Layout::top_down(egui::Align::Min)
        } else {
            egui::Layout::left_to_right(egui::Align::Min)
        };
        let half = if stacked {
            egui::vec2(size.x, (size.y - 6.0) / 2.0)
        } else {
            egui::vec2((size.x - 6.0) / 2.0, size.y)
        };
        let version = view.run.map_or(0, |r| r.pictures_version()) * 2 + u64::from(self.linear);
        let target_version = target.map_or(0, |t| t.version) * 2 + u64::from(self.linear);
        ui.allocate_ui_with_layout(size, layout, |ui| {
            let (canvas, response) =
                Canvas::new(ui, half, view.workspace.view(), tr!("density.learned_plot"));
            if let Some(grid) = &learned {
                heat_ui(
                    &canvas,
                    &mut self.learned,
                    "learned density", // i18n: a texture id
                    version,
                    grid,
                    high,
                    scale,
                );
            }
            canvas.axes();
            let solver = view.run.map(|r| &r.spec().flow).filter(|c| {
                c.family == crate::flows::Family::Cnf
                    && c.cnf.solver == crate::flows::cnf::Solver::DormandPrince
            });
            canvas.caption(&[match (&learned, solver) {
                (None, _) => tr!("density.learned_computing").to_owned(),
                (Some(_), Some(c)) => tr!(
                    "density.learned_by_solver",
                    rtol = format!("{:.0e}", c.cnf.rtol),
                    atol = format!("{:.0e}", c.cnf.atol)
                ),
                (Some(_), None) => tr!("density.learned").to_owned(),
            }]);
            super::probe_ui(&response, &canvas, view.workspace, commands);

            let (canvas, response) =
                Canvas::with_color_bar(ui, half, view.workspace.view(), tr!("density.target_plot"));
            match (target, target_grid) {
                (Some(_), Some(grid)) => {
                    let name = "target density"; // i18n: a texture id
                    heat_ui(
                        &canvas,
                        &mut self.target,
                        name,
                        target_version,
                        grid,
                        high,
                        scale,
                    );
                    canvas.axes();
                    canvas.caption(&[tr!("density.target").to_owned()]);
                }
                (Some(target), None) => {
                    canvas.dots(&target.samples, |_| super::samples::TARGET_SAMPLE_COLOR);
                    canvas.axes();
                    canvas.caption(&[tr!("density.target_samples_only").to_owned()]);
                }
                _ => canvas.axes(),
            }
            let (low, top) = match scale {
                Scale::Log => (
                    tr!("density.bar_low", nats = DYNAMIC_RANGE_NATS),
                    tr!("density.bar_max_log").to_owned(),
                ),
                Scale::Linear => ("0".to_owned(), tr!("density.bar_max").to_owned()),
            };
            color_bar(
                &canvas.painter,
                canvas.screen,
                |t| colormap(t).map_color(),
                &low,
                &top,
            );
            super::probe_ui(&response, &canvas, view.workspace, commands);
        });
        ui.label(
            egui::RichText::new(if scores.is_empty() {
                tr!("density.measuring").to_owned()
            } else {
                scores.join(tr!("density.score_separator"))
            })
            .size(14.0),
        );
    }
}

/// Draws `grid` on `canvas` on the colour scale topping at `high`, through `cache`.
fn heat_ui(
    canvas: &Canvas,
    cache: &mut CachedTexture,
    name: &str,
    version: u64,
    grid: &DensityGrid,
    high: f32,
    scale: Scale,
) {
    let texture = cache.get(canvas.painter.ctx(), name, version, || {
        Some(color_image(
            grid.width,
            grid.height,
            &grid.colors_on(high, scale),
        ))
    });
    if let Some(texture) = texture {
        canvas.image(texture, grid.view);
    }
}
