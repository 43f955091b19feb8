//! `backend=auto` on a real GPU: which executor trains this model faster, at its batch, on
//! this device — measured, not guessed. Where the GPU overtakes the CPU depends on the
//! device, the model and the batch (a GPU step costs a near-constant dispatch and read-back
//! latency, a CPU step grows with the batch), so no one threshold fits every machine.
//!
//! How: the model starts on the CPU, whose first steps are timed as they train it. A GPU
//! trainer built from the same initial parameters and the same data stream then takes the
//! same steps, submitted ahead of their reports, timed from the first timed submission to
//! the last outcome. Both end at the same step with the same parameters to rounding (the
//! executors' parity), so the faster one simply goes on and the other is dropped: the race
//! costs the CPU's wait while the GPU catches up, a fraction of a second, and no step.

use crate::train::Trainer;

/// Untimed steps on each executor first: compilation, first uploads, caches.
pub const WARMUP_STEPS: u64 = 2;
/// Timed steps, at most.
pub const TIMED_STEPS: u64 = 8;
/// Timed steps, at least.
const MIN_TIMED_STEPS: u64 = 2;
/// The CPU's timing stops once its timed steps took this long (a large batch in the page
/// takes ~0.7 s a step; the race must not hold a class's first seconds).
const CPU_BUDGET_MS: f64 = 300.0;
/// The GPU wins when its step takes at most this share of the CPU's. Why not 1: a GPU
/// trainer also holds a device and reads its parameters back for the views, and timings
/// within 10 % are noise on a shared machine.
pub const GPU_WIN_SHARE: f64 = 0.9;

/// The two executors' measured milliseconds per step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RaceTimes {
    /// Per step on the CPU.
    pub cpu_ms: f64,
    /// Per step on the GPU, pipelined as it trains.
    pub gpu_ms: f64,
}

impl RaceTimes {
    /// Whether the GPU won by [`GPU_WIN_SHARE`] (`share` overrides it, for the tests).
    pub fn gpu_wins(&self, share: f64) -> bool {
        self.gpu_ms.is_finite() && self.gpu_ms <= share * self.cpu_ms
    }
}

/// How a race ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The GPU won: its trainer, at the CPU's step, trains on ([`Race::into_gpu_trainer`]).
    Gpu(RaceTimes),
    /// The CPU trains on.
    Cpu(RaceTimes),
    /// The GPU failed while racing; the CPU trains on.
    GpuFailed(String),
}

/// A race under way (see the module's documentation).
pub struct Race {
    gpu: Box<Trainer>,
    /// Milliseconds of each timed CPU step.
    cpu_steps_ms: Vec<f64>,
    /// Untimed CPU steps taken.
    cpu_warmup: u64,
    /// The step both trainers must reach; set when the CPU's timing ends.
    finish_step: Option<u64>,
    /// When the GPU's first timed step was submitted, and the step count before it.
    gpu_clock: Option<(f64, u64)>,
}

impl Race {
    /// A race for the live CPU trainer against `gpu`, built like it on the GPU.
    pub fn new(gpu: Trainer) -> Self {
        Self {
            gpu: Box::new(gpu),
            cpu_steps_ms: Vec::new(),
            cpu_warmup: 0,
            finish_step: None,
            gpu_clock: None,
        }
    }

    /// Whether the CPU must wait: its timing is over and the GPU is catching up.
    pub fn holds_the_cpu(&self) -> bool {
        self.finish_step.is_some()
    }

    /// Records one CPU step of `ms` that brought the live trainer to step `cpu_step`.
    pub fn cpu_stepped(&mut self, ms: f64, cpu_step: u64) {
        if self.finish_step.is_some() {
            return;
        }
        if self.cpu_warmup < WARMUP_STEPS {
            self.cpu_warmup += 1;
            return;
        }
        self.cpu_steps_ms.push(ms);
        let timed = self.cpu_steps_ms.len() as u64;
        let spent: f64 = self.cpu_steps_ms.iter().sum();
        if timed >= TIMED_STEPS || (timed >= MIN_TIMED_STEPS && spent >= CPU_BUDGET_MS) {
            self.finish_step = Some(cpu_step);
        }
    }

    /// Moves the GPU's side on (submits its steps, takes their outcomes) and says how the
    /// race ended, once it has. `share`: see [`RaceTimes::gpu_wins`].
    pub fn advance(&mut self, now_ms: f64, share: f64) -> Option<Verdict> {
        let finish = self.finish_step?;
        let gpu = &mut self.gpu;
        if let Some(why) = gpu.gpu_failure() {
            return Some(Verdict::GpuFailed(why.to_owned()));
        }
        gpu.poll_steps(false);
        let taken = gpu.steps();
        let warm_until = finish - self.cpu_steps_ms.len() as u64;
        // The warm-up steps first, waited for; then the timed ones, submitted together.
        let submit_until = match self.gpu_clock {
            None if taken >= warm_until => {
                self.gpu_clock = Some((now_ms, taken));
                finish
            }
            None => warm_until,
            Some(_) => finish,
        };
        while gpu.steps() + (gpu.steps_in_flight() as u64) < submit_until && gpu.submit_step() {}
        gpu.flush();
        if let Some(why) = gpu.gpu_failure() {
            return Some(Verdict::GpuFailed(why.to_owned()));
        }
        let (started, from) = self.gpu_clock?;
        if gpu.steps() < finish {
            return None;
        }
        let cpu_ms = self.cpu_steps_ms.iter().sum::<f64>() / self.cpu_steps_ms.len() as f64;
        let times = RaceTimes {
            cpu_ms,
            gpu_ms: (now_ms - started) / (finish - from).max(1) as f64,
        };
        Some(if times.gpu_wins(share) {
            Verdict::Gpu(times)
        } else {
            Verdict::Cpu(times)
        })
    }

    /// The GPU's trainer, to train on once it won.
    pub fn into_gpu_trainer(self) -> Trainer {
        *self.gpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_wins_only_by_a_margin_and_never_with_an_unmeasured_time() {
        let times = |cpu_ms, gpu_ms| RaceTimes { cpu_ms, gpu_ms };
        assert!(times(5.0, 1.0).gpu_wins(GPU_WIN_SHARE));
        assert!(times(5.0, 4.5).gpu_wins(GPU_WIN_SHARE));
        assert!(!times(5.0, 4.8).gpu_wins(GPU_WIN_SHARE));
        assert!(!times(5.0, f64::NAN).gpu_wins(GPU_WIN_SHARE));
        assert!(!times(5.0, f64::INFINITY).gpu_wins(GPU_WIN_SHARE));
    }
}
