//! Training: objectives, the trainer loop with its divergence guard, and metrics.
//!
//! Depends on `flows`, `targets`, `engine` and `rng`; the app and the CLI drive it.

pub mod bench;
pub mod metrics;
pub mod objective;
pub mod trainer;

pub use metrics::{HeldOut, HeldOutScore};
pub use objective::{InputKind, NotApplicable, ObjectiveGraph, ObjectiveKind};
pub use trainer::{
    MAX_STEPS_AHEAD, Rollback, RollbackReason, StepOutcome, TrainConfig, TrainError, Trainer,
};
