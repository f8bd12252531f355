//! How good is a model on the target, without the target's labels? In real use the target
//! has none (that is why one transfers), so a run's true target accuracy is unknown. Four
//! estimators from the literature, each computed from what a run has without them:
//!
//! - **IWCV** (importance-weighted cross-validation, Sugiyama et al. 2007): the error on
//!   held-out *source* images, each weighted by how target-like it is, w = p_t(x)/p_s(x).
//!   The density ratio comes from a logistic-regression domain classifier on the model's
//!   features (balanced, so w = e^score), clipped to [1/20, 20] and normalised to mean 1.
//!   With the 0-1 loss, 1 − IWCV is an estimate of the target accuracy.
//! - **DEV** (deep embedded validation, You et al. 2019): IWCV with a control variate,
//!   DEV = mean(wL) + η·mean(w) − η with η = −Cov(wL, w)/Var(w), which removes much of
//!   IWCV's variance when a few weights are large. 1 − DEV estimates the target accuracy.
//! - **SND** (soft neighbourhood density, Saito et al. 2021): the entropy of each target
//!   image's soft neighbourhood in prediction space (cosine similarities of the L2-normalised
//!   class probabilities, scaled by 1/τ, τ = 0.05, softmax over the other images). Higher
//!   means the predictions form dense, consistent clusters; it ranks models, its scale
//!   means nothing on its own.
//! - **ATC** (average thresholded confidence, Garg et al. 2022): a confidence threshold
//!   chosen on the held-out source so that the share of its images above it equals its
//!   accuracy; the share of target images above the same threshold estimates the target
//!   accuracy. The score is the negative entropy of the prediction (the paper's ATC-NE).
//!   It fails where the model is confidently wrong on the target.
//! - **Entropy**: the mean entropy of the target predictions in nats (lower: more
//!   confident). A model can be confidently wrong, so it is the weakest of the four.

use serde::{Deserialize, Serialize};

use super::a_distance::{ADistanceOptions, LogisticRegression};
use super::random::{self, Stream};
use super::standardize::Standardizer;
use super::{AnalysisError, Features};

/// The estimates of one model on one target, none of them using target labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelFree {
    /// Soft neighbourhood density of the target predictions (higher is better).
    pub snd: f64,
    /// Mean entropy of the target predictions, in nats (lower is more confident).
    pub entropy: f64,
    /// Estimates of the target accuracy from the held-out source (None without one).
    pub accuracy: Option<AccuracyEstimates>,
}

/// Three estimates of the target accuracy, each in [0, 1].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AccuracyEstimates {
    /// Average thresholded confidence.
    pub atc: f64,
    /// 1 − DEV risk (0-1 loss).
    pub dev: f64,
    /// 1 − IWCV risk (0-1 loss).
    pub iwcv: f64,
}

impl LabelFree {
    /// One line for people: the accuracy estimates, then SND and entropy.
    pub fn summary(&self) -> String {
        let pct = |v: f64| format!("{:.1}%", 100.0 * v);
        let accuracy = match &self.accuracy {
            Some(a) => format!(
                "ATC {}, DEV {}, IWCV {}; ",
                pct(a.atc),
                pct(a.dev),
                pct(a.iwcv)
            ),
            None => "no accuracy estimate (no held-out source); ".into(),
        };
        format!(
            "{accuracy}SND {:.2}, entropy {:.2} nats",
            self.snd, self.entropy
        )
    }
}

/// SND's temperature (the paper's 0.05).
pub const SND_TEMPERATURE: f64 = 0.05;
/// Target images SND looks at (a seeded subsample above this keeps it O(n²) but small).
pub const SND_MAX_POINTS: usize = 1000;
/// Largest density ratio (and 1 / smallest) IWCV and DEV use.
pub const MAX_RATIO: f64 = 20.0;

/// The held-out source images of a run: features, class probabilities, and whether the
/// model got each right.
pub struct HeldOutSource<'a> {
    pub features: &'a Features,
    pub probs: &'a [Vec<f32>],
    pub correct: &'a [bool],
}

