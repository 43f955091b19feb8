//! A density tabulated on a grid of cells: the machinery behind painted and image targets, the
//! gridded toy densities, the KDE of CSV data, and the inverse-CDF sampler of energies.
//!
//! Values `v_ij ≥ 0` sit at the cell centres (`j` counts rows upward from `min[1]`).
//! - **Sampling** is exact for the piecewise-constant density `v_ij / Σ v dA` on the cells: a cell
//!   by inverse CDF (binary search in the cumulative masses), then a uniform point inside it.
//! - **Scoring** is `p(x) = bilinear(x) + floor` on the rectangle, where `bilinear` interpolates
//!   the centres and is held constant in the outer half cells; outside the rectangle the floor
//!   decays as `floor · exp(−d² / 2s²)` (`d` = distance to the rectangle), so `log p` is finite and
//!   has a gradient everywhere. In 1-D each centre value gets weight `h/2` from either side, so
//!   `∫ bilinear = dA Σ v` *exactly*; the floor and the skirt integrate in closed form:
//!   `Z = dA Σ v + floor (W H + (2W + 2H) s √(π/2) + 2π s²)`.

use super::TargetError;
use super::special::{cumulative_sum, search_cumulative};
use crate::rng::Rng;

/// A density on an `nx × ny` grid over a rectangle (see the module doc).
#[derive(Clone, Debug)]
pub struct GridDensity {
    min: [f64; 2],
    max: [f64; 2],
    cell: [f64; 2],
    nx: usize,
    ny: usize,
    /// Values normalised so that `Σ v dA = 1`.
    values: Vec<f64>,
    floor: f64,
    skirt: f64,
    log_z: f64,
    /// `ln(Σ v dA)` of the values as given, before normalisation (the midpoint-rule integral).
    log_mass: f64,
    cumulative: Vec<f64>,
}

impl GridDensity {
    /// A grid density over `[min, max]` from row-major `values` (`values[j * nx + i]`, row `j`
    /// upward). `floor_fraction` is the share of mass the floor adds on the rectangle (e.g. 1e-3).
    /// Errors with [`TargetError::NothingPainted`] when the values hold no mass.
    pub fn new(
        min: [f64; 2],
        max: [f64; 2],
        nx: usize,
        ny: usize,
        mut values: Vec<f64>,
        floor_fraction: f64,
    ) -> Result<Self, TargetError> {
        let width = max[0] - min[0];
        let height = max[1] - min[1];
        if nx == 0 || ny == 0 || values.len() != nx * ny || !(width > 0.0 && height > 0.0) {
            return Err(TargetError::InvalidParameter {
                what: "grid",
                reason: format!(
                    "{nx}×{ny} cells with {} values over {width}×{height}",
                    values.len()
                ),
            });
        }
        let cell = [width / nx as f64, height / ny as f64];
        let area = cell[0] * cell[1];
        for v in &mut values {
            if !v.is_finite() || *v < 0.0 {
                *v = 0.0;
            }
        }
        let mass = values.iter().sum::<f64>() * area;
        if !(mass > 0.0 && mass.is_finite()) {
            return Err(TargetError::NothingPainted);
        }
        for v in &mut values {
            *v /= mass;
        }
        let floor = floor_fraction.max(0.0) / (width * height);
        let skirt = 0.05 * width.max(height);
        let floor_mass = floor
            * (width * height
                + (2.0 * width + 2.0 * height) * skirt * (std::f64::consts::PI / 2.0).sqrt()
                + std::f64::consts::TAU * skirt * skirt);
        let cumulative = cumulative_sum(values.iter().copied());
        Ok(Self {
            min,
            max,
            cell,
            nx,
            ny,
            values,
            floor,
            skirt,
            log_z: libm::log(1.0 + floor_mass),
            log_mass: libm::log(mass),
            cumulative,
        })
    }

    /// `ln Z` of the scoring density `bilinear + floor` (see the module doc).
    pub fn log_normalizer(&self) -> f64 {
        self.log_z
    }

