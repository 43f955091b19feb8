//! A loss with its gradient, compiled: the unit a trainer steps.

use super::cpu::{CpuProgram, ExecError};
use super::graph::{Graph, Var};
use super::params::ParamStore;
use super::real::Real;

/// A compiled graph computing a scalar loss and its gradient with respect to every parameter,
/// gathered into one flat buffer with the parameter store's layout.
#[derive(Clone, Debug)]
pub struct GradientProgram<T: Real> {
    program: CpuProgram<T>,
    loss: Var,
    grads: Vec<(usize, Var)>,
    grad_flat: Vec<T>,
}

impl<T: Real> GradientProgram<T> {
    /// Differentiates `loss` (a `1×1` node of `graph`) with respect to every parameter the graph
    /// uses and compiles the result; `extra_outputs` stay readable after each run.
    pub fn new(
        mut graph: Graph,
        loss: Var,
        store: &ParamStore,
        extra_outputs: &[Var],
    ) -> Result<Self, ExecError> {
        let params = graph.param_nodes().to_vec();
        let vars: Vec<Var> = params.iter().map(|&(_, v)| v).collect();
        let grad_vars = graph.grad(loss, &vars);
        let mut outputs = vec![loss];
        outputs.extend(&grad_vars);
        outputs.extend(extra_outputs);
        let program = CpuProgram::compile(&graph, store, &outputs)?;
        let grads = params
            .iter()
            .zip(grad_vars)
            .map(|(&(id, _), g)| (store.spec(id).offset, g))
            .collect();
        Ok(Self {
            program,
            loss,
            grads,
            grad_flat: vec![T::ZERO; store.len()],
        })
    }

    /// The underlying program (to fill inputs and read extra outputs).
    pub fn program(&self) -> &CpuProgram<T> {
        &self.program
    }

    /// The underlying program, mutable (to fill inputs).
    pub fn program_mut(&mut self) -> &mut CpuProgram<T> {
        &mut self.program
    }

    /// Runs forward and backward; returns the loss and leaves the gradient in `grads()`.
    pub fn run(&mut self, params: &[T]) -> T {
        self.program.run(params);
        self.finish()
    }

    /// Runs the nodes created before `v` (see [`CpuProgram::run_until`]).
    pub fn run_until(&mut self, params: &[T], v: Var) {
        self.program.run_until(params, v);
    }

    /// Runs `v` and every later node, then gathers the gradient; returns the loss.
    pub fn run_from(&mut self, params: &[T], v: Var) -> T {
        self.program.run_from(params, v);
        self.finish()
    }

    fn finish(&mut self) -> T {
        for &(offset, g) in &self.grads {
            if let Ok(values) = self.program.value(g) {
                self.grad_flat[offset..offset + values.len()].copy_from_slice(values);
            }
        }
        self.program.scalar(self.loss).unwrap_or(T::ZERO)
    }

    /// The gradient from the last run, in the parameter store's layout.
    pub fn grads(&self) -> &[T] {
        &self.grad_flat
    }

    /// The gradient, mutable (the optimizer clips it in place).
    pub fn grads_mut(&mut self) -> &mut [T] {
        &mut self.grad_flat
    }
}
