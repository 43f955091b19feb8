//! The static computation graph: a list of primitive ops over batched row-major matrices.
//!
//! A model is built once per architecture and batch size; executors replay it every step.
//! Nodes are appended in topological order (an op's inputs always precede it), so execution
//! order is just node order. Gradients are more nodes of the same kinds (`autodiff.rs`), so
//! an executor needs only forward kernels and higher derivatives come for free.
//!
//! Building never panics: a shape mismatch is recorded as the graph's first error, a
//! placeholder node keeps the builder going, and `Graph::check` (called by every executor's
//! compile) reports it.

use super::params::ParamId;

/// A node of a graph (its index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub(crate) u32);

impl Var {
    /// The node index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
    /// The node with index `i` (for tools that walk a graph's nodes).
    pub fn from_index(i: usize) -> Self {
        Var(i as u32)
    }
}

/// A matrix shape: `rows` samples × `cols` features. Scalars are `1×1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
}

impl Shape {
    /// `rows × cols`.
    pub const fn new(rows: usize, cols: usize) -> Self {
        Self { rows, cols }
    }
    /// The `1×1` shape.
    pub const SCALAR: Shape = Shape::new(1, 1);
    /// Element count.
    pub fn len(self) -> usize {
        self.rows * self.cols
    }
    /// Whether the shape has no elements.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// Which axis a reduction sums over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Sum over rows: `r×c → 1×c` (e.g. a bias gradient).
    Rows,
    /// Sum over columns: `r×c → r×1` (e.g. a per-sample log-det).
    Cols,
    /// Sum of everything: `r×c → 1×1`.
    All,
}

/// Element-wise functions of one input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// `ln x`
    Log,
    /// `ln(1 + e^x)`
    Softplus,
    /// `tanh x`
    Tanh,
    /// `1 / (1 + e^{-x})`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `x` if `x > 0` else `slope·x`
    LeakyRelu(f32),
    /// `x` if `x > 0` else `e^x − 1`
    Elu,
    /// `x·sigmoid(x)`
    Silu,
    /// `x²`
    Square,
    /// `|x|`
    Abs,
    /// `√x`
    Sqrt,
    /// `min(max(x, lo), hi)`
    Clamp(f32, f32),
    /// `c·x`
    Scale(f32),
    /// `x + c`
    AddScalar(f32),
    /// `1` if `x > 0` else `0` (derivative zero: masks, relu gradients)
    Step,
    /// `1` if `lo ≤ x ≤ hi` else `0` (derivative zero: clamp gradients, spline tails)
    InRange(f32, f32),
    /// `sign(x)` (derivative zero)
    Sign,
    /// `x`, with no gradient flowing back: what lies behind it is left out of the backward
    /// pass (e.g. the bracketing steps of a root solve, whose gradient comes from Newton steps).
    StopGradient,
}

/// Element-wise functions of two inputs with broadcasting: each input's rows (and cols) equal
/// the output's or are 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b`
    Div,
    /// `g·(1 − y²)`: tanh's backward from its output `y` (fused: reuses the forward value).
    TanhGrad,
    /// `g·y·(1 − y)`: sigmoid's backward from its output `y`.
    SigmoidGrad,
}

