//! Maximum mean discrepancy (MMD): the distance between the two domains' mean
//! embeddings in a kernel feature space, estimated without bias, with a permutation
//! test that says how sure the difference is.
//!
//! Definitions, shared with the training methods (DDC/DAN) so that their loss and
//! this report mean the same thing:
//! - the kernel is the *mean* of Gaussian kernels
//!   `k(a, b) = (1/M) Σ_m exp(−‖a − b‖² / γ_m)`, so `k(a, a) = 1` and MMD² ∈ [−1, 2];
//! - the bandwidths are `γ_m = c_m · median(‖a − b‖²)` with multipliers
//!   `c_m ∈ {0.25, 0.5, 1, 2, 4}` (the median heuristic over the pooled data, taken
//!   on a seeded subsample of at most 1000 points);
//! - MMD² is the unbiased U-statistic (it can be slightly negative when the domains
//!   are the same).
//!
//! Speed: the pooled kernel matrix is computed once (distances through a blocked
//! parallel GEMM); each permutation only re-sums it under new group labels, and a
//! batch of permutations is one more GEMM (`K · M`, with `M` the 0/1 group masks;
//! f32 products of at most n terms, every sum after that in f64). Large domains are subsampled to `max_points` each (seeded),
//! which the result reports.

use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::{Operand, matmul, pairwise_sq_distances};
use super::random::{self, Stream};
use super::{AnalysisError, Features, validate_pair};

/// Bandwidth multipliers of the median squared distance.
pub const BANDWIDTH_MULTIPLIERS: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];
/// Default cap on samples per domain for the permutation test.
pub const DEFAULT_MAX_POINTS: usize = 1000;
/// Points used to estimate the median pairwise squared distance.
pub const MEDIAN_MAX_POINTS: usize = 1000;
/// Permutations evaluated per kernel-matrix product.
const PERMUTATION_BATCH: usize = 64;
/// Most pooled rows a kernel matrix may have (its memory is quadratic: 20,000
/// rows already take 1.6 GB per matrix).
pub const MAX_POOLED_ROWS: usize = 20_000;

/// Settings for `mmd_permutation_test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MmdOptions {
    /// Random relabellings for the p-value (0 gives p = 1).
    pub permutations: usize,
    /// Samples per domain kept (seeded subsample above this).
    pub max_points: usize,
    /// Seed for subsampling and permutations.
    pub seed: u64,
    /// Bandwidths as multiples of the median squared distance.
    pub multipliers: Vec<f64>,
}

impl Default for MmdOptions {
    fn default() -> Self {
        Self {
            permutations: 200,
            max_points: DEFAULT_MAX_POINTS,
            seed: 0,
            multipliers: BANDWIDTH_MULTIPLIERS.to_vec(),
        }
    }
}

/// The outcome of a two-sample MMD test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmdTest {
    /// Unbiased MMD² between the (possibly subsampled) domains.
    pub mmd2: f64,
    /// `(1 + #{permuted MMD² ≥ observed}) / (1 + permutations)`.
    pub p_value: f64,
    /// Permutations used.
    pub permutations: usize,
    /// Samples per domain used, when either domain was subsampled.
    pub subsampled_to: Option<usize>,
    /// Median pooled pairwise squared distance.
    pub median_sq_distance: f64,
    /// The kernel bandwidths γ_m.
    pub bandwidths: Vec<f64>,
}

/// Median pairwise squared Euclidean distance between the rows of `all`, over a
/// seeded subsample of at most `max_points` rows. Falls back to the mean when more
/// than half the pairs coincide; errors when every row is identical.
pub fn median_sq_distance(
    all: &Features,
    max_points: usize,
    seed: u64,
) -> Result<f64, AnalysisError> {
    all.validate("points")?;
    if all.n < 2 {
        return Err(AnalysisError::TooFewPoints {
            method: "the median heuristic",
            need: 2,
            got: all.n,
        });
    }
    let mut rng = random::rng(seed, Stream::MmdMedian);
    let (sub, _) = all.subsample(max_points.max(2), &mut rng);
    let dist = pairwise_sq_distances(&sub.data, sub.n, sub.d);
    median_of_pairs(&dist, sub.n, None)
}

