//! The headless command line (native only): `flowlab render | train | bench | export | eval`.
//!
//! Arguments are plain clap structs so the trainer and the benchmarks can take them as they are;
//! errors become a message on stderr and a non-zero exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod cnf;
mod eval;
mod export;
mod train;

pub use cnf::CnfArgs;
pub use eval::EvalArgs;
pub use export::{ExportArgs, ExportFormat};
pub use train::check_train_args;

use crate::flows::Family;
use crate::rng::Rng;
use crate::targets::DEFAULT_TARGET;
use crate::viz::DensityGrid;
use crate::viz::raster::{density_image, draw_dot, pixel_of};

/// flowlab: normalizing flows, trained live. Without a command, opens the app's window.
#[derive(Debug, Parser)]
#[command(name = "flowlab", version, about)]
pub struct Cli {
    /// Scene for the window, as in the web app's URL fragment,
    /// e.g. `target=moons&flow=realnvp&autoplay=1&seed=3`.
    #[arg(long, value_name = "FRAGMENT")]
    pub scene: Option<String>,
    /// A headless command; none opens the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Headless commands.
#[derive(Debug, Subcommand)]
// Why: one value, parsed once per run; its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Draw a target's samples and log-density heat map into a PNG.
    Render(RenderArgs),
    /// Train a flow on a target and write metrics, samples and pictures.
    Train(TrainArgs),
    /// Time a flow's training step, sampling and density evaluation.
    Bench(BenchArgs),
    /// Write a trained model.json as a self-contained script for another framework (PyTorch).
    Export(ExportArgs),
    /// Print log p(x) of a trained model.json at the points of a CSV.
    Eval(EvalArgs),
}

/// What `flowlab render` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RenderLayers {
    /// Heat map of the log-density with the samples on top.
    Both,
    /// Only the samples.
    Samples,
    /// Only the heat map.
    Density,
}

/// `flowlab render`.
#[derive(Clone, Debug, Args)]
pub struct RenderArgs {
    /// Target name, or an image (PNG/JPEG, `path.png:invert` for light-on-dark) or CSV of points.
    #[arg(long, default_value = DEFAULT_TARGET)]
    pub target: String,
    /// Output PNG file.
    #[arg(long)]
    pub out: PathBuf,
    /// Width and height of the picture in pixels.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub size: u32,
    /// Number of samples to draw.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub samples: u32,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// What to draw.
    #[arg(long, value_enum, default_value_t = RenderLayers::Both)]
    pub layers: RenderLayers,
    /// Also write the samples to this CSV as `x,y,log_p`, with the target's normalised
    /// log-density (empty where its normaliser is unknown): the same distribution for another
    /// library to train on and to be scored against (`scripts/peers/bench_stream.py`).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Training objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Objective {
    /// Maximum likelihood on target samples (forward KL).
    Mle,
    /// Reverse KL against the target's unnormalised log-density.
    ReverseKl,
    /// Conditional flow matching (continuous flows only).
    FlowMatching,
}

