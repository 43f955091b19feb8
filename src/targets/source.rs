//! A target as data: what the app edits, sends to its trainers, writes into a link and hashes.
//!
//! A built-in target is its name; an edited one carries its whole content — a painted grid,
//! the components of a Gaussian mixture, an image reduced to its grid of intensities, or a
//! CSV's points. [`TargetSource::build`] turns it into a [`Target`].
//!
//! Its **text form** ([`TargetSource::to_text`] ⇄ [`TargetSource::from_text`]) is the name, or
//! `kind:payload` where the payload is a small little-endian binary record, deflated and
//! written in URL-safe base64 (a painted 64² grid takes a few hundred characters). Everything
//! the record can hold is stored in it exactly: grid intensities as bytes (1/255 steps),
//! numbers as `f32`. [`TargetSource::canonical`] rounds an edited target the same way, so the
//! target trained on is the one a link restores, bit for bit, and [`TargetSource::fingerprint`]
//! (a hash of that record) is equal for equal targets wherever they were made.
//!
//! Decoding never panics and never allocates without bound: the inflated record is capped at
//! [`MAX_RECORD_BYTES`], sizes are checked before use, and every problem is a
//! [`TargetError`] saying what is wrong.

use std::sync::Arc;

use base64::Engine as _;

use super::csv::{self, MAX_CSV_ROWS};
use super::mixture::{Component, MAX_COMPONENTS, Mixture};
use super::painted::{MAX_GRID_SIDE, PaintedGrid};
use super::{Target, TargetError, ViewRect};

/// Points of a CSV target kept in the app (more are thinned evenly): a link holding them stays
/// under ~250 kB, which every browser accepts.
pub const MAX_APP_POINTS: usize = 20_000;
/// Largest inflated record accepted when decoding (a 1024² grid, with room to spare).
pub const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;
/// Version byte leading every record (a later format can still read old links).
const RECORD_VERSION: u8 = 1;

/// What kind of target a [`TargetSource`] is (the test hook's `target_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// One of the catalogue's targets.
    Builtin,
    /// A grid painted with the brush.
    Painted,
    /// A Gaussian mixture placed with the mouse.
    Mixture,
    /// An image, as its grid.
    Image,
    /// A CSV of points.
    Csv,
}

impl SourceKind {
    /// Every kind, in the order the editor lists them.
    pub const ALL: [SourceKind; 5] = [
        SourceKind::Builtin,
        SourceKind::Painted,
        SourceKind::Mixture,
        SourceKind::Image,
        SourceKind::Csv,
    ];

    /// Its name: the hook's `target_kind`, and the prefix of the text form.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Builtin => "builtin",
            SourceKind::Painted => "painted",
            SourceKind::Mixture => "mixture",
            SourceKind::Image => "image",
            SourceKind::Csv => "csv",
        }
    }
}

/// A target as data (see the module doc).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TargetSource {
    /// A catalogue target, by name.
    Builtin(String),
    /// A painted grid of intensities in `[0, 1]`.
    Painted(PaintedGrid),
    /// A Gaussian mixture.
    Mixture(Mixture),
    /// An image, as its grid of intensities in `[0, 1]` (1 at the densest cell).
    Image(PaintedGrid),
    /// Points of a data set.
    Csv(Vec<[f32; 2]>),
}

/// A ready-made edited target: a starting point for the brush or the mixture editor, with the
/// lesson it shows. Links may name one (`painted:ring`), so a lecturer can type a scene.
pub struct Preset {
    /// Its name after the kind in a link (`painted:<name>`).
    pub name: &'static str,
    /// Its label in the target menu.
    pub label: &'static str,
    /// What it shows, one sentence.
    pub lesson: &'static str,
    /// Its content.
    pub make: fn() -> TargetSource,
}

impl Preset {
    /// Its text form in a link, e.g. `painted:ring`.
    pub fn link(&self) -> String {
        format!("{}:{}", (self.make)().kind().name(), self.name)
    }
}

