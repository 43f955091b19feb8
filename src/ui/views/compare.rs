//! Every model side by side: small multiples of their samples or learned densities on one
//! colour scale, and a table of their numbers — parameters, held-out NLL, KL, steps/s, the time
//! to sample and to score a 4,096-point batch (where MAF's and IAF's asymmetry and a CNF's cost
//! show), the training time to reach a chosen NLL — with each model's pause, reset and remove.
//! Pinned points are scored by every model, with the out-of-distribution flag.

use egui::Color32;

use super::ViewContext;
use crate::lab::{Command, Run};
use crate::tr;
use crate::ui::plot::{CachedTexture, Canvas, color_image};
use crate::viz::density::colormap;

/// One colour per model, in their order (the loss curves use the same).
const MODEL_COLORS: [Color32; 6] = [
    Color32::from_rgb(90, 180, 255),
    Color32::from_rgb(240, 110, 200),
    Color32::from_rgb(120, 220, 120),
    Color32::from_rgb(250, 200, 60),
    Color32::from_rgb(180, 140, 255),
    Color32::from_rgb(80, 220, 220),
];

/// The colour of model `index`.
pub fn model_color(index: usize) -> Color32 {
    MODEL_COLORS[index % MODEL_COLORS.len()]
}

pub use crate::lab::export::{TableRow, model_label};

/// What the small multiples show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Multiple {
    /// The flows' samples over the target's density.
    #[default]
    Samples,
    /// The learned densities, on the target's colour scale.
    Density,
}

/// The comparison view.
pub struct CompareView {
    multiple: Multiple,
    /// The NLL the table times each model to.
    nll_goal: f64,
    textures: Vec<CachedTexture>,
    target_heat: CachedTexture,
}

impl Default for CompareView {
    fn default() -> Self {
        Self {
            multiple: Multiple::default(),
            nll_goal: 1.80,
            textures: Vec::new(),
            target_heat: CachedTexture::default(),
        }
    }
}

