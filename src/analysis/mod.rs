//! Domain similarity on plain feature matrices: how far a target domain lies from a
//! source domain, measured several ways (MMD² with a permutation p-value, the proxy
//! A-distance, the CORAL distance, per-class mean distances), a 2-D map of both
//! domains (PCA or t-SNE), and the advisor that turns those numbers into a
//! fine-tuning case and a method. Inputs are `Features` (rows of pixels or of a
//! backbone's activations); outputs are plain numbers and points that serialise
//! to JSON. Nothing here knows about egui or candle.
//!
//! Scales: MMD² and the embeddings work on the features as given (the MMD kernel's
//! bandwidth follows the data's own scale through the median heuristic, matching
//! what DDC/DAN optimise during training); the A-distance, the CORAL distance and
//! the per-class distances standardise every feature by statistics pooled over both
//! domains, so they do not depend on the units of the features and the shift
//! between domains stays visible (see `standardize`).

pub mod a_distance;
pub mod advisor;
pub mod bench;
pub mod cluster;
pub mod coral;
pub mod embedding;
pub mod label_free;
mod linalg;
pub mod mmd;
pub mod per_class;
mod random;
pub mod relations;
mod standardize;
pub mod synthetic;
pub mod transferability;

use serde::{Deserialize, Serialize};

pub use a_distance::{ADistance, ADistanceDetail, ADistanceOptions, proxy_a_distance};
pub use advisor::{
    Advice, FineTuneCase, FreezeAdvice, NegativeTransferWarning, RunOutcome, Thresholds,
    TransferMethod, advise, advise_pretrained, negative_transfer,
};
pub use bench::run_analysis_bench;
pub use coral::coral_distance;
pub use embedding::{
    EmbeddedPoint, Embedding, EmbeddingMethod, EmbeddingOptions, embed_domains, pca_2d, tsne_2d,
};
pub use mmd::{MmdOptions, MmdTest, median_sq_distance, mmd_permutation_test, mmd2_unbiased};
pub use per_class::{ClassDistance, PerClassReport, per_class_distances};

/// Fewest samples per domain the full report needs (the A-distance's train/test split
/// needs two of each domain on each side).
pub const MIN_SAMPLES_PER_DOMAIN: usize = 4;

/// What can go wrong when analysing domains. Messages say what and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The buffer length is not `n × d`.
    #[error("feature buffer has {len} values, expected n × d = {n} × {d}")]
    ShapeMismatch { len: usize, n: usize, d: usize },
    /// Rows of different lengths were given.
    #[error("feature row {row} has {len} values, expected {d} like the first row")]
    RaggedRows { row: usize, len: usize, d: usize },
    /// A NaN or an infinity in the input.
    #[error("{what} has a non-finite value (NaN or infinity) at row {row}, column {col}")]
    NonFinite {
        what: String,
        row: usize,
        col: usize,
    },
    /// A domain without samples.
    #[error("domain '{domain}' has no samples")]
    EmptyDomain { domain: String },
    /// Rows of length zero.
    #[error("features have no dimensions (d = 0): nothing to compare")]
    NoDimensions,
    /// The two domains' features do not have the same length.
    #[error("source features have {source_dim} dimensions but target features have {target_dim}")]
    DimensionMismatch {
        source_dim: usize,
        target_dim: usize,
    },
    /// Too few samples in a domain for a metric.
    #[error(
        "need at least {need} samples per domain for {metric}, got {got} in domain '{domain}': add images to it"
    )]
    TooFewSamples {
        metric: &'static str,
        need: usize,
        got: usize,
        domain: String,
    },
    /// Too few points for an embedding method.
    #[error("{method} needs at least {need} points, got {got}")]
    TooFewPoints {
        method: &'static str,
        need: usize,
        got: usize,
    },
    /// t-SNE's neighbourhood (3 × perplexity neighbours) does not fit in the data.
    #[error("t-SNE with perplexity {perplexity} needs at least {need} points, got {got}")]
    TsneTooFewPoints {
        perplexity: f64,
        need: usize,
        got: usize,
    },
    /// A perplexity that is not a finite number ≥ 1.
    #[error("t-SNE perplexity must be a finite number of at least 1, got {0}")]
    InvalidPerplexity(f64),
    /// Every feature is the same for every sample.
    #[error("all features are constant: nothing to compare")]
    ConstantFeatures,
    /// A label slice whose length differs from the domain's sample count.
    #[error("domain '{domain}' has {samples} samples but {labels} labels")]
    LabelCountMismatch {
        domain: String,
        samples: usize,
        labels: usize,
    },
    /// A label with no class name.
    #[error(
        "domain '{domain}' has label {label} at sample {index}, but there are only {n_classes} class names"
    )]
    LabelOutOfRange {
        domain: String,
        index: usize,
        label: u32,
        n_classes: usize,
    },
    /// An option outside its valid range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption { name: &'static str, reason: String },
}

