//! Single-precision matrix products on strided views, over the `gemm` crate that Candle
//! itself uses (so no new code is built). Views are bounds-checked before the unsafe call.

pub(crate) use ::gemm::Parallelism;

pub(crate) use crate::matrix::MatRef;

/// A mutable row-major matrix view with rows `ld` apart.
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

impl<'a> MatMut<'a> {
    /// A dense row-major `rows × cols` matrix.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            ld: cols,
        }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.ld + self.cols <= self.data.len()
    }
}

/// The GEMM parallelism for a call made outside any parallel loop.
pub(crate) fn pool_parallelism() -> Parallelism {
    match super::threads() {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst = a × b`, or `dst += a × b` when `accumulate`.
pub(crate) fn matmul(dst: MatMut, a: MatRef, b: MatRef, accumulate: bool, par: Parallelism) {
    assert!(
        dst.rows == a.rows && dst.cols == b.cols && a.cols == b.rows,
        "matmul shapes: {}×{} = {}×{} · {}×{}",
        dst.rows,
        dst.cols,
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    assert!(
        dst.in_bounds() && a.in_bounds() && b.in_bounds(),
        "matmul view out of bounds"
    );
    let (m, n, k) = (dst.rows, dst.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst.data[r * dst.ld..r * dst.ld + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the three views were checked to lie inside their slices, `dst` is borrowed
    // mutably so it cannot alias `a` or `b`, and all dimensions are non-zero.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
