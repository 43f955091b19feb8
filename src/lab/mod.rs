//! The application model, without egui: what the app shows and trains, and how it changes.
//!
//! - [`spec`]: the scene's settings and their one key table (URL, storage, `--scene`);
//! - [`workspace`]: the spec, its target and the runs; changes only through
//!   [`workspace::Command`]s;
//! - [`run`]: one model as the UI sees it (its trainer link, latest report, loss history);
//! - [`protocol`]: the messages between the UI and a trainer;
//! - [`backend`]: which executor (CPU or GPU) trains a model, and why; [`race`]: `auto`'s
//!   measurement of both on a real GPU;
//! - [`gpu_pictures`]: the views' heavy pictures drawn on a GPU trainer's device;
//! - [`session`]: the trainer's loop, the same in a Web Worker, a thread or the UI thread;
//! - [`host`]: the trainer link trait and the UI-thread fallback;
//! - [`status`]: the status snapshot behind the status line and the browser test hook;
//! - [`export`]: the files the app exports (model.json, PyTorch, CSVs, PNG) and opens;
//! - [`notes`]: the teaching notes on the seed article's concepts, and which go beside which view.
//!
//! Depends on `train`, `flows`, `targets`, `viz`; never on `ui`, egui or a platform.

pub mod backend;
pub mod budget;
pub mod export;
pub mod gpu_pictures;
pub mod host;
pub mod messages;
pub mod names;
pub mod notes;
pub mod probe;
pub mod protocol;
pub mod race;
pub mod run;
pub mod session;
pub mod spec;
pub mod status;
pub mod views;
pub mod workspace;

pub use host::{InlineLink, SpawnTrainer, TrainerLink, TrainingThread};
pub use run::{Run, RunId};
pub use spec::Spec;
pub use status::StatusSnapshot;
pub use workspace::{Command, Workspace};