/// `flowlab train`.
#[derive(Clone, Debug, Args)]
pub struct TrainArgs {
    /// Target name, or a file of samples (CSV) / an image to use as a density.
    #[arg(long, default_value = DEFAULT_TARGET)]
    pub target: String,
    /// Held-out samples (CSV, `x,y` per line) to report `test_nll` on.
    #[arg(long, value_name = "FILE.csv")]
    pub test: Option<PathBuf>,
    /// Flow family [default: realnvp].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Family::NAMES))]
    pub flow: Option<String>,
    /// Number of layers (default: the flow's own default size).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden width of the conditioner networks (default: the flow's own).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Hidden nonlinearity of the conditioner networks (default: the flow's own).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::flows::mlp::Activation::NAMES))]
    pub activation: Option<String>,
    /// Optimisation steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Batch size.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Adam's base learning rate (default: the flow's own, with its own warm-up and decay:
    /// realnvp 5e-3, warmed up over 50 steps and decayed to a tenth over 800; maf 2e-3 and
    /// nsf 3e-3, decayed over 1000; planar 2e-2, radial 5e-2; the others 1e-3, constant).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Steps of linear warm-up to the base rate (default: the flow's own).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Cosine decay of the rate to a tenth over this many steps, 0 for a constant rate
    /// (default: the flow's own).
    #[arg(long)]
    pub decay_steps: Option<u64>,
    /// Seed of data, initialisation and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training objective (default: the one the app uses for this flow and target: reverse KL
    /// for planar/radial on a smooth energy, flow matching for cnf, else mle).
    #[arg(long, value_enum)]
    pub objective: Option<Objective>,
    /// Learn the base Gaussian's mean and scale too (a diagonal Gaussian).
    #[arg(long)]
    pub learnable_base: bool,
    /// Start from a model.json written by an earlier run (its architecture and parameters)
    /// instead of a fresh initialisation; --flow, --layers, --hidden and the CNF options must
    /// then be left out.
    #[arg(long, value_name = "model.json")]
    pub init: Option<PathBuf>,
    /// Print a line of progress to stderr every SECONDS (step, steps/s and mean loss since
    /// the last line, resident memory): for long runs, and the soak benchmark.
    #[arg(long, value_name = "SECONDS")]
    pub progress: Option<f64>,
    /// Options of the continuous flow.
    #[command(flatten)]
    pub cnf: CnfArgs,
    /// Output directory (metrics.json, samples.csv, PNGs).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// `flowlab bench`: always one thread, since the CPU executor is single-threaded; the family's
/// reference model (tanh networks, as the peers' benchmarks define theirs).
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Flow family.
    #[arg(long, default_value = Family::DEFAULT.name(), value_parser = clap::builder::PossibleValuesParser::new(Family::NAMES))]
    pub flow: String,
    /// Number of layers (default: the flow's own default size).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Hidden width (default: the flow's own).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Print one JSON line (`train_ms_per_step`, `sample_ms`, `density_ms`).
    #[arg(long)]
    pub json: bool,
    /// Instead, print where a maximum-likelihood step spends its time, per op kind.
    #[arg(long)]
    pub profile: bool,
    /// `gpu`: time the training step on the GPU executor (wgpu's first adapter) beside the
    /// CPU's, with its dispatches per step.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "gpu"])]
    pub backend: String,
}