/// Every estimate for a model whose target predictions are `target_probs` (one row of class
/// probabilities per image) on target features `target_features`, with the held-out
/// source when the run has one.
pub fn estimate(
    target_probs: &[Vec<f32>],
    target_features: &Features,
    source: Option<HeldOutSource>,
    seed: u64,
) -> Result<LabelFree, AnalysisError> {
    let mut out = LabelFree {
        snd: soft_neighbourhood_density(target_probs, SND_TEMPERATURE, seed),
        entropy: mean_entropy(target_probs),
        ..Default::default()
    };
    if let Some(source) = source.filter(|s| s.features.n >= 2 && target_features.n >= 2) {
        let w = importance_weights(source.features, target_features, seed)?;
        let loss: Vec<f64> = source.correct.iter().map(|&c| f64::from(!c)).collect();
        let (iwcv, dev) = iwcv_and_dev(&w, &loss);
        out.accuracy = Some(AccuracyEstimates {
            atc: atc(source.probs, source.correct, target_probs),
            dev: (1.0 - dev).clamp(0.0, 1.0),
            iwcv: (1.0 - iwcv).clamp(0.0, 1.0),
        });
    }
    Ok(out)
}

/// Entropy (nats) of one probability row.
fn entropy(p: &[f32]) -> f64 {
    p.iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| -(v as f64) * (v as f64).ln())
        .sum()
}

/// Mean entropy (nats) of probability rows.
pub fn mean_entropy(probs: &[Vec<f32>]) -> f64 {
    probs.iter().map(|p| entropy(p)).sum::<f64>() / probs.len().max(1) as f64
}

/// ATC-NE: the threshold on −entropy above which the share of the held-out source rows
/// (`source_probs`, `correct`) equals their accuracy, and the share of `target_probs`
/// above it.
pub fn atc(source_probs: &[Vec<f32>], correct: &[bool], target_probs: &[Vec<f32>]) -> f64 {
    let mut scores: Vec<f64> = source_probs.iter().map(|p| -entropy(p)).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    let right = correct.iter().filter(|&&c| c).count();
    if right == 0 || target_probs.is_empty() {
        return 0.0;
    }
    // The `right`-th highest score: exactly `right` source rows are at or above it.
    let threshold = scores[right - 1];
    let above = target_probs
        .iter()
        .filter(|p| -entropy(p) >= threshold)
        .count();
    above as f64 / target_probs.len() as f64
}

/// SND of probability rows at temperature `tau` (see the module docs); 0 for fewer than
/// two rows.
pub fn soft_neighbourhood_density(probs: &[Vec<f32>], tau: f64, seed: u64) -> f64 {
    let mut rng = random::rng(seed, Stream::LabelFreeSubsample);
    let rows: Vec<Vec<f64>> = match random::subsample_indices(probs.len(), SND_MAX_POINTS, &mut rng)
    {
        Some(idx) => idx.iter().map(|&i| unit(&probs[i])).collect(),
        None => probs.iter().map(|p| unit(p)).collect(),
    };
    let n = rows.len();
    if n < 2 {
        return 0.0;
    }
    let total: f64 = (0..n)
        .map(|i| {
            let sims: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    rows[i]
                        .iter()
                        .zip(&rows[j])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                        / tau
                })
                .collect();
            let max = sims.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = sims.iter().map(|s| (s - max).exp()).sum();
            // Entropy of the softmax: log z − Σ p (s − max).
            let expect: f64 = sims.iter().map(|s| (s - max).exp() / z * (s - max)).sum();
            z.ln() - expect
        })
        .sum();
    total / n as f64
}

fn unit(p: &[f32]) -> Vec<f64> {
    let norm = p
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    p.iter().map(|&v| v as f64 / norm).collect()
}

/// Density ratios p_t/p_s of the `source` rows from a balanced logistic-regression domain
/// classifier between `source` and `target` (pooled-standardised), clipped to
/// [1/[`MAX_RATIO`], [`MAX_RATIO`]] and normalised to mean 1.
pub fn importance_weights(
    source: &Features,
    target: &Features,
    seed: u64,
) -> Result<Vec<f64>, AnalysisError> {
    let scaler = Standardizer::fit(&[source, target])?;
    let (s, t) = (scaler.apply(source), scaler.apply(target));
    let train = Features::stack(&s, &t);
    let labels: Vec<f32> = std::iter::repeat_n(0.0, s.n)
        .chain(std::iter::repeat_n(1.0, t.n))
        .collect();
    let weights: Vec<f32> = std::iter::repeat_n(0.5 / s.n as f32, s.n)
        .chain(std::iter::repeat_n(0.5 / t.n as f32, t.n))
        .collect();
    // A stronger penalty than the A-distance's: ratios from an overfitted classifier are
    // all 0 or ∞, and the estimate then rests on a handful of images.
    let opts = ADistanceOptions {
        l2: 1e-1,
        seed,
        ..Default::default()
    };
    let model = LogisticRegression::fit(&train, &labels, &weights, &opts);
    let clip = MAX_RATIO.ln();
    let w: Vec<f64> = s
        .rows()
        .map(|row| (model.score(row) as f64).clamp(-clip, clip).exp())
        .collect();
    let mean = w.iter().sum::<f64>() / w.len().max(1) as f64;
    Ok(w.into_iter().map(|v| v / mean).collect())
}

