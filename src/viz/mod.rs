//! Pictures of densities and samples, shared by the app and the CLI: heat-map grids and their
//! colour map ([`density`]), drawing into RGBA images ([`raster`]), and the layer-by-layer
//! picture with its base-space colour wheel ([`trace`]).
//!
//! Pure computation on plain data (`targets::ViewRect`, `flows::eval::Trace`, `image`'s
//! `RgbaImage`). Must not depend on `ui`, `app`, `cli`, egui or eframe, and does no file IO.

pub mod density;
pub mod png;
pub mod raster;
pub mod trace;

pub use density::{DYNAMIC_RANGE_NATS, DensityGrid, Scale, colormap, diverging};
pub use trace::base_color;
