//! The training engine: batched dense matrices, a static computation graph with reverse-mode
//! autodiff, a CPU executor and optimizers.
//!
//! Depends on nothing else in flowlab but `rng`. A model is a [`Graph`] built once per
//! architecture and batch size over parameters in a [`ParamStore`]; `Graph::grad` appends its
//! backward pass as more nodes; an executor ([`CpuProgram`], or [`gpu::GpuProgram`] in WGSL)
//! compiles the graph and replays it each step; [`Adam`] updates the flat parameter buffer in one pass.

pub mod autodiff;
pub mod cpu;
pub mod gemm;
pub mod gpu;
pub mod graph;
pub mod optim;
pub mod params;
mod plan;
pub mod real;
pub mod trainable;

pub use cpu::{CpuProgram, ExecError};
pub use graph::{Axis, Binary, Graph, GraphError, Op, Shape, Unary, Var};
pub use optim::{Adam, AdamConfig, LrSchedule, UpdateScalars};
pub use params::{Init, ParamError, ParamId, ParamStore};
pub use real::Real;
pub use trainable::GradientProgram;
