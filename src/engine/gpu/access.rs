//! What each lowered dispatch reads and writes, and how two dispatches depend on each other:
//! the model [`super::fuse`] schedules by. Read from the kernel and its arguments alone (the
//! codes of kernels.wgsl), so it holds for any graph and any buffer reuse; a region read in a
//! way not described here would be a race, so every op's regions are spelt out.

use std::ops::Range;

use super::lower::{Dispatch, Kernel, code};

/// A range a dispatch reads or writes.
#[derive(Clone, Debug)]
pub(super) struct Region {
    pub(super) range: Range<u32>,
    /// Thread `i` touches only element `i` of it.
    pub(super) aligned: bool,
    /// `(rows, stride)` when the threads of output row `r` touch only its row `r`,
    /// `start + r·stride .. start + (r+1)·stride`.
    pub(super) rows: Option<(u32, u32)>,
}

/// What a dispatch touches.
#[derive(Clone, Debug)]
pub(super) struct Access {
    pub(super) reads: Vec<Region>,
    pub(super) write: Region,
    /// Thread `i` writes only `out[i]`, and `n` threads cover the output: it can join a chain
    /// that runs one thread per element.
    pub(super) chainable: bool,
    /// Its output rows when every region it writes or reads at its own rows has a row
    /// layout: it can join a chain that runs row by row (0: it cannot).
    pub(super) rows: u32,
}

fn span(start: u32, len: u32) -> Range<u32> {
    start..start + len
}

