//! Relations between samples, as relation-based transfer sees them: how similar each pair
//! of samples is (a cosine-similarity matrix, the heatmap a class looks at) and how well two
//! feature spaces agree on who is close to whom (the overlap of k-nearest-neighbour sets:
//! 1 when both spaces give every sample the same neighbours, about k/n for unrelated ones).

use super::{AnalysisError, Features};
use rayon::prelude::*;

/// Neighbours compared per sample by [`knn_overlap`] unless told otherwise.
pub const DEFAULT_K: usize = 10;

/// Rows scaled to unit length (a zero row stays zero).
fn unit_rows(f: &Features) -> Vec<Vec<f32>> {
    f.rows()
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
            r.iter().map(|v| v * scale).collect()
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `n × n` cosine similarities of the rows of `f` (1 on the diagonal for non-zero rows).
pub fn cosine_matrix(f: &Features) -> Vec<Vec<f32>> {
    let u = unit_rows(f);
    u.par_iter()
        .map(|a| u.iter().map(|b| dot(a, b)).collect())
        .collect()
}

/// For each row, the indices of its `k` most similar other rows (cosine), most similar first.
fn neighbours(sim: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    sim.par_iter()
        .enumerate()
        .map(|(i, row)| {
            let mut idx: Vec<usize> = (0..row.len()).filter(|&j| j != i).collect();
            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            idx.truncate(k);
            idx
        })
        .collect()
}

/// The mean share of each sample's `k` nearest neighbours (cosine) that the two feature
/// spaces `a` and `b` (the same samples, in the same order, any widths) have in common.
pub fn knn_overlap(a: &Features, b: &Features, k: usize) -> Result<f64, AnalysisError> {
    if a.n != b.n {
        return Err(AnalysisError::InvalidOption {
            name: "features",
            reason: format!("the two spaces hold {} and {} samples", a.n, b.n),
        });
    }
    if a.n < 2 || k == 0 {
        return Err(AnalysisError::InvalidOption {
            name: "k",
            reason: format!("needs at least 2 samples and k ≥ 1 (got {} and {k})", a.n),
        });
    }
    let k = k.min(a.n - 1);
    let na = neighbours(&cosine_matrix(a), k);
    let nb = neighbours(&cosine_matrix(b), k);
    let shared: usize = na
        .iter()
        .zip(&nb)
        .map(|(x, y)| x.iter().filter(|i| y.contains(i)).count())
        .sum();
    Ok(shared as f64 / (a.n * k) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: &[Vec<f32>]) -> Features {
        Features::from_rows(rows).unwrap()
    }

    #[test]
    fn the_same_structure_in_another_space_agrees_fully_and_a_shuffle_does_not() {
        // Two tight groups of points in 2-D, and the same points rotated and widened into
        // 3-D: every sample keeps its neighbours.
        let a: Vec<Vec<f32>> = (0..12)
            .map(|i| {
                let g = (i / 6) as f32 * 10.0;
                vec![g + 1.0 + (i % 6) as f32 * 0.1, 1.0 + (i % 3) as f32 * 0.05]
            })
            .collect();
        let b: Vec<Vec<f32>> = a.iter().map(|r| vec![r[1], r[0], 0.5 * r[0]]).collect();
        let same = knn_overlap(&features(&a), &features(&b), 5).unwrap();
        assert!(same > 0.95, "same structure agrees {same}");
        // Swapping the groups' members across spaces breaks the neighbourhoods.
        let mut shuffled = b.clone();
        for i in 0..3 {
            shuffled.swap(i, 11 - i);
        }
        let broken = knn_overlap(&features(&a), &features(&shuffled), 5).unwrap();
        assert!(broken < same - 0.2, "shuffled {broken} vs same {same}");
    }

    #[test]
    fn cosine_matrix_is_symmetric_with_ones_on_the_diagonal() {
        let m = cosine_matrix(&features(&[vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 2.0]]));
        for (i, row) in m.iter().enumerate() {
            assert!((row[i] - 1.0).abs() < 1e-6);
            for (j, v) in row.iter().enumerate() {
                assert!((v - m[j][i]).abs() < 1e-6);
            }
        }
        assert!((m[0][2]).abs() < 1e-6);
    }

    #[test]
    fn mismatched_spaces_are_refused() {
        let a = features(&[vec![1.0], vec![2.0]]);
        let b = features(&[vec![1.0], vec![2.0], vec![3.0]]);
        assert!(knn_overlap(&a, &b, 1).is_err());
    }
}
