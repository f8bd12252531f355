//! DAN, Deep Adaptation Network (Long et al., 2015): like DDC, but the MMD² uses a family of
//! Gaussian kernels, so no single bandwidth has to be right. The family is five bandwidths,
//! σ²·{¼, ½, 1, 2, 4} around the median squared distance σ², weighted equally (the
//! original learns the kernel weights; equal weights are the common, stable choice), and it
//! is applied to the adaptation layer (adding the class scores, as the original adapts
//! the last layers, made no reliable difference on the benchmark's shifts).
//!
//! Loss: cross-entropy + λ · ramp(p) · MK-MMD²(adaptation-layer features).

use super::feature_penalty::FeaturePenalty;
use super::mmd::joint_mmd2;

/// Default weight of the MK-MMD² term.
pub const DEFAULT_LAMBDA: f64 = 1.0;

/// Dan's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "dan",
    summary: "Like DDC, with a family of Gaussian kernels around the median distance (multi-kernel MMD²), so no single bandwidth has to be right.",
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[super::Metric::new("mk_mmd2", "MK-MMD²", super::Unit::Plain).higher_is_better(false)],
    build: Some(|s, _| FeaturePenalty::boxed(s, "mk_mmd2", |out| joint_mmd2(out, &SCALES))),
    ..super::ADAPTATION_BASE
};

/// Kernel bandwidths, as multiples of the median squared distance.
pub const SCALES: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];
