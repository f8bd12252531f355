//! Clustering an unlabeled domain with transferred features: unsupervised transfer, where
//! neither domain needs a label. The rows are reduced to their first [`PCA_DIMENSIONS`]
//! principal components (denoising and speed), then k-means (k-means++ starts, the best of
//! [`RESTARTS`] by inertia) groups them. The number of clusters is given, or chosen by the
//! mean silhouette over 2..=[`MAX_AUTO_CLUSTERS`]. When class folders exist the grouping is
//! scored against them by the adjusted Rand index — for evaluation only: the clustering
//! never sees a label.

use super::embedding::pca;
use super::random::{Stream, rng, subsample_indices};
use super::{AnalysisError, Features};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Principal components the clustering works on.
pub const PCA_DIMENSIONS: usize = 32;
/// k-means runs from different starts; the one with the least inertia is kept.
pub const RESTARTS: usize = 4;
/// Lloyd iterations at most per run.
pub const ITERATIONS: usize = 60;
/// The largest cluster count the automatic choice tries.
pub const MAX_AUTO_CLUSTERS: usize = 12;
/// Points the silhouette is computed on (a seeded subsample beyond that).
pub const SILHOUETTE_POINTS: usize = 600;

/// How many clusters to form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCount {
    /// Chosen by the mean silhouette.
    Auto,
    /// Exactly this many.
    Fixed(usize),
}

impl std::str::FromStr for ClusterCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        match s.parse::<usize>() {
            Ok(k) if k >= 2 => Ok(Self::Fixed(k)),
            _ => Err(format!(
                "the number of clusters must be \"auto\" or a whole number of at least 2, got \"{s}\""
            )),
        }
    }
}

/// A clustering of one domain's rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clustering {
    /// Number of clusters.
    pub k: usize,
    /// Whether `k` was chosen by the silhouette (else it was given).
    pub chosen: bool,
    /// The cluster of each row.
    pub assignments: Vec<u32>,
    /// Rows per cluster.
    pub sizes: Vec<usize>,
    /// Mean silhouette of the clustering (−1..1; higher: tighter, better separated).
    pub silhouette: f64,
    /// Each cluster count tried by the automatic choice, with its silhouette.
    pub tried: Vec<(usize, f64)>,
    /// Adjusted Rand index against the class folders, when there are any (1: the same
    /// grouping, 0: chance).
    pub adjusted_rand_index: Option<f64>,
}

/// Cluster the rows of `features` (see the module's notes); `labels`, when given, only
/// score the result.
pub fn cluster(
    features: &Features,
    count: ClusterCount,
    labels: Option<&[u32]>,
    seed: u64,
) -> Result<Clustering, AnalysisError> {
    let n = features.n;
    let need = match count {
        ClusterCount::Fixed(k) => k.max(2),
        ClusterCount::Auto => 3,
    };
    if n < need {
        return Err(AnalysisError::TooFewPoints {
            method: "clustering",
            need,
            got: n,
        });
    }
    let scores = pca(features, PCA_DIMENSIONS, seed)?;
    let d = scores.len() / n;
    let sample = silhouette_sample(n, seed);
    let run = |k: usize| {
        let assignments = kmeans(&scores, n, d, k, seed);
        let silhouette = silhouette(&scores, d, &assignments, &sample);
        (assignments, silhouette)
    };
    let (k, (assignments, silhouette), tried) = match count {
        ClusterCount::Fixed(k) => (k, run(k), Vec::new()),
        ClusterCount::Auto => {
            let mut tried = Vec::new();
            let mut best: Option<(usize, (Vec<u32>, f64))> = None;
            for k in 2..=MAX_AUTO_CLUSTERS.min(n - 1) {
                let r = run(k);
                tried.push((k, r.1));
                if best.as_ref().is_none_or(|b| r.1 > b.1.1) {
                    best = Some((k, r));
                }
            }
            let (k, r) = best.expect("at least k = 2 was tried");
            (k, r, tried)
        }
    };
    let mut sizes = vec![0; k];
    assignments.iter().for_each(|&a| sizes[a as usize] += 1);
    Ok(Clustering {
        k,
        chosen: count == ClusterCount::Auto,
        adjusted_rand_index: labels
            .filter(|l| l.len() == n)
            .map(|l| adjusted_rand_index(&assignments, l)),
        assignments,
        sizes,
        silhouette,
        tried,
    })
}

