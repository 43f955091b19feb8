//! The plot area: a heat map of the target's `log p(x)` under the target's samples and the
//! flow's samples, with axes in data coordinates.
//!
//! Reads the workspace; owns only its GPU texture cache.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, TextureOptions, Vec2, pos2};

use super::{Panel, PanelContext};
use crate::targets::ViewRect;
use crate::viz::density::{DYNAMIC_RANGE_NATS, DensityGrid, colormap};

/// Colour of the target's samples.
pub const TARGET_SAMPLE_COLOR: Color32 = Color32::from_rgba_premultiplied(200, 230, 255, 170);
/// Colour of the flow's samples.
pub const MODEL_SAMPLE_COLOR: Color32 = Color32::from_rgb(255, 150, 40);

/// Radius of a sample dot, in points.
const DOT_RADIUS: f32 = 2.2;

/// What the plot shows this frame.
struct PlotData<'a> {
    /// Shown in the accessibility tree and the legend, e.g. the target's name.
    title: &'a str,
    /// The rectangle of the plane to show (kept square: extra space is added around it).
    view: ViewRect,
    /// The heat map, if one has been computed.
    heat: Option<&'a DensityGrid>,
    /// Changes whenever `heat` changes, so the texture is uploaded once per change.
    heat_version: u64,
    /// Samples of the target.
    target_samples: &'a [[f32; 2]],
    /// Samples of the flow (empty until the trainer reported).
    model_samples: &'a [[f32; 2]],
}

/// Maps data coordinates (`y` up) to screen points (`y` down) with the same scale on both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreenFromData {
    /// Screen points per data unit.
    pub scale: f32,
    /// Data point shown at `screen_centre`.
    pub data_centre: [f32; 2],
    /// Screen position of `data_centre`.
    pub screen_centre: Pos2,
}

impl ScreenFromData {
    /// The largest-scale transform that shows all of `view` inside `screen`, centred.
    pub fn fit(view: ViewRect, screen: Rect) -> Self {
        let span_x = (view.max[0] - view.min[0]).max(f32::EPSILON);
        let span_y = (view.max[1] - view.min[1]).max(f32::EPSILON);
        let scale = (screen.width() / span_x).min(screen.height() / span_y);
        Self {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                1.0
            },
            data_centre: [
                0.5 * (view.min[0] + view.max[0]),
                0.5 * (view.min[1] + view.max[1]),
            ],
            screen_centre: screen.center(),
        }
    }

    /// Screen position of a data point.
    pub fn transform(&self, [x, y]: [f32; 2]) -> Pos2 {
        pos2(
            self.screen_centre.x + (x - self.data_centre[0]) * self.scale,
            self.screen_centre.y - (y - self.data_centre[1]) * self.scale,
        )
    }

    /// Data point under a screen position.
    pub fn inverse(&self, screen: Pos2) -> [f32; 2] {
        [
            self.data_centre[0] + (screen.x - self.screen_centre.x) / self.scale,
            self.data_centre[1] - (screen.y - self.screen_centre.y) / self.scale,
        ]
    }

    /// Screen rectangle of a data rectangle.
    pub fn transform_rect(&self, view: ViewRect) -> Rect {
        Rect::from_two_pos(self.transform(view.min), self.transform(view.max))
    }

    /// Data rectangle of a screen rectangle.
    pub fn inverse_rect(&self, screen: Rect) -> ViewRect {
        let [x0, y1] = self.inverse(screen.min);
        let [x1, y0] = self.inverse(screen.max);
        ViewRect {
            min: [x0, y0],
            max: [x1, y1],
        }
    }
}

/// A "nice" tick spacing (1, 2 or 5 × 10ᵏ) giving about `count` ticks over `span`.
pub fn tick_step(span: f32, count: f32) -> f32 {
    if !(span.is_finite() && span > 0.0 && count > 0.0) {
        return 1.0;
    }
    let raw = span / count;
    let magnitude = 10f32.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let nice = if normalised < 1.5 {
        1.0
    } else if normalised < 3.5 {
        2.0
    } else if normalised < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// The plot panel.
#[derive(Default)]
pub struct PlotPanel {
    heat_texture: Option<(u64, egui::TextureHandle)>,
}

impl Panel for PlotPanel {
    fn name(&self) -> &'static str {
        "plot"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let workspace = ctx.workspace;
        let target = workspace.target();
        let data = PlotData {
            title: &workspace.spec().target,
            view: workspace.view(),
            heat: target.and_then(|t| t.heat_map.as_ref()),
            heat_version: target.map_or(0, |t| t.version),
            target_samples: target.map_or(&[][..], |t| &t.samples),
            model_samples: workspace
                .runs()
                .first()
                .map_or(&[][..], |run| run.samples()),
        };
        self.plot_ui(ui, &data);
    }
}