/// Runs a headless command; reports errors on stderr.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Render(args) => render(&args).map(|summary| println!("{summary}")),
        Command::Train(args) => train::train(&args).map(|summary| println!("{summary}")),
        Command::Bench(args) => train::bench(&args).map(|report| println!("{report}")),
        Command::Export(args) => export::export(&args),
        Command::Eval(args) => eval::eval(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Draws `args.target` into `args.out`; returns a one-line summary.
pub fn render(args: &RenderArgs) -> anyhow::Result<String> {
    let image = render_image(args)?;
    save_png(&image, &args.out)?;
    if let Some(csv) = &args.csv {
        write_samples_csv(args, csv)?;
    }
    Ok(format!(
        "wrote {} ({}×{} px, target {}, {} samples, seed {})",
        args.out.display(),
        image.width(),
        image.height(),
        args.target,
        if args.layers == RenderLayers::Density {
            0
        } else {
            args.samples
        },
        args.seed
    ))
}

/// The picture `flowlab render` saves, in memory.
pub fn render_image(args: &RenderArgs) -> anyhow::Result<image::RgbaImage> {
    let target = crate::targets::load(&args.target)?;
    let size = args.size as usize;
    let view = target.view();
    let background = crate::viz::colormap(0.0);
    let mut image = image::RgbaImage::from_pixel(args.size, args.size, image::Rgba(background));

    if args.layers != RenderLayers::Samples {
        let grid = DensityGrid::from_target(target.as_ref(), view, size, size);
        if grid.max_finite().is_none() {
            bail!(
                "target '{}' has no finite log-density in its view",
                args.target
            );
        }
        image = density_image(&grid);
    }

    if args.layers != RenderLayers::Density {
        let samples = target.sample(args.samples as usize, &mut Rng::seed_from_u64(args.seed));
        let radius = (args.size as f32 / 300.0).max(1.0);
        let side = args.size as f32;
        for point in samples {
            let [px, py] = pixel_of(view, side, side, point);
            draw_dot(&mut image, px, py, radius, [200, 230, 255], 0.65);
        }
    }
    Ok(image)
}

/// `flowlab render --csv`: the samples the picture shows, with their normalised log-density.
fn write_samples_csv(args: &RenderArgs, path: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let target = crate::targets::load(&args.target)?;
    let known = target.density_kind() != crate::targets::DensityKind::KernelEstimate;
    let samples = target.sample(args.samples as usize, &mut Rng::seed_from_u64(args.seed));
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "x,y,log_p")?;
    for [x, y] in samples {
        let log_p = target.normalized_log_density([f64::from(x), f64::from(y)]);
        if known {
            writeln!(out, "{x},{y},{log_p}")?;
        } else {
            writeln!(out, "{x},{y},")?;
        }
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `image` as a PNG at `path`, creating its directory.
pub(crate) fn save_png(image: &image::RgbaImage, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    image
        .save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("flowlab").chain(args.iter().copied()))
    }

    #[test]
    fn no_command_means_window() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none() && cli.scene.is_none());
        let cli = parse(&["--scene", "target=moons&autoplay=0"]).unwrap();
        assert_eq!(cli.scene.as_deref(), Some("target=moons&autoplay=0"));
    }

    #[test]
    fn train_arguments_parse_with_defaults() {
        let cli = parse(&[
            "train",
            "--flow",
            "maf",
            "--steps",
            "10",
            "--objective",
            "reverse-kl",
        ])
        .unwrap();
        let Some(Command::Train(args)) = cli.command else {
            panic!("not train: {cli:?}");
        };
        assert_eq!(
            (args.flow.as_deref(), args.steps, args.batch),
            (Some("maf"), 10, 512)
        );
        assert_eq!(args.init, None);
        assert_eq!(args.objective, Some(Objective::ReverseKl));
        assert_eq!((args.layers, args.hidden, args.lr), (None, None, None));
        assert_eq!(args.out, PathBuf::from("out"));
    }

    #[test]
    fn unknown_flow_is_rejected_by_the_parser() {
        let err = parse(&["bench", "--flow", "resnet"]).unwrap_err();
        assert!(err.to_string().contains("realnvp"), "{err}");
    }

    #[test]
    fn bench_arguments_parse() {
        let cli = parse(&["bench", "--flow", "nsf", "--json"]).unwrap();
        let Some(Command::Bench(args)) = cli.command else {
            panic!("not bench: {cli:?}");
        };
        assert!(args.json);
        assert_eq!((args.flow.as_str(), args.batch), ("nsf", 512));
        let Some(Command::Bench(args)) = parse(&["bench"]).unwrap().command else {
            panic!("not bench");
        };
        assert_eq!(args.flow, Family::DEFAULT.name());
        assert_eq!(args.backend, "cpu");
        let Some(Command::Bench(args)) = parse(&["bench", "--backend", "gpu"]).unwrap().command
        else {
            panic!("not bench");
        };
        assert_eq!(args.backend, "gpu");
        assert!(parse(&["bench", "--backend", "tpu"]).is_err());
    }

    #[test]
    fn render_size_is_bounded() {
        assert!(parse(&["render", "--out", "x.png", "--size", "8"]).is_err());
        assert!(parse(&["render", "--out", "x.png", "--size", "5000"]).is_err());
    }

    fn render_args(layers: RenderLayers) -> RenderArgs {
        RenderArgs {
            target: DEFAULT_TARGET.into(),
            out: PathBuf::new(),
            size: 64,
            samples: 500,
            seed: 1,
            layers,
            csv: None,
        }
    }

    #[test]
    fn rendered_layers_differ_and_are_not_blank() {
        let background = image::Rgba(crate::viz::colormap(0.0));
        let both = render_image(&render_args(RenderLayers::Both)).unwrap();
        let samples = render_image(&render_args(RenderLayers::Samples)).unwrap();
        let density = render_image(&render_args(RenderLayers::Density)).unwrap();
        for image in [&both, &samples, &density] {
            let lit = image.pixels().filter(|&&p| p != background).count();
            assert!(lit > 64 * 64 / 20, "only {lit} non-background pixels");
        }
        assert_ne!(both, samples);
        assert_ne!(both, density);
    }

    #[test]
    fn render_is_deterministic_per_seed() {
        let a = render_image(&render_args(RenderLayers::Samples)).unwrap();
        let b = render_image(&render_args(RenderLayers::Samples)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn render_of_unknown_target_is_an_error_naming_known_targets() {
        let mut args = render_args(RenderLayers::Both);
        args.target = "nope".into();
        let err = render_image(&args).unwrap_err();
        assert!(err.to_string().contains(DEFAULT_TARGET), "{err}");
    }
}
