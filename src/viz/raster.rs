//! Drawing into `image::RgbaImage`: a density grid as pixels, and anti-aliased dots for
//! samples. Writing files is the caller's (the CLI). Must not depend on `ui`, `cli` or egui.

use image::{Rgba, RgbaImage};

use super::density::DensityGrid;
use crate::targets::ViewRect;

/// The grid's colours as an image of `grid.width × grid.height` pixels.
pub fn density_image(grid: &DensityGrid) -> RgbaImage {
    let mut image = RgbaImage::new(grid.width as u32, grid.height as u32);
    for (pixel, color) in image.pixels_mut().zip(grid.colors()) {
        *pixel = Rgba(color);
    }
    image
}

/// Pixel coordinates `[px, py]` of data point `point` in a `width × height` picture of `view`
/// (`py` grows downwards, as in images).
pub fn pixel_of(view: ViewRect, width: f32, height: f32, point: [f32; 2]) -> [f32; 2] {
    [
        (point[0] - view.min[0]) / (view.max[0] - view.min[0]) * width,
        (view.max[1] - point[1]) / (view.max[1] - view.min[1]) * height,
    ]
}

/// Alpha-blends a filled disc of `color` centred at pixel coordinates `(cx, cy)`; pixels
/// outside the image and non-finite centres are skipped.
pub fn draw_dot(image: &mut RgbaImage, cx: f32, cy: f32, radius: f32, color: [u8; 3], alpha: f32) {
    if !(cx.is_finite() && cy.is_finite()) {
        return;
    }
    let (width, height) = (image.width() as i64, image.height() as i64);
    let x0 = ((cx - radius).floor() as i64).max(0);
    let x1 = ((cx + radius).ceil() as i64).min(width - 1);
    let y0 = ((cy - radius).floor() as i64).max(0);
    let y1 = ((cy + radius).ceil() as i64).min(height - 1);
    for py in y0..=y1 {
        for px in x0..=x1 {
            let dx = px as f32 + 0.5 - cx;
            let dy = py as f32 + 0.5 - cy;
            // Coverage falls off over the last pixel of the radius: cheap anti-aliasing.
            let coverage = (radius + 0.5 - (dx * dx + dy * dy).sqrt()).clamp(0.0, 1.0) * alpha;
            if coverage <= 0.0 {
                continue;
            }
            let pixel = image.get_pixel_mut(px as u32, py as u32);
            for k in 0..3 {
                let blended = pixel[k] as f32 + coverage * (color[k] as f32 - pixel[k] as f32);
                pixel[k] = blended.round() as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_outside_the_image_are_clipped() {
        let mut image = RgbaImage::new(4, 4);
        draw_dot(&mut image, -10.0, 2.0, 3.0, [255, 255, 255], 1.0);
        draw_dot(&mut image, 2.0, 100.0, 3.0, [255, 255, 255], 1.0);
        draw_dot(&mut image, f32::NAN, 2.0, 3.0, [255, 255, 255], 1.0);
        assert!(image.pixels().all(|p| p[0] == 0));
        draw_dot(&mut image, 2.5, 2.5, 1.0, [255, 255, 255], 1.0);
        assert_eq!(
            image.get_pixel(2, 2)[0],
            255,
            "the centre pixel is fully covered"
        );
        assert!(
            image.get_pixel(1, 2)[0] > 0,
            "a neighbour is partly covered"
        );
        assert_eq!(image.get_pixel(0, 0)[0], 0, "far pixels are untouched");
    }

    #[test]
    fn the_view_maps_onto_the_picture_top_down() {
        let view = ViewRect::square(2.0);
        assert_eq!(pixel_of(view, 100.0, 50.0, [-2.0, 2.0]), [0.0, 0.0]);
        assert_eq!(pixel_of(view, 100.0, 50.0, [2.0, -2.0]), [100.0, 50.0]);
    }
}
