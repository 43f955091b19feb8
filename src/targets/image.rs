//! Images as densities: PNG/JPEG bytes → luminance → a grid of cell masses → a [`GridTarget`]
//! (sampled and scored like a painted grid).
//!
//! Mass per pixel is the ink `1 − L` (dark = mass) or `L` with `invert`, where `L ∈ [0, 1]` is the
//! luminance; ink below 2% is treated as paper (JPEG noise on a white page would otherwise spread
//! a faint haze of mass), and transparent pixels carry none. The image is shrunk so its longer
//! side has at most [`MAX_GRID_SIDE`] cells by averaging the pixels that fall in each cell
//! (aspect kept), and shown in a view whose longer side spans `[−4, 4]`.
//!
//! Refused, with a [`TargetError`]: files over [`super::MAX_FILE_BYTES`], anything but PNG/JPEG,
//! sides above [`MAX_IMAGE_SIDE`] or below [`MIN_IMAGE_SIDE`], aspect ratios above
//! [`MAX_ASPECT`], and blank images.

use super::grid::GridDensity;
use super::painted::{FLOOR_FRACTION, GridTarget};
use super::{MAX_FILE_BYTES, TargetError, ViewRect};
use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest accepted image side, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Smallest accepted image side, in pixels.
pub const MIN_IMAGE_SIDE: u32 = 4;
/// Largest accepted ratio of the longer side to the shorter.
pub const MAX_ASPECT: u32 = 32;
/// Cells on the longer side of the density grid.
pub const MAX_GRID_SIDE: u32 = 128;
/// Ink below this counts as blank paper.
const PAPER: f32 = 0.02;
/// Half the longer side of the view.
const VIEW_HALF: f32 = 4.0;

fn decode_error(reason: impl ToString) -> TargetError {
    TargetError::ImageDecode {
        reason: reason.to_string(),
    }
}

/// Width and height of the grid for a `width × height` image.
fn grid_size(width: u32, height: u32) -> (usize, usize) {
    let longer = width.max(height);
    if longer <= MAX_GRID_SIDE {
        return (width as usize, height as usize);
    }
    let scale = MAX_GRID_SIDE as f64 / longer as f64;
    let side = |s: u32| ((s as f64 * scale).round() as usize).max(1);
    (side(width), side(height))
}

/// A density from PNG or JPEG `bytes`: dark pixels carry mass, or light ones with `invert`.
pub fn from_image_bytes(bytes: &[u8], invert: bool) -> Result<GridTarget, TargetError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(TargetError::FileTooLarge {
            bytes: bytes.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(decode_error("the file is empty"));
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(decode_error)
    };
    match reader()?.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(other) => return Err(decode_error(format!("{other:?} is not supported"))),
        None => return Err(decode_error("it is not an image file")),
    }
    let (width, height) = reader()?.into_dimensions().map_err(decode_error)?;
    // Why before decoding: a huge image is refused before its pixels are allocated.
    check_size(width, height)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    let mut decoder = reader()?;
    decoder.limits(limits);
    let pixels = decoder.decode().map_err(decode_error)?.into_luma_alpha8();
    let (width, height) = pixels.dimensions();
    from_luma_alpha(width, height, pixels.as_raw(), invert)
}

/// A density from decoded pixels: `luma_alpha` holds a luminance and an alpha byte per pixel,
/// rows top to bottom (the web app's browser-decoded images, through [`luma_alpha_of_rgba`]).
pub fn from_luma_alpha(
    width: u32,
    height: u32,
    luma_alpha: &[u8],
    invert: bool,
) -> Result<GridTarget, TargetError> {
    check_size(width, height)?;
    if luma_alpha.len() != 2 * width as usize * height as usize {
        return Err(decode_error("its pixels do not fill its size"));
    }
    let (nx, ny) = grid_size(width, height);

    let mut sums = vec![0.0f64; nx * ny];
    let mut counts = vec![0u32; nx * ny];
    let pixels = luma_alpha
        .chunks_exact(2)
        .enumerate()
        .map(|(k, p)| (k as u32 % width, k as u32 / width, p));
    for (x, y, p) in pixels {
        let luminance = p[0] as f32 / 255.0;
        let alpha = p[1] as f32 / 255.0;
        let ink = if invert { luminance } else { 1.0 - luminance };
        let mass = ((ink - PAPER) / (1.0 - PAPER)).max(0.0) * alpha;
        // Image rows run downward; grid rows run upward.
        let i = (x as usize * nx / width as usize).min(nx - 1);
        let j = ny - 1 - (y as usize * ny / height as usize).min(ny - 1);
        if let (Some(s), Some(c)) = (sums.get_mut(j * nx + i), counts.get_mut(j * nx + i)) {
            *s += mass as f64;
            *c += 1;
        }
    }
    let values: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    if values.iter().all(|&v| v <= 0.0) {
        return Err(TargetError::ImageBlank {
            ink: if invert { "light" } else { "dark" },
        });
    }
    let longer = nx.max(ny) as f32;
    let half = [
        VIEW_HALF * nx as f32 / longer,
        VIEW_HALF * ny as f32 / longer,
    ];
    let view = ViewRect {
        min: [-half[0], -half[1]],
        max: half,
    };
    let grid = GridDensity::new(
        [-half[0] as f64, -half[1] as f64],
        [half[0] as f64, half[1] as f64],
        nx,
        ny,
        values,
        FLOOR_FRACTION,
    )?;
    let ink = if invert { "light" } else { "dark" };
    let description = format!(
        "Your image ({width}×{height} px on a {nx}×{ny} grid): {ink} pixels carry the mass; exact grid density."
    );
    Ok(GridTarget::new("image", &description, view, grid))
}

/// Checks an image's size: sides within [`MIN_IMAGE_SIDE`]…[`MAX_IMAGE_SIDE`], aspect at most
/// [`MAX_ASPECT`].
pub fn check_size(width: u32, height: u32) -> Result<(), TargetError> {
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(TargetError::ImageTooLarge {
            width,
            height,
            limit: MAX_IMAGE_SIDE,
        });
    }
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Err(TargetError::ImageTooSmall {
            width,
            height,
            min: MIN_IMAGE_SIDE,
        });
    }
    if width.max(height) > MAX_ASPECT * width.min(height) {
        return Err(TargetError::InvalidParameter {
            what: "image shape",
            reason: format!(
                "{width}×{height} pixels is more than {MAX_ASPECT} times longer than wide"
            ),
        });
    }
    Ok(())
}

/// Luminance (Rec. 709 weights, as the `image` crate's) and alpha of RGBA pixels.
pub fn luma_alpha_of_rgba(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(f32::from);
            let luma = (0.2126 * r + 0.7152 * g + 0.0722 * b)
                .round()
                .clamp(0.0, 255.0) as u8;
            [luma, p[3]]
        })
        .collect()
}
