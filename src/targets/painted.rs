//! Densities the user paints: a grid of cell intensities in `[0, 1]` over a view rectangle, a
//! brush (size, strength, erase, symmetry), presets, and [`GridTarget`], the target a painted
//! grid (or an image, see `image.rs`) becomes.
//!
//! Sampling is exact for the painted cells (inverse CDF over cells + uniform jitter inside the
//! cell); scoring is bilinear interpolation plus a floor holding 0.1% of the mass, normalised
//! exactly (see `grid.rs`). The two differ only by that interpolation and floor.

use super::font::{GLYPH_HEIGHT, GLYPH_WIDTH, glyph, pixel};
use super::grid::{GridDensity, gaussian_blur};
use super::{DensityKind, Target, TargetError, ViewRect};
use crate::rng::Rng;

/// Cells per side of a painted grid.
pub const PAINT_CELLS: usize = 64;
/// Share of a painted target's mass held by the floor.
pub const FLOOR_FRACTION: f64 = 1e-3;

/// Which copies of a brush dab are painted, about the centre of the view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Symmetry {
    /// Just the dab.
    #[default]
    None,
    /// Also its mirror image across the vertical axis (`x ↦ −x`).
    MirrorX,
    /// Also its mirror image across the horizontal axis (`y ↦ −y`).
    MirrorY,
    /// Both mirrors (four copies).
    Both,
    /// Four copies rotated by quarter turns.
    Radial4,
}

/// A brush: a smooth dab `strength · (1 − (d/r)²)²` within radius `r`, added or (erase) removed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Brush {
    /// Radius in data units.
    pub radius: f64,
    /// Intensity added at the centre per dab, in `(0, 1]`.
    pub strength: f64,
    /// Remove instead of add.
    pub erase: bool,
    /// Mirrored or rotated copies.
    pub symmetry: Symmetry,
}

impl Default for Brush {
    fn default() -> Self {
        Self {
            radius: 0.4,
            strength: 0.5,
            erase: false,
            symmetry: Symmetry::None,
        }
    }
}

/// A paintable grid of `nx × ny` intensities in `[0, 1]` over a view (row 0 at the bottom).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PaintedGrid {
    view: ViewRect,
    nx: usize,
    ny: usize,
    cells: Vec<f32>,
}

impl Default for PaintedGrid {
    /// A blank `64 × 64` grid over `[−4, 4]²`.
    fn default() -> Self {
        Self::blank(ViewRect::square(4.0), PAINT_CELLS, PAINT_CELLS)
    }
}

/// Largest side of a painted (or image) grid, in cells.
pub const MAX_GRID_SIDE: usize = 1024;

impl PaintedGrid {
    /// A blank grid (sizes are clamped to `1..=`[`MAX_GRID_SIDE`]).
    pub fn blank(view: ViewRect, nx: usize, ny: usize) -> Self {
        let (nx, ny) = (nx.clamp(1, MAX_GRID_SIDE), ny.clamp(1, MAX_GRID_SIDE));
        Self {
            view,
            nx,
            ny,
            cells: vec![0.0; nx * ny],
        }
    }

    /// A grid of `nx × ny` intensities (row-major, row 0 at the bottom), each in `[0, 1]`, over
    /// `view`; sizes must be `1..=`[`MAX_GRID_SIDE`] and match `cells`, and the view must have an area.
    pub fn from_cells(
        view: ViewRect,
        nx: usize,
        ny: usize,
        cells: Vec<f32>,
    ) -> Result<Self, TargetError> {
        let invalid = |reason: String| TargetError::InvalidParameter {
            what: "grid",
            reason,
        };
        let sides = 1..=MAX_GRID_SIDE;
        if !sides.contains(&nx) || !sides.contains(&ny) || cells.len() != nx * ny {
            return Err(invalid(format!(
                "{nx}×{ny} cells cannot hold {} values",
                cells.len()
            )));
        }
        let finite = view
            .min
            .iter()
            .chain(&view.max)
            .all(|v| v.is_finite() && v.abs() <= 1e4);
        if !finite || view.max[0] <= view.min[0] || view.max[1] <= view.min[1] {
            return Err(invalid(format!(
                "{:?}…{:?} is not a rectangle of the plane",
                view.min, view.max
            )));
        }
        if let Some(bad) = cells.iter().find(|c| !(0.0..=1.0).contains(*c)) {
            return Err(invalid(format!("intensity {bad} is not in [0, 1]")));
        }
        Ok(Self {
            view,
            nx,
            ny,
            cells,
        })
    }