fn sq_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means on `n` rows of `d` values: the best of [`RESTARTS`] seeded k-means++ runs.
fn kmeans(rows: &[f32], n: usize, d: usize, k: usize, seed: u64) -> Vec<u32> {
    let row = |i: usize| &rows[i * d..(i + 1) * d];
    let mut best: Option<(f64, Vec<u32>)> = None;
    // One stream for every start of every k: the starts differ, and the same seed gives
    // the same clustering.
    let mut rng = rng(seed ^ ((k as u64) << 32), Stream::KmeansStarts);
    for _ in 0..RESTARTS {
        // k-means++: each next centre drawn with probability ∝ squared distance.
        let mut centres: Vec<f32> = row(rng.random_range(0..n)).to_vec();
        let mut nearest: Vec<f32> = (0..n).map(|i| sq_distance(row(i), &centres)).collect();
        while centres.len() < k * d {
            let total: f64 = nearest.iter().map(|&v| v as f64).sum();
            let pick = if total > 0.0 {
                let mut t = rng.random::<f64>() * total;
                nearest
                    .iter()
                    .position(|&v| {
                        t -= v as f64;
                        t <= 0.0
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n)
            };
            let c = row(pick).to_vec();
            nearest
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = v.min(sq_distance(row(i), &c)));
            centres.extend(c);
        }
        let mut assignments = vec![0u32; n];
        for iteration in 0..ITERATIONS {
            let mut changed = false;
            for (i, a) in assignments.iter_mut().enumerate() {
                let c = (0..k)
                    .min_by(|&x, &y| {
                        sq_distance(row(i), &centres[x * d..(x + 1) * d])
                            .total_cmp(&sq_distance(row(i), &centres[y * d..(y + 1) * d]))
                    })
                    .unwrap_or(0) as u32;
                changed |= *a != c;
                *a = c;
            }
            if !changed && iteration > 0 {
                break;
            }
            let mut sums = vec![0f64; k * d];
            let mut counts = vec![0usize; k];
            for (i, &a) in assignments.iter().enumerate() {
                counts[a as usize] += 1;
                let s = &mut sums[a as usize * d..(a as usize + 1) * d];
                s.iter_mut().zip(row(i)).for_each(|(s, &x)| *s += x as f64);
            }
            for c in 0..k {
                if counts[c] > 0 {
                    for j in 0..d {
                        centres[c * d + j] = (sums[c * d + j] / counts[c] as f64) as f32;
                    }
                }
            }
        }
        let inertia: f64 = assignments
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                sq_distance(row(i), &centres[a as usize * d..(a as usize + 1) * d]) as f64
            })
            .sum();
        if best.as_ref().is_none_or(|b| inertia < b.0) {
            best = Some((inertia, assignments));
        }
    }
    relabel_by_size(best.map(|b| b.1).unwrap_or_default(), k)
}

/// Renumber clusters so that cluster 0 is the largest (ties by first row), making the
/// numbering independent of which start won.
fn relabel_by_size(assignments: Vec<u32>, k: usize) -> Vec<u32> {
    let mut sizes = vec![(0usize, usize::MAX); k];
    for (i, &a) in assignments.iter().enumerate() {
        let s = &mut sizes[a as usize];
        s.0 += 1;
        s.1 = s.1.min(i);
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c].0), sizes[c].1));
    let mut new = vec![0u32; k];
    for (rank, &c) in order.iter().enumerate() {
        new[c] = rank as u32;
    }
    assignments.into_iter().map(|a| new[a as usize]).collect()
}

/// The rows the silhouette is computed on: all, or a seeded subsample.
fn silhouette_sample(n: usize, seed: u64) -> Vec<usize> {
    subsample_indices(
        n,
        SILHOUETTE_POINTS,
        &mut rng(seed, Stream::SilhouetteSubsample),
    )
    .unwrap_or_else(|| (0..n).collect())
}

