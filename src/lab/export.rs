//! What the app exports, as files: the first model (`model.json`, which `flowlab train --init`
//! and the app read back, and a self-contained PyTorch script), its samples (CSV), the learned
//! density with the samples (PNG), and the comparison table (CSV). No egui: the platform
//! seam saves the bytes (a download on the web, a file natively).

use crate::flows::SavedModel;
use crate::lab::Run;
use crate::lab::messages::Localized;
use crate::targets::ViewRect;
use crate::viz::DensityGrid;
use crate::viz::raster::{density_image, draw_dot, pixel_of};

/// One kind of export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// The first model's architecture and parameters.
    ModelJson,
    /// The first model as a PyTorch module (torch only), weights included.
    PyTorch,
    /// The first model's samples.
    Samples,
    /// The learned density and the samples, as a picture.
    Picture,
    /// The comparison table.
    Table,
}

/// A file to hand to the user.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportFile {
    /// Its suggested name.
    pub name: String,
    /// Its MIME type.
    pub mime: &'static str,
    /// Its content.
    pub bytes: Vec<u8>,
}

impl Export {
    /// Every export, in the panel's order.
    pub const ALL: [Export; 5] = [
        Export::ModelJson,
        Export::PyTorch,
        Export::Samples,
        Export::Picture,
        Export::Table,
    ];

    /// Its stable name (the catalogue's `export.<id>`).
    pub fn id(self) -> &'static str {
        match self {
            Export::ModelJson => "model-json",
            Export::PyTorch => "pytorch",
            Export::Samples => "samples",
            Export::Picture => "picture",
            Export::Table => "table",
        }
    }

    /// The button's text in English (`lab::names::export` says it in the UI's language).
    pub fn title(self) -> &'static str {
        match self {
            Export::ModelJson => "model.json",
            Export::PyTorch => "PyTorch .py",
            Export::Samples => "samples CSV",
            Export::Picture => "picture PNG",
            Export::Table => "table CSV",
        }
    }

    /// The button's tooltip.
    pub fn description(self) -> &'static str {
        match self {
            Export::ModelJson => {
                "The first model's architecture and trained parameters; `flowlab train --init` and this app (open or drop it) read it back"
            }
            Export::PyTorch => {
                "A self-contained Python file (torch only) rebuilding the trained flow as an nn.Module with log_prob(x) and sample(n)"
            }
            Export::Samples => "The first model's 1,500 samples, as x,y rows",
            Export::Picture => "The learned density with the model's samples, 512×512 pixels",
            Export::Table => "Every model's numbers (parameters, NLL, KL, speeds), as CSV",
        }
    }

    /// Whether it needs the trainer to send the model's parameters first.
    pub fn needs_model(self) -> bool {
        matches!(self, Export::ModelJson | Export::PyTorch)
    }
}

/// A model's short name: its number and family, and its size where not the family's own.
pub fn model_label(index: usize, run: &Run) -> String {
    let config = &run.spec().flow;
    let info = config.family.info();
    let mut label = format!("{}. {}", index + 1, super::names::family(config.family));
    if config.layers != info.default_layers || config.hidden != info.default_hidden {
        label.push_str(&format!(" ({}×{})", config.layers, config.hidden));
    }
    label
}

/// Points of the batch the table's timings are given for.
const TIMING_BATCH: f64 = 4096.0;

/// One model's row of the comparison table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    /// The model's label.
    pub model: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Steps taken.
    pub step: u64,
    /// Held-out NLL, nats.
    pub nll: Option<f64>,
    /// KL where the normaliser is known, nats.
    pub kl: Option<f64>,
    /// Steps per second.
    pub steps_per_sec: f64,
    /// Milliseconds to sample 4,096 points (scaled from the trainer's timing of its 1,500
    /// samples: the CPU executor's cost is linear in the batch beyond its 1,024-row chunks).
    pub sample_ms: Option<f64>,
    /// Milliseconds to score 4,096 points (scaled from its timing of the 10,000 held-out points).
    pub density_ms: Option<f64>,
    /// Training seconds until the held-out NLL first reached the goal.
    pub secs_to_goal: Option<f64>,
}

impl TableRow {
    /// The CSV header of [`TableRow::csv`].
    pub const CSV_HEADER: &'static str = "model,parameters,step,held_out_nll,kl,steps_per_sec,sample_4096_ms,density_4096_ms,secs_to_nll_goal";

    /// The row of model `index`, timed to reach held-out NLL `goal`.
    pub fn of(index: usize, run: &Run, goal: f64) -> Self {
        let report = run.latest();
        let per_batch = |ms_per_1k: Option<f64>| ms_per_1k.map(|ms| ms * TIMING_BATCH / 1e3);
        Self {
            model: model_label(index, run),
            parameters: report.map_or(0, |r| r.n_params),
            step: report.map_or(0, |r| r.step),
            nll: report.and_then(|r| r.test_nll),
            kl: report.and_then(|r| r.kl),
            steps_per_sec: report.map_or(0.0, |r| r.steps_per_sec),
            sample_ms: per_batch(report.and_then(|r| r.sample_ms_per_1k)),
            density_ms: per_batch(report.and_then(|r| r.density_ms_per_1k)),
            secs_to_goal: run
                .scores()
                .iter()
                .find(|s| s.nll <= goal)
                .map(|s| s.train_secs),
        }
    }