impl CompareView {
    /// Draws the view.
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &ViewContext<'_>, commands: &mut Vec<Command>) {
        // Why a scroll area: in a small tile the table and the probes stay reachable below
        // plots that keep a readable size.
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| self.contents_ui(ui, view, commands));
    }

    fn contents_ui(
        &mut self,
        ui: &mut egui::Ui,
        view: &ViewContext<'_>,
        commands: &mut Vec<Command>,
    ) {
        let runs = view.workspace.runs();
        ui.horizontal_wrapped(|ui| {
            ui.label(tr!("compare.show"));
            ui.radio_value(
                &mut self.multiple,
                Multiple::Samples,
                tr!("compare.samples"),
            );
            ui.radio_value(
                &mut self.multiple,
                Multiple::Density,
                tr!("compare.density"),
            );
            ui.separator();
            let label = ui.label(tr!("compare.time_to_goal"));
            ui.add(
                egui::DragValue::new(&mut self.nll_goal)
                    .speed(0.01)
                    .range(-50.0..=50.0)
                    .fixed_decimals(2),
            )
            .labelled_by(label.id);
        });
        let table_height = (34.0 + 30.0 * runs.len() as f32).min(0.55 * ui.available_height());
        let probes_height = if view.workspace.probes().is_empty() {
            0.0
        } else {
            24.0 * (1 + view.workspace.probes().len()) as f32
        };
        let plots_height = (ui.available_height() - table_height - probes_height).max(60.0);
        let width = ui.available_width();
        // As many columns as fit plots of at least MIN_SIDE; the rest wrap to the next row.
        const MIN_SIDE: f32 = 90.0;
        let fit = ((width + 6.0) / (MIN_SIDE + 6.0)).floor().max(1.0) as usize;
        let columns = runs.len().clamp(1, fit);
        let side = ((width - 6.0 * (columns as f32 - 1.0)) / columns as f32)
            .min(plots_height - 22.0)
            .max(MIN_SIDE)
            .min(width);
        self.textures
            .resize_with(runs.len(), CachedTexture::default);
        for (row, chunk) in runs.chunks(columns).enumerate() {
            ui.horizontal(|ui| {
                for (offset, run) in chunk.iter().enumerate() {
                    let index = row * columns + offset;
                    ui.vertical(|ui| {
                        ui.set_width(side);
                        // Why truncated: a narrow plot's title would otherwise wrap letter by letter.
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new(model_label(index, run))
                                    .color(model_color(index))
                                    .strong(),
                            )
                            .truncate(),
                        );
                        self.multiple_ui(ui, view, index, run, side, commands);
                    });
                }
            });
        }
        ui.add_space(4.0);
        self.table_ui(ui, runs, commands);
        probes_ui(ui, runs);
    }

    fn multiple_ui(
        &mut self,
        ui: &mut egui::Ui,
        view: &ViewContext<'_>,
        index: usize,
        run: &Run,
        side: f32,
        commands: &mut Vec<Command>,
    ) {
        let (canvas, response) = Canvas::new(
            ui,
            egui::vec2(side, side),
            view.workspace.view(),
            &tr!("compare.plot_label", model = index + 1),
        );
        let target = view.workspace.target();
        match self.multiple {
            Multiple::Samples => {
                if let Some(target) = target
                    && let Some(heat) = &target.heat_map
                    && let Some(texture) =
                        self.target_heat
                            .get(ui.ctx(), "compare target", target.version, || {
                                Some(color_image(heat.width, heat.height, &heat.colors()))
                            })
                {
                    canvas.image(texture, heat.view);
                }
                canvas.dots(run.samples(), |_| model_color(index));
            }
            Multiple::Density => {
                let pictures = run.pictures().filter(|p| !p.density.is_empty());
                let scale = target
                    .and_then(|t| t.heat_map.as_ref())
                    .and_then(|h| h.max_finite());
                if let (Some(pictures), Some(texture)) = (pictures, self.textures.get_mut(index)) {
                    let n = pictures.resolution;
                    let texture = texture.get(
                        ui.ctx(),
                        &format!("compare-density-{index}"),
                        run.pictures_version(),
                        || {
                            let top = scale.unwrap_or_else(|| {
                                pictures.density.iter().copied().fold(f32::MIN, f32::max)
                            });
                            let colors: Vec<[u8; 4]> = pictures
                                .density
                                .iter()
                                .map(|&v| colormap(((v - (top - 10.0)) / 10.0).clamp(0.0, 1.0)))
                                .collect();
                            Some(color_image(n, n, &colors))
                        },
                    );
                    if let Some(texture) = texture {
                        canvas.image(texture, pictures.view);
                    }
                } else {
                    canvas.caption(&[tr!("compare.waiting").to_owned()]);
                }
            }
        }
        canvas.axes();
        super::probe_ui(&response, &canvas, view.workspace, commands);
    }

    fn table_ui(&self, ui: &mut egui::Ui, runs: &[Run], commands: &mut Vec<Command>) {
        let goal = self.nll_goal;
        egui::Grid::new("comparison table")
            .striped(true)
            .spacing([12.0, 4.0])
            .show(ui, |ui| {
                for title in [
                    tr!("compare.column.model"),
                    tr!("compare.column.parameters"),
                    tr!("compare.column.step"),
                    tr!("compare.column.nll"),
                    tr!("compare.column.kl"),
                    tr!("compare.column.steps_per_sec"),
                    tr!("compare.column.sample_time"),
                    tr!("compare.column.density_time"),
                    tr!("compare.column.to_goal"),
                    "",
                ] {
                    ui.label(egui::RichText::new(title).strong());
                }
                ui.end_row();
                for (index, run) in runs.iter().enumerate() {
                    let row = TableRow::of(index, run, goal);
                    ui.label(egui::RichText::new(&row.model).color(model_color(index)));
                    for cell in row.cells() {
                        ui.label(cell);
                    }
                    ui.horizontal(|ui| {
                        let paused = run.is_paused();
                        if ui
                            .small_button(if paused {
                                tr!("compare.resume")
                            } else {
                                tr!("compare.hold")
                            })
                            .on_hover_text(tr!("compare.hold.hint"))
                            .clicked()
                        {
                            commands.push(Command::PauseModel {
                                index,
                                paused: !paused,
                            });
                        }
                        if ui.small_button(tr!("compare.reset")).clicked() {
                            commands.push(Command::ResetModel(index));
                        }
                        if runs.len() > 1 && ui.small_button(tr!("compare.remove")).clicked() {
                            commands.push(Command::RemoveModel(index));
                        }
                    });
                    ui.end_row();
                }
            });
        if let Some(failure) = runs.iter().find_map(Run::failure) {
            ui.colored_label(Color32::from_rgb(230, 90, 90), failure.to_string());
        }
    }
}

/// Each pinned point as every model scores it, flagged where it is out of distribution for
/// that model (below the 1st percentile of held-out data's log-likelihoods).
fn probes_ui(ui: &mut egui::Ui, runs: &[Run]) {
    let Some(first) = runs.first().and_then(Run::pictures) else {
        return;
    };
    for (k, probe) in first.probes.iter().enumerate() {
        ui.horizontal_wrapped(|ui| {
            let [x, y] = probe.point;
            ui.label(egui::RichText::new(format!("({x:.2}, {y:.2}):")).strong());
            for (index, run) in runs.iter().enumerate() {
                let Some(p) = run.pictures().and_then(|p| p.probes.get(k)) else {
                    continue;
                };
                let ood = run
                    .latest()
                    .and_then(|r| r.held_out_log_q_p01)
                    .is_some_and(|low| f64::from(p.log_prob) < low);
                let score = format!("{:+.2}", p.log_prob);
                let text = if ood {
                    tr!("compare.probe_unusual", model = index + 1, log_p = score)
                } else {
                    tr!("compare.probe", model = index + 1, log_p = score)
                };
                ui.label(egui::RichText::new(text).color(model_color(index)))
                    .on_hover_text(tr!("compare.probe.hint"));
            }
        });
    }
}
