//! Transferability scores: how well a model's features (or its predictions) should serve a
//! target task, from a few labelled target images and no training. Each is computed on
//! the features once extracted, in well under a second for hundreds of images.
//!
//! - **LogME** (You et al. 2021): the log marginal evidence of a Bayesian linear
//!   regression from the features to each class's one-hot column, maximised over the
//!   prior precision α and the noise precision β by the paper's fixed-point iteration,
//!   per image and averaged over the classes. Higher is better; it is comparable across
//!   models on the same target.
//! - **LEEP** (Nguyen et al. 2020): from the model's own class probabilities θ(x) on the
//!   target images, the empirical conditional P(y | z) of target label y given source
//!   class z; LEEP = mean log Σ_z P(y_i | z) θ_z(x_i). A log-likelihood, at most 0;
//!   higher is better. Needs a model with a classifier.
//! - **H-score** (Bao et al. 2019): tr(Σ_f⁻¹ Σ_g), Σ_f the feature covariance (shrunk, as
//!   Ibrahim et al. 2022 do, or it is degenerate with few images) and Σ_g the covariance
//!   of the class-conditional means: how much of the features' spread runs between
//!   classes. Higher is better.
//!
//! All three work in the n × n Gram space when there are fewer images than features (the
//! usual case: 10 images per class against 1280 features), so the cost is O(n²·d + n³).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::{AnalysisError, Features};

/// The scores of one model on one labelled target sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transferability {
    pub logme: f64,
    /// None for a model without a classifier.
    pub leep: Option<f64>,
    pub h_score: f64,
}

/// Every score of features `f` with target labels `y` (classes `0..k`), plus LEEP when the
/// model's class probabilities `probs` on the same images are given.
pub fn transferability(
    f: &Features,
    y: &[u32],
    probs: Option<&[Vec<f32>]>,
) -> Result<Transferability, AnalysisError> {
    if f.n < 2 || y.len() != f.n {
        return Err(AnalysisError::InvalidOption {
            name: "transferability",
            reason: format!(
                "needs at least 2 labelled images with one label each, got {} images and {} labels",
                f.n,
                y.len()
            ),
        });
    }
    Ok(Transferability {
        logme: logme(f, y),
        leep: probs.map(|p| leep(p, y)),
        h_score: h_score(f, y),
    })
}

/// The features as an n × d f64 matrix.
fn matrix(f: &Features) -> DMatrix<f64> {
    DMatrix::from_fn(f.n, f.d, |i, j| f64::from(f.data[i * f.d + j]))
}

/// Eigen-decomposition of the smaller Gram matrix of `x` (n × d): the squared singular
/// values σ² and the left singular vectors U (n × r) of the r nonzero ones.
fn left_singular(x: &DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let (n, d) = x.shape();
    let (values, u) = if n <= d {
        let eig = SymmetricEigen::new(x * x.transpose());
        (eig.eigenvalues, eig.eigenvectors)
    } else {
        // U = X V / σ from the d × d side.
        let eig = SymmetricEigen::new(x.transpose() * x);
        let xv = x * &eig.eigenvectors;
        let mut u = xv.clone();
        for (c, &l) in eig.eigenvalues.iter().enumerate() {
            let s = l.max(0.0).sqrt();
            let mut col = u.column_mut(c);
            if s > 0.0 {
                col /= s;
            } else {
                col.fill(0.0);
            }
        }
        (eig.eigenvalues, u)
    };
    let top = values.iter().copied().fold(0.0f64, f64::max);
    let keep: Vec<usize> = (0..values.len())
        .filter(|&i| values[i] > top * 1e-10)
        .collect();
    (
        keep.iter().map(|&i| values[i]).collect(),
        u.select_columns(&keep),
    )
}

/// LogME of features `f` for labels `y` (see the module docs).
pub fn logme(f: &Features, y: &[u32]) -> f64 {
    let x = matrix(f);
    let (n, d) = (f.n as f64, f.d as f64);
    let (sigma2, u) = left_singular(&x);
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut total = 0.0;
    for c in 0..classes {
        let t = DVector::from_iterator(f.n, y.iter().map(|&l| f64::from(l as usize == c)));
        let z = u.transpose() * &t;
        let z2: Vec<f64> = z.iter().map(|v| v * v).collect();
        // The part of the labels outside the features' span can never be fitted.
        let outside = (t.norm_squared() - z2.iter().sum::<f64>()).max(0.0);
        let (mut alpha, mut beta) = (1.0f64, 1.0f64);
        let (mut m2, mut res2) = (0.0, 0.0);
        for _ in 0..50 {
            let mut gamma = 0.0;
            m2 = 0.0;
            res2 = outside;
            for (&s2, &zz) in sigma2.iter().zip(&z2) {
                let denom = alpha + beta * s2;
                gamma += beta * s2 / denom;
                m2 += beta * beta * s2 * zz / (denom * denom);
                res2 += (alpha / denom).powi(2) * zz;
            }
            let new_alpha = gamma / m2.max(1e-12);
            let new_beta = (n - gamma) / res2.max(1e-12);
            let done = ((new_alpha - alpha) / alpha).abs() < 1e-3
                && ((new_beta - beta) / beta).abs() < 1e-3;
            (alpha, beta) = (new_alpha, new_beta);
            if done {
                break;
            }
        }
        // Directions without variance contribute log α each to the log-determinant.
        let log_det: f64 = sigma2
            .iter()
            .map(|&s2| (alpha + beta * s2).ln())
            .sum::<f64>()
            + (d - sigma2.len() as f64) * alpha.ln();
        let evidence = n / 2.0 * beta.ln() + d / 2.0 * alpha.ln()
            - n / 2.0 * (2.0 * std::f64::consts::PI).ln()
            - beta / 2.0 * res2
            - alpha / 2.0 * m2
            - log_det / 2.0;
        total += evidence / n;
    }
    total / classes.max(1) as f64
}