    /// The view the grid covers.
    pub fn view(&self) -> ViewRect {
        self.view
    }

    /// `(nx, ny)`.
    pub fn size(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// The intensities, row-major, row 0 at the bottom.
    pub fn cells(&self) -> &[f32] {
        &self.cells
    }

    /// Whether nothing is painted.
    pub fn is_empty(&self) -> bool {
        self.cells.iter().all(|&c| c <= 0.0)
    }

    /// Erases everything.
    pub fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = 0.0);
    }

    /// One dab of `brush` at `at` (data coordinates) and its symmetric copies. Non-finite input
    /// is ignored.
    pub fn stroke(&mut self, at: [f64; 2], brush: &Brush) {
        if !(at[0].is_finite()
            && at[1].is_finite()
            && brush.radius > 0.0
            && brush.strength.is_finite())
        {
            return;
        }
        let c = self.center();
        let (dx, dy) = (at[0] - c[0], at[1] - c[1]);
        let copies: &[(f64, f64)] = match brush.symmetry {
            Symmetry::None => &[(dx, dy)],
            Symmetry::MirrorX => &[(dx, dy), (-dx, dy)],
            Symmetry::MirrorY => &[(dx, dy), (dx, -dy)],
            Symmetry::Both => &[(dx, dy), (-dx, dy), (dx, -dy), (-dx, -dy)],
            Symmetry::Radial4 => &[(dx, dy), (-dy, dx), (-dx, -dy), (dy, -dx)],
        };
        for &(ox, oy) in copies {
            self.dab([c[0] + ox, c[1] + oy], brush);
        }
    }

    fn center(&self) -> [f64; 2] {
        let v = self.view;
        [
            (v.min[0] + v.max[0]) as f64 / 2.0,
            (v.min[1] + v.max[1]) as f64 / 2.0,
        ]
    }

    fn cell_size(&self) -> [f64; 2] {
        let v = self.view;
        [
            (v.max[0] - v.min[0]) as f64 / self.nx as f64,
            (v.max[1] - v.min[1]) as f64 / self.ny as f64,
        ]
    }

    /// Centre of cell `(i, j)`.
    pub fn cell_center(&self, i: usize, j: usize) -> [f64; 2] {
        let h = self.cell_size();
        [
            self.view.min[0] as f64 + (i as f64 + 0.5) * h[0],
            self.view.min[1] as f64 + (j as f64 + 0.5) * h[1],
        ]
    }

    fn dab(&mut self, at: [f64; 2], brush: &Brush) {
        let h = self.cell_size();
        let r = brush.radius.min(1e6);
        let strength = brush.strength.clamp(0.0, 1.0) as f32;
        let lo_i = ((at[0] - r - self.view.min[0] as f64) / h[0])
            .floor()
            .max(0.0) as usize;
        let hi_i = (((at[0] + r - self.view.min[0] as f64) / h[0])
            .ceil()
            .max(0.0) as usize)
            .min(self.nx);
        let lo_j = ((at[1] - r - self.view.min[1] as f64) / h[1])
            .floor()
            .max(0.0) as usize;
        let hi_j = (((at[1] + r - self.view.min[1] as f64) / h[1])
            .ceil()
            .max(0.0) as usize)
            .min(self.ny);
        for j in lo_j..hi_j {
            for i in lo_i..hi_i {
                let p = self.cell_center(i, j);
                let d2 = ((p[0] - at[0]).powi(2) + (p[1] - at[1]).powi(2)) / (r * r);
                if d2 < 1.0 {
                    let amount = strength * ((1.0 - d2) * (1.0 - d2)) as f32;
                    if let Some(c) = self.cells.get_mut(j * self.nx + i) {
                        *c = if brush.erase {
                            (*c - amount).max(0.0)
                        } else {
                            (*c + amount).min(1.0)
                        };
                    }
                }
            }
        }
    }

    /// Fills cells from `f(centre) ∈ [0, 1]`.
    fn fill(&mut self, f: impl Fn([f64; 2]) -> f64) {
        for j in 0..self.ny {
            for i in 0..self.nx {
                let v = f(self.cell_center(i, j)).clamp(0.0, 1.0) as f32;
                if let Some(c) = self.cells.get_mut(j * self.nx + i) {
                    *c = v;
                }
            }
        }
    }

    /// Preset: two separate round blobs — a flow from one Gaussian must stretch a thin bridge
    /// between them (flows are homeomorphisms).
    pub fn two_blobs() -> Self {
        let mut g = Self::default();
        g.fill(|p| {
            let blob = |cx: f64| {
                libm::exp(-((p[0] - cx).powi(2) + p[1].powi(2)) / (2.0 * 0.55f64.powi(2)))
            };
            blob(-2.0) + blob(2.0)
        });
        g
    }

    /// Preset: a ring (radius 2.5, width 0.35) — a hole the base Gaussian does not have.
    pub fn ring() -> Self {
        let mut g = Self::default();
        g.fill(|p| libm::exp(-(libm::hypot(p[0], p[1]) - 2.5).powi(2) / (2.0 * 0.35f64.powi(2))));
        g
    }

    /// Preset: `text` in the built-in 5×7 font, centred, softened by a ⅔-cell blur; characters
    /// the font lacks are left blank.
    pub fn text(text: &str) -> Self {
        let mut g = Self::default();
        let chars: Vec<char> = text.chars().take(16).collect();
        let cols = (chars.len() * (GLYPH_WIDTH + 1)).saturating_sub(1).max(1);
        let scale = ((g.nx - 4) / cols).clamp(1, 3);
        let (x0, y0) = (
            (g.nx - (cols * scale).min(g.nx)) / 2,
            (g.ny - GLYPH_HEIGHT * scale) / 2,
        );
        let mut values = vec![0.0; g.nx * g.ny];
        for (k, &c) in chars.iter().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            for (row, col) in (0..GLYPH_HEIGHT).flat_map(|r| (0..GLYPH_WIDTH).map(move |c| (r, c)))
            {
                if !pixel(&rows, col, row) {
                    continue;
                }
                for (di, dj) in (0..scale * scale).map(|q| (q % scale, q / scale)) {
                    let i = x0 + (k * (GLYPH_WIDTH + 1) + col) * scale + di;
                    let j = y0 + (GLYPH_HEIGHT - 1 - row) * scale + dj;
                    if let Some(v) = values.get_mut(j * g.nx + i).filter(|_| i < g.nx) {
                        *v = 1.0;
                    }
                }
            }
        }
        gaussian_blur(&mut values, g.nx, g.ny, 0.66, 0.66);
        for (c, v) in g.cells.iter_mut().zip(values) {
            *c = v.min(1.0) as f32;
        }
        g
    }

    /// The target this painting defines; [`TargetError::NothingPainted`] if it is blank.
    pub fn to_target(&self, name: &str, description: &str) -> Result<GridTarget, TargetError> {
        let v = self.view;
        let values = self.cells.iter().map(|&c| c as f64).collect();
        let grid = GridDensity::new(
            [v.min[0] as f64, v.min[1] as f64],
            [v.max[0] as f64, v.max[1] as f64],
            self.nx,
            self.ny,
            values,
            FLOOR_FRACTION,
        )?;
        Ok(GridTarget {
            name: name.to_owned(),
            description: description.to_owned(),
            view: v,
            grid,
        })
    }
}

/// A target defined by a grid of cell masses: painted, a preset, or an image.
#[derive(Clone, Debug)]
pub struct GridTarget {
    name: String,
    description: String,
    view: ViewRect,
    grid: GridDensity,
}

impl GridTarget {
    /// A target from an existing grid density.
    pub fn new(name: &str, description: &str, view: ViewRect, grid: GridDensity) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            view,
            grid,
        }
    }

    /// The underlying grid density (for tests and the heat map).
    pub fn grid(&self) -> &GridDensity {
        &self.grid
    }
}

impl Target for GridTarget {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn view(&self) -> ViewRect {
        self.view
    }
    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        self.grid.sample_into(rng, out);
    }
    fn log_density(&self, x: [f64; 2]) -> f64 {
        self.grid.log_density(x)
    }
    fn log_normalizer(&self) -> f64 {
        self.grid.log_normalizer()
    }
    fn density_kind(&self) -> DensityKind {
        DensityKind::Exact
    }
    fn is_picture(&self) -> bool {
        true
    }
}
