//! Drawing the plane: a square [`Canvas`] with data coordinates, axes, heat-map images,
//! sample dots as one mesh, colour bars. Every view draws with these.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, TextureOptions, Vec2, pos2};

use crate::targets::ViewRect;
use crate::viz::density::colormap;

/// Colour of the target's samples.
pub const TARGET_SAMPLE_COLOR: Color32 = Color32::from_rgba_premultiplied(200, 230, 255, 170);
/// Colour of the flow's samples.
pub const MODEL_SAMPLE_COLOR: Color32 = Color32::from_rgb(255, 150, 40);

/// Radius of a sample dot, in points.
const DOT_RADIUS: f32 = 2.2;

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

/// A texture made from a picture, re-uploaded only when its key changes.
#[derive(Default)]
pub struct CachedTexture {
    texture: Option<(u64, egui::TextureHandle)>,
}

impl CachedTexture {
    /// The texture for `key`, made by `make` (`None`: nothing to show) when the key changed.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: u64,
        make: impl FnOnce() -> Option<egui::ColorImage>,
    ) -> Option<&egui::TextureHandle> {
        if !matches!(&self.texture, Some((k, _)) if *k == key) {
            self.texture =
                make().map(|image| (key, ctx.load_texture(name, image, TextureOptions::LINEAR)));
        }
        self.texture.as_ref().map(|(_, texture)| texture)
    }
}

/// An image of `width × height` RGBA colours.
pub fn color_image(width: usize, height: usize, colors: &[[u8; 4]]) -> egui::ColorImage {
    let pixels = colors.iter().map(|&c| c.map_color()).collect();
    egui::ColorImage::new([width, height], pixels)
}

/// A square plot of the plane: where it is on screen and how data maps to it.
pub struct Canvas {
    /// Paints clipped to the plot.
    pub painter: egui::Painter,
    /// The plot's screen rectangle.
    pub screen: Rect,
    /// Data → screen.
    pub transform: ScreenFromData,
}

impl Canvas {
    /// Allocates `size` in `ui` for a plot of `view` (named `label` for screen readers and
    /// tests), fills it with the colour map's background, and draws the axes.
    pub fn new(
        ui: &mut egui::Ui,
        size: Vec2,
        view: ViewRect,
        label: &str,
    ) -> (Self, egui::Response) {
        Self::with_margin(ui, size, view, label, 0.0)
    }

    /// [`Canvas::new`], keeping a strip of the plot's right side free for a [`color_bar`].
    pub fn with_color_bar(
        ui: &mut egui::Ui,
        size: Vec2,
        view: ViewRect,
        label: &str,
    ) -> (Self, egui::Response) {
        Self::with_margin(ui, size, view, label, COLOR_BAR_STRIP)
    }

    fn with_margin(
        ui: &mut egui::Ui,
        size: Vec2,
        view: ViewRect,
        label: &str,
        right: f32,
    ) -> (Self, egui::Response) {
        let size = size.max(Vec2::splat(16.0));
        let (response, painter) = ui.allocate_painter(size, Sense::click_and_drag());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, label));
        let screen = response.rect;
        let mut plot = screen.shrink(4.0);
        plot.max.x -= right;
        let transform = ScreenFromData::fit(view, plot);
        painter.rect_filled(screen, 0.0, colormap(0.0).map_color());
        (
            Self {
                painter,
                screen,
                transform,
            },
            response,
        )
    }

    /// Draws `texture` over the data rectangle `view`.
    pub fn image(&self, texture: &egui::TextureHandle, view: ViewRect) {
        let rect = self.transform.transform_rect(view);
        let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
        self.painter.image(texture.id(), rect, uv, Color32::WHITE);
    }

    /// Grid lines and tick labels.
    pub fn axes(&self) {
        axes_ui(&self.painter, self.screen, &self.transform);
    }

    /// Dots at data points, coloured by `color(i)`.
    pub fn dots(&self, points: &[[f32; 2]], color: impl Fn(usize) -> Color32) {
        self.painter
            .add(dots_mesh(points, &self.transform, self.screen, color));
    }

    /// A line through data points.
    pub fn line(&self, points: impl IntoIterator<Item = [f32; 2]>, stroke: Stroke) {
        let points: Vec<Pos2> = points
            .into_iter()
            .map(|p| self.transform.transform(p))
            .collect();
        self.painter.add(egui::Shape::line(points, stroke));
    }

    /// A caption at the plot's top-left corner, on a dark band so it reads over any heat map.
    pub fn caption(&self, lines: &[String]) {
        let font = FontId::proportional(CAPTION_SIZE);
        let mut y = self.screen.top() + 6.0;
        // Wrapped short of the colour bar's strip.
        let wrap = (self.screen.width() - 12.0 - COLOR_BAR_STRIP).max(40.0);
        for line in lines.iter().filter(|line| !line.is_empty()) {
            let galley = self
                .painter
                .layout(line.clone(), font.clone(), Color32::WHITE, wrap);
            let rect =
                Rect::from_min_size(pos2(self.screen.left() + 6.0, y), galley.size()).expand(2.0);
            self.painter
                .rect_filled(rect, 2.0, Color32::from_black_alpha(150));
            self.painter
                .galley(rect.min + Vec2::splat(2.0), galley, Color32::WHITE);
            y += rect.height() + 2.0;
        }
    }
}

