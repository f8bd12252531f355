//! DDC, Deep Domain Confusion (Tzeng et al., 2014): an adaptation layer (the network's
//! bottleneck) between backbone and classifier, and a penalty on the MMD² between the
//! source and target outputs of that layer, so the classifier sees features in which the
//! domains look alike. One Gaussian kernel, its bandwidth the median distance.
//!
//! Loss: cross-entropy on the labelled batch + λ · ramp(p) · MMD²(source, target).

use super::MethodKind;
use super::feature_penalty::FeaturePenalty;
use super::mmd::joint_mmd2;

/// Default weight of the MMD² term.
pub const DEFAULT_LAMBDA: f64 = 1.0;

/// Ddc's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "ddc",
    summary: "Add an adaptation layer and pull the source and target features together with a Gaussian-kernel MMD² penalty.",
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[super::Metric::new("mmd2", "MMD²", super::Unit::Plain).higher_is_better(false)],
    build: Some(|settings, _net| {
        Ok(Box::new(FeaturePenalty::new(
            MethodKind::Ddc,
            settings,
            "mmd2",
            |out| joint_mmd2(out, &[1.0]),
        )))
    }),
    ..super::ADAPTATION_BASE
};