/// (IWCV, DEV) risks of per-sample `loss` under importance weights `w`.
pub fn iwcv_and_dev(w: &[f64], loss: &[f64]) -> (f64, f64) {
    let n = w.len().max(1) as f64;
    let wl: Vec<f64> = w.iter().zip(loss).map(|(a, b)| a * b).collect();
    let mean_wl = wl.iter().sum::<f64>() / n;
    let mean_w = w.iter().sum::<f64>() / n;
    let cov = wl
        .iter()
        .zip(w)
        .map(|(a, b)| (a - mean_wl) * (b - mean_w))
        .sum::<f64>()
        / n;
    let var = w.iter().map(|b| (b - mean_w).powi(2)).sum::<f64>() / n;
    let eta = if var > 1e-12 { -cov / var } else { 0.0 };
    (mean_wl, mean_wl + eta * mean_w - eta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_make_iwcv_and_dev_the_plain_error() {
        let loss = [1.0, 0.0, 0.0, 1.0];
        let (iwcv, dev) = iwcv_and_dev(&[1.0; 4], &loss);
        assert_eq!((iwcv, dev), (0.5, 0.5));
        // Weight on the wrong images raises the estimated target error.
        let (iwcv, _) = iwcv_and_dev(&[1.8, 0.2, 0.2, 1.8], &loss);
        assert!((iwcv - 0.9).abs() < 1e-12, "{iwcv}");
    }

    #[test]
    fn atc_counts_the_target_images_as_confident_as_the_source_images_it_got_right() {
        let sure = vec![0.99f32, 0.01];
        let unsure = vec![0.6f32, 0.4];
        let source = vec![sure.clone(), sure.clone(), sure.clone(), unsure.clone()];
        // Three of four source images right: the threshold sits at the confident ones.
        let correct = [true, true, false, true];
        let target = vec![sure.clone(), unsure.clone(), unsure.clone(), unsure];
        assert_eq!(atc(&source, &correct, &target), 0.25);
    }

    #[test]
    fn clustered_confident_predictions_have_higher_density_than_scattered_ones() {
        let clustered: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                if i % 2 == 0 {
                    vec![0.98, 0.02]
                } else {
                    vec![0.02, 0.98]
                }
            })
            .collect();
        let scattered: Vec<Vec<f32>> = (0..20)
            .map(|i| {
                let a = i as f32 / 19.0;
                vec![a, 1.0 - a]
            })
            .collect();
        let snd = |p: &[Vec<f32>]| soft_neighbourhood_density(p, SND_TEMPERATURE, 1);
        assert!(snd(&clustered) > snd(&scattered));
        assert!(mean_entropy(&clustered) < mean_entropy(&scattered));
    }

    #[test]
    fn source_rows_that_look_like_the_target_weigh_more() {
        // Source: half near 0, half near 3; target: all near 3.
        let rows = |c: &[f32]| Features::from_rows(&c.iter().map(|&v| vec![v]).collect::<Vec<_>>());
        let source = rows(&[0.0, 0.1, -0.1, 0.05, 3.0, 3.1, 2.9, 3.05]).unwrap();
        let target = rows(&[3.0, 2.95, 3.1, 3.02, 2.9, 3.07]).unwrap();
        let w = importance_weights(&source, &target, 1).unwrap();
        assert!(
            w[4..].iter().all(|&a| w[..4].iter().all(|&b| a > 2.0 * b)),
            "{w:?}"
        );
        assert!((w.iter().sum::<f64>() / 8.0 - 1.0).abs() < 1e-9);
    }
}