    /// `ln(Σ v dA)` of the values as they were given: the midpoint-rule integral of the
    /// function they tabulate.
    pub fn log_mass(&self) -> f64 {
        self.log_mass
    }

    /// Grid size `(nx, ny)`.
    pub fn size(&self) -> (usize, usize) {
        (self.nx, self.ny)
    }

    /// The probability of cell `(i, j)` under the sampler.
    pub fn cell_probability(&self, i: usize, j: usize) -> f64 {
        self.values
            .get(j * self.nx + i)
            .map_or(0.0, |v| v * self.cell[0] * self.cell[1])
    }

    /// The bilinear interpolant of the (normalised) values at `x`, clamped to the rectangle.
    pub fn bilinear(&self, x: [f64; 2]) -> f64 {
        let (i0, i1, tx) = axis_weights(x[0], self.min[0], self.cell[0], self.nx);
        let (j0, j1, ty) = axis_weights(x[1], self.min[1], self.cell[1], self.ny);
        let at = |i: usize, j: usize| self.values.get(j * self.nx + i).copied().unwrap_or(0.0);
        let bottom = at(i0, j0) * (1.0 - tx) + at(i1, j0) * tx;
        let top = at(i0, j1) * (1.0 - tx) + at(i1, j1) * tx;
        bottom * (1.0 - ty) + top * ty
    }

    /// The unnormalised log-density `ln(bilinear + floor)`, with the Gaussian skirt outside.
    pub fn log_density(&self, x: [f64; 2]) -> f64 {
        let dx = (self.min[0] - x[0]).max(x[0] - self.max[0]).max(0.0);
        let dy = (self.min[1] - x[1]).max(x[1] - self.max[1]).max(0.0);
        if dx > 0.0 || dy > 0.0 {
            if self.floor > 0.0 {
                return libm::log(self.floor)
                    - (dx * dx + dy * dy) / (2.0 * self.skirt * self.skirt);
            }
            return f64::NEG_INFINITY;
        }
        libm::log(self.bilinear(x) + self.floor)
    }

    /// Exact draws from the piecewise-constant cell density: a cell by inverse CDF, then a
    /// uniform point in it. No allocation.
    pub fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        for p in out {
            let k = search_cumulative(&self.cumulative, rng.uniform_f64() * total);
            let (i, j) = (k % self.nx, k / self.nx);
            let x = self.min[0] + (i as f64 + rng.uniform_f64()) * self.cell[0];
            let y = self.min[1] + (j as f64 + rng.uniform_f64()) * self.cell[1];
            *p = [x as f32, y as f32];
        }
    }
}

/// Neighbouring centre indices and the interpolation weight along one axis (clamped).
fn axis_weights(x: f64, min: f64, cell: f64, n: usize) -> (usize, usize, f64) {
    let f = (x - min) / cell - 0.5;
    let last = n.saturating_sub(1);
    if f.is_nan() || f <= 0.0 {
        return (0, 0, 0.0);
    }
    if f >= last as f64 {
        return (last, last, 0.0);
    }
    let i0 = f as usize;
    (i0, (i0 + 1).min(last), f - i0 as f64)
}

/// Adds `weight` at `x` to `values` by cloud-in-cell (bilinear) deposit onto the centres of the
/// `nx × ny` grid over `[min, max]`; points outside the centres' hull are dropped.
pub fn deposit(
    values: &mut [f64],
    nx: usize,
    ny: usize,
    min: [f64; 2],
    cell: [f64; 2],
    x: [f64; 2],
    weight: f64,
) {
    let fx = (x[0] - min[0]) / cell[0] - 0.5;
    let fy = (x[1] - min[1]) / cell[1] - 0.5;
    let (last_x, last_y) = (nx.saturating_sub(1) as f64, ny.saturating_sub(1) as f64);
    if !(fx >= 0.0 && fy >= 0.0 && fx < last_x && fy < last_y) {
        return;
    }
    let (i, j) = (fx as usize, fy as usize);
    let (tx, ty) = (fx - i as f64, fy - j as f64);
    let base = j * nx + i;
    let mut add = |k: usize, w: f64| {
        if let Some(v) = values.get_mut(k) {
            *v += w;
        }
    };
    add(base, weight * (1.0 - tx) * (1.0 - ty));
    add(base + 1, weight * tx * (1.0 - ty));
    add(base + nx, weight * (1.0 - tx) * ty);
    add(base + nx + 1, weight * tx * ty);
}

