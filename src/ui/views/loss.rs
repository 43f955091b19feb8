//! The loss curves (egui_plot): the training loss and the held-out NLL (and KL where known)
//! against steps or training time, a log option, and every rollback of the divergence guard
//! (and every restart of a lost trainer) marked where it happened.

use egui::Color32;
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};

use super::ViewContext;
use crate::lab::protocol::TrainingEvent;
use crate::tr;

/// Colour of the training loss.
const LOSS_COLOR: Color32 = Color32::from_rgb(255, 150, 40);
/// Colour of the held-out NLL.
const NLL_COLOR: Color32 = Color32::from_rgb(90, 180, 255);
/// Colour of the KL divergence.
const KL_COLOR: Color32 = Color32::from_rgb(140, 220, 120);
/// Colour of a rollback mark.
const ROLLBACK_COLOR: Color32 = Color32::from_rgb(230, 60, 60);
/// Colour of a trainer-restart mark.
const RESTART_COLOR: Color32 = Color32::from_rgb(200, 120, 255);

/// Which of `n` points to draw in a plot `width` points wide: about two per point of width,
/// evenly spaced, always the last.
fn thinning(n: usize, width: f32) -> impl Fn(usize) -> bool {
    let most = (2.0 * width.max(50.0)) as usize;
    let every = n.div_ceil(most.max(1)).max(1);
    move |i| i % every == 0 || i + 1 == n
}

/// The loss view.
#[derive(Default)]
pub struct LossView {
    against_time: bool,
    log: bool,
}

impl LossView {
    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &ViewContext<'_>) {
        ui.horizontal_wrapped(|ui| {
            ui.label("x:");
            ui.radio_value(&mut self.against_time, false, tr!("loss.steps"));
            ui.radio_value(&mut self.against_time, true, tr!("loss.seconds"));
            ui.checkbox(&mut self.log, tr!("loss.log_y"))
                .on_hover_text(tr!("loss.log_y.hint"));
        });
        let Some(run) = view.run else {
            return;
        };
        let objective = run.spec().train.objective;
        let history = run.history().points();
        let scores = run.scores();
        let floor = history
            .iter()
            .map(|p| p.loss)
            .chain(scores.iter().map(|s| s.nll))
            .chain(scores.iter().filter_map(|s| s.kl))
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        let log = self.log && floor.is_finite();
        let y = |v: f64| if log { (v - floor + 0.01).log10() } else { v };
        let x = |step: u64, secs: f64| if self.against_time { secs } else { step as f64 };
        let loss_name = tr!(
            "loss.training",
            objective = crate::lab::names::objective(objective)
        );
        // Why thinned: egui_plot draws every point every frame; more than a few per point of
        // width cost frame time and show nothing more.
        let keep = thinning(history.len(), ui.available_width());
        let loss: PlotPoints<'_> = history
            .iter()
            .enumerate()
            .filter(|&(i, _)| keep(i))
            .map(|(_, p)| [x(p.step, p.train_secs), y(p.loss)])
            .collect();
        let nll_name = if view.workspace.runs().len() > 1 {
            tr!(
                "loss.model_nll",
                model = super::compare::model_label(0, run)
            )
        } else {
            tr!("loss.nll").to_owned()
        };
        let nll: PlotPoints<'_> = scores
            .iter()
            .map(|s| [x(s.step, s.train_secs), y(s.nll)])
            .collect();
        let kl: PlotPoints<'_> = scores
            .iter()
            .filter_map(|s| s.kl.map(|kl| [x(s.step, s.train_secs), y(kl)]))
            .collect();
        let has_kl = scores.iter().any(|s| s.kl.is_some());
        // Events are marked by step; against time, at the time of the nearest loss point.
        let at = |step: u64| {
            if self.against_time {
                history
                    .iter()
                    .find(|p| p.step >= step)
                    .map_or(0.0, |p| p.train_secs)
            } else {
                step as f64
            }
        };
        let marks: Vec<(&str, Color32, f64)> = run
            .events()
            .iter()
            .map(|event| match event {
                TrainingEvent::RolledBack { step, .. } => {
                    (tr!("loss.rollback"), ROLLBACK_COLOR, at(*step))
                }
                TrainingEvent::Restarted { step, .. } => {
                    (tr!("loss.restarted"), RESTART_COLOR, at(*step))
                }
            })
            .collect();
        // Compared models: their held-out NLL, each in its model's colour.
        let compared: Vec<(String, Color32, Vec<[f64; 2]>)> = view
            .workspace
            .runs()
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, other)| {
                let points = other
                    .scores()
                    .iter()
                    .map(|s| [x(s.step, s.train_secs), y(s.nll)])
                    .collect();
                (
                    tr!(
                        "loss.model_nll",
                        model = super::compare::model_label(i, other)
                    ),
                    super::compare::model_color(i),
                    points,
                )
            })
            .collect();
        let y_label = if log {
            tr!("loss.log_axis")
        } else {
            tr!("loss.nats")
        };
        Plot::new("loss curves")
            .legend(Legend::default().position(egui_plot::Corner::RightTop))
            .x_axis_label(if self.against_time {
                tr!("loss.training_seconds")
            } else {
                tr!("loss.step")
            })
            .y_axis_label(y_label)
            .allow_scroll(false)
            .show(ui, |plot| {
                plot.line(Line::new(loss_name, loss).color(LOSS_COLOR).width(1.5));
                plot.line(Line::new(nll_name, nll).color(NLL_COLOR).width(2.0));
                for (name, color, points) in compared {
                    plot.line(
                        Line::new(name, PlotPoints::from(points))
                            .color(color)
                            .width(2.0),
                    );
                }
                if has_kl {
                    plot.line(Line::new("KL(p*‖q)", kl).color(KL_COLOR).width(2.0));
                }
                for (name, color, at) in marks {
                    plot.vline(VLine::new(name, at).color(color));
                }
            });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thinning_keeps_about_two_points_per_point_of_width_and_the_last() {
        let keep = super::thinning(4096, 300.0);
        let kept: Vec<usize> = (0..4096).filter(|&i| keep(i)).collect();
        assert!(kept.len() <= 700 && kept.len() >= 500, "{}", kept.len());
        assert_eq!(kept.last(), Some(&4095));
        let keep = super::thinning(100, 300.0);
        assert!((0..100).all(keep));
    }
}
