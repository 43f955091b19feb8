//! The teaching notes, beside the views: for every view shown, the seed article's concepts it
//! shows (`lab::notes`), each with its reference and, where the running model has a number
//! that illustrates it, that number (the planar layers' ûᵀw, MAF's and IAF's measured times,
//! the log-det map's range, the held-out scores).

use super::{Panel, PanelContext};
use crate::flows::Family;
use crate::lab::names;
use crate::lab::notes::{Concept, notes_for};
use crate::lab::views::Pictures;
use crate::lab::{Run, Workspace};
use crate::tr;

/// The notes panel.
#[derive(Default)]
pub struct NotesPanel;

impl Panel for NotesPanel {
    fn name(&self) -> &'static str {
        "notes"
    }

    fn ui(&mut self, ui: &mut egui::Ui, ctx: &mut PanelContext<'_>) {
        let workspace = ctx.workspace;
        let run = workspace.runs().first();
        let Some(run) = run else {
            return;
        };
        let family = run.spec().flow.family;
        let objective = run.spec().train.objective;
        ui.heading(tr!("notes.heading"));
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                let mut seen = Vec::new();
                for view in workspace.shown_views() {
                    let concepts: Vec<Concept> = notes_for(view, family, objective)
                        .into_iter()
                        .filter(|c| !seen.contains(c))
                        .collect();
                    if concepts.is_empty() {
                        continue;
                    }
                    ui.add_space(4.0);
                    ui.label(
                        egui::RichText::new(tr!("notes.beside", view = names::view(view)))
                            .strong()
                            .size(15.0),
                    );
                    for (i, concept) in concepts.into_iter().enumerate() {
                        seen.push(concept);
                        note_ui(ui, concept, i == 0 && seen.len() <= 2, workspace, run);
                    }
                }
            });
    }
}

fn note_ui(ui: &mut egui::Ui, concept: Concept, open: bool, workspace: &Workspace, run: &Run) {
    let note = concept.note();
    egui::CollapsingHeader::new(note.title)
        .id_salt(note.title)
        .default_open(open)
        .show(ui, |ui| {
            ui.label(note.body);
            if let Some(live) = live_value(concept, workspace, run) {
                ui.label(egui::RichText::new(live).color(ui.visuals().warn_fg_color));
            }
            ui.label(egui::RichText::new(note.reference).weak().small().italics());
        });
}

/// What the running model shows of `concept`, in numbers.
fn live_value(concept: Concept, workspace: &Workspace, run: &Run) -> Option<String> {
    let report = run.latest();
    let pictures = run.pictures();
    let family = run.spec().flow.family;
    let labels_with = |needle: &str, pictures: Option<&Pictures>| -> Option<String> {
        let lines: Vec<&String> = pictures?
            .labels
            .iter()
            .filter(|l| l.contains(needle))
            .take(4)
            .collect();
        (!lines.is_empty()).then(|| {
            let lines: Vec<&str> = lines.iter().map(|l| l.as_str()).collect();
            tr!("notes.now", values = lines.join(tr!("list.separator")))
        })
    };
    match concept {
        Concept::Planar if family == Family::Planar => labels_with(tr!("layer.planar"), pictures),
        Concept::Radial if family == Family::Radial => labels_with(tr!("layer.radial"), pictures),
        Concept::GlowActnormLinear if family == Family::Glow => {
            labels_with(tr!("layer.invertible_linear"), pictures)
        }
        Concept::AutoregressiveSpeed => {
            let report = report?;
            let (sample, density) = (report.sample_ms_per_1k?, report.density_ms_per_1k?);
            let ratio = (density / sample.max(1e-9)).max(sample / density.max(1e-9));
            Some(tr!(
                "notes.live.speed",
                sample = format!("{sample:.2}"),
                density = format!("{density:.2}"),
                ratio = format!("{ratio:.1}"),
            ))
        }
        Concept::ChangeOfVariables if pictures.is_some_and(|p| !p.probes.is_empty()) => {
            let probe = pictures?.probes.last()?;
            let [x, y] = probe.point;
            let mut terms = format!("log p₀(z₀) = {:+.3}", probe.base_log_prob);
            for (i, term) in probe.layer_log_dets.iter().enumerate() {
                terms.push_str(&tr!(
                    "notes.live.layer_term",
                    layer = i + 1,
                    term = format!("{term:+.3}")
                ));
            }
            Some(tr!(
                "notes.live.terms",
                point = format!("({x:.2}, {y:.2})"),
                terms = terms,
                total = format!("{:+.3}", probe.log_prob),
            ))
        }
        Concept::ExplodingInverse if pictures.is_some_and(|p| !p.probes.is_empty()) => {
            let probe = pictures?.probes.last()?;
            Some(tr!(
                "notes.live.inverse",
                error = format!("{:.2e}", probe.reconstruction_error),
                preimage = format!("({:.2}, {:.2})", probe.preimage[0], probe.preimage[1]),
            ))
        }
        Concept::ChangeOfVariables => Some(tr!("notes.live.click").to_owned()),
        Concept::NiceVolume => {
            let pictures = pictures?;
            let depth = pictures.depth.filter(|&d| d > 0)?;
            let finite = pictures.log_det.iter().copied().filter(|v| v.is_finite());
            let (low, high) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            (low <= high).then(|| {
                tr!(
                    "notes.live.log_det_range",
                    layer = depth,
                    low = format!("{low:+.3}"),
                    high = format!("{high:+.3}"),
                )
            })
        }
        Concept::MaximumLikelihood | Concept::ReverseKl => {
            let report = report?;
            let nll = report.test_nll?;
            Some(match report.kl {
                Some(kl) => tr!(
                    "notes.live.nll_kl",
                    nll = format!("{nll:.3}"),
                    kl = format!("{kl:.3}"),
                    entropy = format!("{:.3}", nll - kl),
                ),
                None => tr!("notes.live.nll", nll = format!("{nll:.3}")),
            })
        }
        Concept::CnfTrace => {
            let pictures = pictures?;
            let mut parts = Vec::new();
            if let Some([exact, gaussian, rademacher]) = pictures.trace_spread {
                parts.push(tr!(
                    "notes.live.trace",
                    time = format!("{:.2}", pictures.field_time.unwrap_or(0.0)),
                    exact = format!("{exact:.2}"),
                    gaussian = format!("{gaussian:.2}"),
                    rademacher = format!("{rademacher:.2}"),
                ));
            }
            if let Some(nfe) = pictures.solver_evaluations {
                parts.push(tr!("notes.live.evaluations", count = nfe));
            }
            (!parts.is_empty()).then(|| parts.join(" "))
        }
        _ => {
            let _ = workspace;
            None
        }
    }
}
