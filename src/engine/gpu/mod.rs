//! The GPU executor: the engine's graphs as WGSL compute on wgpu (eframe's own version,
//! through `eframe::egui_wgpu::wgpu`), natively (Vulkan, Metal, DX12; lavapipe in the tests)
//! and in the browser (WebGPU).
//!
//! [`GpuProgram`] is compiled from the same plan as [`crate::engine::CpuProgram`] (the same
//! live op list and liveness-based buffer reuse, in an order of its own that lets whole
//! phases of rows share a launch: `order.rs`), laid out in one storage buffer:
//! parameters first, then Adam's moments, the gradient in the parameter layout, a snapshot
//! for rollbacks, scratch, and every planned buffer. A run records all its dispatches into
//! one compute pass and one submission; nothing is allocated per run.
//! [`GpuGradientProgram`] adds the training step: the gradient written straight into the flat
//! layout, its norm, Adam and a non-finite check, all on the GPU; steps can run ahead of
//! their reports, which come back asynchronously (the page's threads never wait on the GPU).
//! Only the reverse-KL step and the tools' reads wait (`device.poll`), which only native wgpu
//! can do.

mod access;
mod chunked;
mod fuse;
mod lower;
mod order;
mod program;
mod training;

pub use chunked::ChunkedProgram;
pub use program::GpuProgram;
pub use training::{GpuGradientProgram, GpuReadBack, GpuStepReport, REPORT_SLOTS};

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
///
/// The device is watched from the start: its loss and any error no error scope caught (a
/// validation error, running out of memory) are recorded ([`Self::fault`]), and a trainer
/// on it falls back to the CPU. Why replace wgpu's own handler: natively it panics, which
/// would take the trainer's thread with it.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: Arc<program::Pipelines>,
    info: wgpu::AdapterInfo,
    fault: Arc<std::sync::Mutex<Option<String>>>,
    /// A binding limit below the device's ([`Self::with_binding_limit`]).
    binding_limit: Option<u64>,
    /// The automatic choices take a software adapter for a real GPU
    /// ([`Self::counted_as_hardware`]).
    counted_as_hardware: bool,
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
    /// Compiles the kernels on an existing device (eframe's, in the app). Natively a shader
    /// error is known at once; in a browser only [`Self::request`] waits to know it.
    pub fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
    ) -> Result<Self, GpuError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let ctx = Self::assemble(device, queue, info);
        if let Some(Some(error)) = ready_now(scope.pop()) {
            return Err(GpuError::Validation(error.to_string()));
        }
        Ok(ctx)
    }

    fn assemble(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let fault: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let record = |fault: &Arc<std::sync::Mutex<Option<String>>>| {
            let fault = fault.clone();
            move |what: String| {
                log::warn!("flowlab: {what}");
                if let Ok(mut first) = fault.lock() {
                    first.get_or_insert(what);
                }
            }
        };
        let lost = record(&fault);
        device.set_device_lost_callback(move |reason, message| {
            let what = match reason {
                wgpu::DeviceLostReason::Destroyed => "the GPU device was destroyed",
                wgpu::DeviceLostReason::Unknown => "the GPU device was lost",
            };
            lost(if message.is_empty() {
                what.to_owned()
            } else {
                format!("{what}: {message}")
            })
        });
        let uncaptured = record(&fault);
        device.on_uncaptured_error(Arc::new(move |error| {
            uncaptured(match error {
                wgpu::Error::OutOfMemory { .. } => "the GPU ran out of memory".to_owned(),
                error => format!("the GPU reported an error: {error}"),
            })
        }));
        let pipelines = Arc::new(program::Pipelines::compile(&device));
        Self {
            device,
            queue,
            pipelines,
            info,
            fault,
            binding_limit: None,
            counted_as_hardware: false,
        }
    }

    /// This context with programs limited to `bytes` in one binding, as on a smaller device:
    /// a larger batch then trains in parts (the tests), a picture runs on fewer points at a
    /// time (the views' budget, `lab::gpu_pictures`).
    pub fn with_binding_limit(mut self, bytes: u64) -> Self {
        self.binding_limit = Some(self.binding_limit.map_or(bytes, |limit| limit.min(bytes)));
        self
    }

    /// This context with its adapter taken for a real GPU by the automatic choices
    /// ([`Self::is_software`] is false), so that the paths only a real GPU takes can be
    /// tested on lavapipe: its results are right, only slow. For the tests.
    pub fn counted_as_hardware(mut self) -> Self {
        self.counted_as_hardware = true;
        self
    }

    /// The first loss or uncaught error of the device since it was set up, if any: once
    /// there is one, nothing it computes can be trusted.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    /// Destroys the device, as a lost GPU would be: every use after it fails and
    /// [`Self::fault`] says so. For the tests and the fault hook.
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// A device of its own, without a window: the CLI, the tests and a native trainer thread.
    /// Only native wgpu answers at once; elsewhere this says so (see [`Self::request`]).
    pub fn headless() -> Result<Self, GpuError> {
        ready_now(Self::request()).unwrap_or_else(|| {
            Err(GpuError::Unavailable(
                "the GPU did not answer at once (only a native trainer or a Web Worker can wait for it)"
                    .into(),
            ))
        })
    }

    /// Asks for a device of its own: natively the first adapter (`WGPU_BACKEND` etc. choose),
    /// in a browser or a Web Worker the WebGPU adapter. Takes the adapter's buffer limits (a
    /// batch of 65,536 needs more than WebGPU's default 128 MiB binding). Never GL: WebGL2
    /// has no compute shaders.
    pub async fn request() -> Result<Self, GpuError> {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        descriptor.backends.remove(wgpu::Backends::GL);
        let instance = wgpu::Instance::new(descriptor);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
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
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("flowlab compute"),
                required_limits: limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        // Why wait for the scope: in a browser a shader the compiler refuses only says so
        // here, and a program built on it would run nothing and read back zeros.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let ctx = Self::assemble(device, queue, adapter.get_info());
        if let Some(error) = scope.pop().await {
            return Err(GpuError::Validation(error.to_string()));
        }
        Ok(ctx)
    }

    /// The adapter's name (in a browser its description, often empty: then the API's name,
    /// e.g. `WebGPU`, read in reasons as "the GPU adapter (WebGPU)").
    pub fn adapter_name(&self) -> String {
        match self.info.backend {
            _ if !self.info.name.is_empty() => self.info.name.clone(),
            wgpu::Backend::BrowserWebGpu => "WebGPU".to_owned(),
            backend => format!("{backend:?}"),
        }
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
        !self.counted_as_hardware && self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Most bytes one storage binding may cover on this device.
    pub(crate) fn max_binding_bytes(&self) -> u64 {
        let limits = self.device.limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(self.binding_limit.unwrap_or(u64::MAX))
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
