//! Lowering: each planned step becomes one or a few dispatches of the three kinds of work of
//! `kernels.wgsl`'s entry point, with every offset and shape resolved at compile time into
//! the dispatch's slot of the argument table. [`super::fuse`] then merges them into
//! launches, and a run replays the launches without looking at the graph.

use crate::engine::graph::{Axis, Binary, Op, Shape, Unary, Var};
use crate::engine::plan::Source;

/// One dispatch's slot of the argument table; the field order is `struct Args` in
/// kernels.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Args {
    pub code: u32,
    pub n: u32,
    pub out: u32,
    pub out_cols: u32,
    pub a: u32,
    pub a_rows: u32,
    pub a_cols: u32,
    pub b: u32,
    pub b_rows: u32,
    pub b_cols: u32,
    pub c: u32,
    pub c_rows: u32,
    pub c_cols: u32,
    pub k: u32,
    pub start: u32,
    pub width: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub bias: u32,
    pub has_bias: u32,
    pub pad: [u32; 2],
    pub f: [f32; 8],
}

/// What a dispatch's lane runs in kernels.wgsl's one entry point (`struct Lane`'s `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// One thread per element or row: element-wise ops, views, row-wise ops, matmuls.
    Elementwise,
    /// Fixed-order column sums, a workgroup per column.
    Reduce,
    /// The optimizer's update.
    Adam,
}

impl Kernel {
    /// Its `kind` in a lane record.
    pub fn kind(self) -> u32 {
        match self {
            Kernel::Elementwise => 0,
            Kernel::Reduce => 1,
            Kernel::Adam => 2,
        }
    }
}

/// One recorded dispatch.
#[derive(Clone, Debug)]
pub(crate) struct Dispatch {
    pub kernel: Kernel,
    /// Workgroups (split into a 2-D grid past 65,535 when encoded).
    pub groups: u32,
    pub args: Args,
    /// The node it computes, or one of the [`tag`]s past every node: what a run selects by.
    pub node: u32,
}

/// Dispatches that belong to no node, ordered as they run after the graph.
pub(crate) mod tag {
    /// Copies of placed values that no step computes in place.
    pub const AFTER_GRAPH: u32 = u32::MAX - 6;
    /// A step in parts: the first part's gradient and loss into the accumulator.
    pub const PART_FIRST: u32 = u32::MAX - 5;
    /// A later part's added to it.
    pub const PART_ADD: u32 = u32::MAX - 4;
    /// Their mean back into the gradient and the loss, for the optimizer.
    pub const PART_END: u32 = u32::MAX - 3;
    /// The gradient's norm, Adam and the finite checks.
    pub const OPTIMIZER: u32 = u32::MAX - 2;
    /// Copying the training state to its snapshot (a submission of its own).
    pub const SNAPSHOT: u32 = u32::MAX - 1;
    /// Copying it back.
    pub const RESTORE: u32 = u32::MAX;
}

/// The op codes of kernels.wgsl.
pub(crate) mod code {
    pub const COPY: u32 = 19;
    pub const WHERE: u32 = 38;
    pub const BROADCAST: u32 = 39;
    pub const COLS: u32 = 48;
    pub const PAD_COLS: u32 = 49;
    pub const PLACE: u32 = 50;
    pub const PERMUTE: u32 = 51;
    pub const SCATTER: u32 = 52;
    pub const GATHER: u32 = 53;
    pub const SOFTMAX: u32 = 64;
    pub const LOG_SUM_EXP: u32 = 65;
    pub const CUMSUM: u32 = 66;
    pub const CUMSUM_REVERSE: u32 = 67;
    pub const BIN_INDEX: u32 = 68;
    pub const SUM_COLS: u32 = 69;
    pub const MATMUL: u32 = 80;
    /// A copy skipped once a step diverged (the snapshot).
    pub const COPY_IF_HEALTHY: u32 = 82;
    /// `reduce`: plain sums, sums of squares, and a training step's verdict (the count of
    /// non-finite parameters, then its report into the ring and the sticky divergence flag).
    pub const REDUCE_SUM: u32 = 0;
    pub const REDUCE_SQUARES: u32 = 1;
    pub const REDUCE_VERDICT: u32 = 2;
}

fn unary_code(f: Unary) -> (u32, [f32; 2]) {
    match f {
        Unary::Neg => (0, [0.0; 2]),
        Unary::Exp => (1, [0.0; 2]),
        Unary::Log => (2, [0.0; 2]),
        Unary::Softplus => (3, [0.0; 2]),
        Unary::Tanh => (4, [0.0; 2]),
        Unary::Sigmoid => (5, [0.0; 2]),
        Unary::Relu => (6, [0.0; 2]),
        Unary::LeakyRelu(s) => (7, [s, 0.0]),
        Unary::Elu => (8, [0.0; 2]),
        Unary::Silu => (9, [0.0; 2]),
        Unary::Square => (10, [0.0; 2]),
        Unary::Abs => (11, [0.0; 2]),
        Unary::Sqrt => (12, [0.0; 2]),
        Unary::Clamp(lo, hi) => (13, [lo, hi]),
        Unary::Scale(c) => (14, [c, 0.0]),
        Unary::AddScalar(c) => (15, [c, 0.0]),
        Unary::Step => (16, [0.0; 2]),
        Unary::InRange(lo, hi) => (17, [lo, hi]),
        Unary::Sign => (18, [0.0; 2]),
        Unary::StopGradient => (code::COPY, [0.0; 2]),
    }
}

