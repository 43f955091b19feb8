//! The start of Glow's invertible linear map: a random rotation and its LU decomposition
//! with partial pivoting, `A = P·L·U`, as the layer's constant and parameter values.

use crate::rng::Rng;

/// A `D×D` rotation (or reflection), row-major: Gram–Schmidt on a Gaussian matrix.
pub(super) fn random_rotation(dim: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q = vec![0.0f64; dim * dim];
    for i in 0..dim {
        // Row i: a Gaussian vector, orthogonalised against rows 0..i (redrawn if degenerate).
        loop {
            let mut v: Vec<f64> = (0..dim).map(|_| rng.normal_f64()).collect();
            for r in 0..i {
                let row = &q[r * dim..(r + 1) * dim];
                let dot: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(row).for_each(|(x, a)| *x -= dot * a);
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 1e-3 {
                q[i * dim..(i + 1) * dim]
                    .iter_mut()
                    .zip(&v)
                    .for_each(|(d, x)| *d = x / norm);
                break;
            }
        }
    }
    q
}

/// `A = P·L·U` by Gaussian elimination with partial pivoting, as `f32` parameter values.
pub(super) struct LuFactors {
    /// `P`, row-major `D×D`.
    pub(super) permutation: Vec<f32>,
    /// `L` below its unit diagonal, zeros elsewhere.
    pub(super) lower: Vec<f32>,
    /// `U` above its diagonal, zeros elsewhere.
    pub(super) upper: Vec<f32>,
    /// Signs of `U`'s diagonal.
    pub(super) signs: Vec<f32>,
    /// `log|U_jj|`.
    pub(super) log_scale: Vec<f32>,
}

impl LuFactors {
    /// Factors a non-singular `D×D` matrix (row-major).
    pub(super) fn of(a: &[f64]) -> Self {
        let d = (a.len() as f64).sqrt() as usize;
        let mut m = a.to_vec();
        let mut rows: Vec<usize> = (0..d).collect(); // row k of `m` is row rows[k] of `a`
        for k in 0..d {
            let pivot = (k..d)
                .max_by(|&i, &j| m[i * d + k].abs().total_cmp(&m[j * d + k].abs()))
                .unwrap_or(k);
            if pivot != k {
                for j in 0..d {
                    m.swap(k * d + j, pivot * d + j);
                }
                rows.swap(k, pivot);
            }
            let p = m[k * d + k];
            for i in k + 1..d {
                let factor = if p == 0.0 { 0.0 } else { m[i * d + k] / p };
                m[i * d + k] = factor;
                for j in k + 1..d {
                    m[i * d + j] -= factor * m[k * d + j];
                }
            }
        }
        // (Pᵣ·A = L·U with (Pᵣ)_{k, rows[k]} = 1, so A = Pᵣᵀ·L·U: P_{rows[k], k} = 1.)
        let mut permutation = vec![0.0f32; d * d];
        for (k, &r) in rows.iter().enumerate() {
            permutation[r * d + k] = 1.0;
        }
        let pick = |keep: fn(usize, usize) -> bool| -> Vec<f32> {
            (0..d * d)
                .map(|i| if keep(i / d, i % d) { m[i] as f32 } else { 0.0 })
                .collect()
        };
        let diagonal: Vec<f64> = (0..d).map(|k| m[k * d + k]).collect();
        Self {
            permutation,
            lower: pick(|i, j| i > j),
            upper: pick(|i, j| i < j),
            signs: diagonal
                .iter()
                .map(|&s| if s < 0.0 { -1.0 } else { 1.0 })
                .collect(),
            log_scale: diagonal
                .iter()
                .map(|&s| s.abs().max(1e-6).ln() as f32)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_factors_multiply_back_to_the_rotation() {
        for dim in [1, 2, 3, 5] {
            let q = random_rotation(dim, &mut Rng::seed_from_u64(dim as u64));
            let lu = LuFactors::of(&q);
            let at = |m: &[f32], i: usize, j: usize| m[i * dim + j] as f64;
            let l = |i: usize, j: usize| if i == j { 1.0 } else { at(&lu.lower, i, j) };
            let u = |i: usize, j: usize| {
                let s = lu.signs[i] as f64 * (lu.log_scale[i] as f64).exp();
                if i == j { s } else { at(&lu.upper, i, j) }
            };
            for i in 0..dim {
                for j in 0..dim {
                    let w: f64 = (0..dim)
                        .flat_map(|a| (0..dim).map(move |b| (a, b)))
                        .map(|(a, b)| at(&lu.permutation, i, a) * l(a, b) * u(b, j))
                        .sum();
                    assert!((w - q[i * dim + j]).abs() < 1e-5, "D={dim} ({i},{j})");
                }
            }
            let log_det: f32 = lu.log_scale.iter().sum();
            assert!(
                log_det.abs() < 1e-5,
                "a rotation's log|det| is 0, got {log_det}"
            );
        }
    }
}
