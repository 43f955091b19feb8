//! The status line (bottom panel) and the status snapshot the browser test hook publishes.
//!
//! [`StatusSnapshot`] is the single description of "where the app stands": the status line
//! draws it and `window.flowlab.status()` returns it as JSON, so tests see what users see.

use egui::{Color32, RichText};

/// Which graphics API draws the UI, and what the adapter can do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RendererInfo {
    /// Stable identifier: `"webgpu"`, `"webgl2"`, `"vulkan"`, `"metal"`, `"dx12"`, `"gl"`,
    /// `"noop"` or `"none"` (no wgpu render state).
    pub id: &'static str,
    /// Human-readable name, e.g. `"WebGPU"`, `"native Vulkan"`.
    pub label: &'static str,
    /// The adapter's name as the driver reports it (may be empty in browsers).
    pub adapter: String,
    /// Whether the render device can run compute shaders (WebGPU, Vulkan, Metal, DX12 — not
    /// WebGL2, and not a device created with WebGL2-level limits).
    pub gpu_compute: bool,
}

impl RendererInfo {
    /// No wgpu render state (e.g. a test harness without a renderer).
    pub fn none() -> Self {
        Self {
            id: "none",
            label: "no renderer",
            adapter: String::new(),
            gpu_compute: false,
        }
    }

    /// Describes eframe's wgpu render state.
    pub fn from_render_state(state: Option<&eframe::egui_wgpu::RenderState>) -> Self {
        use eframe::egui_wgpu::wgpu;
        let Some(state) = state else {
            return Self::none();
        };
        let info = state.adapter.get_info();
        let (id, label) = match info.backend {
            wgpu::Backend::BrowserWebGpu => ("webgpu", "WebGPU"),
            // Why: in a browser wgpu's GL backend *is* WebGL2.
            wgpu::Backend::Gl if cfg!(target_arch = "wasm32") => ("webgl2", "WebGL2"),
            wgpu::Backend::Gl => ("gl", "native OpenGL"),
            wgpu::Backend::Vulkan => ("vulkan", "native Vulkan"),
            wgpu::Backend::Metal => ("metal", "native Metal"),
            wgpu::Backend::Dx12 => ("dx12", "native DirectX 12"),
            wgpu::Backend::Noop => ("noop", "no-op"),
        };
        // Why both checks: egui-wgpu may create a device with WebGL2-level limits on a GL adapter
        // that itself claims compute support (see TOOLCHAIN.md §5).
        let gpu_compute = state
            .adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            && state.device.limits().max_compute_invocations_per_workgroup >= 64;
        Self {
            id,
            label,
            adapter: info.name,
            gpu_compute,
        }
    }
}

/// Everything the status line shows; serialised as the browser test hook's JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StatusSnapshot {
    /// The compute backend training runs on: `"cpu"` today, `"webgpu"` once the GPU executor
    /// exists.
    pub backend: String,
    /// Whether a WebGPU adapter (which always has compute) is available to this page; `null`
    /// while the browser is still being asked. Natively: whether the render device can run
    /// compute shaders.
    pub webgpu_available: Option<bool>,
    /// The renderer's id (see [`RendererInfo::id`]).
    pub renderer: &'static str,
    /// The renderer's adapter name.
    pub adapter: String,
    /// Optimisation steps taken.
    pub step: u64,
    /// The latest loss, or `null`.
    pub loss: Option<f64>,
    /// What went wrong (bad URL fragment, unknown target, training failure), or `null`.
    pub error: Option<String>,
    /// The scene's target.
    pub target: String,
    /// The scene's flow.
    pub flow: String,
    /// The scene's seed.
    pub seed: u64,
    /// Whether training is playing (vs paused).
    pub playing: bool,
    /// Why there is no trainer (e.g. "the training engine is not built yet"), or `null`.
    pub trainer: Option<String>,
    /// Frames drawn so far.
    pub frames: u64,
    /// Recent frames per second, while the app is animating.
    pub fps: Option<f32>,
    /// Number of target samples drawn.
    pub samples: usize,
}

/// The status line.
#[derive(Default)]
pub struct StatusPanel;

impl StatusPanel {
    /// Draws one line: renderer, compute backend, training progress, fps; errors below it.
    pub fn ui(&mut self, ui: &mut egui::Ui, status: &StatusSnapshot, renderer: &RendererInfo) {
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
            ));
            ui.separator();
            ui.label(format!("Step {}", status.step));
            ui.separator();
            match status.loss {
                Some(loss) => ui.label(format!("Loss {loss:.4}")),
                None => ui.label("Loss —"),
            };
            if let Some(fps) = status.fps {
                ui.separator();
                ui.label(format!("{fps:.0} fps"));
            }
            if let Some(reason) = &status.trainer {
                ui.separator();
                ui.label(RichText::new(format!("Trainer: {reason}")).weak());
            }
        });
        if let Some(error) = &status.error {
            ui.label(
                RichText::new(format!("Error: {error}")).color(Color32::from_rgb(255, 110, 90)),
            );
        }
    }
}