/// Width kept free for a colour bar and its labels, in points.
const COLOR_BAR_STRIP: f32 = 34.0;

/// Text size of captions over plots: legible on a projector.
pub const CAPTION_SIZE: f32 = 14.0;

/// A vertical colour bar at the right edge of `screen`: `color(t)` for `t` from 0 (bottom) to
/// 1 (top), labelled `low` and `high`.
pub fn color_bar(
    painter: &egui::Painter,
    screen: Rect,
    color: impl Fn(f32) -> Color32,
    low: &str,
    high: &str,
) {
    const STEPS: usize = 32;
    let bar = Rect::from_min_size(
        pos2(screen.right() - 24.0, screen.top() + 40.0),
        Vec2::new(14.0, (screen.height() - 80.0).max(20.0)),
    );
    let mut mesh = egui::Mesh::default();
    for k in 0..=STEPS {
        let t = k as f32 / STEPS as f32;
        let y = bar.bottom() - t * bar.height();
        let c = color(t);
        mesh.colored_vertex(pos2(bar.left(), y), c);
        mesh.colored_vertex(pos2(bar.right(), y), c);
        if k > 0 {
            let i = 2 * k as u32;
            mesh.add_triangle(i - 2, i - 1, i);
            mesh.add_triangle(i - 1, i, i + 1);
        }
    }
    painter.add(egui::Shape::mesh(mesh));
    painter.rect_stroke(
        bar,
        0.0,
        Stroke::new(1.0, Color32::from_white_alpha(120)),
        egui::StrokeKind::Outside,
    );
    let font = FontId::proportional(12.0);
    for (text, pos, align) in [
        (
            high,
            bar.center_top() - Vec2::new(0.0, 3.0),
            Align2::RIGHT_BOTTOM,
        ),
        (
            low,
            bar.center_bottom() + Vec2::new(0.0, 3.0),
            Align2::RIGHT_TOP,
        ),
    ] {
        let galley = painter.layout_no_wrap(text.to_owned(), font.clone(), Color32::WHITE);
        let rect = align.anchor_size(pos + Vec2::new(10.0, 0.0), galley.size());
        painter.rect_filled(rect.expand(2.0), 2.0, Color32::from_black_alpha(150));
        painter.galley(rect.min, galley, Color32::WHITE);
    }
}

/// Above this many points, dots are drawn as squares instead of hexagons.
pub const MANY_DOTS: usize = 4000;

/// The samples as one mesh of small polygons instead of a circle shape per point. Why: 10,000
/// anti-aliased circles cost egui's tessellator many milliseconds per frame; a hexagon (7
/// vertices, 6 triangles) at 2.2 points reads as the same round dot, and above [`MANY_DOTS`]
/// points, where dots overlap anyway, a square (4 vertices, 2 triangles) halves the cost again.
pub fn dots_mesh(
    points: &[[f32; 2]],
    screen_from_data: &ScreenFromData,
    clip: Rect,
    color: impl Fn(usize) -> Color32,
) -> egui::Shape {
    let corners: Vec<Vec2> = if points.len() > MANY_DOTS {
        let r = 0.8 * DOT_RADIUS;
        vec![
            Vec2::new(-r, -r),
            Vec2::new(r, -r),
            Vec2::new(r, r),
            Vec2::new(-r, r),
        ]
    } else {
        (0..6)
            .map(|k| {
                let angle = std::f32::consts::TAU * k as f32 / 6.0;
                DOT_RADIUS * Vec2::new(angle.cos(), angle.sin())
            })
            .collect()
    };
    let n = corners.len() as u32;
    let mut mesh = egui::Mesh::default();
    mesh.reserve_vertices(points.len() * corners.len());
    mesh.reserve_triangles(points.len() * (corners.len() - 2));
    for (i, &point) in points.iter().enumerate() {
        let centre = screen_from_data.transform(point);
        if !clip.contains(centre) {
            continue;
        }
        let color = color(i);
        let first = mesh.vertices.len() as u32;
        for &corner in &corners {
            mesh.colored_vertex(centre + corner, color);
        }
        // A fan from the first corner.
        for k in 1..n - 1 {
            mesh.add_triangle(first, first + k, first + k + 1);
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

/// `[r, g, b, a]` → [`Color32`].
pub trait MapColor {
    /// The colour.
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
