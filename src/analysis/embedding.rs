//! 2-D maps of both domains' features: PCA (linear, fast, faithful to global
//! distances) and t-SNE (non-linear, shows clusters), with each point tagged by its
//! domain, its index within that domain and its class, so a front end can colour
//! points and link them back to their images.
//!
//! PCA centres the features and finds the leading eigenvectors of the smaller of
//! the covariance (`d × d`) and the Gram matrix (`n × n`, when `d > n`), both built
//! by the blocked parallel GEMM; the eigenvectors come from a full symmetric
//! eigendecomposition when the matrix is small and from seeded subspace iteration
//! with a Rayleigh–Ritz step otherwise. Component signs are fixed (the largest
//! score of each component is positive), so the picture does not flip between runs.
//!
//! t-SNE runs the `bhtsne` crate's Barnes–Hut fit after the standard reduction to
//! (at most) 50 principal components. The exact nearest neighbours are computed
//! here (ties broken by index) and the map starts from the first two principal
//! components scaled to a standard deviation of 1e-4 (the usual "PCA
//! initialisation"), so the same input and seed give the same map. The fit runs
//! on a private single-thread pool: `bhtsne`'s parallel reductions would otherwise
//! round differently from run to run.

use bhtsne::Neighbor;
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::{Operand, centred, column_means, dot, matmul};
use super::random::{self, Stream};
use super::standardize::Standardizer;
use super::{AnalysisError, Domain, Features, validate_labels, validate_pair};

/// Principal components kept before t-SNE.
pub const TSNE_PCA_DIMS: usize = 50;
/// Barnes–Hut accuracy/speed trade-off (the customary value).
const TSNE_THETA: f32 = 0.5;
/// Matrices up to this size are decomposed exactly.
const FULL_EIGEN_MAX: usize = 200;
/// Subspace-iteration steps for larger matrices.
const SUBSPACE_ITERATIONS: usize = 30;

/// How a map was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingMethod {
    /// First two principal components.
    Pca,
    /// Barnes–Hut t-SNE.
    Tsne,
}

/// One sample on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddedPoint {
    /// Horizontal coordinate.
    pub x: f32,
    /// Vertical coordinate.
    pub y: f32,
    /// The sample's domain.
    pub domain: Domain,
    /// The sample's row within its own domain.
    pub index: usize,
    /// The sample's class, when its domain is labelled.
    pub class: Option<u32>,
}

/// A 2-D map of both domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// PCA or t-SNE.
    pub method: EmbeddingMethod,
    /// Source points first, then target points.
    pub points: Vec<EmbeddedPoint>,
    /// Samples per domain kept, when a domain was subsampled.
    pub subsampled_to: Option<usize>,
    /// The perplexity, for t-SNE.
    pub perplexity: Option<f64>,
}

/// Settings for `embed_domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddingOptions {
    /// PCA or t-SNE.
    pub method: EmbeddingMethod,
    /// t-SNE perplexity.
    pub perplexity: f64,
    /// t-SNE iterations.
    pub max_iter: usize,
    /// Seed for subsampling and starting vectors.
    pub seed: u64,
    /// Samples per domain kept (seeded subsample above this).
    pub max_points_per_domain: usize,
}

impl Default for EmbeddingOptions {
    fn default() -> Self {
        Self {
            method: EmbeddingMethod::Pca,
            perplexity: 30.0,
            max_iter: 1000,
            seed: 0,
            max_points_per_domain: 2500,
        }
    }
}