/// Unbiased MMD² between `x` and `y` with the mean of Gaussian kernels of squared
/// bandwidths `bandwidths` (γ_m in `exp(−‖a − b‖² / γ_m)`). Uses every row: memory
/// and time grow with (n_x + n_y)², so subsample large inputs first (as
/// `mmd_permutation_test` does).
pub fn mmd2_unbiased(x: &Features, y: &Features, bandwidths: &[f64]) -> Result<f64, AnalysisError> {
    validate_pair(x, y, "MMD²", 2)?;
    check_bandwidths(bandwidths)?;
    if x.n + y.n > MAX_POOLED_ROWS {
        return Err(AnalysisError::InvalidOption {
            name: "mmd2_unbiased input",
            reason: format!(
                "at most {MAX_POOLED_ROWS} rows in total (the kernel matrix is quadratic), got {}: subsample first",
                x.n + y.n
            ),
        });
    }
    let pooled = Features::stack(x, y);
    let dist = pairwise_sq_distances(&pooled.data, pooled.n, pooled.d);
    let n = pooled.n;
    let kernel = Kernel::new(bandwidths);
    // Per-row sums within X, within Y and across, combined in row order.
    let rows: Vec<(f64, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let row = &dist[i * n..(i + 1) * n];
            let (mut within_x, mut within_y, mut across) = (0.0, 0.0, 0.0);
            for (j, &d2) in row.iter().enumerate() {
                if i == j {
                    continue;
                }
                let k = kernel.eval(d2);
                match (i < x.n, j < x.n) {
                    (true, true) => within_x += k,
                    (false, false) => within_y += k,
                    _ => across += k,
                }
            }
            (within_x, within_y, across)
        })
        .collect();
    let (sxx, syy, sxy) = rows
        .iter()
        .fold((0.0, 0.0, 0.0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2));
    let (m, k) = (x.n as f64, y.n as f64);
    // `sxy` counts every cross pair twice (once from each side).
    Ok(sxx / (m * (m - 1.0)) + syy / (k * (k - 1.0)) - sxy / (m * k))
}

/// MMD² between `x` and `y` with its permutation p-value; see the module docs.
pub fn mmd_permutation_test(
    x: &Features,
    y: &Features,
    opts: &MmdOptions,
) -> Result<MmdTest, AnalysisError> {
    validate_pair(x, y, "MMD²", 2)?;
    if !(2..=MAX_POOLED_ROWS / 2).contains(&opts.max_points) {
        return Err(AnalysisError::InvalidOption {
            name: "mmd max_points",
            reason: format!(
                "must be between 2 and {} (the kernel matrix is quadratic in it), got {}",
                MAX_POOLED_ROWS / 2,
                opts.max_points
            ),
        });
    }
    check_multipliers(&opts.multipliers)?;

    let mut rng = random::rng(opts.seed, Stream::MmdSubsample);
    let (xs, x_idx) = x.subsample(opts.max_points, &mut rng);
    let (ys, y_idx) = y.subsample(opts.max_points, &mut rng);
    let subsampled_to = (x_idx.is_some() || y_idx.is_some()).then_some(opts.max_points);

    let pooled = Features::stack(&xs, &ys);
    let n = pooled.n;
    let dist = pairwise_sq_distances(&pooled.data, n, pooled.d);

    let mut median_rng = random::rng(opts.seed, Stream::MmdMedian);
    let median_idx = random::subsample_indices(n, MEDIAN_MAX_POINTS, &mut median_rng);
    let median = median_of_pairs(&dist, n, median_idx.as_deref())?;
    let bandwidths: Vec<f64> = opts.multipliers.iter().map(|c| c * median).collect();

    let kernel_matrix = KernelMatrix::new(&dist, n, &bandwidths);
    drop(dist);

    // Group masks: the observed split first, then the permutations.
    let mut perm_rng = random::rng(opts.seed, Stream::MmdPermutations);
    let mut order: Vec<usize> = (0..n).collect();
    let mut observed = None;
    let mut at_least_observed = 0usize;
    let total = opts.permutations + 1;
    let mut done = 0;
    while done < total {
        let batch = PERMUTATION_BATCH.min(total - done);
        let mut masks = vec![0.0f32; n * batch];
        for col in 0..batch {
            if done + col == 0 {
                (0..xs.n).for_each(|i| masks[i * batch] = 1.0);
            } else {
                order.shuffle(&mut perm_rng);
                order[..xs.n]
                    .iter()
                    .for_each(|&i| masks[i * batch + col] = 1.0);
            }
        }
        let stats = kernel_matrix.split_statistics(&masks, batch, xs.n);
        for stat in stats {
            match observed {
                None => observed = Some(stat),
                Some(obs) => at_least_observed += usize::from(stat >= obs),
            }
        }
        done += batch;
    }
    let mmd2 = observed.unwrap_or(0.0);
    Ok(MmdTest {
        mmd2,
        p_value: (1 + at_least_observed) as f64 / (1 + opts.permutations) as f64,
        permutations: opts.permutations,
        subsampled_to,
        median_sq_distance: median,
        bandwidths,
    })
}

