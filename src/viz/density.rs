//! Heat maps of log-densities: a grid of `log p(x)` over a view rectangle and its colouring.
//!
//! Pure data (no egui, no GPU, no IO), so the app's plot, `flowlab render` and `flowlab train`
//! paint the very same pixels. Must not depend on `ui`, `cli`, egui or eframe.

use crate::targets::{Target, ViewRect};

/// How many nats below the maximum the colour scale reaches; lower values are clamped to the
/// darkest colour. Why 10: the thin tails of a Gaussian stay visible without the background
/// swamping the shape.
pub const DYNAMIC_RANGE_NATS: f32 = 10.0;

/// `log p(x)` sampled at the centres of a `width × height` grid of cells over `view`.
/// Row 0 is the *top* row (largest `y`), as in images.
#[derive(Clone, Debug, PartialEq)]
pub struct DensityGrid {
    /// Cells per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// The rectangle the grid covers, in data coordinates.
    pub view: ViewRect,
    /// `width * height` values, row-major from the top row; `-inf` where the density is zero.
    pub log_density: Vec<f32>,
}

impl DensityGrid {
    /// Evaluates `log_density` at every cell centre.
    pub fn from_fn(
        view: ViewRect,
        width: usize,
        height: usize,
        log_density: impl Fn([f64; 2]) -> f64,
    ) -> Self {
        let mut values = Vec::with_capacity(width * height);
        for row in 0..height {
            let fy = (row as f64 + 0.5) / height as f64;
            let y = view.max[1] as f64 + fy * (view.min[1] as f64 - view.max[1] as f64);
            for column in 0..width {
                let fx = (column as f64 + 0.5) / width as f64;
                let x = view.min[0] as f64 + fx * (view.max[0] as f64 - view.min[0] as f64);
                values.push(log_density([x, y]) as f32);
            }
        }
        Self {
            width,
            height,
            view,
            log_density: values,
        }
    }

    /// A grid of values computed elsewhere (a flow's `log q` at [`Self::cell_centres`]).
    /// `log_density` holds `width * height` values, row-major from the top row.
    pub fn from_values(view: ViewRect, width: usize, height: usize, log_density: Vec<f32>) -> Self {
        debug_assert_eq!(log_density.len(), width * height, "one value per cell");
        Self {
            width,
            height,
            view,
            log_density,
        }
    }

    /// The centres of a `width × height` grid of cells over `view`, row-major from the top
    /// row, as `[x, y]` pairs flattened (`2·width·height` values): the points to evaluate a
    /// flow's density at for [`Self::from_values`].
    pub fn cell_centres(view: ViewRect, width: usize, height: usize) -> Vec<f32> {
        (0..width * height)
            .flat_map(|k| {
                let (col, row) = (k % width, k / width);
                let x =
                    view.min[0] + (col as f32 + 0.5) / width as f32 * (view.max[0] - view.min[0]);
                let y =
                    view.max[1] - (row as f32 + 0.5) / height as f32 * (view.max[1] - view.min[1]);
                [x, y]
            })
            .collect()
    }

    /// The normalised log-density of `target` over `view`.
    pub fn from_target(target: &dyn Target, view: ViewRect, width: usize, height: usize) -> Self {
        Self::from_fn(view, width, height, |x| target.normalized_log_density(x))
    }

    /// The largest finite value, if any.
    pub fn max_finite(&self) -> Option<f32> {
        self.log_density
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .reduce(f32::max)
    }

    /// The value of the cell containing `point`, or `None` outside the grid.
    pub fn value_at(&self, point: [f32; 2]) -> Option<f32> {
        let fx = (point[0] - self.view.min[0]) / (self.view.max[0] - self.view.min[0]);
        let fy = (self.view.max[1] - point[1]) / (self.view.max[1] - self.view.min[1]);
        if !(0.0..1.0).contains(&fx) || !(0.0..1.0).contains(&fy) {
            return None;
        }
        let column = ((fx * self.width as f32) as usize).min(self.width.saturating_sub(1));
        let row = ((fy * self.height as f32) as usize).min(self.height.saturating_sub(1));
        self.log_density.get(row * self.width + column).copied()
    }

