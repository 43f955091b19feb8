//! Scheduling: the lowered dispatches, in program order, become few launches.
//!
//! Three ways of merging, all decided from the address ranges each dispatch reads and writes
//! (so they hold for any graph, any buffer reuse):
//!
//! - **Element chains.** A dispatch whose thread `i` writes only `out[i]` (element-wise ops,
//!   column views, and a matmul, whose thread computes one output element) may run in the
//!   same thread right after the dispatch that produced its operand, when it reads that
//!   operand at the same index `i`: elementwise chains and GEMM epilogues (`Linear` → `tanh`).
//! - **Row chains.** Almost every op is row-local: output row `r` needs only row `r` of its
//!   operands (element-wise ops of any width, column views, concatenation, row-wise ops, `x·W`
//!   with `W` read whole). Such dispatches, over the same rows, run in the same workgroup, each
//!   taking a few whole rows, one after another with a barrier between them: a coupling layer's
//!   `1→64→64→2` MLP and everything around it, a flow's whole forward, its whole row-local
//!   backward. Only reads across rows (sums over the batch, weight gradients `Hᵀ·G`, a 1-row
//!   value broadcast over the batch) wait for a launch of their own. [`super::order`] plans
//!   the graph so that buffer reuse does not undo this.
//! - **Lanes.** Chains with no hazard between them (ASAP levels over the hazard graph) share
//!   one dispatch, whatever they run (element-wise chains, column sums, Adam: one entry
//!   point): each takes its own range of workgroups, and a workgroup finds its lane by a
//!   binary search. Every weight and bias gradient of a step is a lane of one launch.
//!
//! A launch never spans a graph input created mid-graph: [`GpuProgram::run_until`] stops a
//! reverse-KL step there for the target's score. Work after the graph (the optimizer, the
//! snapshot copies) keeps one launch per dispatch, in order.
//!
//! [`GpuProgram::run_until`]: super::GpuProgram::run_until

use std::ops::Range;

use super::access::{Access, Hazard, access, hazard};
use super::lower::{Dispatch, Kernel, tag};

/// A chain of dispatches run by the same threads, one after another.
struct Chain {
    kernel: Kernel,
    level: u32,
    /// Dispatch indices, in program order.
    members: Vec<usize>,
    /// One thread per element: every member has this `(n, out_cols)` and depends on the
    /// others only through the same index.
    element: Option<(u32, u32)>,
    /// Rows when its members can run row by row (0: they cannot).
    rows: u32,
    groups: u32,
    /// Another dispatch may join it.
    open: bool,
    /// Merged into another chain.
    merged: bool,
}

/// Words of a lane record in the schedule buffer (`struct Lane` in kernels.wgsl).
pub(crate) const LANE_WORDS: usize = 8;

/// Set on a chain's entry that must wait for the workgroup first (`BARRIER` in kernels.wgsl):
/// it reads or overwrites what an earlier member wrote or read in other threads. Why not a
/// barrier after every member: most follow one of the same width through the same elements
/// (`x·W + b` → `tanh`), or nothing at all, and a barrier costs every thread of the workgroup.
pub(crate) const BARRIER_FIRST: u32 = 1 << 31;

/// One dispatch of the schedule: its lanes are `lanes` of [`Schedule::lanes`].
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub lanes: Range<u32>,
    pub groups: u32,
    /// The smallest and largest node among its dispatches (what a run selects by).
    pub nodes: (u32, u32),
}

/// The launches, and the tables the kernels read to find their work.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schedule {
    pub launches: Vec<Launch>,
    /// Per lane: first index into `entries`, how many, its first workgroup in the launch, its
    /// workgroups, the rows its chain runs over and the rows per workgroup (an element-wise
    /// chain: one "row" per element, 256 per workgroup), its [`Kernel::kind`], then padding.
    pub lanes: Vec<[u32; LANE_WORDS]>,
    /// Dispatch indices (slots of the argument table), chain by chain, with
    /// [`BARRIER_FIRST`] where a member waits for the workgroup.
    pub entries: Vec<u32>,
}

