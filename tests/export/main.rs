//! `flowlab export` and `flowlab eval`: the PyTorch script against flowlab's own densities
//! (`parity`, needs Python with torch) and the commands' answers to bad input (`cli`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Why: tests; a failure should panic with its message.

mod cli;
mod parity;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `flowlab` binary with `args`.
pub fn flowlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowlab"))
        .args(args)
        .output()
        .expect("flowlab runs")
}

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flowlab-export-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// `path` as `&str`.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}