/// A primitive operation. Inputs are earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Data the caller writes before each run (a batch, noise, probes).
    Input,
    /// A trainable parameter, read from the parameter store.
    Param(ParamId),
    /// A tensor filled with one value.
    Fill(f32),
    /// A constant tensor (row-major), e.g. a MADE mask.
    Constant(std::sync::Arc<Vec<f32>>),
    /// Element-wise unary function.
    Unary(Unary, Var),
    /// Element-wise binary function with broadcasting.
    Binary(Binary, Var, Var),
    /// `a·b` with optional transposes of either side.
    MatMul {
        /// Left factor.
        a: Var,
        /// Right factor.
        b: Var,
        /// Use `aᵀ`.
        trans_a: bool,
        /// Use `bᵀ`.
        trans_b: bool,
    },
    /// `x·w + b` with `b` a `1×n` row broadcast over rows (a dense layer, fused).
    Linear {
        /// Input `r×k`.
        x: Var,
        /// Weight `k×n`.
        w: Var,
        /// Bias `1×n`.
        b: Var,
    },
    /// Sum over an axis.
    Sum(Axis, Var),
    /// Repeat a `1×c`, `r×1` or `1×1` input to the node's shape.
    Broadcast(Var),
    /// Columns `start..start + len`.
    Cols {
        /// Input.
        x: Var,
        /// First column.
        start: usize,
    },
    /// Place `x` at columns `start..` of a zero matrix with the node's column count.
    PadCols {
        /// Input.
        x: Var,
        /// First column.
        start: usize,
    },
    /// Columns of the inputs side by side.
    Concat(Vec<Var>),
    /// Output column `j` is input column `perm[j]`.
    PermuteCols(Var, Vec<usize>),
    /// Row-wise softmax over columns.
    Softmax(Var),
    /// Row-wise `ln Σ_j e^{x_j}` (`r×c → r×1`).
    LogSumExp(Var),
    /// Row-wise inclusive cumulative sum over columns (`reverse`: from the right).
    CumSum {
        /// Input.
        x: Var,
        /// Accumulate right to left.
        reverse: bool,
    },
    /// Row-wise bin search: for sorted `edges` (`r×(K+1)`) and `x` (`r×1`), the index `i` in
    /// `0..K` with `edges[i] ≤ x < edges[i+1]`, clamped to the end bins. Derivative zero.
    BinIndex {
        /// Sorted bin edges per row.
        edges: Var,
        /// Query per row.
        x: Var,
    },
    /// Row-wise gather: `out[r] = x[r, index[r]]` (`r×1`).
    Gather {
        /// Values.
        x: Var,
        /// Column index per row (stored as a float).
        index: Var,
    },
    /// The adjoint of `Gather`: `out[r, index[r]] = g[r]`, zeros elsewhere.
    Scatter {
        /// Values `r×1`.
        g: Var,
        /// Column index per row.
        index: Var,
    },
    /// `mask ≠ 0 ? a : b`, element-wise with broadcasting.
    Where {
        /// Condition (0 / non-zero).
        mask: Var,
        /// Chosen where the mask holds.
        a: Var,
        /// Chosen elsewhere.
        b: Var,
    },
}

impl Op {
    /// The op's input nodes.
    pub fn inputs(&self) -> Vec<Var> {
        match self {
            Op::Input | Op::Param(_) | Op::Fill(_) | Op::Constant(_) => vec![],
            Op::Unary(_, x)
            | Op::Sum(_, x)
            | Op::Broadcast(x)
            | Op::Cols { x, .. }
            | Op::PadCols { x, .. }
            | Op::PermuteCols(x, _)
            | Op::Softmax(x)
            | Op::LogSumExp(x)
            | Op::CumSum { x, .. } => vec![*x],
            Op::Binary(_, a, b) | Op::MatMul { a, b, .. } => vec![*a, *b],
            Op::Linear { x, w, b } => vec![*x, *w, *b],
            Op::Concat(xs) => xs.clone(),
            Op::BinIndex { edges, x } => vec![*edges, *x],
            Op::Gather { x, index } => vec![*x, *index],
            Op::Scatter { g, index } => vec![*g, *index],
            Op::Where { mask, a, b } => vec![*mask, *a, *b],
        }
    }
}

/// One node: its op and output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What computes it.
    pub op: Op,
    /// Its shape.
    pub shape: Shape,
}

/// A graph under construction or ready to compile.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    error: Option<String>,
    param_nodes: Vec<(ParamId, Var)>,
}

