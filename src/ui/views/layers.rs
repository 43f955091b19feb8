//! Layer by layer: the flow as the composition it is. A depth scrubber `0…K` (time `0…T` for
//! a CNF) with play and loop; the particles after that many layers, interpolated smoothly
//! between whole layers; the base space's grid lines as the flow warps them; and underneath
//! either the density `p_i` of the points after `i` layers or layer `i`'s `log|det J|`.

use egui::{Color32, Stroke};

use super::ViewContext;
use crate::lab::Command;
use crate::lab::views::{GRID_LINE_POINTS, Pictures};
use crate::tr;
use crate::ui::plot::{CachedTexture, Canvas, MapColor as _, color_bar, color_image};
use crate::viz::base_color;
use crate::viz::density::{DYNAMIC_RANGE_NATS, DensityGrid, Scale, colormap, diverging};

/// Seconds the animation spends on one layer.
const SECONDS_PER_LAYER: f32 = 0.6;

/// What is drawn under the particles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Background {
    /// `log p_i` of the points after `i` layers.
    #[default]
    Density,
    /// Layer `i`'s `log|det ∂f_i/∂z|`, where its outputs land.
    LogDet,
    /// Nothing.
    Plain,
}

/// The layer view.
#[derive(Default)]
pub struct LayersView {
    background: Background,
    show_grid: bool,
    show_particles: bool,
    initialised: bool,
    heat: CachedTexture,
    /// The particles' colours, for the trace they were computed from.
    colors: (u64, Vec<Color32>),
    points: Vec<[f32; 2]>,
}

impl LayersView {
    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &ViewContext<'_>, commands: &mut Vec<Command>) {
        if !self.initialised {
            self.initialised = true;
            self.show_grid = true;
            self.show_particles = true;
        }
        let workspace = view.workspace;
        let layers = workspace.layer_count();
        let mut depth = workspace.depth();
        let animating = workspace.spec().animate;
        if animating {
            animate(ui, &mut depth, layers, commands);
        }
        self.controls_ui(
            ui,
            workspace.spec(),
            &mut depth,
            layers,
            view.pictures,
            commands,
        );

