//! Optimizers over the flat parameter buffer: Adam / AdamW (Kingma & Ba 2015; Loshchilov &
//! Hutter 2019) with bias correction, global gradient-norm clipping and learning-rate
//! schedules. One pass over one buffer: no per-tensor loop.

/// How the learning rate changes over training (after the warm-up).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Cosine decay from the base rate to `final_fraction`·base at `total_steps`.
    Cosine {
        /// Step at which the decay ends.
        total_steps: u64,
        /// Rate at the end, as a fraction of the base rate.
        final_fraction: f32,
    },
}

/// Adam's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Base learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator floor.
    pub eps: f32,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    pub weight_decay: f32,
    /// Rescale the whole gradient to at most this L2 norm.
    pub clip_norm: Option<f32>,
    /// Steps of linear warm-up from 0 to the base rate.
    pub warmup_steps: u64,
    /// Schedule after the warm-up.
    pub schedule: LrSchedule,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: None,
            warmup_steps: 0,
            schedule: LrSchedule::Constant,
        }
    }
}

impl AdamConfig {
    /// The learning rate used at step `t` (1-based).
    pub fn lr_at(&self, t: u64) -> f32 {
        if self.warmup_steps > 0 && t <= self.warmup_steps {
            return self.lr * t as f32 / self.warmup_steps as f32;
        }
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine {
                total_steps,
                final_fraction,
            } => {
                let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let progress = (t.saturating_sub(self.warmup_steps) as f64 / span).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                let f = final_fraction as f64;
                (self.lr as f64 * (f + (1.0 - f) * cosine)) as f32
            }
        }
    }
}

/// The per-step scalars of Adam's update `p ← p·decay − step_size·m / (√v·inv_sqrt_bias2 + ε)`:
/// computed once per step, in f64 where it matters, by both executors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateScalars {
    /// The scheduled learning rate.
    pub lr: f32,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// `1 / √(1 − β₂ᵗ)`.
    pub inv_sqrt_bias2: f32,
    /// `1 − lr·weight_decay`.
    pub decay: f32,
}

impl AdamConfig {
    /// The update's scalars at step `t` (1-based).
    pub fn scalars(&self, t: u64) -> UpdateScalars {
        let lr = self.lr_at(t);
        let t = t.min(i32::MAX as u64) as i32;
        let bias1 = 1.0 - (self.beta1 as f64).powi(t);
        let bias2 = 1.0 - (self.beta2 as f64).powi(t);
        UpdateScalars {
            lr,
            step_size: (lr as f64 / bias1) as f32,
            inv_sqrt_bias2: (1.0 / bias2.sqrt()) as f32,
            decay: 1.0 - lr * self.weight_decay,
        }
    }
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// L2 norm of the gradient before clipping.
    pub grad_norm: f32,
    /// Learning rate applied.
    pub lr: f32,
}

/// Adam state for one parameter buffer.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Settings (may be changed between steps, e.g. the divergence guard halves `lr`).
    pub config: AdamConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    t: u64,
}

impl Clone for Adam {
    fn clone(&self) -> Self {
        Self {
            config: self.config,
            m: self.m.clone(),
            v: self.v.clone(),
            t: self.t,
        }
    }

    /// Why by hand: the derived `clone_from` is `*self = source.clone()`, which allocates; the
    /// trainer snapshots its optimizer every few steps and must not allocate per step.
    fn clone_from(&mut self, source: &Self) {
        self.config = source.config;
        self.m.clone_from(&source.m);
        self.v.clone_from(&source.v);
        self.t = source.t;
    }
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(config: AdamConfig, n: usize) -> Self {
        Self {
            config,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The first and second moments, to fill from an update that ran elsewhere (the GPU's).
    pub fn moments_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.m, &mut self.v)
    }

    /// Sets the count of steps taken (steps counted ahead that never reported).
    pub fn set_steps(&mut self, t: u64) {
        self.t = t;
    }

    /// Counts a step whose update ran elsewhere (the GPU's Adam); returns its number `t`.
    pub fn advance(&mut self) -> u64 {
        self.t += 1;
        self.t
    }

    /// Applies one update to `params` from `grads` (same length; `grads` is clipped in place).
    pub fn step(&mut self, params: &mut [f32], grads: &mut [f32]) -> StepReport {
        debug_assert_eq!(
            params.len(),
            grads.len(),
            "params and grads differ in length"
        );
        debug_assert_eq!(
            params.len(),
            self.m.len(),
            "optimizer state of another model"
        );
        let grad_norm = grads
            .iter()
            .map(|&g| g as f64 * g as f64)
            .sum::<f64>()
            .sqrt() as f32;
        if let Some(max) = self.config.clip_norm
            && grad_norm > max
            && grad_norm.is_finite()
        {
            let scale = max / grad_norm;
            grads.iter_mut().for_each(|g| *g *= scale);
        }
        self.t += 1;
        let c = self.config;
        let UpdateScalars {
            lr,
            step_size,
            inv_sqrt_bias2,
            decay,
        } = c.scalars(self.t);
        let (b1, b2) = (c.beta1, c.beta2);
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grads.iter())
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let denom = v.sqrt() * inv_sqrt_bias2 + c.eps;
            *p = *p * decay - step_size * *m / denom;
        }
        StepReport { grad_norm, lr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_parameter_by_lr() {
        // With bias correction, step 1 is lr·g/(|g| + eps·…) ≈ lr·sign(g).
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
            3,
        );
        let mut p = vec![1.0, 1.0, 1.0];
        let mut g = vec![2.0, -0.5, 1e-3];
        adam.step(&mut p, &mut g);
        for (pi, expected) in p.iter().zip([0.9, 1.1, 0.9]) {
            assert!((pi - expected).abs() < 1e-4, "{pi} vs {expected}");
        }
    }

    #[test]
    fn clipping_bounds_the_gradient_norm() {
        let mut adam = Adam::new(
            AdamConfig {
                clip_norm: Some(1.0),
                ..Default::default()
            },
            2,
        );
        let (mut p, mut g) = (vec![0.0; 2], vec![30.0, 40.0]);
        let report = adam.step(&mut p, &mut g);
        assert_eq!(report.grad_norm, 50.0);
        assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn schedules_warm_up_then_decay() {
        let c = AdamConfig {
            lr: 1.0,
            warmup_steps: 10,
            schedule: LrSchedule::Cosine {
                total_steps: 110,
                final_fraction: 0.1,
            },
            ..Default::default()
        };
        assert!((c.lr_at(5) - 0.5).abs() < 1e-6);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-6);
        assert!((c.lr_at(60) - 0.55).abs() < 1e-6);
        assert!((c.lr_at(110) - 0.1).abs() < 1e-6);
        assert!((c.lr_at(1000) - 0.1).abs() < 1e-6);
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.05,
                ..Default::default()
            },
            2,
        );
        let mut p = vec![3.0f32, -2.0];
        for _ in 0..2000 {
            let mut g = vec![2.0 * (p[0] - 1.0), 8.0 * (p[1] + 0.5)];
            adam.step(&mut p, &mut g);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-3 && (p[1] + 0.5).abs() < 1e-3,
            "{p:?}"
        );
    }
}