/// A row-major `n × d` matrix of features: one row per sample (an image's pixels or
/// a backbone's activations).
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Row-major values, `n * d` of them.
    pub data: Vec<f32>,
    /// Number of samples (rows).
    pub n: usize,
    /// Number of features per sample (columns).
    pub d: usize,
}

impl Features {
    /// Wraps a row-major buffer, checking its length and that every value is finite.
    /// Empty (`n = 0`) and zero-width (`d = 0`) matrices are accepted here and
    /// rejected by the analyses that cannot use them.
    pub fn new(data: Vec<f32>, n: usize, d: usize) -> Result<Self, AnalysisError> {
        let features = Self { data, n, d };
        features.check_shape_and_values("features")?;
        Ok(features)
    }

    /// Builds features from equally long rows.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self, AnalysisError> {
        let d = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * d);
        for (row, values) in rows.iter().enumerate() {
            if values.len() != d {
                return Err(AnalysisError::RaggedRows {
                    row,
                    len: values.len(),
                    d,
                });
            }
            data.extend_from_slice(values);
        }
        Self::new(data, rows.len(), d)
    }

    /// Row `i` (panics when `i >= n`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Iterates over the rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        // `chunks_exact(0)` panics; a zero-width matrix has `n` empty rows.
        let d = self.d;
        (0..self.n).map(move |i| &self.data[i * d..(i + 1) * d])
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Features {
        let mut data = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Features {
            data,
            n: indices.len(),
            d: self.d,
        }
    }

    /// `a`'s rows followed by `b`'s (same `d`).
    pub fn stack(a: &Features, b: &Features) -> Features {
        debug_assert_eq!(a.d, b.d);
        let mut data = Vec::with_capacity(a.data.len() + b.data.len());
        data.extend_from_slice(&a.data);
        data.extend_from_slice(&b.data);
        Features {
            data,
            n: a.n + b.n,
            d: a.d,
        }
    }

    /// At most `max` rows drawn without replacement (seeded), with the kept row
    /// indices; `None` when all rows were kept.
    pub(crate) fn subsample(
        &self,
        max: usize,
        rng: &mut impl rand::Rng,
    ) -> (std::borrow::Cow<'_, Features>, Option<Vec<usize>>) {
        match random::subsample_indices(self.n, max, rng) {
            None => (std::borrow::Cow::Borrowed(self), None),
            Some(idx) => (std::borrow::Cow::Owned(self.select(&idx)), Some(idx)),
        }
    }

    fn check_shape_and_values(&self, what: &str) -> Result<(), AnalysisError> {
        if self.n.checked_mul(self.d) != Some(self.data.len()) {
            return Err(AnalysisError::ShapeMismatch {
                len: self.data.len(),
                n: self.n,
                d: self.d,
            });
        }
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(AnalysisError::NonFinite {
                what: what.to_string(),
                row: pos / self.d,
                col: pos % self.d,
            });
        }
        Ok(())
    }

    /// Checks that this domain can be analysed: consistent shape, at least one
    /// sample, at least one feature, only finite values. The public fields may have
    /// been filled in without `new`, so every analysis re-checks.
    pub(crate) fn validate(&self, domain: &str) -> Result<(), AnalysisError> {
        if self.n == 0 {
            return Err(AnalysisError::EmptyDomain {
                domain: domain.to_string(),
            });
        }
        if self.d == 0 {
            return Err(AnalysisError::NoDimensions);
        }
        self.check_shape_and_values(&format!("domain '{domain}'"))
    }
}