/// The presets, in the order the target menu lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "two-blobs",
        label: "paint: two blobs",
        lesson: "Two separate blobs: watch the flow stretch a bridge between them (a flow is a \
                 homeomorphism and cannot tear the plane); paint over it with the brush",
        make: || TargetSource::Painted(PaintedGrid::two_blobs()),
    },
    Preset {
        name: "ring",
        label: "paint: a ring",
        lesson: "A ring, with a hole the Gaussian does not have; paint over it with the brush",
        make: || TargetSource::Painted(PaintedGrid::ring()),
    },
    Preset {
        name: "letters",
        label: "paint: letters",
        lesson: "The word FLOW, to paint over",
        make: || TargetSource::Painted(PaintedGrid::text("FLOW")),
    },
    Preset {
        name: "triangle",
        label: "mixture (edit with the mouse)",
        lesson: "A Gaussian mixture: drag its centres, click to add one, change widths and weights",
        make: || TargetSource::Mixture(Mixture::default()),
    },
];

/// A catalogue target by name (the name is checked when the target is built).
impl From<&str> for TargetSource {
    fn from(name: &str) -> Self {
        Self::Builtin(name.to_owned())
    }
}

impl Default for TargetSource {
    fn default() -> Self {
        TargetSource::Builtin(super::DEFAULT_TARGET.to_owned())
    }
}

impl TargetSource {
    /// Its kind.
    pub fn kind(&self) -> SourceKind {
        match self {
            TargetSource::Builtin(_) => SourceKind::Builtin,
            TargetSource::Painted(_) => SourceKind::Painted,
            TargetSource::Mixture(_) => SourceKind::Mixture,
            TargetSource::Image(_) => SourceKind::Image,
            TargetSource::Csv(_) => SourceKind::Csv,
        }
    }

    /// Its short name: the built-in's name, else the kind's (`painted`, `mixture`, …).
    pub fn name(&self) -> &str {
        match self {
            TargetSource::Builtin(name) => name,
            other => other.kind().name(),
        }
    }

    /// The target it describes.
    pub fn build(&self) -> Result<Arc<dyn Target>, TargetError> {
        Ok(match self {
            TargetSource::Builtin(name) => super::load_shared(name)?,
            TargetSource::Painted(grid) => Arc::new(grid.to_target(
                "painted",
                "Your painting: the brush's strokes are the density (exact grid density).",
            )?),
            TargetSource::Mixture(mixture) => Arc::new(mixture.clone()),
            TargetSource::Image(grid) => {
                let (nx, ny) = grid.size();
                let description = format!(
                    "Your image on a {nx}×{ny} grid: its ink is the density (exact grid density)."
                );
                Arc::new(grid.to_target("image", &description)?)
            }
            TargetSource::Csv(points) => {
                Arc::new(csv::from_points(points.clone(), csv::Jitter::None)?)
            }
        })
    }

    /// The same target as its text form stores it: grid intensities rounded to 1/255,
    /// numbers to `f32`, a CSV thinned to [`MAX_APP_POINTS`].
    pub fn canonical(&self) -> Self {
        match self {
            TargetSource::Builtin(_) => self.clone(),
            TargetSource::Painted(grid) => TargetSource::Painted(quantized(grid)),
            TargetSource::Image(grid) => TargetSource::Image(quantized(grid)),
            TargetSource::Mixture(mixture) => {
                let components = mixture
                    .components()
                    .iter()
                    .map(|c| Component {
                        mean: c.mean.map(|v| v as f32 as f64),
                        std: c.std.map(|v| v as f32 as f64),
                        weight: c.weight as f32 as f64,
                    })
                    .collect();
                // Why the fallback: rounding a valid component to f32 keeps it valid (the
                // bounds are far inside f32's range), so this never happens in practice.
                Mixture::new(components).map_or_else(|_| self.clone(), TargetSource::Mixture)
            }
            TargetSource::Csv(points) => TargetSource::Csv(thinned(points, MAX_APP_POINTS)),
        }
    }