/// The mean-of-Gaussians kernel, evaluated with one `exp` per pair when the
/// bandwidths form a doubling ladder (as the default multipliers do): with
/// `e = exp(−d²/γ_max)`, the kernel of bandwidth `γ_max / 2^j` is `e^(2^j)`.
#[derive(Debug, Clone)]
enum Kernel {
    Doubling { widest: f64, count: usize },
    General(Vec<f64>),
}

impl Kernel {
    fn new(bandwidths: &[f64]) -> Self {
        let mut sorted = bandwidths.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        // Halving a float is exact, so an exact comparison is right here.
        if sorted.windows(2).all(|w| w[1] * 2.0 == w[0]) {
            Kernel::Doubling {
                widest: sorted[0],
                count: sorted.len(),
            }
        } else {
            Kernel::General(sorted)
        }
    }

    #[inline]
    fn eval(&self, d2: f32) -> f64 {
        let d2 = f64::from(d2);
        match self {
            Kernel::Doubling { widest, count } => {
                let mut e = (-d2 / widest).exp();
                let mut sum = e;
                for _ in 1..*count {
                    e *= e;
                    sum += e;
                }
                sum / *count as f64
            }
            Kernel::General(gammas) => {
                gammas.iter().map(|g| (-d2 / g).exp()).sum::<f64>() / gammas.len() as f64
            }
        }
    }
}

fn check_bandwidths(bandwidths: &[f64]) -> Result<(), AnalysisError> {
    if bandwidths.is_empty() || bandwidths.iter().any(|g| !(g.is_finite() && *g > 0.0)) {
        return Err(AnalysisError::InvalidOption {
            name: "mmd bandwidths",
            reason: format!("need at least one finite positive bandwidth, got {bandwidths:?}"),
        });
    }
    Ok(())
}

fn check_multipliers(multipliers: &[f64]) -> Result<(), AnalysisError> {
    check_bandwidths(multipliers).map_err(|_| AnalysisError::InvalidOption {
        name: "mmd multipliers",
        reason: format!("need at least one finite positive multiplier, got {multipliers:?}"),
    })
}

/// Median of the squared distances over pairs `i < j` of `subset` (or of all rows).
fn median_of_pairs(dist: &[f32], n: usize, subset: Option<&[usize]>) -> Result<f64, AnalysisError> {
    let all: Vec<usize>;
    let idx = match subset {
        Some(s) => s,
        None => {
            all = (0..n).collect();
            &all
        }
    };
    let mut pairs: Vec<f32> = Vec::with_capacity(idx.len() * idx.len().saturating_sub(1) / 2);
    for (a, &i) in idx.iter().enumerate() {
        for &j in &idx[a + 1..] {
            pairs.push(dist[i * n + j]);
        }
    }
    if pairs.is_empty() {
        return Err(AnalysisError::TooFewPoints {
            method: "the median heuristic",
            need: 2,
            got: idx.len(),
        });
    }
    let mid = pairs.len() / 2;
    let (_, &mut median, _) = pairs.select_nth_unstable_by(mid, f32::total_cmp);
    if median > 0.0 {
        return Ok(f64::from(median));
    }
    let mean = pairs.iter().map(|&v| f64::from(v)).sum::<f64>() / pairs.len() as f64;
    if mean > 0.0 {
        Ok(mean)
    } else {
        Err(AnalysisError::ConstantFeatures)
    }
}

