//! DAN, Deep Adaptation Network (Long et al., 2015): like DDC, but the MMD² uses a family of
//! Gaussian kernels, so no single bandwidth has to be right. The family is five bandwidths,
//! σ²·{¼, ½, 1, 2, 4} around the median squared distance σ², weighted equally (the
//! original learns the kernel weights; equal weights are the common, stable choice), and it
//! is applied to the adaptation layer (adding the class scores, as the original adapts
//! the last layers, made no reliable difference on the benchmark's shifts).
//!
//! Loss: cross-entropy + λ · ramp(p) · MK-MMD²(adaptation-layer features).

use super::mmd::mmd2;
use super::{
    DeviceMean, Method, MethodKind, MethodSettings, TrainBatch, annealed_lr, joint_forward, ramp,
};
use crate::model::Network;
use candle_core::{Result, Tensor};

/// Default weight of the MK-MMD² term.
pub const DEFAULT_LAMBDA: f64 = 1.0;

/// Dan's descriptor.
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "dan",
    family: super::Family::Feature,
    summary: "Like DDC, with a family of Gaussian kernels around the median distance (multi-kernel MMD²), so no single bandwidth has to be right.",
    // Labelled target images (`--target-labels K`) join the classification loss.
    labelled: super::LabelledData::SourceAndTarget,
    uses_unlabeled_target: true,
    bottleneck: Some(super::DEFAULT_BOTTLENECK),
    hyperparameters: &[super::Hyperparameter::lambda(DEFAULT_LAMBDA)],
    metrics: &[super::Metric::new("mk_mmd2", "MK-MMD²", super::Unit::Plain).higher_is_better(false)],
    build: Some(|settings, _net| Ok(Box::new(Dan::new(settings)))),
};

/// Kernel bandwidths, as multiples of the median squared distance.
pub const SCALES: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

/// Deep Adaptation Network.
pub struct Dan {
    lambda: f64,
    mmd: DeviceMean,
}

impl Dan {
    /// DAN with the settings' λ.
    pub fn new(settings: &MethodSettings) -> Self {
        Self {
            lambda: settings.lambda,
            mmd: DeviceMean::default(),
        }
    }
}

impl Method for Dan {
    fn kind(&self) -> MethodKind {
        MethodKind::Dan
    }

    fn step_loss(&mut self, net: &Network, batch: &TrainBatch, progress: f64) -> Result<Tensor> {
        let out = joint_forward(net, batch)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &batch.y)?;
        let Some(fs) = &out.source_features else {
            return Ok(ce);
        };
        let mmd = mmd2(fs, &out.target_features, &SCALES)?;
        self.mmd.add(&mmd)?;
        ce + (mmd * (self.lambda * ramp(progress)))?
    }

    fn lr_scale(&self, progress: f64) -> f64 {
        annealed_lr(progress)
    }

    fn epoch_metrics(&mut self) -> Vec<(String, f64)> {
        self.mmd
            .take()
            .map(|v| vec![("mk_mmd2".to_string(), v)])
            .unwrap_or_default()
    }
}