    /// A hash of the canonical target (FNV-1a 64 of its record), as 16 hex digits: equal for
    /// equal targets, whether painted here or read from a link.
    pub fn fingerprint(&self) -> String {
        let mut hash = Fnv1a::default();
        hash.write(self.kind().name().as_bytes());
        match self.canonical() {
            TargetSource::Builtin(name) => hash.write(name.as_bytes()),
            canonical => hash.write(&canonical.record()),
        }
        format!("{:016x}", hash.0)
    }

    /// The text form: a built-in's name, else `kind:payload` (see the module doc).
    pub fn to_text(&self) -> String {
        match self {
            TargetSource::Builtin(name) => name.clone(),
            other => {
                let record = other.canonical().record();
                let deflated = miniz_oxide::deflate::compress_to_vec(&record, 9);
                format!(
                    "{}:{}",
                    other.kind().name(),
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(deflated)
                )
            }
        }
    }

    /// Reads [`TargetSource::to_text`]'s form back (a built-in name in any case).
    pub fn from_text(text: &str) -> Result<Self, TargetError> {
        let Some((kind, payload)) = text.split_once(':') else {
            let name = text.trim().to_ascii_lowercase();
            return match super::info(&name) {
                Some(info) => Ok(TargetSource::Builtin(info.name.to_owned())),
                None => Err(TargetError::UnknownName {
                    name: text.to_owned(),
                    known: known_forms(),
                }),
            };
        };
        if let Some(preset) = PRESETS
            .iter()
            .find(|p| p.link().eq_ignore_ascii_case(text.trim()))
        {
            // Why canonical: the scene then holds exactly the target its own link (written
            // from the record) reloads, not one that differs below 1/255 (found by fuzzing).
            return Ok((preset.make)().canonical());
        }
        let kind = SourceKind::ALL
            .into_iter()
            .find(|k| *k != SourceKind::Builtin && k.name() == kind.to_ascii_lowercase())
            .ok_or_else(|| TargetError::UnknownName {
                name: kind.to_owned(),
                known: known_forms(),
            })?;
        let bad = |reason: &str| bad_record(kind, reason);
        let deflated = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| bad("its data is not URL-safe base64 (was the link cut short?)"))?;
        let record =
            miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_RECORD_BYTES)
                .map_err(|_| bad("its data does not inflate (was the link cut short?)"))?;
        let mut reader = Reader::new(&record);
        if reader.u8()? != RECORD_VERSION {
            return Err(bad("it was written by an unknown version of flowlab"));
        }
        let source = match kind {
            SourceKind::Painted => TargetSource::Painted(reader.grid(kind)?),
            SourceKind::Image => TargetSource::Image(reader.grid(kind)?),
            SourceKind::Mixture => TargetSource::Mixture(reader.mixture()?),
            SourceKind::Csv => TargetSource::Csv(reader.points()?),
            SourceKind::Builtin => unreachable_builtin(),
        };
        reader.finish(kind)?;
        // Why build once here: a record can be well formed and still describe no density (a
        // blank grid); the link's reader should hear that now, not from a trainer.
        source.build()?;
        Ok(source)
    }

    /// An image (PNG/JPEG bytes) as a target: dark pixels carry the mass, or light ones with
    /// `invert`; cells fainter than `threshold` (of the darkest) are left empty.
    pub fn image_from_bytes(
        bytes: &[u8],
        invert: bool,
        threshold: f32,
    ) -> Result<Self, TargetError> {
        let target = super::image::from_image_bytes(bytes, invert)?;
        Self::image_of(&target, invert, threshold)
    }

    /// An image the platform decoded (RGBA bytes, rows top to bottom) as a target: as
    /// [`TargetSource::image_from_bytes`]. Why: the browser decodes images itself, so the
    /// page does not download decoders of its own.
    pub fn image_from_rgba(
        width: u32,
        height: u32,
        rgba: &[u8],
        invert: bool,
        threshold: f32,
    ) -> Result<Self, TargetError> {
        super::image::check_size(width, height)?;
        let luma_alpha = super::image::luma_alpha_of_rgba(rgba);
        let target = super::image::from_luma_alpha(width, height, &luma_alpha, invert)?;
        Self::image_of(&target, invert, threshold)
    }

    fn image_of(
        target: &super::painted::GridTarget,
        invert: bool,
        threshold: f32,
    ) -> Result<Self, TargetError> {
        let grid = target.grid();
        let (nx, ny) = grid.size();
        let mut cells: Vec<f32> = (0..ny)
            .flat_map(|j| (0..nx).map(move |i| (i, j)))
            .map(|(i, j)| grid.cell_probability(i, j) as f32)
            .collect();
        let max = cells.iter().copied().fold(0.0f32, f32::max);
        let threshold = if threshold.is_finite() {
            threshold.clamp(0.0, 1.0)
        } else {
            0.0
        };
        for c in &mut cells {
            let level = if max > 0.0 { *c / max } else { 0.0 };
            *c = if level < threshold { 0.0 } else { level };
        }
        if cells.iter().all(|&c| to_level(c) == 0) {
            return Err(TargetError::ImageBlank {
                ink: if invert { "light" } else { "dark" },
            });
        }
        let source = TargetSource::Image(PaintedGrid::from_cells(target.view(), nx, ny, cells)?);
        Ok(source.canonical())
    }

    /// A CSV's points as a target (thinned evenly to [`MAX_APP_POINTS`]).
    pub fn csv_from_text(text: &str) -> Result<Self, TargetError> {
        let points = csv::parse_points(text)?;
        let source = TargetSource::Csv(thinned(&points, MAX_APP_POINTS));
        source.build()?;
        Ok(source)
    }

    /// The binary record of an edited target (see [`TargetSource::to_text`]).
    fn record(&self) -> Vec<u8> {
        let mut out = vec![RECORD_VERSION];
        match self {
            TargetSource::Builtin(name) => out.extend_from_slice(name.as_bytes()),
            TargetSource::Painted(grid) | TargetSource::Image(grid) => {
                let (nx, ny) = grid.size();
                out.extend_from_slice(&(nx as u16).to_le_bytes());
                out.extend_from_slice(&(ny as u16).to_le_bytes());
                let view = grid.view();
                for v in [view.min[0], view.min[1], view.max[0], view.max[1]] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend(grid.cells().iter().map(|&c| to_level(c)));
            }
            TargetSource::Mixture(mixture) => {
                out.push(mixture.components().len() as u8);
                for c in mixture.components() {
                    for v in [c.mean[0], c.mean[1], c.std[0], c.std[1], c.weight] {
                        out.extend_from_slice(&(v as f32).to_le_bytes());
                    }
                }
            }
            TargetSource::Csv(points) => {
                out.extend_from_slice(&(points.len() as u32).to_le_bytes());
                for p in points {
                    out.extend_from_slice(&p[0].to_le_bytes());
                    out.extend_from_slice(&p[1].to_le_bytes());
                }
            }
        }
        out
    }
}

