//! The GPU executor: the engine's graphs as WGSL compute on wgpu (eframe's own version,
//! through `eframe::egui_wgpu::wgpu`), natively (Vulkan, Metal, DX12; lavapipe in the tests)
//! and in the browser (WebGPU).
//!
//! [`GpuProgram`] is compiled from the same plan as [`crate::engine::CpuProgram`] (the same
//! live op list, the same liveness-based buffer reuse), laid out in one storage buffer:
//! parameters first, then Adam's moments, the gradient in the parameter layout, a snapshot
//! for rollbacks, scratch, and every planned buffer. A run records all its dispatches into
//! one compute pass and one submission; nothing is allocated per run.
//! [`GpuGradientProgram`] adds the training step: the gradient written straight into the flat
//! layout, its norm, Adam and a non-finite check, all on the GPU, with three floats read back.
//!
//! Read-back here is synchronous (`device.poll`), which only native wgpu can do; the page
//! will read back asynchronously.

mod lower;
mod program;
mod training;

pub use program::GpuProgram;
pub use training::{GpuGradientProgram, GpuStepReport};

use std::sync::Arc;

use eframe::egui_wgpu::wgpu;

/// What went wrong on the GPU path (the reason the CPU runs instead).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GpuError {
    /// No adapter, or one without compute shaders (WebGL2).
    #[error("no GPU with compute shaders: {0}")]
    Unavailable(String),
    /// wgpu refused a shader, pipeline or buffer.
    #[error("the GPU refused the program: {0}")]
    Validation(String),
    /// The model's buffers exceed what the device can bind.
    #[error(
        "the model needs {needed} MB of GPU memory in one buffer; this device binds at most {limit} MB"
    )]
    TooLarge {
        /// Megabytes needed.
        needed: u64,
        /// The device's binding limit in megabytes.
        limit: u64,
    },
    /// A read-back failed or could not complete synchronously (only native wgpu can wait).
    #[error("reading from the GPU failed: {0}")]
    Readback(String),
    /// The graph could not be compiled at all.
    #[error(transparent)]
    Exec(#[from] crate::engine::ExecError),
}

/// A wgpu device with flowlab's pipelines compiled on it. Cheap to clone.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: Arc<program::Pipelines>,
    info: wgpu::AdapterInfo,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .finish()
    }
}

impl GpuContext {
    /// Compiles the kernels on an existing device (eframe's, in the app).
    pub fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
    ) -> Result<Self, GpuError> {
        let pipelines = Arc::new(program::Pipelines::new(&device)?);
        Ok(Self {
            device,
            queue,
            pipelines,
            info,
        })
    }

    /// A device of its own, without a window: the CLI, the tests and a native trainer thread.
    /// Takes the adapter's buffer limits (a batch of 65,536 needs more than WebGPU's default
    /// 128 MiB binding). Only native wgpu answers synchronously; elsewhere this says so.
    pub fn headless() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = ready_now(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .ok_or_else(|| GpuError::Unavailable("the adapter request did not complete".into()))?
        .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        if !adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(GpuError::Unavailable(format!(
                "{} has no compute shaders",
                adapter.get_info().name
            )));
        }
        let supported = adapter.limits();
        let limits = wgpu::Limits {
            max_buffer_size: supported.max_buffer_size,
            max_storage_buffer_binding_size: supported.max_storage_buffer_binding_size,
            ..wgpu::Limits::default()
        };
        let (device, queue) = ready_now(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("flowlab compute"),
            required_limits: limits,
            ..Default::default()
        }))
        .ok_or_else(|| GpuError::Unavailable("the device request did not complete".into()))?
        .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        Self::new(device, queue, adapter.get_info())
    }

    /// The adapter's name, backend and type, e.g. `llvmpipe (LLVM 15.0.6) · Vulkan · Cpu`.
    pub fn describe(&self) -> String {
        format!(
            "{} · {:?} · {:?}",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// Whether the adapter is a CPU emulation (lavapipe, SwiftShader, WARP): correct, but
    /// slower than the CPU executor, so never chosen automatically.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Most bytes one storage binding may cover on this device.
    pub(crate) fn max_binding_bytes(&self) -> u64 {
        let limits = self.device.limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }
}

/// Polls `future` once: native wgpu resolves its requests and error scopes immediately; in the
/// browser they resolve later, and this returns `None`.
pub(crate) fn ready_now<F: std::future::IntoFuture>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future.into_future());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