/// Threads per workgroup (`WG` in kernels.wgsl).
const WORKGROUP: u32 = 256;

/// The most dispatches one lane runs. Why a bound: on lavapipe a lane of 3,000 members (each
/// a barrier) wrote nothing at all, at 64 rows as at 4,096, while 2,500 ran correctly; only
/// the largest graphs (a planar flow's inverse, a CNF's solver) reach it, and each 1,024
/// members cost them one launch.
const MAX_CHAIN: usize = 1024;

/// Schedules `dispatches` (in program order); `cuts` are the graph's input nodes, sorted.
pub(crate) fn schedule(dispatches: &[Dispatch], cuts: &[u32]) -> Schedule {
    let accesses: Vec<Access> = dispatches.iter().map(access).collect();
    let mut chains: Vec<Chain> = Vec::new();
    // Chains at or above `floor` are the only ones a new dispatch can depend on or join.
    let (mut floor, mut first_open, mut segment) = (0u32, 0usize, 0usize);
    for (index, d) in dispatches.iter().enumerate() {
        let after_graph = d.node >= tag::AFTER_GRAPH;
        let here = cuts.partition_point(|&c| c <= d.node);
        if after_graph || here != segment {
            floor = chains.iter().map(|c| c.level + 1).max().unwrap_or(0);
            first_open = chains.len();
            segment = here;
        }
        let access = &accesses[index];
        let shape = (d.args.n, d.args.out_cols);
        // The highest level among the chains `d` depends on, the chains there and the
        // worst hazard with them.
        let mut top: Option<(u32, Vec<usize>, Hazard)> = None;
        for (c, chain) in chains.iter().enumerate().skip(first_open) {
            if chain.merged {
                continue;
            }
            let h = chain
                .members
                .iter()
                .map(|&m| hazard(&accesses[m], access))
                .max()
                .unwrap_or(Hazard::None);
            if h == Hazard::None {
                continue;
            }
            match &mut top {
                Some((l, at, worst)) if *l == chain.level => {
                    at.push(c);
                    *worst = (*worst).max(h);
                }
                Some((l, ..)) if *l > chain.level => {}
                _ => top = Some((chain.level, vec![c], h)),
            }
        }
        let open = !after_graph && d.kernel == Kernel::Elementwise;
        let joins = |c: usize| chains[c].open && chains[c].kernel == d.kernel;
        // In the same threads as the one chain it depends on, element by element; or row by
        // row, with every chain it depends on at that level merged into one (they are
        // independent of each other, so program order is a valid order for their members).
        let target = match &top {
            Some((_, at, worst))
                if open && *worst <= Hazard::SameRow && at.iter().all(|&c| joins(c)) =>
            {
                let element = *worst == Hazard::SameIndex
                    && access.chainable
                    && at.len() == 1
                    && chains[at[0]].element == Some(shape);
                let by_rows = access.rows > 0 && at.iter().all(|&c| chains[c].rows == access.rows);
                let members: usize = at.iter().map(|&c| chains[c].members.len()).sum();
                (members < MAX_CHAIN && (element || by_rows)).then(|| (at.clone(), element))
            }
            _ => None,
        };
        match target {
            Some((at, element)) => {
                let (first, rest) = (at[0], &at[1..]);
                let mut members = std::mem::take(&mut chains[first].members);
                for &c in rest {
                    members.append(&mut chains[c].members);
                    chains[c].merged = true;
                }
                members.sort_unstable();
                members.push(index);
                let chain = &mut chains[first];
                chain.members = members;
                if !element {
                    chain.element = None;
                }
            }
            None => {
                let level = top.map_or(floor, |(l, ..)| l + 1).max(floor);
                chains.push(Chain {
                    kernel: d.kernel,
                    level,
                    members: vec![index],
                    element: (access.chainable || !open).then_some(shape),
                    rows: access.rows,
                    groups: d.groups.max(1),
                    open,
                    merged: false,
                });
            }
        }
    }
    chains.retain(|c| !c.merged);
    // Launches: level by level, one per entry point present at that level.
    let mut order: Vec<usize> = (0..chains.len()).collect();
    order.sort_by_key(|&c| (chains[c].level, chains[c].members[0]));
    let mut schedule = Schedule::default();
    let mut i = 0;
    while i < order.len() {
        let first = &chains[order[i]];
        let level = first.level;
        let start = schedule.lanes.len() as u32;
        let (mut groups, mut nodes) = (0u32, (u32::MAX, 0u32));
        while i < order.len() && chains[order[i]].level == level {
            let chain = &chains[order[i]];
            let (rows, block, lane_groups) = lane_shape(chain, dispatches);
            schedule.lanes.push([
                schedule.entries.len() as u32,
                chain.members.len() as u32,
                groups,
                lane_groups,
                rows,
                block,
                chain.kernel.kind(),
                0,
            ]);
            // Since the last barrier: a member that depends on one of these other than
            // through its own thread's elements waits for the workgroup.
            let mut since: Vec<usize> = Vec::new();
            for &m in &chain.members {
                let own_thread = |s: usize| dispatches[s].args.n == dispatches[m].args.n;
                let waits = since
                    .iter()
                    .any(|&s| match hazard(&accesses[s], &accesses[m]) {
                        Hazard::None => false,
                        Hazard::SameIndex => !own_thread(s),
                        _ => true,
                    });
                if waits {
                    since.clear();
                }
                since.push(m);
                schedule
                    .entries
                    .push(m as u32 | if waits { BARRIER_FIRST } else { 0 });
                let node = dispatches[m].node;
                nodes = (nodes.0.min(node), nodes.1.max(node));
            }
            groups += lane_groups;
            i += 1;
        }
        schedule.launches.push(Launch {
            lanes: start..schedule.lanes.len() as u32,
            groups,
            nodes,
        });
    }
    schedule
}

