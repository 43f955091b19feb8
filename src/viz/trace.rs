//! The layer-by-layer picture: the sample cloud after each layer, side by side, every point
//! coloured by where it started in the base space ([`base_color`]) so the eye can follow
//! regions through the flow. Must not depend on `ui`, `cli` or egui.

use image::{Rgba, RgbaImage};

use super::density::colormap;
use super::raster::{draw_dot, pixel_of};
use crate::flows::eval::Trace;
use crate::targets::ViewRect;

/// Side of one panel of [`trace_picture`], in pixels.
pub const PANEL_SIDE: u32 = 240;

/// Most panels [`trace_picture`] draws (evenly chosen layers, first and last included).
pub const MAX_PANELS: usize = 9;

/// The base-space colour wheel: the colour of a sample that started at base point `z`.
///
/// The hue goes once around the colour circle with the angle of `z` about the origin
/// (`atan2(z₁, z₀)`); the distance from the origin is ignored. Points that start in the same
/// direction share a colour wherever the flow takes them, so a picture of samples coloured
/// this way shows how the flow folds and stretches the Gaussian. Saturated, never darker than
/// 60/255 per channel, so it reads on the dark heat-map background.
pub fn base_color(z: [f32; 2]) -> [u8; 3] {
    hue(z[1].atan2(z[0]) / std::f32::consts::TAU + 0.5)
}

/// A saturated colour for `t ∈ [0, 1)` around the hue circle.
fn hue(t: f32) -> [u8; 3] {
    let channel = |offset: f32| {
        let v = (std::f32::consts::TAU * (t + offset)).cos() * 0.5 + 0.5;
        (60.0 + 195.0 * v) as u8
    };
    [channel(0.0), channel(1.0 / 3.0), channel(2.0 / 3.0)]
}

/// Panels of the sample cloud after layers 0, …, K (at most [`MAX_PANELS`] evenly chosen),
/// side by side over `view`, each point coloured by [`base_color`] of its base point.
pub fn trace_picture(trace: &Trace, view: ViewRect) -> RgbaImage {
    let depth = trace.points.len();
    let panels: Vec<usize> = if depth <= MAX_PANELS {
        (0..depth).collect()
    } else {
        (0..MAX_PANELS)
            .map(|i| i * (depth - 1) / (MAX_PANELS - 1))
            .collect()
    };
    let side = PANEL_SIDE;
    let mut image = RgbaImage::from_pixel(side * panels.len() as u32, side, Rgba(colormap(0.0)));
    let Some(base) = trace.points.first() else {
        return image;
    };
    for (slot, &layer) in panels.iter().enumerate() {
        let left = (slot as u32 * side) as f32;
        let right = ((slot as u32 + 1) * side) as f32;
        for (p, z) in trace.points[layer]
            .chunks_exact(2)
            .zip(base.chunks_exact(2))
        {
            let color = base_color([z[0], z[1]]);
            let [px, py] = pixel_of(view, side as f32, side as f32, [p[0], p[1]]);
            let px = px + left;
            if px >= left && px < right {
                draw_dot(&mut image, px, py, 1.2, color, 0.8);
            }
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_wheel_turns_with_the_angle_only() {
        assert_eq!(base_color([1.0, 0.0]), base_color([5.0, 0.0]));
        assert_ne!(base_color([1.0, 0.0]), base_color([-1.0, 0.0]));
        assert_ne!(base_color([0.0, 1.0]), base_color([0.0, -1.0]));
        for angle in 0..36 {
            let a = angle as f32 * 10f32.to_radians();
            assert!(base_color([a.cos(), a.sin()]).iter().all(|&c| c >= 60));
        }
    }

    #[test]
    fn a_trace_gives_one_panel_per_layer_up_to_the_maximum() {
        let layer = vec![0.0f32, 0.0, 1.0, 1.0];
        let trace = |n: usize| Trace {
            points: vec![layer.clone(); n],
            log_det: vec![vec![0.0; 2]; n.saturating_sub(1)],
            kinds: vec!["test"; n.saturating_sub(1)],
        };
        assert_eq!(
            trace_picture(&trace(3), ViewRect::square(2.0)).width(),
            3 * PANEL_SIDE
        );
        let many = trace_picture(&trace(20), ViewRect::square(2.0));
        assert_eq!(many.width(), MAX_PANELS as u32 * PANEL_SIDE);
    }
}
