//! DDC, Deep Domain Confusion (Tzeng et al., 2014): an adaptation layer (the network's
//! bottleneck) between backbone and classifier, and a penalty on the MMD² between the
//! source and target outputs of that layer, so the classifier sees features in which the
//! domains look alike. One Gaussian kernel, its bandwidth the median distance.
//!
//! Loss: cross-entropy on the labelled batch + λ · ramp(p) · MMD²(source, target).

use super::feature_penalty::FeaturePenalty;
use super::mmd::joint_mmd2;

/// Ddc's descriptor: DAN's (the same λ, layer and schedule) with one kernel.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "ddc",
    summary: "Add an adaptation layer and pull the source and target features together with a Gaussian-kernel MMD² penalty.",
    metrics: &[super::Metric::new("mmd2", "MMD²", super::Unit::Plain).higher_is_better(false)],
    build: Some(|s, _| FeaturePenalty::boxed(s, "mmd2", |out| joint_mmd2(out, &[1.0]))),
    ..super::dan::INFO
};
