//! Targets: the densities a flow learns. Each is a sampler (for maximum likelihood) and an
//! unnormalised log-density (for reverse KL and for the heat map).
//!
//! Depends only on `crate::rng`; knows nothing of flows, the engine or the UI.
//!
//! - [`toy`]: the FFJORD toy data sets and the benchmark's two moons (`twomoons`);
//! - [`energy`]: Rezende & Mohamed's U1–U4, banana, funnel, ring mixture (`exp(−U)`);
//! - [`mixture`]: a Gaussian mixture the user edits; [`painted`]: a grid the user paints, its
//!   presets, and [`painted::GridTarget`]; [`image`]: PNG/JPEG → density; [`csv`]: points → data set;
//! - [`grid`]: the tabulated-density machinery they share;
//! - [`source`]: a target as data ([`TargetSource`]: built-in name or edited content), its
//!   compact text form for links, and its fingerprint.
//!
//! Every built-in target is a row of [`CATALOG`] (name, description, kind, builder), built by
//! [`by_name`] / [`load_shared`]; [`load`] also reads files, and
//! [`from_image_bytes`] / [`from_csv_text`] on the web; bad input is a [`TargetError`], never a
//! panic. Samplers take the caller's [`Rng`] and use `libm` for every transcendental function,
//! so a seed gives the same samples natively and in wasm32.

use crate::rng::Rng;

mod arcs;
pub mod csv;
pub mod energy;
mod error;
mod font;
pub mod grid;
pub mod image;
pub mod mixture;
pub mod painted;
mod registry;
pub mod source;
mod special;
pub mod toy;
mod toy_grid;

pub use error::TargetError;
pub use registry::{
    CATALOG, DEFAULT_TARGET, NAMES, TargetInfo, TargetKind, by_name, info, load_shared, names,
};
pub use source::{SourceKind, TargetSource};