/// Maps both domains to 2-D with the chosen method.
pub fn embed_domains(
    source: &Features,
    target: &Features,
    source_labels: Option<&[u32]>,
    target_labels: Option<&[u32]>,
    opts: &EmbeddingOptions,
) -> Result<Embedding, AnalysisError> {
    validate_pair(source, target, "an embedding", 1)?;
    if let Some(l) = source_labels {
        validate_labels("source", l, source.n, usize::MAX)?;
    }
    if let Some(l) = target_labels {
        validate_labels("target", l, target.n, usize::MAX)?;
    }
    let max = opts.max_points_per_domain.max(1);
    let mut rng = random::rng(opts.seed, Stream::EmbeddingSubsample);
    let (s, s_idx) = source.subsample(max, &mut rng);
    let (t, t_idx) = target.subsample(max, &mut rng);
    let subsampled_to = (s_idx.is_some() || t_idx.is_some()).then_some(max);
    let all = Features::stack(&s, &t);
    let coords = match opts.method {
        EmbeddingMethod::Pca => pca_2d(&all)?,
        EmbeddingMethod::Tsne => tsne_2d(&all, opts.perplexity, opts.seed, opts.max_iter)?,
    };
    let sides = [
        (Domain::Source, s.n, s_idx, source_labels),
        (Domain::Target, t.n, t_idx, target_labels),
    ];
    let mut coords = coords.into_iter();
    let mut points = Vec::with_capacity(all.n);
    for (domain, n, kept, labels) in sides {
        for (i, [x, y]) in coords.by_ref().take(n).enumerate() {
            let index = kept.as_ref().map_or(i, |k| k[i]);
            points.push(EmbeddedPoint {
                x,
                y,
                domain,
                index,
                class: labels.map(|l| l[index]),
            });
        }
    }
    Ok(Embedding {
        method: opts.method,
        points,
        subsampled_to,
        perplexity: (opts.method == EmbeddingMethod::Tsne).then_some(opts.perplexity),
    })
}

/// Scores of every row on the first two principal components (the second is 0
/// when `d = 1`).
pub fn pca_2d(all: &Features) -> Result<Vec<[f32; 2]>, AnalysisError> {
    let k = all.d.min(2);
    let scores = pca(all, 2, 0)?;
    Ok(scores
        .chunks_exact(k)
        .map(|r| [r[0], r.get(1).copied().unwrap_or(0.0)])
        .collect())
}

/// Scores of every row on the first `min(k, d, n)` principal components, row-major
/// `n × min(k, d, n)`. `seed` only affects the start of the subspace iteration.
pub fn pca(all: &Features, k: usize, seed: u64) -> Result<Vec<f32>, AnalysisError> {
    if all.n < 2 {
        return Err(AnalysisError::TooFewPoints {
            method: "PCA",
            need: 2,
            got: all.n,
        });
    }
    all.validate("points")?;
    Standardizer::fit(&[all])?;
    let (n, d) = (all.n, all.d);
    let k = k.min(d).min(n).max(1);
    let z = centred(&all.data, d, &column_means(&all.data, n, d));
    let op = Operand::new(&z, n, d);

    let mut scores = if d <= n {
        let cov = matmul(op.t(), op);
        let (_, vectors) = top_eigen(&cov, d, k, seed);
        let v: Vec<f32> = vectors.iter().map(|&x| x as f32).collect();
        matmul(op, Operand::new(&v, d, k))
    } else {
        // Gram trick: with G = ZZᵀ = UΛUᵀ, the scores are U√Λ.
        let gram = matmul(op, op.t());
        let (values, vectors) = top_eigen(&gram, n, k, seed);
        let mut s = vec![0.0f32; n * k];
        for i in 0..n {
            for c in 0..k {
                s[i * k + c] = (vectors[i * k + c] * values[c].max(0.0).sqrt()) as f32;
            }
        }
        s
    };
    fix_signs(&mut scores, n, k);
    Ok(scores)
}

/// The `k` leading eigenpairs of the symmetric row-major `m × m` matrix `s`:
/// eigenvalues (descending) and eigenvectors as row-major `m × k`.
fn top_eigen(s: &[f32], m: usize, k: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let block = (k + 10).min(m);
    let full = m <= FULL_EIGEN_MAX || block == m;
    let (basis, small) = if full {
        (None, DMatrix::from_fn(m, m, |i, j| f64::from(s[i * m + j])))
    } else {
        let s64: Vec<f64> = s.iter().map(|&v| f64::from(v)).collect();
        let apply = |q: &DMatrix<f64>| -> DMatrix<f64> {
            // q is column-major m × b, i.e. row-major b × m: pass it transposed.
            let out = matmul(
                Operand::new(&s64, m, m),
                Operand::new(q.as_slice(), q.ncols(), m).t(),
            );
            DMatrix::from_row_slice(m, q.ncols(), &out)
        };
        let mut rng = random::rng(seed, Stream::EigenStart);
        let mut q = DMatrix::from_fn(m, block, |_, _| random::standard_normal(&mut rng))
            .qr()
            .q();
        for _ in 0..SUBSPACE_ITERATIONS {
            q = apply(&q).qr().q();
        }
        let projected = q.transpose() * apply(&q);
        // Symmetrise away rounding before the symmetric solver.
        let projected = (&projected + projected.transpose()) * 0.5;
        (Some(q), projected)
    };
    let eig = SymmetricEigen::new(small);
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    order.truncate(k);
    let values: Vec<f64> = order.iter().map(|&c| eig.eigenvalues[c]).collect();
    let picked = eig.eigenvectors.select_columns(&order);
    let vectors = match basis {
        Some(q) => q * picked,
        None => picked,
    };
    let mut row_major = vec![0.0f64; m * k];
    for i in 0..m {
        for c in 0..k {
            row_major[i * k + c] = vectors[(i, c)];
        }
    }
    (values, row_major)
}

