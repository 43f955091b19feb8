//! Scheduling: the lowered dispatches, in program order, become few launches.
//!
//! Two ways of merging, both decided from the address ranges each dispatch reads and writes
//! (so they hold for any graph, any buffer reuse):
//!
//! - **Vertically, into chains.** A dispatch whose thread `i` writes only `out[i]` (element-
//!   wise ops, column views, and a matmul, whose thread computes one output element) may run
//!   in the same thread right after the dispatch that produced its operand, when it reads
//!   that operand at the same index `i`. That fuses elementwise chains and GEMM epilogues
//!   (`Linear` → `tanh`) without generating shaders: a thread runs the chain's entries in
//!   order, and its own writes are visible to its own later reads.
//! - **Horizontally, into launches.** Chains with no hazard between them (ASAP levels over
//!   the hazard graph) that run the same entry point share one dispatch: each takes its own
//!   range of workgroups ("lanes"), and a workgroup finds its lane by a binary search.
//!
//! A launch never spans a graph input created mid-graph: [`GpuProgram::run_until`] stops a
//! reverse-KL step there for the target's score. Work after the graph (the optimizer, the
//! snapshot copies) keeps one launch per dispatch, in order.
//!
//! [`GpuProgram::run_until`]: super::GpuProgram::run_until

use std::ops::Range;

use super::lower::{Dispatch, Kernel, code, tag};

/// One range a dispatch reads, and whether thread `i` reads only its element `i` of it.
#[derive(Clone, Debug)]
struct Read {
    range: Range<u32>,
    aligned: bool,
}

/// What a dispatch touches.
#[derive(Clone, Debug)]
struct Access {
    reads: Vec<Read>,
    write: Range<u32>,
    /// Thread `i` writes only `out[i]`, and `n` threads cover the output: it can join a chain.
    chainable: bool,
}

fn span(start: u32, len: u32) -> Range<u32> {
    start..start + len
}

fn overlaps(a: &Range<u32>, b: &Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The ranges of one dispatch, from its kernel and arguments (the codes of kernels.wgsl).
fn access(d: &Dispatch) -> Access {
    let a = &d.args;
    let rows = a.n / a.out_cols.max(1);
    let aligned = |base: u32, r: u32, c: u32| Read {
        range: span(base, r * c),
        aligned: r * c == a.n && c == a.out_cols,
    };
    let strided = |base: u32, len: u32| Read {
        range: span(base, len),
        aligned: false,
    };
    let elementwise = |reads: Vec<Read>| Access {
        reads,
        write: span(a.out, a.n),
        chainable: true,
    };
    match d.kernel {
        Kernel::Reduce => Access {
            reads: vec![strided(a.a, a.a_rows * a.a_cols)],
            write: span(a.out, a.n),
            chainable: false,
        },
        // After the graph, alone in its launch: touches everything.
        Kernel::Adam => Access {
            reads: vec![strided(0, u32::MAX)],
            write: 0..u32::MAX,
            chainable: false,
        },
        Kernel::Elementwise => match a.code {
            c if c < 32 => elementwise(vec![Read {
                range: span(a.a, a.n),
                aligned: true,
            }]),
            code::WHERE => elementwise(vec![
                aligned(a.a, a.a_rows, a.a_cols),
                aligned(a.b, a.b_rows, a.b_cols),
                aligned(a.c, a.c_rows, a.c_cols),
            ]),
            code::BROADCAST => elementwise(vec![aligned(a.a, a.a_rows, a.a_cols)]),
            32..=37 => elementwise(vec![
                aligned(a.a, a.a_rows, a.a_cols),
                aligned(a.b, a.b_rows, a.b_cols),
            ]),
            code::COLS => elementwise(vec![strided(a.a, rows * a.a_cols)]),
            code::PAD_COLS => elementwise(vec![strided(a.a, rows * a.width)]),
            code::PERMUTE => elementwise(vec![
                strided(a.a, rows * a.a_cols),
                strided(a.b, a.out_cols),
            ]),
            code::SCATTER => elementwise(vec![strided(a.a, rows), strided(a.b, rows)]),
            // n = rows, one output column.
            code::GATHER => elementwise(vec![strided(a.a, a.n * a.a_cols), strided(a.b, a.n)]),
            code::MATMUL => {
                let extent = |rs: u32, cs: u32, r: u32, c: u32| {
                    if r == 0 || c == 0 {
                        0
                    } else {
                        (r - 1) * rs + (c - 1) * cs + 1
                    }
                };
                let mut reads = vec![
                    strided(a.a, extent(a.a_rs, a.a_cs, rows, a.k)),
                    strided(a.b, extent(a.b_rs, a.b_cs, a.k, a.out_cols)),
                ];
                if a.has_bias != 0 {
                    reads.push(strided(a.bias, a.out_cols));
                }
                elementwise(reads)
            }
            code::PLACE => Access {
                reads: vec![strided(a.a, a.n)],
                write: span(a.out, (a.n / a.width.max(1)) * a.out_cols),
                chainable: false,
            },
            // Row-wise ops: a thread per row (n = rows) over a_cols columns.
            row_code => {
                let mut reads = vec![strided(a.a, a.n * a.a_cols)];
                if row_code == code::BIN_INDEX {
                    reads.push(strided(a.b, a.n));
                }
                let wide = matches!(
                    row_code,
                    code::SOFTMAX | code::CUMSUM | code::CUMSUM_REVERSE
                );
                Access {
                    reads,
                    write: span(a.out, if wide { a.n * a.a_cols } else { a.n }),
                    chainable: false,
                }
            }
        },
    }
}

/// How a later dispatch depends on an earlier one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hazard {
    None,
    /// Only through elements of the same index: the later one can run in the same thread.
    SameIndex,
    /// Any other overlap: the later one must wait for the whole earlier dispatch.
    Full,
}

