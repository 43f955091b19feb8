//! A Gaussian mixture the user edits with the mouse: add, move, resize, reweight, remove, and a
//! hit test that finds the component under the pointer. Exact sampling and exact density:
//!
//! `p(x) = Σ_k π_k N(x; μ_k, diag(σ_k²))`, `π_k = w_k / Σ_j w_j`.
//!
//! Every edit validates its input and returns a [`TargetError`] instead of storing a NaN, a
//! non-positive width or weight, or removing the last component.

use super::special::{LN_2PI, LogSumExp};
use super::{DensityKind, Target, TargetError, ViewRect};
use crate::rng::Rng;

/// Most components a mixture may hold.
pub const MAX_COMPONENTS: usize = 64;
/// Smallest and largest standard deviation accepted.
pub const STD_RANGE: (f64, f64) = (1e-3, 100.0);
/// Largest `|coordinate|` of a mean.
pub const MAX_ABS_MEAN: f64 = 1e4;

/// One Gaussian component with a diagonal covariance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Component {
    /// Mean `μ`.
    pub mean: [f64; 2],
    /// Standard deviations `(σ_x, σ_y)`; equal for an isotropic component.
    pub std: [f64; 2],
    /// Unnormalised weight `w > 0`.
    pub weight: f64,
}

impl Component {
    /// An isotropic component `N(mean, std² I)` with weight `weight`.
    pub fn isotropic(mean: [f64; 2], std: f64, weight: f64) -> Self {
        Self {
            mean,
            std: [std, std],
            weight,
        }
    }

    fn validate(&self) -> Result<(), TargetError> {
        check_mean(self.mean)?;
        check_std(self.std)?;
        check_weight(self.weight)
    }
}

fn check_mean(mean: [f64; 2]) -> Result<(), TargetError> {
    if mean
        .iter()
        .all(|m| m.is_finite() && m.abs() <= MAX_ABS_MEAN)
    {
        Ok(())
    } else {
        Err(TargetError::InvalidParameter {
            what: "component mean",
            reason: format!("{mean:?} must be finite with |coordinates| ≤ {MAX_ABS_MEAN}"),
        })
    }
}

fn check_std(std: [f64; 2]) -> Result<(), TargetError> {
    if std.iter().all(|s| (STD_RANGE.0..=STD_RANGE.1).contains(s)) {
        Ok(())
    } else {
        Err(TargetError::InvalidParameter {
            what: "component width",
            reason: format!(
                "{std:?} must lie between {} and {}",
                STD_RANGE.0, STD_RANGE.1
            ),
        })
    }
}

fn check_weight(weight: f64) -> Result<(), TargetError> {
    if weight.is_finite() && weight > 0.0 && weight <= 1e6 {
        Ok(())
    } else {
        Err(TargetError::InvalidParameter {
            what: "component weight",
            reason: format!("{weight} must be positive and at most 1e6"),
        })
    }
}

/// An editable Gaussian mixture (never empty).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mixture {
    components: Vec<Component>,
}

impl Default for Mixture {
    /// Three components on a triangle: the starting point of the editor.
    fn default() -> Self {
        Self {
            components: vec![
                Component::isotropic([-1.5, -1.0], 0.5, 1.0),
                Component::isotropic([1.5, -1.0], 0.5, 1.0),
                Component {
                    mean: [0.0, 1.6],
                    std: [0.9, 0.35],
                    weight: 1.5,
                },
            ],
        }
    }
}

impl Mixture {
    /// A mixture of `components` (1 to [`MAX_COMPONENTS`], each valid).
    pub fn new(components: Vec<Component>) -> Result<Self, TargetError> {
        if components.is_empty() || components.len() > MAX_COMPONENTS {
            return Err(TargetError::InvalidParameter {
                what: "mixture",
                reason: format!(
                    "it needs 1 to {MAX_COMPONENTS} components, not {}",
                    components.len()
                ),
            });
        }
        for c in &components {
            c.validate()?;
        }
        Ok(Self { components })
    }

    /// A mixture from components known to be valid (built-in constants).
    pub(crate) fn from_valid(components: Vec<Component>) -> Self {
        debug_assert!(
            Self::new(components.clone()).is_ok(),
            "built-in mixture components must be valid"
        );
        Self { components }
    }

    /// The components, in order.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The normalised weight `π_k` of component `index` (0 if out of range).
    pub fn probability(&self, index: usize) -> f64 {
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        self.components.get(index).map_or(0.0, |c| c.weight / total)
    }

    /// Appends a component; returns its index.
    pub fn add(&mut self, component: Component) -> Result<usize, TargetError> {
        component.validate()?;
        if self.components.len() >= MAX_COMPONENTS {
            return Err(TargetError::InvalidParameter {
                what: "mixture",
                reason: format!("it already has the maximum of {MAX_COMPONENTS} components"),
            });
        }
        self.components.push(component);
        Ok(self.components.len() - 1)
    }