/// Flips each component so that its largest-magnitude score is positive.
fn fix_signs(scores: &mut [f32], n: usize, k: usize) {
    for c in 0..k {
        let extreme = (0..n).map(|i| scores[i * k + c]).fold(0.0f32, |best, v| {
            if v.abs() > best.abs() { v } else { best }
        });
        if extreme < 0.0 {
            (0..n).for_each(|i| scores[i * k + c] = -scores[i * k + c]);
        }
    }
}

/// Fewest points t-SNE accepts for `perplexity`: each point needs ⌊3·perplexity⌋
/// neighbours.
pub fn tsne_min_points(perplexity: f64) -> usize {
    tsne_neighbours(perplexity) + 1
}

/// Neighbours per point, as `bhtsne` counts them (its perplexity is an f32).
fn tsne_neighbours(perplexity: f64) -> usize {
    let p = perplexity as f32;
    let by_product = (3.0 * p).floor() as usize;
    let by_floor = 3 * p.floor() as usize;
    by_product.max(by_floor)
}

/// A 2-D t-SNE map of the rows of `all`; see the module docs.
pub fn tsne_2d(
    all: &Features,
    perplexity: f64,
    seed: u64,
    max_iter: usize,
) -> Result<Vec<[f32; 2]>, AnalysisError> {
    if !(perplexity.is_finite() && perplexity >= 1.0) {
        return Err(AnalysisError::InvalidPerplexity(perplexity));
    }
    let need = tsne_min_points(perplexity);
    if all.n < need {
        return Err(AnalysisError::TsneTooFewPoints {
            perplexity,
            need,
            got: all.n,
        });
    }
    if max_iter == 0 {
        return Err(AnalysisError::InvalidOption {
            name: "t-SNE max_iter",
            reason: "must be at least 1".to_string(),
        });
    }
    let n = all.n;
    let k = TSNE_PCA_DIMS.min(all.d).min(n);
    let reduced = pca(all, k, seed)?;
    let k = reduced.len() / n;
    let neighbours = nearest_neighbours(&reduced, n, k, tsne_neighbours(perplexity));

    // PCA initialisation: the first two components, scaled to a deviation of 1e-4.
    let first: Vec<f32> = (0..n).map(|i| reduced[i * k]).collect();
    let std = (first.iter().map(|v| v * v).sum::<f32>() / n as f32).sqrt();
    let scale = if std > 0.0 { 1e-4 / std } else { 1.0 };
    let mut rng = random::rng(seed, Stream::TsneInit);
    let mut init = Vec::with_capacity(2 * n);
    for i in 0..n {
        init.push(reduced[i * k] * scale);
        init.push(if k > 1 {
            reduced[i * k + 1] * scale
        } else {
            (random::standard_normal(&mut rng) * 1e-4) as f32
        });
    }

    let rows: Vec<&[f32]> = reduced.chunks_exact(k).collect();
    let early = 250.min(max_iter / 4);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|i| format!("tsne-{i}"))
        .build()
        .ok();
    let fit = || {
        let mut tsne: bhtsne::tSNE<f32, &[f32], 2> = bhtsne::tSNE::new(&rows);
        tsne.perplexity(perplexity as f32)
            .epochs(max_iter)
            .stop_lying_epoch(early)
            .momentum_switch_epoch(early)
            .initial_embedding(init.clone())
            .barnes_hut_with_neighbors(TSNE_THETA, &neighbours);
        tsne.embedding()
    };
    let y = match &pool {
        Some(pool) => pool.install(fit),
        None => fit(),
    };
    Ok(y.chunks_exact(2).map(|p| [p[0], p[1]]).collect())
}

