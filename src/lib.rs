//! flowlab: normalizing flows, trained live in the browser.
//!
//! Layers, each depending only on those below it (see ARCHITECTURE.md):
//! `ui` → `lab` → `train` → `flows` / `targets` → `engine` → `rng`, with `viz` (pictures of
//! densities and samples) beside `lab` for the app and the CLI. Platform code (`web`,
//! `native`) is chosen in one place, [`platform`]; nothing else needs a `cfg`.

pub mod engine;
pub mod flows;
pub mod i18n;
pub mod rng;
pub mod targets;
pub mod train;
pub mod viz;

pub mod app;
pub mod lab;
pub mod platform;
pub mod ui;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;
