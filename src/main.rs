//! The `flowlab` binary. Natively: without a command it opens the app's window (eframe, wgpu
//! renderer); `flowlab render | train | bench` run headless (see `crate::cli`). On wasm32 the
//! app starts from `flowlab::web` instead, so `main` is empty there.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser as _;

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = flowlab::cli::Cli::parse();
    match cli.command {
        Some(command) => flowlab::cli::run(command),
        None => open_window(cli.scene),
    }
}

/// Opens the native window on the scene written in `fragment` (`--scene`), or else on the
/// scene stored by the last session.
#[cfg(not(target_arch = "wasm32"))]
fn open_window(fragment: Option<String>) -> std::process::ExitCode {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("flowlab")
        .with_inner_size([1100.0, 720.0])
        .with_min_inner_size([480.0, 320.0]);
    match eframe::icon_data::from_png_bytes(include_bytes!("../assets/icon-256.png")) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(error) => log::warn!("window icon not loaded: {error}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    let result = eframe::run_native(
        "flowlab",
        options,
        Box::new(move |cc| {
            Ok(Box::new(match &fragment {
                Some(fragment) => flowlab::app::FlowlabApp::with_fragment(cc, fragment),
                None => flowlab::app::FlowlabApp::new(cc),
            }))
        }),
    );
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot open the flowlab window: {error}");
            eprintln!("(headless? try `flowlab render --help`, or the web app: scripts/serve)");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
