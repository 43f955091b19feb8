//! Trainable parameters: one flat `f32` buffer with named, shaped slices.
//!
//! Why flat: the optimizer updates every parameter in one pass over one buffer (the peers lose
//! a millisecond a step to per-tensor Adam), a GPU executor uploads it as one storage buffer,
//! and saving a model is one serde call.

use super::graph::Shape;
use crate::rng::Rng;

/// A parameter's handle in its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ParamId(pub u32);

/// Where a parameter lives in the flat buffer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamSpec {
    /// A readable name such as `layer3.mlp.w1`.
    pub name: String,
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// Offset of the first element.
    pub offset: usize,
}

impl ParamSpec {
    /// Its shape.
    pub fn shape(&self) -> Shape {
        Shape::new(self.rows, self.cols)
    }
    /// Its element range in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.rows * self.cols
    }
}

/// All parameters of a model.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamStore {
    specs: Vec<ParamSpec>,
    values: Vec<f32>,
}

/// How to initialise a new parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Every element equal to the value.
    Constant(f32),
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))·gain` (Glorot & Bengio 2010).
    GlorotUniform {
        /// Multiplier of the bound.
        gain: f32,
    },
    /// Uniform in `±1/sqrt(fan_in)` with `fan_in` the row count (PyTorch's `nn.Linear`
    /// default for weights and biases).
    FanInUniform {
        /// Inputs of the layer the parameter belongs to.
        fan_in: usize,
    },
    /// Normal with the given standard deviation.
    Normal {
        /// Standard deviation.
        std: f32,
    },
}

/// A saved model could not be loaded into this architecture.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParamError {
    /// The file's parameters do not match the model's names or shapes.
    #[error("the saved parameters do not fit this model: {0}")]
    Mismatch(String),
    /// A value is NaN or infinite.
    #[error("the saved parameter `{0}` holds a non-finite value")]
    NonFinite(String),
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `rows × cols` parameter initialised by `init` from `rng`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        init: Init,
        rng: &mut Rng,
    ) -> ParamId {
        let offset = self.values.len();
        let n = rows * cols;
        match init {
            Init::Constant(c) => self.values.extend(std::iter::repeat_n(c, n)),
            Init::GlorotUniform { gain } => {
                let bound = gain * (6.0 / (rows + cols) as f64).sqrt() as f32;
                self.values
                    .extend((0..n).map(|_| bound * (2.0 * rng.uniform_f32() - 1.0)));
            }
            Init::FanInUniform { fan_in } => {
                let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                self.values
                    .extend((0..n).map(|_| bound * (2.0 * rng.uniform_f32() - 1.0)));
            }
            Init::Normal { std } => self.values.extend((0..n).map(|_| std * rng.normal_f32())),
        }
        let id = ParamId(self.specs.len() as u32);
        self.specs.push(ParamSpec {
            name: name.into(),
            rows,
            cols,
            offset,
        });
        id
    }

    /// Every parameter's layout.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// The layout of one parameter.
    pub fn spec(&self, id: ParamId) -> &ParamSpec {
        &self.specs[id.0 as usize]
    }

    /// The shape of one parameter.
    pub fn shape(&self, id: ParamId) -> Shape {
        self.spec(id).shape()
    }

    /// All values, flat.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// All values, flat, for the optimizer.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// One parameter's values.
    pub fn get(&self, id: ParamId) -> &[f32] {
        &self.values[self.spec(id).range()]
    }

    /// One parameter's values, mutable (data-dependent initialisation).
    pub fn get_mut(&mut self, id: ParamId) -> &mut [f32] {
        let r = self.spec(id).range();
        &mut self.values[r]
    }

    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the store has no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether every value is finite.
    pub fn all_finite(&self) -> bool {
        self.values.iter().all(|v| v.is_finite())
    }

    /// Replaces the values with a saved store's, after checking it fits (names and shapes).
    pub fn load_from(&mut self, saved: &ParamStore) -> Result<(), ParamError> {
        if saved.specs.len() != self.specs.len() {
            return Err(ParamError::Mismatch(format!(
                "{} tensors saved, {} expected",
                saved.specs.len(),
                self.specs.len()
            )));
        }
        // Why the count first: a hand-edited file can list the right tensors with too few
        // values, and every range below indexes `saved.values`.
        if saved.values.len() != self.values.len() {
            return Err(ParamError::Mismatch(format!(
                "{} values saved, {} expected",
                saved.values.len(),
                self.values.len()
            )));
        }
        for (a, b) in self.specs.iter().zip(&saved.specs) {
            if a.name != b.name || a.shape() != b.shape() || a.offset != b.offset {
                return Err(ParamError::Mismatch(format!(
                    "`{}` {}×{} expected, `{}` {}×{} found",
                    a.name, a.rows, a.cols, b.name, b.rows, b.cols
                )));
            }
            if saved.values[a.range()].iter().any(|v| !v.is_finite()) {
                return Err(ParamError::NonFinite(b.name.clone()));
            }
        }
        self.values.copy_from_slice(&saved.values);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_and_load_checks_layout() {
        let mut rng = Rng::seed_from_u64(1);
        let mut a = ParamStore::new();
        a.add("w", 3, 4, Init::GlorotUniform { gain: 1.0 }, &mut rng);
        a.add("b", 1, 4, Init::Constant(0.5), &mut rng);
        let json = serde_json::to_string(&a).unwrap();
        let back: ParamStore = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);

        let mut other = ParamStore::new();
        other.add("w", 3, 4, Init::Constant(0.0), &mut rng);
        other.add("b", 1, 4, Init::Constant(0.0), &mut rng);
        other.load_from(&a).unwrap();
        assert_eq!(other.values(), a.values());

        let mut wrong = ParamStore::new();
        wrong.add("w", 4, 3, Init::Constant(0.0), &mut rng);
        wrong.add("b", 1, 4, Init::Constant(0.0), &mut rng);
        assert!(matches!(wrong.load_from(&a), Err(ParamError::Mismatch(_))));

        // Right tensors, too few values: an error, not an out-of-range panic.
        let mut short: ParamStore = serde_json::from_str(&json).unwrap();
        short.values.truncate(5);
        assert!(matches!(
            other.load_from(&short),
            Err(ParamError::Mismatch(_))
        ));
        let mut nan = back.clone();
        nan.values[13] = f32::NAN;
        assert!(matches!(
            other.load_from(&nan),
            Err(ParamError::NonFinite(_))
        ));
    }
}
