//! The executor-independent half of compiling a graph: which nodes run, in what order, and
//! which buffer holds each value. The CPU executor turns the plan's buffers into `Vec`s, the
//! GPU executor into offsets of one storage buffer, so both replay the same op list with the
//! same liveness-based reuse.
//!
//! Compilation keeps only nodes that reach a requested output, then assigns each node a
//! buffer, reusing a dead node's buffer of the same size (liveness by last use), so a long
//! unrolled graph (a CNF solver) needs memory for what is alive, not for every node. Inputs,
//! constants and requested outputs keep their own buffers; parameters are read in place from
//! the caller's flat parameter layout.

use std::sync::Arc;

use super::cpu::ExecError;
use super::graph::{Graph, Op, Shape};
use super::params::ParamStore;

/// Where a node's value lives during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Not needed for the requested outputs.
    Dead,
    /// A buffer of the program that keeps this node's value after a run (outputs, inputs,
    /// constants).
    Buffer(u32),
    /// A buffer this node shares with later nodes: its value is gone after the run, so an
    /// executor refuses to read it instead of returning another node's numbers.
    Transient(u32),
    /// A range of the flat parameter layout.
    Param {
        /// First element.
        offset: u32,
    },
}

impl Source {
    /// The buffer behind the value, if it has one.
    pub(crate) fn buffer(self) -> Option<u32> {
        match self {
            Source::Buffer(b) | Source::Transient(b) => Some(b),
            Source::Dead | Source::Param { .. } => None,
        }
    }
}

/// What a buffer holds before the first run.
#[derive(Clone, Debug)]
pub(crate) enum BufferInit {
    /// Zeros (a node's output, an input the caller fills).
    Zeros,
    /// One value throughout.
    Fill(f32),
    /// Row-major values.
    Constant(Arc<Vec<f32>>),
}

/// One buffer of the plan.
#[derive(Clone, Debug)]
pub(crate) struct BufferPlan {
    /// Elements.
    pub len: usize,
    /// Its initial content.
    pub init: BufferInit,
}

/// One executed node: its op, and the buffer it writes.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The node index.
    pub node: u32,
    /// What computes it.
    pub op: Op,
    /// The buffer of its output (never one of its inputs' buffers).
    pub out: u32,
}

/// A run order other than node order (see [`Plan::ordered`]).
#[derive(Clone, Debug)]
pub(crate) struct Order {
    /// Every node once, each after its operands.
    pub nodes: Vec<u32>,
    /// Per position in `nodes`: the last position at which that node's operands must still
    /// hold their values (its own, unless another reader may not overwrite them sooner).
    pub keep: Vec<u32>,
    /// Reuse a buffer only for a value of the shape it was planned for, not merely of its
    /// length. Why: the GPU chains ops over the same rows, and a `2×64` value overwriting a
    /// `64×2` one must wait for every row of it.
    pub match_shapes: bool,
}

/// A compiled graph, before any executor allocates memory for it.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub buffers: Vec<BufferPlan>,
    pub sources: Vec<Source>,
    pub shapes: Vec<Shape>,
    pub param_len: usize,
}

impl Plan {
    /// Plans `graph` so that `outputs` (and every input node) can be read after a run.
    pub(crate) fn new(
        graph: &Graph,
        store: &ParamStore,
        outputs: &[super::graph::Var],
    ) -> Result<Self, ExecError> {
        Self::ordered(graph, store, outputs, None)
    }

    /// [`Self::new`], running the nodes in `order` instead of node order: the steps follow
    /// it, and a buffer is reused only after the position its last reader keeps it to.
    pub(crate) fn ordered(
        graph: &Graph,
        store: &ParamStore,
        outputs: &[super::graph::Var],
        order: Option<&Order>,
    ) -> Result<Self, ExecError> {
        graph.check()?;
        let nodes = graph.nodes();
        let n = nodes.len();
        let natural: Vec<u32>;
        let given = order;
        let (order, keep) = match order {
            Some(order) if order.nodes.len() == n && order.keep.len() == n => {
                (&order.nodes[..], Some(&order.keep[..]))
            }
            _ => {
                natural = (0..n as u32).collect();
                (&natural[..], None)
            }
        };
        let keep =
            |position: usize| keep.map_or(position, |k| (k[position] as usize).max(position));
        let match_shapes = given.is_some_and(|o| o.match_shapes);
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
        // Where each value's buffer is given back: after the position its last reader keeps
        // it to, in the order that reader lists its operands.
        let mut last_use = vec![0usize; n];
        for (position, &i) in order.iter().enumerate() {
            if live[i as usize] {
                for x in nodes[i as usize].op.inputs() {
                    last_use[x.index()] = last_use[x.index()].max(keep(position));
                }
            }
        }
        let mut release: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (position, &i) in order.iter().enumerate() {
            if live[i as usize] {
                for x in nodes[i as usize].op.inputs() {
                    if last_use[x.index()] == keep(position) {
                        release[keep(position)].push(x.index());
                    }
                }
            }
        }

        let mut buffers: Vec<BufferPlan> = Vec::new();
        let own = |buffers: &mut Vec<BufferPlan>, len, init| {
            buffers.push(BufferPlan { len, init });
            Source::Buffer(buffers.len() as u32 - 1)
        };
        let mut sources = vec![Source::Dead; n];
        let mut free: Vec<u32> = Vec::new();
        // The shape each buffer was first planned for (sources' buffers are never reused).
        let mut buffer_shapes: Vec<super::graph::Shape> = Vec::new();
        let mut steps = Vec::new();
        for (position, &i) in order.iter().enumerate() {
            // Values whose buffers were kept to the previous position give them back.
            for &xi in position.checked_sub(1).map_or(&[][..], |p| &release[p][..]) {
                let transient = !pinned[xi]
                    && !matches!(
                        nodes[xi].op,
                        Op::Input | Op::Fill(_) | Op::Constant(_) | Op::Param(_)
                    );
                if transient
                    && let Source::Transient(b) = sources[xi]
                    && !free.contains(&b)
                {
                    free.push(b);
                }
            }
            let (i, node) = (i as usize, &nodes[i as usize]);
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
                    sources[i] = own(&mut buffers, len, BufferInit::Zeros);
                    continue;
                }
                Op::Fill(v) => {
                    sources[i] = own(&mut buffers, len, BufferInit::Fill(*v));
                    continue;
                }
                Op::Constant(values) => {
                    sources[i] = own(&mut buffers, len, BufferInit::Constant(values.clone()));
                    continue;
                }
                _ => {}
            }
            let reusable = if pinned[i] {
                None
            } else {
                free.iter().position(|&b| {
                    buffers[b as usize].len == len
                        && (!match_shapes || buffer_shapes[b as usize] == node.shape)
                })
            };
            let out = match reusable {
                Some(k) => free.swap_remove(k),
                None => {
                    buffers.push(BufferPlan {
                        len,
                        init: BufferInit::Zeros,
                    });
                    buffers.len() as u32 - 1
                }
            };
            if buffer_shapes.len() < buffers.len() {
                buffer_shapes.resize(buffers.len(), node.shape);
            }
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
        }
        Ok(Self {
            steps,
            buffers,
            sources,
            shapes: nodes.iter().map(|n| n.shape).collect(),
            param_len: store.len(),
        })
    }
}