/// Largest file (image or CSV) accepted, in bytes: 20 MB.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// A target from a CLI spec: a name from [`NAMES`], an image `path.png` / `.jpg` / `.jpeg`
/// (append `:invert` to make light pixels the mass), or a data set `path.csv`. Files are read
/// natively only; on the web use [`from_image_bytes`] and [`from_csv_text`].
pub fn load(spec: &str) -> Result<Box<dyn Target>, TargetError> {
    let spec = spec.trim();
    if info(spec).is_some() {
        return by_name(spec);
    }
    let (path, invert) = match spec.strip_suffix(":invert") {
        Some(path) => (path, true),
        None => (spec, false),
    };
    let extension = std::path::Path::new(path)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("png" | "jpg" | "jpeg") => from_image_bytes(&read_limited(path)?, invert),
        Some("csv") if !invert => {
            let bytes = read_limited(path)?;
            let text = String::from_utf8(bytes).map_err(|_| TargetError::CsvLine {
                line: 1,
                reason: "the file is not UTF-8 text".to_owned(),
            })?;
            from_csv_text(&text)
        }
        _ if !spec.contains(['.', '/', '\\']) => by_name(&spec.to_ascii_lowercase()),
        _ => Err(TargetError::UnsupportedFile {
            spec: spec.to_owned(),
        }),
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`], refusing larger ones before reading them.
/// Why the bounded read too: a pipe, a device or a file that grows reports no (or a stale)
/// size, and must not be read without end.
pub fn read_limited(path: &str) -> Result<Vec<u8>, TargetError> {
    use std::io::Read as _;
    let io = |e: std::io::Error| TargetError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let too_large = |bytes: u64| TargetError::FileTooLarge {
        bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
        limit: MAX_FILE_BYTES,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_FILE_BYTES as u64 {
        return Err(too_large(len));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// An image target from PNG/JPEG bytes (a dropped or opened file): dark pixels carry the mass,
/// or light ones with `invert`. See [`image`].
pub fn from_image_bytes(bytes: &[u8], invert: bool) -> Result<Box<dyn Target>, TargetError> {
    Ok(Box::new(image::from_image_bytes(bytes, invert)?))
}

/// A data-set target from CSV text (an uploaded file), resampled without jitter. See [`csv`].
pub fn from_csv_text(text: &str) -> Result<Box<dyn Target>, TargetError> {
    Ok(Box::new(csv::from_csv_text(text, csv::Jitter::None)?))
}

/// A rectangle of the plane, in data coordinates, that shows a target well.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewRect {
    /// Lower-left corner `[x, y]`.
    pub min: [f32; 2],
    /// Upper-right corner `[x, y]`.
    pub max: [f32; 2],
}

impl Default for ViewRect {
    /// `[-4, 4]²`, where every built-in target lives.
    fn default() -> Self {
        Self::square(4.0)
    }
}

impl ViewRect {
    /// The square `[-half, half]²`.
    pub fn square(half: f32) -> Self {
        Self {
            min: [-half, -half],
            max: [half, half],
        }
    }
}

/// How trustworthy a target's `log_density` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DensityKind {
    /// A closed form, normalised by `log_normalizer`.
    Exact,
    /// An unnormalised energy whose normaliser was computed numerically (quadrature on a grid).
    NumericNormalizer,
    /// No closed form exists (data sets defined by a sampler): a kernel density estimate on
    /// many samples stands in, and the UI says so.
    KernelEstimate,
}

/// A 2-D target density.
pub trait Target: Send + Sync {
    /// Stable identifier used in URLs and on the CLI (`moons`, `8gaussians`, `u1`, …).
    fn name(&self) -> &str;
    /// One stable sentence shown in the UI.
    fn description(&self) -> &str;
    /// The rectangle the app shows by default.
    fn view(&self) -> ViewRect;
    /// Fills `out` with independent samples. Allocates nothing: the trainer calls it every step.
    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]);
    /// The (possibly unnormalised) log-density at `x`; `-inf` where the density is zero.
    fn log_density(&self, x: [f64; 2]) -> f64;
    /// `log Z` such that `log_density(x) - log Z` is normalised.
    fn log_normalizer(&self) -> f64;
    /// How `log_density` was obtained.
    fn density_kind(&self) -> DensityKind;
    /// Whether `log_density` is finite and smooth on the whole plane (energies, mixtures), so
    /// its score can drive reverse-KL training. Data sets with empty regions, grids and
    /// pictures are not: their score is zero or undefined almost everywhere.
    fn has_smooth_log_density(&self) -> bool {
        false
    }
    /// Whether this is a picture (painted or an image): finer detail than the toys, which some
    /// families train on a longer schedule ([`FamilyInfo::adam_for`](crate::flows::FamilyInfo::adam_for)).
    fn is_picture(&self) -> bool {
        false
    }

    /// `n` fresh samples.
    fn sample(&self, n: usize, rng: &mut Rng) -> Vec<[f32; 2]> {
        let mut out = vec![[0.0; 2]; n];
        self.sample_into(rng, &mut out);
        out
    }

    /// The normalised log-density.
    fn normalized_log_density(&self, x: [f64; 2]) -> f64 {
        self.log_density(x) - self.log_normalizer()
    }

    /// `∇ log p(x)` (for reverse KL), by default by central differences in f64 with step
    /// `1e-5 · max(1, |x_i|)` (error ~1e-9 for smooth densities). Zero where `log p` is not
    /// finite on both sides of the step (outside a support, on a checkerboard edge).
    fn grad_log_density(&self, x: [f64; 2]) -> [f64; 2] {
        let mut grad = [0.0; 2];
        for (i, g) in grad.iter_mut().enumerate() {
            let h = 1e-5 * x[i].abs().max(1.0);
            let (mut lo, mut hi) = (x, x);
            lo[i] -= h;
            hi[i] += h;
            let d = (self.log_density(hi) - self.log_density(lo)) / (2.0 * h);
            *g = if d.is_finite() { d } else { 0.0 };
        }
        grad
    }
}