/// Mean silhouette (b − a)/max(a, b) over the `sample` rows, distances among the sample.
fn silhouette(rows: &[f32], d: usize, assignments: &[u32], sample: &[usize]) -> f64 {
    let k = assignments.iter().max().map_or(0, |&m| m as usize + 1);
    let row = |i: usize| &rows[i * d..(i + 1) * d];
    let mut total = 0.0;
    for &i in sample {
        let mut sum = vec![0f64; k];
        let mut count = vec![0usize; k];
        for &j in sample {
            if i != j {
                let c = assignments[j] as usize;
                sum[c] += (sq_distance(row(i), row(j)) as f64).sqrt();
                count[c] += 1;
            }
        }
        let own = assignments[i] as usize;
        if count[own] == 0 {
            continue; // a singleton's silhouette is 0
        }
        let a = sum[own] / count[own] as f64;
        let b = (0..k)
            .filter(|&c| c != own && count[c] > 0)
            .map(|c| sum[c] / count[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / sample.len().max(1) as f64
}

/// Adjusted Rand index of two groupings of the same rows (Hubert & Arabie, 1985).
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    let pairs = |x: usize| (x * x.saturating_sub(1)) as f64 / 2.0;
    let ka = a.iter().max().map_or(0, |&m| m as usize + 1);
    let kb = b.iter().max().map_or(0, |&m| m as usize + 1);
    let mut table = vec![0usize; ka * kb];
    let (mut rows, mut cols) = (vec![0usize; ka], vec![0usize; kb]);
    for (&x, &y) in a.iter().zip(b) {
        table[x as usize * kb + y as usize] += 1;
        rows[x as usize] += 1;
        cols[y as usize] += 1;
    }
    let index: f64 = table.iter().map(|&c| pairs(c)).sum();
    let sum_a: f64 = rows.iter().map(|&c| pairs(c)).sum();
    let sum_b: f64 = cols.iter().map(|&c| pairs(c)).sum();
    let expected = sum_a * sum_b / pairs(n).max(1.0);
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        // Both groupings put everything together (or everything apart): they agree.
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `centres` (2-D), spread ±0.1, in cluster order.
    fn blobs(centres: &[[f32; 2]], per: usize) -> (Features, Vec<u32>) {
        let mut rng = rng(3, Stream::KmeansStarts);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for (c, centre) in centres.iter().enumerate() {
            for _ in 0..per {
                data.push(centre[0] + rng.random_range(-0.1..0.1));
                data.push(centre[1] + rng.random_range(-0.1..0.1));
                labels.push(c as u32);
            }
        }
        (Features::new(data, centres.len() * per, 2).unwrap(), labels)
    }

    #[test]
    fn well_separated_blobs_are_found_and_their_number_chosen() {
        let (f, labels) = blobs(&[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [3.0, 3.0]], 30);
        let c = cluster(&f, ClusterCount::Auto, Some(&labels), 1).unwrap();
        assert_eq!(c.k, 4, "tried {:?}", c.tried);
        assert!(c.chosen);
        assert_eq!(c.adjusted_rand_index, Some(1.0));
        assert_eq!(c.sizes, vec![30; 4]);
        assert!(c.silhouette > 0.8);
        // Given a count, it is used.
        let two = cluster(&f, ClusterCount::Fixed(2), Some(&labels), 1).unwrap();
        assert_eq!((two.k, two.chosen), (2, false));
        assert!(two.adjusted_rand_index.unwrap() < 0.7);
    }

    #[test]
    fn adjusted_rand_index_is_one_for_a_renaming_and_near_zero_for_chance() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1, 2], &[2, 2, 0, 0, 1]), 1.0);
        let mut rng = rng(5, Stream::KmeansStarts);
        let a: Vec<u32> = (0..2000).map(|_| rng.random_range(0..5)).collect();
        let b: Vec<u32> = (0..2000).map(|_| rng.random_range(0..5)).collect();
        assert!(adjusted_rand_index(&a, &b).abs() < 0.02);
    }

    #[test]
    fn counts_are_parsed_and_refused_in_words() {
        assert_eq!("auto".parse::<ClusterCount>(), Ok(ClusterCount::Auto));
        assert_eq!("7".parse::<ClusterCount>(), Ok(ClusterCount::Fixed(7)));
        assert!(
            "1".parse::<ClusterCount>()
                .unwrap_err()
                .contains("at least 2")
        );
        let (f, _) = blobs(&[[0.0, 0.0]], 3);
        assert!(cluster(&f, ClusterCount::Fixed(5), None, 0).is_err());
    }
}