    /// The cells after the model's name, as the table shows them.
    pub fn cells(&self) -> [String; 8] {
        let nats = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.3}"));
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.1} ms"));
        [
            self.parameters.to_string(),
            self.step.to_string(),
            nats(self.nll),
            nats(self.kl),
            format!("{:.0}", self.steps_per_sec),
            ms(self.sample_ms),
            ms(self.density_ms),
            self.secs_to_goal.map_or_else(
                || crate::tr!("compare.not_yet").to_owned(),
                |s| crate::tr!("unit.seconds", value = format!("{s:.1}")),
            ),
        ]
    }

    /// The row as a CSV line (empty fields where unknown).
    pub fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        format!(
            "\"{}\",{},{},{},{},{},{},{},{}",
            self.model.replace('"', "'"),
            self.parameters,
            self.step,
            opt(self.nll),
            opt(self.kl),
            self.steps_per_sec,
            opt(self.sample_ms),
            opt(self.density_ms),
            opt(self.secs_to_goal)
        )
    }
}

/// `model.json`'s bytes.
pub fn model_json(model: &SavedModel) -> Result<ExportFile, String> {
    let text = serde_json::to_string(model).map_err(|e| format!("model.json: {e}"))?;
    Ok(ExportFile {
        name: "model.json".to_owned(),
        mime: "application/json",
        bytes: text.into_bytes(),
    })
}

/// The PyTorch script of `model`.
pub fn pytorch(model: &SavedModel) -> Result<ExportFile, String> {
    let script = crate::flows::export::pytorch_script(model).map_err(|e| e.to_string())?;
    Ok(ExportFile {
        name: "flow.py".to_owned(),
        mime: "text/x-python",
        bytes: script.into_bytes(),
    })
}

/// The samples as `x,y` rows.
pub fn samples_csv(samples: &[[f32; 2]]) -> ExportFile {
    let mut text = String::from("x,y\n");
    for [x, y] in samples {
        text.push_str(&format!("{x},{y}\n"));
    }
    ExportFile {
        name: "samples.csv".to_owned(),
        mime: "text/csv",
        bytes: text.into_bytes(),
    }
}

/// The comparison table as CSV, every model timed to `goal`.
pub fn table_csv(runs: &[Run], goal: f64) -> ExportFile {
    let mut text = format!("{}\n", TableRow::CSV_HEADER);
    for (index, run) in runs.iter().enumerate() {
        text.push_str(&TableRow::of(index, run, goal).csv());
        text.push('\n');
    }
    ExportFile {
        name: "comparison.csv".to_owned(),
        mime: "text/csv",
        bytes: text.into_bytes(),
    }
}

/// Side of the exported picture, in pixels.
pub const PICTURE_SIDE: u32 = 512;

/// The learned density (`log_q` on a `resolution²` grid over `view`, top row first; or the
/// target's `fallback` heat map) with `samples` on top, as a PNG.
pub fn picture_png(
    view: ViewRect,
    log_q: Option<(&[f32], usize)>,
    fallback: Option<&DensityGrid>,
    samples: &[[f32; 2]],
) -> Result<ExportFile, String> {
    let grid = match log_q {
        Some((values, n)) if values.len() == n * n && n > 0 => {
            Some(DensityGrid::from_values(view, n, n, values.to_vec()))
        }
        _ => fallback.cloned(),
    };
    let side = PICTURE_SIDE;
    let mut image = match grid {
        Some(grid) => image::imageops::resize(
            &density_image(&grid),
            side,
            side,
            image::imageops::FilterType::Triangle,
        ),
        None => image::RgbaImage::from_pixel(side, side, image::Rgba([0, 0, 0, 255])),
    };
    for &point in samples {
        let [px, py] = pixel_of(view, side as f32, side as f32, point);
        draw_dot(&mut image, px, py, 1.8, [255, 150, 40], 0.8);
    }
    let bytes = crate::viz::png::encode_rgba(side, side, image.as_raw())
        .ok_or("the picture could not be encoded")?;
    Ok(ExportFile {
        name: "flowlab.png".to_owned(),
        mime: "image/png",
        bytes,
    })
}

/// What an opened file becomes.
#[derive(Debug)]
pub enum Opened {
    /// A target.
    Target(crate::targets::TargetSource),
    /// A model to train from.
    Model(Box<SavedModel>),
}

/// Reads what a platform read from a dropped or opened file (see [`open`]).
pub fn open_content(
    name: &str,
    content: &FileContent,
    invert: bool,
    threshold: f32,
) -> Result<Opened, String> {
    match content {
        FileContent::Bytes(bytes) => open(name, bytes, invert, threshold),
        FileContent::Rgba {
            width,
            height,
            rgba,
        } => {
            crate::targets::TargetSource::image_from_rgba(*width, *height, rgba, invert, threshold)
                .map(Opened::Target)
                .map_err(|e| crate::tr!("lab.open.named", name = name, problem = e.localized()))
        }
    }
}