    /// One RGBA colour per cell (same order as `log_density`), on a scale from
    /// `max − DYNAMIC_RANGE_NATS` (dark) to `max` (bright). A grid with no finite value is all
    /// background.
    pub fn colors(&self) -> Vec<[u8; 4]> {
        let Some(high) = self.max_finite() else {
            return vec![colormap(0.0); self.log_density.len()];
        };
        let low = high - DYNAMIC_RANGE_NATS;
        self.log_density
            .iter()
            .map(|&v| {
                // NaN and -inf map to 0: `clamp` would keep NaN, so test explicitly.
                let t = if v.is_finite() {
                    (v - low) / DYNAMIC_RANGE_NATS
                } else {
                    0.0
                };
                colormap(t)
            })
            .collect()
    }
}

/// A perceptually ordered dark-to-bright colour map (control points of matplotlib's "magma",
/// linearly interpolated). `t` is clamped to `[0, 1]`.
pub fn colormap(t: f32) -> [u8; 4] {
    const STOPS: [[f32; 3]; 6] = [
        [0.0, 0.0, 4.0],
        [59.0, 15.0, 112.0],
        [140.0, 41.0, 129.0],
        [222.0, 73.0, 104.0],
        [254.0, 159.0, 109.0],
        [252.0, 253.0, 191.0],
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let position = t * (STOPS.len() - 1) as f32;
    let index = (position.floor() as usize).min(STOPS.len() - 2);
    let fraction = position - index as f32;
    let [a, b] = [STOPS[index], STOPS[index + 1]];
    let mix = |k: usize| (a[k] + fraction * (b[k] - a[k])).round() as u8;
    [mix(0), mix(1), mix(2), 255]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_cells_are_sampled_at_centres_top_row_first() {
        let view = ViewRect {
            min: [0.0, 0.0],
            max: [2.0, 4.0],
        };
        let grid = DensityGrid::from_fn(view, 2, 2, |[x, y]| 10.0 * x + y);
        // Top-left cell centre (0.5, 3.0), top-right (1.5, 3.0), bottom-left (0.5, 1.0).
        assert_eq!(grid.log_density, vec![8.0, 18.0, 6.0, 16.0]);
    }

    #[test]
    fn value_at_finds_the_cell_and_rejects_outside_points() {
        let view = ViewRect {
            min: [0.0, 0.0],
            max: [2.0, 4.0],
        };
        let grid = DensityGrid::from_fn(view, 2, 2, |[x, y]| 10.0 * x + y);
        assert_eq!(grid.value_at([0.1, 3.9]), Some(8.0));
        assert_eq!(grid.value_at([1.9, 0.1]), Some(16.0));
        assert_eq!(grid.value_at([2.5, 1.0]), None);
        assert_eq!(grid.value_at([1.0, -0.1]), None);
        assert_eq!(grid.value_at([f32::NAN, 1.0]), None);
    }

    #[test]
    fn colors_span_dark_to_bright_and_survive_non_finite_values() {
        let view = ViewRect::square(1.0);
        let values = [f64::NEG_INFINITY, f64::NAN, -100.0, 0.0];
        let grid = DensityGrid::from_fn(view, 4, 1, |[x, _]| values[((x + 1.0) * 2.0) as usize]);
        let colors = grid.colors();
        assert_eq!(colors[0], colormap(0.0));
        assert_eq!(colors[1], colormap(0.0));
        assert_eq!(colors[2], colormap(0.0));
        assert_eq!(colors[3], colormap(1.0));
        assert_ne!(colormap(0.0), colormap(1.0));
    }

    #[test]
    fn all_minus_infinity_is_background() {
        let grid = DensityGrid::from_fn(ViewRect::square(1.0), 3, 3, |_| f64::NEG_INFINITY);
        assert_eq!(grid.max_finite(), None);
        assert!(grid.colors().iter().all(|&c| c == colormap(0.0)));
    }

    #[test]
    fn colormap_is_monotone_in_brightness() {
        let brightness = |t: f32| colormap(t)[..3].iter().map(|&c| c as u32).sum::<u32>();
        let mut previous = 0;
        for i in 0..=100 {
            let b = brightness(i as f32 / 100.0);
            assert!(b >= previous, "t = {i}%");
            previous = b;
        }
    }
}