/// Checks two domains for a two-sample metric: each valid, same width, each with at
/// least `need` samples.
pub(crate) fn validate_pair(
    source: &Features,
    target: &Features,
    metric: &'static str,
    need: usize,
) -> Result<(), AnalysisError> {
    source.validate("source")?;
    target.validate("target")?;
    if source.d != target.d {
        return Err(AnalysisError::DimensionMismatch {
            source_dim: source.d,
            target_dim: target.d,
        });
    }
    for (domain, f) in [("source", source), ("target", target)] {
        if f.n < need {
            return Err(AnalysisError::TooFewSamples {
                metric,
                need,
                got: f.n,
                domain: domain.to_string(),
            });
        }
    }
    Ok(())
}

/// Checks that `labels` has one entry per sample, each naming a class.
pub(crate) fn validate_labels(
    domain: &str,
    labels: &[u32],
    samples: usize,
    n_classes: usize,
) -> Result<(), AnalysisError> {
    if labels.len() != samples {
        return Err(AnalysisError::LabelCountMismatch {
            domain: domain.to_string(),
            samples,
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= n_classes)
    {
        return Err(AnalysisError::LabelOutOfRange {
            domain: domain.to_string(),
            index,
            label,
            n_classes,
        });
    }
    Ok(())
}

/// Which side of the transfer a sample comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// The domain with plenty of labels.
    Source,
    /// The domain to transfer to.
    Target,
}

/// Settings for `similarity_report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimilarityOptions {
    /// Label permutations for the MMD p-value.
    pub permutations: usize,
    /// Seed for every random choice (subsamples, permutations, splits, starts).
    pub seed: u64,
    /// Samples per domain kept for MMD, at most 10,000 (the kernel matrix is
    /// quadratic in this).
    pub mmd_max_points: usize,
    /// Share of each domain held out to test the A-distance's domain classifier.
    pub a_distance_test_fraction: f64,
    /// Samples per domain kept for the A-distance and the CORAL distance.
    pub metric_max_points: usize,
    /// Embed with t-SNE instead of PCA.
    pub tsne: bool,
    /// t-SNE perplexity (needs more than 3 × perplexity points).
    pub perplexity: f64,
    /// t-SNE iterations.
    pub max_iter: usize,
    /// Samples per domain kept for the 2-D map.
    pub embedding_max_points: usize,
}

impl Default for SimilarityOptions {
    fn default() -> Self {
        Self {
            permutations: 200,
            seed: 0,
            mmd_max_points: mmd::DEFAULT_MAX_POINTS,
            a_distance_test_fraction: 0.5,
            metric_max_points: 5000,
            tsne: false,
            perplexity: 30.0,
            max_iter: 1000,
            embedding_max_points: 2500,
        }
    }
}

impl SimilarityOptions {
    /// The MMD permutation test's settings.
    pub fn mmd(&self) -> MmdOptions {
        MmdOptions {
            permutations: self.permutations,
            max_points: self.mmd_max_points,
            seed: self.seed,
            ..MmdOptions::default()
        }
    }

    /// The proxy A-distance's settings.
    pub fn a_distance(&self) -> ADistanceOptions {
        ADistanceOptions {
            test_fraction: self.a_distance_test_fraction,
            max_points: self.metric_max_points,
            seed: self.seed,
            ..ADistanceOptions::default()
        }
    }
}

/// Everything `similarity_report` measured, ready for JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityReport {
    /// Samples in the source domain.
    pub n_source: usize,
    /// Samples in the target domain.
    pub n_target: usize,
    /// Features per sample.
    pub dim: usize,
    /// Unbiased MMD² (mean of Gaussian kernels, see `mmd`).
    pub mmd2: f64,
    /// Permutation-test p-value of MMD² (small: the domains differ).
    pub mmd_p_value: f64,
    /// Permutations behind the p-value.
    pub mmd_permutations: usize,
    /// Samples per domain MMD used, when a domain was subsampled.
    pub mmd_subsampled_to: Option<usize>,
    /// Median pairwise squared distance (the kernel scale).
    pub mmd_median_sq_distance: f64,
    /// Kernel bandwidths: multiples of the median squared distance.
    pub mmd_bandwidths: Vec<f64>,
    /// Proxy A-distance in [0, 2] (0: indistinguishable, 2: perfectly separable).
    pub a_distance: f64,
    /// How the A-distance was obtained.
    pub a_distance_detail: ADistanceDetail,
    /// CORAL distance ‖C_s − C_t‖²_F / (4d²) on pooled-standardised features.
    pub coral_distance: f64,
    /// Per-class distances, when both domains are labelled.
    pub per_class: Option<PerClassReport>,
    /// 2-D map of both domains.
    pub embedding: Embedding,
}

