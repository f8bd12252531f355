//! The proxy A-distance (Ben-David et al.): how well a linear classifier can tell
//! which domain a sample comes from. `A = 2(1 − 2ε)` with ε the classifier's
//! held-out error, folded to `min(ε, 1 − ε)` so that A ∈ [0, 2]: 0 when the domains
//! are indistinguishable, 2 when a hyperplane separates them perfectly.
//!
//! The classifier is L2-regularised logistic regression on pooled-standardised
//! features, trained by a fixed number of Nesterov-accelerated full-batch gradient
//! steps with a step size from a power-iteration bound on the curvature: no tuning,
//! no randomness beyond the seeded split, the same answer on every machine. Each
//! domain is split separately (stratified) and carries half of the loss weight,
//! and ε is the *balanced* error (mean of the two domains' error rates), so a small
//! target domain next to a large source cannot look "separable" by the classifier
//! simply predicting "source".

use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::{axpy, dot};
use super::random::{self, Stream};
use super::standardize::Standardizer;
use super::{AnalysisError, Features, MIN_SAMPLES_PER_DOMAIN, validate_pair};

/// Settings for `proxy_a_distance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ADistanceOptions {
    /// Share of each domain held out for testing, in (0, 1).
    pub test_fraction: f64,
    /// Samples per domain kept (seeded subsample above this).
    pub max_points: usize,
    /// Seed for the subsample and the split.
    pub seed: u64,
    /// L2 penalty on the weights (the loss is a weighted mean over samples).
    pub l2: f64,
    /// Gradient steps.
    pub iterations: usize,
}

impl Default for ADistanceOptions {
    fn default() -> Self {
        Self {
            test_fraction: 0.5,
            max_points: 5000,
            seed: 0,
            l2: 1e-3,
            iterations: 300,
        }
    }
}

/// How an A-distance was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ADistanceDetail {
    /// Source samples the classifier was trained on.
    pub train_source: usize,
    /// Target samples the classifier was trained on.
    pub train_target: usize,
    /// Held-out source samples.
    pub test_source: usize,
    /// Held-out target samples.
    pub test_target: usize,
    /// Balanced held-out error ε after folding, in [0, 0.5].
    pub held_out_error: f64,
    /// Balanced training error (far below `held_out_error` means overfitting).
    pub train_error: f64,
    /// Approximate standard error of the A-distance from the test-set size.
    pub standard_error: f64,
    /// Samples per domain used, when either domain was subsampled.
    pub subsampled_to: Option<usize>,
}

/// A proxy A-distance with its detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ADistance {
    /// `2(1 − 2ε)` ∈ [0, 2].
    pub a_distance: f64,
    /// Split sizes and errors.
    pub detail: ADistanceDetail,
}

/// The proxy A-distance between `source` and `target`; see the module docs.
pub fn proxy_a_distance(
    source: &Features,
    target: &Features,
    opts: &ADistanceOptions,
) -> Result<ADistance, AnalysisError> {
    validate_pair(source, target, "the A-distance", MIN_SAMPLES_PER_DOMAIN)?;
    if !(opts.test_fraction > 0.0 && opts.test_fraction < 1.0) {
        return Err(AnalysisError::InvalidOption {
            name: "a_distance test_fraction",
            reason: format!(
                "must lie strictly between 0 and 1, got {}",
                opts.test_fraction
            ),
        });
    }
    if opts.max_points < MIN_SAMPLES_PER_DOMAIN {
        return Err(AnalysisError::InvalidOption {
            name: "a_distance max_points",
            reason: format!(
                "must be at least {MIN_SAMPLES_PER_DOMAIN}, got {}",
                opts.max_points
            ),
        });
    }
    if !(opts.l2.is_finite() && opts.l2 >= 0.0) {
        return Err(AnalysisError::InvalidOption {
            name: "a_distance l2",
            reason: format!("must be a finite number ≥ 0, got {}", opts.l2),
        });
    }

    let mut rng = random::rng(opts.seed, Stream::ADistanceSubsample);
    let (s, s_idx) = source.subsample(opts.max_points, &mut rng);
    let (t, t_idx) = target.subsample(opts.max_points, &mut rng);
    let subsampled_to = (s_idx.is_some() || t_idx.is_some()).then_some(opts.max_points);

    let scaler = Standardizer::fit(&[&s, &t])?;
    let (s, t) = (scaler.apply(&s), scaler.apply(&t));

    let mut split_rng = random::rng(opts.seed, Stream::ADistanceSplit);
    let (s_train, s_test) = split(s.n, opts.test_fraction, &mut split_rng);
    let (t_train, t_test) = split(t.n, opts.test_fraction, &mut split_rng);

    let train = Features::stack(&s.select(&s_train), &t.select(&t_train));
    let labels: Vec<f32> = std::iter::repeat_n(0.0, s_train.len())
        .chain(std::iter::repeat_n(1.0, t_train.len()))
        .collect();
    // Each domain carries half of the loss.
    let weights: Vec<f32> = std::iter::repeat_n(0.5 / s_train.len() as f32, s_train.len())
        .chain(std::iter::repeat_n(
            0.5 / t_train.len() as f32,
            t_train.len(),
        ))
        .collect();
    let model = LogisticRegression::fit(&train, &labels, &weights, opts);

    let error_rate = |f: &Features, idx: &[usize], label_is_target: bool| -> f64 {
        let wrong = idx
            .iter()
            .filter(|&&i| (model.score(f.row(i)) > 0.0) != label_is_target)
            .count();
        wrong as f64 / idx.len() as f64
    };
    let (es, et) = (
        error_rate(&s, &s_test, false),
        error_rate(&t, &t_test, true),
    );
    let raw = 0.5 * (es + et);
    let held_out_error = raw.min(1.0 - raw);
    let train_error = 0.5 * (error_rate(&s, &s_train, false) + error_rate(&t, &t_train, true));
    let se_eps = 0.5
        * (es * (1.0 - es) / s_test.len() as f64 + et * (1.0 - et) / t_test.len() as f64).sqrt();

    Ok(ADistance {
        a_distance: 2.0 * (1.0 - 2.0 * held_out_error),
        detail: ADistanceDetail {
            train_source: s_train.len(),
            train_target: t_train.len(),
            test_source: s_test.len(),
            test_target: t_test.len(),
            held_out_error,
            train_error,
            standard_error: 4.0 * se_eps,
            subsampled_to,
        },
    })
}

