//! `flowlab eval`: `log p(x)` of a trained `model.json` at the points of a CSV, computed as
//! `flowlab train` scores its test set (the flow's own evaluator; Dormand–Prince for a CNF set
//! to `--solver dopri`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use super::export::{out_file, read_model, write_text};
use crate::flows::cnf::Solver;
use crate::flows::cnf::adaptive::AdaptiveEvaluator;
use crate::flows::cnf::dopri::Tolerance;
use crate::flows::{Family, Flow, FlowEvaluator};

/// Points per evaluation program run (and per adaptive solve, whose points share step sizes).
const CHUNK: usize = 1024;

/// `flowlab eval`.
#[derive(Clone, Debug, Args)]
pub struct EvalArgs {
    /// A model.json written by `flowlab train --out DIR`.
    #[arg(long, value_name = "model.json")]
    pub model: PathBuf,
    /// Points to score: a CSV of `x,y` per line (an optional header; `#` comments).
    #[arg(long, value_name = "points.csv")]
    pub points: PathBuf,
    /// Output CSV (`x,y,log_p`); `-` or none writes to stdout.
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
}

/// `log p(x)` of `points` (`n×2`, row-major) under `flow`, as flowlab evaluates densities.
pub fn log_density(flow: &Flow, points: &[f32]) -> anyhow::Result<Vec<f32>> {
    let options = &flow.config.cnf;
    if flow.config.family == Family::Cnf && options.solver == Solver::DormandPrince {
        let mut adaptive = AdaptiveEvaluator::new(flow, CHUNK)?;
        return Ok(adaptive
            .density(flow, points, Tolerance::of(options))?
            .log_prob);
    }
    let mut evaluator = FlowEvaluator::new(flow, CHUNK)?;
    Ok(evaluator.density(flow, points)?.log_prob)
}

fn read_points(path: &Path) -> anyhow::Result<Vec<[f32; 2]>> {
    let bytes = crate::targets::read_limited(&path.to_string_lossy())?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
    let points = crate::targets::csv::parse_points_to_score(&text)
        .with_context(|| path.display().to_string())?;
    if points.is_empty() {
        bail!("{} holds no points (expected lines of x,y)", path.display());
    }
    Ok(points)
}

/// Runs `flowlab eval`: the CSV to `--out` or stdout, one summary line to stderr.
pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let model = read_model(&args.model)?;
    if model.dim != 2 {
        bail!(
            "{} holds a {}-D model; points files are 2-D",
            args.model.display(),
            model.dim
        );
    }
    let flow = model
        .into_flow()
        .with_context(|| format!("{}: cannot rebuild the model", args.model.display()))?;
    let points = read_points(&args.points)?;
    let flat: Vec<f32> = points.iter().flatten().copied().collect();
    let log_p = log_density(&flow, &flat)?;
    let mut csv = String::with_capacity(points.len() * 32);
    csv.push_str("x,y,log_p\n");
    for ([x, y], l) in points.iter().zip(&log_p) {
        let _ = writeln!(csv, "{x},{y},{l}");
    }
    write_text(out_file(&args.out), &csv)?;
    let finite: Vec<f64> = log_p
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
    let skipped = match log_p.len() - finite.len() {
        0 => String::new(),
        k => format!(" ({k} not finite, left out of the mean)"),
    };
    eprintln!("{} points, mean log p(x) = {mean:.4}{skipped}", log_p.len());
    Ok(())
}
