//! The numerics: engine, flows, targets and trainer, in one test binary (one link of the crate
//! and its dependencies instead of one per file). Filter by module, e.g.
//! `cargo test --test numerics flow_cnf::`.

mod common;

mod divergence;
mod engine_grad;
mod engine_train;
mod fit_mle;
mod fit_reverse_kl;
mod fit_speed;
mod flow_autoregressive;
mod flow_cnf;
mod flow_glow;
mod flow_inspect;
mod flow_planar;
mod flow_realnvp;
mod flow_spline;
mod flows;
mod gpu;
mod targets;
mod trainer;