impl PlotPanel {
    /// Fills the available space with the plot.
    fn plot_ui(&mut self, ui: &mut egui::Ui, data: &PlotData<'_>) -> egui::Response {
        let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::hover());
        let label = format!("Plot of {}", data.title);
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &label));

        let screen = response.rect;
        let screen_from_data = ScreenFromData::fit(data.view, screen.shrink(8.0));
        painter.rect_filled(screen, 0.0, colormap(0.0).map_color());

        if let Some(texture) = self.heat_texture(ui.ctx(), data) {
            let heat_rect =
                screen_from_data.transform_rect(data.heat.map_or(data.view, |h| h.view));
            let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
            painter.image(texture.id(), heat_rect, uv, Color32::WHITE);
        }

        axes_ui(&painter, screen, &screen_from_data);

        painter.add(dots_mesh(
            data.target_samples,
            &screen_from_data,
            screen,
            TARGET_SAMPLE_COLOR,
        ));
        painter.add(dots_mesh(
            data.model_samples,
            &screen_from_data,
            screen,
            MODEL_SAMPLE_COLOR,
        ));

        legend_ui(&painter, screen, data);

        if let Some(hover) = response.hover_pos() {
            let point = screen_from_data.inverse(hover);
            let mut text = format!("x = {:.2}, y = {:.2}", point[0], point[1]);
            if let Some(value) = data.heat.and_then(|heat| heat.value_at(point)) {
                text.push_str(&format!(", log p = {value:.2}"));
            }
            painter.text(
                screen.right_bottom() + Vec2::new(-6.0, -6.0),
                Align2::RIGHT_BOTTOM,
                text,
                FontId::monospace(12.0),
                Color32::WHITE,
            );
        }
        response
    }

    fn heat_texture(
        &mut self,
        ctx: &egui::Context,
        data: &PlotData<'_>,
    ) -> Option<&egui::TextureHandle> {
        let Some(heat) = data.heat else {
            self.heat_texture = None;
            return None;
        };
        let stale = !matches!(&self.heat_texture, Some((generation, _)) if *generation == data.heat_version);
        if stale {
            let pixels = heat
                .colors()
                .into_iter()
                .map(|[r, g, b, a]| Color32::from_rgba_unmultiplied(r, g, b, a))
                .collect();
            let image = egui::ColorImage::new([heat.width, heat.height], pixels);
            let texture = ctx.load_texture("log-density heat map", image, TextureOptions::LINEAR);
            self.heat_texture = Some((data.heat_version, texture));
        }
        self.heat_texture.as_ref().map(|(_, texture)| texture)
    }
}

/// The samples as one mesh of small hexagons instead of a circle shape per point. Why: 3,000
/// anti-aliased circles cost egui's tessellator a few milliseconds per frame; at 1.8 points a
/// hexagon (7 vertices, 6 triangles) reads as the same round dot.
fn dots_mesh(
    points: &[[f32; 2]],
    screen_from_data: &ScreenFromData,
    clip: Rect,
    color: Color32,
) -> egui::Shape {
    const CORNERS: usize = 6;
    let corners: [Vec2; CORNERS] = std::array::from_fn(|k| {
        let angle = std::f32::consts::TAU * k as f32 / CORNERS as f32;
        DOT_RADIUS * Vec2::new(angle.cos(), angle.sin())
    });
    let mut mesh = egui::Mesh::default();
    mesh.reserve_vertices(points.len() * (CORNERS + 1));
    mesh.reserve_triangles(points.len() * CORNERS);
    for &point in points {
        let centre = screen_from_data.transform(point);
        if !clip.contains(centre) {
            continue;
        }
        let first = mesh.vertices.len() as u32;
        mesh.colored_vertex(centre, color);
        for corner in corners {
            mesh.colored_vertex(centre + corner, color);
        }
        for k in 0..CORNERS as u32 {
            mesh.add_triangle(first, first + 1 + k, first + 1 + (k + 1) % CORNERS as u32);
        }
    }
    egui::Shape::mesh(mesh)
}

/// Tick labels closer than this to a corner of the plot are left out.
const LABEL_MARGIN: f32 = 16.0;

