//! `flowlab export`: a trained `model.json` as a script for another framework (PyTorch today).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::flows::SavedModel;
use crate::flows::export::pytorch_script;

/// What `flowlab export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A self-contained PyTorch module (`.py`, weights embedded) with `log_prob` and `sample`.
    Pytorch,
}

/// `flowlab export`.
#[derive(Clone, Debug, Args)]
pub struct ExportArgs {
    /// A model.json written by `flowlab train --out DIR`.
    #[arg(long, value_name = "model.json")]
    pub model: PathBuf,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = ExportFormat::Pytorch)]
    pub format: ExportFormat,
    /// Output file; `-` or none writes to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Reads a `model.json` (size-limited), with one clear message for a missing file or bad JSON.
pub(super) fn read_model(path: &Path) -> anyhow::Result<SavedModel> {
    let bytes = crate::targets::read_limited(&path.to_string_lossy())?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a model.json written by flowlab train",
            path.display()
        )
    })
}

/// `None` for stdout (`--out -` or no `--out`), else the file.
pub(super) fn out_file(out: &Option<PathBuf>) -> Option<&Path> {
    out.as_deref().filter(|p| p.as_os_str() != "-")
}

/// Writes `text` to `out` (creating its directory) or to stdout.
pub(super) fn write_text(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create directory {}", parent.display()))?;
            }
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to stdout"),
    }
}

/// Runs `flowlab export`: the script goes to `--out` (a summary to stdout) or to stdout (the
/// summary to stderr, so the script stays clean).
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let model = read_model(&args.model)?;
    let script = match args.format {
        ExportFormat::Pytorch => pytorch_script(&model),
    }
    .with_context(|| args.model.display().to_string())?;
    let out = out_file(&args.out);
    write_text(out, &script)?;
    let summary = format!(
        "{} model ({} parameters) as PyTorch",
        model.config.family.name(),
        model.params.len()
    );
    match out {
        Some(path) => println!("wrote {}: {summary}", path.display()),
        None => eprintln!("wrote {summary} to stdout"),
    }
    Ok(())
}
