//! The CPU executor: replays a compiled graph over buffers allocated once.
//!
//! The plan (`engine::plan`: live nodes, their order, liveness-based buffer reuse) is shared
//! with the GPU executor; here each planned buffer becomes a `Vec<T>` and parameters are read
//! in place from the caller's flat parameter slice. A run allocates nothing.

mod kernels;

use super::graph::{Graph, GraphError, Op, Shape, Var};
use super::params::ParamStore;
use super::plan::{BufferInit, Plan, Source, Step};
use super::real::Real;

/// A graph compiled for the CPU in element type `T`.
#[derive(Clone, Debug)]
pub struct CpuProgram<T: Real> {
    steps: Vec<Step>,
    buffers: Vec<Vec<T>>,
    sources: Vec<Source>,
    shapes: Vec<Shape>,
    param_len: usize,
}

/// Reading or writing a node the program does not hold.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum ExecError {
    /// The graph itself was invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The node was not requested as an output (or is not an input) of this program.
    #[error("node {0} is not readable in this program")]
    NotAvailable(usize),
    /// A parameter node does not match the store the program is compiled against (a graph
    /// built for another model).
    #[error("parameter node {node} does not match the parameter store: {reason}")]
    ParamMismatch {
        /// The node.
        node: usize,
        /// What differs.
        reason: String,
    },
    /// Data of the wrong length.
    #[error("node {node} holds {expected} values, {given} given")]
    WrongLength {
        /// The node.
        node: usize,
        /// Its element count.
        expected: usize,
        /// What the caller gave.
        given: usize,
    },
}

impl<T: Real> CpuProgram<T> {
    /// Compiles `graph` so that `outputs` (and every input node) can be read after a run.
    pub fn compile(graph: &Graph, store: &ParamStore, outputs: &[Var]) -> Result<Self, ExecError> {
        let plan = Plan::new(graph, store, outputs)?;
        let buffers = plan
            .buffers
            .iter()
            .map(|b| match &b.init {
                BufferInit::Zeros => vec![T::ZERO; b.len],
                BufferInit::Fill(v) => vec![T::from_f64(*v as f64); b.len],
                BufferInit::Constant(values) => {
                    values.iter().map(|&v| T::from_f64(v as f64)).collect()
                }
            })
            .collect();
        Ok(Self {
            steps: plan.steps,
            buffers,
            sources: plan.sources,
            shapes: plan.shapes,
            param_len: plan.param_len,
        })
    }

    /// Runs every step with parameters `params` (the flat layout of the store compiled with).
    pub fn run(&mut self, params: &[T]) {
        self.run_nodes(params, 0..usize::MAX);
    }

    /// Runs only the steps of nodes created before `v`. Why: a reverse-KL step needs the
    /// samples `x` before it can fill the input `∇log p*(x)` (created after `x`), then
    /// `run_from(v)` finishes the pass; nothing created before `v` can depend on it.
    pub fn run_until(&mut self, params: &[T], v: Var) {
        self.run_nodes(params, 0..v.index());
    }

    /// Runs the steps of `v` and every later node (see [`Self::run_until`]).
    pub fn run_from(&mut self, params: &[T], v: Var) {
        self.run_nodes(params, v.index()..usize::MAX);
    }

    fn run_nodes(&mut self, params: &[T], nodes: std::ops::Range<usize>) {
        debug_assert_eq!(
            params.len(),
            self.param_len,
            "parameter slice of the wrong model"
        );
        for step in self
            .steps
            .iter()
            .filter(|s| nodes.contains(&(s.node as usize)))
        {
            execute_step(&mut self.buffers, &self.sources, &self.shapes, params, step);
        }
    }

