//! The status line: renderer, compute, where training runs, progress; then what happened
//! (rollbacks, in amber) and what went wrong (in red), each once.

use egui::{Color32, RichText};

use super::{Panel, PanelContext};
use crate::flows::eval::ROUND_TRIP_TOLERANCE;

/// Colour of problems.
const ERROR_COLOR: Color32 = Color32::from_rgb(255, 110, 90);
/// Colour of events that did not stop training.
const NOTICE_COLOR: Color32 = Color32::from_rgb(255, 196, 80);

/// The status line.
#[derive(Default)]
pub struct StatusPanel;

impl Panel for StatusPanel {
    fn name(&self) -> &'static str {
        "status"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let status = ctx.status;
        let renderer = ctx.renderer;
        ui.horizontal_wrapped(|ui| {
            let adapter = if renderer.adapter.is_empty() {
                String::new()
            } else {
                format!(" ({})", renderer.adapter)
            };
            ui.label(format!("Renderer: {}{adapter}", renderer.label));
            ui.separator();
            let gpu = match status.webgpu_available {
                Some(true) => "GPU compute available",
                Some(false) => "no GPU compute",
                None => "checking for WebGPU…",
            };
            ui.label(format!(
                "Compute: {} ({gpu})",
                status.backend.to_uppercase()
            ))
            .on_hover_text("Training runs on the CPU engine; the WebGPU executor is to come.");
            ui.separator();
            let (thread, why) = match status.training_thread {
                "worker" => ("Trainer: Web Worker", "Training runs in a Web Worker, beside the page."),
                "thread" => ("Trainer: thread", "Training runs on its own thread, beside the window."),
                _ => ("Trainer: UI thread", "Training shares the UI's thread, a slice of each frame."),
            };
            ui.label(thread).on_hover_text(why);
            ui.separator();
            ui.label(format!("Step {}", status.step));
            ui.separator();
            match status.loss {
                Some(loss) => ui.label(format!("Loss {loss:.4}")),
                None => ui.label("Loss —"),
            };
            if let Some(model) = status.models.first() {
                if let Some(nll) = model.test_nll {
                    ui.separator();
                    ui.label(format!("Held-out NLL {nll:.3}"))
                        .on_hover_text("Negative log-likelihood of 10,000 fresh target samples, in nats: lower is better.");
                }
                if status.playing && model.steps_per_sec > 0.0 {
                    ui.separator();
                    ui.label(format!("{:.0} steps/s", model.steps_per_sec));
                }
            }
            if let Some(fps) = status.fps {
                ui.separator();
                ui.label(format!("{fps:.0} fps"));
            }
            if let Some(ms) = status.frame_ms {
                ui.separator();
                ui.label(format!("frame {ms:.1} ms"))
                    .on_hover_text("The app's own CPU time per frame (layout and tessellation).");
            }
        });
        if let Some(reason) = &status.trainer {
            ui.label(RichText::new(reason).color(NOTICE_COLOR));
        }
        if let Some(info) = ctx.workspace.info() {
            ui.label(info);
        }
        if let Some(event) = ctx
            .workspace
            .runs()
            .first()
            .and_then(|run| run.events().last())
        {
            ui.label(RichText::new(format!("Note: {event}")).color(NOTICE_COLOR));
        }
        for (k, model) in status.models.iter().enumerate() {
            if let Some(error) = model
                .inverse_error
                .filter(|&e| e > f64::from(ROUND_TRIP_TOLERANCE))
            {
                let which = if status.models.len() > 1 {
                    format!("model {} ({}): ", k + 1, model.flow)
                } else {
                    String::new()
                };
                ui.label(
                    RichText::new(format!(
                        "Note: {which}the inverse is unreliable: ‖f(f⁻¹(x)) − x‖ reaches {} on held-out points (above {ROUND_TRIP_TOLERANCE}), so its samples and its density disagree",
                        if error >= f64::MAX { "NaN".to_owned() } else { format!("{error:.2e}") }
                    ))
                    .color(NOTICE_COLOR),
                )
                .on_hover_text("Pushed to the base by the density direction and back by the sample direction, a point should return to itself. Root-solved inverses (planar, radial) that do not converge and ODE integrations that part (CNF) break this.");
            }
        }
        if let Some(error) = &status.error {
            ui.label(RichText::new(format!("Error: {error}")).color(ERROR_COLOR));
        }
    }
}
