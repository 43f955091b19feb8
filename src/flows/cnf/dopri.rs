//! Dormand–Prince 5(4) with adaptive step size (Dormand & Prince 1980; Hairer, Nørsett & Wanner,
//! *Solving ODEs I*, §II.4–5), for evaluating a trained CNF to a tolerance.
//!
//! Seven stages per step (the last is the next step's first: "first same as last"); the
//! fifth-order solution advances, the embedded fourth-order one gives the error estimate
//! `err = h·Σ_j (b_j − b*_j)·k_j`. A step is accepted when
//! `‖err / (atol + rtol·max(|y₀|, |y₁|))‖_∞ ≤ 1`, and the next step is
//! `h·clamp(0.9·ratio^{−1/5}, 0.2, 10)`. The whole batch is one state, so every row shares
//! the step sizes; the max norm (not the RMS norm of Hairer's codes and torchdiffeq) makes
//! every point meet the tolerance, not just the batch on average. Adaptive steps depend on the data, so this cannot be
//! a static graph: it drives a right-hand side (a compiled field program) from Rust.

use super::solver::RightHandSide;

/// Relative and absolute tolerances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

/// What the solver did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolverStats {
    /// Steps accepted.
    pub accepted: usize,
    /// Steps rejected (retried with a smaller step).
    pub rejected: usize,
    /// Right-hand-side evaluations: two to start (one to choose the first step), then six per
    /// attempted step (first same as last).
    pub evaluations: usize,
}

impl SolverStats {
    /// Adds another solve's counts.
    pub fn add(&mut self, other: SolverStats) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.evaluations += other.evaluations;
    }
}

/// The adaptive solver gave up.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SolverError {
    /// More steps than allowed (a stiff or exploding field).
    #[error("the adaptive solver needed more than {0} steps")]
    TooManySteps(usize),
    /// The step size underflowed.
    #[error("the adaptive solver's step size underflowed at t = {0}")]
    StepTooSmall(f64),
    /// The field produced NaN or infinity.
    #[error("the vector field became non-finite at t = {0}")]
    NonFinite(f64),
}

const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 7] = [
    &[],
    &[0.2],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// `b − b*`: fifth- minus fourth-order weights.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Integrates `dy/dt = rhs(t, y)` from `t0` to `t1` (either direction) in place.
pub fn dopri5(
    rhs: &mut RightHandSide<'_>,
    y: &mut [f64],
    t0: f64,
    t1: f64,
    tol: Tolerance,
    max_steps: usize,
) -> Result<SolverStats, SolverError> {
    let n = y.len();
    let mut stats = SolverStats::default();
    let span = t1 - t0;
    if span == 0.0 || n == 0 {
        return Ok(stats);
    }
    let dir = span.signum();
    let mut k: Vec<Vec<f64>> = vec![vec![0.0; n]; 7];
    let mut stage = vec![0.0; n];
    let mut y_new = vec![0.0; n];
    rhs(t0, y, &mut k[0]);
    stats.evaluations += 1;
    if !all_finite(&k[0]) {
        return Err(SolverError::NonFinite(t0));
    }
    let mut h = dir * initial_step(rhs, y, &k[0], t0, dir, tol, &mut stats).min(span.abs());
    let mut t = t0;
    while (t1 - t) * dir > 0.0 {
        if stats.accepted + stats.rejected >= max_steps {
            return Err(SolverError::TooManySteps(max_steps));
        }
        if (t + h - t1) * dir > 0.0 {
            h = t1 - t;
        }
        if h.abs() <= 1e-12 * t.abs().max(1.0) {
            return Err(SolverError::StepTooSmall(t));
        }
        for s in 1..7 {
            for (i, out) in stage.iter_mut().enumerate() {
                let incr: f64 = A[s].iter().enumerate().map(|(j, a)| a * k[j][i]).sum();
                *out = y[i] + h * incr;
            }
            rhs(t + C[s] * h, &stage, &mut k[s]);
            stats.evaluations += 1;
            if s == 6 {
                y_new.copy_from_slice(&stage);
            }
        }
        let mut ratio: f64 = 0.0;
        for i in 0..n {
            let err: f64 = h * (0..7).map(|j| E[j] * k[j][i]).sum::<f64>();
            let scale = tol.atol + tol.rtol * y[i].abs().max(y_new[i].abs());
            let r = (err / scale).abs();
            // `f64::max` would drop a NaN; keep it so the step is retried.
            if r.is_nan() {
                ratio = f64::NAN;
                break;
            }
            ratio = ratio.max(r);
        }
        if !ratio.is_finite() {
            // A non-finite stage: shrink hard and retry (or fail when it cannot shrink).
            stats.rejected += 1;
            h *= 0.2;
            continue;
        }
        let factor = if ratio == 0.0 {
            10.0
        } else {
            (0.9 * ratio.powf(-0.2)).clamp(0.2, 10.0)
        };
        if ratio <= 1.0 {
            t += h;
            y.copy_from_slice(&y_new);
            let (first, rest) = k.split_at_mut(1);
            first[0].copy_from_slice(&rest[5]);
            stats.accepted += 1;
            h *= factor;
        } else {
            stats.rejected += 1;
            h *= factor.min(1.0);
        }
    }
    if !all_finite(y) {
        return Err(SolverError::NonFinite(t));
    }
    Ok(stats)
}

/// Hairer's starting step (*Solving ODEs I*, §II.4, in the max norm): a step whose Euler error is about the
/// tolerance, checked against a second evaluation.
fn initial_step(
    rhs: &mut RightHandSide<'_>,
    y: &[f64],
    f0: &[f64],
    t0: f64,
    dir: f64,
    tol: Tolerance,
    stats: &mut SolverStats,
) -> f64 {
    let scale: Vec<f64> = y.iter().map(|v| tol.atol + tol.rtol * v.abs()).collect();
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(f64::abs).fold(0.0, f64::max);
    let d0 = norm(&mut y.iter().zip(&scale).map(|(a, s)| a / s));
    let d1 = norm(&mut f0.iter().zip(&scale).map(|(a, s)| a / s));
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let y1: Vec<f64> = y.iter().zip(f0).map(|(a, f)| a + dir * h0 * f).collect();
    let mut f1 = vec![0.0; y.len()];
    rhs(t0 + dir * h0, &y1, &mut f1);
    stats.evaluations += 1;
    let d2 = norm(&mut f1.iter().zip(f0).zip(&scale).map(|((a, b), s)| (a - b) / s)) / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(0.2)
    };
    let h = (100.0 * h0).min(h1);
    if h.is_finite() && h > 0.0 { h } else { 1e-6 }
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}