    /// Moves component `index` to `mean`.
    pub fn move_to(&mut self, index: usize, mean: [f64; 2]) -> Result<(), TargetError> {
        check_mean(mean)?;
        self.component_mut(index)?.mean = mean;
        Ok(())
    }

    /// Sets the standard deviations of component `index` (`[s, s]` for isotropic).
    pub fn resize(&mut self, index: usize, std: [f64; 2]) -> Result<(), TargetError> {
        check_std(std)?;
        self.component_mut(index)?.std = std;
        Ok(())
    }

    /// Sets the unnormalised weight of component `index`.
    pub fn reweight(&mut self, index: usize, weight: f64) -> Result<(), TargetError> {
        check_weight(weight)?;
        self.component_mut(index)?.weight = weight;
        Ok(())
    }

    /// Removes component `index` and returns it; the last component cannot be removed.
    pub fn remove(&mut self, index: usize) -> Result<Component, TargetError> {
        if self.components.len() <= 1 {
            return Err(TargetError::InvalidParameter {
                what: "removal",
                reason: "a mixture keeps at least one component".to_owned(),
            });
        }
        self.component_mut(index)?;
        Ok(self.components.remove(index))
    }

    /// The component whose centre is nearest to `x` in the metric of its own widths
    /// (`√Σ((x − μ)/σ)²`), if that distance is at most `max_sigmas` or the Euclidean distance is at
    /// most `pick_radius` (so small components stay clickable).
    pub fn nearest(&self, x: [f64; 2], max_sigmas: f64, pick_radius: f64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (k, c) in self.components.iter().enumerate() {
            let d = [x[0] - c.mean[0], x[1] - c.mean[1]];
            let scaled = ((d[0] / c.std[0]).powi(2) + (d[1] / c.std[1]).powi(2)).sqrt();
            let euclid = (d[0] * d[0] + d[1] * d[1]).sqrt();
            if scaled <= max_sigmas || euclid <= pick_radius {
                let score = scaled.min(euclid / pick_radius.max(1e-12) * max_sigmas);
                if best.is_none_or(|(_, s)| score < s) {
                    best = Some((k, score));
                }
            }
        }
        best.map(|(k, _)| k)
    }

    fn component_mut(&mut self, index: usize) -> Result<&mut Component, TargetError> {
        let len = self.components.len();
        self.components
            .get_mut(index)
            .ok_or_else(|| TargetError::InvalidParameter {
                what: "component index",
                reason: format!("{index} is out of range for {len} components"),
            })
    }
}

impl Target for Mixture {
    fn name(&self) -> &str {
        "mixture"
    }

    fn description(&self) -> &str {
        // Why: the catalog holds the one copy of each sentence.
        super::registry::description_of(self.name())
    }

    fn view(&self) -> ViewRect {
        ViewRect::square(4.0)
    }

    fn sample_into(&self, rng: &mut Rng, out: &mut [[f32; 2]]) {
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        for p in out {
            let mut u = rng.uniform_f64() * total;
            let mut chosen = self.components.last();
            for c in &self.components {
                if u < c.weight {
                    chosen = Some(c);
                    break;
                }
                u -= c.weight;
            }
            if let Some(c) = chosen {
                let x = c.mean[0] + c.std[0] * rng.normal_f64();
                let y = c.mean[1] + c.std[1] * rng.normal_f64();
                *p = [x as f32, y as f32];
            }
        }
    }

    fn log_density(&self, x: [f64; 2]) -> f64 {
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        let mut acc = LogSumExp::default();
        for c in &self.components {
            let z = [(x[0] - c.mean[0]) / c.std[0], (x[1] - c.mean[1]) / c.std[1]];
            acc.add(
                libm::log(c.weight / total)
                    - LN_2PI
                    - libm::log(c.std[0] * c.std[1])
                    - 0.5 * (z[0] * z[0] + z[1] * z[1]),
            );
        }
        acc.value()
    }

    fn log_normalizer(&self) -> f64 {
        0.0
    }

    fn density_kind(&self) -> DensityKind {
        DensityKind::Exact
    }

    fn has_smooth_log_density(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_validate_and_hit_test_finds_the_component() {
        let mut m = Mixture::default();
        assert!(m.move_to(0, [f64::NAN, 0.0]).is_err());
        assert!(m.resize(1, [0.0, 1.0]).is_err());
        assert!(m.reweight(2, -1.0).is_err());
        assert!(m.reweight(9, 1.0).is_err());
        let k = m.add(Component::isotropic([3.0, 3.0], 0.2, 2.0)).unwrap();
        assert_eq!(m.nearest([3.1, 2.9], 2.0, 0.1), Some(k));
        assert_eq!(m.nearest([10.0, 10.0], 2.0, 0.1), None);
        m.move_to(k, [-3.0, 3.0]).unwrap();
        assert_eq!(m.nearest([-3.0, 3.05], 2.0, 0.1), Some(k));
        for _ in 0..3 {
            m.remove(0).unwrap();
        }
        assert!(m.remove(0).is_err(), "the last component stays");
        assert_eq!(m.components().len(), 1);
    }
}
