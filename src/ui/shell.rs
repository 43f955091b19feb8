//! The layout: the model panel on the left, the status line at the bottom, the views in the
//! middle —
//! and the registry of panels, which the layout and the tests both read.

use super::controls::ControlsPanel;
use super::notes::NotesPanel;
use super::status::StatusPanel;
use super::views::ViewsPanel;
use super::{Panel, PanelContext};

/// Where a panel sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dock {
    /// The side panel on the left.
    Left,
    /// The side panel on the right.
    Right,
    /// The line at the bottom.
    Bottom,
    /// The rest of the window.
    Central,
}

/// Width of the model panel, in points.
pub const LEFT_WIDTH: f32 = 280.0;
/// Starting width of the notes panel at most, in points (the user may drag it).
pub const RIGHT_WIDTH: f32 = 300.0;

/// Every panel of the app.
#[derive(Default)]
pub struct Shell {
    controls: ControlsPanel,
    status: StatusPanel,
    notes: NotesPanel,
    views: ViewsPanel,
}

impl Shell {
    /// The registered panels with their docks, in the order they are laid out (egui lays out
    /// side panels before the central one).
    pub fn panels_mut(&mut self) -> [(Dock, &mut dyn Panel); 4] {
        [
            (Dock::Left, &mut self.controls),
            (Dock::Bottom, &mut self.status),
            (Dock::Right, &mut self.notes),
            (Dock::Central, &mut self.views),
        ]
    }

    /// How the model panel says an opened image becomes a density.
    pub fn image_options(&self) -> super::controls::ImageOptions {
        self.controls.image
    }

    /// Lays out and draws every panel.
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        for (dock, panel) in self.panels_mut() {
            match dock {
                Dock::Left => {
                    egui::Panel::left(panel.name())
                        .resizable(false)
                        .exact_size(LEFT_WIDTH)
                        .show(ui, |ui| panel.ui(ui, ctx));
                }
                Dock::Right if !ctx.workspace.spec().notes => {}
                Dock::Right => {
                    // Narrower in a small window, so the views keep most of it.
                    let width = (0.24 * ui.ctx().content_rect().width()).clamp(220.0, RIGHT_WIDTH);
                    egui::Panel::right(panel.name())
                        .resizable(true)
                        .default_size(width)
                        .show(ui, |ui| panel.ui(ui, ctx));
                }
                Dock::Bottom => {
                    egui::Panel::bottom(panel.name()).show(ui, |ui| panel.ui(ui, ctx));
                }
                Dock::Central => {
                    egui::CentralPanel::default()
                        .frame(egui::Frame::central_panel(ui.style()).inner_margin(6.0))
                        .show(ui, |ui| panel.ui(ui, ctx));
                }
            }
        }
    }
}