/// The pooled kernel matrix (f32: values in (0, 1]) with the f64 sums every group
/// split needs.
struct KernelMatrix {
    n: usize,
    k: Vec<f32>,
    row_sums: Vec<f64>,
    col_sums: Vec<f64>,
    diag: Vec<f64>,
    total: f64,
}

impl KernelMatrix {
    fn new(dist: &[f32], n: usize, bandwidths: &[f64]) -> Self {
        let kernel = Kernel::new(bandwidths);
        let mut k = vec![0.0f32; n * n];
        let row_sums: Vec<f64> = k
            .par_chunks_mut(n)
            .zip(dist.par_chunks(n))
            .map(|(k_row, d_row)| {
                let mut sum = 0.0f64;
                for (kv, &d2) in k_row.iter_mut().zip(d_row) {
                    *kv = kernel.eval(d2) as f32;
                    sum += f64::from(*kv);
                }
                sum
            })
            .collect();
        let mut col_sums = vec![0.0f64; n];
        for row in k.chunks_exact(n) {
            for (c, &v) in col_sums.iter_mut().zip(row) {
                *c += f64::from(v);
            }
        }
        let diag = (0..n).map(|i| f64::from(k[i * n + i])).collect();
        let total = row_sums.iter().sum();
        Self {
            n,
            k,
            row_sums,
            col_sums,
            diag,
            total,
        }
    }

