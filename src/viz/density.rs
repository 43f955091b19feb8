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
        match self.max_finite() {
            Some(high) => self.colors_on(high, Scale::Log),
            None => vec![colormap(0.0); self.log_density.len()],
        }
    }

    /// One RGBA colour per cell on a scale whose brightest colour is `log p = high` — the
    /// same `high` for two grids puts them on one scale (the learned density beside the
    /// target's). [`Scale::Log`] spans [`DYNAMIC_RANGE_NATS`] below `high`; [`Scale::Linear`]
    /// colours `p / e^high` from 0 to 1.
    pub fn colors_on(&self, high: f32, scale: Scale) -> Vec<[u8; 4]> {
        self.log_density
            .iter()
            .map(|&v| {
                // NaN and -inf map to 0: `clamp` would keep NaN, so test explicitly.
                let t = if v.is_finite() {
                    scale.position(v, high)
                } else {
                    0.0
                };
                colormap(t)
            })
            .collect()
    }
}

/// How a heat map maps density to colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scale {
    /// Colour by `log p`, over [`DYNAMIC_RANGE_NATS`] nats: tails and far modes stay visible.
    #[default]
    Log,
    /// Colour by `p` itself: what the mass looks like, tails vanish.
    Linear,
}

impl Scale {
    /// Where `log p = value` falls on a colour scale topping at `high`, in `[0, 1]`.
    pub fn position(self, value: f32, high: f32) -> f32 {
        let t = match self {
            Scale::Log => (value - high + DYNAMIC_RANGE_NATS) / DYNAMIC_RANGE_NATS,
            Scale::Linear => (value - high).exp(),
        };
        if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) }
    }
}

/// A diverging colour map for signed values such as a log-determinant: blue below zero,
/// near-white at zero, red above; `t` in `[−1, 1]` (clamped).
pub fn diverging(t: f32) -> [u8; 4] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(-1.0, 1.0) };
    let mix = |a: f32, b: f32, f: f32| (a + (b - a) * f).round() as u8;
    // Why not pure white at 0: the particles drawn over it are light; a light grey keeps them
    // visible, and zero still reads as "no change of volume".
    let zero = [205.0, 205.0, 210.0];
    let end = if t < 0.0 {
        [40.0, 90.0, 200.0]
    } else {
        [210.0, 50.0, 40.0]
    };
    let f = t.abs();
    [
        mix(zero[0], end[0], f),
        mix(zero[1], end[1], f),
        mix(zero[2], end[2], f),
        255,
    ]
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
    fn one_scale_for_two_grids_and_a_linear_option() {
        assert_eq!(Scale::Log.position(0.0, 0.0), 1.0);
        assert_eq!(Scale::Log.position(-DYNAMIC_RANGE_NATS, 0.0), 0.0);
        assert!((Scale::Log.position(-5.0, 0.0) - 0.5).abs() < 1e-6);
        assert!((Scale::Linear.position(-(2f32.ln()), 0.0) - 0.5).abs() < 1e-6);
        assert_eq!(Scale::Linear.position(1.0, 0.0), 1.0, "clamped above");
        assert_eq!(Scale::Log.position(f32::NAN, 0.0), 0.0);
        // A grid coloured on another grid's higher scale is darker than on its own.
        let grid = DensityGrid::from_fn(ViewRect::square(1.0), 1, 1, |_| -1.0);
        assert_eq!(grid.colors()[0], colormap(1.0));
        let brightness = |c: [u8; 4]| c[..3].iter().map(|&v| u32::from(v)).sum::<u32>();
        assert!(brightness(grid.colors_on(1.0, Scale::Log)[0]) < brightness(colormap(1.0)));
    }

    #[test]
    fn diverging_is_symmetric_in_saturation_and_grey_at_zero() {
        let [r, g, b, _] = diverging(0.0);
        assert!(r == g && g.abs_diff(b) < 10);
        assert!(diverging(-1.0)[2] > diverging(-1.0)[0], "negative is blue");
        assert!(diverging(1.0)[0] > diverging(1.0)[2], "positive is red");
        assert_eq!(diverging(5.0), diverging(1.0));
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
