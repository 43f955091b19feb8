//! Training: objectives, the trainer loop with its divergence guard, and metrics.
//!
//! Depends on `flows`, `targets`, `engine` and `rng`; the app and the CLI drive it.

pub mod bench;
pub mod objective;
pub mod trainer;

pub use objective::{InputKind, ObjectiveGraph, ObjectiveKind};
pub use trainer::{StepOutcome, TrainConfig, TrainError, Trainer};