    /// Unbiased MMD² for each of `batch` splits; `masks` is row-major `n × batch`
    /// with 1 where a row belongs to group X (of size `n_x`). `K · masks` runs in
    /// f32 (sums of at most n values in (0, 1]); everything after is f64.
    fn split_statistics(&self, masks: &[f32], batch: usize, n_x: usize) -> Vec<f64> {
        let n = self.n;
        let v = matmul(Operand::new(&self.k, n, n), Operand::new(masks, n, batch));
        let (m, n_y) = (n_x as f64, (n - n_x) as f64);
        let diag_total: f64 = self.diag.iter().sum();
        (0..batch)
            .map(|p| {
                // q = mᵀKm, rx = mᵀK1, cx = 1ᵀKm, dx = Σ_{i∈X} K_ii.
                let (mut q, mut rx, mut cx, mut dx) = (0.0, 0.0, 0.0, 0.0);
                for i in 0..n {
                    if masks[i * batch + p] != 0.0 {
                        q += f64::from(v[i * batch + p]);
                        rx += self.row_sums[i];
                        cx += self.col_sums[i];
                        dx += self.diag[i];
                    }
                }
                let within_x = q - dx;
                let within_y = self.total - rx - cx + q - (diag_total - dx);
                let across_both_ways = rx + cx - 2.0 * q;
                within_x / (m * (m - 1.0)) + within_y / (n_y * (n_y - 1.0))
                    - across_both_ways / (m * n_y)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::gaussian_domain;
    use super::*;

    fn quick(permutations: usize) -> MmdOptions {
        MmdOptions {
            permutations,
            ..MmdOptions::default()
        }
    }

    #[test]
    fn two_halves_of_one_domain_are_not_significantly_different() {
        let all = gaussian_domain(400, 5, 0.0, 1.0, 42);
        let x = all.select(&(0..200).collect::<Vec<_>>());
        let y = all.select(&(200..400).collect::<Vec<_>>());
        let t = mmd_permutation_test(&x, &y, &quick(200)).unwrap();
        assert!(t.p_value > 0.05, "p = {}", t.p_value);
        assert!(t.mmd2.abs() < 0.01, "mmd2 = {}", t.mmd2);
    }

    #[test]
    fn a_three_sigma_shift_is_highly_significant() {
        let x = gaussian_domain(100, 5, 0.0, 1.0, 1);
        let y = gaussian_domain(100, 5, 3.0, 1.0, 2);
        let t = mmd_permutation_test(&x, &y, &quick(200)).unwrap();
        assert!(t.p_value < 0.01, "p = {}", t.p_value);
        assert!(t.mmd2 > 0.3, "mmd2 = {}", t.mmd2);
    }

    #[test]
    fn mmd_grows_with_the_mean_shift() {
        let x = gaussian_domain(150, 4, 0.0, 1.0, 5);
        let mut last = f64::NEG_INFINITY;
        for shift in [0.0, 0.5, 1.0, 2.0] {
            let y = gaussian_domain(150, 4, shift, 1.0, 6);
            let t = mmd_permutation_test(&x, &y, &quick(0)).unwrap();
            assert!(t.mmd2 > last, "shift {shift}: {} after {last}", t.mmd2);
            last = t.mmd2;
        }
    }

    #[test]
    fn the_permutation_shortcut_matches_the_direct_estimate() {
        let x = gaussian_domain(40, 3, 0.0, 1.0, 7);
        let y = gaussian_domain(30, 3, 0.7, 1.5, 8);
        let t = mmd_permutation_test(&x, &y, &quick(10)).unwrap();
        let direct = mmd2_unbiased(&x, &y, &t.bandwidths).unwrap();
        // The permutation path sums an f32 kernel matrix.
        assert!((t.mmd2 - direct).abs() < 1e-6, "{} vs {direct}", t.mmd2);
        // Same seed, same answer.
        assert_eq!(t, mmd_permutation_test(&x, &y, &quick(10)).unwrap());
    }

    #[test]
    fn the_doubling_kernel_matches_the_definition() {
        let bandwidths: Vec<f64> = BANDWIDTH_MULTIPLIERS.iter().map(|c| c * 3.7).collect();
        let fast = Kernel::new(&bandwidths);
        assert!(matches!(fast, Kernel::Doubling { count: 5, .. }));
        let general = Kernel::new(&[1.0, 3.0]);
        assert!(matches!(general, Kernel::General(_)));
        for d2 in [0.0f32, 0.3, 2.0, 10.0, 100.0] {
            let want = bandwidths
                .iter()
                .map(|g| (-f64::from(d2) / g).exp())
                .sum::<f64>()
                / 5.0;
            assert!((fast.eval(d2) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn large_domains_are_subsampled_and_say_so() {
        let x = gaussian_domain(300, 3, 0.0, 1.0, 9);
        let y = gaussian_domain(50, 3, 0.0, 1.0, 10);
        let opts = MmdOptions {
            max_points: 100,
            permutations: 20,
            ..MmdOptions::default()
        };
        assert_eq!(
            mmd_permutation_test(&x, &y, &opts).unwrap().subsampled_to,
            Some(100)
        );
        assert_eq!(
            mmd_permutation_test(&y, &y, &quick(5))
                .unwrap()
                .subsampled_to,
            None
        );
    }

    #[test]
    fn median_heuristic_on_known_points() {
        // Points 0, 1, 3 on a line: squared distances 1, 4, 9.
        let f = Features::new(vec![0.0, 1.0, 3.0], 3, 1).unwrap();
        assert_eq!(median_sq_distance(&f, 1000, 0).unwrap(), 4.0);
        let same = Features::new(vec![2.0; 4], 4, 1).unwrap();
        assert_eq!(
            median_sq_distance(&same, 1000, 0).unwrap_err(),
            AnalysisError::ConstantFeatures
        );
    }

    #[test]
    fn degenerate_inputs_are_errors_not_panics() {
        let x = gaussian_domain(10, 3, 0.0, 1.0, 1);
        let one = gaussian_domain(1, 3, 0.0, 1.0, 2);
        let err = mmd_permutation_test(&x, &one, &quick(5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "need at least 2 samples per domain for MMD², got 1 in domain 'target': add images to it"
        );
        let empty = Features::new(Vec::new(), 0, 3).unwrap();
        assert!(mmd2_unbiased(&empty, &x, &[1.0]).is_err());
        assert!(mmd2_unbiased(&x, &x, &[]).is_err());
        assert!(mmd2_unbiased(&x, &x, &[f64::NAN]).is_err());
    }
}