/// Shuffled (train, test) indices of `n` rows, with at least two rows on each side.
fn split(n: usize, test_fraction: f64, rng: &mut impl rand::Rng) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let n_test = ((n as f64 * test_fraction).round() as usize).clamp(2, n - 2);
    let test = idx.split_off(n - n_test);
    (idx, test)
}

/// A linear classifier `w·x + b`; positive scores mean "target".
pub(crate) struct LogisticRegression {
    w: Vec<f32>,
    b: f32,
}

impl LogisticRegression {
    pub(crate) fn score(&self, x: &[f32]) -> f32 {
        dot(&self.w, x) + self.b
    }

    /// Minimises `Σ_i s_i · log-loss_i + (l2/2)‖w‖²` (bias unpenalised) by
    /// Nesterov-accelerated gradient descent with step `1/L`.
    pub(crate) fn fit(
        x: &Features,
        y: &[f32],
        sample_weights: &[f32],
        opts: &ADistanceOptions,
    ) -> Self {
        let d = x.d;
        let l2 = opts.l2 as f32;
        let lipschitz = 0.25 * largest_weighted_eigenvalue(x, sample_weights, opts.seed) + l2;
        let step = 1.0 / (lipschitz * 1.05);

        // Parameters: weights then bias, in one vector.
        let mut theta = vec![0.0f32; d + 1];
        let mut lookahead = theta.clone();
        let mut grad = vec![0.0f32; d + 1];
        for k in 0..opts.iterations {
            // ∇ = Σ_i s_i (σ(z_i) − y_i) [x_i, 1] + l2 [w, 0], in one pass over X.
            rows_pass(
                x,
                &lookahead,
                |i, z| sample_weights[i] * (sigmoid(z) - y[i]),
                &mut grad,
            );
            axpy(l2, &lookahead[..d], &mut grad[..d]);
            if grad.iter().fold(0.0f32, |m, g| m.max(g.abs())) < 1e-6 {
                theta.copy_from_slice(&lookahead);
                break;
            }
            let momentum = k as f32 / (k as f32 + 3.0);
            for ((th, la), g) in theta.iter_mut().zip(lookahead.iter_mut()).zip(&grad) {
                let next = *la - step * g;
                *la = next + momentum * (next - *th);
                *th = next;
            }
        }
        let b = theta[d];
        theta.truncate(d);
        Self { w: theta, b }
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// `out = Σ_i c_i [x_i, 1]` with `c_i = coef(i, x_i·v[..d] + v[d])`: one pass over
/// the rows (each row is read once, for its dot product and its update, which
/// halves the memory traffic of two separate matrix–vector products). Fixed row
/// blocks reduced in order keep the result deterministic.
fn rows_pass(x: &Features, v: &[f32], coef: impl Fn(usize, f32) -> f32 + Sync, out: &mut [f32]) {
    const BLOCK: usize = 256;
    let d = x.d;
    let partials: Vec<Vec<f32>> = x
        .data
        .par_chunks(BLOCK * d)
        .enumerate()
        .map(|(b, rows)| {
            let mut acc = vec![0.0f32; d + 1];
            for (r, row) in rows.chunks_exact(d).enumerate() {
                let c = coef(b * BLOCK + r, dot(&v[..d], row) + v[d]);
                axpy(c, row, &mut acc[..d]);
                acc[d] += c;
            }
            acc
        })
        .collect();
    out.fill(0.0);
    for p in &partials {
        axpy(1.0, p, out);
    }
}

/// Largest eigenvalue of `[X 1]ᵀ diag(s) [X 1]` by power iteration (an upper
/// bound on the logistic loss curvature, times 4).
fn largest_weighted_eigenvalue(x: &Features, s: &[f32], seed: u64) -> f32 {
    let d = x.d;
    let mut rng = random::rng(seed, Stream::ADistancePower);
    let mut v: Vec<f32> = (0..=d)
        .map(|_| random::standard_normal(&mut rng) as f32)
        .collect();
    let mut estimate = 0.0f32;
    let mut next = vec![0.0f32; d + 1];
    for _ in 0..30 {
        let norm = dot(&v, &v).sqrt();
        if norm == 0.0 || !norm.is_finite() {
            break;
        }
        v.iter_mut().for_each(|e| *e /= norm);
        rows_pass(x, &v, |i, z| s[i] * z, &mut next);
        let new_estimate = dot(&next, &v);
        std::mem::swap(&mut v, &mut next);
        let converged = (new_estimate - estimate).abs() <= 1e-3 * new_estimate.abs();
        estimate = new_estimate;
        if converged {
            break;
        }
    }
    // Guards the step size against a degenerate (all-zero) estimate.
    estimate.max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::gaussian_domain;
    use super::*;

    fn a(source: &Features, target: &Features) -> ADistance {
        proxy_a_distance(source, target, &ADistanceOptions::default()).unwrap()
    }

    #[test]
    fn two_halves_of_one_domain_are_close_to_zero() {
        let all = gaussian_domain(1000, 8, 0.0, 1.0, 3);
        let x = all.select(&(0..500).collect::<Vec<_>>());
        let y = all.select(&(500..1000).collect::<Vec<_>>());
        let r = a(&x, &y);
        assert!(r.a_distance < 0.3, "A = {}", r.a_distance);
        assert_eq!(
            (
                r.detail.train_source,
                r.detail.test_source,
                r.detail.train_target,
                r.detail.test_target
            ),
            (250, 250, 250, 250)
        );
    }

    #[test]
    fn a_three_sigma_shift_is_nearly_separable() {
        let x = gaussian_domain(200, 8, 0.0, 1.0, 4);
        let y = gaussian_domain(150, 8, 3.0, 1.0, 5);
        let r = a(&x, &y);
        assert!(r.a_distance > 1.5, "A = {}", r.a_distance);
        assert!(r.detail.held_out_error < 0.1);
    }

    #[test]
    fn a_distance_grows_with_the_mean_shift() {
        let x = gaussian_domain(400, 6, 0.0, 1.0, 6);
        let mut last = -1.0;
        for shift in [0.0, 0.5, 1.0, 2.0] {
            let y = gaussian_domain(400, 6, shift, 1.0, 7);
            let r = a(&x, &y);
            assert!(
                r.a_distance > last,
                "shift {shift}: {} after {last}",
                r.a_distance
            );
            last = r.a_distance;
        }
    }

    #[test]
    fn imbalanced_domains_do_not_look_separable() {
        let x = gaussian_domain(600, 5, 0.0, 1.0, 8);
        let y = gaussian_domain(30, 5, 0.0, 1.0, 9);
        assert!(a(&x, &y).a_distance < 0.6);
    }

    #[test]
    fn too_few_samples_and_bad_options_are_errors() {
        let x = gaussian_domain(10, 3, 0.0, 1.0, 1);
        let y = gaussian_domain(2, 3, 0.0, 1.0, 2);
        let err = proxy_a_distance(&x, &y, &ADistanceOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "need at least 4 samples per domain for the A-distance, got 2 in domain 'target': add images to it"
        );
        let opts = ADistanceOptions {
            test_fraction: 1.0,
            ..ADistanceOptions::default()
        };
        assert!(proxy_a_distance(&x, &x, &opts).is_err());
        // Four samples is enough: two to train, two to test.
        let four = gaussian_domain(4, 3, 0.0, 1.0, 3);
        let r = proxy_a_distance(&four, &four, &ADistanceOptions::default()).unwrap();
        assert!((0.0..=2.0).contains(&r.a_distance));
    }

    #[test]
    fn same_seed_same_answer() {
        let x = gaussian_domain(100, 4, 0.0, 1.0, 1);
        let y = gaussian_domain(100, 4, 0.4, 1.0, 2);
        assert_eq!(a(&x, &y), a(&x, &y));
    }
}
