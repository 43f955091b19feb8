//! CPU kernels, one per op. Each writes a node's whole output slice from its inputs' slices.

use super::Source;
use crate::engine::gemm::Gemm;
use crate::engine::graph::{Axis, Binary, Op, Shape, Unary, Var};
use crate::engine::real::Real;

/// What a kernel can read: every other buffer, and the parameters.
pub(super) struct Env<'a, T> {
    pub buffers: &'a [Vec<T>],
    pub sources: &'a [Source],
    pub shapes: &'a [Shape],
    pub params: &'a [T],
}

impl<T: Real> Env<'_, T> {
    fn get(&self, v: Var) -> &[T] {
        match self.sources[v.index()] {
            Source::Buffer(b) | Source::Transient(b) => &self.buffers[b as usize],
            Source::Param { offset } => {
                let start = offset as usize;
                &self.params[start..start + self.shapes[v.index()].len()]
            }
            // Compilation marks every input of a live node live.
            Source::Dead => &[],
        }
    }
    fn shape(&self, v: Var) -> Shape {
        self.shapes[v.index()]
    }
}

/// Computes `op` into `out`, with the widest vector instructions this CPU has.
///
/// Why: the portable build targets baseline x86-64 (SSE2), where the f32 `tanh` runs 4 lanes
/// wide; the same kernels compiled for AVX-512 or AVX2+FMA run 8–16 lanes wide. Each variant
/// is `execute` inlined into a function compiled with those features, chosen at run time.
pub(super) fn execute_dispatch<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if simd::has_avx512() {
            return simd::execute_avx512(env, op, shape, out);
        }
        if simd::has_avx2_fma() {
            return simd::execute_avx2(env, op, shape, out);
        }
    }
    execute(env, op, shape, out)
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod simd {
    use super::{Env, Op, Real, Shape, execute};

    pub fn has_avx512() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && has_avx2_fma()
    }

    pub fn has_avx2_fma() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
        execute(env, op, shape, out)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
        execute(env, op, shape, out)
    }

    pub fn execute_avx512<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
        debug_assert!(has_avx512(), "AVX-512 kernels on a CPU without AVX-512");
        // SAFETY: only called after `has_avx512()` confirmed the CPU supports every feature
        // the function was compiled with.
        unsafe { avx512(env, op, shape, out) }
    }

    pub fn execute_avx2<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
        debug_assert!(has_avx2_fma(), "AVX2 kernels on a CPU without AVX2 and FMA");
        // SAFETY: only called after `has_avx2_fma()` confirmed the features.
        unsafe { avx2(env, op, shape, out) }
    }
}

