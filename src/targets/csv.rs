//! A CSV of 2-D points as an empirical data set.
//!
//! Format: one point per line, two numbers separated by a comma, semicolon, tab or spaces; an
//! optional header line (the first non-empty line, if it is two non-numbers); blank lines and
//! lines starting with `#` are skipped. Anything else — a third column, text, NaN or ±inf — is an
//! error naming the line.
//!
//! Sampling resamples the points with replacement, plus optional Gaussian jitter; with
//! [`Jitter::Kde`] the jitter is the KDE's bandwidth, so samples follow the density exactly
//! (a smoothed bootstrap). The density is a Gaussian KDE with Scott's bandwidth per axis,
//! `h_d = σ_d n^{−1/6}`, binned: points are deposited on a 256×256 grid (cloud-in-cell) and blurred
//! with `√(h² − cell²/6)` (the deposit's own variance subtracted), then scored bilinearly.

use super::grid::{GridDensity, deposit, gaussian_blur};
use super::{DensityKind, MAX_FILE_BYTES, Target, TargetError, ViewRect};
use crate::rng::Rng;

/// Most rows accepted.
pub const MAX_CSV_ROWS: usize = 1_000_000;
/// Fewest points accepted.
pub const MIN_CSV_POINTS: usize = 2;
const CELLS: usize = 256;
const FLOOR_FRACTION: f64 = 1e-6;

/// Noise added to resampled points.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Jitter {
    /// The points themselves (an empirical distribution).
    #[default]
    None,
    /// `N(0, h_d²)` with the KDE's bandwidth: samples follow the KDE density exactly.
    Kde,
    /// `N(0, s²)` with the given standard deviation.
    Std(f64),
}

/// An empirical data set from a CSV.
pub struct CsvTarget {
    points: Vec<[f32; 2]>,
    jitter: [f64; 2],
    view: ViewRect,
    grid: GridDensity,
    description: String,
}

/// Parses `text` into points (see the module doc for the format).
pub fn parse_points(text: &str) -> Result<Vec<[f32; 2]>, TargetError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(TargetError::FileTooLarge {
            bytes: text.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let mut points = Vec::new();
    let mut seen_first = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        let parsed: Vec<Option<f64>> = fields.iter().map(|f| f.parse::<f64>().ok()).collect();
        let first = !seen_first;
        seen_first = true;
        let error = |reason: String| TargetError::CsvLine {
            line: index + 1,
            reason,
        };
        if first && parsed.iter().any(Option::is_none) {
            // Why both: `1.5,abc` is a damaged first row, not a header, and must not vanish.
            if fields.len() == 2 && parsed.iter().all(Option::is_none) {
                continue; // a header
            }
            if fields.len() == 2 {
                return Err(error(format!(
                    "\"{}\" is neither a header (two names) nor a pair of numbers",
                    line.chars().take(40).collect::<String>()
                )));
            }
            return Err(error(format!(
                "expected a header or two numbers, found {} fields",
                fields.len()
            )));
        }
        if fields.len() != 2 {
            return Err(error(format!(
                "expected 2 columns (x, y), found {}",
                fields.len()
            )));
        }
        let (Some(Some(x)), Some(Some(y))) = (parsed.first(), parsed.get(1)) else {
            return Err(error(format!(
                "\"{}\" is not a pair of numbers",
                line.chars().take(40).collect::<String>()
            )));
        };
        if !(x.is_finite() && y.is_finite()) {
            return Err(error(
                "coordinates must be finite numbers, not NaN or infinity".to_owned(),
            ));
        }
        if x.abs() > 1e6 || y.abs() > 1e6 {
            return Err(error("coordinates must lie within ±1e6".to_owned()));
        }
        if points.len() >= MAX_CSV_ROWS {
            return Err(TargetError::CsvTooManyRows {
                limit: MAX_CSV_ROWS,
            });
        }
        points.push([*x as f32, *y as f32]);
    }
    if points.len() < MIN_CSV_POINTS {
        return Err(TargetError::CsvTooFewPoints {
            found: points.len(),
            min: MIN_CSV_POINTS,
        });
    }
    Ok(points)
}

/// A data set from CSV `text`, resampled with `jitter`.
pub fn from_csv_text(text: &str, jitter: Jitter) -> Result<CsvTarget, TargetError> {
    from_points(parse_points(text)?, jitter)
}

