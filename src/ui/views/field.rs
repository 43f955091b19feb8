//! A continuous flow's vector field `f(z, t)` at the scrubbed time, as arrows, with the paths
//! the samples took from `t = 0` to there: `dz/dt = f(z, t)` made visible. The solver's count
//! of field evaluations per density evaluation is what a CNF pays for its flexibility.

use egui::{Color32, Stroke};

use super::ViewContext;
use crate::lab::views::FIELD_ARROWS;
use crate::tr;
use crate::ui::plot::Canvas;
use crate::viz::DensityGrid;
use crate::viz::base_color;

/// Paths drawn (of the traced particles).
const PATHS: usize = 300;

/// The vector-field view.
#[derive(Default)]
pub struct FieldView;

impl FieldView {
    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &ViewContext<'_>) {
        let workspace = view.workspace;
        let (canvas, _) = Canvas::new(ui, ui.available_size(), workspace.view(), tr!("field.plot"));
        canvas.axes();
        let Some(pictures) = view.pictures.filter(|p| !p.field.is_empty()) else {
            canvas.caption(&[tr!("field.computing").to_owned()]);
            return;
        };
        let depth = workspace.depth().clamp(0.0, pictures.layers as f32);
        // Paths up to the scrubbed depth, through every whole segment boundary.
        let whole = depth.floor() as usize;
        let particles = pictures.particles.min(PATHS);
        for i in 0..particles {
            let at = |d: usize| {
                let p = pictures.trace_at(d);
                p.get(2 * i..2 * i + 2).map(|p| [p[0], p[1]])
            };
            let mut path: Vec<[f32; 2]> = (0..=whole).filter_map(at).collect();
            if let (Some(a), Some(b)) = (at(whole), at((whole + 1).min(pictures.layers))) {
                let f = depth - whole as f32;
                path.push([a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])]);
            }
            let Some(&start) = path.first() else { continue };
            let [r, g, b] = base_color(start);
            canvas.line(
                path,
                Stroke::new(1.0, Color32::from_rgba_unmultiplied(r, g, b, 150)),
            );
        }
        // Arrows, the longest a cell long.
        let centres = DensityGrid::cell_centres(pictures.view, FIELD_ARROWS, FIELD_ARROWS);
        let longest = pictures
            .field
            .chunks_exact(2)
            .map(|v| v[0].hypot(v[1]))
            .filter(|s| s.is_finite())
            .fold(0.0f32, f32::max);
        let cell = (pictures.view.max[0] - pictures.view.min[0]) / FIELD_ARROWS as f32;
        let scale = if longest > 0.0 {
            0.9 * cell / longest
        } else {
            0.0
        };
        let stroke = Stroke::new(1.5, Color32::from_rgb(240, 240, 240));
        for (c, v) in centres.chunks_exact(2).zip(pictures.field.chunks_exact(2)) {
            if !(v[0].is_finite() && v[1].is_finite()) {
                continue;
            }
            let from = canvas.transform.transform([c[0], c[1]]);
            let to = canvas
                .transform
                .transform([c[0] + scale * v[0], c[1] + scale * v[1]]);
            canvas.painter.arrow(from, to - from, stroke);
        }
        let mut caption = vec![tr!(
            "field.arrows",
            time = format!("{:.2}", pictures.field_time.unwrap_or(0.0)),
            longest = format!("{longest:.2}")
        )];
        caption.push(tr!("field.paths", count = particles));
        if let Some(nfe) = pictures.solver_evaluations {
            caption.push(tr!("field.evaluations", count = nfe));
        }
        canvas.caption(&caption);
    }
}