/// Workgroups a row chain is spread over when it has the rows: enough to fill a large GPU
/// (an H100 holds about 1,000 such workgroups at once).
const TARGET_GROUPS: u32 = 1024;

/// A lane's rows, rows per workgroup and workgroups. An element-wise chain runs one thread
/// per element (each element a "row"). A row chain gives each workgroup at least enough rows
/// to keep its threads busy on its widest member (`x·W` with 64 outputs: 4 rows of 64
/// threads), and more once there are rows for [`TARGET_GROUPS`] workgroups. Why more: its
/// narrow members (a row's log-det, one column) busy only `rows` threads of 256 and cost a
/// barrier each; with 64 rows to a workgroup a batch of 65,536 runs them at a quarter of
/// the threads, not 1/64, in as many workgroups as the GPU holds.
fn lane_shape(chain: &Chain, dispatches: &[Dispatch]) -> (u32, u32, u32) {
    if chain.kernel != Kernel::Elementwise {
        return (0, 0, chain.groups);
    }
    match chain.element {
        Some((n, _)) => (n.max(1), WORKGROUP, chain.groups),
        None => {
            let rows = chain.rows.max(1);
            let widest = chain
                .members
                .iter()
                .map(|&m| dispatches[m].args.n / rows)
                .max()
                .unwrap_or(1)
                .max(1);
            let narrowest = (WORKGROUP / widest.next_power_of_two()).max(1);
            let spread = (rows / TARGET_GROUPS).max(1);
            let block = narrowest.max(1 << spread.ilog2()).min(WORKGROUP);
            (rows, block, rows.div_ceil(block))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gpu::lower::{Args, code, groups_for};

    /// `out[i] = f(a[i])` over `n` elements, as node `node`.
    fn unary(node: u32, a: u32, out: u32, n: u32) -> Dispatch {
        Dispatch {
            kernel: Kernel::Elementwise,
            groups: groups_for(n as usize),
            args: Args {
                code: 4,
                n,
                out,
                out_cols: 1,
                a,
                ..Args::default()
            },
            node,
        }
    }

    /// Column sums of an `rows × 1` block.
    fn sum(node: u32, a: u32, out: u32, rows: u32) -> Dispatch {
        let mut d = crate::engine::gpu::lower::reduce(node, code::REDUCE_SUM, a, rows, 1, out);
        d.node = node;
        d
    }

    fn chains(s: &Schedule) -> Vec<Vec<u32>> {
        s.lanes
            .iter()
            .map(|&[at, count, ..]| {
                s.entries[at as usize..(at + count) as usize]
                    .iter()
                    .map(|e| e & !BARRIER_FIRST)
                    .collect()
            })
            .collect()
    }

    /// The launch that runs dispatch `dispatch`.
    fn launch_of(s: &Schedule, dispatch: u32) -> usize {
        s.launches
            .iter()
            .position(|l| {
                l.lanes.clone().any(|lane| {
                    let [at, count, ..] = s.lanes[lane as usize];
                    s.entries[at as usize..(at + count) as usize]
                        .iter()
                        .any(|e| e & !BARRIER_FIRST == dispatch)
                })
            })
            .expect("scheduled")
    }

    #[test]
    fn an_elementwise_chain_runs_in_one_launch() {
        let d = [
            unary(1, 0, 100, 64),
            unary(2, 100, 200, 64),
            unary(3, 200, 100, 64),
        ];
        let s = schedule(&d, &[]);
        assert_eq!(s.launches.len(), 1);
        assert_eq!(chains(&s), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn a_shifted_read_waits_for_the_whole_dispatch() {
        // The second reads the first's output one element later: another thread's element.
        let d = [unary(1, 0, 100, 64), unary(2, 101, 300, 32)];
        let s = schedule(&d, &[]);
        assert_eq!(s.launches.len(), 2);
    }

    #[test]
    fn independent_dispatches_share_a_launch_as_lanes() {
        let d = [
            unary(1, 0, 100, 64),
            unary(2, 1000, 2000, 600),
            sum(3, 0, 900, 64),
        ];
        let s = schedule(&d, &[]);
        // Two element-wise lanes side by side, and the reduction (one workgroup per column)
        // beside them.
        assert_eq!(s.launches.len(), 1);
        assert_eq!(chains(&s), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(
            s.lanes[1][2], 1,
            "the second lane starts after the first's workgroup"
        );
        assert_eq!(s.launches[0].groups, 1 + groups_for(600) + 1);
        assert_eq!(s.lanes[2][6], Kernel::Reduce.kind());
    }

    #[test]
    fn a_reduction_of_a_chain_waits_for_it() {
        let d = [
            unary(1, 0, 100, 64),
            sum(2, 100, 200, 64),
            unary(3, 200, 300, 1),
        ];
        let s = schedule(&d, &[]);
        assert_eq!(s.launches.len(), 3);
    }

    #[test]
    fn overwriting_a_buffer_another_lane_reads_waits() {
        // Buffer reuse: the third writes where the first (a reduction) still reads.
        let d = [
            sum(1, 100, 50, 64),
            unary(2, 0, 200, 64),
            unary(3, 0, 100, 64),
        ];
        let s = schedule(&d, &[]);
        assert!(launch_of(&s, 2) > launch_of(&s, 0));
    }

    #[test]
    fn no_launch_spans_an_input_node() {
        // Independent, but an input (node 2) lies between them.
        let d = [unary(1, 0, 100, 64), unary(3, 0, 200, 64)];
        let s = schedule(&d, &[2]);
        assert_eq!(s.launches.len(), 2);
        assert_eq!((s.launches[0].nodes, s.launches[1].nodes), ((1, 1), (3, 3)));
    }

    #[test]
    fn work_after_the_graph_keeps_its_order() {
        let mut copy = unary(0, 0, 500, 8);
        copy.node = tag::SNAPSHOT;
        let mut back = unary(0, 500, 0, 8);
        back.node = tag::RESTORE;
        let s = schedule(&[unary(1, 0, 100, 64), copy, back], &[]);
        assert_eq!(s.launches.len(), 3);
        assert_eq!(s.launches[2].nodes, (tag::RESTORE, tag::RESTORE));
    }

    /// Every hazard the schedule must respect, as violations: a later dispatch runs in an
    /// earlier launch, beside the earlier one as another lane, or before it in its chain, or
    /// in its chain although it reads across rows.
    fn violations(dispatches: &[Dispatch], s: &Schedule) -> Vec<(usize, usize)> {
        let accesses: Vec<Access> = dispatches.iter().map(access).collect();
        // (launch, lane, position in the lane, barriers in the lane up to it)
        let mut at = vec![(usize::MAX, 0u32, 0usize, 0usize); dispatches.len()];
        for (li, l) in s.launches.iter().enumerate() {
            for lane in l.lanes.clone() {
                let [e, count, ..] = s.lanes[lane as usize];
                let mut barriers = 0;
                for (p, &m) in s.entries[e as usize..(e + count) as usize]
                    .iter()
                    .enumerate()
                {
                    barriers += usize::from(m & BARRIER_FIRST != 0);
                    at[(m & !BARRIER_FIRST) as usize] = (li, lane, p, barriers);
                }
            }
        }
        let mut bad = Vec::new();
        for j in 0..dispatches.len() {
            for i in 0..j {
                let h = hazard(&accesses[i], &accesses[j]);
                let (a, b) = (at[i], at[j]);
                let same_thread =
                    h == Hazard::SameIndex && dispatches[i].args.n == dispatches[j].args.n;
                let in_chain = a.0 == b.0
                    && a.1 == b.1
                    && a.2 < b.2
                    && h <= Hazard::SameRow
                    && (same_thread || b.3 > a.3);
                if b.0 == usize::MAX || (h != Hazard::None && a.0 >= b.0 && !in_chain) {
                    bad.push((i, j));
                }
            }
        }
        bad
    }

    /// `x·W` for `x` `rows × k` at `a`, `W` `k × n` at `b`, into `out`.
    fn matmul(node: u32, a: u32, b: u32, out: u32, rows: u32, k: u32, n: u32) -> Dispatch {
        Dispatch {
            kernel: Kernel::Elementwise,
            groups: groups_for((rows * n) as usize),
            args: Args {
                code: code::MATMUL,
                n: rows * n,
                out,
                out_cols: n,
                a,
                b,
                k,
                a_rs: k,
                a_cs: 1,
                b_rs: n,
                b_cs: 1,
                ..Args::default()
            },
            node,
        }
    }

    /// `Hᵀ·G` for `H` `rows × k` at `a` and `G` `rows × n` at `b`: a weight gradient.
    fn weight_gradient(node: u32, a: u32, b: u32, out: u32, rows: u32, k: u32, n: u32) -> Dispatch {
        let mut d = matmul(node, a, b, out, k, rows, n);
        (d.args.a_rs, d.args.a_cs) = (1, k);
        d
    }

    /// Row sums of a `rows × cols` block (`Sum(Cols)`: a thread per row).
    fn row_sum(node: u32, a: u32, out: u32, rows: u32, cols: u32) -> Dispatch {
        Dispatch {
            kernel: Kernel::Elementwise,
            groups: groups_for(rows as usize),
            args: Args {
                code: code::SUM_COLS,
                n: rows,
                out,
                out_cols: 1,
                a,
                a_cols: cols,
                ..Args::default()
            },
            node,
        }
    }

    #[test]
    fn a_row_chain_runs_ops_of_different_widths_in_one_launch() {
        // 512 rows: x (1 column) → x·W1 (64) → tanh → row sums (1) → tanh.
        let d = [
            matmul(1, 0, 600_000, 1000, 512, 1, 64),
            unary(2, 1000, 40_000, 512 * 64),
            row_sum(3, 40_000, 80_000, 512, 64),
            unary(4, 80_000, 90_000, 512),
        ];
        let mut d = d.to_vec();
        d[1].args.out_cols = 64;
        let s = schedule(&d, &[]);
        assert_eq!(s.launches.len(), 1);
        assert_eq!(chains(&s), vec![vec![0, 1, 2, 3]]);
        // The widest member has 64 columns: 4 rows of 64 threads to a workgroup.
        assert_eq!(s.lanes[0][4..6], [512, 4]);
        assert_eq!(s.launches[0].groups, 128);
        // tanh reads x·W1 in its own thread; the row sums read other threads' columns (and
        // the last tanh waits too: a row-wise op is not known to write by thread).
        assert_eq!(s.entries, vec![0, 1, 2 | BARRIER_FIRST, 3 | BARRIER_FIRST]);
        assert!(violations(&d, &s).is_empty());
    }

    #[test]
    fn a_large_batch_takes_more_rows_to_a_workgroup() {
        let rows = 65_536;
        let mut d = vec![
            matmul(1, 0, 600_000_000, 1000, rows, 1, 64),
            unary(2, 1000, 40_000_000, rows * 64),
        ];
        d[1].args.out_cols = 64;
        d.push(row_sum(3, 40_000_000, 80_000_000, rows, 64));
        let s = schedule(&d, &[]);
        assert_eq!(s.lanes[0][4..6], [rows, 64]);
        assert_eq!(s.launches[0].groups, TARGET_GROUPS);
        assert!(violations(&d, &s).is_empty());
    }

    #[test]
    fn a_weight_gradient_waits_for_the_rows_it_reads_and_shares_a_launch() {
        let mut d = vec![
            matmul(1, 0, 600_000, 1000, 512, 1, 64),
            unary(2, 1000, 40_000, 512 * 64),
        ];
        d[1].args.out_cols = 64;
        // Two weight gradients of the same rows, then a row-local op reading the chain.
        d.push(weight_gradient(3, 40_000, 1000, 200_000, 512, 64, 64));
        d.push(weight_gradient(4, 0, 1000, 210_000, 512, 1, 64));
        d.push(row_sum(5, 40_000, 80_000, 512, 64));
        let s = schedule(&d, &[]);
        assert!(violations(&d, &s).is_empty());
        assert_eq!(
            launch_of(&s, 2),
            launch_of(&s, 3),
            "the gradients are lanes"
        );
        assert!(launch_of(&s, 2) > launch_of(&s, 1));
        assert_eq!(
            launch_of(&s, 4),
            launch_of(&s, 0),
            "the row sum joins the chain"
        );
    }

    #[test]
    fn row_chains_an_op_reads_together_merge() {
        // Two independent chains over the same rows, then a sum of both.
        let mut d = vec![
            unary(1, 0, 1000, 512),
            unary(2, 5000, 6000, 512),
            matmul(3, 6000, 600_000, 7000, 512, 1, 2),
        ];
        let mut add = unary(4, 1000, 9000, 1024);
        add.args.code = 32;
        add.args.out_cols = 2;
        (add.args.a_rows, add.args.a_cols) = (512, 1);
        (add.args.b, add.args.b_rows, add.args.b_cols) = (7000, 512, 2);
        d.push(add);
        let s = schedule(&d, &[]);
        assert!(violations(&d, &s).is_empty());
        assert_eq!(s.launches.len(), 1);
        assert_eq!(chains(&s), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn overwriting_rows_another_lane_reads_across_waits() {
        // A reduction over every row of `1000`, then a chain reusing that buffer.
        let d = [
            unary(1, 0, 1000, 512),
            sum(2, 1000, 50, 512),
            unary(3, 0, 1000, 512),
        ];
        let s = schedule(&d, &[]);
        assert!(violations(&d, &s).is_empty());
        assert!(launch_of(&s, 2) > launch_of(&s, 1));
    }

    #[test]
    fn a_lane_holds_at_most_max_chain_members() {
        let d: Vec<Dispatch> = (0..2 * MAX_CHAIN as u32 + 5)
            .map(|i| unary(i + 1, 1000 * (i % 2), 1000 * ((i + 1) % 2), 64))
            .collect();
        let s = schedule(&d, &[]);
        assert!(violations(&d, &s).is_empty());
        assert!(chains(&s).iter().all(|c| c.len() <= MAX_CHAIN));
        assert_eq!(s.launches.len(), 3);
    }
}