/// A data set of `points` (at least [`MIN_CSV_POINTS`], all finite), resampled with `jitter`.
pub fn from_points(points: Vec<[f32; 2]>, jitter: Jitter) -> Result<CsvTarget, TargetError> {
    if points.len() < MIN_CSV_POINTS {
        return Err(TargetError::CsvTooFewPoints {
            found: points.len(),
            min: MIN_CSV_POINTS,
        });
    }
    if let Some(p) = points
        .iter()
        .find(|p| !p.iter().all(|v| v.is_finite() && v.abs() <= 1e6))
    {
        return Err(TargetError::InvalidParameter {
            what: "point",
            reason: format!("{p:?} is not a finite point of the plane (|coordinates| ≤ 1e6)"),
        });
    }
    let n = points.len() as f64;
    let mut mean = [0.0f64; 2];
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in &points {
        for d in 0..2 {
            let v = p[d] as f64;
            mean[d] += v / n;
            lo[d] = lo[d].min(v);
            hi[d] = hi[d].max(v);
        }
    }
    let mut std = [0.0f64; 2];
    for p in &points {
        for d in 0..2 {
            std[d] += (p[d] as f64 - mean[d]).powi(2) / n;
        }
    }
    // Scott's rule; a degenerate axis (all points equal) borrows the other's spread, or 0.1.
    let spread = |d: usize| {
        std[d]
            .sqrt()
            .max(1e-3 * (std[0].sqrt() + std[1].sqrt()))
            .max(1e-9)
    };
    let bandwidth = [0, 1].map(|d| {
        let s = spread(d);
        if s > 1e-9 {
            s * libm::pow(n, -1.0 / 6.0)
        } else {
            0.1
        }
    });
    // Grid: the points' bounding box padded by 4 bandwidths.
    let min = [lo[0] - 4.0 * bandwidth[0], lo[1] - 4.0 * bandwidth[1]];
    let max = [hi[0] + 4.0 * bandwidth[0], hi[1] + 4.0 * bandwidth[1]];
    let cell = [
        (max[0] - min[0]) / CELLS as f64,
        (max[1] - min[1]) / CELLS as f64,
    ];
    let mut values = vec![0.0; CELLS * CELLS];
    for p in &points {
        deposit(
            &mut values,
            CELLS,
            CELLS,
            min,
            cell,
            [p[0] as f64, p[1] as f64],
            1.0,
        );
    }
    let blur = |d: usize| {
        (bandwidth[d].powi(2) - cell[d].powi(2) / 6.0)
            .max(0.0)
            .sqrt()
            / cell[d]
    };
    gaussian_blur(&mut values, CELLS, CELLS, blur(0), blur(1));
    let grid = GridDensity::new(min, max, CELLS, CELLS, values, FLOOR_FRACTION)?;
    let jitter = match jitter {
        Jitter::None => [0.0; 2],
        Jitter::Kde => bandwidth,
        Jitter::Std(s) if s.is_finite() && s >= 0.0 => [s; 2],
        Jitter::Std(s) => {
            return Err(TargetError::InvalidParameter {
                what: "jitter",
                reason: format!("{s} is not a width"),
            });
        }
    };
    let pad = [
        0.1 * (hi[0] - lo[0]) + 3.0 * bandwidth[0],
        0.1 * (hi[1] - lo[1]) + 3.0 * bandwidth[1],
    ];
    let view = ViewRect {
        min: [(lo[0] - pad[0]) as f32, (lo[1] - pad[1]) as f32],
        max: [(hi[0] + pad[0]) as f32, (hi[1] + pad[1]) as f32],
    };
    let description = format!(
        "Your CSV data set of {} points, resampled; density by a kernel estimate (bandwidth {:.3} × {:.3}).",
        points.len(),
        bandwidth[0],
        bandwidth[1]
    );
    Ok(CsvTarget {
        points,
        jitter,
        view,
        grid,
        description,
    })
}

impl CsvTarget {
    /// The points as loaded.
    pub fn points(&self) -> &[[f32; 2]] {
        &self.points
    }
}

impl Target for CsvTarget {
    fn name(&self) -> &str {
        "csv"
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn view(&self) -> ViewRect {
        self.view
    }
    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        if self.points.is_empty() {
            return;
        }
        for p in out {
            let [x, y] = self
                .points
                .get(rng.below(self.points.len()))
                .copied()
                .unwrap_or([0.0; 2]);
            *p = if self.jitter == [0.0; 2] {
                [x, y]
            } else {
                [
                    (x as f64 + self.jitter[0] * rng.normal_f64()) as f32,
                    (y as f64 + self.jitter[1] * rng.normal_f64()) as f32,
                ]
            };
        }
    }
    fn log_density(&self, x: [f64; 2]) -> f64 {
        self.grid.log_density(x)
    }
    fn log_normalizer(&self) -> f64 {
        self.grid.log_normalizer()
    }
    fn density_kind(&self) -> DensityKind {
        DensityKind::KernelEstimate
    }
}

/// Parses `text` like [`parse_points`] but accepts fewer than [`MIN_CSV_POINTS`] points (none or
/// one): for points to score (`flowlab eval`), not a data set to learn.
pub fn parse_points_to_score(text: &str) -> Result<Vec<[f32; 2]>, TargetError> {
    match parse_points(text) {
        Err(TargetError::CsvTooFewPoints { found: 0, .. }) => Ok(Vec::new()),
        Err(TargetError::CsvTooFewPoints { found: 1, .. }) => {
            // Why parse a copy: every line passed, so the last data line is the one point;
            // repeating it makes the two `parse_points` needs, and the copy is dropped.
            let last = text
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty() && !l.starts_with('#'))
                .unwrap_or_default();
            let mut points = parse_points(&format!("{text}\n{last}"))?;
            points.truncate(1);
            Ok(points)
        }
        other => other,
    }
}