/// Computes `op` into `out` (of shape `shape`).
#[inline(always)]
pub(super) fn execute<T: Real>(env: &Env<'_, T>, op: &Op, shape: Shape, out: &mut [T]) {
    match op {
        Op::Input | Op::Param(_) | Op::Fill(_) | Op::Constant(_) => {}
        Op::Unary(f, x) => unary(*f, env.get(*x), out),
        Op::Binary(f, a, b) => binary(
            *f,
            env.get(*a),
            env.shape(*a),
            env.get(*b),
            env.shape(*b),
            shape,
            out,
        ),
        Op::MatMul {
            a,
            b,
            trans_a,
            trans_b,
        } => {
            let (sa, sb) = (env.shape(*a), env.shape(*b));
            let k = if *trans_a { sa.rows } else { sa.cols };
            let strides = |s: Shape, t: bool| if t { (1, s.cols) } else { (s.cols, 1) };
            let (ra, ca) = strides(sa, *trans_a);
            let (rb, cb) = strides(sb, *trans_b);
            T::gemm(Gemm {
                m: shape.rows,
                k,
                n: shape.cols,
                alpha: T::ONE,
                a: (env.get(*a), ra, ca),
                b: (env.get(*b), rb, cb),
                beta: T::ZERO,
                c: out,
            });
        }
        Op::Linear { x, w, b } => {
            let bias = env.get(*b);
            for row in out.chunks_exact_mut(shape.cols) {
                row.copy_from_slice(bias);
            }
            let sx = env.shape(*x);
            T::gemm(Gemm {
                m: shape.rows,
                k: sx.cols,
                n: shape.cols,
                alpha: T::ONE,
                a: (env.get(*x), sx.cols, 1),
                b: (env.get(*w), shape.cols, 1),
                beta: T::ONE,
                c: out,
            });
        }
        Op::Sum(axis, x) => sum(*axis, env.get(*x), env.shape(*x), out),
        Op::Broadcast(x) => {
            let (xs, src) = (env.shape(*x), env.get(*x));
            for (i, row) in out.chunks_exact_mut(shape.cols).enumerate() {
                let r = if xs.rows == 1 { 0 } else { i };
                if xs.cols == 1 {
                    row.fill(src[r]);
                } else {
                    row.copy_from_slice(&src[r * xs.cols..(r + 1) * xs.cols]);
                }
            }
        }
        Op::Cols { x, start } => {
            let xs = env.shape(*x);
            copy_columns(env.get(*x), xs.cols, *start, out, shape.cols, 0, shape.cols);
        }
        Op::PadCols { x, start } => {
            let xs = env.shape(*x);
            out.fill(T::ZERO);
            copy_columns(env.get(*x), xs.cols, 0, out, shape.cols, *start, xs.cols);
        }
        Op::Concat(xs) => {
            let mut start = 0;
            for &x in xs {
                let c = env.shape(x).cols;
                copy_columns(env.get(x), c, 0, out, shape.cols, start, c);
                start += c;
            }
        }
        Op::PermuteCols(x, perm) => {
            for (row, src) in out
                .chunks_exact_mut(shape.cols)
                .zip(env.get(*x).chunks_exact(shape.cols))
            {
                for (o, &p) in row.iter_mut().zip(perm) {
                    *o = src[p];
                }
            }
        }
        Op::Softmax(x) => {
            for (row, src) in out
                .chunks_exact_mut(shape.cols)
                .zip(env.get(*x).chunks_exact(shape.cols))
            {
                let max = row_max(src);
                // Exponentiate first, sum after: a running sum would serialise the loop.
                for (o, &v) in row.iter_mut().zip(src) {
                    *o = (v - max).exp();
                }
                let inv = T::ONE / crate::engine::gemm::sum(row);
                for o in row.iter_mut() {
                    *o *= inv;
                }
            }
        }
        Op::LogSumExp(x) => {
            let c = env.shape(*x).cols;
            for (o, src) in out.iter_mut().zip(env.get(*x).chunks_exact(c)) {
                let max = row_max(src);
                *o = if max.is_finite() {
                    let total = src.iter().fold(T::ZERO, |acc, &v| acc + (v - max).exp());
                    max + total.ln()
                } else {
                    max
                };
            }
        }
        Op::CumSum { x, reverse } => {
            for (row, src) in out
                .chunks_exact_mut(shape.cols)
                .zip(env.get(*x).chunks_exact(shape.cols))
            {
                let mut acc = T::ZERO;
                if *reverse {
                    for (o, &v) in row.iter_mut().zip(src).rev() {
                        acc += v;
                        *o = acc;
                    }
                } else {
                    for (o, &v) in row.iter_mut().zip(src) {
                        acc += v;
                        *o = acc;
                    }
                }
            }
        }
        Op::BinIndex { edges, x } => {
            let c = env.shape(*edges).cols;
            for ((o, e), &q) in out
                .iter_mut()
                .zip(env.get(*edges).chunks_exact(c))
                .zip(env.get(*x))
            {
                // Count the interior edges at or below q: the bin index, already in 0..K.
                let interior = &e[1..c - 1];
                let idx = interior.partition_point(|&edge| edge <= q);
                *o = T::from_f64(idx as f64);
            }
        }
        Op::Gather { x, index } => {
            let c = env.shape(*x).cols;
            for ((o, src), &i) in out
                .iter_mut()
                .zip(env.get(*x).chunks_exact(c))
                .zip(env.get(*index))
            {
                *o = src[column(i, c)];
            }
        }
        Op::Scatter { g, index } => {
            out.fill(T::ZERO);
            for ((row, &v), &i) in out
                .chunks_exact_mut(shape.cols)
                .zip(env.get(*g))
                .zip(env.get(*index))
            {
                row[column(i, shape.cols)] = v;
            }
        }
        Op::Where { mask, a, b } => {
            let (m, ms) = (env.get(*mask), env.shape(*mask));
            let (av, as_) = (env.get(*a), env.shape(*a));
            let (bv, bs) = (env.get(*b), env.shape(*b));
            let at = |v: &[T], s: Shape, i: usize, j: usize| {
                v[if s.rows == 1 { 0 } else { i } * s.cols + if s.cols == 1 { 0 } else { j }]
            };
            for i in 0..shape.rows {
                for j in 0..shape.cols {
                    let chosen = if at(m, ms, i, j) != T::ZERO {
                        at(av, as_, i, j)
                    } else {
                        at(bv, bs, i, j)
                    };
                    out[i * shape.cols + j] = chosen;
                }
            }
        }
    }
}