fn binary_code(f: Binary) -> u32 {
    match f {
        Binary::Add => 32,
        Binary::Sub => 33,
        Binary::Mul => 34,
        Binary::Div => 35,
        Binary::TanhGrad => 36,
        Binary::SigmoidGrad => 37,
    }
}

/// Workgroups for `threads` threads of 256.
pub(crate) fn groups_for(threads: usize) -> u32 {
    threads.div_ceil(256).max(1) as u32
}

/// What lowering reads: where each node's value lives, and its shape.
pub(crate) struct Lowering<'a> {
    pub sources: &'a [Source],
    pub shapes: &'a [Shape],
    /// Offset of each planned buffer in the storage buffer.
    pub buffer_offsets: &'a [u32],
    /// Offset of the flat parameters.
    pub params: u32,
    /// Offset where `aux` begins (after everything else).
    pub aux_base: u32,
    /// Constants lowering itself needs (a permutation's indices), appended after the layout.
    pub aux: Vec<f32>,
}

impl Lowering<'_> {
    /// Where `v`'s value starts.
    pub fn offset(&self, v: Var) -> u32 {
        match self.sources[v.index()] {
            Source::Param { offset } => self.params + offset,
            Source::Buffer(b) | Source::Transient(b) => self.buffer_offsets[b as usize],
            // Planning marks every input of a live node live.
            Source::Dead => 0,
        }
    }

    fn shape(&self, v: Var) -> Shape {
        self.shapes[v.index()]
    }

    /// An operand's offset, rows and columns.
    fn operand(&self, v: Var) -> (u32, u32, u32) {
        let s = self.shape(v);
        (self.offset(v), s.rows as u32, s.cols as u32)
    }

    /// The dispatches computing `op` (output `shape`) into `out`.
    pub fn lower(&mut self, node: u32, op: &Op, shape: Shape, out: u32) -> Vec<Dispatch> {
        let len = shape.len();
        let elementwise = |args: Args, threads: usize| Dispatch {
            kernel: Kernel::Elementwise,
            groups: groups_for(threads),
            args,
            node,
        };
        let base = Args {
            n: len as u32,
            out,
            out_cols: shape.cols as u32,
            ..Args::default()
        };
        let row_op = |code: u32, x: Var, this: &Self| {
            let (a, _, a_cols) = this.operand(x);
            let args = Args {
                code,
                n: shape.rows as u32,
                a,
                a_cols,
                ..base
            };
            elementwise(args, shape.rows)
        };
        match op {
            Op::Input | Op::Param(_) | Op::Fill(_) | Op::Constant(_) => vec![],
            Op::Unary(f, x) => {
                let (code, [f0, f1]) = unary_code(*f);
                let args = Args {
                    code,
                    a: self.offset(*x),
                    f: [f0, f1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Binary(f, a, b) => {
                let ((a, a_rows, a_cols), (b, b_rows, b_cols)) =
                    (self.operand(*a), self.operand(*b));
                let args = Args {
                    code: binary_code(*f),
                    a,
                    a_rows,
                    a_cols,
                    b,
                    b_rows,
                    b_cols,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Where { mask, a, b } => {
                let (m, m_rows, m_cols) = self.operand(*mask);
                let ((a, a_rows, a_cols), (b, b_rows, b_cols)) =
                    (self.operand(*a), self.operand(*b));
                let args = Args {
                    code: code::WHERE,
                    a: m,
                    a_rows: m_rows,
                    a_cols: m_cols,
                    b: a,
                    b_rows: a_rows,
                    b_cols: a_cols,
                    c: b,
                    c_rows: b_rows,
                    c_cols: b_cols,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Broadcast(x) => {
                let (a, a_rows, a_cols) = self.operand(*x);
                let args = Args {
                    code: code::BROADCAST,
                    a,
                    a_rows,
                    a_cols,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::MatMul {
                a,
                b,
                trans_a,
                trans_b,
            } => {
                let (sa, sb) = (self.shape(*a), self.shape(*b));
                let k = if *trans_a { sa.rows } else { sa.cols };
                let strides = |s: Shape, t: bool| {
                    if t {
                        (1, s.cols as u32)
                    } else {
                        (s.cols as u32, 1)
                    }
                };
                // A is read as m×k, B as k×n: (row stride, column stride) of each as used.
                let (a_rs, a_cs) = strides(sa, *trans_a);
                let (b_rs, b_cs) = strides(sb, *trans_b);
                let args = Args {
                    code: code::MATMUL,
                    a: self.offset(*a),
                    b: self.offset(*b),
                    k: k as u32,
                    a_rs,
                    a_cs,
                    b_rs,
                    b_cs,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Linear { x, w, b } => {
                let sx = self.shape(*x);
                let args = Args {
                    code: code::MATMUL,
                    a: self.offset(*x),
                    b: self.offset(*w),
                    k: sx.cols as u32,
                    a_rs: sx.cols as u32,
                    a_cs: 1,
                    b_rs: shape.cols as u32,
                    b_cs: 1,
                    bias: self.offset(*b),
                    has_bias: 1,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Sum(Axis::Cols, x) => vec![row_op(code::SUM_COLS, *x, self)],
            Op::Sum(axis, x) => {
                let (a, rows, cols) = self.operand(*x);
                // Sum(All) is one column of every element.
                let (a_rows, a_cols) = match axis {
                    Axis::All => (rows * cols, 1),
                    _ => (rows, cols),
                };
                vec![reduce(node, code::REDUCE_SUM, a, a_rows, a_cols, out)]
            }
            Op::Cols { x, start } => {
                let (a, _, a_cols) = self.operand(*x);
                let args = Args {
                    code: code::COLS,
                    a,
                    a_cols,
                    start: *start as u32,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::PadCols { x, start } => {
                let (a, _, width) = self.operand(*x);
                let args = Args {
                    code: code::PAD_COLS,
                    a,
                    start: *start as u32,
                    width,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Concat(parts) => {
                let mut start = 0u32;
                parts
                    .iter()
                    .map(|&x| {
                        let (a, rows, width) = self.operand(x);
                        let args = Args {
                            code: code::PLACE,
                            n: rows * width,
                            a,
                            start,
                            width,
                            ..base
                        };
                        start += width;
                        elementwise(args, (rows * width) as usize)
                    })
                    .collect()
            }
            Op::PermuteCols(x, perm) => {
                let (a, _, a_cols) = self.operand(*x);
                let b = self.aux_base + self.aux.len() as u32;
                self.aux.extend(perm.iter().map(|&p| p as f32));
                let args = Args {
                    code: code::PERMUTE,
                    a,
                    a_cols,
                    b,
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Softmax(x) => vec![row_op(code::SOFTMAX, *x, self)],
            Op::LogSumExp(x) => vec![row_op(code::LOG_SUM_EXP, *x, self)],
            Op::CumSum { x, reverse } => {
                let code = if *reverse {
                    code::CUMSUM_REVERSE
                } else {
                    code::CUMSUM
                };
                vec![row_op(code, *x, self)]
            }
            Op::BinIndex { edges, x } => {
                let mut d = row_op(code::BIN_INDEX, *edges, self);
                d.args.b = self.offset(*x);
                vec![d]
            }
            Op::Gather { x, index } => {
                let (a, _, a_cols) = self.operand(*x);
                let args = Args {
                    code: code::GATHER,
                    a,
                    a_cols,
                    b: self.offset(*index),
                    ..base
                };
                vec![elementwise(args, len)]
            }
            Op::Scatter { g, index } => {
                let args = Args {
                    code: code::SCATTER,
                    a: self.offset(*g),
                    b: self.offset(*index),
                    ..base
                };
                vec![elementwise(args, len)]
            }
        }
    }
}

/// A fixed-order column reduction of an `a_rows × a_cols` block at `a` into `out..out+a_cols`.
pub(crate) fn reduce(node: u32, code: u32, a: u32, a_rows: u32, a_cols: u32, out: u32) -> Dispatch {
    Dispatch {
        kernel: Kernel::Reduce,
        groups: a_cols.max(1),
        args: Args {
            code,
            n: a_cols,
            out,
            a,
            a_rows,
            a_cols,
            ..Args::default()
        },
        node,
    }
}

/// `out[i] = a[i] + b[i]` for `len` elements.
pub(crate) fn add(node: u32, a: u32, b: u32, out: u32, len: usize) -> Dispatch {
    let n = len as u32;
    Dispatch {
        kernel: Kernel::Elementwise,
        groups: groups_for(len),
        args: Args {
            code: binary_code(Binary::Add),
            n,
            out,
            out_cols: 1,
            a,
            a_rows: n,
            a_cols: 1,
            b,
            b_rows: n,
            b_cols: 1,
            ..Args::default()
        },
        node,
    }
}

/// `out[i] = c·src[i]` for `len` elements.
pub(crate) fn scale(node: u32, src: u32, out: u32, len: usize, c: f32) -> Dispatch {
    let mut d = copy(node, src, out, len);
    d.args.code = unary_code(Unary::Scale(c)).0;
    d.args.f[0] = c;
    d
}

/// `out[i] = src[i]` for `len` elements.
pub(crate) fn copy(node: u32, src: u32, out: u32, len: usize) -> Dispatch {
    Dispatch {
        kernel: Kernel::Elementwise,
        groups: groups_for(len),
        args: Args {
            code: code::COPY,
            n: len as u32,
            out,
            a: src,
            out_cols: 1,
            ..Args::default()
        },
        node,
    }
}