fn hazard(earlier: &Access, later: &Access) -> Hazard {
    let chain = earlier.chainable && later.chainable;
    let same = |a: &Range<u32>, b: &Range<u32>, aligned: bool| {
        if !overlaps(a, b) {
            Hazard::None
        } else if chain && aligned && a == b {
            Hazard::SameIndex
        } else {
            Hazard::Full
        }
    };
    let mut worst = same(&earlier.write, &later.write, true);
    for r in &later.reads {
        worst = worst.max(same(&earlier.write, &r.range, r.aligned));
    }
    for r in &earlier.reads {
        worst = worst.max(same(&r.range, &later.write, r.aligned));
    }
    worst
}

/// A chain of dispatches run by the same threads, one after another.
struct Chain {
    kernel: Kernel,
    level: u32,
    members: Vec<usize>,
    /// Threads and output columns every member shares (a chain's members index alike).
    shape: (u32, u32),
    groups: u32,
    chainable: bool,
}

/// One dispatch of the schedule: its lanes are `lanes` of [`Schedule::lanes`].
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub kernel: Kernel,
    pub lanes: Range<u32>,
    pub groups: u32,
    /// The smallest and largest node among its dispatches (what a run selects by).
    pub nodes: (u32, u32),
}

/// The launches, and the tables the kernels read to find their work.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schedule {
    pub launches: Vec<Launch>,
    /// Per lane: first index into `entries`, how many, its first workgroup in the launch,
    /// and its workgroups.
    pub lanes: Vec<[u32; 4]>,
    /// Dispatch indices (slots of the argument table), chain by chain.
    pub entries: Vec<u32>,
}

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
        // The highest level among the chains `d` depends on, and the one chain there if `d`
        // can join it (it cannot when two chains share that level).
        let mut top: Option<(u32, Option<usize>)> = None;
        for (c, chain) in chains.iter().enumerate().skip(first_open) {
            let h = chain
                .members
                .iter()
                .map(|&m| hazard(&accesses[m], access))
                .max()
                .unwrap_or(Hazard::None);
            if h == Hazard::None {
                continue;
            }
            let joins = h == Hazard::SameIndex
                && chain.chainable
                && chain.kernel == d.kernel
                && chain.shape == shape;
            top = match top {
                Some((l, _)) if l == chain.level => Some((l, None)),
                Some((l, j)) if l > chain.level => Some((l, j)),
                _ => Some((chain.level, joins.then_some(c))),
            };
        }
        let level = top.map_or(floor, |(l, _)| l + 1).max(floor);
        let joinable = top.and_then(|(_, c)| c);
        match joinable.filter(|_| access.chainable && !after_graph) {
            Some(c) => chains[c].members.push(index),
            None => chains.push(Chain {
                kernel: d.kernel,
                level,
                members: vec![index],
                shape,
                groups: d.groups.max(1),
                chainable: access.chainable && !after_graph,
            }),
        }
    }
    // Launches: level by level, one per entry point present at that level.
    let mut order: Vec<usize> = (0..chains.len()).collect();
    order.sort_by_key(|&c| {
        (
            chains[c].level,
            Kernel::ALL.iter().position(|&k| k == chains[c].kernel),
            c,
        )
    });
    let mut schedule = Schedule::default();
    let mut i = 0;
    while i < order.len() {
        let first = &chains[order[i]];
        let (level, kernel) = (first.level, first.kernel);
        let start = schedule.lanes.len() as u32;
        let (mut groups, mut nodes) = (0u32, (u32::MAX, 0u32));
        while i < order.len()
            && chains[order[i]].level == level
            && chains[order[i]].kernel == kernel
        {
            let chain = &chains[order[i]];
            schedule.lanes.push([
                schedule.entries.len() as u32,
                chain.members.len() as u32,
                groups,
                chain.groups,
            ]);
            for &m in &chain.members {
                schedule.entries.push(m as u32);
                let node = dispatches[m].node;
                nodes = (nodes.0.min(node), nodes.1.max(node));
            }
            groups += chain.groups;
            i += 1;
        }
        schedule.launches.push(Launch {
            kernel,
            lanes: start..schedule.lanes.len() as u32,
            groups,
            nodes,
        });
    }
    schedule
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::gpu::lower::{Args, groups_for};

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
            .map(|&[at, count, ..]| s.entries[at as usize..(at + count) as usize].to_vec())
            .collect()
    }

    /// The launch that runs dispatch `dispatch`.
    fn launch_of(s: &Schedule, dispatch: u32) -> usize {
        s.launches
            .iter()
            .position(|l| {
                l.lanes.clone().any(|lane| {
                    let [at, count, ..] = s.lanes[lane as usize];
                    s.entries[at as usize..(at + count) as usize].contains(&dispatch)
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
        // Two element-wise lanes side by side, and the reduction beside them (another entry
        // point, so another launch of the same level).
        assert_eq!(s.launches.len(), 2);
        assert_eq!(chains(&s), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(
            s.lanes[1][2], 1,
            "the second lane starts after the first's workgroup"
        );
        assert_eq!(s.launches[0].groups, 1 + groups_for(600));
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
}