/// Convolves the row-major `nx × ny` grid with a Gaussian of standard deviations
/// `(sigma_x, sigma_y)` in cells (separable, truncated at 4σ, zero outside the grid).
pub fn gaussian_blur(values: &mut [f64], nx: usize, ny: usize, sigma_x: f64, sigma_y: f64) {
    let mut scratch = vec![0.0; values.len()];
    blur_axis(values, &mut scratch, nx, ny, sigma_x, true);
    blur_axis(&scratch, values, nx, ny, sigma_y, false);
}

fn blur_axis(src: &[f64], dst: &mut [f64], nx: usize, ny: usize, sigma: f64, along_x: bool) {
    if sigma <= 1e-3 {
        dst.copy_from_slice(src);
        return;
    }
    let radius = (4.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|d| libm::exp(-0.5 * (d as f64 / sigma).powi(2)))
        .collect();
    let norm: f64 = kernel.iter().sum();
    let (len, lines) = if along_x { (nx, ny) } else { (ny, nx) };
    let index = |line: usize, pos: usize| {
        if along_x {
            line * nx + pos
        } else {
            pos * nx + line
        }
    };
    for line in 0..lines {
        for pos in 0..len {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                let q = pos as isize + k as isize - radius;
                if q >= 0 && (q as usize) < len {
                    acc += w * src.get(index(line, q as usize)).copied().unwrap_or(0.0);
                }
            }
            if let Some(d) = dst.get_mut(index(line, pos)) {
                *d = acc / norm;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> GridDensity {
        let values: Vec<f64> = (0..12)
            .map(|k| (k % 4) as f64 + (k / 4) as f64 * 0.5)
            .collect();
        GridDensity::new([-1.0, 0.0], [3.0, 3.0], 4, 3, values, 1e-3).unwrap()
    }

    #[test]
    fn scoring_density_integrates_to_its_normalizer() {
        let g = ramp();
        // Midpoint rule (h = 0.01, cell edges on the rectangle's edges) over a box holding the
        // rectangle and its skirt (s = 0.2).
        let (lo, h) = ([-3.0, -2.0], 0.01);
        let (hx, hy) = (h, h);
        let mut total = 0.0;
        for j in 0..700 {
            for i in 0..800 {
                let x = [lo[0] + (i as f64 + 0.5) * hx, lo[1] + (j as f64 + 0.5) * hy];
                total += (g.log_density(x) - g.log_normalizer()).exp() * hx * hy;
            }
        }
        assert!((total - 1.0).abs() < 1e-6, "{total}");
    }

    #[test]
    fn blur_keeps_interior_mass_and_deposit_splits_weight() {
        let (nx, ny) = (32, 32);
        let mut v = vec![0.0; nx * ny];
        deposit(&mut v, nx, ny, [0.0, 0.0], [1.0, 1.0], [15.75, 16.25], 2.0);
        assert!((v.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        // Centres sit at k + 0.5: the point is a quarter past centre 15 in x, three quarters in y.
        assert!((v[15 * nx + 15] - 2.0 * 0.75 * 0.25).abs() < 1e-12);
        assert!((v[16 * nx + 16] - 2.0 * 0.25 * 0.75).abs() < 1e-12);
        gaussian_blur(&mut v, nx, ny, 2.0, 1.0);
        assert!((v.iter().sum::<f64>() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn empty_grid_is_an_error() {
        let err = GridDensity::new([0.0, 0.0], [1.0, 1.0], 2, 2, vec![0.0; 4], 1e-3).unwrap_err();
        assert_eq!(err, TargetError::NothingPainted);
    }
}
