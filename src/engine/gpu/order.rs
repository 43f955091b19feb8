//! The order in which the GPU executor plans a graph: nodes grouped by the number of
//! batch-wide synchronisations before them, so that [`super::fuse`] finds long row chains.
//!
//! Most ops are row-local: row `r` of the output needs only row `r` of each operand (element-
//! wise ops, column views, row-wise ops, `x·W` with `W` read whole). A training step's only
//! true synchronisations are the ops that read across rows: reductions over the batch (the
//! loss, bias gradients), weight gradients `Hᵀ·G`, and anything reading a value computed
//! across rows (a 1-row tensor broadcast over the batch). A node's *phase* counts those on its
//! longest path from the inputs; every row-local node of one phase can run in the same threads
//! (a row per thread group), so the phases bound the launches.
//!
//! In node order the backward interleaves each layer's weight gradient with the next layer's
//! row-local backward, and buffer reuse then makes the next layer overwrite what the weight
//! gradient still reads: every layer would cost its own launches. Ordered by phase, every
//! weight and bias gradient comes after the whole row-local backward and they share a launch.
//! The price is memory: each layer's backward values stay alive until that launch.
//! The CPU executor keeps node order.

use crate::engine::graph::{Axis, Graph, Op};
use crate::engine::plan::Order;

/// Whether node `v` (op `op`) reads operand `x` only at its own rows.
fn row_local(graph: &Graph, op: &Op, v: usize, x: usize) -> bool {
    let (nodes, rows) = (graph.nodes(), graph.nodes()[v].shape.rows);
    if nodes[x].shape.rows != rows {
        return false;
    }
    match op {
        Op::Sum(Axis::Rows | Axis::All, _) => false,
        Op::MatMul { a, trans_a, .. } => a.index() == x && !trans_a,
        Op::Linear { x: input, .. } => input.index() == x,
        _ => true,
    }
}

/// Every node of `graph`, ordered by (segment, phase, node): a segment ends at each input node
/// (a launch never spans one, see [`super::fuse`]), and within a segment nodes run by phase,
/// in node order within a phase. A topological order: a node's operands have lower indices
/// (so no later segment) and no higher phase.
///
/// A node that reads an operand across rows keeps its operands' buffers to the end of its
/// phase: a later node of the phase reusing one would overwrite rows it still reads, and
/// would have to wait for it in a launch of its own.
pub(crate) fn by_phase(graph: &Graph) -> Order {
    let nodes = graph.nodes();
    let source = |x: usize| {
        matches!(
            nodes[x].op,
            Op::Input | Op::Param(_) | Op::Fill(_) | Op::Constant(_)
        )
    };
    let mut phase = vec![0u32; nodes.len()];
    let mut segment = vec![0u32; nodes.len()];
    let mut across = vec![false; nodes.len()];
    let mut current = 0u32;
    for (v, node) in nodes.iter().enumerate() {
        if matches!(node.op, Op::Input) {
            current += 1;
        }
        segment[v] = current;
        for x in node.op.inputs().iter().map(|x| x.index()) {
            if source(x) {
                continue;
            }
            // A reduction's result is known only once every row is summed (another entry
            // point): its readers wait for it, row-local or not.
            let waits = !row_local(graph, &node.op, v, x)
                || matches!(nodes[x].op, Op::Sum(Axis::Rows | Axis::All, _));
            across[v] |= !row_local(graph, &node.op, v, x);
            phase[v] = phase[v].max(phase[x] + u32::from(waits));
        }
    }
    let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
    order.sort_by_key(|&v| (segment[v as usize], phase[v as usize], v));
    let group = |v: u32| (segment[v as usize], phase[v as usize]);
    // The last position of each position's group.
    let mut keep = vec![0u32; order.len()];
    let mut end = order.len();
    for position in (0..order.len()).rev() {
        if position + 1 < order.len() && group(order[position]) != group(order[position + 1]) {
            end = position + 1;
        }
        let v = order[position] as usize;
        keep[position] = if across[v] {
            end as u32 - 1
        } else {
            position as u32
        };
    }
    debug_assert!(
        {
            let mut position = vec![0usize; order.len()];
            for (p, &v) in order.iter().enumerate() {
                position[v as usize] = p;
            }
            nodes.iter().enumerate().all(|(v, node)| {
                node.op
                    .inputs()
                    .iter()
                    .all(|x| position[x.index()] < position[v])
            })
        },
        "the phase order must run every operand before its readers"
    );
    Order {
        nodes: order,
        keep,
        match_shapes: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_gradients_come_after_the_row_local_backward() {
        let mut g = Graph::new();
        let x = g.input(8, 3);
        let w1 = g.constant(3, 4, vec![0.5; 12]);
        let w2 = g.constant(4, 2, vec![0.25; 8]);
        let h = g.matmul(x, w1);
        let h = g.tanh(h);
        let y = g.matmul(h, w2);
        let dy = g.tanh(y);
        // dW2 = hᵀ·dy, then the row-local dh = dy·W2ᵀ that follows it in node order.
        let dw2 = g.matmul_t(h, dy, true, false);
        let dh = g.matmul_t(dy, w2, false, true);
        let order = by_phase(&g).nodes;
        let at = |v: crate::engine::Var| order.iter().position(|&o| o as usize == v.index());
        assert!(at(dh) < at(dw2), "{order:?}");
        assert_eq!(order.len(), g.nodes().len());
    }
}
