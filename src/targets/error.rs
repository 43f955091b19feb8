//! The one error type of the targets layer: every bad input a user can give (an unknown name, an
//! unreadable file, a blank image, a malformed CSV, an empty painting) becomes one of these, with a
//! `Display` that is a single user-facing sentence. Nothing in `targets` panics on user input.

/// Why a target could not be built. `Display` is one sentence meant for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The name is not in [`super::CATALOG`].
    #[error("Unknown target \"{name}\"; choose one of: {known}.")]
    UnknownName {
        /// What was asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// A file spec whose extension is neither an image nor a CSV.
    #[error("Cannot load \"{spec}\": give a target name, a .png/.jpg/.jpeg image or a .csv file.")]
    UnsupportedFile {
        /// The spec as given.
        spec: String,
    },
    /// The operating system refused to read a file.
    #[error("Could not read \"{path}\": {reason}.")]
    Io {
        /// The path as given.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Files larger than the limit are refused before they are decoded.
    #[error("The file is too large ({:.1} MB); the limit is {:.0} MB.", *bytes as f64 / 1048576.0, *limit as f64 / 1048576.0)]
    FileTooLarge {
        /// Size of the input.
        bytes: usize,
        /// The limit ([`super::MAX_FILE_BYTES`]).
        limit: usize,
    },
    /// The bytes are not a PNG or JPEG the decoder understands.
    #[error("The image could not be decoded ({reason}); use a PNG or JPEG file.")]
    ImageDecode {
        /// The decoder's reason.
        reason: String,
    },
    /// Images with a side above the limit are refused.
    #[error("The image is {width}×{height} pixels; the limit is {limit} pixels per side.")]
    ImageTooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The limit ([`super::image::MAX_IMAGE_SIDE`]).
        limit: u32,
    },
    /// Images too small (or too thin) to describe a 2-D density.
    #[error("The image is {width}×{height} pixels; it needs at least {min} pixels on each side.")]
    ImageTooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The minimum side.
        min: u32,
    },
    /// A blank image (all white, or all black with `invert`) holds no mass.
    #[error("The image has no {ink} pixels to turn into a density; it looks blank.")]
    ImageBlank {
        /// "dark" or "light", whichever carries mass.
        ink: &'static str,
    },
    /// A painted grid (or a grid density) with nothing on it.
    #[error("Nothing is painted yet: paint some mass before using this target.")]
    NothingPainted,
    /// A CSV line that could not be parsed.
    #[error("CSV line {line}: {reason}.")]
    CsvLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Too many rows.
    #[error("The CSV has more than {limit} rows; use fewer points.")]
    CsvTooManyRows {
        /// The limit ([`super::csv::MAX_CSV_ROWS`]).
        limit: usize,
    },
    /// Too few points to define a data set.
    #[error("The CSV holds {found} point(s); at least {min} are needed.")]
    CsvTooFewPoints {
        /// Points found.
        found: usize,
        /// The minimum.
        min: usize,
    },
    /// A parameter out of its valid range (a negative width, a NaN position, …).
    #[error("Invalid {what}: {reason}.")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}
