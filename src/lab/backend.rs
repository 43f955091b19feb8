//! Which executor trains a model: the CPU's or the GPU's (WebGPU in the page, Vulkan, Metal
//! or DX12 natively), as the user asked (`backend=` in the link) and the device allows.
//!
//! The GPU executor runs where the trainer runs: in the page that is the model's Web Worker,
//! which asks the browser for its own WebGPU device (dedicated workers have `navigator.gpu`).
//! Why not the page's device: a worker's steps never wait for the UI's frames nor hold them
//! up, and a trainer that dies takes only its own device with it. The cost: the views'
//! pictures are read back from the worker's device rather than drawn from its buffers.

use crate::engine::gpu::GpuContext;
use crate::train::ObjectiveKind;

/// What the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU where it is a real one and the batch is large enough to win, else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// The GPU wherever there is one that computes (a CPU emulation included).
    Webgpu,
}

impl BackendChoice {
    /// Every choice, by its link name.
    pub const ALL: [BackendChoice; 3] = [
        BackendChoice::Auto,
        BackendChoice::Cpu,
        BackendChoice::Webgpu,
    ];

    /// The link's name: `auto`, `cpu`, `webgpu`.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Webgpu => "webgpu",
        }
    }

    /// The choice called `name` (`gpu` is taken for `webgpu`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "gpu" => Some(BackendChoice::Webgpu),
            name => Self::ALL.into_iter().find(|c| c.name() == name),
        }
    }
}

/// Below this batch the automatic choice keeps the CPU without asking for a device; from it,
/// on a real GPU, both executors are timed on the model ([`super::race`]) and the faster
/// trains on. Why a floor at all: asking costs every model's worker a device and its
/// shaders. Why 4,096: on the CPU a step of the reference RealNVP grows linearly with the
/// batch (1.7 ms natively and ~5 ms in the page at 512), while a GPU step costs a
/// near-constant ~0.5–1 ms of dispatch and read-back latency until the batch fills the GPU;
/// 4,096 is where that estimate says the GPU may win. The estimate is not measured on a real
/// GPU yet (the race above it is): `backend=webgpu` overrides it.
pub const AUTO_GPU_MIN_BATCH: usize = 4096;

/// Why a model trains on the CPU.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CpuReason {
    /// `backend=cpu`.
    Asked,
    /// No GPU that computes (WebGL2 only, no adapter, the device request failed).
    NoGpu(String),
    /// The automatic choice: the adapter emulates a GPU on the CPU (SwiftShader, lavapipe).
    Software(String),
    /// The automatic choice: the batch is below [`AUTO_GPU_MIN_BATCH`].
    SmallBatch(usize),
    /// Reverse KL evaluates the target's score on the CPU inside every step.
    ReverseKl,
    /// The automatic choice, for now: the first steps are timed on both executors
    /// ([`super::race`]).
    Measuring,
    /// The automatic choice: timed on this device, the CPU's step was not slower than the
    /// GPU's by enough ([`super::race::GPU_WIN_SHARE`]).
    Slower(super::race::RaceTimes),
    /// The GPU could not compile or run the model.
    Failed(String),
    /// The views' pictures only: the GPU trains, but it is an emulation, where a 128² grid
    /// and 10,000 particles took 50 s against the CPU's 0.12–0.26 s (headless Chromium on
    /// SwiftShader).
    PicturesOnEmulation(String),
    /// The views' pictures only: the GPU failed to draw them.
    PicturesFailed(String),
    /// The GPU trained the model until it failed (its device lost, an error no one caught);
    /// the CPU took over from the last parameters it returned.
    Lost(String),
}

/// The executor a model trains on.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Backend {
    /// The CPU executor, and why.
    Cpu(CpuReason),
    /// The GPU executor, on this adapter.
    Gpu(String),
}

