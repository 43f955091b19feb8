//! The CPU executor: replays a compiled graph over buffers allocated once.
//!
//! Compilation keeps only nodes that reach a requested output, then assigns each node a
//! buffer, reusing a dead node's buffer of the same size (liveness by last use), so a long
//! unrolled graph (a CNF solver) needs memory for what is alive, not for every node. Inputs,
//! constants and requested outputs keep their own buffers; parameters are read in place from
//! the caller's flat parameter slice. A run allocates nothing.

mod kernels;

use super::graph::{Graph, GraphError, Op, Shape, Var};
use super::params::ParamStore;
use super::real::Real;

/// Where a node's value lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Not needed for the requested outputs.
    Dead,
    /// A buffer of the program that keeps this node's value after a run (outputs, inputs,
    /// constants).
    Buffer(u32),
    /// A buffer this node shares with later nodes: its value is gone after the run, so
    /// [`CpuProgram::value`] refuses it instead of returning another node's numbers.
    Transient(u32),
    /// A range of the flat parameter slice.
    Param { offset: u32 },
}

#[derive(Clone, Debug)]
struct Step {
    node: u32,
    op: Op,
    out: u32,
}

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
#[derive(Debug, thiserror::Error, PartialEq)]
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
        graph.check()?;
        let nodes = graph.nodes();
        let n = nodes.len();
        let mut live = vec![false; n];
        for &o in outputs {
            live[o.index()] = true;
        }
        for i in (0..n).rev() {
            if live[i] {
                for x in nodes[i].op.inputs() {
                    live[x.index()] = true;
                }
            }
        }
        let mut pinned = vec![false; n];
        for &o in outputs {
            pinned[o.index()] = true;
        }
        let mut last_use = vec![0usize; n];
        for (i, node) in nodes.iter().enumerate().filter(|(i, _)| live[*i]) {
            for x in node.op.inputs() {
                last_use[x.index()] = i;
            }
        }

        let mut buffers: Vec<Vec<T>> = Vec::new();
        let mut sources = vec![Source::Dead; n];
        let mut free: Vec<u32> = Vec::new();
        let mut steps = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let len = node.shape.len();
            match &node.op {
                Op::Param(id) => {
                    let mismatch = |reason: String| ExecError::ParamMismatch { node: i, reason };
                    let spec = store
                        .specs()
                        .get(id.0 as usize)
                        .ok_or_else(|| mismatch(format!("no parameter #{}", id.0)))?;
                    if spec.shape() != node.shape {
                        return Err(mismatch(format!(
                            "`{}` is {}×{}, the graph uses {}×{}",
                            spec.name, spec.rows, spec.cols, node.shape.rows, node.shape.cols
                        )));
                    }
                    sources[i] = Source::Param {
                        offset: spec.offset as u32,
                    };
                    continue;
                }
                Op::Input => {
                    buffers.push(vec![T::ZERO; len]);
                    sources[i] = Source::Buffer(buffers.len() as u32 - 1);
                    continue;
                }
                Op::Fill(v) => {
                    buffers.push(vec![T::from_f64(*v as f64); len]);
                    sources[i] = Source::Buffer(buffers.len() as u32 - 1);
                    continue;
                }
                Op::Constant(values) => {
                    buffers.push(values.iter().map(|&v| T::from_f64(v as f64)).collect());
                    sources[i] = Source::Buffer(buffers.len() as u32 - 1);
                    continue;
                }
                _ => {}
            }
            let reusable = if pinned[i] {
                None
            } else {
                free.iter().position(|&b| buffers[b as usize].len() == len)
            };
            let out = match reusable {
                Some(k) => free.swap_remove(k),
                None => {
                    buffers.push(vec![T::ZERO; len]);
                    buffers.len() as u32 - 1
                }
            };
            sources[i] = if pinned[i] {
                Source::Buffer(out)
            } else {
                Source::Transient(out)
            };
            steps.push(Step {
                node: i as u32,
                op: node.op.clone(),
                out,
            });
            // Inputs whose last reader is this node give their buffer back.
            for x in node.op.inputs() {
                let xi = x.index();
                let transient = !pinned[xi]
                    && !matches!(
                        nodes[xi].op,
                        Op::Input | Op::Fill(_) | Op::Constant(_) | Op::Param(_)
                    );
                if transient
                    && last_use[xi] == i
                    && let Source::Transient(b) = sources[xi]
                    && !free.contains(&b)
                {
                    free.push(b);
                }
            }
        }
        Ok(Self {
            steps,
            buffers,
            sources,
            shapes: nodes.iter().map(|n| n.shape).collect(),
            param_len: store.len(),
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