/// Copies `width` columns starting at `from` of `src` (`src_cols` wide) into columns starting
/// at `to` of `dst` (`dst_cols` wide), row by row. Narrow copies use plain element loops:
/// a `memcpy` call per row of one or two floats costs more than the copy.
#[inline(always)]
fn copy_columns<T: Real>(
    src: &[T],
    src_cols: usize,
    from: usize,
    dst: &mut [T],
    dst_cols: usize,
    to: usize,
    width: usize,
) {
    let rows = src
        .chunks_exact(src_cols)
        .zip(dst.chunks_exact_mut(dst_cols));
    match width {
        1 => rows.for_each(|(s, d)| d[to] = s[from]),
        2 => rows.for_each(|(s, d)| {
            d[to] = s[from];
            d[to + 1] = s[from + 1];
        }),
        _ => rows.for_each(|(s, d)| d[to..to + width].copy_from_slice(&s[from..from + width])),
    }
}

#[inline(always)]
fn column<T: Real>(i: T, cols: usize) -> usize {
    let i = i.to_f64();
    if i >= 0.0 {
        (i as usize).min(cols - 1)
    } else {
        0
    }
}

#[inline(always)]
fn row_max<T: Real>(row: &[T]) -> T {
    let mut max = T::from_f64(f64::NEG_INFINITY);
    for &v in row {
        if v > max {
            max = v;
        }
    }
    max
}

#[inline(always)]
fn unary<T: Real>(f: Unary, x: &[T], out: &mut [T]) {
    // Why generic and not `&dyn Fn`: a dynamic call per element blocks inlining and SIMD.
    #[inline(always)]
    fn map<T: Real>(x: &[T], out: &mut [T], g: impl Fn(T) -> T) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = g(v);
        }
    }
    let zero = T::ZERO;
    let one = T::ONE;
    match f {
        Unary::Tanh => T::tanh_slice(x, out),
        Unary::Exp => T::exp_slice(x, out),
        Unary::StopGradient => out.copy_from_slice(x),
        Unary::Neg => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = -v;
            }
        }
        Unary::Scale(c) => {
            let c = T::from_f64(c as f64);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = c * v;
            }
        }
        Unary::AddScalar(c) => {
            let c = T::from_f64(c as f64);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v + c;
            }
        }
        Unary::Square => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v * v;
            }
        }
        Unary::Log => map(x, out, |v| v.ln()),
        Unary::Softplus => map(x, out, |v| v.softplus()),
        Unary::Sigmoid => map(x, out, |v| one / (one + (-v).exp())),
        // Why `<=`: NaN compares false and passes through, so the divergence guard sees it.
        Unary::Relu => map(x, out, |v| if v <= zero { zero } else { v }),
        Unary::LeakyRelu(s) => {
            let s = T::from_f64(s as f64);
            map(x, out, |v| if v > zero { v } else { s * v })
        }
        Unary::Elu => map(x, out, |v| if v > zero { v } else { v.exp() - one }),
        Unary::Silu => map(x, out, |v| v / (one + (-v).exp())),
        Unary::Abs => map(x, out, |v| if v < zero { -v } else { v }),
        Unary::Sqrt => map(x, out, |v| v.sqrt()),
        Unary::Clamp(lo, hi) => {
            let (lo, hi) = (T::from_f64(lo as f64), T::from_f64(hi as f64));
            map(x, out, |v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
        }
        Unary::Step => map(x, out, |v| if v > zero { one } else { zero }),
        Unary::InRange(lo, hi) => {
            let (lo, hi) = (T::from_f64(lo as f64), T::from_f64(hi as f64));
            map(x, out, |v| if v >= lo && v <= hi { one } else { zero })
        }
        Unary::Sign => map(x, out, |v| {
            if v > zero {
                one
            } else if v < zero {
                -one
            } else {
                zero
            }
        }),
    }
}