/// The `kn` nearest rows of every row (itself excluded), by ascending Euclidean
/// distance, ties broken by index.
fn nearest_neighbours(data: &[f32], n: usize, d: usize, kn: usize) -> Vec<Vec<Neighbor<f32>>> {
    const BLOCK: usize = 512;
    let norms: Vec<f32> = data.chunks_exact(d).map(|r| dot(r, r)).collect();
    let all = Operand::new(data, n, d);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - start);
        let block = Operand::new(&data[start * d..(start + rows) * d], rows, d);
        let g = matmul(block, all.t());
        let found: Vec<Vec<Neighbor<f32>>> = g
            .par_chunks(n)
            .enumerate()
            .map(|(r, g_row)| {
                let i = start + r;
                let mut cand: Vec<(f32, usize)> = g_row
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(j, &gij)| ((norms[i] + norms[j] - 2.0 * gij).max(0.0), j))
                    .collect();
                let by_distance =
                    |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                if kn < cand.len() {
                    cand.select_nth_unstable_by(kn, by_distance);
                    cand.truncate(kn);
                }
                cand.sort_unstable_by(by_distance);
                cand.into_iter()
                    .map(|(d2, j)| Neighbor {
                        index: j,
                        distance: d2.sqrt(),
                    })
                    .collect()
            })
            .collect();
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::gaussian_domain;
    use super::*;

    #[test]
    fn pca_of_points_on_a_line_recovers_the_line() {
        // 40 points along (1, 2, −1, 0.5) + offset, in 4-D.
        let dir = [1.0f32, 2.0, -1.0, 0.5];
        let mut data = Vec::new();
        for i in 0..40 {
            let t = i as f32 * 0.25 - 5.0;
            data.extend(dir.iter().map(|c| 3.0 + c * t));
        }
        let f = Features::new(data, 40, 4).unwrap();
        let p = pca_2d(&f).unwrap();
        let norm = dir.iter().map(|c| c * c).sum::<f32>().sqrt();
        for (i, [x, y]) in p.iter().enumerate() {
            // PCA centres: the mean of t is −0.125.
            let t = i as f32 * 0.25 - 5.0 + 0.125;
            assert!((x.abs() - (t * norm).abs()).abs() < 1e-3, "x = {x}");
            assert!(y.abs() < 1e-3, "y = {y}");
        }
    }

    #[test]
    fn pca_large_paths_agree_with_the_exact_solver() {
        // d > FULL_EIGEN_MAX forces subspace iteration; n < d forces the Gram trick.
        let mut f = gaussian_domain(300, 260, 0.0, 1.0, 1);
        // A dominant 2-D structure.
        for i in 0..f.n {
            let (a, b) = ((i % 7) as f32 * 3.0, (i % 5) as f32 * 2.0);
            f.data[i * f.d] += a;
            f.data[i * f.d + 1] += b;
        }
        let p = pca_2d(&f).unwrap();
        let narrow = f.select(&(0..230).collect::<Vec<_>>());
        let q = pca_2d(&narrow).unwrap();
        // The leading component is the column with variance (3·i%7): correlation near 1.
        let corr = |xs: &[f32], ys: &[f32]| {
            let n = xs.len() as f32;
            let (mx, my) = (xs.iter().sum::<f32>() / n, ys.iter().sum::<f32>() / n);
            let cov: f32 = xs.iter().zip(ys).map(|(a, b)| (a - mx) * (b - my)).sum();
            let vx: f32 = xs.iter().map(|a| (a - mx).powi(2)).sum();
            let vy: f32 = ys.iter().map(|b| (b - my).powi(2)).sum();
            cov / (vx * vy).sqrt()
        };
        let first: Vec<f32> = f.rows().map(|r| r[0]).collect();
        let pc1: Vec<f32> = p.iter().map(|v| v[0]).collect();
        assert!(corr(&first, &pc1).abs() > 0.9);
        let first_narrow: Vec<f32> = narrow.rows().map(|r| r[0]).collect();
        let qc1: Vec<f32> = q.iter().map(|v| v[0]).collect();
        assert!(corr(&first_narrow, &qc1).abs() > 0.9);
    }

    #[test]
    fn tsne_separates_two_far_clusters() {
        let a = gaussian_domain(60, 10, 0.0, 1.0, 1);
        let b = gaussian_domain(60, 10, 10.0, 1.0, 2);
        let all = Features::stack(&a, &b);
        let y = tsne_2d(&all, 10.0, 7, 500).unwrap();
        let centre = |r: std::ops::Range<usize>| {
            let n = r.len() as f32;
            let (sx, sy) = r.fold((0.0, 0.0), |s, i| (s.0 + y[i][0], s.1 + y[i][1]));
            [sx / n, sy / n]
        };
        let (ca, cb) = (centre(0..60), centre(60..120));
        let spread = |r: std::ops::Range<usize>, c: [f32; 2]| {
            let n = r.len() as f32;
            (r.map(|i| (y[i][0] - c[0]).powi(2) + (y[i][1] - c[1]).powi(2))
                .sum::<f32>()
                / n)
                .sqrt()
        };
        let gap = ((ca[0] - cb[0]).powi(2) + (ca[1] - cb[1]).powi(2)).sqrt();
        let within = spread(0..60, ca).max(spread(60..120, cb));
        assert!(gap > 3.0 * within, "gap {gap}, within {within}");
    }

    #[test]
    fn tsne_with_too_few_points_is_an_error_not_a_panic() {
        let f = gaussian_domain(40, 5, 0.0, 1.0, 1);
        let err = tsne_2d(&f, 30.0, 0, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t-SNE with perplexity 30 needs at least 91 points, got 40"
        );
        assert!(matches!(
            tsne_2d(&f, f64::NAN, 0, 100),
            Err(AnalysisError::InvalidPerplexity(_))
        ));
        assert!(tsne_2d(&f, 5.0, 0, 0).is_err());
        let empty = Features::new(Vec::new(), 0, 5).unwrap();
        assert!(tsne_2d(&empty, 5.0, 0, 100).is_err());
        assert!(pca_2d(&empty).is_err());
        // Exactly enough points works.
        let ok = gaussian_domain(16, 3, 0.0, 1.0, 2);
        assert_eq!(tsne_2d(&ok, 5.0, 0, 50).unwrap().len(), 16);
    }

    #[test]
    fn same_seed_gives_identical_maps() {
        let f = gaussian_domain(150, 20, 0.0, 1.0, 3);
        let a = tsne_2d(&f, 15.0, 11, 300).unwrap();
        let b = tsne_2d(&f, 15.0, 11, 300).unwrap();
        assert_eq!(a, b);
        assert_eq!(pca_2d(&f).unwrap(), pca_2d(&f).unwrap());
    }

    #[test]
    fn embed_domains_tags_points_and_subsamples() {
        let s = gaussian_domain(30, 4, 0.0, 1.0, 1);
        let t = gaussian_domain(50, 4, 1.0, 1.0, 2);
        let labels: Vec<u32> = (0..30).map(|i| i % 3).collect();
        let opts = EmbeddingOptions {
            max_points_per_domain: 40,
            ..EmbeddingOptions::default()
        };
        let e = embed_domains(&s, &t, Some(&labels), None, &opts).unwrap();
        assert_eq!(e.points.len(), 70);
        assert_eq!(e.subsampled_to, Some(40));
        assert_eq!(e.points[4].domain, Domain::Source);
        assert_eq!(e.points[4].class, Some(1));
        assert_eq!(e.points[69].domain, Domain::Target);
        assert_eq!(e.points[69].class, None);
        assert!(e.points[30..].iter().all(|p| p.index < 50));
    }

    #[test]
    fn constant_points_are_an_error() {
        let f = Features::new(vec![1.0; 300], 100, 3).unwrap();
        assert_eq!(pca_2d(&f).unwrap_err(), AnalysisError::ConstantFeatures);
        assert_eq!(
            tsne_2d(&f, 5.0, 0, 10).unwrap_err(),
            AnalysisError::ConstantFeatures
        );
    }
}