    /// Runs once, timing every step; returns seconds per op kind, largest first (the
    /// profile `flowlab bench --profile` prints).
    pub fn run_profiled(&mut self, params: &[T]) -> Vec<(String, f64)> {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for step in &self.steps {
            let t = web_time::Instant::now();
            execute_step(&mut self.buffers, &self.sources, &self.shapes, params, step);
            let secs = t.elapsed().as_secs_f64();
            let name = op_label(&step.op, self.shapes[step.node as usize]);
            match totals.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 += secs,
                None => totals.push((name, secs)),
            }
        }
        totals.sort_by(|a, b| b.1.total_cmp(&a.1));
        totals
    }

    /// Copies `data` into input node `v`.
    pub fn set_input(&mut self, v: Var, data: &[T]) -> Result<(), ExecError> {
        let buf = self.input_mut(v)?;
        if buf.len() != data.len() {
            return Err(ExecError::WrongLength {
                node: v.index(),
                expected: buf.len(),
                given: data.len(),
            });
        }
        buf.copy_from_slice(data);
        Ok(())
    }

    /// The buffer of input node `v`, to fill in place.
    pub fn input_mut(&mut self, v: Var) -> Result<&mut [T], ExecError> {
        match self.sources.get(v.index()) {
            Some(Source::Buffer(b)) => Ok(&mut self.buffers[*b as usize]),
            _ => Err(ExecError::NotAvailable(v.index())),
        }
    }

    /// The value of `v` after the last run (an output, input or constant of this program).
    pub fn value(&self, v: Var) -> Result<&[T], ExecError> {
        match self.sources.get(v.index()) {
            Some(Source::Buffer(b)) => Ok(&self.buffers[*b as usize]),
            _ => Err(ExecError::NotAvailable(v.index())),
        }
    }

    /// The first element of `v` (a scalar output such as the loss).
    pub fn scalar(&self, v: Var) -> Result<T, ExecError> {
        self.value(v)?
            .first()
            .copied()
            .ok_or(ExecError::NotAvailable(v.index()))
    }

    /// Number of steps executed per run (after dead-code elimination).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Bytes held in buffers.
    pub fn buffer_bytes(&self) -> usize {
        self.buffers.iter().map(|b| b.len()).sum::<usize>() * std::mem::size_of::<T>()
    }
}

/// Runs one step: its output buffer is taken out while the kernel reads the others (an output
/// never shares a buffer with its own inputs), then put back. Allocates nothing.
fn execute_step<T: Real>(
    buffers: &mut [Vec<T>],
    sources: &[Source],
    shapes: &[Shape],
    params: &[T],
    step: &Step,
) {
    let mut out = std::mem::take(&mut buffers[step.out as usize]);
    let env = kernels::Env {
        buffers,
        sources,
        shapes,
        params,
    };
    kernels::execute_dispatch(&env, &step.op, shapes[step.node as usize], &mut out);
    buffers[step.out as usize] = out;
}

/// A profile label: the op's kind and its output shape.
fn op_label(op: &Op, shape: Shape) -> String {
    let kind = match op {
        Op::Unary(f, _) => format!("{f:?}"),
        Op::Binary(f, _, _) => format!("{f:?}"),
        Op::MatMul {
            trans_a, trans_b, ..
        } => format!("MatMul(tA={trans_a}, tB={trans_b})"),
        Op::Sum(axis, _) => format!("Sum({axis:?})"),
        other => format!("{other:?}")
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or("?")
            .to_string(),
    };
    format!("{kind} {}x{}", shape.rows, shape.cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Axis, Graph};

    #[test]
    fn only_kept_values_can_be_read() {
        let mut g = Graph::new();
        let x = g.input(4, 3);
        let t = g.tanh(x);
        let s = g.square(t);
        let total = g.sum(Axis::All, s);
        let mut program =
            CpuProgram::<f32>::compile(&g, &ParamStore::new(), &[total]).expect("compiles");
        program.set_input(x, &[0.5; 12]).expect("input");
        program.run(&[]);
        let expected = 12.0 * 0.5f32.tanh().powi(2);
        let got = program.scalar(total).expect("an output");
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        assert_eq!(program.value(x).map(<[f32]>::len), Ok(12));
        // `t` and `s` were intermediate: their buffers may hold other nodes' values by now.
        assert_eq!(program.value(t), Err(ExecError::NotAvailable(t.index())));
        assert_eq!(program.value(s), Err(ExecError::NotAvailable(s.index())));
    }

    #[test]
    fn a_graph_of_another_model_is_refused_at_compile() {
        let mut rng = crate::rng::Rng::seed_from_u64(0);
        let mut store = ParamStore::new();
        let w = store.add("w", 3, 2, crate::engine::Init::Constant(1.0), &mut rng);
        let mut g = Graph::new();
        let x = g.input(4, 3);
        let wv = g.param(w, store.shape(w));
        let y = g.matmul(x, wv);
        let mut other = ParamStore::new();
        other.add("w", 2, 3, crate::engine::Init::Constant(1.0), &mut rng);
        let err = CpuProgram::<f32>::compile(&g, &other, &[y]).err();
        assert!(
            matches!(err, Some(ExecError::ParamMismatch { .. })),
            "{err:?}"
        );
        let err = CpuProgram::<f32>::compile(&g, &ParamStore::new(), &[y]).err();
        assert!(
            matches!(err, Some(ExecError::ParamMismatch { .. })),
            "{err:?}"
        );
    }
}