impl Backend {
    /// The test hook's name: `"cpu"` or `"webgpu"`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu(_) => "cpu",
            Backend::Gpu(_) => "webgpu",
        }
    }

    /// Why the CPU, in the current language; `None` on the GPU.
    pub fn reason(&self) -> Option<String> {
        let Backend::Cpu(reason) = self else {
            return None;
        };
        Some(match reason {
            CpuReason::Asked => crate::tr!("lab.backend.asked").to_owned(),
            CpuReason::NoGpu(why) => crate::tr!("lab.backend.no_gpu", why = why),
            CpuReason::Software(adapter) => crate::tr!("lab.backend.software", adapter = adapter),
            CpuReason::SmallBatch(batch) => crate::tr!(
                "lab.backend.small_batch",
                batch = batch,
                min = AUTO_GPU_MIN_BATCH
            ),
            CpuReason::ReverseKl => crate::tr!("lab.backend.reverse_kl").to_owned(),
            CpuReason::Measuring => crate::tr!("lab.backend.measuring").to_owned(),
            CpuReason::Slower(times) => crate::tr!(
                "lab.backend.slower",
                cpu = format!("{:.2}", times.cpu_ms),
                gpu = format!("{:.2}", times.gpu_ms)
            ),
            CpuReason::Failed(why) => crate::tr!("lab.backend.failed", why = why),
            CpuReason::Lost(why) => crate::tr!("lab.backend.lost", why = why),
            CpuReason::PicturesOnEmulation(adapter) => {
                crate::tr!("lab.backend.pictures_software", adapter = adapter)
            }
            CpuReason::PicturesFailed(why) => crate::tr!("lab.backend.pictures_failed", why = why),
        })
    }
}

/// The GPU a trainer's host could give it.
#[derive(Clone, Debug)]
pub enum GpuAccess {
    /// Not asked for yet.
    Unknown,
    /// A device with flowlab's kernels compiled.
    Ready(Box<GpuContext>),
    /// None, and why.
    Unavailable(String),
}

/// Why a model with `objective` and `batch` trains on the CPU whatever GPU there is, if it
/// does: then its trainer need not ask for a device at all.
pub fn cpu_regardless(
    choice: BackendChoice,
    objective: ObjectiveKind,
    batch: usize,
) -> Option<CpuReason> {
    if choice == BackendChoice::Cpu {
        Some(CpuReason::Asked)
    } else if objective == ObjectiveKind::ReverseKl {
        Some(CpuReason::ReverseKl)
    } else if choice == BackendChoice::Auto && batch < AUTO_GPU_MIN_BATCH {
        Some(CpuReason::SmallBatch(batch))
    } else {
        None
    }
}

/// Where a model with `objective` and `batch` trains, given the user's `choice` and the
/// host's `gpu` (asked for already unless [`cpu_regardless`] says the CPU).
pub fn decide(
    choice: BackendChoice,
    gpu: &GpuAccess,
    objective: ObjectiveKind,
    batch: usize,
) -> Result<GpuContext, CpuReason> {
    if let Some(reason) = cpu_regardless(choice, objective, batch) {
        return Err(reason);
    }
    let ctx = match gpu {
        GpuAccess::Ready(ctx) => ctx,
        GpuAccess::Unavailable(why) => return Err(CpuReason::NoGpu(why.clone())),
        GpuAccess::Unknown => return Err(CpuReason::NoGpu("not asked".into())),
    };
    if choice == BackendChoice::Auto && ctx.is_software() {
        return Err(CpuReason::Software(ctx.adapter_name()));
    }
    Ok(ctx.as_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for choice in BackendChoice::ALL {
            assert_eq!(BackendChoice::from_name(choice.name()), Some(choice));
        }
        assert_eq!(BackendChoice::from_name("GPU"), Some(BackendChoice::Webgpu));
        assert_eq!(BackendChoice::from_name("tpu"), None);
    }

    #[test]
    fn the_cpu_regardless_needs_no_device() {
        use ObjectiveKind::{Mle, ReverseKl};
        let cpu = |choice, objective, batch| cpu_regardless(choice, objective, batch);
        assert_eq!(cpu(BackendChoice::Cpu, Mle, 65_536), Some(CpuReason::Asked));
        assert_eq!(
            cpu(BackendChoice::Webgpu, ReverseKl, 65_536),
            Some(CpuReason::ReverseKl)
        );
        assert_eq!(
            cpu(BackendChoice::Auto, Mle, 256),
            Some(CpuReason::SmallBatch(256))
        );
        assert_eq!(cpu(BackendChoice::Auto, Mle, AUTO_GPU_MIN_BATCH), None);
        assert_eq!(cpu(BackendChoice::Webgpu, Mle, 1), None);
    }

    #[test]
    fn without_a_gpu_every_choice_trains_on_the_cpu_and_says_why() {
        let none = GpuAccess::Unavailable("WebGL2 has no compute shaders".into());
        for choice in BackendChoice::ALL {
            let reason = decide(choice, &none, ObjectiveKind::Mle, 65_536).unwrap_err();
            let expected = if choice == BackendChoice::Cpu {
                CpuReason::Asked
            } else {
                CpuReason::NoGpu("WebGL2 has no compute shaders".into())
            };
            assert_eq!(reason, expected);
            let said = Backend::Cpu(reason).reason().unwrap();
            assert!(!said.is_empty() && !said.contains('{'), "{said}");
        }
    }
}
