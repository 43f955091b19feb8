//! Samples: base draws pushed through the flow, each coloured by the direction it started in
//! (the base-space colour wheel of `viz::trace`), over the target's density or samples. Where
//! a colour ends up shows how the flow stretched and folded the Gaussian.

use egui::Color32;

use super::ViewContext;
use crate::tr;
use crate::ui::plot::{CachedTexture, Canvas, color_image};
use crate::viz::base_color;

/// Colour of the target's samples when they are drawn under the flow's.
pub const TARGET_SAMPLE_COLOR: Color32 = Color32::from_rgba_premultiplied(150, 150, 150, 150);
/// Colour of the flow's samples before their starting points are known.
pub const MODEL_SAMPLE_COLOR: Color32 = Color32::from_rgb(255, 150, 40);

/// What is drawn under the flow's samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Under {
    /// The target's log-density heat map (where it has one).
    #[default]
    Density,
    /// The target's samples.
    Samples,
}

/// The samples view.
#[derive(Default)]
pub struct SamplesView {
    under: Under,
    heat: CachedTexture,
    colors: Vec<Color32>,
    editor: super::editor::TargetEditor,
}

impl SamplesView {
    /// Draws the view.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        view: &ViewContext<'_>,
        commands: &mut Vec<crate::lab::Command>,
    ) {
        let target = view.workspace.target();
        let has_density = target.is_some_and(|t| t.heat_map.is_some());
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("layers.under"));
            ui.add_enabled_ui(has_density, |ui| {
                ui.radio_value(
                    &mut self.under,
                    Under::Density,
                    tr!("samples.target_density"),
                );
            });
            ui.radio_value(
                &mut self.under,
                Under::Samples,
                tr!("samples.target_samples"),
            );
        });
        let source = &view.workspace.spec().target;
        self.editor.toolbar_ui(ui, source, commands);
        let under = if has_density {
            self.under
        } else {
            Under::Samples
        };
        let (canvas, response) = Canvas::new(
            ui,
            ui.available_size(),
            view.workspace.view(),
            tr!("samples.plot"),
        );
        if let Some(target) = target {
            match (under, &target.heat_map) {
                (Under::Density, Some(heat)) => {
                    let texture = self
                        .heat
                        .get(ui.ctx(), "target density", target.version, || {
                            Some(color_image(heat.width, heat.height, &heat.colors()))
                        });
                    if let Some(texture) = texture {
                        canvas.image(texture, heat.view);
                    }
                }
                _ => canvas.dots(&target.samples, |_| TARGET_SAMPLE_COLOR),
            }
        }
        canvas.axes();
        let Some(run) = view.run else {
            self.editor.canvas_ui(&response, &canvas, source, commands);
            return;
        };
        let samples = run.samples();
        let origins = run.origins();
        if origins.len() == samples.len() {
            self.colors.clear();
            self.colors.extend(origins.iter().map(|&z| {
                let [r, g, b] = base_color(z);
                Color32::from_rgb(r, g, b)
            }));
            canvas.dots(samples, |i| self.colors[i]);
        } else {
            canvas.dots(samples, |_| MODEL_SAMPLE_COLOR);
        }
        canvas.caption(&[tr!("samples.count", count = samples.len())]);
        if !self.editor.canvas_ui(&response, &canvas, source, commands) {
            super::probe_ui(&response, &canvas, view.workspace, commands);
        }
        wheel_legend(&canvas);
    }
}

/// The colour wheel as a small legend in the bottom-left corner: the base space's directions.
pub fn wheel_legend(canvas: &Canvas) {
    let radius = (0.07 * canvas.screen.width().min(canvas.screen.height())).clamp(10.0, 22.0);
    let centre = canvas.screen.left_bottom() + egui::vec2(radius + 24.0, -(radius + 34.0));
    let mut mesh = egui::Mesh::default();
    const SEGMENTS: u32 = 48;
    mesh.colored_vertex(centre, Color32::from_gray(40));
    for k in 0..=SEGMENTS {
        let angle = std::f32::consts::TAU * k as f32 / SEGMENTS as f32;
        let direction = [angle.cos(), angle.sin()];
        let [r, g, b] = base_color(direction);
        // Screen y points down: flip so the legend matches the plot's orientation.
        let point = centre + radius * egui::vec2(direction[0], -direction[1]);
        mesh.colored_vertex(point, Color32::from_rgb(r, g, b));
        if k > 0 {
            mesh.add_triangle(0, k, k + 1);
        }
    }
    canvas.painter.add(egui::Shape::mesh(mesh));
    canvas.painter.text(
        centre + egui::vec2(0.0, radius + 3.0),
        egui::Align2::CENTER_TOP,
        tr!("samples.start_direction"),
        egui::FontId::proportional(11.0),
        Color32::WHITE,
    );
}
