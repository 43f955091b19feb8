//! The user interface: one file per panel, plus the pure pieces they share.
//!
//! Panels follow one shape (`struct XPanel` + `Default` + `fn ui(&mut self, ui, view) -> …`):
//! they read plain data and return what the user asked for; [`crate::app::FlowlabApp`] owns the
//! state and wires them together. Nothing here touches wgpu buffers or the engine.
//!
//! - [`controls`]: side panel (pickers, play/pause/step, seed)
//! - [`plot`]: the plot area (heat map, samples, axes)
//! - [`status`]: the status line and the snapshot behind the browser test hook
//! - [`scene`]: the scene and its URL-fragment form
//! - [`fonts`]: the app's typeface
//! - [`training`]: the seam to the trainer

pub mod controls;
pub mod fonts;
pub mod plot;
pub mod scene;
pub mod status;
pub mod training;