        let (canvas, _) = Canvas::with_color_bar(
            ui,
            ui.available_size(),
            workspace.view(),
            tr!("layers.plot"),
        );
        let Some(pictures) = view.pictures else {
            canvas.axes();
            canvas.caption(&[tr!("layers.computing").to_owned()]);
            return;
        };
        let version = view.run.map_or(0, |r| r.pictures_version());
        self.background_ui(&canvas, ui.ctx(), pictures, version);
        canvas.axes();
        let depth = depth.clamp(0.0, pictures.layers as f32);
        self.interpolate(pictures, depth);
        let particles = pictures.particles.min(self.points.len());
        if self.show_grid {
            grid_ui(&canvas, &self.points[particles..], pictures.grid_lines);
        }
        if self.show_particles {
            self.ensure_colors(pictures, version);
            let colors = &self.colors.1;
            canvas.dots(&self.points[..particles], |i| {
                colors.get(i).copied().unwrap_or(Color32::WHITE)
            });
        }
        canvas.caption(&caption(pictures, depth));
        if self.show_particles {
            super::samples::wheel_legend(&canvas);
        }
    }

    fn controls_ui(
        &mut self,
        ui: &mut egui::Ui,
        spec: &crate::lab::Spec,
        depth: &mut f32,
        layers: usize,
        pictures: Option<&Pictures>,
        commands: &mut Vec<Command>,
    ) {
        ui.horizontal_wrapped(|ui| {
            let label = if spec.animate {
                tr!("layers.stop")
            } else {
                tr!("layers.play")
            };
            if ui
                .button(label)
                .on_hover_text(tr!("layers.play.hint"))
                .clicked()
            {
                let mut edited = spec.clone();
                edited.animate = !spec.animate;
                edited.depth = Some(if spec.animate { depth.round() } else { *depth });
                commands.push(Command::Edit(Box::new(edited)));
            }
            let is_cnf = pictures.is_some_and(|p| !p.times.is_empty());
            let text = if is_cnf {
                tr!("layers.time_step")
            } else {
                tr!("layers.depth")
            };
            let slider = egui::Slider::new(depth, 0.0..=layers as f32)
                .text(text)
                // Why a formatter and not `fixed_decimals`: that rounds the value itself, and a
                // rounded depth reads as a user's change, which stops the animation.
                .custom_formatter(|v, _| format!("{v:.2}"));
            let response = ui.add(slider);
            if response.changed() {
                if spec.animate {
                    let mut edited = spec.clone();
                    edited.animate = false;
                    commands.push(Command::Edit(Box::new(edited)));
                }
                commands.push(Command::SetDepth {
                    depth: Some(*depth),
                    settled: false,
                });
            }
            if response.drag_stopped() || (response.changed() && !response.dragged()) {
                commands.push(Command::SetDepth {
                    depth: Some(depth.round()),
                    settled: true,
                });
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("layers.under"));
            ui.radio_value(
                &mut self.background,
                Background::Density,
                tr!("layers.under.density"),
            )
            .on_hover_text(tr!("layers.under.density.hint"));
            ui.radio_value(&mut self.background, Background::LogDet, "log|det Jᵢ|") // i18n: mathematics
                .on_hover_text(tr!("layers.under.log_det.hint"));
            ui.radio_value(
                &mut self.background,
                Background::Plain,
                tr!("layers.under.nothing"),
            );
            ui.checkbox(&mut self.show_grid, tr!("layers.grid"));
            ui.checkbox(&mut self.show_particles, tr!("layers.particles"));
        });
    }

    fn background_ui(
        &mut self,
        canvas: &Canvas,
        ctx: &egui::Context,
        pictures: &Pictures,
        version: u64,
    ) {
        let n = pictures.resolution;
        let (values, is_log_det) = match self.background {
            Background::Density => (&pictures.depth_density, false),
            Background::LogDet => (&pictures.log_det, true),
            Background::Plain => return,
        };
        if n == 0 || values.len() != n * n {
            if is_log_det && pictures.depth == Some(0) {
                canvas.caption(&[
                    String::new(),
                    String::new(),
                    tr!("layers.no_log_det").to_owned(),
                ]);
            }
            return;
        }
        let key = version * 4 + self.background as u64;
        let grid = DensityGrid::from_values(pictures.view, n, n, values.clone());
        let range = if is_log_det {
            symmetric_range(values)
        } else {
            0.0
        };
        let texture = self.heat.get(ctx, "layer-picture", key, || {
            let colors: Vec<[u8; 4]> = if is_log_det {
                values.iter().map(|&v| diverging(v / range)).collect()
            } else {
                match grid.max_finite() {
                    Some(high) => grid.colors_on(high, Scale::Log),
                    None => vec![colormap(0.0); n * n],
                }
            };
            Some(color_image(n, n, &colors))
        });
        if let Some(texture) = texture {
            canvas.image(texture, pictures.view);
        }
        if is_log_det {
            color_bar(
                &canvas.painter,
                canvas.screen,
                |t| diverging(2.0 * t - 1.0).map_color(),
                &format!("{:+.2}", -range),
                &format!("{:+.2}", range),
            );
        } else {
            color_bar(
                &canvas.painter,
                canvas.screen,
                |t| colormap(t).map_color(),
                &tr!("density.bar_low", nats = DYNAMIC_RANGE_NATS),
                tr!("layers.bar_max_log"),
            );
        }
    }

    /// The traced points at fractional `depth`, linearly between the whole layers around it.
    fn interpolate(&mut self, pictures: &Pictures, depth: f32) {
        let below = depth.floor() as usize;
        let above = (below + 1).min(pictures.layers);
        let f = depth - below as f32;
        let (a, b) = (pictures.trace_at(below), pictures.trace_at(above));
        self.points.clear();
        if a.len() != b.len() {
            return;
        }
        self.points.extend(
            a.chunks_exact(2)
                .zip(b.chunks_exact(2))
                .map(|(p, q)| [p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])]),
        );
    }

    fn ensure_colors(&mut self, pictures: &Pictures, version: u64) {
        if self.colors.0 == version && !self.colors.1.is_empty() {
            return;
        }
        let base = pictures.trace_at(0);
        let colors = base
            .chunks_exact(2)
            .take(pictures.particles)
            .map(|z| {
                let [r, g, b] = base_color([z[0], z[1]]);
                Color32::from_rgba_unmultiplied(r, g, b, 200)
            })
            .collect();
        self.colors = (version, colors);
    }
}

/// Advances the animation by this frame's time, looping at the last layer.
fn animate(ui: &egui::Ui, depth: &mut f32, layers: usize, commands: &mut Vec<Command>) {
    let dt = ui.input(|i| i.stable_dt).min(0.1);
    *depth += dt / SECONDS_PER_LAYER;
    if *depth > layers as f32 {
        *depth = 0.0;
    }
    commands.push(Command::SetDepth {
        depth: Some(*depth),
        settled: false,
    });
    ui.ctx().request_repaint();
}

/// The largest absolute finite value, at least 0.1 (a flat map at 0 reads as neutral grey).
fn symmetric_range(values: &[f32]) -> f32 {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.1f32, |m, v| m.max(v.abs()))
}

/// The warped grid: `lines` vertical then `lines` horizontal polylines.
fn grid_ui(canvas: &Canvas, points: &[[f32; 2]], lines: usize) {
    let stroke = Stroke::new(1.0, Color32::from_white_alpha(110));
    for line in points.chunks_exact(GRID_LINE_POINTS).take(2 * lines) {
        canvas.line(line.iter().copied(), stroke);
    }
}

/// What the scrubbed depth is: "depth 3 of 8: affine coupling 3: x₁ given x₂".
pub fn caption(pictures: &Pictures, depth: f32) -> Vec<String> {
    let k = pictures.layers;
    let whole = depth.round() as usize;
    let what = if whole == 0 {
        tr!("layers.base").to_owned()
    } else {
        pictures.labels.get(whole - 1).cloned().unwrap_or_default()
    };
    let mut lines = vec![tr!(
        "layers.depth_of",
        depth = format!("{depth:.2}"),
        layers = k,
        what = what
    )];
    if let (Some(&t), Some(&end)) = (pictures.times.get(whole), pictures.times.last()) {
        lines.push(tr!(
            "layers.time_of",
            time = format!("{t:.2}"),
            end = format!("{end:.2}")
        ));
    }
    if pictures.depth.is_some_and(|d| d != whole) {
        lines.push(tr!("layers.catching_up").to_owned());
    }
    lines
}
