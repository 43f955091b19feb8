//! Reverse-mode automatic differentiation by graph transformation.
//!
//! `grad` walks the graph backwards from a scalar and appends, for every node on a path from
//! the parameters to the loss, the ops that compute its adjoint. The backward pass is thus
//! ordinary graph nodes: any executor runs it with the forward kernels, and differentiating
//! it again (CNF training through a Jacobian trace, gradient penalties) just works.

use super::graph::{Axis, Binary, Graph, Op, Shape, Unary, Var};

impl Graph {
    /// `∂loss/∂wrt[i]` for a `1×1` `loss`; a zero tensor where `loss` does not depend on it.
    pub fn grad(&mut self, loss: Var, wrt: &[Var]) -> Vec<Var> {
        let seed = self.fill(1.0, 1, 1);
        self.vjp(loss, seed, wrt)
    }

    /// The vector–Jacobian product `seedᵀ·∂output/∂wrt[i]` for each `wrt[i]`.
    pub fn vjp(&mut self, output: Var, seed: Var, wrt: &[Var]) -> Vec<Var> {
        let n = output.index() + 1;
        // Forward sweep: which nodes depend on something we differentiate with respect to.
        let mut needs = vec![false; n];
        for &w in wrt {
            if w.index() < n {
                needs[w.index()] = true;
            }
        }
        for i in 0..n {
            if !needs[i] {
                needs[i] = self.nodes[i].op.inputs().iter().any(|x| needs[x.index()]);
            }
        }
        let mut adjoint: Vec<Option<Var>> = vec![None; n];
        adjoint[output.index()] = Some(seed);
        for i in (0..n).rev() {
            let (Some(g), true) = (adjoint[i], needs[i]) else {
                continue;
            };
            let v = Var(i as u32);
            let op = self.nodes[i].op.clone();
            for (input, contribution) in self.backward(&op, v, g) {
                if !needs[input.index()] {
                    continue;
                }
                let summed = match adjoint[input.index()] {
                    Some(prev) => self.add(prev, contribution),
                    None => contribution,
                };
                adjoint[input.index()] = Some(summed);
            }
        }
        wrt.iter()
            .map(|&w| match adjoint.get(w.index()).copied().flatten() {
                Some(g) => g,
                None => {
                    let s = self.shape(w);
                    self.fill(0.0, s.rows, s.cols)
                }
            })
            .collect()
    }

    /// Sums a broadcast gradient back down to `shape`.
    fn reduce_to(&mut self, g: Var, shape: Shape) -> Var {
        let gs = self.shape(g);
        let mut out = g;
        if gs.rows != shape.rows {
            out = self.sum(Axis::Rows, out);
        }
        if gs.cols != shape.cols {
            out = self.sum(Axis::Cols, out);
        }
        out
    }

    /// The contributions of node `v = op(inputs)` with adjoint `g` to its inputs' adjoints.
    fn backward(&mut self, op: &Op, v: Var, g: Var) -> Vec<(Var, Var)> {
        match *op {
            Op::Input | Op::Param(_) | Op::Fill(_) | Op::Constant(_) => vec![],
            Op::Unary(f, x) => self
                .unary_backward(f, x, v, g)
                .map(|d| (x, d))
                .into_iter()
                .collect(),
            Op::Binary(f, a, b) => {
                let (ga, gb) = self.binary_backward(f, a, b, v, g);
                let (sa, sb) = (self.shape(a), self.shape(b));
                let ga = self.reduce_to(ga, sa);
                let gb = self.reduce_to(gb, sb);
                vec![(a, ga), (b, gb)]
            }
            Op::MatMul {
                a,
                b,
                trans_a,
                trans_b,
            } => {
                let ga = if trans_a {
                    self.matmul_t(b, g, trans_b, true)
                } else {
                    self.matmul_t(g, b, false, !trans_b)
                };
                let gb = if trans_b {
                    self.matmul_t(g, a, true, trans_a)
                } else {
                    self.matmul_t(a, g, !trans_a, false)
                };
                vec![(a, ga), (b, gb)]
            }
            Op::Linear { x, w, b } => {
                let gx = self.matmul_t(g, w, false, true);
                let gw = self.matmul_t(x, g, true, false);
                let gb = self.sum(Axis::Rows, g);
                vec![(x, gx), (w, gw), (b, gb)]
            }
            Op::Sum(_, x) => {
                let s = self.shape(x);
                vec![(x, self.broadcast(g, s))]
            }
            Op::Broadcast(x) => {
                let s = self.shape(x);
                vec![(x, self.reduce_to(g, s))]
            }
            Op::Cols { x, start } => {
                let total = self.shape(x).cols;
                vec![(x, self.pad_cols(g, start, total))]
            }
            Op::PadCols { x, start } => {
                let len = self.shape(x).cols;
                vec![(x, self.cols(g, start, len))]
            }
            Op::Concat(ref xs) => {
                let mut start = 0;
                let mut out = Vec::with_capacity(xs.len());
                for &x in xs {
                    let len = self.shape(x).cols;
                    out.push((x, self.cols(g, start, len)));
                    start += len;
                }
                out
            }
            Op::PermuteCols(x, ref perm) => {
                let mut inverse = vec![0; perm.len()];
                for (j, &p) in perm.iter().enumerate() {
                    inverse[p] = j;
                }
                vec![(x, self.permute_cols(g, &inverse))]
            }
            Op::Softmax(x) => {
                // ∂x = y ⊙ (g − Σ_j g_j y_j)
                let gy = self.mul(g, v);
                let total = self.sum(Axis::Cols, gy);
                let centred = self.sub(g, total);
                vec![(x, self.mul(v, centred))]
            }
            Op::LogSumExp(x) => {
                let y = self.softmax(x);
                vec![(x, self.mul(y, g))]
            }
            Op::CumSum { x, reverse } => vec![(x, self.cumsum(g, !reverse))],
            Op::BinIndex { .. } => vec![],
            Op::Gather { x, index } => {
                let cols = self.shape(x).cols;
                vec![(x, self.scatter(g, index, cols))]
            }
            Op::Scatter { g: inner, index } => vec![(inner, self.gather(g, index))],
            Op::Where { mask, a, b } => {
                let zero = self.fill(0.0, 1, 1);
                let ga = self.select(mask, g, zero);
                let gb = self.select(mask, zero, g);
                let (sa, sb) = (self.shape(a), self.shape(b));
                let ga = self.reduce_to(ga, sa);
                let gb = self.reduce_to(gb, sb);
                vec![(a, ga), (b, gb)]
            }
        }
    }

