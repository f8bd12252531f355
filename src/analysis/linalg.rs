//! Dense kernels shared by the metrics and the embeddings: matrix products of
//! row-major (or strided) buffers through nalgebra's `gemm`, which hands large
//! products to `matrixmultiply`, split into row blocks across the rayon pool; plus
//! a few vector helpers written so that LLVM vectorises them.
//!
//! Every parallel split here is by a fixed block layout and every reduction runs in
//! a fixed order, so results do not depend on thread scheduling.

use nalgebra::{DMatrixView, DMatrixViewMut, RealField};
use rayon::prelude::*;

pub(crate) use crate::matrix::MatRef as Operand;

/// `a · b` as a new row-major `a.rows × b.cols` buffer, computed block-row-wise in
/// parallel.
pub(crate) fn matmul<T>(a: Operand<'_, T>, b: Operand<'_, T>) -> Vec<T>
where
    T: RealField + Copy,
{
    assert_eq!(a.cols, b.rows, "matmul: inner dimensions differ");
    let (rows, cols) = (a.rows, b.cols);
    let mut out = vec![T::zero(); rows * cols];
    if rows == 0 || cols == 0 || a.cols == 0 {
        return out;
    }
    let block = block_rows(rows, a.cols * cols);
    out.par_chunks_mut(block * cols)
        .enumerate()
        .for_each(|(bi, out_block)| {
            let count = out_block.len() / cols;
            let a_block = a.rows_block(bi * block, count);
            if count.min(cols).min(a.cols) <= NALGEBRA_SMALL_DIM {
                naive_product(a_block, b, out_block);
                return;
            }
            let a_view = DMatrixView::from_slice_with_strides(
                a_block.data,
                a_block.rows,
                a_block.cols,
                a_block.rs,
                a_block.cs,
            );
            let b_view = DMatrixView::from_slice_with_strides(b.data, b.rows, b.cols, b.rs, b.cs);
            let mut c_view =
                DMatrixViewMut::from_slice_with_strides_mut(out_block, count, cols, cols, 1);
            c_view.gemm(T::one(), &a_view, &b_view, T::zero());
        });
    out
}

/// nalgebra's `gemm` leaves products with a dimension this small to its own
/// loops, which mis-handle row-major (non-unit row stride) output views; such thin
/// products go through `naive_product` instead.
const NALGEBRA_SMALL_DIM: usize = 5;

/// `out = a · b` by plain loops, for thin products.
fn naive_product<T: RealField + Copy>(a: Operand<'_, T>, b: Operand<'_, T>, out: &mut [T]) {
    let cols = b.cols;
    for i in 0..a.rows {
        let row = &mut out[i * cols..(i + 1) * cols];
        row.iter_mut().for_each(|v| *v = T::zero());
        for t in 0..a.cols {
            let ait = a.data[i * a.rs + t * a.cs];
            for (j, v) in row.iter_mut().enumerate() {
                *v += ait * b.data[t * b.rs + j * b.cs];
            }
        }
    }
}

/// Rows per parallel block: several blocks per thread for balance, but big enough
/// that each block's product amortises `matrixmultiply`'s packing.
fn block_rows(rows: usize, work_per_row: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_balance = rows.div_ceil(threads * 4);
    let min_rows = (1 << 16) / work_per_row.max(1);
    by_balance.max(min_rows).clamp(1, rows.max(1))
}

/// Dot product of two equally long slices, with eight independent accumulators so
/// the loop vectorises.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += alpha * x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Per-column means of a row-major `n × d` buffer, in f64.
pub(crate) fn column_means(data: &[f32], n: usize, d: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; d];
    for row in data.chunks_exact(d.max(1)).take(n) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    let scale = if n == 0 { 0.0 } else { 1.0 / n as f64 };
    sums.iter_mut().for_each(|s| *s *= scale);
    sums
}

/// A copy of a row-major `n × d` buffer with `means` subtracted from every row.
pub(crate) fn centred(data: &[f32], d: usize, means: &[f64]) -> Vec<f32> {
    let means32: Vec<f32> = means.iter().map(|&m| m as f32).collect();
    let mut out = data.to_vec();
    out.par_chunks_mut(d.max(1)).for_each(|row| {
        for (v, m) in row.iter_mut().zip(&means32) {
            *v -= m;
        }
    });
    out
}

/// Pairwise squared Euclidean distances between the rows of a row-major `n × d`
/// buffer, as a row-major `n × n` matrix with an exact zero diagonal.
///
/// Uses `‖a‖² + ‖b‖² − 2a·b` on mean-centred rows (centring keeps the norms small,
/// which limits cancellation in f32), clamped at zero.
pub(crate) fn pairwise_sq_distances(data: &[f32], n: usize, d: usize) -> Vec<f32> {
    let means = column_means(data, n, d);
    let z = centred(data, d, &means);
    let norms: Vec<f32> = z.chunks_exact(d.max(1)).map(|r| dot(r, r)).collect();
    let op = Operand::new(&z, n, d);
    let mut g = matmul(op, op.t());
    g.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (norms[i] + norms[j] - 2.0 * *v).max(0.0);
        }
        row[i] = 0.0;
    });
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_naive_products_including_transposes() {
        let (n, k, m) = (37, 23, 41);
        let a: Vec<f64> = (0..n * k).map(|i| ((i * 7 % 13) as f64) - 6.0).collect();
        let b: Vec<f64> = (0..k * m).map(|i| ((i * 5 % 11) as f64) - 5.0).collect();
        let c = matmul(Operand::new(&a, n, k), Operand::new(&b, k, m));
        for i in 0..n {
            for j in 0..m {
                let want: f64 = (0..k).map(|t| a[i * k + t] * b[t * m + j]).sum();
                assert_eq!(c[i * m + j], want);
            }
        }
        // aᵀ a through a strided view.
        let ata = matmul(Operand::new(&a, n, k).t(), Operand::new(&a, n, k));
        for i in 0..k {
            for j in 0..k {
                let want: f64 = (0..n).map(|t| a[t * k + i] * a[t * k + j]).sum();
                assert_eq!(ata[i * k + j], want);
            }
        }
    }

    #[test]
    fn thin_and_ragged_products_are_correct() {
        for (n, k, m) in [
            (253, 3, 253),
            (7, 2, 300),
            (300, 40, 4),
            (1, 9, 9),
            (130, 17, 6),
        ] {
            let a: Vec<f32> = (0..n * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let b: Vec<f32> = (0..m * k).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
            // a · bᵀ with b stored row-major m × k.
            let c = matmul(Operand::new(&a, n, k), Operand::new(&b, m, k).t());
            for i in 0..n {
                for j in 0..m {
                    let want: f32 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                    assert_eq!(c[i * m + j], want, "({n}, {k}, {m}) at ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn distances_match_direct_computation() {
        let (n, d) = (30, 9);
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 31 % 17) as f32) * 0.3).collect();
        let dist = pairwise_sq_distances(&x, n, d);
        for i in 0..n {
            for j in 0..n {
                let want: f32 = (0..d).map(|t| (x[i * d + t] - x[j * d + t]).powi(2)).sum();
                assert!((dist[i * n + j] - want).abs() < 1e-3 * (1.0 + want));
            }
        }
    }
}
