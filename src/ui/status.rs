//! The status line: renderer, compute, where training runs, progress; then what happened
//! (rollbacks, in amber) and what went wrong (in red), each once.

use egui::{Color32, RichText};

use super::{Panel, PanelContext};
use crate::flows::eval::ROUND_TRIP_TOLERANCE;
use crate::tr;

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
            ui.label(tr!(
                "status.renderer",
                renderer = renderer.name(),
                adapter = adapter
            ));
            ui.separator();
            let gpu = match status.webgpu_available {
                Some(true) => tr!("status.gpu_available"),
                Some(false) => tr!("status.no_gpu"),
                None => tr!("status.checking_webgpu"),
            };
            ui.label(tr!(
                "status.compute",
                backend = status.backend.to_uppercase(),
                gpu = gpu,
            ))
            .on_hover_text(compute_hint(status));
            ui.separator();
            let (thread, why) = match status.training_thread {
                "worker" => (
                    tr!("status.trainer_worker"),
                    tr!("status.trainer_worker.hint"),
                ),
                "thread" => (
                    tr!("status.trainer_thread"),
                    tr!("status.trainer_thread.hint"),
                ),
                _ => (tr!("status.trainer_ui"), tr!("status.trainer_ui.hint")),
            };
            ui.label(thread).on_hover_text(why);
            ui.separator();
            ui.label(tr!("status.step", step = status.step));
            ui.separator();
            match status.loss {
                Some(loss) => ui.label(tr!("status.loss", loss = format!("{loss:.4}"))),
                None => ui.label(tr!("status.loss", loss = "—")),
            };
            if let Some(model) = status.models.first() {
                if let Some(nll) = model.test_nll {
                    ui.separator();
                    ui.label(tr!("status.nll", nll = format!("{nll:.3}")))
                        .on_hover_text(tr!("status.nll.hint"));
                }
                if status.playing && model.steps_per_sec > 0.0 {
                    ui.separator();
                    ui.label(tr!(
                        "status.steps_per_sec",
                        rate = format!("{:.0}", model.steps_per_sec)
                    ));
                }
            }
            if let Some(fps) = status.fps {
                ui.separator();
                ui.label(tr!("status.fps", fps = format!("{fps:.0}")));
            }
            if let Some(ms) = status.frame_ms {
                ui.separator();
                ui.label(tr!("status.frame_ms", ms = format!("{ms:.1}")))
                    .on_hover_text(tr!("status.frame_ms.hint"));
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
            ui.label(RichText::new(tr!("status.note", note = event)).color(NOTICE_COLOR));
        }
        for (k, model) in status.models.iter().enumerate() {
            if let Some(error) = model
                .inverse_error
                .filter(|&e| e > f64::from(ROUND_TRIP_TOLERANCE))
            {
                let which = if status.models.len() > 1 {
                    tr!("status.which_model", index = k + 1, flow = model.flow)
                } else {
                    String::new()
                };
                ui.label(
                    RichText::new(tr!(
                        "status.inverse_unreliable",
                        which = which,
                        error = if error >= f64::MAX {
                            "NaN".to_owned()
                        } else {
                            format!("{error:.2e}")
                        },
                        tolerance = ROUND_TRIP_TOLERANCE,
                    ))
                    .color(NOTICE_COLOR),
                )
                .on_hover_text(tr!("status.inverse_unreliable.hint"));
            }
        }
        if let Some(error) = &status.error {
            ui.label(RichText::new(tr!("status.error", error = error)).color(ERROR_COLOR));
        }
    }
}

/// The compute label's tooltip: what it means, why the CPU trains (if it does), `auto`'s
/// timings of both executors (if it raced them), and why the CPU draws the views while the
/// GPU trains.
fn compute_hint(status: &crate::lab::StatusSnapshot) -> String {
    let mut lines = vec![tr!("status.compute.hint").to_owned()];
    lines.extend(status.backend_reason.clone());
    if let Some(model) = status.models.first() {
        if let Some(times) = model.race
            && model.backend_reason.is_none()
        {
            lines.push(tr!(
                "status.compute.race",
                cpu = format!("{:.2}", times.cpu_ms),
                gpu = format!("{:.2}", times.gpu_ms)
            ));
        }
        if model.pictures_backend != model.backend {
            lines.extend(model.pictures_backend_reason.clone());
        }
    }
    lines.join("\n")
}