/// Grid lines and tick labels at "nice" data coordinates.
fn axes_ui(painter: &egui::Painter, screen: Rect, screen_from_data: &ScreenFromData) {
    let visible = screen_from_data.inverse_rect(screen);
    let step = tick_step(visible.max[0] - visible.min[0], 8.0);
    let line = Stroke::new(1.0, Color32::from_white_alpha(28));
    let axis = Stroke::new(1.0, Color32::from_white_alpha(70));
    let font = FontId::proportional(11.0);
    let text_color = Color32::from_white_alpha(150);
    let ticks = |low: f32, high: f32| {
        let first = (low / step).ceil() as i64;
        let last = (high / step).floor() as i64;
        (first..=last).map(move |k| k as f32 * step)
    };
    for x in ticks(visible.min[0], visible.max[0]) {
        let sx = screen_from_data.transform([x, 0.0]).x;
        painter.vline(sx, screen.y_range(), if x == 0.0 { axis } else { line });
        // Why: the corner belongs to the y labels; a label there would overlap one.
        if sx < screen.left() + LABEL_MARGIN {
            continue;
        }
        painter.text(
            pos2(sx + 2.0, screen.bottom() - 2.0),
            Align2::LEFT_BOTTOM,
            format_tick(x),
            font.clone(),
            text_color,
        );
    }
    for y in ticks(visible.min[1], visible.max[1]) {
        let sy = screen_from_data.transform([0.0, y]).y;
        painter.hline(screen.x_range(), sy, if y == 0.0 { axis } else { line });
        if sy > screen.bottom() - LABEL_MARGIN || sy < screen.top() + LABEL_MARGIN {
            continue;
        }
        painter.text(
            pos2(screen.left() + 2.0, sy - 1.0),
            Align2::LEFT_BOTTOM,
            format_tick(y),
            font.clone(),
            text_color,
        );
    }
}

fn format_tick(value: f32) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    // Why: `-0` would otherwise be printed for the origin.
    if rounded == 0.0 {
        "0".to_owned()
    } else {
        format!("{rounded}")
    }
}

fn legend_ui(painter: &egui::Painter, screen: Rect, data: &PlotData<'_>) {
    let font = FontId::proportional(13.0);
    let mut cursor = screen.left_top() + Vec2::new(10.0, 10.0);
    let mut entry = |color: Color32, text: String| {
        painter.circle_filled(cursor + Vec2::new(4.0, 8.0), 4.0, color);
        painter.text(
            cursor + Vec2::new(14.0, 0.0),
            Align2::LEFT_TOP,
            text,
            font.clone(),
            Color32::WHITE,
        );
        cursor.y += 18.0;
    };
    entry(
        TARGET_SAMPLE_COLOR,
        format!("{}: {} samples", data.title, data.target_samples.len()),
    );
    if !data.model_samples.is_empty() {
        entry(
            MODEL_SAMPLE_COLOR,
            format!("flow: {} samples", data.model_samples.len()),
        );
    }
    if data.heat.is_some() {
        entry(
            colormap(0.8).map_color(),
            format!("heat map: log p(x), {} nats range", DYNAMIC_RANGE_NATS),
        );
    }
}

/// `[r, g, b, a]` → [`Color32`].
trait MapColor {
    fn map_color(self) -> Color32;
}

impl MapColor for [u8; 4] {
    fn map_color(self) -> Color32 {
        Color32::from_rgba_unmultiplied(self[0], self[1], self[2], self[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_from_data_fits_keeps_aspect_and_inverts() {
        let view = ViewRect::square(2.0);
        let screen = Rect::from_min_size(pos2(100.0, 50.0), Vec2::new(400.0, 200.0));
        let t = ScreenFromData::fit(view, screen);
        assert_eq!(t.scale, 50.0);
        assert_eq!(t.transform([0.0, 0.0]), screen.center());
        // y up in data is y down on screen.
        assert_eq!(t.transform([0.0, 2.0]), pos2(300.0, 50.0));
        assert_eq!(t.transform([-2.0, -2.0]), pos2(200.0, 250.0));
        let back = t.inverse(t.transform([1.25, -0.5]));
        assert!((back[0] - 1.25).abs() < 1e-6 && (back[1] + 0.5).abs() < 1e-6);
        let rect = t.transform_rect(view);
        assert_eq!(
            rect,
            Rect::from_min_max(pos2(200.0, 50.0), pos2(400.0, 250.0))
        );
        assert_eq!(t.inverse_rect(rect), view);
    }

    #[test]
    fn degenerate_screens_do_not_produce_nan() {
        let t = ScreenFromData::fit(
            ViewRect::square(1.0),
            Rect::from_min_size(Pos2::ZERO, Vec2::ZERO),
        );
        assert!(t.scale.is_finite() && t.scale > 0.0);
        let t = ScreenFromData::fit(
            ViewRect {
                min: [1.0, 1.0],
                max: [1.0, 1.0],
            },
            Rect::from_min_size(Pos2::ZERO, Vec2::splat(10.0)),
        );
        assert!(t.transform([1.0, 1.0]).x.is_finite());
    }

    #[test]
    fn tick_steps_are_nice() {
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b;
        assert!(close(tick_step(7.0, 8.0), 1.0));
        assert!(close(tick_step(16.0, 8.0), 2.0));
        assert!(close(tick_step(0.35, 8.0), 0.05));
        assert!(close(tick_step(300.0, 8.0), 50.0));
        assert_eq!(tick_step(f32::NAN, 8.0), 1.0);
        assert_eq!(tick_step(0.0, 8.0), 1.0);
    }

    #[test]
    fn ticks_print_without_negative_zero() {
        assert_eq!(format_tick(-0.0), "0");
        assert_eq!(format_tick(-1.0), "-1");
        assert_eq!(format_tick(0.5), "0.5");
    }
}