/// A grid's intensity as a byte level `0…255`.
fn to_level(cell: f32) -> u8 {
    (cell.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn quantized(grid: &PaintedGrid) -> PaintedGrid {
    let (nx, ny) = grid.size();
    let cells = grid
        .cells()
        .iter()
        .map(|&c| f32::from(to_level(c)) / 255.0)
        .collect();
    PaintedGrid::from_cells(grid.view(), nx, ny, cells).unwrap_or_else(|_| grid.clone())
}

/// At most `limit` of `points`, evenly spread over the list (all of them if there are fewer).
pub fn thinned(points: &[[f32; 2]], limit: usize) -> Vec<[f32; 2]> {
    if points.len() <= limit || limit == 0 {
        return points.to_vec();
    }
    (0..limit)
        .map(|k| points[k * points.len() / limit])
        .collect()
}

fn known_forms() -> String {
    let builtins = super::names().collect::<Vec<_>>().join(", ");
    let presets = PRESETS
        .iter()
        .map(Preset::link)
        .collect::<Vec<_>>()
        .join(", ");
    format!("{builtins}, a preset ({presets}), or an edited target (painted:…, image:…, csv:…)")
}

fn bad_record(kind: SourceKind, reason: &str) -> TargetError {
    TargetError::InvalidParameter {
        what: "target in the link",
        reason: format!("the {} target cannot be read: {reason}", kind.name()),
    }
}

fn unreachable_builtin() -> TargetSource {
    // Why not `unreachable!`: the kind was looked up among the edited kinds only.
    TargetSource::default()
}

/// Reads a record from its start, refusing to read past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TargetError> {
        if self.bytes.len() < n {
            return Err(TargetError::InvalidParameter {
                what: "target in the link",
                reason: "its data ends too soon (was the link cut short?)".to_owned(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, TargetError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TargetError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, TargetError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self) -> Result<f32, TargetError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn grid(&mut self, kind: SourceKind) -> Result<PaintedGrid, TargetError> {
        let (nx, ny) = (usize::from(self.u16()?), usize::from(self.u16()?));
        if !(1..=MAX_GRID_SIDE).contains(&nx) || !(1..=MAX_GRID_SIDE).contains(&ny) {
            return Err(bad_record(
                kind,
                &format!("a {nx}×{ny} grid is not allowed"),
            ));
        }
        let bounds = [self.f32()?, self.f32()?, self.f32()?, self.f32()?];
        let view = ViewRect {
            min: [bounds[0], bounds[1]],
            max: [bounds[2], bounds[3]],
        };
        let cells = self
            .take(nx * ny)?
            .iter()
            .map(|&level| f32::from(level) / 255.0)
            .collect();
        PaintedGrid::from_cells(view, nx, ny, cells)
    }

    fn mixture(&mut self) -> Result<Mixture, TargetError> {
        let count = usize::from(self.u8()?);
        if count > MAX_COMPONENTS {
            return Err(bad_record(
                SourceKind::Mixture,
                &format!("{count} components (at most {MAX_COMPONENTS})"),
            ));
        }
        let mut components = Vec::with_capacity(count);
        for _ in 0..count {
            let v = [
                self.f32()?,
                self.f32()?,
                self.f32()?,
                self.f32()?,
                self.f32()?,
            ];
            components.push(Component {
                mean: [f64::from(v[0]), f64::from(v[1])],
                std: [f64::from(v[2]), f64::from(v[3])],
                weight: f64::from(v[4]),
            });
        }
        Mixture::new(components)
    }

    fn points(&mut self) -> Result<Vec<[f32; 2]>, TargetError> {
        let count = self.u32()? as usize;
        if count > MAX_CSV_ROWS.min(MAX_RECORD_BYTES / 8) {
            return Err(bad_record(
                SourceKind::Csv,
                &format!("{count} points is too many"),
            ));
        }
        // Why checked first: `count` comes from the link; the bytes must really be there.
        let bytes = self.take(count * 8)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| {
                [
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    f32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                ]
            })
            .collect())
    }

    fn finish(&self, kind: SourceKind) -> Result<(), TargetError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(bad_record(kind, "its data has bytes left over"))
        }
    }
}