/// Reads a dropped or opened file by its name: `.png`/`.jpg`/`.jpeg` (an image target, with
/// `invert` and `threshold`), `.csv` (points), `.json` (a `model.json`). The error says what
/// is wrong with it, in one sentence.
pub fn open(name: &str, bytes: &[u8], invert: bool, threshold: f32) -> Result<Opened, String> {
    // Why: in the page images arrive decoded (see `open_content`), so these go unused there.
    #[cfg(target_arch = "wasm32")]
    let _ = (invert, threshold);
    use crate::targets::TargetSource;
    let lower = name.to_ascii_lowercase();
    let extension = lower.rsplit_once('.').map_or("", |(_, e)| e);
    let named = |problem: &dyn std::fmt::Display| {
        crate::tr!("lab.open.named", name = name, problem = problem)
    };
    if bytes.len() > crate::targets::MAX_FILE_BYTES {
        let too_large = crate::targets::TargetError::FileTooLarge {
            bytes: bytes.len(),
            limit: crate::targets::MAX_FILE_BYTES,
        };
        return Err(named(&too_large.localized()));
    }
    match extension {
        #[cfg(not(target_arch = "wasm32"))]
        "png" | "jpg" | "jpeg" => TargetSource::image_from_bytes(bytes, invert, threshold)
            .map(Opened::Target)
            .map_err(|e| named(&e.localized())),
        // Why: the page has the browser decode images (any format it reads) and passes the
        // pixels; bytes that reach here are what it could not decode.
        #[cfg(target_arch = "wasm32")]
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp" => {
            Err(named(&crate::tr!("lab.open.not_decodable")))
        }
        "csv" | "txt" => {
            let text =
                std::str::from_utf8(bytes).map_err(|_| named(&crate::tr!("lab.open.not_utf8")))?;
            TargetSource::csv_from_text(text)
                .map(Opened::Target)
                .map_err(|e| named(&e.localized()))
        }
        "json" => {
            let saved: SavedModel = serde_json::from_slice(bytes)
                .map_err(|e| named(&crate::tr!("lab.open.not_model_json", reason = e)))?;
            if saved.dim != 2 {
                return Err(named(&crate::tr!("lab.open.not_2d", dim = saved.dim)));
            }
            // Why rebuilt here: parameters that do not fit the architecture are refused now,
            // with a message, not later by a trainer.
            saved.clone().into_flow().map_err(|e| named(&e))?;
            Ok(Opened::Model(Box::new(saved)))
        }
        _ => Err(named(&crate::tr!("lab.open.unsupported"))),
    }
}

/// A file the user opened or dropped: its name, and its content or why it could not be read.
pub type OpenedFile = (String, Result<FileContent, String>);

/// What a platform read from an opened file.
#[derive(Clone, Debug, PartialEq)]
pub enum FileContent {
    /// The file's bytes.
    Bytes(Vec<u8>),
    /// An image the platform decoded (the browser does; rows top to bottom, RGBA).
    Rgba {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// 4 bytes a pixel.
        rgba: Vec<u8>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_one_clear_message() {
        for (name, bytes, expected) in [
            ("a.png", &b"not an image"[..], "a.png"),
            ("white.csv", b"x,y\n", "at least"),
            ("m.json", b"{}", "not a model.json"),
            ("notes.docx", b"..", "open a PNG"),
        ] {
            let error = open(name, bytes, false, 0.0).expect_err(name);
            assert!(error.contains(expected), "{name}: {error}");
        }
    }

    #[test]
    fn a_csv_and_a_model_open() {
        let opened = open("p.csv", b"0,0\n1,1\n2,0.5\n", false, 0.0).unwrap();
        assert!(
            matches!(opened, Opened::Target(crate::targets::TargetSource::Csv(ref p)) if p.len() == 3)
        );
        let flow = crate::flows::build_flow(
            &crate::flows::FlowConfig::new(crate::flows::Family::Nice),
            2,
            1,
        )
        .unwrap();
        let json = model_json(&SavedModel::of(&flow)).unwrap();
        assert!(matches!(
            open("model.json", &json.bytes, false, 0.0),
            Ok(Opened::Model(_))
        ));
        // The same model as a PyTorch script (its numbers are checked in tests/export).
        let script = pytorch(&SavedModel::of(&flow)).unwrap();
        let text = String::from_utf8(script.bytes).unwrap();
        assert!(
            text.contains("import torch") && text.contains("def log_prob"),
            "{}",
            &text[..200.min(text.len())]
        );
    }

    #[test]
    fn the_picture_is_a_png_of_the_right_size() {
        let file = picture_png(ViewRect::square(4.0), None, None, &[[0.0, 0.0]]).unwrap();
        let image = image::load_from_memory(&file.bytes).unwrap();
        assert_eq!(
            (image.width(), image.height()),
            (PICTURE_SIDE, PICTURE_SIDE)
        );
    }
}