/// Measures how similar `target` is to `source`: MMD² with a permutation p-value,
/// the proxy A-distance, the CORAL distance, per-class distances (when both label
/// sets are given) and a 2-D embedding.
pub fn similarity_report(
    source: &Features,
    target: &Features,
    source_labels: Option<&[u32]>,
    target_labels: Option<&[u32]>,
    class_names: &[String],
    opts: &SimilarityOptions,
) -> Result<SimilarityReport, AnalysisError> {
    validate_pair(source, target, "the A-distance", MIN_SAMPLES_PER_DOMAIN)?;
    if let Some(labels) = source_labels {
        validate_labels("source", labels, source.n, class_names.len())?;
    }
    if let Some(labels) = target_labels {
        validate_labels("target", labels, target.n, class_names.len())?;
    }
    // Fails early, with one clear message, when nothing varies.
    standardize::Standardizer::fit(&[source, target])?;

    let mmd = mmd_permutation_test(source, target, &opts.mmd())?;
    let a = proxy_a_distance(source, target, &opts.a_distance())?;
    let coral =
        coral::coral_distance_subsampled(source, target, opts.metric_max_points, opts.seed)?;
    let per_class = match (source_labels, target_labels) {
        (Some(sl), Some(tl)) => Some(per_class_distances(source, target, sl, tl, class_names)?),
        _ => None,
    };
    let embedding = embed_domains(
        source,
        target,
        source_labels,
        target_labels,
        &EmbeddingOptions {
            method: if opts.tsne {
                EmbeddingMethod::Tsne
            } else {
                EmbeddingMethod::Pca
            },
            perplexity: opts.perplexity,
            max_iter: opts.max_iter,
            seed: opts.seed,
            max_points_per_domain: opts.embedding_max_points,
        },
    )?;

    Ok(SimilarityReport {
        n_source: source.n,
        n_target: target.n,
        dim: source.d,
        mmd2: mmd.mmd2,
        mmd_p_value: mmd.p_value,
        mmd_permutations: mmd.permutations,
        mmd_subsampled_to: mmd.subsampled_to,
        mmd_median_sq_distance: mmd.median_sq_distance,
        mmd_bandwidths: mmd.bandwidths,
        a_distance: a.a_distance,
        a_distance_detail: a.detail,
        coral_distance: coral,
        per_class,
        embedding,
    })
}