/// LEEP of the model's class probabilities `probs` (n rows over its own classes) for the
/// target labels `y`.
pub fn leep(probs: &[Vec<f32>], y: &[u32]) -> f64 {
    let n = probs.len();
    let z = probs.first().map_or(0, Vec::len);
    let k = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    // Empirical joint P(y, z), then P(y | z) = P(y, z) / P(z).
    let mut joint = vec![vec![0.0f64; z]; k];
    for (p, &label) in probs.iter().zip(y) {
        for (j, &v) in p.iter().enumerate() {
            joint[label as usize][j] += f64::from(v) / n as f64;
        }
    }
    let marginal: Vec<f64> = (0..z).map(|j| joint.iter().map(|r| r[j]).sum()).collect();
    let total: f64 = probs
        .iter()
        .zip(y)
        .map(|(p, &label)| {
            let likelihood: f64 = p
                .iter()
                .enumerate()
                .filter(|&(j, _)| marginal[j] > 0.0)
                .map(|(j, &v)| joint[label as usize][j] / marginal[j] * f64::from(v))
                .sum();
            likelihood.max(1e-300).ln()
        })
        .sum();
    total / n.max(1) as f64
}

/// Weight ρ of the shrinkage of H-score's feature covariance toward its mean eigenvalue.
/// Unshrunk, with fewer images than features, tr(Σ_f⁺ Σ_g) is the number of classes − 1
/// for *any* features (the pseudo-inverse explains the class means exactly); shrinkage
/// (Ibrahim et al. 2022) makes it measure the features again.
pub const H_SHRINKAGE: f64 = 0.1;

/// H-score of features `f` for labels `y`, tr(Σ_f⁻¹ Σ_g) with Σ_f shrunk by
/// [`H_SHRINKAGE`], in the n × n Gram space.
pub fn h_score(f: &Features, y: &[u32]) -> f64 {
    let mut x = matrix(f);
    let n = f.n;
    let mean = x.row_mean();
    for mut row in x.row_iter_mut() {
        row -= &mean;
    }
    // G: each row replaced by its class's mean (of the centred features).
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut sums = DMatrix::<f64>::zeros(classes, f.d);
    let mut counts = vec![0usize; classes];
    for (i, &label) in y.iter().enumerate() {
        let mut r = sums.row_mut(label as usize);
        r += x.row(i);
        counts[label as usize] += 1;
    }
    let g = DMatrix::from_fn(n, f.d, |i, j| {
        sums[(y[i] as usize, j)] / counts[y[i] as usize].max(1) as f64
    });
    // With X = U S Vᵀ and Σ_f shrunk toward its mean eigenvalue μ (weight ρ), the rows of G
    // lie in X's row space, so tr(Σ_f⁻¹ Σ_g) = Σ_i ‖G Xᵀ u_i‖² / (σ_i² ((1−ρ)σ_i² + ρnμ)):
    // every product n × n or smaller.
    let (sigma2, u) = left_singular(&x);
    let mu = sigma2.iter().sum::<f64>() / (n as f64 * f.d as f64);
    let a = u.transpose() * (&x * g.transpose()); // r × n
    (0..sigma2.len())
        .map(|i| {
            let s2 = sigma2[i];
            a.row(i).norm_squared()
                / (s2 * ((1.0 - H_SHRINKAGE) * s2 + H_SHRINKAGE * n as f64 * mu))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::synthetic::gaussian_domain;

    /// Two classes whose features are `separation` apart along every axis, plus noise.
    fn classes(separation: f32, n: usize, d: usize, seed: u64) -> (Features, Vec<u32>) {
        let noise = gaussian_domain(n, d, 0.0, 1.0, seed);
        let y: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let mut data = noise.data.clone();
        for (i, row) in data.chunks_mut(d).enumerate() {
            if y[i] == 1 {
                row.iter_mut().for_each(|v| *v += separation);
            }
        }
        (Features::new(data, n, d).unwrap(), y)
    }

    #[test]
    fn features_that_separate_the_classes_score_higher() {
        for (n, d) in [(40, 8), (20, 64)] {
            let (good, y) = classes(2.0, n, d, 1);
            let (bad, _) = classes(0.0, n, d, 1);
            assert!(logme(&good, &y) > logme(&bad, &y), "LogME n={n} d={d}");
            assert!(
                h_score(&good, &y) > h_score(&bad, &y),
                "H-score n={n} d={d}"
            );
        }
    }

    #[test]
    fn leep_rewards_source_classes_that_map_onto_target_classes() {
        let y = [0u32, 0, 1, 1];
        // Source class 0 ↔ target 0, source class 1 ↔ target 1.
        let aligned: Vec<Vec<f32>> = vec![
            vec![0.9, 0.1],
            vec![0.8, 0.2],
            vec![0.1, 0.9],
            vec![0.2, 0.8],
        ];
        let useless: Vec<Vec<f32>> = vec![vec![0.5, 0.5]; 4];
        assert!(leep(&aligned, &y) > leep(&useless, &y));
        // A model whose classes say nothing about the target is at chance: log ½.
        assert!((leep(&useless, &y) - 0.5f64.ln()).abs() < 1e-9);
    }
}
