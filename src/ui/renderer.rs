//! Which graphics API draws the UI, and whether its device could run compute shaders.

/// Which graphics API draws the UI, and what the adapter can do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RendererInfo {
    /// Stable identifier: `"webgpu"`, `"webgl2"`, `"vulkan"`, `"metal"`, `"dx12"`, `"gl"`,
    /// `"noop"` or `"none"` (no wgpu render state).
    pub id: &'static str,
    /// Human-readable name in English, for logs, e.g. `"WebGPU"`, `"native Vulkan"`; the
    /// panels show [`RendererInfo::name`].
    pub label: &'static str,
    /// The adapter's name as the driver reports it (may be empty in browsers).
    pub adapter: String,
    /// Whether the render device can run compute shaders (WebGPU, Vulkan, Metal, DX12 — not
    /// WebGL2, and not a device created with WebGL2-level limits).
    pub gpu_compute: bool,
    /// Whether the adapter is a software rasterizer (SwiftShader, llvmpipe): drawing then
    /// costs CPU time that training would otherwise have.
    pub software: bool,
}

impl RendererInfo {
    /// The renderer's name in the current language.
    pub fn name(&self) -> &'static str {
        crate::i18n::text(&format!("renderer.{}", self.id))
    }

    /// No wgpu render state (e.g. a test harness without a renderer).
    pub fn none() -> Self {
        Self {
            id: "none",
            label: "no renderer", // i18n: English for logs
            adapter: String::new(),
            gpu_compute: false,
            software: false,
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
            wgpu::Backend::Gl if crate::platform::IS_WEB => ("webgl2", "WebGL2"),
            wgpu::Backend::Gl => ("gl", "native OpenGL"), // i18n: English for logs
            wgpu::Backend::Vulkan => ("vulkan", "native Vulkan"), // i18n: English for logs
            wgpu::Backend::Metal => ("metal", "native Metal"), // i18n: English for logs
            wgpu::Backend::Dx12 => ("dx12", "native DirectX 12"), // i18n: English for logs
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
            software: info.device_type == wgpu::DeviceType::Cpu,
            adapter: info.name,
            gpu_compute,
        }
    }
}