#[inline(always)]
fn binary<T: Real>(f: Binary, a: &[T], sa: Shape, b: &[T], sb: Shape, s: Shape, out: &mut [T]) {
    match f {
        Binary::Add => zip_broadcast(a, sa, b, sb, s, out, |x, y| x + y),
        Binary::Sub => zip_broadcast(a, sa, b, sb, s, out, |x, y| x - y),
        Binary::Mul => zip_broadcast(a, sa, b, sb, s, out, |x, y| x * y),
        Binary::Div => zip_broadcast(a, sa, b, sb, s, out, |x, y| x / y),
        Binary::TanhGrad => zip_broadcast(a, sa, b, sb, s, out, |g, y| g * (T::ONE - y * y)),
        Binary::SigmoidGrad => zip_broadcast(a, sa, b, sb, s, out, |g, y| g * y * (T::ONE - y)),
    }
}

/// `out = f(a, b)` with rows/columns of size 1 repeated. Monomorphised per `f`, with a
/// contiguous fast path so the common same-shape case vectorises.
#[inline(always)]
fn zip_broadcast<T: Real>(
    a: &[T],
    sa: Shape,
    b: &[T],
    sb: Shape,
    s: Shape,
    out: &mut [T],
    f: impl Fn(T, T) -> T,
) {
    if sa == s && sb == s {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    for (i, row) in out.chunks_exact_mut(s.cols).enumerate() {
        let ra = if sa.rows == 1 { 0 } else { i };
        let rb = if sb.rows == 1 { 0 } else { i };
        let arow = &a[ra * sa.cols..(ra + 1) * sa.cols];
        let brow = &b[rb * sb.cols..(rb + 1) * sb.cols];
        match (sa.cols == s.cols, sb.cols == s.cols) {
            (true, true) => {
                for ((o, &x), &y) in row.iter_mut().zip(arow).zip(brow) {
                    *o = f(x, y);
                }
            }
            (true, false) => {
                let y = brow[0];
                for (o, &x) in row.iter_mut().zip(arow) {
                    *o = f(x, y);
                }
            }
            (false, true) => {
                let x = arow[0];
                for (o, &y) in row.iter_mut().zip(brow) {
                    *o = f(x, y);
                }
            }
            (false, false) => row.fill(f(arow[0], brow[0])),
        }
    }
}

#[inline(always)]
fn sum<T: Real>(axis: Axis, x: &[T], xs: Shape, out: &mut [T]) {
    match axis {
        Axis::Rows if xs.cols == 1 => out[0] = crate::engine::gemm::sum(x),
        Axis::Rows => {
            out.fill(T::ZERO);
            for row in x.chunks_exact(xs.cols) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
        }
        Axis::Cols => {
            for (o, row) in out.iter_mut().zip(x.chunks_exact(xs.cols)) {
                *o = row.iter().fold(T::ZERO, |acc, &v| acc + v);
            }
        }
        Axis::All => out[0] = crate::engine::gemm::sum(x),
    }
}
