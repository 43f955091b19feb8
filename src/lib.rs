//! flowlab: normalizing flows, trained live in the browser.
//!
//! Layers, each depending only on those below it (see ARCHITECTURE.md):
//! `ui`/`cli` → `train` → `flows` / `targets` → `engine` → `rng`.

pub mod engine;
pub mod flows;
pub mod rng;
pub mod targets;
pub mod train;
pub mod viz;

pub mod app;
pub mod ui;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

#[cfg(target_arch = "wasm32")]
mod web;
