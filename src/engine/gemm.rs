//! Strided matrix multiply, the engine's one hot kernel, delegated to `matrixmultiply`.
//!
//! Why a wrapper: `matrixmultiply` takes raw pointers. Here every call's extents are checked
//! against the slices first, so the one `unsafe` call in the engine is sound by construction.
#![allow(unsafe_code)]

/// One `C ← alpha·A·B + beta·C` call: `A` is `m×k`, `B` is `k×n`, `C` is `m×n`, each with a
/// row stride and a column stride in elements (a transpose is just swapped strides).
pub struct Gemm<'a, T> {
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Columns of `A`, rows of `B`.
    pub k: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
    /// Scale of the product.
    pub alpha: T,
    /// `A` and its (row, column) strides.
    pub a: (&'a [T], usize, usize),
    /// `B` and its (row, column) strides.
    pub b: (&'a [T], usize, usize),
    /// Scale of the previous `C` (0 overwrites, ignoring NaN in `C`).
    pub beta: T,
    /// `C`, row-major and contiguous (row stride `n`).
    pub c: &'a mut [T],
}

fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

fn check<T>(g: &Gemm<'_, T>) {
    assert!(
        g.a.0.len() >= extent(g.m, g.k, g.a.1, g.a.2),
        "gemm: A too short"
    );
    assert!(
        g.b.0.len() >= extent(g.k, g.n, g.b.1, g.b.2),
        "gemm: B too short"
    );
    assert!(g.c.len() >= g.m * g.n, "gemm: C too short");
}

/// Degenerate shapes (`k ≤ 2`, or an output only one to four columns wide) by direct loops.
/// Why: a packing GEMM pays its packing and edge handling for nothing on a `512×1 · 1×64`
/// product; these shapes are a third of a 2-D coupling flow's multiplies. Returns `false` when
/// the shape is not one of them.
#[inline(always)]
fn small_gemm<T: crate::engine::Real>(g: &mut Gemm<'_, T>) -> bool {
    const MAX: usize = 1024;
    let (m, k, n) = (g.m, g.k, g.n);
    let (a, rsa, csa) = g.a;
    let (b, rsb, csb) = g.b;
    let scale_c = |c: &mut [T], beta: T| {
        if beta == T::ZERO {
            c.fill(T::ZERO);
        } else if beta != T::ONE {
            c.iter_mut().for_each(|v| *v *= beta);
        }
    };
    if csb == 1 && (k <= 2 || (n >= 16 && m <= 2)) {
        // Rows of C as sums of scaled rows of B.
        for i in 0..m {
            let row = &mut g.c[i * n..(i + 1) * n];
            scale_c(row, g.beta);
            for p in 0..k {
                let s = g.alpha * a[i * rsa + p * csa];
                for (c, &bv) in row.iter_mut().zip(&b[p * rsb..p * rsb + n]) {
                    *c += s * bv;
                }
            }
        }
        return true;
    }
    if n <= 4 && k <= MAX && csa == 1 {
        // Dot products of A's contiguous rows with B's (gathered) columns.
        let mut columns = [T::ZERO; 4 * MAX];
        for j in 0..n {
            for p in 0..k {
                columns[j * k + p] = b[p * rsb + j * csb];
            }
        }
        for i in 0..m {
            let row = &a[i * rsa..i * rsa + k];
            for j in 0..n {
                let col = &columns[j * k..(j + 1) * k];
                let dot = dot(row, col);
                let c = &mut g.c[i * n + j];
                *c = if g.beta == T::ZERO {
                    g.alpha * dot
                } else {
                    g.beta * *c + g.alpha * dot
                };
            }
        }
        return true;
    }
    if n <= 4 && m <= MAX && rsa == 1 {
        // A's columns are contiguous (A is a transpose): accumulate Cᵀ column by column.
        let mut ct = [T::ZERO; 4 * MAX];
        for p in 0..k {
            let col = &a[p * csa..p * csa + m];
            for j in 0..n {
                let s = b[p * rsb + j * csb];
                for (c, &av) in ct[j * m..(j + 1) * m].iter_mut().zip(col) {
                    *c += s * av;
                }
            }
        }
        for i in 0..m {
            for j in 0..n {
                let c = &mut g.c[i * n + j];
                let v = g.alpha * ct[j * m + i];
                *c = if g.beta == T::ZERO {
                    v
                } else {
                    g.beta * *c + v
                };
            }
        }
        return true;
    }
    false
}

/// `Σ x_i·y_i` with eight independent partial sums. Why: a single running sum is a serial
/// dependency chain (float addition is not associative, so the compiler may not reorder it);
/// eight lanes let it vectorise.
#[inline(always)]
pub fn dot<T: crate::engine::Real>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut total = xr.iter().zip(yr).fold(T::ZERO, |s, (&a, &b)| s + a * b);
    for v in acc {
        total += v;
    }
    total
}

/// `Σ x_i` with eight independent partial sums (see [`dot`]).
#[inline(always)]
pub fn sum<T: crate::engine::Real>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let mut total = chunks.remainder().iter().fold(T::ZERO, |s, &a| s + a);
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    for v in acc {
        total += v;
    }
    total
}

/// The signature `matrixmultiply::{sgemm, dgemm}` share.
type StridedKernel<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// Checks the extents, takes the direct path for degenerate shapes, else calls `kernel`.
#[inline(always)]
fn multiply<T: crate::engine::Real>(mut g: Gemm<'_, T>, kernel: StridedKernel<T>) {
    check(&g);
    if g.m == 0 || g.n == 0 || small_gemm(&mut g) {
        return;
    }
    // SAFETY: `check` proved every index the kernel touches lies inside the slices; `C` is a
    // unique borrow and so cannot alias `A` or `B`.
    unsafe {
        kernel(
            g.m,
            g.k,
            g.n,
            g.alpha,
            g.a.0.as_ptr(),
            g.a.1 as isize,
            g.a.2 as isize,
            g.b.0.as_ptr(),
            g.b.1 as isize,
            g.b.2 as isize,
            g.beta,
            g.c.as_mut_ptr(),
            g.n as isize,
            1,
        );
    }
}

/// f32 multiply.
#[inline(always)]
pub fn sgemm(g: Gemm<'_, f32>) {
    multiply(g, matrixmultiply::sgemm);
}

/// f64 multiply.
#[inline(always)]
pub fn dgemm(g: Gemm<'_, f64>) {
    multiply(g, matrixmultiply::dgemm);
}
