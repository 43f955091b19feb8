//! The user interface: one file per panel, each behind the one small [`Panel`] trait (egui's
//! demo library is the model), wired by [`shell::Shell`].
//!
//! A panel reads the workspace and the status of this frame and changes nothing itself: it
//! pushes [`Command`]s, which the app applies once per frame, in one place. Nothing here
//! touches the engine or a trainer.
//!
//! - [`shell`]: the layout and the registry of panels (used by the app and the tests)
//! - [`controls`]: pickers, play / pause / step / reset, seed
//! - [`views`]: the views of the model (samples, layers, densities, field, loss curves)
//! - [`plot`]: drawing the plane (canvas, heat maps, dots, colour bars)
//! - [`status`]: the status line
//! - [`notes`]: the teaching notes beside the views
//! - [`renderer`]: which graphics API draws the UI
//! - [`fonts`]: the app's typeface

pub mod controls;
pub mod fonts;
pub mod notes;
pub mod plot;
pub mod renderer;
pub mod shell;
pub mod status;
pub mod views;

use crate::lab::{Command, StatusSnapshot, Workspace};
use renderer::RendererInfo;

/// What a panel may read this frame, and the one way it changes anything.
pub struct PanelContext<'a> {
    /// The workspace (read-only).
    pub workspace: &'a Workspace,
    /// Where the app stands this frame.
    pub status: &'a StatusSnapshot,
    /// What draws the UI.
    pub renderer: &'a RendererInfo,
    /// Where a panel puts what the user asked for; applied after the frame's panels ran.
    pub commands: &'a mut Vec<Command>,
}

/// A panel of the app.
pub trait Panel {
    /// A stable name (keys the snapshot of the panel in the tests).
    fn name(&self) -> &'static str;
    /// Draws the panel into `ui`.
    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>);
}