/// A graph that could not be built (a shape mismatch, reported with the op that caused it).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("invalid model graph: {0}")]
pub struct GraphError(pub String);

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// All nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node of `v`.
    pub fn node(&self, v: Var) -> &Node {
        &self.nodes[v.index()]
    }

    /// The shape of `v`.
    pub fn shape(&self, v: Var) -> Shape {
        self.nodes[v.index()].shape
    }

    /// Ok, or the first error met while building.
    pub fn check(&self) -> Result<(), GraphError> {
        match &self.error {
            Some(e) => Err(GraphError(e.clone())),
            None => Ok(()),
        }
    }

    /// The parameter nodes, in the order they were first used.
    pub fn param_nodes(&self) -> &[(ParamId, Var)] {
        &self.param_nodes
    }

    pub(crate) fn push(&mut self, op: Op, shape: Shape) -> Var {
        let v = Var(self.nodes.len() as u32);
        self.nodes.push(Node { op, shape });
        v
    }

    fn fail(&mut self, msg: String, shape: Shape) -> Var {
        if self.error.is_none() {
            self.error = Some(msg);
        }
        self.push(Op::Fill(0.0), shape)
    }

    /// A `rows × cols` input the caller fills before each run.
    pub fn input(&mut self, rows: usize, cols: usize) -> Var {
        self.push(Op::Input, Shape::new(rows, cols))
    }

    /// The node of a parameter (one node per parameter, however often it is used).
    pub fn param(&mut self, id: ParamId, shape: Shape) -> Var {
        if let Some(&(_, v)) = self.param_nodes.iter().find(|(p, _)| *p == id) {
            return v;
        }
        let v = self.push(Op::Param(id), shape);
        self.param_nodes.push((id, v));
        v
    }

    /// A constant tensor.
    pub fn fill(&mut self, value: f32, rows: usize, cols: usize) -> Var {
        self.push(Op::Fill(value), Shape::new(rows, cols))
    }

    /// A constant `rows × cols` tensor with the given row-major values.
    pub fn constant(&mut self, rows: usize, cols: usize, values: Vec<f32>) -> Var {
        if values.len() != rows * cols {
            return self.fail(
                format!("constant of {} values for {rows}×{cols}", values.len()),
                Shape::new(rows, cols),
            );
        }
        self.push(
            Op::Constant(std::sync::Arc::new(values)),
            Shape::new(rows, cols),
        )
    }

    /// Element-wise unary op.
    pub fn unary(&mut self, f: Unary, x: Var) -> Var {
        let s = self.shape(x);
        self.push(Op::Unary(f, x), s)
    }

    /// Element-wise binary op with broadcasting.
    pub fn binary(&mut self, f: Binary, a: Var, b: Var) -> Var {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let dim = |x: usize, y: usize| {
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        };
        match (dim(sa.rows, sb.rows), dim(sa.cols, sb.cols)) {
            (Some(r), Some(c)) => self.push(Op::Binary(f, a, b), Shape::new(r, c)),
            _ => self.fail(format!("{f:?} of {sa:?} and {sb:?} cannot broadcast"), sa),
        }
    }

    /// `a·b` with optional transposes.
    pub fn matmul_t(&mut self, a: Var, b: Var, trans_a: bool, trans_b: bool) -> Var {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let (m, ka) = if trans_a {
            (sa.cols, sa.rows)
        } else {
            (sa.rows, sa.cols)
        };
        let (kb, n) = if trans_b {
            (sb.cols, sb.rows)
        } else {
            (sb.rows, sb.cols)
        };
        if ka != kb {
            return self.fail(
                format!("matmul of {sa:?} and {sb:?}: inner sizes differ"),
                sa,
            );
        }
        let op = Op::MatMul {
            a,
            b,
            trans_a,
            trans_b,
        };
        self.push(op, Shape::new(m, n))
    }

    /// `a·b`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        self.matmul_t(a, b, false, false)
    }

    /// A dense layer `x·w + b`.
    pub fn linear(&mut self, x: Var, w: Var, b: Var) -> Var {
        let (sx, sw, sb) = (self.shape(x), self.shape(w), self.shape(b));
        if sx.cols != sw.rows || sb != Shape::new(1, sw.cols) {
            return self.fail(format!("linear of {sx:?}, weight {sw:?}, bias {sb:?}"), sx);
        }
        self.push(Op::Linear { x, w, b }, Shape::new(sx.rows, sw.cols))
    }

    /// Sum over an axis.
    pub fn sum(&mut self, axis: Axis, x: Var) -> Var {
        let s = self.shape(x);
        let out = match axis {
            Axis::Rows => Shape::new(1, s.cols),
            Axis::Cols => Shape::new(s.rows, 1),
            Axis::All => Shape::SCALAR,
        };
        self.push(Op::Sum(axis, x), out)
    }

    /// Mean over an axis.
    pub fn mean(&mut self, axis: Axis, x: Var) -> Var {
        let s = self.shape(x);
        let n = match axis {
            Axis::Rows => s.rows,
            Axis::Cols => s.cols,
            Axis::All => s.len(),
        };
        let total = self.sum(axis, x);
        self.scale(total, 1.0 / n.max(1) as f32)
    }

    /// Repeat a row, column or scalar to `shape`.
    pub fn broadcast(&mut self, x: Var, shape: Shape) -> Var {
        let s = self.shape(x);
        let ok = (s.rows == shape.rows || s.rows == 1) && (s.cols == shape.cols || s.cols == 1);
        if !ok {
            return self.fail(format!("cannot broadcast {s:?} to {shape:?}"), shape);
        }
        if s == shape {
            return x;
        }
        self.push(Op::Broadcast(x), shape)
    }

    /// Columns `start..start + len`.
    pub fn cols(&mut self, x: Var, start: usize, len: usize) -> Var {
        let s = self.shape(x);
        if start + len > s.cols {
            return self.fail(format!("columns {start}..{} of {s:?}", start + len), s);
        }
        if start == 0 && len == s.cols {
            return x;
        }
        self.push(Op::Cols { x, start }, Shape::new(s.rows, len))
    }

    /// `x` placed at columns `start..` of a zero matrix with `total` columns.
    pub fn pad_cols(&mut self, x: Var, start: usize, total: usize) -> Var {
        let s = self.shape(x);
        if start + s.cols > total {
            return self.fail(format!("padding {s:?} at {start} into {total} columns"), s);
        }
        self.push(Op::PadCols { x, start }, Shape::new(s.rows, total))
    }

    /// Columns side by side.
    pub fn concat(&mut self, xs: &[Var]) -> Var {
        let Some(&first) = xs.first() else {
            return self.fail("concat of nothing".into(), Shape::SCALAR);
        };
        if xs.len() == 1 {
            return first;
        }
        let rows = self.shape(first).rows;
        if xs.iter().any(|&x| self.shape(x).rows != rows) {
            return self.fail(
                "concat of inputs with different row counts".into(),
                self.shape(first),
            );
        }
        let cols = xs.iter().map(|&x| self.shape(x).cols).sum();
        self.push(Op::Concat(xs.to_vec()), Shape::new(rows, cols))
    }

    /// Output column `j` is input column `perm[j]`.
    pub fn permute_cols(&mut self, x: Var, perm: &[usize]) -> Var {
        let s = self.shape(x);
        let mut seen = vec![false; s.cols];
        let valid = perm.len() == s.cols
            && perm
                .iter()
                .all(|&p| p < s.cols && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return self.fail(
                format!("{perm:?} is not a permutation of {} columns", s.cols),
                s,
            );
        }
        self.push(Op::PermuteCols(x, perm.to_vec()), s)
    }

    /// Row-wise softmax.
    pub fn softmax(&mut self, x: Var) -> Var {
        let s = self.shape(x);
        self.push(Op::Softmax(x), s)
    }

    /// Row-wise log-sum-exp.
    pub fn logsumexp(&mut self, x: Var) -> Var {
        let s = self.shape(x);
        self.push(Op::LogSumExp(x), Shape::new(s.rows, 1))
    }

    /// Row-wise cumulative sum.
    pub fn cumsum(&mut self, x: Var, reverse: bool) -> Var {
        let s = self.shape(x);
        self.push(Op::CumSum { x, reverse }, s)
    }

    /// Row-wise bin index of `x` (`r×1`) among sorted `edges` (`r×(K+1)`).
    pub fn bin_index(&mut self, edges: Var, x: Var) -> Var {
        let (se, sx) = (self.shape(edges), self.shape(x));
        if se.rows != sx.rows || sx.cols != 1 || se.cols < 2 {
            return self.fail(format!("bin index of {sx:?} in edges {se:?}"), sx);
        }
        self.push(Op::BinIndex { edges, x }, sx)
    }

    /// Row-wise gather `x[r, index[r]]`.
    pub fn gather(&mut self, x: Var, index: Var) -> Var {
        let (sx, si) = (self.shape(x), self.shape(index));
        if si != Shape::new(sx.rows, 1) {
            return self.fail(format!("gather from {sx:?} with index {si:?}"), si);
        }
        self.push(Op::Gather { x, index }, si)
    }

    /// The adjoint of gather: `g` (`r×1`) placed at `index` in an `r×cols` zero matrix.
    pub fn scatter(&mut self, g: Var, index: Var, cols: usize) -> Var {
        let (sg, si) = (self.shape(g), self.shape(index));
        if sg != si || sg.cols != 1 {
            return self.fail(format!("scatter of {sg:?} with index {si:?}"), sg);
        }
        self.push(Op::Scatter { g, index }, Shape::new(sg.rows, cols))
    }

    /// `mask ≠ 0 ? a : b`, broadcasting all three.
    pub fn select(&mut self, mask: Var, a: Var, b: Var) -> Var {
        let shapes = [self.shape(mask), self.shape(a), self.shape(b)];
        let rows = shapes.iter().map(|s| s.rows).max().unwrap_or(1);
        let cols = shapes.iter().map(|s| s.cols).max().unwrap_or(1);
        let fits = |s: &Shape| (s.rows == rows || s.rows == 1) && (s.cols == cols || s.cols == 1);
        if !shapes.iter().all(fits) {
            return self.fail(format!("select of {shapes:?} cannot broadcast"), shapes[1]);
        }
        self.push(Op::Where { mask, a, b }, Shape::new(rows, cols))
    }

    // Element-wise shorthands; the names read as the mathematics.

    /// `a + b`
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Add, a, b)
    }
    /// `a − b`
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Sub, a, b)
    }
    /// `a · b`
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Mul, a, b)
    }
    /// `a / b`
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Div, a, b)
    }
    /// `c·x`
    pub fn scale(&mut self, x: Var, c: f32) -> Var {
        self.unary(Unary::Scale(c), x)
    }
    /// `x + c`
    pub fn add_scalar(&mut self, x: Var, c: f32) -> Var {
        self.unary(Unary::AddScalar(c), x)
    }
    /// `−x`
    pub fn neg(&mut self, x: Var) -> Var {
        self.unary(Unary::Neg, x)
    }
    /// `e^x`
    pub fn exp(&mut self, x: Var) -> Var {
        self.unary(Unary::Exp, x)
    }
    /// `ln x`
    pub fn log(&mut self, x: Var) -> Var {
        self.unary(Unary::Log, x)
    }
    /// `tanh x`
    pub fn tanh(&mut self, x: Var) -> Var {
        self.unary(Unary::Tanh, x)
    }
    /// `sigmoid x`
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.unary(Unary::Sigmoid, x)
    }
    /// `ln(1 + e^x)`
    pub fn softplus(&mut self, x: Var) -> Var {
        self.unary(Unary::Softplus, x)
    }
    /// `x²`
    pub fn square(&mut self, x: Var) -> Var {
        self.unary(Unary::Square, x)
    }
}