#[cfg(test)]
mod tests {
    use super::synthetic::gaussian_domain;
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("class {i}")).collect()
    }

    #[test]
    fn features_new_rejects_wrong_length_and_nan() {
        let err = Features::new(vec![0.0; 5], 2, 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "feature buffer has 5 values, expected n × d = 2 × 3"
        );
        let err = Features::new(vec![0.0, 1.0, f32::NAN, 3.0], 2, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "features has a non-finite value (NaN or infinity) at row 1, column 0"
        );
        let err = Features::from_rows(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert!(matches!(err, AnalysisError::RaggedRows { row: 1, .. }));
        let f = Features::new(vec![1.0, 2.0, 3.0, 4.0], 2, 2).unwrap();
        assert_eq!(f.row(1), &[3.0, 4.0]);
        // Empty matrices are valid values; analyses reject them.
        assert!(Features::new(Vec::new(), 0, 3).unwrap().is_empty());
    }

    #[test]
    fn report_rejects_degenerate_domains_with_specific_messages() {
        let opts = SimilarityOptions::default();
        let good = gaussian_domain(20, 3, 0.0, 1.0, 1);
        let empty = Features::new(Vec::new(), 0, 3).unwrap();
        let err = similarity_report(&good, &empty, None, None, &[], &opts).unwrap_err();
        assert_eq!(err.to_string(), "domain 'target' has no samples");

        let one = gaussian_domain(1, 3, 0.0, 1.0, 2);
        let err = similarity_report(&one, &good, None, None, &[], &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "need at least 4 samples per domain for the A-distance, got 1 in domain 'source': add images to it"
        );

        let constant = Features::new(vec![2.5; 40], 20, 2).unwrap();
        let err = similarity_report(&constant, &constant, None, None, &[], &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "all features are constant: nothing to compare"
        );

        // NaN smuggled in through the public fields is still caught.
        let mut bad = good.clone();
        bad.data[7] = f32::NAN;
        let err = similarity_report(&good, &bad, None, None, &[], &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain 'target' has a non-finite value (NaN or infinity) at row 2, column 1"
        );

        let zero_width = Features::new(Vec::new(), 5, 0).unwrap();
        let err = similarity_report(&zero_width, &zero_width, None, None, &[], &opts).unwrap_err();
        assert_eq!(err, AnalysisError::NoDimensions);

        let narrow = gaussian_domain(20, 2, 0.0, 1.0, 3);
        let err = similarity_report(&good, &narrow, None, None, &[], &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source features have 3 dimensions but target features have 2"
        );

        let labels = vec![0u32; 19];
        let err =
            similarity_report(&good, &good, Some(&labels), None, &names(1), &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain 'source' has 20 samples but 19 labels"
        );
        let labels = vec![3u32; 20];
        let err =
            similarity_report(&good, &good, None, Some(&labels), &names(2), &opts).unwrap_err();
        assert!(err.to_string().contains("label 3 at sample 0"));
    }

    #[test]
    fn report_has_every_key_and_round_trips_through_json() {
        let source = gaussian_domain(120, 6, 0.0, 1.0, 10);
        let target = gaussian_domain(100, 6, 1.0, 1.0, 11);
        let sl: Vec<u32> = (0..120).map(|i| (i % 3) as u32).collect();
        let tl: Vec<u32> = (0..100).map(|i| (i % 2) as u32).collect();
        let opts = SimilarityOptions {
            permutations: 50,
            ..SimilarityOptions::default()
        };
        let report =
            similarity_report(&source, &target, Some(&sl), Some(&tl), &names(3), &opts).unwrap();
        assert_eq!(
            (report.n_source, report.n_target, report.dim),
            (120, 100, 6)
        );
        assert!(report.mmd_p_value < 0.05);
        assert_eq!(report.embedding.points.len(), 220);
        let per_class = report.per_class.as_ref().unwrap();
        assert_eq!(per_class.classes.len(), 2, "class 2 has no target samples");

        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "mmd2",
            "mmd_p_value",
            "mmd_permutations",
            "mmd_subsampled_to",
            "a_distance",
            "a_distance_detail",
            "coral_distance",
            "per_class",
            "embedding",
            "n_source",
            "n_target",
            "dim",
        ] {
            assert!(json.get(key).is_some(), "missing key {key}");
        }
        assert_eq!(json["embedding"]["method"], "pca");
        assert_eq!(json["embedding"]["points"][0]["domain"], "source");
        // serde_json's default float parser may differ in the last bit: compare loosely.
        let back: SimilarityReport = serde_json::from_value(json).unwrap();
        assert_eq!(back.embedding.points, report.embedding.points);
        assert_eq!(back.per_class.unwrap().classes.len(), 2);
        assert!((back.mmd2 - report.mmd2).abs() <= 1e-12 * report.mmd2.abs());
        assert!((back.a_distance - report.a_distance).abs() <= 1e-12);
    }

    #[test]
    fn same_seed_gives_the_same_report() {
        let source = gaussian_domain(60, 5, 0.0, 1.0, 20);
        let target = gaussian_domain(60, 5, 0.5, 1.0, 21);
        let opts = SimilarityOptions {
            permutations: 30,
            seed: 9,
            ..SimilarityOptions::default()
        };
        let a = similarity_report(&source, &target, None, None, &[], &opts).unwrap();
        let b = similarity_report(&source, &target, None, None, &[], &opts).unwrap();
        assert_eq!(a, b);
    }
}