/// FNV-1a, 64 bits: tiny, stable across platforms and versions (unlike `std`'s hasher).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn painted() -> TargetSource {
        let mut grid = PaintedGrid::default();
        let brush = super::super::painted::Brush::default();
        grid.stroke([1.0, 0.5], &brush);
        grid.stroke([-2.0, 1.5], &brush);
        TargetSource::Painted(grid)
    }

    #[test]
    fn every_kind_survives_its_text_form_exactly() {
        let sources = [
            TargetSource::Builtin("8gaussians".into()),
            painted(),
            TargetSource::Mixture(Mixture::default()),
            TargetSource::Image(PaintedGrid::ring()),
            TargetSource::Csv(vec![[0.25, -1.5], [1.0, 2.0], [3.5, 0.125]]),
        ];
        for source in sources {
            let text = source.to_text();
            let back = TargetSource::from_text(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back, source.canonical(), "{text}");
            assert_eq!(back.fingerprint(), source.fingerprint(), "{text}");
            assert_eq!(back.to_text(), text);
            assert!(back.build().is_ok());
        }
    }

    #[test]
    fn a_painted_grid_is_short_in_a_link() {
        let text = painted().to_text();
        assert!(
            text.starts_with("painted:") && text.len() < 600,
            "{}",
            text.len()
        );
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b))
        );
    }

    #[test]
    fn an_image_decoded_by_the_platform_is_the_same_target_as_its_file() {
        // A dark disc on white, with a transparent corner.
        let (w, h) = (40u32, 30u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|k| {
                let (x, y) = ((k % w) as f32 - 20.0, (k / w) as f32 - 15.0);
                let ink = if x * x + y * y < 100.0 { 30 } else { 250 };
                let alpha = if k % w < 3 && k / w < 3 { 0 } else { 255 };
                [ink, ink / 2, ink, alpha]
            })
            .collect();
        let png = crate::viz::png::encode_rgba(w, h, &rgba).unwrap();
        let from_file = TargetSource::image_from_bytes(&png, false, 0.1).unwrap();
        let from_pixels = TargetSource::image_from_rgba(w, h, &rgba, false, 0.1).unwrap();
        assert_eq!(from_file.fingerprint(), from_pixels.fingerprint());
        assert!(TargetSource::image_from_rgba(w, h, &rgba[4..], false, 0.1).is_err());
        assert!(TargetSource::image_from_rgba(2, 2, &[0; 16], false, 0.1).is_err());
    }

    #[test]
    fn presets_are_named_in_links_and_build() {
        for preset in PRESETS {
            let source = TargetSource::from_text(&preset.link()).unwrap();
            assert_eq!(source, (preset.make)().canonical(), "{}", preset.name);
            assert!(source.build().is_ok(), "{}", preset.name);
            assert!(TargetSource::from_text(&preset.link().to_uppercase()).is_ok());
        }
        let err = TargetSource::from_text("painted:nope")
            .unwrap_err()
            .to_string();
        assert!(err.contains("painted"), "{err}");
    }

    #[test]
    fn fingerprints_tell_targets_apart() {
        let a = painted().fingerprint();
        let mut other = PaintedGrid::default();
        other.stroke([0.0, 0.0], &Default::default());
        assert_ne!(a, TargetSource::Painted(other).fingerprint());
        assert_ne!(
            TargetSource::Builtin("moons".into()).fingerprint(),
            TargetSource::Builtin("8gaussians".into()).fingerprint()
        );
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn bad_text_is_an_error_that_says_what_is_wrong() {
        let good = painted().to_text();
        let cases = [
            ("nope", "Unknown target"),
            ("spiral:abc", "Unknown target"),
            ("painted:!!!", "base64"),
            ("painted:AAAA", "inflate"),
            (&good[..good.len() / 2], "cut short"),
            (
                &TargetSource::Painted(PaintedGrid::default()).to_text(),
                "Nothing is painted",
            ),
        ];
        for (text, expected) in cases {
            let error = TargetSource::from_text(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_huge_point_count_is_refused_before_anything_is_allocated() {
        let mut record = vec![RECORD_VERSION];
        record.extend_from_slice(&u32::MAX.to_le_bytes());
        let text = format!(
            "csv:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(miniz_oxide::deflate::compress_to_vec(&record, 9))
        );
        let error = TargetSource::from_text(&text).unwrap_err().to_string();
        assert!(error.contains("too many"), "{error}");
    }

    #[test]
    fn thinning_keeps_an_even_spread() {
        let points: Vec<[f32; 2]> = (0..100).map(|i| [i as f32, 0.0]).collect();
        let kept = thinned(&points, 10);
        assert_eq!(kept.len(), 10);
        assert_eq!(kept[1][0], 10.0);
        assert_eq!(thinned(&points, 200).len(), 100);
    }
}
