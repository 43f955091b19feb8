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

/// f32 multiply.
pub fn sgemm(g: Gemm<'_, f32>) {
    check(&g);
    if g.m == 0 || g.n == 0 {
        return;
    }
    // SAFETY: `check` proved every index the kernel touches lies inside the slices; `C` is a
    // unique borrow and so cannot alias `A` or `B`.
    unsafe {
        matrixmultiply::sgemm(
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

/// f64 multiply.
pub fn dgemm(g: Gemm<'_, f64>) {
    check(&g);
    if g.m == 0 || g.n == 0 {
        return;
    }
    // SAFETY: as in `sgemm`.
    unsafe {
        matrixmultiply::dgemm(
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