    fn unary_backward(&mut self, f: Unary, x: Var, y: Var, g: Var) -> Option<Var> {
        Some(match f {
            Unary::Neg => self.neg(g),
            Unary::Exp => self.mul(g, y),
            Unary::Log => self.div(g, x),
            Unary::Softplus => {
                let s = self.sigmoid(x);
                self.mul(g, s)
            }
            Unary::Tanh => self.binary(Binary::TanhGrad, g, y),
            Unary::Sigmoid => self.binary(Binary::SigmoidGrad, g, y),
            Unary::Relu => {
                // From the output, as tanh's: y > 0 exactly where x > 0, and the backward pass
                // then keeps no pre-activation alive (the memory budget of a tanh MLP).
                let step = self.unary(Unary::Step, y);
                self.mul(g, step)
            }
            Unary::LeakyRelu(slope) => {
                let step = self.unary(Unary::Step, x);
                let d = self.scale(step, 1.0 - slope);
                let d = self.add_scalar(d, slope);
                self.mul(g, d)
            }
            Unary::Elu => {
                // d/dx = 1 for x > 0, e^x = y + 1 otherwise.
                let step = self.unary(Unary::Step, x);
                let one = self.fill(1.0, 1, 1);
                let below = self.add_scalar(y, 1.0);
                let d = self.select(step, one, below);
                self.mul(g, d)
            }
            Unary::Silu => {
                // d/dx = σ(x)·(1 + x·(1 − σ(x)))
                let s = self.sigmoid(x);
                let one_minus = self.neg(s);
                let one_minus = self.add_scalar(one_minus, 1.0);
                let t = self.mul(x, one_minus);
                let t = self.add_scalar(t, 1.0);
                let d = self.mul(s, t);
                self.mul(g, d)
            }
            Unary::Square => {
                let two_x = self.scale(x, 2.0);
                self.mul(g, two_x)
            }
            Unary::Abs => {
                let sign = self.unary(Unary::Sign, x);
                self.mul(g, sign)
            }
            Unary::Sqrt => {
                let two_y = self.scale(y, 2.0);
                self.div(g, two_y)
            }
            Unary::Clamp(lo, hi) => {
                let inside = self.unary(Unary::InRange(lo, hi), x);
                self.mul(g, inside)
            }
            Unary::Scale(c) => self.scale(g, c),
            Unary::AddScalar(_) => g,
            Unary::Step | Unary::InRange(..) | Unary::Sign | Unary::StopGradient => return None,
        })
    }

    fn binary_backward(&mut self, f: Binary, a: Var, b: Var, y: Var, g: Var) -> (Var, Var) {
        match f {
            Binary::Add => (g, g),
            Binary::Sub => (g, self.neg(g)),
            Binary::Mul => (self.mul(g, b), self.mul(g, a)),
            Binary::Div => {
                // ∂a = g / b;  ∂b = −g·(a/b) / b
                let ga = self.div(g, b);
                let gy = self.mul(g, y);
                let gb = self.div(gy, b);
                (ga, self.neg(gb))
            }
            Binary::TanhGrad => {
                // y = a·(1 − b²): ∂a = g·(1 − b²), ∂b = −2·g·a·b
                let ga = self.binary(Binary::TanhGrad, g, b);
                let gab = self.mul(g, a);
                let gab = self.mul(gab, b);
                (ga, self.scale(gab, -2.0))
            }
            Binary::SigmoidGrad => {
                // y = a·b·(1 − b): ∂a = g·b·(1 − b), ∂b = g·a·(1 − 2b)
                let ga = self.binary(Binary::SigmoidGrad, g, b);
                let ga_ = self.mul(g, a);
                let d = self.scale(b, -2.0);
                let d = self.add_scalar(d, 1.0);
                (ga, self.mul(ga_, d))
            }
        }
    }
}