fn overlaps(a: &Range<u32>, b: &Range<u32>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The ranges of one dispatch, from its kernel and arguments (the codes of kernels.wgsl).
pub(super) fn access(d: &Dispatch) -> Access {
    let a = &d.args;
    let rows = a.n / a.out_cols.max(1);
    // An operand of `r × c` at `base` read at output element (row, col), broadcasting a
    // single row or column: row-local when it has the output's rows.
    let operand = |base: u32, r: u32, c: u32| Region {
        range: span(base, r * c),
        aligned: r * c == a.n && c == a.out_cols,
        rows: (r == rows).then_some((r, c)),
    };
    // Row `r` of a `rows × stride` block.
    let by_row = |base: u32, r: u32, stride: u32| Region {
        range: span(base, r * stride),
        aligned: false,
        rows: Some((r, stride)),
    };
    let whole = |base: u32, len: u32| Region {
        range: span(base, len),
        aligned: false,
        rows: None,
    };
    let same = Region {
        range: span(a.out, a.n),
        aligned: true,
        rows: Some((rows, a.out_cols)),
    };
    let elementwise = |reads: Vec<Region>| Access {
        reads,
        write: same.clone(),
        chainable: true,
        rows,
    };
    match d.kernel {
        // The verdict reads and writes the scratch and the report ring: after the graph.
        Kernel::Reduce if a.code == code::REDUCE_VERDICT => Access {
            reads: vec![whole(0, u32::MAX)],
            write: whole(0, u32::MAX),
            chainable: false,
            rows: 0,
        },
        Kernel::Reduce => Access {
            reads: vec![whole(a.a, a.a_rows * a.a_cols)],
            write: whole(a.out, a.n),
            chainable: false,
            rows: 0,
        },
        // After the graph, alone in its launch: touches everything.
        Kernel::Adam => Access {
            reads: vec![whole(0, u32::MAX)],
            write: whole(0, u32::MAX),
            chainable: false,
            rows: 0,
        },
        Kernel::Elementwise => match a.code {
            c if c < 32 => elementwise(vec![Region {
                range: span(a.a, a.n),
                ..same.clone()
            }]),
            code::WHERE => elementwise(vec![
                operand(a.a, a.a_rows, a.a_cols),
                operand(a.b, a.b_rows, a.b_cols),
                operand(a.c, a.c_rows, a.c_cols),
            ]),
            code::BROADCAST => elementwise(vec![operand(a.a, a.a_rows, a.a_cols)]),
            32..=37 => elementwise(vec![
                operand(a.a, a.a_rows, a.a_cols),
                operand(a.b, a.b_rows, a.b_cols),
            ]),
            code::COLS => elementwise(vec![by_row(a.a, rows, a.a_cols)]),
            code::PAD_COLS => elementwise(vec![by_row(a.a, rows, a.width)]),
            code::PERMUTE => elementwise(vec![by_row(a.a, rows, a.a_cols), whole(a.b, a.out_cols)]),
            code::SCATTER => elementwise(vec![by_row(a.a, rows, 1), by_row(a.b, rows, 1)]),
            // n = rows, one output column.
            code::GATHER => elementwise(vec![by_row(a.a, a.n, a.a_cols), by_row(a.b, a.n, 1)]),
            code::MATMUL => {
                let extent = |rs: u32, cs: u32, r: u32, c: u32| {
                    if r == 0 || c == 0 {
                        0
                    } else {
                        (r - 1) * rs + (c - 1) * cs + 1
                    }
                };
                // Untransposed, output row r reads only row r of A.
                let left = if a.a_cs == 1 && a.k <= a.a_rs {
                    by_row(a.a, rows, a.a_rs)
                } else {
                    whole(a.a, extent(a.a_rs, a.a_cs, rows, a.k))
                };
                let mut reads = vec![left, whole(a.b, extent(a.b_rs, a.b_cs, a.k, a.out_cols))];
                if a.has_bias != 0 {
                    reads.push(whole(a.bias, a.out_cols));
                }
                elementwise(reads)
            }
            // One part of a concatenation: n = rows · width.
            code::PLACE => {
                let part_rows = a.n / a.width.max(1);
                Access {
                    reads: vec![by_row(a.a, part_rows, a.width)],
                    write: by_row(a.out, part_rows, a.out_cols),
                    chainable: false,
                    rows: part_rows,
                }
            }
            code::COPY_IF_HEALTHY => Access {
                reads: vec![whole(0, u32::MAX)],
                write: whole(0, u32::MAX),
                chainable: false,
                rows: 0,
            },
            // Row-wise ops: a thread per row (n = rows) over a_cols columns.
            row_code => {
                let mut reads = vec![by_row(a.a, a.n, a.a_cols)];
                if row_code == code::BIN_INDEX {
                    reads.push(by_row(a.b, a.n, 1));
                }
                let wide = matches!(
                    row_code,
                    code::SOFTMAX | code::CUMSUM | code::CUMSUM_REVERSE
                );
                Access {
                    reads,
                    write: by_row(a.out, a.n, if wide { a.a_cols } else { 1 }),
                    chainable: false,
                    rows: a.n,
                }
            }
        },
    }
}

/// How a later dispatch depends on an earlier one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Hazard {
    None,
    /// Only through elements of the same index: the later one can run in the same thread.
    SameIndex,
    /// Only through the same rows: the later one can run in the same workgroup, after a
    /// barrier.
    SameRow,
    /// Any other overlap: the later one must wait for the whole earlier dispatch.
    Full,
}

fn touch(a: &Region, b: &Region, element_chain: bool) -> Hazard {
    if !overlaps(&a.range, &b.range) {
        Hazard::None
    } else if element_chain && a.aligned && b.aligned && a.range == b.range {
        Hazard::SameIndex
    } else if a.rows.is_some() && a.rows == b.rows && a.range.start == b.range.start {
        Hazard::SameRow
    } else {
        Hazard::Full
    }
}

pub(super) fn hazard(earlier: &Access, later: &Access) -> Hazard {
    let chain = earlier.chainable && later.chainable;
    let mut worst = touch(&earlier.write, &later.write, chain);
    for r in &later.reads {
        worst = worst.max(touch(&earlier.write, r, chain));
    }
    for r in &earlier.reads {
        worst = worst.max(touch(r, &later.write, chain));
    }
    worst
}
